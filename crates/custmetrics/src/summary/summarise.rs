//! The one pass of stage 1: polars selects the columns, then customers get dense codes, a
//! counting sort makes each customer's rows contiguous, and each customer's rows are reduced in
//! one pass, customers in parallel (rayon).

use chrono::NaiveDate;
use polars::prelude::*;
use rayon::prelude::*;

use super::{ActivityRow, CustomerRow, Summaries, filter_dates};
use crate::io::col;
use crate::money::{from_micros, to_micros};
use crate::period::{Period, PeriodLookup, date_from_days};
use crate::{Error, Result};

/// Builds the summaries of a canonical transactions frame.
///
/// `as_of` defaults to the last transaction date; transactions after it are ignored.
///
/// # Errors
/// [`Error::InsufficientData`] when there are no transactions; [`Error::UnknownColumn`] for a
/// `by` dimension the table lacks.
pub fn summarise(
    transactions: LazyFrame,
    period: Period,
    as_of: Option<NaiveDate>,
    by: &[String],
) -> Result<Summaries> {
    summarise_parts(transactions, period, as_of, by, Parts::All)
}

/// Which of the summaries [`summarise_parts`] builds: the customer rows always; the activity
/// rows and the gaps only for the sections that read them (retention, churn, survival and the
/// supporting figures). RFM and CLV read the customer rows only, and at 100M transactions the
/// other two are ~2 GB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parts {
    /// Customers, activity and gaps.
    All,
    /// Customers only: `activity` and `gaps` are left empty.
    Customers,
}

