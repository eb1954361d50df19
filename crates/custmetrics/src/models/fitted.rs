//! What `custmetrics clv fit` reports and saves: any fitted model as one document with the
//! papers' parameter names, standard errors, log-likelihood, AIC/BIC and convergence, plus the
//! few predictions that make each model readable (a survival projection for sBG, P(alive) per
//! history for BG/BB).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::{Error, Result};

use super::FitDiagnostics;
use super::bgbb::{BgBbFit, DiscreteObservation};
use super::clv::{ClvOptions, HoldoutValidation};
use super::gamma_gamma::GammaGammaFit;
use super::purchase::PurchaseFit;
use super::sbg::SbgFit;

/// Named values in the papers' order, serialised as a JSON object (`{"r": 0.24, ...}`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Named(pub Vec<(String, f64)>);

impl Serialize for Named {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// One fitted model, ready to show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FittedModel {
    /// Machine name: `bgnbd`, `pareto_nbd`, `mbgnbd`, `bgbb`, `sbg`, `gamma_gamma`.
    pub model: String,
    /// Display name (`Pareto/NBD`).
    pub label: String,
    /// Days per model time unit, for continuous-time models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_unit_days: Option<f64>,
    /// The estimates, with the papers' names.
    pub params: Named,
    /// Standard errors of the estimates (same names; absent where the Hessian was singular).
    pub standard_errors: Named,
    /// Log-likelihood at the estimate.
    pub log_likelihood: f64,
    /// Akaike information criterion.
    pub aic: f64,
    /// Bayesian information criterion.
    pub bic: f64,
    /// Customers the model was fitted on.
    pub n_customers: u64,
    /// Distinct rows the likelihood was evaluated on.
    pub distinct_rows: u64,
    /// Optimizer iterations.
    pub iterations: u64,
    /// Always true: a fit that did not converge is an error, never a result.
    pub converged: bool,
    /// Model-specific figures (for example the frequency–spend correlation of Gamma-Gamma).
    pub figures: Named,
    /// A projection or per-history table that makes the fit readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predictions: Option<PredictionTable>,
    /// Warnings about the fit's assumptions.
    pub warnings: Vec<String>,
    /// The spend model fitted alongside a purchase model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spend: Option<Box<FittedModel>>,
    /// Calibration/holdout check, when requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout: Option<HoldoutValidation>,
    /// The models refitted with customer attributes, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub covariates: Option<super::covariates::CovariateResult>,
}

/// A small table of predictions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictionTable {
    /// Title.
    pub title: String,
    /// Column names (snake_case).
    pub columns: Vec<String>,
    /// Rows of numbers.
    pub rows: Vec<Vec<f64>>,
}

impl FittedModel {
    fn new(
        model: &str,
        label: &str,
        params: Vec<(&str, f64)>,
        d: &FitDiagnostics,
        time_unit_days: Option<f64>,
    ) -> Self {
        let standard_errors = params
            .iter()
            .zip(&d.standard_errors)
            .filter_map(|((name, _), se)| se.map(|s| (name.to_string(), s)))
            .collect();
        FittedModel {
            model: model.into(),
            label: label.into(),
            time_unit_days,
            params: Named(params.into_iter().map(|(k, v)| (k.into(), v)).collect()),
            standard_errors: Named(standard_errors),
            log_likelihood: d.log_likelihood,
            aic: d.aic,
            bic: d.bic,
            n_customers: d.customers,
            distinct_rows: d.distinct_rows,
            iterations: d.iterations,
            converged: d.converged,
            figures: Named::default(),
            predictions: None,
            warnings: Vec::new(),
            spend: None,
            holdout: None,
            covariates: None,
        }
    }

