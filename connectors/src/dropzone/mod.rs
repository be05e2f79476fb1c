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
//! start, and every folder is rescanned when the event queue overflows and
//! every `rescan_every` as a safety net.
//!
//! A file is removed from the drop zone only after the [`FlowSink`] has
//! durably committed it; if landing or the commit fails it stays and is tried
//! again on a later scan.
//!
//! # Only regular files come in
//! Partners control every name in their folder, so nothing here follows a
//! link ([`entry`]): folders are opened `O_NOFOLLOW` and entries reached by
//! name inside them; an entry is claimed by a rename that never replaces,
//! then opened `O_NOFOLLOW | O_NONBLOCK` and its descriptor must be a regular
//! file with one link. Links (to `/etc/passwd`, to another partner's folder,
//! to `/dev/zero`), FIFOs, sockets, devices, folders and hard-linked files are
//! *refused*: moved into the folder's `.quai-refused/`, logged, and handed to
//! [`FlowSink::refused`] (a metric, an IRR_TYPE_F report) — once, never
//! retried. A partner folder that is a link, or whose name cannot be a
//! partner id (a space, a line break, non-ASCII, over 64 bytes), is refused
//! once the same way and nothing in it is landed. Folders are watched one by
//! one (never recursively: notify would follow links), so a link to `/`
//! costs nothing.
//!
//! Claim names stay within 255 bytes whatever the file's name ([`names`]).

mod entry;
mod names;

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::landing;
use crate::{Accepted, Channel, FlowSink, LandedFlow, Refusal, RefusalReason};
use entry::{Dir, Kind, Stat};
pub use names::{is_partial_name, unusable_partner_name, NAME_MAX, REFUSED_DIR};

/// Names read from one folder per scan (a partner cannot make a scan
/// unbounded by creating millions of entries).
const MAX_LISTING: usize = 100_000;
/// Refusals remembered so that an entry that could not be moved aside is
/// answered once; past this the memory is cleared (and answered again).
const MAX_REFUSED_MEMORY: usize = 65_536;

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
    #[cfg(test)]
    fn partner_of(&self, path: &Path) -> Option<String> {
        self.spot_of(path).map(|(p, _)| p)
    }

    /// (partner, file name) of a path directly inside a partner folder of
    /// this zone. A partner root's folder must have a usable name.
    fn spot_of(&self, path: &Path) -> Option<(String, OsString)> {
        let rel = path.strip_prefix(self.dir()).ok()?;
        let parts: Vec<&OsStr> = rel
            .components()
            .map(|c| match c {
                Component::Normal(n) => Some(n),
                _ => None,
            })
            .collect::<Option<_>>()?;
        match (self, parts.as_slice()) {
            (Zone::PartnerRoot { .. }, [folder, name]) => {
                if unusable_partner_name(folder).is_some() {
                    return None;
                }
                Some((folder.to_string_lossy().into_owned(), name.to_os_string()))
            }
            (Zone::Inbox { partner, .. }, [name]) => Some((partner.clone(), name.to_os_string())),
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
    // Each folder on its own: a recursive watch would follow links.
    for zone in &config.zones {
        watcher.watch(zone.dir(), RecursiveMode::NonRecursive)?;
    }

    let concurrency = config.concurrency.max(1);
    let taker = Taker {
        config: Arc::new(config),
        sink,
        in_flight: Arc::new(Mutex::new(HashSet::new())),
        permits: Arc::new(Semaphore::new(concurrency)),
        refused: Arc::new(Mutex::new(HashSet::new())),
    };
    let mut watched: HashSet<PathBuf> = HashSet::new();
    let mut pending: HashMap<PathBuf, Pending> = HashMap::new();
    let folders = taker.scan(&mut pending);
    // A file renamed into a folder between its scan and its watch has no
    // event: scan again at the first tick once new folders are watched.
    let mut rescan_soon = watch_folders(&mut watcher, &mut watched, folders);

    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last_rescan = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            signal = rx.recv() => match signal {
                Some(Signal::Ready(path)) => match taker.spot_of(&path) {
                    Some(spot) => { pending.remove(&path); taker.take(spot); }
                    None => rescan_soon = true,
                },
                Some(Signal::Changed(path)) => match taker.spot_of(&path) {
                    Some(spot) => taker.consider(spot, &mut pending),
                    None => rescan_soon = true,
                },
                Some(Signal::Rescan) => rescan_soon = true,
                None => break,
            },
            _ = tick.tick() => {
                taker.take_stable(&mut pending);
                if rescan_soon || last_rescan.elapsed() >= taker.config.rescan_every {
                    last_rescan = Instant::now();
                    let folders = taker.scan(&mut pending);
                    rescan_soon = watch_folders(&mut watcher, &mut watched, folders);
                }
            }
        }
    }
    drop(watcher);
    // Let in-flight landings finish: they are short and end in a commit or
    // leave the source in place.
    let _ = taker.permits.acquire_many(concurrency as u32).await;
    Ok(())
}

