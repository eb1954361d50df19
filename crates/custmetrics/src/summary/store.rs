//! The summary store: stage 1's output as files. A directory of Parquet tables at the finest
//! grain any report asks for (one row per customer and day), plus a JSON manifest with what
//! shaped it (inputs and their checksums, load settings, every table's row accounting). Every
//! command can run from it instead of the raw exports, and a monthly job adds the new month
//! to it with [`SummaryStore::update`] instead of reading years of history again. The layout
//! is documented column by column in `docs/summary-store.md`; plain Parquet types only, so
//! that another engine can write it.
//!
//! Why days: `--period`, `--from` and `--as-of` cut at days and group days into periods, and
//! every per-customer figure (first and last purchase, purchase days, orders, revenue, the
//! segment on the first purchase) is a fold over a customer's days. Read back, a store's days
//! are ordinary canonical tables with a weight column ([`col::ORDERS`], [`col::INTERACTIONS`],
//! [`col::ANSWERS`]), and the report's own stage 1 reads them: the output from a store is the
//! output from the raw files, by construction.
//!
//! Layout on disk (`DIR/manifest.json` names the data generation `DIR/gN/`). Each table is
//! one or more parts `NAME-RUN.parquet`, one per run that added to it (00000 for the first
//! write, then one per update), read in order and concatenated:
//! - `customer_ids`: `customer` (int32 code), `customer_id` (string): the customers first
//!   seen in that run (codes continue from run to run);
//! - `dimensions`: `table`, `dimension`, `code` (int32), `value` (string), rewritten whole;
//! - `purchases`: `customer`, `date`, `orders` (int32), `revenue_micros` (int64), and one
//!   int32 code column `dim_<name>` per dimension (its value on the day's first purchase); a
//!   (customer, date) may be in several parts, which add up;
//! - `line_keys`: `key_high`, `key_low` (int64): the order lines held, to deduplicate;
//! - `order_keys`: `key` (int64): the orders held (order id and customer), to refuse new
//!   lines of an order the store has;
//! - `interactions`: `customer`, `date`, `interactions` (int32), `dim_<name>` codes;
//! - `survey`: `date`, `nps`, `csat` (int32, null when not answered), `answers` (int64),
//!   `dim_<name>` codes;
//! - `customers`: the customers table as loaded (a snapshot, replaced by a newer one).
//!
//! An update writes a new generation beside the old one (the old parts hard-linked, its own
//! parts added) and then replaces the manifest (a rename): interrupted at any point, the store
//! reads as before or as after, and its cost grows with the new exports, not the history.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::CustomerId;
use super::id_codes::IdCodes;
use super::summarise::mapped_one_chunk;
use crate::io::dataset::PartitionedRows;
use crate::io::{
    Accounting, Dataset, DatasetSpec, DeferredTransactions, FileReport, InputPath, LoadOptions,
    Rejection, Table, TableKind, col, expand_inputs,
    load::{PriorRows, held_in_run, sort_hashes, sorted_unique},
};
use crate::money::to_micros;
use crate::{Error, Result};

/// The layout version this build reads and writes.
pub const STORE_SCHEMA_VERSION: u32 = 1;

const MANIFEST: &str = "manifest.json";
const FORMAT: &str = "custmetrics-summary-store";
const DIM_PREFIX: &str = "dim_";
/// The exclusion reason of rows of an update on days the store covers ([`Overlap::Skip`]).
const ALREADY_IN_STORE: &str = "already_in_store";

/// The store's manifest (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `custmetrics-summary-store`.
    pub format: String,
    /// The layout version ([`STORE_SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// The custmetrics version that wrote it last.
    pub custmetrics_version: String,
    /// The data generation: the files are in `gN/`.
    pub generation: u64,
    /// Every input that went into the store, in order.
    pub inputs: Vec<StoreInput>,
    /// One entry per table the store holds.
    pub tables: Vec<StoredTable>,
}

/// One input file that went into the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreInput {
    /// The table it was read as.
    pub table: TableKind,
    /// The path as given.
    pub path: String,
    /// Its size in bytes (`None` for standard input).
    pub bytes: Option<u64>,
    /// Its BLAKE3 checksum, hex (`None` for standard input).
    pub blake3: Option<String>,
    /// Which `summarize` run added it: 0 for the first, then one more per update.
    pub update: u32,
}

/// What the store keeps of a loaded table besides its rows: where every input row went, the
/// per-file details, and the settings that read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTable {
    /// Which table.
    pub kind: TableKind,
    /// Row accounting over every file that went in.
    pub accounting: Accounting,
    /// Rejected rows, in file order.
    pub rejections: Vec<Rejection>,
    /// Rejected answers of used rows.
    pub answer_rejections: Vec<Rejection>,
    /// Per-file details.
    pub files: Vec<FileReport>,
    /// Segment dimensions, in order.
    pub dimensions: Vec<String>,
    /// The canonical columns the loaded table had (the roles present).
    pub columns: Vec<String>,
    /// First and last date held (days since 1970-01-01), to name an overlap.
    pub days: Option<(i32, i32)>,
    /// Whether the order lines are keyed (the transactions had order ids), so that a later
    /// export's repeated lines are recognised.
    pub keyed: bool,
    /// The load settings (column mapping, formats, statuses) of each run, in order.
    pub settings: Vec<serde_json::Value>,
    /// Columns read as dimensions but not kept as such, because nearly every row has its own
    /// value (an interaction or response id): kept, they would make the store as large as the
    /// export and the survey counts one row per answer. `--by` on one of them is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<IdentifierColumn>,
}

/// A column [`StoredTable::identifiers`] left out: its distinct values and non-null rows when it
/// was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentifierColumn {
    /// The column.
    pub name: String,
    /// Distinct values among the checked rows.
    pub distinct: u64,
    /// Non-null rows checked (at most [`IDENTIFIER_SAMPLE_ROWS`]).
    pub rows: u64,
}

/// A dimension with more distinct values than this, and more than half as many as non-null
/// rows, among its first [`IDENTIFIER_SAMPLE_ROWS`] non-null values, is an identifier
/// ([`StoredTable::identifiers`]).
pub const IDENTIFIER_MIN_DISTINCT: u64 = 1000;
/// Non-null values of a dimension that [`IDENTIFIER_MIN_DISTINCT`] is checked on.
pub const IDENTIFIER_SAMPLE_ROWS: usize = 100_000;

/// What to do with rows of an update that fall on or before the last day the store holds, for
/// a table whose rows cannot be told apart from the store's (interactions; transactions without
/// order ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overlap {
    /// Refuse the update, naming the overlap.
    #[default]
    Refuse,
    /// Leave those rows out (the export repeats days the store has), counted as
    /// `already_in_store`.
    Skip,
    /// Add them (the export holds other customers' rows for those days).
    Keep,
}

/// How [`SummaryStore::write`] and [`SummaryStore::update`] treat their inputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Rows of an update that cannot be told apart from the store's, on days it covers.
    pub overlap: Overlap,
    /// Write or update the store even when a table has no usable row (by default that is
    /// [`Error::NoData`], so that a broken export never slips into the store unnoticed).
    pub allow_empty: bool,
    /// Refuse the exports ([`Error::RejectedRow`]) when a row or an answer was rejected, before
    /// anything is written.
    pub strict: bool,
}

/// What a report reads of a store ([`SummaryStore::read`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreRead {
    /// The dimensions the report splits by (the others are not decoded).
    pub by: Vec<String>,
    /// Ranges of customers the purchases are read in, one after another (0 and 1: whole).
    pub partitions: u32,
    /// Decode the interactions' rows and survey answers. Without them the interactions table
    /// holds its accounting and no rows: enough for a report with no section that reads them
    /// (the overview's interaction counts, NPS, CSAT, activity from interactions).
    pub interaction_rows: bool,
    /// With `interaction_rows`, decode the interaction events (a row per customer, day and
    /// channel: 45M at 100M transactions), which the overview's counts and activity from
    /// interactions read. Without them only the survey answers are decoded: enough for NPS and
    /// CSAT.
    pub interaction_events: bool,
    /// Decode the customers snapshot's ids, signup and end dates and acquisition costs, which
    /// every section but the survey scores reads. Without them only its attributes among `by`
    /// are decoded (26M ids at 100M transactions are not); the table keeps its accounting.
    pub customer_rows: bool,
    /// Leave the purchases in the store even in one partition, for the report's stage 1 to
    /// read: a report whose only transaction section is retention counts the purchase days
    /// straight from the store, without decoding them into rows.
    pub defer_purchases: bool,
}

impl Default for StoreRead {
    fn default() -> Self {
        StoreRead {
            by: Vec::new(),
            partitions: 1,
            interaction_rows: true,
            interaction_events: true,
            customer_rows: true,
            defer_purchases: false,
        }
    }
}

impl StoreRead {
    /// Everything a report split by `by` may read, the purchases whole.
    pub fn new(by: Vec<String>) -> StoreRead {
        StoreRead {
            by,
            ..StoreRead::default()
        }
    }
}

/// A summary store on disk.
#[derive(Debug, Clone)]
pub struct SummaryStore {
    dir: PathBuf,
    manifest: Manifest,
}

/// A store's tables in memory: each table's parts, concatenated in order (the key tables are
/// walked where they are: [`StoredKeys`]).
struct Frames {
    customer_ids: DataFrame,
    dimensions: DataFrame,
    purchases: Option<DataFrame>,
    interactions: Option<DataFrame>,
    survey: Option<DataFrame>,
    customers: Option<DataFrame>,
}

impl Frames {
    /// Every customer's id by code, in one chunk (so that gathering the rows' ids copies
    /// string views, not strings), and the dimension values by code.
    fn ids_and_dictionary(&self) -> Result<(Series, Dictionary)> {
        let ids = self
            .customer_ids
            .column(col::CUSTOMER_ID)?
            .as_materialized_series()
            .rechunk();
        Ok((ids, Dictionary::from_frame(&self.dimensions)?))
    }
}

/// The parts an update (or the first write) adds, and the tables it rewrites.
#[derive(Default)]
struct NewParts {
    /// Ids of the customers first seen in this run (codes continue the store's).
    customer_ids: Option<DataFrame>,
    /// The dimension values (rewritten whole by every run).
    dimensions: Option<DataFrame>,
    purchases: Option<DataFrame>,
    line_keys: Option<DataFrame>,
    order_keys: Option<DataFrame>,
    interactions: Option<DataFrame>,
    survey: Option<DataFrame>,
    /// A new customers snapshot (replaces the store's).
    customers: Option<DataFrame>,
    /// Whether this run brings a new customers snapshot (in `customers`, or written already
    /// by a partitioned run): the store's is then not carried over.
    replaces_customers: bool,
}

impl SummaryStore {
    /// Reads the tables of `spec` and summarises them into a new store at `dir` (which must
    /// not exist, or be an empty directory). Every dimension is kept, so that any `--by` works
    /// from the store, and the transactions' order lines are keyed, so that an update
    /// recognises lines it already holds. With [`DatasetSpec::transaction_partitions`], the
    /// transactions are read one customer partition at a time.
    ///
    /// Returns the store and the dataset without its rows (accounting, rejections, files).
    ///
    /// # Errors
    /// [`Error::Store`] when `dir` is a non-empty directory or a file; every error of
    /// [`Dataset::load`]; I/O and query errors.
    pub fn write(
        dir: &Path,
        spec: &DatasetSpec,
        options: &StoreOptions,
    ) -> Result<(SummaryStore, Dataset)> {
        refuse_existing(dir)?;
        let created = !dir.exists();
        let written = Self::write_new(dir, spec, options);
        // A refused or failed write leaves nothing behind (not even the directory it made).
        if written.is_err() && created {
            std::fs::remove_dir_all(dir).ok();
        }
        written
    }

    fn write_new(
        dir: &Path,
        spec: &DatasetSpec,
        options: &StoreOptions,
    ) -> Result<(SummaryStore, Dataset)> {
        let mut spec = store_spec(spec, None);
        let inputs = describe_inputs(&spec, 0)?;
        let staging = stage(dir)?;
        let deferred = DeferredTables::split(&mut spec)?;
        let mut data = Dataset::load(&spec)?;
        let mut builder = Builder::default();
        if data.deferred_transactions.is_some() {
            builder.spill = Some(Spill::new(staging.path(), 0));
        }
        let tables = builder.add_dataset(&mut data, &deferred, Overlap::Keep, None, &spec)?;
        check_usable(&data, options)?;
        let parts = builder.finish()?;
        let manifest = Manifest {
            format: FORMAT.into(),
            schema_version: STORE_SCHEMA_VERSION,
            custmetrics_version: env!("CARGO_PKG_VERSION").into(),
            generation: 1,
            inputs,
            tables,
        };
        commit(dir, &manifest, &parts, 0, None, staging)?;
        let store = SummaryStore {
            dir: dir.to_path_buf(),
            manifest,
        };
        Ok((store, data))
    }

    /// Writes a new store at `dir` from stage 1 run on another engine (see [`crate::engine`]):
    /// the engine's day tables and accounting, checked against the local parsers, with
    /// customers and dimension values given codes in value order (so that the same results
    /// always give the same files), and `spec`'s customers table read here, as [`write`]
    /// reads it. The store is unkeyed: an engine does not compute line keys, so updates treat
    /// its transactions by date (`--overlap`).
    ///
    /// Returns the store and the dataset without rows (its accounting).
    ///
    /// # Errors
    /// The errors of [`EngineResults`](crate::engine::EngineResults)' checks
    /// ([`Error::Engine`], [`Error::UnknownStatus`]); those of [`SummaryStore::write`].
    ///
    /// [`write`]: SummaryStore::write
    pub fn write_from_engine(
        dir: &Path,
        results: &crate::engine::EngineResults,
        spec: &DatasetSpec,
        options: &StoreOptions,
    ) -> Result<(SummaryStore, Dataset)> {
        refuse_existing(dir)?;
        let checked = results.checked_accounting()?;
        if options.strict {
            for (kind, t) in [
                (TableKind::Transactions, &checked.transactions),
                (TableKind::Interactions, &checked.interactions),
            ] {
                if let Some(t) = t
                    && (t.accounting.rows_rejected > 0 || t.accounting.answers_rejected > 0)
                {
                    let mut reasons = t.accounting.rejected_by_reason.clone();
                    reasons.extend(t.accounting.answers_rejected_by_reason.clone());
                    return Err(Error::Engine {
                        message: format!(
                            "--strict: {kind}: {} rows and {} answers rejected ({}); the engine counts rejections but does not list them: run stage 1 locally to see each one",
                            t.accounting.rows_rejected,
                            t.accounting.answers_rejected,
                            crate::io::table::reason_counts(&reasons)
                        ),
                    });
                }
            }
        }
        let plan = &results.plan;
        let mut b = Builder::default();
        // Codes in value order: customers by id, dimension values by value.
        let mut ids: Vec<String> = Vec::new();
        for f in [&results.purchases, &results.interactions]
            .into_iter()
            .flatten()
        {
            let c = f.column(col::CUSTOMER_ID)?.str()?;
            ids.extend(c.iter().flatten().map(str::to_string));
        }
        ids.sort_unstable();
        ids.dedup();
        for id in &ids {
            b.code(id);
        }
        let frames = [
            (TableKind::Transactions, &results.purchases),
            (TableKind::Interactions, &results.interactions),
            (TableKind::Interactions, &results.survey),
        ];
        for (kind, frame) in frames {
            let Some(frame) = frame else { continue };
            for c in frame.columns() {
                if let Some(dim) = c.name().strip_prefix(DIM_PREFIX) {
                    let mut values: Vec<String> =
                        c.str()?.iter().flatten().map(str::to_string).collect();
                    values.sort_unstable();
                    values.dedup();
                    let values = StringChunked::from_iter_values(
                        dim.into(),
                        values.iter().map(String::as_str),
                    );
                    b.dictionary.encode(kind, dim, &values);
                }
            }
        }
        let sorted = |frame: &DataFrame, keys: &[&str]| -> Result<DataFrame> {
            let keys: Vec<String> = keys
                .iter()
                .map(|k| k.to_string())
                .chain(
                    frame
                        .get_column_names()
                        .iter()
                        .map(|c| c.to_string())
                        .filter(|c| c.starts_with(DIM_PREFIX)),
                )
                .collect();
            Ok(frame.sort(keys, SortMultipleOptions::default().with_nulls_last(true))?)
        };
        let in_order = |frame: DataFrame, first: &[&str], last: &[&str]| -> Result<DataFrame> {
            let mut names: Vec<String> = first.iter().map(|c| c.to_string()).collect();
            names.extend(
                frame
                    .get_column_names()
                    .iter()
                    .map(|c| c.to_string())
                    .filter(|c| c.starts_with(DIM_PREFIX)),
            );
            names.extend(last.iter().map(|c| c.to_string()));
            Ok(frame.select(names)?)
        };
        let mut tables = Vec::new();
        let mut data = Dataset::default();
        let table = |kind: TableKind, accounting: Accounting, dimensions: Vec<String>| Table {
            kind,
            frame: DataFrame::empty(),
            accounting,
            rejections: Vec::new(),
            answer_rejections: Vec::new(),
            files: Vec::new(),
            dimensions,
            input_paths: Vec::new(),
            line_keys: Vec::new(),
        };
        if let (Some(planned), Some(acc)) = (&plan.transactions, checked.transactions) {
            if let Some(p) = &results.purchases
                && p.height() > 0
            {
                let p = sorted(p, &[col::CUSTOMER_ID, col::DATE])?;
                let p = b.encode_customers(p, TableKind::Transactions)?;
                b.purchases.push(in_order(
                    p,
                    &["customer", col::DATE, "orders", "revenue_micros"],
                    &[],
                )?);
            }
            let roles = &planned.columns;
            let mut columns = vec![col::CUSTOMER_ID, col::DATE, col::AMOUNT];
            for (role, name) in [
                (crate::io::Role::OrderId, col::ORDER_ID),
                (crate::io::Role::Cost, col::COST),
                (crate::io::Role::Currency, col::CURRENCY),
            ] {
                if roles.column(role).is_some() {
                    columns.push(name);
                }
            }
            tables.push(StoredTable {
                kind: TableKind::Transactions,
                accounting: acc.accounting.clone(),
                rejections: Vec::new(),
                answer_rejections: Vec::new(),
                files: Vec::new(),
                dimensions: roles.dimensions.clone(),
                columns: columns.into_iter().map(str::to_string).collect(),
                days: b.days_of(TableKind::Transactions)?,
                keyed: false,
                settings: vec![planned.settings.clone()],
                identifiers: Vec::new(),
            });
            data.transactions = Some(table(
                TableKind::Transactions,
                acc.accounting,
                roles.dimensions.clone(),
            ));
        }
        if let (Some(planned), Some(acc)) = (&plan.interactions, checked.interactions) {
            if let Some(events) = &results.interactions
                && events.height() > 0
            {
                let events = sorted(events, &[col::CUSTOMER_ID, col::DATE])?;
                let events = b.encode_customers(events, TableKind::Interactions)?;
                b.interactions.push(in_order(
                    events,
                    &["customer", col::DATE],
                    &["interactions"],
                )?);
            }
            if let Some(survey) = &results.survey {
                let survey = sorted(survey, &[col::DATE, col::NPS, col::CSAT])?;
                let survey = b.encode_dims(survey, TableKind::Interactions)?;
                b.survey.push(in_order(
                    survey,
                    &[col::DATE, col::NPS, col::CSAT],
                    &["answers"],
                )?);
            }
            let roles = &planned.columns;
            let mut columns = vec![col::CUSTOMER_ID, col::DATE];
            for (role, name) in [
                (crate::io::Role::Nps, col::NPS),
                (crate::io::Role::Csat, col::CSAT),
                (crate::io::Role::Channel, col::CHANNEL),
                (crate::io::Role::Kind, col::KIND),
            ] {
                if roles.column(role).is_some() {
                    columns.push(name);
                }
            }
            tables.push(StoredTable {
                kind: TableKind::Interactions,
                accounting: acc.accounting.clone(),
                rejections: Vec::new(),
                answer_rejections: Vec::new(),
                files: Vec::new(),
                dimensions: roles.dimensions.clone(),
                columns: columns.into_iter().map(str::to_string).collect(),
                days: b.days_of(TableKind::Interactions)?,
                keyed: false,
                settings: vec![planned.settings.clone()],
                identifiers: acc.identifiers,
            });
            data.interactions = Some(table(
                TableKind::Interactions,
                acc.accounting,
                roles.dimensions.clone(),
            ));
        }
        let mut inputs: Vec<StoreInput> = [
            (TableKind::Transactions, &plan.transactions),
            (TableKind::Interactions, &plan.interactions),
        ]
        .into_iter()
        .filter_map(|(kind, p)| {
            p.as_ref().map(|p| StoreInput {
                table: kind,
                path: p.input.relation.clone(),
                bytes: None,
                blake3: None,
                update: 0,
            })
        })
        .collect();
        if !spec.customers.is_empty() {
            let mut customers_only = store_spec(spec, None);
            customers_only.transactions.clear();
            customers_only.interactions.clear();
            inputs.extend(describe_inputs(&customers_only, 0)?);
            let mut t = crate::io::load_table(
                TableKind::Customers,
                &customers_only.customers,
                &customers_only.customers_options,
            )?;
            b.customers = Some(std::mem::take(&mut t.frame));
            let mut record = stored(&t, None, false, None);
            record
                .settings
                .push(settings(&customers_only.customers_options));
            tables.push(record);
            data.customers = Some(t);
        }
        check_usable(&data, options)?;
        let parts = b.finish()?;
        let manifest = Manifest {
            format: FORMAT.into(),
            schema_version: STORE_SCHEMA_VERSION,
            custmetrics_version: env!("CARGO_PKG_VERSION").into(),
            generation: 1,
            inputs,
            tables,
        };
        let created = !dir.exists();
        let committed =
            stage(dir).and_then(|staging| commit(dir, &manifest, &parts, 0, None, staging));
        if committed.is_err() && created {
            std::fs::remove_dir_all(dir).ok();
        }
        committed?;
        Ok((
            SummaryStore {
                dir: dir.to_path_buf(),
                manifest,
            },
            data,
        ))
    }

