//! SFTP connector: poll a partner's remote folder, take finished files in,
//! and write acknowledgements back to its outbox.
//!
//! Why it is shaped this way:
//! - **Nothing is lost, nothing is taken twice.** A file is streamed into the
//!   content-addressed store ([`crate::landing`]), handed to the
//!   [`FlowSink`], and only after the sink's durable commit is the remote file
//!   deleted or moved (`after_pickup`). A lost connection or a sink error
//!   leaves the remote file where it was; the next cycle takes it again and
//!   the sink recognises the bytes (`Accepted::Duplicate`) if the first
//!   attempt had in fact been committed.
//! - **Partial uploads are not taken.** Dot names and `.part`/`.tmp`/
//!   `.filepart` names are ignored; a file must show the same size and mtime
//!   in two consecutive listings ([`PollState`] remembers the previous one;
//!   `settle` lists a second time within the same poll) and be older than
//!   `min_age`; and a file that changes size while being read is discarded.
//! - **Only regular files come in.** The listing has `lstat` semantics
//!   (OpenSSH's readdir): a remote link, folder, FIFO or device is skipped,
//!   logged and told to [`FlowSink::refused`] once (while it stays listed),
//!   never opened nor removed. Since SFTP v3 `open` follows links on the
//!   server, a file is `lstat`ed just before it is opened and its handle
//!   `fstat`ed after, so one swapped for a link since the listing is refused.
//! - **Strict host keys.** The server's key must be in the partner's
//!   `known_hosts` ([`known_hosts`]); an unknown or changed key refuses the
//!   connection with the fingerprint in the error, unless
//!   `trust_on_first_use` is set (which records unknown keys, never changed
//!   ones).
//! - **Bounded time.** ssh2 is blocking, so each step runs on
//!   `spawn_blocking`; TCP connect and every SSH operation are bounded by
//!   timeouts, so a hung server costs one task one timeout, never forever.
//!   Failures are typed ([`SftpError::kind`]) for metrics; the caller retries
//!   on its next cycle with backoff.

mod config;
pub(crate) mod conn;
pub mod known_hosts;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub use config::{AfterPickup, SftpSource, SftpUrl};

use crate::{Accepted, Channel, FlowSink, LandedFlow, Refusal, RefusalReason};
use conn::{Conn, OpenRefused, RemoteEntry, RemoteReader};

/// Why a poll or a delivery failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum SftpError {
    #[error("SFTP configuration: {0}")]
    Config(String),
    #[error("cannot connect to {target}: {detail}")]
    Connect { target: String, detail: String },
    #[error("SSH host key of {target} refused ({key_type} {fingerprint}): {problem}")]
    HostKey {
        target: String,
        key_type: String,
        /// `SHA256:...`, as `ssh-keygen -l` prints it.
        fingerprint: String,
        problem: String,
    },
    #[error("SSH authentication to {target} failed: {detail}")]
    Auth { target: String, detail: String },
    #[error("SFTP {op} on {target} failed: {detail}")]
    Io {
        target: String,
        op: String,
        detail: String,
    },
    #[error("local {op} failed: {source}")]
    Local {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl SftpError {
    /// A short label for metrics and logs: `config`, `connect`, `host_key`,
    /// `auth`, `io`, `local` or `internal`.
    pub fn kind(&self) -> &'static str {
        match self {
            SftpError::Config(_) => "config",
            SftpError::Connect { .. } => "connect",
            SftpError::HostKey { .. } => "host_key",
            SftpError::Auth { .. } => "auth",
            SftpError::Io { .. } => "io",
            SftpError::Local { .. } => "local",
            SftpError::Internal(_) => "internal",
        }
    }
}

/// What a poll remembers between cycles: the size and mtime of each file in
/// the previous listing (bounded by `max_listing`).
#[derive(Debug, Default, Clone)]
pub struct PollState {
    seen: HashMap<PathBuf, (u64, u64)>,
    /// Entries that are not regular files, already logged and refused:
    /// answered once, not again while they stay listed.
    refused: std::collections::HashSet<PathBuf>,
}

impl PollState {
    pub fn new() -> PollState {
        PollState::default()
    }
}

