//! Maximum-likelihood fitting shared by the models.
//!
//! Parameters are positive, so the optimizer works on θ = ln(parameters), unconstrained (as
//! lifetimes, BTYD and CLVTools do). The objective is the mean negative log-likelihood plus
//! `penalizer · Σ θ²`. Recipe: Nelder-Mead from the start point (robust on the flat, ridged
//! surfaces these models have), then an L-BFGS polish with central-difference gradients, kept only
//! when it lowers the objective; the fit counts as converged when the gradient norm at the optimum
//! is small. Other start points are tried when one fails. Standard errors come from the inverse
//! Hessian of the total negative log-likelihood in θ, mapped to the parameters by the delta method
//! (SE(p) = p · SE(θ)).
//!
//! The routes the models call are `fit_rfm_model_with_gradient` and
//! `fit_rfm_model_with_hessian` (analytic derivatives): each checks and compresses the
//! observations, rescales time so that max T = 1, maximises, and converts the estimate back to
//! the observations' unit. `maximise` (derivative-free) serves the fits without derivatives
//! (covariate fits of Pareto/NBD, BG/BB, sBG) and is the fallback when L-BFGS fails.

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::neldermead::NelderMead;
use argmin::solver::quasinewton::LBFGS;

use serde::{Deserialize, Serialize};

use super::{RfmObservation, RowSet, validate_observations};
use crate::{Error, Result};

/// A fit counts as converged when the gradient of the mean objective in θ is at most this long.
const CONVERGED_GRADIENT: f64 = 1e-3;

/// The objective in θ = ln(parameters).
struct Objective<'a> {
    nll_mean: &'a (dyn Fn(&[f64]) -> f64 + Sync),
    penalizer: f64,
}

impl Objective<'_> {
    fn value(&self, theta: &[f64]) -> f64 {
        let params: Vec<f64> = theta.iter().map(|t| t.exp()).collect();
        let v =
            (self.nll_mean)(&params) + self.penalizer * theta.iter().map(|t| t * t).sum::<f64>();
        // Invalid regions are infinitely bad, never NaN (argmin would propagate a NaN).
        if v.is_finite() { v } else { f64::INFINITY }
    }
}

impl CostFunction for Objective<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, p: &Self::Param) -> std::result::Result<f64, argmin::core::Error> {
        Ok(self.value(p))
    }
}

impl Gradient for Objective<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, p: &Self::Param) -> std::result::Result<Vec<f64>, argmin::core::Error> {
        let f =
            |x: &Vec<f64>| -> std::result::Result<f64, argmin::core::Error> { Ok(self.value(x)) };
        finitediff::vec::central_diff(&f)(p)
    }
}

fn gradient_norm(obj: &Objective<'_>, theta: &[f64]) -> f64 {
    match obj.gradient(&theta.to_vec()) {
        Ok(g) if g.iter().all(|x| x.is_finite()) => g.iter().map(|x| x * x).sum::<f64>().sqrt(),
        _ => f64::INFINITY,
    }
}

/// Result of [`maximise`]: the parameters and the diagnostics.
pub(crate) struct Estimate {
    pub params: Vec<f64>,
    pub diagnostics: FitDiagnostics,
}

