//! Everything a report needs from the rows of a [`Dataset`], computed once, after which the rows
//! are released: the purchase summaries (from whole tables or customer partitions), activity
//! summaries when interactions count as activity, the survey score counts, the interactions'
//! overview, the customers' signup periods, contracts and acquisition costs, and the CLV
//! holdout split.

use chrono::NaiveDate;
use polars::prelude::*;
use serde::Serialize;

use super::holdout::{HoldoutSplit, holdout_split};
use super::partitions::partitioned_stage_one;
use super::scores::{ScoreOptions, SurveyCounts, survey_counts};
use super::store::StorePurchases;
use super::summarise::summarise_parts;
use super::{CustomerId, Parts, SpilledActivity, Summaries, filter_dates, summarise};
use crate::io::{Dataset, Table, col};
use crate::metrics::retention::RetentionCounts;
use crate::period::{Period, PeriodLookup, date_from_days, days_since_epoch};
use crate::{Error, Result};

/// Interactions in one channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelCount {
    /// Channel (`(none)` when blank).
    pub channel: String,
    /// Interactions.
    pub interactions: u64,
    /// Distinct customers.
    pub customers: u64,
}

/// What stage 1 computes: which summaries, and which reductions of the other tables.
#[derive(Debug, Clone)]
pub(crate) struct Stage1Options {
    /// Reporting period.
    pub period: Period,
    /// Ignore transactions (and interactions) before this date.
    pub from: Option<NaiveDate>,
    /// Observation end; the last transaction date when `None`.
    pub as_of: Option<NaiveDate>,
    /// Segment dimensions: transaction columns, or customer attributes joined on.
    pub by: Vec<String>,
    /// Activity (retention, churn, survival) includes interactions: summarise them too. `false`
    /// also when no section reads activity.
    pub activity_from_interactions: bool,
    /// Count the interactions per channel (the overview).
    pub interactions_overview: bool,
    /// Survey scores with these options (NPS or CSAT wanted); `by` is set here to the first
    /// `by` dimension the interactions have.
    pub survey: Option<ScoreOptions>,
    /// Align the customers' acquisition costs with the summaries (supporting figures).
    pub acquisition_costs: bool,
    /// Split the transactions at this date for a CLV holdout check (CLV wanted).
    pub holdout_from: Option<NaiveDate>,
    /// Retention, unsplit, is the only section that reads the transactions: a store's
    /// purchase days are counted straight into its counts ([`super::cohorts`]), with no
    /// summaries.
    pub only_retention: bool,
    /// The purchase summaries to build: without a section that reads activity rows or gaps
    /// (retention, churn, survival, supporting figures), the customer rows only.
    pub parts: Parts,
    /// A section reads the transactions (all but the survey scores): without one, a store's
    /// purchases are left in it and only their last day is read (the scores' default end).
    pub reads_transactions: bool,
}

/// The results of stage 1: everything later stages read, without the input rows.
#[derive(Debug)]
pub(crate) struct Stage1 {
    /// Purchase summaries (`None`: no usable transactions); they drive revenue, RFM and CLV.
    pub purchases: Option<Summaries>,
    /// Activity summaries (purchases and interactions), when interactions count as activity.
    pub activity: Option<Summaries>,
    /// The purchase summaries' activity rows when a merge of partitions left them on disk
    /// (`purchases` then has none; activity from interactions is refused with partitions).
    pub spilled_activity: Option<SpilledActivity>,
    /// The observation end: the summaries', or the one given.
    pub as_of: Option<NaiveDate>,
    /// The interactions' count and channel breakdown (`None`: not asked, or no interactions).
    pub interactions_overview: Option<(u64, Vec<ChannelCount>)>,
    /// Survey answer counts: `None` when not asked, `Some(None)` without an interactions table.
    pub survey: Option<Option<SurveyCounts>>,
    /// Each summarised customer's signup period (empty without signup dates).
    pub signup_periods: Vec<Option<i32>>,
    /// Contracts, when the customers table has signup and end dates.
    pub contracts: Option<Contracts>,
    /// Each summarised customer's acquisition cost (empty when not asked or not given).
    pub acquisition_costs: Vec<Option<f64>>,
    /// The CLV calibration/holdout split.
    pub holdout: Option<HoldoutSplit>,
    /// Retention's counts, when they were counted without summaries
    /// ([`Stage1Options::only_retention`]; `purchases` and `activity` are then `None`).
    pub retention: Option<RetentionCounts>,
}

