//! Churn: inactivity-defined (non-contractual), contractual (cancellation dates), at-risk
//! customers, and Kaplan–Meier survival of customer lifetimes.
//!
//! **Non-contractual churn** (Fader & Hardie's "when is a customer dead?" problem has no observed
//! answer; the industry rule is an inactivity threshold): a customer is churned once
//! `inactive_after` days pass without a purchase; the churn date is last purchase +
//! `inactive_after`. For period p: at start = customers with a first purchase before p who have
//! not churned before p; churned = those whose churn date falls in p; churn rate = churned / at
//! start. The data's own inter-purchase gaps (percentiles) are reported so the threshold can be
//! chosen from evidence (e.g. the 90th percentile).
//!
//! **At risk**: not churned, but the days since the last purchase exceed the customer's usual
//! cycle: their mean gap between purchase days when they have at least two gaps, otherwise the
//! median gap of all customers.
//!
//! **Contractual churn** (customers table with end dates): at start = signed up before p and not
//! ended before p; lost = ended in p; churn rate = lost / at start; revenue churn = previous-period
//! revenue of the lost / previous-period revenue of those at start.
//!
//! **Survival** (Kaplan & Meier 1958): S(t) = Π_{t_i ≤ t} (1 − d_i / n_i); Greenwood's variance
//! with the log-log interval (Kalbfleisch & Prentice 2002, as R's `survival::survfit(conf.type =
//! "log-log")`); the median is the first t with S(t) ≤ 0.5 and its interval the first times the
//! interval bounds fall to 0.5 (Brookmeyer & Crowley 1982).
//!
//! Contractual lifetimes run from the signup to the cancellation, known the day it happens, so a
//! customer still subscribed is right-censored at the observation end.
//!
//! Inactivity lifetimes run from the first to the last purchase, and that end is only known
//! `inactive_after` days later. Censoring an active customer at the observation end would keep
//! them at risk through the last `inactive_after` days, in which no lifetime can be seen to end,
//! and inflate S(t). So every customer is observed under the same rule as administrative
//! censoring: a lifetime L (first → last purchase) is seen to end only if L ≤ C, where C = end −
//! `inactive_after` − first purchase; an active customer is censored at C, where they are
//! known to be alive (they bought after it). A customer whose first purchase is less than
//! `inactive_after` days before the end has C < 0 and tells nothing yet: they are left out and
//! counted. A customer who comes back after a gap longer than the threshold has one lifetime,
//! first to last purchase, as in the churn figures (whose churn date is last purchase +
//! threshold).

use std::collections::BTreeMap;

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

use crate::period::date_from_days;
pub use crate::summary::Contract;
pub(crate) use crate::summary::ContractSpan;
use crate::summary::{ActivityVisit, CustomerId, CustomerRow, Summaries, quantile_sorted};

/// Churn in one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodChurn {
    /// Period label.
    pub period: String,
    /// Segment value when split by a dimension.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// Customers at the start of the period.
    pub customers_start: u64,
    /// Customers lost in the period.
    pub churned: u64,
    /// churned / customers_start.
    pub churn_rate: Option<f64>,
    /// Revenue churn (contractual only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revenue_churn_rate: Option<f64>,
}

/// A customer past their usual purchase cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AtRiskCustomer {
    /// Customer id.
    #[serde(serialize_with = "crate::summary::serialize_customer_id")]
    pub customer_id: CustomerId,
    /// Last purchase date.
    pub last_purchase: String,
    /// Days since the last purchase at the observation end.
    pub days_since_last: u32,
    /// The customer's usual gap in days.
    pub usual_gap_days: f64,
    /// Revenue to date.
    pub revenue: f64,
}

/// Percentiles of the days between consecutive purchase days.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GapPercentiles {
    /// Number of gaps observed.
    pub gaps: u64,
    /// Median.
    pub p50: Option<f64>,
    /// 75th percentile.
    pub p75: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
}

/// Churn results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Churn {
    /// `inactivity` or `contractual`.
    pub definition: String,
    /// The inactivity threshold in days (non-contractual).
    pub inactive_after_days: u32,
    /// Per-period churn.
    pub periods: Vec<PeriodChurn>,
    /// Customers churned at the observation end.
    pub churned_customers: u64,
    /// All customers.
    pub customers: u64,
    /// Gaps between purchase days.
    pub inter_purchase_days: GapPercentiles,
    /// Customers at risk, most overdue first.
    pub at_risk: Vec<AtRiskCustomer>,
}

/// Non-contractual churn from the summaries.
pub fn inactivity_churn(s: &Summaries, inactive_after_days: u32) -> Churn {
    inactivity_churn_limited(s, inactive_after_days, usize::MAX)
}

