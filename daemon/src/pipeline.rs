//! Processing workers: claim a flow, read it, store its invoices, finish it.
//!
//! Reading (unpack, detect, map, validate) is synchronous CPU work and runs
//! on the blocking pool; it streams documents through a bounded channel to
//! the async side, which writes them to the spool in batches (one transaction
//! per batch) and keeps the flow's lease alive. The flow is finished — its
//! state, the removal of rows left by an earlier attempt and its pending
//! acknowledgements — in one transaction, so a crash at any point either
//! leaves the flow claimable again or fully processed. With `[antivirus]`,
//! the flow is scanned first (`crate::antivirus`): an infected flow is
//! refused before any of it is read, and one clamd cannot judge is held.
//! Each batch is routed before it is stored (`crate::exchange`): an
//! accepted invoice no partner receives is rejected `REJ_ADR`, the others'
//! deliveries are held in the spool per batch (never gathered in memory)
//! and released by the transaction that finishes the flow.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quai_mappings::flow::{self, Document, DocumentResult, FlowEnd, FlowLimits};
use quai_mappings::model::{Invoice, Severity, Violation};
use quai_spool::{ClaimedFlow, FlowOutcome, Lease, NewInvoice, Reason, Verdict};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::app::App;
use crate::config::Limits;
use crate::reasons::severity_name;