/// Maximises a log-likelihood.
///
/// `nll_mean(params)` is the mean negative log-likelihood per customer; `starts` are candidate
/// start points (natural parameters). `customers` and `rows` feed the diagnostics.
pub(crate) fn maximise(
    model: &str,
    nll_mean: &(dyn Fn(&[f64]) -> f64 + Sync),
    starts: &[Vec<f64>],
    customers: f64,
    rows: usize,
    options: &FitOptions,
) -> Result<Estimate> {
    let obj = Objective {
        nll_mean,
        penalizer: options.penalizer,
    };
    let mut iterations = 0u64;
    let mut best: Option<(Vec<f64>, f64)> = None;
    let mut last_problem = String::from("no start point");
    for start in starts {
        let theta0: Vec<f64> = start.iter().map(|p| p.max(1e-6).ln()).collect();
        let mut simplex = vec![theta0.clone()];
        for i in 0..theta0.len() {
            let mut v = theta0.clone();
            if let Some(x) = v.get_mut(i) {
                *x += 0.5;
            }
            simplex.push(v);
        }
        let nm = NelderMead::new(simplex)
            .with_sd_tolerance(1e-12)
            .map_err(|e| optimizer_error(model, &e))?;
        let res = Executor::new(
            Objective {
                nll_mean,
                penalizer: options.penalizer,
            },
            nm,
        )
        .configure(|s| s.max_iters(options.max_iterations))
        .run()
        .map_err(|e| optimizer_error(model, &e))?;
        iterations += res.state().get_iter();
        let Some(mut theta) = res.state().get_best_param().cloned() else {
            continue;
        };
        let mut cost = obj.value(&theta);
        // Polish with L-BFGS; keep it only if it improves the objective.
        let lbfgs = LBFGS::new(MoreThuenteLineSearch::new(), 7)
            .with_tolerance_grad(1e-9)
            .and_then(|s| s.with_tolerance_cost(1e-14))
            .map_err(|e| optimizer_error(model, &e))?;
        let theta_nm = theta.clone();
        if let Ok(res) = Executor::new(
            Objective {
                nll_mean,
                penalizer: options.penalizer,
            },
            lbfgs,
        )
        .configure(|s| s.param(theta_nm).max_iters(options.max_iterations.min(500)))
        .run()
        {
            iterations += res.state().get_iter();
            if let Some(t) = res.state().get_best_param() {
                let c = obj.value(t);
                if c < cost {
                    theta = t.clone();
                    cost = c;
                }
            }
        }
        if !cost.is_finite() {
            last_problem = "the likelihood is not finite anywhere the optimizer looked".into();
            continue;
        }
        let g = gradient_norm(&obj, &theta);
        if g > CONVERGED_GRADIENT {
            last_problem = format!("the gradient is still {g:.2e} at the best point");
        }
        if best.as_ref().is_none_or(|(_, c)| cost < *c) {
            best = Some((theta, cost));
        }
        if g <= CONVERGED_GRADIENT {
            break;
        }
    }
    let Some((theta, _)) = best.filter(|(t, _)| gradient_norm(&obj, t) <= CONVERGED_GRADIENT)
    else {
        return Err(Error::ModelDidNotConverge {
            model: model.into(),
            iterations,
            message: format!(
                "{last_problem}; try a penalizer (e.g. 0.001), another time unit (weeks instead of days), or more data"
            ),
        });
    };
    let params: Vec<f64> = theta.iter().map(|t| t.exp()).collect();
    let ll = -(nll_mean)(&params) * customers;
    let inverse = inverse_hessian(nll_mean, &theta, customers);
    Ok(estimate(params, ll, inverse, iterations, customers, rows))
}

/// An estimate with its diagnostics: information criteria from the log-likelihood `ll`,
/// standard errors and the covariance of θ from `inverse`, the inverse of the total NLL's
/// Hessian in θ = ln(parameters) (`None` when it could not be inverted).
pub(crate) fn estimate(
    params: Vec<f64>,
    ll: f64,
    inverse: Option<Vec<Vec<f64>>>,
    iterations: u64,
    customers: f64,
    rows: usize,
) -> Estimate {
    let k = params.len() as f64;
    let standard_errors = standard_errors_from_inverse(&params, inverse.as_ref());
    // Only a covariance that can be sampled from is kept: symmetric with a positive diagonal
    // (positive definiteness is checked where it is factored).
    let covariance = inverse.filter(|m| {
        m.len() == params.len()
            && m.iter().enumerate().all(|(i, row)| {
                row.len() == params.len()
                    && row.iter().all(|v| v.is_finite())
                    && row.get(i).is_some_and(|v| *v > 0.0)
            })
    });
    Estimate {
        params,
        diagnostics: FitDiagnostics {
            log_likelihood: ll,
            aic: 2.0 * k - 2.0 * ll,
            bic: k * customers.ln() - 2.0 * ll,
            iterations,
            converged: true,
            standard_errors,
            customers: customers as u64,
            distinct_rows: rows as u64,
            log_param_covariance: covariance,
        },
    }
}

/// SE of the natural parameters from the inverse of the total NLL's Hessian in θ (delta method,
/// SE(p) = p · SE(θ)); `None` for all when the Hessian could not be inverted.
fn standard_errors_from_inverse(
    params: &[f64],
    inverse: Option<&Vec<Vec<f64>>>,
) -> Vec<Option<f64>> {
    let Some(inv) = inverse else {
        return vec![None; params.len()];
    };
    params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let var = inv.get(i).and_then(|row| row.get(i)).copied()?;
            (var.is_finite() && var > 0.0).then(|| p * var.sqrt())
        })
        .collect()
}

/// The mean negative log-likelihood and its gradient in the natural parameters.
pub(crate) type ValueAndGradient<'a> = &'a (dyn Fn(&[f64]) -> (f64, Vec<f64>) + Sync);

/// A point θ with the objective and its gradient there.
type Evaluated = (Vec<f64>, f64, Vec<f64>);

/// The objective in θ = ln(parameters) with an analytic gradient. L-BFGS asks for the cost and
/// then the gradient at the same point; both come from one pass over the data, so the last pass
/// is cached.
struct SmoothObjective<'a> {
    f: ValueAndGradient<'a>,
    penalizer: f64,
    last: std::sync::Mutex<Option<Evaluated>>,
}

