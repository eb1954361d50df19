//! Exports laid out as shops, payment processors and CRM reports write them: statuses, refunds in
//! each of their three forms, line items, blank lines, report footers, empty files. Every file is
//! written by the test; every expected figure is computed by hand in the comments.

use std::collections::BTreeMap;

use custmetrics::Error;
use custmetrics::io::{
    Dataset, DatasetSpec, LoadOptions, PurchaseStatus, Role, Table, TableKind, col, load_table,
};
use custmetrics::period::Period;
use custmetrics::report::{Report, ReportOptions};
use custmetrics::summary::summarise;
use polars::prelude::*;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

fn load(path: &str) -> Table {
    load_table(TableKind::Transactions, &[path], &LoadOptions::default()).unwrap()
}

fn revenue(t: &Table) -> f64 {
    custmetrics::money::exact_total(
        t.frame
            .column(col::AMOUNT)
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .flatten(),
    )
}

fn report(path: &str) -> Report {
    let mut spec = DatasetSpec::default();
    spec.transactions = vec![path.to_string()];
    let data = Dataset::load(&spec).unwrap();
    let mut options = ReportOptions::default();
    options.period = Period::Month;
    Report::build(&data, &options).unwrap()
}

fn accounting_adds_up(t: &Table) {
    let a = &t.accounting;
    assert_eq!(
        a.rows_read,
        a.rows_used + a.rows_excluded + a.rows_rejected,
        "{a:?}"
    );
    assert_eq!(a.rows_excluded, a.excluded_by_reason.values().sum::<u64>());
    assert_eq!(a.rows_rejected, a.rejected_by_reason.values().sum::<u64>());
}

#[test]
fn payment_processor_charges_count_only_paid_money() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "charges.csv",
        "id,Created (UTC),Amount,Amount Refunded,Currency,Status,Customer ID,Customer Email\n\
         ch_1,2024-05-01T12:00:00Z,$19.99,0,usd,Paid,cus_A,a@x.io\n\
         ch_2,2024-05-03T08:30:00Z,$5.00,0,usd,Failed,cus_B,b@x.io\n\
         ch_3,2024-06-01T12:00:00Z,$19.99,$19.99,usd,Refunded,cus_A,a@x.io\n\
         ch_4,2024-06-02T09:00:00Z,$30.00,$10.00,usd,Paid,cus_C,c@x.io\n\
         ch_5,2024-04-15T09:00:00Z,$7.00,0,usd,Failed,cus_A,a@x.io\n",
    );
    let t = load(&path);
    let f = &t.files[0];
    assert_eq!(f.columns.column(Role::Status), Some("Status"));
    assert_eq!(
        f.columns.column(Role::RefundedAmount),
        Some("Amount Refunded")
    );
    // Two failed charges excluded; three charges are purchases.
    assert_eq!(t.accounting.rows_read, 5);
    assert_eq!(t.accounting.rows_used, 3);
    assert_eq!(t.accounting.rows_excluded, 2);
    assert_eq!(t.accounting.excluded_by_reason.get("failed"), Some(&2));
    assert_eq!(t.accounting.rows_rejected, 0);
    accounting_adds_up(&t);
    // Net revenue: 19.99 + (19.99 − 19.99) + (30.00 − 10.00) = 39.99.
    assert_eq!(revenue(&t), 39.99);
    let r = report(&path);
    let o = r.overview.unwrap();
    // cus_B never paid: not a customer. The refunded charge is still a purchase (A bought).
    assert_eq!(o.customers, 2);
    assert_eq!(o.transactions, 3);
    assert_eq!(o.revenue, 39.99);
    // A's failed charge of 2024-04-15 does not move the first date.
    assert_eq!(o.first_date.as_deref(), Some("2024-05-01"));
}

