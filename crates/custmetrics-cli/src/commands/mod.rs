//! One module per subcommand; this file holds what they share: the config file and the flags
//! that override it, the accounting on stderr, colour and progress.

mod clv;
mod generate;
mod inspect;
mod report;
mod sql;
mod summarize;

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{Context, Result};
use custmetrics::config::{ColumnChoice, Config, Overrides};
use custmetrics::io::{DecimalSeparator, Role};

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
        Command::Summarize(a) => summarize::run(a, quiet),
        Command::Generate(a) => generate::run(a, quiet),
        Command::Sql(a) => sql::run(a),
    }
}

/// The config file: `--config`, else `./custmetrics.toml` when present, else no settings.
pub fn load_config(input: &InputArgs) -> Result<Config> {
    match &input.config {
        Some(p) => Ok(Config::load(p)?),
        None if Path::new(Config::FILE_NAME).is_file() => Ok(Config::load(Config::FILE_NAME)?),
        None => Ok(Config::default()),
    }
}

/// The tables of a command: read from the exports of `spec`, or from `--store` (only what a
/// report with `options` reads; in `--partitions` as the exports would be).
pub fn load_data(
    input: &InputArgs,
    spec: &custmetrics::DatasetSpec,
    options: &custmetrics::report::ReportOptions,
) -> Result<custmetrics::Dataset> {
    match &input.store {
        // With --partitions, the store's purchases are read one customer partition at a time.
        Some(dir) => Ok(custmetrics::SummaryStore::open(dir)?
            .read(&options.store_read(spec.transaction_partitions))?),
        None => Ok(custmetrics::Dataset::load(spec)?),
    }
}

/// The input and mapping flags, as settings that win over the config file.
pub fn input_overrides(input: &InputArgs) -> Overrides {
    let mut o = Overrides::default();
    o.transactions = input.transactions.clone();
    o.interactions = input.interactions.clone();
    o.customers = input.customers.clone();
    let columns: [(Role, &Vec<String>); 13] = [
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
    o.columns = columns
        .into_iter()
        .flat_map(|(role, values)| values.iter().map(move |v| ColumnChoice::parse(role, v)))
        .collect();
    o.date_format = input.date_format.clone();
    o.encoding = input.encoding.clone();
    o.sheet = input.sheet.clone();
    o.decimal = input.decimal.map(|d| match d {
        DecimalArg::Point => DecimalSeparator::Point,
        DecimalArg::Comma => DecimalSeparator::Comma,
    });
    // clap's default cannot be told from an explicit `--csat-scale 5`; either lets the config
    // file's scale apply.
    o.csat_scale = (input.csat_scale != 5).then_some(input.csat_scale);
    o
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
