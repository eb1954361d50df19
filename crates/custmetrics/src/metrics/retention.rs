//! Retention: period-over-period customer retention, cohort triangles, and revenue retention.
//!
//! **Definitions** (A_p = customers with a purchase in period p):
//! - S = |A_{p−1}| (customers at the start), E = |A_p| (at the end), N = customers whose first
//!   purchase (or acquisition) is in p, R = |A_p ∩ A_{p−1}| (retained).
//! - CRR = (E − N) / S, the textbook customer retention rate (Kumar & Reinartz, *Customer
//!   Relationship Management*, 2018, ch. 5). It counts reactivated customers as retained and can
//!   therefore exceed 1.
//! - reactivated: customers active in p, not in p−1 but in an earlier period, and not new in p.
//!   It is counted, not derived as E − N − R: with signup dates from the customers table a
//!   customer who bought before signing up is both new and retained in the signup period, and
//!   one whose first purchase follows the signup period is none of the three.
//! - retention_rate = R / S and churn_rate = (S − R) / S: computed from the same active sets, so
//!   retention + churn = 1 exactly; on a closed population (no new or returning customers)
//!   retention_rate = CRR.
//! - Cohort triangle (classic / "N-day" retention in Amplitude's terms): cohort = period of the
//!   first purchase (or of the acquisition date from the customers table); for offset k, active =
//!   |cohort ∩ A_{cohort+k}|, rate = active / cohort size. Unbounded ("on or after") retention:
//!   customers of the cohort active in cohort+k or any later period. Revenue retention:
//!   revenue of the cohort in cohort+k / revenue in cohort+0.
//! - NRR_p = Σ_{c∈A_{p−1}} rev_p(c) / Σ_{c∈A_{p−1}} rev_{p−1}(c); GRR_p the same with
//!   rev_p(c) capped at rev_{p−1}(c) (expansion excluded), as in SaaS reporting (e.g. the
//!   KeyBanc SaaS survey definitions).
//!
//! **Edge cases**: the first period has no S and no rates (null); offsets past the observation end
//! are not reported (they would read as 0% retention); cohorts with zero first-period revenue have
//! no revenue retention (null).

use serde::Serialize;

use crate::money::{from_micros, to_micros};
use crate::period::Period;
use crate::summary::{ActivityRow, ActivityVisit, Summaries};

/// One period's retention figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodRetention {
    /// Period label (`2024-03`).
    pub period: String,
    /// Segment value when split by a dimension.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// S: customers active in the previous period.
    pub customers_start: u64,
    /// E: customers active in this period.
    pub customers_end: u64,
    /// N: new customers in this period.
    pub new_customers: u64,
    /// R: customers active in both periods.
    pub retained: u64,
    /// Customers active now and in an earlier period, but not in the previous one, who are
    /// not new in this period.
    pub reactivated: u64,
    /// (E − N) / S.
    pub crr: Option<f64>,
    /// R / S.
    pub retention_rate: Option<f64>,
    /// (S − R) / S = 1 − retention_rate.
    pub churn_rate: Option<f64>,
    /// Net revenue retention.
    pub nrr: Option<f64>,
    /// Gross revenue retention.
    pub grr: Option<f64>,
}

/// One cell of a cohort triangle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortCell {
    /// Cohort label (period of first purchase).
    pub cohort: String,
    /// Segment value when split by a dimension.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// Periods since the cohort period.
    pub offset: u32,
    /// Cohort size.
    pub customers: u64,
    /// Customers of the cohort active in cohort + offset.
    pub active: u64,
    /// active / customers.
    pub rate: f64,
    /// Customers active in cohort + offset or later, / customers.
    pub unbounded_rate: f64,
    /// Cohort revenue in cohort + offset.
    pub revenue: f64,
    /// revenue / revenue at offset 0.
    pub revenue_retention: Option<f64>,
}

/// Retention results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Retention {
    /// The period length.
    pub period: String,
    /// Per-period figures, oldest first (all customers, then per segment when split).
    pub periods: Vec<PeriodRetention>,
    /// The cohort triangle, by cohort then offset.
    pub cohorts: Vec<CohortCell>,
}

