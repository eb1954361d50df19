//! Cleaning passes: the rows settled before any value is parsed (blank lines, report footers,
//! line items continuing an order, excluded statuses), and the passes over a loaded table that
//! make one row one order of one customer (lines repeated across files, order lines merged,
//! refunds without a purchase, repeated customers).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use polars::prelude::*;
use rayon::prelude::*;

use super::load::LoadOptions;
use super::parse::RejectReason;
use super::read::{self, OpenedFile, ROW};
use super::schema::{ResolvedColumns, Role, col};
use super::status::{ExcludeReason, PurchaseStatus, StatusMap};
use super::table::Rejection;
use crate::Result;

/// Leaves out the refunds (negative amounts) of customers with no purchase in the table: the
/// purchase they refund is outside the export, so there is no customer here to take it from.
/// Returns the rest and how many rows were left out. Every row of a customer is in one
/// partition, so each partition decides this alone. Customers who bought in the exports a
/// summary store already holds (`prior`) keep their refunds.
pub(super) fn exclude_refunds_without_purchase(
    frame: DataFrame,
    prior: Option<&super::load::PriorRows>,
) -> Result<(DataFrame, u64)> {
    let Some(keep) = refunds_to_keep(&frame, prior)? else {
        return Ok((frame, 0));
    };
    let kept = frame.filter(&keep)?;
    let excluded = (frame.height() - kept.height()) as u64;
    Ok((kept, excluded))
}

/// The rows to keep when some refunds have no purchase of their customer; `None` when every row
/// stays. Refunds are few: their customers are collected, then a purchase of theirs looked for
/// (a hash lookup per row, where a window over every customer grouped the whole table), in
/// slices of rows on every core (on one core, the lookups were ~0.5 s of a 10M-row load).
pub(super) fn refunds_to_keep(
    frame: &DataFrame,
    prior: Option<&super::load::PriorRows>,
) -> Result<Option<BooleanChunked>> {
    const SLICE: usize = 1 << 16;
    let amounts = frame.column(col::AMOUNT)?.f64()?;
    let ids = frame.column(col::CUSTOMER_ID)?.str()?;
    let slices = frame.height().div_ceil(SLICE);
    let in_slice = |s: usize| {
        let (offset, len) = ((s * SLICE) as i64, SLICE);
        (ids.slice(offset, len), amounts.slice(offset, len))
    };
    // The refunds' rows, found in slices (two passes over every row on one core, the refunds'
    // customers then collected from them, were ~0.4 s of a 10M-row load).
    let refund_rows: Vec<usize> = (0..slices)
        .into_par_iter()
        .flat_map_iter(|s| {
            let rows: Vec<usize> = amounts
                .slice((s * SLICE) as i64, SLICE)
                .iter()
                .enumerate()
                .filter(|(_, a)| a.is_some_and(|a| a < 0.0))
                .map(|(i, _)| s * SLICE + i)
                .collect();
            rows
        })
        .collect();
    // Their ids looked up and made distinct on every core, the set then built at its size
    // (~0.1 s of a 10M-row load on one core, growing the set as it went).
    let mut without_purchase = super::load::distinct_set(
        refund_rows
            .into_par_iter()
            .filter_map(|row| ids.get(row))
            .collect(),
    );
    if let Some(prior) = prior {
        let bought_before = prior.purchasers_among(&without_purchase);
        without_purchase.retain(|id| !bought_before.contains(id));
    }
    if without_purchase.is_empty() {
        return Ok(None);
    }
    // The refunders each slice has a purchase of, as the set's own `&str` (they borrow the
    // frame, not the slice).
    let bought: Vec<&str> = (0..slices)
        .into_par_iter()
        .flat_map_iter(|s| {
            let (ids, amounts) = in_slice(s);
            let found: Vec<&str> = ids
                .iter()
                .zip(amounts.iter())
                .filter(|(_, a)| a.is_some_and(|a| a >= 0.0))
                .filter_map(|(id, _)| without_purchase.get(id?).copied())
                .collect();
            found
        })
        .collect();
    for id in bought {
        without_purchase.remove(id);
    }
    if without_purchase.is_empty() {
        return Ok(None);
    }
    let mut keep = super::load::par_filled(true, frame.height());
    keep.par_chunks_mut(SLICE)
        .enumerate()
        .for_each(|(s, keep)| {
            let (ids, amounts) = in_slice(s);
            for ((k, id), a) in keep.iter_mut().zip(ids.iter()).zip(amounts.iter()) {
                let refund = a.is_some_and(|a| a < 0.0);
                *k = !(refund && id.is_some_and(|id| without_purchase.contains(id)));
            }
        });
    Ok(Some(BooleanChunked::from_slice(PlSmallStr::EMPTY, &keep)))
}

