//! Probability models of customer lifetime value, fitted by maximum likelihood.
//!
//! - [`bgnbd`]: BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way"), the
//!   purchase and drop-out process of non-contractual customers.
//! - [`gamma_gamma`]: the Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV";
//!   Fader & Hardie 2013 note) and discounted CLV combining both.
//! - [`clv`]: fits both on an RFM table and scores every customer.
//! - [`sbg`]: the shifted-beta-geometric model of contractual (subscription) retention.
//! - [`pareto_nbd`]: Pareto/NBD (Schmittlein, Morrison & Colombo 1987), drop-out at any time.
//! - [`mbgnbd`]: modified BG/NBD (Batislam, Denizel & Filiztekin 2007), drop-out also right
//!   after the first purchase.
//! - [`bgbb`]: BG/BB (Fader, Hardie & Shang 2010) for discrete purchase opportunities.
//! - [`purchase`]: the choice between BG/NBD, Pareto/NBD and MBG/NBD behind one interface.
//! - [`simulate`]: draws histories from each model with known parameters.
//! - [`hyp2f1`]: the Gauss hypergeometric function the BG/NBD expectations need.
//! - [`fit`]: the optimizer glue shared by the models (argmin over log-parameters, standard
//!   errors from the Hessian).
//!
//! Inputs are per-customer [`RfmObservation`]s in the lifetimes convention (see
//! [`crate::metrics::rfm`]); identical observations are compressed into weighted rows before
//! fitting, and likelihoods are summed in parallel with rayon.
//!
//! **Time units are explicit**: a model is fitted in the unit of its observations (days or weeks);
//! every prediction takes horizons in that same unit, and the fitted value carries
//! `time_unit_days` so that a saved model cannot be scored in the wrong unit by accident.

pub mod audit;
pub mod bgbb;
pub mod bgnbd;
pub mod clv;
pub mod cohort_forecast;
pub mod compare;
pub mod covariates;
pub mod fit;
pub mod fitted;
pub mod gamma_gamma;
pub mod hyp2f1;
pub mod intervals;
pub mod mbgnbd;
pub mod pareto_nbd;
pub mod purchase;
pub mod sbg;
pub mod simulate;
pub mod summary_table;

use serde::{Deserialize, Serialize};

pub use fit::{FitDiagnostics, FitOptions};
pub(crate) use fit::{fit_rfm_model_with_gradient, fit_rfm_model_with_hessian};

use crate::{Error, Result};

/// One customer's purchase history summary.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RfmObservation {
    /// Repeat purchase occasions (x).
    pub frequency: f64,
    /// Time from the first to the last purchase (t_x).
    pub recency: f64,
    /// Time from the first purchase to the observation end (T).
    pub t: f64,
}

/// Distinct observations with how many customers share each.
#[derive(Debug, Clone, PartialEq)]
pub struct Compressed {
    /// Distinct observations.
    pub rows: Vec<RfmObservation>,
    /// Customers per row.
    pub weights: Vec<f64>,
}

impl Compressed {
    /// Number of customers represented.
    pub fn customers(&self) -> f64 {
        self.weights.iter().sum()
    }
}

/// Sums `f` over weighted rows in parallel, deterministically: fixed-size chunks are summed in
/// parallel and the partial sums added in order, so the result does not depend on how rayon
/// schedules the work (a plain parallel `sum` does, in the last bits, which would make reports
/// differ between runs).
pub(crate) fn par_weighted_sum<T: Sync>(
    rows: &[T],
    weights: &[f64],
    f: impl Fn(&T) -> f64 + Sync,
) -> f64 {
    use rayon::prelude::*;
    const CHUNK: usize = 4096;
    let partial: Vec<f64> = rows
        .par_chunks(CHUNK)
        .zip(weights.par_chunks(CHUNK))
        .map(|(r, w)| r.iter().zip(w).map(|(x, w)| w * f(x)).sum::<f64>())
        .collect();
    partial.iter().sum()
}