impl SmoothObjective<'_> {
    fn eval(&self, theta: &[f64]) -> (f64, Vec<f64>) {
        if let Ok(last) = self.last.lock()
            && let Some((t, v, g)) = last.as_ref()
            && t.as_slice() == theta
        {
            return (*v, g.clone());
        }
        let params: Vec<f64> = theta.iter().map(|t| t.exp()).collect();
        let (v, g) = (self.f)(&params);
        let v = v + self.penalizer * theta.iter().map(|t| t * t).sum::<f64>();
        let g: Vec<f64> = g
            .iter()
            .zip(&params)
            .zip(theta)
            .map(|((g, p), t)| g * p + 2.0 * self.penalizer * t)
            .collect();
        let out = if v.is_finite() && g.iter().all(|x| x.is_finite()) {
            (v, g)
        } else {
            (f64::INFINITY, vec![0.0; theta.len()])
        };
        if let Ok(mut last) = self.last.lock() {
            *last = Some((theta.to_vec(), out.0, out.1.clone()));
        }
        out
    }
}

impl CostFunction for SmoothObjective<'_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, p: &Self::Param) -> std::result::Result<f64, argmin::core::Error> {
        Ok(self.eval(p).0)
    }
}

impl Gradient for SmoothObjective<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, p: &Self::Param) -> std::result::Result<Vec<f64>, argmin::core::Error> {
        Ok(self.eval(p).1)
    }
}

/// Maximises a log-likelihood whose gradient is known analytically: L-BFGS alone from each start
/// point (no Nelder-Mead, no finite differences), which needs a few dozen passes over the data
/// instead of hundreds. Falls back to [`maximise`] when no start converges. Standard errors come
/// from central differences of the analytic gradient.
pub(crate) fn maximise_with_gradient(
    model: &str,
    f: ValueAndGradient<'_>,
    starts: &[Vec<f64>],
    customers: f64,
    rows: usize,
    options: &FitOptions,
) -> Result<Estimate> {
    let objective = || SmoothObjective {
        f,
        penalizer: options.penalizer,
        last: std::sync::Mutex::new(None),
    };
    let check = objective();
    let mut iterations = 0u64;
    let mut best: Option<(Vec<f64>, f64)> = None;
    for start in starts {
        let theta0: Vec<f64> = start.iter().map(|p| p.max(1e-6).ln()).collect();
        // The mean log-likelihood of 10⁵–10⁶ rows carries rounding noise of about 1e-8 in its
        // gradient: a tighter tolerance has the line search chase that noise (on a million
        // customers, 150 more passes over the data for no change in the printed estimates).
        let Ok(lbfgs) = LBFGS::new(MoreThuenteLineSearch::new(), 7)
            .with_tolerance_grad(1e-7)
            .and_then(|s| s.with_tolerance_cost(1e-15))
        else {
            continue;
        };
        let Ok(res) = Executor::new(objective(), lbfgs)
            .configure(|s| s.param(theta0).max_iters(options.max_iterations.min(1000)))
            .run()
        else {
            continue;
        };
        iterations += res.state().get_iter();
        let Some(theta) = res.state().get_best_param().cloned() else {
            continue;
        };
        let (cost, g) = check.eval(&theta);
        let norm = g.iter().map(|x| x * x).sum::<f64>().sqrt();
        if cost.is_finite()
            && norm <= CONVERGED_GRADIENT
            && best.as_ref().is_none_or(|(_, c)| cost < *c)
        {
            best = Some((theta, cost));
            break;
        }
    }
    let Some((theta, _)) = best else {
        let nll = |p: &[f64]| f(p).0;
        return maximise(model, &nll, starts, customers, rows, options);
    };
    Ok(estimate_at(f, &theta, iterations, customers, rows))
}

/// The mean negative log-likelihood with its gradient and Hessian in the natural parameters.
pub(crate) type ValueGradientHessian<'a> =
    &'a (dyn Fn(&[f64]) -> (f64, Vec<f64>, Vec<Vec<f64>>) + Sync);

/// The objective (penalty included) with its gradient and Hessian in θ = ln(parameters), from
/// the derivatives `g`, `h` in the parameters p = e^θ: ∂θᵢ = pᵢ gᵢ and
/// ∂θᵢ∂θⱼ = pᵢ pⱼ hᵢⱼ + δᵢⱼ pᵢ gᵢ. `None` where anything is not finite.
fn derivatives_in_theta(
    value: f64,
    g: &[f64],
    h: &[Vec<f64>],
    theta: &[f64],
    penalizer: f64,
) -> Option<(f64, Vec<f64>, Vec<Vec<f64>>)> {
    let p: Vec<f64> = theta.iter().map(|t| t.exp()).collect();
    let value = value + penalizer * theta.iter().map(|t| t * t).sum::<f64>();
    let gt: Vec<f64> = (0..theta.len())
        .map(|i| super::at(g, i) * super::at(&p, i) + 2.0 * penalizer * super::at(theta, i))
        .collect();
    let ht: Vec<Vec<f64>> = (0..theta.len())
        .map(|i| {
            (0..theta.len())
                .map(|j| {
                    let hij = h.get(i).map_or(f64::NAN, |row| super::at(row, j));
                    let diagonal = if i == j {
                        super::at(g, i) * super::at(&p, i) + 2.0 * penalizer
                    } else {
                        0.0
                    };
                    super::at(&p, i) * super::at(&p, j) * hij + diagonal
                })
                .collect()
        })
        .collect();
    let finite = value.is_finite()
        && gt.iter().all(|v| v.is_finite())
        && ht.iter().flatten().all(|v| v.is_finite());
    finite.then_some((value, gt, ht))
}

