//! Parsing one file's columns, role by role: customer ids, dates, amounts and costs, survey
//! answers, text columns and dimensions, with the first reason each rejected row was refused.

use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use chrono::NaiveDate;
use polars::prelude::*;

use super::clean::{
    RowStatus, Settled, all_distinct, purchase_statuses, settle_blank_rows, settle_continuations,
    settle_footer,
};
use super::load::LoadOptions;
use super::parquet_keys;
use super::parse::{
    self, DateDetection, DateFormat, DecimalSeparator, RejectReason, detect_date_format,
    detect_decimal_separator,
};
use super::read::{self, OpenedFile, ROW};
use super::schema::{ResolvedColumns, Role, TableKind, col, resolve_columns_with};
use super::status::PurchaseStatus;
use super::table::{FileReport, Rejection};
use crate::period::days_since_epoch;
use crate::{Error, Result};

pub(super) struct ParsedFile {
    pub(super) frame: DataFrame,
    pub(super) rejections: Vec<Rejection>,
    /// Rejected answers of kept rows.
    pub(super) answer_rejections: Vec<Rejection>,
    pub(super) report: FileReport,
    /// 0-based data row in the file of each kept row, for transactions with order ids when
    /// several files are read (to locate lines repeated across files).
    pub(super) kept_rows: Option<Vec<u64>>,
    /// Whether the kept order ids are known to be distinct as loaded (distinct and already
    /// trimmed in the file), so that the check need not run again on the loaded table.
    pub(super) order_ids_distinct: bool,
    /// 0-based data rows of the file not in `frame` (rejected, excluded, blank, continuation
    /// lines), ascending: to locate the file row of a table row.
    pub(super) dropped_rows: Vec<u64>,
}

/// Reads, checks and types one file. `track_rows` keeps the file row of every kept row (needed
/// only to find lines repeated across several files).
pub(super) fn parse_file(
    kind: TableKind,
    opened: &OpenedFile,
    options: &LoadOptions,
    track_rows: bool,
) -> Result<ParsedFile> {
    parse_file_columns(kind, opened, options, track_rows)
        .map_err(|e| e.in_file(opened.display.as_str()))
}