    /// A purchase model (BG/NBD, Pareto/NBD, MBG/NBD), with its spend model when there is one.
    /// `horizon` (model units) adds E\[X(t)\] for a new customer at a few points up to it.
    pub fn purchase(fit: &PurchaseFit, spend: Option<&GammaGammaFit>, horizon: u32) -> Self {
        let m = fit.model();
        let mut out = FittedModel::new(
            m.key(),
            m.label(),
            fit.params(),
            fit.diagnostics(),
            Some(fit.time_unit_days()),
        );
        let points: Vec<u32> = [1, 4, 13, 26, 52, 104]
            .into_iter()
            .filter(|t| *t <= horizon.max(1))
            .chain((horizon > 0 && ![1, 4, 13, 26, 52, 104].contains(&horizon)).then_some(horizon))
            .collect();
        let rows: Vec<Vec<f64>> = points
            .iter()
            .filter_map(|&t| {
                let e = fit.expected_purchases(f64::from(t)).ok()?;
                Some(vec![f64::from(t), e])
            })
            .collect();
        out.predictions = Some(PredictionTable {
            title: "Expected repeat purchases of a new customer, E[X(t)]".into(),
            columns: vec!["t".into(), "expected_purchases".into()],
            rows,
        });
        out.spend = spend.map(|g| Box::new(FittedModel::spend(g)));
        out
    }

    /// The Gamma-Gamma spend model (`params.v` is the papers' γ).
    pub fn spend(g: &GammaGammaFit) -> Self {
        let p = g.params;
        let mut out = FittedModel::new(
            "gamma_gamma",
            "Gamma-Gamma",
            vec![("p", p.p), ("q", p.q), ("v", p.gamma)],
            &g.diagnostics,
            None,
        );
        out.figures = Named(vec![
            (
                "frequency_spend_correlation".into(),
                g.frequency_spend_correlation,
            ),
            (
                "population_mean_spend".into(),
                if p.q > 1.0 {
                    p.p * p.gamma / (p.q - 1.0)
                } else {
                    f64::INFINITY
                },
            ),
        ]);
        out.warnings.extend(g.warning.clone());
        out
    }

    /// BG/BB, with P(alive) and the expected transactions over the next `future` opportunities
    /// for each distinct history (most common first, at most 50).
    pub fn bgbb(fit: &BgBbFit, rows: &[DiscreteObservation], weights: &[f64], future: u32) -> Self {
        let p = fit.params;
        let mut out = FittedModel::new(
            "bgbb",
            "BG/BB",
            vec![
                ("alpha", p.alpha),
                ("beta", p.beta),
                ("gamma", p.gamma),
                ("delta", p.delta),
            ],
            &fit.diagnostics,
            None,
        );
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by(|&a, &b| {
            let wa = weights.get(a).copied().unwrap_or(0.0);
            let wb = weights.get(b).copied().unwrap_or(0.0);
            wb.total_cmp(&wa).then(a.cmp(&b))
        });
        let table = order
            .into_iter()
            .take(50)
            .filter_map(|i| {
                let o = rows.get(i)?;
                Some(vec![
                    f64::from(o.frequency),
                    f64::from(o.recency),
                    f64::from(o.periods),
                    weights.get(i).copied().unwrap_or(0.0),
                    fit.probability_alive(o),
                    fit.conditional_expected_purchases(f64::from(future), o),
                ])
            })
            .collect();
        out.predictions = Some(PredictionTable {
            title: format!("P(alive) and expected transactions in the next {future} opportunities"),
            columns: [
                "frequency",
                "recency",
                "periods",
                "customers",
                "probability_alive",
                "expected_transactions",
            ]
            .map(String::from)
            .to_vec(),
            rows: table,
        });
        out
    }

    /// sBG, with the fitted survival and retention for the observed renewals and `future` more.
    pub fn sbg(fit: &SbgFit, alive: &[f64], future: u32) -> Self {
        let p = fit.params;
        let mut out = FittedModel::new(
            "sbg",
            "sBG",
            vec![("alpha", p.alpha), ("beta", p.beta)],
            &fit.diagnostics,
            None,
        );
        let n0 = alive.first().copied().unwrap_or(0.0);
        let last = alive.len().saturating_sub(1) as u32 + future;
        let rows = (0..=last)
            .map(|t| {
                let observed = alive
                    .get(t as usize)
                    .map_or(f64::NAN, |a| if n0 > 0.0 { a / n0 } else { f64::NAN });
                vec![
                    f64::from(t),
                    observed,
                    fit.survival(t),
                    if t == 0 {
                        f64::NAN
                    } else {
                        fit.retention_rate(t)
                    },
                ]
            })
            .collect();
        out.predictions = Some(PredictionTable {
            title: format!("Survival: observed and fitted, projected {future} renewals ahead"),
            columns: ["renewal", "observed", "fitted", "retention_rate"]
                .map(String::from)
                .to_vec(),
            rows,
        });
        out
    }
}

