//! The data-subject request workflow: verification by a one-time code, deadlines and their
//! extensions, processing once, on SQLite and PostgreSQL.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use consentric_engine::{
    DsrKind, Engine, EngineError, FixedClock, Notifier, Outbox, Regime, SmtpNotifier, SmtpSecurity,
    SmtpSettings,
};
use consentric_model::{Identity, IdentityKind};
use consentric_testkit::{parity_test, TestDb};
use serde_json::{json, Value};

use crate::support::{by, engine_at, ingest_at, noon};
use consentric_testkit::smtp as smtp_server;

struct World {
    engine: Engine,
    clock: Arc<FixedClock>,
    outbox: Arc<Outbox>,
}

fn world(db: &TestDb) -> World {
    let (engine, clock) = engine_at(db, noon());
    let outbox = Arc::new(Outbox::default());
    let engine = engine.with_notifier(outbox.clone());
    ingest_at(
        &engine,
        noon(),
        json!([
            {"type":"identify","messageId":"d1","userId":"ada","anonymousId":"dev-1","traits":{"email":"ada@example.com"}},
            {"type":"track","messageId":"d2","userId":"ada","event":"Order Completed","properties":{"revenue":9.5}},
            {"type":"identify","messageId":"d3","userId":"bob","traits":{"email":"bob@example.com"}},
        ]),
    );
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
        assert_eq!(due.with_timezone(&Utc), noon() + Duration::days(30));
        assert_eq!(w.outbox.messages()[0].to, "ada@example.com");

        // Not verified yet: nothing can be processed.
        assert!(matches!(
            w.engine
                .dsr_process(&filed.request_id, "key:t", &mut Vec::new()),
            Err(EngineError::Invalid { .. })
        ));
        assert!(w.engine.find_profile(&by("ada")).is_ok());
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
        assert!(w.engine.find_profile(&by("ada")).is_err());
        assert!(w.engine.find_profile(&by("bob")).is_ok());
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

parity_test!(
    an_objection_stops_legitimate_interests_under_the_gdpr_and_sale_under_the_ccpa,
    |db| {
        let w = world(&db);
        let basis = |who: &str, purpose: &str| -> bool {
            w.engine
                .consent(&by(who))
                .expect("consent")
                .purposes
                .into_iter()
                .find(|p| p.purpose == purpose)
                .expect("a declared purpose")
                .has_basis
        };
        let li: Vec<String> = w
            .engine
            .purposes()
            .into_iter()
            .filter(|p| p.legal_basis == "legitimate_interest")
            .map(|p| p.id)
            .collect();
        assert!(
            !li.is_empty(),
            "the retail defaults have legitimate interests"
        );
        assert!(
            li.iter().all(|p| basis("ada", p)),
            "they hold until objected to"
        );
        let process = |kind, regime, who: &str, contact: &str| -> Value {
            let filed = w
                .engine
                .dsr_request(kind, regime, &user(who), contact, "key:t")
                .expect("filed");
            w.engine
                .dsr_verify(&filed.request_id, &code(&w.outbox), "key:t")
                .expect("verified");
            let done = w
                .engine
                .dsr_process(&filed.request_id, "key:t", &mut Vec::new())
                .expect("processed");
            assert_eq!(done.status, "completed");
            done.outcome.expect("an outcome")
        };
        let outcome = process(DsrKind::Objection, Regime::Gdpr, "ada", "ada@example.com");
        let objected: Vec<String> =
            serde_json::from_value(outcome["objected"].clone()).expect("list");
        assert_eq!(objected, li);
        assert!(
            li.iter().all(|p| !basis("ada", p)),
            "no legitimate interest is left"
        );
        assert!(
            li.iter().all(|p| basis("bob", p)),
            "another customer keeps theirs"
        );

        // Under the CCPA an objection is the opt-out of sale and sharing.
        let sale: Vec<String> = w
            .engine
            .purposes()
            .into_iter()
            .filter(|p| p.sale_or_share)
            .map(|p| p.id)
            .collect();
        assert!(
            !sale.is_empty(),
            "the retail defaults sell or share for ads"
        );
        let outcome = process(DsrKind::Objection, Regime::Ccpa, "bob", "bob@example.com");
        let objected: Vec<String> =
            serde_json::from_value(outcome["objected"].clone()).expect("list");
        assert_eq!(objected, sale);
        assert!(
            li.iter().all(|p| basis("bob", p)),
            "legitimate interests stay under the CCPA"
        );
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
    assert_eq!(due.with_timezone(&Utc), noon() + Duration::days(45));
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
        // A huge extension is refused, not an overflow (which panicked in debug builds).
        assert!(matches!(
            w.engine.dsr_extend(&filed.request_id, i64::MAX, "forever", "key:t"),
            Err(EngineError::Invalid { field, .. }) if field == "days"
        ));

        // Past the (extended) deadline, the request is overdue and can no longer be verified.
        w.clock.set(noon() + Duration::days(91));
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
    assert!(w.engine.find_profile(&by("bob")).is_ok());
});

/// A notifier for the test server at `port`: `security`, optionally logging in, optionally
/// trusting the test CA.
fn smtp(
    port: u16,
    security: SmtpSecurity,
    account: Option<(&str, &str)>,
    trust_test_ca: bool,
) -> Result<SmtpNotifier, String> {
    let password = tempfile::NamedTempFile::new().expect("temp");
    if let Some((_, p)) = account {
        std::fs::write(password.path(), format!("{p}\n")).expect("write");
    }
    SmtpNotifier::from_settings_and_password(
        &SmtpSettings {
            smtp: Some(format!("localhost:{port}")),
            from: Some("privacy@shop.example".into()),
            security,
            username: account.map(|(u, _)| u.to_owned()),
            password_file: account.map(|_| password.path().to_owned()),
            ca_file: trust_test_ca.then(smtp_server::ca_file),
            timeout_seconds: 5,
        },
        None,
    )
    .map(|n| n.expect("a server is set"))
}

fn file_request(engine: &Engine) -> Result<String, EngineError> {
    engine
        .dsr_request(
            DsrKind::Access,
            Regime::Gdpr,
            &user("ada"),
            "ada@example.com",
            "key:t",
        )
        .map(|v| v.request_id)
}

/// The one-time code reaches an SMTP server over STARTTLS, after logging in, and the message
/// carries the request and the code; a recipient that would inject a header sends nothing.
#[test]
fn the_code_is_delivered_over_starttls_after_login() {
    let server = smtp_server::start(smtp_server::Mode::Starttls, Some(("consentric", "s3cret")));
    let db = TestDb::sqlite();
    let engine = world(&db).engine.with_notifier(Arc::new(
        smtp(
            server.port,
            SmtpSecurity::Starttls,
            Some(("consentric", "s3cret")),
            true,
        )
        .expect("settings"),
    ));
    let id = file_request(&engine).expect("filed and sent");
    // A recipient or subject that would inject a header is refused by the notifier itself
    // (the request workflow refuses such contacts earlier too).
    let notifier = smtp(
        server.port,
        SmtpSecurity::Starttls,
        Some(("consentric", "s3cret")),
        true,
    )
    .expect("settings");
    for (to, subject) in [
        ("a@x\r\nBcc: b@y", "Your request"),
        ("ada@example.com", "Hi\r\nBcc: b@y"),
        ("not an address", "Your request"),
    ] {
        let bad = consentric_engine::Message {
            to: to.into(),
            subject: subject.into(),
            body: "x".into(),
        };
        assert!(notifier.send(&bad).is_err(), "{to:?} {subject:?}");
    }
    let got = server.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].encrypted);
    assert_eq!(got[0].user.as_deref(), Some("consentric"));
    assert_eq!(got[0].to, ["<ada@example.com>"]);
    assert!(
        got[0].data.contains("To: ada@example.com"),
        "{}",
        got[0].data
    );
    assert!(got[0].data.contains(&id), "{}", got[0].data);
    assert!(got[0].data.contains("Message-ID: <"), "{}", got[0].data);
    // The code in the mail is the one that verifies the request.
    let code = got[0]
        .data
        .split("give this code: ")
        .nth(1)
        .map(|rest| rest.chars().take(6).collect::<String>())
        .expect("a code in the mail");
    engine
        .dsr_verify(&id, &code, "key:t")
        .expect("the mailed code verifies");
}

