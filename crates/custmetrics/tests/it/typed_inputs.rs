//! Issue 18, item 3: Parquet and Arrow IPC files with the column types warehouses and pyarrow
//! write. Files are written by the tests: polars' writers where polars can write the type,
//! arrow-rs' IPC writer for the rest (date64, decimal256, dictionary and small utf8 strings).

use std::path::Path;
use std::sync::Arc;

use custmetrics::Error;
use custmetrics::io::inspect::inspect;
use custmetrics::io::{InputPath, LoadOptions, TableKind, col, load_table};
use polars::prelude::*;

fn write_parquet(dir: &Path, name: &str, df: &mut DataFrame) -> String {
    let p = dir.join(name);
    ParquetWriter::new(std::fs::File::create(&p).unwrap())
        .finish(df)
        .unwrap();
    p.to_string_lossy().into_owned()
}

fn write_ipc(dir: &Path, name: &str, df: &mut DataFrame) -> String {
    let p = dir.join(name);
    IpcWriter::new(std::fs::File::create(&p).unwrap())
        .finish(df)
        .unwrap();
    p.to_string_lossy().into_owned()
}

fn load(path: &str) -> custmetrics::io::Table {
    load_table(TableKind::Transactions, &[path], &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ids(t: &custmetrics::io::Table) -> Vec<String> {
    let c = t.frame.column(col::CUSTOMER_ID).unwrap();
    c.str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap().to_string())
        .collect()
}

fn days(t: &custmetrics::io::Table) -> Vec<String> {
    let c = t.frame.column(col::DATE).unwrap().cast(&DataType::String);
    c.unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap().to_string())
        .collect()
}

fn amounts(t: &custmetrics::io::Table) -> Vec<f64> {
    let c = t.frame.column(col::AMOUNT).unwrap();
    c.f64().unwrap().iter().map(|v| v.unwrap()).collect()
}

/// Three orders: customer 12345 twice, 7 once; amounts given as text for a decimal cast.
fn orders() -> LazyFrame {
    df!(
        "customer_id" => [12345i64, 12345, 7],
        "order_date" => ["2024-01-05", "2024-02-10", "2024-01-20"],
        "amount" => ["19.99", "0.01", "100.10"],
        "fx_rate" => ["1.0825000000", "1.1", "0.9"],
    )
    .unwrap()
    .lazy()
    .with_column(col("order_date").str().to_date(StrptimeOptions::default()))
}

// Issue 18: a decimal column, even an unused one, panicked inside polars (exit 101).
#[test]
fn decimal_amounts_are_exact_to_the_cent_and_unused_decimals_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let mut df = orders()
        .with_columns([
            col("amount").cast(DataType::Decimal(18, 2)),
            col("fx_rate").cast(DataType::Decimal(38, 10)),
        ])
        .collect()
        .unwrap();
    for path in [
        write_parquet(dir.path(), "orders.parquet", &mut df),
        write_ipc(dir.path(), "orders.arrow", &mut df),
    ] {
        let t = load(&path);
        assert_eq!(t.accounting.rows_used, 3, "{path}");
        assert_eq!(ids(&t), ["12345", "12345", "7"]);
        // 19.99 + 0.01 + 100.10 = 120.10, to the cent.
        let total: f64 = amounts(&t).iter().sum();
        assert!((total - 120.10).abs() < 1e-9, "{total}");
        assert_eq!(amounts(&t), [19.99, 0.01, 100.10]);
        // `inspect` reads the same file (it panicked too).
        let i = inspect(
            &InputPath::File(path.clone().into()),
            None,
            &LoadOptions::default(),
        )
        .unwrap();
        assert_eq!(i.table, TableKind::Transactions);
        assert_eq!(i.accounting.rows_used, 3);
    }
}

#[test]
fn integer_ids_of_every_width_keep_their_text() {
    let dir = tempfile::tempdir().unwrap();
    for dtype in [
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::UInt8,
        DataType::UInt16,
        DataType::UInt32,
        DataType::UInt64,
        DataType::Decimal(18, 0),
        DataType::Decimal(38, 0),
    ] {
        let mut df = orders()
            .with_columns([
                col("customer_id").cast(DataType::Int64) % lit(100),
                col("amount").cast(DataType::Float64),
            ])
            .with_column(col("customer_id").cast(dtype.clone()))
            .collect()
            .unwrap();
        let path = write_parquet(dir.path(), "ids.parquet", &mut df);
        let t = load(&path);
        // 12345 % 100 = 45: "45", not "45.0".
        assert_eq!(ids(&t), ["45", "45", "7"], "{dtype}");
    }
}

