//! AS2 receiving (RFC 4130): `POST /as2`, S/MIME unwrapping, durable landing,
//! then the MDN.
//!
//! # How a message is taken in
//! 1. The request body is read with a hard cap (`max_body_bytes`, default
//!    1 GiB; 413 beyond it) and a body shorter than its Content-Length (a
//!    sender that disconnected mid-body) is a 400: nothing is stored.
//! 2. The partner is identified by AS2-From, and AS2-To must be our id;
//!    otherwise 403 and a log line (no MDN: we do not know whom to answer).
//! 3. The layers are opened outside in: CMS EnvelopedData (decrypted with our
//!    key), CompressedData (RFC 5402, before or after signing),
//!    `multipart/signed` or opaque SignedData (verified with exactly the
//!    partner's configured certificate). The partner's `require_signed` and
//!    `require_encrypted` are then enforced.
//! 4. The MIC is computed as RFC 4130 §7.3.1 says: for a signed message over
//!    the signed MIME part exactly as received (its header fields and body,
//!    i.e. the bytes between the first boundary line and the CRLF before the
//!    next); for an unsigned message over the payload's MIME entity (header
//!    fields and content). For an unsigned, unencrypted message those header
//!    fields travelled as HTTP headers: the MIC then covers
//!    `Content-Type`, `Content-Disposition` and `Content-Transfer-Encoding`
//!    (those present, in that order, as `Name: value` CRLF lines), an empty
//!    line, then the body. The algorithm is the first one we support in
//!    `signed-receipt-micalg`, else the signature's `micalg`, else SHA-256.
//! 5. The payload (the innermost entity's decoded content) is landed in the
//!    content-addressed store and handed to the [`FlowSink`]; only once the
//!    sink has committed is the MDN built and sent. If landing or the sink
//!    fails the answer is HTTP 503 and no MDN: the sender retries later.
//! 6. The MDN goes back in the HTTP response, or, when the request carries
//!    Receipt-Delivery-Option (and the partner is allowed asynchronous MDNs),
//!    the response is a bare 200 and the MDN is POSTed to that URL
//!    ([`PendingMdn`], handed to an outbox or retried by a spawned task) —
//!    only when it is the URL the operator configured for the partner
//!    ([`As2Settings::mdn_urls`]: `[partner.as2] mdn_url`, else `url`).
//!    Any other Receipt-Delivery-Option is answered synchronously and never
//!    called; so is every error MDN of a partner that must sign (the message
//!    was not proved to be its). MDN posts follow no redirects.
//!
//! # Repeated messages
//! The MDN of every processed message is kept as bytes in `mdn_dir`, named
//! `sha256(AS2-From "\n" Message-ID).mdn` (written atomically, fsynced). When
//! the sink reports [`Accepted::Duplicate`] the kept MDN is sent again, byte
//! for byte (its own Message-ID included), rather than a new one: MDNs
//! contain a fresh Message-ID, a date and a signature with a signing time, so
//! regenerating would not give the same receipt. Should the file be missing
//! (a crash between the sink's commit and the MDN write) a new MDN is built
//! and kept. Failed messages keep no MDN: a corrected resend is processed.
//! The key holds the sender, so one partner's Message-ID never reaches
//! another's kept MDN. A duplicate whose MIC differs from the kept MDN's
//! (same algorithm) is the Message-ID reused for other content: it gets an
//! error MDN, since that content was not processed.
//!
//! # Memory
//! A body up to `memory_body_bytes` (default 4 MiB) is read into memory; a
//! larger one is written to a temporary file in the store as it arrives and
//! memory-mapped once complete, so its pages are file-backed and can be
//! evicted. OpenSSL's CMS API then works on whole buffers: the layers are
//! opened by borrowing from the layer around them (the signed part of a
//! `multipart/signed`, the payload of a plain message, are slices of the
//! mapped body, never copies), and only decrypted, decompressed or opaque
//! SignedData content is held in memory (decompression capped at
//! `max_body_bytes`). So a plain or signed message costs almost no heap,
//! an encrypted one about its own size (plus OpenSSL's transient copy while
//! decrypting). At most `max_concurrent` requests (default 4) are processed
//! at once. The payload is written to the store in bounded chunks.
//!
//! # TLS
//! The endpoint speaks plain HTTP on the daemon's listener; put it behind a
//! TLS-terminating reverse proxy (nginx, HAProxy) for partners that require
//! HTTPS, or serve the router with a rustls acceptor. AS2 security does not
//! depend on TLS: signatures and encryption are end to end.

pub mod mdn;
pub mod mime;
pub mod send;
pub mod smime;

/// The OpenSSL binding whose types ([`X509`], [`PKey`]) this API uses, for
/// callers (and test harnesses) without a direct dependency on it.
pub use openssl;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{landing, Accepted, Channel, FlowSink, LandedFlow};
pub use mdn::{deliver_with_retries, send_async_mdn, MdnSendError, PendingMdn};
use mdn::{BuiltMdn, Disposition, ErrorModifier, MdnFields, MdnRequest};
use mime::{Entity, Header};
use smime::{MicAlg, SmimeError};

/// Default cap on a request body: 1 GiB, the platform's flow limit.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1 << 30;
/// Most S/MIME layers opened in one message (encrypt, compress, sign, ...).
const MAX_LAYERS: usize = 6;

/// Errors loading the AS2 configuration (keys and certificates).
#[derive(Debug, thiserror::Error)]
pub enum As2ConfigError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a valid PEM {what}: {reason}")]
    Pem {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("our AS2 certificate does not match our private key")]
    KeyMismatch,
    #[error("AS2 id {0:?} is configured for two partners")]
    DuplicateAs2Id(String),
    #[error("AS2 id must not be empty")]
    EmptyAs2Id,
    #[error("mdn_url {0:?}: {1}")]
    BadMdnUrl(String, String),
}

/// Our own AS2 identity as configured (`[as2]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    pub as2_id: String,
    /// PEM certificate we give partners (they encrypt to it, verify our MDNs).
    pub certificate: PathBuf,
    /// PEM private key (PKCS #8 or traditional).
    pub key: PathBuf,
}

/// One partner's AS2 settings as configured (`[partner.as2]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    /// quai's partner id (the `[[partner]] id`).
    #[serde(default)]
    pub partner_id: String,
    /// The partner's AS2 id (its AS2-From).
    pub as2_id: String,
    /// PEM certificate that signs the partner's messages.
    pub certificate: Option<PathBuf>,
    #[serde(default)]
    pub require_signed: bool,
    #[serde(default)]
    pub require_encrypted: bool,
    /// May the partner ask for an asynchronous MDN (a URL we will POST to)?
    #[serde(default = "yes")]
    pub allow_async_mdn: bool,
}

fn yes() -> bool {
    true
}

/// Our identity, loaded.
#[derive(Clone)]
pub struct Identity {
    pub as2_id: String,
    pub cert: X509,
    pub key: PKey<Private>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Identity")
            .field("as2_id", &self.as2_id)
            .finish_non_exhaustive()
    }
}