pub(super) fn parse_file_columns(
    kind: TableKind,
    opened: &OpenedFile,
    options: &LoadOptions,
    track_rows: bool,
) -> Result<ParsedFile> {
    let mut resolved = resolve_columns_with(
        kind,
        &opened.columns,
        &options.mapping,
        options.csat_scale,
        &mut |names| head_values(opened, names),
    )?;
    opened.check_readable(&mut resolved)?;
    let read_dimension = |d: &String| {
        options
            .read_dimensions
            .as_ref()
            .is_none_or(|keep| keep.contains(d))
    };
    // The currency is a segment like any dimension (`--by currency` splits revenue by it, as
    // a store does): unread only when the dimensions are named and it is not among them.
    let informational: Vec<&String> = match options.reads_currency() {
        false => [Role::Currency]
            .iter()
            .filter_map(|r| resolved.roles.get(r))
            .collect(),
        true => vec![],
    };
    let mut wanted: Vec<String> = resolved
        .roles
        .values()
        .filter(|c| !informational.contains(c))
        .cloned()
        .collect();
    wanted.extend(
        resolved
            .dimensions
            .iter()
            .filter(|d| read_dimension(d))
            .cloned(),
    );
    wanted.sort();
    wanted.dedup();
    let mut select: Vec<Expr> = vec![col(ROW)];
    select.extend(wanted.iter().map(|c| col(c.as_str())));
    let shown = PathBuf::from(&opened.display);
    let typed = read_typed_csv(kind, opened, &resolved, &select, &wanted, options);
    let raw = match typed {
        Some(frame) => frame,
        None => {
            let (select, keyed) = categorical_select(kind, opened, &resolved, &wanted, options)?;
            let scanned = in_partition(opened.frame.clone(), &resolved, options)
                .select(select)
                .collect_with_engine(Engine::Streaming)
                .map(|r| r.unwrap_single())
                .map_err(|e| Error::Format {
                    path: shown.clone(),
                    // polars' messages suggest Python arguments; say what is wrong and where
                    // instead.
                    message: match (&opened.csv_path, opened.delimiter) {
                        (Some(p), Some(d)) => {
                            read::diagnose_csv(p, d).unwrap_or_else(|| e.to_string())
                        }
                        _ => e.to_string(),
                    },
                })?;
            with_keyed_columns(scanned, &keyed, opened, &resolved, options)
                .map_err(|e| e.in_file(opened.display.as_str()))?
        }
    };
    let n = raw.height();
    let table = kind.name().to_string();
    let mut status = RowStatus::default();
    // Columns whose values are quoted in rejections, by index into `sources`.
    let mut sources: Vec<(String, Series)> = Vec::new();
    let mut out: Vec<Column> = Vec::new();
    let mut date_formats = BTreeMap::new();
    let mut decimal_separators = BTreeMap::new();
    let source =
        |name: &str| -> Result<Series> { Ok(raw.column(name)?.as_materialized_series().clone()) };

    // Rows settled before any value is checked: blank lines are not rows, a report's footer
    // block and excluded statuses are left out, and continuation lines belong to their order.
    settle_blank_rows(opened, &raw, &wanted, &mut status)?;
    settle_footer(opened, &raw, options, &mut status)?;
    if kind == TableKind::Transactions {
        settle_continuations(&raw, &resolved, &mut status)?;
    }
    let purchase_status = match resolved.column(Role::Status) {
        Some(name) if kind == TableKind::Transactions => {
            let s = source(name)?;
            let idx = sources.len();
            let statuses = purchase_statuses(&s, &mut status, idx, options).map_err(|unknown| {
                Error::UnknownStatus {
                    path: shown.clone(),
                    table: table.clone(),
                    column: name.to_string(),
                    values: unknown,
                }
            })?;
            sources.push((name.to_string(), s));
            Some(statuses)
        }
        _ => None,
    };

    // Customer id: required, trimmed text.
    if let Some(name) = resolved.column(Role::CustomerId) {
        let s = source(name)?.cast(&DataType::String)?;
        let idx = sources.len();
        let ca = s.str()?;
        let ids: StringChunked = if is_clean_text(ca, false) {
            ca.clone()
        } else {
            ca.iter()
                .enumerate()
                .map(|(i, v)| match v.map(str::trim) {
                    Some(t) if !t.is_empty() => Some(t.to_string()),
                    _ => {
                        status.reject(i, RejectReason::MissingCustomerId, idx);
                        None
                    }
                })
                .collect()
        };
        sources.push((name.to_string(), s));
        out.push(ids.with_name(col::CUSTOMER_ID.into()).into_series().into());
    }

    let date_roles: &[(Role, &str, bool)] = match kind {
        TableKind::Customers => &[
            (Role::SignupDate, col::SIGNUP_DATE, false),
            (Role::EndDate, col::END_DATE, false),
        ],
        _ => &[(Role::Date, col::DATE, true)],
    };
    for &(role, canonical, required) in date_roles {
        let Some(name) = resolved.column(role) else {
            continue;
        };
        let s = source(name)?;
        let idx = sources.len();
        let dates: Series = match s.dtype() {
            DataType::Date | DataType::Datetime(_, _) => {
                if opened.csv_path.is_some() {
                    // Parsed while reading (see `read_typed_csv`).
                    date_formats.insert(name.to_string(), DateFormat::YearMonthDay.label());
                }
                // The same plausible range as text dates (parse::parse_date).
                let days = s.cast(&DataType::Date)?;
                let (low, high) = (
                    NaiveDate::from_ymd_opt(*parse::PLAUSIBLE_YEARS.start(), 1, 1),
                    NaiveDate::from_ymd_opt(*parse::PLAUSIBLE_YEARS.end(), 12, 31),
                );
                let (low, high) = (
                    days_since_epoch(low.unwrap_or_default()),
                    days_since_epoch(high.unwrap_or_default()),
                );
                let physical = days.date()?.physical();
                // polars' min and max (vectorised) first: a pass over every row on one core
                // was a visible part of loading 10M rows.
                let outside = physical.min().is_some_and(|d| d < low)
                    || physical.max().is_some_and(|d| d > high);
                if outside {
                    let kept: Int32Chunked = physical
                        .iter()
                        .enumerate()
                        .map(|(i, d)| match d {
                            Some(d) if d < low || d > high => {
                                status.reject(i, RejectReason::DateOutOfRange, idx);
                                None
                            }
                            d => d,
                        })
                        .collect();
                    kept.into_series().cast(&DataType::Date)?
                } else {
                    days
                }
            }
            _ => {
                let text = s.cast(&DataType::String)?;
                let ca = text.str()?;
                let format = match &options.date_format {
                    Some(f) => f.clone(),
                    None => {
                        let sample = whole_file_sample(opened, name, options)?;
                        let sample = match &sample {
                            Some(s) => s.str()?,
                            None => ca,
                        };
                        match detect_date_format(sample.iter().flatten().take(DETECTION_SAMPLE)) {
                            DateDetection::Format(f) => f,
                            DateDetection::Empty => DateFormat::YearMonthDay,
                            DateDetection::Ambiguous(examples) => {
                                return Err(Error::AmbiguousDateFormat {
                                    table,
                                    column: name.into(),
                                    examples,
                                });
                            }
                            DateDetection::NotDates(examples) => {
                                return Err(Error::UnrecognisedValues {
                                    table,
                                    column: name.into(),
                                    expected: "dates".into(),
                                    examples,
                                });
                            }
                        }
                    }
                };
                date_formats.insert(name.to_string(), format.label());
                let parsed = parse_par(ca, |v| match parse::parse_date(v.unwrap_or(""), &format) {
                    Ok(d) => Ok(Some(days_since_epoch(d))),
                    Err(RejectReason::MissingDate) if !required => Ok(None),
                    Err(reason) => Err(reason),
                });
                let days: Int32Chunked = parsed
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| match r {
                        Ok(v) => v,
                        Err(reason) => {
                            status.reject(i, reason, idx);
                            None
                        }
                    })
                    .collect();
                days.into_series().cast(&DataType::Date)?
            }
        };
        if required {
            // Typed inputs can hold nulls too.
            if let Ok(ca) = dates.date().map(|ca| ca.physical())
                && ca.null_count() > 0
            {
                for (i, v) in ca.iter().enumerate() {
                    if v.is_none() {
                        status.reject(i, RejectReason::MissingDate, idx);
                    }
                }
            }
        }
        sources.push((name.to_string(), s));
        out.push(dates.with_name(canonical.into()).into());
    }

    // Numbers: amount (required for transactions unless quantity × unit price), cost, acquisition cost.
    let numeric = |role: Role| -> Option<&str> { resolved.column(role) };
    let mut parse_numeric = |name: &str,
                             required: bool,
                             status: &mut RowStatus,
                             sources: &mut Vec<(String, Series)>|
     -> Result<Float64Chunked> {
        let s = source(name)?;
        let idx = sources.len();
        let values: Float64Chunked = if s.dtype().is_primitive_numeric() {
            if opened.csv_path.is_some() {
                // Parsed while reading (see `read_typed_csv`).
                decimal_separators.insert(name.to_string(), DecimalSeparator::Point);
            }
            let f = s.cast(&DataType::Float64)?;
            let ca = f.f64()?.clone();
            // Clean columns (the usual case) are used as they are, not copied.
            let clean = (!required || ca.null_count() == 0)
                && ca
                    .downcast_iter()
                    .all(|a| a.values().iter().all(|x| x.is_finite()));
            if clean {
                sources.push((name.to_string(), s));
                return Ok(ca);
            }
            ca.iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Some(x) if x.is_finite() => Some(x),
                    Some(_) => {
                        status.reject(i, RejectReason::NonFiniteAmount, idx);
                        None
                    }
                    None if required => {
                        status.reject(i, RejectReason::MissingAmount, idx);
                        None
                    }
                    None => None,
                })
                .collect()
        } else {
            let text = s.cast(&DataType::String)?;
            let ca = text.str()?;
            let decimal = match options.decimal {
                Some(d) => d,
                None => {
                    let sample = whole_file_sample(opened, name, options)?;
                    let sample = match &sample {
                        Some(s) => s.str()?,
                        None => ca,
                    };
                    detect_decimal_separator(sample.iter().flatten().take(DETECTION_SAMPLE))
                }
            };
            decimal_separators.insert(name.to_string(), decimal);
            parse_par(ca, |v| {
                let v = v.unwrap_or("");
                if required {
                    parse::parse_amount(v, decimal).map(Some)
                } else {
                    parse::parse_number(v, decimal)
                }
            })
            .into_iter()
            .enumerate()
            .map(|(i, r)| match r {
                Ok(x) => x,
                Err(reason) => {
                    status.reject(i, reason, idx);
                    None
                }
            })
            .collect()
        };
        sources.push((name.to_string(), s));
        Ok(values)
    };

    if kind == TableKind::Transactions {
        let amount = match numeric(Role::Amount) {
            Some(name) => parse_numeric(name, true, &mut status, &mut sources)?,
            None => {
                // Retail line items: amount = quantity × unit price.
                let (Some(q), Some(p)) = (numeric(Role::Quantity), numeric(Role::UnitPrice)) else {
                    return Err(Error::MissingColumn {
                        table,
                        role: "amount".into(),
                        looked_for: "an amount column, or quantity and unit price".into(),
                        columns: opened.columns.join(", "),
                    });
                };
                let q = parse_numeric(q, true, &mut status, &mut sources)?;
                let price_idx = sources.len();
                let p = parse_numeric(p, true, &mut status, &mut sources)?;
                // Two finite values can multiply to infinity (1e200 × 1e200); found by fuzzing.
                let product = &q * &p;
                product
                    .iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Some(x) if !x.is_finite() => {
                            status.reject(i, RejectReason::NonFiniteAmount, price_idx);
                            None
                        }
                        v => v,
                    })
                    .collect()
            }
        };
        let mut amount = amount;
        // UCI Online Retail marks cancellations with invoice numbers starting with "C": they are refunds.
        if let Some(order) = resolved.column(Role::OrderId) {
            let ids = source(order)?.cast(&DataType::String)?;
            let ids = ids.str()?;
            // Most exports have no such invoice: looked for on every core first, so that the
            // amounts are rebuilt (one core, every row) only when there is one.
            if any_cancellation_invoice(ids) {
                amount = amount
                    .iter()
                    .zip(ids.iter())
                    .map(|(a, id)| match (a, id) {
                        (Some(a), Some(id)) if is_cancellation_invoice(id) => Some(-a.abs()),
                        (a, _) => a,
                    })
                    .collect();
            }
        }
        // Refunds the export records on the order itself (a refunded status, a refunded-amount
        // column) come off the order's revenue; a negative row is already money given back.
        let refunded = match numeric(Role::RefundedAmount) {
            Some(name) => Some(parse_numeric(name, false, &mut status, &mut sources)?),
            None => None,
        };
        if refunded.is_some() || purchase_status.is_some() {
            let mut unknown_refund: Option<usize> = None;
            amount = (0..n)
                .map(|i| {
                    let a = amount.get(i)?;
                    if a < 0.0 {
                        return Some(a);
                    }
                    let st = purchase_status
                        .as_ref()
                        .and_then(|v| v.get(i).copied().flatten());
                    let r = refunded.as_ref().and_then(|r| r.get(i));
                    let refund = match (r, st) {
                        (Some(r), _) => r.abs(),
                        (None, Some(PurchaseStatus::Refunded)) => a,
                        (None, Some(PurchaseStatus::PartiallyRefunded)) => {
                            if !status.is_settled(i) && !status.first.contains_key(&i) {
                                unknown_refund.get_or_insert(i);
                            }
                            0.0
                        }
                        _ => 0.0,
                    };
                    Some(crate::money::exact_total([a, -refund]))
                })
                .collect();
            if let Some(i) = unknown_refund {
                let row = raw
                    .column(ROW)?
                    .get(i)
                    .ok()
                    .and_then(|v| v.extract::<u64>())
                    .unwrap_or(i as u64);
                let line = match (&opened.csv_path, opened.delimiter) {
                    (Some(p), Some(d)) => read::csv_lines(p, d, &[row]).first().copied().flatten(),
                    _ => None,
                };
                let place = match line {
                    Some(l) => format!("line {l}"),
                    None => format!("row {}", row + 1),
                };
                return Err(Error::Format {
                    path: shown.clone(),
                    message: format!(
                        "{place}: the order is partially refunded but the export does not say by how much; map the refunded-amount column with the `refunded_col` setting (--refunded-col)"
                    ),
                });
            }
        }
        out.push(amount.with_name(col::AMOUNT.into()).into_series().into());
        if let Some(name) = numeric(Role::Cost) {
            let cost = parse_numeric(name, false, &mut status, &mut sources)?;
            out.push(cost.with_name(col::COST.into()).into_series().into());
        }
    }
    if kind == TableKind::Customers
        && let Some(name) = numeric(Role::AcquisitionCost)
    {
        let cost = parse_numeric(name, false, &mut status, &mut sources)?;
        out.push(
            cost.with_name(col::ACQUISITION_COST.into())
                .into_series()
                .into(),
        );
    }

    // Scores. An unreadable answer is rejected on its own: the interaction still counts (by
    // channel, for activity), with a null score.
    let mut bad_answers: Vec<(usize, RejectReason, usize)> = Vec::new();
    for (role, canonical) in [(Role::Nps, col::NPS), (Role::Csat, col::CSAT)] {
        if kind != TableKind::Interactions {
            break;
        }
        let Some(name) = resolved.column(role) else {
            continue;
        };
        let s = source(name)?;
        let idx = sources.len();
        let text = s.cast(&DataType::String)?;
        let scores: Int32Chunked = text
            .str()?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let v = v.unwrap_or("");
                let parsed = if role == Role::Nps {
                    parse::parse_nps(v)
                } else {
                    parse::parse_csat(v, options.csat_scale)
                };
                match parsed {
                    Ok(x) => x.map(i32::from),
                    Err(reason) => {
                        bad_answers.push((i, reason, idx));
                        None
                    }
                }
            })
            .collect();
        sources.push((name.to_string(), s));
        out.push(scores.with_name(canonical.into()).into_series().into());
    }

    // Text roles and dimensions, kept as trimmed strings (blank = null).
    let mut text_roles = vec![];
    match kind {
        TableKind::Transactions => {
            text_roles.push((Role::OrderId, col::ORDER_ID));
            if options.reads_currency() {
                text_roles.push((Role::Currency, col::CURRENCY));
            }
        }
        TableKind::Interactions => {
            text_roles.push((Role::Channel, col::CHANNEL));
            text_roles.push((Role::Kind, col::KIND));
        }
        TableKind::Customers => {}
    }
    let mut text_columns: Vec<(String, String)> = text_roles
        .into_iter()
        .filter_map(|(role, canonical)| {
            resolved
                .column(role)
                .map(|n| (n.to_string(), canonical.to_string()))
        })
        .collect();
    // A dimension may not shadow a canonical column of this table.
    let reserved: &[&str] = match kind {
        TableKind::Transactions => &[
            col::CUSTOMER_ID,
            col::DATE,
            col::AMOUNT,
            col::ORDER_ID,
            col::COST,
            col::CURRENCY,
        ],
        TableKind::Interactions => &[
            col::CUSTOMER_ID,
            col::DATE,
            col::CHANNEL,
            col::KIND,
            col::NPS,
            col::CSAT,
        ],
        TableKind::Customers => &[
            col::CUSTOMER_ID,
            col::SIGNUP_DATE,
            col::END_DATE,
            col::ACQUISITION_COST,
        ],
    };
    let mut dimensions = Vec::new();
    for d in &resolved.dimensions {
        let name = if reserved.contains(&d.as_str()) {
            format!("{d}_dim")
        } else {
            d.clone()
        };
        dimensions.push(name.clone());
        if read_dimension(d) {
            text_columns.push((d.clone(), name));
        }
    }
    // Whether the order ids are already trimmed (then their distinctness below holds as loaded).
    let mut order_ids_clean = false;
    for (name, canonical) in &text_columns {
        let s = source(name)?;
        // Read as categories (`LoadOptions::dimensions_as_categories`): their values are
        // checked, not the rows', and a column whose values are clean stays coded.
        if let DataType::Categorical(..) = s.dtype()
            && clean_categories(s.cat32()?)
        {
            out.push(s.with_name(canonical.as_str().into()).into());
            continue;
        }
        let s = s.cast(&DataType::String)?;
        let clean = is_clean_text(s.str()?, true);
        if canonical == col::ORDER_ID {
            order_ids_clean = clean && s.null_count() == 0;
        }
        let ca: StringChunked = if clean {
            s.str()?.clone()
        } else {
            s.str()?
                .iter()
                .map(|v| {
                    v.map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string)
                })
                .collect()
        };
        out.push(ca.with_name(canonical.as_str().into()).into_series().into());
    }

    // Exact repeats of a row of the same order (overlapping monthly exports) are duplicates.
    let order_ids_unique = match resolved.column(Role::OrderId) {
        Some(order) => all_distinct(&raw, order)?,
        None => true,
    };
    if kind == TableKind::Transactions && !order_ids_unique {
        // Every column counts, read or not: two lines of one order may differ only in a
        // dimension (the product), and are then not repeats.
        let mut unread: Vec<String> = resolved.roles.values().cloned().collect();
        unread.extend(resolved.dimensions.iter().cloned());
        unread.retain(|c| !wanted.contains(c));
        unread.sort();
        unread.dedup();
        let extra = if unread.is_empty() {
            DataFrame::empty()
        } else {
            opened
                .frame
                .clone()
                .select(unread.iter().map(|c| col(c.as_str())).collect::<Vec<_>>())
                .collect()?
        };
        let cols: Vec<StringChunked> = wanted
            .iter()
            .map(|n| source(n))
            .chain(
                unread
                    .iter()
                    .map(|n| Ok(extra.column(n)?.as_materialized_series().clone())),
            )
            .map(|s| -> Result<StringChunked> { Ok(s?.cast(&DataType::String)?.str()?.clone()) })
            .collect::<Result<_>>()?;
        let mut seen = HashSet::with_capacity(n);
        let mut iters: Vec<_> = cols.iter().map(|c| c.iter()).collect();
        for i in 0..n {
            let (mut h1, mut h2) = (
                std::hash::DefaultHasher::new(),
                std::hash::DefaultHasher::new(),
            );
            1u8.hash(&mut h2);
            for it in iters.iter_mut() {
                let v = it.next().flatten();
                v.hash(&mut h1);
                v.hash(&mut h2);
            }
            let key = (h1.finish(), h2.finish());
            if !seen.insert(key) {
                status.reject(i, RejectReason::DuplicateRow, usize::MAX);
            }
        }
    }

    // Split used and rejected rows.
    let frame = DataFrame::new_infer_height(out)?;
    // Filtering copies every column: only when something was rejected.
    let frame = if status.is_clean() {
        frame
    } else {
        frame.filter(&status.keep_mask(n))?
    };
    let row_ids = raw.column(ROW)?;
    let row_id = |i: usize| -> u64 {
        row_ids
            .get(i)
            .ok()
            .and_then(|v| v.extract::<u64>())
            .unwrap_or(i as u64)
    };
    let mut rejections = Vec::new();
    let mut rows = Vec::new();
    for (&i, (reason, idx)) in &status.first {
        let row = row_id(i);
        let (column, value) = match sources.get(*idx) {
            Some((name, s)) => (
                name.clone(),
                s.get(i).map(|v| any_to_string(&v)).unwrap_or_default(),
            ),
            None => ("(row)".to_string(), String::new()),
        };
        rows.push(row);
        rejections.push(Rejection {
            file: opened.display.clone(),
            line: None,
            row: row + 1,
            column,
            value,
            reason: *reason,
        });
    }
    if let (Some(path), Some(delim)) = (&opened.csv_path, opened.delimiter) {
        for (r, line) in rejections
            .iter_mut()
            .zip(read::csv_lines(path, delim, &rows))
        {
            r.line = line;
        }
    }
    let answer_rejections = answer_rejections(opened, &status, bad_answers, &sources, row_id);
    let report = FileReport {
        file: opened.display.clone(),
        format: opened.format,
        delimiter: opened.delimiter.map(|d| match d {
            b'\t' => "\\t".to_string(),
            other => (other as char).to_string(),
        }),
        columns: ResolvedColumns {
            roles: resolved.roles.clone(),
            dimensions,
            alternatives: resolved.alternatives.clone(),
        },
        date_formats,
        decimal_separators,
        rows: n as u64 - status.count(Settled::Blank),
        encoding: opened.encoding,
        excluded: status.settled.values().fold(BTreeMap::new(), |mut m, s| {
            if let Settled::Excluded(reason) = s {
                *m.entry(reason.key().to_string()).or_default() += 1;
            }
            m
        }),
        continuation_rows: status.count(Settled::Continuation),
        blank_lines: status.count(Settled::Blank),
        sheet: opened.sheet.clone(),
    };
    let kept_rows = if track_rows
        && kind == TableKind::Transactions
        && resolved.column(Role::OrderId).is_some()
    {
        let keep = status.keep_mask(n);
        Some(
            (0..n)
                .filter(|&i| keep.get(i).unwrap_or(false))
                .map(row_id)
                .collect(),
        )
    } else {
        None
    };
    let order_ids_distinct =
        resolved.column(Role::OrderId).is_some() && order_ids_unique && order_ids_clean;
    let dropped_rows = if status.is_clean() {
        Vec::new()
    } else {
        let keep = status.keep_mask(n);
        (0..n)
            .filter(|&i| !keep.get(i).unwrap_or(true))
            .map(row_id)
            .collect()
    };
    Ok(ParsedFile {
        frame,
        rejections,
        answer_rejections,
        report,
        kept_rows,
        order_ids_distinct,
        dropped_rows,
    })
}

