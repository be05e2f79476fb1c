//! The latency scenario: one small flow at a time, drop to report.

use std::collections::HashSet;
use std::fs;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{json, Value};

use crate::gen;

use super::cache::cached_flows;
use super::child::{reports_present, status_counts, Daemon};
use super::drops::limits_for;
use super::options::{goal, RunOptions};

// ------------------------------------------------------------------ latency

pub(super) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// 100 small flows, one at a time, into an idle daemon.
pub(super) fn latency(opts: &RunOptions) -> anyhow::Result<Value> {
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
        // A copy, not a hard link: drop zones refuse a file with several
        // links (issue 14), so a linked cache file would be refused.
        fs::copy(cache.join(&f.file), staging.join(&f.file))?;
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