/// [`summarise`], building only `parts`.
pub(crate) fn summarise_parts(
    transactions: LazyFrame,
    period: Period,
    as_of: Option<NaiveDate>,
    by: &[String],
    parts: Parts,
) -> Result<Summaries> {
    let mut tx = transactions;
    let schema = tx.collect_schema()?;
    for b in by {
        if schema.get(b.as_str()).is_none() {
            return Err(super::unknown_by_column("transactions", b, &schema));
        }
    }
    if let Some(as_of) = as_of {
        tx = filter_dates(tx, None, Some(as_of));
    }
    // One pass, after the hint of the speed issue: polars groups the rows by customer (hashed,
    // in parallel), then each customer's rows are reduced in Rust, customers in parallel. The
    // earlier plan of three string-keyed group-bys with a filtered aggregation per group was
    // 5-7x slower than DuckDB on 10M rows (BENCHMARKS.md).
    let mut select = vec![
        col(col::CUSTOMER_ID).cast(DataType::String),
        col(col::DATE).cast(DataType::Int32).alias("day"),
        col(col::AMOUNT).cast(DataType::Float64),
    ];
    select.extend(by.iter().map(|b| col(b.as_str()).cast(DataType::String)));
    // A frame read back from a summary store has one row per customer and day, weighted by
    // its number of purchases.
    let weighted = schema.get(col::ORDERS).is_some();
    if weighted {
        select.push(col(col::ORDERS).cast(DataType::UInt32));
    }
    let coded = schema.get(col::CUSTOMER_CODE).is_some();
    if coded {
        select.push(col(col::CUSTOMER_CODE).cast(DataType::UInt32));
    }
    let mut rows = tx.select(select).collect()?;
    // Rows without a customer or a date are not purchases (loaded tables have none; frames
    // from elsewhere may). Filtering copies every column, so only when there are some.
    let has_nulls = |name: &str| -> Result<bool> { Ok(rows.column(name)?.null_count() > 0) };
    if has_nulls(col::CUSTOMER_ID)? || has_nulls("day")? {
        rows = rows
            .lazy()
            .filter(
                col(col::CUSTOMER_ID)
                    .is_not_null()
                    .and(col("day").is_not_null()),
            )
            .collect()?;
    }
    // Rows coded by a summary store read one id per customer, so their ids stay in the chunks
    // they came in (a rechunk copied a view per row).
    let ids = rows.column(col::CUSTOMER_ID)?.as_materialized_series();
    let ids = match coded {
        true => ids.clone(),
        false => ids.rechunk(),
    };
    let ids = ids.str()?;
    // Days and amounts are read in place (one chunk, no nulls); copied only otherwise.
    // (Days have no nulls here; a missing amount or weight counts as 0.)
    let days = contiguous(rows.column("day")?.as_materialized_series().i32()?, 0);
    let amounts = contiguous(
        rows.column(col::AMOUNT)?.as_materialized_series().f64()?,
        0.0,
    );
    let store_codes = match coded {
        true => Some(rows.column(col::CUSTOMER_CODE)?.as_materialized_series()),
        false => None,
    };
    let orders: Option<std::borrow::Cow<'_, [u32]>> = match weighted {
        true => Some(contiguous(
            rows.column(col::ORDERS)?.as_materialized_series().u32()?,
            0,
        )),
        false => None,
    };
    let values = Values {
        amounts: &amounts,
        orders: orders.as_deref(),
    };
    let segment_columns: Vec<Series> = by
        .iter()
        .map(|b| -> Result<Series> {
            Ok(rows.column(b.as_str())?.as_materialized_series().rechunk())
        })
        .collect::<Result<_>>()?;
    let segment_values: Vec<&StringChunked> = segment_columns
        .iter()
        .map(|s| s.str())
        .collect::<PolarsResult<_>>()?;
    let Some(max_day) = days.iter().copied().max() else {
        return Err(Error::InsufficientData {
            what: "customer metrics".into(),
            message: "no transactions (after the date filter)".into(),
        });
    };
    let mut last_day = max_day;

    // Customers get dense codes in first-seen order (one hash-map pass; ids are borrowed, not
    // copied); a counting sort by code then makes each customer's rows contiguous. This replaces
    // polars' group-by, whose index list per group (millions of small allocations, most of a
    // 10M-row run's page faults) cost more than the reduction itself.
    // Rows read back from a summary store carry the store's customer codes: no hashing.
    let store_codes = match store_codes.filter(|c| c.null_count() == 0) {
        Some(codes) => Some(contiguous(codes.u32()?, 0)),
        None => None,
    };
    let sorted_runs = store_codes
        .as_deref()
        .and_then(|codes| runs_of_sorted_codes(codes, ids));
    let (starts, mut grouped, distinct) = match sorted_runs {
        Some(runs) => runs,
        None => {
            let (codes, distinct) = match store_codes.as_deref() {
                Some(store_codes) => codes_from_store(store_codes, ids),
                None => {
                    let mut code_of: PlHashMap<&str, u32> = PlHashMap::with_capacity(ids.len() / 4);
                    let mut distinct: Vec<&str> = Vec::new();
                    let codes: Vec<u32> = ids
                        .iter()
                        .map(|id| {
                            let id = id.unwrap_or_default();
                            *code_of.entry(id).or_insert_with(|| {
                                distinct.push(id);
                                (distinct.len() - 1) as u32
                            })
                        })
                        .collect();
                    (codes, distinct)
                }
            };
            let (starts, grouped) = group_by_code(&codes, distinct.len());
            (starts, grouped, distinct)
        }
    };
    drop(store_codes);
    // Each customer's rows by day, ties in row order (the segment is the first value on the
    // first day); rows are already in row order, so a stable sort by day suffices. A store's
    // rows, and most exports' rows, are already in day order per customer: that is checked on
    // every core first.
    let day_of = |i: &u32| days.get(*i as usize).copied().unwrap_or_default();
    let in_day_order = starts.par_windows(2).all(|w| {
        let (from, to) = (w.first().copied(), w.get(1).copied());
        let (from, to) = (
            from.unwrap_or_default() as usize,
            to.unwrap_or_default() as usize,
        );
        grouped
            .get(from..to)
            .is_none_or(|members| members.is_sorted_by_key(day_of))
    });
    if !in_day_order {
        let mut rest = grouped.as_mut_slice();
        for w in starts.windows(2) {
            let len =
                w.get(1).copied().unwrap_or_default() - w.first().copied().unwrap_or_default();
            let Some((members, tail)) = rest.split_at_mut_checked(len as usize) else {
                break;
            };
            if members.len() > 1 && !members.is_sorted_by_key(day_of) {
                members.sort_by_key(day_of);
            }
            rest = tail;
        }
    }
    let members_of = |code: u32| -> &[u32] {
        let (from, to) = (
            starts.get(code as usize).copied().unwrap_or_default(),
            starts.get(code as usize + 1).copied().unwrap_or_default(),
        );
        grouped.get(from as usize..to as usize).unwrap_or(&[])
    };
    // Customers in id order, so that output never depends on row order or hashing. A customer
    // whose rows in the window are all refunds bought nothing in it: not a customer here.
    let mut order = sort_ids(&distinct);
    if values.has_non_purchases() {
        let bought: Vec<bool> = order
            .par_iter()
            .map(|&code| members_of(code).iter().any(|&i| values.is_purchase(i)))
            .collect();
        let mut bought = bought.into_iter();
        order.retain(|_| bought.next().unwrap_or(false));
        if order.is_empty() {
            return Err(Error::InsufficientData {
                what: "customer metrics".into(),
                message: "no purchases, only refunds (after the date filter)".into(),
            });
        }
        // The default observation end is the last row of a customer (so that the summaries
        // of customer partitions merge to those of the whole).
        last_day = order
            .iter()
            .flat_map(|&code| members_of(code).last())
            .filter_map(|&i| days.get(i as usize).copied())
            .max()
            .unwrap_or(max_day);
    }
    let as_of = as_of.unwrap_or_else(|| date_from_days(last_day));
    // Every output vector is allocated once at its final size and written in place, in
    // parallel: concatenating per-block vectors copied ~400 MB on 10M rows and was the slowest
    // step of stage 1 (page faults on fresh memory dominate on small VMs).
    let mut customers: Vec<CustomerRow> = Vec::with_capacity(order.len());
    order
        .par_iter()
        .map(|&code| {
            let id = distinct.get(code as usize).copied().unwrap_or_default();
            customer_row(id, members_of(code), &days, &values, &segment_values)
        })
        .collect_into_vec(&mut customers);
    if parts == Parts::Customers {
        return Ok(Summaries {
            customers,
            activity: Vec::new(),
            gaps: Vec::new(),
            period,
            as_of,
            by: by.to_vec(),
        });
    }
    let period_of = PeriodLookup::new(period, days.iter().copied());
    const BLOCK: usize = 8192;
    let activity_counts: Vec<usize> = order
        .par_chunks(BLOCK)
        .map(|block| {
            block
                .iter()
                .map(|&code| count_periods(members_of(code), &days, &period_of))
                .sum()
        })
        .collect();
    let gap_counts: Vec<usize> = customers
        .par_chunks(BLOCK)
        .map(|block| {
            block
                .iter()
                .map(|c| c.purchase_days.saturating_sub(1) as usize)
                .sum()
        })
        .collect();
    let zero = ActivityRow {
        customer: 0,
        period: 0,
        revenue: 0.0,
        orders: 0,
    };
    let mut activity = vec![zero; activity_counts.iter().sum()];
    let mut gaps = vec![0u32; gap_counts.iter().sum()];
    let activity_parts = split_by_counts(&mut activity, &activity_counts);
    let gap_parts = split_by_counts(&mut gaps, &gap_counts);
    order
        .par_chunks(BLOCK)
        .zip(activity_parts)
        .zip(gap_parts)
        .enumerate()
        .for_each(|(b, ((block, mut activity), mut gaps))| {
            for (j, &code) in block.iter().enumerate() {
                let members = members_of(code);
                let written = fill_periods(
                    (b * BLOCK + j) as u32,
                    members,
                    &days,
                    &values,
                    &period_of,
                    activity,
                );
                activity = activity.get_mut(written..).unwrap_or_default();
                let written = fill_gaps(members, &days, &values, gaps);
                gaps = gaps.get_mut(written..).unwrap_or_default();
            }
        });
    sort_small_values(&mut gaps);
    Ok(Summaries {
        customers,
        activity,
        gaps,
        period,
        as_of,
        by: by.to_vec(),
    })
}

