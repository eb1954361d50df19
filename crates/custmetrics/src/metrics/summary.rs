//! Stage 1: the only code that touches transaction rows. It reduces them, with polars group-bys,
//! to small mergeable summaries: one row per customer and one row per customer × active period.
//! Everything in stage 2 (rates, triangles, models, reports) reads these summaries only.

use chrono::NaiveDate;
use polars::prelude::*;

use crate::io::col;
use crate::io::load::{date_from_days, days_since_epoch};
use crate::period::Period;
use crate::{Error, Result};

/// One customer's purchase history, reduced.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerRow {
    /// Customer id.
    pub customer_id: String,
    /// First purchase (days since 1970-01-01).
    pub first_day: i32,
    /// Last purchase (days since 1970-01-01).
    pub last_day: i32,
    /// Number of orders (refund rows included).
    pub orders: u32,
    /// Number of distinct days with a purchase.
    pub purchase_days: u32,
    /// Revenue to date (refunds subtracted).
    pub revenue: f64,
    /// Revenue on the first purchase day, so that repeat spend = revenue − this.
    pub first_day_revenue: f64,
    /// Segment value per `by` dimension: the value on the customer's first purchase.
    pub segments: Vec<Option<String>>,
}

/// One customer active in one period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivityRow {
    /// Index into [`Summaries::customers`].
    pub customer: u32,
    /// Period index (see [`Period`]).
    pub period: i32,
    /// Revenue in the period.
    pub revenue: f64,
    /// Orders in the period.
    pub orders: u32,
}

/// The stage-1 summaries of a transactions table.
#[derive(Debug, Clone)]
pub struct Summaries {
    /// One row per customer, sorted by customer id.
    pub customers: Vec<CustomerRow>,
    /// Customer × period activity, sorted by customer then period.
    pub activity: Vec<ActivityRow>,
    /// Gaps in days between consecutive purchase days, all customers (sorted); empty unless
    /// filled with [`inter_purchase_gaps`].
    pub gaps: Vec<u32>,
    /// The period the activity is indexed by.
    pub period: Period,
    /// The observation end.
    pub as_of: NaiveDate,
    /// The `by` dimensions, in order.
    pub by: Vec<String>,
}

impl Summaries {
    /// Observation end as days since 1970-01-01.
    pub fn as_of_day(&self) -> i32 {
        days_since_epoch(self.as_of)
    }

    /// Index of the period containing the observation end.
    pub fn as_of_period(&self) -> i32 {
        self.period.index(self.as_of)
    }
}

/// Sums money exactly, in millionths of the currency unit, so that totals do not depend on row
/// order or on how the input is split into files (floating-point addition is not associative).
pub fn exact_sum(e: Expr) -> Expr {
    (e * lit(1e6))
        .round(0, RoundMode::HalfToEven)
        .cast(DataType::Int64)
        .sum()
        .cast(DataType::Float64)
        / lit(1e6)
}

/// Restricts a transactions frame to `[from, to]` (either bound optional).
pub fn filter_dates(frame: LazyFrame, from: Option<NaiveDate>, to: Option<NaiveDate>) -> LazyFrame {
    let mut lf = frame;
    if let Some(from) = from {
        lf = lf.filter(
            col(col::DATE)
                .cast(DataType::Int32)
                .gt_eq(lit(days_since_epoch(from))),
        );
    }
    if let Some(to) = to {
        lf = lf.filter(
            col(col::DATE)
                .cast(DataType::Int32)
                .lt_eq(lit(days_since_epoch(to))),
        );
    }
    lf
}

