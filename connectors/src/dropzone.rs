//! Local drop zones, watched with notify.
//!
//! A drop zone is a folder a partner (or our own sshd's `internal-sftp`)
//! writes into. Two shapes exist: a *partner root* (the embedded default's
//! `inbound/`), where each sub-folder is a partner and a new sub-folder is a
//! new partner, and a *partner inbox* (`[partner.dropzone] inbox`), owned by
//! one partner.
//!
//! Partial uploads are never taken: names starting with `.` or ending in
//! `.part`, `.tmp`, `.filepart` are ignored until renamed; a plain file is
//! taken when its writer closes it (inotify close-write), when it is renamed
//! into place, or once its size and mtime have been stable for
//! `stable_for`. Files that arrived while quai was down are found by a scan at
//! start, and the whole tree is rescanned when the event queue overflows and
//! every `rescan_every` as a safety net.
//!
//! A file is removed from the drop zone only after the [`FlowSink`] has
//! durably committed it; if landing or the commit fails it stays and is tried
//! again on a later scan.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::landing;
use crate::{Accepted, Channel, FlowSink, LandedFlow};

/// One watched folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Zone {
    /// Each sub-folder of `dir` is a partner's inbox, named after the partner.
    PartnerRoot { dir: PathBuf },
    /// `dir` is the inbox of one partner.
    Inbox { partner: String, dir: PathBuf },
}

impl Zone {
    fn dir(&self) -> &Path {
        match self {
            Zone::PartnerRoot { dir } | Zone::Inbox { dir, .. } => dir,
        }
    }

    /// The partner a file at `path` belongs to, if the path is a candidate
    /// flow of this zone (a file directly inside a partner inbox).
    fn partner_of(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(self.dir()).ok()?;
        let parts: Vec<_> = rel.components().collect();
        match self {
            Zone::PartnerRoot { .. } if parts.len() == 2 => {
                Some(parts[0].as_os_str().to_string_lossy().into_owned())
            }
            Zone::Inbox { partner, .. } if parts.len() == 1 => Some(partner.clone()),
            _ => None,
        }
    }
}

/// Drop-zone settings.
#[derive(Debug, Clone)]
pub struct DropzoneConfig {
    pub zones: Vec<Zone>,
    /// Where landed flows are stored (content-addressed).
    pub store: PathBuf,
    /// Largest flow accepted, in bytes.
    pub max_flow_bytes: u64,
    /// A file with no close-write event is taken once unchanged this long.
    pub stable_for: Duration,
    /// Full rescan interval (safety net for missed events).
    pub rescan_every: Duration,
    /// Files landed concurrently.
    pub concurrency: usize,
    /// Name under which this process claims files (`host:pid`); instances
    /// sharing a drop zone must have different names.
    pub instance: String,
    /// A file claimed by another instance is given back after this long
    /// (sooner when that instance ran on this host and is gone).
    pub claim_timeout: Duration,
}

impl DropzoneConfig {
    pub fn new(zones: Vec<Zone>, store: PathBuf) -> Self {
        DropzoneConfig {
            zones,
            store,
            max_flow_bytes: 1 << 30,
            stable_for: Duration::from_secs(2),
            rescan_every: Duration::from_secs(30),
            concurrency: 4,
            instance: default_instance(),
            claim_timeout: Duration::from_secs(600),
        }
    }
}

pub use crate::landing::is_partial_name;

/// What the watcher thinks of a file it saw.
#[derive(Debug, Clone, Copy)]
struct Seen {
    size: u64,
    mtime: Option<SystemTime>,
    since: Instant,
}

enum Signal {
    /// A file is complete (close-write or renamed into place).
    Ready(PathBuf),
    /// A file changed; take it once stable.
    Changed(PathBuf),
    /// The event queue overflowed or a folder appeared: scan everything.
    Rescan,
}

