//! Renderers: each turns a laid-out [`Page`] (a [`Report`] through its views, see
//! [`crate::report::view`]) into one format; JSON serialises the typed value instead.

mod csv;
mod html;
mod json;
mod markdown;
pub mod svg;
mod table;

use std::borrow::Cow;
use std::io::{self, Write};

use serde::Serialize;

use super::Report;
use super::view::{self, Page};
use crate::io::inspect::Inspection;

pub use self::csv::{is_csv_table_file, write_csv_dir};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Aligned terminal tables.
    Table,
    /// Markdown (CI job summaries, pull-request comments).
    Markdown,
    /// JSON with a `schema_version`.
    Json,
    /// One CSV file per table, into a directory.
    Csv,
    /// A self-contained HTML page with charts.
    Html,
}

/// How to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RenderOptions {
    /// Use ANSI colours (terminal tables only).
    pub color: bool,
    /// Maximum line width for terminal tables (`None`: no wrapping).
    pub width: Option<u16>,
}

/// Renders `report` as `format` to `out`. CSV goes to a directory: use [`write_csv_dir`].
///
/// # Errors
/// Write errors.
pub fn render(
    report: &Report,
    format: Format,
    options: &RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Json => json::render(report, out),
        // CSV gets every cohort offset and plain numbers.
        _ => render_page(
            &view::report_page(report, format == Format::Csv),
            format,
            options,
            out,
        ),
    }
}

/// Renders what `inspect` found in `files` as `format` to `out`. The terminal gets
/// [`Inspection::to_text`]'s listing; JSON is `{"schema_version": .., "files": [..]}`.
///
/// # Errors
/// Write errors.
pub fn render_inspections(
    files: &[Inspection],
    format: Format,
    options: &RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Table => files
            .iter()
            .try_for_each(|f| out.write_all(f.to_text().as_bytes())),
        Format::Json => json::render_inspections(files, out),
        _ => render_page(&view::inspect::page(files), format, options, out),
    }
}

/// Renders a page in any format but JSON (which serialises the typed value the page came from).
fn render_page(
    page: &Page<'_>,
    format: Format,
    options: &RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Table => table::render(page, options, out),
        Format::Markdown => markdown::render(page, out),
        Format::Csv => csv::render_stream(page, out),
        Format::Html => html::render(page, out),
        // The callers send JSON to the serialiser; a page has no JSON form.
        Format::Json => Err(io::Error::other("a laid-out page has no JSON form")),
    }
}

/// The former name of [`crate::output::write_output`], which also writes devices, FIFOs and
/// descriptors in place; and [`crate::output::refuse_inputs`], kept here for existing callers.
pub use crate::output::{refuse_inputs, write_output as write_atomically};

/// A cell that a spreadsheet would run as a formula (it starts with `=`, `+`, `-`, `@`, tab or
/// carriage return, and is not a number or percentage), prefixed with `'` (OWASP "CSV
/// injection"). Shared by the CSV and Markdown renderers: Markdown tables get pasted into
/// spreadsheets too.
pub(crate) fn neutralise_formula(cell: &str) -> Cow<'_, str> {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && cell.parse::<f64>().is_err() && cell.trim_end_matches('%').parse::<f64>().is_err() {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::inspect::inspect;
    use crate::io::{InputPath, LoadOptions};

    fn inspections() -> Vec<Inspection> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
        ["demo/transactions.csv", "bad/bad_values.csv"]
            .iter()
            .map(|f| {
                let input = InputPath::File(dir.join(f));
                inspect(&input, None, &LoadOptions::default()).unwrap()
            })
            .collect()
    }

    fn rendered(files: &[Inspection], format: Format) -> String {
        let mut out = Vec::new();
        render_inspections(files, format, &RenderOptions::default(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn inspect_json_is_the_one_built_by_hand_before() {
        let files = inspections();
        // What the CLI wrote before the JSON came from a type (issue 19): key order and
        // numbers must not change.
        let mut by_hand = serde_json::to_string_pretty(&serde_json::json!({
            "schema_version": crate::report::SCHEMA_VERSION,
            "files": files,
        }))
        .unwrap();
        by_hand.push('\n');
        assert_eq!(rendered(&files, Format::Json), by_hand);
    }

    #[test]
    fn inspect_renders_as_tables_with_the_file_on_each_row() {
        let files = inspections();
        let csv = rendered(&files, Format::Csv);
        assert!(
            csv.starts_with("# table: files\nfile,read as,format,"),
            "{csv}"
        );
        assert!(csv.contains("# table: columns\n") && csv.contains("# table: problems\n"));
        assert!(
            csv.contains("bad_values.csv,missing_amount,rows,1\n"),
            "{csv}"
        );
        let markdown = rendered(&files, Format::Markdown);
        assert!(
            markdown.starts_with("# Input files\n\n## Files\n"),
            "{markdown}"
        );
        let html = rendered(&files, Format::Html);
        assert!(html.contains("<h1>Input files</h1>") && !html.contains("At a glance"));
        // The terminal keeps its listing.
        assert_eq!(
            rendered(&files, Format::Table),
            files.iter().map(Inspection::to_text).collect::<String>()
        );
    }
}
