//! Consent: the purposes offered, each customer's state and history, changes through the API,
//! and the audit log's verification.

use consentric_model::ProfileId;
use consentric_policy::{Assurance, ConsentSource, ConsentState, Decision, RESTRICTION};
use consentric_store::ConsentRow;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::audit::{self, AuditAnchor, AuditVerification};
use crate::error::EngineError;
use crate::ledger::to_records;
use crate::profiles::{iso, ProfileRef};
use crate::withdrawal;

/// A purpose as consent banners show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PurposeView {
    /// Its id.
    pub id: String,
    /// What the customer is told.
    pub text: String,
    /// The language tag of `text` when it is a translation; absent for the declared text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// `consent`, `contract`, `legitimate_interest` or `legal_obligation`.
    pub legal_basis: String,
    /// The data categories it may use.
    pub categories: Vec<String>,
    /// How long data is kept for it, in days.
    pub retention_days: u32,
    /// Version of its text.
    pub version: u32,
    /// Whether it is a sale or share of data (CCPA; denied by Global Privacy Control).
    pub sale_or_share: bool,
    /// Who receives data for it (recipients or categories of recipient).
    pub recipients: Vec<String>,
}

/// A customer's consent, purpose by purpose, now.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConsentView {
    /// The profile.
    pub profile_id: String,
    /// Processing is restricted (GDPR art. 18): only `essential` and legal obligations have a
    /// basis; the data stays stored.
    pub restricted: bool,
    /// One entry per declared purpose.
    pub purposes: Vec<PurposeConsent>,
}

/// One purpose's state for one customer.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PurposeConsent {
    /// The purpose.
    pub purpose: String,
    /// Its legal basis.
    pub legal_basis: String,
    /// Whether processing for it is lawful now.
    pub has_basis: bool,
    /// The latest decision recorded, if any.
    pub decision: Option<String>,
    /// Where that decision came from.
    pub source: Option<String>,
    /// The purpose version it was given for.
    pub purpose_version: Option<i64>,
    /// When it was decided.
    pub decided_at: Option<String>,
}

/// One line of a customer's consent history.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConsentHistoryEntry {
    /// The purpose.
    pub purpose: String,
    /// `granted`, `denied` or `withdrawn`.
    pub decision: String,
    /// `api`, `segment`, `gpc`, `tcf`, `banner` or `privacy_centre`.
    pub source: String,
    /// The purpose version it was given for.
    pub purpose_version: i64,
    /// When it was decided.
    pub decided_at: String,
    /// When it was written.
    pub recorded_at: String,
    /// SHA-256 of the evidence (the request or event that carried it).
    pub evidence_hash: String,
    /// How sure we are the customer said it: `server` (a secret key, the admin API),
    /// `browser` (a browser key, about the visitor's own anonymous id or with a valid user
    /// hash) or `unverified` (evidence only: it gives no basis until confirmed).
    pub assurance: String,
}

/// What this service works on, handed to it by the context.
pub(crate) struct ConsentService<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) clock: &'a dyn crate::clock::Clock,
    pub(crate) policy: &'a consentric_policy::PolicySet,
    pub(crate) lifecycle: &'a crate::lifecycle::Lifecycle,
    pub(crate) personalize: &'a crate::personalize::Personalize,
}

