//! The clean room over HTTP. Admin keys invite partners, join invitations and run them, and
//! read sessions; a partner reaches a session's three rounds with its session token (as a
//! Bearer token) instead of an API key.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use consentric_engine::cleanroom::{
    GuestBlinded, GuestSum, HostBlinded, HostCount, Invitation, Output, SessionView,
};
use serde::{Deserialize, Serialize};

use crate::auth::AdminKey;
use crate::error::{blocking, ApiError};
use crate::extract::{parse_json, Expected, Json, Path};
use crate::partner::PartnerError;
use crate::AppState;

/// Largest clean-room message: a million blinded identifiers, or about 300,000 encrypted values.
/// A round's body is read only after its session token is checked, and then no more than the
/// session can use (see [`admitted_body`]).
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// The body of a partner's round, read only once the session token is checked, and only up to
/// what the session can use: without the token, nothing of the body is read.
async fn admitted_body(
    engine: &AppState,
    id: &str,
    token: &str,
    body: axum::body::Body,
) -> Result<Bytes, ApiError> {
    let limit = {
        let (engine, id, token) = (engine.clone(), id.to_owned(), token.to_owned());
        blocking(move || Ok(engine.cleanroom_host_admit(&id, &token)?)).await?
    };
    let limit = limit.min(MAX_MESSAGE_BYTES);
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if e.into_inner().is::<http_body_util::LengthLimitError>() {
            ApiError::new(
                &crate::codes::SESSION_TOO_LARGE,
                format!("this session's next message is at most {limit} bytes"),
            )
        } else {
            ApiError::new(&crate::codes::MALFORMED_BODY, "the body could not be read")
        }
    })
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/cleanroom/sessions", post(invite).get(list))
        .route("/v1/cleanroom/sessions/{id}", get(status))
        .route("/v1/cleanroom/sessions/{id}/blinded", post(blinded))
        .route("/v1/cleanroom/sessions/{id}/intersect", post(intersect))
        .route("/v1/cleanroom/sessions/{id}/sum", post(sum))
        .route("/v1/cleanroom/joined", post(join))
        .route("/v1/cleanroom/joined/{id}/run", post(run))
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
}

/// Why the run could not start (no such session, the wrong state) keeps its status; whatever
/// went wrong once it talked to the host is a bad gateway.
fn partner_error(e: PartnerError) -> ApiError {
    match e {
        PartnerError::NotStarted(e) => e.into(),
        // The host's answer was refused: the host's doing.
        e @ PartnerError::Engine(consentric_engine::EngineError::Session(_)) => {
            ApiError::new(&crate::codes::PARTNER_FAILED, e.to_string())
        }
        // Our own fault (a database error, say): logged, and answered without its detail.
        PartnerError::Engine(e) => e.into(),
        PartnerError::Panicked(why) => {
            tracing::error!(%why, "a clean-room run panicked");
            ApiError::internal()
        }
        other => ApiError::new(&crate::codes::PARTNER_FAILED, other.to_string()),
    }
}

fn session_token(headers: &HeaderMap) -> Result<String, ApiError> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        // The scheme is case-insensitive (RFC 9110 §11.1).
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                &crate::codes::BAD_SESSION_TOKEN,
                "send the session token as `Authorization: Bearer <token>`",
            )
        })
}

/// An invitation, as asked.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InviteRequest {
    /// Who the partner is.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*\\S[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    partner: String,
    /// `cardinality` (default) or `matches`.
    #[schema(value_type = Option<crate::api::Output>)]
    output: Option<Output>,
    /// Sum the partner's values over the intersection.
    #[serde(default)]
    sum: bool,
}

/// Invites a partner to a session (admin). Audited. The token is shown once.
#[utoipa::path(post, path = "/v1/cleanroom/sessions", tag = "cleanroom",
    request_body = InviteRequest, responses((status = 200, body = crate::api::Invitation)),
    security(("bearer" = [])))]
