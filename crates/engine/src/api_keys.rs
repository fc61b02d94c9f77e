//! API keys as a service: made with their secret shown once, verified by hash, listed,
//! revoked, and kept briefly in a cache once verified. It is given the store, the clock and
//! the cache of verified keys, nothing else.
//!
//! On SQLite a verified key is believed from the cache for at most [`CACHE_LIFE`]: a key
//! revoked by another process on the same file (the CLI beside `serve`) is refused there
//! within that time, and at once by the process that revoked it. On PostgreSQL, where other
//! nodes serve too, every request reads its key.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use consentric_store::{ApiKeyRecord, BackendKind, Store};
use serde_json::json;

use crate::audit;
use crate::clock::Clock;
use crate::error::EngineError;
use crate::keys::{hash_secret, KeyInfo, KeyKind, NewKey, Principal, Scope};
use crate::profiles::iso;

/// How long a verified key is believed without reading the store again.
pub const CACHE_LIFE: Duration = Duration::from_secs(1);

/// Verified keys kept before the expired ones are dropped.
const MAX_CACHED_KEYS: usize = 1024;

/// How stale a key's `last_used_at` may get before it is written again.
const USE_RESOLUTION_MS: i64 = 60_000;

/// Verified keys: secret hash → who, and when the store last said so.
pub(crate) type KeyCache = RwLock<HashMap<String, (Principal, Instant)>>;

/// Server SDKs by the library name they send in `context.library.name`: a browser key used by
/// one of them is a secret key handed out as a public one, or a public one used as a secret.
pub const SERVER_LIBRARIES: &[&str] = &[
    "analytics-node",
    "analytics-python",
    "analytics-ruby",
    "analytics-go",
    "analytics-java",
    "analytics-php",
    "analytics-dotnet",
    "RudderStack Node SDK",
    "rudder-sdk-node",
    "rudder-sdk-python",
    "rudder-sdk-go",
    "rudder-sdk-java",
    "rudder-sdk-ruby",
];

/// What the key service works on.
pub(crate) struct ApiKeys<'a> {
    pub(crate) store: &'a Store,
    pub(crate) clock: &'a dyn Clock,
    pub(crate) key_cache: &'a KeyCache,
}

