//! Profiles over HTTP: every admin read audited; export and erasure with a signed receipt.

use std::sync::Arc;

use consentric_engine::{Engine, FixedClock};
use consentric_testkit::{at, parity_test};
use serde_json::{json, Value};

use crate::app::{assert_error, spawn_app};

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
