//! What the engine's suites share: engines on a fixed clock, events arriving at an instant,
//! profile references. Helpers without the engine live in `consentric_testkit`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use consentric_engine::{Engine, FixedClock, ProfileRef};
use consentric_model::Event;
use consentric_testkit::{at, batch_at, typed_events_at, TestDb};
use serde_json::Value;

/// 2024-06-01 12:00 UTC: where the parity, privacy, vault, DSR and non-interference suites'
/// clocks stand and when their events arrive.
pub fn noon() -> DateTime<Utc> {
    at("2024-06-01T12:00:00Z")
}

/// 2024-06-01 00:00 UTC: the clock of the analytics and clean-room suites.
pub fn midnight() -> DateTime<Utc> {
    at("2024-06-01T00:00:00Z")
}

/// A clock standing at `now` until a test moves it.
pub fn clock(now: DateTime<Utc>) -> Arc<FixedClock> {
    Arc::new(FixedClock::new(now))
}

/// An engine on `db` with the default policy, its clock at `now`.
pub fn engine_at(db: &TestDb, now: DateTime<Utc>) -> (Engine, Arc<FixedClock>) {
    let clock = clock(now);
    (Engine::new(db.store(), clock.clone()), clock)
}

/// An engine on `db` with the default policy, its clock at [`noon`].
pub fn engine(db: &TestDb) -> Engine {
    engine_at(db, noon()).0
}

/// The events of a batch of `items`, received at [`noon`].
pub fn events(items: Value) -> Vec<Event> {
    batch_at(noon(), items)
}

/// Each value as one typed call, received at [`noon`].
pub fn typed_events(values: &[Value]) -> Vec<Event> {
    typed_events_at(noon(), values)
}

/// Ingests a batch of `items` received at `received_at`.
pub fn ingest_at(engine: &Engine, received_at: DateTime<Utc>, items: Value) {
    engine.ingest(batch_at(received_at, items)).expect("ingest");
}

/// A profile reference from how a caller writes one (`ada`, `user_id:ada`, …).
pub fn by(raw: &str) -> ProfileRef {
    ProfileRef::parse(raw).expect("ref")
}
