//! The console's operators: accounts with a role, Argon2id passwords, optional TOTP, log-in
//! attempts limited, sessions as keyed hashes of their tokens. The role decides which console
//! areas an operator may open ([`Role::may`]); the engine's own gates still decide what each
//! area shows (a marketer reads a customer only through a purpose's grant).

use chrono::Duration;
use consentric_vault::{hash_password, totp, verify_password};
use serde_json::json;

use crate::audit;
use crate::error::EngineError;

/// Failed log-ins before an operator is locked out for [`LOCK_MINUTES`].
pub const MAX_FAILED_LOGINS: i64 = 5;
/// How long a lock-out lasts.
pub const LOCK_MINUTES: i64 = 15;
/// How long a console session lasts from log-in.
pub const OPERATOR_SESSION_MINUTES: i64 = 8 * 60;
/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;

const SESSION_USE: &str = "operator-session";
const CSRF_USE: &str = "operator-csrf";
/// An Argon2id hash of a random password nobody knows: checking a log-in of an unknown name
/// against it costs the same time as a known one.
fn nobody() -> &'static str {
    static NOBODY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NOBODY.get_or_init(|| {
        let mut secret = [0u8; 32];
        let _ = getrandom::fill(&mut secret);
        hash_password(&hex::encode(secret)).unwrap_or_default()
    })
}

/// What an operator does, and so which console areas they may open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything.
    Admin,
    /// Data-protection officer: requests, the audit log, retention, keys, the data map.
    Dpo,
    /// Lifecycle, customers (through the personalisation purpose's gate), segments, actions.
    Marketer,
    /// Differentially private answers only, within their own budget.
    Analyst,
}

/// The console's areas, one per page group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Area {
    /// Customers, events, consent rates, requests, the audit chain's head.
    Overview,
    /// The stage funnel, flows, cohorts, value models.
    Lifecycle,
    /// One customer: profile, consent, lifecycle, decisions, who read them.
    Customers,
    /// Segments and proposals.
    Segments,
    /// The next-best-action catalogue.
    Actions,
    /// Requests, retention, audit verification, keys.
    Privacy,
    /// DP queries and the budget left.
    Analytics,
    /// Clean-room sessions.
    Cleanroom,
}

impl Role {
    /// Reads `admin`, `dpo`, `marketer` or `analyst`.
    pub fn parse(raw: &str) -> Option<Role> {
        match raw {
            "admin" => Some(Role::Admin),
            "dpo" => Some(Role::Dpo),
            "marketer" => Some(Role::Marketer),
            "analyst" => Some(Role::Analyst),
            _ => None,
        }
    }

    /// Spelling in storage and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Dpo => "dpo",
            Role::Marketer => "marketer",
            Role::Analyst => "analyst",
        }
    }

    /// Whether this role may open `area`. An analyst never sees an exact aggregate (the
    /// overview's and lifecycle pages' counts are exact), only DP answers.
    pub fn may(self, area: Area) -> bool {
        use Area::*;
        match self {
            Role::Admin => true,
            Role::Dpo => matches!(area, Overview | Privacy | Cleanroom),
            Role::Marketer => matches!(area, Overview | Lifecycle | Customers | Segments | Actions),
            Role::Analyst => matches!(area, Analytics),
        }
    }
}

/// An operator's log-in name: 1–32 of `a-z`, `0-9`, `_`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// An operator as listed (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OperatorView {
    /// Log-in name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Whether TOTP is on.
    pub totp: bool,
    /// Whether they are disabled.
    pub disabled: bool,
}

/// A logged-in operator. Only the engine makes one, from a live session token.
#[derive(Clone)]
pub struct OperatorSession {
    name: String,
    role: Role,
    token_hash: String,
    csrf: String,
}

impl std::fmt::Debug for OperatorSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorSession")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl OperatorSession {
    /// The operator's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Their role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Who the audit log says acted: `operator:<name>`.
    pub fn actor(&self) -> String {
        format!("operator:{}", self.name)
    }

    /// The token every console form must carry back.
    pub fn csrf_token(&self) -> &str {
        &self.csrf
    }

    /// Whether `given` is this session's CSRF token, compared in constant time.
    pub fn csrf_matches(&self, given: &str) -> bool {
        let (a, b) = (self.csrf.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// What this service works on, handed to it by the context.
pub(crate) struct Operators<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) clock: &'a dyn crate::clock::Clock,
}

fn invalid(field: &str, message: impl Into<String>) -> EngineError {
    EngineError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn refused() -> EngineError {
    EngineError::SignedOut("wrong name, password or code, or the account is locked".into())
}

fn check_password(password: &str) -> Result<(), EngineError> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > 1024 {
        return Err(invalid(
            "password",
            format!("at least {MIN_PASSWORD_CHARS} characters (and at most 1,024 bytes)"),
        ));
    }
    Ok(())
}

