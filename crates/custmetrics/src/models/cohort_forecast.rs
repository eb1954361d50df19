//! Forecast cohort cells: the cohort triangle continued past the observation end with the
//! purchase model's expected active customers and the spend model's expected revenue, for the
//! next few periods of every acquisition cohort (customers grouped by the period of their first
//! purchase, as the models date a customer's birth).
//!
//! For a customer with history (x, t_x, T) and a future period that is the window
//! (T + u, T + u + w] in model time units,
//!
//! - P(active in the period) = P(alive at T | x, t_x, T) · P(a purchase in the window | alive at
//!   T, x, T) ([`PurchaseFit::active_if_alive`]), so the cell's expected active customers are
//!   the sum over the cohort;
//! - expected revenue = E\[purchases in the window\] · E\[spend per purchase | x, m̄\] (Gamma-Gamma),
//!   E\[purchases in the window\] = P(alive) · (E\[Y(u+w) | alive\] − E\[Y(u) | alive\]).
//!
//! Both depend on recency only through P(alive), and the Gamma-Gamma mean is linear in the mean
//! spend m̄, so customers are grouped by (cohort, x, t_x, T) with their count and spend sum, and
//! the window curves are computed once per distinct (x, T).
//!
//! Intervals (with [`IntervalOptions`]) come from the same parameter draws as the CLV
//! intervals ([`super::intervals`]): every cell recomputed under each draw, the quantiles of the
//! draws' cell totals.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use super::gamma_gamma::GammaGammaFit;
use super::intervals::{Interval, IntervalOptions, interval_of, parameter_draws};
use super::purchase::PurchaseFit;
use crate::metrics::rfm::Rfm;
use crate::period::{Period, days_since_epoch};
use crate::{Error, Result};

/// The forecast cells of every cohort for the periods after the observation end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortForecast {
    /// The period length (`month`, ...).
    pub period: String,
    /// The last day the model saw: the forecast covers the periods after the one holding it.
    pub observed_to: String,
    /// Periods forecast.
    pub periods: u32,
    /// One cell per cohort and future period, by cohort then period.
    pub cells: Vec<ForecastCell>,
    /// The interval level, when intervals were computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<f64>,
    /// Why intervals were asked for but not computed (the point forecasts stand).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intervals_unavailable: Option<String>,
}

/// One forecast cell: a cohort in a future period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForecastCell {
    /// Cohort label (period of first purchase).
    pub cohort: String,
    /// The future period.
    pub period: String,
    /// Periods since the cohort period.
    pub offset: u32,
    /// Cohort size (customers with a purchase, first in the cohort period).
    pub customers: u64,
    /// Expected customers of the cohort active (with a purchase) in the period.
    pub expected_active: f64,
    /// expected_active / customers: the forecast of the triangle's rate.
    pub rate: f64,
    /// Expected revenue of the cohort in the period.
    pub expected_revenue: f64,
    /// Interval of expected_active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_interval: Option<Interval>,
    /// Interval of expected_revenue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revenue_interval: Option<Interval>,
}

/// Customers sharing (cohort, x, t_x, T) and whether their spend history counts.
#[derive(Clone, Copy)]
struct Group {
    cohort: usize,
    curve: usize,
    frequency: f64,
    recency: f64,
    t: f64,
    /// x as Gamma-Gamma weighs it: 0 for customers without a positive mean repeat spend.
    spend_frequency: f64,
    count: u64,
    spend_sum: f64,
}

