use custmetrics::io::{Dataset, DatasetSpec};
use custmetrics::report::{ActiveOn, Report, ReportOptions};
use proptest::prelude::*;

use crate::testdata;

fn report(tx: &str, ix: Option<&str>) -> Report {
    let mut spec = DatasetSpec::default();
    spec.transactions = vec![testdata(tx)];
    if let Some(ix) = ix {
        spec.interactions = vec![testdata(ix)];
    }
    let data = Dataset::load(&spec).unwrap();
    Report::build(&data, &ReportOptions::default()).unwrap()
}

#[test]
fn retention_and_churn_by_hand() {
    // a: Jan Feb Mar; b: Jan Mar; c: Jan; d: Feb (2024). As of Mar 9 (last date).
    let r = report("fixtures/retention_small.csv", None);
    let ret = r.retention.unwrap();
    let feb = &ret.periods[1];
    // S = 3 (a,b,c), E = 2 (a,d), N = 1 (d), R = 1 (a): CRR = 1/3, churn = 2/3.
    assert_eq!(
        (
            feb.customers_start,
            feb.customers_end,
            feb.new_customers,
            feb.retained
        ),
        (3, 2, 1, 1)
    );
    assert_eq!(feb.crr, Some(1.0 / 3.0));
    assert_eq!(feb.churn_rate, Some(2.0 / 3.0));
    let jan_cohort: Vec<u64> = ret
        .cohorts
        .iter()
        .filter(|c| c.cohort == "2024-01")
        .map(|c| c.active)
        .collect();
    assert_eq!(jan_cohort, vec![3, 1, 2]);
    let o = r.overview.unwrap();
    assert_eq!((o.customers, o.transactions, o.revenue), (4, 7, 70.0));
    assert_eq!(o.last_date.as_deref(), Some("2024-03-09"));
    // RFM segments cover every customer.
    assert_eq!(r.rfm.unwrap().segments.values().sum::<u64>(), 4);
}

#[test]
fn contract_revenue_churn_reads_the_activity_customers_when_interactions_count() {
    // `a` only chats and never bought: a contract without revenue in either activity
    // definition (a customer is acquired by a purchase, so activity leaves a out too). All
    // three signed up on Jan 1; a and b cancel on Mar 1. Revenue churn of March: b's February
    // revenue (50) of that of the contracts at March's start (50): 1. Of February: none lost,
    // of 130 (b 100, c 30).
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    let mut spec = DatasetSpec::default();
    spec.transactions = vec![write(
        "tx.csv",
        "customer_id,order_date,amount\nb,2024-01-10,100\nb,2024-02-10,50\nc,2024-01-15,30\nc,2024-03-05,20\n",
    )];
    spec.interactions = vec![write(
        "ix.csv",
        "customer_id,date,channel\na,2024-01-20,chat\n",
    )];
    spec.customers = vec![write(
        "cu.csv",
        "customer_id,signup_date,cancelled_date\na,2024-01-01,2024-03-01\nb,2024-01-01,2024-03-01\nc,2024-01-01,\n",
    )];
    let data = Dataset::load(&spec).unwrap();
    for active_on in [ActiveOn::Transactions, ActiveOn::AnyInteraction] {
        let mut options = ReportOptions::default();
        options.active_on = active_on;
        let r = Report::build(&data, &options).unwrap();
        let got: Vec<(String, u64, u64, Option<f64>)> = r
            .contractual_churn
            .unwrap()
            .into_iter()
            .map(|p| (p.period, p.customers_start, p.churned, p.revenue_churn_rate))
            .collect();
        assert_eq!(
            got,
            [
                ("2024-01".to_string(), 0, 0, None),
                ("2024-02".to_string(), 3, 0, Some(0.0)),
                ("2024-03".to_string(), 3, 2, Some(1.0)),
            ],
            "{active_on:?}"
        );
    }
}

