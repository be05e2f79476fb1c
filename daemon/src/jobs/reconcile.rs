//! Reconciliation: can operations prove that nothing was lost?
//!
//! For a period `[from, to)` (flows by their reception time) and per partner,
//! the report puts side by side: files seen (flow registrations by channel —
//! drop zone, SFTP, AS2, CLI — duplicates included), flows registered,
//! processed, failed, still in progress; acknowledgements generated and
//! delivered; invoices accepted and rejected; rejects notified and pending.
//!
//! It flags, each as a [`Discrepancy`]:
//! - `never_ingested`: a file sitting in a drop zone for longer than
//!   `dropzone_grace` whose bytes no flow holds (intake missed it);
//! - `left_in_dropzone`: a file still in a drop zone although its bytes were
//!   registered (the source was not removed after the commit);
//! - `stuck_flow`: a flow still `received`/`processing` longer than
//!   `stuck_after`;
//! - `undelivered_ack`: an acknowledgement not delivered yet that was
//!   generated more than `ack_grace` ago or whose delivery already failed
//!   (with its destination, attempts and last error);
//! - `missing_report`: a finished (processed or failed) flow of the period
//!   with no integration report at all;
//! - `rejects_unaccounted`: rejected invoices of the period that are neither
//!   notified nor pending in the outbox (the counts do not add up);
//! - the exchange's (issue 15): `accepted_not_routed` (an accepted invoice
//!   of the period with no recipient, when the configuration routes),
//!   `undelivered_invoice` (owed to its recipient for longer than
//!   `[exchange] undelivered_after_minutes`), `no_status_from_recipient`
//!   (delivered more than `[exchange] no_status_after_days` ago, and no
//!   status from its recipient since).
//!
//! The report is written under `$QUAI_HOME/reports/` as JSON (for scripts),
//! CSV (long format: `section,partner,key,value,detail`) and a readable HTML
//! page, and mailed to `[mail] operations`. `quai reconcile` exits 1 when
//! there is any discrepancy, so it can drive a cron or systemd timer alert.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use quai_spool::{AckKind, FlowFilter, FlowState, Origin};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::app::App;
use crate::mail::{new_message_id, MailAttachment, Mailer, OutgoingMail};
use crate::text::{html_escape, write_atomically};

/// Thresholds of the checks.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// A flow not finished after this long is stuck.
    pub stuck_after: Duration,
    /// A drop-zone file older than this should have been taken in.
    pub dropzone_grace: Duration,
    /// An acknowledgement undelivered after this long is flagged.
    pub ack_grace: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            stuck_after: Duration::hours(1),
            dropzone_grace: Duration::minutes(15),
            ack_grace: Duration::minutes(15),
        }
    }
}

/// One partner's line.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PartnerLine {
    pub partner: String,
    /// Flow registrations by channel (`dropzone`, `sftp`, `as2`, `cli`),
    /// duplicates included.
    pub files_seen: BTreeMap<String, i64>,
    /// Files in the partner's drop zone now, older than the grace period.
    pub files_waiting: i64,
    pub flows_registered: i64,
    pub flows_duplicate: i64,
    pub flows_processed: i64,
    pub flows_failed: i64,
    pub flows_unfinished: i64,
    pub acks_generated: i64,
    pub acks_delivered: i64,
    pub acks_pending: i64,
    pub invoices_accepted: i64,
    pub invoices_rejected: i64,
    pub rejects_notified: i64,
    pub rejects_pending: i64,
}

/// Something that does not add up.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Discrepancy {
    /// `never_ingested`, `left_in_dropzone`, `stuck_flow`, `undelivered_ack`,
    /// `missing_report`, `rejects_unaccounted`, `accepted_not_routed`,
    /// `undelivered_invoice`, `no_status_from_recipient`, `statuses_unmatched`.
    pub kind: String,
    pub partner: String,
    /// What it is about: a file path, `flow 12`, `ack 40`...
    pub subject: String,
    pub detail: String,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct ReconcileReport {
    pub generated_at: String,
    pub from: String,
    pub to: String,
    pub timezone: String,
    pub balanced: bool,
    pub partners: Vec<PartnerLine>,
    pub discrepancies: Vec<Discrepancy>,
    /// Files written (JSON, CSV, HTML).
    pub files: Vec<String>,
    /// Whether the report was mailed to operations (`None`: no recipient).
    pub mailed: Option<bool>,
}

