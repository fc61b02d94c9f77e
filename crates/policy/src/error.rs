/// What the policy room refuses. All of these are the caller's (or the configuration's) doing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A purpose id that no purpose in the registry has.
    #[error("unknown purpose `{0}`")]
    UnknownPurpose(String),
    /// A data category that is not in the taxonomy or not well formed.
    #[error("unknown data category `{0}`")]
    UnknownCategory(String),
    /// A configuration value that cannot be used.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// Which value.
        field: String,
        /// Why.
        message: String,
    },
    /// A TC string that does not decode.
    #[error("malformed TC string: {0}")]
    MalformedTcString(String),
}
