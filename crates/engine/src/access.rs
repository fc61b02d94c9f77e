//! Reads of everything held about a customer, for access rather than for a purpose: the
//! operator's administration with an admin key now, the data subject's own access request
//! later. Each read goes through an access grant, which only the store's audit writer makes,
//! together with the record (`profile.read`, naming who read what): a read that could not be
//! audited does not happen.

use consentric_model::ProfileId;
use consentric_store::AccessGrant;
use serde_json::json;

use crate::error::EngineError;
use crate::profiles::{
    iso, IdentityGraph, IdentityLinkView, IdentityView, ProfileCountersView, ProfileRef,
    ProfileView, StoredEventView, TraitView,
};

/// Most events one read returns.
pub(crate) const MAX_EVENTS_PER_READ: u32 = 1000;

/// What this service works on, handed to it by the context.
pub(crate) struct AccessService<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) clock: &'a dyn crate::clock::Clock,
}

impl AccessService<'_> {
    /// Opens an access grant over the profile `who` names, after auditing the read: a read
    /// that could not be audited does not happen.
    fn open_access(
        &self,
        who: &ProfileRef,
        actor: &str,
        what: &str,
    ) -> Result<(ProfileId, AccessGrant), EngineError> {
        self.open_access_as(who, actor, "profile.read", &json!({"what": what}))
    }

    /// [`AccessService::open_access`] audited as `action` with `detail` (exports name themselves).
    pub(crate) fn open_access_as(
        &self,
        who: &ProfileRef,
        actor: &str,
        action: &str,
        detail: &serde_json::Value,
    ) -> Result<(ProfileId, AccessGrant), EngineError> {
        let id = crate::profiles::find_profile(self.store, who)?;
        let at = self.clock.now().timestamp_millis();
        let grant = self
            .store
            .write(|tx| tx.audit_access(at, actor, action, &id, detail))?;
        Ok((id, grant))
    }

    /// A whole profile (identities, traits with provenance, counters, merge history), read by
    /// `actor` (an API key id, `cli`) and audited.
    ///
    /// # Errors
    /// Not found, or a database fault.
    pub fn profile(&self, who: &ProfileRef, actor: &str) -> Result<ProfileView, EngineError> {
        let (id, grant) = self.open_access(who, actor, "profile")?;
        let record = self
            .store
            .profile(&grant)?
            .ok_or_else(|| EngineError::NotFound("profile".into()))?;
        let c = record.counters;
        Ok(ProfileView {
            profile_id: id.to_string(),
            created_at: iso(record.created_at),
            identities: self.identity_views(&grant)?,
            traits: self
                .store
                .traits(&grant)?
                .into_iter()
                .map(|t| TraitView {
                    name: t.name,
                    value: t.value,
                    updated_at: iso(t.updated_at),
                    message_id: t.message_id,
                })
                .collect(),
            counters: ProfileCountersView {
                first_seen: iso(c.first_seen),
                last_seen: iso(c.last_seen),
                events: c.event_count,
                orders: c.order_count,
                revenue: c.revenue,
            },
            merged_from: self
                .store
                .merged_from(&id)?
                .into_iter()
                .map(|p| p.to_string())
                .collect(),
        })
    }

    fn identity_views(&self, grant: &AccessGrant) -> Result<Vec<IdentityView>, EngineError> {
        Ok(self
            .store
            .identities(grant)?
            .into_iter()
            .map(|r| IdentityView {
                kind: r.identity.kind.as_str().to_owned(),
                value: r.identity.value,
                first_seen: iso(r.first_seen),
            })
            .collect())
    }

    /// A profile's latest events, newest first, at most [`MAX_EVENTS_PER_READ`]; audited.
    ///
    /// # Errors
    /// Not found, or a database fault.
    pub fn events(
        &self,
        who: &ProfileRef,
        limit: u32,
        actor: &str,
    ) -> Result<Vec<StoredEventView>, EngineError> {
        let (_, grant) = self.open_access(who, actor, "events")?;
        Ok(self
            .store
            .events(&grant, limit.clamp(1, MAX_EVENTS_PER_READ))?
            .into_iter()
            .map(|e| StoredEventView {
                seq: e.seq,
                event: e.payload,
            })
            .collect())
    }

    /// A profile's latest logged decisions, newest first, at most
    /// [`MAX_EVENTS_PER_READ`]; audited.
    ///
    /// # Errors
    /// Not found, or a database fault.
    pub fn decision_log(
        &self,
        who: &ProfileRef,
        limit: u32,
        actor: &str,
    ) -> Result<Vec<crate::profiles::LoggedDecision>, EngineError> {
        let (_, grant) = self.open_access(who, actor, "decisions")?;
        Ok(self
            .store
            .decision_log(&grant, limit.clamp(1, MAX_EVENTS_PER_READ))?
            .into_iter()
            .map(|d| crate::profiles::LoggedDecision {
                seq: d.seq,
                decided_at: crate::profiles::iso(d.decided_at),
                placement: d.placement,
                decision: serde_json::from_str(&d.record).unwrap_or(serde_json::Value::Null),
            })
            .collect())
    }

    /// The identity graph of a profile; audited.
    ///
    /// # Errors
    /// Not found, or a database fault.
    pub fn identity_graph(
        &self,
        who: &ProfileRef,
        actor: &str,
    ) -> Result<IdentityGraph, EngineError> {
        let (id, grant) = self.open_access(who, actor, "identities")?;
        let links = self
            .store
            .identity_links(&grant)?
            .into_iter()
            // Each edge is stored both ways; show it once.
            .filter(|l| l.a < l.b)
            .map(|l| IdentityLinkView {
                from: l.a.to_string(),
                to: l.b.to_string(),
                via: l.via,
                message_id: l.message_id,
                linked_at: iso(l.linked_at),
            })
            .collect();
        Ok(IdentityGraph {
            profile_id: id.to_string(),
            identities: self.identity_views(&grant)?,
            links,
        })
    }
}
