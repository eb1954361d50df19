//! Stage 1: the only code that reads transaction rows (and the customer and interaction rows
//! the report needs beside them). It reduces them to small mergeable summaries: one row per
//! customer, one row per customer × active period, and the gaps between purchase days.
//! Everything in stage 2 (rates, triangles, models, reports) reads these summaries only.
//!
//! - `summarise.rs`: [`summarise`], the one pass over a transactions frame;
//! - `merge.rs`: [`merge_partitions`], summaries of customer partitions merged exactly;
//! - `activity.rs`: the activity rows read customer by customer, held or spilled to disk by
//!   a merge of partitions;
//! - `partitions.rs`: stage 1 over transactions read one customer partition at a time;
//! - `holdout.rs`: the calibration/holdout split for checking CLV predictions;
//! - `prepare.rs`: `prepare`, the report's one entry point into stage 1: everything it needs
//!   from a [`crate::io::Dataset`]'s rows, after which the rows are released.

mod activity;
mod cohorts;
mod holdout;
mod id_codes;
mod merge;
mod partitions;
mod prepare;
pub mod scores;
pub mod store;
mod summarise;

use chrono::NaiveDate;
use polars::prelude::*;
use rayon::prelude::*;

use crate::Error;
use crate::io::col;
use crate::period::{Period, PeriodLookup, days_since_epoch};

pub(crate) use activity::{ActivityRuns, ActivityVisit, SpilledActivity};
pub(crate) use holdout::HoldoutSplit;
pub use merge::{PartitionMerger, merge_partitions};
pub use prepare::ChannelCount;
pub use prepare::Contract;
pub(crate) use prepare::{ContractSpan, Contracts};
pub(crate) use prepare::{Stage1, Stage1Options, prepare};
pub use store::{
    IDENTIFIER_MIN_DISTINCT, IDENTIFIER_SAMPLE_ROWS, IdentifierColumn, Manifest, Overlap,
    STORE_SCHEMA_VERSION, StoreInput, StoreOptions, StoreRead, StoredTable, SummaryStore,
};
pub(crate) use summarise::Parts;
pub use summarise::{inter_purchase_gaps, summarise};

/// The customers-table columns stage 1 reads besides the `--by` attributes: the ids, the
/// signup and end dates (cohorts, contracts) and the acquisition costs. A report's stage 1 and a
/// store read for a report both narrow the table to these, so the other attributes (text, often
/// a GB at tens of millions of customers) are never held through stage 1.
pub(crate) const CUSTOMER_COLUMNS_READ: [&str; 4] = [
    col::CUSTOMER_ID,
    col::SIGNUP_DATE,
    col::END_DATE,
    col::ACQUISITION_COST,
];

/// A customer id as the library holds it: polars' small string, stored inline up to 23 bytes
/// (a heap allocation only for longer ids). Every per-customer row carries one, and there are
/// tens of millions of rows in a large report: a `String` each cost an allocation per row and
/// per copy (~0.4 GB per copy of 26M ids), this costs none for typical ids. It derefs to `&str`
/// and converts from `&str` and `String` with `into()`.
pub type CustomerId = PlSmallStr;

/// Serialises a [`CustomerId`] as a string (serde support of polars' type is behind a feature
/// this crate does not enable).
pub(crate) fn serialize_customer_id<S: serde::Serializer>(
    id: &CustomerId,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(id.as_str())
}

/// One customer's purchase history, reduced.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerRow {
    /// Customer id.
    pub customer_id: CustomerId,
    /// First purchase (days since 1970-01-01).
    pub first_day: i32,
    /// Last purchase (days since 1970-01-01).
    pub last_day: i32,
    /// Number of purchases (orders; refunds are not purchases).
    pub orders: u32,
    /// Number of distinct days with a purchase.
    pub purchase_days: u32,
    /// Net revenue to date: purchases less refunds.
    pub revenue: f64,
    /// Net revenue on the first purchase day, so that repeat spend = revenue − this.
    pub first_day_revenue: f64,
    /// Segment value per `by` dimension: the value on the customer's first purchase. A boxed
    /// slice, not a `Vec`: 8 bytes less in every customer row (0.2 GB at 26M customers, at
    /// each of a large report's peaks).
    pub segments: Box<[Option<String>]>,
}