#[test]
fn float16_and_dictionary_strings_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut df = orders()
        .with_columns([
            col("customer_id")
                .cast(DataType::String)
                .cast(DataType::from_categories(Categories::global())),
            // 0.5, 0.25 and 100 are exact in float16.
            lit(Series::new("amount".into(), [0.5f64, 0.25, 100.0])).cast(DataType::Float16),
        ])
        .collect()
        .unwrap();
    for path in [
        write_parquet(dir.path(), "small.parquet", &mut df),
        write_ipc(dir.path(), "small.arrow", &mut df),
    ] {
        let t = load(&path);
        assert_eq!(ids(&t), ["12345", "12345", "7"], "{path}");
        assert_eq!(amounts(&t), [0.5, 0.25, 100.0], "{path}");
    }
}

/// Milliseconds since the epoch of a UTC date and time.
fn utc_ms(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    chrono::NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(h, min, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis()
}

#[test]
fn zoned_timestamps_fall_on_their_local_day_as_csv_offsets_do() {
    let dir = tempfile::tempdir().unwrap();
    let frame = |tz: Option<&str>| {
        let mut ts = Series::new(
            "order_date".into(),
            // 2024-01-31 23:30 UTC is 2024-02-01 00:30 in Berlin (UTC+1 in winter); 2024-07-15
            // 21:59 UTC is 23:59 the same day in Berlin (UTC+2 in summer).
            [utc_ms(2024, 1, 31, 23, 30), utc_ms(2024, 7, 15, 21, 59)],
        )
        .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
        .unwrap();
        if let Some(tz) = tz {
            ts = ts
                .cast(&DataType::Datetime(
                    TimeUnit::Milliseconds,
                    Some(TimeZone::UTC),
                ))
                .unwrap();
            let zone = TimeZone::opt_try_new(Some(tz)).unwrap().unwrap();
            ts = DataFrame::new_infer_height(vec![ts.into()])
                .unwrap()
                .lazy()
                .select([col("order_date").dt().convert_time_zone(zone)])
                .collect()
                .unwrap()
                .column("order_date")
                .unwrap()
                .as_materialized_series()
                .clone();
        }
        let mut df = df!("customer_id" => ["a", "b"], "amount" => [10.0, 5.0]).unwrap();
        df.with_column(ts.into()).unwrap();
        df
    };
    let berlin = write_parquet(
        dir.path(),
        "berlin.parquet",
        &mut frame(Some("Europe/Berlin")),
    );
    assert_eq!(days(&load(&berlin)), ["2024-02-01", "2024-07-15"]);
    let berlin_ipc = write_ipc(
        dir.path(),
        "berlin.arrow",
        &mut frame(Some("Europe/Berlin")),
    );
    assert_eq!(days(&load(&berlin_ipc)), ["2024-02-01", "2024-07-15"]);
    // The same instants in UTC: the UTC day.
    let utc = write_parquet(dir.path(), "utc.parquet", &mut frame(Some("UTC")));
    assert_eq!(days(&load(&utc)), ["2024-01-31", "2024-07-15"]);
    // Naive timestamps: their own day.
    let naive = write_parquet(dir.path(), "naive.parquet", &mut frame(None));
    assert_eq!(days(&load(&naive)), ["2024-01-31", "2024-07-15"]);
    // The CSV rule, for comparison: an offset is validated, the local day kept.
    let csv = dir.path().join("berlin.csv");
    std::fs::write(
        &csv,
        "customer_id,amount,order_date\na,10,2024-02-01T00:30:00+01:00\nb,5,2024-07-15T23:59:00+02:00\n",
    )
    .unwrap();
    assert_eq!(
        days(&load(&csv.to_string_lossy())),
        ["2024-02-01", "2024-07-15"]
    );
}

/// A typed IPC file written with arrow-rs, for the types polars cannot write.
fn write_arrow_rs(dir: &Path, name: &str, columns: Vec<(&str, arrow_array::ArrayRef)>) -> String {
    let fields: Vec<arrow_schema::Field> = columns
        .iter()
        .map(|(n, a)| arrow_schema::Field::new(*n, a.data_type().clone(), true))
        .collect();
    let schema = Arc::new(arrow_schema::Schema::new(fields));
    let batch = arrow_array::RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap();
    let p = dir.join(name);
    let mut w = arrow_ipc::writer::FileWriter::try_new(std::fs::File::create(&p).unwrap(), &schema)
        .unwrap();
    w.write(&batch).unwrap();
    w.finish().unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn arrow_types_polars_does_not_write_read_or_are_ignored() {
    use arrow_array::types::{Decimal256Type, Int32Type};
    // arrow-buffer's i256, named without depending on arrow-buffer.
    type I256 = <Decimal256Type as arrow_array::ArrowPrimitiveType>::Native;
    use arrow_array::{
        Date32Array, Date64Array, Decimal128Array, Decimal256Array, DictionaryArray, StringArray,
    };
    let dir = tempfile::tempdir().unwrap();
    let day_ms = 86_400_000i64;
    // 2024-01-31 is day 19753 since 1970-01-01.
    let date64: arrow_array::ArrayRef =
        Arc::new(Date64Array::from(vec![19753 * day_ms, 19754 * day_ms]));
    let customers: arrow_array::ArrayRef = Arc::new(
        vec!["a", "b"]
            .into_iter()
            .collect::<DictionaryArray<Int32Type>>(),
    );
    let cents: arrow_array::ArrayRef = Arc::new(
        Decimal128Array::from(vec![1999i128, 1])
            .with_precision_and_scale(18, 2)
            .unwrap(),
    );
    // decimal256 wider than the 38 digits polars holds: unused here, so ignored.
    let wide = || -> arrow_array::ArrayRef {
        Arc::new(
            Decimal256Array::from(vec![I256::from_i128(5), I256::from_i128(7)])
                .with_precision_and_scale(50, 2)
                .unwrap(),
        )
    };
    let path = write_arrow_rs(
        dir.path(),
        "arrow_rs.arrow",
        vec![
            ("customer_id", customers.clone()),
            ("order_date", date64.clone()),
            ("amount", cents),
            ("channel", Arc::new(StringArray::from(vec!["web", "shop"]))),
            ("ledger_total", wide()),
        ],
    );
    let t = load(&path);
    assert_eq!(ids(&t), ["a", "b"]);
    assert_eq!(days(&t), ["2024-01-31", "2024-02-01"]);
    // 19.99 and 0.01.
    assert_eq!(amounts(&t), [19.99, 0.01]);
    // A decimal256 that fits 38 digits, used: polars 0.55 cannot decode IPC decimal256 at all
    // (it panicked), so it is an error naming the type, like a wider one.
    let narrow: arrow_array::ArrayRef = Arc::new(
        Decimal256Array::from(vec![I256::from_i128(1999), I256::from_i128(1)])
            .with_precision_and_scale(38, 2)
            .unwrap(),
    );
    let date32: arrow_array::ArrayRef = Arc::new(Date32Array::from(vec![19753, 19754]));
    let path = write_arrow_rs(
        dir.path(),
        "narrow.arrow",
        vec![
            ("customer_id", customers.clone()),
            ("order_date", date32),
            ("amount", narrow),
        ],
    );
    let err = load_table(TableKind::Transactions, &[&path], &LoadOptions::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("decimal256(38, 2)"), "{err}");
    // The wide decimal as the amount: an error naming file, column and type, and what to do.
    let path = write_arrow_rs(
        dir.path(),
        "wide.arrow",
        vec![
            ("customer_id", customers),
            ("order_date", date64),
            ("amount", wide()),
        ],
    );
    let err = load_table(TableKind::Transactions, &[&path], &LoadOptions::default())
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(matches!(err, Error::Format { .. }), "{err:?}");
    assert!(
        msg.contains("wide.arrow")
            && msg.contains("\"amount\"")
            && msg.contains("decimal256(50, 2)"),
        "{msg}"
    );
    assert!(msg.contains("in the warehouse"), "{msg}");
}

#[test]
fn columns_of_types_no_role_uses_are_ignored_unless_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let mut df = orders()
        .with_columns([
            col("amount").cast(DataType::Float64),
            // A list and a duration: neither is a dimension.
            concat_list([col("fx_rate"), col("fx_rate")])
                .unwrap()
                .alias("tags"),
            (col("order_date") - col("order_date")).alias("lead_time"),
        ])
        .collect()
        .unwrap();
    let path = write_parquet(dir.path(), "odd.parquet", &mut df);
    let t = load(&path);
    assert_eq!(t.accounting.rows_used, 3);
    assert!(
        !t.dimensions.contains(&"tags".to_string()),
        "{:?}",
        t.dimensions
    );
    assert!(!t.dimensions.contains(&"lead_time".to_string()));
    // Mapped to a role, the duration is an error naming it.
    let mut options = LoadOptions::default();
    options
        .mapping
        .columns
        .insert(custmetrics::io::Role::Date, "lead_time".into());
    let err = load_table(TableKind::Transactions, &[&path], &options)
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("odd.parquet")
            && err.to_string().contains("\"lead_time\"")
            && err.to_string().contains("duration"),
        "{err}"
    );
}
