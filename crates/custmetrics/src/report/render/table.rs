//! Terminal tables with comfy-table.

use std::io::{self, Write};

use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, presets};

use super::RenderOptions;
use crate::report::view::{Block, Page};

pub(super) fn render(
    page: &Page<'_>,
    options: &RenderOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let bold = |s: &str| {
        if options.color {
            format!("\x1b[1m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let dim = |s: &str| {
        if options.color {
            format!("\x1b[2m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    for block in &page.blocks {
        match block {
            Block::Heading(h) => write!(out, "\n{}\n", bold(h))?,
            Block::Figures(pairs) => {
                let w = pairs
                    .iter()
                    .map(|(k, _)| k.chars().count())
                    .max()
                    .unwrap_or(0);
                for (k, v) in pairs {
                    writeln!(out, "  {k:<w$}  {v}")?;
                }
            }
            Block::Table(t) => {
                let mut table = Table::new();
                table.load_style(presets::UTF8_FULL_CONDENSED);
                table.set_content_arrangement(match options.width {
                    Some(_) => ContentArrangement::Dynamic,
                    None => ContentArrangement::Disabled,
                });
                if let Some(w) = options.width {
                    table.set_width(w);
                }
                table.set_header(t.headers.iter().map(Cell::new));
                t.try_for_each_row(|row| -> io::Result<()> {
                    table.add_row(row.iter().zip(&t.numeric).map(|(c, &n)| {
                        Cell::new(c).set_alignment(if n {
                            CellAlignment::Right
                        } else {
                            CellAlignment::Left
                        })
                    }));
                    Ok(())
                })?;
                writeln!(out, "{table}")?;
            }
            Block::Note(n) => writeln!(out, "{}", dim(n))?,
            // Charts are for the HTML page; the numbers are in the section's tables.
            Block::Chart(_) => {}
        }
    }
    Ok(())
}
