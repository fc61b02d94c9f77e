//! The shapes of profiles, their events, identities, recipients and purpose-scoped views in the OpenAPI document. The engine returns domain values and the
//! handlers serialise them as they are; these twins only describe them (Schemathesis checks in
//! CI that every answer matches), so the engine knows nothing of the HTTP contract.
#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;

/// A profile as the API shows it.
#[derive(Serialize, ToSchema)]
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
#[derive(Serialize, ToSchema)]
pub struct IdentityView {
    /// `user_id` or `anonymous_id`.
    pub kind: String,
    /// The id.
    pub value: String,
    /// When first seen.
    pub first_seen: String,
}

/// A trait with its latest value and where it came from.
#[derive(Serialize, ToSchema)]
pub struct TraitView {
    /// Trait name.
    pub name: String,
    /// Latest value by event time.
    pub value: serde_json::Value,
    /// Event time of that value.
    pub updated_at: String,
    /// The event that set it.
    pub message_id: String,
}

/// Counters computed on ingest.
#[derive(Serialize, ToSchema)]
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
#[derive(Serialize, ToSchema)]
pub struct IdentityGraph {
    /// The profile.
    pub profile_id: String,
    /// Nodes.
    pub identities: Vec<IdentityView>,
    /// Edges (each stored in both directions; shown once).
    pub links: Vec<IdentityLinkView>,
}

/// One edge of the identity graph.
#[derive(Serialize, ToSchema)]
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

/// A decision from a customer's decision log.
#[derive(Serialize, ToSchema)]
pub struct LoggedDecision {
    /// Its number in the customer's log.
    pub seq: i64,
    /// When it was made.
    pub decided_at: String,
    /// Where it was shown.
    pub placement: String,
    /// Whether it was personal, for which purpose, the recommender, the items, the stage, the
    /// action chosen, the data used and the reasons, as the decision's explanation put them.
    #[schema(value_type = Object)]
    pub decision: serde_json::Value,
}

/// A stored event as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct StoredEventView {
    /// Arrival order.
    pub seq: i64,
    /// The event in Segment JSON.
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

/// A purpose that discloses data, as it concerns this customer.
#[derive(Serialize, ToSchema)]
pub struct PurposeRecipients {
    /// The purpose.
    pub purpose: String,
    /// Who receives data for it.
    pub recipients: Vec<String>,
    /// Whether it may use their data now.
    pub has_basis_now: bool,
}

/// A clean-room session that ran while the customer could take part.
#[derive(Serialize, ToSchema)]
pub struct Disclosure {
    /// The partner.
    pub partner: String,
    /// The session.
    pub session: String,
    /// When it completed.
    pub at: String,
    /// What the partner received: blinded identifiers, and for a guest session encrypted
    /// values.
    pub received: String,
}

/// Everything an export says about recipients.
#[derive(Serialize, ToSchema)]
pub struct Recipients {
    /// Purposes that disclose data and had a basis for the customer at some time.
    pub by_purpose: Vec<PurposeRecipients>,
    /// Clean-room sessions they could have taken part in (a basis for the clean-room purpose
    /// when the session ran).
    pub disclosures: Vec<Disclosure>,
}

/// What one purpose may see of a customer's profile.
#[derive(Serialize, ToSchema)]
pub struct PurposeScopedProfile {
    /// The profile.
    pub profile_id: String,
    /// The purpose this view serves, and no other.
    pub purpose: String,
    /// The data categories the grant opened.
    pub categories: Vec<String>,
    /// The traits whose category the grant permits.
    pub traits: Vec<TraitView>,
    /// Traits withheld (their names only), because the purpose may not use their category.
    pub withheld: Vec<String>,
    /// The latest events (at most 100, newest first), each pruned to the permitted categories.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
}
