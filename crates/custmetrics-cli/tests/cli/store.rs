use std::path::{Path, PathBuf};
use std::process::Output;

use super::{assert_code, code_and_stderr, run, stderr, testdata};

const DEMO: [&str; 6] = [
    "-t",
    "demo/transactions.csv",
    "-i",
    "demo/interactions.csv",
    "-c",
    "demo/customers.csv",
];

/// The demo inputs as flags with absolute paths.
fn demo_inputs() -> Vec<String> {
    DEMO.iter()
        .map(|a| {
            if a.starts_with('-') {
                a.to_string()
            } else {
                testdata(a)
            }
        })
        .collect()
}

fn run_owned(dir: &Path, args: &[String]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(dir, &args)
}

/// Runs `command` once on the exports (`inputs`) and once on the store, and asserts that
/// stdout, stderr and the exit code are the same.
fn assert_same_from_store(dir: &Path, inputs: &[String], store: &Path, command: &[&str]) {
    let mut raw: Vec<String> = command.iter().map(|s| s.to_string()).collect();
    raw.extend(inputs.iter().cloned());
    let mut stored: Vec<String> = command.iter().map(|s| s.to_string()).collect();
    stored.extend(["--store".to_string(), store.display().to_string()]);
    let (a, b) = (run_owned(dir, &raw), run_owned(dir, &stored));
    assert_eq!(
        a.status.code(),
        b.status.code(),
        "{command:?}: exit codes\n--- exports\n{}\n--- store\n{}",
        stderr(&a),
        stderr(&b)
    );
    assert!(
        a.stdout == b.stdout,
        "{command:?}: the output from the store differs from the output from the exports"
    );
    assert_eq!(stderr(&a), stderr(&b), "{command:?}: stderr");
}

/// The demo summarised into `dir/whole` in one pass and into `dir/parts` in `partitions`.
fn demo_stores(dir: &Path, partitions: u32) -> (PathBuf, PathBuf) {
    let (whole, parts) = (dir.join("whole"), dir.join("parts"));
    assert_code(&summarize(dir, &demo_inputs(), &whole, &["-q"]), 0);
    let n = partitions.to_string();
    let out = summarize(dir, &demo_inputs(), &parts, &["-q", "--partitions", &n]);
    assert_code(&out, 0);
    (whole, parts)
}

