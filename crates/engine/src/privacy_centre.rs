//! The privacy centre: a customer proves who they are with a one-time code sent to the e-mail
//! address their profile already holds (found by its blind index; an address typed in the form
//! is only ever compared, never written to), and gets a [`CustomerSession`] that names their
//! own profile and no other. Every customer-facing read and change takes that session, so a
//! signed-in customer can reach nobody else's data: there is no argument to name another.

use std::sync::Arc;

use chrono::Duration;
use consentric_model::{Email, ProfileId};
use consentric_policy::ConsentSource;
use consentric_store::{email_blind, NewCode};
use serde::Serialize;
use serde_json::json;

use crate::audit;
use crate::consent::{ConsentHistoryEntry, ConsentView};
use crate::dsr::DsrView;
use crate::erasure::ErasureReceipt;
use crate::error::EngineError;
use crate::notify::{Message, Notifier};
use crate::profiles::{LoggedDecision, ProfileRef, ProfileView};

/// How long a code works.
pub const CODE_MINUTES: i64 = 10;
/// Wrong codes a challenge takes before it stops working.
pub const CODE_ATTEMPTS: i64 = 5;
/// Codes one address may be sent per hour (known or not: the limit reveals nothing).
pub const CODES_PER_HOUR: i64 = 5;
/// How long a session lasts from sign-in.
pub const SESSION_MINUTES: i64 = 30;

const CODE_USE: &str = "privacy-code";
const SESSION_USE: &str = "privacy-session";
const CSRF_USE: &str = "privacy-csrf";
/// Who the audit log says acted: the customer, through the privacy centre.
const ACTOR: &str = "privacy-centre";

/// A code was asked for: the form goes on with this id, whatever the address was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge {
    /// The challenge's public id.
    pub challenge_id: String,
}

/// A signed-in customer. Only the engine makes one (from a valid session token), and it names
/// exactly one profile, which callers cannot see or change.
#[derive(Clone)]
pub struct CustomerSession {
    profile: ProfileId,
    token_hash: String,
    csrf: String,
    /// When the session ends (ms).
    pub expires_at: i64,
}

impl std::fmt::Debug for CustomerSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerSession").finish_non_exhaustive()
    }
}

impl CustomerSession {
    /// The token every form of this session must carry back (a keyed hash of the session's
    /// own token, so it is worth nothing in another session).
    pub fn csrf_token(&self) -> &str {
        &self.csrf
    }

    /// Whether `given` is this session's CSRF token, compared in constant time.
    pub fn csrf_matches(&self, given: &str) -> bool {
        let (a, b) = (self.csrf.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    fn who(&self) -> ProfileRef {
        ProfileRef::Profile(self.profile.clone())
    }
}

/// What a customer may ask from the privacy centre beyond consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerRequest {
    /// Erase everything (answered with the signed receipt).
    Erasure,
    /// Restrict processing (GDPR art. 18).
    Restriction,
    /// Lift a restriction.
    LiftRestriction,
    /// Object to processing on legitimate interests and to the sale or sharing of their data.
    Objection,
}

/// What a request from the privacy centre did.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum CustomerOutcome {
    /// Erased; the session is gone with the profile.
    Erased(ErasureReceipt),
    /// The consent state after a restriction or objection.
    Consent(ConsentView),
}

/// One purpose's side of what is held: the data categories it may use and who receives them.
#[derive(Debug, Clone, Serialize)]
pub struct HeldPurpose {
    /// The purpose.
    pub purpose: String,
    /// What the customer is told it is.
    pub text: String,
    /// Its legal basis.
    pub legal_basis: String,
    /// Whether it has a basis for this customer now.
    pub allowed: bool,
    /// Who receives data for it.
    pub recipients: Vec<String>,
    /// How long data is kept for it, in days.
    pub retention_days: u32,
}

/// One data category of what is held: the traits in it, and the purposes that may use it.
#[derive(Debug, Clone, Serialize)]
pub struct HeldCategory {
    /// The category (`user.contact.email`, `user.behavior`, …).
    pub category: String,
    /// The traits held in it: name and value.
    pub traits: Vec<(String, String)>,
    /// The purposes that may use it.
    pub purposes: Vec<String>,
}

/// Everything the privacy centre shows as held, without opening every event: the profile,
/// its traits by category, and each purpose with its recipients.
#[derive(Debug, Clone, Serialize)]
pub struct HeldData {
    /// The profile (identities, traits, counters).
    pub profile: ProfileView,
    /// Traits by data category.
    pub categories: Vec<HeldCategory>,
    /// Each declared purpose, with whether it may use the data now.
    pub purposes: Vec<HeldPurpose>,
}

