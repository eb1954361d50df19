//! Retention: the per-period table and the cohort triangle.

use super::{
    Block, Chart, Fmt, HeatCell, Heatmap, Line, Plot, READABLE_OFFSETS, Rows, TextTable,
    ValueFormat, table,
};
use crate::metrics::retention::Retention;
use crate::report::Section;

/// Offsets a chart shows (the retention curves and the HTML heat map): two years of months.
const CHART_OFFSETS: u32 = 24;

/// The retention table (with a segment column when the report is split), its note, and the
/// cohort triangle (a heat map in HTML); `full` keeps every offset of the triangle. Charts: the
/// retention curves of recent cohorts, and active customers per period.
pub(super) fn view<'r>(
    ret: &'r Retention,
    by_segment: bool,
    full: bool,
    fm: Fmt,
    out: &mut Vec<Block<'r>>,
) {
    out.push(Block::Heading(format!("Retention by {}", ret.period)));
    let rows = ret
        .periods
        .iter()
        .map(|p| {
            let mut row = vec![p.period.clone()];
            if by_segment {
                row.push(p.segment.clone().unwrap_or_else(|| "all".into()));
            }
            row.extend([
                p.customers_start.to_string(),
                p.customers_end.to_string(),
                p.new_customers.to_string(),
                p.retained.to_string(),
                p.reactivated.to_string(),
                fm.opt_pct(p.crr),
                fm.opt_pct(p.retention_rate),
                fm.opt_pct(p.churn_rate),
                fm.opt_pct(p.nrr),
                fm.opt_pct(p.grr),
            ]);
            row
        })
        .collect();
    let mut headers = vec!["period"];
    if by_segment {
        headers.push("segment");
    }
    headers.extend([
        "start",
        "end",
        "new",
        "retained",
        "reactivated",
        "CRR",
        "retention",
        "churn",
        "NRR",
        "GRR",
    ]);
    let mut numeric = vec![false; headers.len() - 10];
    numeric.extend([true; 10]);
    out.push(table("retention_periods", &headers, &numeric, rows));
    out.push(Block::Note(
        "CRR = (end − new) / start counts reactivated customers; retention = retained / start, churn = 1 − retention."
            .into(),
    ));
    // The triangle as a matrix: one row per cohort, one column per offset.
    let limit = if full { u32::MAX } else { READABLE_OFFSETS };
    let all: Vec<_> = ret
        .cohorts
        .iter()
        .filter(|c| c.segment.is_none() && c.offset <= limit)
        .collect();
    let max_offset = all.iter().map(|c| c.offset).max().unwrap_or(0);
    let truncated = ret.cohorts.iter().any(|c| c.offset > limit);
    let mut headers: Vec<String> = vec!["cohort".into(), "customers".into()];
    headers.extend((0..=max_offset).map(|k| format!("+{k}")));
    let mut rows: Vec<Vec<String>> = Vec::new();
    for c in &all {
        if c.offset == 0 {
            rows.push(vec![c.cohort.clone(), c.customers.to_string()]);
        }
        if let Some(row) = rows.last_mut() {
            row.push(fm.pct(c.rate));
        }
    }
    for row in &mut rows {
        row.resize(headers.len(), String::new());
    }
    let mut numeric = vec![false];
    numeric.extend(std::iter::repeat_n(true, headers.len() - 1));
    out.push(Block::Heading(format!(
        "Cohort retention (share of each cohort active k {}s later)",
        ret.period
    )));
    out.push(Block::Table(TextTable {
        name: "retention_cohorts".into(),
        headers,
        numeric,
        heat: Some(Heatmap {
            cells: ret
                .cohorts
                .iter()
                .filter(|c| c.segment.is_none() && c.offset <= CHART_OFFSETS)
                .map(|c| HeatCell {
                    cohort: &c.cohort,
                    offset: c.offset,
                    customers: c.customers,
                    active: c.active,
                    rate: c.rate,
                })
                .collect(),
        }),
        rows: Rows::Cells(rows),
    }));
    if truncated {
        out.push(Block::Note(format!(
            "Offsets up to +{READABLE_OFFSETS} shown; JSON and CSV outputs have the whole triangle."
        )));
    }
    curves(ret, out);
    active_customers(ret, out);
}

/// Retention curves: the most recent 8 cohorts with at least 3 offsets.
fn curves(ret: &Retention, out: &mut Vec<Block<'_>>) {
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
        .min(CHART_OFFSETS);
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
        out.push(Block::Chart(Chart {
            section: Section::Retention,
            caption: format!(
                "Retention curves: share of each cohort active k {}s later",
                ret.period
            ),
            title: "Retention curves per cohort".into(),
            plot: Plot::Lines {
                x_labels: labels,
                lines,
                y_range: Some((0.0, 1.0)),
                y_format: ValueFormat::Percent(0),
            },
        }));
    }
}

/// Active, new and retained customers per period (all segments together).
fn active_customers(ret: &Retention, out: &mut Vec<Block<'_>>) {
    let periods: Vec<_> = ret.periods.iter().filter(|p| p.segment.is_none()).collect();
    let labels: Vec<String> = periods.iter().map(|p| p.period.clone()).collect();
    out.push(Block::Chart(Chart {
        section: Section::Retention,
        caption: format!("Active customers per {}", ret.period),
        title: "Active customers".into(),
        plot: Plot::Lines {
            x_labels: labels,
            lines: vec![
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
            y_range: None,
            y_format: ValueFormat::Number(0),
        },
    }));
}
