//! AS2 sending (RFC 4130): one file as one AS2 message, POSTed to the
//! partner's endpoint, answered by a synchronous MDN that is verified.
//!
//! quai sends acknowledgements (integration reports, CDAR, CONTRL) back to
//! partners whose flows came over AS2. These files are small, so a message
//! is built in memory; a file over [`Outbound::max_bytes`] is refused before
//! anything is sent.
//!
//! # Layers
//! The payload becomes a MIME entity (`Content-Type` from the file: XML,
//! JSON or EDIFACT; a `Content-Disposition` with the file name;
//! `Content-Transfer-Encoding: binary`), then, as configured and in
//! the order pyas2lib and most AS2 products use:
//! 1. compressed (RFC 5402, CMS CompressedData, zlib),
//! 2. signed (detached `multipart/signed`, the digest configurable, SHA-256
//!    by default), with our `[as2]` key,
//! 3. encrypted (CMS EnvelopedData, AES-256-CBC by default) to the partner's
//!    certificate.
//!
//! The outermost entity's header fields travel as HTTP headers, with the
//! AS2 headers (AS2-From/To, Message-ID, Subject, Disposition-Notification-To
//! and, when a signed receipt is wanted, Disposition-Notification-Options).
//!
//! # The MDN
//! A synchronous MDN is always requested, and [`check_mdn`] accepts the
//! message only when the MDN (a) verifies with the partner's certificate if
//! it is signed, and is signed if a signed one was asked for, (b) names our
//! Message-ID, (c) reports `processed` and nothing else, and (d) carries a
//! Received-Content-MIC equal to ours. The MIC of a signed message is over
//! the signed entity, exactly the bytes we signed, and must be present. For
//! an unsigned message RFC 4130 §7.3.1 leaves room for interpretation (the
//! content only when unencrypted, the decrypted entity when encrypted;
//! quai's own receiver uses the entity with its header fields), so any of
//! those is accepted when a MIC is given, and its absence is tolerated.
//!
//! # Errors
//! [`SendError::is_transient`] separates what is worth retrying later
//! (connection refused, timeout, HTTP 5xx) from what the partner refused
//! (an error disposition, a MIC mismatch, an MDN that cannot be trusted,
//! HTTP 4xx). The daemon retries both on its next pass (a refusal may be
//! fixed on the partner's side), but logs and reports them differently.

use std::time::Duration;

use base64::Engine;
use serde::Deserialize;

use super::mdn::{self, MdnReadError, ReceivedMdn};
use super::smime::{self, Encryption, MicAlg, SmimeError};
use super::{Identity, Partner};

/// Default cap on one outbound file: 64 MiB (acknowledgements are small).
pub const DEFAULT_MAX_SEND_BYTES: u64 = 64 << 20;
/// Default HTTP timeout, connection to MDN.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 60;

/// Outbound settings of one partner, as configured (`[partner.as2]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundConfig {
    /// The partner's AS2 endpoint (`http://` or `https://`).
    pub url: String,
    /// Sign messages (default true).
    pub sign: Option<bool>,
    /// Encrypt messages (default: true when the partner has a certificate).
    pub encrypt: Option<bool>,
    /// Compress messages before signing (default false).
    pub compress: Option<bool>,
    /// `aes256-cbc` (default), `aes192-cbc`, `aes128-cbc` or `3des`.
    pub encryption: Option<String>,
    /// Signature digest: `sha256` (default), `sha384`, `sha512`, `sha224`, `sha1`.
    pub signature: Option<String>,
    /// `signed` (default) or `unsigned`: the MDN asked for.
    pub mdn: Option<String>,
    /// Seconds for the whole exchange, connection to MDN (default 60).
    pub timeout_seconds: Option<u64>,
    /// Largest file sent (default 64 MiB).
    pub max_send_bytes: Option<u64>,
}

/// Which MDN is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MdnWanted {
    Signed,
    Unsigned,
}

