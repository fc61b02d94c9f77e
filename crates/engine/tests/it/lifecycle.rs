//! Lifecycle through the engine, on SQLite and PostgreSQL: stages kept on ingest with their
//! transitions, recomputed as time passes, the gate deciding who enters fitting and scoring,
//! withdrawal, merges and erasure taking the derived rows with them.

use chrono::{DateTime, Duration, Utc};
use consentric_engine::{Engine, EngineError};
use consentric_model::Stage;
use consentric_testkit::{at, batch_at, cdnow_sample_orders, consent_context, parity_test, TestDb};
use serde_json::{json, Value};

use crate::support::{self, by, engine_at};

/// 2024-01-01 12:00 UTC: where this suite's clocks start and when its events arrive.
fn start() -> DateTime<Utc> {
    at("2024-01-01T12:00:00Z")
}

fn day(d: i64) -> String {
    (start() + Duration::days(d)).to_rfc3339()
}

/// An order by `user` on day `d` (from the start), optionally granting purposes with it.
fn order(user: &str, d: i64, revenue: f64, grant: &[&str]) -> Value {
    let mut e = json!({"type": "track", "event": "Order Completed", "userId": user,
        "messageId": format!("{user}-order-{d}-{revenue}"), "timestamp": day(d),
        "properties": {"revenue": revenue}});
    if !grant.is_empty() {
        e["context"] = consent_context(grant);
    }
    e
}

const BOTH: &[&str] = &["analytics", "personalization"];

fn stage(engine: &Engine, who: &str) -> (Option<Stage>, Option<String>) {
    let v = engine
        .customer_lifecycle(&by(who), "test")
        .expect("lifecycle");
    (v.stage, v.rule)
}

parity_test!(
    stages_follow_events_with_the_rule_behind_each_change,
    |db| {
        let (engine, clock) = engine_at(&db, start());
        engine
            .ingest(batch_at(
                start(),
                json!([{"type": "identify", "userId": "ada", "messageId": "i1",
            "timestamp": day(0), "context": {"consent": {"categoryPreferences":
            {"personalization": true}}}}]),
            ))
            .expect("ingest");
        assert_eq!(
            stage(&engine, "ada"),
            (Some(Stage::Acquisition), Some("known".into()))
        );
        engine
            .ingest(batch_at(start(), json!([order("ada", 1, 30.0, &[])])))
            .expect("ingest");
        assert_eq!(stage(&engine, "ada").0, Some(Stage::Onboarding));
        engine
            .ingest(batch_at(start(), json!([order("ada", 20, 40.0, &[])])))
            .expect("ingest");
        assert_eq!(
            stage(&engine, "ada"),
            (Some(Stage::Engagement), Some("repeat-buyer".into()))
        );
        // Time passes without events: only a recompute sees it.
        clock.set(start() + Duration::days(500));
        let r = engine.lifecycle_recompute("test").expect("recompute");
        assert_eq!((r.placed, r.changed), (1, 1));
        assert_eq!(
            stage(&engine, "ada"),
            (Some(Stage::Churned), Some("lapsed".into()))
        );
        // Coming back is a reactivation, not a new onboarding.
        engine
            .ingest(batch_at(start(), json!([order("ada", 499, 25.0, &[])])))
            .expect("ingest");
        let view = engine
            .customer_lifecycle(&by("ada"), "test")
            .expect("lifecycle");
        assert_eq!(view.stage, Some(Stage::Reactivated));
        let path: Vec<(Option<Stage>, Stage, &str)> = view
            .history
            .iter()
            .map(|t| (t.from, t.to, t.rule.as_str()))
            .collect();
        assert_eq!(
            path,
            vec![
                (None, Stage::Acquisition, "known"),
                (
                    Some(Stage::Acquisition),
                    Stage::Onboarding,
                    "first-purchase"
                ),
                (Some(Stage::Onboarding), Stage::Engagement, "repeat-buyer"),
                (Some(Stage::Engagement), Stage::Churned, "lapsed"),
                (Some(Stage::Churned), Stage::Reactivated, "came-back"),
            ]
        );
        // Each transition is stamped with the moment it was decided for.
        assert!(
            view.history[3].at.starts_with("2025-05-15"),
            "{:?}",
            view.history[3]
        );
    }
);

