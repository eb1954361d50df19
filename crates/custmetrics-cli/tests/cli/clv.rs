use crate::{assert_code, json, run, stderr, stdout, testdata, write_cdnow_csv};

fn close(got: &serde_json::Value, want: f64, rtol: f64) -> bool {
    got.as_f64()
        .is_some_and(|g| ((g - want) / want).abs() < rtol)
}

#[test]
fn every_model_reproduces_its_published_estimates_through_the_binary() {
    // Sources: FHL 2005 / CLVTools (BG/NBD, Pareto/NBD), BTYDplus via lifetimes (MBG/NBD),
    // Fader & Hardie 2013 note 025 (Gamma-Gamma), FHS 2010 (BG/BB), Fader & Hardie 2007 (sBG).
    let dir = tempfile::tempdir().unwrap();
    let summary = testdata("cdnow/cdnow_customers_summary_with_transactions.csv");
    type Case<'a> = (&'a str, [(&'a str, f64); 4], f64);
    let cases: [Case; 3] = [
        (
            "bgnbd",
            [
                ("r", 0.2425945),
                ("alpha", 4.4136019),
                ("a", 0.7929199),
                ("b", 2.4258881),
            ],
            1e-3,
        ),
        (
            "pareto-nbd",
            [
                ("r", 0.55315),
                ("alpha", 10.57633),
                ("s", 0.60625),
                ("beta", 11.67150),
            ],
            1e-3,
        ),
        (
            "mbgnbd",
            [("r", 0.525), ("alpha", 6.183), ("a", 0.891), ("b", 1.614)],
            3e-3,
        ),
    ];
    for (model, params, rtol) in cases {
        let v = json(&run(
            dir.path(),
            &[
                "clv",
                "fit",
                "--model",
                model,
                "--summary",
                &summary,
                "--time-unit",
                "weeks",
                "-f",
                "json",
            ],
        ));
        let m = &v["model_fit"];
        assert_eq!(m["model"], model.replace('-', "_"));
        assert_eq!(m["n_customers"], 2357);
        assert_eq!(m["converged"], true);
        for (name, want) in params {
            assert!(close(&m["params"][name], want, rtol), "{model} {name}: {m}");
        }
        // The spend model rides along (the summary has mean repeat spend, zbar).
        let s = &m["spend"];
        assert_eq!(s["n_customers"], 946);
        for (name, want) in [("p", 6.25), ("q", 3.74), ("v", 15.44)] {
            assert!(close(&s["params"][name], want, 2e-3), "{name}: {s}");
        }
    }
    let v = json(&run(
        dir.path(),
        &[
            "clv",
            "fit",
            "--model",
            "bgbb",
            "--summary",
            &testdata("donations/donations.csv"),
            "-f",
            "json",
        ],
    ));
    let m = &v["model_fit"];
    assert_eq!(m["n_customers"], 11104);
    for (name, want) in [
        ("alpha", 1.2035),
        ("beta", 0.7497),
        ("gamma", 0.6567),
        ("delta", 2.7834),
    ] {
        assert!(close(&m["params"][name], want, 1e-3), "{name}: {m}");
    }
    let v = json(&run(
        dir.path(),
        &[
            "clv",
            "fit",
            "--model",
            "sbg",
            "--survivors",
            "1000,869,743,653,593,551,517,491",
            "-f",
            "json",
        ],
    ));
    let m = &v["model_fit"];
    assert!(close(&m["params"]["alpha"], 0.668, 1e-3) && close(&m["params"]["beta"], 3.806, 1e-3));
    // Observed 7 renewals plus the default 5 projected.
    assert_eq!(m["predictions"]["rows"].as_array().unwrap().len(), 13);
}

#[test]
fn pareto_nbd_from_raw_cdnow_transactions_with_a_calibration_end() {
    // The same preparation as the BG/NBD test in report.rs (raw transactions, 39-week
    // calibration ending 1997-09-30): Pareto/NBD gets the published estimates too.
    let dir = tempfile::tempdir().unwrap();
    write_cdnow_csv(dir.path());
    let v = json(&run(
        dir.path(),
        &[
            "clv",
            "fit",
            "--model",
            "pareto-nbd",
            "-t",
            "cdnow.csv",
            "--calibration-end",
            "1997-09-30",
            "--as-of",
            "1998-06-30",
            "-f",
            "json",
            "-q",
        ],
    ));
    let m = &v["model_fit"];
    for (name, want) in [
        ("r", 0.55315),
        ("alpha", 10.57633),
        ("s", 0.60625),
        ("beta", 11.67150),
    ] {
        assert!(close(&m["params"][name], want, 1e-3), "{name}: {m}");
    }
    assert!((m["log_likelihood"].as_f64().unwrap() + 9594.976).abs() < 0.01);
    assert_eq!(m["holdout"]["actual_total"].as_f64(), Some(1882.0));
    assert!(
        v.get("clv").is_none(),
        "clv fit shows the fit, not the ranking"
    );
}

#[test]
fn a_saved_model_scores_next_month_without_refitting() {
    let dir = tempfile::tempdir().unwrap();
    let t = testdata("demo/transactions.csv");
    let fit = run(
        dir.path(),
        &[
            "clv",
            "fit",
            "--model",
            "mbgnbd",
            "-t",
            &t,
            "--save-model",
            "model.json",
            "-f",
            "json",
            "-q",
        ],
    );
    let fitted = json(&fit);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("model.json")).unwrap())
            .unwrap();
    assert_eq!(saved["purchase"]["model"], "mbgnbd");
    assert_eq!(
        saved["purchase"]["params"], fitted["model_fit"]["params"],
        "the saved parameters are the reported ones"
    );
    let scored = json(&run(
        dir.path(),
        &[
            "clv",
            "predict",
            "-t",
            &t,
            "--model-file",
            "model.json",
            "-f",
            "json",
            "-q",
        ],
    ));
    let c = &scored["clv"];
    assert_eq!(c["purchase_model"]["params"], saved["purchase"]["params"]);
    assert_eq!(c["ranked"].as_array().unwrap().len(), 2000);
    // A saved model is scored in its own unit; asking for another is refused.
    let out = run(
        dir.path(),
        &[
            "clv",
            "predict",
            "-t",
            &t,
            "--model-file",
            "model.json",
            "--time-unit",
            "days",
        ],
    );
    assert_code(&out, 1);
    assert!(stderr(&out).contains("own unit"), "{}", stderr(&out));
    // The model file never replaces an input.
    std::fs::copy(&t, dir.path().join("orders.csv")).unwrap();
    let before = std::fs::read(dir.path().join("orders.csv")).unwrap();
    let out = run(
        dir.path(),
        &[
            "clv",
            "fit",
            "-t",
            "orders.csv",
            "--save-model",
            "orders.csv",
            "-q",
        ],
    );
    assert_code(&out, 1);
    assert_eq!(
        std::fs::read(dir.path().join("orders.csv")).unwrap(),
        before
    );
}

