//! Acknowledgements: what a finished flow is owed, and their delivery.
//!
//! Per flow: the integration report (JSON + XML), the CDAR lifecycle
//! statuses of its invoices (one CDV MULTI file per flow, see
//! docs/acknowledgements.md) when it held documents, and an EDIFACT CONTRL
//! when the flow is an EDIFACT interchange. Each goes back the way the flow
//! came: `dropzone` → the partner's local outbox, `sftp` → the partner's SFTP
//! outbox (`[partner.sftp] outbox`). Contents are rendered at delivery time
//! from the spool (and, for CONTRL, the stored raw interchange) with
//! timestamps taken from the flow, so rendering again gives the same bytes.
//!
//! The spool holds one pending acknowledgement row per report owed (created
//! in the same transaction that finished the flow). The deliverer renders
//! each from spool data, writes it to the partner's outbox under a temporary
//! name, renames it into place, and only then marks it delivered. A crash
//! between the write and the mark rewrites the same file under the same name:
//! a partner never sees a half-written or a second, different report.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use quai_mappings::ack::report::{
    FlowRejection, IntegrationReport, ReportDocument, ReportFlow, ReportReason,
};
use quai_mappings::ack::{cdar, contrl};
use quai_mappings::edifact;
use quai_mappings::flow::FlowEnd;
use quai_spool::{AckKind, AckRow, ClaimedFlow, FlowState, Verdict};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::Daemon;

/// The acknowledgements a finished flow is owed, as (kind, destination, file
/// name) rows created in the same transaction that finishes the flow: the
/// integration report always, CDAR statuses when the flow held documents.
/// (A CONTRL is added when the report is delivered, once the stored bytes
/// show an EDIFACT interchange: see [`ensure_contrl`].)
pub fn owed(
    config: &crate::config::Config,
    claimed: &ClaimedFlow,
    end: &FlowEnd,
) -> Vec<(AckKind, String, String)> {
    let report_name = crate::pipeline::report_file_name(&claimed.original_name, claimed.id);
    let destination = if claimed.origin == quai_spool::Origin::As2
        && crate::as2_out::sends_over_as2(config, &claimed.partner)
    {
        "as2".to_string()
    } else {
        crate::pipeline::destination_of(claimed.origin).to_string()
    };
    let mut acks = vec![(
        AckKind::IntegrationReport,
        destination.clone(),
        report_name.clone(),
    )];
    if let FlowEnd::Done(summary) = end {
        if summary.documents > 0 {
            acks.push((
                AckKind::Cdar,
                destination,
                sibling_name(&report_name, "cdar.xml"),
            ));
        }
    }
    acks
}

/// `<name>.<id>.report` → `<name>.<id>.<ext>`.
pub fn sibling_name(report_name: &str, ext: &str) -> String {
    let stem = report_name.strip_suffix(".report").unwrap_or(report_name);
    format!("{stem}.{ext}")
}

