//! The API's types as the OpenAPI document describes them (see each module).

mod analytics;
mod cleanroom;
mod consent;
mod decisions;
mod dsr;
mod keys;
mod lifecycle;
mod profiles;
mod segments;

pub use analytics::*;
pub use cleanroom::*;
pub use consent::*;
pub use decisions::*;
pub use dsr::*;
pub use keys::*;
pub use lifecycle::*;
pub use profiles::*;
pub use segments::*;
