//! The report: one typed, serialisable value built from whatever tables were given, and the
//! renderers that turn it into text. Renderers never compute a metric.
//!
//! A section goes from numbers to text in three steps:
//! 1. **Build**: [`Report::build`] fills the section's typed result, a field of [`Report`]
//!    ([`Report::retention`], [`Report::nps`], ...), or says in [`Report::skipped`] why not.
//! 2. **View**: [`view`] has one file per section (`view/retention.rs`, `view/scores.rs` for NPS
//!    and CSAT, ...) turning the typed result into blocks: headings, figures, tables, notes and
//!    charts, formatted but not computed. [`view::layout`] calls them in report order.
//! 3. **Render**: [`render`] has one file per format; each reads the same blocks. The terminal,
//!    Markdown and CSV renderers skip the charts, the HTML page draws them as SVG. JSON
//!    serialises the [`Report`] itself, so its keys are the typed results' field names.
//!
//! Adding a section therefore means: its type (a `Serialize` struct and an `Option` field on
//! [`Report`], with a [`Section`] variant if it can be chosen), its build function, and its view
//! (`view/<section>.rs`, called from [`view::layout`]; new CSV table names also go in the CSV
//! renderer's list of table files). Every format then shows it.

mod build;
pub mod frames;
pub mod headline;
mod model_fit;
pub mod render;
pub mod view;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use crate::Result;
use crate::io::{Accounting, TableKind};
use crate::metrics::churn::{Churn, PeriodChurn, Survival};
use crate::metrics::retention::Retention;
use crate::metrics::rfm::Rfm;
use crate::metrics::scores::{Csat, Nps};
use crate::period::Period;

/// Version of the JSON schema; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 2;

pub use crate::io::Dataset;
pub use crate::summary::ChannelCount;

/// A report section.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// Data overview and accounting.
    Overview,
    /// Retention and cohorts.
    Retention,
    /// Churn and at-risk customers.
    Churn,
    /// Kaplan–Meier survival.
    Survival,
    /// NPS.
    Nps,
    /// CSAT.
    Csat,
    /// RFM segments.
    Rfm,
    /// AOV, purchase frequency, historical CLV, lifecycle stages.
    Supporting,
    /// Predictive CLV (BG/NBD + Gamma-Gamma).
    Clv,
}

impl Section {
    /// Every section, in report order.
    pub const ALL: [Section; 9] = [
        Section::Overview,
        Section::Retention,
        Section::Churn,
        Section::Survival,
        Section::Nps,
        Section::Csat,
        Section::Rfm,
        Section::Supporting,
        Section::Clv,
    ];
}

/// What to compute.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ReportOptions {
    /// Reporting period.
    pub period: Period,
    /// Observation end; defaults to the last transaction date.
    pub as_of: Option<NaiveDate>,
    /// Ignore transactions before this date.
    pub from: Option<NaiveDate>,
    /// Segment dimensions (the first one splits the figures).
    pub by: Vec<String>,
    /// Days without purchase after which a customer is churned.
    pub inactive_after_days: u32,
    /// Answers below this count are flagged as too few to read.
    pub min_responses: u64,
    /// Top of the CSAT scale.
    pub csat_scale: u8,
    /// Lowest satisfied CSAT answer.
    pub csat_satisfied_from: u8,
    /// Days per RFM time unit.
    pub time_unit_days: u32,
    /// Sections to build.
    pub sections: Vec<Section>,
    /// At-risk customers listed.
    pub at_risk_limit: usize,
    /// Include the per-customer RFM table.
    pub rfm_customers: bool,
    /// Predictive CLV settings.
    pub clv: crate::models::clv::ClvOptions,
    /// Customers listed in the CLV ranking (`usize::MAX`: all).
    pub clv_customers: usize,
    /// Fit the CLV models on transactions before this date and check their predictions on the
    /// rest (calibration/holdout).
    pub clv_holdout_from: Option<NaiveDate>,
    /// What makes a customer active in a period (retention, churn, survival).
    pub active_on: ActiveOn,
    /// Fit every purchase model, compare them and score CLV with the one chosen
    /// ([`crate::models::compare`]); `clv.model` is then ignored.
    pub clv_compare: bool,
    /// Periods (of `period`) after the observation end for which the CLV models forecast each
    /// first-purchase cohort's active customers and revenue ([`crate::models::cohort_forecast`]);
    /// 0 for none.
    pub clv_forecast_periods: u32,
    /// Customer attributes the CLV models are refitted with ([`crate::models::covariates`]);
    /// each must be a `by` dimension (a transactions column or a customers-table attribute).
    pub clv_covariates: crate::models::covariates::CovariateChoice,
    /// Score CLV with these fitted models (for example loaded from a saved model file) instead
    /// of fitting new ones.
    pub clv_models: Option<(
        crate::models::purchase::PurchaseFit,
        crate::models::gamma_gamma::GammaGammaFit,
    )>,
}

