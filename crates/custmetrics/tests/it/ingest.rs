use custmetrics::io::{LoadOptions, RejectReason, Role, TableKind, col, load_table};
use polars::prelude::*;

use crate::testdata;

fn amounts(t: &custmetrics::io::Table) -> Vec<f64> {
    t.frame
        .column(col::AMOUNT)
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect()
}

#[test]
fn semicolon_decimal_comma_day_first() {
    let t = load_table(
        TableKind::Transactions,
        &[testdata("formats/semicolon_decimal_comma_dmy.csv")],
        &LoadOptions::default(),
    )
    .unwrap();
    let f = &t.files[0];
    assert_eq!(f.delimiter.as_deref(), Some(";"));
    assert_eq!(f.columns.column(Role::CustomerId), Some("Kundennummer"));
    assert_eq!(
        f.date_formats.get("Datum").map(String::as_str),
        Some("DD/MM/YYYY")
    );
    // K3's `(5,00)` is a refund, and K3 bought nothing in the file: excluded, not a customer.
    assert_eq!(amounts(&t), vec![1234.5, 12.0, 99.9]);
    assert_eq!(t.accounting.rows_rejected, 0);
    assert_eq!(
        t.accounting
            .excluded_by_reason
            .get("refund_without_purchase"),
        Some(&1)
    );
    assert_eq!(t.dimensions, vec!["Kanal".to_string()]);
}

#[test]
fn uci_online_retail_lines_become_orders() {
    let t = load_table(
        TableKind::Transactions,
        &[testdata("formats/uci_online_retail.csv")],
        &LoadOptions::default(),
    )
    .unwrap();
    // 9 lines: one exact duplicate line and one line without CustomerID are rejected.
    assert_eq!(t.accounting.rows_read, 9);
    assert_eq!(t.accounting.rows_rejected, 2);
    assert_eq!(
        t.accounting.rejected_by_reason.get("duplicate_row"),
        Some(&1)
    );
    assert_eq!(
        t.accounting.rejected_by_reason.get("missing_customer_id"),
        Some(&1)
    );
    // The cancellation C536379 is a refund (−27.50) of customer 14527, who bought nothing in
    // the file: excluded as a refund without a purchase.
    assert_eq!(
        t.accounting
            .excluded_by_reason
            .get("refund_without_purchase"),
        Some(&1)
    );
    assert_eq!(
        t.accounting.rows_used + t.accounting.rows_rejected + t.accounting.rows_excluded,
        t.accounting.rows_read
    );
    // Orders: 536365 (2 lines: 6×2.55 + 6×3.39 = 35.64), 536366, 536367, 536520, 537626.
    assert_eq!(t.frame.height(), 5);
    let a = amounts(&t);
    assert!((a[0] - 35.64).abs() < 1e-9, "{a:?}");
    // The duplicate row is reported with its CSV line (header = line 1, CRLF endings).
    let dup = t
        .rejections
        .iter()
        .find(|r| r.reason == RejectReason::DuplicateRow)
        .unwrap();
    assert_eq!(dup.line, Some(6));
    let missing = t
        .rejections
        .iter()
        .find(|r| r.reason == RejectReason::MissingCustomerId)
        .unwrap();
    assert_eq!((missing.line, missing.row), (Some(7), 6));
}

