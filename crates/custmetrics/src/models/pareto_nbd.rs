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
use super::{FitDiagnostics, FitOptions, RfmObservation, RowSet, fit_rfm_model_with_gradient};
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

/// ln ₂F₁(1, u; c; z) = ln Σₙ (u)ₙ/(c)ₙ zⁿ and its derivatives in u, c and z, summed with the
/// series: with tₙ the terms, ∂tₙ/∂u = tₙ Σ_{k<n} 1/(u+k), ∂tₙ/∂c = −tₙ Σ_{k<n} 1/(c+k) and
/// ∂tₙ/∂z = n tₙ / z. For u < c and 0 ≤ z < 1 the terms decrease from the first. `None` when
/// the series needs more than [`LIKELIHOOD_TERMS`] terms.
fn ln_hyp2f1_1_with_derivatives(u: f64, c: f64, z: f64) -> Option<(f64, f64, f64, f64)> {
    let (mut term, mut sum) = (1.0f64, 1.0f64);
    let (mut su, mut sc) = (0.0f64, 0.0f64);
    let (mut du, mut dc, mut dz) = (0.0f64, 0.0f64, 0.0f64);
    for n in 0..LIKELIHOOD_TERMS {
        let k = n as f64;
        su += 1.0 / (u + k);
        sc += 1.0 / (c + k);
        term *= (u + k) / (c + k) * z;
        sum += term;
        du += term * su;
        dc += term * sc;
        dz += (k + 1.0) * term;
        // The derivative sums carry factors growing like ln n and n: stop when even those
        // no longer move them.
        if term * (k + 2.0) * (1.0 + su + sc) <= f64::EPSILON * 0.5 * sum {
            let d_z = if z > 0.0 { dz / (z * sum) } else { u / c };
            return Some((sum.ln(), du / sum, -dc / sum, d_z));
        }
    }
    None
}

/// One A₀ term (as [`a0_term`]) with its gradient in (r, α, s, β).
fn a0_term_with_gradient(p: &ParetoNbdParams, x: f64, y: f64) -> Option<(f64, [f64; 4])> {
    let ParetoNbdParams { r, alpha, s, beta } = *p;
    let a = r + s + x;
    let c = a + 1.0;
    if alpha >= beta {
        // ln T = −s ln(1−z) + ln ₂F₁(1, r+x; c; z) − a ln(α+y), z = (α−β)/(α+y).
        let m = alpha + y;
        let z = (alpha - beta) / m;
        let (lf, fu, fc, fz) = ln_hyp2f1_1_with_derivatives(r + x, c, z)?;
        let ln_m = m.ln();
        let value = -s * (-z).ln_1p() + lf - a * ln_m;
        let dz = s / (1.0 - z) + fz;
        let (dz_dalpha, dz_dbeta) = ((beta + y) / (m * m), -1.0 / m);
        Some((
            value,
            [
                fu + fc - ln_m,
                dz * dz_dalpha - a / m,
                -(-z).ln_1p() + fc - ln_m,
                dz * dz_dbeta,
            ],
        ))
    } else {
        // ln T = (1−r−x) ln(1−z) + ln ₂F₁(1, s+1; c; z) − a ln(β+y), z = (β−α)/(β+y).
        let m = beta + y;
        let z = (beta - alpha) / m;
        let (lf, fu, fc, fz) = ln_hyp2f1_1_with_derivatives(s + 1.0, c, z)?;
        let ln_m = m.ln();
        let ln_1mz = (-z).ln_1p();
        let value = (1.0 - r - x) * ln_1mz + lf - a * ln_m;
        let dz = -(1.0 - r - x) / (1.0 - z) + fz;
        let (dz_dalpha, dz_dbeta) = (-1.0 / m, (alpha + y) / (m * m));
        Some((
            value,
            [
                -ln_1mz + fc - ln_m,
                dz * dz_dalpha,
                fu + fc - ln_m,
                dz * dz_dbeta - a / m,
            ],
        ))
    }
}

/// The distinct (x, time) pairs of a row set's A₀ terms: per row, the pair indexes of its t_x
/// and T terms. The same for both stages of a fit (only the times are rescaled).
pub(crate) struct PairIndex {
    /// (x, index into the row set's times).
    pairs: Vec<(f64, u32)>,
    rows: Vec<(u32, u32)>,
}