    /// Opens the store at `dir`.
    ///
    /// # Errors
    /// [`Error::Store`] when `dir` holds no store; [`Error::StoreVersion`] for a store of
    /// another layout version.
    pub fn open(dir: &Path) -> Result<SummaryStore> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| Error::Store {
            path: dir.to_path_buf(),
            message: format!(
                "not a summary store (cannot read {MANIFEST}: {e}); write one with `custmetrics summarize --out DIR`"
            ),
        })?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Store {
            path: path.clone(),
            message: format!("not a summary store manifest: {e}"),
        })?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(Error::Store {
                path: path.clone(),
                message:
                    "not a summary store manifest (no \"format\": \"custmetrics-summary-store\")"
                        .into(),
            });
        }
        let found = value
            .get("schema_version")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        if found != u64::from(STORE_SCHEMA_VERSION) {
            return Err(Error::StoreVersion {
                path: dir.to_path_buf(),
                found: u32::try_from(found).unwrap_or(u32::MAX),
                written_by: value
                    .get("custmetrics_version")
                    .and_then(|v| v.as_str())
                    .unwrap_or("unknown")
                    .to_string(),
                expected: STORE_SCHEMA_VERSION,
                version: env!("CARGO_PKG_VERSION").into(),
            });
        }
        let manifest: Manifest = serde_json::from_value(value).map_err(|e| Error::Store {
            path: path.clone(),
            message: format!("damaged manifest: {e}"),
        })?;
        Ok(SummaryStore {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join(generation_dir(self.manifest.generation))
    }

    /// What the store holds of the transactions, for loading an update
    /// ([`crate::io::LoadOptions::prior`]): the keys of its order lines (walked in its files)
    /// and the customers with a purchase (read from the purchases' customer and orders
    /// columns only).
    fn prior_rows(&self, frames: &Frames) -> Result<PriorRows> {
        let ids = frames.customer_ids.column(col::CUSTOMER_ID)?.str()?.clone();
        let mut bought = vec![false; ids.len()];
        if let Some(p) = self.read_table("purchases", Some(&["customer", "orders"]))? {
            let customers = p.column("customer")?.i32()?;
            let orders = p.column("orders")?.i32()?;
            for_each_pair(customers, orders, |c, o| {
                if o > 0
                    && let Some(flag) = usize::try_from(c).ok().and_then(|c| bought.get_mut(c))
                {
                    *flag = true;
                }
            });
        }
        Ok(PriorRows::new(
            Arc::new(StoredKeys::of(self, "line_keys")?),
            ids,
            bought,
        ))
    }

    /// Reads the tables of `spec` (new exports) and adds them to the store: purchases,
    /// interactions and survey answers are added to the store's, a customers table replaces
    /// the store's snapshot. Order lines the store already holds (an export overlapping the
    /// previous one) are rejected as repeated, as a raw read of both exports would; refunds of
    /// customers who bought in earlier exports are kept. Rows that cannot be told apart from
    /// the store's (interactions; transactions without order ids) on days the store already
    /// covers follow `overlap`. Atomic: interrupted, the store reads as before.
    ///
    /// Returns the new exports' dataset without its rows (accounting, rejections, files).
    ///
    /// # Errors
    /// [`Error::Store`] for an overlap that `overlap` refuses, or an order of the new exports
    /// that the store already has other lines of; every error of [`Dataset::load`]; I/O and
    /// query errors.
    pub fn update(&mut self, spec: &DatasetSpec, options: &StoreOptions) -> Result<Dataset> {
        // The update reads the store's ids and dimension values and walks its keys, never its
        // rows: its cost grows with the new exports (and the store's keys), not with the history.
        let old = self.read_keys()?;
        let prior = Arc::new(self.prior_rows(&old)?);
        let spec = store_spec(spec, Some(prior));
        let run = self
            .manifest
            .inputs
            .iter()
            .map(|i| i.update)
            .max()
            .unwrap_or(0)
            + 1;
        let inputs = describe_inputs(&spec, run)?;
        let mut spec = spec;
        let staging = stage(&self.dir)?;
        let deferred = DeferredTables::split(&mut spec)?;
        let mut data = Dataset::load(&spec)?;
        let mut builder = Builder::from_frames(&old, StoredKeys::of(self, "order_keys")?)?;
        if data.deferred_transactions.is_some() {
            builder.spill = Some(Spill::new(staging.path(), run));
        }
        let mut tables = builder.add_dataset(
            &mut data,
            &deferred,
            options.overlap,
            Some(&self.manifest),
            &spec,
        )?;
        // The same exports applied again (a retried monthly job): nothing to add, and the
        // store stays as it was, generation included.
        if nothing_new(&data) {
            return Ok(data);
        }
        check_usable(&data, options)?;
        let parts = builder.finish()?;
        // Tables of the store the update did not touch stay as they were.
        for t in &self.manifest.tables {
            if !tables.iter().any(|n| n.kind == t.kind) {
                tables.push(t.clone());
            }
        }
        tables.sort_by_key(|t| t.kind);
        let mut manifest = self.manifest.clone();
        manifest.custmetrics_version = env!("CARGO_PKG_VERSION").into();
        manifest.generation += 1;
        manifest.inputs.extend(inputs);
        manifest.tables = tables;
        // The previous generation stays until the next update, so that a report that read the
        // old manifest just before can still read its files.
        commit(
            &self.dir,
            &manifest,
            &parts,
            run,
            Some(&self.data_dir()),
            staging,
        )?;
        self.manifest = manifest;
        Ok(data)
    }

    /// The store as a [`Dataset`] whose tables hold its days (weighted rows, see
    /// [`col::ORDERS`]) with every dimension, and its accounting, ready for
    /// [`crate::Report::build_owned`].
    ///
    /// # Errors
    /// I/O and query errors reading the store.
    pub fn dataset(&self) -> Result<Dataset> {
        self.read_dataset(None)
    }

    /// As [`SummaryStore::dataset`], with only the dimensions a report splits by (`by`) and
    /// the interactions' channel (the overview's): the others, the customers' attributes
    /// included, are not read.
    ///
    /// # Errors
    /// I/O and query errors reading the store.
    pub fn dataset_for(&self, by: &[String]) -> Result<Dataset> {
        self.read(&StoreRead::new(by.to_vec()))
    }

    /// As [`SummaryStore::dataset_for`], with the purchases left in the store: the report's
    /// stage 1 reads and decodes them one customer partition at a time (`partitions` ranges
    /// of the store's customer codes, each read with a filter on the code), so that only one
    /// partition's rows are held, as `--partitions` does with exports. The interactions, survey
    /// answers and customers snapshot are read whole, as without partitions. 0 and 1 read the
    /// purchases whole ([`SummaryStore::dataset_for`]).
    ///
    /// # Errors
    /// I/O and query errors reading the store.
    pub fn dataset_in_partitions(&self, by: &[String], partitions: u32) -> Result<Dataset> {
        let mut read = StoreRead::new(by.to_vec());
        read.partitions = partitions;
        self.read(&read)
    }

    /// The store as canonical tables for a report, as `read` says: the dimensions in
    /// `read.by` (and the interactions' channel; of the customers' attributes, those in
    /// `read.by`), the purchases whole or in partitions
    /// ([`SummaryStore::dataset_in_partitions`]), the interactions' rows or only their
    /// accounting. `ReportOptions::store_read` says what a report needs.
    ///
    /// # Errors
    /// I/O and query errors reading the store; a `by` the store kept as an identifier.
    pub fn read(&self, read: &StoreRead) -> Result<Dataset> {
        let dims = self.report_dims(&read.by)?;
        let in_partitions = read.partitions > 1 || read.defer_purchases;
        // In partitions, the ids are read when a partition is first decoded (retention
        // counted from the purchase days never needs them).
        let frames = self.read_frames(
            Some(&dims),
            !in_partitions,
            read.interaction_rows,
            read.interaction_events,
            read.customer_rows,
            !in_partitions,
        )?;
        let (ids, dictionary) = frames.ids_and_dictionary()?;
        if !in_partitions {
            return self.decode(&frames, &ids, &dictionary, true);
        }
        // Activity from interactions, the one reader of their ids, is refused in partitions.
        let mut data = self.decode(&frames, &ids, &dictionary, false)?;
        if let (Some(template), Some(table)) = (
            data.transactions.take(),
            self.manifest
                .tables
                .iter()
                .find(|t| t.kind == TableKind::Transactions),
        ) {
            let rows = StorePurchases {
                store: self.clone(),
                parts: self.parts("purchases")?,
                dims,
                customers: std::sync::OnceLock::new(),
                dictionary,
                table: table.clone(),
                template,
            };
            data.deferred_transactions = Some(DeferredTransactions::from_rows(
                Arc::new(rows),
                read.partitions,
            ));
        }
        Ok(data)
    }

    /// The dimensions a report reads: those it splits by (`by`) and the interactions' channel.
    /// Refuses a `by` that the store kept as an identifier, not a dimension.
    fn report_dims(&self, by: &[String]) -> Result<Vec<String>> {
        for t in &self.manifest.tables {
            if let Some(i) = t.identifiers.iter().find(|i| by.contains(&i.name)) {
                return Err(Error::Store {
                    path: self.dir.clone(),
                    message: format!(
                        "the store did not keep {} of the {} as a dimension: {} distinct values in {} rows, an identifier rather than a segment; split by a column with fewer values",
                        i.name, t.kind, i.distinct, i.rows
                    ),
                });
            }
        }
        let mut dims = by.to_vec();
        dims.push(col::CHANNEL.to_string());
        Ok(dims)
    }

    fn read_dataset(&self, dims: Option<&[String]>) -> Result<Dataset> {
        let frames = self.read_frames(dims, true, true, true, true, true)?;
        let (ids, dictionary) = frames.ids_and_dictionary()?;
        self.decode(&frames, &ids, &dictionary, true)
    }

    /// The store's frames as canonical tables (see [`SummaryStore::dataset`]); without
    /// purchases in `frames`, the transactions table has no rows (only its accounting).
    fn decode(
        &self,
        frames: &Frames,
        ids: &Series,
        dictionary: &Dictionary,
        interaction_ids: bool,
    ) -> Result<Dataset> {
        let store_files = self.files();
        let mut data = Dataset::default();
        for t in &self.manifest.tables {
            let frame = match t.kind {
                TableKind::Transactions => match &frames.purchases {
                    Some(p) => decode_purchases(p, ids, 0, dictionary, t)?,
                    // Transactions with no usable row (written with `allow_empty`).
                    None => DataFrame::new_infer_height(vec![
                        Column::new_empty(col::CUSTOMER_ID.into(), &DataType::String),
                        Column::new_empty(col::DATE.into(), &DataType::Date),
                        Column::new_empty(col::AMOUNT.into(), &DataType::Float64),
                        Column::new_empty(col::ORDERS.into(), &DataType::UInt32),
                        Column::new_empty(col::CUSTOMER_CODE.into(), &DataType::UInt32),
                    ])?,
                },
                TableKind::Interactions => decode_interactions(
                    frames.interactions.as_ref(),
                    frames.survey.as_ref(),
                    interaction_ids.then_some(ids),
                    dictionary,
                    t,
                )?,
                TableKind::Customers => match &frames.customers {
                    Some(c) => c.clone(),
                    None => continue,
                },
            };
            let table = Table {
                kind: t.kind,
                frame,
                accounting: t.accounting.clone(),
                rejections: t.rejections.clone(),
                answer_rejections: t.answer_rejections.clone(),
                files: t.files.clone(),
                dimensions: t.dimensions.clone(),
                input_paths: store_files.clone(),
                line_keys: Vec::new(),
            };
            match t.kind {
                TableKind::Transactions => data.transactions = Some(table),
                TableKind::Interactions => data.interactions = Some(table),
                TableKind::Customers => data.customers = Some(table),
            }
        }
        Ok(data)
    }

    /// The store's files (outputs must never overwrite them).
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.dir.join(MANIFEST)];
        if let Ok(entries) = std::fs::read_dir(self.data_dir()) {
            files.extend(entries.flatten().map(|e| e.path()));
        }
        files.sort();
        files
    }

    /// The files of one table in the current generation, in order: `NAME-RUN.parquet`, one
    /// part per run that added to it.
    fn parts(&self, name: &str) -> Result<Vec<PathBuf>> {
        let dir = self.data_dir();
        let mut parts: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(&dir, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix(name))
                    .and_then(|n| n.strip_prefix('-'))
                    .and_then(|n| n.strip_suffix(".parquet"))
                    .is_some_and(|run| run.bytes().all(|b| b.is_ascii_digit()))
            })
            .collect();
        parts.sort();
        Ok(parts)
    }

    /// One table's parts read and concatenated in order, once (`None` without parts), with the
    /// columns `pick` chooses from each part's schema (all: `None`). Parts written by different
    /// runs may differ in their dimension columns (diagonal concatenation).
    fn read_table_with(
        &self,
        name: &str,
        pick: &dyn Fn(&Schema) -> Option<Vec<String>>,
    ) -> Result<Option<DataFrame>> {
        let parts = self
            .parts(name)?
            .iter()
            .map(|path| read_parquet(path, pick))
            .collect::<Result<Vec<_>>>()?;
        if parts.len() <= 1 {
            return Ok(parts.into_iter().next());
        }
        let args = UnionArgs {
            diagonal: true,
            ..UnionArgs::default()
        };
        let lazy: Vec<LazyFrame> = parts.into_iter().map(IntoLazy::lazy).collect();
        Ok(Some(concat(lazy, args)?.collect()?))
    }

    /// One table's parts, with only the `columns` given (those present) when given.
    fn read_table(&self, name: &str, columns: Option<&[&str]>) -> Result<Option<DataFrame>> {
        self.read_table_with(name, &|schema: &Schema| {
            columns.map(|wanted| {
                schema
                    .iter_names()
                    .filter(|c| wanted.contains(&c.as_str()))
                    .map(|c| c.to_string())
                    .collect()
            })
        })
    }

    /// The tables a report reads, with only the dimension columns in `dims` when given (the
    /// customers' attributes included; and without the purchases unless `purchases`, without
    /// the interactions and survey answers unless `interactions`, without the interaction
    /// events unless `events` too, and of the customers snapshot only the dimensions unless
    /// `customer_rows`: without any, its rows and no column).
    fn read_frames(
        &self,
        dims: Option<&[String]>,
        purchases: bool,
        interactions: bool,
        events: bool,
        customer_rows: bool,
        ids: bool,
    ) -> Result<Frames> {
        let keep_dims = |schema: &Schema| -> Option<Vec<String>> {
            let dims = dims?;
            Some(
                schema
                    .iter_names()
                    .filter(|c| {
                        c.strip_prefix(DIM_PREFIX)
                            .is_none_or(|d| dims.iter().any(|w| w == d))
                    })
                    .map(|c| c.to_string())
                    .collect(),
            )
        };
        let table = |name: &str| self.read_table_with(name, &keep_dims);
        let required = |name: &str| -> Result<DataFrame> {
            table(name)?.ok_or_else(|| Error::Store {
                path: self.dir.clone(),
                message: format!("{name} is missing from {}", self.data_dir().display()),
            })
        };
        Ok(Frames {
            customer_ids: ids_or_none(match ids {
                true => self.read_table("customer_ids", None)?,
                false => None,
            })?,
            dimensions: required("dimensions")?,
            purchases: match purchases {
                true => table("purchases")?,
                false => None,
            },
            interactions: match interactions && events {
                true => table("interactions")?,
                false => None,
            },
            survey: match interactions {
                true => table("survey")?,
                false => None,
            },
            // The snapshot's attributes are dimensions too (`--by plan`): with `dims`, only
            // those are read beside the ids, dates and costs.
            customers: self.read_table_with("customers", &|schema: &Schema| {
                let dims = dims?;
                let fixed: &[&str] = match customer_rows {
                    true => &super::CUSTOMER_COLUMNS_READ,
                    false => &[],
                };
                Some(
                    schema
                        .iter_names()
                        .filter(|c| fixed.contains(&c.as_str()) || dims.iter().any(|d| d == *c))
                        .map(|c| c.to_string())
                        .collect(),
                )
            })?,
        })
    }

    /// What an update reads: the ids and the dimension values, not the rows (nor the keys:
    /// [`StoredKeys`]).
    fn read_keys(&self) -> Result<Frames> {
        let required = |name: &str| -> Result<DataFrame> {
            self.read_table(name, None)?.ok_or_else(|| Error::Store {
                path: self.dir.clone(),
                message: format!("{name} is missing from {}", self.data_dir().display()),
            })
        };
        Ok(Frames {
            customer_ids: ids_or_none(self.read_table("customer_ids", None)?)?,
            dimensions: required("dimensions")?,
            purchases: None,
            interactions: None,
            survey: None,
            customers: None,
        })
    }
}

