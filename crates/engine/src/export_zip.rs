//! Portability in a form spreadsheets open (GDPR art. 20): the same content as the JSON export,
//! as a ZIP of CSV files — profile, traits, identities, identity links, events, consent history,
//! the decision log,
//! recipients, disclosures, audit — written as a stream (events a page at a time), so a long history never sits in
//! memory and the archive can go straight to a socket or a file.

use std::io::Write;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::error::EngineError;
use crate::export::io;
use crate::profiles::{iso, ProfileRef};

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

/// What this service works on, handed to it by the context.
pub(crate) struct ZipExport<'a> {
    pub(crate) exports: crate::export::ExportService<'a>,
}

impl ZipExport<'_> {
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
        let parts = self.exports.export_parts(who, actor, "zip")?;
        let (profile, graph) = (&parts.profile, &parts.graph);
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
        for h in &parts.consent {
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
            "recipients.csv",
            &["purpose", "recipient", "has_basis_now"],
        )?;
        for p in &parts.recipients.by_purpose {
            for r in &p.recipients {
                row(&mut zip, &[&p.purpose, r, &p.has_basis_now.to_string()])?;
            }
        }
        file(
            &mut zip,
            "disclosures.csv",
            &["partner", "session", "at", "received"],
        )?;
        for d in &parts.recipients.disclosures {
            row(&mut zip, &[&d.partner, &d.session, &d.at, &d.received])?;
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
        let written = self.exports.each_event(&parts.grant, &mut |e| {
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
            )
        })?;

        file(
            &mut zip,
            "decisions.csv",
            &["seq", "decided_at", "placement", "decision"],
        )?;
        self.exports.each_decision(&parts.grant, &mut |d| {
            row(
                &mut zip,
                &[
                    &d.seq.to_string(),
                    &iso(d.decided_at),
                    &d.placement,
                    &d.record,
                ],
            )
        })?;

        file(&mut zip, "audit.csv", &["at", "actor", "action", "detail"])?;
        self.exports.each_audit_record(profile, &mut |r| {
            row(&mut zip, &[&iso(r.at), &r.actor, &r.action, &r.detail])
        })?;
        zip.finish().map_err(io)?;
        Ok(written)
    }
}
