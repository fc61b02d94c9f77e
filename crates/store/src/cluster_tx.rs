//! What several processes on one database agree on through it: who leads (a PostgreSQL
//! advisory lock, with a fencing token that grows with each new leader), when each periodic
//! job last ran, which customers were written to since their segments were last evaluated,
//! and whether every process holds the same master keys.
//!
//! A leader-only write runs on a thread that holds a [`Fence`] (`fence.rs`). Changes other
//! processes must hear of are announced here too (`changes.rs`).

use consentric_model::ProfileId;

use crate::backend::{BackendKind, LeaderLock, Param};
use crate::changes::{Change, CHANNEL};
use crate::error::StoreError;
use crate::fence::Fence;
use crate::sql;
use crate::store::Store;
use crate::tx::{profile_id, WriteTx};

/// The cluster's leader lock, once won.
pub struct Leadership {
    lock: Box<dyn LeaderLock>,
    token: i64,
}

impl Leadership {
    /// The fencing token: larger than every earlier leader's.
    pub fn token(&self) -> i64 {
        self.token
    }

    /// Whether this process still leads.
    pub fn held(&mut self) -> bool {
        self.lock.held()
    }
}

impl Store {
    /// Tries to become the cluster's leader as `node`; `None` if another process leads. On
    /// SQLite the lock is the process's own (one server per file).
    ///
    /// # Errors
    /// Database faults.
    pub fn try_lead(&self, node: &str, now: i64) -> Result<Option<Leadership>, StoreError> {
        let Some(lock) = self.backend.try_lead()? else {
            return Ok(None);
        };
        let token = self.write(|tx| {
            tx.conn
                .query(sql::TAKE_LEAD, &[Param::Text(node), Param::Int(now)])?
                .into_iter()
                .next()
                .and_then(|r| r.into_iter().next())
                .ok_or_else(|| StoreError::Corrupt("cluster_leader has no row".into()))?
                .int()
        })?;
        Ok(Some(Leadership { lock, token }))
    }

    /// Fences this thread's write transactions with `leadership`'s token until the returned
    /// guard drops.
    pub fn fenced(&self, leadership: &Leadership) -> Fence {
        Fence::hold(leadership.token)
    }

    /// Up to `limit` customers noted as touched, taken (removed) from the set.
    ///
    /// # Errors
    /// Database faults.
    pub fn take_touched(&self, limit: i64) -> Result<Vec<ProfileId>, StoreError> {
        self.write(|tx| {
            let sql = match tx.conn.kind() {
                BackendKind::Sqlite => sql::TAKE_TOUCHED_SQLITE,
                BackendKind::Postgres => sql::TAKE_TOUCHED_POSTGRES,
            };
            tx.conn
                .query(sql, &[Param::Int(limit)])?
                .into_iter()
                .map(|r| {
                    let cell = r.into_iter().next().ok_or_else(|| {
                        StoreError::Corrupt("touched_profiles row without id".into())
                    })?;
                    profile_id(cell.text()?)
                })
                .collect()
        })
    }

    /// How many customers wait for their segments to be evaluated.
    ///
    /// # Errors
    /// Database faults.
    pub fn touched_count(&self) -> Result<u64, StoreError> {
        self.read(|c| crate::tx::count(c, sql::TOUCHED_COUNT))
    }

    /// Records the master keys' check (a keyed hash only those keys make) on first use, and
    /// afterwards whether `check` matches it: every process on a database must hold the same
    /// keys, or each would find its own profile for the same customer.
    ///
    /// # Errors
    /// Database faults.
    pub fn master_key_matches(&self, check: &str) -> Result<bool, StoreError> {
        self.write(|tx| {
            tx.conn
                .exec(sql::MASTER_KEY_CHECK_FIRST, &[Param::Text(check)])?;
            let stored = tx
                .conn
                .query(sql::MASTER_KEY_CHECK, &[])?
                .into_iter()
                .next()
                .and_then(|r| r.into_iter().next())
                .ok_or_else(|| StoreError::Corrupt("master_key_check has no row".into()))?;
            Ok(stored.text()? == check)
        })
    }
}

impl WriteTx<'_> {
    /// Tells every other process on the database about `change` once this transaction
    /// commits (nothing if it rolls back).
    pub fn announce(&mut self, change: &Change) -> Result<(), StoreError> {
        if self.conn.kind() == BackendKind::Sqlite {
            return Ok(());
        }
        self.conn
            .exec(
                sql::ANNOUNCE,
                &[Param::Text(CHANNEL), Param::Text(&change.encode())],
            )
            .map(drop)
    }

    /// Claims the run of `job` due at `now` for `node` holding leader token `token`: `true` if
    /// its last run anywhere in the cluster was at least `period_ms` ago (or never), and
    /// records this one.
    pub fn claim_timer(
        &mut self,
        job: &str,
        now: i64,
        period_ms: i64,
        token: i64,
        node: &str,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.exec(
            sql::CLAIM_TIMER,
            &[
                Param::Text(job),
                Param::Int(now),
                Param::Int(token),
                Param::Text(node),
                Param::Int(now.saturating_sub(period_ms)),
            ],
        )? == 1)
    }

    /// Notes customers whose segments may have changed, for the next refresh on any node.
    pub fn note_touched<'p>(
        &mut self,
        profiles: impl IntoIterator<Item = &'p ProfileId>,
    ) -> Result<(), StoreError> {
        let ids: Vec<&str> = profiles.into_iter().map(ProfileId::as_str).collect();
        if ids.is_empty() {
            return Ok(());
        }
        let (sql, list) = match self.conn.kind() {
            BackendKind::Sqlite => (
                sql::NOTE_TOUCHED_SQLITE,
                serde_json::to_string(&ids).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            ),
            BackendKind::Postgres => (sql::NOTE_TOUCHED_POSTGRES, ids.join(" ")),
        };
        self.conn.exec(sql, &[Param::Text(&list)]).map(drop)
    }
}