/// A store's keys (`line_keys` or `order_keys`), sorted within each part, walked in its files
/// [`KEY_BATCH_ROWS`] rows at a time: an update asks which of its new keys the store holds
/// without loading them all. Loaded, a 10M-line store's keys were 240 MB read and 240 MB more
/// copied into lists, most of an update's memory and of its time in page faults.
#[derive(Debug)]
struct StoredKeys {
    parts: Vec<PathBuf>,
    /// Whether the parts hold any key.
    empty: bool,
}

/// Rows of a key part read at a time: four row groups as written (16 MB of line keys).
const KEY_BATCH_ROWS: usize = 4 * ROW_GROUP_ROWS;

impl StoredKeys {
    fn of(store: &SummaryStore, table: &str) -> Result<StoredKeys> {
        let parts = store.parts(table)?;
        let empty = rows_in_parts(&parts)? == 0;
        Ok(StoredKeys { parts, empty })
    }

    /// Those of `wanted` (sorted, without repeats) in the parts, whose `columns` give each key:
    /// `runs` turns one batch read (and its file) into runs of values in file order (a run per
    /// row group), `len` and `at` read a run (keys are built as they are compared).
    fn held<T, R>(
        &self,
        wanted: &[T],
        columns: &[&str],
        runs: impl Fn(&Path, &DataFrame) -> Result<Vec<R>>,
        len: impl Fn(&R) -> usize + Sync,
        at: impl Fn(&R, usize) -> Option<T> + Sync,
    ) -> Result<Vec<T>>
    where
        T: Ord + Copy + Send + Sync,
        R: Sync,
    {
        use rayon::prelude::*;
        let mut found = Vec::new();
        if wanted.is_empty() || self.empty {
            return Ok(found);
        }
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        for path in &self.parts {
            let broken = |e: PolarsError| Error::Store {
                path: path.clone(),
                message: format!("cannot read: {e}"),
            };
            let open = || -> Result<ParquetReader<File>> {
                let file = File::open(path).map_err(|e| Error::io(path, e))?;
                Ok(ParquetReader::new(file).with_columns(Some(columns.clone())))
            };
            let mut first = open()?;
            let metadata = first.get_metadata().map_err(broken)?.clone();
            let rows = metadata.num_rows;
            // The last key of the batches before: each batch must start at or after it.
            let mut last: Option<T> = None;
            for offset in (0..rows).step_by(KEY_BATCH_ROWS) {
                let mut reader = open()?.with_slice(Some((offset, KEY_BATCH_ROWS)));
                reader.set_metadata(metadata.clone());
                let batch = reader.finish().map_err(broken)?;
                let runs = runs(path, &batch)?;
                // Each run sorted, and each after the one before: a store whose keys are out
                // of order would let repeated lines through, counted twice.
                let sorted = runs
                    .par_iter()
                    .all(|r| (1..len(r)).all(|i| at(r, i - 1) <= at(r, i)));
                let bounds = runs.iter().filter_map(|r| {
                    let end = len(r).checked_sub(1)?;
                    at(r, 0).zip(at(r, end))
                });
                let mut in_order = sorted;
                for (first, end) in bounds {
                    in_order &= last.is_none_or(|l| l <= first);
                    last = Some(end);
                }
                if !in_order {
                    return Err(Error::Store {
                        path: path.clone(),
                        message: format!(
                            "its keys are not sorted (rows {offset} to {}): the store was not written by custmetrics or is damaged; summarise the exports again",
                            offset + batch.height()
                        ),
                    });
                }
                found.par_extend(
                    runs.par_iter()
                        .flat_map_iter(|r| held_in_run(wanted, len(r), |i| at(r, i))),
                );
            }
        }
        Ok(found)
    }

    /// [`StoredKeys::held`] for order keys (`key`, int64 holding the u64 hash).
    fn held_orders(&self, wanted: &[u64]) -> Result<Vec<u64>> {
        self.held(
            wanted,
            &["key"],
            |path, batch| {
                let keys = batch.column("key")?.i64()?;
                no_nulls(keys, path)?;
                Ok(keys.downcast_iter().cloned().collect::<Vec<_>>())
            },
            |r: &KeyArray| r.len(),
            |r: &KeyArray, i| r.values().get(i).map(|&k| k as u64),
        )
    }
}

impl crate::io::load::SortedKeys<u128> for StoredKeys {
    /// The line keys held (`key_high`, `key_low`: the u128 hash's halves).
    fn held(&self, wanted: &[u128]) -> Result<Vec<u128>> {
        StoredKeys::held(
            self,
            wanted,
            &["key_high", "key_low"],
            |path, batch| {
                let high = batch.column("key_high")?.i64()?;
                let low = batch.column("key_low")?.i64()?;
                no_nulls(high, path)?;
                no_nulls(low, path)?;
                let (high, low) = match high.chunk_lengths().eq(low.chunk_lengths()) {
                    true => (high.clone(), low.clone()),
                    false => (high.rechunk().into_owned(), low.rechunk().into_owned()),
                };
                Ok(high
                    .downcast_iter()
                    .cloned()
                    .zip(low.downcast_iter().cloned())
                    .collect::<Vec<_>>())
            },
            |(h, _): &(KeyArray, KeyArray)| h.len(),
            |(h, l): &(KeyArray, KeyArray), i| {
                let (&h, &l) = h.values().get(i).zip(l.values().get(i))?;
                Some((u128::from(h as u64) << 64) | u128::from(l as u64))
            },
        )
    }

    fn is_empty(&self) -> bool {
        self.empty
    }
}

/// One chunk of a key column (a row group read back).
type KeyArray = polars_arrow::array::PrimitiveArray<i64>;

/// Refuses a key column with a null: custmetrics never writes one, and a key skipped would
/// let its line through twice.
fn no_nulls(keys: &Int64Chunked, path: &Path) -> Result<()> {
    match keys.null_count() {
        0 => Ok(()),
        n => Err(Error::Store {
            path: path.to_path_buf(),
            message: format!(
                "{n} of its keys are null: the store was not written by custmetrics or is damaged; summarise the exports again"
            ),
        }),
    }
}

/// A store's purchases, read one range of customer codes at a time by the report's stage 1
/// ([`SummaryStore::dataset_in_partitions`]), or as plain purchase days
/// ([`StorePurchases::purchase_days`]).
pub(super) struct StorePurchases {
    /// The purchases' parts.
    parts: Vec<PathBuf>,
    /// The dimensions read (others are not decoded).
    dims: Vec<String>,
    /// The store, to read the ids from.
    store: SummaryStore,
    /// The number of customer codes, once counted ([`StorePurchases::customers`]).
    customers: std::sync::OnceLock<u64>,
    dictionary: Dictionary,
    table: StoredTable,
    /// The transactions table without rows: its accounting, rejections and files, handed out
    /// with partition 0 only (so that the partitions add up to it once).
    template: Table,
}

impl std::fmt::Debug for StorePurchases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorePurchases")
            .field("parts", &self.parts)
            .field("customers", &self.customers.get())
            .finish_non_exhaustive()
    }
}

impl PartitionedRows for StorePurchases {
    fn load_partition(&self, index: u32, count: u32) -> Result<Table> {
        // Codes are dense (0..customers), so equal ranges of codes are equal numbers of
        // customers; each part is scanned with the range as a filter, so only its rows are
        // decoded, and only the range's ids are read (every id was 0.6 GB at 26M customers,
        // held through every partition).
        let customers = self.customers()?;
        let bound = |i: u32| -> i32 {
            i32::try_from(customers * u64::from(i) / u64::from(count.max(1))).unwrap_or(i32::MAX)
        };
        let (lo, hi) = (bound(index), bound(index + 1));
        let mut frames = Vec::with_capacity(self.parts.len());
        for path in &self.parts {
            let keep = |schema: &Schema| -> Vec<Expr> {
                schema
                    .iter_names()
                    .filter(|c| {
                        c.strip_prefix(DIM_PREFIX)
                            .is_none_or(|d| self.dims.iter().any(|w| w == d))
                    })
                    .map(|c| col(c.clone()))
                    .collect()
            };
            frames.push(read_code_range(path, keep, lo, hi)?.lazy());
        }
        // Parts written by different runs may differ in their dimension columns.
        let frame = match frames.is_empty() {
            true => self.template.frame.clone(),
            false => {
                let args = UnionArgs {
                    diagonal: true,
                    ..UnionArgs::default()
                };
                let rows = concat(frames, args)?.collect()?;
                let ids = self.ids_of_codes(lo, hi)?;
                decode_purchases(&rows, &ids, lo as u32, &self.dictionary, &self.table)?
            }
        };
        Ok(self.table(frame, index == 0))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl StorePurchases {
    /// The number of customer codes (the rows of the store's id table, from its parts'
    /// footers), counted once.
    fn customers(&self) -> Result<u64> {
        if let Some(&n) = self.customers.get() {
            return Ok(n);
        }
        let n = rows_in_parts(&self.store.parts("customer_ids")?)? as u64;
        Ok(*self.customers.get_or_init(|| n))
    }

    /// The ids of codes `lo..hi`, in code order, in one chunk: the id table's rows of those
    /// codes (it holds one row per code, in code order, as the store writes it; checked).
    fn ids_of_codes(&self, lo: i32, hi: i32) -> Result<Series> {
        let dir = self.store.data_dir();
        let mut frames = Vec::new();
        for path in self.store.parts("customer_ids")? {
            let columns = |_: &Schema| vec![col("customer"), col(col::CUSTOMER_ID)];
            frames.push(read_code_range(&path, columns, lo, hi)?.lazy());
        }
        let frame = match frames.is_empty() {
            true => ids_or_none(None)?,
            false => concat(frames, UnionArgs::default())?.collect()?,
        };
        let codes = frame.column("customer")?.cast(&DataType::Int32)?;
        let in_order = codes
            .i32()?
            .iter()
            .zip(lo..)
            .all(|(code, expected)| code == Some(expected));
        if !in_order || frame.height() as i64 != i64::from(hi) - i64::from(lo) {
            return Err(Error::Store {
                path: dir,
                message: format!(
                    "the customer ids do not list codes {lo} to {} once each, in order",
                    hi - 1
                ),
            });
        }
        Ok(frame
            .column(col::CUSTOMER_ID)?
            .as_materialized_series()
            .rechunk())
    }

    /// Every customer's id by code, in one chunk, read from the store.
    fn read_ids(&self) -> Result<Series> {
        let frame = ids_or_none(self.store.read_table("customer_ids", None)?)?;
        Ok(frame
            .column(col::CUSTOMER_ID)?
            .as_materialized_series()
            .rechunk())
    }

    /// Each customer's signup day (days since 1970-01-01) by code, from a customers table's
    /// `customer_id` and `signup_date` (the store's snapshot): ids matched to the store's by
    /// sorting and merging, as stage 1 matches them to the summaries' customers, and a
    /// repeated id keeps its last non-null date, as there. Empty when the table has no signup
    /// dates.
    ///
    /// # Errors
    /// The store's ids unreadable, or the table's columns of the wrong type.
    pub(super) fn signup_days(&self, customers: &DataFrame) -> Result<Vec<Option<i32>>> {
        if customers.get_column_index(col::SIGNUP_DATE).is_none() {
            return Ok(Vec::new());
        }
        // Read for the matching only, not kept: the counted path reads no other id, and at
        // 26M customers they are 0.6 GB beside the purchase days.
        let ids = self.read_ids()?;
        let ids = ids.str()?;
        let list: Vec<&str> = ids.iter().map(Option::unwrap_or_default).collect();
        let rows = customers.column(col::CUSTOMER_ID)?.str()?;
        let codes = super::positions_in_id_list(&list, rows);
        let days = customers.column(col::SIGNUP_DATE)?.cast(&DataType::Int32)?;
        let mut by_code = vec![None; list.len()];
        // Rows in table order, so that a later row of a repeated id wins.
        for (code, day) in codes.iter().zip(days.i32()?.iter()) {
            if let (Some(code), Some(day)) = (code, day)
                && let Some(slot) = by_code.get_mut(*code as usize)
            {
                *slot = Some(day);
            }
        }
        Ok(by_code)
    }

    /// The last day of the purchases held (days since 1970-01-01), as the manifest records it.
    pub(super) fn last_day(&self) -> Option<i32> {
        self.table.days.map(|(_, last)| last)
    }

    /// The transactions table without rows: all of its accounting, rejections and files.
    pub(super) fn accounting(&self) -> Table {
        self.table(self.template.frame.clone(), true)
    }

    /// The transactions table with `frame`; the accounting, rejections and files only when
    /// `first` (so that partitions add up to them once).
    fn table(&self, frame: DataFrame, first: bool) -> Table {
        let t = &self.template;
        Table {
            kind: t.kind,
            frame,
            accounting: match first {
                true => t.accounting.clone(),
                false => Accounting::default(),
            },
            rejections: match first {
                true => t.rejections.clone(),
                false => Vec::new(),
            },
            answer_rejections: match first {
                true => t.answer_rejections.clone(),
                false => Vec::new(),
            },
            files: match first {
                true => t.files.clone(),
                false => Vec::new(),
            },
            dimensions: t.dimensions.clone(),
            input_paths: t.input_paths.clone(),
            line_keys: Vec::new(),
        }
    }

    /// Every part's purchase days from `from` to `to` (days since 1970-01-01, both optional
    /// and inclusive), as plain columns: customer codes, no ids, no dimensions. `None` when a
    /// part has a null in them (the general read says what is wrong with it).
    ///
    /// # Errors
    /// I/O errors, and a part without the columns.
    pub(super) fn purchase_days(
        &self,
        from: Option<i32>,
        to: Option<i32>,
    ) -> Result<Option<super::cohorts::PurchaseDays>> {
        const COLUMNS: [&str; 4] = ["customer", col::DATE, "orders", "revenue_micros"];
        // Room for every row (from the parts' footers), so that the columns are not copied
        // as they grow; the parts are then read one at a time.
        let rows = rows_in_parts(&self.parts)?;
        let mut days = super::cohorts::PurchaseDays::with_capacity(rows);
        let window = from.unwrap_or(i32::MIN)..=to.unwrap_or(i32::MAX);
        for path in &self.parts {
            let frame = read_parquet(path, |_| Some(COLUMNS.map(String::from).to_vec()))?;
            let column = |name: &str, dtype: &DataType| -> Result<Series> {
                let c = frame.column(name)?.cast(dtype)?;
                Ok(c.as_materialized_series().clone())
            };
            let [customer, day, orders, revenue] = [
                column("customer", &DataType::Int32)?,
                column(col::DATE, &DataType::Int32)?,
                column("orders", &DataType::Int32)?,
                column("revenue_micros", &DataType::Int64)?,
            ];
            let (customer, day, orders, revenue) =
                (customer.i32()?, day.i32()?, orders.i32()?, revenue.i64()?);
            let negative = |c: &Int32Chunked| c.min().is_some_and(|m| m < 0);
            let nulls = customer.null_count() + day.null_count() + orders.null_count();
            if nulls + revenue.null_count() > 0 || negative(customer) || negative(orders) {
                return Ok(None);
            }
            // Rows outside the window are skipped by a mask, built only when there are some.
            let outside = day
                .min()
                .zip(day.max())
                .is_some_and(|(lo, hi)| !window.contains(&lo) || !window.contains(&hi));
            let keep: Option<Vec<bool>> = outside.then(|| {
                day.into_no_null_iter()
                    .map(|d| window.contains(&d))
                    .collect()
            });
            let keep = keep.as_deref();
            let super::cohorts::PurchaseDays {
                customer: customers,
                day: dates,
                orders: purchases,
                revenue: money,
            } = &mut days;
            rayon::join(
                || {
                    append(customer, keep, customers, |c| c as u32);
                    append(day, keep, dates, |d| d);
                },
                || {
                    append(orders, keep, purchases, |o| o as u32);
                    append(revenue, keep, money, |r| r);
                },
            );
        }
        Ok(Some(days))
    }
}

/// Appends a column without nulls to `out`, chunk by chunk (rows where `keep` is false left
/// out).
fn append<T: PolarsNumericType, U>(
    values: &ChunkedArray<T>,
    keep: Option<&[bool]>,
    out: &mut Vec<U>,
    convert: impl Fn(T::Native) -> U,
) {
    let mut offset = 0;
    for chunk in values.downcast_iter() {
        let slice = chunk.values().as_slice();
        match keep {
            None => out.extend(slice.iter().map(|&v| convert(v))),
            Some(keep) => out.extend(
                slice
                    .iter()
                    .zip(keep.get(offset..offset + slice.len()).unwrap_or_default())
                    .filter(|(_, k)| **k)
                    .map(|(&v, _)| convert(v)),
            ),
        }
        offset += slice.len();
    }
}

/// A store's customer ids, or none (a store written from no usable transaction or interaction
/// has no part).
fn ids_or_none(ids: Option<DataFrame>) -> Result<DataFrame> {
    match ids {
        Some(ids) => Ok(ids),
        None => Ok(DataFrame::new_infer_height(vec![
            Column::new_empty("customer".into(), &DataType::Int32),
            Column::new_empty(col::CUSTOMER_ID.into(), &DataType::String),
        ])?),
    }
}

/// The rows of Parquet files, from their footers (no row is decoded).
fn rows_in_parts(parts: &[PathBuf]) -> Result<usize> {
    let mut rows = 0;
    for path in parts {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        rows += ParquetReader::new(file)
            .num_rows()
            .map_err(|e| Error::Store {
                path: path.clone(),
                message: format!("cannot read: {e}"),
            })?;
    }
    Ok(rows)
}

/// The rows of one store part whose customer code is in `lo..hi`, with the columns `columns`
/// picks from its schema: the part is scanned with the range as a filter, so only those rows
/// are decoded.
fn read_code_range(
    path: &Path,
    columns: impl FnOnce(&Schema) -> Vec<Expr>,
    lo: i32,
    hi: i32,
) -> Result<DataFrame> {
    let broken = |e: PolarsError| Error::Store {
        path: path.to_path_buf(),
        message: format!("cannot read: {e}"),
    };
    let mut scan =
        LazyFrame::scan_parquet(PlRefPath::try_from_path(path)?, ScanArgsParquet::default())
            .map_err(broken)?;
    let schema = scan.collect_schema().map_err(broken)?;
    scan.select(columns(&schema))
        .filter(
            col("customer")
                .gt_eq(lit(lo))
                .and(col("customer").lt(lit(hi))),
        )
        .collect()
        .map_err(broken)
}

/// Reads one Parquet file, with the columns `columns` picks from its schema (all: `None`).
fn read_parquet(
    path: &Path,
    columns: impl FnOnce(&Schema) -> Option<Vec<String>>,
) -> Result<DataFrame> {
    let broken = |e: PolarsError| Error::Store {
        path: path.to_path_buf(),
        message: format!("cannot read: {e}"),
    };
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = ParquetReader::new(file);
    let schema = reader.schema().map_err(broken)?;
    let schema = Schema::from_arrow_schema(&schema);
    if let Some(wanted) = columns(&schema) {
        reader = reader.with_columns(Some(wanted));
    }
    reader.finish().map_err(broken)
}

/// Whether every row of a table read for an update is one the store already holds (a repeated
/// order line, or a row on a day it covers left out with [`Overlap::Skip`]).
fn all_held(t: &Table) -> bool {
    let a = &t.accounting;
    let held = a
        .rejected_by_reason
        .get("duplicate_row")
        .copied()
        .unwrap_or(0)
        + a.excluded_by_reason
            .get(ALREADY_IN_STORE)
            .copied()
            .unwrap_or(0);
    t.kind != TableKind::Customers && a.rows_used == 0 && a.rows_read > 0 && held == a.rows_read
}

/// Whether an update brings nothing: every table read is all rows the store holds (a customers
/// export always counts: it replaces the snapshot).
fn nothing_new(data: &Dataset) -> bool {
    let mut tables = data.tables().peekable();
    tables.peek().is_some() && tables.all(all_held)
}

/// Refuses, before anything is written, a table with no usable row (unless
/// [`StoreOptions::allow_empty`]; a table whose every row the store already holds is not
/// empty data) and, with [`StoreOptions::strict`], the first rejected row.
fn check_usable(data: &Dataset, options: &StoreOptions) -> Result<()> {
    if !options.allow_empty {
        let mut unheld = data.clone();
        for t in [
            &mut unheld.transactions,
            &mut unheld.interactions,
            &mut unheld.customers,
        ] {
            if t.as_ref().is_some_and(all_held) {
                *t = None;
            }
        }
        unheld.check_not_empty()?;
    }
    if options.strict
        && let Some(r) = data.first_rejection()
    {
        return Err(Error::RejectedRow {
            path: r.file.clone().into(),
            line: r.line.unwrap_or(r.row),
            column: r.column.clone(),
            value: r.value.clone(),
            reason: r.reason.to_string(),
        });
    }
    Ok(())
}

/// Refuses to write a new store over anything but an empty directory.
fn refuse_existing(dir: &Path) -> Result<()> {
    if dir.exists() {
        let empty = dir.is_dir()
            && std::fs::read_dir(dir)
                .map_err(|e| Error::io(dir, e))?
                .next()
                .is_none();
        if !empty {
            return Err(Error::Store {
                path: dir.to_path_buf(),
                message: "already exists; add new exports to a store with `summarize --update`, or choose a new directory".into(),
            });
        }
    }
    Ok(())
}

/// How a store reads its inputs: every dimension (any `--by` must work from the store), the
/// transactions' order lines keyed, and what the store already holds for an update.
fn store_spec(spec: &DatasetSpec, prior: Option<Arc<PriorRows>>) -> DatasetSpec {
    let mut spec = spec.clone();
    for o in [
        &mut spec.transactions_options,
        &mut spec.interactions_options,
        &mut spec.customers_options,
    ] {
        o.read_dimensions = None;
    }
    spec.transactions_options.keep_line_keys = true;
    spec.transactions_options.dimensions_as_categories = true;
    spec.transactions_options.prior = prior;
    spec
}

fn generation_dir(generation: u64) -> String {
    format!("g{generation}")
}

/// Writes generation `manifest.generation` of the store at `dir`: the files of the `previous`
/// generation (hard links, not copies: an update's cost does not grow with the history), the
/// `parts` this run adds as `NAME-RUN.parquet`, and the tables it rewrites (the dimension
/// values; the customers snapshot when a new one is given); then the manifest that names it
/// (atomically: a temporary file renamed over the old one).
fn commit(
    dir: &Path,
    manifest: &Manifest,
    parts: &NewParts,
    run: u32,
    previous: Option<&Path>,
    staging: tempfile::TempDir,
) -> Result<()> {
    let target = dir.join(generation_dir(manifest.generation));
    // A generation left by an interrupted update is not named by the manifest: replace it.
    if target.exists() {
        std::fs::remove_dir_all(&target).map_err(|e| Error::io(&target, e))?;
    }
    if let Some(previous) = previous {
        for entry in std::fs::read_dir(previous)
            .map_err(|e| Error::io(previous, e))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().to_string();
            let rewritten = name.starts_with("dimensions-")
                || (parts.replaces_customers && name.starts_with("customers-"));
            if rewritten {
                continue;
            }
            let to = staging.path().join(&name);
            if std::fs::hard_link(entry.path(), &to).is_err() {
                std::fs::copy(entry.path(), &to).map_err(|e| Error::io(&to, e))?;
            }
        }
    }
    write_parts(staging.path(), &format!("{run:05}"), parts)?;
    let staged = staging.keep();
    std::fs::rename(&staged, &target).map_err(|e| Error::io(&target, e))?;
    let json = serde_json::to_string_pretty(manifest)
        .map_err(|e| Error::io(dir.join(MANIFEST), std::io::Error::other(e)))?;
    crate::output::write_output(&dir.join(MANIFEST), |w| {
        w.write_all(json.as_bytes())?;
        w.write_all(b"\n")
    })?;
    // Leftovers of interrupted runs: staging directories and generations older than the
    // previous one (kept for readers that opened the old manifest just before).
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let stale_generation = name
                .strip_prefix('g')
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|g| g != manifest.generation && g + 1 != manifest.generation);
            if name.starts_with(".staging-") || stale_generation {
                std::fs::remove_dir_all(e.path()).ok();
            }
        }
    }
    Ok(())
}

