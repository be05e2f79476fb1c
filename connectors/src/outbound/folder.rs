//! A local outbox folder: the partner (or its SFTP chroot, or a sync tool)
//! reads what quai publishes there.
//!
//! The folder is one a partner can write to, so every write assumes the
//! partner is hostile (issue 14, class 2: "writes never follow links and
//! never overwrite"):
//! - **The folder itself** is opened with `O_DIRECTORY | O_NOFOLLOW`; a
//!   symbolic link or a non-directory at its path is refused with an error
//!   naming the path. Everything after that goes through the opened
//!   descriptor (`openat`, `renameat2`, `linkat`, `unlinkat`, `fstatat`), so
//!   swapping the folder for a link half-way changes nothing.
//! - **The temporary** is created in the destination folder itself (so the
//!   final step is a rename within one file system, also when the outbox
//!   lies on another file system than `$QUAI_HOME`), exclusively and without
//!   following links (`O_CREAT | O_EXCL | O_NOFOLLOW`, mode 0640), under an
//!   unpredictable name (`.quai-tmp-<128 random bits>.part`): a link planted
//!   at a guessed name makes the create fail and another name is drawn; it is
//!   never written through.
//! - **The staged file is copied** into it, the copy fsynced, then renamed
//!   to the final name *without replacing* (`renameat2(RENAME_NOREPLACE)`;
//!   where the file system does not support it, `linkat` then `unlinkat`,
//!   which cannot replace either), and the folder is fsynced.
//! - **Idempotent on the name.** When the name is already taken, the entry
//!   is opened without following links and compared with the staged bytes:
//!   a regular file with the same bytes is success (a crash between the
//!   publish and the spool's record of it); anything else (other bytes, a
//!   link, a FIFO, a folder) is a permanent failure and is left alone. Two
//!   concurrent sends of one name thus deliver one file.
//! - **Crash leftovers are recognisable**: only temporaries carry the
//!   `.quai-tmp-` prefix (a parcel may not be named so), and
//!   [`FolderOutbox::clean_temporaries`] removes the stale ones quai owns.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{check_name, Parcel, SendFailure, Sent};

/// Prefix of every temporary quai creates in an outbox.
pub const TEMP_PREFIX: &str = ".quai-tmp-";
/// Suffix of the temporaries (pickup tools skip `.part` names).
pub const TEMP_SUFFIX: &str = ".part";
/// Mode of published files (before the umask is ignored: set with fchmod).
pub const FILE_MODE: u32 = 0o640;

/// Is this the name of a temporary quai creates in an outbox?
pub fn is_temporary_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
}

fn temp_name() -> String {
    format!(
        "{TEMP_PREFIX}{}{TEMP_SUFFIX}",
        uuid::Uuid::new_v4().simple()
    )
}

/// Settings of a local outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderOutboxConfig {
    /// The outbox folder. Its last component must be a real folder, not a
    /// link (the components above it are the operator's and may be links).
    pub dir: PathBuf,
    /// Create the folder (and its parents) when it does not exist.
    pub create_missing: bool,
}

/// A local outbox folder (see the module documentation).
#[derive(Debug, Clone)]
pub struct FolderOutbox {
    dir: PathBuf,
    create_missing: bool,
}

/// How the final name is taken (the fallback is forced in tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publish {
    /// `renameat2(RENAME_NOREPLACE)`, else link + unlink.
    Auto,
    /// link + unlink only.
    #[cfg_attr(not(test), allow(dead_code))]
    LinkOnly,
}

/// The opened outbox folder.
struct Dir {
    file: File,
    path: PathBuf,
}

/// What holds a taken name.
enum Existing {
    /// A regular file with the staged bytes.
    Same,
    /// Something else, and why it is not ours.
    Other(String),
}

