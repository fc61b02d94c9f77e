//! API keys: random secrets shown once, stored only as SHA-256 hashes.
//!
//! A plain hash (not a password hash) is right here because the secret is 256 random bits:
//! there is nothing to brute-force, and a request-path lookup must be cheap.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::EngineError;

/// What a key may do. A write key can only send events; an admin key can do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Ingest only (`/v1/track` and friends). Safe to embed in a web page.
    Write,
    /// Everything, including reading personal data.
    Admin,
    /// Differentially private aggregates only (`/v1/analytics/…`), within a granted budget.
    Analyst,
}

impl Scope {
    /// Spelling in storage and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Write => "write",
            Scope::Admin => "admin",
            Scope::Analyst => "analyst",
        }
    }

    /// Inverse of [`Scope::as_str`].
    ///
    /// # Errors
    /// An unknown scope name.
    pub fn parse(raw: &str) -> Result<Self, EngineError> {
        match raw {
            "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            "analyst" => Ok(Scope::Analyst),
            other => Err(EngineError::Invalid {
                field: "scope".into(),
                message: format!("`{other}` is not a scope; use `write`, `admin` or `analyst`"),
            }),
        }
    }

    /// Whether a key of this scope may do what `needed` requires.
    pub fn allows(self, needed: Scope) -> bool {
        self == Scope::Admin || self == needed
    }
}

/// Where a key lives, which decides how far what it sends is believed: a browser key is in
/// every page of the site, so anyone has it; a server key is a backend's secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// Public: rate-limited per client; contact details and grants about a user id need a
    /// valid user hash; withdrawals wait before deleting; merges of two users are refused.
    Browser,
    /// Secret, for server SDKs and backends: believed like the admin API.
    Server,
}

impl KeyKind {
    /// Spelling in storage and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Browser => "browser",
            KeyKind::Server => "server",
        }
    }

    /// Inverse of [`KeyKind::as_str`].
    ///
    /// # Errors
    /// Any other word.
    pub fn parse(raw: &str) -> Result<Self, EngineError> {
        match raw {
            "browser" => Ok(KeyKind::Browser),
            "server" => Ok(KeyKind::Server),
            other => Err(EngineError::Invalid {
                field: "kind".into(),
                message: format!("`{other}` is not a key kind; use `browser` or `server`"),
            }),
        }
    }
}

/// Who a verified key is: its public id (for the audit log), what it may do and where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's public id.
    pub key_id: String,
    /// Its scope.
    pub scope: Scope,
    /// Browser or server. Only a write key can be a browser key; the others are server keys.
    pub kind: KeyKind,
}

impl Principal {
    /// Whether what this key sends comes from a public web page.
    pub fn is_browser(&self) -> bool {
        self.scope == Scope::Write && self.kind == KeyKind::Browser
    }
}

/// A freshly created key. The secret exists only here; it is never stored or logged.
pub struct NewKey {
    /// Public id, safe to log.
    pub key_id: String,
    /// What it may do.
    pub scope: Scope,
    secret: String,
}

impl NewKey {
    pub(crate) fn generate(scope: Scope) -> Result<Self, EngineError> {
        let mut id = [0u8; 6];
        let mut secret = [0u8; 32];
        getrandom::fill(&mut id)
            .and_then(|()| getrandom::fill(&mut secret))
            .map_err(|e| EngineError::Config(format!("the OS random source failed: {e}")))?;
        let key_id = hex::encode(id);
        let prefix = match scope {
            Scope::Write => "csw",
            Scope::Admin => "csa",
            Scope::Analyst => "csn",
        };
        Ok(NewKey {
            secret: format!("{prefix}_{key_id}_{}", hex::encode(secret)),
            key_id,
            scope,
        })
    }

    /// The secret to hand to the user, once.
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKey")
            .field("key_id", &self.key_id)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// A key as it may be listed: everything but the secret.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyInfo {
    /// Public id.
    pub key_id: String,
    /// `write`, `admin` or `analyst`.
    pub scope: String,
    /// `browser` or `server`.
    pub kind: String,
    /// Its label.
    pub label: Option<String>,
    /// When it was created (ISO-8601).
    pub created_at: String,
    /// When it last authenticated a request (ISO-8601, to the minute), if ever.
    pub last_used_at: Option<String>,
    /// When it was revoked (ISO-8601), if it was.
    pub revoked_at: Option<String>,
    /// A server SDK seen sending with it while it is a browser key: a sign it should be a
    /// server key.
    pub server_library: Option<String>,
}

/// The stored form of a secret.
pub(crate) fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_unique_and_never_debug_printed() {
        let a = NewKey::generate(Scope::Write).expect("key");
        let b = NewKey::generate(Scope::Write).expect("key");
        assert_ne!(a.secret(), b.secret());
        assert!(!format!("{a:?}").contains(a.secret()));
        assert_ne!(hash_secret(a.secret()), a.secret());
    }

    #[test]
    fn only_admin_reaches_beyond_its_own_scope() {
        assert!(Scope::Admin.allows(Scope::Write));
        assert!(!Scope::Write.allows(Scope::Admin));
    }
}