/// A staging directory inside the store's directory (created if need be), where a run writes
/// its generation before [`commit`] renames it into place; removed when dropped unrenamed.
fn stage(dir: &Path) -> Result<tempfile::TempDir> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(dir)
        .map_err(|e| Error::io(dir, e))
}

/// Writes each table `parts` holds to `dir` as `NAME-SUFFIX.parquet`, synced. The files are
/// written at the same time: one after another, the keys' (uncompressed) pages and each file's
/// sync left a core idle for ~1 s of a 10M-row summarize.
fn write_parts(dir: &Path, suffix: &str, parts: &NewParts) -> Result<()> {
    use rayon::prelude::*;
    let tables = [
        ("dimensions", &parts.dimensions),
        ("customer_ids", &parts.customer_ids),
        ("purchases", &parts.purchases),
        ("line_keys", &parts.line_keys),
        ("order_keys", &parts.order_keys),
        ("interactions", &parts.interactions),
        ("survey", &parts.survey),
        ("customers", &parts.customers),
    ];
    tables
        .par_iter()
        .filter_map(|(name, frame)| Some((*name, frame.as_ref()?)))
        .try_for_each(|(name, frame)| {
            let path = dir.join(format!("{name}-{suffix}.parquet"));
            let mut file = File::create(&path).map_err(|e| Error::io(&path, e))?;
            let mut frame = frame.clone();
            // Keys are hashes: compressing them saved 3% of their size and took a twentieth
            // of a 10M-row summarize. The other files are read by every command: LZ4 rather
            // than zstd (level 1) decompresses the purchases' money and codes in less than
            // half the time and compresses faster, for ~40% more bytes (62 → 87 MB at 10M
            // rows, whose generated export is ~500 MB of CSV or 60 MB of zstd Parquet).
            let compression = match name {
                "line_keys" | "order_keys" => ParquetCompression::Uncompressed,
                _ => ParquetCompression::Lz4Raw,
            };
            write_parquet(&mut file, &mut frame, compression.into())?;
            file.sync_all().map_err(|e| Error::io(&path, e))
        })
}

/// Rows per row group: polars' writer's default.
const ROW_GROUP_ROWS: usize = 512 * 512;

/// Writes `frame` as polars' `ParquetWriter` does (row groups of [`ROW_GROUP_ROWS`], full
/// statistics, the Arrow schema in the footer), but with each column's encoding chosen by
/// [`column_encoding`], and each row group's columns encoded and compressed in parallel, a few
/// row groups at a time. polars 0.55's writer tries a dictionary on every integer column and,
/// where the values span more than 2^16, estimates their cardinality and then builds the
/// dictionary with a hash table; it encodes and compresses the pages on the writing thread.
/// On the purchases' customer codes and money and on the keys (hashes), that was ~3 s of a
/// 10M-row summarize, most of it on one core.
fn write_parquet(
    file: &mut File,
    frame: &mut DataFrame,
    compression: polars_parquet::write::CompressionOptions,
) -> Result<()> {
    use polars_parquet::write::{
        CompressedPage, DynIter, DynStreamingIterator, FileWriter, Version, WriteOptions,
        array_to_columns, compress, fallible_streaming_iterator,
    };
    use rayon::prelude::*;
    let chunked = polars::frame::chunk_df_for_writing(frame, ROW_GROUP_ROWS)?;
    let schema = chunked.schema().to_arrow(CompatLevel::newest());
    let encodings: Vec<Vec<polars_parquet::write::Encoding>> = chunked
        .columns()
        .iter()
        .zip(schema.iter_values())
        .map(|(column, field)| column_encoding(column, &field.dtype))
        .collect::<Result<_>>()?;
    let options = WriteOptions {
        statistics: StatisticsOptions::full(),
        version: Version::V1,
        compression,
        data_page_size: None,
    };
    let mut writer = FileWriter::try_new(file, schema, options)?;
    let fields = writer.parquet_schema().fields().to_vec();
    let batches: Vec<_> = chunked
        .iter_chunks(CompatLevel::newest(), false)
        .filter(|b| !b.is_empty())
        .collect();
    // Enough row groups at a time to keep every core busy, few enough that their compressed
    // pages are a small fraction of the frame.
    let at_once = rayon::current_num_threads() * 2;
    for group in batches.chunks(at_once) {
        let encoded: Vec<Vec<Vec<CompressedPage>>> = group
            .par_iter()
            .map(|batch| {
                let columns: Vec<Vec<Vec<CompressedPage>>> = batch
                    .columns()
                    .par_iter()
                    .zip(&fields)
                    .zip(&encodings)
                    .map(|((array, field), encoding)| {
                        array_to_columns(array, field.clone(), options, encoding)?
                            .into_iter()
                            .map(|pages| {
                                pages
                                    .map(|page| Ok(compress(page?, Vec::new(), compression)?))
                                    .collect::<PolarsResult<Vec<CompressedPage>>>()
                            })
                            .collect::<PolarsResult<Vec<_>>>()
                    })
                    .collect::<PolarsResult<_>>()?;
                Ok(columns.into_iter().flatten().collect())
            })
            .collect::<PolarsResult<_>>()?;
        for (batch, columns) in group.iter().zip(&encoded) {
            let row_group = DynIter::new(columns.iter().map(|pages| {
                Ok(DynStreamingIterator::new(
                    fallible_streaming_iterator::convert(pages.iter().map(PolarsResult::Ok)),
                ))
            }));
            writer.write(batch.len() as u64, row_group)?;
        }
    }
    writer.end(None)?;
    Ok(())
}

/// `max - min` of integer values, in slices on every core. Nulls' slots count too (only the
/// encoding depends on it, and a wider span only means plain pages): polars' `min`/`max`
/// visited each value through the validity bitmap, ~0.4 s for the 10M-row store's columns.
fn span_of<'a, T>(chunks: impl Iterator<Item = &'a [T]>) -> Option<i128>
where
    T: Copy + Ord + Send + Sync + Into<i128> + 'a,
{
    use rayon::prelude::*;
    let ranges: Vec<(T, T)> = chunks
        .flat_map(|values| values.chunks(1 << 16))
        .collect::<Vec<_>>()
        .into_par_iter()
        // One pass for both ends (LLVM vectorises the fold; `min()` then `max()` was two
        // passes of compares that it does not).
        .filter_map(|slice| {
            let first = *slice.first()?;
            Some(
                slice
                    .iter()
                    .fold((first, first), |(lo, hi), &v| (lo.min(v), hi.max(v))),
            )
        })
        .collect();
    let lo = ranges.iter().map(|r| r.0).min()?;
    let hi = ranges.iter().map(|r| r.1).max()?;
    Some(hi.into() - lo.into())
}

/// A column's Parquet encoding: polars' choice (a dictionary tried on every primitive and
/// string column), except for integers spanning more than 2^16 values (customer codes, money,
/// hashes), which are written plain. polars too keeps a dictionary of integers only when they
/// span at most 2^16 values or it estimates them mostly repeated; the store's wide integers are
/// mostly distinct within a row group (hashes, money), or sorted runs (customer codes) that the
/// compression shrinks as well as a dictionary does.
fn column_encoding(
    column: &Column,
    dtype: &ArrowDataType,
) -> Result<Vec<polars_parquet::write::Encoding>> {
    use polars_parquet::write::{Encoding, get_dtype_encoding};
    let span = match column.dtype() {
        DataType::Int32 | DataType::Date => {
            let values = column.as_materialized_series().to_physical_repr();
            span_of(values.i32()?.downcast_iter().map(|a| a.values().as_slice()))
        }
        DataType::Int64 => span_of(
            column
                .as_materialized_series()
                .i64()?
                .downcast_iter()
                .map(|a| a.values().as_slice()),
        ),
        _ => None,
    };
    Ok(match span {
        Some(span) if span > i128::from(u16::MAX) => vec![Encoding::Plain],
        _ => get_dtype_encoding(dtype),
    })
}

/// A table merged from partitions, its rejections in file order (as a whole read lists them).
fn in_file_order(mut table: Table) -> Table {
    let files: Vec<String> = table.files.iter().map(|f| f.file.clone()).collect();
    let file_index = |file: &str| files.iter().position(|f| f == file);
    table
        .rejections
        .sort_by_cached_key(|r| (file_index(&r.file), r.row));
    table
        .answer_rejections
        .sort_by_cached_key(|r| (file_index(&r.file), r.row));
    table
}

/// A table read in the transactions' customer partitions (the interactions and the customers
/// of a partitioned run), so that such a run never holds a whole table: opened once (stdin
/// spooled, gzip decompressed).
struct DeferredTable {
    kind: TableKind,
    opened: Vec<crate::io::read::OpenedFile>,
    options: LoadOptions,
    count: u32,
}

impl DeferredTable {
    fn load_partition(&self, index: u32) -> Result<Table> {
        let mut options = self.options.clone();
        options.partition = Some(crate::io::Partition {
            index,
            count: self.count,
        });
        crate::io::load::load_opened(self.kind, &self.opened, &options)
    }
}

/// The interactions and customers of a partitioned run, read partition by partition.
#[derive(Default)]
struct DeferredTables {
    interactions: Option<DeferredTable>,
    customers: Option<DeferredTable>,
}

impl DeferredTables {
    /// Takes the interactions and customers out of `spec` (to be read with the transactions'
    /// partitions) when the transactions are read in partitions.
    fn split(spec: &mut DatasetSpec) -> Result<DeferredTables> {
        if spec.transaction_partitions <= 1 || spec.transactions.is_empty() {
            return Ok(DeferredTables::default());
        }
        let count = spec.transaction_partitions;
        let defer = |kind: TableKind,
                     files: &mut Vec<String>,
                     options: &LoadOptions|
         -> Result<Option<DeferredTable>> {
            if files.is_empty() {
                return Ok(None);
            }
            let inputs = expand_inputs(files)?;
            let opened = crate::io::load::open_inputs(&inputs, options)?;
            files.clear();
            Ok(Some(DeferredTable {
                kind,
                opened,
                options: options.clone(),
                count,
            }))
        };
        Ok(DeferredTables {
            interactions: defer(
                TableKind::Interactions,
                &mut spec.interactions,
                &spec.interactions_options,
            )?,
            customers: defer(
                TableKind::Customers,
                &mut spec.customers,
                &spec.customers_options,
            )?,
        })
    }
}

/// [`Dictionary::encode_all`]'s code of a null value (values are coded 0, 1, 2, ...).
const NULL_CODE: i32 = -1;

/// A dimension column as the store codes it: text, or categories (a transactions table read
/// with [`crate::io::LoadOptions::dimensions_as_categories`]).
#[derive(Clone, Copy)]
enum DimColumn<'a> {
    Text(&'a StringChunked),
    Categories(&'a Categorical32Chunked),
}

impl DimColumn<'_> {
    fn len(&self) -> usize {
        match self {
            DimColumn::Text(values) => values.len(),
            DimColumn::Categories(values) => values.len(),
        }
    }

    /// The values of rows `from..from + part.len()` in the order each is first met, and in
    /// `part` each row's index into them ([`NULL_CODE`] left for a null). Each distinct view
    /// (text) or category is looked up by its value once, not each row: a dimension has a few
    /// values, and hashing and comparing each row's text was most of the cost of coding the
    /// dimensions.
    fn first_seen_in(&self, from: usize, part: &mut [i32]) -> Vec<String> {
        // Met once per distinct view or category of a slice: owned keys cost nothing here.
        let mut local: PlHashMap<String, i32> = PlHashMap::new();
        let mut seen: Vec<String> = Vec::new();
        let mut index_of = |v: &str| -> i32 {
            if let Some(&index) = local.get(v) {
                return index;
            }
            seen.push(v.to_string());
            let index = (seen.len() - 1) as i32;
            local.insert(v.to_string(), index);
            index
        };
        let len = part.len();
        let mut cells = part.iter_mut();
        match self {
            DimColumn::Text(values) => {
                let slice = values.slice(from as i64, len);
                for chunk in slice.downcast_iter() {
                    // Equal views of one array are equal values (a short value is held in its
                    // view, a longer one is where the view points in this array's buffers).
                    let mut by_view: PlHashMap<u128, i32> = PlHashMap::new();
                    let validity = polars_arrow::array::Array::validity(chunk);
                    for (i, view) in chunk.views().iter().enumerate() {
                        let Some(cell) = cells.next() else {
                            break;
                        };
                        if validity.is_some_and(|v| !v.get_bit(i)) {
                            continue;
                        }
                        *cell = match by_view.get(&view.as_u128()) {
                            Some(&index) => index,
                            None => {
                                let index = index_of(chunk.value(i));
                                by_view.insert(view.as_u128(), index);
                                index
                            }
                        };
                    }
                }
            }
            DimColumn::Categories(values) => {
                let mapping = values.get_mapping();
                let slice = values.physical().slice(from as i64, len);
                let mut by_category: PlHashMap<u32, i32> = PlHashMap::new();
                for chunk in slice.downcast_iter() {
                    for category in chunk.iter() {
                        let Some(cell) = cells.next() else {
                            break;
                        };
                        let Some(&category) = category else {
                            continue;
                        };
                        *cell = match by_category.get(&category) {
                            Some(&index) => index,
                            None => {
                                // Every category of a column is in its mapping.
                                let value = mapping.cat_to_str(category).unwrap_or_default();
                                let index = index_of(value);
                                by_category.insert(category, index);
                                index
                            }
                        };
                    }
                }
            }
        }
        seen
    }
}

