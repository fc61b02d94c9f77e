//! `consentric`: serve, demo, import, profile, keys, bench. Thin: parse the command line,
//! load the configuration, call the engine or the server.
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod telemetry;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    let settings = cli.settings()?;
    telemetry::init(&settings, cli.quiet_logs());
    commands::run(cli.command, settings)
}
