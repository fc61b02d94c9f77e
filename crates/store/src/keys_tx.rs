//! The vault's rows: customers' wrapped data keys, erasure tombstones and receipts, and the
//! erasure of a customer's rows. The store holds only wrapped keys and blind indexes here; it
//! never sees a key or an identity in the clear.

use consentric_model::{Identity, ProfileId};

use crate::backend::Param;
use crate::error::StoreError;
use crate::sql;
use crate::tx::WriteTx;

/// What erasing a customer deleted, row counts per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErasedRows {
    /// Events.
    pub events: u64,
    /// Traits.
    pub traits: u64,
    /// Identities (their blind indexes become tombstones).
    pub identities: u64,
    /// Identity-graph edges (both directions).
    pub links: u64,
    /// Consent ledger rows.
    pub consent_records: u64,
    /// Data keys destroyed.
    pub keys: u64,
    /// Derived lifecycle rows: purchases by day, counted events, stage and transitions.
    pub lifecycle: u64,
    /// Derived personalisation rows: item interactions and actions taken.
    pub personalization: u64,
}

/// A stored erasure receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptRow {
    /// Its id.
    pub receipt_id: String,
    /// The signed JSON body.
    pub body: String,
    /// Ed25519 signature of the body (hex).
    pub signature: String,
}

