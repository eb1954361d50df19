//! Churn: inactivity churn with the at-risk customers, and contractual churn (cancellations).

use super::{Block, Chart, Fmt, Line, Plot, ValueFormat, figures, table};
use crate::metrics::churn::{Churn, PeriodChurn};
use crate::report::Section;

/// Inactivity churn: figures, the per-period table and the at-risk customers, and a chart of the
/// churn rate per period (with the cancellation rate when there is contractual churn).
pub(super) fn view(
    c: &Churn,
    contractual: Option<&[PeriodChurn]>,
    fm: Fmt,
    out: &mut Vec<Block<'_>>,
) {
    out.push(Block::Heading(format!(
        "Churn (inactive for {} days)",
        c.inactive_after_days
    )));
    let g = &c.inter_purchase_days;
    let days = |x: Option<f64>| {
        x.map(|v| format!("{v:.0} days"))
            .unwrap_or_else(|| fm.dash())
    };
    out.push(figures(&[
        (
            "Churned customers",
            format!("{} of {}", c.churned_customers, c.customers),
        ),
        ("Gap between purchases p50", days(g.p50)),
        ("p75", days(g.p75)),
        ("p90", days(g.p90)),
        ("p95", days(g.p95)),
    ]));
    out.push(table(
        "churn_periods",
        &[
            "period",
            "segment",
            "customers at start",
            "churned",
            "churn rate",
        ],
        &[false, false, true, true, true],
        c.periods
            .iter()
            .map(|p| {
                vec![
                    p.period.clone(),
                    p.segment.clone().unwrap_or_else(|| "all".into()),
                    p.customers_start.to_string(),
                    p.churned.to_string(),
                    fm.opt_pct(p.churn_rate),
                ]
            })
            .collect(),
    ));
    if !c.at_risk.is_empty() {
        out.push(Block::Heading(
            "At-risk customers (past their usual purchase cycle)".into(),
        ));
        out.push(table(
            "at_risk",
            &[
                "customer",
                "last purchase",
                "days since",
                "usual gap (days)",
                "revenue",
            ],
            &[false, false, true, true, true],
            c.at_risk
                .iter()
                .map(|a| {
                    vec![
                        a.customer_id.to_string(),
                        a.last_purchase.clone(),
                        a.days_since_last.to_string(),
                        fm.num(a.usual_gap_days, 1),
                        fm.money(a.revenue),
                    ]
                })
                .collect(),
        ));
    }
    chart(c, contractual, out);
}

/// Contractual churn: cancellations per period.
pub(super) fn contractual_view(cc: &[PeriodChurn], fm: Fmt, out: &mut Vec<Block<'_>>) {
    out.push(Block::Heading("Contractual churn (cancellations)".into()));
    out.push(table(
        "contractual_churn",
        &[
            "period",
            "customers at start",
            "cancelled",
            "churn rate",
            "revenue churn",
        ],
        &[false, true, true, true, true],
        cc.iter()
            .map(|p| {
                vec![
                    p.period.clone(),
                    p.customers_start.to_string(),
                    p.churned.to_string(),
                    fm.opt_pct(p.churn_rate),
                    fm.opt_pct(p.revenue_churn_rate),
                ]
            })
            .collect(),
    ));
}

/// The churn rate per period, all segments together, beside the cancellation rate.
fn chart(c: &Churn, contractual: Option<&[PeriodChurn]>, out: &mut Vec<Block<'_>>) {
    let overall: Vec<_> = c.periods.iter().filter(|p| p.segment.is_none()).collect();
    let labels: Vec<String> = overall.iter().map(|p| p.period.clone()).collect();
    let mut lines = vec![Line {
        name: "inactivity churn".into(),
        values: overall.iter().map(|p| p.churn_rate).collect(),
        band: None,
    }];
    if let Some(cc) = contractual {
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
    out.push(Block::Chart(Chart {
        section: Section::Churn,
        caption: format!(
            "Churn rate per period (inactive for {} days)",
            c.inactive_after_days
        ),
        title: "Churn rate".into(),
        plot: Plot::Lines {
            x_labels: labels,
            lines,
            y_range: None,
            y_format: ValueFormat::Percent(1),
        },
    }));
}