/// Solves (H + μI) s = −g by Cholesky; `None` when H + μI is not positive definite.
fn damped_newton_step(h: &[Vec<f64>], g: &[f64], mu: f64) -> Option<Vec<f64>> {
    let n = g.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let hij = h.get(i)?.get(j)? + if i == j { mu } else { 0.0 };
            let li: &Vec<f64> = l.get(i)?;
            let lj: &Vec<f64> = l.get(j)?;
            let dot: f64 = li.iter().zip(lj).take(j).map(|(a, b)| a * b).sum();
            let v = if i == j {
                let d = hij - dot;
                if !(d > 0.0 && d.is_finite()) {
                    return None;
                }
                d.sqrt()
            } else {
                (hij - dot) / lj.get(j)?
            };
            *l.get_mut(i)?.get_mut(j)? = v;
        }
    }
    // L y = −g, then Lᵀ s = y.
    let mut y = vec![0.0; n];
    for i in 0..n {
        let li = l.get(i)?;
        let dot: f64 = li.iter().zip(&y).take(i).map(|(a, b)| a * b).sum();
        *y.get_mut(i)? = (-g.get(i)? - dot) / li.get(i)?;
    }
    let mut s = vec![0.0; n];
    for i in (0..n).rev() {
        let dot: f64 = ((i + 1)..n)
            .map(|k| {
                l.get(k).and_then(|row| row.get(i)).copied().unwrap_or(0.0)
                    * s.get(k).copied().unwrap_or(0.0)
            })
            .sum();
        *s.get_mut(i)? = (y.get(i)? - dot) / l.get(i)?.get(i)?;
    }
    Some(s)
}

/// A point reached by [`newton`]: θ, the objective's derivatives in θ there (penalty included)
/// and the raw mean NLL derivatives in the parameters (for the standard errors).
struct NewtonPoint {
    theta: Vec<f64>,
    value: f64,
    gradient: Vec<f64>,
    hessian: Vec<Vec<f64>>,
    raw: (f64, Vec<f64>, Vec<Vec<f64>>),
    iterations: u64,
}

/// Newton's method with Levenberg–Marquardt damping, in θ: from θ₀, step s solving
/// (H + μI) s = −g, accepted when the objective falls (then μ shrinks), else μ grows and the
/// step is retried; μ also grows until H + μI is positive definite, so far from the optimum the
/// step turns towards steepest descent. Steps are capped at 2 in each ln(parameter) (a factor
/// e² per iteration). argmin's trust-region solver would do the same steps but has no gradient
/// tolerance to stop on, so it would spend passes over the data after convergence.
fn newton(
    f: ValueGradientHessian<'_>,
    theta0: &[f64],
    options: &FitOptions,
) -> Option<NewtonPoint> {
    const GRADIENT_TOLERANCE: f64 = 1e-7;
    let evaluate = |theta: &[f64]| -> Option<NewtonPoint> {
        let p: Vec<f64> = theta.iter().map(|t| t.exp()).collect();
        let raw = f(&p);
        let (value, gradient, hessian) =
            derivatives_in_theta(raw.0, &raw.1, &raw.2, theta, options.penalizer)?;
        Some(NewtonPoint {
            theta: theta.to_vec(),
            value,
            gradient,
            hessian,
            raw,
            iterations: 0,
        })
    };
    let norm = |g: &[f64]| g.iter().map(|x| x * x).sum::<f64>().sqrt();
    let mut current = evaluate(theta0)?;
    let mut iterations = 0;
    let mut mu = 0.0f64;
    for _ in 0..options.max_iterations.min(200) {
        if norm(&current.gradient) <= GRADIENT_TOLERANCE {
            break;
        }
        let mut moved = false;
        for _ in 0..30 {
            let Some(mut step) = damped_newton_step(&current.hessian, &current.gradient, mu) else {
                mu = (mu * 10.0).max(1e-6);
                continue;
            };
            let longest = step.iter().fold(0.0f64, |m, s| m.max(s.abs()));
            if longest > 2.0 {
                step.iter_mut().for_each(|s| *s *= 2.0 / longest);
            }
            let theta: Vec<f64> = current
                .theta
                .iter()
                .zip(&step)
                .map(|(t, s)| t + s)
                .collect();
            match evaluate(&theta) {
                Some(next) if next.value < current.value => {
                    current = next;
                    mu = if mu < 1e-9 { 0.0 } else { mu / 10.0 };
                    moved = true;
                    break;
                }
                _ => mu = (mu * 10.0).max(1e-6),
            }
        }
        // No step lowers the objective: at the optimum within rounding, or stuck.
        if !moved {
            break;
        }
        iterations += 1;
    }
    current.iterations = iterations;
    Some(current)
}

