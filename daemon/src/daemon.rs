//! The running daemon: [`run`] starts, for one [`App`], the processing
//! workers, the acknowledgement deliverer, the scheduler, the drop-zone
//! watcher and the ops HTTP listener (with the AS2 endpoint), and stops them
//! in order when `shutdown` is cancelled.
//!
//! The HTTP listener is bound by the caller (`main`, or a test on
//! `127.0.0.1:0`) and handed in, as mini-redis's `server::run` does: the
//! address is known before anything starts, and tests never race for a
//! free port.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::app::App;
use crate::config::Config;
use crate::{acks, connect, deliverer, http, intake, metrics, pipeline, scheduler, sdnotify};
use quai_connectors::dropzone::{self, DropzoneConfig, Zone};

/// Bind the listener of `[http] listen`, if one is configured.
pub async fn bind(config: &Config) -> anyhow::Result<Option<TcpListener>> {
    match &config.http_listen {
        None => Ok(None),
        Some(listen) => TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen} ([http] listen)"))
            .map(Some),
    }
}

/// Run the daemon until `shutdown` is cancelled. `listener` is the ops
/// HTTP listener (see [`bind`]); `None` serves no HTTP.
pub async fn run(
    config: Config,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let daemon = App::start(config).await?;

    let mut tasks = tokio::task::JoinSet::new();
    // Children stop on their own token, cancelled after intake has stopped.
    let workers_stop = CancellationToken::new();

    for n in 0..daemon.config.workers {
        let d = daemon.clone();
        let stop = workers_stop.clone();
        tasks.spawn(async move { pipeline::worker(d, n, stop).await });
    }
    {
        let d = daemon.clone();
        let stop = workers_stop.clone();
        tasks.spawn(async move { deliverer::deliverer(d, stop).await });
    }
    {
        let d = daemon.clone();
        let stop = workers_stop.clone();
        tasks.spawn(async move { scheduler::run(d, stop).await });
    }

    let mut zones = Vec::new();
    if let Some(root) = &daemon.config.inbound_root {
        zones.push(Zone::PartnerRoot { dir: root.clone() });
    }
    for p in &daemon.config.partners {
        if let Some(inbox) = &p.inbox {
            zones.push(Zone::Inbox {
                partner: p.id.clone(),
                dir: inbox.clone(),
            });
        }
    }
    // The ops HTTP listener, with the AS2 endpoint when quai has an AS2 identity.
    let http_stop = CancellationToken::new();
    let mut http_task = match listener {
        None => None,
        Some(listener) => {
            // Fail before READY when the token file is missing or the address
            // is public without one.
            http::preflight(&daemon.config, listener.local_addr()?)?;
            let extra = as2_router(&daemon)?;
            let d = daemon.clone();
            let stop = http_stop.clone();
            Some(tokio::spawn(async move {
                http::serve(d, listener, extra, stop).await
            }))
        }
    };

    let intake_stop = CancellationToken::new();
    let intake_task = if zones.is_empty() {
        None
    } else {
        let mut dz = DropzoneConfig::new(zones, daemon.config.store.clone());
        // Land up to the largest limit any partner has; each partner's own
        // limit is applied when its flow is processed (IRR_TAILLE_F).
        dz.max_flow_bytes = daemon
            .config
            .partners
            .iter()
            .map(|p| p.limits.max_flow_bytes)
            .fold(daemon.config.limits.max_flow_bytes, u64::max);
        dz.stable_for = Duration::from_secs(daemon.config.stable_seconds);
        let sink = Arc::new(intake::SpoolSink::new(daemon.clone()));
        let stop = intake_stop.clone();
        Some(tokio::spawn(
            async move { dropzone::run(dz, sink, stop).await },
        ))
    };

    if let Some(root) = &daemon.config.inbound_root {
        info!(
            inbound = %root.display(),
            outbound = %daemon.config.outbound_root.display(),
            "quai is running: drop flows into {}/<partner>/, reports appear in {}/<partner>/",
            root.display(),
            daemon.config.outbound_root.display()
        );
    } else {
        info!("quai is running");
    }

    sdnotify::ready();
    sdnotify::status("intake running");
    let watchdog_stop = CancellationToken::new();
    let watchdog = sdnotify::spawn_watchdog(watchdog_stop.clone());

    // Run until asked to stop, or until the HTTP listener fails (e.g. an
    // unreadable token file): then stop everything and report it.
    let mut failure: Option<anyhow::Error> = None;
    tokio::select! {
        _ = shutdown.cancelled() => {}
        res = async {
            match http_task.as_mut() {
                Some(t) => t.await,
                None => std::future::pending().await,
            }
        } => {
            http_task = None;
            failure = Some(match res {
                Ok(Ok(())) => anyhow::anyhow!("the HTTP listener stopped"),
                Ok(Err(e)) => e,
                Err(e) => anyhow::anyhow!("the HTTP listener panicked: {e}"),
            });
        }
    }
    sdnotify::stopping();
    info!("shutting down: intake stops, in-flight flows finish or are left for the next start");
    intake_stop.cancel();
    if let Some(t) = intake_task {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "drop-zone watcher ended with an error"),
            Err(e) => warn!(error = %e, "drop-zone watcher panicked"),
        }
    }
    workers_stop.cancel();
    while let Some(res) = tasks.join_next().await {
        if let Err(e) = res {
            warn!(error = %e, "a daemon task panicked");
        }
    }
    http_stop.cancel();
    if let Some(t) = http_task {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "the HTTP listener ended with an error"),
            Err(e) => warn!(error = %e, "the HTTP listener panicked"),
        }
    }
    watchdog_stop.cancel();
    if let Some(w) = watchdog {
        let _ = w.await;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    info!("stopped");
    Ok(())
}

