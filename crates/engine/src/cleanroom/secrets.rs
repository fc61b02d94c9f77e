//! What the clean room keeps between a session's rounds: its settings and the secrets of
//! sessions in flight, never stored.

use std::collections::HashMap;
use std::sync::Mutex;

use consentric_model::ProfileId;
use consentric_pets::paillier::PublicKey;
use consentric_pets::psi::Blinder;
use dashu::integer::UBig;

use super::settings::CleanroomSettings;

/// What the host must remember between rounds; never stored.
pub(super) struct Secrets {
    pub(super) blinder: Blinder,
    /// The customers behind each blinded identifier, in the order sent.
    pub(super) profiles: Vec<Vec<ProfileId>>,
    pub(super) ours: usize,
    /// After round 2 of a sum: what round 3 needs.
    pub(super) summing: Option<Summing>,
    /// The session's expiry: after it, the secrets are dropped even if nobody calls again.
    pub(super) expires_at: i64,
}

/// A sum in flight between rounds 2 and 3.
pub(super) struct Summing {
    pub(super) cardinality: usize,
    pub(super) theirs: usize,
    pub(super) key: PublicKey,
    pub(super) mask: UBig,
    /// The matched customers, when the session reveals them.
    pub(super) matched: Option<Vec<String>>,
}

/// The clean room's settings and the secrets of sessions in flight.
pub(crate) struct Cleanroom {
    pub settings: CleanroomSettings,
    secrets: Mutex<HashMap<String, Secrets>>,
}

impl Cleanroom {
    pub fn new(settings: CleanroomSettings) -> Self {
        Cleanroom {
            settings,
            secrets: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn take(&self, id: &str) -> Option<Secrets> {
        self.secrets.lock().ok()?.remove(id)
    }

    /// How many blinded identifiers we sent in session `id`'s round 1, while it is in flight.
    pub(super) fn ours(&self, id: &str) -> Option<usize> {
        self.secrets.lock().ok()?.get(id).map(|s| s.ours)
    }

    /// Keeps a session's secrets, dropping those of every expired session.
    pub(super) fn keep(&self, id: &str, s: Secrets, now: i64) {
        if let Ok(mut m) = self.secrets.lock() {
            m.retain(|_, kept| kept.expires_at >= now);
            m.insert(id.to_owned(), s);
        }
    }
}
