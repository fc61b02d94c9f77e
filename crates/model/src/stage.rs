//! The lifecycle stages the product places every customer in.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a customer stands in the lifecycle.
/// The default is where every known customer starts.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Known, no purchase yet.
    #[default]
    Acquisition,
    /// First purchase made; settling in.
    Onboarding,
    /// Active, buying again.
    Engagement,
    /// At risk: falling P(alive) or activity.
    Retention,
    /// A candidate for cross-sell or upsell.
    Expansion,
    /// High value and speaking for us: reviews, referrals.
    Advocacy,
    /// Gone.
    Churned,
    /// Back after having churned.
    Reactivated,
}

impl Stage {
    /// Every stage, in funnel order.
    pub const ALL: [Stage; 8] = [
        Stage::Acquisition,
        Stage::Onboarding,
        Stage::Engagement,
        Stage::Retention,
        Stage::Expansion,
        Stage::Advocacy,
        Stage::Churned,
        Stage::Reactivated,
    ];

    /// The stage's name as stored and served.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Acquisition => "acquisition",
            Stage::Onboarding => "onboarding",
            Stage::Engagement => "engagement",
            Stage::Retention => "retention",
            Stage::Expansion => "expansion",
            Stage::Advocacy => "advocacy",
            Stage::Churned => "churned",
            Stage::Reactivated => "reactivated",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a stage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown lifecycle stage {0:?}")]
pub struct UnknownStage(pub String);

impl FromStr for Stage {
    type Err = UnknownStage;
    fn from_str(s: &str) -> Result<Stage, UnknownStage> {
        Stage::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStage(s.to_string()))
    }
}