/// Why outbound settings are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundConfigError {
    #[error("url {0:?} is not an http:// or https:// URL")]
    BadUrl(String),
    #[error("encryption {0:?} is not one of aes256-cbc, aes192-cbc, aes128-cbc, 3des")]
    UnknownEncryption(String),
    #[error("signature {0:?} is not one of sha256, sha384, sha512, sha224, sha1")]
    UnknownSignature(String),
    #[error("mdn {0:?} is neither \"signed\" nor \"unsigned\"")]
    UnknownMdn(String),
    #[error("encrypt = true needs the partner's certificate")]
    EncryptWithoutCertificate,
    #[error("a signed MDN can only be verified with the partner's certificate")]
    SignedMdnWithoutCertificate,
    #[error("timeout_seconds must be at least 1")]
    ZeroTimeout,
}

/// Outbound settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    pub url: String,
    pub sign: bool,
    pub encrypt: bool,
    pub compress: bool,
    pub encryption: Encryption,
    pub signature: MicAlg,
    pub mdn: MdnWanted,
    pub timeout: Duration,
    pub max_bytes: u64,
}

impl Outbound {
    /// Resolve the configured settings; `partner_has_cert` decides the
    /// encryption default and whether encryption and signed MDNs are possible.
    /// Every problem is returned, not only the first.
    pub fn resolve(
        cfg: &OutboundConfig,
        partner_has_cert: bool,
    ) -> Result<Outbound, Vec<OutboundConfigError>> {
        let mut errors = Vec::new();
        let lower = cfg.url.trim().to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://"))
            || reqwest::Url::parse(cfg.url.trim()).is_err()
        {
            errors.push(OutboundConfigError::BadUrl(cfg.url.clone()));
        }
        let encryption = match cfg.encryption.as_deref() {
            None => Encryption::Aes256Cbc,
            Some(n) => Encryption::from_name(n).unwrap_or_else(|| {
                errors.push(OutboundConfigError::UnknownEncryption(n.to_string()));
                Encryption::Aes256Cbc
            }),
        };
        let signature = match cfg.signature.as_deref() {
            None => MicAlg::default_sha256(),
            Some(n) => match MicAlg::from_name(n) {
                // MD5 is accepted from partners, never used for our signatures.
                Some(a) if a.micalg() != "md5" => a,
                _ => {
                    errors.push(OutboundConfigError::UnknownSignature(n.to_string()));
                    MicAlg::default_sha256()
                }
            },
        };
        let mdn = match cfg.mdn.as_deref().map(|s| s.trim().to_ascii_lowercase()) {
            None => MdnWanted::Signed,
            Some(m) if m == "signed" => MdnWanted::Signed,
            Some(m) if m == "unsigned" => MdnWanted::Unsigned,
            Some(m) => {
                errors.push(OutboundConfigError::UnknownMdn(m));
                MdnWanted::Signed
            }
        };
        let encrypt = cfg.encrypt.unwrap_or(partner_has_cert);
        if encrypt && !partner_has_cert {
            errors.push(OutboundConfigError::EncryptWithoutCertificate);
        }
        if mdn == MdnWanted::Signed && !partner_has_cert {
            errors.push(OutboundConfigError::SignedMdnWithoutCertificate);
        }
        let timeout = cfg.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
        if timeout == 0 {
            errors.push(OutboundConfigError::ZeroTimeout);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Outbound {
            url: cfg.url.trim().to_string(),
            sign: cfg.sign.unwrap_or(true),
            encrypt,
            compress: cfg.compress.unwrap_or(false),
            encryption,
            signature,
            mdn,
            timeout: Duration::from_secs(timeout),
            max_bytes: cfg.max_send_bytes.unwrap_or(DEFAULT_MAX_SEND_BYTES),
        })
    }
}

