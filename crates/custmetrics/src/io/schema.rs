//! Column roles and their detection from the header names that CRM, shop and survey exports use.
//!
//! Each role has aliases in ranked tiers (tier 0 is the canonical name). The best-ranked match
//! wins; two columns matching in the same best tier are ambiguous and detection refuses to guess.
//! Headers are compared after lowercasing and dropping everything but letters and digits, so
//! `Customer ID`, `customer_id` and `CustomerID` are the same name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Canonical column names of loaded tables.
pub mod col {
    /// Customer id (String).
    pub const CUSTOMER_ID: &str = "customer_id";
    /// Transaction or interaction date (Date).
    pub const DATE: &str = "date";
    /// Revenue (Float64), refunds negative.
    pub const AMOUNT: &str = "amount";
    /// Order id (String), when the export has one.
    pub const ORDER_ID: &str = "order_id";
    /// Cost of goods (Float64), when given.
    pub const COST: &str = "cost";
    /// Currency code (String), when given.
    pub const CURRENCY: &str = "currency";
    /// Interaction channel (String).
    pub const CHANNEL: &str = "channel";
    /// Interaction kind (String).
    pub const KIND: &str = "kind";
    /// NPS answer 0-10 (Int32, null when not asked).
    pub const NPS: &str = "nps";
    /// CSAT answer 1..=scale (Int32, null when not asked).
    pub const CSAT: &str = "csat";
    /// Signup / acquisition date (Date).
    pub const SIGNUP_DATE: &str = "signup_date";
    /// Cancellation date (Date, null while a customer).
    pub const END_DATE: &str = "end_date";
    /// Acquisition cost (Float64).
    pub const ACQUISITION_COST: &str = "acquisition_cost";
    /// Weight of a transactions row read back from a summary store, where one row is one
    /// customer's day: the number of purchases (orders) it stands for (UInt32; 0 for a day of
    /// refunds only). Tables read from files have no such column: each row is one order, a
    /// purchase unless its amount is negative.
    pub const ORDERS: &str = "__orders";
    /// Weight of an interactions row read back from a summary store: the number of
    /// interactions it stands for (UInt32; 0 for a row that only counts survey answers).
    pub const INTERACTIONS: &str = "__interactions";
    /// Weight of an interactions row read back from a summary store that counts survey answers:
    /// the number of answers with its NPS and CSAT values (UInt32; 0 for other rows).
    pub const ANSWERS: &str = "__answers";
    /// A summary store's code of the row's customer (UInt32), beside the id, so that stage 1
    /// need not hash the ids of rows read back from a store.
    pub const CUSTOMER_CODE: &str = "__customer";
}

/// The three canonical tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    /// Purchases, orders, invoices, charges, deals.
    Transactions,
    /// Contacts: surveys, tickets, follow-ups, across channels.
    Interactions,
    /// One row per customer: signup, cancellation, acquisition cost, plan.
    Customers,
}

impl TableKind {
    /// The table's name as used in messages, JSON and config sections.
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Transactions => "transactions",
            TableKind::Interactions => "interactions",
            TableKind::Customers => "customers",
        }
    }

    /// The roles this table can have, required ones first.
    pub fn roles(self) -> &'static [Role] {
        match self {
            TableKind::Transactions => &[
                Role::CustomerId,
                Role::Date,
                Role::Amount,
                Role::OrderId,
                Role::Quantity,
                Role::UnitPrice,
                Role::Cost,
                Role::Currency,
                Role::Status,
                Role::RefundedAmount,
            ],
            TableKind::Interactions => &[
                Role::CustomerId,
                Role::Date,
                Role::Channel,
                Role::Kind,
                Role::Nps,
                Role::Csat,
            ],
            TableKind::Customers => &[
                Role::CustomerId,
                Role::SignupDate,
                Role::EndDate,
                Role::AcquisitionCost,
            ],
        }
    }
}

impl std::fmt::Display for TableKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a column means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Who: the customer's id (or e-mail when the export has no id).
    CustomerId,
    /// When the transaction or interaction happened.
    Date,
    /// Revenue of the transaction; refunds negative.
    Amount,
    /// Order or invoice number; rows with the same order are one purchase.
    OrderId,
    /// Quantity of a line item (retail exports).
    Quantity,
    /// Unit price of a line item; amount = quantity × unit price when there is no amount column.
    UnitPrice,
    /// Cost of goods, for margin.
    Cost,
    /// ISO currency code.
    Currency,
    /// Payment or order status (paid, pending, failed, voided, refunded, partially refunded):
    /// decides whether a row is a purchase (see [`crate::io::PurchaseStatus`]).
    Status,
    /// Amount refunded on the order or charge; the order's revenue is its amount minus this.
    RefundedAmount,
    /// Contact channel: email, phone, chat, social, in-person.
    Channel,
    /// Interaction kind: survey, support ticket, follow-up.
    Kind,
    /// NPS answer, 0-10.
    Nps,
    /// CSAT answer, 1..=scale.
    Csat,
    /// Date the customer signed up or was acquired.
    SignupDate,
    /// Date the customer cancelled (contractual churn).
    EndDate,
    /// Cost of acquiring the customer.
    AcquisitionCost,
}

