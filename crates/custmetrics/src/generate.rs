//! A realistic, deterministic synthetic CRM dataset: transactions, interactions and customers.
//!
//! The generative process, per customer (each customer has its own random stream, seeded from
//! the seed and the customer number, so the output does not depend on block sizes):
//!
//! - **Signup** on a day drawn with density growing linearly over the period (a growing business):
//!   day = ⌊√U · span⌋. Plan basic / plus / pro (55 / 30 / 15 %), region, acquisition channel and
//!   an acquisition cost (Gamma, mean 40, ×1.5 for paid search).
//! - **Purchases** follow the BG/NBD story (Fader, Hardie & Lee 2005): the first purchase is on the
//!   signup day; while alive, the time to the next purchase is exponential with a per-customer rate
//!   λ ~ Gamma(shape 1.2, mean 6 purchases a year) × plan factor (0.8 / 1.1 / 1.5); after each
//!   purchase the customer drops out with probability p ~ Beta(1.2, 6) × plan factor (1.2 / 1 / 0.6).
//! - **Spend** follows the Gamma-Gamma story: a per-customer mean spend m ~ Gamma(4, 20) (mean 80)
//!   × plan factor, and each order ~ Gamma(6, m/6). 2 % of orders are refunded a few days later (a
//!   negative row with the same amount). Each customer prefers one sales channel (80 % of orders).
//! - **Interactions**: 15 % of purchases trigger an NPS survey (email, or in person after a store
//!   purchase); support tickets arrive at 1 a year while the customer is active (phone, chat,
//!   email, social) and 60 % get a CSAT answer; follow-ups and loyalty e-mails carry no score.
//!   Scores derive from a per-customer satisfaction that is lower for customers who will drop out,
//!   so NPS and CSAT correlate with churn: NPS = clamp(round(8.4 + 1.5·Z − 1.2·churner), 0, 10),
//!   CSAT = clamp(round(4 + 0.9·Z − churner), 1, 5).
//! - **Cancellation**: customers who dropped out get a cancelled date 30–120 days after their last
//!   purchase when it falls inside the period.
//!
//! Output is written in blocks of customers (memory stays flat for 10M customers) into temporary
//! files that are renamed into place only when complete.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Exp, Gamma, Normal, Poisson};

use crate::period::days_since_epoch;
use crate::{Error, Result};

/// File format of the generated tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GenerateFormat {
    /// CSV with ISO dates.
    #[default]
    Csv,
    /// Parquet with typed columns.
    Parquet,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GenerateOptions {
    /// Number of customers.
    pub customers: usize,
    /// Random seed; the same options give byte-identical files.
    pub seed: u64,
    /// First day of the period.
    pub start: NaiveDate,
    /// Last day of the period.
    pub end: NaiveDate,
    /// File format.
    pub format: GenerateFormat,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            customers: 2000,
            seed: 42,
            start: NaiveDate::from_ymd_opt(2022, 1, 1).unwrap_or_default(),
            end: NaiveDate::from_ymd_opt(2024, 12, 31).unwrap_or_default(),
            format: GenerateFormat::Csv,
        }
    }
}

/// The files written and their row counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFiles {
    /// Transactions file.
    pub transactions: PathBuf,
    /// Interactions file.
    pub interactions: PathBuf,
    /// Customers file.
    pub customers: PathBuf,
    /// Rows in the transactions file.
    pub transaction_rows: u64,
    /// Rows in the interactions file.
    pub interaction_rows: u64,
    /// Rows in the customers file.
    pub customer_rows: u64,
}

const BLOCK: usize = 50_000;
const PLANS: [&str; 3] = ["basic", "plus", "pro"];
const REGIONS: [&str; 4] = ["north", "south", "east", "west"];
const SALES_CHANNELS: [&str; 4] = ["web", "store", "phone", "marketplace"];
const ACQUISITION: [&str; 5] = ["paid_search", "social", "referral", "organic", "email"];
const TICKET_CHANNELS: [&str; 4] = ["phone", "chat", "email", "social"];
const AGENTS: [&str; 6] = ["alex", "blair", "casey", "devon", "emery", "frankie"];

fn invalid(message: impl std::fmt::Display) -> Error {
    Error::InvalidSetting {
        setting: "generate".into(),
        message: message.to_string(),
    }
}

/// Picks an index by weights.
fn pick(rng: &mut ChaCha8Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.len().saturating_sub(1)
}

