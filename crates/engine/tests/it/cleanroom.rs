//! The clean room through two engines (each its own database), rounds passed by hand: exact
//! cardinalities and sums, only consenting customers, nothing identifying in any message, and
//! every malformed or untimely step refused with the session aborted.

use chrono::{TimeZone, Utc};
use consentric_engine::cleanroom::{
    CleanroomSettings, GuestBlinded, HostBlinded, Invitation, Joining, Output, SessionError,
};
use consentric_engine::{Engine, EngineError};
use consentric_testkit::TestDb;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::{by, clock, ingest_at, midnight};

fn email(i: usize) -> String {
    format!("Shopper.{i}@Example.org")
}

/// Customers `range`, each with an e-mail and an order of `i` dollars; those with `i % 10 == 9`
/// do not consent to partner matching.
fn customers(engine: &Engine, prefix: &str, range: std::ops::Range<usize>) {
    let mut batch: Vec<Value> = Vec::new();
    for i in range {
        let consent =
            json!({"consent": {"categoryPreferences": {"partner_matching": i % 10 != 9}}});
        batch.push(json!({"type": "identify", "userId": format!("{prefix}{i}"),
            "messageId": format!("{prefix}{i}-id"), "timestamp": "2024-05-01T00:00:00Z",
            "traits": {"email": email(i)}, "context": consent}));
        batch.push(
            json!({"type": "track", "event": "Order Completed", "userId": format!("{prefix}{i}"),
            "messageId": format!("{prefix}{i}-o"), "timestamp": "2024-05-02T00:00:00Z",
            "properties": {"revenue": i}}),
        );
    }
    ingest_at(engine, Utc::now(), json!(batch));
}

struct Run {
    host_result: Value,
    guest_cardinality: usize,
    messages: Vec<String>,
}

fn join(guest: &Engine, inv: &Invitation, output: Output, sum: bool) {
    guest
        .cleanroom_join(
            &Joining {
                host_url: "http://127.0.0.1:9".into(),
                session: inv.session.clone(),
                token: inv.token.clone(),
                partner: "host co".into(),
                output,
                sum,
            },
            "test",
        )
        .expect("join");
    guest.cleanroom_guest(&inv.session).expect("start");
}

/// A session `host` invites to, `guest` joins on the same terms, and the host's first round.
fn first_round(
    host: &Engine,
    guest: &Engine,
    output: Output,
    sum: bool,
) -> (Invitation, HostBlinded) {
    let inv = host
        .cleanroom_invite("guest co", output, sum, "test")
        .expect("invite");
    join(guest, &inv, output, sum);
    let r1 = host
        .cleanroom_host_blinded(&inv.session, &inv.token)
        .expect("round 1");
    (inv, r1)
}

fn run(host: &Engine, guest: &Engine, output: Output, sum: bool) -> Run {
    let (inv, r1) = first_round(host, guest, output, sum);
    let mut messages = Vec::new();
    messages.push(serde_json::to_string(&r1).expect("json"));
    let (answer, secrets) = guest
        .cleanroom_guest_answer(&inv.session, &r1)
        .expect("answer");
    messages.push(serde_json::to_string(&answer).expect("json"));
    let count = host
        .cleanroom_host_intersect(&inv.session, &inv.token, &answer)
        .expect("round 2");
    messages.push(serde_json::to_string(&count).expect("json"));
    let reveal = guest
        .cleanroom_guest_reveal(&secrets, &count)
        .expect("reveal");
    if let Some(reveal) = reveal {
        messages.push(serde_json::to_string(&reveal).expect("json"));
        host.cleanroom_host_sum(&inv.session, &inv.token, &reveal)
            .expect("round 3");
    }
    let guest_view = guest
        .cleanroom_guest_complete(&inv.session, &secrets, &count, &r1)
        .expect("complete");
    assert_eq!(guest_view.state, "done");
    let view = host.cleanroom_session(&inv.session).expect("session");
    assert_eq!(view.state, "done");
    Run {
        host_result: view.result.expect("result"),
        guest_cardinality: count.cardinality,
        messages,
    }
}

/// An engine accepting sets of any size (the tests' sets are small on purpose).
fn world(prefix: &str, range: std::ops::Range<usize>) -> (TestDb, Engine) {
    let db = TestDb::sqlite();
    let engine = Engine::new(db.store(), clock(midnight()))
        .with_cleanroom(CleanroomSettings {
            min_set: 0,
            ..Default::default()
        })
        .expect("settings");
    customers(&engine, prefix, range);
    (db, engine)
}

