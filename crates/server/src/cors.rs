//! CORS for what browser SDKs call, on every answer there, errors included.
//!
//! - **The paths browser SDKs call** (ingest, analytics.js's library, settings and metrics,
//!   the consent banner's script, stylesheet and purposes)
//!   answer preflights, and any page may read every answer they give
//!   (`Access-Control-Allow-Origin: *`), so an SDK can tell why it was refused: analytics.js
//!   posts `text/plain` (no preflight), RudderStack's browser SDK posts JSON with an
//!   `Authorization` and an `AnonymousId` header (preflighted).
//! - **A path that does not exist** answers its 404 readably too: an SDK calling a path this
//!   server lacks learns that, instead of a network error.
//! - **Every other path stays same-origin** (the keyed API, the operations endpoints): no web
//!   page has a reason to read them from another site.
//! - **A site listed in `[server] allowed_origins`** gets its `Origin` echoed with
//!   `Access-Control-Allow-Credentials: true` on those paths: a page whose SDK sends
//!   `credentials: 'include'` needs it, since the browser then refuses the wildcard.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use consentric_engine::ServerSettings;

/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE: &str = "86400";

/// Marks the answer for a path no route has (see [`no_such_endpoint`]).
#[derive(Clone, Copy)]
pub(crate) struct UnknownPath;

/// The router's fallback: a 404 marked as being for a path that does not exist (the JSON
/// error layer gives it its body).
pub(crate) async fn no_such_endpoint() -> impl IntoResponse {
    (StatusCode::NOT_FOUND, axum::Extension(UnknownPath))
}

/// The Segment ingest paths, long and short.
const INGEST: [&str; 14] = [
    "/v1/identify",
    "/v1/i",
    "/v1/track",
    "/v1/t",
    "/v1/page",
    "/v1/p",
    "/v1/screen",
    "/v1/s",
    "/v1/group",
    "/v1/g",
    "/v1/alias",
    "/v1/a",
    "/v1/batch",
    "/v1/b",
];

/// Whether browser SDKs call `path` (see the module's comment).
fn for_browsers(path: &str) -> bool {
    INGEST.contains(&path)
        || path == "/v1/m"
        || path == "/v1/purposes"
        || path.starts_with("/consent/")
        || path.starts_with("/analytics.js/")
        || path.starts_with("/analytics-next/")
        || (path.starts_with("/v1/projects/") && path.ends_with("/settings"))
}

/// The sites allowed credentialed requests, as browsers write `Origin`.
pub(crate) struct Cors {
    allowed: Vec<String>,
}

impl Cors {
    pub(crate) fn new(settings: &ServerSettings) -> Arc<Cors> {
        Arc::new(Cors {
            allowed: settings
                .allowed_origins
                .iter()
                .map(|o| o.as_str().to_owned())
                .collect(),
        })
    }

    /// The request's `Origin`, if it is one of the allowed sites.
    fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let text = origin.to_str().ok()?.to_ascii_lowercase();
        self.allowed.contains(&text).then(|| origin.clone())
    }
}

pub(crate) async fn cors(State(cors): State<Arc<Cors>>, req: Request, next: Next) -> Response {
    let browsers = for_browsers(req.uri().path());
    if !browsers {
        let mut response = next.run(req).await;
        if response.extensions().get::<UnknownPath>().is_some() {
            allow(response.headers_mut(), None, false);
        }
        return response;
    }
    let echo = cors.allowed_origin(req.headers());
    // With sites to echo, one URL answers differently by `Origin`: caches must key on it.
    let varies = !cors.allowed.is_empty();
    if req.method() == Method::OPTIONS {
        let requested = req
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static("authorization, content-type"));
        let mut response = StatusCode::NO_CONTENT.into_response();
        let h = response.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested);
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE),
        );
        allow(h, echo, varies);
        return response;
    }
    let mut response = next.run(req).await;
    allow(response.headers_mut(), echo, varies);
    response
}

fn allow(h: &mut HeaderMap, echo: Option<HeaderValue>, varies: bool) {
    if varies {
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    match echo {
        Some(origin) => {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        None => {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
    }
    // An SDK backing off needs to read when to retry.
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Retry-After"),
    );
}
