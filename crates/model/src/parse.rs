//! From bytes to [`Event`]s: the only way in.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};
use serde_json::{Map, Value};

use crate::error::{ErrorCode, ParseError};
use crate::event::{Call, CallType, Context, Event};
use crate::ids::{AnonymousId, MessageId, UserId};

/// Segment's limit for one event, in bytes of compact JSON.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// Segment's limit for one batch request body, in bytes.
pub const MAX_BATCH_BYTES: usize = 500 * 1024;
/// Longest `event`, `name`, `category` or `groupId` we accept.
const MAX_NAME_LEN: usize = 1024;

/// How far past `receivedAt` an event's time may lie before it is taken as `receivedAt` plus
/// this much: a client clock a little fast is normal, an event dated years ahead is not, and
/// would otherwise outrank every later trait update and outlive retention.
pub const DEFAULT_FUTURE_TOLERANCE: TimeDelta = TimeDelta::minutes(5);

/// What the transport knows about a request: when it arrived and a unique request id, used
/// to give an event without `messageId` an id of its own.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The server's clock when the request arrived; becomes `receivedAt`.
    pub received_at: DateTime<Utc>,
    /// Unique per request (never reused), so generated message ids never collide.
    pub request_id: String,
    /// The latest event time accepted is `received_at` plus this; later ones are clamped to it
    /// (the time the client sent stays in `originalTimestamp`).
    pub future_tolerance: TimeDelta,
}

impl Envelope {
    /// An envelope with the [`DEFAULT_FUTURE_TOLERANCE`].
    pub fn new(received_at: DateTime<Utc>, request_id: impl Into<String>) -> Self {
        Envelope {
            received_at,
            request_id: request_id.into(),
            future_tolerance: DEFAULT_FUTURE_TOLERANCE,
        }
    }

    /// The same envelope with another tolerance for event times ahead of `received_at`.
    #[must_use]
    pub fn with_future_tolerance(mut self, tolerance: TimeDelta) -> Self {
        self.future_tolerance = tolerance;
        self
    }

    /// The event time stored for an event the client dated `original` and sent at `sent`:
    /// corrected for the client's clock skew (`receivedAt - (sentAt - originalTimestamp)`),
    /// then kept within `[earliest accepted time, receivedAt + tolerance]`.
    fn event_time(
        &self,
        original: Option<DateTime<Utc>>,
        sent: Option<DateTime<Utc>>,
    ) -> DateTime<Utc> {
        let corrected = match (original, sent) {
            (Some(orig), Some(sent)) => self
                .received_at
                .checked_sub_signed(sent.signed_duration_since(orig))
                .unwrap_or(self.received_at),
            (Some(orig), None) => orig,
            (None, _) => self.received_at,
        };
        let latest = self
            .received_at
            .checked_add_signed(self.future_tolerance)
            .unwrap_or(self.received_at);
        corrected.clamp(earliest_time(), latest.max(earliest_time()))
    }
}

/// The earliest event time accepted: the Unix epoch. Times outside
/// [`earliest_time`, [`latest_time`]] are refused by the parser, naming the field.
pub fn earliest_time() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH
}

/// The latest time any timestamp field may carry: the end of year 9999.
pub fn latest_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59)
        .single()
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A parsed request: its events in order and the write key, if the body carried one
/// (analytics.js sends `writeKey` in the body instead of a header).
#[derive(Debug, Clone)]
pub struct Batch {
    /// The events, in the order sent.
    pub events: Vec<Event>,
    /// `writeKey` from the body, if any.
    pub write_key: Option<String>,
}

type Obj = Map<String, Value>;

fn err(code: ErrorCode, field: &str, message: impl Into<String>) -> ParseError {
    ParseError::new(code, Some(field), message)
}

