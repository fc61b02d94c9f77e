//! What a decision hands its write half: decided outside the transaction, ranked and recorded
//! inside it, with concurrent decisions sharing one commit.

use std::collections::BTreeSet;

use consentric_model::{ProfileId, Stage};
use consentric_personalize::nba::Excluded;

/// What the write half of a decision needs: everything decided outside the transaction.
pub(crate) struct DecisionRequest {
    pub(crate) profile: ProfileId,
    pub(crate) mode: DecisionMode,
    pub(crate) stage: Option<Stage>,
    pub(crate) clv: Option<f64>,
    pub(crate) with_basis: BTreeSet<String>,
    pub(crate) now: i64,
    pub(crate) actor: String,
    pub(crate) audit: serde_json::Value,
    /// What the decision log keeps of it (recorded decisions only): the placement, the items,
    /// and the explanation as decided outside the transaction; the chosen action is added
    /// inside it.
    pub(crate) log: Option<(String, serde_json::Value)>,
}

/// The action chosen (name, expected value, from CLV) and the ones left out.
pub(crate) struct Outcome {
    pub(crate) chosen: Option<(String, f64, bool)>,
    pub(crate) excluded: Vec<(String, Excluded)>,
}

/// Whether a decision is acted on or only looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecisionMode {
    /// The chosen action is recorded (frequency caps and cooldowns count it), audited as
    /// `decision.made`.
    Record,
    /// Nothing is recorded and no cap or cooldown is spent; audited as `decision.previewed`,
    /// since it still reads personal data. Its choice is the one `Record` would make next.
    Preview,
}

impl DecisionMode {
    pub(crate) fn audit_action(self) -> &'static str {
        match self {
            DecisionMode::Record => "decision.made",
            DecisionMode::Preview => "decision.previewed",
        }
    }
}
