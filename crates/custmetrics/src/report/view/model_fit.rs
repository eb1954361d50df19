//! A fitted model (`clv fit`): estimates, fit figures, predictions, holdout check.

use super::{Block, Fmt, table};
use crate::models::fitted::FittedModel;

/// A fitted model: estimates with standard errors, fit figures, its prediction table, then the
/// spend model and the holdout check.
pub(super) fn view<'r>(m: &'r FittedModel, fm: Fmt, out: &mut Vec<Block<'r>>) {
    let unit = match m.time_unit_days {
        Some(7.0) => " (times in weeks)".to_string(),
        Some(1.0) => " (times in days)".to_string(),
        Some(d) => format!(" (times in {d}-day units)"),
        None => String::new(),
    };
    out.push(Block::Heading(format!("{} fit{unit}", m.label)));
    let se = |name: &str| {
        m.standard_errors
            .0
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| fm.dash(), |(_, s)| format!("{s:.4}"))
    };
    out.push(table(
        &format!("{}_params", m.model),
        &["parameter", "estimate", "standard error"],
        &[false, true, true],
        m.params
            .0
            .iter()
            .map(|(name, v)| vec![name.clone(), format!("{v:.4}"), se(name)])
            .collect(),
    ));
    let mut figures = vec![
        (
            "Log-likelihood".to_string(),
            format!("{:.3}", m.log_likelihood),
        ),
        (
            "AIC / BIC".to_string(),
            format!("{:.1} / {:.1}", m.aic, m.bic),
        ),
        ("Customers".to_string(), m.n_customers.to_string()),
        ("Distinct rows".to_string(), m.distinct_rows.to_string()),
        ("Iterations".to_string(), m.iterations.to_string()),
        (
            "Converged".to_string(),
            if m.converged { "yes" } else { "no" }.into(),
        ),
    ];
    figures.extend(
        m.figures
            .0
            .iter()
            .map(|(k, v)| (k.replace('_', " "), format!("{v:.3}"))),
    );
    out.push(Block::Figures(figures));
    for w in &m.warnings {
        out.push(Block::Note(format!("Warning: {w}")));
    }
    if let Some(p) = &m.predictions {
        out.push(Block::Heading(p.title.clone()));
        let headers: Vec<String> = p.columns.iter().map(|c| c.replace('_', " ")).collect();
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        out.push(table(
            &format!("{}_predictions", m.model),
            &headers,
            &vec![true; headers.len()],
            p.rows
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|v| {
                            if !v.is_finite() {
                                fm.dash()
                            } else if v.fract() == 0.0 && v.abs() < 1e9 {
                                format!("{v:.0}")
                            } else {
                                format!("{v:.4}")
                            }
                        })
                        .collect()
                })
                .collect(),
        ));
    }
    if let Some(c) = &m.covariates {
        super::clv::covariates(c, fm, out);
    }
    if let Some(h) = &m.holdout {
        super::clv::holdout(h, fm, out);
    }
    if let Some(s) = &m.spend {
        view(s, fm, out);
    }
}
