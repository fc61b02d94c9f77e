//! The audit log: append-only and hash-chained. Each record's hash covers its own fields and
//! the previous record's hash, so editing, deleting, inserting or reordering any record breaks
//! the chain at a place `verify` can name. What the chain alone cannot show is its own end being
//! cut off, or the whole chain recomputed after an edit; for that, the head `verify` reports is
//! kept elsewhere (an anchor) and checked later: a record missing at or before an anchor, or a
//! different hash there, is a break.
//!
//! The hashes alone can be recomputed by anyone who can write the database. So each record
//! also carries a MAC of its hash under a key derived from the master keys: someone with the
//! database but not the keys can append or rewrite a tail with valid hashes, but not with valid
//! MACs, and `verify` names the first such record as forged.

use consentric_store::{
    audit_digest, audit_mac_matches, Store, StoreError, WriteTx, AUDIT_GENESIS,
};
use serde::Serialize;
use serde_json::Value;

/// Records read per page while verifying.
const PAGE: u32 = 1000;

/// Appends a record in the caller's transaction, so it commits with what it records.
pub(crate) fn append(
    tx: &mut WriteTx<'_>,
    at: i64,
    actor: &str,
    action: &str,
    subject: Option<&str>,
    detail: &Value,
) -> Result<(), StoreError> {
    tx.append_audit(at, actor, action, subject, detail)
        .map(drop)
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditVerification {
    /// Records checked.
    pub records: u64,
    /// The last record that verified: worth keeping outside the database as an anchor.
    pub head: Option<AuditAnchor>,
    /// The first break, if any.
    pub first_break: Option<ChainBreak>,
    /// Records without a MAC at the start of the chain: written without the master keys (a
    /// store opened without a vault) or before records were keyed. Only these can be
    /// recomputed by someone without the keys; every record after the first keyed one must
    /// carry a valid MAC.
    pub unkeyed: u64,
}

/// A record's position and hash, remembered outside the database (printed by `consentric audit
/// verify`, passed back with `--anchor SEQ:HASH`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditAnchor {
    /// The record's position.
    pub seq: i64,
    /// Its hash (hex SHA-256).
    pub hash: String,
}

impl std::str::FromStr for AuditAnchor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (seq, hash) = s
            .split_once(':')
            .ok_or_else(|| format!("anchor `{s}` is not SEQ:HASH"))?;
        let seq: i64 = seq
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("anchor position `{seq}` is not a positive integer"))?;
        let ok = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        if !ok {
            return Err(format!("anchor hash `{hash}` is not 64 hex digits"));
        }
        Ok(AuditAnchor {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

/// Where and how the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainBreak {
    /// The position of the first record that does not fit.
    pub seq: i64,
    /// What is wrong there.
    pub kind: BreakKind,
}

/// The ways a chain can break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// The record's content no longer matches its hash: it was edited.
    Edited,
    /// Positions are missing before this one: records were deleted.
    Missing,
    /// The record does not follow the one before it: a record was inserted, deleted and the
    /// rest renumbered, or records were reordered.
    OutOfChain,
    /// An anchored record is gone: the log was cut off at its end.
    Truncated,
    /// An anchored record has another hash than the anchor: the chain was recomputed.
    Rewritten,
    /// The record's MAC is wrong or missing after keyed records: it was appended or rewritten
    /// by someone without the master keys.
    Forged,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            BreakKind::Edited => write!(f, "record {} was edited (its hash no longer matches its content)", self.seq),
            BreakKind::Missing => write!(f, "records before {} are missing (the positions jump)", self.seq),
            BreakKind::OutOfChain => write!(
                f,
                "record {} does not follow the record before it (inserted, deleted or reordered records)",
                self.seq
            ),
            BreakKind::Truncated => write!(
                f,
                "anchored record {} is missing (the log was cut off after record {})",
                self.seq,
                self.seq - 1
            ),
            BreakKind::Rewritten => write!(
                f,
                "record {} differs from its anchor (the chain was recomputed)",
                self.seq
            ),
            BreakKind::Forged => write!(
                f,
                "record {} does not carry the MAC only the master keys make (appended or rewritten without them)",
                self.seq
            ),
        }
    }
}