fn summarize(dir: &Path, inputs: &[String], store: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["summarize".to_string()];
    args.extend(inputs.iter().cloned());
    args.extend(["--out".to_string(), store.display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    run_owned(dir, &args)
}

#[test]
fn every_command_from_a_store_matches_the_exports() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    assert_code(&summarize(dir.path(), &demo_inputs(), &store, &[]), 0);
    let commands: &[&[&str]] = &[
        &["report", "-f", "json"],
        &["report", "-f", "markdown"],
        &["report", "-f", "csv"],
        &["report", "-f", "html"],
        &["report", "--period", "week", "-f", "json"],
        &[
            "report",
            "--period",
            "quarter",
            "--from",
            "2023-03-15",
            "--as-of",
            "2024-10-01",
        ],
        &[
            "report",
            "--period",
            "day",
            "--from",
            "2024-11-01",
            "-f",
            "json",
        ],
        &["report", "--by", "channel", "--by", "plan", "-f", "json"],
        &["report", "--by", "sales_channel", "-f", "json"],
        // The currency is a segment like the dimensions, read from an export when named.
        &["report", "--by", "currency", "-f", "json"],
        &["rfm", "--by", "currency", "-f", "csv"],
        &["report", "--active-on", "any", "-f", "json"],
        &["report", "--by", "no_such_column"],
        &["retention", "--period", "quarter", "-f", "csv"],
        &["churn", "--inactive-after", "60", "-f", "json"],
        &[
            "nps", "--by", "channel", "--period", "quarter", "-f", "json",
        ],
        &["csat", "--csat-satisfied", "5", "-f", "json"],
        // The scores alone read only the purchases' last day from a store (their default end).
        &["nps", "--from", "2024-06-01", "-f", "json"],
        &["csat", "--as-of", "2024-06-30", "-f", "json"],
        &["nps", "--from", "2031-01-01", "-f", "json"],
        // A customer attribute: the scores' store read decodes no customer row but this.
        &["nps", "--by", "plan", "-f", "json"],
        &["rfm", "-f", "csv"],
        &[
            "rfm",
            "--time-unit",
            "weeks",
            "--by",
            "region",
            "-f",
            "json",
        ],
        &["clv", "--holdout-from", "2024-07-01", "-f", "json"],
        &["clv", "fit", "--model", "pareto-nbd", "-f", "json"],
        &[
            "clv",
            "fit",
            "--purchase-covariates",
            "plan",
            "--spend-covariates",
            "plan",
            "-f",
            "json",
        ],
        &["clv", "predict", "--horizon", "26", "-f", "csv"],
        &[
            "clv",
            "compare",
            "--holdout-from",
            "2024-07-01",
            "--intervals",
            "--interval-draws",
            "20",
            "-f",
            "json",
        ],
    ];
    for command in commands {
        assert_same_from_store(dir.path(), &demo_inputs(), &store, command);
    }
}

#[test]
fn retention_counted_straight_from_a_store_matches_the_exports() {
    // `retention` counts the store's purchase days directly (no summaries), with cohorts
    // dated by the customers snapshot's signup dates when there is one: stores written whole,
    // in partitions, and updated (whose parts interleave customer codes) must all give the
    // exports' output, for any period and window.
    let commands: &[&[&str]] = &[
        &["retention", "-f", "json"],
        &["retention", "--period", "week", "-f", "csv"],
        &[
            "retention",
            "--period",
            "quarter",
            "--from",
            "2023-03-15",
            "--as-of",
            "2024-10-01",
            "-f",
            "json",
        ],
        &["retention", "--period", "day", "--from", "2024-11-01"],
        &["retention", "--as-of", "2020-01-01"],
        &["retention", "--from", "2030-01-01"],
    ];
    for with_customers in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let all = demo_inputs();
        let (inputs, customers) = all.split_at(4);
        let customers = if with_customers { customers } else { &[] };
        let inputs: Vec<String> = inputs.iter().chain(customers).cloned().collect();
        let whole = dir.path().join("whole");
        assert_code(&summarize(dir.path(), &inputs, &whole, &["-q"]), 0);
        let parts = dir.path().join("parts");
        assert_code(
            &summarize(dir.path(), &inputs, &parts, &["-q", "--partitions", "3"]),
            0,
        );
        let (mut a, b) = split_demo(dir.path(), "2024-06-30", "2024-06-20");
        a.extend(customers.iter().cloned());
        let updated = dir.path().join("updated");
        assert_code(&summarize(dir.path(), &a, &updated, &["-q"]), 0);
        let mut update = vec![
            "summarize".to_string(),
            "--update".into(),
            updated.display().to_string(),
            "-q".into(),
        ];
        update.extend(b.iter().cloned());
        assert_code(&run_owned(dir.path(), &update), 0);
        let mut both = a.clone();
        both.extend(b.iter().cloned());
        for (exports, store) in [(&inputs, &whole), (&inputs, &parts), (&both, &updated)] {
            for command in commands {
                assert_same_from_store(dir.path(), exports, store, command);
            }
        }
    }
}

#[test]
fn rejected_rows_and_accounting_come_back_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let inputs = vec!["-t".to_string(), testdata("bad/bad_values.csv")];
    assert_code(&summarize(dir.path(), &inputs, &store, &["-q"]), 0);
    // The accounting on stderr, the data-quality section and the rejects file.
    assert_same_from_store(dir.path(), &inputs, &store, &["report", "-f", "json"]);
    let rejects = |from_store: bool| {
        let path = dir.path().join(format!("rejects-{from_store}.csv"));
        let mut args = vec!["report".to_string(), "-q".into(), "--rejects".into()];
        args.push(path.display().to_string());
        if from_store {
            args.extend(["--store".to_string(), store.display().to_string()]);
        } else {
            args.extend(inputs.iter().cloned());
        }
        assert_code(&run_owned(dir.path(), &args), 0);
        std::fs::read_to_string(path).unwrap()
    };
    let (raw, stored) = (rejects(false), rejects(true));
    assert_eq!(raw.lines().count(), 8, "{raw}");
    assert_eq!(raw, stored);
    // --strict refuses the exports before anything is written.
    let strict = dir.path().join("strict");
    let out = summarize(dir.path(), &inputs, &strict, &["--strict"]);
    assert_code(&out, 1);
    assert!(!strict.exists(), "a refused summarize must write nothing");
}

