//! Every interval the report shows, checked against simulations with a known answer (issue 23).
//!
//! Each generator draws data from a process whose truth is known in closed form: survey answers
//! from fixed category shares, contracts with geometric lifetimes, purchases that stop when a
//! customer silently drops out. Each check replicates the data many times (seeded, so the test
//! is deterministic) and asserts that the point estimate is unbiased within its Monte Carlo
//! error and that the nominal 95% interval covers the truth in 93–97% of the replications.
//!
//! The fast variants run in CI (1,000–2,000 replications: a binomial standard error of 0.5–0.7
//! points, so the 93–97% band is three or more standard errors wide on each side). An
//! independent implementation (numpy, 1,500 replications) measured the inactivity median
//! interval's coverage at 95.9%. The
//! `#[ignore]`d variants run 10,000 replications; their measured coverage is quoted in
//! docs/metrics.md. Run them with `cargo test -p custmetrics --test it simulation -- --ignored
//! --nocapture`.

use chrono::NaiveDate;
use custmetrics::metrics::churn::{self, Contract, Survival};
use custmetrics::metrics::scores::{Csat, Nps};
use custmetrics::period::Period;
use custmetrics::summary::{CustomerRow, Summaries};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How often an interval covered the truth, and the estimates' errors, over replications.
#[derive(Default)]
struct Tally {
    covered: u32,
    reps: u32,
    errors: Vec<f64>,
}

impl Tally {
    /// One replication: the estimate, what it estimates in this sample (the population truth,
    /// or for survival the same customers' uncensored lifetimes, which takes the sampling noise
    /// out of the bias check), and whether the interval covered the population truth.
    fn add(&mut self, estimate: f64, reference: f64, covered: bool) {
        self.reps += 1;
        self.covered += u32::from(covered);
        self.errors.push(estimate - reference);
    }

    fn coverage(&self) -> f64 {
        f64::from(self.covered) / f64::from(self.reps)
    }