/// Deliver pending acknowledgements until `stop`.
pub async fn deliverer(daemon: Arc<Daemon>, stop: CancellationToken) {
    loop {
        let notified = daemon.acks.notified();
        let delivered = deliver_pending(&daemon).await;
        if stop.is_cancelled() {
            break;
        }
        if delivered == 0 {
            tokio::select! {
                _ = stop.cancelled() => {
                    // One last pass so reports of flows finished during
                    // shutdown are not left for the next start.
                    deliver_pending(&daemon).await;
                    break;
                }
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }
}

/// One pass over pending acknowledgements; returns how many were delivered.
pub async fn deliver_pending(daemon: &Daemon) -> usize {
    let pending = match daemon.spool.pending_acks(200).await {
        Ok(p) => p,
        Err(e) => {
            warn!(error = %e, "cannot list pending acknowledgements");
            return 0;
        }
    };
    let mut delivered = 0;
    for ack in pending {
        match deliver(daemon, &ack).await {
            Ok(()) => {
                if let Err(e) = daemon.spool.ack_delivered(ack.id).await {
                    warn!(ack = ack.id, error = %e, "acknowledgement written but not marked delivered");
                } else {
                    delivered += 1;
                    info!(partner = %ack.partner, flow_id = ack.flow_id, stage = "acknowledged", kind = ack.kind.as_str(), file = %ack.file_name, "acknowledgement delivered");
                }
            }
            Err(e) => {
                warn!(partner = %ack.partner, flow_id = ack.flow_id, ack = ack.id, error = %e, "acknowledgement delivery failed; will retry");
                let _ = daemon.spool.ack_failed(ack.id, &e.to_string()).await;
            }
        }
    }
    delivered
}

/// The files of one acknowledgement: (name, bytes).
pub async fn render(daemon: &Daemon, ack: &AckRow) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    match ack.kind {
        AckKind::IntegrationReport => {
            ensure_contrl(daemon, ack).await?;
            let report = build_report(daemon, ack.flow_id).await?;
            Ok(vec![
                (format!("{}.xml", ack.file_name), report.to_xml()),
                (format!("{}.json", ack.file_name), report.to_json()),
            ])
        }
        AckKind::Cdar => {
            let m = build_cdar(daemon, ack.flow_id).await?;
            let per_invoice = daemon
                .config
                .partner(&ack.partner)
                .map(|p| p.cdar_per_invoice)
                .unwrap_or(false);
            if !per_invoice {
                return Ok(vec![(ack.file_name.clone(), cdar::to_xml(&m).into_bytes())]);
            }
            // The partner asked for one file per invoice:
            // `<name>.<flow>.cdar.<n>.xml`, each a CDAR message of its own.
            let stem = ack.file_name.strip_suffix(".xml").unwrap_or(&ack.file_name);
            Ok(m.statuses
                .iter()
                .enumerate()
                .map(|(n, status)| {
                    let one = cdar::CdarMessage {
                        id: format!("{}-{}", m.id, n + 1),
                        statuses: vec![status.clone()],
                        ..m.clone()
                    };
                    (
                        format!("{stem}.{}.xml", n + 1),
                        cdar::to_xml(&one).into_bytes(),
                    )
                })
                .collect())
        }
        AckKind::Contrl => {
            let c = build_contrl(daemon, ack.flow_id).await?;
            Ok(vec![(
                ack.file_name.clone(),
                contrl::to_edifact(&c).into_bytes(),
            )])
        }
        AckKind::Mdn => anyhow::bail!("MDNs are sent by the AS2 endpoint, not from the outbox"),
    }
}

async fn deliver(daemon: &Daemon, ack: &AckRow) -> anyhow::Result<()> {
    if ack.kind == AckKind::Mdn {
        return deliver_async_mdn(ack).await;
    }
    let files = render(daemon, ack).await?;
    match ack.destination.as_str() {
        "sftp" => {
            let partner = daemon.config.partner(&ack.partner).ok_or_else(|| {
                anyhow::anyhow!("partner {} is no longer configured", ack.partner)
            })?;
            let src = crate::jobs::sftp_poll::source_for(&daemon.config, partner)?;
            let tmp_root = daemon.config.home.join("tmp");
            std::fs::create_dir_all(&tmp_root)?;
            let tmp = tempfile_dir(&tmp_root)?;
            for (name, bytes) in files {
                let local = tmp.join(&name);
                std::fs::write(&local, &bytes)?;
                let r = src.deliver(&local, &name).await;
                let _ = std::fs::remove_file(&local);
                r?;
            }
            let _ = std::fs::remove_dir(&tmp);
            Ok(())
        }
        "as2" => {
            let tmp_root = daemon.config.home.join("tmp");
            std::fs::create_dir_all(&tmp_root)?;
            let tmp = tempfile_dir(&tmp_root)?;
            let mut staged = Vec::with_capacity(files.len());
            for (name, bytes) in files {
                let local = tmp.join(&name);
                std::fs::write(&local, &bytes)?;
                staged.push((name, local));
            }
            let r = crate::as2_out::deliver(daemon, ack, &staged).await;
            let _ = std::fs::remove_dir_all(&tmp);
            r
        }
        _ => {
            let outbox = daemon.config.outbox_for(&ack.partner);
            tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                std::fs::create_dir_all(&outbox)?;
                for (name, bytes) in files {
                    write_atomically(&outbox, &name, &bytes)?;
                }
                Ok(())
            })
            .await??;
            Ok(())
        }
    }
}

/// Persist an asynchronous AS2 MDN and owe its delivery in the spool: the
/// AS2 endpoint hands it over right after its flow is registered, and the
/// deliverer POSTs it to the partner's Receipt-Delivery-Option URL, retrying
/// on each pass until it is taken (attempts and errors tracked like any
/// acknowledgement).
pub async fn queue_async_mdn(
    daemon: &Daemon,
    pending: quai_connectors::as2::PendingMdn,
) -> anyhow::Result<()> {
    let flow_id = pending
        .flow_id
        .ok_or_else(|| anyhow::anyhow!("asynchronous MDN without a registered flow"))?;
    let dir = daemon.config.home.join("as2-mdn").join("outbox");
    let digest = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        pending.original_message_id.hash(&mut h);
        h.finish()
    };
    let name = format!("{flow_id}-{digest:016x}.json");
    let bytes = serde_json::to_vec(&pending)?;
    let d = dir.clone();
    let n = name.clone();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        quai_connectors::landing::create_private_dir(&d)?;
        write_atomically(&d, &n, &bytes)
    })
    .await??;
    let path = dir.join(&name).to_string_lossy().into_owned();
    daemon
        .spool
        .add_acks(flow_id, &[(AckKind::Mdn, pending.url.clone(), path)])
        .await?;
    daemon.acks.notify_one();
    Ok(())
}

