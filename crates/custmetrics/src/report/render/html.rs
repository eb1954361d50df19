//! HTML: one self-contained page (inline CSS and SVG; no scripts, fonts or network), readable on
//! screen and in print. Every value that came from input data is escaped.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::svg::{Line, bar_chart, esc, heat, heat_text, line_chart};
use crate::report::Report;
use crate::report::layout::{Block, layout, pct};

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

/// The charts of the page, built from the report's numbers (no computation beyond picking).
fn charts(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    let rate_fmt = |v: f64| format!("{:.0}%", v * 100.0);
    if let Some(ret) = &r.retention {
        // Retention curves: the most recent 8 cohorts with at least 3 offsets.
        let mut cohorts: Vec<&str> = ret
            .cohorts
            .iter()
            .filter(|c| c.segment.is_none() && c.offset == 2)
            .map(|c| c.cohort.as_str())
            .collect();
        cohorts.dedup();
        let recent: Vec<&str> = cohorts.iter().rev().take(8).rev().copied().collect();
        let max_k = ret
            .cohorts
            .iter()
            .filter(|c| recent.contains(&c.cohort.as_str()))
            .map(|c| c.offset)
            .max()
            .unwrap_or(0)
            .min(24);
        let labels: Vec<String> = (0..=max_k).map(|k| format!("+{k}")).collect();
        let lines: Vec<Line> = recent
            .iter()
            .map(|cohort| Line {
                name: (*cohort).to_string(),
                values: (0..=max_k)
                    .map(|k| {
                        ret.cohorts
                            .iter()
                            .find(|c| c.segment.is_none() && c.cohort == *cohort && c.offset == k)
                            .map(|c| c.rate)
                    })
                    .collect(),
                band: None,
            })
            .collect();
        if !lines.is_empty() {
            out.push(chart_block(
                &format!(
                    "Retention curves: share of each cohort active k {}s later",
                    ret.period
                ),
                line_chart(
                    "Retention curves per cohort",
                    &labels,
                    &lines,
                    Some((0.0, 1.0)),
                    &rate_fmt,
                ),
            ));
        }
        let periods: Vec<_> = ret.periods.iter().filter(|p| p.segment.is_none()).collect();
        let labels: Vec<String> = periods.iter().map(|p| p.period.clone()).collect();
        out.push(chart_block(
            &format!("Active customers per {}", ret.period),
            line_chart(
                "Active customers",
                &labels,
                &[
                    Line {
                        name: "active".into(),
                        values: periods
                            .iter()
                            .map(|p| Some(p.customers_end as f64))
                            .collect(),
                        band: None,
                    },
                    Line {
                        name: "new".into(),
                        values: periods
                            .iter()
                            .map(|p| Some(p.new_customers as f64))
                            .collect(),
                        band: None,
                    },
                    Line {
                        name: "retained".into(),
                        values: periods.iter().map(|p| Some(p.retained as f64)).collect(),
                        band: None,
                    },
                ],
                None,
                &|v| format!("{v:.0}"),
            ),
        ));
    }
    if let Some(c) = &r.churn {
        let overall: Vec<_> = c.periods.iter().filter(|p| p.segment.is_none()).collect();
        let labels: Vec<String> = overall.iter().map(|p| p.period.clone()).collect();
        let mut lines = vec![Line {
            name: "inactivity churn".into(),
            values: overall.iter().map(|p| p.churn_rate).collect(),
            band: None,
        }];
        if let Some(cc) = &r.contractual_churn {
            lines.push(Line {
                name: "cancellations".into(),
                values: labels
                    .iter()
                    .map(|l| {
                        cc.iter()
                            .find(|p| &p.period == l)
                            .and_then(|p| p.churn_rate)
                    })
                    .collect(),
                band: None,
            });
        }
        out.push(chart_block(
            &format!(
                "Churn rate per period (inactive for {} days)",
                c.inactive_after_days
            ),
            line_chart("Churn rate", &labels, &lines, None, &|v| {
                format!("{:.1}%", v * 100.0)
            }),
        ));
    }
    if let Some(s) = &r.survival {
        // Sample the step curve on a regular day grid so the chart stays small.
        let max_day = s.curve.last().map_or(0, |p| p.days);
        let step = (max_day / 60).max(1);
        let days: Vec<u32> = (0..=max_day).step_by(step as usize).collect();
        let at = |d: u32| s.curve.iter().take_while(|p| p.days <= d).last();
        let labels: Vec<String> = days.iter().map(|d| d.to_string()).collect();
        let line = Line {
            name: "S(t)".into(),
            values: days
                .iter()
                .map(|&d| Some(at(d).map_or(1.0, |p| p.survival)))
                .collect(),
            band: Some(
                days.iter()
                    .map(|&d| Some(at(d).map_or((1.0, 1.0), |p| (p.ci_low, p.ci_high))))
                    .collect(),
            ),
        };
        out.push(chart_block(
            &format!(
                "Survival: share of customers still active after t days ({})",
                s.definition
            ),
            line_chart(
                "Kaplan-Meier survival",
                &labels,
                &[line],
                Some((0.0, 1.0)),
                &rate_fmt,
            ),
        ));
    }
    if let Some(n) = &r.nps {
        let by_period: Vec<_> =
            n.by.iter()
                .filter(|x| x.period.is_some() && x.segment.is_none())
                .collect();
        if by_period.len() > 1 {
            let labels: Vec<String> = by_period
                .iter()
                .map(|x| x.period.clone().unwrap_or_default())
                .collect();
            let line = Line {
                name: "NPS".into(),
                values: by_period.iter().map(|x| Some(x.score)).collect(),
                band: Some(
                    by_period
                        .iter()
                        .map(|x| Some((x.ci_low, x.ci_high)))
                        .collect(),
                ),
            };
            out.push(chart_block(
                "NPS per period with 95% interval",
                line_chart("NPS trend", &labels, &[line], Some((-100.0, 100.0)), &|v| {
                    format!("{v:.0}")
                }),
            ));
        }
    }
    if let Some(c) = &r.csat {
        let by_period: Vec<_> =
            c.by.iter()
                .filter(|x| x.period.is_some() && x.segment.is_none())
                .collect();
        if by_period.len() > 1 {
            let labels: Vec<String> = by_period
                .iter()
                .map(|x| x.period.clone().unwrap_or_default())
                .collect();
            let line = Line {
                name: "CSAT".into(),
                values: by_period.iter().map(|x| Some(x.score)).collect(),
                band: Some(
                    by_period
                        .iter()
                        .map(|x| Some((x.ci_low, x.ci_high)))
                        .collect(),
                ),
            };
            out.push(chart_block(
                "CSAT per period with 95% Wilson interval",
                line_chart("CSAT trend", &labels, &[line], Some((0.0, 1.0)), &rate_fmt),
            ));
        }
    }
    if let Some(rfm) = &r.rfm {
        let bars: Vec<(String, f64)> = rfm
            .segments
            .iter()
            .map(|(k, v)| (k.clone(), *v as f64))
            .collect();
        out.push(chart_block(
            "RFM segment sizes (customers)",
            bar_chart("RFM segments", &bars, &|v| format!("{v:.0}")),
        ));
    }
    if let Some(c) = &r.clv {
        let bars: Vec<(String, f64)> = c
            .clv_percentiles
            .iter()
            .map(|(q, v)| (format!("p{:.0}", q * 100.0), *v))
            .collect();
        out.push(chart_block(
            "Predicted CLV distribution (percentiles)",
            bar_chart("CLV percentiles", &bars, &|v| format!("{v:.2}")),
        ));
        let top: Vec<(String, f64)> = c
            .ranked
            .iter()
            .take(10)
            .map(|x| (x.customer_id.clone(), x.clv))
            .collect();
        out.push(chart_block(
            "Top customers by predicted CLV",
            bar_chart("Top customers", &top, &|v| format!("{v:.2}")),
        ));
    }
    if let Some(s) = &r.supporting {
        let bars: Vec<(String, f64)> = s
            .by_cohort
            .iter()
            .rev()
            .take(12)
            .rev()
            .map(|c| (c.cohort.clone(), c.historical_clv))
            .collect();
        out.push(chart_block(
            "Historical CLV (revenue per customer) by acquisition cohort",
            bar_chart("Historical CLV", &bars, &|v| format!("{v:.2}")),
        ));
    }
    out
}

