//! Arbitrary text as custmetrics.toml: a clear error or a config, never a panic.
#![no_main]

use custmetrics::io::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("custmetrics.toml");
    if std::fs::write(&path, data).is_ok() {
        let _ = Config::from_path(&path);
    }
});
