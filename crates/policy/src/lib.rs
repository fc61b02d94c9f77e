//! Consentric's privacy rules, as pure logic.
//!
//! Personal data is described by [`DataCategory`]s (a fideslang-style hierarchy); every field of
//! an event maps to one through the [`FieldSchema`]. [`Purpose`]s say which categories a use of
//! data may touch and on which [`LegalBasis`]. A customer's consent is an append-only ledger of
//! [`ConsentRecord`]s; its fold, [`ConsentState`], says which purposes have a basis at a moment.
//! The [`gate`] turns (purpose, consent state, time) into a [`Grant`] — or a typed refusal — and a
//! grant is the only thing that unlocks personal data: its fields are private and it has no
//! public constructor, so no code outside this crate can forge one.
//!
//! This crate does no I/O; the engine feeds it what the store holds.
#![forbid(unsafe_code)]

mod browser;
mod consent;
mod error;
pub mod gate;
mod minimise;
mod policy_set;
mod purpose;
mod schema;
mod taxonomy;
pub mod tcf;

pub use browser::BrowserLimits;
pub use consent::{Assurance, ConsentRecord, ConsentSource, ConsentState, Decision, ESSENTIAL};
pub use error::PolicyError;
pub use gate::{Grant, Refusal};
pub use minimise::{truncate_ip, Minimised, Minimiser, Narrower};
pub use policy_set::{
    minimise_objects, Baseline, ConsentSettings, Minimal, PolicySet, Prepared, Signal,
};
pub use purpose::{LegalBasis, Purpose, PurposeId, PurposeRegistry, ACCESS, RESTRICTION};
pub use schema::{FieldRule, FieldSchema, Transform};
pub use taxonomy::{CategorySet, DataCategory, DEFAULT_TAXONOMY};
