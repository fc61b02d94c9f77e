//! The public edge: what a client may hold open, send and ask for before the API sees its
//! request. A slow or flooding client is cut off or refused here, with a JSON answer where
//! HTTP allows one, so that it cannot starve anyone else of connections, threads or memory.

mod deadline_body;
mod json_refusals;
mod limits;
mod rate;
mod serve;

pub(crate) use limits::{admit, Client, Limits};
pub(crate) use rate::client_address;
pub(crate) use serve::serve;