#[test]
fn model_inputs_are_checked_before_fitting() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["clv", "fit", "--model", "sbg"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("--survivors"), "{}", stderr(&out));
    let out = run(
        dir.path(),
        &["clv", "fit", "--model", "sbg", "--survivors", "10,12,5"],
    );
    assert_code(&out, 1);
    assert!(stderr(&out).contains("never rising"), "{}", stderr(&out));
    std::fs::write(
        dir.path().join("s.csv"),
        "customer_id,frequency,recency,T\na,1,2,3\nb,1,-4,3\n",
    )
    .unwrap();
    let out = run(dir.path(), &["clv", "fit", "--summary", "s.csv"]);
    assert_code(&out, 1);
    let e = stderr(&out);
    assert!(
        e.contains("s.csv") && e.contains("line 3") && e.contains("recency") && e.contains("-4"),
        "{e}"
    );
    let out = run(dir.path(), &["report", "-t", "x.csv", "--model", "bgbb"]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("clv fit --model bgbb"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn timings_name_every_phase_on_stderr() {
    // Without --timings stderr has no timing line; with it, one line names each phase.
    let dir = tempfile::tempdir().unwrap();
    let summary = testdata("cdnow/cdnow_customers_summary_with_transactions.csv");
    let args = [
        "clv",
        "fit",
        "--summary",
        &summary,
        "--time-unit",
        "weeks",
        "-f",
        "json",
        "-q",
    ];
    let out = run(dir.path(), &args);
    assert_code(&out, 0);
    assert!(!stderr(&out).contains("timings:"), "{}", stderr(&out));
    let mut with = args.to_vec();
    with.push("--timings");
    let out = run(dir.path(), &with);
    assert_code(&out, 0);
    let line = stderr(&out)
        .lines()
        .find(|l| l.starts_with("timings: "))
        .map(str::to_string)
        .unwrap_or_default();
    for phase in [
        "reading summary ",
        "fitting the purchase model ",
        "fitting Gamma-Gamma ",
        "writing output ",
    ] {
        assert!(line.contains(phase), "{phase:?} missing from {line:?}");
    }
}

#[test]
fn intervals_come_from_a_saved_model_too_and_repeat_under_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let t = testdata("demo/transactions.csv");
    let fit = run(
        dir.path(),
        &["clv", "fit", "-t", &t, "--save-model", "model.json", "-q"],
    );
    assert_code(&fit, 0);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("model.json")).unwrap())
            .unwrap();
    let cov = &saved["purchase"]["log_param_covariance"];
    assert_eq!(cov.as_array().map(Vec::len), Some(4), "{saved}");
    let predict = |seed: &str| {
        run(
            dir.path(),
            &[
                "clv",
                "predict",
                "-t",
                &t,
                "--model-file",
                "model.json",
                "--horizon",
                "13",
                "--interval-draws",
                "40",
                "--interval-seed",
                seed,
                "-f",
                "json",
                "-q",
            ],
        )
    };
    let (a, b, other) = (predict("5"), predict("5"), predict("6"));
    assert_eq!(a.stdout, b.stdout, "the same seed gives the same output");
    assert_ne!(a.stdout, other.stdout);
    let v = json(&a);
    let clv = &v["clv"];
    let i = &clv["intervals"];
    assert_eq!(i["draws"], 40);
    let (low, high) = (
        i["total_clv"]["low"].as_f64().unwrap(),
        i["total_clv"]["high"].as_f64().unwrap(),
    );
    let total = clv["total_clv"].as_f64().unwrap();
    assert!(low < total && total < high, "{low} {total} {high}");
    assert_eq!(i["cumulative_purchases"].as_array().unwrap().len(), 13);
    let first = &clv["ranked"][0];
    let alive = first["probability_alive"].as_f64().unwrap();
    let a_low = first["intervals"]["probability_alive"]["low"]
        .as_f64()
        .unwrap();
    let a_high = first["intervals"]["probability_alive"]["high"]
        .as_f64()
        .unwrap();
    assert!(
        a_low <= alive && alive <= a_high,
        "{a_low} {alive} {a_high}"
    );
    // CSV lists the interval columns; a bad level is refused before any work.
    let csv = run(
        dir.path(),
        &[
            "clv",
            "-t",
            &t,
            "--intervals",
            "--interval-draws",
            "20",
            "-f",
            "csv",
            "-q",
        ],
    );
    assert_code(&csv, 0);
    let text = String::from_utf8_lossy(&csv.stdout);
    assert!(text.contains("CLV low,CLV high"), "{text}");
    let bad = run(dir.path(), &["clv", "-t", &t, "--interval-level", "95"]);
    assert_code(&bad, 1);
    assert!(stderr(&bad).contains("interval level"), "{}", stderr(&bad));
}

