//! The CLI commands other than `run`: each reads the spool (or the files it
//! is given) and prints a human table, or JSON with `--json`. Exit codes:
//! 0 success, 1 "something to look at" (a rejected invoice for `validate`,
//! a discrepancy for `reconcile`), 2 usage or configuration error.

use std::path::PathBuf;
use std::sync::Arc;

use quai_mappings::flow::{self, DocumentResult, FlowEnd};
use quai_spool::{AckKind, AckRow, FlowFilter, Lease};
use serde::Serialize;

use crate::app::App;
use crate::config::Config;
use crate::jobs::{purge, reconcile};
use crate::pipeline::flow_limits;
use crate::query::{parse_since, parse_state};

/// Print one line of a command's result on stdout. A write error (a closed
/// pipe: `quai flows | head -1`) ends the command with that error, which
/// `main` turns into a quiet exit 0 ([`is_broken_pipe`]).
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($t)*)?
    }};
}

/// Did the command stop because its stdout was closed?
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The spool a command read, as its output names it (password hidden).
fn spool_name(app: &App) -> String {
    crate::text::redact_url(&app.config().spool_url)
}

/// A JSON object with the spool it was read from added (`"spool"`).
fn with_spool(app: &App, v: impl Serialize) -> anyhow::Result<serde_json::Value> {
    let mut v = serde_json::to_value(v)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("spool".into(), spool_name(app).into());
    }
    Ok(v)
}

/// Partner-supplied text made safe for a terminal ([`crate::text::printable`]).
fn p(s: &str) -> std::borrow::Cow<'_, str> {
    crate::text::printable(s)
}

/// Human timestamps: to the second, in UTC.
fn when(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `quai status`
pub async fn status(app: &App, json: bool) -> anyhow::Result<i32> {
    let s = app.spool.status().await?;
    let undelivered = app.spool.undelivered_summary().await?;
    let now = chrono::Utc::now();
    if json {
        let mut v = with_spool(app, &s)?;
        if let Some(o) = v.as_object_mut() {
            let list: Vec<_> = undelivered
                .iter()
                .map(|u| {
                    serde_json::json!({
                        "partner": u.partner,
                        "count": u.count,
                        "oldest": u.oldest,
                        "oldest_age_seconds": u.oldest_age(now).as_secs(),
                    })
                })
                .collect();
            o.insert("undelivered".into(), list.into());
        }
        out!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let states = ["received", "processing", "processed", "failed", "duplicate"];
    out!("spool {}", spool_name(app));
    out!(
        "{:<20} {:>9} {:>10} {:>9} {:>7} {:>9} {:>9} {:>9}",
        "PARTNER",
        "RECEIVED",
        "PROCESSING",
        "PROCESSED",
        "FAILED",
        "DUPLICATE",
        "ACCEPTED",
        "REJECTED"
    );
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
        out!("{}", row(&p.partner, &p.counts));
    }
    out!("{}", row("TOTAL", &s.totals));
    if undelivered.is_empty() {
        out!("undelivered: none");
    } else {
        out!("undelivered (owed to a partner, not yet delivered):");
        out!("{:<20} {:>9}  OLDEST", "PARTNER", "COUNT");
        for u in &undelivered {
            out!(
                "{:<20} {:>9}  {} ({} ago)",
                p(&u.partner),
                u.count,
                when(&u.oldest),
                crate::text::age(u.oldest_age(now).as_secs() as i64)
            );
        }
    }
    Ok(0)
}

/// The filters of `quai flows`, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct FlowsFilter {
    pub partner: Option<String>,
    pub state: Option<String>,
    pub since: Option<String>,
    /// An invoice number the flows must hold.
    pub invoice: Option<String>,
    pub limit: i64,
}

/// A partner named in a filter must exist: configured or known to the spool.
async fn known_partner(app: &App, partner: &str) -> anyhow::Result<()> {
    if app.config().partner(partner).is_some() {
        return Ok(());
    }
    let known = app.spool.partner_ids().await?;
    if known.iter().any(|k| k == partner) {
        return Ok(());
    }
    anyhow::bail!(
        "unknown partner {:?} (known: {})",
        p(partner),
        if known.is_empty() {
            "none yet".to_string()
        } else {
            known.join(", ")
        }
    )
}

