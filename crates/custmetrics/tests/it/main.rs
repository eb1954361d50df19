//! Integration tests through the public API (one test binary: polars links slowly).

/// The README quick start matches the crate doctest.
mod docs;
/// UTF-16 text, Excel and OpenDocument workbooks, and files that are neither (issue 18).
mod encodings_workbooks;
/// Exports as tools write them: statuses, refunds, line items, footers, empty data.
mod exports;
/// Loading exports: formats, column mapping, value parsing, row accounting.
mod ingest;
/// Metrics on small hand-computed fixtures and their invariants.
mod metrics;
/// Every interval the report shows against simulations with a known answer (issue 23).
mod simulation;
/// The summary store (issue 20): summarise then update equals reading every export together,
/// split by date (overlapping months) and by customer.
mod store;
/// Survey and helpdesk exports as tools write them: labelled answers, question headers, the
/// customer key among ids, e-mails and names, unreadable answers (issue 18).
mod surveys;
/// Parquet and Arrow IPC columns of every type warehouses write (issue 18).
mod typed_inputs;

use std::path::PathBuf;

/// A file under `testdata/`.
pub fn testdata(rel: &str) -> String {
    let p: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "..", "testdata", rel]
        .iter()
        .collect();
    p.to_string_lossy().into_owned()
}
