//! Data-subject requests (admin keys): file, verify with the customer's one-time code, extend,
//! process, list (overdue ones too).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use consentric_engine::{DsrKind, DsrView, ProfileRef, Regime};
use consentric_model::{Identity, IdentityKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::AdminKey;
use crate::error::{blocking, ApiError};
use crate::extract::{Expected, Json, Path, Query};
use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/dsr", get(list).post(file))
        .route("/v1/dsr/{id}", get(show))
        .route("/v1/dsr/{id}/verify", post(verify))
        .route("/v1/dsr/{id}/extend", post(extend))
        .route("/v1/dsr/{id}/process", post(process))
}

/// A new request.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct NewRequest {
    #[schema(value_type = crate::api::DsrKind)]
    kind: DsrKind,
    #[schema(value_type = crate::api::Regime)]
    regime: Regime,
    /// `user_id:…` or `anonymous_id:…` (a bare id is tried as a user id, then an anonymous id).
    #[schema(min_length = 1, pattern = "\\S")]
    identity: String,
    /// Where the one-time code is sent (at most 320 bytes, no control characters).
    #[schema(
        min_length = 1,
        max_length = 320,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    contact: String,
}

/// Files a request and sends the customer a one-time code.
#[utoipa::path(post, path = "/v1/dsr", tag = "dsr", request_body = NewRequest,
    responses((status = 201, body = crate::api::DsrView), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody, description = "no customer with this identity")),
    security(("bearer" = [])))]
pub(crate) async fn file(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Json(req): Json<NewRequest>,
) -> Result<(StatusCode, Json<DsrView>), ApiError> {
    blocking(move || {
        let identity = match ProfileRef::parse(&req.identity)? {
            ProfileRef::Identity(i) => i,
            ProfileRef::Any(raw) => {
                let as_kind = |kind| Identity {
                    kind,
                    value: raw.clone(),
                };
                let user = as_kind(IdentityKind::UserId);
                let anon = as_kind(IdentityKind::AnonymousId);
                if engine
                    .find_profile(&ProfileRef::Identity(user.clone()))
                    .is_ok()
                {
                    user
                } else {
                    anon
                }
            }
            ProfileRef::Profile(_) => {
                return Err(ApiError::new(
                    &crate::codes::INVALID_FIELD,
                    "name the customer by an identity they know (user id, anonymous id)",
                )
                .with_field("identity"))
            }
        };
        let view = engine.dsr_request(
            req.kind,
            req.regime,
            &identity,
            &req.contact,
            &format!("key:{}", who.key_id),
        )?;
        Ok((StatusCode::CREATED, Json(view)))
    })
    .await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only open requests past their deadline.
    overdue: Option<bool>,
}

/// Requests.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Requests {
    #[schema(value_type = Vec<crate::api::DsrView>)]
    requests: Vec<DsrView>,
}

/// Every request, oldest deadline first (or only the overdue ones).
#[utoipa::path(get, path = "/v1/dsr", tag = "dsr", operation_id = "list_requests", params(ListQuery),
    responses((status = 200, body = Requests)), security(("bearer" = [])))]
pub(crate) async fn list(
    _: AdminKey,
    State(engine): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Requests>, ApiError> {
    blocking(move || {
        Ok(Json(Requests {
            requests: engine.dsr_list(q.overdue.unwrap_or(false))?,
        }))
    })
    .await
}

/// One request.
#[utoipa::path(get, path = "/v1/dsr/{id}", tag = "dsr",
    params(("id" = String, Path, description = "dsr_…")),
    responses((status = 200, body = crate::api::DsrView), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn show(
    _: AdminKey,
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DsrView>, ApiError> {
    blocking(move || Ok(Json(engine.dsr_show(&id)?))).await
}

/// The customer's one-time code.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct Code {
    code: String,
}

/// Verifies a request with the code sent to the customer.
#[utoipa::path(post, path = "/v1/dsr/{id}/verify", tag = "dsr", request_body = Code,
    params(("id" = String, Path, description = "dsr_…")),
    responses((status = 200, body = crate::api::DsrView), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn verify(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Json(c): Json<Code>,
) -> Result<Json<DsrView>, ApiError> {
    blocking(move || {
        Ok(Json(engine.dsr_verify(
            &id,
            &c.code,
            &format!("key:{}", who.key_id),
        )?))
    })
    .await
}

/// An extension of the deadline.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct Extension {
    days: i64,
    reason: String,
}

/// Extends a request's deadline, within the law's limit.
#[utoipa::path(post, path = "/v1/dsr/{id}/extend", tag = "dsr", request_body = Extension,
    params(("id" = String, Path, description = "dsr_…")),
    responses((status = 200, body = crate::api::DsrView), (status = 400, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn extend(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Json(x): Json<Extension>,
) -> Result<Json<DsrView>, ApiError> {
    blocking(move || {
        Ok(Json(engine.dsr_extend(
            &id,
            x.days,
            &x.reason,
            &format!("key:{}", who.key_id),
        )?))
    })
    .await
}

/// What processing answered.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Processed {
    #[schema(value_type = crate::api::DsrView)]
    request: DsrView,
    /// For an access request, the export.
    #[schema(value_type = Option<Object>)]
    export: Option<Value>,
}

/// Carries out a verified request (again: the same answer, the work done once).
#[utoipa::path(post, path = "/v1/dsr/{id}/process", tag = "dsr",
    params(("id" = String, Path, description = "dsr_…")),
    responses((status = 200, body = Processed), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn process(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Processed>, ApiError> {
    blocking(move || {
        let mut doc = Vec::new();
        let request = engine.dsr_process(&id, &format!("key:{}", who.key_id), &mut doc)?;
        let export = if doc.is_empty() {
            None
        } else {
            serde_json::from_slice(&doc).ok()
        };
        Ok(Json(Processed { request, export }))
    })
    .await
}

impl Expected for NewRequest {
    const EXPECTED: &'static str = r#"{"kind":"access|erasure|restriction|objection","regime":"gdpr|ccpa","identity":"user_id:…","contact":"…"}"#;
}

impl Expected for Code {
    const EXPECTED: &'static str = r#"{"code":"123456"}"#;
}

impl Expected for Extension {
    const EXPECTED: &'static str = r#"{"days":30,"reason":"…"}"#;
}
