//! `custmetrics clv fit` on transactions: the CLV models' fit as a report of its own.

use super::{Dataset, Report, ReportOptions, Section};
use crate::Result;
use crate::models::fitted::{FittedModel, SavedModel};

impl Report {
    /// Fits the CLV purchase and spend models on the dataset's transactions and reports the
    /// fit ([`Report::model_fit`]: parameters, standard errors, log-likelihood, convergence,
    /// the holdout check when `options.clv_holdout_from` asks for one), with the accounting
    /// and the headline figures of the CLV section. Also returns the fitted models, to save
    /// with [`SavedModel::save`]; `None` when they could not be fitted (the report's `skipped`
    /// says why). `data` is left as [`Report::build_taking_rows`] leaves it.
    ///
    /// Only stage 1 and the CLV section are computed: `options.sections` is ignored, and so is
    /// `options.clv_models` (this fits new models).
    ///
    /// # Errors
    /// As [`Report::build`].
    pub fn fit_clv(
        data: &mut Dataset,
        options: &ReportOptions,
    ) -> Result<(Report, Option<SavedModel>)> {
        let mut options = options.clone();
        options.sections = vec![Section::Clv];
        // The fit needs every customer scored (the headline totals), none of them listed.
        options.clv_customers = 0;
        options.clv_models = None;
        let mut report = Report::build_taking_rows(data, &options)?;
        let Some(clv) = report.clv.take() else {
            return Ok((report, None));
        };
        let mut fitted = FittedModel::purchase(
            &clv.purchase_model,
            Some(&clv.spend_model),
            options.clv.horizon,
        );
        fitted
            .warnings
            .extend(clv.audit.iter().map(|f| f.message.clone()));
        fitted.holdout = clv.holdout;
        fitted.covariates = clv.covariates;
        report.model_fit = Some(fitted);
        let models = SavedModel::new(clv.purchase_model, Some(clv.spend_model));
        Ok((report, Some(models)))
    }
}
