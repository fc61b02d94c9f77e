//! API keys over HTTP: listed without secrets, revoked at once by this server and within a
//! second when another process on the same store revokes them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use consentric_engine::{Engine, FixedClock, KeyKind, Scope};
use consentric_testkit::{at, parity_test};
use serde_json::{json, Value};

use crate::app::{assert_error, spawn_app};

parity_test!(keys_are_listed_without_secrets_and_revoked_at_once, |db| {
    let app = spawn_app(&db);
    let listed: Value = app.get("/v1/keys").json().expect("json");
    let keys = listed["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 4, "admin, server write, browser write, analyst");
    for secret in [&app.admin, &app.write, &app.browser, &app.analyst] {
        assert!(
            !listed.to_string().contains(secret.as_str()),
            "a secret is listed"
        );
    }
    let kinds: Vec<(&str, &str)> = keys
        .iter()
        .map(|k| {
            (
                k["scope"].as_str().expect("scope"),
                k["kind"].as_str().expect("kind"),
            )
        })
        .collect();
    assert!(kinds.contains(&("write", "browser")) && kinds.contains(&("write", "server")));
    assert!(
        keys.iter().any(|k| k["last_used_at"].is_string()),
        "the admin key was used"
    );

    let browser_id = keys
        .iter()
        .find(|k| k["kind"] == "browser")
        .and_then(|k| k["key_id"].as_str())
        .expect("browser key")
        .to_owned();
    assert_eq!(
        app.send_from_browser("/v1/track", &json!({"userId":"k","event":"E"}))
            .status(),
        200
    );
    let r = app
        .client
        .delete(format!("{}/v1/keys/{browser_id}", app.base))
        .bearer_auth(&app.admin)
        .send()
        .expect("revoke");
    assert_eq!(r.status(), 200);
    assert!(r.json::<Value>().expect("json")["revoked_at"].is_string());
    let refused = app.send_from_browser("/v1/track", &json!({"userId":"k","event":"E"}));
    assert_error(refused, 401, "unauthorized", None);
    // A browser key only for write keys.
    let admin_id = keys
        .iter()
        .find(|k| k["scope"] == "admin")
        .and_then(|k| k["key_id"].as_str())
        .expect("admin key");
    let r = app
        .client
        .put(format!("{}/v1/keys/{admin_id}/kind", app.base))
        .bearer_auth(&app.admin)
        .json(&json!({"kind":"browser"}))
        .send()
        .expect("set kind");
    assert_error(r, 400, "invalid_field", Some("kind"));
});

parity_test!(
    a_key_revoked_by_another_process_is_refused_within_a_second,
    |db| {
        let app = spawn_app(&db);
        assert_eq!(
            app.send("/v1/track", &json!({"userId":"k","event":"E"}))
                .status(),
            200
        );
        // The CLI, or another node, on the same store.
        let other = Engine::new(
            db.store(),
            Arc::new(FixedClock::new(at("2024-05-14T10:22:00Z"))),
        );
        let key = other
            .keys()
            .expect("keys")
            .into_iter()
            .find(|k| k.scope == "write" && k.kind == KeyKind::Server.as_str())
            .expect("the server write key");
        other.revoke_key(&key.key_id, "cli").expect("revoke");
        let started = Instant::now();
        let status = loop {
            let s = app
                .send("/v1/track", &json!({"userId":"k","event":"E"}))
                .status();
            if s == 401 || started.elapsed() > Duration::from_secs(30) {
                break s;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status, 401, "the revocation reached the running server");
        // A key made elsewhere is accepted as soon as it exists.
        let fresh = other
            .create_key(Scope::Admin, Some("fresh"))
            .expect("key")
            .secret()
            .to_owned();
        let r = app
            .client
            .get(format!("{}/v1/keys", app.base))
            .bearer_auth(&fresh)
            .send()
            .expect("request");
        assert_eq!(r.status(), 200);
    }
);
