//! `custmetrics report` and the single-metric commands, which are the report limited to sections.

use std::io::Write;

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use custmetrics::io::Dataset;
use custmetrics::period::Period;
use custmetrics::report::headline::Threshold;
use custmetrics::report::render::{self, Format, RenderOptions};
use custmetrics::report::{Report, ReportOptions, Section};

use crate::args::{FormatArg, MetricCommand, ModelArg, TimeUnit};
use crate::exit::ExitStatus;
use custmetrics::models::purchase::PurchaseModel;

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

fn date(flag: &str, v: &Option<String>) -> Result<Option<NaiveDate>> {
    v.as_deref()
        .map(|s| {
            NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .with_context(|| format!("{flag} {s:?}: expected YYYY-MM-DD"))
        })
        .transpose()
}

/// Everything a metric command needs before reading data: the inputs, the report options, and
/// the output settings (parsed first, so that a typo fails before a long run).
pub struct Prepared {
    pub spec: custmetrics::io::DatasetSpec,
    pub report_config: custmetrics::io::config::ReportConfig,
    pub options: ReportOptions,
    pub thresholds: Vec<Threshold>,
    pub previous: Option<String>,
}

pub fn run(cmd: MetricCommand, kind: Kind, quiet: bool) -> Result<ExitStatus> {
    let p = prepare(&cmd, kind)?;
    require_input(&p.spec)?;
    let progress = super::Progress::start(quiet, "reading inputs");
    let mut data = Dataset::load(&p.spec)?;
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

pub fn require_input(spec: &custmetrics::io::DatasetSpec) -> Result<()> {
    if spec.transactions.is_empty() && spec.interactions.is_empty() && spec.customers.is_empty() {
        bail!(
            "no input: pass --transactions FILE (and/or --interactions, --customers), or --config custmetrics.toml"
        );
    }
    Ok(())
}

pub fn prepare(cmd: &MetricCommand, kind: Kind) -> Result<Prepared> {
    let config = super::load_config(&cmd.input)?;
    let mut spec = super::dataset_spec(&cmd.input, config.as_ref())?;
    let report_config = config
        .as_ref()
        .and_then(|c| c.report.clone())
        .unwrap_or_default();
    let m = &cmd.metrics;
    let mut options = ReportOptions::default();
    if let Some(p) = m.period.as_ref().or(report_config.period.as_ref()) {
        options.period = Period::from_setting(p)?;
    }
    options.from = date("--from", &m.from)?;
    options.as_of = match (date("--as-of", &m.as_of)?, date("--to", &m.to)?) {
        (Some(a), _) | (None, Some(a)) => Some(a),
        (None, None) => date("as_of", &report_config.as_of)?,
    };
    options.by = if m.by.is_empty() {
        report_config.by.clone()
    } else {
        m.by.clone()
    };
    // Only the `by` dimensions are read: the others would be parsed and held for nothing.
    for o in [
        &mut spec.transactions_options,
        &mut spec.interactions_options,
        &mut spec.customers_options,
    ] {
        o.read_dimensions = Some(options.by.clone());
    }
    options.inactive_after_days = m
        .inactive_after
        .or(report_config.inactive_after)
        .unwrap_or(90);
    options.min_responses = m.min_responses;
    if let Some(a) = m.active_on.as_ref().or(report_config.active_on.as_ref()) {
        options.active_on = custmetrics::report::ActiveOn::from_setting(a)?;
    }
    options.csat_scale = spec.interactions_options.csat_scale;
    options.csat_satisfied_from = m
        .csat_satisfied
        .unwrap_or(options.csat_scale.saturating_sub(1).max(1));
    let unit_days = |u: TimeUnit| if u == TimeUnit::Weeks { 7 } else { 1 };
    options.time_unit_days = m.time_unit.map_or(1, unit_days);
    let mut clv = custmetrics::models::clv::ClvOptions::default();
    clv.time_unit_days = m.time_unit.map_or(7, unit_days);
    clv.horizon = m
        .horizon
        .unwrap_or(if clv.time_unit_days == 7 { 52 } else { 365 });
    if !(0.0..10.0).contains(&m.discount_rate) {
        bail!(
            "--discount-rate {}: expected a yearly rate such as 0.10",
            m.discount_rate
        );
    }
    clv.annual_discount_rate = m.discount_rate;
    clv.fit.penalizer = m.penalizer;
    clv.model = match m.model {
        None | Some(ModelArg::Bgnbd) => PurchaseModel::Bgnbd,
        Some(ModelArg::ParetoNbd) => PurchaseModel::ParetoNbd,
        Some(ModelArg::Mbgnbd) => PurchaseModel::Mbgnbd,
        // `clv fit` handles these itself; they have no place in the CLV section.
        Some(ModelArg::Bgbb | ModelArg::Sbg) if kind == Kind::Clv => PurchaseModel::Bgnbd,
        Some(ModelArg::Bgbb | ModelArg::Sbg) => bail!(
            "--model bgbb and --model sbg do not model CLV from transactions; use `custmetrics clv fit --model bgbb --summary FILE` or `clv fit --model sbg --survivors N0,N1,...`"
        ),
    };
    options.clv = clv;
    options.clv_holdout_from = date("--holdout-from", &m.holdout_from)?;
    options.at_risk_limit = m.at_risk_limit;
    spec.transaction_partitions = m.partitions;
    options.sections = match kind {
        Kind::Report if !report_config.sections.is_empty() => report_config.sections.clone(),
        Kind::Report => Section::ALL.to_vec(),
        Kind::Retention => vec![Section::Retention],
        Kind::Churn => vec![Section::Churn, Section::Survival],
        Kind::Nps => vec![Section::Nps],
        Kind::Csat => vec![Section::Csat],
        Kind::Rfm => vec![Section::Rfm],
        Kind::Clv => vec![Section::Clv],
    };
    options.rfm_customers = kind == Kind::Rfm;
    if kind == Kind::Clv {
        options.clv_customers = usize::MAX;
    }

    refuse_shared_outputs(cmd, &report_config, None)?;
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
        report_config,
        options,
        thresholds,
        previous,
    })
}