fn parse_object(body: &[u8]) -> Result<Obj, ParseError> {
    match serde_json::from_slice::<Value>(body) {
        // JSON can carry U+0000 only as the escape `\u0000`: without one, nothing to look for.
        Ok(Value::Object(map)) => {
            match memchr::memmem::find(body, br"\u0000").and_then(|_| nul_in(&map)) {
                None => Ok(map),
                Some(path) => Err(err(
                    ErrorCode::InvalidField,
                    &path,
                    "must not contain the NUL character (U+0000)",
                )),
            }
        }
        Ok(_) => Err(ParseError::new(
            ErrorCode::MalformedJson,
            None,
            "the body must be a JSON object",
        )),
        Err(e) => Err(ParseError::new(
            ErrorCode::MalformedJson,
            None,
            format!("the body is not valid JSON: {e}"),
        )),
    }
}

/// The path of the first key or string in `obj` holding U+0000, which JSON can carry (`\u0000`)
/// but neither database stores as text (PostgreSQL refuses it; SQLite would cut C strings at
/// it), so an event is refused whole rather than stored differently on each.
fn nul_in(obj: &Obj) -> Option<String> {
    // Walked only once the body is known to hold `\u0000`, so the path is built on the way out.
    fn below(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => s.contains('\0').then(String::new),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, item)| below(item).map(|rest| format!("[{i}]{rest}"))),
            Value::Object(map) => in_object(map).map(|path| format!(".{path}")),
            _ => None,
        }
    }
    fn in_object(map: &Obj) -> Option<String> {
        map.iter().find_map(|(key, value)| {
            let rest = if key.contains('\0') {
                String::new()
            } else {
                below(value)?
            };
            Some(format!("{}{rest}", key.replace('\0', "\\u0000")))
        })
    }
    in_object(obj)
}

/// Parses the body of a single-call endpoint (`/v1/track` and friends).
///
/// `call` is what the path says; a body whose `type` names another call is refused.
///
/// # Errors
/// A [`ParseError`] naming the field for malformed JSON, a missing or mistyped field, an
/// unknown or mismatched `type`, or an event over [`MAX_EVENT_BYTES`].
pub fn parse_event(body: &[u8], call: CallType, env: &Envelope) -> Result<Batch, ParseError> {
    check_size(body.len(), None, ErrorCode::EventTooLarge)?;
    let mut obj = parse_object(body)?;
    let write_key = take_write_key(&mut obj)?;
    // The legacy e-commerce v1 payloads say `action` where the Spec now says `type`.
    if !obj.contains_key("type") {
        if let Some(action) = obj.remove("action") {
            obj.insert("type".into(), action);
        }
    }
    if let Some(t) = obj.get("type") {
        match t.as_str().and_then(CallType::parse) {
            Some(sent) if sent == call => {}
            Some(sent) => {
                return Err(err(
                    ErrorCode::InvalidField,
                    "type",
                    format!(
                        "this endpoint takes `{}` calls, the body says `{}`",
                        call.as_str(),
                        sent.as_str()
                    ),
                ))
            }
            None => return Err(unknown_type(t, "type")),
        }
    }
    let defaults = BatchDefaults::default();
    let event = parse_one(obj, call, &defaults, env, 0)?;
    Ok(Batch {
        events: vec![event],
        write_key,
    })
}

/// Parses one event whose `type` field says which call it is (a line of an NDJSON export).
///
/// # Errors
/// As [`parse_event`]; a missing or unknown `type` is refused.
pub fn parse_typed_event(body: &[u8], env: &Envelope) -> Result<Batch, ParseError> {
    check_size(body.len(), None, ErrorCode::EventTooLarge)?;
    let mut obj = parse_object(body)?;
    let write_key = take_write_key(&mut obj)?;
    let call = match obj.get("type") {
        None => return Err(err(ErrorCode::MissingField, "type", "is required")),
        Some(t) => t
            .as_str()
            .and_then(CallType::parse)
            .ok_or_else(|| unknown_type(t, "type"))?,
    };
    let event = parse_one(obj, call, &BatchDefaults::default(), env, 0)?;
    Ok(Batch {
        events: vec![event],
        write_key,
    })
}