/// Maximises a log-likelihood whose gradient and Hessian are known analytically, by damped
/// Newton steps from each start point (a handful of passes over the data where L-BFGS needs
/// dozens); the standard errors come from the Hessian at the optimum, with no further passes.
/// Falls back to [`maximise_with_gradient`] when no start converges.
pub(crate) fn maximise_newton(
    model: &str,
    f: ValueGradientHessian<'_>,
    starts: &[Vec<f64>],
    customers: f64,
    rows: usize,
    options: &FitOptions,
) -> Result<Estimate> {
    let mut iterations = 0u64;
    for start in starts {
        let theta0: Vec<f64> = start.iter().map(|p| p.max(1e-6).ln()).collect();
        let Some(point) = newton(f, &theta0, options) else {
            continue;
        };
        iterations += point.iterations;
        let norm = point.gradient.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm <= CONVERGED_GRADIENT {
            return Ok(estimate_from_hessian(&point, iterations, customers, rows));
        }
    }
    let value_and_gradient = |p: &[f64]| -> (f64, Vec<f64>) {
        let (v, g, _) = f(p);
        (v, g)
    };
    maximise_with_gradient(model, &value_and_gradient, starts, customers, rows, options)
}

/// The estimate at an optimum found by [`newton`]: log-likelihood, information criteria and
/// standard errors from the analytic Hessian of the total NLL in θ (delta method).
fn estimate_from_hessian(
    point: &NewtonPoint,
    iterations: u64,
    customers: f64,
    rows: usize,
) -> Estimate {
    let theta = &point.theta;
    let params: Vec<f64> = theta.iter().map(|t| t.exp()).collect();
    let (value, g, h) = &point.raw;
    // Without the penalty: the standard errors are those of the likelihood.
    let inverse = derivatives_in_theta(*value, g, h, theta, 0.0).and_then(|(_, _, ht)| {
        let total: Vec<Vec<f64>> = ht
            .iter()
            .map(|row| row.iter().map(|v| v * customers).collect())
            .collect();
        invert(&total)
    });
    estimate(
        params,
        -value * customers,
        inverse,
        iterations,
        customers,
        rows,
    )
}

/// Whether `params` is an optimum of the mean negative log-likelihood `f` (plus the penalty):
/// the gradient in θ = ln(parameters) is as small as [`maximise_with_gradient`] demands.
pub(crate) fn is_optimum(f: ValueAndGradient<'_>, params: &[f64], options: &FitOptions) -> bool {
    let objective = SmoothObjective {
        f,
        penalizer: options.penalizer,
        last: std::sync::Mutex::new(None),
    };
    let theta: Vec<f64> = params.iter().map(|p| p.ln()).collect();
    let (cost, g) = objective.eval(&theta);
    cost.is_finite() && g.iter().map(|x| x * x).sum::<f64>().sqrt() <= CONVERGED_GRADIENT
}

/// The estimate at an optimum θ of `f`: log-likelihood, information criteria and standard errors
/// (Hessian of the total NLL in θ by central differences of the analytic gradient).
pub(crate) fn estimate_at(
    f: ValueAndGradient<'_>,
    theta: &[f64],
    iterations: u64,
    customers: f64,
    rows: usize,
) -> Estimate {
    let theta = theta.to_vec();
    let params: Vec<f64> = theta.iter().map(|t| t.exp()).collect();
    let ll = -f(&params).0 * customers;
    let grad_theta = |t: &[f64]| -> Vec<f64> {
        let p: Vec<f64> = t.iter().map(|x| x.exp()).collect();
        let (_, g) = f(&p);
        g.iter().zip(&p).map(|(g, p)| g * p * customers).collect()
    };
    let n = theta.len();
    let mut h = vec![vec![0.0; n]; n];
    for i in 0..n {
        let step = 1e-5 * theta.get(i).map_or(1.0, |t| t.abs().max(1.0));
        let (mut up, mut down) = (theta.clone(), theta.clone());
        if let (Some(u), Some(d)) = (up.get_mut(i), down.get_mut(i)) {
            *u += step;
            *d -= step;
        }
        let (gu, gd) = (grad_theta(&up), grad_theta(&down));
        for (j, (a, b)) in gu.iter().zip(&gd).enumerate() {
            if let Some(cell) = h.get_mut(i).and_then(|row| row.get_mut(j)) {
                *cell = (a - b) / (2.0 * step);
            }
        }
    }
    let symmetric: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    let a = h.get(i).and_then(|r| r.get(j)).copied().unwrap_or(0.0);
                    let b = h.get(j).and_then(|r| r.get(i)).copied().unwrap_or(0.0);
                    (a + b) / 2.0
                })
                .collect()
        })
        .collect();
    estimate(params, ll, invert(&symmetric), iterations, customers, rows)
}

