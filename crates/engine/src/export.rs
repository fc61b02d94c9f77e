//! Access and portability (GDPR art. 15 and 20, CCPA right to know): everything held about a
//! customer, written as one JSON document to any writer. Events are read a page at a time and
//! written as they are read, so a long history never sits in memory whole.

use std::io::Write;

use consentric_store::{AccessGrant, AuditRow, EventRecord};
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::EngineError;
use crate::profiles::{iso, ProfileRef};

/// Events and audit records read per page while exporting.
const PAGE: u32 = 1000;

/// One audit record about the customer: a decision taken about them, or a read of their data,
/// and by whom.
#[derive(Debug, Serialize)]
struct AuditEntry {
    at: String,
    actor: String,
    action: String,
    detail: Value,
}

/// A failure writing an export (the writer's, the serialiser's or the archive's).
pub(crate) fn io(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> EngineError {
    EngineError::Io {
        what: "the export's destination".into(),
        source: std::io::Error::other(e),
    }
}

/// What both export formats hold, gathered once (and audited as one export).
pub(crate) struct ExportParts {
    pub profile: crate::ProfileView,
    pub graph: crate::IdentityGraph,
    pub consent: Vec<crate::ConsentHistoryEntry>,
    /// To whom their data has been or may be disclosed.
    pub recipients: crate::Recipients,
    pub grant: AccessGrant,
    /// When the export was made (ms).
    pub at: i64,
}

/// What this service works on, handed to it by the context.
pub(crate) struct ExportService<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) access: crate::access::AccessService<'a>,
    pub(crate) consent_service: crate::consent::ConsentService<'a>,
    pub(crate) recipients: crate::recipients::RecipientService<'a>,
}

impl ExportService<'_> {
    /// Audits an export in `format` and gathers what it holds apart from the events and the
    /// audit records, which are paged ([`ExportService::each_event`], [`ExportService::each_audit_record`]).
    pub(crate) fn export_parts(
        &self,
        who: &ProfileRef,
        actor: &str,
        format: &str,
    ) -> Result<ExportParts, EngineError> {
        let (id, grant) = self.access.open_access_as(
            who,
            actor,
            "profile.exported",
            &json!({"format": format}),
        )?;
        Ok(ExportParts {
            recipients: self.recipients.recipients_of(&id)?,
            profile: self.access.profile(who, actor)?,
            graph: self.access.identity_graph(who, actor)?,
            consent: self.consent_service.consent_history(who)?,
            at: grant.at(),
            grant,
        })
    }

    /// Calls `f` with every event the grant opens, in storage order, a page at a time.
    pub(crate) fn each_event(
        &self,
        grant: &AccessGrant,
        f: &mut dyn FnMut(EventRecord) -> Result<(), EngineError>,
    ) -> Result<u64, EngineError> {
        let (mut after, mut n) = (0, 0u64);
        loop {
            let page = self.store.events_page(grant, after, PAGE)?;
            let Some(last) = page.last() else {
                return Ok(n);
            };
            after = last.seq;
            for e in page {
                f(e)?;
                n += 1;
            }
        }
    }

    /// Calls `f` with every logged decision the grant opens, oldest first, a page at a time.
    pub(crate) fn each_decision(
        &self,
        grant: &AccessGrant,
        f: &mut dyn FnMut(consentric_store::DecisionLogRow) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        let mut after = 0;
        loop {
            let page = self.store.decision_log_page(grant, after, PAGE)?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = last.seq;
            for d in page {
                f(d)?;
            }
        }
    }

    /// Calls `f` with every audit record about the profile or the profiles merged into it,
    /// oldest first per profile, a page at a time.
    pub(crate) fn each_audit_record(
        &self,
        profile: &crate::ProfileView,
        f: &mut dyn FnMut(AuditRow) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        for subject in std::iter::once(&profile.profile_id).chain(&profile.merged_from) {
            let mut after = 0;
            loop {
                let page = self.store.audit_of(subject, after, PAGE)?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for r in page {
                    f(r)?;
                }
            }
        }
        Ok(())
    }

    /// Writes everything held about the customer `who` names — profile, identities and their
    /// graph, every event, the consent history, the recipients of their data, the decisions
    /// made about them and why (the decision log), and every audit record about them
    /// (decisions, reads, and who made them) — to `out` as one JSON document, and audits the
    /// export.
    /// Returns how many events were written.
    ///
    /// # Errors
    /// Not found, a database fault, or a failing writer.
    pub fn export(
        &self,
        who: &ProfileRef,
        actor: &str,
        out: &mut dyn Write,
    ) -> Result<u64, EngineError> {
        let parts = self.export_parts(who, actor, "json")?;
        write!(
            out,
            "{{\"exported_at\":{},\"profile\":{},\"identity_graph\":{},\"consent_history\":{},\"recipients\":{},\"events\":[",
            serde_json::to_string(&iso(parts.at)).map_err(io)?,
            serde_json::to_string(&parts.profile).map_err(io)?,
            serde_json::to_string(&parts.graph).map_err(io)?,
            serde_json::to_string(&parts.consent).map_err(io)?,
            serde_json::to_string(&parts.recipients).map_err(io)?,
        )
        .map_err(io)?;
        let mut first = true;
        let written = self.each_event(&parts.grant, &mut |e| {
            if !std::mem::take(&mut first) {
                out.write_all(b",").map_err(io)?;
            }
            serde_json::to_writer(&mut *out, &e.payload).map_err(io)
        })?;
        out.write_all(b"],\"decisions\":[").map_err(io)?;
        let mut first = true;
        self.each_decision(&parts.grant, &mut |d| {
            if !std::mem::take(&mut first) {
                out.write_all(b",").map_err(io)?;
            }
            let logged = crate::profiles::LoggedDecision {
                seq: d.seq,
                decided_at: iso(d.decided_at),
                placement: d.placement,
                decision: serde_json::from_str(&d.record).unwrap_or(Value::Null),
            };
            serde_json::to_writer(&mut *out, &logged).map_err(io)
        })?;
        out.write_all(b"],\"audit\":[").map_err(io)?;
        let mut first = true;
        self.each_audit_record(&parts.profile, &mut |r| {
            if !std::mem::take(&mut first) {
                out.write_all(b",").map_err(io)?;
            }
            let entry = AuditEntry {
                at: iso(r.at),
                actor: r.actor,
                action: r.action,
                detail: serde_json::from_str(&r.detail).unwrap_or(Value::Null),
            };
            serde_json::to_writer(&mut *out, &entry).map_err(io)
        })?;
        out.write_all(b"]}").map_err(io)?;
        out.flush().map_err(io)?;
        Ok(written)
    }
}
