//! An AS2 partner as a way out: one parcel becomes one AS2 message, built,
//! signed and encrypted as configured, POSTed to the partner's configured
//! URL without following redirects, and accepted only when its synchronous
//! MDN verifies (see [`crate::as2::send`]). The receipt is the MDN's
//! Message-ID.
//!
//! Idempotent on the name: AS2 cannot ask the partner what it holds, so with
//! `sent_records` set, each accepted parcel leaves a small record (the
//! SHA-256 of its bytes and the Message-IDs, written with the outbox rules)
//! named after the SHA-256 of its name. Sending that name again with the
//! same bytes answers from the record without posting (a crash between the
//! MDN and the spool's record must not give the partner a second message);
//! with other bytes it is a permanent failure. [`As2Outbound::forget`]
//! removes a record, for an operator's deliberate resend.
//!
//! Certificates and keys are read from disk at each send, so a renewed
//! certificate is taken without a restart.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::folder::publish_bytes;
use super::{check_name, Parcel, SendFailure, Sent};
use crate::as2::send::{self, OutboundConfig};
use crate::as2::{Identity, IdentityConfig, Partner, PartnerConfig};

/// Everything an AS2 send needs, as configured.
#[derive(Debug, Clone)]
pub struct As2OutboundConfig {
    /// quai's own identity (`[as2]`).
    pub identity: IdentityConfig,
    /// The partner (`[partner.as2]`).
    pub partner: PartnerConfig,
    /// Where and how to send (`[partner.as2] url`, sign, encrypt, ...).
    pub outbound: OutboundConfig,
    /// Folder of the per-name send records (e.g. `$QUAI_HOME/as2-out/sent`);
    /// `None`: no records, every send posts.
    pub sent_records: Option<PathBuf>,
}

/// An AS2 partner's endpoint (see the module documentation).
#[derive(Debug, Clone)]
pub struct As2Outbound {
    config: As2OutboundConfig,
    url: String,
}

/// What a record says.
struct Record {
    sha256: String,
    message_id: String,
    mdn_message_id: Option<String>,
}

impl Record {
    fn parse(text: &str) -> Option<Record> {
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
                .map(|v| v.trim().to_string())
        };
        Some(Record {
            sha256: field("sha256")?,
            message_id: field("message-id")?,
            mdn_message_id: field("mdn-message-id").filter(|v| !v.is_empty()),
        })
    }

    fn text(&self, name: &str) -> String {
        format!(
            "name {}\nsha256 {}\nmessage-id {}\nmdn-message-id {}\n",
            name.escape_default(),
            self.sha256,
            self.message_id,
            self.mdn_message_id.as_deref().unwrap_or("")
        )
    }
}

fn record_name(name: &str) -> String {
    format!("{}.sent", hex::encode(Sha256::digest(name.as_bytes())))
}

