//! Outgoing mail of the jobs: reject digests to partners, reconciliation
//! reports to operations.
//!
//! Rendering and sending are the connectors' (`render_mail`, and the mail
//! channel behind [`crate::outbound::Outbound`]); this module only stages
//! the rendered message under `$QUAI_HOME/tmp` and hands it over. The
//! transport comes from `[mail] transport`:
//! - `file://DIR` (the embedded default, `$QUAI_HOME/mail/`): each message is
//!   written as `DIR/<message-id>.eml` with the outbox rules (exclusive
//!   temporary, fsync, rename without replacing). Naming the file after the
//!   Message-ID lets the digest job tell, after a crash, whether a message
//!   it was sending was written.
//! - `smtp://host[:port]` (STARTTLS whenever the server offers it) or
//!   `smtps://host[:port]` (implicit TLS), with `[mail] username` and a
//!   `password_file` read at each send, never logged.
//!
//! A failed send is an `Err`: nothing is recorded as sent, and the caller
//! retries at its next cycle.

use std::path::{Path, PathBuf};

pub use quai_connectors::outbound::{eml_name, new_message_id, MailAttachment, MailError};
use quai_connectors::outbound::{render_mail, MailMessage, Parcel};

use crate::config::{Config, MailTransport};
use crate::outbound::Outbound;

/// One message to send.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attachments: Vec<MailAttachment>,
    /// `<...@...>`; see [`new_message_id`].
    pub message_id: String,
}

/// The configured mail transport.
#[derive(Debug)]
pub struct Mailer {
    config: Config,
}

impl Mailer {
    /// The transport of a configuration; checked now (addresses, the
    /// password file), so a job fails before it records anything.
    pub fn from_config(config: &Config) -> Result<Mailer, MailError> {
        crate::outbound::mail(config, vec![config.mail_from.clone()])?;
        Ok(Mailer {
            config: config.clone(),
        })
    }

    /// The folder of the file transport, if that is the transport.
    pub fn files_dir(&self) -> Option<&Path> {
        match &self.config.mail_transport {
            MailTransport::Files(d) => Some(d),
            MailTransport::Smtp { .. } => None,
        }
    }

    /// Send one mail. `Ok` means the relay accepted it (or the file is durably
    /// written); on `Err` nothing may be assumed sent... except that an SMTP
    /// connection lost after the final `.` leaves that unknown, which is why
    /// the digest job records a `sending` state first.
    pub async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let channel = crate::outbound::mail(&self.config, mail.to.clone())?;
        let message = MailMessage {
            from: self.config.mail_from.clone(),
            to: mail.to.clone(),
            subject: mail.subject.clone(),
            text: mail.text.clone(),
            html: mail.html.clone(),
            attachments: mail.attachments.clone(),
            message_id: mail.message_id.clone(),
        };
        let staged = Staged::new(&self.config.home.join("tmp"))
            .map_err(|e| MailError::Io(format!("cannot stage the mail: {e}")))?;
        let path = staged.0.clone();
        tokio::task::spawn_blocking(move || render_mail(&message, &path))
            .await
            .map_err(|e| MailError::Io(format!("mail renderer task: {e}")))??;
        let parcel = Parcel {
            name: eml_name(&mail.message_id),
            staged: staged.0.clone(),
            media_type: "message/rfc822",
        };
        match Outbound::send(&channel, &parcel).await {
            Ok(_) => Ok(()),
            Err(e) => {
                if matches!(self.config.mail_transport, MailTransport::Smtp { .. }) {
                    crate::metrics::smtp_failed();
                }
                Err(MailError::Send(e.message))
            }
        }
    }

    /// Whether the file transport holds the message with this Message-ID
    /// (`None`: the transport cannot tell, e.g. SMTP).
    pub fn was_written(&self, message_id: &str) -> Option<bool> {
        self.files_dir().map(|d| {
            std::fs::symlink_metadata(d.join(eml_name(message_id)))
                .map(|m| m.is_file())
                .unwrap_or(false)
        })
    }
}

/// A staged `.eml` under `$QUAI_HOME/tmp`, removed when dropped.
struct Staged(PathBuf);

impl Staged {
    fn new(tmp: &Path) -> std::io::Result<Staged> {
        std::fs::create_dir_all(tmp)?;
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let path = tmp.join(format!(
            "mail-{}-{}.eml",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        // Left by a process that is gone and had this pid.
        let _ = std::fs::remove_file(&path);
        Ok(Staged(path))
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
