//! Everything that leaves quai goes through one trait, [`Outbound`], defined
//! here where it is consumed (the deliverer, the mail of the jobs) and
//! implemented over the channels of `quai_connectors::outbound`: a local
//! outbox folder, an SFTP outbox, an AS2 partner, mail, plus the channels
//! that are quai's own: the POST of a queued asynchronous MDN, and the
//! partner API's flows `In` (`crate::outbound_api`).
//!
//! [`for_destination`] is the one place a spool [`Destination`] becomes a
//! channel, built from the current configuration (so a partner's new
//! outbox or certificate is taken at the next send). Rendering is not done
//! here: callers stage a complete file and hand it over as a [`Parcel`],
//! or, for a local outbox ([`Outbound::in_place`]), render a batch straight
//! into the outbox's temporaries.

use std::future::Future;
use std::pin::Pin;

use quai_connectors::as2::PendingMdn;
use quai_connectors::outbound::{
    As2Outbound, As2OutboundConfig, FolderOutbox, FolderOutboxConfig, MailOutbound,
    MailOutboundConfig, MailTransportConfig, SftpOutbox,
};
pub use quai_connectors::outbound::{Parcel, SendFailure, Sent};
use quai_spool::Destination;

use crate::config::{Config, MailTransport};

/// The future an [`Outbound::send`] returns (boxed so the trait stays
/// object-safe: senders hold a `Box<dyn Outbound>` per destination).
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<Sent, SendFailure>> + Send + 'a>>;

/// The future an [`Outbound::send_batch`] returns.
pub type BatchFuture<'a> =
    Pin<Box<dyn Future<Output = Vec<Result<Sent, SendFailure>>> + Send + 'a>>;

/// One way out of quai.
pub trait Outbound: Send + Sync {
    /// Sends one parcel. Idempotent on the parcel's name: the same bytes
    /// under a name already delivered are Ok, other bytes never replace
    /// them (a permanent failure naming the destination).
    fn send<'a>(&'a self, parcel: &'a Parcel) -> SendFuture<'a>;
    /// Sends a batch of parcels, one result per parcel in order. The
    /// channels that can share work across a batch do (a local outbox:
    /// one durability pass and one folder fsync; SFTP: one session); the
    /// others send one by one.
    fn send_batch<'a>(&'a self, parcels: &'a [Parcel]) -> BatchFuture<'a> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(parcels.len());
            for p in parcels {
                out.push(self.send(p).await);
            }
            out
        })
    }
    /// Where this sends to, for logs and `quai status`.
    fn describe(&self) -> String;
    /// Drop what the channel kept to answer a repeated send of `name`
    /// without sending again (AS2's send records): called once the spool
    /// records the delivery, so a deliberate resend sends again and the
    /// records do not pile up.
    fn forget(&self, _name: &str) -> std::io::Result<()> {
        Ok(())
    }
    /// The local outbox a batch can be rendered straight into (no staged
    /// copy: `deliver_batch`), when this channel is one.
    fn in_place(&self) -> Option<&FolderOutbox> {
        None
    }
}

impl Outbound for FolderOutbox {
    fn send<'a>(&'a self, parcel: &'a Parcel) -> SendFuture<'a> {
        Box::pin(FolderOutbox::send(self, parcel))
    }
    fn send_batch<'a>(&'a self, parcels: &'a [Parcel]) -> BatchFuture<'a> {
        Box::pin(FolderOutbox::send_batch(self, parcels))
    }
    fn in_place(&self) -> Option<&FolderOutbox> {
        Some(self)
    }
    fn describe(&self) -> String {
        FolderOutbox::describe(self)
    }
}

impl Outbound for SftpOutbox {
    fn send<'a>(&'a self, parcel: &'a Parcel) -> SendFuture<'a> {
        Box::pin(SftpOutbox::send(self, parcel))
    }
    fn send_batch<'a>(&'a self, parcels: &'a [Parcel]) -> BatchFuture<'a> {
        Box::pin(SftpOutbox::send_batch(self, parcels))
    }
    fn describe(&self) -> String {
        SftpOutbox::describe(self)
    }
}

impl Outbound for As2Outbound {
    fn send<'a>(&'a self, parcel: &'a Parcel) -> SendFuture<'a> {
        Box::pin(As2Outbound::send(self, parcel))
    }
    fn describe(&self) -> String {
        As2Outbound::describe(self)
    }
    fn forget(&self, name: &str) -> std::io::Result<()> {
        As2Outbound::forget(self, name)
    }
}

impl Outbound for MailOutbound {
    fn send<'a>(&'a self, parcel: &'a Parcel) -> SendFuture<'a> {
        Box::pin(MailOutbound::send(self, parcel))
    }
    fn describe(&self) -> String {
        MailOutbound::describe(self)
    }
}

/// An asynchronous AS2 MDN: the parcel is the queued [`PendingMdn`] (JSON,
/// written when the message was received), POSTed to the URL the partner's
/// configuration allowed when it was queued, never to another, without
/// following redirects.
pub struct MdnPost {
    /// The URL the spool row names; the queued MDN must name the same.
    pub url: String,
}

