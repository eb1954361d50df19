//! Survival: Kaplan–Meier lifetimes, the curve at fixed horizons, and per segment.

use super::{Block, Chart, Fmt, Line, Plot, ValueFormat, figures, table};
use crate::metrics::churn::Survival;
use crate::report::Section;

/// The median lifetime, the survival at fixed horizons and the per-segment table, and a chart
/// of the curve with its confidence band.
pub(super) fn view(s: &Survival, fm: Fmt, out: &mut Vec<Block<'_>>) {
    out.push(Block::Heading(format!(
        "Survival (Kaplan–Meier, {} lifetimes)",
        s.definition
    )));
    let d = |x: Option<u32>| {
        x.map(|v| format!("{v} days"))
            .unwrap_or_else(|| "not reached".into())
    };
    let mut fields = vec![
        ("Lifetimes", s.customers.to_string()),
        ("Ended", s.events.to_string()),
        ("Median lifetime", d(s.median_days)),
        (
            "95% CI",
            format!("{} – {}", d(s.median_ci_low), d(s.median_ci_high)),
        ),
    ];
    if s.too_recent > 0 {
        fields.push((
            "Left out",
            format!(
                "{} customers (first purchase within the inactivity threshold of the end)",
                s.too_recent
            ),
        ));
    }
    out.push(figures(&fields));
    // A readable subset of the curve: the survival at fixed horizons.
    let horizons = [30u32, 90, 180, 365, 730];
    let rows = horizons
        .iter()
        .filter_map(|&h| {
            let p = s.curve.iter().take_while(|p| p.days <= h).last()?;
            Some(vec![
                format!("{h} days"),
                fm.pct(p.survival),
                format!("{} – {}", fm.pct(p.ci_low), fm.pct(p.ci_high)),
                p.at_risk.to_string(),
            ])
        })
        .collect();
    out.push(table(
        "survival",
        &["horizon", "surviving", "95% CI", "at risk"],
        &[false, true, true, true],
        rows,
    ));
    if let Some(first) = s.by_segment.first() {
        let dim = first.dimension.clone();
        let d = |x: Option<u32>| x.map(|v| v.to_string()).unwrap_or_else(|| fm.dash());
        let p = |x: Option<f64>| x.map(|v| fm.pct(v)).unwrap_or_else(|| fm.dash());
        out.push(table(
            "survival_by_segment",
            &[
                dim.as_str(),
                "lifetimes",
                "ended",
                "median days",
                "95% CI",
                "S(90)",
                "S(180)",
                "S(365)",
            ],
            &[false, true, true, true, false, true, true, true],
            s.by_segment
                .iter()
                .map(|g| {
                    vec![
                        g.segment.clone(),
                        g.customers.to_string(),
                        g.events.to_string(),
                        d(g.median_days),
                        format!("{} – {}", d(g.median_ci_low), d(g.median_ci_high)),
                        p(g.survival_90),
                        p(g.survival_180),
                        p(g.survival_365),
                    ]
                })
                .collect(),
        ));
    }
    chart(s, out);
}

/// The survival curve, sampled on a regular day grid so that the chart stays small.
fn chart(s: &Survival, out: &mut Vec<Block<'_>>) {
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
    out.push(Block::Chart(Chart {
        section: Section::Survival,
        caption: format!(
            "Survival: share of customers still active after t days ({})",
            s.definition
        ),
        title: "Kaplan-Meier survival".into(),
        plot: Plot::Lines {
            x_labels: labels,
            lines: vec![line],
            y_range: Some((0.0, 1.0)),
            y_format: ValueFormat::Percent(0),
        },
    }));
}
