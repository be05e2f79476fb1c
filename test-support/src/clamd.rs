//! A real ClamAV daemon for tests: Debian's `clamd` (package clamav-daemon)
//! run as a child process on a unix socket in a temp folder, with a
//! signature database the harness writes: one body signature matching the
//! EICAR test string ([`EICAR`]), so no freshclam, no network, and a start
//! in well under a second. Stoppable and restartable on the same socket
//! (the "clamd down" tests); killed on drop.
//!
//! The configuration names what quai relies on explicitly: `ScanArchive`
//! (clamd unpacks zip, tar, gzip) and `ScanPDF` (PDF streams and embedded
//! files), and a `StreamMaxLength` above the tests' flows. A missing clamd
//! FAILS the test (never a skip): `scripts/test.sh` installs it.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The EICAR anti-malware test file (68 bytes): harmless, and what every
/// antivirus is meant to report.
pub const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// The name clamd reports for [`EICAR`] with the harness's database
/// (clamd adds `.UNOFFICIAL` to signatures of local databases).
pub const EICAR_SIGNATURE: &str = "Quai.Test.EICAR.UNOFFICIAL";

/// Where Debian puts clamd.
pub fn clamd_binary() -> PathBuf {
    for p in ["/usr/sbin/clamd", "/usr/bin/clamd"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "clamd not found (/usr/sbin/clamd): install the Debian package clamav-daemon \
         (scripts/test.sh does)"
    );
}

pub struct Clamd {
    pub dir: tempfile::TempDir,
    /// Also listening on 127.0.0.1:port ([`Clamd::start_with_tcp`]).
    pub tcp_port: Option<u16>,
    child: Option<Child>,
}

impl Clamd {
    /// Start clamd on its unix socket and wait until it answers PING.
    pub fn start() -> Clamd {
        Clamd::start_inner(None, "200M")
    }

    /// Also listen on 127.0.0.1 and a free port, with this StreamMaxLength
    /// (e.g. `"1M"`, to see clamd refuse a longer stream).
    pub fn start_with_tcp(stream_max: &str) -> Clamd {
        Clamd::start_inner(Some(crate::free_port()), stream_max)
    }

    fn start_inner(tcp_port: Option<u16>, stream_max: &str) -> Clamd {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap();
        let hex: String = EICAR.iter().map(|b| format!("{b:02x}")).collect();
        // name:target type (0 = any):offset (* = anywhere):hex body
        std::fs::write(
            db.join("quai-test.ndb"),
            format!("Quai.Test.EICAR:0:*:{hex}\n"),
        )
        .unwrap();
        let conf = format!(
            "LocalSocket {sock}\n\
             DatabaseDirectory {db}\n\
             PidFile {pid}\n\
             LogFile {log}\n\
             TemporaryDirectory {tmp}\n\
             Foreground yes\n\
             ScanArchive yes\n\
             ScanPDF yes\n\
             StreamMaxLength {stream_max}\n\
             MaxFileSize 200M\n\
             MaxScanSize 400M\n\
             SelfCheck 0\n\
             {tcp}",
            sock = dir.path().join("clamd.sock").display(),
            db = db.display(),
            pid = dir.path().join("clamd.pid").display(),
            log = dir.path().join("clamd.log").display(),
            tmp = dir.path().display(),
            tcp = match tcp_port {
                Some(p) => format!("TCPSocket {p}\nTCPAddr 127.0.0.1\n"),
                None => String::new(),
            },
        );
        std::fs::write(dir.path().join("clamd.conf"), conf).unwrap();
        let mut c = Clamd {
            dir,
            tcp_port,
            child: None,
        };
        c.spawn();
        c
    }

    /// `unix:<socket>`, the value of `[antivirus] clamd`.
    pub fn address(&self) -> String {
        format!("unix:{}", self.socket().display())
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("clamd.sock")
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let child = Command::new(clamd_binary())
            .arg("-c")
            .arg(self.dir.path().join("clamd.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start clamd");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            let tcp_up = self
                .tcp_port
                .map(|p| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok())
                .unwrap_or(true);
            if tcp_up && self.ping() {
                return;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    let log = std::fs::read_to_string(self.dir.path().join("clamd.log"))
                        .unwrap_or_default();
                    panic!("clamd exited at start ({status}):\n{log}");
                }
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!("clamd did not answer PING within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = UnixStream::connect(self.socket()) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"zPING\0").is_err() {
            return false;
        }
        let mut buf = [0u8; 16];
        matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"PONG"))
    }

    /// Kill clamd (the socket stays, refusing connections, as after a crash).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same socket.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// clamd's log (what it scanned and found).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("clamd.log")).unwrap_or_default()
    }
}

impl Drop for Clamd {
    fn drop(&mut self) {
        self.stop();
    }
}
