//! `custmetrics.toml`, and how its settings combine with overrides and defaults.
//!
//! A repeatable job names its inputs, column mapping and report settings in a file:
//!
//! ```toml
//! date_format = "dmy"          # optional, for every table
//! csat_scale = 5
//!
//! [transactions]
//! files = ["exports/orders-*.csv"]
//! decimal = "comma"
//! sheet = "Orders"             # for workbooks; the first worksheet when absent
//! [transactions.columns]
//! customer_id = "Email"
//! amount = "Total"
//!
//! [interactions]
//! files = ["exports/surveys.csv"]
//!
//! [report]
//! period = "month"
//! by = ["plan"]
//! ```
//! Unknown keys are errors, so a typo cannot silently change a monthly report.
//!
//! [`Config::resolve`] merges the file with [`Overrides`] (what a command line gives; they win)
//! and the defaults into the library's inputs: a [`DatasetSpec`] and [`ReportOptions`].
//!
//! ```
//! use custmetrics::config::{Config, Overrides};
//! use custmetrics::period::Period;
//! # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/custmetrics.toml");
//!
//! let config = Config::load(path)?;
//! let mut overrides = Overrides::default();
//! overrides.period = Some("quarter".into());
//! let (spec, options) = config.resolve(&overrides)?;
//! assert_eq!(options.period, Period::Quarter); // the override wins over the file's "month"
//! assert_eq!(options.by, ["plan"]); // the file's setting, where nothing overrides it
//! assert_eq!(spec.transactions.len(), 1);
//! # Ok::<(), custmetrics::Error>(())
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;

use crate::io::{
    ColumnMapping, DatasetSpec, DateFormat, DecimalSeparator, LoadOptions, PurchaseStatus, Role,
    TableKind, TextEncoding,
};
use crate::models::clv::ClvOptions;
use crate::models::intervals::IntervalOptions;
use crate::models::purchase::PurchaseModel;
use crate::period::Period;
use crate::report::render::Format;
use crate::report::{ActiveOn, ReportOptions, Section};
use crate::{Error, Result};

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Date format for every table (see `DateFormat::from_setting`).
    pub date_format: Option<String>,
    /// Top of the CSAT scale.
    pub csat_scale: Option<u8>,
    /// The transactions table.
    pub transactions: Option<TableConfig>,
    /// The interactions table.
    pub interactions: Option<TableConfig>,
    /// The customers table.
    pub customers: Option<TableConfig>,
    /// Report settings.
    pub report: Option<ReportConfig>,
}

/// One table's files and mapping.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TableConfig {
    /// Paths or globs, relative to the config file.
    #[serde(default)]
    pub files: Vec<String>,
    /// Column by role (`customer_id`, `date`, `amount`, `order_id`, `nps`, `csat`, ...).
    #[serde(default)]
    pub columns: BTreeMap<Role, String>,
    /// Columns to ignore.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Date format for this table.
    pub date_format: Option<String>,
    /// Decimal separator of amounts.
    pub decimal: Option<DecimalSeparator>,
    /// Text encoding of CSV files: `utf-8`, `utf-16` (`utf-16le`, `utf-16be`) or `windows-1252`
    /// (`latin1`); detected when absent.
    pub encoding: Option<String>,
    /// Status values and what they mean, beyond (or instead of) the built-in list:
    /// `"in progress" = "pending"` (see [`PurchaseStatus`]).
    #[serde(default)]
    pub statuses: BTreeMap<String, PurchaseStatus>,
    /// The sheet to read from workbooks (.xlsx, .xls, .ods); the first worksheet when absent.
    pub sheet: Option<String>,
}

/// Report settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ReportConfig {
    /// `day`, `week`, `month`, `quarter` or `year`.
    pub period: Option<String>,
    /// Dimensions to split by.
    #[serde(default)]
    pub by: Vec<String>,
    /// Observation end (ISO date).
    pub as_of: Option<String>,
    /// Days without a purchase after which a customer counts as churned.
    pub inactive_after: Option<u32>,
    /// What makes a customer active: `transactions` (default) or `any` (any interaction too).
    pub active_on: Option<String>,
    /// Sections to include (`overview`, `retention`, `churn`, `survival`, `nps`, `csat`, `rfm`,
    /// `supporting`); all when empty.
    #[serde(default)]
    pub sections: Vec<Section>,
    /// Output format.
    pub format: Option<String>,
    /// Output file.
    pub output: Option<String>,
}

