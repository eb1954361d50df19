use std::path::{Path, PathBuf};

use custmetrics::generate::{GenerateOptions, generate};
use custmetrics::period::Period;
use custmetrics::report::Section;
use custmetrics::summary::{Overlap, StoreOptions};
use custmetrics::{Dataset, DatasetSpec, Report, ReportOptions, SummaryStore};
use proptest::prelude::*;

/// A generated dataset (transactions with refunds and order ids, interactions with NPS and
/// CSAT answers, customers), written once per run under cargo's scratch directory for
/// integration tests (inside the target directory, so `cargo clean` removes it: a static is
/// never dropped, so a `TempDir` here would leave a directory in /tmp after every run).
fn generated() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        // The process id keeps two runs sharing a target directory apart.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("store-it-generated-{}", std::process::id()));
        let mut options = GenerateOptions::default();
        options.customers = 150;
        options.seed = 11;
        generate(&options, &dir).expect("generate");
        dir
    })
}

/// The lines of a generated table: header, then rows with their customer id and date.
fn rows(table: &str) -> (String, Vec<(String, String, String)>) {
    let text = std::fs::read_to_string(generated().join(format!("{table}.csv"))).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    let names: Vec<&str> = header.split(',').collect();
    let at = |name: &str| names.iter().position(|n| *n == name).unwrap();
    let (customer, date) = (
        at("customer_id"),
        if table == "transactions" {
            at("order_date")
        } else {
            at("date")
        },
    );
    let rows = lines
        .map(|l| {
            let fields: Vec<&str> = l.split(',').collect();
            (
                fields[customer].to_string(),
                fields[date].to_string(),
                l.to_string(),
            )
        })
        .collect();
    (header, rows)
}