#[test]
fn a_store_read_in_partitions_gives_the_same_output() {
    // The purchases read one range of customers at a time (`--store S --partitions N`) give
    // the store's output read whole, from a store of one part and from one of several.
    let dir = tempfile::tempdir().unwrap();
    let (whole, parts) = demo_stores(dir.path(), 2);
    for store in [&whole, &parts] {
        let store = store.to_str().unwrap();
        for command in [
            &["report", "-f", "json"][..],
            &["report", "--by", "plan", "-f", "json"],
            &[
                "report",
                "-f",
                "markdown",
                "--period",
                "week",
                "--as-of",
                "2024-09-30",
            ],
            &["rfm", "-f", "csv"],
            &["retention", "--by", "region", "-f", "json"],
            &["churn", "--from", "2023-02-01", "-f", "json"],
            &["nps", "--by", "channel", "-f", "json"],
            &["clv", "fit", "--model", "bgnbd", "-f", "json"],
        ] {
            let mut whole_args = command.to_vec();
            whole_args.extend(["--store", store]);
            let mut split_args = whole_args.clone();
            split_args.extend(["--partitions", "3"]);
            let (a, b) = (run(dir.path(), &whole_args), run(dir.path(), &split_args));
            assert_code(&a, 0);
            assert_code(&b, 0);
            assert!(
                a.stdout == b.stdout,
                "{command:?} on {store}: the output read in partitions differs"
            );
            assert_eq!(stderr(&a), stderr(&b), "{command:?}: stderr");
        }
    }
    // What needs the purchases whole is refused, naming the flag to drop.
    let args = [
        "clv",
        "--holdout-from",
        "2024-04-01",
        "--store",
        whole.to_str().unwrap(),
        "--partitions",
        "2",
    ];
    let out = run(dir.path(), &args);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("drop --partitions"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_report_in_partitions_keeps_its_activity_rows_in_the_temporary_directory() {
    // The activity rows of a report read in partitions go to files in TMPDIR: none is left
    // behind, and a temporary directory that cannot be written to is an error naming it (the
    // store read whole writes none there, so it still runs).
    let dir = tempfile::tempdir().unwrap();
    let (whole, _) = demo_stores(dir.path(), 1);
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let report = |tmpdir: &Path, partitions: &str| {
        let mut cmd = assert_cmd::Command::cargo_bin("custmetrics").unwrap();
        cmd.current_dir(dir.path())
            .args(["report", "-f", "json", "--store", whole.to_str().unwrap()])
            .args(["--partitions", partitions])
            .env("TMPDIR", tmpdir)
            .env("NO_COLOR", "1");
        cmd.output().unwrap()
    };
    let out = report(&tmp, "3");
    assert_code(&out, 0);
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "files left in TMPDIR"
    );
    let missing = dir.path().join("no-such-dir");
    let out = report(&missing, "3");
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("no-such-dir") && stderr(&out).contains("TMPDIR"),
        "{}",
        stderr(&out)
    );
    assert_code(&report(&missing, "1"), 0);
}

