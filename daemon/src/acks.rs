//! Acknowledgement delivery.
//!
//! The spool holds one pending acknowledgement row per report owed (created
//! in the same transaction that finished the flow). The deliverer renders
//! each from spool data, writes it to the partner's outbox under a temporary
//! name, renames it into place, and only then marks it delivered. A crash
//! between the write and the mark rewrites the same file under the same name:
//! a partner never sees a half-written or a second, different report.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use quai_mappings::ack::report::{
    FlowRejection, IntegrationReport, ReportDocument, ReportFlow, ReportReason,
};
use quai_mappings::flow::FlowEnd;
use quai_spool::{AckKind, AckRow, ClaimedFlow, FlowState, Verdict};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::Daemon;

/// The acknowledgements a finished flow is owed, as (kind, destination, file
/// name) rows created in the same transaction that finishes the flow.
pub fn owed(claimed: &ClaimedFlow, end: &FlowEnd) -> Vec<(AckKind, String, String)> {
    let _ = end;
    let report_name = crate::pipeline::report_file_name(&claimed.original_name, claimed.id);
    vec![(
        AckKind::IntegrationReport,
        crate::pipeline::destination_of(claimed.origin).to_string(),
        report_name,
    )]
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

async fn deliver(daemon: &Daemon, ack: &AckRow) -> anyhow::Result<()> {
    match ack.kind {
        AckKind::IntegrationReport => {
            let report = build_report(daemon, ack.flow_id).await?;
            let outbox = daemon.config.outbox_for(&ack.partner);
            let json = report.to_json();
            let xml = report.to_xml();
            let (json_name, xml_name) = (
                format!("{}.json", ack.file_name),
                format!("{}.xml", ack.file_name),
            );
            tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                std::fs::create_dir_all(&outbox)?;
                write_atomically(&outbox, &xml_name, &xml)?;
                write_atomically(&outbox, &json_name, &json)
            })
            .await??;
            Ok(())
        }
        other => anyhow::bail!(
            "delivery of {} acknowledgements is not supported yet",
            other.as_str()
        ),
    }
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
