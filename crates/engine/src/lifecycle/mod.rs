//! Lifecycle services: stages kept up to date on ingest and recomputed in full, BTYD models
//! fitted on the customers the gate lets in, and per-customer scores under the stage purpose.
//!
//! Which customers enter what is decided by the gate: model fitting, cohorts and the funnel use
//! only customers with a basis for the analytics purpose (the rest are counted as left out);
//! stages and per-customer scores exist only for customers with a basis for the stage purpose
//! (`personalization` by default), and are deleted when it goes.

mod facts;
pub(crate) mod fit;
mod fit_figures;
pub(crate) mod recompute;
mod scoring;
pub(crate) mod service;
pub(crate) use scoring::date_of;
mod settings;
pub(crate) mod view;

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, NaiveTime, Utc};
use consentric_lifecycle::StageRules;
use consentric_model::ProfileId;
use consentric_store::{StoreError, WriteTx};

pub(crate) use facts::CustomerFacts;
pub(crate) use fit::scorer_from;
pub use fit::{FitReport, ModelFit};
pub use fit_figures::{Distribution, Distributions, Tracking};
pub use recompute::RecomputeReport;
pub(crate) use scoring::Scorer;
pub use settings::LifecycleSettings;
pub use view::{CustomerLifecycle, Flow, LifecycleSummary, Scores, TransitionView};

use crate::error::EngineError;

/// Milliseconds in a day.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// The engine's lifecycle state: checked rules, what ingest must count, the fitted models.
pub(crate) struct Lifecycle {
    pub settings: LifecycleSettings,
    pub rules: StageRules,
    /// Event names the rules count.
    pub counted: HashSet<String>,
    /// The latest fit, once there is one.
    pub scorer: RwLock<Option<Arc<Scorer>>>,
}

impl Lifecycle {
    /// Checks the settings' rules (or takes the retail defaults).
    pub fn new(settings: LifecycleSettings) -> Result<Lifecycle, EngineError> {
        let rules = match &settings.rules {
            Some(r) => StageRules::new(r.clone())
                .map_err(|e| EngineError::Config(format!("[lifecycle] {e}")))?,
            None => StageRules::retail(),
        };
        let bad = |m: &str| Err(EngineError::Config(format!("[lifecycle] {m}")));
        let (clv, churn) = (settings.clv, settings.churn);
        if clv.months == 0 || !(0.0..1.0).contains(&clv.monthly_discount) {
            return bad("clv needs months >= 1 and a monthly_discount in [0, 1)");
        }
        if !(0.0..=1.0).contains(&churn.threshold)
            || churn.horizon_days.is_nan()
            || churn.horizon_days <= 0.0
        {
            return bad("churn needs a threshold in [0, 1] and a positive horizon_days");
        }
        let counted = rules.counted_events().map(str::to_owned).collect();
        Ok(Lifecycle {
            settings,
            rules,
            counted,
            scorer: RwLock::new(None),
        })
    }

    pub fn scorer(&self) -> Option<Arc<Scorer>> {
        self.scorer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_scorer(&self, scorer: Option<Arc<Scorer>>) {
        *self.scorer.write().unwrap_or_else(|p| p.into_inner()) = scorer;
    }

    /// The moment lifecycle computations are made for: `as_of` (end of that day) if set, else
    /// `now`.
    pub fn as_of(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self.settings.as_of {
            Some(day) => day
                .and_time(NaiveTime::MIN)
                .and_utc()
                .checked_add_signed(chrono::Duration::milliseconds(DAY_MS - 1))
                .unwrap_or(now),
            None => now,
        }
    }
}

/// Places `profile` by the rules as of `now` (its latest event when `None`) in the open
/// transaction, recording a transition when the stage changes. Returns whether it changed.
/// The caller has checked the stage purpose's basis.
pub(crate) fn place(
    tx: &mut WriteTx<'_>,
    life: &Lifecycle,
    scorer: Option<&Scorer>,
    profile: &ProfileId,
    now: Option<i64>,
) -> Result<bool, StoreError> {
    // Lock the customer first (PostgreSQL: a row lock; ingest holds the same one from its
    // counter update), so two writers cannot both take the next transition number.
    if !tx.lock_profile(profile)? {
        return Ok(false);
    }
    match CustomerFacts::read(tx, life, profile)? {
        Some(mut f) => f.place(tx, life, scorer, profile, now),
        None => Ok(false),
    }
}

/// Whether a grant opens what purchase-based computations read: amounts and purchase
/// behaviour.
pub(crate) fn opens_purchases(grant: &consentric_policy::Grant) -> bool {
    ["user.financial.transaction", "user.behavior.purchase"]
        .iter()
        .filter_map(|c| consentric_policy::DataCategory::parse(c).ok())
        .all(|c| grant.permits(&c))
}