impl Role {
    /// A human name for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Role::CustomerId => "customer id",
            Role::Date => "date",
            Role::Amount => "amount",
            Role::OrderId => "order id",
            Role::Quantity => "quantity",
            Role::UnitPrice => "unit price",
            Role::Cost => "cost",
            Role::Currency => "currency",
            Role::Status => "status",
            Role::RefundedAmount => "refunded amount",
            Role::Channel => "channel",
            Role::Kind => "interaction kind",
            Role::Nps => "NPS score",
            Role::Csat => "CSAT score",
            Role::SignupDate => "signup date",
            Role::EndDate => "end date",
            Role::AcquisitionCost => "acquisition cost",
        }
    }

    /// The setting (and, with `-` for `_`, the CLI flag stem) that maps this role.
    pub fn setting(self) -> &'static str {
        match self {
            Role::CustomerId => "customer_col",
            Role::Date => "date_col",
            Role::Amount => "amount_col",
            Role::OrderId => "order_col",
            Role::Quantity => "quantity_col",
            Role::UnitPrice => "unit_price_col",
            Role::Cost => "cost_col",
            Role::Currency => "currency_col",
            Role::Status => "status_col",
            Role::RefundedAmount => "refunded_col",
            Role::Channel => "channel_col",
            Role::Kind => "kind_col",
            Role::Nps => "nps_col",
            Role::Csat => "csat_col",
            Role::SignupDate => "signup_col",
            Role::EndDate => "end_col",
            Role::AcquisitionCost => "acquisition_cost_col",
        }
    }

    /// The CLI flag that maps this role: the setting with `-` for `_` (`--customer-col`).
    pub fn flag(self) -> String {
        format!("--{}", self.setting().replace('_', "-"))
    }

    /// Header aliases by tier for this role in this table (normalised: lowercase letters and digits).
    fn aliases(self, table: TableKind) -> &'static [&'static [&'static str]] {
        match (self, table) {
            // Ids beat e-mails, and e-mails beat names: an id is what the shop or CRM keys on,
            // an address can change, and two customers can share a name. A person's name
            // (Zendesk's `Requester`) is in the last tier, `PERSON_NAME_TIER`, which is never
            // taken on its header alone (see `resolve_columns_with`).
            (Role::CustomerId, _) => &[
                &[
                    "customerid",
                    "customer",
                    "kundennummer",
                    "kundenid",
                    "kunde",
                    "clientid",
                    "idclient",
                    "cliente",
                    "idcliente",
                ],
                // The company's own id for the person in a helpdesk or survey tool: the id its
                // shop and CRM exports use too, where the tool's internal id joins nothing.
                &[
                    "externalid",
                    "requesterexternalid",
                    "customerexternalid",
                    "userexternalid",
                    "contactexternalid",
                ],
                &[
                    "client",
                    "userid",
                    "accountid",
                    "contactid",
                    "buyerid",
                    "custid",
                    "memberid",
                    "shopperid",
                    "requesterid",
                    "customernumber",
                    "customerno",
                    "customercode",
                    "donorid",
                ],
                &[
                    "email",
                    "emailaddress",
                    "customeremail",
                    "requesteremail",
                    "contactemail",
                    "useremail",
                    "buyeremail",
                    "billingemail",
                    "respondentemail",
                    "recipientemail",
                ],
                &[
                    "requester",
                    "requestername",
                    "name",
                    "fullname",
                    "customername",
                    "contact",
                    "contactname",
                    "associatedcontact",
                    "associatedcompany",
                    "user",
                    "username",
                    "account",
                    "accountname",
                ],
            ],
            (Role::Date, TableKind::Transactions) => &[
                &[
                    "date",
                    "orderdate",
                    "transactiondate",
                    "purchasedate",
                    "invoicedate",
                    "datum",
                    "bestelldatum",
                    "fecha",
                    "datecommande",
                ],
                &[
                    "createdat",
                    "created",
                    "createdutc",
                    "createddate",
                    "closedate",
                    "saledate",
                    "chargedate",
                    "dateutc",
                    "timestamp",
                    "datetime",
                    "orderdatetime",
                    "ordertime",
                    "purchasetime",
                    "transactiontime",
                    "invoicedateutc",
                ],
                &["paidat", "paymentdate", "processedat"],
            ],
            (Role::Date, _) => &[
                &["date", "interactiondate", "responsedate", "surveydate"],
                &[
                    "createdat",
                    "created",
                    "createdutc",
                    "createddate",
                    "timestamp",
                    "datetime",
                    "ratedat",
                    "submittedat",
                    "submitdate",
                    "respondedat",
                    "sentat",
                    "time",
                    "updatedat",
                    "solvedat",
                    "ticketcreatedat",
                ],
            ],
            (Role::Amount, _) => &[
                &[
                    "amount",
                    "revenue",
                    "total",
                    "ordertotal",
                    "totalamount",
                    "sales",
                    "value",
                    "betrag",
                    "umsatz",
                    "montant",
                    "importe",
                    "monto",
                ],
                &[
                    "amountpaid",
                    "grandtotal",
                    "totalprice",
                    "netamount",
                    "amountusd",
                    "gross",
                    "paymentamount",
                    "chargeamount",
                    "dealamount",
                    "totalsales",
                    "ordervalue",
                    "netsales",
                    "totalrevenue",
                    "amountdue",
                ],
                &["subtotal", "net"],
            ],
            (Role::OrderId, _) => &[
                &[
                    "orderid",
                    "order",
                    "invoiceno",
                    "invoiceid",
                    "invoice",
                    "invoicenumber",
                ],
                &[
                    "ordernumber",
                    "orderno",
                    "transactionid",
                    "chargeid",
                    "dealid",
                    "opportunityid",
                    "paymentid",
                    "receiptid",
                    "saleid",
                    "ordername",
                ],
                &["name", "id", "recordid"],
            ],
            (Role::Quantity, _) => &[&[
                "quantity",
                "qty",
                "units",
                "lineitemquantity",
                "itemquantity",
            ]],
            (Role::UnitPrice, _) => &[&[
                "unitprice",
                "price",
                "lineitemprice",
                "itemprice",
                "priceeach",
            ]],
            (Role::Cost, _) => &[&[
                "cost",
                "cogs",
                "costofgoods",
                "costofgoodssold",
                "productcost",
                "totalcost",
            ]],
            (Role::Currency, _) => &[&["currency", "currencycode", "curr", "presentmentcurrency"]],
            // Shopify has both "Financial Status" (payment) and "Fulfillment Status" (shipping):
            // only the payment status says whether money came in, so it ranks first.
            (Role::Status, _) => &[
                &[
                    "financialstatus",
                    "paymentstatus",
                    "chargestatus",
                    "transactionstatus",
                ],
                &[
                    "status",
                    "orderstatus",
                    "zahlungsstatus",
                    "estado",
                    "statut",
                ],
                &["state", "paymentstate", "orderstate"],
            ],
            (Role::RefundedAmount, _) => &[&[
                "amountrefunded",
                "refundedamount",
                "refundamount",
                "totalrefunded",
                "refundedtotal",
                "refundtotal",
                "refunds",
            ]],
            (Role::Channel, _) => &[
                &[
                    "channel",
                    "interactionchannel",
                    "contactchannel",
                    "kanal",
                    "canal",
                ],
                &["via", "medium", "source", "touchpoint", "channeltype"],
            ],
            (Role::Kind, _) => &[
                &["kind", "interactiontype", "interactionkind"],
                &["type", "activitytype", "eventtype", "category"],
            ],
            (Role::Nps, _) => &[
                &["nps", "npsscore", "npsrating"],
                &[
                    "likelihoodtorecommend",
                    "recommend",
                    "wouldrecommend",
                    "recommendscore",
                ],
            ],
            (Role::Csat, _) => &[
                &["csat", "csatscore", "csatrating"],
                &[
                    "satisfaction",
                    "satisfactionscore",
                    "satisfactionrating",
                    "customersatisfaction",
                    "rating",
                ],
            ],
            (Role::SignupDate, _) => &[
                &[
                    "signupdate",
                    "signup",
                    "signupat",
                    "signedupat",
                    "acquireddate",
                    "acquisitiondate",
                ],
                &[
                    "createdat",
                    "created",
                    "createddate",
                    "customersince",
                    "startdate",
                    "joindate",
                    "joinedat",
                    "registrationdate",
                    "registeredat",
                    "firstorderdate",
                    "accountcreated",
                    "subscriptionstart",
                    "date",
                ],
            ],
            (Role::EndDate, _) => &[
                &[
                    "cancelleddate",
                    "canceleddate",
                    "enddate",
                    "churndate",
                    "canceldate",
                ],
                &[
                    "cancelledat",
                    "canceledat",
                    "churnedat",
                    "endedat",
                    "terminationdate",
                    "subscriptionend",
                    "closedat",
                ],
            ],
            (Role::AcquisitionCost, _) => &[
                &["acquisitioncost", "cac", "costofacquisition"],
                &["acquisitionspend", "marketingcost", "cost"],
            ],
        }
    }

    /// Whether a table cannot be used without this role.
    pub fn is_required(self, table: TableKind) -> bool {
        matches!(
            (self, table),
            (Role::CustomerId, _)
                | (
                    Role::Date,
                    TableKind::Transactions | TableKind::Interactions
                )
        )
    }
}