parity_test!(the_gate_decides_who_is_fitted_scored_and_counted, |db| {
    let (engine, clock) = engine_at(&db, start());
    clock.set(start()); // 2024: after all of CDNOW
                        // 200 real CDNOW customers who allow analytics and personalisation, 20 who allow nothing.
    for chunk in cdnow_sample_orders(0, 200, BOTH).chunks(400) {
        engine
            .ingest(batch_at(start(), Value::Array(chunk.to_vec())))
            .expect("ingest");
    }
    let refusers = cdnow_sample_orders(200, 20, &[]);
    engine
        .ingest(batch_at(start(), Value::Array(refusers.clone())))
        .expect("ingest");
    let fit = engine.lifecycle_fit("test").expect("fit");
    assert_eq!((fit.customers, fit.left_out), (200, 20));
    assert!(fit.models.iter().any(|m| m.model == "bg_nbd"));
    assert!(fit.models.iter().any(|m| m.model == "pareto_nbd"));
    let summary = engine.lifecycle_summary("test").expect("summary");
    assert_eq!((summary.customers, summary.left_out), (200, 20));
    assert_eq!(summary.cohorts.iter().map(|c| c.size).sum::<u64>(), 200);
    assert_eq!(summary.funnel.values().sum::<u64>(), 200);
    // Scores for a customer with a basis; a refusal for one without.
    let v = engine
        .customer_lifecycle(&by("cdnow-0001"), "test")
        .expect("lifecycle");
    let scores = v.scores.expect("scores after a fit");
    assert!((0.0..=1.0).contains(&scores.p_alive));
    assert!(scores.clv.is_some_and(|c| c.is_finite() && c >= 0.0));
    assert!(v.rfm.is_some() && v.churn.is_some());
    let refuser = refusers[0]["userId"].as_str().expect("user");
    assert!(matches!(
        engine.customer_lifecycle(&by(refuser), "test"),
        Err(EngineError::NoBasis(_))
    ));
    // Models are stored: a new engine on the same store scores without refitting.
    drop(engine);
    let again = Engine::new(db.store(), support::clock(start()));
    let v2 = again
        .customer_lifecycle(&by("cdnow-0001"), "test")
        .expect("lifecycle");
    assert_eq!(v2.scores.map(|s| s.p_alive), Some(scores.p_alive));
});

