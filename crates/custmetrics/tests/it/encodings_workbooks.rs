//! Issue 18, item 6: UTF-16 text (Excel's "Unicode Text"), workbooks (.xlsx, .ods, .xls), and
//! files that are neither. The workbooks are built here: an .xlsx and an .ods are zips of a few
//! small XML files.

use std::io::Write;
use std::path::Path;

use custmetrics::io::{FileFormat, LoadOptions, TableKind, TextEncoding, col, load_table};

/// One cell of a test workbook.
#[derive(Clone, Copy)]
pub enum Cell<'a> {
    Text(&'a str),
    Number(f64),
    /// A date cell: an Excel serial day (45322 is 2024-01-31), shown with a date format.
    Date(f64),
    /// A cell holding an error value such as `#N/A`.
    Error(&'a str),
    Empty,
}

fn zip_of(files: &[(&str, String)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    // Stored, not deflated: OpenDocument wants `mimetype` stored, and nothing here is large.
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, text) in files {
        w.start_file(*name, options).unwrap();
        w.write_all(text.as_bytes()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A minimal .xlsx: the parts calamine reads (package and workbook relationships, workbook,
/// styles with a date format, one worksheet per sheet with inline strings).
pub fn xlsx(sheets: &[(&str, &[&[Cell]])]) -> Vec<u8> {
    const MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
    const REL: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    const PKG: &str = "http://schemas.openxmlformats.org/package/2006/relationships";
    let mut files = vec![
        (
            "[Content_Types].xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"><Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/><Default Extension=\"xml\" ContentType=\"application/xml\"/><Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/></Types>".to_string(),
        ),
        (
            "_rels/.rels",
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Relationships xmlns=\"{PKG}\"><Relationship Id=\"rId1\" Type=\"{REL}/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>"),
        ),
        (
            "xl/styles.xml",
            // Style 1 is numFmtId 14, Excel's built-in short date.
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><styleSheet xmlns=\"{MAIN}\"><cellXfs count=\"2\"><xf numFmtId=\"0\"/><xf numFmtId=\"14\" applyNumberFormat=\"1\"/></cellXfs></styleSheet>"),
        ),
    ];
    let mut sheet_list = String::new();
    let mut rels =
        format!("<Relationship Id=\"rIdStyles\" Type=\"{REL}/styles\" Target=\"styles.xml\"/>");
    let mut sheet_files = Vec::new();
    for (i, (name, rows)) in sheets.iter().enumerate() {
        let n = i + 1;
        sheet_list.push_str(&format!(
            "<sheet name=\"{}\" sheetId=\"{n}\" r:id=\"rId{n}\"/>",
            xml_escape(name)
        ));
        rels.push_str(&format!(
            "<Relationship Id=\"rId{n}\" Type=\"{REL}/worksheet\" Target=\"worksheets/sheet{n}.xml\"/>"
        ));
        let mut data = String::new();
        for (r, row) in rows.iter().enumerate() {
            let r = r + 1;
            data.push_str(&format!("<row r=\"{r}\">"));
            for (c, cell) in row.iter().enumerate() {
                let at = format!("{}{r}", (b'A' + c as u8) as char);
                data.push_str(&match cell {
                    Cell::Text(t) => format!(
                        "<c r=\"{at}\" t=\"inlineStr\"><is><t>{}</t></is></c>",
                        xml_escape(t)
                    ),
                    Cell::Number(x) => format!("<c r=\"{at}\"><v>{x:?}</v></c>"),
                    Cell::Date(x) => format!("<c r=\"{at}\" s=\"1\"><v>{x:?}</v></c>"),
                    Cell::Error(e) => format!("<c r=\"{at}\" t=\"e\"><v>{}</v></c>", xml_escape(e)),
                    Cell::Empty => String::new(),
                });
            }
            data.push_str("</row>");
        }
        sheet_files.push((
            format!("xl/worksheets/sheet{n}.xml"),
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><worksheet xmlns=\"{MAIN}\"><sheetData>{data}</sheetData></worksheet>"),
        ));
    }
    files.push((
        "xl/workbook.xml",
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><workbook xmlns=\"{MAIN}\" xmlns:r=\"{REL}\"><sheets>{sheet_list}</sheets></workbook>"),
    ));
    files.push((
        "xl/_rels/workbook.xml.rels",
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Relationships xmlns=\"{PKG}\">{rels}</Relationships>"),
    ));
    let mut all: Vec<(&str, String)> = files;
    for (name, text) in &sheet_files {
        all.push((name.as_str(), text.clone()));
    }
    zip_of(&all)
}

