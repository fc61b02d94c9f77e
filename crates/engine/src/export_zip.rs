//! Portability in a form spreadsheets open (GDPR art. 20): the same content as the JSON export,
//! as a ZIP of CSV files — profile, traits, identities, identity links, events, consent history,
//! audit — written as a stream (events a page at a time), so a long history never sits in
//! memory and the archive can go straight to a socket or a file.

use std::io::Write;

use consentric_policy::gate;
use serde_json::json;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::audit;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::profiles::{iso, ProfileRef};

/// Events and audit records read per page.
const PAGE: u32 = 1000;

fn io(e: impl std::fmt::Display) -> EngineError {
    EngineError::Io {
        what: "the export's destination".into(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// One CSV line: every field quoted, quotes doubled (RFC 4180).
fn row(out: &mut dyn Write, fields: &[&str]) -> Result<(), EngineError> {
    let mut line = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push('"');
        line.push_str(&f.replace('"', "\"\""));
        line.push('"');
    }
    line.push_str("\r\n");
    out.write_all(line.as_bytes()).map_err(io)
}

impl Engine {
    /// Writes everything held about the customer `who` names to `out` as a ZIP of CSV files,
    /// and audits the export. Returns how many events were written.
    ///
    /// # Errors
    /// Not found, a database fault, or a failing writer.
    pub fn export_zip(
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
                &json!({"format": "zip"}),
            )
        })?;

        let mut zip = ZipWriter::new_stream(out);
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        let file = |zip: &mut ZipWriter<_>, name: &str, header: &[&str]| {
            zip.start_file(name, options).map_err(io)?;
            row(zip, header)
        };

        file(&mut zip, "profile.csv", &["field", "value"])?;
        let c = &profile.counters;
        for (k, v) in [
            ("profile_id", profile.profile_id.clone()),
            ("created_at", profile.created_at.clone()),
            ("first_seen", c.first_seen.clone()),
            ("last_seen", c.last_seen.clone()),
            ("events", c.events.to_string()),
            ("orders", c.orders.to_string()),
            ("revenue", c.revenue.to_string()),
            ("merged_from", profile.merged_from.join(" ")),
        ] {
            row(&mut zip, &[k, &v])?;
        }

        file(
            &mut zip,
            "traits.csv",
            &["name", "value", "updated_at", "message_id"],
        )?;
        for t in &profile.traits {
            row(
                &mut zip,
                &[&t.name, &t.value.to_string(), &t.updated_at, &t.message_id],
            )?;
        }

        file(&mut zip, "identities.csv", &["kind", "value", "first_seen"])?;
        for i in &graph.identities {
            row(&mut zip, &[&i.kind, &i.value, &i.first_seen])?;
        }

        file(
            &mut zip,
            "identity_links.csv",
            &["from", "to", "via", "message_id", "linked_at"],
        )?;
        for l in &graph.links {
            row(
                &mut zip,
                &[&l.from, &l.to, &l.via, &l.message_id, &l.linked_at],
            )?;
        }

        file(
            &mut zip,
            "consent.csv",
            &[
                "purpose",
                "decision",
                "source",
                "purpose_version",
                "decided_at",
                "recorded_at",
            ],
        )?;
        for h in &consent {
            let v = h.purpose_version.to_string();
            row(
                &mut zip,
                &[
                    &h.purpose,
                    &h.decision,
                    &h.source,
                    &v,
                    &h.decided_at,
                    &h.recorded_at,
                ],
            )?;
        }

        file(
            &mut zip,
            "events.csv",
            &[
                "seq",
                "message_id",
                "type",
                "event",
                "timestamp",
                "received_at",
                "json",
            ],
        )?;
        let (mut after, mut written) = (0, 0u64);
        loop {
            let page = self.store.events_page(&grant, after, PAGE)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for e in page {
                row(
                    &mut zip,
                    &[
                        &e.seq.to_string(),
                        &e.message_id,
                        &e.call_type,
                        e.event_name.as_deref().unwrap_or(""),
                        &iso(e.ts),
                        &iso(e.received_at),
                        &e.payload.to_string(),
                    ],
                )?;
                written += 1;
            }
        }

        file(&mut zip, "audit.csv", &["at", "actor", "action", "detail"])?;
        for subject in std::iter::once(&profile.profile_id).chain(&profile.merged_from) {
            let mut after = 0;
            loop {
                let page = self.store.audit_of(subject, after, PAGE)?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for r in page {
                    row(&mut zip, &[&iso(r.at), &r.actor, &r.action, &r.detail])?;
                }
            }
        }
        zip.finish().map_err(io)?;
        Ok(written)
    }
}
