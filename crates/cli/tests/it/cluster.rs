//! Several real `consentric serve` nodes on one PostgreSQL: what one node does, every other
//! node honours, and what the cluster does once, it does once. PostgreSQL only (SQLite is one
//! process's file); skipped loudly where PostgreSQL is not installed, never under CI.

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use consentric_engine::Engine;
use consentric_testkit::TestDb;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::served::{by, key, key_and_id, kill_9, serve_with, settings, Served};

/// Nodes on one database, each with its own data directory holding the same master keys (as
/// an operator copies `master.key`, or sets `CONSENTRIC_MASTER_KEY`, on every machine).
struct Cluster {
    db: TestDb,
    dirs: Vec<TempDir>,
    nodes: Vec<Served>,
    write: String,
    admin: String,
    client: reqwest::blocking::Client,
}

impl Cluster {
    fn start(nodes: usize) -> Option<Cluster> {
        Cluster::start_with(nodes, "")
    }

    /// Nodes that each read `config` (TOML) as their `consentric.toml`.
    fn start_with(nodes: usize, config: &str) -> Option<Cluster> {
        let db = TestDb::postgres()?;
        let first = tempfile::tempdir().expect("dir");
        let write = key(first.path(), &db, "write");
        let admin = key(first.path(), &db, "admin");
        let mut dirs = vec![first];
        for _ in 1..nodes {
            let dir = tempfile::tempdir().expect("dir");
            std::fs::copy(
                dirs[0].path().join("master.key"),
                dir.path().join("master.key"),
            )
            .expect("copy the master keys");
            dirs.push(dir);
        }
        let nodes = dirs
            .iter()
            .map(|d| {
                let file = d.path().join("consentric.toml");
                std::fs::write(&file, config).expect("write the configuration");
                serve_with(d.path(), &db, Some(&file))
            })
            .collect();
        Some(Cluster {
            db,
            dirs,
            nodes,
            write,
            admin,
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
        })
    }

    fn base(&self, node: usize) -> &str {
        &self.nodes[node].base
    }

    fn dir(&self, node: usize) -> &Path {
        self.dirs[node].path()
    }

    fn batch(&self, node: usize, events: &[Value]) -> reqwest::blocking::Response {
        self.client
            .post(format!("{}/v1/batch", self.base(node)))
            .basic_auth(&self.write, Some(""))
            .json(&json!({ "batch": events }))
            .send()
            .expect("batch")
    }

    fn admin(
        &self,
        method: reqwest::Method,
        node: usize,
        path: &str,
    ) -> reqwest::blocking::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base(node)))
            .bearer_auth(&self.admin)
    }

    /// The store as a node opens it, in this process.
    fn engine(&self) -> Engine {
        Engine::open(&settings(self.dir(0), &self.db)).expect("open the store")
    }
}

#[test]
fn the_same_new_customers_sent_to_two_nodes_at_once_get_one_profile_each() {
    let Some(cluster) = Cluster::start(2) else {
        return;
    };
    let cluster = Arc::new(cluster);
    let (rounds, customers) = (6, 60);
    for round in 0..rounds {
        // Each round brings new customers, user id only: the find-then-create of each of
        // their profiles races between the nodes.
        let events: Vec<Value> = (0..customers)
            .map(|c| {
                json!({"type":"track","userId":format!("r{round}-c{c}"),"event":"Viewed",
                       "messageId":format!("r{round}-c{c}")})
            })
            .collect();
        let events = Arc::new(events);
        let start = Arc::new(Barrier::new(2));
        let senders: Vec<_> = (0..2)
            .map(|node| {
                let (cluster, events, start) = (cluster.clone(), events.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    cluster.batch(node, &events).status()
                })
            })
            .collect();
        for s in senders {
            assert_eq!(s.join().expect("sender"), 200);
        }
    }
    let engine = cluster.engine();
    for round in 0..rounds {
        for c in 0..customers {
            let user = format!("r{round}-c{c}");
            let events = engine.events(&by(&user), 100, "test").expect("events");
            assert_eq!(
                events.len(),
                1,
                "{user} reads {} events: the id points at a second, empty profile",
                events.len()
            );
        }
    }
    let (_, profiles) = engine.totals().expect("totals");
    assert_eq!(
        profiles,
        (rounds * customers) as u64,
        "one profile per customer"
    );
}

