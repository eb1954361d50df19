//! Command-line arguments. The doc comments are the help text; flags are grouped under the
//! help headings below, and every command ends its help with examples.

use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};

const INPUTS: &str = "Inputs";
const MAPPING: &str = "Column mapping";
const METRICS: &str = "Metrics";
const OUTPUT: &str = "Output";
const GENERAL: &str = "General";

/// Customer metrics (retention, churn, CLV, NPS, CSAT) from CRM, shop and survey exports.
#[derive(Debug, Parser)]
#[command(
    name = "custmetrics",
    version,
    disable_help_flag = true,
    disable_version_flag = true,
    after_help = "Examples:\n  custmetrics report -t orders.csv -i surveys.csv -c customers.csv\n  custmetrics retention -t 'exports/orders-*.csv' --period month --format json\n  custmetrics inspect orders.csv\n  custmetrics generate --out demo --customers 2000 --seed 42\n\nExit codes: 0 success, 1 error in the data or the run, 2 wrong usage, 3 a --fail-if threshold was crossed (the report is still written), 130 interrupted (nothing left behind)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print help (-h for a summary, --help for all of it).
    // Declared here (clap's own is disabled) to list it under General in every command.
    #[arg(long, short = 'h', action = clap::ArgAction::Help, global = true, help_heading = GENERAL)]
    help: Option<bool>,
    /// Print the version.
    #[arg(long, short = 'V', action = clap::ArgAction::Version, help_heading = GENERAL)]
    version: Option<bool>,
    /// Print the cause chain of errors.
    #[arg(long, short = 'v', global = true, help_heading = GENERAL)]
    pub verbose: bool,
    /// No progress or accounting summary on stderr.
    #[arg(long, short = 'q', global = true, help_heading = GENERAL)]
    pub quiet: bool,
    /// Print how long each phase took (reading inputs, computing, fitting) on stderr.
    #[arg(long, global = true, help_heading = GENERAL)]
    pub timings: bool,
}

