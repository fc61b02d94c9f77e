//! Personalisation through the engine, on SQLite and PostgreSQL: interactions kept only with a
//! basis and gone with it, recommenders trained on the customers the gate lets in, decisions
//! that are personal only with consent (and say so), caps and cooldowns under concurrent
//! decisions, sensitive traits kept out, segments.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use consentric_engine::{
    Decision, Engine, EngineError, FixedClock, PersonalizeSettings, RecommenderKind,
};
use consentric_testkit::{at, consent_context, parity_test, TestDb};
use serde_json::{json, Value};

use crate::support::{by, clock, engine_at, ingest_at};

/// 2024-03-01 12:00 UTC: where this suite's clocks start and when its events arrive.
fn now() -> DateTime<Utc> {
    at("2024-03-01T12:00:00Z")
}

fn engine_with(db: &TestDb, kind: RecommenderKind) -> (Engine, Arc<FixedClock>) {
    let (engine, clock) = engine_at(db, now());
    let settings = PersonalizeSettings {
        recommender: kind,
        ..PersonalizeSettings::default()
    };
    let engine = engine.with_personalize(settings).expect("settings");
    (engine, clock)
}

fn engine(db: &TestDb) -> (Engine, Arc<FixedClock>) {
    engine_with(db, RecommenderKind::Als)
}

/// `user` viewed `item` `days_ago` days before now, granting `grant` with it.
fn viewed(user: &str, item: &str, days_ago: i64, grant: &[&str]) -> Value {
    let mut e = json!({"type": "track", "event": "Product Viewed", "userId": user,
        "messageId": format!("{user}-{item}-{days_ago}"),
        "timestamp": (now() - Duration::days(days_ago)).to_rfc3339(),
        "properties": {"product_id": item}});
    if !grant.is_empty() {
        e["context"] = consent_context(grant);
    }
    e
}

const PERSONAL: &[&str] = &["personalization"];

/// Two tastes: 12 customers view `a1` and `a2` (and a few `a3`), 8 view `b1` and `b2`.
/// `b1`/`b2` are less popular, so a non-personal answer starts with the `a`s.
fn world(engine: &Engine) {
    let mut batch = Vec::new();
    for u in 0..12 {
        let user = format!("a-fan-{u}");
        batch.push(viewed(&user, "a1", 10, PERSONAL));
        batch.push(viewed(&user, "a2", 9, &[]));
        if u % 3 == 0 {
            batch.push(viewed(&user, "a3", 8, &[]));
        }
    }
    for u in 0..8 {
        let user = format!("b-fan-{u}");
        batch.push(viewed(&user, "b1", 10, PERSONAL));
        batch.push(viewed(&user, "b2", 9, &[]));
    }
    ingest_at(engine, now(), json!(batch));
}

fn items(d: &Decision) -> Vec<&str> {
    d.items.iter().map(|i| i.item.as_str()).collect()
}

parity_test!(
    interactions_are_kept_only_with_a_basis_and_go_with_it,
    |db| {
        let (engine, _) = engine(&db);
        world(&engine);
        // Views by a customer without personalisation consent are events, not interactions.
        ingest_at(
            &engine,
            now(),
            json!([viewed("shy", "b1", 3, &[]), viewed("shy", "b2", 2, &[])]),
        );
        let r = engine.train_recommenders("test").expect("train");
        assert_eq!((r.customers, r.left_out), (20, 1));
        assert_eq!(r.interactions, 12 * 2 + 4 + 8 * 2);
        assert_eq!(r.items, 5);
        assert!(r.als);
        // Withdrawal deletes them in the consent change's transaction.
        engine
            .set_consent(
                &by("b-fan-0"),
                &[("personalization".into(), "withdrawn".into())],
                "test",
                b"{}",
            )
            .expect("withdraw");
        let r = engine.train_recommenders("test").expect("train");
        assert_eq!(
            (r.customers, r.left_out, r.interactions),
            (19, 2, 12 * 2 + 4 + 7 * 2)
        );
        // Consenting again does not bring the deleted ones back; new views count.
        engine
            .set_consent(
                &by("b-fan-0"),
                &[("personalization".into(), "granted".into())],
                "test",
                b"{}",
            )
            .expect("grant");
        ingest_at(&engine, now(), json!([viewed("b-fan-0", "a1", 1, &[])]));
        let r = engine.train_recommenders("test").expect("train");
        assert_eq!((r.customers, r.interactions), (20, 12 * 2 + 4 + 7 * 2 + 1));
        // Erasure deletes them, and the receipt counts them.
        let receipt = engine.erase(&by("a-fan-0"), "test").expect("erase");
        let body = receipt
            .verify(&engine.receipt_public_key().expect("key"))
            .expect("signed");
        assert_eq!(body.erased.personalization_rows, 3, "{:?}", body.erased);
        let r = engine.train_recommenders("test").expect("train");
        assert_eq!(r.interactions, 12 * 2 + 4 + 7 * 2 + 1 - 3);
    }
);

