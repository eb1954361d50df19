//! Loading a table: open its files, map columns to roles, parse values, account for every row.
//!
//! The result is a canonical [`Table`]: fixed column names (see [`col`](mod@col)), typed values,
//! one row per order for transactions, plus the segment dimensions, and an [`Accounting`] that
//! says where every input row went. The steps live beside this file: `io/columns.rs` parses one
//! file, `io/clean.rs` settles and merges rows, [`super::table`] holds the result.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::Serialize;

use super::clean::{
    FileSpan, all_distinct, drop_lines_seen_before, exclude_refunds_without_purchase, line_keys,
    merge_order_lines, reject_repeated_customers,
};
use super::columns::parse_file;
use super::parse::{DateFormat, DecimalSeparator, RejectReason};
use super::read::{self, InputPath};
use super::schema::{ColumnMapping, Role, TableKind, col};
use super::status::{ExcludeReason, PurchaseStatus};
pub use super::table::{Accounting, FileReport, Rejection, Table, reason_counts};
use crate::Result;

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
    /// in the list, and the currency only when the list names it (`currency`, its canonical
    /// name: a segment like the dimensions). Metrics need only their
    /// `by` dimensions, and every text column left unread saves parsing and holding millions of
    /// strings (on 10M rows, each costs about a second and 200 MB). The skipped dimensions are
    /// still listed in [`Table::dimensions`] and the file report.
    pub read_dimensions: Option<Vec<String>>,
    /// Read only the rows of one customer partition (see [`Partition`]); `None` reads all rows.
    pub partition: Option<Partition>,
    /// Status values beyond the built-in list, or overriding it (`"in progress"` → pending);
    /// matched after lowercasing and dropping punctuation.
    pub statuses: BTreeMap<String, PurchaseStatus>,
    /// What a summary store already holds of this table, for a load that adds to it: order
    /// lines it has are rejected as repeated (as a line repeated in a later file is), and
    /// refunds of customers who bought in it are kept.
    #[serde(skip)]
    pub prior: Option<std::sync::Arc<PriorRows>>,
    /// Return the key of every order line read ([`Table::line_keys`]), for a summary store.
    #[serde(skip)]
    pub keep_line_keys: bool,
    /// Read the dimension columns (and the currency) of Parquet and Arrow IPC files as polars
    /// `Categorical`s, cast as each batch of rows is read, for a reader that codes them anyway
    /// (a summary store): a text column holds a 16-byte view per row (480 MB for three
    /// columns at 10M rows, all of it fresh memory), a categorical 4 bytes. Other inputs, and
    /// columns that are not text in the file, are read as before.
    #[serde(skip)]
    pub dimensions_as_categories: bool,
}

/// What a summary store already holds of a transactions table (see [`LoadOptions::prior`]).
#[derive(Debug, Clone)]
pub struct PriorRows {
    /// Keys of the order lines held ([`Table::line_keys`]), sorted: walked where they are (a
    /// store's files), so that an update holds no list of every line the store has.
    lines: std::sync::Arc<dyn SortedKeys<u128>>,
    /// The store's customer ids by code, and whether each bought: looked up only for the few
    /// customers an update's refunds need, in one pass (no table of every stored customer).
    customers: StringChunked,
    bought: Vec<bool>,
}

impl Default for PriorRows {
    fn default() -> Self {
        PriorRows::new(
            std::sync::Arc::new(Vec::<Vec<u128>>::new()),
            StringChunked::default(),
            Vec::new(),
        )
    }
}

/// The same store's rows: the same line keys (by identity: they may be files), customers and
/// purchases.
impl PartialEq for PriorRows {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::addr_eq(
            std::sync::Arc::as_ptr(&self.lines),
            std::sync::Arc::as_ptr(&other.lines),
        ) && self.bought == other.bought
            && self.customers.len() == other.customers.len()
            && self
                .customers
                .iter()
                .zip(other.customers.iter())
                .all(|(a, b)| a == b)
    }
}

impl Eq for PriorRows {}

impl PriorRows {
    /// The store's line keys, its customer ids by code and which bought.
    pub fn new(
        lines: std::sync::Arc<dyn SortedKeys<u128>>,
        customers: StringChunked,
        bought: Vec<bool>,
    ) -> PriorRows {
        PriorRows {
            lines,
            customers,
            bought,
        }
    }

