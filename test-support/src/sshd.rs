//! A real OpenSSH server for tests: its own host keys, authorized client key,
//! config and data folder in a temp dir, listening on 127.0.0.1 on a free
//! port, serving SFTP with `internal-sftp`. Stopped (with every per-connection
//! child) on drop.
//!
//! `let sshd = quai_test_support::sshd::Sshd::start();`. Needs
//! `/usr/sbin/sshd` (Debian package `openssh-server`) and `ssh-keygen`
//! (`openssh-client`); a missing binary fails the test, never skips it.

use std::fs;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub user: String,
    /// Folder the tests read and write through SFTP (absolute path).
    pub data: PathBuf,
    /// Client private key authorized for `user`.
    pub client_key: PathBuf,
    /// A known_hosts file holding the server's ed25519 key for
    /// `[127.0.0.1]:port` (and nothing else).
    pub known_hosts: PathBuf,
    /// The server's ed25519 public key line (`ssh-ed25519 AAAA... comment`).
    pub host_key_pub: String,
    /// The server's second host key (ECDSA P-256), public key line.
    pub host_key_ecdsa_pub: String,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// `ssh-keygen -t <kind>` into `path` (no passphrase).
pub fn keygen(kind: &str, path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "quai-test", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen not found: apt-get install openssh-client");
    assert!(
        out.status.success(),
        "ssh-keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn current_user() -> String {
    if let Ok(u) = std::env::var("USER") {
        if !u.is_empty() {
            return u;
        }
    }
    let out = Command::new("id").arg("-un").output().expect("id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn ppid_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid ...; comm may contain spaces and parentheses.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// Every process below `root` (sshd forks a session process per
/// connection, which calls setsid, so a process group kill would miss it).
fn descendants(root: u32) -> Vec<u32> {
    let mut all = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for e in entries.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) {
                if let Some(ppid) = ppid_of(pid) {
                    all.push((pid, ppid));
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid) in &all {
            if ppid == p && !out.contains(&pid) {
                out.push(pid);
                frontier.push(pid);
            }
        }
    }
    out
}

impl Sshd {
    /// Generates keys and config and starts the server; panics (failing the
    /// test) if sshd is missing or does not come up.
    pub fn start() -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} not found: the SFTP tests need a real OpenSSH server \
             (apt-get install openssh-server)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let data = root.join("data");
        fs::create_dir_all(&data).unwrap();
        // sshd refuses to start without its privilege separation folder.
        let _ = fs::create_dir_all("/run/sshd");

        let host_ed = root.join("ssh_host_ed25519_key");
        let host_ec = root.join("ssh_host_ecdsa_key");
        keygen("ed25519", &host_ed);
        // A second host key of another type: the client must ask for the
        // type its known_hosts records (libssh2 would pick ECDSA first).
        keygen("ecdsa", &host_ec);
        let client_key = root.join("client_ed25519");
        keygen("ed25519", &client_key);
        fs::copy(
            root.join("client_ed25519.pub"),
            root.join("authorized_keys"),
        )
        .unwrap();

        let host_key_pub = fs::read_to_string(root.join("ssh_host_ed25519_key.pub"))
            .unwrap()
            .trim()
            .to_string();
        let host_key_ecdsa_pub = fs::read_to_string(root.join("ssh_host_ecdsa_key.pub"))
            .unwrap()
            .trim()
            .to_string();
        let port = crate::free_port();
        let known_hosts = root.join("known_hosts");
        fs::write(&known_hosts, format!("[127.0.0.1]:{port} {host_key_pub}\n")).unwrap();

        let user = current_user();
        let config = root.join("sshd_config");
        fs::write(
            &config,
            format!(
                "Port {port}\n\
                 ListenAddress 127.0.0.1\n\
                 HostKey {ed}\n\
                 HostKey {ec}\n\
                 AuthorizedKeysFile {root}/authorized_keys\n\
                 StrictModes no\n\
                 UsePAM no\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\n\
                 PermitRootLogin prohibit-password\n\
                 AllowUsers {user}\n\
                 PidFile {root}/sshd.pid\n\
                 LogLevel VERBOSE\n\
                 MaxStartups 50\n\
                 Subsystem sftp internal-sftp\n",
                ed = host_ed.display(),
                ec = host_ec.display(),
                root = root.display(),
            ),
        )
        .unwrap();
        let log = root.join("sshd.log");
        let mut s = Sshd {
            dir,
            port,
            user,
            data,
            client_key,
            known_hosts,
            host_key_pub,
            host_key_ecdsa_pub,
            config,
            log,
            child: None,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {SSHD}: {e} (apt-get install openssh-server)"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("sshd exited with {status}:\n{}", self.log_text());
            }
            // A banner proves it is sshd answering, not a stale socket.
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 4];
                if s.read_exact(&mut buf).is_ok() && &buf == b"SSH-" {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "sshd did not come up on port {}:\n{}",
                    self.port,
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's log so far (for assertions and failure messages).
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILLs the listener and every per-connection process: open
    /// connections drop at once, as when a server dies.
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let kids = descendants(child.id());
        let _ = child.kill();
        let _ = child.wait();
        if !kids.is_empty() {
            let _ = Command::new("kill")
                .arg("-9")
                .args(kids.iter().map(|p| p.to_string()))
                .stderr(Stdio::null())
                .status();
        }
    }

    /// SIGSTOPs (`"STOP"`) or SIGCONTs (`"CONT"`) the listener and every
    /// per-connection process: a hung server that keeps its sockets open.
    pub fn signal_all(&self, signal: &str) {
        let Some(pid) = self.pid() else { return };
        let mut pids = descendants(pid);
        pids.push(pid);
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .args(pids.iter().map(|p| p.to_string()))
            .stderr(Stdio::null())
            .status();
    }

    /// Kills (if running) and starts again on the same port with the same
    /// keys and data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// `sftp://user@127.0.0.1:port<dir>`.
    pub fn url(&self, dir: &Path) -> String {
        format!(
            "sftp://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            dir.display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
    }
}
