//! The one table of error codes: each code the API answers with, its HTTP status and what it
//! means. Errors are made from these entries ([`crate::error::ApiError::new`] takes one), and the
//! OpenAPI document's `ErrorDetail.code` lists them with their meanings, so the two cannot
//! disagree.

use axum::http::StatusCode;

/// One code of the table.
#[derive(Debug, PartialEq, Eq)]
pub struct ErrorCode {
    /// The stable machine-readable code (`missing_field`).
    pub code: &'static str,
    /// The status every answer with this code has.
    pub status: StatusCode,
    /// What it means, for the document.
    pub meaning: &'static str,
}

macro_rules! codes {
    ($($name:ident = ($code:literal, $status:ident, $meaning:literal);)*) => {
        $(
            #[doc = $meaning]
            pub const $name: ErrorCode = ErrorCode {
                code: $code,
                status: StatusCode::$status,
                meaning: $meaning,
            };
        )*
        /// Every code, in the table's order.
        pub const ALL: &[&ErrorCode] = &[$(&$name),*];
    };
}

codes! {
    MALFORMED_JSON = ("malformed_json", BAD_REQUEST, "The body is not the JSON this operation takes.");
    MALFORMED_BODY = ("malformed_body", BAD_REQUEST, "The body could not be read (not UTF-8, or a gzip body that does not inflate).");
    MISSING_FIELD = ("missing_field", BAD_REQUEST, "A required field is absent; `field` names it.");
    INVALID_FIELD = ("invalid_field", BAD_REQUEST, "A field's value is not allowed; `field` names it.");
    INVALID_TEXT = ("invalid_text", BAD_REQUEST, "A value holds the NUL character (U+0000), which no store keeps.");
    INVALID_PATH = ("invalid_path", BAD_REQUEST, "A path parameter is malformed; `field` names it.");
    INVALID_QUERY = ("invalid_query", BAD_REQUEST, "A query parameter is missing, unknown or malformed; `field` names it.");
    UNKNOWN_CALL_TYPE = ("unknown_call_type", BAD_REQUEST, "A batch item's `type` is not a Segment call.");
    PROTOCOL_ERROR = ("protocol_error", BAD_REQUEST, "A clean-room message breaks the protocol.");
    BAD_REQUEST = ("bad_request", BAD_REQUEST, "The request was refused before it reached an operation.");
    UNAUTHORIZED = ("unauthorized", UNAUTHORIZED, "No key, an unknown or revoked key, or an Authorization header that is neither Basic nor Bearer.");
    BAD_SESSION_TOKEN = ("bad_session_token", UNAUTHORIZED, "No clean-room session token, or not this session's.");
    SIGNED_OUT = ("signed_out", UNAUTHORIZED, "The privacy centre's session is unknown or has expired; sign in with a new code.");
    FORBIDDEN = ("forbidden", FORBIDDEN, "The key's scope does not allow this operation.");
    BUDGET_EXCEEDED = ("budget_exceeded", FORBIDDEN, "The analyst's privacy budget cannot cover the query; nothing was spent.");
    NO_LEGAL_BASIS = ("no_legal_basis", FORBIDDEN, "The purpose has no legal basis for this customer now.");
    NOT_FOUND = ("not_found", NOT_FOUND, "Nothing with this id.");
    NO_SUCH_ENDPOINT = ("no_such_endpoint", NOT_FOUND, "No operation at this path.");
    METHOD_NOT_ALLOWED = ("method_not_allowed", METHOD_NOT_ALLOWED, "The path does not take this method; `Allow` lists those it takes.");
    REQUEST_TIMEOUT = ("request_timeout", REQUEST_TIMEOUT, "The request took too long to arrive.");
    URI_TOO_LONG = ("uri_too_long", URI_TOO_LONG, "The request target (path and query) is over 8 KiB.");
    HEADERS_TOO_LARGE = ("headers_too_large", REQUEST_HEADER_FIELDS_TOO_LARGE, "Over 100 header fields, or over 32 KiB of them.");
    RATE_LIMITED = ("rate_limited", TOO_MANY_REQUESTS, "This client sent more with this browser key than it may; `Retry-After` says when to retry.");
    TOO_MANY_ATTEMPTS = ("too_many_attempts", TOO_MANY_REQUESTS, "Too many one-time codes were asked for this address within the hour.");
    OVERLOADED = ("overloaded", TOO_MANY_REQUESTS, "The server is working on as many requests as it takes; `Retry-After` says when to retry. Nothing of this request was stored.");
    CONFLICT = ("conflict", CONFLICT, "The request conflicts with the current state (a fit the data cannot support, an id recorded already).");
    SESSION_STATE = ("session_state", CONFLICT, "A clean-room round came out of order.");
    SESSION_EXPIRED = ("session_expired", GONE, "The clean-room session has expired.");
    EVENT_TOO_LARGE = ("event_too_large", PAYLOAD_TOO_LARGE, "One event is over 32 KB.");
    BATCH_TOO_LARGE = ("batch_too_large", PAYLOAD_TOO_LARGE, "The batch is over 500 KB, before or after inflating.");
    BODY_TOO_LARGE = ("body_too_large", PAYLOAD_TOO_LARGE, "The body is over this operation's limit.");
    SESSION_TOO_LARGE = ("session_too_large", PAYLOAD_TOO_LARGE, "A clean-room message is larger than the session allows.");
    UNSUPPORTED_MEDIA_TYPE = ("unsupported_media_type", UNSUPPORTED_MEDIA_TYPE, "The body's content type is not one this operation reads.");
    SESSION_TOO_SMALL = ("session_too_small", UNPROCESSABLE_ENTITY, "Too few customers take part for the clean room to answer without revealing one.");
    REQUEST_REFUSED = ("request_refused", BAD_REQUEST, "The request was refused before it reached an operation, for a reason without a code of its own; the status (any 4xx) says which.");
    INTERNAL = ("internal", INTERNAL_SERVER_ERROR, "An internal fault; it was logged, and nothing half-done was kept. Usually 500; any 5xx the framework answered with carries it too.");
    PARTNER_FAILED = ("partner_failed", BAD_GATEWAY, "The clean-room partner failed or refused after the run began.");
    NOT_READY = ("not_ready", SERVICE_UNAVAILABLE, "The database does not answer.");
    TOO_MANY_CONNECTIONS = ("too_many_connections", SERVICE_UNAVAILABLE, "The server holds as many connections as it takes; the connection is closed. `Retry-After` says when to retry.");
}