/// A customer's value of the first `by` dimension.
fn segment_of(c: &crate::summary::CustomerRow) -> Option<&str> {
    c.segments.first().and_then(|v| v.as_deref())
}

/// Computes retention from the stage-1 summaries.
///
/// `cohort_of[i]` is the acquisition period of `s.customers[i]` when known (from the customers
/// table; the slice may be shorter, or empty); otherwise the period of the first purchase is
/// used. When the summaries were built with `by` dimensions, the first one splits the figures.
pub fn retention(s: &Summaries, cohort_of: &[Option<i32>]) -> Retention {
    let Ok(r) = retention_of(s, s.activity.as_slice(), cohort_of);
    r
}

/// The counts of one visit of the activity rows: at most this many bytes of counts (all
/// customers' and each segment's) are filled per visit. Monthly counts over years are a few
/// kB each, so one visit fills every segment's; daily ones can be MBs, and then a
/// segment-rich split reads the rows (from disk, when spilled) more than once.
const COUNTS_PER_VISIT_BYTES: usize = 256 << 20;

/// [`retention`] with the activity rows read from `rows` (the summaries' own, or spilled by a
/// merge of partitions).
pub(crate) fn retention_of<A: ActivityVisit + ?Sized>(
    s: &Summaries,
    rows: &A,
    cohort_of: &[Option<i32>],
) -> Result<Retention, A::Error> {
    retention_in_visits(s, rows, cohort_of, COUNTS_PER_VISIT_BYTES)
}

/// [`retention_of`], filling at most `budget` bytes of counts per visit of the rows.
fn retention_in_visits<A: ActivityVisit + ?Sized>(
    s: &Summaries,
    rows: &A,
    cohort_of: &[Option<i32>],
    budget: usize,
) -> Result<Retention, A::Error> {
    let end = s.as_of_period();
    let mut cohorts = s.first_purchase_periods();
    for (cohort, known) in cohorts.iter_mut().zip(cohort_of) {
        if let Some(known) = known {
            *cohort = *known;
        }
    }
    // Every slot of the counts starts at the earliest period a customer is dated by.
    let lo = rows
        .min_period()
        .into_iter()
        .chain(cohorts.iter().copied())
        .filter(|&p| p <= end)
        .min()
        .unwrap_or(end);
    // Each customer's segment as an index into the sorted distinct values, so that the
    // per-row filter compares integers (it used to clone the segment string per row).
    let mut values: Vec<&str> = Vec::new();
    let mut code: Vec<Option<usize>> = Vec::new();
    if !s.by.is_empty() {
        values = s.customers.iter().filter_map(segment_of).collect();
        values.sort_unstable();
        values.dedup();
        code = s
            .customers
            .iter()
            .map(|c| segment_of(c).and_then(|v| values.binary_search(&v).ok()))
            .collect();
    }
    // Group 0 is every customer, group k + 1 the customers of segment k; as many groups as fit
    // are counted per visit of the rows, in group order.
    let groups = values.len() + 1;
    let per_visit = (budget / RetentionCounts::new(lo, end).bytes().max(1)).clamp(1, groups);
    let mut r = Retention {
        period: s.period.name().into(),
        periods: Vec::new(),
        cohorts: Vec::new(),
    };
    let mut period_rows: Vec<PeriodActivity> = Vec::new();
    for first in (0..groups).step_by(per_visit) {
        let batch = first..(first + per_visit).min(groups);
        let mut counts: Vec<RetentionCounts> = batch
            .clone()
            .map(|_| RetentionCounts::new(lo, end))
            .collect();
        rows.visit(s.customers.len(), &mut |customer, own| {
            let Some(&cohort) = cohorts.get(customer) else {
                return;
            };
            let segment = code.get(customer).copied().flatten().map(|k| k + 1);
            let wanted = [Some(0), segment]
                .into_iter()
                .flatten()
                .filter(|g| batch.contains(g));
            period_rows.clear();
            period_rows.extend(own.iter().map(PeriodActivity::from));
            for g in wanted {
                if let Some(c) = counts.get_mut(g - first) {
                    c.add_customer(cohort, &period_rows);
                }
            }
        })?;
        for (g, c) in batch.zip(&counts) {
            let segment = g.checked_sub(1).and_then(|k| values.get(k)).copied();
            let (p, c) = c.figures(s.period, segment);
            r.periods.extend(p);
            r.cohorts.extend(c);
        }
    }
    Ok(r)
}

