//! Static (time-invariant) covariates for the purchase and spend models: which customer
//! attributes drive purchasing, dropping out and spending.
//!
//! Following Fader & Hardie (2007), "Incorporating time-invariant covariates into the
//! Pareto/NBD and BG/NBD models" (brucehardie.com note 019), as CLVTools implements them, each
//! customer i with covariates z_i gets their own heterogeneity parameters:
//!
//! - purchase (all three purchase models): α_i = α₀ · exp(−γ_p'z_i), so the mean purchase rate
//!   E\[λ | z\] = r/α_i is multiplied by exp(γ_p'z);
//! - drop-out, Pareto/NBD: β_i = β₀ · exp(−γ_d'z_i), the mean drop-out rate s/β_i multiplied by
//!   exp(γ_d'z);
//! - drop-out, BG/NBD and MBG/NBD: a_i = a₀ · exp(γ_d'z_i), b_i = b₀ · exp(γ_d'z_i) (CLVTools'
//!   form, one coefficient per covariate on both shapes). The mean drop-out probability
//!   a_i/(a_i + b_i) is then the same for every customer; the covariate changes how
//!   concentrated the customers' drop-out probabilities are around it (a larger a + b, less
//!   spread), and the effect is reported as such;
//! - spend, Gamma-Gamma: the scale γ_i = γ₀ · exp(δ'z_i) of ν ~ Gamma(q, γ_i), so the mean spend
//!   per purchase pγ_i/(q − 1) is multiplied by exp(δ'z).
//!
//! Each customer's likelihood is the model's own with those parameters. Estimation is by
//! maximum likelihood over (ln r, ln α₀, ..., γ) with the shared optimizer (the coefficients
//! enter as θ = γ, so the optional L2 penalty `penalizer · Σθ²` covers them); standard errors
//! from the inverse Hessian. A categorical covariate is dummy-coded against a named base level
//! (its most frequent value); a numeric one enters as it is. With all γ = 0 the likelihood is
//! the covariate-free one, and the likelihood-ratio test against that fit is reported.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;
use statrs::distribution::{ChiSquared, ContinuousCDF};

use super::bgnbd::BgNbdParams;
use super::fit::{FitDiagnostics, FitOptions, maximise, maximise_newton, maximise_with_gradient};
use super::gamma_gamma::GammaGammaParams;
use super::mbgnbd::MbgNbdParams;
use super::pareto_nbd::ParetoNbdParams;
use super::purchase::{PurchaseFit, PurchaseModel};
use super::{RfmObservation, validate_observations};
use crate::{Error, Result};

/// Which customer attributes enter which process, by column name (a `--by` dimension: a
/// transactions column, valued by the customer's first purchase, or a customers-table
/// attribute; or a column of a per-customer summary table).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct CovariateChoice {
    /// Columns that shift the purchase rate.
    pub purchase: Vec<String>,
    /// Columns that shift drop-out.
    pub dropout: Vec<String>,
    /// Columns that shift the spend per purchase (Gamma-Gamma).
    pub spend: Vec<String>,
}

impl CovariateChoice {
    /// Covariates for these processes.
    pub fn new(purchase: Vec<String>, dropout: Vec<String>, spend: Vec<String>) -> Self {
        CovariateChoice {
            purchase,
            dropout,
            spend,
        }
    }

    /// No covariate asked for.
    pub fn is_empty(&self) -> bool {
        self.purchase.is_empty() && self.dropout.is_empty() && self.spend.is_empty()
    }

    /// Every column named, once, in order of first mention.
    pub fn columns(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        for c in self.purchase.iter().chain(&self.dropout).chain(&self.spend) {
            if !all.contains(c) {
                all.push(c.clone());
            }
        }
        all
    }
}

/// The covariate fits of a CLV section or `clv fit`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CovariateResult {
    /// The purchase model with purchase and drop-out covariates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purchase: Option<CovariateFit>,
    /// Gamma-Gamma with spend covariates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spend: Option<CovariateFit>,
    /// Why a fit asked for is missing (a fit that did not converge, a covariate without
    /// contrast); the covariate-free models stand.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<String>,
}

/// Fits the covariates of `choice` on an RFM table whose customers have the values `columns`
/// (every column `choice` names, one value per customer of `table`), next to the covariate-free
/// fits `purchase` and `spend`. A fit that fails is reported in
/// [`CovariateResult::unavailable`], not as an error.
pub fn fit_covariates(
    table: &crate::metrics::rfm::Rfm,
    columns: &[CovariateColumn],
    choice: &CovariateChoice,
    purchase: &PurchaseFit,
    spend: Option<&super::gamma_gamma::GammaGammaFit>,
    options: &FitOptions,
) -> CovariateResult {
    let mut result = CovariateResult {
        purchase: None,
        spend: None,
        unavailable: Vec::new(),
    };
    let design = |names: &[String]| -> Result<Design> {
        if names.is_empty() {
            return Ok(Design::empty());
        }
        let picked: Vec<CovariateColumn> = names
            .iter()
            .map(|n| {
                columns
                    .iter()
                    .find(|c| &c.name == n)
                    .cloned()
                    .ok_or_else(|| Error::InvalidSetting {
                        setting: "covariates".into(),
                        message: format!("no column {n:?} among the customers' attributes"),
                    })
            })
            .collect::<Result<_>>()?;
        for c in &picked {
            let missing: Vec<usize> = c
                .values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.trim().is_empty())
                .map(|(i, _)| i)
                .collect();
            if let Some(&first) = missing.first() {
                let id = table
                    .customers
                    .get(first)
                    .map_or("?", |r| r.customer_id.as_str());
                return Err(Error::InvalidSetting {
                    setting: "covariates".into(),
                    message: format!(
                        "column {:?} has no value for customer {id} ({} customers in all): every customer needs one (a customers-table attribute covers them all), or leave the column out",
                        c.name,
                        missing.len()
                    ),
                });
            }
        }
        Design::new(&picked)
    };
    if !choice.purchase.is_empty() || !choice.dropout.is_empty() {
        let observations = super::clv::observations(table);
        let fitted = design(&choice.purchase).and_then(|p| {
            let d = design(&choice.dropout)?;
            fit_purchase_with_covariates(purchase.model(), &observations, &p, &d, purchase, options)
        });
        match fitted {
            Ok(f) => result.purchase = Some(f),
            Err(e) => result
                .unavailable
                .push(format!("{} with covariates: {e}", purchase.model().label())),
        }
    }
    if !choice.spend.is_empty() {
        match spend {
            Some(g) => {
                let pairs: Vec<(f64, f64)> = table
                    .customers
                    .iter()
                    .map(|c| (f64::from(c.frequency), c.monetary_value))
                    .collect();
                match design(&choice.spend)
                    .and_then(|d| fit_spend_with_covariates(&pairs, &d, g, options))
                {
                    Ok(f) => result.spend = Some(f),
                    Err(e) => result
                        .unavailable
                        .push(format!("Gamma-Gamma with covariates: {e}")),
                }
            }
            None => result
                .unavailable
                .push("spend covariates need a spend model (a monetary value per customer)".into()),
        }
    }
    result
}

