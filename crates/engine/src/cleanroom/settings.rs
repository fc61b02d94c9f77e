//! `[cleanroom]`: which purpose lets a customer take part, which identifier is matched, how
//! long a session lives and how large it may be.

use consentric_pets::psi::IdKind;
use serde::Deserialize;

/// How clean-room sessions run.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CleanroomSettings {
    /// Customers take part only with a basis for this purpose.
    pub purpose: String,
    /// The trait matched: `email` (trait `email`) or `phone` (trait `phone`).
    pub identifier: IdKind,
    /// Minutes from invitation to expiry.
    pub session_minutes: u32,
    /// Most identifiers either side may bring to a session.
    pub max_set: usize,
    /// Fewest identifiers we accept from the other side: a set of one would ask whether one
    /// person is our customer.
    pub min_set: usize,
    /// Bits of the Paillier modulus a guest generates per session: 2048, 3072 or 4096.
    pub paillier_bits: usize,
    /// The smallest intersection a guest reveals a sum over (a sum over one customer is their
    /// value).
    pub min_sum_cardinality: usize,
}

impl Default for CleanroomSettings {
    fn default() -> Self {
        CleanroomSettings {
            purpose: "partner_matching".into(),
            identifier: IdKind::Email,
            session_minutes: 60,
            max_set: 1_000_000,
            min_set: 50,
            paillier_bits: 2048,
            min_sum_cardinality: 10,
        }
    }
}

impl CleanroomSettings {
    /// The trait holding the identifier.
    pub fn trait_name(&self) -> &'static str {
        match self.identifier {
            IdKind::Email => "email",
            IdKind::Phone => "phone",
        }
    }
}
