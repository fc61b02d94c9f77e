//! The data-subject request workflow: a request names a customer by any identity and what they
//! ask (access, erasure, restriction, objection) under which law; a one-time code sent to the contact
//! they gave proves it is them; the request moves received → verified → in progress →
//! completed (or rejected), against the law's deadline, which can be extended within its
//! limits. Processing twice does the work once and answers the same.

use chrono::Duration;
use consentric_model::Identity;
use consentric_store::{DsrRow, NewDsr, StoreError};
use consentric_vault::KeyId;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::audit;
use crate::error::EngineError;
use crate::notify::Message;
use crate::profiles::{iso, ProfileRef};

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DsrKind {
    /// Everything held (art. 15, 20; CCPA right to know).
    Access,
    /// Erasure (art. 17; CCPA delete).
    Erasure,
    /// Restriction of processing (art. 18).
    Restriction,
    /// Objection (art. 21: to processing on legitimate interests; CCPA: to the sale or sharing
    /// of their data).
    Objection,
}

impl DsrKind {
    fn as_str(self) -> &'static str {
        match self {
            DsrKind::Access => "access",
            DsrKind::Erasure => "erasure",
            DsrKind::Restriction => "restriction",
            DsrKind::Objection => "objection",
        }
    }
}

/// Under which law.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    /// The GDPR.
    Gdpr,
    /// The CCPA/CPRA.
    Ccpa,
}

impl Regime {
    fn as_str(self) -> &'static str {
        match self {
            Regime::Gdpr => "gdpr",
            Regime::Ccpa => "ccpa",
        }
    }
}

/// A request as shown to operators.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DsrView {
    /// Its id.
    pub request_id: String,
    /// What it asks.
    pub kind: String,
    /// Under which law.
    pub regime: String,
    /// The identity it names (`kind:value`), until the request is done and shredded.
    pub identity: Option<String>,
    /// `received`, `verified`, `in_progress`, `completed` or `rejected`.
    pub status: String,
    /// When it arrived.
    pub received_at: String,
    /// When it must be answered, extensions included.
    pub due_at: String,
    /// Past its deadline and not answered.
    pub overdue: bool,
    /// Days of extension granted.
    pub extended_days: i64,
    /// The answer (a receipt, the export's size, the consent state) or why it was rejected.
    pub outcome: Option<Value>,
}

/// The keyed use a request's one-time code is hashed under: someone who reads the row cannot
/// try the million codes without the master keys.
const CODE_USE: &str = "dsr-code";

fn invalid(field: &str, message: impl Into<String>) -> EngineError {
    EngineError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// What this service works on, handed to it by the context.
pub(crate) struct DsrService<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) clock: &'a dyn crate::clock::Clock,
    pub(crate) dsr_settings: &'a crate::dsr_settings::DsrSettings,
    pub(crate) notifier: &'a dyn crate::notify::Notifier,
    pub(crate) consent_service: crate::consent::ConsentService<'a>,
    pub(crate) erasure: crate::erasure::ErasureService<'a>,
    pub(crate) exports: crate::export::ExportService<'a>,
}