#[test]
fn summarize_in_partitions_writes_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, parts) = demo_stores(dir.path(), 3);
    let report = |store: &Path| {
        let args = ["report", "-f", "json", "--store", store.to_str().unwrap()];
        run(dir.path(), &args).stdout
    };
    assert!(report(&whole) == report(&parts));
    // Each partition's rows went to disk when it was done (memory holds one partition): a part
    // per partition of the purchases, keys, interactions and survey counts.
    let names: Vec<String> = std::fs::read_dir(parts.join("g1"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for table in [
        "purchases",
        "line_keys",
        "order_keys",
        "interactions",
        "survey",
    ] {
        let count = names
            .iter()
            .filter(|n| n.starts_with(&format!("{table}-")))
            .count();
        assert_eq!(count, 3, "{table}: {names:?}");
    }
    for command in [
        &["rfm", "-f", "csv"][..],
        &["retention", "--by", "region", "-f", "json"],
        &["nps", "--by", "channel", "-f", "json"],
        &["clv", "fit", "--model", "pareto-nbd", "-f", "json"],
    ] {
        assert_same_from_store(dir.path(), &demo_inputs(), &parts, command);
    }
}

#[test]
fn an_update_in_partitions_equals_reading_both_exports() {
    // The second month read in partitions, onto a store written in partitions: its keys are
    // found in every part, and the overlap's lines are not counted twice.
    let dir = tempfile::tempdir().unwrap();
    let (mut a, mut b) = split_demo(dir.path(), "2024-06-30", "2024-06-20");
    let customers = ["-c".to_string(), testdata("demo/customers.csv")];
    a.extend(customers.iter().cloned());
    let store = dir.path().join("store");
    assert_code(
        &summarize(dir.path(), &a, &store, &["-q", "--partitions", "2"]),
        0,
    );
    // The update brings the customers snapshot again: it replaces the store's.
    b.extend(customers.iter().cloned());
    let mut update = vec![
        "summarize".into(),
        "--update".into(),
        store.display().to_string(),
        "--partitions".into(),
        "3".into(),
    ];
    update.extend(b.iter().cloned());
    let out = run_owned(dir.path(), &update);
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains("duplicate_row: 157"),
        "{}",
        stderr(&out)
    );
    let mut both = a.clone();
    both.extend(b.iter().take(b.len() - 2).cloned());
    // The snapshot is the update's, one part per partition; the first write's is gone.
    let mut snapshot: Vec<String> = std::fs::read_dir(store.join("g2"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("customers-"))
        .collect();
    snapshot.sort();
    assert_eq!(
        snapshot,
        [
            "customers-00001000000.parquet",
            "customers-00001000001.parquet",
            "customers-00001000002.parquet"
        ]
    );
    for command in [
        &["report", "-f", "json"][..],
        &["rfm", "-f", "csv"],
        &["report", "--period", "week", "--by", "plan", "-f", "json"],
    ] {
        assert_same_from_store(dir.path(), &both, &store, command);
    }
}

/// The demo's transactions split at `split` (orders on or after `from_b` go to the second
/// file, so that the files overlap from `from_b` to `split`), and interactions split at
/// `split` without overlap.
fn split_demo(dir: &Path, split: &str, from_b: &str) -> (Vec<String>, Vec<String>) {
    let mut files = (Vec::new(), Vec::new());
    for (table, flag, date_column) in [("transactions", "-t", 2), ("interactions", "-i", 2)] {
        let text = std::fs::read_to_string(testdata(&format!("demo/{table}.csv"))).unwrap();
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        let (mut a, mut b) = (vec![header], vec![header]);
        for line in lines {
            let date = line.split(',').nth(date_column).unwrap();
            if date <= split {
                a.push(line);
            }
            let overlap = if table == "transactions" {
                from_b
            } else {
                split
            };
            if date > split || (table == "transactions" && date >= overlap) {
                b.push(line);
            }
        }
        for (half, rows) in [("a", &a), ("b", &b)] {
            let path = dir.join(format!("{table}-{half}.csv"));
            std::fs::write(&path, rows.join("\n") + "\n").unwrap();
            let list = if half == "a" {
                &mut files.0
            } else {
                &mut files.1
            };
            list.extend([flag.to_string(), path.display().to_string()]);
        }
    }
    files
}

#[test]
fn an_update_with_an_overlapping_month_equals_reading_both_exports() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = split_demo(dir.path(), "2024-06-30", "2024-06-20");
    let customers = ["-c".to_string(), testdata("demo/customers.csv")];
    let store = dir.path().join("store");
    let mut first = a.clone();
    first.extend(customers.iter().cloned());
    assert_code(&summarize(dir.path(), &first, &store, &["-q"]), 0);
    let mut update = vec![
        "summarize".into(),
        "--update".into(),
        store.display().to_string(),
    ];
    update.extend(b.iter().cloned());
    let out = run_owned(dir.path(), &update);
    assert_code(&out, 0);
    // The lines of the ten overlapping days were recognised, named, and not counted twice.
    assert!(
        stderr(&out).contains("duplicate_row: 157"),
        "{}",
        stderr(&out)
    );
    let mut both = first.clone();
    both.extend(b.iter().cloned());
    for command in [
        &["report", "-f", "json"][..],
        &[
            "report", "--period", "week", "--by", "channel", "-f", "json",
        ],
        &["rfm", "-f", "csv"],
        &["clv", "--holdout-from", "2024-07-01", "-f", "json"],
    ] {
        assert_same_from_store(dir.path(), &both, &store, command);
    }
    // And the raw read of both files is the demo itself (the overlap deduplicated there too).
    let report = |args: &[String]| {
        let mut v = vec!["report".to_string(), "-f".into(), "json".into()];
        v.extend(args.iter().cloned());
        let out = run_owned(dir.path(), &v);
        let mut j = super::json(&out);
        // The split read rejects the overlap's lines as repeated; the demo has none.
        j["accounting"] = serde_json::Value::Null;
        j["headlines"] = serde_json::Value::Null;
        j
    };
    assert!(report(&both) == report(&demo_inputs()));

    // The same month applied again changes nothing; its interactions need a decision.
    let manifest = std::fs::read_to_string(store.join("manifest.json")).unwrap();
    let again = run_owned(dir.path(), &update);
    insta::assert_snapshot!(
        "store_overlapping_interactions_refused",
        code_and_stderr(&again, dir.path())
    );
    let mut skip = update.clone();
    skip.extend(["--overlap".to_string(), "skip".into(), "-q".into()]);
    assert_code(&run_owned(dir.path(), &skip), 0);
    assert_eq!(
        std::fs::read_to_string(store.join("manifest.json")).unwrap(),
        manifest,
        "a repeated update must leave the store unchanged"
    );
    assert_same_from_store(dir.path(), &both, &store, &["report", "-f", "json"]);
}