impl WriteTx<'_> {
    /// Stores a customer's wrapped data key (hex), named `key_id`, owned by `profile`.
    pub fn insert_key(
        &mut self,
        key_id: &str,
        profile: &ProfileId,
        wrapped_hex: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .exec(
                sql::INSERT_KEY,
                &[
                    Param::Text(key_id),
                    Param::Text(profile.as_str()),
                    Param::Text(wrapped_hex),
                    Param::Int(at),
                ],
            )
            .map(drop)
    }

    /// The wrapped data key (hex) named `key_id`, if it exists (it does not after erasure).
    pub fn wrapped_key(&mut self, key_id: &str) -> Result<Option<String>, StoreError> {
        let rows = self.conn.query(sql::KEY_BY_ID, &[Param::Text(key_id)])?;
        rows.into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .map(|c| c.text())
            .transpose()
    }

    /// The ids of the data keys a profile owns (its own and those of profiles merged into it).
    pub fn keys_of(&mut self, profile: &ProfileId) -> Result<Vec<String>, StoreError> {
        self.conn
            .query(sql::KEYS_OF, &[Param::Text(profile.as_str())])?
            .into_iter()
            .filter_map(|r| r.into_iter().next())
            .map(|c| c.text())
            .collect()
    }

    /// Up to `limit` wrapped keys (id, hex) after `after` in id order: a key rotation's walk.
    pub fn keys_page(
        &mut self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.conn
            .query(sql::KEYS_PAGE, &[Param::Text(after), Param::Int(limit)])?
            .into_iter()
            .map(|row| {
                let mut it = row.into_iter();
                let mut next = || {
                    it.next()
                        .ok_or_else(|| StoreError::Corrupt("key row".into()))?
                        .text()
                };
                Ok((next()?, next()?))
            })
            .collect()
    }

    /// Replaces a data key's wrapped form (after re-wrapping it under a new master key).
    pub fn set_wrapped(&mut self, key_id: &str, wrapped_hex: &str) -> Result<(), StoreError> {
        self.conn
            .exec(
                sql::SET_WRAPPED,
                &[Param::Text(key_id), Param::Text(wrapped_hex)],
            )
            .map(drop)
    }

    /// Whether an identity's blind index belongs to an erased customer.
    pub fn is_tombstoned(&mut self, blind: &str) -> Result<bool, StoreError> {
        Ok(!self
            .conn
            .query(sql::TOMBSTONED, &[Param::Text(blind)])?
            .is_empty())
    }

    /// The receipt of an earlier erasure of the customer known by `pseudonym`.
    pub fn receipt_for(&mut self, pseudonym: &str) -> Result<Option<ReceiptRow>, StoreError> {
        let rows = self
            .conn
            .query(sql::RECEIPT_BY_PSEUDONYM, &[Param::Text(pseudonym)])?;
        receipt_row(rows)
    }

    /// Erases a customer: every row about `profile` goes, its data keys first (so that
    /// whatever survives elsewhere — free pages, the WAL, a backup — cannot be read), and its
    /// identities' blind indexes become tombstones pointing at `receipt_id`. The caller stores
    /// the receipt in the same transaction.
    pub fn erase_profile(
        &mut self,
        profile: &ProfileId,
        identities: &[Identity],
        receipt_id: &str,
        at: i64,
    ) -> Result<ErasedRows, StoreError> {
        let p = Param::Text(profile.as_str());
        let mut erased = ErasedRows {
            keys: self.conn.exec(sql::DELETE_KEYS, &[p])?,
            ..ErasedRows::default()
        };
        for id in identities {
            let id = &self.sealer.blind(id);
            erased.links += self.conn.exec(
                sql::ERASE_LINKS,
                &[Param::Text(id.kind.as_str()), Param::Text(&id.value)],
            )?;
            self.conn.exec(
                sql::INSERT_TOMBSTONE,
                &[
                    Param::Text(&id.value),
                    Param::Int(at),
                    Param::Text(receipt_id),
                ],
            )?;
        }
        erased.events = self.conn.exec(sql::ERASE_EVENTS, &[p])?;
        erased.traits = self.conn.exec(sql::ERASE_TRAITS, &[p])?;
        erased.identities = self.conn.exec(sql::ERASE_IDENTITIES, &[p])?;
        self.population_changed = true;
        erased.consent_records = self.conn.exec(sql::ERASE_CONSENT, &[p])?;
        for derived in [
            crate::sql::DELETE_PURCHASES,
            crate::sql::DELETE_COUNTS,
            crate::sql::DELETE_TRANSITIONS,
        ] {
            erased.lifecycle += self.conn.exec(derived, &[p])?;
        }
        for derived in [
            crate::sql::DELETE_INTERACTIONS,
            crate::sql::DELETE_ACTIONS,
            crate::sql::DELETE_MEMBERSHIPS,
            crate::sql::DELETE_DECISIONS,
        ] {
            erased.personalization += self.conn.exec(derived, &[p])?;
        }
        for deleting in crate::sql::DELETE_PRIVACY {
            self.conn.exec(deleting, &[p])?;
        }
        // A clean-room session that revealed this customer as a match keeps only "erased".
        let quoted = format!("\"{}\"", profile.as_str());
        self.conn.exec(
            crate::cleanroom_tx::FORGET_MATCH,
            &[
                Param::Text(&quoted),
                Param::Text("\"erased\""),
                Param::Text(&format!("%{quoted}%")),
            ],
        )?;
        self.conn.exec(sql::ERASE_MERGES, &[p])?;
        self.conn.exec(sql::DELETE_PROFILE, &[p])?;
        Ok(erased)
    }

    /// Keeps a signed erasure receipt under the erased customer's pseudonym.
    pub fn insert_receipt(
        &mut self,
        pseudonym: &str,
        receipt: &ReceiptRow,
        at: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .exec(
                sql::INSERT_RECEIPT,
                &[
                    Param::Text(&receipt.receipt_id),
                    Param::Text(pseudonym),
                    Param::Text(&receipt.body),
                    Param::Text(&receipt.signature),
                    Param::Int(at),
                ],
            )
            .map(drop)
    }

    /// The receipt of the erasure that tombstoned `blind`, if any.
    pub fn receipt_for_tombstone(&mut self, blind: &str) -> Result<Option<ReceiptRow>, StoreError> {
        let rows = self
            .conn
            .query(sql::RECEIPT_BY_TOMBSTONE, &[Param::Text(blind)])?;
        receipt_row(rows)
    }

    /// Whether `identity` belongs to an erased customer (its blind index is a tombstone).
    /// Always `false` without a vault (there are no blind indexes then).
    pub fn is_erased(&mut self, identity: &Identity) -> Result<bool, StoreError> {
        let Some(blind) = self
            .sealer
            .vault
            .as_ref()
            .map(|v| v.blind_index(identity.kind.as_str(), &identity.value))
        else {
            return Ok(false);
        };
        self.is_tombstoned(&blind)
    }
}

fn receipt_row(rows: Vec<Vec<crate::backend::Cell>>) -> Result<Option<ReceiptRow>, StoreError> {
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let mut it = row.into_iter();
    let mut next = || {
        it.next()
            .ok_or_else(|| StoreError::Corrupt("receipt row".into()))?
            .text()
    };
    Ok(Some(ReceiptRow {
        receipt_id: next()?,
        body: next()?,
        signature: next()?,
    }))
}
