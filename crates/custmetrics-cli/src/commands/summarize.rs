//! `custmetrics summarize`: stage 1 into a summary store, or new exports added to one.

use std::io::Write;

use anyhow::{Result, bail};
use custmetrics::SummaryStore;
use custmetrics::summary::{Overlap, StoreOptions};

use crate::args::{OverlapArg, SummarizeArgs};
use crate::exit::ExitStatus;

pub fn run(args: SummarizeArgs, quiet: bool) -> Result<ExitStatus> {
    if args.input.store.is_some() {
        bail!("summarize writes a store: --out DIR for a new one, --update DIR to add to one");
    }
    let config = super::load_config(&args.input)?;
    let mut overrides = super::input_overrides(&args.input);
    overrides.transaction_partitions = Some(args.partitions);
    let (spec, _) = config.resolve(&overrides)?;
    let from_engine = args.from_results.is_some() || args.engine != "local";
    if !from_engine {
        super::report::require_input(&spec)?;
    }
    let mut options = StoreOptions::default();
    options.overlap = match args.overlap {
        OverlapArg::Refuse => Overlap::Refuse,
        OverlapArg::Skip => Overlap::Skip,
        OverlapArg::Keep => Overlap::Keep,
    };
    options.allow_empty = args.input.allow_empty;
    options.strict = args.input.strict;
    let progress = super::Progress::start(quiet, "summarising");
    let mut received = None;
    let (store, data, verb) = match (&args.out, &args.update) {
        (Some(dir), None) if from_engine => {
            let results = match (&args.from_results, args.engine.as_str()) {
                (Some(results), _) => custmetrics::engine::read_results(results)?,
                (None, "spark") => spark_results(&args, &spec)?,
                (None, other) => bail!("unknown engine {other}"),
            };
            received = Some((results.result_rows(), results.received_bytes));
            let (store, data) = SummaryStore::write_from_engine(dir, &results, &spec, &options)?;
            (store, data, "wrote")
        }
        (None, Some(_)) if from_engine => {
            bail!(
                "an engine writes a new store (--out DIR); update it with local exports (--update DIR -t FILES)"
            )
        }
        (Some(dir), None) => {
            let (store, data) = SummaryStore::write(dir, &spec, &options)?;
            (store, data, "wrote")
        }
        (None, Some(dir)) => {
            let mut store = SummaryStore::open(dir)?;
            let generation = store.manifest().generation;
            let data = store.update(&spec, &options)?;
            let verb = if store.manifest().generation == generation {
                "every row is already in it: left unchanged"
            } else {
                "updated"
            };
            (store, data, verb)
        }
        _ => bail!("give one of --out DIR (a new store) and --update DIR (add to a store)"),
    };
    progress.finish();
    super::account(&data, &args.input, quiet)?;
    if !quiet {
        let m = store.manifest();
        let mut err = std::io::stderr().lock();
        for t in &m.tables {
            for i in &t.identifiers {
                writeln!(
                    err,
                    "{}: column {} not stored as a dimension: {} distinct values in {} rows (an identifier, not a segment)",
                    t.kind, i.name, i.distinct, i.rows
                )
                .ok();
            }
        }
        if let Some((rows, bytes)) = received {
            let source = if args.from_results.is_some() {
                "read"
            } else {
                "received"
            };
            writeln!(
                err,
                "stage 1 results: {rows} rows, {bytes} bytes {source} from {}",
                if args.from_results.is_some() {
                    "the exported results"
                } else {
                    args.engine.as_str()
                }
            )
            .ok();
        }
        let tables: Vec<String> = m
            .tables
            .iter()
            .map(|t| format!("{} ({} rows used)", t.kind, t.accounting.rows_used))
            .collect();
        writeln!(
            err,
            "summary store {}: {verb} (generation {}, {} inputs): {}",
            store.dir().display(),
            m.generation,
            m.inputs.len(),
            tables.join(", ")
        )
        .ok();
    }
    Ok(ExitStatus::Success)
}

#[cfg(feature = "spark")]
fn spark_results(
    args: &SummarizeArgs,
    spec: &custmetrics::DatasetSpec,
) -> Result<custmetrics::engine::EngineResults> {
    let Some(remote) = &args.remote else {
        bail!("--engine spark needs --remote sc://HOST:PORT (or SPARK_REMOTE)");
    };
    Ok(custmetrics::engine::spark::run(
        remote,
        spec,
        args.identifiers.as_deref(),
    )?)
}

#[cfg(not(feature = "spark"))]
fn spark_results(
    _: &SummarizeArgs,
    _: &custmetrics::DatasetSpec,
) -> Result<custmetrics::engine::EngineResults> {
    bail!(
        "this custmetrics was built without Spark support: install it with `cargo install --path crates/custmetrics-cli --features spark`"
    )
}