/// Refunds as negative rows, as a refunded-amount column and as a refunded status give the same
/// net revenue and the same purchases; a refund never makes a customer active.
#[test]
fn three_refund_representations_agree() {
    let dir = tempfile::tempdir().unwrap();
    let negative = write(
        &dir,
        "negative.csv",
        "customer,date,amount\n\
         c1,2024-01-10,100.00\n\
         c1,2024-02-05,-30.00\n\
         c2,2024-01-20,50.00\n\
         c2,2024-03-01,-50.00\n",
    );
    let column = write(
        &dir,
        "column.csv",
        "customer,date,amount,refunded amount\n\
         c1,2024-01-10,100.00,30.00\n\
         c2,2024-01-20,50.00,50.00\n",
    );
    let status = write(
        &dir,
        "status.csv",
        "customer,date,amount,status,refunded amount\n\
         c1,2024-01-10,100.00,partially_refunded,30.00\n\
         c2,2024-01-20,50.00,refunded,\n",
    );
    for path in [&negative, &column, &status] {
        let t = load(path);
        accounting_adds_up(&t);
        assert_eq!(t.accounting.rows_rejected, 0, "{path}");
        // 100 − 30 + 50 − 50 = 70 in every form.
        assert_eq!(revenue(&t), 70.0, "{path}");
        let s = summarise(t.frame.clone().lazy(), Period::Month, None, &[]).unwrap();
        let orders: Vec<u32> = s.customers.iter().map(|c| c.orders).collect();
        assert_eq!(orders, vec![1, 1], "{path}: refunds are not purchases");
        let revenue: Vec<f64> = s.customers.iter().map(|c| c.revenue).collect();
        assert_eq!(revenue, vec![70.0 - 0.0 - 0.0, 0.0], "{path}");
        // Both bought in January only: January is their only active period.
        let active: Vec<(u32, i32)> = s
            .activity
            .iter()
            .filter(|a| a.is_active())
            .map(|a| (a.customer, a.period))
            .collect();
        let january = Period::Month.index(chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap());
        assert_eq!(active, vec![(0, january), (1, january)], "{path}");
        let first_last: Vec<(i32, i32)> = s
            .customers
            .iter()
            .map(|c| (c.first_day, c.last_day))
            .collect();
        assert!(first_last.iter().all(|(f, l)| f == l), "{path}");
    }
    // With negative rows the refunds land in their own months: February's revenue is −30 and
    // nobody is active in February or March (a customer who only got money back is not retained).
    let r = report(&negative);
    let retention = r.retention.unwrap();
    let feb = retention
        .periods
        .iter()
        .find(|p| p.period == "2024-02" && p.segment.is_none())
        .unwrap();
    assert_eq!(feb.customers_end, 0);
    assert_eq!(feb.retained, 0);
    assert_eq!(feb.customers_start, 2);
    // NRR of February: the January customers' February net revenue (−30) over their January
    // revenue (150).
    assert_eq!(feb.nrr, Some(-30.0 / 150.0));
}

#[test]
fn shop_line_items_statuses_and_refunds() {
    let dir = tempfile::tempdir().unwrap();
    // Order-level fields (status, totals, paid at) on each order's first line only.
    let path = write(
        &dir,
        "orders_export.csv",
        "Name,Email,Financial Status,Paid at,Currency,Subtotal,Total,Refunded Amount,Created at,Lineitem quantity,Lineitem name\n\
         #1001,ann@example.com,paid,2024-03-01 10:15:00 +0100,EUR,40.00,45.00,0.00,2024-03-01 10:14:02 +0100,2,Mug\n\
         #1001,ann@example.com,,,,,,,2024-03-01 10:14:02 +0100,1,Tea\n\
         #1002,bob@example.com,voided,,EUR,10.00,12.00,0.00,2024-03-02 09:00:00 +0100,1,Cap\n\
         #1003,cy@example.com,refunded,2024-03-05 11:00:00 +0100,EUR,20.00,20.00,20.00,2024-03-05 10:59:00 +0100,1,Pen\n\
         #1004,ann@example.com,partially_refunded,2024-04-10 23:31:00 +0200,EUR,60.00,60.00,15.00,2024-04-10 23:30:00 +0200,1,Bag\n\
         #1004,ann@example.com,,,,,,,2024-04-10 23:30:00 +0200,1,Strap\n",
    );
    let t = load(&path);
    let f = &t.files[0];
    assert_eq!(f.columns.column(Role::Status), Some("Financial Status"));
    assert_eq!(f.continuation_rows, 2);
    // 6 rows: 2 continuation lines used in their orders, 1 voided order excluded, none rejected
    // (so --strict passes on this valid export).
    assert_eq!(t.accounting.rows_read, 6);
    assert_eq!(t.accounting.rows_used, 5);
    assert_eq!(t.accounting.excluded_by_reason.get("voided"), Some(&1));
    assert_eq!(t.accounting.rows_rejected, 0);
    assert!(t.rejections.is_empty());
    accounting_adds_up(&t);
    // Orders: #1001 45.00, #1003 20.00 − 20.00 = 0, #1004 60.00 − 15.00 = 45.00.
    assert_eq!(t.frame.height(), 3);
    assert_eq!(revenue(&t), 90.0);
    let o = report(&path).overview.unwrap();
    assert_eq!((o.customers, o.transactions, o.revenue), (2, 3, 90.0));
    // The local day as written: 2024-04-10 23:30 +0200 stays on the 10th.
    assert_eq!(o.last_date.as_deref(), Some("2024-04-10"));
}

#[test]
fn unknown_statuses_are_refused_until_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "deals.csv",
        "customer,date,amount,status\n\
         a,2024-01-01,10,paid\n\
         b,2024-01-02,20,In Progress\n\
         c,2024-01-03,30,Awaiting Review\n",
    );
    let err = load_table(TableKind::Transactions, &[&path], &LoadOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("deals.csv"), "{msg}");
    assert!(msg.contains("In Progress, Awaiting Review"), "{msg}");
    assert!(msg.contains("[transactions.statuses]"), "{msg}");
    let mut options = LoadOptions::default();
    options.statuses = BTreeMap::from([
        ("in progress".to_string(), PurchaseStatus::Pending),
        ("awaiting_review".to_string(), PurchaseStatus::Paid),
    ]);
    let t = load_table(TableKind::Transactions, &[&path], &options).unwrap();
    assert_eq!(t.accounting.excluded_by_reason.get("pending"), Some(&1));
    assert_eq!(revenue(&t), 40.0);
}