/// POST a queued asynchronous MDN (its file is the ack's `file_name`).
async fn deliver_async_mdn(ack: &AckRow) -> anyhow::Result<()> {
    let bytes = tokio::fs::read(&ack.file_name).await?;
    let pending: quai_connectors::as2::PendingMdn = serde_json::from_slice(&bytes)?;
    quai_connectors::as2::send_async_mdn(&pending).await?;
    Ok(())
}

/// A fresh private folder under `root` for staging uploads.
fn tempfile_dir(root: &Path) -> std::io::Result<std::path::PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = root.join(format!(
        "ack-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// True when the stored bytes start (after a BOM and blanks) like an
/// EDIFACT interchange (`UNA` or `UNB`).
pub fn looks_like_edifact(path: &Path) -> bool {
    let mut head = [0u8; 64];
    let n = match std::fs::File::open(path).and_then(|mut f| f.read(&mut head)) {
        Ok(n) => n,
        Err(_) => return false,
    };
    let mut b = &head[..n];
    if b.starts_with(&[0xEF, 0xBB, 0xBF]) {
        b = &b[3..];
    }
    let b: Vec<u8> = b
        .iter()
        .copied()
        .skip_while(|c| c.is_ascii_whitespace())
        .collect();
    b.starts_with(b"UNA") || b.starts_with(b"UNB")
}

/// When a finished flow is an EDIFACT interchange and owes no CONTRL yet,
/// add one (pending, same destination as its report).
pub async fn ensure_contrl(daemon: &Daemon, report: &AckRow) -> anyhow::Result<()> {
    let flow = daemon.spool.flow(report.flow_id).await?;
    if !matches!(flow.state, FlowState::Processed | FlowState::Failed) {
        return Ok(());
    }
    let path = quai_connectors::landing::stored_path(&daemon.config.store, &flow.sha256);
    if !tokio::task::spawn_blocking(move || looks_like_edifact(&path)).await? {
        return Ok(());
    }
    let acks = daemon.spool.acks_of_flow(flow.id).await?;
    if acks.iter().any(|a| a.kind == AckKind::Contrl) {
        return Ok(());
    }
    daemon
        .spool
        .add_acks(
            flow.id,
            &[(
                AckKind::Contrl,
                report.destination.clone(),
                sibling_name(&report.file_name, "contrl.edi"),
            )],
        )
        .await?;
    daemon.acks.notify_one();
    Ok(())
}

/// The CDAR statuses of a processed flow's invoices, from the spool.
pub async fn build_cdar(daemon: &Daemon, flow_id: i64) -> anyhow::Result<cdar::CdarMessage> {
    let flow = daemon.spool.flow(flow_id).await?;
    anyhow::ensure!(
        flow.state == FlowState::Processed,
        "flow {flow_id} is {}: no invoice statuses",
        flow.state.as_str()
    );
    let invoices = daemon.spool.invoices_of_flow(flow_id).await?;
    let statuses = invoices
        .into_iter()
        .map(|i| {
            let reasons = if i.verdict == Verdict::Rejected {
                let fatal: Vec<_> = i.reasons.iter().filter(|r| r.severity == "fatal").collect();
                let chosen = if fatal.is_empty() {
                    i.reasons.iter().collect()
                } else {
                    fatal
                };
                let mut v: Vec<cdar::CdarReason> = chosen
                    .into_iter()
                    .map(|r| cdar::CdarReason {
                        reason_code: cdar::reason_code_for(&r.rule).to_string(),
                        rule: r.rule.clone(),
                        term: r.term.clone(),
                        message: r.message.clone(),
                    })
                    .collect();
                if v.is_empty() {
                    v.push(cdar::CdarReason {
                        reason_code: "REJ_COH".into(),
                        rule: "REJECTED".into(),
                        term: String::new(),
                        message: "rejected".into(),
                    });
                }
                v
            } else {
                Vec::new()
            };
            cdar::CdarStatus {
                invoice_number: i.number.clone().unwrap_or_else(|| i.entry.clone()),
                type_code: i.type_code.clone().unwrap_or_else(|| "380".into()),
                received_at: flow.received_at,
                issue_date: i.issue_date,
                seller_id: i.seller_id.clone(),
                reasons,
            }
        })
        .collect();
    Ok(cdar::CdarMessage {
        id: format!("quai-{}-cdv", flow.id),
        name: format!("{}-CDV", flow.original_name),
        issued_at: flow.updated_at,
        recipient: cdar::CdarParty {
            global_id: None,
            name: Some(flow.partner.clone()),
            role: "SE".into(),
        },
        statuses,
    })
}

/// The CONTRL of an EDIFACT flow, from its stored bytes and the spool.
pub async fn build_contrl(daemon: &Daemon, flow_id: i64) -> anyhow::Result<contrl::Contrl> {
    let flow = daemon.spool.flow(flow_id).await?;
    let invoices = if flow.state == FlowState::Processed {
        daemon.spool.invoices_of_flow(flow_id).await?
    } else {
        Vec::new()
    };
    let path = quai_connectors::landing::stored_path(&daemon.config.store, &flow.sha256);
    let read = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let file = std::fs::File::open(&path)?;
        let mut ic = edifact::Interchange::new(std::io::BufReader::new(file));
        let mut messages = Vec::new();
        for item in ic.by_ref() {
            match item {
                Ok(m) => messages.push((m.reference, m.message_type, m.version, m.result.is_ok())),
                Err(_) => break,
            }
        }
        let count_wrong = ic
            .envelope_issues()
            .iter()
            .any(|i| i.kind == edifact::EnvelopeIssueKind::UnzCount);
        Ok((ic.header().cloned(), messages, count_wrong))
    })
    .await??;
    let (header, messages, count_wrong) = read;
    let original = header.ok_or_else(|| {
        anyhow::anyhow!("flow {flow_id}: no readable UNB segment, no CONTRL can be addressed")
    })?;
    let syntax_failed = |reference: &str| {
        invoices.iter().any(|i| {
            i.entry.ends_with(&format!("#{reference}"))
                && i.reasons.iter().any(|r| {
                    r.severity == "fatal" && (r.rule == "SYNTAX" || r.rule.starts_with("EDIFACT"))
                })
        })
    };
    let (interchange, acks) = if flow.state == FlowState::Processed {
        let acks = messages
            .into_iter()
            .map(|(reference, message_type, version, readable)| {
                let action = if !readable || syntax_failed(&reference) {
                    contrl::Action::Rejected {
                        code: contrl::error_code::UNSPECIFIED.into(),
                    }
                } else {
                    contrl::Action::Accepted
                };
                contrl::MessageAck {
                    reference,
                    message_type,
                    version,
                    action,
                }
            })
            .collect();
        (contrl::Action::Accepted, acks)
    } else {
        let code = if count_wrong {
            contrl::error_code::CONTROL_COUNT
        } else {
            contrl::error_code::UNSPECIFIED
        };
        (contrl::Action::Rejected { code: code.into() }, Vec::new())
    };
    Ok(contrl::Contrl {
        original,
        reference: format!("Q{}", flow.id),
        prepared: flow.updated_at.naive_utc(),
        interchange,
        messages: acks,
    })
}

