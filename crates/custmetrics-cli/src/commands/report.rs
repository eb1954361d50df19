//! `custmetrics report` and the single-metric commands, which are the report limited to sections.

use std::io::Write;

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use custmetrics::config::Config;
use custmetrics::io::DatasetSpec;
use custmetrics::models::covariates::CovariateChoice;
use custmetrics::models::intervals::IntervalOptions;
use custmetrics::models::purchase::PurchaseModel;
use custmetrics::report::headline::Threshold;
use custmetrics::report::render::{self, Format, RenderOptions};
use custmetrics::report::{Report, ReportOptions, Section};

use crate::args::{FormatArg, MetricCommand, ModelArg, TimeUnit};
use crate::exit::ExitStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Report,
    Retention,
    Churn,
    Nps,
    Csat,
    Rfm,
    Clv,
}

/// A `YYYY-MM-DD` flag.
fn date(flag: &str, v: &Option<String>) -> Result<Option<NaiveDate>> {
    Ok(v.as_deref()
        .map(|s| custmetrics::config::parse_date(flag, s))
        .transpose()?)
}

/// Everything a metric command needs before reading data: the inputs, the report options, and
/// the output settings (parsed first, so that a typo fails before a long run).
pub struct Prepared {
    pub spec: DatasetSpec,
    pub config: Config,
    pub options: ReportOptions,
    pub thresholds: Vec<Threshold>,
    pub previous: Option<String>,
}

pub fn run(cmd: MetricCommand, kind: Kind, quiet: bool) -> Result<ExitStatus> {
    let p = prepare(&cmd, kind)?;
    if cmd.input.store.is_none() {
        require_input(&p.spec)?;
    }
    let progress = super::Progress::start(quiet, "reading inputs");
    let mut data = super::load_data(&cmd.input, &p.spec, &p.options)?;
    super::refuse_empty(&data, &cmd.input, quiet)?;
    progress.set("computing metrics");
    // The report releases the rows after stage 1; the accounting stays in `data`.
    let report = Report::build_taking_rows(&mut data, &p.options)?;
    progress.set("writing output");
    progress.finish();
    // Partitioned transactions are accounted for only once the report has read them.
    super::refuse_empty(&data, &cmd.input, quiet)?;
    super::account(&data, &cmd.input, quiet)?;
    emit(report, &cmd, &p, &data.input_paths())
}

pub fn require_input(spec: &DatasetSpec) -> Result<()> {
    if spec.transactions.is_empty() && spec.interactions.is_empty() && spec.customers.is_empty() {
        bail!(
            "no input: pass --transactions FILE (and/or --interactions, --customers), or --config custmetrics.toml"
        );
    }
    Ok(())
}