/// Walks the whole chain from the first record, then checks it against `anchors`.
pub(crate) fn verify(
    store: &Store,
    anchors: &[AuditAnchor],
) -> Result<AuditVerification, StoreError> {
    let mut expected_seq = 1;
    let mut prev = AUDIT_GENESIS.to_owned();
    let mut records = 0;
    let mut head = None;
    let (mut unkeyed, mut keyed_seen) = (0u64, false);
    let vault = store.vault();
    let anchored = |seq: i64, hash: &str| anchors.iter().any(|a| a.seq == seq && a.hash != hash);
    loop {
        let page = store.audit_page(expected_seq - 1, PAGE)?;
        if page.is_empty() {
            // Every record verified; anchors beyond the end mean the end was cut off.
            let first_break = anchors
                .iter()
                .filter(|a| a.seq >= expected_seq)
                .map(|a| a.seq)
                .min()
                .map(|seq| ChainBreak {
                    seq,
                    kind: BreakKind::Truncated,
                });
            return Ok(AuditVerification {
                records,
                head,
                first_break,
                unkeyed,
            });
        }
        for r in page {
            let broken = |kind| {
                Ok(AuditVerification {
                    records,
                    head: head.clone(),
                    first_break: Some(ChainBreak { seq: r.seq, kind }),
                    unkeyed,
                })
            };
            if r.seq != expected_seq {
                return broken(BreakKind::Missing);
            }
            if r.prev_hash != prev {
                return broken(BreakKind::OutOfChain);
            }
            if audit_digest(
                r.seq,
                r.at,
                &r.actor,
                &r.action,
                r.subject.as_deref(),
                &r.detail,
                &r.prev_hash,
            ) != r.hash
            {
                return broken(BreakKind::Edited);
            }
            if anchored(r.seq, &r.hash) {
                return broken(BreakKind::Rewritten);
            }
            match (&r.mac, vault) {
                (Some(mac), Some(vault)) => {
                    if !audit_mac_matches(vault, &r.hash, mac) {
                        return broken(BreakKind::Forged);
                    }
                    keyed_seen = true;
                }
                // Without the keys a MAC cannot be checked; its presence still counts.
                (Some(_), None) => keyed_seen = true,
                (None, _) if keyed_seen => return broken(BreakKind::Forged),
                (None, _) => unkeyed += 1,
            }
            records += 1;
            expected_seq += 1;
            head = Some(AuditAnchor {
                seq: r.seq,
                hash: r.hash.clone(),
            });
            prev = r.hash;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_parse_from_what_verify_prints_and_refuse_anything_else() {
        let hash = "ab".repeat(32);
        let a: AuditAnchor = format!("12:{}", hash.to_uppercase())
            .parse()
            .expect("anchor");
        assert_eq!((a.seq, a.hash), (12, hash.clone()));
        for bad in [
            "12".to_owned(),
            format!("0:{hash}"),
            format!("x:{hash}"),
            "3:abc".to_owned(),
        ] {
            assert!(bad.parse::<AuditAnchor>().is_err(), "{bad}");
        }
    }
}

/// One audit record about a customer, as the console shows who did what with their data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// When (ISO-8601).
    pub at: String,
    /// Who: an API key id, `cli`, `operator:<name>`, `privacy-centre`.
    pub actor: String,
    /// What (`profile.read`, `view.opened`, `decision.made`, `consent.recorded`, …).
    pub action: String,
    /// Whom it was about (a profile, when the record names one).
    pub subject: Option<String>,
    /// The record's detail (purpose, fields, …).
    pub detail: Value,
}

/// The latest `limit` audit records about `subject`, newest first.
pub(crate) fn trail_of(
    store: &Store,
    subject: &str,
    limit: usize,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut kept = std::collections::VecDeque::with_capacity(limit);
    let mut after = 0;
    loop {
        let page = store.audit_of(subject, after, 500)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in page {
            if kept.len() == limit {
                kept.pop_front();
            }
            kept.push_back(AuditEntry {
                at: crate::profiles::iso(r.at),
                actor: r.actor,
                action: r.action,
                subject: r.subject,
                detail: serde_json::from_str(&r.detail).unwrap_or(Value::Null),
            });
        }
    }
    Ok(kept.into_iter().rev().collect())
}
