//! Views: the report laid out as blocks (headings, key figures, tables of formatted text, notes
//! and charts), one view per section, read by every renderer (terminal, Markdown, CSV, HTML) so
//! that they show the same numbers the same way. Formatting (rounding, percent signs) and
//! picking (which cohorts a chart shows) happen here; no metric is computed.
//!
//! Each file turns one section's typed result into its blocks, charts included: `retention.rs`,
//! `churn.rs` (inactivity and contractual), `survival.rs`, `scores.rs` (NPS and CSAT, one shared
//! view), `rfm.rs`, `purchasing.rs`, `clv.rs`, `model_fit.rs`, and `overview.rs`,
//! `headlines.rs`, `data_quality.rs` for the report's opening. [`layout`] calls them in report
//! order; [`report_page`] adds the title. `inspect.rs` lays out what `inspect` found in input
//! files the same way.

mod churn;
mod clv;
mod data_quality;
mod headlines;
pub(crate) mod inspect;
mod model_fit;
mod overview;
mod purchasing;
mod retention;
mod rfm;
mod scores;
mod survival;

use std::fmt::Write as _;

use super::{Report, Section};

/// A laid-out document, what every renderer but JSON reads: a title, a line under it, and
/// the blocks.
#[derive(Debug)]
pub struct Page<'r> {
    /// The document's title (Markdown and HTML).
    pub title: &'static str,
    /// A line under the title (HTML).
    pub subtitle: Option<String>,
    /// When the document was generated, for the HTML page's footer.
    pub generated_at: Option<&'r str>,
    /// The blocks, in order.
    pub blocks: Vec<Block<'r>>,
}

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
    /// A chart: the HTML renderer draws it as SVG (in the page's "At a glance" grid); the text
    /// renderers skip it, since its table is in the section too.
    Chart(Chart),
}

/// A chart of a section's numbers, already picked (which cohorts, which horizon) by its view.
#[derive(Debug)]
pub struct Chart {
    /// The section the chart belongs to.
    pub section: Section,
    /// Caption shown above the chart.
    pub caption: String,
    /// The chart's accessible name (SVG `<title>` and `aria-label`).
    pub title: String,
    /// What to draw.
    pub plot: Plot,
}

/// The kinds of chart.
#[derive(Debug)]
pub enum Plot {
    /// Lines over categorical x labels, with optional confidence bands.
    Lines {
        /// One label per x position.
        x_labels: Vec<String>,
        /// The lines.
        lines: Vec<Line>,
        /// A fixed y range; `None` fits the values.
        y_range: Option<(f64, f64)>,
        /// How to write y values (ticks, tooltips).
        y_format: ValueFormat,
    },
    /// Horizontal bars, one per label.
    Bars {
        /// Label and value of each bar, top to bottom.
        bars: Vec<(String, f64)>,
        /// How to write the values.
        format: ValueFormat,
    },
}

/// One line of a line chart.
#[derive(Debug)]
pub struct Line {
    /// Legend name.
    pub name: String,
    /// One value per x position (None: gap).
    pub values: Vec<Option<f64>>,
    /// Optional (low, high) band per x position.
    pub band: Option<Vec<Option<(f64, f64)>>>,
}

/// How a chart writes its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFormat {
    /// A fraction as a percentage with this many decimals (`0.25` → `25%`).
    Percent(usize),
    /// A number with this many decimals.
    Number(usize),
}

impl ValueFormat {
    /// Writes `v` in this format.
    pub fn format(self, v: f64) -> String {
        match self {
            ValueFormat::Percent(decimals) => format!("{:.decimals$}%", v * 100.0),
            ValueFormat::Number(decimals) => format!("{v:.decimals$}"),
        }
    }
}

/// A cohort triangle's cells for a heat map, cohort by cohort and offset by offset (offset 0
/// starts a cohort's row).
#[derive(Debug)]
pub struct Heatmap<'r> {
    /// The cells, in row order.
    pub cells: Vec<HeatCell<'r>>,
}