/// Parses a `/v1/batch` body: `{"batch": [...], "context"?, "integrations"?, "sentAt"?}`.
/// Top-level `context` and `integrations` are defaults merged under each event's own; a
/// top-level `sentAt` applies to events that have none.
///
/// # Errors
/// As [`parse_event`], with fields named `batch[i].…`; a body over [`MAX_BATCH_BYTES`] or any
/// event over [`MAX_EVENT_BYTES`] is a size error. One bad event refuses the whole batch.
pub fn parse_batch(body: &[u8], env: &Envelope) -> Result<Batch, ParseError> {
    check_size(body.len(), None, ErrorCode::BatchTooLarge)?;
    let mut obj = parse_object(body)?;
    let write_key = take_write_key(&mut obj)?;
    let items = match obj.remove("batch") {
        Some(Value::Array(items)) => items,
        Some(_) => return Err(err(ErrorCode::InvalidField, "batch", "must be an array")),
        None => return Err(err(ErrorCode::MissingField, "batch", "is required")),
    };
    let defaults = BatchDefaults {
        context: optional_object(&mut obj, "context")?,
        integrations: optional_object(&mut obj, "integrations")?,
        sent_at: optional_time(&obj, "sentAt")?,
    };
    // The defaults have the Spec's types themselves, even where every event overrides them or
    // the batch is empty.
    check_context(&defaults.context)?;
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("batch[{i}]");
        let size = serde_json::to_vec(&item).map(|v| v.len()).unwrap_or(0);
        check_size(size, Some(&path), ErrorCode::EventTooLarge)?;
        let Value::Object(item) = item else {
            return Err(err(ErrorCode::InvalidField, &path, "must be an object"));
        };
        let call = match item.get("type") {
            None => {
                return Err(err(
                    ErrorCode::MissingField,
                    &format!("{path}.type"),
                    "is required in a batch",
                ))
            }
            Some(t) => t
                .as_str()
                .and_then(CallType::parse)
                .ok_or_else(|| unknown_type(t, &format!("{path}.type")))?,
        };
        let event = parse_one(item, call, &defaults, env, i).map_err(|e| e.within(&path))?;
        events.push(event);
    }
    Ok(Batch { events, write_key })
}

/// Refuses `size` bytes if over the limit that `code` stands for (Segment's limits).
fn check_size(size: usize, field: Option<&str>, code: ErrorCode) -> Result<(), ParseError> {
    let (what, limit) = match code {
        ErrorCode::BatchTooLarge => ("a batch", MAX_BATCH_BYTES),
        _ => ("an event", MAX_EVENT_BYTES),
    };
    if size <= limit {
        return Ok(());
    }
    Err(ParseError::new(
        code,
        field,
        format!("{what} may be at most {limit} bytes, this one is {size}"),
    ))
}

#[derive(Default)]
struct BatchDefaults {
    context: Obj,
    integrations: Obj,
    sent_at: Option<DateTime<Utc>>,
}

fn unknown_type(t: &Value, field: &str) -> ParseError {
    err(
        ErrorCode::UnknownCallType,
        field,
        format!(
            "`{}` is not a Segment call; expected one of identify, track, page, screen, group, alias",
            t.as_str().map(str::to_owned).unwrap_or_else(|| t.to_string())
        ),
    )
}

fn take_write_key(obj: &mut Obj) -> Result<Option<String>, ParseError> {
    match obj.remove("writeKey") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(err(ErrorCode::InvalidField, "writeKey", "must be a string")),
    }
}