fn write(dir: &Path, name: &str, header: &str, rows: &[&str]) -> String {
    let path = dir.join(name);
    let mut text = format!("{header}\n");
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn spec(transactions: Vec<String>, interactions: Vec<String>, customers: bool) -> DatasetSpec {
    let mut spec = DatasetSpec::default();
    spec.transactions = transactions;
    spec.interactions = interactions;
    if customers {
        spec.customers = vec![generated().join("customers.csv").display().to_string()];
    }
    spec
}

fn options() -> ReportOptions {
    let mut o = ReportOptions::default();
    o.by = vec!["region".into()];
    o
}

fn json(report: &Report) -> String {
    serde_json::to_string(report).unwrap()
}

/// Summarises `a`, updates with `b`, and checks the report from the store against the report
/// from reading both exports together.
fn check_split(
    tx: (Vec<&str>, Vec<&str>),
    ix: (Vec<&str>, Vec<&str>),
    overlap: Overlap,
) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let (tx_header, _) = rows("transactions");
    let (ix_header, _) = rows("interactions");
    let ta = write(dir.path(), "ta.csv", &tx_header, &tx.0);
    let tb = write(dir.path(), "tb.csv", &tx_header, &tx.1);
    let ia = write(dir.path(), "ia.csv", &ix_header, &ix.0);
    let ib = write(dir.path(), "ib.csv", &ix_header, &ix.1);
    let store_dir = dir.path().join("store");
    let mut store_options = StoreOptions::default();
    store_options.allow_empty = true;
    let (mut store, _) = SummaryStore::write(
        &store_dir,
        &spec(vec![ta.clone()], vec![ia.clone()], true),
        &store_options,
    )
    .unwrap();
    store_options.overlap = overlap;
    store
        .update(
            &spec(vec![tb.clone()], vec![ib.clone()], false),
            &store_options,
        )
        .unwrap();
    let store = SummaryStore::open(&store_dir).unwrap();
    let from_store = Report::from_store(&store, &options()).unwrap();
    let raw = Dataset::load(&spec(
        vec![ta.clone(), tb.clone()],
        vec![ia.clone(), ib.clone()],
        true,
    ))
    .unwrap();
    let from_exports = Report::build(&raw, &options()).unwrap();
    prop_assert!(
        json(&from_store) == json(&from_exports),
        "the report from the store differs from the report from the exports"
    );
    // The store's purchases (a part per run) read in ranges of customers give the same report.
    let in_partitions = Report::from_store_in_partitions(&store, &options(), 3).unwrap();
    prop_assert!(
        json(&in_partitions) == json(&from_store),
        "the report from the store read in partitions differs from the store read whole"
    );

    // Retention alone, from a store without a customers table, is counted straight from the
    // purchase days (no summaries); the parts of the two runs interleave customer codes.
    let store_dir = dir.path().join("store-without-customers");
    let (mut store, _) = SummaryStore::write(
        &store_dir,
        &spec(vec![ta.clone()], vec![ia.clone()], false),
        &store_options,
    )
    .unwrap();
    store
        .update(
            &spec(vec![tb.clone()], vec![ib.clone()], false),
            &store_options,
        )
        .unwrap();
    let raw = Dataset::load(&spec(vec![ta, tb], vec![ia, ib], false)).unwrap();
    for (period, from, as_of) in [
        ("month", None, None),
        ("week", Some("2023-02-15"), None),
        ("day", Some("2024-06-01"), Some("2024-09-30")),
        ("quarter", None, Some("2023-12-31")),
    ] {
        let mut o = ReportOptions::default();
        o.sections = vec![Section::Retention];
        o.period = Period::from_setting(period).unwrap();
        let date = |d: Option<&str>| d.map(|d| d.parse::<chrono::NaiveDate>().unwrap());
        o.from = date(from);
        o.as_of = date(as_of);
        prop_assert!(o.store_read(1).defer_purchases);
        let from_exports = Report::build(&raw, &o).map(|r| json(&r));
        let from_store = Report::from_store(&store, &o).map(|r| json(&r));
        prop_assert!(
            format!("{from_store:?}") == format!("{from_exports:?}"),
            "retention by {period} from {from:?} to {as_of:?}: the store differs from the exports"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]

    /// Monthly exports: A up to a day, B from some days before it (the overlap's order lines
    /// are in both files) to the end; interactions split at the same day.
    #[test]
    fn summarize_then_update_equals_both_exports_split_by_date(
        split in 60u32..1050, overlap_days in 0u32..15,
    ) {
        let start = chrono::NaiveDate::from_ymd_opt(2022, 1, 1).unwrap();
        let day = |n: u32| (start + chrono::Days::new(u64::from(n))).to_string();
        let (split_day, b_from) = (day(split), day(split.saturating_sub(overlap_days)));
        let (_, tx) = rows("transactions");
        let (_, ix) = rows("interactions");
        let ta: Vec<&str> = tx.iter().filter(|r| r.1 <= split_day).map(|r| r.2.as_str()).collect();
        let tb: Vec<&str> = tx.iter().filter(|r| r.1 > b_from).map(|r| r.2.as_str()).collect();
        let ia: Vec<&str> = ix.iter().filter(|r| r.1 <= split_day).map(|r| r.2.as_str()).collect();
        let ib: Vec<&str> = ix.iter().filter(|r| r.1 > split_day).map(|r| r.2.as_str()).collect();
        check_split((ta, tb), (ia, ib), Overlap::Refuse)?;
    }

    /// Exports split by customer (two shops, two regions): every date in both.
    #[test]
    fn summarize_then_update_equals_both_exports_split_by_customer(seed in any::<u64>()) {
        let in_a = |id: &str| {
            let h = id.bytes().fold(seed, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
            h % 3 != 0
        };
        let (_, tx) = rows("transactions");
        let (_, ix) = rows("interactions");
        let split = |rows: &'static [(String, String, String)]| -> (Vec<&'static str>, Vec<&'static str>) {
            let a = rows.iter().filter(|r| in_a(&r.0)).map(|r| r.2.as_str()).collect();
            let b = rows.iter().filter(|r| !in_a(&r.0)).map(|r| r.2.as_str()).collect();
            (a, b)
        };
        let tx: &'static [(String, String, String)] = Box::leak(tx.into_boxed_slice());
        let ix: &'static [(String, String, String)] = Box::leak(ix.into_boxed_slice());
        check_split(split(tx), split(ix), Overlap::Keep)?;
    }
}

#[test]
fn a_store_reads_back_the_accounting_of_every_export() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let spec = spec(
        vec![super::testdata("formats/uci_online_retail.csv")],
        Vec::new(),
        false,
    );
    let (store, data) = SummaryStore::write(&store_dir, &spec, &StoreOptions::default()).unwrap();
    let back = SummaryStore::open(&store_dir).unwrap().dataset().unwrap();
    let (written, read) = (
        data.transactions.as_ref().unwrap(),
        back.transactions.as_ref().unwrap(),
    );
    assert_eq!(written.accounting, read.accounting);
    assert_eq!(written.rejections, read.rejections);
    assert_eq!(written.files, read.files);
    assert_eq!(store.manifest().inputs.len(), 1);
    // The input's size and checksum (hashed mapped, on every core) are those of its bytes.
    let input = &store.manifest().inputs[0];
    let bytes = std::fs::read(super::testdata("formats/uci_online_retail.csv")).unwrap();
    assert_eq!(input.bytes, Some(bytes.len() as u64));
    assert_eq!(
        input.blake3.as_deref(),
        Some(blake3::hash(&bytes).to_hex().as_str())
    );
    // Files every command reads are LZ4 (fast to decode); the keys, hashes that do not
    // compress, are written as they are (docs/summary-store.md).
    use polars_parquet::parquet::compression::Compression;
    let mut files = 0;
    for part in std::fs::read_dir(&store_dir).unwrap() {
        let part = part.unwrap().path();
        if !part.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&part).unwrap() {
            let file = file.unwrap().path();
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let metadata =
                polars_parquet::read::read_metadata(&mut std::fs::File::open(&file).unwrap())
                    .unwrap();
            let expected = if name.starts_with("line_keys") || name.starts_with("order_keys") {
                Compression::Uncompressed
            } else {
                Compression::Lz4Raw
            };
            for group in &metadata.row_groups {
                for column in group.parquet_columns() {
                    assert_eq!(column.compression(), expected, "{name}");
                }
            }
            files += 1;
        }
    }
    assert!(files >= 4, "{files} store files");
}

