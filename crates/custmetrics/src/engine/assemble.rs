//! The engine's results read back and checked: the day tables with their types, and the row
//! accounting completed by the local parsers (the values the SQL sent back unparsed) and the
//! local status table. Anything the local reader would read differently stops the assembly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::sql::{RESULT_TABLES, local_status};
use super::{PlannedTable, Stage1Plan};
use crate::io::parse::{DateFormat, DecimalSeparator, parse_amount, parse_csat, parse_date};
use crate::io::parse::{parse_nps, parse_number};
use crate::io::{Accounting, TableKind};
use crate::summary::store::IdentifierColumn;
use crate::{Error, Result};

/// What an engine returned for stage 1: the plan it ran and its result tables, with string
/// customer ids and dimension values (the store gives them codes).
#[derive(Debug, Clone)]
pub struct EngineResults {
    /// The plan the SQL was written from.
    pub plan: Stage1Plan,
    /// `customer_id`, `date`, `orders`, `revenue_micros`, `dim_*`.
    pub purchases: Option<DataFrame>,
    /// `customer_id`, `date`, `dim_*`, `interactions`.
    pub interactions: Option<DataFrame>,
    /// `date`, `nps`, `csat`, `dim_*`, `answers`.
    pub survey: Option<DataFrame>,
    /// `tbl`, `item`, `label`, `val`, `n_rows`.
    pub accounting: DataFrame,
    /// What the results took to bring here: the Arrow IPC bytes Spark sent, or the size of the
    /// exported files (0 when built from frames). The summary, not the rows, crosses the wire.
    pub received_bytes: u64,
}

/// Reads the results a warehouse exported: `NAME.parquet` or `NAME.csv` for each table the
/// SQL printed (`plan`, `purchases`, `interactions`, `survey`, `accounting`) in `dir`.
///
/// # Errors
/// [`Error::Engine`] for a missing or malformed result; I/O and parse errors.
pub fn read_results(dir: &Path) -> Result<EngineResults> {
    let mut frames = BTreeMap::new();
    let mut received_bytes = 0;
    for name in RESULT_TABLES {
        let parquet = dir.join(format!("{name}.parquet"));
        let csv = dir.join(format!("{name}.csv"));
        for file in [&parquet, &csv] {
            received_bytes += std::fs::metadata(file).map_or(0, |m| m.len());
        }
        let frame = if parquet.is_file() {
            let file = std::fs::File::open(&parquet).map_err(|e| Error::io(&parquet, e))?;
            ParquetReader::new(file).finish()?
        } else if csv.is_file() {
            // Every column as text, typed below: the CSV's own type guesses would make a
            // customer id of digits a number.
            CsvReadOptions::default()
                .with_has_header(true)
                .with_infer_schema_length(Some(0))
                .try_into_reader_with_file_path(Some(csv.clone()))?
                .finish()?
        } else {
            continue;
        };
        frames.insert(name.to_string(), frame);
    }
    let mut results = EngineResults::from_frames(frames).map_err(|e| match e {
        Error::Engine { message } => Error::Engine {
            message: format!("{}: {message}", dir.display()),
        },
        other => other,
    })?;
    results.received_bytes = received_bytes;
    Ok(results)
}

