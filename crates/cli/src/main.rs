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

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    let settings = cli.settings()?;
    telemetry::init(&settings, cli.quiet_logs());
    commands::run(cli.command, settings)
}