/// Stage 1 for a report: takes the rows out of `data` and reduces them, leaving in `data` what
/// a caller reports on (every table's accounting, rejections, file reports and paths, without
/// rows: [`Dataset::without_rows`]). Deferred transactions
/// ([`crate::io::DatasetSpec::transaction_partitions`]) are read here, one customer partition
/// at a time, and their accounting is left in `data.transactions`.
///
/// The rows are released as soon as everything that reads them is done, so that the models and
/// the rest of stage 2 run without the input tables in memory. On 100M transactions that is
/// several GB off the peak.
pub(crate) fn prepare(data: &mut Dataset, options: &Stage1Options) -> Result<Stage1> {
    // A store read for the survey scores alone leaves the customers' ids out
    // (`StoreRead::customer_rows`); the sections that read transactions would silently lose the
    // signup dates, contracts and costs: refused.
    if let Some(t) = &data.customers
        && options.reads_transactions
        && t.frame.height() > 0
        && t.frame.get_column_index(col::CUSTOMER_ID).is_none()
    {
        return Err(Error::InvalidSetting {
            setting: "customer_rows".into(),
            message: "the customers table was read without its ids \
                      (StoreRead::customer_rows = false), which only the survey scores allow; \
                      read it with them"
                .into(),
        });
    }
    let mut owned = std::mem::take(data);
    // Of the customers table, stage 1 reads the ids, the dates and costs, and the attributes
    // it splits by: the other attributes (plans, regions, channels as text: ~1.2 GB at 26M
    // customers) are released before stage 1, whose output is the peak of a large report.
    if let Some(t) = owned.customers.as_mut() {
        keep_columns(t, &super::CUSTOMER_COLUMNS_READ, &options.by)?;
    }
    if let Some(stage1) = retention_from_store(&mut owned, options)? {
        *data = owned.without_rows();
        return Ok(stage1);
    }
    let last_day_in_store = last_day_left_in_store(&mut owned, options);
    let mut stage_one = None;
    let mut spilled_activity = None;
    let mut early_overview = None;
    if let Some(deferred) = owned.deferred_transactions.take() {
        // The interactions overview does not depend on the observation end: done before
        // the partitions, its working memory (a distinct-customer count per channel over
        // every interaction) does not add to the merged summaries'.
        if let Some(t) = &owned.interactions
            && options.interactions_overview
        {
            early_overview = Some(interactions_overview(t)?);
        }
        // The survey scores, computed after stage 1 (they are cut at its observation end),
        // read only the dates, the answers and the `by` columns: the rest of the
        // interactions (ids, channels, kinds: 2 GB at 45M interactions) is released
        // before the partitions. Activity from interactions, which would need the ids, is
        // refused with partitions.
        if let Some(t) = owned.interactions.as_mut() {
            // A store's interactions also carry their rows' weights.
            keep_columns(
                t,
                &[col::DATE, col::NPS, col::CSAT, col::ANSWERS],
                &options.by,
            )?;
            // Only rows with an answer count in the scores: the others (all of a store's
            // interaction events, 45M rows at 100M transactions) are released too.
            let answered = [col::NPS, col::CSAT]
                .into_iter()
                .filter(|c| t.frame.get_column_index(c).is_some())
                .map(|c| col(c).is_not_null())
                .reduce(|a, b| a.or(b));
            t.frame = match (&options.survey, answered) {
                (Some(_), Some(answered)) => {
                    let unanswered = [col::NPS, col::CSAT]
                        .into_iter()
                        .filter_map(|c| t.frame.column(c).ok())
                        .all(|c| c.null_count() > 0);
                    match unanswered {
                        true => t.frame.clone().lazy().filter(answered).collect()?,
                        false => t.frame.clone(),
                    }
                }
                // No score asked for, or none to count: the columns stay (for the checks
                // that read them), not the rows.
                _ => t.frame.clear(),
            };
        }
        let (table, summaries) = partitioned_stage_one(&owned, deferred, options)?;
        owned.transactions = Some(table);
        let (summaries, spill) = summaries.unzip();
        spilled_activity = spill.flatten();
        stage_one = Some(summaries);
    }
    *data = owned.without_rows();
    let stage1 = from_tables(owned, stage_one, early_overview, last_day_in_store, options)?;
    Ok(Stage1 {
        spilled_activity,
        ..stage1
    })
}

/// When no section reads the transactions and they were left in a store: their last date (the
/// default end of the survey scores, as the summaries would give it), from the store's
/// manifest, with no row decoded; the transactions table then holds their accounting. `None`
/// otherwise, and when there is no purchase from `--from` on or no day range: the store is then
/// read as usual.
fn last_day_left_in_store(data: &mut Dataset, options: &Stage1Options) -> Option<NaiveDate> {
    if options.reads_transactions {
        return None;
    }
    let store = data
        .deferred_transactions
        .as_ref()
        .and_then(|d| d.rows())
        .and_then(|rows| rows.as_any().downcast_ref::<StorePurchases>())?;
    // No purchase from `from` on: the general path says so, as from the exports.
    let last = store.last_day().filter(|&last| {
        options
            .from
            .is_none_or(|from| last >= days_since_epoch(from))
    })?;
    data.transactions = Some(store.accounting());
    data.deferred_transactions = None;
    Some(date_from_days(last))
}

