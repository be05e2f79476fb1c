//! Generated flows, cached under the work folder by their parameters so
//! a second run does not generate them again, with their manifest.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use serde_json::Value;

use crate::gen;

use super::options::RunOptions;

/// Generated flows cached under `work/cache/<key>/` (with expected.json).
pub(super) fn cached_flows(
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

pub(super) fn read_manifest(path: &Path) -> anyhow::Result<gen::Manifest> {
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
