//! Arbitrary bytes as a workbook: loading must never panic, and when it succeeds every row is
//! used or rejected. The first byte picks what the rest is:
//! - 0: a whole file (.xlsx, .xlsb, .ods, .xls or anything else), sniffed from its bytes;
//! - 1: the worksheet XML of an otherwise valid .xlsx;
//! - 2: the `content.xml` of an otherwise valid .ods.
//!
//! Modes 1 and 2 exist because a mutated zip mostly fails its CRC check before any XML or cell
//! is parsed. Seeds in corpus/workbook_ingest are small valid inputs of each mode.
#![no_main]

use std::io::Write;

use custmetrics::io::{LoadOptions, TableKind, load_table};
use libfuzzer_sys::fuzz_target;

const MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
const REL: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
const PKG: &str = "http://schemas.openxmlformats.org/package/2006/relationships";

fn zip_of(files: &[(&str, &[u8])]) -> Option<Vec<u8>> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in files {
        w.start_file(*name, options).ok()?;
        w.write_all(bytes).ok()?;
    }
    Some(w.finish().ok()?.into_inner())
}

fn xlsx_around(sheet: &[u8]) -> Option<Vec<u8>> {
    let rels = format!("<Relationships xmlns=\"{PKG}\"><Relationship Id=\"rId1\" Type=\"{REL}/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>");
    let workbook = format!("<workbook xmlns=\"{MAIN}\" xmlns:r=\"{REL}\"><sheets><sheet name=\"Orders\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>");
    let workbook_rels = format!("<Relationships xmlns=\"{PKG}\"><Relationship Id=\"rId1\" Type=\"{REL}/worksheet\" Target=\"worksheets/sheet1.xml\"/><Relationship Id=\"rId2\" Type=\"{REL}/styles\" Target=\"styles.xml\"/></Relationships>");
    let styles = format!("<styleSheet xmlns=\"{MAIN}\"><cellXfs count=\"2\"><xf numFmtId=\"0\"/><xf numFmtId=\"14\" applyNumberFormat=\"1\"/></cellXfs></styleSheet>");
    zip_of(&[
        ("_rels/.rels", rels.as_bytes()),
        ("xl/workbook.xml", workbook.as_bytes()),
        ("xl/_rels/workbook.xml.rels", workbook_rels.as_bytes()),
        ("xl/styles.xml", styles.as_bytes()),
        ("xl/worksheets/sheet1.xml", sheet),
    ])
}

fn ods_around(content: &[u8]) -> Option<Vec<u8>> {
    let manifest = "<manifest:manifest xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\" manifest:version=\"1.2\"><manifest:file-entry manifest:full-path=\"/\" manifest:media-type=\"application/vnd.oasis.opendocument.spreadsheet\"/></manifest:manifest>";
    zip_of(&[
        ("mimetype", b"application/vnd.oasis.opendocument.spreadsheet"),
        ("META-INF/manifest.xml", manifest.as_bytes()),
        ("content.xml", content),
    ])
}

/// libFuzzer's panic hook aborts before any unwinding. calamine 0.38 has one known panic, an
/// arithmetic overflow on a cell reference of many letters (with overflow checks on, as in fuzz
/// builds; release builds wrap), which custmetrics catches (`catch_unwind` in io/workbook.rs) and
/// reports as a damaged workbook. Only panics raised inside calamine are let through to that
/// guard; any other panic still aborts and is a finding.
fn let_calamine_panics_unwind() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_calamine = info
                .location()
                .is_some_and(|l| l.file().contains("/calamine-"));
            if !in_calamine {
                abort(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    let_calamine_panics_unwind();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = match mode % 3 {
        0 => Some(rest.to_vec()),
        1 => xlsx_around(rest),
        _ => ods_around(rest),
    };
    let Some(bytes) = bytes else { return };
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("orders.xlsx");
    if std::fs::write(&path, bytes).is_err() {
        return;
    }
    let Some(p) = path.to_str() else { return };
    let mut options = LoadOptions::default();
    for sheet in [None, Some("Orders".to_string())] {
        options.sheet = sheet;
        if let Ok(t) = load_table(TableKind::Transactions, &[p], &options) {
            let a = &t.accounting;
            assert_eq!(a.rows_read, a.rows_used + a.rows_excluded + a.rows_rejected);
            assert!(t.frame.height() as u64 <= a.rows_used);
        }
    }
});