impl Retention {
    /// The figures of one group of customers' counts.
    pub(crate) fn from_counts(counts: &RetentionCounts, period: Period) -> Retention {
        let (periods, cohorts) = counts.figures(period, None);
        Retention {
            period: period.name().into(),
            periods,
            cohorts,
        }
    }
}

/// One customer's purchases and refunds in one period, money in millionths (the input of
/// [`RetentionCounts::add_customer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeriodActivity {
    /// Period index.
    pub period: i32,
    /// Purchases (0: refunds only, not active).
    pub orders: u32,
    /// Net revenue in millionths.
    pub revenue: i64,
}

impl From<&ActivityRow> for PeriodActivity {
    fn from(a: &ActivityRow) -> Self {
        PeriodActivity {
            period: a.period,
            orders: a.orders,
            // Exact: stage 1 wrote the revenue from millionths.
            revenue: to_micros(a.revenue),
        }
    }
}

/// What one period's figures are computed from: customers and money, summed over customers.
#[derive(Debug, Default, Clone, Copy)]
struct PeriodCounts {
    /// E: customers active in the period.
    active: u64,
    /// R: of those, active in the previous period too.
    retained: u64,
    /// N: customers whose cohort is the period.
    new: u64,
    /// Customers active in the period, not in the previous one but in an earlier one, who are
    /// not new in it.
    reactivated: u64,
    /// Revenue in the previous period of the customers active in it (NRR's denominator).
    prev_revenue: i64,
    /// Revenue in the period of the customers active in the previous one.
    kept_revenue: i64,
    /// The same, each customer's capped at their previous period's revenue.
    kept_revenue_capped: i64,
}

/// The cohort × period counts of one group of customers, from which every retention figure
/// is computed. Customers are added one at a time, in any order, and two counts merge by
/// adding: the counts are integers (money in millionths), so the figures do not depend on the
/// order of the customers or on how they were split (customer partitions, threads), and money
/// sums print as the cents they are.
#[derive(Debug, Clone)]
pub(crate) struct RetentionCounts {
    /// The earliest period slot (no customer is dated before it).
    lo: i32,
    /// The period of the observation end.
    end: i32,
    /// Slot `p − lo` for periods `lo..=end`.
    periods: Vec<PeriodCounts>,
    /// The earliest period with an active customer.
    first_active: Option<i32>,
    /// Customers per cohort slot.
    cohort_sizes: Vec<u64>,
    /// (cohort, offset) cells, cohort by cohort: active customers and revenue.
    cells: Vec<(u64, i64)>,
    /// Customers per (cohort, offset) whose last active offset is that one.
    last_active: Vec<u64>,
}

impl RetentionCounts {
    /// Empty counts for periods `lo..=end` (`lo` at most every period and cohort added).
    pub(crate) fn new(lo: i32, end: i32) -> RetentionCounts {
        let lo = lo.min(end);
        let n = (i64::from(end) - i64::from(lo) + 1) as usize;
        let cells = Self::first_cell(n, n);
        RetentionCounts {
            lo,
            end,
            periods: vec![PeriodCounts::default(); n],
            first_active: None,
            cohort_sizes: vec![0; n],
            cells: vec![(0, 0); cells],
            last_active: vec![0; cells],
        }
    }

    /// The memory the counts hold, in bytes (to bound how many are filled at once).
    fn bytes(&self) -> usize {
        self.periods.len() * std::mem::size_of::<PeriodCounts>()
            + self.cohort_sizes.len() * 8
            + self.cells.len() * (std::mem::size_of::<(u64, i64)>() + 8)
    }

    /// The periods the counts have slots for, `lo..=end`.
    #[cfg(test)]
    pub(crate) fn periods(&self) -> (i32, i32) {
        (self.lo, self.end)
    }

    /// The first cell of cohort slot `j` of `n`: cohort slot j has offsets 0..n−j.
    fn first_cell(j: usize, n: usize) -> usize {
        j * n - j * j.saturating_sub(1) / 2
    }

