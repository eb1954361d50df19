//! Loading a table: open its files, map columns to roles, parse values, account for every row.
//!
//! The result is a canonical [`Table`]: fixed column names (see [`col`](mod@col)), typed values, one row per
//! order for transactions, plus the segment dimensions, and an [`Accounting`] that says where
//! every input row went.

use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use chrono::NaiveDate;
use polars::prelude::*;
use serde::Serialize;

use super::parse::{
    self, DateDetection, DateFormat, DecimalSeparator, RejectReason, detect_date_format,
    detect_decimal_separator,
};
use super::read::{self, FileFormat, InputPath, OpenedFile, ROW};
use super::schema::{ColumnMapping, ResolvedColumns, Role, TableKind, col, resolve_columns_with};
use super::status::{ExcludeReason, PurchaseStatus, StatusMap};
use crate::{Error, Result};

// Re-exported because the tests of metrics/churn.rs name this path; they are to use
// `crate::period::days_since_epoch` (issue 19), then this line goes.
pub(crate) use crate::period::days_since_epoch;

/// How to read one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LoadOptions {
    /// Explicit column choices; detection for the rest.
    pub mapping: ColumnMapping,
    /// Date format for every date column; detected per column when `None`.
    pub date_format: Option<DateFormat>,
    /// Decimal separator for amounts; detected per column when `None`.
    pub decimal: Option<DecimalSeparator>,
    /// Top of the CSAT scale (answers are 1..=scale).
    pub csat_scale: u8,
    /// Text encoding of CSV input; detected when `None` (UTF-8, or transcoded when clearly
    /// Windows-1252).
    pub encoding: Option<read::TextEncoding>,
    /// The sheet to read from workbooks (.xlsx, .xls, .ods); the first worksheet when `None`.
    pub sheet: Option<String>,
    /// The segment dimensions to read: `None` reads every one detected; `Some(list)` only those
    /// in the list, and no informational text column (currency) either. Metrics need only their
    /// `by` dimensions, and every text column left unread saves parsing and holding millions of
    /// strings (on 10M rows, each costs about a second and 200 MB). The skipped dimensions are
    /// still listed in [`Table::dimensions`] and the file report.
    pub read_dimensions: Option<Vec<String>>,
    /// Read only the rows of one customer partition (see [`Partition`]); `None` reads all rows.
    pub partition: Option<Partition>,
    /// Status values beyond the built-in list, or overriding it (`"in progress"` → pending);
    /// matched after lowercasing and dropping punctuation.
    pub statuses: BTreeMap<String, PurchaseStatus>,
}

/// One of `count` disjoint parts of a table, by customer: a row belongs to part
/// `hash(trimmed customer id) % count`, so that every row of a customer, and every repeat of a
/// line, falls in the same part. Loading the parts one after another holds a `count`-th of the
/// rows at a time (each part reads the files again); stage 1 summaries of the parts then merge
/// exactly ([`crate::metrics::summary::merge_partitions`]). Rows without a customer id fall in the
/// part of the empty id, where they are rejected as usual.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// This part, `0..count`.
    pub index: u32,
    /// Number of parts (at least 1).
    pub count: u32,
}

impl Partition {
    /// The part a customer id falls in: FNV-1a of the trimmed id, so that the split is the
    /// same on every run and machine.
    pub fn of(id: &str, count: u32) -> u32 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in id.trim().as_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        (h % u64::from(count.max(1))) as u32
    }

    /// A predicate keeping the rows of this part, for a lazy scan (evaluated batch by batch by
    /// the streaming engine, so the other parts' rows are never held). `id` is the customer-id
    /// column as read; non-text ids (integers in Parquet) are compared as their text.
    pub fn filter(self, id: Expr) -> Expr {
        let Partition { index, count } = self;
        id.map(
            move |c: Column| {
                let text = c.cast(&DataType::String)?;
                let mask: BooleanChunked = text
                    .str()?
                    .iter()
                    .map(|v| Some(Partition::of(v.unwrap_or_default(), count) == index))
                    .collect();
                Ok(mask.with_name(c.name().clone()).into_column())
            },
            |_, field| Ok(Field::new(field.name().clone(), DataType::Boolean)),
        )
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            mapping: ColumnMapping::default(),
            date_format: None,
            decimal: None,
            csat_scale: 5,
            encoding: None,
            sheet: None,
            read_dimensions: None,
            partition: None,
            statuses: BTreeMap::new(),
        }
    }
}

/// Where the rows of one table went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Accounting {
    /// Data rows read from all files (header and blank lines excluded).
    /// `rows_read = rows_used + rows_excluded + rows_rejected`.
    pub rows_read: u64,
    /// Rows that went into the metrics (continuation lines of an order included).
    pub rows_used: u64,
    /// Rows that could not be read, each with a reason (listed in the rejections).
    pub rows_rejected: u64,
    /// Rejected rows by reason key (`unparsable_date`, ...).
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Readable rows left out on purpose: failed, voided, pending or test orders, refunds
    /// without a purchase, report footers.
    pub rows_excluded: u64,
    /// Excluded rows by reason key (`failed`, `voided`, ...).
    pub excluded_by_reason: BTreeMap<String, u64>,
    /// NPS and CSAT answers left out (unreadable, out of range) in rows that were used: the
    /// interaction counts, its score is null. Not part of `rows_rejected`; an answer in a row
    /// rejected for another reason is not counted again.
    pub answers_rejected: u64,
    /// Rejected answers by reason key (`unparsable_score`, `nps_out_of_range`, ...).
    pub answers_rejected_by_reason: BTreeMap<String, u64>,
}

/// `key: count, key: count` of a by-reason map, as the stderr summary, `inspect` and the
/// report's data-quality table print it.
pub fn reason_counts(by_reason: &BTreeMap<String, u64>) -> String {
    by_reason
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One rejected input row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The file, as named by the user.
    pub file: String,
    /// 1-based line in a CSV file (accounts for quoted newlines); `None` for Parquet/IPC.
    pub line: Option<u64>,
    /// 1-based data row in the file.
    pub row: u64,
    /// The column holding the offending value.
    pub column: String,
    /// The offending value as written.
    pub value: String,
    /// Why the row was not used.
    pub reason: RejectReason,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.file)?,
            None => write!(f, "{} row {}", self.file, self.row)?,
        }
        write!(
            f,
            ": column {:?}: {}: {:?}",
            self.column, self.reason, self.value
        )
    }
}

/// What was learned about one input file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileReport {
    /// The file as named by the user.
    pub file: String,
    /// Its format.
    pub format: FileFormat,
    /// CSV delimiter, as a string.
    pub delimiter: Option<String>,
    /// Columns by role, and dimensions.
    pub columns: ResolvedColumns,
    /// Date format used, per date column.
    pub date_formats: BTreeMap<String, String>,
    /// Decimal separator used, per amount column.
    pub decimal_separators: BTreeMap<String, DecimalSeparator>,
    /// Data rows in the file.
    pub rows: u64,
    /// Text encoding a CSV file was read in (transcoded to UTF-8 when Windows-1252 or UTF-16).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<read::TextEncoding>,
    /// The sheet read, for a workbook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// Rows excluded on purpose, by reason key (failed, voided, report_footer, ...).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub excluded: BTreeMap<String, u64>,
    /// Line-item rows that continue an order given on an earlier row (order id set, the
    /// order-level amount blank): used as part of that order, not as orders of their own.
    #[serde(skip_serializing_if = "is_zero")]
    pub continuation_rows: u64,
    /// Blank lines (no value in any column) skipped; they are not rows.
    #[serde(skip_serializing_if = "is_zero")]
    pub blank_lines: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A loaded canonical table.
#[derive(Debug, Clone)]
pub struct Table {
    /// Which table.
    pub kind: TableKind,
    /// Canonical columns plus dimensions; transactions are one row per order.
    pub frame: DataFrame,
    /// Row accounting over all files.
    pub accounting: Accounting,
    /// All rejected rows, in file order.
    pub rejections: Vec<Rejection>,
    /// The rejected NPS and CSAT answers of used rows (see [`Accounting::answers_rejected`]),
    /// in file order.
    pub answer_rejections: Vec<Rejection>,
    /// Per-file details.
    pub files: Vec<FileReport>,
    /// Segment dimension columns present in `frame`.
    pub dimensions: Vec<String>,
    /// Paths of the input files on disk (outputs must never overwrite them).
    pub input_paths: Vec<PathBuf>,
}

/// Loads a table from files, globs or `-` (stdin).
///
/// # Errors
/// Any [`Error`] about files, columns or formats. Bad *values* are not errors: they are
/// rejections, counted in [`Table::accounting`].
pub fn load_table<S: AsRef<str>>(
    kind: TableKind,
    inputs: &[S],
    options: &LoadOptions,
) -> Result<Table> {
    let inputs = read::expand_inputs(inputs)?;
    load_inputs(kind, &inputs, options)
}

