//! What a row of a transactions export *is*: a purchase, money given back, or something that is
//! not a sale at all (a failed charge, a voided or pending order, a test order, a report footer).
//!
//! Exports say it in a status column whose values differ by tool (Stripe `Paid` / `Failed` /
//! `Refunded`, Shopify `paid` / `voided` / `partially_refunded`, WooCommerce `completed` /
//! `on-hold`, CRMs `Closed Won` / `Closed Lost`). Values are matched after lowercasing and
//! dropping everything but letters and digits, against the built-in list below; a value that is
//! not on the list (nor in the user's `[transactions.statuses]`) is an error, never a guess.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The meaning of a status value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseStatus {
    /// Money came in: a purchase at its full amount (less a refunded-amount column, if any).
    Paid,
    /// Money came in and all of it went back: a purchase whose revenue is zero (its amount less
    /// the refunded amount, which is the whole amount when the export has no such column).
    Refunded,
    /// Money came in and part of it went back: a purchase whose revenue is its amount less the
    /// refunded-amount column (required: without it the refund is unknown).
    PartiallyRefunded,
    /// Not paid yet (authorised, on hold, awaiting payment): not a purchase; excluded.
    Pending,
    /// The payment failed or was declined: not a purchase; excluded.
    Failed,
    /// Cancelled or voided before money changed hands: not a purchase; excluded.
    Voided,
    /// A test order: excluded.
    Test,
}

impl PurchaseStatus {
    /// Whether rows with this status are purchases (the rest are excluded).
    pub fn is_purchase(self) -> bool {
        matches!(
            self,
            PurchaseStatus::Paid | PurchaseStatus::Refunded | PurchaseStatus::PartiallyRefunded
        )
    }

    /// The exclusion of a row with this status, if it is excluded.
    pub fn exclusion(self) -> Option<ExcludeReason> {
        match self {
            PurchaseStatus::Pending => Some(ExcludeReason::Pending),
            PurchaseStatus::Failed => Some(ExcludeReason::Failed),
            PurchaseStatus::Voided => Some(ExcludeReason::Voided),
            PurchaseStatus::Test => Some(ExcludeReason::TestOrder),
            _ => None,
        }
    }

    /// The built-in meaning of a status value as the common tools write it, after
    /// [`normalise_status`].
    pub fn builtin(normalised: &str) -> Option<PurchaseStatus> {
        BUILTIN_STATUSES
            .iter()
            .find(|(_, values)| values.contains(&normalised))
            .map(|(status, _)| *status)
    }

    /// The status's name in settings and JSON (`paid`, `partially_refunded`, `test`).
    pub fn key(self) -> &'static str {
        match self {
            PurchaseStatus::Paid => "paid",
            PurchaseStatus::Refunded => "refunded",
            PurchaseStatus::PartiallyRefunded => "partially_refunded",
            PurchaseStatus::Pending => "pending",
            PurchaseStatus::Failed => "failed",
            PurchaseStatus::Voided => "voided",
            PurchaseStatus::Test => "test",
        }
    }
}

/// The built-in status values, normalised ([`normalise_status`]), by meaning. Data rather than
/// a `match` so that the SQL of stage 1 on an engine is generated from the same list.
pub(crate) const BUILTIN_STATUSES: &[(PurchaseStatus, &[&str])] = &[
    (
        PurchaseStatus::Paid,
        &[
            "paid",
            "succeeded",
            "success",
            "successful",
            "complete",
            "completed",
            "captured",
            "settled",
            "approved",
            "processing",
            "processed",
            "shipped",
            "delivered",
            "fulfilled",
            "closedwon",
            "won",
            "bezahlt",
            "pagado",
            "paye",
        ],
    ),
    (
        PurchaseStatus::Refunded,
        &[
            "refunded",
            "fullyrefunded",
            "reversed",
            "returned",
            "chargeback",
            "erstattet",
            "reembolsado",
            "rembourse",
        ],
    ),
    (
        PurchaseStatus::PartiallyRefunded,
        &["partiallyrefunded", "partialrefund", "partiallyreturned"],
    ),
    (
        PurchaseStatus::Pending,
        &[
            "pending",
            "authorized",
            "authorised",
            "unpaid",
            "onhold",
            "awaitingpayment",
            "partiallypaid",
            "open",
            "draft",
            "incomplete",
            "requirespaymentmethod",
            "requiresaction",
            "requirescapture",
            "requiresconfirmation",
            "uncaptured",
            "offen",
            "pendiente",
        ],
    ),
    (
        PurchaseStatus::Failed,
        &[
            "failed",
            "declined",
            "error",
            "blocked",
            "disputedlost",
            "closedlost",
            "lost",
            "fehlgeschlagen",
            "fallido",
        ],
    ),
    (
        PurchaseStatus::Voided,
        &[
            "voided",
            "void",
            "cancelled",
            "canceled",
            "expired",
            "abandoned",
            "trash",
            "storniert",
            "cancelado",
            "annule",
        ],
    ),
    (PurchaseStatus::Test, &["test", "testorder"]),
];

