//! The CLI commands other than `run`: each reads the spool (or the files it
//! is given) and prints a human table, or JSON with `--json`. Exit codes:
//! 0 success, 1 "something to look at" (a rejected invoice for `validate`,
//! a discrepancy for `reconcile`), 2 usage or configuration error.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use quai_mappings::flow::{self, DocumentResult, FlowEnd};
use quai_spool::{FlowFilter, Lease};
use serde::Serialize;

use crate::app::App;
use crate::config::Config;
use crate::jobs::{purge, reconcile};
use crate::pipeline::flow_limits;
use crate::query::{parse_since, parse_state};

/// `quai status`
pub async fn status(app: &App, json: bool) -> anyhow::Result<i32> {
    let s = app.spool.status().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(0);
    }
    let states = ["received", "processing", "processed", "failed", "duplicate"];
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<20} {:>9} {:>10} {:>9} {:>7} {:>9} {:>9} {:>9}",
        "PARTNER",
        "RECEIVED",
        "PROCESSING",
        "PROCESSED",
        "FAILED",
        "DUPLICATE",
        "ACCEPTED",
        "REJECTED"
    )?;
    let row = |name: &str, c: &quai_spool::Counts| {
        let f = |k: &str| c.flows.get(k).copied().unwrap_or(0);
        let i = |k: &str| c.invoices.get(k).copied().unwrap_or(0);
        format!(
            "{:<20} {:>9} {:>10} {:>9} {:>7} {:>9} {:>9} {:>9}",
            name,
            f(states[0]),
            f(states[1]),
            f(states[2]),
            f(states[3]),
            f(states[4]),
            i("accepted"),
            i("rejected")
        )
    };
    for p in &s.partners {
        writeln!(out, "{}", row(&p.partner, &p.counts))?;
    }
    writeln!(out, "{}", row("TOTAL", &s.totals))?;
    Ok(0)
}

/// `quai flows`
pub async fn flows(
    app: &App,
    partner: Option<String>,
    state: Option<String>,
    since: Option<String>,
    limit: i64,
    json: bool,
) -> anyhow::Result<i32> {
    let state = match state.as_deref() {
        None => None,
        Some(s) => Some(parse_state(s)?),
    };
    let since = match since.as_deref() {
        None => None,
        Some(s) => Some(parse_since(s)?),
    };
    let rows = app
        .spool
        .list_flows(&FlowFilter {
            partner,
            state,
            since,
            limit: Some(limit),
        })
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:>6} {:<16} {:<10} {:<25} {:>8} {:>8} {:<20} FILE",
        "ID", "PARTNER", "STATE", "RECEIVED", "ACCEPTED", "REJECTED", "REASON"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:>6} {:<16} {:<10} {:<25} {:>8} {:>8} {:<20} {}",
            r.id,
            r.partner,
            r.state.as_str(),
            r.received_at.format("%Y-%m-%d %H:%M:%S UTC"),
            r.invoices_accepted,
            r.invoices_rejected,
            r.failure_code.as_deref().unwrap_or(""),
            r.original_name
        )?;
    }
    Ok(0)
}

/// `quai flow ID --invoice N`: the canonical invoice of one document (the
/// spool keeps it compressed). Exit 1 when there is none.
pub async fn canonical_invoice(app: &App, id: i64, index: i64) -> anyhow::Result<i32> {
    let spool = &app.spool;
    spool.flow(id).await?;
    match spool.canonical_invoice(id, index).await? {
        Some(json) => {
            println!("{json}");
            Ok(0)
        }
        None => {
            eprintln!("flow {id} has no mapped invoice at index {index}");
            Ok(1)
        }
    }
}