impl ReconcileReport {
    pub fn summary_line(&self) -> String {
        format!(
            "{} -> {}: {} partner(s), {} discrepanc{}",
            self.from,
            self.to,
            self.partners.len(),
            self.discrepancies.len(),
            if self.discrepancies.len() == 1 {
                "y"
            } else {
                "ies"
            }
        )
    }
}

/// `--from`/`--to` values: a date (`2026-11-28`, midnight in `tz`; as `to`
/// the whole day is included) or an RFC 3339 time.
pub fn parse_bound(s: &str, tz: chrono_tz::Tz, is_end: bool) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .with_context(|| format!("{s:?} is neither a date (2026-11-28) nor an RFC 3339 time"))?;
    let d = if is_end {
        d.succ_opt().context("date out of range")?
    } else {
        d
    };
    let midnight = d.and_hms_opt(0, 0, 0).context("date out of range")?;
    tz.from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("{s} has no midnight in {tz}"))
}

/// The scheduled run: the 24 hours before now, written and mailed.
pub async fn run_scheduled(daemon: &Arc<App>) -> anyhow::Result<ReconcileReport> {
    let to = Utc::now();
    let from = to - Duration::hours(24);
    let mut report = reconcile(daemon, from, to, Thresholds::default()).await?;
    publish(daemon, &mut report).await?;
    if !report.balanced {
        warn!(
            discrepancies = report.discrepancies.len(),
            "reconciliation: counts do not add up"
        );
    }
    Ok(report)
}

/// Write the report files and mail operations.
pub async fn publish(daemon: &App, report: &mut ReconcileReport) -> anyhow::Result<()> {
    let dir = daemon.config().home.join("reports");
    report.files = write_files(&dir, report)?;
    let to = daemon.config().operations_mail.clone();
    if to.is_empty() {
        report.mailed = None;
        return Ok(());
    }
    let mailer = Mailer::from_config(&daemon.config())?;
    let mail = OutgoingMail {
        to,
        subject: mail_subject(report),
        text: text(report),
        html: html(report),
        attachments: vec![
            MailAttachment {
                file_name: "reconciliation.csv".into(),
                content_type: "text/csv; charset=utf-8".into(),
                bytes: csv(report).into_bytes(),
            },
            MailAttachment {
                file_name: "reconciliation.json".into(),
                content_type: "application/json".into(),
                bytes: serde_json::to_vec_pretty(report)?,
            },
        ],
        message_id: new_message_id("reconcile"),
    };
    match mailer.send(&mail).await {
        Ok(()) => report.mailed = Some(true),
        Err(e) => {
            warn!(error = %e, "reconciliation report not mailed (written under reports/)");
            report.mailed = Some(false);
        }
    }
    Ok(())
}