impl ReportOptions {
    /// The dimensions stage 1 must value per customer (and a [`Dataset`] must join from the
    /// customers table): the `by` dimensions, then the CLV covariates not among them, when the
    /// CLV section is built. The covariates split nothing: the report removes them from the
    /// summaries before any section reads them.
    pub fn dimensions(&self) -> Vec<String> {
        let mut by = self.by.clone();
        if self.sections.contains(&Section::Clv) {
            for c in self.clv_covariates.columns() {
                if !by.contains(&c) {
                    by.push(c);
                }
            }
        }
        by
    }

    /// What a report with these options reads of a summary store, with its purchases in
    /// `partitions` ranges of customers: the [`ReportOptions::dimensions`], and the
    /// interactions' rows only when a section reads them (the overview's interaction counts,
    /// NPS, CSAT, activity from interactions). [`Report::from_store`] reads this way.
    pub fn store_read(&self, partitions: u32) -> crate::summary::StoreRead {
        let stage1 = build::stage1_options(self);
        let mut read = crate::summary::StoreRead::new(self.dimensions());
        read.partitions = partitions;
        read.interaction_events = stage1.activity_from_interactions || stage1.interactions_overview;
        read.customer_rows = stage1.reads_transactions;
        read.interaction_rows = stage1.activity_from_interactions
            || stage1.interactions_overview
            || stage1.survey.is_some();
        // Retention alone is counted from the purchase days; the scores alone read only the
        // purchases' last day, from the manifest.
        read.defer_purchases = stage1.only_retention || !stage1.reads_transactions;
        read
    }
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            period: Period::Month,
            as_of: None,
            from: None,
            by: Vec::new(),
            inactive_after_days: 90,
            min_responses: 30,
            csat_scale: 5,
            csat_satisfied_from: 4,
            time_unit_days: 1,
            sections: Section::ALL.to_vec(),
            at_risk_limit: 20,
            rfm_customers: false,
            clv: crate::models::clv::ClvOptions::default(),
            clv_customers: 20,
            clv_holdout_from: None,
            clv_models: None,
            clv_compare: false,
            clv_forecast_periods: 3,
            clv_covariates: crate::models::covariates::CovariateChoice::default(),
            active_on: ActiveOn::Transactions,
        }
    }
}

/// What counts as activity for retention, churn and survival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActiveOn {
    /// A transaction in the period (the default).
    #[default]
    Transactions,
    /// A transaction or any interaction (survey answer, ticket, ...) in the period, from the
    /// customer's first purchase on. Customers are still acquired by their first purchase, and
    /// revenue figures still come from transactions only.
    AnyInteraction,
}

impl ActiveOn {
    /// Parses `transactions` or `any` / `any_interaction`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidSetting`] for other values.
    pub fn from_setting(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "transactions" | "transaction" | "purchases" => Ok(ActiveOn::Transactions),
            "any" | "any_interaction" | "interactions" => Ok(ActiveOn::AnyInteraction),
            _ => Err(crate::Error::InvalidSetting {
                setting: "active_on".into(),
                message: format!("{s:?}: expected transactions or any"),
            }),
        }
    }
}

/// Headline figures of the data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overview {
    /// Distinct customers with a transaction.
    pub customers: u64,
    /// Transactions (orders).
    pub transactions: u64,
    /// Revenue (refunds subtracted).
    pub revenue: f64,
    /// First transaction date.
    pub first_date: Option<String>,
    /// Last transaction date.
    pub last_date: Option<String>,
    /// Interactions, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interactions: Option<u64>,
    /// Interactions per channel.
    pub interactions_by_channel: Vec<ChannelCount>,
}

/// NPS section: the overall figure and the splits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NpsSection {
    /// Overall.
    #[serde(flatten)]
    pub overall: Nps,
    /// By period and/or segment.
    pub by: Vec<Nps>,
    /// The small-sample threshold.
    pub min_responses: u64,
}

/// CSAT section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CsatSection {
    /// Overall.
    #[serde(flatten)]
    pub overall: Csat,
    /// By period and/or segment.
    pub by: Vec<Csat>,
    /// Top of the scale.
    pub scale: u8,
    /// Lowest satisfied answer.
    pub satisfied_from: u8,
    /// The small-sample threshold.
    pub min_responses: u64,
}

/// Historical value of one acquisition cohort.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortValue {
    /// Cohort label.
    pub cohort: String,
    /// Customers.
    pub customers: u64,
    /// Revenue to date.
    pub revenue: f64,
    /// Revenue to date per customer (historical CLV).
    pub historical_clv: f64,
    /// Mean acquisition cost, when known.
    pub cac: Option<f64>,
    /// historical_clv / cac.
    pub clv_to_cac: Option<f64>,
}

