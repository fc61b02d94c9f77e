//! Lifecycle analytics: where each customer stands and what they are worth.
//!
//! Pure math over purchase histories and counters the engine reads through the policy gate:
//! the buy-till-you-die models (BG/NBD, Pareto/NBD, Gamma-Gamma) with CLV, RFM scores,
//! configurable stage rules, cohort retention and churn risk. No I/O; the engine decides which
//! customers' data may enter.

#![forbid(unsafe_code)]

pub mod bgnbd;
pub mod churn;
pub mod clv;
pub mod cohorts;
pub mod error;
pub mod gamma_gamma;
mod optimise;
pub mod pareto;
pub mod rfm;
mod sample;
pub mod scores;
pub mod special;
pub mod stages;
pub mod summary;

pub use bgnbd::BgNbd;
pub use churn::{churn_risk, ChurnRisk, ChurnSettings};
pub use clv::{clv, ClvSettings};
pub use error::LifecycleError;
pub use gamma_gamma::GammaGamma;
pub use optimise::Fitted;
pub use pareto::ParetoNbd;
pub use rfm::{rfm_scores, Rfm, RfmBoundaries, RfmInput};
pub use scores::{score_all, Score};
pub use stages::{Facts, Placement, StageRule, StageRules};
pub use summary::{CustomerSummary, Holdout, Purchase};

/// What a purchase model predicts for one customer.
pub trait PurchaseModel {
    /// Probability that the customer is still active at the end of the calibration window.
    fn p_alive(&self, c: &CustomerSummary) -> f64;
    /// Expected purchases in the next `t` weeks.
    fn expected_purchases(&self, t: f64, c: &CustomerSummary) -> f64;
}
