//! `custmetrics`: customer metrics from CRM, shop and survey exports.
//!
//! A thin layer over the `custmetrics` library: parse arguments, pick inputs and a renderer,
//! map errors to exit codes. No metric or formatting logic lives here.

mod args;
mod commands;
mod exit;
mod memory;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// polars' large, short-lived buffers are much cheaper with mimalloc than with the system
/// allocator (BENCHMARKS.md has the before/after).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    if cli.transaction_partitions() > 1 {
        memory::bound_memory();
    } else if memory::huge_pages_cost_more_here() {
        memory::no_huge_pages();
    }
    // Ctrl-C: remove the temporary files of outputs being written (and spooled inputs), so that
    // an interrupted run leaves nothing behind, then exit with the conventional 130. The exit
    // happens inside `remove_all_then`, which holds the lock that writers take to create or
    // rename a temporary file, so no writer can leave a new one after the cleanup.
    let _ = ctrlc::set_handler(|| {
        custmetrics::temp_files::remove_all_then(|| {
            let mut stderr = std::io::stderr().lock();
            writeln!(
                stderr,
                "custmetrics: interrupted; files being written were removed"
            )
            .ok();
            std::process::exit(130)
        })
    });
    let verbose = cli.verbose;
    match commands::run(cli) {
        Ok(status) => status.into(),
        Err(err) => exit::report_error(&err, verbose).into(),
    }
}
