//! Simulators that draw customer histories from each model's own story, with known parameters.
//!
//! They exist to test the estimators (fit what was simulated and get the parameters back, within
//! the standard errors the fit reports) and for users who want to see how a model behaves before
//! trusting it with their data. Each draws per-customer rates from the mixing distributions and
//! then the individual process, exactly as the papers describe it; all are deterministic for a
//! seed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Exp, Gamma};

use super::RfmObservation;
use super::bgbb::{BgBbParams, DiscreteObservation};
use super::bgnbd::BgNbdParams;
use super::mbgnbd::MbgNbdParams;
use super::pareto_nbd::ParetoNbdParams;
use super::sbg::SbgParams;
use crate::{Error, Result};

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::InvalidSetting {
        setting: "simulation parameters".into(),
        message: e.to_string(),
    }
}

/// Observation lengths: customers are spread evenly over `cohorts` acquisition times, so that T
/// runs from `t_max` down to `t_max · (1 − (cohorts−1)/cohorts)` (as with a quarter's
/// acquisitions in CDNOW).
fn observation_length(i: usize, customers: usize, t_max: f64, cohorts: usize) -> f64 {
    let cohort = i * cohorts / customers.max(1);
    t_max * (1.0 - cohort as f64 / cohorts as f64)
}

/// The Poisson purchase process with rate λ up to `until`, with a drop-out chance after each
/// repeat purchase (`p_after` = 0 for none). Returns (x, t_x).
fn purchases(rng: &mut ChaCha8Rng, lambda: f64, until: f64, p_after: f64) -> Result<(f64, f64)> {
    let gap = Exp::new(lambda).map_err(invalid)?;
    let (mut x, mut tx, mut now) = (0.0, 0.0, 0.0);
    loop {
        now += gap.sample(rng);
        if now > until {
            return Ok((x, tx));
        }
        x += 1.0;
        tx = now;
        if rng.random::<f64>() < p_after {
            return Ok((x, tx));
        }
    }
}

/// BG/NBD histories (Fader, Hardie & Lee 2005): λ ~ Gamma(r, α), drop-out after each repeat
/// purchase with p ~ Beta(a, b).
///
/// # Errors
/// [`Error::InvalidSetting`] for non-positive parameters.
pub fn bgnbd(
    p: &BgNbdParams,
    customers: usize,
    t_max: f64,
    seed: u64,
) -> Result<Vec<RfmObservation>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let rate = Gamma::new(p.r, 1.0 / p.alpha).map_err(invalid)?;
    let drop = Beta::new(p.a, p.b).map_err(invalid)?;
    (0..customers)
        .map(|i| {
            let t = observation_length(i, customers, t_max, 13);
            let (lambda, pd) = (rate.sample(&mut rng), drop.sample(&mut rng));
            let (x, tx) = purchases(&mut rng, lambda, t, pd)?;
            Ok(RfmObservation {
                frequency: x,
                recency: tx,
                t,
            })
        })
        .collect()
}

/// MBG/NBD histories (Batislam et al. 2007): as BG/NBD, but a customer may also drop out right
/// after the first purchase.
///
/// # Errors
/// [`Error::InvalidSetting`] for non-positive parameters.
pub fn mbgnbd(
    p: &MbgNbdParams,
    customers: usize,
    t_max: f64,
    seed: u64,
) -> Result<Vec<RfmObservation>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let rate = Gamma::new(p.r, 1.0 / p.alpha).map_err(invalid)?;
    let drop = Beta::new(p.a, p.b).map_err(invalid)?;
    (0..customers)
        .map(|i| {
            let t = observation_length(i, customers, t_max, 13);
            let (lambda, pd) = (rate.sample(&mut rng), drop.sample(&mut rng));
            let (x, tx) = if rng.random::<f64>() < pd {
                (0.0, 0.0)
            } else {
                purchases(&mut rng, lambda, t, pd)?
            };
            Ok(RfmObservation {
                frequency: x,
                recency: tx,
                t,
            })
        })
        .collect()
}

