//! Retention: period-over-period customer retention, cohort triangles, and revenue retention.
//!
//! **Definitions** (A_p = customers with a purchase in period p):
//! - S = |A_{p−1}| (customers at the start), E = |A_p| (at the end), N = customers whose first
//!   purchase (or acquisition) is in p, R = |A_p ∩ A_{p−1}| (retained).
//! - CRR = (E − N) / S, the textbook customer retention rate (Kumar & Reinartz, *Customer
//!   Relationship Management*, 2018, ch. 5). It counts reactivated customers as retained and can
//!   therefore exceed 1.
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

use crate::summary::Summaries;

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
    /// Customers active now and earlier, but not in the previous period.
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
    let end = s.as_of_period();
    let mut cohorts = s.first_purchase_periods();
    for (cohort, known) in cohorts.iter_mut().zip(cohort_of) {
        if let Some(known) = known {
            *cohort = *known;
        }
    }
    let (mut periods, mut cells) = rayon::join(
        || compute_periods(s, &cohorts, end, None, |_| true),
        || compute_triangle(s, &cohorts, end, None, |_| true),
    );
    if !s.by.is_empty() {
        // Each customer's segment as an index into the sorted distinct values, so that the
        // per-row filter compares integers (it used to clone the segment string per row).
        let mut values: Vec<&str> = s.customers.iter().filter_map(segment_of).collect();
        values.sort_unstable();
        values.dedup();
        let code: Vec<Option<usize>> = s
            .customers
            .iter()
            .map(|c| segment_of(c).and_then(|v| values.binary_search(&v).ok()))
            .collect();
        for (k, v) in values.iter().enumerate() {
            let keep = |i: usize| code.get(i).copied().flatten() == Some(k);
            periods.extend(compute_periods(s, &cohorts, end, Some(v), keep));
            cells.extend(compute_triangle(s, &cohorts, end, Some(v), keep));
        }
    }
    Retention {
        period: s.period.name().into(),
        periods,
        cohorts: cells,
    }
}

fn compute_periods(
    s: &Summaries,
    cohorts: &[i32],
    end: i32,
    segment: Option<&str>,
    keep: impl Fn(usize) -> bool,
) -> Vec<PeriodRetention> {
    // Per period: E, R, N, and revenue sums for NRR/GRR. Activity is sorted by customer, period.
    #[derive(Default, Clone, Copy)]
    struct Acc {
        active: u64,
        retained: u64,
        new: u64,
        prev_revenue: f64,
        kept_revenue: f64,
        kept_revenue_capped: f64,
    }
    // Periods are a dense range ending at `end`: one slot per period from the earliest one
    // (a BTreeMap entry per activity row was most of the function's time).
    let Some(lo) = s
        .activity
        .iter()
        .map(|a| a.period)
        .filter(|&p| p <= end)
        .min()
    else {
        return Vec::new();
    };
    let slot = |p: i32| (i64::from(p) - i64::from(lo)) as usize;
    let mut acc: Vec<Acc> = vec![Acc::default(); slot(end) + 1];
    let mut first: Option<i32> = None;
    let mut prev: Option<(u32, i32, f64)> = None;
    // Revenue of customers active in p−1 that is carried into p (for NRR/GRR) is only known when
    // we see period p, so "start" revenue is added on the p−1 row itself.
    for a in &s.activity {
        if a.period > end || !keep(a.customer as usize) {
            prev = None;
            continue;
        }
        if !a.is_active() {
            // Refunds only: the customer is not active in this period, and the money given
            // back counts against the revenue kept from the previous period's customers.
            if let Some((c, p, _)) = prev
                && c == a.customer
                && p + 1 == a.period
                && let Some(e) = acc.get_mut(slot(a.period))
            {
                e.kept_revenue += a.revenue;
            }
            prev = None;
            continue;
        }
        first = Some(first.map_or(a.period, |f| f.min(a.period)));
        let Some(e) = acc.get_mut(slot(a.period)) else {
            continue;
        };
        e.active += 1;
        if cohorts.get(a.customer as usize) == Some(&a.period) {
            e.new += 1;
        }
        if let Some((c, p, rev)) = prev
            && c == a.customer
            && p + 1 == a.period
        {
            e.retained += 1;
            e.kept_revenue += a.revenue;
            e.kept_revenue_capped += a.revenue.min(rev).max(0.0);
        }
        if a.period < end
            && let Some(next) = acc.get_mut(slot(a.period + 1))
        {
            next.prev_revenue += a.revenue;
        }
        prev = Some((a.customer, a.period, a.revenue));
    }
    let Some(first) = first else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in first..=end {
        let e = acc.get(slot(p)).copied().unwrap_or_default();
        let start = if p == first {
            None
        } else {
            Some(acc.get(slot(p - 1)).map_or(0, |x| x.active))
        };
        let ratio = |num: f64, den: f64| if den > 0.0 { Some(num / den) } else { None };
        let s_count = start.unwrap_or(0);
        let rev_ratio = |num: f64| {
            if e.prev_revenue > 0.0 {
                Some(num / e.prev_revenue)
            } else {
                None
            }
        };
        out.push(PeriodRetention {
            period: s.period.label(p),
            segment: segment.map(str::to_string),
            customers_start: s_count,
            customers_end: e.active,
            new_customers: e.new,
            retained: e.retained,
            reactivated: e.active - e.new - e.retained,
            crr: start.and_then(|st| ratio(e.active as f64 - e.new as f64, st as f64)),
            retention_rate: start.and_then(|st| ratio(e.retained as f64, st as f64)),
            churn_rate: start.and_then(|st| ratio((st - e.retained) as f64, st as f64)),
            nrr: start.and_then(|_| rev_ratio(e.kept_revenue)),
            grr: start.and_then(|_| rev_ratio(e.kept_revenue_capped)),
        });
    }
    out
}