impl Config {
    /// The file a job's settings are usually kept in (the CLI reads it from the current
    /// directory when no `--config` is given; the library never looks for it).
    pub const FILE_NAME: &'static str = "custmetrics.toml";

    /// Reads and parses a config file; relative `files` are resolved against its folder.
    ///
    /// # Errors
    /// [`Error::Io`] when unreadable, [`Error::Config`] with line and column when invalid.
    pub fn load(path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut config: Config = toml::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        for table in [
            &mut config.transactions,
            &mut config.interactions,
            &mut config.customers,
        ]
        .into_iter()
        .flatten()
        {
            for f in &mut table.files {
                if f != "-" && Path::new(f.as_str()).is_relative() {
                    *f = base.join(&*f).to_string_lossy().into_owned();
                }
            }
        }
        Ok(config)
    }
}

/// Settings that win over the config file, in its own terms: what a command line gives. An
/// empty list or `None` means "not given", so that the file's value, else the default, applies.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Overrides {
    /// Transactions files or globs (instead of the file's `[transactions] files`).
    pub transactions: Vec<String>,
    /// Interactions files or globs.
    pub interactions: Vec<String>,
    /// Customers files or globs.
    pub customers: Vec<String>,
    /// Columns chosen for roles, in the order given (a later choice for the same role and
    /// table wins).
    pub columns: Vec<ColumnChoice>,
    /// Date format of every date column of every table (see [`DateFormat::from_setting`]).
    pub date_format: Option<String>,
    /// Text encoding of every CSV input (see [`TextEncoding::from_setting`]).
    pub encoding: Option<String>,
    /// The sheet to read from workbooks.
    pub sheet: Option<String>,
    /// Decimal separator of amounts.
    pub decimal: Option<DecimalSeparator>,
    /// Top of the CSAT scale (default 5).
    pub csat_scale: Option<u8>,
    /// Read the transactions in this many customer partitions
    /// ([`DatasetSpec::transaction_partitions`]).
    pub transaction_partitions: Option<u32>,
    /// Reporting period (see [`Period::from_setting`]; default month).
    pub period: Option<String>,
    /// Ignore data before this date.
    pub from: Option<NaiveDate>,
    /// Observation end (default: the last transaction date).
    pub as_of: Option<NaiveDate>,
    /// Segment dimensions (the first one splits the figures).
    pub by: Vec<String>,
    /// What makes a customer active (see [`ActiveOn::from_setting`]).
    pub active_on: Option<String>,
    /// Days without a purchase after which a customer is churned (default 90).
    pub inactive_after_days: Option<u32>,
    /// Answers below this count are flagged as too few to read (default 30).
    pub min_responses: Option<u64>,
    /// Lowest satisfied CSAT answer (default: the scale's top minus one).
    pub csat_satisfied_from: Option<u8>,
    /// Days per time unit of recency and T, for RFM and the CLV models alike (default: 1 for
    /// RFM, 7 for the models, the papers' weeks).
    pub time_unit_days: Option<u32>,
    /// The CLV purchase model (default BG/NBD).
    pub model: Option<PurchaseModel>,
    /// CLV horizon in model time units (default [`ClvOptions::default_horizon`]).
    pub horizon: Option<u32>,
    /// Yearly CLV discount rate (default 0.10).
    pub annual_discount_rate: Option<f64>,
    /// L2 penalizer of the model fits (default 0).
    pub penalizer: Option<f64>,
    /// Prediction intervals for CLV (default none).
    pub intervals: Option<IntervalOptions>,
    /// Calibration/holdout check of the CLV models from this date.
    pub holdout_from: Option<NaiveDate>,
    /// Periods the CLV models forecast for every cohort (default 3; 0 for none).
    pub forecast_periods: Option<u32>,
    /// Customer attributes the CLV models are refitted with (default none).
    pub covariates: Option<crate::models::covariates::CovariateChoice>,
    /// At-risk customers listed (default 20).
    pub at_risk_limit: Option<usize>,
    /// Sections to build (instead of the file's `sections`; default all).
    pub sections: Option<Vec<Section>>,
}