#[test]
fn the_fit_warns_in_its_output_when_bgnbd_would_keep_one_time_buyers_alive() {
    let dir = tempfile::tempdir().unwrap();
    let t = testdata("demo/transactions.csv");
    let warnings = |model: &str| {
        let v = json(&run(
            dir.path(),
            &["clv", "fit", "-t", &t, "--model", model, "-f", "json", "-q"],
        ));
        v["model_fit"]["warnings"].clone()
    };
    let bgnbd = warnings("bgnbd").to_string();
    assert!(
        bgnbd.contains("701 customers (35.0%) never bought again")
            && bgnbd.contains("--model mbgnbd"),
        "{bgnbd}"
    );
    assert!(
        !warnings("mbgnbd")
            .to_string()
            .contains("never bought again")
    );
}

#[test]
fn holdout_diagnostics_on_cdnow_match_an_independent_computation() {
    // CDNOW sample, raw transactions, 39-week calibration to 1997-09-30, holdout to 1998-06-30,
    // BG/NBD (FHL 2005). The tracking figures were computed independently in Python from
    // CDNOW_sample.txt (distinct purchase days per customer, the first one excluded, customers
    // acquired before the holdout) and with scipy.special.hyp2f1 for E[X(t)] =
    // (a+b−1)/(a−1) · (1 − (α/(α+t))^r ₂F₁(r, b; a+b−1; t/(α+t))) summed over customers at each
    // week's last day: 3.2087878770 expected in week 1; 2,457 actual (FHL's calibration total)
    // and 2,493.9568902 expected by week 39; 4,339 and 4,160.6092130 by week 78.
    let dir = tempfile::tempdir().unwrap();
    write_cdnow_csv(dir.path());
    let v = json(&run(
        dir.path(),
        &[
            "clv",
            "fit",
            "-t",
            "cdnow.csv",
            "--calibration-end",
            "1997-09-30",
            "--as-of",
            "1998-06-30",
            "-f",
            "json",
            "-q",
        ],
    ));
    let h = &v["model_fit"]["holdout"];
    let t = h["tracking"].as_array().unwrap();
    assert_eq!(t.len(), 78);
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    assert!((f(&t[0]["expected"]) - 3.2087878770).abs() < 1e-6);
    assert_eq!(t[38]["cumulative_actual"], 2457);
    assert!((f(&t[38]["cumulative_expected"]) - 2493.9568902).abs() < 1e-4);
    assert_eq!(
        (t[38]["holdout"].as_bool(), t[39]["holdout"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(t[39]["from"], "1997-10-01");
    assert_eq!(t[77]["cumulative_actual"], 4339);
    assert!((f(&t[77]["cumulative_expected"]) - 4160.6092130).abs() < 1e-4);
    // Holdout totals: 1,882 actual repeat purchase days; the error figures follow from the
    // per-customer predictions (RMSE ≥ MAE, bias = total difference / customers).
    assert_eq!(f(&h["actual_total"]), 1882.0);
    let (mae, rmse) = (
        f(&h["mean_absolute_error"]),
        f(&h["root_mean_squared_error"]),
    );
    assert!(rmse >= mae && mae > 0.0);
    let bias = (f(&h["predicted_total"]) - 1882.0) / 2357.0;
    assert!((f(&h["bias"]) - bias).abs() < 1e-12);
    assert!((f(&h["total_error"]) - (f(&h["predicted_total"]) - 1882.0) / 1882.0).abs() < 1e-12);
    // FHL fig. 1: customers by calibration repeat purchases, actual (1,411 with none ... 64 with
    // 7 or more) and expected Σ_c P(X(T_c) = x) (eq. 8; the same scipy computation: 1,407.684347
    // with none, 71.850688 with 7+).
    let bins = h["calibration_histogram"].as_array().unwrap();
    let actual: Vec<u64> = bins.iter().map(|b| b["actual"].as_u64().unwrap()).collect();
    assert_eq!(actual, [1411, 439, 214, 100, 62, 38, 29, 64]);
    assert!((f(&bins[0]["expected"]) - 1407.684347).abs() < 1e-5);
    assert!((f(&bins[7]["expected"]) - 71.850688).abs() < 1e-5);
    let deciles = h["deciles"].as_array().unwrap();
    assert_eq!(deciles.len(), 10);
    let n: u64 = deciles
        .iter()
        .map(|d| d["customers"].as_u64().unwrap())
        .sum();
    assert_eq!(n, 2357);
    // The top decile of predictions buys the most in the holdout.
    assert!(f(&deciles[9]["actual_mean"]) > 3.0 * f(&deciles[4]["actual_mean"]));
    // The HTML report draws the tracking and conditional-expectation charts.
    let html = run(
        dir.path(),
        &[
            "clv",
            "fit",
            "-t",
            "cdnow.csv",
            "--calibration-end",
            "1997-09-30",
            "--as-of",
            "1998-06-30",
            "-f",
            "html",
            "-q",
        ],
    );
    assert_code(&html, 0);
    let page = String::from_utf8_lossy(&html.stdout);
    for title in [
        "Tracking, cumulative",
        "Tracking, per unit",
        "Conditional expectations",
        "Calibration frequencies",
    ] {
        assert!(page.contains(title), "{title}");
    }
}

#[test]
fn clv_compare_fits_every_model_on_cdnow_and_names_the_choice() {
    // CDNOW, 39 + 39 weeks: the published log-likelihoods (BG/NBD −9582.4, Pareto/NBD −9595.0,
    // MBG/NBD −9582.1) side by side; on the holdout Pareto/NBD has the lowest RMSE.
    let dir = tempfile::tempdir().unwrap();
    write_cdnow_csv(dir.path());
    let args = [
        "clv",
        "compare",
        "-t",
        "cdnow.csv",
        "--calibration-end",
        "1997-09-30",
        "--as-of",
        "1998-06-30",
        "-q",
    ];
    let v = json(&run(dir.path(), &[&args[..], &["-f", "json"]].concat()));
    let c = &v["clv"]["comparison"];
    let models = c["models"].as_array().unwrap();
    let ll: Vec<f64> = models
        .iter()
        .map(|m| m["log_likelihood"].as_f64().unwrap())
        .collect();
    assert!(
        (ll[0] + 9582.43).abs() < 0.01 && (ll[1] + 9594.98).abs() < 0.01,
        "{ll:?}"
    );
    assert!((ll[2] + 9582.14).abs() < 0.01, "{ll:?}");
    assert_eq!(c["chosen"], "pareto_nbd");
    assert!(
        c["reason"]
            .as_str()
            .unwrap()
            .starts_with("lowest root mean squared error")
    );
    assert_eq!(
        v["clv"]["purchase_model"]["model"], "pareto_nbd",
        "the choice scores CLV"
    );
    for m in models {
        assert_eq!(m["holdout"]["actual_total"].as_f64(), Some(1882.0));
    }
    let text = run(dir.path(), &args);
    assert_code(&text, 0);
    assert!(String::from_utf8_lossy(&text.stdout).contains("Chosen: Pareto/NBD"));
    let refused = run(
        dir.path(),
        &["clv", "compare", "-t", "cdnow.csv", "--model", "bgnbd"],
    );
    assert_code(&refused, 1);
    assert!(
        stderr(&refused).contains("drop --model"),
        "{}",
        stderr(&refused)
    );
}

/// `clv fit` with customer attributes as covariates (issue 22): on the demo data, whose
/// generator gives "pro" customers more purchases and larger baskets, the plan's coefficients
/// come out positive and significant, with the base level named, in the JSON and the tables.
#[test]
fn clv_fit_reports_covariate_effects() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &[
            "clv",
            "fit",
            "-t",
            &testdata("demo/transactions.csv"),
            "-c",
            &testdata("demo/customers.csv"),
            "--purchase-covariates",
            "plan",
            "--spend-covariates",
            "plan",
            "-f",
            "json",
            "-q",
        ],
    );
    assert_code(&out, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let cov = &json["model_fit"]["covariates"];
    for (fit, process) in [("purchase", "purchase"), ("spend", "spend")] {
        let f = &cov[fit];
        assert_eq!(f["bases"][0][0], "plan");
        assert_eq!(
            f["bases"][0][1], "basic",
            "the most frequent plan is the base"
        );
        let pro = f["coefficients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["covariate"] == "plan=pro")
            .unwrap();
        assert_eq!(pro["process"], process);
        let (gamma, se) = (
            pro["estimate"].as_f64().unwrap(),
            pro["standard_error"].as_f64().unwrap(),
        );
        assert!(gamma > 3.0 * se, "{fit}: γ = {gamma} ± {se}");
        assert!(f["likelihood_ratio_p"].as_f64().unwrap() < 0.001);
        assert!(pro["effect"].as_str().unwrap().contains("(against basic)"));
    }
}

#[test]
fn a_covariate_that_is_not_a_column_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &[
            "clv",
            "fit",
            "-t",
            &testdata("demo/transactions.csv"),
            "--purchase-covariates",
            "loyalty_tier",
            "-q",
        ],
    );
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(
            "column \"loyalty_tier\" given for the segment (by) or CLV covariate does not exist"
        ),
        "{err}"
    );
}