/// The password can come from the environment instead of a file (given here, not set, so
/// tests running at once do not see each other's environment).
#[test]
fn the_password_can_come_from_the_environment() {
    let server = smtp_server::start(
        smtp_server::Mode::ImplicitTls,
        Some(("consentric", "s3cret")),
    );
    let notifier = SmtpNotifier::from_settings_and_password(
        &SmtpSettings {
            smtp: Some(format!("localhost:{}", server.port)),
            from: Some("privacy@shop.example".into()),
            security: SmtpSecurity::Tls,
            username: Some("consentric".into()),
            ca_file: Some(smtp_server::ca_file()),
            ..SmtpSettings::default()
        },
        Some("s3cret".into()),
    )
    .expect("settings")
    .expect("a server");
    notifier
        .send(&consentric_engine::Message {
            to: "ada@example.com".into(),
            subject: "Your request".into(),
            body: "give this code: 123456".into(),
        })
        .expect("sent");
    assert_eq!(server.received()[0].user.as_deref(), Some("consentric"));
}

/// Implicit TLS (SMTPS) delivers too; plain SMTP to a relay that offers no TLS delivers only
/// when asked for explicitly.
#[test]
fn implicit_tls_and_an_explicitly_plain_relay_deliver() {
    let db = TestDb::sqlite();
    let tls = smtp_server::start(smtp_server::Mode::ImplicitTls, None);
    let engine = world(&db).engine.with_notifier(Arc::new(
        smtp(tls.port, SmtpSecurity::Tls, None, true).expect("settings"),
    ));
    file_request(&engine).expect("sent over TLS");
    assert!(tls.received()[0].encrypted);

    let plain = smtp_server::start(smtp_server::Mode::PlainOnly, None);
    let engine = engine.with_notifier(Arc::new(
        smtp(plain.port, SmtpSecurity::None, None, false).expect("settings"),
    ));
    file_request(&engine).expect("sent in clear text");
    assert!(!plain.received()[0].encrypted);
}