/// Stage 1 of a report whose only transaction section is retention, from a store's purchase
/// days ([`super::cohorts`]), when the purchases were left in a store; signup dates in the
/// store's customers snapshot date the cohorts, matched to the store's customer codes by id.
/// `None` otherwise, or when no customer bought in the window: the general path then runs (and
/// says why there is nothing to report). On success the transactions table holds its
/// accounting.
fn retention_from_store(data: &mut Dataset, options: &Stage1Options) -> Result<Option<Stage1>> {
    let store = data
        .deferred_transactions
        .as_ref()
        .and_then(|d| d.rows())
        .and_then(|rows| rows.as_any().downcast_ref::<StorePurchases>());
    let Some(store) = store.filter(|_| options.only_retention) else {
        return Ok(None);
    };
    // Signup dates from the customers snapshot date the cohorts. Matched first, so that the
    // ids and the matching's working memory are gone before the purchase days are read.
    let signup = match &data.customers {
        Some(t) => store.signup_days(&t.frame)?,
        None => Vec::new(),
    };
    let day = |d: Option<NaiveDate>| d.map(days_since_epoch);
    let Some(days) = store.purchase_days(day(options.from), day(options.as_of))? else {
        return Ok(None);
    };
    let Some((counts, as_of)) =
        super::cohorts::retention_counts(&days, &signup, options.period, day(options.as_of))
    else {
        return Ok(None);
    };
    data.transactions = Some(store.accounting());
    data.deferred_transactions = None;
    Ok(Some(Stage1 {
        purchases: None,
        activity: None,
        spilled_activity: None,
        as_of: Some(date_from_days(as_of)),
        interactions_overview: None,
        survey: None,
        signup_periods: Vec::new(),
        contracts: None,
        acquisition_costs: Vec::new(),
        holdout: None,
        retention: Some(counts),
    }))
}

/// Narrows a table's frame to the columns of `fixed` and `by` it has (the others' memory is
/// released when nothing else shares them).
fn keep_columns(t: &mut Table, fixed: &[&str], by: &[String]) -> Result<()> {
    let keep: Vec<String> = fixed
        .iter()
        .map(|c| c.to_string())
        .chain(by.iter().cloned())
        .filter(|c| t.frame.get_column_index(c).is_some())
        .collect();
    t.frame = t.frame.select(keep)?;
    Ok(())
}

