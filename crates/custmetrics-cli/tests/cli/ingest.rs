use crate::{assert_code, json, run, stderr, stdout, testdata};

#[test]
fn inspect_semicolon_decimal_comma_day_first() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &[
            "inspect",
            &testdata("formats/semicolon_decimal_comma_dmy.csv"),
        ],
    );
    assert_code(&out, 0);
    let text = stdout(&out);
    for want in [
        "delimiter   ;",
        "Kundennummer",
        "customer id",
        "(DD/MM/YYYY)",
        "(decimal comma)",
        "4 read, 3 used, 0 rejected, 1 excluded (refund_without_purchase: 1)",
        // K3's refund of 2024-03-03 is excluded (K3 bought nothing here).
        "2024-01-05 to 2024-02-20",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}

#[test]
fn report_reads_gzip_parquet_and_other_crm_headers() {
    let dir = tempfile::tempdir().unwrap();
    let src = testdata("fixtures/retention_small.csv");
    let gz = dir.path().join("orders.csv.gz");
    {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        e.write_all(&std::fs::read(&src).unwrap()).unwrap();
        e.finish().unwrap();
    }
    let plain = json(&run(
        dir.path(),
        &["report", "-t", &src, "--format", "json"],
    ));
    let zipped = json(&run(
        dir.path(),
        &["report", "-t", gz.to_str().unwrap(), "--format", "json"],
    ));
    assert_eq!(plain["overview"], zipped["overview"]);
    assert_eq!(plain["overview"]["customers"], 4);
    assert_eq!(plain["overview"]["first_date"], "2024-01-05");

    // Parquet written by `generate`, compared with the CSV of the same seed.
    assert_code(
        &run(
            dir.path(),
            &[
                "generate",
                "--out",
                "pq",
                "--customers",
                "200",
                "--format",
                "parquet",
            ],
        ),
        0,
    );
    assert_code(
        &run(
            dir.path(),
            &["generate", "--out", "csv", "--customers", "200"],
        ),
        0,
    );
    let a = json(&run(
        dir.path(),
        &[
            "report",
            "-t",
            "pq/transactions.parquet",
            "-i",
            "pq/interactions.parquet",
            "--format",
            "json",
        ],
    ));
    let b = json(&run(
        dir.path(),
        &[
            "report",
            "-t",
            "csv/transactions.csv",
            "-i",
            "csv/interactions.csv",
            "--format",
            "json",
        ],
    ));
    assert_eq!(a["overview"], b["overview"]);
    assert_eq!(a["nps"], b["nps"]);

    let shopify = json(&run(
        dir.path(),
        &[
            "report",
            "-t",
            &testdata("formats/shopify_orders.csv"),
            "--format",
            "json",
        ],
    ));
    // #1003 is written as a refund (Total −20.00): money given back to ann, not a purchase.
    assert_eq!(shopify["overview"]["transactions"], 2);
    assert_eq!(shopify["overview"]["revenue"], 1235.0);
}

#[test]
fn ambiguous_dates_fail_with_a_hint_and_format_flag_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    let f = testdata("bad/dates_ambiguous_dmy_mdy.csv");
    let out = run(dir.path(), &["report", "-t", &f]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("could be day-first") && err.contains("hint: pass --date-format dmy"),
        "{err}"
    );
    let ok = json(&run(
        dir.path(),
        &[
            "report",
            "-t",
            &f,
            "--date-format",
            "dmy",
            "--format",
            "json",
        ],
    ));
    assert_eq!(ok["overview"]["first_date"], "2024-02-01");
}

#[test]
fn rejected_rows_are_counted_listed_and_strict_fails() {
    let dir = tempfile::tempdir().unwrap();
    let f = testdata("bad/bad_values.csv");
    let out = run(
        dir.path(),
        &[
            "report",
            "-t",
            &f,
            "--format",
            "json",
            "--rejects",
            "rejects.csv",
        ],
    );
    let v = json(&out);
    let acc = &v["accounting"]["transactions"];
    assert_eq!(
        (
            acc["rows_read"].as_u64(),
            acc["rows_used"].as_u64(),
            acc["rows_rejected"].as_u64()
        ),
        (Some(9), Some(2), Some(7))
    );
    assert_eq!(acc["rejected_by_reason"]["invalid_date"], 1);
    assert!(
        stderr(&out).contains(
            "bad_values.csv:5: column \"order_date\": no such calendar date: \"2023-02-30\""
        ),
        "{}",
        stderr(&out)
    );
    let rejects = std::fs::read_to_string(dir.path().join("rejects.csv")).unwrap();
    assert_eq!(rejects.lines().count(), 8, "{rejects}");
    assert!(
        rejects.contains("order_date,2023-02-30,invalid_date"),
        "{rejects}"
    );

    let strict = run(dir.path(), &["report", "-t", &f, "--strict"]);
    assert_code(&strict, 1);
    assert!(
        stderr(&strict).contains("bad_values.csv:3: column \"customer_id\": missing customer id"),
        "{}",
        stderr(&strict)
    );
}

#[test]
fn exit_codes_for_missing_files_and_usage() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["report", "-t", "nope.csv"]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).starts_with("custmetrics: error: nope.csv:"),
        "{}",
        stderr(&out)
    );
    assert_code(&run(dir.path(), &["report", "--no-such-flag"]), 2);
    assert_code(
        &run(
            dir.path(),
            &["report", "-t", &testdata("bad/missing_customer_column.csv")],
        ),
        1,
    );
    let glob = run(dir.path(), &["report", "-t", "exports/*.csv"]);
    assert_code(&glob, 1);
    assert!(
        stderr(&glob).contains("no file matches"),
        "{}",
        stderr(&glob)
    );
}

#[test]
fn column_flags_and_config_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("deals.csv"), "Deal ID,Close Date,Amount,Associated Contact,Associated Company\nD1,2024-01-02,100,ann,Acme\nD2,2024-02-03,50,bob,Acme\n").unwrap();
    // Both candidates are names (issue 18, item 5): refused, naming them and the flag.
    let out = run(dir.path(), &["report", "-t", "deals.csv"]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("\"Associated Contact\", \"Associated Company\"")
            && stderr(&out).contains("--customer-col"),
        "{}",
        stderr(&out)
    );
    let v = json(&run(
        dir.path(),
        &[
            "report",
            "-t",
            "deals.csv",
            "--customer-col",
            "Associated Contact",
            "--format",
            "json",
        ],
    ));
    assert_eq!(v["overview"]["customers"], 2);
    std::fs::write(dir.path().join("custmetrics.toml"), "[transactions]\nfiles = [\"deals.csv\"]\n[transactions.columns]\ncustomer_id = \"Associated Company\"\n[report]\nperiod = \"quarter\"\n").unwrap();
    let v = json(&run(dir.path(), &["report", "--format", "json"]));
    assert_eq!(v["overview"]["customers"], 1);
    assert_eq!(v["settings"]["period"], "quarter");
    std::fs::write(
        dir.path().join("bad.toml"),
        "[transactions]\nfile = [\"deals.csv\"]\n",
    )
    .unwrap();
    let out = run(dir.path(), &["report", "--config", "bad.toml"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("unknown field"), "{}", stderr(&out));
}