/// [`inactivity_churn`] listing only the `at_risk_limit` most overdue customers (all of them
/// are still counted): a report shows a few dozen, and naming a million is most of the cost.
pub fn inactivity_churn_limited(
    s: &Summaries,
    inactive_after_days: u32,
    at_risk_limit: usize,
) -> Churn {
    let periods = inactivity_periods(s, s.customers.iter(), inactive_after_days);
    let gaps = s.gaps.as_slice();
    let rule = AtRiskRule::with_median_gap(s, inactive_after_days, quantile_sorted(gaps, 0.5));
    let churned_customers = s.customers.iter().filter(|c| rule.churned(c)).count() as u64;
    // (customer index, days since last purchase, usual gap), most overdue first, ties by id.
    let mut overdue: Vec<(usize, u32, f64)> = s
        .customers
        .iter()
        .enumerate()
        .filter_map(|(i, c)| rule.overdue(c).map(|(since, usual)| (i, since, usual)))
        .collect();
    let over = |&(_, since, usual): &(usize, u32, f64)| f64::from(since) / usual.max(1.0);
    let id = |i: usize| s.customers.get(i).map(|c| c.customer_id.as_str());
    // A total order (ids are unique), so the listed customers do not depend on the algorithm:
    // the `at_risk_limit` most overdue are selected in linear time, then only they are sorted
    // (a full sort of millions of overdue customers took most of this function).
    let order = |a: &(usize, u32, f64), b: &(usize, u32, f64)| {
        over(b)
            .total_cmp(&over(a))
            .then_with(|| id(a.0).cmp(&id(b.0)))
    };
    if overdue.len() > at_risk_limit {
        overdue.select_nth_unstable_by(at_risk_limit, order);
        overdue.truncate(at_risk_limit);
    }
    overdue.sort_unstable_by(order);
    let at_risk = overdue
        .iter()
        .take(at_risk_limit)
        .filter_map(|&(i, since, usual)| {
            let c = s.customers.get(i)?;
            Some(AtRiskCustomer {
                customer_id: c.customer_id.clone(),
                last_purchase: date_from_days(c.last_day).to_string(),
                days_since_last: since,
                usual_gap_days: usual,
                revenue: c.revenue,
            })
        })
        .collect();
    Churn {
        definition: "inactivity".into(),
        inactive_after_days,
        periods,
        churned_customers,
        customers: s.customers.len() as u64,
        inter_purchase_days: GapPercentiles {
            gaps: gaps.len() as u64,
            p50: rule.median_gap,
            p75: quantile_sorted(gaps, 0.75),
            p90: quantile_sorted(gaps, 0.90),
            p95: quantile_sorted(gaps, 0.95),
        },
        at_risk,
    }
}

/// The churned and at-risk rules of the module docs, for one customer at a time.
pub(crate) struct AtRiskRule {
    end_day: i32,
    window: i32,
    median_gap: Option<f64>,
}

impl AtRiskRule {
    pub(crate) fn new(s: &Summaries, inactive_after_days: u32) -> Self {
        Self::with_median_gap(s, inactive_after_days, quantile_sorted(&s.gaps, 0.5))
    }

    /// As [`AtRiskRule::new`] for a caller that has the median of `s.gaps` already.
    fn with_median_gap(s: &Summaries, inactive_after_days: u32, median_gap: Option<f64>) -> Self {
        AtRiskRule {
            end_day: s.as_of_day(),
            window: inactive_after_days as i32,
            median_gap,
        }
    }

    /// No purchase for the inactivity window before the observation end.
    pub(crate) fn churned(&self, c: &CustomerRow) -> bool {
        c.last_day + self.window <= self.end_day
    }

    /// For a customer not churned but past their usual gap: (days since the last purchase,
    /// the usual gap).
    pub(crate) fn overdue(&self, c: &CustomerRow) -> Option<(u32, f64)> {
        if self.churned(c) {
            return None;
        }
        let since = (self.end_day - c.last_day).max(0);
        let usual = if c.purchase_days >= 3 {
            Some(f64::from(c.last_day - c.first_day) / f64::from(c.purchase_days - 1))
        } else {
            self.median_gap
        }?;
        (f64::from(since) > usual).then_some((since as u32, usual))
    }
}

/// Customers at the start of each period and churned in it, as a difference array over period
/// indices, in one pass over the lifetimes: O(customers + periods) where testing every customer
/// against every period took 12 s on 2.6M customers and 36 months. For a lifetime starting in
/// period `a` and ending (churned, cancelled) in period `e` (`None` while still a customer):
/// "started before p" is `a < p`, "not ended before p" is `e >= p`, "ended in p" is `e == p`,
/// so the customer is at the start of every p in `a+1 ..= min(e, last)` and lost in `e`.
struct PeriodCounter {
    first: i32,
    at_start: Vec<i64>,
    lost: Vec<u64>,
}

impl PeriodCounter {
    fn new(first: i32, last: i32) -> Self {
        let n = usize::try_from(last - first + 1).unwrap_or(0);
        PeriodCounter {
            first,
            at_start: vec![0; n + 1],
            lost: vec![0; n],
        }
    }

    /// Slot of period `p`, if within the range.
    fn slot(&self, p: i32) -> Option<usize> {
        usize::try_from(p - self.first)
            .ok()
            .filter(|&i| i < self.lost.len())
    }

    /// Adds a lifetime starting in period `a`, ending in period `e` (if ended).
    fn add(&mut self, a: i32, e: Option<i32>) {
        let last = self.first + self.lost.len() as i32 - 1;
        let from = (a + 1).max(self.first);
        let to = e.map_or(last, |e| e.min(last));
        if from > to {
            return;
        }
        if let (Some(i), Some(j)) = (self.slot(from), self.slot(to)) {
            if let Some(n) = self.at_start.get_mut(i) {
                *n += 1;
            }
            if let Some(n) = self.at_start.get_mut(j + 1) {
                *n -= 1;
            }
        }
        if let Some(e) = e.filter(|&e| e >= from)
            && let Some(n) = self.slot(e).and_then(|i| self.lost.get_mut(i))
        {
            *n += 1;
        }
    }

