//! Streaming, fsynced, content-addressed writes into the flow store.
//!
//! Every connector lands a flow the same way: the bytes are copied in bounded
//! chunks into a temporary file inside the store (same filesystem, so the
//! final rename is atomic), hashed while they pass, fsynced, renamed to their
//! SHA-256, and the directory is fsynced (by the caller, once for several
//! files, with [`land_unsynced_folder`]). A crash at any point leaves either
//! nothing or a complete file under its hash; a leftover temporary file is
//! never mistaken for a flow. Two flows with the same bytes share one file.
//!
//! [`land_unsynced`] is the partner API's variant for many small deposits
//! at once: nothing is fsynced per file; the caller makes the whole group
//! durable with one [`sync_store`] (`syncfs(2)` and a final flush) before it
//! registers any of them. A crash before that may leave a file under its
//! hash whose bytes did not reach the disk (never registered); so a landing
//! that finds its hash already there checks the bytes (the unsynced
//! variant) or replaces them with its own fsynced copy ([`land`]) rather
//! than trusting them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Prefix of temporary files in the store (cleaned up by [`sweep_temporaries`]).
const TEMP_PREFIX: &str = ".landing-";
const CHUNK: usize = 64 * 1024;

/// A flow's bytes, durably stored under their hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub sha256: String,
    pub size: u64,
    pub path: PathBuf,
    /// False when the flow exceeded the size limit: it was hashed to the end
    /// (so it can be registered and answered) but its bytes were not kept and
    /// `path` does not exist.
    pub complete: bool,
}

/// Why landing failed.
#[derive(Debug, thiserror::Error)]
pub enum LandingError {
    #[error("i/o error while storing the flow: {0}")]
    Io(#[from] io::Error),
}

/// Name endings of uploads still in progress (any case): a file named
/// so, or a dot name, is never taken — by a drop zone, an SFTP poll, or
/// reconciliation counting what is waiting. One list for all three.
pub const PARTIAL_SUFFIXES: &[&str] = &[".part", ".tmp", ".filepart", ".partial", ".crdownload"];

/// Whether a file name marks a partial upload that must not be taken.
pub fn is_partial_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with('.') || PARTIAL_SUFFIXES.iter().any(|s| lower.ends_with(s))
}

/// Path of a stored flow with the given hash: `store/ab/abcdef...`.
pub fn stored_path(store: &Path, sha256: &str) -> PathBuf {
    let fanout = sha256.get(..2).unwrap_or("xx");
    store.join(fanout).join(sha256)
}

/// Copy `reader` into the store, hashing and fsyncing, and return where it is.
/// Past `max_bytes` the bytes are no longer kept (the temporary file is
/// removed) but still hashed to the end, and the result is not `complete`.
pub fn land(reader: &mut dyn Read, store: &Path, max_bytes: u64) -> Result<Stored, LandingError> {
    let stored = land_with(reader, store, max_bytes, Durability::Fsynced)?;
    if stored.complete {
        sync_dir(stored.path.parent().expect("stored path has a parent"))?;
    }
    Ok(stored)
}

/// [`land`], but for the fsync of the folder the file was renamed into
/// (`stored.path`'s parent): the caller must [`sync_dir`] it before it
/// relies on the flow (registers it, answers for it). The file itself is
/// fsynced. The partner API lands concurrent deposits so and syncs each
/// folder once for the group it commits together.
pub fn land_unsynced_folder(
    reader: &mut dyn Read,
    store: &Path,
    max_bytes: u64,
) -> Result<Stored, LandingError> {
    land_with(reader, store, max_bytes, Durability::Fsynced)
}

/// [`land`] with nothing fsynced, neither the file nor its folder: the
/// caller must [`sync_store`] after it (once for every file landed so)
/// before it relies on the flow.
pub fn land_unsynced(
    reader: &mut dyn Read,
    store: &Path,
    max_bytes: u64,
) -> Result<Stored, LandingError> {
    land_with(reader, store, max_bytes, Durability::Unsynced)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// The file fsynced before its rename.
    Fsynced,
    /// Made durable later by the caller ([`sync_store`]).
    Unsynced,
}