/// One covariate column as read: a name and one text value per customer.
#[derive(Debug, Clone, PartialEq)]
pub struct CovariateColumn {
    /// The column's name.
    pub name: String,
    /// One value per customer, in the customers' order.
    pub values: Vec<String>,
}

/// The design matrix of a set of covariate columns: numeric columns as they are, categorical
/// ones as one 0/1 column per level other than the base level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Design {
    /// The coded columns: `channel=paid_search` (a level against the base) or `age`.
    pub names: Vec<String>,
    /// Per categorical source column, its base level (the reference every effect compares
    /// with): (column, level, customers at that level).
    pub bases: Vec<(String, String, u64)>,
    /// Row-major values, one row of `names.len()` per customer.
    #[serde(skip)]
    pub values: Vec<f64>,
}

impl Design {
    /// Codes `columns` (all of the same length). A column whose every value parses as a finite
    /// number is numeric; any other is categorical, its base level the most frequent value
    /// (the smallest of equally frequent ones).
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for columns of different lengths, an empty value (a customer
    /// whose attribute is unknown cannot be placed), or a categorical column with one level
    /// (no contrast to estimate).
    pub fn new(columns: &[CovariateColumn]) -> Result<Design> {
        let invalid = |message: String| Error::InvalidSetting {
            setting: "covariates".into(),
            message,
        };
        let n = columns.first().map_or(0, |c| c.values.len());
        let mut coded: Vec<(String, Vec<f64>)> = Vec::new();
        let mut bases = Vec::new();
        for c in columns {
            if c.values.len() != n {
                return Err(invalid(format!(
                    "column {:?} has {} values for {n} customers",
                    c.name,
                    c.values.len()
                )));
            }
            if let Some(i) = c.values.iter().position(|v| v.trim().is_empty()) {
                return Err(invalid(format!(
                    "column {:?} is empty for customer {} (row {}): every customer needs a value, or leave the column out",
                    c.name,
                    i + 1,
                    i + 1
                )));
            }
            let numbers: Option<Vec<f64>> = c
                .values
                .iter()
                .map(|v| v.trim().parse::<f64>().ok().filter(|x| x.is_finite()))
                .collect();
            if let Some(numbers) = numbers {
                coded.push((c.name.clone(), numbers));
                continue;
            }
            let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
            for v in &c.values {
                *counts.entry(v.trim()).or_insert(0) += 1;
            }
            if counts.len() < 2 {
                return Err(invalid(format!(
                    "column {:?} has one value for every customer: there is nothing to compare",
                    c.name
                )));
            }
            // Most frequent first; the BTreeMap's order breaks ties by the smallest level.
            let (base, base_count) = counts.iter().fold(("", 0u64), |best, (&level, &count)| {
                if count > best.1 { (level, count) } else { best }
            });
            bases.push((c.name.clone(), base.to_string(), base_count));
            for level in counts.keys().filter(|&&l| l != base) {
                coded.push((
                    format!("{}={level}", c.name),
                    c.values
                        .iter()
                        .map(|v| f64::from(u8::from(v.trim() == *level)))
                        .collect(),
                ));
            }
        }
        let k = coded.len();
        let mut values = vec![0.0; n * k];
        for (j, (_, column)) in coded.iter().enumerate() {
            for (i, v) in column.iter().enumerate() {
                if let Some(cell) = values.get_mut(i * k + j) {
                    *cell = *v;
                }
            }
        }
        Ok(Design {
            names: coded.into_iter().map(|(name, _)| name).collect(),
            bases,
            values,
        })
    }

    /// No covariates for `n` customers.
    pub fn empty() -> Design {
        Design {
            names: Vec::new(),
            bases: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Coded columns.
    pub fn width(&self) -> usize {
        self.names.len()
    }

    /// Customer i's row.
    fn row(&self, i: usize) -> &[f64] {
        let k = self.width();
        self.values.get(i * k..(i + 1) * k).unwrap_or(&[])
    }
}

/// A fitted coefficient and what it means.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coefficient {
    /// `purchase`, `dropout` (Pareto/NBD's rate), `dropout_spread` (BG/NBD's and MBG/NBD's
    /// shapes) or `spend`.
    pub process: &'static str,
    /// The coded covariate (`channel=paid_search`).
    pub covariate: String,
    /// γ.
    pub estimate: f64,
    /// Its standard error (absent when the Hessian was singular).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standard_error: Option<f64>,
    /// exp(γ): the factor on the process's mean rate (or mean spend) per unit of the covariate,
    /// or against the base level.
    pub ratio: f64,
    /// The 95% interval of the ratio, exp(γ ± 1.96 SE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_low: Option<f64>,
    /// See `ratio_low`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_high: Option<f64>,
    /// The effect in words.
    pub effect: String,
}

/// A model fitted with covariates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CovariateFit {
    /// `bgnbd`, `pareto_nbd`, `mbgnbd` or `gamma_gamma`.
    pub model: String,
    /// `BG/NBD`, ...
    pub label: String,
    /// The model's parameters for a customer at the base levels and 0 on numeric covariates,
    /// with the papers' names.
    pub params: Vec<(String, f64)>,
    /// Their standard errors.
    pub standard_errors: Vec<(String, Option<f64>)>,
    /// The coefficients, purchase first.
    pub coefficients: Vec<Coefficient>,
    /// The base levels the effects compare with.
    pub bases: Vec<(String, String, u64)>,
    /// How the fit went.
    pub diagnostics: FitDiagnostics,
    /// Log-likelihood of the same model without covariates on the same customers.
    pub log_likelihood_without: f64,
    /// 2 · (LL − LL without): the likelihood-ratio statistic, χ² with as many degrees of
    /// freedom as coefficients when no covariate matters.
    pub likelihood_ratio: f64,
    /// The test's p-value.
    pub likelihood_ratio_p: f64,
}

/// The z-value of a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

fn describe(process: &str, covariate: &str, bases: &[(String, String, u64)], ratio: f64) -> String {
    let who = match covariate.split_once('=') {
        Some((column, level)) => {
            let base = bases
                .iter()
                .find(|(c, _, _)| c == column)
                .map_or("the base level", |(_, b, _)| b.as_str());
            format!("customers with {column} = {level} (against {base})")
        }
        None => format!("each unit more of {covariate}"),
    };
    let change = if ratio >= 1.0 {
        format!("{:.0}% more", (ratio - 1.0) * 100.0)
    } else {
        format!("{:.0}% less", (1.0 - ratio) * 100.0)
    };
    match process {
        "purchase" => format!("{who}: purchase {change} often"),
        "dropout" => format!("{who}: drop-out rate {change}"),
        "dropout_spread" => format!(
            "{who}: drop-out shapes a and b × {ratio:.2} (the same mean drop-out probability, {} concentrated around it)",
            if ratio >= 1.0 { "more" } else { "less" }
        ),
        _ => format!("{who}: spend {change} per purchase"),
    }
}

/// One covariate profile (the customers with the same purchase and drop-out covariates): its
/// distinct rows, which share the model's four parameters, and how the optimizer's
/// coordinates move those parameters.
struct Group {
    /// Column j: the change of ln(r, α, third, fourth) per unit of θⱼ = ln pⱼ, pⱼ the j-th
    /// optimizer parameter. The base parameters move their own (a unit column), a purchase
    /// coefficient ln α by −z, a drop-out coefficient the third and fourth by e·z (see
    /// [`dropout_signs`]). So ln q = A θ is linear and the chain rule has no second-order
    /// term of its own: ∇θ = Aᵀ u, ∇²θ = Aᵀ K A with u and K the derivatives in ln q.
    columns: Vec<[f64; 4]>,
    set: super::RowSet,
    /// Pareto/NBD's A₀ term index (Pareto/NBD only).
    pairs: Option<super::pareto_nbd::PairIndex>,
}

/// How a drop-out coefficient scales the third and fourth parameters, as e^(e·γ_d'z): BG/NBD's
/// and MBG/NBD's a and b up (e = 1), Pareto/NBD's β down (e = −1, s unscaled).
fn dropout_signs(model: PurchaseModel) -> [f64; 2] {
    match model {
        PurchaseModel::ParetoNbd => [0.0, -1.0],
        _ => [1.0, 1.0],
    }
}

/// The rows grouped by covariate profile, for the analytic derivatives.
struct Profiles {
    groups: Vec<Group>,
}

/// A group's log-likelihood with its gradient u and Hessian K in ln q, q its four parameters.
type LogDerivatives = (f64, [f64; 4], Option<[[f64; 4]; 4]>);

impl Profiles {
    fn new(rows: &Rows, model: PurchaseModel) -> Profiles {
        let [e2, e3] = dropout_signs(model);
        let mut members: Vec<(Vec<RfmObservation>, Vec<f64>)> =
            vec![(Vec::new(), Vec::new()); rows.profiles.len()];
        for ((o, w), &g) in rows.obs.iter().zip(&rows.weights).zip(&rows.profile) {
            if let Some((obs, weights)) = members.get_mut(g as usize) {
                obs.push(*o);
                weights.push(*w);
            }
        }
        let groups = members
            .into_iter()
            .zip(&rows.profiles)
            .map(|((obs, weights), (zp, zd))| {
                let mut columns = vec![[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]];
                columns.extend([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]);
                columns.extend(zp.iter().map(|z| [0.0, -z, 0.0, 0.0]));
                columns.extend(zd.iter().map(|z| [0.0, 0.0, e2 * z, e3 * z]));
                let set = super::RowSet::new(&obs, &weights);
                let pairs = (model == PurchaseModel::ParetoNbd)
                    .then(|| super::pareto_nbd::PairIndex::new(&set));
                Group {
                    columns,
                    set,
                    pairs,
                }
            })
            .collect();
        Profiles { groups }
    }

