//! Stage 1 on another engine: the SQL that a warehouse (DuckDB, PostgreSQL, Spark SQL, BigQuery,
//! Snowflake) runs to reduce the raw transactions and interactions to the summary store's day
//! tables, and the assembly of a [`SummaryStore`](crate::SummaryStore) from what it returns.
//!
//! The data flows: a [`Stage1Plan`] (the column roles, found from the relation's column names
//! with the same mapping rules as the local reader) → [`stage1_sql`] (one `SELECT` per result
//! table, in the chosen [`Dialect`]) → the engine runs them where the data lives → the small
//! results ([`EngineResults`]: days, answer counts, row accounting) come back as Parquet/CSV
//! exports, or Arrow batches from Spark Connect → [`crate::SummaryStore::write_from_engine`]
//! (crate::SummaryStore::write_from_engine) gives customers and dimension values their codes
//! and writes the store. Only the summary crosses the wire, never the rows.
//!
//! **Exact or refused.** The local reader understands more than SQL can say portably (sniffed
//! date formats, labelled survey answers, thousands separators, line items continuing an
//! order). The generated SQL parses only the plain forms (ISO dates, plain numbers, whole-number
//! scores) and sends every other distinct value back with its row count; the assembly then asks
//! the local parsers what each one is. A value the local reader would reject is counted under the
//! same reason; a value it would *read* (e.g. `1,234.50`, `9 - Very likely`) makes the assembly
//! refuse and name it, since the engine's result would differ from a local run. Status values
//! come back the same way and are checked against the local status table. The rules that depend
//! on row order locally are order-free here as well as there: a day's segment is the smallest
//! value among its purchases, and an order's the smallest among its lines.
//!
//! What the engines do not do: the customers table (one row per customer) is read by
//! custmetrics itself; quantity × unit price amounts and report footers are local only (refused
//! or not applicable); line keys are not computed (XXH3 is not an SQL function), so an engine
//! store is unkeyed and its updates treat transactions by date with `--overlap`.

mod assemble;
mod sql;

#[cfg(feature = "spark")]
pub mod spark;

pub use assemble::{EngineResults, read_results};
pub use sql::{Stage1Sql, stage1_sql};

use serde::{Deserialize, Serialize};

use crate::io::schema::{ResolvedColumns, Role, TableKind, resolve_columns};
use crate::io::{DatasetSpec, LoadOptions};
use crate::{Error, Result};

/// The SQL dialect to write stage 1 in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// DuckDB (embedded; also reads Parquet and CSV files directly).
    #[serde(rename = "duckdb")]
    DuckDb,
    /// PostgreSQL 12 or later.
    Postgres,
    /// Apache Spark SQL 3.4 or later (Databricks, EMR, Spark Connect).
    Spark,
    /// Google BigQuery (GoogleSQL).
    #[serde(rename = "bigquery")]
    BigQuery,
    /// Snowflake.
    Snowflake,
}

impl Dialect {
    /// Every dialect, in the order `--help` lists them.
    pub const ALL: [Dialect; 5] = [
        Dialect::DuckDb,
        Dialect::Postgres,
        Dialect::Spark,
        Dialect::BigQuery,
        Dialect::Snowflake,
    ];

    /// The dialect's name as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::DuckDb => "duckdb",
            Dialect::Postgres => "postgres",
            Dialect::Spark => "spark",
            Dialect::BigQuery => "bigquery",
            Dialect::Snowflake => "snowflake",
        }
    }

    /// Parses a dialect name (`duckdb`, `postgres`/`postgresql`, `spark`, `bigquery`,
    /// `snowflake`).
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for another name.
    pub fn from_name(name: &str) -> Result<Dialect> {
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "duckdb" => Dialect::DuckDb,
            "postgres" | "postgresql" | "pg" => Dialect::Postgres,
            "spark" | "sparksql" | "databricks" => Dialect::Spark,
            "bigquery" => Dialect::BigQuery,
            "snowflake" => Dialect::Snowflake,
            other => {
                return Err(Error::InvalidSetting {
                    setting: "dialect".into(),
                    message: format!(
                        "unknown SQL dialect {other:?}; one of duckdb, postgres, spark, bigquery, snowflake"
                    ),
                });
            }
        })
    }
}

