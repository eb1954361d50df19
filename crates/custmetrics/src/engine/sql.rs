//! The stage-1 SQL: one `SELECT` per result table, written from a [`Stage1Plan`] in one of five
//! dialects. The queries repeat the local reader's rules step by step (blank rows, excluded
//! statuses, rejections in the reader's order, repeated rows, cancellation invoices, refunds,
//! refunds without a purchase, order lines merged, amounts to millionths rounded half to even per
//! order); each step is a CTE named after it, so that the SQL reads as the rules do.

use std::fmt::Write as _;

use super::{Dialect, PlannedTable, Stage1Plan};
use crate::io::schema::{Role, TableKind};
use crate::io::status::{BUILTIN_STATUSES, PurchaseStatus, normalise_status};
use crate::{Error, Result};

/// The result tables, in the order they are printed and read back.
pub(crate) const RESULT_TABLES: [&str; 5] =
    ["plan", "purchases", "interactions", "survey", "accounting"];

/// The generated SQL of stage 1.
#[derive(Debug, Clone)]
pub struct Stage1Sql {
    /// What the SQL was written from.
    pub plan: Stage1Plan,
    /// `(result table, SELECT statement)` pairs: `plan` (the plan as JSON, so that the results
    /// describe themselves), `purchases`, `interactions`, `survey` and `accounting`, those that
    /// apply.
    pub queries: Vec<(String, String)>,
}

impl Stage1Sql {
    /// The queries as one script: each preceded by a `-- custmetrics: NAME` line and ended by
    /// `;`, so that a runner can split it and export each result as `NAME.parquet` (or `.csv`).
    pub fn script(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "-- custmetrics {} stage 1, {} dialect. Export each result below as NAME.parquet (or NAME.csv)\n-- into one directory, then: custmetrics summarize --from-results DIR --out STORE [-c customers]",
            self.plan.custmetrics_version,
            self.plan.dialect.name()
        );
        for (name, sql) in &self.queries {
            let _ = writeln!(out, "\n-- custmetrics: {name}\n{sql};");
        }
        out
    }
}

/// Writes stage 1 of `plan` as SQL.
///
/// # Errors
/// [`Error::Engine`] when the plan has no table.
pub fn stage1_sql(plan: &Stage1Plan) -> Result<Stage1Sql> {
    if plan.transactions.is_none() && plan.interactions.is_none() {
        return Err(Error::Engine {
            message: "nothing to summarise: give a transactions or an interactions relation".into(),
        });
    }
    let q = Sql(plan.dialect);
    let json = serde_json::to_string(plan).map_err(|e| Error::Engine {
        message: format!("cannot write the plan: {e}"),
    })?;
    let mut queries = vec![(
        "plan".to_string(),
        format!("SELECT {} AS {}", q.lit(&json), q.ident("plan")),
    )];
    let mut accounting = Vec::new();
    if let Some(t) = &plan.transactions {
        let tx = Transactions::new(&q, t);
        queries.push(("purchases".into(), tx.purchases()));
        accounting.push(tx.accounting());
    }
    if let Some(t) = &plan.interactions {
        let ix = Interactions::new(&q, t);
        queries.push(("interactions".into(), ix.interactions()));
        queries.push(("survey".into(), ix.survey()));
        accounting.push(ix.accounting());
    }
    queries.push(("accounting".into(), accounting.join("\nUNION ALL\n")));
    Ok(Stage1Sql {
        plan: plan.clone(),
        queries,
    })
}

/// The dialect's spelling of the few things the dialects disagree on.
struct Sql(Dialect);

/// A plain ISO date, alone or followed by a time of day: what every engine casts to DATE alike.
const ISO_DATE: &str =
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)?)?$";
/// Whole-number survey answers the SQL reads itself (`9`, `10.0`); others go back to the local
/// parser.
const WHOLE: &str = "^[0-9]{1,9}([.]0+)?$";

