//! The soak: the HTTP server under a steady share of its measured ingest capacity for
//! minutes, with decisions and DP queries mixed in — resident memory at start, end and peak,
//! latency percentiles per route, errors, and every acknowledged event counted back. Then
//! overload: twice the capacity, where the edge must shed with 429 + `Retry-After`, never
//! answer 5xx, and lose no acknowledged event.
//!
//! Load is open-loop: requests start on a schedule whether or not earlier ones finished, as
//! independent clients would send them, so a slow server is not hidden by slower senders.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use consentric_engine::{Engine, KeyKind, Scope, ServerSettings, SystemClock};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::args::{MessageIds, SoakArgs};
use crate::ingest::BATCH;

/// What one phase saw, per route.
#[derive(Default)]
struct Tally {
    latencies: BTreeMap<&'static str, Vec<Duration>>,
    statuses: BTreeMap<(&'static str, u16), u64>,
    shed_without_retry_after: u64,
    transport_errors: u64,
}

pub fn run(args: &SoakArgs) -> anyhow::Result<()> {
    println!(
        "consentric-bench soak: {} s at {:.0}% of the measured HTTP ingest rate, then {} s at {:.0}%; release={}",
        args.seconds,
        args.share * 100.0,
        args.overload_seconds,
        args.overload_share * 100.0,
        !cfg!(debug_assertions)
    );
    let dir = tempfile::tempdir()?;
    let store = crate::ingest::durable_sealed_sqlite(dir.path())?;
    let engine = Arc::new(Engine::new(store, Arc::new(SystemClock)));
    let write = engine
        .create_key_of_kind(Scope::Write, KeyKind::Server, Some("soak"))?
        .secret()
        .to_owned();
    let admin = engine
        .create_key(Scope::Admin, Some("soak"))?
        .secret()
        .to_owned();
    let analyst = engine.create_key(Scope::Analyst, Some("soak"))?;
    engine.grant_budget(&analyst.key_id, "customers", 100_000.0, "soak")?;
    let analyst = analyst.secret().to_owned();

    // Every load comes from this one address: the per-address connection cap is lifted, as a
    // deployment behind a load balancer names it in `trusted_proxies`.
    let settings = ServerSettings {
        listen: "127.0.0.1:0".into(),
        max_connections_per_client: 4096,
        max_connections: 4096,
        ..ServerSettings::default()
    };
    let server = crate::runtime()?;
    let app = server.block_on(consentric_server::Application::with_settings(
        engine.clone(),
        &settings,
    ))?;
    let base = format!("http://127.0.0.1:{}", app.port());
    server.spawn(app.run_until_stopped());
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("Failed to start the clients' runtime")?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(60))
        .build()?;

    // Capacity: closed-loop, 8 connections, 20 s.
    let capacity_bodies = crate::ingest::generate(400_000, "cap", 50, MessageIds::Random);
    let acknowledged = Arc::new(AtomicU64::new(0));
    let capacity = clients.block_on(closed_loop(
        &client,
        &base,
        &write,
        &capacity_bodies,
        8,
        Duration::from_secs(20),
        &acknowledged,
    ))?;
    println!("capacity: {capacity:.0} events/s over HTTP (8 connections, closed loop, 20 s)");

    let rss_start = rss_kb();
    let peak = Arc::new(AtomicU64::new(rss_start));
    let sampler = {
        let peak = peak.clone();
        std::thread::spawn(move || loop {
            peak.fetch_max(rss_kb(), Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(200));
        })
    };
    drop(sampler); // runs until the process ends

    for (label, share, seconds) in [
        ("soak", args.share, args.seconds),
        ("overload", args.overload_share, args.overload_seconds),
    ] {
        if seconds == 0 {
            continue;
        }
        let events_per_second = capacity * share;
        let batches_per_second = events_per_second / BATCH as f64;
        let n = (batches_per_second * seconds as f64).ceil() as usize + 1;
        let bodies = crate::ingest::generate(n * BATCH, label, 50, MessageIds::Random);
        let before = rss_kb();
        let tally = clients.block_on(open_loop(
            &client,
            &base,
            (&write, &admin, &analyst),
            &bodies,
            batches_per_second,
            Duration::from_secs(seconds),
            args.decisions_per_second,
            args.queries_per_second,
            &acknowledged,
        ))?;
        report(label, events_per_second, &tally, before, rss_kb(), &peak);
    }
    let (stored, _) = engine.totals()?;
    let acked = acknowledged.load(Ordering::Relaxed);
    println!(
        "events acknowledged {acked}, stored {stored}: {}",
        if stored == acked {
            "none lost, none doubled"
        } else {
            "MISMATCH"
        }
    );
    Ok(())
}

