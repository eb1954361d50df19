//! Excel and OpenDocument workbooks (`.xlsx`, `.xlsb`, `.xls`, `.ods`), read with calamine.
//!
//! One sheet becomes a temporary UTF-8 CSV, so that everything CSV input gets (column detection,
//! value parsing, a reason and a line for every rejected row) applies unchanged: line N of that
//! CSV is row N of the sheet. Cells are written as Excel shows them, not as a float dump:
//! numbers to 15 significant digits (integers without `.0`), date cells as ISO dates, error
//! cells (`#N/A`) as their text so that they are rejected with a reason.

use std::borrow::Cow;
use std::fmt::Display;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::Path;

use calamine::{Data, ExcelDateTime, Reader, SheetType, SheetVisible};

use super::read::FileFormat;
use crate::{Error, Result};

/// What a zip archive holds.
pub(crate) enum ZipKind {
    /// A workbook of this format.
    Workbook(FileFormat),
    /// Something else, described for a message ("a Word document", "a zip archive of ...").
    Other(String),
}

/// Looks inside a zip archive: an Office Open XML workbook has `xl/workbook.xml` (or `.bin` for
/// xlsb), an OpenDocument spreadsheet says so in its `mimetype` entry.
pub(crate) fn zip_kind(shown: &Path, path: &Path) -> Result<ZipKind> {
    let file = File::open(path).map_err(|e| Error::io(shown, e))?;
    let mut archive = match zip::ZipArchive::new(BufReader::new(file)) {
        Ok(a) => a,
        Err(e) => {
            return Err(Error::Format {
                path: shown.to_path_buf(),
                message: format!("a damaged zip archive ({e}), not a CSV or a workbook"),
            });
        }
    };
    let names: Vec<String> = archive
        .file_names()
        .filter_map(|n| n.ok().map(std::borrow::Cow::into_owned))
        .collect();
    let has = |n: &str| names.iter().any(|x| x.eq_ignore_ascii_case(n));
    if has("xl/workbook.xml") {
        return Ok(ZipKind::Workbook(FileFormat::Xlsx));
    }
    if has("xl/workbook.bin") {
        return Ok(ZipKind::Workbook(FileFormat::Xlsb));
    }
    let mut mimetype = String::new();
    if let Ok(entry) = archive.by_name("mimetype") {
        // A few dozen bytes; a bigger entry is not an OpenDocument mimetype.
        let _ = entry.take(200).read_to_string(&mut mimetype);
    }
    let mimetype = mimetype.trim();
    if mimetype == "application/vnd.oasis.opendocument.spreadsheet" {
        return Ok(ZipKind::Workbook(FileFormat::Ods));
    }
    let what = if has("word/document.xml") {
        "a Word document".to_string()
    } else if has("ppt/presentation.xml") {
        "a PowerPoint presentation".to_string()
    } else if mimetype.starts_with("application/vnd.oasis.opendocument") {
        format!("an OpenDocument file ({mimetype}) but not a spreadsheet")
    } else {
        let shown_names: Vec<&str> = names.iter().take(3).map(String::as_str).collect();
        let more = if names.len() > 3 { ", ..." } else { "" };
        format!(
            "a zip archive of {} file{} ({}{more})",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            shown_names.join(", ")
        )
    };
    Ok(ZipKind::Other(what))
}

/// Writes sheet `sheet` (or the first visible worksheet) of the workbook at `path` to a
/// temporary UTF-8 CSV; returns it and the sheet's name.
pub(crate) fn sheet_to_csv(
    shown: &Path,
    path: &Path,
    format: FileFormat,
    sheet: Option<&str>,
) -> Result<(tempfile::TempPath, String)> {
    let file = File::open(path).map_err(|e| Error::io(shown, e))?;
    let reader = BufReader::new(file);
    let (range, name) = match format {
        FileFormat::Xlsx => read_sheet(calamine::Xlsx::new(reader), shown, format, sheet),
        FileFormat::Xlsb => read_sheet(calamine::Xlsb::new(reader), shown, format, sheet),
        FileFormat::Ods => read_sheet(calamine::Ods::new(reader), shown, format, sheet),
        _ => read_sheet(calamine::Xls::new(reader), shown, format, sheet),
    }?;
    let mut out = tempfile::NamedTempFile::new().map_err(|e| Error::io(shown, e))?;
    let _tracked = crate::temp_files::track(out.path());
    write_csv(&range, out.as_file_mut()).map_err(|e| Error::io(shown, e))?;
    Ok((out.into_temp_path(), name))
}

