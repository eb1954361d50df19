//! Column roles and their detection from the header names that CRM, shop and survey exports use.
//!
//! Each role has aliases in ranked tiers (tier 0 is the canonical name). The best-ranked match
//! wins; two columns matching in the same best tier are ambiguous and detection refuses to guess.
//! Headers are compared after lowercasing and dropping everything but letters and digits, so
//! `Customer ID`, `customer_id` and `CustomerID` are the same name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

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

    /// Header aliases by tier for this role in this table (normalised: lowercase letters and digits).
    fn aliases(self, table: TableKind) -> &'static [&'static [&'static str]] {
        match (self, table) {
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
                    "customeremail",
                    "requester",
                    "requesteremail",
                    "contactemail",
                    "associatedcontact",
                    "associatedcompany",
                    "user",
                    "account",
                    "accountname",
                    "billingemail",
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedColumns {
    /// Column by role.
    pub roles: BTreeMap<Role, String>,
    /// The remaining columns, kept as segment dimensions (`--by`).
    pub dimensions: Vec<String>,
}

impl ResolvedColumns {
    /// The column that plays `role`, if any.
    pub fn column(&self, role: Role) -> Option<&str> {
        self.roles.get(&role).map(String::as_str)
    }
}

/// Resolves every role of `table` among `columns`, honouring the explicit `mapping` first.
///
/// # Errors
/// [`Error::UnknownColumn`] for a mapped column the file lacks, [`Error::AmbiguousColumn`] when two
/// columns tie for a role, [`Error::MissingColumn`] when a required role has no column.
pub fn resolve_columns(
    table: TableKind,
    columns: &[String],
    mapping: &ColumnMapping,
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
    let taken = |roles: &BTreeMap<Role, String>, c: &str| roles.values().any(|v| v == c);
    for &role in table.roles() {
        if roles.contains_key(&role) {
            continue;
        }
        let mut found: Option<Vec<&String>> = None;
        for tier in role.aliases(table) {
            let matches: Vec<&String> = columns
                .iter()
                .filter(|c| !taken(&roles, c) && !mapping.ignore.contains(c))
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
                return Err(Error::AmbiguousColumn {
                    table: table.name().into(),
                    role: role.describe().into(),
                    candidates: many.iter().map(|s| (*s).clone()).collect(),
                    setting: role.setting().into(),
                });
            }
            None => {}
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
    let dimensions = columns
        .iter()
        .filter(|c| !taken(&roles, c) && !mapping.ignore.contains(c) && !c.starts_with("__"))
        .cloned()
        .collect();
    Ok(ResolvedColumns { roles, dimensions })
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
            "Associated Contact",
            "Associated Company",
        ]);
        let err =
            resolve_columns(TableKind::Transactions, &c, &ColumnMapping::default()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("Associated Contact, Associated Company"),
            "{msg}"
        );
        assert!(msg.contains("customer_col"), "{msg}");
        // The explicit mapping resolves it.
        let m = ColumnMapping::default().with(Role::CustomerId, "Associated Contact");
        let r = resolve_columns(TableKind::Transactions, &c, &m).unwrap();
        assert_eq!(r.column(Role::CustomerId), Some("Associated Contact"));
        assert_eq!(r.dimensions, cols(&["Associated Company"]));
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
        let c = cols(&["Ticket ID", "Requester", "Satisfaction", "Via", "Rated at"]);
        let r = resolve_columns(TableKind::Interactions, &c, &ColumnMapping::default()).unwrap();
        assert_eq!(r.column(Role::CustomerId), Some("Requester"));
        assert_eq!(r.column(Role::Csat), Some("Satisfaction"));
        assert_eq!(r.column(Role::Channel), Some("Via"));
        assert_eq!(r.column(Role::Date), Some("Rated at"));
    }
}
