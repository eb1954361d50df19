//! Predicted CLV: the purchase and spend models' figures, the holdout check, percentiles and the
//! ranked customers.

use super::{
    Block, Chart, Fmt, Line, Plot, ValueFormat, figures, put, put_text, table, table_on_demand,
};
use crate::models::clv::{ClvResult, HoldoutValidation};
use crate::models::cohort_forecast::CohortForecast;
use crate::models::compare::ModelComparison;
use crate::models::covariates::CovariateResult;
use crate::models::intervals::{self, Interval};
use crate::report::Section;

/// The CLV figures and model parameters, the holdout check when there is one, the percentiles
/// and the per-customer table (its rows formatted on demand); charts of the percentiles and of
/// the top 10 customers.
pub(super) fn view<'r>(c: &'r ClvResult, fm: Fmt, out: &mut Vec<Block<'r>>) {
    let unit = match c.options.time_unit_days {
        7 => "weeks".to_string(),
        1 => "days".to_string(),
        d => format!("{d}-day units"),
    };
    let model = c.purchase_model.model().label();
    out.push(Block::Heading(format!(
        "Predicted CLV ({model} + Gamma-Gamma, next {} {unit})",
        c.options.horizon
    )));
    let g = c.spend_model.params;
    let params_label = format!(
        "{model} {}",
        c.purchase_model
            .params()
            .iter()
            .map(|(name, _)| match *name {
                "alpha" => "α",
                "beta" => "β",
                other => other,
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    out.push(figures(&[
        ("Customers scored", c.customers.to_string()),
        ("Predicted CLV, total", fm.money(c.total_clv)),
        ("Predicted CLV, mean", fm.money(c.mean_clv)),
        ("Expected purchases", fm.num(c.expected_purchases, 1)),
        (
            "Likely lapsed (P(alive) < 50%)",
            c.likely_lapsed.to_string(),
        ),
        (
            "Mean P(alive) now / at the horizon's end",
            format!(
                "{} / {}",
                c.alive_mean.map_or_else(|| "n/a".into(), |a| fm.pct(a)),
                c.alive_mean_at_horizon
                    .map_or_else(|| "n/a".into(), |a| fm.pct(a))
            ),
        ),
        (
            "Discount rate",
            format!(
                "{} a year = {:.5} per {}",
                fm.pct(c.options.annual_discount_rate),
                c.discount_rate_per_unit,
                unit.trim_end_matches('s')
            ),
        ),
        (
            params_label.as_str(),
            format!(
                "{} (LL {:.2})",
                c.purchase_model
                    .params()
                    .iter()
                    .map(|(_, v)| format!("{v:.4}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                c.purchase_model.diagnostics().log_likelihood
            ),
        ),
        (
            "Gamma-Gamma p, q, γ",
            format!("{:.4}, {:.4}, {:.4}", g.p, g.q, g.gamma),
        ),
        (
            "Frequency–spend correlation",
            format!("{:.3}", c.spend_model.frequency_spend_correlation),
        ),
    ]));
    if let Some(w) = &c.spend_model.warning {
        out.push(Block::Note(format!("Warning: {w}")));
    }
    if let Some(m) = &c.comparison {
        comparison(m, fm, out);
    }
    for finding in &c.audit {
        out.push(Block::Note(format!("Warning: {}", finding.message)));
    }
    if let Some(i) = &c.intervals {
        let pct = fm.pct(i.level);
        let range = |x: Interval, money: bool, decimals: usize| {
            if money {
                format!("{} to {}", fm.money(x.low), fm.money(x.high))
            } else {
                format!(
                    "{} to {}",
                    fm.num(x.low, decimals),
                    fm.num(x.high, decimals)
                )
            }
        };
        out.push(Block::Heading(format!("Prediction intervals ({pct})")));
        out.push(figures(&[
            ("Predicted CLV, total", range(i.total_clv, true, 2)),
            ("Predicted CLV, mean", range(i.mean_clv, true, 2)),
            ("Expected purchases", range(i.expected_purchases, false, 1)),
            (
                "Mean P(alive)",
                format!(
                    "{} to {}",
                    fm.pct(i.alive_mean.low),
                    fm.pct(i.alive_mean.high)
                ),
            ),
            (
                "Method",
                format!("{} {} (seed {})", i.draws, intervals::METHOD, i.seed),
            ),
        ]));
        out.push(Block::Note(
            "The intervals cover the models' expected values given the parameters' uncertainty; \
             actual purchases also vary around their expectation."
                .into(),
        ));
    }
    if let Some(why) = &c.intervals_unavailable {
        out.push(Block::Note(format!(
            "Prediction intervals not computed: {why}"
        )));
    }
    if let Some(cov) = &c.covariates {
        covariates(cov, fm, out);
    }
    if let Some(h) = &c.holdout {
        holdout(h, fm, out);
    }
    let unit_name = match c.options.time_unit_days {
        7 => "weeks",
        1 => "days",
        _ => "units",
    };
    // With intervals, the block's low and high follow its purchases and its CLV.
    let block_intervals = c.intervals.as_ref().map(|i| &i.by_period);
    let mut headers = vec![unit_name, "expected purchases"];
    if block_intervals.is_some() {
        headers.extend(["purchases low", "purchases high"]);
    }
    headers.push("CLV");
    if block_intervals.is_some() {
        headers.extend(["CLV low", "CLV high"]);
    }
    let numeric: Vec<bool> = (0..headers.len()).map(|i| i > 0).collect();
    out.push(table(
        "clv_by_period",
        &headers,
        &numeric,
        c.by_period
            .iter()
            .enumerate()
            .map(|(k, b)| {
                let iv = block_intervals.and_then(|v| v.get(k));
                let mut row = vec![
                    format!("{}–{}", b.from_unit, b.to_unit),
                    fm.num(b.expected_purchases, 1),
                ];
                if let Some(iv) = iv {
                    row.push(fm.num(iv.expected_purchases.low, 1));
                    row.push(fm.num(iv.expected_purchases.high, 1));
                }
                row.push(fm.money(b.clv));
                if let Some(iv) = iv {
                    row.push(fm.money(iv.clv.low));
                    row.push(fm.money(iv.clv.high));
                }
                row
            })
            .collect(),
    ));
    if let Some(f) = &c.cohort_forecast {
        forecast(f, fm, out);
    }
    out.push(table(
        "clv_percentiles",
        &["percentile", "CLV"],
        &[false, true],
        c.clv_percentiles
            .iter()
            .map(|(q, v)| vec![format!("p{:.0}", q * 100.0), fm.money(*v)])
            .collect(),
    ));
    let ranked = &c.ranked;
    // With intervals, a low and a high column follow P(alive), expected purchases and CLV.
    let with_intervals = c.intervals.is_some();
    let mut headers = vec!["customer", "frequency", "recency", "T", "P(alive)"];
    if with_intervals {
        headers.extend(["P(alive) low", "P(alive) high"]);
    }
    headers.extend(["P(alive) at end", "expected purchases"]);
    if with_intervals {
        headers.extend(["purchases low", "purchases high"]);
    }
    headers.extend(["expected spend", "CLV"]);
    if with_intervals {
        headers.extend(["CLV low", "CLV high"]);
    }
    let numeric: Vec<bool> = (0..headers.len()).map(|i| i > 0).collect();
    out.push(table_on_demand(
        "clv_customers",
        &headers,
        &numeric,
        ranked.len(),
        move |i, cells| {
            let Some(x) = ranked.get(i) else {
                return;
            };
            let mut cells = cells.iter_mut();
            let mut next = || cells.next();
            let iv = x.intervals.as_deref().copied().filter(|_| with_intervals);
            if let Some(cell) = next() {
                put_text(cell, x.customer_id.as_str());
            }
            for (value, decimals) in [(x.frequency, 0), (x.recency, 1), (x.t, 1)] {
                if let Some(cell) = next() {
                    fm.put_num(cell, value, decimals);
                }
            }
            let mut pct = |v: f64| {
                if let Some(cell) = next() {
                    fm.put_pct(cell, v);
                }
            };
            pct(x.probability_alive);
            if let Some(iv) = &iv {
                pct(iv.probability_alive.low);
                pct(iv.probability_alive.high);
            } else if with_intervals {
                pct(f64::NAN);
                pct(f64::NAN);
            }
            pct(x.probability_alive_at_horizon);
            let mut num = |v: f64| {
                if let Some(cell) = next() {
                    fm.put_num(cell, v, 2);
                }
            };
            num(x.expected_purchases);
            if with_intervals {
                num(iv.map_or(f64::NAN, |iv| iv.expected_purchases.low));
                num(iv.map_or(f64::NAN, |iv| iv.expected_purchases.high));
            }
            let mut money = |v: f64| {
                if let Some(cell) = next() {
                    fm.put_money(cell, v);
                }
            };
            money(x.expected_average_spend);
            money(x.clv);
            if with_intervals {
                money(iv.map_or(f64::NAN, |iv| iv.clv.low));
                money(iv.map_or(f64::NAN, |iv| iv.clv.high));
            }
        },
    ));
    if let Some(i) = &c.intervals {
        out.push(Block::Chart(Chart {
            section: Section::Clv,
            caption: format!(
                "Expected repeat purchases of today's customers, cumulative over the horizon, with the {} interval",
                fm.pct(i.level)
            ),
            title: "Expected purchases ahead".into(),
            plot: Plot::Lines {
                x_labels: i.cumulative_purchases.iter().map(|p| p.t.to_string()).collect(),
                lines: vec![Line {
                    name: "expected purchases".into(),
                    values: i
                        .cumulative_purchases
                        .iter()
                        .map(|p| Some(p.expected_purchases))
                        .collect(),
                    band: Some(
                        i.cumulative_purchases
                            .iter()
                            .map(|p| Some((p.low, p.high)))
                            .collect(),
                    ),
                }],
                y_range: None,
                y_format: ValueFormat::Number(1),
            },
        }));
    }
    out.push(Block::Chart(Chart {
        section: Section::Clv,
        caption: "Predicted CLV distribution (percentiles)".into(),
        title: "CLV percentiles".into(),
        plot: Plot::Bars {
            bars: c
                .clv_percentiles
                .iter()
                .map(|(q, v)| (format!("p{:.0}", q * 100.0), *v))
                .collect(),
            format: ValueFormat::Number(2),
        },
    }));
    out.push(Block::Chart(Chart {
        section: Section::Clv,
        caption: "Top customers by predicted CLV".into(),
        title: "Top customers".into(),
        plot: Plot::Bars {
            bars: c
                .ranked
                .iter()
                .take(10)
                .map(|x| (x.customer_id.to_string(), x.clv))
                .collect(),
            format: ValueFormat::Number(2),
        },
    }));
}

/// The models refitted with customer attributes: each coefficient with its standard error,
/// the factor it puts on the mean rate or spend with its 95% interval, and the effect in words;
/// the base levels and the likelihood-ratio test against the covariate-free fit. Shared with
/// the model-fit view (`clv fit`).
pub(super) fn covariates<'r>(c: &'r CovariateResult, fm: Fmt, out: &mut Vec<Block<'r>>) {
    for fit in [&c.purchase, &c.spend].into_iter().flatten() {
        out.push(Block::Heading(format!("{}: covariate effects", fit.label)));
        out.push(table(
            &format!("{}_covariates", fit.model),
            &[
                "process",
                "covariate",
                "coefficient",
                "standard error",
                "factor",
                "factor low",
                "factor high",
                "effect",
            ],
            &[false, false, true, true, true, true, true, false],
            fit.coefficients
                .iter()
                .map(|k| {
                    let opt = |v: Option<f64>| v.map_or_else(|| fm.dash(), |v| format!("{v:.3}"));
                    vec![
                        k.process.replace('_', " "),
                        k.covariate.clone(),
                        format!("{:.4}", k.estimate),
                        opt(k.standard_error),
                        format!("{:.3}", k.ratio),
                        opt(k.ratio_low),
                        opt(k.ratio_high),
                        k.effect.clone(),
                    ]
                })
                .collect(),
        ));
        let base: Vec<String> = fit
            .params
            .iter()
            .map(|(n, v)| format!("{n} = {v:.4}"))
            .collect();
        let levels: Vec<String> = fit
            .bases
            .iter()
            .map(|(column, level, n)| format!("{column} = {level} ({n} customers)"))
            .collect();
        out.push(Block::Note(format!(
            "At the base levels{}: {}. Factors are exp(coefficient), 95% intervals exp(γ ± 1.96 SE). Likelihood-ratio test against the model without covariates: χ² = {:.2}, p {}; log-likelihood {:.3} vs {:.3}.",
            if levels.is_empty() {
                String::new()
            } else {
                format!(" ({})", levels.join(", "))
            },
            base.join(", "),
            fit.likelihood_ratio,
            if fit.likelihood_ratio_p < 1e-4 {
                "≤ 0.0001".to_string()
            } else {
                format!("= {:.4}", fit.likelihood_ratio_p)
            },
            fit.diagnostics.log_likelihood,
            fit.log_likelihood_without
        )));
    }
    for why in &c.unavailable {
        out.push(Block::Note(format!("Covariates not fitted: {why}")));
    }
}

/// The cohort triangle's next periods as the models forecast them: one row per cohort and
/// future period, with the interval columns when intervals were computed.
fn forecast<'r>(f: &'r CohortForecast, fm: Fmt, out: &mut Vec<Block<'r>>) {
    out.push(Block::Heading(format!(
        "Cohort forecast: the next {} {}s after {} (forecast, not actuals)",
        f.periods, f.period, f.observed_to
    )));
    let with_intervals = f.level.is_some();
    let mut headers = vec!["cohort", "period", "offset", "customers", "expected active"];
    if with_intervals {
        headers.extend(["active low", "active high"]);
    }
    headers.extend(["expected rate", "expected revenue"]);
    if with_intervals {
        headers.extend(["revenue low", "revenue high"]);
    }
    let numeric: Vec<bool> = (0..headers.len()).map(|i| i > 1).collect();
    let rows = f
        .cells
        .iter()
        .map(|cell| {
            let mut row = vec![
                cell.cohort.clone(),
                cell.period.clone(),
                format!("+{}", cell.offset),
                cell.customers.to_string(),
                fm.num(cell.expected_active, 1),
            ];
            if with_intervals {
                let iv = cell.active_interval.unwrap_or(Interval {
                    low: f64::NAN,
                    high: f64::NAN,
                });
                row.extend([fm.num(iv.low, 1), fm.num(iv.high, 1)]);
            }
            row.extend([fm.pct(cell.rate), fm.money(cell.expected_revenue)]);
            if with_intervals {
                let iv = cell.revenue_interval.unwrap_or(Interval {
                    low: f64::NAN,
                    high: f64::NAN,
                });
                row.extend([fm.money(iv.low), fm.money(iv.high)]);
            }
            row
        })
        .collect();
    out.push(table("clv_cohort_forecast", &headers, &numeric, rows));
    out.push(Block::Note(format!(
        "Cohorts by first purchase. Expected active = Σ P(alive) × P(a purchase in the period | alive); expected revenue = expected purchases × Gamma-Gamma's expected spend{}.",
        f.level.map_or(String::new(), |l| format!(
            "; low/high: the {} interval over the parameter draws",
            fm.pct(l)
        ))
    )));
    if let Some(why) = &f.intervals_unavailable {
        out.push(Block::Note(format!(
            "Forecast intervals not computed: {why}"
        )));
    }
}

/// The calibration/holdout check (FHL 2005): totals and error figures, conditional expectations
/// by calibration frequency, decile calibration, tracking, and their charts. Shared with the
/// model-fit view (`clv fit`).
pub(super) fn holdout<'r>(h: &'r HoldoutValidation, fm: Fmt, out: &mut Vec<Block<'r>>) {
    out.push(Block::Heading(format!(
        "Holdout check: fitted before {}, predicted vs actual purchases {} to {}",
        h.holdout_from, h.holdout_from, h.holdout_to
    )));
    out.push(figures(&[
        ("Customers", h.customers.to_string()),
        ("Predicted purchases", fm.num(h.predicted_total, 1)),
        ("Actual purchases", fm.num(h.actual_total, 0)),
        (
            "Mean absolute error per customer",
            fm.num(h.mean_absolute_error, 3),
        ),
        (
            "Root mean squared error per customer",
            fm.num(h.root_mean_squared_error, 3),
        ),
        ("Bias per customer (predicted − actual)", fm.num(h.bias, 3)),
        (
            "Total error",
            h.total_error.map_or_else(|| "n/a".into(), |e| fm.pct(e)),
        ),
    ]));
    out.push(table(
        "clv_holdout",
        &[
            "calibration purchases",
            "customers",
            "predicted (mean)",
            "actual (mean)",
        ],
        &[false, true, true, true],
        h.by_frequency
            .iter()
            .map(|b| {
                vec![
                    if b.frequency >= 7 {
                        "7+".into()
                    } else {
                        b.frequency.to_string()
                    },
                    b.customers.to_string(),
                    fm.num(b.predicted_mean, 3),
                    fm.num(b.actual_mean, 3),
                ]
            })
            .collect(),
    ));
    holdout_diagnostics(h, fm, out);
}

/// The holdout's decile calibration and tracking tables, and the charts of Fader, Hardie & Lee
/// (2005): tracking (cumulative and per unit, figs. 2–3) and conditional expectations (fig. 4).
fn holdout_diagnostics<'r>(h: &'r HoldoutValidation, fm: Fmt, out: &mut Vec<Block<'r>>) {
    out.push(table(
        "clv_holdout_deciles",
        &[
            "decile of predicted purchases",
            "customers",
            "predicted (mean)",
            "actual (mean)",
        ],
        &[false, true, true, true],
        h.deciles
            .iter()
            .map(|b| {
                vec![
                    b.frequency.to_string(),
                    b.customers.to_string(),
                    fm.num(b.predicted_mean, 3),
                    fm.num(b.actual_mean, 3),
                ]
            })
            .collect(),
    ));
    if !h.calibration_histogram.is_empty() {
        out.push(table(
            "clv_calibration_histogram",
            &[
                "calibration repeat purchases",
                "customers",
                "expected (model)",
            ],
            &[false, true, true],
            h.calibration_histogram
                .iter()
                .map(|b| {
                    vec![
                        if b.purchases >= 7 {
                            "7+".into()
                        } else {
                            b.purchases.to_string()
                        },
                        b.actual.to_string(),
                        fm.num(b.expected, 1),
                    ]
                })
                .collect(),
        ));
    }
    let tracking = &h.tracking;
    out.push(table_on_demand(
        "clv_tracking",
        &[
            "unit",
            "from",
            "period",
            "actual",
            "expected",
            "cumulative actual",
            "cumulative expected",
        ],
        &[true, false, false, true, true, true, true],
        tracking.len(),
        move |i, cells| {
            let (
                Some(p),
                [
                    unit,
                    from,
                    period,
                    actual,
                    expected,
                    cum_actual,
                    cum_expected,
                ],
            ) = (tracking.get(i), cells)
            else {
                return;
            };
            put(unit, p.unit.to_string());
            put(from, &p.from);
            put(period, if p.holdout { "holdout" } else { "calibration" });
            put(actual, p.actual.to_string());
            fm.put_num(expected, p.expected, 1);
            put(cum_actual, p.cumulative_actual.to_string());
            fm.put_num(cum_expected, p.cumulative_expected, 1);
        },
    ));
    if tracking.is_empty() {
        return;
    }
    // Unit numbers, not dates: 78 dates do not fit under a chart a third of a page wide.
    let labels: Vec<String> = tracking.iter().map(|p| p.unit.to_string()).collect();
    let holdout_unit = tracking
        .iter()
        .find(|p| p.holdout)
        .map_or_else(String::new, |p| {
            format!(", holdout from unit {} ({})", p.unit, p.from)
        });
    let first = tracking.first().map_or("", |p| p.from.as_str());
    let line = |name: &str, values: Vec<f64>| Line {
        name: name.into(),
        values: values.into_iter().map(Some).collect(),
        band: None,
    };
    out.push(Block::Chart(Chart {
        section: Section::Clv,
        caption: format!(
            "Cumulative repeat purchases, actual and expected, by time unit from {first}{holdout_unit}"
        ),
        title: "Tracking, cumulative".into(),
        plot: Plot::Lines {
            x_labels: labels.clone(),
            lines: vec![
                line(
                    "actual",
                    tracking
                        .iter()
                        .map(|p| p.cumulative_actual as f64)
                        .collect(),
                ),
                line(
                    "model",
                    tracking.iter().map(|p| p.cumulative_expected).collect(),
                ),
            ],
            y_range: None,
            y_format: ValueFormat::Number(0),
        },
    }));
    out.push(Block::Chart(Chart {
        section: Section::Clv,
        caption: format!(
            "Repeat purchases per time unit from {first}, actual and expected{holdout_unit}"
        ),
        title: "Tracking, per unit".into(),
        plot: Plot::Lines {
            x_labels: labels,
            lines: vec![
                line("actual", tracking.iter().map(|p| p.actual as f64).collect()),
                line("model", tracking.iter().map(|p| p.expected).collect()),
            ],
            y_range: None,
            y_format: ValueFormat::Number(1),
        },
    }));
    if !h.calibration_histogram.is_empty() {
        let bins = &h.calibration_histogram;
        out.push(Block::Chart(Chart {
            section: Section::Clv,
            caption: "Customers by repeat purchases in the calibration period, actual and expected"
                .into(),
            title: "Calibration frequencies".into(),
            plot: Plot::Lines {
                x_labels: bins
                    .iter()
                    .map(|b| {
                        if b.purchases >= 7 {
                            "7+".into()
                        } else {
                            b.purchases.to_string()
                        }
                    })
                    .collect(),
                lines: vec![
                    line("actual", bins.iter().map(|b| b.actual as f64).collect()),
                    line("model", bins.iter().map(|b| b.expected).collect()),
                ],
                y_range: None,
                y_format: ValueFormat::Number(0),
            },
        }));
    }
    out.push(Block::Chart(Chart {
        section: Section::Clv,
        caption: "Holdout purchases by calibration purchases (conditional expectations), mean per customer".into(),
        title: "Conditional expectations".into(),
        plot: Plot::Lines {
            x_labels: h
                .by_frequency
                .iter()
                .map(|b| {
                    if b.frequency >= 7 {
                        "7+".into()
                    } else {
                        b.frequency.to_string()
                    }
                })
                .collect(),
            lines: vec![
                line(
                    "actual",
                    h.by_frequency.iter().map(|b| b.actual_mean).collect(),
                ),
                line(
                    "model",
                    h.by_frequency.iter().map(|b| b.predicted_mean).collect(),
                ),
            ],
            y_range: None,
            y_format: ValueFormat::Number(2),
        },
    }));
}