impl Sql {
    fn text(&self) -> &'static str {
        match self.0 {
            Dialect::DuckDb | Dialect::Snowflake => "VARCHAR",
            Dialect::Postgres => "TEXT",
            Dialect::Spark | Dialect::BigQuery => "STRING",
        }
    }

    /// Exact decimals with nine places: amounts are summed exactly, then rounded to millionths.
    fn decimal(&self) -> &'static str {
        match self.0 {
            Dialect::DuckDb | Dialect::Spark => "DECIMAL(38, 9)",
            Dialect::Postgres => "NUMERIC(38, 9)",
            Dialect::BigQuery => "NUMERIC",
            Dialect::Snowflake => "NUMBER(38, 9)",
        }
    }

    fn ident(&self, name: &str) -> String {
        match self.0 {
            Dialect::Spark | Dialect::BigQuery => format!("`{}`", name.replace('`', "``")),
            _ => format!("\"{}\"", name.replace('"', "\"\"")),
        }
    }

    fn lit(&self, value: &str) -> String {
        match self.0 {
            Dialect::Spark | Dialect::BigQuery => {
                format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
            }
            Dialect::Snowflake => {
                format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
            }
            Dialect::DuckDb | Dialect::Postgres => format!("'{}'", value.replace('\'', "''")),
        }
    }

    fn null_text(&self) -> String {
        format!("CAST(NULL AS {})", self.text())
    }

    /// `expr` matches `pattern` (anchored by the pattern itself).
    fn matches(&self, expr: &str, pattern: &str) -> String {
        let p = self.lit(pattern);
        match self.0 {
            Dialect::DuckDb => format!("regexp_matches({expr}, {p})"),
            Dialect::Postgres => format!("({expr} ~ {p})"),
            Dialect::Spark => format!("({expr} RLIKE {p})"),
            Dialect::BigQuery => format!("REGEXP_CONTAINS({expr}, {p})"),
            Dialect::Snowflake => format!("REGEXP_LIKE({expr}, {p})"),
        }
    }

    /// `expr` cast to `ty` where it matches `guard`, else NULL. Where the dialect has a
    /// non-failing cast it is used too (an impossible calendar date such as 2024-02-30 is then a
    /// value to look at, not an error); PostgreSQL has none and stops on one.
    fn parse(&self, expr: &str, guard: &str, ty: &str) -> String {
        let cast = match self.0 {
            Dialect::DuckDb | Dialect::Spark | Dialect::Snowflake => {
                format!("TRY_CAST({expr} AS {ty})")
            }
            Dialect::BigQuery => format!("SAFE_CAST({expr} AS {ty})"),
            Dialect::Postgres => format!("CAST({expr} AS {ty})"),
        };
        format!("CASE WHEN {} THEN {cast} END", self.matches(expr, guard))
    }

    /// Lowercase letters and digits only: the local reader's status normalisation.
    fn normalised(&self, expr: &str) -> String {
        match self.0 {
            Dialect::DuckDb => {
                format!("regexp_replace(lower({expr}), '[^\\p{{L}}\\p{{N}}]', '', 'g')")
            }
            Dialect::Postgres => format!("regexp_replace(lower({expr}), '[^[:alnum:]]', '', 'g')"),
            Dialect::Spark | Dialect::BigQuery => {
                format!("regexp_replace(lower({expr}), '[^\\\\p{{L}}\\\\p{{N}}]', '')")
            }
            Dialect::Snowflake => format!("regexp_replace(lower({expr}), '[^[:alnum:]]', '')"),
        }
    }

    /// A string column's minimum by code points, as the local reader orders values.
    fn min_text(&self, expr: &str) -> String {
        match self.0 {
            Dialect::Postgres => format!("MIN({expr} COLLATE \"C\")"),
            _ => format!("MIN({expr})"),
        }
    }

    /// A source column as trimmed text, NULL when blank.
    fn value(&self, column: &str) -> String {
        format!(
            "NULLIF(TRIM(CAST({} AS {})), '')",
            self.ident(column),
            self.text()
        )
    }

    /// A source column as text, untrimmed (for the repeated-row rule, which compares as read).
    fn raw(&self, column: &str) -> String {
        format!("CAST({} AS {})", self.ident(column), self.text())
    }

    fn date_literal(&self, iso: &str) -> String {
        format!("DATE '{iso}'")
    }
}

