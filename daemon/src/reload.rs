//! Reloading the configuration of a running daemon (SIGHUP, `quai reload`).
//!
//! A reload reads the configuration file again and checks it the way a
//! start does ([`crate::preflight`]). A configuration with problems is
//! refused: every problem is logged and the running configuration is kept.
//! Otherwise the new snapshot replaces the old one in the [`App`]
//! ([`App::replace_config`]) and the services that read the configuration
//! once when they start — the scheduler, the drop-zone watcher, the HTTP
//! listener with its token and AS2 endpoint — are restarted on it. Flows
//! being processed and acknowledgements being delivered are not touched:
//! they finish on the snapshot they started with, and the next one reads
//! the new configuration.
//!
//! What cannot change without a restart ([`RESTART_ONLY`]: the spool, the
//! raw-flow store, the listen address, the number of workers) keeps its
//! running value, and the log names each such key that changed.
//!
//! `quai reload` finds the running daemon through the pid file
//! `$home/quai.pid` (the configuration's home: `$QUAI_HOME`, or the folder
//! of the configuration file), which `quai run` writes at start and removes
//! when it stops.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::{error, info, warn};

use crate::app::{prepare_folders, App};
use crate::config::{Config, ConfigProblem};
use crate::{http, preflight};

/// Configuration keys a reload does not change (the running value is kept).
pub const RESTART_ONLY: &[&str] = &[
    "spool.url",
    "spool.store",
    "http.listen",
    "processing.workers",
];

/// The pid file of the daemon running on `config`.
pub fn pid_file(config: &Config) -> PathBuf {
    config.home.join("quai.pid")
}

/// Write this process's pid file; `None` (logged) when it cannot be written.
pub fn write_pid_file(config: &Config) -> Option<PathBuf> {
    let path = pid_file(config);
    match std::fs::write(&path, format!("{}\n", std::process::id())) {
        Ok(()) => Some(path),
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cannot write the pid file: `quai reload` will not find this daemon");
            None
        }
    }
}

