//! Consent signals, the consent API and the audit chain, on SQLite and PostgreSQL.

use consentric_engine::{
    BreakKind, ConsentSettings, Engine, EngineError, IngestContext, PolicySet,
};
use consentric_testkit::{hits_in_database_files, parity_test, TestDb};
use serde_json::{json, Value};

use crate::support::{by, clock, engine, events, noon};

fn engine_with(db: &TestDb, policy: PolicySet) -> Engine {
    Engine::with_policy(db.store(), clock(noon()), policy)
}

/// (decision, source, has_basis) of one purpose for one customer.
fn state(engine: &Engine, who: &str, purpose: &str) -> (Option<String>, Option<String>, bool) {
    let view = engine.consent(&by(who)).expect("consent");
    let p = view
        .purposes
        .into_iter()
        .find(|p| p.purpose == purpose)
        .expect("purpose");
    (p.decision, p.source, p.has_basis)
}

fn ctx(gpc: bool) -> IngestContext {
    IngestContext {
        gpc,
        actor: "test".into(),
        origin: consentric_engine::Origin::Server,
    }
}

parity_test!(segment_consent_objects_are_recorded_once_per_change, |db| {
    let engine = engine(&db);
    let prefs = |analytics: bool| json!({"consent": {"categoryPreferences": {"Analytics": analytics, "Advertising": false, "Unmapped": true}}});
    engine
        .ingest_with(
            events(json!([
                {"type":"page","messageId":"1","userId":"u","context":prefs(true),"timestamp":"2024-05-01T00:00:00Z"},
                {"type":"page","messageId":"2","userId":"u","context":prefs(true),"timestamp":"2024-05-02T00:00:00Z"},
                {"type":"page","messageId":"3","userId":"u","context":prefs(false),"timestamp":"2024-05-03T00:00:00Z"},
            ])),
            &ctx(false),
        )
        .expect("ingest");
    assert_eq!(
        state(&engine, "u", "analytics"),
        (Some("denied".into()), Some("segment".into()), false)
    );
    let history = engine.consent_history(&by("u")).expect("history");
    let analytics: Vec<&str> = history
        .iter()
        .filter(|h| h.purpose == "analytics")
        .map(|h| h.decision.as_str())
        .collect();
    assert_eq!(
        analytics,
        ["granted", "denied"],
        "a repeated choice adds nothing"
    );
    assert_eq!(
        history
            .iter()
            .filter(|h| h.purpose == "marketing.ads_sharing")
            .count(),
        1
    );
    assert!(history.iter().all(|h| h.evidence_hash.len() == 64));
    let audit = engine.verify_audit().expect("verify");
    assert_eq!((audit.records, audit.first_break), (3, None));
});

parity_test!(
    global_privacy_control_denies_every_sale_or_share_purpose,
    |db| {
        let engine = engine(&db);
        engine
        .ingest_with(
            events(json!([{"type":"track","messageId":"1","userId":"u","event":"E",
                "context":{"consent":{"categoryPreferences":{"Advertising":true,"Analytics":true}}}}])),
            &ctx(true),
        )
        .expect("ingest");
        assert_eq!(
            state(&engine, "u", "marketing.ads_sharing"),
            (Some("denied".into()), Some("gpc".into()), false)
        );
        assert_eq!(
            state(&engine, "u", "analytics"),
            (Some("granted".into()), Some("segment".into()), true)
        );
    }
);

parity_test!(tcf_strings_are_decoded_and_mapped_by_configuration, |db| {
    // IAB's @iabtcf/core decodes this public example to purpose consents 1, 2 and 3.
    let tc = "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA";
    let mut consent = ConsentSettings::default();
    consent.tcf.insert("1".into(), vec!["analytics".into()]);
    consent.tcf.insert("3".into(), vec!["analytics".into()]);
    consent
        .tcf
        .insert("4".into(), vec!["marketing.ads_sharing".into()]);
    let engine = engine_with(&db, PolicySet::new(None, &[], &consent).expect("policy"));
    engine
        .ingest_with(events(json!([{"type":"track","messageId":"1","userId":"u","event":"E","context":{"consent":{"tcfString": tc}}}])), &ctx(false))
        .expect("ingest");
    assert_eq!(
        state(&engine, "u", "analytics"),
        (Some("granted".into()), Some("tcf".into()), true)
    );
    assert_eq!(
        state(&engine, "u", "marketing.ads_sharing"),
        (Some("denied".into()), Some("tcf".into()), false)
    );
    assert_eq!(
        state(&engine, "u", "personalization"),
        (None, None, false),
        "unmapped purposes are untouched"
    );
});