#[test]
fn interactions_count_as_activity_when_asked() {
    // retention_small plus interactions: c answers a survey in Feb, b chats in Feb, b's call
    // before the first purchase and e (never bought) are left out.
    let mut spec = DatasetSpec::default();
    spec.transactions = vec![testdata("fixtures/retention_small.csv")];
    spec.interactions = vec![testdata("fixtures/touches_small.csv")];
    let data = Dataset::load(&spec).unwrap();
    let mut options = ReportOptions::default();
    options.active_on = ActiveOn::AnyInteraction;
    let r = Report::build(&data, &options).unwrap();
    let ret = r.retention.unwrap();
    assert_eq!(
        ret.periods[0].period, "2024-01",
        "no period before the first purchase"
    );
    let feb = &ret.periods[1];
    // Feb: S = 3 (a, b, c), E = 4 (a, d by purchase; b, c by interaction), N = 1 (d): CRR = 1.
    assert_eq!(
        (feb.customers_start, feb.customers_end, feb.new_customers),
        (3, 4, 1)
    );
    assert_eq!(feb.crr, Some(1.0));
    let jan_cohort: Vec<u64> = ret
        .cohorts
        .iter()
        .filter(|c| c.cohort == "2024-01")
        .map(|c| c.active)
        .collect();
    assert_eq!(jan_cohort, vec![3, 3, 2]);
    // Purchases still drive the overview and RFM: e is not a customer.
    let o = r.overview.unwrap();
    assert_eq!((o.customers, o.transactions, o.revenue), (4, 7, 70.0));
    assert_eq!(r.rfm.unwrap().segments.values().sum::<u64>(), 4);
    assert_eq!(r.settings.active_on, ActiveOn::AnyInteraction);
}

#[test]
fn purchasing_rfm_and_survival_split_by_a_dimension() {
    // retention_small by channel: web = a (3 orders on 3 days), c (1); store = b (2), d (1);
    // every order is 10.
    let mut spec = DatasetSpec::default();
    spec.transactions = vec![testdata("fixtures/retention_small.csv")];
    let data = Dataset::load(&spec).unwrap();
    let mut options = ReportOptions::default();
    options.by = vec!["channel".into()];
    // The data ends on 2024-03-09; with 30 days, a lifetime can be seen to end up to 2024-02-08,
    // so d (first purchase 2024-02-14) is too recent for the survival curve.
    options.inactive_after_days = 30;
    let r = Report::build(&data, &options).unwrap();
    let by = &r.supporting.unwrap().by_segment;
    let row = |g: &custmetrics::report::SegmentValue| {
        (
            g.segment.clone(),
            g.customers,
            g.orders,
            g.revenue,
            g.average_order_value,
            g.purchase_frequency,
            g.repeat_purchase_rate,
            g.historical_clv,
        )
    };
    assert_eq!(
        by.iter().map(row).collect::<Vec<_>>(),
        vec![
            ("store".to_string(), 2, 3, 30.0, 10.0, 1.5, 0.5, 15.0),
            ("web".to_string(), 2, 4, 40.0, 10.0, 2.0, 0.5, 20.0),
        ]
    );
    let rfm = r.rfm.unwrap();
    for channel in ["store", "web"] {
        let n: u64 = rfm
            .by_segment
            .iter()
            .filter(|g| g.segment == channel)
            .map(|g| g.customers)
            .sum();
        assert_eq!(n, 2, "{channel}");
    }
    let survival = r.survival.unwrap();
    assert_eq!(
        survival
            .by_segment
            .iter()
            .map(|g| (g.segment.as_str(), g.customers))
            .collect::<Vec<_>>(),
        vec![("store", 1), ("web", 2)]
    );
    assert_eq!(survival.too_recent, 1);
}

#[test]
fn nps_and_csat_by_hand() {
    let r = report(
        "fixtures/retention_small.csv",
        Some("fixtures/surveys_small.csv"),
    );
    let n = r.nps.unwrap();
    // NPS answers 9,9,10,10,10,7,8,8,0,6: 5 promoters, 2 detractors of 10 → 30.
    assert_eq!(
        (
            n.overall.promoters,
            n.overall.passives,
            n.overall.detractors
        ),
        (5, 3, 2)
    );
    assert!((n.overall.score - 30.0).abs() < 1e-12);
    let c = r.csat.unwrap();
    // CSAT answers 5,4,4,3,2,1,5,5,4,4: 7 of 10 are 4 or 5.
    assert_eq!((c.overall.satisfied, c.overall.responses), (7, 10));
    // Split by period: January has 5 NPS answers, February 5.
    assert_eq!(
        n.by.iter().map(|x| x.responses).collect::<Vec<_>>(),
        vec![5, 5]
    );
    assert!(n.by.iter().all(|x| x.low_sample));
}

/// Random transactions: (customer 0..20, day offset 0..400, amount cents).
fn tx_rows() -> impl Strategy<Value = Vec<(u8, u16, u32)>> {
    proptest::collection::vec((0u8..20, 0u16..400, 1u32..100_000), 1..80)
}