#[test]
fn an_update_keeps_refunds_of_customers_who_bought_in_earlier_exports() {
    // January: c1 buys 100. February's export holds only c1's refund of 30, which a read of
    // February alone would leave out (no purchase of c1 in it); the store knows c1 bought.
    let dir = tempfile::tempdir().unwrap();
    let jan = dir.path().join("jan.csv");
    let feb = dir.path().join("feb.csv");
    std::fs::write(
        &jan,
        "order_id,customer_id,date,amount\no1,c1,2024-01-10,100.00\no2,c2,2024-01-12,50.00\n",
    )
    .unwrap();
    std::fs::write(
        &feb,
        "order_id,customer_id,date,amount\nr1,c1,2024-02-03,-30.00\no3,c2,2024-02-05,20.00\n",
    )
    .unwrap();
    let path = |p: &Path| p.display().to_string();
    let store_dir = dir.path().join("store");
    let (mut store, _) = SummaryStore::write(
        &store_dir,
        &spec(vec![path(&jan)], Vec::new(), false),
        &StoreOptions::default(),
    )
    .unwrap();
    let added = store
        .update(
            &spec(vec![path(&feb)], Vec::new(), false),
            &StoreOptions::default(),
        )
        .unwrap();
    let accounting = &added.transactions.as_ref().unwrap().accounting;
    assert_eq!(accounting.rows_used, 2, "{accounting:?}");
    assert_eq!(
        accounting.rows_excluded, 0,
        "the refund is kept: {accounting:?}"
    );
    let mut o = ReportOptions::default();
    o.by = Vec::new();
    let from_store = Report::from_store(&SummaryStore::open(&store_dir).unwrap(), &o).unwrap();
    let raw = Dataset::load(&spec(vec![path(&jan), path(&feb)], Vec::new(), false)).unwrap();
    let from_exports = Report::build(&raw, &o).unwrap();
    assert_eq!(json(&from_store), json(&from_exports));
    // Net revenue 100 − 30 + 50 + 20.
    assert_eq!(from_store.overview.as_ref().unwrap().revenue, 140.0);
}

