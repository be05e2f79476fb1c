//! A `quai run` child process on its own QUAI_HOME, observed from the
//! outside: `quai status --json`, report files, /proc figures.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

use super::options::{RunOptions, PARTNER};

/// A `quai run` child on its own QUAI_HOME; killed on drop.
pub struct Daemon {
    pub child: Child,
    pub home: PathBuf,
    pub config: PathBuf,
    pub quai: PathBuf,
    keep: bool,
    /// The shared outbound folder of a multi-instance run.
    outbound: Option<PathBuf>,
}

impl Daemon {
    /// Start `quai run --config home/quai.toml` with the given `[limits]`
    /// lines, and wait until it answers `quai status`.
    pub fn start(opts: &RunOptions, name: &str, limits: &str) -> anyhow::Result<Daemon> {
        Daemon::start_with(opts, name, limits, None)
    }

    /// [`Daemon::start`] on a PostgreSQL spool shared with other instances:
    /// `shared` holds the flow store and the outbound folder.
    pub fn start_with(
        opts: &RunOptions,
        name: &str,
        limits: &str,
        postgres: Option<(&str, &Path)>,
    ) -> anyhow::Result<Daemon> {
        Daemon::launch(opts, name, limits, postgres, "", "off")
    }

    /// [`Daemon::start`] with more configuration (`extra`, TOML appended
    /// after `[limits]`: e.g. the exchange's recipients).
    pub fn start_extra(
        opts: &RunOptions,
        name: &str,
        limits: &str,
        extra: &str,
    ) -> anyhow::Result<Daemon> {
        Daemon::launch(opts, name, limits, None, extra, "off")
    }

    /// [`Daemon::start`] with the HTTP listener on `listen` (the partner
    /// API's scenario).
    pub fn start_listening(
        opts: &RunOptions,
        name: &str,
        limits: &str,
        listen: &str,
    ) -> anyhow::Result<Daemon> {
        Daemon::launch(opts, name, limits, None, "", listen)
    }

    fn launch(
        opts: &RunOptions,
        name: &str,
        limits: &str,
        postgres: Option<(&str, &Path)>,
        extra: &str,
        listen: &str,
    ) -> anyhow::Result<Daemon> {
        anyhow::ensure!(
            opts.quai.exists(),
            "{} not found: build it with `cargo build --release -p quai` (or pass --quai)",
            opts.quai.display()
        );
        let home = opts
            .work
            .join("runs")
            .join(format!("{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&home);
        fs::create_dir_all(home.join("inbound").join(PARTNER))?;
        fs::create_dir_all(home.join("outbound").join(PARTNER))?;
        let config = home.join("quai.toml");
        let text = match postgres {
            None => format!(
                "# written by quai-bench: the embedded default, HTTP off, limits raised\n\
                 [spool]\nurl = \"sqlite://{}\"\n\n[dropzones]\ninbound = \"inbound\"\noutbound = \"outbound\"\n\n\
                 [http]\nlisten = \"{listen}\"\n\n[limits]\n{limits}\n",
                home.join("spool.db").display()
            ),
            Some((url, shared)) => {
                fs::create_dir_all(shared.join("outbound").join(PARTNER))?;
                format!(
                    "# written by quai-bench: one of several instances on one PostgreSQL\n\
                     [spool]\nurl = \"{url}\"\nstore = \"{}\"\n\n[dropzones]\ninbound = \"inbound\"\noutbound = \"{}\"\n\n\
                     [http]\nlisten = \"off\"\n\n[limits]\n{limits}\n",
                    shared.join("store").display(),
                    shared.join("outbound").display()
                )
            }
        };
        fs::write(&config, format!("{text}\n{extra}"))?;
        let log = fs::File::create(home.join("quai.log"))?;
        let child = Command::new(&opts.quai)
            .arg("--config")
            .arg(&config)
            .arg("run")
            .env("QUAI_HOME", &home)
            .env(
                "QUAI_LOG",
                std::env::var("QUAI_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", opts.quai.display()))?;
        let mut d = Daemon {
            child,
            home,
            config,
            quai: opts.quai.clone(),
            keep: opts.keep,
            outbound: postgres.map(|(_, shared)| shared.join("outbound").join(PARTNER)),
        };
        let started = Instant::now();
        let mut db_seen: Option<Instant> = None;
        loop {
            if let Some(status) = d.child.try_wait()? {
                bail!("quai run exited at start ({status}): {}", d.log_tail());
            }
            // `quai status` on a spool still being created races the
            // daemon's own migrations (both run them): wait for the
            // daemon's spool first.
            let db = d.home.join("spool.db");
            if db_seen.is_none() && fs::metadata(&db).map(|m| m.len() > 0).unwrap_or(false) {
                db_seen = Some(Instant::now());
            }
            let ready =
                postgres.is_some() || db_seen.is_some_and(|t| t.elapsed() > Duration::from_secs(1));
            if ready && d.status().is_ok() {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!(
                    "quai run did not answer `quai status` within 30s: {}",
                    d.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The watcher is installed after the spool opens; give it a moment.
        std::thread::sleep(Duration::from_millis(300));
        Ok(d)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn inbound(&self) -> PathBuf {
        self.home.join("inbound").join(PARTNER)
    }

    pub fn outbound(&self) -> PathBuf {
        self.outbound
            .clone()
            .unwrap_or_else(|| self.home.join("outbound").join(PARTNER))
    }

    /// `quai status --json` as JSON.
    pub fn status(&self) -> anyhow::Result<Value> {
        let out = Command::new(&self.quai)
            .arg("--config")
            .arg(&self.config)
            .args(["status", "--json"])
            .env("QUAI_HOME", &self.home)
            .env("QUAI_LOG", "error")
            .output()?;
        if !out.status.success() {
            bail!(
                "quai status failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// Peak resident set (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.pid(), "VmHWM:")
    }

    /// User + system CPU seconds used so far.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid())).ok()?;
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let utime: f64 = f.get(11)?.parse().ok()?;
        let stime: f64 = f.get(12)?.parse().ok()?;
        Some((utime + stime) / clock_ticks())
    }

    pub fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.home.join("quai.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    pub fn alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("quai run died ({status}): {}", self.log_tail());
        }
        Ok(())
    }

    /// SIGTERM, then wait (SIGKILL after 30s).
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .stderr(Stdio::null())
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        if !self.keep {
            let _ = fs::remove_dir_all(&self.home);
        }
    }
}

pub(super) fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

pub(super) fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

pub(super) fn status_counts(v: &Value) -> (u64, u64) {
    let inv = &v["totals"]["invoices"];
    (
        inv["accepted"].as_u64().unwrap_or(0),
        inv["rejected"].as_u64().unwrap_or(0),
    )
}

/// The report files present for each flow file name (`<file>.<id>.report.json`).
pub(super) fn reports_present(outbound: &Path, expected: &HashSet<String>) -> usize {
    let Ok(rd) = fs::read_dir(outbound) else {
        return 0;
    };
    let mut found = HashSet::new();
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".report.json") {
            if let Some((file, _id)) = stem.rsplit_once('.') {
                if expected.contains(file) {
                    found.insert(file.to_string());
                }
            }
        }
    }
    found.len()
}
