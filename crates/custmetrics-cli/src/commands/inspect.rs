//! `custmetrics inspect`.

use std::io::Write;

use anyhow::Result;
use custmetrics::io::inspect::inspect;
use custmetrics::io::{TableKind, expand_inputs};

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
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.format {
        FormatArg::Json => {
            serde_json::to_writer_pretty(
                &mut out,
                &serde_json::json!({ "schema_version": custmetrics::report::SCHEMA_VERSION, "files": results }),
            )?;
            writeln!(out)?;
        }
        _ => {
            for r in &results {
                write!(out, "{}", r.to_text())?;
            }
        }
    }
    out.flush()?;
    Ok(ExitStatus::Success)
}
