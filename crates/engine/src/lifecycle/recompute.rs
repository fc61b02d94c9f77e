//! `consentric lifecycle recompute`: every customer placed afresh as of now (or `as_of`), for
//! what ingest cannot see — time passing without events — and after rules change.

use consentric_policy::ConsentState;
use serde::Serialize;
use serde_json::json;

use super::place;
use crate::audit;
use crate::error::EngineError;

/// Profiles placed per transaction.
const CHUNK: usize = 5_000;

/// What a recompute did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RecomputeReport {
    /// Customers with a basis for the stage purpose, each placed.
    pub placed: u64,
    /// Of those, customers whose stage changed.
    pub changed: u64,
    /// Customers without a basis now (or restricted): not placed. A restricted customer keeps
    /// their stage unchanged.
    pub left_out: u64,
    /// Of those, customers whose stage (and its history) was deleted because the basis had
    /// lapsed rather than been withdrawn (a withdrawal deletes it at once).
    pub dropped: u64,
}

/// What this service works on, handed to it by the context.
pub(crate) struct RecomputeService<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) clock: &'a dyn crate::clock::Clock,
    pub(crate) policy: &'a consentric_policy::PolicySet,
    pub(crate) lifecycle: &'a crate::lifecycle::Lifecycle,
}

impl RecomputeService<'_> {
    /// Places every customer with a basis for the stage purpose by the rules.
    ///
    /// # Errors
    /// A database fault; then the chunk being written is not kept (earlier chunks are).
    pub fn lifecycle_recompute(&self, actor: &str) -> Result<RecomputeReport, EngineError> {
        let life = &self.lifecycle;
        let now = self.clock.now();
        let at = life.as_of(now).timestamp_millis();
        let purpose = self
            .policy
            .registry
            .get(&life.settings.stage_purpose)
            .map_err(|e| EngineError::Config(format!("[lifecycle] {e}")))?;
        let scorer = life.scorer();
        let ids = self.store.profile_ids()?;
        let mut report = RecomputeReport::default();
        for chunk in ids.chunks(CHUNK) {
            let part = self.store.write(|tx| {
                let mut r = RecomputeReport::default();
                for id in chunk {
                    // The basis is checked against the ledger inside this transaction, so a
                    // withdrawal committed meanwhile cannot see its deleted stage recreated.
                    let ledger = tx.consent_of(id)?;
                    let consent = ConsentState::fold(crate::ledger::to_records(&ledger));
                    if consent.has_basis(purpose, now) {
                        r.placed += 1;
                        r.changed += u64::from(place(tx, life, scorer.as_deref(), id, Some(at))?);
                    } else {
                        r.left_out += 1;
                        // A basis that lapsed (a consent for an older version of the purpose,
                        // say) rather than being withdrawn: the stage goes now. A restriction
                        // only suspends processing, so a restricted customer keeps theirs.
                        if !consent.without_restriction().has_basis(purpose, now) {
                            r.dropped += u64::from(tx.drop_stage(id)? > 0);
                        }
                    }
                }
                Ok::<_, EngineError>(r)
            })?;
            report.placed += part.placed;
            report.changed += part.changed;
            report.left_out += part.left_out;
            report.dropped += part.dropped;
        }
        let stamp = now.timestamp_millis();
        self.store.write(|tx| {
            audit::append(
                tx,
                stamp,
                actor,
                "lifecycle.recomputed",
                None,
                &json!({"purpose": life.settings.stage_purpose, "as_of": crate::profiles::iso(at),
                        "placed": report.placed, "changed": report.changed,
                        "left_out": report.left_out, "dropped": report.dropped}),
            )
        })?;
        Ok(report)
    }
}
