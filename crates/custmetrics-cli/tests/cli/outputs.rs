//! Where outputs go (issue 18, item 8): devices and FIFOs written in place, outputs of one run
//! that would collide, Markdown escaping, and Ctrl-C leaving no partial file.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::{assert_code, run, stderr, stdout, testdata};

fn demo_args<'a>(t: &'a str, i: &'a str, c: &'a str) -> Vec<&'a str> {
    vec!["report", "-t", t, "-i", i, "-c", c, "--quiet"]
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The binary under test, hard-linked (or copied) into a directory of its own so that every step of a test runs
/// the same build: the target directory may be shared, and another build may replace
/// `target/debug/custmetrics` meanwhile. A binary with the bug of issue 18 replaces
/// `/dev/null` or `/dev/stdout` when run as root, so the tests that use the real device paths
/// first prove, on a FIFO of their own, that this binary writes in place.
fn pinned_binary() -> (tempfile::TempDir, PathBuf) {
    let bin = Path::new(env!("CARGO_BIN_EXE_custmetrics"));
    // Beside the target directory, so that a hard link works (no copy of a large debug build).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let pinned = dir.path().join("custmetrics");
    if std::fs::hard_link(bin, &pinned).is_err() {
        std::fs::copy(bin, &pinned).unwrap();
    }
    (dir, pinned)
}

/// Runs `bin` with `args` in `dir`, its stdout into `stdout`.
fn run_pinned(bin: &Path, dir: &Path, args: &[&str], stdout: Stdio) -> std::process::Output {
    std::process::Command::new(bin)
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

/// Writes `--output FIFO` with `bin` and returns what a reader got; `None` if nothing came
/// within a minute (the FIFO was replaced by a file, so the reader waits forever: it is left
/// blocked rather than joined).
fn through_fifo(bin: &Path, dir: &Path, fifo_name: &str) -> Option<String> {
    let fifo = dir.join(fifo_name);
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.unwrap().success());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(std::fs::read_to_string(fifo).unwrap()));
    let t = testdata("fixtures/retention_small.csv");
    let out = run_pinned(
        bin,
        dir,
        &[
            "retention",
            "-t",
            &t,
            "-f",
            "markdown",
            "-o",
            fifo_name,
            "-q",
        ],
        Stdio::null(),
    );
    assert_code(&out, 0);
    rx.recv_timeout(Duration::from_secs(60)).ok()
}

#[test]
fn output_to_a_fifo_is_written_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (_pin, bin) = pinned_binary();
    let text = through_fifo(&bin, dir.path(), "report.pipe").expect("the FIFO was replaced");
    assert!(text.starts_with("# Customer metrics report"), "{text}");
    let kind = std::fs::symlink_metadata(dir.path().join("report.pipe"))
        .unwrap()
        .file_type();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&kind));
    assert_eq!(entries(dir.path()), ["report.pipe"]);
}

/// Issue 18: `--output /dev/stdout` (run as root) replaced the device link with a regular file,
/// and `/dev/null` with a regular file.
#[test]
fn output_to_dev_stdout_and_dev_null_keeps_the_devices() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let (_pin, bin) = pinned_binary();
    assert!(
        through_fifo(&bin, dir.path(), "canary.pipe").is_some(),
        "this binary replaces a FIFO: not running it on /dev/stdout and /dev/null"
    );
    std::fs::remove_file(dir.path().join("canary.pipe")).unwrap();
    let t = testdata("fixtures/retention_small.csv");
    let args = [
        "retention",
        "-t",
        &t,
        "-f",
        "json",
        "-o",
        "/dev/stdout",
        "-q",
    ];
    let out = run_pinned(&bin, dir.path(), &args, Stdio::piped());
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert!(v["retention"].is_object());
    let link = std::fs::symlink_metadata("/dev/stdout").unwrap();
    assert!(link.file_type().is_symlink(), "/dev/stdout was replaced");

    // Redirected to a file (`>> log` in a shell): written after what the file already holds.
    let log = dir.path().join("log.txt");
    std::fs::write(&log, "before\n").unwrap();
    let file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let appended = run_pinned(&bin, dir.path(), &args, Stdio::from(file));
    assert_code(&appended, 0);
    let text = std::fs::read_to_string(&log).unwrap();
    let report = text.strip_prefix("before\n").expect("kept what was there");
    assert_eq!(report.as_bytes(), out.stdout.as_slice());

    let out = run_pinned(
        &bin,
        dir.path(),
        &[
            "retention",
            "-t",
            &t,
            "-f",
            "markdown",
            "-o",
            "/dev/null",
            "--rejects",
            "/dev/null",
            "-q",
        ],
        Stdio::piped(),
    );
    assert_code(&out, 0);
    assert!(stdout(&out).is_empty());
    let m = std::fs::metadata("/dev/null").unwrap();
    assert!(m.file_type().is_char_device(), "/dev/null was replaced");
    assert_eq!(entries(dir.path()), ["log.txt"]);
}

