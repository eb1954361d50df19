//! Building the report: stage 1 once ([`crate::summary`]), then one function per section, in
//! report order, each returning its section or the reason it was left out. Adding a section
//! means one section type, one function here and one view.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rayon::prelude::*;

use super::{
    ActiveOn, ChannelCount, CohortValue, CsatSection, Dataset, NpsSection, Overview, Report,
    ReportOptions, ReportSettings, SCHEMA_VERSION, Section, SegmentValue, Skipped, Supporting,
};
use crate::Result;
use crate::io::{Role, Table};
use crate::metrics::churn::{self, Churn, PeriodChurn, Survival};
use crate::metrics::retention::{self, Retention};
use crate::metrics::rfm::{self, Rfm};
use crate::metrics::scores::{self as score_metrics, ScoreOptions, SurveyCounts};
use crate::models::clv::ClvResult;
use crate::models::covariates::CovariateColumn;
use crate::money;
use crate::period::{date_from_days, days_since_epoch};
use crate::summary::{
    self, ActivityRuns, ActivityVisit, ContractSpan, Contracts, HoldoutSplit, Parts,
    SpilledActivity, Stage1, Stage1Options, Summaries,
};

impl Report {
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
    /// different date formats or decimal separators in one file; [`crate::Error::Io`] when the
    /// activity rows of more than one partition cannot be written to or read back from the
    /// temporary directory (`TMPDIR`).
    pub fn build_taking_rows(data: &mut Dataset, options: &ReportOptions) -> Result<Report> {
        let stage1 = summary::prepare(data, &stage1_options(options))?;
        build(data, stage1, options)
    }

    /// Builds the report from a summary store (stage 2 only): the same report as from the
    /// exports that went into the store, for any period, window, as-of date and segments.
    ///
    /// # Errors
    /// Errors reading the store, and those of [`Report::build`].
    pub fn from_store(store: &crate::SummaryStore, options: &ReportOptions) -> Result<Report> {
        Report::build_owned(store.read(&options.store_read(1))?, options)
    }

    /// As [`Report::from_store`], with the store's purchases read in `partitions` ranges of
    /// customers, one after another ([`crate::SummaryStore::dataset_in_partitions`]): the same
    /// report in less memory.
    ///
    /// # Errors
    /// As [`Report::from_store`]; a CLV holdout or activity from interactions, which need the
    /// purchases whole, are refused with more than one partition.
    pub fn from_store_in_partitions(
        store: &crate::SummaryStore,
        options: &ReportOptions,
        partitions: u32,
    ) -> Result<Report> {
        Report::build_owned(store.read(&options.store_read(partitions))?, options)
    }
}

