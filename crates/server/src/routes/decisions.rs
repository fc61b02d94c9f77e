//! Decisions (items, next best action, explanation) and the recommenders behind them;
//! segments and k-means proposals. Admin keys only.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::Router;
use consentric_engine::{
    Decision, ProfileRef, SegmentMembers, SegmentPreview, SegmentProposal, SegmentRefresh,
    SegmentView, TrainReport,
};
use serde::{Deserialize, Serialize};

use crate::auth::AdminKey;
use crate::error::{blocking, ApiError};
use crate::extract::{Json, Path, Query};
use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/decisions/{customer}",
            get(preview_decision).post(decide),
        )
        .route("/v1/recommenders/train", post(train))
        .route("/v1/segments", get(list))
        .route("/v1/segments/proposals", get(propose))
        .route("/v1/segments/refresh", post(refresh))
        .route("/v1/segments/{name}/members", get(members))
        .route(
            "/v1/segments/{name}",
            put(define).get(preview).delete(delete),
        )
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecideQuery {
    /// Where the answer will be shown (`home`, `cart`, `email.weekly`); default `default`.
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    placement: Option<String>,
    /// Items wanted (1 to `[personalize] max_limit`).
    #[param(minimum = 1)]
    limit: Option<u32>,
}

/// Makes and records a decision: items, the next best action and an explanation for a
/// customer. Personal only with a basis for the personalisation purpose, otherwise popular
/// items and stage-free actions, and the explanation says so. The chosen action counts against
/// its caps and cooldowns; every decision is audited (`decision.made`).
#[utoipa::path(post, path = "/v1/decisions/{customer}", tag = "decisions", operation_id = "decide",
    params(("customer" = String, Path, description = "user_id:…, anonymous_id:…, profile:… or a bare id"), DecideQuery),
    responses((status = 200, body = crate::api::Decision),
        (status = 400, body = crate::error::ErrorBody, description = "bad placement or limit"),
        (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn decide(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Path(customer): Path<String>,
    Query(q): Query<DecideQuery>,
) -> Result<Json<Decision>, ApiError> {
    run_decision(engine, who.key_id, customer, q, Mode::Record).await
}

/// The decision a `POST` would make now, without recording it: no frequency cap or cooldown
/// is spent and no action is recorded. Safe to prefetch and retry; still audited as a read of
/// personal data (`decision.previewed`).
#[utoipa::path(get, path = "/v1/decisions/{customer}", tag = "decisions", operation_id = "preview_decision",
    params(("customer" = String, Path, description = "user_id:…, anonymous_id:…, profile:… or a bare id"), DecideQuery),
    responses((status = 200, body = crate::api::Decision),
        (status = 400, body = crate::error::ErrorBody, description = "bad placement or limit"),
        (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn preview_decision(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Path(customer): Path<String>,
    Query(q): Query<DecideQuery>,
) -> Result<Json<Decision>, ApiError> {
    run_decision(engine, who.key_id, customer, q, Mode::Preview).await
}

#[derive(Clone, Copy)]
enum Mode {
    Record,
    Preview,
}

async fn run_decision(
    engine: AppState,
    key_id: String,
    customer: String,
    q: DecideQuery,
    mode: Mode,
) -> Result<Json<Decision>, ApiError> {
    let quick = engine.decisions_are_quick();
    let decide = move || {
        let placement = q.placement.as_deref().unwrap_or("default");
        let who = ProfileRef::parse(&customer)?;
        let limit = q.limit.map(|l| l as usize);
        let actor = format!("key:{key_id}");
        Ok(Json(match mode {
            Mode::Record => engine.decide(&who, placement, limit, &actor)?,
            Mode::Preview => engine.preview_decision(&who, placement, limit, &actor)?,
        }))
    };
    // A decision is a fraction of a millisecond of work, and handing it to a blocking thread
    // and back would add a quarter to it; so it runs here unless its write could keep this
    // worker waiting (a slow disk, a large or long write holding the writer), which would
    // hold up other requests. A long write that begins after this check still delays the
    // decisions already running here, at most one per worker.
    if !quick {
        return blocking(decide).await;
    }
    // A panic here would otherwise unwind through the connection's task: answer 500 and log
    // it, as `blocking` does for a panic on its thread.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decide)).unwrap_or_else(|_| {
        tracing::error!("a decision panicked");
        Err(ApiError::internal())
    })
}

/// Trains popularity, item-kNN and ALS on the customers with a basis for the personalisation
/// purpose and decides with them from now on. Audited.
#[utoipa::path(post, path = "/v1/recommenders/train", tag = "decisions",
    responses((status = 200, body = crate::api::TrainReport)), security(("bearer" = [])))]
