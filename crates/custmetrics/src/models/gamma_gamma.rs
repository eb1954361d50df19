//! The Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005, "RFM and CLV: Using
//! Iso-Value Curves for Customer Base Analysis", *JMR* 42(4); Fader & Hardie 2013, "The Gamma-Gamma
//! Model of Monetary Value"), and discounted CLV combining it with BG/NBD.
//!
//! **Story.** Each transaction's value is Gamma(p, ν); ν ~ Gamma(q, γ) across customers. It assumes
//! spend is independent of purchase frequency: the fit reports the Pearson correlation of
//! frequency and mean spend, and a warning when it is strong (|ρ| > 0.3).
//!
//! **Likelihood** of a customer with x ≥ 1 repeat transactions of mean value m̄ (Fader & Hardie
//! 2013, eq. 3, written for the mean as lifetimes does):
//! ln L = ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln γ + (px−1) ln m̄ + px ln x − (px+q) ln(γ + m̄x).
//!
//! **Prediction** (eq. 5): E\[M | p, q, γ, m̄, x\] = p(γ + m̄x) / (px + q − 1), defined for q > 1.
//!
//! **CLV** (the discrete sum lifetimes and pymc-marketing use): over `horizon` steps of one model
//! time unit, CLV = Σ_{i=1}^{horizon} E\[M\] · (E\[Y(i)\] − E\[Y(i−1)\]) / (1 + d)^i, with d the discount
//! rate *per model time unit* (for weeks and 10 % a year, d = 1.1^(1/52) − 1).
//!
//! **Reference**: on CDNOW the 2013 note reports p = 6.25, q = 3.74, γ = 15.44; the test reproduces it.

use serde::{Deserialize, Serialize};
use statrs::function::gamma::ln_gamma;

use super::fit::maximise_with_gradient;
use super::purchase::PurchaseFit;
use super::{FitDiagnostics, FitOptions, RfmObservation};
use crate::{Error, Result};

/// Gamma-Gamma parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaParams {
    /// Shape of the per-transaction Gamma.
    pub p: f64,
    /// Shape of the Gamma of ν across customers.
    pub q: f64,
    /// Scale of the Gamma of ν across customers: the papers' γ, serialised as `v` (the name
    /// pymc-marketing and the CLI use, since γ is taken by other models).
    #[serde(rename = "v", alias = "gamma")]
    pub gamma: f64,
}

/// A fitted Gamma-Gamma model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaFit {
    /// The estimates.
    pub params: GammaGammaParams,
    /// How the fit went (serialised inline: `log_likelihood`, `n_customers`, `converged`, ...).
    #[serde(flatten)]
    pub diagnostics: FitDiagnostics,
    /// Pearson correlation of frequency and mean spend among repeat customers.
    pub frequency_spend_correlation: f64,
    /// A warning when the independence assumption looks violated.
    pub warning: Option<String>,
}

/// Log-likelihood of one repeat customer.
pub fn log_likelihood(params: &GammaGammaParams, frequency: f64, mean_spend: f64) -> f64 {
    let GammaGammaParams { p, q, gamma } = *params;
    let x = frequency;
    let m = mean_spend;
    ln_gamma(p * x + q) - ln_gamma(p * x) - ln_gamma(q)
        + q * gamma.ln()
        + (p * x - 1.0) * m.ln()
        + p * x * x.ln()
        - (p * x + q) * (gamma + m * x).ln()
}

/// Summed log-likelihood of (frequency, mean spend) rows and its gradient in (p, q, γ), in one
/// pass. The gamma and digamma terms depend on x alone (whole numbers of repeat purchases), so
/// they are tabulated once per call; each row then costs two logarithms.
pub fn log_likelihood_and_gradient(
    params: &GammaGammaParams,
    rows: &[(f64, f64)],
) -> (f64, [f64; 3]) {
    use rayon::prelude::*;
    use statrs::function::gamma::digamma;
    let GammaGammaParams { p, q, gamma } = *params;
    let max_x = rows.iter().map(|r| r.0).fold(0.0f64, f64::max) as usize;
    let (lgq, dgq, ln_gamma_scale) = (ln_gamma(q), digamma(q), gamma.ln());
    // Per x: [lnΓ(px+q) − lnΓ(px) − lnΓ(q) + px ln x, ψ(px+q), ψ(px), ln x].
    let table: Vec<[f64; 4]> = (0..=max_x)
        .map(|x| {
            let xf = x as f64;
            let lx = if x > 0 { xf.ln() } else { 0.0 };
            [
                ln_gamma(p * xf + q) - ln_gamma(p * xf) - lgq + p * xf * lx,
                digamma(p * xf + q),
                digamma(p * xf),
                lx,
            ]
        })
        .collect();
    const CHUNK: usize = 4096;
    let partial: Vec<[f64; 4]> = rows
        .par_chunks(CHUNK)
        .map(|rows| {
            let mut acc = [0.0f64; 4];
            for &(x, m) in rows {
                let Some(t) = table.get(x as usize) else {
                    acc[0] = f64::NAN;
                    continue;
                };
                let (lm, lgm) = (m.ln(), (gamma + m * x).ln());
                acc[0] += t[0] + q * ln_gamma_scale + (p * x - 1.0) * lm - (p * x + q) * lgm;
                acc[1] += x * (t[1] - t[2] + lm + t[3] - lgm);
                acc[2] += t[1] - dgq + ln_gamma_scale - lgm;
                acc[3] += q / gamma - (p * x + q) / (gamma + m * x);
            }
            acc
        })
        .collect();
    let mut total = [0.0f64; 4];
    for a in &partial {
        for (t, v) in total.iter_mut().zip(a) {
            *t += v;
        }
    }
    (total[0], [total[1], total[2], total[3]])
}

