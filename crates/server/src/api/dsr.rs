//! The shapes of data-subject requests and erasure receipts in the OpenAPI document. The engine returns domain values and the
//! handlers serialise them as they are; these twins only describe them (Schemathesis checks in
//! CI that every answer matches), so the engine knows nothing of the HTTP contract.
#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;

/// What a request asks for.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DsrKind {
    /// Everything held (art. 15, 20; CCPA right to know).
    Access,
    /// Erasure (art. 17; CCPA delete).
    Erasure,
    /// Restriction of processing (art. 18).
    Restriction,
    /// Objection (art. 21: legitimate-interest purposes; CCPA: sale and sharing).
    Objection,
}

/// Under which law.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    /// The GDPR.
    Gdpr,
    /// The CCPA/CPRA.
    Ccpa,
}

/// A request as shown to operators.
#[derive(Serialize, ToSchema)]
pub struct DsrView {
    /// Its id.
    pub request_id: String,
    /// What it asks.
    pub kind: String,
    /// Under which law.
    pub regime: String,
    /// The identity it names (`kind:value`), until the request is done and shredded.
    pub identity: Option<String>,
    /// `received`, `verified`, `in_progress`, `completed` or `rejected`.
    pub status: String,
    /// When it arrived.
    pub received_at: String,
    /// When it must be answered, extensions included.
    pub due_at: String,
    /// Past its deadline and not answered.
    pub overdue: bool,
    /// Days of extension granted.
    pub extended_days: i64,
    /// The answer (a receipt, the export's size, the consent state) or why it was rejected.
    #[schema(value_type = Option<Object>)]
    pub outcome: Option<serde_json::Value>,
}

/// A signed erasure receipt, as handed to the requester.
#[derive(Serialize, ToSchema)]
pub struct ErasureReceipt {
    /// The signed statement: JSON text of a [`ReceiptBody`], signed byte for byte.
    pub body: String,
    /// Ed25519 signature of `body` (hex).
    pub signature: String,
    /// The deployment's receipt key (hex), to check the signature with.
    pub public_key: String,
}
