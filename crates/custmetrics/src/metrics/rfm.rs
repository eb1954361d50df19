//! RFM: the per-customer summary the CLV models use, RFM scores and named segments.
//!
//! **Model convention** (lifetimes' `summary_data_from_transaction_data`, BTYD's `elog2cbs`):
//! purchases on the same day are one purchase occasion; frequency = occasions − 1 (repeat
//! purchases); recency = time from the first to the last occasion; T = time from the first
//! occasion to the observation end; monetary_value = mean revenue of the repeat occasions (0 when
//! there are none). Times are in `time_unit_days` days (1 = days, 7 = weeks).
//!
//! **Scores** (Hughes, *Strategic Database Marketing*, 1994): quintiles 1–5 of recency (days since
//! the last purchase, fewer is better), frequency (orders) and monetary (revenue to date); ties
//! share the lower score, so scores do not depend on row order.
//!
//! **Segments** from R and F scores (a simplified version of the common 11-segment RFM map):
//! new (one order, R ≥ 4), champions (R ≥ 4, F ≥ 4), loyal (R ≥ 3, F ≥ 3), potential_loyalists
//! (R ≥ 4), at_risk (R ≤ 2, F ≥ 3), hibernating (R = 2, F ≤ 2), lost (R = 1, F ≤ 2),
//! needs_attention (the rest).

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::money::money_mean_of_difference;
use crate::summary::{CustomerId, CustomerRow, Summaries};

/// One customer's RFM figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RfmRow {
    /// Customer id.
    #[serde(serialize_with = "crate::summary::serialize_customer_id")]
    pub customer_id: CustomerId,
    /// Repeat purchase occasions.
    pub frequency: u32,
    /// First to last purchase, in time units.
    pub recency: f64,
    /// First purchase to observation end, in time units.
    #[serde(rename = "T")]
    pub t: f64,
    /// Mean revenue of repeat occasions.
    pub monetary_value: f64,
    /// Days since the last purchase.
    pub days_since_last: u32,
    /// Orders to date.
    pub orders: u32,
    /// Revenue to date.
    pub revenue: f64,
    /// Recency score 1–5 (5 = most recent).
    pub r_score: u8,
    /// Frequency score 1–5.
    pub f_score: u8,
    /// Monetary score 1–5.
    pub m_score: u8,
    /// Named segment; `None` for rows not scored (read from a per-customer summary table),
    /// written as an empty string.
    #[serde(serialize_with = "serialize_segment")]
    pub segment: Option<RfmSegment>,
}

/// The named RFM segments (rules in the module documentation). One byte per customer: the
/// segment's name as a `&'static str` took 16 bytes of every row of a table that has a row
/// per customer (0.4 GB at 26M customers, at the peak of a large report's CLV step).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RfmSegment {
    /// One order, R ≥ 4.
    New,
    /// R ≥ 4, F ≥ 4.
    Champions,
    /// R ≥ 3, F ≥ 3.
    Loyal,
    /// R ≥ 4.
    PotentialLoyalists,
    /// R ≤ 2, F ≥ 3.
    AtRisk,
    /// R = 2, F ≤ 2.
    Hibernating,
    /// R = 1, F ≤ 2.
    Lost,
    /// The rest.
    NeedsAttention,
}

impl RfmSegment {
    /// Every segment, in the order the rules try them.
    pub const ALL: [RfmSegment; 8] = [
        RfmSegment::New,
        RfmSegment::Champions,
        RfmSegment::Loyal,
        RfmSegment::PotentialLoyalists,
        RfmSegment::AtRisk,
        RfmSegment::Hibernating,
        RfmSegment::Lost,
        RfmSegment::NeedsAttention,
    ];

    /// The segment's name in reports (`potential_loyalists`).
    pub fn name(self) -> &'static str {
        match self {
            RfmSegment::New => "new",
            RfmSegment::Champions => "champions",
            RfmSegment::Loyal => "loyal",
            RfmSegment::PotentialLoyalists => "potential_loyalists",
            RfmSegment::AtRisk => "at_risk",
            RfmSegment::Hibernating => "hibernating",
            RfmSegment::Lost => "lost",
            RfmSegment::NeedsAttention => "needs_attention",
        }
    }
}

impl std::fmt::Display for RfmSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for RfmSegment {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// A row's segment as its name, or an empty string when the row was not scored.
fn serialize_segment<S: serde::Serializer>(
    segment: &Option<RfmSegment>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(segment.map_or("", RfmSegment::name))
}

/// RFM table plus segment sizes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rfm {
    /// Days per time unit of recency and T.
    pub time_unit_days: u32,
    /// One row per customer, by customer id.
    pub customers: Vec<RfmRow>,
    /// Customers per segment.
    pub segments: BTreeMap<String, u64>,
    /// Customers per RFM segment within each value of the first `--by` dimension (empty without
    /// one).
    pub by_segment: Vec<RfmSegmentCount>,
}