/// A counting sort of rows by their code (`0..codes_count`): `order[starts[c]..starts[c + 1]]`
/// are the rows of code `c`, in row order. Returns `(starts, order)`.
pub(super) fn group_by_code(codes: &[u32], codes_count: usize) -> (Vec<u32>, Vec<u32>) {
    let mut starts = vec![0u32; codes_count + 1];
    for &c in codes {
        if let Some(n) = starts.get_mut(c as usize + 1) {
            *n += 1;
        }
    }
    for k in 1..starts.len() {
        let previous = starts.get(k - 1).copied().unwrap_or_default();
        if let Some(n) = starts.get_mut(k) {
            *n += previous;
        }
    }
    let mut next = starts.clone();
    let mut order = vec![0u32; codes.len()];
    for (row, &c) in codes.iter().enumerate() {
        if let Some(slot) = next.get_mut(c as usize)
            && let Some(cell) = order.get_mut(*slot as usize)
        {
            *cell = row as u32;
            *slot += 1;
        }
    }
    (starts, order)
}

/// Dense codes (first seen, first coded) from a summary store's customer codes, and the id of
/// each: the store coded every customer once, so the rows need no hashing of their ids.
fn codes_from_store<'a>(store_codes: &[u32], ids: &'a StringChunked) -> (Vec<u32>, Vec<&'a str>) {
    let size = store_codes.iter().max().map_or(0, |&m| m as usize + 1);
    let mut dense = vec![u32::MAX; size];
    // The first row of each customer: its id is read there only (one id per customer, not
    // one per row).
    let mut first_rows: Vec<usize> = Vec::new();
    let codes = store_codes
        .iter()
        .enumerate()
        .map(|(row, &c)| match dense.get_mut(c as usize) {
            Some(d) if *d != u32::MAX => *d,
            Some(d) => {
                first_rows.push(row);
                *d = (first_rows.len() - 1) as u32;
                *d
            }
            // Not reached: `dense` spans every code.
            None => 0,
        })
        .collect();
    (codes, ids_at_rows(first_rows.iter().copied(), ids))
}

/// The ids of `rows` (ascending), chunk by chunk: a lookup per row searched the chunks every
/// time, and iterating every row's id read 10M ids to keep 2.6M.
fn ids_at_rows(rows: impl Iterator<Item = usize>, ids: &StringChunked) -> Vec<&str> {
    let mut found = Vec::with_capacity(rows.size_hint().0);
    let mut wanted = rows.peekable();
    let mut offset = 0usize;
    for chunk in ids.downcast_iter() {
        let end = offset + chunk.len();
        while let Some(row) = wanted.next_if(|&row| row < end) {
            let i = row - offset;
            found.push(chunk.get(i).unwrap_or_default());
        }
        offset = end;
    }
    found
}

