//! The console's operators: name, role, Argon2id password hash, TOTP secret (sealed under a
//! data key of the operator's own, `op_<name>`), failed log-ins and lock-out, and their sessions
//! (keyed hashes of the tokens).

use crate::backend::{Cell, Param};
use crate::error::StoreError;
use crate::sealing::Sealer;
use crate::store::Store;
use crate::tx::{next, take, WriteTx};

const OPERATOR: &str = "SELECT name, role, password_hash, totp_sealed, last_totp_step, disabled, failed_logins, locked_until, created_at FROM operators WHERE name = ?1";
const OPERATOR_FOR_UPDATE: &str = "SELECT name, role, password_hash, totp_sealed, last_totp_step, disabled, failed_logins, locked_until, created_at FROM operators WHERE name = ?1 FOR UPDATE";
const ALL: &str = "SELECT name, role, password_hash, totp_sealed, last_totp_step, disabled, failed_logins, locked_until, created_at FROM operators ORDER BY name";
const INSERT: &str = "INSERT INTO operators (name, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO NOTHING";
const UPDATE: &str = "UPDATE operators SET role = ?2, password_hash = ?3, last_totp_step = ?4, disabled = ?5, failed_logins = ?6, locked_until = ?7 WHERE name = ?1";
const SET_TOTP: &str = "UPDATE operators SET totp_sealed = ?2 WHERE name = ?1";
const INSERT_SESSION: &str = "INSERT INTO operator_sessions (token_hash, name, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)";
const SESSION: &str = "SELECT s.name, o.role FROM operator_sessions s JOIN operators o ON o.name = s.name WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND o.disabled = 0";
const END_SESSION: &str = "DELETE FROM operator_sessions WHERE token_hash = ?1";
const END_SESSIONS_OF: &str = "DELETE FROM operator_sessions WHERE name = ?1";
const SWEEP_SESSIONS: &str = "DELETE FROM operator_sessions WHERE expires_at <= ?1";
/// The sealed field's name.
const TOTP_FIELD: &str = "operator:totp";

/// An operator as stored, the TOTP secret opened.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorRow {
    /// Their log-in name.
    pub name: String,
    /// `admin`, `dpo`, `marketer` or `analyst`.
    pub role: String,
    /// Argon2id, as a PHC string.
    pub password_hash: String,
    /// The TOTP secret (hex), when two-factor log-in is on.
    pub totp_secret: Option<String>,
    /// The last TOTP step accepted (a code is good once).
    pub last_totp_step: i64,
    /// Disabled operators cannot log in.
    pub disabled: bool,
    /// Failed log-ins since the last success.
    pub failed_logins: i64,
    /// No log-in before this (ms).
    pub locked_until: i64,
    /// When they were added (ms).
    pub created_at: i64,
}

impl std::fmt::Debug for OperatorRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorRow")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// The data key an operator's secrets are sealed under.
fn key_of(name: &str) -> String {
    format!("op_{name}")
}

fn row(
    conn: &mut dyn crate::backend::Conn,
    sealer: &mut Sealer,
    cells: Vec<Cell>,
) -> Result<OperatorRow, StoreError> {
    let mut c = take(cells, 9)?;
    let name = next(&mut c)?.text()?;
    let role = next(&mut c)?.text()?;
    let password_hash = next(&mut c)?.text()?;
    let totp = next(&mut c)?.opt_text()?;
    let totp_secret = match totp {
        Some(sealed) => sealer.open_if_kept(conn, sealed, TOTP_FIELD)?,
        None => None,
    };
    Ok(OperatorRow {
        name,
        role,
        password_hash,
        totp_secret,
        last_totp_step: next(&mut c)?.int()?,
        disabled: next(&mut c)?.int()? != 0,
        failed_logins: next(&mut c)?.int()?,
        locked_until: next(&mut c)?.int()?,
        created_at: next(&mut c)?.int()?,
    })
}