/// A minimal .ods: `mimetype` (stored, first), the manifest and `content.xml`.
pub fn ods(sheets: &[(&str, &[&[Cell]])]) -> Vec<u8> {
    let mut tables = String::new();
    for (name, rows) in sheets {
        tables.push_str(&format!(
            "<table:table table:name=\"{}\">",
            xml_escape(name)
        ));
        for row in *rows {
            tables.push_str("<table:table-row>");
            for cell in *row {
                tables.push_str(&match cell {
                    Cell::Text(t) | Cell::Error(t) => format!(
                        "<table:table-cell office:value-type=\"string\"><text:p>{}</text:p></table:table-cell>",
                        xml_escape(t)
                    ),
                    Cell::Number(x) => format!(
                        "<table:table-cell office:value-type=\"float\" office:value=\"{x:?}\"><text:p>{x}</text:p></table:table-cell>"
                    ),
                    Cell::Date(x) => {
                        let day = chrono::NaiveDate::from_ymd_opt(1899, 12, 30).unwrap()
                            + chrono::TimeDelta::days(*x as i64);
                        format!(
                            "<table:table-cell office:value-type=\"date\" office:date-value=\"{day}\"><text:p>{day}</text:p></table:table-cell>"
                        )
                    }
                    Cell::Empty => "<table:table-cell/>".to_string(),
                });
            }
            tables.push_str("</table:table-row>");
        }
        tables.push_str("</table:table>");
    }
    zip_of(&[
        ("mimetype", "application/vnd.oasis.opendocument.spreadsheet".to_string()),
        (
            "META-INF/manifest.xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><manifest:manifest xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\" manifest:version=\"1.2\"><manifest:file-entry manifest:full-path=\"/\" manifest:media-type=\"application/vnd.oasis.opendocument.spreadsheet\"/><manifest:file-entry manifest:full-path=\"content.xml\" manifest:media-type=\"text/xml\"/></manifest:manifest>".to_string(),
        ),
        (
            "content.xml",
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><office:document-content xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\" xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" office:version=\"1.2\"><office:body><office:spreadsheet>{tables}</office:spreadsheet></office:body></office:document-content>"),
        ),
    ])
}

/// The orders sheet of the tests: row 4's amount is `#N/A`, row 5's order id is 1003.
pub fn orders_rows() -> Vec<Vec<Cell<'static>>> {
    use Cell::*;
    vec![
        vec![
            Text("customer_id"),
            Text("order_date"),
            Text("amount"),
            Text("order_id"),
            Text("city"),
        ],
        // 45322 is 2024-01-31; 0.1 + 0.2 is 0.30000000000000004 in binary, 0.3 on screen.
        vec![
            Text("c1"),
            Date(45322.0),
            Number(0.1 + 0.2),
            Number(1001.0),
            Text("München"),
        ],
        vec![
            Text("c2"),
            Date(45323.0),
            Number(19.99),
            Number(1002.0),
            Text("Zürich \"Nord\""),
        ],
        vec![
            Text("c2"),
            Date(45324.0),
            Error("#N/A"),
            Number(1004.0),
            Empty,
        ],
        vec![
            Text("c1"),
            Date(45350.0),
            Number(100.0),
            Number(1003.0),
            Text("a,b"),
        ],
    ]
}

fn refunds_rows() -> Vec<Vec<Cell<'static>>> {
    use Cell::*;
    vec![
        vec![Text("customer_id"), Text("order_date"), Text("amount")],
        // A purchase and its refund (a refund alone would be excluded: no purchase).
        vec![Text("c9"), Date(45320.0), Number(12.0)],
        vec![Text("c9"), Date(45322.0), Number(-5.0)],
    ]
}

