//! The daemon's own test helpers, one module per kind of test (each test
//! file takes what it needs with `mod support; use support::...;`). The
//! real servers (sshd, PostgreSQL, SMTP, the AS2 peer) are not here: they
//! live in the `quai-test-support` crate, shared by every crate's tests.
//!
//! - [`common`]: a daemon running in-process on a temporary QUAI_HOME,
//!   fixtures and archive builders;
//! - [`http`]: flows ingested through the daemon's own pipeline, `serve`
//!   on 127.0.0.1:0 and a minimal HTTP client;
//! - [`hostile`]: hostile archives written byte by byte, bombs, memory
//!   figures;
//! - [`seed`]: a `Daemon` without its tasks and flows written straight into
//!   its spool (the scheduled-cycle tests).

pub mod common;
pub mod hostile;
pub mod http;
pub mod seed;