/// Covariates from a per-customer summary's own columns; a column it lacks is named.
#[test]
fn clv_fit_reads_covariates_from_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(testdata("cdnow/cdnow_customers_summary.csv")).unwrap();
    let mut lines = text.lines();
    let mut out = format!("{},group\n", lines.next().unwrap());
    for (i, line) in lines.enumerate() {
        out.push_str(&format!("{line},{}\n", if i % 3 == 0 { "b" } else { "a" }));
    }
    std::fs::write(dir.path().join("summary.csv"), out).unwrap();
    let args = |column: &'static str| {
        vec![
            "clv",
            "fit",
            "--summary",
            "summary.csv",
            "--purchase-covariates",
            column,
            "-f",
            "json",
            "-q",
        ]
    };
    let j = json(&run(dir.path(), &args("group")));
    let fit = &j["model_fit"]["covariates"]["purchase"];
    assert_eq!(fit["coefficients"][0]["covariate"], "group=b");
    assert_eq!(fit["bases"][0][1], "a");
    assert!(fit["coefficients"][0]["standard_error"].as_f64().unwrap() > 0.0);

    let missing = run(dir.path(), &args("region"));
    assert_code(&missing, 1);
    assert!(
        stderr(&missing).contains("no column \"region\" for the covariates"),
        "{}",
        stderr(&missing)
    );
}

/// `--forecast-periods 0` leaves the forecast cells out; the default gives 3 per cohort.
#[test]
fn forecast_periods_zero_turns_the_cohort_forecast_off() {
    let dir = tempfile::tempdir().unwrap();
    let tx = testdata("demo/transactions.csv");
    let with = json(&run(dir.path(), &["clv", "-t", &tx, "-f", "json", "-q"]));
    let cells = with["clv"]["cohort_forecast"]["cells"].as_array().unwrap();
    let cohorts: std::collections::BTreeSet<&str> = cells
        .iter()
        .map(|c| c["cohort"].as_str().unwrap())
        .collect();
    assert_eq!(cells.len(), 3 * cohorts.len());
    let without = json(&run(
        dir.path(),
        &[
            "clv",
            "-t",
            &tx,
            "--forecast-periods",
            "0",
            "-f",
            "json",
            "-q",
        ],
    ));
    assert!(without["clv"].get("cohort_forecast").is_none());
}
