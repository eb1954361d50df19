//! BG/BB: the beta-geometric / beta-Bernoulli model of Fader, Hardie & Shang (2010),
//! "Customer-Base Analysis in a Discrete-Time Noncontractual Setting", *Marketing Science* 29(6);
//! equation numbers refer to that paper.
//!
//! **Story.** Purchases can only happen at discrete opportunities (a yearly gala, an annual
//! donation drive, a weekly event). While alive, a customer transacts at each opportunity with
//! probability p ~ Beta(α, β); before each opportunity an alive customer dies with probability
//! θ ~ Beta(γ, δ).
//!
//! **Data**: per customer, x transactions in n opportunities after the first, the last at
//! opportunity t_x (0 when x = 0). Customers with the same (x, t_x, n) are one weighted row.
//!
//! **Likelihood** (eq. 5):
//!
//! L = B(α+x, β+n−x)/B(α,β) · B(γ, δ+n)/B(γ,δ)
//!   + Σ_{i=0}^{n−t_x−1} B(α+x, β+t_x−x+i)/B(α,β) · B(γ+1, δ+t_x+i)/B(γ,δ).
//!
//! **Predictions**: P(X(n) = x) for a new customer (eq. 7), E\[X(n)\] (eq. 8), P(alive at
//! opportunity n+1 | x, t_x, n) (eq. 11) and the expected transactions in the next n* opportunities
//! E\[X(n, n+n*) | x, t_x, n\] (eq. 13).
//!
//! **Reference**: on the 1995 donor cohort (11,104 donors, 6 opportunities) α = 1.204, β = 0.750,
//! γ = 0.657, δ = 2.783 (FHS 2010, Table 2); the tests reproduce these and the paper's
//! predictions.

use serde::{Deserialize, Serialize};
use statrs::function::beta::ln_beta;
use statrs::function::gamma::ln_gamma;

use super::fit::maximise;
use super::{FitDiagnostics, FitOptions, par_weighted_sum};
use crate::{Error, Result};

/// One discrete-opportunity history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DiscreteObservation {
    /// Transactions after the first (x).
    pub frequency: u32,
    /// Opportunity of the last transaction (t_x; 0 when x = 0).
    pub recency: u32,
    /// Opportunities observed after the first transaction (n).
    pub periods: u32,
}

/// BG/BB parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgBbParams {
    /// Beta α of the transaction probability.
    pub alpha: f64,
    /// Beta β of the transaction probability.
    pub beta: f64,
    /// Beta γ of the drop-out probability.
    pub gamma: f64,
    /// Beta δ of the drop-out probability.
    pub delta: f64,
}

/// A fitted BG/BB model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BgBbFit {
    /// The estimates.
    pub params: BgBbParams,
    /// How the fit went (serialised inline: `log_likelihood`, `n_customers`, `converged`, ...).
    #[serde(flatten)]
    pub diagnostics: FitDiagnostics,
}

fn log_sum_exp(values: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.collect();
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// Log-likelihood of one history (eq. 5).
pub fn log_likelihood(p: &BgBbParams, o: &DiscreteObservation) -> f64 {
    let BgBbParams {
        alpha,
        beta,
        gamma,
        delta,
    } = *p;
    let (x, tx, n) = (
        f64::from(o.frequency),
        f64::from(o.recency),
        f64::from(o.periods),
    );
    let base_p = ln_beta(alpha, beta);
    let base_d = ln_beta(gamma, delta);
    let alive = ln_beta(alpha + x, beta + n - x) - base_p + ln_beta(gamma, delta + n) - base_d;
    let died = (0..o.periods.saturating_sub(o.recency)).map(|i| {
        let i = f64::from(i);
        ln_beta(alpha + x, beta + tx - x + i) - base_p + ln_beta(gamma + 1.0, delta + tx + i)
            - base_d
    });
    log_sum_exp(std::iter::once(alive).chain(died))
}

/// Compresses histories into distinct rows with their counts, in first-seen order.
pub fn compress(histories: &[DiscreteObservation]) -> (Vec<DiscreteObservation>, Vec<f64>) {
    let mut index = std::collections::HashMap::new();
    let (mut rows, mut weights): (Vec<DiscreteObservation>, Vec<f64>) = (Vec::new(), Vec::new());
    for h in histories {
        let i = *index
            .entry((h.frequency, h.recency, h.periods))
            .or_insert_with(|| {
                rows.push(*h);
                weights.push(0.0);
                rows.len() - 1
            });
        if let Some(w) = weights.get_mut(i) {
            *w += 1.0;
        }
    }
    (rows, weights)
}

fn validate(rows: &[DiscreteObservation], weights: &[f64]) -> Result<()> {
    let invalid = |message: String| Error::InsufficientData {
        what: "BG/BB".into(),
        message,
    };
    if rows.len() != weights.len() {
        return Err(invalid(format!(
            "{} histories but {} weights",
            rows.len(),
            weights.len()
        )));
    }
    if let Some(o) = rows.iter().find(|o| {
        o.recency > o.periods || o.frequency > o.recency || (o.frequency > 0) != (o.recency > 0)
    }) {
        return Err(invalid(format!(
            "invalid history (frequency {}, recency {}, periods {}): need frequency ≤ recency ≤ periods, and recency 0 exactly when frequency is 0",
            o.frequency, o.recency, o.periods
        )));
    }
    if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
        return Err(invalid(format!("invalid weight {w}")));
    }
    if weights.iter().sum::<f64>() <= 0.0 {
        return Err(invalid("no customers".into()));
    }
    if rows.iter().all(|o| o.frequency == 0) {
        return Err(invalid(
            "no customer transacted again, so the transaction probability cannot be estimated"
                .into(),
        ));
    }
    Ok(())
}

