//! Idempotency and operations: retries stored once, health, readiness, metrics and the OpenAPI
//! document, shutdown, CORS.

use std::sync::Arc;

use consentric_engine::{Engine, FixedClock};
use consentric_testkit::{at, parity_test};
use serde_json::{json, Value};

use crate::app::spawn_app;

parity_test!(a_retry_is_acknowledged_and_stored_once, |db| {
    let app = spawn_app(&db);
    let e = json!({"userId":"r1","event":"Order Completed","messageId":"retry-me","properties":{"revenue":7}});
    let first: Value = app.send("/v1/track", &e).json().expect("json");
    let second: Value = app.send("/v1/track", &e).json().expect("json");
    assert_eq!(
        (first["accepted"].as_u64(), first["duplicates"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(
        (second["accepted"].as_u64(), second["duplicates"].as_u64()),
        (Some(0), Some(1))
    );
    let p = app.profile("r1");
    assert_eq!(p["counters"]["events"], 1);
    assert_eq!(p["counters"]["revenue"], 7.0);
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .expect("metrics")
        .text()
        .expect("text");
    assert!(
        metrics.contains("consentric_events_accepted_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("consentric_events_deduplicated_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("consentric_ingest_latency_seconds_count 2"),
        "{metrics}"
    );
});

parity_test!(operations_endpoints_answer, |db| {
    let app = spawn_app(&db);
    assert_eq!(
        app.client
            .get(format!("{}/healthz", app.base))
            .send()
            .expect("send")
            .status(),
        200
    );
    let ready: Value = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .expect("send")
        .json()
        .expect("json");
    assert_eq!(ready["status"], "ready");
    let doc: Value = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .expect("send")
        .json()
        .expect("json");
    for path in [
        "/v1/identify",
        "/v1/track",
        "/v1/page",
        "/v1/screen",
        "/v1/group",
        "/v1/alias",
        "/v1/batch",
        "/v1/profiles/{id}",
        "/v1/profiles/{id}/identities",
        "/metrics",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"].get("ProfileView").is_some());
    let graph_path = app.send("/v1/identify", &json!({"userId":"g","anonymousId":"a-g"}));
    assert_eq!(graph_path.status(), 200);
    let graph: Value = app.get("/v1/profiles/g/identities").json().expect("json");
    assert_eq!(graph["links"][0]["via"], "identify");
});

parity_test!(
    a_server_can_shut_down_with_its_store_inside_the_runtime,
    |db| {
        // The last owner of the engine may be an async worker (the router at shutdown); closing
        // the store there must not panic (PostgreSQL's blocking client once did).
        let engine = Arc::new(Engine::new(
            db.store(),
            Arc::new(FixedClock::new(at("2024-01-01T00:00:00Z"))),
        ));
        engine.ready().expect("ready");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            tokio::spawn(async move { drop(engine) })
                .await
                .expect("dropped inside the runtime");
        });
    }
);

parity_test!(
    browser_sdks_pass_cors_preflight_on_ingest_paths_only,
    |db| {
        let app = spawn_app(&db);
        let preflight = app
            .client
            .request(reqwest::Method::OPTIONS, format!("{}/v1/track", app.base))
            .header("origin", "https://shop.example.com")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, anonymousid",
            )
            .send()
            .expect("preflight");
        assert_eq!(preflight.status(), 204);
        assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
        assert!(preflight.headers()["access-control-allow-headers"]
            .to_str()
            .expect("ascii")
            .contains("anonymousid"));
        let r = app.send("/v1/track", &json!({"userId":"c","event":"E"}));
        assert_eq!(r.headers()["access-control-allow-origin"], "*");
        assert!(
            app.get("/v1/profiles/c")
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "reads stay same-origin"
        );
    }
);

parity_test!(concurrent_retries_of_one_event_store_it_once, |db| {
    let app = Arc::new(spawn_app(&db));
    let event = json!({"userId":"race","event":"Order Completed","messageId":"same-id","properties":{"revenue":3}});
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (app, event) = (app.clone(), event.clone());
            std::thread::spawn(move || -> Value {
                app.send("/v1/track", &event).json().expect("json")
            })
        })
        .collect();
    let answers: Vec<Value> = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    let accepted: u64 = answers
        .iter()
        .map(|a| a["accepted"].as_u64().expect("count"))
        .sum();
    let duplicates: u64 = answers
        .iter()
        .map(|a| a["duplicates"].as_u64().expect("count"))
        .sum();
    assert_eq!((accepted, duplicates), (1, 7));
    let p = app.profile("race");
    assert_eq!(
        (
            p["counters"]["events"].as_i64(),
            p["counters"]["revenue"].as_f64()
        ),
        (Some(1), Some(3.0))
    );
});