fn parse_one(
    mut obj: Obj,
    call: CallType,
    defaults: &BatchDefaults,
    env: &Envelope,
    index: usize,
) -> Result<Event, ParseError> {
    let message_id = match obj.get("messageId") {
        None | Some(Value::Null) => MessageId::parse(&format!("auto-{}-{index}", env.request_id))
            .ok_or_else(|| {
            err(
                ErrorCode::InvalidField,
                "messageId",
                "could not be generated",
            )
        })?,
        Some(v) => id_value(v, "messageId")
            .and_then(|s| MessageId::parse(&s).ok_or_else(|| bad_id("messageId")))?,
    };
    let user_id = optional_id(&obj, "userId")?
        .map(|s| UserId::parse(&s).ok_or_else(|| bad_id("userId")))
        .transpose()?;
    let anonymous_id = optional_id(&obj, "anonymousId")?
        .map(|s| AnonymousId::parse(&s).ok_or_else(|| bad_id("anonymousId")))
        .transpose()?;

    let mut call = match call {
        CallType::Identify => Call::Identify {
            traits: optional_object(&mut obj, "traits")?,
        },
        CallType::Track => Call::Track {
            event: required_name(&obj, "event")?,
            properties: optional_object(&mut obj, "properties")?,
        },
        CallType::Page => Call::Page {
            name: optional_name(&obj, "name")?,
            category: optional_name(&obj, "category")?,
            properties: optional_object(&mut obj, "properties")?,
        },
        CallType::Screen => Call::Screen {
            name: optional_name(&obj, "name")?,
            category: optional_name(&obj, "category")?,
            properties: optional_object(&mut obj, "properties")?,
        },
        CallType::Group => Call::Group {
            group_id: match optional_id(&obj, "groupId")? {
                Some(g) if !g.trim().is_empty() && g.len() <= MAX_NAME_LEN => g,
                Some(_) => return Err(bad_id("groupId")),
                None => {
                    return Err(err(
                        ErrorCode::MissingField,
                        "groupId",
                        "is required for group",
                    ))
                }
            },
            traits: optional_object(&mut obj, "traits")?,
        },
        CallType::Alias => Call::Alias {
            previous_id: match optional_id(&obj, "previousId")? {
                Some(p) => UserId::parse(&p)
                    .ok_or_else(|| bad_id("previousId"))?
                    .as_str()
                    .to_owned(),
                None => {
                    return Err(err(
                        ErrorCode::MissingField,
                        "previousId",
                        "is required for alias",
                    ))
                }
            },
        },
    };

    match (&call, &user_id, &anonymous_id) {
        (Call::Alias { .. }, None, _) => {
            return Err(err(
                ErrorCode::MissingField,
                "userId",
                "is required for alias",
            ))
        }
        (_, None, None) => {
            return Err(err(
                ErrorCode::MissingField,
                "userId",
                "either userId or anonymousId is required",
            ))
        }
        _ => {}
    }

    let mut context = defaults.context.clone();
    for (k, v) in optional_object(&mut obj, "context")? {
        context.insert(k, v);
    }
    check_context(&context)?;
    if let Call::Identify { traits } = &mut call {
        // RudderStack's SDKs send an identify's traits in `context.traits` (rudder-sdk-python
        // only there, with none at the top), and RudderStack reads them from there: so does
        // this, when the top level has none. Where it has some, `context.traits` may be a
        // browser's stored copy of older values, which must not be dated now.
        if traits.is_empty() {
            if let Some(Value::Object(in_context)) = context.remove("traits") {
                *traits = in_context;
            }
        }
    }
    let mut integrations = defaults.integrations.clone();
    for (k, v) in optional_object(&mut obj, "integrations")? {
        integrations.insert(k, v);
    }

    let explicit_original = optional_time(&obj, "originalTimestamp")?;
    let timestamp = optional_time(&obj, "timestamp")?;
    let sent_at = optional_time(&obj, "sentAt")?.or(defaults.sent_at);
    let original = explicit_original.or(timestamp);
    let corrected = env.event_time(original, sent_at);

    Ok(Event {
        message_id,
        call,
        user_id,
        anonymous_id,
        timestamp: corrected,
        original_timestamp: original,
        sent_at,
        received_at: env.received_at,
        context: Context(context),
        integrations,
    })
}

