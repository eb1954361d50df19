//! Value parsing: dates, amounts and survey scores as CRM exports write them.
//!
//! These are plain functions over `&str` (no polars), so that they can be unit-tested, fuzzed and
//! applied to any column. Each returns the parsed value or the [`RejectReason`] that the row is
//! counted under; nothing is ever silently dropped.
//!
//! Dates are reduced to the calendar date *as written*: a time of day and a UTC offset are validated
//! but not converted, because a shop's "day" is its local day, which is what the export shows.

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use serde::Serialize;

use crate::{Error, Result};

/// Why an input row was not used. The snake_case name is the key used in JSON and in rejects files.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RejectReason {
    /// The customer id is blank.
    MissingCustomerId,
    /// The date is blank.
    MissingDate,
    /// The date is not in the column's date format.
    UnparsableDate,
    /// The date has the right shape but does not exist (2023-02-30).
    InvalidDate,
    /// The date is before 1900 or after 2199, almost certainly a typo or a placeholder.
    DateOutOfRange,
    /// The amount is blank.
    MissingAmount,
    /// The amount is not a number.
    UnparsableAmount,
    /// The amount overflows (1e309) or is NaN.
    NonFiniteAmount,
    /// An NPS or CSAT answer is not a number.
    UnparsableScore,
    /// An NPS answer outside 0..=10 or not a whole number.
    NpsOutOfRange,
    /// A CSAT answer outside 1..=scale or not a whole number.
    CsatOutOfRange,
    /// The same row (same order and same values) appeared earlier.
    DuplicateRow,
    /// The customers table has an earlier row for the same customer id (the first is used).
    DuplicateCustomer,
    /// A number (quantity, cost) is not a number.
    UnparsableNumber,
    /// The status (paid, failed, ...) is blank, so whether the row is a purchase is unknown.
    MissingStatus,
    /// A verbal CSAT answer of the 5-point scale ("Very satisfied" ... "Very dissatisfied") while
    /// the CSAT scale is not 5: which number it stands for is unknown.
    CsatLabelOffScale,
}

impl RejectReason {
    /// The stable snake_case key of the reason.
    pub fn key(self) -> &'static str {
        match self {
            RejectReason::MissingCustomerId => "missing_customer_id",
            RejectReason::MissingDate => "missing_date",
            RejectReason::UnparsableDate => "unparsable_date",
            RejectReason::InvalidDate => "invalid_date",
            RejectReason::DateOutOfRange => "date_out_of_range",
            RejectReason::MissingAmount => "missing_amount",
            RejectReason::UnparsableAmount => "unparsable_amount",
            RejectReason::NonFiniteAmount => "non_finite_amount",
            RejectReason::UnparsableScore => "unparsable_score",
            RejectReason::NpsOutOfRange => "nps_out_of_range",
            RejectReason::CsatOutOfRange => "csat_out_of_range",
            RejectReason::DuplicateRow => "duplicate_row",
            RejectReason::DuplicateCustomer => "duplicate_customer",
            RejectReason::UnparsableNumber => "unparsable_number",
            RejectReason::MissingStatus => "missing_status",
            RejectReason::CsatLabelOffScale => "csat_label_off_scale",
        }
    }

    /// A human sentence fragment for messages.
    pub fn describe(self) -> &'static str {
        match self {
            RejectReason::MissingCustomerId => "missing customer id",
            RejectReason::MissingDate => "missing date",
            RejectReason::UnparsableDate => "cannot parse as a date",
            RejectReason::InvalidDate => "no such calendar date",
            RejectReason::DateOutOfRange => "date outside 1900-2199",
            RejectReason::MissingAmount => "missing amount",
            RejectReason::UnparsableAmount => "cannot parse as an amount",
            RejectReason::NonFiniteAmount => "amount is not a finite number",
            RejectReason::UnparsableScore => "score is not a number",
            RejectReason::NpsOutOfRange => "NPS answer must be a whole number 0-10",
            RejectReason::CsatOutOfRange => "CSAT answer must be a whole number within the scale",
            RejectReason::DuplicateRow => "duplicate of an earlier row",
            RejectReason::DuplicateCustomer => "customer id already in an earlier row",
            RejectReason::UnparsableNumber => "cannot parse as a number",
            RejectReason::MissingStatus => "missing status",
            RejectReason::CsatLabelOffScale => {
                "verbal CSAT answer is on the 5-point scale, but csat_scale is not 5"
            }
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

/// The order of day, month and year in a date column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DateFormat {
    /// Year first: `2024-03-05`, `2024/03/05`, `2024.03.05`, and `20240305`.
    YearMonthDay,
    /// US style: `03/05/2024` is 5 March.
    MonthDayYear,
    /// European style: `05/03/2024` and `05.03.2024` are 5 March.
    DayMonthYear,
    /// A chrono `strftime` pattern given by the user, e.g. `%d %b %Y`.
    Custom(String),
}

