//! Predictive CLV for a customer base: fit a purchase model (BG/NBD by default, Pareto/NBD or
//! MBG/NBD) and Gamma-Gamma on the RFM summary, then score
//! every customer (P(alive), expected purchases and spend over the horizon, discounted CLV).
//!
//! Units are explicit: the models are fitted in `time_unit_days` (7 = weeks, the default, as in
//! the papers), the horizon is a number of those units, and the discount rate is given per year
//! and converted to the model unit: d_unit = (1 + d_year)^(unit_days / 365.25) − 1. This avoids
//! the lifetimes confusion between "months" of 30 days and weeks.
//!
//! Scoring factors each prediction as E\[Y(t) | x, t_x, T\] = P(alive | x, t_x, T) ·
//! E\[Y(t) | alive, x, T\] (true of all three purchase models: BG/NBD eq. 10, MBG/NBD eq. 7,
//! Pareto/NBD eq. 22), so the discounted sum over the horizon is computed once per distinct
//! (frequency, T) in parallel; recency enters through P(alive) and spend as a per-customer factor.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::audit::{AuditFinding, audit};
use super::compare::ModelComparison;
use super::gamma_gamma::{GammaGamma, GammaGammaFit};
use super::intervals::{ClvIntervals, CustomerIntervals, IntervalOptions, Scoring, clv_intervals};
use super::purchase::{PurchaseFit, PurchaseModel};
use super::{FitOptions, RfmObservation};
use crate::metrics::rfm::Rfm;
use crate::summary::CustomerId;
use crate::{Error, Result};

/// How to fit and score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ClvOptions {
    /// Days per model time unit (7 = weeks).
    pub time_unit_days: u32,
    /// Horizon in model time units.
    pub horizon: u32,
    /// Discount rate per year (0.10 = 10 %).
    pub annual_discount_rate: f64,
    /// Fit options for both models.
    pub fit: FitOptions,
    /// The purchase model (BG/NBD by default).
    pub model: PurchaseModel,
    /// Prediction intervals from the parameters' uncertainty; `None` (the default) for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervals: Option<IntervalOptions>,
}

impl Default for ClvOptions {
    fn default() -> Self {
        ClvOptions {
            time_unit_days: 7,
            horizon: 52,
            annual_discount_rate: 0.10,
            fit: FitOptions::default(),
            model: PurchaseModel::default(),
            intervals: None,
        }
    }
}

impl ClvOptions {
    /// The horizon when none is given: a year, as 52 weeks or, in any other unit, 365 of them
    /// (the unit is meant to be a day then).
    pub fn default_horizon(time_unit_days: u32) -> u32 {
        if time_unit_days == 7 { 52 } else { 365 }
    }

    /// The discount rate per model time unit.
    pub fn discount_rate_per_unit(&self) -> f64 {
        (1.0 + self.annual_discount_rate).powf(f64::from(self.time_unit_days) / 365.25) - 1.0
    }
}

/// One scored customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClvCustomer {
    /// Customer id.
    #[serde(serialize_with = "crate::summary::serialize_customer_id")]
    pub customer_id: CustomerId,
    /// Repeat purchase occasions.
    pub frequency: f64,
    /// First to last purchase, model units.
    pub recency: f64,
    /// First purchase to observation end, model units.
    #[serde(rename = "T")]
    pub t: f64,
    /// Mean repeat spend.
    pub monetary_value: f64,
    /// P(alive | history).
    pub probability_alive: f64,
    /// P(alive) at the horizon's end, not knowing what happens before it
    /// ([`PurchaseFit::survival_if_alive`]).
    pub probability_alive_at_horizon: f64,
    /// Expected purchases over the horizon.
    pub expected_purchases: f64,
    /// Expected spend per future purchase (Gamma-Gamma).
    pub expected_average_spend: f64,
    /// Discounted CLV over the horizon.
    pub clv: f64,
    /// Intervals of P(alive), expected purchases and CLV, when asked for. Boxed: they are
    /// given for the listed customers only when asked, and inline they took 56 of this row's
    /// 152 bytes for every customer listed (1.3 GB when `clv` lists 26M customers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intervals: Option<Box<CustomerIntervals>>,
}

