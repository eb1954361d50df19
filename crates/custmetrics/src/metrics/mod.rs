//! Descriptive metrics: retention, churn, survival, NPS, CSAT, RFM and the overview.
//!
//! Stage 1 ([`crate::summary`]) reduces transactions to per-customer and per-customer-period summaries
//! with polars; every other module computes from those summaries (or, for NPS/CSAT, from counts
//! per score), so that the big data is read once.

pub mod churn;
pub mod retention;
pub mod rfm;
pub mod scores;
