//! Operators' passwords, hashed with Argon2id (RFC 9106) at the crate's defaults (19 MiB, two
//! passes: OWASP's recommendation), each with its own random salt, kept as a PHC string.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::VaultError;

/// The PHC string of `password` under a fresh salt.
///
/// # Errors
/// The system's randomness failed.
pub fn hash_password(password: &str) -> Result<String, VaultError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| VaultError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| VaultError::Random(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| VaultError::Password(e.to_string()))
}

/// Whether `password` is the one `phc` was made from (false for a malformed `phc`).
pub fn verify_password(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_and_nothing_else_does() {
        let phc = hash_password("correct horse battery staple").expect("hash");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password(&phc, "correct horse battery staple"));
        assert!(!verify_password(&phc, "correct horse battery stapler"));
        assert!(!verify_password("not a hash", "x"));
        let again = hash_password("correct horse battery staple").expect("hash");
        assert_ne!(phc, again, "each hash has its own salt");
    }
}
