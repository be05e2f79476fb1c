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
use crate::{
    acks, connect, deliverer, http, intake, metrics, pipeline, reload, scheduler, sdnotify,
};
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
    let (_keep, reloads) = tokio::sync::mpsc::unbounded_channel();
    run_with_reloads(config, listener, shutdown, reloads).await
}

/// [`run`], reloading the configuration each time `reloads` receives (the
/// `quai run` binary sends one per SIGHUP; see [`crate::reload`]).
pub async fn run_with_reloads(
    config: Config,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
    mut reloads: tokio::sync::mpsc::UnboundedReceiver<()>,
) -> anyhow::Result<()> {
    let daemon = App::start(config).await?;
    let pid_file = reload::write_pid_file(&daemon.config());

    let mut tasks = tokio::task::JoinSet::new();
    // Children stop on their own token, cancelled after intake has stopped.
    let workers_stop = CancellationToken::new();

    for n in 0..daemon.config().workers {
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
        // The partner API's webhook posts (`webhooks`).
        let d = daemon.clone();
        let stop = workers_stop.clone();
        tasks.spawn(async move { crate::webhooks::run(d, stop).await });
    }
    {
        // The recipient directory follows the configuration and its file.
        let d = daemon.clone();
        let stop = workers_stop.clone();
        tasks.spawn(async move { crate::directory::watch(d, stop).await });
    }

    // The services that read the configuration once when they start
    // (scheduler, drop-zone watcher, HTTP listener with the AS2 endpoint)
    // are restarted by a reload; workers and the deliverer read
    // `daemon.config()` for each flow and delivery.
    let listener = match listener {
        None => None,
        Some(l) => Some(l.into_std().context("cannot take over the HTTP listener")?),
    };
    let extra = match &listener {
        Some(l) => {
            // Fail before READY when the token file is missing or the address
            // is public without one.
            http::preflight(&daemon.config(), l.local_addr()?)?;
            Some(as2_router(&daemon, &daemon.config())?)
        }
        None => None,
    };
    let mut services = Services::start(&daemon, listener.as_ref(), extra)?;

    let config = daemon.config();
    if let Some(root) = &config.inbound_root {
        info!(
            inbound = %root.display(),
            outbound = %config.outbound_root.display(),
            "quai is running: drop flows into {}/<partner>/, reports appear in {}/<partner>/",
            root.display(),
            config.outbound_root.display()
        );
    } else {
        info!("quai is running");
    }
    drop(config);

    sdnotify::ready();
    sdnotify::status("intake running");
    let watchdog_stop = CancellationToken::new();
    let watchdog = sdnotify::spawn_watchdog(watchdog_stop.clone());

    // Run until asked to stop, or until the HTTP listener fails (e.g. an
    // unreadable token file): then stop everything and report it.
    let mut failure: Option<anyhow::Error> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(()) = reloads.recv() => {
                reload(&daemon, &mut services, listener.as_ref()).await;
            }
            res = async {
                match services.http.as_mut() {
                    Some((_, t)) => t.await,
                    None => std::future::pending().await,
                }
            } => {
                services.http = None;
                failure = Some(match res {
                    Ok(Ok(())) => anyhow::anyhow!("the HTTP listener stopped"),
                    Ok(Err(e)) => e,
                    Err(e) => anyhow::anyhow!("the HTTP listener panicked: {e}"),
                });
                break;
            }
        }
    }
    sdnotify::stopping();
    info!("shutting down: intake stops, in-flight flows finish or are left for the next start");
    services.stop_intake().await;
    workers_stop.cancel();
    services.stop_scheduler().await;
    while let Some(res) = tasks.join_next().await {
        if let Err(e) = res {
            warn!(error = %e, "a daemon task panicked");
        }
    }
    services.stop_http().await;
    watchdog_stop.cancel();
    if let Some(w) = watchdog {
        let _ = w.await;
    }
    reload::remove_pid_file(pid_file);
    if let Some(e) = failure {
        return Err(e);
    }
    info!("stopped");
    Ok(())
}

