//! Headline figures: the handful of numbers a monthly job watches, with month-over-month deltas
//! (`--compare previous.json`) and thresholds that can fail a CI job (`--fail-if "nps < 20"`).
//!
//! "Latest period" figures are those of the period containing the observation end.

use serde::{Deserialize, Serialize};

use super::Report;
use crate::{Error, Result};

/// One headline figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    /// Stable key, used by `--fail-if` and `--compare`.
    pub key: String,
    /// Human label.
    pub label: String,
    /// This report's value (`null` when not computable).
    pub value: Option<f64>,
    /// The value in the compared report.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub previous: Option<f64>,
    /// value − previous.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub delta: Option<f64>,
    /// How to show it: `count`, `money`, `rate` (fraction), `score`, `days`.
    pub unit: String,
}

/// Every headline key with its label and unit, in report order.
pub const HEADLINE_KEYS: [(&str, &str, &str); 20] = [
    ("customers", "Customers", "count"),
    ("transactions", "Transactions", "count"),
    ("revenue", "Revenue", "money"),
    ("average_order_value", "Average order value", "money"),
    ("repeat_purchase_rate", "Repeat purchase rate", "rate"),
    ("historical_clv", "Historical CLV", "money"),
    ("retention_rate", "Retention rate (latest period)", "rate"),
    ("crr", "CRR (latest period)", "rate"),
    ("nrr", "NRR (latest period)", "rate"),
    ("grr", "GRR (latest period)", "rate"),
    (
        "churn_rate",
        "Churn rate, inactivity (latest period)",
        "rate",
    ),
    (
        "contractual_churn_rate",
        "Churn rate, cancellations (latest period)",
        "rate",
    ),
    ("median_lifetime_days", "Median customer lifetime", "days"),
    ("nps", "NPS", "score"),
    ("csat", "CSAT", "rate"),
    ("csat_mean", "CSAT mean score", "score"),
    (
        "predicted_clv_total",
        "Predicted CLV, all customers",
        "money",
    ),
    ("predicted_clv_mean", "Predicted CLV per customer", "money"),
    ("probability_alive_mean", "Mean P(alive)", "rate"),
    ("rows_rejected", "Rejected input rows", "count"),
];

/// The headline figures of a report.
pub fn headlines(r: &Report) -> Vec<Headline> {
    let latest_retention = r
        .retention
        .as_ref()
        .and_then(|ret| ret.periods.iter().rev().find(|p| p.segment.is_none()));
    let value = |key: &str| -> Option<f64> {
        match key {
            "customers" => r.overview.as_ref().map(|o| o.customers as f64),
            "transactions" => r.overview.as_ref().map(|o| o.transactions as f64),
            "revenue" => r.overview.as_ref().map(|o| o.revenue),
            "average_order_value" => r.supporting.as_ref().map(|s| s.average_order_value),
            "repeat_purchase_rate" => r.supporting.as_ref().map(|s| s.repeat_purchase_rate),
            "historical_clv" => r.supporting.as_ref().map(|s| s.historical_clv),
            "retention_rate" => latest_retention.and_then(|p| p.retention_rate),
            "crr" => latest_retention.and_then(|p| p.crr),
            "nrr" => latest_retention.and_then(|p| p.nrr),
            "grr" => latest_retention.and_then(|p| p.grr),
            "churn_rate" => r
                .churn
                .as_ref()
                .and_then(|c| c.periods.iter().rev().find(|p| p.segment.is_none()))
                .and_then(|p| p.churn_rate),
            "contractual_churn_rate" => r
                .contractual_churn
                .as_ref()
                .and_then(|c| c.last())
                .and_then(|p| p.churn_rate),
            "median_lifetime_days" => r
                .survival
                .as_ref()
                .and_then(|s| s.median_days)
                .map(f64::from),
            "nps" => r.nps.as_ref().map(|n| n.overall.score),
            "csat" => r.csat.as_ref().map(|c| c.overall.score),
            "csat_mean" => r.csat.as_ref().map(|c| c.overall.mean),
            "predicted_clv_total" => r.clv.as_ref().map(|c| c.total_clv),
            "predicted_clv_mean" => r.clv.as_ref().map(|c| c.mean_clv),
            "probability_alive_mean" => r.clv.as_ref().and_then(|c| c.alive_mean),
            "rows_rejected" => Some(r.accounting.values().map(|a| a.rows_rejected as f64).sum()),
            _ => None,
        }
    };
    HEADLINE_KEYS
        .iter()
        .map(|(key, label, unit)| Headline {
            key: (*key).into(),
            label: (*label).into(),
            value: value(key),
            previous: None,
            delta: None,
            unit: (*unit).into(),
        })
        .collect()
}

