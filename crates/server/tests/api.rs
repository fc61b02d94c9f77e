//! End-to-end: the real server on an ephemeral port, real HTTP, each test on SQLite and on
//! PostgreSQL.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use consentric_engine::{Engine, FixedClock, Scope};
use consentric_server::Application;
use consentric_testkit::{parity_test, TestDb};
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{json, Value};

struct TestApp {
    base: String,
    admin: String,
    analyst: String,
    analyst_id: String,
    write: String,
    clock: Arc<FixedClock>,
    client: Client,
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

fn spawn_app(db: &TestDb) -> TestApp {
    let clock = Arc::new(FixedClock::new(at("2024-05-14T10:21:33.517Z")));
    let engine = Arc::new(Engine::new(db.store(), clock.clone()));
    let admin = engine
        .create_key(Scope::Admin, Some("test"))
        .expect("admin key")
        .secret()
        .to_owned();
    let write = engine
        .create_key(Scope::Write, Some("test"))
        .expect("write key")
        .secret()
        .to_owned();
    let analyst = engine
        .create_key(Scope::Analyst, Some("test"))
        .expect("analyst key");
    let (analyst_id, analyst) = (analyst.key_id.clone(), analyst.secret().to_owned());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let app = Application::build(engine, "127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(app.port()).expect("send port");
            app.run_until_stopped().await.expect("serve");
        });
    });
    let port = rx.recv().expect("port");
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        admin,
        analyst,
        analyst_id,
        write,
        clock,
        client: Client::new(),
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/segment")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("fixture is JSON")
}

impl TestApp {
    fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(format!("{}{path}", self.base))
    }

    /// As analytics-node sends: Basic auth with the write key as user name.
    fn send(&self, path: &str, body: &Value) -> Response {
        self.post(path)
            .basic_auth(&self.write, Some(""))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .expect("request")
    }

    fn get(&self, path: &str) -> Response {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.admin)
            .send()
            .expect("request")
    }

    fn profile(&self, id: &str) -> Value {
        let r = self.get(&format!("/v1/profiles/{id}"));
        assert_eq!(r.status(), 200, "profile {id}");
        r.json().expect("json")
    }

    fn events(&self, id: &str) -> Vec<Value> {
        let r = self.get(&format!("/v1/profiles/{id}/events?limit=1000"));
        assert_eq!(r.status(), 200);
        let v: Value = r.json().expect("json");
        v["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["event"].clone())
            .collect()
    }
}

fn trait_of(profile: &Value, name: &str) -> Value {
    profile["traits"]
        .as_array()
        .expect("traits")
        .iter()
        .find(|t| t["name"] == name)
        .map(|t| t["value"].clone())
        .unwrap_or(Value::Null)
}

fn assert_error(r: Response, status: u16, code: &str, field: Option<&str>) {
    assert_eq!(r.status().as_u16(), status);
    let body: Value = r.json().expect("a JSON error body");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    if let Some(f) = field {
        assert_eq!(body["error"]["field"], f, "{body}");
    }
}

// ---------------------------------------------------------------- conformance

parity_test!(every_spec_example_is_accepted_at_its_path, |db| {
    let app = spawn_app(&db);
    for (file, path, events) in [
        ("identify_minimal.json", "/v1/identify", 1),
        ("identify_full.json", "/v1/identify", 1),
        ("track_full.json", "/v1/track", 1),
        ("page_full.json", "/v1/page", 1),
        ("screen_full.json", "/v1/screen", 1),
        ("group_full.json", "/v1/group", 1),
        ("alias_minimal.json", "/v1/alias", 1),
        ("alias_full.json", "/v1/alias", 1),
        ("ecommerce_order_completed.json", "/v1/track", 1),
        (
            "ecommerce_v1_order_completed_legacy_action.json",
            "/v1/track",
            1,
        ),
        ("http_api_identify.json", "/v1/identify", 1),
        ("http_api_track.json", "/v1/track", 1),
        ("http_api_page.json", "/v1/page", 1),
        ("http_api_screen.json", "/v1/screen", 1),
        ("http_api_group.json", "/v1/group", 1),
        ("http_api_alias.json", "/v1/alias", 1),
        (
            "http_api_identify_selected_destinations.json",
            "/v1/identify",
            1,
        ),
        ("batch_http_api.json", "/v1/batch", 4),
        ("analytics_node_batch.json", "/v1/batch", 3),
        ("rudderstack_track.json", "/v1/track", 1),
        ("rudderstack_node_batch.json", "/v1/batch", 2),
    ] {
        let r = app.send(path, &fixture_json(file));
        assert_eq!(r.status(), 200, "{file}: {}", r.text().unwrap_or_default());
        let sent = fixture_json(file);
        let items = sent["batch"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| vec![sent.clone()]);
        assert_eq!(items.len(), events, "{file}");
        // Events that carry a messageId are recognised when resent; the others get fresh ids.
        let with_ids = items
            .iter()
            .filter(|e| e.get("messageId").is_some())
            .count();
        let body: Value = app.send(path, &sent).json().expect("json");
        assert_eq!(body["success"], true, "{file}");
        assert_eq!(
            body["duplicates"], with_ids,
            "{file}: a resend is acknowledged as duplicates"
        );
        assert_eq!(body["accepted"], events - with_ids, "{file}");
    }
    // identify: traits with provenance, the anonymous id tied to the user.
    let p = app.profile("97980cfea0067");
    assert_eq!(trait_of(&p, "name"), "Peter Gibbons");
    assert_eq!(trait_of(&p, "address")["city"], "San Francisco");
    assert!(p["identities"]
        .as_array()
        .expect("ids")
        .iter()
        .any(|i| i["value"] == "507f191e810c19729de860ea"));
    // e-commerce: an order with its products and revenue.
    let p = app.profile("019mr8mf4r");
    assert!(p["counters"]["orders"].as_i64().expect("orders") >= 1);
    let order = app
        .events("019mr8mf4r")
        .into_iter()
        .find(|e| e["properties"]["order_id"] == "50314b8e9bcf000000000000")
        .expect("the order is stored");
    assert_eq!(
        order["properties"]["products"]
            .as_array()
            .expect("products")
            .len(),
        2
    );
    // batch: top-level context merged into each event; both customers exist.
    assert_eq!(trait_of(&app.profile("971mj8mk7p"), "age"), 23);
    let song = app
        .events("971mj8mk7p")
        .into_iter()
        .find(|e| e["event"] == "Song Played")
        .expect("track");
    // The batch-level context reached each event, but device ids serve only ad sharing, for
    // which these customers gave no consent: minimisation kept them out of storage.
    assert!(song["context"].get("device").is_none(), "{song}");
    assert_eq!(
        song["properties"]["name"], "Get Right",
        "a product name is purchase behaviour"
    );
    assert_eq!(
        song["properties"]["artist"],
        Value::Null,
        "`artist` maps to no category"
    );
    // analytics-node's alias tied `from` to `to`.
    assert_eq!(
        app.profile("from")["profile_id"],
        app.profile("to")["profile_id"]
    );
});

