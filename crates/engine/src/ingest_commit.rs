//! Ingest as a service: events read for consent signals and shaped on the caller's thread,
//! then committed with concurrent requests in one transaction (group commit) and flushed
//! before anyone is answered.

use std::time::Instant;

use consentric_model::Event;
use consentric_policy::PolicyError;
use consentric_store::{StoreError, Unflushed};

use crate::error::EngineError;
use crate::ingest::{self, BatchState, IngestContext, IngestReport, IngestRequest, Origin};
use crate::ingest_cache::IngestCache;

/// Most distinct unmapped field names remembered for logging once.
const MAX_UNMAPPED_REMEMBERED: usize = 10_000;

/// What this service works on, handed to it by the context.
pub(crate) struct IngestService<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) clock: &'a dyn crate::clock::Clock,
    pub(crate) policy: &'a consentric_policy::PolicySet,
    pub(crate) lifecycle: &'a crate::lifecycle::Lifecycle,
    pub(crate) personalize: &'a crate::personalize::Personalize,
    pub(crate) group_commit: &'a crate::group_commit::GroupCommit<crate::ingest::IngestRequest>,
    pub(crate) ingest_cache: &'a std::sync::Mutex<crate::ingest_cache::IngestCache>,
    pub(crate) metrics: &'a crate::metrics::Metrics,
    pub(crate) unmapped_seen: &'a std::sync::Mutex<std::collections::HashSet<String>>,
    /// What clients' events may claim: the withdrawal grace period.
    pub(crate) ingest_settings: &'a crate::config::IngestSettings,
}

/// The context field a site's backend signs the user id into: `hex(HMAC-SHA256(identity
/// secret, userId))`, as Intercom's and Crisp's identity verification do.
pub const USER_HASH_FIELD: &str = "userHash";