    fn slot(&self, period: i32) -> Option<usize> {
        usize::try_from(i64::from(period) - i64::from(self.lo)).ok()
    }

    /// Adds one customer: its cohort period and its activity, sorted by period.
    pub(crate) fn add_customer(&mut self, cohort: i32, rows: &[PeriodActivity]) {
        let n = self.periods.len();
        // The cohort's cells: the first one, and how many offsets it has (none when the
        // cohort is after the observation end).
        let cohort_cells = self
            .slot(cohort)
            .filter(|&j| j < n)
            .map(|j| (j, Self::first_cell(j, n), n - j));
        if let Some(size) = cohort_cells.and_then(|(j, _, _)| self.cohort_sizes.get_mut(j)) {
            *size += 1;
        }
        // The previous row, when the customer was active in it: (period, revenue).
        let mut previous: Option<(i32, i64)> = None;
        let mut last_cell: Option<usize> = None;
        let mut was_active = false;
        for r in rows.iter().take_while(|r| r.period <= self.end) {
            let after_active = previous.filter(|&(p, _)| p + 1 == r.period);
            let slot = self.slot(r.period);
            let active = r.orders > 0;
            if !active {
                // Refunds only: the customer is not active in this period, and the money
                // given back counts against the revenue kept from the previous period.
                if after_active.is_some()
                    && let Some(e) = slot.and_then(|j| self.periods.get_mut(j))
                {
                    e.kept_revenue += r.revenue;
                }
                previous = None;
            } else {
                self.first_active = Some(self.first_active.map_or(r.period, |f| f.min(r.period)));
                if let Some(e) = slot.and_then(|j| self.periods.get_mut(j)) {
                    e.active += 1;
                    if cohort == r.period {
                        e.new += 1;
                    }
                    if let Some((_, before)) = after_active {
                        e.retained += 1;
                        e.kept_revenue += r.revenue;
                        e.kept_revenue_capped += r.revenue.min(before).max(0);
                    } else if was_active && cohort != r.period {
                        e.reactivated += 1;
                    }
                }
                was_active = true;
                if r.period < self.end
                    && let Some(next) = slot.and_then(|j| self.periods.get_mut(j + 1))
                {
                    next.prev_revenue += r.revenue;
                }
                previous = Some((r.period, r.revenue));
            }
            // Activity before an acquisition date from the customers table is not cohort
            // activity.
            let offset = usize::try_from(i64::from(r.period) - i64::from(cohort)).ok();
            if let (Some((_, first, offsets)), Some(k)) = (cohort_cells, offset)
                && k < offsets
                && let Some(cell) = self.cells.get_mut(first + k)
            {
                cell.1 += r.revenue;
                if active {
                    cell.0 += 1;
                    last_cell = Some(first + k);
                }
            }
        }
        // Rows are in period order: the last active cell is the last active offset's.
        if let Some(n) = last_cell.and_then(|c| self.last_active.get_mut(c)) {
            *n += 1;
        }
    }

    /// Adds `other`'s customers (counts of the same periods).
    pub(crate) fn merge(&mut self, other: &RetentionCounts) {
        debug_assert_eq!((self.lo, self.end), (other.lo, other.end));
        for (a, b) in self.periods.iter_mut().zip(&other.periods) {
            a.active += b.active;
            a.retained += b.retained;
            a.new += b.new;
            a.reactivated += b.reactivated;
            a.prev_revenue += b.prev_revenue;
            a.kept_revenue += b.kept_revenue;
            a.kept_revenue_capped += b.kept_revenue_capped;
        }
        self.first_active = match (self.first_active, other.first_active) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for (a, b) in self.cohort_sizes.iter_mut().zip(&other.cohort_sizes) {
            *a += b;
        }
        for (a, b) in self.cells.iter_mut().zip(&other.cells) {
            a.0 += b.0;
            a.1 += b.1;
        }
        for (a, b) in self.last_active.iter_mut().zip(&other.last_active) {
            *a += b;
        }
    }

    /// The per-period figures and the cohort triangle (see the module's definitions).
    pub(crate) fn figures(
        &self,
        period: Period,
        segment: Option<&str>,
    ) -> (Vec<PeriodRetention>, Vec<CohortCell>) {
        (
            self.period_figures(period, segment),
            self.triangle(period, segment),
        )
    }