/// Build the report for `[from, to)`.
pub async fn reconcile(
    daemon: &App,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    th: Thresholds,
) -> anyhow::Result<ReconcileReport> {
    let spool = &daemon.spool;
    let now = Utc::now();
    let mut lines: BTreeMap<String, PartnerLine> = BTreeMap::new();
    let mut found = Vec::new();

    for c in spool.period_counts(from, to).await? {
        let get = |m: &BTreeMap<String, i64>, k: &str| m.get(k).copied().unwrap_or(0);
        let line = PartnerLine {
            partner: c.partner.clone(),
            flows_registered: c.flows.values().sum(),
            flows_duplicate: get(&c.flows, "duplicate"),
            flows_processed: get(&c.flows, "processed"),
            flows_failed: get(&c.flows, "failed"),
            flows_unfinished: get(&c.flows, "received") + get(&c.flows, "processing"),
            acks_generated: get(&c.acks, "delivered") + get(&c.acks, "pending"),
            acks_delivered: get(&c.acks, "delivered"),
            acks_pending: get(&c.acks, "pending"),
            invoices_accepted: get(&c.invoices, "accepted"),
            invoices_rejected: get(&c.invoices, "rejected"),
            rejects_notified: get(&c.rejects, "notified"),
            rejects_pending: get(&c.rejects, "pending"),
            ..PartnerLine::default()
        };
        let accounted = line.rejects_notified + line.rejects_pending;
        if line.invoices_rejected != accounted {
            found.push(Discrepancy {
                kind: "rejects_unaccounted".into(),
                partner: c.partner.clone(),
                subject: format!("{} rejected invoice(s)", line.invoices_rejected),
                detail: format!(
                    "{} rejected, but {} notified + {} pending in the outbox",
                    line.invoices_rejected, line.rejects_notified, line.rejects_pending
                ),
            });
        }
        lines.insert(c.partner.clone(), line);
    }

    // Channels, and finished flows without an integration report.
    let flows = spool
        .list_flows(&FlowFilter {
            since: Some(from),
            ..FlowFilter::default()
        })
        .await?;
    for f in flows.iter().filter(|f| f.received_at < to) {
        let line = lines
            .entry(f.partner.clone())
            .or_insert_with(|| PartnerLine {
                partner: f.partner.clone(),
                ..PartnerLine::default()
            });
        *line
            .files_seen
            .entry(origin_name(f.origin).to_string())
            .or_default() += 1;
        if f.failure_code.as_deref() == Some(crate::statuses::STATUS_REFUSED) {
            // A status flow whose statuses named no invoice of its sender's.
            let message = f.failure_message.as_deref().unwrap_or("");
            let unmatched = crate::statuses::unmatched(message);
            if unmatched > 0 {
                found.push(Discrepancy {
                    kind: "statuses_unmatched".into(),
                    partner: f.partner.clone(),
                    subject: format!("flow {}", f.id),
                    detail: format!(
                        "{unmatched} status(es) of {} matched no invoice of {}",
                        f.original_name, f.partner
                    ),
                });
            }
        }
        if matches!(f.state, FlowState::Processed | FlowState::Failed) {
            let acks = spool.acks_of_flow(f.id).await?;
            if !acks.iter().any(|a| a.kind == AckKind::IntegrationReport) {
                found.push(Discrepancy {
                    kind: "missing_report".into(),
                    partner: f.partner.clone(),
                    subject: format!("flow {}", f.id),
                    detail: format!(
                        "{} is {} but no integration report was generated",
                        f.original_name,
                        f.state.as_str()
                    ),
                });
            }
        }
    }

    // Flows stuck in a non-terminal state.
    for f in spool.unfinished_flows(Some(now - th.stuck_after)).await? {
        found.push(Discrepancy {
            kind: "stuck_flow".into(),
            partner: f.partner.clone(),
            subject: format!("flow {}", f.id),
            detail: format!(
                "{} has been {} since {} (received {}, {} attempt(s))",
                f.original_name,
                f.state.as_str(),
                f.updated_at.to_rfc3339(),
                f.received_at.to_rfc3339(),
                f.attempts
            ),
        });
    }

    // Acknowledgements not delivered.
    for a in spool.pending_acks(100_000).await? {
        let failed = a.attempts > 0 && a.last_error.is_some();
        if failed || a.generated_at < now - th.ack_grace {
            found.push(Discrepancy {
                kind: "undelivered_ack".into(),
                partner: a.partner.clone(),
                subject: format!("ack {}", a.id),
                detail: format!(
                    "{} {} of flow {} (to {}) generated {}, not delivered after {} attempt(s){}",
                    a.kind.as_str(),
                    a.file_name,
                    a.flow_id,
                    crate::outbound::describe(&a.to),
                    a.generated_at.to_rfc3339(),
                    a.attempts,
                    a.last_error
                        .as_deref()
                        .map(|e| format!("; last error: {e}"))
                        .unwrap_or_default()
                ),
            });
        }
    }

    // Files waiting in drop zones.
    let zones = dropzones(daemon);
    let grace = th.dropzone_grace;
    let waiting =
        tokio::task::spawn_blocking(move || scan_dropzones(&zones, now - grace)).await??;
    for (partner, path, sha) in waiting {
        let line = lines.entry(partner.clone()).or_insert_with(|| PartnerLine {
            partner: partner.clone(),
            ..PartnerLine::default()
        });
        line.files_waiting += 1;
        match spool.flow_by_hash(&partner, &sha).await? {
            Some(flow) => found.push(Discrepancy {
                kind: "left_in_dropzone".into(),
                partner,
                subject: path.display().to_string(),
                detail: format!(
                    "its bytes were registered as flow {} ({}) but the file was not removed from the drop zone",
                    flow.id,
                    flow.state.as_str()
                ),
            }),
            None => found.push(Discrepancy {
                kind: "never_ingested".into(),
                partner,
                subject: path.display().to_string(),
                detail: format!(
                    "in the drop zone for more than {} minutes and never registered",
                    grace.num_minutes()
                ),
            }),
        }
    }

    exchange_findings(daemon, from, to, now, &mut found).await?;

    found.sort_by(|a, b| {
        (a.partner.as_str(), a.kind.as_str(), a.subject.as_str()).cmp(&(
            b.partner.as_str(),
            b.kind.as_str(),
            b.subject.as_str(),
        ))
    });
    let report = ReconcileReport {
        generated_at: now.to_rfc3339(),
        from: from.to_rfc3339(),
        to: to.to_rfc3339(),
        timezone: daemon.config().timezone.to_string(),
        balanced: found.is_empty(),
        partners: lines.into_values().collect(),
        discrepancies: found,
        files: Vec::new(),
        mailed: None,
    };
    info!(summary = %report.summary_line(), "reconciliation");
    Ok(report)
}