/// Lines of a file found repeated: each one's 0-based data row in the file and its order id.
pub(super) type RepeatedLines = Vec<(u64, String)>;

/// The order lines of `frame` (one file's transactions, with their `keys`) that an earlier file
/// (`seen`), or a summary store the load adds to (`prior`), already had: same order id,
/// customer, date and amount. Returns the frame without them (`None` when there are none) and,
/// for each line removed, its 0-based data row in the file and its order id.
pub(super) fn drop_lines_seen_before(
    frame: &DataFrame,
    keys: &[u128],
    kept_rows: &[u64],
    prior: Option<&super::load::PriorRows>,
    seen: &PlHashSet<u128>,
) -> Result<(Option<DataFrame>, RepeatedLines)> {
    let held = match prior {
        Some(p) => p.lines_held(keys)?,
        None => PlHashSet::default(),
    };
    let keep: Vec<bool> = keys
        .iter()
        .map(|k| !seen.contains(k) && !held.contains(k))
        .collect();
    if keep.iter().all(|&k| k) {
        return Ok((None, Vec::new()));
    }
    let orders = frame
        .column(col::ORDER_ID)
        .ok()
        .map(|c| c.cast(&DataType::String))
        .transpose()?;
    let orders = orders.as_ref().map(|c| c.str()).transpose()?;
    let repeated = keep
        .iter()
        .enumerate()
        .filter(|(_, k)| !**k)
        .map(|(i, _)| {
            let order = orders
                .and_then(|o| o.get(i))
                .unwrap_or_default()
                .to_string();
            (kept_rows.get(i).copied().unwrap_or(i as u64), order)
        })
        .collect();
    let mask: BooleanChunked = keep.into_iter().map(Some).collect();
    Ok((Some(frame.filter(&mask)?), repeated))
}

