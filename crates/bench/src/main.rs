//! `consentric-bench`: the figures of `docs/benchmarks.md`, each measured side by side with
//! its reference where one exists. A binary of its own, so the product binary neither carries
//! the harness nor depends on crates it only measures.
//!
//! `cargo run --release -p consentric-bench -- ingest|erase|lifecycle|decide|analytics|cleanroom|soak|cluster|privacy-centre|console …`
#![forbid(unsafe_code)]

mod analytics;
mod args;
mod cleanroom;
mod cluster;
mod consent;
mod console;
mod decide;
mod ingest;
mod lifecycle;
mod privacy;
mod raw;
mod soak;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// As in the product binary: the allocator is part of what is measured.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The CDNOW data set that ships with the project.
pub(crate) const CDNOW_MASTER: &[u8] = include_bytes!("../../../data/cdnow/CDNOW_master.txt");

/// Consentric's benchmarks. Each makes fresh stores under TMPDIR.
#[derive(Parser)]
#[command(name = "consentric-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: args::Command,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Warnings only, unless CONSENTRIC_LOG says otherwise: the output is the figures.
    let filter =
        EnvFilter::try_from_env("CONSENTRIC_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        args::Command::Ingest(a) if a.consent_ab => consent::run(&a),
        args::Command::Ingest(a) => ingest::ingest(&a),
        args::Command::Erase(a) => ingest::erase(&a),
        args::Command::Lifecycle(a) => lifecycle::run(&a),
        args::Command::Decide(a) => decide::run(&a),
        args::Command::Analytics(a) => analytics::run(&a),
        args::Command::Cleanroom(a) => cleanroom::run(&a),
        args::Command::Soak(a) => soak::run(&a),
        args::Command::Cluster(a) => cluster::run(&a),
        args::Command::PrivacyCentre(a) => privacy::run(&a),
        args::Command::Console(a) => console::run(&a),
    }
}

/// A multi-threaded runtime for the HTTP server and clients the benches start.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("Failed to start the async runtime")
}