/// What this service works on, handed to it by the context.
pub(crate) struct PrivacyCentre<'a> {
    pub(crate) store: &'a consentric_store::Store,
    pub(crate) clock: &'a dyn crate::clock::Clock,
    pub(crate) policy: &'a consentric_policy::PolicySet,
    pub(crate) notifier: &'a Arc<dyn Notifier>,
    pub(crate) consent_service: crate::consent::ConsentService<'a>,
    pub(crate) erasure: crate::erasure::ErasureService<'a>,
    pub(crate) exports: crate::export::ExportService<'a>,
    pub(crate) zip: crate::export_zip::ZipExport<'a>,
    pub(crate) access: crate::access::AccessService<'a>,
    pub(crate) requests: crate::dsr::DsrService<'a>,
}

fn random_hex(bytes: usize) -> Result<String, EngineError> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).map_err(|e| EngineError::Config(e.to_string()))?;
    Ok(hex::encode(b))
}

fn wrong_code() -> EngineError {
    EngineError::Invalid {
        field: "code".into(),
        message: "that code is wrong or no longer works; check it, or ask for a new one".into(),
    }
}

impl PrivacyCentre<'_> {
    fn vault(&self) -> Result<&consentric_vault::Vault, EngineError> {
        self.store
            .vault()
            .ok_or_else(|| EngineError::Config("the privacy centre needs the vault".into()))
    }

    /// Sends a one-time code to `address` if a profile holds it as its e-mail address; answers
    /// the same either way, so the form reveals nothing. The code is sent from another thread,
    /// so that not even the time taken tells a known address from an unknown one.
    ///
    /// # Errors
    /// [`EngineError::Invalid`] naming `email` for something that is not an address;
    /// [`EngineError::TooMany`] past [`CODES_PER_HOUR`] for that address; a database fault.
    pub fn send_code(&self, address: &str) -> Result<CodeChallenge, EngineError> {
        let email = Email::parse(address).ok_or_else(|| EngineError::Invalid {
            field: "email".into(),
            message: "give the e-mail address you use with us (name@example.com)".into(),
        })?;
        let vault = self.vault()?;
        let blind = email_blind(Some(vault), &email);
        let profile = self.store.profile_of_email(&email)?;
        let now = self.clock.now();
        let at = now.timestamp_millis();
        let challenge_id = format!("pc_{}", random_hex(16)?);
        let mut digits = [0u8; 8];
        getrandom::fill(&mut digits).map_err(|e| EngineError::Config(e.to_string()))?;
        let code = format!("{:06}", u64::from_le_bytes(digits) % 1_000_000);
        let code_hash = vault.keyed_hash(CODE_USE, &[challenge_id.as_bytes(), code.as_bytes()]);
        let hour_ago = (now - Duration::hours(1)).timestamp_millis();
        self.store.write(|tx| -> Result<(), EngineError> {
            if tx.codes_since(&blind, hour_ago)? >= CODES_PER_HOUR {
                return Err(EngineError::TooMany(
                    "too many codes were asked for this address; try again in an hour".into(),
                ));
            }
            tx.insert_code(
                &NewCode {
                    challenge_id: &challenge_id,
                    blind: &blind,
                    profile: profile.as_ref(),
                    code_hash: &code_hash,
                    created_at: at,
                    expires_at: (now + Duration::minutes(CODE_MINUTES)).timestamp_millis(),
                },
                hour_ago,
            )?;
            if let Some(p) = &profile {
                audit::append(
                    tx,
                    at,
                    ACTOR,
                    "privacy.code_sent",
                    Some(p.as_str()),
                    &json!({"challenge_id": challenge_id}),
                )?;
            }
            Ok(())
        })?;
        if profile.is_some() {
            let notifier = Arc::clone(self.notifier);
            let message = Message {
                to: email.as_str().to_owned(),
                subject: "Your code for the privacy centre".into(),
                body: format!(
                    "Your code is {code}\nIt works for {CODE_MINUTES} minutes. If you did not ask for it, ignore this message: nothing changes."
                ),
            };
            std::thread::spawn(move || {
                if let Err(e) = notifier.send(&message) {
                    tracing::warn!(error = %e, "the privacy centre's code could not be sent");
                }
            });
        }
        Ok(CodeChallenge { challenge_id })
    }

    /// Checks a code and starts a session. Returns the session and its token (for the
    /// cookie; only its keyed hash is stored).
    ///
    /// # Errors
    /// [`EngineError::Invalid`] naming `code` for a wrong, spent, expired or over-tried code
    /// (the same words for all, and for an address nobody holds); a database fault.
    pub fn sign_in(
        &self,
        challenge_id: &str,
        code: &str,
    ) -> Result<(CustomerSession, String), EngineError> {
        let vault = self.vault()?;
        let now = self.clock.now();
        let at = now.timestamp_millis();
        let token = random_hex(32)?;
        let token_hash = vault.keyed_hash(SESSION_USE, &[token.as_bytes()]);
        let expires_at = (now + Duration::minutes(SESSION_MINUTES)).timestamp_millis();
        let given = [challenge_id.as_bytes(), code.trim().as_bytes()];
        let profile = self.store.write(
            |tx| -> Result<Result<ProfileId, EngineError>, EngineError> {
                let Some(row) = tx.code(challenge_id)? else {
                    return Ok(Err(wrong_code()));
                };
                if row.code_hash.is_empty() || at > row.expires_at || row.attempts >= CODE_ATTEMPTS
                {
                    return Ok(Err(wrong_code()));
                }
                let matches = vault.keyed_hash_matches(CODE_USE, &given, &row.code_hash);
                let Some(profile) = row.profile.filter(|_| matches) else {
                    tx.count_code_attempt(challenge_id)?;
                    return Ok(Err(wrong_code()));
                };
                tx.spend_code(challenge_id)?;
                tx.insert_session(&token_hash, &profile, at, expires_at)?;
                audit::append(
                    tx,
                    at,
                    ACTOR,
                    "privacy.signed_in",
                    Some(profile.as_str()),
                    &json!({"expires_at": crate::profiles::iso(expires_at)}),
                )?;
                Ok(Ok(profile))
            },
        )??;
        let csrf = vault.keyed_hash(CSRF_USE, &[token.as_bytes()]);
        Ok((
            CustomerSession {
                profile,
                token_hash,
                csrf,
                expires_at,
            },
            token,
        ))
    }

    /// The session a token belongs to, if it is live.
    ///
    /// # Errors
    /// [`EngineError::SignedOut`] for a token that is unknown, expired, or whose profile is
    /// gone; a database fault.
    pub fn session(&self, token: &str) -> Result<CustomerSession, EngineError> {
        let vault = self.vault()?;
        let signed_out = || EngineError::SignedOut("sign in again with a new code".into());
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(signed_out());
        }
        let token_hash = vault.keyed_hash(SESSION_USE, &[token.as_bytes()]);
        let now = self.clock.now().timestamp_millis();
        let (profile, expires_at) = self
            .store
            .privacy_session(&token_hash, now)?
            .ok_or_else(signed_out)?;
        Ok(CustomerSession {
            profile,
            token_hash,
            csrf: vault.keyed_hash(CSRF_USE, &[token.as_bytes()]),
            expires_at,
        })
    }

    /// Ends a session.
    ///
    /// # Errors
    /// A database fault.
    pub fn sign_out(&self, session: &CustomerSession) -> Result<(), EngineError> {
        Ok(self.store.write(|tx| tx.end_session(&session.token_hash))?)
    }

    /// What is held about the signed-in customer, by category and purpose, with recipients.
    ///
    /// # Errors
    /// The profile is gone, or a database fault.
    pub fn held(&self, session: &CustomerSession) -> Result<HeldData, EngineError> {
        let profile = self.access.profile(&session.who(), ACTOR)?;
        let consent = self.consent_service.consent(&session.who())?;
        let purposes: Vec<HeldPurpose> = self
            .policy
            .registry
            .all()
            .map(|p| HeldPurpose {
                purpose: p.id.to_string(),
                text: p.text.clone(),
                legal_basis: p.legal_basis.as_str().to_owned(),
                allowed: consent
                    .purposes
                    .iter()
                    .any(|c| c.purpose == p.id.as_str() && c.has_basis),
                recipients: p.recipients.clone(),
                retention_days: p.retention_days,
            })
            .collect();
        let mut categories: Vec<HeldCategory> = Vec::new();
        for t in &profile.traits {
            let category = self
                .policy
                .schema
                .category(
                    consentric_model::CallType::Identify,
                    None,
                    &["traits", t.name.as_str()],
                )
                .cloned();
            let name = category.as_ref().map_or("other", |c| c.as_str()).to_owned();
            let value = match &t.value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            match categories.iter_mut().find(|c| c.category == name) {
                Some(c) => c.traits.push((t.name.clone(), value)),
                None => {
                    let users = self
                        .policy
                        .registry
                        .all()
                        .filter(|p| {
                            category.as_ref().is_some_and(|c| {
                                p.categories.iter().any(|pc| {
                                    consentric_policy::DataCategory::parse(pc)
                                        .is_ok_and(|pc| c.is_within(&pc))
                                })
                            })
                        })
                        .map(|p| p.id.to_string())
                        .collect();
                    categories.push(HeldCategory {
                        category: name,
                        traits: vec![(t.name.clone(), value)],
                        purposes: users,
                    });
                }
            }
        }
        categories.sort_by(|a, b| a.category.cmp(&b.category));
        Ok(HeldData {
            profile,
            categories,
            purposes,
        })
    }

    /// The signed-in customer's consent now.
    ///
    /// # Errors
    /// The profile is gone, or a database fault.
    pub fn consent(&self, session: &CustomerSession) -> Result<ConsentView, EngineError> {
        self.consent_service.consent(&session.who())
    }

    /// The signed-in customer's consent history, oldest first.
    ///
    /// # Errors
    /// The profile is gone, or a database fault.
    pub fn consent_history(
        &self,
        session: &CustomerSession,
    ) -> Result<Vec<ConsentHistoryEntry>, EngineError> {
        self.consent_service.consent_history(&session.who())
    }

    /// Records the signed-in customer's own choices (`purpose` → `granted` | `denied`).
    ///
    /// # Errors
    /// [`EngineError::Invalid`] for an unknown purpose or decision (nothing recorded), or a
    /// database fault.
    pub fn set_consent(
        &self,
        session: &CustomerSession,
        decisions: &[(String, String)],
    ) -> Result<ConsentView, EngineError> {
        let evidence = format!("privacy-centre:{}", session.token_hash);
        self.consent_service.set_consent_from(
            &session.who(),
            decisions,
            ConsentSource::PrivacyCentre,
            ACTOR,
            evidence.as_bytes(),
        )
    }

    /// The signed-in customer's latest decisions and why they were made.
    ///
    /// # Errors
    /// The profile is gone, or a database fault.
    pub fn decisions(
        &self,
        session: &CustomerSession,
        limit: u32,
    ) -> Result<Vec<LoggedDecision>, EngineError> {
        self.access.decision_log(&session.who(), limit, ACTOR)
    }

    /// Writes everything held about the signed-in customer to `out`, as JSON or as a ZIP of
    /// CSV files.
    ///
    /// # Errors
    /// The profile is gone, a database fault, or a failing writer.
    pub fn export(
        &self,
        session: &CustomerSession,
        zip: bool,
        out: &mut dyn std::io::Write,
    ) -> Result<u64, EngineError> {
        if zip {
            self.zip.export_zip(&session.who(), ACTOR, out)
        } else {
            self.exports.export(&session.who(), ACTOR, out)
        }
    }

    /// Carries out the signed-in customer's request at once: they proved who they are.
    ///
    /// # Errors
    /// The profile is gone, or the work's own errors.
    pub fn request(
        &self,
        session: &CustomerSession,
        kind: CustomerRequest,
    ) -> Result<CustomerOutcome, EngineError> {
        let who = session.who();
        Ok(match kind {
            CustomerRequest::Erasure => CustomerOutcome::Erased(self.erasure.erase(&who, ACTOR)?),
            CustomerRequest::Restriction => {
                CustomerOutcome::Consent(self.consent_service.restrict(&who, true, ACTOR)?)
            }
            CustomerRequest::LiftRestriction => {
                CustomerOutcome::Consent(self.consent_service.restrict(&who, false, ACTOR)?)
            }
            CustomerRequest::Objection => {
                let mut objected = self.requests.objected_purposes("gdpr");
                for p in self.requests.objected_purposes("ccpa") {
                    if !objected.contains(&p) {
                        objected.push(p);
                    }
                }
                if objected.is_empty() {
                    CustomerOutcome::Consent(self.consent_service.consent(&who)?)
                } else {
                    let decisions: Vec<(String, String)> = objected
                        .into_iter()
                        .map(|p| (p, "denied".to_owned()))
                        .collect();
                    CustomerOutcome::Consent(self.set_consent(session, &decisions)?)
                }
            }
        })
    }

    /// The requests about the signed-in customer made through other channels (an operator,
    /// the API), with their status and deadline.
    ///
    /// # Errors
    /// A database fault.
    pub fn requests(&self, session: &CustomerSession) -> Result<Vec<DsrView>, EngineError> {
        let mine = self
            .store
            .dsr_list(None)?
            .into_iter()
            .filter(|r| {
                r.identity.as_ref().is_some_and(|i| {
                    crate::profiles::find_profile(self.store, &ProfileRef::Identity(i.clone()))
                        .is_ok_and(|p| p == session.profile)
                })
            })
            .map(|r| r.request_id)
            .collect::<Vec<_>>();
        mine.iter().map(|id| self.requests.dsr_show(id)).collect()
    }
}
