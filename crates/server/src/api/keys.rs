//! API keys as listed: the schema twin of the engine's `KeyInfo` (the engine has no
//! OpenAPI derives).

use serde::Serialize;

/// A key, without its secret.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // a schema only: the engine's `KeyInfo` is what is serialised
pub struct KeyInfo {
    /// Public id.
    pub key_id: String,
    /// `write`, `admin` or `analyst`.
    pub scope: String,
    /// `browser` (public, in web pages) or `server` (secret, for backends).
    pub kind: String,
    /// Its label.
    pub label: Option<String>,
    /// When it was created.
    pub created_at: String,
    /// When it last authenticated a request, to the minute.
    pub last_used_at: Option<String>,
    /// When it was revoked.
    pub revoked_at: Option<String>,
    /// A server SDK seen sending with it while it is a browser key.
    pub server_library: Option<String>,
}
