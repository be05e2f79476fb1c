//! One blocking SSH/SFTP connection (ssh2 / libssh2). Every call here blocks
//! and is bounded by the session timeout; the async side ([`super`]) runs
//! them on `spawn_blocking`.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh2::{ErrorCode, MethodType, Session, Sftp};

use super::known_hosts::{self, Verdict};
use super::{SftpError, SftpSource};

/// libssh2's "no more entries" from `readdir` (LIBSSH2_ERROR_FILE).
const LIBSSH2_ERROR_FILE: i32 = -16;

fn millis(d: Duration) -> u32 {
    // libssh2 reads 0 as "no timeout": never allow that.
    d.as_millis().clamp(1, u32::MAX as u128) as u32
}

/// A directory entry from the remote listing.
#[derive(Debug, Clone)]
pub(crate) struct RemoteEntry {
    /// File name as sent by the server (lossily decoded for display).
    pub name: String,
    /// Full remote path, byte-exact.
    pub path: PathBuf,
    pub size: u64,
    pub mtime: u64,
    pub is_file: bool,
    /// Why the entry is not a regular file (the listing has `lstat`
    /// semantics: a link is a link, never its target).
    pub not_regular: Option<crate::RefusalReason>,
}

/// The refusal reason of a remote entry that is not a regular file.
pub(crate) fn not_regular(stat: &ssh2::FileStat) -> Option<crate::RefusalReason> {
    use crate::RefusalReason as R;
    let Some(perm) = stat.perm else {
        return Some(R::NotRegular);
    };
    // S_IFMT bits as SFTP v3 carries them in `permissions`.
    match perm & 0o170000 {
        0o100000 => None,
        0o120000 => Some(R::Link),
        0o040000 => Some(R::Directory),
        0o010000 => Some(R::Fifo),
        0o140000 => Some(R::Socket),
        0o020000 | 0o060000 => Some(R::Device),
        _ => Some(R::NotRegular),
    }
}

/// Is this error the connection's (transport, session, timeout) rather than
/// one file's (SFTP status such as "no such file" or "permission denied")?
pub(crate) fn is_transport(e: &ssh2::Error) -> bool {
    matches!(e.code(), ErrorCode::Session(_))
}

pub(crate) struct Conn {
    // Field order matters: the SFTP channel closes before the session.
    pub sftp: Sftp,
    pub sess: Session,
    pub target: String,
    /// A handle on the session's socket, to cut a dead connection short.
    tcp: Option<TcpStream>,
}

impl Conn {
    /// TCP connect, handshake, strict host key check, authentication, SFTP.
    pub fn open(src: &SftpSource) -> Result<Conn, SftpError> {
        let target = src.label();
        let connect_err = |detail: String| SftpError::Connect {
            target: target.clone(),
            detail,
        };

        // Read known_hosts first: its key types steer the handshake.
        let known = match std::fs::read_to_string(&src.known_hosts) {
            Ok(c) => Ok(c),
            Err(e) if e.kind() == io::ErrorKind::NotFound && src.trust_on_first_use => {
                Ok(String::new())
            }
            Err(e) => Err(format!(
                "cannot read known_hosts {}: {e}",
                src.known_hosts.display()
            )),
        };

        let addrs: Vec<SocketAddr> = (src.host.as_str(), src.port)
            .to_socket_addrs()
            .map_err(|e| connect_err(format!("cannot resolve {}: {e}", src.host)))?
            .collect();
        let mut last_err = None;
        let mut tcp = None;
        for addr in &addrs {
            match TcpStream::connect_timeout(addr, src.connect_timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last_err = Some(format!("{addr}: {e}")),
            }
        }
        let tcp = tcp.ok_or_else(|| {
            connect_err(last_err.unwrap_or_else(|| "no address for host".to_string()))
        })?;
        let _ = tcp.set_nodelay(true);
        let tcp_handle = tcp.try_clone().ok();

        let mut sess = Session::new().map_err(|e| connect_err(e.to_string()))?;
        sess.set_timeout(millis(src.connect_timeout));
        if let Ok(content) = &known {
            let types = known_hosts::known_types(content, &src.host, src.port);
            if let Some(prefs) = known_hosts::hostkey_method_prefs(&types) {
                // Ask for a key type we can verify; ignore a refusal (an old
                // libssh2 without that algorithm): the check below decides.
                let _ = sess.method_pref(MethodType::HostKey, &prefs);
            }
        }
        sess.set_tcp_stream(tcp);
        sess.handshake()
            .map_err(|e| connect_err(format!("SSH handshake failed: {e}")))?;

        verify_host_key(&sess, src, &target, known)?;

        sess.set_timeout(millis(src.io_timeout));
        authenticate(&sess, src, &target)?;
        let sftp = sess.sftp().map_err(|e| SftpError::Io {
            target: target.clone(),
            op: "start the sftp subsystem".into(),
            detail: e.to_string(),
        })?;
        Ok(Conn {
            sftp,
            sess,
            target,
            tcp: tcp_handle,
        })
    }

