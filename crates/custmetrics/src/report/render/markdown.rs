//! Markdown: headings, bullet figures and pipe tables; fits a CI job summary.
//!
//! Text reaches the Markdown from the data (segment names, channels, customer ids, column
//! names), and job summaries and pull-request comments render HTML: every text is escaped, so
//! that a value like `<script>` or `=HYPERLINK(...)` shows as written and does nothing (issue 18).

use std::io::{self, Write};

use super::neutralise_formula;
use crate::report::view::{Block, Page};

/// Escapes `text` for Markdown that may be rendered with HTML: `&`, `<`, `>` become entities
/// (they would start a tag or an entity), `|` and backticks are backslash-escaped (they would
/// end a table cell or open code), and line breaks become spaces (they would end the table row).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("\\|"),
            '`' => out.push_str("\\`"),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A table cell: neutralised like a CSV cell (a Markdown table is often pasted into
/// a spreadsheet), then escaped. Numeric columns are ours and stay as they are, so that
/// `-12.5` or a `-5.9 – 53.9` interval is not prefixed.
fn cell(text: &str, numeric: bool) -> String {
    if numeric {
        escape(text)
    } else {
        escape(&neutralise_formula(text))
    }
}

pub(super) fn render(page: &Page<'_>, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "# {}", escape(page.title))?;
    for block in &page.blocks {
        match block {
            Block::Heading(h) => write!(out, "\n## {}\n\n", escape(h))?,
            Block::Figures(pairs) => {
                for (k, v) in pairs {
                    writeln!(out, "- **{}**: {}", escape(k), escape(v))?;
                }
                writeln!(out)?;
            }
            Block::Table(t) => {
                writeln!(
                    out,
                    "| {} |",
                    t.headers
                        .iter()
                        .map(|h| cell(h, false))
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
                            .zip(t.numeric.iter().chain(std::iter::repeat(&false)))
                            .map(|(c, &numeric)| cell(c, numeric))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    )
                })?;
                writeln!(out)?;
            }
            Block::Note(n) => writeln!(out, "_{}_\n", escape(n))?,
            // Charts are for the HTML page; the numbers are in the section's tables.
            Block::Chart(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_and_markdown_are_escaped() {
        assert_eq!(
            escape("<script>alert(1)</script> & co"),
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"
        );
        assert_eq!(escape("a|b `c`"), "a\\|b \\`c\\`");
        assert_eq!(escape("two\r\nlines\nthree"), "two lines three");
    }

    #[test]
    fn formula_cells_are_neutralised_unless_numeric() {
        assert_eq!(
            cell("=HYPERLINK(\"http://x\",\"<b>\")", false),
            "'=HYPERLINK(\"http://x\",\"&lt;b&gt;\")"
        );
        assert_eq!(cell("-12.5", false), "-12.5");
        assert_eq!(cell("-5.9 – 53.9", true), "-5.9 – 53.9");
        assert_eq!(cell("@cmd", false), "'@cmd");
    }
}
