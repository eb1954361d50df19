//! Checks of the data against the purchase models' assumptions, made before anyone acts on a fit.
//! Each finding is shown in the report's CLV section (every format), not only on stderr.
//!
//! - **One-time buyers under BG/NBD**: BG/NBD lets a customer drop out only right after a repeat
//!   purchase, so a customer who never bought again has P(alive) = 1 however long ago the one
//!   purchase was (Fader, Hardie & Lee 2005, eq. 11 with x = 0; the reason for MBG/NBD, Batislam
//!   et al. 2007). Flagged when at least [`ONE_TIME_SHARE`] of the customers bought once.
//! - **A short window for the purchase cycle**: when the median repeat buyer's mean time between
//!   purchases, t_x / x, exceeds half the longest observation T, most customers have had little
//!   chance to buy again, and the rates rest on few repeat purchases.
//! - **Left truncation**: an export that starts part-way through the customers' history makes
//!   every existing customer's first purchase in it look like a first purchase, piling them up
//!   on the data's first day (T = max T). Flagged when that day holds at least
//!   [`TRUNCATION_FACTOR`] times the average day's first purchases, at least 1 % of the
//!   customers and at least 10 customers.
//!
//! The Gamma-Gamma independence check (frequency–spend correlation) is the spend model's own
//! warning ([`super::gamma_gamma::GammaGammaFit::warning`]).

use serde::Serialize;

use super::RfmObservation;
use super::purchase::PurchaseModel;

/// Share of one-time buyers from which BG/NBD's P(alive) = 1 is flagged.
pub const ONE_TIME_SHARE: f64 = 0.10;
/// First-day acquisitions, relative to the average day's, from which left truncation is
/// flagged.
pub const TRUNCATION_FACTOR: f64 = 5.0;

/// One finding of [`audit`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditFinding {
    /// Which check: `one_time_buyers_alive`, `short_window` or `left_truncation`.
    pub check: &'static str,
    /// What was found, and what to do about it.
    pub message: String,
}