parity_test!(
    the_publisher_s_own_purposes_decide_when_the_tc_string_has_them,
    |db| {
        // Made with the IAB's @iabtcf/core 1.5.6: the core segment grants the vendors TCF purposes
        // 2, 3 and 4; the Publisher TC segment grants the publisher 5 to 9 and its legitimate
        // interest in 10.
        let with_publisher = "CP-oB1AP-oB1AAKACBENCWEgAHAAAAAAAAqIAAAAAAAA.YfAAAAgAASAA";
        let core_only = "CP-oB1AP-oB1AAKACBENCWEgAHAAAAAAAAqIAAAAAAAA";
        let engine = engine(&db);
        let send = |user: &str, tc: &str| {
            engine
                .ingest_with(
                    events(
                        json!([{"type":"track","messageId": format!("{user}-1"),"userId": user,
                    "event":"E","context":{"consent":{"tcfString": tc}}}]),
                    ),
                    &ctx(false),
                )
                .expect("ingest");
        };
        send("pub", with_publisher);
        send("core", core_only);
        // The default mapping: 2–4 ads sharing, 5–6 personalisation, 7–9 analytics, 10 training.
        for (purpose, publisher_grants, core_grants) in [
            ("marketing.ads_sharing", false, true),
            ("personalization", true, false),
            ("analytics", true, false),
        ] {
            assert_eq!(
                state(&engine, "pub", purpose).2,
                publisher_grants,
                "pub: {purpose}"
            );
            assert_eq!(
                state(&engine, "core", purpose).2,
                core_grants,
                "core: {purpose}"
            );
        }
    }
);

parity_test!(
    a_malformed_tc_string_refuses_the_batch_and_changes_nothing,
    |db| {
        let engine = engine(&db);
        let e = engine
        .ingest_with(
            events(json!([
                {"type":"identify","messageId":"1","userId":"u","traits":{"email":"u@example.com"}},
                {"type":"track","messageId":"2","userId":"u","event":"E","context":{"consent":{"tcfString":"not-a-tc-string"}}},
            ])),
            &ctx(false),
        )
        .expect_err("refused");
        match e {
            EngineError::Invalid { field, .. } => {
                assert_eq!(field, "batch[1].context.consent.tcfString")
            }
            other => panic!("{other}"),
        }
        assert_eq!(engine.totals().expect("totals"), (0, 0));
        assert_eq!(engine.verify_audit().expect("verify").records, 0);
    }
);

parity_test!(the_consent_api_checks_everything_before_writing, |db| {
    let engine = engine(&db);
    engine
        .ingest(events(
            json!([{"type":"identify","messageId":"1","userId":"u"}]),
        ))
        .expect("ingest");
    let set = |pairs: &[(&str, &str)]| {
        let decisions: Vec<(String, String)> = pairs
            .iter()
            .map(|(p, d)| ((*p).into(), (*d).into()))
            .collect();
        engine.set_consent(&by("u"), &decisions, "key:test", b"{}")
    };
    match set(&[("analytics", "granted"), ("astrology", "granted")]) {
        Err(EngineError::Invalid { field, .. }) => assert_eq!(field, "purposes.astrology"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        set(&[("analytics", "maybe")]),
        Err(EngineError::Invalid { .. })
    ));
    assert!(
        engine
            .consent_history(&by("u"))
            .expect("history")
            .is_empty(),
        "nothing written"
    );
    let decisions = vec![("analytics".to_owned(), "granted".to_owned())];
    assert!(matches!(
        engine.set_consent(&by("nobody"), &decisions, "key:test", b"{}"),
        Err(EngineError::NotFound(_))
    ));
    let view = set(&[("analytics", "granted"), ("personalization", "granted")]).expect("set");
    assert!(
        view.purposes
            .iter()
            .find(|p| p.purpose == "analytics")
            .expect("p")
            .has_basis
    );
    set(&[("analytics", "withdrawn")]).expect("withdraw");
    assert_eq!(
        state(&engine, "u", "analytics"),
        (Some("withdrawn".into()), Some("api".into()), false)
    );
    assert_eq!(engine.consent_history(&by("u")).expect("history").len(), 3);
    assert_eq!(engine.verify_audit().expect("verify").records, 3);
});

parity_test!(consent_follows_a_merged_profile, |db| {
    let engine = engine(&db);
    engine
        .ingest_with(
            events(json!([
                {"type":"page","messageId":"1","anonymousId":"a","context":{"consent":{"categoryPreferences":{"Analytics":true}}}},
                {"type":"identify","messageId":"2","anonymousId":"a","userId":"u"},
            ])),
            &ctx(false),
        )
        .expect("ingest");
    assert_eq!(
        state(&engine, "u", "analytics"),
        (Some("granted".into()), Some("segment".into()), true)
    );
});

fn chained(db: &TestDb) -> Engine {
    let engine = engine(db);
    engine
        .ingest(events(
            json!([{"type":"identify","messageId":"1","userId":"u"}]),
        ))
        .expect("ingest");
    for d in ["granted", "withdrawn", "granted", "denied"] {
        engine
            .set_consent(
                &by("u"),
                &[("analytics".into(), d.into())],
                "key:test",
                d.as_bytes(),
            )
            .expect("set");
    }
    let v = engine.verify_audit().expect("verify");
    assert_eq!((v.records, v.first_break), (4, None));
    engine
}

