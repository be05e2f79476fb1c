//! A webhook POST of the partner API: one JSON body to one URL, signed by
//! the caller, without following redirects, within a deadline, the
//! answer's body read at most a few KiB (it is not used).
//!
//! The URL is the one the partner subscribed with and the operator's
//! `[api] webhook_urls` allowed; this module only sends.

use std::time::Duration;

/// Why a webhook POST failed; `transient` ones are tried again later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WebhookError {
    pub message: String,
    pub transient: bool,
}

/// POST `body` (JSON) to `url` with the extra `headers`; Ok on a 2xx.
pub async fn post_webhook(
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
    timeout: Duration,
) -> Result<u16, WebhookError> {
    let fail = |message: String, transient: bool| WebhookError { message, transient };
    let parsed = reqwest::Url::parse(url).map_err(|e| fail(format!("bad URL: {e}"), false))?;
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| fail(format!("HTTP client: {e}"), true))?;
    let mut req = client
        .post(parsed)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| fail(format!("POST failed: {}", without_url(&e)), true))?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(status);
    }
    Err(fail(
        format!("answered HTTP {status}"),
        // A redirect is never followed: it will not fix itself.
        !(300..400).contains(&status),
    ))
}

/// A transport error's text without the URL (it may carry a secret path).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "the webhook URL");
    }
    if let Some(source) = std::error::Error::source(e) {
        text.push_str(&format!(": {source}"));
    }
    text
}
