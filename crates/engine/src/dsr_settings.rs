//! `[dsr]` in `consentric.toml`: the deadlines and verification of data-subject requests.

use serde::Deserialize;

/// `[dsr]` in `consentric.toml`: deadlines and verification.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DsrSettings {
    /// Days to answer a GDPR request (art. 12(3): one month).
    pub gdpr_days: i64,
    /// Days to answer a CCPA request (§1798.130: 45 days).
    pub ccpa_days: i64,
    /// Most days a GDPR deadline may be extended (two further months).
    pub gdpr_max_extension_days: i64,
    /// Most days a CCPA deadline may be extended (45 more days).
    pub ccpa_max_extension_days: i64,
    /// How long a verification code works.
    pub code_ttl_minutes: i64,
    /// Wrong codes before the request is rejected.
    pub max_attempts: i64,
}

impl Default for DsrSettings {
    fn default() -> Self {
        DsrSettings {
            gdpr_days: 30,
            ccpa_days: 45,
            gdpr_max_extension_days: 60,
            ccpa_max_extension_days: 45,
            code_ttl_minutes: 24 * 60,
            max_attempts: 5,
        }
    }
}
