//! `consentric-bench privacy-centre`: each privacy-centre page for a customer with many events
//! (10,000 by default) among others, over HTTP on loopback, signed in as that customer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use consentric_engine::{Engine, Notifier, Outbox, ProfileRef, SystemClock};
use serde_json::json;

use crate::args::PrivacyArgs;

/// Events per ingested batch.
const BATCH: usize = 500;

pub fn run(args: &PrivacyArgs) -> anyhow::Result<()> {
    println!(
        "consentric-bench privacy-centre: one customer with {} events among {} others of {} events each, {} requests per page, release={}",
        args.events, args.others, args.others_events, args.requests, !cfg!(debug_assertions)
    );
    let dir = tempfile::tempdir()?;
    let store = crate::ingest::durable_sealed_sqlite(dir.path())?;
    let outbox = Arc::new(Outbox::default());
    let notifier: Arc<dyn Notifier> = outbox.clone();
    let engine = Arc::new(Engine::new(store, Arc::new(SystemClock)).with_notifier(notifier));

    let started = Instant::now();
    crate::ingest::in_process(&engine, &generate(args), 2)?;
    let (events, profiles) = engine.totals()?;
    println!(
        "ingested {events} events of {profiles} customers in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let who = ProfileRef::parse("user_id:c0")?;
    for _ in 0..args.decisions {
        engine.decide(&who, "home", Some(10), "bench")?;
    }

    let challenge = engine.privacy_send_code("c0@example.com")?;
    let code = (0..500)
        .find_map(|_| {
            let found = outbox.messages().into_iter().find_map(|m| {
                m.body
                    .split(|c: char| !c.is_ascii_digit())
                    .find(|w| w.len() == 6)
                    .map(str::to_owned)
            });
            if found.is_none() {
                std::thread::sleep(Duration::from_millis(10));
            }
            found
        })
        .context("no code was sent")?;
    let (_, token) = engine.privacy_sign_in(&challenge.challenge_id, &code)?;

    let (_server, port, clients) = crate::ingest::serve_beside_clients(engine)?;
    let base = format!("http://127.0.0.1:{port}");
    let requests = args.requests;
    let cookie = format!("consentric_privacy={token}");
    // Downloads are files, slower: at most 20 of each.
    let timed: Vec<(String, usize)> = [
        "/privacy/data",
        "/privacy/consent",
        "/privacy/decisions",
        "/privacy/requests",
        "/privacy/download?format=json",
        "/privacy/download?format=zip",
    ]
    .into_iter()
    .map(|p| {
        (
            p.to_owned(),
            if p.contains("download") {
                requests.min(20)
            } else {
                requests
            },
        )
    })
    .collect();
    crate::ingest::time_pages(&clients, &base, &cookie, &timed)
}

/// `c0` with `args.events` events (an identify with the address first), then the others.
fn generate(args: &PrivacyArgs) -> Vec<Vec<u8>> {
    let base = chrono::Utc::now() - chrono::Duration::days(300);
    let mut all = Vec::new();
    let customers =
        std::iter::once((0, args.events)).chain((1..=args.others).map(|c| (c, args.others_events)));
    for (c, n) in customers {
        for k in 0..n {
            let at = (base + chrono::Duration::seconds((c * 100_000 + k) as i64)).to_rfc3339();
            let e = if k == 0 {
                json!({"type": "identify", "messageId": format!("pc-{c}-{k}"), "userId": format!("c{c}"),
                       "timestamp": at, "traits": {"email": format!("c{c}@example.com"), "name": format!("Customer {c}")},
                       "context": {"consent": {"categoryPreferences": {"analytics": true, "personalization": true, "marketing.email": true}}}})
            } else if k % 5 == 4 {
                json!({"type": "track", "messageId": format!("pc-{c}-{k}"), "userId": format!("c{c}"), "timestamp": at,
                       "event": "Order Completed", "properties": {"revenue": 25.0, "products": [{"product_id": format!("p{}", k % 97), "price": 25.0}]}})
            } else {
                json!({"type": "track", "messageId": format!("pc-{c}-{k}"), "userId": format!("c{c}"), "timestamp": at,
                       "event": "Product Viewed", "properties": {"product_id": format!("p{}", k % 97)}})
            };
            all.push(e);
        }
    }
    all.chunks(BATCH)
        .map(|chunk| serde_json::to_vec(&json!({"batch": chunk})).unwrap_or_default())
        .collect()
}