/// Like [`load_table`] for already expanded inputs.
///
/// # Errors
/// See [`load_table`].
pub fn load_inputs(kind: TableKind, inputs: &[InputPath], options: &LoadOptions) -> Result<Table> {
    load_opened(kind, &open_inputs(inputs, options)?, options)
}

/// Opens inputs (stdin spooled, gzip decompressed, Windows-1252 transcoded). Kept open, they can
/// be loaded several times, one partition at a time, reading stdin once.
pub(crate) fn open_inputs(
    inputs: &[InputPath],
    options: &LoadOptions,
) -> Result<Vec<read::OpenedFile>> {
    inputs
        .iter()
        .map(|i| read::open_with(i, options.encoding, options.sheet.as_deref()))
        .collect()
}

/// Loads a table from an in-memory polars frame (`DataFrame::lazy()` or any `LazyFrame`), with
/// the same column detection, value parsing and row accounting as a file; `name` stands for the
/// file name in messages and accounting. Columns may be text (parsed as in a CSV) or already
/// typed (dates, numbers), as in Parquet.
///
/// # Errors
/// See [`load_table`].
pub fn load_frame(
    kind: TableKind,
    name: &str,
    frame: LazyFrame,
    options: &LoadOptions,
) -> Result<Table> {
    load_opened(kind, &[read::open_frame(name, frame)?], options)
}

pub(crate) fn load_opened(
    kind: TableKind,
    opened: &[read::OpenedFile],
    options: &LoadOptions,
) -> Result<Table> {
    let mut frames = Vec::new();
    let mut accounting = Accounting::default();
    let mut rejections = Vec::new();
    let mut answer_rejections = Vec::new();
    let mut files = Vec::new();
    let mut input_paths = Vec::new();
    let mut dimensions: Vec<String> = Vec::new();
    // Order lines seen in earlier files: overlapping exports (January's file and a "last 60
    // days" file) repeat lines, which must count once.
    let mut seen_lines: HashSet<(u64, u64)> = HashSet::new();
    let several_files = opened.len() > 1;
    let mut order_ids_distinct = !several_files;
    // Where each file's rows sit in the concatenated table (customers only: to locate ids that
    // repeat).
    let mut spans: Vec<FileSpan> = Vec::new();
    for opened in opened {
        if let Some(p) = &opened.source_path {
            input_paths.push(p.clone());
        }
        let mut parsed = parse_file(kind, opened, options, several_files)?;
        if kind == TableKind::Customers {
            let rejected_rows = std::mem::take(&mut parsed.dropped_rows);
            spans.push(FileSpan {
                display: opened.display.clone(),
                csv: opened.csv_path.clone().zip(opened.delimiter),
                height: parsed.frame.height(),
                rejected_rows,
                id_column: parsed
                    .report
                    .columns
                    .column(Role::CustomerId)
                    .unwrap_or(col::CUSTOMER_ID)
                    .to_string(),
            });
        }
        order_ids_distinct &= parsed.order_ids_distinct;
        accounting.rows_read += parsed.report.rows;
        rejections.extend(std::mem::take(&mut parsed.rejections));
        answer_rejections.extend(std::mem::take(&mut parsed.answer_rejections));
        if let Some(kept) = parsed.kept_rows.as_ref().filter(|_| several_files) {
            let (frame, repeated) = drop_lines_seen_before(&parsed.frame, kept, &mut seen_lines)?;
            if !repeated.is_empty() {
                parsed.frame = frame;
                let lines = match (&opened.csv_path, opened.delimiter) {
                    (Some(path), Some(delim)) => {
                        let rows: Vec<u64> = repeated.iter().map(|(r, _)| *r).collect();
                        read::csv_lines(path, delim, &rows)
                    }
                    _ => vec![None; repeated.len()],
                };
                for ((row, order), line) in repeated.into_iter().zip(lines) {
                    rejections.push(Rejection {
                        file: opened.display.clone(),
                        line,
                        row: row + 1,
                        column: col::ORDER_ID.to_string(),
                        value: order,
                        reason: RejectReason::DuplicateRow,
                    });
                }
            }
        }
        for d in &parsed.report.columns.dimensions {
            if !dimensions.contains(d) {
                dimensions.push(d.clone());
            }
        }
        files.push(parsed.report);
        frames.push(parsed.frame);
    }
    let mut frame = concat_frames(frames)?;
    // Before order lines merge, so that the count is of input rows.
    if kind == TableKind::Transactions {
        let (kept, excluded) = exclude_refunds_without_purchase(frame)?;
        frame = kept;
        if excluded > 0 {
            *accounting
                .excluded_by_reason
                .entry(ExcludeReason::RefundWithoutPurchase.key().to_string())
                .or_default() += excluded;
        }
    }
    // Lines of one order are merged; when every order id is distinct (most shop exports) there
    // is nothing to merge and the group-by is skipped.
    let has_orders = frame
        .get_column_names()
        .iter()
        .any(|c| c.as_str() == col::ORDER_ID);
    if kind == TableKind::Transactions
        && has_orders
        && !order_ids_distinct
        && !all_distinct(&frame, col::ORDER_ID)?
    {
        frame = merge_order_lines(frame, &dimensions)?;
    }
    // One row per customer: the first in file order; later rows of the same id are rejected.
    // Customer tables are usually distinct already, and the exact pass copies the table through
    // a hash table of every id (at 26M customers, the peak of a large report's loading), so it
    // runs only when the cheap check finds a repeat.
    if kind == TableKind::Customers && !all_distinct(&frame, col::CUSTOMER_ID)? {
        let (kept, repeated) = reject_repeated_customers(&frame, &spans)?;
        frame = kept;
        rejections.extend(repeated);
    }
    for r in &rejections {
        *accounting
            .rejected_by_reason
            .entry(r.reason.key().to_string())
            .or_default() += 1;
    }
    for f in &files {
        for (reason, count) in &f.excluded {
            *accounting
                .excluded_by_reason
                .entry(reason.clone())
                .or_default() += count;
        }
    }
    accounting.rows_excluded = accounting.excluded_by_reason.values().sum();
    accounting.rows_rejected = rejections.len() as u64;
    accounting.rows_used = accounting
        .rows_read
        .saturating_sub(accounting.rows_rejected + accounting.rows_excluded);
    for r in &answer_rejections {
        *accounting
            .answers_rejected_by_reason
            .entry(r.reason.key().to_string())
            .or_default() += 1;
    }
    accounting.answers_rejected = answer_rejections.len() as u64;
    Ok(Table {
        kind,
        frame,
        accounting,
        rejections,
        answer_rejections,
        files,
        dimensions,
        input_paths,
    })
}

/// Leaves out the refunds (negative amounts) of customers with no purchase in the table: the
/// purchase they refund is outside the export, so there is no customer here to take it from.
/// Returns the rest and how many rows were left out. Every row of a customer is in one
/// partition, so each partition decides this alone.
fn exclude_refunds_without_purchase(frame: DataFrame) -> Result<(DataFrame, u64)> {
    let Some(keep) = refunds_to_keep(&frame)? else {
        return Ok((frame, 0));
    };
    let kept = frame.filter(&keep)?;
    let excluded = (frame.height() - kept.height()) as u64;
    Ok((kept, excluded))
}

/// The rows to keep when some refunds have no purchase of their customer; `None` when every row
/// stays. Refunds are few: their customers are collected, then a purchase of theirs looked for
/// (a hash lookup per row, where a window over every customer grouped the whole table).
fn refunds_to_keep(frame: &DataFrame) -> Result<Option<BooleanChunked>> {
    let amounts = frame.column(col::AMOUNT)?.f64()?;
    if amounts.iter().flatten().all(|a| a >= 0.0) {
        return Ok(None);
    }
    let ids = frame.column(col::CUSTOMER_ID)?.str()?;
    let mut without_purchase: PlHashSet<&str> = ids
        .iter()
        .zip(amounts.iter())
        .filter(|(_, a)| a.is_some_and(|a| a < 0.0))
        .filter_map(|(id, _)| id)
        .collect();
    for (id, a) in ids.iter().zip(amounts.iter()) {
        if let (Some(id), Some(a)) = (id, a)
            && a >= 0.0
        {
            without_purchase.remove(id);
            if without_purchase.is_empty() {
                return Ok(None);
            }
        }
    }
    Ok(Some(
        ids.iter()
            .zip(amounts.iter())
            .map(|(id, a)| {
                let refund = a.is_some_and(|a| a < 0.0);
                Some(!(refund && id.is_some_and(|id| without_purchase.contains(id))))
            })
            .collect(),
    ))
}

