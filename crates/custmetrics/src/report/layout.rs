//! The report laid out as titled blocks of key figures and tables of formatted text, shared by the
//! terminal, Markdown and CSV renderers so that they show the same numbers the same way.
//! Formatting (rounding, percent signs) happens here; no metric is computed.

use std::fmt::Write as _;

use super::{Report, Section};

/// A block of the laid-out report; `'r` is the report it was laid out from.
#[derive(Debug)]
pub enum Block<'r> {
    /// A section heading.
    Heading(String),
    /// Label/value pairs.
    Figures(Vec<(String, String)>),
    /// A table.
    Table(TextTable<'r>),
    /// A sentence.
    Note(String),
}

/// A table of formatted cells.
#[derive(Debug)]
pub struct TextTable<'r> {
    /// A file-name-friendly name (`retention_cohorts`), used by the CSV renderer.
    pub name: String,
    /// Column headers.
    pub headers: Vec<String>,
    /// Which columns are numeric (right-aligned).
    pub numeric: Vec<bool>,
    rows: Rows<'r>,
}

/// The per-customer tables have a row per customer (millions): formatting them up front held
/// ~10 Strings a row at once (~1 GB at 2.6M customers) and most of `rfm -f csv`'s time went to
/// allocating and faulting in that memory. Such tables format each row on demand into reused
/// cells while a renderer writes it.
enum Rows<'r> {
    Cells(Vec<Vec<String>>),
    OnDemand { len: usize, fill: FillRow<'r> },
}

/// Formats row `i` into the cells (one per header).
type FillRow<'r> = Box<dyn Fn(usize, &mut [String]) + 'r>;

impl std::fmt::Debug for Rows<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rows::Cells(rows) => f.debug_list().entries(rows).finish(),
            Rows::OnDemand { len, .. } => write!(f, "[{len} rows formatted on demand]"),
        }
    }
}

impl TextTable<'_> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match &self.rows {
            Rows::Cells(rows) => rows.len(),
            Rows::OnDemand { len, .. } => *len,
        }
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `visit` with each row's cells, in order, and stops at its first error. The cells
    /// may be reused between calls; copy what must outlive one call.
    ///
    /// # Errors
    /// The first error `visit` returns.
    pub fn try_for_each_row<E>(
        &self,
        mut visit: impl FnMut(&[String]) -> Result<(), E>,
    ) -> Result<(), E> {
        match &self.rows {
            Rows::Cells(rows) => rows.iter().try_for_each(|row| visit(row)),
            Rows::OnDemand { len, fill } => {
                let mut cells = vec![String::new(); self.headers.len()];
                for i in 0..*len {
                    fill(i, &mut cells);
                    visit(&cells)?;
                }
                Ok(())
            }
        }
    }
}

/// Formats a fraction as a percentage with one decimal.
pub fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// Formats money with two decimals and thousands separators.
pub fn money(x: f64) -> String {
    let s = format!("{:.2}", x.abs());
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{}{grouped}.{frac}", if x < 0.0 { "-" } else { "" })
}

/// Number formatting for display (rounded, grouped, `%`) or for data files (plain numbers).
#[derive(Clone, Copy)]
struct Fmt {
    data: bool,
}

impl Fmt {
    fn pct(self, x: f64) -> String {
        let mut cell = String::new();
        self.put_pct(&mut cell, x);
        cell
    }
    fn opt_pct(self, x: Option<f64>) -> String {
        x.map(|v| self.pct(v)).unwrap_or_else(|| self.dash())
    }
    fn money(self, x: f64) -> String {
        let mut cell = String::new();
        self.put_money(&mut cell, x);
        cell
    }
    fn num(self, x: f64, decimals: usize) -> String {
        let mut cell = String::new();
        self.put_num(&mut cell, x, decimals);
        cell
    }
    fn dash(self) -> String {
        if self.data {
            String::new()
        } else {
            "–".into()
        }
    }
    // The `put_*` forms overwrite a reused cell (tables formatted on demand): data files get
    // no allocation per cell.
    fn put_pct(self, cell: &mut String, x: f64) {
        if self.data {
            put_plain(cell, x);
        } else {
            cell.clear();
            cell.push_str(&pct(x));
        }
    }
    fn put_money(self, cell: &mut String, x: f64) {
        cell.clear();
        if self.data {
            let _ = write!(cell, "{x:.2}");
        } else {
            cell.push_str(&money(x));
        }
    }
    fn put_num(self, cell: &mut String, x: f64, decimals: usize) {
        if self.data {
            put_plain(cell, x);
        } else {
            cell.clear();
            let _ = write!(cell, "{x:.decimals$}");
        }
    }
}

