//! Decisions and erasure racing: tests of `decide.rs` that need a whole `Context` (kept apart so
//! that the service does not import the context it serves).
#![cfg(test)]

use std::sync::Arc;

use chrono::Utc;
use consentric_model::{parse_batch, Envelope};
use consentric_testkit::TestDb;
use serde_json::json;

use super::decision_request::{DecisionMode, DecisionRequest};
use crate::context::Context;
use crate::ProfileRef;
use crate::SystemClock;

/// A decision read before its customer was erased must not write anything of them after:
/// the writer finds the profile gone and records neither the action nor an audit record.
#[test]
fn a_decision_for_a_customer_erased_meanwhile_records_nothing() {
    let db = TestDb::sqlite();
    let engine = Context::new(db.store(), Arc::new(SystemClock));
    let env = Envelope::new(Utc::now(), "r");
    let consent = json!({"categoryPreferences": {"personalization": true, "marketing": true}});
    let event = json!({"type": "identify", "userId": "c1", "messageId": "m1",
        "traits": {"email": "c1@example.com"}, "context": {"consent": consent}});
    let events = parse_batch(json!({ "batch": [event] }).to_string().as_bytes(), &env)
        .expect("valid")
        .events;
    engine.ingestion().ingest(events).expect("ingest");
    let who = ProfileRef::parse("c1").expect("ref");
    let id = crate::profiles::find_profile(&engine.store, &who).expect("profile");
    let request = || DecisionRequest {
        mode: DecisionMode::Record,
        profile: id.clone(),
        stage: None,
        clv: None,
        with_basis: engine
            .personalize
            .catalogue
            .iter()
            .filter_map(|a| a.purpose.clone())
            .collect(),
        now: engine.now().timestamp_millis(),
        actor: "t".into(),
        audit: json!({}),
        log: Some(("home".into(), json!({}))),
    };
    let recorded = |engine: &Context| {
        engine
            .store
            .write(|tx| tx.actions_since(&id, 0))
            .expect("actions")
            .len()
    };
    let audited = |engine: &Context| {
        engine
            .store
            .audit_page(0, 10_000)
            .expect("audit")
            .iter()
            .filter(|r| r.action == "decision.made")
            .count()
    };

    // While the customer exists, the chosen action and the decision are recorded.
    let first = engine
        .decisions_service()
        .commit_decisions(&[request()])
        .0
        .remove(0)
        .expect("outcome");
    assert!(first.chosen.is_some());
    assert_eq!((recorded(&engine), audited(&engine)), (1, 1));

    engine.erasure().erase(&who, "t").expect("erase");
    assert_eq!(recorded(&engine), 0);
    let after = engine
        .decisions_service()
        .commit_decisions(&[request()])
        .0
        .remove(0)
        .expect("outcome");
    assert!(after.chosen.is_none());
    assert_eq!((recorded(&engine), audited(&engine)), (0, 1));
}
