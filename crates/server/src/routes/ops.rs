//! Operations: liveness, readiness and metrics. No key needed.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use crate::error::{blocking, ApiError};
use crate::extract::Json;
use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        // Browsers ask for it on every page: an empty answer, not a 404 in their console.
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive")))]
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The database answers, and (on PostgreSQL) this node hears the changes other nodes make:
/// until it does, what it keeps in memory may be stale, and a load balancer should send it
/// nothing.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "ready"), (status = 503, body = crate::error::ErrorBody, description = "the database does not answer, or this node does not hear other nodes' changes")))]
pub(crate) async fn readyz(State(engine): State<AppState>) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        engine.ready().map_err(|e| {
            tracing::warn!(error = %e, "not ready");
            ApiError::new(&crate::codes::NOT_READY, "the database does not answer")
        })?;
        if !engine.following() {
            return Err(ApiError::new(
                &crate::codes::NOT_READY,
                "this node does not hear other nodes' changes yet (erasures, revocations, models)",
            ));
        }
        Ok(Json(json!({
            "status": "ready",
            "backend": format!("{:?}", engine.backend()).to_lowercase(),
            "node": engine.node(),
        })))
    })
    .await
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "OpenMetrics text format (which Prometheus reads)", content_type = "application/openmetrics-text")))]
pub(crate) async fn metrics(State(engine): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        engine.metrics().render(),
    )
}
