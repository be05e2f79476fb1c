//! The composition root: one [`App`] value (configuration, spool, wake-ups)
//! built here and nowhere else, and handed to `quai run`, every CLI command
//! and every job.
//!
//! Building an `App` prepares the configuration's folders (store, drop
//! zones, outboxes, mail) and opens the spool, so every entry point starts
//! from the same state — `quai replay` included. Read-only commands
//! (`status`, `flows`, `flow`) use [`App::inspect`], which opens the spool
//! and creates nothing. The running daemon ([`crate::daemon::run`]) builds
//! its `App` with [`App::start`] and then starts the tasks that use it.
//!
//! `App` sits below the stages that use it (intake, pipeline, deliverer,
//! jobs), so they take `&App` without importing anything above them: this
//! module depends only on leaves (`config`, `preflight`, `text`) and the
//! library crates.

use std::sync::{Arc, RwLock};

use anyhow::Context;
use tokio::sync::Notify;
use tracing::warn;

use crate::config::{self, Config};
use quai_spool::Spool;

/// Shared state of quai: what every stage, job and command works on.
///
/// The configuration is a snapshot that a reload (SIGHUP) replaces as a
/// whole: read it with [`App::config`] each time it is needed, and keep the
/// `Arc` only for the duration of one unit of work (a flow, a delivery, a
/// job run), so that work sees one consistent configuration and the next
/// unit sees the new one.
pub struct App {
    config: RwLock<Arc<Config>>,
    pub spool: Spool,
    /// Woken when a flow is registered.
    pub work: Notify,
    /// Woken when an acknowledgement is pending.
    pub acks: Notify,
}

impl App {
    /// An `App` over an already opened spool (tests, embedding).
    pub fn with_spool(config: Config, spool: Spool) -> Arc<App> {
        Arc::new(App {
            config: RwLock::new(Arc::new(config)),
            spool,
            work: Notify::new(),
            acks: Notify::new(),
        })
    }

    /// The current configuration snapshot.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replace the configuration snapshot (a reload): work already under
    /// way keeps the snapshot it holds, the next reader gets `config`.
    pub fn replace_config(&self, config: Config) -> Arc<Config> {
        let new = Arc::new(config);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = new.clone();
        new
    }

    /// Prepare the folders and open the spool: the `App` of a command that
    /// takes flows in, processes, delivers or runs a job.
    pub async fn open(config: Config) -> anyhow::Result<Arc<App>> {
        prepare_folders(&config)?;
        let spool = open_spool(&config).await?;
        Ok(App::with_spool(config, spool))
    }

    /// Open the spool only, creating no folder: read-only views.
    pub async fn inspect(config: Config) -> anyhow::Result<Arc<App>> {
        let spool = open_spool(&config).await?;
        Ok(App::with_spool(config, spool))
    }

    /// [`App::inspect`] for the read-only commands: where quai never ran
    /// (no SQLite spool file), an error that says so, not an empty spool
    /// created on the spot.
    pub async fn inspect_existing(config: Config) -> anyhow::Result<Arc<App>> {
        require_spool(&config)?;
        App::inspect(config).await
    }

    /// [`App::open`] for commands that work on what is already spooled
    /// (`replay`, `reconcile`, `purge`): an error where quai never ran.
    pub async fn open_existing(config: Config) -> anyhow::Result<Arc<App>> {
        require_spool(&config)?;
        App::open(config).await
    }

    /// The `App` of a running daemon: [`App::open`], after removing partial
    /// landings an earlier crash left, with every configured partner known
    /// to the spool.
    pub async fn start(config: Config) -> anyhow::Result<Arc<App>> {
        let found = crate::preflight::findings(&config);
        if !found.fatal.is_empty() {
            return Err(anyhow::anyhow!(crate::config::ConfigErrors(found.fatal)));
        }
        for p in &found.partner {
            tracing::error!(key = %p.key, "{}: this partner's SFTP polls and deliveries will fail", p.message);
        }
        prepare_folders(&config)?;
        let removed = quai_connectors::landing::sweep_temporaries(&config.store).unwrap_or(0);
        if removed > 0 {
            warn!(removed, "removed partial landings left by an earlier crash");
        }
        let spool = open_spool(&config).await?;
        for p in &config.partners {
            spool.ensure_partner(&p.id).await?;
        }
        Ok(App::with_spool(config, spool))
    }
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
        // An inbox is created only when the configuration says so: a
        // misspelled path is an error (`crate::preflight`), not a new folder.
        if p.create_inbox {
            dirs.extend(p.inbox.iter().cloned());
        }
        if let Some(root) = &config.inbound_root {
            if p.inbox.is_none() && p.sftp.is_none() && p.as2.is_none() {
                dirs.push(root.join(&p.id));
            }
        }
    }
    for d in dirs {
        std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    // A partner's outbox that cannot be made (a file in its place, a
    // permission) is that partner's delivery problem, not quai's: its
    // deliveries fail naming the path and show as undelivered (`quai
    // status`, the status page, `quai reconcile`) until it is repaired.
    for p in &config.partners {
        let outbox = config.outbox_for(&p.id);
        if let Err(e) = std::fs::create_dir_all(&outbox) {
            warn!(partner = %p.id, outbox = %outbox.display(), error = %e,
                "cannot create the partner's outbox; its deliveries wait until it is repaired");
        }
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

/// The SQLite spool file must exist (PostgreSQL spools always do).
fn require_spool(config: &Config) -> anyhow::Result<()> {
    if let Some(path) = config.spool_url.strip_prefix("sqlite://") {
        if !std::path::Path::new(path).exists() {
            anyhow::bail!(
                "no spool at {path}: quai has not run with this configuration ({}); \
                 set QUAI_HOME or --config to where it runs",
                match &config.source {
                    Some(p) => format!("--config {}", p.display()),
                    None => format!("QUAI_HOME={}", config.home.display()),
                }
            );
        }
    }
    Ok(())
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
        .with_context(|| {
            format!(
                "cannot open the spool at {}",
                crate::text::redact_url(&config.spool_url)
            )
        })?;
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
