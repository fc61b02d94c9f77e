//! The binary's integration tests, one test binary: `consentric` run as a user runs it.

mod served;
mod support;

mod cleanroom;
mod cli;
mod cluster;
mod crash;
mod demo;
