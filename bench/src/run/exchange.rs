//! `exchange`: the exchange path at scale (issue 15). 100,000 generated
//! UBL invoices in 200 zips of 500, addressed (BT-49, scheme 0009) round
//! robin to 50 recipients configured with `addresses` — half wanting UBL,
//! half CII, each on its local outbox — are dropped at once into a real
//! `quai run`; the clock stops when every invoice sits converted in its
//! recipient's outbox and every 203 *Mise à disposition* is in the spool's
//! status history. Peak RSS is the child's VmHWM.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::gen::invoice::{build_invoice, Rng};
use crate::gen::ubl::write_ubl;

use super::child::Daemon;
use super::drops::limits_for;
use super::options::{goal, RunOptions};

const FLOWS: usize = 200;
const PER_FLOW: usize = 500;
const RECIPIENTS: usize = 50;

/// The SIREN of recipient `r` (its address: `0009:<SIREN>00011`, the SIRET
/// the generator's UBL writer puts in the buyer's EndpointID).
fn siren(r: usize) -> String {
    format!("{:09}", 500_000_000 + r)
}

fn recipient(r: usize) -> String {
    format!("r{r:02}")
}

/// Write the flows (once; cached under the work folder).
fn generate(dir: &Path, flows: usize, per_flow: usize) -> anyhow::Result<Vec<String>> {
    let done = dir.join("complete");
    let names: Vec<String> = (0..flows).map(|f| format!("x-{f:04}.zip")).collect();
    if done.exists() {
        return Ok(names);
    }
    fs::create_dir_all(dir)?;
    let mut doc = String::with_capacity(16 << 10);
    for (f, name) in names.iter().enumerate() {
        let file = fs::File::create(dir.join(name))?;
        let mut zip = zip::ZipWriter::new(BufWriter::with_capacity(1 << 20, file));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default());
        let mut rng = Rng::new(0xE8C4 + f as u64);
        for i in 0..per_flow {
            let mut inv = build_invoice(&mut rng, "XCH", f, i, 2, None);
            inv.buyer.siren = siren((f * per_flow + i) % RECIPIENTS);
            doc.clear();
            write_ubl(&inv, &mut doc);
            zip.start_file(format!("{}.xml", inv.number), options)?;
            zip.write_all(doc.as_bytes())?;
        }
        let mut w = zip.finish()?;
        w.flush()?;
    }
    fs::write(&done, b"")?;
    Ok(names)
}

/// The recipients' configuration.
fn recipients_toml() -> String {
    let mut out = String::new();
    for r in 0..RECIPIENTS {
        out.push_str(&format!(
            "[[partner]]\nid = \"{}\"\naddresses = [\"0009:{}00011\"]\nsyntax = \"{}\"\n\n",
            recipient(r),
            siren(r),
            if r % 2 == 0 { "ubl" } else { "cii" }
        ));
    }
    out
}

fn delivered(home: &Path) -> usize {
    (0..RECIPIENTS)
        .map(|r| {
            fs::read_dir(home.join("outbound").join(recipient(r)))
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .filter(|e| {
                            let n = e.file_name();
                            let n = n.to_string_lossy();
                            n.ends_with(".ubl.xml") || n.ends_with(".cii.xml")
                        })
                        .count()
                })
                .unwrap_or(0)
        })
        .sum()
}

pub fn exchange(opts: &RunOptions) -> anyhow::Result<Value> {
    let flows = opts.flows.unwrap_or(FLOWS);
    let per_flow = opts.invoices.unwrap_or(PER_FLOW);
    let total = flows * per_flow;
    let dir = opts.work.join(format!("exchange-{flows}x{per_flow}"));
    let names = generate(&dir, flows, per_flow)?;
    let mut d = Daemon::start_extra(opts, "exchange", &limits_for(per_flow), &recipients_toml())?;
    let home = d
        .inbound()
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("home/inbound/partner");
    let spool_url = format!("sqlite://{}", home.join("spool.db").display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let spool = rt.block_on(quai_spool::Spool::connect(&spool_url, "bench"))?;

    // Dropped at once: renamed into the inbox (same file system).
    let staging = home.join("staging");
    fs::create_dir_all(&staging)?;
    for n in &names {
        fs::copy(dir.join(n), staging.join(n))?;
    }
    let t0 = Instant::now();
    for n in &names {
        fs::rename(staging.join(n), d.inbound().join(n))?;
    }
    let mut peak_kib = 0;
    let mut files_at = None;
    let (files, made_available) = loop {
        d.alive()?;
        if let Some(k) = d.peak_rss_kib() {
            peak_kib = peak_kib.max(k);
        }
        let files = delivered(&home);
        if files >= total && files_at.is_none() {
            files_at = Some(t0.elapsed().as_secs_f64());
        }
        let made_available = rt.block_on(spool.status_count(203)).unwrap_or(0);
        if files >= total && made_available as usize >= total {
            break (files, made_available);
        }
        if t0.elapsed() > opts.timeout {
            anyhow::bail!(
                "not done within {:?}: {files} of {total} delivered, {made_available} 203s: {}",
                opts.timeout,
                d.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let seconds = t0.elapsed().as_secs_f64();
    if let Some(k) = d.peak_rss_kib() {
        peak_kib = peak_kib.max(k);
    }
    let cpu = d.cpu_seconds();
    d.stop();
    let rate = total as f64 / seconds;
    let peak_mib = peak_kib as f64 / 1024.0;
    say!(
        opts,
        "{total} invoices in {flows} zips to {RECIPIENTS} recipients: every one delivered \
         in {:.1} s, every 203 in {seconds:.1} s: {rate:.0} invoices/s, peak RSS {peak_mib:.0} MiB, \
         CPU {:.1} s",
        files_at.unwrap_or(seconds),
        cpu.unwrap_or(0.0)
    );
    Ok(json!({
        "scenario": "exchange",
        "invoices": total,
        "flows": flows,
        "recipients": RECIPIENTS,
        "delivered": files,
        "made_available": made_available,
        "delivered_seconds": files_at,
        "seconds": seconds,
        "invoices_per_second": rate,
        "peak_rss_mib": peak_mib,
        "cpu_seconds": cpu,
        "goals": [
            goal("exchange: drop to every invoice delivered and every 203 written", format!("{rate:.0} invoices/s"), "≥ 20,000/s", rate >= 20_000.0),
            goal("exchange peak RSS", format!("{peak_mib:.0} MiB"), "≤ 200 MiB", peak_mib <= 200.0),
        ],
    }))
}