/// The BG/BB model.
#[derive(Debug, Clone, Copy, Default)]
pub struct BgBb;

impl BgBb {
    /// Fits the model to histories with their weights (customers per history).
    ///
    /// # Errors
    /// [`Error::InsufficientData`] for invalid or uninformative histories;
    /// [`Error::ModelDidNotConverge`].
    pub fn fit(
        rows: &[DiscreteObservation],
        weights: &[f64],
        options: &FitOptions,
    ) -> Result<BgBbFit> {
        validate(rows, weights)?;
        let n: f64 = weights.iter().sum();
        let nll = |p: &[f64]| -> f64 {
            let params = BgBbParams {
                alpha: super::at(p, 0),
                beta: super::at(p, 1),
                gamma: super::at(p, 2),
                delta: super::at(p, 3),
            };
            -par_weighted_sum(rows, weights, |o| log_likelihood(&params, o)) / n
        };
        let starts = [
            vec![1.0, 1.0, 1.0, 1.0],
            vec![0.5, 0.5, 0.5, 2.0],
            vec![2.0, 1.0, 0.2, 5.0],
        ];
        let est = maximise("BG/BB", &nll, &starts, n, rows.len(), options)?;
        Ok(BgBbFit {
            params: BgBbParams {
                alpha: super::at(&est.params, 0),
                beta: super::at(&est.params, 1),
                gamma: super::at(&est.params, 2),
                delta: super::at(&est.params, 3),
            },
            diagnostics: est.diagnostics,
        })
    }
}

