//! Segment-compatible ingestion: `/v1/{identify,track,page,screen,group,alias,batch}`, the
//! short paths analytics.js uses (`/v1/i`, `/v1/t`, … `/v1/b`), any content type (analytics.js
//! sends `text/plain`), and gzip bodies (rudder-sdk-node's default).

use std::io::Read;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use consentric_engine::{Engine, IngestContext, Origin, Principal, Scope};
use consentric_model::{parse_batch, parse_event, Batch, CallType, MAX_BATCH_BYTES};
use serde::Serialize;

use crate::auth;
use crate::edge::{Client, Limits};
use crate::error::{blocking, ApiError};
use crate::extract::Json;
use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/identify", post(identify))
        .route("/v1/i", post(identify))
        .route("/v1/track", post(track))
        .route("/v1/t", post(track))
        .route("/v1/page", post(page))
        .route("/v1/p", post(page))
        .route("/v1/screen", post(screen))
        .route("/v1/s", post(screen))
        .route("/v1/group", post(group))
        .route("/v1/g", post(group))
        .route("/v1/alias", post(alias))
        .route("/v1/a", post(alias))
        .route("/v1/batch", post(batch))
        .route("/v1/b", post(batch))
}

/// What an accepted ingest call answers. `success` is Segment's field; the counts are ours.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct IngestResponse {
    /// Always `true` on a 200.
    success: bool,
    /// Events stored now.
    accepted: u64,
    /// Events already stored earlier (same `messageId`), acknowledged again.
    duplicates: u64,
}

type Body = Result<Bytes, BytesRejection>;
type Reply = Result<Json<IngestResponse>, ApiError>;

macro_rules! single_call {
    ($name:ident, $call:expr, $path:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "ingest",
            request_body(content = Object, description = "A Segment Spec event", content_type = "application/json"),
            responses(
                (status = 200, body = IngestResponse, description = "Stored (or already stored) durably"),
                (status = 400, body = crate::error::ErrorBody, description = "Malformed JSON, a missing or mistyped field"),
                (status = 401, body = crate::error::ErrorBody, description = "Missing or unknown write key"),
                (status = 413, body = crate::error::ErrorBody, description = "Event over 32 KB"),
            ),
            security(("basic" = []), ("bearer" = [])))]
        pub(crate) async fn $name(
            State(engine): State<AppState>,
            sender: Sender,
            headers: HeaderMap,
            body: Body,
        ) -> Reply {
            ingest(engine, sender, headers, body, Some($call)).await
        }
    };
}

single_call!(
    identify,
    CallType::Identify,
    "/v1/identify",
    "Who the customer is."
);
single_call!(
    track,
    CallType::Track,
    "/v1/track",
    "Something the customer did."
);
single_call!(page, CallType::Page, "/v1/page", "A web page view.");
single_call!(
    screen,
    CallType::Screen,
    "/v1/screen",
    "A mobile screen view."
);
single_call!(
    group,
    CallType::Group,
    "/v1/group",
    "Membership of an account."
);
single_call!(
    alias,
    CallType::Alias,
    "/v1/alias",
    "Two identities are one customer."
);

/// Many events at once, stored whole or not at all.
#[utoipa::path(post, path = "/v1/batch", tag = "ingest",
    request_body(content = Object, description = "`{\"batch\": [events…], \"context\"?, \"integrations\"?, \"sentAt\"?}`", content_type = "application/json"),
    responses(
        (status = 200, body = IngestResponse, description = "The whole batch is stored durably"),
        (status = 400, body = crate::error::ErrorBody, description = "A bad event; nothing of the batch is stored"),
        (status = 401, body = crate::error::ErrorBody, description = "Missing or unknown write key"),
        (status = 413, body = crate::error::ErrorBody, description = "Batch over 500 KB or an event over 32 KB"),
    ),
    security(("basic" = []), ("bearer" = [])))]
pub(crate) async fn batch(
    State(engine): State<AppState>,
    sender: Sender,
    headers: HeaderMap,
    body: Body,
) -> Reply {
    ingest(engine, sender, headers, body, None).await
}

/// Who sends, as the edge's rate limits see them: the limits and the client's address.
pub(crate) struct Sender {
    limits: std::sync::Arc<Limits>,
    client: Client,
}

impl axum::extract::FromRequestParts<AppState> for Sender {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &AppState,
    ) -> Result<Self, ApiError> {
        let limits = parts.extensions.get::<std::sync::Arc<Limits>>().cloned();
        let client = parts.extensions.get::<Client>().copied();
        match (limits, client) {
            (Some(limits), Some(client)) => Ok(Sender { limits, client }),
            _ => Err(ApiError::internal()),
        }
    }
}

impl Sender {
    /// Takes this client's turn with a browser key, or says when it may come back.
    fn take_turn(&self, principal: &Principal) -> Result<(), ApiError> {
        if !principal.is_browser() {
            return Ok(());
        }
        self.limits
            .browser_rate
            .take(&principal.key_id, self.client.0)
            .map_err(|wait| {
                ApiError::new(
                    &crate::codes::RATE_LIMITED,
                    "this client has sent more with this key than it may; retry later",
                )
                .with_retry_after(wait)
            })
    }
}

