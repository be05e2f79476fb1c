//! Mail as a way out: reject digests to partners, reconciliation reports to
//! operations.
//!
//! Rendering and sending are separate, as for every way out:
//! [`render_mail`] builds the whole RFC 5322 message (From, To, Subject,
//! Date, Message-ID, a text/HTML alternative and the attachments) into a
//! staged `.eml` file; [`MailOutbound`] sends such a file to its configured
//! recipients without looking inside. The transport comes from the
//! configuration (`[mail] transport`):
//! - `Files(DIR)` (the embedded default, `$QUAI_HOME/mail/`): the `.eml` is
//!   published into `DIR` under the parcel's name with the outbox rules of
//!   [`super::FolderOutbox`] (exclusive temporary, fsync, rename without
//!   replacing, idempotent on the name). Naming the file after the
//!   Message-ID ([`eml_name`]) lets a job tell, after a crash, whether a
//!   message it was sending was written ([`MailOutbound::holds`]).
//! - `smtp://host[:port]` (default port 25): plain SMTP, upgraded with
//!   STARTTLS whenever the server offers it (*opportunistic*: a relay that
//!   does not offer STARTTLS gets the mail in clear; use `smtps://` or a
//!   relay on localhost when that is not acceptable).
//! - `smtps://host[:port]` (default port 465): implicit TLS from the first byte.
//!
//! With a user name, the password is read from `password_file` (one line,
//! trailing newline ignored) each time a transport is built; it is never
//! logged, and the `Debug` output leaves it out.
//!
//! SMTP cannot be asked whether it already holds a message, so an SMTP send
//! is not idempotent on the name: the caller keeps a `sending` state (the
//! digest job does) and decides after a crash.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use lettre::address::Envelope;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{check_name, FolderOutbox, FolderOutboxConfig, Parcel, SendFailure, Sent};

/// Largest `.eml` sent over SMTP (read whole into memory by lettre).
pub const MAX_MAIL_BYTES: u64 = 64 << 20;

/// Why a mail could not be configured, built or sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailError {
    /// The configuration cannot work (bad address, unreadable password file).
    Config(String),
    /// The message could not be built (bad recipient address...).
    Build(String),
    /// The staged message could not be written.
    Io(String),
    /// The transport refused or failed (SMTP down, disk full): retry later.
    Send(String),
}

impl std::fmt::Display for MailError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MailError::Config(m) => write!(f, "mail configuration: {m}"),
            MailError::Build(m) => write!(f, "cannot build the mail: {m}"),
            MailError::Io(m) => write!(f, "cannot write the mail: {m}"),
            MailError::Send(m) => write!(f, "mail not sent: {m}"),
        }
    }
}

impl std::error::Error for MailError {}

/// How mail leaves (`[mail] transport`, `username`, `password_file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailTransportConfig {
    /// A folder of `.eml` files.
    Files(PathBuf),
    /// `smtp://host[:port]` or `smtps://host[:port]`.
    Smtp {
        url: String,
        username: Option<String>,
        password_file: Option<PathBuf>,
    },
}

/// One way out by mail: a transport and the recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailOutboundConfig {
    pub transport: MailTransportConfig,
    /// The envelope sender (`MAIL FROM`), normally `[mail] from`.
    pub from: String,
    /// The configured recipient address(es) (`RCPT TO`), at least one.
    pub to: Vec<String>,
}

enum Transport {
    Files(FolderOutbox),
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        label: String,
    },
}

/// Sends pre-rendered RFC 5322 messages (see the module documentation).
pub struct MailOutbound {
    envelope: Envelope,
    to: Vec<String>,
    transport: Transport,
}

impl std::fmt::Debug for MailOutbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailOutbound")
            .field("to", &self.to)
            .field("transport", &self.describe())
            .finish()
    }
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

/// The bare address of `"Name <a@b>"` or `"a@b"`.
fn address(text: &str, what: &str) -> Result<Address, MailError> {
    text.parse::<Mailbox>()
        .map(|m| m.email)
        .map_err(|e| MailError::Config(format!("{what} {text:?}: {e}")))
}

