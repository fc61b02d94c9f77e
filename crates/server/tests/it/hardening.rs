//! What an attacker holding the public write key, or no key at all, may try: out-of-range and
//! far-future times, clean-room bodies without a token or over the session, a key of the wrong
//! scope. Each test shows the attempt refused.

use consentric_testkit::parity_test;
use serde_json::json;

use crate::app::{assert_error, spawn_app, trait_of, TestApp};

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

/// Sends a request head announcing `announced` body bytes and `sent` of them, then waits for
/// an answer: the status line, or `None` if none came within five seconds.
fn status_before_the_body_ends(
    base: &str,
    path: &str,
    authorization: &str,
    announced: usize,
    sent: usize,
) -> Option<String> {
    use std::io::{BufRead, BufReader, Write};
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {address}\r\nauthorization: {authorization}\r\ncontent-type: application/json\r\ncontent-length: {announced}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("head");
    stream.write_all(&vec![b' '; sent]).expect("body");
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    (!line.is_empty()).then_some(line)
}

/// A clean-room invitation made by the admin: its session id and token.
fn invite(app: &TestApp) -> (String, String) {
    let invitation: serde_json::Value = app
        .post("/v1/cleanroom/sessions")
        .bearer_auth(&app.admin)
        .json(&json!({"partner":"p"}))
        .send()
        .expect("invite")
        .json()
        .expect("json");
    let field = |name: &str| invitation[name].as_str().expect(name).to_owned();
    (field("session"), field("token"))
}

parity_test!(a_clean_room_round_reads_no_body_before_its_token, |db| {
    let app = spawn_app(&db);
    let (session, _) = invite(&app);
    let path = format!("/v1/cleanroom/sessions/{session}/intersect");
    // 256 MiB announced, 1 KiB sent: refused at once, not after reading the rest.
    let line = status_before_the_body_ends(&app.base, &path, "Bearer wrong", 256 << 20, 1024);
    assert!(
        line.as_deref().is_some_and(|l| l.contains(" 401 ")),
        "{line:?}"
    );
    // No token at all: the same.
    let line = status_before_the_body_ends(&app.base, &path, "Basic eDo=", 256 << 20, 1024);
    assert!(
        line.as_deref().is_some_and(|l| l.contains(" 401 ")),
        "{line:?}"
    );
});

parity_test!(a_partner_may_send_no_more_than_its_session_can_use, |db| {
    let app = crate::app::spawn_app_with(&db, |engine| {
        engine
            .with_cleanroom(consentric_engine::cleanroom::CleanroomSettings {
                max_set: 10,
                min_set: 1,
                ..Default::default()
            })
            .expect("settings")
    });
    let (session, token) = invite(&app);
    // The scheme in lower case is the same scheme.
    let r = app
        .post(&format!("/v1/cleanroom/sessions/{session}/blinded"))
        .header("authorization", format!("bearer {token}"))
        .send()
        .expect("round 1");
    assert_eq!(r.status(), 200, "{:?}", r.text());
    // Ten points and room for keys fit in well under 100 KB; 1 MB is refused before it is read.
    let path = format!("/v1/cleanroom/sessions/{session}/intersect");
    let line = status_before_the_body_ends(
        &app.base,
        &path,
        &format!("Bearer {token}"),
        1 << 20,
        100 << 10,
    );
    assert!(
        line.as_deref().is_some_and(|l| l.contains(" 413 ")),
        "{line:?}"
    );
});

parity_test!(a_wrong_scope_is_named_with_the_key_presented, |db| {
    let app = spawn_app(&db);
    let r = app
        .client
        .get(format!("{}/v1/profiles/x", app.base))
        .bearer_auth(&app.write)
        .send()
        .expect("request");
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().expect("JSON");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("is a write key") && message.contains("needs an admin key"),
        "{message}"
    );
});