impl IngestService<'_> {
    /// Stores parsed events; duplicates (known message ids) are acknowledged and skipped.
    /// Concurrent calls are committed together (group commit); when this returns `Ok`, the
    /// events are committed, and a batch is stored whole or not at all.
    ///
    /// # Errors
    /// A database fault; then nothing of the batch is stored.
    pub fn ingest(&self, events: Vec<Event>) -> Result<IngestReport, EngineError> {
        self.ingest_with(
            events,
            &IngestContext {
                gpc: false,
                actor: "ingest".into(),
                origin: Origin::Server,
            },
        )
    }

    /// [`IngestService::ingest`] with the request's consent signals (`Sec-GPC`) and sender. Consent
    /// carried by the events (Segment's consent object, TCF strings) is read first: a malformed
    /// signal refuses the whole request before anything is written.
    ///
    /// # Errors
    /// [`EngineError::Invalid`] naming the event and field of a malformed signal; a database
    /// fault (nothing of the batch is stored).
    pub fn ingest_with(
        &self,
        mut events: Vec<Event>,
        ctx: &IngestContext,
    ) -> Result<IngestReport, EngineError> {
        let started = Instant::now();
        let mut signals = events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                self.policy.signals(e, ctx.gpc).map_err(|err| match err {
                    PolicyError::Invalid { field, message } if events.len() > 1 => {
                        EngineError::Invalid {
                            field: format!("batch[{i}].{field}"),
                            message,
                        }
                    }
                    PolicyError::Invalid { field, message } => {
                        EngineError::Invalid { field, message }
                    }
                    other => EngineError::Config(other.to_string()),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        for (event, signals) in events.iter_mut().zip(signals.iter_mut()) {
            let verified = self.user_hash_verified(event);
            // The user hash proves, it is not data: it is never stored.
            for (root, object) in event.data_mut() {
                if root == "context" {
                    object.remove(USER_HASH_FIELD);
                }
            }
            match ctx.origin {
                Origin::Browser => {
                    let limits = self.policy.limit_browser_event(event, signals, verified);
                    self.metrics
                        .record_contact_removed(limits.contact_fields_removed);
                }
                // The business vouches for what its own servers (and imports) send.
                Origin::Server => {
                    for s in signals.iter_mut() {
                        s.assurance = consentric_policy::Assurance::Server;
                    }
                }
            }
        }
        let prepared = events
            .into_iter()
            .zip(&signals)
            .map(|(e, s)| {
                let shaped = self.policy.prepare(e, s);
                if let Ok(p) = &shaped {
                    self.note_unmapped(&p.full.unmapped_fields);
                }
                shaped.map_err(|err| EngineError::Config(err.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let request = IngestRequest {
            prepared,
            signals,
            actor: ctx.actor.clone(),
            origin: ctx.origin,
            withdrawal_grace_ms: i64::try_from(self.ingest_settings.withdrawal_grace_hours)
                .unwrap_or(i64::MAX / 3_600_000)
                .saturating_mul(3_600_000),
        };
        let outcome = self.group_commit.submit(
            request,
            |group| self.commit_group(group),
            |p| Ok(self.store.flush(p)?),
        );
        let outcome = match outcome {
            Err(EngineError::Store(StoreError::Refused(why))) => {
                // Nothing of the request was written; the refusal itself is kept.
                let now = self.clock.now().timestamp_millis();
                self.store.write(|tx| {
                    crate::audit::append(
                        tx,
                        now,
                        &ctx.actor,
                        "identity.merge_refused",
                        None,
                        &serde_json::json!({"reason": why}),
                    )
                })?;
                Err(EngineError::Conflict(why))
            }
            other => other,
        };
        if let Ok(report) = &outcome {
            self.metrics
                .record_ingest(report.accepted, report.duplicates, started.elapsed());
            self.metrics
                .record_dropped(report.fields_unmapped, report.fields_without_basis);
        }
        outcome
    }

    /// Whether `event` carries a valid user hash for its user id.
    fn user_hash_verified(&self, event: &Event) -> bool {
        let (Some(user), Some(vault)) = (event.user_id(), self.store.vault()) else {
            return false;
        };
        event
            .context()
            .as_map()
            .get(USER_HASH_FIELD)
            .and_then(serde_json::Value::as_str)
            .is_some_and(|hash| vault.user_hash_matches(user.as_str(), hash))
    }

    /// Commits a group of ingest requests in one transaction; what it returns is committed
    /// but must be flushed (the `Unflushed`) before anyone is answered. A failed group is
    /// retried request by request, each flushed before it returns.
    fn commit_group(
        &self,
        group: &[IngestRequest],
    ) -> (Vec<Result<IngestReport, EngineError>>, Unflushed) {
        let now = self.clock.now().timestamp_millis();
        // Only the group-commit leader gets here, so the lock is never contended. A leader
        // that panicked may have left it half-updated: then it starts again, empty.
        let mut cache = match self.ingest_cache.lock() {
            Ok(cache) => cache,
            Err(poisoned) => {
                let mut cache = poisoned.into_inner();
                cache.clear();
                self.ingest_cache.clear_poison();
                cache
            }
        };
        // An import's commit (2,500 events) rewrites thousands of pages: it gets the large page
        // cache. API requests (Segment's 500 KB batches) committed together are usually far
        // smaller and keep the writer's small one, which makes their commits cheaper.
        let events: usize = group.iter().map(|r| r.prepared.len()).sum();
        let work = |tx: &mut consentric_store::WriteTx<'_>| {
            let token = tx.change_token()?;
            cache.validate(token);
            let named = ingest::lock_identities(tx, group)?;
            let mut state = BatchState::new(&cache, self.lifecycle, &self.personalize.interactions);
            state.prefetch(tx, &named)?;
            let reports = group
                .iter()
                .map(|req| ingest::ingest(tx, &mut state, req, self.policy, now))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let touched = state.take_touched();
            if self.personalize.tracks_segments() {
                tx.note_touched(&touched)?;
            }
            Ok::<_, StoreError>((reports, token, state.learnt()))
        };
        let together = self
            .store
            .write_unflushed(events >= crate::ingest::IMPORT_BATCH, work);
        match together {
            Ok(((reports, token, learnt), pending)) => {
                cache.absorb(token, learnt);
                (reports.into_iter().map(Ok).collect(), pending)
            }
            Err(e) if group.len() == 1 => {
                cache.clear();
                (vec![Err(e.into())], Unflushed::nothing())
            }
            Err(e) => {
                cache.clear();
                tracing::warn!(error = %e, requests = group.len(), "group commit failed; retrying each request alone");
                let empty = IngestCache::default();
                let each = group
                    .iter()
                    .map(|req| {
                        self.store
                            .write(|tx| {
                                let named = ingest::lock_identities(tx, [req])?;
                                let mut state = BatchState::new(
                                    &empty,
                                    self.lifecycle,
                                    &self.personalize.interactions,
                                );
                                state.prefetch(tx, &named)?;
                                let report = ingest::ingest(tx, &mut state, req, self.policy, now)?;
                                if self.personalize.tracks_segments() {
                                    tx.note_touched(&state.take_touched())?;
                                }
                                Ok::<_, StoreError>(report)
                            })
                            .map_err(EngineError::from)
                    })
                    .collect();
                (each, Unflushed::nothing())
            }
        }
    }

    /// Logs each field that maps to no data category the first time it is seen (at most
    /// [`MAX_UNMAPPED_REMEMBERED`] names are remembered).
    fn note_unmapped(&self, paths: &[String]) {
        if paths.is_empty() {
            return;
        }
        let mut seen = self.unmapped_seen.lock().unwrap_or_else(|p| p.into_inner());
        for path in paths {
            if seen.len() < MAX_UNMAPPED_REMEMBERED && seen.insert(path.clone()) {
                tracing::warn!(
                    field = path.as_str(),
                    "field maps to no data category; it is not stored (map it under [[schema]] in consentric.toml)"
                );
            }
        }
    }
}