fn broken_at(engine: &Engine) -> (i64, BreakKind) {
    let b = engine
        .verify_audit()
        .expect("verify")
        .first_break
        .expect("a break is found");
    (b.seq, b.kind)
}

parity_test!(an_edited_audit_record_is_found, |db| {
    let engine = chained(&db);
    db.execute_raw("UPDATE audit_log SET detail = '{\"purpose\":\"analytics\",\"decision\":\"granted\"}' WHERE seq = 2");
    assert_eq!(broken_at(&engine), (2, BreakKind::Edited));
});

parity_test!(a_deleted_audit_record_is_found, |db| {
    let engine = chained(&db);
    db.execute_raw("DELETE FROM audit_log WHERE seq = 2");
    assert_eq!(broken_at(&engine), (3, BreakKind::Missing));
});

parity_test!(an_inserted_audit_record_is_found, |db| {
    let engine = chained(&db);
    // Make room at position 3 and slip a record in, chained to record 2 as a forger would.
    db.execute_raw(
        "UPDATE audit_log SET seq = seq + 100 WHERE seq >= 3;
         UPDATE audit_log SET seq = seq - 99 WHERE seq >= 103;
         INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash)
           SELECT 3, at, actor, action, subject, detail, hash, hash FROM audit_log WHERE seq = 2;",
    );
    let (seq, _) = broken_at(&engine);
    assert_eq!(seq, 3);
});

parity_test!(reordered_audit_records_are_found, |db| {
    let engine = chained(&db);
    // Swap the contents of records 2 and 3, keeping their positions.
    db.execute_raw(
        "UPDATE audit_log SET seq = 100 WHERE seq = 2;
         UPDATE audit_log SET seq = 2 WHERE seq = 3;
         UPDATE audit_log SET seq = 3 WHERE seq = 100;",
    );
    assert_eq!(broken_at(&engine), (2, BreakKind::OutOfChain));
});

fn stored(engine: &Engine, who: &str) -> Vec<Value> {
    engine
        .events(&by(who), 100, "test")
        .expect("events")
        .into_iter()
        .map(|e| e.event)
        .collect()
}

