//! Non-interference through the whole engine: what a purpose-scoped view shows never depends
//! on data the purpose may not use, nor on customers without a basis for it.

use chrono::{TimeZone, Utc};
use consentric_engine::Engine;
use consentric_model::{parse_batch, CallType, Envelope};
use consentric_policy::{FieldSchema, PurposeRegistry};
use consentric_testkit::{at, TestDb};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::support::{self, by, ingest_at, noon};

/// Reserved traits spanning categories some purposes may use and others may not.
const TRAITS: [&str; 8] = [
    "email", "name", "phone", "age", "gender", "plan", "logins", "company",
];
const PURPOSES: [&str; 5] = [
    "analytics",
    "personalization",
    "marketing.email",
    "model_training",
    "fairness_audit",
];

fn ingest(engine: &Engine, user: &str, traits: &Map<String, Value>, prefs: &Map<String, Value>) {
    let items = json!([{"type": "identify", "messageId": format!("{user}-1"), "userId": user,
        "traits": traits, "context": {"consent": {"categoryPreferences": prefs}}}]);
    ingest_at(engine, noon(), items);
}

/// The view as data: traits by name, or the refusal.
fn view(engine: &Engine, user: &str, purpose: &str) -> Result<Vec<(String, Value)>, String> {
    engine
        .profile_for_purpose(&by(user), purpose, "test")
        .map(|v| v.traits.into_iter().map(|t| (t.name, t.value)).collect())
        .map_err(|e| e.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn a_view_ignores_what_its_purpose_may_not_see(
        values in proptest::collection::vec(0u32..1000, TRAITS.len()),
        noise in proptest::collection::vec(1000u32..2000, TRAITS.len()),
        granted in proptest::collection::vec(any::<bool>(), PURPOSES.len()),
        purpose in proptest::sample::select(PURPOSES.to_vec()),
    ) {
        let prefs: Map<String, Value> = PURPOSES.iter().zip(&granted).map(|(p, g)| ((*p).to_owned(), json!(g))).collect();
        let traits: Map<String, Value> = TRAITS.iter().zip(&values).map(|(t, v)| ((*t).to_owned(), json!(v.to_string()))).collect();
        let clock = || support::clock(at("2024-06-02T00:00:00Z"));

        // World A: the customer as is.
        let a_db = TestDb::sqlite();
        let a = Engine::new(a_db.store(), clock());
        ingest(&a, "u", &traits, &prefs);
        let seen = view(&a, "u", purpose);

        // World B: every trait whose category the purpose may not use (by the declared policy,
        // not by what the view happened to show) is changed; the rest is the same.
        let registry = PurposeRegistry::retail_defaults();
        let schema = FieldSchema::new(&[]).expect("schema");
        let p = registry.get(purpose).expect("purpose");
        let may_use = |t: &str| schema.category(CallType::Identify, None, &["traits", t]).is_some_and(|c| p.may_use(c));
        let changed: Map<String, Value> = TRAITS
            .iter()
            .zip(values.iter().zip(&noise))
            .map(|(t, (v, n))| ((*t).to_owned(), json!(if may_use(t) { v.to_string() } else { n.to_string() })))
            .collect();
        let b_db = TestDb::sqlite();
        let b = Engine::new(b_db.store(), clock());
        ingest(&b, "u", &changed, &prefs);
        prop_assert_eq!(&seen, &view(&b, "u", purpose));

        // Another customer's data, with or without a basis, never reaches this customer's view.
        ingest(&b, "other", &changed, &prefs);
        prop_assert_eq!(&seen, &view(&b, "u", purpose));
    }
}

/// Orders for `user` on the given days (from 2024-01-01), the first granting `prefs`.
fn orders(engine: &Engine, user: &str, days: &[(u16, u16)], prefs: &Map<String, Value>) {
    let start = at("2024-01-01T00:00:00Z");
    let batch: Vec<Value> = days
        .iter()
        .enumerate()
        .map(|(i, (d, cents))| {
            let mut e = json!({"type": "track", "event": "Order Completed", "userId": user,
                "messageId": format!("{user}-o{i}"),
                "timestamp": (start + chrono::Duration::days(i64::from(*d))).to_rfc3339(),
                "properties": {"revenue": f64::from(*cents) / 100.0}});
            if i == 0 {
                e["context"] = json!({"consent": {"categoryPreferences": prefs}});
            }
            e
        })
        .collect();
    ingest_at(engine, noon(), json!(batch));
}

/// What analytics computes over the population: fitted parameters (or the refusal) and the
/// cohort matrix.
type Fits = Result<Vec<(String, Vec<f64>)>, String>;

fn analytics_output(engine: &Engine) -> (Fits, String) {
    let fit = engine
        .lifecycle_fit("test")
        .map(|r| {
            r.models
                .into_iter()
                .map(|m| (m.model, m.params.into_values().collect()))
                .collect()
        })
        .map_err(|e| e.to_string());
    let summary = engine.lifecycle_summary("test").expect("summary");
    (fit, serde_json::to_string(&summary.cohorts).expect("json"))
}

fn history() -> impl Strategy<Value = Vec<(u16, u16)>> {
    proptest::collection::vec((0u16..150, 100u16..20_000), 1..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5, ..ProptestConfig::default() })]

    /// Model fitting and cohorts under `analytics` never depend on the purchases of customers
    /// without a basis for it, whatever else those customers allowed.
    #[test]
    fn lifecycle_analytics_ignore_customers_without_a_basis(
        included in proptest::collection::vec(history(), 6..12),
        excluded in proptest::collection::vec((history(), any::<bool>()), 1..6),
    ) {
        let clock = || support::clock(at("2024-06-02T00:00:00Z"));
        let yes: Map<String, Value> = [("analytics".to_owned(), json!(true))].into_iter().collect();
        let a_db = TestDb::sqlite();
        let a = Engine::new(a_db.store(), clock());
        let b_db = TestDb::sqlite();
        let b = Engine::new(b_db.store(), clock());
        // A base of real histories, so that the model is identified and fits succeed.
        // (80 customers with the 6-12 drawn: fewer than 100, so Pareto/NBD, slow in debug builds, is not fitted.)
        let base = consentric_testkit::cdnow_sample_orders(0, 80, &["analytics"]);
        for engine in [&a, &b] {
            let env = Envelope::new(Utc.with_ymd_and_hms(2024, 6, 1, 12, 0, 0).single().expect("time"), "base");
            let batch = json!({ "batch": base }).to_string();
            engine.ingest(parse_batch(batch.as_bytes(), &env).expect("valid").events).expect("ingest");
        }
        for (i, h) in included.iter().enumerate() {
            orders(&a, &format!("in{i}"), h, &yes);
            orders(&b, &format!("in{i}"), h, &yes);
        }
        // World B also holds customers who denied analytics (some granting personalisation).
        for (i, (h, personal)) in excluded.iter().enumerate() {
            let prefs: Map<String, Value> = [("analytics".to_owned(), json!(false)),
                ("personalization".to_owned(), json!(personal))].into_iter().collect();
            orders(&b, &format!("out{i}"), h, &prefs);
        }
        let (fits, cohorts) = analytics_output(&a);
        prop_assert!(fits.is_ok(), "the base population identifies the model: {fits:?}");
        prop_assert_eq!((fits, cohorts), analytics_output(&b));
    }
}

