//! Keys: who may send, who may read, and how a refusal says so.

use consentric_testkit::parity_test;
use serde_json::json;

use crate::app::{assert_error, spawn_app};

parity_test!(
    keys_are_checked_and_a_write_key_cannot_read_profiles,
    |db| {
        let app = spawn_app(&db);
        let event = json!({"userId": "u1", "event": "E"});
        let r = app
            .post("/v1/track")
            .body(event.to_string())
            .send()
            .expect("send");
        assert_eq!(
            r.headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer realm=\"consentric\""),
            "a 401 says how to authenticate"
        );
        assert_error(r, 401, "unauthorized", None);
        assert_error(
            app.post("/v1/track")
                .basic_auth("csw_nope", Some(""))
                .body(event.to_string())
                .send()
                .expect("send"),
            401,
            "unauthorized",
            None,
        );
        assert_error(
            app.post("/v1/track")
                .header("authorization", "Digest x")
                .body(event.to_string())
                .send()
                .expect("send"),
            401,
            "unauthorized",
            None,
        );
        assert_eq!(
            app.post("/v1/track")
                .bearer_auth(&app.write)
                .body(event.to_string())
                .send()
                .expect("send")
                .status(),
            200
        );
        assert_eq!(
            app.post("/v1/track")
                .bearer_auth(&app.admin)
                .body(json!({"userId":"u1","event":"F"}).to_string())
                .send()
                .expect("send")
                .status(),
            200
        );
        // Twice: the second time the key is answered from the engine's cache, on the
        // request's task; the scope must still be checked.
        for _ in 0..2 {
            let as_writer = app
                .client
                .get(format!("{}/v1/profiles/u1", app.base))
                .bearer_auth(&app.write)
                .send()
                .expect("send");
            assert_error(as_writer, 403, "forbidden", None);
        }
        assert_error(
            app.client
                .get(format!("{}/v1/profiles/u1", app.base))
                .send()
                .expect("send"),
            401,
            "unauthorized",
            None,
        );
        assert_eq!(app.profile("u1")["counters"]["events"], 2);
        assert_error(app.get("/v1/profiles/nobody"), 404, "not_found", None);
    }
);