/// What must not send: STARTTLS asked for but not offered (a stripped upgrade), a certificate
/// nobody trusts, a wrong password. Each closes the request as rejected and the server
/// received nothing.
#[test]
fn no_downgrade_no_untrusted_certificate_no_wrong_password() {
    let db = TestDb::sqlite();
    let w = world(&db);
    let plain = smtp_server::start(smtp_server::Mode::PlainOnly, None);
    let tls = smtp_server::start(smtp_server::Mode::Starttls, Some(("consentric", "s3cret")));
    // Offers AUTH in clear text and no STARTTLS: the password must not be sent.
    let careless = smtp_server::start(
        smtp_server::Mode::AuthWithoutTls,
        Some(("consentric", "s3cret")),
    );
    let cases = [
        (plain.port, None, true, "STARTTLS is not supported"),
        (
            careless.port,
            Some(("consentric", "s3cret")),
            true,
            "STARTTLS is not supported",
        ),
        (
            tls.port,
            Some(("consentric", "s3cret")),
            false,
            "UnknownIssuer",
        ),
        (tls.port, Some(("consentric", "guess")), true, "535"),
    ];
    let mut engine = w.engine;
    for (port, account, trust, why) in cases {
        engine = engine.with_notifier(Arc::new(
            smtp(port, SmtpSecurity::Starttls, account, trust).expect("settings"),
        ));
        let e = file_request(&engine);
        assert!(
            matches!(&e, Err(EngineError::Config(m)) if m.contains("could not be sent") && m.contains(why)),
            "{e:?}"
        );
    }
    assert!(plain.received().is_empty());
    assert!(tls.received().is_empty());
    assert!(careless.received().is_empty());
    assert_eq!(careless.auth_attempts(), 0, "no login without TLS");
    let listed = engine.dsr_list(false).expect("list");
    assert_eq!(listed.len(), 4);
    assert!(listed.iter().all(|r| r.status == "rejected"));
}