/// The entry for a code the model's parser reports.
pub fn of_parse_error(code: consentric_model::ErrorCode) -> &'static ErrorCode {
    use consentric_model::ErrorCode as E;
    match code {
        E::MalformedJson => &MALFORMED_JSON,
        E::MissingField => &MISSING_FIELD,
        E::InvalidField => &INVALID_FIELD,
        E::UnknownCallType => &UNKNOWN_CALL_TYPE,
        E::EventTooLarge => &EVENT_TOO_LARGE,
        E::BatchTooLarge => &BATCH_TOO_LARGE,
    }
}

/// The entry for a status axum answered on its own (no route, wrong method, body limits).
pub fn of_framework_status(status: StatusCode) -> &'static ErrorCode {
    match status {
        StatusCode::BAD_REQUEST => &BAD_REQUEST,
        StatusCode::NOT_FOUND => &NO_SUCH_ENDPOINT,
        StatusCode::METHOD_NOT_ALLOWED => &METHOD_NOT_ALLOWED,
        StatusCode::PAYLOAD_TOO_LARGE => &BODY_TOO_LARGE,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => &UNSUPPORTED_MEDIA_TYPE,
        StatusCode::REQUEST_TIMEOUT => &REQUEST_TIMEOUT,
        StatusCode::URI_TOO_LONG => &URI_TOO_LONG,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => &HEADERS_TOO_LARGE,
        s if s.is_server_error() => &INTERNAL,
        _ => &REQUEST_REFUSED,
    }
}

/// The document's description of `ErrorDetail.code`: the table as Markdown.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "Stable machine-readable code. Every code, its status and meaning:\n\n| code | status | meaning |\n| --- | --- | --- |\n",
    );
    for c in ALL {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            c.code,
            c.status.as_u16(),
            c.meaning
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_every_status_is_an_error() {
        let mut seen = std::collections::HashSet::new();
        for c in ALL {
            assert!(seen.insert(c.code), "{} twice", c.code);
            assert!(
                c.status.is_client_error() || c.status.is_server_error(),
                "{}",
                c.code
            );
            assert!(c.code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }

    #[test]
    fn the_parsers_codes_are_in_the_table_under_their_own_names() {
        use consentric_model::ErrorCode as E;
        for e in [
            E::MalformedJson,
            E::MissingField,
            E::InvalidField,
            E::UnknownCallType,
            E::EventTooLarge,
            E::BatchTooLarge,
        ] {
            let entry = of_parse_error(e);
            assert_eq!(entry.code, e.as_str());
            assert_eq!(entry.status == StatusCode::PAYLOAD_TOO_LARGE, e.is_size());
        }
    }
}