impl Outbound for MdnPost {
    fn send<'a>(&'a self, parcel: &'a Parcel) -> SendFuture<'a> {
        Box::pin(async move {
            let fail = |message: String, transient: bool| SendFailure {
                destination: self.describe(),
                message: format!("MDN to {}: {message}", self.url),
                transient,
            };
            let bytes = tokio::fs::read(&parcel.staged)
                .await
                .map_err(|e| fail(format!("{}: {e}", parcel.staged.display()), true))?;
            let pending: PendingMdn = serde_json::from_slice(&bytes)
                .map_err(|e| fail(format!("{}: {e}", parcel.staged.display()), false))?;
            if pending.url != self.url {
                return Err(fail(
                    format!("the queued MDN names {}, not this URL", pending.url),
                    false,
                ));
            }
            quai_connectors::as2::send_async_mdn(&pending)
                .await
                .map_err(|e| {
                    let permanent = matches!(e, quai_connectors::as2::MdnSendError::BadUrl(_));
                    fail(e.to_string(), !permanent)
                })?;
            Ok(Sent {
                destination: self.describe(),
                receipt: None,
            })
        })
    }
    fn describe(&self) -> String {
        format!("as2 MDN {}", crate::text::redact_url(&self.url))
    }
}

/// The channel of a destination, from the current configuration. A
/// partner no longer configured, or a channel no longer usable, is a
/// failure naming the destination (permanent: it will not fix itself;
/// the delivery stays owed and visible until the operator acts).
pub fn for_destination(
    config: &Config,
    to: &Destination,
) -> Result<Box<dyn Outbound>, SendFailure> {
    let refused = |message: String| SendFailure {
        destination: describe(to),
        message,
        transient: false,
    };
    Ok(match to {
        Destination::LocalOutbox { partner } => Box::new(FolderOutbox::new(FolderOutboxConfig {
            dir: config.outbox_for(partner),
            create_missing: true,
        })),
        Destination::SftpOutbox { partner } => {
            let p = config
                .partner(partner)
                .ok_or_else(|| refused(format!("partner {partner} is no longer configured")))?;
            let source =
                crate::connect::sftp_source(config, p).map_err(|e| refused(format!("{e:#}")))?;
            Box::new(SftpOutbox::new(source).map_err(|e| refused(e.to_string()))?)
        }
        Destination::As2 { partner } => Box::new(as2(config, partner).map_err(refused)?),
        Destination::As2Mdn { url, .. } => Box::new(MdnPost { url: url.clone() }),
        Destination::Mail { address } => {
            Box::new(mail(config, vec![address.clone()]).map_err(|e| refused(e.to_string()))?)
        }
        // The partner API: its acknowledgements are announced
        // (`webhooks::announce`), its invoices and status relays become
        // flows `In` through `outbound_api::ApiInbox`, which needs the
        // spool: the deliverer builds it (never this function).
        Destination::Api { .. } => {
            return Err(refused(
                "an answer through the partner API is announced, not sent".into(),
            ))
        }
    })
}

/// The AS2 channel of a partner: quai's `[as2]` identity, the partner's
/// `[partner.as2]` with its `url`, send records under `$QUAI_HOME/as2-out/sent`
/// (a file already accepted is not posted again after a crash).
pub fn as2(config: &Config, partner: &str) -> Result<As2Outbound, String> {
    let identity = crate::connect::as2_identity(config)
        .ok_or("no [as2] identity is configured: cannot send over AS2")?;
    let p = config
        .partner(partner)
        .ok_or_else(|| format!("partner {partner} is no longer configured"))?;
    let a = p
        .as2
        .as_ref()
        .ok_or_else(|| format!("partner {partner} has no [partner.as2] section"))?;
    let outbound = a
        .outbound()
        .ok_or_else(|| format!("partner {partner} has no [partner.as2] url"))?;
    As2Outbound::new(As2OutboundConfig {
        identity,
        partner: crate::connect::as2_partner(p).expect("partner has [partner.as2]"),
        outbound,
        sent_records: Some(sent_records(config)),
    })
}

/// Where the AS2 channel records what each partner accepted.
pub fn sent_records(config: &Config) -> std::path::PathBuf {
    config.home.join("as2-out").join("sent")
}

/// Mail to `to` through the configured transport (`[mail]`).
pub fn mail(
    config: &Config,
    to: Vec<String>,
) -> Result<MailOutbound, quai_connectors::outbound::MailError> {
    MailOutbound::new(MailOutboundConfig {
        transport: match &config.mail_transport {
            MailTransport::Files(dir) => MailTransportConfig::Files(dir.clone()),
            MailTransport::Smtp { url } => MailTransportConfig::Smtp {
                url: url.clone(),
                username: config.mail_username.clone(),
                password_file: config.mail_password_file.clone(),
            },
        },
        from: config.mail_from.clone(),
        to,
    })
}

/// A destination in words, for logs and errors, before its channel exists.
pub fn describe(to: &Destination) -> String {
    match to {
        Destination::LocalOutbox { partner } => format!("the local outbox of {partner}"),
        Destination::SftpOutbox { partner } => format!("the SFTP outbox of {partner}"),
        Destination::As2 { partner } => format!("AS2 to {partner}"),
        Destination::As2Mdn { url, .. } => format!("as2 MDN {}", crate::text::redact_url(url)),
        Destination::Mail { address } => format!("mail to {address}"),
        Destination::Api { partner } => format!("the partner API of {partner}"),
    }
}
