//! The shapes of decisions and training reports in the OpenAPI document. The engine returns domain values and the
//! handlers serialise them as they are; these twins only describe them (Schemathesis checks in
//! CI that every answer matches), so the engine knows nothing of the HTTP contract.
#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;

/// One suggested item.
#[derive(Serialize, ToSchema)]
pub struct DecisionItem {
    /// The item (product id).
    pub item: String,
    /// Its score (model units; higher is better).
    pub score: f32,
    /// The item of the customer's history that led to it, when personal.
    pub because: Option<String>,
}

/// The action chosen.
#[derive(Serialize, ToSchema)]
pub struct DecisionAction {
    /// Its name in the catalogue.
    pub name: String,
    /// What it is.
    pub description: String,
    /// The channel it uses.
    pub channel: String,
    /// The purpose that channel needed (and has a basis).
    pub purpose: Option<String>,
    /// uplift × value.
    pub expected_value: f64,
    /// Whether the value was the customer's CLV.
    pub value_from_clv: bool,
}

/// An action not chosen, and why.
#[derive(Serialize, ToSchema)]
pub struct ExcludedAction {
    /// Its name.
    pub name: String,
    /// Why (`stage`, `no_channel_consent`, `capped`, `cooldown`, or `ranked_lower`).
    #[schema(value_type = Object)]
    pub why: serde_json::Value,
}

/// Why the answer is what it is, in words a customer could read.
#[derive(Serialize, ToSchema)]
pub struct Explanation {
    /// Whether anything about the customer was used.
    pub personal: bool,
    /// The purpose it was used under (absent when nothing personal was).
    pub purpose: Option<String>,
    /// What was used.
    pub data_used: Vec<String>,
    /// Why these items and this action.
    pub reasons: Vec<String>,
}

/// `GET /v1/decisions/{customer}`.
#[derive(Serialize, ToSchema)]
pub struct Decision {
    /// The customer (empty for a visitor with no profile).
    pub profile_id: String,
    /// Where it will be shown.
    pub placement: String,
    /// When (RFC 3339).
    pub decided_at: String,
    /// What chose the items: `als`, `knn`, `popularity`, or `none` before any training.
    pub recommender: String,
    /// When the models were trained (RFC 3339).
    pub model_trained_at: Option<String>,
    /// Items, best first.
    pub items: Vec<DecisionItem>,
    /// The next best action, if any may be taken.
    pub action: Option<DecisionAction>,
    /// The rest of the catalogue, with reasons.
    pub excluded_actions: Vec<ExcludedAction>,
    /// The customer's stage, when it was used.
    #[schema(value_type = Option<String>)]
    pub stage: Option<serde_json::Value>,
    /// Why.
    pub explanation: Explanation,
}

/// What `recommend train` reports.
#[derive(Serialize, ToSchema)]
pub struct TrainReport {
    /// The purpose training ran under.
    pub purpose: String,
    /// Customers whose interactions entered.
    pub customers: usize,
    /// Customers the gate left out (no basis) or who had no interactions.
    pub left_out: usize,
    /// Distinct items.
    pub items: usize,
    /// Interactions (customer × item pairs).
    pub interactions: usize,
    /// Whether ALS was trained (it needs at least two customers and two items).
    pub als: bool,
    /// Seconds per ALS iteration (median).
    pub als_iteration_seconds: Option<f64>,
    /// Earliest interaction trained on (RFC 3339).
    pub window_from: Option<String>,
    /// Latest interaction trained on (RFC 3339).
    pub window_to: Option<String>,
    /// When (RFC 3339).
    pub trained_at: String,
}
