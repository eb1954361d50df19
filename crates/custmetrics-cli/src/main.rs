//! `custmetrics`: customer metrics from CRM, shop and survey exports.
//!
//! A thin layer over the `custmetrics` library: parse arguments, pick inputs and a renderer,
//! map errors to exit codes. No metric or formatting logic lives here.

mod args;
mod commands;
mod exit;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// polars' large, short-lived buffers are much cheaper with mimalloc than with the system
/// allocator (BENCHMARKS.md has the before/after).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The bounded-memory mode (`--partitions`) trades speed for a lower peak.
///
/// mimalloc keeps freed memory for a while (1 s, 10 s for its arenas) to reuse it cheaply; in
/// that mode each transactions partition frees most of what it used, and holding it kept the
/// peak near that of one big load (10M rows, `retention --partitions 4`: 1.09 GiB, against
/// 0.58-0.61 GiB returning it at once; BENCHMARKS.md). The same as `MIMALLOC_PURGE_DELAY=0`,
/// for the process only. And no transparent huge pages: they are faster, but a partly used
/// 2 MiB page counts whole (+10% peak in that run), and the 100M-row report's peak was measured
/// under 4 GiB without them.
fn bound_memory() {
    // `mi_option_purge_delay` and `mi_option_allow_thp` in mimalloc.h (v3, as vendored by
    // libmimalloc-sys 0.1.49, pinned by Cargo.lock); the crate names only some options.
    // `allow_thp` is read each time mimalloc maps memory, so arenas mapped from now on are
    // not offered to huge pages.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;
    #[allow(unsafe_code)]
    // SAFETY: `mi_option_set` stores an integer option and has no other precondition than not
    // racing with other threads, and no other thread exists yet (it runs first in `main`;
    // rayon's and polars' pools and the Ctrl-C thread start later).
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0);
    }
    // The arena mapped before `main` (the arguments were parsed into memory already) was
    // offered to huge pages: the process's own switch turns them off for every later fault,
    // as mimalloc does at start-up when `MIMALLOC_ALLOW_THP=0`.
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    // SAFETY: `prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)` only sets a flag of the process; its
    // failure (an old kernel) leaves huge pages on, which costs memory, not correctness.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    if cli.transaction_partitions() > 1 {
        bound_memory();
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
