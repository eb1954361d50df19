//! Tests that run the real `custmetrics` binary (one test binary: polars links slowly).

/// The bad-input corpus of testdata/bad (issue 7): messages, exit codes, no output, no panic.
mod bad_input;
/// `clv fit` / `clv predict`: every model against its published estimates, saved models.
mod clv;
/// `sql` and `summarize --from-results`: the stage-1 SQL for engines, and its refusals.
mod engines;
/// Exports as tools write them: statuses, refunds, line items, empty data.
mod exports;
/// Reading exports through the CLI: formats, mappings, rejections, exit codes.
mod ingest;
/// Where outputs go: devices and FIFOs, colliding outputs, Markdown escaping, Ctrl-C (issue 18).
mod outputs;
/// Real exports as tools write them (issue 18): typed Parquet, UTF-16 text, workbooks.
mod readers;
/// Report and metric commands: JSON schema, renderers (snapshots), outputs.
mod report;
/// The summary store (issue 20): every command from a store as from the exports, updates
/// with overlapping months, interrupted updates, versions.
mod store;
/// Survey and helpdesk exports (issue 18): key-choice notes, names refused, bad answers.
mod surveys;

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// A file under `testdata/`.
pub fn testdata(rel: &str) -> String {
    let p: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "..", "testdata", rel]
        .iter()
        .collect();
    p.to_string_lossy().into_owned()
}

/// Runs custmetrics with `args` in `dir`.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::cargo_bin("custmetrics").expect("binary");
    cmd.current_dir(dir).args(args).env("NO_COLOR", "1");
    cmd.output().expect("run custmetrics")
}

/// A run's exit code and stderr, for a snapshot: the same in every checkout and temporary
/// directory, because the paths of `testdata/` read `[TESTDATA]` and `dir` reads `[TMP]`.
pub fn code_and_stderr(out: &Output, dir: &Path) -> String {
    let testdata: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "..", "testdata"]
        .iter()
        .collect();
    let mut text = stderr(out);
    // The path as the tests pass it, and as the binary may resolve it.
    for (path, name) in [
        (testdata.clone(), "[TESTDATA]"),
        (dir.to_path_buf(), "[TMP]"),
    ] {
        text = text.replace(path.to_string_lossy().as_ref(), name);
        if let Ok(real) = path.canonicalize() {
            text = text.replace(real.to_string_lossy().as_ref(), name);
        }
    }
    let code = out.status.code().map_or_else(
        || "none (killed by a signal)".to_string(),
        |c| c.to_string(),
    );
    format!("exit code: {code}\n--- stderr\n{text}")
}

/// Asserts the exit code, showing stdout and stderr on failure.
pub fn assert_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit code\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn json(out: &Output) -> serde_json::Value {
    assert_code(out, 0);
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// Writes the raw CDNOW sample (whitespace-separated: id, id, YYYYMMDD, CDs, amount) as
/// `dir/cdnow.csv`, the preparation of the published CDNOW analyses.
pub fn write_cdnow_csv(dir: &std::path::Path) {
    let raw = std::fs::read_to_string(testdata("cdnow/CDNOW_sample.txt")).unwrap();
    let mut csv = String::from("customer_id,date,cds,amount\n");
    for line in raw.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        csv.push_str(&format!("{},{},{},{}\n", f[0], f[2], f[3], f[4]));
    }
    std::fs::write(dir.join("cdnow.csv"), csv).unwrap();
}
