//! Loading the three tables of a job together, and the stderr accounting summary.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use super::load::{LoadOptions, Partition, Table, load_opened, load_table, open_inputs};
use super::read::{OpenedFile, expand_inputs};
use super::schema::{Role, TableKind};
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
    /// Transactions left on disk, read in customer partitions by the report's stage 1
    /// ([`DatasetSpec::transaction_partitions`]); `transactions` is then `None` until the report
    /// fills it with their accounting.
    pub deferred_transactions: Option<DeferredTransactions>,
}

/// Transactions to be read one customer partition at a time: export files (see
/// [`super::load::Partition`]), or another source of rows such as a summary store. Files are
/// opened once: stdin is spooled and gzip decompressed a single time, and every partition
/// scans the same copy.
#[derive(Debug, Clone)]
pub struct DeferredTransactions {
    source: Source,
    /// The whole job's spec: how to read the transactions (the partition is set per pass), the
    /// number of partitions, and the other tables' column choices (checked once the first
    /// partition is read).
    pub spec: DatasetSpec,
}

#[derive(Debug, Clone)]
enum Source {
    Files(Arc<Vec<OpenedFile>>),
    Rows(Arc<dyn PartitionedRows>),
}

/// Transaction rows held by a layer above `io` (a summary store) that can hand them out one
/// customer partition at a time.
pub(crate) trait PartitionedRows: std::fmt::Debug + Send + Sync {
    /// The rows of the customers in partition `index` of `count`, as a [`Table`]. The
    /// partitions must be customer-disjoint, and together hold every row once; the table's
    /// accounting (rows, rejections, files) must be counted once over the partitions (e.g. all
    /// of it with partition 0).
    fn load_partition(&self, index: u32, count: u32) -> Result<Table>;

    /// The source itself, so that the layer that made it can reach what else it offers (a
    /// store's purchase days, read without decoding them into rows).
    fn as_any(&self) -> &dyn std::any::Any;
}

impl DeferredTransactions {
    /// The number of partitions.
    pub fn partitions(&self) -> u32 {
        self.spec.transaction_partitions.max(1)
    }

    /// The other layer's source of rows, when the rows are not export files.
    pub(crate) fn rows(&self) -> Option<&dyn PartitionedRows> {
        match &self.source {
            Source::Files(_) => None,
            Source::Rows(rows) => Some(rows.as_ref()),
        }
    }

    /// Rows of another layer, read in `partitions` customer partitions.
    pub(crate) fn from_rows(rows: Arc<dyn PartitionedRows>, partitions: u32) -> Self {
        DeferredTransactions {
            source: Source::Rows(rows),
            spec: DatasetSpec {
                transaction_partitions: partitions,
                ..DatasetSpec::default()
            },
        }
    }

