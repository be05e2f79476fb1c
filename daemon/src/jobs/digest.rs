//! Reject digests: per partner, one e-mail listing every rejected invoice and
//! every flow refused whole (IRR_SYNTAX, IRR_TYPE_F...) not yet notified
//! (plain text + HTML, and a CSV attachment with all of them).
//!
//! # Exactly once
//! The spool's notification outboxes hold one row per rejected invoice and
//! one per refused flow. A digest goes out in three steps:
//! 1. **record `sending`**: a job run `digest-send:<partner>` with outcome
//!    `sending` and, as its detail, the Message-ID, the recipients and the
//!    outbox row ids the mail lists (`ids` of rejects, `flows` of refused
//!    flows) — committed *before* the mail leaves;
//! 2. **send** the mail (with that Message-ID);
//! 3. **mark**: [`quai_spool::Spool::mark_digest`] records the digest and
//!    marks exactly those rows notified in one transaction; then the run is
//!    finished as `sent`.
//!
//! A failed send (SMTP down, refused recipient) finishes the run as `failed`:
//! the rows stay pending and the next cycle sends them, together with any new
//! ones. A process that dies between 1 and 3 leaves a run in `sending`; the
//! next cycle resolves it *before* building a new digest:
//! - file transport: the `.eml` named after the Message-ID exists → it was
//!   sent, mark the rows; it does not → it was not, the rows go out again;
//! - SMTP: whether the relay took the message cannot be known from here.
//!   quai resolves it **as sent** (the rows are marked, with the recorded
//!   Message-ID) and logs a warning naming the Message-ID so operations can
//!   check the relay's log. A partner is never told twice; in the narrow case
//!   of a crash *before* the relay accepted the message, a reject may go
//!   unmailed — it is still in the integration report and the CDAR status
//!   the partner received, and the run stays visible as `sent-assumed`.
//!
//! Rows marked by an earlier resolution are never marked again (the spool
//! only marks rows still pending), so resolving twice is harmless.

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use quai_spool::{FailedFlowRow, NewDigest, RejectRow};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::app::App;
use crate::language::{DigestWords, Language};
use crate::mail::{new_message_id, MailAttachment, Mailer, OutgoingMail};
use crate::reasons::is_fatal;
use crate::text::{csv_field, html_escape};

/// Most rejects listed in the mail bodies; the CSV always has all of them.
pub const BODY_ROWS: usize = 200;

/// What the `sending` record holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendingRecord {
    pub message_id: String,
    pub recipients: Vec<String>,
    pub ids: Vec<i64>,
    /// Outbox rows of the refused flows listed (absent in records written
    /// before refused flows were digested).
    #[serde(default)]
    pub flows: Vec<i64>,
}

/// What a partner is told in one digest.
#[derive(Debug, Clone, Default)]
pub struct Pending {
    pub rejects: Vec<RejectRow>,
    pub flows: Vec<FailedFlowRow>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.rejects.is_empty() && self.flows.is_empty()
    }
}

/// Test hook: stop right after the mail is sent, before anything is marked
/// (what a process killed at that moment leaves behind).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Fault {
    #[default]
    None,
    StopAfterSend,
}

/// Outcome of one digest cycle.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DigestSummary {
    /// (partner, invoices listed) of each digest sent in this cycle.
    pub sent: Vec<(String, usize)>,
    /// (partner, refused flows listed) of each digest that listed any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sent_flows: Vec<(String, usize)>,
    /// (partner, error) of each digest that could not be sent.
    pub failed: Vec<(String, String)>,
    /// (partner, resolution) of `sending` runs found from an earlier cycle.
    pub resolved: Vec<(String, String)>,
    /// Partners with pending rejects but nobody to tell.
    pub no_recipient: Vec<String>,
}