fn bad_id(field: &str) -> ParseError {
    err(
        ErrorCode::InvalidField,
        field,
        "must be a non-empty id of at most 512 bytes without NUL characters",
    )
}

/// Ids may be strings or numbers (several SDKs send numeric user ids); anything else is refused.
fn id_value(v: &Value, field: &str) -> Result<String, ParseError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(err(
            ErrorCode::InvalidField,
            field,
            "must be a string or a number",
        )),
    }
}

fn optional_id(obj: &Obj, field: &str) -> Result<Option<String>, ParseError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => id_value(v, field).map(Some),
    }
}

fn optional_name(obj: &Obj, field: &str) -> Result<Option<String>, ParseError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= MAX_NAME_LEN => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(err(
            ErrorCode::InvalidField,
            field,
            format!("may be at most {MAX_NAME_LEN} bytes"),
        )),
        Some(_) => Err(err(ErrorCode::InvalidField, field, "must be a string")),
    }
}

fn required_name(obj: &Obj, field: &str) -> Result<String, ParseError> {
    match optional_name(obj, field)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        Some(_) => Err(err(ErrorCode::InvalidField, field, "must not be empty")),
        None => Err(err(ErrorCode::MissingField, field, "is required")),
    }
}

fn optional_object(obj: &mut Obj, field: &str) -> Result<Obj, ParseError> {
    match obj.remove(field) {
        None | Some(Value::Null) => Ok(Obj::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(err(ErrorCode::InvalidField, field, "must be an object")),
    }
}

fn optional_time(obj: &Obj, field: &str) -> Result<Option<DateTime<Utc>>, ParseError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => match parse_time(s) {
            None => Err(err(
                ErrorCode::InvalidField,
                field,
                format!("`{s}` is not an ISO-8601 date-time"),
            )),
            Some(t) if t < earliest_time() || t > latest_time() => Err(err(
                ErrorCode::InvalidField,
                field,
                format!("`{s}` is outside the accepted range, 1970-01-01 to 9999-12-31"),
            )),
            Some(t) => Ok(Some(t)),
        },
        Some(_) => Err(err(
            ErrorCode::InvalidField,
            field,
            "must be an ISO-8601 date-time string",
        )),
    }
}

/// Accepts the ISO-8601 forms SDKs send: RFC 3339 (`Z` or `+00:00`), `+0000` offsets, no
/// offset at all (taken as UTC), or a bare date (midnight UTC).
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(t.with_timezone(&Utc));
    }
    // No offset (taken as UTC), or `Z` after fields that are not zero-padded (`2015-2-02T…Z`,
    // as in Segment's own batch example), which RFC 3339 parsing refuses.
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.fZ"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Utc.from_utc_datetime(&t))
}

