//! `custmetrics`: customer metrics from CRM, shop and survey exports.
//!
//! A thin layer over the `custmetrics` library: parse arguments, pick inputs and a renderer,
//! map errors to exit codes. No metric or formatting logic lives here.

mod args;
mod commands;
mod exit;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

/// polars' large, short-lived buffers are much cheaper with mimalloc than with the system
/// allocator (BENCHMARKS.md has the before/after).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Ctrl-C: remove the temporary files of outputs being written (and spooled inputs), so that
    // an interrupted run leaves nothing behind, then exit with the conventional 130.
    let _ = ctrlc::set_handler(|| {
        custmetrics::temp_files::remove_all();
        eprintln!("custmetrics: interrupted; files being written were removed");
        std::process::exit(130);
    });
    let cli = args::Cli::parse();
    let verbose = cli.verbose;
    match commands::run(cli) {
        Ok(status) => status.into(),
        Err(err) => {
            // A closed pipe (`custmetrics report | head`) is not an error (as in ripgrep).
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return exit::ExitStatus::Success.into();
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
            if let Some(hint) = exit::hint(&err) {
                writeln!(stderr, "  hint: {hint}").ok();
            }
            exit::ExitStatus::Error.into()
        }
    }
}
