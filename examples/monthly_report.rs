//! A monthly report job written against the library (what `custmetrics report --config` does,
//! for teams who run it inside their own scheduler): load this month's exports, compare with
//! last month's JSON, write Markdown, HTML and JSON atomically, and fail when churn crosses a
//! threshold.
//!
//! Run: `cargo run -p custmetrics --example monthly_report`

use custmetrics::io::{Dataset, DatasetSpec};
use custmetrics::report::headline::Threshold;
use custmetrics::report::render::{self, Format, RenderOptions};
use custmetrics::report::{Report, ReportOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/demo");
    let out = tempfile::tempdir()?;

    let mut spec = DatasetSpec::default();
    spec.transactions = vec![format!("{demo}/transactions.csv")];
    spec.interactions = vec![format!("{demo}/interactions.csv")];
    spec.customers = vec![format!("{demo}/customers.csv")];
    let data = Dataset::load(&spec)?;

    // "Last month": the same job with the observation end a month earlier.
    let mut options = ReportOptions::default();
    options.as_of = chrono::NaiveDate::from_ymd_opt(2024, 11, 30);
    let previous = Report::build(&data, &options)?;
    let previous_json = out.path().join("2024-11.json");
    render::write_atomically(&previous_json, |w| {
        render::render(&previous, Format::Json, &RenderOptions::default(), w)
    })?;

    // This month, with month-over-month deltas on every headline figure.
    options.as_of = chrono::NaiveDate::from_ymd_opt(2024, 12, 31);
    let mut report = Report::build(&data, &options)?;
    report.compare_with(&std::fs::read_to_string(&previous_json)?)?;
    for (format, file) in [
        (Format::Markdown, "2024-12.md"),
        (Format::Html, "2024-12.html"),
        (Format::Json, "2024-12.json"),
    ] {
        let path = out.path().join(file);
        render::refuse_inputs(&path, &data.input_paths())?;
        render::write_atomically(&path, |w| {
            render::render(&report, format, &RenderOptions::default(), w)
        })?;
        println!("wrote {file} ({} bytes)", std::fs::metadata(&path)?.len());
    }
    for h in report.headlines.iter().take(6) {
        if let (Some(value), Some(delta)) = (h.value, h.delta) {
            println!("{}: {value:.3} (change {delta:+.3})", h.label);
        }
    }
    // The CI gate: a threshold crossed fails the job after the report was written.
    let gate = Threshold::parse("churn_rate > 0.9")?;
    if let Some(v) = gate.is_crossed(&report.headlines) {
        return Err(format!("threshold crossed: {} (value {v})", gate.text).into());
    }
    Ok(())
}