#[test]
fn a_report_without_interaction_sections_reads_no_interaction_rows() {
    // Retention, churn and RFM read no interaction rows: the store read for them leaves the
    // interactions' rows in the store (their accounting comes along) and gives the report of
    // the exports; a report with NPS reads them.
    let dir = tempfile::tempdir().unwrap();
    let g = |name: &str| generated().join(name).display().to_string();
    let exports = spec(
        vec![g("transactions.csv")],
        vec![g("interactions.csv")],
        true,
    );
    let (store, _) = SummaryStore::write(
        &dir.path().join("store"),
        &exports,
        &StoreOptions::default(),
    )
    .unwrap();
    let raw = Dataset::load(&exports).unwrap();
    let mut o = options();
    o.sections = vec![
        custmetrics::Section::Retention,
        custmetrics::Section::Churn,
        custmetrics::Section::Rfm,
    ];
    let read = o.store_read(1);
    assert!(!read.interaction_rows);
    let data = store.read(&read).unwrap();
    let interactions = data.interactions.as_ref().unwrap();
    assert_eq!(interactions.frame.height(), 0);
    assert_eq!(
        interactions.accounting,
        raw.interactions.as_ref().unwrap().accounting
    );
    assert!(interactions.accounting.rows_used > 0);
    let from_store = Report::from_store(&store, &o).unwrap();
    assert_eq!(json(&from_store), json(&Report::build(&raw, &o).unwrap()));
    // Sections that read interactions get their rows, whole or with the purchases in ranges.
    o.sections.push(custmetrics::Section::Nps);
    assert!(o.store_read(1).interaction_rows);
    assert!(o.store_read(3).interaction_rows);
    let with_nps = store.read(&o.store_read(3)).unwrap();
    assert!(with_nps.interactions.as_ref().unwrap().frame.height() > 0);
    assert_eq!(
        json(&Report::from_store(&store, &o).unwrap()),
        json(&Report::build(&raw, &o).unwrap())
    );
    // The scores alone read no customer row, only the attributes they split by; a report
    // that aligns customers with its summaries refuses a table read without its ids (its
    // cohorts would silently lose the signup dates).
    o.sections = vec![custmetrics::Section::Nps, custmetrics::Section::Csat];
    let scores = o.store_read(1);
    assert!(!scores.customer_rows);
    let customers = store.read(&scores).unwrap().customers.unwrap();
    let columns: Vec<String> = (customers.frame.get_column_names().iter())
        .map(|c| c.to_string())
        .collect();
    assert_eq!(columns, ["region"]);
    assert_eq!(
        customers.frame.height(),
        raw.customers.as_ref().unwrap().frame.height()
    );
    assert_eq!(
        json(&Report::from_store(&store, &o).unwrap()),
        json(&Report::build(&raw, &o).unwrap())
    );
    o.sections = vec![custmetrics::Section::Retention];
    let without_ids = store.read(&scores).unwrap();
    let refused = Report::build(&without_ids, &o).unwrap_err().to_string();
    assert!(refused.contains("without its ids"), "{refused}");
}

#[test]
fn a_days_segment_in_the_store_is_its_smallest_value_whatever_order_values_came_in() {
    // Customer c1 buys three times on their first day, in regions first seen in the order
    // "b", "Ärhus", "Zürich": the day's segment is the smallest by code points ("Zürich",
    // as 'Z' < 'b' < 'Ä'), the rule a raw read and every engine follow. c2's day has one
    // region; c3 buys "b" on a day where an earlier row of the file (c1's) first saw it.
    let dir = tempfile::tempdir().unwrap();
    let tx = dir.path().join("tx.csv");
    std::fs::write(
        &tx,
        "order_id,customer_id,date,amount,region\n\
         o1,c1,2024-01-10,10.00,b\n\
         o2,c1,2024-01-10,20.00,Ärhus\n\
         o3,c1,2024-01-10,30.00,Zürich\n\
         o4,c2,2024-01-11,15.00,Ärhus\n\
         o5,c3,2024-02-01,12.00,b\n\
         o6,c1,2024-02-02,5.00,b\n",
    )
    .unwrap();
    let path = tx.display().to_string();
    let store_dir = dir.path().join("store");
    SummaryStore::write(
        &store_dir,
        &spec(vec![path.clone()], Vec::new(), false),
        &StoreOptions::default(),
    )
    .unwrap();
    let mut o = ReportOptions::default();
    o.by = vec!["region".into()];
    let store = SummaryStore::open(&store_dir).unwrap();
    let from_store = Report::from_store(&store, &o).unwrap();
    let raw = Dataset::load(&spec(vec![path], Vec::new(), false)).unwrap();
    let from_exports = Report::build(&raw, &o).unwrap();
    assert_eq!(json(&from_store), json(&from_exports));
    let cohorts = &from_store.retention.as_ref().unwrap().cohorts;
    let segment_of_first_cohort: Vec<&str> = cohorts
        .iter()
        .filter(|c| c.cohort == "2024-01" && c.offset == 0)
        .filter_map(|c| c.segment.as_deref())
        .collect();
    assert_eq!(segment_of_first_cohort, ["Zürich", "Ärhus"]);
}

