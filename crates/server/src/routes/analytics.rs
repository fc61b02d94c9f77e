//! Differentially private analytics: noisy aggregates for analyst keys, within budgets that
//! admin keys grant.

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use consentric_engine::analytics::{BudgetView, QueryRequest, Release};
use serde::{Deserialize, Serialize};

use crate::auth::{AdminKey, AnalystKey};
use crate::error::{blocking, ApiError};
use crate::extract::{Expected, Json};
use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/analytics/query", post(query))
        .route("/v1/analytics/budget", get(budget))
        .route("/v1/analytics/grants", post(grant))
}

/// A noisy count, sum, mean or histogram over the customers with a basis for the analytics
/// purpose, with the noise it carries, its 95% interval and the budget left. Charged before
/// any noise is drawn; refused (403 `budget_exceeded`, nothing spent) beyond the budget.
#[utoipa::path(post, path = "/v1/analytics/query", tag = "analytics",
    request_body = crate::api::QueryRequest,
    responses((status = 200, body = crate::api::Release), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody, description = "budget exceeded, or not an analyst key")),
    security(("bearer" = [])))]
pub(crate) async fn query(
    AnalystKey(who): AnalystKey,
    State(engine): State<AppState>,
    Json(request): Json<QueryRequest>,
) -> Result<Json<Release>, ApiError> {
    blocking(move || Ok(Json(engine.analytics_query(&who.key_id, &request)?))).await
}

/// The calling key's budgets.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Budgets {
    #[schema(value_type = Vec<crate::api::BudgetView>)]
    budgets: Vec<BudgetView>,
}

/// The calling analyst's budgets: granted, spent, remaining, and what has been spent as
/// (ε, δ).
#[utoipa::path(get, path = "/v1/analytics/budget", tag = "analytics",
    responses((status = 200, body = Budgets)), security(("bearer" = [])))]
pub(crate) async fn budget(
    AnalystKey(who): AnalystKey,
    State(engine): State<AppState>,
) -> Result<Json<Budgets>, ApiError> {
    blocking(move || {
        Ok(Json(Budgets {
            budgets: engine.analytics_budget(&who.key_id)?,
        }))
    })
    .await
}

/// More budget for an analyst key on a data set.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GrantRequest {
    /// The analyst's key id.
    analyst: String,
    /// The data set (`customers`).
    #[schema(pattern = "^customers$")]
    dataset: Option<String>,
    /// ρ to add: from 10⁻¹² (the budget's unit; less rounds down to nothing) to 1000.
    #[schema(minimum = 0.000000000001, maximum = 1000.0)]
    rho: f64,
}

/// Grants an analyst key more ρ on a data set (admin keys). Audited.
#[utoipa::path(post, path = "/v1/analytics/grants", tag = "analytics",
    request_body = GrantRequest,
    responses((status = 200, body = crate::api::BudgetView), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn grant(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Json(g): Json<GrantRequest>,
) -> Result<Json<BudgetView>, ApiError> {
    blocking(move || {
        Ok(Json(engine.grant_budget(
            &g.analyst,
            g.dataset.as_deref().unwrap_or("customers"),
            g.rho,
            &format!("key:{}", who.key_id),
        )?))
    })
    .await
}

impl Expected for QueryRequest {
    const EXPECTED: &'static str =
        "{\"query\": \"count|sum|mean|histogram|…\", \"epsilon\" or \"rho\", …}";
}

impl Expected for GrantRequest {
    const EXPECTED: &'static str = "{\"analyst\": \"<key id>\", \"rho\": 1.0}";
}
