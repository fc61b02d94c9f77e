//! Erasure (GDPR art. 17, CCPA delete): the customer's data keys are destroyed and every row
//! about them deleted in one transaction; their identities' blind indexes stay as tombstones so
//! late events for them are dropped; a receipt signed with the deployment's Ed25519 key says
//! what was erased. Asking again returns the same receipt: erasure happens once.

use consentric_model::{Identity, IdentityKind, ProfileId};
use consentric_store::{Change, ReceiptRow, StoreError};
use consentric_vault::{verify_signature, KeyId};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit;
use crate::error::EngineError;
use crate::profiles::{iso, ProfileRef};

/// A signed erasure receipt, as handed to the requester.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureReceipt {
    /// The signed statement: JSON text of a [`ReceiptBody`], signed byte for byte.
    pub body: String,
    /// Ed25519 signature of `body` (hex).
    pub signature: String,
    /// The deployment's receipt key (hex), to check the signature with.
    pub public_key: String,
}

/// What a receipt states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptBody {
    /// The receipt's id.
    pub receipt_id: String,
    /// The erased customer, pseudonymously: a keyed hash of their profile id.
    pub pseudonym: String,
    /// When the erasure committed.
    pub erased_at: String,
    /// Rows deleted per kind of data.
    pub erased: ErasedCounts,
}

/// Rows deleted by an erasure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasedCounts {
    /// Events.
    pub events: u64,
    /// Traits.
    pub traits: u64,
    /// Identities (kept only as tombstones: keyed hashes).
    pub identities: u64,
    /// Identity-graph edges.
    pub identity_links: u64,
    /// Consent ledger records.
    pub consent_records: u64,
    /// Data keys destroyed.
    pub data_keys: u64,
    /// Derived lifecycle rows: purchases by day, counted events, stage and its history
    /// (absent from receipts made before lifecycle existed).
    #[serde(default)]
    pub lifecycle_rows: u64,
    /// Derived personalisation rows: item interactions and actions taken (absent from
    /// receipts made before personalisation existed).
    #[serde(default)]
    pub personalization_rows: u64,
}

impl ErasureReceipt {
    /// Checks the signature against `public_key` (the deployment's, known independently of the
    /// receipt) and returns what the receipt states.
    ///
    /// # Errors
    /// [`EngineError::Invalid`] if the signature does not verify or the body is not a receipt.
    pub fn verify(&self, public_key: &str) -> Result<ReceiptBody, EngineError> {
        verify_signature(public_key, self.body.as_bytes(), &self.signature).map_err(|e| {
            EngineError::Invalid {
                field: "signature".into(),
                message: e.to_string(),
            }
        })?;
        serde_json::from_str(&self.body).map_err(|e| EngineError::Invalid {
            field: "body".into(),
            message: format!("not a receipt: {e}"),
        })
    }
}

/// What this service works on, handed to it by the context.
pub(crate) struct ErasureService<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) clock: &'a dyn crate::clock::Clock,
    /// Holds messages to customers (their requests' one-time codes) that must go with them.
    pub(crate) notifier: &'a dyn crate::notify::Notifier,
}

impl<'a> ErasureService<'a> {
    /// The public key that erasure receipts are signed with (hex).
    ///
    /// # Errors
    /// [`EngineError::Config`] without a vault.
    pub fn receipt_public_key(&self) -> Result<String, EngineError> {
        Ok(self.vault()?.signer().public_key_hex())
    }