/// The rejections of the answers in `bad` (row, reason, index into `sources`) whose rows are
/// used, located like row rejections, in file order. An answer of a row rejected for another
/// reason is left out: the row's rejection already lists it.
pub(super) fn answer_rejections(
    opened: &OpenedFile,
    status: &RowStatus,
    mut bad: Vec<(usize, RejectReason, usize)>,
    sources: &[(String, Series)],
    row_id: impl Fn(usize) -> u64,
) -> Vec<Rejection> {
    bad.retain(|(i, _, _)| !status.first.contains_key(i) && !status.is_settled(*i));
    bad.sort_by_key(|&(i, _, idx)| (i, idx));
    let mut out: Vec<Rejection> = bad
        .iter()
        .map(|&(i, reason, idx)| {
            let (column, value) = match sources.get(idx) {
                Some((name, s)) => (
                    name.clone(),
                    s.get(i).map(|v| any_to_string(&v)).unwrap_or_default(),
                ),
                None => ("(row)".to_string(), String::new()),
            };
            Rejection {
                file: opened.display.clone(),
                line: None,
                row: row_id(i) + 1,
                column,
                value,
                reason,
            }
        })
        .collect();
    if let (Some(path), Some(delim)) = (&opened.csv_path, opened.delimiter) {
        let rows: Vec<u64> = out.iter().map(|r| r.row - 1).collect();
        for (r, line) in out.iter_mut().zip(read::csv_lines(path, delim, &rows)) {
            r.line = line;
        }
    }
    out
}

