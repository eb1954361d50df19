//! # custmetrics
//!
//! Customer metrics from the exports of any CRM, shop or survey tool: retention, churn, NPS, CSAT,
//! RFM, survival and customer lifetime value models.
//!
//! The data flows one way, file → table → summary → section → rendered report, and the
//! modules follow it (each depends only on those listed before it):
//!
//! - [`period`] (calendar periods and date arithmetic), [`money`] (exact sums), [`output`]
//!   (atomic writes) and [`temp_files`]: the ground floor.
//! - [`io`]: files (CSV, gzip CSV, Parquet, Arrow IPC, workbooks, stdin) → lazy polars scans →
//!   column roles detected from header aliases ([`io::schema`]) → values parsed by our own
//!   parsers ([`io::parse`]) → canonical [`Table`]s, with every rejected row counted and located.
//! - [`summary`] (stage 1), the only code that reads transaction rows: it reduces them to small,
//!   mergeable summaries (one row per customer, one per customer × period). Its output can be
//!   kept on disk as a [`SummaryStore`] (one row per customer and day, updated month by month),
//!   from which every report runs without the exports.
//! - [`metrics`] and [`models`] (stage 2) compute from those summaries only.
//! - [`report`] builds one serialisable [`Report`], a section at a time, that the renderers in
//!   [`report::render`] turn into terminal tables, Markdown, JSON, CSV or HTML.
//! - [`generate`] writes synthetic datasets for demos, tests and benchmarks.
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
pub mod engine;
mod error;
pub mod generate;
pub mod io;
pub mod metrics;
pub mod models;
pub mod money;
pub mod output;
pub mod period;
pub mod report;
pub mod summary;
pub mod temp_files;

pub use error::{Error, Result};
pub use io::{Dataset, DatasetSpec, LoadOptions, Table, TableKind};
pub use period::Period;
pub use report::{Report, ReportOptions, Section};
pub use summary::{CustomerId, Summaries, SummaryStore, summarise};