    /// (customers at start, lost) per period, in period order.
    fn counts(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.at_start
            .iter()
            .scan(0i64, |running, d| {
                *running += d;
                Some(u64::try_from(*running).unwrap_or(0))
            })
            .zip(&self.lost)
            .map(|(n, &l)| (n, l))
    }
}

/// Inactivity churn per period over `customers` (all of `s`, or one segment's).
fn inactivity_periods<'a>(
    s: &Summaries,
    customers: impl Iterator<Item = &'a CustomerRow> + Clone,
    inactive_after_days: u32,
) -> Vec<PeriodChurn> {
    let end_day = s.as_of_day();
    let end_period = s.as_of_period();
    let w = inactive_after_days as i32;
    // Every day looked up lies between the first purchases and the end.
    let lookup = crate::period::PeriodLookup::new(
        s.period,
        customers.clone().map(|c| c.first_day).chain([end_day]),
    );
    let index = |day: i32| lookup.get(day);
    let first_period = customers
        .clone()
        .map(|c| index(c.first_day))
        .min()
        .unwrap_or(end_period);
    let mut counter = PeriodCounter::new(first_period, end_period);
    for c in customers {
        let churn_day = Some(c.last_day + w).filter(|&d| d <= end_day);
        counter.add(index(c.first_day), churn_day.map(index));
    }
    (first_period..=end_period)
        .zip(counter.counts())
        .map(|(p, (at_start, churned))| PeriodChurn {
            period: s.period.label(p),
            segment: None,
            customers_start: at_start,
            churned,
            churn_rate: (at_start > 0).then(|| churned as f64 / at_start as f64),
            revenue_churn_rate: None,
        })
        .collect()
}

/// Inactivity churn per period for each value of the first `by` dimension (the customer's
/// value on their first purchase), tagged with the segment; empty without `by`.
pub fn inactivity_churn_by_segment(s: &Summaries, inactive_after_days: u32) -> Vec<PeriodChurn> {
    fn segment(c: &CustomerRow) -> Option<&str> {
        c.segments.first().and_then(|x| x.as_deref())
    }
    let mut values: Vec<&str> = s.customers.iter().filter_map(segment).collect();
    values.sort_unstable();
    values.dedup();
    let mut out = Vec::new();
    for v in values {
        let customers = s.customers.iter().filter(|c| segment(c) == Some(v));
        for mut p in inactivity_periods(s, customers, inactive_after_days) {
            p.segment = Some(v.to_string());
            out.push(p);
        }
    }
    out
}

/// Contractual churn per period from signup/cancellation dates; revenue churn uses the activity
/// in `s` when given.
pub fn contractual_churn(
    contracts: &[Contract],
    period: crate::period::Period,
    as_of_day: i32,
    s: Option<&Summaries>,
) -> Vec<PeriodChurn> {
    let positions = s.map(|s| {
        crate::summary::customer_positions(
            s,
            contracts.iter().map(|c| Some(c.customer_id.as_str())),
        )
    });
    let spans: Vec<ContractSpan> = contracts
        .iter()
        .enumerate()
        .map(|(i, c)| ContractSpan {
            start_day: c.start_day,
            end_day: c.end_day,
            customer: positions.as_ref().and_then(|p| p.get(i).copied().flatten()),
        })
        .collect();
    let activity = s.map(|s| (s, s.activity.as_slice()));
    let Ok(churn) = contractual_churn_of(&spans, period, as_of_day, activity);
    churn
}

