//! Test support: backends to run the suite against.
pub mod pg;