impl Operators<'_> {
    fn vault(&self) -> Result<&consentric_vault::Vault, EngineError> {
        self.store
            .vault()
            .ok_or_else(|| EngineError::Config("operators need the vault (master keys)".into()))
    }

    /// Adds an operator.
    ///
    /// # Errors
    /// [`EngineError::Invalid`] for a bad name or a short password,
    /// [`EngineError::Conflict`] for a name taken, or a database fault.
    pub fn add(
        &self,
        name: &str,
        role: Role,
        password: &str,
        actor: &str,
    ) -> Result<(), EngineError> {
        if !valid_name(name) {
            return Err(invalid("name", "1–32 of a-z, 0-9 and _"));
        }
        check_password(password)?;
        let phc = hash_password(password).map_err(|e| EngineError::Config(e.to_string()))?;
        let at = self.clock.now().timestamp_millis();
        self.store.write(|tx| -> Result<(), EngineError> {
            if !tx.insert_operator(name, role.as_str(), &phc, at)? {
                return Err(EngineError::Conflict(format!("operator {name} exists")));
            }
            audit::append(
                tx,
                at,
                actor,
                "operator.added",
                None,
                &json!({"operator": name, "role": role.as_str()}),
            )?;
            Ok(())
        })
    }

    /// Every operator, without secrets.
    ///
    /// # Errors
    /// A database fault.
    pub fn list(&self) -> Result<Vec<OperatorView>, EngineError> {
        Ok(self
            .store
            .operators()?
            .into_iter()
            .map(|o| OperatorView {
                totp: o.totp_secret.is_some(),
                name: o.name,
                role: o.role,
                disabled: o.disabled,
            })
            .collect())
    }

    /// Changes an operator's row with `change`, audited as `action`; ends their sessions if
    /// `end_sessions`.
    fn change(
        &self,
        name: &str,
        action: &str,
        end_sessions: bool,
        actor: &str,
        change: impl FnOnce(&mut consentric_store::OperatorRow),
    ) -> Result<(), EngineError> {
        let at = self.clock.now().timestamp_millis();
        self.store.write(|tx| -> Result<(), EngineError> {
            let mut o = tx
                .operator(name)?
                .ok_or_else(|| EngineError::NotFound(format!("operator {name}")))?;
            change(&mut o);
            tx.update_operator(&o)?;
            if end_sessions {
                tx.end_operator_sessions(name)?;
            }
            audit::append(tx, at, actor, action, None, &json!({"operator": name}))?;
            Ok(())
        })
    }

    /// Sets an operator's password; their sessions end.
    ///
    /// # Errors
    /// A short password, an unknown operator, or a database fault.
    pub fn set_password(&self, name: &str, password: &str, actor: &str) -> Result<(), EngineError> {
        check_password(password)?;
        let phc = hash_password(password).map_err(|e| EngineError::Config(e.to_string()))?;
        self.change(name, "operator.password_set", true, actor, |o| {
            o.password_hash = phc;
            o.failed_logins = 0;
            o.locked_until = 0;
        })
    }

    /// Disables (or enables) an operator; disabling ends their sessions.
    ///
    /// # Errors
    /// An unknown operator, or a database fault.
    pub fn set_disabled(&self, name: &str, disabled: bool, actor: &str) -> Result<(), EngineError> {
        let action = if disabled {
            "operator.disabled"
        } else {
            "operator.enabled"
        };
        self.change(name, action, disabled, actor, |o| o.disabled = disabled)
    }

    /// Turns TOTP on with a fresh secret; returns it in base32 and as an `otpauth://` URI for
    /// an authenticator app.
    ///
    /// # Errors
    /// An unknown operator, or a database fault.
    pub fn enable_totp(&self, name: &str, actor: &str) -> Result<(String, String), EngineError> {
        let mut secret = [0u8; 20];
        getrandom::fill(&mut secret).map_err(|e| EngineError::Config(e.to_string()))?;
        let at = self.clock.now().timestamp_millis();
        self.store.write(|tx| -> Result<(), EngineError> {
            tx.operator(name)?
                .ok_or_else(|| EngineError::NotFound(format!("operator {name}")))?;
            tx.set_operator_totp(name, Some(&hex::encode(secret)), at)?;
            audit::append(
                tx,
                at,
                actor,
                "operator.totp_enabled",
                None,
                &json!({"operator": name}),
            )?;
            Ok(())
        })?;
        let b32 = totp::base32(&secret);
        let uri = format!("otpauth://totp/Consentric:{name}?secret={b32}&issuer=Consentric&algorithm=SHA1&digits=6&period=30");
        Ok((b32, uri))
    }

    /// Checks a log-in and starts a session; returns it with its token (for the cookie).
    /// Every refusal says the same; a wrong password or code counts towards the lock-out,
    /// and a locked or disabled account refuses even the right ones.
    ///
    /// # Errors
    /// [`EngineError::SignedOut`] for any refusal, or a database fault.
    pub fn log_in(
        &self,
        name: &str,
        password: &str,
        code: Option<&str>,
    ) -> Result<(OperatorSession, String), EngineError> {
        let vault = self.vault()?;
        let now = self.clock.now();
        let at = now.timestamp_millis();
        let row = if valid_name(name) {
            self.store.write(|tx| tx.operator(name))?
        } else {
            None
        };
        let Some(o) = row else {
            verify_password(nobody(), password);
            return Err(refused());
        };
        let password_ok = verify_password(&o.password_hash, password);
        let step = match (&o.totp_secret, code) {
            (None, _) => Some(0),
            (Some(secret), Some(code)) => hex::decode(secret)
                .ok()
                .and_then(|s| totp::matches(&s, code, now.timestamp()))
                .filter(|step| *step > o.last_totp_step),
            (Some(_), None) => None,
        };
        let mut token = [0u8; 32];
        getrandom::fill(&mut token).map_err(|e| EngineError::Config(e.to_string()))?;
        let token = hex::encode(token);
        let token_hash = vault.keyed_hash(SESSION_USE, &[token.as_bytes()]);
        let accepted = self.store.write(|tx| -> Result<bool, EngineError> {
            let Some(mut o) = tx.operator(name)? else {
                return Ok(false);
            };
            let usable = !o.disabled && o.locked_until <= at;
            let ok = usable && password_ok && step.is_some();
            if ok {
                o.failed_logins = 0;
                if let Some(s) = step.filter(|s| *s > 0) {
                    o.last_totp_step = s;
                }
                tx.insert_operator_session(
                    &token_hash,
                    name,
                    at,
                    (now + Duration::minutes(OPERATOR_SESSION_MINUTES)).timestamp_millis(),
                )?;
            } else if usable {
                o.failed_logins += 1;
                if o.failed_logins >= MAX_FAILED_LOGINS {
                    o.locked_until = (now + Duration::minutes(LOCK_MINUTES)).timestamp_millis();
                    o.failed_logins = 0;
                }
            }
            tx.update_operator(&o)?;
            let action = if ok {
                "operator.logged_in"
            } else {
                "operator.login_refused"
            };
            audit::append(
                tx,
                at,
                &format!("operator:{name}"),
                action,
                None,
                &json!({"locked": o.locked_until > at, "disabled": o.disabled}),
            )?;
            Ok(ok)
        })?;
        if !accepted {
            return Err(refused());
        }
        let role = Role::parse(&o.role)
            .ok_or_else(|| EngineError::Config(format!("operator {name} has role {}", o.role)))?;
        Ok((
            OperatorSession {
                name: o.name,
                role,
                csrf: vault.keyed_hash(CSRF_USE, &[token.as_bytes()]),
                token_hash,
            },
            token,
        ))
    }

    /// Checks a logged-in operator's password again (before they change it); a wrong one
    /// counts towards the lock-out, as at log-in.
    ///
    /// # Errors
    /// [`EngineError::SignedOut`] for a wrong password or a locked account, or a database
    /// fault.
    pub fn check_password(&self, name: &str, password: &str) -> Result<(), EngineError> {
        let now = self.clock.now();
        let at = now.timestamp_millis();
        let hash = self
            .store
            .write(|tx| tx.operator(name))?
            .map(|o| o.password_hash);
        let ok = hash
            .as_deref()
            .is_some_and(|h| verify_password(h, password));
        let accepted = self.store.write(|tx| -> Result<bool, EngineError> {
            let Some(mut o) = tx.operator(name)? else {
                return Ok(false);
            };
            let usable = !o.disabled && o.locked_until <= at;
            if usable && !ok {
                o.failed_logins += 1;
                if o.failed_logins >= MAX_FAILED_LOGINS {
                    o.locked_until = (now + Duration::minutes(LOCK_MINUTES)).timestamp_millis();
                    o.failed_logins = 0;
                }
                tx.update_operator(&o)?;
            }
            Ok(usable && ok)
        })?;
        if accepted {
            Ok(())
        } else {
            Err(EngineError::SignedOut(
                "the current password is wrong".into(),
            ))
        }
    }

    /// The live session a token belongs to (its operator still enabled): one look-up, no
    /// secret opened.
    ///
    /// # Errors
    /// [`EngineError::SignedOut`], or a database fault.
    pub fn session(&self, token: &str) -> Result<OperatorSession, EngineError> {
        let vault = self.vault()?;
        let signed_out = || EngineError::SignedOut("log in again".into());
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(signed_out());
        }
        let token_hash = vault.keyed_hash(SESSION_USE, &[token.as_bytes()]);
        let now = self.clock.now().timestamp_millis();
        let (name, role) = self
            .store
            .operator_session(&token_hash, now)?
            .ok_or_else(signed_out)?;
        Ok(OperatorSession {
            role: Role::parse(&role).ok_or_else(signed_out)?,
            name,
            csrf: vault.keyed_hash(CSRF_USE, &[token.as_bytes()]),
            token_hash,
        })
    }

    /// Ends a session.
    ///
    /// # Errors
    /// A database fault.
    pub fn log_out(&self, session: &OperatorSession) -> Result<(), EngineError> {
        Ok(self
            .store
            .write(|tx| tx.end_operator_session(&session.token_hash))?)
    }
}