fn rows_ref<'a>(rows: &'a [Vec<Cell<'a>>]) -> Vec<&'a [Cell<'a>]> {
    rows.iter().map(Vec::as_slice).collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

fn load(path: &str, options: &LoadOptions) -> custmetrics::Result<custmetrics::io::Table> {
    load_table(TableKind::Transactions, &[path], options)
}

fn strings(t: &custmetrics::io::Table, column: &str) -> Vec<Option<String>> {
    let c = t
        .frame
        .column(column)
        .unwrap()
        .cast(&polars::prelude::DataType::String);
    c.unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

fn check_orders(t: &custmetrics::io::Table, format: FileFormat) {
    assert_eq!(t.files[0].format, format);
    assert_eq!(t.files[0].sheet.as_deref(), Some("Orders"));
    assert_eq!(t.accounting.rows_read, 4);
    assert_eq!(t.accounting.rows_used, 3);
    // The #N/A amount is rejected with its text, on sheet row 4.
    let r = &t.rejections[0];
    assert_eq!((r.line, r.value.as_str()), (Some(4), "#N/A"), "{r}");
    assert_eq!(
        strings(t, col::DATE),
        [
            Some("2024-01-31".into()),
            Some("2024-02-01".into()),
            Some("2024-02-28".into())
        ]
    );
    // Order ids are the integers' text; amounts as shown: 0.3 + 19.99 + 100 = 120.29.
    assert_eq!(
        strings(t, col::ORDER_ID),
        [
            Some("1001".into()),
            Some("1002".into()),
            Some("1003".into())
        ]
    );
    let amounts: Vec<f64> = t
        .frame
        .column(col::AMOUNT)
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(amounts, [0.3, 19.99, 100.0]);
    assert_eq!(
        strings(t, "city"),
        [
            Some("München".into()),
            Some("Zürich \"Nord\"".into()),
            Some("a,b".into())
        ]
    );
}

#[test]
fn xlsx_and_ods_sheets_read_like_csv_whatever_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let orders = orders_rows();
    let refunds = refunds_rows();
    let sheets: [(&str, &[&[Cell]]); 2] = [
        ("Orders", &rows_ref(&orders)),
        ("Refunds", &rows_ref(&refunds)),
    ];
    for (bytes, format) in [
        (xlsx(&sheets), FileFormat::Xlsx),
        (ods(&sheets), FileFormat::Ods),
    ] {
        // By content, not by name: a workbook renamed .csv is still one.
        for name in ["orders.xlsx", "orders.csv"] {
            let p = write(dir.path(), name, &bytes);
            let t = load(&p, &LoadOptions::default()).unwrap_or_else(|e| panic!("{p}: {e}"));
            check_orders(&t, format);
        }
        let p = write(dir.path(), "book", &bytes);
        let mut options = LoadOptions::default();
        options.sheet = Some("Refunds".into());
        let t = load(&p, &options).unwrap();
        assert_eq!(t.files[0].sheet.as_deref(), Some("Refunds"));
        assert_eq!(
            strings(&t, col::CUSTOMER_ID),
            [Some("c9".into()), Some("c9".into())]
        );
        options.sheet = Some("Sheet1".into());
        let err = load(&p, &options).err().unwrap().to_string();
        assert!(
            err.contains("no sheet named \"Sheet1\"") && err.contains("\"Orders\", \"Refunds\""),
            "{err}"
        );
    }
}

#[test]
fn rows_above_the_table_keep_line_numbers_sheet_rows() {
    use Cell::*;
    let dir = tempfile::tempdir().unwrap();
    let rows: Vec<Vec<Cell>> = vec![
        vec![Empty],
        vec![Text("customer_id"), Text("order_date"), Text("amount")],
        vec![Text("c1"), Date(45322.0), Number(5.0)],
        vec![Empty, Empty, Empty],
        vec![Text("c2"), Date(45322.0), Text("five")],
    ];
    let p = write(dir.path(), "o.xlsx", &xlsx(&[("Orders", &rows_ref(&rows))]));
    let t = load(&p, &LoadOptions::default()).unwrap();
    assert_eq!(t.accounting.rows_used, 1, "{:?}", t.rejections);
    let r = t.rejections.last().unwrap();
    assert_eq!((r.line, r.value.as_str()), (Some(5), "five"), "{r}");
}

#[test]
fn other_zips_and_binary_files_are_refused_for_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let zipped = zip_of(&[(
        "orders.csv",
        "customer_id,date,amount\na,2024-01-01,5\n".into(),
    )]);
    let p = write(dir.path(), "orders.csv", &zipped);
    let err = load(&p, &LoadOptions::default()).err().unwrap().to_string();
    assert!(
        err.contains("a zip archive of 1 file (orders.csv), not a CSV; unzip it first"),
        "{err}"
    );
    let p = write(dir.path(), "report.csv", b"%PDF-1.7\n\x00\x01\x02binary");
    let err = load(&p, &LoadOptions::default()).err().unwrap().to_string();
    assert!(err.contains("a PDF document, not a CSV"), "{err}");
    // An OLE container that is not a workbook: named, with what to do.
    let mut ole = vec![0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];
    ole.extend_from_slice(&[0u8; 600]);
    let p = write(dir.path(), "old.xls", &ole);
    let err = load(&p, &LoadOptions::default()).err().unwrap().to_string();
    assert!(err.contains("not a readable .xls workbook"), "{err}");
    // Binary data without a known signature: no Windows-1252 advice.
    let p = write(
        dir.path(),
        "blob.csv",
        b"\x00\x9d\xff\x81\x00\x13\x37binary\x00\xfe",
    );
    let err = load(&p, &LoadOptions::default()).err().unwrap().to_string();
    assert!(
        err.contains("binary data") && !err.contains("windows-1252"),
        "{err}"
    );
}

fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let units = std::iter::once('\u{feff}')
        .filter(|_| bom)
        .chain(text.chars())
        .collect::<String>();
    for u in units.encode_utf16() {
        out.extend_from_slice(&if big_endian {
            u.to_be_bytes()
        } else {
            u.to_le_bytes()
        });
    }
    out
}

