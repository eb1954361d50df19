//! Renderers: each turns a [`Report`] into one format, with the same signature.

mod csv;
mod html;
mod json;
mod markdown;
pub mod svg;
mod table;

use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use super::Report;

pub use self::csv::write_csv_dir;

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
        Format::Table => table::render(report, options, out),
        Format::Markdown => markdown::render(report, out),
        Format::Json => json::render(report, out),
        Format::Csv => csv::render_stream(report, out),
        Format::Html => html::render(report, out),
    }
}

/// Writes `text` produced by `f` atomically to `path`: a temporary file in the same folder,
/// renamed over the target only when complete, so no partial file is ever left.
///
/// # Errors
/// [`crate::Error::Io`].
pub fn write_atomically(
    path: &Path,
    f: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> crate::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(|e| crate::Error::io(path, e))?;
    let _tracked = crate::temp_files::track(temp.path());
    {
        let mut w = io::BufWriter::new(temp.as_file_mut());
        f(&mut w)
            .and_then(|()| w.flush())
            .map_err(|e| crate::Error::io(path, e))?;
    }
    readable_by_all(temp.path());
    temp.persist(path)
        .map_err(|e| crate::Error::io(path, e.error))?;
    Ok(())
}

/// Refuses an output path that is one of the input files.
///
/// # Errors
/// [`crate::Error::OutputIsInput`].
pub fn refuse_inputs(output: &Path, inputs: &[std::path::PathBuf]) -> crate::Result<()> {
    let canon = |p: &Path| std::fs::canonicalize(p).ok();
    if let Some(out) = canon(output)
        && inputs.iter().any(|i| canon(i).as_ref() == Some(&out))
    {
        return Err(crate::Error::OutputIsInput {
            path: output.to_path_buf(),
        });
    }
    Ok(())
}

/// Temporary files are created private (0600); outputs get the usual 0644 before the rename.
pub(crate) fn readable_by_all(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Best effort: a file we cannot chmod is still a correct output.
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644));
    }
    #[cfg(not(unix))]
    let _ = path;
}