/// Overwrites a reused cell with `x` exactly as `format!("{x}")` writes it (shortest round-trip
/// digits, no exponent), faster: whole numbers as integers, and the usual magnitudes through
/// ryu, whose digits are the same and which writes them without an exponent in that range.
/// Writing the per-customer CSV spent a tenth of `rfm -f csv` in std's float formatting.
fn put_plain(cell: &mut String, x: f64) {
    cell.clear();
    let magnitude = x.abs();
    if x.fract() == 0.0 && (1.0..1e15).contains(&magnitude) {
        let _ = write!(cell, "{}", x as i64);
    } else if (1e-4..1e15).contains(&magnitude) {
        cell.push_str(ryu::Buffer::new().format_finite(x));
    } else {
        let _ = write!(cell, "{x}");
    }
}

/// Overwrites a reused cell with `value`.
fn put(cell: &mut String, value: impl std::fmt::Display) {
    cell.clear();
    let _ = write!(cell, "{value}");
}

fn table<'r>(name: &str, headers: &[&str], numeric: &[bool], rows: Vec<Vec<String>>) -> Block<'r> {
    Block::Table(TextTable {
        name: name.into(),
        headers: headers.iter().map(|h| h.to_string()).collect(),
        numeric: numeric.to_vec(),
        rows: Rows::Cells(rows),
    })
}

/// A table of `len` rows that `fill` formats one at a time, into cells it clears first.
fn table_on_demand<'r>(
    name: &str,
    headers: &[&str],
    numeric: &[bool],
    len: usize,
    fill: impl Fn(usize, &mut [String]) + 'r,
) -> Block<'r> {
    Block::Table(TextTable {
        name: name.into(),
        headers: headers.iter().map(|h| h.to_string()).collect(),
        numeric: numeric.to_vec(),
        rows: Rows::OnDemand {
            len,
            fill: Box::new(fill),
        },
    })
}

/// A fitted model: estimates with standard errors, fit figures, its prediction table, then the
/// spend model and the holdout check.
fn model_fit(out: &mut Vec<Block<'_>>, m: &crate::models::fitted::FittedModel, fm: &Fmt) {
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
    if let Some(h) = &m.holdout {
        out.push(Block::Heading(format!(
            "Holdout check: fitted before {}, predicted vs actual purchases {} to {}",
            h.holdout_from, h.holdout_from, h.holdout_to
        )));
        out.push(Block::Figures(vec![
            ("Customers".into(), h.customers.to_string()),
            ("Predicted purchases".into(), fm.num(h.predicted_total, 1)),
            ("Actual purchases".into(), fm.num(h.actual_total, 0)),
            (
                "Mean absolute error per customer".into(),
                fm.num(h.mean_absolute_error, 3),
            ),
        ]));
    }
    if let Some(s) = &m.spend {
        model_fit(out, s, fm);
    }
}

/// Offsets shown in the cohort triangle for reading (terminal, Markdown); CSV and JSON have all.
pub const READABLE_OFFSETS: u32 = 12;

