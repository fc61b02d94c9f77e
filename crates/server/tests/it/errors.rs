//! Bad input: every refusal is a JSON error naming the field, the router's own included, and
//! nothing of a refused request is stored.

use consentric_testkit::parity_test;
use serde_json::{json, Value};

use crate::app::{assert_error, fixture_json, spawn_app};

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
