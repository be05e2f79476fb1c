//! Outgoing mail: reject digests to partners, reconciliation reports to
//! operations.
//!
//! The transport comes from `[mail] transport`:
//! - `file://DIR` (the embedded default, `$QUAI_HOME/mail/`): each message is
//!   written as `DIR/<message-id>.eml` through a temporary dot-file, fsynced
//!   and renamed. Naming the file after the Message-ID lets the digest job
//!   tell, after a crash, whether a message it was sending was written.
//! - `smtp://host[:port]` (default port 25): plain SMTP, upgraded with
//!   STARTTLS whenever the server offers it (*opportunistic*: a relay that
//!   does not offer STARTTLS gets the mail in clear; use `smtps://` or a
//!   relay on localhost when that is not acceptable).
//! - `smtps://host[:port]` (default port 465): implicit TLS from the first byte.
//!
//! With `[mail] username`, the password is read from `password_file` (one
//! line, trailing newline ignored) each time a transport is built; it is
//! never logged, and [`Mailer`]'s `Debug` leaves it out.
//!
//! A failed send is an `Err`: nothing is recorded as sent, and the caller
//! retries at its next cycle.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{Config, MailTransport};

/// Why a mail could not be built or sent.
#[derive(Debug)]
pub enum MailError {
    /// The configuration cannot work (bad address, unreadable password file).
    Config(String),
    /// The message could not be built (bad recipient address...).
    Build(String),
    /// The transport refused or failed (SMTP down, disk full): retry later.
    Send(String),
}

impl std::fmt::Display for MailError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MailError::Config(m) => write!(f, "mail configuration: {m}"),
            MailError::Build(m) => write!(f, "cannot build the mail: {m}"),
            MailError::Send(m) => write!(f, "mail not sent: {m}"),
        }
    }
}

impl std::error::Error for MailError {}

/// A file attached to a mail.
#[derive(Debug, Clone)]
pub struct MailAttachment {
    pub file_name: String,
    /// e.g. `text/csv; charset=utf-8`
    pub content_type: String,
    pub bytes: Vec<u8>,
}

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

enum Transport {
    Files(PathBuf),
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        label: String,
    },
}

/// The configured mail transport.
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = match &self.transport {
            Transport::Files(d) => format!("files:{}", d.display()),
            Transport::Smtp { label, .. } => label.clone(),
        };
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("transport", &t)
            .finish()
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new, unique Message-ID (`<kind.time.pid.n@host>`).
pub fn new_message_id(kind: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        })
        .unwrap_or_else(|| "localhost".to_string());
    let kind: String = kind
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!(
        "<quai.{kind}.{nanos}.{}.{}@{host}>",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// File name of a message written by the file transport.
pub fn eml_name(message_id: &str) -> String {
    let safe: String = message_id
        .trim_matches(|c| c == '<' || c == '>')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.eml")
}

fn host_port(rest: &str, default_port: u16) -> Result<(String, u16), MailError> {
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('@') || rest.contains('/') {
        return Err(MailError::Config(format!(
            "{rest:?} is not host[:port] (the user name goes in [mail] username)"
        )));
    }
    match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.starts_with('[') => {
            let port = p
                .parse()
                .map_err(|_| MailError::Config(format!("{p:?} is not a port")))?;
            Ok((h.trim_matches(|c| c == '[' || c == ']').to_string(), port))
        }
        _ => Ok((rest.to_string(), default_port)),
    }
}

fn read_password(path: &Path) -> Result<String, MailError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        MailError::Config(format!(
            "cannot read mail password_file {}: {e}",
            path.display()
        ))
    })?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

