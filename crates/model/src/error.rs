use std::fmt;

/// Stable, machine-readable reasons an input was refused; they become the `code` of the JSON
/// error body and the `reason` label of the rejection metric, so they never change spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The body is not JSON at all, or not a JSON object where one is required.
    MalformedJson,
    /// A required field is absent.
    MissingField,
    /// A field holds the wrong JSON type or an unusable value.
    InvalidField,
    /// The `type` names no Segment call this endpoint accepts.
    UnknownCallType,
    /// One event is over [`crate::MAX_EVENT_BYTES`].
    EventTooLarge,
    /// A batch is over [`crate::MAX_BATCH_BYTES`].
    BatchTooLarge,
}

impl ErrorCode {
    /// The spelling used on the wire and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::MissingField => "missing_field",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::UnknownCallType => "unknown_call_type",
            ErrorCode::EventTooLarge => "event_too_large",
            ErrorCode::BatchTooLarge => "batch_too_large",
        }
    }

    /// Whether the refusal is about size (HTTP 413) rather than content (HTTP 400).
    pub fn is_size(self) -> bool {
        matches!(self, ErrorCode::EventTooLarge | ErrorCode::BatchTooLarge)
    }
}

/// Why an event or batch was refused, naming the offending field as a JSON path
/// (`batch[3].userId`) so that a sender can fix its payload without guessing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// What kind of problem this is.
    pub code: ErrorCode,
    /// JSON path of the offending field, if the problem is tied to one.
    pub field: Option<String>,
    /// A sentence for humans.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(code: ErrorCode, field: Option<&str>, message: impl Into<String>) -> Self {
        ParseError {
            code,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }

    /// Prefixes the field path, used when an event's error surfaces through a batch.
    pub(crate) fn within(mut self, prefix: &str) -> Self {
        self.field = Some(match self.field.take() {
            Some(f) => format!("{prefix}.{f}"),
            None => prefix.to_owned(),
        });
        self
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{} ({}): {}", self.code.as_str(), field, self.message),
            None => write!(f, "{}: {}", self.code.as_str(), self.message),
        }
    }
}
