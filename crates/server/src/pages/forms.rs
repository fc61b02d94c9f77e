//! What the pages' handlers share: a form's fields, the session cookie they set and read, and
//! engine calls on a blocking thread that keep the engine's error for the page to word.

use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use consentric_engine::EngineError;

use crate::routes::sdk::PublicUrl;

/// A form's fields, in the order sent.
pub(crate) type Pairs = Vec<(String, String)>;

/// The first value of the field `name`.
pub(crate) fn field<'a>(pairs: &'a Pairs, name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Runs `work` on a blocking thread.
pub(crate) async fn run<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| EngineError::Config(format!("blocking task failed: {e}")))?
}

/// The value of the cookie `name`, if the request carries it.
pub(crate) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_owned())
}

/// A session cookie: HttpOnly, SameSite=Strict, scoped to `path`, Secure behind an `https`
/// public URL; `max_age` 0 clears it.
pub(crate) fn session_cookie(
    public: &PublicUrl,
    name: &str,
    path: &str,
    token: &str,
    max_age: i64,
) -> HeaderValue {
    let secure = if public.https() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={token}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}