impl Mailer {
    /// The transport of a configuration.
    pub fn from_config(config: &Config) -> Result<Mailer, MailError> {
        let from: Mailbox = config
            .mail_from
            .parse()
            .map_err(|e| MailError::Config(format!("from {:?}: {e}", config.mail_from)))?;
        let transport = match &config.mail_transport {
            MailTransport::Files(dir) => Transport::Files(dir.clone()),
            MailTransport::Smtp { url } => {
                let (implicit, rest) = if let Some(r) = url.strip_prefix("smtps://") {
                    (true, r)
                } else if let Some(r) = url.strip_prefix("smtp://") {
                    (false, r)
                } else {
                    return Err(MailError::Config(format!(
                        "{url:?} is not smtp:// or smtps://"
                    )));
                };
                let (host, port) = host_port(rest, if implicit { 465 } else { 25 })?;
                let tls = TlsParameters::new(host.clone())
                    .map_err(|e| MailError::Config(format!("TLS for {host}: {e}")))?;
                let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
                    .port(port)
                    .timeout(Some(Duration::from_secs(30)))
                    .tls(if implicit {
                        Tls::Wrapper(tls)
                    } else {
                        Tls::Opportunistic(tls)
                    });
                if let Some(user) = &config.mail_username {
                    let password = match &config.mail_password_file {
                        Some(p) => read_password(p)?,
                        None => {
                            return Err(MailError::Config(
                                "[mail] username is set but password_file is not".into(),
                            ))
                        }
                    };
                    b = b.credentials(Credentials::new(user.clone(), password));
                }
                Transport::Smtp {
                    transport: b.build(),
                    label: format!(
                        "{}://{host}:{port}",
                        if implicit { "smtps" } else { "smtp" }
                    ),
                }
            }
        };
        Ok(Mailer { from, transport })
    }

    /// The folder of the file transport, if that is the transport.
    pub fn files_dir(&self) -> Option<&Path> {
        match &self.transport {
            Transport::Files(d) => Some(d),
            Transport::Smtp { .. } => None,
        }
    }

    /// Build the MIME message: multipart/mixed with a text/HTML alternative
    /// and the attachments.
    pub fn build(&self, mail: &OutgoingMail) -> Result<Message, MailError> {
        if mail.to.is_empty() {
            return Err(MailError::Build("no recipient".into()));
        }
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(mail.subject.clone())
            .message_id(Some(mail.message_id.clone()))
            .date_now();
        for to in &mail.to {
            let mb: Mailbox = to
                .parse()
                .map_err(|e| MailError::Build(format!("recipient {to:?}: {e}")))?;
            b = b.to(mb);
        }
        let mut body = MultiPart::mixed().multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            mail.html.clone(),
        ));
        for a in &mail.attachments {
            let ct = ContentType::parse(&a.content_type)
                .map_err(|e| MailError::Build(format!("content type {:?}: {e}", a.content_type)))?;
            let part: SinglePart = Attachment::new(a.file_name.clone()).body(a.bytes.clone(), ct);
            body = body.singlepart(part);
        }
        b.multipart(body)
            .map_err(|e| MailError::Build(e.to_string()))
    }

    /// Send one mail. `Ok` means the relay accepted it (or the file is durably
    /// written); on `Err` nothing may be assumed sent... except that an SMTP
    /// connection lost after the final `.` leaves that unknown, which is why
    /// the digest job records a `sending` state first.
    pub async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let message = self.build(mail)?;
        match &self.transport {
            Transport::Files(dir) => {
                let bytes = message.formatted();
                let dir = dir.clone();
                let name = eml_name(&mail.message_id);
                tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                    std::fs::create_dir_all(&dir)?;
                    crate::text::write_atomically(&dir, &name, &bytes)
                })
                .await
                .map_err(|e| MailError::Send(format!("writer task: {e}")))?
                .map_err(|e| MailError::Send(format!("cannot write the mail file: {e}")))
            }
            Transport::Smtp { transport, label } => {
                transport.send(message).await.map(|_| ()).map_err(|e| {
                    crate::metrics::smtp_failed();
                    MailError::Send(format!("{label}: {e}"))
                })
            }
        }
    }

    /// Whether the file transport holds the message with this Message-ID
    /// (`None`: the transport cannot tell, e.g. SMTP).
    pub fn was_written(&self, message_id: &str) -> Option<bool> {
        self.files_dir()
            .map(|d| d.join(eml_name(message_id)).exists())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port() {
        assert_eq!(host_port("relay:587", 25).unwrap(), ("relay".into(), 587));
        assert_eq!(host_port("relay", 25).unwrap(), ("relay".into(), 25));
        assert_eq!(host_port("[::1]:2525", 25).unwrap(), ("::1".into(), 2525));
        assert!(host_port("user@relay:25", 25).is_err());
        assert!(host_port("relay:x", 25).is_err());
    }

    #[test]
    fn message_ids_are_unique_and_file_safe() {
        let a = new_message_id("digest acme");
        let b = new_message_id("digest acme");
        assert_ne!(a, b);
        assert!(a.starts_with("<quai.digest-acme.") && a.ends_with('>'));
        let n = eml_name(&a);
        assert!(n.ends_with(".eml") && !n.contains('/') && !n.contains('<'));
    }
}
