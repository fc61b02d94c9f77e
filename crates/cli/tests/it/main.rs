//! The binary's integration tests, one test binary: `consentric` run as a user runs it.

mod support;

mod cleanroom;
mod cli;
mod crash;
mod demo;