fn land_with(
    reader: &mut dyn Read,
    store: &Path,
    max_bytes: u64,
    durability: Durability,
) -> Result<Stored, LandingError> {
    create_private_dir(store)?;
    let temp_path = store.join(format!("{TEMP_PREFIX}{}", unique_suffix()));
    let result = copy_hashing(
        reader,
        &temp_path,
        max_bytes,
        durability == Durability::Fsynced,
    );
    let (sha256, size, complete) = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = fs::remove_file(&temp_path);
            return Err(e);
        }
    };
    let final_path = stored_path(store, &sha256);
    if !complete {
        fs::remove_file(&temp_path)?;
        return Ok(Stored {
            sha256,
            size,
            path: final_path,
            complete,
        });
    }
    let parent = final_path.parent().expect("stored path has a parent");
    create_private_dir(parent)?;
    let keep_existing = match durability {
        // An fsynced copy replaces whatever is there (the same bytes, or
        // an unsynced landing's that a crash left incomplete): the file
        // under the hash is then durable once the folder is synced.
        Durability::Fsynced => false,
        // Never replace a durable file by an unsynced one: keep the first
        // copy when its bytes are right (if it is itself still unsynced,
        // the caller's `sync_store` makes it durable with this one).
        Durability::Unsynced => final_path.exists() && hash_of(&final_path)? == sha256,
    };
    if keep_existing {
        fs::remove_file(&temp_path)?;
    } else {
        fs::rename(&temp_path, &final_path)?;
    }
    Ok(Stored {
        sha256,
        size,
        path: final_path,
        complete,
    })
}

/// Land a local file (used by the drop zone and `quai ingest`).
pub fn land_file(source: &Path, store: &Path, max_bytes: u64) -> Result<Stored, LandingError> {
    let mut file = File::open(source)?;
    land(&mut file, store, max_bytes)
}

/// Remove temporary files left by a crash in the middle of a landing.
pub fn sweep_temporaries(store: &Path) -> io::Result<usize> {
    let mut removed = 0;
    let entries = match fs::read_dir(store) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The SHA-256 of a stored file's bytes (in hex).
fn hash_of(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

fn copy_hashing(
    reader: &mut dyn Read,
    temp_path: &Path,
    max_bytes: u64,
    fsync: bool,
) -> Result<(String, u64, bool), LandingError> {
    // Raw flows are partners' data: readable by quai's user only.
    let mut out = {
        use std::os::unix::fs::OpenOptionsExt;
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(temp_path)?
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size: u64 = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        size += n as u64;
        hasher.update(&buf[..n]);
        if size <= max_bytes {
            out.write_all(&buf[..n])?;
        }
    }
    if fsync && size <= max_bytes {
        out.sync_all()?;
    }
    Ok((hex::encode(hasher.finalize()), size, size <= max_bytes))
}

/// Create a folder (and its parents) readable by quai's user only.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// fsync a directory so a rename inside it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Make everything written to the store's file system durable: the files
/// [`land_unsynced`] wrote and the renames into their folders. One
/// `syncfs(2)` writes every dirty file and folder of the file system out
/// and waits for them; the fsync of `store` after it flushes the disk's
/// cache once more, after those writes completed (`syncfs` on ext4 without
/// a journal issues its flush before the last metadata writes finish).
/// `store` is an open handle on the store folder, kept open by the caller
/// so that a write-back error since it was opened is reported here.
pub fn sync_store(store: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs only reads the descriptor, which `store` keeps open.
    if unsafe { libc::syncfs(store.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    store.sync_all()
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{}-{}", std::process::id(), nanos, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lands_under_hash_and_dedups() {
        let dir = tempfile::tempdir().unwrap();
        let a = land(&mut &b"hello"[..], dir.path(), 100).unwrap();
        assert_eq!(
            a.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(a.size, 5);
        assert_eq!(fs::read(&a.path).unwrap(), b"hello");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&a.path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let b = land(&mut &b"hello"[..], dir.path(), 100).unwrap();
        assert_eq!(a, b);
        assert_eq!(sweep_temporaries(dir.path()).unwrap(), 0);
    }

    #[test]
    fn an_incomplete_copy_under_the_hash_is_never_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path();
        // Unsynced, then durable for the store's file system at once.
        let a = land_unsynced(&mut &b"hello"[..], store, 100).unwrap();
        sync_store(&File::open(store).unwrap()).unwrap();
        assert_eq!(fs::read(&a.path).unwrap(), b"hello");
        // The same bytes again: the first copy is kept (same inode).
        use std::os::unix::fs::MetadataExt;
        let inode = fs::metadata(&a.path).unwrap().ino();
        let again = land_unsynced(&mut &b"hello"[..], store, 100).unwrap();
        assert_eq!(again, a);
        assert_eq!(fs::metadata(&a.path).unwrap().ino(), inode);
        // What a crash before the sync may leave: the name, not the bytes.
        fs::write(&a.path, b"").unwrap();
        land_unsynced(&mut &b"hello"[..], store, 100).unwrap();
        assert_eq!(fs::read(&a.path).unwrap(), b"hello");
        fs::write(&a.path, b"hel").unwrap();
        land(&mut &b"hello"[..], store, 100).unwrap();
        assert_eq!(fs::read(&a.path).unwrap(), b"hello");
        assert_eq!(sweep_temporaries(store).unwrap(), 0);
    }

    #[test]
    fn refuses_oversized_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let stored = land(&mut &[0u8; 1000][..], dir.path(), 999).unwrap();
        assert!(!stored.complete);
        assert_eq!(stored.size, 1000);
        assert!(!stored.path.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
