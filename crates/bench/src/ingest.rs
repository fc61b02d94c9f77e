//! `consentric-bench ingest`: the figures of docs/benchmarks.md, measured side by side in one run.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::raw::{self as reference, RawEventRow};
use anyhow::{bail, Context};
use consentric_engine::{Engine, PolicySet, Scope, Store, SystemClock};
use consentric_model::{parse_batch, Envelope};
use consentric_personalize::SplitMix64;
use consentric_store::SqliteOptions;
use consentric_vault::{MasterKeys, Vault};
use serde_json::{json, Value};

use crate::args::{EraseArgs, IngestArgs, MessageIds};

/// `consentric-bench erase`: the time to export, then erase, one customer with `events` events
/// from a SQLite store that also holds other customers, over several fresh customers.
pub fn erase(args: &EraseArgs) -> anyhow::Result<()> {
    println!(
        "consentric-bench erase: a customer with {} events among {} others, {} runs, release={}",
        args.events,
        args.others,
        args.runs,
        !cfg!(debug_assertions)
    );
    let dir = tempfile::tempdir()?;
    let store = Store::open_sqlite(dir.path(), SqliteOptions::default())?;
    let engine = Engine::new(
        store.with_vault(Arc::new(Vault::new(MasterKeys::load_or_create(
            dir.path(),
        )?))),
        Arc::new(SystemClock),
    );
    let base = chrono::Utc::now() - chrono::Duration::days(30);
    let customer = |user: &str, n: usize| -> anyhow::Result<()> {
        for chunk in (0..n).collect::<Vec<_>>().chunks(BATCH) {
            let batch: Vec<Value> = chunk
                .iter()
                .map(|i| {
                    json!({"type":"track","messageId":format!("{user}-{i}"),"userId":user,
                        "timestamp":(base + chrono::Duration::seconds(*i as i64)).to_rfc3339(),
                        "event":"Product Viewed","properties":{"product_id":format!("p-{}", i % 50),"price":19.0},
                        "context":{"ip":"203.0.113.7"}})
                })
                .collect();
            let env = Envelope::new(engine.now(), "bench");
            let body = serde_json::to_vec(&json!({ "batch": batch }))?;
            engine.ingest(parse_batch(&body, &env)?.events)?;
        }
        Ok(())
    };
    for o in 0..args.others {
        customer(&format!("other-{o}"), 100)?;
    }
    let mut times = Vec::new();
    let mut exports = Vec::new();
    for r in 0..args.runs {
        let user = format!("erase-me-{r}");
        customer(&user, args.events)?;
        engine.checkpoint()?;
        let who = consentric_engine::ProfileRef::parse(&user)?;
        let started = Instant::now();
        let exported = engine.export(&who, "bench", &mut std::io::sink())?;
        exports.push(started.elapsed());
        if exported != args.events as u64 {
            bail!("exported {exported} events, not {}", args.events);
        }
        let started = Instant::now();
        let receipt = engine.erase(&who, "bench")?;
        times.push(started.elapsed());
        let body = receipt.verify(&engine.receipt_public_key()?)?;
        if body.erased.events != args.events as u64 {
            bail!("erased {} events, not {}", body.erased.events, args.events);
        }
    }
    times.sort();
    exports.sort();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    println!();
    println!(
        "export of {} events (JSON, to a sink): median {:.1} ms, max {:.1} ms",
        args.events,
        ms(&exports[exports.len() / 2]),
        ms(exports.last().unwrap_or(&Duration::ZERO))
    );
    println!(
        "erasure of {} events: median {:.1} ms, max {:.1} ms (includes the WAL checkpoint)",
        args.events,
        ms(&times[times.len() / 2]),
        ms(times.last().unwrap_or(&Duration::ZERO))
    );
    Ok(())
}

/// The SQLite durability `--sqlite-synchronous` asks for.
pub(crate) fn sqlite_options(args: &IngestArgs) -> anyhow::Result<SqliteOptions> {
    match args.sqlite_synchronous.as_str() {
        "full" => Ok(SqliteOptions {
            synchronous_full: true,
        }),
        "normal" => Ok(SqliteOptions {
            synchronous_full: false,
        }),
        other => bail!("--sqlite-synchronous must be full or normal, not {other}"),
    }
}

/// An engine over a fresh SQLite store in a temporary directory (kept alive by the caller).
pub(crate) fn fresh_engine(
    options: &SqliteOptions,
    args: &IngestArgs,
) -> anyhow::Result<(tempfile::TempDir, Engine)> {
    fresh_engine_with(options, args, PolicySet::retail_defaults())
}

