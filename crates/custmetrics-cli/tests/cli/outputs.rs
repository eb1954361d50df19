//! Where outputs go (issue 18, item 8): devices and FIFOs written in place, outputs of one run
//! that would collide, Markdown escaping, and Ctrl-C leaving no partial file.

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

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

/// Issue 18: `--output /dev/stdout` (run as root) replaced the device link with a regular file.
#[test]
fn output_to_dev_stdout_writes_stdout_and_keeps_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let t = testdata("fixtures/retention_small.csv");
    let out = run(
        dir.path(),
        &[
            "retention",
            "-t",
            &t,
            "-f",
            "json",
            "-o",
            "/dev/stdout",
            "-q",
        ],
    );
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert!(v["retention"].is_object());
    let link = std::fs::symlink_metadata("/dev/stdout").unwrap();
    assert!(link.file_type().is_symlink(), "/dev/stdout was replaced");
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));

    // Redirected to a file (`>> log` in a shell): written after what the file already holds.
    let log = dir.path().join("log.txt");
    std::fs::write(&log, "before\n").unwrap();
    let file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_custmetrics"))
        .current_dir(dir.path())
        .args([
            "retention",
            "-t",
            &t,
            "-f",
            "json",
            "-o",
            "/dev/stdout",
            "-q",
        ])
        .stdout(file)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let report = text.strip_prefix("before\n").expect("kept what was there");
    assert_eq!(report.as_bytes(), out.stdout.as_slice());
    assert_eq!(entries(dir.path()), ["log.txt"]);
}

#[test]
fn output_to_dev_null_keeps_the_device() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let t = testdata("fixtures/retention_small.csv");
    let out = run(
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
    );
    assert_code(&out, 0);
    assert!(stdout(&out).is_empty());
    let m = std::fs::metadata("/dev/null").unwrap();
    assert!(m.file_type().is_char_device());
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn output_to_a_fifo_is_written_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("report.pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.unwrap().success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let t = testdata("fixtures/retention_small.csv");
    let out = run(
        dir.path(),
        &[
            "retention",
            "-t",
            &t,
            "-f",
            "markdown",
            "-o",
            "report.pipe",
            "-q",
        ],
    );
    assert_code(&out, 0);
    let text = reader.join().unwrap();
    assert!(text.starts_with("# Customer metrics report"), "{text}");
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&kind));
    assert_eq!(entries(dir.path()), ["report.pipe"]);
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
    let bin = env!("CARGO_BIN_EXE_custmetrics");

    // One uninterrupted run: the reference output and the run's length.
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let out = run(dir.path(), &args);
    let length = start.elapsed();
    assert_code(&out, 0);
    let reference = std::fs::read(dir.path().join("report.md")).unwrap();

    // Half the interrupts spread over the whole run, half over its last fifth, where the
    // output is written.
    const RUNS: u32 = 40;
    let delays = (0..RUNS).map(|k| {
        let frac = if k % 2 == 0 {
            f64::from(k) / f64::from(RUNS)
        } else {
            0.8 + 0.25 * f64::from(k) / f64::from(RUNS)
        };
        length.mul_f64(frac)
    });
    let mut interrupted = 0;
    for (k, delay) in delays.enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(bin)
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
    // Most runs are interrupted; otherwise the test checked nothing.
    assert!(
        interrupted >= RUNS / 2,
        "only {interrupted} of {RUNS} runs were interrupted (run length {length:?})"
    );
}