/// The scored customer base.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClvResult {
    /// Options used.
    pub options: ClvOptions,
    /// Discount rate per model time unit.
    pub discount_rate_per_unit: f64,
    /// The purchase model (`model` names which: `bgnbd`, `pareto_nbd`, `mbgnbd`).
    pub purchase_model: PurchaseFit,
    /// The spend model (Gamma-Gamma).
    pub spend_model: GammaGammaFit,
    /// Customers scored.
    pub customers: u64,
    /// Sum of CLV.
    pub total_clv: f64,
    /// Mean CLV.
    pub mean_clv: f64,
    /// Expected purchases of the whole base over the horizon.
    pub expected_purchases: f64,
    /// Customers with P(alive) < 0.5.
    pub likely_lapsed: u64,
    /// Mean P(alive) over all customers.
    pub alive_mean: Option<f64>,
    /// Mean P(alive) at the horizon's end.
    pub alive_mean_at_horizon: Option<f64>,
    /// CLV at the 10th, 25th, 50th, 75th, 90th and 99th percentiles.
    pub clv_percentiles: Vec<(f64, f64)>,
    /// Customers ranked by CLV, highest first.
    pub ranked: Vec<ClvCustomer>,
    /// The horizon in blocks of about a quarter (13 weeks, or 91 units of a day; the last block
    /// may be shorter): expected purchases and CLV of the scored customers in each. They add up
    /// to [`ClvResult::expected_purchases`] and [`ClvResult::total_clv`].
    pub by_period: Vec<FutureBlock>,
    /// Calibration/holdout check, when a holdout period was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout: Option<HoldoutValidation>,
    /// Prediction intervals of the totals, when asked for ([`ClvOptions::intervals`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intervals: Option<ClvIntervals>,
    /// Every purchase model fitted on the same data, when a comparison was asked for
    /// (`ReportOptions::clv_compare`); the figures above are scored with its chosen model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison: Option<ModelComparison>,
    /// The data's conflicts with the models' assumptions ([`super::audit::audit`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub audit: Vec<AuditFinding>,
    /// Why intervals were asked for but not computed (a fit without a usable covariance, or
    /// draws the models cannot predict with). The point predictions stand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intervals_unavailable: Option<String>,
    /// The cohort triangle's next periods as forecast by the models, when asked for
    /// (`ReportOptions::clv_forecast_periods`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cohort_forecast: Option<super::cohort_forecast::CohortForecast>,
    /// The models refitted with customer attributes, when asked for
    /// (`ReportOptions::clv_covariates`); the figures above are the covariate-free models'.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub covariates: Option<super::covariates::CovariateResult>,
}

/// Fits both models on an RFM table and scores every customer.
///
/// # Errors
/// Model errors ([`Error::InsufficientData`], [`Error::ModelDidNotConverge`]).
pub fn predict_clv(rfm: &Rfm, options: &ClvOptions) -> Result<ClvResult> {
    let (purchase_model, spend_model) = fit_clv_models(rfm, options)?;
    score_clv(rfm, purchase_model, spend_model, options)
}

/// The purchase models' input, one (frequency, recency, T) per customer of an RFM table, in its
/// time unit.
pub fn observations(rfm: &Rfm) -> Vec<RfmObservation> {
    rfm.customers
        .iter()
        .map(|c| RfmObservation {
            frequency: f64::from(c.frequency),
            recency: c.recency,
            t: c.t,
        })
        .collect()
}

fn check_unit(rfm: &Rfm, options: &ClvOptions) -> Result<()> {
    if rfm.time_unit_days != options.time_unit_days {
        return Err(Error::InvalidSetting {
            setting: "time_unit".into(),
            message: format!(
                "the RFM table is in {}-day units but the model is asked for {}-day units",
                rfm.time_unit_days, options.time_unit_days
            ),
        });
    }
    Ok(())
}

/// Fits the purchase model chosen in `options` and Gamma-Gamma on an RFM table.
///
/// # Errors
/// Model errors ([`Error::InsufficientData`], [`Error::ModelDidNotConverge`]).
pub fn fit_clv_models(rfm: &Rfm, options: &ClvOptions) -> Result<(PurchaseFit, GammaGammaFit)> {
    Ok((
        fit_purchase_model(rfm, options)?,
        fit_spend_model(rfm, options)?,
    ))
}

/// Fits the purchase model chosen in `options` (BG/NBD, Pareto/NBD or MBG/NBD) on an RFM table.
///
/// # Errors
/// Model errors ([`Error::InsufficientData`], [`Error::ModelDidNotConverge`]); the table's time
/// unit differing from the options'.
pub fn fit_purchase_model(rfm: &Rfm, options: &ClvOptions) -> Result<PurchaseFit> {
    check_unit(rfm, options)?;
    options.model.fit(
        &observations(rfm),
        f64::from(options.time_unit_days),
        &options.fit,
    )
}

/// Fits Gamma-Gamma on the repeat customers' (frequency, mean repeat spend) of an RFM table.
///
/// # Errors
/// Model errors ([`Error::InsufficientData`], [`Error::ModelDidNotConverge`]).
pub fn fit_spend_model(rfm: &Rfm, options: &ClvOptions) -> Result<GammaGammaFit> {
    let spend: Vec<(f64, f64)> = rfm
        .customers
        .iter()
        .map(|c| (f64::from(c.frequency), c.monetary_value))
        .collect();
    GammaGamma::fit(&spend, &options.fit)
}