/// Supporting figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Supporting {
    /// Average order value = revenue / orders.
    pub average_order_value: f64,
    /// Purchase frequency = orders / customers.
    pub purchase_frequency: f64,
    /// Share of customers with more than one purchase day.
    pub repeat_purchase_rate: f64,
    /// Historical CLV = revenue to date / customers.
    pub historical_clv: f64,
    /// Historical CLV by acquisition cohort.
    pub by_cohort: Vec<CohortValue>,
    /// Customers per lifecycle stage at the observation end.
    pub lifecycle: BTreeMap<String, u64>,
    /// The same figures per value of the first `--by` dimension (empty without one).
    pub by_segment: Vec<SegmentValue>,
}

/// Purchasing figures of one segment (the customer's value of the first `--by` dimension on
/// their first purchase; `(none)` when blank).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentValue {
    /// The dimension.
    pub dimension: String,
    /// Its value.
    pub segment: String,
    /// Customers.
    pub customers: u64,
    /// Orders.
    pub orders: u64,
    /// Revenue to date.
    pub revenue: f64,
    /// Revenue / orders.
    pub average_order_value: f64,
    /// Orders / customers.
    pub purchase_frequency: f64,
    /// Share of customers with more than one purchase day.
    pub repeat_purchase_rate: f64,
    /// Revenue / customers.
    pub historical_clv: f64,
    /// Customers per lifecycle stage.
    pub lifecycle: BTreeMap<String, u64>,
}

/// A section left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The section.
    pub section: Section,
    /// Why.
    pub reason: String,
}

/// Settings echoed in the report so that a reader knows what the numbers mean.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportSettings {
    /// Period.
    pub period: String,
    /// Observation end.
    pub as_of: Option<String>,
    /// Start of the window.
    pub from: Option<String>,
    /// Segment dimensions.
    pub by: Vec<String>,
    /// Inactivity threshold.
    pub inactive_after_days: u32,
    /// Small-sample threshold.
    pub min_responses: u64,
    /// What counts as activity for retention, churn and survival.
    pub active_on: ActiveOn,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// JSON schema version.
    pub schema_version: u32,
    /// The settings used.
    pub settings: ReportSettings,
    /// Data overview.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overview: Option<Overview>,
    /// Row accounting per input table.
    pub accounting: BTreeMap<String, Accounting>,
    /// Retention.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// Non-contractual churn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub churn: Option<Churn>,
    /// Contractual churn per period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contractual_churn: Option<Vec<PeriodChurn>>,
    /// Survival.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub survival: Option<Survival>,
    /// NPS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nps: Option<NpsSection>,
    /// CSAT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csat: Option<CsatSection>,
    /// RFM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rfm: Option<Rfm>,
    /// Supporting figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supporting: Option<Supporting>,
    /// Predictive CLV; `ranked` holds the top customers (all of them from `custmetrics clv`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clv: Option<crate::models::clv::ClvResult>,
    /// A model fit on its own (`custmetrics clv fit`): parameters, standard errors, fit figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_fit: Option<crate::models::fitted::FittedModel>,
    /// Sections left out.
    pub skipped: Vec<Skipped>,
    /// Headline figures (with deltas after [`Report::compare_with`]).
    pub headlines: Vec<headline::Headline>,
    /// When the report was made; only set on request (`--stamp`), so that the same inputs give
    /// byte-identical output by default. The library never reads the clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_at: Option<String>,
}

impl Report {
    /// A report holding only a model fit, for fits made from a summary table rather than from
    /// transaction exports (`custmetrics clv fit --summary`).
    pub fn from_model_fit(fit: crate::models::fitted::FittedModel) -> Report {
        Report {
            model_fit: Some(fit),
            ..Report::empty()
        }
    }

    /// A report holding only scored customers, for scoring a summary table.
    pub fn from_clv(clv: crate::models::clv::ClvResult) -> Report {
        Report {
            clv: Some(clv),
            ..Report::empty()
        }
    }

    fn empty() -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            settings: ReportSettings {
                period: String::new(),
                as_of: None,
                from: None,
                by: Vec::new(),
                inactive_after_days: 0,
                min_responses: 0,
                active_on: ActiveOn::Transactions,
            },
            overview: None,
            accounting: BTreeMap::new(),
            retention: None,
            churn: None,
            contractual_churn: None,
            survival: None,
            nps: None,
            csat: None,
            rfm: None,
            supporting: None,
            clv: None,
            model_fit: None,
            skipped: Vec::new(),
            headlines: Vec::new(),
            generated_at: None,
        }
    }

    fn with_headlines(mut self) -> Report {
        self.headlines = headline::headlines(&self);
        self
    }

    /// Adds month-over-month deltas against a previous report's JSON (`--compare`).
    ///
    /// # Errors
    /// [`crate::Error::InvalidSetting`] when the JSON is not a custmetrics report of this schema.
    pub fn compare_with(&mut self, previous_json: &str) -> Result<()> {
        headline::compare(&mut self.headlines, previous_json)
    }
}

/// Which table kinds a set of sections needs (for messages).
pub fn needs(section: Section) -> &'static [TableKind] {
    match section {
        Section::Nps | Section::Csat => &[TableKind::Interactions],
        _ => &[TableKind::Transactions],
    }
}