impl DateFormat {
    /// Parses the `date_format` setting: `ymd`/`iso`, `mdy`/`us`, `dmy`/`eu`, the patterns
    /// `%Y-%m-%d`, `%m/%d/%Y`, `%d/%m/%Y`, `%d.%m.%Y`, `%Y%m%d`, or any other chrono pattern.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] when the pattern has no year, month and day.
    pub fn from_setting(setting: &str) -> Result<Self> {
        let s = setting.trim();
        let lower = s.to_ascii_lowercase();
        Ok(match lower.as_str() {
            "ymd" | "iso" | "%y-%m-%d" | "%y/%m/%d" | "%y.%m.%d" | "%y%m%d" => {
                DateFormat::YearMonthDay
            }
            "mdy" | "us" | "%m/%d/%y" | "%m-%d-%y" | "%m.%d.%y" => DateFormat::MonthDayYear,
            "dmy" | "eu" | "%d/%m/%y" | "%d-%m-%y" | "%d.%m.%y" => DateFormat::DayMonthYear,
            _ => {
                let has = |c: &str| s.contains(c);
                if !(has("%Y") || has("%y")) || !(has("%m") || has("%b") || has("%B")) {
                    return Err(Error::InvalidSetting {
                        setting: "date_format".into(),
                        message: format!(
                            "{s:?} is not a date format; use ymd, mdy, dmy or a chrono pattern such as %d/%m/%Y"
                        ),
                    });
                }
                DateFormat::Custom(s.to_string())
            }
        })
    }

    /// A short label for messages and `inspect`.
    pub fn label(&self) -> String {
        match self {
            DateFormat::YearMonthDay => "YYYY-MM-DD".into(),
            DateFormat::MonthDayYear => "MM/DD/YYYY".into(),
            DateFormat::DayMonthYear => "DD/MM/YYYY".into(),
            DateFormat::Custom(p) => p.clone(),
        }
    }
}

/// Years a transaction or signup date can plausibly have; others are typos or placeholders
/// (`date_out_of_range`), for text and typed dates alike.
pub(crate) const PLAUSIBLE_YEARS: std::ops::RangeInclusive<i32> = 1900..=2199;

/// Parses one date value with a known format.
///
/// # Errors
/// The [`RejectReason`] for blank, unparsable, impossible and out-of-range dates.
pub fn parse_date(value: &str, format: &DateFormat) -> Result<NaiveDate, RejectReason> {
    let v = value.trim();
    if v.is_empty() {
        return Err(RejectReason::MissingDate);
    }
    let date = match format {
        DateFormat::Custom(pattern) => parse_custom(v, pattern)?,
        _ => {
            let (fields, rest) = split_date(v).ok_or(RejectReason::UnparsableDate)?;
            if !is_valid_time_suffix(rest) {
                return Err(RejectReason::UnparsableDate);
            }
            let (y, m, d) = match (format, fields) {
                (DateFormat::YearMonthDay, DateFields::Compact(y, m, d)) => (y, m, d),
                (DateFormat::YearMonthDay, DateFields::Split([a, b, c], widths))
                    if widths[0] == 4 =>
                {
                    (a, b, c)
                }
                (DateFormat::MonthDayYear, DateFields::Split([a, b, c], widths))
                    if widths[2] != 4 || widths[0] <= 2 =>
                {
                    (expand_year(c, widths[2]), a, b)
                }
                (DateFormat::DayMonthYear, DateFields::Split([a, b, c], widths))
                    if widths[2] != 4 || widths[0] <= 2 =>
                {
                    (expand_year(c, widths[2]), b, a)
                }
                _ => return Err(RejectReason::UnparsableDate),
            };
            if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
                return Err(RejectReason::UnparsableDate);
            }
            NaiveDate::from_ymd_opt(y as i32, m, d).ok_or(RejectReason::InvalidDate)?
        }
    };
    if !PLAUSIBLE_YEARS.contains(&date.year()) {
        return Err(RejectReason::DateOutOfRange);
    }
    Ok(date)
}

fn parse_custom(v: &str, pattern: &str) -> Result<NaiveDate, RejectReason> {
    if let Ok(d) = NaiveDate::parse_from_str(v, pattern) {
        return Ok(d);
    }
    if let Ok(dt) = NaiveDateTime::parse_from_str(v, pattern) {
        return Ok(dt.date());
    }
    if let Ok(dt) = chrono::DateTime::parse_from_str(v, pattern) {
        return Ok(dt.naive_local().date());
    }
    Err(RejectReason::UnparsableDate)
}

/// Two-digit years are read as 20yy: exports with two-digit years are recent.
fn expand_year(y: u32, width: usize) -> u32 {
    if width <= 2 { 2000 + y } else { y }
}

#[derive(Debug, Clone, Copy)]
enum DateFields {
    /// `YYYYMMDD`.
    Compact(u32, u32, u32),
    /// Three numbers with their digit counts.
    Split([u32; 3], [usize; 3]),
}

