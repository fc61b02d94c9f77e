//! The engine's parity suite: every test runs on SQLite and on PostgreSQL.

use consentric_engine::Engine;
use consentric_testkit::{parity_test, TestDb};
use serde_json::{json, Value};

use crate::support::{by, engine, typed_events};

fn trait_value(engine: &Engine, who: &str, name: &str) -> Option<Value> {
    engine
        .profile(&by(who), "test")
        .expect("profile")
        .traits
        .into_iter()
        .find(|t| t.name == name)
        .map(|t| t.value)
}

parity_test!(
    a_retried_message_id_is_stored_once_even_across_a_restart,
    |db| {
        let e = typed_events(&[
            json!({"type":"track","messageId":"m-1","userId":"u1","event":"Viewed"}),
        ]);
        let first = engine(&db);
        assert_eq!(first.ingest(e.clone()).expect("ingest").accepted, 1);
        assert_eq!(first.ingest(e.clone()).expect("retry").duplicates, 1);
        drop(first);
        let restarted = engine(&db);
        let report = restarted.ingest(e.clone()).expect("retry after restart");
        assert_eq!((report.accepted, report.duplicates), (0, 1));
        assert_eq!(restarted.totals().expect("totals").0, 1);
        assert_eq!(
            restarted
                .profile(&by("u1"), "test")
                .expect("profile")
                .counters
                .events,
            1
        );
    }
);

parity_test!(duplicates_inside_one_batch_are_stored_once, |db| {
    let e = typed_events(&[
        json!({"type":"track","messageId":"same","userId":"u1","event":"A"}),
        json!({"type":"track","messageId":"same","userId":"u1","event":"A"}),
    ]);
    let engine = engine(&db);
    let r = engine.ingest(e.clone()).expect("ingest");
    assert_eq!((r.accepted, r.duplicates), (1, 1));
});

parity_test!(identify_ties_the_anonymous_history_to_the_user, |db| {
    let engine = engine(&db);
    engine
        .ingest(typed_events(&[
            json!({"type":"page","messageId":"p1","anonymousId":"anon-1","name":"Home","timestamp":"2024-01-01T00:00:00Z"}),
            json!({"type":"track","messageId":"t1","anonymousId":"anon-1","event":"Product Viewed","timestamp":"2024-01-01T00:01:00Z"}),
        ]))
        .expect("anonymous visit");
    let anon_profile = engine
        .find_profile(&by("anonymous_id:anon-1"))
        .expect("anon profile");
    // The user already exists from another device.
    engine
        .ingest(typed_events(&[json!({"type":"identify","messageId":"i0","userId":"u-42","traits":{"plan":"free"},"timestamp":"2023-12-01T00:00:00Z"})]))
        .expect("earlier identify");
    engine
        .ingest(typed_events(&[json!({"type":"identify","messageId":"i1","userId":"u-42","anonymousId":"anon-1","traits":{"email":"a@example.com"},"timestamp":"2024-01-01T00:02:00Z"})]))
        .expect("identify");

    let p = engine.profile(&by("u-42"), "test").expect("profile");
    assert_eq!(
        engine
            .find_profile(&by("anonymous_id:anon-1"))
            .expect("anon"),
        engine.find_profile(&by("u-42")).expect("user")
    );
    assert_eq!(p.counters.events, 4, "the whole history is kept");
    assert_eq!(p.merged_from, vec![anon_profile.to_string()]);
    // The merged-away id redirects.
    assert_eq!(
        engine
            .profile(&by(&format!("profile:{anon_profile}")), "test")
            .expect("redirect")
            .profile_id,
        p.profile_id
    );
    assert_eq!(
        engine
            .events(&by("u-42"), 100, "test")
            .expect("events")
            .len(),
        4
    );
    assert_eq!(p.counters.first_seen, "2023-12-01T00:00:00.000Z");
    let graph = engine.identity_graph(&by("u-42"), "test").expect("graph");
    assert_eq!(graph.identities.len(), 2);
    assert_eq!(graph.links.len(), 1);
    assert_eq!(graph.links[0].via, "identify");
    assert_eq!(trait_value(&engine, "u-42", "plan"), Some(json!("free")));
    assert_eq!(
        trait_value(&engine, "u-42", "email"),
        Some(json!("a@example.com"))
    );
});

