//! MBG/NBD: the modified BG/NBD of Batislam, Denizel & Filiztekin (2007), "Empirical validation
//! and comparison of models for customer base analysis", *International Journal of Research in
//! Marketing* 24(3).
//!
//! **Story.** As BG/NBD (purchases at rate λ ~ Gamma(r, α) while active), except that a customer
//! may also drop out *at time zero*, right after the first purchase, with probability p ~ Beta(a, b)
//! at each purchase including the first. This removes BG/NBD's artefact that a customer who never
//! came back has P(alive) = 1 (lifetimes #44, #165, #212, #358).
//!
//! **Likelihood** (Batislam et al. 2007, eq. 4), for every x including 0:
//!
//! L = B(a, b+x+1)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+T)^(r+x))
//!   + B(a+1, b+x)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+t_x)^(r+x)),
//!
//! evaluated in logs as ln(first) + ln(1 + a/(b+x) · ((α+T)/(α+t_x))^(r+x)).
//!
//! **Predictions** (same paper, eqs. 5–7): P(alive | x, t_x, T) =
//! 1 / (1 + a/(b+x) · ((α+T)/(α+t_x))^(r+x)); E\[X(t)\] =
//! b/(a−1) · (1 − (α/(α+t))^r ₂F₁(r, b+1; a+b; t/(α+t))); and
//! E\[Y(t) | x, t_x, T\] = (a+b+x)/(a−1) · (1 − ((α+T)/(α+T+t))^(r+x)
//! ₂F₁(r+x, b+x+1; a+b+x; t/(α+T+t))) · P(alive).
//!
//! **Reference**: on CDNOW (39 weeks) r = 0.525, α = 6.183, a = 0.891, b = 1.614 (BTYDplus
//! `mbgcnbd` with k = 1, as lifetimes' test pins it).

use serde::{Deserialize, Serialize};
use statrs::function::gamma::ln_gamma;

use super::hyp2f1::hyp2f1;
use super::{FitDiagnostics, FitOptions, RfmObservation, RowSet, fit_rfm_model_with_gradient};
use crate::{Error, Result};

/// MBG/NBD parameters (named as in BG/NBD).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MbgNbdParams {
    /// Shape of the purchase-rate Gamma.
    pub r: f64,
    /// Scale (in time units) of the purchase-rate Gamma.
    pub alpha: f64,
    /// Beta parameter a of the drop-out probability.
    pub a: f64,
    /// Beta parameter b of the drop-out probability.
    pub b: f64,
}

/// A fitted MBG/NBD model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MbgNbdFit {
    /// The estimates.
    pub params: MbgNbdParams,
    /// Days per model time unit (1 = days, 7 = weeks). Predictions take times in this unit.
    pub time_unit_days: f64,
    /// How the fit went (serialised inline: `log_likelihood`, `n_customers`, `converged`, ...).
    #[serde(flatten)]
    pub diagnostics: FitDiagnostics,
}

/// Log-likelihood of one customer (eq. 4).
pub fn log_likelihood(p: &MbgNbdParams, o: &RfmObservation) -> f64 {
    let MbgNbdParams { r, alpha, a, b } = *p;
    let (x, tx, t) = (o.frequency, o.recency, o.t);
    let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
    let a2 = ln_gamma(a + b) + ln_gamma(b + x + 1.0) - ln_gamma(b) - ln_gamma(a + b + x + 1.0);
    let a3 = -(r + x) * (alpha + t).ln();
    let a4 = a.ln() - (b + x).ln() + (r + x) * ((alpha + t).ln() - (alpha + tx).ln());
    a1 + a2 + a3 + ln_1p_exp(a4)
}

