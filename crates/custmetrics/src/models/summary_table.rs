//! Per-customer summary tables made elsewhere (a warehouse query, a Spark job, lifetimes'
//! `summary_data_from_transaction_data`), so that stage 1 can run where the data lives and only
//! the small summary travels.
//!
//! - RFM summaries for BG/NBD, Pareto/NBD, MBG/NBD and Gamma-Gamma, with pymc-marketing's column
//!   names: `customer_id, frequency, recency, T[, monetary_value]` (also `x`, `t_x`, `T_cal`,
//!   `zbar`, `ID`, as lifetimes and BTYD name them). Times are in the model's time unit.
//! - Discrete histories for BG/BB: `frequency, recency, periods[, weights]` (lifetimes'
//!   `donations.csv` layout; `x`, `t_x`, `n`, `n_custs`/`count` also accepted).
//!
//! Unlike raw exports, a summary has no "reject the row and go on": a bad value in it means the
//! job that produced it is wrong, so any invalid row is an error naming the file, line, column
//! and value.

use polars::prelude::*;

use super::bgbb::DiscreteObservation;
use crate::io::read::{InputPath, csv_lines, expand_inputs, open};
use crate::metrics::rfm::{Rfm, RfmRow};
use crate::{Error, Result};

const ROW: &str = "__row";

/// One summary file, read into named columns of text.
struct Columns {
    display: String,
    csv_path: Option<std::path::PathBuf>,
    names: Vec<String>,
    frame: DataFrame,
}

impl Columns {
    fn read(input: &InputPath) -> Result<Columns> {
        let opened = open(input)?;
        let frame = opened.frame.collect().map_err(|e| Error::Format {
            path: opened.display.clone().into(),
            message: e.to_string(),
        })?;
        Ok(Columns {
            display: opened.display,
            csv_path: opened.csv_path,
            names: opened.columns,
            frame,
        })
    }

    /// The column matching one of `aliases` (case-insensitive, first alias first).
    fn find(&self, aliases: &[&str]) -> Option<String> {
        aliases.iter().find_map(|a| {
            self.names
                .iter()
                .find(|n| n.eq_ignore_ascii_case(a))
                .cloned()
        })
    }

    fn require(&self, role: &str, aliases: &[&str]) -> Result<String> {
        self.find(aliases).ok_or_else(|| Error::Format {
            path: self.display.clone().into(),
            message: format!(
                "no {role} column: expected one of {}; found {}",
                aliases.join(", "),
                self.names.join(", ")
            ),
        })
    }

    fn text(&self, name: &str) -> Result<Vec<Option<String>>> {
        let col = self
            .frame
            .column(name)
            .and_then(|c| c.cast(&DataType::String))
            .map_err(|e| Error::Format {
                path: self.display.clone().into(),
                message: e.to_string(),
            })?;
        let ca = col.str().map_err(|e| Error::Format {
            path: self.display.clone().into(),
            message: e.to_string(),
        })?;
        Ok(ca.iter().map(|v| v.map(str::to_string)).collect())
    }

    /// Where data row `i` (0-based) is, for messages: the CSV line, or the row number.
    fn locate(&self, i: usize) -> String {
        let row = self
            .frame
            .column(ROW)
            .ok()
            .and_then(|c| c.get(i).ok())
            .and_then(|v| v.extract::<u64>())
            .unwrap_or(i as u64);
        match &self.csv_path {
            Some(p) => match csv_lines(p, b',', &[row]).first().copied().flatten() {
                Some(line) => format!("line {line}"),
                None => format!("data row {}", row + 1),
            },
            None => format!("row {}", row + 1),
        }
    }

    fn numbers(&self, name: &str, check: impl Fn(f64) -> bool, what: &str) -> Result<Vec<f64>> {
        self.text(name)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let parsed = v
                    .as_deref()
                    .map(str::trim)
                    .and_then(|s| s.parse::<f64>().ok());
                match parsed {
                    Some(x) if x.is_finite() && check(x) => Ok(x),
                    _ => Err(Error::Format {
                        path: self.display.clone().into(),
                        message: format!(
                            "{}, column {name:?}: {} is not {what}",
                            self.locate(i),
                            v.map_or("an empty cell".to_string(), |s| format!("{s:?}"))
                        ),
                    }),
                }
            })
            .collect()
    }
}

fn inputs<S: AsRef<str>>(paths: &[S]) -> Result<Vec<InputPath>> {
    let inputs = expand_inputs(paths)?;
    if inputs.is_empty() {
        return Err(Error::Format {
            path: "--summary".into(),
            message: "no summary file given".into(),
        });
    }
    Ok(inputs)
}

