//! The scheduled jobs the [`crate::scheduler`] runs (each also callable from
//! the CLI or a test): reject digests, reconciliation, purge, SFTP polls.

pub mod digest;
pub mod purge;
pub mod reconcile;
pub mod sftp_poll;

/// What one run of a job reported.
#[derive(Debug)]
pub enum RunOutcome {
    /// Ran, with a detail for `job_runs`.
    Ok(String),
    /// Ran and failed.
    Failed(String),
}