impl ApiKeys<'_> {
    /// Creates an API key; its secret is in the returned value and nowhere else. A write key
    /// is a browser key; every other scope is a server key.
    ///
    /// # Errors
    /// A database fault or a failing random source.
    pub fn create_key(&self, scope: Scope, label: Option<&str>) -> Result<NewKey, EngineError> {
        let kind = if scope == Scope::Write {
            KeyKind::Browser
        } else {
            KeyKind::Server
        };
        self.create_key_of_kind(scope, kind, label)
    }

    /// Creates an API key of `kind` (only a write key can be a browser key).
    ///
    /// # Errors
    /// [`EngineError::Invalid`] for a browser key of another scope; a database fault or a
    /// failing random source.
    pub fn create_key_of_kind(
        &self,
        scope: Scope,
        kind: KeyKind,
        label: Option<&str>,
    ) -> Result<NewKey, EngineError> {
        if kind == KeyKind::Browser && scope != Scope::Write {
            return Err(EngineError::Invalid {
                field: "kind".into(),
                message: "only a write key can be a browser key".into(),
            });
        }
        let key = NewKey::generate(scope)?;
        let record = ApiKeyRecord {
            key_id: key.key_id.clone(),
            secret_hash: hash_secret(key.secret()),
            scope: scope.as_str().to_owned(),
            label: label.map(str::to_owned),
            created_at: self.clock.now().timestamp_millis(),
            revoked_at: None,
            kind: kind.as_str().to_owned(),
            last_used_at: None,
            server_library: None,
        };
        self.store.write(|tx| tx.insert_api_key(&record))?;
        Ok(key)
    }

    /// The principal of `secret` if this engine verified it within [`CACHE_LIFE`], without
    /// touching the database: a server answers the common case without handing the request to
    /// a blocking thread. `None` means "ask [`ApiKeys::authenticate`]", not "unknown".
    pub fn authenticate_cached(&self, secret: &str) -> Option<Principal> {
        self.verified(&hash_secret(secret))
    }

    fn verified(&self, hash: &str) -> Option<Principal> {
        if !self.caches() {
            return None;
        }
        self.key_cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(hash)
            .filter(|(_, at)| at.elapsed() < CACHE_LIFE)
            .map(|(p, _)| p.clone())
    }

    /// Whether verified keys are believed for [`CACHE_LIFE`]. Not on PostgreSQL, where other
    /// nodes may revoke a key: each request reads its key (one indexed row), so a revocation
    /// is refused at once by every node.
    fn caches(&self) -> bool {
        self.store.kind() != BackendKind::Postgres
    }

    /// [`ApiKeys::authenticate`] without recording the key's use or caching it.
    ///
    /// # Errors
    /// A database fault.
    pub fn peek(&self, secret: &str) -> Result<Option<Principal>, EngineError> {
        if let Some(p) = self.verified(&hash_secret(secret)) {
            return Ok(Some(p));
        }
        let Some(record) = self.store.api_key_by_hash(&hash_secret(secret))? else {
            return Ok(None);
        };
        if record.revoked_at.is_some() {
            return Ok(None);
        }
        Ok(Some(Principal {
            key_id: record.key_id.clone(),
            scope: Scope::parse(&record.scope)?,
            kind: KeyKind::parse(&record.kind)?,
        }))
    }

    /// The key with this secret, or `None` if there is no such live key.
    ///
    /// # Errors
    /// A database fault.
    pub fn authenticate(&self, secret: &str) -> Result<Option<Principal>, EngineError> {
        let hash = hash_secret(secret);
        if let Some(p) = self.verified(&hash) {
            return Ok(Some(p));
        }
        let Some(record) = self.store.api_key_by_hash(&hash)? else {
            return Ok(None);
        };
        if record.revoked_at.is_some() {
            self.forget(&record.key_id);
            return Ok(None);
        }
        let principal = Principal {
            key_id: record.key_id.clone(),
            scope: Scope::parse(&record.scope)?,
            kind: KeyKind::parse(&record.kind)?,
        };
        let now = self.clock.now().timestamp_millis();
        if record
            .last_used_at
            .is_none_or(|used| now - used >= USE_RESOLUTION_MS)
        {
            self.store.write(|tx| tx.key_used(&record.key_id, now))?;
        }
        if self.caches() {
            let mut cache = self.key_cache.write().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= MAX_CACHED_KEYS {
                cache.retain(|_, (_, at)| at.elapsed() < CACHE_LIFE);
            }
            cache.insert(hash, (principal.clone(), Instant::now()));
        }
        Ok(Some(principal))
    }

    /// Every key (without secrets).
    ///
    /// # Errors
    /// A database fault.
    pub fn keys(&self) -> Result<Vec<KeyInfo>, EngineError> {
        Ok(self
            .store
            .api_keys()?
            .into_iter()
            .map(|k| KeyInfo {
                key_id: k.key_id,
                scope: k.scope,
                kind: k.kind,
                label: k.label,
                created_at: iso(k.created_at),
                last_used_at: k.last_used_at.map(iso),
                revoked_at: k.revoked_at.map(iso),
                server_library: k.server_library,
            })
            .collect())
    }

    /// Revokes key `key_id`, as `actor`: refused at once by this process and by every node on
    /// PostgreSQL, and by another process on the same SQLite file within [`CACHE_LIFE`].
    /// Audited. Revoking a revoked key changes nothing.
    ///
    /// # Errors
    /// Not found; a database fault.
    pub fn revoke_key(&self, key_id: &str, actor: &str) -> Result<KeyInfo, EngineError> {
        let now = self.clock.now().timestamp_millis();
        self.store.write(|tx| -> Result<(), EngineError> {
            if tx.revoke_api_key(key_id, now)? {
                audit::append(
                    tx,
                    now,
                    actor,
                    "key.revoked",
                    None,
                    &json!({"key_id": key_id}),
                )?;
            }
            Ok(())
        })?;
        self.forget(key_id);
        self.key(key_id)
    }

    /// Makes key `key_id` a browser or a server key, as `actor`. Audited.
    ///
    /// # Errors
    /// Not found; [`EngineError::Invalid`] for a browser key that is not a write key; a
    /// database fault.
    pub fn set_key_kind(
        &self,
        key_id: &str,
        kind: KeyKind,
        actor: &str,
    ) -> Result<KeyInfo, EngineError> {
        let current = self.key(key_id)?;
        if kind == KeyKind::Browser && current.scope != Scope::Write.as_str() {
            return Err(EngineError::Invalid {
                field: "kind".into(),
                message: "only a write key can be a browser key".into(),
            });
        }
        let now = self.clock.now().timestamp_millis();
        self.store.write(|tx| -> Result<(), EngineError> {
            tx.set_key_kind(key_id, kind.as_str())?;
            audit::append(
                tx,
                now,
                actor,
                "key.kind_set",
                None,
                &json!({"key_id": key_id, "kind": kind.as_str()}),
            )?;
            Ok(())
        })?;
        self.forget(key_id);
        self.key(key_id)
    }

    /// Notes that a server SDK (`library`, one of [`SERVER_LIBRARIES`]) sent with browser key
    /// `key_id`; `serve` warns about such keys when it starts.
    ///
    /// # Errors
    /// A database fault.
    pub fn note_server_library(&self, key_id: &str, library: &str) -> Result<(), EngineError> {
        Ok(self
            .store
            .write(|tx| tx.key_server_library(key_id, library))?)
    }

    fn key(&self, key_id: &str) -> Result<KeyInfo, EngineError> {
        self.keys()?
            .into_iter()
            .find(|k| k.key_id == key_id)
            .ok_or_else(|| EngineError::NotFound(format!("key `{key_id}`")))
    }

    /// Drops every cached verification of `key_id`.
    fn forget(&self, key_id: &str) {
        self.key_cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, (p, _)| p.key_id != key_id);
    }
}