/// Reads the columns `names` of per-customer summaries as text, one value per customer in
/// the order [`read_rfm_summary`] reads the same files (covariates for
/// [`super::covariates::fit_covariates`]).
///
/// # Errors
/// [`Error::Format`] for a file without one of the columns, naming the columns it has.
pub fn read_summary_columns<S: AsRef<str>>(
    paths: &[S],
    names: &[String],
) -> Result<Vec<super::covariates::CovariateColumn>> {
    let mut columns: Vec<super::covariates::CovariateColumn> = names
        .iter()
        .map(|n| super::covariates::CovariateColumn {
            name: n.clone(),
            values: Vec::new(),
        })
        .collect();
    for input in inputs(paths)? {
        let c = Columns::read(&input)?;
        for column in &mut columns {
            let name = c
                .find(&[column.name.as_str()])
                .ok_or_else(|| Error::Format {
                    path: c.display.clone().into(),
                    message: format!(
                        "no column {:?} for the covariates; found {}",
                        column.name,
                        c.names.join(", ")
                    ),
                })?;
            column
                .values
                .extend(c.text(&name)?.into_iter().map(Option::unwrap_or_default));
        }
    }
    Ok(columns)
}

/// Reads per-customer RFM summaries (one or more files) into an [`Rfm`] table in
/// `time_unit_days` units. Without a monetary column, monetary values are 0 (the purchase models
/// can still be fitted; Gamma-Gamma cannot).
///
/// Returns the table and whether a monetary column was present.
///
/// # Errors
/// [`Error::Format`] naming the file, line, column and value of the first invalid cell, or a
/// missing column.
pub fn read_rfm_summary<S: AsRef<str>>(paths: &[S], time_unit_days: u32) -> Result<(Rfm, bool)> {
    let mut customers = Vec::new();
    let mut all_have_spend = true;
    for input in inputs(paths)? {
        let c = Columns::read(&input)?;
        let id = c.find(&["customer_id", "id", "customer", "cust", "ID"]);
        let freq = c.require("frequency", &["frequency", "x", "frequency_cal"])?;
        let rec = c.require("recency", &["recency", "t_x", "recency_cal"])?;
        let t = c.require("T", &["T", "T_cal", "age"])?;
        let spend = c.find(&["monetary_value", "zbar", "mean_spend", "m_x", "monetary"]);
        let ids = match &id {
            Some(name) => c.text(name)?,
            None => (1..=c.frame.height())
                .map(|i| Some(i.to_string()))
                .collect(),
        };
        let freqs = c.numbers(
            &freq,
            |x| x >= 0.0 && x.fract() == 0.0,
            "a whole number ≥ 0",
        )?;
        let recs = c.numbers(&rec, |x| x >= 0.0, "a time ≥ 0")?;
        let ts = c.numbers(&t, |x| x >= 0.0, "a time ≥ 0")?;
        let spends = match &spend {
            // Negative means net refunds; Gamma-Gamma leaves such customers out, as it does
            // for one-time buyers.
            Some(name) => Some(c.numbers(name, |_| true, "an amount")?),
            None => None,
        };
        all_have_spend &= spends.is_some();
        for (i, (((id, x), r), t)) in ids.into_iter().zip(freqs).zip(recs).zip(ts).enumerate() {
            if r > t || (x == 0.0 && r != 0.0) {
                return Err(Error::Format {
                    path: c.display.clone().into(),
                    message: format!(
                        "{}: recency {r} with T {t} and frequency {x} is impossible (need recency ≤ T, and recency 0 when frequency is 0)",
                        c.locate(i)
                    ),
                });
            }
            let m = spends
                .as_ref()
                .and_then(|s| s.get(i))
                .copied()
                .unwrap_or(0.0);
            customers.push(RfmRow {
                customer_id: id.map_or_else(
                    || (i + 1).to_string().into(),
                    crate::summary::CustomerId::from,
                ),
                frequency: x as u32,
                recency: r,
                t,
                monetary_value: m,
                days_since_last: ((t - r) * f64::from(time_unit_days)).round() as u32,
                orders: x as u32 + 1,
                revenue: m * x,
                r_score: 0,
                f_score: 0,
                m_score: 0,
                segment: None,
            });
        }
    }
    Ok((
        Rfm {
            time_unit_days,
            customers,
            segments: Default::default(),
            by_segment: Vec::new(),
        },
        all_have_spend,
    ))
}