impl DigestSummary {
    pub fn detail(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn job_name(partner: &str) -> String {
    format!("digest-send:{partner}")
}

/// Recipients of a partner's digests: its contacts, else operations.
pub fn recipients(daemon: &App, partner: &str) -> Vec<String> {
    let contacts = daemon
        .config()
        .partner(partner)
        .map(|p| p.contacts.clone())
        .unwrap_or_default();
    if contacts.is_empty() {
        daemon.config().operations_mail.clone()
    } else {
        contacts
    }
}

/// One cycle: every partner with pending rejects or refused flows gets one
/// digest.
pub async fn run(daemon: &Arc<App>) -> anyhow::Result<DigestSummary> {
    run_with(daemon, Fault::None).await
}

/// [`run`] with a fault injected (tests).
pub async fn run_with(daemon: &Arc<App>, fault: Fault) -> anyhow::Result<DigestSummary> {
    let mailer = Mailer::from_config(&daemon.config())?;
    let spool = &daemon.spool;
    let mut summary = DigestSummary::default();
    let partners = spool
        .partners_with_pending_rejects()
        .await
        .context("cannot list partners with pending rejects")?;
    for partner in partners {
        if let Some(resolution) = resolve_in_doubt(daemon, &mailer, &partner).await? {
            summary.resolved.push((partner.clone(), resolution));
        }
        let pending = Pending {
            rejects: spool.pending_rejects(&partner).await?,
            flows: spool.pending_failed_flows(&partner).await?,
        };
        if pending.is_empty() {
            continue;
        }
        let to = recipients(daemon, &partner);
        if to.is_empty() {
            warn!(partner = %partner, pending = pending.rejects.len(), refused_flows = pending.flows.len(), "rejected invoices or refused flows pending but the partner has no contacts and [mail] operations is empty: no digest sent");
            summary.no_recipient.push(partner.clone());
            continue;
        }
        match send_digest(daemon, &mailer, &partner, &pending, to, fault).await {
            Ok(()) => {
                summary.sent.push((partner.clone(), pending.rejects.len()));
                if !pending.flows.is_empty() {
                    summary
                        .sent_flows
                        .push((partner.clone(), pending.flows.len()));
                }
            }
            Err(e) => {
                warn!(partner = %partner, error = %format!("{e:#}"), "reject digest not sent; retried at the next cycle");
                summary.failed.push((partner.clone(), format!("{e:#}")));
            }
        }
        if fault == Fault::StopAfterSend {
            break;
        }
    }
    Ok(summary)
}

async fn send_digest(
    daemon: &App,
    mailer: &Mailer,
    partner: &str,
    pending: &Pending,
    to: Vec<String>,
    fault: Fault,
) -> anyhow::Result<()> {
    let spool = &daemon.spool;
    let today = Utc::now()
        .with_timezone(&daemon.config().timezone)
        .date_naive();
    let lang = daemon
        .config()
        .partner(partner)
        .map(|p| p.language)
        .unwrap_or_default();
    // What the partner reads, in its language (the rows keep their ids).
    let localized = localized(pending, lang);
    let mail = compose(
        partner,
        &localized,
        today,
        to.clone(),
        new_message_id("digest"),
        lang,
    );
    let record = SendingRecord {
        message_id: mail.message_id.clone(),
        recipients: to,
        ids: pending.rejects.iter().map(|r| r.id).collect(),
        flows: pending.flows.iter().map(|r| r.id).collect(),
    };
    let now = Utc::now();
    let run = spool
        .record_job_run(
            &job_name(partner),
            now,
            now,
            "sending",
            Some(&serde_json::to_string(&record)?),
        )
        .await
        .context("cannot record the digest as sending")?;
    if let Err(e) = mailer.send(&mail).await {
        spool
            .finish_job_run(run, "failed", Some(&e.to_string()))
            .await
            .ok();
        return Err(e.into());
    }
    if fault == Fault::StopAfterSend {
        return Ok(());
    }
    mark(daemon, partner, &record).await?;
    spool
        .finish_job_run(run, "sent", Some(&serde_json::to_string(&record)?))
        .await?;
    info!(partner = %partner, invoices = pending.rejects.len(), refused_flows = pending.flows.len(), message_id = %record.message_id, "reject digest sent");
    Ok(())
}

async fn mark(daemon: &App, partner: &str, record: &SendingRecord) -> anyhow::Result<u64> {
    let (_, marked) = daemon
        .spool
        .mark_digest(
            &record.ids,
            &record.flows,
            &NewDigest {
                partner: partner.to_string(),
                recipients: record.recipients.clone(),
                message_id: Some(record.message_id.clone()),
            },
        )
        .await
        .context("digest sent but the outbox could not be marked")?;
    Ok(marked)
}

/// Resolve a `sending` run left by an earlier cycle (see the module doc).
async fn resolve_in_doubt(
    daemon: &App,
    mailer: &Mailer,
    partner: &str,
) -> anyhow::Result<Option<String>> {
    let spool = &daemon.spool;
    let Some(last) = spool.last_job_run(&job_name(partner)).await? else {
        return Ok(None);
    };
    if last.outcome.as_deref() != Some("sending") {
        return Ok(None);
    }
    let record: SendingRecord = match last
        .detail
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
    {
        Some(r) => r,
        None => {
            spool
                .finish_job_run(last.id, "unreadable", last.detail.as_deref())
                .await?;
            return Ok(Some("unreadable record: rows left pending".into()));
        }
    };
    // Only rows still pending can be marked: a crash after the mark but
    // before the run was finished leaves nothing to do.
    let pending: std::collections::HashSet<i64> = spool
        .pending_rejects(partner)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    let still: Vec<i64> = record
        .ids
        .iter()
        .copied()
        .filter(|id| pending.contains(id))
        .collect();
    let pending_flows: std::collections::HashSet<i64> = spool
        .pending_failed_flows(partner)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    let still_flows: Vec<i64> = record
        .flows
        .iter()
        .copied()
        .filter(|id| pending_flows.contains(id))
        .collect();
    let detail = serde_json::to_string(&record)?;
    if still.is_empty() && still_flows.is_empty() {
        spool.finish_job_run(last.id, "sent", Some(&detail)).await?;
        return Ok(Some("already marked".into()));
    }
    let record = SendingRecord {
        ids: still,
        flows: still_flows,
        ..record
    };
    match mailer.was_written(&record.message_id) {
        Some(false) => {
            spool
                .finish_job_run(last.id, "not-sent", Some(&detail))
                .await?;
            info!(partner = %partner, message_id = %record.message_id, "an interrupted digest was not written: its rejects go out again");
            Ok(Some("not sent: rows left pending".into()))
        }
        Some(true) => {
            let n = mark(daemon, partner, &record).await?;
            spool.finish_job_run(last.id, "sent", Some(&detail)).await?;
            info!(partner = %partner, message_id = %record.message_id, marked = n, "an interrupted digest had been written: its rejects are marked notified");
            Ok(Some(format!("written: {n} marked")))
        }
        None => {
            let n = mark(daemon, partner, &record).await?;
            spool
                .finish_job_run(last.id, "sent-assumed", Some(&detail))
                .await?;
            warn!(partner = %partner, message_id = %record.message_id, marked = n, "a digest was interrupted between SMTP send and mark: assumed sent (never sent twice); check the relay log for this Message-ID");
            Ok(Some(format!("assumed sent: {n} marked")))
        }
    }
}

/// Subject line: `quai: 12 rejected invoices for acme (2026-11-28)`;
/// with refused flows `quai: 12 rejected invoices and 1 refused flow for
/// acme (...)`, or `quai: 1 refused flow for acme (...)` alone.
pub fn subject(partner: &str, count: usize, date: chrono::NaiveDate) -> String {
    subject_with_flows(partner, count, 0, date, Language::En)
}

fn counted(n: usize, (one, many): (&str, &str)) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// [`subject`] of a digest that also lists `flows` refused flows, in the
/// partner's language.
pub fn subject_with_flows(
    partner: &str,
    count: usize,
    flows: usize,
    date: chrono::NaiveDate,
    lang: Language,
) -> String {
    let w = lang.digest();
    let invoices = counted(count, w.rejected_invoices);
    let what = match (count, flows) {
        (_, 0) => invoices,
        (0, f) => counted(f, w.refused_flows),
        (_, f) => format!("{invoices} {} {}", w.and, counted(f, w.refused_flows)),
    };
    format!(
        "{} {what} {} {partner} ({date})",
        w.subject_colon, w.subject_for
    )
}

/// `pending` with every reason and refusal message in `lang`
/// ([`crate::partner_text`]).
pub fn localized(pending: &Pending, lang: Language) -> Pending {
    let mut out = Pending {
        rejects: pending.rejects.clone(),
        flows: pending.flows.clone(),
    };
    for r in &mut out.rejects {
        for x in &mut r.reasons {
            x.message = crate::partner_text::reason_message(lang, &x.rule, &x.message).into_owned();
        }
    }
    for f in &mut out.flows {
        f.message = crate::partner_text::refusal_message(lang, &f.code, &f.message).into_owned();
    }
    out
}

/// The rules and messages of a reject: fatal reasons (all reasons when none
/// is fatal).
fn fatal_reasons(r: &RejectRow) -> Vec<&quai_spool::Reason> {
    let fatal: Vec<_> = r.reasons.iter().filter(|x| is_fatal(x)).collect();
    if fatal.is_empty() {
        r.reasons.iter().collect()
    } else {
        fatal
    }
}

fn amount(r: &RejectRow) -> String {
    r.total_with_vat.map(|d| d.to_string()).unwrap_or_default()
}

/// Header of the CSV attachment.
pub const CSV_HEADER: &str =
    "flow,file,document,invoice_number,issue_date,amount,currency,rules,messages";

/// The CSV attachment: one row per reject, then one per refused flow (its
/// `document`, `invoice_number`... empty, `rules` its IRR_* code), CRLF line
/// ends. `rules` are space-separated rule ids; `messages` are `RULE: message`
/// joined by ` | `.
pub fn csv(pending: &Pending) -> String {
    let rows = &pending.rejects;
    let mut out = String::with_capacity(128 * (rows.len() + pending.flows.len() + 1));
    out.push_str(CSV_HEADER);
    out.push_str("\r\n");
    for r in rows {
        let reasons = fatal_reasons(r);
        let rules = reasons
            .iter()
            .map(|x| x.rule.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let messages = reasons
            .iter()
            .map(|x| format!("{}: {}", x.rule, x.message))
            .collect::<Vec<_>>()
            .join(" | ");
        let fields = [
            r.flow_id.to_string(),
            csv_field(&r.original_name, true),
            csv_field(&r.entry, true),
            csv_field(r.number.as_deref().unwrap_or(""), true),
            r.issue_date.map(|d| d.to_string()).unwrap_or_default(),
            amount(r),
            csv_field(r.currency.as_deref().unwrap_or(""), true),
            csv_field(&rules, true),
            csv_field(&messages, true),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    for f in &pending.flows {
        let fields = [
            f.flow_id.to_string(),
            csv_field(&f.original_name, true),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            csv_field(&f.code, true),
            csv_field(&format!("{}: {}", f.code, f.message), true),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

/// Build the digest mail of a partner.
pub fn compose(
    partner: &str,
    pending: &Pending,
    date: chrono::NaiveDate,
    to: Vec<String>,
    message_id: String,
    lang: Language,
) -> OutgoingMail {
    let rows = &pending.rejects;
    let n = rows.len();
    let w = lang.digest();
    let subject = subject_with_flows(partner, n, pending.flows.len(), date, lang);
    let mut text = format!("{}\n\n", w.hello);
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title></head><body><p>{}</p>",
        lang.as_str(),
        html_escape(&subject),
        w.hello,
    );
    if n > 0 {
        rejects_part(w, partner, rows, &mut text, &mut html);
    }
    if !pending.flows.is_empty() {
        flows_part(w, partner, &pending.flows, &mut text, &mut html);
    }
    let _ = writeln!(text, "-- \nquai");
    html.push_str("<p>-- <br>quai</p></body></html>");
    OutgoingMail {
        to,
        subject,
        text,
        html,
        attachments: vec![MailAttachment {
            file_name: format!("rejected-{partner}-{date}.csv"),
            content_type: "text/csv; charset=utf-8".into(),
            bytes: csv(pending).into_bytes(),
        }],
        message_id,
    }
}

/// The rejected invoices' paragraph and list (at most [`BODY_ROWS`]).
fn head_row(cells: &[&str]) -> String {
    cells.iter().map(|c| format!("<th>{c}</th>")).collect()
}

fn rejects_part(
    w: &DigestWords,
    partner: &str,
    rows: &[RejectRow],
    text: &mut String,
    html: &mut String,
) {
    let n = rows.len();
    let (before, after) = w.rejects_intro;
    let _ = writeln!(text, "{n} {before} {partner} {after}\n{}\n", w.rejects_then);
    let _ = write!(
        html,
        "<p>{n} {before} <b>{}</b> {after} {}</p>\
         <table border=\"1\" cellpadding=\"4\" cellspacing=\"0\"><thead><tr>{}</tr></thead><tbody>",
        html_escape(partner),
        w.rejects_then,
        head_row(&w.rejects_head)
    );
    for r in rows.iter().take(BODY_ROWS) {
        let reasons = fatal_reasons(r);
        let number = r.number.as_deref().unwrap_or(w.no_number);
        let date = r.issue_date.map(|d| d.to_string()).unwrap_or_default();
        let amt = format!("{} {}", amount(r), r.currency.as_deref().unwrap_or(""))
            .trim()
            .to_string();
        let mut line = format!(
            "- {} {} {} — {} {number}",
            w.flow, r.flow_id, r.entry, w.invoice
        );
        if !date.is_empty() {
            line.push_str(&format!(" {} {date}", w.of_date));
        }
        if !amt.is_empty() {
            line.push_str(&format!(", {amt}"));
        }
        let _ = writeln!(text, "{line}");
        for x in &reasons {
            let _ = writeln!(text, "    {} ({}): {}", x.rule, x.term, x.message);
        }
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.flow_id,
            html_escape(&r.entry),
            html_escape(number),
            html_escape(&date),
            html_escape(&amt),
            html_escape(
                &reasons
                    .iter()
                    .map(|x| x.rule.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            reasons
                .iter()
                .map(|x| html_escape(&x.message))
                .collect::<Vec<_>>()
                .join("<br>")
        );
    }
    if n > BODY_ROWS {
        let (before, after) = w.more;
        let _ = writeln!(text, "\n{before} {} {after}", n - BODY_ROWS);
        let _ = write!(
            html,
            "<tr><td colspan=\"7\">{before} {} {after}</td></tr>",
            n - BODY_ROWS
        );
    }
    text.push('\n');
    html.push_str("</tbody></table>");
}

/// The refused flows' paragraph and list (at most [`BODY_ROWS`]).
fn flows_part(
    w: &DigestWords,
    partner: &str,
    flows: &[FailedFlowRow],
    text: &mut String,
    html: &mut String,
) {
    let n = flows.len();
    let (before, after) = w.flows_intro;
    let _ = writeln!(text, "{n} {before} {partner} {after}\n{}\n", w.flows_then);
    let _ = write!(
        html,
        "<p>{n} {before} <b>{}</b> {after} {}</p>\
         <table border=\"1\" cellpadding=\"4\" cellspacing=\"0\"><thead><tr>{}</tr></thead><tbody>",
        html_escape(partner),
        w.flows_then,
        head_row(&w.flows_head)
    );
    for f in flows.iter().take(BODY_ROWS) {
        let received = f.received_at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
        let _ = writeln!(
            text,
            "- {} {} {}, {} {received}\n    {}: {}",
            w.flow, f.flow_id, f.original_name, w.received, f.code, f.message
        );
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{received}</td><td>{}</td><td>{}</td></tr>",
            f.flow_id,
            html_escape(&f.original_name),
            html_escape(&f.code),
            html_escape(&f.message),
        );
    }
    if n > BODY_ROWS {
        let (before, after) = w.more;
        let _ = writeln!(text, "\n{before} {} {after}", n - BODY_ROWS);
        let _ = write!(
            html,
            "<tr><td colspan=\"5\">{before} {} {after}</td></tr>",
            n - BODY_ROWS
        );
    }
    text.push('\n');
    html.push_str("</tbody></table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("plain", true), "plain");
        assert_eq!(csv_field("a,b", true), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\"", true), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines", true), "\"two\nlines\"");
        assert_eq!(csv_field("=SUM(A1)", true), "'=SUM(A1)");
        assert_eq!(csv_field("-12.50", false), "-12.50");
    }

    #[test]
    fn subjects() {
        let d = chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        assert_eq!(
            subject("acme", 12, d),
            "quai: 12 rejected invoices for acme (2026-11-28)"
        );
        assert_eq!(
            subject("acme", 1, d),
            "quai: 1 rejected invoice for acme (2026-11-28)"
        );
    }
}
