//! What can go wrong in lifecycle analytics.

/// A lifecycle computation that could not be done, with the reason.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// A model was asked to fit on too little data to identify its parameters.
    #[error("{model} needs at least {needed} customers to fit, got {got}")]
    TooFewCustomers {
        /// Which model.
        model: &'static str,
        /// How many it needs.
        needed: usize,
        /// How many it was given.
        got: usize,
    },
    /// The optimiser stopped without a usable optimum.
    #[error("{model} did not converge: {reason}")]
    NoConvergence {
        /// Which model.
        model: &'static str,
        /// What the optimiser said.
        reason: String,
    },
    /// A stage rule or setting in the configuration is wrong.
    #[error("lifecycle rule {rule:?}: {message}")]
    Rule {
        /// The rule's name.
        rule: String,
        /// What is wrong with it.
        message: String,
    },
}