/// Splits the leading date part off a value; returns the fields and the remainder (time, offset).
fn split_date(v: &str) -> Option<(DateFields, &str)> {
    let bytes = v.as_bytes();
    let end = bytes
        .iter()
        .position(|&b| !(b.is_ascii_digit() || b == b'-' || b == b'/' || b == b'.'))
        .unwrap_or(bytes.len());
    let (date, rest) = v.split_at(end);
    if date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) {
        let n = |r: std::ops::Range<usize>| date.get(r).and_then(|s| s.parse::<u32>().ok());
        return Some((DateFields::Compact(n(0..4)?, n(4..6)?, n(6..8)?), rest));
    }
    let sep = date.bytes().find(|b| !b.is_ascii_digit())?;
    let mut parts = date.split(sep as char);
    let mut fields = [0u32; 3];
    let mut widths = [0usize; 3];
    for i in 0..3 {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *fields.get_mut(i)? = p.parse().ok()?;
        *widths.get_mut(i)? = p.len();
    }
    if parts.next().is_some() {
        return None;
    }
    // A trailing '.' after DD.MM.YYYY would have been eaten by the scan above; it is rejected here.
    Some((DateFields::Split(fields, widths), rest))
}

/// Accepts an empty remainder or a time of day: `T10:30`, ` 10:30:15.123`, with optional ` AM/PM`
/// and an optional zone (`Z`, `+01:00`, `-0500`, ` UTC`).
fn is_valid_time_suffix(rest: &str) -> bool {
    if rest.is_empty() {
        return true;
    }
    let Some(t) = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' ')) else {
        return false;
    };
    let t = t.trim_start();
    let b = t.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize, min: usize, max: usize| -> Option<u32> {
        let start = *i;
        while *i < b.len() && *i - start < max && b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        if *i - start < min {
            return None;
        }
        t.get(start..*i)?.parse().ok()
    };
    let Some(h) = digits(&mut i, 1, 2) else {
        return false;
    };
    if b.get(i) != Some(&b':') {
        return false;
    }
    i += 1;
    let Some(m) = digits(&mut i, 2, 2) else {
        return false;
    };
    if h > 23 || m > 59 {
        return false;
    }
    if b.get(i) == Some(&b':') {
        i += 1;
        match digits(&mut i, 2, 2) {
            Some(s) if s <= 60 => {}
            _ => return false,
        }
        if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
            i += 1;
            if digits(&mut i, 1, 9).is_none() {
                return false;
            }
        }
    }
    let zone = t.get(i..).unwrap_or("").trim();
    let zone = zone
        .strip_prefix("AM")
        .or_else(|| zone.strip_prefix("PM"))
        .or_else(|| zone.strip_prefix("am"))
        .or_else(|| zone.strip_prefix("pm"))
        .map(str::trim)
        .unwrap_or(zone);
    if zone.is_empty() || zone == "Z" || zone == "UTC" || zone == "GMT" {
        return true;
    }
    let Some(off) = zone.strip_prefix('+').or_else(|| zone.strip_prefix('-')) else {
        return false;
    };
    let off: String = off.chars().filter(|&c| c != ':').collect();
    (off.len() == 2 || off.len() == 4) && off.bytes().all(|c| c.is_ascii_digit())
}

/// Detects a column's date format from sample values.
///
/// Returns the format that parses the most values. Day-first and month-first formats that parse
/// the same values are ambiguous: the function refuses to guess and returns the values that read
/// both ways.
pub(crate) fn detect_date_format<'a>(samples: impl IntoIterator<Item = &'a str>) -> DateDetection {
    let candidates = [
        DateFormat::YearMonthDay,
        DateFormat::MonthDayYear,
        DateFormat::DayMonthYear,
    ];
    let mut counts = [0usize; 3];
    let mut total = 0usize;
    let mut both_ways = Vec::new();
    let mut failures = Vec::new();
    for v in samples {
        if v.trim().is_empty() {
            continue;
        }
        total += 1;
        // A date outside the plausible years (9999-12-31, 0001-01-01 placeholders) still shows
        // the column's format: it is counted here and rejected as out of range when parsed.
        let ok: Vec<bool> = candidates
            .iter()
            .map(|f| matches!(parse_date(v, f), Ok(_) | Err(RejectReason::DateOutOfRange)))
            .collect();
        for (c, &k) in counts.iter_mut().zip(&ok) {
            *c += usize::from(k);
        }
        if ok == [false, true, true] && both_ways.len() < 3 {
            both_ways.push(v.to_string());
        }
        if !ok.iter().any(|&k| k) && failures.len() < 3 {
            failures.push(v.to_string());
        }
    }
    let best = counts.iter().copied().max().unwrap_or(0);
    if total == 0 {
        return DateDetection::Empty;
    }
    // Fewer than half of the values parse: this is not a date column (or a format we don't know).
    if best * 2 < total {
        return DateDetection::NotDates(failures);
    }
    let [ymd, mdy, dmy] = counts;
    if ymd == best {
        DateDetection::Format(DateFormat::YearMonthDay)
    } else if mdy == best && dmy == best {
        DateDetection::Ambiguous(both_ways)
    } else if mdy == best {
        DateDetection::Format(DateFormat::MonthDayYear)
    } else {
        DateDetection::Format(DateFormat::DayMonthYear)
    }
}

