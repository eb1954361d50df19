//! `custmetrics inspect`.

use std::io::Write;

use anyhow::Result;
use custmetrics::io::inspect::inspect;
use custmetrics::io::{TableKind, expand_inputs};
use custmetrics::report::render::{Format, RenderOptions, render_inspections};

use crate::args::{FormatArg, InspectArgs, TableArg};
use crate::exit::ExitStatus;

pub fn run(args: InspectArgs) -> Result<ExitStatus> {
    let config = super::load_config(&args.input)?;
    let spec = config.dataset(&super::input_overrides(&args.input))?;
    let kind = args.table.map(|t| match t {
        TableArg::Transactions => TableKind::Transactions,
        TableArg::Interactions => TableKind::Interactions,
        TableArg::Customers => TableKind::Customers,
    });
    let options = match kind {
        Some(TableKind::Interactions) => &spec.interactions_options,
        Some(TableKind::Customers) => &spec.customers_options,
        _ => &spec.transactions_options,
    };
    let mut results = Vec::new();
    for input in expand_inputs(&args.files)? {
        results.push(inspect(&input, kind, options)?);
    }
    let format = match args.format {
        FormatArg::Table => Format::Table,
        FormatArg::Markdown => Format::Markdown,
        FormatArg::Json => Format::Json,
        FormatArg::Csv => Format::Csv,
        FormatArg::Html => Format::Html,
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    render_inspections(&results, format, &RenderOptions::default(), &mut out)?;
    out.flush()?;
    Ok(ExitStatus::Success)
}