#[test]
fn sessions_count_the_overlap_and_sum_it_exactly() {
    // Host: 0..200. Guest: 100..300 (overlap 100..200). Customers with i % 10 == 9 refuse on
    // either side, so the overlap that may be computed is 100..200 minus them: 90.
    let (_h, host) = world("h", 0..200);
    let (_g, guest) = world("g", 100..300);
    let r = run(&host, &guest, Output::Cardinality, false);
    assert_eq!(r.host_result["cardinality"], 90);
    assert_eq!(r.guest_cardinality, 90);
    assert_eq!(r.host_result["ours"], 180);
    assert_eq!(r.host_result["theirs"], 180);
    assert!(r.host_result["matched"].is_null(), "cardinality only");

    // Matches and the sum of the guest's revenue (in cents) over them.
    let r = run(&host, &guest, Output::Matches, true);
    let want: usize = (100..200).filter(|i| i % 10 != 9).map(|i| i * 100).sum();
    assert_eq!(r.host_result["sum"], want.to_string());
    let matched: Vec<String> =
        serde_json::from_value(r.host_result["matched"].clone()).expect("ids");
    assert_eq!(matched.len(), 90);

    // Nothing in any message is an identifier, or its SHA-256 in hex or base64.
    let all = r.messages.join("\n").to_lowercase();
    for i in 0..300 {
        for form in [email(i), email(i).to_lowercase()] {
            let digest = Sha256::digest(form.as_bytes());
            use base64::Engine as _;
            for needle in [
                form.to_lowercase(),
                hex::encode(digest),
                base64::engine::general_purpose::STANDARD
                    .encode(digest)
                    .to_lowercase(),
            ] {
                assert!(!all.contains(&needle), "{needle} appears in a message");
            }
        }
        assert!(!all.contains(&format!("shopper.{i}@")));
    }
}

#[test]
fn edge_overlaps_are_exact() {
    let (_h, host) = world("h", 0..100);
    for (range, want) in [
        (200..300, 0),
        (99..199, 0),
        (98..198, 1),
        (0..100, 90),
        (0..0, 0),
    ] {
        let (_g, guest) = world("g", range.clone());
        // A sum only where the intersection reaches the guest's minimum (10).
        let sum = want >= 10;
        let r = run(&host, &guest, Output::Cardinality, sum);
        assert_eq!(r.host_result["cardinality"], want, "{range:?}");
        if sum {
            let total: usize = range
                .filter(|i| *i < 100 && i % 10 != 9)
                .map(|i| i * 100)
                .sum();
            assert_eq!(r.host_result["sum"], total.to_string());
        }
    }
}

#[test]
fn the_guest_holds_the_host_to_the_terms_it_joined_on() {
    let (_h, host) = world("h", 0..30);
    let (_g, guest) = world("g", 25..60);
    // The host invites with a sum; the guest was told cardinality only.
    let inv = host
        .cleanroom_invite("p", Output::Matches, true, "t")
        .expect("invite");
    join(&guest, &inv, Output::Cardinality, false);
    let r1 = host
        .cleanroom_host_blinded(&inv.session, &inv.token)
        .expect("r1");
    assert!(matches!(
        session_error(guest.cleanroom_guest_answer(&inv.session, &r1)),
        SessionError::Protocol(_)
    ));
    // A run cannot start twice.
    assert!(matches!(
        session_error(guest.cleanroom_guest(&inv.session)),
        SessionError::OutOfOrder(_)
    ));
    // A sum over fewer customers than the minimum is never decrypted: 25..30 has 4 in common.
    let (inv, r1) = first_round(&host, &guest, Output::Cardinality, true);
    let (answer, secrets) = guest
        .cleanroom_guest_answer(&inv.session, &r1)
        .expect("answer");
    let count = host
        .cleanroom_host_intersect(&inv.session, &inv.token, &answer)
        .expect("r2");
    assert_eq!(count.cardinality, 4);
    assert!(matches!(
        session_error(guest.cleanroom_guest_reveal(&secrets, &count)),
        SessionError::Protocol(_)
    ));
    // Plain http only to this machine.
    let far = Joining {
        host_url: "http://partner.example".into(),
        session: "abc".into(),
        token: "0".repeat(64),
        partner: "p".into(),
        output: Output::Cardinality,
        sum: false,
    };
    assert!(matches!(
        guest.cleanroom_join(&far, "t"),
        Err(EngineError::Invalid { .. })
    ));
    // Nor to a URL without a host, and the host must be named.
    for bad in [
        Joining {
            host_url: "https://".into(),
            ..far.clone()
        },
        Joining {
            host_url: "https://user:pw@partner.example".into(),
            ..far.clone()
        },
        Joining {
            host_url: "https://partner .example".into(),
            ..far.clone()
        },
        Joining {
            host_url: "https://partner.example#x".into(),
            ..far.clone()
        },
        Joining {
            host_url: "https://:443".into(),
            ..far.clone()
        },
        Joining {
            host_url: "https://partner.example".into(),
            partner: " \u{c}".into(),
            ..far.clone()
        },
    ] {
        assert!(matches!(
            guest.cleanroom_join(&bad, "t"),
            Err(EngineError::Invalid { .. })
        ));
    }
    // A session id recorded here already (this session, joined again) is a conflict that
    // leaves the recorded one as it was.
    let before = guest.cleanroom_session(&inv.session).expect("recorded");
    let again = Joining {
        host_url: "https://other.example".into(),
        session: inv.session.clone(),
        token: "1".repeat(64),
        partner: "someone else".into(),
        output: Output::Cardinality,
        sum: false,
    };
    assert!(matches!(
        guest.cleanroom_join(&again, "t"),
        Err(EngineError::Conflict(_))
    ));
    let after = guest.cleanroom_session(&inv.session).expect("recorded");
    assert_eq!(
        serde_json::to_value(&before).expect("json"),
        serde_json::to_value(&after).expect("json")
    );
}