/// `quai flows`
pub async fn flows(app: &App, f: FlowsFilter, json: bool) -> anyhow::Result<i32> {
    let state = match f.state.as_deref() {
        None => None,
        Some(s) => Some(parse_state(s)?),
    };
    let since = match f.since.as_deref() {
        None => None,
        Some(s) => Some(parse_since(s)?),
    };
    if let Some(partner) = &f.partner {
        known_partner(app, partner).await?;
    }
    let rows = match &f.invoice {
        None => {
            app.spool
                .list_flows(&FlowFilter {
                    partner: f.partner.clone(),
                    state,
                    since,
                    limit: Some(f.limit),
                })
                .await?
        }
        Some(number) => {
            let mut rows = Vec::new();
            for id in app.spool.flows_with_invoice_number(number).await? {
                let r = app.spool.flow(id).await?;
                let keep = f.partner.as_ref().is_none_or(|p| *p == r.partner)
                    && state.is_none_or(|s| s == r.state)
                    && since.is_none_or(|s| r.received_at >= s);
                if keep {
                    rows.push(r);
                }
                if rows.len() as i64 >= f.limit {
                    break;
                }
            }
            rows
        }
    };
    tracing::debug!(spool = %spool_name(app), flows = rows.len(), "flows read");
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let deliveries = app.spool.delivery_counts(&ids).await?;
    let delivery = |id: i64| match deliveries.get(&id).copied().unwrap_or((0, 0)) {
        (0, 0) => "-".to_string(),
        (0, _) => "delivered".to_string(),
        (pending, _) => format!("{pending} pending"),
    };
    if json {
        // Each flow as before, with its deliveries added.
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r)?;
                let (pending, delivered) = deliveries.get(&r.id).copied().unwrap_or((0, 0));
                if let Some(o) = v.as_object_mut() {
                    o.insert(
                        "deliveries".into(),
                        serde_json::json!({"pending": pending, "delivered": delivered}),
                    );
                }
                Ok(v)
            })
            .collect::<anyhow::Result<_>>()?;
        out!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    out!("spool {}", spool_name(app));
    out!(
        "{:>6} {:<16} {:<10} {:<23} {:>8} {:>8} {:<12} {:<20} FILE",
        "ID",
        "PARTNER",
        "STATE",
        "RECEIVED",
        "ACCEPTED",
        "REJECTED",
        "DELIVERY",
        "REASON"
    );
    for r in rows {
        out!(
            "{:>6} {:<16} {:<10} {:<23} {:>8} {:>8} {:<12} {:<20} {}",
            r.id,
            r.partner,
            r.state.as_str(),
            when(&r.received_at),
            r.invoices_accepted,
            r.invoices_rejected,
            delivery(r.id),
            p(r.failure_code.as_deref().unwrap_or("")),
            p(&r.original_name)
        );
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
            out!("{json}");
            Ok(0)
        }
        None => {
            eprintln!(
                "quai: flow {id} has no mapped invoice #{index} (indexes are 0-based, as `quai flow {id}` shows them)"
            );
            Ok(1)
        }
    }
}