    fn period_figures(&self, period: Period, segment: Option<&str>) -> Vec<PeriodRetention> {
        let Some(first) = self.first_active else {
            return Vec::new();
        };
        let counts = |p: i32| {
            self.slot(p)
                .and_then(|j| self.periods.get(j))
                .copied()
                .unwrap_or_default()
        };
        let ratio = |num: f64, den: f64| if den > 0.0 { Some(num / den) } else { None };
        (first..=self.end)
            .map(|p| {
                let e = counts(p);
                let start = (p != first).then(|| counts(p - 1).active);
                let s_count = start.unwrap_or(0);
                let rev_ratio = |num: i64| {
                    (e.prev_revenue > 0).then(|| from_micros(num) / from_micros(e.prev_revenue))
                };
                PeriodRetention {
                    period: period.label(p),
                    segment: segment.map(str::to_string),
                    customers_start: s_count,
                    customers_end: e.active,
                    new_customers: e.new,
                    retained: e.retained,
                    reactivated: e.reactivated,
                    crr: start.and_then(|st| ratio(e.active as f64 - e.new as f64, st as f64)),
                    retention_rate: start.and_then(|st| ratio(e.retained as f64, st as f64)),
                    churn_rate: start
                        .and_then(|st| ratio(st.saturating_sub(e.retained) as f64, st as f64)),
                    nrr: start.and_then(|_| rev_ratio(e.kept_revenue)),
                    grr: start.and_then(|_| rev_ratio(e.kept_revenue_capped)),
                }
            })
            .collect()
    }

