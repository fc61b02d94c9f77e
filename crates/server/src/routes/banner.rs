//! Consentric's own consent banner and tracking snippet (`assets/consent/`): one script tag
//! with the browser key in its address, `…/consent/v1/{writeKey}/consent.js`, and its
//! stylesheet. The `v1` in the path is the snippet's version; both files are compressed once,
//! on first use, and may be cached for an hour.

use std::sync::OnceLock;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use consentric_engine::{KeyKind, Scope};

use crate::codes;
use crate::error::{blocking, ApiError};
use crate::routes::sdk::gzipped_file;
use crate::AppState;

const SCRIPT: &str = include_str!("../../assets/consent/consent.js");
const STYLE: &str = include_str!("../../assets/consent/consent.css");

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/consent/v1/{write_key}/consent.js", get(script))
        .route("/consent/v1/consent.css", get(style))
}

/// `text`, gzipped at the best level.
pub(crate) fn gzip(text: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = gz.write_all(text);
    gz.finish().unwrap_or_default()
}

/// The snippet, gzipped.
pub(crate) fn script_gz() -> &'static [u8] {
    static GZ: OnceLock<Vec<u8>> = OnceLock::new();
    GZ.get_or_init(|| gzip(SCRIPT.as_bytes()))
}

/// The banner's script, for a browser write key only (any other key gets the same 404 as
/// none, and is not marked used).
async fn script(
    State(engine): State<AppState>,
    headers: HeaderMap,
    Path(write_key): Path<String>,
) -> Result<Response, ApiError> {
    let key = write_key.clone();
    let principal = blocking(move || Ok(engine.peek_key(&key)?)).await?;
    if !principal.is_some_and(|p| p.scope == Scope::Write && p.kind == KeyKind::Browser) {
        return Err(ApiError::new(
            &codes::NOT_FOUND,
            "no consent banner for this key: it must be a browser write key",
        ));
    }
    Ok(gzipped_file(
        &headers,
        script_gz(),
        "text/javascript; charset=utf-8",
        "public, max-age=3600",
    ))
}

async fn style(headers: HeaderMap) -> Response {
    static GZ: OnceLock<Vec<u8>> = OnceLock::new();
    gzipped_file(
        &headers,
        GZ.get_or_init(|| gzip(STYLE.as_bytes())),
        "text/css; charset=utf-8",
        "public, max-age=3600",
    )
}
