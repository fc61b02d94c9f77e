//! Differentially private analytics through the engine, on SQLite and PostgreSQL: releases
//! charged before noise, budgets that concurrent queries cannot overspend, refusals that
//! spend nothing, and errors near what the mechanism promises.

use std::sync::Arc;

use chrono::Utc;
use consentric_engine::analytics::QueryRequest;
use consentric_engine::{Engine, EngineError, Scope};
use consentric_testkit::{parity_test, TestDb};
use serde_json::{json, Value};

use crate::support::{engine_at, ingest_at, midnight};

/// `n` customers, each one order of `10 + i % 7` dollars; those with `i % 4 != 0` grant analytics.
fn customers(engine: &Engine, n: usize) {
    let batch: Vec<Value> = (0..n)
        .map(|i| {
            let mut e = json!({"type": "track", "event": "Order Completed", "userId": format!("c{i}"),
                "messageId": format!("o{i}"), "timestamp": "2024-03-01T00:00:00Z",
                "properties": {"revenue": 10 + i % 7}});
            if i % 4 != 0 {
                e["context"] = json!({"consent": {"categoryPreferences": {"analytics": true}}});
            }
            e
        })
        .collect();
    ingest_at(engine, Utc::now(), json!(batch));
}

fn request(v: Value) -> QueryRequest {
    serde_json::from_value(v).expect("request")
}

fn analyst(engine: &Engine, rho: f64) -> String {
    let key = engine
        .create_key(Scope::Analyst, Some("analyst"))
        .expect("key");
    engine
        .grant_budget(key.key_id.as_str(), "customers", rho, "test")
        .expect("grant");
    key.key_id.clone()
}

parity_test!(a_release_is_charged_and_a_refusal_spends_nothing, |db| {
    let engine = engine_at(&db, midnight()).0;
    customers(&engine, 40);
    let a = analyst(&engine, 1.0);
    let r = engine
        .analytics_query(&a, &request(json!({"query": "count", "epsilon": 1.0})))
        .expect("release");
    assert_eq!(r.spent_rho, 0.5, "ε = 1 costs ρ = ε²/2");
    assert_eq!(r.budget.spent_rho, 0.5);
    assert_eq!(r.unit_of_privacy, "customer");
    let v = r.value.expect("value");
    assert!(
        (v - 30.0).abs() <= 40.0,
        "30 customers granted analytics: {v}"
    );
    // A histogram by stage has a bin per stage and one for the unplaced.
    let h = engine
        .analytics_query(
            &a,
            &request(json!({"query": "histogram", "by": "stage", "rho": 0.25})),
        )
        .expect("release");
    assert_eq!(h.bins.as_ref().map(|b| b.len()), Some(9));
    assert!((h.budget.remaining_rho - 0.25).abs() < 1e-9);
    // Beyond the budget: refused with what remains, nothing spent.
    match engine.analytics_query(&a, &request(json!({"query": "count", "epsilon": 1.0}))) {
        Err(EngineError::BudgetExceeded {
            requested,
            remaining,
        }) => {
            assert_eq!(requested, 0.5);
            assert!((remaining - 0.25).abs() < 1e-9);
        }
        other => panic!("{other:?}"),
    }
    let b = engine.analytics_budget(&a).expect("budget");
    assert!((b[0].spent_rho - 0.75).abs() < 1e-9, "{b:?}");
    // Bad input: named, nothing spent.
    for (q, field) in [
        (json!({"query": "count", "epsilon": -1.0}), "epsilon"),
        (json!({"query": "count", "rho": 0.0}), "rho"),
        (json!({"query": "count"}), "epsilon"),
        (
            json!({"query": "count", "epsilon": 1.0, "rho": 1.0}),
            "epsilon",
        ),
        (
            json!({"query": "sum", "measure": "revenue", "epsilon": 0.1}),
            "bounds",
        ),
        (
            json!({"query": "sum", "measure": "revenue", "bounds": [5, 1], "epsilon": 0.1}),
            "bounds",
        ),
        (
            json!({"query": "histogram", "by": "trait.email", "categories": ["a"], "epsilon": 0.1}),
            "by",
        ),
        (
            json!({"query": "histogram", "by": "cohort", "epsilon": 0.1}),
            "categories",
        ),
        (
            json!({"query": "sum", "measure": "revenue", "bounds": [0, 1e12], "epsilon": 1e-6}),
            "epsilon",
        ),
        (json!({"query": "median", "epsilon": 0.1}), "query"),
        (
            json!({"query": "count", "stage": "asleep", "epsilon": 0.1}),
            "stage",
        ),
    ] {
        match engine.analytics_query(&a, &request(q.clone())) {
            Err(EngineError::Invalid { field: f, .. }) => assert_eq!(f, field, "{q}"),
            other => panic!("{q}: {other:?}"),
        }
    }
    assert_eq!(
        engine.analytics_budget(&a).expect("budget"),
        b,
        "refusals spend nothing"
    );
    // Another analyst has their own budget (none yet).
    let other = engine.create_key(Scope::Analyst, None).expect("key");
    assert!(matches!(
        engine.analytics_query(
            other.key_id.as_str(),
            &request(json!({"query": "count", "epsilon": 0.1}))
        ),
        Err(EngineError::BudgetExceeded { .. })
    ));
});