/// Stage 1 from the loaded tables, with what the partitioned path computed before (the purchase
/// summaries, `Some(None)` when no row was usable, and the interactions overview).
fn from_tables(
    mut data: Dataset,
    stage_one: Option<Option<Summaries>>,
    overview_early: Option<(u64, Vec<ChannelCount>)>,
    last_day_in_store: Option<NaiveDate>,
    options: &Stage1Options,
) -> Result<Stage1> {
    // Order ids only serve to merge order lines while loading; nothing in the report reads
    // them, and on 100M rows the column is over a GB that stage 1 would otherwise sit on.
    if let Some(t) = data.transactions.as_mut()
        && t.frame.get_column_index(col::ORDER_ID).is_some()
    {
        t.frame = t.frame.drop(col::ORDER_ID)?;
    }
    let customers_frame = data.customers.as_ref().map(|t| t.frame.clone());
    for b in &options.by {
        let known = data.tables().any(|t| {
            t.frame
                .get_column_names()
                .iter()
                .any(|c| c.as_str() == b.as_str())
        });
        if !known {
            let columns: Vec<String> = data
                .tables()
                .flat_map(|t| t.dimensions.iter().cloned())
                .collect();
            return Err(Error::UnknownColumn {
                table: data
                    .tables()
                    .map(|t| t.kind.name())
                    .collect::<Vec<_>>()
                    .join("/"),
                role: "segment (by) or CLV covariate".into(),
                column: b.clone(),
                columns: columns.join(", "),
            });
        }
    }
    // What reads only the interactions (survey scores, their overview) runs before stage 1,
    // and the table (45M rows at 100M transactions) is released then unless activity
    // includes interactions: stage 1 is the peak of a large report's memory. The scores are
    // cut at the summaries' own as-of date (the last transaction date unless given).
    let as_of_hint = match options.as_of {
        Some(d) => Some(d),
        None => match (&stage_one, last_day_in_store) {
            (Some(s), _) => s.as_ref().map(|s| s.as_of),
            (None, Some(last)) => Some(last),
            (None, None) => last_transaction_date(data.transactions.as_ref(), options.from)?,
        },
    };
    let interactions_overview = match (&data.interactions, overview_early) {
        (_, Some(o)) => Some(o),
        (Some(t), None) if options.interactions_overview => Some(interactions_overview(t)?),
        _ => None,
    };
    let survey = match &options.survey {
        Some(so) => match &data.interactions {
            Some(t) => {
                let by = options
                    .by
                    .iter()
                    .find(|b| {
                        t.frame
                            .get_column_names()
                            .iter()
                            .any(|c| c.as_str() == b.as_str())
                    })
                    .cloned();
                let so = ScoreOptions { by, ..so.clone() };
                let lf = filter_dates(t.frame.clone().lazy(), options.from, as_of_hint);
                Some(Some(survey_counts(lf, &so)?))
            }
            None => Some(None),
        },
        None => None,
    };
    if !options.activity_from_interactions {
        data.interactions = None;
    }
    // Stage 1, once for all transaction sections.
    let summaries = match (stage_one, &data.transactions) {
        (Some(s), _) => s.map(|s| (s, None)),
        (None, Some(t)) if t.frame.height() > 0 => {
            let (lf, by) = purchases(t.frame.clone(), customers_frame.as_ref(), options)?;
            let s = summarise_parts(
                lf.clone(),
                options.period,
                options.as_of,
                &by,
                options.parts,
            )?;
            let activity = match &data.interactions {
                Some(i) if options.activity_from_interactions => {
                    let combined = with_interactions(lf, i.frame.clone().lazy(), &by, options)?;
                    Some(summarise(combined, options.period, Some(s.as_of), &by)?)
                }
                _ => None,
            };
            Some((s, activity))
        }
        _ => None,
    };
    let (purchases, activity) = match summaries {
        Some((s, a)) => (Some(s), a),
        None => (None, None),
    };
    // Without summaries of purchases left in a store, their last day, as the summaries give it.
    let as_of = (purchases.as_ref().map(|s| s.as_of).or(options.as_of)).or(last_day_in_store);
    // The survey scores were cut at this date before stage 1 computed it.
    debug_assert!(
        purchases
            .as_ref()
            .is_none_or(|s| Some(s.as_of) == as_of_hint)
    );
    // The customers table's rows matched to the summarised customers once, for every column
    // aligned with them (signup periods, acquisition costs).
    drop(customers_frame);
    let customer_rows = match (&data.customers, &purchases) {
        (Some(c), Some(s)) => Some(CustomerRows::match_ids(&c.frame, s)?),
        _ => None,
    };
    // Activity from interactions has the purchase summaries' customers (interactions count
    // from a customer's first purchase), whose positions the contracts' revenue churn then
    // reads; were they other customers, the contracts are matched to them.
    let active_rows = match (&data.customers, &activity, &purchases) {
        (Some(c), Some(a), Some(p)) if !same_customers(a, p) => {
            Some(CustomerRows::match_ids(&c.frame, a)?)
        }
        _ => None,
    };
    // The ids were read for the matching only: released before the columns aligned by it
    // are built (0.4 GB at 26M customers), keeping which rows had one.
    let mut has_id = None;
    // (A store read for the survey scores alone has no ids: `StoreRead::customer_rows`.)
    if let Some(t) = data.customers.as_mut()
        && t.frame.get_column_index(col::CUSTOMER_ID).is_some()
    {
        has_id = Some(t.frame.column(col::CUSTOMER_ID)?.is_not_null());
        t.frame = t.frame.drop(col::CUSTOMER_ID)?;
    }
    let signup_periods = match (&data.customers, &customer_rows) {
        (Some(c), Some(rows)) => signup_periods(&c.frame, rows)?,
        _ => Vec::new(),
    };
    // Everything else that reads the tables, before they are released.
    let contracts = match (&data.customers, &has_id) {
        (Some(c), Some(has_id)) => contracts(
            &c.frame,
            has_id,
            customer_rows.as_ref(),
            active_rows.as_ref(),
        )?,
        _ => None,
    };
    drop(active_rows);
    // The dates were read for the cohorts and contracts only: released before the costs are
    // aligned (0.2 GB at 26M customers).
    if let Some(t) = data.customers.as_mut() {
        for dates in [col::SIGNUP_DATE, col::END_DATE] {
            if t.frame.get_column_index(dates).is_some() && !options.by.iter().any(|b| b == dates) {
                t.frame = t.frame.drop(dates)?;
            }
        }
    }
    let acquisition_costs = match (&customer_rows, &data.customers) {
        (Some(rows), Some(t))
            if options.acquisition_costs && customer_has(Some(&t.frame), col::ACQUISITION_COST) =>
        {
            let cost = t.frame.column(col::ACQUISITION_COST)?.f64()?;
            rows.align(cost.iter())
        }
        _ => Vec::new(),
    };
    drop(customer_rows);
    let holdout = match (&purchases, options.holdout_from, &data.transactions) {
        (Some(s), Some(from), Some(t)) => Some(holdout_split(
            t,
            options.period,
            options.from,
            from,
            s.as_of,
        )?),
        _ => None,
    };
    drop(data);
    Ok(Stage1 {
        purchases,
        activity,
        spilled_activity: None,
        as_of,
        interactions_overview,
        survey,
        signup_periods,
        contracts,
        acquisition_costs,
        holdout,
        retention: None,
    })
}