fn optimizer_error(model: &str, e: &argmin::core::Error) -> Error {
    Error::ModelDidNotConverge {
        model: model.into(),
        iterations: 0,
        message: format!("optimizer failed: {e}"),
    }
}

/// The inverse of the Hessian of the total NLL in θ: the asymptotic covariance of θ, whose
/// diagonal gives the standard errors (delta method).
///
/// The Hessian comes from second differences of the likelihood itself with a step of 1e-4 in
/// θ: truncation error ~h² and rounding error ~ε·|NLL|/h² are then both around 1e-8 relative.
/// (A finite-difference Hessian of a finite-difference gradient, with steps near √ε, amplifies
/// the likelihood's rounding noise: it moved Pareto/NBD's SEs on CDNOW by 6 % when only the
/// order of the rows changed.)
fn inverse_hessian(
    nll_mean: &(dyn Fn(&[f64]) -> f64 + Sync),
    theta: &[f64],
    customers: f64,
) -> Option<Vec<Vec<f64>>> {
    const H: f64 = 1e-4;
    let n = theta.len();
    let total = |steps: &[(usize, f64)]| -> f64 {
        let p: Vec<f64> = theta
            .iter()
            .enumerate()
            .map(|(k, t)| {
                let shift: f64 = steps.iter().filter(|(i, _)| *i == k).map(|(_, s)| s).sum();
                (t + shift).exp()
            })
            .collect();
        nll_mean(&p) * customers
    };
    let centre = total(&[]);
    let mut h = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in i..n {
            let value = if i == j {
                (total(&[(i, H)]) - 2.0 * centre + total(&[(i, -H)])) / (H * H)
            } else {
                (total(&[(i, H), (j, H)]) - total(&[(i, H), (j, -H)]) - total(&[(i, -H), (j, H)])
                    + total(&[(i, -H), (j, -H)]))
                    / (4.0 * H * H)
            };
            if let Some(cell) = h.get_mut(i).and_then(|row| row.get_mut(j)) {
                *cell = value;
            }
            if let Some(cell) = h.get_mut(j).and_then(|row| row.get_mut(i)) {
                *cell = value;
            }
        }
    }
    invert(&h)
}

/// Inverts a small symmetric matrix by Gauss-Jordan elimination with partial pivoting.
pub(crate) fn invert(m: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let mut a: Vec<Vec<f64>> = m
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut r = row.clone();
            r.extend((0..n).map(|j| if i == j { 1.0 } else { 0.0 }));
            r
        })
        .collect();
    for col in 0..n {
        let pivot = (col..n).max_by(|&x, &y| {
            let vx = a.get(x).and_then(|r| r.get(col)).map_or(0.0, |v| v.abs());
            let vy = a.get(y).and_then(|r| r.get(col)).map_or(0.0, |v| v.abs());
            vx.total_cmp(&vy)
        })?;
        a.swap(col, pivot);
        let p = *a.get(col)?.get(col)?;
        if p.abs() < 1e-300 || !p.is_finite() {
            return None;
        }
        let pivot_row: Vec<f64> = a.get(col)?.iter().map(|v| v / p).collect();
        for (r, row) in a.iter_mut().enumerate() {
            if r == col {
                *row = pivot_row.clone();
                continue;
            }
            let factor = *row.get(col)?;
            for (v, pv) in row.iter_mut().zip(&pivot_row) {
                *v -= factor * pv;
            }
        }
    }
    Some(
        a.into_iter()
            .map(|r| r.into_iter().skip(n).collect())
            .collect(),
    )
}

// The fitting routes the models call: data preparation, time rescaling, and the options and
// diagnostics of a fit.

/// Parameters fitted on rescaled time, back in the original unit (`time_scaled` lists those
/// measured in time units).
pub(crate) fn unscale(mut params: Vec<f64>, time_scaled: &[usize], scale: f64) -> Vec<f64> {
    for &i in time_scaled {
        if let Some(v) = params.get_mut(i) {
            *v *= scale;
        }
    }
    params
}

/// What both analytic-derivative routes start from: the observations checked, the customer
/// count, their distinct rows, the distinct times rescaled so that max T = 1, and the scale.
/// (The rows are shared by both stages of a fit; only the few thousand times differ.)
fn prepare_row_sets(
    model: &str,
    observations: &[RfmObservation],
) -> Result<(f64, RowSet, Vec<f64>, f64)> {
    let scale = validate_observations(model, observations)?;
    let rows = RowSet::from_observations(observations);
    let scaled_times = rows.times.iter().map(|t| t / scale).collect();
    Ok((observations.len() as f64, rows, scaled_times, scale))
}