    /// Divides every group's times by `scale` (the indices into them stay valid: the order
    /// does not change), returning the times as they were.
    fn rescale_times(&mut self, scale: f64) -> Vec<Vec<f64>> {
        self.groups
            .iter_mut()
            .map(|g| {
                let scaled = g.set.times.iter().map(|t| t / scale).collect();
                std::mem::replace(&mut g.set.times, scaled)
            })
            .collect()
    }

    fn restore_times(&mut self, times: Vec<Vec<f64>>) {
        for (g, t) in self.groups.iter_mut().zip(times) {
            g.set.times = t;
        }
    }

    /// The group's four parameters at the optimizer's parameters `p` (r, α₀, a₀ or s₀, b₀ or
    /// β₀, then e^γ per coefficient): q_k = p_k · e^(Σⱼ A_kj γⱼ).
    fn parameters(group: &Group, p: &[f64]) -> [f64; 4] {
        let mut q = [0.0; 4];
        for (k, q) in q.iter_mut().enumerate() {
            let exponent: f64 = group
                .columns
                .iter()
                .zip(p)
                .skip(4)
                .map(|(column, v)| super::at(column, k) * v.ln())
                .sum();
            *q = super::at(p, k) * exponent.exp();
        }
        q
    }

    /// The summed log-likelihood with its gradient and, when `hessian` (BG/NBD only), its
    /// Hessian, both in θ = ln p; `None` where a group's likelihood cannot be evaluated.
    fn derivatives_in_theta(
        &self,
        model: PurchaseModel,
        p: &[f64],
        hessian: bool,
    ) -> Option<(f64, Vec<f64>, Vec<Vec<f64>>)> {
        let n = p.len();
        let mut ll = 0.0;
        let mut grad = vec![0.0; n];
        let mut hess = vec![vec![0.0; if hessian { n } else { 0 }]; if hessian { n } else { 0 }];
        for group in &self.groups {
            let q = Self::parameters(group, p);
            let (l, u, k) = group_log_likelihood(model, q, group, hessian)?;
            ll += l;
            for (gj, column) in grad.iter_mut().zip(&group.columns) {
                *gj += column.iter().zip(&u).map(|(a, u)| a * u).sum::<f64>();
            }
            let Some(k) = k else { continue };
            // Aᵀ K A, column by column (A is 4 × n, most of its entries zero).
            let ka: Vec<[f64; 4]> = group
                .columns
                .iter()
                .map(|column| {
                    let mut out = [0.0; 4];
                    for (o, row) in out.iter_mut().zip(&k) {
                        *o = row.iter().zip(column).map(|(a, b)| a * b).sum();
                    }
                    out
                })
                .collect();
            for (row, ci) in hess.iter_mut().zip(&group.columns) {
                for (cell, kaj) in row.iter_mut().zip(&ka) {
                    *cell += ci.iter().zip(kaj).map(|(a, b)| a * b).sum::<f64>();
                }
            }
        }
        Some((ll, grad, hess))
    }

