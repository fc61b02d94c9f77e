//! Segment-compatible ingest against the specification's own examples and what the SDKs send:
//! every call at its path, clock skew corrected, analytics.js's short paths and body write keys,
//! gzip bodies.

use std::io::Write;

use consentric_testkit::{at, parity_test};
use serde_json::{json, Value};

use crate::app::{assert_error, fixture, fixture_json, spawn_app, trait_of};

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
        ("rudderstack_python_batch.json", "/v1/batch", 2),
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
    // rudder-sdk-python's identify carries its traits only in `context.traits`.
    let p = app.profile("rs-py-42");
    assert_eq!(trait_of(&p, "email"), "joanna@example.com");
    assert_eq!(trait_of(&p, "name"), "Joanna Lumley");
    assert_eq!(p["counters"]["events"], 2);
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
