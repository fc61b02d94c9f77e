//! The shapes of analytics answers in the OpenAPI document. The engine returns domain values and the
//! handlers serialise them as they are; these twins only describe them (Schemathesis checks in
//! CI that every answer matches), so the engine knows nothing of the HTTP contract.
#![allow(dead_code)]

use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A budget as shown to its analyst.
#[derive(Serialize, ToSchema)]
pub struct BudgetView {
    /// The data set.
    pub dataset: String,
    /// ρ granted.
    pub granted_rho: f64,
    /// ρ spent.
    pub spent_rho: f64,
    /// ρ remaining.
    pub remaining_rho: f64,
    /// The (ε, δ = 10⁻⁶) guarantee of what has been spent.
    pub spent_epsilon: f64,
    /// δ of `spent_epsilon`.
    pub delta: f64,
}

/// One step of a funnel.
#[derive(Serialize, ToSchema)]
pub struct FunnelStep {
    /// The stage.
    pub stage: String,
    /// Customers who ever entered it (noisy).
    pub customers: i64,
}

/// A noisy release.
#[derive(Serialize, ToSchema)]
pub struct Release {
    /// The query as asked.
    #[schema(value_type = Object)]
    pub query: serde_json::Value,
    /// The released number (count, sum, mean, quantile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The released counts per category (histograms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bins: Option<BTreeMap<String, i64>>,
    /// The selected categories, largest first (top-k; counts are not released).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selected: Option<Vec<String>>,
    /// Customers who entered each stage, in the funnel's order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub funnel: Option<Vec<FunnelStep>>,
    /// Per cohort month, customers who purchased 0, 1, … months after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<BTreeMap<String, Vec<i64>>>,
    /// The mechanism: `discrete_laplace`, `discrete_gaussian` (additive noise),
    /// `permute_and_flip` or `exponential` (selections).
    pub mechanism: String,
    /// The additive noise (per number released); absent for selections.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub noise: Option<serde_json::Value>,
    /// Half-width of the 95% interval of the noise, in the result's units (each number is
    /// within ± this of the exact value with probability 95%); absent for means and
    /// selections.
    pub interval95: Option<f64>,
    /// ρ this release cost.
    pub spent_rho: f64,
    /// Its pure ε, when asked as ε.
    pub epsilon: Option<f64>,
    /// The analyst's budget after it.
    pub budget: BudgetView,
    /// Whose privacy is protected: one customer (all of their rows).
    pub unit_of_privacy: String,
    /// Bins each customer contributes to at most; the guarantee is for all of them together.
    pub rows_per_customer: u32,
}

/// `POST /v1/analytics/query`, as sent.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// `count`, `sum`, `mean`, `quantile`, `histogram`, `top_k`, `funnel` or `retention`.
    pub query: String,
    /// For `sum`, `mean` and `quantile`: `orders`, `revenue` or `events` (per customer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measure: Option<String>,
    /// For `sum`, `mean` and `quantile`: each customer's value is clamped into `[low, high]`
    /// (a quantile is chosen among evenly spaced candidates across it).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(min_items = 2, max_items = 2)]
    pub bounds: Option<[f64; 2]>,
    /// For `quantile`: which (0.5, the default, is the median).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// For `quantile`: how many equal steps divide the bounds (default 100; candidates are the
    /// step boundaries).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<u32>,
    /// For `histogram` and `top_k`: `stage`, `cohort` (month of first event), `segment`,
    /// `event` (customers who sent each event) or `trait.NAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The categories, declared in advance (the bins must not depend on the data): months
    /// (`YYYY-MM`) for `cohort` and `retention`, segment names, event names, trait values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    /// For `top_k`: how many categories to select.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<u32>,
    /// For `funnel`: the stages in order (default acquisition → advocacy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<String>>,
    /// For `retention`: months after the cohort month to report (default 6, at most 24).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub periods: Option<u32>,
    /// Where a customer can fall in several bins (`segment`, `event`, `funnel`,
    /// `retention`): the most each contributes to; the rest are dropped. The noise grows with
    /// it. Default: every bin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<u32>,
    /// Count, sum, mean or quantile only customers in this lifecycle stage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Pure ε-DP (discrete Laplace noise, or permute-and-flip for selections).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epsilon: Option<f64>,
    /// ρ-zCDP (discrete Gaussian noise, or the Gumbel exponential mechanism).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rho: Option<f64>,
    /// The data set (default `customers`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
}
