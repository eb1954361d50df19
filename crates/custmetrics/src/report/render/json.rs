//! JSON: `serde_json` over the report; keys are stable snake_case, `schema_version` on top.

use std::io::{self, Write};

use crate::report::Report;

pub(super) fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(io::Error::other)?;
    writeln!(out)
}