/// Customers of one RFM segment within one value of a `--by` dimension.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RfmSegmentCount {
    /// The dimension.
    pub dimension: String,
    /// Its value (`(none)` when blank).
    pub segment: String,
    /// The RFM segment.
    pub rfm_segment: String,
    /// Customers.
    pub customers: u64,
}

/// Quintile scores 1–5 of `values` where higher is better; ties share the lower score.
///
/// A value's score is `1 + ⌊5·b/n⌋`, where `b` is how many values are below it (the position
/// of its tie's first member in sorted order). That is at least `k + 1` exactly when
/// `b ≥ ⌈k·n/5⌉`, that is when the value is above the `⌈k·n/5⌉`-th smallest value. So four
/// order statistics (found by selection, in linear time) score every value: the sort of each
/// score's 2.6M values it replaces was a sixth of `rfm --store`. With a NaN among the values
/// (NaNs never tie, not even with themselves) the scores come from a sort instead.
fn quintiles(values: &[f64]) -> Vec<u8> {
    if values.par_iter().any(|v| v.is_nan()) {
        return quintiles_by_sort(values);
    }
    // -0.0 and 0.0 are equal, so they tie: one key for both.
    let key = |v: f64| total_order_key(if v == 0.0 { 0.0 } else { v });
    let n = values.len();
    let mut keys: Vec<u64> = Vec::new();
    values
        .par_iter()
        .map(|&v| key(v))
        .collect_into_vec(&mut keys);
    let mut cuts = [None; 4];
    let mut from = 0usize;
    for (k, cut) in (1..=4usize).zip(&mut cuts) {
        // The (⌈k·n/5⌉)-th smallest, at index ⌈k·n/5⌉ - 1; those below `from` are no larger.
        let Some(at) = (k * n).div_ceil(5).checked_sub(1) else {
            continue;
        };
        if let Some(rest) = keys.get_mut(from..) {
            let (_, &mut nth, _) = rest.select_nth_unstable(at - from);
            *cut = Some(nth);
        }
        from = at;
    }
    let mut scores = Vec::new();
    values
        .par_iter()
        .map(|&v| {
            let kv = key(v);
            1 + cuts.iter().filter(|c| c.is_some_and(|c| kv > c)).count() as u8
        })
        .collect_into_vec(&mut scores);
    scores
}

/// [`quintiles`] by sorting every value.
fn quintiles_by_sort(values: &[f64]) -> Vec<u8> {
    let n = values.len();
    // Sorted by a key in the order of `f64::total_cmp` held beside the index, not by indices
    // compared through `values` (a random read per comparison: 2.6M customers' three scores
    // were most of `rfm`'s sorting time). Ties share a score whatever their order, so an
    // unstable parallel sort will do.
    let mut order: Vec<(u64, usize)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (total_order_key(*v), i))
        .collect();
    order.par_sort_unstable();
    let mut scores = vec![1u8; n];
    let mut first_of_tie = 0usize;
    for (pos, &(_, i)) in order.iter().enumerate() {
        if pos > 0 {
            let prev = order.get(pos - 1).and_then(|&(_, j)| values.get(j));
            if prev != values.get(i) {
                first_of_tie = pos;
            }
        }
        if let Some(s) = scores.get_mut(i) {
            *s = 1 + (first_of_tie * 5 / n.max(1)) as u8;
        }
    }
    scores
}