fn recommends_from_history_and_explains_why(db: &TestDb, kind: RecommenderKind) {
    {
        let (engine, _) = engine_with(db, kind);
        world(&engine);
        ingest_at(
            &engine,
            now(),
            json!([viewed("newcomer", "b1", 1, PERSONAL)]),
        );
        engine.train_recommenders("test").expect("train");
        let d = engine
            .decide(&by("newcomer"), "home", Some(3), "test")
            .expect("decide");
        assert!(d.explanation.personal);
        assert_eq!(d.explanation.purpose.as_deref(), Some("personalization"));
        assert_eq!(items(&d)[0], "b2", "{kind:?}: {d:?}");
        assert_eq!(d.items[0].because.as_deref(), Some("b1"), "{kind:?}");
        assert!(!items(&d).contains(&"b1"), "what was seen is not suggested");
        assert_eq!(d.items.len(), 3, "filled from popular items");
        assert!(d.recommender.starts_with(if kind == RecommenderKind::Als {
            "als"
        } else {
            "knn"
        }));
        assert!(d
            .explanation
            .reasons
            .iter()
            .any(|r| r.contains("Because you showed interest in b1")));
        assert!(d
            .explanation
            .data_used
            .iter()
            .any(|u| u.contains("products you viewed")));
        // New customer, nothing known: the acquisition stage's action needs e-mail consent,
        // which they did not give; only the stage-free banner is left.
        assert_eq!(
            d.action.as_ref().map(|a| a.name.as_str()),
            Some("homepage-banner")
        );
        assert!(d
            .excluded_actions
            .iter()
            .any(|e| e.name == "onboarding-guide" && e.why["reason"] == "no_channel_consent"));
        // Bad input is refused by name.
        for (placement, limit, field) in [
            ("", None, "placement"),
            ("a b", None, "placement"),
            ("home", Some(0), "limit"),
            ("home", Some(101), "limit"),
        ] {
            match engine.decide(&by("newcomer"), placement, limit, "test") {
                Err(EngineError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{placement:?} {limit:?}: {other:?}"),
            }
        }
        // A visitor with no profile gets the non-personal answer, and nothing is recorded.
        let stranger = engine
            .decide(&by("nobody"), "home", None, "test")
            .expect("stranger");
        assert!(!stranger.explanation.personal);
        assert!(stranger.profile_id.is_empty() && stranger.explanation.data_used.is_empty());
        assert!(
            stranger.action.as_ref().is_none_or(|a| a.purpose.is_none()),
            "no action that needs consent"
        );
        assert!(matches!(
            engine.profile(&by("nobody"), "test"),
            Err(EngineError::NotFound(_))
        ));
    }
}

parity_test!(item_knn_recommends_from_history_and_explains_why, |db| {
    recommends_from_history_and_explains_why(&db, RecommenderKind::Knn);
});

parity_test!(als_recommends_from_history_and_explains_why, |db| {
    recommends_from_history_and_explains_why(&db, RecommenderKind::Als);
});

parity_test!(
    without_a_basis_the_answer_is_not_personal_and_withdrawal_changes_it_at_once,
    |db| {
        let (engine, _) = engine(&db);
        world(&engine);
        ingest_at(
            &engine,
            now(),
            json!([viewed(
                "fan",
                "b1",
                1,
                &["personalization", "marketing.email"]
            )]),
        );
        engine.train_recommenders("test").expect("train");
        let before = engine
            .decide(&by("fan"), "home", Some(2), "test")
            .expect("decide");
        assert!(before.explanation.personal);
        assert_eq!(items(&before)[0], "b2");
        engine
            .set_consent(
                &by("fan"),
                &[("personalization".into(), "withdrawn".into())],
                "test",
                b"{}",
            )
            .expect("withdraw");
        let audited = engine.verify_audit().expect("verify").records;
        let after = engine
            .decide(&by("fan"), "home", Some(2), "test")
            .expect("decide");
        let verified = engine.verify_audit().expect("verify");
        assert_eq!(verified.records, audited + 1, "each decision is audited");
        assert!(verified.first_break.is_none());
        assert!(!after.explanation.personal);
        assert_eq!(after.explanation.purpose, None);
        assert_eq!(after.recommender, "popularity");
        assert_eq!(
            items(&after),
            ["a1", "a2"],
            "the most popular items, whoever asks"
        );
        assert!(after.items.iter().all(|i| i.because.is_none()));
        assert_eq!(after.stage, None, "the stage is not used without a basis");
        assert!(after.explanation.reasons[0].contains("You have not agreed to personalization"));
        // E-mail consent still stands, but only stage-free actions may be chosen.
        assert_eq!(
            after.action.as_ref().map(|a| a.name.as_str()),
            Some("homepage-banner")
        );
    }
);

parity_test!(caps_and_cooldowns_hold_under_concurrent_decisions, |db| {
    let (engine, clock) = engine(&db);
    world(&engine);
    ingest_at(
        &engine,
        now(),
        json!([viewed(
            "eve",
            "a1",
            1,
            &["personalization", "marketing.email"]
        )]),
    );
    engine.train_recommenders("test").expect("train");
    let engine = Arc::new(engine);
    // onboarding-guide: at most 2 a week, 2 days apart. 6 threads × 4 decisions at once.
    let count = |engine: &Arc<Engine>| -> usize {
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let engine = engine.clone();
                std::thread::spawn(move || {
                    (0..4)
                        .filter(|_| {
                            engine
                                .decide(&by("eve"), "home", Some(1), "test")
                                .expect("decide")
                                .action
                                .is_some_and(|a| a.name == "onboarding-guide")
                        })
                        .count()
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("thread")).sum()
    };
    assert_eq!(count(&engine), 1, "the cooldown allows one at a time");
    clock.set(now() + Duration::days(1));
    assert_eq!(count(&engine), 0, "still cooling down");
    clock.set(now() + Duration::days(3));
    assert_eq!(count(&engine), 1);
    clock.set(now() + Duration::days(6));
    assert_eq!(count(&engine), 0, "capped: two in the last 7 days");
    let d = engine
        .decide(&by("eve"), "home", Some(1), "test")
        .expect("decide");
    assert!(d
        .excluded_actions
        .iter()
        .any(|e| e.name == "onboarding-guide" && e.why["reason"] == "capped"));
    clock.set(now() + Duration::days(8));
    assert_eq!(count(&engine), 1, "the first left the window");
});

parity_test!(
    sensitive_traits_never_change_a_decision_nor_define_a_segment,
    |db| {
        let (engine, _) = engine(&db);
        world(&engine);
        for (user, gender, age) in [("twin-1", "female", 23), ("twin-2", "male", 71)] {
            ingest_at(
                &engine,
                now(),
                json!([
                    {"type": "identify", "userId": user, "messageId": format!("{user}-id"),
                     "timestamp": (now() - Duration::days(2)).to_rfc3339(),
                     "traits": {"gender": gender, "age": age, "birthday": "1950-01-01"},
                     "context": consent_context(&["personalization", "fairness_audit", "marketing.email"])},
                    viewed(user, "b1", 1, &[]),
                ]),
            );
        }
        engine.train_recommenders("test").expect("train");
        let strip = |mut d: Decision| {
            d.profile_id.clear();
            d
        };
        let one = strip(
            engine
                .decide(&by("twin-1"), "home", Some(4), "test")
                .expect("decide"),
        );
        let two = strip(
            engine
                .decide(&by("twin-2"), "home", Some(4), "test")
                .expect("decide"),
        );
        assert_eq!(one, two);
        for field in ["trait.gender", "trait.age", "trait.birthday"] {
            match engine.define_segment("s", &json!({"field": field, "op": "exists"}), "test") {
                Err(EngineError::Invalid { field: f, message }) => {
                    assert_eq!(f, "definition");
                    assert!(message.contains("sensitive"), "{message}");
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }
);

parity_test!(segments_are_sized_over_customers_with_a_basis, |db| {
    let (engine, _) = engine(&db);
    world(&engine);
    ingest_at(
        &engine,
        now(),
        json!([viewed("shy", "b1", 3, &[]), viewed("shy", "b2", 2, &[])]),
    );
    let def = json!({"all": [{"field": "event.Product Viewed.30d", "op": "gte", "value": 2},
                             {"field": "event.Product Viewed", "op": "lt", "value": 3}]});
    let v = engine
        .define_segment("browsers", &def, "test")
        .expect("define");
    assert_eq!(v.definition, def);
    assert_eq!(engine.segments().expect("list").len(), 1);
    let p = engine
        .preview_segment("browsers", 3, "test")
        .expect("preview");
    // 8 a-fans with exactly two views, 8 b-fans; not `shy` (no basis), not the 4 with three.
    assert_eq!(
        (p.size, p.evaluated, p.left_out, p.members.len()),
        (16, 20, 1, 3)
    );
    assert!(matches!(
        engine.define_segment(
            "bad",
            &json!({"field": "shoe_size", "op": "gt", "value": 1}),
            "test"
        ),
        Err(EngineError::Invalid { .. })
    ));
    engine.delete_segment("browsers", "test").expect("delete");
    assert!(matches!(
        engine.preview_segment("browsers", 3, "test"),
        Err(EngineError::NotFound(_))
    ));
    let proposal = engine.propose_segments(4, "test").expect("propose");
    assert_eq!(proposal.customers, 20);
    assert!(proposal.k >= 2 && proposal.clusters.len() == proposal.k);
});

parity_test!(models_are_reproducible_and_survive_a_restart, |db| {
    let (engine, _) = engine(&db);
    world(&engine);
    ingest_at(&engine, now(), json!([viewed("fan", "a3", 1, PERSONAL)]));
    engine.train_recommenders("test").expect("train");
    let first = engine
        .decide(&by("fan"), "home", Some(3), "test")
        .expect("decide");
    engine.train_recommenders("test").expect("train again");
    let again = engine
        .decide(&by("fan"), "home", Some(3), "test")
        .expect("decide");
    assert_eq!(first.items, again.items, "same data, same seed, same model");
    let (restarted, _) = engine_with(&db, RecommenderKind::Als);
    let after = restarted
        .decide(&by("fan"), "home", Some(3), "test")
        .expect("decide");
    assert_eq!(after.items, first.items);
    assert_eq!(after.model_trained_at, again.model_trained_at);
});

parity_test!(
    segment_membership_follows_ingest_consent_and_erasure,
    |db| {
        let (engine, _) = engine(&db);
        world(&engine);
        let def = json!({"field": "event.Product Viewed", "op": "gte", "value": 3});
        engine.define_segment("keen", &def, "test").expect("define");
        let size = |e: &Engine| e.segment_members("keen", 100).expect("members").size;
        // Defining evaluates everyone: the four a-fans who also viewed a3.
        assert_eq!(size(&engine), 4);
        // Ingest notes who changed; a refresh re-evaluates only them.
        ingest_at(
            &engine,
            now(),
            json!([
                viewed("b-fan-1", "b1", 3, &[]),
                viewed("b-fan-1", "b2", 2, &[])
            ]),
        );
        assert_eq!(
            engine.segment_members("keen", 1).expect("members").pending,
            1
        );
        let r = engine.refresh_segments(false, "test").expect("refresh");
        assert_eq!((r.customers, r.joined, r.left), (1, 1, 0));
        assert_eq!(size(&engine), 5);
        assert_eq!(
            engine
                .refresh_segments(false, "test")
                .expect("refresh")
                .customers,
            0
        );
        // Withdrawal takes the customer out at once, in the consent change's transaction.
        engine
            .set_consent(
                &by("b-fan-1"),
                &[("personalization".into(), "withdrawn".into())],
                "test",
                b"{}",
            )
            .expect("withdraw");
        assert_eq!(size(&engine), 4);
        // Erasure too.
        engine.erase(&by("a-fan-0"), "test").expect("erase");
        assert_eq!(size(&engine), 3);
        // A full refresh agrees with what was kept up to date.
        let r = engine.refresh_segments(true, "test").expect("refresh");
        assert_eq!((r.joined, r.left), (0, 0));
        engine.delete_segment("keen", "test").expect("delete");
        assert!(matches!(
            engine.segment_members("keen", 1),
            Err(EngineError::NotFound(_))
        ));
    }
);

parity_test!(
    a_stage_kept_under_another_purpose_is_used_only_with_a_basis_for_it,
    |db| {
        let clock = clock(now());
        let engine = Engine::new(db.store(), clock)
            .with_lifecycle(consentric_engine::LifecycleSettings {
                stage_purpose: "analytics".into(),
                ..Default::default()
            })
            .expect("lifecycle");
        world(&engine);
        // Both purposes: the stage (kept for analytics) is read and used.
        ingest_at(
            &engine,
            now(),
            json!([viewed("both", "a1", 2, &["personalization", "analytics"])]),
        );
        // Personalisation only: no stage is read.
        ingest_at(&engine, now(), json!([viewed("one", "a1", 2, PERSONAL)]));
        engine.train_recommenders("test").expect("train");
        let both = engine
            .decide(&by("both"), "home", None, "test")
            .expect("both");
        assert!(
            both.stage.is_some(),
            "placed under analytics and read with its grant"
        );
        assert!(both
            .explanation
            .data_used
            .iter()
            .any(|d| d.contains("kept for analytics")));
        let one = engine
            .decide(&by("one"), "home", None, "test")
            .expect("one");
        assert!(one.explanation.personal);
        assert_eq!(one.stage, None);
    }
);

parity_test!(
    a_preview_spends_no_cap_and_a_decision_records_exactly_one_action,
    |db| {
        use consentric_personalize::nba::{Action, Cap};
        let action = |name: &str, value: f64, cap: Option<Cap>| Action {
            name: name.into(),
            description: String::new(),
            stages: Vec::new(),
            channel: "web".into(),
            purpose: None,
            uplift: 0.1,
            value,
            use_clv: false,
            cap,
            cooldown_days: 0.0,
        };
        let settings = PersonalizeSettings {
            actions: Some(vec![
                action(
                    "once-a-week",
                    100.0,
                    Some(Cap {
                        count: 1,
                        days: 7.0,
                    }),
                ),
                action("fallback", 10.0, None),
            ]),
            ..PersonalizeSettings::default()
        };
        let clock = clock(now());
        let engine = Engine::new(db.store(), clock)
            .with_personalize(settings)
            .expect("settings");
        ingest_at(&engine, now(), json!([viewed("fan", "a1", 1, PERSONAL)]));
        let id = engine.find_profile(&by("fan")).expect("profile");
        let store = db.store();
        let recorded = || {
            store
                .write(|tx| tx.actions_since(&id, 0))
                .expect("actions")
                .into_iter()
                .map(|a| a.action)
                .collect::<Vec<_>>()
        };
        let audited = |what: &str| {
            store
                .audit_page(0, 10_000)
                .expect("audit")
                .into_iter()
                .filter(|r| r.action == what)
                .count()
        };
        let chosen = |d: &Decision| d.action.as_ref().map(|a| a.name.clone());

        for _ in 0..3 {
            let preview = engine
                .preview_decision(&by("fan"), "home", Some(1), "test")
                .expect("preview");
            assert_eq!(chosen(&preview).as_deref(), Some("once-a-week"));
        }
        assert!(recorded().is_empty(), "a preview records no action");
        assert_eq!(audited("decision.previewed"), 3, "every preview is audited");
        assert_eq!(audited("decision.made"), 0);

        let made = engine
            .decide(&by("fan"), "home", Some(1), "test")
            .expect("decide");
        assert_eq!(chosen(&made).as_deref(), Some("once-a-week"));
        assert_eq!(
            recorded(),
            vec!["once-a-week"],
            "a decision records exactly one"
        );
        assert_eq!(audited("decision.made"), 1);

        // The cap is now spent: the preview says so, and its choice is the next decision's.
        let preview = engine
            .preview_decision(&by("fan"), "home", Some(1), "test")
            .expect("preview");
        assert_eq!(chosen(&preview).as_deref(), Some("fallback"));
        assert!(preview
            .excluded_actions
            .iter()
            .any(|x| x.name == "once-a-week" && x.why["reason"] == "capped"));
        assert_eq!(recorded().len(), 1);
        let next = engine
            .decide(&by("fan"), "home", Some(1), "test")
            .expect("decide");
        assert_eq!(chosen(&next), chosen(&preview));
        assert_eq!(recorded().len(), 2);
    }
);

parity_test!(
    the_decision_log_keeps_each_decision_and_why_as_personal_data,
    |db| {
        let (engine, clock) = engine(&db);
        world(&engine);
        engine.train_recommenders("test").expect("train");
        let made = engine
            .decide(&by("b-fan-1"), "home", Some(2), "test")
            .expect("decide");
        // A preview decides the same but records nothing, so it is not logged.
        engine
            .preview_decision(&by("b-fan-1"), "home", Some(2), "test")
            .expect("preview");
        let log = engine
            .decision_log(&by("b-fan-1"), 10, "test")
            .expect("log");
        assert_eq!(log.len(), 1, "{log:?}");
        let d = &log[0];
        assert_eq!((d.seq, d.placement.as_str()), (1, "home"));
        assert_eq!(d.decision["personal"], true);
        assert_eq!(d.decision["purpose"], "personalization");
        let logged_items: Vec<&str> = d.decision["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(logged_items, items(&made));
        assert_eq!(
            d.decision["action"],
            json!(made.action.as_ref().map(|a| a.name.as_str()))
        );
        let reasons = d.decision["reasons"].as_array().expect("reasons");
        assert!(
            made.explanation
                .reasons
                .iter()
                .any(|r| reasons.contains(&json!(r))),
            "the same words as the explanation: {reasons:?}"
        );
        // It is in the customer's export.
        let mut doc = Vec::new();
        engine
            .export(&by("b-fan-1"), "test", &mut doc)
            .expect("export");
        let doc: Value = serde_json::from_slice(&doc).expect("json");
        assert_eq!(
            doc["decisions"][0]["decision"]["items"],
            d.decision["items"]
        );

        // Withdrawing the purpose it was kept for deletes it.
        engine
            .decide(&by("b-fan-2"), "home", Some(2), "test")
            .expect("decide");
        engine
            .set_consent(
                &by("b-fan-2"),
                &[("personalization".into(), "withdrawn".into())],
                "test",
                b"{}",
            )
            .expect("withdraw");
        assert!(engine
            .decision_log(&by("b-fan-2"), 10, "test")
            .expect("log")
            .is_empty());
        // Erasure deletes it with the rest: two interactions, the action taken, the log.
        let receipt = engine.erase(&by("b-fan-1"), "test").expect("erase");
        let body = receipt
            .verify(&engine.receipt_public_key().expect("key"))
            .expect("signed");
        assert_eq!(
            body.erased.personalization_rows,
            2 + u64::from(made.action.is_some()) + 1,
            "{:?}",
            body.erased
        );
        engine
            .decide(&by("b-fan-3"), "home", Some(2), "test")
            .expect("decide");
        // Retention: past the personalisation purpose's days, the sweep deletes it.
        let days = engine
            .purposes()
            .into_iter()
            .find(|p| p.id == "personalization")
            .expect("purpose")
            .retention_days;
        clock.set(now() + Duration::days(i64::from(days) - 1));
        assert_eq!(
            engine
                .sweep_retention("test")
                .expect("sweep")
                .decisions_deleted,
            0
        );
        clock.set(now() + Duration::days(i64::from(days) + 1));
        assert_eq!(
            engine
                .sweep_retention("test")
                .expect("sweep")
                .decisions_deleted,
            1
        );
        assert!(engine
            .decision_log(&by("b-fan-3"), 10, "test")
            .expect("log")
            .is_empty());
    }
);

parity_test!(a_merge_brings_the_decision_log_along, |db| {
    let (engine, _) = engine(&db);
    world(&engine);
    engine.train_recommenders("test").expect("train");
    ingest_at(
        &engine,
        now(),
        json!([viewed("ada", "b1", 3, PERSONAL), {"type": "page", "anonymousId": "dev-9",
            "messageId": "dev-9-home", "timestamp": now().to_rfc3339(), "name": "Home"}]),
    );
    engine
        .decide(&by("anonymous_id:dev-9"), "home", Some(1), "test")
        .expect("decide as a visitor");
    engine
        .decide(&by("ada"), "cart", Some(1), "test")
        .expect("decide");
    engine
        .decide(&by("ada"), "cart", Some(1), "test")
        .expect("decide again");
    // The visitor signs in: their profile merges into ada's, log and all.
    ingest_at(
        &engine,
        now(),
        json!([{"type": "identify", "userId": "ada", "anonymousId": "dev-9", "messageId": "signin"}]),
    );
    let log = engine.decision_log(&by("ada"), 10, "test").expect("log");
    let placements: Vec<(i64, &str)> = log.iter().map(|d| (d.seq, d.placement.as_str())).collect();
    assert_eq!(
        placements,
        [(3, "home"), (2, "cart"), (1, "cart")],
        "{log:?}"
    );
});
