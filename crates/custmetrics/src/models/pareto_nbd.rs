//! Pareto/NBD: the model of Schmittlein, Morrison & Colombo (1987), "Counting Your Customers: Who
//! Are They and What Will They Do Next?", *Management Science* 33(1), with the likelihood and
//! expressions of Fader & Hardie (2005), "A Note on Deriving the Pareto/NBD Model and Related
//! Expressions" (equation numbers refer to that note).
//!
//! **Story.** While active, a customer buys as a Poisson process with rate λ ~ Gamma(r, α); the
//! unobserved lifetime is exponential with rate μ ~ Gamma(s, β). Unlike BG/NBD, a customer can
//! drop out at any moment, not only after a purchase.
//!
//! **Likelihood** (eq. 22) of x repeat purchases, the last at t_x, observed until T:
//!
//! L = Γ(r+x) α^r β^s / Γ(r) · { 1 / ((α+T)^(r+x) (β+T)^s) + s/(r+s+x) · A₀ }
//!
//! with, for α ≥ β,
//! A₀ = ₂F₁(r+s+x, s+1; r+s+x+1; (α−β)/(α+t_x)) / (α+t_x)^(r+s+x)
//!    − ₂F₁(r+s+x, s+1; r+s+x+1; (α−β)/(α+T)) / (α+T)^(r+s+x),
//! and for α < β the same with (α, s+1) replaced by (β, r+x).
//!
//! The ₂F₁ here has c − a = 1, and its defining series grows like (1−z)^(−b) before it converges,
//! which overflows for frequent buyers (lifetimes #25, #332). Euler's transformation
//! (DLMF 15.8.1), ₂F₁(a, b; c; z) = (1−z)^(c−a−b) ₂F₁(c−a, c−b; c; z), turns it into
//! ₂F₁(1, c−b; c; z), a series whose terms decrease from the first; everything is then evaluated in
//! logs, so no customer history overflows.
//!
//! **Predictions**: P(alive | x, t_x, T) (eq. 18), E\[Y(t) | x, t_x, T\] (eq. 27 of the note,
//! SMC 1987 eq. 22) and E\[X(t)\] (eq. 17).
//!
//! **Reference**: on CDNOW (2,357 customers, 39 weeks) r = 0.553, α = 10.578, s = 0.606,
//! β = 11.669, LL = −9595.0 (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way",
//! section 5; CLVTools' high-precision 0.55315, 10.57633, 0.60625, 11.67150, LL −9594.976).

use serde::{Deserialize, Serialize};
use statrs::function::gamma::ln_gamma;

use super::hyp2f1::hyp2f1_with_cap;
use super::{FitDiagnostics, FitOptions, RfmObservation, fit_rfm_model};
use crate::Result;

/// Term cap for ₂F₁ inside the likelihood: enough for |z| up to about 0.9996 (the series then
/// decays at least as fast as zᵏ); parameter regions beyond that are treated as invalid.
const LIKELIHOOD_TERMS: usize = 100_000;

/// Pareto/NBD parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ParetoNbdParams {
    /// Shape of the purchase-rate Gamma.
    pub r: f64,
    /// Scale (in time units) of the purchase-rate Gamma.
    pub alpha: f64,
    /// Shape of the drop-out-rate Gamma.
    pub s: f64,
    /// Scale (in time units) of the drop-out-rate Gamma.
    pub beta: f64,
}

/// A fitted Pareto/NBD model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParetoNbdFit {
    /// The estimates.
    pub params: ParetoNbdParams,
    /// Days per model time unit (1 = days, 7 = weeks). Predictions take times in this unit.
    pub time_unit_days: f64,
    /// How the fit went (serialised inline: `log_likelihood`, `n_customers`, `converged`, ...).
    #[serde(flatten)]
    pub diagnostics: FitDiagnostics,
}

/// ln A₀ (eq. 22), or −∞ when t_x = T (A₀ = 0). `None` when ₂F₁ cannot be evaluated.
fn ln_a0(p: &ParetoNbdParams, x: f64, tx: f64, t: f64) -> Option<f64> {
    Some(ln_a0_from_terms(a0_term(p, x, tx)?, a0_term(p, x, t)?))
}

