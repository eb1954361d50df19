//! Stage 1 on Apache Spark through Spark Connect (feature `spark`): the exports are read where
//! the cluster sees them, the Spark-dialect stage-1 SQL runs there, and only its small results
//! come back, as Arrow IPC, to be written into the store here. The cluster needs nothing from
//! custmetrics: the same SQL as `custmetrics sql --dialect spark`.
//!
//! Why results back over the wire rather than the cluster writing the store: the results are
//! the summary (a row per customer and day, answer counts), small next to the rows; the
//! store's codes, manifest and atomic commit are then written by the same code as a local
//! store, with no shared filesystem between the cluster and the machine that runs reports.

use std::collections::BTreeMap;
use std::io::Cursor;

use polars::prelude::DataFrame;
use spark_connect::SparkSession;

use super::{Dialect, EngineInput, EngineResults, Stage1Plan, stage1_sql};
use crate::io::DatasetSpec;
use crate::io::schema::{Role, TableKind, resolve_columns};
use crate::summary::store::{IDENTIFIER_MIN_DISTINCT, IdentifierColumn};
use crate::{Error, Result};

/// The column Spark adds to name each row's file, so that order lines repeated in a later file
/// are recognised (`input_file_name()`, prefixed by the input's position).
const FILE_COLUMN: &str = "cm_source_file";

fn spark_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Engine {
        message: format!("spark: {what}: {e}"),
    }
}

/// Runs stage 1 of `spec`'s transactions and interactions on the Spark Connect server at
/// `remote` (`sc://host:15002`) and returns its results. The inputs are paths as the cluster
/// sees them (CSV read as text with a header, Parquet, JSON, `delta:PATH` for a Delta table) or
/// catalog table names (no `/` and no file extension). `identifiers` names the interactions
/// columns that identify an interaction; `None` finds them as the local reader does (more than
/// 1,000 distinct values and more than half as many as rows), over the whole column.
///
/// # Errors
/// [`Error::Engine`] when the server cannot be reached or a query fails (with Spark's
/// message), and the errors of [`Stage1Plan::new`].
pub fn run(
    remote: &str,
    spec: &DatasetSpec,
    identifiers: Option<&[String]>,
) -> Result<EngineResults> {
    let spark = SparkSession::builder()
        .remote(remote)
        .get_or_create()
        .map_err(|e| spark_error(&format!("cannot connect to {remote}"), e))?;
    let sql = |query: &str| spark.sql(query).map_err(|e| spark_error("query failed", e));
    // Dates from timestamps are the day in UTC, as the local reader takes them.
    sql("SET spark.sql.session.timeZone = UTC")?
        .collect()
        .map_err(|e| spark_error("cannot set the session time zone", e))?;
    let transactions = register(&spark, "cm_transactions", &spec.transactions)?;
    let mut interactions = register(&spark, "cm_interactions", &spec.interactions)?;
    if let Some(input) = interactions.as_mut() {
        input.identifiers = match identifiers {
            Some(list) => list.to_vec(),
            None => find_identifiers(&spark, input, spec)?,
        };
    }
    let plan = Stage1Plan::new(Dialect::Spark, spec, transactions, interactions)?;
    let stage1 = stage1_sql(&plan)?;
    let mut frames = BTreeMap::new();
    let mut received_bytes = 0;
    for (name, query) in &stage1.queries {
        let (frame, bytes) = fetch_counted(&spark, name, query)?;
        received_bytes += bytes;
        frames.insert(name.clone(), frame);
    }
    let mut results = EngineResults::from_frames(frames)?;
    results.received_bytes = received_bytes;
    Ok(results)
}

