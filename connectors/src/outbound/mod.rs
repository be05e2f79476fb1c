//! The ways out of quai: a local outbox folder, an SFTP outbox, an AS2
//! partner, mail, a partner API webhook.
//!
//! Rendering and sending are separate steps: the daemon renders a file (an
//! integration report, a CDAR, a CONTRL, an invoice, or a whole RFC 5322
//! mail as an `.eml`) into a staged, fsynced file under `$QUAI_HOME/tmp`,
//! then hands it to one of these channels as a [`Parcel`]. Each channel
//! knows one way out and is built from its own small config struct, never
//! from daemon types. They share one shape (`send(&Parcel) -> Result<Sent,
//! SendFailure>`, `describe()`); the trait over them, `Outbound`, is the
//! daemon's (`daemon/src/outbound.rs`), the crate that consumes it, as
//! [`crate::FlowSink`] is this crate's.
//!
//! Every channel is idempotent on the parcel's name: a crash between the
//! send and the spool's record of it must not produce a second, different
//! file, so resending the same bytes under the same name is Ok, and a file of
//! that name holding other bytes is never overwritten.

use std::path::PathBuf;

mod as2;
mod folder;
mod mail;
mod sftp;
mod webhook;

pub use as2::{As2Outbound, As2OutboundConfig};
pub use folder::{
    is_temporary_name, FolderOutbox, FolderOutboxConfig, InPlaceBatch, InPlaceFile, TEMP_PREFIX,
};
pub use mail::{
    eml_name, new_message_id, render_mail, MailAttachment, MailError, MailMessage, MailOutbound,
    MailOutboundConfig, MailTransportConfig, MAX_MAIL_BYTES,
};
pub use sftp::SftpOutbox;
pub use webhook::{post_webhook, WebhookError};

/// One file to send.
#[derive(Debug, Clone)]
pub struct Parcel {
    /// File name at the destination, already made safe by the caller (no '/', no NUL,
    /// not only dots, <= 255 bytes).
    pub name: String,
    /// The complete, fsynced staged file to send.
    pub staged: PathBuf,
    /// Media type, e.g. "application/xml", "application/EDIFACT", "message/rfc822".
    pub media_type: &'static str,
}

/// What the destination confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Human-readable destination ("/srv/out/acme/x.xml", "sftp://host:22/out/x.xml",
    /// "as2 https://peer/as2 (MDN <id>)", "smtp:ops@acme.example") for logs and spool.
    pub destination: String,
    /// Recipient-side receipt when the channel has one (AS2 MDN Message-ID,
    /// confirmed SFTP rename), for lifecycle status 202 later.
    pub receipt: Option<String>,
}

/// A failed send; `message` always names the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFailure {
    pub destination: String,
    pub message: String,
    /// True when trying again later may succeed (network down, server busy);
    /// false when it never will (a different file already holds the name, a
    /// refused outbox path, a rejected MDN).
    pub transient: bool,
}

impl std::fmt::Display for SendFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SendFailure {}

/// Checks the promise a [`Parcel::name`] makes (the callers make names
/// safe; the implementations refuse to trust them blindly): not empty, at
/// most 255 bytes, no '/' or NUL, not made only of dots.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty file name".into());
    }
    if name.len() > 255 {
        return Err(format!("file name of {} bytes (at most 255)", name.len()));
    }
    if name.contains(['/', '\0']) {
        return Err(format!("file name {name:?} holds '/' or NUL"));
    }
    if name.bytes().all(|b| b == b'.') {
        return Err(format!("file name {name:?} is only dots"));
    }
    Ok(())
}
