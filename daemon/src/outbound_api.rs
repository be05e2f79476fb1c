//! The partner API as a way out: an invoice routed to a partner whose
//! only channel is the API (`routing::api_only`), or a lifecycle status
//! relayed to it, becomes one of its flows `In` (AFNOR Flow Service,
//! `flowDirection: In`) instead of a file in an outbox.
//!
//! Why here and so: the deliverer's batched path renders the file in the
//! recipient's syntax and records the statuses of a delivery (201 Émise,
//! 203 Mise à disposition) whatever the channel; this channel only has to
//! make the rendered file durable and listed. [`ApiInbox::send`] copies the
//! staged file into `$QUAI_HOME/api-inbox` under its SHA-256 (fsynced, the
//! flow store's landing; apart from the flow store so that its retention
//! never removes it), then registers the flow `In` and the posts owed to
//! the partner's matching webhooks in one transaction, once per partner and
//! file name: sent again after a crash (the same name, the same bytes), it
//! finds its flow and adds nothing; other bytes under a delivered name are
//! refused, as every channel does.

use std::io::Read;
use std::path::{Path, PathBuf};

use quai_connectors::landing;
use quai_spool::api::{InboxPut, NewInboxFlow};
use quai_spool::Spool;

use crate::config::Config;
use crate::outbound::{Outbound, Parcel, SendFailure, SendFuture, Sent};

/// Where the files of flows `In` are kept.
pub fn inbox_dir(config: &Config) -> PathBuf {
    config.home.join("api-inbox")
}

/// The flows `In` of one partner.
pub struct ApiInbox {
    partner: String,
    dir: PathBuf,
    spool: Spool,
}

impl ApiInbox {
    pub fn new(config: &Config, partner: &str, spool: Spool) -> ApiInbox {
        ApiInbox {
            partner: partner.to_owned(),
            dir: inbox_dir(config),
            spool,
        }
    }
}

/// The FlowSyntax of a rendered file, from its first bytes: a CDAR
/// (`CrossDomainAcknowledgementAndResponse`), a PDF (Factur-X), CII, else UBL.
fn sniff_syntax(path: &Path) -> std::io::Result<&'static str> {
    let mut head = Vec::with_capacity(8192);
    std::fs::File::open(path)?
        .take(8192)
        .read_to_end(&mut head)?;
    let text = String::from_utf8_lossy(&head);
    Ok(if head.starts_with(b"%PDF") {
        "Factur-X"
    } else if text.contains("CrossDomainAcknowledgementAndResponse") {
        "CDAR"
    } else if text.contains("CrossIndustryInvoice") {
        "CII"
    } else {
        "UBL"
    })
}

impl Outbound for ApiInbox {
    fn send<'a>(&'a self, parcel: &'a Parcel) -> SendFuture<'a> {
        Box::pin(async move {
            let fail = |message: String, transient: bool| SendFailure {
                destination: self.describe(),
                message: format!("{}: {message}", parcel.name),
                transient,
            };
            let staged = parcel.staged.clone();
            let dir = self.dir.clone();
            let (stored, syntax) = tokio::task::spawn_blocking(move || {
                let syntax = sniff_syntax(&staged)?;
                let stored = landing::land_file(&staged, &dir, u64::MAX)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                Ok::<_, std::io::Error>((stored, syntax))
            })
            .await
            .map_err(|e| fail(e.to_string(), true))?
            .map_err(|e| fail(e.to_string(), true))?;
            let flow_type = crate::flow_json::inbox_flow_type(syntax);
            let hooks = self
                .spool
                .webhooks_of(&self.partner)
                .await
                .map_err(|e| fail(e.to_string(), true))?;
            let webhooks = hooks
                .iter()
                .filter(|h| crate::webhooks::matches(h, "In", "Ok", flow_type))
                .map(|h| h.id.clone())
                .collect();
            let put = self
                .spool
                .put_inbox_flow(&NewInboxFlow {
                    partner: self.partner.clone(),
                    name: parcel.name.clone(),
                    flow_syntax: syntax.to_owned(),
                    flow_type: flow_type.to_owned(),
                    sha256: stored.sha256.clone(),
                    size: stored.size as i64,
                    webhooks,
                })
                .await
                .map_err(|e| fail(e.to_string(), true))?;
            let id = match put {
                InboxPut::New(id) | InboxPut::Existing(id) => id,
                InboxPut::Conflict(other) => {
                    return Err(fail(
                        format!("already delivered with other bytes (sha256 {other})"),
                        false,
                    ))
                }
            };
            Ok(Sent {
                destination: format!(
                    "the partner API of {} (flow {})",
                    self.partner,
                    crate::flow_json::inbox_flow_id(id)
                ),
                receipt: None,
            })
        })
    }
    fn describe(&self) -> String {
        format!("the partner API of {}", self.partner)
    }
}