#[test]
fn a_fit_on_data_that_cannot_identify_the_model_is_refused() {
    let db = TestDb::sqlite();
    let (engine, clock) = engine_at(&db, start());
    // Five customers who each bought once on the same day: nothing to learn dropout from.
    let batch: Vec<Value> = (0..5)
        .map(|c| order(&format!("o{c}"), 1, 10.0, BOTH))
        .collect();
    engine
        .ingest(batch_at(start(), Value::Array(batch)))
        .expect("ingest");
    clock.set(start() + Duration::days(30));
    match engine.lifecycle_fit("test") {
        Err(EngineError::Conflict(message)) => {
            assert!(message.contains("did not converge"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

parity_test!(
    withdrawing_the_stage_purpose_deletes_the_stage_and_its_history,
    |db| {
        let (engine, clock) = engine_at(&db, start());
        // Consent given with an event counts from the event's time.
        clock.set(start() + Duration::days(10));
        engine
            .ingest(batch_at(
                start(),
                json!([order("bo", 1, 20.0, BOTH), order("bo", 5, 20.0, &[])]),
            ))
            .expect("ingest");
        assert_eq!(stage(&engine, "bo").0, Some(Stage::Engagement));
        engine
            .set_consent(
                &by("bo"),
                &[("personalization".into(), "withdrawn".into())],
                "test",
                b"{}",
            )
            .expect("withdraw");
        assert!(matches!(
            engine.customer_lifecycle(&by("bo"), "test"),
            Err(EngineError::NoBasis(_))
        ));
        // Granted again, the customer starts over: nothing of the old history survived.
        engine
            .set_consent(
                &by("bo"),
                &[("personalization".into(), "granted".into())],
                "test",
                b"{}",
            )
            .expect("grant");
        let v = engine
            .customer_lifecycle(&by("bo"), "test")
            .expect("lifecycle");
        assert_eq!((v.stage, v.history.len()), (None, 0));
        engine.lifecycle_recompute("test").expect("recompute");
        let v = engine
            .customer_lifecycle(&by("bo"), "test")
            .expect("lifecycle");
        assert_eq!((v.stage, v.history.len()), (Some(Stage::Engagement), 1));
    }
);

parity_test!(
    merges_bring_purchases_along_and_erasure_takes_every_derived_row,
    |db| {
        let (engine, clock) = engine_at(&db, start());
        clock.set(start() + Duration::days(10));
        let anon = json!({"type": "track", "event": "Order Completed", "anonymousId": "dev-1",
        "messageId": "a1", "timestamp": day(2), "properties": {"revenue": 12.0},
        "context": {"consent": {"categoryPreferences": {"analytics": true, "personalization": true}}}});
        engine
            .ingest(batch_at(start(), json!([anon, order("cy", 3, 30.0, BOTH)])))
            .expect("ingest");
        // The identify ties the anonymous buyer to cy: one customer with two purchase days.
        engine
            .ingest(batch_at(
                start(),
                json!([{"type": "identify", "userId": "cy", "anonymousId": "dev-1",
            "messageId": "i-cy", "timestamp": day(4)}]),
            ))
            .expect("ingest");
        clock.set(start() + Duration::days(10));
        let summary = engine.lifecycle_summary("test").expect("summary");
        assert_eq!(summary.customers, 1);
        assert_eq!(summary.cohorts[0].size, 1);
        // The merged-away profile's history comes first; the survivor's latest is current.
        let v = engine
            .customer_lifecycle(&by("cy"), "test")
            .expect("lifecycle");
        let path: Vec<(Option<Stage>, Stage)> = v.history.iter().map(|t| (t.from, t.to)).collect();
        assert_eq!(
            path,
            vec![
                (None, Stage::Onboarding),
                (None, Stage::Onboarding),
                (Some(Stage::Onboarding), Stage::Engagement),
            ]
        );
        assert_eq!(v.stage, Some(Stage::Engagement));
        let receipt = engine.erase(&by("cy"), "test").expect("erase");
        let body = receipt
            .verify(&engine.receipt_public_key().expect("key"))
            .expect("signed");
        // two purchase days, the stage row and its transitions
        assert!(body.erased.lifecycle_rows >= 4, "{:?}", body.erased);
        let after = engine.lifecycle_summary("test").expect("summary");
        assert_eq!(
            (after.customers, after.cohorts.len(), after.funnel.len()),
            (0, 0, 0)
        );
    }
);

parity_test!(rule_named_events_are_counted_for_advocacy, |db| {
    let (engine, clock) = engine_at(&db, start());
    clock.set(start() + Duration::days(10));
    engine
        .ingest(batch_at(
            start(),
            json!([order("di", 1, 20.0, BOTH), order("di", 2, 20.0, &[]),
            {"type": "track", "event": "Product Reviewed", "userId": "di", "messageId": "rv1",
             "timestamp": day(3), "properties": {"rating": 5}}]),
        ))
        .expect("ingest");
    assert_eq!(
        stage(&engine, "di"),
        (Some(Stage::Advocacy), Some("reviewer".into()))
    );
});

#[test]
fn a_fit_without_purchases_is_refused_with_a_reason() {
    let db = TestDb::sqlite();
    let (engine, _) = engine_at(&db, start());
    match engine.lifecycle_fit("test") {
        Err(EngineError::Conflict(message)) => assert!(message.contains("no purchases")),
        other => panic!("{other:?}"),
    }
}

/// Stage placement on ingest keeps what it knows of customers in memory across transactions
/// (SQLite). Fed the same events, an engine whose memory is dropped between batches (an audited
/// read writes to the store, which invalidates it) must place everyone identically.
#[test]
fn placement_from_memory_matches_placement_from_the_store() {
    let run = |forget_between_batches: bool| -> Vec<Value> {
        let db = TestDb::sqlite();
        let (engine, clock) = engine_at(&db, start());
        clock.set(start() + Duration::days(400));
        // Real histories, so that the fit below identifies the model and placement consults it.
        let base = cdnow_sample_orders(0, 80, BOTH);
        engine
            .ingest(batch_at(start(), Value::Array(base)))
            .expect("ingest");
        let mut state = 7u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for b in 0..30 {
            let batch: Vec<Value> = (0..20)
                .map(|i| {
                    let c = next() % 12;
                    let d = b * 10 + i64::from(i % 10);
                    match next() % 4 {
                        0 => json!({"type": "track", "event": "Product Reviewed", "userId": format!("m{c}"),
                            "messageId": format!("rv-{b}-{i}"), "timestamp": day(d)}),
                        1 => json!({"type": "page", "userId": format!("m{c}"),
                            "messageId": format!("pg-{b}-{i}"), "timestamp": day(d)}),
                        _ => order(&format!("m{c}"), d, (next() % 90) as f64, if b == 0 { BOTH } else { &[] }),
                    }
                })
                .collect();
            let mut batch = batch;
            // Now and then a customer withdraws personalisation, and later grants it again.
            let (who, choice) = (format!("m{}", (b / 7) % 12), b % 7);
            if choice == 3 || choice == 5 {
                batch.push(
                    json!({"type": "page", "userId": who, "messageId": format!("c-{b}"),
                    "timestamp": day(b * 10 + 9), "context": {"consent": {"categoryPreferences":
                    {"personalization": choice == 5}}}}),
                );
            }
            engine
                .ingest(batch_at(start(), Value::Array(batch)))
                .expect("ingest");
            if b == 10 {
                engine.lifecycle_fit("test").expect("fit"); // later placements consult P(alive)
            }
            if forget_between_batches {
                engine.lifecycle_summary("test").expect("an audited read");
            }
        }
        (0..12)
            .filter_map(|c| {
                engine
                    .customer_lifecycle(&by(&format!("m{c}")), "test")
                    .ok()
            })
            .map(|v| json!([v.stage, v.rule, v.history.len()]))
            .collect()
    };
    let remembered = run(false);
    assert!(remembered.len() >= 6, "{remembered:?}");
    assert_eq!(remembered, run(true));
}

parity_test!(a_lapsed_basis_loses_its_stage_at_the_next_recompute, |db| {
    let (engine, clock) = engine_at(&db, start());
    clock.set(start() + Duration::days(10));
    engine
        .ingest(batch_at(start(), json!([order("lu", 1, 20.0, BOTH)])))
        .expect("ingest");
    assert_eq!(stage(&engine, "lu").0, Some(Stage::Onboarding));
    // The personalisation text changes, and consent to the old one lapses.
    let purposes: Vec<consentric_policy::Purpose> =
        consentric_policy::PurposeRegistry::retail_defaults()
            .all()
            .cloned()
            .map(|mut p| {
                if p.id.as_str() == "personalization" {
                    p.version += 1;
                    p.lapse_on_new_version = true;
                }
                p
            })
            .collect();
    let policy = consentric_engine::PolicySet::new(
        Some(purposes),
        &[],
        &consentric_engine::ConsentSettings::default(),
    )
    .expect("policy");
    drop(engine);
    let later = Engine::with_policy(
        db.store(),
        support::clock(start() + Duration::days(20)),
        policy,
    );
    let r = later.lifecycle_recompute("test").expect("recompute");
    assert_eq!((r.placed, r.left_out, r.dropped), (0, 1, 1));
    // Granted again (to the new text), the customer starts over.
    later
        .set_consent(
            &by("lu"),
            &[("personalization".into(), "granted".into())],
            "test",
            b"{}",
        )
        .expect("grant");
    let v = later
        .customer_lifecycle(&by("lu"), "test")
        .expect("lifecycle");
    assert_eq!((v.stage, v.history.len()), (None, 0));
});
