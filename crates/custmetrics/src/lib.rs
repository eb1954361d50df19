//! # custmetrics
//!
//! Customer metrics from the exports of any CRM, shop or survey tool: retention, churn, NPS, CSAT,
//! RFM, survival and customer lifetime value models.
//!
//! The data flows in two stages, and the modules follow it:
//!
//! 1. [`io`]: files (CSV, gzip CSV, Parquet, Arrow IPC, stdin) → lazy polars scans → column roles
//!    detected from header aliases ([`io::schema`]) → values parsed by our own parsers
//!    ([`io::parse`]) → canonical [`io::Table`]s, with every rejected row counted and located.
//! 2. [`metrics::summary`] (stage 1) reduces transactions to small, mergeable summaries (one row
//!    per customer, one per customer × period); [`metrics`] and [`models`] (stage 2) compute from
//!    those only; [`report`] gathers the results into one serialisable [`report::Report`] that the
//!    renderers turn into terminal tables, Markdown, JSON or CSV.
//!
//! ## Quick start
//!
//! ```
//! use custmetrics::io::{Dataset, DatasetSpec};
//! use custmetrics::report::{Report, ReportOptions};
//! # let testdata = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/fixtures/");
//!
//! let mut spec = DatasetSpec::default();
//! spec.transactions = vec![format!("{testdata}retention_small.csv")];
//! let data = Dataset::load(&spec)?;
//! assert_eq!(data.transactions.as_ref().map(|t| t.accounting.rows_rejected), Some(0));
//!
//! let report = Report::build(&data, &ReportOptions::default())?;
//! let feb = &report.retention.as_ref().expect("transactions were given").periods[1];
//! // January: a, b, c active; February: a and the new customer d.
//! assert_eq!(feb.retention_rate, Some(1.0 / 3.0));
//! # Ok::<(), custmetrics::Error>(())
//! ```
//!
//! Metric definitions, with formulas and sources, are in each module's documentation and in
//! `docs/metrics.md`.
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod config;
mod error;
pub mod generate;
pub mod io;
pub mod models;
pub mod output;

pub use error::{Error, Result};
pub mod metrics;
pub mod period;
pub mod report;
pub mod temp_files;
