//! Fencing of leader-only writes: while a [`Fence`] lives on a thread, every write
//! transaction begun there first reads the leader's token with a share lock and refuses
//! (`StoreError::Fenced`) if another leader has taken over since. A new leader's token update
//! waits for that lock, so a fenced write commits entirely before a takeover or not at all.

use std::cell::Cell as ThreadCell;

use crate::backend::{BackendKind, Conn};
use crate::error::StoreError;
use crate::sql;

thread_local! {
    /// The fencing token leader-only writes on this thread must still match.
    static FENCE: ThreadCell<Option<i64>> = const { ThreadCell::new(None) };
}

/// While alive, every write transaction on this thread checks that its token is still the
/// leader's. Made by `Store::fenced`.
pub struct Fence {
    previous: Option<i64>,
}

impl Fence {
    /// Fences this thread's writes with `token` until the value drops.
    pub(crate) fn hold(token: i64) -> Fence {
        let previous = FENCE.with(|f| f.replace(Some(token)));
        Fence { previous }
    }
}

impl Drop for Fence {
    fn drop(&mut self) {
        FENCE.with(|f| f.set(self.previous));
    }
}

/// Checks the thread's fence, if any, as the first statement of a write transaction.
pub(crate) fn check_fence(conn: &mut dyn Conn) -> Result<(), StoreError> {
    let Some(mine) = FENCE.with(ThreadCell::get) else {
        return Ok(());
    };
    let sql = match conn.kind() {
        BackendKind::Sqlite => sql::LEADER_TOKEN,
        BackendKind::Postgres => sql::LEADER_TOKEN_SHARED,
    };
    let now = conn
        .query(sql, &[])?
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next())
        .map(|c| c.int())
        .transpose()?
        .unwrap_or(0);
    if now == mine {
        Ok(())
    } else {
        Err(StoreError::Fenced(format!(
            "leader token {mine} was superseded by {now}"
        )))
    }
}
