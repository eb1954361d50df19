//! Retention straight from a summary store's purchase days, for a run whose only transaction
//! section is retention (`custmetrics retention --store`).
//!
//! Retention needs no customer ids, no per-customer rows and no gaps: only each customer's
//! cohort and active periods, added up into [`RetentionCounts`]. So this path reads four
//! integer columns of the store's purchases (customer code, day, orders, revenue in
//! millionths) and, when the customers snapshot has signup dates, those dates by customer code
//! (the snapshot's ids matched to the store's once). It groups the days by customer code (in
//! place when the parts are already in code and day order, as custmetrics writes them; by a
//! counting sort otherwise) and counts each customer once, customers split across threads,
//! whose counts then add up. The counts are integers, so the figures are those of the general
//! path (summaries, then [`crate::metrics::retention::retention`]) exactly; the
//! store-vs-exports tests check it.

use rayon::prelude::*;

use super::summarise::group_by_code;
use crate::metrics::retention::{PeriodActivity, RetentionCounts};
use crate::period::{Period, PeriodLookup};

/// A store's purchase days, one entry per row of its purchases parts (within the date
/// window), as plain columns.
#[derive(Debug, Default)]
pub(super) struct PurchaseDays {
    /// Customer code.
    pub customer: Vec<u32>,
    /// Day (days since 1970-01-01).
    pub day: Vec<i32>,
    /// Purchases that day (0: refunds only).
    pub orders: Vec<u32>,
    /// Net revenue that day, in millionths.
    pub revenue: Vec<i64>,
}

impl PurchaseDays {
    /// Empty columns with room for `rows` rows.
    pub fn with_capacity(rows: usize) -> PurchaseDays {
        PurchaseDays {
            customer: Vec::with_capacity(rows),
            day: Vec::with_capacity(rows),
            orders: Vec::with_capacity(rows),
            revenue: Vec::with_capacity(rows),
        }
    }
}

/// Retention's counts of the customers with a purchase among `days`, and the observation end
/// (`as_of`, else the last day of such a customer, as stage 1 sets it). A customer's cohort is
/// the period of `signup[code]` (the signup day from the customers table) when there is one,
/// else of the first purchase. `None` when no customer bought anything: the general path then
/// says why there is nothing to report.
pub(super) fn retention_counts(
    days: &PurchaseDays,
    signup: &[Option<i32>],
    period: Period,
    as_of: Option<i32>,
) -> Option<(RetentionCounts, i32)> {
    let scan = Scan::of(days)?;
    let groups = CustomerGroups::new(&days.customer, scan.codes_sorted, scan.customers);
    let threads = rayon::current_num_threads().max(1);
    let shares = groups.split(threads, &days.customer);
    let signup_of = |rows: &Rows<'_>| {
        let code = rows.iter().next().and_then(|i| days.customer.get(i))?;
        signup.get(*code as usize).copied().flatten()
    };
    // A customer whose days in the window are all refunds bought nothing: not a customer,
    // and its days neither set the observation end nor widen the counts. When some days are
    // refunds only, or signups date the cohorts, one pass over the customers finds the span
    // of the days of those who bought and their earliest signup day; otherwise every
    // customer bought, and the scan's span is theirs.
    let span = match (scan.refund_days, signup) {
        (false, []) => Some(Span {
            first: scan.first_day,
            last: scan.last_day,
            signup: None,
        }),
        _ => shares
            .par_iter()
            .filter_map(|share| {
                let mut span: Option<Span> = None;
                share.each(&days.customer, |rows| {
                    if rows
                        .iter()
                        .any(|i| days.orders.get(i).is_some_and(|&o| o > 0))
                    {
                        let day = |i: usize| days.day.get(i).copied();
                        let (Some(first), Some(last)) = (
                            rows.iter().filter_map(day).min(),
                            rows.iter().filter_map(day).max(),
                        ) else {
                            return;
                        };
                        let customer = Span {
                            first,
                            last,
                            signup: signup_of(&rows),
                        };
                        span = Some(span.map_or(customer, |s| s.union(customer)));
                    }
                });
                span
            })
            .reduce_with(Span::union),
    };
    // Nobody bought: the general path says why there is nothing to report.
    let span = span?;
    let as_of = as_of.unwrap_or(span.last);
    let first_day = span.first.min(as_of);
    let lookup = PeriodLookup::new(period, [first_day, as_of].into_iter());
    let end = lookup.get(as_of);
    // Every slot of the counts starts at the earliest period a customer who bought is dated
    // by: a day in the window, or a signup before the observation end (as the general path
    // dates them: no wider, so that an old refund-only day cannot make a daily triangle of
    // decades).
    let lo = span
        .signup
        .map(|d| lookup.get(d))
        .filter(|&p| p <= end)
        .map_or(lookup.get(first_day), |p| p.min(lookup.get(first_day)));
    // One set of counts per thread (a triangle of daily periods is megabytes), added up.
    let (counts, counted) = shares
        .par_iter()
        .map(|share| {
            let mut counts = RetentionCounts::new(lo, end);
            let mut counted = 0usize;
            let mut scratch: Vec<(i32, u32, i64)> = Vec::new();
            let mut periods: Vec<PeriodActivity> = Vec::new();
            share.each(&days.customer, |rows| {
                let signup_day = signup_of(&rows);
                let first_purchase = match rows {
                    // A store's days are in day order per customer: read where they lie.
                    Rows::Range(at) if days.day.get(at.clone()).is_some_and(<[i32]>::is_sorted) => {
                        let day = days.day.get(at.clone()).unwrap_or_default();
                        let orders = days.orders.get(at.clone()).unwrap_or_default();
                        let revenue = days.revenue.get(at).unwrap_or_default();
                        let rows = day.iter().zip(orders).zip(revenue);
                        let rows = rows.map(|((&d, &o), &r)| (d, o, r));
                        customer_periods(rows, &mut periods, &lookup)
                    }
                    rows => {
                        scratch.clear();
                        scratch.extend(rows.iter().filter_map(|i| {
                            Some((
                                *days.day.get(i)?,
                                *days.orders.get(i)?,
                                *days.revenue.get(i)?,
                            ))
                        }));
                        if !scratch.is_sorted_by_key(|r| r.0) {
                            scratch.sort_by_key(|r| r.0);
                        }
                        customer_periods(scratch.iter().copied(), &mut periods, &lookup)
                    }
                };
                if let Some(day) = first_purchase {
                    let cohort = signup_day.unwrap_or(day);
                    counts.add_customer(lookup.get(cohort), &periods);
                    counted += 1;
                }
            });
            (counts, counted)
        })
        .reduce_with(|(mut a, m), (b, n)| {
            a.merge(&b);
            (a, m + n)
        })?;
    (counted > 0).then_some((counts, as_of))
}

