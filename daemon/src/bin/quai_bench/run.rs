//! Benchmark scenarios: a real `quai run` child process, measured from the
//! outside exactly as an operator would see it.
//!
//! Drop scenarios generate their flows first (outside the timed window, and
//! cached by parameters under the work folder), time the one-core
//! decompression baseline (`unzip -p`, `gzip -dc`, `tar -xzOf` under
//! `taskset -c 0`) on the same files, start the daemon on a fresh QUAI_HOME,
//! then at t0 rename every flow into `inbound/<partner>/` (atomic renames,
//! "dropped at once") and stop the clock when the last report file exists in
//! `outbound/<partner>/`; `quai status --json` must then show exactly the
//! accepted and rejected counts of the manifest. Peak RSS is the child's
//! VmHWM from /proc, read before it is stopped.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::gen;

pub const PARTNER: &str = "acme";

pub struct RunOptions {
    pub quai: PathBuf,
    pub work: PathBuf,
    pub flows: Option<usize>,
    pub invoices: Option<usize>,
    pub sizes: Vec<usize>,
    pub repeat: usize,
    pub keep: bool,
    pub timeout: Duration,
    pub json: bool,
}

/// `quai` beside the running `quai-bench` (both built by the same cargo).
pub fn default_quai() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("quai")))
        .unwrap_or_else(|| PathBuf::from("quai"))
}

pub const SCENARIOS: &[&str] = &[
    "validate-5000-lines",
    "latency-100",
    "ubl-zip-200x500",
    "edifact-100k",
    "linearity",
    "rss-1m",
    "postgres-2x",
];

macro_rules! say {
    ($opts:expr, $($arg:tt)*) => {
        if $opts.json { eprintln!($($arg)*) } else { println!($($arg)*) }
    };
}