/// Claim and process flows until `stop`.
pub async fn worker(daemon: Arc<App>, n: usize, stop: CancellationToken) {
    let lease = Lease {
        duration: Duration::from_secs(daemon.config().lease_seconds),
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        if stop.is_cancelled() {
            break;
        }
        let notified = daemon.work.notified();
        match daemon.spool.claim_flow(lease).await {
            Ok(Some(claimed)) => {
                backoff = Duration::from_millis(100);
                let id = claimed.id;
                if let Err(e) = process_claimed(&daemon, claimed, lease, &stop).await {
                    warn!(worker = n, flow_id = id, error = %e, "flow processing interrupted; it will be taken again");
                    // A persistent local fault must not spin.
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
            Ok(None) => {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = notified => {}
                    // Expired leases of other instances are found by polling.
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            Err(e) => {
                error!(worker = n, error = %e, "cannot claim work from the spool; retrying");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Mapping limits for a partner's flows.
pub fn flow_limits(limits: &Limits) -> FlowLimits {
    FlowLimits {
        max_invoices: limits.max_invoices_per_flow,
        max_unpacked_bytes: limits.max_unpacked_bytes,
        max_ratio: limits.max_unpacked_ratio,
        max_entries: limits.max_archive_entries,
        ..FlowLimits::default()
    }
}

/// Process one claimed flow to its end (or until `stop`).
pub async fn process_claimed(
    daemon: &Arc<App>,
    claimed: ClaimedFlow,
    lease: Lease,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let config = &daemon.config();
    let spool = &daemon.spool;
    let limits = config.limits_for(&claimed.partner).clone();
    let layers = config.layers_for(&claimed.partner);
    info!(partner = %claimed.partner, flow_id = claimed.id, stage = "processing", attempt = claimed.attempts, file = %claimed.original_name, "processing flow");

    let path = quai_connectors::landing::stored_path(&config.store, &claimed.sha256);
    let mut duplicates = 0u64;
    let mut unroutable = 0u64;
    let mut routed = 0u64;
    let end = if claimed.size as u64 > limits.max_flow_bytes {
        FlowEnd::Rejected(flow::FlowReject {
            code: "IRR_TAILLE_F",
            message: format!(
                "the flow is {} bytes, more than the limit of {} bytes",
                claimed.size, limits.max_flow_bytes
            ),
        })
    } else if !path.exists() {
        anyhow::bail!(
            "stored bytes of flow {} are missing at {}",
            claimed.id,
            path.display()
        );
    } else if let Some(reject) = antivirus_gate(daemon, &claimed, &path, &limits, stop).await? {
        FlowEnd::Rejected(reject)
    } else if crate::statuses::is_status_flow(&path) {
        // A partner's CDAR: lifecycle statuses, not invoices.
        let max = limits.max_invoices_per_flow as usize;
        crate::statuses::process(daemon, &claimed, path, max).await?;
        crate::metrics::flow_processed(&claimed.partner, started.elapsed().as_secs_f64());
        return Ok(());
    } else {
        // Two threads per flow, so one large flow keeps two cores busy: the
        // reader unpacks and maps, the converter validates each document and
        // turns it into a spool row (canonical JSON included). Each hands
        // whole batches on, two in flight at most, so reading goes on while
        // a batch is validated and another one committed.
        let batch_size = config.batch_size;
        let (doc_tx, doc_rx) = std::sync::mpsc::sync_channel::<Vec<flow::Document>>(2);
        // Converted documents go back to the reader to be freed there: what
        // one thread allocated is freed by the same one, not by the
        // converter in the reader's malloc arena. The reader frees them each
        // time it hands a batch on, so no more come back than the few
        // batches in flight.
        let (spent_tx, spent_rx) = std::sync::mpsc::channel::<Vec<flow::Document>>();
        // Each row with its routing key (the buyer's address, issue 15).
        let (tx, mut rx) = mpsc::channel::<Vec<(NewInvoice, Option<String>)>>(2);
        let name = claimed.original_name.clone();
        let flow_limits = flow_limits(&limits);
        let reader = tokio::task::spawn_blocking(move || {
            let mut batch: Vec<flow::Document> = Vec::with_capacity(batch_size);
            let end = flow::process_unvalidated(&path, &name, &flow_limits, &mut |doc| {
                batch.push(doc);
                if batch.len() >= batch_size {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                    doc_tx.send(full).map_err(|_| flow::Stop)?;
                    while let Ok(spent) = spent_rx.try_recv() {
                        drop(spent);
                    }
                }
                Ok(())
            });
            if !batch.is_empty() && matches!(end, FlowEnd::Done(_)) && doc_tx.send(batch).is_err() {
                return FlowEnd::Stopped;
            }
            end
        });
        // Returns how many documents it found rejected.
        let converter = tokio::task::spawn_blocking(move || {
            let mut rejected = 0u64;
            for mut docs in doc_rx {
                let rows: Vec<(NewInvoice, Option<String>)> = docs
                    .iter_mut()
                    .map(|doc| {
                        doc.validate_with(&layers);
                        if doc.is_rejected() {
                            rejected += 1;
                        }
                        let key = match &doc.result {
                            DocumentResult::Mapped { invoice, .. } => {
                                crate::directory::routing_key(invoice)
                            }
                            DocumentResult::Unreadable { .. } => None,
                        };
                        (to_new_invoice(doc), key)
                    })
                    .collect();
                // The reader may be done already: then they are freed here.
                let _ = spent_tx.send(docs);
                if tx.blocking_send(rows).is_err() {
                    break;
                }
            }
            rejected
        });
        let mut last_renew = Instant::now();
        let renew_every = lease.duration / 3;
        let mut interrupted = false;
        while let Some(batch) = rx.recv().await {
            let (mut batch, keys): (Vec<NewInvoice>, Vec<Option<String>>) =
                batch.into_iter().unzip();
            // Routed before they are stored: no recipient is a REJ_ADR reject.
            let (recipients, no_route) =
                crate::exchange::route_batch(daemon, &mut batch, &keys).await?;
            unroutable += no_route;
            let stored = spool.store_invoices(claimed.id, &batch).await?;
            // Accepted invoices the spool turned into REJ_UNI duplicates.
            duplicates += stored.iter().filter(|s| s.duplicate).count() as u64;
            // Held in the spool, not in memory, until the flow is finished.
            let owed =
                crate::exchange::owed_by_batch(config, claimed.id, &batch, &recipients, &stored);
            if crate::routing::routes_invoices(config) {
                let docs: Vec<i64> = batch.iter().map(|r| r.doc_index).collect();
                spool
                    .hold_invoice_deliveries(claimed.id, &docs, &owed)
                    .await?;
                routed += owed.len() as u64;
            }
            if last_renew.elapsed() >= renew_every {
                spool.renew_lease(claimed.id, lease).await?;
                last_renew = Instant::now();
            }
            if stop.is_cancelled() {
                interrupted = true;
                break;
            }
        }
        drop(rx);
        let rejected = converter.await?;
        let mut end = reader.await?;
        if let FlowEnd::Done(summary) = &mut end {
            // Rejected by the rules, or as duplicates by the spool.
            summary.rejected = rejected + duplicates + unroutable;
        }
        if let FlowEnd::Failed(why) = &end {
            spool.abandon_flow(claimed.id, why).await?;
            anyhow::bail!(
                "quai could not read its copy of the flow: {why}; it will be tried again"
            );
        }
        if interrupted || end == FlowEnd::Stopped {
            // Give the flow back now rather than after its lease expires.
            spool
                .abandon_flow(claimed.id, "instance shutting down")
                .await?;
            anyhow::bail!("stopped while processing; flow given back to the queue");
        }
        end
    };

    let edifact = {
        let path = quai_connectors::landing::stored_path(&daemon.config().store, &claimed.sha256);
        tokio::task::spawn_blocking(move || crate::stored::is_edifact(&path)).await?
    };
    let acks = crate::routing::owed_by_finished(
        &daemon.config(),
        &claimed.partner,
        claimed.origin,
        &claimed.original_name,
        claimed.id,
        &end,
        edifact,
    );
    match end {
        FlowEnd::Done(summary) => {
            crate::metrics::invoices_processed(
                &claimed.partner,
                summary.documents - summary.rejected,
                summary.rejected,
            );
            // The routed invoices' deliveries are owed by the same commit.
            spool
                .finish_flow_routed(
                    claimed.id,
                    &FlowOutcome::Processed,
                    summary.documents as i64,
                    &acks,
                    &[],
                )
                .await?;
            crate::metrics::invoices_routed(routed);
            info!(
                partner = %claimed.partner, flow_id = claimed.id, stage = "processed",
                documents = summary.documents, rejected = summary.rejected,
                duplicates, unroutable, routed, elapsed_ms = started.elapsed().as_millis() as u64, "flow processed"
            );
        }
        FlowEnd::Rejected(reject) => {
            let outcome = FlowOutcome::Failed {
                code: reject.code.to_string(),
                message: reject.message.clone(),
            };
            spool
                .finish_flow_owing(claimed.id, &outcome, 0, &acks)
                .await?;
            warn!(partner = %claimed.partner, flow_id = claimed.id, stage = "failed", code = reject.code, reason = %reject.message, "flow failed: refused whole");
        }
        FlowEnd::Stopped | FlowEnd::Failed(_) => unreachable!("handled above"),
    }
    crate::metrics::flow_processed(&claimed.partner, started.elapsed().as_secs_f64());
    daemon.acks.notify_one();
    Ok(())
}

/// The antivirus stage (`crate::antivirus`), when `[antivirus]` is set:
/// `None` when the flow is clean, the refusal when it is infected. When
/// clamd gives no verdict the flow is held: given back to the queue
/// unanswered, this worker waits `retry_seconds`, and an error is returned.
async fn antivirus_gate(
    daemon: &Arc<App>,
    claimed: &ClaimedFlow,
    path: &std::path::Path,
    limits: &Limits,
    stop: &CancellationToken,
) -> anyhow::Result<Option<flow::FlowReject>> {
    let config = daemon.config();
    let Some(av) = &config.antivirus else {
        return Ok(None);
    };
    let clamd = crate::antivirus::clamd(av)?;
    let (path, name, flow_limits) = (
        path.to_path_buf(),
        claimed.original_name.clone(),
        flow_limits(limits),
    );
    let started = Instant::now();
    let outcome = tokio::task::spawn_blocking(move || {
        crate::antivirus::scan_flow(&clamd, &path, &name, &flow_limits)
    })
    .await?;
    match outcome {
        crate::antivirus::Outcome::Clean => {
            crate::metrics::antivirus_scan("clean");
            debug!(partner = %claimed.partner, flow_id = claimed.id, stage = "antivirus", elapsed_ms = started.elapsed().as_millis() as u64, "flow scanned: clean");
            Ok(None)
        }
        crate::antivirus::Outcome::Infected { signature, object } => {
            crate::metrics::antivirus_scan("infected");
            warn!(partner = %claimed.partner, flow_id = claimed.id, stage = "antivirus", signature = %signature, object = %object, "malware found: flow refused");
            Ok(Some(flow::FlowReject {
                code: crate::antivirus::IRR_ANTIVIRUS,
                message: format!("malware found by the antivirus: {signature} in {object}"),
            }))
        }
        crate::antivirus::Outcome::Unavailable(why) => {
            crate::metrics::antivirus_scan("unavailable");
            error!(partner = %claimed.partner, flow_id = claimed.id, stage = "antivirus", error = %why, retry_seconds = av.retry_seconds, "antivirus unavailable: flow held, not processed; it will be scanned again");
            daemon
                .spool
                .abandon_flow(claimed.id, &format!("antivirus unavailable: {why}"))
                .await?;
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::time::sleep(Duration::from_secs(av.retry_seconds)) => {}
            }
            anyhow::bail!("flow held: the antivirus gave no verdict ({why})")
        }
    }
}

/// The seller key used for duplicate detection.
pub fn seller_key(inv: &Invoice) -> Option<String> {
    let s = &inv.seller;
    s.vat_id
        .clone()
        .or_else(|| s.legal_registration_id.as_ref().map(|i| i.value.clone()))
        .or_else(|| s.identifiers.first().map(|i| i.value.clone()))
        .or_else(|| s.name.clone())
        .map(|k| k.trim().to_ascii_uppercase())
}

fn reason_of(v: &Violation) -> Reason {
    Reason {
        rule: v.rule.clone(),
        term: v.term.clone(),
        severity: severity_name(v.severity).to_string(),
        message: v.message.clone(),
    }
}

/// Largest serialisation buffer a converter thread keeps between invoices
/// (a larger invoice's buffer is given back once it is copied out).
const KEPT_JSON_BUFFER: usize = 1 << 20;

/// The canonical JSON of an invoice, exactly as `serde_json::to_string`
/// writes it. Why not that: its `String` grows by doubling from empty, six
/// or seven reallocations and 12 KB allocated for a 4 KB invoice (measured
/// with `examples/keep_cost.rs`); here it is written into a buffer kept per
/// thread, then copied out once at its exact size.
fn canonical_json(invoice: &Invoice) -> serde_json::Result<String> {
    use std::cell::RefCell;
    thread_local! {
        static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    BUFFER.with_borrow_mut(|buf| {
        buf.clear();
        let written = serde_json::to_writer(&mut *buf, invoice);
        let json = written.map(|()| {
            // serde_json writes UTF-8 only: the conversion cannot fail.
            String::from_utf8_lossy(buf).into_owned()
        });
        if buf.capacity() > KEPT_JSON_BUFFER {
            *buf = Vec::new();
        }
        json
    })
}

/// Turn a mapped document into the spool's row.
pub fn to_new_invoice(doc: &Document) -> NewInvoice {
    let verdict = if doc.is_rejected() {
        Verdict::Rejected
    } else {
        Verdict::Accepted
    };
    match &doc.result {
        DocumentResult::Mapped {
            invoice,
            violations,
        } => NewInvoice {
            doc_index: doc.index as i64,
            entry: doc.entry.clone(),
            syntax: doc.syntax.map(|s| s.as_str().to_string()),
            profile: invoice.profile.map(|p| p.as_str().to_string()),
            seller_id: seller_key(invoice),
            number: invoice.number.clone(),
            issue_date: invoice.issue_date,
            type_code: invoice.type_code.clone(),
            currency: invoice.currency.clone(),
            total_without_vat: invoice.totals.total_without_vat,
            total_with_vat: invoice.totals.total_with_vat,
            amount_due: invoice.totals.amount_due,
            verdict,
            reasons: violations.iter().map(reason_of).collect(),
            canonical_json: match canonical_json(invoice) {
                Ok(j) => Some(j),
                Err(e) => {
                    debug!(error = %e, "canonical invoice not serializable");
                    None
                }
            },
        },
        DocumentResult::Unreadable { rule, message } => NewInvoice {
            doc_index: doc.index as i64,
            entry: doc.entry.clone(),
            syntax: doc.syntax.map(|s| s.as_str().to_string()),
            profile: None,
            seller_id: None,
            number: None,
            issue_date: None,
            type_code: None,
            currency: None,
            total_without_vat: None,
            total_with_vat: None,
            amount_due: None,
            verdict: Verdict::Rejected,
            reasons: vec![Reason {
                rule: rule.clone(),
                term: "BG-0".to_string(),
                severity: severity_name(Severity::Fatal).to_string(),
                message: message.clone(),
            }],
            canonical_json: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every XML document of the corpus fixtures (UBL, CII, Factur-X).
    fn corpus() -> Vec<std::path::PathBuf> {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("xml")) {
                    out.push(p);
                }
            }
        }
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings/tests/fixtures");
        let mut out = Vec::new();
        for family in ["ubl", "cii", "facturx"] {
            walk(&root.join(family), &mut out);
        }
        out.sort();
        out
    }

    /// The row's canonical JSON is byte for byte what `serde_json::to_string`
    /// gave before the per-thread buffer, for every invoice of the corpus,
    /// read one after the other on one thread (so the buffer is reused from
    /// larger to smaller invoices and back).
    #[test]
    fn canonical_json_is_serde_jsons_over_the_corpus() {
        let files = corpus();
        assert!(files.len() > 200, "corpus not found: {} files", files.len());
        let mut mapped = 0;
        for path in &files {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            flow::process(path, &name, &FlowLimits::default(), &mut |doc| {
                if let DocumentResult::Mapped { invoice, .. } = &doc.result {
                    let today = serde_json::to_string(invoice).unwrap();
                    assert_eq!(
                        canonical_json(invoice).unwrap(),
                        today,
                        "{}",
                        path.display()
                    );
                    let row = to_new_invoice(&doc);
                    assert_eq!(row.canonical_json.as_deref(), Some(today.as_str()));
                    mapped += 1;
                }
                Ok(())
            });
        }
        assert!(mapped > 150, "only {mapped} mapped invoices");
    }
}
