//! Retention: every purpose has a maximum age; a field is kept while some purpose that may use
//! its category still has it within that age, an event row while some purpose may keep
//! identifiers that long. The sweep runs inside `serve` and as `consentric retention run`;
//! every sweep is audited, and one that removed anything empties SQLite's write-ahead log.
//! Age is measured against the engine's clock, so tests do not sleep.

use chrono::{DateTime, Utc};
use consentric_model::CallType;
use consentric_policy::DataCategory;
use serde::Serialize;
use serde_json::json;

use consentric_policy::PolicySet;
use consentric_store::Store;

use crate::audit;
use crate::clock::Clock;
use crate::error::EngineError;

const DAY_MS: i64 = 86_400_000;
/// Rows handled per transaction, so a long sweep does not hold the writer for long.
const PAGE: i64 = 500;

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// Events older than every purpose's retention, deleted whole.
    pub events_deleted: u64,
    /// Events rewritten without fields past their categories' retention.
    pub events_rewritten: u64,
    /// Fields removed from those events.
    pub fields_deleted: u64,
    /// Traits past their category's retention, deleted.
    pub traits_deleted: u64,
    /// Logged decisions older than the retention of the purpose the log is kept for.
    pub decisions_deleted: u64,
}

/// What the sweep works on: the store, the clock and the policy (each purpose's retention).
pub(crate) struct Retention<'a> {
    pub(crate) store: &'a Store,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) policy: &'a PolicySet,
    /// The purpose the decision log is kept for (`[personalize] purpose`).
    pub(crate) decisions_purpose: &'a str,
}

impl Retention<'_> {
    /// Longest retention, in days, of the purposes that may use `category`; 0 if none may.
    fn retention_ms(&self, category: &DataCategory) -> i64 {
        self.policy
            .registry
            .all()
            .filter(|p| self.policy.registry.permits(&p.id, category))
            .map(|p| i64::from(p.retention_days) * DAY_MS)
            .max()
            .unwrap_or(0)
    }

    /// Deletes what has outlived every purpose that may keep it, and audits the sweep.
    ///
    /// # Errors
    /// A database fault; what earlier pages deleted stays deleted.
    pub fn sweep_retention(&self, actor: &str) -> Result<RetentionReport, EngineError> {
        let now: DateTime<Utc> = self.clock.now();
        let now_ms = now.timestamp_millis();
        let min_days = self
            .policy
            .registry
            .all()
            .map(|p| p.retention_days)
            .min()
            .unwrap_or(u32::MAX);
        let max_days = self
            .policy
            .registry
            .all()
            .map(|p| p.retention_days)
            .max()
            .unwrap_or(u32::MAX);
        let oldest_kept = now_ms - i64::from(max_days) * DAY_MS;
        let sweep_before = now_ms - i64::from(min_days) * DAY_MS;
        let mut report = RetentionReport::default();

        let mut after = 0;
        loop {
            let more = self.store.write(|tx| -> Result<bool, EngineError> {
                let page = tx.events_before(sweep_before, after, PAGE)?;
                let Some(last) = page.last() else {
                    return Ok(false);
                };
                after = last.seq;
                for mut e in page {
                    if e.ts < oldest_kept {
                        tx.delete_event(e.seq)?;
                        report.events_deleted += 1;
                        continue;
                    }
                    let age = now_ms - e.ts;
                    let allowed = |c: &DataCategory| self.retention_ms(c) > age;
                    let mut payload = std::mem::take(&mut e.payload);
                    let removed = self.policy.minimise_payload(&mut payload, &allowed);
                    if removed > 0 {
                        report.fields_deleted += removed;
                        report.events_rewritten += 1;
                        tx.set_event_payload(&e, &payload.to_string())?;
                    }
                }
                Ok(true)
            })?;
            if !more {
                break;
            }
        }

        let mut key = (String::new(), String::new());
        loop {
            let more = self.store.write(|tx| -> Result<bool, EngineError> {
                let page = tx.traits_before(sweep_before, &key.0, &key.1, PAGE)?;
                let Some((p, n, _)) = page.last() else {
                    return Ok(false);
                };
                key = (p.to_string(), n.clone());
                for (profile, name, updated_at) in page {
                    let category = self.policy.schema.category(
                        CallType::Identify,
                        None,
                        &["traits", name.as_str()],
                    );
                    let keep_ms = category.map(|c| self.retention_ms(c)).unwrap_or(0);
                    if now_ms - updated_at >= keep_ms {
                        tx.delete_trait(&profile, &name)?;
                        report.traits_deleted += 1;
                    }
                }
                Ok(true)
            })?;
            if !more {
                break;
            }
        }

        // The decision log lives as long as its purpose keeps data (and not at all without it).
        let decision_days = self
            .policy
            .registry
            .get(self.decisions_purpose)
            .map_or(0, |p| p.retention_days);
        let decisions_before = now_ms - i64::from(decision_days) * DAY_MS;
        self.store.write(|tx| {
            report.decisions_deleted = tx.sweep_decision_log(decisions_before)?;
            audit::append(tx, now_ms, actor, "retention.swept", None, &json!(report))
        })?;
        if report != RetentionReport::default() {
            // The rows as they were stay in SQLite's write-ahead log until later commits
            // overwrite them (up to 256 MiB of writes): empty it, as an erasure does.
            self.store.checkpoint()?;
        }
        Ok(report)
    }
}
