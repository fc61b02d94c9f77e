//! A customer's stored consent ledger as the policy room's records.

use consentric_policy::{Assurance, ConsentRecord, ConsentSource, Decision, PurposeId};
use consentric_store::ConsentRow;

pub(crate) fn to_records(rows: &[ConsentRow]) -> Vec<ConsentRecord> {
    rows.iter()
        .filter_map(|r| {
            Some(ConsentRecord {
                purpose: PurposeId::parse(&r.purpose).ok()?,
                decision: Decision::parse(&r.decision).ok()?,
                source: ConsentSource::parse(&r.source).ok()?,
                purpose_version: u32::try_from(r.purpose_version).ok()?,
                at: chrono::DateTime::from_timestamp_millis(r.decided_at)?,
                evidence_hash: r.evidence_hash.clone(),
                // A row that does not parse gives no basis.
                assurance: Assurance::parse(&r.assurance).unwrap_or(Assurance::Unverified),
            })
        })
        .collect()
}