/// The exchange's findings (issue 15): accepted invoices of the period not
/// routed (when the configuration routes invoices), invoices owed to their
/// recipient and undelivered after `[exchange] undelivered_after_minutes`,
/// and invoices delivered over `[exchange] no_status_after_days` ago with
/// no status from their recipient since.
async fn exchange_findings(
    daemon: &App,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
    found: &mut Vec<Discrepancy>,
) -> anyhow::Result<()> {
    let spool = &daemon.spool;
    let config = daemon.config();
    if crate::routing::routes_invoices(&config) {
        for i in spool.accepted_not_routed(from, to).await? {
            found.push(Discrepancy {
                kind: "accepted_not_routed".into(),
                partner: i.supplier.clone(),
                subject: format!("invoice {}/{}", i.flow_id, i.doc_index),
                detail: format!(
                    "accepted invoice {} was routed to no recipient",
                    i.number.as_deref().unwrap_or("(no number)")
                ),
            });
        }
    }
    let minutes = i64::try_from(config.undelivered_after_minutes).unwrap_or(i64::MAX / 120_000);
    for d in spool
        .invoices_undelivered_since(now - Duration::minutes(minutes))
        .await?
    {
        let (flow, doc) = match d.item {
            quai_spool::DeliveryItem::Invoice { flow, doc_index } => (flow, doc_index),
            _ => continue,
        };
        found.push(Discrepancy {
            kind: "undelivered_invoice".into(),
            partner: d.partner.clone(),
            subject: format!("invoice {flow}/{doc}"),
            detail: format!(
                "{} owed to {} for more than {minutes} minutes: {} attempt(s){}",
                d.file_name,
                crate::outbound::describe(&d.to),
                d.attempts,
                d.last_error
                    .as_deref()
                    .map(|e| format!(", last error: {e}"))
                    .unwrap_or_default()
            ),
        });
    }
    let days = i64::from(config.no_status_after_days);
    for d in spool
        .delivered_without_recipient_status(now - Duration::days(days), 1000)
        .await?
    {
        let (flow, doc) = match d.item {
            quai_spool::DeliveryItem::Invoice { flow, doc_index } => (flow, doc_index),
            _ => continue,
        };
        found.push(Discrepancy {
            kind: "no_status_from_recipient".into(),
            partner: d.partner.clone(),
            subject: format!("invoice {flow}/{doc}"),
            detail: format!(
                "delivered {} days ago or more ({}), and its recipient has sent no status since",
                days,
                d.delivered_at.map(|t| t.to_rfc3339()).unwrap_or_default()
            ),
        });
    }
    Ok(())
}

fn origin_name(o: Origin) -> &'static str {
    match o {
        Origin::Dropzone => "dropzone",
        Origin::Sftp => "sftp",
        Origin::As2 => "as2",
        Origin::Cli => "cli",
        Origin::Api => "api",
    }
}