/// Forecasts the next `periods` periods of every cohort of `table` (an RFM table in the models'
/// time unit, observed to `end_day`, days since the epoch). `first_period[i]` is the period of
/// customer i's first purchase.
///
/// # Errors
/// [`Error::InvalidSetting`] when the models cannot predict a window (the hypergeometric
/// function, Gamma-Gamma's q ≤ 1), or `first_period` does not match the table.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forecast_cohorts(
    table: &Rfm,
    first_period: &[i32],
    period: Period,
    end_day: i32,
    purchase: &PurchaseFit,
    spend: &GammaGammaFit,
    periods: u32,
    intervals: Option<&IntervalOptions>,
) -> Result<CohortForecast> {
    if first_period.len() != table.customers.len() {
        return Err(Error::InvalidSetting {
            setting: "forecast".into(),
            message: format!(
                "{} cohort periods for {} customers",
                first_period.len(),
                table.customers.len()
            ),
        });
    }
    let unit = f64::from(table.time_unit_days.max(1));
    let end_date = crate::period::date_from_days(end_day);
    let last_observed = period.index(end_date);
    // Each future period as a window (T + u, T + u + w] of the model's time.
    let windows: Vec<(i32, f64, f64)> = (1..=periods as i32)
        .map(|k| {
            let p = last_observed + k;
            let start = days_since_epoch(period.start(p));
            let end = days_since_epoch(period.end(p));
            (
                p,
                f64::from(start - 1 - end_day) / unit,
                f64::from(end - start + 1) / unit,
            )
        })
        .collect();

    let mut cohort_index: BTreeMap<i32, usize> = first_period.iter().map(|&c| (c, 0)).collect();
    for (k, slot) in cohort_index.values_mut().enumerate() {
        *slot = k;
    }
    let cohorts: Vec<i32> = cohort_index.keys().copied().collect();
    let (curves, curve_of) = super::distinct_curves(
        table
            .customers
            .iter()
            .map(|c| (f64::from(c.frequency), c.t)),
    );
    // Customers sorted by (cohort, x, t_x, T, history), then by their index, so that each
    // group's spend is summed in table order and the groups come in key order (what a
    // BTreeMap keyed by the tuple gave, at a fraction of the time: one parallel sort instead
    // of millions of tree inserts).
    type Key = (u32, u32, u64, u64, bool, u32);
    let mut keyed: Vec<Key> = table
        .customers
        .par_iter()
        .zip(first_period)
        .enumerate()
        .map(|(i, (c, p))| {
            let cohort = cohort_index.get(p).copied().unwrap_or(0) as u32;
            let history = c.frequency > 0 && c.monetary_value > 0.0;
            (
                cohort,
                c.frequency,
                c.recency.to_bits(),
                c.t.to_bits(),
                history,
                i as u32,
            )
        })
        .collect();
    keyed.par_sort_unstable();
    let groups: Vec<Group> = keyed
        .chunk_by(|a, b| (a.0, a.1, a.2, a.3, a.4) == (b.0, b.1, b.2, b.3, b.4))
        .filter_map(|run| {
            let &(cohort, _, _, _, history, first) = run.first()?;
            let c = table.customers.get(first as usize)?;
            let x = f64::from(c.frequency);
            let mut spend_sum = 0.0;
            if history {
                for &(.., i) in run {
                    spend_sum += table
                        .customers
                        .get(i as usize)
                        .map_or(0.0, |c| c.monetary_value);
                }
            }
            Some(Group {
                cohort: cohort as usize,
                curve: curve_of.get(first as usize).copied().unwrap_or(0) as usize,
                frequency: x,
                recency: c.recency,
                t: c.t,
                spend_frequency: if history { x } else { 0.0 },
                count: run.len() as u64,
                spend_sum,
            })
        })
        .collect();
    drop(keyed);
    let mut sizes = vec![0u64; cohorts.len()];
    for g in &groups {
        if let Some(n) = sizes.get_mut(g.cohort) {
            *n += g.count;
        }
    }

    let estimate = cell_totals(&groups, &curves, &windows, cohorts.len(), purchase, spend)?;
    let mut level = None;
    let mut intervals_unavailable = None;
    let mut per_draw: Vec<Vec<(f64, f64)>> = Vec::new();
    if let Some(options) = intervals {
        let drawn = parameter_draws(purchase, spend, options).and_then(|draws| {
            draws
                .par_iter()
                .map(|(p, g)| cell_totals(&groups, &curves, &windows, cohorts.len(), p, g))
                .collect::<Result<Vec<_>>>()
        });
        match drawn {
            Ok(d) => {
                per_draw = d;
                level = Some(options.level);
            }
            Err(e) => intervals_unavailable = Some(e.to_string()),
        }
    }

    let mut cells = Vec::with_capacity(estimate.len());
    for (ci, &cohort) in cohorts.iter().enumerate() {
        for (wi, &(p, _, _)) in windows.iter().enumerate() {
            let at = ci * windows.len() + wi;
            let (active, revenue) = estimate.get(at).copied().unwrap_or((f64::NAN, f64::NAN));
            let customers = sizes.get(ci).copied().unwrap_or(0);
            let over_draws = |f: fn(&(f64, f64)) -> f64| -> Option<Interval> {
                level.map(|l| {
                    interval_of(
                        per_draw
                            .iter()
                            .map(|d| d.get(at).map_or(f64::NAN, f))
                            .collect(),
                        l,
                    )
                })
            };
            cells.push(ForecastCell {
                cohort: period.label(cohort),
                period: period.label(p),
                offset: u32::try_from(p - cohort).unwrap_or(0),
                customers,
                expected_active: active,
                rate: if customers > 0 {
                    active / customers as f64
                } else {
                    0.0
                },
                expected_revenue: revenue,
                active_interval: over_draws(|v| v.0),
                revenue_interval: over_draws(|v| v.1),
            });
        }
    }
    Ok(CohortForecast {
        period: period.name().into(),
        observed_to: end_date.to_string(),
        periods,
        cells,
        level,
        intervals_unavailable,
    })
}