/// The days of the customers who bought, and their earliest signup day.
#[derive(Debug, Clone, Copy)]
struct Span {
    first: i32,
    last: i32,
    signup: Option<i32>,
}

impl Span {
    fn union(self, other: Span) -> Span {
        Span {
            first: self.first.min(other.first),
            last: self.last.max(other.last),
            signup: match (self.signup, other.signup) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }
}

/// What one parallel pass over the days tells: their span, whether some are refunds only,
/// and whether the customer codes are in order.
struct Scan {
    first_day: i32,
    last_day: i32,
    refund_days: bool,
    /// Codes `0..customers` are used.
    customers: usize,
    codes_sorted: bool,
    /// The first and last code of the rows scanned (to join two scans' order).
    ends: (u32, u32),
}

impl Scan {
    /// `None` without days.
    fn of(days: &PurchaseDays) -> Option<Scan> {
        const CHUNK: usize = 1 << 16;
        days.customer
            .par_chunks(CHUNK)
            .zip(days.day.par_chunks(CHUNK))
            .zip(days.orders.par_chunks(CHUNK))
            .filter_map(|((codes, day), orders)| {
                Some(Scan {
                    first_day: day.iter().copied().min()?,
                    last_day: day.iter().copied().max()?,
                    refund_days: orders.contains(&0),
                    customers: codes.iter().max().map_or(0, |&m| m as usize + 1),
                    codes_sorted: codes.is_sorted(),
                    ends: (*codes.first()?, *codes.last()?),
                })
            })
            .reduce_with(|a, b| Scan {
                first_day: a.first_day.min(b.first_day),
                last_day: a.last_day.max(b.last_day),
                refund_days: a.refund_days || b.refund_days,
                customers: a.customers.max(b.customers),
                codes_sorted: a.codes_sorted && b.codes_sorted && a.ends.1 <= b.ends.0,
                ends: (a.ends.0, b.ends.1),
            })
    }
}

/// One customer's rows.
enum Rows<'a> {
    /// Rows `at` of the columns.
    Range(std::ops::Range<usize>),
    /// These rows of the columns.
    Indices(&'a [u32]),
}

impl Rows<'_> {
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        let (range, indices) = match self {
            Rows::Range(at) => (at.clone(), &[][..]),
            Rows::Indices(at) => (0..0, *at),
        };
        range.chain(indices.iter().map(|&i| i as usize))
    }
}