#[test]
fn other_crm_headers() {
    let shopify = load_table(
        TableKind::Transactions,
        &[testdata("formats/shopify_orders.csv")],
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(shopify.files[0].columns.column(Role::Amount), Some("Total"));
    assert_eq!(amounts(&shopify), vec![45.0, 1210.0, -20.0]);
    let stripe = load_table(
        TableKind::Transactions,
        &[testdata("formats/stripe_charges.csv")],
        &LoadOptions::default(),
    )
    .unwrap();
    // UTF-8 BOM and CRLF: the first header is still "id".
    assert_eq!(
        stripe.files[0].columns.column(Role::CustomerId),
        Some("Customer ID")
    );
    assert_eq!(amounts(&stripe), vec![19.99, 5.0, 19.99]);
    let zendesk = load_table(
        TableKind::Interactions,
        &[testdata("formats/zendesk_satisfaction.csv")],
        &LoadOptions::default(),
    )
    .unwrap();
    let csat: Vec<Option<i32>> = zendesk
        .frame
        .column(col::CSAT)
        .unwrap()
        .i32()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(csat, vec![Some(5), Some(1), None, Some(5)]);
}

#[test]
fn every_rejection_reason_is_counted() {
    let t = load_table(
        TableKind::Transactions,
        &[testdata("bad/bad_values.csv")],
        &LoadOptions::default(),
    )
    .unwrap();
    let a = &t.accounting;
    assert_eq!((a.rows_read, a.rows_used, a.rows_rejected), (9, 2, 7));
    for reason in [
        "missing_customer_id",
        "unparsable_date",
        "invalid_date",
        "date_out_of_range",
        "unparsable_amount",
        "missing_amount",
        "non_finite_amount",
    ] {
        assert_eq!(
            a.rejected_by_reason.get(reason),
            Some(&1),
            "{reason}: {a:?}"
        );
    }
    let invalid = t
        .rejections
        .iter()
        .find(|r| r.reason == RejectReason::InvalidDate)
        .unwrap();
    assert_eq!(
        (
            invalid.line,
            invalid.column.as_str(),
            invalid.value.as_str()
        ),
        (Some(5), "order_date", "2023-02-30")
    );
    let scores = load_table(
        TableKind::Interactions,
        &[testdata("bad/bad_scores.csv")],
        &LoadOptions::default(),
    )
    .unwrap();
    // A bad answer rejects the answer, not the interaction (issue 18, item 10): all 7 rows are
    // used, and the 6 bad answers are counted apart.
    let a = &scores.accounting;
    let r = &a.answers_rejected_by_reason;
    assert_eq!(r.get("nps_out_of_range"), Some(&3));
    assert_eq!(r.get("csat_out_of_range"), Some(&2));
    assert_eq!(r.get("unparsable_score"), Some(&1));
    assert_eq!(
        (a.rows_used, a.rows_rejected, a.answers_rejected),
        (7, 0, 6)
    );
}

#[test]
fn ambiguous_dates_and_missing_columns_are_errors() {
    let err = load_table(
        TableKind::Transactions,
        &[testdata("bad/dates_ambiguous_dmy_mdy.csv")],
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("day-first"), "{err}");
    let err = load_table(
        TableKind::Transactions,
        &[testdata("bad/missing_customer_column.csv")],
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("no column for the customer id"),
        "{err}"
    );
    let err = load_table(
        TableKind::Transactions,
        &[testdata("bad/empty.csv")],
        &LoadOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    let t = load_table(
        TableKind::Transactions,
        &[testdata("bad/header_only.csv")],
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(t.accounting.rows_read, 0);
}

#[test]
fn several_files_equal_one() {
    let one = load_table(
        TableKind::Transactions,
        &[testdata("fixtures/retention_small.csv")],
        &LoadOptions::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(testdata("fixtures/retention_small.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let (a, b) = rows.split_at(3);
    std::fs::write(
        dir.path().join("part-1.csv"),
        format!("{header}\n{}\n", a.join("\n")),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("part-2.csv"),
        format!("{header}\n{}\n", b.join("\n")),
    )
    .unwrap();
    let glob = dir.path().join("part-*.csv").to_string_lossy().into_owned();
    let two = load_table(TableKind::Transactions, &[glob], &LoadOptions::default()).unwrap();
    assert_eq!(one.frame, two.frame);
    assert_eq!(two.files.len(), 2);
}

#[test]
fn parquet_ipc_and_gzip_read_like_csv() {
    let csv = load_table(
        TableKind::Transactions,
        &[testdata("fixtures/retention_small.csv")],
        &LoadOptions::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A typed copy: dates as Date, amounts as Float64.
    let mut df = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(testdata("fixtures/retention_small.csv").into()))
        .unwrap()
        .finish()
        .unwrap()
        .lazy()
        .with_column(col("order_date").str().to_date(StrptimeOptions::default()))
        .collect()
        .unwrap();
    let pq = dir.path().join("t.parquet");
    ParquetWriter::new(std::fs::File::create(&pq).unwrap())
        .finish(&mut df)
        .unwrap();
    let ipc = dir.path().join("t.arrow");
    IpcWriter::new(std::fs::File::create(&ipc).unwrap())
        .finish(&mut df)
        .unwrap();
    let gz = dir.path().join("t.csv.gz");
    {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        e.write_all(&std::fs::read(testdata("fixtures/retention_small.csv")).unwrap())
            .unwrap();
        e.finish().unwrap();
    }
    for p in [&pq, &ipc, &gz] {
        let t = load_table(
            TableKind::Transactions,
            &[p.to_string_lossy()],
            &LoadOptions::default(),
        )
        .unwrap();
        assert_eq!(t.frame, csv.frame, "{}", p.display());
    }
}

/// A cell of a messy export: good values, blanks, junk, impossible dates, odd numbers, quotes.
fn messy_cell() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    prop_oneof![
        Just(String::new()),
        Just("N/A".to_string()),
        Just("2023-02-30".to_string()),
        Just("9999-12-31".to_string()),
        Just("1e309".to_string()),
        Just("-0".to_string()),
        Just("\"quoted, with comma\"".to_string()),
        "c[0-9]{1,2}",
        "20[12][0-9]-0[1-9]-[0-2][0-9]",
        "-?[0-9]{1,5}(\\.[0-9]{1,3})?",
        "\\PC{0,12}",
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Random tables never panic, and every row read is used, excluded or rejected.
    #[test]
    fn random_tables_account_for_every_row(
        rows in proptest::collection::vec(
            (messy_cell(), messy_cell(), messy_cell(), messy_cell()), 1..40),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tx.csv");
        let mut text = String::from("customer_id,order_date,amount,channel\n");
        for (c, d, a, ch) in &rows {
            let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
            text.push_str(&format!("{},{},{},{}\n", quote(c), quote(d), quote(a), quote(ch)));
        }
        std::fs::write(&path, text).unwrap();
        let path = path.to_string_lossy().into_owned();
        // Either a clear error (no dates at all, ambiguous day/month) or a full accounting.
        if let Ok(t) = load_table(TableKind::Transactions, &[path], &LoadOptions::default()) {
            let a = &t.accounting;
            // Rows of empty fields are blank lines, not rows.
            proptest::prop_assert_eq!(a.rows_read + t.files[0].blank_lines, rows.len() as u64);
            proptest::prop_assert_eq!(a.rows_used + a.rows_excluded + a.rows_rejected, a.rows_read);
            proptest::prop_assert_eq!(a.rows_rejected, t.rejections.len() as u64);
            proptest::prop_assert_eq!(
                a.rejected_by_reason.values().sum::<u64>(),
                a.rows_rejected
            );
            proptest::prop_assert_eq!(t.frame.height() as u64, a.rows_used);
        }
    }
}

#[test]
fn quantity_times_price_overflowing_is_rejected() {
    // Found by fuzzing: two finite values whose product is infinite.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lines.csv");
    std::fs::write(
        &path,
        "customer_id,date,quantity,unit_price\nc1,2024-01-02,2,3.5\nc2,2024-01-03,1e200,1e200\n",
    )
    .unwrap();
    let t = load_table(
        TableKind::Transactions,
        &[path.to_string_lossy().into_owned()],
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(amounts(&t), vec![7.0]);
    assert_eq!(
        t.accounting.rejected_by_reason.get("non_finite_amount"),
        Some(&1)
    );
    let r = &t.rejections[0];
    assert_eq!((r.line, r.column.as_str()), (Some(3), "unit_price"));
}

/// A clean export long enough that the reader's sample (2,000 rows) sees only ISO dates and
/// plain amounts, with `bad` values written from row 2,500 on.
fn long_export(dir: &std::path::Path, bad: &[(&str, &str)]) -> String {
    let mut text = String::from("order_id,customer_id,order_date,amount,region\n");
    for i in 0..3000usize {
        let (date, amount) = match bad.get(i.saturating_sub(2500)).filter(|_| i >= 2500) {
            Some((d, a)) => (d.to_string(), a.to_string()),
            None => (
                format!("2024-{:02}-{:02}", i % 12 + 1, i % 28 + 1),
                format!("{}.25", i % 90),
            ),
        };
        text.push_str(&format!("O{i},C{},{date},{amount},north\n", i % 700));
    }
    let path = dir.join("orders.csv");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn clean_csv_parsed_while_reading_matches_text_parsing() {
    // Clean files take the typed reading path; forcing the format settings that path also
    // accepts must give the same frame.
    let dir = tempfile::tempdir().unwrap();
    let path = long_export(dir.path(), &[]);
    let t = load_table(
        TableKind::Transactions,
        &[path.as_str()],
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(t.accounting.rows_used, 3000);
    assert_eq!(
        t.files[0]
            .date_formats
            .get("order_date")
            .map(String::as_str),
        Some("YYYY-MM-DD")
    );
    assert_eq!(t.frame.column(col::DATE).unwrap().dtype(), &DataType::Date);
    let total: f64 = amounts(&t).iter().sum();
    let want: f64 = (0..3000u32).map(|i| f64::from(i % 90) + 0.25).sum();
    assert!((total - want).abs() < 1e-6, "{total} vs {want}");
}

#[test]
fn bad_values_after_the_sample_are_rejected_as_in_text() {
    // Each file is clean in its sampled rows and has one bad row after them. Values the typed
    // reader cannot take, or reads as NaN/infinity, send the file down the text path; dates it
    // reads but that are implausible are checked on the typed column. Either way: the same
    // reason, line and value as text parsing gives.
    let cases = [
        (
            ("2024-02-30", "5.00"),
            "2024-02-30",
            RejectReason::InvalidDate,
        ),
        (("2024-03-01", "n/a"), "n/a", RejectReason::UnparsableAmount),
        (("2024-03-02", "inf"), "inf", RejectReason::UnparsableAmount),
        (("2024-03-02", "NaN"), "NaN", RejectReason::UnparsableAmount),
        (
            ("1850-01-01", "7.50"),
            "1850-01-01",
            RejectReason::DateOutOfRange,
        ),
        (("", "1.00"), "", RejectReason::MissingDate),
        (("2024-03-03", ""), "", RejectReason::MissingAmount),
    ];
    for (bad, value, reason) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = long_export(dir.path(), &[bad]);
        let t = load_table(
            TableKind::Transactions,
            &[path.as_str()],
            &LoadOptions::default(),
        )
        .unwrap();
        let got: Vec<(Option<u64>, &str, RejectReason)> = t
            .rejections
            .iter()
            .map(|r| (r.line, r.value.as_str(), r.reason))
            .collect();
        assert_eq!(got, vec![(Some(2502), value, reason)], "{bad:?}");
        assert_eq!(t.accounting.rows_used, 2999, "{bad:?}");
    }
}

#[test]
fn only_the_dimensions_asked_for_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = long_export(dir.path(), &[]);
    let mut options = LoadOptions::default();
    options.read_dimensions = Some(vec![]);
    let t = load_table(TableKind::Transactions, &[path.as_str()], &options).unwrap();
    // Still listed (for messages and the data-quality section), but not held.
    assert_eq!(t.dimensions, vec!["region".to_string()]);
    assert!(t.frame.column("region").is_err());
    options.read_dimensions = Some(vec!["region".into()]);
    let t = load_table(TableKind::Transactions, &[path.as_str()], &options).unwrap();
    assert!(t.frame.column("region").is_ok());
}

#[test]
fn the_currency_is_read_when_all_dimensions_are_or_when_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.csv");
    std::fs::write(
        &path,
        "order_id,customer_id,order_date,amount,currency,region\nA1,C1,2024-01-05,10.00,EUR,north\nA2,C2,2024-01-06,7.00,USD,south\n",
    )
    .unwrap();
    let path = path.to_str().unwrap();
    let currencies = |read: Option<Vec<String>>| {
        let mut options = LoadOptions::default();
        options.read_dimensions = read;
        let t = load_table(TableKind::Transactions, &[path], &options).unwrap();
        t.frame.column("currency").ok().map(|c| {
            c.str()
                .unwrap()
                .iter()
                .map(|v| v.unwrap().to_string())
                .collect::<Vec<_>>()
        })
    };
    let both = Some(vec!["EUR".to_string(), "USD".to_string()]);
    assert_eq!(currencies(None), both);
    assert_eq!(currencies(Some(vec!["currency".into()])), both);
    assert_eq!(currencies(Some(vec!["region".into()])), None);
    assert_eq!(currencies(Some(vec![])), None);
}

#[test]
fn order_ids_equal_once_trimmed_are_one_order() {
    // " A1" and "A1" are distinct as written, so the file's own distinctness check passes; the
    // loaded (trimmed) ids must still be checked, and the two lines merged into one order.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.csv");
    std::fs::write(
        &path,
        "order_id,customer_id,order_date,amount\n A1,C1,2024-01-05,10.00\nA1,C1,2024-01-05,2.50\nA2,C2,2024-01-06,7.00\n",
    )
    .unwrap();
    let t = load_table(
        TableKind::Transactions,
        &[path.to_str().unwrap()],
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(t.accounting.rows_used, 3);
    let mut got = amounts(&t);
    got.sort_by(f64::total_cmp);
    assert_eq!(got, vec![7.0, 12.5]);
}

#[test]
fn a_customer_listed_twice_keeps_the_first_row_and_rejects_the_rest() {
    // Customer tables keep the first row of each id in file order; every later row of the same
    // id is rejected as `duplicate_customer` at its own line, so that each input row is either
    // used or counted. Distinct tables (the usual case) are kept as they are, in file order.
    let dir = tempfile::tempdir().unwrap();
    let load = |bodies: &[&str]| {
        let paths: Vec<String> = bodies
            .iter()
            .enumerate()
            .map(|(k, body)| {
                let path = dir.path().join(format!("customers{k}.csv"));
                std::fs::write(&path, body).unwrap();
                path.to_string_lossy().into_owned()
            })
            .collect();
        let t = load_table(TableKind::Customers, &paths, &LoadOptions::default()).unwrap();
        let text = |name: &str| -> Vec<String> {
            let c = t
                .frame
                .column(name)
                .unwrap()
                .cast(&DataType::String)
                .unwrap();
            c.str()
                .unwrap()
                .iter()
                .map(|v| v.unwrap().to_string())
                .collect()
        };
        let (ids, signups) = (text(col::CUSTOMER_ID), text(col::SIGNUP_DATE));
        (ids, signups, t)
    };
    // Row 2 lacks an id (rejected first), so the repeats are rows 4 and 6, on lines 5 and 7.
    let (ids, signups, t) = load(&[
        "customer_id,signup_date\nb,2024-01-02\n,2024-01-05\na,2024-01-01\nb,2024-03-03\nc,2024-01-03\na,2024-02-02\n",
    ]);
    assert_eq!(ids, ["b", "a", "c"]);
    assert_eq!(signups, ["2024-01-02", "2024-01-01", "2024-01-03"]);
    assert_eq!(
        (
            t.accounting.rows_read,
            t.accounting.rows_used,
            t.accounting.rows_rejected
        ),
        (6, 3, 3)
    );
    assert_eq!(t.accounting.rejected_by_reason["duplicate_customer"], 2);
    assert_eq!(t.accounting.rejected_by_reason["missing_customer_id"], 1);
    let repeats: Vec<(Option<u64>, u64, &str, &str)> = t
        .rejections
        .iter()
        .filter(|r| r.reason == RejectReason::DuplicateCustomer)
        .map(|r| (r.line, r.row, r.column.as_str(), r.value.as_str()))
        .collect();
    assert_eq!(
        repeats,
        [
            (Some(5), 4, "customer_id", "b"),
            (Some(7), 6, "customer_id", "a")
        ]
    );
    // Across files: the second file's repeat of `a` is its own row 1.
    let (ids, _, t) = load(&[
        "customer_id,signup_date\nb,2024-01-02\na,2024-01-01\n",
        "customer_id,signup_date\na,2024-05-05\nd,2024-01-04\n",
    ]);
    assert_eq!(ids, ["b", "a", "d"]);
    let repeat = t.rejections.first().unwrap();
    assert!(repeat.file.ends_with("customers1.csv"), "{}", repeat.file);
    assert_eq!(
        (repeat.line, repeat.row, repeat.value.as_str()),
        (Some(2), 1, "a")
    );
    assert_eq!(t.accounting.rows_used, 3);
    let (ids, _, t) = load(&["customer_id,signup_date\nz,2024-01-02\ny,2024-01-01\n"]);
    assert_eq!(ids, ["z", "y"]);
    assert!(t.rejections.is_empty());
}

#[test]
fn order_lines_merge_within_one_customer_and_never_without_an_order_id() {
    // File 1: two lines of order O1 by customer a (one order), and O1 again under customer b
    // (another shop's numbering: another order). File 2 has no order ids: each row is an order.
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("lines.csv");
    let two = dir.path().join("no_order_ids.csv");
    std::fs::write(
        &one,
        "order_id,customer_id,order_date,amount\nO1,a,2024-01-01,10\nO1,a,2024-01-02,5.5\nO1,b,2024-01-02,7\n",
    )
    .unwrap();
    std::fs::write(
        &two,
        "customer_id,order_date,amount\nc,2024-01-03,1\nd,2024-01-04,2\nc,2024-01-03,3\n",
    )
    .unwrap();
    let t = load_table(
        TableKind::Transactions,
        &[one.to_str().unwrap(), two.to_str().unwrap()],
        &LoadOptions::default(),
    )
    .unwrap();
    let ids: Vec<&str> = t
        .frame
        .column(col::CUSTOMER_ID)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(ids, ["a", "b", "c", "d", "c"]);
    assert_eq!(amounts(&t), [15.5, 7.0, 1.0, 2.0, 3.0]);
    assert_eq!(t.accounting.rows_read, 6);
    assert_eq!(t.accounting.rows_used, 6);
}