    /// Those of `ids` who bought in the store.
    pub(crate) fn purchasers_among<'a>(&self, ids: &PlHashSet<&'a str>) -> PlHashSet<&'a str> {
        use rayon::prelude::*;
        if ids.is_empty() {
            return PlHashSet::default();
        }
        // In slices on every core: one core looking up the store's every id was ~0.1 s of a
        // monthly update at 2.6M customers.
        const SLICE: usize = 1 << 16;
        (0..self.customers.len().div_ceil(SLICE))
            .into_par_iter()
            .flat_map_iter(|s| {
                let customers = self.customers.slice((s * SLICE) as i64, SLICE);
                let bought = self.bought.get(s * SLICE..).unwrap_or(&[]);
                let found: Vec<&'a str> = customers
                    .iter()
                    .zip(bought)
                    .filter_map(|(id, &bought)| ids.get(id.filter(|_| bought)?).copied())
                    .collect();
                found
            })
            .collect()
    }

    /// Those of `keys` whose order lines the store holds.
    ///
    /// # Errors
    /// The store's keys could not be read, or are not sorted.
    pub(crate) fn lines_held(&self, keys: &[u128]) -> crate::Result<PlHashSet<u128>> {
        let wanted = sorted_unique(keys.iter().copied());
        Ok(self.lines.held(&wanted)?.into_iter().collect())
    }

    fn has_lines(&self) -> bool {
        !self.lines.is_empty()
    }
}

/// Sorted lists of keys, asked which of some keys they hold: a summary store's key files,
/// walked a few row groups at a time, or lists in memory.
pub trait SortedKeys<T>: Send + Sync + std::fmt::Debug {
    /// Those of `wanted` (sorted, without repeats) that the lists hold, in any order.
    ///
    /// # Errors
    /// The lists could not be read, or one is not sorted.
    fn held(&self, wanted: &[T]) -> crate::Result<Vec<T>>;

    /// Whether the lists hold no key.
    fn is_empty(&self) -> bool;
}

impl<T: Ord + Copy + Send + Sync + std::fmt::Debug> SortedKeys<T> for Vec<Vec<T>> {
    fn held(&self, wanted: &[T]) -> crate::Result<Vec<T>> {
        Ok(held_in_lists(wanted, self, 1 << 18))
    }

    fn is_empty(&self) -> bool {
        self.iter().all(Vec::is_empty)
    }
}

/// Hash keys sorted, without repeats ([`par_bucket_sort`] by their top 12 bits; `bucket` gives
/// their top 16).
pub(crate) fn sort_hashes<T>(keys: &mut Vec<T>, bucket: impl Fn(&T) -> u16 + Sync)
where
    T: Ord + Copy + Default + Send + Sync,
{
    // A loaded table's line keys come sorted already, and a summary store sorts them again
    // with the run's other tables' keys.
    if keys.windows(2).all(|w| w.first() < w.last()) {
        return;
    }
    let all = std::mem::take(keys);
    *keys = par_bucket_sort(all, 1 << 12, |k| usize::from(bucket(k) >> 4), true);
}

/// `len` copies of `value`, written on every core. `vec![value; len]` writes (or, for zeros,
/// has the allocator clear) every page on one core, and the first touch of fresh pages is
/// most of the cost of a large buffer.
pub(crate) fn par_filled<T: Copy + Send + Sync>(value: T, len: usize) -> Vec<T> {
    use rayon::prelude::*;
    let mut out = Vec::new();
    (0..len)
        .into_par_iter()
        .map(|_| value)
        .collect_into_vec(&mut out);
    out
}

/// The distinct values of `values` as a set: deduplicated by a parallel sort, then the set
/// built at its size (growing a set one value at a time, repeats included, ran on one core).
pub(crate) fn distinct_set<T: Ord + std::hash::Hash + Send>(mut values: Vec<T>) -> PlHashSet<T> {
    use rayon::prelude::*;
    values.par_sort_unstable();
    values.dedup();
    let mut set = PlHashSet::with_capacity(values.len());
    set.extend(values);
    set
}

/// `keys` sorted (and without repeats when `dedup`), on every core. `bucket` must order the
/// keys coarsely (every key of bucket `b` below every key of bucket `b + 1`, all in
/// `0..buckets`): a few slices per core count their keys of each bucket, which places every
/// (bucket, slice) pair's keys in the result; each slice then writes its keys to its places,
/// and each bucket (a few thousand keys) is sorted where it lies. Hashes and customer codes
/// spread evenly over their buckets.
///
/// It replaced a counting sort into 2^16 buckets whose counting, scattering and deduplicating
/// ran on one core (~0.3 s for each of a 10M-row summarize's three key sorts), and before that
/// a comparison sort of the whole.
pub(crate) fn par_bucket_sort<T>(
    keys: Vec<T>,
    buckets: usize,
    bucket: impl Fn(&T) -> usize + Sync,
    dedup: bool,
) -> Vec<T>
where
    T: Ord + Copy + Default + Send + Sync,
{
    par_bucket_sort_of(keys.len(), |i| keys.get(i).copied(), buckets, bucket, dedup)
}

