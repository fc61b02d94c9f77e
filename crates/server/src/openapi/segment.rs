//! The Segment Spec's calls as JSON Schemas, so that the document says what `model::parse`
//! accepts: which fields each call requires, their types, and the limits on ids and names.
//! Written as JSON because the Spec is; `model::parse` stays the authority, and the server's
//! tests send what these schemas describe.

use serde_json::{json, Map, Value};

/// The calls, by the name of their component and the `type` each one carries.
pub(super) const CALLS: [(&str, &str); 6] = [
    ("Identify", "identify"),
    ("Track", "track"),
    ("Page", "page"),
    ("Screen", "screen"),
    ("Group", "group"),
    ("Alias", "alias"),
];

/// The component schemas: one per call, `Batch`, and the parts they share.
pub(super) fn components() -> Map<String, Value> {
    let mut schemas = Map::new();
    schemas.insert(
        "SegmentId".into(),
        id("at most 512 bytes of UTF-8 after trimming, without NUL"),
    );
    schemas.insert("SegmentTimestamp".into(), json!({
        "type": ["string", "null"],
        "format": "date-time",
        "pattern": "^\\s*[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}",
        "description": "ISO 8601: RFC 3339, a `+0000` offset, no offset (taken as UTC) or a bare date"
    }));
    schemas.insert("SegmentContext".into(), context());
    schemas.insert("SegmentCommon".into(), common());
    for (name, call) in CALLS {
        schemas.insert(name.into(), one_call(call));
    }
    schemas.insert("Batch".into(), batch());
    schemas.insert("SegmentCondition".into(), condition());
    schemas
}

/// A segment's definition (`personalize::segments::Condition`): its shape. Which values each
/// comparison takes (a list for `in`, a number for an ordering, a known stage) is checked on
/// arrival and refused with a 400 naming the problem.
fn condition() -> Value {
    let me = json!({"$ref": "#/components/schemas/SegmentCondition"});
    json!({
        "description": "`{\"all\": [...]}`, `{\"any\": [...]}`, `{\"not\": {...}}` or `{\"field\", \"op\", \"value\"}`, nested at most 16 deep",
        "oneOf": [
            {"type": "object", "required": ["all"], "additionalProperties": false,
             "properties": {"all": {"type": "array", "items": me}}},
            {"type": "object", "required": ["any"], "additionalProperties": false,
             "properties": {"any": {"type": "array", "items": me}}},
            {"type": "object", "required": ["not"], "additionalProperties": false,
             "properties": {"not": me}},
            {"type": "object", "required": ["field", "op"], "additionalProperties": false,
             "properties": {
                "field": {"type": "string", "pattern": "^(stage|orders|revenue|events|days_since_first_seen|days_since_last_seen|clv|p_alive|churn_risk|rfm\\.(r|f|m|recency|frequency|monetary)|trait\\..+|event\\..+)$",
                          "description": "`stage`, `orders`, `revenue`, `events`, `days_since_first_seen`, `days_since_last_seen`, `clv`, `p_alive`, `churn_risk`, `rfm.r|f|m`, `trait.NAME` or `event.NAME[.Nd]`"},
                "op": {"type": "string", "enum": ["eq", "ne", "gt", "gte", "lt", "lte", "in", "exists"]},
                "value": {"description": "A list for `in`, a number for `gt`/`gte`/`lt`/`lte`, a stage's name for `stage`"}
             }}
        ]
    })
}

/// An id: a string with something besides whitespace, or a number (several SDKs send numeric
/// user ids).
fn id(description: &str) -> Value {
    json!({
        "type": ["string", "number"],
        "minLength": 1,
        "maxLength": 512,
        "pattern": "^[^\\u0000]*\\S[^\\u0000]*$",
        "description": description
    })
}

fn nullable_object(description: &str) -> Value {
    json!({"type": ["object", "null"], "description": description})
}

fn name(description: &str) -> Value {
    json!({"type": ["string", "null"], "maxLength": 1024, "pattern": "^[^\\u0000]*$", "description": description})
}

fn context() -> Value {
    let mut properties = Map::new();
    for key in ["ip", "userAgent", "locale", "timezone"] {
        properties.insert(key.into(), json!({"type": ["string", "null"]}));
    }
    for key in [
        "page", "campaign", "library", "consent", "app", "device", "os", "screen", "traits",
    ] {
        properties.insert(key.into(), json!({"type": ["object", "null"]}));
    }
    json!({
        "type": ["object", "null"],
        "description": "The Spec's context. Its typed fields must have their Spec types; other keys pass as sent. `consent` carries the customer's choices (Segment's consent object).",
        "properties": properties
    })
}