/// What [`detect_date_format`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DateDetection {
    Format(DateFormat),
    Ambiguous(Vec<String>),
    NotDates(Vec<String>),
    Empty,
}

/// Which character separates decimals in an amount column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecimalSeparator {
    /// `1,234.50` (thousands `,` or space or `'`).
    #[default]
    Point,
    /// `1.234,50` (thousands `.` or space).
    Comma,
}

/// Detects the decimal separator of an amount column: a comma followed by one or two final digits
/// (`12,5`, `1.234,50`) is evidence for a decimal comma; a point followed by one or two final digits
/// for a decimal point. The majority wins; a tie or no evidence means a point.
pub(crate) fn detect_decimal_separator<'a>(
    samples: impl IntoIterator<Item = &'a str>,
) -> DecimalSeparator {
    let (mut comma, mut point) = (0usize, 0usize);
    for v in samples {
        let digits_only: String = v
            .trim()
            .trim_end_matches(|c: char| !c.is_ascii_digit())
            .to_string();
        let last_sep = digits_only.rfind([',', '.']);
        if let Some(pos) = last_sep {
            let tail = digits_only.get(pos + 1..).unwrap_or("");
            let tail_digits = tail.len();
            let sep = digits_only.as_bytes().get(pos).copied();
            if (1..=2).contains(&tail_digits) && tail.bytes().all(|b| b.is_ascii_digit()) {
                match sep {
                    Some(b',') => comma += 1,
                    Some(b'.') => point += 1,
                    _ => {}
                }
            } else if tail_digits == 3 && digits_only.contains(',') && digits_only.contains('.') {
                // "1.234.567,5" never reaches here; "1,234.567" is three decimals: a point.
                match sep {
                    Some(b'.') => point += 1,
                    Some(b',') => comma += 1,
                    _ => {}
                }
            }
        }
    }
    if comma > point {
        DecimalSeparator::Comma
    } else {
        DecimalSeparator::Point
    }
}

/// Parses an amount such as `$1,234.50`, `1.234,50 €`, `-12`, `(12.00)` (negative), `EUR 12`.
///
/// Currency symbols and ISO codes around the number are ignored; thousands separators must
/// group digits by three.
///
/// # Errors
/// [`RejectReason::MissingAmount`], [`RejectReason::UnparsableAmount`] or
/// [`RejectReason::NonFiniteAmount`].
pub fn parse_amount(value: &str, decimal: DecimalSeparator) -> Result<f64, RejectReason> {
    // Fast path for plain numbers ("12.50", "-3"), the bulk of machine exports: no allocation.
    if decimal == DecimalSeparator::Point && is_plain_number(value) {
        let x: f64 = value.parse().map_err(|_| RejectReason::UnparsableAmount)?;
        // 310 plain digits overflow to infinity just as "1e309" does.
        return if x.is_finite() {
            Ok(x)
        } else {
            Err(RejectReason::NonFiniteAmount)
        };
    }
    let mut v = value.trim();
    if v.is_empty() {
        return Err(RejectReason::MissingAmount);
    }
    let mut negative = false;
    if let Some(inner) = v.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
        negative = true;
        v = inner.trim();
    }
    // Strip currency symbols and codes at either end ("$", "€", "USD", "kr").
    let is_currency = |c: char| !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | ','));
    v = v.trim_matches(|c: char| c.is_whitespace() || (is_currency(c) && c != '(' && c != ')'));
    if let Some(rest) = v.strip_prefix('-') {
        negative = !negative;
        v = rest.trim_start_matches(|c: char| c.is_whitespace() || is_currency(c));
    } else if let Some(rest) = v.strip_prefix('+') {
        v = rest.trim_start_matches(|c: char| c.is_whitespace() || is_currency(c));
    } else if let Some(rest) = v.strip_suffix('-') {
        // Trailing minus, as some accounting exports write refunds: "12.00-".
        negative = !negative;
        v = rest.trim_end();
    }
    if v.is_empty() {
        return Err(RejectReason::UnparsableAmount);
    }
    let number = normalise_number(v, decimal).ok_or(RejectReason::UnparsableAmount)?;
    let x: f64 = number.parse().map_err(|_| RejectReason::UnparsableAmount)?;
    if !x.is_finite() {
        return Err(RejectReason::NonFiniteAmount);
    }
    Ok(if negative { -x } else { x })
}

/// `-?digits(.digits)?`: a number Rust parses exactly as written, with no separators to handle.
pub(crate) fn is_plain_number(v: &str) -> bool {
    let b = v.strip_prefix('-').unwrap_or(v).as_bytes();
    let mut dots = 0;
    !b.is_empty()
        && b.first().is_some_and(u8::is_ascii_digit)
        && b.last().is_some_and(u8::is_ascii_digit)
        && b.iter().all(|&c| {
            dots += usize::from(c == b'.');
            c.is_ascii_digit() || c == b'.'
        })
        && dots <= 1
}