impl ConsentService<'_> {
    /// The declared purposes, for consent banners (`GET /v1/purposes`).
    pub fn purposes(&self) -> Vec<PurposeView> {
        self.purposes_in(&[])
    }

    /// [`ConsentService::purposes`] with each text in the first of `languages` (most preferred
    /// first) the operator translated it into.
    pub fn purposes_in(&self, languages: &[String]) -> Vec<PurposeView> {
        self.policy
            .registry
            .all()
            .map(|p| {
                let (text, language) = p.text_in(languages);
                (p, text.to_owned(), language.map(str::to_owned))
            })
            .map(|(p, text, language)| PurposeView {
                id: p.id.to_string(),
                text,
                language,
                legal_basis: p.legal_basis.as_str().to_owned(),
                categories: p.categories.clone(),
                retention_days: p.retention_days,
                version: p.version,
                sale_or_share: p.sale_or_share,
                recipients: p.recipients.clone(),
            })
            .collect()
    }

    /// A customer's consent state now, purpose by purpose.
    ///
    /// # Errors
    /// Not found, or a database fault.
    pub fn consent(&self, who: &ProfileRef) -> Result<ConsentView, EngineError> {
        let id = crate::profiles::find_profile(self.store, who)?;
        self.consent_of(&id)
    }

    fn consent_of(&self, id: &ProfileId) -> Result<ConsentView, EngineError> {
        let rows = self.store.consent(id)?;
        let state = ConsentState::fold(to_records(&rows));
        let now = self.clock.now();
        let purposes = self
            .policy
            .registry
            .all()
            .map(|p| {
                let latest = state.latest(&p.id, now);
                PurposeConsent {
                    purpose: p.id.to_string(),
                    legal_basis: p.legal_basis.as_str().to_owned(),
                    has_basis: state.has_basis(p, now),
                    decision: latest.map(|r| r.decision.as_str().to_owned()),
                    source: latest.map(|r| r.source.as_str().to_owned()),
                    purpose_version: latest.map(|r| i64::from(r.purpose_version)),
                    decided_at: latest.map(|r| iso(r.at.timestamp_millis())),
                }
            })
            .collect();
        Ok(ConsentView {
            profile_id: id.to_string(),
            restricted: state.restricted(now),
            purposes,
        })
    }

    /// A customer's whole consent history, in the order it was written.
    ///
    /// # Errors
    /// Not found, or a database fault.
    pub fn consent_history(
        &self,
        who: &ProfileRef,
    ) -> Result<Vec<ConsentHistoryEntry>, EngineError> {
        let id = crate::profiles::find_profile(self.store, who)?;
        Ok(self
            .store
            .consent(&id)?
            .into_iter()
            .map(|r| ConsentHistoryEntry {
                purpose: r.purpose,
                decision: r.decision,
                source: r.source,
                purpose_version: r.purpose_version,
                decided_at: iso(r.decided_at),
                recorded_at: iso(r.recorded_at),
                evidence_hash: r.evidence_hash,
                assurance: r.assurance,
            })
            .collect())
    }

    /// Records decisions (`purpose` → `granted` | `denied` | `withdrawn`) for a customer, with
    /// the request as evidence, and audits each. All are checked first: one unknown purpose or
    /// decision refuses them all and the ledger is unchanged.
    ///
    /// # Errors
    /// [`EngineError::Invalid`] for an unknown purpose or decision, not found for an unknown
    /// customer, or a database fault.
    pub fn set_consent(
        &self,
        who: &ProfileRef,
        decisions: &[(String, String)],
        actor: &str,
        evidence: &[u8],
    ) -> Result<ConsentView, EngineError> {
        self.set_consent_from(who, decisions, ConsentSource::Api, actor, evidence)
    }

    /// [`ConsentService::set_consent`], recorded as coming from `source`.
    ///
    /// # Errors
    /// As [`ConsentService::set_consent`].
    pub fn set_consent_from(
        &self,
        who: &ProfileRef,
        decisions: &[(String, String)],
        source: ConsentSource,
        actor: &str,
        evidence: &[u8],
    ) -> Result<ConsentView, EngineError> {
        if decisions.is_empty() {
            return Err(EngineError::Invalid {
                field: "purposes".into(),
                message: "name at least one purpose and its decision".into(),
            });
        }
        let mut parsed = Vec::with_capacity(decisions.len());
        for (purpose, decision) in decisions {
            let p = self
                .policy
                .registry
                .get(purpose)
                .map_err(|e| EngineError::Invalid {
                    field: format!("purposes.{purpose}"),
                    message: e.to_string(),
                })?;
            let d = Decision::parse(decision).map_err(|e| EngineError::Invalid {
                field: format!("purposes.{purpose}"),
                message: e.to_string(),
            })?;
            parsed.push((p.id.to_string(), i64::from(p.version), d));
        }
        let id = crate::profiles::find_profile(self.store, who)?;
        let now = self.clock.now().timestamp_millis();
        let evidence_hash = hex::encode(Sha256::digest(evidence));
        self.store.write(|tx| -> Result<(), EngineError> {
            let before = tx.consent_of(&id)?;
            for (purpose, version, decision) in &parsed {
                let row = ConsentRow {
                    purpose: purpose.clone(),
                    decision: decision.as_str().to_owned(),
                    source: source.as_str().to_owned(),
                    purpose_version: *version,
                    decided_at: now,
                    evidence_hash: evidence_hash.clone(),
                    recorded_at: now,
                    assurance: Assurance::Server.as_str().to_owned(),
                };
                tx.append_consent(&id, &row)?;
                audit::append(
                    tx,
                    now,
                    actor,
                    "consent.recorded",
                    Some(id.as_str()),
                    &json!({"purpose": purpose, "decision": row.decision, "source": row.source, "purpose_version": version}),
                )?;
            }
            let after = tx.consent_of(&id)?;
            let at = self.clock.now();
            // A choice made through the admin API also confirms a withdrawal sent with a
            // browser key that still waits for its grace period.
            let confirms = tx.take_withdrawal(&id)?;
            if withdrawal::lost_basis(self.policy, &before, &after, at) || confirms {
                let derived = withdrawal::Derived {
                    stage_purpose: &self.lifecycle.settings.stage_purpose,
                    interactions_purpose: &self.personalize.interactions.purpose,
                };
                withdrawal::enforce(tx, self.policy, &derived, &id, &after, at, actor)?;
            }
            if self.personalize.tracks_segments() {
                tx.note_touched([&id])?;
            }
            Ok(())
        })?;
        self.consent_of(&id)
    }

    /// Restricts processing of a customer's data (GDPR art. 18), or lifts the restriction:
    /// recorded in the consent ledger under the reserved purpose `restriction` and audited.
    /// While restricted, only `essential` and purposes under a legal obligation have a basis —
    /// the gate refuses every other purpose and ingest keeps only what those may use — but
    /// nothing already stored is deleted.
    ///
    /// # Errors
    /// Not found, or a database fault.
    pub fn restrict(
        &self,
        who: &ProfileRef,
        restricted: bool,
        actor: &str,
    ) -> Result<ConsentView, EngineError> {
        let id = crate::profiles::find_profile(self.store, who)?;
        let now = self.clock.now().timestamp_millis();
        let decision = if restricted {
            Decision::Granted
        } else {
            Decision::Withdrawn
        };
        self.store.write(|tx| -> Result<(), EngineError> {
            let row = ConsentRow {
                purpose: RESTRICTION.to_owned(),
                decision: decision.as_str().to_owned(),
                source: ConsentSource::Api.as_str().to_owned(),
                purpose_version: 1,
                decided_at: now,
                evidence_hash: hex::encode(Sha256::digest(
                    format!("restriction:{restricted}:{actor}").as_bytes(),
                )),
                recorded_at: now,
                assurance: Assurance::Server.as_str().to_owned(),
            };
            tx.append_consent(&id, &row)?;
            audit::append(
                tx,
                now,
                actor,
                if restricted {
                    "processing.restricted"
                } else {
                    "processing.unrestricted"
                },
                Some(id.as_str()),
                &json!({}),
            )?;
            Ok(())
        })?;
        self.consent_of(&id)
    }

    /// Walks the audit chain and reports the first place it breaks, if any.
    ///
    /// # Errors
    /// A database fault.
    pub fn verify_audit(&self) -> Result<AuditVerification, EngineError> {
        self.verify_audit_against(&[])
    }

    /// [`ConsentService::verify_audit`], also checking the chain against anchors kept elsewhere: a
    /// missing anchored record (truncation) or a different hash there (a recomputed chain) is
    /// a break.
    ///
    /// # Errors
    /// A database fault.
    pub fn verify_audit_against(
        &self,
        anchors: &[AuditAnchor],
    ) -> Result<AuditVerification, EngineError> {
        Ok(audit::verify(self.store, anchors)?)
    }
}
