//! Consentric's storage.
//!
//! One narrow trait, [`Backend`], is all a database has to provide: run a closure in a
//! transaction (or on a read connection) and execute parameterised SQL. Everything typed —
//! events, identities, profiles, traits, keys — is written once on top of it, in [`Store`] and
//! [`WriteTx`], with one set of statements (`sql.rs`) that both SQLite and PostgreSQL run.
//! Only the schema DDL differs per backend (`migrations.rs`). This keeps the two stores from
//! drifting apart: the parity suite tests the same code paths on both.
//!
//! Times are stored as milliseconds since the Unix epoch (`i64`), JSON as text.
#![forbid(unsafe_code)]

mod access;
mod audit_tx;
mod backend;
mod bulk_tx;
mod changes;
mod cleanroom_tx;
mod cluster_tx;
mod compress;
mod decision_log_tx;
mod dp_tx;
mod dsr_tx;
mod error;
mod fence;
mod ingest_tx;
mod keys_tx;
mod lifecycle_tx;
mod migrations;
mod operators_tx;
mod personalize_tx;
mod postgres_backend;
mod privacy_tx;
mod records;
mod running;
mod sealing;
mod snapshot;
mod sql;
mod sqlite_backend;
mod store;
mod tx;
mod wal_sync;

pub use access::{AccessGrant, Opens};
pub use audit_tx::{audit_digest, audit_mac, audit_mac_matches, AUDIT_GENESIS};
pub use backend::{
    Backend, BackendKind, Cell, CellRef, ChangeFeed, ChangeToken, Conn, LeaderLock, Param,
};
pub use bulk_tx::StagePath;
pub use changes::Change;
pub use cleanroom_tx::SessionRow;
pub use cluster_tx::Leadership;
pub use decision_log_tx::DecisionLogRow;
pub use dp_tx::BudgetRow;
pub use dsr_tx::{DsrRow, NewDsr, Scrubbed};
pub use error::StoreError;
pub use fence::Fence;
pub use ingest_tx::{CounterRow, FoundIdentities, TraitRow};
pub use keys_tx::{ErasedRows, ReceiptRow};
pub use lifecycle_tx::{ModelRow, PurchaseDay, StageFacts, StageRow, TransitionRow};
pub use operators_tx::OperatorRow;
pub use personalize_tx::{ActionTaken, DecisionFacts, InteractionRow, SegmentRow};
pub use postgres_backend::PostgresBackend;
pub use privacy_tx::{email_blind, CodeRow, NewCode};
pub use records::{
    ApiKeyRecord, AuditRow, ConsentRow, EventRecord, IdentityLinkRecord, IdentityRecord,
    ProfileCounters, ProfileRecord, TraitRecord,
};
pub use snapshot::Snapshot;
pub use sqlite_backend::{SqliteBackend, SqliteOptions};
pub use store::{Store, Unflushed};
pub use tx::{NewEvent, WriteTx};
