//! The last word on errors: a response that axum made itself (no such route, a method the
//! route does not take, a body over the limit) leaves in the API's JSON error shape, like every
//! error a handler returns.

use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Most of a plain-text rejection worth keeping as the message.
const MAX_MESSAGE_BYTES: usize = 4096;

/// Rewrites an error response that is not JSON into `{"error":{"code","message","field"}}`,
/// keeping its status and other headers (a 405's `allow`, say).
pub(crate) async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = to_bytes(body, MAX_MESSAGE_BYTES)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = match (status, text.is_empty()) {
        (StatusCode::NOT_FOUND, true) => format!("no endpoint at {path}"),
        (StatusCode::METHOD_NOT_ALLOWED, true) => format!("{path} does not take {method}"),
        (_, true) => status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_owned(),
        (_, false) => text,
    };
    // The JSON body and its content type; every other header (each value of a repeated one)
    // and the extensions stay as they were.
    let (json, body) = ApiError::new(crate::codes::of_framework_status(status), message)
        .into_response()
        .into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    for name in [CONTENT_TYPE, WWW_AUTHENTICATE] {
        if let Some(value) = json.headers.get(&name) {
            parts.headers.insert(name, value.clone());
        }
    }
    Response::from_parts(parts, body)
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        // A page's refusal is already written for the person reading it.
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"))
}