/// The first non-blank values (as text) among the first rows of some columns, for the column
/// detections that need values (see [`resolve_columns_with`]). From the whole file, so that
/// every partition detects the same columns.
pub(super) fn head_values(
    opened: &OpenedFile,
    names: &[String],
) -> Result<BTreeMap<String, Vec<String>>> {
    const ROWS: IdxSize = 1000;
    // Columns of types polars cannot decode (decimal256 in IPC) are never selected.
    let names: Vec<&String> = names
        .iter()
        .filter(|n| !opened.unreadable.iter().any(|(u, _)| u == *n))
        .collect();
    let head = opened
        .frame
        .clone()
        .select(names.iter().map(|n| col(n.as_str())).collect::<Vec<_>>())
        .limit(ROWS)
        .collect()?;
    let mut out = BTreeMap::new();
    for n in names {
        // A column that has no text form (nested Parquet types) has no values to judge by.
        let Ok(text) = head.column(n)?.cast(&DataType::String) else {
            continue;
        };
        let values: Vec<String> = text
            .str()?
            .iter()
            .flatten()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect();
        out.insert(n.clone(), values);
    }
    Ok(out)
}

/// Reads a clean CSV export with its dates and amount parsed by polars' reader, which is several
/// times cheaper than reading them as text and parsing them here (on 10M rows, seconds and
/// gigabytes of strings). Taken only when a sample of the file shows ISO dates and plain
/// amounts, and only when every value then parses: any value polars cannot parse, or that it
/// parses to infinity or NaN, returns `None` and the file is read as text, so the rows used and
/// every rejection are the same either way.
pub(super) fn read_typed_csv(
    kind: TableKind,
    opened: &OpenedFile,
    resolved: &ResolvedColumns,
    select: &[Expr],
    wanted: &[String],
    options: &LoadOptions,
) -> Option<DataFrame> {
    opened.csv_path.as_ref()?;
    let date_roles: &[Role] = match kind {
        TableKind::Customers => &[Role::SignupDate, Role::EndDate],
        _ => &[Role::Date],
    };
    let dates: Vec<&str> = match &options.date_format {
        None | Some(DateFormat::YearMonthDay) => date_roles
            .iter()
            .filter_map(|r| resolved.column(*r))
            .collect(),
        Some(_) => vec![],
    };
    let amounts: Vec<&str> = match (kind, options.decimal) {
        (TableKind::Transactions, None | Some(DecimalSeparator::Point)) => {
            resolved.column(Role::Amount).into_iter().collect()
        }
        _ => vec![],
    };
    if dates.is_empty() && amounts.is_empty() {
        return None;
    }
    let sample = opened
        .frame
        .clone()
        .select(
            dates
                .iter()
                .chain(&amounts)
                .map(|c| col(*c))
                .collect::<Vec<_>>(),
        )
        .limit(2000)
        .collect()
        .ok()?;
    let all_match = |name: &str, ok: fn(&str) -> bool| -> bool {
        sample
            .column(name)
            .ok()
            .and_then(|c| c.str().ok().map(|ca| ca.iter().flatten().all(ok)))
            .unwrap_or(false)
    };
    if !dates.iter().all(|d| all_match(d, is_iso_date))
        || !amounts.iter().all(|a| all_match(a, parse::is_plain_number))
    {
        return None;
    }
    let types: Vec<(String, DataType)> = dates
        .iter()
        .map(|d| (d.to_string(), DataType::Date))
        .chain(amounts.iter().map(|a| (a.to_string(), DataType::Float64)))
        .collect();
    // Read whole when the run is not in partitions (a partition's scan keeps only its
    // customers' rows while it reads, which bounds its memory).
    let read_whole = options.partition.is_none_or(|p| p.count <= 1);
    let read = match read_whole {
        true => opened.typed_csv_read(&types, wanted),
        false => None,
    };
    let (lf, engine) = match read {
        Some(read) => (read.lazy(), Engine::InMemory),
        None => (
            in_partition(opened.typed_csv_scan(&types)?, resolved, options),
            Engine::Streaming,
        ),
    };
    let frame = lf
        .select(select)
        .collect_with_engine(engine)
        .ok()?
        .unwrap_single();
    let finite = amounts.iter().all(|a| {
        frame
            .column(a)
            .ok()
            .and_then(|c| {
                c.f64()
                    .ok()
                    .map(|ca| ca.iter().flatten().all(f64::is_finite))
            })
            .unwrap_or(false)
    });
    finite.then_some(frame)
}

