//! A throwaway PostgreSQL cluster for tests, started as a child of the test
//! process and stopped when dropped.
//!
//! ```ignore
//! use quai_test_support::pg;
//! let cluster = pg::PgCluster::shared();        // one per test binary
//! let url = cluster.create_database("mytest");  // postgres://...
//! ```
//!
//! - Finds `initdb`, `pg_ctl`, `createdb` under `/usr/lib/postgresql/<newest>/bin`,
//!   else on `PATH`. A missing PostgreSQL panics with a message saying what
//!   to install: a test never silently skips.
//! - As root (initdb refuses root), the cluster folder is handed to the
//!   `postgres` user and the tools run through `runuser -u postgres --`.
//! - Listens on 127.0.0.1 on a free port, unix socket in the temp folder,
//!   `trust` authentication for the `postgres` superuser.
//! - Stopped on drop (`pg_ctl stop -m immediate`) and folder removed. A
//!   watchdog shell process also stops it once the test process is gone, so
//!   a [`PgCluster::shared`] cluster (a static, never dropped) or a test
//!   killed with SIGKILL leaves nothing running.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub struct PgCluster {
    pub port: u16,
    pub dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    watchdog: Option<Child>,
    databases: AtomicUsize,
}

fn find_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").exists() && dir.join("pg_ctl").exists() {
                return dir;
            }
        }
    }
    panic!(
        "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin \
         or on PATH: install the Debian package `postgresql` (scripts/test.sh does it)"
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PgCluster {
    /// Run a PostgreSQL tool, as the `postgres` user when we are root.
    fn tool(&self, name: &str) -> Command {
        let exe = self.bin.join(name);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn run(&self, mut cmd: Command, what: &str) {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        if !out.status.success() {
            panic!(
                "{what} failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Start a new cluster (a few seconds), tuned for tests: no fsync.
    pub fn start() -> PgCluster {
        PgCluster::start_with(false)
    }

    /// Start a new cluster; `durable` keeps fsync and synchronous commit on
    /// (benchmarks that must reflect production).
    pub fn start_with(durable: bool) -> PgCluster {
        let bin = find_bin();
        let as_postgres = is_root();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("quai-pg-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create cluster folder");
        if as_postgres {
            let st = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(
                st.success(),
                "chown of {} to postgres failed",
                dir.display()
            );
        }
        let mut cluster = PgCluster {
            port: crate::free_port(),
            dir,
            bin,
            as_postgres,
            watchdog: None,
            databases: AtomicUsize::new(0),
        };
        let data = cluster.data_dir();
        let mut initdb = cluster.tool("initdb");
        initdb.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        cluster.run(initdb, "initdb");
        let tuning = if durable {
            ""
        } else {
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        };
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=200{tuning}",
            cluster.port,
            cluster.dir.display()
        );
        let mut start = cluster.tool("pg_ctl");
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(cluster.dir.join("log"))
            .args(["-o", &opts, "-w", "-t", "60", "start"]);
        cluster.run(start, "pg_ctl start");
        cluster.watchdog = cluster.spawn_watchdog();
        cluster.wait_ready();
        cluster
    }

    /// One cluster per test binary, started on first use.
    pub fn shared() -> &'static PgCluster {
        static CLUSTER: OnceLock<PgCluster> = OnceLock::new();
        CLUSTER.get_or_init(PgCluster::start)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A shell that stops the cluster once this process is gone.
    fn spawn_watchdog(&self) -> Option<Child> {
        let stop = format!(
            "{} '{}' -D '{}' stop -m immediate",
            if self.as_postgres {
                "runuser -u postgres --"
            } else {
                ""
            },
            self.bin.join("pg_ctl").display(),
            self.data_dir().display()
        );
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            dir = self.dir.display()
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = Command::new(self.bin.join("pg_isready"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
                panic!(
                    "PostgreSQL did not become ready on port {}:\n{log}",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// URL of a database (no check that it exists).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Create a fresh database whose name starts with `prefix`; returns its URL.
    pub fn create_database(&self, prefix: &str) -> String {
        let n = self.databases.fetch_add(1, Ordering::SeqCst);
        let name: String = format!("{prefix}_{n}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let mut cmd = Command::new(self.bin.join("createdb"));
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            &name,
        ]);
        self.run(cmd, "createdb");
        self.url(&name)
    }

    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let mut stop = self.tool("pg_ctl");
        stop.arg("-D")
            .arg(self.data_dir())
            .args(["stop", "-m", "immediate"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = stop.status();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
