//! The shapes of segments in the OpenAPI document. The engine returns domain values and the
//! handlers serialise them as they are; these twins only describe them (Schemathesis checks in
//! CI that every answer matches), so the engine knows nothing of the HTTP contract.
#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;

/// A segment's members as kept up to date (on ingest and consent changes, by `serve`'s
/// refresher or `segments refresh`).
#[derive(Serialize, ToSchema)]
pub struct SegmentMembers {
    /// The segment.
    pub name: String,
    /// Customers in it.
    pub size: u64,
    /// Up to the requested number, longest members first (profile ids).
    pub members: Vec<String>,
    /// Customers whose membership is waiting for the next refresh.
    pub pending: usize,
}

/// What a refresh of memberships did.
#[derive(Serialize, ToSchema)]
pub struct SegmentRefresh {
    /// Customers evaluated.
    pub customers: usize,
    /// Memberships begun.
    pub joined: u64,
    /// Memberships ended.
    pub left: u64,
}

/// A stored segment.
#[derive(Serialize, ToSchema)]
pub struct SegmentView {
    /// Its name.
    pub name: String,
    /// Its condition.
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
    /// When it was last defined (RFC 3339).
    pub updated_at: String,
}

/// A segment's size and first members.
#[derive(Serialize, ToSchema)]
pub struct SegmentPreview {
    /// The segment.
    pub name: String,
    /// The purpose it was evaluated under.
    pub purpose: String,
    /// Customers in it.
    pub size: usize,
    /// Customers evaluated (with a basis for the purpose).
    pub evaluated: usize,
    /// Customers left out for want of a basis.
    pub left_out: usize,
    /// Up to the requested number of members (profile ids).
    pub members: Vec<String>,
}

/// A cluster k-means found, described by its centre.
#[derive(Serialize, ToSchema)]
pub struct SegmentProposal {
    /// Clusters chosen (by silhouette).
    pub k: usize,
    /// Mean silhouette of the chosen clustering.
    pub silhouette: f64,
    /// Customers clustered.
    pub customers: usize,
    /// Customers left out for want of a basis.
    pub left_out: usize,
    /// The features, in the order of each centre.
    pub features: Vec<String>,
    /// Per cluster: size and centre.
    #[schema(value_type = Vec<Object>)]
    pub clusters: Vec<serde_json::Value>,
}
