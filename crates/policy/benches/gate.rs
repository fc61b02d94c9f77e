//! Opening a view: the gate deciding (customer, purpose, now) from a folded consent ledger.
//! Run: `cargo bench -p consentric-policy --bench gate`.

use chrono::{DateTime, Duration, Utc};
use consentric_policy::{
    gate, ConsentRecord, ConsentSource, ConsentState, Decision, PurposeId, PurposeRegistry,
};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn ledger(n: usize, start: DateTime<Utc>) -> Vec<ConsentRecord> {
    let purposes = [
        "analytics",
        "personalization",
        "marketing.email",
        "marketing.ads_sharing",
    ];
    (0..n)
        .map(|i| ConsentRecord {
            purpose: PurposeId::parse(purposes[i % purposes.len()]).expect("id"),
            decision: if i % 3 == 2 {
                Decision::Withdrawn
            } else {
                Decision::Granted
            },
            source: ConsentSource::Api,
            purpose_version: 1,
            at: start + Duration::days(i as i64),
            evidence_hash: String::new(),
            assurance: Default::default(),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let registry = PurposeRegistry::retail_defaults();
    let start = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
        .expect("time")
        .with_timezone(&Utc);
    let now = start + Duration::days(400);
    // A customer with a realistic history (12 decisions) and one with a long one (200).
    for n in [12, 200] {
        let state = ConsentState::fold(ledger(n, start));
        c.bench_function(
            &format!("gate open, personalization, {n}-record ledger"),
            |b| {
                b.iter(|| {
                    gate::open(
                        &registry,
                        black_box(&state),
                        black_box("personalization"),
                        "prof_1",
                        now,
                    )
                })
            },
        );
        c.bench_function(&format!("fold + gate open, {n}-record ledger"), |b| {
            let records = ledger(n, start);
            b.iter(|| {
                let state = ConsentState::fold(black_box(records.clone()));
                gate::open(&registry, &state, "personalization", "prof_1", now)
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