/// `quai flow ID [--rejected]`
pub async fn flow_detail(
    app: &App,
    id: i64,
    json: bool,
    rejected_only: bool,
) -> anyhow::Result<i32> {
    let spool = &app.spool;
    if json {
        let mut v = crate::http::flow_detail_json(spool, id).await?;
        if rejected_only {
            if let Some(list) = v.get_mut("invoices").and_then(|i| i.as_array_mut()) {
                list.retain(|i| i.get("verdict").and_then(|v| v.as_str()) == Some("rejected"));
            }
        }
        out!("{}", serde_json::to_string_pretty(&with_spool(app, v)?)?);
        return Ok(0);
    }
    let flow = spool.flow(id).await?;
    let invoices = spool.invoices_of_flow(id).await?;
    let acks = spool.acks_of_flow(id).await?;
    let history = spool.flow_events(id).await?;
    out!("spool {}", spool_name(app));
    out!(
        "flow {}  partner {}  state {}",
        flow.id,
        flow.partner,
        flow.state.as_str()
    );
    out!(
        "  file      {} ({} bytes, sha256 {})",
        p(&flow.original_name),
        flow.size,
        flow.sha256
    );
    out!(
        "  received  {}   updated {}   attempts {}",
        when(&flow.received_at),
        when(&flow.updated_at),
        flow.attempts
    );
    if let Some(code) = &flow.failure_code {
        out!(
            "  failed    {}: {}",
            p(code),
            p(flow.failure_message.as_deref().unwrap_or(""))
        );
    }
    if let Some(orig) = flow.duplicate_of {
        out!("  duplicate of flow {orig}");
    }
    out!("history:");
    for e in &history {
        out!(
            "  {}  {} {} {} -> {}  ({}){}",
            when(&e.at),
            e.entity,
            e.entity_id,
            e.from_state.as_deref().unwrap_or("-"),
            e.to_state,
            p(&e.instance),
            e.reason
                .as_deref()
                .map(|r| format!("  {}", p(r)))
                .unwrap_or_default()
        );
    }
    out!(
        "invoices: {} accepted, {} rejected{}",
        flow.invoices_accepted,
        flow.invoices_rejected,
        if rejected_only {
            " (listing the rejected ones)"
        } else {
            ""
        }
    );
    for i in &invoices {
        let rejected = matches!(i.verdict, quai_spool::Verdict::Rejected);
        if rejected_only && !rejected {
            continue;
        }
        out!(
            "  #{:<4} {:<9} {:<20} {}",
            i.doc_index,
            if rejected { "REJECTED" } else { "accepted" },
            p(i.number.as_deref().unwrap_or("-")),
            p(&i.entry)
        );
        for r in &i.reasons {
            out!(
                "         {} {} [{}] {}",
                p(&r.rule),
                p(&r.term),
                r.severity,
                p(&r.message)
            );
        }
    }
    out!("acknowledgements:");
    for a in &acks {
        out!(
            "  {} {} -> {} {}  attempts {}{}",
            a.kind.as_str(),
            p(&a.file_name),
            p(&a.destination),
            a.delivered_at
                .map(|d| format!("delivered {}", when(&d)))
                .unwrap_or_else(|| "PENDING".into()),
            a.attempts,
            a.last_error
                .as_deref()
                .map(|e| format!("  last error: {}", p(e)))
                .unwrap_or_default()
        );
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
pub fn validate(
    config: &Config,
    files: &[PathBuf],
    json: bool,
    layers: &[String],
) -> anyhow::Result<i32> {
    let limits = flow_limits(&config.limits);
    // `--layer` adds to the configured `[validation] layers`.
    let mut layers_on = config.layers;
    let extra = quai_mappings::validate::Layers::from_names(
        layers.iter().map(String::as_str),
        config.fr_ctc_mode,
    )
    .map_err(|e| anyhow::anyhow!("--layer: {e}"))?;
    if extra.fr_ctc.is_some() && layers_on.fr_ctc.is_none() {
        layers_on.fr_ctc = extra.fr_ctc;
    }
    let mut results = Vec::new();
    let mut any_rejected = false;
    for file in files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let file_str = file.display().to_string();
        let end = flow::process_unvalidated(file, &name, &limits, &mut |mut doc| {
            doc.validate_with(&layers_on);
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
        out!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        for r in &results {
            out!(
                "{:<8} {} [{}{}] {}",
                r.verdict.to_uppercase(),
                p(&r.entry),
                r.syntax.as_deref().unwrap_or("?"),
                r.profile
                    .as_deref()
                    .map(|x| format!(" {}", p(x)))
                    .unwrap_or_default(),
                p(r.invoice_number.as_deref().unwrap_or(""))
            );
            for v in &r.violations {
                let at = match (v.line, v.column) {
                    (Some(l), Some(c)) => format!(" (line {l}, column {c})"),
                    (Some(l), None) => format!(" (line {l})"),
                    _ => String::new(),
                };
                out!(
                    "    {} {} [{:?}] {}{at}",
                    p(&v.rule),
                    p(&v.term),
                    v.severity,
                    p(&v.message)
                );
            }
        }
        let rejected = results.iter().filter(|r| r.verdict == "rejected").count();
        out!(
            "{} invoice(s): {} accepted, {} rejected",
            results.len(),
            results.len() - rejected,
            rejected
        );
    }
    Ok(if any_rejected { 1 } else { 0 })
}

/// `quai replay ID`: process a stored flow again (same idempotency rules).
/// A duplicate is not replayed: the command says so, names the original,
/// and exits 1.
pub async fn replay(daemon: &Arc<App>, id: i64, json: bool) -> anyhow::Result<i32> {
    let before = daemon.spool.flow(id).await?;
    if before.state == quai_spool::FlowState::Duplicate {
        let original = before.duplicate_of;
        if json {
            let mut v = with_spool(daemon, &before)?;
            v["replayed"] = false.into();
            out!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            out!("spool {}", spool_name(daemon));
            out!(
                "flow {id} is a duplicate{}: not replayed{}",
                original
                    .map(|o| format!(" of flow {o}"))
                    .unwrap_or_default(),
                original
                    .map(|o| format!(" (replay flow {o} instead)"))
                    .unwrap_or_default()
            );
        }
        return Ok(1);
    }
    let lease = Lease {
        duration: std::time::Duration::from_secs(daemon.config().lease_seconds),
    };
    let claimed = daemon.spool.claim_for_replay(id, lease).await?;
    let stop = tokio_util::sync::CancellationToken::new();
    crate::pipeline::process_claimed(daemon, claimed, lease, &stop).await?;
    crate::deliverer::deliver_pending(daemon).await;
    let flow = daemon.spool.flow(id).await?;
    if json {
        let mut v = with_spool(daemon, &flow)?;
        v["replayed"] = true.into();
        out!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    out!("spool {}", spool_name(daemon));
    out!(
        "flow {} replayed: {} ({} accepted, {} rejected)",
        id,
        flow.state.as_str(),
        flow.invoices_accepted,
        flow.invoices_rejected
    );
    Ok(0)
}

/// `quai ingest FILE... --partner P`: take files in as if dropped, and
/// process them now. The partner must be configured or already known to
/// the spool (`--new-partner` to accept a new one). Exit 1 when an invoice
/// was rejected or a flow refused whole, like `validate`.
pub async fn ingest(
    daemon: &Arc<App>,
    partner: &str,
    new_partner: bool,
    files: &[PathBuf],
    json: bool,
) -> anyhow::Result<i32> {
    if !crate::config::valid_partner_id(partner) {
        anyhow::bail!(
            "{:?} is not a valid partner id (letters, digits, -, _ and .)",
            p(partner)
        );
    }
    // A folder under the partner-root drop zone is a partner already.
    let has_folder = daemon
        .config()
        .inbound_root
        .as_ref()
        .is_some_and(|r| r.join(partner).is_dir());
    if !new_partner && !has_folder {
        known_partner(daemon, partner).await.map_err(|e| {
            anyhow::anyhow!("{e:#}; pass --new-partner to take files in for a new partner")
        })?;
    }
    let config = daemon.config();
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
        if !json && tracing::enabled!(tracing::Level::INFO) {
            // A progress line per file (stderr, hidden by -q): position,
            // bytes taken so far, outcome.
            let pct = (done_bytes * 100).checked_div(total_bytes).unwrap_or(100);
            eprintln!(
                "[{}/{}] {:>3}% {} -> {}",
                n + 1,
                files.len(),
                pct,
                p(&file.display().to_string()),
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
    crate::deliverer::deliver_pending(daemon).await;
    let mut any_rejected = false;
    let mut results = Vec::new();
    for (f, a) in &registered {
        let (id, original) = match a {
            quai_connectors::Accepted::New { flow_id } => (*flow_id, None),
            quai_connectors::Accepted::Duplicate { flow_id, original } => {
                (*flow_id, Some(*original))
            }
        };
        let flow = daemon.spool.flow(id).await?;
        if original.is_none()
            && (flow.invoices_rejected > 0 || flow.state == quai_spool::FlowState::Failed)
        {
            any_rejected = true;
        }
        results.push((f, id, original, flow));
    }
    if json {
        let v: Vec<_> = results
            .iter()
            .map(|(f, id, original, flow)| match original {
                None => serde_json::json!({"file": f, "flow_id": id, "duplicate": false,
                    "state": flow.state.as_str(), "accepted": flow.invoices_accepted,
                    "rejected": flow.invoices_rejected}),
                Some(o) => serde_json::json!({"file": f, "flow_id": id, "duplicate": true,
                    "duplicate_of": o, "state": flow.state.as_str()}),
            })
            .collect();
        out!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        out!("spool {}", spool_name(daemon));
        for (f, id, original, flow) in &results {
            match original {
                None => out!(
                    "flow {id} {}: {} ({} accepted, {} rejected){}",
                    p(f),
                    flow.state.as_str(),
                    flow.invoices_accepted,
                    flow.invoices_rejected,
                    flow.failure_code
                        .as_deref()
                        .map(|c| format!(" {}", p(c)))
                        .unwrap_or_default()
                ),
                Some(o) => out!("flow {id} {}: duplicate of flow {o}", p(f)),
            }
        }
    }
    Ok(if any_rejected { 1 } else { 0 })
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
        out!(
            "{}",
            serde_json::to_string_pretty(&with_spool(app, &report)?)?
        );
    } else {
        out!("spool {}", spool_name(app));
        {
            use std::io::Write as _;
            write!(std::io::stdout().lock(), "{}", reconcile::text(&report))?;
        }
        for f in &report.files {
            out!("report: {f}");
        }
    }
    Ok(if report.balanced { 0 } else { 1 })
}

/// `quai purge [--dry-run] [--json]`.
pub async fn purge(app: &Arc<App>, dry_run: bool, json: bool) -> anyhow::Result<i32> {
    if dry_run {
        let days = i64::from(app.config().retention_days);
        let cutoff = chrono::Utc::now() - chrono::Duration::days(days);
        let would = app.spool.purge_preview(cutoff).await?;
        if json {
            let mut v = with_spool(app, &would)?;
            v["cutoff"] = cutoff.to_rfc3339().into();
            v["dry_run"] = true.into();
            out!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            out!("spool {}", spool_name(app));
            out!(
                "would purge {} flow(s) and {} invoice(s) last changed before {} (dry run: nothing removed)",
                would.flows,
                would.invoices,
                when(&cutoff)
            );
            if would.inbox_flows > 0 {
                out!("and {} flow(s) In of the partner API", would.inbox_flows);
            }
        }
        return Ok(0);
    }
    let s = purge::run(app).await?;
    if json {
        out!("{}", serde_json::to_string_pretty(&with_spool(app, &s)?)?);
    } else {
        out!("spool {}", spool_name(app));
        out!(
            "purged {} flow(s) and {} invoice(s) last changed before {}; {} raw file(s) deleted",
            s.flows,
            s.invoices,
            chrono::DateTime::parse_from_rfc3339(&s.cutoff)
                .map(|t| when(&t.with_timezone(&chrono::Utc)))
                .unwrap_or_else(|_| s.cutoff.clone()),
            s.raw_deleted
        );
        if s.inbox_flows > 0 {
            out!(
                "purged {} flow(s) In of the partner API; {} file(s) deleted",
                s.inbox_flows,
                s.inbox_deleted
            );
        }
        for e in &s.raw_errors {
            out!("not deleted: {}", p(e));
        }
    }
    Ok(if s.raw_errors.is_empty() { 0 } else { 1 })
}

/// What `quai resend-ack` is asked to send again.
#[derive(Debug, Clone, Default)]
pub struct ResendChoice {
    /// One acknowledgement, by id (`quai resend-ack ID`).
    pub ack: Option<i64>,
    /// Every acknowledgement of a flow (`--flow ID`)...
    pub flow: Option<i64>,
    /// ... of this kind only (`--kind report|cdar|contrl|mdn`).
    pub kind: Option<AckKind>,
}

/// The `--kind` names of `quai resend-ack`.
pub fn parse_ack_kind(s: &str) -> anyhow::Result<AckKind> {
    Ok(match s {
        "report" | "integration_report" => AckKind::IntegrationReport,
        "cdar" => AckKind::Cdar,
        "contrl" => AckKind::Contrl,
        "mdn" => AckKind::Mdn,
        other => {
            anyhow::bail!("unknown acknowledgement kind {other:?} (report, cdar, contrl, mdn)")
        }
    })
}

/// How long `quai resend-ack` waits for a running daemon that holds one of
/// the chosen deliveries to finish it.
const RESEND_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// `quai resend-ack (ID | --flow ID [--kind K])`: send exactly the chosen
/// acknowledgements again — a delivered one back to pending, a pending one
/// due now (its backoff skipped) — and deliver them, nothing else. The
/// spool coordinates with a running daemon: this command claims the rows
/// under a lease, and a row the daemon is already sending is left to it
/// and waited for, so no file is sent twice at once.
pub async fn resend_ack(app: &Arc<App>, choice: ResendChoice, json: bool) -> anyhow::Result<i32> {
    let flow = match (choice.ack, choice.flow) {
        (Some(ack), None) => app.spool.flow_of_ack(ack).await?,
        (None, Some(flow)) => {
            app.spool.flow(flow).await?;
            flow
        }
        _ => anyhow::bail!("name one acknowledgement (ID) or one flow (--flow ID)"),
    };
    let chosen: Vec<AckRow> = app
        .spool
        .acks_of_flow(flow)
        .await?
        .into_iter()
        .filter(|a| choice.ack.is_none_or(|id| a.id == id))
        .filter(|a| choice.kind.is_none_or(|k| a.kind == k))
        .collect();
    if chosen.is_empty() {
        anyhow::bail!(
            "flow {flow} has no {}acknowledgement to send",
            choice
                .kind
                .map(|k| format!("{} ", k.as_str()))
                .unwrap_or_default()
        );
    }
    for a in &chosen {
        app.spool.send_again(a.delivery_id).await?;
    }
    let ids: Vec<i64> = chosen.iter().map(|a| a.delivery_id).collect();
    crate::deliverer::deliver_chosen(app, &ids).await?;
    // Rows a running daemon held are delivered by it: wait for them.
    let started = std::time::Instant::now();
    let rows = loop {
        let mut rows = Vec::with_capacity(ids.len());
        for id in &ids {
            rows.push(app.spool.delivery(*id).await?);
        }
        let held = rows.iter().any(|r| {
            r.state == quai_spool::DeliveryState::Pending
                && r.lease_expires_at.is_some_and(|t| t > chrono::Utc::now())
        });
        if !held || started.elapsed() > RESEND_WAIT {
            break rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let all = rows
        .iter()
        .all(|r| r.state == quai_spool::DeliveryState::Delivered);
    if json {
        let list: Vec<_> = chosen
            .iter()
            .zip(&rows)
            .map(|(a, r)| {
                serde_json::json!({
                    "ack": a.id,
                    "kind": a.kind.as_str(),
                    "file": a.file_name,
                    "destination": crate::outbound::describe(&a.to),
                    "delivered": r.state == quai_spool::DeliveryState::Delivered,
                    "error": if r.state == quai_spool::DeliveryState::Delivered { None } else { r.last_error.clone() },
                })
            })
            .collect();
        out!(
            "{}",
            serde_json::json!({"spool": spool_name(app), "flow": flow, "acknowledgements": list, "delivered": all})
        );
        return Ok(if all { 0 } else { 1 });
    }
    out!("spool {}", spool_name(app));
    for (a, r) in chosen.iter().zip(&rows) {
        let to = crate::outbound::describe(&a.to);
        if r.state == quai_spool::DeliveryState::Delivered {
            out!(
                "acknowledgement {} ({} {}) delivered to {}",
                a.id,
                a.kind.as_str(),
                p(&a.file_name),
                to
            );
        } else {
            out!(
                "acknowledgement {} ({} {}) not delivered to {}: {}",
                a.id,
                a.kind.as_str(),
                p(&a.file_name),
                to,
                p(r.last_error.as_deref().unwrap_or("still pending"))
            );
        }
    }
    Ok(if all { 0 } else { 1 })
}

/// `quai check-config`: every problem of the file, then what a start would
/// check (files, folders; [`crate::preflight`]). Exit 2 when there is any.
pub fn check_config(path: Option<&std::path::Path>, json: bool) -> anyhow::Result<i32> {
    let source = path
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "embedded default".into());
    let (config, mut problems) = match path {
        Some(p) => Config::load_all(p),
        None => (Some(Config::embedded_default()), Vec::new()),
    };
    // What a start would check, on what of the file resolves.
    if let Some(c) = &config {
        problems.extend(crate::preflight::check(c));
        problems.extend(crate::directory::check_file(c));
    }
    let result = match config {
        Some(c) if problems.is_empty() => Ok(c),
        _ => Err(crate::config::ConfigErrors(problems)),
    };
    match result {
        Ok(c) => {
            // Partners reached only through the partner API (docs/api.md,
            // "Flows In"): what is delivered to them becomes their flows In.
            let api_only: Vec<&str> = c
                .partners
                .iter()
                .filter(|p| crate::routing::api_only(&c, &p.id))
                .map(|p| p.id.as_str())
                .collect();
            if json {
                out!(
                    "{}",
                    serde_json::json!({"ok": true, "problems": [], "config": source,
                        "spool": crate::text::redact_url(&c.spool_url), "partners": c.partners.len(),
                        "api_only_partners": api_only})
                );
            } else {
                out!(
                    "configuration OK ({source}): spool {}, {} partner(s)",
                    crate::text::redact_url(&c.spool_url),
                    c.partners.len()
                );
                if !api_only.is_empty() {
                    out!(
                        "reached only through the partner API (flows In): {}",
                        api_only.join(", ")
                    );
                }
            }
            Ok(0)
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
                out!(
                    "{}",
                    serde_json::json!({"ok": false, "problems": problems, "config": source})
                );
            } else {
                // The verdict is the command's result (stdout); so is the list.
                out!("{source}: {}", errors.to_string().trim_end());
            }
            Ok(2)
        }
    }
}
