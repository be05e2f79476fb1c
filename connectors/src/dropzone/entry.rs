//! Drop-zone entries reached without ever following a link.
//!
//! A drop zone is written by partners, so every name in it may be a symbolic
//! link (to `/etc/passwd`, to another partner's folder), a FIFO that blocks
//! whoever opens it, a device, a socket or a directory. Everything here works
//! on directory descriptors opened with `O_NOFOLLOW` and on names inside them
//! (`*at` calls), never on paths that the kernel would resolve through links:
//! an entry's type is read with `fstatat(AT_SYMLINK_NOFOLLOW)`, a file is
//! opened with `O_NOFOLLOW | O_NONBLOCK` (a FIFO swapped in at the last moment
//! neither blocks nor is read) and its descriptor is checked again with
//! `fstat`, and renames never replace (`renameat2(RENAME_NOREPLACE)`, or
//! link + unlink where the file system lacks it).

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// What an entry is, read without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Regular,
    Directory,
    Link,
    Fifo,
    Socket,
    Device,
    Other,
}

impl Kind {
    fn of(mode: libc::mode_t) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFREG => Kind::Regular,
            libc::S_IFDIR => Kind::Directory,
            libc::S_IFLNK => Kind::Link,
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFSOCK => Kind::Socket,
            libc::S_IFCHR | libc::S_IFBLK => Kind::Device,
            _ => Kind::Other,
        }
    }
}

/// The parts of `stat` the drop zone uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub kind: Kind,
    pub nlink: u64,
    pub size: u64,
    pub ino: u64,
    pub dev: u64,
    /// mtime in nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// ctime in seconds since the epoch.
    pub ctime: i64,
}

impl Stat {
    // libc's field types differ between targets: the casts are for them.
    #[allow(clippy::unnecessary_cast)]
    fn from(st: &libc::stat) -> Stat {
        Stat {
            kind: Kind::of(st.st_mode),
            nlink: st.st_nlink as u64,
            size: st.st_size as u64,
            ino: st.st_ino as u64,
            dev: st.st_dev as u64,
            mtime_ns: st.st_mtime as i128 * 1_000_000_000 + st.st_mtime_nsec as i128,
            ctime: st.st_ctime as i64,
        }
    }
}

fn cstr(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))
}

/// A name directly inside a directory: no `/`, not `.` or `..`, not empty.
fn entry_name(name: &OsStr) -> io::Result<CString> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a plain entry name",
        ));
    }
    cstr(b)
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// An open directory, the base of every `*at` call.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    /// For logs and for listing (through `/proc/self/fd`).
    pub path: PathBuf,
}

impl Dir {
    /// Opens a directory. With `follow_last = false` the last component must
    /// not be a link (`O_NOFOLLOW`): ELOOP or ENOTDIR then.
    pub fn open(path: &Path, follow_last: bool) -> io::Result<Dir> {
        let c = cstr(path.as_os_str().as_bytes())?;
        let mut flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
        if !follow_last {
            flags |= libc::O_NOFOLLOW;
        }
        // SAFETY: a valid NUL-terminated path; the descriptor is owned below.
        let fd = check(unsafe { libc::open(c.as_ptr(), flags) })?;
        Ok(Dir {
            // SAFETY: `fd` was just opened and is owned by nobody else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: path.to_path_buf(),
        })
    }

    /// Opens the sub-directory `name`, which must not be a link.
    pub fn open_dir(&self, name: &OsStr) -> io::Result<Dir> {
        let c = entry_name(name)?;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW;
        // SAFETY: valid descriptor and NUL-terminated name.
        let fd = check(unsafe { libc::openat(self.fd.as_raw_fd(), c.as_ptr(), flags) })?;
        Ok(Dir {
            // SAFETY: just opened, owned here only.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: self.path.join(name),
        })
    }

    /// The entry's type and size, not following it.
    pub fn stat(&self, name: &OsStr) -> io::Result<Stat> {
        let c = entry_name(name)?;
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: valid descriptor, name and out pointer.
        check(unsafe {
            libc::fstatat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                st.as_mut_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })?;
        // SAFETY: fstatat succeeded, so `st` is initialised.
        Ok(Stat::from(unsafe { &st.assume_init() }))
    }

