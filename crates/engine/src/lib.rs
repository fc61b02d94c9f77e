//! Consentric's application services.
//!
//! The engine is where a request becomes work: it is the only room that composes the store
//! with the pure rooms, and `server` and `cli` only translate their inputs into calls on
//! [`Engine`]. Its methods are synchronous and do blocking I/O; async callers run them on a
//! blocking thread. Time comes from an injectable [`Clock`], so tests control it.
#![forbid(unsafe_code)]

mod clock;
pub mod config;
mod engine;
mod error;
mod group_commit;
pub mod import;
mod ingest;
mod keys;
mod metrics;
mod profiles;

pub use clock::{Clock, FixedClock, SystemClock};
pub use config::Settings;
pub use engine::Engine;
pub use error::EngineError;
pub use ingest::IngestReport;
pub use keys::{KeyInfo, NewKey, Scope};
pub use metrics::Metrics;
pub use profiles::{
    IdentityGraph, IdentityLinkView, IdentityView, ProfileCountersView, ProfileRef, ProfileView,
    StoredEventView, TraitView,
};

pub use consentric_store::{BackendKind, Store, StoreError};