impl Cli {
    /// The command's `--partitions` (1 for commands without it).
    pub fn transaction_partitions(&self) -> u32 {
        match &self.command {
            Command::Report(c)
            | Command::Retention(c)
            | Command::Churn(c)
            | Command::Nps(c)
            | Command::Csat(c)
            | Command::Rfm(c) => c.metrics.partitions,
            Command::Summarize(a) => a.partitions,
            Command::Clv(c) => match &c.action {
                Some(ClvAction::Fit(r) | ClvAction::Predict(r) | ClvAction::Compare(r)) => {
                    r.cmd.metrics.partitions
                }
                None => c.run.cmd.metrics.partitions,
            },
            _ => 1,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The full report: overview, data quality, retention, churn, survival, NPS, CSAT, RFM, purchasing.
    #[command(after_help = "Examples:
  custmetrics report -t orders.csv -i surveys.csv -c customers.csv
  custmetrics report --config custmetrics.toml --compare last-month.json -f markdown
  custmetrics report -t 'exports/orders-*.csv' -f html -o report.html
  custmetrics report -t orders.csv -f json --fail-if 'churn_rate > 0.05'")]
    Report(MetricCommand),
    /// Period retention (CRR, retention, churn, NRR/GRR) and the cohort triangle.
    #[command(after_help = "Examples:
  custmetrics retention -t orders.csv
  custmetrics retention -t 'exports/orders-*.csv' --period quarter -f json
  custmetrics retention -t orders.csv -c customers.csv --by plan")]
    Retention(MetricCommand),
    /// Churn by inactivity (and by cancellation with a customers table), at-risk customers, survival.
    #[command(after_help = "Examples:
  custmetrics churn -t orders.csv --inactive-after 60
  custmetrics churn -t orders.csv -c customers.csv -f markdown")]
    Churn(MetricCommand),
    /// Net Promoter Score overall, per period and per --by group, with 95% intervals.
    #[command(after_help = "Examples:
  custmetrics nps -i surveys.csv
  custmetrics nps -i surveys.csv --by channel --period quarter -f json")]
    Nps(MetricCommand),
    /// CSAT (share satisfied) with Wilson intervals and the mean score.
    #[command(after_help = "Examples:
  custmetrics csat -i tickets.csv
  custmetrics csat -i tickets.csv --csat-scale 10 --csat-satisfied 8")]
    Csat(MetricCommand),
    /// Per-customer RFM summary (frequency, recency, T, monetary value), scores and segments.
    #[command(after_help = "Examples:
  custmetrics rfm -t orders.csv -f csv -o rfm.csv
  custmetrics rfm -t orders.csv --by region --time-unit weeks -f json")]
    Rfm(MetricCommand),
    /// Predictive CLV: fit a purchase model (BG/NBD, Pareto/NBD, MBG/NBD) and Gamma-Gamma, then
    /// rank every customer by discounted CLV, P(alive) and expected purchases. `clv fit` shows
    /// a fit (also BG/BB and sBG), `clv predict` scores customers, optionally with a saved model.
    #[command(after_help = "Examples:
  custmetrics clv -t orders.csv -f csv -o clv.csv
  custmetrics clv fit -t orders.csv --model pareto-nbd --save-model model.json
  custmetrics clv predict -t orders.csv --model-file model.json -f csv")]
    Clv(Box<ClvCommand>),
    /// Show what custmetrics reads in files: format, delimiter, column roles, rows, dates, problems.
    #[command(after_help = "Examples:
  custmetrics inspect orders.csv
  custmetrics inspect 'exports/*.xlsx' --sheet Orders -f json
  custmetrics inspect export.csv --as interactions --nps-col 'Likely to recommend'")]
    Inspect(InspectArgs),
    /// Summarise exports into a summary store (stage 1 as files), or add new exports to one:
    /// every metric command then runs from it with --store, without the exports.
    #[command(after_help = "Examples:
  custmetrics summarize -t 'exports/orders-*.csv' -i surveys.csv -c customers.csv --out store
  custmetrics summarize --update store -t orders-2024-12.csv -i surveys-2024-12.csv
  custmetrics report --store store -f html -o report.html
  custmetrics retention --store store --period quarter --from 2024-01-01")]
    Summarize(SummarizeArgs),
    /// Write a realistic, deterministic synthetic CRM dataset (transactions, interactions, customers).
    #[command(after_help = "Examples:
  custmetrics generate --out demo
  custmetrics generate --out big --customers 250000 --seed 7 --format parquet")]
    Generate(GenerateArgs),
    /// Print the stage-1 SQL for a warehouse (DuckDB, PostgreSQL, Spark SQL, BigQuery,
    /// Snowflake): it reduces a transactions (and interactions) table to the summary store's
    /// tables there; `summarize --from-results` then assembles the store from their exports.
    #[command(after_help = "Examples:
  custmetrics sql --dialect postgres -t shop.orders --transactions-columns order_id,customer_id,order_date,amount,status
  custmetrics sql --dialect bigquery -t analytics.orders --transactions-columns \"$(head -1 orders.csv)\" -i analytics.surveys --interactions-columns response_id,customer_id,date,nps --identifiers response_id
  custmetrics summarize --from-results exported/ -c customers.csv --out store")]
    Sql(SqlArgs),
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// Relations (tables or views) as the warehouse names them, with -t (transactions) and -i
    /// (interactions); mapping flags and custmetrics.toml apply as to files.
    #[command(flatten)]
    pub input: InputArgs,
    /// SQL dialect to write.
    #[arg(long, value_parser = ["duckdb", "postgres", "spark", "bigquery", "snowflake"], help_heading = OUTPUT)]
    pub dialect: String,
    /// The transactions relation's columns, comma-separated, as the warehouse spells them
    /// (e.g. the export's header line).
    #[arg(long, value_name = "COLUMNS", help_heading = INPUTS)]
    pub transactions_columns: Option<String>,
    /// The interactions relation's columns, comma-separated.
    #[arg(long, value_name = "COLUMNS", help_heading = INPUTS)]
    pub interactions_columns: Option<String>,
    /// Interactions columns that identify one interaction or answer (a response id): left out,
    /// since as segments they would make the results one row per interaction.
    #[arg(long, value_name = "COLUMNS", value_delimiter = ',', help_heading = INPUTS)]
    pub identifiers: Vec<String>,
    /// A column of the relations naming each row's source file (DuckDB's `filename`): order
    /// lines repeated in a later file are then rejected as duplicates, as the local reader does.
    #[arg(long, value_name = "COLUMN", help_heading = INPUTS)]
    pub file_column: Option<String>,
    /// Write the SQL to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE", help_heading = OUTPUT)]
    pub output: Option<PathBuf>,
}

/// Table inputs and column mapping, shared by every command that reads data.
#[derive(Debug, Args, Clone, Default)]
pub struct InputArgs {
    /// Transactions (orders, invoices, charges): files, globs, or - for stdin. Repeatable.
    #[arg(long, short = 't', num_args = 1.., value_name = "FILE", help_heading = INPUTS)]
    pub transactions: Vec<String>,
    /// Interactions (surveys, tickets) with NPS/CSAT answers and channels. Repeatable.
    #[arg(long, short = 'i', num_args = 1.., value_name = "FILE", help_heading = INPUTS)]
    pub interactions: Vec<String>,
    /// Customers (signup and cancellation dates, acquisition cost, plan). Repeatable.
    #[arg(long, short = 'c', num_args = 1.., value_name = "FILE", help_heading = INPUTS)]
    pub customers: Vec<String>,
    /// Read a summary store written by `custmetrics summarize` instead of the exports: only
    /// stage 2 runs, with the same results as from the exports that went into it.
    #[arg(long, value_name = "DIR", help_heading = INPUTS,
          conflicts_with_all = ["transactions", "interactions", "customers"])]
    pub store: Option<PathBuf>,
    /// Config file naming inputs, mapping and report settings (default: ./custmetrics.toml if present).
    #[arg(long, value_name = "FILE", help_heading = INPUTS)]
    pub config: Option<PathBuf>,
    /// Customer id column. `NAME` applies to every table that has it; `TABLE:NAME` to one table.
    #[arg(long, value_name = "[TABLE:]NAME", help_heading = MAPPING)]
    pub customer_col: Vec<String>,
    /// Date column (transaction or interaction date).
    #[arg(long, value_name = "[TABLE:]NAME", help_heading = MAPPING)]
    pub date_col: Vec<String>,
    /// Amount (revenue) column; without one, quantity × unit price.
    #[arg(long, value_name = "[TABLE:]NAME", help_heading = MAPPING)]
    pub amount_col: Vec<String>,
    /// Order id column; lines of one order count as one purchase.
    #[arg(long, value_name = "[TABLE:]NAME", help_heading = MAPPING)]
    pub order_col: Vec<String>,
    /// Quantity column.
    #[arg(long, value_name = "[TABLE:]NAME", help_heading = MAPPING)]
    pub quantity_col: Vec<String>,
    /// Unit price column.
    #[arg(long, value_name = "[TABLE:]NAME", help_heading = MAPPING)]
    pub unit_price_col: Vec<String>,
    /// NPS answer column (0-10).
    #[arg(long, value_name = "[TABLE:]NAME", help_heading = MAPPING)]
    pub nps_col: Vec<String>,
    /// CSAT answer column (1..=scale).
    #[arg(long, value_name = "[TABLE:]NAME", help_heading = MAPPING)]
    pub csat_col: Vec<String>,
    /// Interaction channel column.
    #[arg(long, value_name = "[TABLE:]NAME", help_heading = MAPPING)]
    pub channel_col: Vec<String>,
    /// Payment / order status column (paid, pending, failed, voided, refunded, partially
    /// refunded); only paid and refunded orders are purchases. Map other values in
    /// custmetrics.toml under [transactions.statuses].
    #[arg(long, value_name = "[TABLE:]NAME", help_heading = MAPPING)]
    pub status_col: Vec<String>,
    /// Refunded-amount column: an order's revenue is its amount minus this.
    #[arg(long, value_name = "[TABLE:]NAME", help_heading = MAPPING)]
    pub refunded_col: Vec<String>,
    /// Signup / acquisition date column (customers).
    #[arg(long, value_name = "[TABLE:]NAME", help_heading = MAPPING)]
    pub signup_col: Vec<String>,
    /// Cancellation / end date column (customers).
    #[arg(long, value_name = "[TABLE:]NAME", help_heading = MAPPING)]
    pub end_col: Vec<String>,
    /// Date format of every date column: ymd (ISO), mdy (US), dmy (European) or a chrono pattern
    /// such as %d.%m.%Y. Default: detected per column; day-first vs month-first ambiguity is an error.
    #[arg(long, value_name = "FORMAT", help_heading = MAPPING)]
    pub date_format: Option<String>,
    /// Text encoding of CSV files: utf-8, utf-16 (utf-16le, utf-16be) or windows-1252 (alias
    /// latin1, cp1252). Default: UTF-8; UTF-16 when the file starts with its byte-order mark
    /// (Excel's "Unicode Text"); Windows-1252 when the bytes clearly are (Excel exports on
    /// Western Windows).
    #[arg(long, value_name = "ENCODING", help_heading = INPUTS)]
    pub encoding: Option<String>,
    /// Sheet to read from workbooks (.xlsx, .xlsb, .xls, .ods). Default: the first visible
    /// worksheet. A name that is not in a workbook is an error listing its sheets.
    #[arg(long, value_name = "NAME", help_heading = INPUTS)]
    pub sheet: Option<String>,
    /// Decimal separator of amounts. Default: detected per column.
    #[arg(long, value_enum, help_heading = MAPPING)]
    pub decimal: Option<DecimalArg>,
    /// Top of the CSAT scale (answers 1..=N).
    #[arg(long, default_value_t = 5, help_heading = MAPPING)]
    pub csat_scale: u8,
    /// Write every rejected row (file, line, column, value, reason) to this CSV file.
    #[arg(long, value_name = "FILE", help_heading = INPUTS)]
    pub rejects: Option<PathBuf>,
    /// Fail (exit 1) on the first rejected row instead of counting it.
    #[arg(long, help_heading = INPUTS)]
    pub strict: bool,
    /// Report even when a table has no usable row (no data rows, or every row rejected or
    /// excluded). Without it that is an error (exit 1), so that a broken upstream export never
    /// becomes an all-zero report.
    #[arg(long, help_heading = INPUTS)]
    pub allow_empty: bool,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["out", "update"]))]