/// The rows of `relation` with at least one value (blank rows are not rows).
fn source_rows(q: &Sql, t: &PlannedTable, select: &[String]) -> String {
    let all: Vec<String> = t
        .input
        .columns
        .iter()
        .filter(|c| Some(*c) != t.input.file_column.as_ref())
        .map(|c| format!("{} IS NOT NULL", q.value(c)))
        .collect();
    let file = match &t.input.file_column {
        Some(f) => q.raw(f),
        None => q.lit(""),
    };
    let mut columns = vec![format!("{file} AS f")];
    columns.extend(select.iter().cloned());
    format!(
        "  SELECT\n    {}\n  FROM {}\n  WHERE {}",
        columns.join(",\n    "),
        t.input.relation,
        if all.is_empty() {
            "1 = 1".to_string()
        } else {
            all.join(" OR ")
        }
    )
}

/// The date checks of a row, in the reader's order, as `WHEN` branches.
fn date_branches(q: &Sql) -> String {
    format!(
        "      WHEN dtext IS NULL THEN 'missing_date'\n      WHEN day IS NULL THEN '?date'\n      WHEN day < {} OR day > {} THEN 'date_out_of_range'\n",
        q.date_literal("1900-01-01"),
        q.date_literal("2199-12-31")
    )
}

struct Transactions<'a> {
    q: &'a Sql,
    t: &'a PlannedTable,
    /// (result name, source column) of each dimension.
    dims: Vec<(String, String)>,
    order: bool,
    status: bool,
    refunded: bool,
    cost: bool,
}