pub(crate) async fn train(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
) -> Result<Json<TrainReport>, ApiError> {
    blocking(move || {
        Ok(Json(
            engine.train_recommenders(&format!("key:{}", who.key_id))?,
        ))
    })
    .await
}

/// Segments.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Segments {
    #[schema(value_type = Vec<crate::api::SegmentView>)]
    segments: Vec<SegmentView>,
}

/// Every segment definition.
#[utoipa::path(get, path = "/v1/segments", tag = "segments", operation_id = "list_segments",
    responses((status = 200, body = Segments)), security(("bearer" = [])))]
pub(crate) async fn list(
    _: AdminKey,
    State(engine): State<AppState>,
) -> Result<Json<Segments>, ApiError> {
    blocking(move || {
        Ok(Json(Segments {
            segments: engine.segments()?,
        }))
    })
    .await
}

/// Defines (or redefines) a segment: the body is its condition, e.g.
/// `{"all": [{"field": "stage", "op": "eq", "value": "retention"}, {"field": "orders", "op": "gte", "value": 3}]}`.
/// Sensitive traits are refused.
#[utoipa::path(put, path = "/v1/segments/{name}", tag = "segments",
    params(("name" = String, Path)),
    request_body(content = Object, description = "the condition"),
    responses((status = 200, body = crate::api::SegmentView), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn define(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Path(name): Path<String>,
    Json(definition): Json<serde_json::Value>,
) -> Result<Json<SegmentView>, ApiError> {
    blocking(move || {
        Ok(Json(engine.define_segment(
            &name,
            &definition,
            &format!("key:{}", who.key_id),
        )?))
    })
    .await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct PreviewQuery {
    /// Members to list (default 20, at most 1000).
    limit: Option<u32>,
}

/// A segment's size over the customers with a basis for the personalisation purpose, and its
/// first members. Audited.
#[utoipa::path(get, path = "/v1/segments/{name}", tag = "segments",
    params(("name" = String, Path), PreviewQuery),
    responses((status = 200, body = crate::api::SegmentPreview), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn preview(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<PreviewQuery>,
) -> Result<Json<SegmentPreview>, ApiError> {
    let limit = q.limit.map_or(20, |l| l as usize).min(1000);
    blocking(move || {
        Ok(Json(engine.preview_segment(
            &name,
            limit,
            &format!("key:{}", who.key_id),
        )?))
    })
    .await
}

/// Deletes a segment.
#[utoipa::path(delete, path = "/v1/segments/{name}", tag = "segments",
    params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn delete(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        engine.delete_segment(&name, &format!("key:{}", who.key_id))?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProposeQuery {
    /// Largest k tried (2 to 12; default 8).
    max_k: Option<u32>,
}

/// Clusters of customers by behaviour (k-means, k by silhouette), to name and define as
/// segments. Audited.
#[utoipa::path(get, path = "/v1/segments/proposals", tag = "segments",
    params(ProposeQuery),
    responses((status = 200, body = crate::api::SegmentProposal)), security(("bearer" = [])))]
pub(crate) async fn propose(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Query(q): Query<ProposeQuery>,
) -> Result<Json<SegmentProposal>, ApiError> {
    let max_k = q.max_k.map_or(8, |k| k as usize).clamp(2, 12);
    blocking(move || {
        Ok(Json(
            engine.propose_segments(max_k, &format!("key:{}", who.key_id))?,
        ))
    })
    .await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct MembersQuery {
    /// Members to list (default 100, at most 10,000).
    limit: Option<u32>,
}

/// A segment's members as kept up to date after ingest and consent changes (`serve` refreshes
/// them every few seconds): its size and the longest members first.
#[utoipa::path(get, path = "/v1/segments/{name}/members", tag = "segments",
    params(("name" = String, Path), MembersQuery),
    responses((status = 200, body = crate::api::SegmentMembers), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn members(
    _: AdminKey,
    State(engine): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<MembersQuery>,
) -> Result<Json<SegmentMembers>, ApiError> {
    let limit = q.limit.map_or(100, |l| l as usize).min(10_000);
    blocking(move || Ok(Json(engine.segment_members(&name, limit)?))).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshQuery {
    /// Every customer, not only those written to since the last refresh.
    everyone: Option<bool>,
}

/// Re-evaluates segment membership now (of customers written to since the last refresh, or
/// of everyone). Audited.
#[utoipa::path(post, path = "/v1/segments/refresh", tag = "segments",
    params(RefreshQuery),
    responses((status = 200, body = crate::api::SegmentRefresh)), security(("bearer" = [])))]
pub(crate) async fn refresh(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Query(q): Query<RefreshQuery>,
) -> Result<Json<SegmentRefresh>, ApiError> {
    blocking(move || {
        Ok(Json(engine.refresh_segments(
            q.everyone.unwrap_or(false),
            &format!("key:{}", who.key_id),
        )?))
    })
    .await
}
