//! Clean-room sessions: who the partner is, what the session may reveal, its state and result.
//! The host keeps only a hash of the session token; the guest keeps the token it was given
//! (it must present it), which the session's expiry bounds.

use crate::backend::Param;
use crate::error::StoreError;
use crate::store::Store;
use crate::tx::{next, take, WriteTx};

const INSERT: &str = "INSERT INTO cleanroom_sessions (session_id, role, token_hash, host_url, token, output, with_sum, partner, state, created_at, expires_at, result) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, NULL) ON CONFLICT (session_id) DO NOTHING";
const SELECT: &str = "SELECT session_id, role, token_hash, host_url, token, output, with_sum, partner, state, created_at, expires_at, result FROM cleanroom_sessions";
const BY_ID: &str = "SELECT session_id, role, token_hash, host_url, token, output, with_sum, partner, state, created_at, expires_at, result FROM cleanroom_sessions WHERE session_id = ?1";
/// A state change only from the state the caller saw: replays and races lose.
const ADVANCE: &str = "UPDATE cleanroom_sessions SET state = ?3, result = COALESCE(?4, result), token = CASE WHEN ?3 IN ('done', 'aborted') THEN NULL ELSE token END WHERE session_id = ?1 AND state = ?2";

/// Removes an erased customer's profile id from the results of sessions that matched them.
pub(crate) const FORGET_MATCH: &str =
    "UPDATE cleanroom_sessions SET result = REPLACE(result, ?1, ?2) WHERE result LIKE ?3";

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Its id.
    pub session_id: String,
    /// `host` (we invited) or `guest` (we joined).
    pub role: String,
    /// SHA-256 (hex) of the session token.
    pub token_hash: String,
    /// The host's base URL (guest side).
    pub host_url: Option<String>,
    /// The token to present (guest side, until the session ends).
    pub token: Option<String>,
    /// `cardinality` or `matches`.
    pub output: String,
    /// Whether the partner's values are summed over the intersection.
    pub with_sum: bool,
    /// Who the partner is, as the operator named them.
    pub partner: String,
    /// `invited`, `blinded`, `summing`, `done` or `aborted`.
    pub state: String,
    /// Milliseconds.
    pub created_at: i64,
    /// Milliseconds.
    pub expires_at: i64,
    /// What it revealed (JSON), once done.
    pub result: Option<String>,
}

fn row(r: Vec<crate::backend::Cell>) -> Result<SessionRow, StoreError> {
    let mut it = take(r, 12)?;
    Ok(SessionRow {
        session_id: next(&mut it)?.text()?,
        role: next(&mut it)?.text()?,
        token_hash: next(&mut it)?.text()?,
        host_url: next(&mut it)?.opt_text()?,
        token: next(&mut it)?.opt_text()?,
        output: next(&mut it)?.text()?,
        with_sum: next(&mut it)?.int()? != 0,
        partner: next(&mut it)?.text()?,
        state: next(&mut it)?.text()?,
        created_at: next(&mut it)?.int()?,
        expires_at: next(&mut it)?.int()?,
        result: next(&mut it)?.opt_text()?,
    })
}

impl WriteTx<'_> {
    /// Records a new session; `false` (and nothing written) if one with its id is recorded
    /// already, as a host's own session is when this instance is also its guest.
    pub fn create_session(&mut self, s: &SessionRow) -> Result<bool, StoreError> {
        let created = self.conn.exec(
            INSERT,
            &[
                Param::Text(&s.session_id),
                Param::Text(&s.role),
                Param::Text(&s.token_hash),
                Param::OptText(s.host_url.as_deref()),
                Param::OptText(s.token.as_deref()),
                Param::Text(&s.output),
                Param::Int(i64::from(s.with_sum)),
                Param::Text(&s.partner),
                Param::Text(&s.state),
                Param::Int(s.created_at),
                Param::Int(s.expires_at),
            ],
        )?;
        Ok(created == 1)
    }

    /// Moves a session from `from` to `to` (with a result); `false` if it was not in `from`.
    pub fn advance_session(
        &mut self,
        id: &str,
        from: &str,
        to: &str,
        result: Option<&str>,
    ) -> Result<bool, StoreError> {
        Ok(self.conn.exec(
            ADVANCE,
            &[
                Param::Text(id),
                Param::Text(from),
                Param::Text(to),
                Param::OptText(result),
            ],
        )? == 1)
    }
}

impl Store {
    /// The session with this id.
    ///
    /// # Errors
    /// Database faults.
    pub fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        self.read(|c| {
            c.query(BY_ID, &[Param::Text(id)])?
                .into_iter()
                .next()
                .map(row)
                .transpose()
        })
    }

    /// Every session, newest first.
    ///
    /// # Errors
    /// Database faults.
    pub fn sessions(&self) -> Result<Vec<SessionRow>, StoreError> {
        self.read(|c| {
            let mut all = c
                .query(SELECT, &[])?
                .into_iter()
                .map(row)
                .collect::<Result<Vec<_>, _>>()?;
            all.sort_by_key(|s| std::cmp::Reverse(s.created_at));
            Ok(all)
        })
    }
}
