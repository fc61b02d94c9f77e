/// What can go wrong in the vault. None of it carries key material.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The master key file or variable could not be read or is malformed.
    #[error("master key: {0}")]
    MasterKey(String),
    /// The operating system's random source failed.
    #[error("random source: {0}")]
    Random(String),
    /// A sealed value or wrapped key did not authenticate: wrong key, wrong customer or field,
    /// or tampered bytes.
    #[error("{0} does not authenticate (wrong key, wrong owner, or altered)")]
    Authentication(&'static str),
    /// A sealed value is not in the vault's format.
    #[error("not a sealed value: {0}")]
    Format(String),
    /// A password could not be hashed.
    #[error("password hashing: {0}")]
    Password(String),
    /// A signature or public key is malformed.
    #[error("signature: {0}")]
    Signature(String),
}
