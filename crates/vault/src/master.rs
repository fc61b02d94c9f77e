//! The master keys: the key-encryption key that wraps every data key, the key of the blind
//! indexes, and the key that signs erasure receipts. They come from `CONSENTRIC_MASTER_KEY`
//! (64 hex digits; the three keys are derived from it) or from `master.key` in the data
//! directory, created with random keys on first run, readable by its owner only.

use std::io::Write;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::VaultError;
use crate::seal::{aead_open, aead_seal, random, DataKey, KeyId};

/// The environment variable holding a master key (64 hex digits).
pub const MASTER_KEY_ENV: &str = "CONSENTRIC_MASTER_KEY";
/// The master-key file's name in the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

/// Wraps and unwraps data keys under a key-encryption key the provider keeps. A KMS implements
/// this with its own wrap and unwrap calls; the key id binds a wrapped key to its customer.
pub trait KeyProvider: Send + Sync {
    /// Wraps `key` (the data key named `id`).
    ///
    /// # Errors
    /// If wrapping fails.
    fn wrap(&self, id: &KeyId, key: &DataKey) -> Result<Vec<u8>, VaultError>;
    /// Unwraps what [`KeyProvider::wrap`] made for `id`.
    ///
    /// # Errors
    /// If the bytes do not authenticate for `id` under this provider's key.
    fn unwrap(&self, id: &KeyId, wrapped: &[u8]) -> Result<DataKey, VaultError>;
}

/// The three master keys, held in memory, zeroed when dropped.
pub struct MasterKeys {
    kek: Zeroizing<[u8; 32]>,
    index: Zeroizing<[u8; 32]>,
    signing: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKeys(…)")
    }
}

fn derive(master: &[u8], label: &str) -> Zeroizing<[u8; 32]> {
    // HMAC-SHA256 accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(label.as_bytes());
    Zeroizing::new(mac.finalize().into_bytes().into())
}

fn parse_hex32(raw: &str, what: &str) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    let mut out = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(raw.trim(), &mut out[..])
        .map_err(|_| VaultError::MasterKey(format!("{what} is not 64 hex digits")))?;
    Ok(out)
}

impl MasterKeys {
    /// Keys derived from one master secret (the environment variable's form).
    ///
    /// # Errors
    /// If `hex` is not 64 hex digits.
    pub fn from_hex(hex: &str) -> Result<Self, VaultError> {
        let master = parse_hex32(hex, MASTER_KEY_ENV)?;
        Ok(MasterKeys {
            kek: derive(&master[..], "consentric/kek/v1"),
            index: derive(&master[..], "consentric/blind-index/v1"),
            signing: derive(&master[..], "consentric/receipt-signing/v1"),
        })
    }

    /// `CONSENTRIC_MASTER_KEY` if set, else `master.key` in `data_dir` (created on first run
    /// with random keys and mode 0600).
    ///
    /// # Errors
    /// A malformed variable or file, or a file that cannot be read or created.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, VaultError> {
        if let Ok(hex) = std::env::var(MASTER_KEY_ENV) {
            return Self::from_hex(&hex);
        }
        let path = data_dir.join(MASTER_KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse_file(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let keys = MasterKeys {
                    kek: Zeroizing::new(random()?),
                    index: Zeroizing::new(random()?),
                    signing: Zeroizing::new(random()?),
                };
                keys.write_new(&path)?;
                Ok(keys)
            }
            Err(e) => Err(VaultError::MasterKey(format!("{}: {e}", path.display()))),
        }
    }

    fn parse_file(text: &str) -> Result<Self, VaultError> {
        let field = |name: &str| -> Result<Zeroizing<[u8; 32]>, VaultError> {
            let line = text
                .lines()
                .find_map(|l| l.trim().strip_prefix(name)?.trim().strip_prefix('='))
                .ok_or_else(|| {
                    VaultError::MasterKey(format!("{MASTER_KEY_FILE} lacks `{name}`"))
                })?;
            parse_hex32(line, name)
        };
        Ok(MasterKeys {
            kek: field("kek")?,
            index: field("index")?,
            signing: field("signing")?,
        })
    }

    fn write_new(&self, path: &Path) -> Result<(), VaultError> {
        let fail = |e: std::io::Error| VaultError::MasterKey(format!("{}: {e}", path.display()));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(fail)?;
        let text = Zeroizing::new(format!(
            "# Consentric master keys. Without this file no customer's data can be read:\n\
             # back it up apart from the database, and never next to it.\n\
             kek = {}\nindex = {}\nsigning = {}\n",
            hex::encode(&self.kek[..]),
            hex::encode(&self.index[..]),
            hex::encode(&self.signing[..]),
        ));
        file.write_all(text.as_bytes()).map_err(fail)?;
        file.sync_all().map_err(fail)
    }

    pub(crate) fn index_key(&self) -> &[u8; 32] {
        &self.index
    }

    pub(crate) fn signing_seed(&self) -> &[u8; 32] {
        &self.signing
    }
}

/// Wrapping under the local key-encryption key: XChaCha20-Poly1305, the key id as associated
/// data; the wrapped form is nonce ‖ ciphertext.
impl KeyProvider for MasterKeys {
    fn wrap(&self, id: &KeyId, key: &DataKey) -> Result<Vec<u8>, VaultError> {
        let nonce: [u8; 24] = random()?;
        let ct = aead_seal(&self.kek, &nonce, id.as_str().as_bytes(), key.bytes())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn unwrap(&self, id: &KeyId, wrapped: &[u8]) -> Result<DataKey, VaultError> {
        if wrapped.len() < 24 {
            return Err(VaultError::Format("wrapped key too short".into()));
        }
        let (nonce, ct) = wrapped.split_at(24);
        let plain = Zeroizing::new(aead_open(
            &self.kek,
            nonce,
            id.as_str().as_bytes(),
            ct,
            "wrapped data key",
        )?);
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| VaultError::Format("wrapped key of the wrong size".into()))?;
        Ok(DataKey::from_bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_created_once_private_and_read_back() {
        let dir = tempfile::tempdir().expect("dir");
        let id = KeyId::parse("prof_a").expect("id");
        let first = MasterKeys::load_or_create(dir.path()).expect("create");
        let wrapped = first
            .wrap(&id, &DataKey::generate().expect("k"))
            .expect("wrap");
        let again = MasterKeys::load_or_create(dir.path()).expect("read");
        again
            .unwrap(&id, &wrapped)
            .expect("same keys after a restart");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(MASTER_KEY_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_wrapped_key_unwraps_only_for_its_id_under_its_master() {
        let m = MasterKeys::from_hex(&"11".repeat(32)).expect("m");
        let id = KeyId::parse("prof_a").expect("id");
        let w = m.wrap(&id, &DataKey::generate().expect("k")).expect("wrap");
        assert!(m.unwrap(&KeyId::parse("prof_b").expect("id"), &w).is_err());
        let other = MasterKeys::from_hex(&"22".repeat(32)).expect("m");
        assert!(other.unwrap(&id, &w).is_err());
        assert!(MasterKeys::from_hex("abc").is_err());
        assert!(MasterKeys::parse_file("kek = 00\n").is_err());
    }
}
