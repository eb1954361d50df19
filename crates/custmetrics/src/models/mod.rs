//! Probability models of customer lifetime value, fitted by maximum likelihood.
//!
//! - [`bgnbd`]: BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way"), the
//!   purchase and drop-out process of non-contractual customers.
//! - [`gamma_gamma`]: the Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV";
//!   Fader & Hardie 2013 note) and discounted CLV combining both.
//! - [`clv`]: fits both on an RFM table and scores every customer.
//! - [`sbg`]: the shifted-beta-geometric model of contractual (subscription) retention.
//! - [`pareto_nbd`]: Pareto/NBD (Schmittlein, Morrison & Colombo 1987), drop-out at any time.
//! - [`mbgnbd`]: modified BG/NBD (Batislam, Denizel & Filiztekin 2007), drop-out also right
//!   after the first purchase.
//! - [`bgbb`]: BG/BB (Fader, Hardie & Shang 2010) for discrete purchase opportunities.
//! - [`purchase`]: the choice between BG/NBD, Pareto/NBD and MBG/NBD behind one interface.
//! - [`simulate`]: draws histories from each model with known parameters.
//! - [`hyp2f1`]: the Gauss hypergeometric function the BG/NBD expectations need.
//! - [`fit`]: the optimizer glue shared by the models (argmin over log-parameters, standard
//!   errors from the Hessian).
//!
//! Inputs are per-customer [`RfmObservation`]s in the lifetimes convention (see
//! [`crate::metrics::rfm`]); identical observations are compressed into weighted rows before
//! fitting, and likelihoods are summed in parallel with rayon.
//!
//! **Time units are explicit**: a model is fitted in the unit of its observations (days or weeks);
//! every prediction takes horizons in that same unit, and the fitted value carries
//! `time_unit_days` so that a saved model cannot be scored in the wrong unit by accident.

pub mod bgbb;
pub mod bgnbd;
pub mod clv;
pub mod fit;
pub mod fitted;
pub mod gamma_gamma;
pub mod hyp2f1;
pub mod mbgnbd;
pub mod pareto_nbd;
pub mod purchase;
pub mod sbg;
pub mod simulate;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One customer's purchase history summary.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RfmObservation {
    /// Repeat purchase occasions (x).
    pub frequency: f64,
    /// Time from the first to the last purchase (t_x).
    pub recency: f64,
    /// Time from the first purchase to the observation end (T).
    pub t: f64,
}

/// Distinct observations with how many customers share each.
#[derive(Debug, Clone, PartialEq)]
pub struct Compressed {
    /// Distinct observations.
    pub rows: Vec<RfmObservation>,
    /// Customers per row.
    pub weights: Vec<f64>,
}

impl Compressed {
    /// Number of customers represented.
    pub fn customers(&self) -> f64 {
        self.weights.iter().sum()
    }
}

/// Sums `f` over weighted rows in parallel, deterministically: fixed-size chunks are summed in
/// parallel and the partial sums added in order, so the result does not depend on how rayon
/// schedules the work (a plain parallel `sum` does, in the last bits, which would make reports
/// differ between runs).
pub(crate) fn par_weighted_sum<T: Sync>(
    rows: &[T],
    weights: &[f64],
    f: impl Fn(&T) -> f64 + Sync,
) -> f64 {
    use rayon::prelude::*;
    const CHUNK: usize = 4096;
    let partial: Vec<f64> = rows
        .par_chunks(CHUNK)
        .zip(weights.par_chunks(CHUNK))
        .map(|(r, w)| r.iter().zip(w).map(|(x, w)| w * f(x)).sum::<f64>())
        .collect();
    partial.iter().sum()
}

/// The `i`-th parameter of an optimizer's vector. The vectors have the model's fixed length, so
/// the NaN for a missing one cannot happen; if it did, the fit would fail loudly (a NaN
/// likelihood is an error), never panic.
pub(crate) fn at(values: &[f64], i: usize) -> f64 {
    values.get(i).copied().unwrap_or(f64::NAN)
}

