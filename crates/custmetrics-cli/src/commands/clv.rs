//! `custmetrics clv`, `clv fit` and `clv predict`: choose the input (transactions, a summary
//! table, survivor counts, a saved model), call the library, and hand the report to the shared
//! writer.

use std::path::PathBuf;

use anyhow::{Result, bail};
use custmetrics::models::FitOptions;
use custmetrics::models::bgbb::BgBb;
use custmetrics::models::clv::{fit_purchase_model, fit_spend_model, score_clv};
use custmetrics::models::covariates::fit_covariates;
use custmetrics::models::fitted::{FittedModel, SavedModel};
use custmetrics::models::sbg::ShiftedBetaGeometric;
use custmetrics::models::summary_table::{
    read_discrete_summary, read_rfm_summary, read_summary_columns,
};
use custmetrics::report::Report;

use super::report::{self, Kind, Prepared};
use crate::args::{ClvAction, ClvCommand, ClvRun, ModelArg};
use crate::exit::ExitStatus;

pub fn run(c: ClvCommand, quiet: bool) -> Result<ExitStatus> {
    match c.action {
        None => predict(c.run, quiet),
        Some(ClvAction::Predict(r)) => predict(r, quiet),
        Some(ClvAction::Fit(r)) => fit(r, quiet),
        Some(ClvAction::Compare(r)) => compare(r, quiet),
    }
}

/// Options shared by fit and predict; `--calibration-end D` means a holdout from D + 1.
fn prepare(r: &ClvRun, customers: usize) -> Result<Prepared> {
    let mut p = report::prepare(&r.cmd, Kind::Clv)?;
    if let Some(end) = &r.clv.calibration_end {
        let d = custmetrics::config::parse_date("--calibration-end", end)?;
        if p.options.clv_holdout_from.is_some() {
            bail!("give either --calibration-end or --holdout-from, not both");
        }
        p.options.clv_holdout_from = d.succ_opt();
    }
    p.options.clv_customers = customers;
    if let Some(model) = &r.clv.save_model {
        report::refuse_shared_outputs(&r.cmd, &p.config, Some(("save_model", model.as_path())))?;
    }
    Ok(p)
}

fn fit_options(r: &ClvRun) -> FitOptions {
    let mut o = FitOptions::default();
    o.penalizer = r.cmd.metrics.penalizer;
    o
}

fn summary_paths(r: &ClvRun) -> Vec<PathBuf> {
    r.clv.summary.iter().map(PathBuf::from).collect()
}

fn fit(r: ClvRun, quiet: bool) -> Result<ExitStatus> {
    let model = r.cmd.metrics.model.unwrap_or(ModelArg::Bgnbd);
    if r.clv.model_file.is_some() {
        bail!("--model-file is for `clv predict`; `clv fit` fits a new model");
    }
    match model {
        ModelArg::Sbg => {
            if r.clv.survivors.is_empty() {
                bail!(
                    "--model sbg needs --survivors N0,N1,...: the customers of one cohort still active at each renewal"
                );
            }
            let p = prepare(&r, 0)?;
            let fit = ShiftedBetaGeometric::fit(&r.clv.survivors, &fit_options(&r))?;
            let report =
                Report::from_model_fit(FittedModel::sbg(&fit, &r.clv.survivors, r.clv.project));
            report::emit(report, &r.cmd, &p, &[])
        }
        ModelArg::Bgbb => {
            if r.clv.summary.is_empty() {
                bail!(
                    "--model bgbb needs --summary FILE with frequency, recency, periods [, weights] per customer (discrete opportunities)"
                );
            }
            let p = prepare(&r, 0)?;
            let (rows, weights) = read_discrete_summary(&r.clv.summary)?;
            let fit = BgBb::fit(&rows, &weights, &fit_options(&r))?;
            let report =
                Report::from_model_fit(FittedModel::bgbb(&fit, &rows, &weights, r.clv.project));
            report::emit(report, &r.cmd, &p, &summary_paths(&r))
        }
        ModelArg::Bgnbd | ModelArg::ParetoNbd | ModelArg::Mbgnbd => {
            let p = prepare(&r, 0)?;
            let horizon = p.options.clv.horizon;
            if !r.clv.summary.is_empty() {
                if p.options.clv_holdout_from.is_some() {
                    bail!(
                        "a holdout check needs transactions (-t); a summary table has no dates to split"
                    );
                }
                let progress = super::Progress::start(quiet, "reading summary");
                let (rfm, has_spend) =
                    read_rfm_summary(&r.clv.summary, p.options.clv.time_unit_days)?;
                progress.set("fitting the purchase model");
                let purchase = fit_purchase_model(&rfm, &p.options.clv)?;
                let spend = if has_spend {
                    progress.set("fitting Gamma-Gamma");
                    Some(fit_spend_model(&rfm, &p.options.clv)?)
                } else {
                    None
                };
                let choice = &p.options.clv_covariates;
                let covariates = if choice.is_empty() {
                    None
                } else {
                    progress.set("fitting the models with covariates");
                    let columns = read_summary_columns(&r.clv.summary, &choice.columns())?;
                    Some(fit_covariates(
                        &rfm,
                        &columns,
                        choice,
                        &purchase,
                        spend.as_ref(),
                        &p.options.clv.fit,
                    ))
                };
                progress.set("writing output");
                progress.finish();
                let inputs = summary_paths(&r);
                if let Some(path) = &r.clv.save_model {
                    SavedModel::new(purchase.clone(), spend.clone()).save(path, &inputs)?;
                }
                let mut fitted = FittedModel::purchase(&purchase, spend.as_ref(), horizon);
                fitted.covariates = covariates;
                let report = Report::from_model_fit(fitted);
                return report::emit(report, &r.cmd, &p, &inputs);
            }
            if r.cmd.input.store.is_none() {
                report::require_input(&p.spec)?;
            }
            let progress = super::Progress::start(quiet, "reading inputs");
            let mut data = super::load_data(&r.cmd.input, &p.spec, &p.options)?;
            super::refuse_empty(&data, &r.cmd.input, quiet)?;
            progress.set("fitting");
            let (report, models) = Report::fit_clv(&mut data, &p.options)?;
            progress.set("writing output");
            progress.finish();
            super::account(&data, &r.cmd.input, quiet)?;
            let inputs = data.input_paths();
            if let (Some(path), Some(models)) = (&r.clv.save_model, &models) {
                models.save(path, &inputs)?;
            }
            report::emit(report, &r.cmd, &p, &inputs)
        }
    }
}