/// Removes the order lines of `frame` (one file's transactions) that an earlier file already had:
/// same order id, customer, date and amount. Returns the remaining frame and, for each line
/// removed, its 0-based data row in the file and its order id; adds this file's lines to `seen`.
fn drop_lines_seen_before(
    frame: &DataFrame,
    kept_rows: &[u64],
    seen: &mut HashSet<(u64, u64)>,
) -> Result<(DataFrame, Vec<(u64, String)>)> {
    let names: Vec<&str> = [col::ORDER_ID, col::CUSTOMER_ID, col::DATE, col::AMOUNT]
        .into_iter()
        .filter(|n| frame.get_column_names().iter().any(|c| c.as_str() == *n))
        .collect();
    let cols: Vec<Series> = names
        .iter()
        .map(|n| -> Result<Series> {
            Ok(frame
                .column(n)?
                .cast(&DataType::String)?
                .as_materialized_series()
                .clone())
        })
        .collect::<Result<_>>()?;
    let cas: Vec<&StringChunked> = cols.iter().map(|s| s.str()).collect::<PolarsResult<_>>()?;
    let mut iters: Vec<_> = cas.iter().map(|c| c.iter()).collect();
    let mut keys = Vec::with_capacity(frame.height());
    let mut keep = Vec::with_capacity(frame.height());
    let mut repeated = Vec::new();
    for i in 0..frame.height() {
        let (mut h1, mut h2) = (
            std::hash::DefaultHasher::new(),
            std::hash::DefaultHasher::new(),
        );
        2u8.hash(&mut h2);
        let mut order = String::new();
        for (j, it) in iters.iter_mut().enumerate() {
            let v = it.next().flatten();
            if j == 0 {
                order = v.unwrap_or_default().to_string();
            }
            v.hash(&mut h1);
            v.hash(&mut h2);
        }
        let key = (h1.finish(), h2.finish());
        let dup = seen.contains(&key);
        keep.push(Some(!dup));
        if dup {
            repeated.push((kept_rows.get(i).copied().unwrap_or(i as u64), order));
        }
        keys.push(key);
    }
    seen.extend(keys);
    if repeated.is_empty() {
        return Ok((frame.clone(), repeated));
    }
    let mask: BooleanChunked = keep.into_iter().collect();
    Ok((frame.filter(&mask)?, repeated))
}

fn concat_frames(frames: Vec<DataFrame>) -> Result<DataFrame> {
    if frames.len() == 1 {
        return Ok(frames.into_iter().next().unwrap_or_default());
    }
    // Monthly exports may differ in their extra columns: align them (missing = null) first.
    let mut names: Vec<(PlSmallStr, DataType)> = Vec::new();
    for f in &frames {
        for c in f.columns() {
            if !names.iter().any(|(n, _)| n == c.name()) {
                names.push((c.name().clone(), c.dtype().clone()));
            }
        }
    }
    let lazy: Vec<LazyFrame> = frames
        .into_iter()
        .map(|f| {
            let exprs: Vec<Expr> = names
                .iter()
                .map(|(n, dt)| {
                    if f.get_column_names().contains(&n) {
                        col(n.clone()).cast(dt.clone())
                    } else {
                        lit(NULL).cast(dt.clone()).alias(n.clone())
                    }
                })
                .collect();
            f.lazy().select(exprs)
        })
        .collect();
    Ok(concat(lazy, UnionArgs::default())?.collect()?)
}

/// Lines of one order become one transaction: amounts summed, the earliest date, the first
/// dimension values. Line-item exports (Shopify, UCI Online Retail) need this so that "number of
/// purchases" counts orders, not items. An order is an order id *of one customer*: the same id
/// under another customer (two shops' numbering in one job) is another order, and rows without
/// an order id (a file without the column, read with one that has it) are orders of their own.
/// Every line of an order is then a line of one customer, so that reading the table in customer
/// partitions merges the same lines.
fn merge_order_lines(frame: DataFrame, dimensions: &[String]) -> Result<DataFrame> {
    const LINE: &str = "__line";
    const ALONE: &str = "__alone";
    let mut aggs = vec![
        col(col::DATE).min(),
        crate::money::exact_sum(col(col::AMOUNT)).alias(col::AMOUNT),
    ];
    let names: Vec<String> = frame
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    for optional in [col::COST] {
        if names.iter().any(|n| n == optional) {
            aggs.push(crate::money::exact_sum(col(optional)).alias(optional));
        }
    }
    for keep in [col::CURRENCY]
        .iter()
        .map(|s| s.to_string())
        .chain(dimensions.iter().cloned())
    {
        if names.contains(&keep) {
            aggs.push(col(keep.as_str()).first());
        }
    }
    Ok(frame
        .lazy()
        .with_row_index(LINE, None)
        .with_column(
            when(col(col::ORDER_ID).is_null())
                .then(col(LINE))
                .otherwise(lit(NULL).cast(IDX_DTYPE))
                .alias(ALONE),
        )
        .group_by_stable([col(col::ORDER_ID), col(col::CUSTOMER_ID), col(ALONE)])
        .agg(aggs)
        .drop(cols([ALONE]))
        .collect()?)
}

/// One file's rows in a concatenated table.
struct FileSpan {
    display: String,
    /// The CSV file and its delimiter, to find the line of a row.
    csv: Option<(PathBuf, u8)>,
    /// Rows the file contributed.
    height: usize,
    /// 0-based data rows of the file not in the table (rejected, excluded, blank), ascending.
    rejected_rows: Vec<u64>,
    /// The file's customer-id column.
    id_column: String,
}

impl FileSpan {
    /// The 0-based data rows in the file of the table's rows `ks` (ascending) from this file:
    /// each `k` plus the rejected rows before it, in one walk over both lists.
    fn file_rows(&self, ks: impl IntoIterator<Item = usize>) -> Vec<u64> {
        let mut rejected = self.rejected_rows.iter().copied().peekable();
        let mut skipped = 0u64;
        ks.into_iter()
            .map(|k| {
                let mut row = k as u64 + skipped;
                while rejected.next_if(|&r| r <= row).is_some() {
                    row += 1;
                    skipped += 1;
                }
                row
            })
            .collect()
    }
}

/// Keeps the first row of each customer id (file order) and rejects the later ones as
/// `duplicate_customer`, each located in its file.
fn reject_repeated_customers(
    frame: &DataFrame,
    spans: &[FileSpan],
) -> Result<(DataFrame, Vec<Rejection>)> {
    let ids = frame.column(col::CUSTOMER_ID)?.cast(&DataType::String)?;
    let ids = ids.str()?;
    let mut seen: PlHashSet<&str> = PlHashSet::with_capacity(ids.len());
    let mut repeated: Vec<(usize, &str)> = Vec::new();
    let keep: BooleanChunked = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let id = id.unwrap_or_default();
            let first = seen.insert(id);
            if !first {
                repeated.push((i, id));
            }
            Some(first)
        })
        .collect();
    drop(seen);
    let mut rejections = Vec::with_capacity(repeated.len());
    let mut repeated = repeated.into_iter().peekable();
    let mut offset = 0usize;
    for span in spans {
        let end = offset + span.height;
        let mut here: Vec<(usize, &str)> = Vec::new();
        while let Some((i, id)) = repeated.next_if(|(i, _)| *i < end) {
            here.push((i - offset, id));
        }
        let rows = span.file_rows(here.iter().map(|(k, _)| *k));
        let lines = match &span.csv {
            Some((path, delimiter)) => read::csv_lines(path, *delimiter, &rows),
            None => vec![None; here.len()],
        };
        for ((row, (_, id)), line) in rows.into_iter().zip(here).zip(lines) {
            rejections.push(Rejection {
                file: span.display.clone(),
                line,
                row: row + 1,
                column: span.id_column.clone(),
                value: id.to_string(),
                reason: RejectReason::DuplicateCustomer,
            });
        }
        offset = end;
    }
    Ok((frame.filter(&keep)?, rejections))
}

struct ParsedFile {
    frame: DataFrame,
    rejections: Vec<Rejection>,
    /// Rejected answers of kept rows.
    answer_rejections: Vec<Rejection>,
    report: FileReport,
    /// 0-based data row in the file of each kept row, for transactions with order ids when
    /// several files are read (to locate lines repeated across files).
    kept_rows: Option<Vec<u64>>,
    /// Whether the kept order ids are known to be distinct as loaded (distinct and already
    /// trimmed in the file), so that the check need not run again on the loaded table.
    order_ids_distinct: bool,
    /// 0-based data rows of the file not in `frame` (rejected, excluded, blank, continuation
    /// lines), ascending: to locate the file row of a table row.
    dropped_rows: Vec<u64>,
}