/// Turns `1.234,50` (comma style) or `1,234.50` (point style) into `1234.50`; checks grouping.
/// Scientific notation (`1e3`) is accepted as Rust parses it.
fn normalise_number(v: &str, decimal: DecimalSeparator) -> Option<String> {
    let (dec, thousands): (char, &[char]) = match decimal {
        DecimalSeparator::Point => ('.', &[',', ' ', '\'', '\u{a0}', '\u{202f}']),
        DecimalSeparator::Comma => (',', &['.', ' ', '\'', '\u{a0}', '\u{202f}']),
    };
    let (int_part, frac_part) = match v.rsplit_once(dec) {
        Some((i, f)) => (i, Some(f)),
        None => (v, None),
    };
    if let Some(f) = frac_part {
        let f_ok = !f.is_empty()
            && f.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, 'e' | 'E' | '-' | '+'))
            && f.starts_with(|c: char| c.is_ascii_digit());
        if !f_ok {
            return None;
        }
    }
    let groups: Vec<&str> = int_part.split(|c| thousands.contains(&c)).collect();
    let mut int_digits = String::new();
    if groups.len() > 1 {
        let first = groups.first()?;
        if first.is_empty() || first.len() > 3 || !first.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        for g in groups.iter().skip(1) {
            if g.len() != 3 || !g.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
        }
        int_digits = groups.concat();
    } else {
        let g = groups.first()?;
        let ok = g
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, 'e' | 'E' | '-' | '+'));
        if !ok || (g.is_empty() && frac_part.is_none()) || g.starts_with(['e', 'E', '-', '+']) {
            return None;
        }
        int_digits.push_str(g);
    }
    Some(match frac_part {
        Some(f) => format!(
            "{}.{f}",
            if int_digits.is_empty() {
                "0"
            } else {
                &int_digits
            }
        ),
        None => int_digits,
    })
}

/// Parses a plain number (quantity, unit price, cost) with the column's decimal separator.
///
/// # Errors
/// [`RejectReason::UnparsableNumber`] (blank values are `Ok(None)`).
pub fn parse_number(value: &str, decimal: DecimalSeparator) -> Result<Option<f64>, RejectReason> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    match parse_amount(value, decimal) {
        Ok(x) => Ok(Some(x)),
        Err(_) => Err(RejectReason::UnparsableNumber),
    }
}

/// Parses a score as a whole number: `9`, `9.0`, ` 9 `; `7.5` is not whole.
fn parse_whole(value: &str) -> Result<Option<i64>, RejectReason> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let x: f64 = v
        .replace(',', ".")
        .parse()
        .map_err(|_| RejectReason::UnparsableScore)?;
    if !x.is_finite() {
        return Err(RejectReason::UnparsableScore);
    }
    if x.fract() != 0.0 {
        return Err(RejectReason::UnparsableScore);
    }
    Ok(Some(x as i64))
}

/// The number of a labelled scale point, as survey tools export answers: `10 - Extremely
/// likely`, `0 = Not at all likely`, `9 – Very likely` (en or em dash), `10: Extremely likely`,
/// `10 (Extremely likely)` and `Extremely likely (10)`. `None` when `v` is not of that shape.
///
/// The number is authoritative: the label is not checked against it (`10 - Not at all likely`
/// is 10), since the number is what the respondent picked and labels vary by tool and language.
/// The label must hold a letter, so that dates (`2024-01-05`) and ranges are not scale points.
fn scale_point(v: &str) -> Option<&str> {
    let has_letter = |label: &str| label.chars().any(char::is_alphabetic);
    let is_number = |n: &str| {
        let n = n.strip_prefix(['-', '+']).unwrap_or(n);
        n.starts_with(|c: char| c.is_ascii_digit())
            && n.chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
    };
    // Number first.
    let end = v
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || c == ',' || (i == 0 && c == '-')))
        .map_or(v.len(), |(i, _)| i);
    let (number, rest) = v.split_at(end);
    if is_number(number) {
        let rest = rest.trim_start();
        let label = rest
            .strip_prefix(['-', '\u{2013}', '\u{2014}', '=', ':'])
            .or_else(|| rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')));
        return label.filter(|l| has_letter(l)).map(|_| number);
    }
    // Label first, number in parentheses.
    let (label, number) = v.strip_suffix(')')?.rsplit_once('(')?;
    let number = number.trim();
    (has_letter(label) && is_number(number)).then_some(number)
}

/// A verbal answer reduced to lowercase words separated by single spaces (`Very  Satisfied!` is
/// `very satisfied`); `None` unless it starts with a letter, so that numbers skip the work.
fn label_words(v: &str) -> Option<String> {
    if !v.starts_with(char::is_alphabetic) {
        return None;
    }
    let mut words = String::with_capacity(v.len());
    for w in v
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
    {
        if !words.is_empty() {
            words.push(' ');
        }
        words.extend(w.chars().flat_map(char::to_lowercase));
    }
    Some(words)
}