/// Normalises a header for matching: lowercase ASCII letters and digits only.
pub(crate) fn normalise_header(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The user's choice of columns for one table: a column per role, or detection when `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ColumnMapping {
    /// Explicit columns by role.
    #[serde(default)]
    pub columns: BTreeMap<Role, String>,
    /// Columns to ignore (neither a role nor a dimension).
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Preferred columns by role, used only when the file has them (one `--date-col` for
    /// several tables with different layouts).
    #[serde(default)]
    pub preferred: BTreeMap<Role, String>,
}

impl ColumnMapping {
    /// Sets the column for a role.
    pub fn with(mut self, role: Role, column: impl Into<String>) -> Self {
        self.columns.insert(role, column.into());
        self
    }
}

/// The resolved roles of one file's columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedColumns {
    /// Column by role.
    pub roles: BTreeMap<Role, String>,
    /// The remaining columns, kept as segment dimensions (`--by`).
    pub dimensions: Vec<String>,
    /// Other columns that could play a detected role, best first: for a role that has a column,
    /// the ones not chosen (the customer id `Requester external id` over `Requester email` and
    /// `Requester`); for an NPS or CSAT score without one, the columns that look like its
    /// answers. Empty for roles mapped explicitly. They stay dimensions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub alternatives: BTreeMap<Role, Vec<String>>,
}

