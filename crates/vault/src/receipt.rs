//! Erasure receipts are signed with Ed25519 so that a customer (or an auditor) holding the
//! receipt and the deployment's public key can check it was issued as it reads.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::error::VaultError;

/// Signs receipts with the deployment's receipt key.
pub struct ReceiptSigner {
    key: SigningKey,
}

impl std::fmt::Debug for ReceiptSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReceiptSigner({})", self.public_key_hex())
    }
}

impl ReceiptSigner {
    pub(crate) fn from_seed(seed: &[u8; 32]) -> Self {
        ReceiptSigner {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// The public key (hex), to publish for verifying receipts.
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    /// The signature (hex) of `message`.
    pub fn sign_hex(&self, message: &[u8]) -> String {
        hex::encode(self.key.sign(message).to_bytes())
    }
}

/// Checks a hex signature of `message` against a hex public key.
///
/// # Errors
/// A malformed key or signature, or one that does not verify.
pub fn verify_signature(
    public_key_hex: &str,
    message: &[u8],
    signature_hex: &str,
) -> Result<(), VaultError> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(public_key_hex.trim(), &mut key)
        .map_err(|_| VaultError::Signature("public key is not 64 hex digits".into()))?;
    let key = VerifyingKey::from_bytes(&key)
        .map_err(|_| VaultError::Signature("not an Ed25519 public key".into()))?;
    let mut sig = [0u8; 64];
    hex::decode_to_slice(signature_hex.trim(), &mut sig)
        .map_err(|_| VaultError::Signature("signature is not 128 hex digits".into()))?;
    key.verify(message, &Signature::from_bytes(&sig))
        .map_err(|_| VaultError::Signature("does not verify: altered or not ours".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_message_and_key() {
        let s = ReceiptSigner::from_seed(&[7; 32]);
        let sig = s.sign_hex(b"erased 12 events");
        verify_signature(&s.public_key_hex(), b"erased 12 events", &sig).expect("verifies");
        assert!(verify_signature(&s.public_key_hex(), b"erased 13 events", &sig).is_err());
        let other = ReceiptSigner::from_seed(&[8; 32]);
        assert!(verify_signature(&other.public_key_hex(), b"erased 12 events", &sig).is_err());
        assert!(verify_signature("zz", b"m", &sig).is_err());
    }
}