pub struct SummarizeArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Assemble the store from the results of `custmetrics sql` run on a warehouse: a
    /// directory of plan, purchases, interactions, survey and accounting as .parquet or .csv
    /// (the customers table, if any, is read from -c here).
    #[arg(long, value_name = "DIR", help_heading = INPUTS, conflicts_with_all = ["transactions", "interactions", "update", "engine"])]
    pub from_results: Option<PathBuf>,
    /// Run stage 1 on this engine instead of here: `spark` (Spark Connect; needs --remote; -t
    /// and -i are paths or tables as the cluster sees them).
    #[arg(long, value_name = "ENGINE", value_parser = ["local", "spark"], default_value = "local", help_heading = INPUTS)]
    pub engine: String,
    /// The Spark Connect server (sc://HOST:PORT, with ;token=... for Databricks).
    #[arg(long, value_name = "URL", env = "SPARK_REMOTE", help_heading = INPUTS)]
    pub remote: Option<String>,
    /// Interactions columns that identify one interaction or answer, for --engine spark
    /// (default: found as the local reader finds them, on the whole column).
    #[arg(long, value_name = "COLUMNS", value_delimiter = ',', help_heading = INPUTS)]
    pub identifiers: Option<Vec<String>>,
    /// Write a new summary store to this directory (it must not exist, or be empty).
    #[arg(long, value_name = "DIR", help_heading = OUTPUT)]
    pub out: Option<PathBuf>,
    /// Add the exports to this summary store (atomically: interrupted, it stays as it was).
    /// Order lines it already holds are recognised and not counted twice.
    #[arg(long, value_name = "DIR", help_heading = OUTPUT)]
    pub update: Option<PathBuf>,
    /// Rows of an update on days the store already covers, for tables whose rows cannot be
    /// told apart from the store's (interactions; transactions without order ids): refuse
    /// (default: the update fails naming the overlap), skip them (the export repeats those
    /// days) or keep them (they are other customers' rows).
    #[arg(long, value_enum, default_value_t = OverlapArg::Refuse, help_heading = INPUTS)]
    pub overlap: OverlapArg,
    /// Read the transactions in N customer partitions, one after another: the rows held at a
    /// time fall to about 1/N.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=4096), help_heading = INPUTS)]
    pub partitions: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OverlapArg {
    /// Fail, naming the overlap.
    Refuse,
    /// Leave the overlapping rows out (counted as already_in_store).
    Skip,
    /// Add them.
    Keep,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DecimalArg {
    /// 1,234.50
    Point,
    /// 1.234,50
    Comma,
}

#[derive(Debug, Args)]
pub struct MetricCommand {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub metrics: MetricArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args, Clone)]
pub struct MetricArgs {
    /// Reporting period: day, week (ISO), month, quarter or year. Default month.
    #[arg(long, value_name = "PERIOD", help_heading = METRICS)]
    pub period: Option<String>,
    /// Ignore data before this date (YYYY-MM-DD).
    #[arg(long, value_name = "DATE", help_heading = METRICS)]
    pub from: Option<String>,
    /// Ignore data after this date; an alias of --as-of.
    #[arg(long, value_name = "DATE", help_heading = METRICS)]
    pub to: Option<String>,
    /// Observation end (YYYY-MM-DD). Default: the last transaction date.
    #[arg(long, value_name = "DATE", help_heading = METRICS)]
    pub as_of: Option<String>,
    /// Split metrics by a dimension column (channel, plan, region, ...). Repeatable; the first splits.
    #[arg(long, value_name = "COLUMN", help_heading = METRICS)]
    pub by: Vec<String>,
    /// What makes a customer active in a period for retention, churn and survival: transactions
    /// (default) or any (a transaction or any interaction, from the first purchase on).
    #[arg(long, value_name = "WHAT", help_heading = METRICS)]
    pub active_on: Option<String>,
    /// Days without a purchase after which a customer is churned. Default 90; see the reported
    /// inter-purchase percentiles to choose.
    #[arg(long, value_name = "DAYS", help_heading = METRICS)]
    pub inactive_after: Option<u32>,
    /// Flag NPS/CSAT figures resting on fewer answers than this.
    #[arg(long, default_value_t = 30, help_heading = METRICS)]
    pub min_responses: u64,
    /// Lowest CSAT answer counted as satisfied. Default: scale − 1 (4 and 5 on 1-5).
    #[arg(long, value_name = "SCORE", help_heading = METRICS)]
    pub csat_satisfied: Option<u8>,
    /// Time unit of recency and T: days or weeks (day and week work too). Default: days for RFM,
    /// weeks for the CLV models (the papers' unit); --horizon counts this unit.
    #[arg(long, value_enum, help_heading = METRICS)]
    pub time_unit: Option<TimeUnit>,
    /// Purchase model for CLV.
    #[arg(long, value_name = "MODEL", value_parser = model_parser(false), help_heading = METRICS)]
    pub model: Option<ModelArg>,
    /// CLV horizon in model time units (default 52, a year of weeks).
    #[arg(long, value_name = "UNITS", help_heading = METRICS)]
    pub horizon: Option<u32>,
    /// Yearly discount rate for CLV (0.10 = 10 %), converted to the model time unit.
    #[arg(long, value_name = "RATE", default_value_t = 0.10, help_heading = METRICS)]
    pub discount_rate: f64,
    /// Calibration/holdout check of the CLV models: fit on transactions before DATE and compare
    /// predicted with actual purchases from DATE to the observation end.
    #[arg(long, value_name = "DATE", help_heading = METRICS)]
    pub holdout_from: Option<String>,
    /// L2 penalizer for the model fits (try 0.001 when a fit does not converge).
    #[arg(long, value_name = "COEF", default_value_t = 0.0, help_heading = METRICS)]
    pub penalizer: f64,
    /// Prediction intervals for CLV, expected purchases and P(alive), from the uncertainty of
    /// the fitted parameters (draws from the estimate's asymptotic normal; docs/metrics.md).
    /// Each draw re-scores every customer.
    #[arg(long, help_heading = METRICS)]
    pub intervals: bool,
    /// Parameter draws for --intervals (implies it). Default 200.
    #[arg(long, value_name = "N", help_heading = METRICS)]
    pub interval_draws: Option<u32>,
    /// Coverage of --intervals (implies it), such as 0.9. Default 0.95.
    #[arg(long, value_name = "LEVEL", help_heading = METRICS)]
    pub interval_level: Option<f64>,
    /// Seed of the --intervals draws: the same seed, the same intervals. Default 1.
    #[arg(long, value_name = "N", help_heading = METRICS)]
    pub interval_seed: Option<u64>,
    /// Customer attributes that shift the purchase rate in the CLV models, comma-separated: a
    /// customers-table attribute (plan, acquisition_channel), a transactions column (valued by
    /// the customer's first purchase), or with --summary a column of the summary. Text columns
    /// are compared with their most frequent value; numbers enter as they are.
    #[arg(long, value_name = "COLUMNS", value_delimiter = ',', help_heading = METRICS)]
    pub purchase_covariates: Vec<String>,
    /// Customer attributes that shift drop-out in the CLV models (as --purchase-covariates).
    #[arg(long, value_name = "COLUMNS", value_delimiter = ',', help_heading = METRICS)]
    pub dropout_covariates: Vec<String>,
    /// Customer attributes that shift the spend per purchase (Gamma-Gamma).
    #[arg(long, value_name = "COLUMNS", value_delimiter = ',', help_heading = METRICS)]
    pub spend_covariates: Vec<String>,
    /// Periods (of --period) after the observation end for which the CLV models forecast every
    /// first-purchase cohort's active customers and revenue: the cohort triangle continued,
    /// with intervals under --intervals. 0 for none.
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(0..=120), help_heading = METRICS)]
    pub forecast_periods: u32,
    /// At-risk customers listed in the report.
    #[arg(long, default_value_t = 20, help_heading = METRICS)]
    pub at_risk_limit: usize,
    /// Read the transactions in N customer partitions, one after another, instead of whole:
    /// the transaction rows held at a time (and stage 1's working memory) fall to about 1/N,
    /// and every partition reads the files again. For exports too large for memory.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=4096), help_heading = INPUTS)]
    pub partitions: u32,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ClvCommand {
    #[command(subcommand)]
    pub action: Option<ClvAction>,
    #[command(flatten)]
    pub run: ClvRun,
}