impl ResolvedColumns {
    /// The column that plays `role`, if any.
    pub fn column(&self, role: Role) -> Option<&str> {
        self.roles.get(&role).map(String::as_str)
    }

    /// The other columns that could play `role` (see [`ResolvedColumns::alternatives`]).
    pub fn alternatives(&self, role: Role) -> &[String] {
        self.alternatives.get(&role).map_or(&[], Vec::as_slice)
    }
}

/// The tier of [`Role::CustomerId`] aliases that name a person or an account (`Requester`,
/// `Name`, `Contact`): the last one.
const PERSON_NAME_TIER: usize = 4;

/// Non-blank values of some columns (the first rows of the file), for the detections that a
/// header alone cannot settle. Columns absent from the answer count as having no values.
pub type ValueSampler<'a> = dyn FnMut(&[String]) -> Result<BTreeMap<String, Vec<String>>> + 'a;

/// Whether a normalised header is a survey question asking for `role`'s score, as survey tools
/// name answer columns after the question: "How likely are you to recommend Acme to a friend or
/// colleague?" (NPS), "How satisfied were you with your support experience?" (CSAT). Follow-up
/// questions asking for words ("Why?", "Satisfaction comment") are not scores.
fn is_score_question(role: Role, header: &str) -> bool {
    const FREE_TEXT: &[&str] = &[
        "comment", "reason", "why", "feedback", "explain", "verbatim", "describe", "tellus",
    ];
    let asks = match role {
        Role::Nps => header.contains("recommend"),
        Role::Csat => header.contains("satisf"),
        _ => false,
    };
    asks && !FREE_TEXT.iter().any(|w| header.contains(w))
}

/// At least 80% of `values` (and at least one) pass `ok`: "mostly", so that a stray typo does
/// not hide a column, while a free-text column with an occasional number is not taken.
fn mostly(values: &[String], ok: impl Fn(&str) -> bool) -> bool {
    let hits = values.iter().filter(|v| ok(v)).count();
    !values.is_empty() && hits * 5 >= values.len() * 4
}

/// Whether the sampled values of a column read as answers of a score `role`.
fn looks_like_scores(role: Role, values: &[String], csat_scale: u8) -> bool {
    match role {
        Role::Nps => mostly(values, |v| {
            matches!(super::parse::parse_nps(v), Ok(Some(_)))
        }),
        Role::Csat => mostly(values, |v| {
            matches!(super::parse::parse_csat(v, csat_scale), Ok(Some(_)))
        }),
        _ => false,
    }
}