/// (partner, folder) of every local drop zone.
fn dropzones(daemon: &App) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for p in &daemon.config().partners {
        if let Some(inbox) = &p.inbox {
            out.push((p.id.clone(), inbox.clone()));
        }
    }
    if let Some(root) = &daemon.config().inbound_root {
        if let Ok(rd) = std::fs::read_dir(root) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if e.path().is_dir() && crate::config::valid_partner_id(&name) {
                    out.push((name, e.path()));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Regular, finished-looking files older than `before`, with their SHA-256.
fn scan_dropzones(
    zones: &[(String, PathBuf)],
    before: DateTime<Utc>,
) -> anyhow::Result<Vec<(String, PathBuf, String)>> {
    let mut out = Vec::new();
    for (partner, dir) in zones {
        let Ok(rd) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(meta) = e.metadata() else { continue };
            if !meta.is_file() || quai_connectors::landing::is_partial_name(&name) {
                continue;
            }
            let modified: DateTime<Utc> = match meta.modified() {
                Ok(m) => m.into(),
                Err(_) => continue,
            };
            if modified >= before {
                continue;
            }
            match sha256_of(&e.path()) {
                Ok(sha) => out.push((partner.clone(), e.path(), sha)),
                Err(err) => {
                    warn!(file = %e.path().display(), error = %err, "cannot read a drop-zone file")
                }
            }
        }
    }
    Ok(out)
}

fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Mail subject.
pub fn mail_subject(r: &ReconcileReport) -> String {
    let period = format!("{} to {}", short(&r.from), short(&r.to));
    if r.balanced {
        format!("quai: reconciliation {period}: all balanced")
    } else {
        format!(
            "quai: reconciliation {period}: {} discrepanc{}",
            r.discrepancies.len(),
            if r.discrepancies.len() == 1 {
                "y"
            } else {
                "ies"
            }
        )
    }
}

fn short(rfc3339: &str) -> String {
    rfc3339.get(..16).unwrap_or(rfc3339).replace('T', " ")
}

const COLUMNS: [&str; 15] = [
    "files_waiting",
    "flows_registered",
    "flows_duplicate",
    "flows_processed",
    "flows_failed",
    "flows_unfinished",
    "acks_generated",
    "acks_delivered",
    "acks_pending",
    "invoices_accepted",
    "invoices_rejected",
    "rejects_notified",
    "rejects_pending",
    "files_seen",
    "partner",
];

fn values(l: &PartnerLine) -> Vec<(String, String)> {
    let mut v = vec![
        ("files_waiting", l.files_waiting),
        ("flows_registered", l.flows_registered),
        ("flows_duplicate", l.flows_duplicate),
        ("flows_processed", l.flows_processed),
        ("flows_failed", l.flows_failed),
        ("flows_unfinished", l.flows_unfinished),
        ("acks_generated", l.acks_generated),
        ("acks_delivered", l.acks_delivered),
        ("acks_pending", l.acks_pending),
        ("invoices_accepted", l.invoices_accepted),
        ("invoices_rejected", l.invoices_rejected),
        ("rejects_notified", l.rejects_notified),
        ("rejects_pending", l.rejects_pending),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n.to_string()))
    .collect::<Vec<_>>();
    for (origin, n) in &l.files_seen {
        v.push((format!("files_seen_{origin}"), n.to_string()));
    }
    v
}

/// CSV (long format): `section,partner,key,value,detail`.
pub fn csv(r: &ReconcileReport) -> String {
    use crate::text::csv_field;
    let _ = COLUMNS;
    let mut out = String::from("section,partner,key,value,detail\r\n");
    let _ = write!(out, "period,,from,{},\r\nperiod,,to,{},\r\n", r.from, r.to);
    for l in &r.partners {
        for (k, v) in values(l) {
            let _ = write!(out, "count,{},{k},{v},\r\n", csv_field(&l.partner, true));
        }
    }
    for d in &r.discrepancies {
        let _ = write!(
            out,
            "discrepancy,{},{},{},{}\r\n",
            csv_field(&d.partner, true),
            csv_field(&d.kind, true),
            csv_field(&d.subject, true),
            csv_field(&d.detail, true)
        );
    }
    out
}

/// Plain-text body.
pub fn text(r: &ReconcileReport) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Reconciliation of flows received from {} to {}",
        r.from, r.to
    );
    let _ = writeln!(
        t,
        "{}\n",
        if r.balanced {
            "Everything adds up.".to_string()
        } else {
            format!(
                "{} discrepanc{}:",
                r.discrepancies.len(),
                if r.discrepancies.len() == 1 {
                    "y"
                } else {
                    "ies"
                }
            )
        }
    );
    for d in &r.discrepancies {
        let _ = writeln!(
            t,
            "- [{}] {} {}: {}",
            d.kind, d.partner, d.subject, d.detail
        );
    }
    let _ = writeln!(t);
    for l in &r.partners {
        let seen: Vec<String> = l
            .files_seen
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            t,
            "{}: files seen [{}], waiting {}; flows {} (processed {}, failed {}, duplicate {}, unfinished {}); acks {} generated, {} delivered; invoices {} accepted, {} rejected ({} notified, {} pending)",
            l.partner,
            seen.join(", "),
            l.files_waiting,
            l.flows_registered,
            l.flows_processed,
            l.flows_failed,
            l.flows_duplicate,
            l.flows_unfinished,
            l.acks_generated,
            l.acks_delivered,
            l.invoices_accepted,
            l.invoices_rejected,
            l.rejects_notified,
            l.rejects_pending
        );
    }
    t
}

