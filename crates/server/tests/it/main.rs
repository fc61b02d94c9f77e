//! The server's integration tests, one binary: the real server on an ephemeral port over real
//! HTTP, each suite on SQLite and on PostgreSQL; and the clean-room partner client over TLS.

mod app;

mod analytics;
mod auth;
mod banner_browser;
mod browser;
mod browser_keys;
mod consent;
mod console;
mod console_browser;
mod decisions;
mod edge;
mod errors;
mod hardening;
mod ingest;
mod keys;
mod lifecycle;
mod operations;
mod partner_tls;
mod privacy_centre;
mod privacy_centre_browser;
mod profiles;
mod sdk;