#[test]
fn a_store_whose_ids_are_out_of_code_order_is_refused_when_read_in_partitions() {
    // A store read in partitions takes each range of codes' ids from the id table's rows of
    // those codes, which the store writes one per code in code order: a table that breaks it
    // (written by another engine, say) must be an error, not ids given to the wrong customers.
    use polars::prelude::{ParquetReader, ParquetWriter, SerReader};
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let spec = spec(
        vec![super::testdata("demo/transactions.csv")],
        Vec::new(),
        false,
    );
    SummaryStore::write(&store_dir, &spec, &StoreOptions::default()).unwrap();
    let store = SummaryStore::open(&store_dir).unwrap();
    let whole = Report::from_store(&store, &options()).unwrap();
    assert_eq!(
        json(&Report::from_store_in_partitions(&store, &options(), 3).unwrap()),
        json(&whole)
    );
    let ids_file = store
        .files()
        .into_iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("customer_ids")
        })
        .unwrap();
    let frame = ParquetReader::new(std::fs::File::open(&ids_file).unwrap())
        .finish()
        .unwrap();
    let mut reversed = frame.reverse();
    ParquetWriter::new(std::fs::File::create(&ids_file).unwrap())
        .finish(&mut reversed)
        .unwrap();
    let err = Report::from_store_in_partitions(&store, &options(), 3).unwrap_err();
    assert!(err.to_string().contains("do not list codes 0 to"), "{err}");
}

#[test]
fn a_parquet_export_summarised_with_its_dimensions_as_categories_reports_as_read_whole() {
    // The store reads a Parquet export's dimensions as categories (cast while the file is
    // scanned); a report then reads them as text. Here: long values (held outside the string
    // views), nulls, a column with an untrimmed value (cleaned as text instead), and orders of
    // two lines whose regions differ (merged by the smallest value, not the smallest code).
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let lines = CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(generated().join("transactions.csv")))
        .unwrap()
        .finish()
        .unwrap();
    let id_ends = |digit: &str| col("customer_id").str().ends_with(lit(digit));
    let edited = lines
        .lazy()
        .with_columns([
            when(id_ends("7"))
                .then(lit("a region with a long name"))
                .when(id_ends("3"))
                .then(lit(NULL).cast(DataType::String))
                .otherwise(col("region"))
                .alias("region"),
            when(id_ends("5"))
                .then(lit(" web "))
                .otherwise(col("sales_channel"))
                .alias("sales_channel"),
        ])
        .collect()
        .unwrap();
    // Second lines of five orders, in another region ("aaa" sorts first, but is coded last).
    let second = edited
        .clone()
        .lazy()
        .limit(5)
        .with_columns([lit("aaa").alias("region"), lit(1.25).alias("amount")])
        .collect()
        .unwrap();
    let mut export = edited.vstack(&second).unwrap();
    let path = dir.path().join("transactions.parquet");
    ParquetWriter::new(std::fs::File::create(&path).unwrap())
        .finish(&mut export)
        .unwrap();
    let spec = spec(vec![path.display().to_string()], vec![], true);
    let store_dir = dir.path().join("store");
    SummaryStore::write(&store_dir, &spec, &StoreOptions::default()).unwrap();
    let store = SummaryStore::open(&store_dir).unwrap();
    let raw = Dataset::load(&spec).unwrap();
    for by in ["region", "sales_channel", "currency"] {
        let mut o = options();
        o.by = vec![by.into()];
        assert_eq!(
            json(&Report::from_store(&store, &o).unwrap()),
            json(&Report::build(&raw, &o).unwrap()),
            "by {by}"
        );
    }
}