/// Why a listed file was left on the server this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// A dot name or a `.part`/`.tmp`/`.filepart` suffix: an upload in progress.
    PartialName,
    /// Not a regular file (directory, symlink, FIFO, ...): logged and told
    /// to [`FlowSink::refused`] the first time it is listed, never taken.
    NotAFile,
    /// New, or its size or mtime changed since the previous listing.
    Unstable,
    /// Modified less than `min_age` ago.
    TooYoung,
}

/// A file taken in during a poll.
#[derive(Debug, Clone)]
pub struct PickedUp {
    pub name: String,
    pub sha256: String,
    pub size: u64,
    pub accepted: Accepted,
    /// Where the remote file went: `None` when it was deleted, the archive
    /// path when moved. `Err` text when the sink committed but the removal
    /// failed (the next poll sees the file again as a duplicate and retries).
    pub after_pickup: Result<Option<String>, String>,
}

/// A file that could not be taken this time; it stays on the server.
#[derive(Debug, Clone)]
pub struct FileFailure {
    pub name: String,
    pub error: String,
}

/// The outcome of one poll.
#[derive(Debug, Clone, Default)]
pub struct PollReport {
    /// Entries in the (last) listing.
    pub listed: usize,
    pub picked_up: Vec<PickedUp>,
    pub skipped: Vec<(String, SkipReason)>,
    pub failed: Vec<FileFailure>,
}

use crate::landing::is_partial_name;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn decide(
    e: &RemoteEntry,
    previous: &HashMap<PathBuf, (u64, u64)>,
    src: &SftpSource,
    now: u64,
) -> Result<(), SkipReason> {
    if is_partial_name(&e.name) {
        return Err(SkipReason::PartialName);
    }
    if !e.is_file {
        return Err(SkipReason::NotAFile);
    }
    if previous.get(&e.path) != Some(&(e.size, e.mtime)) {
        return Err(SkipReason::Unstable);
    }
    // A server clock ahead of ours puts mtimes in the future: the age cannot
    // be judged, so only the stable-listing rule applies.
    if e.mtime <= now && now - e.mtime < src.min_age.as_secs() {
        return Err(SkipReason::TooYoung);
    }
    Ok(())
}

fn snapshot(listing: &[RemoteEntry]) -> HashMap<PathBuf, (u64, u64)> {
    listing
        .iter()
        .filter(|e| e.is_file)
        .map(|e| (e.path.clone(), (e.size, e.mtime)))
        .collect()
}

async fn blocking<T, F>(f: F) -> Result<T, SftpError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SftpError::Internal(format!("blocking SFTP task failed: {e}")))
}

/// Outcome of one download attempt.
enum Download {
    Landed(crate::landing::Stored),
    /// This file only (it stays on the server).
    FileError(String),
    /// Not a regular file when opened (swapped since the listing).
    NotRegular(RefusalReason),
    /// The connection is gone: stop this poll.
    ConnectionLost(SftpError),
    /// The local store failed: stop this poll.
    Local(SftpError),
}

fn download(conn: &Conn, e: &RemoteEntry, store_dir: &Path, max_bytes: u64, dir: &str) -> Download {
    let file = match conn.open_file(&e.path) {
        Ok(f) => f,
        Err(OpenRefused::NotRegular(r)) => return Download::NotRegular(r),
        Err(OpenRefused::Ssh(err)) if conn::is_transport(&err) => {
            return Download::ConnectionLost(conn.io_err(format!("open {}", e.name), err))
        }
        Err(OpenRefused::Ssh(err)) => return Download::FileError(format!("open: {err}")),
    };
    let mut reader = RemoteReader {
        file,
        expected: e.size,
        read: 0,
        remote_error: None,
        size_changed: false,
    };
    match crate::landing::land(&mut reader, store_dir, max_bytes) {
        Ok(stored) => Download::Landed(stored),
        Err(err) => {
            if reader.size_changed {
                Download::FileError("changed size while being read (still being written?)".into())
            } else if let Some(remote) = reader.remote_error.take() {
                let timed_out = remote.kind() == std::io::ErrorKind::TimedOut;
                if timed_out || !conn.alive(dir) {
                    // Before the remote file handle is dropped (a close
                    // request that would wait out the timeout again).
                    conn.cut();
                    Download::ConnectionLost(conn.io_err(format!("download {}", e.name), remote))
                } else {
                    Download::FileError(format!("read: {remote}"))
                }
            } else {
                Download::Local(SftpError::Local {
                    op: format!("store {}", e.name),
                    source: std::io::Error::other(err.to_string()),
                })
            }
        }
    }
}

