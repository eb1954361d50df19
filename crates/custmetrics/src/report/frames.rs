//! The report's tables as typed polars `DataFrame`s, for embedders who continue in polars (or,
//! with the `arrow` feature, in arrow-rs via `io::arrow::to_record_batch`; not a link, which
//! would be broken in docs built without the feature).
//!
//! Each table is built from the same rows the JSON renderer serialises, so the column names are
//! the JSON keys and the two can never disagree. Numbers become `Float64` (or `Int64` when every
//! value is a whole number that fits), text `String`, booleans `Boolean`, missing values null;
//! nested objects are kept as JSON text.

use polars::prelude::*;
use serde::Serialize;
use serde_json::Value;

use super::Report;
use crate::{Error, Result};

/// Builds a `DataFrame` from serialisable rows (structs with named fields). Column order is the
/// field order of the first row; keys first seen later are appended.
///
/// # Errors
/// [`Error::InvalidSetting`] when the rows do not serialise to JSON objects.
pub fn rows_to_dataframe<T: Serialize>(rows: &[T]) -> Result<DataFrame> {
    let not_rows = |m: String| Error::InvalidSetting {
        setting: "table".into(),
        message: m,
    };
    let objects: Vec<serde_json::Map<String, Value>> = rows
        .iter()
        .map(|r| match serde_json::to_value(r) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(other) => Err(not_rows(format!(
                "a row serialised as {other}, not an object"
            ))),
            Err(e) => Err(not_rows(e.to_string())),
        })
        .collect::<Result<_>>()?;
    let mut names: Vec<String> = Vec::new();
    for o in &objects {
        for k in o.keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    let columns = names
        .iter()
        .map(|name| {
            let values: Vec<&Value> = objects
                .iter()
                .map(|o| o.get(name).unwrap_or(&Value::Null))
                .collect();
            column(name, &values)
        })
        .collect::<Vec<_>>();
    Ok(DataFrame::new(objects.len(), columns)?)
}

fn column(name: &str, values: &[&Value]) -> Column {
    let present = || values.iter().filter(|v| !v.is_null());
    if present().all(|v| v.is_boolean()) {
        let v: Vec<Option<bool>> = values.iter().map(|v| v.as_bool()).collect();
        return Column::new(name.into(), v);
    }
    if present().all(|v| v.is_i64() || v.is_u64() && v.as_i64().is_some()) {
        let v: Vec<Option<i64>> = values.iter().map(|v| v.as_i64()).collect();
        return Column::new(name.into(), v);
    }
    if present().all(|v| v.is_number()) {
        let v: Vec<Option<f64>> = values.iter().map(|v| v.as_f64()).collect();
        return Column::new(name.into(), v);
    }
    let v: Vec<Option<String>> = values
        .iter()
        .map(|v| match v {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        })
        .collect();
    Column::new(name.into(), v)
}

impl Report {
    /// The report's tables as `DataFrame`s, by name: `retention_periods`, `retention_cohorts`,
    /// `churn_periods`, `at_risk`, `survival_curve`, `nps`, `csat`, `rfm_segments`,
    /// `rfm_customers`, `cohort_value`, `clv_customers`, `headlines` (those the report has).
    ///
    /// # Errors
    /// Polars errors building a frame.
    pub fn to_dataframes(&self) -> Result<Vec<(String, DataFrame)>> {
        let mut out = Vec::new();
        let mut add = |name: &str, df: Result<DataFrame>| -> Result<()> {
            let df = df?;
            if df.height() > 0 {
                out.push((name.to_string(), df));
            }
            Ok(())
        };
        if let Some(r) = &self.retention {
            add("retention_periods", rows_to_dataframe(&r.periods))?;
            add("retention_cohorts", rows_to_dataframe(&r.cohorts))?;
        }
        if let Some(c) = &self.churn {
            add("churn_periods", rows_to_dataframe(&c.periods))?;
            add("at_risk", rows_to_dataframe(&c.at_risk))?;
        }
        if let Some(s) = &self.survival {
            add("survival_curve", rows_to_dataframe(&s.curve))?;
        }
        if let Some(n) = &self.nps {
            add("nps", rows_to_dataframe(&n.by))?;
        }
        if let Some(c) = &self.csat {
            add("csat", rows_to_dataframe(&c.by))?;
        }
        if let Some(r) = &self.rfm {
            let segments: Vec<_> = r
                .segments
                .iter()
                .map(|(segment, customers)| serde_json::json!({"segment": segment, "customers": customers}))
                .collect();
            add("rfm_segments", rows_to_dataframe(&segments))?;
            add("rfm_customers", rows_to_dataframe(&r.customers))?;
        }
        if let Some(s) = &self.supporting {
            add("cohort_value", rows_to_dataframe(&s.by_cohort))?;
        }
        if let Some(c) = &self.clv {
            add("clv_customers", rows_to_dataframe(&c.ranked))?;
        }
        add("headlines", rows_to_dataframe(&self.headlines))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row {
        name: &'static str,
        n: u32,
        x: Option<f64>,
        ok: bool,
    }

    #[test]
    fn typed_columns_from_rows() {
        let df = rows_to_dataframe(&[
            Row {
                name: "a",
                n: 1,
                x: Some(0.5),
                ok: true,
            },
            Row {
                name: "b",
                n: 2,
                x: None,
                ok: false,
            },
        ])
        .unwrap();
        let names: Vec<&str> = df.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(names, ["name", "n", "x", "ok"]);
        assert_eq!(df.column("n").unwrap().dtype(), &DataType::Int64);
        assert_eq!(df.column("x").unwrap().dtype(), &DataType::Float64);
        assert_eq!(df.column("x").unwrap().null_count(), 1);
        assert_eq!(df.column("ok").unwrap().dtype(), &DataType::Boolean);
        assert_eq!(rows_to_dataframe::<Row>(&[]).unwrap().height(), 0);
    }
}
