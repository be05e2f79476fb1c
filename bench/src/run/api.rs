//! The `api-deposits` scenario: 32 concurrent clients deposit
//! single-invoice flows through the partner API (`POST /v1/flows`, each
//! answered once committed), while drop-zone flows keep moving.
//!
//! Each client holds one keep-alive HTTP/1.1 connection (a small client of
//! its own on tokio: the figure is quai's, not a client library's) and
//! deposits its share one after the other; the latency of each deposit is
//! from the first byte written to the last byte of the answer. At t0 a
//! batch of drop-zone flows is dropped too; their reports must all appear
//! while (or shortly after) the deposits run. Every deposit must be `202`
//! with a new flow id.

use std::fs;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::gen;

use super::cache::cached_flows;
use super::child::{reports_present, Daemon};
use super::drops::limits_for;
use super::latency::percentile;
use super::options::{goal, RunOptions, PARTNER};

const CLIENTS: usize = 32;
const TEMPLATE: &str = include_str!("../../../daemon/tests/fixtures/ubl-tc434-example2.xml");
const BOUNDARY: &str = "quai-bench-7e3a";

fn body(n: usize) -> Vec<u8> {
    let number = format!("API-BENCH-{n:08}");
    let invoice = TEMPLATE.replacen(
        "<cbc:ID>TOSL108</cbc:ID>",
        &format!("<cbc:ID>{number}</cbc:ID>"),
        1,
    );
    let info =
        json!({ "name": format!("{number}.xml"), "flowSyntax": "UBL", "trackingId": number });
    let mut b = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"flowInfo\"\r\nContent-Type: application/json\r\n\r\n{info}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{number}.xml\"\r\nContent-Type: application/xml\r\n\r\n"
    )
    .into_bytes();
    b.extend_from_slice(invoice.as_bytes());
    b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    b
}

/// One client: `count` deposits numbered from `first`; their latencies (ms).
async fn client(port: u16, token: String, first: usize, count: usize) -> anyhow::Result<Vec<f64>> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut ms = Vec::with_capacity(count);
    for n in first..first + count {
        let b = body(n);
        let head = format!(
            "POST /v1/flows HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
            b.len()
        );
        let t0 = Instant::now();
        w.write_all(head.as_bytes()).await?;
        w.write_all(&b).await?;
        let mut status = String::new();
        r.read_line(&mut status).await?;
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).await?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut answer = vec![0u8; len];
        r.read_exact(&mut answer).await?;
        ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        if !status.starts_with("HTTP/1.1 202") {
            bail!(
                "deposit {n}: {} {}",
                status.trim(),
                String::from_utf8_lossy(&answer)
            );
        }
    }
    Ok(ms)
}

pub(super) fn api_deposits(opts: &RunOptions) -> anyhow::Result<Value> {
    let deposits = opts.flows.unwrap_or(20_000);
    let drops = 20;
    let (cache, manifest) = cached_flows(opts, gen::Kind::UblZip, drops, 50, (1, 3), 0.0, 11)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let extra = format!("{}\n\n[[partner]]\nid = \"{PARTNER}\"\n", limits_for(50));
    let mut d =
        Daemon::start_listening(opts, "api-deposits", &extra, &format!("127.0.0.1:{port}"))?;
    let out = std::process::Command::new(&d.quai)
        .arg("--config")
        .arg(&d.config)
        .args(["-q", "token", "create", "--partner", PARTNER, "--json"])
        .env("QUAI_HOME", &d.home)
        .output()?;
    anyhow::ensure!(out.status.success(), "quai token create failed: {out:?}");
    let token: Value = serde_json::from_slice(&out.stdout)?;
    let token = token["token"].as_str().context("no token")?.to_owned();

    // The drop-zone flows, staged now, dropped at t0.
    let staging = d.home.join("staging");
    fs::create_dir_all(&staging)?;
    for f in &manifest.flows {
        fs::copy(cache.join(&f.file), staging.join(&f.file))?;
    }
    let names: std::collections::HashSet<String> =
        manifest.flows.iter().map(|f| f.file.clone()).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let per = deposits.div_ceil(CLIENTS);
    let t0 = Instant::now();
    for f in &manifest.flows {
        fs::rename(staging.join(&f.file), d.inbound().join(&f.file))?;
    }
    let results: Vec<anyhow::Result<Vec<f64>>> = rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let first = c * per;
            let count = per.min(deposits.saturating_sub(first));
            tasks.push(tokio::spawn(client(port, token.clone(), first, count)));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(
                t.await
                    .unwrap_or_else(|e| Err(anyhow::anyhow!("client died: {e}"))),
            );
        }
        out
    });
    let elapsed = t0.elapsed().as_secs_f64();
    let reports_during = reports_present(&d.outbound(), &names);
    let mut ms = Vec::new();
    for r in results {
        ms.extend(r?);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while reports_present(&d.outbound(), &names) < drops {
        if Instant::now() > deadline {
            d.alive()?;
            bail!("drop-zone flows stalled: {}", d.log_tail());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let drops_done = t0.elapsed().as_secs_f64();
    ms.sort_by(|a, b| a.total_cmp(b));
    let rate = ms.len() as f64 / elapsed;
    let (p50, p99) = (percentile(&ms, 50.0), percentile(&ms, 99.0));
    say!(
        opts,
        "  {} deposits by {CLIENTS} clients in {elapsed:.2} s: {rate:.0} deposits/s (goal >= 2000), latency p50 {p50:.1} ms, p99 {p99:.1} ms (goal <= 50 ms)",
        ms.len()
    );
    say!(
        opts,
        "  drop zone meanwhile: {reports_during}/{drops} flows answered when the deposits ended, all {drops} after {drops_done:.1} s"
    );
    Ok(json!({
        "scenario": "api-deposits",
        "goals": [
            goal("deposits per second, 32 clients, commit before answer", format!("{rate:.0}/s"), ">= 2000/s", rate >= 2000.0),
            goal("deposit latency p99", format!("{p99:.1} ms"), "<= 50 ms", p99 <= 50.0),
        ],
        "ok": true,
        "deposits": ms.len(),
        "clients": CLIENTS,
        "seconds": elapsed,
        "deposits_per_second": rate,
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": ms.last().copied().unwrap_or(f64::NAN),
        "dropzone_flows": drops,
        "dropzone_answered_during": reports_during,
        "dropzone_all_answered_after_s": drops_done,
        "peak_rss_mb": d.peak_rss_kib().unwrap_or(0) as f64 / 1024.0,
    }))
}
