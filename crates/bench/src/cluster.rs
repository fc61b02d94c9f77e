//! Several nodes on one PostgreSQL: ingest over HTTP with one `consentric serve` and with
//! more on the same database, and what each stored event costs the database — write-ahead
//! log bytes, statements (each a round trip), transactions and bytes on disk — the figures
//! `docs/scaling.md`'s capacity model rests on.
//!
//! Each run gets a database of its own on the server `--postgres-url` names; the nodes are the
//! product binary, each in its own process with its own data directory and the same master
//! keys, as an operator runs them. `--sqlite` adds one node on SQLite with the same traffic. Statements are counted by `pg_stat_statements` when the
//! server loads it (`PG_STATEMENTS=1 scripts/pg-throwaway.sh start …`).

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use consentric_engine::{Engine, KeyKind, Scope, Settings};

use crate::args::{ClusterArgs, MessageIds};
use crate::ingest::BATCH;

/// Events per stretch whose rate is reported (runs of several millions).
const STRETCH: u64 = 1_000_000;

/// A node, killed when dropped.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the database did, read before and after a run.
#[derive(Clone, Copy, Default)]
struct DbCounters {
    wal_bytes: f64,
    statements: Option<f64>,
    transactions: f64,
    size: f64,
}

fn counters(pg: &mut postgres::Client) -> anyhow::Result<DbCounters> {
    let wal: f64 = pg
        .query_one(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8",
            &[],
        )?
        .get(0);
    let transactions: f64 = pg
        .query_one(
            "SELECT xact_commit::float8 FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )?
        .get(0);
    let size: f64 = pg
        .query_one("SELECT pg_database_size(current_database())::float8", &[])?
        .get(0);
    let statements = pg
        .query_one(
            "SELECT COALESCE(sum(calls), 0)::float8 FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .ok()
        .map(|r| r.get(0));
    Ok(DbCounters {
        wal_bytes: wal,
        statements,
        transactions,
        size,
    })
}

pub fn run(args: &ClusterArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?
        .parent()
        .map(|d| d.join(format!("consentric{}", std::env::consts::EXE_SUFFIX)))
        .filter(|p| p.exists())
        .context("the nodes are the product binary: build it first (cargo build --release -p consentric)")?;
    println!(
        "consentric-bench cluster: {} events as /v1/batch bodies of {BATCH}, {} connections, nodes {:?}; release={}",
        args.events,
        args.connections,
        args.nodes,
        !cfg!(debug_assertions)
    );
    let bodies = crate::ingest::generate(args.events, "cluster", 25, MessageIds::Random);
    println!(
        "the JSON sent: {:.0} bytes an event (bodies of {BATCH})",
        bodies.iter().map(Vec::len).sum::<usize>() as f64 / args.events as f64
    );
    if args.nodes.iter().any(|n| *n > 0) {
        let rate = raw_insert(args, &crate::ingest::raw_rows(&bodies)?)?;
        println!();
        println!(
            "raw insert (the reference): {rate:.0} rows/s, the same rows straight into `events`, {BATCH} per transaction as one `INSERT … SELECT FROM unnest(…)`, {} connections",
            args.connections
        );
    }
    for &nodes in args.nodes.iter().filter(|n| **n > 0) {
        one_run(args, &exe, nodes, &bodies)?;
    }
    if args.sqlite {
        sqlite_run(args, &exe, &bodies)?;
    }
    Ok(())
}

/// A database of its own on the server, with the store's schema.
fn scratch(args: &ClusterArgs) -> anyhow::Result<(String, postgres::Client)> {
    let name = format!(
        "bench_cluster_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    );
    let mut admin = postgres::Client::connect(&args.postgres_url, postgres::NoTls)
        .context("connect to --postgres-url")?;
    admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
    Ok((name, admin))
}

/// The ceiling for storing these rows on this server: each connection inserts batches of
/// rows into `events` as one multi-row statement per transaction; rows per second.
fn raw_insert(args: &ClusterArgs, rows: &[crate::raw::RawEventRow]) -> anyhow::Result<f64> {
    let (name, mut admin) = scratch(args)?;
    let url = format!("{} dbname={name}", args.postgres_url);
    drop(consentric_store::Store::connect_postgres(&url, 1)?); // the store's schema
    let chunks: Vec<&[crate::raw::RawEventRow]> = rows.chunks(BATCH).collect();
    let next = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..args.connections)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<()> {
                    let mut pg = postgres::Client::connect(&url, postgres::NoTls)?;
                    let insert = pg.prepare(
                        "INSERT INTO events (message_id, profile_id, call_type, event_name, ts, received_at, payload) \
                         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::text[])",
                    )?;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                        let Some(chunk) = chunks.get(i) else {
                            return Ok(());
                        };
                        let col = |f: fn(&crate::raw::RawEventRow) -> String| -> Vec<String> {
                            chunk.iter().map(f).collect()
                        };
                        let names: Vec<Option<String>> =
                            chunk.iter().map(|r| r.event_name.clone()).collect();
                        let ts: Vec<i64> = chunk.iter().map(|r| r.ts).collect();
                        let received: Vec<i64> = chunk.iter().map(|r| r.received_at).collect();
                        let mut tx = pg.transaction()?;
                        tx.execute(
                            &insert,
                            &[
                                &col(|r| r.message_id.clone()),
                                &col(|r| r.profile_id.clone()),
                                &col(|r| r.call_type.to_owned()),
                                &names,
                                &ts,
                                &received,
                                &col(|r| r.payload.clone()),
                            ],
                        )?;
                        tx.commit()?;
                    }
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("a raw-insert worker panicked"))??;
        }
        Ok(())
    })?;
    let rate = rows.len() as f64 / started.elapsed().as_secs_f64();
    admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))?;
    Ok(rate)
}

