//! Reading profiles: admin keys only.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use consentric_engine::{
    ErasureReceipt, IdentityGraph, ProfileRef, ProfileView, PurposeScopedProfile, StoredEventView,
};
use serde::{Deserialize, Serialize};

use crate::auth::AdminKey;
use crate::error::{blocking, ApiError};
use crate::extract::{Expected, Json, Path, Query};
use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/profiles/{id}", get(profile).delete(erase))
        .route("/v1/profiles/{id}/events", get(events))
        .route("/v1/profiles/{id}/decisions", get(decisions))
        .route("/v1/profiles/{id}/export", get(export))
        .route(
            "/v1/profiles/{id}/traits/{name}",
            axum::routing::put(rectify),
        )
        .route("/v1/profiles/{id}/identities", get(identities))
        .route("/v1/profiles/{id}/view", get(view))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ViewQuery {
    /// The purpose the data will be used for.
    purpose: String,
}

/// What one purpose may see of a profile: the gate opens a grant for (customer, purpose, now)
/// and only traits in the categories it permits are returned. Audited.
#[utoipa::path(get, path = "/v1/profiles/{id}/view", tag = "profiles",
    params(("id" = String, Path, description = "as for /v1/profiles/{id}"), ViewQuery),
    responses((status = 200, body = crate::api::PurposeScopedProfile),
        (status = 400, body = crate::error::ErrorBody, description = "unknown purpose"),
        (status = 403, body = crate::error::ErrorBody, description = "no legal basis for this purpose"),
        (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn view(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ViewQuery>,
) -> Result<Json<PurposeScopedProfile>, ApiError> {
    blocking(move || {
        let actor = format!("key:{}", who.key_id);
        Ok(Json(engine.profile_for_purpose(
            &ProfileRef::parse(&id)?,
            &q.purpose,
            &actor,
        )?))
    })
    .await
}

/// A profile: identities, traits with provenance, counters, merges. `id` is `user_id:…`,
/// `anonymous_id:…`, `profile:…`, or a bare id (tried as user id, anonymous id, profile id).
#[utoipa::path(get, path = "/v1/profiles/{id}", tag = "profiles",
    params(("id" = String, Path, description = "user_id:…, anonymous_id:…, profile:… or a bare id")),
    responses((status = 200, body = crate::api::ProfileView), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn profile(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ProfileView>, ApiError> {
    blocking(move || {
        let actor = format!("key:{}", who.key_id);
        Ok(Json(engine.profile(&ProfileRef::parse(&id)?, &actor)?))
    })
    .await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventsQuery {
    /// At most this many, newest first (1..1000, default 100).
    limit: Option<u32>,
}

/// A page of stored events.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct EventsPage {
    #[schema(value_type = Vec<crate::api::StoredEventView>)]
    events: Vec<StoredEventView>,
}

/// A profile's latest events, newest first, in Segment JSON.
#[utoipa::path(get, path = "/v1/profiles/{id}/events", tag = "profiles",
    params(("id" = String, Path, description = "as for /v1/profiles/{id}"), EventsQuery),
    responses((status = 200, body = EventsPage), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn events(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<EventsPage>, ApiError> {
    blocking(move || {
        let actor = format!("key:{}", who.key_id);
        let events = engine.events(&ProfileRef::parse(&id)?, q.limit.unwrap_or(100), &actor)?;
        Ok(Json(EventsPage { events }))
    })
    .await
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct DecisionsPage {
    #[schema(value_type = Vec<crate::api::LoggedDecision>)]
    decisions: Vec<consentric_engine::LoggedDecision>,
}

/// A profile's decision log, newest first: each recorded decision (`POST /v1/decisions/…`),
/// with its items, action and explanation as made.
#[utoipa::path(get, path = "/v1/profiles/{id}/decisions", tag = "profiles",
    operation_id = "decision_log",
    params(("id" = String, Path, description = "as for /v1/profiles/{id}"), EventsQuery),
    responses((status = 200, body = DecisionsPage), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn decisions(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<DecisionsPage>, ApiError> {
    blocking(move || {
        let actor = format!("key:{}", who.key_id);
        let decisions =
            engine.decision_log(&ProfileRef::parse(&id)?, q.limit.unwrap_or(100), &actor)?;
        Ok(Json(DecisionsPage { decisions }))
    })
    .await
}

/// The identity graph around a profile.
#[utoipa::path(get, path = "/v1/profiles/{id}/identities", tag = "profiles",
    params(("id" = String, Path, description = "as for /v1/profiles/{id}")),
    responses((status = 200, body = crate::api::IdentityGraph), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn identities(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<IdentityGraph>, ApiError> {
    blocking(move || {
        let actor = format!("key:{}", who.key_id);
        Ok(Json(
            engine.identity_graph(&ProfileRef::parse(&id)?, &actor)?,
        ))
    })
    .await
}

/// Erases a customer (GDPR art. 17, CCPA delete): their data keys are destroyed, every row
/// about them deleted, their identities kept only as tombstones (keyed hashes) so late events
/// are dropped. Returns a receipt signed with the deployment's Ed25519 key; asking again
/// returns the same receipt.
#[utoipa::path(delete, path = "/v1/profiles/{id}", tag = "profiles",
    params(("id" = String, Path, description = "as for /v1/profiles/{id}")),
    responses((status = 200, body = crate::api::ErasureReceipt), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn erase(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ErasureReceipt>, ApiError> {
    blocking(move || {
        let actor = format!("key:{}", who.key_id);
        Ok(Json(engine.erase(&ProfileRef::parse(&id)?, &actor)?))
    })
    .await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportQuery {
    /// `json` (one document, the default) or `zip` (CSV files).
    #[param(pattern = "^(json|zip)$")]
    format: Option<String>,
}

/// Everything held about a customer (GDPR art. 15 and 20, CCPA right to know): profile,
/// identities and graph, every event, consent history, and every audit record about them — as
/// one JSON document or a ZIP of CSV files, streamed as it is read. Audited.
#[utoipa::path(get, path = "/v1/profiles/{id}/export", tag = "profiles",
    params(("id" = String, Path, description = "as for /v1/profiles/{id}"), ExportQuery),
    responses((status = 200, description = "the export: JSON, or with `format=zip` a ZIP of CSV files",
            content((Object = "application/json"), ("application/zip"))),
        (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn export(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<axum::response::Response, ApiError> {
    let zip = match q.format.as_deref() {
        None | Some("json") => false,
        Some("zip") => true,
        Some(other) => {
            return Err(ApiError::new(
                &crate::codes::INVALID_FIELD,
                format!("format must be json or zip, not `{other}`"),
            )
            .with_field("format"))
        }
    };
    let target = ProfileRef::parse(&id)?;
    // Not found is answered before the stream starts; after that the status is sent.
    {
        let (engine, target) = (engine.clone(), target.clone());
        blocking(move || Ok(engine.find_profile(&target)?)).await?;
    }
    let actor = format!("key:{}", who.key_id);
    Ok(crate::stream::stream_response(
        if zip {
            "application/zip"
        } else {
            "application/json"
        },
        if zip { Some("export.zip") } else { None },
        move |out| {
            if zip {
                engine.export_zip(&target, &actor, out)
            } else {
                engine.export(&target, &actor, out)
            }
            .map(drop)
        },
    ))
}

/// A corrected value.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct Correction {
    /// The value the trait should hold.
    value: serde_json::Value,
}

/// Rectification (GDPR art. 16): corrects one of a customer's traits. The correction is dated
/// now, so no earlier event rolls it back; audited.
#[utoipa::path(put, path = "/v1/profiles/{id}/traits/{name}", tag = "profiles",
    params(("id" = String, Path, description = "as for /v1/profiles/{id}"),
        ("name" = String, Path, description = "the trait")),
    request_body = Correction,
    responses((status = 200, body = crate::api::ProfileView), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn rectify(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    Json(c): Json<Correction>,
) -> Result<Json<ProfileView>, ApiError> {
    blocking(move || {
        let actor = format!("key:{}", who.key_id);
        Ok(Json(engine.rectify(
            &ProfileRef::parse(&id)?,
            &name,
            &c.value,
            &actor,
        )?))
    })
    .await
}

impl Expected for Correction {
    const EXPECTED: &'static str = r#"{"value": …}"#;
}
