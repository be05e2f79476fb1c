//! An SFTP outbox: a folder on the partner's server that quai uploads to.
//!
//! The same rules as the local outbox ([`super::FolderOutbox`]), said in
//! SFTP: the file is written under an unpredictable temporary name in the
//! outbox folder itself (`.quai-tmp-<random>.part`, which pickup tools skip
//! as a partial upload), opened with `SSH_FXF_CREAT | SSH_FXF_EXCL` so a link
//! or file planted at that name makes the open fail instead of being written
//! through, fsynced where the server offers `fsync@openssh.com`, then
//! renamed to its name with a plain SFTP rename. An SFTP v3 rename never
//! replaces an existing name (OpenSSH implements it as link + unlink), and
//! quai asks for no `OVERWRITE` (and never uses `posix-rename@openssh.com`,
//! which would replace).
//!
//! Idempotent on the name: an entry already at the name is `lstat`ed; a
//! regular file with the staged bytes is success (a crash between the upload
//! and the spool's record), anything else (other bytes, a link, a folder) is
//! a permanent failure and is left alone. The confirmed rename (the final
//! path, `lstat`ed with the right size after it) is the receipt.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use ssh2::{ErrorCode, OpenFlags, OpenType, RenameFlags};

use super::folder::{FILE_MODE, TEMP_PREFIX, TEMP_SUFFIX};
use super::{check_name, Parcel, SendFailure, Sent};
use crate::sftp::conn::{self, Conn};
use crate::sftp::{SftpError, SftpSource};

/// LIBSSH2_FX_NO_SUCH_FILE.
const FX_NO_SUCH_FILE: i32 = 2;

/// An SFTP outbox, built from the partner's SFTP settings (`outbox` must be set).
#[derive(Debug, Clone)]
pub struct SftpOutbox {
    source: SftpSource,
    dir: String,
}

impl SftpOutbox {
    /// `source.outbox` is the remote folder uploaded to.
    pub fn new(source: SftpSource) -> Result<SftpOutbox, SftpError> {
        let dir = source.outbox.clone().ok_or_else(|| {
            SftpError::Config(format!(
                "partner {}: no SFTP outbox configured",
                source.partner
            ))
        })?;
        Ok(SftpOutbox { source, dir })
    }

    fn url_of(&self, name: &str) -> String {
        let path = conn::join(&self.dir, Path::new(name));
        let path = path.to_string_lossy();
        let sep = if path.starts_with('/') { "" } else { "/" };
        format!("sftp://{}{sep}{path}", self.source.label())
    }

    /// Uploads one parcel (blocking: ssh2 is; [`SftpOutbox::send`] runs it on
    /// a blocking thread).
    pub fn upload(&self, parcel: &Parcel) -> Result<Sent, SendFailure> {
        self.upload_batch(std::slice::from_ref(parcel))
            .pop()
            .expect("one result per parcel")
    }

    /// Uploads a batch of parcels over one SFTP session (each one under a
    /// temporary name, then renamed without overwriting, as for one); a
    /// failed upload closes the session and the next parcel opens another.
    /// One result per parcel, in order.
    pub fn upload_batch(&self, parcels: &[Parcel]) -> Vec<Result<Sent, SendFailure>> {
        let mut conn: Option<Conn> = None;
        let mut out = Vec::with_capacity(parcels.len());
        for parcel in parcels {
            let result = self.upload_on(&mut conn, parcel);
            if result.is_err() {
                if let Some(c) = conn.take() {
                    c.abort();
                }
            }
            out.push(result);
        }
        if let Some(c) = conn {
            c.close();
        }
        out
    }