/// One result, materialised once on the cluster (`CACHE TABLE`), counted there, then fetched;
/// the fetched rows must be as many as counted. A job that fails while its result streams
/// (a driver out of memory, seen on 10M rows with Spark's default 1 GB driver) can end the
/// stream as if it were complete, and the client then returns what arrived, or nothing: a
/// store built from that would be plausible and wrong.
fn fetch_counted(spark: &SparkSession, name: &str, query: &str) -> Result<(DataFrame, u64)> {
    let failed = |what: &str| {
        let what = what.to_string();
        move |e| spark_error(&format!("the {name} query: {what}"), e)
    };
    let table = format!("cm_result_{name}");
    spark
        .sql(&format!("CACHE TABLE {table} AS {query}"))
        .map_err(failed("cannot materialise it"))?
        .collect()
        .map_err(failed("cannot materialise it"))?;
    let counted = spark
        .sql(&format!("SELECT COUNT(*) AS n FROM {table}"))
        .map_err(failed("cannot count its rows"))?
        .to_arrow()
        .map_err(failed("cannot count its rows"))?;
    let counted = from_ipc(&counted)?;
    let expected = counted
        .column("n")
        .ok()
        .and_then(|c| c.cast(&polars::prelude::DataType::Int64).ok())
        .and_then(|c| c.i64().ok().and_then(|v| v.get(0)))
        .ok_or_else(|| Error::Engine {
            message: format!("spark: the {name} query: its row count did not come back"),
        })?;
    let bytes = spark
        .sql(&format!("SELECT * FROM {table}"))
        .map_err(failed("cannot fetch it"))?
        .to_arrow()
        .map_err(failed("cannot fetch it"))?;
    let frame = from_ipc(&bytes)?;
    // Freeing the cache is housekeeping: a failure here changes no result.
    if let Ok(df) = spark.sql(&format!("UNCACHE TABLE IF EXISTS {table}")) {
        let _ = df.collect();
    }
    if i64::try_from(frame.height()).ok() != Some(expected) {
        return Err(Error::Engine {
            message: format!(
                "spark: the {name} result came back with {} of its {expected} rows: the job failed while sending it (see the Spark driver's log; a driver short of memory for the results needs a larger spark.driver.memory and spark.driver.maxResultSize)",
                frame.height()
            ),
        });
    }
    Ok((frame, bytes.len() as u64))
}