impl EngineResults {
    /// The results from frames by table name (as Spark returns them, or as read from files):
    /// the plan is read from the `plan` table, and every column is given its store type.
    ///
    /// # Errors
    /// [`Error::Engine`] for a missing plan or accounting, a plan of another custmetrics
    /// version, or a column that is missing or not of its type.
    pub fn from_frames(mut frames: BTreeMap<String, DataFrame>) -> Result<EngineResults> {
        let missing = |name: &str| Error::Engine {
            message: format!(
                "no {name} result (expected {name}.parquet or {name}.csv: export every result the SQL prints)"
            ),
        };
        let plan_frame = frames.remove("plan").ok_or_else(|| missing("plan"))?;
        let text = plan_frame
            .column("plan")
            .map_err(|_| missing("plan"))?
            .cast(&DataType::String)?;
        let text = text.str()?.get(0).unwrap_or_default().to_string();
        let plan: Stage1Plan = serde_json::from_str(&text).map_err(|e| Error::Engine {
            message: format!("the plan result is not a custmetrics stage-1 plan: {e}"),
        })?;
        if plan.custmetrics_version != env!("CARGO_PKG_VERSION") {
            return Err(Error::Engine {
                message: format!(
                    "the SQL was written by custmetrics {}, this is {}: print the SQL again with this version and rerun it",
                    plan.custmetrics_version,
                    env!("CARGO_PKG_VERSION")
                ),
            });
        }
        let tx_dims = dims_of(plan.transactions.as_ref(), TableKind::Transactions);
        let ix_dims = dims_of(plan.interactions.as_ref(), TableKind::Interactions);
        let mut take = |name: &str, wanted: bool, types: Vec<(String, DataType)>| {
            if !wanted {
                return Ok(None);
            }
            let frame = frames.remove(name).ok_or_else(|| missing(name))?;
            typed(name, &frame, &types).map(Some)
        };
        let mut purchase_types = vec![
            ("customer_id".to_string(), DataType::String),
            ("date".to_string(), DataType::Date),
            ("orders".to_string(), DataType::Int32),
            ("revenue_micros".to_string(), DataType::Int64),
        ];
        purchase_types.extend(tx_dims.iter().map(|d| (d.clone(), DataType::String)));
        let mut interaction_types = vec![
            ("customer_id".to_string(), DataType::String),
            ("date".to_string(), DataType::Date),
        ];
        interaction_types.extend(ix_dims.iter().map(|d| (d.clone(), DataType::String)));
        interaction_types.push(("interactions".to_string(), DataType::Int32));
        let mut survey_types = vec![
            ("date".to_string(), DataType::Date),
            ("nps".to_string(), DataType::Int32),
            ("csat".to_string(), DataType::Int32),
        ];
        survey_types.extend(ix_dims.iter().map(|d| (d.clone(), DataType::String)));
        survey_types.push(("answers".to_string(), DataType::Int64));
        let accounting_types = vec![
            ("tbl".to_string(), DataType::String),
            ("item".to_string(), DataType::String),
            ("label".to_string(), DataType::String),
            ("val".to_string(), DataType::String),
            ("n_rows".to_string(), DataType::Int64),
        ];
        let has_tx = plan.transactions.is_some();
        let has_ix = plan.interactions.is_some();
        let purchases = take("purchases", has_tx, purchase_types)?;
        let interactions = take("interactions", has_ix, interaction_types)?;
        let survey = take("survey", has_ix, survey_types)?;
        let accounting =
            take("accounting", true, accounting_types)?.ok_or_else(|| missing("accounting"))?;
        Ok(EngineResults {
            plan,
            purchases,
            interactions,
            survey,
            accounting,
            received_bytes: 0,
        })
    }

    /// Rows in all the result tables (the summary's size, next to the input's rows).
    pub fn result_rows(&self) -> usize {
        [&self.purchases, &self.interactions, &self.survey]
            .into_iter()
            .flatten()
            .map(DataFrame::height)
            .sum::<usize>()
            + self.accounting.height()
    }

    /// The accounting of each table, completed with the local parsers' verdict on the values
    /// the SQL sent back, after the checks that make the results unusable.
    ///
    /// # Errors
    /// [`Error::Engine`] when the local reader would read a returned value (or a status)
    /// differently, or a check found rows only the local reader can read;
    /// [`Error::UnknownStatus`] for status values no one knows.
    pub(crate) fn checked_accounting(&self) -> Result<CheckedAccounting> {
        let mut out = CheckedAccounting::default();
        for (kind, planned) in [
            (TableKind::Transactions, self.plan.transactions.as_ref()),
            (TableKind::Interactions, self.plan.interactions.as_ref()),
        ] {
            if let Some(planned) = planned {
                let checked = check_table(kind, planned, &self.accounting)?;
                match kind {
                    TableKind::Transactions => out.transactions = Some(checked),
                    _ => out.interactions = Some(checked),
                }
            }
        }
        Ok(out)
    }
}

/// The accounting of the tables an engine read.
#[derive(Debug, Default)]
pub(crate) struct CheckedAccounting {
    pub(crate) transactions: Option<CheckedTable>,
    pub(crate) interactions: Option<CheckedTable>,
}

/// One table's accounting and the identifier columns found.
#[derive(Debug)]
pub(crate) struct CheckedTable {
    pub(crate) accounting: Accounting,
    pub(crate) identifiers: Vec<IdentifierColumn>,
}