/// Resolves every role of `table` among `columns` from their headers, honouring the explicit
/// `mapping` first. The same as [`resolve_columns_with`] without values: a column of names is
/// never the customer id, and a question-text header is never a score (both are alternatives).
///
/// # Errors
/// See [`resolve_columns_with`].
pub fn resolve_columns(
    table: TableKind,
    columns: &[String],
    mapping: &ColumnMapping,
) -> Result<ResolvedColumns> {
    resolve_columns_with(table, columns, mapping, 5, &mut |_| Ok(BTreeMap::new()))
}

/// Resolves every role of `table` among `columns`, honouring the explicit `mapping` first, and
/// looking at the values (through `sample`) where headers are not enough.
///
/// Headers in the alias tiers decide first (the best tier wins; a tie is refused). Two kinds of
/// header are only candidates, confirmed by the values, and only for a role no alias matched:
/// - a person's or account's name for the customer id (`Requester`, `Name`, `Contact`): taken
///   only when its values are mostly e-mail addresses (Zendesk's `Requester` often is);
///   otherwise detection refuses, since customers who share a name would silently merge;
/// - a question as header ("How likely are you to recommend ...", "How satisfied ...") for the
///   NPS and CSAT scores: taken when its values mostly read as scores on that scale.
///
/// Other candidates are recorded in [`ResolvedColumns::alternatives`]. `sample` is called at
/// most once, and only when a candidate needs its values.
///
/// # Errors
/// [`Error::UnknownColumn`] for a mapped column the file lacks, [`Error::AmbiguousColumn`] when two
/// columns tie for a role, [`Error::NameAsCustomerId`] when the only customer-id candidates are
/// names, [`Error::MissingColumn`] when a required role has no column, and any error of `sample`.
pub fn resolve_columns_with(
    table: TableKind,
    columns: &[String],
    mapping: &ColumnMapping,
    csat_scale: u8,
    sample: &mut ValueSampler<'_>,
) -> Result<ResolvedColumns> {
    let list = || columns.join(", ");
    let mut roles = BTreeMap::new();
    for (&role, column) in &mapping.columns {
        if !table.roles().contains(&role) {
            continue;
        }
        if !columns.iter().any(|c| c == column) {
            return Err(Error::UnknownColumn {
                table: table.name().into(),
                role: role.describe().into(),
                column: column.clone(),
                columns: list(),
            });
        }
        roles.insert(role, column.clone());
    }
    for (&role, column) in &mapping.preferred {
        if table.roles().contains(&role)
            && !roles.contains_key(&role)
            && columns.iter().any(|c| c == column)
        {
            roles.insert(role, column.clone());
        }
    }
    let chosen: Vec<Role> = roles.keys().copied().collect();
    let taken = |roles: &BTreeMap<Role, String>, c: &str| roles.values().any(|v| v == c);
    let free = |roles: &BTreeMap<Role, String>, c: &String| {
        !taken(roles, c) && !mapping.ignore.contains(c) && !c.starts_with("__")
    };
    let ambiguous = |role: Role, candidates: Vec<String>| Error::AmbiguousColumn {
        table: table.name().into(),
        role: role.describe().into(),
        candidates,
        setting: role.setting().into(),
    };
    let is_weak = |role: Role, tier: usize| role == Role::CustomerId && tier == PERSON_NAME_TIER;
    for &role in table.roles() {
        if roles.contains_key(&role) {
            continue;
        }
        let mut found: Option<Vec<&String>> = None;
        for (t, tier) in role.aliases(table).iter().enumerate() {
            if is_weak(role, t) {
                continue;
            }
            let matches: Vec<&String> = columns
                .iter()
                .filter(|c| free(&roles, c))
                .filter(|c| tier.contains(&normalise_header(c).as_str()))
                .collect();
            if !matches.is_empty() {
                found = Some(matches);
                break;
            }
        }
        match found.as_deref() {
            Some([one]) => {
                roles.insert(role, (*one).clone());
            }
            Some(many) => {
                return Err(ambiguous(role, many.iter().map(|s| (*s).clone()).collect()));
            }
            None => {}
        }
    }

    // Candidates that need their values: names for the customer id, question headers for
    // scores; and, to name them when no score column is found, every free column.
    let score_roles: Vec<Role> = [Role::Nps, Role::Csat]
        .into_iter()
        .filter(|r| table.roles().contains(r) && !roles.contains_key(r))
        .collect();
    let name_candidates: Vec<String> = match role_tier(table, Role::CustomerId, PERSON_NAME_TIER) {
        Some(tier) if !roles.contains_key(&Role::CustomerId) => columns
            .iter()
            .filter(|c| free(&roles, c) && tier.contains(&normalise_header(c).as_str()))
            .cloned()
            .collect(),
        _ => vec![],
    };
    let mut to_sample: Vec<String> = name_candidates.clone();
    if !score_roles.is_empty() {
        to_sample.extend(columns.iter().filter(|c| free(&roles, c)).cloned());
    }
    to_sample.sort();
    to_sample.dedup();
    let values = if to_sample.is_empty() {
        BTreeMap::new()
    } else {
        sample(&to_sample)?
    };
    let values_of = |c: &str| values.get(c).map_or(&[][..], Vec::as_slice);
    let is_emails = |c: &str| mostly(values_of(c), |v| v.contains('@'));
    if !name_candidates.is_empty() {
        let emails: Vec<String> = name_candidates
            .iter()
            .filter(|c| is_emails(c))
            .cloned()
            .collect();
        match emails.as_slice() {
            [one] => {
                roles.insert(Role::CustomerId, one.clone());
            }
            [] => {
                return Err(Error::NameAsCustomerId {
                    table: table.name().into(),
                    columns: name_candidates.clone(),
                    examples: name_candidates
                        .iter()
                        .flat_map(|c| values_of(c).iter().take(2).cloned())
                        .take(3)
                        .collect(),
                });
            }
            _ => return Err(ambiguous(Role::CustomerId, emails)),
        }
    }
    // Value-confirmed question headers, and the columns whose values look like the answers.
    let mut score_hints: BTreeMap<Role, Vec<String>> = BTreeMap::new();
    for &role in &score_roles {
        let questions: Vec<&String> = columns
            .iter()
            .filter(|c| free(&roles, c) && is_score_question(role, &normalise_header(c)))
            .collect();
        let confirmed: Vec<String> = questions
            .iter()
            .filter(|c| looks_like_scores(role, values_of(c), csat_scale))
            .map(|c| (*c).clone())
            .collect();
        match confirmed.as_slice() {
            [one] => {
                roles.insert(role, one.clone());
            }
            [] => {
                let hints: Vec<String> = columns
                    .iter()
                    .filter(|c| free(&roles, c))
                    .filter(|c| {
                        questions.contains(c) || looks_like_scores(role, values_of(c), csat_scale)
                    })
                    .cloned()
                    .collect();
                if !hints.is_empty() {
                    score_hints.insert(role, hints);
                }
            }
            _ => return Err(ambiguous(role, confirmed)),
        }
    }

    // The amount can be derived from quantity × unit price (retail line items).
    let amount_derivable =
        roles.contains_key(&Role::Quantity) && roles.contains_key(&Role::UnitPrice);
    for &role in table.roles() {
        let required = role.is_required(table)
            || (role == Role::Amount && table == TableKind::Transactions && !amount_derivable);
        if required && !roles.contains_key(&role) {
            let looked_for: Vec<&str> = role
                .aliases(table)
                .iter()
                .flat_map(|t| t.iter().copied())
                .take(8)
                .collect();
            return Err(Error::MissingColumn {
                table: table.name().into(),
                role: role.describe().into(),
                looked_for: format!(
                    "{}, ... (or set `{}`)",
                    looked_for.join(", "),
                    role.setting()
                ),
                columns: list(),
            });
        }
    }

    // The roles' other candidates, best tier first (a score question header after the tiers).
    let mut alternatives = score_hints;
    for (&role, column) in &roles {
        if chosen.contains(&role) {
            continue;
        }
        let mut others: Vec<(usize, &String)> = columns
            .iter()
            .filter(|c| *c != column && free(&roles, c))
            .filter_map(|c| Some((candidate_rank(table, role, &normalise_header(c))?, c)))
            .collect();
        // Stable: columns of one rank stay in file order.
        others.sort_by_key(|&(rank, _)| rank);
        let others: Vec<String> = others.into_iter().map(|(_, c)| c.clone()).collect();
        if !others.is_empty() {
            alternatives.insert(role, others);
        }
    }
    let dimensions = columns
        .iter()
        .filter(|c| free(&roles, c))
        .cloned()
        .collect();
    Ok(ResolvedColumns {
        roles,
        dimensions,
        alternatives,
    })
}