// Issue 18: Excel "Unicode Text" was refused with advice to use windows-1252.
#[test]
fn utf16_with_a_byte_order_mark_is_read_as_utf16() {
    let dir = tempfile::tempdir().unwrap();
    // Excel's "Unicode Text": tab-separated, CRLF, UTF-16LE with a mark.
    let text = "customer_id\torder_date\tamount\tcity\r\nc1\t2024-01-31\t10.5\tMünchen\r\nc2\t2024-02-01\tfive\tŁódź\r\n";
    for (big_endian, expected) in [
        (false, TextEncoding::Utf16Le),
        (true, TextEncoding::Utf16Be),
    ] {
        let p = write(dir.path(), "unicode.txt", &utf16(text, big_endian, true));
        // The mark wins over a setting that says otherwise.
        for encoding in [
            None,
            Some(TextEncoding::Windows1252),
            Some(TextEncoding::Utf16Le),
        ] {
            let mut options = LoadOptions::default();
            options.encoding = encoding;
            let t = load(&p, &options).unwrap();
            assert_eq!(t.files[0].encoding, Some(expected));
            assert_eq!(t.files[0].delimiter.as_deref(), Some("\\t"));
            // Row 3 ("five") is rejected: only München's row is used.
            assert_eq!(strings(&t, "city"), [Some("München".into())]);
            // "five" is not an amount: rejected on line 3.
            assert_eq!(t.rejections.len(), 1);
            assert_eq!(t.rejections[0].line, Some(3));
        }
    }
    // Without a mark: refused with the setting to use, and read with it.
    let p = write(dir.path(), "nobom.txt", &utf16(text, false, false));
    let err = load(&p, &LoadOptions::default()).err().unwrap().to_string();
    assert!(
        err.contains("--encoding utf-16le") && !err.contains("windows-1252"),
        "{err}"
    );
    let mut options = LoadOptions::default();
    options.encoding = Some(TextEncoding::from_setting("UTF-16").unwrap());
    let t = load(&p, &options).unwrap();
    assert_eq!(t.accounting.rows_read, 2);
    assert_eq!(
        TextEncoding::from_setting("utf-16be").unwrap(),
        TextEncoding::Utf16Be
    );
}