fn read_sheet<R, RS>(
    workbook: std::result::Result<R, R::Error>,
    shown: &Path,
    format: FileFormat,
    sheet: Option<&str>,
) -> Result<(calamine::Range<Data>, String)>
where
    R: Reader<RS>,
    R::Error: Display,
    RS: Read + Seek,
{
    let damaged = |e: &dyn Display| Error::Format {
        path: shown.to_path_buf(),
        message: match format {
            // The OLE container holds other old Office documents too, and encrypted workbooks.
            FileFormat::Xls => format!(
                "an old Office file (OLE compound document) that is not a readable .xls workbook ({e}); if it is password-protected, remove the password, or save it as .xlsx or CSV"
            ),
            _ => format!("cannot read the {} ({e})", format.name()),
        },
    };
    let mut workbook = workbook.map_err(|e| damaged(&e))?;
    let sheets = workbook.sheets_metadata().to_vec();
    let name = match sheet {
        Some(wanted) => sheets
            .iter()
            .find(|s| s.name == wanted)
            .or_else(|| sheets.iter().find(|s| s.name.eq_ignore_ascii_case(wanted)))
            .map(|s| s.name.clone())
            .ok_or_else(|| Error::Format {
                path: shown.to_path_buf(),
                message: format!(
                    "no sheet named {wanted:?}; the sheets are: {}",
                    sheet_list(&sheets)
                ),
            })?,
        // Hidden sheets hold lookups and pivot caches, chart sheets no cells.
        None => sheets
            .iter()
            .find(|s| s.typ == SheetType::WorkSheet && s.visible == SheetVisible::Visible)
            .or_else(|| sheets.first())
            .map(|s| s.name.clone())
            .ok_or_else(|| Error::Format {
                path: shown.to_path_buf(),
                message: "the workbook has no sheet".into(),
            })?,
    };
    let range = workbook.worksheet_range(&name).map_err(|e| Error::Format {
        path: shown.to_path_buf(),
        message: format!("sheet {name:?}: cannot read it ({e})"),
    })?;
    if range.is_empty() {
        return Err(Error::Format {
            path: shown.to_path_buf(),
            message: format!(
                "sheet {name:?} is empty; the sheets are: {}",
                sheet_list(&sheets)
            ),
        });
    }
    Ok((range, name))
}

