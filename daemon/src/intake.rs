//! The daemon's side of intake: registering landed flows in the spool.
//!
//! Connectors land bytes and call [`SpoolSink::accept`]; the sink commits the
//! flow's registration (or records a duplicate) and wakes the processing
//! workers. Only after this returns may a connector delete its source or
//! answer its sender.
//!
//! An entry a connector refused before landing anything (a link, a FIFO, a
//! device: issue 14) comes through [`FlowSink::refused`]: it is counted
//! (`quai_intake_refused_total{partner,reason}`), logged, and, when it has
//! a partner, registered as a `failed` flow without content (IRR_TYPE_F,
//! the refusal's description) owing an integration report, so the partner
//! gets one answer through the normal acknowledgement path, after the
//! commit. Told again about the same entry, nothing more is registered.

use std::sync::Arc;

use quai_connectors::{Accepted, Channel, FlowSink, LandedFlow, Refusal, SinkError};
use quai_spool::{NewFlow, Origin, Registration};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::app::App;

pub struct SpoolSink {
    daemon: Arc<App>,
}

impl SpoolSink {
    pub fn new(daemon: Arc<App>) -> Self {
        SpoolSink { daemon }
    }
}

pub fn origin_of(channel: Channel) -> Origin {
    match channel {
        Channel::Dropzone => Origin::Dropzone,
        Channel::Sftp => Origin::Sftp,
        Channel::As2 => Origin::As2,
        Channel::Cli => Origin::Cli,
    }
}

/// The origin as a metric label.
pub fn origin_label(origin: Origin) -> &'static str {
    match origin {
        Origin::Dropzone => "dropzone",
        Origin::Sftp => "sftp",
        Origin::As2 => "as2",
        Origin::Cli => "cli",
        Origin::Api => "api",
    }
}

/// Register one landed flow; shared by every connector and `quai ingest`.
pub async fn register(daemon: &App, flow: &LandedFlow) -> Result<Accepted, SinkError> {
    if !crate::config::valid_partner_id(&flow.partner) {
        return Err(SinkError(format!(
            "{:?} is not a valid partner id",
            flow.partner
        )));
    }
    let spool = &daemon.spool;
    spool
        .ensure_partner(&flow.partner)
        .await
        .map_err(|e| SinkError(e.to_string()))?;
    let new = NewFlow {
        partner: flow.partner.clone(),
        origin: origin_of(flow.channel),
        original_name: flow.original_name.clone(),
        size: flow.size as i64,
        sha256: flow.sha256.clone(),
        as2_message_id: flow.as2_message_id.clone(),
    };
    // A duplicate is answered again (a report saying so), atomically with
    // its registration.
    let config = &daemon.config();
    let registration = spool
        .register_flow_with_acks(&new, |id| {
            crate::routing::owed_by_duplicate(
                config,
                &new.partner,
                new.origin,
                &new.original_name,
                id,
            )
        })
        .await
        .map_err(|e| SinkError(e.to_string()))?;
    Ok(match registration {
        Registration::New(id) => {
            crate::metrics::flow_received(&flow.partner, origin_label(new.origin));
            crate::metrics::bytes_in(&flow.partner, flow.size);
            info!(partner = %flow.partner, flow_id = id, stage = "received", file = %flow.original_name, size = flow.size, "flow registered");
            daemon.work.notify_waiters();
            daemon.work.notify_one();
            Accepted::New { flow_id: id }
        }
        Registration::Duplicate { id, original } => {
            info!(partner = %flow.partner, flow_id = id, original, stage = "duplicate", file = %flow.original_name, "flow already received: recorded as a duplicate");
            daemon.acks.notify_one();
            Accepted::Duplicate {
                flow_id: id,
                original,
            }
        }
    })
}

/// The reason code of a refused entry's report.
pub const REFUSED_CODE: &str = "IRR_TYPE_F";

/// The `sha256` a refused entry is registered under: not a content hash
/// (nothing was read) but the refusal's identity, so the same refusal told
/// twice (an entry left in place is told again after a restart) registers
/// once. An entry moved aside is never told again, and each one is its own
/// flow.
fn refusal_key(refusal: &Refusal) -> String {
    let mut h = Sha256::new();
    h.update(format!(
        "{:?}\n{}\n",
        refusal.channel,
        refusal.reason.label()
    ));
    match &refusal.moved_to {
        Some(to) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            h.update(format!("{}\n{now}\n{}", to.display(), std::process::id()));
        }
        None => h.update(refusal.name.as_bytes()),
    }
    format!("refused-{}", hex::encode(&h.finalize()[..16]))
}

/// Count, log and answer one refused entry (see the module doc).
pub async fn record_refusal(daemon: &App, refusal: &Refusal) {
    let reason = refusal.reason.label();
    let partner = refusal
        .partner
        .as_deref()
        .filter(|p| crate::config::valid_partner_id(p));
    crate::metrics::intake_refused(partner.unwrap_or(""), reason);
    let Some(partner) = partner else {
        info!(
            reason,
            "refused entry has no usable partner: counted, no report can be addressed"
        );
        return;
    };
    // The name the partner gave; a folder's path is the operator's, not
    // the partner's: only its last component is reported.
    let name = std::path::Path::new(&refusal.name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| refusal.name.clone());
    let new = NewFlow {
        partner: partner.to_string(),
        origin: origin_of(refusal.channel),
        original_name: name,
        size: 0,
        sha256: refusal_key(refusal),
        as2_message_id: None,
    };
    let config = daemon.config();
    let registered = daemon
        .spool
        .register_refused(&new, REFUSED_CODE, refusal.reason.describe(), |id| {
            crate::routing::owed_by_refused(
                &config,
                &new.partner,
                new.origin,
                &new.original_name,
                id,
            )
        })
        .await;
    match registered {
        Ok(Some(id)) => {
            info!(partner, flow_id = id, reason, file = %new.original_name, stage = "refused",
                "refused entry recorded as a failed flow: an integration report (IRR_TYPE_F) is owed");
            daemon.acks.notify_one();
        }
        Ok(None) => {
            info!(partner, reason, file = %new.original_name, "refused entry already answered");
        }
        Err(e) => {
            warn!(partner, reason, file = %new.original_name, error = %e,
                "refused entry not recorded: no report is sent for it");
        }
    }
}

impl FlowSink for SpoolSink {
    async fn accept(&self, flow: LandedFlow) -> Result<Accepted, SinkError> {
        register(&self.daemon, &flow).await
    }

    async fn refused(&self, refusal: Refusal) {
        record_refusal(&self.daemon, &refusal).await
    }
}