/// [`contractual_churn`] of contracts matched to the customers of `s` already (a report's stage 1
/// matches the customers table once, for every column it reads), with the activity rows of `s`
/// read from `rows` (its own, or spilled by a merge of partitions).
pub(crate) fn contractual_churn_of<A: ActivityVisit + ?Sized>(
    contracts: &[ContractSpan],
    period: crate::period::Period,
    as_of_day: i32,
    activity: Option<(&Summaries, &A)>,
) -> Result<Vec<PeriodChurn>, A::Error> {
    let Some(first) = contracts.iter().map(|c| c.start_day).min() else {
        return Ok(Vec::new());
    };
    let lookup = crate::period::PeriodLookup::new(
        period,
        contracts
            .iter()
            .flat_map(|c| [c.start_day].into_iter().chain(c.end_day))
            .chain([as_of_day]),
    );
    let index = |day: i32| lookup.get(day);
    let first_p = index(first);
    let end_p = index(as_of_day);
    let mut counter = PeriodCounter::new(first_p, end_p);
    let spans: Vec<(i32, Option<i32>)> = contracts
        .iter()
        .map(|c| (index(c.start_day), c.end_day.map(index)))
        .collect();
    for &(a, e) in &spans {
        counter.add(a, e);
    }
    // Revenue churn: a contract at the start of p carries its customer's revenue in p − 1.
    // The customers' rows are visited in order, each with its contracts (a customer → contracts
    // index). The sums are exact (millionths), so they do not depend on the contracts' order (a
    // customers table read in partitions, or from a summary store's parts, lists them in
    // another order).
    let n_periods = counter.lost.len();
    let (mut rev_start, mut rev_lost) = (vec![0i64; n_periods], vec![0i64; n_periods]);
    if let Some((s, rows)) = activity.filter(|(s, _)| s.period == period) {
        let n = s.customers.len();
        // Contracts of customer i: `of_customer[first[i]..first[i + 1]]`.
        let mut first = vec![0u32; n + 1];
        for c in contracts {
            if let Some(slot) = c.customer.and_then(|i| first.get_mut(i as usize + 1)) {
                *slot += 1;
            }
        }
        let mut running = 0;
        for f in &mut first {
            running += *f;
            *f = running;
        }
        let mut filled = first.clone();
        let mut of_customer = vec![0u32; running as usize];
        for (k, c) in contracts.iter().enumerate() {
            if let Some(next) = c.customer.and_then(|i| filled.get_mut(i as usize)) {
                if let Some(slot) = of_customer.get_mut(*next as usize) {
                    *slot = k as u32;
                }
                *next += 1;
            }
        }
        drop(filled);
        rows.visit(n, &mut |customer, own| {
            let range = first
                .get(customer)
                .copied()
                .zip(first.get(customer + 1).copied());
            let mine = range
                .and_then(|(from, to)| of_customer.get(from as usize..to as usize))
                .unwrap_or_default();
            for &(a, e) in mine.iter().filter_map(|&k| spans.get(k as usize)) {
                for row in own {
                    let p = row.period + 1;
                    if p <= a || e.is_some_and(|e| e < p) {
                        continue;
                    }
                    if let Some(slot) = counter.slot(p) {
                        let micros = crate::money::to_micros(row.revenue);
                        if let Some(r) = rev_start.get_mut(slot) {
                            *r += micros;
                        }
                        if e == Some(p)
                            && let Some(r) = rev_lost.get_mut(slot)
                        {
                            *r += micros;
                        }
                    }
                }
            }
        })?;
    }
    Ok((first_p..=end_p)
        .zip(counter.counts())
        .zip(rev_start.into_iter().zip(rev_lost))
        .map(|((p, (at_start, lost)), (rev_start, rev_lost))| {
            let (rev_start, rev_lost) = (
                crate::money::from_micros(rev_start),
                crate::money::from_micros(rev_lost),
            );
            PeriodChurn {
                period: period.label(p),
                segment: None,
                customers_start: at_start,
                churned: lost,
                churn_rate: (at_start > 0).then(|| lost as f64 / at_start as f64),
                revenue_churn_rate: (rev_start > 0.0).then(|| rev_lost / rev_start),
            }
        })
        .collect())
}

/// One step of a Kaplan–Meier curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurvivalPoint {
    /// Days since the start of the lifetime.
    pub days: u32,
    /// Customers at risk just before `days`.
    pub at_risk: u64,
    /// Lifetimes ending at `days`.
    pub events: u64,
    /// Lifetimes censored at `days`.
    pub censored: u64,
    /// S(days).
    pub survival: f64,
    /// Lower bound of the 95% log-log interval.
    pub ci_low: f64,
    /// Upper bound of the 95% log-log interval.
    pub ci_high: f64,
}

/// A Kaplan–Meier survival curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Survival {
    /// `contractual` or `inactivity`.
    pub definition: String,
    /// Lifetimes observed.
    pub customers: u64,
    /// Lifetimes that ended (not censored).
    pub events: u64,
    /// Customers left out because no end of their lifetime could have been observed yet
    /// (inactivity: first purchase less than the threshold before the end; 0 when contractual).
    pub too_recent: u64,
    /// Median lifetime in days (None when S never reaches 0.5).
    pub median_days: Option<u32>,
    /// Lower bound of the median's 95% interval.
    pub median_ci_low: Option<u32>,
    /// Upper bound of the median's 95% interval (None: not reached).
    pub median_ci_high: Option<u32>,
    /// The curve at each time with an event or a censoring.
    pub curve: Vec<SurvivalPoint>,
    /// Median lifetimes per value of the first `--by` dimension (empty without one).
    pub by_segment: Vec<SurvivalSegment>,
}

/// Kaplan–Meier summary of one segment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurvivalSegment {
    /// The dimension.
    pub dimension: String,
    /// Its value (`(none)` when blank).
    pub segment: String,
    /// Lifetimes observed.
    pub customers: u64,
    /// Lifetimes that ended.
    pub events: u64,
    /// Median lifetime in days (None when S never reaches 0.5).
    pub median_days: Option<u32>,
    /// Lower bound of the median's 95% interval.
    pub median_ci_low: Option<u32>,
    /// Upper bound of the median's 95% interval.
    pub median_ci_high: Option<u32>,
    /// S at 90, 180 and 365 days (None beyond the longest lifetime observed).
    pub survival_90: Option<f64>,
    /// S at 180 days.
    pub survival_180: Option<f64>,
    /// S at 365 days.
    pub survival_365: Option<f64>,
}

/// Kaplan–Meier per segment: `segments[i]` is the segment of `lifetimes[i]`.
pub fn kaplan_meier_by_segment(
    dimension: &str,
    lifetimes: &[(u32, bool)],
    segments: &[String],
) -> Vec<SurvivalSegment> {
    let mut groups: BTreeMap<&str, Vec<(u32, bool)>> = BTreeMap::new();
    for (l, s) in lifetimes.iter().zip(segments) {
        groups.entry(s.as_str()).or_default().push(*l);
    }
    groups
        .into_iter()
        .map(|(segment, ls)| {
            let km = kaplan_meier("", &ls);
            let longest = ls.iter().map(|l| l.0).max().unwrap_or(0);
            let at = |days: u32| -> Option<f64> {
                (days <= longest).then(|| {
                    km.curve
                        .iter()
                        .take_while(|p| p.days <= days)
                        .last()
                        .map_or(1.0, |p| p.survival)
                })
            };
            SurvivalSegment {
                dimension: dimension.to_string(),
                segment: segment.to_string(),
                customers: km.customers,
                events: km.events,
                median_days: km.median_days,
                median_ci_low: km.median_ci_low,
                median_ci_high: km.median_ci_high,
                survival_90: at(90),
                survival_180: at(180),
                survival_365: at(365),
            }
        })
        .collect()
}