parity_test!(
    fields_without_a_category_or_a_basis_are_never_stored,
    |db| {
        let engine = engine(&db);
        let marker = "zq-unmapped-marker-7731";
        let report = engine
        .ingest(events(json!([
            {"type":"identify","messageId":"1","userId":"u","traits":{"email":"u@example.com","shoeSize":marker},
             "context":{"ip":"203.0.113.77","campaign":{"name":"spring-zq-campaign"},"library":{"name":"test"},
                        "consent":{"categoryPreferences":{"Advertising":true}}}},
        ])))
        .expect("ingest");
        assert_eq!(
            (report.fields_unmapped, report.fields_without_basis),
            (1, 1)
        );
        let e = &stored(&engine, "u")[0];
        assert_eq!(
            e["traits"],
            json!({"email": "u@example.com"}),
            "the unmapped trait is gone"
        );
        assert_eq!(
            e["context"]["ip"], "203.0.113.0",
            "kept for ad sharing, truncated to its /24"
        );
        assert!(
            e["context"].get("campaign").is_none(),
            "campaign data needs analytics consent"
        );
        assert_eq!(
            e["context"]["library"]["name"], "test",
            "the library describes the call and stays"
        );
        let profile = engine.profile(&by("u"), "test").expect("profile");
        assert!(profile.traits.iter().all(|t| t.name != "shoeSize"));
        let metrics = engine.metrics().render();
        assert!(
            metrics.contains(r#"consentric_fields_dropped_total{reason="unmapped"} 1"#),
            "{metrics}"
        );
        assert!(
            metrics.contains(r#"consentric_fields_dropped_total{reason="no_basis"} 1"#),
            "{metrics}"
        );
        // Adversarial: the dropped values are nowhere in the database files.
        if let Some(dir) = db.data_dir() {
            drop(engine);
            for entry in std::fs::read_dir(dir).expect("dir") {
                let bytes = std::fs::read(entry.expect("entry").path()).expect("read");
                for needle in [marker, "spring-zq-campaign", "203.0.113.77"] {
                    assert!(
                        !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                        "{needle} found on disk"
                    );
                }
            }
        }
    }
);

parity_test!(consent_given_on_an_event_governs_what_of_it_is_kept, |db| {
    let engine = engine(&db);
    engine
        .ingest(events(json!([
            {"type":"page","messageId":"1","userId":"u","context":{"campaign":{"name":"before"}},"timestamp":"2024-05-01T00:00:00Z"},
            {"type":"page","messageId":"2","userId":"u","timestamp":"2024-05-02T00:00:00Z",
             "context":{"campaign":{"name":"with-consent"},"consent":{"categoryPreferences":{"Analytics":true}}}},
        ])))
        .expect("ingest");
    let events = stored(&engine, "u");
    let campaign = |mid: &str| {
        events
            .iter()
            .find(|e| e["messageId"] == mid)
            .expect("event")["context"]["campaign"]
            .clone()
    };
    assert_eq!(
        campaign("1"),
        Value::Null,
        "no basis at the time of the first page view"
    );
    assert_eq!(campaign("2")["name"], "with-consent");
});

parity_test!(
    a_purpose_sees_only_its_categories_and_every_view_is_audited,
    |db| {
        let engine = engine(&db);
        engine
            .ingest(events(
                json!([{"type":"identify","messageId":"1","userId":"u",
            "traits":{"email":"u@example.com","plan":"pro","gender":"f","logins":3}}]),
            ))
            .expect("ingest");
        // No consent to personalisation yet: the gate refuses, and nothing is audited.
        match engine.profile_for_purpose(&by("u"), "personalization", "key:test") {
            Err(EngineError::NoBasis(reason)) => {
                assert!(reason.contains("personalization"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            engine.profile_for_purpose(&by("u"), "astrology", "key:test"),
            Err(EngineError::Invalid { .. })
        ));
        assert_eq!(engine.verify_audit().expect("verify").records, 0);
        engine
            .set_consent(
                &by("u"),
                &[("personalization".into(), "granted".into())],
                "key:test",
                b"{}",
            )
            .expect("grant");
        let view = engine
            .profile_for_purpose(&by("u"), "personalization", "key:test")
            .expect("view");
        let names: Vec<&str> = view.traits.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["logins"],
            "behaviour only: no e-mail, no account, never gender"
        );
        assert!(
            view.withheld.contains(&"gender".to_owned())
                && view.withheld.contains(&"email".to_owned())
        );
        // Fairness audits may see demographics (legal obligation), not e-mail.
        let fair = engine
            .profile_for_purpose(&by("u"), "fairness_audit", "key:test")
            .expect("view");
        assert_eq!(
            fair.traits
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>(),
            ["gender"]
        );
        let v = engine.verify_audit().expect("verify");
        assert_eq!(
            (v.records, v.first_break),
            (3, None),
            "one consent change and two views"
        );
    }
);

parity_test!(
    withdrawing_the_last_basis_for_a_category_deletes_that_data,
    |db| {
        let engine = engine(&db);
        engine.ingest(events(json!([{"type":"identify","messageId":"0","userId":"u","traits":{"email":"u@example.com"}}]))).expect("ingest");
        engine
            .set_consent(
                &by("u"),
                &[("analytics".into(), "granted".into())],
                "key:test",
                b"grant",
            )
            .expect("grant");
        engine
        .ingest(events(json!([
            {"type":"page","messageId":"1","userId":"u","name":"Home","context":{"campaign":{"name":"spring"},"page":{"path":"/"}}},
            {"type":"identify","messageId":"2","userId":"u","traits":{"logins":7}},
        ])))
        .expect("ingest");
        let page = |engine: &Engine| {
            stored(engine, "u")
                .into_iter()
                .find(|e| e["messageId"] == "1")
                .expect("page")
        };
        assert_eq!(
            page(&engine)["context"]["campaign"]["name"],
            "spring",
            "kept while analytics has consent"
        );

        engine
            .set_consent(
                &by("u"),
                &[("analytics".into(), "withdrawn".into())],
                "key:test",
                b"withdraw",
            )
            .expect("withdraw");
        let after = page(&engine);
        assert!(
            after["context"].get("campaign").is_none(),
            "campaign data served only analytics: deleted"
        );
        assert_eq!(
            after["context"]["page"]["path"], "/",
            "browsing still serves model training (legitimate interest)"
        );
        let profile = engine.profile(&by("u"), "test").expect("profile");
        let names: Vec<&str> = profile.traits.iter().map(|t| t.name.as_str()).collect();
        assert!(
            names.contains(&"email") && names.contains(&"logins"),
            "{names:?}"
        );
        // The deletion is audited, and the chain still verifies.
        let v = engine.verify_audit().expect("verify");
        assert_eq!(
            (v.records, v.first_break),
            (6, None),
            "grant, withdrawal, deletion, and the three reads above (two of events, one of the profile)"
        );

        // An objection to model training leaves browsing data without any basis: it goes too,
        // and this time through a signal on an event.
        engine
            .ingest(events(
                json!([{"type":"track","messageId":"3","userId":"u","event":"E",
            "context":{"consent":{"categoryPreferences":{"model_training":false}}}}]),
            ))
            .expect("objection");
        assert!(
            page(&engine)["context"].get("page").is_none(),
            "no purpose with a basis may use browsing data now"
        );
        assert!(engine
            .profile(&by("u"), "test")
            .expect("profile")
            .traits
            .iter()
            .all(|t| t.name != "logins"));
    }
);

parity_test!(
    retention_deletes_what_outlived_every_purpose_that_may_keep_it,
    |db| {
        // The engine's clock stands at 2024-06-01.
        let engine = engine(&db);
        engine
        .ingest(events(json!([
            {"type":"track","messageId":"ancient","userId":"u","event":"Order Completed","properties":{"revenue":5},"timestamp":"2013-01-01T00:00:00Z"},
            {"type":"identify","messageId":"old-traits","userId":"u","traits":{"email":"u@example.com","logins":3},"timestamp":"2022-03-01T00:00:00Z"},
            {"type":"page","messageId":"page","userId":"u","timestamp":"2023-04-01T00:00:00Z",
             "context":{"page":{"path":"/"},"device":{"id":"d-1"},"consent":{"categoryPreferences":{"Advertising":true}}}},
            {"type":"page","messageId":"recent","userId":"u","timestamp":"2024-05-01T00:00:00Z","context":{"page":{"path":"/new"}}},
        ])))
        .expect("ingest");
        let report = engine.sweep_retention("test").expect("sweep");
        assert_eq!(
            (
                report.events_deleted,
                report.events_rewritten,
                report.traits_deleted
            ),
            (1, 2, 1),
            "{report:?}"
        );
        let left = stored(&engine, "u");
        assert!(
            left.iter().all(|e| e["messageId"] != "ancient"),
            "older than every purpose's retention"
        );
        let identify = left
            .iter()
            .find(|e| e["messageId"] == "old-traits")
            .expect("identify");
        assert_eq!(
            identify["traits"],
            json!({"email": "u@example.com"}),
            "logins left the stored event too"
        );
        let page = left
            .iter()
            .find(|e| e["messageId"] == "page")
            .expect("page");
        assert!(
            page["context"].get("device").is_none(),
            "device ids serve ad sharing only, kept 365 days"
        );
        assert_eq!(
            page["context"]["page"]["path"], "/",
            "browsing may be kept 730 days (analytics)"
        );
        let names: Vec<String> = engine
            .profile(&by("u"), "test")
            .expect("profile")
            .traits
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(
            names,
            ["email"],
            "logins (behaviour, at most 730 days) went; e-mail (essential, 3650) stays"
        );
        // A second sweep finds nothing, and both are in the audit chain.
        assert_eq!(
            engine.sweep_retention("test").expect("sweep"),
            Default::default()
        );
        let v = engine.verify_audit().expect("verify");
        assert_eq!(v.first_break, None);
        assert!(v.records >= 3);
    }
);

/// What a sweep deletes does not linger in SQLite's files: its old pages are not left in the
/// write-ahead log, and `secure_delete` zeroes them in the database.
#[test]
fn retention_leaves_nothing_of_a_deleted_event_in_the_database_files() {
    let db = TestDb::sqlite();
    let engine = engine(&db);
    engine
        .ingest(events(json!([
            {"type":"track","messageId":"ancient","userId":"u","event":"Order Completed","properties":{"revenue":5},"timestamp":"2013-01-01T00:00:00Z"},
            {"type":"page","messageId":"recent","userId":"u","timestamp":"2024-05-01T00:00:00Z","context":{"page":{"path":"/new"}}},
        ])))
        .expect("ingest");
    let dir = db.data_dir().expect("a SQLite directory");
    let sealed: String = rusqlite::Connection::open(dir.join("consentric.db"))
        .expect("open")
        .query_row(
            "SELECT payload FROM events WHERE message_id = 'ancient'",
            [],
            |r| r.get(0),
        )
        .expect("the old event is stored");
    // Its ciphertext, past the key id: long enough to be found nowhere by chance.
    let needle = &sealed.as_bytes()[sealed.len() - 48..];
    assert!(
        hits_in_database_files(dir, needle) > 0,
        "the scan finds the event before the sweep"
    );
    let report = engine.sweep_retention("test").expect("sweep");
    assert_eq!(report.events_deleted, 1, "{report:?}");
    assert_eq!(
        hits_in_database_files(dir, needle),
        0,
        "the deleted event is still in the database files"
    );
}

parity_test!(a_view_prunes_events_to_its_purposes_categories, |db| {
    let engine = engine(&db);
    engine
        .ingest(events(json!([{"type":"page","messageId":"1","userId":"u","name":"Home",
            "properties":{"path":"/shoes"},
            "context":{"campaign":{"name":"spring"},"page":{"path":"/shoes"},
                       "consent":{"categoryPreferences":{"Analytics":true,"Personalization":true}}}}])))
        .expect("ingest");
    let stored_page = &stored(&engine, "u")[0];
    assert_eq!(
        stored_page["context"]["campaign"]["name"], "spring",
        "analytics may keep it"
    );
    let view = engine
        .profile_for_purpose(&by("u"), "personalization", "key:test")
        .expect("view");
    let page = &view.events[0];
    assert_eq!(
        page["properties"]["path"], "/shoes",
        "browsing serves personalisation"
    );
    assert!(
        page["context"].get("campaign").is_none(),
        "campaign data is analytics', not personalisation's"
    );
    assert_eq!(page["userId"], "u", "identifiers are structural");
});

parity_test!(
    a_cut_off_or_rewritten_end_is_found_against_an_anchor,
    |db| {
        let engine = chained(&db);
        let head = engine.verify_audit().expect("verify").head.expect("head");
        assert_eq!(head.seq, 4);
        let against = |engine: &Engine| {
            engine
                .verify_audit_against(std::slice::from_ref(&head))
                .expect("verify")
                .first_break
                .map(|b| (b.seq, b.kind))
        };
        assert_eq!(against(&engine), None, "intact against its own head");

        db.execute_raw("DELETE FROM audit_log WHERE seq = 4");
        let v = engine.verify_audit().expect("verify");
        assert_eq!(
            (v.records, v.first_break),
            (3, None),
            "the chain alone cannot see its end cut off"
        );
        assert_eq!(against(&engine), Some((4, BreakKind::Truncated)));

        // A properly chained record 4 in place of the cut one: the chain was recomputed from there.
        engine
            .set_consent(
                &by("u"),
                &[("analytics".into(), "granted".into())],
                "key:test",
                b"again",
            )
            .expect("set");
        assert_eq!(engine.verify_audit().expect("verify").first_break, None);
        assert_eq!(against(&engine), Some((4, BreakKind::Rewritten)));
    }
);

parity_test!(a_restriction_suspends_processing_and_keeps_the_data, |db| {
    let engine = engine(&db);
    engine
        .ingest(events(json!([
            {"type":"identify","messageId":"r1","userId":"u","traits":{"email":"u@example.com","logins":7}},
            {"type":"page","messageId":"r2","userId":"u","name":"Home","properties":{"path":"/before"}},
        ])))
        .expect("ingest");
    engine
        .set_consent(
            &by("u"),
            &[("personalization".into(), "granted".into())],
            "key:test",
            b"{}",
        )
        .expect("grant");
    engine
        .profile_for_purpose(&by("u"), "personalization", "key:test")
        .expect("a view before the restriction");

    let view = engine
        .restrict(&by("u"), true, "key:test")
        .expect("restrict");
    assert!(view.restricted);
    let basis = |v: &consentric_engine::ConsentView, p: &str| {
        v.purposes
            .iter()
            .find(|x| x.purpose == p)
            .expect("p")
            .has_basis
    };
    assert!(!basis(&view, "personalization") && !basis(&view, "model_training"));
    assert!(basis(&view, "essential") && basis(&view, "fairness_audit"));
    assert!(matches!(
        engine.profile_for_purpose(&by("u"), "personalization", "key:test"),
        Err(EngineError::NoBasis(_))
    ));
    // Nothing stored was deleted...
    let page = |engine: &Engine, id: &str| {
        stored(engine, "u")
            .into_iter()
            .find(|e| e["messageId"] == id)
            .expect("event")
    };
    assert_eq!(page(&engine, "r2")["properties"]["path"], "/before");
    let profile = engine.profile(&by("u"), "test").expect("profile");
    assert!(profile.traits.iter().any(|t| t.name == "logins"));
    // ...but what arrives now keeps only what essential and legal obligations may use.
    engine
        .ingest(events(json!([
            {"type":"page","messageId":"r3","userId":"u","name":"Home","properties":{"path":"/during"}},
        ])))
        .expect("ingest");
    assert!(page(&engine, "r3")["properties"].get("path").is_none());

    let lifted = engine.restrict(&by("u"), false, "key:test").expect("lift");
    assert!(!lifted.restricted && basis(&lifted, "personalization"));
    engine
        .profile_for_purpose(&by("u"), "personalization", "key:test")
        .expect("a view after the restriction is lifted");

    // Withdrawing (and objecting) during a restriction still deletes what then has no basis
    // at all: a restriction keeps data only from processing, not from the customer's choices.
    engine
        .restrict(&by("u"), true, "key:test")
        .expect("restrict again");
    engine
        .set_consent(
            &by("u"),
            &[
                ("personalization".into(), "withdrawn".into()),
                ("model_training".into(), "denied".into()),
            ],
            "key:test",
            b"{}",
        )
        .expect("withdraw and object");
    assert!(
        page(&engine, "r2")["properties"].get("path").is_none(),
        "browsing data lost its last basis"
    );
    let actions: Vec<String> = engine
        .consent_history(&by("u"))
        .expect("history")
        .into_iter()
        .map(|h| format!("{}:{}", h.purpose, h.decision))
        .collect();
    assert!(
        actions.contains(&"restriction:granted".to_owned()),
        "{actions:?}"
    );
    assert!(actions.contains(&"restriction:withdrawn".to_owned()));
    assert_eq!(engine.verify_audit().expect("verify").first_break, None);
});

parity_test!(
    a_rectified_trait_holds_against_older_events_and_is_audited,
    |db| {
        let engine = engine(&db);
        engine
            .ingest(events(json!([
                {"type":"identify","messageId":"f1","userId":"u","timestamp":"2024-05-01T00:00:00Z",
                 "traits":{"email":"old@example.com","name":"Ada Lovelace"}},
            ])))
            .expect("ingest");
        let profile = engine
            .rectify(&by("u"), "name", &json!("Ada King"), "key:test")
            .expect("rectify");
        let name = |p: &consentric_engine::ProfileView| {
            p.traits
                .iter()
                .find(|t| t.name == "name")
                .map(|t| t.value.clone())
        };
        assert_eq!(name(&profile), Some(json!("Ada King")));
        // The stored event that carried the inaccurate name now carries the correct one; the
        // other trait in it is untouched.
        let stored = engine.events(&by("u"), 10, "test").expect("events");
        let traits = &stored[0].event["traits"];
        assert_eq!(traits["name"], json!("Ada King"));
        assert_eq!(traits["email"], json!("old@example.com"));
        // An event sent before the correction (older timestamp) does not roll it back.
        engine
            .ingest(events(json!([
                {"type":"identify","messageId":"f2","userId":"u","timestamp":"2024-05-02T00:00:00Z",
                 "traits":{"name":"Ada Lovelace"}},
            ])))
            .expect("late event");
        assert_eq!(
            name(&engine.profile(&by("u"), "test").expect("profile")),
            Some(json!("Ada King"))
        );
        // Only traits the customer has, and only mapped ones.
        for bad in ["nickname", "favourite_colour"] {
            assert!(matches!(
                engine.rectify(&by("u"), bad, &json!("x"), "key:test"),
                Err(EngineError::Invalid { .. })
            ));
        }
        assert!(matches!(
            engine.rectify(&by("nobody"), "name", &json!("x"), "key:test"),
            Err(EngineError::NotFound(_))
        ));
        assert_eq!(engine.verify_audit().expect("verify").first_break, None);
    }
);

parity_test!(
    a_withdrawal_on_an_event_deletes_what_its_own_batch_stored_before_it,
    |db| {
        let engine = engine(&db);
        engine
            .ingest(events(
                json!([{"type":"identify","messageId":"0","userId":"u"}]),
            ))
            .expect("ingest");
        engine
            .set_consent(
                &by("u"),
                &[("analytics".into(), "granted".into())],
                "key:test",
                b"grant",
            )
            .expect("grant");
        // One batch: a page with campaign data (only analytics may use it), then a server's
        // event withdrawing analytics. The page is stored first, so the withdrawal reaches it.
        let r = engine
            .ingest(events(json!([
                {"type":"page","messageId":"1","userId":"u","name":"Home","context":{"campaign":{"name":"spring"}}},
                {"type":"track","messageId":"w","userId":"u","event":"E",
                 "context":{"consent":{"categoryPreferences":{"analytics":false}}}},
            ])))
            .expect("ingest");
        assert_eq!(r.accepted, 2);
        let page = stored(&engine, "u")
            .into_iter()
            .find(|e| e["messageId"] == "1")
            .expect("the page is kept");
        assert!(
            page["context"].get("campaign").is_none(),
            "campaign data lost its only basis in the same batch: {page}"
        );
    }
);

/// A customer who granted analytics and has a page stored with campaign data (which only
/// analytics may use), whose consent someone holding the public browser key then withdrew.
fn withdrawn_from_a_browser(
    db: &TestDb,
) -> (Engine, std::sync::Arc<consentric_engine::FixedClock>) {
    let clock = clock(noon());
    let engine = Engine::new(db.store(), clock.clone());
    engine
        .ingest(events(
            json!([{"type":"identify","messageId":"0","userId":"u"}]),
        ))
        .expect("ingest");
    engine
        .set_consent(
            &by("u"),
            &[("analytics".into(), "granted".into())],
            "key:test",
            b"grant",
        )
        .expect("grant");
    engine
        .ingest(events(json!([
            {"type":"page","messageId":"1","userId":"u","name":"Home","context":{"campaign":{"name":"spring"}}},
        ])))
        .expect("ingest");
    let browser = IngestContext {
        gpc: false,
        actor: "key:browser".into(),
        origin: consentric_engine::Origin::Browser,
    };
    let withdraw = json!([{"type":"track","messageId":"w","userId":"u","event":"E",
        "context":{"consent":{"categoryPreferences":{"analytics":false}}}}]);
    engine
        .ingest_with(events(withdraw), &browser)
        .expect("ingest");
    (engine, clock)
}

/// The campaign name of the customer's stored page, if the page is there.
fn campaign(engine: &Engine) -> Option<Value> {
    stored(engine, "u")
        .into_iter()
        .find(|e| e["messageId"] == "1")
        .map(|e| e["context"]["campaign"]["name"].clone())
}

parity_test!(
    a_withdrawal_from_a_browser_key_restricts_at_once_and_deletes_only_after_its_grace,
    |db| {
        let (engine, clock) = withdrawn_from_a_browser(&db);
        // Processing stops at once...
        assert!(!state(&engine, "u", "analytics").2, "no basis at once");
        // ...but nothing is deleted yet, not even by a sweep before the grace period ends.
        assert_eq!(engine.carry_out_due_withdrawals("test").expect("sweep"), 0);
        assert_eq!(campaign(&engine), Some(json!("spring")));
        // After the grace period (72 hours by default) the deletion is carried out.
        clock.set(noon() + chrono::Duration::hours(73));
        assert_eq!(engine.carry_out_due_withdrawals("test").expect("sweep"), 1);
        assert_eq!(campaign(&engine), Some(Value::Null));
        assert_eq!(engine.carry_out_due_withdrawals("test").expect("again"), 0);
    }
);

parity_test!(
    a_customer_who_grants_again_within_the_grace_keeps_their_data,
    |db| {
        let (engine, clock) = withdrawn_from_a_browser(&db);
        // The forged withdrawal is undone by the customer (here through the admin API).
        clock.set(noon() + chrono::Duration::hours(1));
        engine
            .set_consent(
                &by("u"),
                &[("analytics".into(), "granted".into())],
                "key:test",
                b"again",
            )
            .expect("grant again");
        clock.set(noon() + chrono::Duration::hours(73));
        engine.carry_out_due_withdrawals("test").expect("sweep");
        assert_eq!(campaign(&engine), Some(json!("spring")));
    }
);

parity_test!(
    a_server_s_signal_confirms_a_browser_withdrawal_at_once,
    |db| {
        let (engine, _clock) = withdrawn_from_a_browser(&db);
        assert_eq!(
            campaign(&engine),
            Some(json!("spring")),
            "still in its grace"
        );
        // The business's own server says the same: the deletion is carried out now.
        engine
            .ingest(events(
                json!([{"type":"track","messageId":"s","userId":"u","event":"E",
                "context":{"consent":{"categoryPreferences":{"analytics":false}}}}]),
            ))
            .expect("server signal");
        assert_eq!(campaign(&engine), Some(Value::Null));
        assert_eq!(engine.carry_out_due_withdrawals("test").expect("sweep"), 0);
    }
);

/// What someone who can write the database, but does not hold the master keys, can do: append
/// a record chained with a valid hash, with no MAC or with a MAC of their own making.
fn forge_append(db: &TestDb, mac: Option<&str>) -> i64 {
    let tail = db
        .store()
        .audit_page(0, 10_000)
        .expect("audit")
        .pop()
        .expect("a record");
    let (seq, at, detail) = (tail.seq + 1, tail.at + 1, r#"{"purpose":"analytics"}"#);
    let hash = consentric_store::audit_digest(
        seq,
        at,
        "key:test",
        "consent.recorded",
        Some("x"),
        detail,
        &tail.hash,
    );
    let mac = mac.map_or("NULL".to_owned(), |m| format!("'{m}'"));
    db.execute_raw(&format!(
        "INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash, mac) \
         VALUES ({seq}, {at}, 'key:test', 'consent.recorded', 'x', '{detail}', '{}', '{hash}', {mac})",
        tail.hash
    ));
    seq
}

parity_test!(
    a_tail_appended_without_the_master_keys_is_found_forged,
    |db| {
        let engine = chained(&db);
        assert_eq!(
            engine.verify_audit().expect("verify").unkeyed,
            0,
            "every record is keyed"
        );
        let seq = forge_append(&db, None);
        assert_eq!(broken_at(&engine), (seq, BreakKind::Forged));
    }
);

parity_test!(a_made_up_mac_is_found_forged, |db| {
    let engine = chained(&db);
    let seq = forge_append(&db, Some(&"ab".repeat(32)));
    assert_eq!(broken_at(&engine), (seq, BreakKind::Forged));
});

parity_test!(a_recomputed_tail_is_found_forged_without_an_anchor, |db| {
    let engine = chained(&db);
    // Rewrite record 3 and recompute its hash and record 4's, keeping the old MACs.
    let rows = db.store().audit_page(0, 10).expect("audit");
    let mut prev = rows[1].hash.clone();
    for r in &rows[2..] {
        let detail = if r.seq == 3 {
            r#"{"forged":true}"#.to_owned()
        } else {
            r.detail.clone()
        };
        let hash = consentric_store::audit_digest(
            r.seq,
            r.at,
            &r.actor,
            &r.action,
            r.subject.as_deref(),
            &detail,
            &prev,
        );
        db.execute_raw(&format!(
            "UPDATE audit_log SET detail = '{detail}', prev_hash = '{prev}', hash = '{hash}' WHERE seq = {}",
            r.seq
        ));
        prev = hash;
    }
    assert_eq!(broken_at(&engine), (3, BreakKind::Forged));
});
