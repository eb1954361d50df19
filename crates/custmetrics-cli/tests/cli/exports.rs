//! Exports as shops, payment processors and CRM reports write them, through the real binary:
//! `--strict` passes on valid exports, decisions are printed, empty data fails the job.

use crate::{assert_code, json, run, stderr};

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

const SHOP_ORDERS: &str = "Name,Email,Financial Status,Paid at,Total,Refunded Amount,Created at,Lineitem name\n\
#1001,ann@example.com,paid,2024-03-01 10:15:00 +0100,45.00,0.00,2024-03-01 10:14:02 +0100,Mug\n\
#1001,ann@example.com,,,,,2024-03-01 10:14:02 +0100,Tea\n\
#1002,bob@example.com,voided,,12.00,0.00,2024-03-02 09:00:00 +0100,Cap\n\
#1003,cy@example.com,refunded,2024-03-05 11:00:00 +0100,20.00,20.00,2024-03-05 10:59:00 +0100,Pen\n\
#1004,ann@example.com,partially_refunded,2024-04-10 23:31:00 +0200,60.00,15.00,2024-04-10 23:30:00 +0200,Bag\n";

#[test]
fn strict_passes_on_a_line_item_shop_export_and_prints_its_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let orders = write(&dir, "orders_export.csv", SHOP_ORDERS);
    let out = run(
        dir.path(),
        &["report", "-t", &orders, "--strict", "--format", "json"],
    );
    let v = json(&out);
    // Orders #1001 45.00, #1003 20.00 − 20.00, #1004 60.00 − 15.00; #1002 voided.
    assert_eq!(v["overview"]["transactions"], 3);
    assert_eq!(v["overview"]["revenue"], 90.0);
    assert_eq!(v["overview"]["customers"], 2);
    let a = &v["accounting"]["transactions"];
    assert_eq!(a["rows_read"], 5);
    assert_eq!(a["rows_used"], 4);
    assert_eq!(a["rows_excluded"], 1);
    assert_eq!(a["excluded_by_reason"]["voided"], 1);
    let err = stderr(&out);
    assert!(err.contains("1 excluded (voided: 1)"), "{err}");
    assert!(
        err.contains("\"Financial Status\" is paid or refunded"),
        "{err}"
    );
    assert!(err.contains("less \"Refunded Amount\""), "{err}");
    assert!(err.contains("1 line-item rows continue an order"), "{err}");
    // The report's data-quality table says what was left out, too.
    let out = run(
        dir.path(),
        &["report", "-t", &orders, "--format", "markdown"],
    );
    assert_code(&out, 0);
    let md = crate::stdout(&out);
    assert!(md.contains("excluded: voided: 1"), "{md}");
}

#[test]
fn empty_data_fails_the_job_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let header = write(&dir, "orders.csv", "customer,date,amount\n");
    let out = run(dir.path(), &["report", "-t", &header, "--format", "json"]);
    assert_code(&out, 1);
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("transactions (") && err.contains("orders.csv): no data to report"),
        "{err}"
    );
    assert!(err.contains("--allow-empty"), "{err}");

    // Every row rejected: the reasons are named, and the rejects file is still written.
    let bad = write(
        &dir,
        "bad.csv",
        "customer,date,amount\na,2024-13-45,10\nb,2024-01-02,N/A\n",
    );
    let rejects = dir.path().join("rejects.csv");
    let out = run(
        dir.path(),
        &["report", "-t", &bad, "--rejects", rejects.to_str().unwrap()],
    );
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("none of the 2 rows read is usable"), "{err}");
    assert!(err.contains("unparsable_amount: 1"), "{err}");
    let listed = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(listed.lines().count(), 3, "{listed}");

    let out = run(
        dir.path(),
        &["report", "-t", &header, "--allow-empty", "--format", "json"],
    );
    assert_code(&out, 0);
}

#[test]
fn unknown_status_values_are_refused_with_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let deals = write(
        &dir,
        "deals.csv",
        "customer,date,amount,status\na,2024-01-01,10,paid\nb,2024-01-02,20,In Review\n",
    );
    let out = run(dir.path(), &["report", "-t", &deals]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains("deals.csv: transactions: column \"status\""),
        "{err}"
    );
    assert!(err.contains("In Review"), "{err}");
    // The config file settles it.
    std::fs::write(
        dir.path().join("custmetrics.toml"),
        "[transactions]\n[transactions.statuses]\n\"In Review\" = \"pending\"\n",
    )
    .unwrap();
    let v = json(&run(
        dir.path(),
        &["report", "-t", &deals, "--format", "json"],
    ));
    assert_eq!(v["overview"]["revenue"], 10.0);
    assert_eq!(
        v["accounting"]["transactions"]["excluded_by_reason"]["pending"],
        1
    );
}

#[test]
fn strict_names_the_physical_line_after_blank_lines() {
    let dir = tempfile::tempdir().unwrap();
    let tx = write(
        &dir,
        "tx.csv",
        "customer,date,amount\na,2024-01-01,10\n\nb,2024-01-02,oops\n",
    );
    let out = run(dir.path(), &["report", "-t", &tx, "--strict"]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("tx.csv:4: column \"amount\""), "{err}");
}