pub(crate) async fn invite(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Json(r): Json<InviteRequest>,
) -> Result<Json<Invitation>, ApiError> {
    blocking(move || {
        Ok(Json(engine.cleanroom_invite(
            &r.partner,
            r.output.unwrap_or(Output::Cardinality),
            r.sum,
            &format!("key:{}", who.key_id),
        )?))
    })
    .await
}

/// Sessions.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Sessions {
    #[schema(value_type = Vec<crate::api::SessionView>)]
    sessions: Vec<SessionView>,
}

/// Every session, newest first (admin).
#[utoipa::path(get, path = "/v1/cleanroom/sessions", tag = "cleanroom", operation_id = "list_sessions",
    responses((status = 200, body = Sessions)), security(("bearer" = [])))]
pub(crate) async fn list(
    AdminKey(_): AdminKey,
    State(engine): State<AppState>,
) -> Result<Json<Sessions>, ApiError> {
    blocking(move || {
        Ok(Json(Sessions {
            sessions: engine.cleanroom_sessions()?,
        }))
    })
    .await
}

/// One session: its state and, once done, what it revealed (admin).
#[utoipa::path(get, path = "/v1/cleanroom/sessions/{id}", tag = "cleanroom",
    params(("id" = String, Path, description = "the session's id")),
    responses((status = 200, body = crate::api::SessionView), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn status(
    AdminKey(_): AdminKey,
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SessionView>, ApiError> {
    blocking(move || Ok(Json(engine.cleanroom_session(&id)?))).await
}

/// Round 1 (partner, session token): our blinded identifiers and the session's terms.
#[utoipa::path(post, path = "/v1/cleanroom/sessions/{id}/blinded", tag = "cleanroom",
    params(("id" = String, Path, description = "the session's id")),
    responses((status = 200, body = crate::api::HostBlinded), (status = 401, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "not this round's turn"),
        (status = 410, body = crate::error::ErrorBody, description = "the invitation has expired"),
        (status = 413, body = crate::error::ErrorBody, description = "our set is over the session's limit")),
    security(("session" = [])))]
pub(crate) async fn blinded(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<HostBlinded>, ApiError> {
    let token = session_token(&headers)?;
    blocking(move || Ok(Json(engine.cleanroom_host_blinded(&id, &token)?))).await
}

/// Round 2 (partner, session token): the partner's blinded identifiers (and encrypted
/// values); the cardinality (and the masked encrypted sum).
#[utoipa::path(post, path = "/v1/cleanroom/sessions/{id}/intersect", tag = "cleanroom",
    params(("id" = String, Path, description = "the session's id")),
    request_body = crate::api::GuestBlinded,
    responses((status = 200, body = crate::api::HostCount), (status = 400, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "not this round's turn"),
        (status = 410, body = crate::error::ErrorBody, description = "the invitation has expired"),
        (status = 413, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody, description = "the partner's set is too small to reveal anything about")),
    security(("session" = [])))]
pub(crate) async fn intersect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<HostCount>, ApiError> {
    // The partner proves the session before its message is read.
    let token = session_token(&headers)?;
    let body = admitted_body(&engine, &id, &token, body).await?;
    let msg: GuestBlinded = parse_json(&body)?;
    blocking(move || Ok(Json(engine.cleanroom_host_intersect(&id, &token, &msg)?))).await
}

/// The end of a session, as the partner sees it.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Finished {
    /// `done`.
    state: String,
}

/// Round 3 (partner, session token): the decrypted masked sum.
#[utoipa::path(post, path = "/v1/cleanroom/sessions/{id}/sum", tag = "cleanroom",
    params(("id" = String, Path, description = "the session's id")),
    request_body = crate::api::GuestSum, responses((status = 200, body = Finished),
        (status = 409, body = crate::error::ErrorBody, description = "not this round's turn"),
        (status = 410, body = crate::error::ErrorBody, description = "the invitation has expired")),
    security(("session" = [])))]
