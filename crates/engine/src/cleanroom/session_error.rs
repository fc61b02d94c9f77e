//! Why a clean-room step was refused.

/// Why a session step was refused; the session is aborted where continuing could reveal more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The token does not match the session's.
    #[error("the session token does not match")]
    BadToken,
    /// The session has expired.
    #[error("the session expired")]
    Expired,
    /// The step is not the session's next one (a replay, or out of order).
    #[error("the session is {0}; this step is not its next")]
    OutOfOrder(String),
    /// More identifiers than a session may hold.
    #[error("{0} identifiers exceed the session limit of {1}")]
    TooLarge(usize, usize),
    /// Fewer identifiers from the other side than we accept (a probe of a few people).
    #[error("the other side brought {0} identifiers, fewer than the {1} we accept")]
    TooSmall(usize, usize),
    /// A malformed message: a bad point, a ciphertext outside the group, mismatched lengths.
    #[error("{0}; the session is aborted")]
    Protocol(String),
}