/// Writes small valid inputs to the fuzz corpora (fuzz/corpus/{workbook_ingest,utf16_ingest}).
/// Run by hand: `cargo test -p custmetrics --test it write_fuzz_seeds -- --ignored`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let wb = root.join("workbook_ingest");
    std::fs::create_dir_all(&wb).unwrap();
    let orders = orders_rows();
    let refunds = refunds_rows();
    let sheets: [(&str, &[&[Cell]]); 2] = [
        ("Orders", &rows_ref(&orders)),
        ("Refunds", &rows_ref(&refunds)),
    ];
    // The first byte picks the mode of the target: 0 a whole file, 1 an .xlsx's worksheet
    // XML, 2 an .ods's content.xml.
    let seed = |name: &str, mode: u8, bytes: &[u8]| {
        std::fs::write(wb.join(name), [&[mode][..], bytes].concat()).unwrap();
    };
    let book = xlsx(&sheets);
    let spreadsheet = ods(&sheets);
    seed("orders.xlsx", 0, &book);
    seed("orders.ods", 0, &spreadsheet);
    seed("refunds_only.xlsx", 0, &xlsx(&sheets[1..]));
    seed(
        "zipped.csv.zip",
        0,
        &zip_of(&[(
            "orders.csv",
            "customer_id,date,amount\na,2024-01-01,5\n".into(),
        )]),
    );
    let entry = |zip_bytes: &[u8], name: &str| {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes.to_vec())).unwrap();
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut archive.by_name(name).unwrap(), &mut text).unwrap();
        text
    };
    seed("sheet1.xml", 1, &entry(&book, "xl/worksheets/sheet1.xml"));
    seed("content.xml", 2, &entry(&spreadsheet, "content.xml"));
    let u = root.join("utf16_ingest");
    std::fs::create_dir_all(&u).unwrap();
    let text = "customer_id\torder_date\tamount\tnps\r\nc1\t2024-01-31\t10.5\t9\r\nc2\t31/01/2024\t€5\t\r\n";
    // The first byte picks the byte order (even: little-endian), the rest is the text.
    std::fs::write(
        u.join("le.txt"),
        [&[0u8][..], &utf16(text, false, false)].concat(),
    )
    .unwrap();
    std::fs::write(
        u.join("be.txt"),
        [&[1u8][..], &utf16(text, true, false)].concat(),
    )
    .unwrap();
}

// Found while fuzzing: a stray value at XFD1048576 made calamine allocate the dense rectangle
// (512 GiB, an abort), an .ods table never closed made it loop forever, and a long cell
// reference overflowed.
#[test]
fn a_stray_far_cell_and_a_truncated_ods_are_errors_not_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let orders = orders_rows();
    let book = xlsx(&[("Orders", &rows_ref(&orders))]);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(book)).unwrap();
    let names: Vec<String> = archive
        .file_names()
        .filter_map(|s| s.ok().map(|s| s.into_owned()))
        .collect();
    let mut files: Vec<(String, String)> = Vec::new();
    for n in names {
        let mut t = String::new();
        std::io::Read::read_to_string(&mut archive.by_name(&n).unwrap(), &mut t).unwrap();
        if n == "xl/worksheets/sheet1.xml" {
            t = t.replace(
                "</sheetData>",
                "<row r=\"1048576\"><c r=\"XFD1048576\"><v>1</v></c></row></sheetData>",
            );
        }
        files.push((n, t));
    }
    let refs: Vec<(&str, String)> = files.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    let p = write(dir.path(), "far.xlsx", &zip_of(&refs));
    let err = load(&p, &LoadOptions::default()).err().unwrap().to_string();
    assert!(
        err.contains("spread over 1048576 rows and 16384 columns"),
        "{err}"
    );
    let ods_text = "<?xml version=\"1.0\"?><office:document-content xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\"><office:body><office:spreadsheet><table:table table:name=\"O\"><table:table-row><table:table-cell/>";
    let p = write(dir.path(), "trunc.ods", &zip_of(&[("mimetype", "application/vnd.oasis.opendocument.spreadsheet".into()), ("META-INF/manifest.xml", "<manifest:manifest xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\"/>".into()), ("content.xml", ods_text.into())]));
    let err = load(&p, &LoadOptions::default()).err().unwrap().to_string();
    assert!(err.contains("content.xml ends inside an element"), "{err}");
    // A cell reference of many letters overflows calamine's column arithmetic (a panic in debug
    // builds): a damaged workbook, not a crash.
    let long_ref: Vec<(&str, String)> = files
        .iter()
        .map(|(n, t)| {
            (
                n.as_str(),
                t.replace("XFD1048576\"><v>", "ZZZZZZZZZZZZZZZZZZZZ1\"><v>"),
            )
        })
        .collect();
    let p = write(dir.path(), "long_ref.xlsx", &zip_of(&long_ref));
    assert!(load(&p, &LoadOptions::default()).is_err());
}