/// [`fresh_engine`] under `policy`.
pub(crate) fn fresh_engine_with(
    options: &SqliteOptions,
    args: &IngestArgs,
    policy: PolicySet,
) -> anyhow::Result<(tempfile::TempDir, Engine)> {
    let dir = tempfile::tempdir()?;
    let store = sealed(
        Store::open_sqlite(dir.path(), options.clone())?,
        dir.path(),
        args,
    )?;
    Ok((
        dir,
        Engine::with_policy(store, Arc::new(SystemClock), policy),
    ))
}

/// The store with its personal columns sealed under master keys made in `dir`, unless the
/// run measures without the vault.
fn sealed(store: Store, dir: &Path, args: &IngestArgs) -> anyhow::Result<Store> {
    if args.no_vault {
        if !cfg!(feature = "reference") {
            anyhow::bail!(
                "--no-vault stores personal columns in the clear, which only a bench built with \
                 `--features reference` may: cargo run --release -p consentric-bench \
                 --features reference -- ingest --no-vault"
            );
        }
        return Ok(store);
    }
    let master = MasterKeys::load_or_create(dir)?;
    Ok(store.with_vault(Arc::new(Vault::new(master))))
}

/// A fresh SQLite store in `dir` with `synchronous = FULL` and personal columns sealed under
/// master keys made there: what the personalisation and analytics benches run on.
pub(crate) fn durable_sealed_sqlite(dir: &Path) -> anyhow::Result<Store> {
    let store = Store::open_sqlite(
        dir,
        SqliteOptions {
            synchronous_full: true,
        },
    )?;
    Ok(store.with_vault(Arc::new(Vault::new(MasterKeys::load_or_create(dir)?))))
}

/// Events per batch.
pub(crate) const BATCH: usize = 100;

pub fn ingest(args: &IngestArgs) -> anyhow::Result<()> {
    let n = args.events.max(BATCH);
    println!(
        "consentric-bench ingest: {n} events in batches of {BATCH}, release={}",
        !cfg!(debug_assertions)
    );
    let options = sqlite_options(args)?;
    println!(
        "stores: fresh temporary directories under {} (set TMPDIR to move them)",
        std::env::temp_dir().display()
    );
    println!("sqlite synchronous = {}", args.sqlite_synchronous);
    println!("message ids = {:?}", args.message_ids);
    println!(
        "customers sending consent choices = {}%",
        args.consent_share
    );
    let bodies = generate(n, "a", args.consent_share, args.message_ids);
    let mut results: Vec<(String, f64)> = Vec::new();

    // 1. Raw insert ceiling.
    let dir = tempfile::tempdir()?;
    let rows = raw_rows(&bodies)?;
    let took = reference::sqlite_raw_insert(dir.path(), options.clone(), &rows, BATCH)?;
    let raw = rate(n, took);
    results.push(("sqlite raw insert (events table only, 100/tx)".into(), raw));

    // 2. Full ingest path in-process, SQLite: one producer, then as many as HTTP connections.
    let (_dir, engine) = fresh_engine(&options, args)?;
    let single = rate(n, in_process(&engine, &bodies, 1)?);
    results.push(("sqlite in-process, 1 producer".into(), single));
    let (_dir, engine) = fresh_engine(&options, args)?;
    let inproc = rate(n, in_process(&engine, &bodies, args.connections)?);
    results.push((
        format!(
            "sqlite in-process, {} producers (group commit)",
            args.connections
        ),
        inproc,
    ));

    // 3. Over HTTP, SQLite.
    let (_dir, engine) = fresh_engine(&options, args)?;
    let (took, mut latencies) = over_http(
        Arc::new(engine),
        &generate(n, "b", args.consent_share, args.message_ids),
        args.connections,
    )?;
    let http = rate(n, took);
    print_latencies("sqlite over HTTP", "batches", &mut latencies, None);
    results.push((
        format!(
            "sqlite over HTTP ({} connections, keep-alive)",
            args.connections
        ),
        http,
    ));

    // 4. PostgreSQL, if given.
    if let Some(base) = &args.postgres_url {
        let (url, name) = reference::create_scratch_postgres(base)
            .context("Failed to create a scratch PostgreSQL database")?;
        let keys = tempfile::tempdir()?;
        let engine = Arc::new(Engine::new(
            sealed(Store::connect_postgres(&url, 64)?, keys.path(), args)?,
            Arc::new(SystemClock),
        ));
        let pg_in = rate(
            n,
            in_process(
                &engine,
                &generate(n, "c", args.consent_share, args.message_ids),
                args.connections,
            )?,
        );
        results.push((
            format!("postgres in-process, {} producers", args.connections),
            pg_in,
        ));
        let (took, mut latencies) = over_http(
            engine,
            &generate(n, "d", args.consent_share, args.message_ids),
            args.connections,
        )?;
        let pg_http = rate(n, took);
        print_latencies("postgres over HTTP", "batches", &mut latencies, None);
        results.push((
            format!("postgres over HTTP ({} connections)", args.connections),
            pg_http,
        ));
        reference::drop_scratch_postgres(base, &name)?;
    } else {
        println!("(PostgreSQL skipped: pass --postgres-url or set CONSENTRIC_BENCH_PG_URL)");
    }

    println!();
    println!("{:<56} {:>12}", "measurement", "events/s");
    for (what, r) in &results {
        println!("{what:<56} {r:>12.0}");
    }
    println!(
        "{:<56} {:>12.2}",
        "ratio in-process (best of the two) / raw insert",
        single.max(inproc) / raw
    );

    if !args.skip_import {
        import_cdnow()?;
    }
    Ok(())
}