/// Watch the zones until `shutdown`, handing complete files to `sink`.
/// Returns an error only when the watcher cannot be set up at all.
pub async fn run<S: FlowSink>(
    config: DropzoneConfig,
    sink: Arc<S>,
    shutdown: CancellationToken,
) -> Result<(), notify::Error> {
    for zone in &config.zones {
        std::fs::create_dir_all(zone.dir()).map_err(notify::Error::io)?;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Signal>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<Event>| {
        for signal in classify(res) {
            let _ = tx.send(signal);
        }
    })?;
    for zone in &config.zones {
        watcher.watch(zone.dir(), RecursiveMode::Recursive)?;
    }

    let taker = Taker {
        config: Arc::new(config),
        sink,
        in_flight: Arc::new(Mutex::new(HashSet::new())),
        permits: Arc::new(Semaphore::new(1)),
    };
    let taker = Taker {
        permits: Arc::new(Semaphore::new(taker.config.concurrency.max(1))),
        ..taker
    };
    let mut pending: HashMap<PathBuf, Seen> = HashMap::new();
    taker.scan(&mut pending);

    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last_rescan = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            signal = rx.recv() => match signal {
                Some(Signal::Ready(path)) => { pending.remove(&path); taker.take(path); }
                Some(Signal::Changed(path)) => { taker.consider(&path, &mut pending); }
                Some(Signal::Rescan) => { taker.scan(&mut pending); }
                None => break,
            },
            _ = tick.tick() => {
                taker.take_stable(&mut pending);
                if last_rescan.elapsed() >= taker.config.rescan_every {
                    last_rescan = Instant::now();
                    taker.scan(&mut pending);
                }
            }
        }
    }
    drop(watcher);
    // Let in-flight landings finish: they are short and end in a commit or
    // leave the source in place.
    let _ = taker
        .permits
        .acquire_many(taker.config.concurrency.max(1) as u32)
        .await;
    Ok(())
}

fn classify(res: notify::Result<Event>) -> Vec<Signal> {
    let event = match res {
        Ok(e) => e,
        Err(e) => {
            warn!(error = %e, "drop-zone watcher error; rescanning");
            return vec![Signal::Rescan];
        }
    };
    if event.need_rescan() {
        return vec![Signal::Rescan];
    }
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
            event.paths.into_iter().map(Signal::Ready).collect()
        }
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
            event.paths.into_iter().map(Signal::Ready).collect()
        }
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
            // paths = [from, to]
            event.paths.into_iter().skip(1).map(Signal::Ready).collect()
        }
        EventKind::Create(CreateKind::Folder) => vec![Signal::Rescan],
        EventKind::Create(_) | EventKind::Modify(_) => {
            event.paths.into_iter().map(Signal::Changed).collect()
        }
        _ => Vec::new(),
    }
}

struct Taker<S> {
    config: Arc<DropzoneConfig>,
    sink: Arc<S>,
    in_flight: Arc<Mutex<HashSet<PathBuf>>>,
    permits: Arc<Semaphore>,
}

impl<S> Clone for Taker<S> {
    fn clone(&self) -> Self {
        Taker {
            config: self.config.clone(),
            sink: self.sink.clone(),
            in_flight: self.in_flight.clone(),
            permits: self.permits.clone(),
        }
    }
}

impl<S: FlowSink> Taker<S> {
    fn partner_of(&self, path: &Path) -> Option<String> {
        let name = path.file_name()?.to_str()?;
        if is_partial_name(name) {
            return None;
        }
        self.config.zones.iter().find_map(|z| z.partner_of(path))
    }

