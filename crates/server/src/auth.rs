//! Where a key comes from: `Authorization: Basic base64(key:)` (what Segment's and
//! RudderStack's SDKs send), `Authorization: Bearer key`, or — for ingest only — `writeKey` in
//! the body (analytics.js).

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use base64::Engine as _;
use consentric_engine::{Engine, Principal, Scope};

use crate::error::{blocking, ApiError};
use crate::AppState;

/// The key in the `Authorization` header, if any.
///
/// # Errors
/// A header that is present but not a readable Basic or Bearer credential.
pub(crate) fn header_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::unauthorized(
            "the Authorization header must be `Basic base64(key:)` or `Bearer key`",
        )
    };
    let value = value.to_str().map_err(|_| bad())?.trim();
    let (scheme, rest) = value.split_once(' ').ok_or_else(bad)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| bad())?;
        let text = String::from_utf8(decoded).map_err(|_| bad())?;
        // The key is the user name; the password is empty.
        let user = text.split_once(':').map(|(u, _)| u).unwrap_or(&text);
        return Ok((!user.is_empty()).then(|| user.to_owned()));
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok((!rest.is_empty()).then(|| rest.to_owned()));
    }
    Err(bad())
}

/// Checks `secret` and that its scope allows `needed`.
///
/// # Errors
/// 401 for an unknown key, 403 for a key of the wrong scope, 500 for a database fault.
pub(crate) fn check(engine: &Engine, secret: &str, needed: Scope) -> Result<Principal, ApiError> {
    match engine.authenticate(secret)? {
        None => Err(ApiError::unauthorized("unknown API key")),
        Some(p) => scoped(p, needed),
    }
}

fn scoped(p: Principal, needed: Scope) -> Result<Principal, ApiError> {
    if p.scope.allows(needed) {
        Ok(p)
    } else {
        Err(ApiError::forbidden(&format!(
            "the key presented ({}) is {} key, which cannot do this; it needs {} key",
            p.key_id,
            with_article(p.scope),
            with_article(needed)
        )))
    }
}

/// "a write", "an admin", "an analyst".
fn with_article(scope: Scope) -> String {
    let name = scope.as_str();
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

/// [`check`] from an async handler: a key seen before is answered from the engine's cache on
/// this task; only an unseen key goes to a blocking thread (and the database).
async fn principal(
    engine: &AppState,
    secret: String,
    needed: Scope,
) -> Result<Principal, ApiError> {
    if let Some(p) = engine.authenticate_cached(&secret) {
        return scoped(p, needed);
    }
    let engine = engine.clone();
    blocking(move || check(&engine, &secret, needed)).await
}

/// Extractor proving the request carries an analyst key (or an admin key); holds who it is.
pub(crate) struct AnalystKey(pub(crate) Principal);

impl FromRequestParts<AppState> for AnalystKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, engine: &AppState) -> Result<Self, ApiError> {
        let secret = header_key(&parts.headers)?.ok_or_else(|| {
            ApiError::unauthorized("an analyst key is required (Authorization: Bearer …)")
        })?;
        let principal = principal(engine, secret, Scope::Analyst).await?;
        Ok(AnalystKey(principal))
    }
}

/// Extractor proving the request carries an admin key; holds who it is.
pub(crate) struct AdminKey(pub(crate) Principal);

impl FromRequestParts<AppState> for AdminKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, engine: &AppState) -> Result<Self, ApiError> {
        let secret = header_key(&parts.headers)?.ok_or_else(|| {
            ApiError::unauthorized("an admin key is required (Authorization: Bearer …)")
        })?;
        let principal = principal(engine, secret, Scope::Admin).await?;
        Ok(AdminKey(principal))
    }
}
