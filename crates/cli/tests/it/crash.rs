//! `kill -9` of a real `consentric serve`, on each store: during HTTP ingest every
//! acknowledged event is there afterwards exactly once; during an erasure either all of the
//! customer is gone and the receipt stored, or nothing changed.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use consentric_engine::{Engine, ProfileRef, Settings};
use consentric_model::{Identity, IdentityKind};
use consentric_testkit::{parity_test, TestDb};
use serde_json::{json, Value};

/// A served `consentric`, killed with SIGKILL when dropped if still running.
struct Served {
    child: Child,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(dir: &Path, db: &TestDb) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_consentric"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("CONSENTRIC_")) {
        c.env_remove(k);
    }
    c.arg("--data-dir").arg(dir);
    if let Some(url) = db.database_url() {
        c.arg("--database-url").arg(url);
    }
    c.env("CONSENTRIC_LOG", "warn");
    c
}

fn settings(dir: &Path, db: &TestDb) -> Settings {
    let mut s = Settings::default();
    s.storage.data_dir = dir.to_owned();
    s.storage.database_url = db.database_url().map(str::to_owned);
    s
}

/// A key made by the CLI, as an operator makes one.
fn key(dir: &Path, db: &TestDb, scope: &str) -> String {
    let out = command(dir, db)
        .args(["keys", "create", "--scope", scope, "--kind", "server"])
        .output()
        .expect("keys create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

fn serve(dir: &Path, db: &TestDb) -> Served {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = command(dir, db)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .spawn()
        .expect("consentric serve");
    let served = Served {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::blocking::Client::new();
    let started = Instant::now();
    while client
        .get(format!("{}/healthz", served.base))
        .send()
        .map_or(true, |r| !r.status().is_success())
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve never came up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    served
}

fn kill_9(served: &mut Served) {
    let _ = Command::new("kill")
        .args(["-9", &served.child.id().to_string()])
        .status();
    let _ = served.child.wait();
}

fn by(user: &str) -> ProfileRef {
    ProfileRef::Identity(Identity {
        kind: IdentityKind::UserId,
        value: user.to_owned(),
    })
}

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