pub fn main(scenario: &str, opts: &RunOptions) -> anyhow::Result<()> {
    fs::create_dir_all(&opts.work)
        .with_context(|| format!("cannot create {}", opts.work.display()))?;
    let names: Vec<&str> = if scenario == "all" {
        SCENARIOS.to_vec()
    } else if SCENARIOS.contains(&scenario) {
        vec![scenario]
    } else {
        bail!(
            "unknown scenario {scenario:?}; one of {} or all",
            SCENARIOS.join(", ")
        );
    };
    let machine = machine();
    say!(opts, "machine: {}", machine_line(&machine));
    let mut results = Vec::new();
    let mut failed = 0;
    for name in names {
        say!(opts, "\n== {name}");
        let r = match name {
            "ubl-zip-200x500" => drop_scenario(name, gen::Kind::UblZip, 200, 500, opts),
            "edifact-100k" => drop_scenario(name, gen::Kind::EdifactGz, 1, 100_000, opts),
            "rss-1m" => drop_scenario(name, gen::Kind::UblTargz, 1, 1_000_000, opts),
            "latency-100" => latency(opts),
            "validate-5000-lines" => validate_lines(opts),
            "linearity" => linearity(opts),
            "postgres-2x" => postgres_2x(opts),
            _ => unreachable!("checked above"),
        };
        match r {
            Ok(v) => {
                if v.get("ok") == Some(&Value::Bool(false)) {
                    failed += 1;
                }
                results.push(v)
            }
            Err(e) => {
                failed += 1;
                say!(opts, "FAILED: {e:#}");
                results.push(json!({"scenario": name, "ok": false, "error": format!("{e:#}")}));
            }
        }
    }
    say!(opts, "\n== goals");
    for r in &results {
        for g in r["goals"].as_array().into_iter().flatten() {
            say!(
                opts,
                "  {:<4} {} : {} (goal {})",
                if g["met"] == Value::Bool(true) {
                    "met"
                } else {
                    "MISS"
                },
                g["what"].as_str().unwrap_or(""),
                g["measured"].as_str().unwrap_or(""),
                g["goal"].as_str().unwrap_or("")
            );
        }
    }
    if opts.json {
        let out = json!({"machine": machine, "results": results});
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    if failed > 0 {
        bail!("{failed} scenario(s) failed or did not complete (missed goals alone do not fail)");
    }
    Ok(())
}

/// One figure against its goal of issue 8.
fn goal(what: &str, measured: String, goal: &str, met: bool) -> Value {
    json!({"what": what, "measured": measured, "goal": goal, "met": met})
}

// ------------------------------------------------------------------ machine

fn machine() -> Value {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let mem_kb = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let date = Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%dT%H:%M:%SZ")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let rev = Command::new("git")
        .arg("-C")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .or_else(|| std::env::var("QUAI_BENCH_REV").ok())
        .unwrap_or_default();
    json!({
        "nproc": cpus,
        "cpu": model,
        "mem_gib": (mem_kb as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        "kernel": fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "date": date,
        "git": rev,
    })
}

fn machine_line(m: &Value) -> String {
    format!(
        "{} CPU(s) {}, {} GiB RAM, Linux {}, {} (git {})",
        m["nproc"],
        m["cpu"].as_str().unwrap_or(""),
        m["mem_gib"],
        m["kernel"].as_str().unwrap_or(""),
        m["date"].as_str().unwrap_or(""),
        m["git"].as_str().unwrap_or("")
    )
}

// ------------------------------------------------------------------ flows

/// Generated flows cached under `work/cache/<key>/` (with expected.json).
fn cached_flows(
    opts: &RunOptions,
    kind: gen::Kind,
    flows: usize,
    invoices: usize,
    lines: (usize, usize),
    share: f64,
    seed: u64,
) -> anyhow::Result<(PathBuf, gen::Manifest)> {
    let key = format!(
        "{}-{flows}x{invoices}-l{}-{}-s{}-seed{seed}",
        kind.as_str(),
        lines.0,
        lines.1,
        (share * 1000.0).round() as u64
    );
    let dir = opts.work.join("cache").join(&key);
    let gopts = gen::Options {
        kind,
        flows,
        invoices,
        lines_min: lines.0,
        lines_max: lines.1,
        invalid_share: share,
        seed,
        run_id: Some(format!("B{seed}")),
        out: dir.clone(),
    };
    let done = dir.join(".complete");
    if !done.exists() {
        let _ = fs::remove_dir_all(&dir);
        let t = Instant::now();
        let m = gen::generate(&gopts, 2)
            .with_context(|| format!("generating flows into {}", dir.display()))?;
        fs::write(&done, b"")?;
        eprintln!(
            "  generated {} flow(s), {} invoices, {:.1} MB ({:.1} MB unpacked) in {:.1}s",
            m.flows.len(),
            m.invoices,
            m.bytes as f64 / 1e6,
            m.unpacked_bytes as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
    }
    // The manifest is rebuilt from the cache (cheap) rather than parsed:
    // it is what `generate` wrote, re-derived to stay typed.
    let manifest = read_manifest(&dir.join("expected.json"))?;
    Ok((dir, manifest))
}

fn read_manifest(path: &Path) -> anyhow::Result<gen::Manifest> {
    let v: Value = serde_json::from_slice(&fs::read(path)?)?;
    let kind = v["kind"]
        .as_str()
        .and_then(gen::Kind::parse)
        .context("manifest kind")?;
    let flows = v["flows"]
        .as_array()
        .context("manifest flows")?
        .iter()
        .map(|f| gen::FlowManifest {
            file: f["file"].as_str().unwrap_or_default().to_string(),
            invoices: f["invoices"].as_u64().unwrap_or(0) as usize,
            rejected: f["rejected"].as_u64().unwrap_or(0) as usize,
            lines: f["lines"].as_u64().unwrap_or(0) as usize,
            bytes: f["bytes"].as_u64().unwrap_or(0),
            unpacked_bytes: f["unpacked_bytes"].as_u64().unwrap_or(0),
            invalid: Vec::new(),
        })
        .collect::<Vec<_>>();
    Ok(gen::Manifest {
        kind,
        seed: v["seed"].as_u64().unwrap_or(0),
        run_id: v["run_id"].as_str().unwrap_or_default().to_string(),
        invoices: v["invoices"].as_u64().unwrap_or(0) as usize,
        rejected: v["rejected"].as_u64().unwrap_or(0) as usize,
        bytes: v["bytes"].as_u64().unwrap_or(0),
        unpacked_bytes: v["unpacked_bytes"].as_u64().unwrap_or(0),
        flows,
    })
}

// ------------------------------------------------------------------ daemon

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
                 [http]\nlisten = \"off\"\n\n[limits]\n{limits}\n",
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
        fs::write(&config, text)?;
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

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn status_counts(v: &Value) -> (u64, u64) {
    let inv = &v["totals"]["invoices"];
    (
        inv["accepted"].as_u64().unwrap_or(0),
        inv["rejected"].as_u64().unwrap_or(0),
    )
}

/// The report files present for each flow file name (`<file>.<id>.report.json`).
fn reports_present(outbound: &Path, expected: &HashSet<String>) -> usize {
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

// ------------------------------------------------------------------ baseline

/// Time the one-core decompression of every file, sequentially.
fn baseline(kind: gen::Kind, dir: &Path, files: &[String]) -> anyhow::Result<(f64, &'static str)> {
    let tool = match kind {
        gen::Kind::UblZip | gen::Kind::CiiZip => "taskset -c 0 unzip -p FILE",
        gen::Kind::UblTargz => "taskset -c 0 tar -xzOf FILE",
        gen::Kind::EdifactGz => "taskset -c 0 gzip -dc FILE",
    };
    let t = Instant::now();
    for f in files {
        let path = dir.join(f);
        let mut cmd = Command::new("taskset");
        cmd.args(["-c", "0"]);
        match kind {
            gen::Kind::UblZip | gen::Kind::CiiZip => cmd.arg("unzip").arg("-p").arg(&path),
            gen::Kind::UblTargz => cmd.arg("tar").arg("-xzOf").arg(&path),
            gen::Kind::EdifactGz => cmd.arg("gzip").arg("-dc").arg(&path),
        };
        let status = cmd
            .stdout(Stdio::null())
            .status()
            .with_context(|| format!("running {tool} (are taskset/unzip installed?)"))?;
        anyhow::ensure!(status.success(), "{tool} failed on {}", path.display());
    }
    Ok((t.elapsed().as_secs_f64(), tool))
}

// ------------------------------------------------------------------ drops

fn limits_for(invoices: usize) -> String {
    let cap = invoices.max(500) as u64;
    format!(
        "max_invoices_per_flow = {cap}\nmax_archive_entries = {}\nmax_flow_bytes = \"64GiB\"\nmax_unpacked_bytes = \"256GiB\"\nmax_unpacked_ratio = 100000\n",
        cap.max(10_000)
    )
}

/// Drop `flows` × `invoices` at once into a fresh daemon and time it.
fn drop_scenario(
    name: &str,
    kind: gen::Kind,
    flows: usize,
    invoices: usize,
    opts: &RunOptions,
) -> anyhow::Result<Value> {
    let flows = opts.flows.unwrap_or(flows);
    let invoices = opts.invoices.unwrap_or(invoices);
    let (cache, manifest) = cached_flows(opts, kind, flows, invoices, (1, 3), 0.1, 8)?;
    let files: Vec<String> = manifest.flows.iter().map(|f| f.file.clone()).collect();

    let (unzip_s, tool) = baseline(kind, &cache, &files)?;
    say!(
        opts,
        "  baseline: {tool} over {} file(s): {unzip_s:.2}s",
        files.len()
    );
    let (inproc_s, inproc_docs) = in_process(&cache, &files, invoices)?;
    say!(
        opts,
        "  in-process read+map+validate, one core, no spool: {inproc_s:.2}s ({:.0} invoices/s)",
        inproc_docs as f64 / inproc_s
    );

    let mut d = Daemon::start(opts, name, &limits_for(invoices))?;
    // Stage hard links beside the drop zone (same filesystem), so the drop
    // is one rename per file and the cache stays intact.
    let staging = d.home.join("staging");
    fs::create_dir_all(&staging)?;
    for f in &files {
        fs::hard_link(cache.join(f), staging.join(f))
            .or_else(|_| fs::copy(cache.join(f), staging.join(f)).map(|_| ()))?;
    }
    let cpu0 = d.cpu_seconds().unwrap_or(0.0);
    let expected: HashSet<String> = files.iter().cloned().collect();
    let inbound = d.inbound();
    let outbound = d.outbound();

    let t0 = Instant::now();
    for f in &files {
        fs::rename(staging.join(f), inbound.join(f))?;
    }
    let mut last_progress = Instant::now();
    let mut last_count = 0;
    let reports_at = loop {
        let n = reports_present(&outbound, &expected);
        if n == files.len() {
            break t0.elapsed();
        }
        if n != last_count {
            last_count = n;
            last_progress = Instant::now();
        }
        d.alive()?;
        if t0.elapsed() > opts.timeout {
            bail!(
                "timeout: {n} of {} reports after {:?} (last progress {:?} ago)",
                files.len(),
                opts.timeout,
                last_progress.elapsed()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let peak_kib = d.peak_rss_kib().unwrap_or(0);
    let cpu = d.cpu_seconds().unwrap_or(0.0) - cpu0;
    // The spool must hold exactly the manifest's verdicts.
    let want = (
        (manifest.invoices - manifest.rejected) as u64,
        manifest.rejected as u64,
    );
    let mut got = status_counts(&d.status()?);
    let settle = Instant::now();
    while got != want && settle.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(200));
        got = status_counts(&d.status()?);
    }
    let status = d.status()?;
    let counts_ok = got == want;

    let secs = reports_at.as_secs_f64();
    let ratio = secs / unzip_s;
    let inv_s = manifest.invoices as f64 / secs;
    let mb_s = manifest.bytes as f64 / 1e6 / secs;
    let unpacked_mb_s = manifest.unpacked_bytes as f64 / 1e6 / secs;
    say!(
        opts,
        "  quai: {} flow(s), {} invoices ({:.1} MB, {:.1} MB unpacked) dropped at once -> all reports in {secs:.2}s",
        files.len(),
        manifest.invoices,
        manifest.bytes as f64 / 1e6,
        manifest.unpacked_bytes as f64 / 1e6
    );
    say!(
        opts,
        "  {inv_s:.0} invoices/s, {mb_s:.1} MB/s packed, {unpacked_mb_s:.1} MB/s unpacked, peak RSS {:.1} MB, daemon CPU {cpu:.1}s ({:.2} cores)",
        peak_kib as f64 / 1024.0,
        cpu / secs
    );
    say!(opts, "  quai time / {tool} time = {ratio:.2} (goal <= 1.0)");
    say!(
        opts,
        "  status: accepted {} rejected {} (expected {} / {}) {}",
        got.0,
        got.1,
        want.0,
        want.1,
        if counts_ok { "OK" } else { "MISMATCH" }
    );
    if !counts_ok {
        say!(opts, "  status: {status}");
        say!(opts, "  daemon log tail:\n{}", d.log_tail());
    }
    let peak_mb = peak_kib as f64 / 1024.0;
    let mut goals = vec![goal(
        &format!("peak RSS, {name}"),
        format!("{peak_mb:.0} MB"),
        "<= 200 MB",
        peak_mb <= 200.0,
    )];
    match kind {
        gen::Kind::UblZip | gen::Kind::CiiZip | gen::Kind::UblTargz => goals.push(goal(
            &format!("{name}: quai time / {tool} time"),
            format!("{ratio:.2}x ({inv_s:.0} invoices/s)"),
            "<= 1.0x",
            ratio <= 1.0,
        )),
        gen::Kind::EdifactGz => goals.push(goal(
            &format!("{name}: EDIFACT messages per second"),
            format!("{inv_s:.0} msg/s"),
            ">= 150,000 msg/s",
            inv_s >= 150_000.0,
        )),
    }
    Ok(json!({
        "scenario": name,
        "goals": goals,
        "ok": counts_ok,
        "kind": kind.as_str(),
        "flows": files.len(),
        "invoices": manifest.invoices,
        "expected_rejected": manifest.rejected,
        "bytes": manifest.bytes,
        "unpacked_bytes": manifest.unpacked_bytes,
        "seconds": secs,
        "invoices_per_s": inv_s,
        "mb_per_s": mb_s,
        "unpacked_mb_per_s": unpacked_mb_s,
        "peak_rss_mb": peak_kib as f64 / 1024.0,
        "daemon_cpu_s": cpu,
        "baseline_tool": tool,
        "baseline_seconds": unzip_s,
        "in_process_seconds": inproc_s,
        "in_process_invoices_per_s": inproc_docs as f64 / inproc_s,
        "ratio_quai_over_baseline": ratio,
        "status": status,
    }))
}

/// Read, map and validate `files` in this process, one core, no spool: the
/// ceiling the daemon's pipeline could reach with one worker.
fn in_process(dir: &Path, files: &[String], max_invoices: usize) -> anyhow::Result<(f64, u64)> {
    let limits = quai_mappings::flow::FlowLimits {
        max_invoices: max_invoices as u64 + 1,
        max_unpacked_bytes: u64::MAX / 4,
        max_ratio: 100_000,
        max_entries: max_invoices as u64 + 1,
        ..quai_mappings::flow::FlowLimits::default()
    };
    let mut docs = 0u64;
    let t = Instant::now();
    for f in files {
        let end = quai_mappings::flow::process(&dir.join(f), f, &limits, &mut |_doc| {
            docs += 1;
            Ok(())
        });
        anyhow::ensure!(
            matches!(end, quai_mappings::flow::FlowEnd::Done(_)),
            "{f} not processed in-process: {end:?}"
        );
    }
    Ok((t.elapsed().as_secs_f64(), docs))
}

// ------------------------------------------------------------------ latency

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// 100 small flows, one at a time, into an idle daemon.
fn latency(opts: &RunOptions) -> anyhow::Result<Value> {
    let drops = opts.flows.unwrap_or(100);
    let per = opts.invoices.unwrap_or(1);
    let (cache, manifest) = cached_flows(opts, gen::Kind::UblZip, drops, per, (1, 3), 0.0, 9)?;
    let mut d = Daemon::start(opts, "latency-100", &limits_for(per))?;
    let staging = d.home.join("staging");
    fs::create_dir_all(&staging)?;
    let inbound = d.inbound();
    let outbound = d.outbound();
    let mut ms = Vec::with_capacity(drops);
    for f in &manifest.flows {
        fs::hard_link(cache.join(&f.file), staging.join(&f.file))
            .or_else(|_| fs::copy(cache.join(&f.file), staging.join(&f.file)).map(|_| ()))?;
        let one: HashSet<String> = [f.file.clone()].into_iter().collect();
        // Idle: let the daemon settle between drops.
        std::thread::sleep(Duration::from_millis(100));
        let t0 = Instant::now();
        fs::rename(staging.join(&f.file), inbound.join(&f.file))?;
        loop {
            if reports_present(&outbound, &one) == 1 {
                break;
            }
            if t0.elapsed() > Duration::from_secs(60) {
                d.alive()?;
                bail!("no report for {} after 60s: {}", f.file, d.log_tail());
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        ms.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    let got = status_counts(&d.status()?);
    let want = (
        (manifest.invoices - manifest.rejected) as u64,
        manifest.rejected as u64,
    );
    let mut sorted = ms.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let (p50, p99, max) = (
        percentile(&sorted, 50.0),
        percentile(&sorted, 99.0),
        sorted.last().copied().unwrap_or(f64::NAN),
    );
    say!(
        opts,
        "  {drops} drops of one {per}-invoice zip into an idle daemon: report written after p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms (goal p99 <= 200 ms)"
    );
    say!(
        opts,
        "  status: accepted {} rejected {} (expected {} / {})",
        got.0,
        got.1,
        want.0,
        want.1
    );
    Ok(json!({
        "scenario": "latency-100",
        "goals": [goal("report of a single small flow, p99 over 100 drops", format!("{p99:.0} ms"), "<= 200 ms", p99 <= 200.0)],
        "ok": got == want,
        "drops": drops,
        "invoices_per_flow": per,
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": max,
        "min_ms": sorted.first().copied().unwrap_or(f64::NAN),
        "peak_rss_mb": d.peak_rss_kib().unwrap_or(0) as f64 / 1024.0,
    }))
}

// ------------------------------------------------------------------ in-process

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Map + validate one invoice of `lines` lines, `repeat` times (medians, ms).
fn time_one(lines: usize, cii: bool, repeat: usize) -> anyhow::Result<(f64, f64, usize)> {
    let mut rng = gen::Rng::new(5000 + lines as u64);
    let inv = gen::build_invoice(&mut rng, "V", 0, 0, lines, None);
    let mut doc = String::new();
    if cii {
        gen::write_cii(&inv, &mut doc);
    } else {
        gen::write_ubl(&inv, &mut doc);
    }
    let mut map_ms = Vec::new();
    let mut val_ms = Vec::new();
    for _ in 0..repeat {
        let t = Instant::now();
        let outcome = if cii {
            quai_mappings::cii::read(doc.as_bytes())
        } else {
            quai_mappings::ubl::read(doc.as_bytes())
        }
        .map_err(|e| anyhow::anyhow!("the generated invoice cannot be read: {e}"))?;
        let mapped = t.elapsed();
        let violations = quai_mappings::validate::validate(&outcome.invoice);
        let validated = t.elapsed() - mapped;
        anyhow::ensure!(
            outcome.invoice.lines.len() == lines,
            "lines lost in mapping"
        );
        let fatal: Vec<_> = outcome
            .issues
            .iter()
            .chain(violations.iter())
            .filter(|v| v.severity == quai_mappings::Severity::Fatal)
            .collect();
        anyhow::ensure!(
            fatal.is_empty(),
            "the generated invoice is rejected: {fatal:?}"
        );
        map_ms.push(mapped.as_secs_f64() * 1000.0);
        val_ms.push(validated.as_secs_f64() * 1000.0);
    }
    Ok((median(map_ms), median(val_ms), doc.len()))
}

fn validate_lines(opts: &RunOptions) -> anyhow::Result<Value> {
    let mut rows = Vec::new();
    let ok = true;
    let mut goals = Vec::new();
    for (syntax, cii) in [("ubl", false), ("cii", true)] {
        for lines in [500usize, 5_000, 50_000] {
            let repeat = if lines > 5_000 {
                opts.repeat.min(5)
            } else {
                opts.repeat
            };
            let (map, val, size) = time_one(lines, cii, repeat)?;
            let total = map + val;
            let per_line_us = total * 1000.0 / lines as f64;
            say!(
                opts,
                "  {syntax} {lines:>6} lines ({:.1} MB): map {map:.2} ms + validate {val:.2} ms = {total:.2} ms, {per_line_us:.2} us/line (median of {repeat}){}",
                size as f64 / 1e6,
                if lines == 5_000 { " (goal <= 20 ms)" } else { "" }
            );
            if lines == 5_000 {
                goals.push(goal(
                    &format!("validate a 5,000-line {syntax} invoice (map + validate)"),
                    format!("{total:.1} ms"),
                    "<= 20 ms",
                    total <= 20.0,
                ));
                goals.push(goal(
                    &format!("validate a 5,000-line {syntax} invoice (rules only)"),
                    format!("{val:.2} ms"),
                    "<= 20 ms",
                    val <= 20.0,
                ));
            }
            rows.push(json!({"syntax": syntax, "lines": lines, "bytes": size, "map_ms": map, "validate_ms": val, "total_ms": total, "us_per_line": per_line_us, "runs": repeat}));
        }
    }
    Ok(json!({"scenario": "validate-5000-lines", "ok": ok, "goals": goals, "rows": rows}))
}

/// In-process `flow::process` over one tar.gz flow of each size, one core.
fn linearity(opts: &RunOptions) -> anyhow::Result<Value> {
    let mut rows = Vec::new();
    for &n in &opts.sizes {
        let (dir, manifest) = cached_flows(opts, gen::Kind::UblTargz, 1, n, (1, 3), 0.1, 8)?;
        let f = &manifest.flows[0];
        let limits = quai_mappings::flow::FlowLimits {
            max_invoices: n as u64 + 1,
            max_unpacked_bytes: u64::MAX / 4,
            max_ratio: 100_000,
            max_entries: n as u64 + 1,
            ..quai_mappings::flow::FlowLimits::default()
        };
        let mut docs = 0u64;
        let mut rejected = 0u64;
        let t = Instant::now();
        let end = quai_mappings::flow::process(&dir.join(&f.file), &f.file, &limits, &mut |doc| {
            docs += 1;
            if doc.is_rejected() {
                rejected += 1;
            }
            Ok(())
        });
        let secs = t.elapsed().as_secs_f64();
        anyhow::ensure!(
            matches!(end, quai_mappings::flow::FlowEnd::Done(_)),
            "flow of {n} not processed: {end:?}"
        );
        let ok = docs == f.invoices as u64 && rejected == f.rejected as u64;
        let us = secs * 1e6 / n as f64;
        say!(
            opts,
            "  {n:>8} invoices: {secs:.2}s, {:.0} invoices/s, {us:.1} us/invoice (unpack + map + validate, one core, no spool){}",
            n as f64 / secs,
            if ok { "" } else { "  COUNTS MISMATCH" }
        );
        rows.push(json!({"invoices": n, "seconds": secs, "invoices_per_s": n as f64 / secs, "us_per_invoice": us, "counts_ok": ok}));
    }
    let ok = rows.iter().all(|r| r["counts_ok"] == Value::Bool(true));
    let per: Vec<f64> = rows
        .iter()
        .filter_map(|r| r["us_per_invoice"].as_f64())
        .collect();
    let mut goals = Vec::new();
    if let (Some(first), Some(last)) = (per.first(), per.last()) {
        let growth = last / first;
        goals.push(goal(
            "cost per invoice, largest flow / smallest flow (linear in flow size)",
            format!("{growth:.2}x ({first:.0} -> {last:.0} us/invoice)"),
            "<= 1.25x",
            growth <= 1.25,
        ));
    }
    Ok(json!({"scenario": "linearity", "ok": ok, "goals": goals, "rows": rows}))
}

/// A throwaway PostgreSQL cluster (initdb + pg_ctl, durable settings), run
/// as the `postgres` user when we are root; stopped and removed on drop.
struct Pg {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Pg {
    fn start(work: &Path) -> anyhow::Result<Pg> {
        let bin = fs::read_dir("/usr/lib/postgresql")
            .context("PostgreSQL is not installed (apt-get install postgresql)")?
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
            .context("no initdb under /usr/lib/postgresql/*/bin")?;
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = work.join(format!("pg-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&dir)
                .status()?;
            anyhow::ensure!(ok.success(), "chown of {} failed", dir.display());
        }
        let pg = Pg {
            dir,
            bin,
            port,
            as_postgres,
        };
        let data = pg.dir.join("data");
        let mut initdb = pg.tool("initdb");
        initdb.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        pg.run(initdb, "initdb")?;
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=200",
            pg.port,
            pg.dir.display()
        );
        let mut start = pg.tool("pg_ctl");
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(pg.dir.join("log"))
            .args(["-o", &opts, "-w", "-t", "60", "start"]);
        pg.run(start, "pg_ctl start")?;
        let mut createdb = Command::new(pg.bin.join("createdb"));
        createdb.args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port.to_string(),
            "-U",
            "postgres",
            "quai",
        ]);
        pg.run(createdb, "createdb")?;
        Ok(pg)
    }

    fn tool(&self, name: &str) -> Command {
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(name));
            c
        } else {
            Command::new(self.bin.join(name))
        }
    }

    fn run(&self, mut cmd: Command, what: &str) -> anyhow::Result<()> {
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot run {what}"))?;
        anyhow::ensure!(
            out.status.success(),
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/quai", self.port)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let mut stop = self.tool("pg_ctl");
        stop.arg("-D")
            .arg(self.dir.join("data"))
            .args(["stop", "-m", "immediate"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = stop.status();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Two `quai run` instances on one PostgreSQL spool (durable settings),
/// sharing the flow store and the outbound folder; half of the 200 zips are
/// dropped into each instance's inbound folder at once, and either instance
/// may process any flow (work is claimed from the shared spool).
fn postgres_2x(opts: &RunOptions) -> anyhow::Result<Value> {
    let flows = opts.flows.unwrap_or(200);
    let invoices = opts.invoices.unwrap_or(500);
    let (cache, manifest) = cached_flows(opts, gen::Kind::UblZip, flows, invoices, (1, 3), 0.1, 8)?;
    let files: Vec<String> = manifest.flows.iter().map(|f| f.file.clone()).collect();
    let pg = Pg::start(&opts.work)?;
    let url = pg.url();
    let shared = opts
        .work
        .join("runs")
        .join(format!("pg2x-shared-{}", std::process::id()));
    let _ = fs::remove_dir_all(&shared);
    fs::create_dir_all(&shared)?;
    let limits = limits_for(invoices);
    let mut a = Daemon::start_with(opts, "pg2x-a", &limits, Some((&url, &shared)))?;
    let mut b = Daemon::start_with(opts, "pg2x-b", &limits, Some((&url, &shared)))?;
    let mut staged = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let d = if i % 2 == 0 { &a } else { &b };
        let staging = d.home.join("staging");
        fs::create_dir_all(&staging)?;
        fs::hard_link(cache.join(f), staging.join(f))
            .or_else(|_| fs::copy(cache.join(f), staging.join(f)).map(|_| ()))?;
        staged.push((staging.join(f), d.inbound().join(f)));
    }
    let cpu0 = a.cpu_seconds().unwrap_or(0.0) + b.cpu_seconds().unwrap_or(0.0);
    let expected: HashSet<String> = files.iter().cloned().collect();
    let outbound = shared.join("outbound").join(PARTNER);
    let t0 = Instant::now();
    for (from, to) in &staged {
        fs::rename(from, to)?;
    }
    let secs = loop {
        let n = reports_present(&outbound, &expected);
        if n == files.len() {
            break t0.elapsed().as_secs_f64();
        }
        a.alive()?;
        b.alive()?;
        if t0.elapsed() > opts.timeout {
            bail!("timeout: {n} of {} reports", files.len());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let cpu = a.cpu_seconds().unwrap_or(0.0) + b.cpu_seconds().unwrap_or(0.0) - cpu0;
    let rss = (
        a.peak_rss_kib().unwrap_or(0) as f64 / 1024.0,
        b.peak_rss_kib().unwrap_or(0) as f64 / 1024.0,
    );
    let want = (
        (manifest.invoices - manifest.rejected) as u64,
        manifest.rejected as u64,
    );
    let got = status_counts(&a.status()?);
    let inv_s = manifest.invoices as f64 / secs;
    say!(
        opts,
        "  2 instances on one PostgreSQL (durable), {} zips x {invoices} invoices dropped half into each: all reports in {secs:.2}s, {inv_s:.0} invoices/s",
        files.len()
    );
    say!(
        opts,
        "  CPU {cpu:.1}s ({:.2} cores, PostgreSQL server not counted), peak RSS {:.0} MB / {:.0} MB",
        cpu / secs,
        rss.0,
        rss.1
    );
    say!(
        opts,
        "  status: accepted {} rejected {} (expected {} / {}) {}",
        got.0,
        got.1,
        want.0,
        want.1,
        if got == want { "OK" } else { "MISMATCH" }
    );
    if got != want {
        say!(
            opts,
            "  instance a log:\n{}\n  instance b log:\n{}",
            a.log_tail(),
            b.log_tail()
        );
    }
    a.stop();
    b.stop();
    drop(a);
    drop(b);
    if !opts.keep {
        let _ = fs::remove_dir_all(&shared);
    }
    drop(pg);
    Ok(json!({
        "scenario": "postgres-2x",
        "ok": got == want,
        "measured": true,
        "flows": files.len(),
        "invoices": manifest.invoices,
        "seconds": secs,
        "invoices_per_s": inv_s,
        "daemon_cpu_s": cpu,
        "peak_rss_mb": [rss.0, rss.1],
        "goals": [goal("PostgreSQL spool, two instances", format!("{inv_s:.0} invoices/s"), ">= 20,000 invoices/s", inv_s >= 20_000.0)],
    }))
}