/// Lays out the report. `full` keeps every cohort offset (CSV); otherwise the triangle stops at
/// [`READABLE_OFFSETS`] so that it fits a screen.
pub fn layout(r: &Report, full: bool) -> Vec<Block<'_>> {
    // CSV (full) gets plain numbers a spreadsheet can read; screens get rounded, grouped text.
    let fm = Fmt { data: full };
    let mut out = Vec::new();
    let f = |pairs: &[(&str, String)]| {
        Block::Figures(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    };
    if let Some(o) = &r.overview {
        out.push(Block::Heading("Overview".into()));
        let mut pairs = vec![
            ("Customers", o.customers.to_string()),
            ("Transactions", o.transactions.to_string()),
            ("Revenue", fm.money(o.revenue)),
            (
                "First date",
                o.first_date.clone().unwrap_or_else(|| fm.dash()),
            ),
            (
                "Last date",
                o.last_date.clone().unwrap_or_else(|| fm.dash()),
            ),
        ];
        if let Some(i) = o.interactions {
            pairs.push(("Interactions", i.to_string()));
        }
        pairs.push(("Period", r.settings.period.clone()));
        if let Some(a) = &r.settings.as_of {
            pairs.push(("As of", a.clone()));
        }
        if let Some(t) = &r.generated_at {
            pairs.push(("Generated", t.clone()));
        }
        out.push(f(&pairs));
        if !o.interactions_by_channel.is_empty() {
            out.push(table(
                "interactions_by_channel",
                &["channel", "interactions", "customers"],
                &[false, true, true],
                o.interactions_by_channel
                    .iter()
                    .map(|c| {
                        vec![
                            c.channel.clone(),
                            c.interactions.to_string(),
                            c.customers.to_string(),
                        ]
                    })
                    .collect(),
            ));
        }
    }
    let shown: Vec<_> = r.headlines.iter().filter(|h| h.value.is_some()).collect();
    if !shown.is_empty() {
        let compared = shown.iter().any(|h| h.previous.is_some());
        out.push(Block::Heading("Headlines".into()));
        let fmt = |unit: &str, v: f64| match unit {
            "money" => fm.money(v),
            "rate" => fm.pct(v),
            "count" => format!("{v:.0}"),
            "days" => format!("{v:.0} days"),
            _ => fm.num(v, 1),
        };
        let delta = |unit: &str, d: f64| {
            let sign = if d > 0.0 { "+" } else { "" };
            match unit {
                // Rates change in percentage points, not percent.
                "rate" => format!("{sign}{:.1} pp", d * 100.0),
                _ => format!("{sign}{}", fmt(unit, d)),
            }
        };
        let rows = shown
            .iter()
            .map(|h| {
                let mut row = vec![
                    h.label.clone(),
                    h.value.map(|v| fmt(&h.unit, v)).unwrap_or_default(),
                ];
                if compared {
                    row.push(
                        h.previous
                            .map(|v| fmt(&h.unit, v))
                            .unwrap_or_else(|| fm.dash()),
                    );
                    row.push(
                        h.delta
                            .map(|d| delta(&h.unit, d))
                            .unwrap_or_else(|| fm.dash()),
                    );
                }
                row
            })
            .collect();
        let (headers, numeric): (&[&str], &[bool]) = if compared {
            (
                &["figure", "value", "previous", "change"],
                &[false, true, true, true],
            )
        } else {
            (&["figure", "value"], &[false, true])
        };
        out.push(table("headlines", headers, numeric, rows));
    }
    if !r.accounting.is_empty() {
        out.push(Block::Heading("Data quality".into()));
        let rows = r
            .accounting
            .iter()
            .map(|(t, a)| {
                use crate::io::load::reason_counts;
                let mut reasons = reason_counts(&a.rejected_by_reason);
                // Rows left out on purpose and answers rejected in used rows are no rejected
                // rows: said apart (only when there are some).
                let mut also = |label: &str, by_reason| {
                    if !reasons.is_empty() {
                        reasons.push_str("; ");
                    }
                    reasons.push_str(&format!("{label}: {}", reason_counts(by_reason)));
                };
                if a.rows_excluded > 0 {
                    also("excluded", &a.excluded_by_reason);
                }
                if a.answers_rejected > 0 {
                    also("answers only, rows used", &a.answers_rejected_by_reason);
                }
                vec![
                    t.clone(),
                    a.rows_read.to_string(),
                    a.rows_used.to_string(),
                    a.rows_rejected.to_string(),
                    reasons,
                ]
            })
            .collect();
        out.push(table(
            "accounting",
            &[
                "table",
                "rows read",
                "used",
                "rejected",
                "rejected by reason",
            ],
            &[false, true, true, true, false],
            rows,
        ));
    }
    if let Some(ret) = &r.retention {
        out.push(Block::Heading(format!("Retention by {}", ret.period)));
        let rows = ret
            .periods
            .iter()
            .map(|p| {
                let mut row = vec![p.period.clone()];
                if !r.settings.by.is_empty() {
                    row.push(p.segment.clone().unwrap_or_else(|| "all".into()));
                }
                row.extend([
                    p.customers_start.to_string(),
                    p.customers_end.to_string(),
                    p.new_customers.to_string(),
                    p.retained.to_string(),
                    p.reactivated.to_string(),
                    fm.opt_pct(p.crr),
                    fm.opt_pct(p.retention_rate),
                    fm.opt_pct(p.churn_rate),
                    fm.opt_pct(p.nrr),
                    fm.opt_pct(p.grr),
                ]);
                row
            })
            .collect();
        let mut headers = vec!["period"];
        if !r.settings.by.is_empty() {
            headers.push("segment");
        }
        headers.extend([
            "start",
            "end",
            "new",
            "retained",
            "reactivated",
            "CRR",
            "retention",
            "churn",
            "NRR",
            "GRR",
        ]);
        let mut numeric = vec![false; headers.len() - 10];
        numeric.extend([true; 10]);
        out.push(table("retention_periods", &headers, &numeric, rows));
        out.push(Block::Note(
            "CRR = (end − new) / start counts reactivated customers; retention = retained / start, churn = 1 − retention."
                .into(),
        ));
        // The triangle as a matrix: one row per cohort, one column per offset.
        let limit = if full { u32::MAX } else { READABLE_OFFSETS };
        let all: Vec<_> = ret
            .cohorts
            .iter()
            .filter(|c| c.segment.is_none() && c.offset <= limit)
            .collect();
        let max_offset = all.iter().map(|c| c.offset).max().unwrap_or(0);
        let truncated = ret.cohorts.iter().any(|c| c.offset > limit);
        let mut headers: Vec<String> = vec!["cohort".into(), "customers".into()];
        headers.extend((0..=max_offset).map(|k| format!("+{k}")));
        let mut rows: Vec<Vec<String>> = Vec::new();
        for c in &all {
            if c.offset == 0 {
                rows.push(vec![c.cohort.clone(), c.customers.to_string()]);
            }
            if let Some(row) = rows.last_mut() {
                row.push(fm.pct(c.rate));
            }
        }
        for row in &mut rows {
            row.resize(headers.len(), String::new());
        }
        let mut numeric = vec![false];
        numeric.extend(std::iter::repeat_n(true, headers.len() - 1));
        out.push(Block::Heading(format!(
            "Cohort retention (share of each cohort active k {}s later)",
            ret.period
        )));
        out.push(Block::Table(TextTable {
            name: "retention_cohorts".into(),
            headers,
            numeric,
            rows: Rows::Cells(rows),
        }));
        if truncated {
            out.push(Block::Note(format!(
                "Offsets up to +{READABLE_OFFSETS} shown; JSON and CSV outputs have the whole triangle."
            )));
        }
    }
    if let Some(c) = &r.churn {
        out.push(Block::Heading(format!(
            "Churn (inactive for {} days)",
            c.inactive_after_days
        )));
        let g = &c.inter_purchase_days;
        let days = |x: Option<f64>| {
            x.map(|v| format!("{v:.0} days"))
                .unwrap_or_else(|| fm.dash())
        };
        out.push(f(&[
            (
                "Churned customers",
                format!("{} of {}", c.churned_customers, c.customers),
            ),
            ("Gap between purchases p50", days(g.p50)),
            ("p75", days(g.p75)),
            ("p90", days(g.p90)),
            ("p95", days(g.p95)),
        ]));
        out.push(table(
            "churn_periods",
            &[
                "period",
                "segment",
                "customers at start",
                "churned",
                "churn rate",
            ],
            &[false, false, true, true, true],
            c.periods
                .iter()
                .map(|p| {
                    vec![
                        p.period.clone(),
                        p.segment.clone().unwrap_or_else(|| "all".into()),
                        p.customers_start.to_string(),
                        p.churned.to_string(),
                        fm.opt_pct(p.churn_rate),
                    ]
                })
                .collect(),
        ));
        if !c.at_risk.is_empty() {
            out.push(Block::Heading(
                "At-risk customers (past their usual purchase cycle)".into(),
            ));
            out.push(table(
                "at_risk",
                &[
                    "customer",
                    "last purchase",
                    "days since",
                    "usual gap (days)",
                    "revenue",
                ],
                &[false, false, true, true, true],
                c.at_risk
                    .iter()
                    .map(|a| {
                        vec![
                            a.customer_id.clone(),
                            a.last_purchase.clone(),
                            a.days_since_last.to_string(),
                            fm.num(a.usual_gap_days, 1),
                            fm.money(a.revenue),
                        ]
                    })
                    .collect(),
            ));
        }
    }
    if let Some(cc) = &r.contractual_churn {
        out.push(Block::Heading("Contractual churn (cancellations)".into()));
        out.push(table(
            "contractual_churn",
            &[
                "period",
                "customers at start",
                "cancelled",
                "churn rate",
                "revenue churn",
            ],
            &[false, true, true, true, true],
            cc.iter()
                .map(|p| {
                    vec![
                        p.period.clone(),
                        p.customers_start.to_string(),
                        p.churned.to_string(),
                        fm.opt_pct(p.churn_rate),
                        fm.opt_pct(p.revenue_churn_rate),
                    ]
                })
                .collect(),
        ));
    }
    if let Some(s) = &r.survival {
        out.push(Block::Heading(format!(
            "Survival (Kaplan–Meier, {} lifetimes)",
            s.definition
        )));
        let d = |x: Option<u32>| {
            x.map(|v| format!("{v} days"))
                .unwrap_or_else(|| "not reached".into())
        };
        let mut fields = vec![
            ("Lifetimes", s.customers.to_string()),
            ("Ended", s.events.to_string()),
            ("Median lifetime", d(s.median_days)),
            (
                "95% CI",
                format!("{} – {}", d(s.median_ci_low), d(s.median_ci_high)),
            ),
        ];
        if s.too_recent > 0 {
            fields.push((
                "Left out",
                format!(
                    "{} customers (first purchase within the inactivity threshold of the end)",
                    s.too_recent
                ),
            ));
        }
        out.push(f(&fields));
        // A readable subset of the curve: the survival at fixed horizons.
        let horizons = [30u32, 90, 180, 365, 730];
        let rows = horizons
            .iter()
            .filter_map(|&h| {
                let p = s.curve.iter().take_while(|p| p.days <= h).last()?;
                Some(vec![
                    format!("{h} days"),
                    fm.pct(p.survival),
                    format!("{} – {}", fm.pct(p.ci_low), fm.pct(p.ci_high)),
                    p.at_risk.to_string(),
                ])
            })
            .collect();
        out.push(table(
            "survival",
            &["horizon", "surviving", "95% CI", "at risk"],
            &[false, true, true, true],
            rows,
        ));
        if let Some(first) = s.by_segment.first() {
            let dim = first.dimension.clone();
            let d = |x: Option<u32>| x.map(|v| v.to_string()).unwrap_or_else(|| fm.dash());
            let p = |x: Option<f64>| x.map(|v| fm.pct(v)).unwrap_or_else(|| fm.dash());
            out.push(table(
                "survival_by_segment",
                &[
                    dim.as_str(),
                    "lifetimes",
                    "ended",
                    "median days",
                    "95% CI",
                    "S(90)",
                    "S(180)",
                    "S(365)",
                ],
                &[false, true, true, true, false, true, true, true],
                s.by_segment
                    .iter()
                    .map(|g| {
                        vec![
                            g.segment.clone(),
                            g.customers.to_string(),
                            g.events.to_string(),
                            d(g.median_days),
                            format!("{} – {}", d(g.median_ci_low), d(g.median_ci_high)),
                            p(g.survival_90),
                            p(g.survival_180),
                            p(g.survival_365),
                        ]
                    })
                    .collect(),
            ));
        }
    }
    if let Some(n) = &r.nps {
        out.push(Block::Heading("Net Promoter Score".into()));
        let o = &n.overall;
        out.push(f(&[
            ("NPS", format!("{:.1}", o.score)),
            ("95% CI", format!("{:.1} – {:.1}", o.ci_low, o.ci_high)),
            (
                "Promoters / passives / detractors",
                format!("{} / {} / {}", o.promoters, o.passives, o.detractors),
            ),
            ("Responses", o.responses.to_string()),
        ]));
        let rows =
            n.by.iter()
                .map(|x| {
                    vec![
                        x.period.clone().unwrap_or_default(),
                        x.segment.clone().unwrap_or_else(|| "all".into()),
                        format!("{:.1}", x.score),
                        format!("{:.1} – {:.1}", x.ci_low, x.ci_high),
                        x.responses.to_string(),
                        if x.low_sample {
                            "too few answers".into()
                        } else {
                            String::new()
                        },
                    ]
                })
                .collect();
        out.push(table(
            "nps",
            &["period", "segment", "NPS", "95% CI", "responses", "flag"],
            &[false, false, true, true, true, false],
            rows,
        ));
        out.push(Block::Note(format!(
            "Flagged: fewer than {} answers; the 95% interval is then wider than about ±30 points.",
            n.min_responses
        )));
    }
    if let Some(c) = &r.csat {
        out.push(Block::Heading(format!(
            "CSAT ({}–{} of 1–{} is satisfied)",
            c.satisfied_from, c.scale, c.scale
        )));
        let o = &c.overall;
        out.push(f(&[
            ("CSAT", fm.pct(o.score)),
            (
                "95% CI (Wilson)",
                format!("{} – {}", fm.pct(o.ci_low), fm.pct(o.ci_high)),
            ),
            ("Mean score", fm.num(o.mean, 2)),
            ("Responses", o.responses.to_string()),
        ]));
        let rows =
            c.by.iter()
                .map(|x| {
                    vec![
                        x.period.clone().unwrap_or_default(),
                        x.segment.clone().unwrap_or_else(|| "all".into()),
                        fm.pct(x.score),
                        format!("{} – {}", fm.pct(x.ci_low), fm.pct(x.ci_high)),
                        fm.num(x.mean, 2),
                        x.responses.to_string(),
                        if x.low_sample {
                            "too few answers".into()
                        } else {
                            String::new()
                        },
                    ]
                })
                .collect();
        out.push(table(
            "csat",
            &[
                "period",
                "segment",
                "CSAT",
                "95% CI",
                "mean",
                "responses",
                "flag",
            ],
            &[false, false, true, true, true, true, false],
            rows,
        ));
    }
    if let Some(rfm) = &r.rfm {
        out.push(Block::Heading("RFM segments".into()));
        let total: u64 = rfm.segments.values().sum();
        out.push(table(
            "rfm_segments",
            &["segment", "customers", "share"],
            &[false, true, true],
            rfm.segments
                .iter()
                .map(|(k, v)| {
                    vec![
                        k.clone(),
                        v.to_string(),
                        fm.pct(*v as f64 / total.max(1) as f64),
                    ]
                })
                .collect(),
        ));
        if let Some(first) = rfm.by_segment.first() {
            let dim = first.dimension.clone();
            out.push(table(
                "rfm_segments_by_segment",
                &[dim.as_str(), "RFM segment", "customers"],
                &[false, false, true],
                rfm.by_segment
                    .iter()
                    .map(|g| {
                        vec![
                            g.segment.clone(),
                            g.rfm_segment.clone(),
                            g.customers.to_string(),
                        ]
                    })
                    .collect(),
            ));
        }
        if !rfm.customers.is_empty() {
            let customers = &rfm.customers;
            out.push(table_on_demand(
                "rfm_customers",
                &[
                    "customer_id",
                    "frequency",
                    "recency",
                    "T",
                    "monetary_value",
                    "r",
                    "f",
                    "m",
                    "segment",
                ],
                &[false, true, true, true, true, true, true, true, false],
                customers.len(),
                move |i, cells| {
                    let (Some(c), [id, frequency, recency, t, monetary, r, f, m, segment]) =
                        (customers.get(i), cells)
                    else {
                        return;
                    };
                    put(id, &c.customer_id);
                    put(frequency, c.frequency);
                    fm.put_num(recency, c.recency, 2);
                    fm.put_num(t, c.t, 2);
                    fm.put_num(monetary, c.monetary_value, 2);
                    put(r, c.r_score);
                    put(f, c.f_score);
                    put(m, c.m_score);
                    put(segment, c.segment);
                },
            ));
        }
    }
    if let Some(s) = &r.supporting {
        out.push(Block::Heading("Purchasing".into()));
        out.push(f(&[
            ("Average order value", fm.money(s.average_order_value)),
            ("Orders per customer", fm.num(s.purchase_frequency, 2)),
            ("Repeat purchase rate", fm.pct(s.repeat_purchase_rate)),
            (
                "Historical CLV (revenue per customer)",
                fm.money(s.historical_clv),
            ),
        ]));
        out.push(table(
            "lifecycle",
            &["stage", "customers"],
            &[false, true],
            s.lifecycle
                .iter()
                .map(|(k, v)| vec![k.clone(), v.to_string()])
                .collect(),
        ));
        if let Some(first) = s.by_segment.first() {
            let dim = first.dimension.clone();
            let stage = |g: &crate::report::SegmentValue, k: &str| {
                g.lifecycle.get(k).copied().unwrap_or(0).to_string()
            };
            out.push(table(
                "purchasing_by_segment",
                &[
                    dim.as_str(),
                    "customers",
                    "orders",
                    "revenue",
                    "AOV",
                    "orders per customer",
                    "repeat rate",
                    "historical CLV",
                    "active",
                    "at risk",
                    "churned",
                ],
                &[
                    false, true, true, true, true, true, true, true, true, true, true,
                ],
                s.by_segment
                    .iter()
                    .map(|g| {
                        vec![
                            g.segment.clone(),
                            g.customers.to_string(),
                            g.orders.to_string(),
                            fm.money(g.revenue),
                            fm.money(g.average_order_value),
                            fm.num(g.purchase_frequency, 2),
                            fm.pct(g.repeat_purchase_rate),
                            fm.money(g.historical_clv),
                            stage(g, "active"),
                            stage(g, "at_risk"),
                            stage(g, "churned"),
                        ]
                    })
                    .collect(),
            ));
        }
        out.push(table(
            "cohort_value",
            &[
                "cohort",
                "customers",
                "revenue",
                "historical CLV",
                "CAC",
                "CLV:CAC",
            ],
            &[false, true, true, true, true, true],
            s.by_cohort
                .iter()
                .map(|c| {
                    vec![
                        c.cohort.clone(),
                        c.customers.to_string(),
                        fm.money(c.revenue),
                        fm.money(c.historical_clv),
                        c.cac.map(|x| fm.money(x)).unwrap_or_else(|| fm.dash()),
                        c.clv_to_cac
                            .map(|x| fm.num(x, 2))
                            .unwrap_or_else(|| fm.dash()),
                    ]
                })
                .collect(),
        ));
    }
    if let Some(c) = &r.clv {
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
        out.push(f(&[
            ("Customers scored", c.customers.to_string()),
            ("Predicted CLV, total", fm.money(c.total_clv)),
            ("Predicted CLV, mean", fm.money(c.mean_clv)),
            ("Expected purchases", fm.num(c.expected_purchases, 1)),
            (
                "Likely lapsed (P(alive) < 50%)",
                c.likely_lapsed.to_string(),
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
        if let Some(h) = &c.holdout {
            out.push(Block::Heading(format!(
                "Holdout check: fitted before {}, predicted vs actual purchases {} to {}",
                h.holdout_from, h.holdout_from, h.holdout_to
            )));
            out.push(f(&[
                ("Customers", h.customers.to_string()),
                ("Predicted purchases", fm.num(h.predicted_total, 1)),
                ("Actual purchases", fm.num(h.actual_total, 0)),
                (
                    "Mean absolute error per customer",
                    fm.num(h.mean_absolute_error, 3),
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
        out.push(table_on_demand(
            "clv_customers",
            &[
                "customer",
                "frequency",
                "recency",
                "T",
                "P(alive)",
                "expected purchases",
                "expected spend",
                "CLV",
            ],
            &[false, true, true, true, true, true, true, true],
            ranked.len(),
            move |i, cells| {
                let (Some(x), [id, frequency, recency, t, alive, purchases, spend, clv]) =
                    (ranked.get(i), cells)
                else {
                    return;
                };
                put(id, &x.customer_id);
                fm.put_num(frequency, x.frequency, 0);
                fm.put_num(recency, x.recency, 1);
                fm.put_num(t, x.t, 1);
                fm.put_pct(alive, x.probability_alive);
                fm.put_num(purchases, x.expected_purchases, 2);
                fm.put_money(spend, x.expected_average_spend);
                fm.put_money(clv, x.clv);
            },
        ));
    }
    if let Some(m) = &r.model_fit {
        model_fit(&mut out, m, &fm);
    }
    for s in &r.skipped {
        out.push(Block::Note(format!(
            "Skipped {}: {}",
            section_name(s.section),
            s.reason
        )));
    }
    out
}

fn section_name(s: Section) -> &'static str {
    match s {
        Section::Overview => "overview",
        Section::Retention => "retention",
        Section::Churn => "churn",
        Section::Survival => "survival",
        Section::Nps => "NPS",
        Section::Csat => "CSAT",
        Section::Rfm => "RFM",
        Section::Supporting => "purchasing figures",
        Section::Clv => "predicted CLV",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_numbers_are_written_as_display_writes_them() {
        let display = |x: f64| {
            let mut cell = String::from("stale");
            put_plain(&mut cell, x);
            assert_eq!(cell, format!("{x}"), "{x:e}");
        };
        for x in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            99.0,
            41.99,
            104.9564,
            0.1,
            1e-4,
            9.99e-5,
            1e-7,
            0.5,
            1e14,
            123456789012345.6,
            1e15,
            1e16,
            1e300,
            -3.25,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            1.0 / 3.0,
            2.0f64.sqrt(),
        ] {
            display(x);
        }
        // For arbitrary bits, ryu and std's Display both write a shortest text that reads back
        // as the same number; where 17 digits are needed they may pick different last digits
        // (106402216832449.12 vs .13 were seen), so the property is the round trip and length.
        let round_trip = |x: f64| {
            let mut cell = String::new();
            put_plain(&mut cell, x);
            let shown = format!("{x}");
            if x.is_finite() {
                assert_eq!(cell.parse::<f64>().ok(), Some(x), "{cell} for {x:e}");
                assert!(cell.len() <= shown.len() + 1, "{cell} vs {shown}");
            } else {
                assert_eq!(cell, shown);
            }
        };
        proptest::proptest!(|(bits in proptest::prelude::any::<u64>(), days in -1e6f64..1e6)| {
            round_trip(f64::from_bits(bits));
            display(days);
            display((days * 100.0).round() / 100.0);
        });
    }

    #[test]
    fn money_groups_thousands() {
        assert_eq!(money(1234567.891), "1,234,567.89");
        assert_eq!(money(-12.5), "-12.50");
        assert_eq!(money(0.0), "0.00");
        assert_eq!(pct(0.1234), "12.3%");
    }
}