/// [`codes_from_store`] and [`group_by_code`] at once for a store's rows sorted by customer
/// code (a store's purchases are written so): each customer's rows are one run, coded in run
/// order, in row order. `None` when the codes are not sorted (or there are none). Found on
/// every core, without the passes over every row on one (~0.3 s of a 10M-row `rfm --store`).
fn runs_of_sorted_codes<'a>(
    store_codes: &[u32],
    ids: &'a StringChunked,
) -> Option<(Vec<u32>, Vec<u32>, Vec<&'a str>)> {
    let sorted = store_codes.par_windows(2).all(|w| w.first() <= w.last());
    if store_codes.is_empty() || !sorted {
        return None;
    }
    let n = store_codes.len() as u32;
    let changes: Vec<u32> = store_codes
        .par_windows(2)
        .enumerate()
        .filter(|(_, w)| w.first() != w.last())
        .map(|(i, _)| i as u32 + 1)
        .collect();
    let mut starts = Vec::with_capacity(changes.len() + 2);
    starts.push(0);
    starts.extend(changes);
    let distinct = ids_at_rows(starts.iter().map(|&s| s as usize), ids);
    starts.push(n);
    let mut rows = Vec::new();
    (0..n).into_par_iter().collect_into_vec(&mut rows);
    Some((starts, rows, distinct))
}

/// A numeric column's values as one slice (nulls as `null`): borrowed when it is one chunk
/// without nulls, else its chunks copied into place on every core. A store's columns come in
/// a chunk per row group, and `rechunk` copied them on one core (~0.15 s of `rfm --store` at
/// 10M rows).
pub(crate) fn contiguous<T>(
    values: &ChunkedArray<T>,
    null: T::Native,
) -> std::borrow::Cow<'_, [T::Native]>
where
    T: PolarsNumericType,
{
    use polars_arrow::array::Array;
    if let Ok(slice) = values.cont_slice() {
        return std::borrow::Cow::Borrowed(slice);
    }
    let mut out = crate::io::load::par_filled(null, values.len());
    let mut parts = Vec::new();
    let mut rest = out.as_mut_slice();
    for chunk in values.downcast_iter() {
        let (part, tail) = rest.split_at_mut(chunk.len().min(rest.len()));
        parts.push((chunk, part));
        rest = tail;
    }
    parts.into_par_iter().for_each(|(chunk, part)| {
        if chunk.null_count() == 0 {
            part.copy_from_slice(
                chunk
                    .values()
                    .as_slice()
                    .get(..part.len())
                    .unwrap_or_default(),
            );
        } else {
            for (slot, v) in part.iter_mut().zip(chunk.iter()) {
                *slot = v.copied().unwrap_or(null);
            }
        }
    });
    std::borrow::Cow::Owned(out)
}

/// A numeric column without nulls as one chunk ([`contiguous`]'s copy, kept as the column),
/// so that every later reader borrows it; a column with nulls is returned as it is.
pub(crate) fn one_chunk<T: PolarsNumericType>(values: &ChunkedArray<T>) -> ChunkedArray<T> {
    if values.null_count() > 0 || values.chunks().len() <= 1 {
        return values.clone();
    }
    let copied = contiguous(values, T::Native::default()).into_owned();
    ChunkedArray::from_vec(values.name().clone(), copied)
}

/// `f` of every value of a column without nulls, in one chunk written in one pass; `None` when
/// the column has nulls or `f` refuses a value (the caller then casts as polars does).
///
/// A store's columns come in a chunk per row group: a cast, then arithmetic, then
/// [`one_chunk`] wrote every value two or three times, ~240 MB of fresh memory at 10M rows for
/// the amounts, weights and customer codes of every `--store` command.
pub(crate) fn mapped_one_chunk<A, B>(
    values: &ChunkedArray<A>,
    mut f: impl FnMut(A::Native) -> Option<B::Native>,
) -> Option<ChunkedArray<B>>
where
    A: PolarsNumericType,
    B: PolarsNumericType,
{
    if values.null_count() > 0 {
        return None;
    }
    let mut out = Vec::with_capacity(values.len());
    for chunk in values.downcast_iter() {
        for &v in chunk.values().iter() {
            out.push(f(v)?);
        }
    }
    Some(ChunkedArray::from_vec(values.name().clone(), out))
}

/// The indices of `ids` in byte order of the ids.
///
/// Sorting indices with a string comparison behind each (a pointer chase and a `memcmp`) was
/// the largest sort of stage 1. Ids are sorted instead by their first 8 bytes, packed
/// big-endian into a `u64` (zero-padded, so that the integer order is the byte order), and
/// only runs of ids sharing those 8 bytes are compared in full. Typical ids (`C000123`,
/// numbers, short codes) fit in 8 bytes, so runs are rare.
///
/// Ids read back from a summary store are usually in order already (a first summarize codes
/// them by first row, and most exports list customers in id order): that is checked first.
pub(super) fn sort_ids(ids: &[&str]) -> Vec<u32> {
    if ids.par_windows(2).all(|w| w.first() <= w.last()) {
        let mut identity = Vec::new();
        (0..ids.len() as u32)
            .into_par_iter()
            .collect_into_vec(&mut identity);
        return identity;
    }
    let mut keyed: Vec<(u64, u32)> = ids
        .par_iter()
        .enumerate()
        .map(|(code, id)| (id_prefix(id), code as u32))
        .collect();
    // Ids in a few ascending runs (numbered customers coded in order: `C999999` is followed
    // by `C1000000`) sort in linear time by merging the runs, which the stable sort finds;
    // the unstable sort is faster on ids in no order. Keys are distinct: both give one order.
    let descents = keyed
        .par_windows(2)
        .filter(|w| w.first() > w.last())
        .count();
    if descents < keyed.len() / 64 {
        keyed.par_sort();
    } else {
        keyed.par_sort_unstable();
    }
    keyed.par_chunk_by_mut(|a, b| a.0 == b.0).for_each(|run| {
        if run.len() > 1 {
            run.sort_unstable_by(|a, b| ids.get(a.1 as usize).cmp(&ids.get(b.1 as usize)));
        }
    });
    keyed.into_iter().map(|(_, code)| code).collect()
}

