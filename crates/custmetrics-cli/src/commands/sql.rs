//! `custmetrics sql`: the stage-1 SQL for a warehouse.

use anyhow::{Result, bail};
use custmetrics::engine::{Dialect, EngineInput, Stage1Plan, stage1_sql};

use crate::args::SqlArgs;
use crate::exit::ExitStatus;

pub fn run(args: SqlArgs) -> Result<ExitStatus> {
    if args.input.store.is_some() || !args.input.customers.is_empty() {
        bail!(
            "sql reads transactions (-t) and interactions (-i) relations; the customers table is read by `summarize --from-results DIR -c FILE`"
        );
    }
    let config = super::load_config(&args.input)?;
    let (spec, _) = config.resolve(&super::input_overrides(&args.input))?;
    let relation = |names: &[String],
                    columns: &Option<String>,
                    flag: &str|
     -> Result<Option<EngineInput>> {
        match names {
            [] => Ok(None),
            [one] => {
                let Some(columns) = columns else {
                    bail!(
                        "give the columns of {one} with {flag} (comma-separated, e.g. the export's header line)"
                    );
                };
                Ok(Some(EngineInput {
                    relation: one.clone(),
                    columns: split_columns(columns),
                    file_column: args.file_column.clone(),
                    identifiers: Vec::new(),
                }))
            }
            _ => bail!("one relation per table: make the files one view or table in the warehouse"),
        }
    };
    let transactions = relation(
        &spec.transactions,
        &args.transactions_columns,
        "--transactions-columns",
    )?;
    let mut interactions = relation(
        &spec.interactions,
        &args.interactions_columns,
        "--interactions-columns",
    )?;
    if let Some(i) = interactions.as_mut() {
        i.identifiers = args.identifiers.clone();
    }
    if transactions.is_none() && interactions.is_none() {
        bail!("name a transactions relation (-t) or an interactions relation (-i)");
    }
    let plan = Stage1Plan::new(
        Dialect::from_name(&args.dialect)?,
        &spec,
        transactions,
        interactions,
    )?;
    let script = stage1_sql(&plan)?.script();
    match &args.output {
        Some(path) => custmetrics::output::write_output(path, |w| w.write_all(script.as_bytes()))?,
        None => {
            use std::io::Write;
            std::io::stdout().lock().write_all(script.as_bytes())?;
        }
    }
    Ok(ExitStatus::Success)
}

/// `a,b, "c d"` → the column names (a CSV header line: quoted names may hold commas).
fn split_columns(line: &str) -> Vec<String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .from_reader(line.as_bytes());
    reader
        .records()
        .next()
        .and_then(|r| r.ok())
        .map(|r| r.iter().map(str::to_string).collect())
        .unwrap_or_default()
}
