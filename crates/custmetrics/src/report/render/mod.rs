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