/// Builds the summaries of a canonical transactions frame.
///
/// `as_of` defaults to the last transaction date; transactions after it are ignored.
///
/// # Errors
/// [`Error::InsufficientData`] when there are no transactions; [`Error::UnknownColumn`] for a
/// `by` dimension the table lacks.
pub fn summarise(
    transactions: LazyFrame,
    period: Period,
    as_of: Option<NaiveDate>,
    by: &[String],
) -> Result<Summaries> {
    let mut tx = transactions;
    let schema = tx.collect_schema()?;
    for b in by {
        if schema.get(b.as_str()).is_none() {
            return Err(Error::UnknownColumn {
                table: "transactions".into(),
                role: "segment (--by)".into(),
                column: b.clone(),
                columns: schema
                    .iter_names()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    if let Some(as_of) = as_of {
        tx = filter_dates(tx, None, Some(as_of));
    }
    let day = || col(col::DATE).cast(DataType::Int32);
    // Customer × day: same-day purchases are one purchase occasion (the BTYD convention).
    let daily = tx
        .clone()
        .group_by([col(col::CUSTOMER_ID), day().alias("day")])
        .agg([
            exact_sum(col(col::AMOUNT)).alias("revenue"),
            len().alias("orders"),
        ]);
    let mut seg_aggs = Vec::new();
    for b in by {
        seg_aggs.push(
            col(b.as_str())
                .cast(DataType::String)
                .filter(day().eq(day().min()))
                .drop_nulls()
                .first()
                .alias(b.as_str()),
        );
    }
    let per_customer = daily.clone().group_by([col(col::CUSTOMER_ID)]).agg([
        col("day").min().alias("first_day"),
        col("day").max().alias("last_day"),
        col("orders").sum().cast(DataType::UInt32).alias("orders"),
        len().cast(DataType::UInt32).alias("purchase_days"),
        exact_sum(col("revenue")).alias("revenue"),
        exact_sum(col("revenue").filter(col("day").eq(col("day").min())))
            .alias("first_day_revenue"),
    ]);
    let per_customer = if seg_aggs.is_empty() {
        per_customer
    } else {
        let segs = tx.clone().group_by([col(col::CUSTOMER_ID)]).agg(seg_aggs);
        per_customer.left_join(segs, col(col::CUSTOMER_ID), col(col::CUSTOMER_ID))
    };
    let per_customer = per_customer.sort([col::CUSTOMER_ID], SortMultipleOptions::default());
    let activity = tx
        .clone()
        .group_by([
            col(col::CUSTOMER_ID),
            period.index_expr(col(col::DATE)).alias("period"),
        ])
        .agg([
            exact_sum(col(col::AMOUNT)).alias("revenue"),
            len().cast(DataType::UInt32).alias("orders"),
        ])
        .sort([col::CUSTOMER_ID, "period"], SortMultipleOptions::default());
    let frames = LazyFrame::collect_all_with_engine(
        vec![per_customer.logical_plan, activity.logical_plan],
        Engine::Auto,
        OptFlags::default(),
    )?;
    let [customers_df, activity_df]: [DataFrame; 2] =
        frames.try_into().map_err(|_| Error::InsufficientData {
            what: "summaries".into(),
            message: "query returned no frames".into(),
        })?;

    if customers_df.height() == 0 {
        return Err(Error::InsufficientData {
            what: "customer metrics".into(),
            message: "no transactions (after the date filter)".into(),
        });
    }
    let column = |df: &DataFrame, name: &str| -> Result<Series> {
        Ok(df.column(name)?.as_materialized_series().rechunk())
    };
    let ids = column(&customers_df, col::CUSTOMER_ID)?;
    let first = column(&customers_df, "first_day")?;
    let last = column(&customers_df, "last_day")?;
    let orders = column(&customers_df, "orders")?;
    let pdays = column(&customers_df, "purchase_days")?;
    let revenue = column(&customers_df, "revenue")?;
    let first_rev = column(&customers_df, "first_day_revenue")?;
    let seg_cols: Vec<Series> = by
        .iter()
        .map(|b| column(&customers_df, b))
        .collect::<Result<_>>()?;
    let mut seg_iters: Vec<_> = seg_cols
        .iter()
        .map(|c| c.str().map(|ca| ca.iter()))
        .collect::<std::result::Result<_, _>>()?;
    let mut customers = Vec::with_capacity(customers_df.height());
    // Iterators, not `get(i)`: a chunked array lookup per row is much slower on millions of rows.
    let rows = ids
        .str()?
        .iter()
        .zip(first.i32()?.iter())
        .zip(last.i32()?.iter())
        .zip(orders.u32()?.iter())
        .zip(pdays.u32()?.iter())
        .zip(revenue.f64()?.iter())
        .zip(first_rev.f64()?.iter());
    for ((((((id, f), l), o), p), r), fr) in rows {
        customers.push(CustomerRow {
            customer_id: id.unwrap_or_default().to_string(),
            first_day: f.unwrap_or_default(),
            last_day: l.unwrap_or_default(),
            orders: o.unwrap_or_default(),
            purchase_days: p.unwrap_or_default(),
            revenue: r.unwrap_or_default(),
            first_day_revenue: fr.unwrap_or_default(),
            segments: seg_iters
                .iter_mut()
                .map(|it| it.next().flatten().map(str::to_string))
                .collect(),
        });
    }
    let max_day = customers
        .iter()
        .map(|c| c.last_day)
        .max()
        .unwrap_or_default();
    // Both frames are sorted by customer id, so activity rows are matched to customers by walking
    // the two in step (a merge join) instead of hashing millions of ids.
    let a_ids = column(&activity_df, col::CUSTOMER_ID)?;
    let a_period = column(&activity_df, "period")?;
    let a_rev = column(&activity_df, "revenue")?;
    let a_orders = column(&activity_df, "orders")?;
    let mut activity = Vec::with_capacity(activity_df.height());
    let mut k = 0usize;
    let a_rows = a_ids
        .str()?
        .iter()
        .zip(a_period.i32()?.iter())
        .zip(a_rev.f64()?.iter())
        .zip(a_orders.u32()?.iter());
    for (((id, period), rev), ord) in a_rows {
        let Some(id) = id else { continue };
        while customers
            .get(k)
            .is_some_and(|c| c.customer_id.as_str() < id)
        {
            k += 1;
        }
        if customers.get(k).is_some_and(|c| c.customer_id == id) {
            activity.push(ActivityRow {
                customer: k as u32,
                period: period.unwrap_or_default(),
                revenue: rev.unwrap_or_default(),
                orders: ord.unwrap_or_default(),
            });
        }
    }
    let gaps = Vec::new();
    Ok(Summaries {
        customers,
        activity,
        gaps,
        period,
        as_of: as_of.unwrap_or_else(|| date_from_days(max_day)),
        by: by.to_vec(),
    })
}

/// Days between consecutive purchase days of each customer, all customers together, sorted.
/// Only the churn figures need them, and the sort it takes is the costliest step of stage 1, so
/// [`summarise`] leaves [`Summaries::gaps`] empty and callers fill it when needed.
///
/// # Errors
/// Query errors.
pub fn inter_purchase_gaps(transactions: LazyFrame, as_of: Option<NaiveDate>) -> Result<Vec<u32>> {
    let tx = match as_of {
        Some(a) => filter_dates(transactions, None, Some(a)),
        None => transactions,
    };
    let day = col(col::DATE).cast(DataType::Int32);
    let gap = (col("day") - col("day").shift(lit(1))).over([col(col::CUSTOMER_ID)])?;
    let df = tx
        .select([col(col::CUSTOMER_ID), day.alias("day")])
        .unique(None, UniqueKeepStrategy::Any)
        .sort([col::CUSTOMER_ID, "day"], SortMultipleOptions::default())
        .select([gap.alias("gap")])
        .drop_nulls(None)
        .sort(["gap"], SortMultipleOptions::default())
        .collect()?;
    Ok(df
        .column("gap")?
        .i32()?
        .iter()
        .flatten()
        .map(|g| g.max(0) as u32)
        .collect())
}

/// The `q`-quantile of sorted values (linear interpolation between closest ranks, as numpy's
/// default and polars' `linear` method).
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (a, b) = (sorted.get(lo)?, sorted.get(hi)?);
    Some(a + (b - a) * (pos - lo as f64))
}