/// The transactions ready for [`summarise`]: the date window, the customer attributes named in
/// `by` joined on, and the `by` dimensions they then have. Written once for whole tables and for
/// customer partitions, so that both summarise the same rows.
pub(super) fn purchases(
    transactions: DataFrame,
    customers: Option<&DataFrame>,
    options: &Stage1Options,
) -> Result<(LazyFrame, Vec<String>)> {
    let by_tx: Vec<String> = options
        .by
        .iter()
        .filter(|b| transactions.get_column_index(b.as_str()).is_some())
        .cloned()
        .collect();
    // Dimensions of the transactions, or customer attributes joined onto them.
    let by: Vec<String> = options
        .by
        .iter()
        .filter(|b| by_tx.contains(b) || customer_has(customers, b))
        .cloned()
        .collect();
    let lf = filter_dates(transactions.lazy(), options.from, None);
    let lf = with_customer_dimensions(lf, customers, &options.by, &by_tx)?;
    Ok((lf, by))
}

fn customer_has(frame: Option<&DataFrame>, column: &str) -> bool {
    frame.is_some_and(|f| f.get_column_names().iter().any(|c| c.as_str() == column))
}

/// Transactions plus interactions as zero-amount events, for activity-based metrics. Interactions
/// before a customer's first purchase, and of customers who never bought, are left out: a
/// customer is acquired by the first purchase whatever the activity definition.
fn with_interactions(
    tx: LazyFrame,
    interactions: LazyFrame,
    by: &[String],
    options: &Stage1Options,
) -> Result<LazyFrame> {
    let mut interactions = filter_dates(interactions, options.from, options.as_of);
    let i_schema = interactions.collect_schema()?;
    let mut tx_cols = vec![col(col::CUSTOMER_ID), col(col::DATE), col(col::AMOUNT)];
    let mut i_cols = vec![
        col(col::CUSTOMER_ID),
        col(col::DATE),
        lit(0.0).cast(DataType::Float64).alias(col::AMOUNT),
    ];
    // Tables read back from a summary store carry weights: a day's purchases, a row's
    // interactions (survey-answer rows have none and are no activity).
    if i_schema.get(col::INTERACTIONS).is_some() {
        interactions = interactions.filter(col(col::INTERACTIONS).gt(lit(0)));
        tx_cols.push(col(col::ORDERS).cast(DataType::UInt32));
        i_cols.push(
            col(col::INTERACTIONS)
                .cast(DataType::UInt32)
                .alias(col::ORDERS),
        );
        if i_schema.get(col::CUSTOMER_CODE).is_some() {
            tx_cols.push(col(col::CUSTOMER_CODE));
            i_cols.push(col(col::CUSTOMER_CODE));
        }
    }
    for b in by {
        tx_cols.push(col(b.as_str()).cast(DataType::String));
        i_cols.push(if i_schema.get(b.as_str()).is_some() {
            col(b.as_str()).cast(DataType::String)
        } else {
            lit(NULL).cast(DataType::String).alias(b.as_str())
        });
    }
    let tx = tx.select(tx_cols);
    let first = tx
        .clone()
        .group_by([col(col::CUSTOMER_ID)])
        .agg([col(col::DATE).min().alias("__first_purchase")]);
    let i = interactions
        .select(i_cols)
        .inner_join(first, col(col::CUSTOMER_ID), col(col::CUSTOMER_ID))
        .filter(col(col::DATE).gt_eq(col("__first_purchase")))
        .drop(by_name(["__first_purchase"], true, false));
    Ok(concat([tx, i], UnionArgs::default())?)
}

/// Brings customer attributes (plan, region, ...) named in `by` onto the transactions, so that
/// every metric can be split by them.
fn with_customer_dimensions(
    tx: LazyFrame,
    customers: Option<&DataFrame>,
    by: &[String],
    by_tx: &[String],
) -> Result<LazyFrame> {
    let Some(c) = customers else { return Ok(tx) };
    let wanted: Vec<Expr> = by
        .iter()
        .filter(|b| !by_tx.contains(b) && customer_has(Some(c), b))
        .map(|b| col(b.as_str()))
        .collect();
    if wanted.is_empty() {
        return Ok(tx);
    }
    let mut select = vec![col(col::CUSTOMER_ID)];
    select.extend(wanted);
    Ok(tx.left_join(
        c.clone().lazy().select(select),
        col(col::CUSTOMER_ID),
        col(col::CUSTOMER_ID),
    ))
}

/// The last transaction date on or after `from`: the summaries' default as-of date, known
/// before stage 1 runs.
fn last_transaction_date(
    transactions: Option<&Table>,
    from: Option<NaiveDate>,
) -> Result<Option<NaiveDate>> {
    let Some(t) = transactions else {
        return Ok(None);
    };
    let days = t.frame.column(col::DATE)?.cast(&DataType::Int32)?;
    let days = days.i32()?;
    let last = match from {
        // Polars' kernel, where the generic iterator over 10M days was ~0.1 s of every run
        // from a store.
        None => days.max(),
        Some(from) => {
            let from = days_since_epoch(from);
            days.iter().flatten().filter(|&d| d >= from).max()
        }
    };
    Ok(last.map(date_from_days))
}

