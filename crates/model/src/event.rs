use chrono::{DateTime, SecondsFormat, Utc};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::ids::{AnonymousId, MessageId, UserId};

/// The six calls of the Segment Spec (a batch is a transport, not a call).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallType {
    /// Who the customer is, with traits.
    Identify,
    /// Something the customer did.
    Track,
    /// A web page view.
    Page,
    /// A mobile screen view.
    Screen,
    /// Membership of an account or organisation.
    Group,
    /// Two identities are the same customer.
    Alias,
}

impl CallType {
    /// Every call, in Spec order.
    pub const ALL: [CallType; 6] = [
        CallType::Identify,
        CallType::Track,
        CallType::Page,
        CallType::Screen,
        CallType::Group,
        CallType::Alias,
    ];

    /// The `type` value on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            CallType::Identify => "identify",
            CallType::Track => "track",
            CallType::Page => "page",
            CallType::Screen => "screen",
            CallType::Group => "group",
            CallType::Alias => "alias",
        }
    }

    /// Inverse of [`CallType::as_str`].
    pub fn parse(raw: &str) -> Option<Self> {
        CallType::ALL.into_iter().find(|c| c.as_str() == raw)
    }
}

/// What a call says beyond the common fields; each variant holds exactly what the Spec gives
/// that call, so code matching on it cannot read a track's `event` off an identify.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// `identify`: the traits to set on the profile.
    Identify {
        /// Traits as sent.
        traits: Map<String, Value>,
    },
    /// `track`: an action and its properties.
    Track {
        /// The action's name, e.g. `Order Completed`.
        event: String,
        /// Properties as sent.
        properties: Map<String, Value>,
    },
    /// `page`: a web page view.
    Page {
        /// Page name, if given.
        name: Option<String>,
        /// Page category, if given.
        category: Option<String>,
        /// Properties as sent.
        properties: Map<String, Value>,
    },
    /// `screen`: a mobile screen view.
    Screen {
        /// Screen name, if given.
        name: Option<String>,
        /// Screen category, if given.
        category: Option<String>,
        /// Properties as sent.
        properties: Map<String, Value>,
    },
    /// `group`: the customer belongs to an account.
    Group {
        /// The account's id.
        group_id: String,
        /// The account's traits.
        traits: Map<String, Value>,
    },
    /// `alias`: `previous_id` and the event's `userId` are one customer.
    Alias {
        /// The identity being merged in.
        previous_id: String,
    },
}

impl Call {
    /// Which call this is.
    pub fn call_type(&self) -> CallType {
        match self {
            Call::Identify { .. } => CallType::Identify,
            Call::Track { .. } => CallType::Track,
            Call::Page { .. } => CallType::Page,
            Call::Screen { .. } => CallType::Screen,
            Call::Group { .. } => CallType::Group,
            Call::Alias { .. } => CallType::Alias,
        }
    }
}

/// The `context` object: the fields the Spec defines are type-checked at parse time and read
/// through accessors; everything else is kept as sent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Context(pub(crate) Map<String, Value>);

impl Context {
    fn str_field(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// `context.ip`.
    pub fn ip(&self) -> Option<&str> {
        self.str_field("ip")
    }

    /// `context.userAgent`.
    pub fn user_agent(&self) -> Option<&str> {
        self.str_field("userAgent")
    }

    /// `context.locale`.
    pub fn locale(&self) -> Option<&str> {
        self.str_field("locale")
    }

    /// `context.consent`, the Segment consent object, if present.
    pub fn consent(&self) -> Option<&Map<String, Value>> {
        self.0.get("consent").and_then(Value::as_object)
    }

    /// The whole object as sent.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }
}

/// One validated Segment event. Built only by [`crate::parse_event`] / [`crate::parse_batch`],
/// so it always has a message id, at least one identity, and a skew-corrected timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub(crate) message_id: MessageId,
    pub(crate) call: Call,
    pub(crate) user_id: Option<UserId>,
    pub(crate) anonymous_id: Option<AnonymousId>,
    pub(crate) timestamp: DateTime<Utc>,
    pub(crate) original_timestamp: Option<DateTime<Utc>>,
    pub(crate) sent_at: Option<DateTime<Utc>>,
    pub(crate) received_at: DateTime<Utc>,
    pub(crate) context: Context,
    pub(crate) integrations: Map<String, Value>,
}

