//! Access and portability (GDPR art. 15 and 20, CCPA right to know): everything held about a
//! customer, written as one JSON document to any writer. Events are read a page at a time and
//! written as they are read, so a long history never sits in memory whole.

use std::io::Write;

use consentric_policy::gate;
use serde::Serialize;
use serde_json::{json, Value};

use crate::audit;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::profiles::{iso, ProfileRef};

/// Events read per page while exporting.
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

fn io(source: std::io::Error) -> EngineError {
    EngineError::Io {
        what: "the export's destination".into(),
        source,
    }
}

fn json_err(e: serde_json::Error) -> EngineError {
    io(std::io::Error::other(e))
}

impl Engine {
    /// Writes everything held about the customer `who` names — profile, identities and their
    /// graph, every event, the consent history, and every audit record about them (decisions,
    /// reads, and who made them) — to `out` as one JSON document, and audits the export.
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
        let profile = self.profile(who, actor)?;
        let id = self.find_profile(who)?;
        let graph = self.identity_graph(who, actor)?;
        let consent = self.consent_history(who)?;
        let now = self.now();
        let grant = gate::open_for_access(id.as_str(), now);

        let at = now.timestamp_millis();
        self.store.write(|tx| {
            audit::append(
                tx,
                at,
                actor,
                "profile.exported",
                Some(id.as_str()),
                &json!({}),
            )
        })?;

        write!(
            out,
            "{{\"exported_at\":{},\"profile\":{},\"identity_graph\":{},\"consent_history\":{},\"events\":[",
            serde_json::to_string(&iso(at)).map_err(json_err)?,
            serde_json::to_string(&profile).map_err(json_err)?,
            serde_json::to_string(&graph).map_err(json_err)?,
            serde_json::to_string(&consent).map_err(json_err)?,
        )
        .map_err(io)?;
        let mut after = 0;
        let mut written = 0u64;
        loop {
            let page = self.store.events_page(&grant, after, PAGE)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for e in page {
                if written > 0 {
                    out.write_all(b",").map_err(io)?;
                }
                serde_json::to_writer(&mut *out, &e.payload).map_err(json_err)?;
                written += 1;
            }
        }
        out.write_all(b"],\"audit\":[").map_err(io)?;
        let mut first = true;
        let subjects: Vec<String> = std::iter::once(profile.profile_id.clone())
            .chain(profile.merged_from.iter().cloned())
            .collect();
        for subject in &subjects {
            let mut after = 0;
            loop {
                let page = self.store.audit_of(subject, after, PAGE)?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for r in page {
                    if !first {
                        out.write_all(b",").map_err(io)?;
                    }
                    first = false;
                    let entry = AuditEntry {
                        at: iso(r.at),
                        actor: r.actor,
                        action: r.action,
                        detail: serde_json::from_str(&r.detail).unwrap_or(Value::Null),
                    };
                    serde_json::to_writer(&mut *out, &entry).map_err(json_err)?;
                }
            }
        }
        out.write_all(b"]}").map_err(io)?;
        out.flush().map_err(io)?;
        Ok(written)
    }
}
