//! Message Disposition Notifications (RFC 3798 as profiled by RFC 4130 §7).
//!
//! An MDN is a `multipart/report; report-type=disposition-notification` with
//! a human-readable part and a `message/disposition-notification` part,
//! wrapped in `multipart/signed` when the partner asked for a signed receipt.
//! It travels either as the HTTP response (synchronous) or as a POST to the
//! partner's Receipt-Delivery-Option URL (asynchronous, see [`PendingMdn`]).
//!
//! An MDN is built once and kept as bytes ([`BuiltMdn::to_bytes`]) so that a
//! repeated message is answered with exactly the original receipt.

use std::time::Duration;

use base64::Engine;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use serde::{Deserialize, Serialize};

use super::mime::{self, split_params, unquote};
use super::smime::{self, MicAlg, SmimeError};

/// The error modifiers of RFC 4130 §7.4.3 (`processed/error: ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorModifier {
    AuthenticationFailed,
    DecompressionFailed,
    DecryptionFailed,
    InsufficientMessageSecurity,
    IntegrityCheckFailed,
    UnexpectedProcessingError,
}

impl ErrorModifier {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorModifier::AuthenticationFailed => "authentication-failed",
            ErrorModifier::DecompressionFailed => "decompression-failed",
            ErrorModifier::DecryptionFailed => "decryption-failed",
            ErrorModifier::InsufficientMessageSecurity => "insufficient-message-security",
            ErrorModifier::IntegrityCheckFailed => "integrity-check-failed",
            ErrorModifier::UnexpectedProcessingError => "unexpected-processing-error",
        }
    }
}

/// The disposition reported in an MDN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Processed,
    Error(ErrorModifier),
}

impl Disposition {
    /// The value of the `Disposition:` field.
    pub fn field(self) -> String {
        match self {
            Disposition::Processed => "automatic-action/MDN-sent-automatically; processed".into(),
            Disposition::Error(m) => {
                format!(
                    "automatic-action/MDN-sent-automatically; processed/error: {}",
                    m.as_str()
                )
            }
        }
    }
}

/// What the sender asked for in its request headers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MdnRequest {
    /// Disposition-Notification-To was present: an MDN is wanted.
    pub wanted: bool,
    /// signed-receipt-protocol=...pkcs7-signature was asked for.
    pub signed: bool,
    /// The first signed-receipt-micalg we support, if any was named.
    pub mic_alg: Option<MicAlg>,
    /// Receipt-Delivery-Option: the URL for an asynchronous MDN.
    pub async_url: Option<String>,
}

impl MdnRequest {
    /// Read Disposition-Notification-To, Disposition-Notification-Options and
    /// Receipt-Delivery-Option (RFC 4130 §7.3).
    pub fn from_headers(
        disposition_notification_to: Option<&str>,
        options: Option<&str>,
        receipt_delivery_option: Option<&str>,
    ) -> MdnRequest {
        let mut req = MdnRequest {
            wanted: disposition_notification_to.is_some_and(|v| !v.trim().is_empty()),
            ..Default::default()
        };
        if let Some(opts) = options {
            // e.g. signed-receipt-protocol=optional, pkcs7-signature;
            //      signed-receipt-micalg=optional, sha-256, sha1
            for param in split_params(opts) {
                let Some((name, value)) = param.split_once('=') else {
                    continue;
                };
                let values: Vec<String> = value.split(',').map(|v| unquote(v.trim())).collect();
                // The first value is the importance (required/optional).
                let listed = values.iter().skip(1);
                match name.trim().to_ascii_lowercase().as_str() {
                    "signed-receipt-protocol" => {
                        req.signed = listed
                            .clone()
                            .any(|v| v.eq_ignore_ascii_case("pkcs7-signature"));
                    }
                    "signed-receipt-micalg" => {
                        req.mic_alg = listed.clone().find_map(|v| MicAlg::from_name(v));
                    }
                    _ => {}
                }
            }
        }
        if let Some(url) = receipt_delivery_option {
            let url = url.trim();
            if !url.is_empty() {
                req.async_url = Some(url.to_string());
            }
        }
        req
    }
}

