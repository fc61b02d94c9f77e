//! The shapes of consent views in the OpenAPI document. The engine returns domain values and the
//! handlers serialise them as they are; these twins only describe them (Schemathesis checks in
//! CI that every answer matches), so the engine knows nothing of the HTTP contract.
#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;

/// A purpose as consent banners show it.
#[derive(Serialize, ToSchema)]
pub struct PurposeView {
    /// Its id.
    pub id: String,
    /// What the customer is told.
    pub text: String,
    /// The language tag of `text` when it is a translation (absent for the declared text).
    pub language: Option<String>,
    /// `consent`, `contract`, `legitimate_interest` or `legal_obligation`.
    pub legal_basis: String,
    /// The data categories it may use.
    pub categories: Vec<String>,
    /// How long data is kept for it, in days.
    pub retention_days: u32,
    /// Version of its text.
    pub version: u32,
    /// Whether it is a sale or share of data (CCPA; denied by Global Privacy Control).
    pub sale_or_share: bool,
    /// Who receives data for it (recipients or categories of recipient).
    pub recipients: Vec<String>,
}

/// A customer's consent, purpose by purpose, now.
#[derive(Serialize, ToSchema)]
pub struct ConsentView {
    /// The profile.
    pub profile_id: String,
    /// Processing is restricted (GDPR art. 18): only `essential` and legal obligations have a
    /// basis; the data stays stored.
    pub restricted: bool,
    /// One entry per declared purpose.
    pub purposes: Vec<PurposeConsent>,
}

/// One purpose's state for one customer.
#[derive(Serialize, ToSchema)]
pub struct PurposeConsent {
    /// The purpose.
    pub purpose: String,
    /// Its legal basis.
    pub legal_basis: String,
    /// Whether processing for it is lawful now.
    pub has_basis: bool,
    /// The latest decision recorded, if any.
    pub decision: Option<String>,
    /// Where that decision came from.
    pub source: Option<String>,
    /// The purpose version it was given for.
    pub purpose_version: Option<i64>,
    /// When it was decided.
    pub decided_at: Option<String>,
}

/// One line of a customer's consent history.
#[derive(Serialize, ToSchema)]
pub struct ConsentHistoryEntry {
    /// The purpose.
    pub purpose: String,
    /// `granted`, `denied` or `withdrawn`.
    pub decision: String,
    /// `api`, `segment`, `gpc`, `tcf`, `banner` or `privacy_centre`.
    pub source: String,
    /// The purpose version it was given for.
    pub purpose_version: i64,
    /// When it was decided.
    pub decided_at: String,
    /// When it was written.
    pub recorded_at: String,
    /// SHA-256 of the evidence (the request or event that carried it).
    pub evidence_hash: String,
    /// How sure we are the customer said it: `server` (a secret key, the admin API),
    /// `browser` (a browser key, about the visitor's own anonymous id or with a valid user
    /// hash) or `unverified` (evidence only: it gives no basis until confirmed).
    pub assurance: String,
}