async fn ingest(
    engine: AppState,
    sender: Sender,
    headers: HeaderMap,
    body: Body,
    call: Option<CallType>,
) -> Reply {
    let body = body.map_err(|rejection| {
        let too_large = rejection.status() == StatusCode::PAYLOAD_TOO_LARGE;
        let code = if too_large {
            &crate::codes::BATCH_TOO_LARGE
        } else {
            &crate::codes::MALFORMED_BODY
        };
        engine.metrics().record_rejected(code.code, 1);
        ApiError::new(code, rejection.body_text())
    })?;
    let gzip = headers
        .get(axum::http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    let header_key = auth::header_key(&headers)?;
    // Global Privacy Control: `Sec-GPC: 1` denies every sale/share purpose for this customer.
    let gpc = headers
        .get("sec-gpc")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "1");
    let report = blocking(move || {
        let mut principal = match &header_key {
            Some(key) => Some(auth::check(&engine, key, Scope::Write)?),
            None => None,
        };
        // A key in the header takes its turn before the body is inflated or parsed: a client
        // over its rate costs no more than the check.
        if let Some(p) = &principal {
            sender.take_turn(p)?;
        }
        let body = if gzip { gunzip(&body)? } else { body.to_vec() };
        let parsed = parse(&engine, &body, call);
        let batch = match (parsed, &header_key) {
            (Ok(b), _) => b,
            // Without a header key the body is the only credential: an unreadable body is
            // an unauthenticated request, and says nothing about its content.
            (Err(_), None) => return Err(ApiError::unauthorized("a write key is required")),
            (Err(e), Some(_)) => return Err(e),
        };
        if header_key.is_none() {
            let key = batch
                .write_key
                .as_deref()
                .ok_or_else(|| ApiError::unauthorized("a write key is required (HTTP Basic user name, Bearer, or `writeKey` in the body)"))?;
            let from_body = auth::check(&engine, key, Scope::Write)?;
            sender.take_turn(&from_body)?;
            principal = Some(from_body);
        }
        let browser = principal.as_ref().is_some_and(Principal::is_browser);
        if let Some(p) = &principal {
            if browser {
                note_server_library(&engine, &sender.limits.server_libraries_noted, p, &batch.events);
            }
        }
        let ctx = IngestContext {
            gpc,
            actor: principal.map(|p| format!("key:{}", p.key_id)).unwrap_or_default(),
            origin: if browser { Origin::Browser } else { Origin::Server },
        };
        Ok(engine.ingest_with(batch.events, &ctx)?)
    })
    .await?;
    Ok(Json(IngestResponse {
        success: true,
        accepted: report.accepted,
        duplicates: report.duplicates,
    }))
}

fn parse(engine: &Engine, body: &[u8], call: Option<CallType>) -> Result<Batch, ApiError> {
    let envelope = engine.envelope(uuid::Uuid::new_v4().simple().to_string());
    let result = match call {
        Some(call) => parse_event(body, call, &envelope),
        None => parse_batch(body, &envelope),
    };
    result.map_err(|e| {
        let events = match call {
            Some(_) => 1,
            None => count_items(body),
        };
        engine.metrics().record_rejected(e.code.as_str(), events);
        ApiError::from(e)
    })
}

/// Notes a server SDK sending with a browser key, once per key in this process: `serve` warns
/// about such keys at start. A failure to note it is logged, not answered.
fn note_server_library(
    engine: &Engine,
    noted: &std::sync::Mutex<std::collections::HashSet<String>>,
    key: &Principal,
    events: &[consentric_model::Event],
) {
    let library = events.iter().find_map(|e| {
        let name = e.context().as_map().get("library")?.get("name")?.as_str()?;
        consentric_engine::SERVER_LIBRARIES
            .iter()
            .find(|l| l.eq_ignore_ascii_case(name))
    });
    if let Some(library) = library {
        let first = noted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.key_id.clone());
        if !first {
            return;
        }
        if let Err(e) = engine.note_server_library(&key.key_id, library) {
            tracing::warn!(error = %e, "could not note a server library");
        }
    }
}

/// How many events a refused batch held, for the rejection metric (1 if unreadable).
fn count_items(body: &[u8]) -> u64 {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("batch")
                .and_then(|b| b.as_array())
                .map(|a| a.len() as u64)
        })
        .filter(|n| *n > 0)
        .unwrap_or(1)
}

/// Inflates a gzip body, refusing to produce more than a batch may hold (a gzip bomb gets a
/// 413 after reading at most that much).
fn gunzip(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::with_capacity(body.len() * 4);
    flate2::read::GzDecoder::new(body)
        .take(MAX_BATCH_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            ApiError::new(
                &crate::codes::MALFORMED_BODY,
                format!("the gzip body could not be inflated: {e}"),
            )
        })?;
    if out.len() > MAX_BATCH_BYTES {
        return Err(ApiError::new(
            &crate::codes::BATCH_TOO_LARGE,
            format!("the inflated body is over {MAX_BATCH_BYTES} bytes"),
        ));
    }
    Ok(out)
}