impl Identity {
    pub fn load(cfg: &IdentityConfig) -> Result<Identity, As2ConfigError> {
        let cert_pem = read(&cfg.certificate)?;
        let key_pem = read(&cfg.key)?;
        Identity::from_pem(&cfg.as2_id, &cert_pem, &key_pem).map_err(|e| match e {
            As2ConfigError::Pem { what, reason, .. } => As2ConfigError::Pem {
                path: if what == "certificate" {
                    cfg.certificate.clone()
                } else {
                    cfg.key.clone()
                },
                what,
                reason,
            },
            other => other,
        })
    }

    pub fn from_pem(
        as2_id: &str,
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<Identity, As2ConfigError> {
        if as2_id.trim().is_empty() {
            return Err(As2ConfigError::EmptyAs2Id);
        }
        let cert = X509::from_pem(cert_pem).map_err(|e| pem_err("certificate", e))?;
        let key = PKey::private_key_from_pem(key_pem).map_err(|e| pem_err("private key", e))?;
        let matches = cert
            .public_key()
            .map(|p| p.public_eq(&key))
            .unwrap_or(false);
        if !matches {
            return Err(As2ConfigError::KeyMismatch);
        }
        Ok(Identity {
            as2_id: as2_id.to_string(),
            cert,
            key,
        })
    }
}

/// A partner, loaded.
#[derive(Debug, Clone)]
pub struct Partner {
    pub partner_id: String,
    pub as2_id: String,
    pub cert: Option<X509>,
    pub require_signed: bool,
    pub require_encrypted: bool,
    pub allow_async_mdn: bool,
}

impl Partner {
    pub fn load(cfg: &PartnerConfig) -> Result<Partner, As2ConfigError> {
        let cert = match &cfg.certificate {
            Some(p) => Some(X509::from_pem(&read(p)?).map_err(|e| As2ConfigError::Pem {
                path: p.clone(),
                what: "certificate",
                reason: e.to_string(),
            })?),
            None => None,
        };
        if cfg.as2_id.trim().is_empty() {
            return Err(As2ConfigError::EmptyAs2Id);
        }
        Ok(Partner {
            partner_id: if cfg.partner_id.is_empty() {
                cfg.as2_id.clone()
            } else {
                cfg.partner_id.clone()
            },
            as2_id: cfg.as2_id.clone(),
            cert,
            require_signed: cfg.require_signed,
            require_encrypted: cfg.require_encrypted,
            allow_async_mdn: cfg.allow_async_mdn,
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, As2ConfigError> {
    fs::read(path).map_err(|source| As2ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn pem_err(what: &'static str, e: openssl::error::ErrorStack) -> As2ConfigError {
    As2ConfigError::Pem {
        path: PathBuf::new(),
        what,
        reason: e.to_string(),
    }
}

/// How asynchronous MDNs leave when the router answers a request.
#[derive(Debug, Clone)]
pub enum AsyncMdnDelivery {
    /// A spawned task POSTs with retries (not persisted across restarts).
    Spawn {
        attempts: u32,
        first_delay: Duration,
    },
    /// Hand each MDN to an outbox (e.g. the daemon's spool-backed one).
    Outbox(tokio::sync::mpsc::UnboundedSender<PendingMdn>),
}

/// A request body: in memory, or spilled to a temporary file and mapped.
enum MessageBody {
    Memory(Bytes),
    // Field order matters: the map is dropped before the file is removed.
    Mapped {
        map: memmap2::Mmap,
        _file: tempfile::TempPath,
    },
}

impl std::ops::Deref for MessageBody {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            MessageBody::Memory(b) => b,
            MessageBody::Mapped { map, .. } => map,
        }
    }
}

/// Called with the outcome of every request (metrics, audit logs).
#[derive(Clone)]
pub struct OutcomeObserver(pub Arc<dyn Fn(&As2Outcome) + Send + Sync>);

impl std::fmt::Debug for OutcomeObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutcomeObserver")
    }
}

/// Everything the receiver needs.
#[derive(Debug, Clone)]
pub struct As2Settings {
    pub identity: Identity,
    pub partners: Vec<Partner>,
    /// The content-addressed flow store (see [`crate::landing`]).
    pub store: PathBuf,
    /// Where MDNs of processed messages are kept for resending.
    pub mdn_dir: PathBuf,
    pub max_body_bytes: u64,
    /// Bodies up to this size are read into memory; larger ones go to a
    /// temporary file in the store, memory-mapped.
    pub memory_body_bytes: usize,
    /// A body that sends nothing for this long is abandoned (408).
    pub body_idle_timeout: Duration,
    /// Requests processed at once (an encrypted one holds about its size).
    pub max_concurrent: usize,
    pub reporting_ua: String,
    pub async_delivery: AsyncMdnDelivery,
    /// The only URLs asynchronous MDNs are posted to, by partner id
    /// (`[partner.as2] mdn_url`, else the partner's `url`): see
    /// [`As2Settings::allow_mdn_url`]. A partner missing here, or one whose
    /// Receipt-Delivery-Option names another URL, gets its MDN
    /// synchronously, in the HTTP response: quai never calls an address
    /// named by a message.
    pub mdn_urls: std::collections::HashMap<String, String>,
    /// Told of every request's outcome.
    pub observer: Option<OutcomeObserver>,
}

impl As2Settings {
    /// Load our identity and every partner's certificate, with defaults
    /// for the rest (see [`As2Settings::new`]). Every error is returned, not
    /// just the first, so a configuration check can report them all.
    pub fn load(
        identity: &IdentityConfig,
        partners: &[PartnerConfig],
        store: PathBuf,
    ) -> Result<As2Settings, Vec<As2ConfigError>> {
        let mut errors = Vec::new();
        let identity = Identity::load(identity).map_err(|e| errors.push(e)).ok();
        let mut loaded = Vec::new();
        for p in partners {
            match Partner::load(p) {
                Ok(p) => loaded.push(p),
                Err(e) => errors.push(e),
            }
        }
        let mut seen = std::collections::HashSet::new();
        for p in &loaded {
            if !seen.insert(p.as2_id.as_str()) {
                errors.push(As2ConfigError::DuplicateAs2Id(p.as2_id.clone()));
            }
        }
        match identity {
            Some(identity) if errors.is_empty() => Ok(As2Settings::new(identity, loaded, store)),
            _ => Err(errors),
        }
    }

    /// Defaults: 1 GiB bodies, 4 concurrent requests, MDNs kept in
    /// `<store>/../as2-mdn`, asynchronous MDNs retried 5 times from 2 s.
    pub fn new(identity: Identity, partners: Vec<Partner>, store: PathBuf) -> As2Settings {
        let mdn_dir = store
            .parent()
            .map(|p| p.join("as2-mdn"))
            .unwrap_or_else(|| PathBuf::from("as2-mdn"));
        As2Settings {
            identity,
            partners,
            store,
            mdn_dir,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            memory_body_bytes: 4 << 20,
            body_idle_timeout: Duration::from_secs(120),
            max_concurrent: 4,
            reporting_ua: format!("quai AS2 receiver {}", env!("CARGO_PKG_VERSION")),
            async_delivery: AsyncMdnDelivery::Spawn {
                attempts: 5,
                first_delay: Duration::from_secs(2),
            },
            observer: None,
            mdn_urls: std::collections::HashMap::new(),
        }
    }

    /// Allow asynchronous MDNs for `partner_id`, to `url` only (an http or
    /// https URL, as configured by the operator).
    pub fn allow_mdn_url(&mut self, partner_id: &str, url: &str) -> Result<(), As2ConfigError> {
        let parsed = reqwest::Url::parse(url.trim())
            .map_err(|e| As2ConfigError::BadMdnUrl(url.to_string(), e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(As2ConfigError::BadMdnUrl(
                url.to_string(),
                "not an http or https URL".into(),
            ));
        }
        self.mdn_urls
            .insert(partner_id.to_string(), url.trim().to_string());
        Ok(())
    }
}

/// Do two URLs name the same resource (scheme, host and default port
/// normalised)? Anything unparsable is different.
fn same_url(a: &str, b: &str) -> bool {
    match (reqwest::Url::parse(a.trim()), reqwest::Url::parse(b.trim())) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// What became of a request (for logs, metrics and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum As2Outcome {
    /// Stored and committed by the sink; MDN `processed`.
    Accepted {
        accepted: Accepted,
        sha256: String,
        partner_id: String,
    },
    /// Understood but refused; MDN `processed/error`.
    Failed {
        modifier: ErrorModifier,
        reason: String,
    },
    /// Unknown partner or wrong recipient (HTTP 403).
    Refused(String),
    /// Malformed request (HTTP 400) or too large (413).
    BadRequest(String),
    /// Landing or the sink failed (HTTP 503): the sender should retry.
    Unavailable(String),
}

impl As2Outcome {
    /// A short label for metrics: `accepted`, `duplicate`, `failed`,
    /// `refused`, `bad_request` or `unavailable`.
    pub fn label(&self) -> &'static str {
        match self {
            As2Outcome::Accepted {
                accepted: Accepted::New { .. },
                ..
            } => "accepted",
            As2Outcome::Accepted { .. } => "duplicate",
            As2Outcome::Failed { .. } => "failed",
            As2Outcome::Refused(_) => "refused",
            As2Outcome::BadRequest(_) => "bad_request",
            As2Outcome::Unavailable(_) => "unavailable",
        }
    }
}

/// The answer to one AS2 request.
#[derive(Debug, Clone)]
pub struct As2Reply {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// An asynchronous MDN to deliver after the response.
    pub async_mdn: Option<PendingMdn>,
    pub outcome: As2Outcome,
}

impl As2Reply {
    fn plain(status: StatusCode, message: String, outcome: As2Outcome) -> As2Reply {
        As2Reply {
            status,
            headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
            body: format!("{message}\n").into_bytes(),
            async_mdn: None,
            outcome,
        }
    }
}

impl IntoResponse for As2Reply {
    fn into_response(self) -> Response {
        let mut builder = Response::builder().status(self.status);
        for (n, v) in &self.headers {
            builder = builder.header(n.as_str(), v.as_str());
        }
        builder
            .body(Body::from(self.body))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }
}

/// The AS2 receiver: settings, the sink, and a bound on concurrent work.
pub struct As2Receiver<S: FlowSink> {
    settings: As2Settings,
    sink: Arc<S>,
    permits: tokio::sync::Semaphore,
}

/// The router mounting `POST /as2`.
pub fn router<S: FlowSink>(receiver: Arc<As2Receiver<S>>) -> axum::Router {
    axum::Router::new()
        .route("/as2", axum::routing::post(handle::<S>))
        .with_state(receiver)
}

async fn handle<S: FlowSink>(
    State(receiver): State<Arc<As2Receiver<S>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let reply = receiver.receive_http(headers, body).await;
    if let Some(pending) = reply.async_mdn.clone() {
        receiver.dispatch_async(pending);
    }
    reply.into_response()
}

impl<S: FlowSink> As2Receiver<S> {
    pub fn new(settings: As2Settings, sink: Arc<S>) -> Result<As2Receiver<S>, As2ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for p in &settings.partners {
            if !seen.insert(p.as2_id.as_str()) {
                return Err(As2ConfigError::DuplicateAs2Id(p.as2_id.clone()));
            }
        }
        let permits = tokio::sync::Semaphore::new(settings.max_concurrent.max(1));
        Ok(As2Receiver {
            settings,
            sink,
            permits,
        })
    }

    pub fn settings(&self) -> &As2Settings {
        &self.settings
    }

    /// Send an asynchronous MDN the configured way.
    pub fn dispatch_async(&self, pending: PendingMdn) {
        match &self.settings.async_delivery {
            AsyncMdnDelivery::Outbox(tx) => {
                if let Err(e) = tx.send(pending) {
                    tracing::error!(message_id = %e.0.original_message_id, "AS2 MDN outbox closed; asynchronous MDN dropped");
                }
            }
            AsyncMdnDelivery::Spawn {
                attempts,
                first_delay,
            } => {
                let (attempts, first_delay) = (*attempts, *first_delay);
                tokio::spawn(async move {
                    match deliver_with_retries(&pending, attempts, first_delay).await {
                        Ok(()) => {
                            tracing::info!(url = %pending.url, message_id = %pending.original_message_id, "asynchronous MDN delivered")
                        }
                        Err(e) => {
                            tracing::error!(url = %pending.url, message_id = %pending.original_message_id, error = %e, "asynchronous MDN not delivered")
                        }
                    }
                });
            }
        }
    }

    fn observe(&self, reply: As2Reply) -> As2Reply {
        if let Some(o) = &self.settings.observer {
            (o.0)(&reply.outcome);
        }
        reply
    }

    /// Read an HTTP body with the size cap, then [`Self::receive`].
    pub async fn receive_http(&self, headers: HeaderMap, body: Body) -> As2Reply {
        let reply = self.receive_http_unobserved(headers, body).await;
        self.observe(reply)
    }

    async fn receive_http_unobserved(&self, headers: HeaderMap, body: Body) -> As2Reply {
        let max = self.settings.max_body_bytes;
        let declared = match content_length(&headers) {
            Ok(v) => v,
            Err(m) => return bad_request(m),
        };
        if declared.is_some_and(|n| n > max) {
            return too_large(max);
        }
        // Refuse unknown senders before reading their body.
        if let Err(reply) = self.identify(&headers) {
            return *reply;
        }
        // No permit is held while the body arrives, so slow senders cannot
        // starve the others; memory per connection is bounded by
        // `memory_body_bytes`.
        let body = match self.read_body(body, declared).await {
            Ok(b) => b,
            Err(reply) => return *reply,
        };
        let Ok(_permit) = self.permits.acquire().await else {
            return As2Reply::plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting down".into(),
                As2Outcome::Unavailable("shutting down".into()),
            );
        };
        self.receive_inner(&headers, Arc::new(body)).await
    }