/// One customer's purchases and refunds in one period. The customer is *active* in the period
/// when `orders > 0`; a row with `orders == 0` holds only money given back (refunds), which
/// counts against the period's revenue but never makes a customer active.
///
/// Packed to 4-byte alignment (fields in declaration order): 20 bytes instead of 24 (padding
/// after `orders`). There is one row per customer and active period, ~80M at 100M
/// transactions, so the padding was 320 MB of a large report's peak. Fields are read by value;
/// a reference to `revenue` is not allowed (copy it first).
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C, packed(4))]
pub struct ActivityRow {
    /// Index into [`Summaries::customers`].
    pub customer: u32,
    /// Period index (see [`Period`]).
    pub period: i32,
    /// Net revenue in the period (purchases less refunds).
    pub revenue: f64,
    /// Purchases in the period (0: refunds only).
    pub orders: u32,
}

impl ActivityRow {
    /// Whether the customer bought in the period (a refund alone is not activity).
    pub fn is_active(&self) -> bool {
        self.orders > 0
    }
}

/// The stage-1 summaries of a transactions table.
#[derive(Debug, Clone)]
pub struct Summaries {
    /// One row per customer, sorted by customer id.
    pub customers: Vec<CustomerRow>,
    /// Customer × period purchases and refunds, sorted by customer then period.
    pub activity: Vec<ActivityRow>,
    /// Gaps in days between consecutive purchase days, all customers (sorted).
    pub gaps: Vec<u32>,
    /// The period the activity is indexed by.
    pub period: Period,
    /// The observation end.
    pub as_of: NaiveDate,
    /// The `by` dimensions, in order.
    pub by: Vec<String>,
}

impl Summaries {
    /// Observation end as days since 1970-01-01.
    pub fn as_of_day(&self) -> i32 {
        days_since_epoch(self.as_of)
    }

    /// Index of the period containing the observation end.
    pub fn as_of_period(&self) -> i32 {
        self.period.index(self.as_of)
    }

    /// A day → period table spanning every customer's first purchase to the observation end
    /// (every day a section dates a customer by), so that stage 2 does no calendar arithmetic
    /// per customer.
    pub(crate) fn period_lookup(&self) -> PeriodLookup {
        PeriodLookup::new(
            self.period,
            self.customers
                .iter()
                .map(|c| c.first_day)
                .chain([self.as_of_day()]),
        )
    }

    /// Each customer's first-purchase period (aligned with `customers`).
    pub(crate) fn first_purchase_periods(&self) -> Vec<i32> {
        let lookup = self.period_lookup();
        self.customers
            .iter()
            .map(|c| lookup.get(c.first_day))
            .collect()
    }
}

/// Restricts a transactions frame to `[from, to]` (either bound optional).
pub fn filter_dates(frame: LazyFrame, from: Option<NaiveDate>, to: Option<NaiveDate>) -> LazyFrame {
    let mut lf = frame;
    if let Some(from) = from {
        lf = lf.filter(
            col(col::DATE)
                .cast(DataType::Int32)
                .gt_eq(lit(days_since_epoch(from))),
        );
    }
    if let Some(to) = to {
        lf = lf.filter(
            col(col::DATE)
                .cast(DataType::Int32)
                .lt_eq(lit(days_since_epoch(to))),
        );
    }
    lf
}

/// The `q`-quantile of sorted values (linear interpolation between closest ranks, as numpy's
/// default and polars' `linear` method). Integer values (the summaries' gaps) are read as they
/// are: a copy of 74M gaps as `f64` was 0.6 GB of a 100M-row report's churn step.
pub(crate) fn quantile_sorted<T: Copy + Into<f64>>(sorted: &[T], q: f64) -> Option<f64> {
    quantile_of_sorted(sorted.len(), |i| sorted.get(i).copied().map(Into::into), q)
}

