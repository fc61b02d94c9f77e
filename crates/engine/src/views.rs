//! Purpose-scoped reads: the gate opens a grant for (customer, purpose, now) and the view keeps
//! only what the grant permits. Every view opened is audited.

use consentric_model::CallType;
use consentric_policy::{gate, ConsentState, Refusal};
use serde::Serialize;
use serde_json::json;

use crate::audit;
use crate::error::EngineError;
use crate::ledger::to_records;
use crate::profiles::{ProfileRef, TraitView};

/// What one purpose may see of a customer's profile.
#[derive(Debug, Clone, Serialize, PartialEq)]
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
    pub events: Vec<serde_json::Value>,
}

/// Most events a purpose-scoped view carries.
const VIEW_EVENTS: u32 = 100;

/// What this service works on, handed to it by the context.
pub(crate) struct ViewService<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) clock: &'a dyn crate::clock::Clock,
    pub(crate) policy: &'a consentric_policy::PolicySet,
}

impl ViewService<'_> {
    /// Opens a view of a customer's profile for `purpose`, as `actor`, and audits it.
    ///
    /// # Errors
    /// [`EngineError::Invalid`] for an unknown purpose, [`EngineError::NoBasis`] when the purpose
    /// has no legal basis for this customer now, not found, or a database fault.
    pub fn profile_for_purpose(
        &self,
        who: &ProfileRef,
        purpose: &str,
        actor: &str,
    ) -> Result<PurposeScopedProfile, EngineError> {
        let id = crate::profiles::find_profile(self.store, who)?;
        let now = self.clock.now();
        let consent = ConsentState::fold(to_records(&self.store.consent(&id)?));
        let grant = gate::open(&self.policy.registry, &consent, purpose, id.as_str(), now)
            .map_err(|r| match r {
                Refusal::UnknownPurpose(p) => EngineError::Invalid {
                    field: "purpose".into(),
                    message: format!("unknown purpose `{p}`"),
                },
                refusal @ Refusal::NoBasis { .. } => EngineError::NoBasis(refusal.to_string()),
            })?;
        let mut traits = Vec::new();
        let mut withheld = Vec::new();
        for t in self.store.traits(&grant)? {
            let category =
                self.policy
                    .schema
                    .category(CallType::Identify, None, &["traits", t.name.as_str()]);
            if category.is_some_and(|c| grant.permits(c)) {
                traits.push(TraitView {
                    name: t.name,
                    value: t.value,
                    updated_at: crate::profiles::iso(t.updated_at),
                    message_id: t.message_id,
                });
            } else {
                withheld.push(t.name);
            }
        }
        let permits = |c: &consentric_policy::DataCategory| grant.permits(c);
        let events: Vec<serde_json::Value> = self
            .store
            .events(&grant, VIEW_EVENTS)?
            .into_iter()
            .map(|e| {
                let mut payload = e.payload;
                self.policy.minimise_payload(&mut payload, &permits);
                payload
            })
            .collect();
        let categories: Vec<String> = grant.categories().iter().map(|c| c.to_string()).collect();
        let at = now.timestamp_millis();
        self.store.write(|tx| {
            audit::append(
                tx,
                at,
                actor,
                "view.opened",
                Some(id.as_str()),
                &json!({"purpose": grant.purpose().as_str(), "categories": categories,
                        "traits": traits.len(), "events": events.len()}),
            )
        })?;
        Ok(PurposeScopedProfile {
            profile_id: id.to_string(),
            purpose: grant.purpose().to_string(),
            categories,
            traits,
            withheld,
            events,
        })
    }
}
