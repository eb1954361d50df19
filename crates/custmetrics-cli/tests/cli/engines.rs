//! `custmetrics sql` and `summarize --from-results` through the real binary. That the SQL
//! gives the local store on real engines is checked by scripts/engines/check.sh (in .ci/run);
//! here: what the commands print, and how they refuse.

use super::{assert_code, run, stderr, stdout};

/// The demo transactions' header, as `--transactions-columns` takes it.
const TX_COLUMNS: &str = "order_id,customer_id,order_date,amount,currency,sales_channel,region";

#[test]
fn sql_prints_one_named_block_per_result_in_every_dialect() {
    let dir = tempfile::tempdir().unwrap();
    for dialect in ["duckdb", "postgres", "spark", "bigquery", "snowflake"] {
        let out = run(
            dir.path(),
            &[
                "sql",
                "--dialect",
                dialect,
                "-t",
                "shop.orders",
                "--transactions-columns",
                TX_COLUMNS,
            ],
        );
        assert_code(&out, 0);
        let text = stdout(&out);
        let blocks: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("-- custmetrics: "))
            .collect();
        assert_eq!(
            blocks,
            ["plan", "purchases", "accounting"],
            "{dialect}:\n{text}"
        );
        assert!(
            text.contains("shop.orders"),
            "{dialect}: reads the relation"
        );
        // The plan block carries the mapping the store is assembled with.
        assert!(text.contains("\"order_date\""), "{dialect}:\n{text}");
    }
}

#[test]
fn sql_writes_the_file_given_with_o() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &[
            "sql",
            "--dialect",
            "duckdb",
            "-t",
            "orders",
            "--transactions-columns",
            TX_COLUMNS,
            "-o",
            "stage1.sql",
        ],
    );
    assert_code(&out, 0);
    assert!(stdout(&out).is_empty());
    let script = std::fs::read_to_string(dir.path().join("stage1.sql")).unwrap();
    assert!(script.contains("-- custmetrics: purchases"));
}

#[test]
fn sql_needs_the_relations_columns() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &["sql", "--dialect", "postgres", "-t", "orders"],
    );
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("give the columns of orders with --transactions-columns"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn sql_refuses_what_an_engine_cannot_read_exactly() {
    let dir = tempfile::tempdir().unwrap();
    // A date format the local reader understands but the SQL would have to approximate.
    let out = run(
        dir.path(),
        &[
            "sql",
            "--dialect",
            "postgres",
            "-t",
            "orders",
            "--transactions-columns",
            TX_COLUMNS,
            "--date-format",
            "dmy",
        ],
    );
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains("--date-format DD/MM/YYYY is read only by the local reader"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "no partial SQL on a refusal");
}

#[test]
fn from_results_names_the_missing_result_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("results")).unwrap();
    let out = run(
        dir.path(),
        &["summarize", "--from-results", "results", "--out", "store"],
    );
    assert_ne!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(
        err.contains("no plan result (expected plan.parquet or plan.csv"),
        "{err}"
    );
    assert!(!dir.path().join("store").exists());
}