/// Why a file was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The file is over the configured cap; nothing was sent.
    #[error("{name}: {size} bytes is over the outbound AS2 limit of {max} bytes")]
    TooLarge { name: String, size: u64, max: u64 },
    /// The message could not be built (signing or encryption failed).
    #[error("cannot build the AS2 message: {0}")]
    Build(#[from] SmimeError),
    /// The partner could not be reached or did not answer in time, or
    /// answered HTTP 5xx: try again later.
    #[error("AS2 transport failure: {0}")]
    Transport(String),
    /// The partner answered, but did not accept the message.
    #[error("partner refused the AS2 message: {0}")]
    Refused(#[from] Refusal),
}

impl SendError {
    /// Worth retrying as is (the partner did not get to judge the message).
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Transport(_))
    }
}

/// How the partner (or its MDN) refused a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The MDN reports a disposition other than `processed`.
    #[error("disposition {disposition:?}{}", explain(.text))]
    Disposition { disposition: String, text: String },
    /// Received-Content-MIC differs from ours: the partner got other bytes.
    #[error("Received-Content-MIC {received:?} ({alg}) does not match ours {expected:?}")]
    MicMismatch {
        expected: String,
        received: String,
        alg: String,
    },
    #[error("the MDN of a signed message has no Received-Content-MIC")]
    MissingMic,
    #[error("Received-Content-MIC uses an unknown algorithm {0:?}")]
    UnknownMicAlgorithm(String),
    /// A signed MDN was asked for, an unsigned one came.
    #[error("a signed MDN was requested but the MDN is not signed")]
    UnsignedMdn,
    /// The MDN is signed, but not verifiably by the partner.
    #[error("MDN signature not verified with the partner's certificate: {0}")]
    MdnSignature(String),
    #[error("the MDN answers message {received:?}, not {expected:?}")]
    WrongMessage { expected: String, received: String },
    #[error("the MDN has no Disposition field")]
    NoDisposition,
    #[error("unreadable MDN: {0}")]
    MalformedMdn(String),
    /// HTTP 4xx (or another non-2xx, non-5xx status).
    #[error("HTTP {status}: {body}")]
    HttpStatus { status: u16, body: String },
}

fn explain(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        String::new()
    } else {
        format!(": {line}")
    }
}

/// The MIME type of an outbound file: from its extension (`.xml`, `.json`,
/// `.edi`/`.edifact`), else from its first bytes (`UNA`/`UNB` for EDIFACT,
/// `<` for XML, `{` for JSON), else `application/octet-stream`.
pub fn mime_type_for(name: &str, bytes: &[u8]) -> &'static str {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".xml") {
        return "application/xml";
    }
    if lower.ends_with(".json") {
        return "application/json";
    }
    if lower.ends_with(".edi") || lower.ends_with(".edifact") {
        return "application/EDIFACT";
    }
    let head: Vec<u8> = bytes
        .strip_prefix(&[0xEF, 0xBB, 0xBF])
        .unwrap_or(bytes)
        .iter()
        .copied()
        .skip_while(u8::is_ascii_whitespace)
        .take(3)
        .collect();
    match head.as_slice() {
        b"UNA" | b"UNB" => "application/EDIFACT",
        [b'<', ..] => "application/xml",
        [b'{', ..] | [b'[', ..] => "application/json",
        _ => "application/octet-stream",
    }
}

/// A message ready to POST, with what is needed to check its MDN.
#[derive(Debug, Clone)]
pub struct BuiltMessage {
    /// With angle brackets.
    pub message_id: String,
    /// HTTP headers (AS2 headers and the outer entity's MIME fields).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Our MIC (base64) with the algorithm asked for, for logs.
    pub mic: String,
    pub mic_alg: MicAlg,
    pub signed: bool,
    pub encrypted: bool,
    pub compressed: bool,
    pub mdn: MdnWanted,
    /// The byte strings a Received-Content-MIC may be computed over; for a
    /// signed message only the signed entity.
    mic_inputs: Vec<Vec<u8>>,
}

