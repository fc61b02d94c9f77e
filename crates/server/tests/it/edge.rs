//! The public edge against slow and flooding clients, over real sockets: connections held open
//! and half-sent requests are cut off, a flood from one address does not lock others out, load
//! beyond what the server takes is refused with 429 and `Retry-After`, and every refusal is
//! JSON. No assertion here is about speed: the waits are for things that must happen at all.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use consentric_engine::ServerSettings;
use consentric_testkit::TestDb;
use serde_json::{json, Value};

use crate::app::{spawn_app_full, TestApp};

fn app_with(db: &TestDb, server: ServerSettings) -> TestApp {
    spawn_app_full(db, |e| e, server)
}

fn address(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// Everything the server sends on `stream` until it closes it (or 20 s pass).
fn read_until_closed(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A client bound to another loopback address than the flood's 127.0.0.1.
fn other_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

#[test]
fn a_flood_of_half_sent_requests_neither_exhausts_the_server_nor_locks_others_out() {
    let db = TestDb::sqlite();
    let app = app_with(
        &db,
        ServerSettings {
            header_timeout_seconds: 1,
            max_connections: 64,
            max_connections_per_client: 16,
            ..ServerSettings::default()
        },
    );
    // 100 connections from one address, each with half a request head.
    let mut flood: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut s = TcpStream::connect(address(&app)).expect("connect");
            let _ = s.write_all(b"POST /v1/batch HTTP/1.1\r\nhost: x\r\n");
            s
        })
        .collect();
    // Another client is still answered while the flood holds its connections.
    let health = other_client()
        .get(format!("{}/healthz", app.base))
        .send()
        .expect("healthz answered during the flood");
    assert_eq!(health.status(), 200);
    // The flood's connections beyond its share were refused with JSON; the rest are closed
    // once the head timeout passes.
    let answers: Vec<String> = flood.iter_mut().map(read_until_closed).collect();
    let refused = answers
        .iter()
        .filter(|a| a.starts_with("HTTP/1.1 503"))
        .count();
    assert!(refused >= 100 - 16, "{refused} refused");
    for a in answers.iter().filter(|a| a.starts_with("HTTP/1.1 503")) {
        let body = a.split("\r\n\r\n").nth(1).expect("a body");
        let v: Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(v["error"]["code"], "too_many_connections");
        assert!(a.to_ascii_lowercase().contains("retry-after: 1"), "{a}");
    }
    // And the flood's own address is served again once it left.
    assert_eq!(app.get("/healthz").status(), 200);
}

#[test]
fn a_body_dripped_slower_than_the_body_timeout_is_refused_with_408() {
    let db = TestDb::sqlite();
    let app = app_with(
        &db,
        ServerSettings {
            body_timeout_seconds: 1,
            ..ServerSettings::default()
        },
    );
    let mut s = TcpStream::connect(address(&app)).expect("connect");
    let head = format!(
        "POST /v1/track HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{",
        app.write
    );
    s.write_all(head.as_bytes()).expect("head");
    let answer = read_until_closed(&mut s);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
}

