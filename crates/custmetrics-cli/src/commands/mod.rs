//! One module per subcommand; this file holds what they share: turning flags and the config file
//! into a library `DatasetSpec`, and choosing where output goes.

mod clv;
mod generate;
mod inspect;
mod report;

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, Result};
use custmetrics::io::config::{Config, TableConfig};
use custmetrics::io::{
    ColumnMapping, DatasetSpec, DateFormat, DecimalSeparator, LoadOptions, Role, TableKind,
};

use crate::args::{Cli, Command, DecimalArg, InputArgs};
use crate::exit::ExitStatus;

pub fn run(cli: Cli) -> Result<ExitStatus> {
    let quiet = cli.quiet;
    TIMINGS.store(cli.timings, std::sync::atomic::Ordering::Relaxed);
    match cli.command {
        Command::Report(c) => report::run(c, report::Kind::Report, quiet),
        Command::Retention(c) => report::run(c, report::Kind::Retention, quiet),
        Command::Churn(c) => report::run(c, report::Kind::Churn, quiet),
        Command::Nps(c) => report::run(c, report::Kind::Nps, quiet),
        Command::Csat(c) => report::run(c, report::Kind::Csat, quiet),
        Command::Rfm(c) => report::run(c, report::Kind::Rfm, quiet),
        Command::Clv(c) => clv::run(*c, quiet),
        Command::Inspect(a) => inspect::run(a),
        Command::Generate(a) => generate::run(a, quiet),
    }
}

/// The config file: `--config`, else `./custmetrics.toml` when present.
pub fn load_config(input: &InputArgs) -> Result<Option<Config>> {
    match &input.config {
        Some(p) => Ok(Some(Config::from_path(p)?)),
        None if Path::new("custmetrics.toml").is_file() => {
            Ok(Some(Config::from_path("custmetrics.toml")?))
        }
        None => Ok(None),
    }
}

/// Builds per-table load options from the config file and the flags (flags win).
pub fn dataset_spec(input: &InputArgs, config: Option<&Config>) -> Result<DatasetSpec> {
    let global_date = input
        .date_format
        .clone()
        .or_else(|| config.and_then(|c| c.date_format.clone()));
    let csat_scale = config
        .and_then(|c| c.csat_scale)
        .filter(|_| input.csat_scale == 5)
        .unwrap_or(input.csat_scale);
    let table_options = |kind: TableKind, tc: Option<&TableConfig>| -> Result<LoadOptions> {
        let mut o = LoadOptions::default();
        o.csat_scale = csat_scale;
        let mut mapping = ColumnMapping::default();
        if let Some(tc) = tc {
            mapping.columns = tc.columns.clone();
            mapping.ignore = tc.ignore.clone();
            o.decimal = tc.decimal;
            o.statuses = tc.statuses.clone();
        }
        if let Some(e) = input
            .encoding
            .as_deref()
            .or_else(|| tc.and_then(|t| t.encoding.as_deref()))
        {
            o.encoding = Some(custmetrics::io::TextEncoding::from_setting(e)?);
        }
        o.sheet = input
            .sheet
            .clone()
            .or_else(|| tc.and_then(|t| t.sheet.clone()));
        let date_format = input
            .date_format
            .clone()
            .or_else(|| tc.and_then(|t| t.date_format.clone()))
            .or(global_date.clone());
        o.date_format = date_format
            .as_deref()
            .map(DateFormat::from_setting)
            .transpose()?;
        if let Some(d) = input.decimal {
            o.decimal = Some(match d {
                DecimalArg::Point => DecimalSeparator::Point,
                DecimalArg::Comma => DecimalSeparator::Comma,
            });
        }
        let flags: [(Role, &Vec<String>); 13] = [
            (Role::CustomerId, &input.customer_col),
            (Role::Date, &input.date_col),
            (Role::Amount, &input.amount_col),
            (Role::OrderId, &input.order_col),
            (Role::Quantity, &input.quantity_col),
            (Role::UnitPrice, &input.unit_price_col),
            (Role::Nps, &input.nps_col),
            (Role::Csat, &input.csat_col),
            (Role::Channel, &input.channel_col),
            (Role::SignupDate, &input.signup_col),
            (Role::EndDate, &input.end_col),
            (Role::Status, &input.status_col),
            (Role::RefundedAmount, &input.refunded_col),
        ];
        for (role, values) in flags {
            for v in values {
                match v.split_once(':') {
                    Some((table, name))
                        if ["transactions", "interactions", "customers"].contains(&table) =>
                    {
                        if table == kind.name() {
                            mapping.columns.insert(role, name.to_string());
                        }
                    }
                    _ => {
                        mapping.preferred.insert(role, v.clone());
                    }
                }
            }
        }
        o.mapping = mapping;
        Ok(o)
    };
    let files = |flag: &Vec<String>, tc: Option<&TableConfig>| -> Vec<String> {
        if flag.is_empty() {
            tc.map(|t| t.files.clone()).unwrap_or_default()
        } else {
            flag.clone()
        }
    };
    let tx = config.and_then(|c| c.transactions.as_ref());
    let ix = config.and_then(|c| c.interactions.as_ref());
    let cx = config.and_then(|c| c.customers.as_ref());
    let mut spec = DatasetSpec::default();
    spec.transactions = files(&input.transactions, tx);
    spec.interactions = files(&input.interactions, ix);
    spec.customers = files(&input.customers, cx);
    spec.transactions_options = table_options(TableKind::Transactions, tx)?;
    spec.interactions_options = table_options(TableKind::Interactions, ix)?;
    spec.customers_options = table_options(TableKind::Customers, cx)?;
    Ok(spec)
}

