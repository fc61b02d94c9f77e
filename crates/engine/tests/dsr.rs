//! The data-subject request workflow: verification by a one-time code, deadlines and their
//! extensions, processing once, on SQLite and PostgreSQL.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use consentric_engine::{DsrKind, Engine, EngineError, FixedClock, Outbox, ProfileRef, Regime};
use consentric_model::{parse_batch, Envelope, Identity, IdentityKind};
use consentric_testkit::{parity_test, TestDb};
use serde_json::{json, Value};

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, 1, 12, 0, 0)
        .single()
        .expect("time")
}

struct World {
    engine: Engine,
    clock: Arc<FixedClock>,
    outbox: Arc<Outbox>,
}

fn world(db: &TestDb) -> World {
    let clock = Arc::new(FixedClock::new(start()));
    let outbox = Arc::new(Outbox::default());
    let engine = Engine::new(db.store(), clock.clone()).with_notifier(outbox.clone());
    let env = Envelope {
        received_at: start(),
        request_id: "r".into(),
    };
    let batch = json!({"batch": [
        {"type":"identify","messageId":"d1","userId":"ada","anonymousId":"dev-1","traits":{"email":"ada@example.com"}},
        {"type":"track","messageId":"d2","userId":"ada","event":"Order Completed","properties":{"revenue":9.5}},
        {"type":"identify","messageId":"d3","userId":"bob","traits":{"email":"bob@example.com"}},
    ]});
    engine
        .ingest(
            parse_batch(batch.to_string().as_bytes(), &env)
                .expect("valid")
                .events,
        )
        .expect("ingest");
    World {
        engine,
        clock,
        outbox,
    }
}

fn user(v: &str) -> Identity {
    Identity {
        kind: IdentityKind::UserId,
        value: v.into(),
    }
}

/// The code in the last message sent.
fn code(outbox: &Outbox) -> String {
    let body = outbox.messages().last().expect("a message").body.clone();
    body.split("give this code: ")
        .nth(1)
        .expect("a code")
        .chars()
        .take(6)
        .collect()
}

parity_test!(
    an_erasure_request_is_verified_processed_once_and_shredded,
    |db| {
        let w = world(&db);
        let filed = w
            .engine
            .dsr_request(
                DsrKind::Erasure,
                Regime::Gdpr,
                &user("ada"),
                "ada@example.com",
                "key:t",
            )
            .expect("filed");
        assert_eq!(filed.status, "received");
        assert_eq!(filed.identity.as_deref(), Some("user_id:ada"));
        let due = DateTime::parse_from_rfc3339(&filed.due_at).expect("date");
        assert_eq!(due.with_timezone(&Utc), start() + Duration::days(30));
        assert_eq!(w.outbox.messages()[0].to, "ada@example.com");

        // Not verified yet: nothing can be processed.
        assert!(matches!(
            w.engine
                .dsr_process(&filed.request_id, "key:t", &mut Vec::new()),
            Err(EngineError::Invalid { .. })
        ));
        assert!(w
            .engine
            .find_profile(&ProfileRef::parse("ada").expect("r"))
            .is_ok());
        // A wrong code is refused and counted.
        let wrong = if code(&w.outbox) == "000000" {
            "111111"
        } else {
            "000000"
        };
        assert!(matches!(
            w.engine.dsr_verify(&filed.request_id, wrong, "key:t"),
            Err(EngineError::Invalid { field, .. }) if field == "code"
        ));
        let verified = w
            .engine
            .dsr_verify(&filed.request_id, &code(&w.outbox), "key:t")
            .expect("verified");
        assert_eq!(verified.status, "verified");

        let done = w
            .engine
            .dsr_process(&filed.request_id, "key:t", &mut Vec::new())
            .expect("processed");
        assert_eq!(done.status, "completed");
        let receipt = done.outcome.clone().expect("the receipt");
        assert!(w
            .engine
            .find_profile(&ProfileRef::parse("ada").expect("r"))
            .is_err());
        assert!(w
            .engine
            .find_profile(&ProfileRef::parse("bob").expect("r"))
            .is_ok());
        assert_eq!(done.identity, None, "the request's own key is destroyed");

        let again = w
            .engine
            .dsr_process(&filed.request_id, "key:t", &mut Vec::new())
            .expect("again");
        assert_eq!(
            again.outcome,
            Some(receipt),
            "the same receipt, erased once"
        );
        assert_eq!(w.engine.verify_audit().expect("audit").first_break, None);
    }
);

parity_test!(an_access_request_answers_with_the_export, |db| {
    let w = world(&db);
    let filed = w
        .engine
        .dsr_request(
            DsrKind::Access,
            Regime::Ccpa,
            &user("ada"),
            "ada@example.com",
            "key:t",
        )
        .expect("filed");
    let due = DateTime::parse_from_rfc3339(&filed.due_at).expect("date");
    assert_eq!(due.with_timezone(&Utc), start() + Duration::days(45));
    w.engine
        .dsr_verify(&filed.request_id, &code(&w.outbox), "key:t")
        .expect("verified");
    let mut doc = Vec::new();
    let done = w
        .engine
        .dsr_process(&filed.request_id, "key:t", &mut doc)
        .expect("processed");
    assert_eq!(done.outcome, Some(json!({"events": 2})));
    let doc: Value = serde_json::from_slice(&doc).expect("json");
    assert_eq!(doc["events"].as_array().expect("events").len(), 2);
    assert!(doc["profile"]["identities"]
        .as_array()
        .expect("identities")
        .iter()
        .any(|i| i["value"] == "ada"));
});