/// The distinct (x, T) pairs of `pairs` in first-seen order, and the index of each pair among
/// them. A purchase model's future (expected purchases, survival) depends on a customer's
/// history only through (x, T) once P(alive) is factored out, so it is computed once per
/// distinct pair. First-seen order keeps every sum over the pairs in one fixed order.
pub(crate) fn distinct_curves(
    pairs: impl Iterator<Item = (f64, f64)>,
) -> (Vec<(f64, f64)>, Vec<u32>) {
    let mut index: polars::prelude::PlHashMap<(u64, u64), u32> =
        polars::prelude::PlHashMap::default();
    let mut curves: Vec<(f64, f64)> = Vec::new();
    let of_each = pairs
        .map(|(x, t)| {
            *index.entry((x.to_bits(), t.to_bits())).or_insert_with(|| {
                curves.push((x, t));
                (curves.len() - 1) as u32
            })
        })
        .collect();
    (curves, of_each)
}

/// The `i`-th parameter of an optimizer's vector. The vectors have the model's fixed length, so
/// the NaN for a missing one cannot happen; if it did, the fit would fail loudly (a NaN
/// likelihood is an error), never panic.
pub(crate) fn at(values: &[f64], i: usize) -> f64 {
    values.get(i).copied().unwrap_or(f64::NAN)
}

/// σ(d) = 1/(1 + e^−d) and ln(1 + e^d), without overflow and with one exponential: the weight
/// of the second term of a two-term likelihood and the log of the sum, relative to the first.
/// ln(1 + e) rather than `ln_1p(e)`: e ≤ 1, so the absolute error is below 1.2e-16, far under
/// the rounding of a summed log-likelihood, and `ln` is about three times faster than `ln_1p`
/// (this is the innermost line of every fit).
pub(crate) fn logistic_and_softplus(d: f64) -> (f64, f64) {
    let e = (-d.abs()).exp();
    let q = 1.0 + e;
    let inv_q = 1.0 / q;
    if d > 0.0 {
        (inv_q, d + q.ln())
    } else {
        (e * inv_q, q.ln())
    }
}

/// Compresses identical (frequency, recency, T) rows into weighted rows, ordered by their values.
/// A million customers typically reduce to a few hundred thousand rows (CLVTools does the same).
/// The keys are sorted in parallel rather than hashed (twice as fast on a million rows), and the
/// order depends on the values only, so a table fits to the same last digit in any row order.
pub fn compress(observations: &[RfmObservation]) -> Compressed {
    use rayon::prelude::*;
    let mut keys: Vec<[u64; 3]> = observations
        .par_iter()
        .map(|o| [o.frequency.to_bits(), o.recency.to_bits(), o.t.to_bits()])
        .collect();
    keys.par_sort_unstable();
    let mut rows: Vec<RfmObservation> = Vec::new();
    let mut weights: Vec<f64> = Vec::new();
    let mut last: Option<[u64; 3]> = None;
    for key in keys {
        if last == Some(key)
            && let Some(w) = weights.last_mut()
        {
            *w += 1.0;
            continue;
        }
        let [x, tx, t] = key;
        rows.push(RfmObservation {
            frequency: f64::from_bits(x),
            recency: f64::from_bits(tx),
            t: f64::from_bits(t),
        });
        weights.push(1.0);
        last = Some(key);
    }
    Compressed { rows, weights }
}

