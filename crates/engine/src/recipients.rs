//! Recipients (GDPR art. 15(1)(c), CCPA right to know): to whom a customer's data has been or
//! may be disclosed — the recipients each purpose declares, for the purposes that ever had a
//! basis for this customer, and the clean-room sessions that ran while they could take part.

use chrono::{DateTime, Utc};
use consentric_model::ProfileId;
use consentric_policy::ConsentState;
use serde::Serialize;

use crate::error::EngineError;
use crate::profiles::iso;

/// A purpose that discloses data, as it concerns this customer.
#[derive(Debug, Clone, Serialize)]
pub struct PurposeRecipients {
    /// The purpose.
    pub purpose: String,
    /// Who receives data for it.
    pub recipients: Vec<String>,
    /// Whether it may use their data now.
    pub has_basis_now: bool,
}

/// A clean-room session that ran while the customer could take part.
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
pub struct Recipients {
    /// Purposes that disclose data and had a basis for the customer at some time.
    pub by_purpose: Vec<PurposeRecipients>,
    /// Clean-room sessions they could have taken part in (a basis for the clean-room purpose
    /// when the session ran).
    pub disclosures: Vec<Disclosure>,
}

/// What this service works on, handed to it by the context.
pub(crate) struct RecipientService<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) clock: &'a dyn crate::clock::Clock,
    pub(crate) policy: &'a consentric_policy::PolicySet,
    pub(crate) cleanroom: &'a crate::cleanroom::Cleanroom,
}

impl RecipientService<'_> {
    /// The recipients of customer `id`'s data.
    pub(crate) fn recipients_of(&self, id: &ProfileId) -> Result<Recipients, EngineError> {
        let rows = self.store.consent(id)?;
        let state = ConsentState::fold(crate::ledger::to_records(&rows));
        let now = self.clock.now();
        let moments: Vec<DateTime<Utc>> = rows
            .iter()
            .filter_map(|r| DateTime::from_timestamp_millis(r.decided_at))
            .chain([now])
            .collect();
        let by_purpose = self
            .policy
            .registry
            .all()
            .filter(|p| !p.recipients.is_empty())
            .filter(|p| moments.iter().any(|&at| state.has_basis(p, at)))
            .map(|p| PurposeRecipients {
                purpose: p.id.to_string(),
                recipients: p.recipients.clone(),
                has_basis_now: state.has_basis(p, now),
            })
            .collect();
        let purpose = self
            .policy
            .registry
            .get(&self.cleanroom.settings.purpose)
            .ok();
        let mut disclosures = Vec::new();
        for s in self.store.sessions()? {
            if s.state != crate::cleanroom::state::DONE {
                continue;
            }
            let at = s
                .result
                .as_deref()
                .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
                .and_then(|r| r["completed_at"].as_i64())
                .unwrap_or(s.created_at);
            let Some(moment) = DateTime::from_timestamp_millis(at) else {
                continue;
            };
            if purpose.is_some_and(|p| state.has_basis(p, moment)) {
                disclosures.push(Disclosure {
                    partner: s.partner,
                    session: s.session_id,
                    at: iso(at),
                    received: if s.role == "guest" && s.with_sum {
                        "your identifier, blinded, and your spend, encrypted".into()
                    } else {
                        "your identifier, blinded".into()
                    },
                });
            }
        }
        Ok(Recipients {
            by_purpose,
            disclosures,
        })
    }
}
