//! The calibration/holdout split that checks CLV predictions: models are fitted on the
//! transactions before a date and compared with each customer's purchases after it.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use polars::prelude::*;

use super::{Summaries, filter_dates, summarise};
use crate::io::{Table, col};
use crate::period::{Period, days_since_epoch};
use crate::{Error, Result};

/// Transactions split at `from`: stage-1 summaries of the calibration period and each
/// calibration customer's purchase days in the holdout period.
#[derive(Debug, Clone)]
pub(crate) struct HoldoutSplit {
    /// First day of the holdout period.
    pub from: NaiveDate,
    /// Summaries of the transactions before `from`.
    pub calibration: Summaries,
    /// Purchase days in the holdout period, per customer id.
    pub actual: HashMap<String, u32>,
    /// Repeat purchase days of the calibration customers (each purchase day after a customer's
    /// first), per day, over the calibration and holdout periods: the actual side of the
    /// tracking plot. Sorted by day (days since 1970-01-01).
    pub repeat_days: Vec<(i32, u64)>,
}

/// Splits the transactions (after `window_from`) at `from`; the holdout ends at `end`.
pub(super) fn holdout_split(
    t: &Table,
    period: Period,
    window_from: Option<NaiveDate>,
    from: NaiveDate,
    end: NaiveDate,
) -> Result<HoldoutSplit> {
    let cal_end = from.pred_opt().ok_or_else(|| Error::InvalidSetting {
        setting: "holdout_from".into(),
        message: format!("{from} has no day before it"),
    })?;
    if from > end {
        return Err(Error::InvalidSetting {
            setting: "holdout_from".into(),
            message: format!("{from} is after the last transaction date {end}"),
        });
    }
    let lf = filter_dates(t.frame.clone().lazy(), window_from, None);
    let calibration = summarise(lf.clone(), period, Some(cal_end), &[])?;
    // Holdout purchases: refunds (negative amounts) are not purchases; a store's days of
    // refunds only have no purchases.
    let purchase = match t.frame.get_column_index(col::ORDERS) {
        Some(_) => col(col::ORDERS).gt(lit(0)),
        None => col(col::AMOUNT).gt_eq(lit(0.0)),
    };
    // Every customer's purchase days in order, in one pass: the days from `from` on are the
    // holdout's purchase days; the first day is the acquisition and the later ones are repeat
    // purchases, counted (for the tracking plot) for the customers acquired before the holdout.
    let pairs = filter_dates(lf, None, Some(end))
        .filter(purchase)
        .select([
            col(col::CUSTOMER_ID),
            col(col::DATE).cast(DataType::Int32).alias("day"),
        ])
        .group_by([col(col::CUSTOMER_ID), col("day")])
        .agg([len().alias("n")])
        .sort([col::CUSTOMER_ID, "day"], SortMultipleOptions::default())
        .collect()?;
    let from_day = days_since_epoch(from);
    let mut by_day: BTreeMap<i32, u64> = BTreeMap::new();
    let mut actual: HashMap<String, u32> = HashMap::new();
    let mut current: Option<&str> = None;
    let mut first = 0;
    let ids = pairs.column(col::CUSTOMER_ID)?.str()?;
    let days = pairs.column("day")?.i32()?;
    for (id, day) in ids.iter().zip(days.iter()) {
        let (Some(id), Some(day)) = (id, day) else {
            continue;
        };
        if day >= from_day {
            *actual.entry(id.to_string()).or_default() += 1;
        }
        if current != Some(id) {
            current = Some(id);
            first = day;
        } else if first < from_day {
            *by_day.entry(day).or_default() += 1;
        }
    }
    Ok(HoldoutSplit {
        from,
        calibration,
        actual,
        repeat_days: by_day.into_iter().collect(),
    })
}