/// Parses an NPS answer ("How likely are you to recommend us?", 0-10). Blank means no answer.
///
/// Besides plain numbers, survey tools' labelled answers are read as their number
/// (`10 - Extremely likely`, `Extremely likely (10)`, see `scale_point`; the number wins over
/// a label that contradicts it), and the two end labels alone are 10 (`Extremely likely`) and 0
/// (`Not at all likely`).
///
/// # Errors
/// [`RejectReason::UnparsableScore`] for text, [`RejectReason::NpsOutOfRange`] for 11, -1 or 7.5.
pub fn parse_nps(value: &str) -> Result<Option<u8>, RejectReason> {
    let v = value.trim();
    let number = match scale_point(v) {
        Some(number) => number,
        None => match label_words(v).as_deref() {
            Some("extremely likely") => return Ok(Some(10)),
            Some("not at all likely" | "not likely at all") => return Ok(Some(0)),
            _ => v,
        },
    };
    match parse_whole(number) {
        Ok(Some(x)) if (0..=10).contains(&x) => Ok(Some(x as u8)),
        Ok(Some(_)) => Err(RejectReason::NpsOutOfRange),
        Ok(None) => Ok(None),
        Err(_) if number.parse::<f64>().is_ok_and(f64::is_finite) => {
            Err(RejectReason::NpsOutOfRange)
        }
        Err(e) => Err(e),
    }
}

/// The point of a verbal answer on the 5-point CSAT scale ("How satisfied were you?").
fn five_point_label(words: &str) -> Option<u8> {
    Some(match words {
        "very satisfied" => 5,
        "satisfied" => 4,
        "neutral" | "neither satisfied nor dissatisfied" | "neither satisfied nor unsatisfied" => 3,
        "dissatisfied" | "unsatisfied" => 2,
        "very dissatisfied" | "very unsatisfied" => 1,
        _ => return None,
    })
}