/// [`quantile_sorted`] of `len` sorted values read through `value(i)` (values held in another
/// order or inside other records, read without a sorted copy).
pub(crate) fn quantile_of_sorted(
    len: usize,
    value: impl Fn(usize) -> Option<f64>,
    q: f64,
) -> Option<f64> {
    if len == 0 {
        return None;
    }
    let pos = q.clamp(0.0, 1.0) * (len - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (a, b) = (value(lo)?, value(hi)?);
    Some(a + (b - a) * (pos - lo as f64))
}

/// For each of `ids` (a table's rows: contracts, the customers of a section), the index in
/// `s.customers` of the customer with that id; `None` for a null id or one not summarised.
/// [`customer_positions_in_column`] matches a column without collecting its ids first.
pub(crate) fn customer_positions<'a>(
    s: &Summaries,
    ids: impl Iterator<Item = Option<&'a str>>,
) -> Vec<Option<u32>> {
    positions_in_blocks(s, &ids.collect::<Vec<_>>(), MATCH_BLOCK)
}

fn positions_in_blocks(s: &Summaries, rows: &[Option<&str>], block: usize) -> Vec<Option<u32>> {
    let customers = CustomersById::new(s);
    let mut out = vec![None; rows.len()];
    out.par_chunks_mut(block)
        .zip(rows.par_chunks(block))
        .for_each(|(out, rows)| customers.match_block(|r| rows.get(r).copied().flatten(), out));
    out
}

/// [`customer_positions`] of a table's id column (the customers table), read in place, chunk
/// by chunk.
pub(crate) fn customer_positions_in_column(s: &Summaries, ids: &StringChunked) -> Vec<Option<u32>> {
    positions_in_column_blocks(s, ids, MATCH_BLOCK)
}

/// For each row of a table's id `column`, the index in `list` of the customer with that id
/// (`None` for a null id or one not in the list), matched as
/// [`customer_positions_in_column`] matches the summaries' customers. A store's customer codes
/// are positions in its list of ids.
pub(crate) fn positions_in_id_list(list: &[&str], column: &StringChunked) -> Vec<Option<u32>> {
    positions_in_column_blocks(list, column, MATCH_BLOCK)
}

fn positions_in_column_blocks<L: IdList + ?Sized>(
    s: &L,
    ids: &StringChunked,
    block: usize,
) -> Vec<Option<u32>> {
    let customers = CustomersById::new(s);
    let mut out = vec![None; ids.len()];
    let mut rest = out.as_mut_slice();
    for chunk in ids.downcast_iter() {
        let Some((part, tail)) = rest.split_at_mut_checked(chunk.len()) else {
            break;
        };
        part.par_chunks_mut(block)
            .enumerate()
            .for_each(|(b, out)| customers.match_block(|r| chunk.get(b * block + r), out));
        rest = tail;
    }
    out
}

/// Rows matched per block: each block's ids are sorted and merged with the customers on their
/// own, so that the matching holds one block's ids and sort keys per thread (~36 MB), not a
/// borrowed id and a key for every row of the table at once (~1.2 GB for the 26M rows of the
/// customers table at 100M transactions: the peak of that report's memory).
const MATCH_BLOCK: usize = 1 << 20;

/// A list of customers that rows are matched to by id: the summaries' customers, or a store's
/// ids by code.
trait IdList: Sync {
    fn len(&self) -> usize;
    /// The id of the `i`-th customer.
    fn id(&self, i: usize) -> Option<&str>;
    /// The customers' indices in id order ([`summarise::sort_ids`] of their ids).
    fn order_by_id(&self) -> Vec<u32> {
        let ids: Vec<&str> = (0..self.len()).filter_map(|i| self.id(i)).collect();
        summarise::sort_ids(&ids)
    }
}

