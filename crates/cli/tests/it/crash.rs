//! `kill -9` of a real `consentric serve`, on each store: during HTTP ingest every
//! acknowledged event is there afterwards exactly once; during an erasure either all of the
//! customer is gone and the receipt stored, or nothing changed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use consentric_engine::Engine;
use consentric_testkit::parity_test;
use serde_json::{json, Value};

use crate::served::{by, key, kill_9, serve, settings};

parity_test!(
    every_acknowledged_event_survives_a_kill_during_ingest,
    |db| {
        let dir = tempfile::tempdir().expect("dir");
        let write = key(dir.path(), &db, "write");
        let mut served = serve(dir.path(), &db);
        let acknowledged = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
        let senders: Vec<_> = (0..4)
            .map(|t| {
                let (base, write, acknowledged) =
                    (served.base.clone(), write.clone(), acknowledged.clone());
                std::thread::spawn(move || {
                    let client = reqwest::blocking::Client::builder()
                        .timeout(Duration::from_secs(30))
                        .build()
                        .expect("client");
                    for b in 0.. {
                        let user = format!("c{t}");
                        let ids: Vec<String> = (0..20).map(|i| format!("t{t}-b{b}-{i}")).collect();
                        let batch: Vec<Value> = ids
                        .iter()
                        .map(|id| json!({"type":"track","userId":user,"event":"E","messageId":id}))
                        .collect();
                        let sent = client
                            .post(format!("{base}/v1/batch"))
                            .basic_auth(&write, Some(""))
                            .json(&json!({ "batch": batch }))
                            .send();
                        match sent {
                            Ok(r) if r.status() == 200 => {
                                let mut acked = acknowledged.lock().expect("lock");
                                acked.extend(ids.into_iter().map(|id| (user.clone(), id)));
                            }
                            Ok(r) if r.status() == 429 => continue,
                            _ => return, // the server is gone
                        }
                    }
                })
            })
            .collect();
        // Kill it mid-stream, once a few hundred events are acknowledged.
        let started = Instant::now();
        while acknowledged.lock().expect("lock").len() < 400 {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "ingest too slow to test"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        kill_9(&mut served);
        for s in senders {
            s.join().expect("sender");
        }
        let acknowledged = acknowledged.lock().expect("lock").clone();
        let engine = Engine::open(&settings(dir.path(), &db)).expect("reopen");
        for t in 0..4 {
            let user = format!("c{t}");
            let stored: Vec<String> = engine
                .events(&by(&user), 1_000_000, "test")
                .expect("events")
                .into_iter()
                .filter_map(|e| e.event["messageId"].as_str().map(str::to_owned))
                .collect();
            let unique: std::collections::HashSet<&String> = stored.iter().collect();
            assert_eq!(
                unique.len(),
                stored.len(),
                "an event of {user} is stored twice"
            );
            for (_, id) in acknowledged.iter().filter(|(u, _)| *u == user) {
                assert!(unique.contains(id), "acknowledged {id} is lost");
            }
        }
    }
);

parity_test!(an_erasure_killed_midway_is_all_or_nothing, |db| {
    let dir = tempfile::tempdir().expect("dir");
    let (admin, write) = (key(dir.path(), &db, "admin"), key(dir.path(), &db, "write"));
    for (round, delay_ms) in [0u64, 5, 20].into_iter().enumerate() {
        let user = format!("e{round}");
        let mut served = serve(dir.path(), &db);
        let client = reqwest::blocking::Client::new();
        let batch: Vec<Value> = (0..300)
            .map(|i| {
                json!({"type":"track","userId":user,"event":"E","messageId":format!("{user}-{i}"),
                            "properties":{"n":i}})
            })
            .collect();
        let r = client
            .post(format!("{}/v1/batch", served.base))
            .basic_auth(&write, Some(""))
            .json(&json!({ "batch": batch }))
            .send()
            .expect("ingest");
        assert_eq!(r.status(), 200);
        let url = format!("{}/v1/profiles/{user}", served.base);
        let admin_key = admin.clone();
        let eraser = std::thread::spawn(move || {
            let _ = reqwest::blocking::Client::new()
                .delete(url)
                .bearer_auth(admin_key)
                .send();
        });
        std::thread::sleep(Duration::from_millis(delay_ms));
        kill_9(&mut served);
        eraser.join().expect("eraser");
        let engine = Engine::open(&settings(dir.path(), &db)).expect("reopen");
        match engine.events(&by(&user), 1_000_000, "test") {
            Ok(events) => assert_eq!(events.len(), 300, "round {round}: half an erasure"),
            Err(_) => {
                // Gone: then whole, with its receipt.
                let receipt = engine
                    .erase(&by(&user), "test")
                    .expect("the earlier receipt");
                let body = receipt.verify(&receipt.public_key).expect("signed");
                assert_eq!(body.erased.events, 300, "round {round}");
            }
        }
    }
});
