//! Input: from files (CSV, gzip CSV, Parquet, Arrow IPC, Excel and OpenDocument workbooks,
//! stdin) to canonical, typed tables.
//!
//! The flow is `read` (find and open files lazily) → `schema` (which column plays which role) →
//! `parse` (values, with a reason for every rejected row) → `load` (the canonical [`Table`]).

#[cfg(feature = "arrow")]
pub mod arrow;
pub mod dataset;
pub mod inspect;
pub mod load;
pub mod parse;
pub mod read;
pub mod schema;
pub mod status;
pub mod summary_table;
mod workbook;

pub use dataset::{Dataset, DatasetSpec, DeferredTransactions};
pub use load::{
    Accounting, FileReport, LoadOptions, Partition, Rejection, Table, col, load_frame, load_inputs,
    load_table,
};
pub use parse::{DateFormat, DecimalSeparator, RejectReason};
pub use read::{FileFormat, InputPath, TextEncoding, expand_inputs};
pub use schema::{ColumnMapping, ResolvedColumns, Role, TableKind};
pub use status::{ExcludeReason, PurchaseStatus};