/// One customer's days (day, orders, revenue), in day order, summed per period into
/// `periods`; returns the first purchase day (`None`: refunds only, not a customer).
fn customer_periods(
    rows: impl Iterator<Item = (i32, u32, i64)>,
    periods: &mut Vec<PeriodActivity>,
    lookup: &PeriodLookup,
) -> Option<i32> {
    periods.clear();
    let mut first_purchase = None;
    // Days of one period are contiguous, and one day may have several rows (one per part).
    let mut current: Option<(i32, i32)> = None;
    for (day, orders, revenue) in rows {
        if orders > 0 && first_purchase.is_none() {
            first_purchase = Some(day);
        }
        let period = match current {
            Some((last_day, period)) if last_day == day => period,
            _ => lookup.get(day),
        };
        current = Some((day, period));
        match periods.last_mut() {
            Some(p) if p.period == period => {
                p.orders += orders;
                p.revenue += revenue;
            }
            _ => periods.push(PeriodActivity {
                period,
                orders,
                revenue,
            }),
        }
    }
    first_purchase
}

/// The days grouped by customer: runs of the rows as they are, when the codes are in order
/// (each part of a store is, and the parts of one run follow each other in code order), else
/// the order of a counting sort by code.
enum CustomerGroups {
    /// Rows in code order: each customer is a run.
    Runs(usize),
    /// `order[starts[c]..starts[c + 1]]` are customer c's rows.
    Grouped { order: Vec<u32>, starts: Vec<u32> },
}

/// A share of the groups, for one thread.
enum Groups<'a> {
    Runs(std::ops::Range<usize>),
    Grouped { order: &'a [u32], starts: &'a [u32] },
}

impl Groups<'_> {
    /// Calls `f` with each customer's rows (`codes` are the rows' customer codes).
    fn each(&self, codes: &[u32], mut f: impl FnMut(Rows<'_>)) {
        match self {
            Groups::Runs(rows) => {
                let mut at = rows.start;
                for run in codes
                    .get(rows.clone())
                    .unwrap_or_default()
                    .chunk_by(|a, b| a == b)
                {
                    f(Rows::Range(at..at + run.len()));
                    at += run.len();
                }
            }
            Groups::Grouped { order, starts } => {
                for bounds in starts.windows(2) {
                    if let (Some(&from), Some(&to)) = (bounds.first(), bounds.get(1))
                        && let Some(members) = order.get(from as usize..to as usize)
                        && !members.is_empty()
                    {
                        f(Rows::Indices(members));
                    }
                }
            }
        }
    }
}

impl CustomerGroups {
    fn new(codes: &[u32], sorted: bool, customers: usize) -> CustomerGroups {
        if sorted {
            return CustomerGroups::Runs(codes.len());
        }
        let (starts, order) = group_by_code(codes, customers);
        CustomerGroups::Grouped { order, starts }
    }

