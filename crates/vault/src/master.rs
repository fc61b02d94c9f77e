//! The master keys: the key-encryption key that wraps every data key, the key of the blind
//! indexes, and the key that signs erasure receipts. They come from `CONSENTRIC_MASTER_KEY`
//! (64 hex digits; the three keys are derived from it) or from `master.key` in the data
//! directory, created with random keys on first run, readable by its owner only.

use std::io::Write;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::error::VaultError;
use crate::seal::{aead_open, aead_seal, random, DataKey, KeyId, NONCE};

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
    /// The key-encryption key being rotated away from, while a rotation is under way.
    previous: Option<Zeroizing<[u8; 32]>>,
    index: Zeroizing<[u8; 32]>,
    signing: Zeroizing<[u8; 32]>,
    /// The file they came from (none for the environment variable).
    file: Option<std::path::PathBuf>,
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
            previous: None,
            index: derive(&master[..], "consentric/blind-index/v1"),
            signing: derive(&master[..], "consentric/receipt-signing/v1"),
            file: None,
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
            Ok(text) => {
                let mut keys = Self::parse_file(&text)?;
                keys.file = Some(path);
                Ok(keys)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let keys = MasterKeys {
                    kek: Zeroizing::new(random()?),
                    previous: None,
                    index: Zeroizing::new(random()?),
                    signing: Zeroizing::new(random()?),
                    file: Some(path.clone()),
                };
                keys.write(&path)?;
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
            previous: if text.lines().any(|l| l.trim().starts_with("kek_previous")) {
                Some(field("kek_previous")?)
            } else {
                None
            },
            index: field("index")?,
            signing: field("signing")?,
            file: None,
        })
    }

    /// Whether a key rotation was begun and not finished.
    pub fn rotating(&self) -> bool {
        self.previous.is_some()
    }

    /// Begins rotating the key-encryption key: a new one becomes current, the old one stays as
    /// `kek_previous` (so every data key still unwraps) until [`MasterKeys::finish_rotation`].
    /// Written to the file before anything is re-wrapped; a rotation already under way is
    /// resumed, not restarted, so a crash at any point loses no key.
    ///
    /// # Errors
    /// Keys from the environment (rotate the variable instead), or a file that cannot be
    /// written.
    pub fn begin_rotation(&mut self) -> Result<(), VaultError> {
        let path = self.file.clone().ok_or_else(|| {
            VaultError::MasterKey(format!(
                "keys from {MASTER_KEY_ENV} cannot be rotated here; set a new variable and re-wrap"
            ))
        })?;
        if self.previous.is_none() {
            let old = std::mem::replace(&mut self.kek, Zeroizing::new(random()?));
            self.previous = Some(old);
            self.write(&path)?;
        }
        Ok(())
    }

    /// Ends a rotation once every data key is wrapped under the current key: the previous key
    /// is forgotten, in memory and in the file.
    ///
    /// # Errors
    /// A file that cannot be written.
    pub fn finish_rotation(&mut self) -> Result<(), VaultError> {
        if let (Some(path), Some(_)) = (self.file.clone(), &self.previous) {
            self.previous = None;
            self.write(&path)?;
        }
        Ok(())
    }

    /// Writes the keys to `path` whole or not at all: a temporary file (mode 0600), synced,
    /// renamed over the old one, and the directory synced.
    fn write(&self, path: &Path) -> Result<(), VaultError> {
        let fail = |e: std::io::Error| VaultError::MasterKey(format!("{}: {e}", path.display()));
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(fail)?;
        let tmp = path.with_extension("key.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(fail)?;
        let previous = self
            .previous
            .as_ref()
            .map(|p| format!("kek_previous = {}\n", hex::encode(&p[..])))
            .unwrap_or_default();
        let text = Zeroizing::new(format!(
            "# Consentric master keys. Without this file no customer's data can be read:\n\
             # back it up apart from the database, and never next to it.\n\
             kek = {}\n{previous}index = {}\nsigning = {}\n",
            hex::encode(&self.kek[..]),
            hex::encode(&self.index[..]),
            hex::encode(&self.signing[..]),
        ));
        file.write_all(text.as_bytes()).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        std::fs::rename(&tmp, path).map_err(fail)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    pub(crate) fn index_key(&self) -> &[u8; 32] {
        &self.index
    }

    pub(crate) fn signing_seed(&self) -> &[u8; 32] {
        &self.signing
    }
}

/// Wrapping under the local key-encryption key: AES-256-GCM, the key id as associated data;
/// the wrapped form is nonce ‖ ciphertext.
impl KeyProvider for MasterKeys {
    fn wrap(&self, id: &KeyId, key: &DataKey) -> Result<Vec<u8>, VaultError> {
        let nonce: [u8; NONCE] = random()?;
        let ct = aead_seal(&self.kek, &nonce, id.as_str().as_bytes(), key.bytes())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn unwrap(&self, id: &KeyId, wrapped: &[u8]) -> Result<DataKey, VaultError> {
        if wrapped.len() < NONCE {
            return Err(VaultError::Format("wrapped key too short".into()));
        }
        let (nonce, ct) = wrapped.split_at(NONCE);
        let aad = id.as_str().as_bytes();
        let plain = match aead_open(&self.kek, nonce, aad, ct, "wrapped data key") {
            Ok(p) => p,
            // During a rotation, keys not yet re-wrapped open under the previous key.
            Err(e) => match &self.previous {
                Some(prev) => aead_open(prev, nonce, aad, ct, "wrapped data key")?,
                None => return Err(e),
            },
        };
        let plain = Zeroizing::new(plain);
        let mut bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| VaultError::Format("wrapped key of the wrong size".into()))?;
        let key = DataKey::from_bytes(bytes);
        bytes.zeroize();
        Ok(key)
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
    fn a_rotation_keeps_every_key_readable_and_resumes_after_a_crash() {
        let dir = tempfile::tempdir().expect("dir");
        let id = KeyId::parse("prof_a").expect("id");
        let mut m = MasterKeys::load_or_create(dir.path()).expect("create");
        let key = DataKey::generate().expect("k");
        let old_wrapped = m.wrap(&id, &key).expect("wrap");
        m.begin_rotation().expect("begin");
        // A crash here: the file already holds both keys, so a restart reads old wraps and
        // resumes rather than starting over.
        let mut again = MasterKeys::load_or_create(dir.path()).expect("reload");
        assert!(again.rotating());
        again.begin_rotation().expect("resume");
        again
            .unwrap(&id, &old_wrapped)
            .expect("old wraps still open");
        let new_wrapped = again
            .wrap(&id, &again.unwrap(&id, &old_wrapped).expect("k"))
            .expect("rewrap");
        again.finish_rotation().expect("finish");
        let after = MasterKeys::load_or_create(dir.path()).expect("reload");
        assert!(!after.rotating());
        after.unwrap(&id, &new_wrapped).expect("new wraps open");
        assert!(
            after.unwrap(&id, &old_wrapped).is_err(),
            "the old key is gone"
        );
        let text = std::fs::read_to_string(dir.path().join(MASTER_KEY_FILE)).expect("file");
        assert!(!text.contains("kek_previous"));
        assert!(MasterKeys::from_hex(&"11".repeat(32))
            .expect("m")
            .begin_rotation()
            .is_err());
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
