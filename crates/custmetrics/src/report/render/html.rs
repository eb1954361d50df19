//! HTML: one self-contained page (inline CSS and SVG; no scripts, fonts or network), readable on
//! screen and in print. Every value that came from input data is escaped.
//!
//! The page draws the views' blocks in order, except the chart blocks, which it gathers into an
//! "At a glance" grid at the top, and a table that carries a heat map (the cohort triangle),
//! which it draws as one.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::svg::{bar_chart, esc, heat as heat_colour, heat_text, line_chart};
use crate::report::Section;
use crate::report::view::{Block, Chart, Heatmap, Page, Plot, TextTable, pct};

const CSS: &str = r#"
:root{--fg:#1b1f24;--muted:#5b6470;--line:#d8dee4;--bg:#fff;--accent:#0072B2}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;max-width:1100px;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
.meta{color:var(--muted);margin:0 0 16px}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:16px}
figure{margin:0;padding:8px;border:1px solid var(--line);border-radius:6px;break-inside:avoid}
figure h3{font-size:14px;margin:0 0 4px}
figure figure{border:0;padding:0}
svg.chart{width:100%;height:auto;display:block}
svg .grid{stroke:#eef1f4}svg .tick{font-size:11px;fill:var(--muted)}
.legend{font-size:12px;color:var(--muted);display:flex;flex-wrap:wrap;gap:10px;margin-top:4px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
table{border-collapse:collapse;margin:8px 0 12px;font-variant-numeric:tabular-nums}
th,td{border:1px solid var(--line);padding:3px 8px;text-align:left}
th{background:#f6f8fa}td.num{text-align:right}
table.heat td{text-align:right;min-width:46px;font-size:12px}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px;margin:8px 0}dt{color:var(--muted)}dd{margin:0}
.note{color:var(--muted);font-size:13px}
.scroll{overflow-x:auto}
@media print{body{max-width:none;padding:0}figure,table{break-inside:avoid}.scroll{overflow:visible}}
"#;

fn chart_block(title: &str, svg: String) -> String {
    format!("<figure><h3>{}</h3>{svg}</figure>", esc(title))
}

/// A chart block as an SVG figure with its caption.
fn chart(c: &Chart) -> String {
    let svg = match &c.plot {
        Plot::Lines {
            x_labels,
            lines,
            y_range,
            y_format,
        } => line_chart(&c.title, x_labels, lines, *y_range, &|v| y_format.format(v)),
        Plot::Bars { bars, format } => bar_chart(&c.title, bars, &|v| format.format(v)),
    };
    chart_block(&c.caption, svg)
}

/// The charts of the page, in block order, except that purchasing's chart comes after predicted
/// CLV's: the page showed them in that order before charts were blocks, and it must not change.
fn glance<'p>(blocks: &'p [Block<'_>]) -> Vec<&'p Chart> {
    let mut charts: Vec<&Chart> = blocks
        .iter()
        .filter_map(|b| match b {
            Block::Chart(c) => Some(c),
            _ => None,
        })
        .collect();
    // A stable sort: only purchasing's chart moves, to the end.
    charts.sort_by_key(|c| c.section == Section::Supporting);
    charts
}

/// A cohort triangle as a table coloured by rate.
fn heatmap(heat: &Heatmap<'_>) -> String {
    let max_k = heat.cells.iter().map(|c| c.offset).max().unwrap_or(0);
    let mut s = String::from(
        r#"<div class="scroll"><table class="heat"><thead><tr><th>cohort</th><th>customers</th>"#,
    );
    for k in 0..=max_k {
        let _ = write!(s, "<th>+{k}</th>");
    }
    s.push_str("</tr></thead><tbody>");
    let mut open = false;
    for c in &heat.cells {
        if c.offset == 0 {
            if open {
                s.push_str("</tr>");
            }
            let _ = write!(s, "<tr><th>{}</th><td>{}</td>", esc(c.cohort), c.customers);
            open = true;
        }
        let _ = write!(
            s,
            r#"<td style="background:{};color:{}" title="{} +{}: {} of {}">{}</td>"#,
            heat_colour(c.rate),
            heat_text(c.rate),
            esc(c.cohort),
            c.offset,
            c.active,
            c.customers,
            pct(c.rate)
        );
    }
    if open {
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table></div>");
    s
}

pub(super) fn render(page: &Page<'_>, out: &mut dyn Write) -> io::Result<()> {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>",
        esc(page.title)
    );
    s.push_str(CSS);
    let _ = write!(s, "</style></head><body>\n<h1>{}</h1>", esc(page.title));
    if let Some(subtitle) = &page.subtitle {
        let _ = write!(s, r#"<p class="meta">{}</p>"#, esc(subtitle));
    }
    let charts = glance(&page.blocks);
    if !charts.is_empty() {
        s.push_str("<h2>At a glance</h2><div class=\"grid2\">");
        for c in charts {
            s.push_str(&chart(c));
        }
        s.push_str("</div>");
    }
    for block in &page.blocks {
        match block {
            Block::Heading(h) => {
                let _ = write!(s, "\n<h2>{}</h2>", esc(h));
            }
            Block::Figures(pairs) => {
                s.push_str("<dl>");
                for (k, v) in pairs {
                    let _ = write!(s, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
                }
                s.push_str("</dl>");
            }
            Block::Table(TextTable {
                heat: Some(heat), ..
            }) => s.push_str(&heatmap(heat)),
            Block::Table(t) => {
                s.push_str(r#"<div class="scroll"><table><thead><tr>"#);
                for h in &t.headers {
                    let _ = write!(s, "<th>{}</th>", esc(h));
                }
                s.push_str("</tr></thead><tbody>");
                let _ = t.try_for_each_row(|row| -> std::fmt::Result {
                    s.push_str("<tr>");
                    for (cell, numeric) in row
                        .iter()
                        .zip(t.numeric.iter().chain(std::iter::repeat(&false)))
                    {
                        if *numeric {
                            let _ = write!(s, r#"<td class="num">{}</td>"#, esc(cell));
                        } else {
                            let _ = write!(s, "<td>{}</td>", esc(cell));
                        }
                    }
                    s.push_str("</tr>");
                    Ok(())
                });
                s.push_str("</tbody></table></div>");
            }
            Block::Note(n) => {
                let _ = write!(s, r#"<p class="note">{}</p>"#, esc(n));
            }
            // Drawn in the grid above.
            Block::Chart(_) => {}
        }
    }
    let stamp = page
        .generated_at
        .map(|t| format!(" on {}", esc(t)))
        .unwrap_or_default();
    let _ = write!(
        s,
        "\n<p class=\"note\">Made by custmetrics{stamp}. Definitions: docs/metrics.md.</p></body></html>\n"
    );
    out.write_all(s.as_bytes())
}