/// Normalises a status value for matching: lowercase letters and digits only, so that
/// `Partially Refunded`, `partially_refunded` and `PARTIALLY-REFUNDED` are one value.
pub fn normalise_status(value: &str) -> String {
    value
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Resolves status values: the user's mapping first (keys normalised), then the built-in list.
#[derive(Debug, Clone, Default)]
pub(crate) struct StatusMap {
    user: BTreeMap<String, PurchaseStatus>,
}

impl StatusMap {
    pub(crate) fn new(user: &BTreeMap<String, PurchaseStatus>) -> StatusMap {
        StatusMap {
            user: user
                .iter()
                .map(|(k, v)| (normalise_status(k), *v))
                .collect(),
        }
    }

    pub(crate) fn get(&self, value: &str) -> Option<PurchaseStatus> {
        let key = normalise_status(value);
        self.user
            .get(&key)
            .copied()
            .or_else(|| PurchaseStatus::builtin(&key))
            // WooCommerce's database names: `wc-completed`, `wc-on-hold`.
            .or_else(|| key.strip_prefix("wc").and_then(PurchaseStatus::builtin))
    }
}

/// Why a readable row was deliberately left out (as opposed to rejected as unreadable). The
/// snake_case name is the key used in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ExcludeReason {
    /// A payment not yet made (pending, authorised, on hold).
    Pending,
    /// A failed or declined payment.
    Failed,
    /// A voided or cancelled order.
    Voided,
    /// A test order.
    TestOrder,
    /// A refund of a customer with no purchase in the table (the purchase is outside the
    /// export): not a customer of this data, and no purchase to take the money from.
    RefundWithoutPurchase,
    /// A line of the summary block some CRM reports end with (`Grand Totals`, `Generated by`,
    /// copyright lines), after a blank line.
    ReportFooter,
}

impl ExcludeReason {
    /// The stable snake_case key.
    pub fn key(self) -> &'static str {
        match self {
            ExcludeReason::Pending => "pending",
            ExcludeReason::Failed => "failed",
            ExcludeReason::Voided => "voided",
            ExcludeReason::TestOrder => "test_order",
            ExcludeReason::RefundWithoutPurchase => "refund_without_purchase",
            ExcludeReason::ReportFooter => "report_footer",
        }
    }
}

impl std::fmt::Display for ExcludeReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_of_common_tools() {
        let map = StatusMap::default();
        for (v, s) in [
            ("Paid", PurchaseStatus::Paid),
            ("succeeded", PurchaseStatus::Paid),
            ("Failed", PurchaseStatus::Failed),
            ("Refunded", PurchaseStatus::Refunded),
            ("partially_refunded", PurchaseStatus::PartiallyRefunded),
            ("Partially Refunded", PurchaseStatus::PartiallyRefunded),
            ("voided", PurchaseStatus::Voided),
            ("on-hold", PurchaseStatus::Pending),
            ("Closed Won", PurchaseStatus::Paid),
            ("Closed Lost", PurchaseStatus::Failed),
            ("wc-completed", PurchaseStatus::Paid),
        ] {
            assert_eq!(map.get(v), Some(s), "{v}");
        }
        assert_eq!(map.get("in progress"), None);
        let user = BTreeMap::from([("In Progress".to_string(), PurchaseStatus::Pending)]);
        let map = StatusMap::new(&user);
        assert_eq!(map.get("in_progress"), Some(PurchaseStatus::Pending));
        assert!(PurchaseStatus::Refunded.is_purchase());
        assert_eq!(
            PurchaseStatus::Failed.exclusion(),
            Some(ExcludeReason::Failed)
        );
    }
}