/// `quai flow ID`
pub async fn flow_detail(app: &App, id: i64, json: bool) -> anyhow::Result<i32> {
    let spool = &app.spool;
    if json {
        let v = crate::http::flow_detail_json(spool, id).await?;
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let flow = spool.flow(id).await?;
    let invoices = spool.invoices_of_flow(id).await?;
    let acks = spool.acks_of_flow(id).await?;
    let history = spool.flow_events(id).await?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "flow {}  partner {}  state {}",
        flow.id,
        flow.partner,
        flow.state.as_str()
    )?;
    writeln!(
        out,
        "  file      {} ({} bytes, sha256 {})",
        flow.original_name, flow.size, flow.sha256
    )?;
    writeln!(
        out,
        "  received  {}   updated {}   attempts {}",
        flow.received_at, flow.updated_at, flow.attempts
    )?;
    if let Some(code) = &flow.failure_code {
        writeln!(
            out,
            "  rejected  {code}: {}",
            flow.failure_message.as_deref().unwrap_or("")
        )?;
    }
    if let Some(orig) = flow.duplicate_of {
        writeln!(out, "  duplicate of flow {orig}")?;
    }
    writeln!(out, "history:")?;
    for e in &history {
        writeln!(
            out,
            "  {}  {} {} {} -> {}  ({}){}",
            e.at.format("%Y-%m-%d %H:%M:%S%.3f"),
            e.entity,
            e.entity_id,
            e.from_state.as_deref().unwrap_or("-"),
            e.to_state,
            e.instance,
            e.reason
                .as_deref()
                .map(|r| format!("  {r}"))
                .unwrap_or_default()
        )?;
    }
    writeln!(
        out,
        "invoices: {} accepted, {} rejected",
        flow.invoices_accepted, flow.invoices_rejected
    )?;
    for i in &invoices {
        writeln!(
            out,
            "  #{:<4} {:<9} {:<20} {}",
            i.doc_index,
            match i.verdict {
                quai_spool::Verdict::Accepted => "accepted",
                quai_spool::Verdict::Rejected => "REJECTED",
            },
            i.number.as_deref().unwrap_or("-"),
            i.entry
        )?;
        for r in &i.reasons {
            writeln!(
                out,
                "         {} {} [{}] {}",
                r.rule, r.term, r.severity, r.message
            )?;
        }
    }
    writeln!(out, "acknowledgements:")?;
    for a in &acks {
        writeln!(
            out,
            "  {} {} -> {} {}  attempts {}{}",
            a.kind.as_str(),
            a.file_name,
            a.destination,
            a.delivered_at
                .map(|d| format!("delivered {d}"))
                .unwrap_or_else(|| "PENDING".into()),
            a.attempts,
            a.last_error
                .as_deref()
                .map(|e| format!("  last error: {e}"))
                .unwrap_or_default()
        )?;
    }
    Ok(0)
}

/// One invoice as `quai validate --json` prints it.
#[derive(Debug, Serialize)]
pub struct ValidatedInvoice {
    pub file: String,
    pub entry: String,
    pub syntax: Option<String>,
    pub profile: Option<String>,
    pub invoice_number: Option<String>,
    pub verdict: &'static str,
    pub violations: Vec<quai_mappings::Violation>,
}

/// `quai validate FILE...`: map and validate without spooling.
pub fn validate(config: &Config, files: &[PathBuf], json: bool) -> anyhow::Result<i32> {
    let limits = flow_limits(&config.limits);
    let mut results = Vec::new();
    let mut any_rejected = false;
    for file in files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file_str = file.display().to_string();
        let end = flow::process(file, &name, &limits, &mut |doc| {
            let rejected = doc.is_rejected();
            let (profile, number, violations) = match doc.result {
                DocumentResult::Mapped {
                    invoice,
                    violations,
                } => (
                    invoice.profile.map(|p| p.as_str().to_string()),
                    invoice.number.clone(),
                    violations,
                ),
                DocumentResult::Unreadable { rule, message } => (
                    None,
                    None,
                    vec![quai_mappings::Violation::fatal(rule, "BG-0", message)],
                ),
            };
            results.push(ValidatedInvoice {
                file: file_str.clone(),
                entry: doc.entry,
                syntax: doc.syntax.map(|s| s.as_str().to_string()),
                profile,
                invoice_number: number,
                verdict: if rejected { "rejected" } else { "accepted" },
                violations,
            });
            Ok(())
        });
        if let FlowEnd::Failed(why) = &end {
            anyhow::bail!("cannot read {}: {why}", file.display());
        }
        if let FlowEnd::Rejected(r) = end {
            results.push(ValidatedInvoice {
                file: file_str.clone(),
                entry: name.clone(),
                syntax: None,
                profile: None,
                invoice_number: None,
                verdict: "rejected",
                violations: vec![quai_mappings::Violation::fatal(r.code, "FLOW", r.message)],
            });
        }
    }
    any_rejected |= results.iter().any(|r| r.verdict == "rejected");
    if json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        let mut out = std::io::stdout().lock();
        for r in &results {
            writeln!(
                out,
                "{:<8} {} [{}{}] {}",
                r.verdict.to_uppercase(),
                r.entry,
                r.syntax.as_deref().unwrap_or("?"),
                r.profile
                    .as_deref()
                    .map(|p| format!(" {p}"))
                    .unwrap_or_default(),
                r.invoice_number.as_deref().unwrap_or("")
            )?;
            for v in &r.violations {
                writeln!(
                    out,
                    "    {} {} [{:?}] {}",
                    v.rule, v.term, v.severity, v.message
                )?;
            }
        }
        let rejected = results.iter().filter(|r| r.verdict == "rejected").count();
        writeln!(
            out,
            "{} invoice(s): {} accepted, {} rejected",
            results.len(),
            results.len() - rejected,
            rejected
        )?;
    }
    Ok(if any_rejected { 1 } else { 0 })
}

