//! Calendar periods: the sole owner of day/ISO-week/month/quarter/year arithmetic, and of the
//! conversions between dates and polars' physical Date (days since 1970-01-01).
//!
//! A period is identified by an integer *index* that increases by one from one period to the next,
//! so that "cohort + k" and "previous period" are plain integer arithmetic:
//! day = days since 1970-01-01; week = ISO weeks (Monday start) since the week of 1970-01-01;
//! month = year·12 + month − 1; quarter = year·4 + (month − 1)/3; year = year.

use chrono::{Datelike, NaiveDate};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The length of a reporting period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Calendar day.
    Day,
    /// ISO week, Monday to Sunday.
    Week,
    /// Calendar month.
    #[default]
    Month,
    /// Calendar quarter.
    Quarter,
    /// Calendar year.
    Year,
}

/// Days since 1970-01-01, polars' physical Date.
pub(crate) fn days_since_epoch(d: NaiveDate) -> i32 {
    (d - NaiveDate::default()).num_days() as i32
}

/// The date of a polars physical Date value.
pub(crate) fn date_from_days(days: i32) -> NaiveDate {
    NaiveDate::default() + chrono::Duration::days(i64::from(days))
}

/// The period index of each day in a range of days, computed once (chrono's calendar arithmetic
/// per row, or per contract, was a visible part of stage 1 and of contractual churn). Days
/// outside the range are computed as they come.
pub(crate) struct PeriodLookup {
    first_day: i32,
    index: Vec<i32>,
    period: Period,
}

impl PeriodLookup {
    /// A table spanning the days given (any order; none gives an empty table).
    pub(crate) fn new(period: Period, days: impl Iterator<Item = i32>) -> PeriodLookup {
        let (first_day, last_day) =
            days.fold((i32::MAX, i32::MIN), |(lo, hi), d| (lo.min(d), hi.max(d)));
        // A span beyond ~270 years is not worth a table: computed per day instead.
        let span = i64::from(last_day) - i64::from(first_day);
        let index = if (0..100_000).contains(&span) {
            (first_day..=last_day)
                .map(|d| period.index(date_from_days(d)))
                .collect()
        } else {
            Vec::new()
        };
        PeriodLookup {
            first_day,
            index,
            period,
        }
    }

    /// The index of the period containing `day` (days since 1970-01-01).
    pub(crate) fn get(&self, day: i32) -> i32 {
        usize::try_from(i64::from(day) - i64::from(self.first_day))
            .ok()
            .and_then(|i| self.index.get(i).copied())
            .unwrap_or_else(|| self.period.index(date_from_days(day)))
    }
}

/// 1970-01-01 was a Thursday: shifting by 3 days puts Mondays on multiples of 7.
const MONDAY_SHIFT: i32 = 3;