    /// The mean negative log-likelihood over `customers` with its gradient in p (the form the
    /// optimizer takes: ∂/∂pⱼ = ∂/∂θⱼ / pⱼ).
    fn mean_nll_and_gradient(
        &self,
        model: PurchaseModel,
        p: &[f64],
        customers: f64,
    ) -> (f64, Vec<f64>) {
        match self.derivatives_in_theta(model, p, false) {
            Some((ll, g, _)) => (
                -ll / customers,
                g.iter().zip(p).map(|(g, p)| -g / p / customers).collect(),
            ),
            None => (f64::NAN, vec![f64::NAN; p.len()]),
        }
    }

    /// As [`Self::mean_nll_and_gradient`], with the Hessian in p:
    /// ∂²/∂pᵢ∂pⱼ = (∂²/∂θᵢ∂θⱼ − δᵢⱼ ∂/∂θᵢ) / (pᵢ pⱼ).
    fn mean_nll_gradient_hessian(
        &self,
        model: PurchaseModel,
        p: &[f64],
        customers: f64,
    ) -> (f64, Vec<f64>, Vec<Vec<f64>>) {
        let n = p.len();
        let Some((ll, g, h)) = self.derivatives_in_theta(model, p, true) else {
            return (f64::NAN, vec![f64::NAN; n], vec![vec![f64::NAN; n]; n]);
        };
        let gp = g.iter().zip(p).map(|(g, p)| -g / p / customers).collect();
        let hp = h
            .iter()
            .enumerate()
            .map(|(i, row)| {
                row.iter()
                    .enumerate()
                    .map(|(j, v)| {
                        let diagonal = if i == j { super::at(&g, i) } else { 0.0 };
                        -(v - diagonal) / (super::at(p, i) * super::at(p, j)) / customers
                    })
                    .collect()
            })
            .collect();
        (-ll / customers, gp, hp)
    }
}

/// One group's summed log-likelihood and its derivatives in ln q, q = (r, α, third, fourth)
/// in the papers' order: u = q ⊙ ∇_q and K = diag(q) ∇²_q diag(q) + diag(u). The Hessian is
/// BG/NBD's only (the other models have analytic gradients).
fn group_log_likelihood(
    model: PurchaseModel,
    q: [f64; 4],
    group: &Group,
    hessian: bool,
) -> Option<LogDerivatives> {
    let [r, alpha, third, fourth] = q;
    let set = &group.set;
    let (ll, gq, hq) = match model {
        PurchaseModel::Bgnbd => {
            let params = BgNbdParams {
                r,
                alpha,
                a: third,
                b: fourth,
            };
            if hessian {
                let (ll, g, h) = super::bgnbd::ll_gradient_hessian(&params, set);
                (ll, g, Some(h))
            } else {
                let (ll, g) = super::bgnbd::ll_and_gradient(&params, set);
                (ll, g, None)
            }
        }
        PurchaseModel::Mbgnbd => {
            let (ll, g) = super::mbgnbd::ll_and_gradient(
                &MbgNbdParams {
                    r,
                    alpha,
                    a: third,
                    b: fourth,
                },
                set,
            );
            (ll, g, None)
        }
        PurchaseModel::ParetoNbd => {
            let (ll, g) = super::pareto_nbd::log_likelihood_and_gradient(
                &ParetoNbdParams {
                    r,
                    alpha,
                    s: third,
                    beta: fourth,
                },
                set,
                group.pairs.as_ref()?,
            )?;
            (ll, g, None)
        }
    };
    let mut u = [0.0; 4];
    for ((u, g), q) in u.iter_mut().zip(&gq).zip(&q) {
        *u = g * q;
    }
    let k = hq.map(|h| {
        let mut k = [[0.0; 4]; 4];
        for (i, (row, hrow)) in k.iter_mut().zip(&h).enumerate() {
            for (j, (cell, hij)) in row.iter_mut().zip(hrow).enumerate() {
                *cell = super::at(&q, i) * hij * super::at(&q, j);
                if i == j {
                    *cell += super::at(&u, i);
                }
            }
        }
        k
    });
    Some((ll, u, k))
}

/// Customers with the same history and covariate profile, and how many.
struct Rows {
    obs: Vec<RfmObservation>,
    /// Each row's profile, an index into `profiles`.
    profile: Vec<u32>,
    weights: Vec<f64>,
    /// The distinct (purchase, drop-out) covariate rows.
    profiles: Vec<(Vec<f64>, Vec<f64>)>,
}

impl Rows {
    /// Σ weight · x: what time rescaling takes from the log-likelihood per unit of ln scale.
    fn total_x(&self) -> f64 {
        self.obs
            .iter()
            .zip(&self.weights)
            .map(|(o, w)| w * o.frequency)
            .sum()
    }
}

fn compress(observations: &[RfmObservation], purchase: &Design, dropout: &Design) -> Rows {
    use polars::prelude::PlHashMap;
    // +0.0 turns −0.0 into 0.0, so that they are one value.
    let bits = |v: f64| (v + 0.0).to_bits();
    let mut profile_index: PlHashMap<Vec<u64>, u32> = PlHashMap::default();
    let mut row_index: PlHashMap<[u64; 4], usize> = PlHashMap::default();
    let mut rows = Rows {
        obs: Vec::new(),
        profile: Vec::new(),
        weights: Vec::new(),
        profiles: Vec::new(),
    };
    let mut key: Vec<u64> = Vec::new();
    for (i, o) in observations.iter().enumerate() {
        let (zp, zd) = (purchase.row(i), dropout.row(i));
        key.clear();
        key.extend(zp.iter().chain(zd).map(|v| bits(*v)));
        // Looked up by slice: a key is allocated once per profile, not per customer.
        let profile = match profile_index.get(key.as_slice()) {
            Some(&g) => g,
            None => {
                let g = rows.profiles.len() as u32;
                rows.profiles.push((zp.to_vec(), zd.to_vec()));
                profile_index.insert(key.clone(), g);
                g
            }
        };
        let row_key = [
            u64::from(profile),
            bits(o.frequency),
            bits(o.recency),
            bits(o.t),
        ];
        let slot = *row_index.entry(row_key).or_insert_with(|| {
            rows.obs.push(*o);
            rows.profile.push(profile);
            rows.weights.push(0.0);
            rows.weights.len() - 1
        });
        if let Some(w) = rows.weights.get_mut(slot) {
            *w += 1.0;
        }
    }
    rows
}

fn dot(g: &[f64], z: &[f64]) -> f64 {
    g.iter().zip(z).map(|(a, b)| a * b).sum()
}

/// One customer's log-likelihood under `model` with base parameters `base` (the papers'
/// order) and coefficients `gp` (purchase) and `gd` (drop-out): the definition the batched
/// gradients are checked against.
#[cfg(test)]
fn row_log_likelihood(
    model: PurchaseModel,
    base: &[f64],
    gp: &[f64],
    gd: &[f64],
    o: &RfmObservation,
    zp: &[f64],
    zd: &[f64],
) -> f64 {
    let at = |i: usize| super::at(base, i);
    let alpha = at(1) * (-dot(gp, zp)).exp();
    let shift = dot(gd, zd).exp();
    match model {
        PurchaseModel::Bgnbd => super::bgnbd::log_likelihood(
            &BgNbdParams {
                r: at(0),
                alpha,
                a: at(2) * shift,
                b: at(3) * shift,
            },
            o,
        ),
        PurchaseModel::Mbgnbd => super::mbgnbd::log_likelihood(
            &MbgNbdParams {
                r: at(0),
                alpha,
                a: at(2) * shift,
                b: at(3) * shift,
            },
            o,
        ),
        PurchaseModel::ParetoNbd => super::pareto_nbd::log_likelihood(
            &ParetoNbdParams {
                r: at(0),
                alpha,
                s: at(2),
                beta: at(3) / shift,
            },
            o,
        ),
    }
}

/// Fits `model` with purchase covariates `purchase` and drop-out covariates `dropout` (one
/// design row per observation; either may be empty), starting from the covariate-free fit
/// `without` on the same observations.
///
/// # Errors
/// [`Error::InvalidSetting`] when the designs do not match the observations or both are
/// empty; the fit's errors ([`Error::ModelDidNotConverge`], ...).
pub fn fit_purchase_with_covariates(
    model: PurchaseModel,
    observations: &[RfmObservation],
    purchase: &Design,
    dropout: &Design,
    without: &PurchaseFit,
    options: &FitOptions,
) -> Result<CovariateFit> {
    let n = observations.len();
    for (what, d) in [("purchase", purchase), ("drop-out", dropout)] {
        if d.width() > 0 && d.values.len() != n * d.width() {
            return Err(Error::InvalidSetting {
                setting: "covariates".into(),
                message: format!(
                    "{what} covariates for {} customers, observations for {n}",
                    d.values.len() / d.width()
                ),
            });
        }
    }
    if purchase.width() + dropout.width() == 0 {
        return Err(Error::InvalidSetting {
            setting: "covariates".into(),
            message: "no covariates given".into(),
        });
    }
    let scale = validate_observations(model.label(), observations)?;
    let rows = compress(observations, purchase, dropout);
    let customers = n as f64;
    let (kp, kd) = (purchase.width(), dropout.width());
    // α (and Pareto/NBD's β) are in time units: fitted with max T = 1, then converted back.
    let time_scaled: &[usize] = match model {
        PurchaseModel::ParetoNbd => &[1, 3],
        _ => &[1],
    };
    let mut start: Vec<f64> = without.params().iter().map(|(_, v)| *v).collect();
    for &i in time_scaled {
        if let Some(v) = start.get_mut(i) {
            *v /= scale;
        }
    }
    // The coefficients enter as exp(γ), so that θ = ln(exp(γ)) = γ is the optimizer's
    // coordinate; they start at γ = 0, the covariate-free optimum.
    start.extend(std::iter::repeat_n(1.0, kp + kd));
    let label = format!("{} with covariates", model.label());
    // The customers of one covariate profile share the model's parameters, so the models'
    // analytic derivatives over rows apply per profile, chain-ruled into the coefficients.
    let mut profiles = Profiles::new(&rows, model);
    let original_times = profiles.rescale_times(scale);
    let distinct = rows.obs.len();
    let first = optimise(
        model, &profiles, &label, start, customers, distinct, options,
    )?;
    profiles.restore_times(original_times);
    // Rescaling time shifts ln α₀ (and ln β₀) only, so without a penalty the optimum converts
    // exactly to the original unit; with one (not shift-invariant) it is refined there, as the
    // covariate-free fits do.
    let estimate = if options.penalizer == 0.0 && first.diagnostics.converged {
        super::fit::unscale_estimate(first, time_scaled, scale, rows.total_x())
    } else {
        let first_iterations = first.diagnostics.iterations;
        let start = super::fit::unscale(first.params, time_scaled, scale);
        let mut refined = optimise(
            model, &profiles, &label, start, customers, distinct, options,
        )?;
        refined.diagnostics.iterations += first_iterations;
        refined
    };
    let names: Vec<&str> = without.params().iter().map(|(n, _)| *n).collect();
    let dropout_process = match model {
        PurchaseModel::ParetoNbd => "dropout",
        _ => "dropout_spread",
    };
    let coded: Vec<(&'static str, &String)> = purchase
        .names
        .iter()
        .map(|c| ("purchase", c))
        .chain(dropout.names.iter().map(|c| (dropout_process, c)))
        .collect();
    let mut bases = purchase.bases.clone();
    for b in &dropout.bases {
        if !bases.contains(b) {
            bases.push(b.clone());
        }
    }
    Ok(assemble(
        model.key(),
        &label,
        &names,
        estimate,
        &coded,
        bases,
        without.diagnostics().log_likelihood,
    ))
}

/// One maximum-likelihood run from `start`: damped Newton steps for BG/NBD, whose analytic
/// Hessian the profiles chain-rule (a handful of passes over the rows, and the standard errors
/// from the same Hessian), L-BFGS on the analytic gradient for the others.
fn optimise(
    model: PurchaseModel,
    profiles: &Profiles,
    label: &str,
    start: Vec<f64>,
    customers: f64,
    distinct: usize,
    options: &FitOptions,
) -> Result<super::fit::Estimate> {
    if model == PurchaseModel::Bgnbd {
        let f = |p: &[f64]| profiles.mean_nll_gradient_hessian(model, p, customers);
        maximise_newton(label, &f, &[start], customers, distinct, options)
    } else {
        let f = |p: &[f64]| profiles.mean_nll_and_gradient(model, p, customers);
        maximise_with_gradient(label, &f, &[start], customers, distinct, options)
    }
}

/// Gamma-Gamma with spend covariates: the scale γ_i = γ₀ · exp(δ'z_i), so the mean spend per
/// purchase is multiplied by exp(δ'z). `customers` are (frequency, mean repeat spend) pairs as
/// [`super::gamma_gamma::GammaGamma::fit`] takes them (those without a repeat purchase or with
/// a mean spend ≤ 0 are left out, as there).
///
/// # Errors
/// As [`fit_purchase_with_covariates`].
pub fn fit_spend_with_covariates(
    customers: &[(f64, f64)],
    spend: &Design,
    without: &super::gamma_gamma::GammaGammaFit,
    options: &FitOptions,
) -> Result<CovariateFit> {
    if spend.width() == 0 || spend.values.len() != customers.len() * spend.width() {
        return Err(Error::InvalidSetting {
            setting: "covariates".into(),
            message: format!(
                "spend covariates for {} customers, spend for {}",
                spend.values.len() / spend.width().max(1),
                customers.len()
            ),
        });
    }
    let used: Vec<(f64, f64, Vec<f64>)> = customers
        .iter()
        .enumerate()
        .filter(|(_, (x, m))| *x > 0.0 && *m > 0.0)
        .map(|(i, (x, m))| (*x, *m, spend.row(i).to_vec()))
        .collect();
    let n = used.len() as f64;
    let total = |p: &[f64]| -> f64 {
        let (base, rest) = p.split_at(3.min(p.len()));
        let delta: Vec<f64> = rest.iter().map(|v| v.ln()).collect();
        let terms: Vec<f64> = used
            .par_iter()
            .map(|(x, m, z)| {
                let params = GammaGammaParams {
                    p: super::at(base, 0),
                    q: super::at(base, 1),
                    gamma: super::at(base, 2) * dot(&delta, z).exp(),
                };
                super::gamma_gamma::log_likelihood(&params, *x, *m)
            })
            .collect();
        terms.iter().sum::<f64>()
    };
    let mut start = vec![without.params.p, without.params.q, without.params.gamma];
    start.extend(std::iter::repeat_n(1.0, spend.width()));
    let nll = |p: &[f64]| -> f64 { -total(p) / n };
    let estimate = maximise(
        "Gamma-Gamma with covariates",
        &nll,
        &[start],
        n,
        used.len(),
        options,
    )?;
    let coded: Vec<(&'static str, &String)> = spend.names.iter().map(|c| ("spend", c)).collect();
    Ok(assemble(
        "gamma_gamma",
        "Gamma-Gamma with covariates",
        &["p", "q", "v"],
        estimate,
        &coded,
        spend.bases.clone(),
        without.diagnostics.log_likelihood,
    ))
}

/// The fit's figures from the optimizer's estimate: base parameters, coefficients (θ = γ, so
/// their standard errors are the covariance's diagonal in θ), the likelihood-ratio test.
#[allow(clippy::too_many_arguments)]
fn assemble(
    model: &str,
    label: &str,
    names: &[&str],
    estimate: super::fit::Estimate,
    coded: &[(&'static str, &String)],
    bases: Vec<(String, String, u64)>,
    log_likelihood_without: f64,
) -> CovariateFit {
    let d = estimate.diagnostics;
    let k = names.len();
    let variance = |i: usize| {
        d.log_param_covariance
            .as_ref()
            .and_then(|m| m.get(i).and_then(|r| r.get(i)).copied())
            .filter(|v| v.is_finite() && *v > 0.0)
    };
    let coefficients = coded
        .iter()
        .enumerate()
        .map(|(j, (process, covariate))| {
            let gamma = super::at(&estimate.params, k + j).ln();
            let se = variance(k + j).map(f64::sqrt);
            // exp(γ) multiplies the mean rate (Pareto/NBD's drop-out rate s/β_i included, as
            // β_i = β₀ · exp(−γ'z)) or the mean spend, or both BG/NBD drop-out shapes.
            let ratio = gamma.exp();
            Coefficient {
                process,
                covariate: (*covariate).clone(),
                estimate: gamma,
                standard_error: se,
                ratio,
                ratio_low: se.map(|s| (gamma - Z95 * s).exp()),
                ratio_high: se.map(|s| (gamma + Z95 * s).exp()),
                effect: describe(process, covariate, &bases, ratio),
            }
        })
        .collect();
    let likelihood_ratio = (2.0 * (d.log_likelihood - log_likelihood_without)).max(0.0);
    let p = ChiSquared::new(coded.len().max(1) as f64)
        .map(|chi| 1.0 - chi.cdf(likelihood_ratio))
        .unwrap_or(f64::NAN);
    CovariateFit {
        model: model.into(),
        label: label.into(),
        params: names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), super::at(&estimate.params, i)))
            .collect(),
        standard_errors: names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.to_string(), d.standard_errors.get(i).copied().flatten()))
            .collect(),
        coefficients,
        bases,
        diagnostics: d,
        log_likelihood_without,
        likelihood_ratio,
        likelihood_ratio_p: p,
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_distr::{Beta, Distribution, Exp, Gamma};

    use super::*;

    fn column(name: &str, values: &[&str]) -> CovariateColumn {
        CovariateColumn {
            name: name.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn categorical_columns_are_dummy_coded_against_the_most_frequent_level() {
        let d = Design::new(&[
            column("channel", &["web", "store", "web", "app", "web", "store"]),
            column("age", &["31", "40.5", "22", "35", "50", "28"]),
        ])
        .unwrap();
        assert_eq!(d.names, ["channel=app", "channel=store", "age"]);
        assert_eq!(d.bases, [("channel".to_string(), "web".to_string(), 3)]);
        assert_eq!(d.row(0), [0.0, 0.0, 31.0]);
        assert_eq!(d.row(1), [0.0, 1.0, 40.5]);
        assert_eq!(d.row(3), [1.0, 0.0, 35.0]);
        // Equally frequent levels: the smallest is the base.
        let tie = Design::new(&[column("plan", &["pro", "basic", "pro", "basic"])]).unwrap();
        assert_eq!(tie.names, ["plan=pro"]);
    }

    #[test]
    fn unknown_or_constant_covariates_are_refused() {
        let empty = Design::new(&[column("plan", &["pro", " ", "basic"])]).unwrap_err();
        assert!(
            empty.to_string().contains("empty for customer 2"),
            "{empty}"
        );
        let constant = Design::new(&[column("plan", &["pro", "pro"])]).unwrap_err();
        assert!(
            constant.to_string().contains("nothing to compare"),
            "{constant}"
        );
    }

    /// Customers whose heterogeneity depends on a 0/1 covariate as the models say:
    /// α_i = α₀ e^(−γ_p z), and BG/NBD's a, b × e^(γ_d z) or Pareto/NBD's β_i = β₀ e^(−γ_d z).
    fn simulate(
        model: PurchaseModel,
        base: [f64; 4],
        (gp, gd): (f64, f64),
        customers: usize,
        seed: u64,
    ) -> (Vec<RfmObservation>, Vec<String>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let [r, alpha, third, fourth] = base;
        let mut obs = Vec::with_capacity(customers);
        let mut labels = Vec::with_capacity(customers);
        for i in 0..customers {
            // 40% paid: organic, the most frequent, is the base level.
            let z = f64::from(u8::from(rng.random_bool(0.4)));
            labels.push(if z > 0.0 { "paid" } else { "organic" }.to_string());
            let t = 26.0 + (i % 13) as f64;
            let lambda: f64 = Gamma::new(r, 1.0 / (alpha * (-gp * z).exp()))
                .unwrap()
                .sample(&mut rng);
            let (p_after, lifetime) = match model {
                PurchaseModel::ParetoNbd => {
                    let beta = fourth * (-gd * z).exp();
                    let mu: f64 = Gamma::new(third, 1.0 / beta).unwrap().sample(&mut rng);
                    (0.0, Exp::new(mu).unwrap().sample(&mut rng))
                }
                _ => {
                    let shift = (gd * z).exp();
                    let p: f64 = Beta::new(third * shift, fourth * shift)
                        .unwrap()
                        .sample(&mut rng);
                    (p, f64::INFINITY)
                }
            };
            let gap = Exp::new(lambda).unwrap();
            let (mut x, mut tx, mut now) = (0.0, 0.0, 0.0);
            loop {
                now += gap.sample(&mut rng);
                if now > t.min(lifetime) {
                    break;
                }
                x += 1.0;
                tx = now;
                if rng.random::<f64>() < p_after {
                    break;
                }
            }
            obs.push(RfmObservation {
                frequency: x,
                recency: tx,
                t,
            });
        }
        (obs, labels)
    }

    #[test]
    fn known_covariate_effects_are_recovered() {
        // Paid customers purchase e^0.5 = 1.65 times as often; their drop-out parameters move
        // by e^−0.4 (Pareto/NBD: a 33% lower drop-out rate; BG/NBD: shapes × 0.67).
        let truth = (0.5, -0.4);
        for (model, base) in [
            (PurchaseModel::Bgnbd, [0.8, 5.0, 1.2, 3.0]),
            (PurchaseModel::ParetoNbd, [0.8, 5.0, 0.9, 12.0]),
        ] {
            let (obs, labels) = simulate(model, base, truth, 3000, 21);
            let design = Design::new(&[CovariateColumn {
                name: "channel".into(),
                values: labels,
            }])
            .unwrap();
            assert_eq!(design.names, ["channel=paid"]);
            let options = FitOptions::default();
            let without = model.fit(&obs, 7.0, &options).unwrap();
            let fit =
                fit_purchase_with_covariates(model, &obs, &design, &design, &without, &options)
                    .unwrap();
            for (c, want) in fit.coefficients.iter().zip([truth.0, truth.1]) {
                let se = c.standard_error.unwrap();
                assert!(
                    (c.estimate - want).abs() < 3.0 * se && se < 0.25,
                    "{} {}: γ = {:.3} ± {se:.3}, truth {want}",
                    model.label(),
                    c.process,
                    c.estimate
                );
            }
            // Covariates that matter: the likelihood-ratio test says so.
            assert!(
                fit.likelihood_ratio_p < 1e-6,
                "{}: p = {}",
                model.label(),
                fit.likelihood_ratio_p
            );
            let purchase = &fit.coefficients[0];
            assert!(
                purchase
                    .effect
                    .starts_with("customers with channel = paid (against organic): purchase"),
                "{}",
                purchase.effect
            );
        }
    }

    #[test]
    fn the_analytic_gradient_matches_central_differences() {
        let (obs, labels) = simulate(
            PurchaseModel::Bgnbd,
            [0.8, 5.0, 1.2, 3.0],
            (0.5, -0.4),
            400,
            4,
        );
        let ages: Vec<String> = (0..obs.len()).map(|i| format!("{}", 20 + i % 7)).collect();
        let purchase = Design::new(&[
            CovariateColumn {
                name: "channel".into(),
                values: labels.clone(),
            },
            CovariateColumn {
                name: "age".into(),
                values: ages,
            },
        ])
        .unwrap();
        let dropout = Design::new(&[CovariateColumn {
            name: "channel".into(),
            values: labels,
        }])
        .unwrap();
        let rows = compress(&obs, &purchase, &dropout);
        // r, α₀, a₀, b₀, then e^γ for γ_p = (0.3, −0.02), γ_d = 0.2.
        let p = [
            0.7,
            4.0,
            1.1,
            2.5,
            0.3f64.exp(),
            (-0.02f64).exp(),
            0.2f64.exp(),
        ];
        for model in PurchaseModel::ALL {
            let profiles = Profiles::new(&rows, model);
            let total = |p: &[f64]| -> f64 {
                let gammas: Vec<f64> = p[4..].iter().map(|v| v.ln()).collect();
                rows.obs
                    .iter()
                    .zip(&rows.profile)
                    .zip(&rows.weights)
                    .map(|((o, &g), w)| {
                        let (zp, zd) = &rows.profiles[g as usize];
                        w * row_log_likelihood(
                            model,
                            &p[..4],
                            &gammas[..2],
                            &gammas[2..],
                            o,
                            zp,
                            zd,
                        )
                    })
                    .sum()
            };
            let n = 1.0;
            let (nll, grad) = profiles.mean_nll_and_gradient(model, &p, n);
            let ll = -nll;
            assert!(
                (ll - total(&p)).abs() < 1e-8 * ll.abs(),
                "{}: {ll} vs {}",
                model.label(),
                total(&p)
            );
            for i in 0..p.len() {
                let h = 1e-6 * p[i];
                let (mut up, mut down) = (p, p);
                up[i] += h;
                down[i] -= h;
                let numeric = (total(&up) - total(&down)) / (2.0 * h);
                assert!(
                    (-grad[i] - numeric).abs() < 1e-4 * numeric.abs().max(1.0),
                    "{} ∂{i}: {} vs {numeric}",
                    model.label(),
                    -grad[i]
                );
            }
            if model != PurchaseModel::Bgnbd {
                continue;
            }
            // The chain-ruled Hessian: each column equals central differences of the
            // (checked) analytic gradient.
            let (_, g0, hess) = profiles.mean_nll_gradient_hessian(model, &p, n);
            assert_eq!(g0, grad);
            for j in 0..p.len() {
                let h = 1e-5 * p[j];
                let (mut up, mut down) = (p, p);
                up[j] += h;
                down[j] -= h;
                let (_, gu) = profiles.mean_nll_and_gradient(model, &up, n);
                let (_, gd) = profiles.mean_nll_and_gradient(model, &down, n);
                for i in 0..p.len() {
                    let numeric = (gu[i] - gd[i]) / (2.0 * h);
                    assert!(
                        (hess[i][j] - numeric).abs() < 1e-5 * numeric.abs().max(1.0),
                        "∂²{i}{j}: {} vs {numeric}",
                        hess[i][j]
                    );
                }
            }
        }
    }

    #[test]
    fn the_newton_fit_equals_the_gradient_fit_in_the_original_unit() {
        // BG/NBD's covariate fit takes Newton steps on rescaled time and converts the optimum;
        // L-BFGS on the same likelihood in the original unit, with standard errors from central
        // differences of the gradient, must land on the same estimates.
        let model = PurchaseModel::Bgnbd;
        let (obs, labels) = simulate(model, [0.8, 5.0, 1.2, 3.0], (0.5, -0.4), 2000, 5);
        let design = Design::new(&[CovariateColumn {
            name: "channel".into(),
            values: labels,
        }])
        .unwrap();
        let options = FitOptions::default();
        let without = model.fit(&obs, 7.0, &options).unwrap();
        let fit = fit_purchase_with_covariates(model, &obs, &design, &design, &without, &options)
            .unwrap();
        let rows = compress(&obs, &design, &design);
        let profiles = Profiles::new(&rows, model);
        let n = obs.len() as f64;
        let f = |p: &[f64]| profiles.mean_nll_and_gradient(model, p, n);
        let mut start: Vec<f64> = without.params().iter().map(|(_, v)| *v).collect();
        start.extend([1.0, 1.0]);
        let check =
            maximise_with_gradient("check", &f, &[start], n, rows.obs.len(), &options).unwrap();
        let ll = fit.diagnostics.log_likelihood;
        assert!((ll - check.diagnostics.log_likelihood).abs() < 1e-6 * ll.abs());
        let estimates: Vec<f64> = fit
            .params
            .iter()
            .map(|(_, v)| v.ln())
            .chain(fit.coefficients.iter().map(|c| c.estimate))
            .collect();
        let errors: Vec<f64> = fit
            .standard_errors
            .iter()
            .map(|(_, se)| se.unwrap())
            .zip(&fit.params)
            .map(|(se, (_, v))| se / v)
            .chain(fit.coefficients.iter().map(|c| c.standard_error.unwrap()))
            .collect();
        for (i, (theta, se)) in estimates.iter().zip(&errors).enumerate() {
            let want = check.params[i].ln();
            let want_se = check.diagnostics.standard_errors[i].unwrap() / check.params[i];
            assert!(
                (theta - want).abs() < 1e-3 * want_se,
                "θ{i}: {theta} vs {want}"
            );
            assert!(
                (se - want_se).abs() < 1e-3 * want_se,
                "SE θ{i}: {se} vs {want_se}"
            );
        }
        // A penalty pulls every coefficient towards 0 (the refined run in the original unit).
        let penalised = fit_purchase_with_covariates(
            model,
            &obs,
            &design,
            &design,
            &without,
            &FitOptions {
                penalizer: 0.05,
                ..options
            },
        )
        .unwrap();
        for (p, c) in penalised.coefficients.iter().zip(&fit.coefficients) {
            assert!(
                p.estimate.abs() < c.estimate.abs(),
                "{} vs {}",
                p.estimate,
                c.estimate
            );
        }
    }

    #[test]
    fn at_zero_coefficients_the_likelihood_is_the_covariate_free_one() {
        let obs = crate::models::testdata::cdnow();
        for model in PurchaseModel::ALL {
            let without = model.fit(&obs, 7.0, &FitOptions::default()).unwrap();
            let base: Vec<f64> = without.params().iter().map(|(_, v)| *v).collect();
            let with: f64 = obs
                .iter()
                .map(|o| row_log_likelihood(model, &base, &[0.0], &[0.0], o, &[1.0], &[1.0]))
                .sum();
            let ll = without.diagnostics().log_likelihood;
            assert!(
                (with - ll).abs() < 1e-6 * ll.abs(),
                "{}: {with} vs {ll}",
                model.label()
            );
        }
    }

    #[test]
    fn a_covariate_without_effect_leaves_the_fit_as_it_was() {
        // A coin flip per CDNOW customer: γ ≈ 0 within its SE, the base parameters close to the
        // covariate-free fit, and the likelihood-ratio test does not reject.
        let obs = crate::models::testdata::cdnow();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let labels: Vec<String> = obs
            .iter()
            .map(|_| if rng.random::<bool>() { "a" } else { "b" }.to_string())
            .collect();
        let design = Design::new(&[CovariateColumn {
            name: "coin".into(),
            values: labels,
        }])
        .unwrap();
        let options = FitOptions::default();
        let without = PurchaseModel::Bgnbd.fit(&obs, 7.0, &options).unwrap();
        let fit = fit_purchase_with_covariates(
            PurchaseModel::Bgnbd,
            &obs,
            &design,
            &Design::empty(),
            &without,
            &options,
        )
        .unwrap();
        let c = &fit.coefficients[0];
        assert!(c.estimate.abs() < 2.5 * c.standard_error.unwrap(), "{c:?}");
        assert!(fit.likelihood_ratio_p > 0.01, "{}", fit.likelihood_ratio_p);
        for ((name, v), (_, w)) in fit.params.iter().zip(without.params()) {
            assert!((v - w).abs() < 0.1 * w, "{name}: {v} vs {w}");
        }
    }

    #[test]
    fn spend_covariates_scale_the_mean_spend() {
        // z̄ | ν ~ Gamma(p x, ν x), ν ~ Gamma(q, γ₀ e^(δ z)): paid customers spend e^0.3 = 1.35
        // times as much per purchase.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        let (p, q, g0, delta) = (6.0, 4.0, 15.0, 0.3);
        let mut customers = Vec::new();
        let mut labels = Vec::new();
        for _ in 0..3000 {
            // 40% paid: organic, the most frequent, is the base level.
            let z = f64::from(u8::from(rng.random_bool(0.4)));
            labels.push(if z > 0.0 { "paid" } else { "organic" }.to_string());
            let x = f64::from(rng.random_range(1..6u32));
            let nu: f64 = Gamma::new(q, 1.0 / (g0 * (delta * z).exp()))
                .unwrap()
                .sample(&mut rng);
            let mean: f64 = Gamma::new(p * x, 1.0 / (nu * x)).unwrap().sample(&mut rng);
            customers.push((x, mean));
        }
        let design = Design::new(&[CovariateColumn {
            name: "channel".into(),
            values: labels,
        }])
        .unwrap();
        let options = FitOptions::default();
        let without = super::super::gamma_gamma::GammaGamma::fit(&customers, &options).unwrap();
        assert_eq!(design.names, ["channel=paid"]);
        let fit = fit_spend_with_covariates(&customers, &design, &without, &options).unwrap();
        let c = &fit.coefficients[0];
        let se = c.standard_error.unwrap();
        assert!(
            (c.estimate - delta).abs() < 3.0 * se,
            "δ = {} ± {se}",
            c.estimate
        );
        assert!(
            c.effect.contains("spend") && c.effect.contains("more per purchase"),
            "{}",
            c.effect
        );
    }
}
