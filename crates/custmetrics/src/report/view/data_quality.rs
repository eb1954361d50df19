//! Data quality: rows read, used and rejected per input table, with the reasons.

use std::collections::BTreeMap;

use super::{Block, table};
use crate::io::Accounting;

/// The accounting table (nothing when no table was read).
pub(super) fn view(accounting: &BTreeMap<String, Accounting>, out: &mut Vec<Block<'_>>) {
    if accounting.is_empty() {
        return;
    }
    out.push(Block::Heading("Data quality".into()));
    let rows = accounting
        .iter()
        .map(|(t, a)| {
            use crate::io::load::reason_counts;
            let mut reasons = reason_counts(&a.rejected_by_reason);
            // Rows left out on purpose and answers rejected in used rows are no rejected
            // rows: said apart (only when there are some).
            let mut also = |label: &str, by_reason| {
                if !reasons.is_empty() {
                    reasons.push_str("; ");
                }
                reasons.push_str(&format!("{label}: {}", reason_counts(by_reason)));
            };
            if a.rows_excluded > 0 {
                also("excluded", &a.excluded_by_reason);
            }
            if a.answers_rejected > 0 {
                also("answers only, rows used", &a.answers_rejected_by_reason);
            }
            vec![
                t.clone(),
                a.rows_read.to_string(),
                a.rows_used.to_string(),
                a.rows_rejected.to_string(),
                reasons,
            ]
        })
        .collect();
    out.push(table(
        "accounting",
        &[
            "table",
            "rows read",
            "used",
            "rejected",
            "rejected by reason",
        ],
        &[false, true, true, true, false],
        rows,
    ));
}
