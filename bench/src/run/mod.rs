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
//!
//! One module per job: [`options`] (what every scenario gets), [`cache`]
//! (generated flows), [`child`] (the daemon under test), then one module
//! per kind of scenario. This module only dispatches and prints the goals.

use std::fs;
use std::process::Command;

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::gen;

pub const SCENARIOS: &[&str] = &[
    "validate-5000-lines",
    "latency-100",
    "ubl-zip-200x500",
    "edifact-100k",
    "linearity",
    "rss-1m",
    "postgres-2x",
    "directory-5m",
    "exchange",
    "api-deposits",
];

macro_rules! say {
    ($opts:expr, $($arg:tt)*) => {
        if $opts.json { eprintln!($($arg)*) } else { println!($($arg)*) }
    };
}

mod api;
mod cache;
mod child;
mod directory;
mod drops;
mod exchange;
mod in_process;
mod latency;
mod options;
mod postgres;

use drops::drop_scenario;
use in_process::{linearity, validate_lines};
use latency::latency;
use postgres::postgres_2x;

pub use options::{default_quai, RunOptions, PARTNER};

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
            "api-deposits" => api::api_deposits(opts),
            "ubl-zip-200x500" => drop_scenario(name, gen::Kind::UblZip, 200, 500, opts),
            "edifact-100k" => drop_scenario(name, gen::Kind::EdifactGz, 1, 100_000, opts),
            "rss-1m" => drop_scenario(name, gen::Kind::UblTargz, 1, 1_000_000, opts),
            "latency-100" => latency(opts),
            "validate-5000-lines" => validate_lines(opts),
            "linearity" => linearity(opts),
            "postgres-2x" => postgres_2x(opts),
            "directory-5m" => directory::directory_5m(opts),
            "exchange" => exchange::exchange(opts),
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
