//! Who has a basis for a purpose, as the cache answers it: tests of `population.rs` that need
//! a whole `Context` (kept apart so that the service does not import the context it serves).
#![cfg(test)]

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use consentric_model::{parse_batch, Envelope};
use consentric_testkit::parity_test;
use serde_json::{json, Value};

use crate::{FixedClock, ProfileRef};

use crate::context::Context;

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 6, day, 0, 0, 0)
        .single()
        .expect("time")
}

fn send(engine: &Context, events: &[Value]) {
    let env = Envelope::new(Utc::now(), "r");
    let batch = parse_batch(json!({ "batch": events }).to_string().as_bytes(), &env)
        .expect("valid")
        .events;
    engine.ingestion().ingest(batch).expect("ingest");
}

fn visit(user: &str, day: u32, analytics: Option<bool>) -> Value {
    let mut e = json!({"type": "track", "event": "Page Viewed", "userId": user,
        "messageId": format!("{user}-{day}-{analytics:?}"),
        "timestamp": at(day).to_rfc3339()});
    if let Some(a) = analytics {
        e["context"] = json!({"consent": {"categoryPreferences": {"analytics": a}}});
    }
    e
}

fn count(engine: &Context) -> usize {
    engine
        .populations()
        .population_for("analytics", engine.now(), "test")
        .expect("population")
        .grants
        .len()
}

parity_test!(the_population_follows_every_change_that_decides_it, |db| {
    let clock = Arc::new(FixedClock::new(at(10)));
    let engine = Context::new(db.store(), clock.clone());
    let events: Vec<Value> = (0..6)
        .map(|i| visit(&format!("c{i}"), 1, Some(i % 3 != 0)))
        .collect();
    send(&engine, &events);
    assert_eq!(count(&engine), 4);
    let first = engine
        .populations()
        .population_for("analytics", engine.now(), "t")
        .expect("p");
    let again = engine
        .populations()
        .population_for("analytics", engine.now(), "t")
        .expect("p");
    assert!(Arc::ptr_eq(&first, &again), "nothing changed: reused");

    // A withdrawal is honoured by the very next read.
    let c1 = ProfileRef::parse("c1").expect("ref");
    engine
        .consent_service()
        .set_consent(&c1, &[("analytics".into(), "withdrawn".into())], "t", b"{}")
        .expect("withdraw");
    assert_eq!(count(&engine), 3);

    // A new customer who grants counts at once; one who sends nothing about it does not.
    send(&engine, &[visit("c6", 2, Some(true)), visit("c7", 2, None)]);
    assert_eq!(count(&engine), 4);

    // Another process's commit (a second store over the same database) counts too.
    let other = Context::new(db.store(), clock.clone());
    send(&other, &[visit("c8", 3, Some(true))]);
    assert_eq!(count(&engine), 5);

    // A decision dated in the future takes effect when the clock reaches it, with no
    // commit in between.
    send(&engine, &[visit("c9", 20, Some(true))]);
    assert_eq!(count(&engine), 5);
    clock.set(at(19));
    assert_eq!(count(&engine), 5);
    clock.set(at(20));
    assert_eq!(count(&engine), 6);
    // And asking about an earlier moment gives that moment's answer.
    clock.set(at(1));
    assert_eq!(count(&engine), 4);
});