/// Kaplan–Meier estimate from (duration in days, ended) pairs.
pub fn kaplan_meier(definition: &str, lifetimes: &[(u32, bool)]) -> Survival {
    let mut by_time: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for &(t, ended) in lifetimes {
        let e = by_time.entry(t).or_default();
        if ended { e.0 += 1 } else { e.1 += 1 }
    }
    let z = Normal::standard().inverse_cdf(0.975);
    let mut at_risk = lifetimes.len() as u64;
    let (mut s, mut greenwood) = (1.0f64, 0.0f64);
    let mut curve = Vec::new();
    let (mut median, mut lo, mut hi) = (None, None, None);
    for (&t, &(d, c)) in &by_time {
        if d > 0 && at_risk > 0 {
            s *= 1.0 - d as f64 / at_risk as f64;
            if at_risk > d {
                greenwood += d as f64 / (at_risk as f64 * (at_risk - d) as f64);
            }
        }
        let (ci_low, ci_high) = if s > 0.0 && s < 1.0 {
            // log-log transform: se of log(−log S) = √greenwood / |log S|.
            let se = greenwood.sqrt() / s.ln().abs();
            let ll = (-s.ln()).ln();
            ((-(ll + z * se).exp()).exp(), (-(ll - z * se).exp()).exp())
        } else {
            (s, s)
        };
        curve.push(SurvivalPoint {
            days: t,
            at_risk,
            events: d,
            censored: c,
            survival: s,
            ci_low,
            ci_high,
        });
        if median.is_none() && s <= 0.5 {
            median = Some(t);
        }
        if lo.is_none() && ci_low <= 0.5 {
            lo = Some(t);
        }
        if hi.is_none() && ci_high <= 0.5 {
            hi = Some(t);
        }
        at_risk -= d + c;
    }
    Survival {
        definition: definition.into(),
        customers: lifetimes.len() as u64,
        events: lifetimes.iter().filter(|l| l.1).count() as u64,
        too_recent: 0,
        median_days: median,
        median_ci_low: lo,
        median_ci_high: hi,
        curve,
        by_segment: Vec::new(),
    }
}

/// One customer's inactivity lifetime (module docs): `(last − first, true)` when churned,
/// `(end − inactive_after − first, false)` when still active, `None` when the first purchase is
/// less than `inactive_after` days before `end_day` (no churn could have been seen yet).
pub fn inactivity_lifetime(
    c: &CustomerRow,
    end_day: i32,
    inactive_after_days: u32,
) -> Option<(u32, bool)> {
    // The last day a lifetime can be seen to end on: a churn is known `inactive_after` later.
    let last_visible_end = end_day - inactive_after_days as i32;
    let censored_at = u32::try_from(last_visible_end - c.first_day).ok()?;
    if c.last_day <= last_visible_end {
        Some(((c.last_day - c.first_day).max(0) as u32, true))
    } else {
        Some((censored_at, false))
    }
}

/// [`inactivity_lifetime`] of every customer who has one, in customer order.
pub fn inactivity_lifetimes(s: &Summaries, inactive_after_days: u32) -> Vec<(u32, bool)> {
    let end = s.as_of_day();
    s.customers
        .iter()
        .filter_map(|c| inactivity_lifetime(c, end, inactive_after_days))
        .collect()
}

/// Customers [`inactivity_lifetimes`] leaves out: first purchase less than `inactive_after`
/// days before the observation end.
pub fn too_recent_for_inactivity_survival(s: &Summaries, inactive_after_days: u32) -> u64 {
    let end = s.as_of_day();
    s.customers
        .iter()
        .filter(|c| inactivity_lifetime(c, end, inactive_after_days).is_none())
        .count() as u64
}

/// Lifetimes from contracts, censored at `as_of_day`.
pub fn contract_lifetimes(contracts: &[Contract], as_of_day: i32) -> Vec<(u32, bool)> {
    contract_lifetimes_of(
        contracts.iter().map(|c| (c.start_day, c.end_day)),
        as_of_day,
    )
}

