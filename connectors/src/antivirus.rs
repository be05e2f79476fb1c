//! A ClamAV daemon (clamd) client: bytes streamed with `zINSTREAM`.
//!
//! Why here: clamd is a server quai talks to, like an SFTP server or an
//! AS2 peer. The protocol (clamd(8)): send `zINSTREAM\0`, then chunks, each
//! a 4-byte big-endian length and that many bytes, then a zero length;
//! clamd answers `stream: OK\0`, `stream: <signature> FOUND\0`, or
//! `<message> ERROR\0` (e.g. `INSTREAM size limit exceeded`, when the bytes
//! pass clamd's `StreamMaxLength`). One connection per scan, so nothing
//! but the current chunk (at most [`CHUNK`] bytes) is ever held here.
//!
//! clamd unpacks what it is given itself (zip, tar, gzip, PDF streams and
//! embedded files, with its `ScanArchive` and `ScanPDF` settings, both on
//! by default). It does not decode base64 inside XML: the caller streams
//! decoded attachments as scans of their own.
//!
//! Blocking I/O with socket timeouts: scans run on the pipeline's blocking
//! threads, next to the readers of the same flow.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// Largest chunk sent in one INSTREAM frame.
pub const CHUNK: usize = 64 * 1024;

/// Longest answer read from clamd.
const MAX_REPLY: usize = 4096;

/// Where clamd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdAddress {
    /// `unix:/run/clamav/clamd.ctl`
    Unix(PathBuf),
    /// `tcp://host:port`
    Tcp(String),
}

impl ClamdAddress {
    /// `unix:/path` (or `unix:///path`) or `tcp://host:port`.
    pub fn parse(s: &str) -> Result<ClamdAddress, String> {
        if let Some(rest) = s.strip_prefix("unix:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if !path.starts_with('/') {
                return Err(format!(
                    "{s:?}: a unix socket path must be absolute (unix:/run/clamav/clamd.ctl)"
                ));
            }
            return Ok(ClamdAddress::Unix(PathBuf::from(path)));
        }
        if let Some(rest) = s.strip_prefix("tcp://") {
            let rest = rest.trim_end_matches('/');
            let ok = rest
                .rsplit_once(':')
                .map(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
                .unwrap_or(false);
            if !ok {
                return Err(format!("{s:?} is not tcp://host:port"));
            }
            return Ok(ClamdAddress::Tcp(rest.to_string()));
        }
        Err(format!(
            "{s:?} is neither unix:/path/to/clamd.ctl nor tcp://host:port"
        ))
    }
}

impl std::fmt::Display for ClamdAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClamdAddress::Unix(p) => write!(f, "unix:{}", p.display()),
            ClamdAddress::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// What clamd found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// The signature's name, as clamd reports it.
    Infected(String),
}

/// clamd could not give a verdict. Never a reason to let bytes through.
#[derive(Debug, thiserror::Error)]
pub enum ClamdError {
    #[error("clamd at {addr} is unavailable: {source}")]
    Unavailable {
        addr: String,
        source: std::io::Error,
    },
    #[error("clamd at {addr} did not answer within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("clamd at {addr} refused the scan: {message}")]
    Refused { addr: String, message: String },
    #[error("clamd at {addr}: unexpected answer {answer:?}")]
    Protocol { addr: String, answer: String },
}

/// A clamd to scan with.
#[derive(Debug, Clone)]
pub struct Clamd {
    addr: ClamdAddress,
    timeout: Duration,
}

enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Unix(s) => s.write(buf),
            Conn::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Unix(s) => s.flush(),
            Conn::Tcp(s) => s.flush(),
        }
    }
}

impl Clamd {
    /// `timeout` bounds every exchange: connecting, each write, the answer.
    pub fn new(addr: ClamdAddress, timeout: Duration) -> Clamd {
        Clamd { addr, timeout }
    }

    pub fn address(&self) -> &ClamdAddress {
        &self.addr
    }

    fn connect(&self) -> Result<Conn, ClamdError> {
        let unavailable = |source| ClamdError::Unavailable {
            addr: self.addr.to_string(),
            source,
        };
        let t = Some(self.timeout);
        match &self.addr {
            ClamdAddress::Unix(path) => {
                let s = UnixStream::connect(path).map_err(unavailable)?;
                s.set_read_timeout(t).map_err(unavailable)?;
                s.set_write_timeout(t).map_err(unavailable)?;
                Ok(Conn::Unix(s))
            }
            ClamdAddress::Tcp(hostport) => {
                use std::net::ToSocketAddrs;
                let mut last = std::io::Error::other("no address");
                for a in hostport.to_socket_addrs().map_err(unavailable)? {
                    match TcpStream::connect_timeout(&a, self.timeout) {
                        Ok(s) => {
                            s.set_read_timeout(t).map_err(unavailable)?;
                            s.set_write_timeout(t).map_err(unavailable)?;
                            let _ = s.set_nodelay(true);
                            return Ok(Conn::Tcp(s));
                        }
                        Err(e) => last = e,
                    }
                }
                Err(unavailable(last))
            }
        }
    }

