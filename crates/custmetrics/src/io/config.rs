//! `custmetrics.toml`: input files, column mapping and report settings for a repeatable job.
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

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::parse::DecimalSeparator;
use super::schema::Role;
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
    /// `"in progress" = "pending"` (see [`crate::io::PurchaseStatus`]).
    #[serde(default)]
    pub statuses: BTreeMap<String, crate::io::PurchaseStatus>,
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
    pub sections: Vec<crate::report::Section>,
    /// Output format.
    pub format: Option<String>,
    /// Output file.
    pub output: Option<String>,
}

impl Config {
    /// Reads and parses a config file; relative `files` are resolved against its folder.
    ///
    /// # Errors
    /// [`Error::Io`] when unreadable, [`Error::Config`] with line and column when invalid.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Config> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
