//! axum's `Path`, `Query` and `Json`, refusing bad input with the API's JSON error (naming the
//! parameter when axum's message does, and what shape a body should have) instead of axum's
//! plain-text rejection.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codes;
use crate::error::ApiError;

/// A JSON request body that must parse into `T` (the refusal says what `T` looks like), and a
/// JSON response.
pub(crate) struct Json<T>(pub(crate) T);

/// What a request body looks like, for the refusal of one that is not it.
pub(crate) trait Expected {
    /// A sketch of the JSON: `{"code":"123456"}`.
    const EXPECTED: &'static str;
}

impl Expected for serde_json::Value {
    const EXPECTED: &'static str = "JSON";
}

/// Parses a body already read (where a handler must look at the request before its body).
pub(crate) fn parse_json<T: DeserializeOwned + Expected>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            &codes::MALFORMED_JSON,
            format!("expected {}: {e}", T::EXPECTED),
        )
    })
}

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned + Expected,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            let code = if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                &codes::BODY_TOO_LARGE
            } else {
                &codes::MALFORMED_BODY
            };
            ApiError::new(code, r.body_text())
        })?;
        parse_json(&bytes).map(Json)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A path parameter that must be readable (UTF-8, the declared type).
pub(crate) struct Path<T>(pub(crate) T);

/// Query parameters that must parse into `T`.
pub(crate) struct Query<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // `%00` decodes to U+0000, which no store keeps and no id holds.
        if let Ok(raw) = RawPathParams::from_request_parts(parts, state).await {
            if let Some((name, _)) = raw.iter().find(|(_, value)| value.contains('\0')) {
                return Err(ApiError::new(
                    &codes::INVALID_PATH,
                    "must not contain the NUL character (U+0000)",
                )
                .with_field(name));
            }
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(path_error(&rejection)),
        }
    }
}

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(query_error(&rejection)),
        }
    }
}

fn path_error(rejection: &PathRejection) -> ApiError {
    let text = rejection.body_text();
    // "Invalid URL: Invalid UTF-8 in `id`" names the parameter between backticks.
    // A path that does not parse is the caller's; any other rejection (a route declared
    // without its parameter) is ours.
    if rejection.status() != StatusCode::BAD_REQUEST {
        tracing::error!(rejection = %text, "path parameters rejected by the router");
        return ApiError::internal();
    }
    let error = ApiError::new(&codes::INVALID_PATH, text.clone());
    match between_backticks(&text) {
        Some(name) => error.with_field(name),
        None => error,
    }
}

fn query_error(rejection: &QueryRejection) -> ApiError {
    let text = rejection.body_text();
    let detail = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(&text);
    // serde names a missing or unknown field between backticks; a bad value comes as
    // "name: why".
    let field = if detail.starts_with("missing field") || detail.starts_with("unknown field") {
        between_backticks(detail)
    } else {
        detail
            .split_once(": ")
            .map(|(name, _)| name)
            .filter(|name| !name.is_empty() && !name.contains(' '))
    };
    let error = ApiError::new(&codes::INVALID_QUERY, detail.to_owned());
    match field {
        Some(name) => error.with_field(name),
        None => error,
    }
}

fn between_backticks(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once('`')?;
    let (name, _) = rest.split_once('`')?;
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backticks_give_the_name() {
        assert_eq!(between_backticks("Invalid UTF-8 in `id`"), Some("id"));
        assert_eq!(between_backticks("no name here"), None);
        assert_eq!(between_backticks("empty ``"), None);
    }
}