    pub(crate) fn vault(&self) -> Result<&'a consentric_vault::Vault, EngineError> {
        self.store
            .vault()
            .ok_or_else(|| EngineError::Config("erasure needs the vault (master keys)".into()))
    }

    /// Erases the customer `who` names, as `actor`, and returns the signed receipt. If the
    /// customer was already erased (named by a profile id or an identity they had), returns the
    /// receipt of that erasure and changes nothing.
    ///
    /// # Errors
    /// Not found (never known), no vault, or a database fault (then nothing was erased).
    pub fn erase(&self, who: &ProfileRef, actor: &str) -> Result<ErasureReceipt, EngineError> {
        let vault = self.vault()?;
        let id = match crate::profiles::find_profile(self.store, who) {
            Ok(id) => id,
            Err(EngineError::NotFound(_)) => {
                return match self.earlier_receipt(who)? {
                    Some(r) => Ok(self.hand_out(r)),
                    None => Err(EngineError::NotFound("profile".into())),
                }
            }
            Err(e) => return Err(e),
        };
        let now = self.clock.now();
        let at = now.timestamp_millis();
        let pseudonym = pseudonym(vault, &id);
        let receipt_id = format!("rcpt_{}", uuid::Uuid::new_v4().simple());
        let (receipt, keys, scrubbed, emails) = self.store.write_large(|tx| {
            let identities: Vec<Identity> = tx
                .identities_of(&id)?
                .into_iter()
                .map(|r| r.identity)
                .collect();
            let keys = tx.keys_of(&id)?;
            let emails = tx.email_blinds_of(&id)?;
            let erased = tx.erase_profile(&id, &identities, &receipt_id, at)?;
            let body = ReceiptBody {
                receipt_id: receipt_id.clone(),
                pseudonym: pseudonym.clone(),
                erased_at: iso(at),
                erased: ErasedCounts {
                    events: erased.events,
                    traits: erased.traits,
                    identities: erased.identities,
                    identity_links: erased.links,
                    consent_records: erased.consent_records,
                    data_keys: erased.keys,
                    lifecycle_rows: erased.lifecycle,
                    personalization_rows: erased.personalization,
                },
            };
            let body = serde_json::to_string(&body)
                .map_err(|e| StoreError::Corrupt(format!("receipt: {e}")))?;
            let receipt = ReceiptRow {
                receipt_id: receipt_id.clone(),
                signature: vault.signer().sign_hex(body.as_bytes()),
                body,
            };
            tx.insert_receipt(&pseudonym, &receipt, at)?;
            // The customer's requests keep what proves they were honoured, nothing personal.
            let closed = json!({"reason": "the customer was erased", "receipt_id": receipt_id});
            let scrubbed = tx.scrub_dsrs_of(&identities, &closed.to_string(), at)?;
            audit::append(
                tx,
                at,
                actor,
                "profile.erased",
                Some(id.as_str()),
                &json!({"receipt_id": receipt_id, "pseudonym": pseudonym,
                        "events": erased.events, "traits": erased.traits,
                        "identities": erased.identities, "data_keys": erased.keys}),
            )?;
            // Every other node forgets the keys and the messages too, once this commits.
            tx.announce(&Change::Erased {
                keys: keys.iter().chain(&scrubbed.requests).cloned().collect(),
                contacts: scrubbed
                    .contacts
                    .iter()
                    .map(|c| vault.keyed_hash("outbox", &[c.as_bytes()]))
                    .collect(),
            })?;
            Ok::<_, StoreError>((receipt, keys, scrubbed, emails))
        })?;
        self.notifier.forget(&scrubbed.contacts);
        // The privacy centre's codes went to the address the profile held, known here only by
        // its blind index.
        if !emails.is_empty() {
            self.notifier.forget_where(&|address: &str| {
                consentric_model::Email::parse(address).is_some_and(|e| {
                    emails.contains(&consentric_store::email_blind(Some(vault), &e))
                })
            });
        }
        for k in keys.into_iter().chain(scrubbed.requests) {
            if let Ok(k) = KeyId::parse(&k) {
                vault.forget(&k);
            }
        }
        // Nothing of the erased rows stays in the write-ahead log.
        self.store.checkpoint()?;
        tracing::info!(receipt = %receipt.receipt_id, "customer erased");
        Ok(self.hand_out(receipt))
    }

    fn hand_out(&self, r: ReceiptRow) -> ErasureReceipt {
        ErasureReceipt {
            body: r.body,
            signature: r.signature,
            public_key: self
                .store
                .vault()
                .map(|v| v.signer().public_key_hex())
                .unwrap_or_default(),
        }
    }

    /// The receipt of an earlier erasure of the customer `who` names, if any.
    fn earlier_receipt(&self, who: &ProfileRef) -> Result<Option<ReceiptRow>, EngineError> {
        let vault = self.vault()?;
        let found = self.store.write(|tx| {
            let mut candidates: Vec<Identity> = Vec::new();
            match who {
                ProfileRef::Profile(p) => {
                    return tx.receipt_for(&pseudonym(vault, p));
                }
                ProfileRef::Identity(i) => candidates.push(i.clone()),
                ProfileRef::Any(raw) => {
                    if let Some(p) = ProfileId::parse(raw) {
                        if let Some(r) = tx.receipt_for(&pseudonym(vault, &p))? {
                            return Ok(Some(r));
                        }
                    }
                    for kind in [IdentityKind::UserId, IdentityKind::AnonymousId] {
                        candidates.push(Identity {
                            kind,
                            value: raw.clone(),
                        });
                    }
                }
            }
            for i in candidates {
                let blind = vault.blind_index(i.kind.as_str(), &i.value);
                if let Some(r) = tx.receipt_for_tombstone(&blind)? {
                    return Ok(Some(r));
                }
            }
            Ok(None)
        })?;
        Ok(found)
    }
}

/// A customer's pseudonym in receipts: a keyed hash of the profile id, so a receipt names no
/// one to whoever lacks the index key, yet the same erasure is recognised when asked again.
fn pseudonym(vault: &consentric_vault::Vault, id: &ProfileId) -> String {
    vault.blind_index("profile", id.as_str())
}