/// The key of each order line: a 128-bit XXH3 of its order id, customer, date and amount,
/// stable across runs, machines and versions, so that a summary store can remember the lines
/// it holds and a later export that repeats them is not counted twice. The values are hashed
/// as their types (the date as a day number, the amount as the bits of its float, the ids as
/// text; nulls marked), not as polars' text for them, which a polars upgrade may change:
/// two lines have the same key exactly when their values are equal.
pub(crate) fn line_keys(frame: &DataFrame) -> Result<Vec<u128>> {
    // Hashed in slices of rows on every core, each slice's columns read in order (reading row
    // i of a column searched its chunks, and putting each column in one chunk first copied it
    // on one core).
    const SLICE: usize = 1 << 16;
    let cast = |n: &str, dtype: DataType| -> Result<Option<Column>> {
        if !frame.get_column_names().iter().any(|c| c.as_str() == n) {
            return Ok(None);
        }
        Ok(Some(frame.column(n)?.cast(&dtype)?))
    };
    let orders = cast(col::ORDER_ID, DataType::String)?;
    let customers = cast(col::CUSTOMER_ID, DataType::String)?;
    let days = cast(col::DATE, DataType::Int32)?;
    let amounts = cast(col::AMOUNT, DataType::Float64)?;
    let orders = orders.as_ref().map(|s| s.str()).transpose()?;
    let customers = customers.as_ref().map(|s| s.str()).transpose()?;
    let days = days.as_ref().map(|c| c.i32()).transpose()?;
    let amounts = amounts.as_ref().map(|c| c.f64()).transpose()?;
    let push = |bytes: &mut Vec<u8>, v: Option<&[u8]>| match v {
        Some(v) => {
            bytes.push(1);
            bytes.extend_from_slice(&(v.len() as u32).to_le_bytes());
            bytes.extend_from_slice(v);
        }
        None => bytes.push(0),
    };
    // Each slice writes its own part of the keys (they keep the row order).
    let mut keys = vec![0u128; frame.height()];
    keys.par_chunks_mut(SLICE).enumerate().for_each(|(s, out)| {
        let (offset, len) = (s * SLICE, out.len());
        let slice = |c: Option<&StringChunked>| c.map(|c| c.slice(offset as i64, len));
        let (orders, customers) = (slice(orders), slice(customers));
        let days = days.map(|c| c.slice(offset as i64, len));
        let amounts = amounts.map(|c| c.slice(offset as i64, len));
        let mut texts: Vec<_> = [orders.as_ref(), customers.as_ref()]
            .into_iter()
            .flatten()
            .map(|c| c.iter())
            .collect();
        let mut days = days.as_ref().map(|c| c.iter());
        let mut amounts = amounts.as_ref().map(|c| c.iter());
        let mut bytes = Vec::<u8>::with_capacity(64);
        for key in out {
            bytes.clear();
            for text in &mut texts {
                push(&mut bytes, text.next().flatten().map(str::as_bytes));
            }
            if let Some(d) = days.as_mut() {
                let d = d.next().flatten().map(i32::to_le_bytes);
                push(&mut bytes, d.as_ref().map(|b| &b[..]));
            }
            if let Some(a) = amounts.as_mut() {
                let a = a.next().flatten().map(|a| a.to_bits().to_le_bytes());
                push(&mut bytes, a.as_ref().map(|b| &b[..]));
            }
            *key = xxhash_rust::xxh3::xxh3_128(&bytes);
        }
    });
    Ok(keys)
}

