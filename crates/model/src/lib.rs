//! Consentric's pure types.
//!
//! Everything that enters Consentric is turned into one of these types at the edge and never
//! travels as loose JSON again: a [`Event`] can only be built by [`parse_event`], which checks
//! every field the Segment Spec defines and names the field when it refuses. Downstream rooms
//! can then rely on the invariants the types carry (a track has an event name, every event has
//! an identity and a message id, timestamps are already corrected for clock skew) instead of
//! re-checking them.
//!
//! This crate does no I/O and depends on no other room.
#![forbid(unsafe_code)]

mod email;
mod error;
mod event;
mod ids;
pub mod import_lines;
mod parse;
mod stage;

pub use email::Email;
pub use error::{ErrorCode, ParseError};
pub use event::{Call, CallType, Context, Event};
pub use ids::{AnonymousId, Identity, IdentityKind, MessageId, ProfileId, UserId};
pub use parse::{
    earliest_time, latest_time, parse_batch, parse_event, parse_typed_event, Batch, Envelope,
    DEFAULT_FUTURE_TOLERANCE, MAX_BATCH_BYTES, MAX_EVENT_BYTES,
};
pub use stage::{Stage, UnknownStage};