fn dims_of(planned: Option<&PlannedTable>, kind: TableKind) -> Vec<String> {
    planned
        .map(|p| {
            p.dimension_columns(kind)
                .into_iter()
                .map(|(name, _)| format!("dim_{name}"))
                .collect()
        })
        .unwrap_or_default()
}

/// `frame`'s columns `types` (by name, case-insensitively: some warehouses upper-case the
/// names), cast to their types; a column that is missing or does not convert is an error.
fn typed(name: &str, frame: &DataFrame, types: &[(String, DataType)]) -> Result<DataFrame> {
    // An empty result may come back without its schema (Spark sends no batch for no rows).
    if frame.width() == 0 {
        let columns: Vec<Column> = types
            .iter()
            .map(|(c, t)| Column::full_null(c.as_str().into(), 0, t))
            .collect();
        return Ok(DataFrame::new_infer_height(columns)?);
    }
    let mut columns = Vec::with_capacity(types.len());
    for (column, dtype) in types {
        let found = frame
            .get_column_names()
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(column))
            .cloned()
            .ok_or_else(|| Error::Engine {
                message: format!(
                    "the {name} result has no column {column} (it has {})",
                    frame
                        .get_column_names()
                        .iter()
                        .map(|c| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        let c = frame.column(&found)?;
        let cast = match (c.dtype(), dtype) {
            // Text dates (CSV exports) are ISO days; timestamps are truncated to their day.
            (DataType::String, DataType::Date) => c
                .as_materialized_series()
                .str()?
                .as_date(Some("%Y-%m-%d"), false)?
                .into_column(),
            _ => c.strict_cast(dtype).map_err(|e| Error::Engine {
                message: format!(
                    "the {name} result's column {column} is {} where {dtype} is needed: {e}",
                    c.dtype()
                ),
            })?,
        };
        if cast.null_count() > c.null_count() {
            return Err(Error::Engine {
                message: format!(
                    "the {name} result's column {column} has values that are not {dtype}"
                ),
            });
        }
        columns.push(cast.with_name(column.as_str().into()));
    }
    Ok(DataFrame::new_infer_height(columns)?)
}

fn check_table(kind: TableKind, planned: &PlannedTable, rows: &DataFrame) -> Result<CheckedTable> {
    let table = kind.name();
    let relation = &planned.input.relation;
    let decimal = match planned.decimal {
        Some(',') => DecimalSeparator::Comma,
        _ => DecimalSeparator::Point,
    };
    let mut a = Accounting::default();
    let mut identifiers = Vec::new();
    let mut unknown_statuses: Vec<String> = Vec::new();
    let tbl = rows.column("tbl")?.str()?;
    let item = rows.column("item")?.str()?;
    let label = rows.column("label")?.str()?;
    let val = rows.column("val")?.str()?;
    let n = rows.column("n_rows")?.i64()?;
    let refuse = |message: String| Error::Engine {
        message: format!("{relation}: {message}"),
    };
    // The SQL always sends a `read` row per table, a count even of zero rows: without it the
    // results are not what the SQL produced (an engine that failed part-way and sent nothing
    // for some queries), and assembling them would report a plausible, wrong, store.
    let has_read =
        (0..rows.height()).any(|i| tbl.get(i) == Some(table) && item.get(i) == Some("read"));
    if !has_read {
        return Err(refuse(format!(
            "the accounting result has no `read` row for the {table}: the engine's results are incomplete (a query that failed or was cut off without an error); rerun stage 1"
        )));
    }
    for i in 0..rows.height() {
        if tbl.get(i) != Some(table) {
            continue;
        }
        let count = u64::try_from(n.get(i).unwrap_or(0)).unwrap_or(0);
        let label = label.get(i).unwrap_or_default();
        let value = val.get(i).unwrap_or_default();
        let add = |map: &mut BTreeMap<String, u64>, key: &str| {
            if count > 0 {
                *map.entry(key.to_string()).or_default() += count;
            }
        };
        match item.get(i).unwrap_or_default() {
            "read" => a.rows_read += count,
            "rejected" => add(&mut a.rejected_by_reason, label),
            "excluded" => add(&mut a.excluded_by_reason, label),
            "answer_rejected" => add(&mut a.answers_rejected_by_reason, label),
            "unparsed" => {
                let read_locally = |what: &str| {
                    refuse(format!(
                        "{count} rows have the {what} {value:?}, which only the local reader reads (the SQL reads ISO dates, plain numbers and whole-number scores): convert the column in the warehouse, or run stage 1 locally (custmetrics summarize -t FILES)"
                    ))
                };
                match label {
                    "date" => {
                        let formats = [
                            DateFormat::YearMonthDay,
                            DateFormat::MonthDayYear,
                            DateFormat::DayMonthYear,
                        ];
                        if formats.iter().any(|f| parse_date(value, f).is_ok()) {
                            return Err(read_locally("date"));
                        }
                        if let Err(reason) = parse_date(value, &DateFormat::YearMonthDay) {
                            add(&mut a.rejected_by_reason, reason.key());
                        }
                    }
                    "amount" => {
                        let other = match decimal {
                            DecimalSeparator::Point => DecimalSeparator::Comma,
                            DecimalSeparator::Comma => DecimalSeparator::Point,
                        };
                        let other_reads =
                            planned.decimal.is_none() && parse_amount(value, other).is_ok();
                        match parse_amount(value, decimal) {
                            Ok(_) => return Err(read_locally("amount")),
                            Err(_) if other_reads => {
                                return Err(refuse(format!(
                                    "{count} rows have the amount {value:?}, a number with a decimal comma: give the decimal separator (--decimal point or comma)"
                                )));
                            }
                            Err(reason) => add(&mut a.rejected_by_reason, reason.key()),
                        }
                    }
                    "refunded" | "cost" => match parse_number(value, decimal) {
                        Ok(Some(_)) => return Err(read_locally(label)),
                        Ok(None) => {}
                        Err(reason) => add(&mut a.rejected_by_reason, reason.key()),
                    },
                    "nps" | "csat" => {
                        let parsed = if label == "nps" {
                            parse_nps(value)
                        } else {
                            parse_csat(value, planned.csat_scale)
                        };
                        match parsed {
                            Ok(Some(_)) => return Err(read_locally(&format!("{label} answer"))),
                            Ok(None) => {}
                            Err(reason) => add(&mut a.answers_rejected_by_reason, reason.key()),
                        }
                    }
                    other => {
                        return Err(refuse(format!(
                            "unknown unparsed column {other:?} in the accounting result"
                        )));
                    }
                }
            }
            "status" => match local_status(value, &planned.statuses) {
                Some(s) if s.key() == label => {}
                Some(s) => {
                    return Err(refuse(format!(
                        "the engine read the status {value:?} as {label}, the local reader as {}: its text functions differ; map the value under [transactions.statuses]",
                        s.key()
                    )));
                }
                None => {
                    if unknown_statuses.len() < 10 && count > 0 {
                        unknown_statuses.push(value.to_string());
                    }
                }
            },
            "check" if count > 0 => match label {
                "partial_refund_unknown" => {
                    return Err(refuse(format!(
                        "{count} orders are partially refunded but the export does not say by how much; map the refunded-amount column with the `refunded_col` setting (--refunded-col)"
                    )));
                }
                "continuation" => {
                    return Err(refuse(format!(
                        "{count} rows have no amount but an order id that other rows have (line items continuing an order): only the local reader, in file order, can attach them to their order; run stage 1 locally"
                    )));
                }
                other => return Err(refuse(format!("check {other} failed on {count} rows"))),
            },
            "check" => {}
            "identifier" => identifiers.push(IdentifierColumn {
                name: label.to_string(),
                distinct: value.parse().unwrap_or(0),
                rows: count,
            }),
            other => {
                return Err(refuse(format!("unknown accounting item {other:?}")));
            }
        }
    }
    if !unknown_statuses.is_empty() {
        return Err(Error::UnknownStatus {
            path: PathBuf::from(relation),
            table: table.to_string(),
            column: planned
                .columns
                .column(crate::io::Role::Status)
                .unwrap_or_default()
                .to_string(),
            values: unknown_statuses,
        });
    }
    a.rows_rejected = a.rejected_by_reason.values().sum();
    a.rows_excluded = a.excluded_by_reason.values().sum();
    a.answers_rejected = a.answers_rejected_by_reason.values().sum();
    a.rows_used = a
        .rows_read
        .saturating_sub(a.rows_rejected + a.rows_excluded);
    Ok(CheckedTable {
        accounting: a,
        identifiers,
    })
}
