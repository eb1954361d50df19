use std::io::Write;
use std::path::Path;

use polars::prelude::*;

use crate::{assert_code, json, run, stderr, stdout};

// Issue 18: a decimal column, even one the report does not use, panicked (exit 101), `inspect` too.
#[test]
fn decimal_parquet_reports_and_inspects() {
    let dir = tempfile::tempdir().unwrap();
    let mut df = df!(
        "customer_id" => [12345i64, 12345, 7],
        "order_date" => ["2024-01-05", "2024-02-10", "2024-01-20"],
        "amount" => ["19.99", "0.01", "100.10"],
        "fx_rate" => ["1.0825000000", "1.1", "0.9"],
    )
    .unwrap()
    .lazy()
    .with_columns([
        col("order_date").str().to_date(StrptimeOptions::default()),
        col("amount").cast(DataType::Decimal(18, 2)),
        col("fx_rate").cast(DataType::Decimal(38, 10)),
    ])
    .collect()
    .unwrap();
    let p = dir.path().join("warehouse.parquet");
    ParquetWriter::new(std::fs::File::create(&p).unwrap())
        .finish(&mut df)
        .unwrap();
    let p = p.to_str().unwrap();
    let out = run(dir.path(), &["inspect", p]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("3 read, 3 used, 0 rejected"),
        "{}",
        stdout(&out)
    );
    let v = json(&run(dir.path(), &["report", "-t", p, "--format", "json"]));
    assert_eq!(v["overview"]["customers"], 2);
    // 19.99 + 0.01 + 100.10, to the cent.
    let revenue = v["overview"]["revenue"].as_f64().unwrap();
    assert!((revenue - 120.10).abs() < 1e-9, "{revenue}");
}

fn utf16le_with_bom(text: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    for u in text.encode_utf16() {
        out.extend_from_slice(&u.to_le_bytes());
    }
    out
}

// Issue 18: Excel "Unicode Text" was refused with advice to use windows-1252.
#[test]
fn excel_unicode_text_is_read_as_utf16() {
    let dir = tempfile::tempdir().unwrap();
    let text = "customer_id\torder_date\tamount\tcity\r\nc1\t2024-01-31\t10.5\tMünchen\r\nc2\t2024-02-01\t4.5\tŁódź\r\n";
    std::fs::write(dir.path().join("unicode.txt"), utf16le_with_bom(text)).unwrap();
    let out = run(
        dir.path(),
        &["report", "-t", "unicode.txt", "--format", "json"],
    );
    let v = json(&out);
    assert_eq!(v["overview"]["revenue"].as_f64(), Some(15.0));
    assert!(
        stderr(&out).contains("unicode.txt: read as UTF-16LE text"),
        "{}",
        stderr(&out)
    );
    let out = run(dir.path(), &["inspect", "unicode.txt"]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("encoding    utf-16le"),
        "{}",
        stdout(&out)
    );
    // Without the byte-order mark: refused with the flag to use, which then reads it.
    let bytes = utf16le_with_bom(text);
    std::fs::write(dir.path().join("nobom.txt"), &bytes[2..]).unwrap();
    let out = run(dir.path(), &["report", "-t", "nobom.txt"]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("--encoding utf-16le") && !stderr(&out).contains("windows-1252"),
        "{}",
        stderr(&out)
    );
    let v = json(&run(
        dir.path(),
        &[
            "report",
            "-t",
            "nobom.txt",
            "--encoding",
            "utf-16",
            "--format",
            "json",
        ],
    ));
    assert_eq!(v["overview"]["revenue"].as_f64(), Some(15.0));
}

/// A minimal .xlsx with text and number cells (the library tests cover dates and errors).
fn xlsx(sheets: &[(&str, &[&[&str]])]) -> Vec<u8> {
    const MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
    const REL: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    const PKG: &str = "http://schemas.openxmlformats.org/package/2006/relationships";
    let mut w = ::zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = ::zip::write::SimpleFileOptions::default();
    let mut file = |name: &str, text: String| {
        w.start_file(name, options).unwrap();
        w.write_all(text.as_bytes()).unwrap();
    };
    file(
        "_rels/.rels",
        format!(
            "<Relationships xmlns=\"{PKG}\"><Relationship Id=\"rId1\" Type=\"{REL}/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>"
        ),
    );
    let (mut list, mut rels) = (String::new(), String::new());
    for (i, (name, rows)) in sheets.iter().enumerate() {
        let n = i + 1;
        list.push_str(&format!(
            "<sheet name=\"{name}\" sheetId=\"{n}\" r:id=\"rId{n}\"/>"
        ));
        rels.push_str(&format!("<Relationship Id=\"rId{n}\" Type=\"{REL}/worksheet\" Target=\"worksheets/sheet{n}.xml\"/>"));
        let mut data = String::new();
        for (r, row) in rows.iter().enumerate() {
            data.push_str(&format!("<row r=\"{}\">", r + 1));
            for (c, v) in row.iter().enumerate() {
                let at = format!("{}{}", (b'A' + c as u8) as char, r + 1);
                data.push_str(&match v.parse::<f64>() {
                    Ok(x) => format!("<c r=\"{at}\"><v>{x}</v></c>"),
                    Err(_) => format!("<c r=\"{at}\" t=\"inlineStr\"><is><t>{v}</t></is></c>"),
                });
            }
            data.push_str("</row>");
        }
        file(
            &format!("xl/worksheets/sheet{n}.xml"),
            format!("<worksheet xmlns=\"{MAIN}\"><sheetData>{data}</sheetData></worksheet>"),
        );
    }
    file(
        "xl/workbook.xml",
        format!("<workbook xmlns=\"{MAIN}\" xmlns:r=\"{REL}\"><sheets>{list}</sheets></workbook>"),
    );
    file(
        "xl/_rels/workbook.xml.rels",
        format!("<Relationships xmlns=\"{PKG}\">{rels}</Relationships>"),
    );
    w.finish().unwrap().into_inner()
}

