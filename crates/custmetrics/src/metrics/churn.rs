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
//! interval bounds fall to 0.5 (Brookmeyer & Crowley 1982). Lifetimes run from the signup (or
//! first purchase) to the end date (or last purchase of a churned customer); customers still
//! active at the observation end are right-censored there.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

use super::summary::{Summaries, quantile_sorted};
use crate::io::load::date_from_days;

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
    pub customer_id: String,
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
    let end_day = s.as_of_day();
    let end_period = s.as_of_period();
    let w = inactive_after_days as i32;
    let churn_day = |last: i32| {
        if last + w <= end_day {
            Some(last + w)
        } else {
            None
        }
    };
    let first_period = s
        .customers
        .iter()
        .map(|c| s.period.index(date_from_days(c.first_day)))
        .min()
        .unwrap_or(end_period);
    let mut periods = Vec::new();
    for p in first_period..=end_period {
        let start = crate::io::load::days_since_epoch(s.period.start(p));
        let stop = crate::io::load::days_since_epoch(s.period.end(p));
        let mut at_start = 0u64;
        let mut churned = 0u64;
        for c in &s.customers {
            let cd = churn_day(c.last_day);
            if c.first_day < start && cd.is_none_or(|d| d >= start) {
                at_start += 1;
                if cd.is_some_and(|d| d <= stop) {
                    churned += 1;
                }
            }
        }
        periods.push(PeriodChurn {
            period: s.period.label(p),
            segment: None,
            customers_start: at_start,
            churned,
            churn_rate: (at_start > 0).then(|| churned as f64 / at_start as f64),
            revenue_churn_rate: None,
        });
    }
    let gaps: Vec<f64> = s.gaps.iter().map(|&g| f64::from(g)).collect();
    let median_gap = quantile_sorted(&gaps, 0.5);
    let mut at_risk = Vec::new();
    let mut churned_customers = 0;
    for c in &s.customers {
        let since = (end_day - c.last_day).max(0);
        if churn_day(c.last_day).is_some() {
            churned_customers += 1;
            continue;
        }
        let usual = if c.purchase_days >= 3 {
            Some(f64::from(c.last_day - c.first_day) / f64::from(c.purchase_days - 1))
        } else {
            median_gap
        };
        if let Some(usual) = usual
            && f64::from(since) > usual
        {
            at_risk.push(AtRiskCustomer {
                customer_id: c.customer_id.clone(),
                last_purchase: date_from_days(c.last_day).to_string(),
                days_since_last: since as u32,
                usual_gap_days: usual,
                revenue: c.revenue,
            });
        }
    }
    at_risk.sort_by(|a, b| {
        let over = |x: &AtRiskCustomer| f64::from(x.days_since_last) / x.usual_gap_days.max(1.0);
        over(b)
            .total_cmp(&over(a))
            .then_with(|| a.customer_id.cmp(&b.customer_id))
    });
    Churn {
        definition: "inactivity".into(),
        inactive_after_days,
        periods,
        churned_customers,
        customers: s.customers.len() as u64,
        inter_purchase_days: GapPercentiles {
            gaps: gaps.len() as u64,
            p50: median_gap,
            p75: quantile_sorted(&gaps, 0.75),
            p90: quantile_sorted(&gaps, 0.90),
            p95: quantile_sorted(&gaps, 0.95),
        },
        at_risk,
    }
}

/// Inactivity churn per period for each value of the first `by` dimension (the customer's
/// value on their first purchase), tagged with the segment; empty without `by`.
pub fn inactivity_churn_by_segment(s: &Summaries, inactive_after_days: u32) -> Vec<PeriodChurn> {
    let mut values: Vec<String> = s
        .customers
        .iter()
        .filter_map(|c| c.segments.first().cloned().flatten())
        .collect();
    values.sort();
    values.dedup();
    let mut out = Vec::new();
    for v in values {
        let customers = s
            .customers
            .iter()
            .filter(|c| c.segments.first().and_then(|x| x.as_deref()) == Some(v.as_str()))
            .cloned()
            .collect();
        // Churn needs the customers only; the gaps stay the population's (for the at-risk rule).
        let part = Summaries {
            customers,
            activity: Vec::new(),
            gaps: s.gaps.clone(),
            period: s.period,
            as_of: s.as_of,
            by: s.by.clone(),
        };
        for mut p in inactivity_churn(&part, inactive_after_days).periods {
            p.segment = Some(v.clone());
            out.push(p);
        }
    }
    out
}