/// Parses a CSAT answer on a 1..=`scale` scale. Blank means no answer.
///
/// Labelled answers are read as their number, as for NPS (`5 - Very satisfied`, `Satisfied
/// (4)`). The verbal labels of the 5-point scale are its points: Very satisfied 5, Satisfied 4,
/// Neutral (or Neither satisfied nor dissatisfied) 3, Dissatisfied 2, Very dissatisfied 1, and
/// only on a 5-point scale ([`RejectReason::CsatLabelOffScale`] otherwise: on a 7-point scale
/// "Satisfied" is no known point). Zendesk's binary `Good`/`Bad` ratings are the top and the
/// bottom of any scale; `Offered`/`Unoffered` (asked, not answered) are no answer.
///
/// # Errors
/// [`RejectReason::UnparsableScore`] for text, [`RejectReason::CsatOutOfRange`] for 0, 6 (on 1-5)
/// or 4.5, [`RejectReason::CsatLabelOffScale`] for a 5-point label on another scale.
pub fn parse_csat(value: &str, scale: u8) -> Result<Option<u8>, RejectReason> {
    let v = value.trim();
    let number = match scale_point(v) {
        Some(number) => number,
        None => match label_words(v).as_deref() {
            Some("good") => return Ok(Some(scale)),
            Some("bad") => return Ok(Some(1)),
            Some("offered" | "unoffered") => return Ok(None),
            Some(w) => match five_point_label(w) {
                Some(point) if scale == 5 => return Ok(Some(point)),
                Some(_) => return Err(RejectReason::CsatLabelOffScale),
                None => v,
            },
            None => v,
        },
    };
    match parse_whole(number) {
        Ok(Some(x)) if (1..=i64::from(scale)).contains(&x) => Ok(Some(x as u8)),
        Ok(Some(_)) => Err(RejectReason::CsatOutOfRange),
        Ok(None) => Ok(None),
        Err(_) if number.parse::<f64>().is_ok_and(f64::is_finite) => {
            Err(RejectReason::CsatOutOfRange)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn iso_dates_with_and_without_time_and_offset() {
        let f = DateFormat::YearMonthDay;
        for v in [
            "2024-03-05",
            "2024/03/05",
            "20240305",
            "2024-03-05T10:30:00",
            "2024-03-05 10:30",
            "2024-03-05T10:30:00.123Z",
            "2024-03-05T23:30:00+01:00",
            "2024-03-05 23:30:00 -0500",
            " 2024-03-05 ",
        ] {
            assert_eq!(parse_date(v, &f), Ok(d(2024, 3, 5)), "{v}");
        }
    }

    #[test]
    fn day_first_and_month_first() {
        assert_eq!(
            parse_date("05/03/2024", &DateFormat::DayMonthYear),
            Ok(d(2024, 3, 5))
        );
        assert_eq!(
            parse_date("05.03.2024", &DateFormat::DayMonthYear),
            Ok(d(2024, 3, 5))
        );
        assert_eq!(
            parse_date("03/05/2024", &DateFormat::MonthDayYear),
            Ok(d(2024, 3, 5))
        );
        assert_eq!(
            parse_date("3/5/2024 4:05 PM", &DateFormat::MonthDayYear),
            Ok(d(2024, 3, 5))
        );
        assert_eq!(
            parse_date("3/5/24", &DateFormat::MonthDayYear),
            Ok(d(2024, 3, 5))
        );
        // 13 cannot be a month.
        assert_eq!(
            parse_date("13/05/2024", &DateFormat::MonthDayYear),
            Err(RejectReason::UnparsableDate)
        );
    }

    #[test]
    fn date_rejections_have_reasons() {
        let f = DateFormat::YearMonthDay;
        assert_eq!(parse_date("", &f), Err(RejectReason::MissingDate));
        assert_eq!(
            parse_date("yesterday", &f),
            Err(RejectReason::UnparsableDate)
        );
        assert_eq!(parse_date("2023-02-30", &f), Err(RejectReason::InvalidDate));
        assert_eq!(
            parse_date("9999-12-31", &f),
            Err(RejectReason::DateOutOfRange)
        );
        assert_eq!(
            parse_date("2024-03-05T25:00", &f),
            Err(RejectReason::UnparsableDate)
        );
        assert_eq!(
            parse_date("2024-03-05 garbage", &f),
            Err(RejectReason::UnparsableDate)
        );
    }

    #[test]
    fn custom_format() {
        let f = DateFormat::from_setting("%d %b %Y").unwrap();
        assert_eq!(parse_date("05 Mar 2024", &f), Ok(d(2024, 3, 5)));
        assert!(DateFormat::from_setting("%H:%M").is_err());
        assert_eq!(
            DateFormat::from_setting("%d/%m/%Y").unwrap(),
            DateFormat::DayMonthYear
        );
    }

    #[test]
    fn detection_refuses_to_guess_between_day_and_month_first() {
        assert_eq!(
            detect_date_format(["01/02/2024", "03/04/2024"]),
            DateDetection::Ambiguous(vec!["01/02/2024".into(), "03/04/2024".into()])
        );
        // One value with a day above 12 settles it.
        assert_eq!(
            detect_date_format(["01/02/2024", "25/04/2024"]),
            DateDetection::Format(DateFormat::DayMonthYear)
        );
        assert_eq!(
            detect_date_format(["2024-01-02", "bad"]),
            DateDetection::Format(DateFormat::YearMonthDay)
        );
        assert!(matches!(
            detect_date_format(["abc", "def", "2024-01-01"]),
            DateDetection::NotDates(_)
        ));
    }

    #[test]
    fn amounts_in_export_styles() {
        let p = DecimalSeparator::Point;
        let c = DecimalSeparator::Comma;
        assert_eq!(parse_amount("$1,234.50", p), Ok(1234.5));
        assert_eq!(parse_amount("1.234,50 €", c), Ok(1234.5));
        assert_eq!(parse_amount("(12.00)", p), Ok(-12.0));
        assert_eq!(parse_amount("-12", p), Ok(-12.0));
        assert_eq!(parse_amount("12.00-", p), Ok(-12.0));
        assert_eq!(parse_amount("EUR 12,5", c), Ok(12.5));
        assert_eq!(parse_amount("1 234,50", c), Ok(1234.5));
        assert_eq!(parse_amount("-$5", p), Ok(-5.0));
        assert_eq!(parse_amount(".5", p), Ok(0.5));
        assert_eq!(parse_amount("1e3", p), Ok(1000.0));
    }

    #[test]
    fn amount_rejections() {
        let p = DecimalSeparator::Point;
        assert_eq!(parse_amount("", p), Err(RejectReason::MissingAmount));
        assert_eq!(parse_amount("N/A", p), Err(RejectReason::UnparsableAmount));
        assert_eq!(parse_amount("1e309", p), Err(RejectReason::NonFiniteAmount));
        assert_eq!(
            parse_amount("12,34", p),
            Err(RejectReason::UnparsableAmount)
        );
        assert_eq!(
            parse_amount("1.2.3", p),
            Err(RejectReason::UnparsableAmount)
        );
    }

    #[test]
    fn plain_digits_overflowing_f64_are_non_finite() {
        // Found by the parse_values fuzz target: the plain-number fast path returned +inf.
        let v = format!("1{}309", "0".repeat(309));
        assert_eq!(
            parse_amount(&v, DecimalSeparator::Point),
            Err(RejectReason::NonFiniteAmount)
        );
        assert_eq!(
            parse_amount(&format!("-{v}"), DecimalSeparator::Point),
            Err(RejectReason::NonFiniteAmount)
        );
        assert_eq!(
            parse_amount(&v, DecimalSeparator::Comma),
            Err(RejectReason::NonFiniteAmount)
        );
        assert_eq!(
            parse_number(&v, DecimalSeparator::Point),
            Err(RejectReason::UnparsableNumber)
        );
    }

    #[test]
    fn decimal_separator_detection() {
        assert_eq!(
            detect_decimal_separator(["1.234,50", "12,5", "3"]),
            DecimalSeparator::Comma
        );
        assert_eq!(
            detect_decimal_separator(["1,234.50", "12.5"]),
            DecimalSeparator::Point
        );
        assert_eq!(
            detect_decimal_separator(["12", "40"]),
            DecimalSeparator::Point
        );
    }

    #[test]
    fn scores() {
        assert_eq!(parse_nps("9"), Ok(Some(9)));
        assert_eq!(parse_nps("10.0"), Ok(Some(10)));
        assert_eq!(parse_nps(""), Ok(None));
        assert_eq!(parse_nps("11"), Err(RejectReason::NpsOutOfRange));
        assert_eq!(parse_nps("-1"), Err(RejectReason::NpsOutOfRange));
        assert_eq!(parse_nps("7.5"), Err(RejectReason::NpsOutOfRange));
        assert_eq!(parse_nps("great"), Err(RejectReason::UnparsableScore));
        assert_eq!(parse_csat("4", 5), Ok(Some(4)));
        assert_eq!(parse_csat("0", 5), Err(RejectReason::CsatOutOfRange));
        assert_eq!(parse_csat("6", 5), Err(RejectReason::CsatOutOfRange));
        assert_eq!(parse_csat("7", 7), Ok(Some(7)));
        assert_eq!(parse_csat("Good", 5), Ok(Some(5)));
        assert_eq!(parse_csat("bad", 5), Ok(Some(1)));
    }

    #[test]
    fn labelled_scale_points_are_their_number() {
        for (v, x) in [
            ("10 - Extremely likely", 10),
            ("0 - Not at all likely", 0),
            ("0 = Not at all likely", 0),
            ("9 \u{2013} Very likely", 9),
            ("9\u{2014}Very likely", 9),
            ("10: Extremely likely", 10),
            ("10 (Extremely likely)", 10),
            ("Extremely likely (10)", 10),
            ("  7  ", 7),
            ("Extremely likely", 10),
            ("Not at all likely", 0),
            // The number is authoritative when the label contradicts it.
            ("10 - Not at all likely", 10),
            ("Not at all likely (10)", 10),
        ] {
            assert_eq!(parse_nps(v), Ok(Some(x)), "{v}");
        }
        assert_eq!(
            parse_nps("11 - Extremely likely"),
            Err(RejectReason::NpsOutOfRange)
        );
        assert_eq!(parse_nps("7.5 - Likely"), Err(RejectReason::NpsOutOfRange));
        assert_eq!(parse_nps("Likely"), Err(RejectReason::UnparsableScore));
        // Not scale points: a date, a range, a label without a number.
        assert_eq!(parse_nps("2024-01-05"), Err(RejectReason::UnparsableScore));
        assert_eq!(parse_nps("5-3"), Err(RejectReason::UnparsableScore));
        assert_eq!(
            parse_nps("Very likely ()"),
            Err(RejectReason::UnparsableScore)
        );
    }

    #[test]
    fn verbal_csat_on_the_five_point_scale() {
        for (v, x) in [
            ("Very satisfied", 5),
            ("Satisfied", 4),
            ("Neutral", 3),
            ("Neither satisfied nor dissatisfied", 3),
            ("Dissatisfied", 2),
            ("very  dissatisfied", 1),
            ("5 - Very satisfied", 5),
            ("Satisfied (4)", 4),
        ] {
            assert_eq!(parse_csat(v, 5), Ok(Some(x)), "{v}");
        }
        // Zendesk's binary ratings: top and bottom of any scale, as before.
        assert_eq!(parse_csat("Good", 7), Ok(Some(7)));
        assert_eq!(parse_csat("Bad", 7), Ok(Some(1)));
        assert_eq!(parse_csat("Offered", 5), Ok(None));
        // A 5-point label means nothing on a 7-point scale; a labelled number still does.
        assert_eq!(
            parse_csat("Satisfied", 7),
            Err(RejectReason::CsatLabelOffScale)
        );
        assert_eq!(parse_csat("6 - Very satisfied", 7), Ok(Some(6)));
        assert_eq!(
            parse_csat("Delighted", 5),
            Err(RejectReason::UnparsableScore)
        );
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,30}") {
            let _ = parse_date(&s, &DateFormat::YearMonthDay);
            let _ = parse_date(&s, &DateFormat::DayMonthYear);
            let _ = parse_amount(&s, DecimalSeparator::Point);
            let _ = parse_amount(&s, DecimalSeparator::Comma);
            let _ = parse_nps(&s);
            let _ = parse_csat(&s, 5);
        }

        #[test]
        fn amounts_round_trip(cents in -10_000_000i64..10_000_000) {
            let x = cents as f64 / 100.0;
            let s = format!("{x:.2}");
            let back = parse_amount(&s, DecimalSeparator::Point).unwrap();
            proptest::prop_assert!((back - x).abs() < 1e-9);
            let comma = s.replace('.', ",");
            let back = parse_amount(&comma, DecimalSeparator::Comma).unwrap();
            proptest::prop_assert!((back - x).abs() < 1e-9);
        }
    }
}