/// The Spec's typed context fields must have their Spec types; other keys pass as sent.
fn check_context(ctx: &Obj) -> Result<(), ParseError> {
    const STRINGS: [&str; 4] = ["ip", "userAgent", "locale", "timezone"];
    const OBJECTS: [&str; 9] = [
        "page", "campaign", "library", "consent", "app", "device", "os", "screen", "traits",
    ];
    for key in STRINGS {
        if let Some(v) = ctx.get(key) {
            if !(v.is_string() || v.is_null()) {
                return Err(err(
                    ErrorCode::InvalidField,
                    &format!("context.{key}"),
                    "must be a string",
                ));
            }
        }
    }
    for key in OBJECTS {
        if let Some(v) = ctx.get(key) {
            if !(v.is_object() || v.is_null()) {
                return Err(err(
                    ErrorCode::InvalidField,
                    &format!("context.{key}"),
                    "must be an object",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env() -> Envelope {
        Envelope::new(
            parse_time("2024-01-01T12:00:10.000Z").expect("valid"),
            "req1",
        )
    }

    fn one(body: &str, call: CallType) -> Result<Event, ParseError> {
        parse_event(body.as_bytes(), call, &env())
            .map(|b| b.events.into_iter().next().expect("one"))
    }

    #[test]
    fn clock_skew_is_corrected_by_received_minus_sent() {
        // The client clock is 10 s behind: it says sent at 12:00:00, we received at 12:00:10.
        let e = one(
            r#"{"userId":"u","event":"E","timestamp":"2024-01-01T11:59:58.500Z","sentAt":"2024-01-01T12:00:00.000Z"}"#,
            CallType::Track,
        )
        .expect("parses");
        assert_eq!(
            e.timestamp(),
            parse_time("2024-01-01T12:00:08.500Z").expect("t")
        );
        assert_eq!(
            e.original_timestamp(),
            parse_time("2024-01-01T11:59:58.500Z")
        );
    }

    #[test]
    fn without_sent_at_the_timestamp_is_taken_as_sent_and_without_any_it_is_received_at() {
        let e = one(
            r#"{"userId":"u","event":"E","timestamp":"2020-05-05"}"#,
            CallType::Track,
        )
        .expect("parses");
        assert_eq!(
            e.timestamp(),
            parse_time("2020-05-05T00:00:00Z").expect("t")
        );
        let e = one(r#"{"userId":"u","event":"E"}"#, CallType::Track).expect("parses");
        assert_eq!(e.timestamp(), env().received_at);
    }

    #[test]
    fn times_beyond_the_accepted_range_are_refused_naming_the_field() {
        // Beyond what the skew arithmetic can hold: refused before it runs.
        let e = one(
            r#"{"userId":"u","event":"E","originalTimestamp":"+200000-01-01T00:00:00","sentAt":"2024-01-01T00:00:00Z"}"#,
            CallType::Track,
        )
        .expect_err("refused");
        assert_eq!(e.code, ErrorCode::InvalidField);
        assert_eq!(e.field.as_deref(), Some("originalTimestamp"));
        let e = one(
            r#"{"userId":"u","event":"E","timestamp":"2024-01-01T00:00:00Z","sentAt":"-100000-01-01T00:00:00"}"#,
            CallType::Track,
        )
        .expect_err("refused");
        assert_eq!(e.field.as_deref(), Some("sentAt"));
        let body = br#"{"sentAt":"-100000-01-01T00:00:00","batch":[{"type":"track","userId":"u","event":"E","timestamp":"2024-01-01T00:00:00Z"}]}"#;
        let e = parse_batch(body, &env()).expect_err("refused");
        assert_eq!(e.field.as_deref(), Some("sentAt"));
    }

    #[test]
    fn an_identify_s_traits_in_context_are_its_traits_as_rudderstack_reads_them() {
        let e = one(
            r#"{"userId":"u","traits":{},"context":{"traits":{"plan":"ctx","email":"a@b.example"},"ip":"1.2.3.4"}}"#,
            CallType::Identify,
        )
        .expect("parses");
        let Call::Identify { traits } = e.call() else {
            panic!("identify");
        };
        assert_eq!(
            (&traits["plan"], &traits["email"]),
            (&serde_json::json!("ctx"), &serde_json::json!("a@b.example"))
        );
        assert!(e.context().0.get("traits").is_none(), "not stored twice");
        assert_eq!(e.context().ip(), Some("1.2.3.4"));
        // With traits at the top, those are the call's; `context.traits` stays as sent.
        let both = one(
            r#"{"userId":"u","traits":{"plan":"top"},"context":{"traits":{"plan":"old","email":"a@b.example"}}}"#,
            CallType::Identify,
        )
        .expect("parses");
        let Call::Identify { traits } = both.call() else {
            panic!("identify");
        };
        assert_eq!(traits.len(), 1);
        assert_eq!(traits["plan"], "top");
        assert!(both.context().0.get("traits").is_some());
        // Other calls keep `context.traits` where it was sent.
        let t = one(
            r#"{"userId":"u","event":"E","context":{"traits":{"plan":"ctx"}}}"#,
            CallType::Track,
        )
        .expect("parses");
        assert!(t.context().0.get("traits").is_some());
    }

    #[test]
    fn the_widest_accepted_times_never_overflow() {
        for (orig, sent) in [
            ("9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z"),
            ("1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z"),
        ] {
            let raw =
                format!(r#"{{"userId":"u","event":"E","timestamp":"{orig}","sentAt":"{sent}"}}"#);
            let e = one(&raw, CallType::Track).expect("parses");
            assert!(e.timestamp() >= earliest_time());
            assert!(e.timestamp() <= env().received_at + DEFAULT_FUTURE_TOLERANCE);
        }
    }

    #[test]
    fn a_time_ahead_of_arrival_is_clamped_and_the_clients_time_is_kept() {
        let e = one(
            r#"{"userId":"u","type":"identify","timestamp":"9999-01-01T00:00:00Z"}"#,
            CallType::Identify,
        )
        .expect("parses");
        assert_eq!(e.timestamp(), env().received_at + DEFAULT_FUTURE_TOLERANCE);
        assert_eq!(e.original_timestamp(), parse_time("9999-01-01T00:00:00Z"));
        // Within the tolerance, the client's time stands.
        let soon = env().received_at + TimeDelta::minutes(1);
        let raw = format!(
            r#"{{"userId":"u","event":"E","timestamp":"{}"}}"#,
            soon.to_rfc3339()
        );
        assert_eq!(
            one(&raw, CallType::Track).expect("parses").timestamp(),
            soon
        );
        // A tighter tolerance clamps tighter.
        let tight = env().with_future_tolerance(TimeDelta::zero());
        let e = parse_event(raw.as_bytes(), CallType::Track, &tight)
            .expect("parses")
            .events
            .remove(0);
        assert_eq!(e.timestamp(), env().received_at);
    }

    #[test]
    fn lenient_iso_forms_parse() {
        let want = parse_time("2015-02-02T00:30:08.276Z").expect("rfc3339");
        assert_eq!(parse_time("2015-2-02T00:30:08.276Z"), Some(want));
        assert_eq!(parse_time("2015-02-02T00:30:08.276+0000"), Some(want));
        assert_eq!(parse_time("2015-02-02T00:30:08.276"), Some(want));
        assert_eq!(parse_time("2015-02-02T01:30:08.276+01:00"), Some(want));
        assert_eq!(parse_time("02/02/2015"), None);
    }

    #[test]
    fn a_missing_identity_names_user_id() {
        let e = one(r#"{"event":"E"}"#, CallType::Track).expect_err("refused");
        assert_eq!(e.code, ErrorCode::MissingField);
        assert_eq!(e.field.as_deref(), Some("userId"));
    }

    #[test]
    fn wrong_types_name_their_field() {
        for (body, field) in [
            (r#"{"userId":"u","event":5}"#, "event"),
            (
                r#"{"userId":"u","event":"E","properties":[]}"#,
                "properties",
            ),
            (r#"{"userId":{},"event":"E"}"#, "userId"),
            (
                r#"{"userId":"u","event":"E","context":{"ip":1}}"#,
                "context.ip",
            ),
            (
                r#"{"userId":"u","event":"E","timestamp":"yesterday"}"#,
                "timestamp",
            ),
        ] {
            let e = one(body, CallType::Track).expect_err(body);
            assert_eq!(e.code, ErrorCode::InvalidField, "{body}");
            assert_eq!(e.field.as_deref(), Some(field), "{body}");
        }
    }

    #[test]
    fn a_batch_error_names_the_item() {
        let body = r#"{"batch":[{"type":"track","userId":"u","event":"E"},{"type":"track","userId":"u"}]}"#;
        let e = parse_batch(body.as_bytes(), &env()).expect_err("refused");
        assert_eq!(e.field.as_deref(), Some("batch[1].event"));
        let body = r#"{"batch":[{"type":"purchase","userId":"u"}]}"#;
        let e = parse_batch(body.as_bytes(), &env()).expect_err("refused");
        assert_eq!(e.code, ErrorCode::UnknownCallType);
        assert_eq!(e.field.as_deref(), Some("batch[0].type"));
    }

    #[test]
    fn batch_defaults_fill_context_and_sent_at() {
        let body = r#"{"context":{"library":{"name":"x"}},"sentAt":"2024-01-01T12:00:00Z",
            "batch":[{"type":"identify","userId":"u","timestamp":"2024-01-01T11:00:00Z","context":{"ip":"1.2.3.4"}}]}"#;
        let b = parse_batch(body.as_bytes(), &env()).expect("parses");
        let e = &b.events[0];
        assert_eq!(e.context().ip(), Some("1.2.3.4"));
        assert!(e.context().as_map().contains_key("library"));
        assert_eq!(
            e.timestamp(),
            parse_time("2024-01-01T11:00:10Z").expect("t")
        );
    }

    #[test]
    fn a_batch_context_of_the_wrong_shape_is_refused_even_with_no_events() {
        for body in [
            r#"{"batch":[],"context":{"userAgent":{}}}"#,
            r#"{"batch":[{"type":"track","userId":"u","event":"E","context":{"userAgent":"ok"}}],"context":{"userAgent":7}}"#,
        ] {
            let e = parse_batch(body.as_bytes(), &env()).expect_err(body);
            assert_eq!(e.field.as_deref(), Some("context.userAgent"), "{body}");
        }
    }

    #[test]
    fn nul_anywhere_in_an_event_is_refused_naming_where() {
        for (body, field) in [
            (r#"{"userId":"u","event":"A\u0000B"}"#, "event"),
            (
                r#"{"userId":"u","event":"E","properties":{"p":["x","y\u0000"]}}"#,
                "properties.p[1]",
            ),
            (
                r#"{"userId":"u","event":"E","properties":{"k\u0000":1}}"#,
                "properties.k\\u0000",
            ),
        ] {
            let e = one(body, CallType::Track).expect_err(body);
            assert_eq!(e.field.as_deref(), Some(field), "{body}");
        }
        let e = parse_batch(
            br#"{"batch":[{"type":"track","userId":"u","event":"E"},{"type":"identify","userId":"u","traits":{"plan":"a\u0000"}}]}"#,
            &env(),
        )
        .expect_err("NUL in a batch");
        assert_eq!(e.field.as_deref(), Some("batch[1].traits.plan"));
        // An escaped backslash before `u0000` is text, not NUL.
        assert!(one(r#"{"userId":"u","event":"a\\u0000"}"#, CallType::Track).is_ok());
    }

    #[test]
    fn oversized_events_are_size_errors() {
        let big = "x".repeat(MAX_EVENT_BYTES);
        let body = format!(r#"{{"userId":"u","event":"E","properties":{{"p":"{big}"}}}}"#);
        let e = one(&body, CallType::Track).expect_err("too big");
        assert!(e.code.is_size());
    }

    proptest! {
        /// Parsing never panics, whatever bytes arrive.
        #[test]
        fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_batch(&bytes, &env());
            let _ = parse_event(&bytes, CallType::Track, &env());
        }

        /// What we store re-parses to the same event (export → import round-trips).
        #[test]
        fn stored_json_round_trips(user in "[a-z0-9]{1,12}", name in "[A-Za-z][A-Za-z ]{0,19}", n in 0i64..1000) {
            let body = serde_json::json!({"userId": user, "event": name, "messageId": "m1",
                "properties": {"n": n}, "timestamp": "2024-01-01T00:00:00.000Z"});
            let e = one(&body.to_string(), CallType::Track).expect("parses");
            let again = parse_event(e.to_json().to_string().as_bytes(), CallType::Track, &env())
                .expect("re-parses").events.remove(0);
            prop_assert_eq!(again.call(), e.call());
            prop_assert_eq!(again.user_id(), e.user_id());
            prop_assert_eq!(again.timestamp(), e.timestamp());
        }
    }
}
