//! The calibration/holdout split that checks CLV predictions: models are fitted on the
//! transactions before a date and compared with each customer's purchases after it.

use std::collections::HashMap;

use chrono::NaiveDate;
use polars::prelude::*;

use super::{Summaries, filter_dates, summarise};
use crate::io::{Table, col};
use crate::period::Period;
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
    let df = filter_dates(lf, Some(from), Some(end))
        .filter(purchase)
        .group_by([col(col::CUSTOMER_ID)])
        .agg([col(col::DATE)
            .n_unique()
            .cast(DataType::UInt32)
            .alias("days")])
        .collect()?;
    let ids = df.column(col::CUSTOMER_ID)?.str()?;
    let days = df.column("days")?.u32()?;
    let actual = ids
        .iter()
        .zip(days.iter())
        .filter_map(|(i, d)| Some((i?.to_string(), d?)))
        .collect();
    Ok(HoldoutSplit {
        from,
        calibration,
        actual,
    })
}
