//! Personal columns are sealed at rest: an event's payload and a trait's value are encrypted
//! under the owning customer's data key by the vault before they are written, and opened when
//! read. Each customer's key is made with their profile (its id is the profile id), stored
//! only wrapped, and moves with the customer's rows when profiles merge; a sealed value names
//! its key, so merged rows stay readable and an erased customer's rows become unreadable the
//! moment their keys are deleted.

use std::collections::HashMap;
use std::sync::Arc;

use consentric_model::Identity;
use consentric_vault::{DataKey, KeyId, Vault, VaultError};

use crate::backend::{Conn, Param};
use crate::error::StoreError;
use crate::sql;

/// The field name an event's payload is sealed as.
pub(crate) fn event_field(message_id: &str) -> String {
    format!("event:{message_id}")
}

/// The field name a trait's value is sealed as.
pub(crate) fn trait_field(name: &str) -> String {
    format!("trait:{name}")
}

impl From<VaultError> for StoreError {
    fn from(e: VaultError) -> Self {
        StoreError::Vault(e.to_string())
    }
}

/// The field name an identity's original value is sealed as.
pub(crate) fn identity_field(kind: &str) -> String {
    format!("identity:{kind}")
}

/// What writing personal data without a vault does: refuse, in every build but the bench's
/// (`bench-reference`), which measures the vault's cost against storing in the clear.
fn unsealed() -> Result<(), StoreError> {
    if cfg!(feature = "bench-reference") {
        Ok(())
    } else {
        Err(StoreError::Vault(
            "no vault: personal columns are never stored in the clear".into(),
        ))
    }
}

/// PostgreSQL: the wrapped keys of many customers.
const KEYS_BY_ID: &str = "SELECT key_id, wrapped FROM customer_keys WHERE key_id = ANY(?1::text[])";

/// The vault as one transaction (or read) sees it: keys made in this transaction are held here
/// until it commits.
pub(crate) struct Sealer {
    pub vault: Option<Arc<Vault>>,
    pub fresh: HashMap<KeyId, DataKey>,
    /// Stored keys [`Sealer::preload`] unwrapped for this transaction. Unlike `fresh` they are
    /// not cached again at the commit: another node may erase their customer meanwhile, and
    /// its announcement must leave nothing of the key in this process.
    loaded: HashMap<KeyId, DataKey>,
}

impl Sealer {
    pub(crate) fn new(vault: Option<Arc<Vault>>) -> Self {
        Sealer {
            vault,
            fresh: HashMap::new(),
            loaded: HashMap::new(),
        }
    }

    /// Makes and stores the data key of a new profile.
    pub(crate) fn create_key(
        &mut self,
        conn: &mut dyn Conn,
        profile: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        let Some(vault) = self.vault.clone() else {
            return unsealed();
        };
        let id = KeyId::parse(profile)?;
        let (key, wrapped) = vault.new_key(&id)?;
        conn.exec(
            sql::INSERT_KEY,
            &[
                Param::Text(id.as_str()),
                Param::Text(profile),
                Param::Text(&hex::encode(wrapped)),
                Param::Int(at),
            ],
        )?;
        self.fresh.insert(id, key);
        Ok(())
    }

    /// Unwraps, with one statement, the keys of `profiles` that are neither made in this
    /// transaction nor cached (PostgreSQL's set-based writes seal many customers' values at
    /// once; one by one, each key missing from the cache would cost a round trip).
    pub(crate) fn preload(
        &mut self,
        conn: &mut dyn Conn,
        profiles: &[&str],
    ) -> Result<(), StoreError> {
        let Some(vault) = self.vault.clone() else {
            return Ok(());
        };
        let mut missing: Vec<&str> = profiles
            .iter()
            .copied()
            .filter(|p| {
                KeyId::parse(p).is_ok_and(|id| {
                    !self.fresh.contains_key(&id)
                        && !self.loaded.contains_key(&id)
                        && vault.cached(&id).is_none()
                })
            })
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        for row in conn.query(KEYS_BY_ID, &[Param::Texts(&missing)])? {
            let mut cells = row.into_iter();
            let (Some(id), Some(wrapped)) = (cells.next(), cells.next()) else {
                return Err(StoreError::Corrupt("a key row without its columns".into()));
            };
            let id = KeyId::parse(&id.text()?)?;
            let wrapped = hex::decode(wrapped.text()?)
                .map_err(|e| StoreError::Corrupt(format!("wrapped key: {e}")))?;
            let key = vault.key(&id, &wrapped)?;
            self.loaded.insert(id, key);
        }
        Ok(())
    }

    /// The data key named `id` (unwrapped into the vault's cache when read from the store), if
    /// it still exists.
    pub(crate) fn key_of(
        &mut self,
        conn: &mut dyn Conn,
        id: &KeyId,
    ) -> Result<Option<DataKey>, StoreError> {
        let Some(vault) = self.vault.clone() else {
            return Ok(None);
        };
        self.key(conn, &vault, id)
    }