/// The readable HTML page.
pub fn html(r: &ReconcileReport) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>quai reconciliation</title>\
         <style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:3px 6px;text-align:right}}\
         td.l,th.l{{text-align:left}}.bad{{color:#b00}}.ok{{color:#070}}</style></head><body>\
         <h1>Reconciliation</h1><p>Flows received from <b>{}</b> to <b>{}</b> (time zone {}); generated {}.</p>",
        html_escape(&r.from),
        html_escape(&r.to),
        html_escape(&r.timezone),
        html_escape(&r.generated_at)
    );
    if r.balanced {
        h.push_str("<p class=\"ok\"><b>Everything adds up.</b></p>");
    } else {
        let _ = write!(
            h,
            "<h2 class=\"bad\">{} discrepancies</h2><table><tr><th class=\"l\">Kind</th><th class=\"l\">Partner</th>\
             <th class=\"l\">Subject</th><th class=\"l\">Detail</th></tr>",
            r.discrepancies.len()
        );
        for d in &r.discrepancies {
            let _ = write!(
                h,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
                html_escape(&d.kind),
                html_escape(&d.partner),
                html_escape(&d.subject),
                html_escape(&d.detail)
            );
        }
        h.push_str("</table>");
    }
    h.push_str(
        "<h2>Per partner</h2><table><tr><th class=\"l\">Partner</th><th class=\"l\">Files seen</th><th>Waiting</th>\
         <th>Flows</th><th>Processed</th><th>Failed</th><th>Duplicate</th><th>Unfinished</th><th>Acks generated</th>\
         <th>Acks delivered</th><th>Accepted</th><th>Rejected</th><th>Notified</th><th>Pending</th></tr>",
    );
    for l in &r.partners {
        let seen: Vec<String> = l
            .files_seen
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html_escape(&l.partner),
            html_escape(&seen.join(", ")),
            l.files_waiting,
            l.flows_registered,
            l.flows_processed,
            l.flows_failed,
            l.flows_duplicate,
            l.flows_unfinished,
            l.acks_generated,
            l.acks_delivered,
            l.invoices_accepted,
            l.invoices_rejected,
            l.rejects_notified,
            l.rejects_pending
        );
    }
    h.push_str("</table></body></html>\n");
    h
}

/// Write JSON, CSV and HTML into `dir`; returns their paths.
pub fn write_files(dir: &Path, r: &ReconcileReport) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let stamp = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc).format("%Y%m%dT%H%M%SZ").to_string())
            .unwrap_or_else(|_| "x".into())
    };
    let stem = format!("reconcile-{}-{}", stamp(&r.from), stamp(&r.to));
    let mut files = Vec::new();
    let mut with_files = r.clone();
    for ext in ["json", "csv", "html"] {
        files.push(dir.join(format!("{stem}.{ext}")).display().to_string());
    }
    with_files.files = files.clone();
    let json = serde_json::to_vec_pretty(&with_files)?;
    write_atomically(dir, &format!("{stem}.json"), &json)?;
    write_atomically(dir, &format!("{stem}.csv"), csv(r).as_bytes())?;
    write_atomically(dir, &format!("{stem}.html"), html(r).as_bytes())?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        let paris: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
        assert_eq!(
            parse_bound("2026-11-28", paris, false)
                .unwrap()
                .to_rfc3339(),
            "2026-11-27T23:00:00+00:00"
        );
        assert_eq!(
            parse_bound("2026-11-28", paris, true).unwrap().to_rfc3339(),
            "2026-11-28T23:00:00+00:00"
        );
        assert_eq!(
            parse_bound("2026-11-28T10:00:00Z", paris, true)
                .unwrap()
                .to_rfc3339(),
            "2026-11-28T10:00:00+00:00"
        );
        assert!(parse_bound("yesterday", paris, false).is_err());
    }
}
