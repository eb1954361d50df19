//! Model comparison (`custmetrics clv compare`): every purchase model that scores CLV (BG/NBD,
//! Pareto/NBD, MBG/NBD) fitted on the same RFM table, side by side, and one chosen.
//!
//! **Figures**: log-likelihood, AIC = 2k − 2 LL, BIC = k ln n − 2 LL (n customers), and with a
//! calibration/holdout split each model's holdout errors per customer (mean absolute error, root
//! mean squared error, bias, total error; [`super::clv::HoldoutValidation`]).
//!
//! **Choice**: with a holdout, the lowest root mean squared error of the per-customer holdout
//! predictions (what the scores are used for), ties broken by BIC; without one, the lowest BIC
//! (Schwarz 1978). The three models have four parameters each, so AIC and BIC rank them as the
//! log-likelihood does.
//!
//! **Nesting**: a likelihood-ratio test needs one model to be a special case of the other; no
//! pair of these three is (they differ in when a customer can drop out: after a repeat purchase,
//! at any time, or also right after the first purchase), so none is reported and the comparison
//! rests on the information criteria and the holdout.

use std::collections::HashMap;

use serde::Serialize;

use super::clv::{ClvOptions, validate_holdout_for};
use super::fitted::Named;
use super::purchase::{PurchaseFit, PurchaseModel};
use crate::metrics::rfm::Rfm;
use crate::{Error, Result};

/// The holdout the models are checked on: each calibration customer's actual purchase days in
/// it, its length in days and its first and last days.
pub struct HoldoutInput<'a> {
    /// Purchase days in the holdout per customer id.
    pub actual: &'a HashMap<String, u32>,
    /// Holdout length in days.
    pub days: f64,
    /// First day.
    pub from: String,
    /// Last day.
    pub to: String,
}

/// Holdout errors of one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldoutErrors {
    /// Sum of predicted purchases.
    pub predicted_total: f64,
    /// Sum of actual purchase days.
    pub actual_total: f64,
    /// Mean absolute error per customer.
    pub mean_absolute_error: f64,
    /// Root mean squared error per customer.
    pub root_mean_squared_error: f64,
    /// Mean of predicted − actual.
    pub bias: f64,
    /// (predicted − actual) / actual, totals.
    pub total_error: Option<f64>,
}

/// One model of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparedModel {
    /// `bgnbd`, `pareto_nbd` or `mbgnbd`.
    pub model: PurchaseModel,
    /// Display name.
    pub label: String,
    /// The estimates (empty when the fit failed).
    pub params: Named,
    /// Number of parameters.
    pub parameters: usize,
    /// Log-likelihood at the estimate.
    pub log_likelihood: Option<f64>,
    /// Akaike information criterion.
    pub aic: Option<f64>,
    /// Bayesian information criterion.
    pub bic: Option<f64>,
    /// Holdout errors, with a holdout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout: Option<HoldoutErrors>,
    /// Why the model could not be fitted or checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The models side by side and the one chosen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelComparison {
    /// Every model, in [`PurchaseModel::ALL`] order.
    pub models: Vec<ComparedModel>,
    /// The chosen model (the CLV figures are scored with it).
    pub chosen: PurchaseModel,
    /// Why it was chosen.
    pub reason: String,
    /// Why no likelihood-ratio test is reported.
    pub nesting: String,
}

