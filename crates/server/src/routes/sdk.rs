//! What Segment's analytics.js fetches besides the ingest paths, so that the standard snippet
//! works with only its host changed: the library itself (`/analytics.js/v1/{writeKey}/
//! analytics.min.js` and its lazily loaded `/analytics-next/bundles/…`), the source's settings
//! (`/v1/projects/{writeKey}/settings`, which point its `Segment.io` destination back at this
//! server), and its metrics (`POST /v1/m`, accepted and dropped: they are about the library,
//! not about customers).

use std::io::Read;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use consentric_engine::{KeyKind, PublicUrl as PublicUrlSetting, Scope, ServerSettings};
use serde_json::{json, Value};

use crate::codes;
use crate::error::{blocking, ApiError};
use crate::AppState;

/// The analytics.js release served, as published on npm (`assets/analytics-next/README.md`).
pub(crate) const ANALYTICS_NEXT_VERSION: &str = "1.84.3";

/// The library and its parts, gzipped as the npm package ships them: (file name, bytes).
const FILES: &[(&str, &[u8])] = &[
    (
        "standalone.js",
        include_bytes!("../../assets/analytics-next/standalone.js.gz"),
    ),
    (
        "407.bundle.61efa1acb302134c434b.js",
        include_bytes!("../../assets/analytics-next/407.bundle.61efa1acb302134c434b.js.gz"),
    ),
    (
        "ajs-destination.bundle.40628baed746e9904edc.js",
        include_bytes!(
            "../../assets/analytics-next/ajs-destination.bundle.40628baed746e9904edc.js.gz"
        ),
    ),
    (
        "auto-track.bundle.f131ce01a05e3a33a8c1.js",
        include_bytes!("../../assets/analytics-next/auto-track.bundle.f131ce01a05e3a33a8c1.js.gz"),
    ),
    (
        "legacyVideos.bundle.c8148be87c48a2b6537a.js",
        include_bytes!(
            "../../assets/analytics-next/legacyVideos.bundle.c8148be87c48a2b6537a.js.gz"
        ),
    ),
    (
        "queryString.bundle.34b193ada8fe288d1bd1.js",
        include_bytes!("../../assets/analytics-next/queryString.bundle.34b193ada8fe288d1bd1.js.gz"),
    ),
    (
        "remoteMiddleware.bundle.063bbf80c88cda449d9c.js",
        include_bytes!(
            "../../assets/analytics-next/remoteMiddleware.bundle.063bbf80c88cda449d9c.js.gz"
        ),
    ),
    (
        "schemaFilter.bundle.a6a77355d52c20e3a83d.js",
        include_bytes!(
            "../../assets/analytics-next/schemaFilter.bundle.a6a77355d52c20e3a83d.js.gz"
        ),
    ),
    (
        "tsub-middleware.bundle.89bf07058b3d3b126984.js",
        include_bytes!(
            "../../assets/analytics-next/tsub-middleware.bundle.89bf07058b3d3b126984.js.gz"
        ),
    ),
];

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/analytics.js/v1/{write_key}/analytics.min.js",
            get(library),
        )
        .route("/analytics-next/bundles/{file}", get(bundle))
        .route("/v1/projects/{write_key}/settings", get(settings))
        .route("/v1/m", post(metrics))
}

/// The library for the standard snippet. Its address is not versioned, so browsers revalidate
/// it within the hour; the key in the path is not checked (the settings are).
async fn library(headers: HeaderMap) -> Response {
    serve_file(&headers, "standalone.js", "public, max-age=3600")
}

/// A lazily loaded part of the library: its name carries its content hash.
async fn bundle(headers: HeaderMap, Path(file): Path<String>) -> Result<Response, ApiError> {
    if !FILES.iter().any(|(name, _)| *name == file) || file == "standalone.js" {
        return Err(ApiError::new(
            &codes::NOT_FOUND,
            format!("no part of analytics.js {ANALYTICS_NEXT_VERSION} is called `{file}`"),
        ));
    }
    Ok(serve_file(
        &headers,
        &file,
        "public, max-age=31536000, immutable",
    ))
}

fn serve_file(headers: &HeaderMap, name: &str, cache: &'static str) -> Response {
    let Some((_, gz)) = FILES.iter().find(|(n, _)| *n == name) else {
        return ApiError::internal().into_response();
    };
    gzipped_file(headers, gz, "text/javascript; charset=utf-8", cache)
}

