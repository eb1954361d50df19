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
    use super::*;
    use crate::models::FitOptions;
    use crate::models::bgbb::BgBb;
    use crate::models::bgnbd::BgNbd;
    use crate::models::mbgnbd::MbgNbd;
    use crate::models::pareto_nbd::ParetoNbd;
    use crate::models::sbg::ShiftedBetaGeometric;

    fn recovered(model: &str, got: &[f64], se: &[Option<f64>], truth: &[f64]) {
        for ((g, s), t) in got.iter().zip(se).zip(truth) {
            let s = s.unwrap_or_else(|| panic!("{model}: no standard error"));
            assert!(
                (g - t).abs() <= 3.0 * s && ((g - t) / t).abs() < 0.15,
                "{model}: estimate {g} (SE {s}) vs true {t}; all: {got:?}"
            );
        }
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

    #[test]
    fn bgnbd_recovers_its_parameters() {
        let truth = BgNbdParams {
            r: 0.25,
            alpha: 4.0,
            a: 0.8,
            b: 2.5,
        };
        let obs = in_days(bgnbd(&truth, 20_000, 52.0, 1).unwrap());
        let fit = BgNbd::fit(&obs, 7.0, &FitOptions::default()).unwrap();
        let p = fit.params;
        recovered(
            "BG/NBD",
            &[p.r, p.alpha, p.a, p.b],
            &fit.diagnostics.standard_errors,
            &[truth.r, truth.alpha, truth.a, truth.b],
        );
    }

    #[test]
    fn mbgnbd_recovers_its_parameters() {
        let truth = MbgNbdParams {
            r: 0.5,
            alpha: 6.0,
            a: 0.9,
            b: 1.6,
        };
        let obs = in_days(mbgnbd(&truth, 20_000, 52.0, 2).unwrap());
        let fit = MbgNbd::fit(&obs, 7.0, &FitOptions::default()).unwrap();
        let p = fit.params;
        recovered(
            "MBG/NBD",
            &[p.r, p.alpha, p.a, p.b],
            &fit.diagnostics.standard_errors,
            &[truth.r, truth.alpha, truth.a, truth.b],
        );
    }

    #[test]
    fn pareto_nbd_recovers_its_parameters() {
        let truth = ParetoNbdParams {
            r: 0.55,
            alpha: 10.0,
            s: 0.6,
            beta: 12.0,
        };
        let obs = in_days(pareto_nbd(&truth, 20_000, 78.0, 3).unwrap());
        let fit = ParetoNbd::fit(&obs, 7.0, &FitOptions::default()).unwrap();
        let p = fit.params;
        // s and β are weakly identified over a short window (CDNOW's SE of β is half of β), so
        // the 15 % bound applies to r and α; all four stay within 3 SE.
        let se = &fit.diagnostics.standard_errors;
        recovered("Pareto/NBD", &[p.r, p.alpha], se, &[truth.r, truth.alpha]);
        for (g, (s, t)) in [p.s, p.beta]
            .iter()
            .zip(se.iter().skip(2).zip([truth.s, truth.beta]))
        {
            assert!((g - t).abs() <= 3.0 * s.unwrap(), "{p:?} {se:?}");
        }
    }

    #[test]
    fn bgbb_recovers_its_parameters() {
        let truth = BgBbParams {
            alpha: 1.2,
            beta: 0.75,
            gamma: 0.66,
            delta: 2.8,
        };
        let hist = bgbb(&truth, 50_000, 8, 4).unwrap();
        let c = crate::models::bgbb::compress(&hist);
        let fit = BgBb::fit(&c.0, &c.1, &FitOptions::default()).unwrap();
        let p = fit.params;
        recovered(
            "BG/BB",
            &[p.alpha, p.beta, p.gamma, p.delta],
            &fit.diagnostics.standard_errors,
            &[truth.alpha, truth.beta, truth.gamma, truth.delta],
        );
    }

    #[test]
    fn sbg_recovers_its_parameters() {
        let truth = SbgParams {
            alpha: 0.7,
            beta: 1.2,
        };
        let alive = sbg(&truth, 20_000, 12, 5).unwrap();
        let fit = ShiftedBetaGeometric::fit(&alive, &FitOptions::default()).unwrap();
        recovered(
            "sBG",
            &[fit.params.alpha, fit.params.beta],
            &fit.diagnostics.standard_errors,
            &[truth.alpha, truth.beta],
        );
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
