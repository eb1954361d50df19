//! Arbitrary bytes as UTF-16 text with a byte-order mark (Excel's "Unicode Text"): the first byte
//! picks the byte order, the rest is the text. Loading must never panic, and when it succeeds
//! every row is used or rejected. Also tries the bytes with `encoding = utf-16le` and no mark.
#![no_main]

use custmetrics::io::{LoadOptions, TableKind, TextEncoding, load_table};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&order, text)) = data.split_first() else {
        return;
    };
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("orders.txt");
    let bom: &[u8] = if order % 2 == 0 { &[0xFF, 0xFE] } else { &[0xFE, 0xFF] };
    let Some(p) = path.to_str() else { return };
    for (bytes, encoding) in [
        ([bom, text].concat(), None),
        (text.to_vec(), Some(TextEncoding::Utf16Le)),
    ] {
        if std::fs::write(&path, bytes).is_err() {
            return;
        }
        let mut options = LoadOptions::default();
        options.encoding = encoding;
        for kind in [TableKind::Transactions, TableKind::Interactions] {
            if let Ok(t) = load_table(kind, &[p], &options) {
                let a = &t.accounting;
                assert_eq!(a.rows_read, a.rows_used + a.rows_excluded + a.rows_rejected);
                assert!(t.frame.height() as u64 <= a.rows_used);
            }
        }
    }
});