/// Whether every value of `column` (nulls counting as one value) is distinct.
///
/// Order ids are usually all distinct, and both `n_unique` (one thread) and a group-by (a hash
/// table and an index list per id: most of a 10M-row run's page faults) are costly for that. So
/// the values are hashed in parallel and the hashes sorted: no two equal hashes proves the ids
/// distinct; only when hashes collide is the exact check run.
fn all_distinct(frame: &DataFrame, column: &str) -> Result<bool> {
    use rayon::prelude::*;
    use std::hash::DefaultHasher;
    let text = frame.column(column)?.cast(&DataType::String)?;
    let ca = text.str()?;
    let chunk = 1 << 16;
    let mut hashes: Vec<u64> = (0..ca.len().div_ceil(chunk))
        .into_par_iter()
        .flat_map_iter(|i| {
            let part = ca.slice((i * chunk) as i64, chunk);
            let hashed: Vec<u64> = part
                .iter()
                .map(|v| {
                    let mut h = DefaultHasher::new();
                    v.hash(&mut h);
                    h.finish()
                })
                .collect();
            hashed
        })
        .collect();
    hashes.par_sort_unstable();
    if hashes.windows(2).all(|w| w.first() != w.get(1)) {
        return Ok(true);
    }
    Ok(text.n_unique()? == frame.height())
}

/// The first rejection of each rejected row, as we parse column after column, and the rows
/// settled before any value is checked (blank lines, report footers, continuation lines,
/// excluded statuses), whose values are then not checked at all. Sparse: such rows are few, and
/// a slot per row (16 bytes) was 1.6 GB of a 100M-row load.
#[derive(Default)]
struct RowStatus {
    first: BTreeMap<usize, (RejectReason, usize)>,
    settled: BTreeMap<usize, Settled>,
}

/// What became of a row that is not parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// No value in any column: not a row at all.
    Blank,
    /// A line item continuing an order of an earlier row: used, as part of that order.
    Continuation,
    /// Left out on purpose.
    Excluded(ExcludeReason),
}

impl RowStatus {
    fn reject(&mut self, row: usize, reason: RejectReason, column: usize) {
        if !self.settled.contains_key(&row) {
            self.first.entry(row).or_insert((reason, column));
        }
    }

    fn settle(&mut self, row: usize, how: Settled) {
        if !self.first.contains_key(&row) {
            self.settled.entry(row).or_insert(how);
        }
    }

    fn is_settled(&self, row: usize) -> bool {
        self.settled.contains_key(&row)
    }

    fn count(&self, how: Settled) -> u64 {
        self.settled.values().filter(|s| **s == how).count() as u64
    }

    /// Whether each of `n` rows is kept (neither rejected nor settled).
    fn keep_mask(&self, n: usize) -> BooleanChunked {
        let mut rejected = self.first.keys().copied().peekable();
        let mut settled = self.settled.keys().copied().peekable();
        (0..n)
            .map(|i| {
                let hit = rejected.next_if_eq(&i).is_some() | settled.next_if_eq(&i).is_some();
                Some(!hit)
            })
            .collect()
    }

    fn is_clean(&self) -> bool {
        self.first.is_empty() && self.settled.is_empty()
    }
}

/// Reads, checks and types one file. `track_rows` keeps the file row of every kept row (needed
/// only to find lines repeated across several files).
fn parse_file(
    kind: TableKind,
    opened: &OpenedFile,
    options: &LoadOptions,
    track_rows: bool,
) -> Result<ParsedFile> {
    parse_file_columns(kind, opened, options, track_rows)
        .map_err(|e| e.in_file(opened.display.as_str()))
}