fn write_book(dir: &Path, name: &str) {
    let orders: &[&[&str]] = &[
        &["customer_id", "order_date", "amount"],
        &["c1", "2024-01-31", "10.5"],
        &["c2", "2024-02-01", "#N/A"],
    ];
    // A purchase and its partial refund: net 12 − 5 = 7.
    let refunds: &[&[&str]] = &[
        &["customer_id", "order_date", "amount"],
        &["c9", "2024-02-20", "12"],
        &["c9", "2024-03-01", "-5"],
    ];
    std::fs::write(
        dir.join(name),
        xlsx(&[("Orders", orders), ("Refunds", refunds)]),
    )
    .unwrap();
}

#[test]
fn workbooks_are_read_by_content_with_a_sheet_flag() {
    let dir = tempfile::tempdir().unwrap();
    write_book(dir.path(), "book.xlsx");
    // An .xlsx renamed .csv got Windows-1252 advice, then zip bytes as column names.
    write_book(dir.path(), "renamed.csv");
    for name in ["book.xlsx", "renamed.csv"] {
        let out = run(dir.path(), &["inspect", name]);
        assert_code(&out, 0);
        let text = stdout(&out);
        for want in [
            "format      excel workbook (xlsx)",
            "sheet       Orders",
            "2 read, 1 used, 1 rejected",
            // Sheet row 3.
            "renamed.csv:3".replace("renamed.csv", name).as_str(),
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }
    let v = json(&run(
        dir.path(),
        &[
            "report",
            "-t",
            "book.xlsx",
            "--sheet",
            "Refunds",
            "--format",
            "json",
        ],
    ));
    assert_eq!(v["overview"]["revenue"].as_f64(), Some(7.0));
    // The same from custmetrics.toml.
    std::fs::write(
        dir.path().join("custmetrics.toml"),
        "[transactions]\nfiles = [\"book.xlsx\"]\nsheet = \"Refunds\"\n",
    )
    .unwrap();
    let v = json(&run(dir.path(), &["report", "--format", "json"]));
    assert_eq!(v["overview"]["revenue"].as_f64(), Some(7.0));
    std::fs::remove_file(dir.path().join("custmetrics.toml")).unwrap();
    let out = run(
        dir.path(),
        &["report", "-t", "book.xlsx", "--sheet", "Sheet1"],
    );
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("no sheet named \"Sheet1\"; the sheets are: \"Orders\", \"Refunds\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_workbook_on_stdin_is_read_as_one() {
    let dir = tempfile::tempdir().unwrap();
    write_book(dir.path(), "book.xlsx");
    let out = assert_cmd::Command::cargo_bin("custmetrics")
        .unwrap()
        .current_dir(dir.path())
        .args([
            "report", "-t", "-", "--sheet", "Refunds", "--format", "json",
        ])
        .write_stdin(std::fs::read(dir.path().join("book.xlsx")).unwrap())
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(v["overview"]["revenue"].as_f64(), Some(7.0));
}

#[test]
fn a_zipped_csv_is_refused_for_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = ::zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file("orders.csv", ::zip::write::SimpleFileOptions::default())
        .unwrap();
    w.write_all(b"customer_id,order_date,amount\nc1,2024-01-31,5\n")
        .unwrap();
    std::fs::write(
        dir.path().join("orders.zip"),
        w.finish().unwrap().into_inner(),
    )
    .unwrap();
    let out = run(dir.path(), &["report", "-t", "orders.zip"]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("orders.zip: a zip archive of 1 file (orders.csv), not a CSV; unzip it first")
            && !err.contains("windows-1252"),
        "{err}"
    );
}