impl<'a> Transactions<'a> {
    fn new(q: &'a Sql, t: &'a PlannedTable) -> Transactions<'a> {
        let has = |r: Role| t.columns.column(r).is_some();
        Transactions {
            q,
            t,
            dims: t.dimension_columns(TableKind::Transactions),
            order: has(Role::OrderId),
            status: has(Role::Status),
            refunded: has(Role::RefundedAmount),
            cost: has(Role::Cost),
        }
    }

    fn role(&self, r: Role) -> String {
        self.q.value(self.t.columns.column(r).unwrap_or_default())
    }

    /// The status's meaning (`paid`, `refunded`, ..., `unknown`) from its normalised value:
    /// the user's statuses first, then the built-in list, then WooCommerce's `wc-` names.
    fn status_meaning(&self) -> String {
        let q = self.q;
        let mut whens = String::new();
        for (value, status) in &self.t.statuses {
            let _ = writeln!(
                whens,
                "        WHEN sn = {} THEN '{}'",
                q.lit(&normalise_status(value)),
                status.key()
            );
        }
        let list = |values: &[&str]| {
            values
                .iter()
                .map(|v| q.lit(v))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (status, values) in BUILTIN_STATUSES {
            let _ = writeln!(
                whens,
                "        WHEN sn IN ({}) THEN '{}'",
                list(values),
                status.key()
            );
        }
        for (status, values) in BUILTIN_STATUSES {
            let _ = writeln!(
                whens,
                "        WHEN sn LIKE 'wc%' AND SUBSTR(sn, 3) IN ({}) THEN '{}'",
                list(values),
                status.key()
            );
        }
        format!("CASE\n        WHEN sn IS NULL THEN NULL\n{whens}        ELSE 'unknown' END")
    }

    /// Amount text as a decimal: plain numbers only (`-12.50`), with the decimal separator
    /// given; the rest go back to the local parser.
    fn number(&self, expr: &str) -> String {
        let q = self.q;
        match self.t.decimal {
            Some(',') => q.parse(
                &format!("REPLACE({expr}, ',', '.')"),
                "^-?[0-9]+([.][0-9]+)?$",
                q.decimal(),
            ),
            _ => q.parse(expr, "^-?[0-9]+([.][0-9]+)?$", q.decimal()),
        }
    }

    /// Every CTE up to the order lines used, shared by the purchases and the accounting.
    fn steps(&self) -> String {
        let q = self.q;
        let dim_values: Vec<String> = self
            .dims
            .iter()
            .enumerate()
            .map(|(i, (_, c))| format!("{} AS d{i}", q.value(c)))
            .collect();
        let mut select = vec![
            format!("{} AS cid", self.role(Role::CustomerId)),
            format!("{} AS dtext", self.role(Role::Date)),
            format!("{} AS atext", self.role(Role::Amount)),
        ];
        let null = q.null_text();
        let opt = |on: bool, r: Role| if on { self.role(r) } else { null.clone() };
        select.push(format!("{} AS oid", opt(self.order, Role::OrderId)));
        select.push(format!("{} AS stext", opt(self.status, Role::Status)));
        select.push(format!(
            "{} AS rtext",
            opt(self.refunded, Role::RefundedAmount)
        ));
        select.push(format!("{} AS ctext", opt(self.cost, Role::Cost)));
        select.extend(dim_values);
        // Every role and dimension column as read, for the repeated-row rule.
        let mut raw_columns: Vec<&str> =
            self.t.columns.roles.values().map(String::as_str).collect();
        raw_columns.extend(self.t.columns.dimensions.iter().map(String::as_str));
        raw_columns.sort_unstable();
        raw_columns.dedup();
        let raws: Vec<String> = raw_columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} AS r{i}", q.raw(c)))
            .collect();
        if self.order {
            select.extend(raws);
        }
        let d: Vec<String> = (0..self.dims.len()).map(|i| format!("d{i}")).collect();
        let r: Vec<String> = (0..raw_columns.len()).map(|i| format!("r{i}")).collect();
        let day = q.parse(
            "SUBSTR(dtext, 1, 10)",
            "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
            "DATE",
        );
        let day = format!("CASE WHEN {} THEN {day} END", q.matches("dtext", ISO_DATE));
        let status_reject = if self.status {
            "      WHEN stext IS NULL THEN 'missing_status'\n"
        } else {
            ""
        };
        let mut number_rejects = String::from(
            "      WHEN atext IS NULL THEN 'missing_amount'\n      WHEN amount IS NULL THEN '?amount'\n",
        );
        if self.refunded {
            number_rejects
                .push_str("      WHEN rtext IS NOT NULL AND refunded IS NULL THEN '?refunded'\n");
        }
        if self.cost {
            number_rejects.push_str("      WHEN ctext IS NOT NULL AND cost IS NULL THEN '?cost'\n");
        }
        let repeated = if self.order {
            format!(
                "CASE WHEN reason IS NULL AND excluded IS NULL AND ROW_NUMBER() OVER (PARTITION BY f, {} ORDER BY f) > 1 THEN 'duplicate_row' ELSE reason END",
                r.join(", ")
            )
        } else {
            "reason".to_string()
        };
        let cancellation = if self.order {
            format!(
                "CASE WHEN oid IS NOT NULL AND {} THEN -ABS(amount) ELSE amount END",
                q.matches("oid", "^C[0-9]")
            )
        } else {
            "amount".to_string()
        };
        let refund = match (self.refunded, self.status) {
            (true, _) => {
                "CASE WHEN a1 < 0 THEN a1 WHEN refunded IS NOT NULL THEN a1 - ABS(refunded) WHEN st = 'refunded' THEN a1 - a1 ELSE a1 END"
            }
            (false, true) => {
                "CASE WHEN a1 < 0 THEN a1 WHEN st = 'refunded' THEN a1 - a1 ELSE a1 END"
            }
            (false, false) => "a1",
        };
        // Lines repeated in a later file (same order, customer, day and amount).
        let later_file = if self.order && self.t.input.file_column.is_some() {
            "CASE WHEN MIN(f) OVER (PARTITION BY oid, cid, day, amt) < f THEN 1 ELSE 0 END"
        } else {
            "0"
        };
        let dims_list = if d.is_empty() {
            String::new()
        } else {
            format!(", {}", d.join(", "))
        };
        format!(
            "src AS (\n{src}\n),\nparsed AS (\n  SELECT src.*,\n    {day} AS day,\n    {amount} AS amount,\n    {refunded} AS refunded,\n    {cost} AS cost,\n    {sn} AS sn\n  FROM src\n),\nmeant AS (\n  SELECT parsed.*,\n    {meaning} AS st\n  FROM parsed\n),\njudged AS (\n  SELECT meant.*,\n    CASE st WHEN 'pending' THEN 'pending' WHEN 'failed' THEN 'failed' WHEN 'voided' THEN 'voided' WHEN 'test' THEN 'test_order' END AS excluded,\n    CASE\n      WHEN st IN ('pending', 'failed', 'voided', 'test') THEN NULL\n{status_reject}      WHEN cid IS NULL THEN 'missing_customer_id'\n{dates}{number_rejects}    END AS reason\n  FROM meant\n),\nchecked AS (\n  SELECT judged.*,\n    {repeated} AS why\n  FROM judged\n),\nlines AS (\n  SELECT f, cid, oid, day, st, refunded, {cancellation} AS a1{dims_list}\n  FROM checked\n  WHERE why IS NULL AND excluded IS NULL\n),\nadjusted AS (\n  SELECT lines.*, {refund} AS amt\n  FROM lines\n),\nfiled AS (\n  SELECT adjusted.*, {later_file} AS repeated\n  FROM adjusted\n),\nbought AS (\n  SELECT filed.*, MAX(CASE WHEN amt >= 0 THEN 1 ELSE 0 END) OVER (PARTITION BY cid) AS has_purchase\n  FROM filed\n  WHERE repeated = 0\n),\nused AS (\n  SELECT * FROM bought WHERE amt >= 0 OR has_purchase = 1\n)",
            src = source_rows(q, self.t, &select),
            amount = self.number("atext"),
            refunded = if self.refunded {
                self.number("rtext")
            } else {
                format!("CAST(NULL AS {})", q.decimal())
            },
            cost = if self.cost {
                self.number("ctext")
            } else {
                format!("CAST(NULL AS {})", q.decimal())
            },
            sn = if self.status {
                q.normalised("stext")
            } else {
                null.clone()
            },
            meaning = if self.status {
                self.status_meaning()
            } else {
                null.clone()
            },
            dates = date_branches(q),
        )
    }

    /// One row per customer and day: purchases (orders with a net amount ≥ 0), net revenue in
    /// millionths (each order rounded half to even), each dimension's smallest value among the
    /// day's purchases.
    fn purchases(&self) -> String {
        let q = self.q;
        let d: Vec<String> = (0..self.dims.len()).map(|i| format!("d{i}")).collect();
        let min_d: Vec<String> = d.iter().map(|c| q.min_text(c)).collect();
        let dims_list = |prefix: &str| {
            if d.is_empty() {
                String::new()
            } else {
                format!("{prefix}{}", d.join(", "))
            }
        };
        let merged = if self.order {
            format!(
                "orders AS (\n  SELECT cid, MIN(day) AS day, SUM(amt) AS amt{}\n  FROM used WHERE oid IS NOT NULL\n  GROUP BY cid, oid\n  UNION ALL\n  SELECT cid, day, amt{}\n  FROM used WHERE oid IS NULL\n)",
                if min_d.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", {}",
                        min_d
                            .iter()
                            .zip(&d)
                            .map(|(m, c)| format!("{m} AS {c}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
                dims_list(", ")
            )
        } else {
            format!(
                "orders AS (\n  SELECT cid, day, amt{}\n  FROM used\n)",
                dims_list(", ")
            )
        };
        // Millionths, rounded half to even (the local reader's `to_micros`): floor, then up
        // above a half, and at exactly a half up only from an odd floor.
        let micros = "CASE WHEN m - fl > 0.5 THEN fl + 1 WHEN m - fl < 0.5 THEN fl ELSE fl + (fl - 2 * FLOOR(fl / 2)) END";
        let dim_out: Vec<String> = self
            .dims
            .iter()
            .enumerate()
            .map(|(i, (name, _))| {
                format!(
                    "{} AS {}",
                    q.min_text(&format!("CASE WHEN amt >= 0 THEN d{i} END")),
                    q.ident(&format!("dim_{name}"))
                )
            })
            .collect();
        format!(
            "WITH {steps},\n{merged},\nmillionths AS (\n  SELECT orders.*, amt * 1000000 AS m, FLOOR(amt * 1000000) AS fl\n  FROM orders\n)\nSELECT\n  cid AS {customer},\n  day AS {date},\n  CAST(SUM(CASE WHEN amt >= 0 THEN 1 ELSE 0 END) AS INTEGER) AS {orders},\n  CAST(SUM({micros}) AS BIGINT) AS {revenue}{dims}\nFROM millionths\nGROUP BY cid, day",
            steps = self.steps(),
            customer = q.ident("customer_id"),
            date = q.ident("date"),
            orders = q.ident("orders"),
            revenue = q.ident("revenue_micros"),
            dims = if dim_out.is_empty() {
                String::new()
            } else {
                format!(",\n  {}", dim_out.join(",\n  "))
            },
        )
    }

    /// Where every row went: read, rejected and excluded by reason, the values the SQL did not
    /// parse (for the local parser), the status values and their meaning, and the checks that
    /// make the assembly refuse.
    fn accounting(&self) -> String {
        let q = self.q;
        let t = q.lit("transactions");
        let text = q.text();
        let null = q.null_text();
        // Sums (never a bare literal: that would be a row per line), as BIGINT in every dialect.
        let total = |case: &str| format!("CAST(COALESCE(SUM({case}), 0) AS BIGINT)");
        let partial = total(if self.status && !self.refunded {
            "CASE WHEN st = 'partially_refunded' AND a1 >= 0 THEN 1 ELSE 0 END"
        } else {
            "0"
        });
        let continuation = total(if self.order {
            "CASE WHEN atext IS NULL AND oid IS NOT NULL AND priced = 1 THEN 1 ELSE 0 END"
        } else {
            "0"
        });
        let priced = if self.order {
            ", MAX(CASE WHEN atext IS NOT NULL THEN 1 ELSE 0 END) OVER (PARTITION BY oid) AS priced"
        } else {
            ""
        };
        let statuses = if self.status {
            format!(
                "\n  UNION ALL SELECT {t}, 'status', st, stext, COUNT(*) FROM meant WHERE stext IS NOT NULL GROUP BY st, stext"
            )
        } else {
            String::new()
        };
        format!(
            "SELECT * FROM (\n  WITH {steps},\n  priced AS (SELECT checked.*{priced} FROM checked)\n  SELECT {t} AS tbl, 'read' AS item, CAST('' AS {text}) AS label, {null} AS val, COUNT(*) AS n_rows FROM src\n  UNION ALL SELECT {t}, 'rejected', why, {null}, COUNT(*) FROM checked WHERE why IS NOT NULL AND why NOT LIKE '?%' GROUP BY why\n  UNION ALL SELECT {t}, 'unparsed', SUBSTR(why, 2), CASE why WHEN '?date' THEN dtext WHEN '?amount' THEN atext WHEN '?refunded' THEN rtext ELSE ctext END, COUNT(*) FROM checked WHERE why LIKE '?%' GROUP BY why, CASE why WHEN '?date' THEN dtext WHEN '?amount' THEN atext WHEN '?refunded' THEN rtext ELSE ctext END\n  UNION ALL SELECT {t}, 'excluded', excluded, {null}, COUNT(*) FROM checked WHERE excluded IS NOT NULL GROUP BY excluded\n  UNION ALL SELECT {t}, 'rejected', 'duplicate_row', {null}, COUNT(*) FROM filed WHERE repeated = 1\n  UNION ALL SELECT {t}, 'excluded', 'refund_without_purchase', {null}, COUNT(*) FROM bought WHERE amt < 0 AND has_purchase = 0\n  UNION ALL SELECT {t}, 'check', 'partial_refund_unknown', {null}, {partial} FROM lines\n  UNION ALL SELECT {t}, 'check', 'continuation', {null}, {continuation} FROM priced{statuses}\n) accounting_rows",
            steps = self.steps(),
        )
    }
}

struct Interactions<'a> {
    q: &'a Sql,
    t: &'a PlannedTable,
    dims: Vec<(String, String)>,
    nps: bool,
    csat: bool,
}