/// Write `name` in `dir` through a temporary dot-file, fsync, rename, fsync dir.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.part"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(name))?;
    quai_connectors::landing::sync_dir(dir)
}

/// Render the integration report of a flow from the spool.
pub async fn build_report(daemon: &Daemon, flow_id: i64) -> anyhow::Result<IntegrationReport> {
    let flow = daemon.spool.flow(flow_id).await?;
    let invoices = if flow.state == FlowState::Processed {
        daemon.spool.invoices_of_flow(flow_id).await?
    } else {
        Vec::new()
    };
    let documents = invoices
        .into_iter()
        .map(|i| ReportDocument {
            index: i.doc_index,
            entry: i.entry,
            invoice_number: i.number,
            issue_date: i.issue_date.map(|d| d.to_string()),
            status: match i.verdict {
                Verdict::Accepted => "accepted".to_string(),
                Verdict::Rejected => "rejected".to_string(),
            },
            reasons: i
                .reasons
                .into_iter()
                .map(|r| ReportReason {
                    rule: r.rule,
                    term: r.term,
                    severity: r.severity,
                    message: r.message,
                })
                .collect(),
        })
        .collect();
    let status = match flow.state {
        FlowState::Processed => "processed",
        FlowState::Failed => "rejected",
        FlowState::Duplicate => "duplicate",
        FlowState::Received | FlowState::Processing => {
            anyhow::bail!("flow {flow_id} is not finished")
        }
    };
    let mut report = IntegrationReport::new(
        ReportFlow {
            id: flow.id,
            partner: flow.partner.clone(),
            file: flow.original_name.clone(),
            sha256: flow.sha256.clone(),
            size: flow.size,
            received_at: flow.received_at.to_rfc3339(),
            processed_at: flow.updated_at.to_rfc3339(),
        },
        status,
        documents,
    );
    if flow.state == FlowState::Failed {
        report.rejection = Some(FlowRejection {
            code: flow
                .failure_code
                .clone()
                .unwrap_or_else(|| "IRR_SYNTAX".to_string()),
            message: flow.failure_message.clone().unwrap_or_default(),
        });
    }
    report.duplicate_of = flow.duplicate_of;
    Ok(report)
}
