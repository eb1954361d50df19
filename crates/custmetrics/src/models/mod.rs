//! Probability models of customer lifetime value, fitted by maximum likelihood.
//!
//! - [`bgnbd`]: BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way"), the
//!   purchase and drop-out process of non-contractual customers.
//! - [`gamma_gamma`]: the Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV";
//!   Fader & Hardie 2013 note) and discounted CLV combining both.
//! - [`clv`]: fits both on an RFM table and scores every customer.
//! - [`sbg`]: the shifted-beta-geometric model of contractual (subscription) retention.
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

pub mod bgnbd;
pub mod clv;
pub mod fit;
pub mod gamma_gamma;
pub mod hyp2f1;
pub mod sbg;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
