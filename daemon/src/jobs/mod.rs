//! The scheduled jobs the [`crate::scheduler`] runs (each also callable from
//! the CLI or a test): reject digests, reconciliation, purge, SFTP polls.

pub mod digest;
pub mod purge;
pub mod reconcile;
pub mod sftp_poll;

use std::sync::Arc;

use crate::config::Config;
use crate::Daemon;

/// A daemon value for one CLI command (spool open, no tasks started).
pub async fn daemon_for_cli(config: &Config) -> anyhow::Result<Arc<Daemon>> {
    crate::prepare_folders(config)?;
    let spool = crate::open_spool(config).await?;
    Ok(Arc::new(Daemon {
        config: config.clone(),
        spool,
        work: tokio::sync::Notify::new(),
        acks: tokio::sync::Notify::new(),
    }))
}

/// `quai reconcile [--from D --to D] [--json]`: 0 when everything adds up,
/// 1 otherwise.
pub async fn reconcile_cli(
    config: &Config,
    from: Option<String>,
    to: Option<String>,
    json: bool,
) -> anyhow::Result<i32> {
    let tz = config.timezone;
    let to = match to {
        Some(t) => reconcile::parse_bound(&t, tz, true)?,
        None => chrono::Utc::now(),
    };
    let from = match from {
        Some(f) => reconcile::parse_bound(&f, tz, false)?,
        None => to - chrono::Duration::hours(24),
    };
    anyhow::ensure!(from < to, "--from must be before --to");
    let daemon = daemon_for_cli(config).await?;
    let mut report =
        reconcile::reconcile(&daemon, from, to, reconcile::Thresholds::default()).await?;
    reconcile::publish(&daemon, &mut report).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", reconcile::text(&report));
        for f in &report.files {
            println!("report: {f}");
        }
    }
    Ok(if report.balanced { 0 } else { 1 })
}

/// `quai purge [--json]`.
pub async fn purge_cli(config: &Config, json: bool) -> anyhow::Result<i32> {
    let daemon = daemon_for_cli(config).await?;
    let s = purge::run(&daemon).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!(
            "purged {} flow(s) and {} invoice(s) last changed before {}; {} raw file(s) deleted",
            s.flows, s.invoices, s.cutoff, s.raw_deleted
        );
        for e in &s.raw_errors {
            println!("not deleted: {e}");
        }
    }
    Ok(if s.raw_errors.is_empty() { 0 } else { 1 })
}

/// `quai resend-ack ID`: put an acknowledgement back to pending and deliver
/// it now.
pub async fn resend_ack_cli(config: &Config, id: i64, json: bool) -> anyhow::Result<i32> {
    let daemon = daemon_for_cli(config).await?;
    daemon.spool.requeue_ack(id).await?;
    let delivered = crate::acks::deliver_pending(&daemon).await;
    let still = daemon
        .spool
        .pending_acks(100_000)
        .await?
        .into_iter()
        .find(|a| a.id == id);
    if json {
        let v = match &still {
            None => serde_json::json!({"ack": id, "delivered": true}),
            Some(a) => serde_json::json!({"ack": id, "delivered": false, "error": a.last_error}),
        };
        println!("{v}");
        return Ok(if still.is_none() { 0 } else { 1 });
    }
    match still {
        None => {
            println!("acknowledgement {id} delivered ({delivered} delivered in this pass)");
            Ok(0)
        }
        Some(a) => {
            println!(
                "acknowledgement {id} requeued but not delivered: {}",
                a.last_error.unwrap_or_default()
            );
            Ok(1)
        }
    }
}
