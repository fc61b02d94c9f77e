//! Read models of a profile, shaped for the API and the CLI.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use consentric_model::{AnonymousId, Identity, ProfileId, UserId};
use serde::Serialize;
use serde_json::Value;

use crate::error::EngineError;
use consentric_model::IdentityKind;

/// How a caller names a customer: `user_id:<id>`, `anonymous_id:<id>`, `profile:<id>`, or a
/// bare id, which is tried as a user id, then an anonymous id, then a profile id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileRef {
    /// Exactly this identity.
    Identity(Identity),
    /// Exactly this profile (merged-away ids redirect).
    Profile(ProfileId),
    /// Any of the above, in that order.
    Any(String),
}

impl ProfileRef {
    /// Parses the forms above.
    ///
    /// # Errors
    /// An empty or over-long id.
    pub fn parse(raw: &str) -> Result<Self, EngineError> {
        let bad = || EngineError::Invalid {
            field: "id".into(),
            message: "must be a non-empty id of at most 512 bytes".into(),
        };
        if let Some(v) = raw.strip_prefix("user_id:") {
            return Ok(ProfileRef::Identity(Identity::user(
                &UserId::parse(v).ok_or_else(bad)?,
            )));
        }
        if let Some(v) = raw.strip_prefix("anonymous_id:") {
            return Ok(ProfileRef::Identity(Identity::anonymous(
                &AnonymousId::parse(v).ok_or_else(bad)?,
            )));
        }
        if let Some(v) = raw.strip_prefix("profile:") {
            return Ok(ProfileRef::Profile(ProfileId::parse(v).ok_or_else(bad)?));
        }
        UserId::parse(raw)
            .map(|u| ProfileRef::Any(u.as_str().to_owned()))
            .ok_or_else(bad)
    }
}

/// ISO-8601 UTC from milliseconds.
pub(crate) fn iso(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A profile as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProfileView {
    /// Consentric's id.
    pub profile_id: String,
    /// When it was created.
    pub created_at: String,
    /// The identities that resolve to it.
    pub identities: Vec<IdentityView>,
    /// Traits with provenance, by name.
    pub traits: Vec<TraitView>,
    /// Computed counters.
    pub counters: ProfileCountersView,
    /// Profiles merged into this one (their ids redirect here).
    pub merged_from: Vec<String>,
}

/// One identity of a profile.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IdentityView {
    /// `user_id` or `anonymous_id`.
    pub kind: String,
    /// The id.
    pub value: String,
    /// When first seen.
    pub first_seen: String,
}

/// A trait with its latest value and where it came from.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TraitView {
    /// Trait name.
    pub name: String,
    /// Latest value by event time.
    pub value: Value,
    /// Event time of that value.
    pub updated_at: String,
    /// The event that set it.
    pub message_id: String,
}

/// Counters computed on ingest.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProfileCountersView {
    /// Earliest event.
    pub first_seen: String,
    /// Latest event.
    pub last_seen: String,
    /// Events.
    pub events: i64,
    /// `Order Completed` events.
    pub orders: i64,
    /// Sum of order revenue.
    pub revenue: f64,
}

/// The identity graph around a profile: its identities and the observed links between them.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IdentityGraph {
    /// The profile.
    pub profile_id: String,
    /// Nodes.
    pub identities: Vec<IdentityView>,
    /// Edges (each stored in both directions; shown once).
    pub links: Vec<IdentityLinkView>,
}

/// One edge of the identity graph.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IdentityLinkView {
    /// One end, `kind:value`.
    pub from: String,
    /// Other end, `kind:value`.
    pub to: String,
    /// The call that showed it.
    pub via: String,
    /// That event's message id.
    pub message_id: String,
    /// Event time.
    pub linked_at: String,
}

/// A stored event as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StoredEventView {
    /// Arrival order.
    pub seq: i64,
    /// The event in Segment JSON.
    pub event: Value,
}

/// A decision from the customer's decision log: what was decided and why, as recorded.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LoggedDecision {
    /// Its number in the customer's log.
    pub seq: i64,
    /// When it was made (ISO-8601).
    pub decided_at: String,
    /// Where it was shown.
    pub placement: String,
    /// Whether it was personal, for which purpose, the items, the action chosen, the data
    /// used and the reasons, in the words the decision's explanation used.
    pub decision: Value,
}

/// The profile a reference names now (following merges). Needs nothing but the store.
///
/// # Errors
/// [`EngineError::NotFound`] if nothing matches.
pub(crate) fn find_profile(
    store: &consentric_store::Store,
    r: &ProfileRef,
) -> Result<ProfileId, EngineError> {
    store
        .snapshot(|s| find_profile_in(s, r))?
        .ok_or_else(|| EngineError::NotFound("profile".into()))
}

/// The profile `r` names, read on snapshot `s` (see [`find_profile`]).
pub(crate) fn find_profile_in(
    s: &mut consentric_store::Snapshot<'_>,
    r: &ProfileRef,
) -> Result<Option<ProfileId>, consentric_store::StoreError> {
    match r {
        ProfileRef::Identity(id) => s.find_identity(id),
        ProfileRef::Profile(p) => s.resolve_profile(p),
        ProfileRef::Any(raw) => {
            for kind in [IdentityKind::UserId, IdentityKind::AnonymousId] {
                let id = consentric_model::Identity {
                    kind,
                    value: raw.clone(),
                };
                if let Some(p) = s.find_identity(&id)? {
                    return Ok(Some(p));
                }
            }
            match ProfileId::parse(raw) {
                Some(p) => s.resolve_profile(&p),
                None => Ok(None),
            }
        }
    }
}