/// A customer with a contract: start and optional end (days since 1970-01-01).
#[derive(Debug, Clone, PartialEq)]
pub struct Contract {
    /// Customer id.
    pub customer_id: String,
    /// Signup day.
    pub start_day: i32,
    /// Cancellation day, if cancelled.
    pub end_day: Option<i32>,
}

/// Contractual churn per period from signup/cancellation dates; revenue churn uses the activity
/// in `s` when given.
pub fn contractual_churn(
    contracts: &[Contract],
    period: crate::period::Period,
    as_of_day: i32,
    s: Option<&Summaries>,
) -> Vec<PeriodChurn> {
    let Some(first) = contracts.iter().map(|c| c.start_day).min() else {
        return Vec::new();
    };
    let first_p = period.index(date_from_days(first));
    let end_p = period.index(date_from_days(as_of_day));
    // Revenue by (customer id, period) for revenue churn.
    let mut revenue: HashMap<(&str, i32), f64> = HashMap::new();
    if let Some(s) = s.filter(|s| s.period == period) {
        for a in &s.activity {
            if let Some(c) = s.customers.get(a.customer as usize) {
                revenue.insert((c.customer_id.as_str(), a.period), a.revenue);
            }
        }
    }
    let mut out = Vec::new();
    for p in first_p..=end_p {
        let start = crate::io::load::days_since_epoch(period.start(p));
        let stop = crate::io::load::days_since_epoch(period.end(p));
        let (mut at_start, mut lost) = (0u64, 0u64);
        let (mut rev_start, mut rev_lost) = (0.0, 0.0);
        for c in contracts {
            if c.start_day < start && c.end_day.is_none_or(|e| e >= start) {
                at_start += 1;
                let r = revenue
                    .get(&(c.customer_id.as_str(), p - 1))
                    .copied()
                    .unwrap_or(0.0);
                rev_start += r;
                if c.end_day.is_some_and(|e| e <= stop) {
                    lost += 1;
                    rev_lost += r;
                }
            }
        }
        out.push(PeriodChurn {
            period: period.label(p),
            segment: None,
            customers_start: at_start,
            churned: lost,
            churn_rate: (at_start > 0).then(|| lost as f64 / at_start as f64),
            revenue_churn_rate: (rev_start > 0.0).then(|| rev_lost / rev_start),
        });
    }
    out
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
        median_days: median,
        median_ci_low: lo,
        median_ci_high: hi,
        curve,
        by_segment: Vec::new(),
    }
}

/// Lifetimes from inactivity churn: churned customers' lifetime ends at their last purchase;
/// others are censored at the observation end.
pub fn inactivity_lifetimes(s: &Summaries, inactive_after_days: u32) -> Vec<(u32, bool)> {
    let end = s.as_of_day();
    s.customers
        .iter()
        .map(|c| {
            if c.last_day + inactive_after_days as i32 <= end {
                ((c.last_day - c.first_day).max(0) as u32, true)
            } else {
                ((end - c.first_day).max(0) as u32, false)
            }
        })
        .collect()
}

/// Lifetimes from contracts, censored at `as_of_day`.
pub fn contract_lifetimes(contracts: &[Contract], as_of_day: i32) -> Vec<(u32, bool)> {
    contracts
        .iter()
        .filter(|c| c.start_day <= as_of_day)
        .map(|c| match c.end_day {
            Some(e) if e <= as_of_day => ((e - c.start_day).max(0) as u32, true),
            _ => ((as_of_day - c.start_day).max(0) as u32, false),
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
        // exp(−exp(ln(−ln 0.4) + 1.96·√0.3/|ln 0.4|)) = 0.051976 (worked out by hand and in Python).
        assert_relative_eq!(km.curve[1].ci_low, 0.0519758, epsilon = 1e-6);
        assert_eq!(km.events, 4);
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
            crate::io::load::days_since_epoch(chrono::NaiveDate::from_ymd_opt(2024, m, d).unwrap())
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
}