impl WriteTx<'_> {
    /// Adds an operator; false if the name is taken (nothing changes).
    pub fn insert_operator(
        &mut self,
        name: &str,
        role: &str,
        password_hash: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let n = self.conn.exec(
            INSERT,
            &[
                Param::Text(name),
                Param::Text(role),
                Param::Text(password_hash),
                Param::Int(at),
            ],
        )?;
        Ok(n == 1)
    }

    /// An operator, held against concurrent change until the transaction ends.
    pub fn operator(&mut self, name: &str) -> Result<Option<OperatorRow>, StoreError> {
        let sql = match self.conn.kind() {
            crate::BackendKind::Sqlite => OPERATOR,
            crate::BackendKind::Postgres => OPERATOR_FOR_UPDATE,
        };
        let rows = self.conn.query(sql, &[Param::Text(name)])?;
        let sealer = &mut self.sealer;
        rows.into_iter()
            .next()
            .map(|r| row(self.conn, sealer, r))
            .transpose()
    }

    /// Writes an operator's role, password, TOTP step, state and log-in counters.
    pub fn update_operator(&mut self, o: &OperatorRow) -> Result<(), StoreError> {
        self.conn
            .exec(
                UPDATE,
                &[
                    Param::Text(&o.name),
                    Param::Text(&o.role),
                    Param::Text(&o.password_hash),
                    Param::Int(o.last_totp_step),
                    Param::Int(i64::from(o.disabled)),
                    Param::Int(o.failed_logins),
                    Param::Int(o.locked_until),
                ],
            )
            .map(drop)
    }

    /// Sets (sealed) or clears an operator's TOTP secret.
    pub fn set_operator_totp(
        &mut self,
        name: &str,
        secret_hex: Option<&str>,
        at: i64,
    ) -> Result<(), StoreError> {
        let sealed = match secret_hex {
            Some(s) => Some(
                self.sealer
                    .seal(self.conn, &key_of(name), TOTP_FIELD, s, at)?,
            ),
            None => None,
        };
        self.conn
            .exec(
                SET_TOTP,
                &[Param::Text(name), Param::OptText(sealed.as_deref())],
            )
            .map(drop)
    }

    /// Starts a session (its token's keyed hash) and deletes expired ones.
    pub fn insert_operator_session(
        &mut self,
        token_hash: &str,
        name: &str,
        at: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.conn.exec(SWEEP_SESSIONS, &[Param::Int(at)])?;
        self.conn
            .exec(
                INSERT_SESSION,
                &[
                    Param::Text(token_hash),
                    Param::Text(name),
                    Param::Int(at),
                    Param::Int(expires_at),
                ],
            )
            .map(drop)
    }

    /// Ends one session.
    pub fn end_operator_session(&mut self, token_hash: &str) -> Result<(), StoreError> {
        self.conn
            .exec(END_SESSION, &[Param::Text(token_hash)])
            .map(drop)
    }

    /// Ends every session of an operator (disabled, or a new password).
    pub fn end_operator_sessions(&mut self, name: &str) -> Result<(), StoreError> {
        self.conn
            .exec(END_SESSIONS_OF, &[Param::Text(name)])
            .map(drop)
    }
}

impl Store {
    /// Every operator, by name.
    ///
    /// # Errors
    /// Database faults, or a TOTP secret that does not open.
    pub fn operators(&self) -> Result<Vec<OperatorRow>, StoreError> {
        let vault = self.vault_arc();
        self.read(|c| {
            let rows = c.query(ALL, &[])?;
            let mut sealer = Sealer::new(vault.clone());
            rows.into_iter().map(|r| row(c, &mut sealer, r)).collect()
        })
    }

    /// The operator (name and role) whose live session token has the keyed hash `token_hash`,
    /// if they are not disabled.
    ///
    /// # Errors
    /// Database faults.
    pub fn operator_session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<(String, String)>, StoreError> {
        self.read(|c| {
            let rows = c.query(SESSION, &[Param::Text(token_hash), Param::Int(now)])?;
            rows.into_iter()
                .next()
                .map(|r| {
                    let mut c = take(r, 2)?;
                    Ok((next(&mut c)?.text()?, next(&mut c)?.text()?))
                })
                .transpose()
        })
    }
}
