//! Purposes (public, for consent banners) and customers' consent (admin keys).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use consentric_engine::{ConsentHistoryEntry, ConsentView, ProfileRef, PurposeView};
use serde::{Deserialize, Serialize};

use crate::auth::AdminKey;
use crate::error::{blocking, ApiError};
use crate::extract::{parse_json, Expected, Json, Path};
use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/purposes", get(purposes))
        .route("/v1/consent/{id}", get(consent).put(set_consent))
        .route("/v1/consent/{id}/history", get(history))
        .route(
            "/v1/consent/{id}/restriction",
            axum::routing::put(restriction),
        )
}

/// The purposes offered.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Purposes {
    #[schema(value_type = Vec<crate::api::PurposeView>)]
    purposes: Vec<PurposeView>,
}

/// Which language a banner wants the texts in.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LanguageQuery {
    /// A language tag (`fr`, `pt-br`); without it, the request's `Accept-Language`.
    lang: Option<String>,
}

/// The declared purposes, with their texts (in the language asked for, where the operator
/// translated them), legal bases, categories and versions. Public: a consent banner reads it.
#[utoipa::path(get, path = "/v1/purposes", tag = "consent", params(LanguageQuery),
    responses((status = 200, body = Purposes)))]
pub(crate) async fn purposes(
    State(engine): State<AppState>,
    headers: axum::http::HeaderMap,
    axum::extract::Query(q): axum::extract::Query<LanguageQuery>,
) -> Json<Purposes> {
    let languages = match q.lang {
        Some(tag) => vec![tag],
        None => accepted_languages(&headers),
    };
    Json(Purposes {
        purposes: engine.purposes_in(&languages),
    })
}

/// The languages `Accept-Language` names, most preferred first (by quality, then order);
/// those refused (`q=0`) and the wildcard left out.
fn accepted_languages(headers: &axum::http::HeaderMap) -> Vec<String> {
    let mut ranked: Vec<(f32, usize, String)> =
        crate::negotiate::weighted(headers, &axum::http::header::ACCEPT_LANGUAGE)
            .enumerate()
            .filter_map(|(i, (tag, q))| {
                let ok = !tag.is_empty()
                    && tag != "*"
                    && tag.len() <= 35
                    && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
                (ok && q > 0.0).then(|| (q, i, tag.to_owned()))
            })
            .take(16)
            .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranked.into_iter().map(|(_, _, tag)| tag).collect()
}

/// A customer's consent now, purpose by purpose, with whether each has a legal basis.
#[utoipa::path(get, path = "/v1/consent/{id}", tag = "consent",
    params(("id" = String, Path, description = "user_id:…, anonymous_id:…, profile:… or a bare id")),
    responses((status = 200, body = crate::api::ConsentView), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn consent(
    _: AdminKey,
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ConsentView>, ApiError> {
    blocking(move || Ok(Json(engine.consent(&ProfileRef::parse(&id)?)?))).await
}

/// Decisions to record: purpose id → `granted` | `denied` | `withdrawn`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsentChange {
    /// At least one: purpose id (as `GET /v1/purposes` lists them) → decision.
    purposes: BTreeMap<String, String>,
}

/// Records consent decisions (all or none), audited, with the request as evidence.
#[utoipa::path(put, path = "/v1/consent/{id}", tag = "consent",
    params(("id" = String, Path, description = "as for GET")),
    request_body = ConsentChange,
    responses((status = 200, body = crate::api::ConsentView), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn set_consent(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ConsentView>, ApiError> {
    // The body itself is the evidence the ledger keeps a hash of.
    let change: ConsentChange = parse_json(&body)?;
    blocking(move || {
        let decisions: Vec<(String, String)> = change.purposes.into_iter().collect();
        let view = engine.set_consent(
            &ProfileRef::parse(&id)?,
            &decisions,
            &format!("key:{}", who.key_id),
            &body,
        )?;
        Ok(Json(view))
    })
    .await
}

/// A customer's consent history.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct History {
    #[schema(value_type = Vec<crate::api::ConsentHistoryEntry>)]
    history: Vec<ConsentHistoryEntry>,
}

/// Every consent decision recorded for a customer, in the order it was written.
#[utoipa::path(get, path = "/v1/consent/{id}/history", tag = "consent",
    params(("id" = String, Path, description = "as for GET /v1/consent/{id}")),
    responses((status = 200, body = History), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn history(
    _: AdminKey,
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<History>, ApiError> {
    blocking(move || {
        Ok(Json(History {
            history: engine.consent_history(&ProfileRef::parse(&id)?)?,
        }))
    })
    .await
}

/// Restriction of processing (GDPR art. 18).
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct RestrictionChange {
    /// `true` restricts processing to `essential` and legal obligations (the data stays
    /// stored); `false` lifts the restriction.
    restricted: bool,
}

/// Restricts a customer's processing, or lifts the restriction. Recorded in the consent ledger
/// and audited.
#[utoipa::path(put, path = "/v1/consent/{id}/restriction", tag = "consent",
    params(("id" = String, Path, description = "as for GET /v1/consent/{id}")),
    request_body = RestrictionChange,
    responses((status = 200, body = crate::api::ConsentView), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn restriction(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Path(id): Path<String>,
    Json(change): Json<RestrictionChange>,
) -> Result<Json<ConsentView>, ApiError> {
    blocking(move || {
        Ok(Json(engine.restrict(
            &ProfileRef::parse(&id)?,
            change.restricted,
            &format!("key:{}", who.key_id),
        )?))
    })
    .await
}

impl Expected for ConsentChange {
    const EXPECTED: &'static str = r#"{"purposes": {"<purpose>": "granted|denied|withdrawn"}}"#;
}

impl Expected for RestrictionChange {
    const EXPECTED: &'static str = r#"{"restricted": true|false}"#;
}
