//! What an attacker holding the public write key, or no key at all, once could do: each test
//! here failed before its defect was closed.

use consentric_testkit::parity_test;
use serde_json::json;

use crate::app::{assert_error, spawn_app, trait_of};

parity_test!(out_of_range_times_are_refused_naming_the_field, |db| {
    let app = spawn_app(&db);
    let r = app.send(
        "/v1/track",
        &json!({"userId":"t1","event":"E","originalTimestamp":"+200000-01-01T00:00:00",
                "sentAt":"-100000-01-01T00:00:00"}),
    );
    assert_error(r, 400, "invalid_field", Some("originalTimestamp"));
    let r = app.send(
        "/v1/batch",
        &json!({"sentAt":"-100000-01-01T00:00:00",
                "batch":[{"type":"track","userId":"t1","event":"E","timestamp":"2024-01-01T00:00:00Z"}]}),
    );
    assert_error(r, 400, "invalid_field", Some("sentAt"));
    // The server is still there and stored nothing.
    assert_eq!(app.get("/v1/profiles/t1").status(), 404);
});

parity_test!(
    a_far_future_identify_pins_nothing_and_rectification_wins,
    |db| {
        let app = spawn_app(&db);
        let pinned = json!({"userId":"p1","traits":{"email":"attacker@example.com"},
                        "timestamp":"9999-01-01T00:00:00Z"});
        assert_eq!(app.send("/v1/identify", &pinned).status(), 200);
        // Dated at arrival plus the tolerance; the client's time is kept as sent.
        let events = app
            .get("/v1/profiles/p1/events")
            .json::<serde_json::Value>()
            .expect("json");
        let stored = &events["events"][0]["event"];
        assert_eq!(
            stored["originalTimestamp"], "9999-01-01T00:00:00.000Z",
            "{stored}"
        );
        assert_eq!(stored["timestamp"], "2024-05-14T10:26:33.517Z", "{stored}");

        // A later identify (the clock past the tolerance) replaces it.
        app.clock
            .set(consentric_testkit::at("2024-05-14T10:31:33.517Z"));
        let later = json!({"userId":"p1","traits":{"email":"owner@example.com"}});
        assert_eq!(app.send("/v1/identify", &later).status(), 200);
        assert_eq!(trait_of(&app.profile("p1"), "email"), "owner@example.com");

        // Within the tolerance a value can still be dated ahead; rectification wins over it.
        let ahead = json!({"userId":"p1","traits":{"email":"ahead@example.com"},
                       "timestamp":"9999-01-01T00:00:00Z"});
        assert_eq!(app.send("/v1/identify", &ahead).status(), 200);
        assert_eq!(trait_of(&app.profile("p1"), "email"), "ahead@example.com");
        let r = app
            .client
            .put(format!("{}/v1/profiles/p1/traits/email", app.base))
            .bearer_auth(&app.admin)
            .json(&json!({"value":"right@example.com"}))
            .send()
            .expect("request");
        assert_eq!(r.status(), 200);
        assert_eq!(trait_of(&app.profile("p1"), "email"), "right@example.com");
    }
);