/// Values a column's date format or decimal separator is detected from: its first non-null
/// values in the file.
pub(super) const DETECTION_SAMPLE: usize = 5000;

/// When a partition is read, the column's first [`DETECTION_SAMPLE`] non-null values in the
/// whole file (as text), so that every partition detects what loading the file whole would;
/// `None` otherwise (the loaded column itself is the sample). The read stops after the sample.
pub(super) fn whole_file_sample(
    opened: &OpenedFile,
    name: &str,
    options: &LoadOptions,
) -> Result<Option<Series>> {
    if options.partition.is_none_or(|p| p.count <= 1) {
        return Ok(None);
    }
    let sample = opened
        .frame
        .clone()
        .select([col(name).cast(DataType::String)])
        .filter(col(name).is_not_null())
        .limit(DETECTION_SAMPLE as IdxSize)
        .collect()?;
    Ok(Some(sample.column(name)?.as_materialized_series().clone()))
}

/// The rows of `options.partition`, when one is set (rows whose customer-id column is absent
/// fail later with the usual missing-column error, so they are not filtered here).
pub(super) fn in_partition(
    lf: LazyFrame,
    resolved: &ResolvedColumns,
    options: &LoadOptions,
) -> LazyFrame {
    match (options.partition, resolved.column(Role::CustomerId)) {
        (Some(p), Some(id)) if p.count > 1 => lf.filter(p.filter(col(id))),
        _ => lf,
    }
}

