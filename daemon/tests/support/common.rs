//! Shared helpers of the daemon's integration tests: a daemon running
//! in-process on a temporary QUAI_HOME, and archive builders.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use quai::config::Config;
use tokio_util::sync::CancellationToken;

pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

pub fn fixture_str(name: &str) -> String {
    String::from_utf8(fixture(name)).expect("utf-8 fixture")
}

/// A daemon on the embedded default under a temporary home.
pub struct TestDaemon {
    pub home: tempfile::TempDir,
    pub config: Config,
    pub stop: CancellationToken,
    pub task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub fn test_config(home: &Path) -> Config {
    let mut config = Config::embedded_at(home);
    config.http_listen = None;
    config.stable_seconds = 1;
    config.workers = 2;
    config.lease_seconds = 5;
    config
}

impl TestDaemon {
    pub fn new() -> TestDaemon {
        let home = tempfile::tempdir().expect("temp home");
        let config = test_config(home.path());
        TestDaemon {
            home,
            config,
            stop: CancellationToken::new(),
            task: None,
        }
    }

    /// Start the daemon in-process, its ops HTTP listener (and AS2
    /// endpoint) bound here on a free loopback port; returns that address.
    pub fn start(&mut self) -> std::net::SocketAddr {
        let listener = bind_loopback();
        let addr = listener.local_addr().expect("listener address");
        let config = self.config.clone();
        let stop = self.stop.clone();
        self.task = Some(tokio::spawn(async move {
            quai::run(config, Some(listener), stop).await
        }));
        addr
    }

    pub async fn stop(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            t.await.expect("daemon task").expect("daemon run");
        }
        self.stop = CancellationToken::new();
    }

    pub fn inbox(&self, partner: &str) -> PathBuf {
        let p = self
            .config
            .inbound_root
            .clone()
            .expect("inbound root")
            .join(partner);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    pub fn outbox(&self, partner: &str) -> PathBuf {
        self.config.outbound_root.join(partner)
    }

    /// Drop a file the way an SFTP client does: upload under `.part`, rename.
    pub fn drop_file(&self, partner: &str, name: &str, bytes: &[u8]) {
        let inbox = self.inbox(partner);
        let part = inbox.join(format!("{name}.part"));
        std::fs::write(&part, bytes).unwrap();
        std::fs::rename(&part, inbox.join(name)).unwrap();
    }

    pub async fn spool(&self) -> quai_spool::Spool {
        quai::open_spool(&self.config).await.expect("spool")
    }

    /// Wait until `n` reports (json) exist in the partner's outbox.
    pub async fn wait_reports(&self, partner: &str, n: usize, timeout: Duration) -> Vec<PathBuf> {
        let start = Instant::now();
        loop {
            let mut found: Vec<PathBuf> = std::fs::read_dir(self.outbox(partner))
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .map(|e| e.path())
                        .filter(|p| p.to_string_lossy().ends_with(".report.json"))
                        .collect()
                })
                .unwrap_or_default();
            if found.len() >= n {
                found.sort();
                return found;
            }
            if start.elapsed() > timeout {
                panic!("timed out waiting for {n} report(s) for {partner}; found {found:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A listener on `127.0.0.1:0`, for `quai::run`.
pub fn bind_loopback() -> tokio::net::TcpListener {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.set_nonblocking(true).expect("non-blocking listener");
    tokio::net::TcpListener::from_std(l).expect("tokio listener")
}

pub fn report_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).expect("report json")
}

/// A zip of (name, bytes) entries.
pub fn zip_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in entries {
            z.start_file(*name, opts).unwrap();
            z.write_all(bytes).unwrap();
        }
        z.finish().unwrap();
    }
    buf.into_inner()
}

/// A tar.gz of (name, bytes) entries.
pub fn targz_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut t = tar::Builder::new(gz);
    for (name, bytes) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        t.append_data(&mut h, name, &bytes[..]).unwrap();
    }
    t.into_inner().unwrap().finish().unwrap()
}