/// One input relation of the engine: a table or view the SQL reads, and its columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineInput {
    /// The relation as SQL names it (`transactions`, `analytics.orders`), written into the
    /// query as given.
    pub relation: String,
    /// The relation's columns, in order (as the engine spells them).
    pub columns: Vec<String>,
    /// A column naming each row's source file, when the relation is several export files (e.g.
    /// DuckDB's `filename`, Spark's `_metadata.file_path`): order lines repeated in a later file
    /// (by this column's sort order) are then rejected as `duplicate_row`, as the local reader
    /// rejects lines repeated across files. Without it the relation is one file.
    #[serde(default)]
    pub file_column: Option<String>,
    /// Interactions columns that are identifiers (one value per interaction, such as a response
    /// id), not segments: left out of the results (they would make them one row per row).
    #[serde(default)]
    pub identifiers: Vec<String>,
}

/// What stage 1 on an engine reads: the relations and the load settings (mapping, statuses,
/// decimal separator, CSAT scale) that the local reader would use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage1Plan {
    /// The custmetrics version that wrote the plan.
    pub custmetrics_version: String,
    /// The dialect of the SQL.
    pub dialect: Dialect,
    /// The transactions relation and its resolved columns.
    pub transactions: Option<PlannedTable>,
    /// The interactions relation and its resolved columns.
    pub interactions: Option<PlannedTable>,
}

/// One planned relation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedTable {
    /// The relation.
    pub input: EngineInput,
    /// Column roles and segment dimensions, resolved as the local reader resolves a file's.
    pub columns: ResolvedColumns,
    /// The load settings as the store's manifest records them.
    pub settings: serde_json::Value,
    /// The decimal separator of amounts: `.` or `,`; `None` when not given (the SQL then reads
    /// point decimals, and refuses comma ones found in the results).
    pub decimal: Option<char>,
    /// The top of the CSAT scale.
    pub csat_scale: u8,
    /// The user's status values (`[transactions.statuses]`), beyond the built-in list.
    #[serde(default)]
    pub statuses: std::collections::BTreeMap<String, crate::io::PurchaseStatus>,
}

impl PlannedTable {
    /// The result columns `dim_<name>` of the table, by source column: the transactions'
    /// currency and dimensions; the interactions' channel, kind and dimensions without the
    /// identifiers.
    pub(crate) fn dimension_columns(&self, kind: TableKind) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let role = |r: Role| self.columns.column(r).map(str::to_string);
        match kind {
            TableKind::Transactions => {
                if let Some(c) = role(Role::Currency) {
                    out.push(("currency".to_string(), c));
                }
            }
            TableKind::Interactions => {
                for (name, r) in [("channel", Role::Channel), ("kind", Role::Kind)] {
                    if let Some(c) = role(r) {
                        out.push((name.to_string(), c));
                    }
                }
            }
            TableKind::Customers => {}
        }
        for d in &self.columns.dimensions {
            if !self.input.identifiers.contains(d) {
                out.push((d.clone(), d.clone()));
            }
        }
        out
    }
}