parity_test!(
    a_merge_inside_one_batch_takes_the_batch_s_earlier_events_along,
    |db| {
        // Events are written together at the end of a request: the anonymous events before
        // the identify that merges their profile must still end up with the user.
        let engine = engine(&db);
        engine
            .ingest(typed_events(&[
                json!({"type":"identify","messageId":"i0","userId":"u-7","traits":{"plan":"pro"}}),
            ]))
            .expect("the user, known from another device");
        let r = engine
            .ingest(typed_events(&[
                json!({"type":"page","messageId":"p1","anonymousId":"anon-7","name":"Home"}),
                json!({"type":"track","messageId":"o1","anonymousId":"anon-7","event":"Order Completed","properties":{"revenue":30}}),
                json!({"type":"identify","messageId":"i1","userId":"u-7","anonymousId":"anon-7"}),
                json!({"type":"track","messageId":"t2","userId":"u-7","event":"After"}),
                json!({"type":"track","messageId":"i0","userId":"u-7","event":"A retried message id"}),
            ]))
            .expect("one batch");
        assert_eq!((r.accepted, r.duplicates), (4, 1));
        let p = engine.profile(&by("u-7"), "test").expect("profile");
        assert_eq!(p.merged_from.len(), 1, "the anonymous profile merged in");
        assert_eq!(
            (p.counters.events, p.counters.orders),
            (5, 1),
            "{:?}",
            p.counters
        );
        assert!((p.counters.revenue - 30.0).abs() < 1e-9);
        let ids: Vec<String> = engine
            .events(&by("u-7"), 100, "test")
            .expect("events")
            .into_iter()
            .map(|e| e.event["messageId"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(ids.len(), 5, "{ids:?}");
        for id in ["p1", "o1", "i1", "t2", "i0"] {
            assert!(ids.iter().any(|i| i == id), "{id} missing from {ids:?}");
        }
        assert_eq!(
            engine.totals().expect("totals").0,
            5,
            "nothing stored twice"
        );
    }
);

parity_test!(a_shared_device_does_not_merge_two_known_customers, |db| {
    let engine = engine(&db);
    engine
        .ingest(typed_events(&[
            json!({"type":"identify","messageId":"a","userId":"alice","anonymousId":"kiosk"}),
            json!({"type":"identify","messageId":"b","userId":"bob","anonymousId":"kiosk"}),
        ]))
        .expect("ingest");
    assert_ne!(
        engine.find_profile(&by("alice")).expect("a"),
        engine.find_profile(&by("bob")).expect("b")
    );
    assert_eq!(
        engine
            .profile(&by("bob"), "test")
            .expect("bob")
            .counters
            .events,
        1
    );
});

parity_test!(alias_merges_two_users_and_keeps_both_histories, |db| {
    let engine = engine(&db);
    engine
        .ingest(typed_events(&[
            json!({"type":"track","messageId":"o1","userId":"old-id","event":"Order Completed","properties":{"revenue":10.5},"timestamp":"2024-01-01T00:00:00Z"}),
            json!({"type":"identify","messageId":"o2","userId":"old-id","traits":{"name":"Old"},"timestamp":"2024-01-02T00:00:00Z"}),
            json!({"type":"track","messageId":"n1","userId":"new-id","event":"Order Completed","properties":{"total":"4.5"},"timestamp":"2024-02-01T00:00:00Z"}),
            json!({"type":"identify","messageId":"n2","userId":"new-id","traits":{"name":"New"},"timestamp":"2024-02-02T00:00:00Z"}),
        ]))
        .expect("two users");
    engine
        .ingest(typed_events(&[json!({"type":"alias","messageId":"al","userId":"new-id","previousId":"old-id","timestamp":"2024-03-01T00:00:00Z"})]))
        .expect("alias");
    let p = engine.profile(&by("new-id"), "test").expect("profile");
    assert_eq!(
        engine.find_profile(&by("old-id")).expect("old"),
        engine.find_profile(&by("new-id")).expect("new")
    );
    assert_eq!(p.counters.orders, 2);
    assert!((p.counters.revenue - 15.0).abs() < 1e-9);
    assert_eq!(p.counters.events, 5);
    assert_eq!(p.counters.last_seen, "2024-03-01T00:00:00.000Z");
    assert_eq!(trait_value(&engine, "new-id", "name"), Some(json!("New")));
    let graph = engine.identity_graph(&by("new-id"), "test").expect("graph");
    assert!(graph.links.iter().any(|l| l.via == "alias"));
});

parity_test!(
    traits_keep_the_latest_value_by_event_time_with_provenance,
    |db| {
        let engine = engine(&db);
        engine
        .ingest(typed_events(&[
            json!({"type":"identify","messageId":"late","userId":"u","traits":{"plan":"pro","age":30},"timestamp":"2024-05-01T00:00:00Z"}),
        ]))
        .expect("newer first");
        engine
        .ingest(typed_events(&[
            json!({"type":"identify","messageId":"early","userId":"u","traits":{"plan":"free","name":"Ada Lovelace"},"timestamp":"2024-01-01T00:00:00Z"}),
        ]))
        .expect("older arrives late");
        let p = engine.profile(&by("u"), "test").expect("profile");
        let plan = p.traits.iter().find(|t| t.name == "plan").expect("plan");
        assert_eq!(
            plan.value,
            json!("pro"),
            "an out-of-order event must not roll a trait back"
        );
        assert_eq!(plan.message_id, "late");
        assert_eq!(plan.updated_at, "2024-05-01T00:00:00.000Z");
        assert_eq!(
            trait_value(&engine, "u", "name"),
            Some(json!("Ada Lovelace"))
        );
        assert_eq!(trait_value(&engine, "u", "age"), Some(json!(30)));
    }
);

parity_test!(
    traits_sent_twice_in_one_batch_keep_the_latest_by_event_time,
    |db| {
        let engine = engine(&db);
        let r = engine
        .ingest(typed_events(&[
            json!({"type":"identify","messageId":"b","userId":"u","traits":{"plan":"pro","age":30},"timestamp":"2024-05-01T00:00:00Z"}),
            json!({"type":"identify","messageId":"a","userId":"u","traits":{"plan":"free"},"timestamp":"2024-01-01T00:00:00Z"}),
            json!({"type":"identify","messageId":"c","userId":"u","traits":{"age":31},"timestamp":"2024-05-01T00:00:00Z"}),
        ]))
        .expect("one batch");
        assert_eq!(r.accepted, 3);
        let p = engine.profile(&by("u"), "test").expect("profile");
        let plan = p.traits.iter().find(|t| t.name == "plan").expect("plan");
        assert_eq!(
            (plan.value.clone(), plan.message_id.as_str()),
            (json!("pro"), "b")
        );
        assert_eq!(
            trait_value(&engine, "u", "age"),
            Some(json!(31)),
            "of two values at one time, the later sent wins"
        );
    }
);

parity_test!(order_counters_follow_the_ecommerce_spec, |db| {
    let engine = engine(&db);
    engine
        .ingest(typed_events(&[
            json!({"type":"track","messageId":"1","userId":"u","event":"Order Completed","properties":{"revenue":20}}),
            json!({"type":"track","messageId":"2","userId":"u","event":"Order Completed","properties":{"products":[{"price":2.5,"quantity":2},{"price":1}]}}),
            json!({"type":"track","messageId":"3","userId":"u","event":"Product Viewed","properties":{"revenue":999}}),
        ]))
        .expect("ingest");
    let c = engine.profile(&by("u"), "test").expect("profile").counters;
    assert_eq!((c.events, c.orders), (3, 2));
    assert!((c.revenue - 26.0).abs() < 1e-9, "{}", c.revenue);
});

parity_test!(keys_are_stored_hashed_and_scoped, |db| {
    let engine = engine(&db);
    let write = engine
        .create_key(consentric_engine::Scope::Write, Some("web"))
        .expect("key");
    assert_eq!(
        engine
            .authenticate(write.secret())
            .expect("auth")
            .map(|p| (p.key_id, p.scope)),
        Some((write.key_id.clone(), consentric_engine::Scope::Write))
    );
    assert_eq!(engine.authenticate("csw_nope").expect("auth"), None);
    let restarted = self::engine(&db);
    assert_eq!(
        restarted
            .authenticate(write.secret())
            .expect("auth")
            .map(|p| p.scope),
        Some(consentric_engine::Scope::Write)
    );
    assert_eq!(restarted.keys().expect("keys").len(), 1);
});

parity_test!(
    cdnow_import_turns_rows_into_orders_and_is_idempotent,
    |db| {
        let engine = engine(&db);
        let data = "customer_id date number_of_cds dollar_value\r\n00001 19970101 1 11.77\r\n00002 19970112 1 12.00\r\n00002 19970112 5 77.00\r\nbad line\r\n";
        let mut seen = 0;
        let s = consentric_engine::import::import(
            &engine,
            data.as_bytes(),
            consentric_engine::import::ImportFormat::Cdnow,
            &mut |b| seen = b,
        )
        .expect("import");
        assert_eq!((s.accepted, s.rejected), (3, 1));
        assert_eq!(seen, data.len() as u64);
        let again = consentric_engine::import::import(
            &engine,
            data.as_bytes(),
            consentric_engine::import::ImportFormat::Cdnow,
            &mut |_| {},
        )
        .expect("import again");
        assert_eq!((again.accepted, again.duplicates), (0, 3));
        let c = engine
            .profile(&by("00002"), "test")
            .expect("profile")
            .counters;
        assert_eq!(c.orders, 2);
        assert!((c.revenue - 89.0).abs() < 1e-9);
        assert_eq!(c.first_seen, "1997-01-12T00:00:00.000Z");
    }
);

parity_test!(
    an_import_goes_on_past_a_line_with_an_out_of_range_time,
    |db| {
        let engine = engine(&db);
        let data = concat!(
            r#"{"type":"track","messageId":"i1","userId":"u1","event":"A","timestamp":"2024-01-01T00:00:00Z"}"#,
            "\n",
            r#"{"type":"track","messageId":"i2","userId":"u1","event":"B","originalTimestamp":"+200000-01-01T00:00:00","sentAt":"-100000-01-01T00:00:00"}"#,
            "\n",
            r#"{"type":"track","messageId":"i3","userId":"u1","event":"C","timestamp":"2024-01-02T00:00:00Z"}"#,
            "\n",
        );
        let s = consentric_engine::import::import(
            &engine,
            data.as_bytes(),
            consentric_engine::import::ImportFormat::Ndjson,
            &mut |_| {},
        )
        .expect("import");
        assert_eq!((s.accepted, s.rejected), (2, 1));
        assert_eq!(s.rejections[0].0, 2);
        assert!(
            s.rejections[0].1.contains("originalTimestamp"),
            "{:?}",
            s.rejections
        );
    }
);

/// Events for `u1` (and its anonymous id) after `u1`'s profile was merged away must land on the surviving profile,
/// whether the merge came from this engine or from another one on the same database (a second
/// process: `consentric import` beside `serve`). The ingest writer caches identities between
/// transactions; this is what would break if that cache outlived a change it did not see.
fn events_follow_a_merge_made_by(same_engine: bool, db: &TestDb) {
    let a = engine(db);
    a.ingest(typed_events(&[
        json!({"type":"track","messageId":"c1","userId":"u1","anonymousId":"a1","event":"A","timestamp":"2024-01-01T00:00:00Z"}),
    ]))
    .expect("first");
    a.ingest(typed_events(&[
        json!({"type":"track","messageId":"c2","userId":"u1","event":"B","timestamp":"2024-01-02T00:00:00Z"}),
    ]))
    .expect("second, from the cache");
    let alias = typed_events(&[
        json!({"type":"alias","messageId":"c3","userId":"u9","previousId":"u1","timestamp":"2024-01-03T00:00:00Z"}),
    ]);
    if same_engine {
        a.ingest(alias).expect("alias");
    } else {
        engine(db).ingest(alias).expect("alias from another engine");
    }
    a.ingest(typed_events(&[
        json!({"type":"track","messageId":"c4","userId":"u1","event":"C","timestamp":"2024-01-04T00:00:00Z"}),
        json!({"type":"page","messageId":"c5","anonymousId":"a1","timestamp":"2024-01-05T00:00:00Z"}),
    ]))
    .expect("after the merge");
    let survivor = a.find_profile(&by("u9")).expect("u9");
    assert_eq!(a.find_profile(&by("u1")).expect("u1"), survivor);
    let p = a.profile(&by("u9"), "test").expect("profile");
    assert_eq!(a.find_profile(&by("a1")).expect("a1"), survivor);
    assert_eq!(p.counters.events, 5, "every event counted on the survivor");
    assert_eq!(p.counters.last_seen, "2024-01-05T00:00:00.000Z");
}

parity_test!(events_follow_a_merge_made_in_an_earlier_transaction, |db| {
    events_follow_a_merge_made_by(true, &db);
});

parity_test!(events_follow_a_merge_made_by_another_engine, |db| {
    events_follow_a_merge_made_by(false, &db);
});