impl Event {
    /// The idempotency key.
    pub fn message_id(&self) -> &MessageId {
        &self.message_id
    }

    /// The call and its own fields.
    pub fn call(&self) -> &Call {
        &self.call
    }

    /// `userId`, if sent.
    pub fn user_id(&self) -> Option<&UserId> {
        self.user_id.as_ref()
    }

    /// `anonymousId`, if sent.
    pub fn anonymous_id(&self) -> Option<&AnonymousId> {
        self.anonymous_id.as_ref()
    }

    /// When it happened, corrected for the sender's clock skew
    /// (`receivedAt - (sentAt - originalTimestamp)`).
    pub fn timestamp(&self) -> DateTime<Utc> {
        self.timestamp
    }

    /// The sender's own clock reading of when it happened, uncorrected.
    pub fn original_timestamp(&self) -> Option<DateTime<Utc>> {
        self.original_timestamp
    }

    /// When the sender sent it.
    pub fn sent_at(&self) -> Option<DateTime<Utc>> {
        self.sent_at
    }

    /// When we received it.
    pub fn received_at(&self) -> DateTime<Utc> {
        self.received_at
    }

    /// The context object.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The `integrations` object as sent.
    pub fn integrations(&self) -> &Map<String, Value> {
        &self.integrations
    }

    /// The objects that hold the customer's data, by root name (`traits` or `properties`, and
    /// `context`), for the minimiser to prune in place.
    pub fn data_mut(&mut self) -> Vec<(&'static str, &mut Map<String, Value>)> {
        let mut out: Vec<(&'static str, &mut Map<String, Value>)> = Vec::with_capacity(2);
        match &mut self.call {
            Call::Identify { traits } | Call::Group { traits, .. } => out.push(("traits", traits)),
            Call::Track { properties, .. }
            | Call::Page { properties, .. }
            | Call::Screen { properties, .. } => out.push(("properties", properties)),
            Call::Alias { .. } => {}
        }
        out.push(("context", &mut self.context.0));
        out
    }

    /// `track` event name, if this is a track.
    pub fn event_name(&self) -> Option<&str> {
        match &self.call {
            Call::Track { event, .. } => Some(event),
            _ => None,
        }
    }

    /// The event in Segment's own JSON shape, with the corrected `timestamp`; this is the
    /// storage and export format, so a stored event reads like the one that was sent.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Serialises straight from the event's fields (no intermediate `Value`), since ingestion
/// does this once per stored event.
impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", self.call.call_type().as_str())?;
        m.serialize_entry("messageId", self.message_id.as_str())?;
        if let Some(u) = &self.user_id {
            m.serialize_entry("userId", u.as_str())?;
        }
        if let Some(a) = &self.anonymous_id {
            m.serialize_entry("anonymousId", a.as_str())?;
        }
        match &self.call {
            Call::Identify { traits } => m.serialize_entry("traits", traits)?,
            Call::Track { event, properties } => {
                m.serialize_entry("event", event)?;
                m.serialize_entry("properties", properties)?;
            }
            Call::Page {
                name,
                category,
                properties,
            }
            | Call::Screen {
                name,
                category,
                properties,
            } => {
                if let Some(n) = name {
                    m.serialize_entry("name", n)?;
                }
                if let Some(c) = category {
                    m.serialize_entry("category", c)?;
                }
                m.serialize_entry("properties", properties)?;
            }
            Call::Group { group_id, traits } => {
                m.serialize_entry("groupId", group_id)?;
                m.serialize_entry("traits", traits)?;
            }
            Call::Alias { previous_id } => m.serialize_entry("previousId", previous_id)?,
        }
        m.serialize_entry("timestamp", &iso(self.timestamp))?;
        if let Some(t) = self.original_timestamp {
            m.serialize_entry("originalTimestamp", &iso(t))?;
        }
        if let Some(t) = self.sent_at {
            m.serialize_entry("sentAt", &iso(t))?;
        }
        m.serialize_entry("receivedAt", &iso(self.received_at))?;
        m.serialize_entry("context", &self.context.0)?;
        if !self.integrations.is_empty() {
            m.serialize_entry("integrations", &self.integrations)?;
        }
        m.end()
    }
}

/// ISO-8601 with milliseconds and `Z`, the form Segment's libraries send.
pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