/// [`par_bucket_sort`] of the keys `key(i)` gives for `i` in `0..len` (`None`: no key), each
/// computed where it is counted and again where it is placed, so that the keys are never held
/// unsorted: a 10M-row summarize's (customer, day) keys are 160 MB, which a sorted copy
/// doubled at its peak.
pub(crate) fn par_bucket_sort_of<T>(
    len: usize,
    key: impl Fn(usize) -> Option<T> + Sync,
    buckets: usize,
    bucket: impl Fn(&T) -> usize + Sync,
    dedup: bool,
) -> Vec<T>
where
    T: Ord + Copy + Default + Send + Sync,
{
    use rayon::prelude::*;
    let buckets = buckets.max(1);
    let bucket = |k: &T| bucket(k).min(buckets - 1);
    if len < 1 << 16 {
        let mut keys: Vec<T> = (0..len).filter_map(&key).collect();
        keys.par_sort_unstable();
        if dedup {
            keys.dedup();
        }
        return keys;
    }
    let slice = len.div_ceil(rayon::current_num_threads() * 4);
    let slices: Vec<std::ops::Range<usize>> = (0..len)
        .step_by(slice)
        .map(|from| from..(from + slice).min(len))
        .collect();
    let counts: Vec<Vec<usize>> = slices
        .par_iter()
        .map(|rows| {
            let mut counts = vec![0usize; buckets];
            for k in rows.clone().filter_map(&key) {
                if let Some(c) = counts.get_mut(bucket(&k)) {
                    *c += 1;
                }
            }
            counts
        })
        .collect();
    let total = counts.iter().flatten().sum();
    let mut out = par_filled(T::default(), total);
    // `out` cut into the buckets, in order, and each bucket into a part per slice.
    let mut places: Vec<Vec<&mut [T]>> =
        counts.iter().map(|_| Vec::with_capacity(buckets)).collect();
    let mut sizes = vec![0usize; buckets];
    let mut rest = out.as_mut_slice();
    for (b, size) in sizes.iter_mut().enumerate() {
        for (counts, places) in counts.iter().zip(places.iter_mut()) {
            let n = counts.get(b).copied().unwrap_or_default();
            let (place, tail) = rest.split_at_mut(n.min(rest.len()));
            places.push(place);
            rest = tail;
            *size += n;
        }
    }
    slices
        .into_par_iter()
        .zip(places)
        .for_each(|(rows, mut places)| {
            let mut filled = vec![0usize; buckets];
            for k in rows.filter_map(&key) {
                let b = bucket(&k);
                if let (Some(place), Some(f)) = (places.get_mut(b), filled.get_mut(b))
                    && let Some(cell) = place.get_mut(*f)
                {
                    *cell = k;
                    *f += 1;
                }
            }
        });
    let mut ranges = Vec::with_capacity(buckets);
    let mut rest = out.as_mut_slice();
    for size in sizes {
        let (range, tail) = rest.split_at_mut(size.min(rest.len()));
        ranges.push(range);
        rest = tail;
    }
    ranges.into_par_iter().for_each(|r| r.sort_unstable());
    if dedup {
        out.dedup();
    }
    out
}

/// Keys sorted, without repeats: what [`held_in_run`] looks up.
pub(crate) fn sorted_unique<T: Ord + Send>(keys: impl Iterator<Item = T>) -> Vec<T> {
    use rayon::prelude::*;
    let mut keys: Vec<T> = keys.collect();
    keys.par_sort_unstable();
    keys.dedup();
    keys
}

/// The values of `wanted` (sorted, without repeats) that one of the sorted `lists` holds:
/// [`held_in_run`] along each list in slices of `slice` values, on every core, each slice
/// against the wanted values within its first and last. An update checks its new keys against
/// every key of the store (millions); the walk reads them in order, where a binary search per
/// new key was random reads of them and most of an update's time.
fn held_in_lists<T: Ord + Copy + Send + Sync>(
    wanted: &[T],
    lists: &[Vec<T>],
    slice: usize,
) -> Vec<T> {
    use rayon::prelude::*;
    lists
        .par_iter()
        .flat_map(|list| list.par_chunks(slice.max(1)))
        .flat_map_iter(|part| held_in_run(wanted, part.len(), |i| part.get(i).copied()))
        .collect()
}