fn write_csv(dir: &std::path::Path, name: &str, rows: &[(u8, u16, u32)]) -> String {
    let start = chrono::NaiveDate::from_ymd_opt(2023, 1, 1).unwrap();
    let mut s = String::from("customer_id,date,amount\n");
    for (c, d, a) in rows {
        let date = start + chrono::Duration::days(i64::from(*d));
        s.push_str(&format!("c{c},{date},{}.{:02}\n", a / 100, a % 100));
    }
    let p = dir.join(name);
    std::fs::write(&p, s).unwrap();
    p.to_string_lossy().into_owned()
}

fn build(files: Vec<String>) -> Report {
    let mut spec = DatasetSpec::default();
    spec.transactions = files;
    // The descriptive sections; model fits on random tiny tables are covered in models/.
    let mut options = ReportOptions::default();
    options
        .sections
        .retain(|s| *s != custmetrics::report::Section::Clv);
    Report::build(&Dataset::load(&spec).unwrap(), &options).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn order_and_file_split_do_not_matter(rows in tx_rows(), split in 0usize..80) {
        let dir = tempfile::tempdir().unwrap();
        let whole = build(vec![write_csv(dir.path(), "all.csv", &rows)]);
        let mut reversed = rows.clone();
        reversed.reverse();
        let k = split.min(reversed.len());
        let parts = build(vec![
            write_csv(dir.path(), "p1.csv", &reversed[..k]),
            write_csv(dir.path(), "p2.csv", &reversed[k..]),
        ]);
        prop_assert_eq!(&whole.retention, &parts.retention);
        prop_assert_eq!(&whole.churn, &parts.churn);
        prop_assert_eq!(&whole.rfm, &parts.rfm);
        let ret = whole.retention.unwrap();
        for p in &ret.periods {
            for rate in [p.retention_rate, p.churn_rate].into_iter().flatten() {
                prop_assert!((0.0..=1.0).contains(&rate));
            }
            if let (Some(r), Some(c)) = (p.retention_rate, p.churn_rate) {
                prop_assert!((r + c - 1.0).abs() < 1e-12);
            }
        }
        for c in &ret.cohorts {
            prop_assert!((0.0..=1.0).contains(&c.rate) && c.unbounded_rate >= c.rate);
        }
        prop_assert_eq!(whole.accounting["transactions"].rows_read, rows.len() as u64);
    }
}

#[test]
fn build_owned_equals_build_and_without_rows_keeps_the_accounting() {
    // The demo data with all three tables (signup cohorts, contracts, CAC, survey scores): the
    // report that releases the rows early is the same report, and the dataset kept for the
    // accounting has no rows but the same accounting and input paths.
    let mut spec = DatasetSpec::default();
    spec.transactions = vec![testdata("demo/transactions.csv")];
    spec.interactions = vec![testdata("demo/interactions.csv")];
    spec.customers = vec![testdata("demo/customers.csv")];
    let data = Dataset::load(&spec).unwrap();
    let options = ReportOptions::default();
    let borrowed = serde_json::to_string(&Report::build(&data, &options).unwrap()).unwrap();
    let kept = data.without_rows();
    let owned =
        serde_json::to_string(&Report::build_owned(data.clone(), &options).unwrap()).unwrap();
    assert_eq!(owned, borrowed);
    assert_eq!(kept.input_paths(), data.input_paths());
    assert_eq!(kept.accounting_summary(3), data.accounting_summary(3));
    for (k, t) in kept.tables().zip(data.tables()) {
        assert_eq!(k.frame.height(), 0);
        assert_eq!(k.frame.schema(), t.frame.schema());
        assert_eq!(k.accounting, t.accounting);
    }
}

