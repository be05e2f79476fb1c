//! The ops HTTP listener: health, metrics, a JSON API and the status page.
//!
//! Everything here reads the spool; nothing writes it. Routes:
//!
//! | route | what |
//! |---|---|
//! | `GET /healthz` | the process is alive (never needs a token) |
//! | `GET /readyz` | the spool answers a cheap query (503 with a JSON reason otherwise) |
//! | `GET /metrics` | Prometheus text format, see [`crate::metrics`] |
//! | `GET /api/status` | same JSON as `quai status --json` |
//! | `GET /api/flows?partner=&state=&since=&limit=` | flows, newest first, like `quai flows --json` |
//! | `GET /api/flows/:id` | one flow with its invoices and acknowledgements, like `quai flow ID --json` |
//! | `GET /api/partners` | per partner: last flow, flows by state, invoices, reject rate |
//! | `GET /api/overview` | the data of the status page |
//! | `GET /api/invoices?partner=&status=&since=&limit=` | invoices a partner sent or receives, like `quai invoices --json` |
//! | `GET /api/invoices/:flow/:index` | one invoice: route, deliveries, statuses, like `quai invoice FLOW/INDEX --json` |
//! | `GET /api/invoices/by-number?number=&seller=` | the invoices with that number from that seller |
//! | `GET /api/exchange` | per recipient: invoices routed, delivered, awaiting delivery |
//! | `GET /openapi.json` | the `/api` routes above as OpenAPI 3.1, from the handlers' types ([`openapi`]) |
//! | `GET /` | the status page (server-rendered HTML, refreshes itself) |
//! | `GET /partners/:id` | a partner's page: flows (`?state=`), reject rate, last flow, pending deliveries |
//! | `GET /flows?partner=&state=&invoice=` | flows, filtered by state, or holding an invoice number (the search box) |
//! | `GET /flows/:id` | a flow's page: invoices, rejects with reasons, acknowledgements and deliveries, history |
//!
//! `docs/api.md` documents the JSON shapes.
//!
//! **Authentication.** When `[http] token_file` is set, every route above
//! except `/healthz` requires `Authorization: Bearer <token>`, compared in
//! constant time. The token is read once when the listener starts and is
//! never logged. [`serve`] refuses to start on a non-loopback address
//! without a token (the configuration already refuses it; this is the
//! second lock on the door, for listeners built by hand). Routes of `extra`
//! (the AS2 endpoint) are merged *outside* the token check: AS2 partners
//! authenticate with S/MIME signatures and certificates, and standard AS2
//! clients cannot send a bearer token. The partner API (`/v1`,
//! [`flow_service`]) is merged outside it too: partners present their own
//! tokens (`quai token create`), never the operators'.
//!
//! **Bounds.** [`serve`] runs the routes through [`listener`]: deadlines
//! for headers, bodies and sends, a connection cap, and, without a token,
//! a Host check on the ops routes (DNS rebinding), all from `[http]`.

mod api;
mod detail;
pub mod flow_service;
mod html;
mod invoices;
pub mod listener;
pub mod openapi;
pub mod overview;
mod page;
mod shapes;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::app::App;

/// The JSON of `quai flow ID --json` (for the CLI to share with `/api/flows/:id`).
#[allow(unused_imports)]
pub use api::{flow_detail_json, AckJson};

/// A bearer token held in memory. `Debug` never prints it.
#[derive(Clone)]
pub struct Token(Arc<Vec<u8>>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

impl Token {
    /// Read a token file: the first line, surrounding whitespace removed.
    /// An empty or unreadable file is an error (never a disabled check).
    pub fn from_file(path: &Path) -> anyhow::Result<Token> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the HTTP token file {}", path.display()))?;
        let token = text.lines().next().unwrap_or("").trim();
        if token.is_empty() {
            bail!("the HTTP token file {} is empty", path.display());
        }
        Ok(Token(Arc::new(token.as_bytes().to_vec())))
    }

    /// A token from memory (tests, embedding).
    pub fn new(token: &str) -> Token {
        Token(Arc::new(token.trim().as_bytes().to_vec()))
    }

    /// Does an `Authorization` header value carry this token?
    pub fn matches_header(&self, value: &[u8]) -> bool {
        let Some(rest) = strip_bearer(value) else {
            return false;
        };
        constant_time_eq(rest, &self.0)
    }
}

fn strip_bearer(value: &[u8]) -> Option<&[u8]> {
    if value.len() < 7 || !value[..7].eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let rest = &value[7..];
    let start = rest.iter().position(|b| *b != b' ')?;
    let end = rest.iter().rposition(|b| *b != b' ')? + 1;
    Some(&rest[start..end])
}

/// Compare without an early exit on the first differing byte, so response
/// times do not reveal how much of a guess was right. The length is not
/// secret (it is compared too, but after the full scan).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    let mut diff: u8 = 0;
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    diff == 0 && a.len() == b.len()
}

async fn require_token(State(token): State<Token>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| token.matches_header(v.as_bytes()))
        .unwrap_or(false);
    if ok {
        return next.run(req).await;
    }
    let mut resp = (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({
            "error": "unauthorized",
            "reason": "this listener requires Authorization: Bearer <token> (see [http] token_file)"
        })),
    )
        .into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"quai\""),
    );
    resp
}