/// Codes of the dimension values, per (table, dimension).
#[derive(Default)]
struct Dictionary {
    codes: BTreeMap<(TableKind, String), PlHashMap<String, i32>>,
    values: BTreeMap<(TableKind, String), Vec<String>>,
}

impl Dictionary {
    fn from_frame(frame: &DataFrame) -> Result<Dictionary> {
        let mut d = Dictionary::default();
        let tables = frame.column("table")?.str()?;
        let dims = frame.column("dimension")?.str()?;
        let codes = frame.column("code")?.i32()?;
        let values = frame.column("value")?.str()?;
        for i in 0..frame.height() {
            if let (Some(t), Some(dim), Some(code), Some(v)) =
                (tables.get(i), dims.get(i), codes.get(i), values.get(i))
            {
                let kind = table_kind(t)?;
                let key = (kind, dim.to_string());
                let list = d.values.entry(key.clone()).or_default();
                let code_index = usize::try_from(code).unwrap_or(usize::MAX);
                if code_index != list.len() {
                    return Err(Error::Store {
                        path: PathBuf::from("dimensions.parquet"),
                        message: format!("codes of {t}.{dim} are not 0, 1, 2, ... in order"),
                    });
                }
                list.push(v.to_string());
                d.codes.entry(key).or_default().insert(v.to_string(), code);
            }
        }
        Ok(d)
    }

    fn encode(&mut self, kind: TableKind, dim: &str, values: &StringChunked) -> Int32Chunked {
        let codes = self
            .encode_all(kind, &[(dim, DimColumn::Text(values))])
            .into_iter()
            .next()
            .unwrap_or_default();
        let validity = codes.contains(&NULL_CODE).then(|| {
            polars_arrow::bitmap::Bitmap::from_iter(codes.iter().map(|&c| c != NULL_CODE))
        });
        Int32Chunked::from_vec_validity(PlSmallStr::EMPTY, codes, validity)
    }

    /// [`Dictionary::encode`] of several dimensions' columns, each row's code ([`NULL_CODE`]
    /// for a null) written straight into one buffer per column, in slices of rows on every
    /// core: each slice first writes its own codes (its values in first-seen order), then the
    /// slices' new values get the dimension's codes slice by slice (in row order, so the codes
    /// are those one pass gives), and each slice translates its rows in place. Collecting
    /// each slice's codes as options and then the rows' as options again was 16 bytes a row
    /// and dimension, the largest share of a 10M-row summarize's page faults (on these hosts
    /// its peak memory is much of its time; BENCHMARKS.md).
    fn encode_all(&mut self, kind: TableKind, columns: &[(&str, DimColumn<'_>)]) -> Vec<Vec<i32>> {
        use rayon::prelude::*;
        const SLICE: usize = 1 << 16;
        columns
            .iter()
            .map(|&(dim, values)| {
                let mut out = crate::io::load::par_filled(NULL_CODE, values.len());
                // Each slice's values in first-seen order; its rows hold indices into them.
                let seen: Vec<Vec<String>> = out
                    .par_chunks_mut(SLICE)
                    .enumerate()
                    .map(|(s, part)| values.first_seen_in(s * SLICE, part))
                    .collect();
                let key = (kind, dim.to_string());
                let codes = self.codes.entry(key.clone()).or_default();
                let list = self.values.entry(key).or_default();
                let translations: Vec<Vec<i32>> = seen
                    .iter()
                    .map(|seen| {
                        seen.iter()
                            .map(|v| match codes.get(v.as_str()) {
                                Some(&code) => code,
                                None => {
                                    list.push(v.clone());
                                    let code = (list.len() - 1) as i32;
                                    codes.insert(v.clone(), code);
                                    code
                                }
                            })
                            .collect()
                    })
                    .collect();
                out.par_chunks_mut(SLICE)
                    .zip(&translations)
                    .for_each(|(part, translated)| {
                        for cell in part.iter_mut().filter(|c| **c != NULL_CODE) {
                            *cell = translated.get(*cell as usize).copied().unwrap_or(NULL_CODE);
                        }
                    });
                out
            })
            .collect()
    }

    /// The rank of each code's value among the dimension's values in byte (code point) order.
    fn ranks(&self, kind: TableKind, dim: &str) -> Vec<u32> {
        let empty = Vec::new();
        let list = self.values.get(&(kind, dim.to_string())).unwrap_or(&empty);
        let mut by_value: Vec<u32> = (0..list.len() as u32).collect();
        by_value.sort_by_key(|&code| list.get(code as usize));
        let mut ranks = vec![0u32; list.len()];
        for (rank, &code) in by_value.iter().enumerate() {
            if let Some(r) = ranks.get_mut(code as usize) {
                *r = rank as u32;
            }
        }
        ranks
    }

    fn decode(&self, kind: TableKind, dim: &str, codes: &Column) -> Result<Series> {
        let empty = Vec::new();
        let list = self.values.get(&(kind, dim.to_string())).unwrap_or(&empty);
        let codes = codes.cast(&DataType::Int32)?;
        let values: StringChunked = codes
            .i32()?
            .iter()
            .map(|c| c.and_then(|c| list.get(usize::try_from(c).ok()?).map(String::as_str)))
            .collect();
        Ok(values.with_name(dim.into()).into_series())
    }

    fn frame(&self) -> Result<DataFrame> {
        let (mut t, mut d, mut c, mut v) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((kind, dim), values) in &self.values {
            for (code, value) in values.iter().enumerate() {
                t.push(kind.name().to_string());
                d.push(dim.clone());
                c.push(code as i32);
                v.push(value.clone());
            }
        }
        Ok(df!("table" => t, "dimension" => d, "code" => c, "value" => v)?)
    }
}

fn table_kind(name: &str) -> Result<TableKind> {
    [
        TableKind::Transactions,
        TableKind::Interactions,
        TableKind::Customers,
    ]
    .into_iter()
    .find(|k| k.name() == name)
    .ok_or_else(|| Error::Store {
        path: PathBuf::from("dimensions.parquet"),
        message: format!("unknown table {name:?}"),
    })
}

/// Builds a store's frames from datasets: customer ids and dimension values get codes, rows
/// are reduced to days, and a later dataset's days are added to earlier ones.
#[derive(Default)]
struct Builder {
    /// Ids first seen in this run (codes `first_new_id..`). Held as [`CustomerId`]s, inline up
    /// to 23 bytes, so that a new id costs no allocation here nor as a key of `code_of` (it
    /// cost two `String`s per customer).
    ids: Vec<CustomerId>,
    /// Codes of the ids met so far: the store's ones are learned only for ids of the rows
    /// being coded ([`Builder::learn_store_codes`]), not for all the store's customers.
    code_of: IdCodes,
    /// The store's ids by code (an update).
    store_ids: Option<StringChunked>,
    dictionary: Dictionary,
    /// Purchases per day, each part with `customer`, `date`, `orders`, `revenue_micros`,
    /// `dim_*` (earlier parts first).
    purchases: Vec<DataFrame>,
    line_keys: Vec<u128>,
    /// Keys of the orders read in this run, and those of the store updated (an update).
    order_keys: Vec<u64>,
    store_orders: Option<StoredKeys>,
    /// Codes from here on are customers first seen in this run.
    first_new_id: usize,
    interactions: Vec<DataFrame>,
    survey: Vec<DataFrame>,
    customers: Option<DataFrame>,
    /// Set for a partitioned run: each partition's parts go to disk as soon as it is done.
    spill: Option<Spill>,
    /// Whether the interactions' identifier columns have been decided (on the first rows).
    identifiers_decided: bool,
    /// Whether a partitioned run has written (parts of) its customers snapshot already.
    customers_written: bool,
}

/// Where a partitioned run writes each partition's parts (purchases, keys, interactions,
/// survey counts, the partition's new customer ids) as soon as the partition is summarised,
/// so that memory holds one partition's rows and not the whole run's: the staging directory
/// of the generation being written, parts named `NAME-RUNPPPPPP.parquet` (run, then the
/// part's number), which sort after the run's single parts and before the next run's.
struct Spill {
    dir: PathBuf,
    run: u32,
    next: u32,
    /// First and last day of the purchases and of the interactions written so far.
    purchase_days: Option<(i32, i32)>,
    interaction_days: Option<(i32, i32)>,
}

impl Spill {
    fn new(dir: &Path, run: u32) -> Spill {
        Spill {
            dir: dir.to_path_buf(),
            run,
            next: 0,
            purchase_days: None,
            interaction_days: None,
        }
    }
}

/// The first and last day of `frames`' date columns, widened by `known`.
fn day_range(frames: &[DataFrame], known: Option<(i32, i32)>) -> Result<Option<(i32, i32)>> {
    let (mut lo, mut hi) = (known.map(|k| k.0), known.map(|k| k.1));
    for p in frames {
        let d = p.column(col::DATE)?.cast(&DataType::Int32)?;
        let d = d.i32()?;
        if let (Some(a), Some(b)) = (d.min(), d.max()) {
            lo = Some(lo.map_or(a, |l| l.min(a)));
            hi = Some(hi.map_or(b, |h| h.max(b)));
        }
    }
    Ok(lo.zip(hi))
}

impl Builder {
    /// A builder that continues the store of `old`, whose orders are `orders`.
    fn from_frames(old: &Frames, orders: StoredKeys) -> Result<Builder> {
        let mut b = Builder::default();
        // Kept in the parts' chunks: every pass over them goes chunk by chunk (a rechunk was a
        // serial copy of the store's every id).
        let ids = old.customer_ids.column(col::CUSTOMER_ID)?.str()?.clone();
        b.first_new_id = ids.len();
        b.store_ids = Some(ids);
        b.dictionary = Dictionary::from_frame(&old.dimensions)?;
        b.store_orders = Some(orders);
        Ok(b)
    }

    /// The code of a customer id, given one the first time it is seen.
    fn code(&mut self, id: &str) -> i32 {
        if let Some(c) = self.code_of.get(id) {
            return c;
        }
        let c = (self.first_new_id + self.ids.len()) as i32;
        let id = CustomerId::from(id);
        self.ids.push(id.clone());
        self.code_of.insert(id, c);
        c
    }

    /// Learns the store's codes of the customers in `ids` (rows about to be coded), in one pass
    /// over the store's ids against the rows' distinct ids: an update's cost then grows with
    /// its own customers, where a map of every stored id cost seconds at 2.6M customers.
    fn learn_store_codes(&mut self, ids: &StringChunked) {
        let Some(store_ids) = &self.store_ids else {
            return;
        };
        use rayon::prelude::*;
        const SLICE: usize = 1 << 16;
        // The rows' distinct ids not coded yet, found in slices on every core and deduplicated
        // by a parallel sort before the set is built at its size (growing a set one id at a
        // time, and the code maps below, was a quarter of a monthly update, on one core).
        let unknown: Vec<&str> = ids
            .downcast_iter()
            .flat_map(|chunk| (0..chunk.len().div_ceil(SLICE)).map(move |s| (chunk, s * SLICE)))
            .collect::<Vec<_>>()
            .into_par_iter()
            .flat_map_iter(|(chunk, from)| {
                (from..(from + SLICE).min(chunk.len()))
                    .filter_map(|i| chunk.get(i))
                    .filter(|id| !self.code_of.contains(id))
            })
            .collect();
        let wanted = crate::io::load::distinct_set(unknown);
        if wanted.is_empty() {
            return;
        }
        // The pass runs over slices of the store's ids in parallel (a sixth of a monthly
        // update's time at 2.6M stored customers when it ran on one core); the matches come
        // back in code order.
        let mut offset = 0usize;
        let mut found: Vec<(usize, &str)> = Vec::new();
        for chunk in store_ids.downcast_iter() {
            let n = chunk.len();
            let wanted = &wanted;
            let matches: Vec<(usize, &str)> = (0..n.div_ceil(SLICE))
                .into_par_iter()
                .flat_map_iter(|s| {
                    (s * SLICE..((s + 1) * SLICE).min(n)).filter_map(move |i| {
                        let id = chunk.get(i)?;
                        wanted.contains(id).then_some((offset + i, id))
                    })
                })
                .collect();
            found.extend(matches);
            offset += n;
        }
        self.code_of.insert_all(&found);
    }

    fn encode_ids(&mut self, ids: &StringChunked) -> Int32Chunked {
        self.code_rows(ids).into_iter().collect()
    }

    /// The code of each row's id, new ids coded in the order they are first seen.
    fn code_rows(&mut self, ids: &StringChunked) -> Vec<Option<i32>> {
        self.learn_store_codes(ids);
        let next = self.first_new_id + self.ids.len();
        let (codes, new_ids) = self.code_of.code_all(ids, next);
        // Moved when it is the first list (extending an empty one copied 63 MB of ids at
        // 2.6M customers).
        if self.ids.is_empty() {
            self.ids = new_ids;
        } else {
            self.ids.extend(new_ids);
        }
        codes
    }

    /// Adds the tables of `data` (reading deferred transactions, and with them `interactions`,
    /// partition by partition), and returns what the manifest keeps of each. With `previous`
    /// (an update), rows on or before the store's last day of a table without line keys follow
    /// `overlap`, and the accounting is added to the store's.
    fn add_dataset(
        &mut self,
        data: &mut Dataset,
        tables_read_with: &DeferredTables,
        overlap: Overlap,
        previous: Option<&Manifest>,
        spec: &DatasetSpec,
    ) -> Result<Vec<StoredTable>> {
        let before =
            |kind: TableKind| previous.and_then(|m| m.tables.iter().find(|t| t.kind == kind));
        let mut tables = Vec::new();
        let prior = before(TableKind::Transactions);
        let prior_interactions = before(TableKind::Interactions);
        // Identifier columns (one value per interaction) are not segments: left out, here and
        // in every later update.
        let mut identifiers: Vec<IdentifierColumn> = prior_interactions
            .map(|p| p.identifiers.clone())
            .unwrap_or_default();
        let mut interactions_added = false;
        if let Some(deferred) = data.deferred_transactions.take() {
            // Partitions hold disjoint customers (of both tables): each partition's parts are
            // complete once it is done, and are written then.
            let mut merged: Option<Table> = None;
            let mut merged_interactions: Option<Table> = None;
            let mut merged_customers: Option<Table> = None;
            let load = |table: &Option<DeferredTable>, index: u32| {
                table.as_ref().map(|t| t.load_partition(index)).transpose()
            };
            for index in 0..deferred.partitions() {
                let mut part = deferred.load_partition(index)?;
                let mut events = load(&tables_read_with.interactions, index)?;
                let customers = load(&tables_read_with.customers, index)?;
                if index == 0 {
                    let first = Dataset {
                        transactions: Some(part.clone()),
                        interactions: events.clone(),
                        customers: customers.clone(),
                        deferred_transactions: None,
                    };
                    first.check_preferred_columns(spec)?;
                }
                if let Some(mut customers) = customers {
                    // The partition's part of the snapshot, written with its other parts.
                    self.customers = Some(std::mem::take(&mut customers.frame));
                    merged_customers = Some(match merged_customers {
                        None => customers,
                        Some(acc) => crate::io::table::merge_partition_tables(acc, customers)?,
                    });
                }
                if let Some(d) = self.add_transactions(&mut part, prior, overlap)? {
                    self.purchases.push(d);
                }
                part.frame = part.frame.clear();
                merged = Some(match merged {
                    None => part,
                    Some(acc) => crate::io::table::merge_partition_tables(acc, part)?,
                });
                if let Some(mut events) = events.take() {
                    self.add_interactions(
                        &mut events,
                        prior_interactions,
                        overlap,
                        &mut identifiers,
                    )?;
                    events.frame = events.frame.clear();
                    merged_interactions = Some(match merged_interactions {
                        None => events,
                        Some(acc) => crate::io::table::merge_partition_tables(acc, events)?,
                    });
                }
                self.flush()?;
            }
            data.transactions = merged.map(in_file_order);
            if let Some(t) = merged_interactions {
                data.interactions = Some(in_file_order(t));
                interactions_added = true;
            }
            if let Some(t) = merged_customers {
                data.customers = Some(in_file_order(t));
            }
        } else if let Some(t) = data.transactions.as_mut()
            && let Some(d) = self.add_transactions(t, prior, overlap)?
        {
            self.purchases.push(d);
        }
        if let Some(t) = data.transactions.as_mut() {
            let keyed = is_keyed(t, prior);
            let days = self.days_of(TableKind::Transactions)?;
            let mut record = stored(t, prior, keyed, days);
            record.settings.push(settings(&spec.transactions_options));
            tables.push(record);
        }
        if let Some(t) = data.interactions.as_mut() {
            if !interactions_added {
                self.add_interactions(t, prior_interactions, overlap, &mut identifiers)?;
            }
            let days = self.days_of(TableKind::Interactions)?;
            let mut record = stored(t, prior_interactions, false, days);
            record.settings.push(settings(&spec.interactions_options));
            // `dimensions` still names them (as the export's columns, for messages that list
            // the columns); `identifiers` says they have no values here.
            record.identifiers = identifiers;
            tables.push(record);
        }
        if let Some(t) = data.customers.as_mut() {
            if !self.customers_written {
                self.customers = Some(std::mem::take(&mut t.frame));
            }
            // A newer customers export replaces the snapshot and its accounting.
            let mut record = stored(t, None, false, None);
            record.settings.push(settings(&spec.customers_options));
            tables.push(record);
        }
        *data = data.without_rows();
        Ok(tables)
    }

    /// Reduces an interactions table (or one partition of it) to customer-days and survey
    /// counts. Columns with a value per interaction (`identifiers`, decided on the first rows
    /// met and then kept) are left out.
    fn add_interactions(
        &mut self,
        t: &mut Table,
        prior: Option<&StoredTable>,
        overlap: Overlap,
        identifiers: &mut Vec<IdentifierColumn>,
    ) -> Result<()> {
        if let Some(p) = prior {
            apply_overlap(t, p, overlap)?;
        }
        // Decided once, on the first rows read (in a partitioned run, the first partition's).
        if !self.identifiers_decided && t.frame.height() > 0 {
            self.identifiers_decided = true;
            for d in &t.dimensions {
                if identifiers.iter().any(|i| &i.name == d) {
                    continue;
                }
                if let Ok(c) = t.frame.column(d) {
                    // On the first rows only: an identifier shows itself there, and counting
                    // the distinct values of 45M ids would itself take gigabytes.
                    let sample = c.drop_nulls().head(Some(IDENTIFIER_SAMPLE_ROWS));
                    let rows = sample.len() as u64;
                    let distinct = sample.n_unique()? as u64;
                    if distinct > IDENTIFIER_MIN_DISTINCT && distinct * 2 > rows {
                        identifiers.push(IdentifierColumn {
                            name: d.clone(),
                            distinct,
                            rows,
                        });
                    }
                }
            }
        }
        let kept: Vec<String> = t
            .frame
            .get_column_names()
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !identifiers.iter().any(|i| &i.name == c))
            .collect();
        let (events, survey) = interaction_rows(&t.frame.select(kept)?)?;
        let events = self.encode_customers(events, TableKind::Interactions)?;
        let survey = self.encode_dims(survey, TableKind::Interactions)?;
        self.interactions.push(events);
        self.survey.push(survey);
        Ok(())
    }

    /// Checks a transactions table (or one partition of it) read for the store against the
    /// store it updates, keeps its keys, and returns its days.
    fn add_transactions(
        &mut self,
        t: &mut Table,
        prior: Option<&StoredTable>,
        overlap: Overlap,
    ) -> Result<Option<DataFrame>> {
        let keyed = is_keyed(t, prior);
        if let Some(p) = prior
            && !keyed
        {
            apply_overlap(t, p, overlap)?;
        }
        let orders = order_keys(&t.frame)?;
        let in_store: PlHashSet<u64> = match &self.store_orders {
            Some(store) => store
                .held_orders(&sorted_unique(orders.keys.iter().copied()))?
                .into_iter()
                .collect(),
            None => PlHashSet::default(),
        };
        let first_held = match in_store.is_empty() {
            true => None,
            false => orders.keys.iter().position(|k| in_store.contains(k)),
        };
        if let Some(row) = first_held.map(|i| orders.row(i)) {
            let frame = &t.frame;
            let order = frame.column(col::ORDER_ID)?.cast(&DataType::String)?;
            let customer = frame.column(col::CUSTOMER_ID)?.cast(&DataType::String)?;
            return Err(Error::Store {
                path: PathBuf::from(t.files.first().map(|f| f.file.clone()).unwrap_or_default()),
                message: format!(
                    "order {:?} of customer {:?} has lines in the store and other lines here; the store holds orders, not their lines, so it cannot merge them: summarise the exports again together (`summarize --out NEW_DIR` with every export)",
                    order.str()?.get(row).unwrap_or_default(),
                    customer.str()?.get(row).unwrap_or_default(),
                ),
            });
        }
        // Moved, not copied, into an empty list (80 MB of order keys, 160 MB of line keys at
        // 10M lines).
        if self.order_keys.is_empty() {
            self.order_keys = orders.keys;
        } else {
            self.order_keys.extend(orders.keys);
        }
        if self.line_keys.is_empty() {
            self.line_keys = std::mem::take(&mut t.line_keys);
        } else {
            self.line_keys.extend(std::mem::take(&mut t.line_keys));
        }
        if t.frame.height() == 0 {
            return Ok(None);
        }
        // The rows are reduced here and not needed after; the table keeps its columns' names
        // (the manifest lists them).
        let empty = t.frame.clear();
        let frame = std::mem::replace(&mut t.frame, empty);
        Ok(Some(self.purchase_days(frame)?))
    }

    /// First and last day of a table's rows so far (written parts included).
    fn days_of(&self, kind: TableKind) -> Result<Option<(i32, i32)>> {
        let spilled = |f: fn(&Spill) -> Option<(i32, i32)>| self.spill.as_ref().and_then(f);
        match kind {
            TableKind::Transactions => day_range(&self.purchases, spilled(|s| s.purchase_days)),
            TableKind::Interactions => {
                day_range(&self.interactions, spilled(|s| s.interaction_days))
            }
            TableKind::Customers => Ok(None),
        }
    }

    fn encode_dims(&mut self, frame: DataFrame, kind: TableKind) -> Result<DataFrame> {
        let mut frame = frame;
        let names: Vec<String> = frame
            .get_column_names()
            .iter()
            .map(|c| c.to_string())
            .collect();
        for name in names {
            if let Some(dim) = name.strip_prefix(DIM_PREFIX) {
                let values = frame.column(&name)?.cast(&DataType::String)?;
                let codes = self.dictionary.encode(kind, dim, values.str()?);
                frame.with_column(codes.with_name(name.as_str().into()).into_column())?;
            }
        }
        Ok(frame)
    }

    /// Replaces a frame's customer ids by their codes and its dimension values by theirs.
    fn encode_customers(&mut self, frame: DataFrame, kind: TableKind) -> Result<DataFrame> {
        let mut frame = frame;
        let ids = frame.column(col::CUSTOMER_ID)?.str()?.clone();
        let codes = self.encode_ids(&ids);
        frame.with_column(codes.with_name("customer".into()).into_column())?;
        let frame = frame.drop(col::CUSTOMER_ID)?;
        self.encode_dims(frame, kind)
    }

    /// The rows held so far as parts (the customers first seen since the last call, days of
    /// every frame stacked in order, keys sorted), leaving the builder without them. The
    /// dimension values and the customers snapshot are [`Builder::finish`]'s.
    fn take_rows(&mut self) -> Result<NewParts> {
        let new_ids = std::mem::take(&mut self.ids);
        let customer_ids = if new_ids.is_empty() {
            None
        } else {
            let ids = StringChunked::from_iter_values(
                col::CUSTOMER_ID.into(),
                new_ids.iter().map(CustomerId::as_str),
            );
            let first = self.first_new_id as i32;
            let codes = Int32Chunked::from_vec(
                "customer".into(),
                (first..first + new_ids.len() as i32).collect(),
            );
            self.first_new_id += new_ids.len();
            Some(DataFrame::new_infer_height(vec![
                codes.into_column(),
                ids.into_column(),
            ])?)
        };
        use rayon::prelude::*;
        let line_keys = if self.line_keys.is_empty() {
            None
        } else {
            let mut keys = std::mem::take(&mut self.line_keys);
            sort_hashes(&mut keys, |k| (k >> 112) as u16);
            let mut high = Vec::new();
            let mut low = Vec::new();
            keys.par_iter()
                .map(|k| (k >> 64) as u64 as i64)
                .collect_into_vec(&mut high);
            keys.par_iter()
                .map(|k| *k as u64 as i64)
                .collect_into_vec(&mut low);
            Some(DataFrame::new_infer_height(vec![
                Int64Chunked::from_vec("key_high".into(), high).into_column(),
                Int64Chunked::from_vec("key_low".into(), low).into_column(),
            ])?)
        };
        let order_keys = if self.order_keys.is_empty() {
            None
        } else {
            let mut keys = std::mem::take(&mut self.order_keys);
            sort_hashes(&mut keys, |k| (k >> 48) as u16);
            let keys = keys.into_iter().map(|k| k as i64).collect();
            Some(DataFrame::new_infer_height(vec![
                Int64Chunked::from_vec("key".into(), keys).into_column(),
            ])?)
        };
        Ok(NewParts {
            customer_ids,
            dimensions: None,
            purchases: stack(std::mem::take(&mut self.purchases))?,
            line_keys,
            order_keys,
            interactions: stack(std::mem::take(&mut self.interactions))?,
            survey: stack(std::mem::take(&mut self.survey))?,
            customers: None,
            replaces_customers: false,
        })
    }

    /// In a partitioned run, writes the finished partition's parts and forgets its customers'
    /// codes (no later partition has them); otherwise nothing.
    fn flush(&mut self) -> Result<()> {
        let Some(mut spill) = self.spill.take() else {
            return Ok(());
        };
        spill.purchase_days = day_range(&self.purchases, spill.purchase_days)?;
        spill.interaction_days = day_range(&self.interactions, spill.interaction_days)?;
        let mut rows = self.take_rows()?;
        if let Some(customers) = self.customers.take() {
            rows.customers = Some(customers);
            self.customers_written = true;
        }
        write_parts(
            &spill.dir,
            &format!("{:05}{:06}", spill.run, spill.next),
            &rows,
        )?;
        spill.next += 1;
        self.code_of = IdCodes::default();
        self.spill = Some(spill);
        Ok(())
    }

    /// The run's remaining parts (with [`Builder::take_rows`]'s ordering: days of every part
    /// added up, earlier parts first, so that a day's first dimension value stays the earliest
    /// export's), the dimension values and the customers snapshot. A partitioned run has
    /// written its rows already.
    fn finish(mut self) -> Result<NewParts> {
        let mut parts = if self.spill.is_some() {
            self.flush()?;
            NewParts::default()
        } else {
            self.take_rows()?
        };
        parts.dimensions = Some(self.dictionary.frame()?);
        parts.customers = self.customers.take();
        parts.replaces_customers = parts.customers.is_some() || self.customers_written;
        Ok(parts)
    }
}

/// The frames of one run as one part (they hold the same columns).
fn stack(frames: Vec<DataFrame>) -> Result<Option<DataFrame>> {
    let mut frames = frames.into_iter().filter(|f| f.width() > 0);
    let Some(mut all) = frames.next() else {
        return Ok(None);
    };
    for f in frames {
        all.vstack_mut(&f)?;
    }
    all.rechunk_mut();
    Ok(Some(all))
}

impl Builder {
    /// A transactions frame reduced to one row per customer and day, sorted by customer code
    /// and day: purchases (orders with an amount of zero or more, or none), net revenue in
    /// millionths (refunds included), and the code of each dimension's smallest non-null value
    /// among the day's purchases (by code points: order-free, as stage 1 on an engine gives). The rows' (customer code, day, row) keys are
    /// sorted (so a day's rows keep their order) and each run of equal days is one row: a
    /// hash table of every day, and before it a polars group-by on the id strings, were
    /// several times slower on 10M rows.
    ///
    /// The frame is taken, and each of its columns dropped as soon as it has been turned into
    /// what the reduction needs: its strings are ~0.9 GB at 10M rows, and holding them to the
    /// end put them under everything built here (on these hosts a run's peak memory is much
    /// of its time; BENCHMARKS.md).
    fn purchase_days(&mut self, mut tx: DataFrame) -> Result<DataFrame> {
        use rayon::prelude::*;
        if tx.get_column_index(col::ORDER_ID).is_some() {
            tx.drop_in_place(col::ORDER_ID)?;
        }
        let names = transaction_dimensions(&tx);
        let dim_codes = {
            // Categories as read, anything else as text.
            let read: Vec<Column> = names
                .iter()
                .map(|d| {
                    let c = tx.column(d)?;
                    Ok(match c.dtype() {
                        DataType::Categorical(..) => c.clone(),
                        _ => c.cast(&DataType::String)?,
                    })
                })
                .collect::<Result<_>>()?;
            let columns: Vec<(&str, DimColumn<'_>)> = names
                .iter()
                .zip(&read)
                .map(|(d, c)| {
                    Ok((
                        d.as_str(),
                        match c.dtype() {
                            DataType::Categorical(..) => DimColumn::Categories(c.cat32()?),
                            _ => DimColumn::Text(c.str()?),
                        },
                    ))
                })
                .collect::<Result<_>>()?;
            self.dictionary
                .encode_all(TableKind::Transactions, &columns)
        };
        for d in &names {
            tx.drop_in_place(d)?;
        }
        // A dimension's values compared by the rank of their code in the values' order (equal
        // values share a code): reading each row's text back from its (many-chunked) column
        // was a sixth of a 10M-row summarize.
        let ranks: Vec<Vec<u32>> = names
            .iter()
            .map(|d| self.dictionary.ranks(TableKind::Transactions, d))
            .collect();
        let codes = {
            let ids = tx
                .drop_in_place(col::CUSTOMER_ID)?
                .cast(&DataType::String)?;
            self.code_rows(ids.str()?)
        };
        let keyed = {
            let days = tx.drop_in_place(col::DATE)?.cast(&DataType::Int32)?;
            sorted_day_keys(&codes, &super::summarise::contiguous(days.i32()?, NO_DAY))
        };
        drop(codes);
        let amount_values = {
            let amounts = tx.drop_in_place(col::AMOUNT)?.cast(&DataType::Float64)?;
            drop(tx);
            // A null amount counts as zero (a purchase of nothing), as it always has. Owned,
            // so the column's chunks are freed here (they are many: the copy is made anyway).
            super::summarise::contiguous(amounts.f64()?, 0.0).into_owned()
        };
        // Runs of one customer's day never straddle two slices, so the slices reduce in
        // parallel to the rows a single pass gives, in the same order.
        let values = DayValues {
            amounts: &amount_values,
            dim_codes: &dim_codes,
            ranks: &ranks,
        };
        let slices = split_at_runs(&keyed, rayon::current_num_threads() * 4);
        // Each slice's rows (a run of equal keys is one) go straight to their place in the
        // columns: reducing into a vector per slice and appending them took a second pass over
        // every row, on one core.
        let runs: Vec<usize> = slices
            .par_iter()
            .map(|s| s.chunk_by(|a, b| a.0 == b.0).count())
            .collect();
        let mut all = DayRows::zeroed(names.len(), runs.iter().sum());
        all.split_mut(&runs)
            .into_par_iter()
            .zip(slices)
            .for_each(|(mut out, keyed)| values.reduce_into(keyed, &mut out));
        let DayRows {
            customer,
            day,
            orders,
            micros,
            dims,
        } = all;
        let mut columns = vec![
            Int32Chunked::from_vec("customer".into(), customer).into_column(),
            Int32Chunked::from_vec(col::DATE.into(), day)
                .into_column()
                .cast(&DataType::Date)?,
            Int32Chunked::from_vec("orders".into(), orders).into_column(),
            Int64Chunked::from_vec("revenue_micros".into(), micros).into_column(),
        ];
        for (name, (codes, valid)) in names.iter().zip(dims) {
            let validity =
                (!valid.iter().all(|&v| v)).then(|| polars_arrow::bitmap::Bitmap::from_iter(valid));
            let codes = Int32Chunked::from_vec_validity(PlSmallStr::EMPTY, codes, validity);
            columns.push(
                codes
                    .with_name(format!("{DIM_PREFIX}{name}").into())
                    .into_column(),
            );
        }
        Ok(DataFrame::new_infer_height(columns)?)
    }
}

/// [`sorted_day_keys`]'s day of a row without one (no date is that many days from 1970).
const NO_DAY: i32 = i32::MIN;

/// The (customer code, day) key of each row that has both, with the row, sorted by key and then
/// by row: built and sorted on every core ([`crate::io::load::par_bucket_sort_of`], bucketed by
/// customer code: a run's codes are dense, its new customers coded one after another), each
/// key written straight to its bucket (a list of the keys in row order, sorted into a second
/// one, was 160 MB more at a 10M-row summarize's peak). A counting sort by code did the same
/// in linear passes, but on one core (~0.5 s of a 10M-row summarize).
fn sorted_day_keys(codes: &[Option<i32>], days: &[i32]) -> Vec<(u64, u32)> {
    use rayon::prelude::*;
    let key_of = |row: usize| -> Option<(u64, u32)> {
        let code = (*codes.get(row)?)? as u32;
        let day = days.get(row).copied().filter(|&d| d != NO_DAY)? as u32;
        Some(((u64::from(code) << 32) | u64::from(day), row as u32))
    };
    let coded = || codes.par_iter().filter_map(|c| c.map(|c| c as u32));
    let (Some(lo), Some(hi)) = (coded().min(), coded().max()) else {
        return Vec::new();
    };
    let code = |k: &(u64, u32)| (k.0 >> 32) as u32;
    // Buckets of a few thousand rows; codes spread far wider than the rows (an update meeting
    // a few of a large store's customers) sort as well, in fewer, fuller buckets.
    let span = u64::from(hi - lo) + 1;
    let rows = codes.len().min(days.len());
    let buckets = (rows / 2048).clamp(1, 1 << 14) as u64;
    crate::io::load::par_bucket_sort_of(
        rows,
        key_of,
        buckets as usize,
        |k| (u64::from(code(k).saturating_sub(lo)) * buckets / span) as usize,
        false,
    )
}

/// The per-row values [`Builder::purchase_days`] reduces: amounts, and each dimension's codes
/// with the rank of each code's value.
struct DayValues<'a> {
    /// Nulls as zeros.
    amounts: &'a [f64],
    /// [`NULL_CODE`] for a null.
    dim_codes: &'a [Vec<i32>],
    ranks: &'a [Vec<u32>],
}

/// Purchase days as columns: customer code, day, purchases, net revenue in millionths, and
/// the code of each dimension's smallest value among the day's purchases.
struct DayRows {
    customer: Vec<i32>,
    day: Vec<i32>,
    orders: Vec<i32>,
    micros: Vec<i64>,
    /// Each dimension's codes, and whether the row has one (zero and false where not).
    dims: Vec<(Vec<i32>, Vec<bool>)>,
}

/// A slice's part of [`DayRows`]' columns.
struct DayRowsMut<'a> {
    customer: &'a mut [i32],
    day: &'a mut [i32],
    orders: &'a mut [i32],
    micros: &'a mut [i64],
    dims: Vec<(&'a mut [i32], &'a mut [bool])>,
}