/// Fits a purchase model with an analytic gradient: `batch(params, rows)` returns the
/// summed log-likelihood and its gradient over a [`RowSet`].
///
/// Rescaling time only multiplies each customer's likelihood by a constant (scale^x) and shifts
/// ln α, so without a penalty the optimum found on rescaled time converts exactly to the original
/// unit ([`unscale_estimate`]); with one (the penalty on ln α is not shift-invariant) it is
/// checked there (gradient) and refined when the check fails.
pub(crate) fn fit_rfm_model_with_gradient(
    model: &str,
    observations: &[RfmObservation],
    time_scaled: &[usize],
    starts: &[Vec<f64>],
    batch: impl Fn(&[f64], &RowSet) -> (f64, Vec<f64>) + Sync,
    options: &FitOptions,
) -> Result<Estimate> {
    let (n, mut rows, scaled_times, scale) = prepare_row_sets(model, observations)?;
    let mean = |set: &RowSet, p: &[f64]| -> (f64, Vec<f64>) {
        let (ll, g) = batch(p, set);
        (-ll / n, g.iter().map(|g| -g / n).collect())
    };
    let original_times = std::mem::replace(&mut rows.times, scaled_times);
    let on_scaled = |p: &[f64]| mean(&rows, p);
    let first = maximise_with_gradient(model, &on_scaled, starts, n, rows.rows.len(), options)?;
    rows.times = original_times;
    if options.penalizer == 0.0 && first.diagnostics.converged {
        return Ok(unscale_estimate(first, time_scaled, scale, rows.total_x()));
    }
    let start = unscale(first.params, time_scaled, scale);
    let on_rows = |p: &[f64]| mean(&rows, p);
    if is_optimum(&on_rows, &start, options) {
        let theta: Vec<f64> = start.iter().map(|p| p.ln()).collect();
        return Ok(estimate_at(
            &on_rows,
            &theta,
            first.diagnostics.iterations,
            n,
            rows.rows.len(),
        ));
    }
    maximise_with_gradient(model, &on_rows, &[start], n, rows.rows.len(), options)
}

/// As [`fit_rfm_model_with_gradient`], for models with an analytic Hessian too:
/// `batch(params, rows)` returns the summed log-likelihood, its gradient and its Hessian, and
/// `starts(rows)` the start points on rescaled time (which may depend on the data). Damped
/// Newton steps ([`maximise_newton`]) find the optimum on rescaled time; without a penalty
/// it converts exactly to the original unit ([`unscale_estimate`]), and with one (not
/// shift-invariant) a second Newton run refines it in the original unit, whose Hessian then gives
/// the standard errors.
pub(crate) fn fit_rfm_model_with_hessian(
    model: &str,
    observations: &[RfmObservation],
    time_scaled: &[usize],
    starts: impl Fn(&RowSet) -> Vec<Vec<f64>>,
    batch: impl Fn(&[f64], &RowSet) -> (f64, Vec<f64>, Vec<Vec<f64>>) + Sync,
    options: &FitOptions,
) -> Result<Estimate> {
    let (n, mut rows, scaled_times, scale) = prepare_row_sets(model, observations)?;
    let mean = |set: &RowSet, p: &[f64]| -> (f64, Vec<f64>, Vec<Vec<f64>>) {
        let (ll, g, h) = batch(p, set);
        (
            -ll / n,
            g.iter().map(|g| -g / n).collect(),
            h.iter()
                .map(|row| row.iter().map(|v| -v / n).collect())
                .collect(),
        )
    };
    let original_times = std::mem::replace(&mut rows.times, scaled_times);
    let on_scaled = |p: &[f64]| mean(&rows, p);
    let first = maximise_newton(
        model,
        &on_scaled,
        &starts(&rows),
        n,
        rows.rows.len(),
        options,
    )?;
    rows.times = original_times;
    if options.penalizer == 0.0 && first.diagnostics.converged {
        return Ok(unscale_estimate(first, time_scaled, scale, rows.total_x()));
    }
    let start = unscale(first.params, time_scaled, scale);
    let on_rows = |p: &[f64]| mean(&rows, p);
    let mut refined = maximise_newton(model, &on_rows, &[start], n, rows.rows.len(), options)?;
    refined.diagnostics.iterations += first.diagnostics.iterations;
    Ok(refined)
}

