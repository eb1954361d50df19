//! Exit codes, error messages, and hints that turn library settings into flags.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use custmetrics::Error;

/// The process exit codes, documented in `--help` and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: success.
    Success,
    /// 1: an error in the data or the run.
    Error,
    // 2 is clap's usage error.
    /// 3: a `--fail-if` threshold was crossed; the report was written.
    ThresholdCrossed,
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> ExitCode {
        match s {
            ExitStatus::Success => ExitCode::SUCCESS,
            ExitStatus::Error => ExitCode::from(1),
            ExitStatus::ThresholdCrossed => ExitCode::from(3),
        }
    }
}

/// Reports a failed run on stderr and gives its exit status: `custmetrics: error: <msg>`, one
/// `caused by:` line per source with `--verbose`, then the hint. A closed pipe
/// (`custmetrics report | head`) is not an error (as in ripgrep) and exits 0 quietly.
pub fn report_error(err: &anyhow::Error, verbose: bool) -> ExitStatus {
    if err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    }) {
        return ExitStatus::Success;
    }
    let mut stderr = std::io::stderr().lock();
    let red = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let label = if red {
        "\x1b[1;31merror\x1b[0m"
    } else {
        "error"
    };
    writeln!(stderr, "custmetrics: {label}: {err}").ok();
    if verbose {
        for cause in err.chain().skip(1) {
            writeln!(stderr, "  caused by: {cause}").ok();
        }
    }
    if let Some(hint) = hint(err) {
        writeln!(stderr, "  hint: {hint}").ok();
    }
    ExitStatus::Error
}

/// A hint naming the flag that fixes a library error.
fn hint(err: &anyhow::Error) -> Option<String> {
    let e = err.downcast_ref::<Error>()?.innermost();
    let flag = |setting: &str| format!("--{}", setting.replace('_', "-"));
    Some(match e {
        Error::AmbiguousColumn { setting, candidates, table, .. } => format!(
            "choose one with {} {table}:{:?} (or in custmetrics.toml)",
            flag(setting),
            candidates.first().cloned().unwrap_or_default()
        ),
        Error::NameAsCustomerId { table, columns, .. } => format!(
            "choose the customer column with --customer-col {table}:{:?} (run `custmetrics inspect FILE` to see the columns)",
            columns.first().cloned().unwrap_or_default()
        ),
        Error::MissingColumn { .. } => "name the column with --customer-col, --date-col, --amount-col, ... (run `custmetrics inspect FILE` to see the columns)".into(),
        Error::AmbiguousDateFormat { .. } => "pass --date-format dmy (day first) or --date-format mdy (month first)".into(),
        Error::UnrecognisedValues { .. } => "check the column mapping with `custmetrics inspect FILE`, or pass --date-format".into(),
        Error::InvalidSetting { setting, .. } if setting == "date_format" => "use --date-format ymd, mdy, dmy or a chrono pattern like %d.%m.%Y".into(),
        Error::RejectedRow { .. } => "drop --strict to skip such rows (they are counted), or --rejects FILE to list them all".into(),
        Error::OutputIsInput { .. } => "write the output somewhere else".into(),
        Error::NoData { .. } => "fix the export, or pass --allow-empty to report on no data (rejected rows: --rejects FILE)".into(),
        Error::UnknownStatus { .. } => "or pass --status-col to use another column".into(),
        Error::OutputsCollide { first, second, .. } => {
            format!("give {} and {} different paths", flag(first), flag(second))
        }
        _ => return None,
    })
}