    /// Read the body with the size cap: in memory up to
    /// `memory_body_bytes`, beyond that into a temporary file in the store
    /// (named like landing's temporaries, so a crash leaves nothing that
    /// `landing::sweep_temporaries` does not remove), mapped once complete.
    async fn read_body(
        &self,
        mut body: Body,
        declared: Option<u64>,
    ) -> Result<MessageBody, Box<As2Reply>> {
        use tokio::io::AsyncWriteExt;
        let max = self.settings.max_body_bytes;
        let spill_at = self.settings.memory_body_bytes as u64;
        let mut buf: Vec<u8> =
            Vec::with_capacity(declared.unwrap_or(0).min(spill_at).min(1 << 20) as usize);
        let mut file: Option<(tokio::fs::File, tempfile::TempPath)> = None;
        let mut total: u64 = 0;
        let io_err = |e: std::io::Error| {
            Box::new(As2Reply::plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily unable to receive the message; please retry".into(),
                As2Outcome::Unavailable(format!("spooling the request body failed: {e}")),
            ))
        };
        loop {
            let frame =
                match tokio::time::timeout(self.settings.body_idle_timeout, body.frame()).await {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(_) => {
                        let m = format!(
                            "request body stalled for {:?} after {total} bytes",
                            self.settings.body_idle_timeout
                        );
                        tracing::warn!(reason = %m, "AS2 request abandoned");
                        return Err(Box::new(As2Reply::plain(
                            StatusCode::REQUEST_TIMEOUT,
                            m.clone(),
                            As2Outcome::BadRequest(m),
                        )));
                    }
                };
            let data = match frame {
                Ok(frame) => match frame.into_data() {
                    Ok(d) => d,
                    Err(_) => continue,
                },
                Err(e) => {
                    return Err(Box::new(bad_request(format!(
                        "request body cut short after {total} bytes{}: {e}",
                        declared.map(|n| format!(" of {n}")).unwrap_or_default()
                    ))))
                }
            };
            total += data.len() as u64;
            if total > max {
                return Err(Box::new(too_large(max)));
            }
            if file.is_none() && total > spill_at {
                fs::create_dir_all(&self.settings.store).map_err(io_err)?;
                let named = tempfile::Builder::new()
                    .prefix(".landing-as2-")
                    .tempfile_in(&self.settings.store)
                    .map_err(io_err)?;
                let (f, path) = named.into_parts();
                let mut f = tokio::fs::File::from_std(f);
                f.write_all(&buf).await.map_err(io_err)?;
                buf = Vec::new();
                file = Some((f, path));
            }
            match &mut file {
                Some((f, _)) => f.write_all(&data).await.map_err(io_err)?,
                None => buf.extend_from_slice(&data),
            }
        }
        match file {
            None => Ok(MessageBody::Memory(Bytes::from(buf))),
            Some((mut f, path)) => {
                f.flush().await.map_err(io_err)?;
                let f = f.into_std().await;
                // SAFETY: the file is our own temporary (created exclusively,
                // mode 0600, in the store); nothing writes or truncates it
                // while it is mapped, and it is removed only after the map
                // is dropped (field order in `MessageBody::Mapped`).
                let map = unsafe { memmap2::Mmap::map(&f) }.map_err(io_err)?;
                Ok(MessageBody::Mapped { map, _file: path })
            }
        }
    }