/// (expected active, expected revenue) per cohort and window, cohort-major, under one
/// parameter set; sums in the groups' fixed order.
fn cell_totals(
    groups: &[Group],
    curves: &[(f64, f64)],
    windows: &[(i32, f64, f64)],
    cohorts: usize,
    purchase: &PurchaseFit,
    spend: &GammaGammaFit,
) -> Result<Vec<(f64, f64)>> {
    // Per distinct (x, T) and window: P(active | alive) and E[purchases in the window | alive].
    let per_curve: Vec<Vec<(f64, f64)>> = curves
        .par_iter()
        .map(|&(x, t)| {
            windows
                .iter()
                .map(|&(_, u, w)| {
                    let active = purchase.active_if_alive(u, w, x, t)?;
                    let before = purchase.expected_purchases_if_alive(u, x, t)?;
                    let after = purchase.expected_purchases_if_alive(u + w, x, t)?;
                    Ok((active, after - before))
                })
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<_>>()?;
    // Each group's P(alive) and expected spend (the costly part) in parallel; the cells are
    // then summed in the groups' order, as before.
    let per_group: Vec<(f64, f64)> = groups
        .par_iter()
        .map(|g| -> Result<(f64, f64)> {
            let alive = purchase.probability_alive(g.frequency, g.recency, g.t);
            let count = g.count as f64;
            // Gamma-Gamma's mean is linear in m̄: the group's spend sum is count × E[M | x, mean m̄].
            let mean_spend = if g.spend_frequency > 0.0 {
                g.spend_sum / count
            } else {
                0.0
            };
            let spend_total =
                count * spend.conditional_expected_average_profit(g.spend_frequency, mean_spend)?;
            Ok((alive, spend_total))
        })
        .collect::<Result<_>>()?;
    let mut cells = vec![(0.0, 0.0); cohorts * windows.len()];
    for (g, &(alive, spend_total)) in groups.iter().zip(&per_group) {
        let count = g.count as f64;
        let Some(curve) = per_curve.get(g.curve) else {
            continue;
        };
        for (wi, &(active, purchases)) in curve.iter().enumerate() {
            if let Some(cell) = cells.get_mut(g.cohort * windows.len() + wi) {
                cell.0 += alive * count * active;
                cell.1 += alive * purchases * spend_total;
            }
        }
    }
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::rfm::RfmRow;
    use crate::models::FitOptions;
    use crate::models::purchase::PurchaseModel;

    fn row(frequency: u32, recency: f64, t: f64, monetary_value: f64) -> RfmRow {
        RfmRow {
            customer_id: crate::summary::CustomerId::default(),
            frequency,
            recency,
            t,
            monetary_value,
            days_since_last: 0,
            orders: frequency + 1,
            revenue: 0.0,
            r_score: 1,
            f_score: 1,
            m_score: 1,
            segment: None,
        }
    }

    fn models() -> (PurchaseFit, GammaGammaFit) {
        let obs = crate::models::testdata::cdnow();
        let purchase = PurchaseModel::Bgnbd
            .fit(&obs, 7.0, &FitOptions::default())
            .unwrap();
        let spend: Vec<(f64, f64)> = crate::models::testdata::cdnow_spend();
        let spend =
            crate::models::gamma_gamma::GammaGamma::fit(&spend, &FitOptions::default()).unwrap();
        (purchase, spend)
    }

    #[test]
    fn a_cell_is_the_sum_of_its_customers_predictions() {
        let (purchase, spend) = models();
        // Observed to Sunday 2024-03-31 (a month's end) in weeks: April is (T, T + 30/7].
        let end = days_since_epoch(chrono::NaiveDate::from_ymd_opt(2024, 3, 31).unwrap());
        let table = Rfm {
            time_unit_days: 7,
            customers: vec![
                row(2, 3.0, 10.0, 25.0),
                row(0, 0.0, 6.0, 0.0),
                row(5, 8.5, 9.0, 40.0),
                row(2, 3.0, 10.0, 35.0),
            ],
            segments: BTreeMap::new(),
            by_segment: Vec::new(),
        };
        let january = Period::Month.index(chrono::NaiveDate::from_ymd_opt(2024, 1, 15).unwrap());
        let first = [january, january + 1, january, january];
        let f = forecast_cohorts(
            &table,
            &first,
            Period::Month,
            end,
            &purchase,
            &spend,
            2,
            None,
        )
        .unwrap();
        assert_eq!(f.cells.len(), 4, "two cohorts × two periods");
        let cell = &f.cells[0];
        assert_eq!(
            (cell.cohort.as_str(), cell.period.as_str()),
            ("2024-01", "2024-04")
        );
        assert_eq!((cell.offset, cell.customers), (3, 3));
        // By hand: customers 0, 2 and 3, each P(alive) × P(active | alive).
        let (u, w) = (0.0, 30.0 / 7.0);
        let mut active = 0.0;
        let mut revenue = 0.0;
        for c in [
            &table.customers[0],
            &table.customers[2],
            &table.customers[3],
        ] {
            let x = f64::from(c.frequency);
            let alive = purchase.probability_alive(x, c.recency, c.t);
            active += alive * purchase.active_if_alive(u, w, x, c.t).unwrap();
            let purchases = purchase
                .conditional_expected_purchases(w, x, c.recency, c.t)
                .unwrap();
            revenue += purchases
                * spend
                    .conditional_expected_average_profit(x, c.monetary_value)
                    .unwrap();
        }
        assert!(
            (cell.expected_active - active).abs() < 1e-12,
            "{} vs {active}",
            cell.expected_active
        );
        assert!(
            (cell.expected_revenue - revenue).abs() < 1e-9,
            "{} vs {revenue}",
            cell.expected_revenue
        );
        assert!((cell.rate - active / 3.0).abs() < 1e-12);
        // May is (T + 30/7, T + 61/7].
        let may = &f.cells[1];
        assert_eq!((may.period.as_str(), may.offset), ("2024-05", 4));
        let c = &table.customers[1];
        let lone = &f.cells[2];
        assert_eq!((lone.cohort.as_str(), lone.customers), ("2024-02", 1));
        let want = purchase.probability_alive(0.0, 0.0, c.t)
            * purchase.active_if_alive(0.0, w, 0.0, c.t).unwrap();
        assert!((lone.expected_active - want).abs() < 1e-12);
    }

    /// Customers simulated from a model's own story past the observation end: their history at
    /// T and whether they bought in the window (T + u, T + u + w].
    fn simulate_past_the_end(
        model: PurchaseModel,
        params: [f64; 4],
        customers: usize,
        (big_t, u, w): (f64, f64, f64),
        seed: u64,
    ) -> (Vec<RfmRow>, u64) {
        use rand::{Rng, SeedableRng};
        use rand_distr::{Beta, Distribution, Exp, Gamma};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let [r, alpha, third, fourth] = params;
        let rate = Gamma::new(r, 1.0 / alpha).unwrap();
        let mut rows = Vec::with_capacity(customers);
        let mut active = 0;
        for _ in 0..customers {
            let lambda: f64 = rate.sample(&mut rng);
            // Drop-out: after each purchase with p (BG/NBD), or at an exponential time.
            let (p_after, lifetime) = match model {
                PurchaseModel::ParetoNbd => {
                    let mu: f64 = Gamma::new(third, 1.0 / fourth).unwrap().sample(&mut rng);
                    (0.0, Exp::new(mu).unwrap().sample(&mut rng))
                }
                _ => (
                    Beta::new(third, fourth).unwrap().sample(&mut rng),
                    f64::INFINITY,
                ),
            };
            let gap = Exp::new(lambda).unwrap();
            let (mut x, mut tx, mut now, mut bought_in_window) = (0u32, 0.0, 0.0, false);
            // MBG/NBD: the first purchase may be the last.
            let gone_at_once = model == PurchaseModel::Mbgnbd && rng.random::<f64>() < p_after;
            loop {
                now += gap.sample(&mut rng);
                if gone_at_once || now > lifetime || now > big_t + u + w {
                    break;
                }
                if now <= big_t {
                    x += 1;
                    tx = now;
                } else if now > big_t + u {
                    bought_in_window = true;
                    break;
                }
                if rng.random::<f64>() < p_after {
                    break;
                }
            }
            active += u64::from(bought_in_window);
            rows.push(row(x, tx, big_t, 20.0));
        }
        (rows, active)
    }

    #[test]
    fn forecasts_match_customers_simulated_past_the_observation_end() {
        // With the true parameters, the expected active customers of a future month must match
        // how many simulated customers did buy in it, within sampling error (4 SE).
        let (_, spend) = models();
        let end = days_since_epoch(chrono::NaiveDate::from_ymd_opt(2024, 3, 31).unwrap());
        // Weeks; T = 20 weeks; May 2024 is (T + 30/7, T + 61/7].
        let (big_t, u, w) = (20.0, 30.0 / 7.0, 31.0 / 7.0);
        for (model, params) in [
            (PurchaseModel::Bgnbd, [0.5, 4.0, 0.8, 2.5]),
            (PurchaseModel::Mbgnbd, [0.5, 4.0, 0.8, 2.5]),
            (PurchaseModel::ParetoNbd, [0.6, 8.0, 0.7, 12.0]),
        ] {
            let fit = model
                .fit(
                    &crate::models::testdata::cdnow(),
                    7.0,
                    &FitOptions::default(),
                )
                .unwrap()
                .with_params(&params);
            let (customers, actual) =
                simulate_past_the_end(model, params, 40_000, (big_t, u, w), 5);
            let table = Rfm {
                time_unit_days: 7,
                customers,
                segments: BTreeMap::new(),
                by_segment: Vec::new(),
            };
            let cohort = Period::Month.index(chrono::NaiveDate::from_ymd_opt(2023, 11, 1).unwrap());
            let first = vec![cohort; table.customers.len()];
            let f = forecast_cohorts(&table, &first, Period::Month, end, &fit, &spend, 2, None)
                .unwrap();
            let may = &f.cells[1];
            assert_eq!(may.period, "2024-05");
            // Var of a sum of Bernoullis ≤ its mean.
            let se = may.expected_active.sqrt();
            assert!(
                (may.expected_active - actual as f64).abs() < 4.0 * se,
                "{}: expected {:.1} active in May, {actual} simulated (SE {se:.1})",
                model.label(),
                may.expected_active
            );
        }
    }

    #[test]
    fn intervals_surround_the_forecast_and_are_reproducible() {
        let (purchase, spend) = models();
        let end = days_since_epoch(chrono::NaiveDate::from_ymd_opt(1997, 9, 30).unwrap());
        let obs = crate::models::testdata::cdnow();
        let table = Rfm {
            time_unit_days: 7,
            customers: obs
                .iter()
                .map(|o| row(o.frequency as u32, o.recency, o.t, 30.0))
                .collect(),
            segments: BTreeMap::new(),
            by_segment: Vec::new(),
        };
        let first: Vec<i32> = obs
            .iter()
            .map(|o| {
                let day = end - (o.t * 7.0).round() as i32;
                Period::Quarter.index(crate::period::date_from_days(day))
            })
            .collect();
        let options = IntervalOptions::new(60, 0.9, 7).unwrap();
        let run = || {
            forecast_cohorts(
                &table,
                &first,
                Period::Quarter,
                end,
                &purchase,
                &spend,
                2,
                Some(&options),
            )
            .unwrap()
        };
        let f = run();
        assert_eq!(f, run(), "same seed, same intervals");
        assert_eq!(f.level, Some(0.9));
        for cell in &f.cells {
            let iv = cell.active_interval.unwrap();
            assert!(
                iv.low <= cell.expected_active && cell.expected_active <= iv.high,
                "{cell:?}"
            );
            assert!(iv.low < iv.high);
            assert!(cell.rate > 0.0 && cell.rate < 1.0);
        }
        // Fewer of each cohort are active in the second forecast quarter than in the first.
        for pair in f.cells.chunks(2) {
            assert!(pair[1].expected_active < pair[0].expected_active);
        }
    }
}