impl<'a> Interactions<'a> {
    fn new(q: &'a Sql, t: &'a PlannedTable) -> Interactions<'a> {
        Interactions {
            q,
            t,
            dims: t.dimension_columns(TableKind::Interactions),
            nps: t.columns.column(Role::Nps).is_some(),
            csat: t.columns.column(Role::Csat).is_some(),
        }
    }

    fn role(&self, r: Role) -> String {
        self.q.value(self.t.columns.column(r).unwrap_or_default())
    }

    fn steps(&self) -> String {
        let q = self.q;
        let null = q.null_text();
        let mut select = vec![
            format!("{} AS cid", self.role(Role::CustomerId)),
            format!("{} AS dtext", self.role(Role::Date)),
            format!(
                "{} AS ntext",
                if self.nps {
                    self.role(Role::Nps)
                } else {
                    null.clone()
                }
            ),
            format!(
                "{} AS ctext",
                if self.csat {
                    self.role(Role::Csat)
                } else {
                    null.clone()
                }
            ),
        ];
        select.extend(
            self.dims
                .iter()
                .enumerate()
                .map(|(i, (_, c))| format!("{} AS d{i}", q.value(c))),
        );
        let day = q.parse(
            "SUBSTR(dtext, 1, 10)",
            "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
            "DATE",
        );
        let day = format!("CASE WHEN {} THEN {day} END", q.matches("dtext", ISO_DATE));
        let whole = |e: &str| {
            format!(
                "CASE WHEN {} THEN CAST(CAST({e} AS {}) AS BIGINT) END",
                q.matches(e, WHOLE),
                q.decimal()
            )
        };
        let scale = self.t.csat_scale;
        format!(
            "src AS (\n{src}\n),\nparsed AS (\n  SELECT src.*, {day} AS day, {nw} AS nw, {cw} AS cw\n  FROM src\n),\nchecked AS (\n  SELECT parsed.*,\n    CASE\n      WHEN cid IS NULL THEN 'missing_customer_id'\n{dates}    END AS why\n  FROM parsed\n),\nused AS (\n  SELECT checked.*,\n    CASE WHEN nw BETWEEN 0 AND 10 THEN nw END AS nps,\n    CASE WHEN cw BETWEEN 1 AND {scale} THEN cw END AS csat\n  FROM checked WHERE why IS NULL\n)",
            src = source_rows(q, self.t, &select),
            nw = whole("ntext"),
            cw = whole("ctext"),
            dates = date_branches(q),
        )
    }

    fn dim_outputs(&self) -> (Vec<String>, Vec<String>) {
        let q = self.q;
        let select = self
            .dims
            .iter()
            .enumerate()
            .map(|(i, (name, _))| format!("d{i} AS {}", q.ident(&format!("dim_{name}"))))
            .collect();
        let group = (0..self.dims.len()).map(|i| format!("d{i}")).collect();
        (select, group)
    }

    /// One row per customer, day and dimension values, with the interactions' count.
    fn interactions(&self) -> String {
        let q = self.q;
        let (select, group) = self.dim_outputs();
        let tail = |v: &[String], sep: &str| {
            if v.is_empty() {
                String::new()
            } else {
                format!("{sep}{}", v.join(sep))
            }
        };
        format!(
            "WITH {}\nSELECT cid AS {}, day AS {}{}, COUNT(*) AS {}\nFROM used\nGROUP BY cid, day{}",
            self.steps(),
            q.ident("customer_id"),
            q.ident("date"),
            tail(&select, ", "),
            q.ident("interactions"),
            tail(&group, ", "),
        )
    }

    /// Answer counts per day, answer pair and dimension values (no customer).
    fn survey(&self) -> String {
        let q = self.q;
        let (select, group) = self.dim_outputs();
        let tail = |v: &[String]| {
            if v.is_empty() {
                String::new()
            } else {
                format!(", {}", v.join(", "))
            }
        };
        format!(
            "WITH {}\nSELECT day AS {}, nps AS {}, csat AS {}{}, COUNT(*) AS {}\nFROM used\nWHERE nps IS NOT NULL OR csat IS NOT NULL\nGROUP BY day, nps, csat{}",
            self.steps(),
            q.ident("date"),
            q.ident("nps"),
            q.ident("csat"),
            tail(&select),
            q.ident("answers"),
            tail(&group),
        )
    }

    fn accounting(&self) -> String {
        let q = self.q;
        let t = q.lit("interactions");
        let null = q.null_text();
        let text = q.text();
        let scale = self.t.csat_scale;
        let identifiers: String = self
            .t
            .input
            .identifiers
            .iter()
            .map(|c| {
                format!(
                    "\n  UNION ALL SELECT {t}, 'identifier', {}, CAST(COUNT(DISTINCT {v}) AS {text}), COUNT({v}) FROM src_all",
                    q.lit(c),
                    v = q.value(c)
                )
            })
            .collect();
        let src_all = if identifiers.is_empty() {
            String::new()
        } else {
            // The identifiers' values among the rows used.
            let ids: Vec<String> = self
                .t
                .input
                .identifiers
                .iter()
                .map(|c| q.ident(c))
                .collect();
            format!(
                ",\n  src_all AS (SELECT {} FROM {} WHERE {} IS NOT NULL AND {} IS NOT NULL)",
                ids.join(", "),
                self.t.input.relation,
                self.role(Role::CustomerId),
                self.role(Role::Date),
            )
        };
        format!(
            "SELECT * FROM (\n  WITH {steps}{src_all}\n  SELECT {t} AS tbl, 'read' AS item, CAST('' AS {text}) AS label, {null} AS val, COUNT(*) AS n_rows FROM src\n  UNION ALL SELECT {t}, 'rejected', why, {null}, COUNT(*) FROM checked WHERE why IS NOT NULL AND why NOT LIKE '?%' GROUP BY why\n  UNION ALL SELECT {t}, 'unparsed', 'date', dtext, COUNT(*) FROM checked WHERE why = '?date' GROUP BY dtext\n  UNION ALL SELECT {t}, 'answer_rejected', 'nps_out_of_range', {null}, COUNT(*) FROM used WHERE nw > 10\n  UNION ALL SELECT {t}, 'answer_rejected', 'csat_out_of_range', {null}, COUNT(*) FROM used WHERE cw < 1 OR cw > {scale}\n  UNION ALL SELECT {t}, 'unparsed', 'nps', ntext, COUNT(*) FROM used WHERE ntext IS NOT NULL AND nw IS NULL GROUP BY ntext\n  UNION ALL SELECT {t}, 'unparsed', 'csat', ctext, COUNT(*) FROM used WHERE ctext IS NOT NULL AND cw IS NULL GROUP BY ctext{identifiers}\n) accounting_rows",
            steps = self.steps(),
        )
    }
}

/// The meaning the local reader gives a status value (for checking the engine's).
pub(crate) fn local_status(
    value: &str,
    user: &std::collections::BTreeMap<String, PurchaseStatus>,
) -> Option<PurchaseStatus> {
    crate::io::status::StatusMap::new(user).get(value)
}