#[derive(Debug, Subcommand)]
pub enum ClvAction {
    /// Fit a model and show its parameters (papers' names), standard errors, log-likelihood,
    /// AIC/BIC and convergence. Input: transactions (-t), a per-customer summary (--summary), or
    /// for sBG a cohort's survivor counts (--survivors).
    // Only `clv fit` offers the models that do not score CLV from transactions.
    #[command(
        mut_arg("model", |a| a.value_parser(model_parser(true))),
        after_help = "Examples:
  custmetrics clv fit -t orders.csv --model pareto-nbd --save-model model.json
  custmetrics clv fit -t orders.csv --calibration-end 2024-06-30 -f json
  custmetrics clv fit --summary cdnow_summary.csv --model bgnbd
  custmetrics clv fit --model bgbb --summary donations.csv
  custmetrics clv fit --model sbg --survivors 1000,869,743,653"
    )]
    Fit(ClvRun),
    /// Fit every purchase model (BG/NBD, Pareto/NBD, MBG/NBD) on the same customers and show
    /// log-likelihood, AIC, BIC and, with --holdout-from or --calibration-end, each model's
    /// holdout errors side by side; the one chosen (lowest holdout RMSE, else lowest BIC) is
    /// named with the reason and scores the CLV figures.
    #[command(after_help = "Examples:
  custmetrics clv compare -t orders.csv --calibration-end 2024-06-30
  custmetrics clv compare -t orders.csv -f json -o comparison.json")]
    Compare(ClvRun),
    /// Score every customer (P(alive), expected purchases, CLV) and list them all; with
    /// --model-file, with a model saved by `clv fit --save-model` instead of fitting.
    #[command(after_help = "Examples:
  custmetrics clv predict -t orders.csv -f csv -o clv.csv
  custmetrics clv predict -t orders.csv --model-file model.json --horizon 26")]
    Predict(ClvRun),
}