fn one_run(
    args: &ClusterArgs,
    exe: &std::path::Path,
    nodes: usize,
    bodies: &[Vec<u8>],
) -> anyhow::Result<()> {
    let (name, mut admin) = scratch(args)?;
    let url = format!("{} dbname={name}", args.postgres_url);
    let mut pg = postgres::Client::connect(&url, postgres::NoTls)?;
    let _ = pg.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");

    let dirs: Vec<tempfile::TempDir> = (0..nodes)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let write = server_key(dirs[0].path(), Some(&url))?;
    for d in &dirs[1..] {
        std::fs::copy(
            dirs[0].path().join("master.key"),
            d.path().join("master.key"),
        )?;
    }
    let mut bases = Vec::new();
    let mut running = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        let (node, base) = start(exe, d.path(), Some(&url), &format!("bench-{i}"))?;
        running.push(node);
        bases.push(base);
    }
    wait_ready(&bases)?;
    // Without pg_stat_statements loaded, statements are not counted (said in the report).
    let _ = pg.batch_execute("SELECT pg_stat_statements_reset()");
    let before = counters(&mut pg)?;
    let (events, took, lat) = send(args, &bases, &write, bodies)?;
    let after = counters(&mut pg)?;
    drop(running);

    let stored: i64 = pg.query_one("SELECT count(*) FROM events", &[])?.get(0);
    print_rate(
        &format!("{nodes} node(s)"),
        args,
        events,
        &format!(", {stored} stored"),
        took,
        &lat,
    );
    println!(
        "  per event: {:.0} WAL bytes, {} statements, {:.3} transactions; database {:.0} bytes/event ({:.1} MB)",
        (after.wal_bytes - before.wal_bytes) / events,
        match (after.statements, before.statements) {
            (Some(a), Some(b)) => format!("{:.2}", (a - b) / events),
            _ => "(no pg_stat_statements)".into(),
        },
        (after.transactions - before.transactions) / events,
        after.size / events,
        after.size / 1e6
    );
    // Where the bytes go: each table with its indexes and TOAST, per event.
    let tables = pg.query(
        "SELECT c.relname::text, pg_total_relation_size(c.oid)::float8 FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 2 DESC LIMIT 6",
        &[],
    )?;
    let payload: f64 = pg
        .query_one(
            "SELECT COALESCE(avg(octet_length(payload)), 0)::float8 FROM events",
            &[],
        )?
        .get(0);
    let parts: Vec<String> = tables
        .iter()
        .map(|r| {
            let (t, bytes): (String, f64) = (r.get(0), r.get(1));
            format!("{t} {:.0}", bytes / events)
        })
        .collect();
    println!(
        "  bytes per event by table (with indexes): {}; a stored payload averages {payload:.0} bytes",
        parts.join(", ")
    );
    drop(pg);
    admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))?;
    Ok(())
}

/// One node on SQLite with the same traffic: its rate, and what each event costs on disk.
fn sqlite_run(args: &ClusterArgs, exe: &std::path::Path, bodies: &[Vec<u8>]) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let write = server_key(dir.path(), None)?;
    let (node, base) = start(exe, dir.path(), None, "bench-sqlite")?;
    wait_ready(std::slice::from_ref(&base))?;
    let (events, took, lat) = send(args, &[base], &write, bodies)?;
    drop(node);
    let db = rusqlite::Connection::open(dir.path().join("consentric.db"))?;
    db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let pages: f64 = db.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let page: f64 = db.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let payload: f64 = db.query_row(
        "SELECT COALESCE(avg(length(payload)), 0) FROM events",
        [],
        |r| r.get(0),
    )?;
    let by_table = db
        .prepare(
            "SELECT COALESCE(m.tbl_name, d.name), sum(d.pgsize) FROM dbstat d \
             LEFT JOIN sqlite_master m ON m.name = d.name GROUP BY 1 ORDER BY 2 DESC LIMIT 6",
        )
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map(|rows| {
            rows.iter()
                .map(|(t, b)| format!("{t} {:.0}", b / events))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|e| format!("(no dbstat: {e})"));
    print_rate("1 node on SQLite", args, events, "", took, &lat);
    println!(
        "  database {:.0} bytes/event ({:.1} MB); by table (with indexes): {by_table}; a stored payload averages {payload:.0} bytes",
        pages * page / events,
        pages * page / 1e6
    );
    Ok(())
}