    pub fn io_err(&self, op: impl Into<String>, e: impl std::fmt::Display) -> SftpError {
        SftpError::Io {
            target: self.target.clone(),
            op: op.into(),
            detail: e.to_string(),
        }
    }

    /// Reads at most `max` entries of `dir` (bounded memory), without `.`
    /// and `..`.
    pub fn list(&self, dir: &str, max: usize) -> Result<Vec<RemoteEntry>, SftpError> {
        let op = || format!("list {dir}");
        let mut handle = self
            .sftp
            .opendir(Path::new(dir))
            .map_err(|e| self.io_err(op(), e))?;
        let mut out = Vec::new();
        while out.len() < max {
            match handle.readdir() {
                Ok((name, stat)) => {
                    let name_bytes = name.as_os_str().as_encoded_bytes();
                    if name_bytes == b"." || name_bytes == b".." || name_bytes.contains(&b'/') {
                        continue;
                    }
                    out.push(RemoteEntry {
                        name: name.to_string_lossy().into_owned(),
                        path: join(dir, &name),
                        size: stat.size.unwrap_or(0),
                        mtime: stat.mtime.unwrap_or(0),
                        is_file: not_regular(&stat).is_none(),
                        not_regular: not_regular(&stat),
                    });
                }
                Err(e) if e.code() == ErrorCode::Session(LIBSSH2_ERROR_FILE) => break,
                Err(e) => return Err(self.io_err(op(), e)),
            }
        }
        let _ = handle.close();
        Ok(out)
    }

    /// Is the connection still usable? (A cheap round trip.)
    pub fn alive(&self, dir: &str) -> bool {
        match self.sftp.lstat(Path::new(dir)) {
            Ok(_) => true,
            Err(e) => !is_transport(&e),
        }
    }

    pub fn remove(&self, path: &Path) -> Result<(), ssh2::Error> {
        self.sftp.unlink(path)
    }

    /// Renames `path` into `dir` under its own name, or under
    /// `name.<suffix>` when that name is already taken there. Returns the new
    /// remote path.
    pub fn move_into(&self, path: &Path, dir: &str, suffix: &str) -> Result<PathBuf, ssh2::Error> {
        let name = path.file_name().unwrap_or(path.as_os_str());
        let dest = join(dir, Path::new(name));
        match self.sftp.rename(path, &dest, None) {
            Ok(()) => Ok(dest),
            Err(e) if is_transport(&e) => Err(e),
            Err(first) => {
                // SFTP v3 rename refuses an existing target: keep both.
                let mut alt = name.to_os_string();
                alt.push(format!(".{suffix}"));
                let dest = join(dir, Path::new(&alt));
                match self.sftp.rename(path, &dest, None) {
                    Ok(()) => Ok(dest),
                    Err(_) => Err(first),
                }
            }
        }
    }

    /// Polite goodbye on a healthy connection.
    pub fn close(self) {
        let Conn { sftp, sess, .. } = self;
        drop(sftp);
        let _ = sess.disconnect(None, "quai: done", None);
    }

    /// Tear down a connection that failed: shut the socket first so that
    /// libssh2's cleanup (channel close, disconnect) fails at once instead
    /// of waiting out the timeout on a hung server.
    pub fn abort(self) {
        self.cut();
        drop(self);
    }

    /// Shut the socket: every later libssh2 call on this connection fails
    /// at once.
    pub fn cut(&self) {
        if let Some(tcp) = &self.tcp {
            let _ = tcp.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// `dir/name`, byte-exact (names may not be UTF-8).
pub(crate) fn join(dir: &str, name: &Path) -> PathBuf {
    if dir == "." {
        return name.to_path_buf();
    }
    Path::new(dir).join(name)
}

/// Reads a remote file, remembering whether a failure came from the remote
/// side, and refusing to deliver more or fewer bytes than the listing said:
/// a file that grows or shrinks while we read it was still being written.
pub(crate) struct RemoteReader {
    pub file: ssh2::File,
    pub expected: u64,
    pub read: u64,
    pub remote_error: Option<io::Error>,
    pub size_changed: bool,
}

impl Read for RemoteReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.file.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.remote_error = Some(e);
                return Err(copy);
            }
        };
        self.read += n as u64;
        if self.read > self.expected || (n == 0 && self.read != self.expected) {
            self.size_changed = true;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "remote file changed size during download",
            ));
        }
        Ok(n)
    }
}

/// Why a remote file was not opened.
pub(crate) enum OpenRefused {
    /// An SFTP or transport error.
    Ssh(ssh2::Error),
    /// Not (or no longer) a regular file: swapped since the listing.
    NotRegular(crate::RefusalReason),
}

