//! One file per area of the API.

pub(crate) mod analytics;
pub(crate) mod banner;
pub(crate) mod cleanroom;
pub(crate) mod consent;
pub(crate) mod console;
pub(crate) mod decisions;
pub(crate) mod dsr;
pub(crate) mod ingest;
pub(crate) mod keys;
pub(crate) mod lifecycle;
pub(crate) mod ops;
pub(crate) mod privacy;
pub(crate) mod profiles;
pub(crate) mod sdk;