impl SftpSource {
    /// One polling cycle: connect, list, take every finished file in (store,
    /// sink, then remove or move it remotely), disconnect.
    ///
    /// Returns `Err` when the connection could not be made (host key, auth,
    /// connect) or was lost mid-way; files committed before that are in the
    /// sink and logged. Errors of single files (a sink refusal, a file
    /// changing while read, a permission problem) are in the report and never
    /// stop the others.
    pub async fn poll_once(
        &self,
        sink: &impl FlowSink,
        store_dir: &Path,
        state: &mut PollState,
    ) -> Result<PollReport, SftpError> {
        let src = Arc::new(self.clone());
        let conn = {
            let src = src.clone();
            Arc::new(blocking(move || Conn::open(&src)).await??)
        };
        let result = self.poll_connected(&conn, sink, store_dir, state).await;
        // Closing talks to the server: do it off the async threads too.
        let failed = result.is_err();
        let _ = blocking(move || {
            if let Ok(c) = Arc::try_unwrap(conn) {
                if failed {
                    c.abort();
                } else {
                    c.close();
                }
            }
        })
        .await;
        result
    }

    async fn poll_connected(
        &self,
        conn: &Arc<Conn>,
        sink: &impl FlowSink,
        store_dir: &Path,
        state: &mut PollState,
    ) -> Result<PollReport, SftpError> {
        let list =
            |conn: Arc<Conn>, dir: String, max: usize| blocking(move || conn.list(&dir, max));
        let mut listing = list(conn.clone(), self.remote_dir.clone(), self.max_listing).await??;
        let mut now = now_secs();
        let unsettled = listing
            .iter()
            .any(|e| decide(e, &state.seen, self, now) == Err(SkipReason::Unstable));
        if unsettled && !self.settle.is_zero() {
            state.seen = snapshot(&listing);
            tokio::time::sleep(self.settle).await;
            listing = list(conn.clone(), self.remote_dir.clone(), self.max_listing).await??;
            now = now_secs();
        }

        let mut report = PollReport {
            listed: listing.len(),
            ..PollReport::default()
        };
        let mut take = Vec::new();
        let mut refused_now = std::collections::HashSet::new();
        for e in &listing {
            match decide(e, &state.seen, self, now) {
                Ok(()) => take.push(e.clone()),
                Err(SkipReason::NotAFile) => {
                    report.skipped.push((e.name.clone(), SkipReason::NotAFile));
                    refused_now.insert(e.path.clone());
                    if !state.refused.contains(&e.path) {
                        let reason = e.not_regular.unwrap_or(RefusalReason::NotRegular);
                        self.refuse(sink, &e.name, reason).await;
                    }
                }
                Err(r) => report.skipped.push((e.name.clone(), r)),
            }
        }
        // Remembered while listed; a new entry of the same name later is
        // answered afresh.
        state.refused = refused_now;
        state.seen = snapshot(&listing);

        let max_bytes = self.max_file_size.unwrap_or(u64::MAX);
        for e in take {
            let slot = match &self.transfer_slots {
                Some(sem) => Some(
                    sem.clone()
                        .acquire_owned()
                        .await
                        .map_err(|_| SftpError::Internal("transfer slots closed".into()))?,
                ),
                None => None,
            };
            let outcome = {
                let (conn, e, store, dir) = (
                    conn.clone(),
                    e.clone(),
                    store_dir.to_path_buf(),
                    self.remote_dir.clone(),
                );
                blocking(move || download(&conn, &e, &store, max_bytes, &dir)).await?
            };
            drop(slot);
            let stored = match outcome {
                Download::Landed(s) => s,
                Download::NotRegular(reason) => {
                    state.seen.remove(&e.path);
                    state.refused.insert(e.path.clone());
                    report.skipped.push((e.name.clone(), SkipReason::NotAFile));
                    self.refuse(sink, &e.name, reason).await;
                    continue;
                }
                Download::FileError(msg) => {
                    tracing::warn!(target: "quai::sftp", partner = %self.partner, file = %e.name, "not taken: {msg}");
                    state.seen.remove(&e.path);
                    report.failed.push(FileFailure {
                        name: e.name,
                        error: msg,
                    });
                    continue;
                }
                Download::ConnectionLost(err) | Download::Local(err) => {
                    // The remote file stays; the next cycle lists it afresh.
                    state.seen.remove(&e.path);
                    return Err(err);
                }
            };
            let flow = LandedFlow {
                partner: self.partner.clone(),
                channel: Channel::Sftp,
                original_name: e.name.clone(),
                sha256: stored.sha256.clone(),
                size: stored.size,
                stored_path: stored.path.clone(),
                complete: stored.complete,
                as2_message_id: None,
            };
            let accepted = match sink.accept(flow).await {
                Ok(a) => a,
                Err(err) => {
                    tracing::warn!(target: "quai::sftp", partner = %self.partner, file = %e.name, "sink refused, file left on server: {err}");
                    report.failed.push(FileFailure {
                        name: e.name,
                        error: err.to_string(),
                    });
                    continue;
                }
            };
            let after = {
                let (conn, path, how) = (conn.clone(), e.path.clone(), self.after_pickup.clone());
                let suffix = format!("{}-{}", now_secs(), stored.sha256.get(..8).unwrap_or(""));
                blocking(move || match how {
                    AfterPickup::Delete => conn.remove(&path).map(|()| None),
                    AfterPickup::MoveTo(dir) => conn
                        .move_into(&path, &dir, &suffix)
                        .map(|p| Some(p.to_string_lossy().into_owned())),
                })
                .await?
            };
            state.seen.remove(&e.path);
            let transport_lost = matches!(&after, Err(err) if conn::is_transport(err));
            let after_pickup = after.map_err(|err| err.to_string());
            match &after_pickup {
                Ok(_) => {
                    tracing::info!(target: "quai::sftp", partner = %self.partner, file = %e.name, sha256 = %stored.sha256, "picked up")
                }
                Err(err) => {
                    tracing::warn!(target: "quai::sftp", partner = %self.partner, file = %e.name, "committed, but the remote file could not be removed (retried next cycle): {err}")
                }
            }
            report.picked_up.push(PickedUp {
                name: e.name,
                sha256: stored.sha256,
                size: stored.size,
                accepted,
                after_pickup: after_pickup.clone(),
            });
            if transport_lost {
                return Err(conn.io_err("after_pickup", after_pickup.err().unwrap_or_default()));
            }
        }
        Ok(report)
    }

