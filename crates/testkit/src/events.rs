//! Events as the server would hand them to the engine: JSON parsed under an [`Envelope`] that
//! says when they arrived, and the instants tests pin clocks to.

use chrono::{DateTime, Utc};
use consentric_model::{parse_batch, parse_typed_event, Envelope, Event};
use serde_json::{json, Value};

/// The instant an RFC 3339 string names, e.g. `at("2024-06-01T12:00:00Z")`.
///
/// # Panics
/// If the string is not RFC 3339.
pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339}: {e}"))
        .with_timezone(&Utc)
}

/// The events of a batch whose items are `items` (a JSON array of Segment calls), parsed as if
/// received at `received_at` in request `r`.
///
/// # Panics
/// If the batch is invalid.
pub fn batch_at(received_at: DateTime<Utc>, items: Value) -> Vec<Event> {
    let env = Envelope::new(received_at, "r");
    parse_batch(json!({ "batch": items }).to_string().as_bytes(), &env)
        .expect("valid")
        .events
}

/// One event per value, each parsed as a single typed call (as `/v1/track` and the like take
/// them) received at `received_at`, the `i`-th in request `r{i}`.
///
/// # Panics
/// If a value is not a valid event.
pub fn typed_events_at(received_at: DateTime<Utc>, values: &[Value]) -> Vec<Event> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let env = Envelope::new(received_at, format!("r{i}"));
            parse_typed_event(v.to_string().as_bytes(), &env)
                .expect("valid event")
                .events
                .remove(0)
        })
        .collect()
}

/// An event's `context` carrying a Segment consent object that grants each of `grant`:
/// `{"consent": {"categoryPreferences": {"<purpose>": true, …}}}`.
pub fn consent_context(grant: &[&str]) -> Value {
    let prefs: serde_json::Map<String, Value> = grant
        .iter()
        .map(|p| ((*p).to_owned(), Value::Bool(true)))
        .collect();
    json!({"consent": {"categoryPreferences": prefs}})
}