    /// Walk every zone; record every candidate file as pending.
    fn scan(&self, pending: &mut HashMap<PathBuf, Seen>) {
        for zone in &self.config.zones {
            let partner_dirs: Vec<PathBuf> = match zone {
                Zone::Inbox { dir, .. } => vec![dir.clone()],
                Zone::PartnerRoot { dir } => match std::fs::read_dir(dir) {
                    Ok(entries) => entries
                        .filter_map(|e| e.ok())
                        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                        .map(|e| e.path())
                        .collect(),
                    Err(e) => {
                        warn!(dir = %dir.display(), error = %e, "cannot list drop zone");
                        continue;
                    }
                },
            };
            for dir in partner_dirs {
                self.recover_claims(&dir);
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries.filter_map(|e| e.ok()) {
                    if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                        self.consider(&entry.path(), pending);
                    }
                }
            }
        }
    }

    /// Note a file as changed: it is taken once its size and mtime are stable.
    fn consider(&self, path: &Path, pending: &mut HashMap<PathBuf, Seen>) {
        if self.partner_of(path).is_none() {
            return;
        }
        let Ok(meta) = std::fs::metadata(path) else {
            pending.remove(path);
            return;
        };
        if !meta.is_file() {
            return;
        }
        let now = Seen {
            size: meta.len(),
            mtime: meta.modified().ok(),
            since: Instant::now(),
        };
        match pending.get(path) {
            Some(prev) if prev.size == now.size && prev.mtime == now.mtime => {}
            _ => {
                pending.insert(path.to_path_buf(), now);
            }
        }
    }

    fn take_stable(&self, pending: &mut HashMap<PathBuf, Seen>) {
        let stable_for = self.config.stable_for;
        let mut ready = Vec::new();
        pending.retain(|path, seen| {
            let Ok(meta) = std::fs::metadata(path) else {
                return false;
            };
            let mtime = meta.modified().ok();
            if meta.len() != seen.size || mtime != seen.mtime {
                *seen = Seen {
                    size: meta.len(),
                    mtime,
                    since: Instant::now(),
                };
                return true;
            }
            if seen.since.elapsed() >= stable_for {
                ready.push(path.clone());
                return false;
            }
            true
        });
        for path in ready {
            self.take(path);
        }
    }

    /// Land, commit, then remove one file, in the background.
    fn take(&self, path: PathBuf) {
        let Some(partner) = self.partner_of(&path) else {
            return;
        };
        if !self
            .in_flight
            .lock()
            .expect("in-flight set")
            .insert(path.clone())
        {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let _permit = this.permits.clone().acquire_owned().await;
            this.land_and_commit(&partner, &path).await;
            this.in_flight.lock().expect("in-flight set").remove(&path);
        });
    }

    async fn land_and_commit(&self, partner: &str, path: &Path) {
        let original_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Claim the file first: several instances may watch the same drop
        // zone, and only the one whose rename succeeds takes it. The claimed
        // name starts with a dot, so nobody else considers it.
        let claimed = claim_path(path, &self.config.instance);
        match std::fs::rename(path, &claimed) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return, // taken elsewhere
            Err(e) => {
                warn!(partner, file = %original_name, error = %e, "cannot claim file in drop zone; will retry");
                return;
            }
        }
        let give_back = |why: &str| {
            if let Err(e) = std::fs::rename(&claimed, path) {
                warn!(partner, file = %original_name, error = %e, "cannot give a claimed file back");
            }
            warn!(partner, file = %original_name, "{why}; left in the drop zone for a later try");
        };
        let store = self.config.store.clone();
        let max = self.config.max_flow_bytes;
        let source = claimed.clone();
        let landed =
            tokio::task::spawn_blocking(move || landing::land_file(&source, &store, max)).await;
        let stored = match landed {
            Ok(Ok(stored)) => stored,
            Ok(Err(e)) => return give_back(&format!("could not store flow: {e}")),
            Err(e) => return give_back(&format!("landing task failed: {e}")),
        };
        let flow = LandedFlow {
            partner: partner.to_string(),
            channel: Channel::Dropzone,
            original_name: original_name.clone(),
            sha256: stored.sha256.clone(),
            size: stored.size,
            stored_path: stored.path.clone(),
            complete: stored.complete,
            as2_message_id: None,
        };
        match self.sink.accept(flow).await {
            Ok(accepted) => {
                match accepted {
                    Accepted::New { flow_id } => {
                        info!(partner, flow_id, file = %original_name, size = stored.size, "flow taken from drop zone")
                    }
                    Accepted::Duplicate { flow_id, original } => {
                        info!(partner, flow_id, original, file = %original_name, "duplicate flow taken from drop zone")
                    }
                }
                if let Err(e) = std::fs::remove_file(&claimed) {
                    warn!(partner, file = %original_name, error = %e, "flow committed but the source could not be removed");
                } else if let Some(parent) = path.parent() {
                    let _ = landing::sync_dir(parent);
                }
            }
            Err(e) => give_back(&format!("flow not committed: {e}")),
        }
        debug!(file = %path.display(), "drop-zone take finished");
    }

    /// Give back files claimed by an instance that died before committing
    /// them: at once when that instance ran on this host and its process is
    /// gone, otherwise once the claim is older than `claim_timeout`.
    fn recover_claims(&self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((owner, original)) = parse_claim(&name) else {
                continue;
            };
            if owner == self.config.instance {
                continue; // ours, in flight
            }
            let dead_here = owner
                .rsplit_once(':')
                .filter(|(host, _)| *host == local_host())
                .and_then(|(_, pid)| pid.parse::<u32>().ok())
                .map(|pid| !Path::new(&format!("/proc/{pid}")).exists())
                .unwrap_or(false);
            // ctime moves with the claiming rename (mtime does not).
            let stale = entry
                .metadata()
                .ok()
                .map(|m| {
                    use std::os::unix::fs::MetadataExt;
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs() as i64)
                        .unwrap_or(0);
                    now - m.ctime() >= self.config.claim_timeout.as_secs() as i64
                })
                .unwrap_or(false);
            if dead_here || stale {
                let target = dir.join(original);
                if std::fs::rename(entry.path(), &target).is_ok() {
                    warn!(file = %original, owner, "recovered a file claimed by an instance that stopped before committing it");
                }
            }
        }
    }
}