pub(crate) fn rate(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

/// Parses and ingests every body with `producers` threads (as many as HTTP connections:
/// concurrent callers share commits through the engine's group commit).
pub(crate) fn in_process(
    engine: &Engine,
    bodies: &[Vec<u8>],
    producers: usize,
) -> anyhow::Result<Duration> {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..producers.max(1))
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = bodies.get(i) else {
                            return Ok(());
                        };
                        let env = Envelope::new(engine.now(), format!("bench-{i}"));
                        let batch = parse_batch(body, &env)?;
                        let sent = batch.events.len();
                        let report = engine.ingest(batch.events)?;
                        if report.accepted as usize != sent {
                            bail!("batch {i}: only {} of {sent} stored", report.accepted);
                        }
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .map_err(|_| anyhow::anyhow!("a producer panicked"))?
        })
    })?;
    Ok(started.elapsed())
}

/// Starts the server on a loopback port, on the runtime `serve` uses, and a runtime for the
/// bench's clients: one thread of their own, as clients on other machines would not share
/// the server's workers. The server runs until its runtime (the first value) is dropped.
pub(crate) fn serve_beside_clients(
    engine: Arc<Engine>,
) -> anyhow::Result<(tokio::runtime::Runtime, u16, tokio::runtime::Runtime)> {
    let server = crate::runtime()?;
    let app = server.block_on(consentric_server::Application::build(engine, "127.0.0.1:0"))?;
    let port = app.port();
    server.spawn(app.run_until_stopped());
    let clients = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("Failed to start the clients' runtime")?;
    Ok((server, port, clients))
}

/// Posts every body over `connections` keep-alive connections; returns the time taken and
/// each request's latency (send to response), in no particular order.
pub(crate) fn over_http(
    engine: Arc<Engine>,
    bodies: &[Vec<u8>],
    connections: usize,
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    // A server SDK's key, as analytics-node holds: browser keys are rate-limited per client.
    let key = engine
        .create_key_of_kind(
            Scope::Write,
            consentric_engine::KeyKind::Server,
            Some("bench"),
        )?
        .secret()
        .to_owned();
    let (_server, port, clients) = serve_beside_clients(engine)?;
    let url = format!("http://127.0.0.1:{port}/v1/batch");
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(bodies.to_vec());
    clients.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .build()?;
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..connections.max(1) {
            let (client, url, key, next, bodies) = (
                client.clone(),
                url.clone(),
                key.clone(),
                next.clone(),
                bodies.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else {
                        return Ok::<_, anyhow::Error>(latencies);
                    };
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .basic_auth(&key, Some(""))
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await?;
                    if !response.status().is_success() {
                        bail!(
                            "batch {i}: HTTP {}: {}",
                            response.status(),
                            response.text().await.unwrap_or_default()
                        );
                    }
                    latencies.push(sent.elapsed());
                }
            }));
        }
        let mut latencies = Vec::with_capacity(bodies.len());
        for t in tasks {
            latencies.extend(t.await??);
        }
        Ok((started.elapsed(), latencies))
    })
}

