//! The audit log: append-only and hash-chained. Each record's hash covers its own fields and
//! the previous record's hash, so editing, deleting, inserting or reordering any record breaks
//! the chain at a place `verify` can name.

use consentric_store::{AuditRow, Store, StoreError, WriteTx};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first record.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Records read per page while verifying.
const PAGE: u32 = 1000;

fn digest(
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    subject: Option<&str>,
    detail: &str,
    prev: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [
        seq.to_string().as_str(),
        at.to_string().as_str(),
        actor,
        action,
        subject.unwrap_or("\u{0}"),
        detail,
        prev,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Appends a record in the caller's transaction, so it commits with what it records.
pub(crate) fn append(
    tx: &mut WriteTx<'_>,
    at: i64,
    actor: &str,
    action: &str,
    subject: Option<&str>,
    detail: &Value,
) -> Result<(), StoreError> {
    let (last_seq, prev) = tx.audit_tail()?.unwrap_or((0, GENESIS.to_owned()));
    let seq = last_seq + 1;
    let detail = detail.to_string();
    let hash = digest(seq, at, actor, action, subject, &detail, &prev);
    tx.audit_append(&AuditRow {
        seq,
        at,
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject: subject.map(str::to_owned),
        detail,
        prev_hash: prev,
        hash,
    })
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditVerification {
    /// Records checked.
    pub records: u64,
    /// The first break, if any.
    pub first_break: Option<ChainBreak>,
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
        }
    }
}

/// Walks the whole chain from the first record.
pub(crate) fn verify(store: &Store) -> Result<AuditVerification, StoreError> {
    let mut expected_seq = 1;
    let mut prev = GENESIS.to_owned();
    let mut records = 0;
    loop {
        let page = store.audit_page(expected_seq - 1, PAGE)?;
        if page.is_empty() {
            return Ok(AuditVerification {
                records,
                first_break: None,
            });
        }
        for r in page {
            let broken = |kind| {
                Ok(AuditVerification {
                    records,
                    first_break: Some(ChainBreak { seq: r.seq, kind }),
                })
            };
            if r.seq != expected_seq {
                return broken(BreakKind::Missing);
            }
            if r.prev_hash != prev {
                return broken(BreakKind::OutOfChain);
            }
            if digest(
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
            records += 1;
            expected_seq += 1;
            prev = r.hash;
        }
    }
}
