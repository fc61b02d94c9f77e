//! The shapes of clean-room messages and sessions in the OpenAPI document. The engine returns domain values and the
//! handlers serialise them as they are; these twins only describe them (Schemathesis checks in
//! CI that every answer matches), so the engine knows nothing of the HTTP contract.
#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;

/// What a session reveals to the host beyond the cardinality.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// The number of customers in common, nothing else (the default).
    Cardinality,
    /// Also which of the host's customers are in common.
    Matches,
}

/// An invitation for a partner: give them the session id, the token and our URL.
#[derive(Serialize, ToSchema)]
pub struct Invitation {
    /// The session.
    pub session: String,
    /// The secret the partner presents (shown once; only its hash is kept).
    pub token: String,
    /// Milliseconds since the epoch after which the session is refused.
    pub expires_at: i64,
    /// What it will reveal to us.
    pub output: Output,
    /// Whether the partner's values are summed over the intersection.
    pub sum: bool,
}

/// A session as shown to the operator.
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    /// The session.
    pub session: String,
    /// `host` or `guest`.
    pub role: String,
    /// The partner, as named.
    pub partner: String,
    /// `cardinality` or `matches`.
    pub output: String,
    /// Whether a sum is computed.
    pub sum: bool,
    /// `invited`, `blinded`, `summing` (host) or `running` (guest), `done` or `aborted`.
    pub state: String,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
    /// What the session revealed, once done.
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
}

/// Round 1, host → guest: our blinded identifiers and the session's terms.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostBlinded {
    /// What the session reveals.
    pub output: Output,
    /// Whether the guest must send encrypted values.
    pub sum: bool,
    /// The identifier both sides hash.
    #[schema(value_type = String)]
    pub identifier: serde_json::Value,
    /// `H(a)^α`, base64, sorted.
    pub blinded: Vec<String>,
}

/// Round 2, guest → host.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuestBlinded {
    /// `H(a)^αβ`, base64: in round 1's order if the session reveals matches, sorted otherwise.
    pub double_blinded: Vec<String>,
    /// `H(b)^β`, base64, sorted.
    pub blinded: Vec<String>,
    /// For a sum: `Enc(v_b)` (base64, big-endian), aligned with `blinded`.
    pub values: Option<Vec<String>>,
    /// For a sum: the Paillier modulus n (base64, big-endian).
    pub paillier_modulus: Option<String>,
}

/// Round 2's reply, host → guest.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostCount {
    /// Customers in common.
    pub cardinality: usize,
    /// For a sum: `Enc(sum + mask)` (base64), for the guest to decrypt.
    pub masked_sum: Option<String>,
}

/// Round 3, guest → host: the decrypted masked sum, as a decimal string.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuestSum {
    /// `sum + mask` mod n.
    pub masked_sum: String,
}
