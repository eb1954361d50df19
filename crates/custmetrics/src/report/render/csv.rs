//! CSV: one file per table (`--output-dir`), or all tables to one stream separated by a
//! `# table: NAME` line. Cells that come from input data and start with `=`, `+`, `-`, `@`, tab or
//! carriage return are prefixed with `'` (OWASP "CSV injection" guidance) unless they are numbers.

use std::borrow::Cow;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::neutralise_formula as neutralise;
use crate::report::Report;
use crate::report::view::{Block, Page, TextTable, layout};

/// The tables the layout can emit, so that another output of the run can be refused before it
/// is written where a table will go. `MODEL_params` and `MODEL_predictions` are the fitted
/// models' tables (the `clv fit` report). A test checks the full demo report's tables.
const TABLE_NAMES: &[&str] = &[
    "accounting",
    "at_risk",
    "churn_periods",
    "clv_customers",
    "clv_holdout",
    "clv_percentiles",
    "cohort_value",
    "contractual_churn",
    "csat",
    "headlines",
    "interactions_by_channel",
    "lifecycle",
    "nps",
    "purchasing_by_segment",
    "retention_cohorts",
    "retention_periods",
    "rfm_customers",
    "rfm_segments",
    "rfm_segments_by_segment",
    "survival",
    "survival_by_segment",
];

/// Whether [`write_csv_dir`] may write a file named `file_name` (`retention_periods.csv`).
pub fn is_csv_table_file(file_name: &str) -> bool {
    file_name.strip_suffix(".csv").is_some_and(|stem| {
        TABLE_NAMES.contains(&stem) || stem.ends_with("_params") || stem.ends_with("_predictions")
    })
}

/// csv's own conversion makes every error `ErrorKind::Other`; an I/O error is kept as it is, so
/// that a closed pipe stays `BrokenPipe` (which the CLI treats as success).
fn to_io(e: csv::Error) -> io::Error {
    if !e.is_io_error() {
        return io::Error::other(e);
    }
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => io::Error::other(format!("{other:?}")),
    }
}

fn write_table(t: &TextTable<'_>, out: &mut dyn Write) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(&t.headers).map_err(to_io)?;
    t.try_for_each_row(|row| {
        w.write_record(row.iter().map(|c| match neutralise(c) {
            Cow::Borrowed(c) => Cow::Borrowed(c.as_bytes()),
            Cow::Owned(c) => Cow::Owned(c.into_bytes()),
        }))
        .map_err(to_io)
    })?;
    w.flush()?;
    Ok(())
}

pub(super) fn render_stream(page: &Page<'_>, out: &mut dyn Write) -> io::Result<()> {
    for block in &page.blocks {
        if let Block::Table(t) = block {
            writeln!(out, "# table: {}", t.name)?;
            write_table(t, out)?;
            writeln!(out)?;
        }
    }
    Ok(())
}

/// Writes one `NAME.csv` per table into `dir` (created if missing), each atomically; returns the
/// files written.
///
/// # Errors
/// [`crate::Error::Io`].
pub fn write_csv_dir(report: &Report, dir: &Path) -> crate::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
    let mut written = Vec::new();
    for block in layout(report, true) {
        if let Block::Table(t) = block {
            let path = dir.join(format!("{}.csv", t.name));
            crate::output::write_output(&path, |w| write_table(&t, w))?;
            written.push(path);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_injection_is_neutralised() {
        assert_eq!(neutralise("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(neutralise("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralise("-12.50"), "-12.50");
        assert_eq!(neutralise("-5.0%"), "-5.0%");
        assert_eq!(neutralise("plain"), "plain");
    }

    #[test]
    fn table_files_are_known() {
        assert!(is_csv_table_file("retention_periods.csv"));
        assert!(is_csv_table_file("bgnbd_params.csv"));
        assert!(!is_csv_table_file("rejects.csv"));
        assert!(!is_csv_table_file("retention_periods.json"));
    }
}
