//! A browser key is in every page of the site, so anyone has it. Tried as an attacker holding
//! one: consent cannot be forged for a stranger, strangers cannot be merged, contact details
//! cannot be taken over, and a forged withdrawal stops processing but erases nothing until it
//! is confirmed or its grace period passes. A site that signs its users' ids (the user hash)
//! gets its visitors' word believed.

use consentric_testkit::parity_test;
use serde_json::{json, Value};

use crate::app::{spawn_app, trait_of, TestApp};

fn consent_of(app: &TestApp, who: &str, purpose: &str) -> Value {
    let v: Value = app.get(&format!("/v1/consent/{who}")).json().expect("json");
    v["purposes"]
        .as_array()
        .expect("purposes")
        .iter()
        .find(|p| p["purpose"] == purpose)
        .cloned()
        .expect("the purpose")
}

fn history(app: &TestApp, who: &str) -> Vec<Value> {
    let v: Value = app
        .get(&format!("/v1/consent/{who}/history"))
        .json()
        .expect("json");
    v.as_array()
        .or_else(|| v["history"].as_array())
        .cloned()
        .expect("history")
}

fn grant(purposes: &[&str]) -> Value {
    let prefs: serde_json::Map<String, Value> = purposes
        .iter()
        .map(|p| ((*p).to_owned(), Value::Bool(true)))
        .collect();
    json!({"categoryPreferences": prefs})
}

parity_test!(consent_for_a_stranger_cannot_be_forged, |db| {
    let app = spawn_app(&db);
    assert_eq!(
        app.send(
            "/v1/identify",
            &json!({"userId":"victim","traits":{"firstName":"V"}})
        )
        .status(),
        200
    );
    let forged = json!({"userId":"victim","event":"E",
        "context":{"consent": grant(&["marketing.ads_sharing", "analytics"])}});
    assert_eq!(app.send_from_browser("/v1/track", &forged).status(), 200);
    for purpose in ["marketing.ads_sharing", "analytics"] {
        assert_eq!(
            consent_of(&app, "victim", purpose)["has_basis"],
            false,
            "{purpose}"
        );
    }
    // Kept as evidence, shown as unverified.
    let h = history(&app, "victim");
    assert!(
        !h.is_empty() && h.iter().all(|r| r["assurance"] == "unverified"),
        "{h:?}"
    );
    // With the site's signature of the user id, an ordinary purpose counts; a sale/share
    // purpose still waits for confirmation.
    let signed = json!({"userId":"victim","event":"E",
        "context":{"userHash": app.user_hash("victim"),
                   "consent": grant(&["marketing.ads_sharing", "analytics"])}});
    assert_eq!(app.send_from_browser("/v1/track", &signed).status(), 200);
    assert_eq!(consent_of(&app, "victim", "analytics")["has_basis"], true);
    assert_eq!(
        consent_of(&app, "victim", "marketing.ads_sharing")["has_basis"],
        false
    );
    // A wrong hash is no hash.
    let wrong = json!({"userId":"other","event":"E",
        "context":{"userHash": app.user_hash("victim"), "consent": grant(&["analytics"])}});
    assert_eq!(app.send_from_browser("/v1/track", &wrong).status(), 200);
    assert_eq!(consent_of(&app, "other", "analytics")["has_basis"], false);
    // The hash is proof, not data: it is not stored.
    let events: Value = app.get("/v1/profiles/victim/events").json().expect("json");
    assert!(!events.to_string().contains("userHash"), "{events}");
});

parity_test!(
    a_visitors_own_anonymous_consent_counts_and_follows_them,
    |db| {
        let app = spawn_app(&db);
        let banner = json!({"anonymousId":"visitor-1","event":"Consent Given",
        "context":{"consent": grant(&["analytics", "marketing.ads_sharing"])}});
        assert_eq!(app.send_from_browser("/v1/track", &banner).status(), 200);
        for purpose in ["analytics", "marketing.ads_sharing"] {
            assert_eq!(
                consent_of(&app, "anonymous_id:visitor-1", purpose)["has_basis"],
                true,
                "{purpose}"
            );
        }
        // Identifying with a verified user hash carries the choice to the user.
        let identify = json!({"userId":"u-1","anonymousId":"visitor-1",
        "context":{"userHash": app.user_hash("u-1")}});
        assert_eq!(
            app.send_from_browser("/v1/identify", &identify).status(),
            200
        );
        assert_eq!(consent_of(&app, "u-1", "analytics")["has_basis"], true);
    }
);

