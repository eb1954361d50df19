//! Fit the CLV models once, save the fitted parameters as JSON, and load them later (next month,
//! another service) to score customers without refitting.
//!
//! Run: `cargo run -p custmetrics --example score_with_saved_model`

use custmetrics::io::{LoadOptions, TableKind, load_table};
use custmetrics::metrics::rfm;
use custmetrics::models::bgnbd::{BgNbd, BgNbdFit};
use custmetrics::models::{FitOptions, clv};
use custmetrics::period::Period;
use custmetrics::summary;
use polars::prelude::IntoLazy;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/demo/transactions.csv"
    );
    let table = load_table(TableKind::Transactions, &[path], &LoadOptions::default())?;
    let summaries = summary::summarise(table.frame.lazy(), Period::Month, None, &[])?;
    let weeks = rfm::rfm(&summaries, 7);
    let observations = clv::observations(&weeks);

    // Fit and save.
    let fit = BgNbd::fit(&observations, 7.0, &FitOptions::default())?;
    let saved = serde_json::to_string_pretty(&fit)?;
    let file = std::env::temp_dir().join("custmetrics-bgnbd.json");
    std::fs::write(&file, &saved)?;

    // Later: load and score, in the model's unit (weeks, recorded in the file).
    let loaded: BgNbdFit = serde_json::from_str(&std::fs::read_to_string(&file)?)?;
    assert_eq!(loaded.params, fit.params);
    println!(
        "model in {}-day units, r = {:.3}, alpha = {:.3}",
        loaded.time_unit_days, loaded.params.r, loaded.params.alpha
    );
    for (customer, o) in weeks.customers.iter().zip(&observations).take(5) {
        let alive = loaded.probability_alive(o.frequency, o.recency, o.t);
        let next_quarter =
            loaded.conditional_expected_purchases(13.0, o.frequency, o.recency, o.t)?;
        println!(
            "{}: P(alive) {:.2}, expected purchases in 13 weeks {:.2}",
            customer.customer_id, alive, next_quarter
        );
    }
    std::fs::remove_file(file)?;
    Ok(())
}