fn parse_file_columns(
    kind: TableKind,
    opened: &OpenedFile,
    options: &LoadOptions,
    track_rows: bool,
) -> Result<ParsedFile> {
    let mut resolved = resolve_columns_with(
        kind,
        &opened.columns,
        &options.mapping,
        options.csat_scale,
        &mut |names| head_values(opened, names),
    )?;
    opened.check_readable(&mut resolved)?;
    let read_dimension = |d: &String| {
        options
            .read_dimensions
            .as_ref()
            .is_none_or(|keep| keep.contains(d))
    };
    let informational: Vec<&String> = match &options.read_dimensions {
        Some(_) => [Role::Currency]
            .iter()
            .filter_map(|r| resolved.roles.get(r))
            .collect(),
        None => vec![],
    };
    let mut wanted: Vec<String> = resolved
        .roles
        .values()
        .filter(|c| !informational.contains(c))
        .cloned()
        .collect();
    wanted.extend(
        resolved
            .dimensions
            .iter()
            .filter(|d| read_dimension(d))
            .cloned(),
    );
    wanted.sort();
    wanted.dedup();
    let mut select: Vec<Expr> = vec![col(ROW)];
    select.extend(wanted.iter().map(|c| col(c.as_str())));
    let shown = PathBuf::from(&opened.display);
    let typed = read_typed_csv(kind, opened, &resolved, &select, options);
    let raw = match typed {
        Some(frame) => frame,
        None => in_partition(opened.frame.clone(), &resolved, options)
            .select(select)
            .collect_with_engine(Engine::Streaming)
            .map(|r| r.unwrap_single())
            .map_err(|e| Error::Format {
                path: shown.clone(),
                // polars' messages suggest Python arguments; say what is wrong and where instead.
                message: match (&opened.csv_path, opened.delimiter) {
                    (Some(p), Some(d)) => read::diagnose_csv(p, d).unwrap_or_else(|| e.to_string()),
                    _ => e.to_string(),
                },
            })?,
    };
    let n = raw.height();
    let table = kind.name().to_string();
    let mut status = RowStatus::default();
    // Columns whose values are quoted in rejections, by index into `sources`.
    let mut sources: Vec<(String, Series)> = Vec::new();
    let mut out: Vec<Column> = Vec::new();
    let mut date_formats = BTreeMap::new();
    let mut decimal_separators = BTreeMap::new();
    let source =
        |name: &str| -> Result<Series> { Ok(raw.column(name)?.as_materialized_series().clone()) };

    // Rows settled before any value is checked: blank lines are not rows, a report's footer
    // block and excluded statuses are left out, and continuation lines belong to their order.
    settle_blank_rows(opened, &raw, &wanted, &mut status)?;
    settle_footer(opened, &raw, options, &mut status)?;
    if kind == TableKind::Transactions {
        settle_continuations(&raw, &resolved, &mut status)?;
    }
    let purchase_status = match resolved.column(Role::Status) {
        Some(name) if kind == TableKind::Transactions => {
            let s = source(name)?;
            let idx = sources.len();
            let statuses = purchase_statuses(&s, &mut status, idx, options).map_err(|unknown| {
                Error::UnknownStatus {
                    path: shown.clone(),
                    table: table.clone(),
                    column: name.to_string(),
                    values: unknown,
                }
            })?;
            sources.push((name.to_string(), s));
            Some(statuses)
        }
        _ => None,
    };

    // Customer id: required, trimmed text.
    if let Some(name) = resolved.column(Role::CustomerId) {
        let s = source(name)?.cast(&DataType::String)?;
        let idx = sources.len();
        let ca = s.str()?;
        let ids: StringChunked = if is_clean_text(ca, false) {
            ca.clone()
        } else {
            ca.iter()
                .enumerate()
                .map(|(i, v)| match v.map(str::trim) {
                    Some(t) if !t.is_empty() => Some(t.to_string()),
                    _ => {
                        status.reject(i, RejectReason::MissingCustomerId, idx);
                        None
                    }
                })
                .collect()
        };
        sources.push((name.to_string(), s));
        out.push(ids.with_name(col::CUSTOMER_ID.into()).into_series().into());
    }

    let date_roles: &[(Role, &str, bool)] = match kind {
        TableKind::Customers => &[
            (Role::SignupDate, col::SIGNUP_DATE, false),
            (Role::EndDate, col::END_DATE, false),
        ],
        _ => &[(Role::Date, col::DATE, true)],
    };
    for &(role, canonical, required) in date_roles {
        let Some(name) = resolved.column(role) else {
            continue;
        };
        let s = source(name)?;
        let idx = sources.len();
        let dates: Series = match s.dtype() {
            DataType::Date | DataType::Datetime(_, _) => {
                if opened.csv_path.is_some() {
                    // Parsed while reading (see `read_typed_csv`).
                    date_formats.insert(name.to_string(), DateFormat::YearMonthDay.label());
                }
                // The same plausible range as text dates (parse::parse_date).
                let days = s.cast(&DataType::Date)?;
                let (low, high) = (
                    NaiveDate::from_ymd_opt(*parse::PLAUSIBLE_YEARS.start(), 1, 1),
                    NaiveDate::from_ymd_opt(*parse::PLAUSIBLE_YEARS.end(), 12, 31),
                );
                let (low, high) = (
                    days_since_epoch(low.unwrap_or_default()),
                    days_since_epoch(high.unwrap_or_default()),
                );
                let physical = days.date()?.physical();
                if physical.iter().flatten().any(|d| d < low || d > high) {
                    let kept: Int32Chunked = physical
                        .iter()
                        .enumerate()
                        .map(|(i, d)| match d {
                            Some(d) if d < low || d > high => {
                                status.reject(i, RejectReason::DateOutOfRange, idx);
                                None
                            }
                            d => d,
                        })
                        .collect();
                    kept.into_series().cast(&DataType::Date)?
                } else {
                    days
                }
            }
            _ => {
                let text = s.cast(&DataType::String)?;
                let ca = text.str()?;
                let format = match &options.date_format {
                    Some(f) => f.clone(),
                    None => {
                        let sample = whole_file_sample(opened, name, options)?;
                        let sample = match &sample {
                            Some(s) => s.str()?,
                            None => ca,
                        };
                        match detect_date_format(sample.iter().flatten().take(DETECTION_SAMPLE)) {
                            DateDetection::Format(f) => f,
                            DateDetection::Empty => DateFormat::YearMonthDay,
                            DateDetection::Ambiguous(examples) => {
                                return Err(Error::AmbiguousDateFormat {
                                    table,
                                    column: name.into(),
                                    examples,
                                });
                            }
                            DateDetection::NotDates(examples) => {
                                return Err(Error::UnrecognisedValues {
                                    table,
                                    column: name.into(),
                                    expected: "dates".into(),
                                    examples,
                                });
                            }
                        }
                    }
                };
                date_formats.insert(name.to_string(), format.label());
                let parsed = parse_par(ca, |v| match parse::parse_date(v.unwrap_or(""), &format) {
                    Ok(d) => Ok(Some(days_since_epoch(d))),
                    Err(RejectReason::MissingDate) if !required => Ok(None),
                    Err(reason) => Err(reason),
                });
                let days: Int32Chunked = parsed
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| match r {
                        Ok(v) => v,
                        Err(reason) => {
                            status.reject(i, reason, idx);
                            None
                        }
                    })
                    .collect();
                days.into_series().cast(&DataType::Date)?
            }
        };
        if required {
            // Typed inputs can hold nulls too.
            if let Ok(ca) = dates.date() {
                for (i, v) in ca.physical().iter().enumerate() {
                    if v.is_none() {
                        status.reject(i, RejectReason::MissingDate, idx);
                    }
                }
            }
        }
        sources.push((name.to_string(), s));
        out.push(dates.with_name(canonical.into()).into());
    }

    // Numbers: amount (required for transactions unless quantity × unit price), cost, acquisition cost.
    let numeric = |role: Role| -> Option<&str> { resolved.column(role) };
    let mut parse_numeric = |name: &str,
                             required: bool,
                             status: &mut RowStatus,
                             sources: &mut Vec<(String, Series)>|
     -> Result<Float64Chunked> {
        let s = source(name)?;
        let idx = sources.len();
        let values: Float64Chunked = if s.dtype().is_primitive_numeric() {
            if opened.csv_path.is_some() {
                // Parsed while reading (see `read_typed_csv`).
                decimal_separators.insert(name.to_string(), DecimalSeparator::Point);
            }
            let f = s.cast(&DataType::Float64)?;
            let ca = f.f64()?.clone();
            // Clean columns (the usual case) are used as they are, not copied.
            let clean = (!required || ca.null_count() == 0)
                && ca
                    .downcast_iter()
                    .all(|a| a.values().iter().all(|x| x.is_finite()));
            if clean {
                sources.push((name.to_string(), s));
                return Ok(ca);
            }
            ca.iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Some(x) if x.is_finite() => Some(x),
                    Some(_) => {
                        status.reject(i, RejectReason::NonFiniteAmount, idx);
                        None
                    }
                    None if required => {
                        status.reject(i, RejectReason::MissingAmount, idx);
                        None
                    }
                    None => None,
                })
                .collect()
        } else {
            let text = s.cast(&DataType::String)?;
            let ca = text.str()?;
            let decimal = match options.decimal {
                Some(d) => d,
                None => {
                    let sample = whole_file_sample(opened, name, options)?;
                    let sample = match &sample {
                        Some(s) => s.str()?,
                        None => ca,
                    };
                    detect_decimal_separator(sample.iter().flatten().take(DETECTION_SAMPLE))
                }
            };
            decimal_separators.insert(name.to_string(), decimal);
            parse_par(ca, |v| {
                let v = v.unwrap_or("");
                if required {
                    parse::parse_amount(v, decimal).map(Some)
                } else {
                    parse::parse_number(v, decimal)
                }
            })
            .into_iter()
            .enumerate()
            .map(|(i, r)| match r {
                Ok(x) => x,
                Err(reason) => {
                    status.reject(i, reason, idx);
                    None
                }
            })
            .collect()
        };
        sources.push((name.to_string(), s));
        Ok(values)
    };

    if kind == TableKind::Transactions {
        let amount = match numeric(Role::Amount) {
            Some(name) => parse_numeric(name, true, &mut status, &mut sources)?,
            None => {
                // Retail line items: amount = quantity × unit price.
                let (Some(q), Some(p)) = (numeric(Role::Quantity), numeric(Role::UnitPrice)) else {
                    return Err(Error::MissingColumn {
                        table,
                        role: "amount".into(),
                        looked_for: "an amount column, or quantity and unit price".into(),
                        columns: opened.columns.join(", "),
                    });
                };
                let q = parse_numeric(q, true, &mut status, &mut sources)?;
                let price_idx = sources.len();
                let p = parse_numeric(p, true, &mut status, &mut sources)?;
                // Two finite values can multiply to infinity (1e200 × 1e200); found by fuzzing.
                let product = &q * &p;
                product
                    .iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Some(x) if !x.is_finite() => {
                            status.reject(i, RejectReason::NonFiniteAmount, price_idx);
                            None
                        }
                        v => v,
                    })
                    .collect()
            }
        };
        let mut amount = amount;
        // UCI Online Retail marks cancellations with invoice numbers starting with "C": they are refunds.
        if let Some(order) = resolved.column(Role::OrderId) {
            let ids = source(order)?.cast(&DataType::String)?;
            let ids = ids.str()?;
            amount = amount
                .iter()
                .zip(ids.iter())
                .map(|(a, id)| match (a, id) {
                    (Some(a), Some(id)) if is_cancellation_invoice(id) => Some(-a.abs()),
                    (a, _) => a,
                })
                .collect();
        }
        // Refunds the export records on the order itself (a refunded status, a refunded-amount
        // column) come off the order's revenue; a negative row is already money given back.
        let refunded = match numeric(Role::RefundedAmount) {
            Some(name) => Some(parse_numeric(name, false, &mut status, &mut sources)?),
            None => None,
        };
        if refunded.is_some() || purchase_status.is_some() {
            let mut unknown_refund: Option<usize> = None;
            amount = (0..n)
                .map(|i| {
                    let a = amount.get(i)?;
                    if a < 0.0 {
                        return Some(a);
                    }
                    let st = purchase_status
                        .as_ref()
                        .and_then(|v| v.get(i).copied().flatten());
                    let r = refunded.as_ref().and_then(|r| r.get(i));
                    let refund = match (r, st) {
                        (Some(r), _) => r.abs(),
                        (None, Some(PurchaseStatus::Refunded)) => a,
                        (None, Some(PurchaseStatus::PartiallyRefunded)) => {
                            if !status.is_settled(i) && !status.first.contains_key(&i) {
                                unknown_refund.get_or_insert(i);
                            }
                            0.0
                        }
                        _ => 0.0,
                    };
                    Some(crate::money::exact_total([a, -refund]))
                })
                .collect();
            if let Some(i) = unknown_refund {
                let row = raw
                    .column(ROW)?
                    .get(i)
                    .ok()
                    .and_then(|v| v.extract::<u64>())
                    .unwrap_or(i as u64);
                let line = match (&opened.csv_path, opened.delimiter) {
                    (Some(p), Some(d)) => read::csv_lines(p, d, &[row]).first().copied().flatten(),
                    _ => None,
                };
                let place = match line {
                    Some(l) => format!("line {l}"),
                    None => format!("row {}", row + 1),
                };
                return Err(Error::Format {
                    path: shown.clone(),
                    message: format!(
                        "{place}: the order is partially refunded but the export does not say by how much; map the refunded-amount column with the `refunded_col` setting (--refunded-col)"
                    ),
                });
            }
        }
        out.push(amount.with_name(col::AMOUNT.into()).into_series().into());
        if let Some(name) = numeric(Role::Cost) {
            let cost = parse_numeric(name, false, &mut status, &mut sources)?;
            out.push(cost.with_name(col::COST.into()).into_series().into());
        }
    }
    if kind == TableKind::Customers
        && let Some(name) = numeric(Role::AcquisitionCost)
    {
        let cost = parse_numeric(name, false, &mut status, &mut sources)?;
        out.push(
            cost.with_name(col::ACQUISITION_COST.into())
                .into_series()
                .into(),
        );
    }

    // Scores. An unreadable answer is rejected on its own: the interaction still counts (by
    // channel, for activity), with a null score.
    let mut bad_answers: Vec<(usize, RejectReason, usize)> = Vec::new();
    for (role, canonical) in [(Role::Nps, col::NPS), (Role::Csat, col::CSAT)] {
        if kind != TableKind::Interactions {
            break;
        }
        let Some(name) = resolved.column(role) else {
            continue;
        };
        let s = source(name)?;
        let idx = sources.len();
        let text = s.cast(&DataType::String)?;
        let scores: Int32Chunked = text
            .str()?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let v = v.unwrap_or("");
                let parsed = if role == Role::Nps {
                    parse::parse_nps(v)
                } else {
                    parse::parse_csat(v, options.csat_scale)
                };
                match parsed {
                    Ok(x) => x.map(i32::from),
                    Err(reason) => {
                        bad_answers.push((i, reason, idx));
                        None
                    }
                }
            })
            .collect();
        sources.push((name.to_string(), s));
        out.push(scores.with_name(canonical.into()).into_series().into());
    }

    // Text roles and dimensions, kept as trimmed strings (blank = null).
    let mut text_roles = vec![];
    match kind {
        TableKind::Transactions => {
            text_roles.push((Role::OrderId, col::ORDER_ID));
            if options.read_dimensions.is_none() {
                text_roles.push((Role::Currency, col::CURRENCY));
            }
        }
        TableKind::Interactions => {
            text_roles.push((Role::Channel, col::CHANNEL));
            text_roles.push((Role::Kind, col::KIND));
        }
        TableKind::Customers => {}
    }
    let mut text_columns: Vec<(String, String)> = text_roles
        .into_iter()
        .filter_map(|(role, canonical)| {
            resolved
                .column(role)
                .map(|n| (n.to_string(), canonical.to_string()))
        })
        .collect();
    // A dimension may not shadow a canonical column of this table.
    let reserved: &[&str] = match kind {
        TableKind::Transactions => &[
            col::CUSTOMER_ID,
            col::DATE,
            col::AMOUNT,
            col::ORDER_ID,
            col::COST,
            col::CURRENCY,
        ],
        TableKind::Interactions => &[
            col::CUSTOMER_ID,
            col::DATE,
            col::CHANNEL,
            col::KIND,
            col::NPS,
            col::CSAT,
        ],
        TableKind::Customers => &[
            col::CUSTOMER_ID,
            col::SIGNUP_DATE,
            col::END_DATE,
            col::ACQUISITION_COST,
        ],
    };
    let mut dimensions = Vec::new();
    for d in &resolved.dimensions {
        let name = if reserved.contains(&d.as_str()) {
            format!("{d}_dim")
        } else {
            d.clone()
        };
        dimensions.push(name.clone());
        if read_dimension(d) {
            text_columns.push((d.clone(), name));
        }
    }
    // Whether the order ids are already trimmed (then their distinctness below holds as loaded).
    let mut order_ids_clean = false;
    for (name, canonical) in &text_columns {
        let s = source(name)?.cast(&DataType::String)?;
        let clean = is_clean_text(s.str()?, true);
        if canonical == col::ORDER_ID {
            order_ids_clean = clean && s.null_count() == 0;
        }
        let ca: StringChunked = if clean {
            s.str()?.clone()
        } else {
            s.str()?
                .iter()
                .map(|v| {
                    v.map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string)
                })
                .collect()
        };
        out.push(ca.with_name(canonical.as_str().into()).into_series().into());
    }

    // Exact repeats of a row of the same order (overlapping monthly exports) are duplicates.
    let order_ids_unique = match resolved.column(Role::OrderId) {
        Some(order) => all_distinct(&raw, order)?,
        None => true,
    };
    if kind == TableKind::Transactions && !order_ids_unique {
        // Every column counts, read or not: two lines of one order may differ only in a
        // dimension (the product), and are then not repeats.
        let mut unread: Vec<String> = resolved.roles.values().cloned().collect();
        unread.extend(resolved.dimensions.iter().cloned());
        unread.retain(|c| !wanted.contains(c));
        unread.sort();
        unread.dedup();
        let extra = if unread.is_empty() {
            DataFrame::empty()
        } else {
            opened
                .frame
                .clone()
                .select(unread.iter().map(|c| col(c.as_str())).collect::<Vec<_>>())
                .collect()?
        };
        let cols: Vec<StringChunked> = wanted
            .iter()
            .map(|n| source(n))
            .chain(
                unread
                    .iter()
                    .map(|n| Ok(extra.column(n)?.as_materialized_series().clone())),
            )
            .map(|s| -> Result<StringChunked> { Ok(s?.cast(&DataType::String)?.str()?.clone()) })
            .collect::<Result<_>>()?;
        let mut seen = HashSet::with_capacity(n);
        let mut iters: Vec<_> = cols.iter().map(|c| c.iter()).collect();
        for i in 0..n {
            let (mut h1, mut h2) = (
                std::hash::DefaultHasher::new(),
                std::hash::DefaultHasher::new(),
            );
            1u8.hash(&mut h2);
            for it in iters.iter_mut() {
                let v = it.next().flatten();
                v.hash(&mut h1);
                v.hash(&mut h2);
            }
            let key = (h1.finish(), h2.finish());
            if !seen.insert(key) {
                status.reject(i, RejectReason::DuplicateRow, usize::MAX);
            }
        }
    }

    // Split used and rejected rows.
    let frame = DataFrame::new_infer_height(out)?;
    // Filtering copies every column: only when something was rejected.
    let frame = if status.is_clean() {
        frame
    } else {
        frame.filter(&status.keep_mask(n))?
    };
    let row_ids = raw.column(ROW)?;
    let row_id = |i: usize| -> u64 {
        row_ids
            .get(i)
            .ok()
            .and_then(|v| v.extract::<u64>())
            .unwrap_or(i as u64)
    };
    let mut rejections = Vec::new();
    let mut rows = Vec::new();
    for (&i, (reason, idx)) in &status.first {
        let row = row_id(i);
        let (column, value) = match sources.get(*idx) {
            Some((name, s)) => (
                name.clone(),
                s.get(i).map(|v| any_to_string(&v)).unwrap_or_default(),
            ),
            None => ("(row)".to_string(), String::new()),
        };
        rows.push(row);
        rejections.push(Rejection {
            file: opened.display.clone(),
            line: None,
            row: row + 1,
            column,
            value,
            reason: *reason,
        });
    }
    if let (Some(path), Some(delim)) = (&opened.csv_path, opened.delimiter) {
        for (r, line) in rejections
            .iter_mut()
            .zip(read::csv_lines(path, delim, &rows))
        {
            r.line = line;
        }
    }
    let answer_rejections = answer_rejections(opened, &status, bad_answers, &sources, row_id);
    let report = FileReport {
        file: opened.display.clone(),
        format: opened.format,
        delimiter: opened.delimiter.map(|d| match d {
            b'\t' => "\\t".to_string(),
            other => (other as char).to_string(),
        }),
        columns: ResolvedColumns {
            roles: resolved.roles.clone(),
            dimensions,
            alternatives: resolved.alternatives.clone(),
        },
        date_formats,
        decimal_separators,
        rows: n as u64 - status.count(Settled::Blank),
        encoding: opened.encoding,
        excluded: status.settled.values().fold(BTreeMap::new(), |mut m, s| {
            if let Settled::Excluded(reason) = s {
                *m.entry(reason.key().to_string()).or_default() += 1;
            }
            m
        }),
        continuation_rows: status.count(Settled::Continuation),
        blank_lines: status.count(Settled::Blank),
        sheet: opened.sheet.clone(),
    };
    let kept_rows = if track_rows
        && kind == TableKind::Transactions
        && resolved.column(Role::OrderId).is_some()
    {
        let keep = status.keep_mask(n);
        Some(
            (0..n)
                .filter(|&i| keep.get(i).unwrap_or(false))
                .map(row_id)
                .collect(),
        )
    } else {
        None
    };
    let order_ids_distinct =
        resolved.column(Role::OrderId).is_some() && order_ids_unique && order_ids_clean;
    let dropped_rows = if status.is_clean() {
        Vec::new()
    } else {
        let keep = status.keep_mask(n);
        (0..n)
            .filter(|&i| !keep.get(i).unwrap_or(true))
            .map(row_id)
            .collect()
    };
    Ok(ParsedFile {
        frame,
        rejections,
        answer_rejections,
        report,
        kept_rows,
        order_ids_distinct,
        dropped_rows,
    })
}