    /// `pieces` shares of about equal size, never splitting a customer.
    fn split<'a>(&'a self, pieces: usize, codes: &[u32]) -> Vec<Groups<'a>> {
        match self {
            CustomerGroups::Runs(rows) => {
                let mut cuts = vec![0];
                for p in 1..pieces {
                    let mut cut = rows * p / pieces;
                    // Forward to the start of a customer.
                    let code = codes.get(cut).copied();
                    while cut < *rows && codes.get(cut).copied() == code {
                        cut += 1;
                    }
                    cuts.push(cut.max(cuts.last().copied().unwrap_or(0)));
                }
                cuts.push(*rows);
                cuts.windows(2)
                    .map(|w| {
                        Groups::Runs(
                            w.first().copied().unwrap_or(0)..w.get(1).copied().unwrap_or(0),
                        )
                    })
                    .collect()
            }
            CustomerGroups::Grouped { order, starts } => {
                let customers = starts.len().saturating_sub(1);
                (0..pieces)
                    .map(|p| {
                        let (from, to) = (customers * p / pieces, customers * (p + 1) / pieces);
                        Groups::Grouped {
                            order,
                            starts: starts.get(from..=to).unwrap_or_default(),
                        }
                    })
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::retention::RetentionCounts;

    fn days(rows: &[(u32, i32, u32, i64)]) -> PurchaseDays {
        PurchaseDays {
            customer: rows.iter().map(|r| r.0).collect(),
            day: rows.iter().map(|r| r.1).collect(),
            orders: rows.iter().map(|r| r.2).collect(),
            revenue: rows.iter().map(|r| r.3).collect(),
        }
    }

    /// The counts' figures, for comparing two sets of counts.
    fn figures(c: &RetentionCounts) -> String {
        format!("{:?}", c.figures(Period::Month, None))
    }

    #[test]
    fn row_order_does_not_change_the_counts() {
        // Jan 2024 is day 19723. Customer 0: Jan and Feb; 1: Jan, then a refund alone in
        // Mar; 2: only a refund (not a customer); 3: Feb twice (two parts' rows of one day).
        let jan = 19723;
        let rows = [
            (0, jan, 1, 10_000_000),
            (0, jan + 31, 2, 5_000_000),
            (1, jan + 3, 1, 7_000_000),
            (1, jan + 62, 0, -2_000_000),
            (2, jan + 5, 0, -1_000_000),
            (3, jan + 40, 1, 1_000_000),
            (3, jan + 40, 1, 2_000_000),
        ];
        let (sorted, as_of) = retention_counts(&days(&rows), &[], Period::Month, None).unwrap();
        // The last day of a customer who bought: customer 1's refund in March.
        assert_eq!(as_of, jan + 62);
        let mut shuffled = rows;
        shuffled.reverse();
        shuffled.swap(0, 3);
        let (unsorted, _) = retention_counts(&days(&shuffled), &[], Period::Month, None).unwrap();
        assert_eq!(figures(&sorted), figures(&unsorted));
        let (periods, cells) = sorted.figures(Period::Month, None);
        // Jan: {0, 1} new; Feb: 0 retained, 3 new; Mar: nobody active, 1's refund.
        let got: Vec<(u64, u64, u64)> = periods
            .iter()
            .map(|p| (p.customers_end, p.new_customers, p.retained))
            .collect();
        assert_eq!(got, vec![(2, 2, 0), (2, 1, 1), (0, 0, 0)]);
        // Jan cohort {0, 1}: revenue 17 in Jan, 5 in Feb, −2 in Mar; Feb cohort {3}: 3.
        let revenue: Vec<(String, u32, f64)> = cells
            .iter()
            .map(|c| (c.cohort.clone(), c.offset, c.revenue))
            .collect();
        assert_eq!(
            revenue,
            vec![
                ("2024-01".into(), 0, 17.0),
                ("2024-01".into(), 1, 5.0),
                ("2024-01".into(), 2, -2.0),
                ("2024-02".into(), 0, 3.0),
                ("2024-02".into(), 1, 0.0),
            ]
        );
    }

    /// Stage 1 of a retention-only report on a store written from `files`, on the counted
    /// path when it can (`counted`), else on the general one.
    fn stage_one(files: &[(&str, &str)], counted: bool) -> crate::summary::Stage1 {
        use crate::summary::{Stage1Options, StoreOptions, StoreRead, SummaryStore, prepare};
        let dir = tempfile::tempdir().unwrap();
        let mut spec = crate::DatasetSpec::default();
        for (table, text) in files {
            let path = dir.path().join(format!("{table}.csv"));
            std::fs::write(&path, text).unwrap();
            let path = path.display().to_string();
            match *table {
                "transactions" => spec.transactions = vec![path],
                _ => spec.customers = vec![path],
            }
        }
        let store = dir.path().join("store");
        let (store, _) = SummaryStore::write(&store, &spec, &StoreOptions::default()).unwrap();
        let read = StoreRead {
            defer_purchases: counted,
            ..StoreRead::default()
        };
        let mut data = store.read(&read).unwrap();
        let options = Stage1Options {
            period: Period::Month,
            from: None,
            as_of: None,
            by: Vec::new(),
            activity_from_interactions: false,
            interactions_overview: false,
            survey: None,
            acquisition_costs: false,
            holdout_from: None,
            only_retention: counted,
            parts: crate::summary::Parts::All,
            reads_transactions: true,
        };
        prepare(&mut data, &options).unwrap()
    }

    #[test]
    fn a_store_without_signup_dates_is_counted_without_summaries() {
        let tx =
            "customer_id,order_date,amount\na,2024-01-05,10\nb,2024-02-10,20\na,2024-02-11,5\n";
        let s = stage_one(&[("transactions", tx)], true);
        assert!(s.purchases.is_none());
        let counts = s.retention.expect("counted from the purchase days");
        let (periods, _) = counts.figures(Period::Month, None);
        assert_eq!(
            periods.iter().map(|p| p.retained).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert_eq!(s.as_of, chrono::NaiveDate::from_ymd_opt(2024, 2, 11));
    }

    #[test]
    fn signup_dates_date_the_counted_cohorts_as_the_summaries_do() {
        // a: signed up before buying (Dec), a repeated row with no date keeps Dec;
        // b: signed up and bought in Feb; c: bought in Jan, signed up in Feb (new and retained
        // in Feb); d: signed up after the observation end; e: refunds only, an old signup
        // (not a customer: no cohort, no slot); f: never bought; g: bought, no signup row.
        let tx = "customer_id,order_date,amount\n\
                  a,2024-01-05,10\nb,2024-02-10,20\na,2024-02-11,5\nc,2024-01-20,3\n\
                  c,2024-02-02,4\nd,2024-01-09,8\ne,2024-01-15,-6\ng,2024-02-03,1\n";
        let customers = "customer_id,signup_date\na,2023-12-01\nb,2024-02-01\n\
                         c,2024-02-01\nd,2024-03-05\ne,2019-06-01\nf,2024-01-01\na,\n";
        let files = [("transactions", tx), ("customers", customers)];
        let counted = stage_one(&files, true);
        let counts = counted.retention.expect("counted from the purchase days");
        let counted = crate::metrics::retention::Retention::from_counts(&counts, Period::Month);
        let general = stage_one(&files, false);
        let summaries = general.purchases.expect("the general path's summaries");
        let general = crate::metrics::retention::retention(&summaries, &general.signup_periods);
        assert_eq!(counted, general);
        let cohorts: Vec<(String, u64)> = counted
            .cohorts
            .iter()
            .filter(|c| c.offset == 0)
            .map(|c| (c.cohort.clone(), c.customers))
            .collect();
        // Dec {a}; Jan: none dated there (d is dated Mar, after the end); Feb {b, c, g}.
        assert_eq!(cohorts, vec![("2023-12".into(), 1), ("2024-02".into(), 3)]);
        let feb = counted.periods.last().expect("Feb");
        // Feb: active {a, b, c, g}; new {b, c, g}; retained {a, c}; nobody reactivated.
        assert_eq!(
            (
                feb.customers_end,
                feb.new_customers,
                feb.retained,
                feb.reactivated
            ),
            (4, 3, 2, 0)
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// The counts are the same whatever the order of the rows (in code order, each
        /// customer is a run; otherwise they are grouped by a counting sort).
        #[test]
        fn any_row_order_gives_the_same_counts(
            rows in proptest::collection::vec((0u32..30, 0i32..500, 0u32..3, -5i64..20), 1..200),
            seed in proptest::prelude::any::<u64>(),
        ) {
            let rows: Vec<(u32, i32, u32, i64)> =
                rows.into_iter().map(|(c, d, o, r)| (c, 19000 + d, o, r * 1_000_000)).collect();
            let mut sorted = rows.clone();
            sorted.sort_by_key(|r| (r.0, r.1));
            let mut shuffled = rows.clone();
            // A deterministic shuffle by the seed.
            shuffled.sort_by_key(|r| (u64::from(r.0) ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ r.1 as u64);
            for period in [Period::Day, Period::Week, Period::Month] {
                let a = retention_counts(&days(&sorted), &[], period, None);
                let b = retention_counts(&days(&shuffled), &[], period, None);
                let c = retention_counts(&days(&rows), &[], period, Some(19300));
                let d = retention_counts(&days(&sorted), &[], period, Some(19300));
                proptest::prop_assert_eq!(
                    a.map(|(c, d)| (figures(&c), d)),
                    b.map(|(c, d)| (figures(&c), d))
                );
                proptest::prop_assert_eq!(
                    c.map(|(c, d)| (figures(&c), d)),
                    d.map(|(c, d)| (figures(&c), d))
                );
            }
        }
    }

    #[test]
    fn an_old_refund_alone_does_not_widen_the_counts() {
        // Customer 1's only day is a refund in 1970: not a customer, so daily counts start at
        // customer 0's first day, not 54 years of days earlier; a signup before it widens them.
        let jan = 19723;
        let rows = [
            (0, jan, 1, 5_000_000),
            (0, jan + 9, 1, 1_000_000),
            (1, 3, 0, -1),
        ];
        let (counts, as_of) = retention_counts(&days(&rows), &[], Period::Day, None).unwrap();
        assert_eq!((counts.periods(), as_of), ((jan, jan + 9), jan + 9));
        let signup = [Some(jan - 5), Some(0)];
        let (counts, _) = retention_counts(&days(&rows), &signup, Period::Day, None).unwrap();
        assert_eq!(counts.periods(), (jan - 5, jan + 9));
    }

    #[test]
    fn refunds_alone_are_nothing_to_count() {
        assert!(retention_counts(&days(&[(0, 19723, 0, -5)]), &[], Period::Month, None).is_none());
        assert!(retention_counts(&PurchaseDays::default(), &[], Period::Month, None).is_none());
    }
}
