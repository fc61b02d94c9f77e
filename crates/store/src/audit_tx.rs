//! The audit log's writer: append-only and hash-chained. Each record's hash covers its own
//! fields and the previous record's hash, so editing, deleting, inserting or reordering a record
//! breaks the chain where a verifier can name it. The writer lives with the store so that it
//! alone can make an [`AccessGrant`]: the grant and its record commit together.

use consentric_model::ProfileId;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::access::AccessGrant;
use crate::backend::Param;
use crate::error::StoreError;
use crate::records::AuditRow;
use crate::sql;
use crate::tx::{next, take, WriteTx};

/// The `prev_hash` of the first record.
pub const AUDIT_GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A record's hash: SHA-256 over its length-prefixed fields and the previous record's hash.
pub fn audit_digest(
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

/// The keyed use audit records are signed under.
const AUDIT_USE: &str = "audit-chain";

/// A record's MAC: HMAC of its hash under a key derived from the master keys.
pub fn audit_mac(vault: &consentric_vault::Vault, hash: &str) -> String {
    vault.keyed_hash(AUDIT_USE, &[hash.as_bytes()])
}

/// Whether `mac` is the MAC of a record with `hash`, compared in constant time.
pub fn audit_mac_matches(vault: &consentric_vault::Vault, hash: &str, mac: &str) -> bool {
    vault.keyed_hash_matches(AUDIT_USE, &[hash.as_bytes()], mac)
}

impl WriteTx<'_> {
    /// Appends a record to the chain in this transaction, so it commits with what it records.
    /// Returns its position.
    ///
    /// # Errors
    /// Database faults.
    pub fn append_audit(
        &mut self,
        at: i64,
        actor: &str,
        action: &str,
        subject: Option<&str>,
        detail: &Value,
    ) -> Result<i64, StoreError> {
        let (last_seq, prev) = match self.audit_tail.take() {
            Some(tail) => tail,
            None => self.audit_tail()?.unwrap_or((0, AUDIT_GENESIS.to_owned())),
        };
        let seq = last_seq + 1;
        let detail = detail.to_string();
        let hash = audit_digest(seq, at, actor, action, subject, &detail, &prev);
        let mac = self.sealer.vault.as_ref().map(|v| audit_mac(v, &hash));
        self.audit_insert(&AuditRow {
            seq,
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject: subject.map(str::to_owned),
            detail,
            prev_hash: prev,
            hash: hash.clone(),
            mac,
        })?;
        self.audit_tail = Some((seq, hash));
        Ok(seq)
    }

    /// Audits a read of everything held about `subject` by `actor` and returns the grant that
    /// opens it: the only way to make one.
    ///
    /// # Errors
    /// Database faults; then there is no grant.
    pub fn audit_access(
        &mut self,
        at: i64,
        actor: &str,
        action: &str,
        subject: &ProfileId,
        detail: &Value,
    ) -> Result<AccessGrant, StoreError> {
        let seq = self.append_audit(at, actor, action, Some(subject.as_str()), detail)?;
        Ok(AccessGrant::recorded(subject.clone(), at, seq))
    }

    /// The last record's position and hash, with the chain locked against concurrent
    /// appenders until this transaction ends (PostgreSQL; SQLite has one writer).
    fn audit_tail(&mut self) -> Result<Option<(i64, String)>, StoreError> {
        if self.conn.kind() == crate::BackendKind::Postgres {
            self.conn
                .exec_batch("SELECT pg_advisory_xact_lock(727275)")?;
        }
        let rows = self.conn.query(sql::AUDIT_LAST, &[])?;
        match rows.into_iter().next() {
            None => Ok(None),
            Some(row) => {
                let mut it = take(row, 2)?;
                Ok(Some((next(&mut it)?.int()?, next(&mut it)?.text()?)))
            }
        }
    }

    fn audit_insert(&mut self, r: &AuditRow) -> Result<(), StoreError> {
        self.conn
            .exec(
                sql::AUDIT_APPEND,
                &[
                    Param::Int(r.seq),
                    Param::Int(r.at),
                    Param::Text(&r.actor),
                    Param::Text(&r.action),
                    Param::OptText(r.subject.as_deref()),
                    Param::Text(&r.detail),
                    Param::Text(&r.prev_hash),
                    Param::Text(&r.hash),
                    Param::OptText(r.mac.as_deref()),
                ],
            )
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SqliteOptions, Store};
    use serde_json::json;

    #[test]
    fn an_access_grant_comes_with_its_record_in_the_chain() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open_sqlite(dir.path(), SqliteOptions::default()).expect("store");
        let who = ProfileId::parse("p-1").expect("id");
        store
            .write(|tx| tx.append_audit(5, "key:a", "consent.changed", None, &json!({})))
            .expect("first record");
        let grant = store
            .write(|tx| {
                tx.audit_access(
                    7,
                    "key:b",
                    "profile.read",
                    &who,
                    &json!({"what": "profile"}),
                )
            })
            .expect("grant");
        assert_eq!(
            (grant.subject(), grant.at(), grant.audit_seq()),
            (&who, 7, 2)
        );
        let chain = store.audit_page(0, 10).expect("chain");
        let record = &chain[1];
        assert_eq!(
            (
                record.seq,
                record.actor.as_str(),
                record.action.as_str(),
                record.subject.as_deref()
            ),
            (2, "key:b", "profile.read", Some("p-1"))
        );
        assert_eq!(
            record.prev_hash, chain[0].hash,
            "chained to the record before"
        );
        assert_eq!(
            record.hash,
            audit_digest(
                2,
                7,
                "key:b",
                "profile.read",
                Some("p-1"),
                &record.detail,
                &chain[0].hash
            )
        );
        // A transaction that fails after the record leaves neither the record nor a grant.
        let failed: Result<AccessGrant, StoreError> = store.write(|tx| {
            tx.audit_access(9, "key:c", "profile.read", &who, &json!({}))?;
            Err(StoreError::Corrupt("the caller gave up".into()))
        });
        assert!(failed.is_err());
        assert_eq!(store.audit_page(0, 10).expect("chain").len(), 2);
    }
}