/// Settles rows with no value in any column (blank lines, or rows of empty fields that Excel
/// leaves at the end of a sheet): they are not rows. The loaded columns are checked first
/// (cheap: a column without nulls rules every row out); candidates are confirmed against the
/// file's other columns.
fn settle_blank_rows(
    opened: &OpenedFile,
    raw: &DataFrame,
    wanted: &[String],
    status: &mut RowStatus,
) -> Result<()> {
    let columns: Vec<&Column> = wanted.iter().filter_map(|w| raw.column(w).ok()).collect();
    if columns.is_empty() || columns.iter().any(|c| c.null_count() == 0) {
        return Ok(());
    }
    let mut candidates: Vec<usize> = (0..raw.height())
        .filter(|&i| columns.iter().all(|c| c.get(i).is_ok_and(|v| v.is_null())))
        .collect();
    if candidates.is_empty() {
        return Ok(());
    }
    let others: Vec<Expr> = opened
        .columns
        .iter()
        .filter(|c| !wanted.contains(c) && !opened.unreadable.iter().any(|(u, _)| u == *c))
        .map(|c| col(c.as_str()))
        .collect();
    if !others.is_empty() {
        let rows: Vec<u64> = candidates
            .iter()
            .filter_map(|&i| raw.column(ROW).ok()?.get(i).ok()?.extract::<u64>())
            .collect();
        let mut select = vec![col(ROW)];
        select.extend(others);
        let extra = opened
            .frame
            .clone()
            .filter(col(ROW).is_in(lit(Series::new("rows".into(), rows)).implode(false), false))
            .select(select)
            .collect()?;
        let blank_rows: HashSet<u64> = (0..extra.height())
            .filter(|&k| {
                extra
                    .columns()
                    .iter()
                    .filter(|c| c.name().as_str() != ROW)
                    .all(|c| c.get(k).is_ok_and(|v| is_blank_value(&v)))
            })
            .filter_map(|k| extra.column(ROW).ok()?.get(k).ok()?.extract::<u64>())
            .collect();
        candidates.retain(|&i| {
            raw.column(ROW)
                .ok()
                .and_then(|c| c.get(i).ok()?.extract::<u64>())
                .is_some_and(|r| blank_rows.contains(&r))
        });
    }
    for i in candidates {
        status.settle(i, Settled::Blank);
    }
    Ok(())
}

