//! `consentric`: serve, demo, import, profile, keys, dsr, lifecycle, … Thin: parse the command line,
//! load the configuration, call the engine or the server.
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod telemetry;

use clap::Parser;

/// mimalloc instead of the system allocator: ingest and decisions allocate and free many small
/// values across threads (parsed JSON, sealed strings, rows), where glibc's malloc took a
/// fifth of the time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's setting for how long freed memory waits before it goes back to the system.
const PURGE_DELAY: &str = "MIMALLOC_PURGE_DELAY";

/// Restarts this process with mimalloc's purge delay at 0, unless the environment sets it.
///
/// mimalloc returns a thread's freed pages to the system only when that thread next allocates,
/// 10 ms after they were freed. A server's blocking threads go idle after a burst of requests
/// and keep what they freed: a 10-minute soak grew from 171 to 638 MB while the live heap
/// peaked at 150 MB (heaptrack). With the delay at 0 the pages go back when freed, and the
/// same soak held 340–390 MB from its second minute on, for 3–4% of the ingest capacity
/// (docs/benchmarks.md). mimalloc reads the setting once, before `main`, so it must be in the
/// environment the process starts with. If the restart fails, the process goes on as it is.
#[cfg(unix)]
fn with_prompt_purging() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(PURGE_DELAY).is_some() {
        return;
    }
    if let Ok(exe) = std::env::current_exe() {
        let failed = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env(PURGE_DELAY, "0")
            .exec();
        eprintln!("note: running without prompt purging of freed memory ({failed})");
    }
}

#[cfg(not(unix))]
fn with_prompt_purging() {}

fn main() -> anyhow::Result<()> {
    with_prompt_purging();
    let cli = cli::Cli::parse();
    let settings = cli.settings()?;
    telemetry::init(&settings, cli.quiet_logs());
    commands::run(cli.command, settings)
}