fn heatmap(r: &Report) -> String {
    let Some(ret) = &r.retention else {
        return String::new();
    };
    let all: Vec<_> = ret
        .cohorts
        .iter()
        .filter(|c| c.segment.is_none() && c.offset <= 24)
        .collect();
    let max_k = all.iter().map(|c| c.offset).max().unwrap_or(0);
    let mut s = String::from(
        r#"<div class="scroll"><table class="heat"><thead><tr><th>cohort</th><th>customers</th>"#,
    );
    for k in 0..=max_k {
        let _ = write!(s, "<th>+{k}</th>");
    }
    s.push_str("</tr></thead><tbody>");
    let mut open = false;
    for c in &all {
        if c.offset == 0 {
            if open {
                s.push_str("</tr>");
            }
            let _ = write!(s, "<tr><th>{}</th><td>{}</td>", esc(&c.cohort), c.customers);
            open = true;
        }
        let _ = write!(
            s,
            r#"<td style="background:{};color:{}" title="{} +{}: {} of {}">{}</td>"#,
            heat(c.rate),
            heat_text(c.rate),
            esc(&c.cohort),
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

pub(super) fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut s = String::new();
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Customer metrics report</title><style>");
    s.push_str(CSS);
    s.push_str("</style></head><body>\n<h1>Customer metrics report</h1>");
    let _ = write!(
        s,
        r#"<p class="meta">Period: {}{}{}</p>"#,
        esc(&report.settings.period),
        report
            .settings
            .as_of
            .as_ref()
            .map(|a| format!(" · as of {}", esc(a)))
            .unwrap_or_default(),
        if report.settings.by.is_empty() {
            String::new()
        } else {
            format!(" · split by {}", esc(&report.settings.by.join(", ")))
        }
    );
    let charts = charts(report);
    if !charts.is_empty() {
        s.push_str("<h2>At a glance</h2><div class=\"grid2\">");
        for c in charts {
            s.push_str(&c);
        }
        s.push_str("</div>");
    }
    for block in layout(report, false) {
        match block {
            Block::Heading(h) => {
                let _ = write!(s, "\n<h2>{}</h2>", esc(&h));
            }
            Block::Figures(pairs) => {
                s.push_str("<dl>");
                for (k, v) in pairs {
                    let _ = write!(s, "<dt>{}</dt><dd>{}</dd>", esc(&k), esc(&v));
                }
                s.push_str("</dl>");
            }
            Block::Table(t) if t.name == "retention_cohorts" => s.push_str(&heatmap(report)),
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
                let _ = write!(s, r#"<p class="note">{}</p>"#, esc(&n));
            }
        }
    }
    let stamp = report
        .generated_at
        .as_ref()
        .map(|t| format!(" on {}", esc(t)))
        .unwrap_or_default();
    let _ = write!(
        s,
        "\n<p class=\"note\">Made by custmetrics{stamp}. Definitions: docs/metrics.md.</p></body></html>\n"
    );
    out.write_all(s.as_bytes())
}
