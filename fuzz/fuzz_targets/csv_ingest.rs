//! Arbitrary bytes as a transactions export: loading must never panic, and when it succeeds every
//! row is used or rejected.
#![no_main]

use custmetrics::io::{LoadOptions, TableKind, load_table};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("orders.csv");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let Some(p) = path.to_str() else { return };
    for kind in [TableKind::Transactions, TableKind::Interactions] {
        if let Ok(t) = load_table(kind, &[p], &LoadOptions::default()) {
            let a = &t.accounting;
            assert_eq!(a.rows_read, a.rows_used + a.rows_excluded + a.rows_rejected);
            assert_eq!(t.frame.height() as u64 <= a.rows_used, true);
        }
    }
});
