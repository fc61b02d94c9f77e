//! Who has a basis for a purpose: every customer folded through the gate, remembered until it
//! could have changed. It changes only when a commit creates, merges or deletes a profile or
//! writes the consent ledger (the store's population epoch, kept in the database so other
//! processes' commits count too), or when the clock passes a recorded decision's time. Both are
//! checked on every use, so a withdrawal is honoured by the next read, never a stale one.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use consentric_policy::{gate, ConsentState, Grant, PolicySet, Refusal};
use consentric_store::Store;

use crate::error::EngineError;
use crate::population_cache::{Population, PopulationCache};

/// What finding a purpose's population works on: the store, the policy and the cache.
pub(crate) struct Populations<'a> {
    pub(crate) store: &'a Store,
    pub(crate) policy: &'a PolicySet,
    pub(crate) population_cache: &'a PopulationCache,
}

impl Populations<'_> {
    /// Everyone with a basis for `purpose` at `at` (`section` names the configuration that chose
    /// the purpose, for the error when it is unknown).
    pub(crate) fn population_for(
        &self,
        purpose: &str,
        at: DateTime<Utc>,
        section: &str,
    ) -> Result<Arc<Population>, EngineError> {
        let at_ms = at.timestamp_millis();
        // Read before folding: a commit that lands meanwhile bumps the epoch past this one, so
        // what is cached below is recomputed on the next use rather than trusted.
        let epoch = self.store.population_epoch()?;
        if let Some(p) = self.population_cache.get(purpose) {
            if p.holds(epoch, at_ms) {
                return Ok(p);
            }
        }
        let ledgers = self.store.consent_about(purpose)?;
        let (mut from, mut until) = (i64::MIN, i64::MAX);
        for row in ledgers.values().flatten() {
            if row.decided_at <= at_ms {
                from = from.max(row.decided_at);
            } else {
                until = until.min(row.decided_at);
            }
        }
        let mut grants = Vec::new();
        let mut refused = 0;
        for id in self.store.profile_ids()? {
            let rows = ledgers.get(&id).map(Vec::as_slice).unwrap_or_default();
            let state = ConsentState::fold(crate::ledger::to_records(rows));
            match gate::open(&self.policy.registry, &state, purpose, id.as_str(), at) {
                Ok(g) => grants.push(g),
                Err(Refusal::NoBasis { .. }) => refused += 1,
                Err(Refusal::UnknownPurpose(p)) => {
                    return Err(EngineError::Config(format!(
                        "[{section}] names the unknown purpose `{p}`"
                    )))
                }
            }
        }
        let population = Arc::new(Population {
            grants,
            refused,
            epoch,
            from,
            until,
        });
        self.population_cache.put(purpose, population.clone());
        Ok(population)
    }

    /// Grants for `purpose` over every customer the gate lets in at `at` and whose grant
    /// `keep` accepts, and how many were left out.
    pub(crate) fn population_where(
        &self,
        purpose: &str,
        at: DateTime<Utc>,
        section: &str,
        keep: fn(&Grant) -> bool,
    ) -> Result<(Vec<Grant>, usize), EngineError> {
        let population = self.population_for(purpose, at, section)?;
        let grants: Vec<Grant> = population
            .grants
            .iter()
            .filter(|g| keep(g))
            .cloned()
            .collect();
        let left_out = population.refused + (population.grants.len() - grants.len());
        Ok((grants, left_out))
    }
}
