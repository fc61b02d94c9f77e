//! What the privacy centre keeps so that a customer can prove who they are without an account:
//! each profile's e-mail address as a blind index (the address itself stays sealed in the
//! profile's traits), one-time codes as keyed hashes, and sessions as keyed hashes of their
//! tokens. Every row names its profile, so merges move it and erasure deletes it.

use consentric_model::{Email, ProfileId};

use crate::backend::Param;
use crate::error::StoreError;
use crate::store::Store;
use crate::tx::{next, profile_id, take, WriteTx};

const DROP_OTHER_EMAILS: &str = "DELETE FROM email_index WHERE profile_id = ?1 AND blind <> ?2";
const INDEX_EMAIL: &str = "INSERT INTO email_index (blind, profile_id, updated_at) VALUES (?1, ?2, ?3) ON CONFLICT (blind) DO UPDATE SET profile_id = excluded.profile_id, updated_at = excluded.updated_at WHERE excluded.updated_at >= email_index.updated_at";
const EMAILS_OF: &str = "SELECT blind FROM email_index WHERE profile_id = ?1";
const PROFILE_OF_EMAIL: &str = "SELECT profile_id FROM email_index WHERE blind = ?1";
const INSERT_CODE: &str = "INSERT INTO privacy_codes (challenge_id, blind, profile_id, code_hash, created_at, expires_at, attempts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)";
const CODES_SINCE: &str =
    "SELECT COUNT(*) FROM privacy_codes WHERE blind = ?1 AND created_at >= ?2";
const CODE: &str = "SELECT blind, profile_id, code_hash, expires_at, attempts FROM privacy_codes WHERE challenge_id = ?1";
const CODE_FOR_UPDATE: &str = "SELECT blind, profile_id, code_hash, expires_at, attempts FROM privacy_codes WHERE challenge_id = ?1 FOR UPDATE";
const COUNT_ATTEMPT: &str =
    "UPDATE privacy_codes SET attempts = attempts + 1 WHERE challenge_id = ?1";
const SPEND_CODE: &str =
    "UPDATE privacy_codes SET code_hash = '', expires_at = 0 WHERE challenge_id = ?1";
const SWEEP_CODES: &str = "DELETE FROM privacy_codes WHERE created_at < ?1";
const INSERT_SESSION: &str = "INSERT INTO privacy_sessions (token_hash, profile_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)";
const SESSION: &str =
    "SELECT profile_id, expires_at FROM privacy_sessions WHERE token_hash = ?1 AND expires_at > ?2";
const END_SESSION: &str = "DELETE FROM privacy_sessions WHERE token_hash = ?1";
const SWEEP_SESSIONS: &str = "DELETE FROM privacy_sessions WHERE expires_at <= ?1";

/// A one-time code as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRow {
    /// The blind index of the address it was asked for.
    pub blind: String,
    /// Whose address that is; `None` when no profile holds it (no code was sent).
    pub profile: Option<ProfileId>,
    /// Keyed hash of the challenge and the code; empty once spent.
    pub code_hash: String,
    /// When it stops working (ms).
    pub expires_at: i64,
    /// Wrong codes tried.
    pub attempts: i64,
}

/// A code being issued.
#[derive(Debug, Clone)]
pub struct NewCode<'a> {
    /// Its public id (the form carries it).
    pub challenge_id: &'a str,
    /// See [`CodeRow::blind`].
    pub blind: &'a str,
    /// See [`CodeRow::profile`].
    pub profile: Option<&'a ProfileId>,
    /// See [`CodeRow::code_hash`].
    pub code_hash: &'a str,
    /// When it was asked for (ms).
    pub created_at: i64,
    /// See [`CodeRow::expires_at`].
    pub expires_at: i64,
}

/// The look-up token of an address: its blind index, under the identity index key (without
/// master keys, which only a bench's reference store runs, the address itself).
pub fn email_blind(vault: Option<&consentric_vault::Vault>, email: &Email) -> String {
    vault.map_or_else(
        || email.as_str().to_owned(),
        |v| v.blind_index("email", email.as_str()),
    )
}

fn code_row(row: Vec<crate::backend::Cell>) -> Result<CodeRow, StoreError> {
    let mut c = take(row, 5)?;
    Ok(CodeRow {
        blind: next(&mut c)?.text()?,
        profile: next(&mut c)?.opt_text()?.map(profile_id).transpose()?,
        code_hash: next(&mut c)?.text()?,
        expires_at: next(&mut c)?.int()?,
        attempts: next(&mut c)?.int()?,
    })
}

