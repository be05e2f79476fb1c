//! The quai daemon: configuration, the processing pipeline, scheduled jobs,
//! the ops HTTP listener and the CLI commands.
//!
//! [`run`] starts everything for one configuration and returns when the
//! `shutdown` token is cancelled and in-flight work has been finished or
//! safely abandoned (a flow whose processing is interrupted keeps its lease
//! and is taken again, idempotently, after the lease expires or at the next
//! start).

pub mod acks;
pub mod as2_out;
pub mod commands;
pub mod config;
pub mod http;
pub mod intake;
pub mod jobs;
pub mod mail;
pub mod metrics;
pub mod pipeline;
pub mod scheduler;
pub mod sdnotify;
pub mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use config::Config;
use quai_connectors::dropzone::{self, DropzoneConfig, Zone};
use quai_spool::Spool;

/// Shared state of a running daemon.
pub struct Daemon {
    pub config: Config,
    pub spool: Spool,
    /// Woken when a flow is registered.
    pub work: Notify,
    /// Woken when an acknowledgement is pending.
    pub acks: Notify,
}

/// A name for this process in leases and event history.
/// The same `host:pid` the drop zone claims files under.
pub fn instance_name() -> String {
    quai_connectors::dropzone::default_instance()
}

/// Create the folders of the configuration (store, drop zones, outboxes, mail).
pub fn prepare_folders(config: &Config) -> anyhow::Result<()> {
    let mut dirs = vec![
        config.home.clone(),
        config.store.clone(),
        config.outbound_root.clone(),
    ];
    if let Some(root) = &config.inbound_root {
        dirs.push(root.clone());
    }
    if let config::MailTransport::Files(dir) = &config.mail_transport {
        dirs.push(dir.clone());
    }
    for p in &config.partners {
        dirs.extend(p.inbox.iter().cloned());
        dirs.push(config.outbox_for(&p.id));
        if let Some(root) = &config.inbound_root {
            if p.inbox.is_none() && p.sftp.is_none() && p.as2.is_none() {
                dirs.push(root.join(&p.id));
            }
        }
    }
    for d in dirs {
        std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    // The spool, raw flows and mail hold partners' data: quai's user only.
    let mut private = vec![config.store.clone()];
    if let config::MailTransport::Files(dir) = &config.mail_transport {
        private.push(dir.clone());
    }
    for d in private {
        set_mode(&d, 0o700)?;
    }
    Ok(())
}

fn set_mode(path: &std::path::Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot restrict the permissions of {}", path.display()))
}

/// Open the spool of a configuration.
pub async fn open_spool(config: &Config) -> anyhow::Result<Spool> {
    if let Some(path) = config.spool_url.strip_prefix("sqlite://") {
        if let Some(parent) = std::path::Path::new(path).parent() {
            std::fs::create_dir_all(parent).ok();
        }
    }
    let spool = Spool::connect(&config.spool_url, &instance_name())
        .await
        .with_context(|| format!("cannot open the spool at {}", redact_url(&config.spool_url)))?;
    if let Some(path) = config.spool_url.strip_prefix("sqlite://") {
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{path}{suffix}"));
            if file.exists() {
                set_mode(&file, 0o600)?;
            }
        }
    }
    Ok(spool)
}

/// A URL without its password, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..s + 3], user, &url[at..])
        }
        _ => url.to_string(),
    }
}

/// Run the daemon until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    prepare_folders(&config)?;
    let removed = quai_connectors::landing::sweep_temporaries(&config.store).unwrap_or(0);
    if removed > 0 {
        warn!(removed, "removed partial landings left by an earlier crash");
    }
    let spool = open_spool(&config).await?;
    for p in &config.partners {
        spool.ensure_partner(&p.id).await?;
    }
    let daemon = Arc::new(Daemon {
        config,
        spool,
        work: Notify::new(),
        acks: Notify::new(),
    });

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
        tasks.spawn(async move { acks::deliverer(d, stop).await });
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
    let mut http_task = match &daemon.config.http_listen {
        None => None,
        Some(listen) => {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen} ([http] listen)"))?;
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
fn as2_router(daemon: &Arc<Daemon>) -> anyhow::Result<axum::Router> {
    use quai_connectors::as2;
    let Some(own) = &daemon.config.as2 else {
        return Ok(axum::Router::new());
    };
    let identity = as2::IdentityConfig {
        as2_id: own.as2_id.clone(),
        certificate: own.certificate.clone(),
        key: own.key.clone(),
    };
    let partners: Vec<as2::PartnerConfig> = daemon
        .config
        .partners
        .iter()
        .filter_map(|p| {
            p.as2.as_ref().map(|a| as2::PartnerConfig {
                partner_id: p.id.clone(),
                as2_id: a.as2_id.clone(),
                certificate: a.certificate.clone(),
                require_signed: a.require_signed,
                require_encrypted: a.require_encrypted,
                allow_async_mdn: a.allow_async_mdn.unwrap_or(true),
            })
        })
        .collect();
    let mut settings = as2::As2Settings::load(&identity, &partners, daemon.config.store.clone())
        .map_err(|errors| {
            let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            anyhow::anyhow!("AS2 configuration: {}", list.join("; "))
        })?;
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
    info!(as2_id = %own.as2_id, partners = partners.len(), "AS2 endpoint enabled at POST /as2");
    Ok(as2::router(Arc::new(receiver)))
}
