//! The clean room: how many of our customers a partner also has, and optionally the sum of a
//! value the partner holds over them, with neither side learning anything else. Private set
//! intersection by commutative blinding over Ristretto255, and Paillier-encrypted values summed
//! over the intersection (Ion et al. 2020, the protocol of Google's Private Join and Compute),
//! in three rounds over HTTP, each authenticated by the session's token:
//!
//! 1. the guest fetches the host's blinded identifiers `H(a)^α`;
//! 2. the guest sends them back blinded again (`H(a)^αβ`; sorted unless the session reveals
//!    matches), its own blinded identifiers `H(b)^β` sorted, and — for a sum — its values
//!    encrypted under a fresh Paillier key; the host blinds the guest's again, counts the
//!    equal values, adds the matched ciphertexts and a random mask, and replies with the
//!    cardinality and `Enc(sum + mask)`;
//! 3. the guest decrypts `sum + mask` and sends it; the host removes the mask.
//!
//! Only customers with a basis for `[cleanroom] purpose` (`partner_matching`) take part, on
//! both sides; the audit log records every session's partner, purpose, counts and what was
//! revealed. The host learns the cardinality (and the matched customers or the sum, if the
//! session says so); the guest learns the cardinality.

pub(crate) mod guest;
pub(crate) mod host;
mod secrets;
mod session_error;
mod settings;

use serde::{Deserialize, Serialize};

pub use consentric_pets::psi::IdKind;
pub use guest::{GuestRun, GuestSecrets, Joining};
pub(crate) use secrets::Cleanroom;
pub use session_error::SessionError;
pub use settings::CleanroomSettings;

/// What a session reveals to the host beyond the cardinality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// The number of customers in common, nothing else (the default).
    Cardinality,
    /// Also which of the host's customers are in common.
    Matches,
}

impl Output {
    /// As stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Output::Cardinality => "cardinality",
            Output::Matches => "matches",
        }
    }

    fn parse(s: &str) -> Option<Output> {
        match s {
            "cardinality" => Some(Output::Cardinality),
            "matches" => Some(Output::Matches),
            _ => None,
        }
    }
}

/// An invitation for a partner: give them the session id, the token and our URL.
#[derive(Debug, Clone, Serialize)]
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

/// A partner's name as sessions record it: something besides whitespace, at most 200 bytes,
/// no control characters (PostgreSQL stores no NUL; the rest would garble logs and exports).
pub(crate) fn is_partner_name(name: &str) -> bool {
    !name.trim().is_empty() && name.len() <= 200 && !name.chars().any(char::is_control)
}

/// A session as shown to the operator.
#[derive(Debug, Clone, Serialize)]
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
    pub result: Option<serde_json::Value>,
}

/// Round 1, host → guest: our blinded identifiers and the session's terms.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostBlinded {
    /// What the session reveals.
    pub output: Output,
    /// Whether the guest must send encrypted values.
    pub sum: bool,
    /// The identifier both sides hash.
    pub identifier: IdKind,
    /// `H(a)^α`, base64, sorted.
    pub blinded: Vec<String>,
}

/// Round 2, guest → host.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostCount {
    /// Customers in common.
    pub cardinality: usize,
    /// For a sum: `Enc(sum + mask)` (base64), for the guest to decrypt.
    pub masked_sum: Option<String>,
}

/// Round 3, guest → host: the decrypted masked sum, as a decimal string.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestSum {
    /// `sum + mask` mod n.
    pub masked_sum: String,
}

/// The state names as stored.
pub(crate) mod state {
    pub const INVITED: &str = "invited";
    pub const BLINDED: &str = "blinded";
    pub const SUMMING: &str = "summing";
    pub const RUNNING: &str = "running";
    pub const DONE: &str = "done";
    pub const ABORTED: &str = "aborted";
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(s: &str, what: &str) -> Result<Vec<u8>, crate::EngineError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| {
            crate::EngineError::Session(SessionError::Protocol(format!("{what} is not base64")))
        })
}

fn points(
    list: &[String],
    what: &str,
) -> Result<Vec<consentric_pets::psi::Blinded>, crate::EngineError> {
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            let b = unb64(s, what)?;
            <[u8; 32]>::try_from(b.as_slice()).map_err(|_| {
                crate::EngineError::Session(SessionError::Protocol(format!(
                    "{what}[{i}] is not 32 bytes"
                )))
            })
        })
        .collect()
}

impl From<&consentric_store::SessionRow> for SessionView {
    fn from(r: &consentric_store::SessionRow) -> Self {
        SessionView {
            session: r.session_id.clone(),
            role: r.role.clone(),
            partner: r.partner.clone(),
            output: r.output.clone(),
            sum: r.with_sum,
            state: r.state.clone(),
            expires_at: r.expires_at,
            result: r
                .result
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok()),
        }
    }
}
