use std::sync::Arc;

use anyhow::Context;
use consentric_engine::{Engine, Settings};
use consentric_server::Application;

pub fn run(engine: Arc<Engine>, settings: &Settings) -> anyhow::Result<()> {
    if engine.keys()?.is_empty() {
        tracing::warn!("no API keys exist yet: create one with `consentric keys create --scope admin` (and `--scope write` for senders)");
    }
    runtime()?.block_on(serve(engine, settings, |_| {}))
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("Failed to start the async runtime")
}

/// Binds, tells `on_bound` the address, and serves until stopped.
pub async fn serve(
    engine: Arc<Engine>,
    settings: &Settings,
    on_bound: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    let engine_for_sweep = engine.clone();
    let app = Application::build(engine, &settings.server.listen)
        .await
        .with_context(|| format!("Failed to listen on {}", settings.server.listen))?;
    let addr = app
        .local_addr()
        .context("Failed to read the bound address")?;
    tracing::info!(%addr, "listening");
    spawn_retention_sweeper(engine_for_sweep, settings.retention.sweep_every_minutes);
    on_bound(addr);
    app.run_until_stopped().await.context("The server failed")
}

/// Runs the retention sweep every `minutes` (never if 0) on a blocking thread.
fn spawn_retention_sweeper(engine: Arc<Engine>, minutes: u64) {
    if minutes == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(minutes * 60));
        loop {
            tick.tick().await;
            let engine = engine.clone();
            match tokio::task::spawn_blocking(move || engine.sweep_retention("retention-sweeper"))
                .await
            {
                Ok(Ok(report)) => tracing::info!(?report, "retention sweep"),
                Ok(Err(e)) => tracing::error!(error = %e, "retention sweep failed"),
                Err(e) => tracing::error!(error = %e, "retention sweep panicked"),
            }
        }
    });
}