/// Watch the partner folders found by a scan (each on its own); forget
/// those that are gone. True when a folder was newly watched: what landed
/// in it between the scan and the watch is found only by scanning again.
fn watch_folders(
    watcher: &mut impl Watcher,
    watched: &mut HashSet<PathBuf>,
    folders: Vec<PathBuf>,
) -> bool {
    let now: HashSet<PathBuf> = folders.into_iter().collect();
    watched.retain(|p| now.contains(p));
    let mut added = false;
    for folder in now {
        if watched.contains(&folder) {
            continue;
        }
        match watcher.watch(&folder, RecursiveMode::NonRecursive) {
            Ok(()) => {
                watched.insert(folder);
                added = true;
            }
            Err(e) => {
                debug!(folder = %folder.display(), error = %e, "cannot watch a partner folder (rescans still find its files)")
            }
        }
    }
    added
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

/// A candidate entry: a name directly in a partner's folder.
#[derive(Debug, Clone)]
struct Spot {
    zone: usize,
    partner: String,
    name: OsString,
    path: PathBuf,
}

struct Pending {
    spot: Spot,
    seen: Seen,
}

/// What an entry's own `stat` says about taking it.
fn refusal_of(st: &Stat) -> Option<RefusalReason> {
    match st.kind {
        Kind::Regular if st.nlink > 1 => Some(RefusalReason::HardLink),
        Kind::Regular => None,
        Kind::Directory => Some(RefusalReason::Directory),
        Kind::Link => Some(RefusalReason::Link),
        Kind::Fifo => Some(RefusalReason::Fifo),
        Kind::Socket => Some(RefusalReason::Socket),
        Kind::Device => Some(RefusalReason::Device),
        Kind::Other => Some(RefusalReason::NotRegular),
    }
}

/// Why a partner folder could not be opened.
enum FolderError {
    /// A link or not a folder: refused.
    Refused,
    /// Gone, or another error (logged by the caller).
    Io(io::Error),
}

struct Taker<S> {
    config: Arc<DropzoneConfig>,
    sink: Arc<S>,
    in_flight: Arc<Mutex<HashSet<PathBuf>>>,
    permits: Arc<Semaphore>,
    /// (path, dev, ino) of entries answered but left in place.
    refused: Arc<Mutex<HashSet<(PathBuf, u64, u64)>>>,
}

impl<S> Clone for Taker<S> {
    fn clone(&self) -> Self {
        Taker {
            config: self.config.clone(),
            sink: self.sink.clone(),
            in_flight: self.in_flight.clone(),
            permits: self.permits.clone(),
            refused: self.refused.clone(),
        }
    }
}

impl<S: FlowSink> Taker<S> {
    fn spot_of(&self, path: &Path) -> Option<Spot> {
        self.config
            .zones
            .iter()
            .enumerate()
            .find_map(|(zone, z)| {
                z.spot_of(path).map(|(partner, name)| Spot {
                    zone,
                    partner,
                    name,
                    path: path.to_path_buf(),
                })
            })
            .filter(|s| !names::is_partial(&s.name))
    }

    /// Opens a spot's partner folder without following a link.
    fn open_folder(&self, zone: usize, partner: &str) -> Result<Dir, FolderError> {
        let opened = match &self.config.zones[zone] {
            // The root is the operator's path; the partner's folder in it
            // must not be a link.
            Zone::PartnerRoot { dir } => {
                Dir::open(dir, true).and_then(|root| root.open_dir(OsStr::new(partner)))
            }
            Zone::Inbox { dir, .. } => Dir::open(dir, false),
        };
        opened.map_err(|e| {
            if entry::is_link_error(&e) || entry::is_not_dir_error(&e) {
                FolderError::Refused
            } else {
                FolderError::Io(e)
            }
        })
    }

    /// Answer a refusal once: log it, tell the sink. `remember` keeps it
    /// from being answered again while the entry stays where it is.
    fn answer(&self, refusal: Refusal, detail: &str, remember: Option<(PathBuf, u64, u64)>) {
        if let Some(key) = remember {
            let mut seen = self.refused.lock().expect("refused set");
            if seen.contains(&key) {
                return;
            }
            if seen.len() >= MAX_REFUSED_MEMORY {
                seen.clear();
            }
            seen.insert(key);
        }
        warn!(
            partner = ?refusal.partner.as_deref().unwrap_or("-"),
            entry = ?refusal.name,
            reason = refusal.reason.label(),
            moved_to = ?refusal.moved_to,
            "drop-zone entry refused: {}{detail}",
            refusal.reason.describe()
        );
        let sink = self.sink.clone();
        tokio::spawn(async move { sink.refused(refusal).await });
    }

    /// Walk every zone; record every candidate file as pending, refuse what
    /// cannot be taken. Returns the partner folders found (to watch).
    fn scan(&self, pending: &mut HashMap<PathBuf, Pending>) -> Vec<PathBuf> {
        let mut folders: Vec<(usize, String, Dir)> = Vec::new();
        for (zi, zone) in self.config.zones.iter().enumerate() {
            match zone {
                Zone::Inbox { partner, dir } => match self.open_folder(zi, partner) {
                    Ok(d) => folders.push((zi, partner.clone(), d)),
                    Err(FolderError::Refused) => {
                        let st = std::fs::symlink_metadata(dir).ok();
                        self.answer(
                            Refusal {
                                partner: Some(partner.clone()),
                                channel: Channel::Dropzone,
                                name: dir.display().to_string(),
                                reason: RefusalReason::PartnerFolderLink,
                                moved_to: None,
                            },
                            "; nothing is taken from it",
                            Some(key_of(dir, st.as_ref())),
                        );
                    }
                    Err(FolderError::Io(e)) => {
                        warn!(dir = %dir.display(), error = %e, "cannot open drop zone")
                    }
                },
                Zone::PartnerRoot { dir } => {
                    let root = match Dir::open(dir, true) {
                        Ok(r) => r,
                        Err(e) => {
                            warn!(dir = %dir.display(), error = %e, "cannot open drop zone");
                            continue;
                        }
                    };
                    let list = match root.names(MAX_LISTING) {
                        Ok(l) => l,
                        Err(e) => {
                            warn!(dir = %dir.display(), error = %e, "cannot list drop zone");
                            continue;
                        }
                    };
                    for name in list {
                        if names::is_partial(&name) {
                            continue;
                        }
                        let Ok(st) = root.stat(&name) else { continue };
                        let path = dir.join(&name);
                        let key = (path.clone(), st.dev, st.ino);
                        let lossy = name.to_string_lossy().into_owned();
                        let usable = unusable_partner_name(&name);
                        match (st.kind, usable) {
                            (Kind::Directory, Some(why)) => self.answer(
                                Refusal {
                                    partner: None,
                                    channel: Channel::Dropzone,
                                    name: lossy,
                                    reason: RefusalReason::PartnerFolderName,
                                    moved_to: None,
                                },
                                &format!(" ({why}); nothing is taken from it"),
                                Some(key),
                            ),
                            (Kind::Directory, None) => match root.open_dir(&name) {
                                Ok(d) => folders.push((zi, lossy, d)),
                                Err(e)
                                    if entry::is_link_error(&e) || entry::is_not_dir_error(&e) =>
                                {
                                    self.answer(
                                        Refusal {
                                            partner: None,
                                            channel: Channel::Dropzone,
                                            name: name.to_string_lossy().into_owned(),
                                            reason: RefusalReason::PartnerFolderLink,
                                            moved_to: None,
                                        },
                                        "; nothing is taken from it",
                                        Some(key),
                                    )
                                }
                                Err(_) => {}
                            },
                            // The partner is who the configuration says,
                            // never derived through a link.
                            (Kind::Link, _) => self.answer(
                                Refusal {
                                    partner: None,
                                    channel: Channel::Dropzone,
                                    name: lossy,
                                    reason: RefusalReason::PartnerFolderLink,
                                    moved_to: None,
                                },
                                "; nothing is taken from it",
                                Some(key),
                            ),
                            _ => self.answer(
                                Refusal {
                                    partner: None,
                                    channel: Channel::Dropzone,
                                    name: lossy,
                                    reason: RefusalReason::OutsidePartnerFolder,
                                    moved_to: None,
                                },
                                "; files go into a partner's folder",
                                Some(key),
                            ),
                        }
                    }
                }
            }
        }
        let mut found = Vec::new();
        for (zone, partner, folder) in folders {
            self.recover_claims(&folder);
            let Ok(list) = folder.names(MAX_LISTING) else {
                continue;
            };
            for name in list {
                if names::is_partial(&name) {
                    continue;
                }
                let Ok(st) = folder.stat(&name) else { continue };
                let spot = Spot {
                    zone,
                    partner: partner.clone(),
                    path: folder.path.join(&name),
                    name,
                };
                if refusal_of(&st).is_none() {
                    self.consider(spot, pending);
                } else {
                    self.take(spot);
                }
            }
            found.push(folder.path.clone());
        }
        found
    }

    /// Note a file as changed: it is taken once its size and mtime are
    /// stable. Anything but a regular file is refused at once.
    fn consider(&self, spot: Spot, pending: &mut HashMap<PathBuf, Pending>) {
        // A hint only: the take re-checks through the folder's descriptor.
        let Ok(meta) = std::fs::symlink_metadata(&spot.path) else {
            pending.remove(&spot.path);
            return;
        };
        if !meta.file_type().is_file() {
            pending.remove(&spot.path);
            self.take(spot);
            return;
        }
        let now = Seen {
            size: meta.len(),
            mtime: meta.modified().ok(),
            since: Instant::now(),
        };
        match pending.get(&spot.path) {
            Some(prev) if prev.seen.size == now.size && prev.seen.mtime == now.mtime => {}
            _ => {
                pending.insert(spot.path.clone(), Pending { spot, seen: now });
            }
        }
    }

    fn take_stable(&self, pending: &mut HashMap<PathBuf, Pending>) {
        let stable_for = self.config.stable_for;
        let mut ready = Vec::new();
        pending.retain(|path, p| {
            let Ok(meta) = std::fs::symlink_metadata(path) else {
                return false;
            };
            let mtime = meta.modified().ok();
            if meta.len() != p.seen.size || mtime != p.seen.mtime {
                p.seen = Seen {
                    size: meta.len(),
                    mtime,
                    since: Instant::now(),
                };
                return true;
            }
            if p.seen.since.elapsed() >= stable_for {
                ready.push(p.spot.clone());
                return false;
            }
            true
        });
        for spot in ready {
            self.take(spot);
        }
    }

    /// Land, commit, then remove one file (or refuse the entry), in the
    /// background.
    fn take(&self, spot: Spot) {
        if !self
            .in_flight
            .lock()
            .expect("in-flight set")
            .insert(spot.path.clone())
        {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let _permit = this.permits.clone().acquire_owned().await;
            this.land_and_commit(&spot).await;
            this.in_flight
                .lock()
                .expect("in-flight set")
                .remove(&spot.path);
        });
    }

    /// Move a refused entry into the folder's `.quai-refused/` and answer
    /// it; if it cannot be moved, answer it once and leave it.
    fn refuse_entry(
        &self,
        folder: &Dir,
        spot: &Spot,
        from: &OsStr,
        st: Stat,
        reason: RefusalReason,
    ) {
        let moved = folder
            .ensure_dir(OsStr::new(REFUSED_DIR), 0o755)
            .and_then(|aside| {
                let first = names::fit(&spot.name, "");
                match folder.rename_noreplace(from, &aside, &first) {
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        let stamp = SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|d| d.as_nanos())
                            .unwrap_or(0);
                        let second = names::fit(&spot.name, &format!(".{stamp}"));
                        folder
                            .rename_noreplace(from, &aside, &second)
                            .map(|()| aside.path.join(second))
                    }
                    other => other.map(|()| aside.path.join(first)),
                }
            });
        let refusal = |moved_to| Refusal {
            partner: Some(spot.partner.clone()),
            channel: Channel::Dropzone,
            name: spot.name.to_string_lossy().into_owned(),
            reason,
            moved_to,
        };
        match moved {
            Ok(to) => {
                let _ = folder.sync();
                self.answer(refusal(Some(to)), "; moved aside", None)
            }
            Err(e) => self.answer(
                refusal(None),
                &format!("; could not be moved aside ({e}), left in place and not taken"),
                Some((spot.path.clone(), st.dev, st.ino)),
            ),
        }
    }

    async fn land_and_commit(&self, spot: &Spot) {
        let partner = spot.partner.as_str();
        let original_name = spot.name.to_string_lossy().into_owned();
        let folder = match self.open_folder(spot.zone, partner) {
            Ok(f) => f,
            // The folder-level refusal is the scan's to answer.
            Err(FolderError::Refused) => return,
            Err(FolderError::Io(e)) => {
                debug!(partner, error = %e, "partner folder not opened");
                return;
            }
        };
        let Ok(st) = folder.stat(&spot.name) else {
            return; // gone (taken elsewhere)
        };
        if let Some(reason) = refusal_of(&st) {
            return self.refuse_entry(&folder, spot, &spot.name, st, reason);
        }
        // Claim the file first: several instances may watch the same drop
        // zone, and only the one whose rename succeeds takes it. The claimed
        // name starts with a dot, so nobody else considers it.
        let claim = names::claim_for(&spot.name, &self.config.instance);
        if let Some(sidecar) = &claim.sidecar {
            let written = folder.create_new(sidecar).and_then(|mut f| {
                f.write_all(spot.name.as_bytes())?;
                f.sync_all()
            });
            if let Err(e) = written {
                warn!(partner, file = ?original_name, error = %e, "cannot claim file in drop zone; will retry");
                let _ = folder.unlink(sidecar);
                return;
            }
        }
        let drop_sidecar = || {
            if let Some(sidecar) = &claim.sidecar {
                let _ = folder.unlink(sidecar);
            }
        };
        match folder.rename_noreplace(&spot.name, &folder, &claim.name) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return drop_sidecar(), // taken elsewhere
            Err(e) => {
                warn!(partner, file = ?original_name, error = %e, "cannot claim file in drop zone; will retry");
                return drop_sidecar();
            }
        }
        let give_back = |why: &str| {
            match folder.rename_noreplace(&claim.name, &folder, &spot.name) {
                Ok(()) => drop_sidecar(),
                Err(e) => {
                    warn!(partner, file = ?original_name, error = %e, "cannot give a claimed file back (recovered on a later scan)")
                }
            }
            warn!(partner, file = ?original_name, "{why}; left in the drop zone for a later try");
        };
        // What was claimed, opened without following or blocking: it may
        // have been swapped for a link or a FIFO since the check above.
        let (file, fst) = match folder.open_file(&claim.name) {
            Ok(v) => v,
            Err(e) if entry::is_link_error(&e) => {
                let st = folder.stat(&claim.name).unwrap_or(st);
                self.refuse_entry(&folder, spot, &claim.name, st, RefusalReason::Link);
                return drop_sidecar();
            }
            Err(e) => return give_back(&format!("could not open the claimed file: {e}")),
        };
        if let Some(reason) = refusal_of(&fst) {
            drop(file);
            self.refuse_entry(&folder, spot, &claim.name, fst, reason);
            return drop_sidecar();
        }
        let store = self.config.store.clone();
        let max = self.config.max_flow_bytes;
        let landed = tokio::task::spawn_blocking(move || {
            let mut file = file;
            landing::land(&mut file as &mut dyn Read, &store, max)
        })
        .await;
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
                        info!(partner, flow_id, file = ?original_name, size = stored.size, "flow taken from drop zone")
                    }
                    Accepted::Duplicate { flow_id, original } => {
                        info!(partner, flow_id, original, file = ?original_name, "duplicate flow taken from drop zone")
                    }
                }
                if let Err(e) = folder.unlink(&claim.name) {
                    warn!(partner, file = ?original_name, error = %e, "flow committed but the source could not be removed");
                } else {
                    drop_sidecar();
                    let _ = folder.sync();
                }
            }
            Err(e) => give_back(&format!("flow not committed: {e}")),
        }
        debug!(file = %spot.path.display(), "drop-zone take finished");
    }

    /// Give back claimed files whose taker is gone: ours when no take is in
    /// flight for them (a give-back that failed), another instance's at once
    /// when it ran on this host and its process is gone, otherwise once the
    /// claim is older than `claim_timeout`.
    fn recover_claims(&self, folder: &Dir) {
        let Ok(list) = folder.names(MAX_LISTING) else {
            return;
        };
        let my_tag = names::instance_tag(&self.config.instance);
        let host_tag = names::instance_tag(&local_host());
        for name in list {
            let Some(claim) = names::parse_claim(&name) else {
                continue;
            };
            let owner = match &claim {
                names::ClaimName::Plain { owner, .. }
                | names::ClaimName::Hashed { owner, .. }
                | names::ClaimName::Sidecar { owner, .. } => *owner,
            };
            let ours = my_tag == owner;
            let dead_here = owner
                .rsplit_once(':')
                .filter(|(host, _)| *host == host_tag)
                .and_then(|(_, pid)| pid.parse::<u32>().ok())
                .map(|pid| !Path::new(&format!("/proc/{pid}")).exists())
                .unwrap_or(false);
            // ctime moves with the claiming rename (mtime does not).
            let stale = folder
                .stat(&name)
                .map(|st| {
                    let now = SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs() as i64)
                        .unwrap_or(0);
                    now - st.ctime >= self.config.claim_timeout.as_secs() as i64
                })
                .unwrap_or(false);
            if !(ours || dead_here || stale) {
                continue;
            }
            let (original, sidecar) = match claim {
                names::ClaimName::Plain { original, .. } => (original.to_os_string(), None),
                names::ClaimName::Hashed { sidecar, .. } => {
                    let Some(original) = read_sidecar(folder, &sidecar) else {
                        continue; // written just before its claim, or broken
                    };
                    (original, Some(sidecar))
                }
                names::ClaimName::Sidecar { claim, .. } => {
                    // A sidecar whose claim is gone (committed, then a crash).
                    if !ours && folder.stat(claim).is_err() {
                        let _ = folder.unlink(&name);
                    }
                    continue;
                }
            };
            if ours
                && self
                    .in_flight
                    .lock()
                    .expect("in-flight set")
                    .contains(&folder.path.join(&original))
            {
                continue; // in flight
            }
            if folder.rename_noreplace(&name, folder, &original).is_ok() {
                if let Some(s) = sidecar {
                    let _ = folder.unlink(&s);
                }
                warn!(file = ?original.to_string_lossy(), owner, "recovered a file claimed by an instance that stopped before committing it");
            }
        }
    }
}

/// The original name a hashed claim's sidecar holds (at most 255 bytes, a
/// regular file, not followed).
fn read_sidecar(folder: &Dir, sidecar: &OsStr) -> Option<OsString> {
    let (file, st) = folder.open_file(sidecar).ok()?;
    if st.kind != Kind::Regular || st.size > NAME_MAX as u64 {
        return None;
    }
    let mut buf = Vec::new();
    file.take(NAME_MAX as u64 + 1).read_to_end(&mut buf).ok()?;
    let name = OsStr::from_bytes(&buf);
    if buf.is_empty() || buf.len() > NAME_MAX || buf.contains(&b'/') || buf.contains(&0) {
        return None;
    }
    Some(name.to_os_string())
}

fn key_of(path: &Path, meta: Option<&std::fs::Metadata>) -> (PathBuf, u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (
        path.to_path_buf(),
        meta.map(|m| m.dev()).unwrap_or(0),
        meta.map(|m| m.ino()).unwrap_or(0),
    )
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
        assert_eq!(root.partner_of(Path::new("/q/inbound/a b/f.zip")), None);
        assert_eq!(root.partner_of(Path::new("/q/inbound/../f.zip")), None);
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