    /// Opens `name` for reading without following a link and without
    /// blocking (a FIFO opens at once and is then refused), and returns the
    /// descriptor's own `fstat`: the caller checks it is a regular file.
    pub fn open_file(&self, name: &OsStr) -> io::Result<(File, Stat)> {
        let c = entry_name(name)?;
        let flags =
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
        // SAFETY: valid descriptor and NUL-terminated name.
        let fd = check(unsafe { libc::openat(self.fd.as_raw_fd(), c.as_ptr(), flags) })?;
        // SAFETY: just opened, owned by the File only.
        let file = unsafe { File::from_raw_fd(fd) };
        let stat = fstat(&file)?;
        if stat.kind == Kind::Regular {
            // Reads of a regular file never block anyway; clear the flag so
            // the descriptor behaves as an ordinary one.
            // SAFETY: valid descriptor.
            unsafe {
                let fl = libc::fcntl(fd, libc::F_GETFL);
                if fl >= 0 {
                    libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK);
                }
            }
        }
        Ok((file, stat))
    }

    /// Creates `name` exclusively (never an existing file, never through a
    /// link), readable by its owner only.
    pub fn create_new(&self, name: &OsStr) -> io::Result<File> {
        let c = entry_name(name)?;
        let flags = libc::O_WRONLY
            | libc::O_CREAT
            | libc::O_EXCL
            | libc::O_NOFOLLOW
            | libc::O_NOCTTY
            | libc::O_CLOEXEC;
        // SAFETY: valid descriptor and name; mode passed as the variadic arg.
        let fd = check(unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                flags,
                0o600 as libc::c_uint,
            )
        })?;
        // SAFETY: just opened, owned by the File only.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// Creates the sub-directory `name` (an existing one is fine), then
    /// opens it without following a link.
    pub fn ensure_dir(&self, name: &OsStr, mode: u32) -> io::Result<Dir> {
        let c = entry_name(name)?;
        // SAFETY: valid descriptor and name.
        let r = unsafe { libc::mkdirat(self.fd.as_raw_fd(), c.as_ptr(), mode as libc::mode_t) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(e);
            }
        }
        self.open_dir(name)
    }

    /// Renames `from` (in this directory) to `to` in `dest`, never replacing
    /// an existing `to` (AlreadyExists then).
    pub fn rename_noreplace(&self, from: &OsStr, dest: &Dir, to: &OsStr) -> io::Result<()> {
        let (f, t) = (entry_name(from)?, entry_name(to)?);
        // SAFETY: valid descriptors and names.
        let r = unsafe {
            libc::renameat2(
                self.fd.as_raw_fd(),
                f.as_ptr(),
                dest.fd.as_raw_fd(),
                t.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            // The file system (or an old kernel) has no RENAME_NOREPLACE:
            // a hard link fails on an existing name just as well.
            Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => {
                // SAFETY: valid descriptors and names; flags 0 = the link
                // itself, never its target.
                check(unsafe {
                    libc::linkat(
                        self.fd.as_raw_fd(),
                        f.as_ptr(),
                        dest.fd.as_raw_fd(),
                        t.as_ptr(),
                        0,
                    )
                })?;
                self.unlink(from)
            }
            _ => Err(e),
        }
    }

    /// Removes the entry `name` (not a directory).
    pub fn unlink(&self, name: &OsStr) -> io::Result<()> {
        let c = entry_name(name)?;
        // SAFETY: valid descriptor and name.
        check(unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) }).map(|_| ())
    }

    /// fsync the directory, so renames in it survive a crash.
    pub fn sync(&self) -> io::Result<()> {
        // SAFETY: valid descriptor.
        check(unsafe { libc::fsync(self.fd.as_raw_fd()) }).map(|_| ())
    }

    /// The names in this very directory (the one the descriptor holds,
    /// whatever its path now points to), at most `max`.
    pub fn names(&self, max: usize) -> io::Result<Vec<std::ffi::OsString>> {
        let proc = PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()));
        let mut out = Vec::new();
        for entry in std::fs::read_dir(proc)? {
            if out.len() >= max {
                break;
            }
            if let Ok(e) = entry {
                out.push(e.file_name());
            }
        }
        Ok(out)
    }
}

fn fstat_fd(fd: libc::c_int) -> io::Result<Stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: valid descriptor and out pointer.
    check(unsafe { libc::fstat(fd, st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded.
    Ok(Stat::from(unsafe { &st.assume_init() }))
}

/// `fstat` of an open file.
pub fn fstat(file: &File) -> io::Result<Stat> {
    fstat_fd(file.as_raw_fd())
}

/// Is this error "the last component was a link" (ELOOP from `O_NOFOLLOW`)?
pub fn is_link_error(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

/// Is this error "not a directory" (ENOTDIR)?
pub fn is_not_dir_error(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOTDIR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_fifos_and_renames() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), b"x").unwrap();
        symlink("/etc/passwd", t.path().join("l")).unwrap();
        let d = Dir::open(t.path(), false).unwrap();
        assert_eq!(d.stat(OsStr::new("f")).unwrap().kind, Kind::Regular);
        assert_eq!(d.stat(OsStr::new("l")).unwrap().kind, Kind::Link);
        assert!(is_link_error(&d.open_file(OsStr::new("l")).unwrap_err()));
        let fifo = cstr(t.path().join("p").as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        // Opens at once (no writer), and is seen for what it is.
        let (_, st) = d.open_file(OsStr::new("p")).unwrap();
        assert_eq!(st.kind, Kind::Fifo);
        std::fs::write(t.path().join("g"), b"y").unwrap();
        let e = d
            .rename_noreplace(OsStr::new("f"), &d, OsStr::new("g"))
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(t.path().join("g")).unwrap(), b"y");
        d.rename_noreplace(OsStr::new("f"), &d, OsStr::new("h"))
            .unwrap();
        assert_eq!(std::fs::read(t.path().join("h")).unwrap(), b"x");
        symlink(t.path(), t.path().join("dl")).unwrap();
        // O_DIRECTORY | O_NOFOLLOW on a link: ENOTDIR on Linux.
        let e = d.open_dir(OsStr::new("dl")).unwrap_err();
        assert!(is_link_error(&e) || is_not_dir_error(&e), "{e}");
        assert!(d.create_new(OsStr::new("l")).is_err());
        assert_eq!(std::fs::read(t.path().join("g")).unwrap(), b"y");
    }
}