/// ln of one of A₀'s two terms, ₂F₁(…; (|α−β|)/(m+y)) / (m+y)^(r+s+x), at y = t_x or y = T.
/// It depends on (x, y) only, which is what lets the fit compute it once per distinct pair.
fn a0_term(p: &ParetoNbdParams, x: f64, y: f64) -> Option<f64> {
    let ParetoNbdParams { r, alpha, s, beta } = *p;
    let a = r + s + x;
    let c = a + 1.0;
    // After Euler's transformation: ln ₂F₁(a, b; c; z) = (c−a−b) ln(1−z) + ln ₂F₁(1, c−b; c; z).
    let (m, b) = if alpha >= beta {
        (alpha, s + 1.0)
    } else {
        (beta, r + x)
    };
    let z = (alpha - beta).abs() / (m + y);
    let f = hyp2f1_with_cap(1.0, c - b, c, z, LIKELIHOOD_TERMS).ok()?;
    Some((c - a - b) * (-z).ln_1p() + f.ln() - a * (m + y).ln())
}

/// ln A₀ = ln(e^l1 − e^l2) from the terms at t_x (l1) and T (l2).
fn ln_a0_from_terms(l1: f64, l2: f64) -> f64 {
    if l2 >= l1 {
        return f64::NEG_INFINITY;
    }
    l1 + (-(l2 - l1).exp()).ln_1p()
}

/// Log-likelihood of one customer (eq. 22); NaN where ₂F₁ cannot be evaluated (the optimizer
/// treats that as an invalid region).
pub fn log_likelihood(p: &ParetoNbdParams, o: &RfmObservation) -> f64 {
    match ln_a0(p, o.frequency, o.recency, o.t) {
        Some(la0) => log_likelihood_with_a0(p, o, la0),
        None => f64::NAN,
    }
}

fn log_likelihood_with_a0(p: &ParetoNbdParams, o: &RfmObservation, la0: f64) -> f64 {
    let ParetoNbdParams { r, alpha, s, beta } = *p;
    let (x, t) = (o.frequency, o.t);
    let head = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + s * beta.ln();
    let l1 = -(r + x) * (alpha + t).ln() - s * (beta + t).ln();
    let l2 = s.ln() - (r + s + x).ln() + la0;
    head + log_add_exp(l1, l2)
}

/// Where each row's two A₀ terms are in a table of distinct (x, y) pairs. A million customers
/// compress to ~490k distinct (x, t_x, T) rows but only tens of thousands of distinct (x, t_x)
/// and (x, T) pairs, and the ₂F₁ series behind each term is most of a likelihood pass.
struct TermIndex {
    /// Per distinct pair: the row and whether its y is t_x (`true`) or T, to read (x, y) from
    /// the rows of the current pass (time is rescaled in the first stage of the fit).
    pairs: Vec<(usize, bool)>,
    /// Per row: the pair indexes of its t_x and T terms.
    rows: Vec<(u32, u32)>,
}

impl TermIndex {
    fn new(rows: &[RfmObservation]) -> TermIndex {
        let mut seen: std::collections::HashMap<(u64, u64), u32> = Default::default();
        let mut pairs = Vec::new();
        let mut index = |row: usize, x: f64, y: f64, is_tx: bool| -> u32 {
            *seen.entry((x.to_bits(), y.to_bits())).or_insert_with(|| {
                pairs.push((row, is_tx));
                (pairs.len() - 1) as u32
            })
        };
        let rows = rows
            .iter()
            .enumerate()
            .map(|(i, o)| {
                (
                    index(i, o.frequency, o.recency, true),
                    index(i, o.frequency, o.t, false),
                )
            })
            .collect();
        TermIndex { pairs, rows }
    }
}

/// The weighted log-likelihood of all rows, each A₀ term computed once per distinct (x, y).
/// Same arithmetic per row as [`log_likelihood`], so the same result to the last bit.
fn total_log_likelihood(
    p: &ParetoNbdParams,
    rows: &[RfmObservation],
    weights: &[f64],
    index: &TermIndex,
) -> f64 {
    use rayon::prelude::*;
    let terms: Vec<Option<f64>> = index
        .pairs
        .par_iter()
        .map(|&(row, is_tx)| {
            let o = rows.get(row)?;
            a0_term(p, o.frequency, if is_tx { o.recency } else { o.t })
        })
        .collect();
    let term = |i: u32| terms.get(i as usize).copied().flatten();
    let indexed: Vec<(&RfmObservation, (u32, u32))> =
        rows.iter().zip(index.rows.iter().copied()).collect();
    super::par_weighted_sum(&indexed, weights, |&(o, (i_tx, i_t))| {
        match (term(i_tx), term(i_t)) {
            (Some(l1), Some(l2)) => log_likelihood_with_a0(p, o, ln_a0_from_terms(l1, l2)),
            _ => f64::NAN,
        }
    })
}

