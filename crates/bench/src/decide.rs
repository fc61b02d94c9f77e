//! `consentric-bench decide`: the decision API over HTTP at 100,000 customers and 10,000 items.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use consentric_engine::{
    Engine, PersonalizeSettings, ProfileRef, RecommenderKind, Scope, SystemClock,
};
use serde_json::json;

use crate::args::DecideArgs;

/// Events per ingested batch.
const BATCH: usize = 500;

pub fn run(args: &DecideArgs) -> anyhow::Result<()> {
    let kind = match args.recommender.as_str() {
        "als" => RecommenderKind::Als,
        "knn" => RecommenderKind::Knn,
        other => bail!("--recommender must be als or knn, not {other}"),
    };
    println!(
        "consentric-bench decide: {} customers × {} interactions over {} items, {} decisions per run by {:?} HTTP clients, recommender {}, release={}",
        args.customers, args.per_customer, args.items, args.decisions, args.concurrency,
        args.recommender, !cfg!(debug_assertions)
    );
    let dir = tempfile::tempdir()?;
    let store = crate::ingest::durable_sealed_sqlite(dir.path())?;
    let settings = PersonalizeSettings {
        recommender: kind,
        ..PersonalizeSettings::default()
    };
    let engine = Arc::new(Engine::new(store, Arc::new(SystemClock)).with_personalize(settings)?);

    let started = Instant::now();
    let bodies = generate(args);
    crate::ingest::in_process(&engine, &bodies, 2)?;
    let (events, profiles) = engine.totals()?;
    println!(
        "ingested {events} events of {profiles} customers in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let report = engine.train_recommenders("bench")?;
    println!("trained in {:.1} s:", started.elapsed().as_secs_f64());
    println!("trained: {}", serde_json::to_string(&report)?);

    // In-process, one thread: the engine's own cost per decision.
    let mut lat = Vec::new();
    for i in 0..2_000.min(args.decisions) {
        let who = ProfileRef::parse(&format!("user_id:c{}", (i * 7919) % args.customers))?;
        let t = Instant::now();
        engine.decide(&who, "home", Some(10), "bench")?;
        lat.push(t.elapsed());
    }
    crate::ingest::print_latencies("in-process, 1 thread", "decisions", &mut lat, None);

    for &clients in &args.concurrency {
        let (mut lat, took) = over_http(engine.clone(), args, clients)?;
        crate::ingest::print_latencies(
            &format!("HTTP, {clients} clients"),
            "decisions",
            &mut lat,
            Some(took),
        );
    }
    Ok(())
}

/// Customers `c0…`, each granting personalisation and e-mail marketing with their first event,
/// viewing and buying items drawn with a popularity skew (the square of a uniform draw).
fn generate(args: &DecideArgs) -> Vec<Vec<u8>> {
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let items = args.items.max(1) as f64;
    let base = chrono::Utc::now() - chrono::Duration::days(30);
    let mut bodies = Vec::new();
    let mut events = Vec::with_capacity(BATCH);
    let total = args.customers * args.per_customer;
    for n in 0..total {
        let (c, k) = (n / args.per_customer.max(1), n % args.per_customer.max(1));
        let u = (next() >> 11) as f64 / (1u64 << 53) as f64;
        let item = ((u * u) * items) as u64;
        let mut e = json!({
            "type": "track",
            "messageId": format!("decide-{c}-{k}"),
            "userId": format!("c{c}"),
            "event": if k % 4 == 3 { "Order Completed" } else { "Product Viewed" },
            "timestamp": (base + chrono::Duration::seconds(n as i64)).to_rfc3339(),
            "properties": if k % 4 == 3 {
                json!({"revenue": 20.0, "products": [{"product_id": format!("p{item}"), "price": 20.0}]})
            } else {
                json!({"product_id": format!("p{item}")})
            },
        });
        if k == 0 {
            e["context"] = json!({"consent": {"categoryPreferences":
                {"personalization": true, "marketing.email": true}}});
        }
        events.push(e);
        if events.len() == BATCH || n + 1 == total {
            let body = json!({"batch": std::mem::take(&mut events)});
            bodies.push(serde_json::to_vec(&body).unwrap_or_default());
        }
    }
    bodies
}

fn over_http(
    engine: Arc<Engine>,
    args: &DecideArgs,
    concurrency: usize,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let key = engine
        .create_key(Scope::Admin, Some("bench"))?
        .secret()
        .to_owned();
    let (n, customers) = (args.decisions, args.customers.max(1));
    let (_server, port, clients) = crate::ingest::serve_beside_clients(engine)?;
    let base = format!("http://127.0.0.1:{port}/v1/decisions");
    clients.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .build()?;
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency.max(1) {
            let (client, base, key, next) =
                (client.clone(), base.clone(), key.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok::<_, anyhow::Error>(lat);
                    }
                    let c = (i.wrapping_mul(2_654_435_761)) % customers;
                    let t = Instant::now();
                    let response = client
                        .post(format!("{base}/user_id:c{c}?placement=home&limit=10"))
                        .bearer_auth(&key)
                        .send()
                        .await?;
                    let status = response.status();
                    let body = response.bytes().await?;
                    lat.push(t.elapsed());
                    if !status.is_success() {
                        bail!(
                            "decision {i}: HTTP {status}: {}",
                            String::from_utf8_lossy(&body)
                        );
                    }
                }
            }));
        }
        let mut all = Vec::with_capacity(n);
        for t in tasks {
            all.extend(t.await.context("a client panicked")??);
        }
        Ok((all, started.elapsed()))
    })
}
