//! CSV: one file per table (`--output-dir`), or all tables to one stream separated by a
//! `# table: NAME` line. Cells that come from input data and start with `=`, `+`, `-`, `@`, tab or
//! carriage return are prefixed with `'` (OWASP "CSV injection" guidance) unless they are numbers.

use std::borrow::Cow;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

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
    if t.len() <= ROWS_PER_BLOCK {
        t.try_for_each_row(|row| write_row(&mut w, row))?;
        w.flush()?;
        return Ok(());
    }
    w.flush()?;
    let out = w.into_inner().map_err(|e| e.into_error())?;
    // A per-customer table (millions of rows) is formatted in blocks on every core, a few
    // blocks at a time so that memory stays bounded, and the blocks are written in order:
    // formatting one row after another was half of `rfm -f csv`. Each block's writer writes
    // exactly what the one writer would (quoting is per field, and no state crosses a row).
    let blocks = t.len().div_ceil(ROWS_PER_BLOCK);
    let wave = 4 * rayon::current_num_threads().max(1);
    for first in (0..blocks).step_by(wave) {
        let formatted: Vec<io::Result<Vec<u8>>> = (first..blocks.min(first + wave))
            .into_par_iter()
            .map(|b| {
                let rows = b * ROWS_PER_BLOCK..(b + 1) * ROWS_PER_BLOCK;
                let mut block = Vec::new();
                t.try_for_each_row_in(rows, |row| {
                    if push_plain_row(&mut block, row) {
                        return Ok(());
                    }
                    let mut w = csv::Writer::from_writer(&mut block);
                    write_row(&mut w, row)?;
                    w.flush()
                })?;
                Ok(block)
            })
            .collect();
        for block in formatted {
            out.write_all(&block?)?;
        }
    }
    out.flush()
}

/// Rows per block of a large table formatted in parallel (a few MB of CSV).
const ROWS_PER_BLOCK: usize = 32_768;

/// Appends `row` as csv's writer writes it (fields joined by commas, a line feed after) when
/// no cell needs quoting (a comma, quote, carriage return or line feed in it) or neutralising
/// (a risky first character), and the row is not empty (csv writes `""` for a row with no
/// bytes); otherwise writes nothing and returns `false`. In a per-customer table (ids,
/// numbers, segment names) every row qualifies, and csv's writer (with the neutralising
/// check) was ~15% of `rfm -f csv`'s CPU.
fn push_plain_row(out: &mut Vec<u8>, row: &[String]) -> bool {
    let plain = |cell: &String| {
        let bytes = cell.as_bytes();
        !bytes
            .first()
            .is_some_and(|b| matches!(b, b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r'))
            && !bytes
                .iter()
                .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
    };
    if (row.len() < 2 && row.iter().all(String::is_empty)) || !row.iter().all(plain) {
        return false;
    }
    for (i, cell) in row.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(cell.as_bytes());
    }
    out.push(b'\n');
    true
}

fn write_row<W: Write>(w: &mut csv::Writer<W>, row: &[String]) -> io::Result<()> {
    w.write_record(row.iter().map(|c| match neutralise(c) {
        Cow::Borrowed(c) => Cow::Borrowed(c.as_bytes()),
        Cow::Owned(c) => Cow::Owned(c.into_bytes()),
    }))
    .map_err(to_io)
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
    fn a_large_table_written_in_parallel_blocks_is_the_row_by_row_csv() {
        // Rows past several blocks (and a partial last one), with cells that need quoting or
        // neutralising, so that a block boundary in any of them would show.
        let len = 3 * ROWS_PER_BLOCK + 17;
        let t = crate::report::view::table_on_demand(
            "rfm_customers",
            &["customer_id", "n", "note"],
            &[false, true, false],
            len,
            |i, cells| {
                if let [id, n, note] = cells {
                    *id = format!("c{i}");
                    *n = (i * 7 % 1000).to_string();
                    *note = match i % 3 {
                        0 => "=SUM(A1)".into(),
                        1 => "a, \"quoted\" note".into(),
                        _ => String::new(),
                    };
                }
            },
        );
        let crate::report::view::Block::Table(t) = t else {
            panic!("a table");
        };
        let mut expected = csv::Writer::from_writer(Vec::new());
        expected.write_record(&t.headers).unwrap();
        t.try_for_each_row(|row| write_row(&mut expected, row))
            .unwrap();
        let expected = expected.into_inner().unwrap();
        let mut got = Vec::new();
        write_table(&t, &mut got).unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(
            got == expected,
            "the block-wise CSV differs from the row-wise one"
        );
        assert_eq!(got.iter().filter(|&&b| b == b'\n').count(), len + 1);
    }

    proptest::proptest! {
        #[test]
        fn a_row_written_directly_is_what_the_csv_writer_writes(
            row in proptest::collection::vec("[a1.é #=+@\\-\t\r\n,\"]{0,4}", 0..4)
        ) {
            let mut direct = Vec::new();
            let mut written = csv::Writer::from_writer(Vec::new());
            write_row(&mut written, &row).unwrap();
            let written = written.into_inner().unwrap();
            if push_plain_row(&mut direct, &row) {
                proptest::prop_assert_eq!(direct, written);
            } else {
                proptest::prop_assert!(direct.is_empty());
            }
        }
    }

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