    /// Process one AS2 request given its headers and complete body (no HTTP
    /// needed). A Content-Length that does not match the body is refused.
    pub async fn receive(&self, headers: &HeaderMap, body: Bytes) -> As2Reply {
        let reply = self.receive_unobserved(headers, body).await;
        self.observe(reply)
    }

    async fn receive_unobserved(&self, headers: &HeaderMap, body: Bytes) -> As2Reply {
        if body.len() as u64 > self.settings.max_body_bytes {
            return too_large(self.settings.max_body_bytes);
        }
        let Ok(_permit) = self.permits.acquire().await else {
            return As2Reply::plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting down".into(),
                As2Outcome::Unavailable("shutting down".into()),
            );
        };
        self.receive_inner(headers, Arc::new(MessageBody::Memory(body)))
            .await
    }

    /// Check the required AS2 headers and identify the partner: the
    /// partner, the Message-ID and the Content-Type, or the refusal.
    fn identify(&self, headers: &HeaderMap) -> Result<(&Partner, String, String), Box<As2Reply>> {
        let required = |name: &str| -> Result<String, String> {
            match header_str(headers, name)? {
                Some(v) if !v.is_empty() => Ok(v),
                _ => Err(format!("missing header {name}")),
            }
        };
        let parsed = (|| -> Result<_, String> {
            Ok((
                required("as2-from")?,
                required("as2-to")?,
                required("message-id")?,
                required("content-type")?,
            ))
        })();
        let (from, to, message_id, content_type) = match parsed {
            Ok(v) => v,
            Err(m) => return Err(Box::new(bad_request(m))),
        };
        let from = mime::unquote(&from);
        let to = mime::unquote(&to);
        let message_id = mdn::clean_header_value(&message_id);

        if to != self.settings.identity.as2_id {
            let m = format!("AS2-To {to:?} is not our AS2 id");
            tracing::warn!(as2_from = %from, as2_to = %to, message_id = %message_id, "AS2 message refused: {m}");
            return Err(Box::new(As2Reply::plain(
                StatusCode::FORBIDDEN,
                m.clone(),
                As2Outcome::Refused(m),
            )));
        }
        let Some(partner) = self.settings.partners.iter().find(|p| p.as2_id == from) else {
            let m = format!("unknown AS2-From {from:?}");
            tracing::warn!(as2_from = %from, message_id = %message_id, "AS2 message refused: {m}");
            return Err(Box::new(As2Reply::plain(
                StatusCode::FORBIDDEN,
                m.clone(),
                As2Outcome::Refused(m),
            )));
        };

        Ok((partner, message_id, content_type))
    }

    async fn receive_inner(&self, headers: &HeaderMap, body: Arc<MessageBody>) -> As2Reply {
        match content_length(headers) {
            Ok(Some(n)) if n != body.len() as u64 => {
                return bad_request(format!(
                    "request body cut short: Content-Length {n}, {} bytes received",
                    body.len()
                ))
            }
            Ok(_) => {}
            Err(m) => return bad_request(m),
        }

        let (partner, message_id, content_type) = match self.identify(headers) {
            Ok(v) => v,
            Err(reply) => return *reply,
        };
        let get = |name: &str| header_str(headers, name);
        let opt = |name: &str| get(name).ok().flatten();
        let mut request = MdnRequest::from_headers(
            opt("disposition-notification-to").as_deref(),
            opt("disposition-notification-options").as_deref(),
            opt("receipt-delivery-option").as_deref(),
        );
        if request.async_url.is_some() && !partner.allow_async_mdn {
            tracing::warn!(partner = %partner.partner_id, message_id = %message_id,
                "partner may not ask for asynchronous MDNs; answering synchronously");
            request.async_url = None;
        }
        // An asynchronous MDN goes only to the URL the operator configured
        // for the partner; a message naming another is answered
        // synchronously and the address it names is never called.
        if let Some(asked) = request.async_url.take() {
            match self.settings.mdn_urls.get(&partner.partner_id) {
                Some(configured) if same_url(&asked, configured) => {
                    request.async_url = Some(configured.clone());
                }
                Some(_) => {
                    tracing::warn!(partner = %partner.partner_id, message_id = %message_id,
                        asked = ?asked, "Receipt-Delivery-Option is not the partner's configured mdn_url; answering synchronously, the URL is not called");
                }
                None => {
                    tracing::warn!(partner = %partner.partner_id, message_id = %message_id,
                        asked = ?asked, "asynchronous MDN asked but no mdn_url (or url) is configured for the partner; answering synchronously");
                }
            }
        }

        // The MIME header fields that travelled as HTTP headers.
        let mut top = vec![Header {
            name: "Content-Type".into(),
            value: content_type,
        }];
        for name in ["Content-Disposition", "Content-Transfer-Encoding"] {
            if let Some(v) = opt(name) {
                top.push(Header {
                    name: name.into(),
                    value: v,
                });
            }
        }

        // Open the layers and land the payload (CPU and disk) off the
        // async threads.
        let opened = {
            let identity = self.settings.identity.clone();
            let partner = partner.clone();
            let max = self.settings.max_body_bytes;
            let mic_pref = request.mic_alg.clone();
            let store = self.settings.store.clone();
            let body = body.clone();
            tokio::task::spawn_blocking(move || {
                open_message(&identity, &partner, &top, &body, mic_pref, max, &store)
            })
            .await
            .unwrap_or_else(|e| {
                Err(OpenError::Message(Failure::new(
                    ErrorModifier::UnexpectedProcessingError,
                    format!("internal error: {e}"),
                )))
            })
        };
        drop(body);
        let msg = match opened {
            Ok(m) => m,
            Err(OpenError::Message(f)) => {
                tracing::warn!(partner = %partner.partner_id, message_id = %message_id,
                    disposition = f.modifier.as_str(), reason = %f.reason, "AS2 message not processed");
                return self.answer_failure(partner, &message_id, &request, f);
            }
            Err(OpenError::Landing(e)) => {
                return unavailable(partner, &message_id, format!("landing failed: {e}"))
            }
        };
        let stored = msg.stored;
        let flow = LandedFlow {
            partner: partner.partner_id.clone(),
            channel: Channel::As2,
            original_name: msg
                .filename
                .unwrap_or_else(|| message_id.trim_matches(['<', '>']).to_string()),
            sha256: stored.sha256.clone(),
            size: stored.size,
            stored_path: stored.path.clone(),
            complete: stored.complete,
            as2_message_id: Some(message_id.clone()),
        };
        let accepted = match self.sink.accept(flow).await {
            Ok(a) => a,
            Err(e) => return unavailable(partner, &message_id, e.to_string()),
        };
        tracing::info!(partner = %partner.partner_id, message_id = %message_id, sha256 = %stored.sha256,
            size = stored.size, signed = msg.signed, encrypted = msg.encrypted, compressed = msg.compressed,
            duplicate = matches!(accepted, Accepted::Duplicate { .. }), "AS2 message stored");

        let outcome = As2Outcome::Accepted {
            accepted,
            sha256: stored.sha256,
            partner_id: partner.partner_id.clone(),
        };
        if !request.wanted {
            return As2Reply {
                status: StatusCode::OK,
                headers: vec![("AS2-Version".into(), "1.2".into())],
                body: Vec::new(),
                async_mdn: None,
                outcome,
            };
        }
        let mdn_path = self.mdn_path(&partner.as2_id, &message_id);
        let kept = match accepted {
            Accepted::Duplicate { .. } => fs::read(&mdn_path)
                .ok()
                .and_then(|b| BuiltMdn::from_bytes(&b).ok()),
            Accepted::New { .. } => None,
        };
        // A Message-ID this partner already used, for other content: that
        // content was not processed (the spool holds it as a duplicate), so
        // it never gets the first message's "processed".
        if let Some(k) = &kept {
            if k.mic_differs(&msg.mic) {
                tracing::warn!(partner = %partner.partner_id, message_id = %message_id,
                    "AS2 Message-ID reused by the partner for other content: not processed");
                let mut f = Failure::new(
                    ErrorModifier::UnexpectedProcessingError,
                    "this Message-ID was already used for another message: the content was not processed; send it under a new Message-ID",
                );
                f.mic = Some(msg.mic);
                return self.answer_failure(partner, &message_id, &request, f);
            }
        }
        let built = match kept {
            Some(m) => m,
            None => {
                let fields = MdnFields {
                    our_as2_id: &self.settings.identity.as2_id,
                    partner_as2_id: &partner.as2_id,
                    original_message_id: &message_id,
                    disposition: Disposition::Processed,
                    mic: Some(msg.mic),
                    reporting_ua: &self.settings.reporting_ua,
                    explanation: "",
                };
                let built = match self.build_mdn(&fields, &request) {
                    Ok(b) => b,
                    Err(e) => {
                        return unavailable(
                            partner,
                            &message_id,
                            format!("MDN signing failed: {e}"),
                        )
                    }
                };
                if let Err(e) = keep_mdn(&mdn_path, &built) {
                    tracing::error!(path = %mdn_path.display(), error = %e, "could not keep the MDN for resending");
                }
                built
            }
        };
        self.deliver(partner, &message_id, &request, built, outcome)
    }

    fn answer_failure(
        &self,
        partner: &Partner,
        message_id: &str,
        request: &MdnRequest,
        f: Failure,
    ) -> As2Reply {
        let outcome = As2Outcome::Failed {
            modifier: f.modifier,
            reason: f.reason.clone(),
        };
        // A partner that must sign gets the error of an unverified message
        // in the response only: nothing is posted for a message nobody
        // proved came from it.
        let sync_only;
        let request = if partner.require_signed && request.async_url.is_some() {
            sync_only = MdnRequest {
                async_url: None,
                ..request.clone()
            };
            &sync_only
        } else {
            request
        };
        if !request.wanted {
            let mut r = As2Reply::plain(
                StatusCode::BAD_REQUEST,
                format!("processed/error: {}: {}", f.modifier.as_str(), f.reason),
                outcome,
            );
            r.headers.push(("AS2-Version".into(), "1.2".into()));
            return r;
        }
        let fields = MdnFields {
            our_as2_id: &self.settings.identity.as2_id,
            partner_as2_id: &partner.as2_id,
            original_message_id: message_id,
            disposition: Disposition::Error(f.modifier),
            mic: f.mic,
            reporting_ua: &self.settings.reporting_ua,
            explanation: &f.reason,
        };
        match self.build_mdn(&fields, request) {
            Ok(built) => self.deliver(partner, message_id, request, built, outcome),
            Err(e) => unavailable(partner, message_id, format!("MDN signing failed: {e}")),
        }
    }

    fn build_mdn(
        &self,
        fields: &MdnFields<'_>,
        request: &MdnRequest,
    ) -> Result<BuiltMdn, SmimeError> {
        let id = &self.settings.identity;
        mdn::build(fields, request.signed.then_some((&id.cert, &id.key)))
    }

    fn deliver(
        &self,
        partner: &Partner,
        message_id: &str,
        request: &MdnRequest,
        built: BuiltMdn,
        outcome: As2Outcome,
    ) -> As2Reply {
        match &request.async_url {
            Some(url) => {
                tracing::info!(partner = %partner.partner_id, message_id = %message_id, url = %url, "asynchronous MDN queued");
                As2Reply {
                    status: StatusCode::OK,
                    headers: vec![
                        ("AS2-Version".into(), "1.2".into()),
                        ("Content-Type".into(), "text/plain; charset=us-ascii".into()),
                    ],
                    body: b"AS2 message received; the MDN follows asynchronously.\r\n".to_vec(),
                    async_mdn: Some(PendingMdn {
                        url: url.clone(),
                        headers: built.headers,
                        body: built.body,
                        original_message_id: message_id.to_string(),
                        flow_id: match &outcome {
                            As2Outcome::Accepted { accepted, .. } => Some(match accepted {
                                Accepted::New { flow_id } | Accepted::Duplicate { flow_id, .. } => {
                                    *flow_id
                                }
                            }),
                            _ => None,
                        },
                    }),
                    outcome,
                }
            }
            None => As2Reply {
                status: StatusCode::OK,
                headers: built.headers,
                body: built.body,
                async_mdn: None,
                outcome,
            },
        }
    }

    fn mdn_path(&self, as2_from: &str, message_id: &str) -> PathBuf {
        let mut h = Sha256::new();
        h.update(as2_from.as_bytes());
        h.update(b"\n");
        h.update(message_id.as_bytes());
        self.settings
            .mdn_dir
            .join(format!("{}.mdn", hex::encode(h.finalize())))
    }
}