impl DayRows {
    /// `rows` rows of zeros (nulls for the dimensions), written in place on every core.
    fn zeroed(dimensions: usize, rows: usize) -> DayRows {
        use crate::io::load::par_filled;
        DayRows {
            customer: par_filled(0, rows),
            day: par_filled(0, rows),
            orders: par_filled(0, rows),
            micros: par_filled(0, rows),
            dims: (0..dimensions)
                .map(|_| (par_filled(0, rows), par_filled(false, rows)))
                .collect(),
        }
    }

    /// The columns cut into consecutive parts of `lengths` rows (which add up to the rows).
    fn split_mut(&mut self, lengths: &[usize]) -> Vec<DayRowsMut<'_>> {
        fn cut<'a, T>(mut rest: &'a mut [T], lengths: &[usize]) -> Vec<&'a mut [T]> {
            let mut parts = Vec::with_capacity(lengths.len());
            for &len in lengths {
                let (head, tail) = rest.split_at_mut(len.min(rest.len()));
                parts.push(head);
                rest = tail;
            }
            parts
        }
        type Parts<'a> =
            std::iter::Zip<std::vec::IntoIter<&'a mut [i32]>, std::vec::IntoIter<&'a mut [bool]>>;
        let mut dims: Vec<Parts<'_>> = self
            .dims
            .iter_mut()
            .map(|(codes, valid)| cut(codes, lengths).into_iter().zip(cut(valid, lengths)))
            .collect();
        cut(&mut self.customer, lengths)
            .into_iter()
            .zip(cut(&mut self.day, lengths))
            .zip(cut(&mut self.orders, lengths))
            .zip(cut(&mut self.micros, lengths))
            .map(|(((customer, day), orders), micros)| DayRowsMut {
                customer,
                day,
                orders,
                micros,
                dims: dims.iter_mut().filter_map(Iterator::next).collect(),
            })
            .collect()
    }
}