impl IdList for Summaries {
    fn len(&self) -> usize {
        self.customers.len()
    }
    fn id(&self, i: usize) -> Option<&str> {
        self.customers.get(i).map(|c| c.customer_id.as_str())
    }
}

impl IdList for [&str] {
    fn len(&self) -> usize {
        <[&str]>::len(self)
    }
    fn id(&self, i: usize) -> Option<&str> {
        self.get(i).copied()
    }
    /// Sorted as they are, without a second list of the ids (26M of them at 100M rows).
    fn order_by_id(&self) -> Vec<u32> {
        summarise::sort_ids(self)
    }
}

/// A list's customers in id order, for matching rows to them by merging. Both sides are
/// sorted by their ids' bytes ([`summarise::sort_ids`], fast on typical ids) and merged: a hash
/// map of millions of borrowed ids, which this replaced, spent most of its time on cache
/// misses (~0.8 s per table of 2.6M customers, several times per report).
struct CustomersById<'s, L: IdList + ?Sized> {
    s: &'s L,
    /// `None` when the list is already in id order (as stage 1 lists the summaries' customers).
    order: Option<Vec<u32>>,
}

impl<'s, L: IdList + ?Sized> CustomersById<'s, L> {
    fn new(s: &'s L) -> CustomersById<'s, L> {
        // Stage 1 lists customers by id, so they need no sorting (nor a copy of their ids);
        // summaries built elsewhere, and a store's ids (in first-seen order), may not be.
        let listed_by_id = (1..s.len()).all(|i| s.id(i - 1) <= s.id(i));
        let order = (!listed_by_id).then(|| s.order_by_id());
        CustomersById { s, order }
    }

    /// The index in the list of the `k`-th customer in id order.
    fn customer_at(&self, k: usize) -> Option<u32> {
        match &self.order {
            Some(order) => order.get(k).copied(),
            None => (k < self.s.len()).then_some(k as u32),
        }
    }

    /// The id of the `k`-th customer in id order.
    fn id_at(&self, k: usize) -> Option<&'s str> {
        let c = self.customer_at(k)?;
        self.s.id(c as usize)
    }

    /// The first `k >= from` whose id is not less than `id`, given that the ids before `from`
    /// are less: a galloping search, so that rows sorted by id walk the customers in steps of
    /// about log(gap) comparisons, whatever the gaps between a block's rows.
    fn first_not_less(&self, from: usize, id: &str) -> usize {
        let less = |k: usize| self.id_at(k).is_some_and(|other| other < id);
        if !less(from) {
            return from;
        }
        let (mut lo, mut step) = (from, 1usize);
        let mut hi = loop {
            let probe = lo.saturating_add(step);
            if !less(probe) {
                break probe;
            }
            lo = probe;
            step = step.saturating_mul(2);
        };
        // less(lo), !less(hi): the answer is in (lo, hi].
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            match less(mid) {
                true => lo = mid,
                false => hi = mid,
            }
        }
        hi
    }

    /// Matches rows `0..out.len()` (their ids by `id_of`) to customers: the block's ids are
    /// sorted ([`summarise::sort_ids`]) and merged with the customers in id order.
    fn match_block<'a>(&self, id_of: impl Fn(usize) -> Option<&'a str>, out: &mut [Option<u32>]) {
        let (rows, ids): (Vec<u32>, Vec<&str>) = (0..out.len())
            .filter_map(|r| id_of(r).map(|id| (r as u32, id)))
            .unzip();
        let mut k = 0usize;
        for i in summarise::sort_ids(&ids) {
            let (Some(&row), Some(&id)) = (rows.get(i as usize), ids.get(i as usize)) else {
                continue;
            };
            k = self.first_not_less(k, id);
            if self.id_at(k) == Some(id)
                && let Some(slot) = out.get_mut(row as usize)
            {
                *slot = self.customer_at(k);
            }
        }
    }
}