/// The AS2 endpoint (`POST /as2`) for the configured identity and partners,
/// or an empty router when quai has no `[as2]` identity.
fn as2_router(daemon: &Arc<App>) -> anyhow::Result<axum::Router> {
    use quai_connectors::as2;
    let Some(identity) = connect::as2_identity(&daemon.config) else {
        return Ok(axum::Router::new());
    };
    let partners: Vec<as2::PartnerConfig> = daemon
        .config
        .partners
        .iter()
        .filter_map(connect::as2_partner)
        .collect();
    let mut settings = as2::As2Settings::load(&identity, &partners, daemon.config.store.clone())
        .map_err(|errors| {
            let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            anyhow::anyhow!("AS2 configuration: {}", list.join("; "))
        })?;
    for p in &daemon.config.partners {
        let Some(a) = &p.as2 else { continue };
        if let Some(url) = a.mdn_url.as_ref().or(a.url.as_ref()) {
            settings
                .allow_mdn_url(&p.id, url)
                .map_err(|e| anyhow::anyhow!("AS2 configuration of partner {}: {e}", p.id))?;
        }
    }
    settings.max_body_bytes = daemon
        .config
        .partners
        .iter()
        .map(|p| p.limits.max_flow_bytes)
        .fold(daemon.config.limits.max_flow_bytes, u64::max);
    settings.observer = Some(as2::OutcomeObserver(Arc::new(|o: &as2::As2Outcome| {
        metrics::as2_message(o.label())
    })));
    // Asynchronous MDNs are tracked in the spool and delivered (with
    // retries) by the acknowledgement deliverer.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<as2::PendingMdn>();
    settings.async_delivery = as2::AsyncMdnDelivery::Outbox(tx);
    {
        let d = daemon.clone();
        tokio::spawn(async move {
            while let Some(pending) = rx.recv().await {
                let id = pending.original_message_id.clone();
                if let Err(e) = acks::queue_async_mdn(&d, pending).await {
                    warn!(message_id = %id, error = %e, "asynchronous MDN not queued");
                }
            }
        });
    }
    let sink = Arc::new(intake::SpoolSink::new(daemon.clone()));
    let receiver = as2::As2Receiver::new(settings, sink)?;
    info!(as2_id = %identity.as2_id, partners = partners.len(), "AS2 endpoint enabled at POST /as2");
    Ok(as2::router(Arc::new(receiver)))
}
