use consentric_store::StoreError;

/// What the engine refuses or fails at. `NotFound` and `Invalid` are the caller's doing;
/// `Store` and `Config` are ours, and callers should not show their detail to clients.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Nothing matches the reference.
    #[error("{0} not found")]
    NotFound(String),
    /// An argument the caller gave is unusable.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// Which argument (a JSON path where it came from a body).
        field: String,
        /// Why.
        message: String,
    },
    /// The request was fine but the data does not allow it now: nothing to fit on, or a model
    /// the data does not identify. Asking again after more data may succeed.
    #[error("{0}")]
    Conflict(String),
    /// The gate refused: the purpose has no legal basis for this customer now.
    #[error("{0}")]
    NoBasis(String),
    /// A differentially private release would cost more privacy than the budget has left;
    /// nothing was spent.
    #[error(
        "the release costs rho = {requested} but only rho = {remaining} remains of the budget"
    )]
    BudgetExceeded {
        /// ρ the release would cost.
        requested: f64,
        /// ρ left.
        remaining: f64,
    },
    /// Too many attempts of something a person must not be able to try at scale (one-time
    /// codes for one address); try later.
    #[error("{0}")]
    TooMany(String),
    /// The customer's session is unknown, expired, or its profile gone.
    #[error("{0}")]
    SignedOut(String),
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// A clean-room session step was refused.
    #[error("clean room: {0}")]
    Session(#[from] crate::cleanroom::SessionError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The group commit this request shared failed as a whole after its transaction began:
    /// the flush did not complete, or the writer panicked. Nothing of it is known durable.
    #[error("the shared write failed: {0}")]
    Writer(String),
    /// An import source could not be read.
    #[error("reading {what}: {source}")]
    Io {
        /// What was being read.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}
