//! The report: one typed, serialisable value built from whatever tables were given, and the
//! renderers that turn it into text. Renderers never compute a metric.

pub mod frames;
pub mod headline;
pub mod layout;
pub mod render;

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::Serialize;

use crate::Result;
use crate::io::{Accounting, Role, Table, TableKind};
use crate::metrics::churn::{self, Churn, PeriodChurn, Survival};
use crate::metrics::retention::{self, Retention};
use crate::metrics::rfm::{self, Rfm};
use crate::metrics::scores::{Csat, Nps, ScoreOptions};
use crate::money;
use crate::period::{Period, date_from_days, days_since_epoch};
use crate::summary::{self, Stage1, Stage1Options, Summaries};

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
    /// Score CLV with these fitted models (for example loaded from a saved model file) instead
    /// of fitting new ones.
    pub clv_models: Option<(
        crate::models::purchase::PurchaseFit,
        crate::models::gamma_gamma::GammaGammaFit,
    )>,
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

/// The segment of customer `i` for the first `by` dimension.
fn segment_of(s: &Summaries, i: usize) -> String {
    segment_str(s, i).to_string()
}

fn segment_str(s: &Summaries, i: usize) -> &str {
    s.customers
        .get(i)
        .and_then(|c| c.segments.first())
        .and_then(|v| v.as_deref())
        .filter(|v| !v.trim().is_empty())
        .unwrap_or("(none)")
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

    /// Builds the report from the dataset.
    ///
    /// # Errors
    /// Errors from the metrics (unknown `by` column, failing queries).
    pub fn build(data: &Dataset, options: &ReportOptions) -> Result<Report> {
        // Tables share their columns (Arc), so the clone copies no rows.
        Report::build_owned(data.clone(), options)
    }

    /// As [`Report::build`], taking the dataset: its rows are released as soon as everything
    /// that reads them (stage 1, survey scores, customer attributes) is done, so the models and
    /// the rest of stage 2 run without the input tables in memory. On 100M transactions that is
    /// several GB off the peak. Keep [`Dataset::without_rows`] for the accounting.
    ///
    /// # Errors
    /// As [`Report::build`].
    pub fn build_owned(mut data: Dataset, options: &ReportOptions) -> Result<Report> {
        Report::build_taking_rows(&mut data, options)
    }

    /// As [`Report::build_owned`], leaving in `data` what a caller reports on: every table's
    /// accounting, rejections, file reports and paths, without rows
    /// ([`Dataset::without_rows`]). Deferred transactions
    /// ([`crate::io::DatasetSpec::transaction_partitions`]) are read here, one customer partition
    /// at a time, and their accounting is left in `data.transactions`.
    ///
    /// # Errors
    /// As [`Report::build`]; [`crate::Error::InvalidSetting`] for what partitioned transactions
    /// do not support (a CLV holdout, activity from interactions), or for partitions that detect
    /// different date formats or decimal separators in one file.
    pub fn build_taking_rows(data: &mut Dataset, options: &ReportOptions) -> Result<Report> {
        let stage1 = summary::prepare(data, &stage1_options(options))?;
        Report::build_inner(data, stage1, options)
    }

    /// The report from stage 1's results; `data` holds the tables' accounting, without rows.
    fn build_inner(data: &Dataset, stage1: Stage1, options: &ReportOptions) -> Result<Report> {
        let wants = |s: Section| options.sections.contains(&s);
        let mut skipped = Vec::new();
        let mut skip = |section: Section, reason: &str| {
            if options.sections.contains(&section) {
                skipped.push(Skipped {
                    section,
                    reason: reason.into(),
                });
            }
        };
        let mut accounting = BTreeMap::new();
        for t in [&data.transactions, &data.interactions, &data.customers]
            .into_iter()
            .flatten()
        {
            accounting.insert(t.kind.name().to_string(), t.accounting.clone());
        }
        // Why a score section would be empty.
        let no_answers = |role: Role| {
            data.interactions
                .as_ref()
                .map(|t| no_answers_reason(t, role))
        };
        let (no_nps, no_csat) = (no_answers(Role::Nps), no_answers(Role::Csat));
        let Stage1 {
            purchases: mut summaries,
            activity,
            as_of,
            interactions_overview,
            survey,
            signup_periods: cohort_of,
            contracts,
            acquisition_costs,
            holdout,
        } = stage1;
        // Purchases drive revenue, RFM and CLV; activity (purchases, or any interaction when
        // asked) drives retention, churn and survival.
        let active = activity.as_ref().or(summaries.as_ref());
        let no_tx = if data.transactions.is_some() {
            "no usable transactions"
        } else {
            "no transactions table given (--transactions)"
        };

        let overview = if wants(Section::Overview) {
            Some(overview(
                data.transactions.is_some(),
                summaries.as_ref(),
                interactions_overview,
            ))
        } else {
            None
        };

        let supporting = match &summaries {
            Some(s) if wants(Section::Supporting) => {
                Some(supporting(s, &cohort_of, &acquisition_costs, options))
            }
            _ => None,
        };

        let retention = match active {
            Some(s) if wants(Section::Retention) => Some(retention::retention(s, &cohort_of)),
            _ => {
                skip(Section::Retention, no_tx);
                None
            }
        };
        let churn = match active {
            Some(s) if wants(Section::Churn) => {
                let mut c = churn::inactivity_churn_limited(
                    s,
                    options.inactive_after_days,
                    options.at_risk_limit,
                );
                c.periods.extend(churn::inactivity_churn_by_segment(
                    s,
                    options.inactive_after_days,
                ));
                Some(c)
            }
            _ => {
                skip(Section::Churn, no_tx);
                None
            }
        };
        let contractual_churn = match (&contracts, as_of) {
            (Some(cs), Some(a)) if wants(Section::Churn) => Some(churn::contractual_churn(
                cs,
                options.period,
                days_since_epoch(a),
                active,
            )),
            _ => None,
        };
        let survival = if wants(Section::Survival) {
            match (&contracts, as_of, active) {
                (Some(cs), Some(a), _) => {
                    let a = days_since_epoch(a);
                    let lifetimes = churn::contract_lifetimes(cs, a);
                    let mut km = churn::kaplan_meier("contractual", &lifetimes);
                    // Segments by customer id, from the purchase summaries (which carry customer
                    // attributes joined onto transactions).
                    if let Some(s) = summaries.as_ref().filter(|s| !s.by.is_empty()) {
                        let seg: HashMap<&str, String> = s
                            .customers
                            .iter()
                            .enumerate()
                            .map(|(i, c)| (c.customer_id.as_str(), segment_of(s, i)))
                            .collect();
                        let segments: Vec<String> = cs
                            .iter()
                            .filter(|c| c.start_day <= a)
                            .map(|c| {
                                seg.get(c.customer_id.as_str())
                                    .cloned()
                                    .unwrap_or_else(|| "(none)".into())
                            })
                            .collect();
                        km.by_segment = churn::kaplan_meier_by_segment(
                            s.by.first().map_or("", String::as_str),
                            &lifetimes,
                            &segments,
                        );
                    }
                    Some(km)
                }
                (None, _, Some(s)) => {
                    let lifetimes = churn::inactivity_lifetimes(s, options.inactive_after_days);
                    let mut km = churn::kaplan_meier("inactivity", &lifetimes);
                    if let Some(dimension) = s.by.first() {
                        let segments: Vec<String> =
                            (0..s.customers.len()).map(|i| segment_of(s, i)).collect();
                        km.by_segment =
                            churn::kaplan_meier_by_segment(dimension, &lifetimes, &segments);
                    }
                    Some(km)
                }
                _ => {
                    skip(
                        Section::Survival,
                        "needs transactions or customers with end dates",
                    );
                    None
                }
            }
        } else {
            None
        };

        let (mut nps, mut csat) = (None, None);
        if let Some(survey) = survey {
            match survey {
                Some(s) => {
                    if wants(Section::Nps) {
                        match s.nps {
                            Some(overall) => {
                                nps = Some(NpsSection {
                                    overall,
                                    by: s.nps_by,
                                    min_responses: options.min_responses,
                                })
                            }
                            None => skip(
                                Section::Nps,
                                no_nps
                                    .as_deref()
                                    .unwrap_or("no NPS answers in the interactions"),
                            ),
                        }
                    }
                    if wants(Section::Csat) {
                        match s.csat {
                            Some(overall) => {
                                csat = Some(CsatSection {
                                    overall,
                                    by: s.csat_by,
                                    scale: options.csat_scale,
                                    satisfied_from: options.csat_satisfied_from,
                                    min_responses: options.min_responses,
                                })
                            }
                            None => skip(
                                Section::Csat,
                                no_csat
                                    .as_deref()
                                    .unwrap_or("no CSAT answers in the interactions"),
                            ),
                        }
                    }
                }
                None => {
                    skip(Section::Nps, "no interactions table given (--interactions)");
                    skip(
                        Section::Csat,
                        "no interactions table given (--interactions)",
                    );
                }
            }
        }
        // Retention, churn and survival were the last readers of the activity rows and the
        // gaps (~2 GB at 100M transactions); RFM and CLV read the customer rows only, and the
        // CLV step builds its own per-customer table on top.
        drop(activity);
        if let Some(s) = summaries.as_mut() {
            s.activity = Vec::new();
            s.gaps = Vec::new();
        }
        let rfm = match &summaries {
            Some(s) if wants(Section::Rfm) => Some(if options.rfm_customers {
                rfm::rfm(s, options.time_unit_days)
            } else {
                rfm::rfm_segments(s, options.time_unit_days)
            }),
            _ => {
                skip(Section::Rfm, no_tx);
                None
            }
        };
        if supporting.is_none() {
            skip(Section::Supporting, no_tx);
        }
        let clv = match summaries.take() {
            Some(s) if wants(Section::Clv) => {
                let calibration = holdout.as_ref().map(|h| &h.calibration).unwrap_or(&s);
                let table = rfm::rfm(calibration, options.clv.time_unit_days);
                // The models read this table only: the customer rows (~3 GB at 26M customers)
                // are released before the fits and the scoring add their own memory.
                let end = s.as_of;
                drop(s);
                let models = match &options.clv_models {
                    Some(models) => Ok(models.clone()),
                    None => crate::models::clv::fit_clv_models(&table, &options.clv),
                };
                let scored = models.and_then(|(purchase, spend)| {
                    crate::models::clv::score_clv_top(
                        &table,
                        purchase,
                        spend,
                        &options.clv,
                        options.clv_customers,
                    )
                });
                let fitted = scored.and_then(|mut c| {
                    if let Some(h) = &holdout {
                        c.holdout = Some(crate::models::clv::validate_holdout(
                            &c,
                            &table,
                            &h.actual,
                            f64::from((days_since_epoch(end) - days_since_epoch(h.from)) + 1),
                            h.from.to_string(),
                            end.to_string(),
                        )?);
                    }
                    Ok(c)
                });
                match fitted {
                    Ok(c) => Some(c),
                    // A model that cannot be fitted is reported as such, never as a number.
                    Err(e) => {
                        skip(Section::Clv, &e.to_string());
                        None
                    }
                }
            }
            _ => {
                skip(Section::Clv, no_tx);
                None
            }
        };
        Ok(Report {
            schema_version: SCHEMA_VERSION,
            settings: ReportSettings {
                period: options.period.name().into(),
                as_of: as_of.map(|d| d.to_string()),
                from: options.from.map(|d| d.to_string()),
                by: options.by.clone(),
                inactive_after_days: options.inactive_after_days,
                min_responses: options.min_responses,
                active_on: options.active_on,
            },
            overview,
            accounting,
            retention,
            churn,
            contractual_churn,
            survival,
            nps,
            csat,
            rfm,
            supporting,
            clv,
            model_fit: None,
            skipped,
            headlines: Vec::new(),
            generated_at: None,
        }
        .with_headlines())
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

/// Why the interactions give no answers for a score `role`: no answers in its column, or no
/// column, then with the columns that could hold them and the flag that maps one.
fn no_answers_reason(t: &Table, role: Role) -> String {
    let what = if role == Role::Nps { "NPS" } else { "CSAT" };
    if t.files.iter().any(|f| f.columns.column(role).is_some()) {
        return format!("no {what} answers in the interactions");
    }
    let mut candidates: Vec<String> = Vec::new();
    for c in t.files.iter().flat_map(|f| f.columns.alternatives(role)) {
        let c = format!("{c:?}");
        if !candidates.contains(&c) {
            candidates.push(c);
        }
    }
    if candidates.is_empty() {
        format!(
            "no {what} column in the interactions; name it with {}",
            role.flag()
        )
    } else {
        format!(
            "no {what} column in the interactions; possible: {}; choose one with {}",
            candidates.join(", "),
            role.flag()
        )
    }
}

fn overview(
    has_transactions: bool,
    s: Option<&Summaries>,
    interactions: Option<(u64, Vec<ChannelCount>)>,
) -> Overview {
    let (mut customers, mut transactions, mut revenue, mut first, mut last) =
        (0, 0, 0.0, None, None);
    if has_transactions && let Some(s) = s {
        // Orders inside the observation window (the table may hold later ones).
        transactions = s.customers.iter().map(|c| u64::from(c.orders)).sum();
        customers = s.customers.len() as u64;
        revenue = money::exact_total(s.customers.iter().map(|c| c.revenue));
        first = s
            .customers
            .iter()
            .map(|c| c.first_day)
            .min()
            .map(|d| date_from_days(d).to_string());
        last = s
            .customers
            .iter()
            .map(|c| c.last_day)
            .max()
            .map(|d| date_from_days(d).to_string());
    }
    let (interactions, by_channel) = match interactions {
        Some((n, by_channel)) => (Some(n), by_channel),
        None => (None, Vec::new()),
    };
    Overview {
        customers,
        transactions,
        revenue,
        first_date: first,
        last_date: last,
        interactions,
        interactions_by_channel: by_channel,
    }
}

fn supporting(
    s: &Summaries,
    cohort_of: &[Option<i32>],
    cac: &[Option<f64>],
    options: &ReportOptions,
) -> Supporting {
    let n = s.customers.len().max(1) as f64;
    let orders: f64 = s.customers.iter().map(|c| f64::from(c.orders)).sum();
    let revenue = money::exact_total(s.customers.iter().map(|c| c.revenue));
    let repeaters = s.customers.iter().filter(|c| c.purchase_days > 1).count() as f64;
    let mut cohorts: BTreeMap<i32, (u64, f64, f64, u64)> = BTreeMap::new();
    for (i, c) in s.customers.iter().enumerate() {
        let k = cohort_of
            .get(i)
            .copied()
            .flatten()
            .unwrap_or_else(|| s.period.index(date_from_days(c.first_day)));
        let e = cohorts.entry(k).or_default();
        e.0 += 1;
        e.1 += c.revenue;
        if let Some(cost) = cac.get(i).copied().flatten() {
            e.2 += cost;
            e.3 += 1;
        }
    }
    let by_cohort = cohorts
        .into_iter()
        .map(|(k, (n, rev, cost, with_cost))| {
            let clv = rev / n as f64;
            let cac = (with_cost > 0).then(|| cost / with_cost as f64);
            CohortValue {
                cohort: s.period.label(k),
                customers: n,
                revenue: rev,
                historical_clv: clv,
                cac,
                clv_to_cac: cac.filter(|&c| c > 0.0).map(|c| clv / c),
            }
        })
        .collect();
    // Lifecycle at the observation end (first matching stage wins):
    // churned: no purchase for inactive_after days; new: first purchase in the last period;
    // at_risk: past the usual cycle (see churn); reactivated: came back after a gap longer than
    // inactive_after; active: the rest.
    let rule = churn::AtRiskRule::new(s, options.inactive_after_days);
    let current = s.as_of_period();
    let w = options.inactive_after_days;
    let max_gap = max_gap_by_customer(s);
    let mut lifecycle: BTreeMap<String, u64> =
        ["new", "active", "at_risk", "churned", "reactivated"]
            .iter()
            .map(|k| (k.to_string(), 0))
            .collect();
    // Per segment: customers, orders, revenue, repeat customers, lifecycle stages.
    type Group = (u64, u64, f64, u64, BTreeMap<String, u64>);
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for (i, c) in s.customers.iter().enumerate() {
        let stage = if rule.churned(c) {
            "churned"
        } else if s.period.index(date_from_days(c.first_day)) == current {
            "new"
        } else if rule.overdue(c).is_some() {
            "at_risk"
        } else if max_gap.get(i).copied().unwrap_or(0) > w as i32 {
            "reactivated"
        } else {
            "active"
        };
        if let Some(n) = lifecycle.get_mut(stage) {
            *n += 1;
        }
        if !s.by.is_empty() {
            let segment = segment_str(s, i);
            if !groups.contains_key(segment) {
                groups.insert(segment.to_string(), Group::default());
            }
            if let Some(g) = groups.get_mut(segment) {
                g.0 += 1;
                g.1 += u64::from(c.orders);
                g.2 += c.revenue;
                g.3 += u64::from(c.purchase_days > 1);
                *g.4.entry(stage.into()).or_default() += 1;
            }
        }
    }
    let dimension = s.by.first().cloned().unwrap_or_default();
    let by_segment = groups
        .into_iter()
        .map(|(segment, (n, orders, revenue, repeaters, lifecycle))| {
            let nf = n.max(1) as f64;
            SegmentValue {
                dimension: dimension.clone(),
                segment,
                customers: n,
                orders,
                revenue,
                average_order_value: if orders > 0 {
                    revenue / orders as f64
                } else {
                    0.0
                },
                purchase_frequency: orders as f64 / nf,
                repeat_purchase_rate: repeaters as f64 / nf,
                historical_clv: revenue / nf,
                lifecycle,
            }
        })
        .collect();
    Supporting {
        average_order_value: if orders > 0.0 { revenue / orders } else { 0.0 },
        purchase_frequency: orders / n,
        repeat_purchase_rate: repeaters / n,
        historical_clv: revenue / n,
        by_cohort,
        lifecycle,
        by_segment,
    }
}

/// Longest gap between consecutive active periods' first days, per customer, approximated at the
/// period level (activity is per period): gap = (periods between activity − 1) × period length.
fn max_gap_by_customer(s: &Summaries) -> Vec<i32> {
    let mut out = vec![0i32; s.customers.len()];
    let mut prev: Option<(u32, i32)> = None;
    for a in s.activity.iter().filter(|a| a.is_active()) {
        if let Some((c, p)) = prev
            && c == a.customer
            && a.period > p + 1
        {
            let gap =
                days_since_epoch(s.period.start(a.period)) - days_since_epoch(s.period.end(p));
            if let Some(slot) = out.get_mut(a.customer as usize) {
                *slot = (*slot).max(gap);
            }
        }
        prev = Some((a.customer, a.period));
    }
    out
}

/// What stage 1 computes for these report options.
fn stage1_options(options: &ReportOptions) -> Stage1Options {
    let wants = |s: Section| options.sections.contains(&s);
    let reads_activity =
        wants(Section::Retention) || wants(Section::Churn) || wants(Section::Survival);
    Stage1Options {
        period: options.period,
        from: options.from,
        as_of: options.as_of,
        by: options.by.clone(),
        activity_from_interactions: options.active_on == ActiveOn::AnyInteraction && reads_activity,
        interactions_overview: wants(Section::Overview),
        survey: (wants(Section::Nps) || wants(Section::Csat)).then(|| ScoreOptions {
            period: Some(options.period),
            by: None,
            csat_scale: options.csat_scale,
            csat_satisfied_from: options.csat_satisfied_from,
            min_responses: options.min_responses,
        }),
        acquisition_costs: wants(Section::Supporting),
        holdout_from: options.clv_holdout_from.filter(|_| wants(Section::Clv)),
    }
}

/// Which table kinds a set of sections needs (for messages).
pub fn needs(section: Section) -> &'static [TableKind] {
    match section {
        Section::Nps | Section::Csat => &[TableKind::Interactions],
        _ => &[TableKind::Transactions],
    }
}