/// Those of `wanted` (sorted, without repeats) among the `len` sorted values `at(0..len)`,
/// found by one merge walk over the wanted values between the first and the last of them.
/// `at` lets the values stay where they are (a store's keys are two columns of a Parquet
/// file read back: a key is built from both as it is compared); `None` ends the values.
pub(crate) fn held_in_run<T: Ord + Copy>(
    wanted: &[T],
    len: usize,
    at: impl Fn(usize) -> Option<T>,
) -> Vec<T> {
    let (Some(first), Some(last)) = (at(0), len.checked_sub(1).and_then(&at)) else {
        return Vec::new();
    };
    let from = wanted.partition_point(|w| *w < first);
    let to = wanted.partition_point(|w| *w <= last);
    let wanted = wanted.get(from..to).unwrap_or(&[]);
    let mut found = Vec::new();
    let (mut w, mut l) = (wanted.iter().peekable(), 0);
    while let (Some(&&a), Some(b)) = (w.peek(), at(l).filter(|_| l < len)) {
        match a.cmp(&b) {
            std::cmp::Ordering::Less => {
                w.next();
            }
            std::cmp::Ordering::Greater => l += 1,
            std::cmp::Ordering::Equal => {
                found.push(a);
                w.next();
                l += 1;
            }
        }
    }
    found
}

/// One of `count` disjoint parts of a table, by customer: a row belongs to part
/// `hash(trimmed customer id) % count`, so that every row of a customer, and every repeat of a
/// line, falls in the same part. Loading the parts one after another holds a `count`-th of the
/// rows at a time (each part reads the files again); stage 1 summaries of the parts then merge
/// exactly ([`crate::summary::merge_partitions`]). Rows without a customer id fall in the
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
            prior: None,
            keep_line_keys: false,
            dimensions_as_categories: false,
        }
    }
}

impl LoadOptions {
    /// Whether a transactions load reads the currency column (see `read_dimensions`).
    pub(crate) fn reads_currency(&self) -> bool {
        self.read_dimensions
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == col::CURRENCY))
    }
}

