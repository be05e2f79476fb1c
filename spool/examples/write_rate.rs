//! How many invoices per second the spool stores, per backend.
//!
//! ```text
//! cargo run --release -p quai-spool --example write_rate -- [OPTIONS]
//!   --backend sqlite|postgres|both   (default both)
//!   --url URL                        use this database instead of a throwaway one
//!   --flows N                        flows to process (default 200)
//!   --per-flow N                     invoices per flow (default 500)
//!   --batch N                        invoices per store_invoices call (default 500)
//!   --instances N                    Spool handles writing concurrently (default 2)
//!   --no-fsync                       throwaway PostgreSQL without fsync (the CPU ceiling)
//!   --lines N                        invoice lines in each canonical JSON (default 8,
//!                                    about 1.2 KB; 20 gives about 2.8 KB)
//!   --json-dir DIR                   use the files of DIR (one canonical invoice JSON
//!                                    each, e.g. dumped from a spool) in turn as the
//!                                    canonical JSON, instead of the synthetic one
//! ```
//!
//! The invoices are generated before the clock starts, so the CPU figures
//! are the spool's: `cpu` is this process's user + system time over the
//! timed part, `server cpu` the PostgreSQL cluster's (postmaster and its
//! children, when the example started the cluster itself).
//!
//! Each instance is its own `Spool` (own pool, own instance name), as two
//! `quai run` processes would be. Every instance loops: claim a flow, store
//! its invoices in batches (about 1.5 KB of canonical JSON each, one in ten
//! rejected, a few duplicates), finish it with one acknowledgement. Without
//! `--url`, SQLite runs on a temp file and PostgreSQL on a throwaway cluster
//! with fsync ON (production durability), started by the test harness.

use quai_test_support::pg;

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use quai_spool::*;
use rust_decimal::Decimal;

struct Opts {
    backend: String,
    url: Option<String>,
    flows: usize,
    per_flow: i64,
    batch: usize,
    instances: usize,
    fsync: bool,
    lines: usize,
    json_dir: Option<String>,
}

fn opts() -> Opts {
    let mut o = Opts {
        backend: "both".into(),
        url: None,
        flows: 200,
        per_flow: 500,
        batch: 500,
        instances: 2,
        fsync: true,
        lines: 8,
        json_dir: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--no-fsync" {
            o.fsync = false;
            i += 1;
            continue;
        }
        let v = args.get(i + 1).cloned().unwrap_or_default();
        let num = || {
            v.parse::<usize>()
                .unwrap_or_else(|_| panic!("{} needs a number", args[i]))
        };
        match args[i].as_str() {
            "--backend" => o.backend = v.clone(),
            "--url" => o.url = Some(v.clone()),
            "--flows" => o.flows = num(),
            "--per-flow" => o.per_flow = num() as i64,
            "--batch" => o.batch = num().max(1),
            "--instances" => o.instances = num().max(1),
            "--lines" => o.lines = num(),
            "--json-dir" => o.json_dir = Some(v.clone()),
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    o
}

fn invoice(flow: usize, doc: i64, lines: usize) -> NewInvoice {
    let rejected = doc % 10 == 7;
    // a few duplicates across flows: every 50th number repeats the previous flow's
    let (number, seller) = if doc % 50 == 3 && flow > 0 {
        (format!("F{}-{}", flow - 1, doc + 1), (flow - 1) % 7)
    } else {
        (format!("F{flow}-{doc}"), flow % 7)
    };
    let canonical = format!(
        "{{\"number\":\"{number}\",\"seller\":{{\"name\":\"Seller SA\",\"id\":\"FR{flow:011}\"}},\
         \"lines\":[{}]}}",
        (0..lines)
            .map(|l| format!(
                "{{\"id\":\"{l}\",\"item\":\"Article number {l} with a realistic description\",\
                 \"quantity\":\"3\",\"price\":\"41.50\",\"net\":\"124.50\",\"vat\":\"S\",\"rate\":\"20\"}}"
            ))
            .collect::<Vec<_>>()
            .join(",")
    );
    NewInvoice {
        doc_index: doc,
        entry: format!("invoice-{doc:04}.xml"),
        syntax: Some("ubl".into()),
        profile: Some("urn:cen.eu:en16931:2017".into()),
        seller_id: Some(format!("FR{seller:011}")),
        number: Some(number),
        issue_date: NaiveDate::from_ymd_opt(2026, 9, 1),
        type_code: Some("380".into()),
        currency: Some("EUR".into()),
        total_without_vat: Some(Decimal::new(99600, 2)),
        total_with_vat: Some(Decimal::new(119520, 2)),
        amount_due: Some(Decimal::new(119520, 2)),
        verdict: if rejected {
            Verdict::Rejected
        } else {
            Verdict::Accepted
        },
        reasons: if rejected {
            vec![Reason {
                rule: "BR-CO-15".into(),
                term: "BT-112".into(),
                severity: "fatal".into(),
                message:
                    "Invoice total amount with VAT is not the sum of the total without VAT and VAT"
                        .into(),
            }]
        } else {
            vec![]
        },
        canonical_json: Some(canonical),
    }
}

/// CPU seconds (user + system) of a process, with its reaped children's
/// when `children` is set, from `/proc/PID/stat`.
fn cpu_of(pid: &str, children: bool) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // fields after the command name (which may hold spaces): state is field 3
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0.0;
    };
    let f: Vec<u64> = rest.split(' ').map(|x| x.parse().unwrap_or(0)).collect();
    // utime, stime, cutime, cstime are fields 14..17 (index 11..14 here)
    let mut ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    if children {
        ticks += f.get(13).copied().unwrap_or(0) + f.get(14).copied().unwrap_or(0);
    }
    ticks as f64 / 100.0
}