fn log_add_exp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// The Pareto/NBD model.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParetoNbd;

impl ParetoNbd {
    /// Fits the model by maximum likelihood.
    ///
    /// # Errors
    /// [`crate::Error::InsufficientData`] without repeat purchases or with invalid observations;
    /// [`crate::Error::ModelDidNotConverge`] when the optimizer fails.
    pub fn fit(
        observations: &[RfmObservation],
        time_unit_days: f64,
        options: &FitOptions,
    ) -> Result<ParetoNbdFit> {
        // Both stages of the fit pass the same rows in the same order (time rescaled in the
        // first), so one index of distinct (x, y) pairs serves both; it is built on the first
        // pass of each stage, recognised by its rows' address.
        let index: std::sync::Mutex<Option<(usize, std::sync::Arc<TermIndex>)>> =
            std::sync::Mutex::new(None);
        let index_for = |rows: &[RfmObservation]| -> std::sync::Arc<TermIndex> {
            let key = rows.as_ptr() as usize;
            let mut cached = index
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match cached.as_ref() {
                Some((k, i)) if *k == key && i.rows.len() == rows.len() => i.clone(),
                _ => {
                    let built = std::sync::Arc::new(TermIndex::new(rows));
                    *cached = Some((key, built.clone()));
                    built
                }
            }
        };
        let est = fit_rfm_model(
            "Pareto/NBD",
            observations,
            &[1, 3],
            &[
                vec![1.0, 1.0, 1.0, 1.0],
                vec![0.5, 0.3, 0.5, 0.3],
                vec![0.2, 0.1, 2.0, 1.0],
            ],
            |p, rows, weights| {
                let params = ParetoNbdParams {
                    r: super::at(p, 0),
                    alpha: super::at(p, 1),
                    s: super::at(p, 2),
                    beta: super::at(p, 3),
                };
                total_log_likelihood(&params, rows, weights, &index_for(rows))
            },
            options,
        )?;
        let [r, alpha, s, beta] = [
            super::at(&est.params, 0),
            super::at(&est.params, 1),
            super::at(&est.params, 2),
            super::at(&est.params, 3),
        ];
        Ok(ParetoNbdFit {
            params: ParetoNbdParams { r, alpha, s, beta },
            time_unit_days,
            diagnostics: est.diagnostics,
        })
    }
}

impl ParetoNbdFit {
    /// E\[X(t)\]: expected purchases of a new customer in (0, t] (eq. 17):
    /// rβ / (α(s−1)) · (1 − (β/(β+t))^(s−1)), and rβ/α · ln(1 + t/β) at s = 1.
    pub fn expected_purchases(&self, t: f64) -> f64 {
        let ParetoNbdParams { r, alpha, s, beta } = self.params;
        if t <= 0.0 {
            return 0.0;
        }
        r * beta / alpha * growth(s, beta, t)
    }

    /// P(alive | x, t_x, T) (eq. 18): 1 / (1 + s/(r+s+x) · (α+T)^(r+x) (β+T)^s · A₀).
    pub fn probability_alive(&self, frequency: f64, recency: f64, t: f64) -> f64 {
        let ParetoNbdParams { r, alpha, s, beta } = self.params;
        let x = frequency;
        match ln_a0(&self.params, x, recency, t) {
            Some(la0) => {
                let l = s.ln() - (r + s + x).ln()
                    + (r + x) * (alpha + t).ln()
                    + s * (beta + t).ln()
                    + la0;
                1.0 / (1.0 + l.exp())
            }
            None => f64::NAN,
        }
    }

    /// E\[Y(t) | x, t_x, T\]: expected purchases in the next t time units of a customer with this
    /// history (SMC 1987 eq. 22): P(alive) · [`ParetoNbdFit::expected_purchases_if_alive`].
    pub fn conditional_expected_purchases(
        &self,
        t: f64,
        frequency: f64,
        recency: f64,
        big_t: f64,
    ) -> f64 {
        if t <= 0.0 {
            return 0.0;
        }
        self.probability_alive(frequency, recency, big_t)
            * self.expected_purchases_if_alive(t, frequency, big_t)
    }