/// 30 customers granting analytics and personalisation: every one orders in March 2024, the
/// even ones again in April, every third in May (so 1, 2 or 3 orders; median 2).
fn repeat_customers(engine: &Engine) {
    let mut batch = Vec::new();
    for i in 0..30 {
        for (month, buys) in [(3, true), (4, i % 2 == 0), (5, i % 3 == 0)] {
            if buys {
                batch.push(json!({"type": "track", "event": "Order Completed",
                    "userId": format!("r{i}"), "messageId": format!("r{i}-{month}"),
                    "timestamp": format!("2024-{month:02}-10T00:00:00Z"),
                    "properties": {"revenue": 20},
                    "context": {"consent": {"categoryPreferences":
                        {"analytics": true, "personalization": true}}}}));
            }
        }
    }
    ingest_at(engine, Utc::now(), json!(batch));
}

parity_test!(selections_funnels_retention_and_overlapping_bins, |db| {
    let engine = engine_at(&db, midnight()).0;
    repeat_customers(&engine);
    let a = analyst(&engine, 1000.0);
    let ask = |q: Value| engine.analytics_query(&a, &request(q)).expect("release");
    // At ε = 10 the noise is a fraction of a customer per bin: within ±5 but for 10⁻³.
    let near = |got: i64, want: i64| assert!((got - want).abs() <= 5, "{got} vs {want}");

    // The median number of orders, chosen by the exponential mechanism among 0..=5.
    let q = ask(
        json!({"query": "quantile", "measure": "orders", "bounds": [0, 5],
        "steps": 5, "epsilon": 10.0}),
    );
    assert_eq!(q.value, Some(2.0));
    assert_eq!(q.mechanism, "permute_and_flip");
    assert!(q.noise.is_none() && q.interval95.is_none());
    assert!((q.spent_rho - 50.0).abs() < 1e-6, "ε = 10 costs ρ = 50");
    let q = ask(
        json!({"query": "quantile", "measure": "revenue", "bounds": [0, 100],
        "alpha": 0.9, "rho": 5.0}),
    );
    assert_eq!(q.mechanism, "exponential");
    // Revenue is 20, 40 or 60 dollars for 10, 15 and 5 customers: every candidate above 40
    // leaves 25 or 30 of 30 below it, near the 27 asked, so the mechanism may pick any of them
    // (30 customers cannot tell them apart); none at or below 40 (12 or more away).
    let v = q.value.expect("value");
    assert!(
        v > 40.0 && v <= 100.0,
        "revenue's 90th percentile lies above 40: {v}"
    );

    // Top-k selects the category with most customers; counts are not released.
    let t = ask(
        json!({"query": "top_k", "by": "event", "k": 1, "epsilon": 10.0,
        "categories": ["Page Viewed", "Order Completed", "Signed Up"]}),
    );
    assert_eq!(t.selected, Some(vec!["Order Completed".to_owned()]));
    assert!(t.bins.is_none());

    // Retention of the March cohort: 30 in March, 15 a month later, 10 two months later.
    let r = ask(
        json!({"query": "retention", "categories": ["2024-03", "2024-04"],
        "periods": 2, "epsilon": 10.0}),
    );
    assert_eq!(r.rows_per_customer, 3);
    let m = r.retention.expect("matrix");
    let march = &m["2024-03"];
    near(march[0], 30);
    near(march[1], 15);
    near(march[2], 10);
    assert!(
        m["2024-04"].iter().all(|&c| c <= 5),
        "nobody's first order was in April"
    );
    // Bounding contributions to one month each leaves only the cohort month counted.
    let r = ask(
        json!({"query": "retention", "categories": ["2024-03"], "periods": 2,
        "max_rows": 1, "epsilon": 10.0}),
    );
    assert_eq!(r.rows_per_customer, 1);
    let march = &r.retention.expect("matrix")["2024-03"];
    near(march[0], 30);
    near(march[1], 0);

    // Segments are evaluated for the analytics purpose; bins overlap, so L = 2.
    engine
        .define_segment(
            "repeat",
            &json!({"field": "orders", "op": "gte", "value": 2}),
            "t",
        )
        .expect("segment");
    engine
        .define_segment(
            "loyal",
            &json!({"field": "orders", "op": "gte", "value": 3}),
            "t",
        )
        .expect("segment");
    let h = ask(json!({"query": "histogram", "by": "segment",
        "categories": ["repeat", "loyal"], "epsilon": 10.0}));
    assert_eq!(h.rows_per_customer, 2);
    let bins = h.bins.expect("bins");
    near(bins["repeat"], 20);
    near(bins["loyal"], 5);
    assert_eq!(
        h.noise,
        Some(consentric_pets::Noise::DiscreteLaplace { scale: 0.2 })
    );

    // The funnel: in order, one step per stage, every customer counted at most once a step.
    let f = ask(json!({"query": "funnel", "epsilon": 10.0}));
    let steps = f.funnel.expect("funnel");
    assert_eq!(
        steps.iter().map(|s| s.stage.as_str()).collect::<Vec<_>>(),
        [
            "acquisition",
            "onboarding",
            "engagement",
            "retention",
            "expansion",
            "advocacy"
        ]
    );
    assert!(steps.iter().all(|s| s.customers <= 35));
    assert_eq!(f.rows_per_customer, 6);

    // Bad input, refused before anything is spent.
    let before = engine.analytics_budget(&a).expect("budget");
    for (q, field) in [
        (
            json!({"query": "histogram", "by": "segment", "categories": ["nope"], "epsilon": 1.0}),
            "categories",
        ),
        (
            json!({"query": "count", "max_rows": 3, "epsilon": 1.0}),
            "max_rows",
        ),
        (
            json!({"query": "funnel", "max_rows": 0, "epsilon": 1.0}),
            "max_rows",
        ),
        (
            json!({"query": "top_k", "by": "stage", "k": 10, "epsilon": 1.0}),
            "k",
        ),
        (
            json!({"query": "top_k", "by": "stage", "epsilon": 1.0}),
            "k",
        ),
        (
            json!({"query": "quantile", "measure": "orders", "epsilon": 1.0}),
            "bounds",
        ),
        (
            json!({"query": "quantile", "measure": "orders", "bounds": [0, 9], "alpha": 2, "epsilon": 1.0}),
            "alpha",
        ),
        (
            json!({"query": "funnel", "stages": ["engagement", "engagement"], "epsilon": 1.0}),
            "stages",
        ),
        (
            json!({"query": "retention", "categories": ["March"], "epsilon": 1.0}),
            "categories",
        ),
        (
            json!({"query": "retention", "categories": ["2024-03"], "periods": 99, "epsilon": 1.0}),
            "periods",
        ),
    ] {
        match engine.analytics_query(&a, &request(q.clone())) {
            Err(EngineError::Invalid { field: f, .. }) => assert_eq!(f, field, "{q}"),
            other => panic!("{q}: {other:?}"),
        }
    }
    assert_eq!(engine.analytics_budget(&a).expect("budget"), before);
});

