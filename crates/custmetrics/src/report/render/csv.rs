//! CSV: one file per table (`--output-dir`), or all tables to one stream separated by a
//! `# table: NAME` line. Cells that come from input data and start with `=`, `+`, `-`, `@`, tab or
//! carriage return are prefixed with `'` (OWASP "CSV injection" guidance) unless they are numbers.

use std::borrow::Cow;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::report::Report;
use crate::report::layout::{Block, TextTable, layout};

fn neutralise(cell: &str) -> Cow<'_, str> {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && cell.parse::<f64>().is_err() && cell.trim_end_matches('%').parse::<f64>().is_err() {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
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

pub(super) fn render_stream(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    for block in layout(report, true) {
        if let Block::Table(t) = block {
            writeln!(out, "# table: {}", t.name)?;
            write_table(&t, out)?;
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
            super::write_atomically(&path, |w| write_table(&t, w))?;
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
}