/// The models side by side (`clv compare`), the chosen one and why.
fn comparison<'r>(m: &'r ModelComparison, fm: Fmt, out: &mut Vec<Block<'r>>) {
    out.push(Block::Heading(
        "Model comparison (the same customers)".into(),
    ));
    let with_holdout = m.models.iter().any(|r| r.holdout.is_some());
    let mut columns = vec!["model", "estimates", "log-likelihood", "AIC", "BIC"];
    if with_holdout {
        columns.extend([
            "holdout MAE",
            "holdout RMSE",
            "holdout bias",
            "holdout total error",
        ]);
    }
    columns.push("status");
    let numeric: Vec<bool> = columns
        .iter()
        .map(|c| !matches!(*c, "model" | "estimates" | "status"))
        .collect();
    let opt = |v: Option<f64>, decimals: usize| v.map_or_else(String::new, |v| fm.num(v, decimals));
    let rows = m
        .models
        .iter()
        .map(|r| {
            let mut row = vec![
                r.label.clone(),
                r.params
                    .0
                    .iter()
                    .map(|(k, v)| format!("{k} {v:.4}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                opt(r.log_likelihood, 2),
                opt(r.aic, 1),
                opt(r.bic, 1),
            ];
            if with_holdout {
                let h = r.holdout.as_ref();
                row.extend([
                    opt(h.map(|h| h.mean_absolute_error), 4),
                    opt(h.map(|h| h.root_mean_squared_error), 4),
                    opt(h.map(|h| h.bias), 4),
                    h.and_then(|h| h.total_error)
                        .map_or_else(String::new, |e| fm.pct(e)),
                ]);
            }
            row.push(match (&r.error, r.model == m.chosen) {
                (Some(e), _) => format!("not fitted: {e}"),
                (None, true) => "chosen".into(),
                (None, false) => String::new(),
            });
            row
        })
        .collect();
    out.push(table("clv_comparison", &columns, &numeric, rows));
    out.push(Block::Note(format!(
        "Chosen: {}, {}. A likelihood-ratio test: {}.",
        m.chosen.label(),
        m.reason,
        m.nesting
    )));
}