/// A server write key, made in-process on the store `dir` (and `url`) name; the master keys
/// are created in `dir` if they are not there.
fn server_key(dir: &std::path::Path, url: Option<&str>) -> anyhow::Result<String> {
    let mut settings = Settings::default();
    settings.storage.data_dir = dir.to_owned();
    settings.storage.database_url = url.map(str::to_owned);
    Ok(Engine::open(&settings)?
        .create_key_of_kind(Scope::Write, KeyKind::Server, Some("bench"))?
        .secret()
        .to_owned())
}

/// `consentric serve` on a free port, as node `name`: the process and its base URL.
fn start(
    exe: &std::path::Path,
    dir: &std::path::Path,
    url: Option<&str>,
    name: &str,
) -> anyhow::Result<(Node, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut c = Command::new(exe);
    c.arg("--data-dir").arg(dir);
    if let Some(url) = url {
        c.args(["--database-url", url]);
    }
    let child = c
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("CONSENTRIC_LOG", "warn")
        .env("CONSENTRIC_NODE", name)
        .stdout(Stdio::null())
        .spawn()
        .context("start consentric serve")?;
    Ok((Node(child), format!("http://127.0.0.1:{port}")))
}

/// Waits until every node answers `/readyz`.
fn wait_ready(bases: &[String]) -> anyhow::Result<()> {
    let client = reqwest::blocking::Client::new();
    for base in bases {
        let started = Instant::now();
        while client
            .get(format!("{base}/readyz"))
            .send()
            .map_or(true, |r| !r.status().is_success())
        {
            if started.elapsed() > Duration::from_secs(60) {
                bail!("a node did not become ready");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

/// A run's heading and its ingest rate and latencies.
fn print_rate(
    label: &str,
    args: &ClusterArgs,
    events: f64,
    stored: &str,
    took: Duration,
    lat: &[Duration],
) {
    println!();
    println!("{label}, {} connections:", args.connections);
    println!(
        "  ingest over HTTP: {:.0} events/s ({events:.0} acknowledged{stored}, {:.1} s); batch p50 {:.1} ms, p99 {:.1} ms",
        events / took.as_secs_f64(),
        took.as_secs_f64(),
        pct(lat, 0.5),
        pct(lat, 0.99)
    );
}

/// The `q` quantile of sorted latencies, in ms.
fn pct(lat: &[Duration], q: f64) -> f64 {
    lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// Sends every body, closed loop over `args.connections` connections spread over `bases`:
/// events acknowledged, the time taken, and each batch's latency, sorted.
fn send(
    args: &ClusterArgs,
    bases: &[String],
    write: &str,
    bodies: &[Vec<u8>],
) -> anyhow::Result<(f64, Duration, Vec<Duration>)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let acknowledged = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<Duration>::new()));
    // When each stretch of a million events was acknowledged, to see the rate keep up.
    let marks = Arc::new(Mutex::new(Vec::<(u64, Duration)>::new()));
    // Shared, not copied: a body handed to a request is a reference count, so the load
    // generator spends its core on sending, not on copying (millions of events).
    let bodies: Arc<Vec<bytes::Bytes>> = Arc::new(
        bodies
            .iter()
            .map(|b| bytes::Bytes::copy_from_slice(b))
            .collect(),
    );
    let started = Instant::now();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let next = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for c in 0..args.connections {
            let (client, url, key, next, bodies, acked, latencies, marks) = (
                client.clone(),
                format!("{}/v1/batch", bases[c % bases.len()]),
                write.to_owned(),
                next.clone(),
                bodies.clone(),
                acknowledged.clone(),
                latencies.clone(),
                marks.clone(),
            );
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(body) = bodies.get(i) else { break };
                    let sent = Instant::now();
                    let r = client
                        .post(&url)
                        .basic_auth(&key, Some(""))
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await?;
                    if !r.status().is_success() {
                        anyhow::bail!("a batch was answered {}", r.status());
                    }
                    latencies
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(sent.elapsed());
                    let done = acked.fetch_add(BATCH as u64, Ordering::Relaxed) + BATCH as u64;
                    if done.is_multiple_of(STRETCH) {
                        marks
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((done, started.elapsed()));
                    }
                }
                Ok::<_, anyhow::Error>(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    let took = started.elapsed();
    let mut marks = marks.lock().unwrap_or_else(|p| p.into_inner()).clone();
    marks.sort();
    if marks.len() > 1 {
        let mut at = Duration::ZERO;
        let rates: Vec<String> = marks
            .iter()
            .map(|&(done, when)| {
                let rate = STRETCH as f64 / (when - at).as_secs_f64();
                at = when;
                format!("{}M {rate:.0}", done / STRETCH)
            })
            .collect();
        println!(
            "  events/s over each million, by where it ends: {}",
            rates.join(", ")
        );
    }
    let mut lat = latencies.lock().unwrap_or_else(|p| p.into_inner()).clone();
    lat.sort();
    Ok((acknowledged.load(Ordering::Relaxed) as f64, took, lat))
}