    /// Log a remote entry that is not a regular file and tell the sink,
    /// once: it stays on the server (quai does not touch what it will not
    /// take) and is skipped by later polls while it is listed.
    async fn refuse(&self, sink: &impl FlowSink, name: &str, reason: RefusalReason) {
        tracing::warn!(target: "quai::sftp", partner = %self.partner, entry = ?name,
            reason = reason.label(), "remote entry refused: {}; left on the server", reason.describe());
        sink.refused(Refusal {
            partner: Some(self.partner.clone()),
            channel: Channel::Sftp,
            name: name.to_string(),
            reason,
            moved_to: None,
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_names() {
        for n in [
            ".x.xml",
            "a.part",
            "A.PART",
            "b.tmp",
            "c.filepart",
            "d.partial",
        ] {
            assert!(is_partial_name(n), "{n}");
        }
        for n in ["invoice.xml", "part", "x.parts", "tmp.zip"] {
            assert!(!is_partial_name(n), "{n}");
        }
    }

    #[test]
    fn decide_rules() {
        let mut src = SftpSource::from_url("p", "sftp://u@h/in", None, "/kh".into()).unwrap();
        src.min_age = std::time::Duration::from_secs(60);
        let e = RemoteEntry {
            name: "f.xml".into(),
            path: "/in/f.xml".into(),
            size: 10,
            mtime: 1_000,
            is_file: true,
            not_regular: None,
        };
        let mut prev = HashMap::new();
        assert_eq!(decide(&e, &prev, &src, 5_000), Err(SkipReason::Unstable));
        prev.insert(e.path.clone(), (9, 1_000));
        assert_eq!(decide(&e, &prev, &src, 5_000), Err(SkipReason::Unstable));
        prev.insert(e.path.clone(), (10, 1_000));
        assert_eq!(decide(&e, &prev, &src, 5_000), Ok(()));
        assert_eq!(decide(&e, &prev, &src, 1_030), Err(SkipReason::TooYoung));
        // mtime in the future (server clock ahead): only stability counts.
        assert_eq!(decide(&e, &prev, &src, 900), Ok(()));
    }
}