    /// Asserts 93–97% coverage and a mean error within four Monte Carlo standard errors of 0
    /// (plus `allowance`, for a bias the method is known to have, stated by the caller).
    fn check(&self, what: &str, allowance: f64) {
        let n = self.errors.len() as f64;
        let mean = self.errors.iter().sum::<f64>() / n;
        let var = self.errors.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let mc_error = (var / n).sqrt();
        println!(
            "{what}: coverage {:.2}% over {} replications; mean error {mean:+.4} \
             (Monte Carlo s.e. {mc_error:.4})",
            100.0 * self.coverage(),
            self.reps
        );
        assert!(
            (0.93..=0.97).contains(&self.coverage()),
            "{what}: 95% interval covered the truth in {:.2}% of {} replications",
            100.0 * self.coverage(),
            self.reps
        );
        assert!(
            mean.abs() <= 4.0 * mc_error + allowance,
            "{what}: mean error {mean} (Monte Carlo s.e. {mc_error})"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Generators with a known truth.

/// `n` NPS answers with promoter / passive / detractor shares `mix` (each answer a 10, an 8 or
/// a 3: only the category matters).
fn nps_answers(rng: &mut ChaCha8Rng, n: u64, mix: (f64, f64, f64)) -> [u64; 11] {
    let mut counts = [0u64; 11];
    for _ in 0..n {
        let u: f64 = rng.random();
        let score = if u < mix.0 {
            10
        } else if u < mix.0 + mix.1 {
            8
        } else {
            3
        };
        counts[score] += 1;
    }
    counts
}

/// `n` answers on 1–5, satisfied (4 or 5) with probability `p`.
fn csat_answers(rng: &mut ChaCha8Rng, n: u64, p: f64) -> [u64; 6] {
    let mut counts = [0u64; 6];
    for _ in 0..n {
        let satisfied = rng.random::<f64>() < p;
        let score = if satisfied {
            4 + rng.random_range(0..2)
        } else {
            1 + rng.random_range(0..3)
        };
        counts[score] += 1;
    }
    counts
}

/// A geometric number of trials before the first success, on {0, 1, ...}.
fn geometric0(rng: &mut ChaCha8Rng, p: f64) -> i32 {
    let u: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    (u.ln() / (1.0 - p).ln()).floor() as i32
}

/// The day the simulations' observation ends on, and the day their data starts (days since
/// 1970-01-01).
const START: i32 = 18_262; // 2020-01-01
const SPAN: i32 = 730;

fn day_to_date(day: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date") + chrono::Days::new(day as u64)
}

/// Contracts signed uniformly over two years, each lasting a geometric number of days with
/// daily cancellation probability `hazard` (so S(t) = P(T > t) = (1 − hazard)^(t + 1)); a
/// cancellation after the end is in the data, as a scheduled one would be.
fn contracts(rng: &mut ChaCha8Rng, n: usize, hazard: f64) -> Vec<Contract> {
    (0..n)
        .map(|i| {
            let start = START + rng.random_range(0..SPAN);
            Contract {
                customer_id: format!("c{i}").into(),
                start_day: start,
                end_day: Some(start + geometric0(rng, hazard)),
            }
        })
        .collect()
}

/// A discrete-time "buy till you die" process: a customer's first purchase is on a uniform day
/// of the two years; on each later day they first drop out with probability `q`, and if still
/// alive buy with probability `p`. Returns the customers as the data sees them (purchases up to
/// the end) and each one's true lifetime, first → last purchase, including purchases after the
/// end.
fn purchasers(rng: &mut ChaCha8Rng, n: usize, p: f64, q: f64) -> (Summaries, Vec<i32>) {
    let end = START + SPAN;
    let mut customers = Vec::with_capacity(n);
    let mut truth = Vec::with_capacity(n);
    for i in 0..n {
        let first = START + rng.random_range(0..SPAN);
        // The day of drop-out, counted from the first purchase: 1 + Geometric(q).
        let death = 1 + geometric0(rng, q);
        let (mut day, mut last_seen, mut last, mut days) = (0, 0, 0, 1u32);
        loop {
            day += 1 + geometric0(rng, p);
            if day >= death {
                break;
            }
            last = day;
            if first + day <= end {
                last_seen = day;
                days += 1;
            }
        }
        truth.push(last);
        customers.push(CustomerRow {
            customer_id: format!("c{i:06}").into(),
            first_day: first,
            last_day: first + last_seen,
            orders: days,
            purchase_days: days,
            revenue: 0.0,
            first_day_revenue: 0.0,
            segments: Box::default(),
        });
    }
    let summaries = Summaries {
        customers,
        activity: Vec::new(),
        gaps: Vec::new(),
        period: Period::Month,
        as_of: day_to_date(end),
        by: Vec::new(),
    };
    (summaries, truth)
}

/// S(t) of the purchase process: alive after t days with probability a^t (a = 1 − q), and
/// then buying again before dropping out with probability ap / (q + ap).
fn purchaser_survival(t: u32, p: f64, q: f64) -> f64 {
    let a = 1.0 - q;
    a.powi(t as i32) * a * p / (q + a * p)
}

/// The share of `lifetimes` longer than `t` days.
fn share_above(lifetimes: &[i32], t: u32) -> f64 {
    lifetimes.iter().filter(|&&l| l > t as i32).count() as f64 / lifetimes.len() as f64
}

/// The first whole day t with S(t) ≤ 0.5.
fn median_of(survival: impl Fn(u32) -> f64) -> u32 {
    (0..).find(|&t| survival(t) <= 0.5).unwrap_or(u32::MAX)
}

/// The curve's S, lower and upper bound at `t` (1 before the first step).
fn at(km: &Survival, t: u32) -> (f64, f64, f64) {
    km.curve
        .iter()
        .take_while(|p| p.days <= t)
        .last()
        .map_or((1.0, 1.0, 1.0), |p| (p.survival, p.ci_low, p.ci_high))
}

fn median_covered(km: &Survival, truth: u32) -> bool {
    km.median_ci_low.is_some_and(|lo| lo <= truth) && km.median_ci_high.is_none_or(|hi| truth <= hi)
}

// ---------------------------------------------------------------------------------------------
// NPS and CSAT.

fn nps_coverage(reps: u32, seed: u64) {
    // Typical, balanced, and very skewed answer mixes at small, medium and large n.
    let cases = [
        (30, (0.5, 0.3, 0.2)),
        (30, (0.85, 0.10, 0.05)),
        (100, (0.3, 0.4, 0.3)),
        (100, (0.7, 0.2, 0.1)),
        (400, (0.2, 0.3, 0.5)),
    ];
    for (case, &(n, mix)) in cases.iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(seed + case as u64);
        let truth = 100.0 * (mix.0 - mix.2);
        let mut tally = Tally::default();
        for _ in 0..reps {
            let nps = Nps::from_counts(&nps_answers(&mut rng, n, mix), 30).expect("answers");
            tally.add(
                nps.score,
                truth,
                nps.ci_low <= truth && truth <= nps.ci_high,
            );
        }
        tally.check(&format!("NPS n={n} mix={mix:?}"), 0.0);
    }
}

#[test]
fn nps_adjusted_wald_interval_covers_the_truth() {
    nps_coverage(2_000, 1);
}

#[test]
#[ignore = "10,000 replications per case; measured coverage is in docs/metrics.md"]
fn nps_adjusted_wald_interval_covers_the_truth_long() {
    nps_coverage(10_000, 101);
}

fn csat_coverage(reps: u32, seed: u64) {
    // Wilson's coverage oscillates with n and p (the binomial is discrete): these cases are
    // typical ones; the last draws p and n afresh in each replication, the average coverage a
    // tracker of many segments sees.
    let cases: [(u64, f64); 3] = [(50, 0.8), (400, 0.5), (400, 0.9)];
    for (case, &(n, p)) in cases.iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(seed + case as u64);
        let mut tally = Tally::default();
        for _ in 0..reps {
            let c = Csat::from_counts(&csat_answers(&mut rng, n, p), 4, 30).expect("answers");
            tally.add(c.score, p, c.ci_low <= p && p <= c.ci_high);
        }
        tally.check(&format!("CSAT n={n} p={p}"), 0.0);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 99);
    let mut tally = Tally::default();
    for _ in 0..reps {
        let p = rng.random_range(0.5..0.95);
        let n = rng.random_range(30..=400);
        let c = Csat::from_counts(&csat_answers(&mut rng, n, p), 4, 30).expect("answers");
        tally.add(c.score, p, c.ci_low <= p && p <= c.ci_high);
    }
    tally.check("CSAT, p in 0.5–0.95 and n in 30–400", 0.0);
}

#[test]
fn csat_wilson_interval_covers_the_truth() {
    csat_coverage(2_000, 11);
}

#[test]
#[ignore = "10,000 replications per case; measured coverage is in docs/metrics.md"]
fn csat_wilson_interval_covers_the_truth_long() {
    csat_coverage(10_000, 111);
}

// ---------------------------------------------------------------------------------------------
// Kaplan–Meier: contractual and inactivity lifetimes.

/// Daily cancellation probability of the contracts: a median of about 207 days.
const HAZARD: f64 = 1.0 / 300.0;

fn contractual_coverage(reps: u32, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let truth = |t: u32| (1.0 - HAZARD).powi(t as i32 + 1);
    let horizons = [90u32, 180, 365];
    let mut pointwise: Vec<Tally> = horizons.iter().map(|_| Tally::default()).collect();
    let mut median = Tally::default();
    let true_median = median_of(truth);
    for _ in 0..reps {
        let cs = contracts(&mut rng, 1_000, HAZARD);
        let km = churn::kaplan_meier("contractual", &churn::contract_lifetimes(&cs, START + SPAN));
        let uncensored: Vec<i32> = (cs.iter())
            .filter_map(|c| Some(c.end_day? - c.start_day))
            .collect();
        for (tally, &t) in pointwise.iter_mut().zip(&horizons) {
            let (s, lo, hi) = at(&km, t);
            tally.add(
                s,
                share_above(&uncensored, t),
                lo <= truth(t) && truth(t) <= hi,
            );
        }
        let m = km.median_days.map_or(f64::NAN, f64::from);
        let sample_median = median_of(|t| share_above(&uncensored, t));
        median.add(
            m,
            f64::from(sample_median),
            median_covered(&km, true_median),
        );
    }
    for (tally, &t) in pointwise.iter().zip(&horizons) {
        tally.check(&format!("contractual S({t})"), 0.0);
    }
    // A median is a whole day: the estimate and the sample median can differ by a day's step.
    median.check("contractual median", 1.0);
}

#[test]
fn contractual_kaplan_meier_intervals_cover_the_truth() {
    contractual_coverage(1_000, 21);
}

#[test]
#[ignore = "10,000 replications; measured coverage is in docs/metrics.md"]
fn contractual_kaplan_meier_intervals_cover_the_truth_long() {
    contractual_coverage(10_000, 121);
}

/// A customer buys every 15 days on average and drops out after 250 on average: a median
/// lifetime (first → last purchase) of about 159 days; with a 90-day threshold an alive
/// customer is mistaken for churned in about 0.2% of cases.
const BUY: f64 = 1.0 / 15.0;
const DROP: f64 = 1.0 / 250.0;
const THRESHOLD: u32 = 90;

fn inactivity_coverage(reps: u32, customers: usize, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let truth = |t: u32| purchaser_survival(t, BUY, DROP);
    let horizons = [30u32, 90, 180, 365];
    let mut pointwise: Vec<Tally> = horizons.iter().map(|_| Tally::default()).collect();
    let mut median = Tally::default();
    let true_median = median_of(truth);
    for rep in 0..reps {
        let (s, lifetimes) = purchasers(&mut rng, customers, BUY, DROP);
        if rep == 0 {
            // The closed form and the generator agree (a check on the harness itself).
            assert!((share_above(&lifetimes, 180) - truth(180)).abs() < 0.04);
        }
        let km = churn::kaplan_meier("inactivity", &churn::inactivity_lifetimes(&s, THRESHOLD));
        // The true lifetimes of the customers in the curve.
        let end = s.as_of_day();
        let kept: Vec<i32> = (s.customers.iter().zip(&lifetimes))
            .filter(|(c, _)| churn::inactivity_lifetime(c, end, THRESHOLD).is_some())
            .map(|(_, &l)| l)
            .collect();
        for (tally, &t) in pointwise.iter_mut().zip(&horizons) {
            let (est, lo, hi) = at(&km, t);
            tally.add(est, share_above(&kept, t), lo <= truth(t) && truth(t) <= hi);
        }
        let m = km.median_days.map_or(f64::NAN, f64::from);
        let sample_median = median_of(|t| share_above(&kept, t));
        median.add(
            m,
            f64::from(sample_median),
            median_covered(&km, true_median),
        );
    }
    for (tally, &t) in pointwise.iter().zip(&horizons) {
        // The threshold rule takes an alive customer whose last 90 days had no purchase for
        // churned (about 0.2% of those alive at the end): S(t) comes out a little low.
        tally.check(&format!("inactivity S({t})"), 0.001);
    }
    median.check("inactivity median", 1.0);
}

#[test]
fn inactivity_kaplan_meier_intervals_cover_the_truth() {
    inactivity_coverage(2_000, 1_000, 31);
}

#[test]
#[ignore = "10,000 replications; measured coverage is in docs/metrics.md"]
fn inactivity_kaplan_meier_intervals_cover_the_truth_long() {
    inactivity_coverage(10_000, 2_000, 131);
}

/// The rule before issue 23 (censoring an active customer at the observation end) on the same
/// simulated customers: the median it reports is far above the truth and its interval almost
/// never covers it. Kept as a test so that the reason for the rule stays visible.
#[test]
fn censoring_at_the_observation_end_overstates_the_lifetime() {
    let mut rng = ChaCha8Rng::seed_from_u64(41);
    let true_median = median_of(|t| purchaser_survival(t, BUY, DROP));
    let (mut covered, mut sum, reps) = (0, 0.0, 200);
    for _ in 0..reps {
        let (s, _) = purchasers(&mut rng, 2_000, BUY, DROP);
        let end = s.as_of_day();
        let old: Vec<(u32, bool)> = (s.customers.iter())
            .map(|c| {
                if c.last_day + THRESHOLD as i32 <= end {
                    ((c.last_day - c.first_day) as u32, true)
                } else {
                    ((end - c.first_day) as u32, false)
                }
            })
            .collect();
        let km = churn::kaplan_meier("old rule", &old);
        covered += u32::from(median_covered(&km, true_median));
        sum += km.median_days.map_or(f64::NAN, f64::from);
    }
    let mean = sum / f64::from(reps);
    println!("old rule: mean median {mean:.1} vs truth {true_median}; covered {covered}/{reps}");
    assert!(mean > 1.2 * f64::from(true_median));
    assert!(covered < reps / 10);
}