    /// The data key named `id`: made in this transaction, cached, or unwrapped from the store.
    fn key(
        &mut self,
        conn: &mut dyn Conn,
        vault: &Vault,
        id: &KeyId,
    ) -> Result<Option<DataKey>, StoreError> {
        if let Some(k) = self.fresh.get(id).or_else(|| self.loaded.get(id)) {
            return Ok(Some(k.clone()));
        }
        if let Some(k) = vault.cached(id) {
            return Ok(Some(k));
        }
        let rows = conn.query(sql::KEY_BY_ID, &[Param::Text(id.as_str())])?;
        let Some(cell) = rows.into_iter().next().and_then(|r| r.into_iter().next()) else {
            return Ok(None);
        };
        let wrapped = hex::decode(cell.text()?)
            .map_err(|e| StoreError::Corrupt(format!("wrapped key: {e}")))?;
        Ok(Some(vault.key(id, &wrapped)?))
    }

    /// Seals `plain` as `field` of `profile` (whose key is made if it has none yet: a profile
    /// from before the vault). Without a vault it refuses, unless this is the bench's build that
    /// measures what sealing costs (then `plain` is stored as is).
    pub(crate) fn seal(
        &mut self,
        conn: &mut dyn Conn,
        profile: &str,
        field: &str,
        plain: &str,
        at: i64,
    ) -> Result<String, StoreError> {
        self.seal_as(conn, profile, field, plain, false, at)
    }

    /// [`Sealer::seal`] of `plain` compressed first (event payloads: `compress.rs`).
    pub(crate) fn seal_compressed(
        &mut self,
        conn: &mut dyn Conn,
        profile: &str,
        field: &str,
        plain: &str,
        at: i64,
    ) -> Result<String, StoreError> {
        self.seal_as(conn, profile, field, plain, true, at)
    }

    fn seal_as(
        &mut self,
        conn: &mut dyn Conn,
        profile: &str,
        field: &str,
        plain: &str,
        compressed: bool,
        at: i64,
    ) -> Result<String, StoreError> {
        let Some(vault) = self.vault.clone() else {
            return unsealed().map(|()| plain.to_owned());
        };
        let id = KeyId::parse(profile)?;
        let key = match self.key(conn, &vault, &id)? {
            Some(k) => k,
            None => {
                self.create_key(conn, profile, at)?;
                self.key(conn, &vault, &id)?
                    .ok_or_else(|| StoreError::Vault("key just made is missing".into()))?
            }
        };
        let bytes = match compressed {
            true => std::borrow::Cow::Owned(crate::compress::compress(plain)?),
            false => std::borrow::Cow::Borrowed(plain.as_bytes()),
        };
        Ok(key.seal(&id, field, &bytes)?)
    }

    /// Opens a stored value of `field`: sealed values through their key, values written before
    /// the vault as they are.
    pub(crate) fn open(
        &mut self,
        conn: &mut dyn Conn,
        stored: String,
        field: &str,
    ) -> Result<String, StoreError> {
        if !stored.starts_with("v1.") {
            return Ok(stored);
        }
        let vault = self
            .vault
            .clone()
            .ok_or_else(|| StoreError::Vault("a sealed value, and no vault to open it".into()))?;
        let id = consentric_vault::key_id_of(&stored)?;
        let key = self
            .key(conn, &vault, &id)?
            .ok_or_else(|| StoreError::Vault(format!("the key of {id} is gone (erased)")))?;
        crate::compress::decompress(key.open(&stored, field)?)
    }

    /// The identity as stored and looked up: its blind index in place of its value (with a
    /// vault), so the database never holds a user id or an anonymous id in the clear.
    pub(crate) fn blind(&self, identity: &Identity) -> Identity {
        match &self.vault {
            Some(v) => Identity {
                kind: identity.kind,
                value: v.blind_index(identity.kind.as_str(), &identity.value),
            },
            None => identity.clone(),
        }
    }

    /// [`Sealer::open`], or `None` when the value's key has been destroyed (a shredded request
    /// or an erased customer).
    pub(crate) fn open_if_kept(
        &mut self,
        conn: &mut dyn Conn,
        stored: String,
        field: &str,
    ) -> Result<Option<String>, StoreError> {
        if stored.starts_with("v1.") {
            if let Some(vault) = self.vault.clone() {
                let id = consentric_vault::key_id_of(&stored)?;
                if self.key(conn, &vault, &id)?.is_none() {
                    return Ok(None);
                }
            }
        }
        self.open(conn, stored, field).map(Some)
    }

    /// After the transaction committed: its new keys may be cached.
    pub(crate) fn committed(self) {
        if let Some(vault) = &self.vault {
            for (id, key) in &self.fresh {
                vault.remember(id, key);
            }
        }
    }
}