/// ln(1 + eˣ) without overflow.
fn ln_1p_exp(x: f64) -> f64 {
    if x > 30.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// Summed log-likelihood (eq. 4) of weighted rows and its gradient in (r, α, a, b), in one pass.
pub fn log_likelihood_and_gradient(
    p: &MbgNbdParams,
    rows: &[RfmObservation],
    weights: &[f64],
) -> (f64, [f64; 4]) {
    ll_and_gradient(p, &RowSet::new(rows, weights))
}

/// [`log_likelihood_and_gradient`] over prepared rows, with the terms that depend on x alone
/// tabulated once per pass and ln(α + time) once per distinct time (as for BG/NBD).
pub(crate) fn ll_and_gradient(p: &MbgNbdParams, set: &RowSet) -> (f64, [f64; 4]) {
    use statrs::function::gamma::digamma;
    let MbgNbdParams { r, alpha, a, b } = *p;
    let max_x = set.max_x;
    let (lgr, lgb, lgab) = (ln_gamma(r), ln_gamma(b), ln_gamma(a + b));
    let (dgr, dgb, dgab) = (digamma(r), digamma(b), digamma(a + b));
    let ln_alpha = alpha.ln();
    // Per x: [A1 + A2, ∂r, ∂a, ∂b of it, ln(a/(b+x))].
    let table: Vec<[f64; 5]> = (0..=max_x)
        .map(|x| {
            let xf = x as f64;
            [
                ln_gamma(r + xf) - lgr + r * ln_alpha + lgab + ln_gamma(b + xf + 1.0)
                    - lgb
                    - ln_gamma(a + b + xf + 1.0),
                digamma(r + xf) - dgr + ln_alpha,
                dgab - digamma(a + b + xf + 1.0),
                dgab + digamma(b + xf + 1.0) - dgb - digamma(a + b + xf + 1.0),
                a.ln() - (b + xf).ln(),
            ]
        })
        .collect();
    let logs = set.log_times(alpha);
    let missing = (f64::NAN, f64::NAN);
    let total = set.sum(|row, acc: &mut [f64; 5]| {
        let x = row.x;
        let Some(t) = table.get(x as usize) else {
            acc[0] = f64::NAN;
            return;
        };
        let (l_t, inv_t) = logs.get(row.t as usize).copied().unwrap_or(missing);
        let (l_tx, inv_tx) = logs.get(row.tx as usize).copied().unwrap_or(missing);
        let a4 = t[4] + (r + x) * (l_t - l_tx);
        let (s, l1p) = super::logistic_and_softplus(a4);
        let w = row.w;
        acc[0] += w * (t[0] - (r + x) * l_t + l1p);
        acc[1] += w * (t[1] - l_t + s * (l_t - l_tx));
        acc[2] += w * (r / alpha - (r + x) * inv_t + s * (r + x) * (inv_t - inv_tx));
        acc[3] += w * (t[2] + s / a);
        acc[4] += w * (t[3] - s / (b + x));
    });
    (total[0], [total[1], total[2], total[3], total[4]])
}

/// The MBG/NBD model.
#[derive(Debug, Clone, Copy, Default)]
pub struct MbgNbd;

impl MbgNbd {
    /// Fits the model by maximum likelihood.
    ///
    /// # Errors
    /// [`Error::InsufficientData`] without repeat purchases or with invalid observations;
    /// [`Error::ModelDidNotConverge`] when the optimizer fails.
    pub fn fit(
        observations: &[RfmObservation],
        time_unit_days: f64,
        options: &FitOptions,
    ) -> Result<MbgNbdFit> {
        let est = fit_rfm_model_with_gradient(
            "MBG/NBD",
            observations,
            &[1],
            &[
                vec![1.0, 1.0, 1.0, 1.0],
                vec![0.5, 0.1, 0.5, 2.0],
                vec![2.0, 0.5, 2.0, 5.0],
            ],
            |p, rows| {
                let params = MbgNbdParams {
                    r: super::at(p, 0),
                    alpha: super::at(p, 1),
                    a: super::at(p, 2),
                    b: super::at(p, 3),
                };
                let (ll, g) = ll_and_gradient(&params, rows);
                (ll, g.to_vec())
            },
            options,
        )?;
        let [r, alpha, a, b] = [
            super::at(&est.params, 0),
            super::at(&est.params, 1),
            super::at(&est.params, 2),
            super::at(&est.params, 3),
        ];
        Ok(MbgNbdFit {
            params: MbgNbdParams { r, alpha, a, b },
            time_unit_days,
            diagnostics: est.diagnostics,
        })
    }
}

impl MbgNbdFit {
    /// P(alive | x, t_x, T) (eq. 6); below 1 also for customers who never came back.
    pub fn probability_alive(&self, frequency: f64, recency: f64, t: f64) -> f64 {
        let MbgNbdParams { r, alpha, a, b } = self.params;
        let x = frequency;
        let l = a.ln() - (b + x).ln() + (r + x) * ((alpha + t).ln() - (alpha + recency).ln());
        1.0 / (1.0 + l.exp())
    }

    /// E\[X(t)\]: expected purchases of a new customer in (0, t] (eq. 5).
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] when ₂F₁ cannot be evaluated (t extremely large relative to α).
    pub fn expected_purchases(&self, t: f64) -> Result<f64> {
        let MbgNbdParams { r, alpha, a, b } = self.params;
        if t <= 0.0 {
            return Ok(0.0);
        }
        let f = hyp2f1(r, b + 1.0, a + b, t / (alpha + t)).map_err(|e| hyp_error(&e))?;
        Ok(b / (a - 1.0) * (1.0 - (alpha / (alpha + t)).powf(r) * f))
    }

    /// E\[Y(t) | x, t_x, T\] (eq. 7): P(alive | x, t_x, T) ·
    /// [`MbgNbdFit::expected_purchases_if_alive`].
    ///
    /// # Errors
    /// As [`MbgNbdFit::expected_purchases`].
    pub fn conditional_expected_purchases(
        &self,
        t: f64,
        frequency: f64,
        recency: f64,
        big_t: f64,
    ) -> Result<f64> {
        Ok(self.probability_alive(frequency, recency, big_t)
            * self.expected_purchases_if_alive(t, frequency, big_t)?)
    }

    /// E\[Y(t) | alive, x, T\]: eq. 7 without its P(alive) factor,
    /// (a+b+x)/(a−1) · (1 − ((α+T)/(α+T+t))^(r+x) · ₂F₁(r+x, b+x+1; a+b+x; t/(α+T+t))).
    ///
    /// # Errors
    /// As [`MbgNbdFit::expected_purchases`].
    pub fn expected_purchases_if_alive(&self, t: f64, frequency: f64, big_t: f64) -> Result<f64> {
        let MbgNbdParams { r, alpha, a, b } = self.params;
        let x = frequency;
        if t <= 0.0 {
            return Ok(0.0);
        }
        let z = t / (alpha + big_t + t);
        let f = hyp2f1(r + x, b + x + 1.0, a + b + x, z).map_err(|e| hyp_error(&e))?;
        let body = 1.0 - ((alpha + big_t) / (alpha + big_t + t)).powf(r + x) * f;
        Ok((a + b + x) / (a - 1.0) * body)
    }
}

