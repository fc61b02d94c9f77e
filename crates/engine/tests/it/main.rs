//! The engine's integration tests, one binary: each module a suite, most of them on SQLite and
//! PostgreSQL alike (`consentric_testkit::parity_test!`).

mod support;

mod analytics;
mod cleanroom;
mod dsr;
mod leadership;
mod lifecycle;
mod noninterference;
mod operators;
mod parity;
mod personalize;
mod privacy;
mod vault;