struct Dists {
    rate: Gamma<f64>,
    dropout: Beta<f64>,
    mean_spend: Gamma<f64>,
    cac: Gamma<f64>,
    normal: Normal<f64>,
}

#[derive(Default)]
struct Block {
    // transactions
    t_order: Vec<String>,
    t_customer: Vec<String>,
    t_day: Vec<i32>,
    t_amount: Vec<f64>,
    t_channel: Vec<&'static str>,
    t_region: Vec<&'static str>,
    // interactions
    i_id: Vec<String>,
    i_customer: Vec<String>,
    i_day: Vec<i32>,
    i_channel: Vec<&'static str>,
    i_kind: Vec<&'static str>,
    i_nps: Vec<Option<i32>>,
    i_csat: Vec<Option<i32>>,
    i_agent: Vec<Option<&'static str>>,
    // customers
    c_id: Vec<String>,
    c_signup: Vec<i32>,
    c_cancel: Vec<Option<i32>>,
    c_plan: Vec<&'static str>,
    c_region: Vec<&'static str>,
    c_acq: Vec<&'static str>,
    c_cost: Vec<f64>,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Generates one customer into the block. Order and interaction numbers are global counters.
fn customer(
    i: usize,
    options: &GenerateOptions,
    d: &Dists,
    block: &mut Block,
    order_no: &mut u64,
    interaction_no: &mut u64,
) -> Result<()> {
    // An independent stream per customer: splitmix-style mixing of seed and index.
    let mut rng = ChaCha8Rng::seed_from_u64(
        options.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (i as u64)
                .wrapping_add(1)
                .wrapping_mul(0xBF58_476D_1CE4_E5B9),
    );
    let start = days_since_epoch(options.start);
    let end = days_since_epoch(options.end);
    let span = f64::from((end - start).max(1));
    let id = format!("C{:06}", i + 1);
    let signup = start + (rng.random::<f64>().sqrt() * span) as i32;
    let plan = pick(&mut rng, &[0.55, 0.30, 0.15]);
    let region = REGIONS
        .get(rng.random_range(0..REGIONS.len()))
        .copied()
        .unwrap_or("north");
    let acq = pick(&mut rng, &[0.25, 0.2, 0.15, 0.3, 0.1]);
    let cost = d.cac.sample(&mut rng) * if acq == 0 { 1.5 } else { 1.0 };
    let rate_factor = [0.8, 1.1, 1.5].get(plan).copied().unwrap_or(1.0);
    let drop_factor = [1.2, 1.0, 0.6].get(plan).copied().unwrap_or(1.0);
    let lambda = d.rate.sample(&mut rng) * rate_factor / 365.0;
    let p_drop = (d.dropout.sample(&mut rng) * drop_factor).min(0.95);
    let spend = d.mean_spend.sample(&mut rng) * [0.9, 1.0, 1.3].get(plan).copied().unwrap_or(1.0);
    let order_dist = Gamma::new(6.0, spend / 6.0).map_err(invalid)?;
    let gap = Exp::new(lambda.max(1e-6)).map_err(invalid)?;
    let preferred = pick(&mut rng, &[0.5, 0.25, 0.1, 0.15]);

    // Purchases.
    let mut day = signup;
    let mut last;
    let mut dropped = false;
    let mut purchase_days = Vec::new();
    loop {
        *order_no += 1;
        let amount = round2(order_dist.sample(&mut rng).max(1.0));
        let channel_i = if rng.random::<f64>() < 0.8 {
            preferred
        } else {
            rng.random_range(0..SALES_CHANNELS.len())
        };
        let channel = SALES_CHANNELS.get(channel_i).copied().unwrap_or("web");
        block.t_order.push(format!("O{:08}", *order_no));
        block.t_customer.push(id.clone());
        block.t_day.push(day);
        block.t_amount.push(amount);
        block.t_channel.push(channel);
        block.t_region.push(region);
        purchase_days.push((day, channel_i == 1));
        last = day;
        if rng.random::<f64>() < 0.02 {
            let refund_day = day + rng.random_range(1..15);
            if refund_day <= end {
                *order_no += 1;
                block.t_order.push(format!("O{:08}", *order_no));
                block.t_customer.push(id.clone());
                block.t_day.push(refund_day);
                block.t_amount.push(-amount);
                block.t_channel.push(channel);
                block.t_region.push(region);
            }
        }
        if rng.random::<f64>() < p_drop {
            dropped = true;
            break;
        }
        day += gap.sample(&mut rng).ceil().max(1.0) as i32;
        if day > end {
            break;
        }
    }
    let cancel = if dropped {
        let c = last + rng.random_range(30..=120);
        (c <= end).then_some(c)
    } else {
        None
    };
    let active_until = cancel
        .unwrap_or(if dropped { last + 60 } else { end })
        .min(end);

    // Interactions: satisfaction is lower for customers who drop out.
    let churner = if dropped { 1.0 } else { 0.0 };
    let satisfaction = d.normal.sample(&mut rng);
    let mut push = |block: &mut Block,
                    day: i32,
                    channel: &'static str,
                    kind: &'static str,
                    nps: Option<i32>,
                    csat: Option<i32>,
                    agent: Option<&'static str>| {
        *interaction_no += 1;
        block.i_id.push(format!("I{:08}", *interaction_no));
        block.i_customer.push(id.clone());
        block.i_day.push(day);
        block.i_channel.push(channel);
        block.i_kind.push(kind);
        block.i_nps.push(nps);
        block.i_csat.push(csat);
        block.i_agent.push(agent);
    };
    for &(pday, in_store) in &purchase_days {
        if rng.random::<f64>() < 0.15 {
            let sday = (pday + rng.random_range(1..8)).min(end);
            let noise = 0.5 * d.normal.sample(&mut rng);
            let nps = (8.4 + 1.5 * (satisfaction + noise) - 1.2 * churner)
                .round()
                .clamp(0.0, 10.0) as i32;
            let channel = if in_store && rng.random::<f64>() < 0.6 {
                "in-person"
            } else {
                "email"
            };
            push(block, sday, channel, "survey", Some(nps), None, None);
        }
        if rng.random::<f64>() < 0.05 {
            push(
                block,
                (pday + 2).min(end),
                "email",
                "follow_up",
                None,
                None,
                None,
            );
        }
    }
    let years = f64::from((active_until - signup).max(0)) / 365.0;
    let tickets = Poisson::new((years * 1.0).max(1e-9))
        .map_err(invalid)?
        .sample(&mut rng) as u64;
    let mut ticket_days: Vec<i32> = (0..tickets)
        .map(|_| signup + rng.random_range(0..=(active_until - signup).max(0)))
        .collect();
    ticket_days.sort_unstable();
    for tday in ticket_days {
        let channel = TICKET_CHANNELS
            .get(pick(&mut rng, &[0.35, 0.35, 0.2, 0.1]))
            .copied()
            .unwrap_or("email");
        let agent = AGENTS.get(rng.random_range(0..AGENTS.len())).copied();
        let csat = (rng.random::<f64>() < 0.6).then(|| {
            let noise = 0.5 * d.normal.sample(&mut rng);
            (4.0 + 0.9 * (satisfaction + noise) - churner)
                .round()
                .clamp(1.0, 5.0) as i32
        });
        push(block, tday, channel, "support_ticket", None, csat, agent);
    }
    if rng.random::<f64>() < 0.3 {
        let lday = signup + rng.random_range(0..=(active_until - signup).max(0));
        push(block, lday, "email", "loyalty", None, None, None);
    }

