use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use consentric_engine::EngineError;
use consentric_model::ParseError;
use serde::Serialize;

/// Every error the API returns: a status and `{"error":{"code","message","field"}}`.
/// Internal faults are logged with their cause and answered with a generic message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// The error object.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    /// Stable machine-readable code, e.g. `missing_field`.
    code: &'static str,
    /// A sentence for humans.
    message: String,
    /// JSON path of the offending field, when there is one.
    field: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// Names the offending field.
    pub(crate) fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    pub(crate) fn unauthorized(message: &str) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub(crate) fn forbidden(message: &str) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub(crate) fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred; it has been logged",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl From<ParseError> for ApiError {
    fn from(e: ParseError) -> Self {
        ApiError {
            status: if e.code.is_size() {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            },
            code: e.code.as_str(),
            message: e.message,
            field: e.field,
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NotFound(what) => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} not found"),
            ),
            EngineError::Invalid { field, message } => ApiError {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_field",
                message,
                field: Some(field.to_owned()),
            },
            EngineError::Store(e) if e.is_nul_in_text() => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_text",
                "a value holds the NUL character (U+0000), which is not stored",
            ),
            EngineError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            e @ EngineError::BudgetExceeded { .. } => ApiError {
                status: StatusCode::FORBIDDEN,
                code: "budget_exceeded",
                message: e.to_string(),
                field: None,
            },
            EngineError::NoBasis(message) => ApiError {
                status: StatusCode::FORBIDDEN,
                code: "no_legal_basis",
                message,
                field: Some("purpose".to_owned()),
            },
            EngineError::Session(e) => {
                use consentric_engine::cleanroom::SessionError as S;
                let (status, code) = match &e {
                    S::BadToken => (StatusCode::UNAUTHORIZED, "bad_session_token"),
                    S::Expired => (StatusCode::GONE, "session_expired"),
                    S::OutOfOrder(_) => (StatusCode::CONFLICT, "session_state"),
                    S::TooLarge(..) => (StatusCode::PAYLOAD_TOO_LARGE, "session_too_large"),
                    S::TooSmall(..) => (StatusCode::UNPROCESSABLE_ENTITY, "session_too_small"),
                    S::Protocol(_) => (StatusCode::BAD_REQUEST, "protocol_error"),
                };
                ApiError::new(status, code, e.to_string())
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
        let status = self.status;
        let mut response = (
            status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code: self.code,
                    message: self.message,
                    field: self.field,
                },
            }),
        )
            .into_response();
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