/// Prefix of a file claimed by an instance: `.quai-taking.<instance>.<name>`.
const CLAIM_PREFIX: &str = ".quai-taking.";

fn claim_path(path: &Path, instance: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tag: String = instance
        .chars()
        .map(|c| if c == '/' || c == '.' { '_' } else { c })
        .collect();
    path.with_file_name(format!("{CLAIM_PREFIX}{tag}.{name}"))
}

/// (instance, original name) of a claimed file name.
fn parse_claim(name: &str) -> Option<(&str, &str)> {
    name.strip_prefix(CLAIM_PREFIX)?.split_once('.')
}

fn local_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string())
}

/// The name this process claims files under: `host:pid`.
pub fn default_instance() -> String {
    format!("{}:{}", local_host(), std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_names() {
        for n in [
            ".hidden",
            "a.part",
            "a.TMP",
            "x.filepart",
            "d.partial",
            "e.crdownload",
        ] {
            assert!(is_partial_name(n), "{n}");
        }
        // One list for the drop zone, SFTP polls and reconciliation.
        for suffix in crate::landing::PARTIAL_SUFFIXES {
            assert!(is_partial_name(&format!("batch.zip{suffix}")), "{suffix}");
        }
        for n in ["a.zip", "invoice.xml", "part.xml"] {
            assert!(!is_partial_name(n), "{n}");
        }
    }

    #[test]
    fn claim_names_round_trip() {
        let p = claim_path(Path::new("/q/inbound/acme/batch.v2.zip"), "host.example:42");
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(is_partial_name(name), "claimed files are hidden: {name}");
        assert_eq!(parse_claim(name), Some(("host_example:42", "batch.v2.zip")));
    }

    #[test]
    fn partner_from_path() {
        let root = Zone::PartnerRoot {
            dir: PathBuf::from("/q/inbound"),
        };
        assert_eq!(
            root.partner_of(Path::new("/q/inbound/acme/f.zip"))
                .as_deref(),
            Some("acme")
        );
        assert_eq!(root.partner_of(Path::new("/q/inbound/f.zip")), None);
        assert_eq!(
            root.partner_of(Path::new("/q/inbound/acme/sub/f.zip")),
            None
        );
        let inbox = Zone::Inbox {
            partner: "acme".into(),
            dir: PathBuf::from("/srv/acme/in"),
        };
        assert_eq!(
            inbox.partner_of(Path::new("/srv/acme/in/f.zip")).as_deref(),
            Some("acme")
        );
    }
}
