//! SFTP polling of partners' servers (the partner's `SftpSource` is built
//! by [`crate::connect::sftp_source`]).
//!
//! Each partner with a `[partner.sftp]` table is a scheduled job of its own
//! (`sftp-poll:<partner>`, see [`crate::scheduler`]): one task per partner,
//! so a server that hangs or refuses us only delays that partner. Downloads
//! of all partners share one semaphore ([`crate::connect::transfer_slots`]). A failed poll is
//! logged with its error kind (`host_key`, `auth`, `connect`, `io`...) and
//! the partner backs off: it retries at its next slot, then after 1, 2, 4...
//! minutes (at most 30); the first success resets it. Files are handed to the daemon's
//! [`crate::intake::SpoolSink`]: a remote file is deleted (or moved) only
//! after its registration is committed.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use quai_connectors::sftp::PollState;
use tracing::{info, warn};

use super::RunOutcome;
use crate::app::App;

/// Longest pause after repeated failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30 * 60);

/// What one partner's poll task remembers between slots.
#[derive(Debug, Default)]
pub struct PartnerPoller {
    state: PollState,
    failures: u32,
    retry_at: Option<DateTime<Utc>>,
}

impl PartnerPoller {
    /// True while backing off after failures.
    pub fn backing_off(&self, now: DateTime<Utc>) -> bool {
        self.retry_at.is_some_and(|t| now < t)
    }

    /// One poll of a partner's server.
    pub async fn poll(&mut self, daemon: &Arc<App>, partner_id: &str) -> RunOutcome {
        let config = daemon.config();
        let Some(partner) = config.partner(partner_id) else {
            return RunOutcome::Failed(format!("partner {partner_id} is not configured"));
        };
        let src = match crate::connect::sftp_source(&config, partner) {
            Ok(s) => s,
            Err(e) => return self.failed(partner_id, "config", &format!("{e:#}")),
        };
        let sink = crate::intake::SpoolSink::new(daemon.clone());
        match src.poll_once(&sink, &config.store, &mut self.state).await {
            Ok(report) => {
                self.failures = 0;
                self.retry_at = None;
                for f in &report.failed {
                    warn!(partner = %partner_id, file = %f.name, error = %f.error, "SFTP file left on the server");
                }
                for p in &report.picked_up {
                    if let Err(e) = &p.after_pickup {
                        warn!(partner = %partner_id, file = %p.name, error = %e, "SFTP file taken in but not removed from the server; retried next poll");
                    }
                }
                if !report.picked_up.is_empty() {
                    info!(partner = %partner_id, taken = report.picked_up.len(), listed = report.listed, "SFTP poll");
                }
                RunOutcome::Ok(format!(
                    "listed {}, taken {}, skipped {}, failed {}",
                    report.listed,
                    report.picked_up.len(),
                    report.skipped.len(),
                    report.failed.len()
                ))
            }
            Err(e) => {
                if let Some(kind) = session_failure(e.kind()) {
                    crate::metrics::sftp_failed(kind);
                }
                self.failed(partner_id, e.kind(), &e.to_string())
            }
        }
    }

    fn failed(&mut self, partner: &str, kind: &str, error: &str) -> RunOutcome {
        self.failures = self.failures.saturating_add(1);
        let pause = backoff(self.failures);
        self.retry_at = Some(Utc::now() + chrono::Duration::from_std(pause).unwrap_or_default());
        if kind == "host_key" {
            warn!(partner = %partner, kind, error = %error, retry_in_s = pause.as_secs(), "SFTP server's host key REFUSED: check known_hosts (no transfer until fixed)");
        } else {
            warn!(partner = %partner, kind, error = %error, retry_in_s = pause.as_secs(), "SFTP poll failed");
        }
        RunOutcome::Failed(format!("{kind}: {error}"))
    }
}

/// The `quai_sftp_connection_failures_total` label of a failed poll, when
/// the failure was the SFTP session's (not quai's configuration or disk).
pub fn session_failure(kind: &str) -> Option<&'static str> {
    match kind {
        "connect" => Some("connect"),
        "host_key" => Some("hostkey"),
        "auth" => Some("auth"),
        "io" => Some("transfer"),
        _ => None,
    }
}

/// Pause after `failures` consecutive failures: 1, 2, 4... minutes, at most 30.
pub fn backoff(failures: u32) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let mins = 1u64 << (failures - 2).min(5);
    Duration::from_secs(mins * 60).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(3), Duration::from_secs(120));
        assert_eq!(backoff(6), Duration::from_secs(960));
        assert_eq!(backoff(7), MAX_BACKOFF);
        assert_eq!(backoff(50), MAX_BACKOFF);
    }
}