/// Everything an MDN reports.
#[derive(Debug, Clone)]
pub struct MdnFields<'a> {
    pub our_as2_id: &'a str,
    pub partner_as2_id: &'a str,
    /// The original Message-ID, with its angle brackets.
    pub original_message_id: &'a str,
    pub disposition: Disposition,
    /// Base64 MIC and the algorithm name, when computed.
    pub mic: Option<(String, String)>,
    pub reporting_ua: &'a str,
    /// A short explanation for the human-readable part.
    pub explanation: &'a str,
}

/// An MDN ready to send: its HTTP/MIME header fields and body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltMdn {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a stored MDN could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("stored MDN unreadable: {0}")]
pub struct StoredMdnError(String);

impl BuiltMdn {
    /// True when this MDN reports a `Received-Content-MIC` computed with the
    /// same algorithm as `mic` (base64, algorithm) but of another value: it
    /// answered other content. False when it reports none, or one of
    /// another algorithm (nothing to compare).
    pub fn mic_differs(&self, mic: &(String, String)) -> bool {
        let text = String::from_utf8_lossy(&self.body);
        let Some(line) = text
            .lines()
            .find_map(|l| l.strip_prefix("Received-Content-MIC:"))
        else {
            return false;
        };
        let Some((value, alg)) = line.trim().rsplit_once(',') else {
            return false;
        };
        alg.trim().eq_ignore_ascii_case(mic.1.trim()) && value.trim() != mic.0.trim()
    }

    /// Header block, empty line, body: the form kept on disk.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, v) in &self.headers {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }

    pub fn from_bytes(raw: &[u8]) -> Result<BuiltMdn, StoredMdnError> {
        let e = mime::parse_entity(raw).map_err(|e| StoredMdnError(e.to_string()))?;
        Ok(BuiltMdn {
            headers: e
                .headers
                .iter()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
            body: e.body.to_vec(),
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Build an MDN, signed with `signer` when given.
pub fn build(
    fields: &MdnFields<'_>,
    signer: Option<(&X509, &PKey<Private>)>,
) -> Result<BuiltMdn, SmimeError> {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let report_boundary = format!("quai-report-{token}");

    let human = match fields.disposition {
        Disposition::Processed => format!(
            "The AS2 message {} sent to {} has been received and stored.\r\n\
             Its content will be processed; an integration report follows separately.\r\n",
            fields.original_message_id, fields.our_as2_id
        ),
        Disposition::Error(m) => format!(
            "The AS2 message {} sent to {} could not be processed: {}.\r\n{}\r\n",
            fields.original_message_id,
            fields.our_as2_id,
            m.as_str(),
            fields.explanation
        ),
    };
    let mut report = String::new();
    report.push_str(&format!("Reporting-UA: {}\r\n", fields.reporting_ua));
    report.push_str(&format!(
        "Original-Recipient: rfc822; {}\r\n",
        fields.our_as2_id
    ));
    report.push_str(&format!(
        "Final-Recipient: rfc822; {}\r\n",
        fields.our_as2_id
    ));
    report.push_str(&format!(
        "Original-Message-ID: {}\r\n",
        fields.original_message_id
    ));
    report.push_str(&format!("Disposition: {}\r\n", fields.disposition.field()));
    if let Some((mic, alg)) = &fields.mic {
        report.push_str(&format!("Received-Content-MIC: {mic}, {alg}\r\n"));
    }

    let report_type = format!(
        "multipart/report; report-type=disposition-notification; boundary=\"{report_boundary}\""
    );
    let mut report_body = Vec::new();
    report_body.extend_from_slice(format!("--{report_boundary}\r\n").as_bytes());
    report_body.extend_from_slice(b"Content-Type: text/plain; charset=us-ascii\r\n");
    report_body.extend_from_slice(b"Content-Transfer-Encoding: 7bit\r\n\r\n");
    report_body.extend_from_slice(sanitize_ascii(&human).as_bytes());
    report_body.extend_from_slice(format!("\r\n--{report_boundary}\r\n").as_bytes());
    report_body.extend_from_slice(b"Content-Type: message/disposition-notification\r\n");
    report_body.extend_from_slice(b"Content-Transfer-Encoding: 7bit\r\n\r\n");
    report_body.extend_from_slice(sanitize_ascii(&report).as_bytes());
    report_body.extend_from_slice(format!("\r\n--{report_boundary}--\r\n").as_bytes());

    let (content_type, body) = match signer {
        None => (report_type, report_body),
        Some((cert, key)) => {
            let sig_boundary = format!("quai-signed-{token}");
            // The signed part is the multipart/report entity: its header and body.
            let mut part = Vec::new();
            part.extend_from_slice(format!("Content-Type: {report_type}\r\n\r\n").as_bytes());
            part.extend_from_slice(&report_body);
            let signature = smime::sign_detached(&part, cert, key)?;
            let b64 = base64::engine::general_purpose::STANDARD.encode(signature);
            let mut body = Vec::new();
            body.extend_from_slice(format!("--{sig_boundary}\r\n").as_bytes());
            body.extend_from_slice(&part);
            body.extend_from_slice(format!("\r\n--{sig_boundary}\r\n").as_bytes());
            body.extend_from_slice(b"Content-Type: application/pkcs7-signature; name=smime.p7s; smime-type=signed-data\r\n");
            body.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n");
            body.extend_from_slice(b"Content-Disposition: attachment; filename=smime.p7s\r\n\r\n");
            for line in b64.as_bytes().chunks(76) {
                body.extend_from_slice(line);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(format!("--{sig_boundary}--\r\n").as_bytes());
            let ct = format!(
                "multipart/signed; protocol=\"application/pkcs7-signature\"; micalg={}; boundary=\"{sig_boundary}\"",
                smime::SIGNING_MICALG
            );
            (ct, body)
        }
    };

    let headers = vec![
        ("AS2-Version".to_string(), "1.2".to_string()),
        ("AS2-From".to_string(), quote_as2_id(fields.our_as2_id)),
        ("AS2-To".to_string(), quote_as2_id(fields.partner_as2_id)),
        (
            "Message-ID".to_string(),
            format!("<quai-mdn-{token}@{}>", sanitize_id(fields.our_as2_id)),
        ),
        ("Date".to_string(), http_date()),
        ("MIME-Version".to_string(), "1.0".to_string()),
        ("Subject".to_string(), "AS2 MDN".to_string()),
        ("Content-Type".to_string(), content_type),
    ];
    Ok(BuiltMdn { headers, body })
}

/// Quote an AS2 id when it contains spaces, quotes or backslashes (RFC 4130 §6.2).
pub fn quote_as2_id(id: &str) -> String {
    if id.contains([' ', '"', '\\']) {
        format!("\"{}\"", id.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        id.to_string()
    }
}

fn sanitize_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Keep a header or report line 7-bit and free of injected line breaks.
fn sanitize_ascii(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() && (c >= ' ' || c == '\r' || c == '\n') {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// Header values that came from the sender must not break our header lines.
pub fn clean_header_value(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() && c >= ' ' && c != '\x7f' {
                c
            } else {
                '?'
            }
        })
        .take(998)
        .collect()
}

pub fn http_date() -> String {
    httpdate(std::time::SystemTime::now())
}

/// RFC 7231 IMF-fixdate, without a date crate.
fn httpdate(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mth = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mth <= 2 { y + 1 } else { y };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(mth - 1) as usize];
    format!("{weekday}, {d:02} {month} {y} {h:02}:{m:02}:{s:02} GMT")
}

/// An MDN as a sender reads it back (see [`read_mdn`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMdn {
    /// It came as `multipart/signed` and its signature was verified with the
    /// partner's certificate.
    pub signed: bool,
    /// Original-Message-ID, as written (normally with angle brackets).
    pub original_message_id: Option<String>,
    /// The whole Disposition field, e.g.
    /// `automatic-action/MDN-sent-automatically; processed`.
    pub disposition: Option<String>,
    /// Received-Content-MIC: the base64 value and the algorithm name.
    pub mic: Option<(String, String)>,
    /// The human-readable part (at most 2000 characters), for error messages.
    pub text: String,
}

impl ReceivedMdn {
    /// The disposition type and modifiers after the action modes, lower
    /// case: `processed`, `processed/error: decryption-failed`, ...
    pub fn disposition_type(&self) -> Option<String> {
        let d = self.disposition.as_deref()?;
        let after = d.rsplit_once(';').map(|(_, t)| t).unwrap_or(d);
        Some(after.trim().to_ascii_lowercase())
    }

    /// Was the message processed without error or warning?
    pub fn is_processed(&self) -> bool {
        self.disposition_type().is_some_and(|t| t == "processed")
    }
}

/// Why a received MDN could not be read or trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MdnReadError {
    #[error("malformed MDN: {0}")]
    Malformed(String),
    /// A signed MDN whose signature does not verify with the partner's certificate.
    #[error("MDN signature refused: {0}")]
    Signature(SmimeError),
    #[error("the MDN is signed but no certificate is configured for the partner")]
    NoPartnerCertificate,
}

/// Most bytes of an MDN we read: an MDN is a few kilobytes.
pub const MAX_MDN_BYTES: usize = 1 << 20;

/// Read an MDN from its Content-Type and body (an HTTP response or POST):
/// verify its signature with exactly `partner` when it is `multipart/signed`,
/// then take the fields of its `message/disposition-notification` part.
pub fn read_mdn(
    content_type: &str,
    body: &[u8],
    partner: Option<&X509>,
) -> Result<ReceivedMdn, MdnReadError> {
    let malformed = |e: mime::MimeError| MdnReadError::Malformed(e.to_string());
    if body.len() > MAX_MDN_BYTES {
        return Err(MdnReadError::Malformed(format!(
            "{} bytes, more than an MDN",
            body.len()
        )));
    }
    let ct = mime::ContentType::parse(content_type).map_err(malformed)?;
    let mut signed = false;
    let report_entity;
    let (report_ct, report_body) = if ct.is("multipart/signed") {
        let boundary = ct.param("boundary").ok_or(MdnReadError::Malformed(
            "multipart/signed without boundary".into(),
        ))?;
        let parts = mime::split_multipart(body, boundary).map_err(malformed)?;
        let [content, sig_part] = parts[..] else {
            return Err(MdnReadError::Malformed(format!(
                "multipart/signed has {} parts, expected 2",
                parts.len()
            )));
        };
        let sig_entity = mime::parse_entity(sig_part).map_err(malformed)?;
        let sig_ct = sig_entity.content_type().map_err(malformed)?;
        if !(sig_ct.is("application/pkcs7-signature") || sig_ct.is("application/x-pkcs7-signature"))
        {
            return Err(MdnReadError::Malformed(format!(
                "unsupported signature type {}",
                sig_ct.mime_type
            )));
        }
        let signature = sig_entity.decoded_body().map_err(malformed)?;
        let cert = partner.ok_or(MdnReadError::NoPartnerCertificate)?;
        smime::verify_detached(&signature, content, cert).map_err(MdnReadError::Signature)?;
        signed = true;
        report_entity = mime::parse_entity(content).map_err(malformed)?;
        (
            report_entity.content_type().map_err(malformed)?,
            report_entity.body,
        )
    } else {
        (ct, body)
    };
    if !report_ct.is("multipart/report") {
        return Err(MdnReadError::Malformed(format!(
            "expected multipart/report, got {}",
            report_ct.mime_type
        )));
    }
    let boundary = report_ct.param("boundary").ok_or(MdnReadError::Malformed(
        "multipart/report without boundary".into(),
    ))?;
    let mut mdn = ReceivedMdn {
        signed,
        original_message_id: None,
        disposition: None,
        mic: None,
        text: String::new(),
    };
    let mut found = false;
    for part in mime::split_multipart(report_body, boundary).map_err(malformed)? {
        let e = mime::parse_entity(part).map_err(malformed)?;
        let pct = e.content_type().map_err(malformed)?;
        let content = e.decoded_body().map_err(malformed)?;
        if pct.is("message/disposition-notification") {
            found = true;
            for (name, value) in report_fields(&content) {
                match name.to_ascii_lowercase().as_str() {
                    "original-message-id" => mdn.original_message_id = Some(value),
                    "disposition" => mdn.disposition = Some(value),
                    "received-content-mic" => {
                        let (mic, alg) = value.split_once(',').unwrap_or((&value, ""));
                        mdn.mic = Some((mic.trim().to_string(), alg.trim().to_string()));
                    }
                    _ => {}
                }
            }
        } else if pct.mime_type.starts_with("text/") && mdn.text.is_empty() {
            mdn.text = String::from_utf8_lossy(&content)
                .trim()
                .chars()
                .take(2000)
                .collect();
        }
    }
    if !found {
        return Err(MdnReadError::Malformed(
            "no message/disposition-notification part".into(),
        ));
    }
    Ok(mdn)
}

/// `Name: value` fields of a disposition notification, folded lines joined.
fn report_fields(content: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(content);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((n, v)) = line.split_once(':') {
            out.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// An asynchronous MDN waiting to be delivered: everything needed to POST it,
/// serialisable so an outbox can persist it and retry after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingMdn {
    /// The partner's Receipt-Delivery-Option URL.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The original message's Message-ID (for logs and tracking).
    pub original_message_id: String,
    /// The flow the message was registered as, when it was (so the daemon
    /// can track the MDN's delivery in the spool).
    #[serde(default)]
    pub flow_id: Option<i64>,
}

/// Why an asynchronous MDN was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum MdnSendError {
    #[error("unsupported receipt delivery URL {0:?} (http or https only)")]
    BadUrl(String),
    #[error("MDN delivery failed: {0}")]
    Transport(String),
    #[error("partner answered the MDN with HTTP {0}")]
    Status(u16),
}

/// POST an asynchronous MDN once. A 2xx answer is success.
pub async fn send_async_mdn(mdn: &PendingMdn) -> Result<(), MdnSendError> {
    let lower = mdn.url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(MdnSendError::BadUrl(mdn.url.clone()));
    }
    // A redirect would send the MDN to an address nobody configured.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| MdnSendError::Transport(e.to_string()))?;
    let mut req = client.post(&mdn.url);
    for (n, v) in &mdn.headers {
        req = req.header(n.as_str(), v.as_str());
    }
    let resp = req
        .body(mdn.body.clone())
        .send()
        .await
        .map_err(|e| MdnSendError::Transport(e.to_string()))?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(MdnSendError::Status(status.as_u16()))
    }
}

/// Deliver with retries: `attempts` tries, the delay doubling from
/// `first_delay`. Returns the last error when every attempt failed.
pub async fn deliver_with_retries(
    mdn: &PendingMdn,
    attempts: u32,
    first_delay: Duration,
) -> Result<(), MdnSendError> {
    let mut delay = first_delay;
    let mut last = None;
    for attempt in 1..=attempts.max(1) {
        match send_async_mdn(mdn).await {
            Ok(()) => return Ok(()),
            Err(MdnSendError::BadUrl(u)) => return Err(MdnSendError::BadUrl(u)),
            Err(e) => {
                tracing::warn!(
                    url = %mdn.url, message_id = %mdn.original_message_id, attempt, error = %e,
                    "asynchronous MDN delivery failed"
                );
                last = Some(e);
            }
        }
        if attempt < attempts {
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
        }
    }
    Err(last.unwrap_or(MdnSendError::Transport("no attempt made".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_disposition_options() {
        let r = MdnRequest::from_headers(
            Some("edi@example"),
            Some("signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, sha-512, sha1"),
            Some(" http://host/mdn "),
        );
        assert!(r.wanted && r.signed);
        assert_eq!(r.mic_alg.unwrap().name, "sha-512");
        assert_eq!(r.async_url.as_deref(), Some("http://host/mdn"));
        let r = MdnRequest::from_headers(None, Some("signed-receipt-micalg=optional, crc"), None);
        assert!(!r.wanted && !r.signed && r.mic_alg.is_none());
    }

    #[test]
    fn tells_an_mdn_of_other_content() {
        let fields = MdnFields {
            our_as2_id: "PLATFORM",
            partner_as2_id: "ACME",
            original_message_id: "<m1@acme>",
            disposition: Disposition::Processed,
            mic: Some(("abc=".into(), "sha-256".into())),
            reporting_ua: "quai",
            explanation: "",
        };
        let mdn = build(&fields, None).unwrap();
        let mic = |v: &str, a: &str| (v.to_string(), a.to_string());
        assert!(!mdn.mic_differs(&mic("abc=", "sha-256")));
        assert!(mdn.mic_differs(&mic("xyz=", "sha-256")));
        assert!(
            !mdn.mic_differs(&mic("xyz=", "sha-512")),
            "another algorithm: no verdict"
        );
        let none = build(
            &MdnFields {
                mic: None,
                ..fields
            },
            None,
        )
        .unwrap();
        assert!(!none.mic_differs(&mic("xyz=", "sha-256")));
    }

    #[test]
    fn builds_unsigned_mdn_that_parses() {
        let fields = MdnFields {
            our_as2_id: "PLATFORM",
            partner_as2_id: "ACME CORP",
            original_message_id: "<m1@acme>",
            disposition: Disposition::Error(ErrorModifier::IntegrityCheckFailed),
            mic: Some(("abc=".into(), "sha-256".into())),
            reporting_ua: "quai",
            explanation: "x",
        };
        let mdn = build(&fields, None).unwrap();
        assert_eq!(mdn.header("as2-to"), Some("\"ACME CORP\""));
        let bytes = mdn.to_bytes();
        let back = BuiltMdn::from_bytes(&bytes).unwrap();
        assert_eq!(back, mdn);
        let e = mime::parse_entity(&bytes).unwrap();
        let ct = e.content_type().unwrap();
        let parts = mime::split_multipart(e.body, ct.param("boundary").unwrap()).unwrap();
        assert_eq!(parts.len(), 2);
        let text = String::from_utf8_lossy(parts[1]);
        assert!(text.contains("Disposition: automatic-action/MDN-sent-automatically; processed/error: integrity-check-failed"));
        assert!(text.contains("Received-Content-MIC: abc=, sha-256"));
        assert!(text.contains("Original-Message-ID: <m1@acme>"));
    }

    #[test]
    fn reads_back_what_it_builds() {
        let fields = MdnFields {
            our_as2_id: "PARTNER",
            partner_as2_id: "QUAI",
            original_message_id: "<m2@quai>",
            disposition: Disposition::Processed,
            mic: Some(("xyz=".into(), "sha-256".into())),
            reporting_ua: "test",
            explanation: "",
        };
        let mdn = build(&fields, None).unwrap();
        let r = read_mdn(mdn.header("content-type").unwrap(), &mdn.body, None).unwrap();
        assert!(!r.signed && r.is_processed());
        assert_eq!(r.original_message_id.as_deref(), Some("<m2@quai>"));
        assert_eq!(r.mic, Some(("xyz=".into(), "sha-256".into())));
        assert!(r.text.contains("m2@quai"));

        let failed = MdnFields {
            disposition: Disposition::Error(ErrorModifier::DecryptionFailed),
            ..fields
        };
        let mdn = build(&failed, None).unwrap();
        let r = read_mdn(mdn.header("content-type").unwrap(), &mdn.body, None).unwrap();
        assert!(!r.is_processed());
        assert_eq!(
            r.disposition_type().as_deref(),
            Some("processed/error: decryption-failed")
        );
        assert!(read_mdn("text/plain", b"hello", None).is_err());
        assert!(read_mdn(
            "multipart/report; boundary=x",
            b"--x\r\n\r\nno\r\n--x--",
            None
        )
        .is_err());
    }

    #[test]
    fn http_date_format() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(httpdate(t), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