/// Scores every customer of an RFM table with fitted (for example saved) models.
///
/// # Errors
/// [`Error::InvalidSetting`] when the models' time unit differs from the table's; prediction
/// errors.
pub fn score_clv(
    rfm: &Rfm,
    purchase_model: PurchaseFit,
    spend_model: GammaGammaFit,
    options: &ClvOptions,
) -> Result<ClvResult> {
    score_clv_top(rfm, purchase_model, spend_model, options, usize::MAX)
}

/// [`score_clv`] listing only the `ranked_limit` highest-CLV customers in
/// [`ClvResult::ranked`]; every customer still counts in the totals, mean, percentiles and
/// P(alive) figures. A report lists a few dozen, and a row per customer is most of the memory.
///
/// # Errors
/// As [`score_clv`].
pub fn score_clv_top(
    rfm: &Rfm,
    purchase_model: PurchaseFit,
    spend_model: GammaGammaFit,
    options: &ClvOptions,
    ranked_limit: usize,
) -> Result<ClvResult> {
    check_unit(rfm, options)?;
    if (purchase_model.time_unit_days() - f64::from(rfm.time_unit_days)).abs() > 1e-9 {
        return Err(Error::InvalidSetting {
            setting: "time_unit".into(),
            message: format!(
                "the model was fitted in {}-day units but the data is summarised in {}-day units; use the model's --time-unit",
                purchase_model.time_unit_days(),
                rfm.time_unit_days
            ),
        });
    }
    let observations = observations(rfm);
    let gamma_gamma = spend_model;
    let d = options.discount_rate_per_unit();

    // E[Y(t) | x, t_x, T] = P(alive | x, t_x, T) · E[Y(t) | alive, x, T] for every purchase
    // model, so the discounted sum over the horizon (the costly part: a hypergeometric function
    // per step) is needed once per distinct (x, T), and each customer then costs one P(alive).
    // On 2.6M customers that is ~40k curves instead of ~490k distinct (x, t_x, T) rows.
    let (curves_for, curve_of) =
        super::distinct_curves(observations.iter().map(|o| (o.frequency, o.t)));
    // (discounted expected purchases, expected purchases at the horizon), both if alive, and
    // the same two per block of the horizon (see `FutureBlock`).
    let block = future_block_units(options.time_unit_days);
    type Curve = ((f64, f64), Vec<(f64, f64)>);
    let curves_with_blocks: Vec<Curve> = curves_for
        .par_iter()
        .map(|&(x, big_t)| -> Result<Curve> {
            let mut discounted = 0.0;
            let mut previous = 0.0;
            let mut blocks: Vec<(f64, f64)> = Vec::new();
            for i in 1..=options.horizon {
                let e = purchase_model.expected_purchases_if_alive(f64::from(i), x, big_t)?;
                let step = (e - previous) / (1.0 + d).powi(i as i32);
                discounted += step;
                if (i - 1) % block == 0 {
                    blocks.push((0.0, 0.0));
                }
                if let Some(b) = blocks.last_mut() {
                    b.0 += step;
                    b.1 += e - previous;
                }
                previous = e;
            }
            Ok(((discounted, previous), blocks))
        })
        .collect::<Result<_>>()?;
    let curves: Vec<(f64, f64)> = curves_with_blocks.iter().map(|c| c.0).collect();
    // P(still alive at the horizon's end | alive now), per distinct (x, T) as well.
    let survival: Vec<f64> = curves_for
        .par_iter()
        .map(|&(x, big_t)| purchase_model.survival_if_alive(f64::from(options.horizon), x, big_t))
        .collect::<Result<_>>()?;
    let survival_of = |i: usize| -> f64 {
        curve_of
            .get(i)
            .and_then(|&k| survival.get(k as usize))
            .copied()
            .unwrap_or(f64::NAN)
    };
    // Every customer is scored as a light record; ids are cloned only for the `ranked_limit`
    // customers listed, and expected purchases (P(alive) times the customer's curve) are
    // computed again where read rather than held (8 bytes a customer).
    // (index into the table, P(alive), expected spend, CLV).
    type Scored = (usize, f64, f64, f64);
    let expected_of = |&(i, alive, ..): &Scored| {
        let curve = curve_of.get(i).and_then(|&k| curves.get(k as usize));
        curve.map_or(f64::NAN, |&(_, expected)| alive * expected)
    };
    let mut scored: Vec<Scored> = rfm
        .customers
        .par_iter()
        .zip(&observations)
        .enumerate()
        .map(|(i, (c, o))| -> Result<Option<Scored>> {
            let curve = curve_of.get(i).and_then(|&k| curves.get(k as usize));
            let Some(&(discounted, _)) = curve else {
                return Ok(None);
            };
            let alive = purchase_model.probability_alive(o.frequency, o.recency, o.t);
            if !alive.is_finite() {
                return Err(Error::InvalidSetting {
                    setting: "horizon".into(),
                    message: format!(
                        "{} cannot compute P(alive) for x = {}, t_x = {}, T = {}",
                        purchase_model.model().label(),
                        o.frequency,
                        o.recency,
                        o.t
                    ),
                });
            }
            let m =
                gamma_gamma.conditional_expected_average_profit(o.frequency, c.monetary_value)?;
            Ok(Some((i, alive, m, m * alive * discounted)))
        })
        .filter_map(Result::transpose)
        .collect::<Result<_>>()?;
    // The horizon's blocks: Σ P(alive) and Σ spend · P(alive) per distinct (x, T), in table
    // order (a fixed summation order), times each curve's block values.
    let mut alive_by_curve = vec![0.0; curves.len()];
    let mut value_by_curve = vec![0.0; curves.len()];
    for &(i, alive, m, _) in &scored {
        if let Some(&k) = curve_of.get(i)
            && let (Some(a), Some(v)) = (
                alive_by_curve.get_mut(k as usize),
                value_by_curve.get_mut(k as usize),
            )
        {
            *a += alive;
            *v += m * alive;
        }
    }
    let blocks = options.horizon.div_ceil(block);
    let by_period: Vec<FutureBlock> = (0..blocks)
        .map(|b| {
            let (mut clv, mut purchases) = (0.0, 0.0);
            for (k, (_, per_block)) in curves_with_blocks.iter().enumerate() {
                if let Some(&(discounted, expected)) = per_block.get(b as usize) {
                    clv += value_by_curve.get(k).copied().unwrap_or(0.0) * discounted;
                    purchases += alive_by_curve.get(k).copied().unwrap_or(0.0) * expected;
                }
            }
            FutureBlock {
                from_unit: b * block + 1,
                to_unit: ((b + 1) * block).min(options.horizon),
                expected_purchases: purchases,
                clv,
            }
        })
        .collect();
    // Highest CLV first, ties by id: a total order, so an unstable sort is deterministic.
    let id = |i: usize| rfm.customers.get(i).map(|c| c.customer_id.as_str());
    scored.par_sort_unstable_by(|a, b| b.3.total_cmp(&a.3).then_with(|| id(a.0).cmp(&id(b.0))));
    let n = scored.len();
    let total: f64 = scored.iter().map(|c| c.3).sum();
    // Read backwards, the CLVs are sorted in `total_cmp` order, as a sort of a copy would give
    // them (equal under `total_cmp` is equal bits); the copy was 0.2 GB at 26M customers.
    let ascending = |k: usize| {
        n.checked_sub(k + 1)
            .and_then(|i| scored.get(i))
            .map(|c| c.3)
    };
    let clv_percentiles = [0.10, 0.25, 0.50, 0.75, 0.90, 0.99]
        .iter()
        .filter_map(|&q| crate::summary::quantile_of_sorted(n, ascending, q).map(|v| (q, v)))
        .collect();
    // Intervals for the totals and the listed customers: the whole scoring again per parameter
    // draw. A model that cannot give them leaves the point predictions standing, with the reason.
    let (intervals, listed_intervals, intervals_unavailable) = match options.intervals {
        None => (None, Vec::new(), None),
        Some(interval_options) => {
            let listed: Vec<usize> = scored.iter().take(ranked_limit).map(|c| c.0).collect();
            let monetary: Vec<f64> = rfm.customers.iter().map(|c| c.monetary_value).collect();
            let scoring = Scoring {
                observations: &observations,
                monetary: &monetary,
                horizon: options.horizon,
                discount_per_unit: d,
                block_units: block,
            };
            match clv_intervals(
                &scoring,
                &purchase_model,
                &gamma_gamma,
                &interval_options,
                &listed,
            ) {
                Ok((totals, customers)) => (Some(totals), customers, None),
                Err(e) => (None, Vec::new(), Some(e.to_string())),
            }
        }
    };
    // Sized once: `clv` lists every customer, and growing by doubling held the old and the new
    // buffer at once (up to three times the list, 26M rows of 104 bytes).
    let mut ranked = Vec::with_capacity(scored.len().min(ranked_limit));
    ranked.extend(
        scored
            .iter()
            .take(ranked_limit)
            .enumerate()
            .filter_map(|(k, record)| {
                let &(i, alive, m, clv) = record;
                let (c, o) = (rfm.customers.get(i)?, observations.get(i)?);
                Some(ClvCustomer {
                    customer_id: c.customer_id.clone(),
                    frequency: o.frequency,
                    recency: o.recency,
                    t: o.t,
                    monetary_value: c.monetary_value,
                    probability_alive: alive,
                    probability_alive_at_horizon: alive * survival_of(i),
                    expected_purchases: expected_of(record),
                    expected_average_spend: m,
                    clv,
                    intervals: listed_intervals.get(k).copied().map(Box::new),
                })
            }),
    );
    let alive_at_end: f64 = scored
        .iter()
        .filter_map(|&(i, alive, ..)| observations.get(i).map(|_| alive * survival_of(i)))
        .sum();
    let findings = audit(
        &observations,
        purchase_model.model(),
        options.time_unit_days,
    );
    Ok(ClvResult {
        options: *options,
        discount_rate_per_unit: d,
        customers: n as u64,
        total_clv: total,
        mean_clv: if n > 0 { total / n as f64 } else { 0.0 },
        expected_purchases: scored.iter().map(expected_of).sum(),
        likely_lapsed: scored.iter().filter(|c| c.1 < 0.5).count() as u64,
        alive_mean: (n > 0).then(|| scored.iter().map(|c| c.1).sum::<f64>() / n as f64),
        alive_mean_at_horizon: (n > 0).then(|| alive_at_end / n as f64),
        clv_percentiles,
        purchase_model,
        spend_model: gamma_gamma,
        ranked,
        by_period,
        holdout: None,
        comparison: None,
        audit: findings,
        intervals,
        intervals_unavailable,
        cohort_forecast: None,
        covariates: None,
    })
}