/// Build the AS2 message for one file (no network).
pub fn build_message(
    identity: &Identity,
    partner: &Partner,
    out: &Outbound,
    name: &str,
    bytes: &[u8],
) -> Result<BuiltMessage, SendError> {
    if bytes.len() as u64 > out.max_bytes {
        return Err(SendError::TooLarge {
            name: name.to_string(),
            size: bytes.len() as u64,
            max: out.max_bytes,
        });
    }
    let token = uuid::Uuid::new_v4().simple().to_string();
    let filename = safe_header_filename(name);
    // (header fields, body) of the current outermost entity.
    let mut fields: Vec<(String, String)> = vec![
        (
            "Content-Type".into(),
            mime_type_for(name, bytes).to_string(),
        ),
        (
            "Content-Disposition".into(),
            format!("attachment; filename=\"{filename}\""),
        ),
        ("Content-Transfer-Encoding".into(), "binary".into()),
    ];
    // (This field order is also how an unsigned, unencrypted message's
    // header fields are read back from the HTTP headers by quai's receiver
    // for its MIC.)
    let mut body: Vec<u8> = bytes.to_vec();
    let payload_entity = entity(&fields, &body);
    // Candidates for an unsigned message's MIC (RFC 4130 §7.3.1 and quai's
    // receiver): the content alone, the payload entity, and the entity
    // inside the encryption.
    let mut mic_inputs = vec![bytes.to_vec(), payload_entity.clone()];

    if out.compress {
        body = smime::compress(&payload_entity);
        fields = vec![
            (
                "Content-Type".into(),
                "application/pkcs7-mime; smime-type=compressed-data; name=smime.p7z".into(),
            ),
            ("Content-Transfer-Encoding".into(), "binary".into()),
            (
                "Content-Disposition".into(),
                "attachment; filename=smime.p7z".into(),
            ),
        ];
    }

    if out.sign {
        let signed_part = entity(&fields, &body);
        let signature =
            smime::sign_detached_with(&signed_part, &identity.cert, &identity.key, &out.signature)?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(signature);
        let boundary = format!("quai-signed-{token}");
        let mut signed = Vec::with_capacity(signed_part.len() + b64.len() + 512);
        signed.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        signed.extend_from_slice(&signed_part);
        signed.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
        signed.extend_from_slice(
            b"Content-Type: application/pkcs7-signature; name=smime.p7s; smime-type=signed-data\r\n\
              Content-Transfer-Encoding: base64\r\n\
              Content-Disposition: attachment; filename=smime.p7s\r\n\r\n",
        );
        for line in b64.as_bytes().chunks(76) {
            signed.extend_from_slice(line);
            signed.extend_from_slice(b"\r\n");
        }
        signed.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        fields = vec![(
            "Content-Type".into(),
            format!(
                "multipart/signed; protocol=\"application/pkcs7-signature\"; micalg={}; boundary=\"{boundary}\"",
                out.signature.micalg()
            ),
        )];
        body = signed;
        mic_inputs = vec![signed_part];
    }

    if out.encrypt {
        let cert = partner
            .cert
            .as_ref()
            .ok_or_else(|| SmimeError::Encryption("no certificate for the partner".into()))?;
        let inner = entity(&fields, &body);
        if !out.sign {
            mic_inputs.push(inner.clone());
        }
        body = smime::encrypt(&inner, cert, out.encryption)?;
        fields = vec![
            (
                "Content-Type".into(),
                "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m".into(),
            ),
            ("Content-Transfer-Encoding".into(), "binary".into()),
            (
                "Content-Disposition".into(),
                "attachment; filename=smime.p7m".into(),
            ),
        ];
    }

    let mic_alg = out.signature.clone();
    let mic = mic_alg.mic(&[mic_inputs.last().map(Vec::as_slice).unwrap_or(&[])])?;
    let message_id = format!("<quai-{token}@{}>", id_domain(&identity.as2_id));
    let mut headers = vec![
        ("AS2-Version".to_string(), "1.2".to_string()),
        ("AS2-From".to_string(), mdn::quote_as2_id(&identity.as2_id)),
        ("AS2-To".to_string(), mdn::quote_as2_id(&partner.as2_id)),
        ("Message-ID".to_string(), message_id.clone()),
        (
            "Subject".to_string(),
            mdn::clean_header_value(&format!("quai acknowledgement {filename}")),
        ),
        ("Date".to_string(), mdn::http_date()),
        ("MIME-Version".to_string(), "1.0".to_string()),
        (
            "Disposition-Notification-To".to_string(),
            mdn::clean_header_value(&identity.as2_id),
        ),
    ];
    if out.mdn == MdnWanted::Signed {
        headers.push((
            "Disposition-Notification-Options".to_string(),
            format!(
                "signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, {}",
                out.signature.micalg()
            ),
        ));
    }
    headers.extend(fields);
    Ok(BuiltMessage {
        message_id,
        headers,
        body,
        mic,
        mic_alg,
        signed: out.sign,
        encrypted: out.encrypt,
        compressed: out.compress,
        mdn: out.mdn,
        mic_inputs,
    })
}

