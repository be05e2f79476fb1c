//! `directory-5m`: the recipient directory at a national platform's size
//! (issue 15). A generated 5,000,000-line CSV (cached under the work
//! folder; 2 M SIREN lines, 2 M SIREN_SIRET lines, 1 M routing-code lines,
//! a tenth of them with validity dates, 50 partners) is imported by the
//! real binary (`quai directory import`, a fresh SQLite spool), timed, its
//! peak RSS read from /proc while it runs; then lookups per second are
//! measured in process against that spool (`Spool::route`, one at a time
//! on one connection: exact hits, fallbacks from an unknown routing code to
//! the SIRET and SIREN lines, 0009 SIRET lookups, and misses), then the
//! same addresses batched as the pipeline looks them up (`Spool::routes`,
//! 500 per call).

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};

use super::child::proc_status_kib;
use super::options::{goal, RunOptions};

const LINES: u64 = 5_000_000;
const PARTNERS: u64 = 50;
const LOOKUPS: u64 = 100_000;
/// Addresses per batched lookup (`Spool::routes`, as the pipeline routes a
/// batch of invoices).
const BATCH: usize = 500;

fn siren(i: u64) -> u64 {
    100_000_000 + i
}

/// Line `i` of the generated file (0-based, header excluded).
fn line(i: u64, out: &mut impl Write) -> std::io::Result<()> {
    let partner = i % PARTNERS;
    let dates = if i.is_multiple_of(10) {
        "2020-01-01,2030-12-31"
    } else {
        ","
    };
    match i % 5 {
        0 | 1 => writeln!(out, "0225:{},p{partner},{dates}", siren(i)),
        2 | 3 => writeln!(
            out,
            "0225:{}_{}00012,p{partner},{dates}",
            siren(i),
            siren(i)
        ),
        _ => writeln!(
            out,
            "0225:{}_{}00012_SVC,p{partner},{dates}",
            siren(i),
            siren(i)
        ),
    }
}

fn generate(path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let tmp = path.with_extension("tmp");
    let mut w = std::io::BufWriter::new(fs::File::create(&tmp)?);
    writeln!(w, "address,partner,valid_from,valid_to")?;
    for i in 0..LINES {
        line(i, &mut w)?;
    }
    w.flush()?;
    drop(w);
    fs::rename(&tmp, path)?;
    Ok(())
}

pub(super) fn directory_5m(opts: &RunOptions) -> anyhow::Result<Value> {
    let csv = opts.work.join("directory-5m.csv");
    generate(&csv).context("cannot generate the directory file")?;
    let home = opts.work.join("directory-5m-home");
    let _ = fs::remove_dir_all(&home);
    fs::create_dir_all(&home)?;
    let mut config = format!(
        "[dropzones]\nenabled = false\n[directory]\nfile = \"{}\"\n",
        csv.display()
    );
    for p in 0..PARTNERS {
        config.push_str(&format!("[[partner]]\nid = \"p{p}\"\n"));
    }
    let cfg = home.join("quai.toml");
    fs::write(&cfg, config)?;

    let started = Instant::now();
    let mut child = Command::new(&opts.quai)
        .arg("--config")
        .arg(&cfg)
        .args(["directory", "import", "--json"])
        .env_remove("QUAI_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start quai directory import")?;
    let pid = child.id();
    let mut peak_kib = 0;
    let status = loop {
        if let Some(kib) = proc_status_kib(pid, "VmHWM:") {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if started.elapsed() > opts.timeout {
            let _ = child.kill();
            anyhow::bail!("the import did not finish within {:?}", opts.timeout);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let import_s = started.elapsed().as_secs_f64();
    let out = child.wait_with_output()?;
    anyhow::ensure!(
        status.success(),
        "import failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let db_bytes = fs::metadata(home.join("spool.db"))
        .map(|m| m.len())
        .unwrap_or(0);

    // Lookups in process, on the spool the import filled.
    let url = format!("sqlite://{}", home.join("spool.db").display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let address = |k: u64| {
        // Line kinds repeat every 5 lines (see `line`).
        let base = (k * 7_919) % (LINES / 5) * 5;
        match k % 4 {
            0 => format!("0225:{}", siren(base)),
            1 => format!("0225:{}_{}00012_OTHER", siren(base + 2), siren(base + 2)),
            2 => format!("0009:{}00012", siren(base + 3)),
            _ => format!("0225:{}", 900_000_000 + k),
        }
    };
    let (lookups_s, batched_s, found, found_batched) = rt.block_on(async {
        let spool = quai_spool::Spool::connect(&url, "bench").await?;
        let on = chrono::NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        let mut found = 0u64;
        let t = Instant::now();
        for k in 0..LOOKUPS {
            if spool.route(&address(k), on).await?.is_some() {
                found += 1;
            }
        }
        let rate = LOOKUPS as f64 / t.elapsed().as_secs_f64();
        // As the pipeline looks up: a batch of invoices' addresses at once.
        let mut found_batched = 0u64;
        let t = Instant::now();
        let all: Vec<u64> = (0..LOOKUPS).collect();
        for chunk in all.chunks(BATCH) {
            let batch: Vec<String> = chunk.iter().map(|&k| address(k)).collect();
            found_batched += spool.routes(&batch, on).await?.len() as u64;
        }
        let batched = LOOKUPS as f64 / t.elapsed().as_secs_f64();
        anyhow::Ok((rate, batched, found, found_batched))
    })?;
    anyhow::ensure!(
        found == LOOKUPS / 4 * 3 && found_batched == found,
        "lookups found {found} (batched {found_batched}) of {}",
        LOOKUPS / 4 * 3
    );

    let peak_mib = peak_kib as f64 / 1024.0;
    say!(
        opts,
        "import of {LINES} lines: {import_s:.1} s ({:.0} lines/s), peak RSS {peak_mib:.0} MiB, \
         spool {:.0} MiB; {lookups_s:.0} lookups/s serial, {batched_s:.0}/s batched by {BATCH}",
        LINES as f64 / import_s,
        db_bytes as f64 / 1048576.0
    );
    if !opts.keep {
        let _ = fs::remove_dir_all(&home);
    }
    Ok(json!({
        "scenario": "directory-5m",
        "lines": LINES,
        "import_seconds": import_s,
        "peak_rss_mib": peak_mib,
        "spool_mib": db_bytes as f64 / 1048576.0,
        "lookups_per_second": lookups_s,
        "batched_lookups_per_second": batched_s,
        "batch": BATCH,
        "goals": [
            goal("directory import peak RSS", format!("{peak_mib:.0} MiB"), "≤ 200 MiB", peak_mib <= 200.0),
            goal("directory lookups, batched as the pipeline does", format!("{batched_s:.0}/s"), "≥ 20,000/s", batched_s >= 20_000.0),
        ],
    }))
}