    /// Loads partition `index` of [`DeferredTransactions::partitions`]: the rows of the
    /// customers in it, with their accounting (as [`super::load_table`] for those rows).
    ///
    /// # Errors
    /// As [`super::load_table`].
    pub fn load_partition(&self, index: u32) -> Result<Table> {
        let opened = match &self.source {
            Source::Files(opened) => opened,
            Source::Rows(rows) => return rows.load_partition(index, self.partitions()),
        };
        let mut options = self.spec.transactions_options.clone();
        options.partition = Some(Partition {
            index,
            count: self.partitions(),
        });
        load_opened(TableKind::Transactions, opened, &options)
    }
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
    /// Read the transactions in this many customer partitions, one after another, during the
    /// report's stage 1 instead of loading them whole: the rows held at a time (and stage 1's
    /// working memory) divide by about this number, and every partition reads the files again.
    /// 0 and 1 load the table whole.
    pub transaction_partitions: u32,
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
        let deferred_transactions =
            if spec.transaction_partitions > 1 && !spec.transactions.is_empty() {
                Some(DeferredTransactions {
                    source: Source::Files(Arc::new(open_inputs(
                        &expand_inputs(&spec.transactions)?,
                        &spec.transactions_options,
                    )?)),
                    spec: spec.clone(),
                })
            } else {
                None
            };
        let data = Dataset {
            transactions: match deferred_transactions {
                Some(_) => None,
                None => load(
                    TableKind::Transactions,
                    &spec.transactions,
                    &spec.transactions_options,
                )?,
            },
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
            deferred_transactions,
        };
        // With deferred transactions the check waits for their first partition (the report's).
        if data.deferred_transactions.is_none() {
            data.check_preferred_columns(spec)?;
        }
        Ok(data)
    }

    /// Fails when a preferred column (a plain `--date-col NAME`, meant for whichever table has
    /// it) is used by none of the tables.
    ///
    /// # Errors
    /// [`Error::UnknownColumn`] naming the tables' columns.
    pub fn check_preferred_columns(&self, spec: &DatasetSpec) -> Result<()> {
        let data = self;
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
        Ok(())
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
            deferred_transactions: self.deferred_transactions.clone(),
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
                let reasons = super::load::reason_counts(&a.rejected_by_reason);
                let _ = write!(s, " ({})", reasons);
            }
            if a.rows_excluded > 0 {
                let reasons = super::load::reason_counts(&a.excluded_by_reason);
                let _ = write!(s, ", {} excluded ({})", a.rows_excluded, reasons);
            }
            if a.answers_rejected > 0 {
                let reasons = super::load::reason_counts(&a.answers_rejected_by_reason);
                let _ = write!(
                    s,
                    "; {} answers rejected, their rows used ({})",
                    a.answers_rejected, reasons
                );
            }
            s.push('\n');
            for f in &t.files {
                // Decisions taken on the export's meaning are printed, never silent.
                if let Some(status) = f.columns.column(super::Role::Status) {
                    let _ = writeln!(
                        s,
                        "  {}: purchases are the rows whose {status:?} is paid or refunded; pending, failed, voided and test orders are excluded",
                        f.file
                    );
                }
                if let Some(refunded) = f.columns.column(super::Role::RefundedAmount) {
                    let _ = writeln!(s, "  {}: revenue is the amount less {refunded:?}", f.file);
                }
                if f.continuation_rows > 0 {
                    let _ = writeln!(
                        s,
                        "  {}: {} line-item rows continue an order of an earlier row (order-level amount blank): counted in that order",
                        f.file, f.continuation_rows
                    );
                }
                if f.blank_lines > 0 {
                    let _ = writeln!(s, "  {}: {} blank lines skipped", f.file, f.blank_lines);
                }
            }
            for f in &t.files {
                match f.encoding {
                    Some(super::TextEncoding::Windows1252) => {
                        let _ = writeln!(s, "  {}: read as Windows-1252 text", f.file);
                    }
                    Some(e @ (super::TextEncoding::Utf16Le | super::TextEncoding::Utf16Be)) => {
                        let _ =
                            writeln!(s, "  {}: read as {} text", f.file, e.name().to_uppercase());
                    }
                    _ => {}
                }
            }
            for r in t
                .rejections
                .iter()
                .chain(&t.answer_rejections)
                .take(examples)
            {
                let _ = writeln!(s, "  {r}");
            }
        }
        s
    }

    /// Refuses a dataset in which a table given has no usable row: no data rows at all, or every
    /// row rejected or excluded. A monthly job must not publish an all-zero report after a
    /// broken upstream export; callers that accept empty data skip this check (the CLI's
    /// `--allow-empty`).
    ///
    /// # Errors
    /// [`Error::NoData`] naming the table, its files and why (with the reasons' counts).
    pub fn check_not_empty(&self) -> Result<()> {
        for t in self.tables() {
            let a = &t.accounting;
            if a.rows_used > 0 {
                continue;
            }
            let files: Vec<&str> = t.files.iter().map(|f| f.file.as_str()).collect();
            let counts = super::load::reason_counts;
            let reason = if a.rows_read == 0 {
                match files.len() {
                    1 => "the file has no data rows, only a header".to_string(),
                    _ => "the files have no data rows, only headers".to_string(),
                }
            } else {
                let mut parts = Vec::new();
                if a.rows_rejected > 0 {
                    parts.push(format!(
                        "{} rejected ({})",
                        a.rows_rejected,
                        counts(&a.rejected_by_reason)
                    ));
                }
                if a.rows_excluded > 0 {
                    parts.push(format!(
                        "{} excluded ({})",
                        a.rows_excluded,
                        counts(&a.excluded_by_reason)
                    ));
                }
                format!(
                    "none of the {} rows read is usable: {}",
                    a.rows_read,
                    parts.join(", ")
                )
            };
            return Err(Error::NoData {
                what: format!("{} ({})", t.kind, files.join(", ")),
                reason,
            });
        }
        Ok(())
    }

    /// The first rejected row or answer, if any (for strict mode).
    pub fn first_rejection(&self) -> Option<&super::load::Rejection> {
        self.tables()
            .find_map(|t| all_rejections(t).into_iter().next())
    }

    /// One line per detected customer-id column that had other candidates, naming the choice,
    /// the alternatives and the flag: `transactions: customer id: using "Requester external
    /// id" (also possible: "Requester email", "Requester"); set --customer-col to choose`.
    pub fn column_notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = Vec::new();
        for t in self.tables() {
            for f in &t.files {
                let role = Role::CustomerId;
                let (Some(column), others) = (f.columns.column(role), f.columns.alternatives(role))
                else {
                    continue;
                };
                if others.is_empty() {
                    continue;
                }
                let file = if t.files.len() > 1 {
                    format!(" ({})", f.file)
                } else {
                    String::new()
                };
                let others: Vec<String> = others.iter().map(|c| format!("{c:?}")).collect();
                let note = format!(
                    "{}{file}: {}: using {column:?} (also possible: {}); set {} to choose",
                    t.kind,
                    role.describe(),
                    others.join(", "),
                    role.flag()
                );
                if !notes.contains(&note) {
                    notes.push(note);
                }
            }
        }
        notes
    }

    /// Writes every rejected row to a CSV file (file, line, row, column, value, reason), atomically
    /// (or in place for a device or FIFO; see [`crate::output`]).
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::OutputIsInput`] when `path` is one of the inputs.
    pub fn write_rejects(&self, path: &std::path::Path) -> Result<()> {
        crate::output::refuse_inputs(path, &self.input_paths())?;
        crate::output::write_output(path, |w| {
            let mut c = csv::Writer::from_writer(w);
            c.write_record(["table", "file", "line", "row", "column", "value", "reason"])?;
            for t in self.tables() {
                for r in all_rejections(t) {
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

/// A table's rejected rows and rejected answers together: with rejected answers, in file order
/// (file, then row); without, the rows' rejections in their own order.
fn all_rejections(t: &Table) -> Vec<&super::load::Rejection> {
    if t.answer_rejections.is_empty() {
        return t.rejections.iter().collect();
    }
    let file_index = |file: &str| t.files.iter().position(|f| f.file == file);
    let mut all: Vec<&super::load::Rejection> =
        t.rejections.iter().chain(&t.answer_rejections).collect();
    all.sort_by_key(|r| (file_index(&r.file), r.row));
    all
}
