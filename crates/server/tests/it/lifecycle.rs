//! Lifecycle over HTTP: stages, scores after a fit, the summary, and who may read them.

use consentric_testkit::parity_test;
use serde_json::{json, Value};

use crate::app::{assert_error, spawn_app};

parity_test!(
    lifecycle_endpoints_serve_stages_scores_and_the_summary,
    |db| {
        let app = spawn_app(&db);
        // Six customers buying with consent to analytics and personalisation, one without.
        let mut batch = Vec::new();
        for c in 0..7 {
            let user = format!("l{c}");
            for k in 0..=(c % 3) {
                let mut e = json!({"type": "track", "event": "Order Completed", "userId": user,
                "messageId": format!("{user}-{k}"),
                "timestamp": format!("2024-0{}-1{}T10:00:00Z", 1 + k, c),
                "properties": {"revenue": 20 + c}});
                if k == 0 && c < 6 {
                    e["context"] = json!({"consent": {"categoryPreferences":
                    {"analytics": true, "personalization": true}}});
                }
                batch.push(e);
            }
        }
        assert_eq!(
            app.send("/v1/batch", &json!({ "batch": batch })).status(),
            200
        );
        let stage = |id: &str| -> Value {
            let r = app.get(&format!("/v1/customers/{id}/lifecycle"));
            assert_eq!(r.status(), 200, "{id}");
            r.json().expect("json")
        };
        let v = stage("l2");
        assert_eq!(v["stage"], "engagement");
        assert_eq!(v["rule"], "repeat-buyer");
        // A batch is one transaction: the customer is placed once, at its end.
        assert_eq!(v["history"].as_array().expect("history").len(), 1);
        assert_eq!(v["history"][0]["rule"], "repeat-buyer");
        assert!(v["scores"].is_null(), "no scores before a fit: {v}");
        // The customer without consent: 403 naming the missing basis, and left out of the summary.
        assert_error(
            app.get("/v1/customers/l6/lifecycle"),
            403,
            "no_legal_basis",
            None,
        );
        assert_error(
            app.get("/v1/customers/nobody/lifecycle"),
            404,
            "not_found",
            None,
        );
        let fit = app
            .post("/v1/lifecycle/fit")
            .bearer_auth(&app.admin)
            .send()
            .expect("request");
        assert_eq!(fit.status(), 200);
        let fit: Value = fit.json().expect("json");
        assert_eq!(
            (fit["customers"].as_u64(), fit["left_out"].as_u64()),
            (Some(6), Some(1))
        );
        let v = stage("l2");
        let p = v["scores"]["p_alive"]
            .as_f64()
            .expect("p_alive after a fit");
        assert!((0.0..=1.0).contains(&p));
        assert!(v["rfm"]["recency"].as_u64().is_some());
        let summary: Value = app.get("/v1/lifecycle/summary").json().expect("json");
        assert_eq!(summary["left_out"], 1);
        assert_eq!(summary["funnel"]["engagement"], 4);
        assert_eq!(summary["funnel"]["onboarding"], 2);
        assert!(summary["models"].as_array().expect("models").len() >= 2);
        // A write key reads nothing here.
        let r = app
            .client
            .get(format!("{}/v1/lifecycle/summary", app.base))
            .bearer_auth(&app.write)
            .send()
            .expect("request");
        assert_eq!(r.status(), 403);
    }
);