/// The report from stage 1's results; `data` holds the tables' accounting, without rows.
///
/// # Errors
/// Reading activity rows spilled to disk by a merge of partitions.
fn build(data: &Dataset, stage1: Stage1, options: &ReportOptions) -> Result<Report> {
    let mut skips = Skips {
        wanted: &options.sections,
        skipped: Vec::new(),
    };
    let no_tx = if data.transactions.is_some() {
        "no usable transactions"
    } else {
        "no transactions table given (--transactions)"
    };
    let Stage1 {
        purchases: mut summaries,
        mut activity,
        spilled_activity,
        as_of,
        interactions_overview,
        survey,
        signup_periods: cohort_of,
        contracts,
        acquisition_costs,
        mut holdout,
        retention: retention_counts,
    } = stage1;
    // The CLV covariates' values, taken before their dimensions leave the summaries.
    let covariates = (!options.clv_covariates.is_empty() && skips.wants(Section::Clv))
        .then(|| {
            holdout
                .as_ref()
                .map(|h| &h.calibration)
                .or(summaries.as_ref())
                .map(|s| covariate_columns(s, options))
        })
        .flatten();
    let added = stage1_by(options).len() - options.by.len();
    for s in [
        summaries.as_mut(),
        activity.as_mut(),
        holdout.as_mut().map(|h| &mut h.calibration),
    ]
    .into_iter()
    .flatten()
    {
        drop_trailing_dims(s, added);
    }
    // Purchases drive revenue, RFM and CLV; activity (purchases, or any interaction when
    // asked) drives retention, churn and survival.
    let active = activity.as_ref().or(summaries.as_ref());
    // The active customers' activity rows: their own, or spilled to disk by a merge of
    // partitions (which refuses activity from interactions, so they are the purchases').
    let spilled = spilled_activity.as_ref().filter(|_| activity.is_none());
    let activity_rows = |s| activity_runs(s, spilled);
    let overview = skips.wants(Section::Overview).then(|| {
        overview(
            data.transactions.is_some(),
            summaries.as_ref(),
            interactions_overview,
        )
    });
    let supporting = match &summaries {
        Some(s) if skips.wants(Section::Supporting) => Some(supporting(
            s,
            activity_rows(s),
            &cohort_of,
            &acquisition_costs,
            options,
        )?),
        _ => None,
    };
    // Each of stage 1's results is released after its last reader, so that no step holds
    // what an earlier one needed: at 100M transactions the customers' costs are 0.4 GB,
    // their signup periods 0.2 GB, the contracts 1 GB and the activity rows 1.6 GB.
    drop(acquisition_costs);
    let retention = match retention_counts {
        Some(counts) if skips.wants(Section::Retention) => {
            Some(Retention::from_counts(&counts, options.period))
        }
        _ => retention(
            active.map(|s| (s, activity_rows(s))),
            &cohort_of,
            &mut skips,
            no_tx,
        )?,
    };
    drop(cohort_of);
    // The contracts' revenue churn is the last reader of the activity rows: churn and
    // survival read the customer rows and the gaps.
    let contractual_churn = contractual_churn(
        contracts.as_ref(),
        as_of,
        active.map(|s| (s, activity_rows(s))),
        options,
        &skips,
    )?;
    drop(spilled_activity);
    for s in [activity.as_mut(), summaries.as_mut()]
        .into_iter()
        .flatten()
    {
        s.activity = Vec::new();
    }
    let active = activity.as_ref().or(summaries.as_ref());
    let churn = churn(active, options, &mut skips, no_tx);
    let survival = survival(
        contracts.as_ref().map(|c| c.spans.as_slice()),
        as_of,
        active,
        summaries.as_ref(),
        options,
        &mut skips,
    );
    drop(contracts);
    let (nps, csat) = scores(survey, data.interactions.as_ref(), options, &mut skips);
    // RFM and CLV read the customer rows only, and the CLV step builds its own per-customer
    // table on top.
    drop(activity);
    if let Some(s) = summaries.as_mut() {
        s.gaps = Vec::new();
    }
    // The CLV models read the RFM table of every customer. When the RFM section shows the
    // same table's segments (no holdout, the same time unit, no row per customer asked), the
    // table is built once: its quintiles were 3 s of a 100M-row report, twice.
    let shared = match &summaries {
        Some(s)
            if skips.wants(Section::Rfm)
                && skips.wants(Section::Clv)
                && holdout.is_none()
                && !options.rfm_customers
                && options.time_unit_days == options.clv.time_unit_days =>
        {
            Some(rfm::rfm(s, options.time_unit_days))
        }
        _ => None,
    };
    let rfm = match &shared {
        Some(table) => Some(Rfm {
            time_unit_days: table.time_unit_days,
            customers: Vec::new(),
            segments: table.segments.clone(),
            by_segment: table.by_segment.clone(),
        }),
        None => rfm(summaries.as_ref(), options, &mut skips, no_tx),
    };
    if supporting.is_none() {
        skips.skip(Section::Supporting, no_tx);
    }
    let clv = clv(
        summaries,
        shared,
        holdout.as_ref(),
        covariates,
        options,
        &mut skips,
        no_tx,
    );
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
        accounting: accounting(data),
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
        skipped: skips.skipped,
        headlines: Vec::new(),
        generated_at: None,
    }
    .with_headlines())
}

/// The sections asked for, and why those that could not be built were left out (in report
/// order).
struct Skips<'a> {
    wanted: &'a [Section],
    skipped: Vec<Skipped>,
}

impl Skips<'_> {
    fn wants(&self, section: Section) -> bool {
        self.wanted.contains(&section)
    }

    /// Records why `section` is left out, when it was asked for.
    fn skip(&mut self, section: Section, reason: &str) {
        if self.wants(section) {
            self.skipped.push(Skipped {
                section,
                reason: reason.into(),
            });
        }
    }
}