impl Period {
    /// Parses `day`, `week`, `month`, `quarter` or `year`.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for anything else.
    pub fn from_setting(s: &str) -> Result<Period> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "day" | "daily" | "d" => Period::Day,
            "week" | "weekly" | "w" => Period::Week,
            "month" | "monthly" | "m" => Period::Month,
            "quarter" | "quarterly" | "q" => Period::Quarter,
            "year" | "yearly" | "annual" | "y" => Period::Year,
            other => {
                return Err(Error::InvalidSetting {
                    setting: "period".into(),
                    message: format!("{other:?}; use day, week, month, quarter or year"),
                });
            }
        })
    }

    /// The name used in JSON and messages.
    pub fn name(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Quarter => "quarter",
            Period::Year => "year",
        }
    }

    /// The index of the period containing `date`.
    pub fn index(self, date: NaiveDate) -> i32 {
        match self {
            Period::Day => days_since_epoch(date),
            Period::Week => (days_since_epoch(date) + MONDAY_SHIFT).div_euclid(7),
            Period::Month => date.year() * 12 + date.month0() as i32,
            Period::Quarter => date.year() * 4 + date.month0() as i32 / 3,
            Period::Year => date.year(),
        }
    }

    /// The first day of the period with this index.
    pub fn start(self, index: i32) -> NaiveDate {
        let ym =
            |y: i32, m0: i32| NaiveDate::from_ymd_opt(y, (m0 + 1) as u32, 1).unwrap_or_default();
        match self {
            Period::Day => date_from_days(index),
            Period::Week => date_from_days(index * 7 - MONDAY_SHIFT),
            Period::Month => ym(index.div_euclid(12), index.rem_euclid(12)),
            Period::Quarter => ym(index.div_euclid(4), index.rem_euclid(4) * 3),
            Period::Year => ym(index, 0),
        }
    }

    /// The last day of the period with this index.
    pub fn end(self, index: i32) -> NaiveDate {
        self.start(index + 1).pred_opt().unwrap_or_default()
    }

    /// A label: `2024-03-05`, `2024-W10`, `2024-03`, `2024-Q1`, `2024`.
    pub fn label(self, index: i32) -> String {
        let start = self.start(index);
        match self {
            Period::Day => start.format("%Y-%m-%d").to_string(),
            Period::Week => {
                let w = start.iso_week();
                format!("{}-W{:02}", w.year(), w.week())
            }
            Period::Month => start.format("%Y-%m").to_string(),
            Period::Quarter => format!("{}-Q{}", start.year(), start.month0() / 3 + 1),
            Period::Year => start.year().to_string(),
        }
    }

    /// A polars expression computing the period index (Int32) of a Date expression.
    pub fn index_expr(self, date: Expr) -> Expr {
        let days = || date.clone().cast(DataType::Int32);
        match self {
            Period::Day => days(),
            Period::Week => (days() + lit(MONDAY_SHIFT)).floor_div(lit(7)),
            Period::Month => {
                date.clone().dt().year().cast(DataType::Int32) * lit(12)
                    + date.dt().month().cast(DataType::Int32)
                    - lit(1)
            }
            Period::Quarter => {
                date.clone().dt().year().cast(DataType::Int32) * lit(4)
                    + (date.dt().month().cast(DataType::Int32) - lit(1)).floor_div(lit(3))
            }
            Period::Year => date.dt().year().cast(DataType::Int32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn iso_weeks_start_on_monday() {
        // 2024-01-01 is a Monday; 2023-12-31 a Sunday (ISO week 2023-W52).
        let w = Period::Week;
        assert_eq!(w.start(w.index(d(2024, 1, 3))), d(2024, 1, 1));
        assert_eq!(w.label(w.index(d(2023, 12, 31))), "2023-W52");
        assert_eq!(w.index(d(2024, 1, 1)) - w.index(d(2023, 12, 31)), 1);
        // 2021-01-03 belongs to ISO week 2020-W53.
        assert_eq!(w.label(w.index(d(2021, 1, 3))), "2020-W53");
    }

    #[test]
    fn labels_and_bounds() {
        assert_eq!(
            Period::Month.label(Period::Month.index(d(2024, 3, 15))),
            "2024-03"
        );
        assert_eq!(
            Period::Quarter.label(Period::Quarter.index(d(2024, 11, 15))),
            "2024-Q4"
        );
        assert_eq!(
            Period::Month.end(Period::Month.index(d(2024, 2, 10))),
            d(2024, 2, 29)
        );
        assert_eq!(Period::Year.start(2024), d(2024, 1, 1));
        assert_eq!(
            Period::Month.index(d(2024, 1, 1)) - Period::Month.index(d(2023, 12, 31)),
            1
        );
    }

    #[test]
    fn expression_agrees_with_rust() {
        let dates = [
            d(1969, 12, 29),
            d(2020, 2, 29),
            d(2021, 1, 3),
            d(2024, 12, 31),
            d(1999, 7, 4),
        ];
        let days: Vec<i32> = dates.iter().map(|&x| days_since_epoch(x)).collect();
        let s = Series::new("d".into(), days).cast(&DataType::Date).unwrap();
        for p in [
            Period::Day,
            Period::Week,
            Period::Month,
            Period::Quarter,
            Period::Year,
        ] {
            let df = DataFrame::new_infer_height(vec![s.clone().into()])
                .unwrap()
                .lazy()
                .select([p.index_expr(col("d")).alias("i")])
                .collect()
                .unwrap();
            let got: Vec<i32> = df
                .column("i")
                .unwrap()
                .i32()
                .unwrap()
                .iter()
                .map(|v| v.unwrap())
                .collect();
            let want: Vec<i32> = dates.iter().map(|&x| p.index(x)).collect();
            assert_eq!(got, want, "{p:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// The table gives the calendar's period for every day, inside its range or not (a
        /// far-off day, or a range too wide for a table, is computed), without overflow at the
        /// ends of i32.
        #[test]
        fn the_period_table_agrees_with_the_calendar(
            days in proptest::collection::vec(-200_000i32..200_000, 0..6),
            wide in proptest::bool::ANY,
            probes in proptest::collection::vec(-300_000i32..300_000, 1..20),
        ) {
            let mut range = days.clone();
            if wide {
                range.extend([-1_000_000, 1_000_000]);
            }
            for p in [Period::Day, Period::Week, Period::Month, Period::Quarter, Period::Year] {
                let lookup = PeriodLookup::new(p, range.iter().copied());
                for &d in probes.iter().chain(&days) {
                    proptest::prop_assert_eq!(lookup.get(d), p.index(date_from_days(d)));
                }
            }
            let extreme = PeriodLookup::new(Period::Month, [i32::MIN, i32::MAX].into_iter());
            proptest::prop_assert_eq!(extreme.get(0), 1970 * 12);
        }
    }
}