impl BgBbFit {
    /// P(X(n) = x): probability that a new customer makes x transactions in n opportunities
    /// (eq. 7).
    pub fn probability_of_purchases(&self, x: u32, n: u32) -> f64 {
        let BgBbParams {
            alpha,
            beta,
            gamma,
            delta,
        } = self.params;
        if x > n {
            return 0.0;
        }
        let (xf, nf) = (f64::from(x), f64::from(n));
        let ln_choose =
            |n: f64, k: f64| ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0);
        let base = ln_beta(alpha, beta) + ln_beta(gamma, delta);
        let alive =
            (ln_choose(nf, xf) + ln_beta(alpha + xf, beta + nf - xf) + ln_beta(gamma, delta + nf)
                - base)
                .exp();
        let died: f64 = (x..n)
            .map(|i| {
                let i = f64::from(i);
                (ln_choose(i, xf)
                    + ln_beta(alpha + xf, beta + i - xf)
                    + ln_beta(gamma + 1.0, delta + i)
                    - base)
                    .exp()
            })
            .sum();
        alive + died
    }

    /// E\[X(n)\]: expected transactions of a new customer in n opportunities (eq. 8):
    /// α/(α+β) · δ/(γ−1) · (1 − Γ(γ+δ) Γ(1+δ+n) / (Γ(γ+δ+n) Γ(1+δ))).
    pub fn expected_purchases(&self, n: f64) -> f64 {
        let BgBbParams {
            alpha,
            beta,
            gamma,
            delta,
        } = self.params;
        let ratio = (ln_gamma(gamma + delta) + ln_gamma(1.0 + delta + n)
            - ln_gamma(gamma + delta + n)
            - ln_gamma(1.0 + delta))
        .exp();
        alpha / (alpha + beta) * delta / (gamma - 1.0) * (1.0 - ratio)
    }

    /// P(alive at opportunity n+1 | x, t_x, n) (eq. 11).
    pub fn probability_alive(&self, o: &DiscreteObservation) -> f64 {
        let BgBbParams {
            alpha,
            beta,
            gamma,
            delta,
        } = self.params;
        let (x, n) = (f64::from(o.frequency), f64::from(o.periods));
        let num = ln_beta(alpha + x, beta + n - x) - ln_beta(alpha, beta)
            + ln_beta(gamma, delta + n + 1.0)
            - ln_beta(gamma, delta);
        (num - log_likelihood(&self.params, o)).exp()
    }

    /// E\[X(n, n+n*) | x, t_x, n\]: expected transactions in the next `future` opportunities
    /// (eq. 13).
    pub fn conditional_expected_purchases(&self, future: f64, o: &DiscreteObservation) -> f64 {
        let BgBbParams {
            alpha,
            beta,
            gamma,
            delta,
        } = self.params;
        let (x, n) = (f64::from(o.frequency), f64::from(o.periods));
        let head = ln_beta(alpha + x + 1.0, beta + n - x) - ln_beta(alpha, beta)
            + ln_gamma(gamma + delta)
            - ln_gamma(1.0 + delta)
            - log_likelihood(&self.params, o);
        let now = (ln_gamma(1.0 + delta + n) - ln_gamma(gamma + delta + n)).exp();
        let later =
            (ln_gamma(1.0 + delta + n + future) - ln_gamma(gamma + delta + n + future)).exp();
        head.exp() * delta / (gamma - 1.0) * (now - later)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The donations data: 22 (x, t_x, n = 6) patterns with weights.
    fn donations() -> (Vec<DiscreteObservation>, Vec<f64>) {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/donations/donations.csv"
        );
        let mut r = csv::Reader::from_path(path).unwrap();
        r.records()
            .map(|rec| {
                let rec = rec.unwrap();
                let u = |i: usize| rec[i].parse::<u32>().unwrap();
                (
                    DiscreteObservation {
                        frequency: u(0),
                        recency: u(1),
                        periods: u(2),
                    },
                    f64::from(u(3)),
                )
            })
            .unzip()
    }

    fn published() -> BgBbFit {
        BgBbFit {
            params: BgBbParams {
                alpha: 1.2035,
                beta: 0.7497,
                gamma: 0.6567,
                delta: 2.7834,
            },
            diagnostics: FitDiagnostics::default(),
        }
    }

    #[test]
    fn reproduces_fader_hardie_shang_2010() {
        let (rows, w) = donations();
        assert_eq!(w.iter().sum::<f64>(), 11104.0);
        let fit = BgBb::fit(&rows, &w, &FitOptions::default()).unwrap();
        let p = fit.params;
        // FHS 2010 Table 2: 1.204, 0.750, 0.657, 2.783 (lifetimes decimal = 2); high precision
        // 1.2035, 0.7497, 0.6567, 2.7834.
        for (got, want) in [
            (p.alpha, 1.2035),
            (p.beta, 0.7497),
            (p.gamma, 0.6567),
            (p.delta, 2.7834),
        ] {
            assert!(((got - want) / want).abs() < 1e-3, "{p:?}");
        }
        // FHS 2010 report LL = −33,225.6.
        assert!(
            (fit.diagnostics.log_likelihood + 33225.6).abs() < 0.1,
            "{}",
            fit.diagnostics.log_likelihood
        );
    }

    #[test]
    fn predictions_match_the_paper_and_note_010() {
        let m = published();
        let at = |x, tx| DiscreteObservation {
            frequency: x,
            recency: tx,
            periods: 6,
        };
        // FHS 2010 Table 6: P(alive in 2002).
        for (x, tx, want) in [(0, 0, 0.11), (2, 4, 0.59), (6, 6, 0.93)] {
            let got = m.probability_alive(&at(x, tx));
            assert!((got - want).abs() < 5e-3, "P(alive | {x}, {tx}) = {got}");
        }
        // Hardie note 010: Σ E[X(6, 11) | history] × customers = 12,884.2.
        let (rows, w) = donations();
        let total: f64 = rows
            .iter()
            .zip(&w)
            .map(|(o, w)| w * m.conditional_expected_purchases(5.0, o))
            .sum();
        assert!((total - 12884.2).abs() < 1.0, "{total}");
        // Note 010, in-sample fit: expected donors with 0 and 6 transactions: 3,454.9, 1,253.1.
        assert!((11104.0 * m.probability_of_purchases(0, 6) - 3454.9).abs() < 1.0);
        assert!((11104.0 * m.probability_of_purchases(6, 6) - 1253.1).abs() < 1.0);
        // Note 010 tracking plot: E[X(n)] for n = 1..11 (rtol 1e-3).
        let want = [
            0.4985, 0.9233, 1.2969, 1.6323, 1.9381, 2.2202, 2.4826, 2.7285, 2.9603, 3.1798, 3.3887,
        ];
        for (i, w) in want.iter().enumerate() {
            let got = m.expected_purchases((i + 1) as f64);
            assert!(((got - w) / w).abs() < 1e-3, "E[X({})] = {got}", i + 1);
        }
    }

    #[test]
    fn probabilities_sum_to_one_and_mean_agrees() {
        let m = published();
        for n in [1u32, 6, 11] {
            let probs: Vec<f64> = (0..=n).map(|x| m.probability_of_purchases(x, n)).collect();
            let total: f64 = probs.iter().sum();
            assert!((total - 1.0).abs() < 1e-10, "n = {n}: {total}");
            let mean: f64 = probs.iter().enumerate().map(|(x, p)| x as f64 * p).sum();
            assert!((mean - m.expected_purchases(f64::from(n))).abs() < 1e-10);
        }
    }

    #[test]
    fn refuses_impossible_histories() {
        let bad = [DiscreteObservation {
            frequency: 3,
            recency: 2,
            periods: 6,
        }];
        assert!(BgBb::fit(&bad, &[1.0], &FitOptions::default()).is_err());
        let none = [DiscreteObservation {
            frequency: 0,
            recency: 0,
            periods: 6,
        }];
        assert!(BgBb::fit(&none, &[10.0], &FitOptions::default()).is_err());
    }
}