/// Check a synchronous MDN against the message it answers (see the module
/// documentation for the rules).
pub fn check_mdn(
    message: &BuiltMessage,
    partner: &Partner,
    content_type: &str,
    body: &[u8],
) -> Result<ReceivedMdn, Refusal> {
    let mdn = mdn::read_mdn(content_type, body, partner.cert.as_ref()).map_err(|e| match e {
        MdnReadError::Signature(s) => Refusal::MdnSignature(s.to_string()),
        MdnReadError::NoPartnerCertificate => Refusal::MdnSignature(e.to_string()),
        MdnReadError::Malformed(m) => Refusal::MalformedMdn(m),
    })?;
    if message.mdn == MdnWanted::Signed && !mdn.signed {
        return Err(Refusal::UnsignedMdn);
    }
    let original = mdn.original_message_id.clone().unwrap_or_default();
    if bare_id(&original) != bare_id(&message.message_id) {
        return Err(Refusal::WrongMessage {
            expected: message.message_id.clone(),
            received: original,
        });
    }
    let disposition = mdn.disposition_type().ok_or(Refusal::NoDisposition)?;
    if disposition != "processed" {
        return Err(Refusal::Disposition {
            disposition: mdn.disposition.clone().unwrap_or_default(),
            text: mdn.text.clone(),
        });
    }
    match &mdn.mic {
        None if message.signed => return Err(Refusal::MissingMic),
        None => {}
        Some((received, alg_name)) => {
            let alg = if alg_name.is_empty() {
                message.mic_alg.clone()
            } else {
                MicAlg::from_name(alg_name)
                    .ok_or_else(|| Refusal::UnknownMicAlgorithm(alg_name.clone()))?
            };
            let mut expected = Vec::new();
            for input in &message.mic_inputs {
                let m = alg
                    .mic(&[input])
                    .map_err(|e| Refusal::MalformedMdn(e.to_string()))?;
                if &m == received {
                    return Ok(mdn);
                }
                expected.push(m);
            }
            return Err(Refusal::MicMismatch {
                expected: expected.last().cloned().unwrap_or_default(),
                received: received.clone(),
                alg: alg_name.clone(),
            });
        }
    }
    Ok(mdn)
}

/// What a delivered message and its MDN said.
#[derive(Debug, Clone)]
pub struct Sent {
    pub message_id: String,
    pub mic: String,
    pub mic_alg: String,
    pub signed: bool,
    pub encrypted: bool,
    pub compressed: bool,
    pub mdn: ReceivedMdn,
}