/// One block of the horizon in [`ClvResult::by_period`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FutureBlock {
    /// First unit of the block (1 = the first unit after the observation end).
    pub from_unit: u32,
    /// Last unit of the block.
    pub to_unit: u32,
    /// Expected purchases of the scored customers in the block.
    pub expected_purchases: f64,
    /// Their discounted CLV earned in the block.
    pub clv: f64,
}

/// Units per block of [`ClvResult::by_period`]: a quarter of a year, 13 weeks in weeks.
fn future_block_units(time_unit_days: u32) -> u32 {
    ((365.25 / 4.0 / f64::from(time_unit_days.max(1))).round() as u32).max(1)
}

/// Calibration/holdout check: the model fitted on the calibration period predicts each
/// customer's purchases in the holdout period, compared with what they did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldoutValidation {
    /// First day of the holdout period.
    pub holdout_from: String,
    /// Last day of the holdout period.
    pub holdout_to: String,
    /// Holdout length in model time units.
    pub holdout_units: f64,
    /// Calibration customers compared.
    pub customers: u64,
    /// Sum of predicted repeat purchases (purchase days) in the holdout.
    pub predicted_total: f64,
    /// Sum of actual purchase days in the holdout.
    pub actual_total: f64,
    /// Mean absolute error per customer.
    pub mean_absolute_error: f64,
    /// Root mean squared error per customer.
    pub root_mean_squared_error: f64,
    /// Mean of predicted − actual per customer (positive: the model predicts too many).
    pub bias: f64,
    /// (predicted total − actual total) / actual total; `None` without actual purchases.
    pub total_error: Option<f64>,
    /// Mean predicted and actual holdout purchases by calibration frequency (7 = "7 or more"), the
    /// conditional-expectation check of Fader, Hardie & Lee (2005, fig. 4).
    pub by_frequency: Vec<HoldoutBucket>,
    /// Customers in ten equal groups by predicted holdout purchases (1 = lowest), with the mean
    /// predicted and actual purchases of each: calibration of the per-customer predictions.
    pub deciles: Vec<HoldoutBucket>,
    /// Customers by calibration-period repeat purchases (0 to 6, then 7 or more), actual against
    /// the model's expected count Σ_c P(X(T_c) = x) (Fader, Hardie & Lee 2005, fig. 1). BG/NBD
    /// only (the one model here with P(X(t) = x)); empty for the others.
    pub calibration_histogram: Vec<HistogramBin>,
    /// Repeat purchases per model time unit from the first calibration customer's acquisition
    /// to the holdout's end, actual against the model's expectation, incremental and cumulative
    /// (the tracking plots of Fader, Hardie & Lee 2005, figs. 2–3).
    pub tracking: Vec<TrackingPoint>,
}