    /// E\[Y(t) | alive, x, T\]: (r+x)(β+T) / ((α+T)(s−1)) · (1 − ((β+T)/(β+T+t))^(s−1)), eq. 22
    /// without its P(alive) factor.
    pub fn expected_purchases_if_alive(&self, t: f64, frequency: f64, big_t: f64) -> f64 {
        let ParetoNbdParams { r, alpha, s, beta } = self.params;
        if t <= 0.0 {
            return 0.0;
        }
        (r + frequency) * (beta + big_t) / (alpha + big_t) * growth(s, beta + big_t, t)
    }
}

/// (1 − (b/(b+t))^(s−1)) / (s−1), with its limit ln(1 + t/b) at s = 1.
fn growth(s: f64, b: f64, t: f64) -> f64 {
    if (s - 1.0).abs() < 1e-9 {
        (t / b).ln_1p()
    } else {
        -(((s - 1.0) * (-(t / b).ln_1p())).exp_m1()) / (s - 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::testdata::cdnow;

    fn model(r: f64, alpha: f64, s: f64, beta: f64) -> ParetoNbdFit {
        ParetoNbdFit {
            params: ParetoNbdParams { r, alpha, s, beta },
            time_unit_days: 7.0,
            diagnostics: FitDiagnostics::default(),
        }
    }

    #[test]
    fn the_cached_terms_give_the_per_customer_likelihood_to_the_bit() {
        let c = crate::models::compress(&cdnow());
        let index = TermIndex::new(&c.rows);
        assert!(index.pairs.len() < 2 * c.rows.len());
        for p in [
            ParetoNbdParams {
                r: 0.553,
                alpha: 10.578,
                s: 0.606,
                beta: 11.669,
            },
            ParetoNbdParams {
                r: 2.0,
                alpha: 3.0,
                s: 0.5,
                beta: 40.0,
            },
        ] {
            let cached = total_log_likelihood(&p, &c.rows, &c.weights, &index);
            let direct =
                crate::models::par_weighted_sum(&c.rows, &c.weights, |o| log_likelihood(&p, o));
            assert_eq!(cached.to_bits(), direct.to_bits(), "{cached} vs {direct}");
        }
    }

    #[test]
    fn reproduces_the_published_cdnow_estimates() {
        // FHL 2005 section 5 (0.553, 10.578, 0.606, 11.669, LL −9595.0); CLVTools'
        // test_correctness_pnbd (0.55315, 10.57633, 0.60625, 11.67150, LL −9594.976, tol 1e-3).
        let fit = ParetoNbd::fit(&cdnow(), 7.0, &FitOptions::default()).unwrap();
        let p = fit.params;
        let close = |got: f64, want: f64| ((got - want) / want).abs() < 1e-3;
        assert!(
            close(p.r, 0.55315)
                && close(p.alpha, 10.57633)
                && close(p.s, 0.60625)
                && close(p.beta, 11.67150),
            "{p:?}"
        );
        assert!(
            (fit.diagnostics.log_likelihood + 9594.976).abs() < 0.01,
            "{}",
            fit.diagnostics.log_likelihood
        );
        // The fit runs on rescaled time and converts back; the likelihood is that of weeks.
        let direct: f64 = cdnow().iter().map(|o| log_likelihood(&p, o)).sum();
        assert!((fit.diagnostics.log_likelihood - direct).abs() < 1e-9 * direct.abs());
        // CLVTools' standard errors: r 0.0476264, α 0.8427222, s 0.1872594, β 6.2105448. Both
        // are numerical Hessians (ours central differences in log-parameters), so they agree to
        // a few per cent, not to the digits.
        let se: Vec<f64> = fit
            .diagnostics
            .standard_errors
            .iter()
            .map(|s| s.unwrap())
            .collect();
        for (got, want) in se.iter().zip([0.0476264, 0.8427222, 0.1872594, 6.2105448]) {
            assert!(((got - want) / want).abs() < 0.05, "SE {got} vs {want}");
        }
    }

    #[test]
    fn predictions_match_btyd() {
        // BTYD walkthrough (p. 8) via lifetimes: with (0.5534, 10.5802, 0.6061, 11.6562),
        // P(alive | x = 26, t_x = 30.86, T = 31) = 0.9979 and E[Y(52) | same] = 25.46.
        let m = model(0.5534, 10.5802, 0.6061, 11.6562);
        let pa = m.probability_alive(26.0, 30.86, 31.0);
        assert!((pa - 0.9979).abs() < 1e-3, "{pa}");
        let y = m.conditional_expected_purchases(52.0, 26.0, 30.86, 31.0);
        assert!((y - 25.46).abs() < 0.01, "{y}");
        // E[X(t)], t = 1..9, BTYD manual via lifetimes (atol 0.01).
        let want = [
            0.05077821, 0.09916088, 0.14542507, 0.18979930, 0.23247466, 0.27361274, 0.31335159,
            0.35181024, 0.38909211,
        ];
        for (i, w) in want.iter().enumerate() {
            let got = m.expected_purchases((i + 1) as f64);
            assert!((got - w).abs() < 1e-2, "E[X({})] = {got}", i + 1);
        }
        assert_eq!(m.expected_purchases(0.0), 0.0);
    }

    #[test]
    fn stays_finite_where_lifetimes_overflowed() {
        // lifetimes' underflow guard: E[Y(10) | 132, 200, 200] ≈ 6.2061 and
        // E[Y(10) | 133, 200, 200] ≈ 6.2529 with (0.55, 10.58, 0.61, 11.67).
        let m = model(0.55, 10.58, 0.61, 11.67);
        let a = m.conditional_expected_purchases(10.0, 132.0, 200.0, 200.0);
        let b = m.conditional_expected_purchases(10.0, 133.0, 200.0, 200.0);
        assert!(
            (a - 6.2061).abs() < 0.05 && (b - 6.2529).abs() < 0.05,
            "{a} {b}"
        );
        // CLVTools' P(alive) stability case: all finite.
        let m = model(0.5143, 2.8845, 0.2856, 14.1087);
        for (x, tx, t) in [
            (221.0, 103.43, 103.57),
            (254.0, 97.14, 97.29),
            (161.0, 94.71, 98.00),
            (204.0, 98.57, 99.43),
        ] {
            let pa = m.probability_alive(x, tx, t);
            assert!(pa.is_finite() && (0.0..=1.0).contains(&pa), "{pa}");
        }
    }

    #[test]
    fn alpha_equal_beta_and_last_purchase_at_the_end() {
        // α = β makes z = 0 (₂F₁ = 1); t_x = T makes A₀ = 0, so P(alive) = 1 and the likelihood
        // is the "still alive" term alone: Γ(r+x)α^r β^s / (Γ(r)(α+T)^(r+x)(β+T)^s).
        let p = ParetoNbdParams {
            r: 0.5,
            alpha: 2.0,
            s: 0.7,
            beta: 2.0,
        };
        let o = RfmObservation {
            frequency: 3.0,
            recency: 5.0,
            t: 5.0,
        };
        let want = ln_gamma(3.5) - ln_gamma(0.5) + 0.5 * 2f64.ln() + 0.7 * 2f64.ln()
            - 3.5 * 7f64.ln()
            - 0.7 * 7f64.ln();
        assert!((log_likelihood(&p, &o) - want).abs() < 1e-12);
        let m = model(0.5, 2.0, 0.7, 2.0);
        assert_eq!(m.probability_alive(3.0, 5.0, 5.0), 1.0);
    }

    proptest::proptest! {
        #[test]
        fn likelihood_finite_and_p_alive_bounded(
            r in 0.05f64..5.0, alpha in 0.1f64..50.0, s in 0.05f64..5.0, beta in 0.1f64..50.0,
            x in 0u32..300, tx in 0.0f64..100.0, extra in 0.0f64..100.0,
        ) {
            let p = ParetoNbdParams { r, alpha, s, beta };
            let x = f64::from(x);
            let tx = if x == 0.0 { 0.0 } else { tx };
            let o = RfmObservation { frequency: x, recency: tx, t: tx + extra };
            proptest::prop_assert!(log_likelihood(&p, &o).is_finite());
            let m = model(r, alpha, s, beta);
            let pa = m.probability_alive(x, tx, tx + extra);
            proptest::prop_assert!((0.0..=1.0).contains(&pa), "{}", pa);
        }
    }
}