/// CPU seconds of a PostgreSQL cluster: the postmaster (with the backends
/// it reaped) and its live children.
fn server_cpu(data_dir: &std::path::Path) -> f64 {
    let Some(pm) = std::fs::read_to_string(data_dir.join("postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next().map(str::to_owned))
    else {
        return 0.0;
    };
    let mut total = cpu_of(&pm, true);
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 2..].split(' ').nth(1).map(str::to_owned));
        if ppid.as_deref() == Some(pm.as_str()) {
            total += cpu_of(&pid, false);
        }
    }
    total
}

async fn run(name: &str, url: &str, o: &Opts, pg_data: Option<&std::path::Path>) {
    let first = Spool::connect(url, "bench-0").await.expect("connect");
    for f in 0..o.flows {
        first
            .register_flow(&NewFlow {
                partner: format!("p{}", f % 3),
                origin: Origin::Dropzone,
                original_name: format!("flow-{f}.zip"),
                size: 1_000_000,
                sha256: format!("{f:064x}"),
                as2_message_id: None,
            })
            .await
            .expect("register");
    }
    let lease = Lease {
        duration: Duration::from_secs(300),
    };
    // Every flow's invoices, generated before the clock starts.
    let samples: Vec<String> = o.json_dir.as_ref().map_or_else(Vec::new, |dir| {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .expect("--json-dir")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).expect("sample JSON"))
            .collect()
    });
    let mut n = 0;
    let docs: std::sync::Arc<Vec<Vec<NewInvoice>>> = std::sync::Arc::new(
        (0..o.flows)
            .map(|f| {
                (0..o.per_flow)
                    .map(|d| {
                        let mut inv = invoice(f, d, o.lines);
                        if !samples.is_empty() {
                            inv.canonical_json = Some(samples[n % samples.len()].clone());
                            n += 1;
                        }
                        inv
                    })
                    .collect()
            })
            .collect(),
    );
    let json_bytes: usize = docs
        .iter()
        .flatten()
        .map(|d| d.canonical_json.as_ref().map_or(0, String::len))
        .sum();
    let mut spools = vec![first.clone()];
    for n in 1..o.instances {
        spools.push(
            Spool::connect(url, &format!("bench-{n}"))
                .await
                .expect("connect"),
        );
    }
    let cpu0 = cpu_of("self", false);
    let server0 = pg_data.map(server_cpu);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for spool in spools {
        let (per_flow, batch) = (o.per_flow, o.batch);
        let docs = docs.clone();
        tasks.push(tokio::spawn(async move {
            let mut stored = 0u64;
            let mut spent = [Duration::ZERO; 3]; // claim, store, finish
            loop {
                let t = Instant::now();
                let Some(c) = spool.claim_flow(lease).await.expect("claim") else {
                    break;
                };
                spent[0] += t.elapsed();
                // the flow's number is its fake hash, in hex
                let flow_no =
                    usize::from_str_radix(c.sha256.trim_start_matches('0'), 16).unwrap_or(0);
                let t = Instant::now();
                for chunk in docs[flow_no].chunks(batch) {
                    stored += spool
                        .store_invoices(c.id, chunk)
                        .await
                        .expect("store")
                        .len() as u64;
                }
                spent[1] += t.elapsed();
                let t = Instant::now();
                spool
                    .finish_flow(
                        c.id,
                        &FlowOutcome::Processed,
                        per_flow,
                        &[(
                            AckKind::IntegrationReport,
                            "dropzone".into(),
                            "report.xml".into(),
                        )],
                    )
                    .await
                    .expect("finish");
                spent[2] += t.elapsed();
            }
            (stored, spent)
        }));
    }
    let mut total = 0;
    let mut spent = [Duration::ZERO; 3];
    for t in tasks {
        let (n, s) = t.await.expect("task");
        total += n;
        for (a, b) in spent.iter_mut().zip(s) {
            *a += b;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_of("self", false) - cpu0;
    let server = pg_data.map(server_cpu).zip(server0).map(|(b, a)| b - a);
    let status = first.status().await.expect("status");
    println!(
        "{name}: {total} invoices in {} flows, {} instances, batches of {}, canonical JSON {} B avg: \
         {secs:.2} s, {:.0} invoices/s (accepted {}, rejected {})",
        o.flows,
        o.instances,
        o.batch,
        json_bytes / docs.iter().map(Vec::len).sum::<usize>().max(1),
        total as f64 / secs,
        status.totals.invoices["accepted"],
        status.totals.invoices["rejected"],
    );
    println!(
        "  time in claim {:.2} s, store_invoices {:.2} s, finish {:.2} s (summed over instances)",
        spent[0].as_secs_f64(),
        spent[1].as_secs_f64(),
        spent[2].as_secs_f64()
    );
    let per100k = |c: f64| c * 100_000.0 / (total.max(1) as f64);
    match server {
        Some(server) => println!(
            "  cpu: this process {cpu:.2} s, server {server:.2} s ({:.2} + {:.2} s per 100k invoices)",
            per100k(cpu),
            per100k(server)
        ),
        None => println!("  cpu: this process {cpu:.2} s ({:.2} s per 100k invoices)", per100k(cpu)),
    }
}

#[tokio::main]
async fn main() {
    let o = opts();
    if o.backend == "sqlite" || o.backend == "both" {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = o
            .url
            .clone()
            .filter(|u| u.starts_with("sqlite:"))
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("spool.db").display()));
        run("sqlite", &url, &o, None).await;
    }
    if o.backend == "postgres" || o.backend == "both" {
        let cluster;
        let (url, data) = match o.url.clone().filter(|u| u.starts_with("postgres")) {
            Some(u) => (u, None),
            None => {
                cluster = pg::PgCluster::start_with(o.fsync);
                (
                    cluster.create_database("bench"),
                    Some(cluster.dir.join("data")),
                )
            }
        };
        run("postgres", &url, &o, data.as_deref()).await;
    }
}
