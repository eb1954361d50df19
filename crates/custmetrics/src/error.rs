//! The one error type of the library.
//!
//! Each variant is one thing a user must fix and carries what they need to fix it (file, line, column,
//! value, candidates). Messages are lowercase, without a trailing period, and name the library
//! *setting* involved; the CLI adds the matching flag as a hint.

use std::path::PathBuf;

/// `Result` with the library's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in custmetrics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An input file is not in a format custmetrics can read, or is damaged.
    #[error("{}: {message}", path.display())]
    Format {
        /// The file involved.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A glob or path pattern matched no file.
    #[error("no file matches {pattern:?}")]
    NoMatch {
        /// The pattern as given.
        pattern: String,
    },
    /// A table needs a column for a role and none was found.
    #[error("{table}: no column for the {role} (looked for {looked_for}; columns are: {columns})")]
    MissingColumn {
        /// Which table (transactions, interactions, customers).
        table: String,
        /// The role (for example "customer id").
        role: String,
        /// The header names that would have been recognised.
        looked_for: String,
        /// The columns the file has.
        columns: String,
    },
    /// Several columns could play the same role; custmetrics refuses to guess.
    #[error("{table}: several columns could be the {role}: {}; choose one with the `{setting}` setting", candidates.join(", "))]
    AmbiguousColumn {
        /// Which table.
        table: String,
        /// The role.
        role: String,
        /// The candidate column names.
        candidates: Vec<String>,
        /// The mapping setting that resolves it (for example `customer_col`).
        setting: String,
    },
    /// The only columns that could be the customer id hold people's or accounts' names, which
    /// two customers can share: custmetrics refuses to merge them silently.
    #[error(
        "{table}: no customer id or e-mail column, only names: {}{}; customers who share a name would be merged; set `customer_col` to choose the column (a name column only if names are unique)",
        quoted(columns),
        examples_note(examples)
    )]
    NameAsCustomerId {
        /// Which table.
        table: String,
        /// The name columns.
        columns: Vec<String>,
        /// Some of their values.
        examples: Vec<String>,
    },
    /// A column named in the mapping does not exist.
    #[error(
        "{table}: column {column:?} given for the {role} does not exist (columns are: {columns})"
    )]
    UnknownColumn {
        /// Which table.
        table: String,
        /// The role it was given for.
        role: String,
        /// The name given.
        column: String,
        /// The columns the file has.
        columns: String,
    },
    /// A date column reads equally well day-first and month-first.
    #[error("{table}: column {column:?} could be day-first (DD/MM/YYYY) or month-first (MM/DD/YYYY), e.g. {}; set `date_format`", examples.join(", "))]
    AmbiguousDateFormat {
        /// Which table.
        table: String,
        /// The column.
        column: String,
        /// Values that read both ways.
        examples: Vec<String>,
    },
    /// A column that should hold dates (or numbers) mostly does not.
    #[error("{table}: column {column:?} does not look like {expected} (e.g. {})", examples.join(", "))]
    UnrecognisedValues {
        /// Which table.
        table: String,
        /// The column.
        column: String,
        /// What was expected ("dates", "amounts").
        expected: String,
        /// Some values that did not parse.
        examples: Vec<String>,
    },
    /// A status column holds values whose meaning custmetrics does not know.
    #[error("{}: {table}: column {column:?} has status values custmetrics does not know: {}; say what each means under [{table}.statuses] in custmetrics.toml (paid, refunded, partially_refunded, pending, failed, voided or test)", path.display(), values.join(", "))]
    UnknownStatus {
        /// The file.
        path: PathBuf,
        /// Which table.
        table: String,
        /// The status column.
        column: String,
        /// The unknown values (up to 10), as written.
        values: Vec<String>,
    },
    /// A table (or every table of a run) has no usable rows.
    #[error("{what}: no data to report: {reason}")]
    NoData {
        /// The table and its files.
        what: String,
        /// Why: no rows, or every row rejected or excluded (with the reasons).
        reason: String,
    },
    /// A single value could not be used and strict mode is on.
    #[error("{}:{line}: column {column:?}: {reason}: {value:?}", path.display())]
    RejectedRow {
        /// The file.
        path: PathBuf,
        /// 1-based line number of the record in the file.
        line: u64,
        /// The column of the offending value.
        column: String,
        /// The offending value.
        value: String,
        /// Why the row was rejected.
        reason: String,
    },
    /// An option has an invalid value.
    #[error("invalid {setting}: {message}")]
    InvalidSetting {
        /// The setting (for example `date_format`).
        setting: String,
        /// What is wrong.
        message: String,
    },
    /// The configuration file could not be parsed.
    #[error("{}: {message}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// There is not enough data to compute something.
    #[error("not enough data for {what}: {message}")]
    InsufficientData {
        /// The metric or model.
        what: String,
        /// What is missing.
        message: String,
    },
    /// A model fit did not converge; the result is not presented.
    #[error("{model} did not converge after {iterations} iterations: {message}")]
    ModelDidNotConverge {
        /// The model.
        model: String,
        /// Iterations run.
        iterations: u64,
        /// Why, and what to try.
        message: String,
    },
    /// Writing an output would overwrite one of the inputs.
    #[error("refusing to write {}: it is one of the input files", path.display())]
    OutputIsInput {
        /// The output path.
        path: PathBuf,
    },
    /// An error about one input file's columns or formats, with the file named (a table is
    /// often a glob of monthly exports, and only one of them may be wrong).
    #[error("{}: {error}", path.display())]
    InFile {
        /// The file, as the user named it.
        path: PathBuf,
        /// What is wrong with its columns or values (see `Error::in_file`).
        error: Box<Error>,
    },
    /// Two outputs of one run would be written to the same file.
    #[error("refusing to write {second} to {}: {first} is written there too", path.display())]
    OutputsCollide {
        /// The setting of the output that also goes there (`output`, `output_dir`).
        first: String,
        /// The setting of this output (`rejects`, `save_model`).
        second: String,
        /// This output's path, as given.
        path: PathBuf,
    },
    /// A date setting is not a `YYYY-MM-DD` date.
    #[error("{setting} {value:?}: expected YYYY-MM-DD")]
    InvalidDate {
        /// The setting (`as_of`), or the flag that gave it (`--from`).
        setting: String,
        /// The value as given.
        value: String,
        /// Why it does not parse.
        #[source]
        source: chrono::ParseError,
    },
    /// A saved model file could not be read.
    #[error("reading {}", path.display())]
    ReadSavedModel {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file given as a saved model is not one.
    #[error("{} is not a model saved by `custmetrics clv fit --save-model`", path.display())]
    NotASavedModel {
        /// The file.
        path: PathBuf,
        /// Why it does not read as one.
        #[source]
        source: serde_json::Error,
    },
    /// A saved model in a layout this version cannot read.
    #[error("{}: saved-model version {found} is not supported (expected {expected}); refit with this version", path.display())]
    SavedModelVersion {
        /// The file.
        path: PathBuf,
        /// Its layout version.
        found: u32,
        /// The version this build reads and writes.
        expected: u32,
    },
    /// A directory given as a summary store is not one, or cannot take an update.
    #[error("{}: {message}", path.display())]
    Store {
        /// The store's directory.
        path: PathBuf,
        /// What is wrong, and what settles it.
        message: String,
    },
    /// A summary store in a layout this version cannot read.
    #[error("{}: summary store schema version {found} (written by custmetrics {written_by}) is not supported: this custmetrics {version} reads version {expected}; read it with a custmetrics that reads version {found}, or summarise the exports again with `custmetrics summarize`", path.display())]
    StoreVersion {
        /// The store's directory.
        path: PathBuf,
        /// Its schema version.
        found: u32,
        /// The custmetrics version that wrote it.
        written_by: String,
        /// The version this build reads and writes.
        expected: u32,
        /// This build's version.
        version: String,
    },
    /// Stage 1 on another engine (SQL, Spark) cannot give exactly what the local reader would:
    /// the message names the value or setting and what to do.
    #[error("engine: {message}")]
    Engine {
        /// What is wrong, and what settles it.
        message: String,
    },
    /// An error from polars while running a query.
    #[error("query failed: {0}")]
    Polars(#[from] polars::error::PolarsError),
}

/// `"a", "b"`.
fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// ` (e.g. "x", "y")`, or nothing without examples.
fn examples_note(examples: &[String]) -> String {
    if examples.is_empty() {
        String::new()
    } else {
        format!(" (e.g. {})", quoted(examples))
    }
}

impl Error {
    /// The error itself, without the file it is about ([`Error::InFile`]).
    pub fn innermost(&self) -> &Error {
        match self {
            Error::InFile { error, .. } => error.innermost(),
            e => e,
        }
    }

    /// Names the file of a column or format error that does not already name one.
    pub(crate) fn in_file(self, path: impl Into<PathBuf>) -> Error {
        match self {
            e @ (Error::MissingColumn { .. }
            | Error::AmbiguousColumn { .. }
            | Error::UnknownColumn { .. }
            | Error::AmbiguousDateFormat { .. }
            | Error::UnrecognisedValues { .. }
            | Error::InvalidSetting { .. }) => Error::InFile {
                path: path.into(),
                error: Box::new(e),
            },
            e => e,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
