//! The daemon's side of intake: registering landed flows in the spool.
//!
//! Connectors land bytes and call [`SpoolSink::accept`]; the sink commits the
//! flow's registration (or records a duplicate) and wakes the processing
//! workers. Only after this returns may a connector delete its source or
//! answer its sender.

use std::sync::Arc;

use quai_connectors::{Accepted, Channel, FlowSink, LandedFlow, SinkError};
use quai_spool::{NewFlow, Origin, Registration};
use tracing::info;

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

impl FlowSink for SpoolSink {
    async fn accept(&self, flow: LandedFlow) -> Result<Accepted, SinkError> {
        register(&self.daemon, &flow).await
    }
}