/// Fitted CLV models saved to score customers later without refitting (`clv fit
/// --save-model`, read by `clv predict --model-file`): pretty-printed JSON with a layout
/// version, which [`SavedModel::read`] checks.
///
/// ```no_run
/// use custmetrics::models::clv::ClvOptions;
/// use custmetrics::models::fitted::SavedModel;
///
/// let saved = SavedModel::load("model.json")?;
/// // Score in the model's own unit, over its default horizon (a year).
/// let options = saved.clv_options(ClvOptions::default(), None);
/// # Ok::<(), custmetrics::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedModel {
    /// Version of this file's layout.
    pub schema_version: u32,
    /// The purchase model.
    pub purchase: PurchaseFit,
    /// The spend model, when one was fitted.
    pub spend: Option<GammaGammaFit>,
}

/// Layout version of [`SavedModel`].
pub const SAVED_MODEL_VERSION: u32 = 1;

impl SavedModel {
    /// The models, in this version's layout.
    pub fn new(purchase: PurchaseFit, spend: Option<GammaGammaFit>) -> SavedModel {
        SavedModel {
            schema_version: SAVED_MODEL_VERSION,
            purchase,
            spend,
        }
    }

    /// Writes the models as pretty-printed JSON and a final newline.
    ///
    /// # Errors
    /// Write errors.
    pub fn write<W: Write>(&self, mut w: W) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut w, self).map_err(std::io::Error::other)?;
        writeln!(w)
    }

    /// Reads saved models; `path` names the file in errors.
    ///
    /// # Errors
    /// [`Error::ReadSavedModel`] when unreadable, [`Error::NotASavedModel`] when it is not
    /// saved models, [`Error::SavedModelVersion`] when saved in another layout version.
    pub fn read<R: Read>(mut r: R, path: impl AsRef<Path>) -> Result<SavedModel> {
        let path = path.as_ref();
        let mut text = String::new();
        r.read_to_string(&mut text)
            .map_err(|source| Error::ReadSavedModel {
                path: path.to_path_buf(),
                source,
            })?;
        let saved: SavedModel =
            serde_json::from_str(&text).map_err(|source| Error::NotASavedModel {
                path: path.to_path_buf(),
                source,
            })?;
        if saved.schema_version != SAVED_MODEL_VERSION {
            return Err(Error::SavedModelVersion {
                path: path.to_path_buf(),
                found: saved.schema_version,
                expected: SAVED_MODEL_VERSION,
            });
        }
        Ok(saved)
    }

    /// Reads saved models from a file.
    ///
    /// # Errors
    /// As [`SavedModel::read`].
    pub fn load(path: impl AsRef<Path>) -> Result<SavedModel> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|source| Error::ReadSavedModel {
            path: path.to_path_buf(),
            source,
        })?;
        SavedModel::read(file, path)
    }

    /// Saves the models to `path`, atomically (see [`crate::output::write_output`]), refusing
    /// to write over one of `inputs`.
    ///
    /// # Errors
    /// [`Error::OutputIsInput`]; [`Error::Io`] when the file cannot be written.
    pub fn save(&self, path: impl AsRef<Path>, inputs: &[PathBuf]) -> Result<()> {
        let path = path.as_ref();
        crate::output::refuse_inputs(path, inputs)?;
        crate::output::write_output(path, |w| self.write(w))
    }

    /// `options` set to score with these models: their purchase model and time unit, and the
    /// default horizon of that unit ([`ClvOptions::default_horizon`]) unless `horizon` is given.
    pub fn clv_options(&self, options: ClvOptions, horizon: Option<u32>) -> ClvOptions {
        let mut options = options;
        let unit = self.purchase.time_unit_days().round() as u32;
        options.time_unit_days = unit;
        options.model = self.purchase.model();
        options.horizon = horizon.unwrap_or(ClvOptions::default_horizon(unit));
        options
    }
}