/// One bar of [`HoldoutValidation::calibration_histogram`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistogramBin {
    /// Repeat purchases in the calibration period (7 means 7 or more).
    pub purchases: u32,
    /// Customers with that many.
    pub actual: u64,
    /// The model's expected number of customers with that many.
    pub expected: f64,
}

/// The calibration histogram of [`HoldoutValidation::calibration_histogram`]: for x = 0..6,
/// Σ_c P(X(T_c) = x), and for 7+, the customers less those (FHL 2005, fig. 1).
fn calibration_histogram(purchase_model: &PurchaseFit, rfm: &Rfm) -> Vec<HistogramBin> {
    let PurchaseFit::Bgnbd(fit) = purchase_model else {
        return Vec::new();
    };
    let mut actual = [0u64; 8];
    let mut expected = [0.0; 8];
    for c in &rfm.customers {
        if let Some(cell) = actual.get_mut(c.frequency.min(7) as usize) {
            *cell += 1;
        }
        for (x, cell) in expected.iter_mut().take(7).enumerate() {
            *cell += fit.probability_of_purchases(x as u32, c.t);
        }
    }
    let below: f64 = expected.iter().take(7).sum();
    if let Some(last) = expected.get_mut(7) {
        *last = rfm.customers.len() as f64 - below;
    }
    (0..8)
        .map(|x| HistogramBin {
            purchases: x as u32,
            actual: actual.get(x).copied().unwrap_or(0),
            expected: expected.get(x).copied().unwrap_or(0.0),
        })
        .collect()
}