/// Registers the inputs of one table as the temporary view `view` and returns it as an
/// engine input with its columns.
fn register(spark: &SparkSession, view: &str, paths: &[String]) -> Result<Option<EngineInput>> {
    if paths.is_empty() {
        return Ok(None);
    }
    let mut parts = Vec::new();
    let mut columns: Option<Vec<String>> = None;
    let mut files = true;
    for (i, path) in paths.iter().enumerate() {
        let part = format!("{view}_{i}");
        let reader = spark.read();
        let lower = path.to_ascii_lowercase();
        let df = if let Some(delta) = path.strip_prefix("delta:") {
            reader.format("delta").load(Some(delta))
        } else if [".csv", ".csv.gz", ".tsv", ".txt"]
            .iter()
            .any(|e| lower.ends_with(e))
        {
            let delimiter = if lower.ends_with(".tsv") { "\t" } else { "," };
            reader
                .format("csv")
                .option("header", "true")
                .option("sep", delimiter)
                // Every column as text, parsed by the stage-1 SQL as the local reader parses.
                .option("inferSchema", "false")
                .load(Some(path))
        } else if lower.ends_with(".json") || lower.ends_with(".jsonl") {
            reader.format("json").load(Some(path))
        } else if lower.ends_with(".parquet") || lower.ends_with(".pq") || path.contains('/') {
            reader.format("parquet").load(Some(path))
        } else {
            files = false;
            spark
                .table(path)
                .map_err(|e| spark_error(&format!("no table {path}"), e))?
        };
        df.create_or_replace_temp_view(&part)
            .map_err(|e| spark_error(&format!("cannot read {path}"), e))?;
        let cols = df
            .columns()
            .map_err(|e| spark_error(&format!("cannot read the columns of {path}"), e))?;
        match &columns {
            None => columns = Some(cols),
            Some(first) if *first != cols => {
                return Err(Error::Engine {
                    message: format!(
                        "spark: {path} has other columns than {}: ({}) against ({})",
                        paths.first().map(String::as_str).unwrap_or_default(),
                        cols.join(", "),
                        first.join(", ")
                    ),
                });
            }
            Some(_) => {}
        }
        parts.push((i, part));
    }
    let columns = columns.unwrap_or_default();
    let quoted: Vec<String> = columns
        .iter()
        .map(|c| format!("`{}`", c.replace('`', "``")))
        .collect();
    let union = parts
        .iter()
        .map(|(i, part)| {
            let file = if files {
                format!("CONCAT('{i:05}:', input_file_name())")
            } else {
                format!("'{i:05}'")
            };
            format!(
                "SELECT {}, {file} AS {FILE_COLUMN} FROM {part}",
                quoted.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let create = |e| spark_error("cannot create the input view", e);
    spark
        .sql(&format!(
            "CREATE OR REPLACE TEMPORARY VIEW {view} AS {union}"
        ))
        .map_err(create)?
        .collect()
        .map_err(create)?;
    let mut all = columns;
    all.push(FILE_COLUMN.to_string());
    Ok(Some(EngineInput {
        relation: view.to_string(),
        columns: all,
        file_column: Some(FILE_COLUMN.to_string()),
        identifiers: Vec::new(),
    }))
}

/// The interactions dimensions that are identifiers, from their distinct values and non-null
/// rows over the rows with a customer and a date (one query for all of them).
fn find_identifiers(
    spark: &SparkSession,
    input: &EngineInput,
    spec: &DatasetSpec,
) -> Result<Vec<String>> {
    let visible: Vec<String> = input
        .columns
        .iter()
        .filter(|c| c.as_str() != FILE_COLUMN)
        .cloned()
        .collect();
    let resolved = resolve_columns(
        TableKind::Interactions,
        &visible,
        &spec.interactions_options.mapping,
    )?;
    if resolved.dimensions.is_empty() {
        return Ok(Vec::new());
    }
    let value = |c: &str| {
        format!(
            "NULLIF(TRIM(CAST(`{}` AS STRING)), '')",
            c.replace('`', "``")
        )
    };
    let (Some(customer), Some(date)) = (
        resolved.column(Role::CustomerId),
        resolved.column(Role::Date),
    ) else {
        return Ok(Vec::new());
    };
    let counts: Vec<String> = resolved
        .dimensions
        .iter()
        .flat_map(|d| {
            [
                format!("CAST(COUNT(DISTINCT {}) AS BIGINT)", value(d)),
                format!("CAST(COUNT({}) AS BIGINT)", value(d)),
            ]
        })
        .collect();
    let query = format!(
        "SELECT {} FROM {} WHERE {} IS NOT NULL AND {} IS NOT NULL",
        counts.join(", "),
        input.relation,
        value(customer),
        value(date)
    );
    let failed = |e| spark_error("the identifier check failed", e);
    let bytes = spark
        .sql(&query)
        .map_err(failed)?
        .to_arrow()
        .map_err(failed)?;
    let frame = from_ipc(&bytes)?;
    let mut found = Vec::new();
    for (k, d) in resolved.dimensions.iter().enumerate() {
        let get = |i: usize| -> Result<u64> {
            let c = frame
                .select_at_idx(i)
                .ok_or_else(|| spark_error("identifier check", "missing column"))?;
            let v = c.cast(&polars::prelude::DataType::Int64)?;
            Ok(u64::try_from(v.i64()?.get(0).unwrap_or(0)).unwrap_or(0))
        };
        let (distinct, rows) = (get(2 * k)?, get(2 * k + 1)?);
        let column = IdentifierColumn {
            name: d.clone(),
            distinct,
            rows,
        };
        if column.distinct > IDENTIFIER_MIN_DISTINCT && column.distinct * 2 > column.rows {
            found.push(column.name);
        }
    }
    Ok(found)
}

/// A polars frame from Arrow IPC file bytes (what Spark Connect returns).
fn from_ipc(bytes: &[u8]) -> Result<DataFrame> {
    let reader = arrow_ipc::reader::FileReader::try_new(Cursor::new(bytes), None)
        .map_err(|e| spark_error("cannot read the Arrow result", e))?;
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| spark_error("cannot read the Arrow result", e))?;
    if batches.is_empty() {
        return Ok(DataFrame::empty());
    }
    crate::io::arrow::from_record_batches(&batches)
}