#[derive(Debug, Args)]
pub struct ClvRun {
    #[command(flatten)]
    pub cmd: MetricCommand,
    #[command(flatten)]
    pub clv: ClvArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ClvArgs {
    /// Per-customer summary instead of transactions: customer_id, frequency, recency, T
    /// [, monetary_value] in --time-unit units (pymc-marketing's names), or for --model bgbb
    /// frequency, recency, periods [, weights].
    #[arg(long, value_name = "FILE", num_args = 1.., help_heading = INPUTS)]
    pub summary: Vec<String>,
    /// For --model sbg: customers of one cohort still active at renewals 0, 1, 2, ...
    /// (e.g. 1000,869,743,653).
    #[arg(long, value_name = "N0,N1,...", value_delimiter = ',', help_heading = INPUTS)]
    pub survivors: Vec<f64>,
    /// Spend model fitted with the purchase model (the only one offered: gamma-gamma).
    #[arg(long, value_enum, default_value_t = SpendModel::GammaGamma, help_heading = METRICS)]
    pub spend_model: SpendModel,
    /// Last day of the calibration period: fit on data up to it and compare predictions with the
    /// rest (same as --holdout-from the next day).
    #[arg(long, value_name = "DATE", help_heading = METRICS)]
    pub calibration_end: Option<String>,
    /// Save the fitted purchase and spend models as JSON (for `clv predict --model-file`).
    #[arg(long, value_name = "FILE", help_heading = OUTPUT)]
    pub save_model: Option<PathBuf>,
    /// Score with a saved model instead of fitting one.
    #[arg(long, value_name = "FILE", help_heading = INPUTS)]
    pub model_file: Option<PathBuf>,
    /// Periods (or opportunities) ahead shown in the sBG and BG/BB projections.
    #[arg(long, value_name = "N", default_value_t = 5, help_heading = METRICS)]
    pub project: u32,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum SpendModel {
    #[default]
    GammaGamma,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ModelArg {
    /// BG/NBD (Fader, Hardie & Lee 2005), the default.
    Bgnbd,
    /// Pareto/NBD (Schmittlein, Morrison & Colombo 1987).
    ParetoNbd,
    /// Modified BG/NBD (Batislam et al. 2007): P(alive) < 1 for one-time buyers.
    Mbgnbd,
    /// BG/BB (Fader, Hardie & Shang 2010), discrete opportunities; needs --summary.
    #[value(hide = true)]
    Bgbb,
    /// Shifted-beta-geometric (Fader & Hardie 2007), contractual renewals; needs --survivors.
    #[value(hide = true)]
    Sbg,
}

/// `--model`: the purchase models that score CLV, and with `all` (for `clv fit`) also BG/BB and
/// sBG. The hidden ones are still accepted elsewhere, so that `report --model sbg` keeps its
/// message pointing to `clv fit`.
fn model_parser(all: bool) -> impl TypedValueParser<Value = ModelArg> {
    let values: Vec<PossibleValue> = ModelArg::value_variants()
        .iter()
        .filter_map(ValueEnum::to_possible_value)
        .map(|v| if all { v.hide(false) } else { v })
        .collect();
    PossibleValuesParser::new(values).try_map(|name| ModelArg::from_str(&name, false))
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum TimeUnit {
    #[value(alias = "day")]
    Days,
    #[value(alias = "week")]
    Weeks,
}

#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, short = 'f', value_enum, help_heading = OUTPUT)]
    pub format: Option<FormatArg>,
    /// Write to this file (atomically) instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE", help_heading = OUTPUT)]
    pub output: Option<PathBuf>,
    /// With --format csv: write one CSV file per table into this directory.
    #[arg(long, value_name = "DIR", help_heading = OUTPUT)]
    pub output_dir: Option<PathBuf>,
    /// Add month-over-month changes against a previous JSON report (`--format json` output).
    #[arg(long, value_name = "PREVIOUS.json", help_heading = OUTPUT)]
    pub compare: Option<PathBuf>,
    /// Exit with code 3 (after writing the report) when a headline figure crosses a threshold,
    /// e.g. "churn_rate > 0.05", "nps < 20", "csat < 80%". Repeatable. Figures: customers,
    /// transactions, revenue, average_order_value, repeat_purchase_rate, historical_clv,
    /// retention_rate, crr, nrr, grr, churn_rate, contractual_churn_rate, median_lifetime_days,
    /// nps, csat, csat_mean, rows_rejected.
    #[arg(long, value_name = "EXPR", help_heading = OUTPUT)]
    pub fail_if: Vec<String>,
    /// Add the generation time to the report (off by default so reruns are byte-identical).
    #[arg(long, help_heading = OUTPUT)]
    pub stamp: bool,
    /// Colours in terminal tables: auto (when stdout is a terminal and NO_COLOR is unset), always, never.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto, help_heading = OUTPUT)]
    pub color: ColorArg,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum FormatArg {
    Table,
    Markdown,
    Json,
    Csv,
    /// Self-contained HTML page with charts (use with --output report.html).
    Html,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Files to inspect (globs and - accepted).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// Read the files as this table instead of trying transactions, interactions, customers.
    #[arg(long = "as", value_enum, help_heading = INPUTS)]
    pub table: Option<TableArg>,
    #[command(flatten)]
    pub input: InputArgs,
    /// Output format: table (text), markdown, json, csv or html.
    #[arg(long, short = 'f', value_enum, default_value_t = FormatArg::Table, help_heading = OUTPUT)]
    pub format: FormatArg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TableArg {
    Transactions,
    Interactions,
    Customers,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Directory to write transactions, interactions and customers into (created if missing).
    #[arg(long, value_name = "DIR", help_heading = OUTPUT)]
    pub out: PathBuf,
    /// Number of customers.
    #[arg(long, default_value_t = 2000)]
    pub customers: usize,
    /// Random seed; the same seed gives byte-identical files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// File format.
    #[arg(long, value_enum, default_value_t = GenFormat::Csv, help_heading = OUTPUT)]
    pub format: GenFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GenFormat {
    Csv,
    Parquet,
}