/// Issue 18: `--rejects` equal to `--output` was silently overwritten. Refused before the
/// inputs are read (the input here does not even exist), with exit code 1 like every other
/// refusal of the run's settings (2 is clap's own usage error).
#[test]
fn outputs_of_one_run_that_collide_are_refused_first() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let cases: [&[&str]; 4] = [
        &["-o", "r.md", "--rejects", "r.md"],
        &["-o", "r.md", "--rejects", "sub/../r.md"],
        &[
            "-f",
            "csv",
            "--output-dir",
            "tables",
            "--rejects",
            "tables/retention_periods.csv",
        ],
        &[
            "-f",
            "csv",
            "--output-dir",
            ".",
            "--rejects",
            "headlines.csv",
        ],
    ];
    for flags in cases {
        let mut args = vec!["report", "-t", "missing.csv"];
        args.extend_from_slice(flags);
        let out = run(dir.path(), &args);
        assert_code(&out, 1);
        let err = stderr(&out);
        assert!(
            err.contains("refusing to write rejects to"),
            "{flags:?}: {err}"
        );
        assert!(err.contains("hint: give --"), "{err}");
        assert_eq!(entries(dir.path()), ["sub"], "{flags:?}");
    }
    let out = run(
        dir.path(),
        &[
            "clv",
            "fit",
            "-t",
            "missing.csv",
            "-o",
            "m.json",
            "--save-model",
            "./m.json",
        ],
    );
    assert_code(&out, 1);
    assert!(
        stderr(&out)
            .contains("refusing to write save_model to ./m.json: output is written there too"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("hint: give --output and --save-model different paths"));

    // A rejects file of its own inside the CSV directory is fine (the rejects are written
    // first, so the directory must exist).
    std::fs::create_dir(dir.path().join("tables")).unwrap();
    std::fs::write(
        dir.path().join("t.csv"),
        "customer_id,date,amount\na,2024-01-02,10\nb,2024-02-03,oops\n",
    )
    .unwrap();
    let out = run(
        dir.path(),
        &[
            "retention",
            "-t",
            "t.csv",
            "-f",
            "csv",
            "--output-dir",
            "tables",
            "--rejects",
            "tables/rejects.csv",
            "-q",
        ],
    );
    assert_code(&out, 0);
    let rejects = std::fs::read_to_string(dir.path().join("tables/rejects.csv")).unwrap();
    assert!(rejects.contains("oops"), "{rejects}");
}

/// Issue 18: Markdown (a CI job summary, rendered as HTML) carried data values raw.
#[test]
fn markdown_escapes_html_and_formulas_from_data() {
    let dir = tempfile::tempdir().unwrap();
    let script = "<script>alert(1)</script>";
    let formula = "=HYPERLINK(\"http://evil\",\"x\")";
    let mut csv = String::from("customer_id,date,amount,segment\n");
    for (n, seg) in [script, formula, "a|b"].iter().enumerate() {
        let seg = seg.replace('"', "\"\"");
        for c in 0..3 {
            for month in 1..=3 {
                csv.push_str(&format!(
                    "c{n}{c},2024-0{month}-1{c},{},\"{seg}\"\n",
                    10 + c
                ));
            }
        }
    }
    std::fs::write(dir.path().join("t.csv"), csv).unwrap();
    let out = run(
        dir.path(),
        &[
            "report", "-t", "t.csv", "--by", "segment", "-f", "markdown", "-q",
        ],
    );
    assert_code(&out, 0);
    let md = stdout(&out);
    assert!(!md.contains("<script") && !md.contains("</"), "{md}");
    assert!(md.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{md}");
    assert!(md.contains("'=HYPERLINK(\"http://evil\",\"x\")"), "{md}");
    assert!(!md.contains("| =HYPERLINK"), "{md}");
    assert!(md.contains("a\\|b"), "{md}");
}

/// Issue 18: Ctrl-C near the end of a run could leave a temporary file. Interrupts real runs
/// at many points, and checks that each leaves either the complete report or nothing.
#[test]
fn interrupted_runs_leave_the_whole_output_or_nothing() {
    let (t, i, c) = (
        testdata("demo/transactions.csv"),
        testdata("demo/interactions.csv"),
        testdata("demo/customers.csv"),
    );
    let mut args = demo_args(&t, &i, &c);
    args.extend(["-f", "markdown", "-o", "report.md"]);
    let (_pin, bin) = pinned_binary();

    // One uninterrupted run: the reference output and the run's length.
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let out = run_pinned(&bin, dir.path(), &args, Stdio::null());
    let length = start.elapsed();
    assert_code(&out, 0);
    let reference = std::fs::read(dir.path().join("report.md")).unwrap();

    // Half the interrupts spread over the first 80% of the run, half over its last 30%, where
    // the output is written (runs under load take longer than the reference run).
    const RUNS: u32 = 40;
    let delays = (0..RUNS).map(|k| {
        let frac = if k % 2 == 0 {
            0.8 * f64::from(k) / f64::from(RUNS)
        } else {
            0.7 + 0.3 * f64::from(k) / f64::from(RUNS)
        };
        length.mul_f64(frac)
    });
    let mut interrupted = 0;
    for (k, delay) in delays.enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(&bin)
            .current_dir(dir.path())
            .args(&args)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let killed = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .stderr(Stdio::null())
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        if killed.success() && !status.success() {
            interrupted += 1;
        }
        let names = entries(dir.path());
        match names.as_slice() {
            [] => {}
            [only] if only == "report.md" => {
                let text = std::fs::read(dir.path().join("report.md")).unwrap();
                assert!(
                    text == reference,
                    "run {k} ({delay:?}): a partial report.md"
                );
            }
            _ => panic!("run {k} ({delay:?}, {status}): left {names:?}"),
        }
    }
    println!("{interrupted} of {RUNS} runs interrupted; an uninterrupted run takes {length:?}");
    // Enough runs are interrupted for the test to mean something (how many depends on the
    // machine's load: the reference run may be slower or faster than the others).
    assert!(
        interrupted >= RUNS / 4,
        "only {interrupted} of {RUNS} runs were interrupted (run length {length:?})"
    );
}
