//! Personalisation services: interactions kept on ingest for customers with a basis for the
//! personalisation purpose, recommenders trained on the customers the gate lets in, and
//! decisions — items, the next best action and an explanation — made per customer through
//! the gate, with a non-personal answer when it stays shut. Segments are defined here and
//! evaluated under the same purpose.
//!
//! Sensitive categories (`user.demographic.*`) never enter: decisions read interactions,
//! stage, CLV and the actions already taken, never traits; segments refuse sensitive traits.

mod catalogue;
pub(crate) mod decide;
#[cfg(test)]
mod decide_tests;
mod decision_request;
pub(crate) mod facts;
mod interactions;
pub(crate) mod membership;
mod models;
pub(crate) mod segments;
mod settings;
pub(crate) mod train;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use consentric_personalize::nba::Action;

pub(crate) use catalogue::catalogue;
pub use catalogue::ActionView;
pub use decide::{Decision, DecisionAction, DecisionItem, ExcludedAction, Explanation};
pub(crate) use decision_request::{DecisionRequest, Outcome as DecisionOutcome};
pub(crate) use interactions::InteractionRules;
pub use membership::{SegmentMembers, SegmentRefresh};
pub use models::TrainReport;
pub(crate) use models::Trained;
pub use segments::{SegmentPreview, SegmentProposal, SegmentView};
pub use settings::{PersonalizeSettings, RecommenderKind};

use crate::error::EngineError;

/// The engine's personalisation state: settings, the checked catalogue, the trained models.
pub(crate) struct Personalize {
    pub settings: PersonalizeSettings,
    pub catalogue: Vec<Action>,
    /// Which events are item interactions, from the settings.
    pub interactions: InteractionRules,
    /// The latest training, once there is one.
    pub models: RwLock<Option<Arc<Trained>>>,
    /// Whether any segment is defined (nothing is tracked for segments otherwise). The
    /// customers written to since their segments were last evaluated are noted in the
    /// database (`touched_profiles`), so any node's refresh sees every node's writes.
    pub has_segments: AtomicBool,
}

impl Personalize {
    /// Checks the catalogue (or takes the retail one).
    pub fn new(settings: PersonalizeSettings) -> Result<Personalize, EngineError> {
        let catalogue = settings.catalogue();
        let bad = |m: String| Err(EngineError::Config(format!("[personalize] {m}")));
        let mut names = std::collections::HashSet::new();
        for a in &catalogue {
            if a.name.trim().is_empty() || !names.insert(a.name.as_str()) {
                return bad(format!(
                    "action names must be unique and not empty (`{}`)",
                    a.name
                ));
            }
            if !(0.0..=1.0).contains(&a.uplift) || !a.value.is_finite() || a.cooldown_days < 0.0 {
                return bad(format!(
                    "action `{}` needs an uplift in [0, 1], a finite value and a cooldown >= 0",
                    a.name
                ));
            }
            if a.cap.is_some_and(|c| c.count == 0 || c.days <= 0.0) {
                return bad(format!(
                    "action `{}`: a cap needs count >= 1 and days > 0",
                    a.name
                ));
            }
        }
        if settings
            .events
            .values()
            .any(|w| !w.is_finite() || *w <= 0.0)
        {
            return bad("event weights must be positive".into());
        }
        let p = &settings.als;
        if p.factors == 0 || p.factors > 512 || p.iterations > 1000 || p.cg_steps == 0 {
            return bad(
                "als needs 1..=512 factors, at most 1000 iterations and cg_steps >= 1".into(),
            );
        }
        if settings.default_limit == 0 || settings.max_limit < settings.default_limit {
            return bad("default_limit must be >= 1 and max_limit >= default_limit".into());
        }
        Ok(Personalize {
            interactions: settings.rules(),
            settings,
            catalogue,
            models: RwLock::new(None),
            has_segments: AtomicBool::new(false),
        })
    }

    /// The latest trained models, if any.
    pub fn models(&self) -> Option<Arc<Trained>> {
        self.models
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_models(&self, m: Option<Arc<Trained>>) {
        *self.models.write().unwrap_or_else(|p| p.into_inner()) = m;
    }

    /// Whether writes must note the customers they touch (a segment is defined).
    pub fn tracks_segments(&self) -> bool {
        self.has_segments.load(Ordering::Relaxed)
    }
}