/// Lines of one order become one transaction: amounts summed, the earliest date, the smallest
/// value of each dimension. Line-item exports (Shopify, UCI Online Retail) need this so that "number of
/// purchases" counts orders, not items. An order is an order id *of one customer*: the same id
/// under another customer (two shops' numbering in one job) is another order, and rows without
/// an order id (a file without the column, read with one that has it) are orders of their own.
/// Every line of an order is then a line of one customer, so that reading the table in customer
/// partitions merges the same lines.
pub(super) fn merge_order_lines(frame: DataFrame, dimensions: &[String]) -> Result<DataFrame> {
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
            // The smallest value among the lines, not the first: the same whatever the lines'
            // order in the file (and in an engine's SQL, which has none). As text: a column
            // read as categories is compared by its values, not their codes.
            aggs.push(col(keep.as_str()).cast(DataType::String).min());
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
pub(super) struct FileSpan {
    pub(super) display: String,
    /// The CSV file and its delimiter, to find the line of a row.
    pub(super) csv: Option<(PathBuf, u8)>,
    /// Rows the file contributed.
    pub(super) height: usize,
    /// 0-based data rows of the file not in the table (rejected, excluded, blank), ascending.
    pub(super) rejected_rows: Vec<u64>,
    /// The file's customer-id column.
    pub(super) id_column: String,
}

impl FileSpan {
    /// The 0-based data rows in the file of the table's rows `ks` (ascending) from this file:
    /// each `k` plus the rejected rows before it, in one walk over both lists.
    pub(super) fn file_rows(&self, ks: impl IntoIterator<Item = usize>) -> Vec<u64> {
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
pub(super) fn reject_repeated_customers(
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

/// Whether every value of `column` (nulls counting as one value) is distinct.
///
/// Order ids are usually all distinct, and both `n_unique` (one thread) and a group-by (a hash
/// table and an index list per id: most of a 10M-row run's page faults) are costly for that. So
/// the values are hashed in parallel (xxh3) and the hashes sorted in buckets and deduplicated
/// ([`super::load::sort_hashes`]): no hash lost proves the ids distinct; only when hashes
/// collide is the exact check run. (A SipHash of each id and a comparison sort were ~3% of a
/// 10M-row summarize.)
pub(super) fn all_distinct(frame: &DataFrame, column: &str) -> Result<bool> {
    use rayon::prelude::*;
    use xxhash_rust::xxh3::xxh3_64;
    let text = frame.column(column)?.cast(&DataType::String)?;
    let ca = text.str()?;
    if strictly_monotonic(ca) {
        return Ok(true);
    }
    let chunk = 1 << 16;
    let mut hashes: Vec<u64> = (0..ca.len().div_ceil(chunk))
        .into_par_iter()
        .flat_map_iter(|i| {
            let part = ca.slice((i * chunk) as i64, chunk);
            // A null hashes as 0: two nulls (or a null and an id hashing to 0) only send the
            // column to the exact check.
            let hashed: Vec<u64> = part
                .iter()
                .map(|v| v.map_or(0, |v| xxh3_64(v.as_bytes())))
                .collect();
            hashed
        })
        .collect();
    let n = hashes.len();
    super::load::sort_hashes(&mut hashes, |h| (h >> 48) as u16);
    if hashes.len() == n {
        return Ok(true);
    }
    Ok(text.n_unique()? == frame.height())
}

/// Whether the values, none null, strictly ascend or strictly descend in byte order, which
/// proves them distinct without hashing. Exports often list orders by order number, oldest or
/// newest first (and customers by id): then one pass comparing neighbours, in slices on every
/// core, replaces hashing and sorting every id (~0.4 s of a 10M-row load). Values in no such
/// order stop each slice at its first mismatch, so the check costs little when it fails.
fn strictly_monotonic(ca: &StringChunked) -> bool {
    use rayon::prelude::*;
    const SLICE: usize = 1 << 16;
    if ca.null_count() > 0 || ca.len() < 2 {
        return false;
    }
    let (ascending, descending) = (0..ca.len().div_ceil(SLICE))
        .into_par_iter()
        .map(|s| {
            // From the previous slice's last value, so that slices' boundaries are compared too.
            let from = (s * SLICE).saturating_sub(1);
            let part = ca.slice(from as i64, SLICE + 1);
            let mut values = part.downcast_iter().flat_map(|chunk| chunk.values_iter());
            let Some(mut previous) = values.next() else {
                return (true, true);
            };
            let (mut ascending, mut descending) = (true, true);
            for value in values {
                ascending &= previous < value;
                descending &= previous > value;
                if !ascending && !descending {
                    break;
                }
                previous = value;
            }
            (ascending, descending)
        })
        .reduce(|| (true, true), |a, b| (a.0 && b.0, a.1 && b.1));
    ascending || descending
}

/// The first rejection of each rejected row, as we parse column after column, and the rows
/// settled before any value is checked (blank lines, report footers, continuation lines,
/// excluded statuses), whose values are then not checked at all. Sparse: such rows are few, and
/// a slot per row (16 bytes) was 1.6 GB of a 100M-row load.
#[derive(Default)]
pub(super) struct RowStatus {
    pub(super) first: BTreeMap<usize, (RejectReason, usize)>,
    pub(super) settled: BTreeMap<usize, Settled>,
}

/// What became of a row that is not parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Settled {
    /// No value in any column: not a row at all.
    Blank,
    /// A line item continuing an order of an earlier row: used, as part of that order.
    Continuation,
    /// Left out on purpose.
    Excluded(ExcludeReason),
}

impl RowStatus {
    pub(super) fn reject(&mut self, row: usize, reason: RejectReason, column: usize) {
        if !self.settled.contains_key(&row) {
            self.first.entry(row).or_insert((reason, column));
        }
    }

    pub(super) fn settle(&mut self, row: usize, how: Settled) {
        if !self.first.contains_key(&row) {
            self.settled.entry(row).or_insert(how);
        }
    }

    pub(super) fn is_settled(&self, row: usize) -> bool {
        self.settled.contains_key(&row)
    }

    pub(super) fn count(&self, how: Settled) -> u64 {
        self.settled.values().filter(|s| **s == how).count() as u64
    }

    /// Whether each of `n` rows is kept (neither rejected nor settled).
    pub(super) fn keep_mask(&self, n: usize) -> BooleanChunked {
        let mut rejected = self.first.keys().copied().peekable();
        let mut settled = self.settled.keys().copied().peekable();
        (0..n)
            .map(|i| {
                let hit = rejected.next_if_eq(&i).is_some() | settled.next_if_eq(&i).is_some();
                Some(!hit)
            })
            .collect()
    }

    pub(super) fn is_clean(&self) -> bool {
        self.first.is_empty() && self.settled.is_empty()
    }
}

/// Settles rows with no value in any column (blank lines, or rows of empty fields that Excel
/// leaves at the end of a sheet): they are not rows. The loaded columns are checked first
/// (cheap: a column without nulls rules every row out); candidates are confirmed against the
/// file's other columns.
pub(super) fn settle_blank_rows(
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

pub(super) fn is_blank_value(v: &AnyValue<'_>) -> bool {
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
pub(super) fn settle_footer(
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
pub(super) fn settle_continuations(
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
pub(super) fn purchase_statuses(
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `all_distinct` against polars' exact count, for ids in order (both ways, the shortcut),
    /// out of order, repeated, and null, in three chunks of a length that crosses the
    /// shortcut's slices (2^16 rows), with the change placed at a slice boundary.
    #[test]
    fn ids_are_distinct_exactly_when_polars_counts_them_so() {
        let n = 200_000usize;
        let ascending: Vec<Option<String>> = (0..n).map(|i| Some(format!("O{i:08}"))).collect();
        let mut descending = ascending.clone();
        descending.reverse();
        let mut swapped = ascending.clone();
        swapped.swap(65_535, 65_536);
        let mut repeated = ascending.clone();
        repeated[65_536] = repeated[65_535].clone();
        let mut repeated_far = descending.clone();
        repeated_far[n - 1] = repeated_far[0].clone();
        let mut one_null = ascending.clone();
        one_null[70_000] = None;
        let mut two_nulls = one_null.clone();
        two_nulls[140_000] = None;
        let short: Vec<Option<String>> = vec![Some("b".into()), Some("a".into()), Some("b".into())];
        let cases = [
            (ascending, true),
            (descending, true),
            (swapped, true),
            (repeated, false),
            (repeated_far, false),
            (one_null, true),
            (two_nulls, false),
            (short, false),
        ];
        for (i, (ids, distinct)) in cases.into_iter().enumerate() {
            let third = ids.len() / 3;
            let mut column = Series::new("order_id".into(), &ids[..third]);
            column
                .append(&Series::new("order_id".into(), &ids[third..2 * third]))
                .unwrap();
            column
                .append(&Series::new("order_id".into(), &ids[2 * third..]))
                .unwrap();
            let frame = DataFrame::new_infer_height(vec![column.into_column()]).unwrap();
            let exact = frame.column("order_id").unwrap().n_unique().unwrap() == ids.len();
            assert_eq!(exact, distinct, "case {i}: the expectation");
            assert_eq!(
                all_distinct(&frame, "order_id").unwrap(),
                distinct,
                "case {i}"
            );
        }
    }

    #[test]
    fn line_keys_are_stable_and_tell_lines_apart_by_value() {
        // A summary store keeps these keys across versions: a change here would make stores
        // written before it count repeated lines twice. The pinned value guards the encoding.
        let date = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let frame = df!(
            col::ORDER_ID => [Some("O1"), Some("O1"), Some("O1"), None],
            col::CUSTOMER_ID => ["C1", "C1", "C2", "C1"],
            col::DATE => [date("2024-01-02"), date("2024-01-02"), date("2024-01-02"), date("2024-01-02")],
            col::AMOUNT => [12.5, 12.5, 12.5, 12.5],
        )
        .unwrap();
        let keys = line_keys(&frame).unwrap();
        assert_eq!(keys[0], keys[1]);
        assert_ne!(
            keys[0], keys[2],
            "another customer's order O1 is another line"
        );
        assert_ne!(
            keys[0], keys[3],
            "a line without an order id is another line"
        );
        // The same key from Python's `xxhash.xxh3_128_intdigest` over the documented bytes
        // (docs/summary-store.md), so that another engine can compute it too.
        assert_eq!(keys[0], 289_601_075_507_740_171_283_920_687_884_525_858_474);
    }

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
