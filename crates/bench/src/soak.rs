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
use consentric_engine::{Engine, KeyKind, Scope, Settings};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::args::{MessageIds, SoakArgs};
use crate::ingest::BATCH;

/// Batches made once and sent again and again, each time with message ids of their own: the
/// run's marker (`R` and nine digits) in every id is overwritten with the round, so a soak of
/// millions of events needs a thousand bodies in memory, not millions.
struct Templates {
    bodies: Vec<Vec<u8>>,
    marker: Vec<u8>,
}

impl Templates {
    const COUNT: u64 = 1000;

    fn new(label: &str) -> Self {
        let run = format!("{label}R000000000");
        let bodies = crate::ingest::generate(
            Self::COUNT as usize * BATCH,
            &run,
            50,
            MessageIds::Sequential,
        );
        Templates {
            bodies,
            marker: b"R000000000".to_vec(),
        }
    }

    /// The `k`-th body: template `k mod COUNT`, in round `k / COUNT`.
    fn body(&self, k: u64) -> Vec<u8> {
        let mut body = self.bodies[(k % Self::COUNT) as usize].clone();
        let round = format!("R{:09}", k / Self::COUNT).into_bytes();
        let mut at = 0;
        while let Some(i) = memchr::memmem::find(&body[at..], &self.marker) {
            body[at + i..at + i + round.len()].copy_from_slice(&round);
            at += i + round.len();
        }
        body
    }
}

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
    // The product binary serves, in a process of its own, so that its memory is its own.
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::default();
    settings.storage.data_dir = dir.path().join("data");
    let (write, admin, analyst) = {
        let engine = Engine::open(&settings)?;
        let write = engine
            .create_key_of_kind(Scope::Write, KeyKind::Server, Some("soak"))?
            .secret()
            .to_owned();
        let admin = engine
            .create_key(Scope::Admin, Some("soak"))?
            .secret()
            .to_owned();
        let analyst = engine.create_key(Scope::Analyst, Some("soak"))?;
        for _ in 0..10 {
            engine.grant_budget(&analyst.key_id, "customers", 1000.0, "soak")?;
        }
        (write, admin, analyst.secret().to_owned())
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = dir.path().join("consentric.toml");
    // Every load comes from this one address: the per-address connection cap is lifted, as a
    // deployment behind a load balancer names it in `trusted_proxies`.
    let in_flight = args
        .max_in_flight
        .map(|n| format!("max_in_flight = {n}\n"))
        .unwrap_or_default();
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nmax_connections = 4096\nmax_connections_per_client = 4096\n{in_flight}"
        ),
    )?;
    let exe = std::env::current_exe()?
        .parent()
        .map(|d| d.join(format!("consentric{}", std::env::consts::EXE_SUFFIX)))
        .filter(|p| p.exists())
        .context("the soak serves with the product binary: build it first (cargo build --release -p consentric)")?;
    let mut server = Server(
        std::process::Command::new(exe)
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&settings.storage.data_dir)
            .arg("serve")
            .env("CONSENTRIC_LOG", "warn")
            .spawn()
            .context("Failed to start consentric serve")?,
    );
    let pid = server.0.id();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while reqwest::blocking::get(format!("{base}/healthz"))
        .map_or(true, |r| !r.status().is_success())
    {
        if started.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("consentric serve did not come up");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
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

    let peak = Arc::new(AtomicU64::new(rss_kb(pid)));
    let sampler = {
        let peak = peak.clone();
        let begun = Instant::now();
        std::thread::spawn(move || {
            let mut printed = 0;
            loop {
                peak.fetch_max(rss_kb(pid), Ordering::Relaxed);
                let minute = begun.elapsed().as_secs() / 60;
                if minute > printed {
                    printed = minute;
                    let (anon, file) = (
                        status_kb(pid, "RssAnon:"),
                        status_kb(pid, "RssFile:") + status_kb(pid, "RssShmem:"),
                    );
                    println!(
                        "  [{minute} min] server RSS {:.0} MB: {:.0} MB heap, {:.0} MB files and shared memory",
                        rss_kb(pid) as f64 / 1024.0,
                        anon as f64 / 1024.0,
                        file as f64 / 1024.0
                    );
                }
                std::thread::sleep(Duration::from_millis(200));
            }
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
        let bodies = Templates::new(label);
        let before = rss_kb(pid);
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
        report(label, events_per_second, &tally, before, rss_kb(pid), &peak);
    }
    // Stopped as an operator stops it; then the store is read.
    let _ = std::process::Command::new("kill")
        .arg(pid.to_string())
        .status();
    let _ = server.0.wait();
    let (stored, _) = Engine::open(&settings)?.totals()?;
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
    bodies: &Templates,
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
                        let body = bodies.body(sent[0] - 1);
                        (
                            "ingest",
                            client
                                .post(format!("{base}/v1/batch"))
                                .basic_auth(write, Some(""))
                                .header("content-type", "application/json")
                                .body(body),
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
                tokio::spawn(async move {
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
                });
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Every request has finished once every place is free again.
    let _all = open.acquire_many(4096).await?;
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
        "  server RSS: {:.0} MB before, {:.0} MB after, {:.0} MB peak so far",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        peak.load(Ordering::Relaxed) as f64 / 1024.0
    );
}

/// The served process, stopped with SIGKILL if the bench fails before stopping it.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Process `pid`'s resident memory, in KiB (Linux).
fn rss_kb(pid: u32) -> u64 {
    status_kb(pid, "VmRSS:")
}

/// A KiB figure of `/proc/PID/status`.
fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
