//! axum's `Path` and `Query`, refusing bad input with the API's JSON error (naming the
//! parameter when axum's message does) instead of axum's plain-text rejection.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

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
                    StatusCode::BAD_REQUEST,
                    "invalid_path",
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
    let error = ApiError::new(rejection.status(), "invalid_path", text.clone());
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
    let error = ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", detail.to_owned());
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