fn is_blank_value(v: &AnyValue<'_>) -> bool {
    match v {
        AnyValue::Null => true,
        AnyValue::String(s) => s.trim().is_empty(),
        AnyValue::StringOwned(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// Settles the summary block CRM report exports end with (Salesforce: a blank line, then
/// `Grand Totals (42 records)`, `Confidential Information - Do Not Distribute`, `Copyright (c)
/// ...`, `Generated By: ...`): rows after the file's last blank line when each of them holds a
/// single value, or starts with "total" / "grand total". Found in the file's text, so that every
/// partition of a file agrees; CSV only.
fn settle_footer(
    opened: &OpenedFile,
    raw: &DataFrame,
    options: &LoadOptions,
    status: &mut RowStatus,
) -> Result<()> {
    let (Some(path), Some(delimiter)) = (&opened.csv_path, opened.delimiter) else {
        return Ok(());
    };
    let Some(footer_rows) = read::footer_rows(path, delimiter) else {
        return Ok(());
    };
    // Data rows in the whole file (not only this partition): the footer is its last rows.
    let total = if options.partition.is_none_or(|p| p.count <= 1) {
        raw.height() as u64
    } else {
        let counted = opened.frame.clone().select([len()]).collect()?;
        counted
            .column("len")?
            .get(0)
            .ok()
            .and_then(|v| v.extract::<u64>())
            .unwrap_or_default()
    };
    let first_footer = total.saturating_sub(footer_rows);
    let rows = raw.column(ROW)?;
    for i in 0..raw.height() {
        if rows
            .get(i)
            .ok()
            .and_then(|v| v.extract::<u64>())
            .is_some_and(|r| r >= first_footer)
        {
            status.settle(i, Settled::Excluded(ExcludeReason::ReportFooter));
        }
    }
    Ok(())
}

/// Settles the line-item rows of exports that write an order's fields on its first row only
/// (Shopify: `Total`, `Financial Status`, `Paid at` blank on the order's other lines): a row with
/// an order id, a blank amount, and no other customer than the order's is a line of an order
/// whose amount is given on another row of the file. It is used as part of that order.
fn settle_continuations(
    raw: &DataFrame,
    resolved: &ResolvedColumns,
    status: &mut RowStatus,
) -> Result<()> {
    let (Some(order), Some(amount)) = (
        resolved.column(Role::OrderId),
        resolved.column(Role::Amount),
    ) else {
        return Ok(());
    };
    let amounts = raw.column(amount)?;
    // Typed amounts (parsed while reading) are blank only where null: no text to look at.
    if amounts.dtype() != &DataType::String && amounts.null_count() == 0 {
        return Ok(());
    }
    let amounts = amounts.cast(&DataType::String)?;
    let amounts = amounts.str()?;
    let blank = |v: Option<&str>| v.is_none_or(|t| t.trim().is_empty());
    if !amounts.iter().any(blank) {
        return Ok(());
    }
    let orders = raw.column(order)?.cast(&DataType::String)?;
    let orders = orders.str()?;
    let customers = match resolved.column(Role::CustomerId) {
        Some(c) => Some(raw.column(c)?.cast(&DataType::String)?),
        None => None,
    };
    let customers = customers.as_ref().map(|c| c.str()).transpose()?;
    let customer = |i: usize| -> Option<&str> {
        customers
            .and_then(|c| c.get(i))
            .map(str::trim)
            .filter(|t| !t.is_empty())
    };
    // Orders whose amount is given, with their customer.
    let mut given: PlHashMap<&str, Option<&str>> = PlHashMap::new();
    for (i, (o, a)) in orders.iter().zip(amounts.iter()).enumerate() {
        if let Some(o) = o.map(str::trim).filter(|o| !o.is_empty())
            && !blank(a)
        {
            given.entry(o).or_insert_with(|| customer(i));
        }
    }
    for (i, (o, a)) in orders.iter().zip(amounts.iter()).enumerate() {
        if !blank(a) || status.is_settled(i) {
            continue;
        }
        let Some(o) = o.map(str::trim).filter(|o| !o.is_empty()) else {
            continue;
        };
        if let Some(owner) = given.get(o)
            && (customer(i).is_none() || customer(i) == *owner)
        {
            status.settle(i, Settled::Continuation);
        }
    }
    Ok(())
}

/// The purchase status of each row, settling excluded statuses (failed, voided, pending, test)
/// and rejecting blank ones. `Err` lists status values with no known meaning (up to 10).
fn purchase_statuses(
    column: &Series,
    status: &mut RowStatus,
    idx: usize,
    options: &LoadOptions,
) -> std::result::Result<Vec<Option<PurchaseStatus>>, Vec<String>> {
    let text = column
        .cast(&DataType::String)
        .map_err(|e| vec![e.to_string()])?;
    let ca = text.str().map_err(|e| vec![e.to_string()])?;
    let map = StatusMap::new(&options.statuses);
    let mut known: PlHashMap<&str, Option<PurchaseStatus>> = PlHashMap::new();
    let mut unknown: Vec<String> = Vec::new();
    let mut out = Vec::with_capacity(ca.len());
    for (i, v) in ca.iter().enumerate() {
        if status.is_settled(i) {
            out.push(None);
            continue;
        }
        let Some(v) = v.map(str::trim).filter(|t| !t.is_empty()) else {
            status.reject(i, RejectReason::MissingStatus, idx);
            out.push(None);
            continue;
        };
        let meaning = *known.entry(v).or_insert_with(|| map.get(v));
        match meaning {
            Some(st) => {
                if let Some(reason) = st.exclusion() {
                    status.settle(i, Settled::Excluded(reason));
                }
                out.push(Some(st));
            }
            None => {
                if unknown.len() < 10 && !unknown.iter().any(|u| u == v) {
                    unknown.push(v.to_string());
                }
                out.push(None);
            }
        }
    }
    if unknown.is_empty() {
        Ok(out)
    } else {
        Err(unknown)
    }
}

/// The rejections of the answers in `bad` (row, reason, index into `sources`) whose rows are
/// used, located like row rejections, in file order. An answer of a row rejected for another
/// reason is left out: the row's rejection already lists it.
fn answer_rejections(
    opened: &OpenedFile,
    status: &RowStatus,
    mut bad: Vec<(usize, RejectReason, usize)>,
    sources: &[(String, Series)],
    row_id: impl Fn(usize) -> u64,
) -> Vec<Rejection> {
    bad.retain(|(i, _, _)| !status.first.contains_key(i) && !status.is_settled(*i));
    bad.sort_by_key(|&(i, _, idx)| (i, idx));
    let mut out: Vec<Rejection> = bad
        .iter()
        .map(|&(i, reason, idx)| {
            let (column, value) = match sources.get(idx) {
                Some((name, s)) => (
                    name.clone(),
                    s.get(i).map(|v| any_to_string(&v)).unwrap_or_default(),
                ),
                None => ("(row)".to_string(), String::new()),
            };
            Rejection {
                file: opened.display.clone(),
                line: None,
                row: row_id(i) + 1,
                column,
                value,
                reason,
            }
        })
        .collect();
    if let (Some(path), Some(delim)) = (&opened.csv_path, opened.delimiter) {
        let rows: Vec<u64> = out.iter().map(|r| r.row - 1).collect();
        for (r, line) in out.iter_mut().zip(read::csv_lines(path, delim, &rows)) {
            r.line = line;
        }
    }
    out
}

/// The first non-blank values (as text) among the first rows of some columns, for the column
/// detections that need values (see [`resolve_columns_with`]). From the whole file, so that
/// every partition detects the same columns.
fn head_values(opened: &OpenedFile, names: &[String]) -> Result<BTreeMap<String, Vec<String>>> {
    const ROWS: IdxSize = 1000;
    // Columns of types polars cannot decode (decimal256 in IPC) are never selected.
    let names: Vec<&String> = names
        .iter()
        .filter(|n| !opened.unreadable.iter().any(|(u, _)| u == *n))
        .collect();
    let head = opened
        .frame
        .clone()
        .select(names.iter().map(|n| col(n.as_str())).collect::<Vec<_>>())
        .limit(ROWS)
        .collect()?;
    let mut out = BTreeMap::new();
    for n in names {
        // A column that has no text form (nested Parquet types) has no values to judge by.
        let Ok(text) = head.column(n)?.cast(&DataType::String) else {
            continue;
        };
        let values: Vec<String> = text
            .str()?
            .iter()
            .flatten()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect();
        out.insert(n.clone(), values);
    }
    Ok(out)
}

/// Reads a clean CSV export with its dates and amount parsed by polars' reader, which is several
/// times cheaper than reading them as text and parsing them here (on 10M rows, seconds and
/// gigabytes of strings). Taken only when a sample of the file shows ISO dates and plain
/// amounts, and only when every value then parses: any value polars cannot parse, or that it
/// parses to infinity or NaN, returns `None` and the file is read as text, so the rows used and
/// every rejection are the same either way.
fn read_typed_csv(
    kind: TableKind,
    opened: &OpenedFile,
    resolved: &ResolvedColumns,
    select: &[Expr],
    options: &LoadOptions,
) -> Option<DataFrame> {
    opened.csv_path.as_ref()?;
    let date_roles: &[Role] = match kind {
        TableKind::Customers => &[Role::SignupDate, Role::EndDate],
        _ => &[Role::Date],
    };
    let dates: Vec<&str> = match &options.date_format {
        None | Some(DateFormat::YearMonthDay) => date_roles
            .iter()
            .filter_map(|r| resolved.column(*r))
            .collect(),
        Some(_) => vec![],
    };
    let amounts: Vec<&str> = match (kind, options.decimal) {
        (TableKind::Transactions, None | Some(DecimalSeparator::Point)) => {
            resolved.column(Role::Amount).into_iter().collect()
        }
        _ => vec![],
    };
    if dates.is_empty() && amounts.is_empty() {
        return None;
    }
    let sample = opened
        .frame
        .clone()
        .select(
            dates
                .iter()
                .chain(&amounts)
                .map(|c| col(*c))
                .collect::<Vec<_>>(),
        )
        .limit(2000)
        .collect()
        .ok()?;
    let all_match = |name: &str, ok: fn(&str) -> bool| -> bool {
        sample
            .column(name)
            .ok()
            .and_then(|c| c.str().ok().map(|ca| ca.iter().flatten().all(ok)))
            .unwrap_or(false)
    };
    if !dates.iter().all(|d| all_match(d, is_iso_date))
        || !amounts.iter().all(|a| all_match(a, parse::is_plain_number))
    {
        return None;
    }
    let types: Vec<(String, DataType)> = dates
        .iter()
        .map(|d| (d.to_string(), DataType::Date))
        .chain(amounts.iter().map(|a| (a.to_string(), DataType::Float64)))
        .collect();
    let frame = in_partition(opened.typed_csv_scan(&types)?, resolved, options)
        .select(select)
        .collect_with_engine(Engine::Streaming)
        .ok()?
        .unwrap_single();
    let finite = amounts.iter().all(|a| {
        frame
            .column(a)
            .ok()
            .and_then(|c| {
                c.f64()
                    .ok()
                    .map(|ca| ca.iter().flatten().all(f64::is_finite))
            })
            .unwrap_or(false)
    });
    finite.then_some(frame)
}

/// Values a column's date format or decimal separator is detected from: its first non-null
/// values in the file.
const DETECTION_SAMPLE: usize = 5000;

/// When a partition is read, the column's first [`DETECTION_SAMPLE`] non-null values in the
/// whole file (as text), so that every partition detects what loading the file whole would;
/// `None` otherwise (the loaded column itself is the sample). The read stops after the sample.
fn whole_file_sample(
    opened: &OpenedFile,
    name: &str,
    options: &LoadOptions,
) -> Result<Option<Series>> {
    if options.partition.is_none_or(|p| p.count <= 1) {
        return Ok(None);
    }
    let sample = opened
        .frame
        .clone()
        .select([col(name).cast(DataType::String)])
        .filter(col(name).is_not_null())
        .limit(DETECTION_SAMPLE as IdxSize)
        .collect()?;
    Ok(Some(sample.column(name)?.as_materialized_series().clone()))
}

/// The rows of `options.partition`, when one is set (rows whose customer-id column is absent
/// fail later with the usual missing-column error, so they are not filtered here).
fn in_partition(lf: LazyFrame, resolved: &ResolvedColumns, options: &LoadOptions) -> LazyFrame {
    match (options.partition, resolved.column(Role::CustomerId)) {
        (Some(p), Some(id)) if p.count > 1 => lf.filter(p.filter(col(id))),
        _ => lf,
    }
}

/// `YYYY-MM-DD` exactly.
fn is_iso_date(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// Parses a text column in parallel: fixed slices of the column are parsed by rayon tasks and
/// concatenated in order, so the result (and every rejection) is the same as a sequential pass.
fn parse_par<T: Send>(
    ca: &StringChunked,
    f: impl Fn(Option<&str>) -> std::result::Result<Option<T>, RejectReason> + Sync,
) -> Vec<std::result::Result<Option<T>, RejectReason>> {
    use rayon::prelude::*;
    let n = ca.len();
    let chunk = 1 << 16;
    let parts: Vec<Vec<_>> = (0..n.div_ceil(chunk))
        .into_par_iter()
        .map(|i| ca.slice((i * chunk) as i64, chunk).iter().map(&f).collect())
        .collect();
    parts.into_iter().flatten().collect()
}

/// Whether every value of a text column is present and already trimmed, so that the column can
/// be used as it is (no copy of millions of strings).
fn is_clean_text(ca: &StringChunked, allow_null: bool) -> bool {
    ca.iter().all(|v| match v {
        Some(s) => !s.is_empty() && s.trim().len() == s.len(),
        None => allow_null,
    })
}

fn is_cancellation_invoice(id: &str) -> bool {
    let mut chars = id.trim().chars();
    chars.next() == Some('C') && chars.next().is_some_and(|c| c.is_ascii_digit())
}

fn any_to_string(v: &AnyValue<'_>) -> String {
    match v {
        AnyValue::Null => String::new(),
        AnyValue::String(s) => (*s).to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_map_to_file_rows_past_the_rejected_ones() {
        // File rows 0, 1 and 3 were rejected: the table holds file rows 2, 4, 5, 6.
        let span = FileSpan {
            display: "f.csv".into(),
            csv: None,
            height: 4,
            rejected_rows: vec![0, 1, 3],
            id_column: "id".into(),
        };
        assert_eq!(span.file_rows([0, 1, 2, 3]), [2, 4, 5, 6]);
        assert_eq!(span.file_rows([1, 3]), [4, 6]);
        let clean = FileSpan {
            rejected_rows: vec![],
            ..span
        };
        assert_eq!(clean.file_rows([0, 2]), [0, 2]);
    }
}