/// A column chosen for a role: `NAME` for every table that has it, or `TABLE:NAME` for one
/// table (`transactions:Email`), as the CLI's `--customer-col` and the like take it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ColumnChoice {
    /// The role the column plays.
    pub role: Role,
    /// The one table it is for; `None` for every table that has a column of that name.
    pub table: Option<TableKind>,
    /// The column's name.
    pub name: String,
}

impl ColumnChoice {
    /// Parses `NAME` or `TABLE:NAME`. Only `transactions`, `interactions` and `customers` are
    /// table prefixes: any other text before a colon is part of the name (`Order:ID`).
    pub fn parse(role: Role, value: &str) -> ColumnChoice {
        let tables = [
            TableKind::Transactions,
            TableKind::Interactions,
            TableKind::Customers,
        ];
        let table = value.split_once(':').and_then(|(prefix, name)| {
            let kind = tables.into_iter().find(|k| k.name() == prefix)?;
            Some((kind, name))
        });
        match table {
            Some((kind, name)) => ColumnChoice {
                role,
                table: Some(kind),
                name: name.to_string(),
            },
            None => ColumnChoice {
                role,
                table: None,
                name: value.to_string(),
            },
        }
    }
}

/// Parses a `YYYY-MM-DD` date given for `setting` (a config key, or a flag such as `--from`).
///
/// # Errors
/// [`Error::InvalidDate`] naming the setting and the value.
pub fn parse_date(setting: &str, value: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").map_err(|source| Error::InvalidDate {
        setting: setting.to_string(),
        value: value.to_string(),
        source,
    })
}

impl Config {
    /// What to read: each table's files and load options, from the overrides, else the file,
    /// else the defaults. [`Config::resolve`] adds the report settings.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for an unknown encoding or date format.
    pub fn dataset(&self, overrides: &Overrides) -> Result<DatasetSpec> {
        let tables = [
            (
                TableKind::Transactions,
                &overrides.transactions,
                self.transactions.as_ref(),
            ),
            (
                TableKind::Interactions,
                &overrides.interactions,
                self.interactions.as_ref(),
            ),
            (
                TableKind::Customers,
                &overrides.customers,
                self.customers.as_ref(),
            ),
        ];
        let mut spec = DatasetSpec::default();
        for (kind, files, table) in tables {
            let files = if files.is_empty() {
                table.map(|t| t.files.clone()).unwrap_or_default()
            } else {
                files.clone()
            };
            let options = self.load_options(kind, table, overrides)?;
            match kind {
                TableKind::Transactions => {
                    spec.transactions = files;
                    spec.transactions_options = options;
                }
                TableKind::Interactions => {
                    spec.interactions = files;
                    spec.interactions_options = options;
                }
                TableKind::Customers => {
                    spec.customers = files;
                    spec.customers_options = options;
                }
            }
        }
        if let Some(n) = overrides.transaction_partitions {
            spec.transaction_partitions = n;
        }
        Ok(spec)
    }

    /// One table's load options: the file's `[table]` section under the overrides.
    fn load_options(
        &self,
        kind: TableKind,
        table: Option<&TableConfig>,
        overrides: &Overrides,
    ) -> Result<LoadOptions> {
        let mut o = LoadOptions {
            csat_scale: overrides.csat_scale.or(self.csat_scale).unwrap_or(5),
            ..LoadOptions::default()
        };
        let mut mapping = ColumnMapping::default();
        if let Some(t) = table {
            mapping.columns = t.columns.clone();
            mapping.ignore = t.ignore.clone();
            o.decimal = t.decimal;
            o.statuses = t.statuses.clone();
        }
        if let Some(e) = overrides
            .encoding
            .as_deref()
            .or_else(|| table.and_then(|t| t.encoding.as_deref()))
        {
            o.encoding = Some(TextEncoding::from_setting(e)?);
        }
        o.sheet = overrides
            .sheet
            .clone()
            .or_else(|| table.and_then(|t| t.sheet.clone()));
        // The most specific setting wins: the override, the table's, the file's global one.
        let date_format = overrides
            .date_format
            .as_deref()
            .or_else(|| table.and_then(|t| t.date_format.as_deref()))
            .or(self.date_format.as_deref());
        o.date_format = date_format.map(DateFormat::from_setting).transpose()?;
        if let Some(d) = overrides.decimal {
            o.decimal = Some(d);
        }
        for c in &overrides.columns {
            match c.table {
                Some(t) if t == kind => {
                    mapping.columns.insert(c.role, c.name.clone());
                }
                Some(_) => {}
                None => {
                    mapping.preferred.insert(c.role, c.name.clone());
                }
            }
        }
        o.mapping = mapping;
        Ok(o)
    }

