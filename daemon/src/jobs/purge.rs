//! Retention purge (`quai purge`, `[schedule] purge`).
//!
//! Terminal flows (`processed`, `failed`, `duplicate`) whose last change is
//! older than `[spool] retention_days` are removed by the spool in one
//! transaction — never a flow with work still hanging off it (an
//! acknowledgement not delivered, a reject not yet notified), never one that
//! is not finished. Only after that commit are the raw files that no
//! remaining flow references deleted from the store: a crash in between
//! leaves unreferenced files (harmless, removed by the next purge of a flow
//! with the same bytes or by hand), never a flow without its bytes.

use std::sync::Arc;

use chrono::{Duration, Utc};
use serde::Serialize;
use tracing::{info, warn};

use crate::app::App;

/// What one purge did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PurgeSummary {
    pub cutoff: String,
    pub flows: u64,
    pub invoices: u64,
    /// Raw files deleted from the store.
    pub raw_deleted: usize,
    /// Raw files that could not be deleted (path: error).
    pub raw_errors: Vec<String>,
    /// Flows `In` of the partner API removed, and their files deleted.
    pub inbox_flows: u64,
    pub inbox_deleted: usize,
}

impl PurgeSummary {
    pub fn detail(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Purge flows older than the configured retention.
pub async fn run(daemon: &Arc<App>) -> anyhow::Result<PurgeSummary> {
    let days = i64::from(daemon.config().retention_days);
    let cutoff = Utc::now() - Duration::days(days);
    let report = daemon.spool.purge(cutoff).await?;
    let mut summary = PurgeSummary {
        cutoff: cutoff.to_rfc3339(),
        flows: report.flows,
        invoices: report.invoices,
        ..PurgeSummary::default()
    };
    let store = daemon.config().store.clone();
    let (deleted, errors) = delete_stored(store, report.unreferenced_raw.clone()).await?;
    summary.raw_deleted = deleted;
    summary.raw_errors = errors;
    let inbox = daemon.spool.purge_inbox(cutoff).await?;
    summary.inbox_flows = inbox.flows;
    let inbox_dir = crate::outbound_api::inbox_dir(&daemon.config());
    let (deleted, errors) = delete_stored(inbox_dir, inbox.unreferenced).await?;
    summary.inbox_deleted = deleted;
    summary.raw_errors.extend(errors);
    for e in &summary.raw_errors {
        warn!(error = %e, "purged flow's raw file not deleted");
    }
    info!(
        flows = summary.flows,
        invoices = summary.invoices,
        raw_deleted = summary.raw_deleted,
        inbox_flows = summary.inbox_flows,
        cutoff = %summary.cutoff,
        "purge done"
    );
    Ok(summary)
}

/// Delete the files stored under these SHA-256 in `dir` (the flow store's
/// layout), after the spool's commit: how many went, and the errors.
async fn delete_stored(
    dir: std::path::PathBuf,
    shas: Vec<String>,
) -> anyhow::Result<(usize, Vec<String>)> {
    Ok(tokio::task::spawn_blocking(move || {
        let mut deleted = 0;
        let mut errors = Vec::new();
        for sha in shas {
            let path = quai_connectors::landing::stored_path(&dir, &sha);
            match std::fs::remove_file(&path) {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => errors.push(format!("{}: {e}", path.display())),
            }
        }
        (deleted, errors)
    })
    .await?)
}