impl MailOutbound {
    pub fn new(config: MailOutboundConfig) -> Result<MailOutbound, MailError> {
        let from = address(&config.from, "from")?;
        if config.to.is_empty() {
            return Err(MailError::Config("no recipient".into()));
        }
        let to = config
            .to
            .iter()
            .map(|t| address(t, "recipient"))
            .collect::<Result<Vec<_>, _>>()?;
        let envelope = Envelope::new(Some(from), to)
            .map_err(|e| MailError::Config(format!("envelope: {e}")))?;
        let transport = match config.transport {
            MailTransportConfig::Files(dir) => {
                Transport::Files(FolderOutbox::new(FolderOutboxConfig {
                    dir,
                    create_missing: true,
                }))
            }
            MailTransportConfig::Smtp {
                url,
                username,
                password_file,
            } => {
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
                if let Some(user) = username {
                    let password = match &password_file {
                        Some(p) => read_password(p)?,
                        None => {
                            return Err(MailError::Config(
                                "[mail] username is set but password_file is not".into(),
                            ))
                        }
                    };
                    b = b.credentials(Credentials::new(user, password));
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
        Ok(MailOutbound {
            envelope,
            to: config.to,
            transport,
        })
    }

    /// The folder of the file transport, if that is the transport.
    pub fn files_dir(&self) -> Option<&Path> {
        match &self.transport {
            Transport::Files(o) => Some(o.dir()),
            Transport::Smtp { .. } => None,
        }
    }

    /// Whether the file transport holds a file of this name (`None`: the
    /// transport cannot tell, e.g. SMTP).
    pub fn holds(&self, name: &str) -> Option<bool> {
        self.files_dir().map(|d| {
            std::fs::symlink_metadata(d.join(name))
                .map(|m| m.is_file())
                .unwrap_or(false)
        })
    }

    fn smtp_destination(&self, label: &str) -> String {
        format!("smtp:{} via {label}", self.to.join(","))
    }

    async fn send_smtp(
        &self,
        transport: &AsyncSmtpTransport<Tokio1Executor>,
        label: &str,
        parcel: &Parcel,
    ) -> Result<Sent, SendFailure> {
        let destination = self.smtp_destination(label);
        let fail = |message: String, transient: bool| SendFailure {
            destination: destination.clone(),
            message: format!("{} to {destination}: {message}", parcel.name),
            transient,
        };
        let size = tokio::fs::metadata(&parcel.staged)
            .await
            .map_err(|e| fail(format!("{}: {e}", parcel.staged.display()), true))?
            .len();
        if size > MAX_MAIL_BYTES {
            return Err(fail(
                format!("{size} bytes is over the mail limit of {MAX_MAIL_BYTES} bytes"),
                false,
            ));
        }
        let bytes = tokio::fs::read(&parcel.staged)
            .await
            .map_err(|e| fail(format!("{}: {e}", parcel.staged.display()), true))?;
        match transport.send_raw(&self.envelope, &bytes).await {
            Ok(response) => {
                tracing::info!(target: "quai::outbound", destination = %destination, name = %parcel.name,
                    code = %response.code(), "mail accepted by the relay");
                Ok(Sent {
                    destination,
                    receipt: None,
                })
            }
            // 5xx: the relay refused for good (a bad recipient, too large).
            Err(e) => Err(fail(e.to_string(), !e.is_permanent())),
        }
    }
}

impl MailOutbound {
    /// Sends one rendered message (`message/rfc822` parcel).
    pub async fn send(&self, parcel: &Parcel) -> Result<Sent, SendFailure> {
        match &self.transport {
            Transport::Files(folder) => folder.send(parcel).await,
            Transport::Smtp { transport, label } => {
                check_name(&parcel.name).map_err(|m| SendFailure {
                    destination: self.smtp_destination(label),
                    message: m,
                    transient: false,
                })?;
                self.send_smtp(transport, label, parcel).await
            }
        }
    }

    /// Where this outbound sends to, for logs.
    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Files(o) => format!(
                "mail files {} (to {})",
                o.dir().display(),
                self.to.join(",")
            ),
            Transport::Smtp { label, .. } => self.smtp_destination(label),
        }
    }
}

/// A file attached to a mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailAttachment {
    pub file_name: String,
    /// e.g. `text/csv; charset=utf-8`
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// One message to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailMessage {
    /// The From header, e.g. `quai <quai@example.org>`.
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attachments: Vec<MailAttachment>,
    /// `<...@...>`; see [`new_message_id`].
    pub message_id: String,
}

/// The lettre message: multipart/mixed with a text/HTML alternative and the
/// attachments.
fn build(mail: &MailMessage) -> Result<Message, MailError> {
    if mail.to.is_empty() {
        return Err(MailError::Build("no recipient".into()));
    }
    let from: Mailbox = mail
        .from
        .parse()
        .map_err(|e| MailError::Build(format!("from {:?}: {e}", mail.from)))?;
    let mut b = Message::builder()
        .from(from)
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

/// Renders `mail` as an RFC 5322 message into `staged` (created, never
/// replaced, fsynced), ready to be sent as a [`Parcel`] of media type
/// `message/rfc822`. Returns its size in bytes.
pub fn render_mail(mail: &MailMessage, staged: &Path) -> Result<u64, MailError> {
    let bytes = build(mail)?.formatted();
    let io = |e: std::io::Error| MailError::Io(format!("{}: {e}", staged.display()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(staged)
        .map_err(io)?;
    f.write_all(&bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(bytes.len() as u64)
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new, unique Message-ID (`<quai.kind.time.pid.n@host>`).
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
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
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
        .take(240)
        .collect();
    let safe = safe.trim_start_matches('.');
    format!("{}.eml", if safe.is_empty() { "message" } else { safe })
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
        assert!(check_name(&n).is_ok());
        // Hostile ids still give a usable, visible, bounded name.
        for id in [
            "<../../etc/passwd>",
            "<...>",
            &format!("<{}@x>", "a".repeat(400)),
        ] {
            let n = eml_name(id);
            assert!(check_name(&n).is_ok() && !n.starts_with('.'), "{n}");
        }
    }
}
