//! Differentially private analytics over HTTP, for analyst keys within the budgets admins grant.

use consentric_testkit::parity_test;
use serde_json::{json, Value};

use crate::app::{assert_error, spawn_app};

parity_test!(
    analytics_over_http_for_analyst_keys_within_granted_budgets,
    |db| {
        let app = spawn_app(&db);
        let batch: Vec<Value> = (0..12)
            .map(|i| {
                json!({"type": "track", "event": "Order Completed", "userId": format!("a{i}"),
            "messageId": format!("a{i}"), "timestamp": "2024-03-01T00:00:00Z",
            "properties": {"revenue": 20},
            "context": {"consent": {"categoryPreferences": {"analytics": true}}}})
            })
            .collect();
        assert_eq!(
            app.send("/v1/batch", &json!({ "batch": batch })).status(),
            200
        );
        // The analyst key has no budget until an admin key grants one.
        let (analyst_id, analyst_secret) = (app.analyst_id.clone(), app.analyst.clone());
        let refused = app
            .post("/v1/analytics/query")
            .bearer_auth(&analyst_secret)
            .body(json!({"query": "count", "epsilon": 0.1}).to_string())
            .send()
            .expect("request");
        assert_error(refused, 403, "budget_exceeded", None);
        let by_analyst = app
            .post("/v1/analytics/grants")
            .bearer_auth(&analyst_secret)
            .body(json!({"analyst": analyst_id, "rho": 1.0}).to_string())
            .send()
            .expect("request");
        assert_eq!(
            by_analyst.status(),
            403,
            "an analyst cannot grant themselves budget"
        );
        let grant = app
            .post("/v1/analytics/grants")
            .bearer_auth(&app.admin)
            .body(json!({"analyst": analyst_id, "rho": 1.0}).to_string())
            .send()
            .expect("request");
        assert_eq!(grant.status(), 200);
        let q = |body: Value, secret: &str| {
            app.post("/v1/analytics/query")
                .bearer_auth(secret)
                .body(body.to_string())
                .send()
                .expect("request")
        };
        let r = q(json!({"query": "count", "epsilon": 1.0}), &analyst_secret);
        assert_eq!(r.status(), 200);
        let r: Value = r.json().expect("json");
        assert_eq!(r["spent_rho"], 0.5);
        assert_eq!(r["noise"]["distribution"], "discrete_laplace");
        assert!(r["interval95"].as_f64().is_some());
        // A selection: the funnel's most populous stage, no counts released.
        let r = q(
            json!({"query": "top_k", "by": "stage", "k": 1, "rho": 0.1}),
            &analyst_secret,
        );
        assert_eq!(r.status(), 200);
        let r: Value = r.json().expect("json");
        assert_eq!(r["mechanism"], "exponential");
        assert_eq!(r["selected"].as_array().map(Vec::len), Some(1));
        assert!(r.get("bins").is_none() && r.get("noise").is_none());
        assert_error(
            q(
                json!({"query": "funnel", "max_rows": 0, "epsilon": 0.1}),
                &analyst_secret,
            ),
            400,
            "invalid_field",
            Some("max_rows"),
        );
        assert_error(
            q(json!({"query": "count", "epsilon": 2.0}), &analyst_secret),
            403,
            "budget_exceeded",
            None,
        );
        assert_error(
            q(json!({"query": "count", "epsilon": -1}), &analyst_secret),
            400,
            "invalid_field",
            Some("epsilon"),
        );
        assert_error(
            q(
                json!({"query": "count", "epsilon": 1, "colour": 1}),
                &analyst_secret,
            ),
            400,
            "malformed_json",
            None,
        );
        // A write key cannot ask; an analyst key cannot read profiles.
        assert_eq!(
            q(json!({"query": "count", "epsilon": 0.1}), &app.write).status(),
            403
        );
        let r = app
            .client
            .get(format!("{}/v1/profiles/a1", app.base))
            .bearer_auth(&analyst_secret)
            .send()
            .expect("request");
        assert_eq!(r.status(), 403);
        let b: Value = app
            .client
            .get(format!("{}/v1/analytics/budget", app.base))
            .bearer_auth(&analyst_secret)
            .send()
            .expect("request")
            .json()
            .expect("json");
        assert_eq!(
            b["budgets"][0]["spent_rho"], 0.6,
            "a count at ε = 1, a top-1 at ρ = 0.1"
        );
    }
);