#[test]
fn transactions_read_in_partitions_give_the_same_report_and_accounting() {
    // Every section from the demo tables, plus a file with bad rows, a repeated line and a
    // line-item export (order lines merged): reading the transactions one customer partition at
    // a time must change nothing a user sees, only the memory held.
    let files = [
        vec![testdata("demo/transactions.csv")],
        vec![testdata("bad/bad_values.csv")],
        vec![testdata("formats/uci_online_retail.csv")],
        vec![testdata("formats/semicolon_decimal_comma_dmy.csv")],
    ];
    for transactions in files {
        let mut spec = DatasetSpec::default();
        spec.transactions = transactions.clone();
        if transactions[0].contains("demo") {
            spec.interactions = vec![testdata("demo/interactions.csv")];
            spec.customers = vec![testdata("demo/customers.csv")];
        }
        let options = ReportOptions::default();
        let mut whole = Dataset::load(&spec).unwrap();
        let expected = Report::build_taking_rows(&mut whole, &options).unwrap();
        for partitions in [2, 3, 7] {
            spec.transaction_partitions = partitions;
            let mut data = Dataset::load(&spec).unwrap();
            assert!(data.transactions.is_none() && data.deferred_transactions.is_some());
            let report = Report::build_taking_rows(&mut data, &options).unwrap();
            assert_eq!(
                serde_json::to_value(&report).unwrap(),
                serde_json::to_value(&expected).unwrap(),
                "{transactions:?} in {partitions} partitions"
            );
            let (t, w) = (
                data.transactions.as_ref().unwrap(),
                whole.transactions.as_ref().unwrap(),
            );
            assert_eq!(t.accounting, w.accounting, "{transactions:?}");
            assert_eq!(t.rejections, w.rejections, "{transactions:?}");
            assert_eq!(t.files, w.files, "{transactions:?}");
            // The same columns (merging order lines may put the order id first in one and not
            // in a partition without repeated orders).
            let names = |t: &custmetrics::io::Table| {
                let mut n: Vec<String> = t
                    .frame
                    .get_column_names()
                    .iter()
                    .map(|c| c.to_string())
                    .collect();
                n.sort();
                n
            };
            assert_eq!(names(t), names(w));
            assert_eq!(data.input_paths(), whole.input_paths());
        }
    }
}

#[test]
fn partitions_refuse_what_needs_the_whole_table() {
    let mut spec = DatasetSpec::default();
    spec.transactions = vec![testdata("demo/transactions.csv")];
    spec.transaction_partitions = 2;
    let mut options = ReportOptions::default();
    options.clv_holdout_from = chrono::NaiveDate::from_ymd_opt(2025, 1, 1);
    let mut data = Dataset::load(&spec).unwrap();
    let err = Report::build_taking_rows(&mut data, &options).unwrap_err();
    assert!(err.to_string().contains("--holdout-from"), "{err}");
    spec.interactions = vec![testdata("demo/interactions.csv")];
    let mut options = ReportOptions::default();
    options.active_on = ActiveOn::AnyInteraction;
    let mut data = Dataset::load(&spec).unwrap();
    let err = Report::build_taking_rows(&mut data, &options).unwrap_err();
    assert!(err.to_string().contains("--active-on any"), "{err}");
}

#[test]
fn inactivity_survival_is_skipped_with_the_reason_when_every_customer_is_too_recent() {
    // retention_small spans 2024-01-05 to 2024-03-09: with the default 90 days no customer's
    // first purchase is early enough for a lifetime to be seen to end (issue 23).
    let mut spec = DatasetSpec::default();
    spec.transactions = vec![testdata("fixtures/retention_small.csv")];
    let data = Dataset::load(&spec).unwrap();
    let r = Report::build(&data, &ReportOptions::default()).unwrap();
    assert!(r.survival.is_none());
    let reason = r
        .skipped
        .iter()
        .find(|s| s.section == custmetrics::report::Section::Survival)
        .map(|s| s.reason.as_str());
    assert!(
        reason.is_some_and(|r| r.contains("--inactive-after")),
        "{reason:?}"
    );
}

#[test]
fn sections_that_read_customer_rows_only_equal_the_full_reports() {
    fn json<T: serde::Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap()
    }
    // RFM and CLV alone build only the customer rows of stage 1 (no activity rows, no gaps),
    // whole and in customer partitions: their sections and the overview must be those of the
    // full report, which builds everything.
    let mut spec = DatasetSpec::default();
    spec.transactions = vec![testdata("demo/transactions.csv")];
    let data = Dataset::load(&spec).unwrap();
    let full = Report::build(&data, &ReportOptions::default()).unwrap();
    let mut o = ReportOptions::default();
    o.sections = vec![
        custmetrics::Section::Overview,
        custmetrics::Section::Rfm,
        custmetrics::Section::Clv,
    ];
    let only = Report::build(&data, &o).unwrap();
    assert!(only.rfm.is_some() && only.clv.is_some());
    assert_eq!(json(&only.rfm), json(&full.rfm));
    assert_eq!(json(&only.clv), json(&full.clv));
    assert_eq!(json(&only.overview), json(&full.overview));
    spec.transaction_partitions = 3;
    let parts = Report::build(&Dataset::load(&spec).unwrap(), &o).unwrap();
    assert_eq!(json(&parts.rfm), json(&full.rfm));
    assert_eq!(json(&parts.clv), json(&full.clv));
}
