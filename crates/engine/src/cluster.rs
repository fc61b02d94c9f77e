//! This node among others on one PostgreSQL.
//!
//! What a node keeps in memory follows the database: the changes other nodes announce
//! (`consentric_store::Change`: an erasure, models trained or fitted, a segment
//! defined) are heard on a connection of its own and applied here — keys forgotten, models
//! reloaded. While that connection is down nothing can be heard, so on every (re)connection
//! the node starts again from the database, and `/readyz` says it is not ready.
//!
//! Periodic jobs run on the leader only (a PostgreSQL advisory lock, see
//! `consentric_store::Leadership`), once per period across the cluster (the last run of each
//! job is in the database), with every write they make fenced by the leader's token.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use consentric_store::{BackendKind, Change, ChangeFeed, StoreError};
use consentric_vault::KeyId;

use crate::engine::Engine;
use crate::error::EngineError;

/// How long the follower waits for a change before checking that the engine still exists.
const FOLLOW_POLL: Duration = Duration::from_secs(2);
/// How long it waits before listening again after losing its connection.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

impl Engine {
    /// This node's name.
    pub fn node(&self) -> &str {
        &self.context().cluster.node
    }

    /// Starts hearing what other nodes on the same PostgreSQL announce, on a thread of its own
    /// that ends with the engine; the first connection is made before this returns, so a
    /// server is ready as it starts. Does nothing on SQLite (one process's file).
    pub fn follow_cluster(self: &Arc<Self>) {
        if self.backend() != BackendKind::Postgres {
            return;
        }
        let first = match self.context().store.listen() {
            Ok(feed) => feed,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for other nodes' changes yet");
                None
            }
        };
        if first.is_some() {
            // What was loaded before anyone listened may already be stale.
            self.resync();
            self.context()
                .cluster
                .following
                .store(true, Ordering::Relaxed);
        }
        let engine = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("cluster-follower".into())
            .spawn(move || follow(&engine, first));
        if let Err(e) = spawned {
            self.context()
                .cluster
                .following
                .store(false, Ordering::Relaxed);
            tracing::error!(error = %e, "cannot start the cluster follower");
        }
    }

    /// Runs `job` named `name` if this node leads the cluster and `period` has passed since
    /// the job last ran on any node; `None` when it did not run here. Every write the job
    /// makes checks that this node still leads.
    ///
    /// # Errors
    /// The job's own errors; a database fault; [`EngineError::Store`] with
    /// `StoreError::Fenced` if another node took the lead while it ran.
    pub fn run_timer<T>(
        &self,
        name: &str,
        period: Duration,
        job: impl FnOnce(&Engine) -> Result<T, EngineError>,
    ) -> Result<Option<T>, EngineError> {
        let cx = self.context();
        let now = cx.clock.now().timestamp_millis();
        let fence = {
            let mut lead = cx
                .cluster
                .leadership
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if lead.as_mut().is_some_and(|l| !l.held()) {
                tracing::warn!(node = %cx.cluster.node, "lost the cluster's lead");
                *lead = None;
            }
            if lead.is_none() {
                *lead = cx.store.try_lead(&cx.cluster.node, now)?;
                if let Some(l) = lead.as_ref() {
                    tracing::info!(node = %cx.cluster.node, token = l.token(), "leading the cluster");
                }
            }
            let Some(l) = lead.as_ref() else {
                return Ok(None);
            };
            (cx.store.fenced(l), l.token())
        };
        let (_fenced, token) = fence;
        let period_ms = i64::try_from(period.as_millis()).unwrap_or(i64::MAX);
        let claimed = cx
            .store
            .write(|tx| tx.claim_timer(name, now, period_ms, token, &cx.cluster.node))?;
        if !claimed {
            return Ok(None);
        }
        cx.metrics.record_timer_run(name);
        let out = job(self);
        if let Err(EngineError::Store(StoreError::Fenced(_))) = &out {
            // Another node leads now: this one takes the lead anew (a newer token) or not at all.
            *cx.cluster
                .leadership
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = None;
        }
        out.map(Some)
    }

    /// Whether this node hears the other nodes' changes (always on SQLite).
    pub fn following(&self) -> bool {
        self.context().cluster.following.load(Ordering::Relaxed)
    }

    /// Applies a change another node announced.
    fn apply_change(&self, change: Change) {
        let cx = self.context();
        match change {
            Change::Erased { keys, contacts } => {
                if let Some(vault) = cx.store.vault() {
                    for k in &keys {
                        if let Ok(k) = KeyId::parse(k) {
                            vault.forget(&k);
                        }
                    }
                    cx.notifier.forget_where(&|address: &str| {
                        contacts.contains(&vault.keyed_hash("outbox", &[address.as_bytes()]))
                    });
                }
            }
            Change::Recommenders => {
                if let Err(e) = cx.training().load_recommenders() {
                    tracing::warn!(error = %e, "recommenders announced by another node not loaded");
                }
            }
            Change::Segments => cx.personalize.has_segments.store(true, Ordering::Relaxed),
            Change::Scorer => cx.load_scorer(),
        }
    }

    /// Starts again from the database: whatever was announced while nobody listened.
    fn resync(&self) {
        let cx = self.context();
        if let Some(vault) = cx.store.vault() {
            vault.forget_all();
        }
        cx.notifier.forget_where(&|_| true);
        if let Err(e) = cx.training().load_recommenders() {
            tracing::warn!(error = %e, "recommenders not reloaded");
        }
        cx.load_scorer();
    }
}

/// The follower's loop: listen, apply, and on a lost connection start over. `first` is a
/// feed already opened (before anything was cached from a time nobody listened).
fn follow(engine: &Weak<Engine>, mut first: Option<Box<dyn ChangeFeed>>) {
    loop {
        let feed = match first.take() {
            Some(feed) => Ok(Some(feed)),
            None => {
                let Some(strong) = engine.upgrade() else {
                    return;
                };
                let feed = strong.context().store.listen();
                if let Ok(Some(_)) = &feed {
                    strong.resync();
                }
                feed
            }
        };
        match feed {
            Ok(Some(mut feed)) => {
                if let Some(e) = engine.upgrade() {
                    e.context().cluster.following.store(true, Ordering::Relaxed);
                }
                loop {
                    let next = feed.next(FOLLOW_POLL);
                    let Some(e) = engine.upgrade() else {
                        return;
                    };
                    match next {
                        Ok(Some(change)) => e.apply_change(change),
                        Ok(None) => {}
                        Err(err) => {
                            e.context()
                                .cluster
                                .following
                                .store(false, Ordering::Relaxed);
                            tracing::warn!(error = %err, "stopped hearing other nodes' changes; listening again");
                            break;
                        }
                    }
                }
            }
            Ok(None) => return,
            Err(err) => tracing::warn!(error = %err, "cannot listen for other nodes' changes"),
        }
        std::thread::sleep(RECONNECT_AFTER);
    }
}