impl Stage1Plan {
    /// Plans stage 1 of `spec`'s transactions and interactions settings over the given
    /// relations: their columns get roles exactly as a file with those headers would (explicit
    /// mapping first, then the header aliases).
    ///
    /// # Errors
    /// The column errors of [`resolve_columns`]; [`Error::Engine`] for what the engines cannot
    /// do exactly (amounts as quantity × unit price, a non-ISO `--date-format`, an identifier
    /// or file column the relation lacks).
    pub fn new(
        dialect: Dialect,
        spec: &DatasetSpec,
        transactions: Option<EngineInput>,
        interactions: Option<EngineInput>,
    ) -> Result<Stage1Plan> {
        let plan = |kind: TableKind, input: EngineInput, options: &LoadOptions| {
            plan_table(kind, input, options)
        };
        Ok(Stage1Plan {
            custmetrics_version: env!("CARGO_PKG_VERSION").into(),
            dialect,
            transactions: transactions
                .map(|i| plan(TableKind::Transactions, i, &spec.transactions_options))
                .transpose()?,
            interactions: interactions
                .map(|i| plan(TableKind::Interactions, i, &spec.interactions_options))
                .transpose()?,
        })
    }
}

fn refuse(message: String) -> Error {
    Error::Engine { message }
}

fn plan_table(kind: TableKind, input: EngineInput, options: &LoadOptions) -> Result<PlannedTable> {
    let visible: Vec<String> = input
        .columns
        .iter()
        .filter(|c| Some(*c) != input.file_column.as_ref())
        .cloned()
        .collect();
    let columns = resolve_columns(kind, &visible, &options.mapping)?;
    if kind == TableKind::Transactions
        && (columns.column(Role::Quantity).is_some() || columns.column(Role::UnitPrice).is_some())
    {
        return Err(refuse(format!(
            "{}: the transactions have quantity or unit-price columns ({}); amounts as quantity × unit price are read only by the local reader: map an amount column (--amount-col), or ignore those columns in custmetrics.toml ([transactions] ignore = [...])",
            input.relation,
            [Role::Quantity, Role::UnitPrice]
                .iter()
                .filter_map(|r| columns.column(*r))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if let Some(format) = &options.date_format
        && *format != crate::io::parse::DateFormat::YearMonthDay
    {
        return Err(refuse(format!(
            "{}: engines read ISO dates (YYYY-MM-DD, a DATE or TIMESTAMP column, or text of that form); --date-format {} is read only by the local reader (give the engine a view with the dates converted, or run stage 1 locally)",
            input.relation,
            format.label()
        )));
    }
    for id in &input.identifiers {
        if !columns.dimensions.contains(id) {
            return Err(refuse(format!(
                "{}: identifier column {id:?} is not a dimension of the relation (its dimensions: {})",
                input.relation,
                columns.dimensions.join(", ")
            )));
        }
    }
    Ok(PlannedTable {
        input,
        columns,
        settings: crate::summary::store::settings(&{
            // As a store records them: every dimension is read.
            let mut o = options.clone();
            o.read_dimensions = None;
            o
        }),
        decimal: options.decimal.map(|d| match d {
            crate::io::DecimalSeparator::Point => '.',
            crate::io::DecimalSeparator::Comma => ',',
        }),
        csat_scale: options.csat_scale,
        statuses: options.statuses.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::PurchaseStatus;
    use polars::prelude::*;
    use std::collections::BTreeMap;

    fn spec() -> DatasetSpec {
        let mut spec = DatasetSpec::default();
        spec.transactions_options.statuses =
            BTreeMap::from([("In Progress".to_string(), PurchaseStatus::Pending)]);
        spec
    }

    fn inputs() -> (EngineInput, EngineInput) {
        let cols = |s: &str| s.split(',').map(str::to_string).collect::<Vec<_>>();
        (
            EngineInput {
                relation: "shop.orders".into(),
                columns: cols(
                    "order_id,customer_id,order_date,amount,currency,status,refunded_amount,sales channel,region",
                ),
                file_column: Some("filename".into()),
                identifiers: vec![],
            },
            EngineInput {
                relation: "crm.surveys".into(),
                columns: cols("response_id,customer_id,date,channel,nps,csat,agent"),
                file_column: None,
                identifiers: vec!["response_id".into()],
            },
        )
    }

    fn plan(dialect: Dialect) -> Stage1Plan {
        let (t, i) = inputs();
        Stage1Plan::new(dialect, &spec(), Some(t), Some(i)).unwrap()
    }

    /// Every query of every dialect parses with sqlparser's dialect of that engine (BigQuery
    /// and Snowflake have no server in CI: this is their check).
    #[test]
    fn every_dialect_parses() {
        use sqlparser::dialect::{
            BigQueryDialect, DatabricksDialect, DuckDbDialect, PostgreSqlDialect, SnowflakeDialect,
        };
        use sqlparser::parser::Parser;
        for dialect in Dialect::ALL {
            let sql = stage1_sql(&plan(dialect)).unwrap();
            let names: Vec<&str> = sql.queries.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(
                names,
                ["plan", "purchases", "interactions", "survey", "accounting"]
            );
            for (name, query) in &sql.queries {
                let parsed = match dialect {
                    Dialect::DuckDb => Parser::parse_sql(&DuckDbDialect {}, query),
                    Dialect::Postgres => Parser::parse_sql(&PostgreSqlDialect {}, query),
                    Dialect::Spark => Parser::parse_sql(&DatabricksDialect {}, query),
                    Dialect::BigQuery => Parser::parse_sql(&BigQueryDialect {}, query),
                    Dialect::Snowflake => Parser::parse_sql(&SnowflakeDialect {}, query),
                };
                let statements = parsed.unwrap_or_else(|e| {
                    panic!("{} {name} does not parse: {e}\n{query}", dialect.name())
                });
                assert_eq!(statements.len(), 1, "{} {name}", dialect.name());
            }
            // The script splits back into the same queries.
            let script = sql.script();
            assert_eq!(script.matches("\n-- custmetrics: ").count(), 5);
        }
    }

    #[test]
    fn plan_travels_with_the_results_and_names_the_roles() {
        let p = plan(Dialect::Postgres);
        let t = p.transactions.as_ref().unwrap();
        assert_eq!(t.columns.column(Role::Status), Some("status"));
        assert_eq!(
            t.columns.column(Role::RefundedAmount),
            Some("refunded_amount")
        );
        assert_eq!(t.columns.dimensions, ["sales channel", "region"]);
        let i = p.interactions.as_ref().unwrap();
        let dims: Vec<String> = i
            .dimension_columns(TableKind::Interactions)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        // The identifier is not a result dimension.
        assert_eq!(dims, ["channel", "agent"]);
        let sql = stage1_sql(&p).unwrap();
        let (_, plan_query) = &sql.queries[0];
        let json = plan_query
            .strip_prefix("SELECT '")
            .and_then(|s| s.strip_suffix("' AS \"plan\""))
            .unwrap()
            .replace("''", "'");
        let back: Stage1Plan = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        // The user's statuses are matched normalised, before the built-in list.
        let purchases = &sql.queries[1].1;
        assert!(purchases.contains("WHEN sn = 'inprogress' THEN 'pending'"));
        assert!(purchases.contains("MIN(d0 COLLATE \"C\")"));
    }

    #[test]
    fn what_only_the_local_reader_reads_is_refused_up_front() {
        let (mut t, _) = inputs();
        t.columns.push("quantity".into());
        let e = Stage1Plan::new(Dialect::DuckDb, &spec(), Some(t), None).unwrap_err();
        assert!(e.to_string().contains("quantity × unit price"), "{e}");
        let (t, _) = inputs();
        let mut s = spec();
        s.transactions_options.date_format = Some(crate::io::DateFormat::DayMonthYear);
        let e = Stage1Plan::new(Dialect::DuckDb, &s, Some(t), None).unwrap_err();
        assert!(e.to_string().contains("ISO dates"), "{e}");
        let (_, mut i) = inputs();
        i.identifiers = vec!["nope".into()];
        let e = Stage1Plan::new(Dialect::DuckDb, &spec(), None, Some(i)).unwrap_err();
        assert!(e.to_string().contains("not a dimension"), "{e}");
    }

    fn accounting(rows: &[(&str, &str, &str, Option<&str>, i64)]) -> DataFrame {
        df!(
            "tbl" => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            "item" => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            "label" => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            "val" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            "n_rows" => rows.iter().map(|r| r.4).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    fn results(rows: &[(&str, &str, &str, Option<&str>, i64)]) -> EngineResults {
        EngineResults {
            plan: plan(Dialect::DuckDb),
            purchases: None,
            interactions: None,
            survey: None,
            accounting: accounting(rows),
            received_bytes: 0,
        }
    }

    #[test]
    fn results_without_a_read_count_are_refused_as_incomplete() {
        // What an engine that failed part-way sent: the interactions' accounting, none for
        // the transactions.
        let r = results(&[("interactions", "read", "", None, 10)]);
        let e = r.checked_accounting().unwrap_err().to_string();
        assert!(e.contains("no `read` row for the transactions"), "{e}");
        assert!(e.contains("incomplete"), "{e}");
    }

    #[test]
    fn unparsed_values_are_counted_by_the_local_parsers_or_refused() {
        let r = results(&[
            ("transactions", "read", "", None, 100),
            ("transactions", "rejected", "missing_customer_id", None, 2),
            ("transactions", "unparsed", "date", Some("soon"), 3),
            ("transactions", "unparsed", "date", Some("2024-02-30"), 1),
            ("transactions", "unparsed", "amount", Some("n/a"), 4),
            ("transactions", "excluded", "pending", None, 5),
            ("transactions", "status", "paid", Some("Paid"), 90),
            ("transactions", "status", "pending", Some("In progress"), 5),
            ("transactions", "check", "continuation", None, 0),
            ("interactions", "read", "", None, 10),
            ("interactions", "unparsed", "nps", Some("eleven"), 1),
            (
                "interactions",
                "answer_rejected",
                "nps_out_of_range",
                None,
                2,
            ),
            ("interactions", "identifier", "response_id", Some("10"), 10),
        ]);
        let c = r.checked_accounting().unwrap();
        let t = c.transactions.unwrap().accounting;
        assert_eq!(t.rows_read, 100);
        assert_eq!(
            t.rejected_by_reason,
            BTreeMap::from([
                ("invalid_date".to_string(), 1),
                ("missing_customer_id".to_string(), 2),
                ("unparsable_amount".to_string(), 4),
                ("unparsable_date".to_string(), 3),
            ])
        );
        assert_eq!((t.rows_rejected, t.rows_excluded, t.rows_used), (10, 5, 85));
        let i = c.interactions.unwrap();
        assert_eq!(i.accounting.answers_rejected, 3);
        assert_eq!(i.identifiers[0].distinct, 10);

        for (row, wanted) in [
            (
                ("transactions", "unparsed", "date", Some("05/01/2024"), 3),
                "only the local reader",
            ),
            (
                ("transactions", "unparsed", "amount", Some("1,234.50"), 1),
                "only the local reader",
            ),
            (
                ("transactions", "unparsed", "amount", Some("12,50"), 1),
                "decimal comma",
            ),
            (
                (
                    "interactions",
                    "unparsed",
                    "nps",
                    Some("9 - Very likely"),
                    1,
                ),
                "only the local reader",
            ),
            (
                ("transactions", "status", "paid", Some("Refunded"), 1),
                "the local reader as refunded",
            ),
            (
                ("transactions", "check", "continuation", None, 2),
                "line items",
            ),
        ] {
            let e = results(&[
                ("transactions", "read", "", None, 100),
                ("interactions", "read", "", None, 10),
                row,
            ])
            .checked_accounting()
            .unwrap_err();
            assert!(e.to_string().contains(wanted), "{e}");
        }
        let e = results(&[
            ("transactions", "read", "", None, 100),
            ("interactions", "read", "", None, 10),
            ("transactions", "status", "unknown", Some("Shipped?!x"), 1),
        ])
        .checked_accounting()
        .unwrap_err();
        assert!(matches!(e, Error::UnknownStatus { .. }), "{e}");
    }
}