/// One trained world shared by the decision cases: customers with and without consent to
/// personalisation viewing products, recommenders trained on those the gate let in.
fn decision_world() -> &'static (TestDb, Engine) {
    static WORLD: std::sync::OnceLock<(TestDb, Engine)> = std::sync::OnceLock::new();
    WORLD.get_or_init(|| {
        let db = TestDb::sqlite();
        let engine = Engine::new(db.store(), support::clock(at("2024-06-02T00:00:00Z")));
        let mut batch = Vec::new();
        for u in 0..30 {
            for k in 0..4 {
                batch.push(json!({"type": "track", "event": "Product Viewed", "userId": format!("w{u}"),
                    "messageId": format!("w{u}-{k}"), "timestamp": "2024-05-01T00:00:00Z",
                    "properties": {"product_id": format!("p{}", (u * 3 + k * 7) % 12)},
                    "context": {"consent": {"categoryPreferences": {"personalization": u % 3 != 0}}}}));
            }
        }
        ingest_at(&engine, noon(), json!(batch));
        engine.train_recommenders("test").expect("train");
        (db, engine)
    })
}

/// A decision as data, without who it was for.
fn decision(engine: &Engine, user: &str) -> Value {
    let mut d = serde_json::to_value(
        engine
            .decide(&by(user), "home", Some(5), "test")
            .expect("decide"),
    )
    .expect("json");
    d["profile_id"] = Value::Null;
    d
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Non-interference for decisions: a customer without a basis for personalisation gets
    /// the same decision whatever they viewed, bought or told us (traits included), given
    /// the same other consents.
    #[test]
    fn a_decision_without_personalisation_ignores_the_customers_history(
        views in proptest::collection::vec((0u8..12, any::<bool>()), 0..8),
        traits in proptest::collection::vec(0u32..1000, 3),
        email in any::<bool>(),
    ) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (_, engine) = decision_world();
        let consent = json!({"consent": {"categoryPreferences": {"personalization": false, "marketing.email": email, "analytics": true}}});
        let (with, without) = (format!("h{n}"), format!("e{n}"));
        let mut batch = vec![
            json!({"type": "identify", "userId": with, "messageId": format!("{with}-id"), "timestamp": "2024-05-02T00:00:00Z",
                   "traits": {"plan": traits[0].to_string(), "age": traits[1], "gender": traits[2].to_string()}, "context": consent}),
            json!({"type": "identify", "userId": without, "messageId": format!("{without}-id"), "timestamp": "2024-05-02T00:00:00Z",
                   "context": consent}),
        ];
        for (i, (item, bought)) in views.iter().enumerate() {
            batch.push(json!({"type": "track", "userId": with, "messageId": format!("{with}-{i}"),
                "timestamp": "2024-05-03T00:00:00Z",
                "event": if *bought { "Order Completed" } else { "Product Viewed" },
                "properties": if *bought { json!({"revenue": 10.0, "products": [{"product_id": format!("p{item}")}]}) }
                              else { json!({"product_id": format!("p{item}")}) }}));
        }
        ingest_at(engine, noon(), json!(batch));
        let a = decision(engine, &with);
        prop_assert_eq!(&a["explanation"]["personal"], &json!(false));
        prop_assert_eq!(&a, &decision(engine, &without));
    }
}