/// One cell of a [`Heatmap`].
#[derive(Debug, Clone, Copy)]
pub struct HeatCell<'r> {
    /// The cohort (row).
    pub cohort: &'r str,
    /// Periods since the cohort's first (column).
    pub offset: u32,
    /// Customers in the cohort.
    pub customers: u64,
    /// Of them, active at this offset.
    pub active: u64,
    /// active / customers.
    pub rate: f64,
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
    /// The same numbers as a heat map, which the HTML renderer draws instead of the table.
    pub heat: Option<Heatmap<'r>>,
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
/// `Sync`, so that a renderer may format blocks of rows on several threads.
type FillRow<'r> = Box<dyn Fn(usize, &mut [String]) + Sync + 'r>;

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
        visit: impl FnMut(&[String]) -> Result<(), E>,
    ) -> Result<(), E> {
        self.try_for_each_row_in(0..self.len(), visit)
    }

    /// As [`TextTable::try_for_each_row`], for the rows in `rows` only (a renderer writing
    /// blocks of a large table formatted in parallel).
    ///
    /// # Errors
    /// The first error `visit` returns.
    pub fn try_for_each_row_in<E>(
        &self,
        rows: std::ops::Range<usize>,
        mut visit: impl FnMut(&[String]) -> Result<(), E>,
    ) -> Result<(), E> {
        match &self.rows {
            Rows::Cells(all) => all
                .get(rows)
                .unwrap_or_default()
                .iter()
                .try_for_each(|row| visit(row)),
            Rows::OnDemand { len, fill } => {
                let mut cells = vec![String::new(); self.headers.len()];
                for i in rows.start..rows.end.min(*len) {
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
    // Whole when the integer conversion (one instruction) gives it back: `fract` is a libm
    // call on the baseline x86-64 target.
    if (1.0..1e15).contains(&magnitude) && (x as i64) as f64 == x {
        cell.push_str(itoa::Buffer::new().format(x as i64));
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

/// Overwrites a reused cell with text, as [`put`] writes it without the formatting machinery
/// (a per-customer table writes millions of cells).
fn put_text(cell: &mut String, text: &str) {
    cell.clear();
    cell.push_str(text);
}

/// Overwrites a reused cell with an integer, as [`put`] writes it (itoa's digits are std's).
fn put_int(cell: &mut String, value: impl itoa::Integer) {
    cell.clear();
    cell.push_str(itoa::Buffer::new().format(value));
}

fn table<'r>(name: &str, headers: &[&str], numeric: &[bool], rows: Vec<Vec<String>>) -> Block<'r> {
    Block::Table(TextTable {
        name: name.into(),
        headers: headers.iter().map(|h| h.to_string()).collect(),
        numeric: numeric.to_vec(),
        heat: None,
        rows: Rows::Cells(rows),
    })
}

/// A table of `len` rows that `fill` formats one at a time, into cells it clears first.
pub(crate) fn table_on_demand<'r>(
    name: &str,
    headers: &[&str],
    numeric: &[bool],
    len: usize,
    fill: impl Fn(usize, &mut [String]) + Sync + 'r,
) -> Block<'r> {
    Block::Table(TextTable {
        name: name.into(),
        headers: headers.iter().map(|h| h.to_string()).collect(),
        numeric: numeric.to_vec(),
        heat: None,
        rows: Rows::OnDemand {
            len,
            fill: Box::new(fill),
        },
    })
}

/// Label/value pairs as a [`Block::Figures`].
fn figures<'r>(pairs: &[(&str, String)]) -> Block<'r> {
    Block::Figures(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

/// Offsets shown in the cohort triangle for reading (terminal, Markdown); CSV and JSON have all.
pub const READABLE_OFFSETS: u32 = 12;

/// The report as a page: its title, the period, as-of date and split under it, and
/// [`layout`]'s blocks.
pub fn report_page(r: &Report, full: bool) -> Page<'_> {
    let settings = &r.settings;
    let subtitle = format!(
        "Period: {}{}{}",
        settings.period,
        settings
            .as_of
            .as_ref()
            .map(|a| format!(" · as of {a}"))
            .unwrap_or_default(),
        if settings.by.is_empty() {
            String::new()
        } else {
            format!(" · split by {}", settings.by.join(", "))
        }
    );
    Page {
        title: "Customer metrics report",
        subtitle: Some(subtitle),
        generated_at: r.generated_at.as_deref(),
        blocks: layout(r, full),
    }
}

/// Lays out the report: each section present, through its view, in report order. `full` keeps
/// every cohort offset (CSV); otherwise the triangle stops at [`READABLE_OFFSETS`] so that it
/// fits a screen.
pub fn layout(r: &Report, full: bool) -> Vec<Block<'_>> {
    // CSV (full) gets plain numbers a spreadsheet can read; screens get rounded, grouped text.
    let fm = Fmt { data: full };
    let mut out = Vec::new();
    if let Some(o) = &r.overview {
        overview::view(o, &r.settings, r.generated_at.as_deref(), fm, &mut out);
    }
    headlines::view(&r.headlines, fm, &mut out);
    data_quality::view(&r.accounting, &mut out);
    if let Some(ret) = &r.retention {
        retention::view(ret, !r.settings.by.is_empty(), full, fm, &mut out);
    }
    if let Some(c) = &r.churn {
        churn::view(c, r.contractual_churn.as_deref(), fm, &mut out);
    }
    if let Some(cc) = &r.contractual_churn {
        churn::contractual_view(cc, fm, &mut out);
    }
    if let Some(s) = &r.survival {
        survival::view(s, fm, &mut out);
    }
    if let Some(n) = &r.nps {
        scores::nps_view(n, &mut out);
    }
    if let Some(c) = &r.csat {
        scores::csat_view(c, fm, &mut out);
    }
    if let Some(rfm) = &r.rfm {
        rfm::view(rfm, fm, &mut out);
    }
    if let Some(s) = &r.supporting {
        purchasing::view(s, fm, &mut out);
    }
    if let Some(c) = &r.clv {
        clv::view(c, fm, &mut out);
    }
    if let Some(m) = &r.model_fit {
        model_fit::view(m, fm, &mut out);
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
    fn integers_and_text_are_written_as_display_writes_them() {
        let mut cell = String::from("stale");
        for x in [0u32, 7, 10, 4_294_967_295] {
            put_int(&mut cell, x);
            assert_eq!(cell, format!("{x}"));
        }
        put_int(&mut cell, -12i64);
        assert_eq!(cell, "-12");
        put_text(&mut cell, "C00012");
        assert_eq!(cell, "C00012");
    }

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