/// The fields every call may carry.
fn common() -> Value {
    let nullable_id =
        json!({"anyOf": [{"$ref": "#/components/schemas/SegmentId"}, {"type": "null"}]});
    json!({
        "type": "object",
        "properties": {
            "messageId": {
                "anyOf": [{"$ref": "#/components/schemas/SegmentId"}, {"type": "null"}],
                "description": "Makes the call idempotent: a call whose messageId is stored already is acknowledged and not stored again. Generated when absent."
            },
            "userId": nullable_id,
            "anonymousId": nullable_id,
            "timestamp": {"$ref": "#/components/schemas/SegmentTimestamp"},
            "originalTimestamp": {"$ref": "#/components/schemas/SegmentTimestamp"},
            "sentAt": {"$ref": "#/components/schemas/SegmentTimestamp"},
            "receivedAt": {"description": "Ignored (the server sets it), whatever it holds but U+0000"},
            "context": {"$ref": "#/components/schemas/SegmentContext"},
            "integrations": nullable_object("Which destinations the SDK meant the call for; stored as sent"),
            "writeKey": {"type": ["string", "null"], "description": "The write key, where analytics.js puts it; or send it in the Authorization header"}
        }
    })
}

/// Who a call is about: a non-null `userId` or `anonymousId`.
fn someone() -> Value {
    json!({"anyOf": [
        {"required": ["userId"], "properties": {"userId": {"$ref": "#/components/schemas/SegmentId"}}},
        {"required": ["anonymousId"], "properties": {"anonymousId": {"$ref": "#/components/schemas/SegmentId"}}}
    ]})
}

/// One call as its own endpoint takes it: `type`, when sent, must name this call.
fn one_call(call: &str) -> Value {
    let (own, required, who): (Value, Vec<&str>, Value) = match call {
        "identify" => (
            json!({"traits": nullable_object("What is known of the customer")}),
            vec![],
            someone(),
        ),
        "track" => (
            json!({
                "event": {"type": "string", "maxLength": 1024, "pattern": "^[^\\u0000]*\\S[^\\u0000]*$", "description": "What happened, e.g. `Order Completed`"},
                "properties": nullable_object("Details of the event; `Order Completed` carries `products[]`, `revenue`, `currency`")
            }),
            vec!["event"],
            someone(),
        ),
        "page" | "screen" => (
            json!({
                "name": name("The page's or screen's name"),
                "category": name("Its category"),
                "properties": nullable_object("Details of the view")
            }),
            vec![],
            someone(),
        ),
        "group" => (
            json!({
                "groupId": {
                    "type": ["string", "number"],
                    "minLength": 1,
                    "maxLength": 1024,
                    "pattern": "^[^\\u0000]*\\S[^\\u0000]*$",
                    "description": "The account: at most 1024 bytes, not only whitespace"
                },
                "traits": nullable_object("What is known of the account")
            }),
            vec!["groupId"],
            someone(),
        ),
        _ => (
            json!({
                "previousId": {"$ref": "#/components/schemas/SegmentId"},
                "userId": {"$ref": "#/components/schemas/SegmentId"}
            }),
            vec!["previousId", "userId"],
            json!({}),
        ),
    };
    let mut properties = own;
    if let Some(map) = properties.as_object_mut() {
        map.insert(
            "type".into(),
            json!({"type": "string", "enum": [call], "description": "This call's name; optional on its own endpoint, required in a batch"}),
        );
    }
    json!({
        "description": format!("A Segment Spec `{call}` call (at most 32 KB; no string or key anywhere in it may hold U+0000)"),
        "allOf": [
            {"$ref": "#/components/schemas/SegmentCommon"},
            {"type": "object", "properties": properties, "required": required},
            who
        ]
    })
}

fn batch() -> Value {
    let items: Vec<Value> = CALLS
        .iter()
        .map(|(name, _)| {
            json!({"allOf": [{"$ref": format!("#/components/schemas/{name}")}, {"required": ["type"]}]})
        })
        .collect();
    json!({
        "type": "object",
        "description": "Many calls, stored whole or not at all (at most 500 KB; each call at most 32 KB). Top-level `context` and `integrations` are defaults merged under each call's own; a top-level `sentAt` applies to calls that have none.",
        "required": ["batch"],
        "properties": {
            "batch": {"type": "array", "items": {"anyOf": items}},
            "context": {"$ref": "#/components/schemas/SegmentContext"},
            "integrations": nullable_object("Defaults for every call"),
            "sentAt": {"$ref": "#/components/schemas/SegmentTimestamp"},
            "writeKey": {"type": ["string", "null"]}
        }
    })
}
