//! The shapes of lifecycle views and model fits in the OpenAPI document. The engine returns domain values and the
//! handlers serialise them as they are; these twins only describe them (Schemathesis checks in
//! CI that every answer matches), so the engine knows nothing of the HTTP contract.
#![allow(dead_code)]

use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// One fitted model, as stored and served.
#[derive(Serialize, ToSchema)]
pub struct ModelFit {
    /// `bg_nbd`, `pareto_nbd` or `gamma_gamma`.
    pub model: String,
    /// Parameter values by name.
    pub params: BTreeMap<String, f64>,
    /// Standard errors by name (absent where the Hessian could not be inverted).
    pub std_errors: BTreeMap<String, Option<f64>>,
    /// Maximised log-likelihood.
    pub ln_likelihood: f64,
    /// Customers fitted on.
    pub customers: usize,
    /// Optimiser iterations.
    pub iterations: u64,
    /// Last day of the calibration window.
    #[schema(value_type = String, format = Date)]
    pub calibration_end: serde_json::Value,
    /// When it was fitted (RFC 3339).
    pub fitted_at: String,
    /// Seconds the fit took.
    pub seconds: f64,
    /// BG/NBD's row only: actual against expected cumulative repeat purchases per week,
    /// `{"weeks": [date], "actual": [int], "expected": [number], "holdout_from": int}`.
    #[schema(value_type = Option<Object>)]
    pub tracking: Option<serde_json::Value>,
    /// BG/NBD's row only: `{"p_alive": {"edges", "counts"}, "clv": {"edges", "counts"} | null}`
    /// across the customers fitted on.
    #[schema(value_type = Option<Object>)]
    pub distributions: Option<serde_json::Value>,
}

/// What `lifecycle fit` did.
#[derive(Serialize, ToSchema)]
pub struct FitReport {
    /// Last day of the calibration window.
    #[schema(value_type = String, format = Date)]
    pub calibration_end: serde_json::Value,
    /// Customers with a basis for the analytics purpose and a purchase in the window.
    pub customers: usize,
    /// Customers left out for want of a basis.
    pub left_out: usize,
    /// The models fitted.
    pub models: Vec<ModelFit>,
}

/// What a recompute did.
#[derive(Serialize, ToSchema)]
pub struct RecomputeReport {
    /// Customers with a basis for the stage purpose, each placed.
    pub placed: u64,
    /// Of those, customers whose stage changed.
    pub changed: u64,
    /// Customers without a basis now (or restricted): not placed. A restricted customer keeps
    /// their stage unchanged.
    pub left_out: u64,
    /// Of those, customers whose stage (and its history) was deleted because the basis had
    /// lapsed rather than been withdrawn (a withdrawal deletes it at once).
    pub dropped: u64,
}

/// One stage change, as served.
#[derive(Serialize, ToSchema)]
pub struct TransitionView {
    /// The stage left (absent for the first placement).
    #[schema(value_type = Option<String>)]
    pub from: Option<serde_json::Value>,
    /// The stage entered.
    #[schema(value_type = String)]
    pub to: serde_json::Value,
    /// When (RFC 3339).
    pub at: String,
    /// The rule that caused it.
    pub rule: String,
}

/// A customer's scores from the fitted models.
#[derive(Serialize, ToSchema)]
pub struct Scores {
    /// Probability the customer is still active (BG/NBD).
    pub p_alive: f64,
    /// P(alive) under Pareto/NBD, when it was fitted.
    pub p_alive_pareto: Option<f64>,
    /// Expected purchases in the next 90 days.
    pub expected_purchases_90d: f64,
    /// Expected value of a purchase (Gamma-Gamma).
    pub expected_spend: Option<f64>,
    /// Discounted value over the configured horizon.
    pub clv: Option<f64>,
}

/// `GET /v1/customers/{id}/lifecycle`.
#[derive(Serialize, ToSchema)]
pub struct CustomerLifecycle {
    /// The profile.
    pub profile_id: String,
    /// The purpose this was computed under.
    pub purpose: String,
    /// The moment it was computed for (RFC 3339).
    pub as_of: String,
    /// Current stage, once placed.
    #[schema(value_type = Option<String>)]
    pub stage: Option<serde_json::Value>,
    /// Since when.
    pub since: Option<String>,
    /// The rule that placed the customer.
    pub rule: Option<String>,
    /// Every stage change, oldest first.
    pub history: Vec<TransitionView>,
    /// RFM quintile scores against the last fit's population.
    #[schema(value_type = Option<Object>)]
    pub rfm: Option<serde_json::Value>,
    /// Model scores (absent until `lifecycle fit` has run, or without purchases).
    pub scores: Option<Scores>,
    /// Churn risk from P(alive) and recency.
    #[schema(value_type = Option<Object>)]
    pub churn: Option<serde_json::Value>,
}

/// `GET /v1/lifecycle/summary`.
#[derive(Serialize, ToSchema)]
pub struct LifecycleSummary {
    /// The purpose this was computed under.
    pub purpose: String,
    /// Customers included.
    pub customers: usize,
    /// Customers left out for want of a basis.
    pub left_out: usize,
    /// Customers per current stage.
    #[schema(value_type = Object)]
    pub funnel: serde_json::Value,
    /// Stage transitions recorded for these customers.
    pub transitions: u64,
    /// Those transitions by stage left (`null`: a first placement) and stage entered:
    /// `[{"from", "to", "transitions"}]`.
    #[schema(value_type = Vec<Object>)]
    pub flows: serde_json::Value,
    /// Customers per stage at the end of each month.
    #[schema(value_type = Vec<Object>)]
    pub funnel_over_time: Vec<serde_json::Value>,
    /// Retention by month of first purchase.
    #[schema(value_type = Vec<Object>)]
    pub cohorts: Vec<serde_json::Value>,
    /// Fitted models.
    pub models: Vec<ModelFit>,
}