/// An id's first 8 bytes, big-endian and zero-padded: integers in the ids' byte order (equal
/// for ids that share those bytes; see [`sort_ids`]).
fn id_prefix(id: &str) -> u64 {
    let mut bytes = [0u8; 8];
    for (b, &c) in bytes.iter_mut().zip(id.as_bytes()) {
        *b = c;
    }
    u64::from_be_bytes(bytes)
}

/// Sorts small non-negative integers (gaps in days, at most the data's span) by counting:
/// linear, where a comparison sort of millions of gaps was a visible part of stage 1.
pub(super) fn sort_small_values(values: &mut [u32]) {
    let Some(&max) = values.iter().max() else {
        return;
    };
    if max as usize > values.len() {
        values.par_sort_unstable();
        return;
    }
    let mut counts = vec![0usize; max as usize + 1];
    for &v in values.iter() {
        if let Some(n) = counts.get_mut(v as usize) {
            *n += 1;
        }
    }
    let mut slots = values.iter_mut();
    for (value, &n) in counts.iter().enumerate() {
        for slot in slots.by_ref().take(n) {
            *slot = value as u32;
        }
    }
}

/// Splits `values` into consecutive parts of the given lengths (which sum to its length).
fn split_by_counts<'a, T>(mut values: &'a mut [T], counts: &[usize]) -> Vec<&'a mut [T]> {
    let mut parts = Vec::with_capacity(counts.len());
    for &n in counts {
        let Some((part, rest)) = values.split_at_mut_checked(n) else {
            break;
        };
        parts.push(part);
        values = rest;
    }
    parts
}

/// The amounts of the rows, and their weights when the rows are days from a summary store.
struct Values<'a> {
    amounts: &'a [f64],
    /// Purchases per row ([`col::ORDERS`]); `None`: each row is one order.
    orders: Option<&'a [u32]>,
}

impl Values<'_> {
    /// Whether row `i` is a purchase: a row (an order) with a net amount of zero or more (a
    /// negative amount is money given back, which is never a purchase); a store's day with at
    /// least one purchase.
    #[inline]
    fn is_purchase(&self, i: u32) -> bool {
        match self.orders {
            None => self.amounts.get(i as usize).is_none_or(|&a| a >= 0.0),
            Some(o) => o.get(i as usize).is_some_and(|&n| n > 0),
        }
    }

    /// The purchases row `i` stands for.
    #[inline]
    fn orders(&self, i: u32) -> u32 {
        match self.orders {
            None => u32::from(self.is_purchase(i)),
            Some(o) => o.get(i as usize).copied().unwrap_or(0),
        }
    }

    /// Row `i`'s amount in millionths.
    #[inline]
    fn micros(&self, i: u32) -> i64 {
        to_micros(self.amounts.get(i as usize).copied().unwrap_or_default())
    }

    /// Whether some row is not a purchase (refunds).
    fn has_non_purchases(&self) -> bool {
        match self.orders {
            None => self.amounts.iter().any(|&a| a < 0.0),
            Some(o) => o.contains(&0),
        }
    }
}

/// One customer's summary row from their rows, sorted by day.
fn customer_row(
    id: &str,
    members: &[u32],
    days: &[i32],
    values: &Values<'_>,
    segment_values: &[&StringChunked],
) -> CustomerRow {
    let day_of = |i: u32| days.get(i as usize).copied().unwrap_or_default();
    let micros_of = |i: u32| values.micros(i);
    let bought = |i: &&u32| values.is_purchase(**i);
    let first_day = members.iter().find(bought).map(|&i| day_of(i));
    let first_day = first_day.unwrap_or_default();
    let last_day = members.iter().rev().find(bought).map(|&i| day_of(i));
    let last_day = last_day.unwrap_or_default();
    let mut purchase_days = 0u32;
    let mut orders = 0u32;
    let mut previous_day: Option<i32> = None;
    let mut revenue = 0i64;
    let mut first_day_revenue = 0i64;
    for &i in members {
        let day = day_of(i);
        let m = micros_of(i);
        if values.is_purchase(i) {
            orders += values.orders(i);
            if previous_day != Some(day) {
                purchase_days += 1;
                previous_day = Some(day);
            }
        }
        revenue += m;
        if day == first_day {
            first_day_revenue += m;
        }
    }
    // The segment is the smallest value among the purchases of the first purchase day: the
    // acquisition channel, order-free (a day's orders have no order in most exports, and an
    // engine's SQL has no row order; by code points, as SQL's MIN under a binary collation).
    let segments = segment_values
        .iter()
        .map(|values| {
            members
                .iter()
                .skip_while(|&&i| day_of(i) < first_day)
                .take_while(|&&i| day_of(i) == first_day)
                .filter(bought)
                .filter_map(|&i| values.get(i as usize))
                .min()
                .map(str::to_string)
        })
        .collect();
    CustomerRow {
        customer_id: id.into(),
        first_day,
        last_day,
        orders,
        purchase_days,
        revenue: from_micros(revenue),
        first_day_revenue: from_micros(first_day_revenue),
        segments,
    }
}

