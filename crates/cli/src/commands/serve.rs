use std::sync::Arc;

use anyhow::Context;
use consentric_engine::{Engine, Settings};
use consentric_server::Application;

pub fn run(engine: Arc<Engine>, settings: &Settings) -> anyhow::Result<()> {
    let keys = engine.keys()?;
    if keys.is_empty() {
        tracing::warn!("no API keys exist yet: create one with `consentric keys create --scope admin` (and `--scope write` for senders)");
    }
    for k in keys
        .iter()
        .filter(|k| k.kind == "browser" && k.revoked_at.is_none())
    {
        if let Some(library) = &k.server_library {
            tracing::warn!(
                key = %k.key_id,
                %library,
                "a browser key has been used by a server SDK: its events are held to browser rules (no contact details or grants about a user id without a user hash); if it is a secret server key, run `consentric keys set-kind {} server`",
                k.key_id
            );
        }
    }
    server_runtime(&settings.server)?.block_on(serve(engine, settings, |_| {}))
}

/// The runtime `serve` runs on. Engine work runs on its blocking threads, at most one per
/// request in flight (the edge admits no more) and a few for the timers; they are kept rather
/// than ended and started again, so that the allocator's per-thread caches are reused instead of
/// piling up as threads come and go.
pub fn server_runtime(
    server: &consentric_engine::ServerSettings,
) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(server.max_in_flight.max(1) + 8)
        .thread_keep_alive(std::time::Duration::from_secs(600))
        .build()
        .context("Failed to start the async runtime")
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
    let engine_for_refresh = engine.clone();
    let app = Application::with_settings(engine, &settings.server)
        .await
        .with_context(|| format!("Failed to listen on {}", settings.server.listen))?;
    let addr = app
        .local_addr()
        .context("Failed to read the bound address")?;
    tracing::info!(%addr, "listening");
    spawn_periodic(
        "retention sweep",
        engine_for_sweep.clone(),
        minutes(settings.retention.sweep_every_minutes),
        |e| {
            let swept = e.sweep_retention("retention-sweeper")?;
            let withdrawals = e.carry_out_due_withdrawals("withdrawal-grace")?;
            Ok(format!(
                "{swept:?}, {withdrawals} deferred withdrawals carried out"
            ))
        },
    );
    spawn_periodic(
        "recommender training",
        engine_for_sweep.clone(),
        minutes(settings.personalize.train_every_minutes),
        |e| {
            Ok(format!(
                "{:?}",
                e.train_recommenders("recommender-training")?
            ))
        },
    );
    spawn_periodic(
        "lifecycle recompute",
        engine_for_sweep.clone(),
        minutes(settings.lifecycle.recompute_every_minutes),
        |e| {
            Ok(format!(
                "{:?}",
                e.lifecycle_recompute("lifecycle-recompute")?
            ))
        },
    );
    spawn_periodic(
        "segment refresh",
        engine_for_sweep.clone(),
        std::time::Duration::from_secs(settings.personalize.segment_refresh_seconds),
        |e| {
            let r = e.refresh_segments(false, "segment-refresh")?;
            Ok(format!("{r:?}"))
        },
    );
    spawn_periodic(
        "segment full refresh",
        engine_for_sweep,
        minutes(settings.personalize.segment_full_refresh_minutes),
        |e| {
            Ok(format!(
                "{:?}",
                e.refresh_segments(true, "segment-refresh")?
            ))
        },
    );
    // Every node keeps the console's figures (the lifecycle summary, the overview's counts)
    // fresh itself: they are kept per process.
    let refresher = engine_for_refresh;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(FIGURES_REFRESH);
        loop {
            tick.tick().await;
            let engine = refresher.clone();
            match tokio::task::spawn_blocking(move || engine.refresh_console_figures()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "the console's figures could not be refreshed")
                }
                Err(e) => tracing::error!(error = %e, "refreshing the console's figures panicked"),
            }
        }
    });
    on_bound(addr);
    app.run_until_stopped().await.context("The server failed")
}

/// How often each node computes the console's figures afresh; its pages take them
/// up to a minute old.
const FIGURES_REFRESH: std::time::Duration = std::time::Duration::from_secs(30);

fn minutes(m: u64) -> std::time::Duration {
    std::time::Duration::from_secs(m.saturating_mul(60))
}

/// Longest a node waits between asking whether a job is due: when a leader dies, another
/// node takes its jobs over within this time (or the job's period, if shorter).
const TIMER_TICK: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs `job` every `every` (never if zero) on a blocking thread, logging what it reports: on
/// the cluster's leader only, once per period across the cluster (`Engine::run_timer`).
fn spawn_periodic(
    name: &'static str,
    engine: Arc<Engine>,
    every: std::time::Duration,
    job: fn(&Engine) -> Result<String, consentric_engine::EngineError>,
) {
    if every.is_zero() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.min(TIMER_TICK));
        loop {
            tick.tick().await;
            let engine = engine.clone();
            match tokio::task::spawn_blocking(move || engine.run_timer(name, every, job)).await {
                Ok(Ok(Some(report))) => tracing::info!(job = name, %report, "periodic job done"),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::error!(job = name, error = %e, "periodic job failed"),
                Err(e) => tracing::error!(job = name, error = %e, "periodic job panicked"),
            }
        }
    });
}