impl PairIndex {
    pub(crate) fn new(set: &RowSet) -> PairIndex {
        let mut seen: std::collections::HashMap<(u64, u32), u32> = Default::default();
        let mut pairs = Vec::new();
        let mut index = |x: f64, t: u32| -> u32 {
            *seen.entry((x.to_bits(), t)).or_insert_with(|| {
                pairs.push((x, t));
                (pairs.len() - 1) as u32
            })
        };
        let rows = set
            .rows
            .iter()
            .map(|r| (index(r.x, r.tx), index(r.x, r.t)))
            .collect();
        PairIndex { pairs, rows }
    }
}

/// The summed log-likelihood (eq. 22) of a row set and its gradient in (r, α, s, β). With
/// L₁ = −(r+x) ln(α+T) − s ln(β+T), L₂ = ln s − ln(r+s+x) + ln A₀ and
/// ln A₀ = ln(e^l₁ − e^l₂) from the terms at t_x and T:
/// ∂ ln L = ∂head + σ ∂L₁ + (1−σ) ∂L₂, σ = e^L₁/(e^L₁ + e^L₂), and
/// ∂ ln A₀ = (∂l₁ − w ∂l₂)/(1 − w), w = e^(l₂−l₁). The A₀ terms are computed once per distinct
/// (x, time) pair, the gamma-function terms once per x, the logarithms of α+T and β+T once per
/// distinct time. `None` where ₂F₁ cannot be evaluated.
pub(crate) fn log_likelihood_and_gradient(
    p: &ParetoNbdParams,
    set: &RowSet,
    index: &PairIndex,
) -> Option<(f64, [f64; 4])> {
    use rayon::prelude::*;
    use statrs::function::gamma::digamma;
    let ParetoNbdParams { r, alpha, s, beta } = *p;
    let terms: Vec<Option<(f64, [f64; 4])>> = index
        .pairs
        .par_iter()
        .map(|&(x, t)| a0_term_with_gradient(p, x, *set.times.get(t as usize)?))
        .collect();
    if terms.iter().any(Option::is_none) {
        return None;
    }
    let per_x: Vec<(f64, f64, f64)> = (0..=set.max_x)
        .map(|x| {
            let x = x as f64;
            (
                ln_gamma(r + x) - ln_gamma(r),
                digamma(r + x) - digamma(r),
                r + s + x,
            )
        })
        .collect();
    let per_time: Vec<(f64, f64)> = set
        .times
        .iter()
        .map(|t| ((alpha + t).ln(), (beta + t).ln()))
        .collect();
    let (ln_alpha, ln_beta, ln_s) = (alpha.ln(), beta.ln(), s.ln());
    const CHUNK: usize = 4096;
    let partial: Vec<(f64, [f64; 4])> = set
        .rows
        .par_chunks(CHUNK)
        .zip(index.rows.par_chunks(CHUNK))
        .map(|(rows, pairs)| {
            let mut ll = 0.0;
            let mut g = [0.0f64; 4];
            for (row, &(i_tx, i_t)) in rows.iter().zip(pairs) {
                let x = row.x;
                let (lg, dg, rsx) = per_x.get(x as usize).copied().unwrap_or((0.0, 0.0, 1.0));
                let (la_t, lb_t) = per_time.get(row.t as usize).copied().unwrap_or((0.0, 0.0));
                let t = set.times.get(row.t as usize).copied().unwrap_or(0.0);
                let head = lg + r * ln_alpha + s * ln_beta;
                let l1 = -(r + x) * la_t - s * lb_t;
                let d_head = [dg + ln_alpha, r / alpha, ln_beta, s / beta];
                let d_l1 = [-la_t, -(r + x) / (alpha + t), -lb_t, -s / (beta + t)];
                let term = |i: u32| terms.get(i as usize).copied().flatten();
                let (Some((t1, d1)), Some((t2, d2))) = (term(i_tx), term(i_t)) else {
                    continue;
                };
                let mut value = head;
                let mut grad = d_head;
                if t2 >= t1 {
                    // t_x = T: A₀ = 0, the customer is certainly alive until T.
                    value += l1;
                    for (g, d) in grad.iter_mut().zip(&d_l1) {
                        *g += d;
                    }
                } else {
                    let w = (t2 - t1).exp();
                    let ln_a0 = t1 + (-w).ln_1p();
                    let l2 = ln_s - rsx.ln() + ln_a0;
                    let d_l2 = [
                        -1.0 / rsx + (d1[0] - w * d2[0]) / (1.0 - w),
                        (d1[1] - w * d2[1]) / (1.0 - w),
                        1.0 / s - 1.0 / rsx + (d1[2] - w * d2[2]) / (1.0 - w),
                        (d1[3] - w * d2[3]) / (1.0 - w),
                    ];
                    value += log_add_exp(l1, l2);
                    let sigma = 1.0 / (1.0 + (l2 - l1).exp());
                    for ((g, a), b) in grad.iter_mut().zip(&d_l1).zip(&d_l2) {
                        *g += sigma * a + (1.0 - sigma) * b;
                    }
                }
                ll += row.w * value;
                for (acc, v) in g.iter_mut().zip(&grad) {
                    *acc += row.w * v;
                }
            }
            (ll, g)
        })
        .collect();
    let mut ll = 0.0;
    let mut g = [0.0f64; 4];
    for (l, d) in &partial {
        ll += l;
        for (acc, v) in g.iter_mut().zip(d) {
            *acc += v;
        }
    }
    Some((ll, g))
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
        // Both stages of the fit pass the same row set (times rescaled in the first), so one
        // index of distinct (x, time) pairs serves both; built on the first pass.
        let index: std::sync::OnceLock<PairIndex> = std::sync::OnceLock::new();
        let est = fit_rfm_model_with_gradient(
            "Pareto/NBD",
            observations,
            &[1, 3],
            &[
                vec![1.0, 1.0, 1.0, 1.0],
                vec![0.5, 0.3, 0.5, 0.3],
                vec![0.2, 0.1, 2.0, 1.0],
            ],
            |p, set| {
                let params = ParetoNbdParams {
                    r: super::at(p, 0),
                    alpha: super::at(p, 1),
                    s: super::at(p, 2),
                    beta: super::at(p, 3),
                };
                let index = index.get_or_init(|| PairIndex::new(set));
                match log_likelihood_and_gradient(&params, set, index) {
                    Some((ll, g)) => (ll, g.to_vec()),
                    // An invalid region: the optimizer steps back.
                    None => (f64::NAN, vec![f64::NAN; 4]),
                }
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
    fn the_batched_likelihood_and_gradient_match_the_per_customer_formula() {
        // The batch (A₀ terms per distinct (x, time) pair, a ₂F₁ series with its derivatives)
        // against eq. 22 per customer, and its gradient against central differences, on both
        // branches of A₀ (α ≥ β and α < β).
        let obs = cdnow();
        let c = crate::models::compress(&obs);
        let set = RowSet::new(&c.rows, &c.weights);
        let index = PairIndex::new(&set);
        assert!(index.pairs.len() < 2 * c.rows.len());
        let direct = |p: &ParetoNbdParams| -> f64 {
            c.rows
                .iter()
                .zip(&c.weights)
                .map(|(o, w)| w * log_likelihood(p, o))
                .sum()
        };
        for p in [
            ParetoNbdParams {
                r: 0.553,
                alpha: 10.578,
                s: 0.606,
                beta: 11.669,
            },
            ParetoNbdParams {
                r: 2.0,
                alpha: 30.0,
                s: 0.5,
                beta: 4.0,
            },
            ParetoNbdParams {
                r: 0.9,
                alpha: 3.0,
                s: 1.5,
                beta: 40.0,
            },
        ] {
            let (ll, g) = log_likelihood_and_gradient(&p, &set, &index).unwrap();
            let want = direct(&p);
            assert!(
                (ll - want).abs() < 1e-9 * want.abs(),
                "{p:?}: {ll} vs {want}"
            );
            let values = [p.r, p.alpha, p.s, p.beta];
            for k in 0..4 {
                let h = 1e-4 * values[k];
                let shifted = |d: f64| {
                    let mut v = values;
                    v[k] += d;
                    direct(&ParetoNbdParams {
                        r: v[0],
                        alpha: v[1],
                        s: v[2],
                        beta: v[3],
                    })
                };
                let numeric = (shifted(h) - shifted(-h)) / (2.0 * h);
                assert!(
                    (g[k] - numeric).abs() < 1e-5 * numeric.abs().max(1.0),
                    "{p:?} ∂{k}: {} vs {numeric}",
                    g[k]
                );
            }
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