#[test]
fn an_interrupted_update_leaves_a_readable_store() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = split_demo(dir.path(), "2024-06-30", "2024-07-01");
    let store = dir.path().join("store");
    assert_code(&summarize(dir.path(), &a, &store, &["-q"]), 0);
    let report = || {
        let args = ["report", "-f", "json", "--store", store.to_str().unwrap()];
        let out = run(dir.path(), &args);
        assert_code(&out, 0);
        out.stdout
    };
    let before = report();
    let mut update = vec!["summarize".to_string(), "--update".into()];
    update.push(store.display().to_string());
    update.extend(b.iter().cloned());
    update.push("-q".into());
    // How long an update takes here, to spread the kills over it.
    let started = std::time::Instant::now();
    let copy = dir.path().join("copy");
    copy_dir(&store, &copy);
    let mut timed = update.clone();
    timed[2] = copy.display().to_string();
    assert_code(&run_owned(dir.path(), &timed), 0);
    let took = started.elapsed();
    let after = {
        let args = ["report", "-f", "json", "--store", copy.to_str().unwrap()];
        run(dir.path(), &args).stdout
    };
    assert!(before != after);
    let mut outcomes = (0, 0);
    for step in 0..12u32 {
        let delay = took * step / 10;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_custmetrics"))
            .args(&update)
            .current_dir(dir.path())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        child.kill().ok();
        child.wait().unwrap();
        let now = report();
        if now == before {
            outcomes.0 += 1;
        } else {
            assert!(
                now == after,
                "after a kill at {delay:?} the store is neither before nor after"
            );
            outcomes.1 += 1;
            // Back to the old store for the next kill.
            std::fs::remove_dir_all(&store).unwrap();
            assert_code(&summarize(dir.path(), &a, &store, &["-q"]), 0);
        }
    }
    assert!(outcomes.0 > 0, "no kill landed before the update finished");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_store_of_another_version_or_no_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let inputs = vec!["-t".to_string(), testdata("fixtures/retention_small.csv")];
    assert_code(&summarize(dir.path(), &inputs, &store, &["-q"]), 0);
    let manifest = store.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("\"schema_version\": 1", "\"schema_version\": 2"),
    )
    .unwrap();
    let out = run(dir.path(), &["report", "--store", store.to_str().unwrap()]);
    insta::assert_snapshot!(
        "store_newer_version_refused",
        code_and_stderr(&out, dir.path())
    );
    let out = run(
        dir.path(),
        &["retention", "--store", dir.path().to_str().unwrap()],
    );
    insta::assert_snapshot!("store_not_a_store", code_and_stderr(&out, dir.path()));
    // A new store is never written over an existing one.
    let out = summarize(dir.path(), &inputs, &store, &[]);
    insta::assert_snapshot!("store_out_exists", code_and_stderr(&out, dir.path()));
}