fn cstring(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

impl Dir {
    fn open(path: &Path, create_missing: bool) -> Result<Dir, SendFailure> {
        let shown = path.display().to_string();
        let refuse = |message: String| SendFailure {
            destination: shown.clone(),
            message,
            transient: false,
        };
        let mut created = false;
        loop {
            let opened = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(path);
            let err = match opened {
                Ok(file) => {
                    return Ok(Dir {
                        file,
                        path: path.to_path_buf(),
                    })
                }
                Err(e) => e,
            };
            match err.raw_os_error() {
                Some(libc::ENOENT) if create_missing && !created => {
                    created = true;
                    if let Err(e) = std::fs::create_dir_all(path) {
                        if e.kind() != io::ErrorKind::AlreadyExists {
                            return Err(SendFailure {
                                destination: shown.clone(),
                                message: format!("cannot create the outbox folder {shown}: {e}"),
                                transient: true,
                            });
                        }
                    }
                }
                Some(libc::ELOOP) | Some(libc::ENOTDIR) => {
                    return Err(match std::fs::symlink_metadata(path) {
                        Ok(m) if m.file_type().is_symlink() => refuse(format!(
                            "the outbox {shown} is a symbolic link: refused (an outbox must be \
                             a real folder; quai never writes through a link)"
                        )),
                        Ok(m) if !m.is_dir() => {
                            refuse(format!("the outbox {shown} is not a folder: refused"))
                        }
                        _ => refuse(format!("cannot open the outbox folder {shown}: {err}")),
                    });
                }
                Some(libc::ENOENT) => {
                    return Err(SendFailure {
                        destination: shown.clone(),
                        message: format!("the outbox folder {shown} does not exist"),
                        transient: true,
                    })
                }
                _ => {
                    return Err(SendFailure {
                        destination: shown.clone(),
                        message: format!("cannot open the outbox folder {shown}: {err}"),
                        transient: true,
                    })
                }
            }
        }
    }

    fn fd(&self) -> libc::c_int {
        self.file.as_raw_fd()
    }

    /// `openat` relative to the folder; never follows a link at `name`.
    fn open_at(&self, name: &str, flags: libc::c_int, mode: libc::mode_t) -> io::Result<File> {
        let c = cstring(name)?;
        let fd = cvt(unsafe {
            libc::openat(
                self.fd(),
                c.as_ptr(),
                flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        })?;
        // SAFETY: a fresh descriptor we own.
        Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// `lstat` of an entry (None when there is none).
    /// A new file under an unpredictable temporary name, created
    /// exclusively (a name already taken, by a planted link or file, draws
    /// another); `None` when 16 names in a row were taken.
    fn create_temporary(&self) -> io::Result<Option<(String, File)>> {
        for _ in 0..16 {
            let name = temp_name();
            match self.open_at(
                &name,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                FILE_MODE as libc::mode_t,
            ) {
                Ok(f) => return Ok(Some((name, f))),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    fn stat_at(&self, name: &str) -> io::Result<Option<libc::stat>> {
        let c = cstring(name)?;
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::fstatat(self.fd(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        if r == 0 {
            return Ok(Some(st));
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOENT) {
            Ok(None)
        } else {
            Err(e)
        }
    }

    fn unlink_at(&self, name: &str) -> io::Result<()> {
        let c = cstring(name)?;
        cvt(unsafe { libc::unlinkat(self.fd(), c.as_ptr(), 0) }).map(|_| ())
    }

    fn link_at(&self, from: &str, to: &str) -> io::Result<()> {
        let (f, t) = (cstring(from)?, cstring(to)?);
        // Flags 0: a link at `from` would be linked itself, never followed
        // (and `from` is our own temporary anyway).
        cvt(unsafe { libc::linkat(self.fd(), f.as_ptr(), self.fd(), t.as_ptr(), 0) }).map(|_| ())
    }

    /// Gives `from` the name `to` unless `to` exists (then `EEXIST`).
    fn rename_noreplace(&self, from: &str, to: &str, how: Publish) -> io::Result<()> {
        if how == Publish::Auto {
            match self.renameat2_noreplace(from, to) {
                Ok(()) => return Ok(()),
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP)
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        // Fallback: a hard link cannot replace an entry either. The
        // temporary's second name is removed after; if that fails, it is a
        // recognisable leftover, never a second delivery.
        self.link_at(from, to)?;
        if let Err(e) = self.unlink_at(from) {
            tracing::warn!(target: "quai::outbound", dir = %self.path.display(), temp = from,
                "published, but the temporary could not be removed: {e}");
        }
        Ok(())
    }

    #[cfg(target_os = "linux")]
    fn renameat2_noreplace(&self, from: &str, to: &str) -> io::Result<()> {
        let (f, t) = (cstring(from)?, cstring(to)?);
        // The raw system call: glibc's wrapper is younger than some systems.
        let r = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                self.fd() as libc::c_long,
                f.as_ptr(),
                self.fd() as libc::c_long,
                t.as_ptr(),
                libc::RENAME_NOREPLACE as libc::c_long,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn renameat2_noreplace(&self, _from: &str, _to: &str) -> io::Result<()> {
        Err(io::Error::from_raw_os_error(libc::ENOSYS))
    }

    fn sync(&self) -> io::Result<()> {
        self.file.sync_all()
    }

    /// What holds `name`, compared with `staged` (opened without following
    /// a link and without blocking on a FIFO).
    fn existing(&self, name: &str, staged: &Path) -> io::Result<Option<Existing>> {
        let Some(st) = self.stat_at(name)? else {
            return Ok(None);
        };
        let kind = st.st_mode & libc::S_IFMT;
        if kind == libc::S_IFLNK {
            return Ok(Some(Existing::Other(
                "a symbolic link holds the name".into(),
            )));
        }
        if kind != libc::S_IFREG {
            return Ok(Some(Existing::Other(
                "something other than a regular file holds the name".into(),
            )));
        }
        let mut theirs = match self.open_at(name, libc::O_RDONLY | libc::O_NONBLOCK, 0) {
            Ok(f) => f,
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Ok(Some(Existing::Other(
                    "a symbolic link holds the name".into(),
                )))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(e),
        };
        let meta = theirs.metadata()?;
        if !meta.is_file() {
            return Ok(Some(Existing::Other(
                "something other than a regular file holds the name".into(),
            )));
        }
        let mut ours = File::open(staged)?;
        if meta.len() != ours.metadata()?.len() {
            return Ok(Some(Existing::Other(format!(
                "a different file ({} bytes) already has the name",
                meta.len()
            ))));
        }
        if same_bytes(&mut ours, &mut theirs)? {
            Ok(Some(Existing::Same))
        } else {
            Ok(Some(Existing::Other(
                "a different file of the same size already has the name".into(),
            )))
        }
    }
}

fn same_bytes(a: &mut File, b: &mut File) -> io::Result<bool> {
    let (mut x, mut y) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = read_full(a, &mut x)?;
        let m = read_full(b, &mut y)?;
        if n != m || x[..n] != y[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Threads of a batch's durability pass: concurrent fsyncs share the file
/// system's journal commits (ext4 on this project's bench machine: one
/// thread 1,600 fsyncs/s, 32 threads 13,000/s).
const SYNC_THREADS: usize = 32;

/// `sync_all` of every file, from up to [`SYNC_THREADS`] threads; one
/// result per file, in order.
fn sync_all_parallel(files: Vec<&File>) -> Vec<io::Result<()>> {
    if files.len() <= 1 {
        return files.into_iter().map(File::sync_all).collect();
    }
    let per_thread = files.len().div_ceil(SYNC_THREADS);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(per_thread)
            .map(|chunk| {
                let n = chunk.len();
                let h = scope.spawn(move || chunk.iter().map(|f| f.sync_all()).collect::<Vec<_>>());
                (n, h)
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(n, h)| {
                h.join().unwrap_or_else(|_| {
                    (0..n)
                        .map(|_| Err(io::Error::other("fsync thread panicked")))
                        .collect()
                })
            })
            .collect()
    })
}

/// A parcel's temporary, or what already holds its name.
enum Written {
    Already(Existing),
    Temporary(String, File),
}

/// Removes the temporary unless disarmed (any early return).
struct TempGuard<'a> {
    dir: &'a Dir,
    name: Option<String>,
}

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        if let Some(n) = self.name.take() {
            let _ = self.dir.unlink_at(&n);
        }
    }
}

impl FolderOutbox {
    pub fn new(config: FolderOutboxConfig) -> FolderOutbox {
        FolderOutbox {
            dir: config.dir,
            create_missing: config.create_missing,
        }
    }

    /// The outbox folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Publishes one parcel (blocking; [`FolderOutbox::send`] runs it on a
    /// blocking thread). See the module documentation for the guarantees.
    pub fn publish(&self, parcel: &Parcel) -> Result<Sent, SendFailure> {
        self.publish_with(parcel, Publish::Auto)
    }

    fn publish_with(&self, parcel: &Parcel, how: Publish) -> Result<Sent, SendFailure> {
        let target = self.dir.join(&parcel.name);
        let shown = target.display().to_string();
        let fail = |message: String, transient: bool| SendFailure {
            destination: shown.clone(),
            message,
            transient,
        };
        check_name(&parcel.name).map_err(|m| fail(format!("{shown}: {m}"), false))?;
        if parcel.name.starts_with(TEMP_PREFIX) {
            return Err(fail(
                format!("{shown}: the name prefix {TEMP_PREFIX} is reserved for temporaries"),
                false,
            ));
        }
        let dir = Dir::open(&self.dir, self.create_missing)?;
        let io_fail = |what: &str, e: io::Error| fail(format!("{what} {shown}: {e}"), true);
        let already = |dir: &Dir, existing: Existing| -> Result<Sent, SendFailure> {
            match existing {
                Existing::Same => {
                    // The earlier publish may have crashed before its fsync.
                    dir.sync()
                        .map_err(|e| io_fail("cannot sync the folder of", e))?;
                    tracing::info!(target: "quai::outbound", destination = %shown,
                        "already in the outbox with the same bytes; not written again");
                    Ok(Sent {
                        destination: shown.clone(),
                        receipt: None,
                    })
                }
                Existing::Other(why) => Err(fail(
                    format!("{shown}: {why}; it is never overwritten"),
                    false,
                )),
            }
        };

        if let Some(existing) = dir
            .existing(&parcel.name, &parcel.staged)
            .map_err(|e| io_fail("cannot check", e))?
        {
            return already(&dir, existing);
        }
        let mut staged = File::open(&parcel.staged).map_err(|e| {
            fail(
                format!(
                    "cannot read the staged file {} for {shown}: {e}",
                    parcel.staged.display()
                ),
                true,
            )
        })?;

        let mut guard = TempGuard {
            dir: &dir,
            name: None,
        };
        let (temp_name, mut out) = dir
            .create_temporary()
            .map_err(|e| io_fail("cannot create a temporary for", e))?
            .ok_or_else(|| fail(format!("{shown}: no free temporary name"), true))?;
        guard.name = Some(temp_name.clone());
        io::copy(&mut staged, &mut out).map_err(|e| io_fail("cannot write", e))?;
        out.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
            .map_err(|e| io_fail("cannot set the mode of", e))?;
        out.sync_all().map_err(|e| io_fail("cannot sync", e))?;
        drop(out);

        match dir.rename_noreplace(&temp_name, &parcel.name, how) {
            Ok(()) => {
                guard.name = None;
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                // Taken meanwhile (a concurrent send, or the partner).
                drop(guard);
                let existing = dir
                    .existing(&parcel.name, &parcel.staged)
                    .map_err(|e| io_fail("cannot check", e))?
                    .unwrap_or_else(|| Existing::Other("the name is taken".into()));
                return already(&dir, existing);
            }
            Err(e) => return Err(io_fail("cannot publish", e)),
        }
        dir.sync()
            .map_err(|e| io_fail("cannot sync the folder of", e))?;
        Ok(Sent {
            destination: shown,
            receipt: None,
        })
    }

    /// Removes the temporaries quai left in the outbox (a crash between
    /// create and rename): entries named `.quai-tmp-*.part`, regular files
    /// owned by this user, last modified more than `older_than` ago (so a
    /// send in progress in another instance is left alone). Returns the
    /// names removed.
    // libc's `st_mtime` type differs between targets: the cast is for them.
    #[allow(clippy::unnecessary_cast)]
    pub fn clean_temporaries(&self, older_than: Duration) -> Result<Vec<String>, SendFailure> {
        let dir = Dir::open(&self.dir, false)?;
        let shown = self.dir.display().to_string();
        let fail = |e: io::Error| SendFailure {
            destination: shown.clone(),
            message: format!("cannot clean the outbox {shown}: {e}"),
            transient: true,
        };
        // The listing only proposes names; every check and removal goes
        // through the opened folder.
        let uid = unsafe { libc::geteuid() };
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64;
        let mut removed = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(fail)? {
            let entry = entry.map_err(fail)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !is_temporary_name(name) {
                continue;
            }
            let Some(st) = dir.stat_at(name).map_err(fail)? else {
                continue;
            };
            if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_uid != uid {
                continue;
            }
            if now - (st.st_mtime as i64) < older_than.as_secs() as i64 {
                continue;
            }
            match dir.unlink_at(name) {
                Ok(()) => removed.push(name.to_string()),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(fail(e)),
            }
        }
        if !removed.is_empty() {
            dir.sync().map_err(fail)?;
            tracing::info!(target: "quai::outbound", dir = %shown, removed = removed.len(),
                "removed temporaries left by an interrupted send");
        }
        Ok(removed)
    }
}

impl FolderOutbox {
    /// Publishes a batch of parcels with the guarantees of
    /// [`FolderOutbox::publish`] and one durability pass (blocking): every
    /// temporary is written first, then each one's data fsynced, then each
    /// renamed to its name without replacing, then the folder fsynced once.
    /// One result per parcel, in order; an `Ok` is durable (a failed
    /// folder fsync turns every `Ok` of the batch into a transient error).
    /// A name already holding the same bytes is `Ok`, as for one parcel.
    pub fn publish_batch(&self, parcels: &[Parcel]) -> Vec<Result<Sent, SendFailure>> {
        let dir = match Dir::open(&self.dir, self.create_missing) {
            Ok(d) => d,
            Err(e) => return parcels.iter().map(|_| Err(e.clone())).collect(),
        };
        let shown = |p: &Parcel| self.dir.join(&p.name).display().to_string();
        let fail = |p: &Parcel, message: String, transient: bool| SendFailure {
            destination: shown(p),
            message,
            transient,
        };
        let sent = |p: &Parcel| Sent {
            destination: shown(p),
            receipt: None,
        };
        let already = |p: &Parcel, existing: Existing| match existing {
            Existing::Same => {
                tracing::info!(target: "quai::outbound", destination = %shown(p),
                    "already in the outbox with the same bytes; not written again");
                Ok(sent(p))
            }
            Existing::Other(why) => Err(fail(
                p,
                format!("{}: {why}; it is never overwritten", shown(p)),
                false,
            )),
        };
        let mut out: Vec<Option<Result<Sent, SendFailure>>> =
            parcels.iter().map(|_| None).collect();
        // Temporaries written, by parcel index (removed unless published).
        let mut temps: Vec<(usize, String, File)> = Vec::new();
        for (i, p) in parcels.iter().enumerate() {
            match self.write_temporary(&dir, p) {
                Ok(Written::Already(existing)) => out[i] = Some(already(p, existing)),
                Ok(Written::Temporary(name, file)) => temps.push((i, name, file)),
                Err(e) => out[i] = Some(Err(e)),
            }
        }
        // The durability pass: each temporary's data, fsynced from several
        // threads at once so the file system commits them together.
        let syncs = sync_all_parallel(temps.iter().map(|(_, _, f)| f).collect());
        let mut synced: Vec<(usize, String)> = Vec::with_capacity(temps.len());
        for ((i, name, file), sync) in temps.into_iter().zip(syncs) {
            drop(file);
            match sync {
                Ok(()) => synced.push((i, name)),
                Err(e) => {
                    let _ = dir.unlink_at(&name);
                    let p = &parcels[i];
                    out[i] = Some(Err(fail(p, format!("cannot sync {}: {e}", shown(p)), true)));
                }
            }
        }
        for (i, temp) in synced {
            let p = &parcels[i];
            out[i] = Some(match dir.rename_noreplace(&temp, &p.name, Publish::Auto) {
                Ok(()) => Ok(sent(p)),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    let _ = dir.unlink_at(&temp);
                    match dir.existing(&p.name, &p.staged) {
                        Ok(existing) => already(
                            p,
                            existing.unwrap_or_else(|| Existing::Other("the name is taken".into())),
                        ),
                        Err(e) => Err(fail(p, format!("cannot check {}: {e}", shown(p)), true)),
                    }
                }
                Err(e) => {
                    let _ = dir.unlink_at(&temp);
                    Err(fail(p, format!("cannot publish {}: {e}", shown(p)), true))
                }
            });
        }
        let out: Vec<Result<Sent, SendFailure>> = out
            .into_iter()
            .map(|r| r.expect("every parcel has its result"))
            .collect();
        if out.iter().any(Result::is_ok) {
            if let Err(e) = dir.sync() {
                let why = format!("cannot sync the folder {}: {e}", self.dir.display());
                return out
                    .into_iter()
                    .zip(parcels)
                    .map(|(r, p)| r.and_then(|_| Err(fail(p, why.clone(), true))))
                    .collect();
            }
        }
        out
    }

    /// Checks a parcel's name and what holds it, then writes its
    /// temporary (exclusive, unpredictable name, mode 0640; not synced).
    fn write_temporary(&self, dir: &Dir, parcel: &Parcel) -> Result<Written, SendFailure> {
        let shown = self.dir.join(&parcel.name).display().to_string();
        let fail = |message: String, transient: bool| SendFailure {
            destination: shown.clone(),
            message,
            transient,
        };
        check_name(&parcel.name).map_err(|m| fail(format!("{shown}: {m}"), false))?;
        if parcel.name.starts_with(TEMP_PREFIX) {
            return Err(fail(
                format!("{shown}: the name prefix {TEMP_PREFIX} is reserved for temporaries"),
                false,
            ));
        }
        let io_fail = |what: &str, e: io::Error| fail(format!("{what} {shown}: {e}"), true);
        if let Some(existing) = dir
            .existing(&parcel.name, &parcel.staged)
            .map_err(|e| io_fail("cannot check", e))?
        {
            return Ok(Written::Already(existing));
        }
        let mut staged = File::open(&parcel.staged).map_err(|e| {
            fail(
                format!(
                    "cannot read the staged file {} for {shown}: {e}",
                    parcel.staged.display()
                ),
                true,
            )
        })?;
        let mut guard = TempGuard { dir, name: None };
        let (name, mut out) = dir
            .create_temporary()
            .map_err(|e| io_fail("cannot create a temporary for", e))?
            .ok_or_else(|| fail(format!("{shown}: no free temporary name"), true))?;
        guard.name = Some(name.clone());
        io::copy(&mut staged, &mut out).map_err(|e| io_fail("cannot write", e))?;
        out.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
            .map_err(|e| io_fail("cannot set the mode of", e))?;
        guard.name = None;
        Ok(Written::Temporary(name, out))
    }

    /// Opens the outbox for a batch rendered in place ([`InPlaceBatch`]).
    pub fn in_place_batch(&self) -> Result<InPlaceBatch, SendFailure> {
        Ok(InPlaceBatch {
            dir: Dir::open(&self.dir, self.create_missing)?,
            shown: self.dir.clone(),
        })
    }

    /// Publishes a batch on a blocking thread (see [`FolderOutbox::publish_batch`]).
    pub async fn send_batch(&self, parcels: &[Parcel]) -> Vec<Result<Sent, SendFailure>> {
        let (me, ps) = (self.clone(), parcels.to_vec());
        match tokio::task::spawn_blocking(move || me.publish_batch(&ps)).await {
            Ok(out) => out,
            Err(e) => parcels
                .iter()
                .map(|p| {
                    Err(SendFailure {
                        destination: self.dir.join(&p.name).display().to_string(),
                        message: format!("outbox writer task failed: {e}"),
                        transient: true,
                    })
                })
                .collect(),
        }
    }

    /// Publishes one parcel on a blocking thread (see [`FolderOutbox::publish`]).
    pub async fn send(&self, parcel: &Parcel) -> Result<Sent, SendFailure> {
        let (me, p) = (self.clone(), parcel.clone());
        tokio::task::spawn_blocking(move || me.publish(&p))
            .await
            .map_err(|e| SendFailure {
                destination: self.dir.join(&parcel.name).display().to_string(),
                message: format!("outbox writer task failed: {e}"),
                transient: true,
            })?
    }

    /// Where this outbox sends to, for logs.
    pub fn describe(&self) -> String {
        format!("outbox {}", self.dir.display())
    }
}

/// A batch rendered straight into the outbox (issue 15, "Scale"): each
/// file is written into its own exclusive temporary in the outbox folder
/// (unpredictable name, mode 0640), with no staged copy to create, copy and
/// unlink; then the batch is published as [`FolderOutbox::publish_batch`]
/// publishes: every temporary fsynced (from several threads at once), each
/// renamed to its name without replacing (a name the same bytes already
/// hold is delivered, and the temporary removed), the folder fsynced once.
/// A temporary left by a crash is removed by
/// [`FolderOutbox::clean_temporaries`].
pub struct InPlaceBatch {
    dir: Dir,
    shown: PathBuf,
}

/// One file of an [`InPlaceBatch`]: its name and its temporary's.
#[derive(Debug)]
pub struct InPlaceFile {
    name: String,
    temp: String,
}

impl InPlaceBatch {
    fn shown(&self, name: &str) -> String {
        self.shown.join(name).display().to_string()
    }

    /// An exclusive temporary for the file `name` (checked as a parcel
    /// name is): the file to render into, and a second handle on it that
    /// [`InPlaceBatch::publish`] syncs.
    pub fn temporary(&self, name: &str) -> Result<(InPlaceFile, File, File), SendFailure> {
        let shown = self.shown(name);
        let fail = |message: String, transient: bool| SendFailure {
            destination: shown.clone(),
            message,
            transient,
        };
        check_name(name).map_err(|m| fail(format!("{shown}: {m}"), false))?;
        if name.starts_with(TEMP_PREFIX) {
            return Err(fail(
                format!("{shown}: the name prefix {TEMP_PREFIX} is reserved for temporaries"),
                false,
            ));
        }
        let io_fail = |what: &str, e: io::Error| fail(format!("{what} {shown}: {e}"), true);
        let (temp, file) = self
            .dir
            .create_temporary()
            .map_err(|e| io_fail("cannot create a temporary for", e))?
            .ok_or_else(|| fail(format!("{shown}: no free temporary name"), true))?;
        let mut guard = TempGuard {
            dir: &self.dir,
            name: Some(temp.clone()),
        };
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
            .map_err(|e| io_fail("cannot set the mode of", e))?;
        let handle = file
            .try_clone()
            .map_err(|e| io_fail("cannot open the temporary of", e))?;
        guard.name = None;
        let entry = InPlaceFile {
            name: name.to_owned(),
            temp,
        };
        Ok((entry, file, handle))
    }

    /// Publishes the batch: per file, its handle when it was rendered
    /// whole, `None` when not (its temporary is removed, its result an
    /// error). One result per file, in order.
    pub fn publish(
        self,
        files: Vec<(InPlaceFile, Option<File>)>,
    ) -> Vec<Result<Sent, SendFailure>> {
        let fail = |name: &str, message: String, transient: bool| SendFailure {
            destination: self.shown(name),
            message,
            transient,
        };
        let sent = |name: &str| Sent {
            destination: self.shown(name),
            receipt: None,
        };
        let mut out: Vec<Option<Result<Sent, SendFailure>>> = files.iter().map(|_| None).collect();
        let (entries, handles): (Vec<InPlaceFile>, Vec<Option<File>>) = files.into_iter().unzip();
        let mut written: Vec<(usize, &InPlaceFile, File)> = Vec::new();
        for (i, (entry, handle)) in entries.iter().zip(handles).enumerate() {
            match handle {
                Some(h) => written.push((i, entry, h)),
                None => {
                    let _ = self.dir.unlink_at(&entry.temp);
                    out[i] = Some(Err(fail(&entry.name, "not rendered".into(), true)));
                }
            }
        }
        let syncs = sync_all_parallel(written.iter().map(|(_, _, f)| f).collect());
        for ((i, entry, file), sync) in written.into_iter().zip(syncs) {
            drop(file);
            let name = entry.name.as_str();
            out[i] = Some(match sync {
                Err(e) => {
                    let _ = self.dir.unlink_at(&entry.temp);
                    Err(fail(
                        name,
                        format!("cannot sync {}: {e}", self.shown(name)),
                        true,
                    ))
                }
                Ok(()) => match self.dir.rename_noreplace(&entry.temp, name, Publish::Auto) {
                    Ok(()) => Ok(sent(name)),
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                        let ours = self.shown.join(&entry.temp);
                        let result = match self.dir.existing(name, &ours) {
                            Ok(Some(Existing::Same)) => {
                                tracing::info!(target: "quai::outbound", destination = %self.shown(name),
                                    "already in the outbox with the same bytes; not written again");
                                Ok(sent(name))
                            }
                            Ok(Some(Existing::Other(why))) => Err(fail(
                                name,
                                format!("{}: {why}; it is never overwritten", self.shown(name)),
                                false,
                            )),
                            Ok(None) => Err(fail(
                                name,
                                format!("{}: the name is taken", self.shown(name)),
                                true,
                            )),
                            Err(e) => Err(fail(
                                name,
                                format!("cannot check {}: {e}", self.shown(name)),
                                true,
                            )),
                        };
                        let _ = self.dir.unlink_at(&entry.temp);
                        result
                    }
                    Err(e) => {
                        let _ = self.dir.unlink_at(&entry.temp);
                        Err(fail(
                            name,
                            format!("cannot publish {}: {e}", self.shown(name)),
                            true,
                        ))
                    }
                },
            });
        }
        let out: Vec<Result<Sent, SendFailure>> = out
            .into_iter()
            .map(|r| r.expect("every file has its result"))
            .collect();
        if out.iter().any(Result::is_ok) {
            if let Err(e) = self.dir.sync() {
                let why = format!("cannot sync the folder {}: {e}", self.shown.display());
                return out
                    .into_iter()
                    .zip(&entries)
                    .map(|(r, entry)| r.and_then(|_| Err(fail(&entry.name, why.clone(), true))))
                    .collect();
            }
        }
        out
    }
}

/// Writes `bytes` as `dir/name` with the outbox rules (used for `.eml`
/// files and AS2 send markers): exclusive temporary, fsync, rename without
/// replacing, fsync. Same bytes already there is Ok.
pub(crate) fn publish_bytes(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    staging: &Path,
) -> Result<Sent, SendFailure> {
    use std::io::Write;
    let staged = staging.join(temp_name());
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&staged)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    let result = write()
        .map_err(|e| SendFailure {
            destination: dir.join(name).display().to_string(),
            message: format!("cannot stage {}: {e}", staged.display()),
            transient: true,
        })
        .and_then(|()| {
            FolderOutbox::new(FolderOutboxConfig {
                dir: dir.to_path_buf(),
                create_missing: true,
            })
            .publish(&Parcel {
                name: name.to_string(),
                staged: staged.clone(),
                media_type: "application/octet-stream",
            })
        });
    let _ = std::fs::remove_file(&staged);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parcel(dir: &Path, name: &str, bytes: &[u8]) -> Parcel {
        let staged = dir.join(format!("staged-{name}"));
        std::fs::write(&staged, bytes).unwrap();
        Parcel {
            name: name.into(),
            staged,
            media_type: "application/xml",
        }
    }

    #[test]
    fn the_link_fallback_never_replaces() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        let o = FolderOutbox::new(FolderOutboxConfig {
            dir: out.clone(),
            create_missing: true,
        });
        let p = parcel(t.path(), "a.xml", b"one");
        o.publish_with(&p, Publish::LinkOnly).unwrap();
        assert_eq!(std::fs::read(out.join("a.xml")).unwrap(), b"one");
        // Same bytes again: Ok; other bytes: refused, not replaced.
        o.publish_with(&p, Publish::LinkOnly).unwrap();
        let q = parcel(t.path(), "a.xml", b"two");
        let err = o.publish_with(&q, Publish::LinkOnly).unwrap_err();
        assert!(!err.transient, "{err}");
        assert_eq!(std::fs::read(out.join("a.xml")).unwrap(), b"one");
        // No temporary left behind.
        let names: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["a.xml"]);
    }

    #[test]
    fn the_link_fallback_loses_a_race_without_replacing() {
        let t = tempfile::tempdir().unwrap();
        let dir = Dir::open(t.path(), false).unwrap();
        std::fs::write(t.path().join("x"), b"tmp").unwrap();
        std::fs::write(t.path().join("y"), b"theirs").unwrap();
        let e = dir
            .rename_noreplace("x", "y", Publish::LinkOnly)
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        let e = dir.rename_noreplace("x", "y", Publish::Auto).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        assert_eq!(std::fs::read(t.path().join("y")).unwrap(), b"theirs");
    }

    #[test]
    fn a_batch_is_published_once_and_never_replaces() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        let o = FolderOutbox::new(FolderOutboxConfig {
            dir: out.clone(),
            create_missing: true,
        });
        // Already there with the same bytes (a crash before the record).
        o.publish(&parcel(t.path(), "b.xml", b"two")).unwrap();
        std::fs::write(out.join("c.xml"), b"theirs").unwrap();
        std::os::unix::fs::symlink(t.path().join("elsewhere"), out.join("d.xml")).unwrap();
        let batch = [
            parcel(t.path(), "a.xml", b"one"),
            parcel(t.path(), "b.xml", b"two"),
            parcel(t.path(), "c.xml", b"mine"),
            parcel(t.path(), "d.xml", b"link"),
            parcel(t.path(), ".quai-tmp-x.part", b"reserved"),
        ];
        let results = o.publish_batch(&batch);
        assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
        for r in &results[2..] {
            assert!(!r.as_ref().unwrap_err().transient, "{r:?}");
        }
        assert_eq!(std::fs::read(out.join("a.xml")).unwrap(), b"one");
        assert_eq!(std::fs::read(out.join("c.xml")).unwrap(), b"theirs");
        assert!(
            !t.path().join("elsewhere").exists(),
            "written through a link"
        );
        let mut names: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["a.xml", "b.xml", "c.xml", "d.xml"],
            "no temporary left"
        );
        // The same batch again: the published ones are recognised.
        let again = o.publish_batch(&batch[..2]);
        assert!(again.iter().all(Result::is_ok), "{again:?}");
    }

    #[test]
    fn a_batch_rendered_in_place_is_published_once_and_never_replaces() {
        use std::io::Write;
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        let o = FolderOutbox::new(FolderOutboxConfig {
            dir: out.clone(),
            create_missing: true,
        });
        // Already there with the same bytes (a crash before the record),
        // someone else's file, a planted link.
        o.publish(&parcel(t.path(), "b.xml", b"two")).unwrap();
        std::fs::write(out.join("c.xml"), b"theirs").unwrap();
        std::os::unix::fs::symlink(t.path().join("elsewhere"), out.join("d.xml")).unwrap();
        let batch = o.in_place_batch().unwrap();
        assert!(!batch.temporary(".quai-tmp-x.part").unwrap_err().transient);
        assert!(!batch.temporary("../up.xml").unwrap_err().transient);
        let mut files = Vec::new();
        for (name, bytes, rendered) in [
            ("a.xml", &b"one"[..], true),
            ("b.xml", b"two", true),
            ("c.xml", b"mine", true),
            ("d.xml", b"link", true),
            ("e.xml", b"half", false),
        ] {
            let (entry, mut file, handle) = batch.temporary(name).unwrap();
            file.write_all(bytes).unwrap();
            drop(file);
            files.push((entry, rendered.then_some(handle)));
        }
        let results = batch.publish(files);
        assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
        for r in &results[2..4] {
            assert!(!r.as_ref().unwrap_err().transient, "{r:?}");
        }
        assert!(results[4].is_err(), "{results:?}");
        assert_eq!(std::fs::read(out.join("a.xml")).unwrap(), b"one");
        assert_eq!(std::fs::read(out.join("b.xml")).unwrap(), b"two");
        assert_eq!(std::fs::read(out.join("c.xml")).unwrap(), b"theirs");
        assert!(
            !t.path().join("elsewhere").exists(),
            "written through a link"
        );
        let mode = std::fs::metadata(out.join("a.xml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, FILE_MODE);
        let mut names: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["a.xml", "b.xml", "c.xml", "d.xml"],
            "no temporary left, nothing unrendered published"
        );
    }

    #[test]
    fn temporaries_are_recognisable() {
        let n = temp_name();
        assert!(is_temporary_name(&n), "{n}");
        assert_ne!(n, temp_name());
        assert!(!is_temporary_name("invoice.xml"));
        assert!(!is_temporary_name(".quai-tmp-x.xml"));
    }
}
