//! Rows as the store hands them out: plain data, no behaviour.

use consentric_model::{Identity, ProfileId};
use serde_json::Value;

/// The computed counters of a profile; also used as a delta when an event is added.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProfileCounters {
    /// Earliest event time (ms since epoch).
    pub first_seen: i64,
    /// Latest event time (ms since epoch).
    pub last_seen: i64,
    /// Events attributed to the profile.
    pub event_count: i64,
    /// `Order Completed` events.
    pub order_count: i64,
    /// Sum of order revenue.
    pub revenue: f64,
}

/// A profile's row.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileRecord {
    /// Its id.
    pub profile_id: ProfileId,
    /// When the profile was created (ms).
    pub created_at: i64,
    /// Its counters.
    pub counters: ProfileCounters,
}

/// One trait with its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct TraitRecord {
    /// Trait name as sent.
    pub name: String,
    /// Latest value (by event time).
    pub value: Value,
    /// Event time of that value (ms).
    pub updated_at: i64,
    /// The event that set it.
    pub message_id: String,
}

/// An identity attached to a profile.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityRecord {
    /// The identity.
    pub identity: Identity,
    /// When it was first seen (ms).
    pub first_seen: i64,
}

/// An edge of the identity graph: two identities observed to be one customer.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityLinkRecord {
    /// One end.
    pub a: Identity,
    /// The other end.
    pub b: Identity,
    /// `identify`, `alias` or the call that carried both ids.
    pub via: String,
    /// The event that showed the link.
    pub message_id: String,
    /// Event time (ms).
    pub linked_at: i64,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// Arrival order in this store.
    pub seq: i64,
    /// Idempotency key.
    pub message_id: String,
    /// Profile it belongs to now (after merges).
    pub profile_id: ProfileId,
    /// Segment call type.
    pub call_type: String,
    /// `track` event name.
    pub event_name: Option<String>,
    /// Corrected event time (ms).
    pub ts: i64,
    /// Arrival time (ms).
    pub received_at: i64,
    /// The event in Segment JSON.
    pub payload: Value,
}

/// An API key's stored form; the secret itself is never stored, only its hash.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    /// Public id of the key (shown in lists and logs).
    pub key_id: String,
    /// SHA-256 of the secret, hex.
    pub secret_hash: String,
    /// `write` or `admin`.
    pub scope: String,
    /// A human label.
    pub label: Option<String>,
    /// When it was made (ms).
    pub created_at: i64,
    /// When it was revoked (ms), if it was.
    pub revoked_at: Option<i64>,
    /// `browser` (public, in web pages) or `server` (secret, for backends).
    pub kind: String,
    /// When it last authenticated a request (ms, to the minute), if ever.
    pub last_used_at: Option<i64>,
    /// A server SDK's library name seen with this key while it is a browser key.
    pub server_library: Option<String>,
}

/// One line of the consent ledger, as stored (the policy room gives it meaning).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentRow {
    /// Purpose id.
    pub purpose: String,
    /// `granted`, `denied` or `withdrawn`.
    pub decision: String,
    /// `api`, `segment`, `gpc`, `tcf`, `banner` or `privacy_centre`.
    pub source: String,
    /// Version of the purpose text.
    pub purpose_version: i64,
    /// When it was decided (ms).
    pub decided_at: i64,
    /// SHA-256 of the evidence, hex.
    pub evidence_hash: String,
    /// When it was written (ms).
    pub recorded_at: i64,
    /// How sure we are the customer said it: `server`, `browser` or `unverified`.
    pub assurance: String,
}

/// One record of the hash-chained audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// When (ms).
    pub at: i64,
    /// Who: an API key id, `system`, `ingest`, …
    pub actor: String,
    /// What, e.g. `consent.recorded`, `view.opened`.
    pub action: String,
    /// Whose data, if anyone's.
    pub subject: Option<String>,
    /// Details as JSON text.
    pub detail: String,
    /// The previous record's hash (64 zeros for the first).
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
    /// HMAC of `hash` under a key derived from the master keys (`None` without a vault): what
    /// someone with the database but not the keys cannot make for a record they append.
    pub mac: Option<String>,
}