    block.c_id.push(id);
    block.c_signup.push(signup);
    block.c_cancel.push(cancel);
    block
        .c_plan
        .push(PLANS.get(plan).copied().unwrap_or("basic"));
    block.c_region.push(region);
    block
        .c_acq
        .push(ACQUISITION.get(acq).copied().unwrap_or("organic"));
    block.c_cost.push(round2(cost));
    Ok(())
}

fn date_col(name: &str, days: Vec<i32>) -> Result<Column> {
    Ok(Series::new(name.into(), days).cast(&DataType::Date)?.into())
}

fn opt_date_col(name: &str, days: Vec<Option<i32>>) -> Result<Column> {
    Ok(Series::new(name.into(), days).cast(&DataType::Date)?.into())
}

impl Block {
    fn frames(self) -> Result<[DataFrame; 3]> {
        let s = |name: &str, v: Vec<&'static str>| -> Column { Series::new(name.into(), v).into() };
        let tx = DataFrame::new_infer_height(vec![
            Series::new("order_id".into(), self.t_order).into(),
            Series::new("customer_id".into(), self.t_customer).into(),
            date_col("order_date", self.t_day)?,
            Series::new("amount".into(), self.t_amount).into(),
            Series::new("currency".into(), vec!["USD"; self.t_channel.len()]).into(),
            s("sales_channel", self.t_channel),
            s("region", self.t_region),
        ])?;
        let ix = DataFrame::new_infer_height(vec![
            Series::new("interaction_id".into(), self.i_id).into(),
            Series::new("customer_id".into(), self.i_customer).into(),
            date_col("date", self.i_day)?,
            s("channel", self.i_channel),
            s("kind", self.i_kind),
            Series::new("nps".into(), self.i_nps).into(),
            Series::new("csat".into(), self.i_csat).into(),
            Series::new("agent".into(), self.i_agent).into(),
        ])?;
        let cx = DataFrame::new_infer_height(vec![
            Series::new("customer_id".into(), self.c_id).into(),
            date_col("signup_date", self.c_signup)?,
            opt_date_col("cancelled_date", self.c_cancel)?,
            s("plan", self.c_plan),
            s("region", self.c_region),
            s("acquisition_channel", self.c_acq),
            Series::new("acquisition_cost".into(), self.c_cost).into(),
        ])?;
        Ok([tx, ix, cx])
    }
}