/// Consent, erasure, key revocation, trained models and the DP budget: what one node changes,
/// the other honours on the very next request.
#[test]
fn what_one_node_changes_the_other_honours_at_once() {
    let Some(cluster) = Cluster::start(2) else {
        return;
    };
    let (a, b) = (0, 1);
    // Customers viewing pairs of products with consent to personalisation.
    let mut batch = Vec::new();
    for c in 0..8 {
        let user = format!("d{c}");
        let pair = if c < 5 { ["x1", "x2"] } else { ["y1", "y2"] };
        for (k, item) in pair.iter().enumerate() {
            batch.push(
                json!({"type": "track", "event": "Product Viewed", "userId": user,
                "messageId": format!("{user}-{k}"), "timestamp": "2024-05-01T10:00:00Z",
                "properties": {"product_id": item},
                "context": {"consent": {"categoryPreferences": {"personalization": true}}}}),
            );
        }
    }
    batch.push(json!({"type": "track", "event": "Product Viewed", "userId": "fan",
        "messageId": "fan-1", "timestamp": "2024-05-02T10:00:00Z", "properties": {"product_id": "y1"},
        "context": {"consent": {"categoryPreferences": {"personalization": true}}}}));
    assert_eq!(cluster.batch(a, &batch).status(), 200);

    // Recommenders trained on A are served by B.
    let train = cluster
        .admin(reqwest::Method::POST, a, "/v1/recommenders/train")
        .send()
        .expect("train");
    assert_eq!(train.status(), 200);
    let decide = |node: usize| -> Value {
        let r = cluster
            .admin(
                reqwest::Method::POST,
                node,
                "/v1/decisions/user_id:fan?placement=home&limit=2",
            )
            .send()
            .expect("decide");
        assert_eq!(r.status(), 200);
        r.json().expect("json")
    };
    let served = eventually(|| {
        let d = decide(b);
        (d["items"][0]["item"] == "y2").then_some(d)
    });
    assert_eq!(served["explanation"]["personal"], true, "{served}");

    // Consent withdrawn on A: B's next decision is not personal.
    let withdraw = cluster
        .admin(reqwest::Method::PUT, a, "/v1/consent/fan")
        .body(r#"{"purposes":{"personalization":"withdrawn"}}"#)
        .send()
        .expect("withdraw");
    assert_eq!(withdraw.status(), 200);
    let d = decide(b);
    assert_eq!(d["explanation"]["personal"], false, "{d}");

    // Erased on A: B refuses to read the customer.
    let before = cluster
        .admin(reqwest::Method::GET, b, "/v1/profiles/d1")
        .send()
        .expect("read");
    assert_eq!(before.status(), 200);
    let erased = cluster
        .admin(reqwest::Method::DELETE, a, "/v1/profiles/d1")
        .send()
        .expect("erase");
    assert_eq!(erased.status(), 200);
    let after = cluster
        .admin(reqwest::Method::GET, b, "/v1/profiles/d1")
        .send()
        .expect("read");
    assert_eq!(after.status(), 404);

    // A key revoked on A is refused by B on the next request.
    let (doomed, id) = key_and_id(cluster.dir(a), &cluster.db, "write");
    let send_with = |node: usize, secret: &str| {
        cluster
            .client
            .post(format!("{}/v1/track", cluster.base(node)))
            .basic_auth(secret, Some(""))
            .json(&json!({"type":"track","userId":"k","event":"E"}))
            .send()
            .expect("track")
            .status()
    };
    assert_eq!(send_with(b, &doomed), 200);
    let revoked = cluster
        .admin(reqwest::Method::DELETE, a, &format!("/v1/keys/{id}"))
        .send()
        .expect("revoke");
    assert_eq!(revoked.status(), 200);
    assert_eq!(send_with(b, &doomed), 401);

    // The DP budget, spent by concurrent queries on both nodes, is never overspent.
    let (analyst, analyst_id) = key_and_id(cluster.dir(a), &cluster.db, "analyst");
    let grant = cluster
        .admin(reqwest::Method::POST, a, "/v1/analytics/grants")
        .body(json!({"analyst": analyst_id, "rho": 1.0}).to_string())
        .send()
        .expect("grant");
    assert_eq!(grant.status(), 200);
    let answered: u32 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|i| {
                let (cluster, analyst) = (&cluster, &analyst);
                s.spawn(move || {
                    let r = cluster
                        .client
                        .post(format!("{}/v1/analytics/query", cluster.base(i % 2)))
                        .bearer_auth(analyst)
                        .body(json!({"query": "count", "epsilon": 1.0}).to_string())
                        .send()
                        .expect("query");
                    match r.status().as_u16() {
                        200 => 1,
                        403 => 0,
                        other => panic!("query answered {other}"),
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("query")).sum()
    });
    let budget: Value = cluster
        .client
        .get(format!("{}/v1/analytics/budget", cluster.base(b)))
        .bearer_auth(&analyst)
        .send()
        .expect("budget")
        .json()
        .expect("json");
    let spent: f64 = budget["budgets"]
        .as_array()
        .expect("budgets")
        .iter()
        .map(|x| x["spent_rho"].as_f64().expect("spent"))
        .sum();
    assert!(spent <= 1.0 + 1e-9, "spent {spent} of 1.0: {budget}");
    assert!(answered >= 1, "at least one query fits the grant");
}

#[test]
fn value_models_fitted_on_one_node_score_on_the_other() {
    let Some(cluster) = Cluster::start(2) else {
        return;
    };
    let (a, b) = (0, 1);
    // 200 real CDNOW customers' orders, with consent to analytics and personalisation.
    let orders = consentric_testkit::cdnow_sample_orders(0, 200, &["analytics", "personalization"]);
    for chunk in orders.chunks(400) {
        assert_eq!(cluster.batch(a, chunk).status(), 200);
    }
    let who = orders[0]["userId"].as_str().expect("a user id").to_owned();
    let path = format!("/v1/customers/user_id:{who}/lifecycle");
    let scores = |node: usize| -> Value {
        let r = cluster
            .admin(reqwest::Method::GET, node, &path)
            .send()
            .expect("lifecycle");
        assert_eq!(r.status(), 200);
        r.json::<Value>().expect("json")["scores"].clone()
    };
    assert!(scores(b).is_null(), "no model is fitted yet");
    let fit = cluster
        .admin(reqwest::Method::POST, a, "/v1/lifecycle/fit")
        .send()
        .expect("fit");
    assert_eq!(fit.status(), 200, "{}", fit.text().unwrap_or_default());
    let on_b = eventually(|| {
        let s = scores(b);
        (!s.is_null()).then_some(s)
    });
    assert!(on_b["clv"].as_f64().is_some(), "{on_b}");
    assert_eq!(
        on_b["clv"],
        scores(a)["clv"],
        "both nodes score with the one fit"
    );
}

/// Retries `f` for up to 10 s (what another node loads in the background).
fn eventually<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let started = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never came to pass"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The metric `name{…job="<job>"…}` summed over every node.
fn metric_sum(cluster: &Cluster, name: &str, job: &str) -> f64 {
    (0..cluster.nodes.len())
        .map(|n| {
            let text = cluster
                .client
                .get(format!("{}/metrics", cluster.base(n)))
                .send()
                .expect("metrics")
                .text()
                .expect("text");
            text.lines()
                .filter(|l| l.starts_with(name) && l.contains(&format!("job=\"{job}\"")))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>()
        })
        .sum()
}

#[test]
fn a_periodic_job_runs_once_per_period_across_the_cluster_and_sees_every_nodes_writes() {
    // Segments refreshed every second: each of three nodes would run it every second alone.
    let Some(cluster) = Cluster::start_with(3, "[personalize]\nsegment_refresh_seconds = 1\n")
    else {
        return;
    };
    // A segment defined on A after B started: B must still note whom its writes touch.
    let define = cluster
        .admin(reqwest::Method::PUT, 0, "/v1/segments/viewers")
        .body(r#"{"field": "event.Product Viewed", "op": "gte", "value": 1}"#)
        .send()
        .expect("define");
    assert_eq!(
        define.status(),
        200,
        "{}",
        define.text().unwrap_or_default()
    );
    let started = std::time::Instant::now();
    let viewer = json!({"type": "track", "event": "Product Viewed", "userId": "late",
        "messageId": "late-1", "properties": {"product_id": "p1"},
        "context": {"consent": {"categoryPreferences": {"personalization": true}}}});
    // Until B has heard of the segment, what it writes may go unnoted: send again until the
    // refresh (on whichever node leads) shows the customer.
    let members = eventually(|| {
        assert_eq!(
            cluster.batch(1, std::slice::from_ref(&viewer)).status(),
            200
        );
        std::thread::sleep(Duration::from_millis(1500));
        let m: Value = cluster
            .admin(reqwest::Method::GET, 2, "/v1/segments/viewers/members")
            .send()
            .expect("members")
            .json()
            .expect("json");
        m["members"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
            .then_some(m)
    });
    assert_eq!(members["size"], 1, "{members}");
    std::thread::sleep(Duration::from_secs(3));
    let elapsed = started.elapsed().as_secs_f64();
    let runs = metric_sum(&cluster, "consentric_timer_runs_total", "segment refresh");
    assert!(runs >= 1.0, "the refresh ran");
    assert!(
        runs <= elapsed + 2.0,
        "{runs} refreshes in {elapsed:.1} s by three nodes: more than one per second"
    );
}

#[test]
fn a_node_with_other_master_keys_refuses_to_start() {
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let (first, other) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    key(first.path(), &db, "admin");
    let out = crate::served::command(other.path(), &db)
        .args(["keys", "list"])
        .output()
        .expect("run");
    assert!(
        !out.status.success(),
        "a process with other keys was let in"
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("master keys differ"), "{said}");
}

#[test]
fn every_event_acknowledged_by_two_nodes_survives_one_being_killed() {
    // Few enough events each that one read returns them all.
    const CUSTOMERS: usize = 40;
    let Some(mut cluster) = Cluster::start(2) else {
        return;
    };
    let acknowledged = std::sync::Mutex::new(Vec::<String>::new());
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for node in 0..2 {
            let (base, write, acknowledged, stop) = (
                cluster.base(node).to_owned(),
                cluster.write.clone(),
                &acknowledged,
                &stop,
            );
            s.spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .expect("client");
                for b in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    // The same customers on both nodes, so their profiles are shared.
                    let ids: Vec<String> = (0..CUSTOMERS).map(|i| format!("n{node}-b{b}-{i}")).collect();
                    let batch: Vec<Value> = ids
                        .iter()
                        .enumerate()
                        .map(|(i, id)| json!({"type":"track","userId":format!("c{}", i % CUSTOMERS),"event":"E","messageId":id}))
                        .collect();
                    match client
                        .post(format!("{base}/v1/batch"))
                        .basic_auth(&write, Some(""))
                        .json(&json!({ "batch": batch }))
                        .send()
                    {
                        Ok(r) if r.status() == 200 => {
                            acknowledged.lock().expect("lock").extend(ids);
                        }
                        // The killed node: its senders stop.
                        Err(_) => return,
                        Ok(_) => {}
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_millis(1500));
        kill_9(&mut cluster.nodes[0]);
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let acknowledged = acknowledged.into_inner().expect("lock");
    assert!(
        acknowledged.len() > 100,
        "too little was sent to test anything"
    );
    let engine = cluster.engine();
    let mut stored = Vec::new();
    for c in 0..CUSTOMERS {
        stored.extend(
            engine
                .events(&by(&format!("c{c}")), 100_000, "test")
                .expect("events")
                .into_iter()
                .filter_map(|e| e.event["messageId"].as_str().map(str::to_owned)),
        );
    }
    let unique: std::collections::HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "an event is stored twice");
    for id in &acknowledged {
        assert!(unique.contains(id), "acknowledged {id} is lost");
    }
    let (_, profiles) = engine.totals().expect("totals");
    assert_eq!(profiles, CUSTOMERS as u64, "one profile per customer");
}