/// An unpenalised estimate on time divided by `scale`, in the original unit, exactly and without
/// another pass over the data. Dividing every time by s and every time-unit parameter too
/// multiplies each customer's likelihood by s^x (the density of x events in time), so:
/// ln L = ln L_scaled − Σ x · ln s; the optimum in θ = ln(parameters) is the same point shifted
/// by ln s in the time-unit parameters, with the same gradient and Hessian in θ, so the
/// covariance of θ is unchanged and the standard errors of those parameters scale by s
/// (SE(p) = p · SE(θ)).
pub(crate) fn unscale_estimate(
    scaled: Estimate,
    time_scaled: &[usize],
    scale: f64,
    total_x: f64,
) -> Estimate {
    let d = scaled.diagnostics;
    let mut unscaled = estimate(
        unscale(scaled.params, time_scaled, scale),
        d.log_likelihood - total_x * scale.ln(),
        d.log_param_covariance,
        d.iterations,
        d.customers as f64,
        d.distinct_rows as usize,
    );
    // The standard errors as the scaled fit computed them (a singular Hessian there has none),
    // scaled: the same figures as before the covariance was kept.
    let mut standard_errors = d.standard_errors;
    for &i in time_scaled {
        if let Some(Some(se)) = standard_errors.get_mut(i) {
            *se *= scale;
        }
    }
    unscaled.diagnostics.standard_errors = standard_errors;
    unscaled
}

/// Options of a maximum-likelihood fit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FitOptions {
    /// L2 penalty on the parameters, added to the mean negative log-likelihood as
    /// `penalizer · Σ θ²` (as lifetimes' `penalizer_coef`); 0 = plain maximum likelihood.
    pub penalizer: f64,
    /// Iteration cap per optimizer run.
    pub max_iterations: u64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            penalizer: 0.0,
            max_iterations: 2000,
        }
    }
}

/// How a fit went. A fit that did not converge is an error, never a result; these are the
/// diagnostics of one that did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FitDiagnostics {
    /// Log-likelihood at the estimate (without the penalty).
    pub log_likelihood: f64,
    /// Akaike information criterion, 2k − 2 LL.
    pub aic: f64,
    /// Bayesian information criterion, k ln n − 2 LL.
    pub bic: f64,
    /// Optimizer iterations, all runs included.
    pub iterations: u64,
    /// Always true for a returned fit.
    pub converged: bool,
    /// Standard errors of the parameters (same order as the parameters), from the inverse of the
    /// observed information; `None` where the Hessian was not invertible.
    pub standard_errors: Vec<Option<f64>>,
    /// Customers used.
    #[serde(rename = "n_customers", alias = "customers")]
    pub customers: u64,
    /// Distinct rows the likelihood was evaluated on.
    pub distinct_rows: u64,
    /// The asymptotic covariance of θ = ln(parameters): the inverse of the observed information
    /// (the total negative log-likelihood's Hessian in θ, without the penalty), rows and columns
    /// in the parameters' order. Prediction intervals draw parameters from the normal with this
    /// covariance. `None` where the Hessian was not invertible (and in files written before it
    /// was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_param_covariance: Option<Vec<Vec<f64>>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverts_by_hand() {
        // [[4, 7], [2, 6]]⁻¹ = [[0.6, −0.7], [−0.2, 0.4]].
        let inv = invert(&[vec![4.0, 7.0], vec![2.0, 6.0]]).unwrap();
        let want = [[0.6, -0.7], [-0.2, 0.4]];
        for i in 0..2 {
            for j in 0..2 {
                assert!((inv[i][j] - want[i][j]).abs() < 1e-12);
            }
        }
        assert!(invert(&[vec![1.0, 2.0], vec![2.0, 4.0]]).is_none());
    }

    #[test]
    fn fits_a_normal_mean_and_sd() {
        // Observations 1..=5: MLE of a normal is mean 3, sd √2; SE(mean) = sd/√n.
        let data = [1.0, 2.0, 3.0, 4.0, 5.0];
        let nll = |p: &[f64]| -> f64 {
            let (mu, sd) = (p[0], p[1]);
            data.iter()
                .map(|x| 0.5 * ((x - mu) / sd).powi(2) + sd.ln())
                .sum::<f64>()
                / data.len() as f64
        };
        let e = maximise(
            "normal",
            &nll,
            &[vec![1.0, 1.0]],
            5.0,
            5,
            &FitOptions::default(),
        )
        .unwrap();
        assert!(
            (e.params[0] - 3.0).abs() < 1e-5 && (e.params[1] - 2f64.sqrt()).abs() < 1e-5,
            "{:?}",
            e.params
        );
        let se = e.diagnostics.standard_errors[0].unwrap();
        assert!((se - 2f64.sqrt() / 5f64.sqrt()).abs() < 1e-3, "{se}");
    }

    #[test]
    fn a_likelihood_without_optimum_is_an_error() {
        // Decreasing forever in p: no maximum.
        let nll = |p: &[f64]| -> f64 { -p[0].ln() };
        let err = maximise(
            "unbounded",
            &nll,
            &[vec![1.0]],
            10.0,
            1,
            &FitOptions {
                max_iterations: 200,
                ..FitOptions::default()
            },
        );
        assert!(matches!(err, Err(Error::ModelDidNotConverge { .. })));
    }
}