impl Conn {
    /// Opens a listed file for reading, checking with `lstat` just before
    /// (SFTP v3 `open` follows links on the server) and with `fstat` on the
    /// handle after that it is a regular file, so a link swapped in after
    /// the listing is refused, not read.
    pub fn open_file(&self, path: &Path) -> Result<ssh2::File, OpenRefused> {
        let before = self.sftp.lstat(path).map_err(OpenRefused::Ssh)?;
        if let Some(r) = not_regular(&before) {
            return Err(OpenRefused::NotRegular(r));
        }
        let mut file = self.sftp.open(path).map_err(OpenRefused::Ssh)?;
        let opened = file.stat().map_err(OpenRefused::Ssh)?;
        if let Some(r) = not_regular(&opened) {
            return Err(OpenRefused::NotRegular(r));
        }
        let after = self.sftp.lstat(path).map_err(OpenRefused::Ssh)?;
        if let Some(r) = not_regular(&after) {
            return Err(OpenRefused::NotRegular(r));
        }
        Ok(file)
    }
}

fn verify_host_key(
    sess: &Session,
    src: &SftpSource,
    target: &str,
    known: Result<String, String>,
) -> Result<(), SftpError> {
    let (blob, _) = sess.host_key().ok_or_else(|| SftpError::Connect {
        target: target.to_string(),
        detail: "server sent no host key".into(),
    })?;
    let fingerprint = known_hosts::fingerprint_sha256(blob);
    let key_type = known_hosts::key_type_of(blob).unwrap_or_else(|| "unknown".into());
    let refuse = |problem: String| SftpError::HostKey {
        target: target.to_string(),
        key_type: key_type.clone(),
        fingerprint: fingerprint.clone(),
        problem,
    };
    let content = known.map_err(refuse)?;
    let name = known_hosts::lookup_name(&src.host, src.port);
    match known_hosts::check(&content, &src.host, src.port, blob) {
        Verdict::Match => Ok(()),
        Verdict::Changed => Err(refuse(format!(
            "host key CHANGED: {} records a different {key_type} key for {name} \
             (possible man-in-the-middle); if the partner really changed its key, \
             replace the line",
            src.known_hosts.display()
        ))),
        Verdict::Revoked => Err(refuse(format!(
            "host key is marked @revoked in {}",
            src.known_hosts.display()
        ))),
        Verdict::Unknown { other_types } => {
            if src.trust_on_first_use && other_types.is_empty() {
                known_hosts::append(&src.known_hosts, &src.host, src.port, blob).map_err(|e| {
                    refuse(format!(
                        "unknown host key and cannot record it in {}: {e}",
                        src.known_hosts.display()
                    ))
                })?;
                tracing::warn!(
                    target: "quai::sftp",
                    partner = %src.partner,
                    host = %name,
                    %key_type,
                    %fingerprint,
                    "trust on first use: recorded a new host key"
                );
                return Ok(());
            }
            let also = if other_types.is_empty() {
                String::new()
            } else {
                format!(" (it records only {} keys for it)", other_types.join(", "))
            };
            Err(refuse(format!(
                "unknown host: no {key_type} key for {name} in {}{also}; verify the \
                 fingerprint with the partner and add the key (e.g. ssh-keyscan -p {} {})",
                src.known_hosts.display(),
                src.port,
                src.host
            )))
        }
    }
}

fn authenticate(sess: &Session, src: &SftpSource, target: &str) -> Result<(), SftpError> {
    let mut tried = Vec::new();
    let transport = |e: &ssh2::Error| SftpError::Io {
        target: target.to_string(),
        op: "authenticate".into(),
        detail: e.to_string(),
    };
    if let Some(key) = &src.private_key {
        let mut public = key.clone().into_os_string();
        public.push(".pub");
        let public = PathBuf::from(public);
        let public = public.exists().then_some(public);
        match sess.userauth_pubkey_file(&src.user, public.as_deref(), key, None) {
            Ok(()) => {}
            Err(e) if e.code() == ErrorCode::Session(-9) => return Err(transport(&e)),
            Err(e) => tried.push(format!("key {}: {e}", key.display())),
        }
    }
    if !sess.authenticated() {
        if let Some(pf) = &src.password_file {
            let raw = std::fs::read_to_string(pf).map_err(|e| SftpError::Local {
                op: format!("read password file {}", pf.display()),
                source: e,
            })?;
            let password = raw.lines().next().unwrap_or("");
            match sess.userauth_password(&src.user, password) {
                Ok(()) => {}
                Err(e) if e.code() == ErrorCode::Session(-9) => return Err(transport(&e)),
                Err(e) => tried.push(format!("password from {}: {e}", pf.display())),
            }
        }
    }
    if sess.authenticated() {
        return Ok(());
    }
    if tried.is_empty() {
        tried.push("no key or password file configured".into());
    }
    Err(SftpError::Auth {
        target: target.to_string(),
        detail: tried.join("; "),
    })
}