/// The error for a `--by` column that `table`'s frame (with `schema`) does not have.
pub(crate) fn unknown_by_column(table: &str, column: &str, schema: &Schema) -> Error {
    Error::UnknownColumn {
        table: table.into(),
        role: "segment (--by)".into(),
        column: column.into(),
        columns: schema
            .iter_names()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Summaries of customers with these ids (one purchase each), in the order given.
    pub(crate) fn summaries(ids: &[&str]) -> Summaries {
        Summaries {
            customers: ids
                .iter()
                .map(|id| CustomerRow {
                    customer_id: (*id).into(),
                    first_day: 0,
                    last_day: 0,
                    orders: 1,
                    purchase_days: 1,
                    revenue: 0.0,
                    first_day_revenue: 0.0,
                    segments: Box::default(),
                })
                .collect(),
            activity: Vec::new(),
            gaps: Vec::new(),
            period: Period::Month,
            as_of: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default(),
            by: Vec::new(),
        }
    }

    #[test]
    fn an_activity_row_has_no_padding() {
        assert_eq!(std::mem::size_of::<ActivityRow>(), 20);
    }

    #[test]
    fn a_customer_row_is_72_bytes() {
        // Id (24), segments (16), money (16), days and counts (16).
        assert_eq!(std::mem::size_of::<CustomerRow>(), 72);
    }

    #[test]
    fn rows_find_their_customer_by_id() {
        // Summaries listed by id (as stage 1 lists them) and not (built by hand).
        for ids in [["a", "b", "c10", "c2", "é"], ["é", "c2", "a", "c10", "b"]] {
            let s = summaries(&ids);
            let rows = [
                Some("c2"),
                None,
                Some("zz"),
                Some("a"),
                Some("c2"),
                Some(""),
                Some("é"),
            ];
            let at = |id: &str| ids.iter().position(|&x| x == id).map(|i| i as u32);
            let want = vec![at("c2"), None, None, at("a"), at("c2"), None, at("é")];
            assert_eq!(customer_positions(&s, rows.into_iter()), want);
        }
        assert!(customer_positions(&summaries(&[]), [Some("a")].into_iter())[0].is_none());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(60))]
        /// The merge finds what a hash map of the customers' ids finds, whatever the order of
        /// either side, repeated rows and ids sharing their first eight bytes.
        #[test]
        fn matching_by_sorting_finds_what_a_map_finds(
            customers in proptest::collection::hash_set("(prefix00)?[a-c\\x00é]{0,10}", 0..40),
            rows in proptest::collection::vec(proptest::option::of("(prefix00)?[a-c\\x00é]{0,10}"), 0..60),
        ) {
            let ids: Vec<&str> = customers.iter().map(String::as_str).collect();
            let s = summaries(&ids);
            let by_id: std::collections::HashMap<&str, u32> =
                ids.iter().enumerate().map(|(i, id)| (*id, i as u32)).collect();
            let want: Vec<Option<u32>> = rows
                .iter()
                .map(|r| r.as_deref().and_then(|id| by_id.get(id).copied()))
                .collect();
            let got = customer_positions(&s, rows.iter().map(|r| r.as_deref()));
            proptest::prop_assert_eq!(&got, &want);
            // In blocks of 3 rows, and from a column of three chunks read in place.
            let refs: Vec<Option<&str>> = rows.iter().map(|r| r.as_deref()).collect();
            proptest::prop_assert_eq!(&positions_in_blocks(&s, &refs, 3), &want);
            let third = refs.len() / 3;
            let mut column = StringChunked::from_iter_options("id".into(), refs[..third].iter().copied());
            for part in [&refs[third..2 * third], &refs[2 * third..]] {
                column.append(&StringChunked::from_iter_options("id".into(), part.iter().copied())).unwrap();
            }
            proptest::prop_assert_eq!(&positions_in_column_blocks(&s, &column, 3), &want);
            proptest::prop_assert_eq!(&customer_positions_in_column(&s, &column), &want);
        }
    }
}
