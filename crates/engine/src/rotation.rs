//! Key rotation: after `MasterKeys::begin_rotation`, every customer's data key is re-wrapped
//! under the new key-encryption key, a page per transaction.

use consentric_store::StoreError;
use consentric_vault::KeyId;

use crate::error::EngineError;

/// Data keys re-wrapped per transaction during a rotation.
const REWRAP_PAGE: i64 = 1000;

/// What this service works on, handed to it by the context.
pub(crate) struct RotationService<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) erasure: crate::erasure::ErasureService<'a>,
}

impl RotationService<'_> {
    /// Re-wraps every customer's data key under the vault's current key-encryption key (after
    /// `MasterKeys::begin_rotation`), a page per transaction; returns how many. Safe to run
    /// again after an interruption: a key already re-wrapped is simply wrapped once more.
    ///
    /// # Errors
    /// No vault, a key that unwraps under neither master key, or a database fault.
    pub fn rewrap_data_keys(&self) -> Result<u64, EngineError> {
        let vault = self.erasure.vault()?;
        let mut after = String::new();
        let mut count = 0u64;
        loop {
            let done = self.store.write(|tx| {
                let page = tx.keys_page(&after, REWRAP_PAGE)?;
                for (id, wrapped) in &page {
                    let key_id = KeyId::parse(id)?;
                    let bytes = hex::decode(wrapped)
                        .map_err(|e| StoreError::Corrupt(format!("wrapped key {id}: {e}")))?;
                    let again = vault.rewrap(&key_id, &bytes)?;
                    tx.set_wrapped(id, &hex::encode(again))?;
                }
                Ok::<_, StoreError>(page.last().map(|(id, _)| (id.clone(), page.len())))
            })?;
            match done {
                Some((last, n)) => {
                    after = last;
                    count += n as u64;
                }
                None => return Ok(count),
            }
        }
    }
}