/// Keep an MDN for resending: temp file, fsync, rename (never overwrites).
fn keep_mdn(path: &Path, mdn: &BuiltMdn) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&mdn.to_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        landing::sync_dir(dir)
    };
    let r = write();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}

/// A header's trimmed value; an error when it is not visible ASCII.
fn header_str(headers: &HeaderMap, name: &str) -> Result<Option<String>, String> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim().to_string()))
            .map_err(|_| format!("header {name} is not ASCII")),
    }
}

fn content_length(headers: &HeaderMap) -> Result<Option<u64>, String> {
    match headers.get(axum::http::header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| "invalid Content-Length".to_string()),
    }
}

fn bad_request(m: String) -> As2Reply {
    tracing::warn!(reason = %m, "malformed AS2 request refused");
    As2Reply::plain(
        StatusCode::BAD_REQUEST,
        m.clone(),
        As2Outcome::BadRequest(m),
    )
}

fn too_large(max: u64) -> As2Reply {
    let m = format!("request body larger than the limit of {max} bytes");
    tracing::warn!(reason = %m, "AS2 request refused");
    As2Reply::plain(
        StatusCode::PAYLOAD_TOO_LARGE,
        m.clone(),
        As2Outcome::BadRequest(m),
    )
}

fn unavailable(partner: &Partner, message_id: &str, m: String) -> As2Reply {
    tracing::error!(partner = %partner.partner_id, message_id = %message_id, reason = %m,
        "AS2 message not committed; the sender should retry");
    As2Reply::plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily unable to store the message; please retry".into(),
        As2Outcome::Unavailable(m),
    )
}