parity_test!(timestamps_are_corrected_for_clock_skew, |db| {
    let app = spawn_app(&db);
    // Segment's own track example: receivedAt .266, sentAt .169, originalTimestamp .152.
    app.clock.set(at("2015-12-12T19:11:01.266Z"));
    assert_eq!(
        app.send("/v1/track", &fixture_json("track_full.json"))
            .status(),
        200
    );
    let e = &app.events("AiUGstSDIg")[0];
    assert_eq!(e["timestamp"], "2015-12-12T19:11:01.249Z");
    assert_eq!(e["originalTimestamp"], "2015-12-12T19:11:01.152Z");
    assert_eq!(
        e["receivedAt"], "2015-12-12T19:11:01.266Z",
        "the client's receivedAt is not trusted"
    );
    // analytics-next: `timestamp` is the client time, `sentAt` per event.
    app.clock.set(at("2024-05-14T10:21:33.517Z"));
    let mut body = fixture_json("analytics_js_track.json");
    body["writeKey"] = json!(app.write);
    let r = app
        .post("/v1/t")
        .header("content-type", "text/plain")
        .body(body.to_string())
        .send()
        .expect("send");
    assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
    let e = &app.events("anonymous_id:6d5f8b3a-2f1e-4c4b-9a57-0b8f1f2e3c4d")[0];
    assert_eq!(e["timestamp"], "2024-05-14T10:21:33.498Z");
    assert!(e.get("userId").is_none(), "userId null means absent");
});

parity_test!(
    analytics_js_short_paths_text_plain_and_body_write_keys_work,
    |db| {
        let app = spawn_app(&db);
        for (file, path) in [
            ("analytics_js_page.json", "/v1/p"),
            ("analytics_js_batch.json", "/v1/b"),
            ("http_api_writekey_in_body.json", "/v1/track"),
        ] {
            let mut body = fixture_json(file);
            body["writeKey"] = json!(app.write);
            if file == "analytics_js_page.json" {
                // The visitor accepted analytics in the banner: campaign data may be kept.
                body["context"]["consent"] = json!({"categoryPreferences": {"Analytics": true}});
            }
            let r = app
                .post(path)
                .header("content-type", "text/plain")
                .body(body.to_string())
                .send()
                .expect("send");
            assert_eq!(r.status(), 200, "{file}: {}", r.text().unwrap_or_default());
        }
        // The anonymous page view joined the customer when the batch's identify tied them.
        let p = app.profile("97980cfea0067");
        assert_eq!(trait_of(&p, "plan"), "premium");
        let page = app
            .events("97980cfea0067")
            .into_iter()
            .find(|e| e["type"] == "page")
            .expect("page stored");
        assert_eq!(page["context"]["campaign"]["name"], "spring_sale");
        // A body key that is wrong is refused.
        let mut body = fixture_json("analytics_js_track.json");
        body["writeKey"] = json!("csw_wrong");
        assert_error(
            app.post("/v1/t")
                .body(body.to_string())
                .send()
                .expect("send"),
            401,
            "unauthorized",
            None,
        );
    }
);

parity_test!(gzip_bodies_from_rudder_sdk_node_are_inflated, |db| {
    let app = spawn_app(&db);
    let r = app
        .post("/v1/batch")
        .basic_auth(&app.write, Some(""))
        .header("content-encoding", "gzip")
        .body(fixture("rudderstack_node_batch.json.gz"))
        .send()
        .expect("send");
    assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
    let p = app.profile("019mr8mf4r");
    assert_eq!(p["counters"]["events"], 2);
    assert_eq!(trait_of(&p, "email"), "pgibbons@example.com");
    // A gzip bomb is cut off at the batch limit.
    let mut enc = flate2_encoder();
    enc.write_all(&vec![b' '; 4 * 1024 * 1024])
        .expect("compress");
    let bomb = enc.finish().expect("finish");
    let r = app
        .post("/v1/batch")
        .basic_auth(&app.write, Some(""))
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .expect("send");
    assert_error(r, 413, "batch_too_large", None);
});

fn flate2_encoder() -> flate2::write::GzEncoder<Vec<u8>> {
    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default())
}

// ---------------------------------------------------------------- auth