/// A `u64` whose order is `f64::total_cmp`'s: negative numbers (sign bit set) have every bit
/// flipped, the others only the sign bit.
fn total_order_key(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// The segment names, in the order `segment` numbers them.
const SEGMENTS: [RfmSegment; 8] = RfmSegment::ALL;

/// The segment of a customer, as an index into [`SEGMENTS`].
fn segment(r: u8, f: u8, orders: u32) -> usize {
    match (r, f) {
        _ if orders <= 1 && r >= 4 => 0,
        (4..=5, 4..=5) => 1,
        (3..=5, 3..=5) => 2,
        (4..=5, _) => 3,
        (1..=2, 3..=5) => 4,
        (2, _) => 5,
        (1, _) => 6,
        _ => 7,
    }
}

/// Computes the RFM table from the summaries.
pub fn rfm(s: &Summaries, time_unit_days: u32) -> Rfm {
    rfm_table(s, time_unit_days, true)
}

/// The segment counts of [`rfm`] without the row per customer (`customers` is empty): what a
/// report shows unless asked for every customer, without a copy of every id.
pub fn rfm_segments(s: &Summaries, time_unit_days: u32) -> Rfm {
    rfm_table(s, time_unit_days, false)
}

fn rfm_table(s: &Summaries, time_unit_days: u32, with_customers: bool) -> Rfm {
    let unit = f64::from(time_unit_days.max(1));
    let end = s.as_of_day();
    // Each score's values are made for its quintiles only and released before the next (at
    // 26M customers each is 0.2 GB, beside the customer rows and the table being built).
    let scores_of = |value: &(dyn Fn(&CustomerRow) -> f64 + Sync)| {
        let mut values = Vec::new();
        s.customers
            .par_iter()
            .map(value)
            .collect_into_vec(&mut values);
        quintiles(&values)
    };
    let rs = scores_of(&|c| -f64::from(end - c.last_day));
    let fs = scores_of(&|c| f64::from(c.orders));
    let ms = scores_of(&|c| c.revenue);
    let scores = |i: usize| {
        (
            rs.get(i).copied().unwrap_or(1),
            fs.get(i).copied().unwrap_or(1),
            ms.get(i).copied().unwrap_or(1),
        )
    };
    // Counted in an array per segment (a map entry per customer was a visible part of `rfm` on
    // millions of customers), by slices of customers on every core, then added up; the rows
    // are built in parallel.
    let named = |seg: usize| SEGMENTS.get(seg).copied();
    let name = |seg: usize| named(seg).map_or("", RfmSegment::name);
    // By group, then by segment name (the order of the JSON and the tables).
    type Counts<'a> = (
        [u64; SEGMENTS.len()],
        BTreeMap<(&'a str, &'static str), u64>,
    );
    let (segments, by): Counts<'_> = s
        .customers
        .par_iter()
        .enumerate()
        .fold(
            || ([0u64; SEGMENTS.len()], BTreeMap::new()),
            |(mut segments, mut by): Counts<'_>, (i, c)| {
                let (r, f, _) = scores(i);
                let seg = segment(r, f, c.orders);
                if let Some(n) = segments.get_mut(seg) {
                    *n += 1;
                }
                if !s.by.is_empty() {
                    let group = c
                        .segments
                        .first()
                        .and_then(|v| v.as_deref())
                        .filter(|v| !v.trim().is_empty())
                        .unwrap_or("(none)");
                    *by.entry((group, name(seg))).or_insert(0) += 1;
                }
                (segments, by)
            },
        )
        .reduce(
            || ([0u64; SEGMENTS.len()], BTreeMap::new()),
            |(mut segments, mut by), (more, more_by)| {
                for (n, m) in segments.iter_mut().zip(more) {
                    *n += m;
                }
                for (key, n) in more_by {
                    *by.entry(key).or_insert(0) += n;
                }
                (segments, by)
            },
        );
    let mut customers = Vec::new();
    if with_customers {
        s.customers
            .par_iter()
            .enumerate()
            .map(|(i, c)| {
                let frequency = c.purchase_days.saturating_sub(1);
                let (r, f, m) = scores(i);
                RfmRow {
                    customer_id: c.customer_id.clone(),
                    frequency,
                    recency: f64::from(c.last_day - c.first_day) / unit,
                    t: f64::from(end - c.first_day) / unit,
                    monetary_value: if frequency > 0 {
                        money_mean_of_difference(c.revenue, c.first_day_revenue, frequency)
                    } else {
                        0.0
                    },
                    days_since_last: (end - c.last_day).max(0) as u32,
                    orders: c.orders,
                    revenue: c.revenue,
                    r_score: r,
                    f_score: f,
                    m_score: m,
                    segment: named(segment(r, f, c.orders)),
                }
            })
            .collect_into_vec(&mut customers);
    }
    Rfm {
        time_unit_days,
        customers,
        segments: (0..SEGMENTS.len())
            .filter_map(|seg| {
                let n = segments.get(seg).copied().unwrap_or(0);
                (n > 0).then(|| (name(seg).to_string(), n))
            })
            .collect(),
        by_segment: by
            .into_iter()
            .map(|((segment, rfm_segment), customers)| RfmSegmentCount {
                dimension: s.by.first().cloned().unwrap_or_default(),
                segment: segment.to_string(),
                rfm_segment: rfm_segment.to_string(),
                customers,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::retention::tests::fixture;

    #[test]
    fn model_convention_by_hand() {
        // Customer a: purchases Jan 1, Feb 1, Mar 1 2024 (10 each), as of Mar 31.
        let r = rfm(&fixture(), 1);
        let a = &r.customers[0];
        assert_eq!(a.frequency, 2);
        assert_eq!(a.recency, 60.0); // Jan 1 → Mar 1 (leap year)
        assert_eq!(a.t, 90.0);
        assert_eq!(a.monetary_value, 10.0);
        let c = &r.customers[2];
        assert_eq!((c.frequency, c.monetary_value), (0, 0.0));
        assert_eq!(r.segments.values().sum::<u64>(), 4);
        // The counts-only table is the same table without its rows.
        let counts = rfm_segments(&fixture(), 1);
        assert!(counts.customers.is_empty());
        assert_eq!(
            Rfm {
                customers: vec![],
                ..r
            },
            counts
        );
    }

    #[test]
    fn monetary_value_is_exact_to_the_cent() {
        // Subtracting the floats gives 41.989999999999995 and 104.95599999999999.
        assert_eq!(money_mean_of_difference(106.77, 64.78, 1), 41.99);
        assert_eq!(money_mean_of_difference(595.78, 70.998, 5), 104.9564);
        assert_eq!(money_mean_of_difference(10.0, 10.0, 0), 0.0);
    }

    #[test]
    fn segment_counts_by_group_come_in_name_order() {
        let mut s = fixture();
        s.by = vec!["region".into()];
        for (c, region) in s.customers.iter_mut().zip(["north", "north", " ", "north"]) {
            c.segments = Box::new([Some(region.to_string())]);
        }
        let r = rfm(&s, 1);
        let rows: Vec<(&str, &str, u64)> = r
            .by_segment
            .iter()
            .map(|g| (g.segment.as_str(), g.rfm_segment.as_str(), g.customers))
            .collect();
        let named = |id: &str| {
            r.customers
                .iter()
                .find(|c| c.customer_id == id)
                .map(|c| c.segment.map(|s| s.to_string()).unwrap_or_default())
                .unwrap()
        };
        // A blank value is "(none)"; within a group, RFM segments sort by name.
        let mut north: Vec<String> = ["a", "b", "d"].iter().map(|id| named(id)).collect();
        north.sort();
        north.dedup();
        let expected_north: Vec<&str> = rows
            .iter()
            .filter(|(g, _, _)| *g == "north")
            .map(|(_, seg, _)| *seg)
            .collect();
        assert_eq!(expected_north, north);
        assert_eq!(rows.first().map(|r| r.0), Some("(none)"));
        assert_eq!(rows.iter().map(|r| r.2).sum::<u64>(), 4);
        assert_eq!(r.segments.values().sum::<u64>(), 4);
        assert!(r.segments.keys().is_sorted());
    }

    proptest::proptest! {
        /// Selection scores as the sort does, ties (zeros of both signs among them) included.
        #[test]
        fn quintiles_by_selection_are_those_of_the_sort(
            values in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::Strategy::prop_map(-4i32..12, f64::from),
                    proptest::prelude::Just(-0.0),
                    -1e6f64..1e6,
                    proptest::prelude::Just(f64::INFINITY),
                ],
                0..120,
            ),
        ) {
            proptest::prop_assert_eq!(quintiles(&values), quintiles_by_sort(&values));
        }
    }

    #[test]
    fn total_order_keys_sort_as_total_cmp() {
        let mut values = vec![
            3.5,
            -0.0,
            0.0,
            -2.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e-300,
            -1e-300,
            f64::NAN,
            7.0,
        ];
        let mut by_key = values.clone();
        by_key.sort_by_key(|v| total_order_key(*v));
        values.sort_by(f64::total_cmp);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&by_key), bits(&values));
    }

    #[test]
    fn a_row_holds_its_segment_in_a_byte() {
        // Id (24), four f64 (32), three u32 (12), three scores and the segment (4).
        assert_eq!(std::mem::size_of::<RfmRow>(), 72);
        assert_eq!(
            serde_json::to_value(RfmSegment::PotentialLoyalists).unwrap(),
            "potential_loyalists"
        );
    }

    #[test]
    fn quintiles_share_ties() {
        assert_eq!(quintiles(&[1.0, 1.0, 1.0, 5.0, 9.0]), vec![1, 1, 1, 4, 5]);
        assert_eq!(quintiles(&[0.0, -0.0, 2.0]), vec![1, 1, 4]);
        assert_eq!(quintiles(&[7.0]), vec![1]);
        assert!(quintiles(&[]).is_empty());
        assert_eq!(
            quintiles(&[f64::NAN, 1.0, f64::NAN]),
            quintiles_by_sort(&[f64::NAN, 1.0, f64::NAN])
        );
        assert_eq!(quintiles(&[3.0, 1.0, 2.0, 5.0, 4.0]), vec![3, 1, 2, 5, 4]);
    }
}