/// Why a message could not be processed, with its MDN modifier.
#[derive(Debug)]
struct Failure {
    modifier: ErrorModifier,
    reason: String,
    /// The MIC, when it could be computed before the failure.
    mic: Option<(String, String)>,
}

impl Failure {
    fn new(modifier: ErrorModifier, reason: impl Into<String>) -> Failure {
        Failure {
            modifier,
            reason: reason.into(),
            mic: None,
        }
    }
}

impl From<SmimeError> for Failure {
    fn from(e: SmimeError) -> Failure {
        let modifier = match &e {
            SmimeError::Decryption(_) => ErrorModifier::DecryptionFailed,
            SmimeError::Integrity(_) => ErrorModifier::IntegrityCheckFailed,
            SmimeError::Authentication(_) => ErrorModifier::AuthenticationFailed,
            SmimeError::Decompression(_) => ErrorModifier::DecompressionFailed,
            SmimeError::Signing(_) | SmimeError::Encryption(_) => {
                ErrorModifier::UnexpectedProcessingError
            }
        };
        Failure::new(modifier, e.to_string())
    }
}

fn mime_failure(e: mime::MimeError) -> Failure {
    Failure::new(
        ErrorModifier::UnexpectedProcessingError,
        format!("malformed MIME: {e}"),
    )
}

/// Why opening a message stopped.
#[derive(Debug)]
enum OpenError {
    /// The message is at fault: answer with an error MDN.
    Message(Failure),
    /// Our store failed: answer 503, the sender retries.
    Landing(String),
}

impl From<Failure> for OpenError {
    fn from(f: Failure) -> OpenError {
        OpenError::Message(f)
    }
}

impl From<SmimeError> for OpenError {
    fn from(e: SmimeError) -> OpenError {
        OpenError::Message(e.into())
    }
}

/// The message with its layers opened and its payload landed.
#[derive(Debug)]
struct Opened {
    stored: landing::Stored,
    filename: Option<String>,
    signed: bool,
    encrypted: bool,
    compressed: bool,
    /// Base64 MIC and algorithm name.
    mic: (String, String),
}

/// What the layers found so far, and what is needed to open them.
struct Opener<'a> {
    identity: &'a Identity,
    partner: &'a Partner,
    mic_pref: Option<MicAlg>,
    max_out: u64,
    store: &'a Path,
    signed: bool,
    encrypted: bool,
    compressed: bool,
    mic: Option<(String, String)>,
}

/// Open every S/MIME layer of a message, outside in, and land the payload.
/// Each layer borrows from the one around it: only decrypted, decompressed
/// or opaque-signed content is copied, never the message itself.
fn open_message(
    identity: &Identity,
    partner: &Partner,
    top_headers: &[Header],
    body: &[u8],
    mic_pref: Option<MicAlg>,
    max_out: u64,
    store: &Path,
) -> Result<Opened, OpenError> {
    let mut top_block = Vec::new();
    for h in top_headers {
        top_block.extend_from_slice(format!("{}: {}\r\n", h.name, h.value).as_bytes());
    }
    top_block.extend_from_slice(b"\r\n");
    let mut opener = Opener {
        identity,
        partner,
        mic_pref,
        max_out,
        store,
        signed: false,
        encrypted: false,
        compressed: false,
        mic: None,
    };
    opener.entity(top_headers, &top_block, body, 0)
}

