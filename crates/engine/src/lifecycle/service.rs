//! Value scores for one customer and the population the value models are fitted on, for the
//! services that need them.

use chrono::{DateTime, Utc};

use super::{opens_purchases, scoring};
use crate::error::EngineError;

/// What this service works on, handed to it by the context.
pub(crate) struct LifecycleScores<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) lifecycle: &'a crate::lifecycle::Lifecycle,
    pub(crate) populations: crate::population::Populations<'a>,
}

impl LifecycleScores<'_> {
    /// The customer's CLV from their purchases by day (read under a grant that opens
    /// purchases), when a value model is fitted and they bought by the configured `as_of`.
    pub(crate) fn clv_of_days(
        &self,
        mut days: Vec<consentric_store::PurchaseDay>,
        now: DateTime<Utc>,
    ) -> Option<f64> {
        let scorer = self.lifecycle.scorer()?;
        let as_of = self.lifecycle.as_of(now).timestamp_millis();
        let today = scoring::day_of(as_of);
        days.retain(|d| d.day <= today);
        scoring::summary_of_days(&days, as_of).and_then(|s| scorer.score(&s).clv)
    }

    /// The customer's CLV under `grant` (see [`LifecycleScores::clv_of_days`]); `None` when the grant
    /// does not open purchases.
    pub(crate) fn clv_of(
        &self,
        grant: &consentric_policy::Grant,
        now: DateTime<Utc>,
    ) -> Result<Option<f64>, EngineError> {
        if self.lifecycle.scorer().is_none() || !opens_purchases(grant) {
            return Ok(None);
        }
        Ok(self.clv_of_days(self.store.purchases(grant)?, now))
    }

    /// Grants for `purpose` over every customer the gate lets in at `at` and whose grant opens
    /// purchases, and how many were left out.
    pub(crate) fn population(
        &self,
        purpose: &str,
        at: DateTime<Utc>,
    ) -> Result<(Vec<consentric_policy::Grant>, usize), EngineError> {
        self.populations
            .population_where(purpose, at, "lifecycle", opens_purchases)
    }
}