fn hyp_error(e: &super::hyp2f1::Hyp2f1Error) -> Error {
    Error::InvalidSetting {
        setting: "horizon".into(),
        message: format!(
            "cannot evaluate the hypergeometric function ({e:?}); use a shorter horizon or a larger time unit"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::testdata::cdnow;

    #[test]
    fn likelihood_is_that_of_the_original_time_unit() {
        // The fit runs on time rescaled to max T = 1 and converts its optimum back without a
        // pass in weeks: the log-likelihood must be that of the weekly data, and the gradient
        // there ~0.
        let rows = cdnow();
        let fit = MbgNbd::fit(&rows, 7.0, &FitOptions::default()).unwrap();
        let p = fit.params;
        let direct: f64 = rows.iter().map(|o| log_likelihood(&p, o)).sum();
        let reported = fit.diagnostics.log_likelihood;
        assert!(
            (reported - direct).abs() < 1e-9 * direct.abs(),
            "{reported} vs {direct}"
        );
        let (_, g) = log_likelihood_and_gradient(&p, &rows, &vec![1.0; rows.len()]);
        let in_theta = [g[0] * p.r, g[1] * p.alpha, g[2] * p.a, g[3] * p.b];
        let norm = in_theta.iter().map(|v| v * v).sum::<f64>().sqrt() / rows.len() as f64;
        assert!(norm < 1e-5, "gradient in θ per customer: {in_theta:?}");
        // Standard errors: those of the Hessian in weeks (central differences of the gradient,
        // as a fit refined in weeks would compute them).
        let n = rows.len() as f64;
        let weights = vec![1.0; rows.len()];
        let mean = |v: &[f64]| -> (f64, Vec<f64>) {
            let q = MbgNbdParams {
                r: v[0],
                alpha: v[1],
                a: v[2],
                b: v[3],
            };
            let (ll, g) = log_likelihood_and_gradient(&q, &rows, &weights);
            (-ll / n, g.iter().map(|g| -g / n).collect())
        };
        let theta = [p.r.ln(), p.alpha.ln(), p.a.ln(), p.b.ln()];
        let weekly = crate::models::fit::estimate_at(&mean, &theta, 0, n, rows.len());
        for (got, want) in fit
            .diagnostics
            .standard_errors
            .iter()
            .zip(&weekly.diagnostics.standard_errors)
        {
            let (got, want) = (got.unwrap(), want.unwrap());
            assert!((got - want).abs() < 1e-4 * want, "SE {got} vs {want}");
        }
    }

    #[test]
    fn reproduces_the_btydplus_cdnow_estimates() {
        // lifetimes' test_estimation (decimal = 3): r 0.525, α 6.183, a 0.891, b 1.614.
        let fit = MbgNbd::fit(&cdnow(), 7.0, &FitOptions::default()).unwrap();
        let p = fit.params;
        for (got, want) in [(p.r, 0.525), (p.alpha, 6.183), (p.a, 0.891), (p.b, 1.614)] {
            assert!((got - want).abs() < 1.5e-3, "{p:?}");
        }
        assert!(fit.diagnostics.log_likelihood < -9000.0);
    }

    #[test]
    fn one_time_buyers_are_not_certainly_alive() {
        let m = MbgNbdFit {
            params: MbgNbdParams {
                r: 0.525,
                alpha: 6.183,
                a: 0.891,
                b: 1.614,
            },
            time_unit_days: 7.0,
            diagnostics: FitDiagnostics::default(),
        };
        // x = 0, t_x = 0: P(alive) = 1 / (1 + a/b · ((α+T)/α)^r), below 1 and falling with T.
        let want = 1.0 / (1.0 + 0.891 / 1.614 * ((6.183f64 + 30.0) / 6.183).powf(0.525));
        assert!((m.probability_alive(0.0, 0.0, 30.0) - want).abs() < 1e-12);
        assert!(m.probability_alive(0.0, 0.0, 60.0) < want);
        // Expected purchases grow with the horizon and a recent buyer beats a lapsed one.
        let e10 = m.expected_purchases(10.0).unwrap();
        let e20 = m.expected_purchases(20.0).unwrap();
        assert!(e10 > 0.0 && e20 > e10);
        let recent = m
            .conditional_expected_purchases(10.0, 5.0, 29.0, 30.0)
            .unwrap();
        let lapsed = m
            .conditional_expected_purchases(10.0, 5.0, 5.0, 30.0)
            .unwrap();
        assert!(recent > lapsed && lapsed > 0.0, "{recent} {lapsed}");
    }

    #[test]
    fn analytic_gradient_matches_the_likelihood() {
        let rows = cdnow();
        let weights = vec![1.0; rows.len()];
        let at = |v: [f64; 4]| MbgNbdParams {
            r: v[0],
            alpha: v[1],
            a: v[2],
            b: v[3],
        };
        let f = |v: [f64; 4]| -> f64 { rows.iter().map(|o| log_likelihood(&at(v), o)).sum() };
        let v = [0.4, 3.0, 1.1, 1.7];
        let (ll, g) = log_likelihood_and_gradient(&at(v), &rows, &weights);
        assert!((ll - f(v)).abs() < 1e-8 * ll.abs(), "{ll} vs {}", f(v));
        for i in 0..4 {
            let h = 1e-6 * v[i];
            let (mut up, mut down) = (v, v);
            up[i] += h;
            down[i] -= h;
            let numeric = (f(up) - f(down)) / (2.0 * h);
            assert!(
                (g[i] - numeric).abs() < 1e-4 * numeric.abs().max(1.0),
                "∂{i}: {} vs {numeric}",
                g[i]
            );
        }
    }

    #[test]
    fn likelihood_by_hand() {
        // x = 0, t_x = 0, T = 1, all parameters 1: L = B(1,2)/B(1,1)·1/2 + B(2,1)/B(1,1)·1
        // = ½·½ + ½ = ¾.
        let p = MbgNbdParams {
            r: 1.0,
            alpha: 1.0,
            a: 1.0,
            b: 1.0,
        };
        let o = RfmObservation {
            frequency: 0.0,
            recency: 0.0,
            t: 1.0,
        };
        assert!((log_likelihood(&p, &o) - 0.75f64.ln()).abs() < 1e-12);
    }
}
