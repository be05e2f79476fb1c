//! Scheduled cycles (cron): reject digests, reconciliation, purge, SFTP polls.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::Daemon;

/// Run the scheduled jobs of the configuration until `stop`.
pub async fn run(daemon: Arc<Daemon>, stop: CancellationToken) {
    let _ = daemon;
    stop.cancelled().await;
}