#[test]
fn an_interaction_id_is_not_kept_as_a_dimension() {
    // The demo's interaction_id has a value per row: kept as a dimension it made the store one
    // row per interaction and the survey counts one row per answer (at 100M transactions, 45M
    // dictionary entries and an out-of-memory summarize).
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let out = summarize(dir.path(), &demo_inputs(), &store, &[]);
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains(
            "interactions: column interaction_id not stored as a dimension: 3306 distinct values in 3306 rows"
        ),
        "{}",
        stderr(&out)
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(store.join("manifest.json")).unwrap())
            .unwrap();
    let interactions = manifest["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "interactions")
        .unwrap();
    assert_eq!(interactions["identifiers"][0]["name"], "interaction_id");
    // Low-cardinality columns stay segments: NPS by agent is the same from the store.
    let inputs = demo_inputs();
    assert_same_from_store(
        dir.path(),
        &inputs,
        &store,
        &["nps", "--by", "agent", "-f", "json"],
    );
    let refused = run(
        dir.path(),
        &[
            "nps",
            "--store",
            &store.display().to_string(),
            "--by",
            "interaction_id",
        ],
    );
    assert_code(&refused, 1);
    assert!(
        stderr(&refused).contains("did not keep interaction_id of the interactions as a dimension"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn revenue_by_currency_is_split_alike_from_an_export_and_its_store() {
    // A shop selling in two currencies: summing them is meaningless, splitting by the currency
    // is what an analyst asks. The export and its store must answer it the same way.
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("orders.csv");
    std::fs::write(
        &export,
        "order_id,customer_id,order_date,amount,currency\n\
         A1,C1,2024-01-05,10.00,EUR\n\
         A2,C1,2024-02-07,12.00,EUR\n\
         A3,C2,2024-01-06,7.00,USD\n\
         A4,C3,2024-02-06,30.00,USD\n",
    )
    .unwrap();
    let inputs = vec!["-t".to_string(), export.display().to_string()];
    let store = dir.path().join("store");
    assert_code(&summarize(dir.path(), &inputs, &store, &["-q"]), 0);
    for command in [
        &["rfm", "--by", "currency", "-f", "csv"][..],
        &["report", "--by", "currency", "-f", "json"],
        &["retention", "--by", "currency", "-f", "csv"],
    ] {
        assert_same_from_store(dir.path(), &inputs, &store, command);
    }
    let mut args = vec!["report", "--by", "currency", "-f", "json"];
    args.extend(inputs.iter().map(String::as_str));
    let out = run(dir.path(), &args);
    assert_code(&out, 0);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = report.to_string();
    assert!(
        text.contains("\"EUR\"") && text.contains("\"USD\""),
        "{text}"
    );
}
