//! Drop scenarios: flows renamed at once into a fresh daemon's inbound
//! folder, timed to the last report, beside the one-core decompression
//! baseline and the in-process ceiling.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::gen;

use super::cache::cached_flows;
use super::child::{reports_present, status_counts, Daemon};
use super::options::{goal, RunOptions};

// ------------------------------------------------------------------ baseline

/// Time the one-core decompression of every file, sequentially.
pub(super) fn baseline(
    kind: gen::Kind,
    dir: &Path,
    files: &[String],
) -> anyhow::Result<(f64, &'static str)> {
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

pub(super) fn limits_for(invoices: usize) -> String {
    let cap = invoices.max(500) as u64;
    format!(
        "max_invoices_per_flow = {cap}\nmax_archive_entries = {}\nmax_flow_bytes = \"64GiB\"\nmax_unpacked_bytes = \"256GiB\"\nmax_unpacked_ratio = 100000\n",
        cap.max(10_000)
    )
}

/// Drop `flows` × `invoices` at once into a fresh daemon and time it.
pub(super) fn drop_scenario(
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
    // Stage copies beside the drop zone (same filesystem), so the drop is
    // one rename per file and the cache stays intact.
    let staging = d.home.join("staging");
    fs::create_dir_all(&staging)?;
    for f in &files {
        // A copy, not a hard link: drop zones refuse a file with several
        // links (issue 14), so a linked cache file would be refused.
        fs::copy(cache.join(f), staging.join(f))?;
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
pub(super) fn in_process(
    dir: &Path,
    files: &[String],
    max_invoices: usize,
) -> anyhow::Result<(f64, u64)> {
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