/// The columns [`parse_file_columns`] reads from a file's scan (the row index and `wanted`), and
/// those it reads apart. The dimensions and the currency of a transactions table read from a
/// Parquet or Arrow IPC file with [`LoadOptions::dimensions_as_categories`] (those that are
/// text in the file) come as `Categorical`: from a Parquet file's dictionary keys when its
/// footer shows them in every row group ([`parquet_keys`]: no text per row at all; added by
/// [`with_keyed_columns`]), otherwise cast in the scan, batch by batch, so that the whole
/// column is never held as text.
fn categorical_select(
    kind: TableKind,
    opened: &OpenedFile,
    resolved: &ResolvedColumns,
    wanted: &[String],
    options: &LoadOptions,
) -> Result<(Vec<Expr>, Vec<String>)> {
    use super::read::FileFormat;
    let typed = matches!(opened.format, FileFormat::Parquet | FileFormat::Ipc);
    let coded: Vec<&str> =
        match options.dimensions_as_categories && typed && kind == TableKind::Transactions {
            true => {
                let schema = opened.frame.clone().collect_schema()?;
                resolved
                    .dimensions
                    .iter()
                    .map(String::as_str)
                    .chain(resolved.column(Role::Currency))
                    .filter(|c| wanted.iter().any(|w| w == c))
                    .filter(|c| schema.get(c) == Some(&DataType::String))
                    .collect()
            }
            false => Vec::new(),
        };
    let keyed: Vec<String> = match &opened.parquet_path {
        Some(path) => parquet_keys::dictionary_columns(path, &coded)
            .into_iter()
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    };
    let mut select = vec![col(ROW)];
    for c in wanted {
        if keyed.contains(c) {
            continue;
        }
        select.push(match coded.contains(&c.as_str()) {
            true => as_categories(c),
            false => col(c.as_str()),
        });
    }
    Ok((select, keyed))
}