#[test]
fn partial_refund_of_unknown_size_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "orders.csv",
        "customer,date,amount,status\n\
         a,2024-01-01,10,paid\n\
         b,2024-01-02,20,partially_refunded\n",
    );
    let err = load_table(TableKind::Transactions, &[&path], &LoadOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("orders.csv: line 3"), "{msg}");
    assert!(msg.contains("refunded_col"), "{msg}");
}

#[test]
fn refunds_without_a_purchase_are_excluded() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "tx.csv",
        "customer,date,amount\n\
         a,2024-01-01,10\n\
         z,2024-01-05,-4\n",
    );
    let t = load(&path);
    assert_eq!(
        t.accounting
            .excluded_by_reason
            .get("refund_without_purchase"),
        Some(&1)
    );
    accounting_adds_up(&t);
    let o = report(&path).overview.unwrap();
    assert_eq!((o.customers, o.revenue), (1, 10.0));
}

#[test]
fn blank_lines_are_not_rows_and_line_numbers_stay_physical() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "tx.csv",
        "customer,date,amount\n\
         a,2024-01-01,10\n\
         \n\
         b,2024-01-02,x\n\
         ,,\n\
         c,2024-01-03,\"5\"\n\
         d,2024-01-04,N/A\n",
    );
    let t = load(&path);
    assert_eq!(t.files[0].blank_lines, 2);
    assert_eq!(t.accounting.rows_read, 4);
    assert_eq!(t.accounting.rows_rejected, 2);
    let lines: Vec<Option<u64>> = t.rejections.iter().map(|r| r.line).collect();
    // Physical lines: header 1, a 2, blank 3, b 4, blank 5, c 6, d 7.
    assert_eq!(lines, vec![Some(4), Some(7)]);
    accounting_adds_up(&t);
}

#[test]
fn crm_report_footer_is_excluded() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "report.csv",
        "Account ID,Close Date,Amount\n\
         A1,2024-01-10,100.00\n\
         A2,2024-01-12,50.00\n\
         \n\
         \"Grand Totals (2 records)\",,150.00\n\
         \"Confidential Information - Do Not Distribute\"\n\
         \"Copyright (c) 2000-2024 salesforce.com, inc. All rights reserved.\"\n",
    );
    let t = load(&path);
    assert_eq!(t.accounting.rows_read, 5);
    assert_eq!(t.accounting.rows_used, 2);
    assert_eq!(
        t.accounting.excluded_by_reason.get("report_footer"),
        Some(&3)
    );
    assert_eq!(t.accounting.rows_rejected, 0);
    accounting_adds_up(&t);
    assert_eq!(revenue(&t), 150.0);
}

#[test]
fn placeholder_years_are_rejected_rows_not_a_refused_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "tx.csv",
        "customer,date,amount\n\
         a,2024-01-01,10\n\
         b,9999-12-31,10\n\
         c,0001-01-01,10\n\
         d,2024-01-04,10\n",
    );
    let t = load(&path);
    assert_eq!(
        t.accounting.rejected_by_reason.get("date_out_of_range"),
        Some(&2)
    );
    assert_eq!(t.accounting.rows_used, 2);
}

#[test]
fn schema_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir,
        "2024-01.csv",
        "customer,date,amount\na,2024-01-01,10\n",
    );
    write(
        &dir,
        "2024-02.csv",
        "customer,date,total_due\na,2024-02-01,10\n",
    );
    let glob = dir.path().join("*.csv").to_string_lossy().into_owned();
    let err = load_table(TableKind::Transactions, &[&glob], &LoadOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("2024-02.csv: transactions: no column for the amount"),
        "{msg}"
    );
    assert!(matches!(err.innermost(), Error::MissingColumn { .. }));
}

#[test]
fn empty_data_is_an_error_naming_file_and_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let header_only = write(&dir, "header.csv", "customer,date,amount\n");
    let mut spec = DatasetSpec::default();
    spec.transactions = vec![header_only];
    let data = Dataset::load(&spec).unwrap();
    let msg = data.check_not_empty().unwrap_err().to_string();
    assert!(msg.contains("header.csv"), "{msg}");
    assert!(msg.contains("no data rows"), "{msg}");

    let rejected = write(
        &dir,
        "bad.csv",
        "customer,date,amount,status\n,2024-01-01,10,paid\nb,2024-01-02,5,failed\n",
    );
    spec.transactions = vec![rejected];
    let data = Dataset::load(&spec).unwrap();
    let msg = data.check_not_empty().unwrap_err().to_string();
    assert!(msg.contains("bad.csv"), "{msg}");
    assert!(msg.contains("missing_customer_id: 1"), "{msg}");
    assert!(msg.contains("failed: 1"), "{msg}");
}
