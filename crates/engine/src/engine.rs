//! The façade: `Engine` is what `server` and `cli` call. Every method is one delegation to the
//! service that does the work, given its narrow context by [`Context`]; the builders hand each
//! service its own settings. Nothing in the crate imports this file but the crate's root and
//! `import`, which is a client of the façade like the binaries.

use std::io::Write;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use consentric_model::{Event, Identity, ProfileId};
use consentric_store::{BackendKind, Store};
use serde_json::Value;

use crate::analytics::{BudgetView, QueryRequest, Release};
use crate::cleanroom::{
    GuestBlinded, GuestRun, GuestSecrets, GuestSum, HostBlinded, HostCount, Invitation, Joining,
    Output, SessionView,
};
use crate::clock::Clock;
use crate::config::Settings;
use crate::context::Context;
use crate::dsr_settings::DsrSettings;
use crate::error::EngineError;
use crate::lifecycle::LifecycleSettings;
use crate::notify::Notifier;
use crate::personalize::PersonalizeSettings;
use crate::privacy_centre::CustomerSession;
use crate::{
    AuditAnchor, AuditVerification, ConsentHistoryEntry, ConsentView, CustomerLifecycle, Decision,
    DsrKind, DsrView, ErasureReceipt, FitReport, IdentityGraph, IngestContext, IngestReport,
    KeyInfo, LifecycleSummary, Metrics, NewKey, Principal, ProfileRef, ProfileView,
    PurposeScopedProfile, PurposeView, RecomputeReport, Regime, RetentionReport, Scope,
    SegmentMembers, SegmentPreview, SegmentProposal, SegmentRefresh, SegmentView, StoredEventView,
    TrainReport,
};

use consentric_policy::PolicySet;

/// The application: every use case is a method here. Cheap to share behind an `Arc`.
pub struct Engine {
    cx: Context,
}

impl Engine {
    /// The state the crate's own modules reach past the façade (the cluster follower).
    pub(crate) fn context(&self) -> &Context {
        &self.cx
    }