/// The Gamma-Gamma model.
#[derive(Debug, Clone, Copy, Default)]
pub struct GammaGamma;

impl GammaGamma {
    /// Fits the model on customers with at least one repeat purchase and positive mean spend;
    /// others are left out (they carry no information on repeat spend).
    ///
    /// `customers` are (frequency, mean repeat spend) pairs.
    ///
    /// # Errors
    /// [`Error::InsufficientData`] with fewer than 10 usable customers;
    /// [`Error::ModelDidNotConverge`].
    pub fn fit(customers: &[(f64, f64)], options: &FitOptions) -> Result<GammaGammaFit> {
        let usable: Vec<(f64, f64)> = customers
            .iter()
            .copied()
            .filter(|(x, m)| *x > 0.0 && *m > 0.0 && m.is_finite())
            .collect();
        if usable.len() < 10 {
            return Err(Error::InsufficientData {
                what: "Gamma-Gamma".into(),
                message: format!(
                    "{} customers with repeat purchases and positive spend; at least 10 are needed",
                    usable.len()
                ),
            });
        }
        let n = usable.len() as f64;
        let nll = |v: &[f64]| -> (f64, Vec<f64>) {
            let params = GammaGammaParams {
                p: super::at(v, 0),
                q: super::at(v, 1),
                gamma: super::at(v, 2),
            };
            let (ll, g) = log_likelihood_and_gradient(&params, &usable);
            (-ll / n, g.iter().map(|g| -g / n).collect())
        };
        let mean_spend = usable.iter().map(|u| u.1).sum::<f64>() / n;
        let starts = [
            vec![1.0, 1.0, 1.0],
            vec![5.0, 3.0, mean_spend.max(1e-3)],
            vec![2.0, 2.0, mean_spend.max(1e-3)],
        ];
        let est = maximise_with_gradient("Gamma-Gamma", &nll, &starts, n, usable.len(), options)?;
        let rho = pearson(&usable);
        Ok(GammaGammaFit {
            params: GammaGammaParams { p: super::at(&est.params, 0), q: super::at(&est.params, 1), gamma: super::at(&est.params, 2) },
            diagnostics: est.diagnostics,
            frequency_spend_correlation: rho,
            warning: (rho.abs() > 0.3).then(|| {
                format!("frequency and spend correlate (ρ = {rho:.2}); the Gamma-Gamma model assumes they do not")
            }),
        })
    }
}

fn pearson(v: &[(f64, f64)]) -> f64 {
    let n = v.len() as f64;
    let (mx, my) = (
        v.iter().map(|a| a.0).sum::<f64>() / n,
        v.iter().map(|a| a.1).sum::<f64>() / n,
    );
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in v {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    if sxx > 0.0 && syy > 0.0 {
        sxy / (sxx * syy).sqrt()
    } else {
        0.0
    }
}

impl GammaGammaFit {
    /// E\[M | x, m̄\]: expected mean spend per future transaction (eq. 5). Customers without repeat
    /// purchases get the population mean p·γ/(q − 1).
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] when q ≤ 1 (the population mean spend is infinite).
    pub fn conditional_expected_average_profit(
        &self,
        frequency: f64,
        mean_spend: f64,
    ) -> Result<f64> {
        let GammaGammaParams { p, q, gamma } = self.params;
        if q <= 1.0 {
            return Err(Error::InvalidSetting {
                setting: "gamma_gamma".into(),
                message: format!(
                    "q = {q:.3} ≤ 1: the model's mean spend is infinite; too few repeat customers?"
                ),
            });
        }
        let (x, m) = if frequency > 0.0 && mean_spend > 0.0 {
            (frequency, mean_spend)
        } else {
            (0.0, 0.0)
        };
        Ok(p * (gamma + m * x) / (p * x + q - 1.0))
    }
}