/// A table being written: a temporary file renamed into place by [`Sink::finish`] (or the target
/// itself, for a FIFO or device; see [`crate::output`]).
struct Sink {
    target: PathBuf,
    temp: crate::output::OutputFile,
    format: GenerateFormat,
    csv: Option<polars::io::csv::write::BatchedWriter<BufWriter<File>>>,
    parquet: Option<polars::io::parquet::write::BatchedWriter<BufWriter<File>>>,
    rows: u64,
}

impl Sink {
    fn new(dir: &Path, name: &str, format: GenerateFormat) -> Result<Sink> {
        let ext = match format {
            GenerateFormat::Csv => "csv",
            GenerateFormat::Parquet => "parquet",
        };
        let target = dir.join(format!("{name}.{ext}"));
        let temp = crate::output::OutputFile::create(&target)?;
        Ok(Sink {
            target,
            temp,
            format,
            csv: None,
            parquet: None,
            rows: 0,
        })
    }

    fn write(&mut self, df: &mut DataFrame) -> Result<()> {
        self.rows += df.height() as u64;
        let file = || -> Result<BufWriter<File>> {
            Ok(BufWriter::new(
                self.temp
                    .try_clone_file()
                    .map_err(|e| Error::io(&self.target, e))?,
            ))
        };
        match self.format {
            GenerateFormat::Csv => {
                if self.csv.is_none() {
                    self.csv = Some(
                        CsvWriter::new(file()?)
                            .include_header(true)
                            .batched(df.schema())?,
                    );
                }
                if let Some(w) = self.csv.as_mut() {
                    w.write_batch(df)?;
                }
            }
            GenerateFormat::Parquet => {
                if self.parquet.is_none() {
                    self.parquet = Some(ParquetWriter::new(file()?).batched(df.schema())?);
                }
                if let Some(w) = self.parquet.as_mut() {
                    w.write_batch(df)?;
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<(PathBuf, u64)> {
        if let Some(mut w) = self.csv {
            w.finish()?;
        }
        if let Some(w) = self.parquet {
            w.finish()?;
        }
        self.temp.commit()?;
        Ok((self.target, self.rows))
    }
}

/// Writes the three tables into `out_dir` (created if missing).
///
/// # Errors
/// [`Error::InvalidSetting`] for an empty period or zero customers; [`Error::Io`] when writing fails.
pub fn generate(options: &GenerateOptions, out_dir: &Path) -> Result<GeneratedFiles> {
    if options.end <= options.start {
        return Err(invalid("the end date must be after the start date"));
    }
    if options.customers == 0 {
        return Err(invalid("--customers must be at least 1"));
    }
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let d = Dists {
        rate: Gamma::new(1.2, 6.0 / 1.2).map_err(invalid)?,
        dropout: Beta::new(1.2, 6.0).map_err(invalid)?,
        mean_spend: Gamma::new(4.0, 20.0).map_err(invalid)?,
        cac: Gamma::new(2.0, 20.0).map_err(invalid)?,
        normal: Normal::new(0.0, 1.0).map_err(invalid)?,
    };
    let mut sinks = [
        Sink::new(out_dir, "transactions", options.format)?,
        Sink::new(out_dir, "interactions", options.format)?,
        Sink::new(out_dir, "customers", options.format)?,
    ];
    let (mut order_no, mut interaction_no) = (0u64, 0u64);
    let mut first = 0;
    while first < options.customers {
        let last = (first + BLOCK).min(options.customers);
        let mut block = Block::default();
        for i in first..last {
            customer(
                i,
                options,
                &d,
                &mut block,
                &mut order_no,
                &mut interaction_no,
            )?;
        }
        for (sink, mut df) in sinks.iter_mut().zip(block.frames()?) {
            sink.write(&mut df)?;
        }
        first = last;
    }
    let [t, i, c] = sinks;
    let (transactions, transaction_rows) = t.finish()?;
    let (interactions, interaction_rows) = i.finish()?;
    let (customers, customer_rows) = c.finish()?;
    Ok(GeneratedFiles {
        transactions,
        interactions,
        customers,
        transaction_rows,
        interaction_rows,
        customer_rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{LoadOptions, TableKind, load_table};

    fn opts(customers: usize, seed: u64, format: GenerateFormat) -> GenerateOptions {
        GenerateOptions {
            customers,
            seed,
            format,
            ..GenerateOptions::default()
        }
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let fa = generate(&opts(300, 7, GenerateFormat::Csv), a.path()).unwrap();
        let fb = generate(&opts(300, 7, GenerateFormat::Csv), b.path()).unwrap();
        let fc = generate(&opts(300, 8, GenerateFormat::Csv), c.path()).unwrap();
        for (x, y) in [
            (&fa.transactions, &fb.transactions),
            (&fa.interactions, &fb.interactions),
            (&fa.customers, &fb.customers),
        ] {
            assert_eq!(std::fs::read(x).unwrap(), std::fs::read(y).unwrap());
        }
        assert_ne!(
            std::fs::read(&fa.transactions).unwrap(),
            std::fs::read(&fc.transactions).unwrap()
        );
        // Only the three outputs: no temporary files left behind.
        assert_eq!(std::fs::read_dir(a.path()).unwrap().count(), 3);
    }

    #[test]
    fn generated_data_loads_cleanly_and_is_plausible() {
        let dir = tempfile::tempdir().unwrap();
        let f = generate(&opts(400, 42, GenerateFormat::Csv), dir.path()).unwrap();
        let t = load_table(
            TableKind::Transactions,
            &[f.transactions.to_string_lossy()],
            &LoadOptions::default(),
        )
        .unwrap();
        assert_eq!(t.accounting.rows_read, f.transaction_rows);
        assert_eq!(t.accounting.rows_rejected, 0);
        let i = load_table(
            TableKind::Interactions,
            &[f.interactions.to_string_lossy()],
            &LoadOptions::default(),
        )
        .unwrap();
        assert_eq!(
            (i.accounting.rows_read, i.accounting.rows_rejected),
            (f.interaction_rows, 0)
        );
        let c = load_table(
            TableKind::Customers,
            &[f.customers.to_string_lossy()],
            &LoadOptions::default(),
        )
        .unwrap();
        assert_eq!(c.frame.height(), 400);
        // Every transaction's customer exists; dates stay inside the period.
        let ids: std::collections::HashSet<&str> = c
            .frame
            .column("customer_id")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert!(
            t.frame
                .column("customer_id")
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .flatten()
                .all(|x| ids.contains(x))
        );
        let days = t
            .frame
            .column("date")
            .unwrap()
            .cast(&DataType::Int32)
            .unwrap();
        let (lo, hi) = (
            days_since_epoch(GenerateOptions::default().start),
            days_since_epoch(GenerateOptions::default().end),
        );
        assert!(
            days.i32()
                .unwrap()
                .iter()
                .flatten()
                .all(|d| (lo..=hi).contains(&d))
        );
        assert!(f.transaction_rows > 1000, "{}", f.transaction_rows);
    }

    #[test]
    fn parquet_has_the_same_rows_as_csv() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let csv = generate(&opts(200, 3, GenerateFormat::Csv), a.path()).unwrap();
        let pq = generate(&opts(200, 3, GenerateFormat::Parquet), b.path()).unwrap();
        assert_eq!(
            (csv.transaction_rows, csv.interaction_rows),
            (pq.transaction_rows, pq.interaction_rows)
        );
        let t = load_table(
            TableKind::Transactions,
            &[pq.transactions.to_string_lossy()],
            &LoadOptions::default(),
        )
        .unwrap();
        assert_eq!(t.accounting.rows_read, pq.transaction_rows);
    }
}
