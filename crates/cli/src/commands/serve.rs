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
    let app = Application::build(engine, &settings.server.listen)
        .await
        .with_context(|| format!("Failed to listen on {}", settings.server.listen))?;
    let addr = app
        .local_addr()
        .context("Failed to read the bound address")?;
    tracing::info!(%addr, "listening");
    on_bound(addr);
    app.run_until_stopped().await.context("The server failed")
}