parity_test!(concurrent_queries_cannot_overspend, |db| {
    let engine = Arc::new(engine_at(&db, midnight()).0);
    customers(&engine, 20);
    // Room for exactly ten releases at ε = 1 (ρ = 0.5 each).
    let a = analyst(&engine, 5.0);
    let threads: Vec<_> = (0..32)
        .map(|_| {
            let (engine, a) = (engine.clone(), a.clone());
            std::thread::spawn(move || {
                engine.analytics_query(&a, &request(json!({"query": "count", "epsilon": 1.0})))
            })
        })
        .collect();
    let mut released = 0;
    for t in threads {
        match t.join().expect("thread") {
            Ok(_) => released += 1,
            Err(EngineError::BudgetExceeded { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(released, 10);
    let b = engine.analytics_budget(&a).expect("budget");
    assert_eq!((b[0].spent_rho, b[0].remaining_rho), (5.0, 0.0));
});

#[test]
fn errors_are_what_the_mechanism_promises() {
    let db = TestDb::sqlite();
    let engine = engine_at(&db, midnight()).0;
    customers(&engine, 24);
    // 18 customers granted analytics; sums of their revenue clamped to [0, 20].
    let exact_count = 18.0;
    let exact_sum: f64 = (0..24)
        .filter(|i| i % 4 != 0)
        .map(|i| f64::from(10 + i % 7))
        .sum();
    for (q, exact) in [
        (json!({"query": "count", "epsilon": 1.0}), exact_count),
        (
            json!({"query": "sum", "measure": "revenue", "bounds": [0, 20], "epsilon": 1.0}),
            exact_sum,
        ),
    ] {
        let n = 1600;
        // 1,600 releases at ρ = 0.5 each, from a fresh budget per query.
        let a = analyst(&engine, 800.0);
        let mut errors = Vec::with_capacity(n);
        let mut promised = 0.0;
        for _ in 0..n {
            let r = engine
                .analytics_query(&a, &request(q.clone()))
                .expect("release");
            errors.push((r.value.expect("value") - exact).abs());
            promised = r.noise.as_ref().expect("additive noise").expected_abs()
                / if q["query"] == "sum" { 100.0 } else { 1.0 };
        }
        let mean = errors.iter().sum::<f64>() / n as f64;
        let sd = (errors.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
        // Within five standard errors of the mean, measured from the releases (for the count's
        // discrete Laplace of scale 1, E|X| = 0.85 and |X| has a standard deviation of 1.06, so
        // about 15%): a noise a third wider or narrower than promised fails; chance alone, about
        // once in 870,000 runs (two queries). (400 releases and a fixed 15% failed by chance once in CI.)
        assert!(
            (mean - promised).abs() < 5.0 * sd / (n as f64).sqrt(),
            "{q}: {mean} vs {promised}"
        );
    }
}

parity_test!(
    grants_past_the_total_limit_are_refused_and_change_nothing,
    |db| {
        let engine = engine_at(&db, midnight()).0;
        let a = analyst(&engine, 1000.0);
        for _ in 1..100 {
            engine
                .grant_budget(&a, "customers", 1000.0, "test")
                .expect("within the limit");
        }
        // 100,000 ρ granted: the next grant is refused as invalid, not left to overflow the
        // ledger's units.
        match engine.grant_budget(&a, "customers", 1000.0, "test") {
            Err(EngineError::Invalid { field, .. }) => assert_eq!(field, "rho"),
            other => panic!("refused as invalid, not {other:?}"),
        }
        let budget = engine.grant_budget(&a, "customers", 1e-12, "test");
        assert!(budget.is_err(), "the total is at the limit");
    }
);
