//! API keys (admin): list without secrets, revoke, and say whether a write key is a browser or
//! a server key. Keys are created with the CLI, which shows the secret once.

use axum::extract::State;
use axum::routing::{delete, get, put};
use axum::Router;
use consentric_engine::{KeyInfo, KeyKind};
use serde::{Deserialize, Serialize};

use crate::auth::AdminKey;
use crate::error::{blocking, ApiError};
use crate::extract::{Expected, Json, Path};
use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/keys", get(list))
        .route("/v1/keys/{id}", delete(revoke))
        .route("/v1/keys/{id}/kind", put(set_kind))
}

/// Keys.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Keys {
    #[schema(value_type = Vec<crate::api::KeyInfo>)]
    keys: Vec<KeyInfo>,
}

/// Every key, oldest first, never with its secret (admin).
#[utoipa::path(get, path = "/v1/keys", tag = "keys", operation_id = "list_keys",
    responses((status = 200, body = Keys)), security(("bearer" = [])))]
pub(crate) async fn list(
    AdminKey(_): AdminKey,
    State(engine): State<AppState>,
) -> Result<Json<Keys>, ApiError> {
    blocking(move || {
        Ok(Json(Keys {
            keys: engine.keys()?,
        }))
    })
    .await
}

/// Revokes a key (admin): refused at once by this server, and within a second by every other
/// process on the same database. Audited; revoking a revoked key changes nothing.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "the key's public id")),
    responses((status = 200, body = crate::api::KeyInfo), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn revoke(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<KeyInfo>, ApiError> {
    blocking(move || {
        Ok(Json(
            engine.revoke_key(&id, &format!("key:{}", who.key_id))?,
        ))
    })
    .await
}

/// A key's kind, as asked.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KindRequest {
    /// `browser` or `server`.
    #[schema(pattern = "^(browser|server)$")]
    kind: String,
}

/// Makes a key a browser key (public) or a server key (secret) (admin). Audited.
#[utoipa::path(put, path = "/v1/keys/{id}/kind", tag = "keys",
    params(("id" = String, Path, description = "the key's public id")),
    request_body = KindRequest,
    responses((status = 200, body = crate::api::KeyInfo), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn set_kind(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Json(r): Json<KindRequest>,
) -> Result<Json<KeyInfo>, ApiError> {
    blocking(move || {
        let kind = KeyKind::parse(&r.kind)?;
        Ok(Json(engine.set_key_kind(
            &id,
            kind,
            &format!("key:{}", who.key_id),
        )?))
    })
    .await
}

impl Expected for KindRequest {
    const EXPECTED: &'static str = r#"{"kind": "browser|server"}"#;
}