/// `quai replay ID`: process a stored flow again (same idempotency rules).
pub async fn replay(daemon: &Arc<App>, id: i64, json: bool) -> anyhow::Result<i32> {
    let lease = Lease {
        duration: std::time::Duration::from_secs(daemon.config().lease_seconds),
    };
    let claimed = daemon.spool.claim_for_replay(id, lease).await?;
    let stop = tokio_util::sync::CancellationToken::new();
    crate::pipeline::process_claimed(daemon, claimed, lease, &stop).await?;
    crate::acks::deliver_pending(daemon).await;
    let flow = daemon.spool.flow(id).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&flow)?);
        return Ok(0);
    }
    println!(
        "flow {} replayed: {} ({} accepted, {} rejected)",
        id,
        flow.state.as_str(),
        flow.invoices_accepted,
        flow.invoices_rejected
    );
    Ok(0)
}

/// `quai ingest FILE... --partner P`: take files in as if dropped, and
/// process them now.
pub async fn ingest(
    daemon: &Arc<App>,
    partner: &str,
    files: &[PathBuf],
    json: bool,
) -> anyhow::Result<i32> {
    let config = &daemon.config();
    let mut registered = Vec::new();
    let total_bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let mut done_bytes: u64 = 0;
    for (n, file) in files.iter().enumerate() {
        let store = config.store.clone();
        let max = config.limits_for(partner).max_flow_bytes;
        let src = file.clone();
        let stored = tokio::task::spawn_blocking(move || {
            quai_connectors::landing::land_file(&src, &store, max)
        })
        .await??;
        let landed = quai_connectors::LandedFlow {
            partner: partner.to_string(),
            channel: quai_connectors::Channel::Cli,
            original_name: file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256: stored.sha256,
            size: stored.size,
            stored_path: stored.path,
            complete: stored.complete,
            as2_message_id: None,
        };
        let accepted = crate::intake::register(daemon, &landed)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        registered.push((file.display().to_string(), accepted));
        done_bytes += landed.size;
        if !json {
            // A progress line per file: position, bytes taken so far, outcome.
            let pct = (done_bytes * 100).checked_div(total_bytes).unwrap_or(100);
            eprintln!(
                "[{}/{}] {:>3}% {} -> {}",
                n + 1,
                files.len(),
                pct,
                file.display(),
                match accepted {
                    quai_connectors::Accepted::New { flow_id } => format!("flow {flow_id}"),
                    quai_connectors::Accepted::Duplicate { flow_id, original } => {
                        format!("flow {flow_id} (duplicate of {original})")
                    }
                }
            );
        }
    }
    // Process what we registered (and anything else waiting).
    let lease = Lease {
        duration: std::time::Duration::from_secs(config.lease_seconds),
    };
    let stop = tokio_util::sync::CancellationToken::new();
    while let Some(claimed) = daemon.spool.claim_flow(lease).await? {
        crate::pipeline::process_claimed(daemon, claimed, lease, &stop).await?;
    }
    crate::acks::deliver_pending(daemon).await;
    if json {
        let v: Vec<_> = registered
            .iter()
            .map(|(f, a)| match a {
                quai_connectors::Accepted::New { flow_id } => serde_json::json!({"file": f, "flow_id": flow_id, "duplicate": false}),
                quai_connectors::Accepted::Duplicate { flow_id, original } => {
                    serde_json::json!({"file": f, "flow_id": flow_id, "duplicate": true, "duplicate_of": original})
                }
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    Ok(0)
}

/// `quai reconcile [--from D --to D] [--json]`: 0 when everything adds up,
/// 1 otherwise.
pub async fn reconcile(
    app: &Arc<App>,
    from: Option<String>,
    to: Option<String>,
    json: bool,
) -> anyhow::Result<i32> {
    let tz = app.config().timezone;
    let to = match to {
        Some(t) => reconcile::parse_bound(&t, tz, true)?,
        None => chrono::Utc::now(),
    };
    let from = match from {
        Some(f) => reconcile::parse_bound(&f, tz, false)?,
        None => to - chrono::Duration::hours(24),
    };
    anyhow::ensure!(from < to, "--from must be before --to");
    let mut report = reconcile::reconcile(app, from, to, reconcile::Thresholds::default()).await?;
    reconcile::publish(app, &mut report).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", reconcile::text(&report));
        for f in &report.files {
            println!("report: {f}");
        }
    }
    Ok(if report.balanced { 0 } else { 1 })
}

/// `quai purge [--json]`.
pub async fn purge(app: &Arc<App>, json: bool) -> anyhow::Result<i32> {
    let s = purge::run(app).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!(
            "purged {} flow(s) and {} invoice(s) last changed before {}; {} raw file(s) deleted",
            s.flows, s.invoices, s.cutoff, s.raw_deleted
        );
        for e in &s.raw_errors {
            println!("not deleted: {e}");
        }
    }
    Ok(if s.raw_errors.is_empty() { 0 } else { 1 })
}

/// `quai resend-ack ID`: put an acknowledgement back to pending and deliver
/// it now.
pub async fn resend_ack(app: &Arc<App>, id: i64, json: bool) -> anyhow::Result<i32> {
    app.spool.requeue_ack(id).await?;
    let delivered = crate::acks::deliver_pending(app).await;
    let still = app
        .spool
        .pending_acks(100_000)
        .await?
        .into_iter()
        .find(|a| a.id == id);
    if json {
        let v = match &still {
            None => serde_json::json!({"ack": id, "delivered": true}),
            Some(a) => serde_json::json!({"ack": id, "delivered": false, "error": a.last_error}),
        };
        println!("{v}");
        return Ok(if still.is_none() { 0 } else { 1 });
    }
    match still {
        None => {
            println!("acknowledgement {id} delivered ({delivered} delivered in this pass)");
            Ok(0)
        }
        Some(a) => {
            println!(
                "acknowledgement {id} requeued but not delivered: {}",
                a.last_error.unwrap_or_default()
            );
            Ok(1)
        }
    }
}

/// `quai check-config`: every problem of the file, then what a start would
/// check (files, folders; [`crate::preflight`]). Exit 2 when there is any.
pub fn check_config(path: Option<&std::path::Path>, json: bool) -> i32 {
    let source = path
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "embedded default".into());
    let result = match path {
        Some(p) => Config::load(p),
        None => Ok(Config::embedded_default()),
    }
    .and_then(|c| {
        let problems = crate::preflight::check(&c);
        if problems.is_empty() {
            Ok(c)
        } else {
            Err(crate::config::ConfigErrors(problems))
        }
    });
    match result {
        Ok(c) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"ok": true, "problems": [], "config": source,
                        "spool": crate::text::redact_url(&c.spool_url), "partners": c.partners.len()})
                );
            } else {
                println!(
                    "configuration OK ({source}): spool {}, {} partner(s)",
                    crate::text::redact_url(&c.spool_url),
                    c.partners.len()
                );
            }
            0
        }
        Err(errors) => {
            if json {
                let problems: Vec<_> = errors
                    .0
                    .iter()
                    .map(
                        |p| serde_json::json!({"line": p.line, "key": p.key, "message": p.message}),
                    )
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"ok": false, "problems": problems, "config": source})
                );
            } else {
                // The verdict is the command's result (stdout); so is the list.
                print!("{source}: {errors}");
            }
            2
        }
    }
}