    /// What to read and what to compute: [`Config::dataset`], and the report options from the
    /// overrides, else the file's `[report]`, else the defaults. Only the `by` dimensions are
    /// read from the tables (the others would be parsed and held for nothing).
    ///
    /// # Errors
    /// As [`Config::dataset`]; [`Error::InvalidSetting`] for an unknown period or `active_on`;
    /// [`Error::InvalidDate`] for the file's `as_of`.
    pub fn resolve(&self, overrides: &Overrides) -> Result<(DatasetSpec, ReportOptions)> {
        let mut spec = self.dataset(overrides)?;
        let report = self.report.clone().unwrap_or_default();
        let mut options = ReportOptions::default();
        if let Some(p) = overrides.period.as_ref().or(report.period.as_ref()) {
            options.period = Period::from_setting(p)?;
        }
        options.from = overrides.from;
        options.as_of = match overrides.as_of {
            Some(a) => Some(a),
            None => report
                .as_of
                .as_deref()
                .map(|a| parse_date("as_of", a))
                .transpose()?,
        };
        options.by = if overrides.by.is_empty() {
            report.by.clone()
        } else {
            overrides.by.clone()
        };
        options.inactive_after_days = overrides
            .inactive_after_days
            .or(report.inactive_after)
            .unwrap_or(options.inactive_after_days);
        if let Some(n) = overrides.min_responses {
            options.min_responses = n;
        }
        if let Some(a) = overrides.active_on.as_ref().or(report.active_on.as_ref()) {
            options.active_on = ActiveOn::from_setting(a)?;
        }
        options.csat_scale = spec.interactions_options.csat_scale;
        options.csat_satisfied_from = overrides
            .csat_satisfied_from
            .unwrap_or(options.csat_scale.saturating_sub(1).max(1));
        options.time_unit_days = overrides.time_unit_days.unwrap_or(1);
        let mut clv = ClvOptions::default();
        clv.time_unit_days = overrides.time_unit_days.unwrap_or(7);
        clv.horizon = overrides
            .horizon
            .unwrap_or(ClvOptions::default_horizon(clv.time_unit_days));
        if let Some(r) = overrides.annual_discount_rate {
            clv.annual_discount_rate = r;
        }
        if let Some(p) = overrides.penalizer {
            clv.fit.penalizer = p;
        }
        clv.model = overrides.model.unwrap_or_default();
        clv.intervals = overrides.intervals;
        options.clv = clv;
        options.clv_holdout_from = overrides.holdout_from;
        if let Some(n) = overrides.forecast_periods {
            options.clv_forecast_periods = n;
        }
        if let Some(c) = &overrides.covariates {
            options.clv_covariates = c.clone();
        }
        if let Some(n) = overrides.at_risk_limit {
            options.at_risk_limit = n;
        }
        options.sections = match &overrides.sections {
            Some(sections) => sections.clone(),
            None if !report.sections.is_empty() => report.sections,
            None => Section::ALL.to_vec(),
        };
        // Only the dimensions the report values are read from the tables: `by`, and the CLV
        // covariates when the CLV section is built.
        for o in [
            &mut spec.transactions_options,
            &mut spec.interactions_options,
            &mut spec.customers_options,
        ] {
            o.read_dimensions = Some(options.dimensions());
        }
        Ok((spec, options))
    }