/// Number of distinct periods among one customer's rows, sorted by day.
fn count_periods(members: &[u32], days: &[i32], period_of: &PeriodLookup) -> usize {
    let mut count = 0;
    let mut last: Option<i32> = None;
    for &i in members {
        let period = period_of.get(days.get(i as usize).copied().unwrap_or_default());
        if last != Some(period) {
            count += 1;
            last = Some(period);
        }
    }
    count
}

/// Writes one customer's active periods (rows sorted by day, so each period's rows are
/// contiguous) to the start of `out`; returns how many.
fn fill_periods(
    customer: u32,
    members: &[u32],
    days: &[i32],
    values: &Values<'_>,
    period_of: &PeriodLookup,
    out: &mut [ActivityRow],
) -> usize {
    let mut written = 0usize;
    let mut revenue = 0i64;
    for &i in members {
        let period = period_of.get(days.get(i as usize).copied().unwrap_or_default());
        let m = values.micros(i);
        let current = written.checked_sub(1).and_then(|w| out.get_mut(w));
        let order = values.orders(i);
        match current {
            Some(row) if row.period == period => {
                row.orders += order;
                revenue += m;
            }
            current => {
                if let Some(row) = current {
                    row.revenue = from_micros(revenue);
                }
                revenue = m;
                if let Some(row) = out.get_mut(written) {
                    *row = ActivityRow {
                        customer,
                        period,
                        revenue: 0.0,
                        orders: order,
                    };
                }
                written += 1;
            }
        }
    }
    if let Some(row) = written.checked_sub(1).and_then(|w| out.get_mut(w)) {
        row.revenue = from_micros(revenue);
    }
    written
}

/// Writes the gaps in days between one customer's consecutive purchase days (rows sorted by
/// day) to the start of `out`; returns how many.
fn fill_gaps(members: &[u32], days: &[i32], values: &Values<'_>, out: &mut [u32]) -> usize {
    let mut written = 0usize;
    let mut previous: Option<i32> = None;
    for &i in members.iter().filter(|&&i| values.is_purchase(i)) {
        let day = days.get(i as usize).copied().unwrap_or_default();
        match previous {
            Some(p) if p == day => {}
            Some(p) => {
                if let Some(slot) = out.get_mut(written) {
                    *slot = (day - p).max(0) as u32;
                }
                written += 1;
                previous = Some(day);
            }
            None => previous = Some(day),
        }
    }
    written
}