/// Pareto/NBD histories (Schmittlein et al. 1987): λ ~ Gamma(r, α), an exponential lifetime with
/// rate μ ~ Gamma(s, β).
///
/// # Errors
/// [`Error::InvalidSetting`] for non-positive parameters.
pub fn pareto_nbd(
    p: &ParetoNbdParams,
    customers: usize,
    t_max: f64,
    seed: u64,
) -> Result<Vec<RfmObservation>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let rate = Gamma::new(p.r, 1.0 / p.alpha).map_err(invalid)?;
    let death = Gamma::new(p.s, 1.0 / p.beta).map_err(invalid)?;
    (0..customers)
        .map(|i| {
            let t = observation_length(i, customers, t_max, 13);
            let (lambda, mu) = (rate.sample(&mut rng), death.sample(&mut rng));
            let lifetime = Exp::new(mu).map_err(invalid)?.sample(&mut rng);
            let (x, tx) = purchases(&mut rng, lambda, t.min(lifetime), 0.0)?;
            Ok(RfmObservation {
                frequency: x,
                recency: tx,
                t,
            })
        })
        .collect()
}

/// BG/BB histories (Fader, Hardie & Shang 2010) over `periods` opportunities: p ~ Beta(α, β),
/// death before each opportunity with θ ~ Beta(γ, δ).
///
/// # Errors
/// [`Error::InvalidSetting`] for non-positive parameters.
pub fn bgbb(
    p: &BgBbParams,
    customers: usize,
    periods: u32,
    seed: u64,
) -> Result<Vec<DiscreteObservation>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let buy = Beta::new(p.alpha, p.beta).map_err(invalid)?;
    let die = Beta::new(p.gamma, p.delta).map_err(invalid)?;
    Ok((0..customers)
        .map(|_| {
            let (pb, theta) = (buy.sample(&mut rng), die.sample(&mut rng));
            let (mut x, mut tx) = (0, 0);
            for i in 1..=periods {
                if rng.random::<f64>() < theta {
                    break;
                }
                if rng.random::<f64>() < pb {
                    x += 1;
                    tx = i;
                }
            }
            DiscreteObservation {
                frequency: x,
                recency: tx,
                periods,
            }
        })
        .collect())
}

/// sBG cohort (Fader & Hardie 2007): customers still active at renewals 0..=`renewals`, each
/// cancelling at every renewal with θ ~ Beta(α, β).
///
/// # Errors
/// [`Error::InvalidSetting`] for non-positive parameters.
pub fn sbg(p: &SbgParams, customers: usize, renewals: usize, seed: u64) -> Result<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let churn = Beta::new(p.alpha, p.beta).map_err(invalid)?;
    let mut alive = vec![0.0; renewals + 1];
    for _ in 0..customers {
        let theta = churn.sample(&mut rng);
        for slot in &mut alive {
            *slot += 1.0;
            if rng.random::<f64>() < theta {
                break;
            }
        }
    }
    Ok(alive)
}

#[cfg(test)]
mod tests {
    //! Parameter recovery: fit what was simulated; every estimate must lie within 3 standard
    //! errors (as reported by the fit) of the truth, and within 15 % of it.
    use rayon::prelude::*;

    use super::*;
    use crate::models::FitOptions;
    use crate::models::bgbb::BgBb;
    use crate::models::bgnbd::BgNbd;
    use crate::models::mbgnbd::MbgNbd;
    use crate::models::pareto_nbd::ParetoNbd;
    use crate::models::sbg::ShiftedBetaGeometric;

    /// Estimates and their standard errors.
    type Estimates = (Vec<f64>, Vec<Option<f64>>);

    /// One model's case: its true parameters, the fit of data simulated from them (estimates
    /// and standard errors, in the order of the truth), and how many leading parameters must
    /// also lie within 15 % of the truth.
    struct Case {
        model: &'static str,
        truth: &'static [f64],
        fit: fn(&[f64]) -> Estimates,
        within_15_pct: usize,
    }

    /// Rounds times to whole days of a week unit, as real data is, so that rows compress.
    fn in_days(obs: Vec<RfmObservation>) -> Vec<RfmObservation> {
        obs.into_iter()
            .map(|o| RfmObservation {
                frequency: o.frequency,
                recency: (o.recency * 7.0).floor() / 7.0,
                t: (o.t * 7.0).floor() / 7.0,
            })
            .collect()
    }

