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
        check_ods_content(shown, &mut archive)?;
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

/// Checks that an .ods's `content.xml` closes every element it opens. calamine 0.38 reads a
/// table until its end tag and loops forever at the end of the file when there is none (a
/// truncated or damaged file; found by fuzzing); well-formed nesting guarantees it ends.
fn check_ods_content<R: Read + Seek>(shown: &Path, archive: &mut zip::ZipArchive<R>) -> Result<()> {
    let damaged = |what: String| Error::Format {
        path: shown.to_path_buf(),
        message: format!(
            "a damaged OpenDocument spreadsheet ({what}); re-save it, or export it as CSV"
        ),
    };
    let entry = archive
        .by_name("content.xml")
        .map_err(|e| damaged(format!("content.xml: {e}")))?;
    let mut reader = quick_xml::Reader::from_reader(BufReader::new(entry));
    let mut buf = Vec::new();
    let mut depth = 0usize;
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(quick_xml::events::Event::Start(_)) => depth += 1,
            Ok(quick_xml::events::Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(quick_xml::events::Event::Eof) if depth == 0 => return Ok(()),
            Ok(quick_xml::events::Event::Eof) => {
                return Err(damaged("content.xml ends inside an element".into()));
            }
            Ok(_) => {}
            Err(e) => return Err(damaged(format!("content.xml: {e}"))),
        }
        buf.clear();
    }
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
    // calamine 0.38 can panic on damaged files (an overflow on a cell reference of many letters,
    // found by fuzzing; overflow checks are off in release builds, on in debug and fuzz builds).
    // A panic there is a damaged workbook to the user, not a crash.
    let read = std::panic::AssertUnwindSafe(|| match format {
        FileFormat::Xlsx => read_sheet(calamine::Xlsx::new(reader), shown, format, sheet),
        FileFormat::Xlsb => read_sheet(calamine::Xlsb::new(reader), shown, format, sheet),
        FileFormat::Ods => read_sheet(calamine::Ods::new(reader), shown, format, sheet),
        _ => read_sheet(calamine::Xls::new(reader), shown, format, sheet),
    });
    let (range, name) = std::panic::catch_unwind(read).unwrap_or_else(|_| {
        Err(Error::Format {
            path: shown.to_path_buf(),
            message: format!(
                "cannot read the {} (the workbook reader failed on it); re-save it, or export it as CSV",
                format.name()
            ),
        })
    })?;
    let (mut out, _tracked) = crate::temp_files::named_temp().map_err(|e| Error::io(shown, e))?;
    write_csv(&range, out.as_file_mut()).map_err(|e| Error::io(shown, e))?;
    Ok((out.into_temp_path(), name))
}

/// Reading one sheet's cells, per workbook format.
trait SheetRange {
    fn sheet_range(&mut self, name: &str) -> std::result::Result<calamine::Range<Data>, String>;
}

/// The most cells a sheet's rectangle may hold beyond its filled cells: calamine makes the
/// rectangle dense, and one stray value at XFD1048576 would ask for 17 billion cells (and abort
/// the process on the allocation; found by fuzzing).
const MAX_EMPTY_CELLS: u64 = 50_000_000;

/// Collects the filled cells one at a time and refuses a rectangle mostly made of nothing.
fn sparse_range<E: Display>(
    mut next: impl FnMut() -> std::result::Result<Option<calamine::Cell<Data>>, E>,
) -> std::result::Result<calamine::Range<Data>, String> {
    let mut cells = Vec::new();
    while let Some(cell) = next().map_err(|e| format!("cannot read it ({e})"))? {
        if !matches!(cell.get_value(), Data::Empty) {
            cells.push(cell);
        }
    }
    let (mut low, mut high) = ((u32::MAX, u32::MAX), (0u32, 0u32));
    for c in &cells {
        let (r, k) = c.get_position();
        low = (low.0.min(r), low.1.min(k));
        high = (high.0.max(r), high.1.max(k));
    }
    if let Some(far) = cells.iter().map(|c| c.get_position()).max() {
        let area = (u64::from(high.0 - low.0) + 1) * (u64::from(high.1 - low.1) + 1);
        if area > cells.len() as u64 + MAX_EMPTY_CELLS {
            return Err(format!(
                "its {} filled cells spread over {} rows and {} columns (up to row {}); delete the stray cells far from the table, or export the table as CSV",
                cells.len(),
                high.0 - low.0 + 1,
                high.1 - low.1 + 1,
                far.0 + 1
            ));
        }
    }
    Ok(calamine::Range::from_sparse(cells))
}

impl<RS: Read + Seek> SheetRange for calamine::Xlsx<RS> {
    fn sheet_range(&mut self, name: &str) -> std::result::Result<calamine::Range<Data>, String> {
        let mut reader = self
            .worksheet_cells_reader(name)
            .map_err(|e| format!("cannot read it ({e})"))?;
        sparse_range(|| {
            reader.next_cell().map(|c| {
                c.map(|c| calamine::Cell::new(c.get_position(), Data::from(c.get_value().clone())))
            })
        })
    }
}

impl<RS: Read + Seek> SheetRange for calamine::Xlsb<RS> {
    fn sheet_range(&mut self, name: &str) -> std::result::Result<calamine::Range<Data>, String> {
        let mut reader = self
            .worksheet_cells_reader(name)
            .map_err(|e| format!("cannot read it ({e})"))?;
        sparse_range(|| {
            reader.next_cell().map(|c| {
                c.map(|c| calamine::Cell::new(c.get_position(), Data::from(c.get_value().clone())))
            })
        })
    }
}

// .ods and .xls: calamine reads every sheet densely when the workbook is opened (TODO(#18):
// the same guard needs calamine to read them sparsely).
impl<RS: Read + Seek> SheetRange for calamine::Ods<RS> {
    fn sheet_range(&mut self, name: &str) -> std::result::Result<calamine::Range<Data>, String> {
        self.worksheet_range(name)
            .map_err(|e| format!("cannot read it ({e})"))
    }
}

impl<RS: Read + Seek> SheetRange for calamine::Xls<RS> {
    fn sheet_range(&mut self, name: &str) -> std::result::Result<calamine::Range<Data>, String> {
        self.worksheet_range(name)
            .map_err(|e| format!("cannot read it ({e})"))
    }
}

fn read_sheet<R, RS>(
    workbook: std::result::Result<R, R::Error>,
    shown: &Path,
    format: FileFormat,
    sheet: Option<&str>,
) -> Result<(calamine::Range<Data>, String)>
where
    R: Reader<RS> + SheetRange,
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
    let range = workbook.sheet_range(&name).map_err(|e| Error::Format {
        path: shown.to_path_buf(),
        message: format!("sheet {name:?}: {e}"),
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