impl DayValues<'_> {
    /// One row per run of equal (customer code, day) keys of `keyed` (sorted), written to
    /// `out` (a row per run).
    fn reduce_into(&self, keyed: &[(u64, u32)], out: &mut DayRowsMut<'_>) {
        let mut firsts: Vec<Option<(u32, i32)>> = vec![None; self.dim_codes.len()];
        let slots = out
            .customer
            .iter_mut()
            .zip(out.day.iter_mut())
            .zip(out.orders.iter_mut())
            .zip(out.micros.iter_mut())
            .enumerate();
        for ((slot, (((customer, day), orders), micros)), run) in
            slots.zip(keyed.chunk_by(|a, b| a.0 == b.0))
        {
            let Some(&(key, _)) = run.first() else {
                continue;
            };
            *customer = (key >> 32) as u32 as i32;
            *day = key as u32 as i32;
            let (mut n, mut m) = (0i32, 0i64);
            // Each dimension's smallest value among the day's purchases (by rank; its code).
            firsts.fill(None);
            for &(_, row) in run {
                let amount = self.amounts.get(row as usize).copied().unwrap_or_default();
                m += to_micros(amount);
                if amount < 0.0 {
                    continue;
                }
                n += 1;
                let dims = self.dim_codes.iter().zip(self.ranks);
                for ((codes, ranks), first) in dims.zip(&mut firsts) {
                    let Some(code) = codes.get(row as usize).copied().filter(|&c| c != NULL_CODE)
                    else {
                        continue;
                    };
                    let rank = ranks.get(code as usize).copied().unwrap_or(u32::MAX);
                    if first.is_none_or(|(best, _)| rank < best) {
                        *first = Some((rank, code));
                    }
                }
            }
            *orders = n;
            *micros = m;
            for ((codes, valid), first) in out.dims.iter_mut().zip(&firsts) {
                if let (Some((_, code)), Some(cell), Some(v)) =
                    (first, codes.get_mut(slot), valid.get_mut(slot))
                {
                    *cell = *code;
                    *v = true;
                }
            }
        }
    }
}

/// `keyed` (sorted by key) cut into about `pieces` slices, each cut moved forward to the start
/// of the next run of equal keys.
fn split_at_runs(keyed: &[(u64, u32)], pieces: usize) -> Vec<&[(u64, u32)]> {
    let pieces = pieces.max(1);
    let mut slices = Vec::with_capacity(pieces);
    let mut rest = keyed;
    for k in (1..=pieces).rev() {
        let mut cut = rest.len() / k;
        while cut > 0
            && cut < rest.len()
            && rest.get(cut).map(|r| r.0) == rest.get(cut - 1).map(|r| r.0)
        {
            cut += 1;
        }
        let (head, tail) = rest.split_at(cut);
        if !head.is_empty() {
            slices.push(head);
        }
        rest = tail;
    }
    if !rest.is_empty() {
        slices.push(rest);
    }
    slices
}

/// The columns of a loaded transactions table that a `--by` can name: all but the customer,
/// date, amount, order id and cost.
fn transaction_dimensions(tx: &DataFrame) -> Vec<String> {
    tx.get_column_names()
        .iter()
        .map(|c| c.to_string())
        .filter(|c| {
            ![
                col::CUSTOMER_ID,
                col::DATE,
                col::AMOUNT,
                col::ORDER_ID,
                col::COST,
            ]
            .contains(&c.as_str())
        })
        .collect()
}

/// An interactions frame reduced to events (one row per customer, day and dimension values,
/// with their count, in first-seen order) and survey answers (one row per day, dimension
/// values and NPS/CSAT answer pair, with their count).
fn interaction_rows(frame: &DataFrame) -> Result<(DataFrame, DataFrame)> {
    let dims: Vec<String> = frame
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .filter(|c| ![col::CUSTOMER_ID, col::DATE, col::NPS, col::CSAT].contains(&c.as_str()))
        .collect();
    let dim_exprs: Vec<Expr> = dims
        .iter()
        .map(|d| {
            col(d.as_str())
                .cast(DataType::String)
                .alias(format!("{DIM_PREFIX}{d}"))
        })
        .collect();
    let lf = frame.clone().lazy();
    let mut keys = vec![col(col::CUSTOMER_ID).cast(DataType::String), col(col::DATE)];
    keys.extend(dim_exprs.iter().cloned());
    let events = lf
        .clone()
        .filter(
            col(col::CUSTOMER_ID)
                .is_not_null()
                .and(col(col::DATE).is_not_null()),
        )
        .group_by_stable(keys)
        .agg([len().cast(DataType::Int32).alias("interactions")])
        .collect()?;
    let has = |c: &str| frame.get_column_index(c).is_some();
    let score = |c: &str| {
        if has(c) {
            col(c).cast(DataType::Int32)
        } else {
            lit(NULL).cast(DataType::Int32).alias(c)
        }
    };
    let mut keys = vec![col(col::DATE), score(col::NPS), score(col::CSAT)];
    keys.extend(dim_exprs);
    let answered = match (has(col::NPS), has(col::CSAT)) {
        (true, true) => col(col::NPS).is_not_null().or(col(col::CSAT).is_not_null()),
        (true, false) => col(col::NPS).is_not_null(),
        (false, true) => col(col::CSAT).is_not_null(),
        (false, false) => lit(false),
    };
    let survey = lf
        .filter(answered.and(col(col::DATE).is_not_null()))
        .group_by_stable(keys)
        .agg([len().cast(DataType::Int64).alias("answers")])
        .collect()?;
    Ok((events, survey))
}

/// The manifest's record of a loaded table (its rows are in the Parquet files), added to what
/// the store had of it.
fn stored(
    t: &Table,
    prior: Option<&StoredTable>,
    keyed: bool,
    days: Option<(i32, i32)>,
) -> StoredTable {
    let columns: Vec<String> = t
        .frame
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .filter(|c| !t.dimensions.contains(c))
        .collect();
    let mut s = StoredTable {
        kind: t.kind,
        accounting: t.accounting.clone(),
        rejections: t.rejections.clone(),
        answer_rejections: t.answer_rejections.clone(),
        files: t.files.clone(),
        dimensions: t.dimensions.clone(),
        columns,
        days,
        keyed,
        settings: Vec::new(),
        identifiers: Vec::new(),
    };
    if let Some(p) = prior {
        let mut acc = p.accounting.clone();
        let add = |a: &mut BTreeMap<String, u64>, b: &BTreeMap<String, u64>| {
            for (k, v) in b {
                *a.entry(k.clone()).or_default() += v;
            }
        };
        acc.rows_read += s.accounting.rows_read;
        acc.rows_used += s.accounting.rows_used;
        acc.rows_rejected += s.accounting.rows_rejected;
        add(
            &mut acc.rejected_by_reason,
            &s.accounting.rejected_by_reason,
        );
        acc.rows_excluded += s.accounting.rows_excluded;
        add(
            &mut acc.excluded_by_reason,
            &s.accounting.excluded_by_reason,
        );
        acc.answers_rejected += s.accounting.answers_rejected;
        add(
            &mut acc.answers_rejected_by_reason,
            &s.accounting.answers_rejected_by_reason,
        );
        s.accounting = acc;
        let mut rejections = p.rejections.clone();
        rejections.extend(s.rejections);
        s.rejections = rejections;
        let mut answers = p.answer_rejections.clone();
        answers.extend(s.answer_rejections);
        s.answer_rejections = answers;
        let mut files = p.files.clone();
        files.extend(s.files);
        s.files = files;
        let mut dims = p.dimensions.clone();
        for d in s.dimensions {
            if !dims.contains(&d) {
                dims.push(d);
            }
        }
        s.dimensions = dims;
        let mut columns = p.columns.clone();
        for c in s.columns {
            if !columns.contains(&c) {
                columns.push(c);
            }
        }
        s.columns = columns;
        s.settings = p.settings.clone();
        // The days this run added, with the store's.
        s.days = match (p.days, s.days) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (old, new) => new.or(old),
        };
    }
    s
}

/// Applies `overlap` to the rows of an update on or before the store's last day of the table.
fn apply_overlap(t: &mut Table, prior: &StoredTable, overlap: Overlap) -> Result<()> {
    let Some((_, last)) = prior.days else {
        return Ok(());
    };
    let days = t.frame.column(col::DATE)?.cast(&DataType::Int32)?;
    let days = days.i32()?;
    let overlapping = days.iter().flatten().filter(|&d| d <= last).count() as u64;
    if overlapping == 0 {
        return Ok(());
    }
    let first = days.iter().flatten().min().unwrap_or(last);
    let what = match t.kind {
        TableKind::Transactions => "transactions without order ids",
        _ => "interactions",
    };
    match overlap {
        Overlap::Refuse => Err(Error::Store {
            path: PathBuf::from(t.files.first().map(|f| f.file.clone()).unwrap_or_default()),
            message: format!(
                "{overlapping} {what} fall on days the store already covers ({} to {}): rows of {what} cannot be told apart from the store's; pass --overlap skip to leave them out (the export repeats those days) or --overlap keep to add them (they are other customers' rows)",
                crate::period::date_from_days(first),
                crate::period::date_from_days(last),
            ),
        }),
        Overlap::Keep => Ok(()),
        Overlap::Skip => {
            let keep: BooleanChunked = days
                .iter()
                .map(|d| Some(d.is_none_or(|d| d > last)))
                .collect();
            t.frame = t.frame.filter(&keep)?;
            let a = &mut t.accounting;
            *a.excluded_by_reason
                .entry(ALREADY_IN_STORE.into())
                .or_default() += overlapping;
            a.rows_excluded += overlapping;
            a.rows_used = a.rows_used.saturating_sub(overlapping);
            Ok(())
        }
    }
}

/// Whether a transactions table's order lines are keyed, in it and in the store it updates:
/// only then are repeated lines recognised, and an overlap of dates needs no decision.
fn is_keyed(t: &Table, prior: Option<&StoredTable>) -> bool {
    t.frame.get_column_index(col::ORDER_ID).is_some() && prior.is_none_or(|p| p.keyed)
}

/// The key of each order (order id and customer: an order is an order id of one customer)
/// of the rows with an order id, in row order, with their rows when some rows have none.
fn order_keys(frame: &DataFrame) -> Result<OrderKeys> {
    if frame.get_column_index(col::ORDER_ID).is_none() {
        return Ok(OrderKeys::default());
    }
    use rayon::prelude::*;
    let orders = frame.column(col::ORDER_ID)?.cast(&DataType::String)?;
    let customers = frame.column(col::CUSTOMER_ID)?.cast(&DataType::String)?;
    let (orders, customers) = (orders.str()?, customers.str()?);
    // Hashed in slices on every core (one core took ~0.2 s of a 10M-row summarize).
    const SLICE: usize = 1 << 16;
    let in_slice = |s: usize| {
        (
            orders.slice((s * SLICE) as i64, SLICE),
            customers.slice((s * SLICE) as i64, SLICE),
        )
    };
    let key = |bytes: &mut Vec<u8>, o: &str, c: Option<&str>| {
        bytes.clear();
        bytes.extend_from_slice(&(o.len() as u32).to_le_bytes());
        bytes.extend_from_slice(o.as_bytes());
        bytes.extend_from_slice(c.unwrap_or_default().as_bytes());
        xxhash_rust::xxh3::xxh3_64(bytes)
    };
    if orders.null_count() == 0 {
        // Every row an order (the usual case): each slice writes its keys in place, where a
        // filtered collect copied the slices' lists together on one core (160 MB at 10M rows).
        let mut keys = crate::io::load::par_filled(0u64, frame.height());
        keys.par_chunks_mut(SLICE).enumerate().for_each(|(s, out)| {
            let (o, c) = in_slice(s);
            let mut bytes = Vec::with_capacity(64);
            for (slot, (o, c)) in out.iter_mut().zip(o.iter().zip(c.iter())) {
                *slot = key(&mut bytes, o.unwrap_or_default(), c);
            }
        });
        return Ok(OrderKeys { keys, rows: None });
    }
    let keyed: Vec<(u32, u64)> = (0..frame.height().div_ceil(SLICE))
        .into_par_iter()
        .flat_map_iter(|s| {
            let (o, c) = in_slice(s);
            let mut bytes = Vec::with_capacity(64);
            let keys: Vec<(u32, u64)> = o
                .iter()
                .zip(c.iter())
                .enumerate()
                .filter_map(|(i, (o, c))| Some(((s * SLICE + i) as u32, key(&mut bytes, o?, c))))
                .collect();
            keys
        })
        .collect();
    let (rows, keys) = keyed.into_iter().unzip();
    Ok(OrderKeys {
        keys,
        rows: Some(rows),
    })
}

/// The key of each order row of a frame (hash of order id and customer id), in row order.
#[derive(Default)]
struct OrderKeys {
    keys: Vec<u64>,
    /// The row of each key; none when every row has an order id (key `i` is row `i`'s).
    rows: Option<Vec<u32>>,
}

impl OrderKeys {
    /// The row of the `i`th key.
    fn row(&self, i: usize) -> usize {
        match &self.rows {
            Some(rows) => rows.get(i).map_or(i, |&r| r as usize),
            None => i,
        }
    }
}

/// Calls `f` with the values of each row where both columns have one, in row order. A store as
/// written has no nulls in its key, code and count columns: their values are then read plain,
/// which the optional values' iterator was not (a tenth of an update's time on 10M rows). A
/// store written elsewhere may have nulls; those rows are skipped. `f(a, a)` for one column.
fn for_each_pair<A: PolarsNumericType, B: PolarsNumericType>(
    a: &ChunkedArray<A>,
    b: &ChunkedArray<B>,
    mut f: impl FnMut(A::Native, B::Native),
) {
    if a.null_count() + b.null_count() == 0 {
        for (x, y) in a.into_no_null_iter().zip(b.into_no_null_iter()) {
            f(x, y);
        }
    } else {
        for (x, y) in a.iter().zip(b.iter()) {
            if let (Some(x), Some(y)) = (x, y) {
                f(x, y);
            }
        }
    }
}

/// A store's purchases as a canonical transactions frame: one row per customer and day with
/// its purchases as weight ([`col::ORDERS`]), its net revenue as the amount, and its
/// dimensions' values.
fn decode_purchases(
    p: &DataFrame,
    ids: &Series,
    first_code: u32,
    dictionary: &Dictionary,
    t: &StoredTable,
) -> Result<DataFrame> {
    // The ids' gather (a view per row) runs beside the other columns' casts: at 10M rows each
    // half is a few hundred milliseconds of one thread, the first step of every store command.
    // The numeric columns are made one chunk each here (a store's come in a chunk per row
    // group): stage 1 reads them as slices, and copied them into place while this frame still
    // held its chunks (190 MB more at the peak of `rfm --store` at 10M rows).
    let (customers, rest) = rayon::join(
        || customer_columns(p, ids, first_code),
        || -> Result<Vec<Column>> {
            let days = p.column(col::DATE)?.cast(&DataType::Int32)?;
            let days = super::summarise::one_chunk(days.i32()?);
            let mut columns = vec![days.into_column().cast(&DataType::Date)?];
            let micros = p.column("revenue_micros")?;
            let amount = match micros
                .i64()
                .ok()
                .and_then(|values| mapped_one_chunk(values, |v| Some(amount_of_micros(v))))
            {
                Some(amount) => amount,
                None => {
                    let micros = micros.cast(&DataType::Float64)?;
                    super::summarise::one_chunk(&(micros.f64()? / 1e6))
                }
            };
            columns.push(amount.with_name(col::AMOUNT.into()).into_column());
            let orders = as_u32_one_chunk(p.column("orders")?)?;
            columns.push(orders.with_name(col::ORDERS.into()).into_column());
            columns.extend(decode_dims(p, dictionary, TableKind::Transactions, t)?);
            Ok(columns)
        },
    );
    let mut columns: Vec<Column> = customers?.into();
    columns.extend(rest?);
    Ok(DataFrame::new_infer_height(columns)?)
}

/// A store's interactions and survey answers as one canonical interactions frame: event rows
/// weighted by [`col::INTERACTIONS`], answer rows (no customer) by [`col::ANSWERS`].
///
/// Without `ids`, the events' customer ids are left null (their codes are kept): what reads
/// the interactions of a store read in partitions needs no ids.
fn decode_interactions(
    events: Option<&DataFrame>,
    survey: Option<&DataFrame>,
    ids: Option<&Series>,
    dictionary: &Dictionary,
    t: &StoredTable,
) -> Result<DataFrame> {
    let mut parts = Vec::new();
    if let Some(e) = events {
        let mut columns: Vec<Column> = match ids {
            Some(ids) => customer_columns(e, ids, 0)?.into(),
            None => vec![
                Column::full_null(col::CUSTOMER_ID.into(), e.height(), &DataType::String),
                e.column("customer")?
                    .cast(&DataType::UInt32)?
                    .with_name(col::CUSTOMER_CODE.into()),
            ],
        };
        columns.push(e.column(col::DATE)?.cast(&DataType::Date)?);
        columns.push(
            e.column("interactions")?
                .cast(&DataType::UInt32)?
                .with_name(col::INTERACTIONS.into()),
        );
        let n = e.height();
        columns.push(Column::new(col::ANSWERS.into(), vec![0u32; n]));
        columns.extend(decode_dims(e, dictionary, TableKind::Interactions, t)?);
        parts.push(DataFrame::new_infer_height(columns)?.lazy());
    }
    if let Some(s) = survey {
        let n = s.height();
        let mut columns = vec![
            Column::full_null(col::CUSTOMER_ID.into(), n, &DataType::String),
            Column::full_null(col::CUSTOMER_CODE.into(), n, &DataType::UInt32),
            s.column(col::DATE)?.cast(&DataType::Date)?,
            Column::new(col::INTERACTIONS.into(), vec![0u32; n]),
            s.column("answers")?
                .cast(&DataType::UInt32)?
                .with_name(col::ANSWERS.into()),
        ];
        for c in [col::NPS, col::CSAT] {
            if t.columns.iter().any(|k| k == c) {
                columns.push(s.column(c)?.cast(&DataType::Int32)?);
            }
        }
        columns.extend(decode_dims(s, dictionary, TableKind::Interactions, t)?);
        parts.push(DataFrame::new_infer_height(columns)?.lazy());
    }
    if parts.is_empty() {
        return Ok(DataFrame::empty());
    }
    Ok(concat(
        parts,
        UnionArgs {
            diagonal: true,
            ..UnionArgs::default()
        },
    )?
    .collect()?)
}

/// A store's revenue in millionths as an amount, as the store has always decoded it: polars'
/// column division (`revenue_micros / 1e6`), which multiplies by the reciprocal. That differs
/// from [`crate::money::from_micros`] in the last bit for some values (-10 micros); both
/// print the same cents.
pub(super) fn amount_of_micros(micros: i64) -> f64 {
    micros as f64 * (1.0 / 1e6)
}

/// An int32 store column (customer codes, purchase counts) as one chunk of `u32`, as polars'
/// cast gives it (a negative value becomes null), without its copies when every value fits.
fn as_u32_one_chunk(column: &Column) -> Result<UInt32Chunked> {
    if let Ok(values) = column.i32()
        && let Some(mapped) = mapped_one_chunk::<_, UInt32Type>(values, |v| u32::try_from(v).ok())
    {
        return Ok(mapped);
    }
    let cast = column.cast(&DataType::UInt32)?;
    Ok(super::summarise::one_chunk(cast.u32()?))
}