/// Column `name` cast to the global categories, batch by batch in a scan.
fn as_categories(name: &str) -> Expr {
    col(name).cast(DataType::from_categories(Categories::global()))
}

/// `scanned` with the columns `keyed` of [`categorical_select`] added: each row's value read
/// from the Parquet file's dictionary keys at its file row (`ROW`). A column with a page a
/// writer fell back to plain encoding for is scanned alone instead (the same rows, in the same
/// order: the same filter over the same file), cast to `Categorical` batch by batch.
fn with_keyed_columns(
    mut scanned: DataFrame,
    keyed: &[String],
    opened: &OpenedFile,
    resolved: &ResolvedColumns,
    options: &LoadOptions,
) -> Result<DataFrame> {
    let Some(path) = opened.parquet_path.as_ref().filter(|_| !keyed.is_empty()) else {
        return Ok(scanned);
    };
    let rows = scanned.column(ROW)?.idx()?.rechunk().into_owned();
    let rows = rows.cont_slice()?;
    for name in keyed {
        let column = match parquet_keys::values_at(path, name, rows) {
            Some(column) => column,
            None => {
                let alone = in_partition(opened.frame.clone(), resolved, options)
                    .select([as_categories(name)])
                    .collect_with_engine(Engine::Streaming)?
                    .unwrap_single();
                if alone.height() != scanned.height() {
                    return Err(Error::Format {
                        path: path.clone(),
                        message: format!(
                            "column {name}: {} rows read alone, {} with the other columns",
                            alone.height(),
                            scanned.height()
                        ),
                    });
                }
                alone.column(name.as_str())?.clone()
            }
        };
        scanned.with_column(column)?;
    }
    Ok(scanned)
}

/// Whether every value a categorical column holds is clean text ([`is_clean_text`]): its
/// categories are checked, each once, not its rows.
fn clean_categories(ca: &Categorical32Chunked) -> bool {
    let mapping = ca.get_mapping();
    let mut checked = vec![false; mapping.num_cats_upper_bound()];
    ca.physical().downcast_iter().all(|keys| {
        keys.iter().flatten().all(|&key| {
            let slot = checked.get_mut(key as usize);
            match slot {
                Some(true) => true,
                Some(slot) => {
                    *slot = true;
                    mapping.cat_to_str(key).is_some_and(is_trimmed)
                }
                None => false,
            }
        })
    })
}

/// `YYYY-MM-DD` exactly.
pub(super) fn is_iso_date(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// Parses a text column in parallel: fixed slices of the column are parsed by rayon tasks and
/// concatenated in order, so the result (and every rejection) is the same as a sequential pass.
pub(super) fn parse_par<T: Send>(
    ca: &StringChunked,
    f: impl Fn(Option<&str>) -> std::result::Result<Option<T>, RejectReason> + Sync,
) -> Vec<std::result::Result<Option<T>, RejectReason>> {
    use rayon::prelude::*;
    let n = ca.len();
    let chunk = 1 << 16;
    let parts: Vec<Vec<_>> = (0..n.div_ceil(chunk))
        .into_par_iter()
        .map(|i| ca.slice((i * chunk) as i64, chunk).iter().map(&f).collect())
        .collect();
    parts.into_iter().flatten().collect()
}

/// Whether every value of a text column is present and already trimmed, so that the column can
/// be used as it is (no copy of millions of strings).
///
/// Checked in slices on every core, each value by its end bytes: only a value that starts or
/// ends with a non-ASCII byte needs `str::trim`'s Unicode test. (Five columns of 10M values
/// checked with `trim` on one core were ~0.6 s of a 10M-row summarize.)
pub(super) fn is_clean_text(ca: &StringChunked, allow_null: bool) -> bool {
    use rayon::prelude::*;
    const SLICE: usize = 1 << 16;
    if !allow_null && ca.null_count() > 0 {
        return false;
    }
    // Every chunk's slices in one parallel pass: a Parquet file read in row groups has dozens
    // of chunks of a few slices each, and a pass per chunk left a core idle at each one's end.
    let slices: Vec<(&polars_arrow::array::Utf8ViewArray, usize)> = ca
        .downcast_iter()
        .flat_map(|values| (0..values.len().div_ceil(SLICE)).map(move |s| (values, s * SLICE)))
        .collect();
    slices.into_par_iter().all(|(values, from)| {
        (from..(from + SLICE).min(values.len())).all(|i| values.get(i).is_none_or(is_trimmed))
    })
}

/// Whether `s` is non-empty and neither starts nor ends with whitespace (`char::is_whitespace`,
/// as `str::trim`).
fn is_trimmed(s: &str) -> bool {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(&a), Some(&z)) if a.is_ascii() && z.is_ascii() => {
            !is_ascii_whitespace_char(a) && !is_ascii_whitespace_char(z)
        }
        (Some(_), Some(_)) => s.trim().len() == s.len(),
        _ => false,
    }
}

/// The ASCII bytes `char::is_whitespace` accepts: tab, line feed, vertical tab, form feed,
/// carriage return and space (`u8::is_ascii_whitespace` leaves out the vertical tab).
fn is_ascii_whitespace_char(b: u8) -> bool {
    matches!(b, b' ' | b'\t'..=b'\r')
}

/// Whether any value of `ids` is a cancellation invoice ([`is_cancellation_invoice`]), checked
/// in slices on every core.
fn any_cancellation_invoice(ids: &StringChunked) -> bool {
    use rayon::prelude::*;
    const SLICE: usize = 1 << 16;
    (0..ids.len().div_ceil(SLICE)).into_par_iter().any(|s| {
        ids.slice((s * SLICE) as i64, SLICE)
            .downcast_iter()
            .any(|a| a.values_iter().any(is_cancellation_invoice))
    })
}