/// A gzipped asset, sent as it is to a client that takes gzip and inflated for one that does
/// not.
pub(crate) fn gzipped_file(
    headers: &HeaderMap,
    gz: &[u8],
    content_type: &'static str,
    cache: &'static str,
) -> Response {
    let gzip_ok = crate::negotiate::weighted(headers, &header::ACCEPT_ENCODING)
        .filter(|(name, _)| name.eq_ignore_ascii_case("gzip") || *name == "*")
        // An explicit `gzip` decides; `*` speaks for it only when it is not named.
        .fold(None::<(bool, f32)>, |seen, (name, q)| {
            let named = name.eq_ignore_ascii_case("gzip");
            match seen {
                Some((true, _)) => seen,
                _ if named => Some((true, q)),
                None => Some((false, q)),
                _ => seen,
            }
        })
        .is_some_and(|(_, q)| q > 0.0);
    let mut response = if gzip_ok {
        let mut r = gz.to_vec().into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        let mut plain = Vec::with_capacity(gz.len() * 4);
        if flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut plain)
            .is_err()
        {
            return ApiError::internal().into_response();
        }
        plain.into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    response
}

/// The settings analytics.js loads first: its `Segment.io` destination sends to this server
/// (`public_url`, else the address the request was made to), the consent categories are the
/// declared purposes, and nothing else is loaded (no device-mode destinations, no plan, no
/// middleware). Only a browser write key has settings: any other key, or none, is 404, the
/// same answer as an unknown key, so the path tells nobody which secrets exist.
async fn settings(
    State(engine): State<AppState>,
    Extension(public): Extension<PublicUrl>,
    uri: Uri,
    headers: HeaderMap,
    Path(write_key): Path<String>,
) -> Result<Response, ApiError> {
    let (e, secret) = (engine.clone(), write_key.clone());
    // A look-up only: a public path must not mark a key used, nor answer a live key slower.
    let principal = blocking(move || Ok(e.peek_key(&secret)?)).await?;
    let Some(principal) = principal.filter(|p| p.scope == Scope::Write) else {
        return Err(no_settings());
    };
    if principal.kind != KeyKind::Browser {
        return Err(no_settings());
    }
    let (protocol, host) = public.for_request(&uri, &headers);
    let api_host = format!("{host}/v1");
    let categories: Vec<String> = engine.purposes().into_iter().map(|p| p.id).collect();
    let body: Value = json!({
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": api_host,
                "protocol": protocol,
                "unbundledIntegrations": [],
                "addBundledMetadata": true,
                "maybeBundledConfigIds": {},
                "versionSettings": {"componentTypes": ["browser"]}
            }
        },
        "edgeFunction": {},
        "analyticsNextEnabled": true,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0, "host": api_host},
        "legacyVideoPluginsEnabled": false,
        "remotePlugins": [],
        "consentSettings": {"allCategories": categories, "hasUnmappedDestinations": false}
    });
    let mut response = Json(body).into_response();
    // An address taken from the request is that request's: no shared cache may hand it to
    // others (a forged `Host` would otherwise send every page's events elsewhere).
    let cache = if public.configured() {
        "public, max-age=60"
    } else {
        "private, max-age=60"
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(response)
}

fn no_settings() -> ApiError {
    ApiError::new(
        &codes::NOT_FOUND,
        "no browser write key has these settings (create one with `consentric keys create --scope write --kind browser`)",
    )
}

/// analytics.js's own performance metrics: accepted and dropped (nothing in them is about a
/// customer, and nothing here needs them).
async fn metrics() -> StatusCode {
    StatusCode::OK
}

/// Where pages reach this server (`[server] public_url`), or, unset, the address each
/// request names in `Host`, over `http`.
#[derive(Clone)]
pub(crate) struct PublicUrl(Option<PublicUrlSetting>);

impl PublicUrl {
    pub(crate) fn new(settings: &ServerSettings) -> PublicUrl {
        PublicUrl(settings.public_url.clone())
    }

    /// Whether the configured address is `https` (cookies set for it are then `Secure`).
    pub(crate) fn https(&self) -> bool {
        self.0.as_ref().is_some_and(|u| u.scheme() == "https")
    }

    /// Whether the address comes from the configuration (else from each request, and an
    /// answer that holds it may not be kept by shared caches).
    pub(crate) fn configured(&self) -> bool {
        self.0.is_some()
    }

    /// The scheme and the host (with port and path prefix) pages use for this request: the
    /// configured address, else the request's own authority (`Host`, or HTTP/2's
    /// `:authority`) if it is one.
    pub(crate) fn for_request(&self, uri: &Uri, headers: &HeaderMap) -> (&'static str, String) {
        if let Some(u) = &self.0 {
            return (u.scheme(), u.host_and_path().to_owned());
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| uri.authority().map(|a| a.as_str()))
            .filter(|h| is_authority(h))
            .unwrap_or("localhost");
        ("http", host.to_owned())
    }
}

/// A host name or address with an optional port, and nothing else.
fn is_authority(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 255
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}
