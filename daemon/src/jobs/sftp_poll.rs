//! SFTP polling of partners' servers, and the [`SftpSource`] of a partner.
//!
//! Each partner with a `[partner.sftp]` table is a scheduled job of its own
//! (`sftp-poll:<partner>`, see [`crate::scheduler`]): one task per partner,
//! so a server that hangs or refuses us only delays that partner. Downloads
//! of all partners share one semaphore ([`transfer_slots`]). A failed poll is
//! logged with its error kind (`host_key`, `auth`, `connect`, `io`...) and
//! the partner backs off: it retries at its next slot, then after 1, 2, 4...
//! minutes (at most 30); the first success resets it. Files are handed to the daemon's
//! [`crate::intake::SpoolSink`]: a remote file is deleted (or moved) only
//! after its registration is committed.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use quai_connectors::sftp::{AfterPickup, PollState, SftpSource};
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::app::App;
use crate::config::{Config, Partner};
use crate::scheduler::RunOutcome;

/// Concurrent SFTP downloads across all partners.
pub const TRANSFER_SLOTS: usize = 4;

/// Longest pause after repeated failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30 * 60);

/// The semaphore shared by every partner's polls.
pub fn transfer_slots() -> Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SLOTS
        .get_or_init(|| Arc::new(Semaphore::new(TRANSFER_SLOTS)))
        .clone()
}

/// The known_hosts file used when a partner does not name one.
pub fn default_known_hosts(config: &Config) -> std::path::PathBuf {
    config.home.join("known_hosts")
}

/// The SFTP source of a partner (polling and outbox delivery).
pub fn source_for(config: &Config, partner: &Partner) -> anyhow::Result<SftpSource> {
    let s = partner
        .sftp
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("partner {} has no [partner.sftp]", partner.id))?;
    let base = config
        .source
        .as_deref()
        .and_then(|p| p.parent())
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| config.home.clone());
    let abs = |p: &std::path::Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let known_hosts = s
        .known_hosts
        .as_deref()
        .map(abs)
        .unwrap_or_else(|| default_known_hosts(config));
    let mut src =
        SftpSource::from_url(&partner.id, &s.url, s.key.as_deref().map(abs), known_hosts)?;
    src.password_file = s.password_file.as_deref().map(abs);
    src.trust_on_first_use = s.trust_on_first_use;
    src.outbox = s.outbox.clone();
    src.after_pickup = match s.after_pickup.as_deref() {
        Some(a) => a.parse()?,
        None => AfterPickup::Delete,
    };
    if let Some(age) = s.min_age_seconds {
        src.min_age = Duration::from_secs(age);
    }
    src.max_file_size = Some(partner.limits.max_flow_bytes);
    src.transfer_slots = Some(transfer_slots());
    Ok(src)
}

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
        let Some(partner) = daemon.config.partner(partner_id) else {
            return RunOutcome::Failed(format!("partner {partner_id} is not configured"));
        };
        let src = match source_for(&daemon.config, partner) {
            Ok(s) => s,
            Err(e) => return self.failed(partner_id, "config", &format!("{e:#}")),
        };
        let sink = crate::intake::SpoolSink::new(daemon.clone());
        match src
            .poll_once(&sink, &daemon.config.store, &mut self.state)
            .await
        {
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
            Err(e) => self.failed(partner_id, e.kind(), &e.to_string()),
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