parity_test!(
    deadlines_extend_within_the_law_and_overdue_requests_are_listed,
    |db| {
        let w = world(&db);
        let filed = w
            .engine
            .dsr_request(
                DsrKind::Restriction,
                Regime::Gdpr,
                &user("bob"),
                "bob@example.com",
                "key:t",
            )
            .expect("filed");
        assert!(w.engine.dsr_list(true).expect("list").is_empty());
        // GDPR allows two further months, not more.
        assert!(matches!(
            w.engine.dsr_extend(&filed.request_id, 61, "complex", "key:t"),
            Err(EngineError::Invalid { field, .. }) if field == "days"
        ));
        let extended = w
            .engine
            .dsr_extend(&filed.request_id, 60, "many requests", "key:t")
            .expect("extended");
        assert_eq!(extended.extended_days, 60);
        assert!(w
            .engine
            .dsr_extend(&filed.request_id, 1, "more", "key:t")
            .is_err());

        // Past the (extended) deadline, the request is overdue and can no longer be verified.
        w.clock.set(start() + Duration::days(91));
        let overdue = w.engine.dsr_list(true).expect("list");
        assert_eq!(overdue.len(), 1);
        assert!(overdue[0].overdue);
        let before = w.engine.dsr_show(&filed.request_id).expect("show");
        assert!(matches!(
            w.engine.dsr_verify(&filed.request_id, &code(&w.outbox), "key:t"),
            Err(EngineError::Invalid { field, .. }) if field == "status"
        ));
        assert_eq!(
            w.engine.dsr_show(&filed.request_id).expect("show"),
            before,
            "nothing changed"
        );
    }
);

parity_test!(bad_requests_are_refused_and_change_nothing, |db| {
    let w = world(&db);
    assert!(matches!(
        w.engine.dsr_request(
            DsrKind::Erasure,
            Regime::Gdpr,
            &user("nobody"),
            "x@example.com",
            "key:t"
        ),
        Err(EngineError::NotFound(_))
    ));
    assert!(w.engine.dsr_list(false).expect("list").is_empty());
    assert!(
        w.outbox.messages().is_empty(),
        "no code sent for an unknown identity"
    );
    assert!(matches!(
        w.engine.dsr_show("dsr_nope"),
        Err(EngineError::NotFound(_))
    ));
    // Five wrong codes reject the request.
    let filed = w
        .engine
        .dsr_request(
            DsrKind::Erasure,
            Regime::Gdpr,
            &user("bob"),
            "bob@example.com",
            "key:t",
        )
        .expect("filed");
    let right = code(&w.outbox);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        assert!(w
            .engine
            .dsr_verify(&filed.request_id, wrong, "key:t")
            .is_err());
    }
    let v = w.engine.dsr_show(&filed.request_id).expect("show");
    assert_eq!(v.status, "rejected");
    assert!(w
        .engine
        .dsr_verify(&filed.request_id, &right, "key:t")
        .is_err());
    assert!(w
        .engine
        .find_profile(&ProfileRef::parse("bob").expect("r"))
        .is_ok());
});

/// The one-time code reaches a real SMTP server: Python's standard-library `smtpd` (3.11 and
/// earlier), which prints each message it receives. Skipped, loudly, where that is missing.
#[test]
fn the_code_is_delivered_by_smtp() {
    use std::io::Read;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let server = std::process::Command::new("python3")
        .args([
            "-u",
            "-W",
            "ignore",
            "-m",
            "smtpd",
            "-n",
            "-c",
            "DebuggingServer",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(mut server) = server else {
        eprintln!("!!! SKIPPED the_code_is_delivered_by_smtp: no python3 to run an SMTP server");
        return;
    };
    let up = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    if !up {
        let _ = server.kill();
        eprintln!("!!! SKIPPED the_code_is_delivered_by_smtp: python3 has no smtpd module (3.12+)");
        return;
    }
    let db = TestDb::sqlite();
    let w = world(&db);
    let engine = w
        .engine
        .with_notifier(Arc::new(consentric_engine::SmtpNotifier {
            server: format!("127.0.0.1:{port}"),
            from: "privacy@shop.example".into(),
        }));
    let filed = engine
        .dsr_request(
            DsrKind::Access,
            Regime::Gdpr,
            &user("ada"),
            "ada@example.com",
            "key:t",
        )
        .expect("filed and sent");
    // A recipient that would inject a header is refused before anything is sent.
    assert!(engine
        .dsr_request(
            DsrKind::Access,
            Regime::Gdpr,
            &user("ada"),
            "a@x\r\nBcc: b@y",
            "key:t"
        )
        .is_err());
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _ = server.kill();
    let mut printed = String::new();
    server
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut printed)
        .expect("read");
    assert!(printed.contains("To: <ada@example.com>"), "{printed}");
    assert!(printed.contains(&filed.request_id), "{printed}");
    assert!(printed.contains("give this code: "), "{printed}");
}

#[test]
fn a_code_that_cannot_be_sent_closes_its_request() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port(); // released: nothing listens there
    let db = TestDb::sqlite();
    let w = world(&db);
    let engine = w
        .engine
        .with_notifier(Arc::new(consentric_engine::SmtpNotifier {
            server: format!("127.0.0.1:{port}"),
            from: "privacy@shop.example".into(),
        }));
    assert!(matches!(
        engine.dsr_request(DsrKind::Erasure, Regime::Gdpr, &user("ada"), "ada@example.com", "key:t"),
        Err(EngineError::Config(m)) if m.contains("could not be sent")
    ));
    let listed = engine.dsr_list(false).expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, "rejected");
    assert!(engine
        .find_profile(&ProfileRef::parse("ada").expect("r"))
        .is_ok());
}