/// A reload (SIGHUP): check the configuration again, swap it in, restart
/// the services that read it once. A refused configuration is logged and
/// the running one kept; flows under way are not touched.
async fn reload(
    daemon: &Arc<App>,
    services: &mut Services,
    listener: Option<&std::net::TcpListener>,
) {
    let _ = sdnotify::notify("RELOADING=1");
    let running = daemon.config();
    info!(config = %reload::source_name(&running), "reload asked: reading the configuration again");
    let addr = listener.and_then(|l| l.local_addr().ok());
    let prepared = match reload::prepare(daemon, addr).await {
        Ok(p) => p,
        Err(problems) => {
            reload::log_refused(&running, &problems);
            sdnotify::ready();
            return;
        }
    };
    let extra = match listener {
        Some(_) => match as2_router(daemon, &prepared.config) {
            Ok(r) => Some(r),
            Err(e) => {
                reload::log_refused(&running, &reload::problem("as2", e));
                sdnotify::ready();
                return;
            }
        },
        None => None,
    };
    reload::swap(daemon, prepared);
    services.restart_scheduler(daemon);
    services.restart_intake(daemon).await;
    if let (Some(l), Some(extra)) = (listener, extra) {
        if let Err(e) = services.restart_http(daemon, l, extra) {
            // The old server keeps serving.
            warn!(error = %format!("{e:#}"), "the HTTP listener was not restarted");
        }
    }
    sdnotify::ready();
}

type Service<T> = (CancellationToken, tokio::task::JoinHandle<T>);

/// The services a reload restarts, each with its stop token.
struct Services {
    intake: Option<Service<anyhow::Result<()>>>,
    scheduler: Service<()>,
    http: Option<Service<anyhow::Result<()>>>,
    /// Services being replaced that still finish what they started
    /// (a scheduled job under way, HTTP requests in flight).
    retiring: tokio::task::JoinSet<()>,
}

impl Services {
    /// Start the scheduler, the drop-zone watcher and (with a listener)
    /// the HTTP server on the current configuration.
    fn start(
        daemon: &Arc<App>,
        listener: Option<&std::net::TcpListener>,
        extra: Option<axum::Router>,
    ) -> anyhow::Result<Services> {
        let http = match (listener, extra) {
            (Some(l), Some(extra)) => Some(start_http(daemon, l, extra)?),
            _ => None,
        };
        Ok(Services {
            intake: start_intake(daemon),
            scheduler: start_scheduler(daemon),
            http,
            retiring: tokio::task::JoinSet::new(),
        })
    }

    /// Stop the drop-zone watcher, letting landings under way finish.
    async fn stop_intake(&mut self) {
        if let Some((stop, t)) = self.intake.take() {
            stop.cancel();
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!(error = %e, "drop-zone watcher ended with an error"),
                Err(e) => warn!(error = %e, "drop-zone watcher panicked"),
            }
        }
    }

    /// Restart the drop-zone watcher on the current configuration (the old
    /// one finishes its landings first: two watchers never race for a file).
    async fn restart_intake(&mut self, daemon: &Arc<App>) {
        self.stop_intake().await;
        self.intake = start_intake(daemon);
    }

    /// Start a new scheduler on the current configuration; the old one
    /// stops waiting for slots and finishes the job it runs, if any (the
    /// spool's job lock keeps one run per slot).
    fn restart_scheduler(&mut self, daemon: &Arc<App>) {
        let (stop, t) = std::mem::replace(&mut self.scheduler, start_scheduler(daemon));
        stop.cancel();
        self.retiring.spawn(async move {
            let _ = t.await;
        });
    }

    /// Start a new HTTP server on the same socket, then let the old one
    /// finish its requests: no connection is refused in between.
    fn restart_http(
        &mut self,
        daemon: &Arc<App>,
        listener: &std::net::TcpListener,
        extra: axum::Router,
    ) -> anyhow::Result<()> {
        let new = start_http(daemon, listener, extra)?;
        if let Some((stop, t)) = self.http.replace(new) {
            stop.cancel();
            self.retiring.spawn(async move {
                let _ = t.await;
            });
        }
        Ok(())
    }

    async fn stop_scheduler(&mut self) {
        self.scheduler.0.cancel();
        let _ = (&mut self.scheduler.1).await;
        while self.retiring.join_next().await.is_some() {}
    }

    async fn stop_http(&mut self) {
        if let Some((stop, t)) = self.http.take() {
            stop.cancel();
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!(error = %e, "the HTTP listener ended with an error"),
                Err(e) => warn!(error = %e, "the HTTP listener panicked"),
            }
        }
        while self.retiring.join_next().await.is_some() {}
    }
}