    /// The output format the file asks for (`table`, `markdown` or `md`, `json`, `csv`,
    /// `html`); `None` when it names none, or one of no known format.
    pub fn format(&self) -> Option<Format> {
        // An unknown name falls back to the default (table) rather than failing: that is how
        // custmetrics has always read the key.
        match self.report.as_ref()?.format.as_deref()? {
            "table" => Some(Format::Table),
            "markdown" | "md" => Some(Format::Markdown),
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            "html" => Some(Format::Html),
            _ => None,
        }
    }

    /// The output file the file names, if any (as written: relative to the current directory).
    pub fn output(&self) -> Option<PathBuf> {
        self.report.as_ref()?.output.as_ref().map(PathBuf::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_choices_name_a_table_only_with_a_table_prefix() {
        let c = ColumnChoice::parse(Role::CustomerId, "transactions:Email");
        assert_eq!(
            (c.table, c.name.as_str()),
            (Some(TableKind::Transactions), "Email")
        );
        // Any other prefix is part of the column's name.
        let c = ColumnChoice::parse(Role::OrderId, "Order:ID");
        assert_eq!((c.table, c.name.as_str()), (None, "Order:ID"));
        let c = ColumnChoice::parse(Role::Date, "Date");
        assert_eq!((c.table, c.name.as_str()), (None, "Date"));
    }

    #[test]
    fn overrides_win_over_the_file_and_the_file_over_defaults() {
        let c: Config = toml::from_str(
            "csat_scale = 7\n[transactions]\nfiles = [\"a.csv\"]\n[transactions.columns]\ncustomer_id = \"Email\"\n[report]\nperiod = \"week\"\ninactive_after = 60\n",
        )
        .unwrap();
        let (spec, options) = c.resolve(&Overrides::default()).unwrap();
        assert_eq!(spec.transactions, ["a.csv"]);
        assert_eq!(options.period, Period::Week);
        assert_eq!(options.inactive_after_days, 60);
        // 7-point scale: satisfied from 6.
        assert_eq!((options.csat_scale, options.csat_satisfied_from), (7, 6));
        // Weeks and a year of them for the models, days for RFM.
        assert_eq!((options.clv.time_unit_days, options.clv.horizon), (7, 52));
        assert_eq!(options.time_unit_days, 1);

        let o = Overrides {
            transactions: vec!["b.csv".into()],
            period: Some("month".into()),
            time_unit_days: Some(1),
            columns: vec![
                ColumnChoice::parse(Role::CustomerId, "transactions:Id"),
                ColumnChoice::parse(Role::Date, "Day"),
            ],
            ..Overrides::default()
        };
        let (spec, options) = c.resolve(&o).unwrap();
        assert_eq!(spec.transactions, ["b.csv"]);
        assert_eq!(options.period, Period::Month);
        assert_eq!((options.clv.time_unit_days, options.clv.horizon), (1, 365));
        let mapping = &spec.transactions_options.mapping;
        assert_eq!(
            mapping.columns.get(&Role::CustomerId).map(String::as_str),
            Some("Id")
        );
        assert_eq!(
            mapping.preferred.get(&Role::Date).map(String::as_str),
            Some("Day")
        );
        assert!(
            !spec
                .interactions_options
                .mapping
                .columns
                .contains_key(&Role::CustomerId)
        );
    }

    #[test]
    fn a_bad_date_names_its_setting() {
        let c: Config = toml::from_str("[report]\nas_of = \"2024-13-01\"\n").unwrap();
        let err = c.resolve(&Overrides::default()).unwrap_err();
        assert_eq!(err.to_string(), "as_of \"2024-13-01\": expected YYYY-MM-DD");
    }

    #[test]
    fn parses_and_rejects_typos() {
        let c: Config = toml::from_str(
            "date_format = \"dmy\"\n[transactions]\nfiles = [\"a.csv\"]\ndecimal = \"comma\"\n[transactions.columns]\ncustomer_id = \"Email\"\n",
        )
        .unwrap();
        let t = c.transactions.unwrap();
        assert_eq!(
            t.columns.get(&Role::CustomerId).map(String::as_str),
            Some("Email")
        );
        assert_eq!(t.decimal, Some(DecimalSeparator::Comma));
        let err = toml::from_str::<Config>("[transactions]\nfile = [\"a.csv\"]\n").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
