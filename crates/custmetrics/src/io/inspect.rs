//! `inspect`: what custmetrics sees in a file, before any metric is computed.

use std::fmt::Write as _;

use polars::prelude::*;
use serde::Serialize;

use super::load::{Accounting, FileReport, LoadOptions, Rejection, load_inputs};
use super::read::InputPath;
use super::schema::{Role, TableKind, col};
use crate::period::date_from_days;
use crate::{Error, Result};

/// What a file holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inspection {
    /// The table kind the file was read as.
    pub table: TableKind,
    /// Format, delimiter, columns by role, date formats.
    pub file: FileReport,
    /// Row accounting.
    pub accounting: Accounting,
    /// Distinct customers among the used rows.
    pub customers: u64,
    /// First date among the used rows.
    pub first_date: Option<String>,
    /// Last date among the used rows.
    pub last_date: Option<String>,
    /// The first rejected rows and rejected answers, in file order.
    pub problems: Vec<Rejection>,
}

/// Inspects one input. Without `kind`, the file is tried as transactions, then interactions,
/// then customers, and the first that fits is reported.
///
/// # Errors
/// The error of the last kind tried when none fits.
pub fn inspect(
    input: &InputPath,
    kind: Option<TableKind>,
    options: &LoadOptions,
) -> Result<Inspection> {
    let kinds = match kind {
        Some(k) => vec![k],
        None => vec![
            TableKind::Transactions,
            TableKind::Interactions,
            TableKind::Customers,
        ],
    };
    let mut last_err = None;
    for k in kinds {
        match load_inputs(k, std::slice::from_ref(input), options) {
            Ok(t) => {
                let date_col = if k == TableKind::Customers {
                    col::SIGNUP_DATE
                } else {
                    col::DATE
                };
                let names = t.frame.get_column_names_owned();
                let has = |c: &str| names.iter().any(|n| n.as_str() == c);
                let mut aggs = vec![
                    col(col::CUSTOMER_ID)
                        .n_unique()
                        .cast(DataType::UInt64)
                        .alias("customers"),
                ];
                if has(date_col) {
                    aggs.push(col(date_col).cast(DataType::Int32).min().alias("first"));
                    aggs.push(col(date_col).cast(DataType::Int32).max().alias("last"));
                }
                let df = t.frame.clone().lazy().select(aggs).collect()?;
                let get_date = |name: &str| -> Option<String> {
                    let c = df.column(name).ok()?;
                    let v = c.i32().ok()?.get(0)?;
                    Some(date_from_days(v).to_string())
                };
                let customers = df
                    .column("customers")
                    .ok()
                    .and_then(|c| c.u64().ok()?.get(0))
                    .unwrap_or(0);
                let file = t
                    .files
                    .into_iter()
                    .next()
                    .ok_or_else(|| Error::InsufficientData {
                        what: "inspect".into(),
                        message: "no file was read".into(),
                    })?;
                return Ok(Inspection {
                    table: k,
                    file,
                    accounting: t.accounting,
                    customers,
                    first_date: get_date("first"),
                    last_date: get_date("last"),
                    problems: first_problems(t.rejections, t.answer_rejections, 10),
                });
            }
            Err(e @ (Error::Io { .. } | Error::Format { .. } | Error::NoMatch { .. })) => {
                return Err(e);
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or(Error::InsufficientData {
        what: "inspect".into(),
        message: "nothing to inspect".into(),
    }))
}

/// The first `n` of the rejected rows and answers (of one file), in row order.
fn first_problems(rows: Vec<Rejection>, answers: Vec<Rejection>, n: usize) -> Vec<Rejection> {
    let mut all: Vec<Rejection> = rows.into_iter().chain(answers).collect();
    all.sort_by_key(|r| r.row);
    all.truncate(n);
    all
}

impl Inspection {
    /// The row accounting in one line: `7593 read, 7593 used, 0 rejected`, then the excluded rows
    /// and rejected answers when there are some.
    pub(crate) fn rows_summary(&self) -> String {
        let a = &self.accounting;
        let mut s = format!(
            "{} read, {} used, {} rejected",
            a.rows_read, a.rows_used, a.rows_rejected
        );
        if a.rows_excluded > 0 {
            let reasons = super::load::reason_counts(&a.excluded_by_reason);
            let _ = write!(s, ", {} excluded ({})", a.rows_excluded, reasons);
        }
        if a.answers_rejected > 0 {
            let _ = write!(s, "; {} answers rejected", a.answers_rejected);
        }
        s
    }

    /// What else is known about the column read for `role`, each part in parentheses after a
    /// space: its date format or decimal separator, and the other columns that could play the
    /// role. Empty when nothing is.
    pub(crate) fn column_details(&self, role: Role, column: &str) -> String {
        let f = &self.file;
        let mut extra = String::new();
        if let Some(fmt) = f.date_formats.get(column) {
            extra = format!(" ({fmt})");
        }
        if let Some(d) = f.decimal_separators.get(column) {
            extra = format!(
                " (decimal {})",
                if *d == super::DecimalSeparator::Comma {
                    "comma"
                } else {
                    "point"
                }
            );
        }
        let others = f.columns.alternatives(role);
        if !others.is_empty() {
            let others: Vec<String> = others.iter().map(|c| format!("{c:?}")).collect();
            extra.push_str(&format!(" (also possible: {})", others.join(", ")));
        }
        extra
    }

    /// A plain-text description for the terminal.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let f = &self.file;
        let _ = writeln!(s, "{}", f.file);
        let _ = writeln!(s, "  format      {}", f.format.name());
        if let Some(sheet) = &f.sheet {
            let _ = writeln!(s, "  sheet       {sheet}");
        }
        if let Some(d) = &f.delimiter {
            let _ = writeln!(s, "  delimiter   {d}");
        }
        if let Some(e) = f.encoding {
            let _ = writeln!(s, "  encoding    {}", e.name());
        }
        let _ = writeln!(s, "  read as     {}", self.table);
        let _ = writeln!(s, "  rows        {}", self.rows_summary());
        if f.continuation_rows > 0 {
            let _ = writeln!(
                s,
                "  line items  {} rows continue an order of an earlier row",
                f.continuation_rows
            );
        }
        if f.blank_lines > 0 {
            let _ = writeln!(s, "  blank lines {}", f.blank_lines);
        }
        let _ = writeln!(s, "  customers   {}", self.customers);
        if let (Some(a), Some(b)) = (&self.first_date, &self.last_date) {
            let _ = writeln!(s, "  dates       {a} to {b}");
        }
        let _ = writeln!(s, "  columns");
        for (role, column) in &f.columns.roles {
            let extra = self.column_details(*role, column);
            let _ = writeln!(s, "    {column:<24} {}{extra}", role.describe());
        }
        // Score roles without a column, with the columns that look like their answers.
        for (role, candidates) in &f.columns.alternatives {
            if f.columns.column(*role).is_none() {
                let names: Vec<String> = candidates.iter().map(|c| format!("{c:?}")).collect();
                let _ = writeln!(
                    s,
                    "    no {} column; possible: {} (set {})",
                    role.describe(),
                    names.join(", "),
                    role.flag()
                );
            }
        }
        for d in &f.columns.dimensions {
            let _ = writeln!(s, "    {d:<24} dimension");
        }
        if !self.accounting.rejected_by_reason.is_empty()
            || !self.accounting.answers_rejected_by_reason.is_empty()
        {
            let _ = writeln!(s, "  problems");
            for (k, v) in &self.accounting.rejected_by_reason {
                let _ = writeln!(s, "    {k}: {v} rows");
            }
            for (k, v) in &self.accounting.answers_rejected_by_reason {
                let _ = writeln!(s, "    {k}: {v} answers (rows used)");
            }
            for p in &self.problems {
                let _ = writeln!(s, "    {p}");
            }
        }
        s
    }
}