/// One time unit of [`HoldoutValidation::tracking`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackingPoint {
    /// Units since the first acquisition (1 = the first unit).
    pub unit: u32,
    /// The unit's first day.
    pub from: String,
    /// Whether the unit starts in the holdout period.
    pub holdout: bool,
    /// Actual repeat purchases (purchase days after each customer's first) in the unit.
    pub actual: u64,
    /// Expected repeat purchases in the unit: Σ over customers of E\[X(t)\] differences.
    pub expected: f64,
    /// Actual repeat purchases up to the unit's end.
    pub cumulative_actual: u64,
    /// Expected repeat purchases up to the unit's end.
    pub cumulative_expected: f64,
}

/// One group of customers of [`HoldoutValidation`]: a calibration frequency, or a decile of
/// predicted purchases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldoutBucket {
    /// Calibration repeat purchases (7 means 7 or more) in `by_frequency`; the decile (1–10) in
    /// `deciles`.
    pub frequency: u32,
    /// Customers in the bucket.
    pub customers: u64,
    /// Mean predicted holdout purchases.
    pub predicted_mean: f64,
    /// Mean actual holdout purchases.
    pub actual_mean: f64,
}

/// Compares the fitted model's predictions for the holdout period with the actual purchase days
/// (`actual` by customer id; customers absent from it made none).
///
/// # Errors
/// Prediction errors.
pub fn validate_holdout(
    result: &ClvResult,
    rfm: &Rfm,
    actual: &HashMap<String, u32>,
    holdout_days: f64,
    holdout_from: String,
    holdout_to: String,
) -> Result<HoldoutValidation> {
    validate_holdout_for(
        &result.purchase_model,
        result.options.time_unit_days,
        rfm,
        actual,
        holdout_days,
        holdout_from,
        holdout_to,
    )
}

/// [`validate_holdout`] for a purchase model fitted in `time_unit_days`-day units, without a
/// scoring (`clv compare` checks every model this way).
///
/// # Errors
/// Prediction errors.
pub fn validate_holdout_for(
    purchase_model: &PurchaseFit,
    time_unit_days: u32,
    rfm: &Rfm,
    actual: &HashMap<String, u32>,
    holdout_days: f64,
    holdout_from: String,
    holdout_to: String,
) -> Result<HoldoutValidation> {
    let units = holdout_days / f64::from(time_unit_days);
    let mut buckets: std::collections::BTreeMap<u32, (u64, f64, f64)> =
        std::collections::BTreeMap::new();
    let (mut predicted_total, mut actual_total, mut abs_err) = (0.0, 0.0, 0.0);
    let (mut squared_err, mut pairs) = (0.0, Vec::with_capacity(rfm.customers.len()));
    for c in &rfm.customers {
        let predicted = purchase_model.conditional_expected_purchases(
            units,
            f64::from(c.frequency),
            c.recency,
            c.t,
        )?;
        let got = f64::from(actual.get(c.customer_id.as_str()).copied().unwrap_or(0));
        predicted_total += predicted;
        actual_total += got;
        abs_err += (predicted - got).abs();
        squared_err += (predicted - got) * (predicted - got);
        pairs.push((predicted, got));
        let b = buckets.entry(c.frequency.min(7)).or_default();
        b.0 += 1;
        b.1 += predicted;
        b.2 += got;
    }
    let n = rfm.customers.len().max(1) as f64;
    Ok(HoldoutValidation {
        holdout_from,
        holdout_to,
        holdout_units: units,
        customers: rfm.customers.len() as u64,
        predicted_total,
        actual_total,
        mean_absolute_error: abs_err / n,
        root_mean_squared_error: (squared_err / n).sqrt(),
        bias: (predicted_total - actual_total) / n,
        total_error: (actual_total > 0.0).then(|| (predicted_total - actual_total) / actual_total),
        deciles: deciles(pairs),
        calibration_histogram: calibration_histogram(purchase_model, rfm),
        tracking: Vec::new(),
        by_frequency: buckets
            .into_iter()
            .map(|(frequency, (k, p, a))| HoldoutBucket {
                frequency,
                customers: k,
                predicted_mean: p / k as f64,
                actual_mean: a / k as f64,
            })
            .collect(),
    })
}