impl Opener<'_> {
    /// Open content produced by a layer: normally a MIME entity, but some
    /// senders wrap the bare payload, which then gets a neutral header.
    fn buffer(&mut self, content: &[u8], depth: usize) -> Result<Opened, OpenError> {
        match mime::as_entity(content) {
            Some(e) => {
                let split = content.len() - e.body.len();
                self.entity(&e.headers, &content[..split], e.body, depth)
            }
            None => {
                let bare = [Header {
                    name: "Content-Type".into(),
                    value: "application/octet-stream".into(),
                }];
                let block = b"Content-Type: application/octet-stream\r\n\r\n";
                self.entity(&bare, block, content, depth)
            }
        }
    }

    fn entity(
        &mut self,
        headers: &[Header],
        header_block: &[u8],
        body: &[u8],
        depth: usize,
    ) -> Result<Opened, OpenError> {
        if depth >= MAX_LAYERS {
            return Err(Failure::new(
                ErrorModifier::UnexpectedProcessingError,
                "too many nested S/MIME layers",
            )
            .into());
        }
        let entity = Entity {
            headers: headers.to_vec(),
            raw: body,
            body,
        };
        let ct = entity.content_type().map_err(mime_failure)?;
        if ct.is("application/pkcs7-mime") || ct.is("application/x-pkcs7-mime") {
            let der = entity.decoded_body().map_err(mime_failure)?;
            let kind = match ct.param("smime-type").map(|s| s.to_ascii_lowercase()) {
                Some(t) if t == "enveloped-data" => smime::CmsKind::Enveloped,
                Some(t) if t == "compressed-data" => smime::CmsKind::Compressed,
                Some(t) if t == "signed-data" => smime::CmsKind::Signed,
                _ => smime::cms_kind(&der),
            };
            let content = match kind {
                smime::CmsKind::Enveloped => {
                    if self.encrypted {
                        return Err(Failure::new(
                            ErrorModifier::UnexpectedProcessingError,
                            "encrypted twice",
                        )
                        .into());
                    }
                    self.encrypted = true;
                    smime::decrypt(&der, &self.identity.key, &self.identity.cert)?
                }
                smime::CmsKind::Compressed => {
                    if self.compressed {
                        return Err(Failure::new(
                            ErrorModifier::UnexpectedProcessingError,
                            "compressed twice",
                        )
                        .into());
                    }
                    self.compressed = true;
                    smime::decompress(&der, self.max_out)?
                }
                smime::CmsKind::Signed => {
                    let cert = partner_cert(self.partner, self.signed)?;
                    let content = smime::verify_opaque(&der, cert)?;
                    self.signed = true;
                    let alg = self.mic_pref.clone().unwrap_or_else(MicAlg::default_sha256);
                    self.mic = Some((alg.mic(&[&content])?, alg.name));
                    content
                }
                smime::CmsKind::Other => return Err(Failure::new(
                    ErrorModifier::UnexpectedProcessingError,
                    "application/pkcs7-mime content is not enveloped, compressed or signed data",
                )
                .into()),
            };
            drop(der);
            return self.buffer(&content, depth + 1);
        }
        if ct.is("multipart/signed") {
            let boundary = ct
                .param("boundary")
                .ok_or_else(|| mime_failure(mime::MimeError::MissingBoundary))?;
            let parts = mime::split_multipart(body, boundary).map_err(mime_failure)?;
            let [content, sig_part] = parts[..] else {
                return Err(Failure::new(
                    ErrorModifier::UnexpectedProcessingError,
                    format!("multipart/signed has {} parts, expected 2", parts.len()),
                )
                .into());
            };
            let sig_entity = mime::parse_entity(sig_part).map_err(mime_failure)?;
            let sig_ct = sig_entity.content_type().map_err(mime_failure)?;
            if !(sig_ct.is("application/pkcs7-signature")
                || sig_ct.is("application/x-pkcs7-signature"))
            {
                return Err(Failure::new(
                    ErrorModifier::AuthenticationFailed,
                    format!("unsupported signature type {}", sig_ct.mime_type),
                )
                .into());
            }
            let signature = sig_entity.decoded_body().map_err(mime_failure)?;
            let cert = partner_cert(self.partner, self.signed)?;
            let alg = self
                .mic_pref
                .clone()
                .or_else(|| ct.param("micalg").and_then(MicAlg::from_name))
                .unwrap_or_else(MicAlg::default_sha256);
            let this_mic = (alg.mic(&[content])?, alg.name);
            if let Err(e) = smime::verify_detached(&signature, content, cert) {
                let mut f = Failure::from(e);
                f.mic = Some(this_mic);
                return Err(f.into());
            }
            self.signed = true;
            self.mic = Some(this_mic);
            let inner = mime::parse_entity(content).map_err(mime_failure)?;
            let split = content.len() - inner.body.len();
            return self.entity(&inner.headers, &content[..split], inner.body, depth + 1);
        }

        // The payload.
        if self.partner.require_encrypted && !self.encrypted {
            return Err(Failure::new(
                ErrorModifier::InsufficientMessageSecurity,
                "the partner's messages must be encrypted",
            )
            .into());
        }
        if self.partner.require_signed && !self.signed {
            return Err(Failure::new(
                ErrorModifier::InsufficientMessageSecurity,
                "the partner's messages must be signed",
            )
            .into());
        }
        let mic = match self.mic.take() {
            Some(m) => m,
            None => {
                let alg = self.mic_pref.clone().unwrap_or_else(MicAlg::default_sha256);
                (alg.mic(&[header_block, body])?, alg.name)
            }
        };
        let payload = entity.decoded_body().map_err(mime_failure)?;
        let filename = entity
            .header("content-disposition")
            .and_then(|v| {
                mime::split_params(v)
                    .into_iter()
                    .skip(1)
                    .filter_map(|p| {
                        let (n, v) = p.split_once('=')?;
                        n.trim()
                            .eq_ignore_ascii_case("filename")
                            .then(|| mime::unquote(v))
                    })
                    .next()
            })
            .and_then(|f| safe_filename(&f));
        let stored = landing::land(&mut &payload[..], self.store, u64::MAX)
            .map_err(|e| OpenError::Landing(e.to_string()))?;
        Ok(Opened {
            stored,
            filename,
            signed: self.signed,
            encrypted: self.encrypted,
            compressed: self.compressed,
            mic,
        })
    }
}

