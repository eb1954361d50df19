//! `custmetrics generate`.

use std::io::Write;

use anyhow::Result;
use custmetrics::generate::{GenerateFormat, GenerateOptions, generate};

use crate::args::{GenFormat, GenerateArgs};
use crate::exit::ExitStatus;

pub fn run(args: GenerateArgs, quiet: bool) -> Result<ExitStatus> {
    let mut options = GenerateOptions::default();
    options.customers = args.customers;
    options.seed = args.seed;
    options.format = match args.format {
        GenFormat::Csv => GenerateFormat::Csv,
        GenFormat::Parquet => GenerateFormat::Parquet,
    };
    let files = generate(&options, &args.out)?;
    if !quiet {
        let mut err = std::io::stderr().lock();
        writeln!(
            err,
            "wrote {} ({} rows)",
            files.transactions.display(),
            files.transaction_rows
        )
        .ok();
        writeln!(
            err,
            "wrote {} ({} rows)",
            files.interactions.display(),
            files.interaction_rows
        )
        .ok();
        writeln!(
            err,
            "wrote {} ({} rows)",
            files.customers.display(),
            files.customer_rows
        )
        .ok();
    }
    Ok(ExitStatus::Success)
}