/// Checks that observations are usable by a purchase model: whole frequency ≥ 0, 0 ≤ recency ≤ T,
/// and at least one repeat purchase (otherwise the purchase rate is not identified). Returns the
/// time scale that makes max T = 1.
pub(crate) fn validate_observations(model: &str, observations: &[RfmObservation]) -> Result<f64> {
    use rayon::prelude::*;
    if observations.is_empty() {
        return Err(Error::InsufficientData {
            what: model.into(),
            message: "no customers".into(),
        });
    }
    let valid = |o: &RfmObservation| {
        o.frequency >= 0.0
            && o.recency >= 0.0
            && o.t >= o.recency
            && o.frequency.fract() == 0.0
            && o.t.is_finite()
    };
    // One parallel pass (a million observations are memory-bound): whether all are valid, whether
    // any repeat purchase, the largest T.
    let (all_valid, any_repeat, max_t) = observations
        .par_chunks(1 << 14)
        .map(|chunk| {
            chunk.iter().fold((true, false, 0.0f64), |(v, r, m), o| {
                (v && valid(o), r || o.frequency > 0.0, m.max(o.t))
            })
        })
        .reduce(
            || (true, false, 0.0),
            |a, b| (a.0 && b.0, a.1 || b.1, a.2.max(b.2)),
        );
    if !all_valid && let Some(o) = observations.iter().find(|o| !valid(o)) {
        return Err(Error::InsufficientData {
            what: model.into(),
            message: format!(
                "invalid observation (frequency {}, recency {}, T {}): need whole frequency ≥ 0 and 0 ≤ recency ≤ T",
                o.frequency, o.recency, o.t
            ),
        });
    }
    if !any_repeat {
        return Err(Error::InsufficientData {
            what: model.into(),
            message: "no customer made a repeat purchase, so the purchase rate cannot be estimated"
                .into(),
        });
    }
    Ok(max_t.max(1e-9))
}

/// One compressed row for repeated likelihood passes: frequency, weight, and T and t_x as
/// indexes into [`RowSet::times`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct IndexedRow {
    pub x: f64,
    pub w: f64,
    pub t: u32,
    pub tx: u32,
}

/// Compressed rows laid out for the many likelihood passes of a fit. A million customers compress
/// to some hundred thousand distinct (x, t_x, T) rows, but those share only a few thousand
/// distinct times (whole days, or days/7): so ln(α + time) and 1/(α + time) are computed once per
/// distinct time and pass, and looked up per row, instead of two logarithms per row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RowSet {
    pub rows: Vec<IndexedRow>,
    /// Distinct T and t_x values, ascending.
    pub times: Vec<f64>,
    /// The largest frequency.
    pub max_x: usize,
}

impl RowSet {
    pub fn new(observations: &[RfmObservation], weights: &[f64]) -> RowSet {
        let mut times: Vec<f64> = observations.iter().flat_map(|o| [o.t, o.recency]).collect();
        times.sort_by(f64::total_cmp);
        times.dedup();
        let index = |v: f64| times.partition_point(|&t| t < v) as u32;
        let rows = observations
            .iter()
            .zip(weights)
            .map(|(o, &w)| IndexedRow {
                x: o.frequency,
                w,
                t: index(o.t),
                tx: index(o.recency),
            })
            .collect();
        let max_x = observations
            .iter()
            .map(|o| o.frequency)
            .fold(0.0f64, f64::max) as usize;
        RowSet { rows, times, max_x }
    }