    /// One upload over `conn` (opened when there is none).
    fn upload_on(&self, conn: &mut Option<Conn>, parcel: &Parcel) -> Result<Sent, SendFailure> {
        let destination = self.url_of(&parcel.name);
        let fail = |message: String, transient: bool| SendFailure {
            destination: destination.clone(),
            message,
            transient,
        };
        check_name(&parcel.name).map_err(|m| fail(format!("{destination}: {m}"), false))?;
        if parcel.name.starts_with(TEMP_PREFIX) {
            return Err(fail(
                format!("{destination}: the name prefix {TEMP_PREFIX} is reserved for temporaries"),
                false,
            ));
        }
        let mut local = std::fs::File::open(&parcel.staged).map_err(|e| {
            fail(
                format!(
                    "cannot read the staged file {} for {destination}: {e}",
                    parcel.staged.display()
                ),
                true,
            )
        })?;
        let size = local
            .metadata()
            .map_err(|e| fail(format!("{}: {e}", parcel.staged.display()), true))?
            .len();
        if conn.is_none() {
            *conn = Some(Conn::open(&self.source).map_err(|e| {
                let transient = !matches!(e, SftpError::Config(_));
                fail(format!("{destination}: {e}"), transient)
            })?);
        }
        let conn = conn.as_ref().expect("opened above");
        Upload {
            conn,
            dest: conn::join(&self.dir, Path::new(&parcel.name)),
            staged: &parcel.staged,
            destination: &destination,
        }
        .run(&mut local, size)
    }
}

struct Upload<'a> {
    conn: &'a Conn,
    dest: PathBuf,
    staged: &'a Path,
    destination: &'a str,
}