fn file_sha256(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

impl As2Outbound {
    /// Checks the configuration (certificates readable, settings coherent);
    /// every problem in one message.
    pub fn new(config: As2OutboundConfig) -> Result<As2Outbound, String> {
        let (_, _, out) = load(&config)?;
        Ok(As2Outbound {
            url: out.url,
            config,
        })
    }

    fn destination(&self, message_id: Option<&str>, mdn: Option<&str>) -> String {
        match (message_id, mdn) {
            (Some(m), Some(d)) => format!("as2 {} (message {m}, MDN {d})", self.url),
            (Some(m), None) => format!("as2 {} (message {m})", self.url),
            _ => format!("as2 {}", self.url),
        }
    }

    /// Removes the send record of `name` (so the next send posts again).
    pub fn forget(&self, name: &str) -> std::io::Result<()> {
        let Some(dir) = &self.config.sent_records else {
            return Ok(());
        };
        match std::fs::remove_file(dir.join(record_name(name))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => crate::landing::sync_dir(dir).or(Ok(())),
        }
    }

    /// Sends one parcel as one AS2 message; Ok once its MDN verified.
    pub async fn send(&self, parcel: &Parcel) -> Result<Sent, SendFailure> {
        let fail = |message: String, transient: bool| SendFailure {
            destination: self.destination(None, None),
            message: format!(
                "{} to {}: {message}",
                parcel.name,
                self.destination(None, None)
            ),
            transient,
        };
        check_name(&parcel.name).map_err(|m| fail(m, false))?;
        let staged = parcel.staged.clone();
        let sha256 = tokio::task::spawn_blocking(move || file_sha256(&staged))
            .await
            .map_err(|e| fail(format!("hash task failed: {e}"), true))?
            .map_err(|e| {
                fail(
                    format!("cannot read {}: {e}", parcel.staged.display()),
                    true,
                )
            })?;

        let record_path = self
            .config
            .sent_records
            .as_ref()
            .map(|d| d.join(record_name(&parcel.name)));
        if let Some(path) = &record_path {
            match tokio::fs::read_to_string(path).await {
                Ok(text) => {
                    let r = Record::parse(&text).ok_or_else(|| {
                        fail(format!("unreadable send record {}", path.display()), false)
                    })?;
                    if r.sha256 != sha256 {
                        return Err(fail(
                            format!(
                                "a different file of that name was already sent and \
                                 acknowledged (message {}); it is not sent again with other \
                                 bytes (record {})",
                                r.message_id,
                                path.display()
                            ),
                            false,
                        ));
                    }
                    tracing::info!(target: "quai::outbound", name = %parcel.name, url = %self.url,
                        message_id = %r.message_id, "already sent over AS2 and acknowledged; not sent again");
                    return Ok(Sent {
                        destination: self
                            .destination(Some(&r.message_id), r.mdn_message_id.as_deref()),
                        receipt: r.mdn_message_id,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(fail(format!("send record {}: {e}", path.display()), true)),
            }
        }

        let (identity, partner, out) = load(&self.config).map_err(|m| fail(m, false))?;
        let size = tokio::fs::metadata(&parcel.staged)
            .await
            .map_err(|e| fail(format!("{}: {e}", parcel.staged.display()), true))?
            .len();
        if size > out.max_bytes {
            return Err(fail(
                send::SendError::TooLarge {
                    name: parcel.name.clone(),
                    size,
                    max: out.max_bytes,
                }
                .to_string(),
                false,
            ));
        }
        let bytes = tokio::fs::read(&parcel.staged)
            .await
            .map_err(|e| fail(format!("{}: {e}", parcel.staged.display()), true))?;
        let sent = send::send(&identity, &partner, &out, &parcel.name, &bytes)
            .await
            .map_err(|e| fail(e.to_string(), e.is_transient()))?;
        tracing::info!(target: "quai::outbound", name = %parcel.name, url = %self.url,
            message_id = %sent.message_id, mdn_message_id = %sent.mdn_message_id.as_deref().unwrap_or(""),
            mic = %sent.mic, signed = sent.signed, encrypted = sent.encrypted,
            "sent over AS2; MDN verified");
        if let (Some(dir), Some(path)) = (&self.config.sent_records, &record_path) {
            let record = Record {
                sha256,
                message_id: sent.message_id.clone(),
                mdn_message_id: sent.mdn_message_id.clone(),
            };
            let (dir, text, name) = (
                dir.clone(),
                record.text(&parcel.name),
                record_name(&parcel.name),
            );
            let written = tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                publish_bytes(&dir, &name, text.as_bytes(), &dir).map_err(|e| e.message)
            })
            .await;
            if let Err(e) = written.map_err(|e| e.to_string()).and_then(|r| r) {
                // Delivered and acknowledged: the send stands; only a crash
                // before the spool's record could now repeat it.
                tracing::warn!(target: "quai::outbound", name = %parcel.name, record = %path.display(),
                    "sent over AS2, but the send record was not written: {e}");
            }
        }
        Ok(Sent {
            destination: self.destination(Some(&sent.message_id), sent.mdn_message_id.as_deref()),
            receipt: sent.mdn_message_id,
        })
    }
}

/// Identity, partner and resolved settings from the configuration.
fn load(config: &As2OutboundConfig) -> Result<(Identity, Partner, send::Outbound), String> {
    let identity = Identity::load(&config.identity).map_err(|e| e.to_string())?;
    let partner = Partner::load(&config.partner).map_err(|e| e.to_string())?;
    let out =
        send::Outbound::resolve(&config.outbound, partner.cert.is_some()).map_err(|errors| {
            let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            format!(
                "partner {} [partner.as2]: {}",
                config.partner.partner_id,
                list.join("; ")
            )
        })?;
    Ok((identity, partner, out))
}

impl As2Outbound {
    /// Where this outbound sends to, for logs.
    pub fn describe(&self) -> String {
        format!("as2 {}", self.url)
    }
}
