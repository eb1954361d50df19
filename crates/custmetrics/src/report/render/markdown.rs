//! Markdown: headings, bullet figures and pipe tables; fits a CI job summary.

use std::io::{self, Write};

use crate::report::Report;
use crate::report::layout::{Block, layout};

fn escape(cell: &str) -> String {
    cell.replace('|', "\\|").replace('\n', " ")
}

pub(super) fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "# Customer metrics report")?;
    for block in layout(report, false) {
        match block {
            Block::Heading(h) => write!(out, "\n## {}\n\n", escape(&h))?,
            Block::Figures(pairs) => {
                for (k, v) in pairs {
                    writeln!(out, "- **{}**: {}", escape(&k), escape(&v))?;
                }
                writeln!(out)?;
            }
            Block::Table(t) => {
                writeln!(
                    out,
                    "| {} |",
                    t.headers
                        .iter()
                        .map(|h| escape(h))
                        .collect::<Vec<_>>()
                        .join(" | ")
                )?;
                let aligns: Vec<&str> = t
                    .numeric
                    .iter()
                    .map(|&n| if n { "---:" } else { "---" })
                    .collect();
                writeln!(out, "| {} |", aligns.join(" | "))?;
                t.try_for_each_row(|row| {
                    writeln!(
                        out,
                        "| {} |",
                        row.iter()
                            .map(|c| escape(c))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    )
                })?;
                writeln!(out)?;
            }
            Block::Note(n) => writeln!(out, "_{}_\n", escape(&n))?,
        }
    }
    Ok(())
}