/// Open a message body's layers exactly as the receiver does, landing the
/// payload in `store`; true when a payload was landed. For fuzz targets and
/// tools: no HTTP, no sink, no MDN.
#[doc(hidden)]
pub fn open_for_fuzzing(
    identity: &Identity,
    partner: &Partner,
    content_type: &str,
    body: &[u8],
    store: &Path,
) -> bool {
    let top = [Header {
        name: "Content-Type".into(),
        value: content_type.into(),
    }];
    open_message(identity, partner, &top, body, None, 1 << 24, store).is_ok()
}

fn partner_cert(partner: &Partner, already_signed: bool) -> Result<&X509, Failure> {
    if already_signed {
        return Err(Failure::new(
            ErrorModifier::UnexpectedProcessingError,
            "signed twice",
        ));
    }
    partner.cert.as_ref().ok_or_else(|| {
        Failure::new(
            ErrorModifier::AuthenticationFailed,
            "the message is signed but no certificate is configured for the partner",
        )
    })
}

/// The last path component of a sender-given file name, if usable.
fn safe_filename(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next()?.trim();
    let clean: String = base.chars().filter(|c| !c.is_control()).take(255).collect();
    if clean.is_empty() || clean == "." || clean == ".." {
        None
    } else {
        Some(clean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        use openssl::asn1::Asn1Time;
        use openssl::hash::MessageDigest;
        use openssl::x509::X509NameBuilder;
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let mut n = X509NameBuilder::new().unwrap();
        n.append_entry_by_text("CN", name).unwrap();
        let n = n.build();
        let mut b = X509::builder().unwrap();
        b.set_subject_name(&n).unwrap();
        b.set_issuer_name(&n).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        fs::write(&c, b.build().to_pem().unwrap()).unwrap();
        fs::write(&k, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        (c, k)
    }

    #[test]
    fn config_errors_are_all_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (a_crt, a_key) = write_pair(dir.path(), "a");
        let (b_crt, _) = write_pair(dir.path(), "b");
        let ours = IdentityConfig {
            as2_id: "US".into(),
            certificate: b_crt.clone(),
            key: a_key.clone(),
        };
        let partner = |id: &str, cert: PathBuf| PartnerConfig {
            partner_id: String::new(),
            as2_id: id.into(),
            certificate: Some(cert),
            require_signed: false,
            require_encrypted: false,
            allow_async_mdn: true,
        };
        let partners = vec![
            partner("P", a_crt.clone()),
            partner("P", a_crt.clone()),
            partner("Q", dir.path().join("missing.crt")),
        ];
        let errs = As2Settings::load(&ours, &partners, dir.path().join("flows")).unwrap_err();
        assert!(matches!(errs[0], As2ConfigError::KeyMismatch), "{errs:?}");
        assert!(errs.iter().any(|e| matches!(e, As2ConfigError::Io { .. })));
        assert!(errs
            .iter()
            .any(|e| matches!(e, As2ConfigError::DuplicateAs2Id(_))));
        let ours = IdentityConfig {
            certificate: a_crt.clone(),
            ..ours
        };
        let ok = As2Settings::load(&ours, &partners[..1], dir.path().join("flows")).unwrap();
        assert_eq!(ok.partners[0].partner_id, "P");
        assert_eq!(ok.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert!(!format!("{:?}", ok.identity).contains("PRIVATE"));
    }

    /// Mutated and truncated messages through every layer parser: errors,
    /// never a panic (a cheap, deterministic stand-in for the fuzz target).
    #[test]
    fn mutated_messages_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let (crt, key) = write_pair(dir.path(), "us");
        let id =
            Identity::from_pem("US", &fs::read(&crt).unwrap(), &fs::read(&key).unwrap()).unwrap();
        let partner = Partner {
            partner_id: "p".into(),
            as2_id: "P".into(),
            cert: Some(id.cert.clone()),
            require_signed: false,
            require_encrypted: false,
            allow_async_mdn: true,
        };
        // A signed, compressed, encrypted message (signed with our own key,
        // which the partner entry trusts here).
        let entity = b"Content-Type: application/xml\r\n\r\n<a>x</a>\r\n";
        let sig = smime::sign_detached(entity, &id.cert, &id.key).unwrap();
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sig);
        let signed = format!(
            "Content-Type: multipart/signed; micalg=sha-256; boundary=\"S\"\r\n\r\n--S\r\n{}\r\n--S\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--S--\r\n",
            String::from_utf8_lossy(entity)
        );
        let compressed_der = smime::compress(signed.as_bytes());
        let compressed = [
            &b"Content-Type: application/pkcs7-mime; smime-type=compressed-data\r\n\r\n"[..],
            &compressed_der,
        ]
        .concat();
        let signed_body = mime::parse_entity(signed.as_bytes()).unwrap().body.to_vec();
        let mut certs = openssl::stack::Stack::new().unwrap();
        certs.push(id.cert.clone()).unwrap();
        let enveloped = openssl::cms::CmsContentInfo::encrypt(
            &certs,
            &compressed,
            openssl::symm::Cipher::aes_128_cbc(),
            openssl::cms::CMSOptions::BINARY,
        )
        .unwrap()
        .to_der()
        .unwrap();
        let top = |ct: &str| {
            vec![Header {
                name: "Content-Type".into(),
                value: ct.into(),
            }]
        };
        let store = dir.path().join("flows");
        let run = |ct: &str, body: &[u8]| {
            open_message(&id, &partner, &top(ct), body, None, 1 << 20, &store)
        };
        let ok = run(
            "application/pkcs7-mime; smime-type=enveloped-data",
            &enveloped,
        )
        .unwrap();
        assert!(ok.signed && ok.encrypted && ok.compressed);
        assert_eq!(fs::read(&ok.stored.path).unwrap(), b"<a>x</a>\r\n");
        assert!(run(
            "application/pkcs7-mime; smime-type=compressed-data",
            &compressed_der
        )
        .is_ok());
        assert!(run("multipart/signed; boundary=S", &signed_body).is_ok());

        let inputs: [(&str, &[u8]); 3] = [
            (
                "application/pkcs7-mime; smime-type=enveloped-data",
                &enveloped,
            ),
            (
                "application/pkcs7-mime; smime-type=compressed-data",
                &compressed[70..],
            ),
            (
                "multipart/signed; boundary=S",
                signed.as_bytes().split_at(60).1,
            ),
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for (ct, base) in inputs {
            for cut in (0..base.len()).step_by((base.len() / 50).max(1)) {
                let _ = run(ct, &base[..cut]);
            }
            for _ in 0..300 {
                let mut m = base.to_vec();
                for _ in 0..(next() % 4 + 1) {
                    let i = (next() as usize) % m.len();
                    m[i] = next() as u8;
                }
                let _ = run(ct, &m);
            }
        }
    }

    #[test]
    fn filenames_are_sanitised() {
        assert_eq!(safe_filename("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(safe_filename("C:\\x\\inv.xml").as_deref(), Some("inv.xml"));
        assert_eq!(safe_filename(".."), None);
        assert_eq!(safe_filename("a\nb"), Some("ab".into()));
    }
}
