//! Two `quai run` instances sharing one durable PostgreSQL spool.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::gen;

use super::cache::cached_flows;
use super::child::{reports_present, status_counts, Daemon};
use super::drops::limits_for;
use super::options::{goal, RunOptions, PARTNER};

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
pub(super) fn postgres_2x(opts: &RunOptions) -> anyhow::Result<Value> {
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
        // A copy, not a hard link: drop zones refuse a file with several
        // links (issue 14), so a linked cache file would be refused.
        fs::copy(cache.join(f), staging.join(f))?;
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