fn session_error(r: Result<impl std::fmt::Debug, EngineError>) -> SessionError {
    match r {
        Err(EngineError::Session(e)) => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_and_untimely_steps_are_refused_and_abort() {
    let (_h, host) = world("h", 0..20);
    let (_g, guest) = world("g", 10..30);
    let inv = host
        .cleanroom_invite("p", Output::Cardinality, true, "t")
        .expect("invite");
    assert_eq!(
        session_error(host.cleanroom_host_blinded(&inv.session, "wrong")),
        SessionError::BadToken
    );
    let r1: HostBlinded = host
        .cleanroom_host_blinded(&inv.session, &inv.token)
        .expect("r1");
    // A replay of round 1.
    assert!(matches!(
        session_error(host.cleanroom_host_blinded(&inv.session, &inv.token)),
        SessionError::OutOfOrder(_)
    ));
    join(&guest, &inv, Output::Cardinality, true);
    let (good, _) = guest
        .cleanroom_guest_answer(&inv.session, &r1)
        .expect("answer");
    // A point that is not a Ristretto encoding aborts the session.
    let mut bad: GuestBlinded = good.clone();
    bad.blinded[0] = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode([0xffu8; 32])
    };
    assert!(matches!(
        session_error(host.cleanroom_host_intersect(&inv.session, &inv.token, &bad)),
        SessionError::Protocol(_)
    ));
    assert_eq!(
        host.cleanroom_session(&inv.session).expect("s").state,
        "aborted"
    );
    assert!(matches!(
        session_error(host.cleanroom_host_intersect(&inv.session, &inv.token, &good)),
        SessionError::OutOfOrder(_)
    ));

    // A ciphertext outside the Paillier group.
    let inv = host
        .cleanroom_invite("p", Output::Cardinality, true, "t")
        .expect("invite");
    let r1 = host
        .cleanroom_host_blinded(&inv.session, &inv.token)
        .expect("r1");
    join(&guest, &inv, Output::Cardinality, true);
    let (mut bad, _) = guest
        .cleanroom_guest_answer(&inv.session, &r1)
        .expect("answer");
    if let Some(v) = bad.values.as_mut() {
        use base64::Engine as _;
        v[0] = base64::engine::general_purpose::STANDARD.encode([0u8]);
    }
    assert!(matches!(
        session_error(host.cleanroom_host_intersect(&inv.session, &inv.token, &bad)),
        SessionError::Protocol(_)
    ));
    assert_eq!(
        host.cleanroom_session(&inv.session).expect("s").state,
        "aborted"
    );
}

#[test]
fn expired_and_oversized_sessions_are_refused() {
    let db = TestDb::sqlite();
    let c = clock(midnight());
    let host = Engine::new(db.store(), c.clone())
        .with_cleanroom(consentric_engine::cleanroom::CleanroomSettings {
            max_set: 5,
            ..Default::default()
        })
        .expect("settings");
    customers(&host, "h", 0..10);
    let inv = host
        .cleanroom_invite("p", Output::Cardinality, false, "t")
        .expect("invite");
    assert!(matches!(
        session_error(host.cleanroom_host_blinded(&inv.session, &inv.token)),
        SessionError::TooLarge(9, 5)
    ));
    assert_eq!(
        host.cleanroom_session(&inv.session).expect("s").state,
        "aborted"
    );
    let inv = host
        .cleanroom_invite("p", Output::Cardinality, false, "t")
        .expect("invite");
    c.set(
        Utc.with_ymd_and_hms(2024, 6, 1, 2, 0, 0)
            .single()
            .expect("time"),
    );
    assert_eq!(
        session_error(host.cleanroom_host_blinded(&inv.session, &inv.token)),
        SessionError::Expired
    );
    assert_eq!(
        host.cleanroom_session(&inv.session).expect("s").state,
        "aborted"
    );
}

#[test]
fn the_export_names_the_partners_a_customer_could_be_matched_with() {
    let (_h, host) = world("h", 0..40);
    let (_g, guest) = world("g", 20..60);
    run(&host, &guest, Output::Cardinality, false);
    let export = |engine: &Engine, who: &str| -> Value {
        let mut out = Vec::new();
        engine.export(&by(who), "test", &mut out).expect("export");
        serde_json::from_slice(&out).expect("json")
    };
    // A customer who consented: the purpose's recipients and the session, on both sides.
    let e = export(&host, "h3");
    let purposes: Vec<&str> = e["recipients"]["by_purpose"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["purpose"].as_str())
        .collect();
    assert!(purposes.contains(&"partner_matching"), "{purposes:?}");
    assert_eq!(e["recipients"]["disclosures"][0]["partner"], "guest co");
    let g = export(&guest, "g25");
    assert_eq!(g["recipients"]["disclosures"][0]["partner"], "host co");
    // One who refused (i % 10 == 9) was never disclosed to anyone.
    let refused = export(&host, "h9");
    assert!(!refused["recipients"]["by_purpose"]
        .as_array()
        .expect("list")
        .iter()
        .any(|p| p["purpose"] == "partner_matching"));
    assert_eq!(refused["recipients"]["disclosures"], json!([]));
}

#[test]
fn erasure_takes_a_matched_customer_out_of_session_results() {
    let (_h, host) = world("h", 0..40);
    let (_g, guest) = world("g", 20..60);
    let who = by("h25");
    let id = host.profile(&who, "test").expect("profile").profile_id;
    let r = run(&host, &guest, Output::Matches, false);
    let session = host.cleanroom_sessions().expect("sessions")[0]
        .session
        .clone();
    assert!(r.host_result["matched"]
        .as_array()
        .expect("matched")
        .contains(&json!(id)));
    host.erase(&who, "test").expect("erase");
    let after = host.cleanroom_session(&session).expect("session");
    let matched = after.result.expect("result")["matched"].clone();
    assert!(!matched.as_array().expect("matched").contains(&json!(id)));
    assert!(matched
        .as_array()
        .expect("matched")
        .contains(&json!("erased")));
}

#[test]
fn small_sets_from_the_other_side_are_refused_as_probes() {
    // With the default minimum of 50: a host with 9 consenting customers cannot probe a guest.
    let (_h, host) = world("h", 0..10);
    let db = TestDb::sqlite();
    let guest = Engine::new(db.store(), clock(midnight()));
    customers(&guest, "g", 0..100);
    let (inv, r1) = first_round(&host, &guest, Output::Cardinality, false);
    assert_eq!(
        session_error(guest.cleanroom_guest_answer(&inv.session, &r1)),
        SessionError::TooSmall(9, 50)
    );
    // And a default host refuses a guest that brings fewer than 50.
    let db2 = TestDb::sqlite();
    let strict_host = Engine::new(db2.store(), clock(midnight()));
    customers(&strict_host, "h", 0..100);
    let (_g, small_guest) = world("g", 0..10);
    let (inv, r1) = first_round(&strict_host, &small_guest, Output::Cardinality, false);
    let (answer, _) = small_guest
        .cleanroom_guest_answer(&inv.session, &r1)
        .expect("answer");
    assert_eq!(
        session_error(strict_host.cleanroom_host_intersect(&inv.session, &inv.token, &answer)),
        SessionError::TooSmall(9, 50)
    );
    assert_eq!(
        strict_host
            .cleanroom_session(&inv.session)
            .expect("s")
            .state,
        "aborted"
    );
}