/// Checks the customers' histories (in the model's time unit of `time_unit_days` days) against
/// `model`'s assumptions.
pub fn audit(
    observations: &[RfmObservation],
    model: PurchaseModel,
    time_unit_days: u32,
) -> Vec<AuditFinding> {
    let mut out = Vec::new();
    let n = observations.len();
    if n == 0 {
        return out;
    }
    let nf = n as f64;
    let pct = |k: usize| format!("{:.1}%", 100.0 * k as f64 / nf);
    let unit = match time_unit_days {
        7 => "weeks".to_string(),
        1 => "days".to_string(),
        d => format!("{d}-day units"),
    };

    let once = observations.iter().filter(|o| o.frequency == 0.0).count();
    if model == PurchaseModel::Bgnbd && once as f64 >= ONE_TIME_SHARE * nf {
        out.push(AuditFinding {
            check: "one_time_buyers_alive",
            message: format!(
                "{once} customers ({}) never bought again; BG/NBD gives each of them P(alive) = 100% however long ago they bought, which lifts their expected purchases and CLV. MBG/NBD (--model mbgnbd) and Pareto/NBD (--model pareto-nbd) let them lapse: compare the fits (log-likelihood, holdout errors)",
                pct(once)
            ),
        });
    }

    let window = observations.iter().map(|o| o.t).fold(0.0, f64::max);
    let mut gaps: Vec<f64> = observations
        .iter()
        .filter(|o| o.frequency > 0.0)
        .map(|o| o.recency / o.frequency)
        .collect();
    gaps.sort_by(f64::total_cmp);
    if let Some(median) = crate::summary::quantile_sorted(&gaps, 0.5)
        && window > 0.0
        && median > window / 2.0
    {
        out.push(AuditFinding {
            check: "short_window",
            message: format!(
                "the median repeat buyer's time between purchases ({median:.1} {unit}) is more than half the observation window ({window:.1} {unit}): most customers have had little chance to buy again, so the purchase and drop-out rates rest on few repeat purchases; a longer history would make them firmer"
            ),
        });
    }

    let first_day = observations.iter().filter(|o| o.t == window).count();
    let days = (window * f64::from(time_unit_days)).round().max(0.0) + 1.0;
    let average_day = nf / days;
    if window > 0.0
        && first_day as f64 >= TRUNCATION_FACTOR * average_day
        && first_day as f64 >= 0.01 * nf
        && first_day >= 10
    {
        out.push(AuditFinding {
            check: "left_truncation",
            message: format!(
                "{first_day} customers ({}) first bought on the data's first day, {:.0}× the average day: the export probably starts part-way through their history, so those first purchases are not their first and their frequency, recency and T are understated; use an export that starts with the customer history",
                pct(first_day),
                first_day as f64 / average_day
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(frequency: f64, recency: f64, t: f64) -> RfmObservation {
        RfmObservation {
            frequency,
            recency,
            t,
        }
    }

    #[test]
    fn flags_one_time_buyers_under_bgnbd_only() {
        // 2 of 10 customers bought once: 20 % ≥ 10 %.
        let mut o: Vec<RfmObservation> = (0..8).map(|i| obs(3.0, 9.0, 10.0 + i as f64)).collect();
        o.push(obs(0.0, 0.0, 12.0));
        o.push(obs(0.0, 0.0, 13.0));
        let f = audit(&o, PurchaseModel::Bgnbd, 7);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].check, "one_time_buyers_alive");
        assert!(
            f[0].message
                .starts_with("2 customers (20.0%) never bought again")
        );
        assert!(audit(&o, PurchaseModel::Mbgnbd, 7).is_empty());
    }

    #[test]
    fn flags_a_window_shorter_than_twice_the_purchase_cycle() {
        // Gaps t_x/x of 6, 7 and 8 weeks (median 7) in a window of at most 12 weeks: 7 > 6.
        let o = vec![
            obs(1.0, 6.0, 10.0),
            obs(1.0, 7.0, 11.0),
            obs(1.0, 8.0, 12.0),
        ];
        let f = audit(&o, PurchaseModel::ParetoNbd, 7);
        assert_eq!(
            f.iter().map(|f| f.check).collect::<Vec<_>>(),
            ["short_window"]
        );
        assert!(f[0].message.contains("(7.0 weeks)") && f[0].message.contains("(12.0 weeks)"));
        // Median 5 ≤ 6: nothing.
        let o = vec![
            obs(1.0, 4.0, 10.0),
            obs(1.0, 5.0, 11.0),
            obs(1.0, 6.0, 12.0),
        ];
        assert!(audit(&o, PurchaseModel::ParetoNbd, 7).is_empty());
    }

    #[test]
    fn flags_customers_piled_up_on_the_first_day() {
        // 1,000 customers spread over 101 days (T in days 0..=100; 9 of them with T = 100),
        // plus 100 more on the first day: 109 there against an average of 1,100/101 ≈ 10.9.
        let mut o: Vec<RfmObservation> = (0..1000)
            .map(|i| obs(1.0, 1.0, f64::from(i % 101)))
            .collect();
        o.extend((0..100).map(|_| obs(1.0, 1.0, 100.0)));
        let f = audit(&o, PurchaseModel::Mbgnbd, 1);
        assert_eq!(
            f.iter().map(|f| f.check).collect::<Vec<_>>(),
            ["left_truncation"]
        );
        assert!(
            f[0].message
                .starts_with("109 customers (9.9%) first bought on the data's first day, 10×"),
            "{}",
            f[0].message
        );
        // Evenly spread acquisitions: nothing.
        let even: Vec<RfmObservation> = (0..1000)
            .map(|i| obs(1.0, 1.0, f64::from(i % 101)))
            .collect();
        assert!(audit(&even, PurchaseModel::Mbgnbd, 1).is_empty());
    }
}