parity_test!(
    keys_are_checked_and_a_write_key_cannot_read_profiles,
    |db| {
        let app = spawn_app(&db);
        let event = json!({"userId": "u1", "event": "E"});
        let r = app
            .post("/v1/track")
            .body(event.to_string())
            .send()
            .expect("send");
        assert_eq!(
            r.headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer realm=\"consentric\""),
            "a 401 says how to authenticate"
        );
        assert_error(r, 401, "unauthorized", None);
        assert_error(
            app.post("/v1/track")
                .basic_auth("csw_nope", Some(""))
                .body(event.to_string())
                .send()
                .expect("send"),
            401,
            "unauthorized",
            None,
        );
        assert_error(
            app.post("/v1/track")
                .header("authorization", "Digest x")
                .body(event.to_string())
                .send()
                .expect("send"),
            401,
            "unauthorized",
            None,
        );
        assert_eq!(
            app.post("/v1/track")
                .bearer_auth(&app.write)
                .body(event.to_string())
                .send()
                .expect("send")
                .status(),
            200
        );
        assert_eq!(
            app.post("/v1/track")
                .bearer_auth(&app.admin)
                .body(json!({"userId":"u1","event":"F"}).to_string())
                .send()
                .expect("send")
                .status(),
            200
        );
        // Twice: the second time the key is answered from the engine's cache, on the
        // request's task; the scope must still be checked.
        for _ in 0..2 {
            let as_writer = app
                .client
                .get(format!("{}/v1/profiles/u1", app.base))
                .bearer_auth(&app.write)
                .send()
                .expect("send");
            assert_error(as_writer, 403, "forbidden", None);
        }
        assert_error(
            app.client
                .get(format!("{}/v1/profiles/u1", app.base))
                .send()
                .expect("send"),
            401,
            "unauthorized",
            None,
        );
        assert_eq!(app.profile("u1")["counters"]["events"], 2);
        assert_error(app.get("/v1/profiles/nobody"), 404, "not_found", None);
    }
);

// ---------------------------------------------------------------- bad input

parity_test!(bad_input_gets_a_clear_error_naming_the_field, |db| {
    let app = spawn_app(&db);
    let raw = |path: &str, body: &str| {
        app.post(path)
            .basic_auth(&app.write, Some(""))
            .body(body.to_owned())
            .send()
            .expect("send")
    };
    assert_error(raw("/v1/track", "{not json"), 400, "malformed_json", None);
    assert_error(raw("/v1/track", "[1,2]"), 400, "malformed_json", None);
    assert_error(
        app.send("/v1/track", &fixture_json("track_minimal.json")),
        400,
        "missing_field",
        Some("userId"),
    );
    assert_error(
        app.send("/v1/page", &fixture_json("page_minimal.json")),
        400,
        "missing_field",
        Some("userId"),
    );
    assert_error(
        app.send("/v1/track", &fixture_json("common_fields_full.json")),
        400,
        "missing_field",
        Some("event"),
    );
    assert_error(
        app.send("/v1/track", &json!({"userId":"u","event":["x"]})),
        400,
        "invalid_field",
        Some("event"),
    );
    assert_error(
        app.send(
            "/v1/track",
            &json!({"userId":"u","event":"E","type":"identify"}),
        ),
        400,
        "invalid_field",
        Some("type"),
    );
    assert_error(
        app.send("/v1/alias", &json!({"userId":"u"})),
        400,
        "missing_field",
        Some("previousId"),
    );
    assert_error(
        app.send("/v1/group", &json!({"userId":"u"})),
        400,
        "missing_field",
        Some("groupId"),
    );
    assert_error(
        app.send(
            "/v1/batch",
            &json!({"batch":[{"type":"purchase","userId":"u"}]}),
        ),
        400,
        "unknown_call_type",
        Some("batch[0].type"),
    );
    assert_error(
        app.send("/v1/batch", &json!({"batch":{}})),
        400,
        "invalid_field",
        Some("batch"),
    );
    assert_error(
        app.send(
            "/v1/batch",
            &json!({"batch":[{"type":"track","userId":"u","event":"E","context":{"ip":[1]}}]}),
        ),
        400,
        "invalid_field",
        Some("batch[0].context.ip"),
    );
    // Sizes: Segment's limits.
    let big = "x".repeat(33 * 1024);
    assert_error(
        app.send(
            "/v1/track",
            &json!({"userId":"u","event":"E","properties":{"p":big}}),
        ),
        413,
        "event_too_large",
        None,
    );
    assert_error(
        app.send(
            "/v1/batch",
            &json!({"batch":[{"type":"track","userId":"u","event":"E","properties":{"p":big}}]}),
        ),
        413,
        "event_too_large",
        Some("batch[0]"),
    );
    let many: Vec<Value> = (0..30).map(|i| json!({"type":"track","userId":"u","event":"E","messageId":format!("m{i}"),"properties":{"p":"y".repeat(20 * 1024)}})).collect();
    let r = app.send("/v1/batch", &json!({"batch": many}));
    assert_eq!(r.status(), 413);
    // Nothing of any refused request was stored.
    assert_error(app.get("/v1/profiles/u"), 404, "not_found", None);
});

