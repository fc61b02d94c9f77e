//! The lifecycle crate's integration tests, one binary: the value models against published
//! CDNOW figures.

mod cdnow;