fn compute_triangle(
    s: &Summaries,
    cohorts: &[i32],
    end: i32,
    segment: Option<&str>,
    keep: impl Fn(usize) -> bool,
) -> Vec<CohortCell> {
    // Cohorts are a dense range of periods up to `end`, and a cohort's offsets run to `end`:
    // the cells are one slot per (cohort, offset), laid out as the output is (hash maps keyed
    // by cell, and a BTreeMap entry per customer, were most of the triangle's time).
    let Some(lo) = cohorts
        .iter()
        .enumerate()
        .filter(|&(i, &c)| c <= end && keep(i))
        .map(|(_, &c)| c)
        .min()
    else {
        return Vec::new();
    };
    let n = (i64::from(end) - i64::from(lo) + 1) as usize;
    // Cohort slot j (period lo + j) has offsets 0..n-j; its cells start at first_cell[j].
    let first_cell: Vec<usize> = (0..=n)
        .map(|j| j * n - j * j.saturating_sub(1) / 2)
        .collect();
    let slot = |cohort: i32| (i64::from(cohort) - i64::from(lo)) as usize;
    let cell_of = |cohort: i32, k: u32| first_cell.get(slot(cohort)).map(|f| f + k as usize);
    let mut size = vec![0u64; n];
    for (i, &c) in cohorts.iter().enumerate() {
        if c <= end
            && keep(i)
            && let Some(s) = size.get_mut(slot(c))
        {
            *s += 1;
        }
    }
    // (cohort, offset) → (active, revenue); and per customer the last active offset.
    let cell_count = first_cell.last().copied().unwrap_or(0);
    let mut cells: Vec<(u64, f64)> = vec![(0, 0.0); cell_count];
    // Indexed by customer: a hash map here cost more than the rest of the triangle.
    let mut last_offset: Vec<Option<u32>> = vec![None; s.customers.len()];
    for a in &s.activity {
        let Some(&cohort) = cohorts.get(a.customer as usize) else {
            continue;
        };
        // Activity before an acquisition date from the customers table is not cohort activity.
        if a.period > end || a.period < cohort || !keep(a.customer as usize) {
            continue;
        }
        let k = (a.period - cohort) as u32;
        let Some(cell) = cell_of(cohort, k).and_then(|c| cells.get_mut(c)) else {
            continue;
        };
        cell.1 += a.revenue;
        if !a.is_active() {
            // Refunds only: net revenue of the cell, not an active customer.
            continue;
        }
        cell.0 += 1;
        if let Some(lo) = last_offset.get_mut(a.customer as usize) {
            *lo = Some(lo.map_or(k, |lo| lo.max(k)));
        }
    }
    // Unbounded: customers whose last active offset ≥ k.
    let mut reach: Vec<u64> = vec![0; cell_count];
    for (customer, k) in last_offset.iter().enumerate() {
        if let (Some(k), Some(&cohort)) = (*k, cohorts.get(customer))
            && let Some(r) = cell_of(cohort, k).and_then(|c| reach.get_mut(c))
        {
            *r += 1;
        }
    }
    let mut out = Vec::new();
    for (j, (&customers, bounds)) in size.iter().zip(first_cell.windows(2)).enumerate() {
        let (Some(row), Some(reach)) = (
            bounds
                .first()
                .zip(bounds.get(1))
                .and_then(|(&a, &b)| cells.get(a..b)),
            bounds
                .first()
                .zip(bounds.get(1))
                .and_then(|(&a, &b)| reach.get(a..b)),
        ) else {
            continue;
        };
        if customers == 0 {
            continue;
        }
        let cohort = lo + j as i32;
        let base_revenue = row.first().map_or(0.0, |c| c.1);
        // Suffix sums: reached[k] = customers active at offset k or later.
        let mut reached = reach.to_vec();
        let mut later = 0;
        for r in reached.iter_mut().rev() {
            *r += later;
            later = *r;
        }
        for (k, (&(active, revenue), &reached)) in row.iter().zip(&reached).enumerate() {
            out.push(CohortCell {
                cohort: s.period.label(cohort),
                segment: segment.map(str::to_string),
                offset: k as u32,
                customers,
                active,
                rate: active as f64 / customers as f64,
                unbounded_rate: reached as f64 / customers as f64,
                revenue,
                revenue_retention: if base_revenue > 0.0 {
                    Some(revenue / base_revenue)
                } else {
                    None
                },
            });
        }
    }
    out
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
                segments: vec![],
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
            c.segments = vec![Some(v.to_string())];
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
}
