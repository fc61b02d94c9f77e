//! Exact bounded aggregates against a brute-force computation: tests of `exact.rs` that need a
//! whole `Context` (kept apart so that the service does not import the context it serves).
#![cfg(test)]
//!
//! Non-interference of releases: what a query computes before noise never depends on
//! customers without a basis for analytics, whatever they bought, sent or said.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use consentric_model::{parse_batch, Envelope};
use consentric_testkit::TestDb;
use proptest::prelude::*;
use serde_json::{json, Value};

use super::exact::*;
use super::query::{parse, QueryRequest};
use crate::context::Context;
use crate::FixedClock;

fn day(d: u16) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .expect("time")
        + chrono::Duration::days(i64::from(d))
}

/// A customer's orders and page views; the first event carries their consent.
fn customer(engine: &Context, user: &str, orders: &[(u16, u16)], grants: Value) {
    let env = Envelope::new(Utc::now(), "r");
    let mut batch: Vec<Value> = orders
        .iter()
        .enumerate()
        .map(|(i, (d, cents))| {
            json!({"type": "track", "event": if i % 2 == 0 { "Order Completed" } else { "Product Viewed" },
                "userId": user, "messageId": format!("{user}-{i}"),
                "timestamp": day(*d).to_rfc3339(),
                "properties": {"revenue": f64::from(*cents) / 100.0}})
        })
        .collect();
    batch.insert(
        0,
        json!({"type": "identify", "userId": user, "messageId": format!("{user}-id"),
            "timestamp": day(0).to_rfc3339(), "traits": {"plan": "gold"},
            "context": {"consent": {"categoryPreferences": grants}}}),
    );
    let events = parse_batch(json!({ "batch": batch }).to_string().as_bytes(), &env)
        .expect("valid")
        .events;
    engine.ingestion().ingest(events).expect("ingest");
}

fn queries() -> Vec<QueryRequest> {
    [
        json!({"query": "count"}),
        json!({"query": "count", "stage": "engagement"}),
        json!({"query": "sum", "measure": "revenue", "bounds": [0, 300]}),
        json!({"query": "mean", "measure": "orders", "bounds": [0, 5]}),
        json!({"query": "quantile", "measure": "revenue", "bounds": [0, 300]}),
        json!({"query": "histogram", "by": "stage"}),
        json!({"query": "histogram", "by": "cohort", "categories": ["2024-01", "2024-02"]}),
        json!({"query": "histogram", "by": "event", "categories": ["Order Completed", "Product Viewed"], "max_rows": 1}),
        json!({"query": "histogram", "by": "trait.plan", "categories": ["gold"]}),
        json!({"query": "funnel"}),
        json!({"query": "retention", "categories": ["2024-01", "2024-02"], "periods": 3}),
    ]
    .into_iter()
    .map(|mut q| {
        q["epsilon"] = json!(1.0);
        serde_json::from_value(q).expect("request")
    })
    .collect()
}

fn exact_all(engine: &Context) -> Vec<Exact> {
    let now = engine.now();
    let population = engine
        .populations()
        .population_for("analytics", now, "test")
        .expect("population");
    queries()
        .iter()
        .map(|q| {
            let parsed = parse(q, &|_| false).expect("parses");
            engine
                .exact_aggregates()
                .exact(&parsed, &population.grants, &[], now)
                .expect("exact")
        })
        .collect()
}

fn history() -> impl Strategy<Value = Vec<(u16, u16)>> {
    proptest::collection::vec((0u16..120, 100u16..30_000), 1..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn releases_ignore_customers_without_a_basis(
        included in proptest::collection::vec(history(), 3..8),
        excluded in proptest::collection::vec((history(), any::<bool>()), 1..5),
    ) {
        let world = || {
            let db = TestDb::sqlite();
            let clock = Arc::new(FixedClock::new(day(150)));
            let engine = Context::new(db.store(), clock);
            for (i, h) in included.iter().enumerate() {
                customer(&engine, &format!("in{i}"), h,
                    json!({"analytics": true, "personalization": true}));
            }
            (db, engine)
        };
        let (_a_db, a) = world();
        let (_b_db, b) = world();
        // World B also holds customers who refused analytics (some granting personalisation,
        // so they have stages and interactions of their own).
        for (i, (h, personal)) in excluded.iter().enumerate() {
            customer(&b, &format!("out{i}"), h,
                json!({"analytics": false, "personalization": personal}));
        }
        prop_assert_eq!(exact_all(&a), exact_all(&b));
    }
}