/// Build, POST and check one file's AS2 message. `Ok` only when the
/// partner's MDN says `processed` with our MIC.
pub async fn send(
    identity: &Identity,
    partner: &Partner,
    out: &Outbound,
    name: &str,
    bytes: &[u8],
) -> Result<Sent, SendError> {
    let message = build_message(identity, partner, out, name, bytes)?;
    let (content_type, body) = post(out, &message).await?;
    let mdn = check_mdn(&message, partner, &content_type, &body)?;
    Ok(Sent {
        message_id: message.message_id,
        mic: message.mic,
        mic_alg: message.mic_alg.micalg().to_string(),
        signed: message.signed,
        encrypted: message.encrypted,
        compressed: message.compressed,
        mdn,
    })
}

/// POST a built message; the response's Content-Type and body (the MDN).
pub async fn post(out: &Outbound, message: &BuiltMessage) -> Result<(String, Vec<u8>), SendError> {
    // Only the configured URL is called: a redirect is an error, not a hop.
    let client = reqwest::Client::builder()
        .timeout(out.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(out.timeout.min(Duration::from_secs(30)))
        .build()
        .map_err(|e| SendError::Transport(e.to_string()))?;
    let mut req = client.post(&out.url);
    for (n, v) in &message.headers {
        req = req.header(n.as_str(), v.as_str());
    }
    let resp = req
        .body(message.body.clone())
        .send()
        .await
        .map_err(|e| SendError::Transport(transport_text(&e)))?;
    let status = resp.status();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = read_limited(resp, mdn::MAX_MDN_BYTES)
        .await
        .map_err(SendError::Transport)?;
    if status.is_server_error() {
        return Err(SendError::Transport(format!(
            "HTTP {}: {}",
            status.as_u16(),
            short_text(&body)
        )));
    }
    if !status.is_success() {
        return Err(Refusal::HttpStatus {
            status: status.as_u16(),
            body: short_text(&body),
        }
        .into());
    }
    if content_type.is_empty() || body.is_empty() {
        return Err(Refusal::MalformedMdn(format!(
            "HTTP {} without a synchronous MDN",
            status.as_u16()
        ))
        .into());
    }
    Ok((content_type, body))
}

async fn read_limited(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport_text(&e))? {
        if out.len() + chunk.len() > max {
            return Err(format!("response larger than {max} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// reqwest's error with its causes (the top level alone says little).
fn transport_text(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if e.is_timeout() {
        text.push_str(" (timed out)");
    }
    text
}

fn short_text(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .filter(|c| !c.is_control() || *c == ' ')
        .take(300)
        .collect::<String>()
        .trim()
        .to_string()
}

/// Header block (`Name: value` CRLF lines, an empty line) then the body.
fn entity(fields: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 256);
    for (n, v) in fields {
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

fn bare_id(id: &str) -> &str {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
}

/// A file name safe inside a quoted header parameter on one short line.
fn safe_header_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    if clean.is_empty() {
        "payload".into()
    } else {
        clean
    }
}

/// The right-hand side of our Message-IDs: our AS2 id, made a dot-atom.
fn id_domain(as2_id: &str) -> String {
    let d: String = as2_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if d.is_empty() {
        "quai".into()
    } else {
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::as2::mime;

    fn pair(name: &str) -> Identity {
        use openssl::asn1::Asn1Time;
        use openssl::hash::MessageDigest;
        use openssl::pkey::PKey;
        use openssl::x509::{X509NameBuilder, X509};
        let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let mut n = X509NameBuilder::new().unwrap();
        n.append_entry_by_text("CN", name).unwrap();
        let n = n.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let serial = openssl::bn::BigNum::from_u32(u32::from(name.as_bytes()[0])).unwrap();
        b.set_serial_number(&serial.to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&n).unwrap();
        b.set_issuer_name(&n).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        Identity {
            as2_id: name.into(),
            cert: b.build(),
            key,
        }
    }

    fn outbound(cfg: OutboundConfig) -> Outbound {
        Outbound::resolve(&cfg, true).unwrap()
    }

    #[test]
    fn mime_types() {
        assert_eq!(mime_type_for("a.report.xml", b""), "application/xml");
        assert_eq!(mime_type_for("a.report.json", b""), "application/json");
        assert_eq!(mime_type_for("a.contrl.edi", b""), "application/EDIFACT");
        assert_eq!(
            mime_type_for("x", b"\xEF\xBB\xBF UNB+UNOC"),
            "application/EDIFACT"
        );
        assert_eq!(mime_type_for("x", b"  <a/>"), "application/xml");
        assert_eq!(mime_type_for("x", b"\x00"), "application/octet-stream");
    }

    #[test]
    fn config_defaults_and_errors() {
        let o = Outbound::resolve(
            &OutboundConfig {
                url: "http://127.0.0.1:1/as2".into(),
                ..Default::default()
            },
            true,
        )
        .unwrap();
        assert!(o.sign && o.encrypt && !o.compress);
        assert_eq!(o.encryption, Encryption::Aes256Cbc);
        assert_eq!(o.signature.micalg(), "sha-256");
        assert_eq!(o.mdn, MdnWanted::Signed);
        assert_eq!(o.timeout, Duration::from_secs(60));
        let o = Outbound::resolve(
            &OutboundConfig {
                url: "https://partner.example/as2".into(),
                mdn: Some("unsigned".into()),
                ..Default::default()
            },
            false,
        )
        .unwrap();
        assert!(!o.encrypt);
        let errs = Outbound::resolve(
            &OutboundConfig {
                url: "ftp://x".into(),
                encrypt: Some(true),
                encryption: Some("rot13".into()),
                signature: Some("md5".into()),
                mdn: Some("maybe".into()),
                timeout_seconds: Some(0),
                ..Default::default()
            },
            false,
        )
        .unwrap_err();
        assert_eq!(errs.len(), 7, "{errs:?}");
    }

    #[test]
    fn refuses_files_over_the_cap() {
        let us = pair("US");
        let them = pair("THEM");
        let partner = Partner {
            partner_id: "p".into(),
            as2_id: "THEM".into(),
            cert: Some(them.cert.clone()),
            require_signed: false,
            require_encrypted: false,
            allow_async_mdn: true,
        };
        let out = outbound(OutboundConfig {
            url: "http://127.0.0.1:1/as2".into(),
            max_send_bytes: Some(10),
            ..Default::default()
        });
        let e = build_message(&us, &partner, &out, "big.xml", &[b'x'; 11]).unwrap_err();
        assert!(
            matches!(
                e,
                SendError::TooLarge {
                    size: 11,
                    max: 10,
                    ..
                }
            ),
            "{e}"
        );
        assert!(!e.is_transient());
        assert!(build_message(&us, &partner, &out, "ok.xml", &[b'x'; 10]).is_ok());
    }

    /// Signed + encrypted + compressed, opened by quai's own receiver code
    /// path (decrypt, verify, decompress) and answered by an MDN built with
    /// quai's MDN builder: accepted; a wrong MIC, a wrong message and an
    /// error disposition are refused.
    #[test]
    fn layers_open_and_mdn_checks() {
        let us = pair("US");
        let them = pair("THEM");
        let partner_of_us = Partner {
            partner_id: "p".into(),
            as2_id: "THEM".into(),
            cert: Some(them.cert.clone()),
            require_signed: false,
            require_encrypted: false,
            allow_async_mdn: true,
        };
        let out = outbound(OutboundConfig {
            url: "http://127.0.0.1:1/as2".into(),
            compress: Some(true),
            signature: Some("sha512".into()),
            ..Default::default()
        });
        let payload = b"{\"flow\": 1}\n";
        let m = build_message(&us, &partner_of_us, &out, "f.report.json", payload).unwrap();
        assert!(m.signed && m.encrypted && m.compressed);
        let ct = m
            .headers
            .iter()
            .find(|(n, _)| n == "Content-Type")
            .unwrap()
            .1
            .clone();
        assert!(ct.contains("enveloped-data"));
        // Open it as the partner would.
        let inner = smime::decrypt(&m.body, &them.key, &them.cert).unwrap();
        let e = mime::parse_entity(&inner).unwrap();
        let sct = e.content_type().unwrap();
        assert!(sct.is("multipart/signed"));
        assert_eq!(sct.param("micalg"), Some("sha-512"));
        let parts = mime::split_multipart(e.body, sct.param("boundary").unwrap()).unwrap();
        let sig = mime::parse_entity(parts[1])
            .unwrap()
            .decoded_body()
            .unwrap();
        smime::verify_detached(&sig, parts[0], &us.cert).unwrap();
        let compressed = mime::parse_entity(parts[0]).unwrap();
        let plain = smime::decompress(compressed.body, 1 << 20).unwrap();
        let p = mime::parse_entity(&plain).unwrap();
        assert_eq!(p.body, payload);
        assert_eq!(p.header("content-type"), Some("application/json"));

        let alg = MicAlg::from_name("sha-512").unwrap();
        let mic = alg.mic(&[parts[0]]).unwrap();
        assert_eq!(mic, m.mic);
        let answer = |mic: &str, id: &str, disposition| {
            let fields = mdn::MdnFields {
                our_as2_id: "THEM",
                partner_as2_id: "US",
                original_message_id: id,
                disposition,
                mic: Some((mic.to_string(), "sha-512".into())),
                reporting_ua: "test",
                explanation: "because",
            };
            mdn::build(&fields, Some((&them.cert, &them.key))).unwrap()
        };
        let ok = answer(&mic, &m.message_id, mdn::Disposition::Processed);
        let r = check_mdn(
            &m,
            &partner_of_us,
            ok.header("content-type").unwrap(),
            &ok.body,
        )
        .unwrap();
        assert!(r.signed);
        let bad = answer("AAAA", &m.message_id, mdn::Disposition::Processed);
        assert!(matches!(
            check_mdn(
                &m,
                &partner_of_us,
                bad.header("content-type").unwrap(),
                &bad.body
            ),
            Err(Refusal::MicMismatch { .. })
        ));
        let other = answer(&mic, "<other@x>", mdn::Disposition::Processed);
        assert!(matches!(
            check_mdn(
                &m,
                &partner_of_us,
                other.header("content-type").unwrap(),
                &other.body
            ),
            Err(Refusal::WrongMessage { .. })
        ));
        let failed = answer(
            &mic,
            &m.message_id,
            mdn::Disposition::Error(mdn::ErrorModifier::DecryptionFailed),
        );
        match check_mdn(
            &m,
            &partner_of_us,
            failed.header("content-type").unwrap(),
            &failed.body,
        ) {
            Err(Refusal::Disposition { disposition, text }) => {
                assert!(disposition.ends_with("processed/error: decryption-failed"));
                assert!(text.contains("decryption-failed"));
            }
            other => panic!("{other:?}"),
        }
        // Signed by someone else: refused.
        let fields = mdn::MdnFields {
            our_as2_id: "THEM",
            partner_as2_id: "US",
            original_message_id: &m.message_id,
            disposition: mdn::Disposition::Processed,
            mic: Some((mic.clone(), "sha-512".into())),
            reporting_ua: "test",
            explanation: "",
        };
        let forged = mdn::build(&fields, Some((&us.cert, &us.key))).unwrap();
        assert!(matches!(
            check_mdn(
                &m,
                &partner_of_us,
                forged.header("content-type").unwrap(),
                &forged.body
            ),
            Err(Refusal::MdnSignature(_))
        ));
        // Unsigned when a signed one was asked for: refused.
        let unsigned = mdn::build(&fields, None).unwrap();
        assert_eq!(
            check_mdn(
                &m,
                &partner_of_us,
                unsigned.header("content-type").unwrap(),
                &unsigned.body
            )
            .unwrap_err(),
            Refusal::UnsignedMdn
        );
    }
}