fn start_scheduler(daemon: &Arc<App>) -> Service<()> {
    let stop = CancellationToken::new();
    let d = daemon.clone();
    let s = stop.clone();
    (
        stop,
        tokio::spawn(async move { scheduler::run(d, s).await }),
    )
}

fn start_http(
    daemon: &Arc<App>,
    listener: &std::net::TcpListener,
    extra: axum::Router,
) -> anyhow::Result<Service<anyhow::Result<()>>> {
    let listener = TcpListener::from_std(
        listener
            .try_clone()
            .context("cannot share the HTTP listener")?,
    )?;
    let stop = CancellationToken::new();
    let d = daemon.clone();
    let s = stop.clone();
    Ok((
        stop,
        tokio::spawn(async move { http::serve(d, listener, extra, s).await }),
    ))
}

/// The drop-zone watcher of the current configuration, if it has zones.
fn start_intake(daemon: &Arc<App>) -> Option<Service<anyhow::Result<()>>> {
    let config = daemon.config();
    let mut zones = Vec::new();
    if let Some(root) = &config.inbound_root {
        zones.push(Zone::PartnerRoot { dir: root.clone() });
    }
    for p in &config.partners {
        if let Some(inbox) = &p.inbox {
            zones.push(Zone::Inbox {
                partner: p.id.clone(),
                dir: inbox.clone(),
            });
        }
    }
    if zones.is_empty() {
        return None;
    }
    let mut dz = DropzoneConfig::new(zones, config.store.clone());
    // Land up to the largest limit any partner has; each partner's own
    // limit is applied when its flow is processed (IRR_TAILLE_F).
    dz.max_flow_bytes = config
        .partners
        .iter()
        .map(|p| p.limits.max_flow_bytes)
        .fold(config.limits.max_flow_bytes, u64::max);
    dz.stable_for = Duration::from_secs(config.stable_seconds);
    let sink = Arc::new(intake::SpoolSink::new(daemon.clone()));
    let stop = CancellationToken::new();
    let s = stop.clone();
    Some((
        stop,
        tokio::spawn(async move {
            dropzone::run(dz, sink, s)
                .await
                .map_err(anyhow::Error::from)
        }),
    ))
}

/// The AS2 endpoint (`POST /as2`) for the configured identity and partners,
/// or an empty router when quai has no `[as2]` identity.
pub(crate) fn as2_router(daemon: &Arc<App>, config: &Config) -> anyhow::Result<axum::Router> {
    use quai_connectors::as2;
    let Some(identity) = connect::as2_identity(config) else {
        return Ok(axum::Router::new());
    };
    let partners: Vec<as2::PartnerConfig> = config
        .partners
        .iter()
        .filter_map(connect::as2_partner)
        .collect();
    let mut settings =
        as2::As2Settings::load(&identity, &partners, config.store.clone()).map_err(|errors| {
            let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            anyhow::anyhow!("AS2 configuration: {}", list.join("; "))
        })?;
    for p in &config.partners {
        let Some(a) = &p.as2 else { continue };
        if let Some(url) = a.mdn_url.as_ref().or(a.url.as_ref()) {
            settings
                .allow_mdn_url(&p.id, url)
                .map_err(|e| anyhow::anyhow!("AS2 configuration of partner {}: {e}", p.id))?;
        }
    }
    settings.max_body_bytes = config
        .partners
        .iter()
        .map(|p| p.limits.max_flow_bytes)
        .fold(config.limits.max_flow_bytes, u64::max);
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