/// Days between consecutive purchase days of each customer, all customers together, sorted
/// (the same as [`Summaries::gaps`], for callers that want only these).
///
/// # Errors
/// As [`summarise`].
pub fn inter_purchase_gaps(transactions: LazyFrame, as_of: Option<NaiveDate>) -> Result<Vec<u32>> {
    Ok(summarise(transactions, Period::Month, as_of, &[])?.gaps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::days_since_epoch;
    use crate::summary::merge_partitions;

    #[test]
    fn one_chunk_copies_several_chunks_into_one_and_leaves_nulls_alone() {
        let mut days = Int32Chunked::from_vec("day".into(), vec![3, 1]);
        days.append(&Int32Chunked::from_vec("day".into(), vec![4, 1, 5]))
            .unwrap();
        let joined = one_chunk(&days);
        assert_eq!(joined.chunks().len(), 1);
        assert_eq!(joined.name().as_str(), "day");
        assert_eq!(joined.cont_slice().unwrap(), [3, 1, 4, 1, 5]);
        let mut with_null: Int32Chunked = [Some(1), None].into_iter().collect();
        with_null.append(&days).unwrap();
        let kept = one_chunk(&with_null);
        assert_eq!(kept.chunks().len(), with_null.chunks().len());
        assert!(kept.equal_missing(&with_null).all());
    }

    #[test]
    fn mapped_one_chunk_is_the_cast_then_the_arithmetic_in_one_chunk() {
        let mut micros = Int64Chunked::from_vec("revenue_micros".into(), vec![1_234_567, -10]);
        micros
            .append(&Int64Chunked::from_vec(
                "revenue_micros".into(),
                vec![0, 9_007_199_254_740_993, 1],
            ))
            .unwrap();
        // The store's decoding: the same bits as polars' cast and division (-10 micros is
        // where a plain division differs in the last bit).
        let mapped = mapped_one_chunk::<_, Float64Type>(&micros, |v| {
            Some(super::super::store::amount_of_micros(v))
        })
        .expect("no nulls");
        let cast = micros.cast(&DataType::Float64).unwrap();
        let expected = cast.f64().unwrap() / 1e6;
        assert_eq!(mapped.chunks().len(), 1);
        assert_eq!(mapped.name().as_str(), "revenue_micros");
        let bits =
            |c: &Float64Chunked| -> Vec<u64> { c.into_no_null_iter().map(f64::to_bits).collect() };
        assert_eq!(bits(&mapped), bits(&expected));
        // A value the caller's conversion refuses (a negative count as u32), or a null: left to
        // polars' cast.
        let counts = Int32Chunked::from_vec("orders".into(), vec![2, -1]);
        assert!(mapped_one_chunk::<_, UInt32Type>(&counts, |v| u32::try_from(v).ok()).is_none());
        let with_null: Int32Chunked = [Some(1), None].into_iter().collect();
        assert!(mapped_one_chunk::<_, UInt32Type>(&with_null, |v| u32::try_from(v).ok()).is_none());
    }

    fn frame() -> LazyFrame {
        let d = |s: &str| days_since_epoch(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        // b: two purchases on Jan 5 (one purchase day), a refund on Feb 1 (not a purchase, but
        // February's net revenue), a purchase on Mar 10.
        // a: one purchase; its channel is blank on the first row of its first day.
        let rows = [
            ("b", "2024-03-10", 7.0, Some("web")),
            ("b", "2024-01-05", 10.0, None),
            ("a", "2024-02-20", 0.1, None),
            ("b", "2024-01-05", 5.25, Some("shop")),
            ("b", "2024-02-01", -3.0, Some("web")),
            ("a", "2024-02-20", 0.2, Some("phone")),
        ];
        df!(
            col::CUSTOMER_ID => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            col::DATE => rows.iter().map(|r| d(r.1)).collect::<Vec<_>>(),
            col::AMOUNT => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            "channel" => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
        )
        .unwrap()
        .lazy()
        .with_column(col(col::DATE).cast(DataType::Date))
    }

    /// `None` when no part has a purchase (then the whole has none either).
    fn summarise_in_parts(rows: &DataFrame, count: u32, by: &[String]) -> Option<Summaries> {
        let parts: Vec<Summaries> = (0..count)
            .filter_map(|index| {
                let part = crate::io::Partition { index, count };
                let lf = rows
                    .clone()
                    .lazy()
                    .filter(part.filter(col(col::CUSTOMER_ID)));
                // A part without rows has no summaries (summarise says so); it is skipped.
                summarise(lf, Period::Month, None, by).ok()
            })
            .collect();
        (!parts.is_empty()).then(|| merge_partitions(parts).unwrap())
    }

    #[test]
    fn partitions_merge_to_the_whole() {
        let rows = frame().collect().unwrap();
        let by = ["channel".to_string()];
        let whole = summarise(rows.clone().lazy(), Period::Month, None, &by).unwrap();
        for count in 1..=4 {
            let merged = summarise_in_parts(&rows, count, &by).unwrap();
            assert_eq!(merged.customers, whole.customers, "{count} parts");
            assert_eq!(merged.activity, whole.activity, "{count} parts");
            assert_eq!(merged.gaps, whole.gaps, "{count} parts");
            assert_eq!(merged.as_of, whole.as_of, "{count} parts");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(40))]
        /// Any split of any table by customer merges back to the summaries of the whole.
        #[test]
        fn any_partitioning_merges_exactly(
            rows in proptest::collection::vec((0usize..12, 0i32..400, -5000i64..20000), 1..120),
            count in 1u32..6,
        ) {
            // Ids of several lengths, some sharing their first 8 bytes.
            let ids = ["c1", "c2", " c3", "customer-0001", "customer-0002", "customer-0010",
                "a", "zz", "0", "00", "customer", "x y"];
            let frame = df!(
                col::CUSTOMER_ID => rows.iter().map(|r| ids[r.0].trim()).collect::<Vec<_>>(),
                col::DATE => rows.iter().map(|r| 19_000 + r.1).collect::<Vec<_>>(),
                col::AMOUNT => rows.iter().map(|r| r.2 as f64 / 100.0).collect::<Vec<_>>(),
            )
            .unwrap()
            .lazy()
            .with_column(col(col::DATE).cast(DataType::Date))
            .collect()
            .unwrap();
            let merged = summarise_in_parts(&frame, count, &[]);
            // Only refunds (negative amounts): no customer, in the whole as in every part.
            let Ok(whole) = summarise(frame.clone().lazy(), Period::Month, None, &[]) else {
                proptest::prop_assert!(merged.is_none());
                return Ok(());
            };
            let merged = merged.unwrap();
            proptest::prop_assert_eq!(merged.customers, whole.customers);
            proptest::prop_assert_eq!(merged.activity, whole.activity);
            proptest::prop_assert_eq!(merged.gaps, whole.gaps);
            proptest::prop_assert_eq!(merged.as_of, whole.as_of);
        }
    }

    #[test]
    fn one_pass_by_hand() {
        let s = summarise(frame(), Period::Month, None, &["channel".to_string()]).unwrap();
        assert_eq!(s.as_of, NaiveDate::from_ymd_opt(2024, 3, 10).unwrap());
        let ids: Vec<&str> = s.customers.iter().map(|c| c.customer_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        let a = &s.customers[0];
        assert_eq!((a.orders, a.purchase_days), (2, 1));
        // Money is summed in millionths: 0.1 + 0.2 is exactly 0.3 here.
        assert_eq!((a.revenue, a.first_day_revenue), (0.3, 0.3));
        assert_eq!(*a.segments, [Some("phone".to_string())]);
        let b = &s.customers[1];
        assert_eq!((b.orders, b.purchase_days), (3, 2));
        assert_eq!((b.revenue, b.first_day_revenue), (19.25, 15.25));
        assert_eq!(b.last_day - b.first_day, 65);
        assert_eq!(*b.segments, [Some("shop".to_string())]);
        let b_periods: Vec<(i32, f64, u32)> = s
            .activity
            .iter()
            .filter(|r| r.customer == 1)
            .map(|r| (r.period - 2024 * 12, r.revenue, r.orders))
            .collect();
        // February holds only the refund: net revenue, no purchase, so b is not active in it.
        assert_eq!(b_periods, [(0, 15.25, 2), (1, -3.0, 0), (2, 7.0, 1)]);
        assert!(
            !s.activity
                .iter()
                .any(|r| r.customer == 1 && r.period == 2024 * 12 + 1 && r.is_active())
        );
        // b's purchase days: Jan 5 → Mar 10 (65 days); the refund day is not one.
        assert_eq!(s.gaps, [65]);
    }

    #[test]
    fn contiguous_values_keep_row_order_and_fill_nulls() {
        let mut values = Int32Chunked::new("v".into(), [Some(1), Some(2)]);
        values
            .append(&Int32Chunked::new("v".into(), [None, Some(4)]))
            .unwrap();
        values
            .append(&Int32Chunked::new("v".into(), [Some(5)]))
            .unwrap();
        assert_eq!(values.chunks().len(), 3);
        assert_eq!(&*contiguous(&values, -1), &[1, 2, -1, 4, 5]);
        let one = Int32Chunked::new("v".into(), [7, 8]);
        assert!(matches!(
            contiguous(&one, 0),
            std::borrow::Cow::Borrowed(&[7, 8])
        ));
        let empty = Int32Chunked::new("v".into(), [0i32; 0]);
        assert!(contiguous(&empty, 0).is_empty());
    }

    #[test]
    fn ids_numbered_in_order_sort_in_byte_order() {
        // Two ascending runs in byte order (C1..C9, then C10..C99...), and ids in no order.
        for ids in [
            (1..3000).map(|i| format!("C{i}")).collect::<Vec<_>>(),
            (1..3000)
                .map(|i| format!("C{}", (i * 7919) % 3001))
                .collect(),
            (1..3000).map(|i| format!("customer-number-{i}")).collect(),
        ] {
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let sorted: Vec<&str> = sort_ids(&refs)
                .into_iter()
                .map(|i| refs[i as usize])
                .collect();
            let mut expected = refs.clone();
            expected.sort_unstable();
            assert_eq!(sorted, expected);
        }
    }

    proptest::proptest! {
        #[test]
        fn ids_sort_in_byte_order(ids in proptest::collection::vec("[a-c\\x00é]{0,12}", 0..60)) {
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let sorted: Vec<&str> = sort_ids(&refs).into_iter().map(|i| refs[i as usize]).collect();
            let mut expected = refs.clone();
            expected.sort_unstable();
            proptest::prop_assert_eq!(sorted, expected.clone());
            // Ids already in order (the checked shortcut) come back as they are.
            let again: Vec<&str> = sort_ids(&expected).into_iter().map(|i| expected[i as usize]).collect();
            proptest::prop_assert_eq!(again, expected);
        }

        #[test]
        fn counting_sort_sorts(mut values in proptest::collection::vec(0u32..50, 0..200), big in proptest::option::of(1000u32..5000)) {
            values.extend(big);
            let mut expected = values.clone();
            expected.sort_unstable();
            sort_small_values(&mut values);
            proptest::prop_assert_eq!(values, expected);
        }
    }

    #[test]
    fn store_codes_become_dense_codes_with_one_id_each() {
        // A store's codes (any values, first seen first coded) and the rows' ids in several
        // chunks, as a store's parts read back: each customer's id is its first row's.
        let codes = [7u32, 7, 2, 7, 2, 9, 0];
        let mut ids = StringChunked::new("id".into(), ["g", "g", "c"]);
        ids.append(&StringChunked::new("id".into(), ["g", "c"]))
            .unwrap();
        ids.append(&StringChunked::new("id".into(), ["j", "a"]))
            .unwrap();
        assert_eq!(ids.chunks().len(), 3);
        let (dense, distinct) = codes_from_store(&codes, &ids);
        assert_eq!(dense, vec![0, 0, 1, 0, 1, 2, 3]);
        assert_eq!(distinct, vec!["g", "c", "j", "a"]);
        let none = StringChunked::new("id".into(), [""; 0]);
        let (dense, distinct) = codes_from_store(&[], &none);
        assert!(dense.is_empty() && distinct.is_empty());
    }

    #[test]
    fn as_of_drops_later_rows_and_empty_is_an_error() {
        let as_of = NaiveDate::from_ymd_opt(2024, 1, 31).unwrap();
        let s = summarise(frame(), Period::Month, Some(as_of), &[]).unwrap();
        assert_eq!(s.customers.len(), 1);
        assert_eq!(s.customers[0].revenue, 15.25);
        assert_eq!(s.as_of, as_of);
        let before = NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
        assert!(matches!(
            summarise(frame(), Period::Month, Some(before), &[]),
            Err(Error::InsufficientData { .. })
        ));
    }
}