/// Posts bodies over `connections` connections as fast as answers come, for `time`; events/s.
async fn closed_loop(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    bodies: &[Vec<u8>],
    connections: usize,
    time: Duration,
    acknowledged: &Arc<AtomicU64>,
) -> anyhow::Result<f64> {
    let next = Arc::new(AtomicU64::new(0));
    let bodies = Arc::new(bodies.to_vec());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url, key, next, bodies, acked) = (
            client.clone(),
            format!("{base}/v1/batch"),
            key.to_owned(),
            next.clone(),
            bodies.clone(),
            acknowledged.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < time {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(body) = bodies.get(i) else { break };
                let r = client
                    .post(&url)
                    .basic_auth(&key, Some(""))
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                if r.status().is_success() {
                    acked.fetch_add(BATCH as u64, Ordering::Relaxed);
                }
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let sent = next.load(Ordering::Relaxed).min(bodies.len() as u64);
    Ok(sent as f64 * BATCH as f64 / started.elapsed().as_secs_f64())
}

/// Starts ingest batches at `per_second`, decisions and DP queries at theirs, for `time`,
/// each request on a task of its own (at most 4,096 at once: the clients' own limit).
#[allow(clippy::too_many_arguments)]
async fn open_loop(
    client: &reqwest::Client,
    base: &str,
    (write, admin, analyst): (&str, &str, &str),
    bodies: &[Vec<u8>],
    per_second: f64,
    time: Duration,
    decisions_per_second: f64,
    queries_per_second: f64,
    acknowledged: &Arc<AtomicU64>,
) -> anyhow::Result<Tally> {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let open = Arc::new(Semaphore::new(4096));
    let started = Instant::now();
    let mut sent = [0u64; 3];
    let mut tasks = Vec::new();
    let mut customer = 0u64;
    while started.elapsed() < time {
        let t = started.elapsed().as_secs_f64();
        let due = [
            per_second * t,
            decisions_per_second * t,
            queries_per_second * t,
        ];
        for (route, due) in due.iter().enumerate() {
            while (sent[route] as f64) < *due {
                sent[route] += 1;
                let request = match route {
                    0 => {
                        let Some(body) = bodies.get(sent[0] as usize - 1) else {
                            break;
                        };
                        (
                            "ingest",
                            client
                                .post(format!("{base}/v1/batch"))
                                .basic_auth(write, Some(""))
                                .header("content-type", "application/json")
                                .body(body.clone()),
                        )
                    }
                    1 => {
                        customer = (customer + 7919) % 20_000;
                        ("decision", client
                            .post(format!("{base}/v1/decisions/user_id:user-{customer}?placement=home&limit=10"))
                            .bearer_auth(admin))
                    }
                    _ => (
                        "dp query",
                        client
                            .post(format!("{base}/v1/analytics/query"))
                            .bearer_auth(analyst)
                            .json(&json!({"query": "count", "epsilon": 0.01})),
                    ),
                };
                let (route_name, request) = request;
                let permit = open.clone().acquire_owned().await?;
                let (tally, acked) = (tally.clone(), acknowledged.clone());
                tasks.push(tokio::spawn(async move {
                    let _permit = permit;
                    let t = Instant::now();
                    let r = request.send().await;
                    let took = t.elapsed();
                    let mut tally = tally.lock().unwrap_or_else(|p| p.into_inner());
                    match r {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            if status == 429 && !r.headers().contains_key("retry-after") {
                                tally.shed_without_retry_after += 1;
                            }
                            if r.status().is_success() {
                                tally.latencies.entry(route_name).or_default().push(took);
                                if route_name == "ingest" {
                                    acked.fetch_add(BATCH as u64, Ordering::Relaxed);
                                }
                            }
                            *tally.statuses.entry((route_name, status)).or_default() += 1;
                        }
                        Err(_) => tally.transport_errors += 1,
                    }
                }));
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for t in tasks {
        t.await?;
    }
    let tally = std::mem::take(&mut *tally.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(tally)
}

fn report(label: &str, rate: f64, tally: &Tally, before: u64, after: u64, peak: &AtomicU64) {
    println!("{label}: offered {rate:.0} events/s");
    for (route, lat) in &tally.latencies {
        let mut lat = lat.clone();
        crate::ingest::print_latencies(
            &format!("  {route} (answered 2xx)"),
            "requests",
            &mut lat,
            None,
        );
    }
    let statuses: Vec<String> = tally
        .statuses
        .iter()
        .map(|((route, status), n)| format!("{route} {status}: {n}"))
        .collect();
    println!("  statuses: {}", statuses.join(", "));
    let server_errors: u64 = tally
        .statuses
        .iter()
        .filter(|((_, s), _)| *s >= 500)
        .map(|(_, n)| n)
        .sum();
    println!(
        "  5xx: {server_errors}, 429 without Retry-After: {}, transport errors: {}",
        tally.shed_without_retry_after, tally.transport_errors
    );
    println!(
        "  RSS (server and clients): {:.0} MB before, {:.0} MB after, {:.0} MB peak so far",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        peak.load(Ordering::Relaxed) as f64 / 1024.0
    );
}

/// This process's resident memory, in KiB (Linux).
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
