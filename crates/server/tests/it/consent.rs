//! Consent over HTTP: the public purposes, consent read and written by admins, the Sec-GPC header,
//! purpose-scoped views through the gate.

use consentric_testkit::parity_test;
use serde_json::{json, Value};

use crate::app::{assert_error, spawn_app};

parity_test!(
    purposes_are_public_and_consent_is_read_and_written_by_admins,
    |db| {
        let app = spawn_app(&db);
        let purposes: Value = app
            .client
            .get(format!("{}/v1/purposes", app.base))
            .send()
            .expect("send")
            .json()
            .expect("json");
        let ids: Vec<&str> = purposes["purposes"]
            .as_array()
            .expect("list")
            .iter()
            .map(|p| p["id"].as_str().expect("id"))
            .collect();
        assert!(
            ids.contains(&"marketing.ads_sharing") && ids.contains(&"essential"),
            "{ids:?}"
        );
        assert_eq!(
            app.send("/v1/identify", &json!({"userId":"c1"})).status(),
            200
        );

        let put = |body: &str| {
            app.client
                .put(format!("{}/v1/consent/c1", app.base))
                .bearer_auth(&app.admin)
                .body(body.to_owned())
                .send()
                .expect("send")
        };
        assert_error(
            put(r#"{"purposes":{"astrology":"granted"}}"#),
            400,
            "invalid_field",
            Some("purposes.astrology"),
        );
        assert_error(put(r#"{"purposes":"#), 400, "malformed_json", None);
        let unknown = app
            .client
            .put(format!("{}/v1/consent/nobody", app.base))
            .bearer_auth(&app.admin)
            .body(r#"{"purposes":{"analytics":"granted"}}"#)
            .send()
            .expect("send");
        assert_error(unknown, 404, "not_found", None);
        let as_writer = app
            .client
            .put(format!("{}/v1/consent/c1", app.base))
            .bearer_auth(&app.write)
            .body(r#"{"purposes":{"analytics":"granted"}}"#)
            .send()
            .expect("send");
        assert_error(as_writer, 403, "forbidden", None);

        let view: Value = put(r#"{"purposes":{"analytics":"granted","marketing.email":"denied"}}"#)
            .json()
            .expect("json");
        let analytics = view["purposes"]
            .as_array()
            .expect("p")
            .iter()
            .find(|p| p["purpose"] == "analytics")
            .expect("analytics")
            .clone();
        assert_eq!(
            (
                analytics["has_basis"].as_bool(),
                analytics["source"].as_str()
            ),
            (Some(true), Some("api"))
        );
        let history: Value = app.get("/v1/consent/c1/history").json().expect("json");
        assert_eq!(history["history"].as_array().expect("h").len(), 2);
    }
);

parity_test!(
    the_sec_gpc_header_opts_the_customer_out_of_sale_and_share,
    |db| {
        let app = spawn_app(&db);
        let r = app
            .post("/v1/track")
            .basic_auth(&app.write, Some(""))
            .header("sec-gpc", "1")
            .body(json!({"userId":"g1","event":"E"}).to_string())
            .send()
            .expect("send");
        assert_eq!(r.status(), 200);
        let view: Value = app.get("/v1/consent/g1").json().expect("json");
        let ads = view["purposes"]
            .as_array()
            .expect("p")
            .iter()
            .find(|p| p["purpose"] == "marketing.ads_sharing")
            .expect("ads")
            .clone();
        assert_eq!(
            (
                ads["decision"].as_str(),
                ads["source"].as_str(),
                ads["has_basis"].as_bool()
            ),
            (Some("denied"), Some("gpc"), Some(false))
        );
        // A malformed TC string is a 400 naming the field, and nothing is stored.
        let r = app.send(
            "/v1/track",
            &json!({"userId":"g2","event":"E","context":{"consent":{"tcfString":"###"}}}),
        );
        assert_error(r, 400, "invalid_field", Some("context.consent.tcfString"));
        assert_error(app.get("/v1/profiles/g2"), 404, "not_found", None);
    }
);

parity_test!(a_purpose_scoped_view_goes_through_the_gate, |db| {
    let app = spawn_app(&db);
    let identify = json!({"userId":"v1","traits":{"email":"v@example.com","logins":4},
        "context":{"consent":{"categoryPreferences":{"Personalization":true}}}});
    assert_eq!(app.send("/v1/identify", &identify).status(), 200);
    let view: Value = app
        .get("/v1/profiles/v1/view?purpose=personalization")
        .json()
        .expect("json");
    assert_eq!(view["purpose"], "personalization");
    let names: Vec<&str> = view["traits"]
        .as_array()
        .expect("traits")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["logins"]);
    assert_error(
        app.get("/v1/profiles/v1/view?purpose=marketing.email"),
        403,
        "no_legal_basis",
        Some("purpose"),
    );
    assert_error(
        app.get("/v1/profiles/v1/view?purpose=astrology"),
        400,
        "invalid_field",
        Some("purpose"),
    );
});

#[test]
fn purpose_texts_come_in_the_language_asked_for() {
    use consentric_engine::{ConsentSettings, Engine, PolicySet, SystemClock};
    let db = consentric_testkit::TestDb::sqlite();
    let mut purposes: Vec<_> = PolicySet::retail_defaults()
        .registry
        .all()
        .cloned()
        .collect();
    for p in purposes.iter_mut().filter(|p| p.id.as_str() == "analytics") {
        p.translations
            .insert("fr".into(), "Mesurer l'audience de la boutique.".into());
    }
    let policy = PolicySet::new(Some(purposes), &[], &ConsentSettings::default()).expect("policy");
    let store = db.store();
    let app = crate::app::spawn_app_with(&db, move |_| {
        Engine::with_policy(store, std::sync::Arc::new(SystemClock), policy)
    });
    let analytics = |query: &str, accept: &str| -> Value {
        let all: Value = app
            .client
            .get(format!("{}/v1/purposes{query}", app.base))
            .header("accept-language", accept)
            .send()
            .expect("purposes")
            .json()
            .expect("json");
        all["purposes"]
            .as_array()
            .expect("list")
            .iter()
            .find(|p| p["id"] == "analytics")
            .cloned()
            .expect("analytics")
    };
    let fr = analytics("", "de-DE;q=0.9, fr-CA;q=0.95, en;q=0.1");
    assert_eq!(fr["text"], "Mesurer l'audience de la boutique.");
    assert_eq!(fr["language"], "fr");
    let asked = analytics("?lang=fr", "en");
    assert_eq!(asked["language"], "fr", "the query wins over the header");
    let other = analytics("", "de, fr;q=0");
    assert!(other.get("language").is_none(), "{other}");
    assert!(other["text"]
        .as_str()
        .expect("text")
        .starts_with("Understand"));
}