    /// An engine over `store` with `clock` and the built-in retail policy.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Engine {
            cx: Context::new(store, clock),
        }
    }

    /// An engine with a configured policy.
    pub fn with_policy(store: Store, clock: Arc<dyn Clock>, policy: PolicySet) -> Self {
        Engine {
            cx: Context::with_policy(store, clock, policy),
        }
    }

    /// Opens the configured store (PostgreSQL if a URL is set, else SQLite in the data
    /// directory) with the system clock, each service with its section of `settings`.
    ///
    /// # Errors
    /// If the store cannot be opened or migrated, or a section is invalid.
    pub fn open(settings: &Settings) -> Result<Self, EngineError> {
        Ok(Engine {
            cx: Context::open(settings)?,
        })
    }

    /// This engine with other lifecycle settings (rules, purposes, horizons).
    ///
    /// # Errors
    /// [`EngineError::Config`] for rules that cannot hold or an unknown purpose.
    pub fn with_lifecycle(self, settings: LifecycleSettings) -> Result<Self, EngineError> {
        Ok(Engine {
            cx: self.cx.with_lifecycle(settings)?,
        })
    }

    /// Clean-room sessions run with `settings` (`[cleanroom]`).
    ///
    /// # Errors
    /// [`EngineError::Config`] for an unknown purpose or a weak Paillier size.
    pub fn with_cleanroom(
        self,
        settings: crate::cleanroom::CleanroomSettings,
    ) -> Result<Self, EngineError> {
        Ok(Engine {
            cx: self.cx.with_cleanroom(settings)?,
        })
    }

    /// This engine with other personalisation settings (purpose, events, recommenders,
    /// actions).
    ///
    /// # Errors
    /// [`EngineError::Config`] for an unknown purpose or an unusable catalogue.
    pub fn with_personalize(self, settings: PersonalizeSettings) -> Result<Self, EngineError> {
        Ok(Engine {
            cx: self.cx.with_personalize(settings)?,
        })
    }

    /// This engine, reaching customers through `notifier` (one-time codes of requests). The
    /// default keeps messages in an [`crate::Outbox`] that nobody reads.
    pub fn with_notifier(self, notifier: Arc<dyn Notifier>) -> Self {
        Engine {
            cx: self.cx.with_notifier(notifier),
        }
    }

    /// This engine with other request deadlines.
    pub fn with_dsr_settings(self, settings: DsrSettings) -> Self {
        Engine {
            cx: self.cx.with_dsr_settings(settings),
        }
    }

    /// This engine with other limits on what clients' events may claim.
    pub fn with_ingest_settings(self, settings: crate::config::IngestSettings) -> Self {
        Engine {
            cx: self.cx.with_ingest_settings(settings),
        }
    }

    /// Whether `id` is a declared purpose (an import's grants must name one).
    pub fn declares_purpose(&self, id: &str) -> bool {
        self.cx.policy.registry.get(id).is_ok()
    }

    /// A whole profile (identities, traits with provenance, counters, merge history), read by
    /// `actor` (an API key id, `cli`) and audited.
    ///
    /// # Errors
    /// Not found, or a database fault.
    pub fn profile(&self, who: &ProfileRef, actor: &str) -> Result<ProfileView, EngineError> {
        self.cx.access().profile(who, actor)
    }

    /// A profile's latest logged decisions (what was decided and why), newest first, at most
    /// [`crate::access::MAX_EVENTS_PER_READ`]; audited.
    ///
    /// # Errors
    /// Not found, or a database fault.
    pub fn decision_log(
        &self,
        who: &ProfileRef,
        limit: u32,
        actor: &str,
    ) -> Result<Vec<crate::profiles::LoggedDecision>, EngineError> {
        self.cx.access().decision_log(who, limit, actor)
    }

    /// A profile's latest events, newest first, at most [`crate::access::MAX_EVENTS_PER_READ`]; audited.
    ///
    /// # Errors
    /// Not found, or a database fault.
    pub fn events(
        &self,
        who: &ProfileRef,
        limit: u32,
        actor: &str,
    ) -> Result<Vec<StoredEventView>, EngineError> {
        self.cx.access().events(who, limit, actor)
    }

    /// The identity graph of a profile; audited.
    ///
    /// # Errors
    /// Not found, or a database fault.
    pub fn identity_graph(
        &self,
        who: &ProfileRef,
        actor: &str,
    ) -> Result<IdentityGraph, EngineError> {
        self.cx.access().identity_graph(who, actor)
    }

    /// Grants `analyst` (an API key id) `rho` more on `dataset`. Audited.
    ///
    /// # Errors
    /// Invalid ρ or data set; a database fault.
    pub fn grant_budget(
        &self,
        analyst: &str,
        dataset: &str,
        rho: f64,
        actor: &str,
    ) -> Result<BudgetView, EngineError> {
        self.cx
            .analytics()
            .grant_budget(analyst, dataset, rho, actor)
    }

    /// `analyst`'s budgets.
    ///
    /// # Errors
    /// A database fault.
    pub fn analytics_budget(&self, analyst: &str) -> Result<Vec<BudgetView>, EngineError> {
        self.cx.analytics().analytics_budget(analyst)
    }

    /// Answers a query with noise, charged to `analyst`'s budget before any noise is drawn.
    ///
    /// # Errors
    /// [`EngineError::Invalid`] naming the field, [`EngineError::BudgetExceeded`] with what
    /// remains (nothing spent), or a database fault.
    pub fn analytics_query(
        &self,
        analyst: &str,
        request: &QueryRequest,
    ) -> Result<Release, EngineError> {
        self.cx.analytics().analytics_query(analyst, request)
    }

    /// Creates an API key; its secret is in the returned value and nowhere else.
    ///
    /// # Errors
    /// A database fault or a failing random source.
    pub fn create_key(&self, scope: Scope, label: Option<&str>) -> Result<NewKey, EngineError> {
        self.cx.api_keys().create_key(scope, label)
    }

    /// Creates an API key of `kind` (only a write key can be a browser key); its secret is in
    /// the returned value and nowhere else.
    ///
    /// # Errors
    /// [`EngineError::Invalid`] for a browser key of another scope; a database fault.
    pub fn create_key_of_kind(
        &self,
        scope: Scope,
        kind: crate::KeyKind,
        label: Option<&str>,
    ) -> Result<NewKey, EngineError> {
        self.cx.api_keys().create_key_of_kind(scope, kind, label)
    }

    /// Revokes key `key_id`: refused at once here, and by every process on the same store
    /// within a second. Audited.
    ///
    /// # Errors
    /// Not found; a database fault.
    pub fn revoke_key(&self, key_id: &str, actor: &str) -> Result<KeyInfo, EngineError> {
        self.cx.api_keys().revoke_key(key_id, actor)
    }

    /// Makes key `key_id` a browser or a server key. Audited.
    ///
    /// # Errors
    /// Not found; a browser key that is not a write key; a database fault.
    pub fn set_key_kind(
        &self,
        key_id: &str,
        kind: crate::KeyKind,
        actor: &str,
    ) -> Result<KeyInfo, EngineError> {
        self.cx.api_keys().set_key_kind(key_id, kind, actor)
    }

    /// Notes that a server SDK sent with browser key `key_id`.
    ///
    /// # Errors
    /// A database fault.
    pub fn note_server_library(&self, key_id: &str, library: &str) -> Result<(), EngineError> {
        self.cx.api_keys().note_server_library(key_id, library)
    }

    /// The deployment's identity secret (hex), which a site's backend signs user ids with.
    ///
    /// # Errors
    /// [`EngineError::Config`] without a vault.
    pub fn identity_secret(&self) -> Result<String, EngineError> {
        self.cx
            .store
            .vault()
            .map(consentric_vault::Vault::identity_secret)
            .ok_or_else(|| EngineError::Config("the identity secret needs the master keys".into()))
    }

    /// The principal of `secret` if this engine verified it before (keys cannot be revoked
    /// yet, so it is still valid), without touching the database: a server answers the common
    /// case without handing the request to a blocking thread. `None` means "ask
    /// [`Engine::authenticate`]", not "unknown".
    pub fn authenticate_cached(&self, secret: &str) -> Option<Principal> {
        self.cx.api_keys().authenticate_cached(secret)
    }

    /// The key with this secret, or `None` if there is no such (live) key.
    ///
    /// # Errors
    /// A database fault.
    pub fn authenticate(&self, secret: &str) -> Result<Option<Principal>, EngineError> {
        self.cx.api_keys().authenticate(secret)
    }

    /// The live key with this secret, looked up without recording its use: for public paths
    /// that name a key without acting with it (analytics.js's settings).
    ///
    /// # Errors
    /// A database fault.
    pub fn peek_key(&self, secret: &str) -> Result<Option<Principal>, EngineError> {
        self.cx.api_keys().peek(secret)
    }

    /// Every key (without secrets): id, scope, label, creation time.
    ///
    /// # Errors
    /// A database fault.
    pub fn keys(&self) -> Result<Vec<KeyInfo>, EngineError> {
        self.cx.api_keys().keys()
    }

    /// Records an invitation from a host, to run later. Audited.
    ///
    /// # Errors
    /// A bad URL or empty token; a database fault.
    pub fn cleanroom_join(
        &self,
        invitation: &Joining,
        actor: &str,
    ) -> Result<SessionView, EngineError> {
        self.cx
            .cleanroom_guest_service()
            .cleanroom_join(invitation, actor)
    }

    /// Starts running joined session `id`: it moves to `running` (so two runs cannot both
    /// go ahead) and says how to reach its host.
    ///
    /// # Errors
    /// Not a joined session, expired, or already run.
    pub fn cleanroom_guest(&self, id: &str) -> Result<GuestRun, EngineError> {
        self.cx.cleanroom_guest_service().cleanroom_guest(id)
    }

    /// Round 2, guest side: the host's identifiers blinded again, ours blinded, and for a
    /// sum our values (revenue, in cents) encrypted under a key made now.
    ///
    /// # Errors
    /// A malformed round 1; too many identifiers; a database fault.
    pub fn cleanroom_guest_answer(
        &self,
        id: &str,
        round1: &HostBlinded,
    ) -> Result<(GuestBlinded, GuestSecrets), EngineError> {
        self.cx
            .cleanroom_guest_service()
            .cleanroom_guest_answer(id, round1)
    }

    /// Round 3, guest side: the masked sum decrypted — only for a sum, and only when the
    /// intersection is at least `[cleanroom] min_sum_cardinality` (a sum over one or a few
    /// customers would be their values).
    ///
    /// # Errors
    /// A malformed reply, or too small an intersection.
    pub fn cleanroom_guest_reveal(
        &self,
        secrets: &GuestSecrets,
        reply: &HostCount,
    ) -> Result<Option<GuestSum>, EngineError> {
        self.cx
            .cleanroom_guest_service()
            .cleanroom_guest_reveal(secrets, reply)
    }

    /// The session done, as the guest saw it: recorded and audited once every round was
    /// accepted.
    ///
    /// # Errors
    /// Not running any more; a database fault.
    pub fn cleanroom_guest_complete(
        &self,
        id: &str,
        secrets: &GuestSecrets,
        reply: &HostCount,
        round1: &HostBlinded,
    ) -> Result<SessionView, EngineError> {
        self.cx
            .cleanroom_guest_service()
            .cleanroom_guest_complete(id, secrets, reply, round1)
    }

    /// Marks a joined session aborted (the host refused a step).
    ///
    /// # Errors
    /// A database fault.
    pub fn cleanroom_guest_abort(&self, id: &str, why: &str) -> Result<(), EngineError> {
        self.cx
            .cleanroom_guest_service()
            .cleanroom_guest_abort(id, why)
    }

    /// Invites a partner: a session that will reveal `output` (and the sum of the partner's
    /// values over the intersection if `sum`), with a fresh token. Audited.
    ///
    /// # Errors
    /// An empty partner name; a database fault.
    pub fn cleanroom_invite(
        &self,
        partner: &str,
        output: Output,
        sum: bool,
        actor: &str,
    ) -> Result<Invitation, EngineError> {
        self.cx
            .cleanroom_host()
            .cleanroom_invite(partner, output, sum, actor)
    }

    /// Every session, newest first.
    ///
    /// # Errors
    /// A database fault.
    pub fn cleanroom_sessions(&self) -> Result<Vec<SessionView>, EngineError> {
        self.cx.cleanroom_host().cleanroom_sessions()
    }

    /// One session.
    ///
    /// # Errors
    /// Not found; a database fault.
    pub fn cleanroom_session(&self, id: &str) -> Result<SessionView, EngineError> {
        self.cx.cleanroom_host().cleanroom_session(id)
    }

    /// Round 1: our blinded identifiers, sorted.
    ///
    /// # Errors
    /// Unknown session, bad token, expired, not the next step, too many customers.
    pub fn cleanroom_host_blinded(
        &self,
        id: &str,
        token: &str,
    ) -> Result<HostBlinded, EngineError> {
        self.cx.cleanroom_host().cleanroom_host_blinded(id, token)
    }

    /// The most bytes the partner's next message to session `id` may hold, checked with its
    /// token before any of the message is read.
    ///
    /// # Errors
    /// Unknown session, bad token, expired, or no message expected now.
    pub fn cleanroom_host_admit(&self, id: &str, token: &str) -> Result<usize, EngineError> {
        self.cx.cleanroom_host().cleanroom_host_admit(id, token)
    }

    /// Round 2: the cardinality, and for a sum `Enc(sum + mask)`.
    ///
    /// # Errors
    /// As round 1, and [`SessionError::Protocol`] (the session aborted) for a malformed
    /// message: bad points, ciphertexts outside the group, mismatched lengths.
    pub fn cleanroom_host_intersect(
        &self,
        id: &str,
        token: &str,
        msg: &GuestBlinded,
    ) -> Result<HostCount, EngineError> {
        self.cx
            .cleanroom_host()
            .cleanroom_host_intersect(id, token, msg)
    }

    /// Round 3: the sum, unmasked; the session is done.
    ///
    /// # Errors
    /// As round 1; a masked sum that is not a number below the modulus.
    pub fn cleanroom_host_sum(
        &self,
        id: &str,
        token: &str,
        msg: &GuestSum,
    ) -> Result<SessionView, EngineError> {
        self.cx.cleanroom_host().cleanroom_host_sum(id, token, msg)
    }

    /// The declared purposes, for consent banners (`GET /v1/purposes`).
    pub fn purposes(&self) -> Vec<PurposeView> {
        self.cx.consent_service().purposes()
    }

    /// The declared purposes with their texts in the first of `languages` (language tags,
    /// most preferred first) translated.
    pub fn purposes_in(&self, languages: &[String]) -> Vec<PurposeView> {
        self.cx.consent_service().purposes_in(languages)
    }

    /// A customer's consent state now, purpose by purpose.
    ///
    /// # Errors
    /// Not found, or a database fault.
    pub fn consent(&self, who: &ProfileRef) -> Result<ConsentView, EngineError> {
        self.cx.consent_service().consent(who)
    }

    /// A customer's whole consent history, in the order it was written.
    ///
    /// # Errors
    /// Not found, or a database fault.
    pub fn consent_history(
        &self,
        who: &ProfileRef,
    ) -> Result<Vec<ConsentHistoryEntry>, EngineError> {
        self.cx.consent_service().consent_history(who)
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
        self.cx
            .consent_service()
            .set_consent(who, decisions, actor, evidence)
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
        self.cx.consent_service().restrict(who, restricted, actor)
    }

    /// Walks the audit chain and reports the first place it breaks, if any.
    ///
    /// # Errors
    /// A database fault.
    pub fn verify_audit(&self) -> Result<AuditVerification, EngineError> {
        self.cx.consent_service().verify_audit()
    }

    /// [`Engine::verify_audit`], also checking the chain against anchors kept elsewhere: a
    /// missing anchored record (truncation) or a different hash there (a recomputed chain) is
    /// a break.
    ///
    /// # Errors
    /// A database fault.
    pub fn verify_audit_against(
        &self,
        anchors: &[AuditAnchor],
    ) -> Result<AuditVerification, EngineError> {
        self.cx.consent_service().verify_audit_against(anchors)
    }

    /// The engine's current time (the injected clock's).
    pub fn now(&self) -> DateTime<Utc> {
        self.cx.now()
    }

    /// The envelope of a request arriving now: its arrival time, `request_id`, and how far
    /// ahead of arrival its events may be dated (`[ingest] future_tolerance_seconds`).
    pub fn envelope(&self, request_id: impl Into<String>) -> consentric_model::Envelope {
        let tolerance = i64::try_from(self.cx.ingest_settings.future_tolerance_seconds)
            .ok()
            .and_then(chrono::TimeDelta::try_seconds)
            .unwrap_or(consentric_model::DEFAULT_FUTURE_TOLERANCE);
        consentric_model::Envelope::new(self.now(), request_id).with_future_tolerance(tolerance)
    }

    /// Empties SQLite's write-ahead log into the database file (see `Store::checkpoint`).
    ///
    /// # Errors
    /// A database fault.
    pub fn checkpoint(&self) -> Result<(), EngineError> {
        self.cx.checkpoint()
    }

    /// Which database is behind the engine.
    pub fn backend(&self) -> BackendKind {
        self.cx.backend()
    }

    /// Operational metrics.
    pub fn metrics(&self) -> &Metrics {
        self.cx.metrics()
    }

    /// Whether the database answers.
    ///
    /// # Errors
    /// The database's fault.
    pub fn ready(&self) -> Result<(), EngineError> {
        self.cx.ready()
    }

    /// Stored events and live profiles.
    ///
    /// # Errors
    /// A database fault.
    pub fn totals(&self) -> Result<(u64, u64), EngineError> {
        self.cx.totals()
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
        self.cx
            .requests()
            .dsr_request(kind, regime, identity, contact, actor)
    }

    /// A request.
    ///
    /// # Errors
    /// Not found, or a database fault.
    pub fn dsr_show(&self, request_id: &str) -> Result<DsrView, EngineError> {
        self.cx.requests().dsr_show(request_id)
    }

    /// Every request, oldest deadline first; only the open ones past their deadline if
    /// `overdue`.
    ///
    /// # Errors
    /// A database fault.
    pub fn dsr_list(&self, overdue: bool) -> Result<Vec<DsrView>, EngineError> {
        self.cx.requests().dsr_list(overdue)
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
        self.cx.requests().dsr_verify(request_id, code, actor)
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
        self.cx
            .requests()
            .dsr_extend(request_id, days, reason, actor)
    }

    /// Carries out a verified request and completes it: erasure returns its signed receipt,
    /// access writes the export to `out`, restriction restricts. The request's own key is then
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
        self.cx.requests().dsr_process(request_id, actor, out)
    }

    /// The public key that erasure receipts are signed with (hex).
    ///
    /// # Errors
    /// [`EngineError::Config`] without a vault.
    pub fn receipt_public_key(&self) -> Result<String, EngineError> {
        self.cx.erasure().receipt_public_key()
    }

    /// Erases the customer `who` names, as `actor`, and returns the signed receipt. If the
    /// customer was already erased (named by a profile id or an identity they had), returns the
    /// receipt of that erasure and changes nothing.
    ///
    /// # Errors
    /// Not found (never known), no vault, or a database fault (then nothing was erased).
    pub fn erase(&self, who: &ProfileRef, actor: &str) -> Result<ErasureReceipt, EngineError> {
        self.cx.erasure().erase(who, actor)
    }

    /// Writes everything held about the customer `who` names — profile, identities and their
    /// graph, every event, the consent history, the recipients of their data, and every audit
    /// record about them (decisions,
    /// reads, and who made them) — to `out` as one JSON document, and audits the export.
    /// Returns how many events were written.
    ///
    /// # Errors
    /// Not found, a database fault, or a failing writer.
    pub fn export(
        &self,
        who: &ProfileRef,
        actor: &str,
        out: &mut dyn Write,
    ) -> Result<u64, EngineError> {
        self.cx.exports().export(who, actor, out)
    }

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
        self.cx.zip_export().export_zip(who, actor, out)
    }

    /// Stores parsed events; duplicates (known message ids) are acknowledged and skipped.
    /// Concurrent calls are committed together (group commit); when this returns `Ok`, the
    /// events are committed, and a batch is stored whole or not at all.
    ///
    /// # Errors
    /// A database fault; then nothing of the batch is stored.
    pub fn ingest(&self, events: Vec<Event>) -> Result<IngestReport, EngineError> {
        self.cx.ingestion().ingest(events)
    }

    /// [`Engine::ingest`] with the request's consent signals (`Sec-GPC`) and sender. Consent
    /// carried by the events (Segment's consent object, TCF strings) is read first: a malformed
    /// signal refuses the whole request before anything is written.
    ///
    /// # Errors
    /// [`EngineError::Invalid`] naming the event and field of a malformed signal; a database
    /// fault (nothing of the batch is stored).
    pub fn ingest_with(
        &self,
        events: Vec<Event>,
        ctx: &IngestContext,
    ) -> Result<IngestReport, EngineError> {
        self.cx.ingestion().ingest_with(events, ctx)
    }

    /// Fits the value models on the customers with a basis for the analytics purpose and
    /// stores them; later scores use them.
    ///
    /// # Errors
    /// No purchases to fit on, a model that does not converge, or a database fault.
    pub fn lifecycle_fit(&self, actor: &str) -> Result<FitReport, EngineError> {
        self.cx.fitting().lifecycle_fit(actor)
    }

    /// Places every customer with a basis for the stage purpose by the rules.
    ///
    /// # Errors
    /// A database fault; then the chunk being written is not kept (earlier chunks are).
    pub fn lifecycle_recompute(&self, actor: &str) -> Result<RecomputeReport, EngineError> {
        self.cx.placement().lifecycle_recompute(actor)
    }

    /// A customer's lifecycle under the stage purpose, as `actor`; audited.
    ///
    /// # Errors
    /// Not found, [`EngineError::NoBasis`] without a basis for the stage purpose, or a
    /// database fault.
    pub fn customer_lifecycle(
        &self,
        who: &ProfileRef,
        actor: &str,
    ) -> Result<CustomerLifecycle, EngineError> {
        self.cx.lifecycle_views().customer_lifecycle(who, actor)
    }

    /// The population's funnel, cohorts and models under the analytics purpose; audited.
    ///
    /// # Errors
    /// A database fault.
    pub fn lifecycle_summary(&self, actor: &str) -> Result<LifecycleSummary, EngineError> {
        self.cx.lifecycle_views().lifecycle_summary(actor)
    }

    /// Decides for a customer at a placement: up to `limit` items, the next best action and
    /// the explanation. Personal only with a basis for the personalisation purpose; the
    /// chosen action is recorded (caps and cooldowns count it) and the decision audited in
    /// one transaction, shared with concurrent decisions.
    ///
    /// # Errors
    /// Not found, an invalid placement or limit, configuration or database faults.
    pub fn decide(
        &self,
        who: &ProfileRef,
        placement: &str,
        limit: Option<usize>,
        actor: &str,
    ) -> Result<Decision, EngineError> {
        self.cx
            .decisions_service()
            .decide(who, placement, limit, actor)
    }

    /// The decision [`Engine::decide`] would make now, without recording it: no cap or
    /// cooldown is spent. Still a read of personal data, so it is audited
    /// (`decision.previewed`).
    ///
    /// # Errors
    /// As [`Engine::decide`].
    pub fn preview_decision(
        &self,
        who: &ProfileRef,
        placement: &str,
        limit: Option<usize>,
        actor: &str,
    ) -> Result<Decision, EngineError> {
        self.cx
            .decisions_service()
            .preview_decision(who, placement, limit, actor)
    }

    /// Whether a decision begun now should finish within a fraction of a millisecond: its
    /// reads and scoring are that short, and so is its write while the store's writes are
    /// quick (no large or long write holding the writer, quick flushes). A server may then
    /// decide on the thread that received the request rather than hand it to one that may
    /// wait: the hand-off and the wake-up back cost a quarter of a decision.
    pub fn decisions_are_quick(&self) -> bool {
        self.cx.decisions_service().decisions_are_quick()
    }

    /// A segment's members as kept: its size and up to `limit` members.
    ///
    /// # Errors
    /// Not found, or a database fault.
    pub fn segment_members(&self, name: &str, limit: usize) -> Result<SegmentMembers, EngineError> {
        self.cx.memberships().segment_members(name, limit)
    }

    /// Re-evaluates the segments of the customers written to (or whose consent changed) since
    /// the last refresh — or of everyone (`everyone`: time-window conditions change as days
    /// pass) — and stores who joined and who left. Audited when anything is evaluated.
    ///
    /// # Errors
    /// A database fault (the customers taken stay noted for the next refresh).
    pub fn refresh_segments(
        &self,
        everyone: bool,
        actor: &str,
    ) -> Result<SegmentRefresh, EngineError> {
        self.cx.memberships().refresh_segments(everyone, actor)
    }

    /// Defines (or redefines) a segment. Refuses conditions that do not parse and any that
    /// look at a sensitive trait (`user.demographic.*`): segments feed decisions.
    ///
    /// # Errors
    /// [`EngineError::Invalid`] naming the problem, or a database fault.
    pub fn define_segment(
        &self,
        name: &str,
        definition: &Value,
        actor: &str,
    ) -> Result<SegmentView, EngineError> {
        self.cx
            .segment_service()
            .define_segment(name, definition, actor)
    }

    /// Every segment.
    ///
    /// # Errors
    /// Database faults.
    pub fn segments(&self) -> Result<Vec<SegmentView>, EngineError> {
        self.cx.segment_service().segments()
    }

    /// Deletes a segment.
    ///
    /// # Errors
    /// Not found, or a database fault.
    pub fn delete_segment(&self, name: &str, actor: &str) -> Result<(), EngineError> {
        self.cx.segment_service().delete_segment(name, actor)
    }

    /// Sizes a segment over the customers with a basis for the personalisation purpose and
    /// lists up to `limit` members, evaluating it now. Audited (it reads personal data of many
    /// customers).
    ///
    /// # Errors
    /// Not found, or a database fault.
    pub fn preview_segment(
        &self,
        name: &str,
        limit: usize,
        actor: &str,
    ) -> Result<SegmentPreview, EngineError> {
        self.cx
            .segment_service()
            .preview_segment(name, limit, actor)
    }

    /// Clusters customers with a basis for the personalisation purpose by behaviour (orders,
    /// revenue, events, days since last seen, distinct items) with k-means, k in 2..=`max_k`
    /// chosen by silhouette; each cluster described by its centre, for someone to name and
    /// define as a segment.
    ///
    /// # Errors
    /// A database fault.
    pub fn propose_segments(
        &self,
        max_k: usize,
        actor: &str,
    ) -> Result<SegmentProposal, EngineError> {
        self.cx.segment_service().propose_segments(max_k, actor)
    }

    /// Trains popularity, item-kNN and ALS on the interactions of every customer with a basis
    /// for the personalisation purpose, stores them with their training date and data window,
    /// and decides with them from now on. Audited, with how many customers were left out.
    ///
    /// # Errors
    /// Configuration (unknown purpose) or database faults.
    pub fn train_recommenders(&self, actor: &str) -> Result<TrainReport, EngineError> {
        self.cx.training().train_recommenders(actor)
    }

    /// The profile a reference names now (following merges).
    ///
    /// # Errors
    /// [`EngineError::NotFound`] if nothing matches.
    pub fn find_profile(&self, r: &ProfileRef) -> Result<ProfileId, EngineError> {
        crate::profiles::find_profile(&self.cx.store, r)
    }

    /// Sets trait `name` of the customer `who` names to `value`, as `actor`. Only a trait the
    /// customer has can be corrected, and only to a value the policy would store.
    ///
    /// # Errors
    /// Not found; [`EngineError::Invalid`] for a trait the customer does not have or one no
    /// schema rule maps; a database fault.
    pub fn rectify(
        &self,
        who: &ProfileRef,
        name: &str,
        value: &Value,
        actor: &str,
    ) -> Result<crate::ProfileView, EngineError> {
        self.cx.rectification().rectify(who, name, value, actor)
    }

    /// Deletes what has outlived every purpose that may keep it, and audits the sweep.
    ///
    /// # Errors
    /// A database fault; what earlier pages deleted stays deleted.
    pub fn sweep_retention(&self, actor: &str) -> Result<RetentionReport, EngineError> {
        self.cx.retention().sweep_retention(actor)
    }

    /// Carries out the withdrawals sent with a browser key whose grace period has passed (the
    /// deletion they cause, against the ledger as it now stands); how many.
    ///
    /// # Errors
    /// A database fault; what earlier pages did stays done.
    pub fn carry_out_due_withdrawals(&self, actor: &str) -> Result<u64, EngineError> {
        self.cx.withdrawal_grace().carry_out_due_withdrawals(actor)
    }

    /// Re-wraps every customer's data key under the vault's current key-encryption key (after
    /// `MasterKeys::begin_rotation`), a page per transaction; returns how many. Safe to run
    /// again after an interruption: a key already re-wrapped is simply wrapped once more.
    ///
    /// # Errors
    /// No vault, a key that unwraps under neither master key, or a database fault.
    pub fn rewrap_data_keys(&self) -> Result<u64, EngineError> {
        self.cx.rotation().rewrap_data_keys()
    }

    /// Opens a view of a customer's profile for `purpose`, as `actor`, and audits it.
    ///
    /// # Errors
    /// [`EngineError::Invalid`] for an unknown purpose, [`EngineError::NoBasis`] when the purpose
    /// has no legal basis for this customer now, not found, or a database fault.
    pub fn profile_for_purpose(
        &self,
        who: &ProfileRef,
        purpose: &str,
        actor: &str,
    ) -> Result<PurposeScopedProfile, EngineError> {
        self.cx.views().profile_for_purpose(who, purpose, actor)
    }

    /// Sends a privacy-centre code to `address` if a profile holds it; the same answer either
    /// way. See `privacy_centre.rs`.
    ///
    /// # Errors
    /// Not an address, too many codes for it, or a database fault.
    pub fn privacy_send_code(
        &self,
        address: &str,
    ) -> Result<crate::privacy_centre::CodeChallenge, EngineError> {
        self.cx.privacy_centre().send_code(address)
    }

    /// Checks a privacy-centre code and starts the customer's session; returns it with its
    /// token.
    ///
    /// # Errors
    /// A wrong, spent or expired code, or a database fault.
    pub fn privacy_sign_in(
        &self,
        challenge_id: &str,
        code: &str,
    ) -> Result<(CustomerSession, String), EngineError> {
        self.cx.privacy_centre().sign_in(challenge_id, code)
    }

    /// The live session a privacy-centre token belongs to.
    ///
    /// # Errors
    /// [`EngineError::SignedOut`], or a database fault.
    pub fn privacy_session(&self, token: &str) -> Result<CustomerSession, EngineError> {
        self.cx.privacy_centre().session(token)
    }

    /// Ends a privacy-centre session.
    ///
    /// # Errors
    /// A database fault.
    pub fn privacy_sign_out(&self, session: &CustomerSession) -> Result<(), EngineError> {
        self.cx.privacy_centre().sign_out(session)
    }

    /// What is held about the signed-in customer, by category and purpose; audited.
    ///
    /// # Errors
    /// The profile is gone, or a database fault.
    pub fn privacy_held(
        &self,
        session: &CustomerSession,
    ) -> Result<crate::privacy_centre::HeldData, EngineError> {
        self.cx.privacy_centre().held(session)
    }

    /// The signed-in customer's consent now and its history.
    ///
    /// # Errors
    /// The profile is gone, or a database fault.
    pub fn privacy_consent(
        &self,
        session: &CustomerSession,
    ) -> Result<(ConsentView, Vec<ConsentHistoryEntry>), EngineError> {
        let centre = self.cx.privacy_centre();
        Ok((centre.consent(session)?, centre.consent_history(session)?))
    }

    /// Records the signed-in customer's own consent choices.
    ///
    /// # Errors
    /// An unknown purpose or decision (nothing recorded), or a database fault.
    pub fn privacy_set_consent(
        &self,
        session: &CustomerSession,
        decisions: &[(String, String)],
    ) -> Result<ConsentView, EngineError> {
        self.cx.privacy_centre().set_consent(session, decisions)
    }

    /// The signed-in customer's latest decisions with their explanations; audited.
    ///
    /// # Errors
    /// The profile is gone, or a database fault.
    pub fn privacy_decisions(
        &self,
        session: &CustomerSession,
        limit: u32,
    ) -> Result<Vec<crate::profiles::LoggedDecision>, EngineError> {
        self.cx.privacy_centre().decisions(session, limit)
    }

    /// Writes the signed-in customer's data to `out` (JSON, or a ZIP of CSV files); audited.
    ///
    /// # Errors
    /// The profile is gone, a database fault, or a failing writer.
    pub fn privacy_export(
        &self,
        session: &CustomerSession,
        zip: bool,
        out: &mut dyn Write,
    ) -> Result<u64, EngineError> {
        self.cx.privacy_centre().export(session, zip, out)
    }

    /// Carries out the signed-in customer's erasure, restriction or objection at once.
    ///
    /// # Errors
    /// The profile is gone, or the work's own errors.
    pub fn privacy_request(
        &self,
        session: &CustomerSession,
        kind: crate::privacy_centre::CustomerRequest,
    ) -> Result<crate::privacy_centre::CustomerOutcome, EngineError> {
        self.cx.privacy_centre().request(session, kind)
    }

    /// Requests about the signed-in customer made through other channels.
    ///
    /// # Errors
    /// A database fault.
    pub fn privacy_requests(&self, session: &CustomerSession) -> Result<Vec<DsrView>, EngineError> {
        self.cx.privacy_centre().requests(session)
    }

    /// Adds a console operator with `role`.
    ///
    /// # Errors
    /// A bad name, a short password, a name taken, or a database fault.
    pub fn add_operator(
        &self,
        name: &str,
        role: crate::operators::Role,
        password: &str,
        actor: &str,
    ) -> Result<(), EngineError> {
        self.cx.operators().add(name, role, password, actor)
    }

    /// The console's operators, without secrets.
    ///
    /// # Errors
    /// A database fault.
    pub fn operators(&self) -> Result<Vec<crate::operators::OperatorView>, EngineError> {
        self.cx.operators().list()
    }

    /// Sets an operator's password; their sessions end.
    ///
    /// # Errors
    /// A short password, an unknown operator, or a database fault.
    pub fn set_operator_password(
        &self,
        name: &str,
        password: &str,
        actor: &str,
    ) -> Result<(), EngineError> {
        self.cx.operators().set_password(name, password, actor)
    }

    /// Disables or enables an operator; disabling ends their sessions.
    ///
    /// # Errors
    /// An unknown operator, or a database fault.
    pub fn set_operator_disabled(
        &self,
        name: &str,
        disabled: bool,
        actor: &str,
    ) -> Result<(), EngineError> {
        self.cx.operators().set_disabled(name, disabled, actor)
    }

    /// Turns on TOTP for an operator: the secret in base32 and an `otpauth://` URI.
    ///
    /// # Errors
    /// An unknown operator, or a database fault.
    pub fn enable_operator_totp(
        &self,
        name: &str,
        actor: &str,
    ) -> Result<(String, String), EngineError> {
        self.cx.operators().enable_totp(name, actor)
    }

    /// Logs an operator in: their session and its token.
    ///
    /// # Errors
    /// [`EngineError::SignedOut`] for any refusal, or a database fault.
    pub fn operator_log_in(
        &self,
        name: &str,
        password: &str,
        code: Option<&str>,
    ) -> Result<(crate::operators::OperatorSession, String), EngineError> {
        self.cx.operators().log_in(name, password, code)
    }

    /// The live console session of a token.
    ///
    /// # Errors
    /// [`EngineError::SignedOut`], or a database fault.
    pub fn operator_session(
        &self,
        token: &str,
    ) -> Result<crate::operators::OperatorSession, EngineError> {
        self.cx.operators().session(token)
    }

    /// Checks a logged-in operator's password again; a wrong one counts towards the lock-out.
    ///
    /// # Errors
    /// [`EngineError::SignedOut`], or a database fault.
    pub fn operator_check_password(&self, name: &str, password: &str) -> Result<(), EngineError> {
        self.cx.operators().check_password(name, password)
    }

    /// Ends a console session.
    ///
    /// # Errors
    /// A database fault.
    pub fn operator_log_out(
        &self,
        session: &crate::operators::OperatorSession,
    ) -> Result<(), EngineError> {
        self.cx.operators().log_out(session)
    }

    /// The latest `limit` audit records about the customer `who` names (who read or changed
    /// their data, when, for which purpose), newest first.
    ///
    /// # Errors
    /// Not found, or a database fault.
    pub fn audit_trail(
        &self,
        who: &ProfileRef,
        limit: usize,
    ) -> Result<Vec<crate::audit::AuditEntry>, EngineError> {
        let id = self.find_profile(who)?;
        Ok(crate::audit::trail_of(&self.cx.store, id.as_str(), limit)?)
    }

    /// The purpose personal decisions are made under (`[personalize] purpose`): what a
    /// marketer's view of a customer is scoped to.
    pub fn personalization_purpose(&self) -> String {
        self.cx.personalize.settings.purpose.clone()
    }

    /// The lifecycle summary, or the one computed last if it is younger than `max_age` (the
    /// console's pages take one up to a minute old); audited either way.
    ///
    /// # Errors
    /// A database fault.
    pub fn lifecycle_summary_within(
        &self,
        max_age: std::time::Duration,
        actor: &str,
    ) -> Result<Arc<LifecycleSummary>, EngineError> {
        self.cx
            .lifecycle_views()
            .lifecycle_summary_within(max_age, actor)
    }

    /// Computes the lifecycle summary and the console overview's counts afresh for
    /// [`Engine::lifecycle_summary_within`] and [`Engine::console_stats`]: `serve` does it
    /// every half minute on every node, so that no console page waits for them.
    ///
    /// # Errors
    /// A database fault.
    pub fn refresh_console_figures(&self) -> Result<(), EngineError> {
        self.cx.lifecycle_views().refresh_summary()?;
        self.cx
            .stats_cache
            .get_or(std::time::Duration::ZERO, || {
                crate::console_stats::compute(&self.cx.store, &*self.cx.clock)
            })
            .map(drop)
    }

    /// The console overview's counts, or those computed last if younger than `max_age`.
    ///
    /// # Errors
    /// A database fault.
    pub fn console_stats(
        &self,
        max_age: std::time::Duration,
    ) -> Result<Arc<crate::console_stats::ConsoleStats>, EngineError> {
        self.cx.stats_cache.get_or(max_age, || {
            crate::console_stats::compute(&self.cx.store, &*self.cx.clock)
        })
    }

    /// The next-best-action catalogue, with how often each action was chosen.
    ///
    /// # Errors
    /// A database fault.
    pub fn action_catalogue(&self) -> Result<Vec<crate::personalize::ActionView>, EngineError> {
        crate::personalize::catalogue(&self.cx.store, &self.cx.personalize.catalogue)
    }

    /// How many customers a segment condition not yet saved would hold now; audited.
    ///
    /// # Errors
    /// [`EngineError::Invalid`] naming `definition`, or a database fault.
    pub fn size_segment(
        &self,
        definition: &Value,
        actor: &str,
    ) -> Result<crate::personalize::SegmentPreview, EngineError> {
        self.cx.segment_service().size_of(definition, actor)
    }

    /// The latest `limit` records of the audit log before position `before` (`i64::MAX` for
    /// the newest), newest first (who did what, to whom), each with its position.
    ///
    /// # Errors
    /// A database fault.
    pub fn audit_latest(
        &self,
        before: i64,
        limit: u32,
    ) -> Result<Vec<(i64, crate::audit::AuditEntry)>, EngineError> {
        Ok(self
            .cx
            .store
            .audit_latest(before, limit)?
            .into_iter()
            .map(|r| {
                (
                    r.seq,
                    crate::audit::AuditEntry {
                        at: crate::profiles::iso(r.at),
                        actor: r.actor,
                        action: r.action,
                        subject: r.subject,
                        detail: serde_json::from_str(&r.detail).unwrap_or(Value::Null),
                    },
                )
            })
            .collect())
    }
}