/// Loads a table from files, globs or `-` (stdin).
///
/// # Errors
/// Any [`crate::Error`] about files, columns or formats. Bad *values* are not errors: they are
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
    // The store's lines are looked up where they are; this file's and earlier files' are
    // added only when a later file may repeat them.
    let prior = options.prior.as_deref().filter(|p| p.has_lines());
    let mut seen_lines: PlHashSet<u128> = PlHashSet::default();
    // Every line read, for a summary store (`keep_line_keys`).
    let mut all_keys: Vec<u128> = Vec::new();
    // Lines are compared with earlier files, or with a store's.
    let several_files = opened.len() > 1 || options.prior.is_some();
    let mut order_ids_distinct = !several_files;
    let files_count = opened.len();
    // Where each file's rows sit in the concatenated table (customers only: to locate ids that
    // repeat).
    let mut spans: Vec<FileSpan> = Vec::new();
    for (file_index, opened) in opened.iter().enumerate() {
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
        let keyed = kind == TableKind::Transactions
            && parsed.report.columns.column(Role::OrderId).is_some()
            && (several_files || options.keep_line_keys);
        if keyed {
            let keys = line_keys(&parsed.frame)?;
            let later_files = file_index + 1 < files_count;
            let (frame, repeated) = match parsed.kept_rows.as_ref() {
                Some(kept) if !seen_lines.is_empty() || prior.is_some() => {
                    drop_lines_seen_before(&parsed.frame, &keys, kept, prior, &seen_lines)?
                }
                _ => (None, Vec::new()),
            };
            if later_files {
                seen_lines.extend(keys.iter().copied());
            }
            if options.keep_line_keys {
                // Moved, not copied, for the first file (160 MB at 10M rows, on one core).
                if all_keys.is_empty() {
                    all_keys = keys;
                } else {
                    all_keys.extend(keys);
                }
            }
            if let Some(frame) = frame {
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
        let (kept, excluded) = exclude_refunds_without_purchase(frame, options.prior.as_deref())?;
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
    // Repeated lines share their key with the line they repeat: the store keeps one.
    let line_keys = {
        sort_hashes(&mut all_keys, |k| (k >> 112) as u16);
        all_keys
    };
    Ok(Table {
        line_keys,
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{SortedKeys, held_in_lists, sort_hashes, sorted_unique};

    /// Bucketed, as at 10M keys (over 2^16 keys), hashes and keys all in one bucket come out
    /// as a sort and a dedup give them.
    #[test]
    fn hashes_come_out_sorted_without_repeats() {
        let hashes: Vec<u64> = (0..200_000u64)
            .map(|i| xxhash_rust::xxh3::xxh3_64(&(i % 150_000).to_le_bytes()))
            .collect();
        let narrow: Vec<u64> = (0..100_000u64).map(|i| (i * 7919) % 90_001).collect();
        for keys in [hashes, narrow] {
            let mut expected = keys.clone();
            expected.sort_unstable();
            expected.dedup();
            let mut sorted = keys;
            sort_hashes(&mut sorted, |k| (k >> 48) as u16);
            assert_eq!(sorted, expected);
        }
        let mut wide: Vec<u128> = (0..70_000u128).map(|i| i.rotate_right(20) ^ 99).collect();
        wide.push(wide[5]);
        let mut expected = wide.clone();
        expected.sort_unstable();
        expected.dedup();
        sort_hashes(&mut wide, |k| (k >> 112) as u16);
        assert_eq!(wide, expected);
    }

    /// Repeats kept when asked, keys crowded into a few buckets or spread over many, a bucket
    /// function past the last bucket: the order a sort gives.
    #[test]
    fn bucket_sort_is_a_sort() {
        let keys: Vec<(u64, u32)> = (0..150_000u64)
            .map(|i| {
                (
                    xxhash_rust::xxh3::xxh3_64(&(i % 70_000).to_le_bytes()) >> 40,
                    i as u32 % 3,
                )
            })
            .collect();
        let mut expected = keys.clone();
        expected.sort_unstable();
        let top = |k: &(u64, u32)| (k.0 >> 14) as usize;
        for (buckets, bucket) in [
            (1024, &top as &(dyn Fn(&(u64, u32)) -> usize + Sync)),
            (3, &|k: &(u64, u32)| usize::from(k.0 > 1 << 23)),
            (16, &|k: &(u64, u32)| (k.0 >> 18) as usize),
        ] {
            let sorted = super::par_bucket_sort(keys.clone(), buckets, bucket, false);
            assert_eq!(sorted, expected);
        }
        let mut deduped = expected.clone();
        deduped.dedup();
        assert_eq!(super::par_bucket_sort(keys, 1024, top, true), deduped);
    }

    #[test]
    fn held_keys_by_hand() {
        // Two sorted parts; wanted unsorted, with a repeat and keys outside both.
        let lists = vec![vec![2u64, 5, 9], vec![1, 5, 7, 40]];
        let wanted = sorted_unique([7, 3, 9, 9, 0, 41, 1].into_iter());
        assert_eq!(wanted, [0, 1, 3, 7, 9, 41]);
        let mut held = lists.held(&wanted).unwrap();
        held.sort_unstable();
        assert_eq!(held, [1, 7, 9]);
        let empty: Vec<Vec<u64>> = vec![vec![], vec![]];
        assert!(SortedKeys::is_empty(&empty));
        assert!(empty.held(&[1]).unwrap().is_empty());
        assert!(lists.held(&[]).unwrap().is_empty());
    }

    proptest! {
        /// The merge walk finds exactly what a binary search per key finds.
        #[test]
        fn held_keys_are_those_a_search_finds(
            wanted in proptest::collection::vec(0u64..200, 0..60),
            lists in proptest::collection::vec(proptest::collection::vec(0u64..200, 0..80), 0..4),
        ) {
            let lists: Vec<Vec<u64>> = lists
                .into_iter()
                .map(|mut l| {
                    l.sort_unstable();
                    l
                })
                .collect();
            let held: std::collections::HashSet<u64> =
                lists.held(&sorted_unique(wanted.iter().copied())).unwrap().into_iter().collect();
            for k in &wanted {
                let searched = lists.iter().any(|l| l.binary_search(k).is_ok());
                prop_assert_eq!(held.contains(k), searched);
            }
            prop_assert!(held.iter().all(|k| wanted.contains(k)));
            // Walked in slices as small as one value (repeats may straddle two), the same.
            for slice in [1, 2, 3, 7] {
                let walked: std::collections::HashSet<u64> =
                    held_in_lists(&sorted_unique(wanted.iter().copied()), &lists, slice).into_iter().collect();
                prop_assert_eq!(&walked, &held);
            }
        }
    }
}
