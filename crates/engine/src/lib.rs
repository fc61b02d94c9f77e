//! Consentric's application services.
//!
//! The engine is where a request becomes work: it is the only room that composes the store
//! with the pure rooms, and `server` and `cli` only translate their inputs into calls on
//! [`Engine`]. Its methods are synchronous and do blocking I/O; async callers run them on a
//! blocking thread. Time comes from an injectable [`Clock`], so tests control it.
#![forbid(unsafe_code)]

mod access;
pub mod analytics;
mod api_keys;
mod assemble;
mod audit;
pub mod cleanroom;
mod clock;
mod cluster;
mod cluster_state;
pub mod config;
mod consent;
mod console_stats;
mod context;
mod dsr;
mod dsr_settings;
mod engine;
mod erasure;
mod error;
mod export;
mod export_zip;
mod group_commit;
pub mod import;
mod ingest;
mod ingest_cache;
mod ingest_commit;
mod keys;
mod ledger;
mod lifecycle;
mod metrics;
mod notify;
mod operators;
mod personalize;
mod population;
mod population_cache;
#[cfg(test)]
mod population_tests;
mod privacy_centre;
mod profiles;
mod recent;
mod recipients;
mod rectification;
mod retention;
mod rotation;
mod views;
mod web_origin;
mod withdrawal;
mod withdrawal_grace;

pub use api_keys::{CACHE_LIFE as KEY_CACHE_LIFE, SERVER_LIBRARIES};
pub use audit::{AuditAnchor, AuditEntry, AuditVerification, BreakKind, ChainBreak};
pub use clock::{Clock, FixedClock, SystemClock};
pub use config::{IngestSettings, ServerSettings, Settings};
pub use consent::{ConsentHistoryEntry, ConsentView, PurposeConsent, PurposeView};
pub use consentric_policy::{ConsentSettings, PolicySet};
pub use console_stats::{ConsoleStats, PurposeRate};
pub use dsr::{DsrKind, DsrView, Regime};
pub use dsr_settings::DsrSettings;
pub use engine::Engine;
pub use erasure::{ErasedCounts, ErasureReceipt, ReceiptBody};
pub use error::EngineError;
pub use ingest::IngestReport;
pub use ingest::{IngestContext, Origin};
pub use keys::{KeyInfo, KeyKind, NewKey, Principal, Scope};
pub use lifecycle::{
    CustomerLifecycle, Distribution, Distributions, FitReport, Flow, LifecycleSettings,
    LifecycleSummary, ModelFit, RecomputeReport, Scores, Tracking, TransitionView,
};
pub use metrics::Metrics;
pub use notify::{Message, Notifier, Outbox, SmtpNotifier, SmtpSecurity, SmtpSettings};
pub use operators::{
    Area, OperatorSession, OperatorView, Role, LOCK_MINUTES, MAX_FAILED_LOGINS, MIN_PASSWORD_CHARS,
    OPERATOR_SESSION_MINUTES,
};
pub use personalize::{
    ActionView, Decision, DecisionAction, DecisionItem, ExcludedAction, Explanation,
    PersonalizeSettings, RecommenderKind, SegmentMembers, SegmentPreview, SegmentProposal,
    SegmentRefresh, SegmentView, TrainReport,
};
pub use privacy_centre::{
    CodeChallenge, CustomerOutcome, CustomerRequest, CustomerSession, HeldCategory, HeldData,
    HeldPurpose, CODES_PER_HOUR, CODE_ATTEMPTS, CODE_MINUTES, SESSION_MINUTES,
};
pub use profiles::{
    IdentityGraph, IdentityLinkView, IdentityView, LoggedDecision, ProfileCountersView, ProfileRef,
    ProfileView, StoredEventView, TraitView,
};
pub use recipients::{Disclosure, PurposeRecipients, Recipients};
pub use retention::RetentionReport;
pub use views::PurposeScopedProfile;
pub use web_origin::{PublicUrl, WebOrigin};

pub use consentric_store::{BackendKind, Store, StoreError};