    /// The distinct (x, t_x, T) rows of `observations` with their counts as weights: the same
    /// rows, in the same order, as `RowSet::new` of [`compress`]ed observations, built without
    /// sorting a million float triples. Distinct times (a few thousand) are collected by hashing,
    /// and each customer becomes one integer (x · m + index of t_x) · m + index of T, with m the
    /// number of distinct times, whose order is that of the values; a million of those sort several
    /// times faster than the float triples, and runs of equal keys are the distinct rows.
    pub fn from_observations(observations: &[RfmObservation]) -> RowSet {
        use polars::prelude::PlHashSet;
        use rayon::prelude::*;
        // +0.0 turns −0.0 into 0.0, which compare equal (as in `new`).
        let bits = |v: f64| (v + 0.0).to_bits();
        let distinct: PlHashSet<u64> = observations
            .par_chunks(1 << 16)
            .map(|chunk| {
                let mut set = PlHashSet::default();
                for o in chunk {
                    set.insert(bits(o.t));
                    set.insert(bits(o.recency));
                }
                set
            })
            .reduce(PlHashSet::default, |mut a, b| {
                a.extend(b);
                a
            });
        let mut times: Vec<f64> = distinct.into_iter().map(f64::from_bits).collect();
        times.sort_by(f64::total_cmp);
        let max_x = observations
            .iter()
            .map(|o| o.frequency)
            .fold(0.0f64, f64::max);
        let m = times.len() as u64;
        let fits = (max_x + 1.0) * (m as f64) * (m as f64) < u64::MAX as f64 / 2.0;
        if !fits {
            let c = compress(observations);
            return RowSet::new(&c.rows, &c.weights);
        }
        let index: polars::prelude::PlHashMap<u64, u64> = times
            .iter()
            .enumerate()
            .map(|(i, t)| (t.to_bits(), i as u64))
            .collect();
        let index_of = |v: f64| index.get(&bits(v)).copied().unwrap_or_default();
        let mut keys: Vec<u64> = observations
            .par_iter()
            .map(|o| ((o.frequency as u64) * m + index_of(o.recency)) * m + index_of(o.t))
            .collect();
        keys.par_sort_unstable();
        let rows: Vec<IndexedRow> = keys
            .par_chunk_by(|a, b| a == b)
            .map(|same| {
                let key = same.first().copied().unwrap_or_default();
                IndexedRow {
                    x: (key / (m * m)) as f64,
                    w: same.len() as f64,
                    t: (key % m) as u32,
                    tx: ((key / m) % m) as u32,
                }
            })
            .collect();
        RowSet {
            rows,
            times,
            max_x: max_x as usize,
        }
    }

    /// Σx over customers: the number of repeat purchases.
    pub fn total_x(&self) -> f64 {
        self.rows.iter().map(|r| r.w * r.x).sum()
    }

    /// The pooled repeat-purchase rate Σx / ΣT over customers, in the rows' time unit.
    pub fn repeat_rate(&self) -> f64 {
        let [x, t] = self.sum(|row, acc: &mut [f64; 2]| {
            acc[0] += row.w * row.x;
            acc[1] += row.w * at(&self.times, row.t as usize);
        });
        x / t
    }

    /// (ln(α + time), 1/(α + time)) for every distinct time.
    pub fn log_times(&self, alpha: f64) -> Vec<(f64, f64)> {
        self.times
            .iter()
            .map(|t| ((alpha + t).ln(), 1.0 / (alpha + t)))
            .collect()
    }

    /// Sums `add(row, accumulator)` over the rows, in parallel and deterministically (fixed
    /// chunks, partial sums added in order, as [`par_weighted_sum`]).
    pub fn sum<const N: usize>(&self, add: impl Fn(&IndexedRow, &mut [f64; N]) + Sync) -> [f64; N] {
        use rayon::prelude::*;
        const CHUNK: usize = 4096;
        let partial: Vec<[f64; N]> = self
            .rows
            .par_chunks(CHUNK)
            .map(|rows| {
                let mut acc = [0.0f64; N];
                for row in rows {
                    add(row, &mut acc);
                }
                acc
            })
            .collect();
        let mut total = [0.0f64; N];
        for p in &partial {
            for (t, v) in total.iter_mut().zip(p) {
                *t += v;
            }
        }
        total
    }
}

#[cfg(test)]
pub(crate) mod testdata {
    use super::RfmObservation;