/// Remove the pid file written at start, if it is still ours.
pub fn remove_pid_file(path: Option<PathBuf>) {
    let Some(path) = path else { return };
    if read_pid(&path) == Some(std::process::id() as i32) {
        let _ = std::fs::remove_file(&path);
    }
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Send SIGHUP to the daemon running on `config` (`quai reload`).
/// Returns its pid.
pub fn signal_running(config: &Config) -> anyhow::Result<i32> {
    let path = pid_file(config);
    let pid = read_pid(&path).ok_or_else(|| {
        anyhow::anyhow!(
            "no running quai found: {} does not exist or holds no pid",
            path.display()
        )
    })?;
    anyhow::ensure!(pid > 0, "{} holds an invalid pid {pid}", path.display());
    // SAFETY: kill(2) with a positive pid and a valid signal number.
    let rc = unsafe { libc::kill(pid, libc::SIGHUP) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        anyhow::bail!(
            "cannot signal quai (pid {pid}, from {}): {e}",
            path.display()
        );
    }
    Ok(pid)
}

/// The values of the restart-only keys, for comparison.
fn restart_only_values(c: &Config) -> [String; 4] {
    [
        crate::text::redact_url(&c.spool_url),
        c.store.display().to_string(),
        c.http_listen.clone().unwrap_or_else(|| "off".into()),
        c.workers.to_string(),
    ]
}

/// Keep the running values of the restart-only keys in `new`; the keys
/// whose configured value differs, with (running, configured).
pub fn keep_restart_only(
    running: &Config,
    new: &mut Config,
) -> Vec<(&'static str, String, String)> {
    let before = restart_only_values(running);
    let after = restart_only_values(new);
    new.spool_url = running.spool_url.clone();
    new.store = running.store.clone();
    new.http_listen = running.http_listen.clone();
    new.workers = running.workers;
    RESTART_ONLY
        .iter()
        .zip(before.into_iter().zip(after))
        .filter(|(_, (b, a))| b != a)
        .map(|(k, (b, a))| (*k, b, a))
        .collect()
}

/// Read the configuration again, as the daemon was started (the same file,
/// or the embedded default under the same home), and check it.
pub fn load_again(running: &Config) -> Result<Config, Vec<ConfigProblem>> {
    let (new, mut problems) = match &running.source {
        Some(path) => Config::load_all(path),
        None => (Some(Config::embedded_at(&running.home)), Vec::new()),
    };
    // The start checks run on what of the file resolves, so a refusal
    // lists every problem at once, as `quai check-config` does.
    let Some(new) = new else {
        return Err(problems);
    };
    let found = preflight::findings(&new);
    problems.extend(found.fatal);
    if !problems.is_empty() {
        return Err(problems);
    }
    for p in &found.partner {
        tracing::error!(key = %p.key, "{}: this partner's SFTP polls and deliveries will fail", p.message);
    }
    Ok(new)
}

/// A checked new configuration, ready to be swapped in.
pub struct Prepared {
    pub config: Config,
    /// Restart-only keys whose configured value differs: (key, running, configured).
    pub fixed: Vec<(&'static str, String, String)>,
}

/// Read and check the new configuration as a start would, on the running
/// daemon's listener address; prepare its folders and partners. Nothing
/// of the running daemon changes.
pub async fn prepare(
    daemon: &App,
    listen_addr: Option<std::net::SocketAddr>,
) -> Result<Prepared, Vec<ConfigProblem>> {
    let running = daemon.config();
    let mut new = load_again(&running)?;
    let fixed = keep_restart_only(&running, &mut new);
    if let Some(addr) = listen_addr {
        http::preflight(&new, addr).map_err(|e| problem("http.token_file", e))?;
    }
    prepare_folders(&new).map_err(|e| problem("dropzones", e))?;
    for p in &new.partners {
        daemon
            .spool
            .ensure_partner(&p.id)
            .await
            .map_err(|e| problem("partner.id", e.into()))?;
    }
    Ok(Prepared { config: new, fixed })
}

/// One problem that is not the file's (an error of a check).
pub fn problem(key: &str, e: anyhow::Error) -> Vec<ConfigProblem> {
    vec![ConfigProblem {
        line: None,
        key: key.into(),
        message: format!("{e:#}"),
    }]
}

/// The name of the running configuration, for logs.
pub fn source_name(config: &Config) -> String {
    config
        .source
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "embedded default".into())
}

/// Log a refused configuration, every problem on its own line.
pub fn log_refused(running: &Config, problems: &[ConfigProblem]) {
    let source = source_name(running);
    for p in problems {
        error!(config = %source, line = p.line, key = %p.key, "{p}");
    }
    error!(
        config = %source,
        problems = problems.len(),
        "new configuration refused ({} problem(s)): the running configuration is kept",
        problems.len()
    );
}

/// Swap a prepared configuration in; log what changed and what did not.
/// Returns the new snapshot.
pub fn swap(daemon: &App, prepared: Prepared) -> Arc<Config> {
    let Prepared { config, fixed } = prepared;
    for (key, was, configured) in &fixed {
        warn!(
            key,
            running = %was,
            configured = %configured,
            "{key} cannot change without a restart: the running value is kept until quai restarts"
        );
    }
    let before = daemon.config();
    let new = daemon.replace_config(config);
    let added: Vec<&str> = new
        .partners
        .iter()
        .map(|p| p.id.as_str())
        .filter(|id| before.partner(id).is_none())
        .collect();
    let removed: Vec<&str> = before
        .partners
        .iter()
        .map(|p| p.id.as_str())
        .filter(|id| new.partner(id).is_none())
        .collect();
    info!(
        config = %source_name(&new),
        partners = new.partners.len(),
        added = %added.join(","),
        removed = %removed.join(","),
        "configuration reloaded: {} partner(s)",
        new.partners.len()
    );
    new
}