fn sheet_list(sheets: &[calamine::Sheet]) -> String {
    sheets
        .iter()
        .map(|s| format!("{:?}", s.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes the cells as CSV. Every non-empty cell is quoted (so that no character in a cell can
/// change the delimiter the sniffer finds) and empty ones are left empty (missing). The rows
/// above the table become blank lines, so that line numbers stay sheet row numbers; for the
/// same reason a line break inside a cell becomes a space.
fn write_csv(range: &calamine::Range<Data>, out: &mut File) -> std::io::Result<()> {
    let mut w = BufWriter::new(out);
    let (first_row, _) = range.start().unwrap_or((0, 0));
    for _ in 0..first_row {
        w.write_all(b"\n")?;
    }
    let mut line = String::new();
    for row in range.rows() {
        line.clear();
        // An empty row inside the table is written as empty fields, not as a blank line: polars
        // reads a blank line as a row too, and the line count must agree with it.
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            let text = render(cell);
            if !text.is_empty() {
                line.push('"');
                for ch in text.chars() {
                    match ch {
                        '"' => line.push_str("\"\""),
                        '\n' => line.push(' '),
                        '\r' => {}
                        c => line.push(c),
                    }
                }
                line.push('"');
            }
        }
        if line.is_empty() {
            // A one-column sheet's empty row: a quoted empty field, still not a blank line.
            line.push_str("\"\"");
        }
        line.push('\n');
        w.write_all(line.as_bytes())?;
    }
    w.flush()
}

/// A cell as Excel displays it, in a form the CSV parsing reads.
fn render(cell: &Data) -> Cow<'_, str> {
    match cell {
        Data::Empty => Cow::Borrowed(""),
        Data::String(s) => Cow::Borrowed(s),
        Data::Int(i) => Cow::Owned(i.to_string()),
        Data::Float(f) => Cow::Owned(number(*f)),
        Data::Bool(b) => Cow::Borrowed(if *b { "TRUE" } else { "FALSE" }),
        Data::DateTime(d) => Cow::Owned(datetime(d)),
        // OpenDocument dates and times are ISO 8601 already.
        Data::DateTimeIso(s) => Cow::Owned(s.replacen('T', " ", 1)),
        Data::DurationIso(s) => Cow::Borrowed(s),
        Data::Error(e) => Cow::Owned(e.to_string()),
    }
}

/// A number to the 15 significant digits Excel shows: binary noise (`0.1 + 0.2`) is dropped,
/// and a whole number has no `.0` (an id `12345` stays `12345`).
fn number(f: f64) -> String {
    if !f.is_finite() {
        return f.to_string();
    }
    let rounded: f64 = format!("{f:.14e}").parse().unwrap_or(f);
    if rounded == 0.0 {
        // Not "-0".
        return "0".into();
    }
    // `Display` for f64 is the shortest text that reads back the same, never in exponent form.
    format!("{rounded}")
}

/// A date cell as `YYYY-MM-DD`, or `YYYY-MM-DD HH:MM:SS` when it has a time of day (to the
/// nearest second). Durations, and serial numbers outside Excel's calendar (years 1900-9999),
/// stay numbers.
fn datetime(d: &ExcelDateTime) -> String {
    let serial = d.as_f64();
    // calamine's conversion panics far outside that range (chrono's limits), so it is checked
    // first; the 1904 calendar's 1462 extra days stay far inside chrono's range.
    if d.is_duration() || !serial.is_finite() || !(0.0..2_958_466.0).contains(&serial) {
        return number(serial);
    }
    let Some(dt) = d.as_datetime() else {
        return number(serial);
    };
    let dt = dt
        .checked_add_signed(chrono::TimeDelta::milliseconds(500))
        .unwrap_or(dt);
    let time = dt.time();
    if chrono::Timelike::num_seconds_from_midnight(&time) == 0 {
        dt.format("%Y-%m-%d").to_string()
    } else {
        dt.format("%Y-%m-%d %H:%M:%S").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_excel_shows_them() {
        assert_eq!(number(12345.0), "12345");
        assert_eq!(number(0.1 + 0.2), "0.3");
        assert_eq!(number(19.99), "19.99");
        assert_eq!(number(-0.0), "0");
        assert_eq!(number(-2.5), "-2.5");
        assert_eq!(number(1e20), "100000000000000000000");
    }

    #[test]
    fn date_cells_are_iso() {
        use calamine::ExcelDateTimeType::{DateTime, TimeDelta};
        // 45322 is 2024-01-31 (serial days from 1899-12-30); .5 is noon.
        assert_eq!(
            datetime(&ExcelDateTime::new(45322.0, DateTime, false)),
            "2024-01-31"
        );
        assert_eq!(
            datetime(&ExcelDateTime::new(45322.5, DateTime, false)),
            "2024-01-31 12:00:00"
        );
        // A hair before midnight rounds to the next day, not to 23:59:59.
        assert_eq!(
            datetime(&ExcelDateTime::new(45_322.999_999_9, DateTime, false)),
            "2024-02-01"
        );
        // Out of the calendar, and durations: numbers.
        assert!(datetime(&ExcelDateTime::new(-1e300, DateTime, false)).starts_with("-1000"));
        assert_eq!(datetime(&ExcelDateTime::new(1.5, TimeDelta, false)), "1.5");
    }
}
