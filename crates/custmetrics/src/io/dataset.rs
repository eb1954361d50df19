//! Loading the three tables of a job together, and the stderr accounting summary.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::load::{LoadOptions, Table, load_table};
use super::schema::TableKind;
use crate::{Error, Result};

/// The tables a job reads.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Transactions, if given.
    pub transactions: Option<Table>,
    /// Interactions, if given.
    pub interactions: Option<Table>,
    /// Customers, if given.
    pub customers: Option<Table>,
}

/// Which files to read for each table, and how.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DatasetSpec {
    /// Transactions files or globs.
    pub transactions: Vec<String>,
    /// Interactions files or globs.
    pub interactions: Vec<String>,
    /// Customers files or globs.
    pub customers: Vec<String>,
    /// Options for transactions.
    pub transactions_options: LoadOptions,
    /// Options for interactions.
    pub interactions_options: LoadOptions,
    /// Options for customers.
    pub customers_options: LoadOptions,
}

impl Dataset {
    /// Loads every table that has files.
    ///
    /// # Errors
    /// Errors from [`load_table`]; [`Error::UnknownColumn`] when a preferred column (a plain
    /// `--date-col NAME`) exists in none of the tables.
    pub fn load(spec: &DatasetSpec) -> Result<Dataset> {
        let load = |kind, files: &Vec<String>, options| -> Result<Option<Table>> {
            if files.is_empty() {
                Ok(None)
            } else {
                load_table(kind, files, options).map(Some)
            }
        };
        let data = Dataset {
            transactions: load(
                TableKind::Transactions,
                &spec.transactions,
                &spec.transactions_options,
            )?,
            interactions: load(
                TableKind::Interactions,
                &spec.interactions,
                &spec.interactions_options,
            )?,
            customers: load(
                TableKind::Customers,
                &spec.customers,
                &spec.customers_options,
            )?,
        };
        let options = [
            &spec.transactions_options,
            &spec.interactions_options,
            &spec.customers_options,
        ];
        for o in options {
            for (role, column) in &o.mapping.preferred {
                let used = data.tables().any(|t| {
                    t.files
                        .iter()
                        .any(|f| f.columns.column(*role) == Some(column.as_str()))
                });
                if !used {
                    return Err(Error::UnknownColumn {
                        table: data
                            .tables()
                            .map(|t| t.kind.name())
                            .collect::<Vec<_>>()
                            .join("/"),
                        role: role.describe().into(),
                        column: column.clone(),
                        columns: data
                            .tables()
                            .flat_map(|t| {
                                t.files.first().map(|f| {
                                    f.columns
                                        .roles
                                        .values()
                                        .chain(&f.columns.dimensions)
                                        .cloned()
                                        .collect::<Vec<_>>()
                                })
                            })
                            .flatten()
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
        }
        Ok(data)
    }

    /// The tables present.
    pub fn tables(&self) -> impl Iterator<Item = &Table> {
        [&self.transactions, &self.interactions, &self.customers]
            .into_iter()
            .flatten()
    }

    /// The same dataset without its rows: accounting, rejections, file reports and paths kept,
    /// every frame emptied. What a caller keeps when it hands the dataset to
    /// [`crate::report::Report::build_owned`], which releases the rows early.
    pub fn without_rows(&self) -> Dataset {
        let empty = |t: &Option<Table>| {
            t.as_ref().map(|t| Table {
                frame: t.frame.clear(),
                ..t.clone()
            })
        };
        Dataset {
            transactions: empty(&self.transactions),
            interactions: empty(&self.interactions),
            customers: empty(&self.customers),
        }
    }

    /// Every input file on disk (outputs must not overwrite them).
    pub fn input_paths(&self) -> Vec<PathBuf> {
        self.tables()
            .flat_map(|t| t.input_paths.iter().cloned())
            .collect()
    }

    /// A short human summary of rows read, used and rejected, with the first examples.
    pub fn accounting_summary(&self, examples: usize) -> String {
        let mut s = String::new();
        for t in self.tables() {
            let a = &t.accounting;
            let _ = write!(
                s,
                "{}: {} rows read, {} used, {} rejected",
                t.kind, a.rows_read, a.rows_used, a.rows_rejected
            );
            if !a.rejected_by_reason.is_empty() {
                let reasons: Vec<String> = a
                    .rejected_by_reason
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect();
                let _ = write!(s, " ({})", reasons.join(", "));
            }
            s.push('\n');
            for f in &t.files {
                if f.encoding == Some(super::TextEncoding::Windows1252) {
                    let _ = writeln!(s, "  {}: read as Windows-1252 text", f.file);
                }
            }
            for r in t.rejections.iter().take(examples) {
                let _ = writeln!(s, "  {r}");
            }
        }
        s
    }

    /// The first rejected row, if any (for strict mode).
    pub fn first_rejection(&self) -> Option<&super::load::Rejection> {
        self.tables().find_map(|t| t.rejections.first())
    }

    /// Writes every rejected row to a CSV file (file, line, row, column, value, reason), atomically.
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::OutputIsInput`] when `path` is one of the inputs.
    pub fn write_rejects(&self, path: &std::path::Path) -> Result<()> {
        crate::report::render::refuse_inputs(path, &self.input_paths())?;
        crate::report::render::write_atomically(path, |w| {
            let mut c = csv::Writer::from_writer(w);
            c.write_record(["table", "file", "line", "row", "column", "value", "reason"])?;
            for t in self.tables() {
                for r in &t.rejections {
                    c.write_record([
                        t.kind.name(),
                        &r.file,
                        &r.line.map(|l| l.to_string()).unwrap_or_default(),
                        &r.row.to_string(),
                        &r.column,
                        &r.value,
                        r.reason.key(),
                    ])?;
                }
            }
            c.flush()
        })
    }
}
