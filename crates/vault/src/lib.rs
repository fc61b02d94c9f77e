//! Consentric's vault: what makes erasure a matter of destroying one key.
//!
//! Every customer has a random 256-bit data key ([`DataKey`]), stored only wrapped by the
//! key-encryption key of a [`KeyProvider`] (a local master-key file or environment variable
//! here; a KMS can implement the same trait). Personal fields are sealed with
//! AES-256-GCM under their customer's data key, with the key id and the field's name as
//! associated data, so a sealed value cannot be moved to another customer or field unnoticed.
//! Look-ups by identity go through a [`Vault::blind_index`] (HMAC-SHA256 under a key of its
//! own), and erasure receipts are signed with Ed25519 ([`ReceiptSigner`]).
//!
//! The vault does no storage: the store keeps wrapped keys and sealed values, the engine
//! decides what to seal.
#![forbid(unsafe_code)]

mod error;
mod master;
mod password;
mod receipt;
mod seal;
pub mod totp;
mod vault;

pub use error::VaultError;
pub use master::{KeyProvider, MasterKeys, MASTER_KEY_ENV, MASTER_KEY_FILE};
pub use password::{hash_password, verify_password};
pub use receipt::{verify_signature, ReceiptSigner};
pub use seal::{key_id_of, DataKey, KeyId};
pub use vault::Vault;
