//! Purchasing (the `supporting` section): order value and frequency, historical CLV, lifecycle
//! stages, per segment and per acquisition cohort.

use super::{Block, Chart, Fmt, Plot, ValueFormat, figures, table};
use crate::report::{Section, SegmentValue, Supporting};

/// The purchasing figures, lifecycle stages, the per-segment table when split, and value by
/// acquisition cohort, and a chart of historical CLV for the last 12 cohorts.
pub(super) fn view(s: &Supporting, fm: Fmt, out: &mut Vec<Block<'_>>) {
    out.push(Block::Heading("Purchasing".into()));
    out.push(figures(&[
        ("Average order value", fm.money(s.average_order_value)),
        ("Orders per customer", fm.num(s.purchase_frequency, 2)),
        ("Repeat purchase rate", fm.pct(s.repeat_purchase_rate)),
        (
            "Historical CLV (revenue per customer)",
            fm.money(s.historical_clv),
        ),
    ]));
    out.push(table(
        "lifecycle",
        &["stage", "customers"],
        &[false, true],
        s.lifecycle
            .iter()
            .map(|(k, v)| vec![k.clone(), v.to_string()])
            .collect(),
    ));
    if let Some(first) = s.by_segment.first() {
        let dim = first.dimension.clone();
        let stage =
            |g: &SegmentValue, k: &str| g.lifecycle.get(k).copied().unwrap_or(0).to_string();
        out.push(table(
            "purchasing_by_segment",
            &[
                dim.as_str(),
                "customers",
                "orders",
                "revenue",
                "AOV",
                "orders per customer",
                "repeat rate",
                "historical CLV",
                "active",
                "at risk",
                "churned",
            ],
            &[
                false, true, true, true, true, true, true, true, true, true, true,
            ],
            s.by_segment
                .iter()
                .map(|g| {
                    vec![
                        g.segment.clone(),
                        g.customers.to_string(),
                        g.orders.to_string(),
                        fm.money(g.revenue),
                        fm.money(g.average_order_value),
                        fm.num(g.purchase_frequency, 2),
                        fm.pct(g.repeat_purchase_rate),
                        fm.money(g.historical_clv),
                        stage(g, "active"),
                        stage(g, "at_risk"),
                        stage(g, "churned"),
                    ]
                })
                .collect(),
        ));
    }
    out.push(table(
        "cohort_value",
        &[
            "cohort",
            "customers",
            "revenue",
            "historical CLV",
            "CAC",
            "CLV:CAC",
        ],
        &[false, true, true, true, true, true],
        s.by_cohort
            .iter()
            .map(|c| {
                vec![
                    c.cohort.clone(),
                    c.customers.to_string(),
                    fm.money(c.revenue),
                    fm.money(c.historical_clv),
                    c.cac.map(|x| fm.money(x)).unwrap_or_else(|| fm.dash()),
                    c.clv_to_cac
                        .map(|x| fm.num(x, 2))
                        .unwrap_or_else(|| fm.dash()),
                ]
            })
            .collect(),
    ));
    out.push(Block::Chart(Chart {
        section: Section::Supporting,
        caption: "Historical CLV (revenue per customer) by acquisition cohort".into(),
        title: "Historical CLV".into(),
        plot: Plot::Bars {
            bars: s
                .by_cohort
                .iter()
                .rev()
                .take(12)
                .rev()
                .map(|c| (c.cohort.clone(), c.historical_clv))
                .collect(),
            format: ValueFormat::Number(2),
        },
    }));
}