/// Compresses identical (frequency, recency, T) rows into weighted rows, in first-seen order.
/// A million customers typically reduce to tens of thousands of rows (CLVTools does the same).
pub fn compress(observations: &[RfmObservation]) -> Compressed {
    let mut index: HashMap<(u64, u64, u64), usize> = HashMap::new();
    let mut rows = Vec::new();
    let mut weights: Vec<f64> = Vec::new();
    for o in observations {
        let key = (o.frequency.to_bits(), o.recency.to_bits(), o.t.to_bits());
        match index.get(&key) {
            Some(&i) => {
                if let Some(w) = weights.get_mut(i) {
                    *w += 1.0;
                }
            }
            None => {
                index.insert(key, rows.len());
                rows.push(*o);
                weights.push(1.0);
            }
        }
    }
    Compressed { rows, weights }
}

/// Checks that observations are usable by a purchase model: whole frequency ≥ 0, 0 ≤ recency ≤ T,
/// and at least one repeat purchase (otherwise the purchase rate is not identified).
pub(crate) fn validate_observations(model: &str, observations: &[RfmObservation]) -> Result<()> {
    if observations.is_empty() {
        return Err(Error::InsufficientData {
            what: model.into(),
            message: "no customers".into(),
        });
    }
    if let Some(o) = observations.iter().find(|o| {
        !(o.frequency >= 0.0
            && o.recency >= 0.0
            && o.t >= o.recency
            && o.frequency.fract() == 0.0
            && o.t.is_finite())
    }) {
        return Err(Error::InsufficientData {
            what: model.into(),
            message: format!(
                "invalid observation (frequency {}, recency {}, T {}): need whole frequency ≥ 0 and 0 ≤ recency ≤ T",
                o.frequency, o.recency, o.t
            ),
        });
    }
    if observations.iter().all(|o| o.frequency == 0.0) {
        return Err(Error::InsufficientData {
            what: model.into(),
            message: "no customer made a repeat purchase, so the purchase rate cannot be estimated"
                .into(),
        });
    }
    Ok(())
}

/// What both fitting routes start from: the observations checked and compressed, the compressed
/// rows with time rescaled so that max T = 1, and that scale.
fn prepare_rfm_fit(
    model: &str,
    observations: &[RfmObservation],
) -> Result<(Compressed, Vec<RfmObservation>, f64)> {
    validate_observations(model, observations)?;
    let c = compress(observations);
    let scale = observations
        .iter()
        .map(|o| o.t)
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let scaled = c
        .rows
        .iter()
        .map(|o| RfmObservation {
            frequency: o.frequency,
            recency: o.recency / scale,
            t: o.t / scale,
        })
        .collect();
    Ok((c, scaled, scale))
}

/// Parameters fitted on rescaled time, back in the original unit (`time_scaled` lists those
/// measured in time units).
fn unscale(mut params: Vec<f64>, time_scaled: &[usize], scale: f64) -> Vec<f64> {
    for &i in time_scaled {
        if let Some(v) = params.get_mut(i) {
            *v *= scale;
        }
    }
    params
}

/// Fits a purchase model whose per-customer log-likelihood is `ll(params, observation)`.
///
/// Two stages, as lifetimes does: first with time rescaled so that max T = 1 (the start points
/// then suit any time unit; `time_scaled` lists the parameters measured in time units, which are
/// scaled back), then a refinement in the original unit so that the likelihood, AIC and standard
/// errors are exact.
pub(crate) fn fit_rfm_model(
    model: &str,
    observations: &[RfmObservation],
    time_scaled: &[usize],
    starts: &[Vec<f64>],
    ll: impl Fn(&[f64], &RfmObservation) -> f64 + Sync,
    options: &FitOptions,
) -> Result<fit::Estimate> {
    let (c, scaled, scale) = prepare_rfm_fit(model, observations)?;
    let n = c.customers();
    let nll_scaled =
        |p: &[f64]| -> f64 { -par_weighted_sum(&scaled, &c.weights, |o| ll(p, o)) / n };
    let first = fit::maximise(model, &nll_scaled, starts, n, c.rows.len(), options)?;
    let start = unscale(first.params, time_scaled, scale);
    let nll = |p: &[f64]| -> f64 { -par_weighted_sum(&c.rows, &c.weights, |o| ll(p, o)) / n };
    fit::maximise(model, &nll, &[start], n, c.rows.len(), options)
}