/// [`contract_lifetimes`] of contracts' (start, end) days.
pub(crate) fn contract_lifetimes_of(
    contracts: impl Iterator<Item = (i32, Option<i32>)>,
    as_of_day: i32,
) -> Vec<(u32, bool)> {
    contracts
        .filter(|&(start, _)| start <= as_of_day)
        .map(|(start, end)| match end {
            Some(e) if e <= as_of_day => ((e - start).max(0) as u32, true),
            _ => ((as_of_day - start).max(0) as u32, false),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::retention::tests::fixture;
    use approx::assert_relative_eq;

    #[test]
    fn kaplan_meier_by_hand() {
        // Times 1,2,2,3+,4: S(1) = 4/5, S(2) = 4/5 · 2/4 = 0.4, censored at 3, S(4) = 0.
        let km = kaplan_meier(
            "test",
            &[(1, true), (2, true), (2, true), (3, false), (4, true)],
        );
        let s: Vec<f64> = km.curve.iter().map(|p| p.survival).collect();
        assert_relative_eq!(s[0], 0.8);
        assert_relative_eq!(s[1], 0.4);
        assert_relative_eq!(s[2], 0.4);
        assert_relative_eq!(s[3], 0.0);
        assert_eq!(km.median_days, Some(2));
        // Greenwood at t=2: 1/(5·4) + 2/(4·2) = 0.3; log-log lower bound
        // exp(−exp(ln(−ln 0.4) + 1.959964·√0.3/|ln 0.4|)) = 0.051976 (worked out by hand and in Python).
        assert_relative_eq!(km.curve[1].ci_low, 0.0519758, epsilon = 1e-6);
        assert_eq!(km.events, 4);
    }

    /// Customers as (first, last) purchase days counted from 2024-01-01, observed until day
    /// `end` of the same count.
    fn purchasers(end: i32, spans: &[(i32, i32)]) -> Summaries {
        let base = crate::period::days_since_epoch(
            chrono::NaiveDate::from_ymd_opt(2024, 1, 1).expect("a date"),
        );
        Summaries {
            customers: (spans.iter().enumerate())
                .map(|(i, &(first, last))| CustomerRow {
                    customer_id: format!("c{i}").into(),
                    first_day: base + first,
                    last_day: base + last,
                    orders: 2,
                    purchase_days: 2,
                    revenue: 0.0,
                    first_day_revenue: 0.0,
                    segments: Box::default(),
                })
                .collect(),
            activity: vec![],
            gaps: vec![],
            period: crate::period::Period::Month,
            as_of: date_from_days(base + end),
            by: vec![],
        }
    }

    #[test]
    fn inactivity_survival_by_hand() {
        // Threshold 30, end day 100: a lifetime can be seen to end up to day 70.
        let s = purchasers(
            100,
            &[
                (0, 50),  // churned: lifetime 50
                (0, 90),  // active: censored at 70 − 0 = 70 (not at the end, 100)
                (10, 10), // one purchase, churned: lifetime 0
                (20, 75), // active: censored at 70 − 20 = 50
                (40, 70), // last purchase exactly 30 days before the end: churned (≥ 30), 30
                (75, 80), // first purchase within 30 days of the end: left out
                (70, 70), // first purchase exactly 30 days before the end, churned: 0
            ],
        );
        let lifetimes = inactivity_lifetimes(&s, 30);
        assert_eq!(
            lifetimes,
            [
                (50, true),
                (70, false),
                (0, true),
                (50, false),
                (30, true),
                (0, true)
            ]
        );
        assert_eq!(too_recent_for_inactivity_survival(&s, 30), 1);
        // S(0) = 4/6; S(30) = 4/6 · 3/4 = 0.5; S(50) = 0.5 · 2/3 (the censored at 50 are at
        // risk at 50); median 30 days. Censoring at the end instead (the rule before issue
        // 23) would keep (20, 75) at risk until 80 and give a median of 50.
        let km = kaplan_meier("inactivity", &lifetimes);
        let curve: Vec<(u32, u64, f64)> = km
            .curve
            .iter()
            .map(|p| (p.days, p.at_risk, p.survival))
            .collect();
        assert_eq!(curve.len(), 4);
        assert_eq!((curve[0].0, curve[0].1), (0, 6));
        assert_relative_eq!(curve[0].2, 4.0 / 6.0);
        assert_eq!((curve[1].0, curve[1].1), (30, 4));
        assert_relative_eq!(curve[1].2, 0.5);
        assert_eq!((curve[2].0, curve[2].1), (50, 3));
        assert_relative_eq!(curve[2].2, 1.0 / 3.0);
        assert_eq!(km.median_days, Some(30));
    }

    #[test]
    fn the_inactivity_threshold_is_reached_on_its_day() {
        // Last purchase 90 days before the end: churned (days since ≥ threshold); 89: not.
        let s = purchasers(200, &[(0, 110), (0, 111)]);
        let rule = AtRiskRule::new(&s, 90);
        assert!(rule.churned(&s.customers[0]));
        assert!(!rule.churned(&s.customers[1]));
        assert_eq!(inactivity_lifetimes(&s, 90), [(110, true), (110, false)]);
        assert_eq!(inactivity_churn(&s, 90).churned_customers, 1);
    }

    #[test]
    fn a_reactivated_customer_has_one_lifetime() {
        // Purchases on days 0 and 150 (no purchase from day 1 to 149, a gap longer than the
        // threshold), end day 240: one lifetime of 150 days, and one churn, on day 150 + 30,
        // not at the gap.
        let s = purchasers(240, &[(0, 150)]);
        assert_eq!(inactivity_lifetimes(&s, 30), [(150, true)]);
        let churn = inactivity_churn(&s, 30);
        let churned: Vec<&str> = (churn.periods.iter())
            .filter(|p| p.churned > 0)
            .map(|p| p.period.as_str())
            .collect();
        // Day 180 from 2024-01-01 is 2024-06-29.
        assert_eq!(churned, ["2024-06"]);
    }

    #[test]
    fn contract_edge_cases() {
        let day = |m: u32, d: u32| {
            crate::period::days_since_epoch(chrono::NaiveDate::from_ymd_opt(2024, m, d).unwrap())
        };
        let as_of = day(3, 31);
        let contracts = vec![
            // Signs up and cancels in January: never at the start of a period, so neither in
            // a churn rate's denominator nor its numerator; a 15-day lifetime that ended.
            Contract {
                customer_id: "same-period".into(),
                start_day: day(1, 5),
                end_day: Some(day(1, 20)),
            },
            // Cancels after the observation end (a scheduled cancellation): still a customer
            // on the end day, censored there.
            Contract {
                customer_id: "after-the-end".into(),
                start_day: day(1, 5),
                end_day: Some(day(4, 15)),
            },
        ];
        let p = contractual_churn(&contracts, crate::period::Period::Month, as_of, None);
        let counts: Vec<(u64, u64)> = p.iter().map(|p| (p.customers_start, p.churned)).collect();
        assert_eq!(counts, [(0, 0), (1, 0), (1, 0)]);
        assert_eq!(
            contract_lifetimes(&contracts, as_of),
            [(15, true), ((as_of - day(1, 5)) as u32, false)]
        );
    }

    #[test]
    fn revenue_churn_does_not_depend_on_the_contracts_order() {
        // Revenues in cents (0.1, 0.2, ... are not exact in binary, so floating-point sums
        // would depend on the order); a customers table read in partitions lists the
        // contracts in another order than the file.
        let day = |m: u32, d: u32| {
            crate::period::days_since_epoch(chrono::NaiveDate::from_ymd_opt(2024, m, d).unwrap())
        };
        let as_of = day(6, 30);
        let n = 40usize;
        let contracts: Vec<Contract> = (0..n)
            .map(|i| Contract {
                customer_id: format!("c{i}").into(),
                start_day: day(1, 1 + (i % 28) as u32),
                end_day: (i % 3 == 0).then(|| day(2 + (i % 4) as u32, 10)),
            })
            .collect();
        let customers: Vec<CustomerRow> = (0..n)
            .map(|i| CustomerRow {
                customer_id: format!("c{i}").into(),
                first_day: day(1, 1 + (i % 28) as u32),
                last_day: as_of,
                orders: 1,
                purchase_days: 1,
                revenue: 0.0,
                first_day_revenue: 0.0,
                segments: Box::default(),
            })
            .collect();
        let activity: Vec<crate::summary::ActivityRow> = (0..n)
            .flat_map(|i| {
                (0..6).map(move |p| crate::summary::ActivityRow {
                    customer: i as u32,
                    period: crate::period::Period::Month
                        .index(chrono::NaiveDate::from_ymd_opt(2024, 1 + p, 1).unwrap()),
                    revenue: 0.1 * (1 + i % 7) as f64 + 0.01 * p as f64,
                    orders: 1,
                })
            })
            .collect();
        let s = Summaries {
            customers,
            activity,
            gaps: vec![],
            period: crate::period::Period::Month,
            as_of: date_from_days(as_of),
            by: vec![],
        };
        let forward = contractual_churn(&contracts, s.period, as_of, Some(&s));
        let mut reversed = contracts.clone();
        reversed.reverse();
        let backward = contractual_churn(&reversed, s.period, as_of, Some(&s));
        let rates = |p: &[PeriodChurn]| -> Vec<Option<u64>> {
            p.iter()
                .map(|p| p.revenue_churn_rate.map(f64::to_bits))
                .collect()
        };
        assert!(
            forward
                .iter()
                .any(|p| p.revenue_churn_rate.is_some_and(|r| r > 0.0))
        );
        assert_eq!(rates(&forward), rates(&backward));
    }

    #[test]
    fn inactivity_churn_by_hand() {
        // Fixture: as of 2024-03-31; last purchases a Mar 1, b Mar 1, c Jan 1, d Feb 1.
        // With 45 days: c churns on Feb 15 (in Feb), d on Mar 17 (in Mar).
        let c = inactivity_churn(&fixture(), 45);
        assert_eq!(c.churned_customers, 2);
        let feb = &c.periods[1];
        // At the start of Feb: a, b, c (first purchase before Feb); c churns.
        assert_eq!((feb.customers_start, feb.churned), (3, 1));
        let mar = &c.periods[2];
        // At the start of Mar: a, b, d; d churns.
        assert_eq!((mar.customers_start, mar.churned), (3, 1));
    }

    #[test]
    fn contractual_churn_by_hand() {
        let day = |m: u32, d: u32| {
            crate::period::days_since_epoch(chrono::NaiveDate::from_ymd_opt(2024, m, d).unwrap())
        };
        let contracts = vec![
            Contract {
                customer_id: "a".into(),
                start_day: day(1, 5),
                end_day: Some(day(2, 10)),
            },
            Contract {
                customer_id: "b".into(),
                start_day: day(1, 6),
                end_day: None,
            },
            Contract {
                customer_id: "c".into(),
                start_day: day(2, 1),
                end_day: Some(day(3, 3)),
            },
        ];
        let p = contractual_churn(&contracts, crate::period::Period::Month, day(3, 31), None);
        // Feb: at start a, b → a lost: 1/2. Mar: at start b, c → c lost: 1/2.
        assert_eq!(p[1].churn_rate, Some(0.5));
        assert_eq!((p[2].customers_start, p[2].churned), (2, 1));
    }

    /// The definitions in the module docs, tested customer by customer and period by period
    /// (how churn was computed before the one-pass counter).
    fn churn_by_definition(
        lifetimes: &[(i32, Option<i32>, f64)],
        period: crate::period::Period,
        first: i32,
        last_day: i32,
    ) -> Vec<(u64, u64, f64, f64)> {
        let index = |d: i32| period.index(date_from_days(d));
        (index(first)..=index(last_day))
            .map(|p| {
                let start = crate::period::days_since_epoch(period.start(p));
                let stop = crate::period::days_since_epoch(period.end(p));
                let (mut n, mut lost, mut rs, mut rl) = (0, 0, 0.0, 0.0);
                for &(from, end, revenue) in lifetimes {
                    if from < start && end.is_none_or(|e| e >= start) {
                        n += 1;
                        let r = if index(from) < p { revenue } else { 0.0 };
                        rs += r;
                        if end.is_some_and(|e| e <= stop) {
                            lost += 1;
                            rl += r;
                        }
                    }
                }
                (n, lost, rs, rl)
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn one_pass_churn_matches_the_definitions(
            spans in proptest::collection::vec((0i32..400, proptest::option::of(0i32..400)), 1..40),
            weekly in proptest::bool::ANY,
            window in 1u32..120,
        ) {
            use crate::summary::ActivityRow;
            let period = if weekly { crate::period::Period::Week } else { crate::period::Period::Month };
            let base = crate::period::days_since_epoch(chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap());
            let as_of = base + 399;
            let index = |d: i32| period.index(date_from_days(d));
            // Contracts: start, optional end after it (possibly after the observation end), and
            // each customer's revenue in every period, 1 + its index (in whole currency units, so
            // the sums are exact in any order).
            let contracts: Vec<Contract> = spans
                .iter()
                .enumerate()
                .map(|(i, &(a, e))| Contract {
                    customer_id: format!("c{i}").into(),
                    start_day: base + a,
                    end_day: e.map(|e| base + a + e),
                })
                .collect();
            let customers: Vec<CustomerRow> = spans
                .iter()
                .enumerate()
                .map(|(i, &(a, e))| CustomerRow {
                    customer_id: format!("c{i}").into(),
                    first_day: base + a,
                    last_day: (base + a + e.unwrap_or(0)).min(as_of),
                    orders: 1,
                    purchase_days: 1,
                    revenue: 0.0,
                    first_day_revenue: 0.0,
                    segments: Box::new([Some(if i % 2 == 0 { "even" } else { "odd" }.to_string())]),
                })
                .collect();
            let activity: Vec<ActivityRow> = (0..customers.len())
                .flat_map(|i| {
                    (index(base)..=index(as_of)).map(move |p| ActivityRow {
                        customer: i as u32,
                        period: p,
                        revenue: 1.0 + i as f64,
                        orders: 1,
                    })
                })
                .collect();
            let s = Summaries {
                customers,
                activity,
                gaps: vec![],
                period,
                as_of: date_from_days(as_of),
                by: vec!["parity".into()],
            };
            let first = contracts.iter().map(|c| c.start_day).min().unwrap();
            let lifetimes: Vec<(i32, Option<i32>, f64)> = contracts
                .iter()
                .enumerate()
                .map(|(i, c)| (c.start_day, c.end_day, 1.0 + i as f64))
                .collect();
            let expected = churn_by_definition(&lifetimes, period, first, as_of);
            let got = contractual_churn(&contracts, period, as_of, Some(&s));
            proptest::prop_assert_eq!(got.len(), expected.len());
            for (g, &(n, lost, rs, rl)) in got.iter().zip(&expected) {
                proptest::prop_assert_eq!((g.customers_start, g.churned), (n, lost));
                proptest::prop_assert_eq!(g.revenue_churn_rate, (rs > 0.0).then(|| rl / rs));
            }
            // Inactivity: a lifetime runs from the first purchase to last purchase + window,
            // ended only when that day has come; per segment too.
            let inactive = |c: &CustomerRow| {
                let churn = c.last_day + window as i32;
                (c.first_day, (churn <= as_of).then_some(churn), 0.0)
            };
            let all: Vec<_> = s.customers.iter().map(inactive).collect();
            let expected = churn_by_definition(&all, period, first, as_of);
            let got = inactivity_churn(&s, window).periods;
            let counts: Vec<(u64, u64)> = got.iter().map(|p| (p.customers_start, p.churned)).collect();
            let want: Vec<(u64, u64)> = expected.iter().map(|e| (e.0, e.1)).collect();
            proptest::prop_assert_eq!(counts, want);
            for segment in ["even", "odd"] {
                let part: Vec<_> = s
                    .customers
                    .iter()
                    .filter(|c| c.segments[0].as_deref() == Some(segment))
                    .map(inactive)
                    .collect();
                let got: Vec<(u64, u64)> = inactivity_churn_by_segment(&s, window)
                    .iter()
                    .filter(|p| p.segment.as_deref() == Some(segment))
                    .map(|p| (p.customers_start, p.churned))
                    .collect();
                if part.is_empty() {
                    proptest::prop_assert!(got.is_empty());
                    continue;
                }
                let first = part.iter().map(|l| l.0).min().unwrap();
                let want: Vec<(u64, u64)> = churn_by_definition(&part, period, first, as_of)
                    .iter()
                    .map(|e| (e.0, e.1))
                    .collect();
                proptest::prop_assert_eq!(got, want);
            }
        }
    }
}
