use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use consentric_engine::EngineError;
use consentric_model::ParseError;
use serde::Serialize;

use crate::codes::{self, ErrorCode};

/// Every error the API returns: an entry of the code table (which gives the status) and
/// `{"error":{"code","message","field"}}`. Internal faults are logged with their cause and
/// answered with a generic message.
#[derive(Debug)]
pub struct ApiError {
    code: &'static ErrorCode,
    message: String,
    field: Option<String>,
    /// Seconds until a retry may succeed (`Retry-After`), for refusals of load.
    retry_after: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// The error object.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    /// Stable machine-readable code, e.g. `missing_field` (the document lists every one).
    code: &'static str,
    /// A sentence for humans.
    message: String,
    /// JSON path of the offending field, when there is one.
    field: Option<String>,
}

impl ApiError {
    pub(crate) fn new(code: &'static ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// Tells the client to retry after `after` (rounded up to whole seconds, at least one).
    pub(crate) fn with_retry_after(mut self, after: std::time::Duration) -> Self {
        self.retry_after = Some(after.as_secs_f64().ceil().max(1.0) as u64);
        self
    }

    /// Names the offending field.
    pub(crate) fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    pub(crate) fn unauthorized(message: &str) -> Self {
        ApiError::new(&codes::UNAUTHORIZED, message)
    }

    pub(crate) fn forbidden(message: &str) -> Self {
        ApiError::new(&codes::FORBIDDEN, message)
    }

    pub(crate) fn internal() -> Self {
        ApiError::new(
            &codes::INTERNAL,
            "an internal error occurred; it has been logged",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.code.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code.code
    }
}

impl From<ParseError> for ApiError {
    fn from(e: ParseError) -> Self {
        ApiError {
            code: codes::of_parse_error(e.code),
            message: e.message,
            field: e.field,
            retry_after: None,
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NotFound(what) => {
                ApiError::new(&codes::NOT_FOUND, format!("{what} not found"))
            }
            EngineError::Invalid { field, message } => {
                ApiError::new(&codes::INVALID_FIELD, message).with_field(&field)
            }
            EngineError::Store(e) if e.is_nul_in_text() => ApiError::new(
                &codes::INVALID_TEXT,
                "a value holds the NUL character (U+0000), which is not stored",
            ),
            EngineError::Conflict(message) => ApiError::new(&codes::CONFLICT, message),
            EngineError::TooMany(message) => ApiError::new(&codes::TOO_MANY_ATTEMPTS, message),
            EngineError::SignedOut(message) => ApiError::new(&codes::SIGNED_OUT, message),
            e @ EngineError::BudgetExceeded { .. } => {
                ApiError::new(&codes::BUDGET_EXCEEDED, e.to_string())
            }
            EngineError::NoBasis(message) => {
                ApiError::new(&codes::NO_LEGAL_BASIS, message).with_field("purpose")
            }
            EngineError::Session(e) => {
                use consentric_engine::cleanroom::SessionError as S;
                let code = match &e {
                    S::BadToken => &codes::BAD_SESSION_TOKEN,
                    S::Expired => &codes::SESSION_EXPIRED,
                    S::OutOfOrder(_) => &codes::SESSION_STATE,
                    S::TooLarge(..) => &codes::SESSION_TOO_LARGE,
                    S::TooSmall(..) => &codes::SESSION_TOO_SMALL,
                    S::Protocol(_) => &codes::PROTOCOL_ERROR,
                };
                ApiError::new(code, e.to_string())
            }
            other => {
                tracing::error!(error = %other, "internal error");
                ApiError::internal()
            }
        }
    }
}

/// The challenge every 401 carries (RFC 9110 requires one). Bearer only: a `Basic` challenge
/// would make browsers running analytics.js prompt their user for a password.
const CHALLENGE: &str = "Bearer realm=\"consentric\"";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status;
        let mut response = (
            status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code: self.code.code,
                    message: self.message,
                    field: self.field,
                },
            }),
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(CHALLENGE),
            );
        }
        response
    }
}

/// Runs blocking engine work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!(error = %e, "blocking task failed");
        ApiError::internal()
    })?
}