    fn triangle(&self, period: Period, segment: Option<&str>) -> Vec<CohortCell> {
        let n = self.periods.len();
        let mut out = Vec::new();
        for (j, &customers) in self.cohort_sizes.iter().enumerate() {
            if customers == 0 {
                continue;
            }
            let cells = Self::first_cell(j, n)..Self::first_cell(j + 1, n);
            let (Some(row), Some(last_active)) =
                (self.cells.get(cells.clone()), self.last_active.get(cells))
            else {
                continue;
            };
            let cohort = self.lo + j as i32;
            let base_revenue = row.first().map_or(0, |c| c.1);
            // Suffix sums: customers active at offset k or later.
            let mut reached = last_active.to_vec();
            let mut later = 0;
            for r in reached.iter_mut().rev() {
                *r += later;
                later = *r;
            }
            for (k, (&(active, revenue), &reached)) in row.iter().zip(&reached).enumerate() {
                out.push(CohortCell {
                    cohort: period.label(cohort),
                    segment: segment.map(str::to_string),
                    offset: k as u32,
                    customers,
                    active,
                    rate: active as f64 / customers as f64,
                    unbounded_rate: reached as f64 / customers as f64,
                    revenue: from_micros(revenue),
                    revenue_retention: (base_revenue > 0)
                        .then(|| from_micros(revenue) / from_micros(base_revenue)),
                });
            }
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::period::Period;
    use crate::summary::{ActivityRow, CustomerRow};
    use chrono::NaiveDate;

    /// Four customers, months 0..=2 of 2024 (index m = 2024·12 + month0):
    /// a: Jan, Feb, Mar   b: Jan, Mar   c: Jan   d: Feb (new in Feb)
    pub(crate) fn fixture() -> Summaries {
        let jan = 2024 * 12;
        let rows = [
            ("a", vec![0, 1, 2]),
            ("b", vec![0, 2]),
            ("c", vec![0]),
            ("d", vec![1]),
        ];
        let mut customers = Vec::new();
        let mut activity = Vec::new();
        for (i, (id, months)) in rows.iter().enumerate() {
            let first = Period::Month.start(jan + months[0]);
            let last = Period::Month.start(jan + months[months.len() - 1]);
            let day = |d: NaiveDate| crate::period::days_since_epoch(d);
            customers.push(CustomerRow {
                customer_id: (*id).into(),
                first_day: day(first),
                last_day: day(last),
                orders: months.len() as u32,
                purchase_days: months.len() as u32,
                revenue: 10.0 * months.len() as f64,
                first_day_revenue: 10.0,
                segments: Box::default(),
            });
            for &m in months {
                activity.push(ActivityRow {
                    customer: i as u32,
                    period: jan + m,
                    revenue: 10.0,
                    orders: 1,
                });
            }
        }
        Summaries {
            customers,
            activity,
            gaps: vec![],
            period: Period::Month,
            as_of: NaiveDate::from_ymd_opt(2024, 3, 31).unwrap(),
            by: vec![],
        }
    }

    #[test]
    fn period_retention_by_hand() {
        let r = retention(&fixture(), &[]);
        let feb = &r.periods[1];
        // Jan active {a,b,c} = S 3; Feb active {a,d} = E 2; new {d} = N 1; retained {a} = 1.
        assert_eq!(
            (
                feb.customers_start,
                feb.customers_end,
                feb.new_customers,
                feb.retained
            ),
            (3, 2, 1, 1)
        );
        assert_eq!(feb.crr, Some(1.0 / 3.0));
        assert_eq!(feb.retention_rate, Some(1.0 / 3.0));
        assert_eq!(feb.churn_rate, Some(2.0 / 3.0));
        // NRR: Jan revenue of {a,b,c} = 30, of which a brings 10 into Feb.
        assert_eq!(feb.nrr, Some(10.0 / 30.0));
        let mar = &r.periods[2];
        // Feb {a,d} → Mar {a,b}: retained a; b is reactivated; CRR = (2 − 0)/2 = 1 > retention 0.5.
        assert_eq!((mar.retained, mar.reactivated), (1, 1));
        assert_eq!(mar.crr, Some(1.0));
        assert_eq!(mar.retention_rate, Some(0.5));
        assert_eq!(r.periods[0].crr, None);
    }

    #[test]
    fn segments_partition_the_overall_figures() {
        // a, b in segment x; c, d in y: per period and per triangle cell, the segments' counts
        // add up to the overall ones, and x alone matches a hand count (Feb: a active, retained).
        let mut s = fixture();
        s.by = vec!["seg".into()];
        for (c, v) in s.customers.iter_mut().zip(["x", "x", "y", "y"]) {
            c.segments = Box::new([Some(v.to_string())]);
        }
        let r = retention(&s, &[]);
        let overall: Vec<&PeriodRetention> =
            r.periods.iter().filter(|p| p.segment.is_none()).collect();
        for p in &overall {
            let parts = r
                .periods
                .iter()
                .filter(|q| q.period == p.period && q.segment.is_some());
            let (end, new, retained) = parts.fold((0, 0, 0), |(e, n, k), q| {
                (e + q.customers_end, n + q.new_customers, k + q.retained)
            });
            assert_eq!(
                (end, new, retained),
                (p.customers_end, p.new_customers, p.retained)
            );
        }
        let x_feb = r
            .periods
            .iter()
            .find(|p| p.segment.as_deref() == Some("x") && p.period == "2024-02")
            .unwrap();
        assert_eq!(
            (x_feb.customers_start, x_feb.customers_end, x_feb.retained),
            (2, 1, 1)
        );
        for c in r.cohorts.iter().filter(|c| c.segment.is_none()) {
            let active: u64 = r
                .cohorts
                .iter()
                .filter(|d| d.segment.is_some() && d.cohort == c.cohort && d.offset == c.offset)
                .map(|d| d.active)
                .sum();
            assert_eq!(active, c.active, "{} +{}", c.cohort, c.offset);
        }
    }

    #[test]
    fn segments_counted_a_few_at_a_time_give_the_same_figures() {
        // Three segments and the whole: one visit of the rows (the default budget), one per
        // group, and two groups per visit (a last visit with one).
        let mut s = fixture();
        s.by = vec!["seg".into()];
        for (c, v) in s
            .customers
            .iter_mut()
            .zip([Some("x"), Some("z"), None, Some("y")])
        {
            c.segments = Box::new([v.map(String::from)]);
        }
        let r = retention(&s, &[]);
        // Three months for the whole, x and z; y's one customer first buys in February.
        assert_eq!(r.periods.len(), 3 * 3 + 2);
        let one = RetentionCounts::new(2024 * 12, 2024 * 12 + 2).bytes();
        for budget in [1, 2 * one] {
            let Ok(again) = retention_in_visits(&s, s.activity.as_slice(), &[], budget);
            assert_eq!(again, r, "{budget} bytes a visit");
        }
    }

    #[test]
    fn triangle_by_hand() {
        let r = retention(&fixture(), &[]);
        let jan: Vec<&CohortCell> = r.cohorts.iter().filter(|c| c.cohort == "2024-01").collect();
        // Jan cohort {a,b,c}: offset 1 active {a} = 1/3, offset 2 active {a,b} = 2/3.
        assert_eq!(
            jan.iter().map(|c| c.active).collect::<Vec<_>>(),
            vec![3, 1, 2]
        );
        // Unbounded: offset 1 → active in Feb or later {a,b} = 2/3.
        assert_eq!(jan[1].unbounded_rate, 2.0 / 3.0);
        assert_eq!(jan[2].revenue_retention, Some(20.0 / 30.0));
        // Feb cohort {d}: offsets 0 and 1 only (March is the last period).
        let feb: Vec<&CohortCell> = r.cohorts.iter().filter(|c| c.cohort == "2024-02").collect();
        assert_eq!(feb.len(), 2);
        assert_eq!(feb[1].rate, 0.0);
    }

    #[test]
    fn signup_cohorts_count_each_kind_of_customer_once() {
        // Signup periods from a customers table: a signed up in Feb after buying in Jan
        // (guest checkout), b in Jan before buying in Mar, c and d with no signup date.
        // a: Jan, Feb, Mar   b: Jan, Mar   c: Jan   d: Feb
        let jan = 2024 * 12;
        let mut s = fixture();
        // b's purchases move to Mar only: signed up in Jan, first bought in Mar.
        s.activity.retain(|a| !(a.customer == 1 && a.period == jan));
        let r = retention(&s, &[Some(jan + 1), Some(jan), None, None]);
        let feb = &r.periods[1];
        // Feb: E {a,d} = 2; new {a (signup), d (first purchase)} = 2; retained {a}; a is
        // both new and retained, so E − N − R would be −1: reactivated is counted, 0.
        assert_eq!(
            (
                feb.customers_end,
                feb.new_customers,
                feb.retained,
                feb.reactivated
            ),
            (2, 2, 1, 0)
        );
        let mar = &r.periods[2];
        // Mar: E {a,b}; new none; retained {a}; b's first purchase, two periods after its
        // signup, is not a comeback: reactivated 0 (E − N − R would say 1).
        assert_eq!(
            (
                mar.customers_end,
                mar.new_customers,
                mar.retained,
                mar.reactivated
            ),
            (2, 0, 1, 0)
        );
        // The fixture's own b, back in Mar after Jan, is reactivated.
        let r = retention(&fixture(), &[Some(jan + 1), Some(jan), None, None]);
        assert_eq!(r.periods[2].reactivated, 1);
    }

    proptest::proptest! {
        /// Without acquisition dates, every customer active in a period is exactly one of new,
        /// retained or reactivated.
        #[test]
        fn new_retained_and_reactivated_partition_the_active_customers(
            months in proptest::collection::vec(
                proptest::collection::btree_set(0i32..12, 1..6), 1..30),
        ) {
            let jan = 2024 * 12;
            let mut s = fixture();
            s.customers.truncate(0);
            s.activity.clear();
            for (i, set) in months.iter().enumerate() {
                let mut c = fixture().customers[0].clone();
                c.customer_id = format!("c{i}").as_str().into();
                let first = set.iter().next().copied().unwrap_or(0);
                c.first_day = crate::period::days_since_epoch(Period::Month.start(jan + first));
                s.customers.push(c);
                for &m in set {
                    s.activity.push(ActivityRow {
                        customer: i as u32,
                        period: jan + m,
                        revenue: 1.0,
                        orders: 1,
                    });
                }
            }
            s.as_of = NaiveDate::from_ymd_opt(2024, 12, 31).unwrap();
            let r = retention(&s, &[]);
            for p in &r.periods {
                proptest::prop_assert_eq!(
                    p.new_customers + p.retained + p.reactivated,
                    p.customers_end
                );
            }
        }
    }
}