/// The activity rows of `s`: its own, or `spilled` when a merge of partitions left them on disk.
fn activity_runs<'a>(s: &'a Summaries, spilled: Option<&'a SpilledActivity>) -> ActivityRuns<'a> {
    match spilled {
        Some(spilled) => ActivityRuns::Spilled(spilled),
        None => ActivityRuns::Held(&s.activity),
    }
}

/// Row accounting per input table.
fn accounting(data: &Dataset) -> BTreeMap<String, crate::io::Accounting> {
    let mut accounting = BTreeMap::new();
    for t in [&data.transactions, &data.interactions, &data.customers]
        .into_iter()
        .flatten()
    {
        accounting.insert(t.kind.name().to_string(), t.accounting.clone());
    }
    accounting
}

fn retention(
    active: Option<(&Summaries, ActivityRuns<'_>)>,
    cohort_of: &[Option<i32>],
    skips: &mut Skips<'_>,
    no_tx: &str,
) -> Result<Option<Retention>> {
    match active {
        Some((s, rows)) if skips.wants(Section::Retention) => {
            Ok(Some(retention::retention_of(s, &rows, cohort_of)?))
        }
        _ => {
            skips.skip(Section::Retention, no_tx);
            Ok(None)
        }
    }
}

fn churn(
    active: Option<&Summaries>,
    options: &ReportOptions,
    skips: &mut Skips<'_>,
    no_tx: &str,
) -> Option<Churn> {
    match active {
        Some(s) if skips.wants(Section::Churn) => {
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
            skips.skip(Section::Churn, no_tx);
            None
        }
    }
}

fn contractual_churn(
    contracts: Option<&Contracts>,
    as_of: Option<NaiveDate>,
    active: Option<(&Summaries, ActivityRuns<'_>)>,
    options: &ReportOptions,
    skips: &Skips<'_>,
) -> Result<Option<Vec<PeriodChurn>>> {
    Ok(match (contracts, as_of) {
        (Some(cs), Some(a)) if skips.wants(Section::Churn) => Some(churn::contractual_churn_of(
            cs.matched_to_activity(),
            options.period,
            days_since_epoch(a),
            active.as_ref().map(|(s, rows)| (*s, rows)),
        )?),
        _ => None,
    })
}

fn survival(
    contracts: Option<&[ContractSpan]>,
    as_of: Option<NaiveDate>,
    active: Option<&Summaries>,
    summaries: Option<&Summaries>,
    options: &ReportOptions,
    skips: &mut Skips<'_>,
) -> Option<Survival> {
    if !skips.wants(Section::Survival) {
        return None;
    }
    match (contracts, as_of, active) {
        (Some(cs), Some(a), _) => {
            let a = days_since_epoch(a);
            let lifetimes =
                churn::contract_lifetimes_of(cs.iter().map(|c| (c.start_day, c.end_day)), a);
            let mut km = churn::kaplan_meier("contractual", &lifetimes);
            // Segments from the purchase summaries (which carry customer attributes joined
            // onto transactions), where stage 1 found each contract's customer.
            if let Some(s) = summaries.filter(|s| !s.by.is_empty()) {
                let segments: Vec<String> = cs
                    .iter()
                    .filter(|c| c.start_day <= a)
                    .map(|c| match c.customer {
                        Some(i) => segment_of(s, i as usize),
                        None => "(none)".into(),
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
            let w = options.inactive_after_days;
            let lifetimes = churn::inactivity_lifetimes(s, w);
            if lifetimes.is_empty() {
                skips.skip(
                    Section::Survival,
                    "no customer's first purchase is --inactive-after days before the end, so \
                     no lifetime can have been seen to end yet",
                );
                return None;
            }
            let mut km = churn::kaplan_meier("inactivity", &lifetimes);
            km.too_recent = churn::too_recent_for_inactivity_survival(s, w);
            if let Some(dimension) = s.by.first() {
                // The segments of the customers `inactivity_lifetimes` kept, in order.
                let end = s.as_of_day();
                let segments: Vec<String> = (s.customers.iter().enumerate())
                    .filter(|(_, c)| churn::inactivity_lifetime(c, end, w).is_some())
                    .map(|(i, _)| segment_of(s, i))
                    .collect();
                km.by_segment = churn::kaplan_meier_by_segment(dimension, &lifetimes, &segments);
            }
            Some(km)
        }
        _ => {
            skips.skip(
                Section::Survival,
                "needs transactions or customers with end dates",
            );
            None
        }
    }
}

/// The NPS and CSAT sections from the survey scores (`None`: not asked; `Some(None)`: no
/// interactions table).
fn scores(
    survey: Option<Option<SurveyCounts>>,
    interactions: Option<&Table>,
    options: &ReportOptions,
    skips: &mut Skips<'_>,
) -> (Option<NpsSection>, Option<CsatSection>) {
    // Why a score section would be empty.
    let no_answers = |role: Role| interactions.map(|t| no_answers_reason(t, role));
    let (no_nps, no_csat) = (no_answers(Role::Nps), no_answers(Role::Csat));
    let (mut nps, mut csat) = (None, None);
    if let Some(survey) = survey {
        match survey.map(|counts| score_metrics::scores_from_counts(&counts)) {
            Some(s) => {
                if skips.wants(Section::Nps) {
                    match s.nps {
                        Some(overall) => {
                            nps = Some(NpsSection {
                                overall,
                                by: s.nps_by,
                                min_responses: options.min_responses,
                            })
                        }
                        None => skips.skip(
                            Section::Nps,
                            no_nps
                                .as_deref()
                                .unwrap_or("no NPS answers in the interactions"),
                        ),
                    }
                }
                if skips.wants(Section::Csat) {
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
                        None => skips.skip(
                            Section::Csat,
                            no_csat
                                .as_deref()
                                .unwrap_or("no CSAT answers in the interactions"),
                        ),
                    }
                }
            }
            None => {
                skips.skip(Section::Nps, "no interactions table given (--interactions)");
                skips.skip(
                    Section::Csat,
                    "no interactions table given (--interactions)",
                );
            }
        }
    }
    (nps, csat)
}

fn rfm(
    summaries: Option<&Summaries>,
    options: &ReportOptions,
    skips: &mut Skips<'_>,
    no_tx: &str,
) -> Option<Rfm> {
    match summaries {
        Some(s) if skips.wants(Section::Rfm) => Some(if options.rfm_customers {
            rfm::rfm(s, options.time_unit_days)
        } else {
            rfm::rfm_segments(s, options.time_unit_days)
        }),
        _ => {
            skips.skip(Section::Rfm, no_tx);
            None
        }
    }
}

/// Predictive CLV; takes the summaries so that the customer rows are released before the fits.
fn clv(
    summaries: Option<Summaries>,
    table: Option<Rfm>,
    holdout: Option<&HoldoutSplit>,
    covariates: Option<Vec<CovariateColumn>>,
    options: &ReportOptions,
    skips: &mut Skips<'_>,
    no_tx: &str,
) -> Option<ClvResult> {
    match summaries {
        Some(s) if skips.wants(Section::Clv) => {
            let calibration = holdout.map(|h| &h.calibration).unwrap_or(&s);
            // The RFM section's table when it is this one (see `build`).
            let table = table.unwrap_or_else(|| rfm::rfm(calibration, options.clv.time_unit_days));
            // The forecast's cohorts: each customer's first-purchase period, as the models date
            // a customer, observed to the models' end (the calibration end with a holdout).
            let forecast_from = (options.clv_forecast_periods > 0).then(|| {
                let first: Vec<i32> = calibration.first_purchase_periods();
                (first, calibration.period, calibration.as_of_day())
            });
            // The models read this table only: the customer rows (~3 GB at 26M customers)
            // are released before the fits and the scoring add their own memory.
            let end = s.as_of;
            drop(s);
            let mut comparison = None;
            let models = match &options.clv_models {
                Some(models) => Ok(models.clone()),
                None if options.clv_compare => {
                    let holdout_input = holdout.map(|h| crate::models::compare::HoldoutInput {
                        actual: &h.actual,
                        days: f64::from((days_since_epoch(end) - days_since_epoch(h.from)) + 1),
                        from: h.from.to_string(),
                        to: end.to_string(),
                    });
                    crate::models::compare::compare_models(
                        &table,
                        &options.clv,
                        holdout_input.as_ref(),
                    )
                    .and_then(|(c, purchase)| {
                        comparison = Some(c);
                        Ok((
                            purchase,
                            crate::models::clv::fit_spend_model(&table, &options.clv)?,
                        ))
                    })
                }
                None => crate::models::clv::fit_clv_models(&table, &options.clv),
            };
            let scored = models.and_then(|(purchase, spend)| {
                let mut clv_options = options.clv;
                clv_options.model = purchase.model();
                let mut c = crate::models::clv::score_clv_top(
                    &table,
                    purchase,
                    spend,
                    &clv_options,
                    options.clv_customers,
                )?;
                c.comparison = comparison;
                Ok(c)
            });
            let fitted = scored.and_then(|mut c| {
                if let Some(h) = holdout {
                    let mut v = crate::models::clv::validate_holdout(
                        &c,
                        &table,
                        &h.actual,
                        f64::from((days_since_epoch(end) - days_since_epoch(h.from)) + 1),
                        h.from.to_string(),
                        end.to_string(),
                    )?;
                    v.tracking = crate::models::clv::holdout_tracking(
                        &c.purchase_model,
                        &table,
                        &h.repeat_days,
                        days_since_epoch(h.from) - 1,
                        days_since_epoch(h.from),
                        days_since_epoch(end),
                    )?;
                    c.holdout = Some(v);
                }
                if let Some((first, period, end_day)) = &forecast_from {
                    c.cohort_forecast = Some(crate::models::cohort_forecast::forecast_cohorts(
                        &table,
                        first,
                        *period,
                        *end_day,
                        &c.purchase_model,
                        &c.spend_model,
                        options.clv_forecast_periods,
                        c.options.intervals.as_ref(),
                    )?);
                }
                if let Some(columns) = &covariates {
                    c.covariates = Some(crate::models::covariates::fit_covariates(
                        &table,
                        columns,
                        &options.clv_covariates,
                        &c.purchase_model,
                        Some(&c.spend_model),
                        &options.clv.fit,
                    ));
                }
                Ok(c)
            });
            match fitted {
                Ok(c) => Some(c),
                // A model that cannot be fitted is reported as such, never as a number.
                Err(e) => {
                    skips.skip(Section::Clv, &e.to_string());
                    None
                }
            }
        }
        _ => {
            skips.skip(Section::Clv, no_tx);
            None
        }
    }
}

/// The dimensions stage 1 values per customer ([`ReportOptions::dimensions`]).
fn stage1_by(options: &ReportOptions) -> Vec<String> {
    options.dimensions()
}

/// Removes the last `n` dimensions (the covariates stage 1 added) from summaries.
fn drop_trailing_dims(s: &mut Summaries, n: usize) {
    if n == 0 {
        return;
    }
    let keep = s.by.len().saturating_sub(n);
    s.by.truncate(keep);
    for c in &mut s.customers {
        let mut segments = std::mem::take(&mut c.segments).into_vec();
        segments.truncate(keep);
        c.segments = segments.into_boxed_slice();
    }
}

/// Each covariate's value per customer of `s` (its dimension's value; empty when unknown).
fn covariate_columns(s: &Summaries, options: &ReportOptions) -> Vec<CovariateColumn> {
    options
        .clv_covariates
        .columns()
        .into_iter()
        .filter_map(|name| {
            let k = s.by.iter().position(|b| *b == name)?;
            Some(CovariateColumn {
                values: s
                    .customers
                    .iter()
                    .map(|c| c.segments.get(k).cloned().flatten().unwrap_or_default())
                    .collect(),
                name,
            })
        })
        .collect()
}

/// What stage 1 computes for these report options.
pub(super) fn stage1_options(options: &ReportOptions) -> Stage1Options {
    let wants = |s: Section| options.sections.contains(&s);
    let reads_activity =
        wants(Section::Retention) || wants(Section::Churn) || wants(Section::Survival);
    Stage1Options {
        period: options.period,
        from: options.from,
        as_of: options.as_of,
        by: stage1_by(options),
        activity_from_interactions: options.active_on == ActiveOn::AnyInteraction && reads_activity,
        interactions_overview: wants(Section::Overview),
        survey: (wants(Section::Nps) || wants(Section::Csat)).then_some(ScoreOptions {
            period: Some(options.period),
            by: None,
            csat_scale: options.csat_scale,
            csat_satisfied_from: options.csat_satisfied_from,
            min_responses: options.min_responses,
        }),
        acquisition_costs: wants(Section::Supporting),
        holdout_from: options.clv_holdout_from.filter(|_| wants(Section::Clv)),
        only_retention: wants(Section::Retention)
            && options.sections.iter().all(|&s| s == Section::Retention)
            && options.active_on == ActiveOn::Transactions
            && stage1_by(options).is_empty(),
        parts: match reads_activity || wants(Section::Supporting) {
            true => Parts::All,
            false => Parts::Customers,
        },
        reads_transactions: options
            .sections
            .iter()
            .any(|s| !matches!(s, Section::Nps | Section::Csat)),
    }
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
    rows: ActivityRuns<'_>,
    cohort_of: &[Option<i32>],
    cac: &[Option<f64>],
    options: &ReportOptions,
) -> Result<Supporting> {
    let n = s.customers.len().max(1) as f64;
    let orders: f64 = s.customers.iter().map(|c| f64::from(c.orders)).sum();
    let revenue = money::exact_total(s.customers.iter().map(|c| c.revenue));
    let repeaters = s.customers.iter().filter(|c| c.purchase_days > 1).count() as f64;
    let mut cohorts: BTreeMap<i32, (u64, f64, f64, u64)> = BTreeMap::new();
    let lookup = s.period_lookup();
    for (i, c) in s.customers.iter().enumerate() {
        let k = cohort_of
            .get(i)
            .copied()
            .flatten()
            .unwrap_or_else(|| lookup.get(c.first_day));
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
    let max_gap = max_gap_by_customer(s, &rows)?;
    let mut lifecycle: BTreeMap<String, u64> =
        ["new", "active", "at_risk", "churned", "reactivated"]
            .iter()
            .map(|k| (k.to_string(), 0))
            .collect();
    // Per segment: customers, orders, revenue, repeat customers, lifecycle stages.
    type Group = (u64, u64, f64, u64, BTreeMap<String, u64>);
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    // Each customer's stage in parallel (date arithmetic per customer); counted in order below.
    const STAGES: [&str; 5] = ["churned", "new", "at_risk", "reactivated", "active"];
    let stages: Vec<u8> = s
        .customers
        .par_iter()
        .enumerate()
        .map(|(i, c)| {
            if rule.churned(c) {
                0
            } else if lookup.get(c.first_day) == current {
                1
            } else if rule.overdue(c).is_some() {
                2
            } else if max_gap.get(i).copied().unwrap_or(0) > w as i32 {
                3
            } else {
                4
            }
        })
        .collect();
    for (i, (c, &stage)) in s.customers.iter().zip(&stages).enumerate() {
        let stage = STAGES.get(usize::from(stage)).copied().unwrap_or("active");
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
    Ok(Supporting {
        average_order_value: if orders > 0.0 { revenue / orders } else { 0.0 },
        purchase_frequency: orders / n,
        repeat_purchase_rate: repeaters / n,
        historical_clv: revenue / n,
        by_cohort,
        lifecycle,
        by_segment,
    })
}

/// Longest gap between consecutive active periods' first days, per customer, approximated at the
/// period level (activity is per period): gap = (periods between activity − 1) × period length.
fn max_gap_by_customer(s: &Summaries, rows: &ActivityRuns<'_>) -> Result<Vec<i32>> {
    let mut out = vec![0i32; s.customers.len()];
    rows.visit(s.customers.len(), &mut |customer, own| {
        let mut prev: Option<i32> = None;
        for a in own.iter().filter(|a| a.is_active()) {
            if let Some(p) = prev
                && a.period > p + 1
            {
                let gap =
                    days_since_epoch(s.period.start(a.period)) - days_since_epoch(s.period.end(p));
                if let Some(slot) = out.get_mut(customer) {
                    *slot = (*slot).max(gap);
                }
            }
            prev = Some(a.period);
        }
    })?;
    Ok(out)
}