/// The customer ids of a store frame's rows, and their codes ([`col::CUSTOMER_CODE`]); `ids`
/// holds the ids of the codes from `first_code` on.
fn customer_columns(frame: &DataFrame, ids: &Series, first_code: u32) -> Result<[Column; 2]> {
    let codes = as_u32_one_chunk(frame.column("customer")?)?.into_column();
    let idx = match first_code {
        0 => codes.cast(&IDX_DTYPE)?,
        first => (codes.as_materialized_series() - first)
            .cast(&IDX_DTYPE)?
            .into_column(),
    };
    // Gathered in a few slices on every core (one `take` of 10M ids was ~0.2 s of
    // `rfm --store` on one core); the slices become the column's chunks.
    use rayon::prelude::*;
    let idx = idx.idx()?;
    let slice = idx
        .len()
        .div_ceil(rayon::current_num_threads() * 2)
        .max(1 << 16);
    let parts: Vec<Series> = (0..idx.len().div_ceil(slice))
        .into_par_iter()
        .map(|s| ids.take(&idx.slice((s * slice) as i64, slice)))
        .collect::<PolarsResult<_>>()?;
    let mut parts = parts.into_iter();
    let mut gathered = parts
        .next()
        .unwrap_or_else(|| Series::new_empty(col::CUSTOMER_ID.into(), ids.dtype()));
    for part in parts {
        gathered.append_owned(part)?;
    }
    Ok([
        gathered.with_name(col::CUSTOMER_ID.into()).into_column(),
        codes.with_name(col::CUSTOMER_CODE.into()),
    ])
}

/// The `dim_*` code columns of a store frame as value columns named after their dimension, in
/// the table's dimension order.
fn decode_dims(
    frame: &DataFrame,
    dictionary: &Dictionary,
    kind: TableKind,
    t: &StoredTable,
) -> Result<Vec<Column>> {
    let mut names: Vec<String> = frame
        .get_column_names()
        .iter()
        .filter_map(|c| c.strip_prefix(DIM_PREFIX).map(str::to_string))
        .collect();
    let rank = |n: &String| {
        t.columns
            .iter()
            .chain(&t.dimensions)
            .position(|c| c == n)
            .unwrap_or(usize::MAX)
    };
    names.sort_by_key(rank);
    names
        .iter()
        .map(|d| -> Result<Column> {
            let codes = frame.column(&format!("{DIM_PREFIX}{d}"))?;
            Ok(dictionary.decode(kind, d, codes)?.into_column())
        })
        .collect()
}

/// The inputs of `spec` for the manifest: size and BLAKE3 checksum of each file.
fn describe_inputs(spec: &DatasetSpec, update: u32) -> Result<Vec<StoreInput>> {
    let mut out = Vec::new();
    let tables = [
        (TableKind::Transactions, &spec.transactions),
        (TableKind::Interactions, &spec.interactions),
        (TableKind::Customers, &spec.customers),
    ];
    for (table, patterns) in tables {
        if patterns.is_empty() {
            continue;
        }
        for input in expand_inputs(patterns)? {
            let (bytes, blake3) = match &input {
                InputPath::File(p) => {
                    // Mapped and hashed on every core (blake3 reads small files and special
                    // files such as pipes instead); the byte count is the hasher's.
                    let mut hasher = blake3::Hasher::new();
                    hasher.update_mmap_rayon(p).map_err(|e| Error::io(p, e))?;
                    (
                        Some(hasher.count()),
                        Some(hasher.finalize().to_hex().to_string()),
                    )
                }
                InputPath::Stdin => (None, None),
            };
            out.push(StoreInput {
                table,
                path: input.display(),
                bytes,
                blake3,
                update,
            });
        }
    }
    Ok(out)
}

/// The load settings of a table, as the manifest records them.
pub(crate) fn settings(options: &LoadOptions) -> serde_json::Value {
    serde_json::to_value(options).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// The counting sort gives the comparison sort's order, for dense codes and for codes
        /// spread wide (the other branch), with rows lacking a code or a day left out.
        #[test]
        fn day_keys_come_sorted_by_key_then_row(
            rows in proptest::collection::vec(
                (proptest::option::weighted(0.9, 0i32..40), proptest::option::weighted(0.9, 0i32..30)),
                0..300,
            ),
            spread in 1i32..100_000,
            offset in 0i32..1_000_000,
        ) {
            // With rows lacking a value, and with every row complete (keys written in place).
            let complete: Vec<(Option<i32>, Option<i32>)> =
                rows.iter().map(|(c, d)| (c.or(Some(7)), d.or(Some(3)))).collect();
            for (stretch, rows) in [(1, &rows), (spread, &rows), (spread, &complete)] {
                let codes: Vec<Option<i32>> =
                    rows.iter().map(|(c, _)| c.map(|c| offset + c * stretch)).collect();
                let days: Vec<Option<i32>> = rows.iter().map(|(_, d)| *d).collect();
                let plain_days: Vec<i32> = days.iter().map(|d| d.unwrap_or(NO_DAY)).collect();
                let mut expected: Vec<(u64, u32)> = codes
                    .iter()
                    .zip(&days)
                    .enumerate()
                    .filter_map(|(i, (c, d))| {
                        Some(((u64::from((*c)? as u32) << 32) | u64::from((*d)? as u32), i as u32))
                    })
                    .collect();
                expected.sort_unstable();
                proptest::prop_assert_eq!(sorted_day_keys(&codes, &plain_days), expected);
            }
        }
    }

    #[test]
    fn day_keys_of_many_rows_come_sorted_by_key_then_row() {
        // Past the small-input path: keys counted and placed per slice, rows without a code
        // or a day left out, repeated keys kept in row order.
        let n = 200_003usize;
        let mix = |i: usize| (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
        let codes: Vec<Option<i32>> = (0..n)
            .map(|i| (i % 97 != 0).then(|| (mix(i) % 50_000) as i32 + 10))
            .collect();
        let days: Vec<Option<i32>> = (0..n)
            .map(|i| (i % 89 != 0).then(|| (mix(i + 7) % 40) as i32 - 5))
            .collect();
        let mut expected: Vec<(u64, u32)> = codes
            .iter()
            .zip(&days)
            .enumerate()
            .filter_map(|(i, (c, d))| {
                Some((
                    (u64::from((*c)? as u32) << 32) | u64::from((*d)? as u32),
                    i as u32,
                ))
            })
            .collect();
        expected.sort_unstable();
        assert!(expected.len() > 190_000);
        let plain_days: Vec<i32> = days.iter().map(|d| d.unwrap_or(NO_DAY)).collect();
        assert_eq!(sorted_day_keys(&codes, &plain_days), expected);
    }

    #[test]
    fn slices_cut_only_between_runs_and_cover_every_key() {
        let keyed: Vec<(u64, u32)> = [1u64, 1, 1, 2, 3, 3, 3, 3, 4, 5, 5]
            .iter()
            .enumerate()
            .map(|(i, &k)| (k, i as u32))
            .collect();
        for pieces in [1, 2, 3, 4, 7, 11, 40] {
            let slices = split_at_runs(&keyed, pieces);
            assert_eq!(slices.concat(), keyed, "{pieces} pieces");
            for pair in slices.windows(2) {
                assert_ne!(
                    pair[0].last().unwrap().0,
                    pair[1].first().unwrap().0,
                    "a run split across slices ({pieces} pieces)"
                );
            }
            assert!(slices.len() <= pieces.max(1) + 1);
        }
        assert!(split_at_runs(&[], 4).is_empty());
    }

    #[test]
    fn order_keys_skip_rows_without_an_order_and_say_which_rows_they_are() {
        let frame = |orders: &[Option<&str>], customers: &[&str]| {
            DataFrame::new_infer_height(vec![
                Column::new(col::ORDER_ID.into(), orders),
                Column::new(col::CUSTOMER_ID.into(), customers),
            ])
            .unwrap()
        };
        // Every row an order: keys in row order, rows implied.
        let all = order_keys(&frame(
            &[Some("o1"), Some("o2"), Some("o1")],
            &["a", "a", "b"],
        ))
        .unwrap();
        assert!(all.rows.is_none());
        assert_eq!(all.keys.len(), 3);
        assert_ne!(
            all.keys[0], all.keys[2],
            "the same order id of another customer"
        );
        // A row without an order: left out, and the others keep their rows and keys.
        let some = order_keys(&frame(&[Some("o1"), None, Some("o1")], &["a", "a", "b"])).unwrap();
        assert_eq!(some.rows.as_deref(), Some(&[0u32, 2][..]));
        assert_eq!(some.keys, [all.keys[0], all.keys[2]]);
        assert_eq!(some.row(1), 2);
    }

    #[test]
    fn ranks_follow_the_values_byte_order_not_the_order_they_came_in() {
        let mut d = Dictionary::default();
        let values: StringChunked = ["b", "Ärhus", "Zürich", "b", "a"].iter().copied().collect();
        let codes = d.encode(TableKind::Transactions, "region", &values);
        assert_eq!(
            codes.into_no_null_iter().collect::<Vec<_>>(),
            [0, 1, 2, 0, 3]
        );
        // Byte order: "Zürich" < "a" < "b" < "Ärhus".
        assert_eq!(d.ranks(TableKind::Transactions, "region"), [2, 3, 0, 1]);
        assert!(d.ranks(TableKind::Transactions, "other").is_empty());
    }

    #[test]
    fn values_are_coded_in_first_seen_order_across_chunks() {
        // Two chunks: "b" for 128k rows, "z" first seen at the end of them, then nulls and
        // "b" again; the second chunk starts with "a". A second call adds "c" and reuses the
        // codes it has. (The store's codes are first-seen codes: a parallel coder must keep
        // this order.)
        let mut first: Vec<Option<&str>> = vec![Some("b"); 1 << 17];
        if let Some(last) = first.last_mut() {
            *last = Some("z");
        }
        first.extend([None, Some("b"), None]);
        let values = two_chunks(
            first.iter().copied().collect(),
            [Some("a"), Some("z"), None].into_iter().collect(),
        );
        let mut d = Dictionary::default();
        assert_eq!(
            codes_of(&mut d, &values),
            positions_in(&values, &["b", "z", "a"])
        );
        let more: StringChunked = [Some("c"), Some("a")].into_iter().collect();
        assert_eq!(codes_of(&mut d, &more), [Some(3), Some(2)]);
    }

    /// `first` then `second`, as one column of two chunks.
    fn two_chunks(first: StringChunked, second: StringChunked) -> StringChunked {
        let mut values = first;
        values.append(&second).unwrap();
        assert_eq!(values.chunks().len(), 2);
        values
    }

    /// The codes `d` gives the rows of `values` (none for a null).
    fn codes_of(d: &mut Dictionary, values: &StringChunked) -> Vec<Option<i32>> {
        d.encode(TableKind::Transactions, "region", values)
            .iter()
            .collect()
    }

    /// Each row's value's position in `order` (the codes of values first seen in that order).
    fn positions_in(values: &StringChunked, order: &[&str]) -> Vec<Option<i32>> {
        values
            .iter()
            .map(|v| v.map(|v| order.iter().position(|&w| w == v).unwrap() as i32))
            .collect()
    }

    #[test]
    fn long_values_are_coded_by_their_text_in_every_chunk() {
        // Values longer than a view holds point into their array's buffers: the same value in
        // two chunks (two arrays) has other views, and one chunk may hold it twice in its
        // buffers (here: a column built row by row, not from a dictionary).
        let long = ["a region with a long name", "another long region name"];
        let rows = |n: usize| -> Vec<Option<String>> {
            (0..n)
                .map(|i| match i % 5 {
                    0 => None,
                    1 | 3 => Some(long[0].to_string()),
                    2 => Some(long[1].to_string()),
                    _ => Some("short".to_string()),
                })
                .collect()
        };
        let values = two_chunks(
            rows(70_001).into_iter().collect(),
            rows(9).into_iter().rev().collect(),
        );
        let expected = positions_in(&values, &[long[0], long[1], "short"]);
        assert_eq!(codes_of(&mut Dictionary::default(), &values), expected);
        // Read as categories (a Parquet export in a store), the rows get the same codes.
        let categories = values
            .clone()
            .into_series()
            .cast(&DataType::from_categories(Categories::global()))
            .unwrap();
        let mut d = Dictionary::default();
        let coded = d.encode_all(
            TableKind::Transactions,
            &[("region", DimColumn::Categories(categories.cat32().unwrap()))],
        );
        let as_options: Vec<Option<i32>> = coded[0]
            .iter()
            .map(|&c| (c != NULL_CODE).then_some(c))
            .collect();
        assert_eq!(as_options, expected);
    }

    #[test]
    fn stored_keys_walked_in_batches_are_those_held_sorted_and_not_null() {
        use crate::io::load::SortedKeys;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, frame: DataFrame| -> PathBuf {
            let path = dir.path().join(name);
            let mut file = File::create(&path).unwrap();
            let mut frame = frame;
            write_parquet(
                &mut file,
                &mut frame,
                ParquetCompression::Uncompressed.into(),
            )
            .unwrap();
            path
        };
        // More keys than one batch, in two parts; every third number from each part's start,
        // so that a wanted key may fall between two held ones or past the last.
        let n = KEY_BATCH_ROWS + ROW_GROUP_ROWS / 2 + 7;
        let part = |start: u64| -> Vec<u64> { (0..n as u64).map(|i| start + 3 * i).collect() };
        let (a, b) = (part(1 << 63), part(5));
        let orders = |keys: &[u64]| {
            DataFrame::new_infer_height(vec![
                Int64Chunked::from_iter_values("key".into(), keys.iter().map(|&k| k as i64))
                    .into_column(),
            ])
            .unwrap()
        };
        let stored = StoredKeys {
            parts: vec![
                write("o0.parquet", orders(&a)),
                write("o1.parquet", orders(&b)),
            ],
            empty: false,
        };
        let last_of_b = *b.last().unwrap();
        let mut wanted = vec![5, 6, 8, last_of_b, last_of_b + 3, 1 << 63, (1 << 63) + 4];
        wanted.extend([a[KEY_BATCH_ROWS - 1], a[KEY_BATCH_ROWS], b[ROW_GROUP_ROWS]]);
        let wanted = sorted_unique(wanted.into_iter());
        let mut held = stored.held_orders(&wanted).unwrap();
        held.sort_unstable();
        let mut expected: Vec<u64> = wanted
            .iter()
            .copied()
            .filter(|k| a.binary_search(k).is_ok() || b.binary_search(k).is_ok())
            .collect();
        expected.sort_unstable();
        assert_eq!(held, expected);
        assert_eq!(expected.len(), 7);
        // Line keys: the halves of u128 keys, compared as the whole keys.
        let lines: Vec<u128> = a.iter().map(|&k| (u128::from(k) << 64) | 9).collect();
        let frame = DataFrame::new_infer_height(vec![
            Int64Chunked::from_iter_values(
                "key_high".into(),
                lines.iter().map(|k| (k >> 64) as u64 as i64),
            )
            .into_column(),
            Int64Chunked::from_iter_values(
                "key_low".into(),
                lines.iter().map(|&k| k as u64 as i64),
            )
            .into_column(),
        ])
        .unwrap();
        let stored = StoredKeys {
            parts: vec![write("l0.parquet", frame)],
            empty: false,
        };
        let wanted = [lines[0], lines[0] + 1, lines[KEY_BATCH_ROWS], lines[n - 1]];
        let mut held = SortedKeys::held(&stored, &wanted).unwrap();
        held.sort_unstable();
        assert_eq!(held, [lines[0], lines[KEY_BATCH_ROWS], lines[n - 1]]);
        // Out of order across two batches, and within one: refused, not walked past.
        let mut swapped = b.clone();
        swapped.swap(KEY_BATCH_ROWS - 1, KEY_BATCH_ROWS);
        let mut unsorted = b.clone();
        unsorted.swap(10, 11);
        for keys in [swapped, unsorted] {
            let stored = StoredKeys {
                parts: vec![write("bad.parquet", orders(&keys))],
                empty: false,
            };
            let err = stored.held_orders(&[5]).unwrap_err().to_string();
            assert!(err.contains("not sorted"), "{err}");
        }
        // A null key (a line that could not be recognised again): refused too.
        let with_null = DataFrame::new_infer_height(vec![
            Int64Chunked::from_iter_options("key".into(), [Some(1), None, Some(3)].into_iter())
                .into_column(),
        ])
        .unwrap();
        let stored = StoredKeys {
            parts: vec![write("null.parquet", with_null)],
            empty: false,
        };
        let err = stored.held_orders(&[1]).unwrap_err().to_string();
        assert!(err.contains("1 of its keys are null"), "{err}");
    }

    #[test]
    fn parquet_written_with_chosen_encodings_reads_back_equal() {
        // Over two row groups; a wide i64 (plain pages), narrow and wide i32 codes, dates,
        // strings, with nulls, and a frame of many chunks.
        let n = ROW_GROUP_ROWS + 1000;
        let part = |lo: usize, hi: usize| {
            let wide: Vec<i64> = (lo..hi)
                .map(|i| (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) as i64)
                .collect();
            let codes: Vec<i32> = (lo..hi).map(|i| (i / 3) as i32).collect();
            let small: Vec<Option<i32>> = (lo..hi)
                .map(|i| (i % 11 != 0).then_some((i % 7) as i32))
                .collect();
            let days: Vec<i32> = (lo..hi).map(|i| 19_000 + (i % 900) as i32).collect();
            let text: Vec<Option<String>> = (lo..hi)
                .map(|i| (i % 5 != 0).then(|| format!("v{}", i % 13)))
                .collect();
            DataFrame::new_infer_height(vec![
                Int64Chunked::from_vec("key".into(), wide).into_column(),
                Int32Chunked::from_vec("customer".into(), codes).into_column(),
                Int32Chunked::from_iter_options("dim".into(), small.into_iter()).into_column(),
                Int32Chunked::from_vec("date".into(), days)
                    .into_column()
                    .cast(&DataType::Date)
                    .unwrap(),
                StringChunked::from_iter(text.iter().map(Option::as_deref))
                    .with_name("value".into())
                    .into_column(),
            ])
            .unwrap()
        };
        let mut frame = part(0, 70_000);
        frame.vstack_mut(&part(70_000, n)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let mut file = File::create(&path).unwrap();
        write_parquet(
            &mut file,
            &mut frame.clone(),
            ParquetCompression::default().into(),
        )
        .unwrap();
        drop(file);
        let back = ParquetReader::new(File::open(&path).unwrap())
            .finish()
            .unwrap();
        assert!(back.equals_missing(&frame));
        assert_eq!(back.schema(), frame.schema());
        let column = |name: &str| frame.column(name).unwrap().clone();
        let dtype = |name: &str| column(name).dtype().to_arrow(CompatLevel::newest());
        use polars_parquet::write::Encoding;
        assert_eq!(
            column_encoding(&column("key"), &dtype("key")).unwrap(),
            [Encoding::Plain]
        );
        assert_eq!(
            column_encoding(&column("customer"), &dtype("customer")).unwrap(),
            [Encoding::Plain]
        );
        for narrow in ["dim", "date", "value"] {
            assert_eq!(
                column_encoding(&column(narrow), &dtype(narrow)).unwrap(),
                [Encoding::RleDictionary],
                "{narrow}"
            );
        }
        // An empty frame is a file with the schema and no row group.
        let mut empty = frame.head(Some(0));
        let mut file = File::create(&path).unwrap();
        write_parquet(&mut file, &mut empty, ParquetCompression::default().into()).unwrap();
        drop(file);
        let back = ParquetReader::new(File::open(&path).unwrap())
            .finish()
            .unwrap();
        assert_eq!((back.height(), back.schema()), (0, frame.schema()));
    }
}