impl WriteTx<'_> {
    /// Points each blind e-mail index at its profile, and forgets any other address the
    /// profile had: a customer reaches the privacy centre through the address held now. An
    /// address that moves to another customer moves with its latest `at`.
    pub fn index_emails(&mut self, rows: &[(ProfileId, Email, i64)]) -> Result<(), StoreError> {
        for (profile, email, at) in rows {
            let blind = &email_blind(self.sealer.vault.as_deref(), email);
            self.conn.exec(
                DROP_OTHER_EMAILS,
                &[Param::Text(profile.as_str()), Param::Text(blind)],
            )?;
            self.conn.exec(
                INDEX_EMAIL,
                &[
                    Param::Text(blind),
                    Param::Text(profile.as_str()),
                    Param::Int(*at),
                ],
            )?;
        }
        Ok(())
    }

    /// The blind indexes of `profile`'s e-mail addresses: an erasure forgets the messages kept
    /// for them.
    pub fn email_blinds_of(&mut self, profile: &ProfileId) -> Result<Vec<String>, StoreError> {
        self.conn
            .query(EMAILS_OF, &[Param::Text(profile.as_str())])?
            .into_iter()
            .map(|r| {
                let mut c = take(r, 1)?;
                next(&mut c)?.text()
            })
            .collect()
    }

    /// How many codes were asked for the address `blind` since `since` (ms).
    pub fn codes_since(&mut self, blind: &str, since: i64) -> Result<i64, StoreError> {
        let rows = self
            .conn
            .query(CODES_SINCE, &[Param::Text(blind), Param::Int(since)])?;
        let mut c = take(rows.into_iter().next().unwrap_or_default(), 1)?;
        next(&mut c)?.int()
    }

    /// Stores a code, and deletes those asked before `sweep_before` (ms).
    pub fn insert_code(&mut self, code: &NewCode<'_>, sweep_before: i64) -> Result<(), StoreError> {
        self.conn.exec(SWEEP_CODES, &[Param::Int(sweep_before)])?;
        self.conn
            .exec(
                INSERT_CODE,
                &[
                    Param::Text(code.challenge_id),
                    Param::Text(code.blind),
                    Param::OptText(code.profile.map(ProfileId::as_str)),
                    Param::Text(code.code_hash),
                    Param::Int(code.created_at),
                    Param::Int(code.expires_at),
                ],
            )
            .map(drop)
    }

    /// A code, held against concurrent use until the transaction ends.
    pub fn code(&mut self, challenge_id: &str) -> Result<Option<CodeRow>, StoreError> {
        let sql = match self.conn.kind() {
            crate::BackendKind::Sqlite => CODE,
            crate::BackendKind::Postgres => CODE_FOR_UPDATE,
        };
        let rows = self.conn.query(sql, &[Param::Text(challenge_id)])?;
        rows.into_iter().next().map(code_row).transpose()
    }

    /// Counts a wrong code against its challenge.
    pub fn count_code_attempt(&mut self, challenge_id: &str) -> Result<(), StoreError> {
        self.conn
            .exec(COUNT_ATTEMPT, &[Param::Text(challenge_id)])
            .map(drop)
    }

    /// Spends a code: it can never be used again.
    pub fn spend_code(&mut self, challenge_id: &str) -> Result<(), StoreError> {
        self.conn
            .exec(SPEND_CODE, &[Param::Text(challenge_id)])
            .map(drop)
    }

    /// Starts a session for `profile` (its token's keyed hash), and deletes expired ones.
    pub fn insert_session(
        &mut self,
        token_hash: &str,
        profile: &ProfileId,
        at: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.conn.exec(SWEEP_SESSIONS, &[Param::Int(at)])?;
        self.conn
            .exec(
                INSERT_SESSION,
                &[
                    Param::Text(token_hash),
                    Param::Text(profile.as_str()),
                    Param::Int(at),
                    Param::Int(expires_at),
                ],
            )
            .map(drop)
    }

    /// Ends a session.
    pub fn end_session(&mut self, token_hash: &str) -> Result<(), StoreError> {
        self.conn
            .exec(END_SESSION, &[Param::Text(token_hash)])
            .map(drop)
    }
}

impl Store {
    /// The profile whose current e-mail address is `email`.
    ///
    /// # Errors
    /// Database faults.
    pub fn profile_of_email(&self, email: &Email) -> Result<Option<ProfileId>, StoreError> {
        let blind = email_blind(self.vault(), email);
        self.read(|c| {
            let rows = c.query(PROFILE_OF_EMAIL, &[Param::Text(&blind)])?;
            rows.into_iter()
                .next()
                .map(|r| {
                    let mut c = take(r, 1)?;
                    profile_id(next(&mut c)?.text()?)
                })
                .transpose()
        })
    }

    /// The profile of the session whose token has the keyed hash `token_hash`, and when the
    /// session ends (ms), if it has not ended by `now`.
    ///
    /// # Errors
    /// Database faults.
    pub fn privacy_session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<(ProfileId, i64)>, StoreError> {
        self.read(|c| {
            let rows = c.query(SESSION, &[Param::Text(token_hash), Param::Int(now)])?;
            rows.into_iter()
                .next()
                .map(|r| {
                    let mut c = take(r, 2)?;
                    Ok((profile_id(next(&mut c)?.text()?)?, next(&mut c)?.int()?))
                })
                .transpose()
        })
    }
}