/// Settings that cannot work are refused when the notifier is made, naming the setting.
#[test]
fn smtp_settings_are_checked_at_start() {
    let base = SmtpSettings {
        smtp: Some("localhost:587".into()),
        from: Some("privacy@shop.example".into()),
        ..SmtpSettings::default()
    };
    let refused = |s: SmtpSettings, says: &str| {
        let e = SmtpNotifier::from_settings_and_password(&s, None).expect_err(says);
        assert!(e.contains(says), "{e}");
    };
    let accepted = |s: SmtpSettings| {
        SmtpNotifier::from_settings_and_password(&s, None)
            .expect("accepted")
            .expect("a server")
    };
    let empty = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(empty.path(), "\n").expect("write");
    refused(
        SmtpSettings {
            username: Some("u".into()),
            password_file: Some(empty.path().to_owned()),
            ..base.clone()
        },
        "the password is empty",
    );
    refused(
        SmtpSettings {
            from: None,
            ..base.clone()
        },
        "from is required",
    );
    // A key is not a certificate: lettre would skip it and every send would fail later.
    let key = smtp_server::ca_file().with_file_name("server.key");
    refused(
        SmtpSettings {
            ca_file: Some(key),
            ..base.clone()
        },
        "holds no PEM certificate",
    );
    for server in [
        "fe80::1",
        "[nonsense]:25",
        "mail.example.com:0",
        "mail example:25",
    ] {
        refused(
            SmtpSettings {
                smtp: Some(server.into()),
                ..base.clone()
            },
            "host:port",
        );
    }
    for server in ["[::1]:25", "127.0.0.1:25", "mail.example.com:587"] {
        accepted(SmtpSettings {
            smtp: Some(server.into()),
            ..base.clone()
        });
    }
    refused(
        SmtpSettings {
            username: Some("u".into()),
            security: SmtpSecurity::None,
            ..base.clone()
        },
        "clear text",
    );
    refused(
        SmtpSettings {
            username: Some("u".into()),
            ..base.clone()
        },
        "no password",
    );
    refused(
        SmtpSettings {
            smtp: Some("localhost".into()),
            ..base.clone()
        },
        "host:port",
    );
    refused(
        SmtpSettings {
            from: Some("not an address".into()),
            ..base.clone()
        },
        "[notify] from",
    );
    refused(
        SmtpSettings {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..base.clone()
        },
        "ca_file",
    );
    assert!(
        SmtpNotifier::from_settings_and_password(&SmtpSettings::default(), None)
            .expect("no server")
            .is_none()
    );
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
    let engine = w.engine.with_notifier(Arc::new(
        smtp(port, SmtpSecurity::None, None, false).expect("settings"),
    ));
    assert!(matches!(
        engine.dsr_request(DsrKind::Erasure, Regime::Gdpr, &user("ada"), "ada@example.com", "key:t"),
        Err(EngineError::Config(m)) if m.contains("could not be sent")
    ));
    let listed = engine.dsr_list(false).expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, "rejected");
    assert!(engine.find_profile(&by("ada")).is_ok());
}

parity_test!(
    the_stored_code_hash_cannot_be_brute_forced_without_the_master_keys,
    |db| {
        use sha2::{Digest, Sha256};
        let w = world(&db);
        let filed = w
            .engine
            .dsr_request(
                DsrKind::Access,
                Regime::Gdpr,
                &user("ada"),
                "ada@example.com",
                "key:t",
            )
            .expect("filed");
        let stored = db
            .store()
            .dsr(&filed.request_id)
            .expect("read")
            .expect("row")
            .code_hash;
        // The attack on an unkeyed hash: try every code against the row.
        let found = (0..1_000_000u32).find(|c| {
            let guess = format!("{}:{c:06}", filed.request_id);
            hex::encode(Sha256::digest(guess.as_bytes())) == stored
        });
        assert_eq!(found, None, "the row gives the code away");
        // The code itself still verifies.
        let verified = w
            .engine
            .dsr_verify(&filed.request_id, &code(&w.outbox), "key:t")
            .expect("verified");
        assert_eq!(verified.status, "verified");
    }
);

parity_test!(
    erasure_closes_the_customers_requests_and_the_outbox_forgets_them,
    |db| {
        let w = world(&db);
        let access = w
            .engine
            .dsr_request(
                DsrKind::Access,
                Regime::Gdpr,
                &user("ada"),
                "ada-contact@example.com",
                "key:t",
            )
            .expect("filed");
        let bobs = w
            .engine
            .dsr_request(
                DsrKind::Access,
                Regime::Gdpr,
                &user("bob"),
                "bob-contact@example.com",
                "key:t",
            )
            .expect("filed");
        let receipt = w.engine.erase(&by("ada"), "key:admin").expect("erased");
        let receipt_id = receipt
            .verify(&receipt.public_key)
            .expect("signed")
            .receipt_id;
        let shown = w.engine.dsr_show(&access.request_id).expect("still listed");
        assert_eq!(shown.identity, None, "the identity is shredded");
        assert_eq!(shown.status, "rejected");
        let outcome = shown.outcome.expect("why");
        assert_eq!(outcome["receipt_id"], receipt_id, "{outcome}");
        // Nothing for ada stays in the outbox; bob's request and message are untouched.
        let to: Vec<String> = w.outbox.messages().into_iter().map(|m| m.to).collect();
        assert_eq!(to, vec!["bob-contact@example.com".to_owned()]);
        let bob = w.engine.dsr_show(&bobs.request_id).expect("bob's");
        assert_eq!(
            (bob.status.as_str(), bob.identity.as_deref()),
            ("received", Some("user_id:bob"))
        );
        // A closed request cannot be verified or processed into anyone's data.
        assert!(w
            .engine
            .dsr_verify(&access.request_id, &code(&w.outbox), "key:t")
            .is_err());
        if let Some(dir) = db.data_dir() {
            w.engine.checkpoint().expect("checkpoint");
            assert_eq!(
                consentric_testkit::hits_in_database_files(dir, b"ada-contact@example.com"),
                0
            );
        }
    }
);