parity_test!(
    strangers_cannot_be_merged_and_the_refusal_is_audited,
    |db| {
        let app = spawn_app(&db);
        assert_eq!(
            app.send(
                "/v1/identify",
                &json!({"userId":"victim","traits":{"firstName":"V"}})
            )
            .status(),
            200
        );
        assert_eq!(
            app.send_from_browser("/v1/identify", &json!({"userId":"attacker"}))
                .status(),
            200
        );
        let alias = json!({"userId":"attacker","previousId":"victim","messageId":"alias-1"});
        let r = app.send_from_browser("/v1/alias", &alias);
        assert_eq!(r.status(), 409);
        let body: Value = r.json().expect("JSON");
        assert_eq!(body["error"]["code"], "conflict");
        // Apart, and nothing of the refused request was stored.
        let victim = app.profile("victim");
        let attacker = app.profile("attacker");
        assert_ne!(victim["profile_id"], attacker["profile_id"]);
        assert_eq!(trait_of(&victim, "firstName"), "V");
        let refusals = db
            .store()
            .audit_page(0, 10_000)
            .expect("audit")
            .into_iter()
            .filter(|r| r.action == "identity.merge_refused")
            .count();
        assert_eq!(refusals, 1, "the refusal is audited");
        // A server key may still merge (it vouches for the statement).
        assert_eq!(app.send("/v1/alias", &alias).status(), 200);
        assert_eq!(
            app.profile("victim")["profile_id"],
            app.profile("attacker")["profile_id"]
        );
    }
);

parity_test!(contact_details_cannot_be_taken_over, |db| {
    let app = spawn_app(&db);
    let owner = json!({"userId":"victim","traits":{"email":"victim@example.com"}});
    assert_eq!(app.send("/v1/identify", &owner).status(), 200);
    app.clock
        .set(consentric_testkit::at("2024-05-14T10:30:00Z"));
    let takeover =
        json!({"userId":"victim","traits":{"email":"attacker@example.com","firstName":"X"}});
    assert_eq!(
        app.send_from_browser("/v1/identify", &takeover).status(),
        200
    );
    let p = app.profile("victim");
    assert_eq!(trait_of(&p, "email"), "victim@example.com");
    assert_eq!(
        trait_of(&p, "firstName"),
        "X",
        "non-contact traits are kept"
    );
    // The site's backend signed the id: the visitor is the customer.
    app.clock
        .set(consentric_testkit::at("2024-05-14T10:40:00Z"));
    let signed = json!({"userId":"victim","traits":{"email":"new@example.com"},
        "context":{"userHash": app.user_hash("victim")}});
    assert_eq!(app.send_from_browser("/v1/identify", &signed).status(), 200);
    assert_eq!(trait_of(&app.profile("victim"), "email"), "new@example.com");
});

parity_test!(every_consent_record_shows_its_source_and_assurance, |db| {
    let app = spawn_app(&db);
    let from_server =
        json!({"userId":"s1","event":"E","context":{"consent": grant(&["analytics"])}});
    assert_eq!(app.send("/v1/track", &from_server).status(), 200);
    let from_page =
        json!({"anonymousId":"a-s1","event":"E","context":{"consent": grant(&["analytics"])}});
    assert_eq!(app.send_from_browser("/v1/track", &from_page).status(), 200);
    let server = history(&app, "s1");
    assert_eq!(
        (
            server[0]["source"].as_str(),
            server[0]["assurance"].as_str()
        ),
        (Some("segment"), Some("server"))
    );
    let browser = history(&app, "anonymous_id:a-s1");
    assert_eq!(browser[0]["assurance"], "browser");
});
