//! Survey scores: NPS and CSAT share one view (overall figures, a table per period and segment,
//! a trend); only their names, scales and formatting differ.

use super::{Block, Chart, Fmt, Line, Plot, ValueFormat, figures, table};
use crate::report::{CsatSection, NpsSection, Section};

/// One score of a period and/or segment, as the shared view reads it.
struct ScoreRow<'a> {
    period: Option<&'a str>,
    segment: Option<&'a str>,
    score: f64,
    ci_low: f64,
    ci_high: f64,
    /// The mean answer (CSAT only).
    mean: Option<f64>,
    responses: u64,
    low_sample: bool,
}

/// What tells NPS and CSAT apart in the shared view.
struct Score<'a> {
    section: Section,
    /// The table's name (`nps`) and the score's column header (`NPS`).
    table: &'static str,
    header: &'static str,
    heading: String,
    /// The overall score's figures.
    figures: Block<'static>,
    rows: Vec<ScoreRow<'a>>,
    /// Whether rows have a mean answer (a `mean` column).
    has_mean: bool,
    /// Formats a score or interval bound.
    value: &'a dyn Fn(f64) -> String,
    mean: &'a dyn Fn(f64) -> String,
    note: Option<String>,
    /// The trend chart's caption and title, its y range and how it writes values.
    trend_caption: &'static str,
    trend_title: &'static str,
    y_range: (f64, f64),
    y_format: ValueFormat,
}

/// The shared view: heading, overall figures, the table by period and segment, the note, and a
/// trend chart of the score per period with its interval (when there are two periods or more).
fn view(s: Score<'_>, out: &mut Vec<Block<'_>>) {
    out.push(Block::Heading(s.heading));
    out.push(s.figures);
    let rows = s
        .rows
        .iter()
        .map(|x| {
            let mut row = vec![
                x.period.unwrap_or_default().to_string(),
                x.segment.unwrap_or("all").to_string(),
                (s.value)(x.score),
                format!("{} – {}", (s.value)(x.ci_low), (s.value)(x.ci_high)),
            ];
            if let Some(mean) = x.mean {
                row.push((s.mean)(mean));
            }
            row.push(x.responses.to_string());
            row.push(if x.low_sample {
                "too few answers".into()
            } else {
                String::new()
            });
            row
        })
        .collect();
    let (headers, numeric): (Vec<&str>, Vec<bool>) = if s.has_mean {
        (
            vec![
                "period",
                "segment",
                s.header,
                "95% CI",
                "mean",
                "responses",
                "flag",
            ],
            vec![false, false, true, true, true, true, false],
        )
    } else {
        (
            vec!["period", "segment", s.header, "95% CI", "responses", "flag"],
            vec![false, false, true, true, true, false],
        )
    };
    out.push(table(s.table, &headers, &numeric, rows));
    if let Some(note) = s.note {
        out.push(Block::Note(note));
    }
    let by_period: Vec<_> = s
        .rows
        .iter()
        .filter(|x| x.period.is_some() && x.segment.is_none())
        .collect();
    if by_period.len() > 1 {
        let labels: Vec<String> = by_period
            .iter()
            .map(|x| x.period.unwrap_or_default().to_string())
            .collect();
        let line = Line {
            name: s.header.into(),
            values: by_period.iter().map(|x| Some(x.score)).collect(),
            band: Some(
                by_period
                    .iter()
                    .map(|x| Some((x.ci_low, x.ci_high)))
                    .collect(),
            ),
        };
        out.push(Block::Chart(Chart {
            section: s.section,
            caption: s.trend_caption.into(),
            title: s.trend_title.into(),
            plot: Plot::Lines {
                x_labels: labels,
                lines: vec![line],
                y_range: Some(s.y_range),
                y_format: s.y_format,
            },
        }));
    }
}

/// Net Promoter Score, on its −100..100 scale with one decimal.
pub(super) fn nps_view(n: &NpsSection, out: &mut Vec<Block<'_>>) {
    let o = &n.overall;
    let value = |v: f64| format!("{v:.1}");
    view(
        Score {
            section: Section::Nps,
            table: "nps",
            header: "NPS",
            heading: "Net Promoter Score".into(),
            figures: figures(&[
                ("NPS", format!("{:.1}", o.score)),
                ("95% CI", format!("{:.1} – {:.1}", o.ci_low, o.ci_high)),
                (
                    "Promoters / passives / detractors",
                    format!("{} / {} / {}", o.promoters, o.passives, o.detractors),
                ),
                ("Responses", o.responses.to_string()),
            ]),
            rows: n
                .by
                .iter()
                .map(|x| ScoreRow {
                    period: x.period.as_deref(),
                    segment: x.segment.as_deref(),
                    score: x.score,
                    ci_low: x.ci_low,
                    ci_high: x.ci_high,
                    mean: None,
                    responses: x.responses,
                    low_sample: x.low_sample,
                })
                .collect(),
            has_mean: false,
            value: &value,
            mean: &value,
            note: Some(format!(
                "Flagged: fewer than {} answers; the 95% interval is then wider than about ±30 points.",
                n.min_responses
            )),
            trend_caption: "NPS per period with 95% interval",
            trend_title: "NPS trend",
            y_range: (-100.0, 100.0),
            y_format: ValueFormat::Number(0),
        },
        out,
    );
}

/// CSAT: the share of satisfied answers as a percentage, and the mean answer.
pub(super) fn csat_view(c: &CsatSection, fm: Fmt, out: &mut Vec<Block<'_>>) {
    let o = &c.overall;
    let value = |v: f64| fm.pct(v);
    let mean = |v: f64| fm.num(v, 2);
    view(
        Score {
            section: Section::Csat,
            table: "csat",
            header: "CSAT",
            heading: format!(
                "CSAT ({}–{} of 1–{} is satisfied)",
                c.satisfied_from, c.scale, c.scale
            ),
            figures: figures(&[
                ("CSAT", fm.pct(o.score)),
                (
                    "95% CI (Wilson)",
                    format!("{} – {}", fm.pct(o.ci_low), fm.pct(o.ci_high)),
                ),
                ("Mean score", fm.num(o.mean, 2)),
                ("Responses", o.responses.to_string()),
            ]),
            rows: c
                .by
                .iter()
                .map(|x| ScoreRow {
                    period: x.period.as_deref(),
                    segment: x.segment.as_deref(),
                    score: x.score,
                    ci_low: x.ci_low,
                    ci_high: x.ci_high,
                    mean: Some(x.mean),
                    responses: x.responses,
                    low_sample: x.low_sample,
                })
                .collect(),
            has_mean: true,
            value: &value,
            mean: &mean,
            note: None,
            trend_caption: "CSAT per period with 95% Wilson interval",
            trend_title: "CSAT trend",
            y_range: (0.0, 1.0),
            y_format: ValueFormat::Percent(0),
        },
        out,
    );
}