impl DsrService<'_> {
    fn view(&self, r: DsrRow) -> DsrView {
        let now = self.clock.now().timestamp_millis();
        let open = matches!(r.status.as_str(), "received" | "verified" | "in_progress");
        DsrView {
            identity: r.identity.map(|i| i.to_string()),
            overdue: open && r.due_at < now,
            received_at: iso(r.received_at),
            due_at: iso(r.due_at),
            extended_days: r.extended,
            outcome: r.outcome.and_then(|o| serde_json::from_str(&o).ok()),
            request_id: r.request_id,
            kind: r.kind,
            regime: r.regime,
            status: r.status,
        }
    }

    /// Files a request about the customer `identity` names, and sends a one-time code to
    /// `contact`.
    ///
    /// # Errors
    /// [`EngineError::NotFound`] if no customer has that identity (nothing is stored);
    /// [`EngineError::Invalid`] for an empty contact; a notifier or database fault.
    pub fn dsr_request(
        &self,
        kind: DsrKind,
        regime: Regime,
        identity: &Identity,
        contact: &str,
        actor: &str,
    ) -> Result<DsrView, EngineError> {
        let contact = contact.trim();
        if contact.is_empty() || contact.len() > 320 || contact.chars().any(char::is_control) {
            return Err(invalid(
                "contact",
                "an address to send the code to (no control characters, at most 320 bytes)",
            ));
        }
        crate::profiles::find_profile(self.store, &ProfileRef::Identity(identity.clone()))
            .map_err(|_| EngineError::NotFound(format!("customer with {identity}")))?;
        let now = self.clock.now();
        let request_id = format!("dsr_{}", uuid::Uuid::new_v4().simple());
        let mut digits = [0u8; 8];
        getrandom::fill(&mut digits).map_err(|e| EngineError::Config(e.to_string()))?;
        let code = format!("{:06}", u64::from_le_bytes(digits) % 1_000_000);
        let days = match regime {
            Regime::Gdpr => self.dsr_settings.gdpr_days,
            Regime::Ccpa => self.dsr_settings.ccpa_days,
        };
        let at = now.timestamp_millis();
        let due = (now + Duration::days(days)).timestamp_millis();
        let expires =
            (now + Duration::minutes(self.dsr_settings.code_ttl_minutes)).timestamp_millis();
        let vault = self
            .store
            .vault()
            .ok_or_else(|| EngineError::Config("requests need the vault (master keys)".into()))?;
        let code_hash = vault.keyed_hash(CODE_USE, &[request_id.as_bytes(), code.as_bytes()]);
        self.store.write(|tx| {
            tx.insert_dsr(&NewDsr {
                request_id: &request_id,
                kind: kind.as_str(),
                regime: regime.as_str(),
                identity,
                contact,
                received_at: at,
                due_at: due,
                code_hash: &code_hash,
                code_expires_at: expires,
            })?;
            audit::append(
                tx,
                at,
                actor,
                "dsr.received",
                None,
                &json!({"request_id": request_id, "kind": kind.as_str(), "regime": regime.as_str()}),
            )
        })?;
        self.notifier
            .send(&Message {
                to: contact.to_owned(),
                subject: "Confirm your privacy request".into(),
                body: format!(
                    "We received your {} request ({request_id}). To confirm it is you, give this code: {code}\nIt works for {} minutes.",
                    kind.as_str(),
                    self.dsr_settings.code_ttl_minutes
                ),
            })
            .or_else(|e| {
                // Nobody can verify a request whose code never left: it is closed, and says why.
                self.store.write(|tx| -> Result<(), EngineError> {
                    if let Some(mut r) = tx.dsr(&request_id)? {
                        r.status = "rejected".into();
                        r.outcome = Some(json!({"reason": format!("the code could not be sent: {e}")}).to_string());
                        tx.update_dsr(&r)?;
                    }
                    Ok(())
                })?;
                Err(EngineError::Config(format!("the code could not be sent: {e}")))
            })?;
        self.dsr_show(&request_id)
    }

    /// A request.
    ///
    /// # Errors
    /// Not found, or a database fault.
    pub fn dsr_show(&self, request_id: &str) -> Result<DsrView, EngineError> {
        let row = self
            .store
            .dsr(request_id)?
            .ok_or_else(|| EngineError::NotFound(format!("request {request_id}")))?;
        Ok(self.view(row))
    }

    /// Every request, oldest deadline first; only the open ones past their deadline if
    /// `overdue`.
    ///
    /// # Errors
    /// A database fault.
    pub fn dsr_list(&self, overdue: bool) -> Result<Vec<DsrView>, EngineError> {
        let before = overdue.then(|| self.clock.now().timestamp_millis());
        Ok(self
            .store
            .dsr_list(before)?
            .into_iter()
            .map(|r| self.view(r))
            .collect())
    }

    /// Checks the one-time code of a received request. A wrong code counts against the
    /// request (too many reject it); an expired code, or a request past its deadline, is
    /// refused and nothing changes.
    ///
    /// # Errors
    /// Not found, [`EngineError::Invalid`] naming `code` or `status`, or a database fault.
    pub fn dsr_verify(
        &self,
        request_id: &str,
        code: &str,
        actor: &str,
    ) -> Result<DsrView, EngineError> {
        let now = self.clock.now().timestamp_millis();
        let max = self.dsr_settings.max_attempts;
        let vault = self
            .store
            .vault()
            .ok_or_else(|| EngineError::Config("requests need the vault (master keys)".into()))?;
        let result = self.store.write(|tx| -> Result<Result<(), EngineError>, EngineError> {
            let mut r = tx
                .dsr(request_id)?
                .ok_or_else(|| EngineError::NotFound(format!("request {request_id}")))?;
            if r.status != "received" {
                return Ok(Err(invalid(
                    "status",
                    format!("the request is {}, not awaiting a code", r.status),
                )));
            }
            if now > r.due_at {
                return Ok(Err(invalid("status", "the request is past its deadline")));
            }
            if now > r.code_expires_at {
                return Ok(Err(invalid("code", "the code has expired; file the request again")));
            }
            r.updated_at = now;
            let given = [request_id.as_bytes(), code.trim().as_bytes()];
            if !vault.keyed_hash_matches(CODE_USE, &given, &r.code_hash) {
                r.attempts += 1;
                let rejected = r.attempts >= max;
                if rejected {
                    r.status = "rejected".into();
                    r.outcome = Some(json!({"reason": "too many wrong codes"}).to_string());
                }
                tx.update_dsr(&r)?;
                audit::append(tx, now, actor, "dsr.code_refused", None,
                    &json!({"request_id": request_id, "attempts": r.attempts, "rejected": rejected}))?;
                return Ok(Err(invalid("code", "wrong code")));
            }
            r.status = "verified".into();
            tx.update_dsr(&r)?;
            audit::append(tx, now, actor, "dsr.verified", None, &json!({"request_id": request_id}))?;
            Ok(Ok(()))
        })?;
        result?;
        self.dsr_show(request_id)
    }

    /// Extends a request's deadline by `days`, within the law's limit.
    ///
    /// # Errors
    /// Not found, [`EngineError::Invalid`] past the limit or for a closed request, or a
    /// database fault.
    pub fn dsr_extend(
        &self,
        request_id: &str,
        days: i64,
        reason: &str,
        actor: &str,
    ) -> Result<DsrView, EngineError> {
        let now = self.clock.now().timestamp_millis();
        let result = self
            .store
            .write(|tx| -> Result<Result<(), EngineError>, EngineError> {
                let mut r = tx
                    .dsr(request_id)?
                    .ok_or_else(|| EngineError::NotFound(format!("request {request_id}")))?;
                let limit = if r.regime == "ccpa" {
                    self.dsr_settings.ccpa_max_extension_days
                } else {
                    self.dsr_settings.gdpr_max_extension_days
                };
                if !matches!(r.status.as_str(), "received" | "verified" | "in_progress") {
                    return Ok(Err(invalid(
                        "status",
                        format!("the request is {}", r.status),
                    )));
                }
                // `days > limit` first, so that a huge `days` cannot overflow the sum.
                if days < 1 || days > limit || r.extended + days > limit {
                    return Ok(Err(invalid(
                        "days",
                        format!(
                            "{} law allows {limit} days of extension; {} used",
                            r.regime, r.extended
                        ),
                    )));
                }
                r.extended += days;
                r.due_at = days
                    .checked_mul(86_400_000)
                    .and_then(|ms| r.due_at.checked_add(ms))
                    .ok_or_else(|| invalid("days", "the deadline would be out of range"))?;
                r.updated_at = now;
                tx.update_dsr(&r)?;
                audit::append(
                    tx,
                    now,
                    actor,
                    "dsr.extended",
                    None,
                    &json!({"request_id": request_id, "days": days, "reason": reason}),
                )?;
                Ok(Ok(()))
            })?;
        result?;
        self.dsr_show(request_id)
    }

    /// The purposes an objection under `regime` stops: under the GDPR every purpose on
    /// legitimate interests (art. 21, direct marketing included); under the CCPA every sale or
    /// sharing of data (the right to opt out). Purposes on consent need no objection (a
    /// withdrawal does it), and contract or legal obligation cannot be objected to.
    pub(crate) fn objected_purposes(&self, regime: &str) -> Vec<String> {
        self.consent_service
            .purposes()
            .into_iter()
            .filter(|p| match regime {
                "ccpa" => p.sale_or_share,
                _ => p.legal_basis == "legitimate_interest",
            })
            .map(|p| p.id)
            .collect()
    }

    /// Carries out a verified request and completes it: erasure returns its signed receipt,
    /// access writes the export to `out`, restriction restricts, objection records a denial
    /// for each purpose it stops (withdrawal then deletes what only they used). The request's own key is then
    /// destroyed, so its identity and contact are gone too. Processing a completed request
    /// again does nothing more and answers the same (an erasure's receipt; for access, the
    /// export is written again).
    ///
    /// # Errors
    /// Not found, [`EngineError::Invalid`] for a request not verified, the work's own errors
    /// (the request stays in progress, so a retry resumes), or a database fault.
    pub fn dsr_process(
        &self,
        request_id: &str,
        actor: &str,
        out: &mut dyn std::io::Write,
    ) -> Result<DsrView, EngineError> {
        let now = self.clock.now().timestamp_millis();
        let row =
            self.store
                .write(|tx| -> Result<Result<DsrRow, EngineError>, EngineError> {
                    let mut r = tx
                        .dsr(request_id)?
                        .ok_or_else(|| EngineError::NotFound(format!("request {request_id}")))?;
                    match r.status.as_str() {
                        "verified" => {
                            r.status = "in_progress".into();
                            r.updated_at = now;
                            tx.update_dsr(&r)?;
                            Ok(Ok(r))
                        }
                        "in_progress" | "completed" => Ok(Ok(r)),
                        other => Ok(Err(invalid(
                            "status",
                            format!("the request is {other}; only a verified request is processed"),
                        ))),
                    }
                })??;
        if row.status == "completed" {
            if row.kind == "access" {
                if let Some(identity) = &row.identity {
                    self.exports
                        .export(&ProfileRef::Identity(identity.clone()), actor, out)?;
                }
            }
            return Ok(self.view(row));
        }
        let identity = row
            .identity
            .clone()
            .ok_or_else(|| EngineError::Config("the request's identity is gone".into()))?;
        let who = ProfileRef::Identity(identity);
        let outcome = match row.kind.as_str() {
            "erasure" => serde_json::to_value(self.erasure.erase(&who, actor)?)
                .map_err(|e| EngineError::Config(e.to_string()))?,
            "access" => json!({"events": self.exports.export(&who, actor, out)?}),
            "restriction" => {
                serde_json::to_value(self.consent_service.restrict(&who, true, actor)?)
                    .map_err(|e| EngineError::Config(e.to_string()))?
            }
            "objection" => {
                let objected = self.objected_purposes(&row.regime);
                if objected.is_empty() {
                    json!({"objected": []})
                } else {
                    let decisions: Vec<(String, String)> = objected
                        .iter()
                        .map(|p| (p.clone(), "denied".to_owned()))
                        .collect();
                    let evidence = format!("dsr:objection:{request_id}");
                    let consent = self.consent_service.set_consent(
                        &who,
                        &decisions,
                        actor,
                        evidence.as_bytes(),
                    )?;
                    json!({"objected": objected, "consent": consent})
                }
            }
            other => return Err(EngineError::Config(format!("unknown request kind {other}"))),
        };
        let now = self.clock.now().timestamp_millis();
        self.store.write(|tx| -> Result<(), StoreError> {
            let mut r = row.clone();
            r.status = "completed".into();
            r.updated_at = now;
            r.outcome = Some(outcome.to_string());
            tx.update_dsr(&r)?;
            // An access request keeps its identity so the export can be fetched again.
            if r.kind != "access" {
                tx.shred_dsr(request_id)?;
                tx.announce(&consentric_store::Change::Erased {
                    keys: vec![request_id.to_owned()],
                    contacts: Vec::new(),
                })?;
            }
            audit::append(
                tx,
                now,
                actor,
                "dsr.completed",
                None,
                &json!({"request_id": request_id, "kind": r.kind}),
            )
        })?;
        if row.kind != "access" {
            if let (Some(vault), Ok(id)) = (self.store.vault(), KeyId::parse(request_id)) {
                vault.forget(&id);
            }
        }
        self.dsr_show(request_id)
    }
}