pub(super) fn is_cancellation_invoice(id: &str) -> bool {
    // Most ids start with a visible ASCII character: then there is nothing to trim in front.
    let id = match id.as_bytes().first() {
        Some(&b) if b.is_ascii() && !is_ascii_whitespace_char(b) => id,
        _ => id.trim(),
    };
    let mut chars = id.chars();
    chars.next() == Some('C') && chars.next().is_some_and(|c| c.is_ascii_digit())
}

pub(super) fn any_to_string(v: &AnyValue<'_>) -> String {
    match v {
        AnyValue::Null => String::new(),
        AnyValue::String(s) => (*s).to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dimensions_of_a_parquet_file_are_read_as_categories_when_asked_and_clean() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let mut frame = df!(
            "order_id" => ["o1", "o2", "o3", "o4"],
            "customer_id" => ["a", "b", "a", "c"],
            "order_date" => ["2024-01-01", "2024-01-02", "2024-02-01", "2024-03-01"],
            "amount" => [1.0, 2.0, 3.0, 4.0],
            "currency" => ["USD", "USD", "USD", "USD"],
            "region" => [Some("north"), None, Some("a region with a long name"), Some("north")],
            "channel" => ["web", " web ", "store", "web"],
            "plan" => [1i64, 2, 1, 2],
        )
        .unwrap();
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .finish(&mut frame)
            .unwrap();
        let inputs = [path.display().to_string()];
        let mut options = LoadOptions::default();
        let dtype = |t: &crate::io::Table, c: &str| t.frame.column(c).unwrap().dtype().clone();
        let plain =
            crate::io::load::load_table(TableKind::Transactions, &inputs, &options).unwrap();
        options.dimensions_as_categories = true;
        let coded =
            crate::io::load::load_table(TableKind::Transactions, &inputs, &options).unwrap();
        assert_eq!(dtype(&plain, "region"), DataType::String);
        assert!(matches!(dtype(&coded, "region"), DataType::Categorical(..)));
        assert!(matches!(
            dtype(&coded, col::CURRENCY),
            DataType::Categorical(..)
        ));
        // An untrimmed value: the column is cleaned as text; a number stays a number.
        assert_eq!(dtype(&coded, "channel"), DataType::String);
        assert_eq!(dtype(&coded, "plan"), dtype(&plain, "plan"));
        for c in ["region", "channel", col::CURRENCY, "plan"] {
            let text =
                |t: &crate::io::Table| t.frame.column(c).unwrap().cast(&DataType::String).unwrap();
            assert_eq!(text(&coded), text(&plain), "{c}");
        }
    }

    #[test]
    fn dimensions_read_by_their_keys_load_as_the_text_read_does_whole_and_in_parts() {
        // region: dictionary keys throughout (read apart, taken by file row); city: pages that
        // fell back to plain (cast in the scan). See testdata/README.md.
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/formats/pyarrow_dictionary_fallback.parquet");
        let inputs = [path.display().to_string()];
        for partition in [None, Some((0, 3)), Some((2, 3))] {
            let mut options = LoadOptions {
                partition: partition.map(|(index, count)| crate::io::Partition { index, count }),
                ..LoadOptions::default()
            };
            let plain =
                crate::io::load::load_table(TableKind::Transactions, &inputs, &options).unwrap();
            options.dimensions_as_categories = true;
            let coded =
                crate::io::load::load_table(TableKind::Transactions, &inputs, &options).unwrap();
            assert!(plain.frame.height() > 0);
            assert_eq!(coded.accounting, plain.accounting, "{partition:?}");
            for c in ["region", "city"] {
                let column = coded.frame.column(c).unwrap();
                assert!(matches!(column.dtype(), DataType::Categorical(..)), "{c}");
                assert_eq!(
                    column.cast(&DataType::String).unwrap(),
                    *plain.frame.column(c).unwrap(),
                    "{c} {partition:?}"
                );
            }
            assert_eq!(
                coded.frame.column(col::CUSTOMER_ID).unwrap(),
                plain.frame.column(col::CUSTOMER_ID).unwrap()
            );
        }
    }

    #[test]
    fn trimmed_by_end_bytes_agrees_with_trim_on_unicode_and_control_ends() {
        let cases = [
            "",
            " ",
            "a",
            "ab",
            " a",
            "a ",
            "\ta",
            "a\r",
            "\u{b}a",
            "a\u{c}",
            "\u{1c}a",
            "\u{a0}a",
            "a\u{85}",
            "\u{2003}a",
            "é",
            "éa",
            "aé",
            "日本",
            "\u{3000}日本",
            "C12",
            " C12",
        ];
        for s in cases {
            assert_eq!(
                is_trimmed(s),
                !s.is_empty() && s.trim().len() == s.len(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn clean_text_columns_in_many_slices() {
        let n = (1 << 16) * 3 + 5;
        let mut values: Vec<Option<String>> = (0..n).map(|i| Some(format!("id{i}"))).collect();
        let clean = StringChunked::from_iter(values.iter().map(Option::as_deref));
        assert!(is_clean_text(&clean, false));
        values[n - 2] = Some("id ".into());
        let padded = StringChunked::from_iter(values.iter().map(Option::as_deref));
        assert!(!is_clean_text(&padded, true));
        values[n - 2] = None;
        let with_null = StringChunked::from_iter(values.iter().map(Option::as_deref));
        assert!(is_clean_text(&with_null, true));
        assert!(!is_clean_text(&with_null, false));
    }

    proptest! {
        #[test]
        fn trimmed_agrees_with_trim(s in "[ \\t\\u{b}\\u{a0}\\u{85}a-zé日C0-9]{0,6}") {
            prop_assert_eq!(is_trimmed(&s), !s.is_empty() && s.trim().len() == s.len());
            let mut chars = s.trim().chars();
            let expected = chars.next() == Some('C') && chars.next().is_some_and(|c| c.is_ascii_digit());
            prop_assert_eq!(is_cancellation_invoice(&s), expected);
        }
    }
}
