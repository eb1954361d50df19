//! arrow-rs interop (feature `arrow`): an application that holds its orders as arrow-rs
//! `RecordBatch`es (from DataFusion, delta-rs, Flight, ...) hands them to custmetrics without
//! writing a file, and gets the per-customer RFM table back as a `RecordBatch`.
//!
//! Run: `cargo run -p custmetrics --features arrow --example arrow_interop`

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use custmetrics::io::arrow::{load_record_batches, to_record_batch};
use custmetrics::io::{Dataset, LoadOptions, TableKind};
use custmetrics::report::{Report, ReportOptions, Section};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Two batches of the same schema, as a query engine would stream them.
    let batch = |ids: Vec<&str>, dates: Vec<&str>, amounts: Vec<f64>| {
        RecordBatch::try_from_iter(vec![
            ("customer", Arc::new(StringArray::from(ids)) as ArrayRef),
            ("order_date", Arc::new(StringArray::from(dates)) as ArrayRef),
            ("total", Arc::new(Float64Array::from(amounts)) as ArrayRef),
        ])
    };
    let batches = [
        batch(
            vec!["a", "b", "c", "a"],
            vec!["2024-01-05", "2024-01-10", "2024-01-20", "2024-02-03"],
            vec![10.0, 25.0, 12.5, 30.0],
        )?,
        batch(
            vec!["d", "a", "b"],
            vec!["2024-02-14", "2024-03-01", "2024-03-09"],
            vec![8.0, 14.0, 40.0],
        )?,
    ];
    let transactions = load_record_batches(
        TableKind::Transactions,
        "orders (arrow)",
        &batches,
        &LoadOptions::default(),
    )?;
    println!(
        "{} rows read, {} used, {} rejected",
        transactions.accounting.rows_read,
        transactions.accounting.rows_used,
        transactions.accounting.rows_rejected
    );
    let data = Dataset {
        transactions: Some(transactions),
        ..Dataset::default()
    };
    let mut options = ReportOptions::default();
    options.sections = vec![Section::Rfm, Section::Retention];
    options.rfm_customers = true;
    let report = Report::build(&data, &options)?;

    // Every table of the report as a typed DataFrame, and one of them as a RecordBatch.
    for (name, df) in report.to_dataframes()? {
        println!("{name}: {} rows × {} columns", df.height(), df.width());
        if name == "rfm_customers" {
            let rfm = to_record_batch(&df)?;
            println!(
                "  as arrow-rs: {:?}",
                rfm.schema()
                    .fields()
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
            );
            assert_eq!(rfm.num_rows(), 4);
        }
    }
    Ok(())
}
