//! The canonical table a load produces, and the account of where every input row went.

use std::collections::BTreeMap;
use std::path::PathBuf;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::parse::{DecimalSeparator, RejectReason};
use super::read::{FileFormat, TextEncoding};
use super::schema::{ResolvedColumns, TableKind};
use crate::Result;

/// Where the rows of one table went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounting {
    /// Data rows read from all files (header and blank lines excluded).
    /// `rows_read = rows_used + rows_excluded + rows_rejected`.
    pub rows_read: u64,
    /// Rows that went into the metrics (continuation lines of an order included).
    pub rows_used: u64,
    /// Rows that could not be read, each with a reason (listed in the rejections).
    pub rows_rejected: u64,
    /// Rejected rows by reason key (`unparsable_date`, ...).
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Readable rows left out on purpose: failed, voided, pending or test orders, refunds
    /// without a purchase, report footers.
    pub rows_excluded: u64,
    /// Excluded rows by reason key (`failed`, `voided`, ...).
    pub excluded_by_reason: BTreeMap<String, u64>,
    /// NPS and CSAT answers left out (unreadable, out of range) in rows that were used: the
    /// interaction counts, its score is null. Not part of `rows_rejected`; an answer in a row
    /// rejected for another reason is not counted again.
    pub answers_rejected: u64,
    /// Rejected answers by reason key (`unparsable_score`, `nps_out_of_range`, ...).
    pub answers_rejected_by_reason: BTreeMap<String, u64>,
}

/// `key: count, key: count` of a by-reason map, as the stderr summary, `inspect` and the
/// report's data-quality table print it.
pub fn reason_counts(by_reason: &BTreeMap<String, u64>) -> String {
    by_reason
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One rejected input row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The file, as named by the user.
    pub file: String,
    /// 1-based line in a CSV file (accounts for quoted newlines); `None` for Parquet/IPC.
    pub line: Option<u64>,
    /// 1-based data row in the file.
    pub row: u64,
    /// The column holding the offending value.
    pub column: String,
    /// The offending value as written.
    pub value: String,
    /// Why the row was not used.
    pub reason: RejectReason,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.file)?,
            None => write!(f, "{} row {}", self.file, self.row)?,
        }
        write!(
            f,
            ": column {:?}: {}: {:?}",
            self.column, self.reason, self.value
        )
    }
}

/// What was learned about one input file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileReport {
    /// The file as named by the user.
    pub file: String,
    /// Its format.
    pub format: FileFormat,
    /// CSV delimiter, as a string.
    pub delimiter: Option<String>,
    /// Columns by role, and dimensions.
    pub columns: ResolvedColumns,
    /// Date format used, per date column.
    pub date_formats: BTreeMap<String, String>,
    /// Decimal separator used, per amount column.
    pub decimal_separators: BTreeMap<String, DecimalSeparator>,
    /// Data rows in the file.
    pub rows: u64,
    /// Text encoding a CSV file was read in (transcoded to UTF-8 when Windows-1252 or UTF-16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<TextEncoding>,
    /// The sheet read, for a workbook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    /// Rows excluded on purpose, by reason key (failed, voided, report_footer, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub excluded: BTreeMap<String, u64>,
    /// Line-item rows that continue an order given on an earlier row (order id set, the
    /// order-level amount blank): used as part of that order, not as orders of their own.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub continuation_rows: u64,
    /// Blank lines (no value in any column) skipped; they are not rows.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub blank_lines: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A loaded canonical table.
#[derive(Debug, Clone)]
pub struct Table {
    /// Which table.
    pub kind: TableKind,
    /// Canonical columns plus dimensions; transactions are one row per order.
    pub frame: DataFrame,
    /// Row accounting over all files.
    pub accounting: Accounting,
    /// All rejected rows, in file order.
    pub rejections: Vec<Rejection>,
    /// The rejected NPS and CSAT answers of used rows (see [`Accounting::answers_rejected`]),
    /// in file order.
    pub answer_rejections: Vec<Rejection>,
    /// Per-file details.
    pub files: Vec<FileReport>,
    /// Segment dimension columns present in `frame`.
    pub dimensions: Vec<String>,
    /// Paths of the input files on disk (outputs must never overwrite them).
    pub input_paths: Vec<PathBuf>,
    /// Keys of the order lines read, sorted, when asked ([`super::LoadOptions::keep_line_keys`];
    /// empty otherwise): a summary store keeps them to recognise the lines of a later export
    /// that it already holds.
    pub line_keys: Vec<u128>,
}

/// The accounting of two partitions of the same files: counts added, rejections joined, each
/// file's rows added. Every partition detects a file's date formats and decimal separators from
/// the same first values of the whole file, so they agree; a disagreement would mean one file
/// read two ways, and is refused rather than reported as one.
pub(crate) fn merge_partition_tables(mut acc: Table, part: Table) -> Result<Table> {
    let a = &mut acc.accounting;
    a.rows_read += part.accounting.rows_read;
    a.rows_used += part.accounting.rows_used;
    a.rows_rejected += part.accounting.rows_rejected;
    for (reason, n) in part.accounting.rejected_by_reason {
        *a.rejected_by_reason.entry(reason).or_default() += n;
    }
    a.rows_excluded += part.accounting.rows_excluded;
    for (reason, n) in part.accounting.excluded_by_reason {
        *a.excluded_by_reason.entry(reason).or_default() += n;
    }
    a.answers_rejected += part.accounting.answers_rejected;
    for (reason, n) in part.accounting.answers_rejected_by_reason {
        *a.answers_rejected_by_reason.entry(reason).or_default() += n;
    }
    acc.rejections.extend(part.rejections);
    acc.answer_rejections.extend(part.answer_rejections);
    if !part.line_keys.is_empty() {
        acc.line_keys.extend(part.line_keys);
        acc.line_keys.sort_unstable();
    }
    for (file, p) in acc.files.iter_mut().zip(part.files) {
        if p.rows > 0 && file.rows == 0 {
            file.date_formats = p.date_formats;
            file.decimal_separators = p.decimal_separators;
        } else if p.rows > 0 {
            let conflict = p
                .date_formats
                .iter()
                .find(|(c, f)| file.date_formats.get(*c).is_some_and(|g| g != *f))
                .map(|(c, f)| (c.clone(), f.clone(), file.date_formats.get(c).cloned()))
                .or_else(|| {
                    p.decimal_separators
                        .iter()
                        .find(|(c, d)| file.decimal_separators.get(*c).is_some_and(|e| e != *d))
                        .map(|(c, d)| {
                            (
                                c.clone(),
                                format!("{d:?}"),
                                file.decimal_separators.get(c).map(|e| format!("{e:?}")),
                            )
                        })
                });
            if let Some((column, one, other)) = conflict {
                return Err(crate::Error::InvalidSetting {
                    setting: "partitions".into(),
                    message: format!(
                        "{}: column {column:?} reads as {} in one partition and as {one} in another; pass --date-format or --decimal",
                        file.file,
                        other.unwrap_or_default()
                    ),
                });
            }
            for (c, f) in p.date_formats {
                file.date_formats.entry(c).or_insert(f);
            }
            for (c, d) in p.decimal_separators {
                file.decimal_separators.entry(c).or_insert(d);
            }
        }
        file.rows += p.rows;
        file.continuation_rows += p.continuation_rows;
        file.blank_lines += p.blank_lines;
        for (reason, n) in p.excluded {
            *file.excluded.entry(reason).or_default() += n;
        }
    }
    Ok(acc)
}