pub(crate) async fn sum(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<Finished>, ApiError> {
    let token = session_token(&headers)?;
    let body = admitted_body(&engine, &id, &token, body).await?;
    let msg: GuestSum = parse_json(&body)?;
    blocking(move || {
        let view = engine.cleanroom_host_sum(&id, &token, &msg)?;
        Ok(Json(Finished { state: view.state }))
    })
    .await
}

/// An invitation received from a host.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JoinRequest {
    /// The host's base URL: https (a host, no credentials), or plain http only to this machine.
    #[schema(
        pattern = "^(https://[^/?#@:\\s\\u0000-\\u001f\\u007f-\\u009f][^/?#@\\s\\u0000-\\u001f\\u007f-\\u009f]*|http://(localhost|127\\.0\\.0\\.1|\\[::1\\])(:[0-9]+)?)(/[^?#\\u0000-\\u001f\\u007f-\\u009f]*)?$"
    )]
    host_url: String,
    /// The session id.
    #[schema(pattern = "^[A-Za-z0-9]{1,64}$")]
    session: String,
    /// The session token.
    #[schema(min_length = 32)]
    token: String,
    /// Who the host is.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*\\S[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    partner: String,
    /// What the host said the session reveals (`cardinality`, the default, or `matches`);
    /// the run is refused if the host asks for more.
    #[schema(value_type = Option<crate::api::Output>)]
    output: Option<Output>,
    /// Whether the host said it sums our values.
    #[serde(default)]
    sum: bool,
}

/// Records an invitation from a host (admin). Audited.
#[utoipa::path(post, path = "/v1/cleanroom/joined", tag = "cleanroom",
    request_body = JoinRequest, responses((status = 200, body = crate::api::SessionView),
        (status = 409, body = crate::error::ErrorBody, description = "a session with this id is recorded here already")),
    security(("bearer" = [])))]
pub(crate) async fn join(
    AdminKey(who): AdminKey,
    State(engine): State<AppState>,
    Json(r): Json<JoinRequest>,
) -> Result<Json<SessionView>, ApiError> {
    blocking(move || {
        let joining = consentric_engine::cleanroom::Joining {
            host_url: r.host_url,
            session: r.session,
            token: r.token,
            partner: r.partner,
            output: r.output.unwrap_or(Output::Cardinality),
            sum: r.sum,
        };
        Ok(Json(engine.cleanroom_join(
            &joining,
            &format!("key:{}", who.key_id),
        )?))
    })
    .await
}

/// Runs a joined session against its host (admin): the three rounds, then the session as
/// recorded here.
#[utoipa::path(post, path = "/v1/cleanroom/joined/{id}/run", tag = "cleanroom",
    params(("id" = String, Path, description = "the joined session's id")),
    responses((status = 200, body = crate::api::SessionView),
        (status = 404, body = crate::error::ErrorBody, description = "no joined session with this id"),
        (status = 409, body = crate::error::ErrorBody, description = "the session is not waiting to run"),
        (status = 410, body = crate::error::ErrorBody, description = "the invitation has expired"),
        (status = 502, body = crate::error::ErrorBody, description = "the host could not be reached or refused a round")),
    security(("bearer" = [])))]
pub(crate) async fn run(
    AdminKey(_): AdminKey,
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SessionView>, ApiError> {
    crate::partner::run(engine.clone(), &id)
        .await
        .map_err(partner_error)?;
    blocking(move || Ok(Json(engine.cleanroom_session(&id)?))).await
}

impl Expected for InviteRequest {
    const EXPECTED: &'static str =
        r#"{"partner": "…", "output": "cardinality|matches", "sum": false}"#;
}

impl Expected for GuestBlinded {
    const EXPECTED: &'static str = r#"{"double_blinded": [...], "blinded": [...]}"#;
}

impl Expected for GuestSum {
    const EXPECTED: &'static str = r#"{"masked_sum": "<decimal>"}"#;
}

impl Expected for JoinRequest {
    const EXPECTED: &'static str =
        r#"{"host_url": "…", "session": "…", "token": "…", "partner": "…"}"#;
}