#[test]
fn requests_beyond_the_in_flight_cap_get_429_with_retry_after_and_nothing_is_lost() {
    let db = TestDb::sqlite();
    let app = app_with(
        &db,
        ServerSettings {
            max_in_flight: 2,
            body_timeout_seconds: 30,
            ..ServerSettings::default()
        },
    );
    // Two requests hold both places: their bodies are not finished.
    let hold = |_| {
        let mut s = TcpStream::connect(address(&app)).expect("connect");
        let head = format!(
            "POST /v1/track HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{",
            app.write
        );
        s.write_all(head.as_bytes()).expect("head");
        s
    };
    let held: Vec<TcpStream> = (0..2).map(hold).collect();
    // Probes are never shed; ingest beyond the two places is.
    let (mut shed, mut acknowledged) = (None, 0);
    for i in 0..200 {
        assert_eq!(app.get("/healthz").status(), 200);
        let r = app.send(
            "/v1/track",
            &json!({"userId":"o1","event":"E","messageId":format!("m{i}")}),
        );
        if r.status() == 429 {
            shed = Some(r);
            break;
        }
        assert_eq!(r.status(), 200);
        acknowledged += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = shed.expect("a request over the cap is refused");
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().expect("JSON");
    assert_eq!(body["error"]["code"], "overloaded");
    drop(held);
    // Every acknowledged event is there; the refused one is not, and is accepted on retry
    // once the held requests are gone (as Retry-After tells a client to).
    let mut retried = 429;
    for _ in 0..100 {
        retried = app
            .send(
                "/v1/track",
                &json!({"userId":"o1","event":"E","messageId":"retry"}),
            )
            .status()
            .as_u16();
        if retried != 429 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(retried, 200);
    assert_eq!(app.events("o1").len(), acknowledged + 1);
}

#[test]
fn one_client_spending_a_browser_keys_rate_does_not_silence_another() {
    let db = TestDb::sqlite();
    let app = app_with(
        &db,
        ServerSettings {
            browser_requests_per_second: 1,
            ..ServerSettings::default()
        },
    );
    let mut limited = None;
    for i in 0..20 {
        let r = app.send_from_browser(
            "/v1/track",
            &json!({"userId":"r1","event":"E","messageId":format!("r{i}")}),
        );
        if r.status() == 429 {
            limited = Some((i, r));
            break;
        }
        assert_eq!(r.status(), 200);
    }
    let (sent, r) = limited.expect("the burst ends");
    assert!(
        sent >= 5,
        "a burst of five seconds' worth is allowed, got {sent}"
    );
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().expect("JSON");
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another visitor with the same key is served.
    let other = other_client()
        .post(format!("{}/v1/track", app.base))
        .basic_auth(&app.browser, Some(""))
        .json(&json!({"userId":"r2","event":"E"}))
        .send()
        .expect("request");
    assert_eq!(other.status(), 200);
    // A server key and an admin key are not browser keys, and are not limited this way.
    for i in 0..10 {
        let r = app.send(
            "/v1/track",
            &json!({"userId":"r4","event":"E","messageId":format!("s{i}")}),
        );
        assert_eq!(r.status(), 200);
    }
    for i in 0..10 {
        let r = app
            .post("/v1/track")
            .bearer_auth(&app.admin)
            .json(&json!({"userId":"r3","event":"E","messageId":format!("a{i}")}))
            .send()
            .expect("request");
        assert_eq!(r.status(), 200);
    }
}

#[test]
fn an_overlong_target_and_too_many_headers_are_refused_with_json() {
    let db = TestDb::sqlite();
    let app = app_with(&db, ServerSettings::default());
    let long = format!("/v1/profiles/{}", "a".repeat(20_000));
    let r = app.get(&long);
    assert_eq!(r.status(), 414);
    let v: Value = r.json().expect("JSON");
    assert_eq!(v["error"]["code"], "uri_too_long");
    let mut request = app.client.get(format!("{}/healthz", app.base));
    for i in 0..150 {
        request = request.header(format!("x-h{i}"), "v");
    }
    let r = request.send().expect("request");
    assert_eq!(r.status(), 431);
    let v: Value = r.json().expect("JSON");
    assert_eq!(v["error"]["code"], "headers_too_large");
}

#[test]
fn refusals_the_http_parser_makes_itself_are_json_too() {
    let db = TestDb::sqlite();
    let app = app_with(&db, ServerSettings::default());
    // Beyond what hyper parses at all: a 70 KiB target, 600 header fields.
    let long = format!(
        "GET /v1/profiles/{} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    let many: String = (0..600).map(|i| format!("x-h{i}: v\r\n")).collect();
    let crowded = format!("GET /healthz HTTP/1.1\r\nhost: x\r\n{many}\r\n");
    for (request, status, code) in [
        (long, "414", "uri_too_long"),
        (crowded, "431", "headers_too_large"),
    ] {
        let mut s = TcpStream::connect(address(&app)).expect("connect");
        s.write_all(request.as_bytes()).expect("request");
        let answer = read_until_closed(&mut s);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{answer}"
        );
        assert!(
            answer.contains("content-type: application/json"),
            "{answer}"
        );
        let body = answer.split("\r\n\r\n").nth(1).expect("a body");
        let v: Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(v["error"]["code"], code);
    }
}
