//! API keys as a service: made with their secret shown once, verified by hash, cached once
//! verified. It is given the store, the clock and the cache of verified keys, nothing else.

use std::collections::HashMap;
use std::sync::RwLock;

use consentric_store::{ApiKeyRecord, Store};

use crate::clock::Clock;
use crate::error::EngineError;
use crate::keys::{hash_secret, KeyInfo, NewKey, Principal, Scope};
use crate::profiles::iso;

/// What the key service works on.
pub(crate) struct ApiKeys<'a> {
    pub(crate) store: &'a Store,
    pub(crate) clock: &'a dyn Clock,
    /// Verified key hashes; keys cannot be revoked yet, so a verified key stays valid.
    pub(crate) key_cache: &'a RwLock<HashMap<String, Principal>>,
}

impl ApiKeys<'_> {
    /// Creates an API key; its secret is in the returned value and nowhere else.
    ///
    /// # Errors
    /// A database fault or a failing random source.
    pub fn create_key(&self, scope: Scope, label: Option<&str>) -> Result<NewKey, EngineError> {
        let key = NewKey::generate(scope)?;
        let record = ApiKeyRecord {
            key_id: key.key_id.clone(),
            secret_hash: hash_secret(key.secret()),
            scope: scope.as_str().to_owned(),
            label: label.map(str::to_owned),
            created_at: self.clock.now().timestamp_millis(),
            revoked_at: None,
        };
        self.store.write(|tx| tx.insert_api_key(&record))?;
        Ok(key)
    }

    /// The principal of `secret` if this engine verified it before (keys cannot be revoked
    /// yet, so it is still valid), without touching the database: a server answers the common
    /// case without handing the request to a blocking thread. `None` means "ask
    /// [`ApiKeys::authenticate`]", not "unknown".
    pub fn authenticate_cached(&self, secret: &str) -> Option<Principal> {
        self.verified(&hash_secret(secret))
    }

    fn verified(&self, hash: &str) -> Option<Principal> {
        self.key_cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(hash)
            .cloned()
    }

    /// The key with this secret, or `None` if there is no such (live) key.
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
            return Ok(None);
        }
        let principal = Principal {
            key_id: record.key_id,
            scope: Scope::parse(&record.scope)?,
        };
        self.key_cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(hash, principal.clone());
        Ok(Some(principal))
    }

    /// Every key (without secrets): id, scope, label, creation time.
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
                label: k.label,
                created_at: iso(k.created_at),
            })
            .collect())
    }
}