/// The ops routes (everything but `extra`), with the token check when a
/// token is given. Exposed for tests and for embedding in another server.
pub fn router(daemon: Arc<App>, token: Option<Token>) -> Router {
    let protected = Router::new()
        .route("/", get(page::status_page))
        .route("/partners/:id", get(detail::partner_page))
        .route("/flows", get(detail::flow_list))
        .route("/flows/:id", get(detail::flow_page))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .route("/openapi.json", get(openapi::openapi_json));
    // The JSON API: each route at the path its OpenAPI annotation declares.
    let protected = openapi::api_routes()
        .into_iter()
        .fold(protected, |r, (path, handler)| r.route(&path, handler))
        .with_state(daemon);
    let protected = match token {
        Some(t) => protected.layer(middleware::from_fn_with_state(t, require_token)),
        None => protected,
    };
    Router::new()
        .route("/healthz", get(api::healthz))
        .merge(protected)
}

/// Check that serving on `addr` is allowed: a non-loopback address needs a token.
pub fn check_exposure(addr: SocketAddr, token: Option<&Token>) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() && token.is_none() {
        bail!(
            "refusing to serve HTTP on {addr}: it is not a loopback address and no [http] token_file is configured"
        );
    }
    Ok(())
}

/// The checks [`serve`] runs at start, for callers that want a refused
/// listener to fail startup (before `READY=1`) rather than a spawned task:
/// the token file, when configured, must be readable and non-empty; a
/// non-loopback `addr` needs one.
pub fn preflight(config: &crate::config::Config, addr: SocketAddr) -> anyhow::Result<()> {
    let token = match &config.http_token_file {
        Some(path) => Some(Token::from_file(path)?),
        None => None,
    };
    check_exposure(addr, token.as_ref())
}

/// Serve the ops routes, merged with `extra` (e.g. the AS2 route `POST /as2`),
/// on `listener` until `stop` is cancelled; in-flight requests are finished.
///
/// Fails at start when the token file is set but unreadable or empty, or when
/// the listener is not on loopback and no token file is configured.
pub async fn serve(
    daemon: Arc<App>,
    listener: TcpListener,
    extra: Router,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    crate::metrics::mark_started();
    let addr = listener
        .local_addr()
        .context("cannot read the HTTP listener's address")?;
    let token = match &daemon.config().http_token_file {
        Some(path) => Some(Token::from_file(path)?),
        None => None,
    };
    check_exposure(addr, token.as_ref())?;
    let limits = daemon.config().http_limits.clone();
    let daemon_for_api = daemon.clone();
    let mut ops = router(daemon, token.clone());
    if token.is_none() {
        // Without a token, only the listener's own names are answered (DNS
        // rebinding); the AS2 routes of `extra` authenticate by signature.
        let rule = listener::HostRule::new(addr, &limits.allowed_hosts);
        ops = ops.layer(middleware::from_fn_with_state(rule, listener::check_host));
    }
    // The partner API (`/v1`) has its own tokens, outside the operators'.
    let app = ops.merge(extra).merge(flow_service::router(daemon_for_api));
    info!(
        listen = %addr,
        token = if token.is_some() { "required" } else { "none (loopback only)" },
        max_connections = limits.max_connections,
        "ops HTTP listening: status page http://{addr}/ , metrics /metrics"
    );
    let bounds = listener::Bounds {
        header_timeout: Duration::from_secs(limits.header_timeout_seconds),
        body_timeout: Duration::from_secs(limits.body_timeout_seconds),
        body_min_rate: limits.body_min_rate,
        send_timeout: Duration::from_secs(limits.send_timeout_seconds),
        max_connections: limits.max_connections,
        ..listener::Bounds::default()
    };
    listener::serve(listener, app, bounds, stop)
        .await
        .context("the HTTP server failed")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing_and_compare() {
        let t = Token::new("s3cret");
        assert!(t.matches_header(b"Bearer s3cret"));
        assert!(t.matches_header(b"bearer  s3cret "));
        assert!(!t.matches_header(b"Bearer s3cre"));
        assert!(!t.matches_header(b"Bearer s3cret2"));
        assert!(!t.matches_header(b"Basic s3cret"));
        assert!(!t.matches_header(b"Bearer "));
        assert!(!t.matches_header(b""));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"a", b""));
        assert!(!constant_time_eq(b"ab\0", b"ab"));
    }

    #[test]
    fn public_address_needs_token() {
        let public: SocketAddr = "0.0.0.0:8470".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8470".parse().unwrap();
        let local6: SocketAddr = "[::1]:8470".parse().unwrap();
        assert!(check_exposure(public, None).is_err());
        assert!(check_exposure(public, Some(&Token::new("x"))).is_ok());
        assert!(check_exposure(local, None).is_ok());
        assert!(check_exposure(local6, None).is_ok());
    }

    #[test]
    fn token_debug_hides_value() {
        assert_eq!(format!("{:?}", Token::new("s3cret")), "Token(***)");
    }
}