/// (predicted, actual) pairs in ten groups by predicted value, as equal as the count allows (the
/// first `len % 10` groups one larger); ties in prediction keep the table's order.
fn deciles(mut pairs: Vec<(f64, f64)>) -> Vec<HoldoutBucket> {
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = pairs.len();
    let mut out = Vec::new();
    let mut start = 0;
    for d in 0..10 {
        let size = n / 10 + usize::from(d < n % 10);
        let group = pairs.get(start..start + size).unwrap_or(&[]);
        start += size;
        if group.is_empty() {
            continue;
        }
        let k = group.len() as f64;
        out.push(HoldoutBucket {
            frequency: d as u32 + 1,
            customers: group.len() as u64,
            predicted_mean: group.iter().map(|p| p.0).sum::<f64>() / k,
            actual_mean: group.iter().map(|p| p.1).sum::<f64>() / k,
        });
    }
    out
}

/// The tracking plot's points: repeat purchases per model time unit from `start_day` (the first
/// calibration customer's acquisition) to `end_day`, actual (`repeat_days`, per day) against
/// the expectation Σ_c E\[X(t_c)\], where t_c is the time from customer c's first purchase to the
/// unit's last day and E\[X(t)\] the model's expected repeat purchases of a new customer (as in
/// Fader, Hardie & Lee 2005, figs. 2–3: the same unconditional expectation over the calibration
/// and the holdout periods). Customers come from `rfm` (the calibration table: first purchase =
/// `calibration_end_day` − T).
///
/// # Errors
/// Prediction errors.
pub fn holdout_tracking(
    purchase_model: &PurchaseFit,
    rfm: &Rfm,
    repeat_days: &[(i32, u64)],
    calibration_end_day: i32,
    holdout_from_day: i32,
    end_day: i32,
) -> Result<Vec<TrackingPoint>> {
    let unit = i64::from(rfm.time_unit_days.max(1));
    let mut acquired: std::collections::BTreeMap<i32, u64> = std::collections::BTreeMap::new();
    for c in &rfm.customers {
        let first = calibration_end_day - (c.t * unit as f64).round() as i32;
        *acquired.entry(first).or_default() += 1;
    }
    let Some(&start_day) = acquired.keys().next() else {
        return Ok(Vec::new());
    };
    let units = ((i64::from(end_day) - i64::from(start_day)) / unit + 1).max(0);
    let mut actual = vec![0u64; units as usize];
    for &(day, n) in repeat_days {
        let k = (i64::from(day) - i64::from(start_day)).div_euclid(unit);
        if let Some(cell) = usize::try_from(k).ok().and_then(|k| actual.get_mut(k)) {
            *cell += n;
        }
    }
    let mut points = Vec::with_capacity(actual.len());
    let (mut cumulative_actual, mut previous_expected) = (0u64, 0.0);
    for (k, &got) in actual.iter().enumerate() {
        let first_day = i64::from(start_day) + k as i64 * unit;
        let last_day = (first_day + unit - 1).min(i64::from(end_day));
        let mut expected_to_date = 0.0;
        for (&first, &n) in acquired.range(..=last_day as i32) {
            let t = (last_day - i64::from(first)) as f64 / unit as f64;
            expected_to_date += n as f64 * purchase_model.expected_purchases(t)?;
        }
        cumulative_actual += got;
        points.push(TrackingPoint {
            unit: k as u32 + 1,
            from: crate::period::date_from_days(first_day as i32).to_string(),
            holdout: first_day >= i64::from(holdout_from_day),
            actual: got,
            expected: expected_to_date - previous_expected,
            cumulative_actual,
            cumulative_expected: expected_to_date,
        });
        previous_expected = expected_to_date;
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_customer_is_104_bytes() {
        // Id (24), nine figures (72), boxed intervals (8): `clv` lists every customer.
        assert_eq!(std::mem::size_of::<ClvCustomer>(), 104);
    }

    #[test]
    fn deciles_split_evenly_and_in_order() {
        // 23 customers: groups of 3, 3, 3, 2, ... (23 = 10·2 + 3).
        let pairs: Vec<(f64, f64)> = (0..23).rev().map(|i| (f64::from(i), 1.0)).collect();
        let d = deciles(pairs);
        assert_eq!(
            d.iter().map(|b| b.customers).collect::<Vec<_>>(),
            [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]
        );
        assert_eq!(d[0].predicted_mean, 1.0); // 0, 1, 2
        assert_eq!(d[9].predicted_mean, 21.5); // 21, 22
        assert!(deciles(Vec::new()).is_empty());
    }

    #[test]
    fn weekly_discount_from_annual() {
        let o = ClvOptions::default();
        // (1.10)^(7/365.25) − 1 = 0.0018283...
        assert!(
            (o.discount_rate_per_unit() - 0.001828).abs() < 1e-5,
            "{}",
            o.discount_rate_per_unit()
        );
        let days = ClvOptions {
            time_unit_days: 1,
            ..o
        };
        assert!(((1.0 + days.discount_rate_per_unit()).powf(365.25) - 1.10).abs() < 1e-12);
    }

    #[test]
    fn scoring_by_distinct_frequency_and_age_equals_the_direct_sum() {
        // CDNOW's calibration summary, cut to 400 customers, in weeks.
        let customers: Vec<crate::metrics::rfm::RfmRow> = crate::models::testdata::cdnow()
            .iter()
            .zip(crate::models::testdata::cdnow_spend().iter().cycle())
            .take(400)
            .enumerate()
            .map(|(i, (o, &(_, m)))| crate::metrics::rfm::RfmRow {
                customer_id: format!("c{i:04}").into(),
                frequency: o.frequency as u32,
                recency: o.recency,
                t: o.t,
                monetary_value: if o.frequency > 0.0 { m } else { 0.0 },
                days_since_last: 0,
                orders: 1 + o.frequency as u32,
                revenue: 0.0,
                r_score: 1,
                f_score: 1,
                m_score: 1,
                segment: None,
            })
            .collect();
        let rfm = Rfm {
            time_unit_days: 7,
            customers,
            segments: Default::default(),
            by_segment: vec![],
        };
        for model in PurchaseModel::ALL {
            let options = ClvOptions {
                model,
                ..ClvOptions::default()
            };
            let scored = predict_clv(&rfm, &options).unwrap();
            assert_eq!(scored.ranked.len(), 400);
            // The horizon's quarters: 1–13, 14–26, 27–39, 40–52 weeks, adding up to the totals;
            // each quarter's CLV is the per-customer sum over its weeks (checked below per
            // customer through the whole horizon).
            let blocks: Vec<(u32, u32)> = scored
                .by_period
                .iter()
                .map(|b| (b.from_unit, b.to_unit))
                .collect();
            assert_eq!(blocks, [(1, 13), (14, 26), (27, 39), (40, 52)]);
            let clv: f64 = scored.by_period.iter().map(|b| b.clv).sum();
            let purchases: f64 = scored.by_period.iter().map(|b| b.expected_purchases).sum();
            assert!((clv - scored.total_clv).abs() < 1e-9 * scored.total_clv);
            assert!((purchases - scored.expected_purchases).abs() < 1e-9 * purchases);
            let first_quarter: f64 = scored
                .ranked
                .iter()
                .map(|c| {
                    scored
                        .purchase_model
                        .conditional_expected_purchases(13.0, c.frequency, c.recency, c.t)
                        .unwrap()
                })
                .sum();
            let q1 = scored.by_period[0].expected_purchases;
            assert!(
                (q1 - first_quarter).abs() < 1e-9 * q1,
                "{q1} vs {first_quarter}"
            );
            let d = options.discount_rate_per_unit();
            for c in &scored.ranked {
                // Eq. 10 (22, 7) per customer and step, as the papers write it.
                let (mut discounted, mut previous) = (0.0, 0.0);
                for i in 1..=options.horizon {
                    let e = scored
                        .purchase_model
                        .conditional_expected_purchases(f64::from(i), c.frequency, c.recency, c.t)
                        .unwrap();
                    discounted += (e - previous) / (1.0 + d).powi(i as i32);
                    previous = e;
                }
                let clv = c.expected_average_spend * discounted;
                assert!(
                    (c.clv - clv).abs() <= 1e-9 * clv.abs().max(1.0),
                    "{model:?} {c:?}: {clv}"
                );
                assert!((c.expected_purchases - previous).abs() <= 1e-12 * previous.max(1.0));
            }
            // Listing the top 7 changes the list only.
            let (purchase, spend) = (scored.purchase_model.clone(), scored.spend_model.clone());
            let top = score_clv_top(&rfm, purchase, spend, &options, 7).unwrap();
            let mut all = scored;
            all.ranked.truncate(7);
            assert_eq!(top, all);
        }
    }
}