/// As [`fit_rfm_model`], for models with an analytic gradient: `batch(params, rows, weights)`
/// returns the summed log-likelihood and its gradient over weighted rows.
pub(crate) fn fit_rfm_model_with_gradient(
    model: &str,
    observations: &[RfmObservation],
    time_scaled: &[usize],
    starts: &[Vec<f64>],
    batch: impl Fn(&[f64], &[RfmObservation], &[f64]) -> (f64, Vec<f64>) + Sync,
    options: &FitOptions,
) -> Result<fit::Estimate> {
    let (c, scaled, scale) = prepare_rfm_fit(model, observations)?;
    let n = c.customers();
    let mean = |rows: &[RfmObservation], p: &[f64]| -> (f64, Vec<f64>) {
        let (ll, g) = batch(p, rows, &c.weights);
        (-ll / n, g.iter().map(|g| -g / n).collect())
    };
    let on_scaled = |p: &[f64]| mean(&scaled, p);
    let first = fit::maximise_with_gradient(model, &on_scaled, starts, n, c.rows.len(), options)?;
    let start = unscale(first.params, time_scaled, scale);
    let on_rows = |p: &[f64]| mean(&c.rows, p);
    fit::maximise_with_gradient(model, &on_rows, &[start], n, c.rows.len(), options)
}

/// Options of a maximum-likelihood fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FitOptions {
    /// L2 penalty on the parameters, added to the mean negative log-likelihood as
    /// `penalizer · Σ θ²` (as lifetimes' `penalizer_coef`); 0 = plain maximum likelihood.
    pub penalizer: f64,
    /// Iteration cap per optimizer run.
    pub max_iterations: u64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            penalizer: 0.0,
            max_iterations: 2000,
        }
    }
}

/// How a fit went. A fit that did not converge is an error, never a result; these are the
/// diagnostics of one that did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FitDiagnostics {
    /// Log-likelihood at the estimate (without the penalty).
    pub log_likelihood: f64,
    /// Akaike information criterion, 2k − 2 LL.
    pub aic: f64,
    /// Bayesian information criterion, k ln n − 2 LL.
    pub bic: f64,
    /// Optimizer iterations, all runs included.
    pub iterations: u64,
    /// Always true for a returned fit.
    pub converged: bool,
    /// Standard errors of the parameters (same order as the parameters), from the inverse of the
    /// observed information; `None` where the Hessian was not invertible.
    pub standard_errors: Vec<Option<f64>>,
    /// Customers used.
    #[serde(rename = "n_customers", alias = "customers")]
    pub customers: u64,
    /// Distinct rows the likelihood was evaluated on.
    pub distinct_rows: u64,
}

#[cfg(test)]
pub(crate) mod testdata {
    use super::RfmObservation;

    /// CDNOW sample, 39-week calibration (lifetimes 0.11.3 `cdnow_customers_summary.csv`).
    pub fn cdnow() -> Vec<RfmObservation> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/cdnow/cdnow_customers_summary.csv"
        );
        let mut r = csv::Reader::from_path(path).unwrap();
        r.records()
            .map(|rec| {
                let rec = rec.unwrap();
                let f = |i: usize| rec[i].parse::<f64>().unwrap();
                RfmObservation {
                    frequency: f(1),
                    recency: f(2),
                    t: f(3),
                }
            })
            .collect()
    }

    /// CDNOW with mean repeat spend (zbar).
    pub fn cdnow_spend() -> Vec<(f64, f64)> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/cdnow/cdnow_customers_summary_with_transactions.csv"
        );
        let mut r = csv::Reader::from_path(path).unwrap();
        r.records()
            .map(|rec| {
                let rec = rec.unwrap();
                (
                    rec[1].parse::<f64>().unwrap(),
                    rec[4].parse::<f64>().unwrap(),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_keeps_every_customer() {
        let obs = testdata::cdnow();
        let c = compress(&obs);
        assert_eq!(c.customers() as usize, obs.len());
        assert!(c.rows.len() < obs.len());
    }
}