fn predict(r: ClvRun, quiet: bool) -> Result<ExitStatus> {
    if matches!(r.cmd.metrics.model, Some(ModelArg::Bgbb | ModelArg::Sbg)) {
        bail!(
            "BG/BB and sBG have no per-customer CLV scoring here; use `clv fit` to see their fit and projections"
        );
    }
    if r.clv.save_model.is_some() {
        bail!("--save-model is for `clv fit`");
    }
    let mut p = prepare(&r, usize::MAX)?;
    if let Some(file) = &r.clv.model_file {
        let saved = SavedModel::load(file)?;
        let clv_options = saved.clv_options(p.options.clv, r.cmd.metrics.horizon);
        let Some(spend) = saved.spend else {
            bail!(
                "{} holds no spend model (it was fitted on a summary without monetary_value), so it cannot score CLV",
                file.display()
            );
        };
        if r.cmd.metrics.model.is_some() {
            bail!("--model and --model-file conflict: the saved file names its model");
        }
        if r.cmd.metrics.time_unit.is_some() {
            bail!("--time-unit and --model-file conflict: a saved model is scored in its own unit");
        }
        p.options.clv = clv_options;
        p.options.clv_models = Some((saved.purchase, spend));
    }
    if !r.clv.summary.is_empty() {
        let (rfm, has_spend) = read_rfm_summary(&r.clv.summary, p.options.clv.time_unit_days)?;
        if !has_spend {
            bail!(
                "the summary has no monetary_value column, so CLV cannot be scored (fit the purchase model with `clv fit`)"
            );
        }
        let clv = match p.options.clv_models.take() {
            Some((purchase, spend)) => score_clv(&rfm, purchase, spend, &p.options.clv)?,
            None => custmetrics::models::clv::predict_clv(&rfm, &p.options.clv)?,
        };
        let inputs = with_model_file(&r, summary_paths(&r));
        return report::emit(Report::from_clv(clv), &r.cmd, &p, &inputs);
    }
    if r.cmd.input.store.is_none() {
        report::require_input(&p.spec)?;
    }
    let progress = super::Progress::start(quiet, "reading inputs");
    let mut data = super::load_data(&r.cmd.input, &p.spec, &p.options)?;
    super::refuse_empty(&data, &r.cmd.input, quiet)?;
    progress.set("scoring");
    let report = Report::build_taking_rows(&mut data, &p.options)?;
    progress.set("writing output");
    progress.finish();
    super::account(&data, &r.cmd.input, quiet)?;
    report::emit(report, &r.cmd, &p, &with_model_file(&r, data.input_paths()))
}

/// `clv compare`: every purchase model on the same customers, the chosen one scoring CLV.
fn compare(r: ClvRun, quiet: bool) -> Result<ExitStatus> {
    if r.cmd.metrics.model.is_some() {
        bail!("`clv compare` fits every model; drop --model (or use `clv fit --model ...`)");
    }
    if r.clv.model_file.is_some() || r.clv.save_model.is_some() {
        bail!(
            "`clv compare` fits new models; --model-file is for `clv predict`, --save-model for `clv fit`"
        );
    }
    if !r.clv.summary.is_empty() {
        bail!("`clv compare` reads transactions (-t) or a store (--store)");
    }
    let mut p = prepare(&r, 10)?;
    p.options.clv_compare = true;
    if r.cmd.input.store.is_none() {
        report::require_input(&p.spec)?;
    }
    let progress = super::Progress::start(quiet, "reading inputs");
    let mut data = super::load_data(&r.cmd.input, &p.spec, &p.options)?;
    super::refuse_empty(&data, &r.cmd.input, quiet)?;
    progress.set("fitting every model");
    let report = Report::build_taking_rows(&mut data, &p.options)?;
    progress.finish();
    super::account(&data, &r.cmd.input, quiet)?;
    report::emit(report, &r.cmd, &p, &data.input_paths())
}

/// The inputs and `--model-file`, which the report must not overwrite either.
fn with_model_file(r: &ClvRun, mut inputs: Vec<PathBuf>) -> Vec<PathBuf> {
    inputs.extend(r.clv.model_file.clone());
    inputs
}