parity_test!(every_refusal_is_a_json_error_even_the_routers_own, |db| {
    let app = spawn_app(&db);
    let admin = |method: reqwest::Method, path: &str| {
        app.client
            .request(method, format!("{}{path}", app.base))
            .bearer_auth(&app.admin)
    };
    // What axum answers by itself: no route, a method the route does not take, a body over
    // the limit, an undecodable path.
    assert_error(app.get("/v1/no-such-thing"), 404, "no_such_endpoint", None);
    let r = admin(reqwest::Method::DELETE, "/v1/track")
        .send()
        .expect("send");
    assert_eq!(
        r.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST"),
        "the 405 keeps its Allow header"
    );
    assert_error(r, 405, "method_not_allowed", None);
    let huge = "x".repeat(consentric_model::MAX_BATCH_BYTES + 1);
    assert_error(
        admin(reqwest::Method::PUT, "/v1/consent/c1")
            .header("content-type", "application/json")
            .body(huge)
            .send()
            .expect("send"),
        413,
        "body_too_large",
        None,
    );
    assert_error(app.get("/v1/profiles/%FF"), 400, "invalid_path", Some("id"));
    // Query parameters: missing and mistyped ones are named.
    assert_error(
        app.get("/v1/profiles/someone/view"),
        400,
        "invalid_query",
        Some("purpose"),
    );
    assert_error(
        app.get("/v1/profiles/someone/events?limit=many"),
        400,
        "invalid_query",
        Some("limit"),
    );
    assert_error(
        app.get("/v1/dsr?overdue=maybe"),
        400,
        "invalid_query",
        Some("overdue"),
    );
    // The data, not the request, stands in the way: a conflict, not a bad request.
    assert_error(
        admin(reqwest::Method::POST, "/v1/lifecycle/fit")
            .send()
            .expect("send"),
        409,
        "conflict",
        None,
    );
    // Our own side's refusal of a clean-room run is not the partner's fault, and a run that
    // could not start changes nothing: not even the session we host under that id.
    assert_error(
        admin(reqwest::Method::POST, "/v1/cleanroom/joined/nosuch/run")
            .send()
            .expect("send"),
        404,
        "not_found",
        None,
    );
    let hosted: Value = admin(reqwest::Method::POST, "/v1/cleanroom/sessions")
        .body(json!({"partner": "p"}).to_string())
        .send()
        .expect("send")
        .json()
        .expect("json");
    let session = hosted["session"].as_str().expect("session id");
    assert_error(
        admin(
            reqwest::Method::POST,
            &format!("/v1/cleanroom/joined/{session}/run"),
        )
        .send()
        .expect("send"),
        404,
        "not_found",
        None,
    );
    let view: Value = app
        .get(&format!("/v1/cleanroom/sessions/{session}"))
        .json()
        .expect("json");
    assert_eq!(view["state"], "invited", "{view}");
});

parity_test!(nul_characters_are_refused_alike_on_both_stores, |db| {
    // PostgreSQL stores no U+0000 in text; SQLite would. Refused at the edge on both, naming
    // where, so the stores never differ (these answered 500 on PostgreSQL).
    let app = spawn_app(&db);
    assert_error(
        app.send("/v1/track", &json!({"userId":"n","event":"A\u{0}B"})),
        400,
        "invalid_field",
        Some("event"),
    );
    assert_error(
        app.send(
            "/v1/identify",
            &json!({"userId":"n","traits":{"pl\u{0}an":"gold"}}),
        ),
        400,
        "invalid_field",
        Some("traits.pl\\u0000an"),
    );
    assert_error(
        app.send(
            "/v1/batch",
            &json!({"batch":[{"type":"track","userId":"n","event":"E","properties":{"products":[{"product_id":"p\u{0}"}]}}]}),
        ),
        400,
        "invalid_field",
        Some("batch[0].properties.products[0].product_id"),
    );
    assert_error(
        app.post("/v1/cleanroom/sessions")
            .bearer_auth(&app.admin)
            .body(json!({"partner":"a\u{0}b"}).to_string())
            .send()
            .expect("send"),
        400,
        "invalid_field",
        Some("partner"),
    );
    assert_error(app.get("/v1/profiles/n"), 404, "not_found", None);
    assert_eq!(
        app.send(
            "/v1/identify",
            &json!({"userId":"n","traits":{"email":"n@example.com"}})
        )
        .status(),
        200
    );
    assert_error(
        app.client
            .put(format!("{}/v1/profiles/n/traits/em%00ail", app.base))
            .bearer_auth(&app.admin)
            .body(json!({"value":"x"}).to_string())
            .send()
            .expect("send"),
        400,
        "invalid_path",
        Some("name"),
    );
    assert_error(app.get("/v1/dsr/a%00b"), 400, "invalid_path", Some("id"));
    // What no edge check names is refused by the store itself, alike on both: a join's token,
    // an analyst's key id.
    assert_error(
        app.post("/v1/cleanroom/joined")
            .bearer_auth(&app.admin)
            .body(
                json!({"host_url":"https://partner.example","session":"abc123","partner":"p",
                    "token": format!("{}\u{0}", "0".repeat(40))})
                .to_string(),
            )
            .send()
            .expect("send"),
        400,
        "invalid_text",
        None,
    );
    assert_error(
        app.post("/v1/analytics/grants")
            .bearer_auth(&app.admin)
            .body(json!({"analyst":"k\u{0}","rho":1.0}).to_string())
            .send()
            .expect("send"),
        400,
        "invalid_text",
        None,
    );
});