/// Discounted CLV of one customer over `horizon` model time units (see the module docs).
///
/// # Errors
/// Errors of the two models' predictions.
pub fn customer_lifetime_value(
    purchases: &PurchaseFit,
    spend: &GammaGammaFit,
    history: &RfmObservation,
    mean_spend: f64,
    horizon: u32,
    discount_rate: f64,
) -> Result<f64> {
    let RfmObservation {
        frequency,
        recency,
        t,
    } = *history;
    let m = spend.conditional_expected_average_profit(frequency, mean_spend)?;
    let mut clv = 0.0;
    let mut previous = 0.0;
    for i in 1..=horizon {
        let expected =
            purchases.conditional_expected_purchases(f64::from(i), frequency, recency, t)?;
        clv += m * (expected - previous) / (1.0 + discount_rate).powi(i as i32);
        previous = expected;
    }
    Ok(clv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::testdata::cdnow_spend;

    #[test]
    fn reproduces_fader_hardie_2013_on_cdnow() {
        // Fader & Hardie (2013) note, CDNOW: p = 6.25, q = 3.74, γ = 15.44 (lifetimes tests these
        // to 2 decimals; we use a 1 % relative tolerance for the rounded published values).
        let fit = GammaGamma::fit(&cdnow_spend(), &FitOptions::default()).unwrap();
        let p = fit.params;
        let close = |got: f64, want: f64| ((got - want) / want).abs() < 0.01;
        assert!(
            close(p.p, 6.25) && close(p.q, 3.74) && close(p.gamma, 15.44),
            "{p:?}"
        );
        assert_eq!(fit.diagnostics.customers, 946);
        // The note: E[M] for a customer with x = 2 and m̄ = 22.35 (customer 1) lies between the
        // population mean p·γ/(q−1) ≈ 35.2 and m̄; by eq. 5 ≈ 24.7 at the published estimates.
        let e = fit.conditional_expected_average_profit(2.0, 22.35).unwrap();
        assert!((e - 24.7).abs() < 0.3, "{e}");
        assert!(fit.frequency_spend_correlation.abs() < 0.3);
    }

    #[test]
    fn analytic_gradient_matches_the_likelihood() {
        let rows: Vec<(f64, f64)> = cdnow_spend()
            .into_iter()
            .filter(|(x, m)| *x > 0.0 && *m > 0.0)
            .collect();
        let at = |v: [f64; 3]| GammaGammaParams {
            p: v[0],
            q: v[1],
            gamma: v[2],
        };
        let f = |v: [f64; 3]| -> f64 {
            rows.iter()
                .map(|(x, m)| log_likelihood(&at(v), *x, *m))
                .sum()
        };
        let v = [5.0, 3.0, 12.0];
        let (ll, g) = log_likelihood_and_gradient(&at(v), &rows);
        assert!((ll - f(v)).abs() < 1e-8 * ll.abs(), "{ll} vs {}", f(v));
        for i in 0..3 {
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
    fn clv_is_discounted_spend_times_purchases() {
        let fit = crate::models::purchase::PurchaseModel::Bgnbd
            .fit(
                &crate::models::testdata::cdnow(),
                7.0,
                &FitOptions::default(),
            )
            .unwrap();
        let gg = GammaGamma::fit(&cdnow_spend(), &FitOptions::default()).unwrap();
        let m = gg.conditional_expected_average_profit(2.0, 22.35).unwrap();
        // Without discounting, CLV = E[M] · E[Y(52)].
        let h = RfmObservation {
            frequency: 2.0,
            recency: 30.43,
            t: 38.86,
        };
        let undiscounted = customer_lifetime_value(&fit, &gg, &h, 22.35, 52, 0.0).unwrap();
        let ey = fit
            .conditional_expected_purchases(52.0, 2.0, 30.43, 38.86)
            .unwrap();
        assert!((undiscounted - m * ey).abs() < 1e-9);
        let discounted = customer_lifetime_value(&fit, &gg, &h, 22.35, 52, 0.01).unwrap();
        assert!(discounted < undiscounted && discounted > 0.0);
    }

    #[test]
    fn too_few_customers_is_an_error() {
        assert!(matches!(
            GammaGamma::fit(&[(1.0, 10.0); 3], &FitOptions::default()),
            Err(Error::InsufficientData { .. })
        ));
    }
}