/// Prints the median, tail and maximum of `lat` (sorted in place), in milliseconds, and the
/// rate of `unit` per second when the run's time is given.
/// Requests each page (path, times) in turn with `cookie`, one client on `clients`, and prints
/// its latencies and size; fails on an answer that is not a success.
pub(crate) fn time_pages(
    clients: &tokio::runtime::Runtime,
    base: &str,
    cookie: &str,
    pages: &[(String, usize)],
) -> anyhow::Result<()> {
    clients.block_on(async move {
        let client = reqwest::Client::new();
        for (page, n) in pages {
            let mut lat = Vec::with_capacity(*n);
            let mut bytes = 0;
            for _ in 0..*n {
                let t = Instant::now();
                let r = client
                    .get(format!("{base}{page}"))
                    .header("cookie", cookie)
                    .send()
                    .await?;
                let status = r.status();
                bytes = r.bytes().await?.len();
                lat.push(t.elapsed());
                if !status.is_success() {
                    anyhow::bail!("{page}: {status}");
                }
            }
            print_latencies(
                &format!("{page} ({bytes} bytes)"),
                "requests",
                &mut lat,
                None,
            );
        }
        Ok(())
    })
}

pub(crate) fn print_latencies(
    label: &str,
    unit: &str,
    lat: &mut [Duration],
    took: Option<Duration>,
) {
    lat.sort();
    let at = |q: f64| {
        let i = ((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len().max(1)) - 1;
        lat.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let rate = took.map_or(String::new(), |t| {
        format!(", {:.0} {unit}/s", lat.len() as f64 / t.as_secs_f64())
    });
    println!(
        "{label}: {} {unit}, p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms{rate}",
        lat.len(),
        at(0.50),
        at(0.99),
        at(0.999),
        at(1.0)
    );
}

/// Spawns the product binary's `consentric import --format cdnow` on the shipped file in a
/// fresh data directory, so its peak RSS is the import's own. The binary is the `consentric`
/// beside this one (`cargo build --release -p consentric` puts it there).
fn import_cdnow() -> anyhow::Result<()> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/cdnow/CDNOW_master.txt");
    let dir = tempfile::tempdir()?;
    let exe = std::env::current_exe()?
        .parent()
        .map(|d| d.join(format!("consentric{}", std::env::consts::EXE_SUFFIX)))
        .filter(|p| p.exists())
        .context(
            "the CDNOW import is measured with the product binary: build it first \
             (cargo build --release -p consentric), or pass --skip-import",
        )?;
    let started = Instant::now();
    let out = std::process::Command::new(exe)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["import", "--quiet", "--format", "cdnow"])
        .arg(&file)
        .output()
        .context("Failed to run the import")?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!("import failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    println!();
    println!(
        "CDNOW master import (separate process, wall time {:.2} s incl. start-up):",
        took.as_secs_f64()
    );
    print!("{}", String::from_utf8_lossy(&out.stdout));
    Ok(())
}

/// Deterministic synthetic traffic: identify (10%), page (20%), Order Completed (10%) and
/// Product Viewed (60%) across n/20 customers, some with anonymous ids.
pub(crate) fn generate(n: usize, run: &str, consent_share: u8, ids: MessageIds) -> Vec<Vec<u8>> {
    traffic(n, run, consent_share, true, ids)
}

/// The banner's choices a consenting customer sends (Segment's consent object).
fn choices() -> Value {
    json!({"categoryPreferences": {"Analytics": true, "Functional": true, "Advertising": false}})
}

/// Whether customer `u` is one of the `consent_share` percent who came through a banner.
fn consents(u: u64, consent_share: u8) -> bool {
    u % 100 < u64::from(consent_share)
}

/// The traffic of [`generate`]; `choices_on_events` says whether the consenting customers'
/// events carry their choices (else they were recorded before, see [`first_contact`]).
pub(crate) fn traffic(
    n: usize,
    run: &str,
    consent_share: u8,
    choices_on_events: bool,
    ids: MessageIds,
) -> Vec<Vec<u8>> {
    let users = (n / 20).max(1) as u64;
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut id_draws = SplitMix64::new(0);
    let base = chrono::Utc::now() - chrono::Duration::days(30);
    let mut bodies = Vec::with_capacity(n / BATCH + 1);
    let mut events: Vec<Value> = Vec::with_capacity(BATCH);
    for i in 0..n {
        let u = next() % users;
        let ts = (base + chrono::Duration::seconds(i as i64)).to_rfc3339();
        let message_id = match ids {
            // From a stream of their own, not from `next`, so both shapes carry the same
            // customers, products and amounts. The run's name keeps two runs into one database
            // (PostgreSQL's) apart.
            MessageIds::Random => format!(
                "{run}-{:016x}{:016x}",
                id_draws.next_u64(),
                id_draws.next_u64()
            ),
            MessageIds::Sequential => format!("bench-{run}-{i}"),
        };
        let common = json!({
            "messageId": message_id,
            "userId": format!("user-{u}"),
            "anonymousId": format!("anon-{u}"),
            "timestamp": ts,
            "context": {"ip": "203.0.113.7", "userAgent": "Mozilla/5.0 (X11; Linux x86_64)", "library": {"name": "bench", "version": "1"}},
        });
        let mut e = common;
        if choices_on_events && consents(u, consent_share) {
            // These customers came through a consent banner, which sends their choices with
            // every event (Segment's consent object).
            e["context"]["consent"] = choices();
        }
        let o = e.as_object_mut().expect("object");
        match i % 10 {
            0 => {
                o.insert("type".into(), json!("identify"));
                o.insert("traits".into(), json!({"email": format!("user{u}@example.com"), "plan": if u.is_multiple_of(3) { "pro" } else { "free" }, "logins": i % 97}));
            }
            1 | 2 => {
                o.insert("type".into(), json!("page"));
                o.insert("name".into(), json!("Home"));
                o.insert(
                    "properties".into(),
                    json!({"path": "/", "title": "Home", "url": "https://shop.example.com/"}),
                );
            }
            3 => {
                o.insert("type".into(), json!("track"));
                o.insert("event".into(), json!("Order Completed"));
                o.insert("properties".into(), json!({"order_id": format!("o-{i}"), "revenue": (next() % 10_000) as f64 / 100.0, "currency": "USD",
                    "products": [{"product_id": format!("p-{}", next() % 500), "price": 19.0, "quantity": 1}]}));
            }
            _ => {
                o.insert("type".into(), json!("track"));
                o.insert("event".into(), json!("Product Viewed"));
                o.insert("properties".into(), json!({"product_id": format!("p-{}", next() % 500), "category": "Games", "price": 19.0}));
            }
        }
        events.push(e);
        if events.len() == BATCH || i + 1 == n {
            let body = json!({"batch": std::mem::take(&mut events), "sentAt": chrono::Utc::now().to_rfc3339()});
            bodies.push(serde_json::to_vec(&body).expect("serialisable"));
        }
    }
    bodies
}

/// One identify event, a day before [`traffic`] starts, for each consenting customer of a run
/// of `n` events: it makes them known, and with `with_choices` records their banner's
/// choices, so that traffic without the choices keeps what traffic with them keeps.
pub(crate) fn first_contact(n: usize, consent_share: u8, with_choices: bool) -> Vec<Vec<u8>> {
    let users = (n / 20).max(1) as u64;
    let ts = (chrono::Utc::now() - chrono::Duration::days(31)).to_rfc3339();
    let events: Vec<Value> = (0..users)
        .filter(|&u| consents(u, consent_share))
        .map(|u| {
            let mut e = json!({"type": "identify", "messageId": format!("first-{u}"),
                "userId": format!("user-{u}"), "anonymousId": format!("anon-{u}"), "timestamp": ts,
                "context": {"ip": "203.0.113.7", "library": {"name": "bench", "version": "1"}}});
            if with_choices {
                e["context"]["consent"] = choices();
            }
            e
        })
        .collect();
    events
        .chunks(BATCH)
        .map(|c| serde_json::to_vec(&json!({"batch": c})).expect("serialisable"))
        .collect()
}

/// The rows ingestion would store for `bodies` (parsed outside the timing).
pub(crate) fn raw_rows(bodies: &[Vec<u8>]) -> anyhow::Result<Vec<RawEventRow>> {
    let env = Envelope::new(chrono::Utc::now(), "raw");
    let mut rows = Vec::new();
    for body in bodies {
        for e in parse_batch(body, &env)?.events {
            rows.push(RawEventRow {
                message_id: e.message_id().to_string(),
                profile_id: format!("prof_{}", e.user_id().map(|u| u.as_str()).unwrap_or("anon")),
                call_type: e.call().call_type().as_str(),
                event_name: e.event_name().map(str::to_owned),
                ts: e.timestamp().timestamp_millis(),
                received_at: e.received_at().timestamp_millis(),
                payload: e.to_json().to_string(),
            });
        }
    }
    Ok(rows)
}
