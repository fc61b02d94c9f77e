//! Decisions, recommenders and segments over HTTP.

use consentric_testkit::parity_test;
use reqwest::blocking::Client;
use serde_json::{json, Value};

use crate::app::{assert_error, spawn_app};

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