/// How well a normalised header fits `role`: its alias tier, or after the tiers for a score
/// question; `None` when it does not fit.
fn candidate_rank(table: TableKind, role: Role, header: &str) -> Option<usize> {
    let tiers = role.aliases(table);
    tiers
        .iter()
        .position(|tier| tier.contains(&header))
        .or_else(|| is_score_question(role, header).then_some(tiers.len()))
}

/// One tier of a role's aliases.
fn role_tier(table: TableKind, role: Role, tier: usize) -> Option<&'static [&'static str]> {
    role.aliases(table).get(tier).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn uci_online_retail_layout() {
        let c = cols(&[
            "InvoiceNo",
            "StockCode",
            "Description",
            "Quantity",
            "InvoiceDate",
            "UnitPrice",
            "CustomerID",
            "Country",
        ]);
        let r = resolve_columns(TableKind::Transactions, &c, &ColumnMapping::default()).unwrap();
        assert_eq!(r.column(Role::CustomerId), Some("CustomerID"));
        assert_eq!(r.column(Role::OrderId), Some("InvoiceNo"));
        assert_eq!(r.column(Role::Date), Some("InvoiceDate"));
        assert_eq!(r.column(Role::Quantity), Some("Quantity"));
        assert_eq!(r.column(Role::UnitPrice), Some("UnitPrice"));
        assert_eq!(r.column(Role::Amount), None);
        assert_eq!(r.dimensions, cols(&["StockCode", "Description", "Country"]));
    }

    #[test]
    fn shopify_orders_prefer_total_and_email() {
        let c = cols(&[
            "Name",
            "Email",
            "Created at",
            "Subtotal",
            "Total",
            "Currency",
            "Lineitem quantity",
        ]);
        let r = resolve_columns(TableKind::Transactions, &c, &ColumnMapping::default()).unwrap();
        assert_eq!(r.column(Role::CustomerId), Some("Email"));
        assert_eq!(r.column(Role::Amount), Some("Total"));
        assert_eq!(r.column(Role::OrderId), Some("Name"));
        assert_eq!(r.column(Role::Date), Some("Created at"));
    }

    #[test]
    fn stripe_charges_prefer_id_over_email() {
        let c = cols(&[
            "id",
            "Created (UTC)",
            "Amount",
            "Amount Refunded",
            "Currency",
            "Customer ID",
            "Customer Email",
        ]);
        let r = resolve_columns(TableKind::Transactions, &c, &ColumnMapping::default()).unwrap();
        assert_eq!(r.column(Role::CustomerId), Some("Customer ID"));
        assert_eq!(r.column(Role::Date), Some("Created (UTC)"));
        assert_eq!(r.column(Role::Amount), Some("Amount"));
    }

    #[test]
    fn ambiguity_is_refused_with_candidates() {
        let c = cols(&[
            "Deal ID",
            "Close Date",
            "Amount",
            "Contact ID",
            "Account ID",
        ]);
        let err =
            resolve_columns(TableKind::Transactions, &c, &ColumnMapping::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("Contact ID, Account ID"), "{msg}");
        assert!(msg.contains("customer_col"), "{msg}");
        // The explicit mapping resolves it.
        let m = ColumnMapping::default().with(Role::CustomerId, "Contact ID");
        let r = resolve_columns(TableKind::Transactions, &c, &m).unwrap();
        assert_eq!(r.column(Role::CustomerId), Some("Contact ID"));
        assert_eq!(r.dimensions, cols(&["Account ID"]));
        // An explicit choice has no alternatives to report.
        assert!(r.alternatives.is_empty());
    }

    /// A sampler answering from fixed values.
    fn values(
        v: &[(&str, &[&str])],
    ) -> impl FnMut(&[String]) -> Result<BTreeMap<String, Vec<String>>> + use<> {
        let all: BTreeMap<String, Vec<String>> = v
            .iter()
            .map(|(c, vs)| (c.to_string(), vs.iter().map(|s| s.to_string()).collect()))
            .collect();
        move |names| {
            Ok(all
                .iter()
                .filter(|(c, _)| names.contains(c))
                .map(|(c, vs)| (c.clone(), vs.clone()))
                .collect())
        }
    }

    #[test]
    fn names_are_never_silently_the_customer_id() {
        // Issue 18, item 5: HubSpot deals name the contact and the company, which people share.
        let c = cols(&[
            "Deal ID",
            "Close Date",
            "Amount",
            "Associated Contact",
            "Associated Company",
        ]);
        let err =
            resolve_columns(TableKind::Transactions, &c, &ColumnMapping::default()).unwrap_err();
        assert!(matches!(err, Error::NameAsCustomerId { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("\"Associated Contact\", \"Associated Company\""),
            "{msg}"
        );
        assert!(msg.contains("customer_col"), "{msg}");
        // Named explicitly, a name column is the user's choice.
        let m = ColumnMapping::default().with(Role::CustomerId, "Associated Contact");
        let r = resolve_columns(TableKind::Transactions, &c, &m).unwrap();
        assert_eq!(r.column(Role::CustomerId), Some("Associated Contact"));
        // Values settle it too: names are refused with examples, e-mails are used.
        let c = cols(&["Ticket ID", "Requester", "Via", "Created at"]);
        let mut names = values(&[("Requester", &["Ann Lee", "Bob Ray", "Ann Lee"])]);
        let err = resolve_columns_with(
            TableKind::Interactions,
            &c,
            &ColumnMapping::default(),
            5,
            &mut names,
        )
        .unwrap_err();
        assert!(err.to_string().contains("\"Ann Lee\""), "{err}");
    }

    #[test]
    fn ids_beat_emails_beat_names() {
        // Zendesk: the requester's name, external id, e-mail and Zendesk's own id.
        let c = cols(&[
            "Ticket ID",
            "Requester",
            "Requester id",
            "Requester external id",
            "Requester email",
            "Satisfaction",
            "Created at",
        ]);
        let r = resolve_columns(TableKind::Interactions, &c, &ColumnMapping::default()).unwrap();
        assert_eq!(r.column(Role::CustomerId), Some("Requester external id"));
        assert_eq!(
            r.alternatives(Role::CustomerId),
            cols(&["Requester id", "Requester email", "Requester"])
        );
        // Without the ids, the e-mail; the name is only an alternative.
        let c = cols(&["Requester", "Requester email", "Created at"]);
        let r = resolve_columns(TableKind::Interactions, &c, &ColumnMapping::default()).unwrap();
        assert_eq!(r.column(Role::CustomerId), Some("Requester email"));
        assert_eq!(r.alternatives(Role::CustomerId), cols(&["Requester"]));
        assert!(r.dimensions.contains(&"Requester".to_string()));
    }

    #[test]
    fn question_headers_are_scores_when_the_answers_read_as_scores() {
        let nps = "How likely are you to recommend Acme to a friend or colleague?";
        let csat = "How satisfied were you with our support?";
        let c = cols(&[
            "Respondent email",
            "Submitted at",
            nps,
            "What is the main reason for your score?",
            csat,
            "Satisfaction comment",
        ]);
        let mut v = values(&[
            (
                nps,
                &["10 - Extremely likely", "7", "0 - Not at all likely"],
            ),
            ("What is the main reason for your score?", &["price", "9"]),
            (csat, &["Very satisfied", "Neutral"]),
            ("Satisfaction comment", &["Good", "Bad"]),
        ]);
        let m = ColumnMapping::default().with(Role::CustomerId, "Respondent email");
        let r = resolve_columns_with(TableKind::Interactions, &c, &m, 5, &mut v).unwrap();
        assert_eq!(r.column(Role::Nps), Some(nps));
        assert_eq!(r.column(Role::Csat), Some(csat));
        assert_eq!(r.column(Role::Date), Some("Submitted at"));
        // Free text under a question header is no score; numbered columns become hints.
        let c = cols(&["email", "date", nps, "Q2", "Ticket ID"]);
        let mut v = values(&[
            (nps, &["because", "it is good"]),
            ("Q2", &["9", "10", "3", "7"]),
            ("Ticket ID", &["101", "102"]),
        ]);
        let r = resolve_columns_with(
            TableKind::Interactions,
            &c,
            &ColumnMapping::default(),
            5,
            &mut v,
        )
        .unwrap();
        assert_eq!(r.column(Role::Nps), None);
        assert_eq!(r.alternatives(Role::Nps), cols(&[nps, "Q2"]));
        assert_eq!(r.column(Role::Csat), None);
        // Header-only detection never takes a question header.
        let r = resolve_columns(TableKind::Interactions, &c, &ColumnMapping::default()).unwrap();
        assert_eq!(r.column(Role::Nps), None);
    }

    #[test]
    fn missing_and_unknown_columns() {
        let c = cols(&["who", "when", "amount"]);
        let err =
            resolve_columns(TableKind::Transactions, &c, &ColumnMapping::default()).unwrap_err();
        assert!(matches!(err, Error::MissingColumn { .. }), "{err}");
        let m = ColumnMapping::default().with(Role::CustomerId, "nope");
        let err = resolve_columns(TableKind::Transactions, &c, &m).unwrap_err();
        assert!(err.to_string().contains("\"nope\""), "{err}");
    }

    #[test]
    fn zendesk_satisfaction_and_interactions() {
        // `Requester` is a name column, used because it holds e-mails (testdata/formats).
        let c = cols(&["Ticket ID", "Requester", "Satisfaction", "Via", "Rated at"]);
        let mut v = values(&[("Requester", &["ann@example.com", "bob@example.com"])]);
        let r = resolve_columns_with(
            TableKind::Interactions,
            &c,
            &ColumnMapping::default(),
            5,
            &mut v,
        )
        .unwrap();
        assert_eq!(r.column(Role::CustomerId), Some("Requester"));
        assert_eq!(r.column(Role::Csat), Some("Satisfaction"));
        assert_eq!(r.column(Role::Channel), Some("Via"));
        assert_eq!(r.column(Role::Date), Some("Rated at"));
    }
}