/// Fits every purchase model on `rfm`, checks each on the holdout when there is one, and
/// chooses one (see the module docs). Returns the comparison and the chosen fit.
///
/// # Errors
/// The first model's error when no model could be fitted.
pub fn compare_models(
    rfm: &Rfm,
    options: &ClvOptions,
    holdout: Option<&HoldoutInput<'_>>,
) -> Result<(ModelComparison, PurchaseFit)> {
    let mut rows = Vec::new();
    let mut fits: Vec<(PurchaseFit, f64, Option<f64>)> = Vec::new();
    let mut first_error: Option<Error> = None;
    for model in PurchaseModel::ALL {
        let mut o = *options;
        o.model = model;
        let checked = super::clv::fit_purchase_model(rfm, &o).and_then(|fit| {
            let errors = match holdout {
                Some(h) => {
                    let v = validate_holdout_for(
                        &fit,
                        options.time_unit_days,
                        rfm,
                        h.actual,
                        h.days,
                        h.from.clone(),
                        h.to.clone(),
                    )?;
                    Some(HoldoutErrors {
                        predicted_total: v.predicted_total,
                        actual_total: v.actual_total,
                        mean_absolute_error: v.mean_absolute_error,
                        root_mean_squared_error: v.root_mean_squared_error,
                        bias: v.bias,
                        total_error: v.total_error,
                    })
                }
                None => None,
            };
            Ok((fit, errors))
        });
        match checked {
            Ok((fit, errors)) => {
                let d = fit.diagnostics();
                rows.push(ComparedModel {
                    model,
                    label: model.label().into(),
                    params: Named(
                        fit.params()
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v))
                            .collect(),
                    ),
                    parameters: fit.params().len(),
                    log_likelihood: Some(d.log_likelihood),
                    aic: Some(d.aic),
                    bic: Some(d.bic),
                    holdout: errors.clone(),
                    error: None,
                });
                let bic = d.bic;
                fits.push((fit, bic, errors.map(|e| e.root_mean_squared_error)));
            }
            Err(e) => {
                rows.push(ComparedModel {
                    model,
                    label: model.label().into(),
                    params: Named::default(),
                    parameters: 0,
                    log_likelihood: None,
                    aic: None,
                    bic: None,
                    holdout: None,
                    error: Some(e.to_string()),
                });
                first_error.get_or_insert(e);
            }
        }
    }
    let with_holdout = holdout.is_some();
    let best = fits
        .iter()
        .enumerate()
        .min_by(|(_, a), (_, b)| {
            let key = |f: &(PurchaseFit, f64, Option<f64>)| (f.2.unwrap_or(f64::INFINITY), f.1);
            let (ka, kb) = (key(a), key(b));
            ka.0.total_cmp(&kb.0).then(ka.1.total_cmp(&kb.1))
        })
        .map(|(i, _)| i);
    let Some(best) = best else {
        return Err(first_error.unwrap_or(Error::InsufficientData {
            what: "model comparison".into(),
            message: "no purchase model could be fitted".into(),
        }));
    };
    let (chosen_fit, chosen_bic, chosen_rmse) = fits.swap_remove(best);
    let chosen = chosen_fit.model();
    let others = |value: &dyn Fn(&ComparedModel) -> Option<f64>, decimals: usize| {
        rows.iter()
            .filter(|r| r.model != chosen)
            .filter_map(|r| value(r).map(|v| format!("{} {v:.decimals$}", r.label)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let reason = match (with_holdout, chosen_rmse) {
        (true, Some(rmse)) => format!(
            "lowest root mean squared error of the per-customer holdout predictions ({rmse:.4}; {})",
            others(
                &|r| r.holdout.as_ref().map(|h| h.root_mean_squared_error),
                4
            )
        ),
        _ => format!(
            "lowest BIC ({chosen_bic:.1}; {}); give --holdout-from to choose on predictions instead",
            others(&|r| r.bic, 1)
        ),
    };
    Ok((
        ModelComparison {
            models: rows,
            chosen,
            reason,
            nesting: "no pair of these models nests (they differ in when a customer can drop out), so no likelihood-ratio test applies; with four parameters each, AIC and BIC rank them as the log-likelihood does".into(),
        },
        chosen_fit,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_lowest_bic_without_a_holdout_and_says_so() {
        // CDNOW's calibration summary: BG/NBD's LL is −9582.4, Pareto/NBD's −9595.0 and
        // MBG/NBD's −9581.8 (BTYDplus), so MBG/NBD has the lowest BIC.
        let rows: Vec<crate::metrics::rfm::RfmRow> = crate::models::testdata::cdnow()
            .iter()
            .enumerate()
            .map(|(i, o)| crate::metrics::rfm::RfmRow {
                customer_id: format!("c{i:05}").into(),
                frequency: o.frequency as u32,
                recency: o.recency,
                t: o.t,
                monetary_value: 0.0,
                days_since_last: 0,
                orders: o.frequency as u32 + 1,
                revenue: 0.0,
                r_score: 1,
                f_score: 1,
                m_score: 1,
                segment: None,
            })
            .collect();
        let rfm = Rfm {
            time_unit_days: 7,
            customers: rows,
            segments: Default::default(),
            by_segment: Vec::new(),
        };
        let (c, fit) = compare_models(&rfm, &ClvOptions::default(), None).unwrap();
        assert_eq!(c.models.len(), 3);
        let ll: Vec<f64> = c.models.iter().map(|m| m.log_likelihood.unwrap()).collect();
        assert!((ll[0] + 9582.43).abs() < 0.01, "{ll:?}");
        assert!((ll[1] + 9594.98).abs() < 0.01, "{ll:?}");
        let lowest = c
            .models
            .iter()
            .min_by(|a, b| a.bic.unwrap().total_cmp(&b.bic.unwrap()))
            .unwrap();
        assert_eq!(c.chosen, lowest.model);
        assert_eq!(fit.model(), c.chosen);
        assert!(c.reason.starts_with("lowest BIC"), "{}", c.reason);
        assert!(c.reason.contains("--holdout-from"));
    }
}