/// Fills `previous` and `delta` of each headline from a previous report's JSON.
///
/// # Errors
/// [`Error::InvalidSetting`] when the JSON is not a custmetrics report.
pub fn compare(current: &mut [Headline], previous_json: &str) -> Result<()> {
    #[derive(Deserialize)]
    struct Previous {
        schema_version: u32,
        #[serde(default)]
        headlines: Vec<Headline>,
    }
    let prev: Previous =
        serde_json::from_str(previous_json).map_err(|e| Error::InvalidSetting {
            setting: "compare".into(),
            message: format!("not a custmetrics JSON report: {e}"),
        })?;
    // Headlines have kept their layout since version 1 (version 2 changed only the CLV
    // section), so last month's report from an older version still compares.
    if !(1..=super::SCHEMA_VERSION).contains(&prev.schema_version) {
        return Err(Error::InvalidSetting {
            setting: "compare".into(),
            message: format!(
                "the previous report has schema_version {}; this version reads 1 to {}",
                prev.schema_version,
                super::SCHEMA_VERSION
            ),
        });
    }
    for h in current.iter_mut() {
        h.previous = prev
            .headlines
            .iter()
            .find(|p| p.key == h.key)
            .and_then(|p| p.value);
        h.delta = match (h.value, h.previous) {
            (Some(a), Some(b)) => Some(a - b),
            _ => None,
        };
    }
    Ok(())
}

/// A comparison operator of a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

/// A threshold such as `churn_rate > 0.05`: the job fails when it holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Threshold {
    /// Headline key.
    pub key: String,
    /// Operator.
    pub op: Op,
    /// Right-hand side.
    pub value: f64,
    /// The expression as written.
    pub text: String,
}

impl Threshold {
    /// Parses `KEY OP NUMBER` with OP one of `> >= < <= == !=`; `5%` means 0.05.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] naming the valid keys.
    pub fn parse(text: &str) -> Result<Threshold> {
        let bad = |m: String| Error::InvalidSetting {
            setting: "fail_if".into(),
            message: m,
        };
        let ops = [
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            (">", Op::Gt),
            ("<", Op::Lt),
        ];
        let (pos, sym, op) = ops
            .iter()
            .filter_map(|(sym, op)| text.find(sym).map(|p| (p, *sym, *op)))
            .min_by_key(|(p, sym, _)| (*p, std::cmp::Reverse(sym.len())))
            .ok_or_else(|| {
                bad(format!(
                    "{text:?}: expected KEY OP NUMBER, e.g. \"churn_rate > 0.05\""
                ))
            })?;
        let key = text.get(..pos).unwrap_or("").trim().to_string();
        let rhs = text.get(pos + sym.len()..).unwrap_or("").trim();
        if !HEADLINE_KEYS.iter().any(|(k, _, _)| *k == key) {
            let keys: Vec<&str> = HEADLINE_KEYS.iter().map(|(k, _, _)| *k).collect();
            return Err(bad(format!(
                "unknown figure {key:?}; use one of {}",
                keys.join(", ")
            )));
        }
        let value = match rhs.strip_suffix('%') {
            Some(p) => p.trim().parse::<f64>().map(|x| x / 100.0),
            None => rhs.parse::<f64>(),
        }
        .map_err(|_| bad(format!("{text:?}: {rhs:?} is not a number")))?;
        Ok(Threshold {
            key,
            op,
            value,
            text: text.trim().to_string(),
        })
    }

    /// Whether the threshold is crossed. A figure that could not be computed does not cross it.
    pub fn is_crossed(&self, headlines: &[Headline]) -> Option<f64> {
        let v = headlines.iter().find(|h| h.key == self.key)?.value?;
        let crossed = match self.op {
            Op::Gt => v > self.value,
            Op::Ge => v >= self.value,
            Op::Lt => v < self.value,
            Op::Le => v <= self.value,
            Op::Eq => v == self.value,
            Op::Ne => v != self.value,
        };
        crossed.then_some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(key: &str, value: f64) -> Headline {
        Headline {
            key: key.into(),
            label: key.into(),
            value: Some(value),
            previous: None,
            delta: None,
            unit: "rate".into(),
        }
    }

    #[test]
    fn thresholds_parse_and_evaluate() {
        let t = Threshold::parse("churn_rate > 0.05").unwrap();
        assert_eq!(
            (t.key.as_str(), t.op, t.value),
            ("churn_rate", Op::Gt, 0.05)
        );
        assert_eq!(t.is_crossed(&[h("churn_rate", 0.06)]), Some(0.06));
        assert_eq!(t.is_crossed(&[h("churn_rate", 0.05)]), None);
        let t = Threshold::parse("nps<=20").unwrap();
        assert_eq!((t.op, t.value), (Op::Le, 20.0));
        assert_eq!(Threshold::parse("csat < 80%").unwrap().value, 0.8);
        assert!(
            Threshold::parse("happiness > 3")
                .unwrap_err()
                .to_string()
                .contains("churn_rate")
        );
        assert!(Threshold::parse("nps > lots").is_err());
        assert!(Threshold::parse("nps 20").is_err());
    }

    #[test]
    fn compare_fills_deltas() {
        let mut now = vec![h("nps", 25.0), h("csat", 0.7)];
        let prev = r#"{"schema_version": 1, "headlines": [{"key": "nps", "label": "NPS", "value": 20.0, "unit": "score"}]}"#;
        compare(&mut now, prev).unwrap();
        assert_eq!((now[0].previous, now[0].delta), (Some(20.0), Some(5.0)));
        assert_eq!(now[1].delta, None);
        assert!(compare(&mut now, "{}").is_err());
    }
}