    fn io_error(&self, e: std::io::Error) -> ClamdError {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => ClamdError::Timeout {
                addr: self.addr.to_string(),
                timeout: self.timeout,
            },
            _ => ClamdError::Unavailable {
                addr: self.addr.to_string(),
                source: e,
            },
        }
    }

    /// `PING` → `PONG`: is clamd there?
    pub fn ping(&self) -> Result<(), ClamdError> {
        let mut c = self.connect()?;
        c.write_all(b"zPING\0").map_err(|e| self.io_error(e))?;
        let answer = read_reply(&mut c).map_err(|e| self.io_error(e))?;
        if answer == "PONG" {
            Ok(())
        } else {
            Err(ClamdError::Protocol {
                addr: self.addr.to_string(),
                answer,
            })
        }
    }

    /// Start a scan: write the bytes with [`Scan::write`], then [`Scan::finish`].
    pub fn scan(&self) -> Result<Scan<'_>, ClamdError> {
        let mut conn = self.connect()?;
        conn.write_all(b"zINSTREAM\0")
            .map_err(|e| self.io_error(e))?;
        Ok(Scan {
            clamd: self,
            conn,
            sent: 0,
        })
    }

    /// Scan everything `reader` yields, a chunk at a time.
    pub fn scan_reader(&self, reader: &mut dyn Read) -> Result<Verdict, ClamdError> {
        let mut scan = self.scan()?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(ClamdError::Unavailable {
                        addr: "(the bytes to scan)".into(),
                        source: e,
                    })
                }
            };
            scan.write(&buf[..n])?;
        }
        scan.finish()
    }
}

/// One INSTREAM exchange in progress.
pub struct Scan<'a> {
    clamd: &'a Clamd,
    conn: Conn,
    sent: u64,
}

impl Scan<'_> {
    /// Send `bytes` (any length: split into frames of at most [`CHUNK`]).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), ClamdError> {
        for chunk in bytes.chunks(CHUNK) {
            let len = (chunk.len() as u32).to_be_bytes();
            let sent = self
                .conn
                .write_all(&len)
                .and_then(|_| self.conn.write_all(chunk));
            if let Err(e) = sent {
                return Err(self.failed_write(e));
            }
            self.sent += chunk.len() as u64;
        }
        Ok(())
    }

    /// clamd may close the stream early (its StreamMaxLength): say why.
    fn failed_write(&mut self, e: std::io::Error) -> ClamdError {
        if matches!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        ) {
            if let Ok(answer) = read_reply(&mut self.conn) {
                if !answer.is_empty() {
                    return ClamdError::Refused {
                        addr: self.clamd.addr.to_string(),
                        message: format!("{answer} after {} bytes", self.sent),
                    };
                }
            }
        }
        self.clamd.io_error(e)
    }

    /// End the stream and read clamd's verdict.
    pub fn finish(mut self) -> Result<Verdict, ClamdError> {
        if let Err(e) = self.conn.write_all(&0u32.to_be_bytes()) {
            return Err(self.failed_write(e));
        }
        let answer = read_reply(&mut self.conn).map_err(|e| self.clamd.io_error(e))?;
        parse_reply(&answer).map_err(|refused| match refused {
            Some(message) => ClamdError::Refused {
                addr: self.clamd.addr.to_string(),
                message,
            },
            None => ClamdError::Protocol {
                addr: self.clamd.addr.to_string(),
                answer: answer.clone(),
            },
        })
    }
}

/// Read one NUL-terminated (or connection-terminated) answer.
fn read_reply(conn: &mut Conn) -> std::io::Result<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.contains(&0) || out.len() >= MAX_REPLY {
            break;
        }
    }
    let end = out.iter().position(|b| *b == 0).unwrap_or(out.len());
    Ok(String::from_utf8_lossy(&out[..end]).trim().to_string())
}

/// `stream: OK` → clean, `stream: NAME FOUND` → infected; `Err(Some)` for
/// clamd's `... ERROR`, `Err(None)` for anything else.
fn parse_reply(answer: &str) -> Result<Verdict, Option<String>> {
    if let Some(msg) = answer.strip_suffix(" ERROR") {
        return Err(Some(msg.trim().to_string()));
    }
    let body = answer
        .split_once(": ")
        .map(|(_, b)| b)
        .unwrap_or(answer)
        .trim();
    if body == "OK" {
        return Ok(Verdict::Clean);
    }
    if let Some(name) = body.strip_suffix(" FOUND") {
        let name = name.trim();
        if !name.is_empty() {
            return Ok(Verdict::Infected(name.to_string()));
        }
    }
    Err(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            ClamdAddress::parse("unix:/run/clamav/clamd.ctl").unwrap(),
            ClamdAddress::Unix("/run/clamav/clamd.ctl".into())
        );
        assert_eq!(
            ClamdAddress::parse("unix:///run/c.sock").unwrap(),
            ClamdAddress::Unix("/run/c.sock".into())
        );
        assert_eq!(
            ClamdAddress::parse("tcp://av.lan:3310").unwrap(),
            ClamdAddress::Tcp("av.lan:3310".into())
        );
        for bad in [
            "",
            "unix:rel",
            "tcp://host",
            "tcp://:3310",
            "http://x:1",
            "tcp://h:99999",
        ] {
            assert!(ClamdAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn replies() {
        assert_eq!(parse_reply("stream: OK"), Ok(Verdict::Clean));
        assert_eq!(
            parse_reply("stream: Eicar-Test-Signature FOUND"),
            Ok(Verdict::Infected("Eicar-Test-Signature".into()))
        );
        assert_eq!(
            parse_reply("INSTREAM size limit exceeded. ERROR"),
            Err(Some("INSTREAM size limit exceeded.".into()))
        );
        assert_eq!(parse_reply("stream: FOUND"), Err(None));
        assert_eq!(parse_reply("hello"), Err(None));
    }
}