/// Refuses, before any work, two outputs of the run that would land on the same file (`--rejects`
/// and `--output`, or a table of `--output-dir`; `extra` is `--save-model`).
pub fn refuse_shared_outputs(
    cmd: &MetricCommand,
    report_config: &custmetrics::io::config::ReportConfig,
    extra: Option<(&str, &std::path::Path)>,
) -> Result<()> {
    let output = cmd
        .output
        .output
        .clone()
        .or_else(|| report_config.output.as_ref().map(Into::into));
    let files: Vec<(&str, &std::path::Path)> = [
        output.as_deref().map(|p| ("output", p)),
        cmd.input.rejects.as_deref().map(|p| ("rejects", p)),
        extra,
    ]
    .into_iter()
    .flatten()
    .collect();
    let csv_dir = cmd.output.output_dir.as_deref().map(|d| ("output_dir", d));
    Ok(custmetrics::output::refuse_shared_outputs(&files, csv_dir)?)
}

/// Compares, stamps and writes a report in the chosen format, then checks the thresholds.
pub fn emit(
    mut report: Report,
    cmd: &MetricCommand,
    p: &Prepared,
    inputs: &[std::path::PathBuf],
) -> Result<ExitStatus> {
    let (report_config, thresholds) = (&p.report_config, &p.thresholds);
    if let Some(previous) = &p.previous {
        report.compare_with(previous)?;
    }
    if cmd.output.stamp {
        let now = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
        report.generated_at = Some(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    }

    let out = &cmd.output;
    let format = match out
        .format
        .or_else(|| report_config.format.as_deref().and_then(parse_format))
    {
        Some(FormatArg::Table) | None => Format::Table,
        Some(FormatArg::Markdown) => Format::Markdown,
        Some(FormatArg::Json) => Format::Json,
        Some(FormatArg::Csv) => Format::Csv,
        Some(FormatArg::Html) => Format::Html,
    };
    if let Some(dir) = &out.output_dir {
        if format != Format::Csv {
            bail!("--output-dir is for --format csv; use --output FILE for other formats");
        }
        custmetrics::output::refuse_inputs(dir, inputs)?;
        render::write_csv_dir(&report, dir)?;
        return Ok(check_thresholds(&report, thresholds));
    }
    let render_options = {
        let mut o = RenderOptions::default();
        o.color = out.output.is_none() && super::stdout_color(out.color);
        o
    };
    let output_path = out
        .output
        .clone()
        .or_else(|| report_config.output.as_ref().map(Into::into));
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
    Ok(check_thresholds(&report, thresholds))
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

fn parse_format(s: &str) -> Option<FormatArg> {
    match s {
        "table" => Some(FormatArg::Table),
        "markdown" | "md" => Some(FormatArg::Markdown),
        "json" => Some(FormatArg::Json),
        "csv" => Some(FormatArg::Csv),
        "html" => Some(FormatArg::Html),
        _ => None,
    }
}