/// The interactions' part of the overview: how many, and per channel how many and from how many
/// customers.
fn interactions_overview(t: &Table) -> Result<(u64, Vec<ChannelCount>)> {
    // A table read back from a summary store counts its rows' weights, and its customers by
    // code.
    let has = |c: &str| t.frame.get_column_index(c).is_some();
    if has(col::INTERACTIONS) && has(col::CUSTOMER_CODE) && has(col::CHANNEL) {
        return coded_channel_counts(&t.frame);
    }
    if t.frame.get_column_index(col::INTERACTIONS).is_some() {
        let weighted = t
            .frame
            .clone()
            .lazy()
            .filter(col(col::INTERACTIONS).gt(lit(0)))
            .collect()?;
        let total = weighted
            .column(col::INTERACTIONS)?
            .cast(&DataType::UInt64)?
            .u64()?
            .sum()
            .unwrap_or(0);
        let by_channel = channel_counts(&weighted, col(col::INTERACTIONS).sum())?;
        return Ok((total, by_channel));
    }
    let by_channel = channel_counts(&t.frame, len())?;
    Ok((t.frame.height() as u64, by_channel))
}

/// [`channel_counts`] of a store's interaction rows, which carry weights and customer codes:
/// one pass, the distinct customers of each channel as a bitset of codes. Polars' group-by
/// with a distinct count over the 45M rows of a 100M-row store took 3 GB beyond the rows, the
/// peak of a report read in partitions; this takes a bit per customer and channel. Rows of
/// weight 0 (survey answers only) are not interactions. Counts, channels (a null one as
/// `(none)`) and their order are the group-by's.
fn coded_channel_counts(frame: &DataFrame) -> Result<(u64, Vec<ChannelCount>)> {
    let channels = frame.column(col::CHANNEL)?.str()?;
    let weights = frame.column(col::INTERACTIONS)?.cast(&DataType::UInt64)?;
    let weights = weights.u64()?;
    let codes = frame.column(col::CUSTOMER_CODE)?.cast(&DataType::UInt32)?;
    let codes = codes.u32()?;
    let words = codes.max().map_or(0, |m| m as usize / 64 + 1);
    // Per channel: interactions, the customers' bits, and whether a row had no customer (a
    // distinct value of its own, as polars counts a null).
    struct Channel {
        name: String,
        interactions: u64,
        customers: Vec<u64>,
        null_customer: bool,
    }
    let mut seen: Vec<Channel> = Vec::new();
    let mut total = 0u64;
    for ((channel, weight), code) in channels.iter().zip(weights.iter()).zip(codes.iter()) {
        let weight = weight.unwrap_or(0);
        if weight == 0 {
            continue;
        }
        total += weight;
        let name = channel.unwrap_or("(none)");
        let k = match seen.iter().position(|c| c.name == name) {
            Some(k) => k,
            None => {
                seen.push(Channel {
                    name: name.to_string(),
                    interactions: 0,
                    customers: vec![0; words],
                    null_customer: false,
                });
                seen.len() - 1
            }
        };
        let Some(c) = seen.get_mut(k) else { continue };
        c.interactions += weight;
        match code {
            Some(code) => {
                if let Some(w) = c.customers.get_mut(code as usize / 64) {
                    *w |= 1 << (code % 64);
                }
            }
            None => c.null_customer = true,
        }
    }
    seen.sort_by(|a, b| a.name.cmp(&b.name));
    let by_channel = seen
        .into_iter()
        .map(|c| ChannelCount {
            customers: c
                .customers
                .iter()
                .map(|w| u64::from(w.count_ones()))
                .sum::<u64>()
                + u64::from(c.null_customer),
            channel: c.name,
            interactions: c.interactions,
        })
        .collect();
    Ok((total, by_channel))
}

/// Interactions (`count`: `len()`, or the sum of a store's weights) and distinct customers per
/// channel.
fn channel_counts(frame: &DataFrame, count: Expr) -> Result<Vec<ChannelCount>> {
    let mut by_channel = Vec::new();
    if frame
        .get_column_names()
        .iter()
        .any(|c| c.as_str() == col::CHANNEL)
    {
        // A store's rows carry each customer's code (one per id): counting distinct codes
        // needs no string ids, which a store read in partitions does not decode here.
        let customer = match frame.get_column_index(col::CUSTOMER_CODE) {
            Some(_) => col::CUSTOMER_CODE,
            None => col::CUSTOMER_ID,
        };
        let df = frame
            .clone()
            .lazy()
            .group_by([col(col::CHANNEL).fill_null(lit("(none)"))])
            .agg([
                count.cast(DataType::UInt64).alias("n"),
                col(customer)
                    .n_unique()
                    .cast(DataType::UInt64)
                    .alias("customers"),
            ])
            .sort([col::CHANNEL], SortMultipleOptions::default())
            .collect()?;
        let ch = df.column(col::CHANNEL)?.str()?;
        let n = df.column("n")?.u64()?;
        let cu = df.column("customers")?.u64()?;
        for i in 0..df.height() {
            by_channel.push(ChannelCount {
                channel: ch.get(i).unwrap_or("(none)").to_string(),
                interactions: n.get(i).unwrap_or(0),
                customers: cu.get(i).unwrap_or(0),
            });
        }
    }
    Ok(by_channel)
}

