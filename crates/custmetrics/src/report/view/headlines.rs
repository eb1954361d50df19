//! Headline figures, with the change against a compared report when there is one.

use super::{Block, Fmt, table};
use crate::report::headline::Headline;

/// The headlines that have a value, as one table (with previous value and change when compared).
pub(super) fn view(headlines: &[Headline], fm: Fmt, out: &mut Vec<Block<'_>>) {
    let shown: Vec<_> = headlines.iter().filter(|h| h.value.is_some()).collect();
    if !shown.is_empty() {
        let compared = shown.iter().any(|h| h.previous.is_some());
        out.push(Block::Heading("Headlines".into()));
        let fmt = |unit: &str, v: f64| match unit {
            "money" => fm.money(v),
            "rate" => fm.pct(v),
            "count" => format!("{v:.0}"),
            "days" => format!("{v:.0} days"),
            _ => fm.num(v, 1),
        };
        let delta = |unit: &str, d: f64| {
            let sign = if d > 0.0 { "+" } else { "" };
            match unit {
                // Rates change in percentage points, not percent.
                "rate" => format!("{sign}{:.1} pp", d * 100.0),
                _ => format!("{sign}{}", fmt(unit, d)),
            }
        };
        let rows = shown
            .iter()
            .map(|h| {
                let mut row = vec![
                    h.label.clone(),
                    h.value.map(|v| fmt(&h.unit, v)).unwrap_or_default(),
                ];
                if compared {
                    row.push(
                        h.previous
                            .map(|v| fmt(&h.unit, v))
                            .unwrap_or_else(|| fm.dash()),
                    );
                    row.push(
                        h.delta
                            .map(|d| delta(&h.unit, d))
                            .unwrap_or_else(|| fm.dash()),
                    );
                }
                row
            })
            .collect();
        let (headers, numeric): (&[&str], &[bool]) = if compared {
            (
                &["figure", "value", "previous", "change"],
                &[false, true, true, true],
            )
        } else {
            (&["figure", "value"], &[false, true])
        };
        out.push(table("headlines", headers, numeric, rows));
    }
}