impl Upload<'_> {
    fn fail(&self, message: String, transient: bool) -> SendFailure {
        SendFailure {
            destination: self.destination.to_string(),
            message: format!("{}: {message}", self.destination),
            transient,
        }
    }

    fn remote(&self, op: &str, e: ssh2::Error) -> SendFailure {
        self.fail(format!("SFTP {op} failed: {e}"), true)
    }

    fn sent(&self) -> Sent {
        Sent {
            destination: self.destination.to_string(),
            receipt: Some(format!("sftp rename confirmed: {}", self.dest.display())),
        }
    }

    fn run(&self, local: &mut std::fs::File, size: u64) -> Result<Sent, SendFailure> {
        if let Some(r) = self.already_there(size)? {
            return r;
        }
        let dir = self
            .dest
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let tmp_name = format!(
            "{TEMP_PREFIX}{}{TEMP_SUFFIX}",
            uuid::Uuid::new_v4().simple()
        );
        let tmp = if dir.as_os_str().is_empty() {
            PathBuf::from(&tmp_name)
        } else {
            dir.join(&tmp_name)
        };
        let sftp = &self.conn.sftp;
        let mut remote = sftp
            .open_mode(
                &tmp,
                OpenFlags::WRITE | OpenFlags::EXCLUSIVE,
                FILE_MODE as i32,
                OpenType::File,
            )
            .map_err(|e| self.remote(&format!("exclusive create of {}", tmp.display()), e))?;
        let written = (|| -> Result<(), SendFailure> {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match local.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(self.fail(
                            format!("cannot read the staged file {}: {e}", self.staged.display()),
                            true,
                        ))
                    }
                };
                remote.write_all(&buf[..n]).map_err(|e| {
                    self.fail(format!("SFTP write of {} failed: {e}", tmp.display()), true)
                })?;
            }
            // fsync@openssh.com where the server offers it; not fatal if not.
            let _ = remote.fsync();
            remote
                .close()
                .map_err(|e| self.remote(&format!("close of {}", tmp.display()), e))
        })();
        drop(remote);
        let outcome = written.and_then(|()| {
            // No OVERWRITE: an SFTP v3 rename refuses an existing name.
            match sftp.rename(
                &tmp,
                &self.dest,
                Some(RenameFlags::ATOMIC | RenameFlags::NATIVE),
            ) {
                Ok(()) => self.confirm(size),
                Err(e) if conn::is_transport(&e) => Err(self.remote("rename", e)),
                Err(e) => match self.already_there(size)? {
                    Some(r) => r,
                    None => Err(self.remote(&format!("rename to {}", self.dest.display()), e)),
                },
            }
        });
        if outcome.is_err() || sftp.lstat(&tmp).is_ok() {
            let _ = sftp.unlink(&tmp);
        }
        outcome
    }

    /// After the rename: the name holds a regular file of our size.
    fn confirm(&self, size: u64) -> Result<Sent, SendFailure> {
        let st = self
            .conn
            .sftp
            .lstat(&self.dest)
            .map_err(|e| self.remote("lstat after the rename", e))?;
        if st.file_type().is_file() && st.size == Some(size) {
            Ok(self.sent())
        } else {
            Err(self.fail(
                format!(
                    "after the rename the name holds {} of {:?} bytes, not the {size} bytes sent",
                    if st.file_type().is_file() {
                        "a file"
                    } else {
                        "something other than a file"
                    },
                    st.size
                ),
                false,
            ))
        }
    }

    /// `None` when the name is free; otherwise the verdict (Ok when it holds
    /// the staged bytes, a permanent failure when it holds anything else).
    fn already_there(&self, size: u64) -> Result<Option<Result<Sent, SendFailure>>, SendFailure> {
        let st = match self.conn.sftp.lstat(&self.dest) {
            Ok(st) => st,
            Err(e) if e.code() == ErrorCode::SFTP(FX_NO_SUCH_FILE) => return Ok(None),
            Err(e) => return Err(self.remote(&format!("lstat of {}", self.dest.display()), e)),
        };
        let refuse = |why: &str| {
            Ok(Some(Err(
                self.fail(format!("{why}; it is never overwritten"), false)
            )))
        };
        if st.file_type().is_symlink() {
            return refuse("a symbolic link holds the name");
        }
        if !st.file_type().is_file() {
            return refuse("something other than a regular file holds the name");
        }
        if st.size != Some(size) {
            return refuse(&format!(
                "a different file ({} bytes) already has the name",
                st.size.unwrap_or(0)
            ));
        }
        if self.same_bytes()? {
            tracing::info!(target: "quai::outbound", destination = %self.destination,
                "already in the SFTP outbox with the same bytes; not uploaded again");
            Ok(Some(Ok(self.sent())))
        } else {
            refuse("a different file of the same size already has the name")
        }
    }

    fn same_bytes(&self) -> Result<bool, SendFailure> {
        let mut theirs = self
            .conn
            .sftp
            .open(&self.dest)
            .map_err(|e| self.remote(&format!("read of {}", self.dest.display()), e))?;
        let mut ours = std::fs::File::open(self.staged)
            .map_err(|e| self.fail(format!("{}: {e}", self.staged.display()), true))?;
        let (mut a, mut b) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        loop {
            let n = read_full(&mut ours, &mut a)
                .map_err(|e| self.fail(format!("{}: {e}", self.staged.display()), true))?;
            let m = read_full(&mut theirs, &mut b).map_err(|e| {
                self.fail(format!("SFTP read of {}: {e}", self.dest.display()), true)
            })?;
            if n != m || a[..n] != b[..m] {
                return Ok(false);
            }
            if n == 0 {
                return Ok(true);
            }
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl SftpOutbox {
    /// Uploads one parcel on a blocking thread (see [`SftpOutbox::upload`]).
    pub async fn send(&self, parcel: &Parcel) -> Result<Sent, SendFailure> {
        let (me, p) = (self.clone(), parcel.clone());
        tokio::task::spawn_blocking(move || me.upload(&p))
            .await
            .map_err(|e| SendFailure {
                destination: self.url_of(&parcel.name),
                message: format!("SFTP upload task failed: {e}"),
                transient: true,
            })?
    }

    /// Uploads a batch on a blocking thread (see [`SftpOutbox::upload_batch`]).
    pub async fn send_batch(&self, parcels: &[Parcel]) -> Vec<Result<Sent, SendFailure>> {
        let (me, ps) = (self.clone(), parcels.to_vec());
        match tokio::task::spawn_blocking(move || me.upload_batch(&ps)).await {
            Ok(out) => out,
            Err(e) => parcels
                .iter()
                .map(|p| {
                    Err(SendFailure {
                        destination: self.url_of(&p.name),
                        message: format!("SFTP upload task failed: {e}"),
                        transient: true,
                    })
                })
                .collect(),
        }
    }

    /// Where this outbox sends to, for logs.
    pub fn describe(&self) -> String {
        let sep = if self.dir.starts_with('/') { "" } else { "/" };
        format!("sftp://{}{sep}{}", self.source.label(), self.dir)
    }
}
