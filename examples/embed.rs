//! Embedding custmetrics in another tool, library only: load the demo exports, build the report,
//! and use the typed results directly.
//!
//! Run: `cargo run -p custmetrics --example embed`

use custmetrics::io::{Dataset, DatasetSpec};
use custmetrics::period::Period;
use custmetrics::report::{Report, ReportOptions, Section};

fn main() -> Result<(), custmetrics::Error> {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/demo");
    let mut spec = DatasetSpec::default();
    spec.transactions = vec![format!("{demo}/transactions.csv")];
    spec.interactions = vec![format!("{demo}/interactions.csv")];
    let data = Dataset::load(&spec)?;

    let mut options = ReportOptions::default();
    options.period = Period::Quarter;
    options.sections = vec![Section::Retention, Section::Nps];
    let report = Report::build(&data, &options)?;

    if let Some(retention) = &report.retention {
        for p in retention.periods.iter().rev().take(4).rev() {
            let rate = p
                .retention_rate
                .map_or("–".to_string(), |r| format!("{:.1}%", r * 100.0));
            println!("{}: {} active, retention {rate}", p.period, p.customers_end);
        }
    }
    if let Some(nps) = &report.nps {
        let o = &nps.overall;
        println!(
            "NPS {:.1} (95% CI {:.1} to {:.1}, n = {})",
            o.score, o.ci_low, o.ci_high, o.responses
        );
    }
    Ok(())
}