    /// CDNOW sample, 39-week calibration (lifetimes 0.11.3 `cdnow_customers_summary.csv`).
    pub fn cdnow() -> Vec<RfmObservation> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/cdnow/cdnow_customers_summary.csv"
        );
        let mut r = csv::Reader::from_path(path).unwrap();
        r.records()
            .map(|rec| {
                let rec = rec.unwrap();
                let f = |i: usize| rec[i].parse::<f64>().unwrap();
                RfmObservation {
                    frequency: f(1),
                    recency: f(2),
                    t: f(3),
                }
            })
            .collect()
    }

    /// CDNOW with mean repeat spend (zbar).
    pub fn cdnow_spend() -> Vec<(f64, f64)> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/cdnow/cdnow_customers_summary_with_transactions.csv"
        );
        let mut r = csv::Reader::from_path(path).unwrap();
        r.records()
            .map(|rec| {
                let rec = rec.unwrap();
                (
                    rec[1].parse::<f64>().unwrap(),
                    rec[4].parse::<f64>().unwrap(),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_set_indexes_distinct_times() {
        let o = |x: f64, tx: f64, t: f64| RfmObservation {
            frequency: x,
            recency: tx,
            t,
        };
        let set = RowSet::new(&[o(2.0, 3.0, 10.0), o(0.0, 0.0, 3.0)], &[5.0, 1.0]);
        assert_eq!(set.times, vec![0.0, 3.0, 10.0]);
        assert_eq!(set.max_x, 2);
        let first = set.rows[0];
        assert_eq!((first.x, first.w, first.t, first.tx), (2.0, 5.0, 2, 1));
        let second = set.rows[1];
        assert_eq!((second.t, second.tx), (1, 0));
        let logs = set.log_times(2.0);
        assert!((logs[2].0 - 12f64.ln()).abs() < 1e-15 && (logs[2].1 - 1.0 / 12.0).abs() < 1e-15);
        // Weighted sums: Σ w·x = 10 and Σ w = 6.
        let sums = set.sum(|row, acc: &mut [f64; 2]| {
            acc[0] += row.w * row.x;
            acc[1] += row.w;
        });
        assert_eq!(sums, [10.0, 6.0]);
        // Σ w·x / Σ w·T = 10 / (5·10 + 1·3).
        assert_eq!(set.repeat_rate(), 10.0 / 53.0);
    }

    #[test]
    fn row_set_from_observations_equals_compressed_rows() {
        // The hashed-and-packed route gives the same rows, weights, times and order as
        // compressing first; on CDNOW (fractional weeks) and on random rows with many repeats
        // and zero recencies.
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let synthetic: Vec<RfmObservation> = (0..20_000)
            .map(|_| {
                let t = f64::from(rng.random_range(1u32..60)) / 7.0;
                let x = f64::from(rng.random_range(0u32..6));
                let tx = if x == 0.0 {
                    0.0
                } else {
                    t * f64::from(rng.random_range(0u32..=10)) / 10.0
                };
                RfmObservation {
                    frequency: x,
                    recency: tx,
                    t,
                }
            })
            .collect();
        for obs in [testdata::cdnow(), synthetic] {
            let c = compress(&obs);
            let by_compressing = RowSet::new(&c.rows, &c.weights);
            let direct = RowSet::from_observations(&obs);
            assert_eq!(direct.times, by_compressing.times);
            assert_eq!(direct.max_x, by_compressing.max_x);
            assert_eq!(direct.rows, by_compressing.rows);
        }
    }

    #[test]
    fn compression_keeps_every_customer() {
        let obs = testdata::cdnow();
        let c = compress(&obs);
        assert_eq!(c.customers() as usize, obs.len());
        assert!(c.rows.len() < obs.len());
        // Every distinct observation once, with its count.
        for (row, w) in c.rows.iter().zip(&c.weights) {
            assert_eq!(obs.iter().filter(|o| *o == row).count() as f64, *w);
        }
    }

    #[test]
    fn a_fit_does_not_depend_on_row_order() {
        let obs = testdata::cdnow();
        let mut reversed = obs.clone();
        reversed.reverse();
        let options = FitOptions::default();
        let a = bgnbd::BgNbd::fit(&obs, 7.0, &options).unwrap();
        let b = bgnbd::BgNbd::fit(&reversed, 7.0, &options).unwrap();
        assert_eq!(a, b);
    }
}
