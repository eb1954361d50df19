//! Input: from files (CSV, gzip CSV, Parquet, Arrow IPC, Excel and OpenDocument workbooks,
//! stdin) to canonical, typed tables.
//!
//! The flow is `read` (find and open files lazily) → `schema` (which column plays which role,
//! and the canonical column names) → `columns` (one file's columns parsed role by role with
//! `parse`, a reason for every rejected row; a Parquet file's dictionary-encoded dimensions read
//! by their keys in `parquet_keys`) → `clean` (rows settled, lines repeated across
//! files, order lines merged) → `load` (the files of one table together) → [`table`] (the
//! canonical [`Table`] and its [`Accounting`]) → `dataset` (the three tables of a run).
//!
//! `io` depends on nothing above it: [`crate::period`] for dates, [`crate::money`] for exact
//! sums, [`crate::output`] for atomic writes.

#[cfg(feature = "arrow")]
pub mod arrow;
mod clean;
mod columns;
pub mod dataset;
pub mod inspect;
pub mod load;
mod parquet_keys;
pub mod parse;
pub mod read;
pub mod schema;
pub mod status;
pub mod table;
mod workbook;

pub use dataset::{Dataset, DatasetSpec, DeferredTransactions};
pub use load::{LoadOptions, Partition, load_frame, load_inputs, load_table};
pub use parse::{DateFormat, DecimalSeparator, RejectReason};
pub use read::{FileFormat, InputPath, TextEncoding, expand_inputs};
pub use schema::{ColumnMapping, ResolvedColumns, Role, TableKind, col};
pub use status::{ExcludeReason, PurchaseStatus};
pub use table::{Accounting, FileReport, Rejection, Table};
