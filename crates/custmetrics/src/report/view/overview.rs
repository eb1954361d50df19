//! The overview: the data's size and span, the report's settings, and interactions by channel.

use super::{Block, Fmt, figures, table};
use crate::report::{Overview, ReportSettings};

/// The overview's figures and its interactions-by-channel table.
pub(super) fn view(
    o: &Overview,
    settings: &ReportSettings,
    generated_at: Option<&str>,
    fm: Fmt,
    out: &mut Vec<Block<'_>>,
) {
    out.push(Block::Heading("Overview".into()));
    let mut pairs = vec![
        ("Customers", o.customers.to_string()),
        ("Transactions", o.transactions.to_string()),
        ("Revenue", fm.money(o.revenue)),
        (
            "First date",
            o.first_date.clone().unwrap_or_else(|| fm.dash()),
        ),
        (
            "Last date",
            o.last_date.clone().unwrap_or_else(|| fm.dash()),
        ),
    ];
    if let Some(i) = o.interactions {
        pairs.push(("Interactions", i.to_string()));
    }
    pairs.push(("Period", settings.period.clone()));
    if let Some(a) = &settings.as_of {
        pairs.push(("As of", a.clone()));
    }
    if let Some(t) = generated_at {
        pairs.push(("Generated", t.to_string()));
    }
    out.push(figures(&pairs));
    if !o.interactions_by_channel.is_empty() {
        out.push(table(
            "interactions_by_channel",
            &["channel", "interactions", "customers"],
            &[false, true, true],
            o.interactions_by_channel
                .iter()
                .map(|c| {
                    vec![
                        c.channel.clone(),
                        c.interactions.to_string(),
                        c.customers.to_string(),
                    ]
                })
                .collect(),
        ));
    }
}