/// Each summarised customer's signup period from the customers table's signup dates (aligned
/// with the summaries' customers; empty without signup dates).
fn signup_periods(customers: &DataFrame, rows: &CustomerRows) -> Result<Vec<Option<i32>>> {
    if !customer_has(Some(customers), col::SIGNUP_DATE) {
        return Ok(Vec::new());
    }
    let days = customers.column(col::SIGNUP_DATE)?.cast(&DataType::Int32)?;
    let days = days.i32()?;
    // Only the rows of summarised customers are dated, by a day → period table over their
    // signup days (no calendar arithmetic per row).
    let matched = || {
        days.iter()
            .zip(&rows.positions)
            .map(|(day, position)| position.and(day))
    };
    let lookup = PeriodLookup::new(rows.period, matched().flatten());
    Ok(rows.align(matched().map(|day| day.map(|d| lookup.get(d)))))
}

/// The customers table's rows matched to the summarised customers: for each row, the index of
/// its customer in the summaries (`None`: a null id, or a customer with no summary). Ids are
/// matched once by sorting ([`super::customer_positions_in_column`]), not hashed, and every column
/// aligned with the customers reads the same match.
struct CustomerRows {
    positions: Vec<Option<u32>>,
    customers: usize,
    period: Period,
}

impl CustomerRows {
    fn match_ids(customers: &DataFrame, s: &Summaries) -> Result<CustomerRows> {
        let ids = customers.column(col::CUSTOMER_ID)?.str()?;
        Ok(CustomerRows {
            positions: super::customer_positions_in_column(s, ids),
            customers: s.customers.len(),
            period: s.period,
        })
    }

    /// A column of the table (its values in row order) as one value per summarised customer
    /// (`None` where the customer is not in the table or the value is null; a repeated id keeps
    /// its last non-null value).
    fn align<T: Copy>(&self, values: impl Iterator<Item = Option<T>>) -> Vec<Option<T>> {
        let mut out = vec![None; self.customers];
        // Rows in table order, so that a later row of a repeated id wins.
        for (position, v) in self.positions.iter().zip(values) {
            if let (Some(i), Some(v)) = (position, v)
                && let Some(slot) = out.get_mut(*i as usize)
            {
                *slot = Some(v);
            }
        }
        out
    }
}

/// A customer with a contract, from the customers table: start and optional end (days since
/// 1970-01-01). Stage 1's reduction of the customers rows; contractual churn and survival
/// read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Contract {
    /// Customer id.
    pub customer_id: CustomerId,
    /// Signup day.
    pub start_day: i32,
    /// Cancellation day, if cancelled.
    pub end_day: Option<i32>,
}

/// Whether two summaries list the same customers in the same order.
fn same_customers(a: &Summaries, b: &Summaries) -> bool {
    a.customers.len() == b.customers.len()
        && (a.customers.iter())
            .zip(&b.customers)
            .all(|(a, b)| a.customer_id == b.customer_id)
}

/// A contract as stage 1 keeps it: its days, and its customer's position in the purchase
/// summaries instead of the id (matched with the table's other columns). A [`Contract`] with its
/// id took 40 bytes, 1 GB of a report on 26M customers, and each reader matched the ids again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ContractSpan {
    /// Signup day.
    pub start_day: i32,
    /// Cancellation day, if cancelled.
    pub end_day: Option<i32>,
    /// Index of the customer in the summaries (`None`: never bought, or no summaries).
    pub customer: Option<u32>,
}

/// Stage 1's contracts: one per customers-table row with an id and a signup date, in table order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Contracts {
    /// Positions in the purchase summaries.
    pub spans: Vec<ContractSpan>,
    /// The same contracts with positions in the activity summaries, when these list other
    /// customers than the purchase summaries.
    pub active: Option<Vec<ContractSpan>>,
}

impl Contracts {
    /// The contracts matched to the customers of the summaries activity is read from.
    pub(crate) fn matched_to_activity(&self) -> &[ContractSpan] {
        self.active.as_deref().unwrap_or(&self.spans)
    }
}