/// Reads discrete-opportunity histories for BG/BB, compressed to distinct rows with weights.
///
/// # Errors
/// As [`read_rfm_summary`], plus histories that cannot happen (frequency > recency).
pub fn read_discrete_summary<S: AsRef<str>>(
    paths: &[S],
) -> Result<(Vec<DiscreteObservation>, Vec<f64>)> {
    let mut histories = Vec::new();
    let mut weights = Vec::new();
    for input in inputs(paths)? {
        let c = Columns::read(&input)?;
        let whole = |x: f64| x >= 0.0 && x.fract() == 0.0 && x < 1e9;
        let freq = c.require("frequency", &["frequency", "x"])?;
        let rec = c.require("recency", &["recency", "t_x"])?;
        let n = c.require("periods", &["periods", "n", "n_cal"])?;
        let xs = c.numbers(&freq, whole, "a whole number ≥ 0")?;
        let rs = c.numbers(&rec, whole, "a whole number ≥ 0")?;
        let ns = c.numbers(&n, whole, "a whole number ≥ 0")?;
        let ws = match c.find(&["weights", "weight", "n_custs", "count", "customers"]) {
            Some(name) => c.numbers(&name, |w| w >= 0.0, "a count ≥ 0")?,
            None => vec![1.0; xs.len()],
        };
        for (i, (((x, r), n), w)) in xs.into_iter().zip(rs).zip(ns).zip(ws).enumerate() {
            let o = DiscreteObservation {
                frequency: x as u32,
                recency: r as u32,
                periods: n as u32,
            };
            if o.frequency > o.recency || o.recency > o.periods || (x == 0.0) != (r == 0.0) {
                return Err(Error::Format {
                    path: c.display.clone().into(),
                    message: format!(
                        "{}: frequency {x}, recency {r}, periods {n} cannot happen (need frequency ≤ recency ≤ periods, recency 0 exactly when frequency is 0)",
                        c.locate(i)
                    ),
                });
            }
            histories.push(o);
            weights.push(w);
        }
    }
    // Merge repeated histories so that the likelihood sums over distinct rows.
    let mut index = std::collections::HashMap::new();
    let (mut rows, mut ws): (Vec<DiscreteObservation>, Vec<f64>) = (Vec::new(), Vec::new());
    for (h, w) in histories.into_iter().zip(weights) {
        let i = *index
            .entry((h.frequency, h.recency, h.periods))
            .or_insert_with(|| {
                rows.push(h);
                ws.push(0.0);
                rows.len() - 1
            });
        if let Some(slot) = ws.get_mut(i) {
            *slot += w;
        }
    }
    Ok((rows, ws))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata(p: &str) -> String {
        format!("{}/../../testdata/{p}", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn reads_the_lifetimes_cdnow_summary() {
        let (rfm, spend) =
            read_rfm_summary(&[testdata("cdnow/cdnow_customers_summary.csv")], 7).unwrap();
        assert_eq!(rfm.customers.len(), 2357);
        assert!(!spend);
        let total: u32 = rfm.customers.iter().map(|c| c.frequency).sum();
        assert_eq!(total, 2457);
        let (rfm, spend) = read_rfm_summary(
            &[testdata(
                "cdnow/cdnow_customers_summary_with_transactions.csv",
            )],
            7,
        )
        .unwrap();
        assert!(spend);
        assert_eq!(rfm.customers.len(), 2357);
    }

    #[test]
    fn reads_donations_and_merges_repeats() {
        let (rows, w) = read_discrete_summary(&[testdata("donations/donations.csv")]).unwrap();
        assert_eq!(rows.len(), 22);
        assert_eq!(w.iter().sum::<f64>(), 11104.0);
        let twice = [
            testdata("donations/donations.csv"),
            testdata("donations/donations.csv"),
        ];
        let (rows, w) = read_discrete_summary(&twice).unwrap();
        assert_eq!(rows.len(), 22);
        assert_eq!(w.iter().sum::<f64>(), 22208.0);
    }

    #[test]
    fn bad_cells_name_the_line_column_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.csv");
        std::fs::write(&p, "customer_id,frequency,recency,T\na,1,2,3\nb,two,1,3\n").unwrap();
        let e = read_rfm_summary(&[p.to_str().unwrap()], 7)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3") && e.contains("frequency") && e.contains("\"two\""),
            "{e}"
        );
        std::fs::write(&p, "customer_id,frequency,recency,T\na,1,5,3\n").unwrap();
        let e = read_rfm_summary(&[p.to_str().unwrap()], 7)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("impossible"), "{e}");
        std::fs::write(&p, "customer_id,recency,T\na,1,3\n").unwrap();
        let e = read_rfm_summary(&[p.to_str().unwrap()], 7)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no frequency column"), "{e}");
    }
}