parity_test!(a_batch_with_one_bad_event_stores_nothing, |db| {
    let app = spawn_app(&db);
    let batch = json!({"batch": [
        {"type":"identify","userId":"good-1","traits":{"plan":"pro"}},
        {"type":"track","userId":"good-2","event":"Order Completed","properties":{"revenue":5}},
        {"type":"track","userId":"bad","properties":{}},
    ]});
    assert_error(
        app.send("/v1/batch", &batch),
        400,
        "missing_field",
        Some("batch[2].event"),
    );
    assert_error(app.get("/v1/profiles/good-1"), 404, "not_found", None);
    assert_error(app.get("/v1/profiles/good-2"), 404, "not_found", None);
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .expect("metrics")
        .text()
        .expect("text");
    assert!(
        metrics.contains(r#"consentric_events_rejected_total{reason="missing_field"} 3"#),
        "{metrics}"
    );
});

// ---------------------------------------------------------------- idempotency and operations

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

// ---------------------------------------------------------------- consent

parity_test!(
    purposes_are_public_and_consent_is_read_and_written_by_admins,
    |db| {
        let app = spawn_app(&db);
        let purposes: Value = app
            .client
            .get(format!("{}/v1/purposes", app.base))
            .send()
            .expect("send")
            .json()
            .expect("json");
        let ids: Vec<&str> = purposes["purposes"]
            .as_array()
            .expect("list")
            .iter()
            .map(|p| p["id"].as_str().expect("id"))
            .collect();
        assert!(
            ids.contains(&"marketing.ads_sharing") && ids.contains(&"essential"),
            "{ids:?}"
        );
        assert_eq!(
            app.send("/v1/identify", &json!({"userId":"c1"})).status(),
            200
        );

        let put = |body: &str| {
            app.client
                .put(format!("{}/v1/consent/c1", app.base))
                .bearer_auth(&app.admin)
                .body(body.to_owned())
                .send()
                .expect("send")
        };
        assert_error(
            put(r#"{"purposes":{"astrology":"granted"}}"#),
            400,
            "invalid_field",
            Some("purposes.astrology"),
        );
        assert_error(put(r#"{"purposes":"#), 400, "malformed_json", None);
        let unknown = app
            .client
            .put(format!("{}/v1/consent/nobody", app.base))
            .bearer_auth(&app.admin)
            .body(r#"{"purposes":{"analytics":"granted"}}"#)
            .send()
            .expect("send");
        assert_error(unknown, 404, "not_found", None);
        let as_writer = app
            .client
            .put(format!("{}/v1/consent/c1", app.base))
            .bearer_auth(&app.write)
            .body(r#"{"purposes":{"analytics":"granted"}}"#)
            .send()
            .expect("send");
        assert_error(as_writer, 403, "forbidden", None);

        let view: Value = put(r#"{"purposes":{"analytics":"granted","marketing.email":"denied"}}"#)
            .json()
            .expect("json");
        let analytics = view["purposes"]
            .as_array()
            .expect("p")
            .iter()
            .find(|p| p["purpose"] == "analytics")
            .expect("analytics")
            .clone();
        assert_eq!(
            (
                analytics["has_basis"].as_bool(),
                analytics["source"].as_str()
            ),
            (Some(true), Some("api"))
        );
        let history: Value = app.get("/v1/consent/c1/history").json().expect("json");
        assert_eq!(history["history"].as_array().expect("h").len(), 2);
    }
);

parity_test!(
    the_sec_gpc_header_opts_the_customer_out_of_sale_and_share,
    |db| {
        let app = spawn_app(&db);
        let r = app
            .post("/v1/track")
            .basic_auth(&app.write, Some(""))
            .header("sec-gpc", "1")
            .body(json!({"userId":"g1","event":"E"}).to_string())
            .send()
            .expect("send");
        assert_eq!(r.status(), 200);
        let view: Value = app.get("/v1/consent/g1").json().expect("json");
        let ads = view["purposes"]
            .as_array()
            .expect("p")
            .iter()
            .find(|p| p["purpose"] == "marketing.ads_sharing")
            .expect("ads")
            .clone();
        assert_eq!(
            (
                ads["decision"].as_str(),
                ads["source"].as_str(),
                ads["has_basis"].as_bool()
            ),
            (Some("denied"), Some("gpc"), Some(false))
        );
        // A malformed TC string is a 400 naming the field, and nothing is stored.
        let r = app.send(
            "/v1/track",
            &json!({"userId":"g2","event":"E","context":{"consent":{"tcfString":"###"}}}),
        );
        assert_error(r, 400, "invalid_field", Some("context.consent.tcfString"));
        assert_error(app.get("/v1/profiles/g2"), 404, "not_found", None);
    }
);

parity_test!(a_purpose_scoped_view_goes_through_the_gate, |db| {
    let app = spawn_app(&db);
    let identify = json!({"userId":"v1","traits":{"email":"v@example.com","logins":4},
        "context":{"consent":{"categoryPreferences":{"Personalization":true}}}});
    assert_eq!(app.send("/v1/identify", &identify).status(), 200);
    let view: Value = app
        .get("/v1/profiles/v1/view?purpose=personalization")
        .json()
        .expect("json");
    assert_eq!(view["purpose"], "personalization");
    let names: Vec<&str> = view["traits"]
        .as_array()
        .expect("traits")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["logins"]);
    assert_error(
        app.get("/v1/profiles/v1/view?purpose=marketing.email"),
        403,
        "no_legal_basis",
        Some("purpose"),
    );
    assert_error(
        app.get("/v1/profiles/v1/view?purpose=astrology"),
        400,
        "invalid_field",
        Some("purpose"),
    );
});

parity_test!(every_admin_read_of_a_profile_is_audited, |db| {
    let app = spawn_app(&db);
    assert_eq!(
        app.send(
            "/v1/identify",
            &json!({"userId":"r9","traits":{"email":"r9@example.com"}})
        )
        .status(),
        200
    );
    for path in [
        "/v1/profiles/r9",
        "/v1/profiles/r9/events",
        "/v1/profiles/r9/identities",
    ] {
        assert_eq!(app.get(path).status(), 200, "{path}");
    }
    let engine = Engine::new(
        db.store(),
        Arc::new(FixedClock::new(at("2024-06-01T00:00:00Z"))),
    );
    let v = engine.verify_audit().expect("verify");
    assert_eq!(
        (v.records, v.first_break),
        (3, None),
        "one audit record per read"
    );
});

parity_test!(delete_erases_a_customer_with_a_signed_receipt, |db| {
    let app = spawn_app(&db);
    let identify = json!({"userId":"e1","traits":{"email":"e1@example.com"}});
    assert_eq!(app.send("/v1/identify", &identify).status(), 200);
    let url = format!("{}/v1/profiles/e1", app.base);
    assert_eq!(
        app.client
            .delete(&url)
            .bearer_auth(&app.write)
            .send()
            .expect("request")
            .status(),
        403,
        "a write key cannot erase"
    );
    let export: Value = app.get("/v1/profiles/e1/export").json().expect("export");
    assert_eq!(export["events"].as_array().expect("events").len(), 1);
    assert_eq!(export["events"][0]["traits"]["email"], "e1@example.com");
    let zipped = app.get("/v1/profiles/e1/export?format=zip");
    assert_eq!(zipped.status(), 200);
    assert_eq!(
        zipped.headers()["content-type"].to_str().expect("type"),
        "application/zip"
    );
    let bytes = zipped.bytes().expect("body");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a zip");
    let mut events = String::new();
    std::io::Read::read_to_string(
        &mut archive.by_name("events.csv").expect("events.csv"),
        &mut events,
    )
    .expect("csv");
    assert_eq!(events.lines().count(), 2);
    assert_error(
        app.get("/v1/profiles/e1/export?format=xml"),
        400,
        "invalid_field",
        Some("format"),
    );
    let erase = || {
        app.client
            .delete(&url)
            .bearer_auth(&app.admin)
            .send()
            .expect("request")
    };
    let first = erase();
    assert_eq!(first.status(), 200);
    let receipt: Value = first.json().expect("receipt");
    let body: Value =
        serde_json::from_str(receipt["body"].as_str().expect("body")).expect("signed body");
    assert_eq!(body["erased"]["events"], 1);
    assert_eq!(app.get("/v1/profiles/e1").status(), 404);
    assert_eq!(app.get("/v1/profiles/e1/export").status(), 404);
    let again: Value = erase().json().expect("receipt");
    assert_eq!(again, receipt, "erasing twice returns the same receipt");
    // A late event for the erased customer is acknowledged and dropped.
    assert_eq!(app.send("/v1/identify", &identify).status(), 200);
    assert_eq!(app.get("/v1/profiles/e1").status(), 404);
});

parity_test!(
    lifecycle_endpoints_serve_stages_scores_and_the_summary,
    |db| {
        let app = spawn_app(&db);
        // Six customers buying with consent to analytics and personalisation, one without.
        let mut batch = Vec::new();
        for c in 0..7 {
            let user = format!("l{c}");
            for k in 0..=(c % 3) {
                let mut e = json!({"type": "track", "event": "Order Completed", "userId": user,
                "messageId": format!("{user}-{k}"),
                "timestamp": format!("2024-0{}-1{}T10:00:00Z", 1 + k, c),
                "properties": {"revenue": 20 + c}});
                if k == 0 && c < 6 {
                    e["context"] = json!({"consent": {"categoryPreferences":
                    {"analytics": true, "personalization": true}}});
                }
                batch.push(e);
            }
        }
        assert_eq!(
            app.send("/v1/batch", &json!({ "batch": batch })).status(),
            200
        );
        let stage = |id: &str| -> Value {
            let r = app.get(&format!("/v1/customers/{id}/lifecycle"));
            assert_eq!(r.status(), 200, "{id}");
            r.json().expect("json")
        };
        let v = stage("l2");
        assert_eq!(v["stage"], "engagement");
        assert_eq!(v["rule"], "repeat-buyer");
        // A batch is one transaction: the customer is placed once, at its end.
        assert_eq!(v["history"].as_array().expect("history").len(), 1);
        assert_eq!(v["history"][0]["rule"], "repeat-buyer");
        assert!(v["scores"].is_null(), "no scores before a fit: {v}");
        // The customer without consent: 403 naming the missing basis, and left out of the summary.
        assert_error(
            app.get("/v1/customers/l6/lifecycle"),
            403,
            "no_legal_basis",
            None,
        );
        assert_error(
            app.get("/v1/customers/nobody/lifecycle"),
            404,
            "not_found",
            None,
        );
        let fit = app
            .post("/v1/lifecycle/fit")
            .bearer_auth(&app.admin)
            .send()
            .expect("request");
        assert_eq!(fit.status(), 200);
        let fit: Value = fit.json().expect("json");
        assert_eq!(
            (fit["customers"].as_u64(), fit["left_out"].as_u64()),
            (Some(6), Some(1))
        );
        let v = stage("l2");
        let p = v["scores"]["p_alive"]
            .as_f64()
            .expect("p_alive after a fit");
        assert!((0.0..=1.0).contains(&p));
        assert!(v["rfm"]["recency"].as_u64().is_some());
        let summary: Value = app.get("/v1/lifecycle/summary").json().expect("json");
        assert_eq!(summary["left_out"], 1);
        assert_eq!(summary["funnel"]["engagement"], 4);
        assert_eq!(summary["funnel"]["onboarding"], 2);
        assert!(summary["models"].as_array().expect("models").len() >= 2);
        // A write key reads nothing here.
        let r = app
            .client
            .get(format!("{}/v1/lifecycle/summary", app.base))
            .bearer_auth(&app.write)
            .send()
            .expect("request");
        assert_eq!(r.status(), 403);
    }
);

// Decisions run on the server's workers while the store's writes are quick, on blocking
// threads otherwise (PostgreSQL, slow flushes): either way, concurrent requests for one
// customer must count each chosen action once, so a cooldown lets exactly one through.
parity_test!(concurrent_decisions_over_http_respect_a_cooldown, |db| {
    let app = spawn_app(&db);
    let consent = json!({"consent": {"categoryPreferences":
        {"personalization": true, "marketing.email": true}}});
    let batch = json!({"batch": [
        {"type": "track", "event": "Product Viewed", "userId": "eve", "messageId": "eve-1",
         "timestamp": "2024-05-14T09:00:00Z", "properties": {"product_id": "a1"},
         "context": consent}]});
    assert_eq!(app.send("/v1/batch", &batch).status(), 200);
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let (base, admin) = (app.base.clone(), app.admin.clone());
            std::thread::spawn(move || {
                let client = Client::new();
                (0..4)
                    .map(|_| {
                        let r = client
                            .post(format!("{base}/v1/decisions/user_id:eve?limit=1"))
                            .bearer_auth(&admin)
                            .send()
                            .expect("request");
                        assert_eq!(r.status(), 200);
                        let d: Value = r.json().expect("json");
                        d["action"]["name"].as_str().map(str::to_owned)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let chosen: Vec<Option<String>> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("thread"))
        .collect();
    let guides = chosen
        .iter()
        .filter(|a| a.as_deref() == Some("onboarding-guide"))
        .count();
    assert_eq!(guides, 1, "a 2-day cooldown lets one through: {chosen:?}");
    // A preview (GET) shows the cooldown without spending anything.
    for _ in 0..3 {
        let d: Value = app
            .get("/v1/decisions/user_id:eve?limit=1")
            .json()
            .expect("json");
        assert_ne!(d["action"]["name"], "onboarding-guide", "{d}");
    }
});

parity_test!(decisions_training_and_segments_over_http, |db| {
    let app = spawn_app(&db);
    // Eight customers viewing pairs of products with consent to personalisation; one
    // customer without it.
    let mut batch = Vec::new();
    for c in 0..8 {
        let user = format!("d{c}");
        let pair = if c < 5 { ["x1", "x2"] } else { ["y1", "y2"] };
        for (k, item) in pair.iter().enumerate() {
            let mut e = json!({"type": "track", "event": "Product Viewed", "userId": user,
                    "messageId": format!("{user}-{k}"), "timestamp": "2024-05-01T10:00:00Z",
                    "properties": {"product_id": item}});
            if k == 0 {
                e["context"] =
                    json!({"consent": {"categoryPreferences": {"personalization": true}}});
            }
            batch.push(e);
        }
    }
    batch.push(json!({"type": "track", "event": "Product Viewed", "userId": "nope",
            "messageId": "nope-1", "timestamp": "2024-05-01T10:00:00Z", "properties": {"product_id": "y1"}}));
    batch.push(json!({"type": "track", "event": "Product Viewed", "userId": "fan",
            "messageId": "fan-1", "timestamp": "2024-05-02T10:00:00Z", "properties": {"product_id": "y1"},
            "context": {"consent": {"categoryPreferences": {"personalization": true}}}}));
    assert_eq!(
        app.send("/v1/batch", &json!({ "batch": batch })).status(),
        200
    );

    // Before training: a decision, but no items.
    let d: Value = app.get("/v1/decisions/fan").json().expect("json");
    assert_eq!(d["recommender"], "none");
    let train = app
        .post("/v1/recommenders/train")
        .bearer_auth(&app.admin)
        .send()
        .expect("request");
    assert_eq!(train.status(), 200);
    let train: Value = train.json().expect("json");
    assert_eq!(
        (train["customers"].as_u64(), train["left_out"].as_u64()),
        (Some(9), Some(1))
    );

    let r = app
        .post("/v1/decisions/user_id:fan?placement=home&limit=2")
        .bearer_auth(&app.admin)
        .send()
        .expect("request");
    assert_eq!(r.status(), 200);
    let d: Value = r.json().expect("json");
    assert_eq!(d["placement"], "home");
    assert_eq!(d["items"][0]["item"], "y2", "{d}");
    assert_eq!(d["items"][0]["because"], "y1");
    assert_eq!(d["explanation"]["personal"], true);
    assert_eq!(d["explanation"]["purpose"], "personalization");
    let d: Value = app.get("/v1/decisions/nope?limit=1").json().expect("json");
    assert_eq!(d["explanation"]["personal"], false);
    assert_eq!(d["items"][0]["item"], "x1", "the most popular item: {d}");
    assert_eq!(d["action"]["name"], "homepage-banner");

    // Bad input: JSON errors naming the problem.
    assert_error(
        app.get("/v1/decisions/fan?limit=0"),
        400,
        "invalid_field",
        Some("limit"),
    );
    assert_error(
        app.get("/v1/decisions/fan?limit=ten"),
        400,
        "invalid_query",
        None,
    );
    assert_error(
        app.get("/v1/decisions/fan?placement=a%20b"),
        400,
        "invalid_field",
        Some("placement"),
    );
    assert_error(
        app.get("/v1/decisions/fan?colour=red"),
        400,
        "invalid_query",
        None,
    );
    // A visitor with no profile: the non-personal answer.
    let stranger: Value = app.get("/v1/decisions/nobody").json().expect("json");
    assert_eq!(stranger["explanation"]["personal"], false);
    assert_eq!(stranger["profile_id"], "");

    // Segments: define, list, size, delete; refusals name the field.
    let put = |name: &str, body: &str| {
        app.client
            .put(format!("{}/v1/segments/{name}", app.base))
            .bearer_auth(&app.admin)
            .body(body.to_owned())
            .send()
            .expect("request")
    };
    let r = put(
        "viewers",
        r#"{"field": "event.Product Viewed", "op": "gte", "value": 2}"#,
    );
    assert_eq!(r.status(), 200);
    let list: Value = app.get("/v1/segments").json().expect("json");
    assert_eq!(list["segments"][0]["name"], "viewers");
    let p: Value = app
        .get("/v1/segments/viewers?limit=2")
        .json()
        .expect("json");
    assert_eq!(
        (
            p["size"].as_u64(),
            p["evaluated"].as_u64(),
            p["left_out"].as_u64()
        ),
        (Some(8), Some(9), Some(1))
    );
    assert_eq!(p["members"].as_array().map(Vec::len), Some(2));
    let m: Value = app
        .get("/v1/segments/viewers/members?limit=3")
        .json()
        .expect("json");
    assert_eq!(
        (m["size"].as_u64(), m["members"].as_array().map(Vec::len)),
        (Some(8), Some(3)),
        "{m}"
    );
    let r = app
        .post("/v1/segments/refresh?everyone=true")
        .bearer_auth(&app.admin)
        .send()
        .expect("request");
    assert_eq!(r.status(), 200);
    let r: Value = r.json().expect("json");
    assert_eq!(
        (r["joined"].as_u64(), r["left"].as_u64()),
        (Some(0), Some(0)),
        "{r}"
    );
    assert_error(put("bad", "{not json"), 400, "malformed_json", None);
    assert_error(
        put("bad", r#"{"field": "trait.gender", "op": "exists"}"#),
        400,
        "invalid_field",
        Some("definition"),
    );
    assert_error(
        put("bad name", r#"{"field": "orders", "op": "gt", "value": 1}"#),
        400,
        "invalid_field",
        Some("name"),
    );
    let proposals: Value = app
        .get("/v1/segments/proposals?max_k=3")
        .json()
        .expect("json");
    assert!(proposals["customers"].as_u64().is_some(), "{proposals}");
    let del = app
        .client
        .delete(format!("{}/v1/segments/viewers", app.base))
        .bearer_auth(&app.admin)
        .send()
        .expect("request");
    assert_eq!(del.status(), 204);
    assert_error(app.get("/v1/segments/viewers"), 404, "not_found", None);

    // Write keys decide nothing; the OpenAPI document lists the endpoints.
    let r = app
        .client
        .get(format!("{}/v1/decisions/fan", app.base))
        .bearer_auth(&app.write)
        .send()
        .expect("request");
    assert_eq!(r.status(), 403);
    let doc: Value = app.get("/openapi.json").json().expect("json");
    for path in [
        "/v1/decisions/{customer}",
        "/v1/segments/{name}",
        "/v1/segments/{name}/members",
        "/v1/segments/refresh",
        "/v1/recommenders/train",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
});

parity_test!(
    analytics_over_http_for_analyst_keys_within_granted_budgets,
    |db| {
        let app = spawn_app(&db);
        let batch: Vec<Value> = (0..12)
            .map(|i| {
                json!({"type": "track", "event": "Order Completed", "userId": format!("a{i}"),
            "messageId": format!("a{i}"), "timestamp": "2024-03-01T00:00:00Z",
            "properties": {"revenue": 20},
            "context": {"consent": {"categoryPreferences": {"analytics": true}}}})
            })
            .collect();
        assert_eq!(
            app.send("/v1/batch", &json!({ "batch": batch })).status(),
            200
        );
        // The analyst key has no budget until an admin key grants one.
        let (analyst_id, analyst_secret) = (app.analyst_id.clone(), app.analyst.clone());
        let refused = app
            .post("/v1/analytics/query")
            .bearer_auth(&analyst_secret)
            .body(json!({"query": "count", "epsilon": 0.1}).to_string())
            .send()
            .expect("request");
        assert_error(refused, 403, "budget_exceeded", None);
        let by_analyst = app
            .post("/v1/analytics/grants")
            .bearer_auth(&analyst_secret)
            .body(json!({"analyst": analyst_id, "rho": 1.0}).to_string())
            .send()
            .expect("request");
        assert_eq!(
            by_analyst.status(),
            403,
            "an analyst cannot grant themselves budget"
        );
        let grant = app
            .post("/v1/analytics/grants")
            .bearer_auth(&app.admin)
            .body(json!({"analyst": analyst_id, "rho": 1.0}).to_string())
            .send()
            .expect("request");
        assert_eq!(grant.status(), 200);
        let q = |body: Value, secret: &str| {
            app.post("/v1/analytics/query")
                .bearer_auth(secret)
                .body(body.to_string())
                .send()
                .expect("request")
        };
        let r = q(json!({"query": "count", "epsilon": 1.0}), &analyst_secret);
        assert_eq!(r.status(), 200);
        let r: Value = r.json().expect("json");
        assert_eq!(r["spent_rho"], 0.5);
        assert_eq!(r["noise"]["distribution"], "discrete_laplace");
        assert!(r["interval95"].as_f64().is_some());
        // A selection: the funnel's most populous stage, no counts released.
        let r = q(
            json!({"query": "top_k", "by": "stage", "k": 1, "rho": 0.1}),
            &analyst_secret,
        );
        assert_eq!(r.status(), 200);
        let r: Value = r.json().expect("json");
        assert_eq!(r["mechanism"], "exponential");
        assert_eq!(r["selected"].as_array().map(Vec::len), Some(1));
        assert!(r.get("bins").is_none() && r.get("noise").is_none());
        assert_error(
            q(
                json!({"query": "funnel", "max_rows": 0, "epsilon": 0.1}),
                &analyst_secret,
            ),
            400,
            "invalid_field",
            Some("max_rows"),
        );
        assert_error(
            q(json!({"query": "count", "epsilon": 2.0}), &analyst_secret),
            403,
            "budget_exceeded",
            None,
        );
        assert_error(
            q(json!({"query": "count", "epsilon": -1}), &analyst_secret),
            400,
            "invalid_field",
            Some("epsilon"),
        );
        assert_error(
            q(
                json!({"query": "count", "epsilon": 1, "colour": 1}),
                &analyst_secret,
            ),
            400,
            "malformed_json",
            None,
        );
        // A write key cannot ask; an analyst key cannot read profiles.
        assert_eq!(
            q(json!({"query": "count", "epsilon": 0.1}), &app.write).status(),
            403
        );
        let r = app
            .client
            .get(format!("{}/v1/profiles/a1", app.base))
            .bearer_auth(&analyst_secret)
            .send()
            .expect("request");
        assert_eq!(r.status(), 403);
        let b: Value = app
            .client
            .get(format!("{}/v1/analytics/budget", app.base))
            .bearer_auth(&analyst_secret)
            .send()
            .expect("request")
            .json()
            .expect("json");
        assert_eq!(
            b["budgets"][0]["spent_rho"], 0.6,
            "a count at ε = 1, a top-1 at ρ = 0.1"
        );
    }
);