/// Contracts from the customers table (`has_id`: which of its rows have an id), when it has
/// signup and end dates: positions from `rows`
/// (the table matched to the purchase summaries) and `active` (to the activity summaries).
fn contracts(
    customers: &DataFrame,
    has_id: &BooleanChunked,
    rows: Option<&CustomerRows>,
    active: Option<&CustomerRows>,
) -> Result<Option<Contracts>> {
    if !customer_has(Some(customers), col::SIGNUP_DATE)
        || !customer_has(Some(customers), col::END_DATE)
    {
        return Ok(None);
    }
    let start = customers.column(col::SIGNUP_DATE)?.cast(&DataType::Int32)?;
    let end = customers.column(col::END_DATE)?.cast(&DataType::Int32)?;
    let (start, end) = (start.i32()?, end.i32()?);
    let spans_in = |rows: Option<&CustomerRows>| {
        let position = |i: usize| rows.and_then(|r| r.positions.get(i).copied().flatten());
        let mut out = Vec::with_capacity(customers.height());
        let days = has_id.iter().zip(start.iter()).zip(end.iter()).enumerate();
        for (i, ((id, s), e)) in days {
            if let (Some(true), Some(s)) = (id, s) {
                out.push(ContractSpan {
                    start_day: s,
                    end_day: e,
                    customer: position(i),
                });
            }
        }
        out
    };
    Ok(Some(Contracts {
        spans: spans_in(rows),
        active: active.map(|a| spans_in(Some(a))),
    }))
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    #[test]
    fn customer_table_values_align_with_the_summaries() {
        // Summaries list a, b, c, d; the customers table has b (twice: a later null does not
        // replace its value), a (twice: the last value counts), an unknown x, and a null for
        // d; c is missing.
        let s = crate::metrics::retention::tests::fixture();
        let ids = StringChunked::new(
            "customer_id".into(),
            [
                Some("b"),
                Some("a"),
                Some("x"),
                Some("a"),
                Some("d"),
                Some("b"),
            ],
        );
        let values = [Some(2), Some(1), Some(9), Some(11), None, None];
        let customers = DataFrame::new_infer_height(vec![ids.into_series().into_column()]).unwrap();
        let rows = CustomerRows::match_ids(&customers, &s).unwrap();
        let aligned = rows.align(values.into_iter());
        assert_eq!(aligned, vec![Some(11), Some(2), None, None]);
    }

    #[test]
    fn signup_period_sets_the_cohort() {
        // Customer a signed up in December 2023 and first bought in January 2024: the
        // triangle counts a in the December cohort, the others by first purchase.
        let s = crate::metrics::retention::tests::fixture();
        let customers = df!(
            col::CUSTOMER_ID => ["a"],
            col::SIGNUP_DATE => [NaiveDate::from_ymd_opt(2023, 12, 15).unwrap()],
        )
        .unwrap();
        let rows = CustomerRows::match_ids(&customers, &s).unwrap();
        let cohorts = signup_periods(&customers, &rows).unwrap();
        assert_eq!(cohorts, vec![Some(2023 * 12 + 11), None, None, None]);
        let r = crate::metrics::retention::retention(&s, &cohorts);
        let dec: Vec<_> = r.cohorts.iter().filter(|c| c.cohort == "2023-12").collect();
        assert_eq!(dec.first().map(|c| c.customers), Some(1));
    }

    /// A store's interaction rows: weights (0: survey answers only), customer codes (a null
    /// among them) and channels (nulls, and one named like the null group).
    fn store_interactions(rows: &[(Option<&str>, u32, Option<u32>)]) -> DataFrame {
        df!(
            col::CHANNEL => rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            col::INTERACTIONS => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            col::CUSTOMER_CODE => rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn coded_channel_counts_equal_the_group_by() {
        let rows = [
            (Some("web"), 2, Some(0)),
            (Some("web"), 1, Some(0)),
            (Some("web"), 1, Some(130)),
            (Some("phone"), 0, Some(5)),
            (Some("phone"), 3, Some(64)),
            (None, 1, Some(7)),
            (Some("(none)"), 1, Some(7)),
            (Some("(none)"), 1, Some(8)),
            (Some("email"), 1, None),
            (Some("email"), 1, Some(63)),
            (Some("chat"), 0, Some(1)),
        ];
        let frame = store_interactions(&rows);
        let coded = coded_channel_counts(&frame).unwrap();
        let weighted = frame
            .clone()
            .lazy()
            .filter(col(col::INTERACTIONS).gt(lit(0)))
            .collect()
            .unwrap();
        let by_group = channel_counts(&weighted, col(col::INTERACTIONS).sum()).unwrap();
        assert_eq!(coded.1, by_group);
        // By hand: 12 interactions; `(none)` has customers 7 and 8; email a null and 63;
        // chat only answers.
        assert_eq!(coded.0, 12);
        let got: Vec<(&str, u64, u64)> = coded
            .1
            .iter()
            .map(|c| (c.channel.as_str(), c.interactions, c.customers))
            .collect();
        assert_eq!(
            got,
            [
                ("(none)", 3, 2),
                ("email", 2, 2),
                ("phone", 3, 1),
                ("web", 4, 2)
            ]
        );
    }
}