/// Writes the accounting summary to stderr (unless quiet) and applies `--strict` and `--rejects`.
pub fn account(data: &custmetrics::io::Dataset, input: &InputArgs, quiet: bool) -> Result<()> {
    if let Some(path) = &input.rejects {
        data.write_rejects(path)
            .with_context(|| format!("writing rejected rows to {}", path.display()))?;
    }
    if !quiet {
        let mut err = std::io::stderr().lock();
        for note in data.column_notes() {
            writeln!(err, "note: {note}").ok();
        }
        write!(err, "{}", data.accounting_summary(3)).ok();
    }
    if input.strict
        && let Some(r) = data.first_rejection()
    {
        return Err(custmetrics::Error::RejectedRow {
            path: r.file.clone().into(),
            line: r.line.unwrap_or(r.row),
            column: r.column.clone(),
            value: r.value.clone(),
            reason: r.reason.to_string(),
        }
        .into());
    }
    Ok(())
}

/// Refuses empty data (unless `--allow-empty`): the accounting and `--rejects` file are still
/// written, so that the user sees why every row was left out.
pub fn refuse_empty(data: &custmetrics::io::Dataset, input: &InputArgs, quiet: bool) -> Result<()> {
    if input.allow_empty {
        return Ok(());
    }
    if let Err(e) = data.check_not_empty() {
        account(data, input, quiet).ok();
        return Err(e.into());
    }
    Ok(())
}

/// Whether stdout is a terminal that wants colour.
pub fn stdout_color(choice: crate::args::ColorArg) -> bool {
    use crate::args::ColorArg;
    match choice {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// `--timings`: phase durations on stderr when a [`Progress`] finishes.
static TIMINGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A spinner on stderr while a phase runs, only on a terminal and without --quiet. polars has no
/// progress hooks, so the spinner ticks from its own thread and names the phase. With
/// `--timings`, the phases' wall times are printed when it is dropped (phases set after
/// [`Progress::finish`], such as writing the output, are timed without a spinner).
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    phases: std::cell::RefCell<Vec<(&'static str, std::time::Instant)>>,
}

impl Progress {
    pub fn start(quiet: bool, message: &'static str) -> Progress {
        let phases = std::cell::RefCell::new(vec![(message, std::time::Instant::now())]);
        if quiet || !std::io::stderr().is_terminal() {
            return Progress { bar: None, phases };
        }
        let bar = indicatif::ProgressBar::new_spinner();
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
            bar.set_style(style);
        }
        bar.set_message(message);
        bar.enable_steady_tick(std::time::Duration::from_millis(100));
        Progress {
            bar: Some(bar),
            phases,
        }
    }

    pub fn set(&self, message: &'static str) {
        self.phases
            .borrow_mut()
            .push((message, std::time::Instant::now()));
        if let Some(b) = self.bar.as_ref().filter(|b| !b.is_finished()) {
            b.set_message(message);
        }
    }

    /// Removes the spinner (before output is written to the terminal).
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
        if TIMINGS.load(std::sync::atomic::Ordering::Relaxed) {
            let end = std::time::Instant::now();
            let phases = self.phases.borrow();
            let ends = phases.iter().skip(1).map(|(_, t)| *t).chain([end]);
            let parts: Vec<String> = phases
                .iter()
                .zip(ends)
                .map(|((name, start), end)| {
                    format!("{name} {:.3} s", end.duration_since(*start).as_secs_f64())
                })
                .collect();
            eprintln!("timings: {}", parts.join(", "));
        }
    }
}
