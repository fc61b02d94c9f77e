//! The vault the engine holds: a key provider, the blind-index key, the receipt signer and a
//! bounded cache of unwrapped data keys.

use std::collections::HashMap;
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::VaultError;
use crate::master::{KeyProvider, MasterKeys};
use crate::receipt::ReceiptSigner;
use crate::seal::{DataKey, KeyId};

/// Unwrapped data keys kept in memory.
const CACHE_KEYS: usize = 50_000;

/// Keys and the operations on them; cheap to share behind the engine.
pub struct Vault {
    provider: Box<dyn KeyProvider>,
    /// HMAC-SHA256 keyed with the index key once; cloned per token.
    index_mac: Hmac<Sha256>,
    signer: ReceiptSigner,
    cache: Mutex<HashMap<KeyId, DataKey>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").finish_non_exhaustive()
    }
}

impl Vault {
    /// A vault over local master keys (the provider, the index key and the signer all come from
    /// them).
    pub fn new(master: MasterKeys) -> Self {
        let index_mac = <Hmac<Sha256> as Mac>::new_from_slice(master.index_key())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        let signer = ReceiptSigner::from_seed(master.signing_seed());
        Vault {
            provider: Box::new(master),
            index_mac,
            signer,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// A new data key named `id`, and its wrapped form for storage. It is not cached: only
    /// once the transaction storing it has committed does the caller [`Vault::remember`] it,
    /// so a rolled-back key can never seal anything later.
    ///
    /// # Errors
    /// If the random source or the provider fails.
    pub fn new_key(&self, id: &KeyId) -> Result<(DataKey, Vec<u8>), VaultError> {
        let key = DataKey::generate()?;
        let wrapped = self.provider.wrap(id, &key)?;
        Ok((key, wrapped))
    }

    /// The data key `id`, unwrapping `wrapped` unless it is cached.
    ///
    /// # Errors
    /// If the wrapped key does not authenticate.
    pub fn key(&self, id: &KeyId, wrapped: &[u8]) -> Result<DataKey, VaultError> {
        if let Some(k) = self.cached(id) {
            return Ok(k);
        }
        let key = self.provider.unwrap(id, wrapped)?;
        self.remember(id, &key);
        Ok(key)
    }

    /// `wrapped` (the data key `id`) unwrapped — under the current or, during a rotation, the
    /// previous key-encryption key — and wrapped again under the current one.
    ///
    /// # Errors
    /// If it does not unwrap under either.
    pub fn rewrap(&self, id: &KeyId, wrapped: &[u8]) -> Result<Vec<u8>, VaultError> {
        let key = self.provider.unwrap(id, wrapped)?;
        self.provider.wrap(id, &key)
    }

    /// The cached data key `id`, if unwrapped recently.
    pub fn cached(&self, id: &KeyId) -> Option<DataKey> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// Drops `id` from memory: after erasure nothing of the key is left in this process.
    pub fn forget(&self, id: &KeyId) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Drops every cached key: what another process changed while this one was not told
    /// (erasures) is then read from the database again.
    pub fn forget_all(&self) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Caches a stored key (see [`Vault::new_key`]).
    pub fn remember(&self, id: &KeyId, key: &DataKey) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_KEYS {
            cache.clear();
        }
        cache.insert(id.clone(), key.clone());
    }

    /// A look-up token for an identity: HMAC-SHA256 under the index key of `kind` and
    /// `value`, in hex. Equal identities give equal tokens; the token reveals nothing else.
    pub fn blind_index(&self, kind: &str, value: &str) -> String {
        let mut mac = self.index_mac.clone();
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// A keyed hash of `parts` for one `use_` (`dsr-code`, `audit-chain`, `user-hash`): HMAC-SHA256
    /// under a key derived from the index key for that use alone, over the parts each prefixed
    /// by its length, in hex. Someone holding the database but not the master keys can
    /// neither compute nor brute-force it.
    pub fn keyed_hash(&self, use_: &str, parts: &[&[u8]]) -> String {
        hex::encode(self.use_mac(use_, parts).finalize().into_bytes())
    }

    /// Whether `hex` is [`Vault::keyed_hash`] of `use_` and `parts`, compared in constant time.
    pub fn keyed_hash_matches(&self, use_: &str, parts: &[&[u8]], hex: &str) -> bool {
        let Ok(tag) = hex::decode(hex) else {
            return false;
        };
        self.use_mac(use_, parts).verify_slice(&tag).is_ok()
    }

    fn use_mac(&self, use_: &str, parts: &[&[u8]]) -> Hmac<Sha256> {
        // The derivation's input has no NUL byte, a blind index's always has one: the two
        // cannot collide.
        let mut derive = self.index_mac.clone();
        derive.update(b"consentric/");
        derive.update(use_.as_bytes());
        derive.update(b"/v1");
        let key = derive.finalize().into_bytes();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// The deployment's identity secret, in hex: a site's backend signs a user id with it
    /// (`hex(HMAC-SHA256(secret, userId))`, the user hash) so that a browser's events about
    /// that user can be believed. Derived from the master keys; shown by `consentric keys
    /// identity-secret`.
    pub fn identity_secret(&self) -> String {
        hex::encode(self.identity_key())
    }

    /// Whether `hash` (hex) is the user hash of `user_id`, compared in constant time.
    pub fn user_hash_matches(&self, user_id: &str, hash: &str) -> bool {
        let Ok(tag) = hex::decode(hash.trim()) else {
            return false;
        };
        let key = self.identity_key();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(user_id.as_bytes());
        mac.verify_slice(&tag).is_ok()
    }

    fn identity_key(&self) -> [u8; 32] {
        let mut derive = self.index_mac.clone();
        derive.update(b"consentric/identity-secret/v1");
        derive.finalize().into_bytes().into()
    }

    /// The receipt signer.
    pub fn signer(&self) -> &ReceiptSigner {
        &self.signer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_their_wrapped_form_and_can_be_forgotten() {
        let v = Vault::new(MasterKeys::from_hex(&"ab".repeat(32)).expect("m"));
        let id = KeyId::parse("prof_x").expect("id");
        let (key, wrapped) = v.new_key(&id).expect("new");
        let sealed = key.seal(&id, "f", b"secret").expect("seal");
        assert!(v.cached(&id).is_none(), "not cached before it is stored");
        v.remember(&id, &key);
        assert!(v.cached(&id).is_some());
        v.forget(&id);
        assert!(v.cached(&id).is_none());
        let again = v.key(&id, &wrapped).expect("unwrap");
        assert_eq!(again.open(&sealed, "f").expect("open"), b"secret");
    }

    #[test]
    fn blind_indexes_are_stable_distinct_and_keyed() {
        let a = Vault::new(MasterKeys::from_hex(&"01".repeat(32)).expect("m"));
        let b = Vault::new(MasterKeys::from_hex(&"02".repeat(32)).expect("m"));
        assert_eq!(
            a.blind_index("user_id", "u1"),
            a.blind_index("user_id", "u1")
        );
        assert_ne!(
            a.blind_index("user_id", "u1"),
            a.blind_index("anonymous_id", "u1")
        );
        assert_ne!(
            a.blind_index("user_id", "u1"),
            b.blind_index("user_id", "u1")
        );
        assert!(!a.blind_index("user_id", "ada@example.com").contains("ada"));
    }

    #[test]
    fn keyed_hashes_depend_on_the_key_the_use_and_each_part() {
        let a = Vault::new(MasterKeys::from_hex(&"01".repeat(32)).expect("m"));
        let b = Vault::new(MasterKeys::from_hex(&"02".repeat(32)).expect("m"));
        let h = a.keyed_hash("dsr-code", &[b"dsr_1", b"123456"]);
        assert!(a.keyed_hash_matches("dsr-code", &[b"dsr_1", b"123456"], &h));
        assert!(!a.keyed_hash_matches("dsr-code", &[b"dsr_1", b"123457"], &h));
        assert!(!a.keyed_hash_matches("user-hash", &[b"dsr_1", b"123456"], &h));
        assert!(!b.keyed_hash_matches("dsr-code", &[b"dsr_1", b"123456"], &h));
        // Parts are length-prefixed: moving a boundary changes the hash.
        assert!(!a.keyed_hash_matches("dsr-code", &[b"dsr_11", b"23456"], &h));
        assert!(!a.keyed_hash_matches("dsr-code", &[b"dsr_1", b"123456"], "not hex"));
    }
}