/// The config file under the flags, and the command's sections.
pub fn prepare(cmd: &MetricCommand, kind: Kind) -> Result<Prepared> {
    let config = super::load_config(&cmd.input)?;
    let m = &cmd.metrics;
    let mut o = super::input_overrides(&cmd.input);
    o.period = m.period.clone();
    o.from = date("--from", &m.from)?;
    o.as_of = match (date("--as-of", &m.as_of)?, date("--to", &m.to)?) {
        (Some(a), _) | (None, Some(a)) => Some(a),
        (None, None) => None,
    };
    o.by = m.by.clone();
    o.active_on = m.active_on.clone();
    o.inactive_after_days = m.inactive_after;
    o.min_responses = Some(m.min_responses);
    o.csat_satisfied_from = m.csat_satisfied;
    o.time_unit_days = m.time_unit.map(|u| match u {
        TimeUnit::Days => 1,
        TimeUnit::Weeks => 7,
    });
    o.horizon = m.horizon;
    if !(0.0..10.0).contains(&m.discount_rate) {
        bail!(
            "--discount-rate {}: expected a yearly rate such as 0.10",
            m.discount_rate
        );
    }
    o.annual_discount_rate = Some(m.discount_rate);
    o.penalizer = Some(m.penalizer);
    if m.intervals
        || m.interval_draws.is_some()
        || m.interval_level.is_some()
        || m.interval_seed.is_some()
    {
        let d = IntervalOptions::default();
        o.intervals = Some(IntervalOptions::new(
            m.interval_draws.unwrap_or(d.draws),
            m.interval_level.unwrap_or(d.level),
            m.interval_seed.unwrap_or(d.seed),
        )?);
    }
    o.model = match m.model {
        None => None,
        Some(ModelArg::Bgnbd) => Some(PurchaseModel::Bgnbd),
        Some(ModelArg::ParetoNbd) => Some(PurchaseModel::ParetoNbd),
        Some(ModelArg::Mbgnbd) => Some(PurchaseModel::Mbgnbd),
        // `clv fit` handles these itself; they have no place in the CLV section.
        Some(ModelArg::Bgbb | ModelArg::Sbg) if kind == Kind::Clv => None,
        Some(ModelArg::Bgbb | ModelArg::Sbg) => bail!(
            "--model bgbb and --model sbg do not model CLV from transactions; use `custmetrics clv fit --model bgbb --summary FILE` or `clv fit --model sbg --survivors N0,N1,...`"
        ),
    };
    o.holdout_from = date("--holdout-from", &m.holdout_from)?;
    o.forecast_periods = Some(m.forecast_periods);
    let covariates = CovariateChoice::new(
        m.purchase_covariates.clone(),
        m.dropout_covariates.clone(),
        m.spend_covariates.clone(),
    );
    if !covariates.is_empty() {
        o.covariates = Some(covariates);
    }
    o.at_risk_limit = Some(m.at_risk_limit);
    o.transaction_partitions = Some(m.partitions);
    o.sections = match kind {
        // The config file's sections, else all.
        Kind::Report => None,
        Kind::Retention => Some(vec![Section::Retention]),
        Kind::Churn => Some(vec![Section::Churn, Section::Survival]),
        Kind::Nps => Some(vec![Section::Nps]),
        Kind::Csat => Some(vec![Section::Csat]),
        Kind::Rfm => Some(vec![Section::Rfm]),
        Kind::Clv => Some(vec![Section::Clv]),
    };
    let (spec, mut options) = config.resolve(&o)?;
    options.rfm_customers = kind == Kind::Rfm;
    if kind == Kind::Clv {
        options.clv_customers = usize::MAX;
    }

    refuse_shared_outputs(cmd, &config, None)?;
    // Parse thresholds before the (possibly long) run, so a typo fails fast.
    let thresholds = cmd
        .output
        .fail_if
        .iter()
        .map(|t| Threshold::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    let previous = match &cmd.output.compare {
        Some(p) => {
            Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
        }
        None => None,
    };
    Ok(Prepared {
        spec,
        config,
        options,
        thresholds,
        previous,
    })
}

/// Refuses, before any work, two outputs of the run that would land on the same file (`--rejects`
/// and `--output`, or a table of `--output-dir`; `extra` is `--save-model`).
pub fn refuse_shared_outputs(
    cmd: &MetricCommand,
    config: &Config,
    extra: Option<(&str, &std::path::Path)>,
) -> Result<()> {
    let output = cmd.output.output.clone().or_else(|| config.output());
    let files: Vec<(&str, &std::path::Path)> = [
        output.as_deref().map(|p| ("output", p)),
        cmd.input.rejects.as_deref().map(|p| ("rejects", p)),
        extra,
    ]
    .into_iter()
    .flatten()
    .collect();
    let csv_dir = cmd.output.output_dir.as_deref().map(|d| ("output_dir", d));
    Ok(custmetrics::output::refuse_shared_outputs(
        &files,
        csv_dir,
        custmetrics::report::render::is_csv_table_file,
    )?)
}

/// Compares, stamps and writes a report in the chosen format, then checks the thresholds.
pub fn emit(
    mut report: Report,
    cmd: &MetricCommand,
    p: &Prepared,
    inputs: &[std::path::PathBuf],
) -> Result<ExitStatus> {
    let thresholds = &p.thresholds;
    if let Some(previous) = &p.previous {
        report.compare_with(previous)?;
    }
    if cmd.output.stamp {
        let now = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
        report.generated_at = Some(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    }

    let out = &cmd.output;
    let format = out
        .format
        .map(|f| match f {
            FormatArg::Table => Format::Table,
            FormatArg::Markdown => Format::Markdown,
            FormatArg::Json => Format::Json,
            FormatArg::Csv => Format::Csv,
            FormatArg::Html => Format::Html,
        })
        .or_else(|| p.config.format())
        .unwrap_or(Format::Table);
    if let Some(dir) = &out.output_dir {
        if format != Format::Csv {
            bail!("--output-dir is for --format csv; use --output FILE for other formats");
        }
        custmetrics::output::refuse_inputs(dir, inputs)?;
        render::write_csv_dir(&report, dir)?;
        return Ok(finish(report, thresholds));
    }
    let render_options = {
        let mut o = RenderOptions::default();
        o.color = out.output.is_none() && super::stdout_color(out.color);
        o
    };
    let output_path = out.output.clone().or_else(|| p.config.output());
    match output_path {
        Some(path) => {
            custmetrics::output::refuse_inputs(&path, inputs)?;
            custmetrics::output::write_output(&path, |w| {
                render::render(&report, format, &render_options, w)
            })?;
        }
        None => {
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            render::render(&report, format, &render_options, &mut stdout)?;
            stdout.flush()?;
        }
    }
    Ok(finish(report, thresholds))
}

/// Checks the thresholds of a written report, whose memory is then left to the process's exit:
/// freeing a per-customer table (an id string per customer) one allocation at a time was
/// ~50 ms of `rfm` on 2.6M customers, just before the exit that frees it all at once.
fn finish(report: Report, thresholds: &[Threshold]) -> ExitStatus {
    let status = check_thresholds(&report, thresholds);
    std::mem::forget(report);
    status
}

/// Reports crossed thresholds on stderr; the report has already been written.
fn check_thresholds(report: &Report, thresholds: &[Threshold]) -> ExitStatus {
    let mut crossed = false;
    let mut err = std::io::stderr().lock();
    for t in thresholds {
        if let Some(v) = t.is_crossed(&report.headlines) {
            crossed = true;
            writeln!(
                err,
                "custmetrics: threshold crossed: {} (value {v})",
                t.text
            )
            .ok();
        }
    }
    if crossed {
        ExitStatus::ThresholdCrossed
    } else {
        ExitStatus::Success
    }
}
