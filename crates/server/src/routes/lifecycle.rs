//! Lifecycle: one customer's stage and scores, the population's funnel, cohorts and models,
//! and fitting and recomputing on demand. Admin keys only.

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use consentric_engine::{
    CustomerLifecycle, FitReport, LifecycleSummary, ProfileRef, RecomputeReport,
};

use crate::auth::AdminKey;
use crate::error::{blocking, ApiError};
use crate::extract::{Json, Path};
use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/customers/{id}/lifecycle", get(customer))
        .route("/v1/lifecycle/summary", get(summary))
        .route("/v1/lifecycle/fit", post(fit))
        .route("/v1/lifecycle/recompute", post(recompute))
}

/// A customer's stage, its history with the rule behind each change, RFM, P(alive), expected
/// purchases, CLV and churn risk, computed under the stage purpose (`personalization` by
/// default). Audited.
#[utoipa::path(get, path = "/v1/customers/{id}/lifecycle", tag = "lifecycle",
    params(("id" = String, Path, description = "user_id:…, anonymous_id:…, profile:… or a bare id")),
    responses((status = 200, body = crate::api::CustomerLifecycle),
        (status = 403, body = crate::error::ErrorBody, description = "no legal basis for the stage purpose"),
        (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn customer(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CustomerLifecycle>, ApiError> {
    blocking(move || {
        let actor = format!("key:{}", who.key_id);
        Ok(Json(
            engine.customer_lifecycle(&ProfileRef::parse(&id)?, &actor)?,
        ))
    })
    .await
}

/// The funnel (customers per stage, now and at each month's end), retention by acquisition
/// month and the fitted models, over customers with a basis for the analytics purpose; the
/// rest are counted as left out. Audited.
#[utoipa::path(get, path = "/v1/lifecycle/summary", tag = "lifecycle",
    responses((status = 200, body = crate::api::LifecycleSummary)),
    security(("bearer" = [])))]
pub(crate) async fn summary(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
) -> Result<Json<LifecycleSummary>, ApiError> {
    blocking(move || {
        Ok(Json(
            engine.lifecycle_summary(&format!("key:{}", who.key_id))?,
        ))
    })
    .await
}

/// Fits BG/NBD, Pareto/NBD and Gamma-Gamma on the store's purchases (analytics purpose) and
/// keeps them for scoring. Audited.
#[utoipa::path(post, path = "/v1/lifecycle/fit", tag = "lifecycle",
    responses((status = 200, body = crate::api::FitReport),
        (status = 409, body = crate::error::ErrorBody, description = "nothing to fit on, or a model the data does not identify")),
    security(("bearer" = [])))]
pub(crate) async fn fit(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
) -> Result<Json<FitReport>, ApiError> {
    blocking(move || Ok(Json(engine.lifecycle_fit(&format!("key:{}", who.key_id))?))).await
}

/// Places every customer afresh by the stage rules. Audited.
#[utoipa::path(post, path = "/v1/lifecycle/recompute", tag = "lifecycle",
    responses((status = 200, body = crate::api::RecomputeReport)),
    security(("bearer" = [])))]
pub(crate) async fn recompute(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
) -> Result<Json<RecomputeReport>, ApiError> {
    blocking(move || {
        Ok(Json(
            engine.lifecycle_recompute(&format!("key:{}", who.key_id))?,
        ))
    })
    .await
}