    fn cases() -> [Case; 5] {
        [
            Case {
                model: "BG/NBD",
                truth: &[0.25, 4.0, 0.8, 2.5],
                fit: |t| {
                    let truth = BgNbdParams {
                        r: t[0],
                        alpha: t[1],
                        a: t[2],
                        b: t[3],
                    };
                    let obs = in_days(bgnbd(&truth, 20_000, 52.0, 1).unwrap());
                    let fit = BgNbd::fit(&obs, 7.0, &FitOptions::default()).unwrap();
                    let p = fit.params;
                    (
                        vec![p.r, p.alpha, p.a, p.b],
                        fit.diagnostics.standard_errors,
                    )
                },
                within_15_pct: 4,
            },
            Case {
                model: "MBG/NBD",
                truth: &[0.5, 6.0, 0.9, 1.6],
                fit: |t| {
                    let truth = MbgNbdParams {
                        r: t[0],
                        alpha: t[1],
                        a: t[2],
                        b: t[3],
                    };
                    let obs = in_days(mbgnbd(&truth, 20_000, 52.0, 2).unwrap());
                    let fit = MbgNbd::fit(&obs, 7.0, &FitOptions::default()).unwrap();
                    let p = fit.params;
                    (
                        vec![p.r, p.alpha, p.a, p.b],
                        fit.diagnostics.standard_errors,
                    )
                },
                within_15_pct: 4,
            },
            Case {
                model: "Pareto/NBD",
                truth: &[0.55, 10.0, 0.6, 12.0],
                fit: |t| {
                    let truth = ParetoNbdParams {
                        r: t[0],
                        alpha: t[1],
                        s: t[2],
                        beta: t[3],
                    };
                    let obs = in_days(pareto_nbd(&truth, 20_000, 78.0, 3).unwrap());
                    let fit = ParetoNbd::fit(&obs, 7.0, &FitOptions::default()).unwrap();
                    let p = fit.params;
                    (
                        vec![p.r, p.alpha, p.s, p.beta],
                        fit.diagnostics.standard_errors,
                    )
                },
                // s and β are weakly identified over a short window (CDNOW's SE of β is half of
                // β), so the 15 % bound applies to r and α; all four stay within 3 SE.
                within_15_pct: 2,
            },
            Case {
                model: "BG/BB",
                truth: &[1.2, 0.75, 0.66, 2.8],
                fit: |t| {
                    let truth = BgBbParams {
                        alpha: t[0],
                        beta: t[1],
                        gamma: t[2],
                        delta: t[3],
                    };
                    let hist = bgbb(&truth, 50_000, 8, 4).unwrap();
                    let c = crate::models::bgbb::compress(&hist);
                    let fit = BgBb::fit(&c.0, &c.1, &FitOptions::default()).unwrap();
                    let p = fit.params;
                    (
                        vec![p.alpha, p.beta, p.gamma, p.delta],
                        fit.diagnostics.standard_errors,
                    )
                },
                within_15_pct: 4,
            },
            Case {
                model: "sBG",
                truth: &[0.7, 1.2],
                fit: |t| {
                    let truth = SbgParams {
                        alpha: t[0],
                        beta: t[1],
                    };
                    let alive = sbg(&truth, 20_000, 12, 5).unwrap();
                    let fit = ShiftedBetaGeometric::fit(&alive, &FitOptions::default()).unwrap();
                    (
                        vec![fit.params.alpha, fit.params.beta],
                        fit.diagnostics.standard_errors,
                    )
                },
                within_15_pct: 2,
            },
        ]
    }

    #[test]
    fn every_model_recovers_its_parameters() {
        // The fits are independent and each takes a while: run them side by side.
        cases().par_iter().for_each(|case| {
            let (got, se) = (case.fit)(case.truth);
            assert_eq!(got.len(), case.truth.len(), "{}", case.model);
            for (i, ((g, s), t)) in got.iter().zip(&se).zip(case.truth).enumerate() {
                let s = s.unwrap_or_else(|| panic!("{}: no standard error", case.model));
                assert!(
                    (g - t).abs() <= 3.0 * s,
                    "{}: estimate {g} (SE {s}) vs true {t}, beyond 3 SE; all: {got:?}",
                    case.model
                );
                assert!(
                    i >= case.within_15_pct || ((g - t) / t).abs() < 0.15,
                    "{}: estimate {g} vs true {t}, beyond 15 %; all: {got:?}",
                    case.model
                );
            }
        });
    }

    #[test]
    fn deterministic_for_a_seed() {
        let p = BgNbdParams {
            r: 0.25,
            alpha: 4.0,
            a: 0.8,
            b: 2.5,
        };
        assert_eq!(
            bgnbd(&p, 100, 52.0, 7).unwrap(),
            bgnbd(&p, 100, 52.0, 7).unwrap()
        );
        assert_ne!(
            bgnbd(&p, 100, 52.0, 7).unwrap(),
            bgnbd(&p, 100, 52.0, 8).unwrap()
        );
    }
}
