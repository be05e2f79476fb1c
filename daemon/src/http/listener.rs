//! The ops listener's door: how long and how many clients may hold it.
//!
//! Why not `axum::serve`: it has no deadline for request headers, no bound
//! on how slowly a body may arrive or a response be taken, and no cap on
//! connections, so a handful of slow clients (slowloris headers, a body
//! trickled a byte a minute, a response never read) would hold the
//! listener, the AS2 endpoint included, for ever. This module serves the
//! same `Router` over hyper's HTTP/1.1 connections with:
//!
//! - **a header deadline** (`[http] header_timeout_seconds`): a request's
//!   head must arrive whole within it, counted from the moment the
//!   connection waits for a request (so an idle keep-alive connection is
//!   closed after it too);
//! - **a body rate** (`[http] body_timeout_seconds`, `body_min_rate`): a
//!   body may take `body_timeout_seconds`, plus one second per
//!   `body_min_rate` bytes received; past that its reading fails (the AS2
//!   endpoint then stores nothing and answers nothing) and the connection
//!   is closed;
//! - **a send deadline** (`[http] send_timeout_seconds`): a response the
//!   client stops taking for that long closes the connection;
//! - **a connection cap** (`[http] max_connections`): one more is answered
//!   `503` with `Connection: close` and dropped at once.
//!
//! The Host check against DNS rebinding ([`HostRule`]) is a middleware the
//! ops routes get in [`super::serve`]; it lives here because it is about
//! who may talk to this door, not about what a route answers.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tower_service::Service;
use tracing::{debug, info, warn};

/// The listener's limits (`[http]`, see [`crate::config::HttpLimits`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounds {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// Bytes per second a body must keep up after `body_timeout` (0: no rate,
    /// `body_timeout` is then a total deadline).
    pub body_min_rate: u64,
    pub send_timeout: Duration,
    pub max_connections: usize,
    /// In-flight requests get this long to finish once the listener stops.
    pub drain_timeout: Duration,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            body_min_rate: 1024,
            send_timeout: Duration::from_secs(60),
            max_connections: 256,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Serve `app` on `listener` within `bounds` until `stop`; then stop
/// accepting, let in-flight requests finish (at most `drain_timeout`) and
/// return.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    bounds: Bounds,
    stop: CancellationToken,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(bounds.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(bounds.header_timeout)
        .max_headers(100)
        .keep_alive(true);
    let mut accept_errors = 0u32;
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => { accept_errors = 0; a }
                Err(e) => {
                    // EMFILE and the like: wait a little rather than spin.
                    accept_errors = accept_errors.saturating_add(1);
                    if accept_errors == 1 {
                        warn!(error = %e, "ops HTTP listener cannot accept a connection");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            crate::metrics::http_refused("max_connections");
            debug!(peer = %peer, max = bounds.max_connections, "HTTP connection refused: too many connections");
            tokio::spawn(refuse_busy(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(SendBounded::new(stream, bounds.send_timeout));
        let router = app.clone();
        let (grace, rate) = (bounds.body_timeout, bounds.body_min_rate);
        let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let mut router = router.clone();
            let req = req.map(|body| RateBody::new(body, grace, rate));
            async move { router.call(req).await }
        });
        let conn = graceful.watch(builder.serve_connection(io, svc));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                if e.is_timeout() {
                    crate::metrics::http_refused("header_timeout");
                }
                debug!(peer = %peer, error = %e, "HTTP connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(bounds.drain_timeout) => {
            info!("ops HTTP listener stopped with requests still in flight");
        }
    }
    Ok(())
}

/// Answer a connection over the cap without reading from it.
async fn refuse_busy(mut stream: tokio::net::TcpStream) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\
Retry-After: 1\r\nContent-Type: text/plain\r\nContent-Length: 38\r\n\r\n\
too many connections; try again later\n";
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(BUSY).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// A request body that must keep a minimum rate (see the module doc).
pub struct RateBody<B> {
    inner: B,
    started: Instant,
    grace: Duration,
    rate: u64,
    received: u64,
    timer: Pin<Box<Sleep>>,
}

impl<B> RateBody<B> {
    pub fn new(inner: B, grace: Duration, rate: u64) -> RateBody<B> {
        let started = Instant::now();
        RateBody {
            inner,
            started,
            grace,
            rate,
            received: 0,
            timer: Box::pin(tokio::time::sleep_until(started + grace)),
        }
    }

    fn deadline(&self) -> Instant {
        let earned = match self.rate {
            0 => Duration::ZERO,
            r => Duration::from_secs_f64(self.received as f64 / r as f64),
        };
        self.started + self.grace + earned
    }
}

/// The error a body too slow ends with.
#[derive(Debug)]
pub struct BodyTooSlow {
    pub received: u64,
    pub elapsed: Duration,
}

impl std::fmt::Display for BodyTooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "request body too slow: {} bytes in {:.1} s (see [http] body_timeout_seconds, body_min_rate)",
            self.received,
            self.elapsed.as_secs_f64()
        )
    }
}

impl std::error::Error for BodyTooSlow {}

impl<B> http_body::Body for RateBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    let deadline = this.deadline();
                    this.timer.as_mut().reset(deadline);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    crate::metrics::http_refused("body_rate");
                    let err = BodyTooSlow {
                        received: this.received,
                        elapsed: this.started.elapsed(),
                    };
                    warn!(error = %err, "HTTP request body refused");
                    Poll::Ready(Some(Err(Box::new(err))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A stream whose writes fail when the peer takes nothing for `timeout`.
struct SendBounded<S> {
    inner: S,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> SendBounded<S> {
    fn new(inner: S, timeout: Duration) -> SendBounded<S> {
        SendBounded {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// The inner write returned `Pending`: arm the timer, or report it ran out.
    fn pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let timeout = self.timeout;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                crate::metrics::http_refused("send_timeout");
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client took nothing of the response for [http] send_timeout_seconds",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SendBounded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SendBounded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.pending(cx),
            done => {
                self.stalled = None;
                done
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.pending(cx),
            done => {
                self.stalled = None;
                done
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.pending(cx).map(|r| r.map(|_| ())),
            done => {
                self.stalled = None;
                done
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Which Host headers the ops routes answer when no token is configured:
/// the listener's own address (its IP literal, `localhost` and the
/// loopback literals when it is on loopback; any port) and the names of
/// `[http] allowed_hosts`.
///
/// Why: without a token, the listener trusts whoever can connect to
/// loopback. A web page the operator's browser opens can make the browser
/// connect there with a name the attacker controls (DNS rebinding); the
/// browser then sends that name as Host. Refusing unknown names closes it.
#[derive(Debug, Clone)]
pub struct HostRule {
    pub listen: SocketAddr,
    /// Lower-cased `name` (any port) or `name:port` entries.
    pub allowed: Arc<Vec<String>>,
}

impl HostRule {
    pub fn new(listen: SocketAddr, allowed: &[String]) -> HostRule {
        HostRule {
            listen,
            allowed: Arc::new(
                allowed
                    .iter()
                    .map(|a| a.trim().trim_end_matches('.').to_ascii_lowercase())
                    .filter(|a| !a.is_empty())
                    .collect(),
            ),
        }
    }

    /// Is `host` (a Host header value) one this listener answers to?
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        let Some((name, port)) = split_host(&host) else {
            return false;
        };
        let name = name.trim_end_matches('.');
        for entry in self.allowed.iter() {
            match split_host(entry) {
                Some((n, Some(p))) if n == name && port == Some(p) => return true,
                Some((n, None)) if n == name => return true,
                _ => {}
            }
        }
        // An IP literal or `localhost` cannot be a rebound name: whatever
        // the port, it names this machine as the client sees it.
        let ip = self.listen.ip();
        let literal = match name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
            Some(v6) => v6.parse::<std::net::IpAddr>().ok(),
            None => name.parse::<std::net::Ipv4Addr>().ok().map(Into::into),
        };
        match literal {
            Some(lit) => lit == ip || (ip.is_loopback() && lit.is_loopback()),
            None => name == "localhost" && ip.is_loopback(),
        }
    }
}

/// `name[:port]`, `[v6][:port]`; `None` when the port is not a number.
fn split_host(host: &str) -> Option<(&str, Option<u16>)> {
    if host.is_empty() {
        return None;
    }
    let (name, port) = if host.starts_with('[') {
        let end = host.find(']')?;
        let rest = &host[end + 1..];
        let port = match rest.strip_prefix(':') {
            Some(p) => Some(p),
            None if rest.is_empty() => None,
            None => return None,
        };
        (&host[..=end], port)
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    if name.is_empty() || name.contains(':') && !name.starts_with('[') {
        return None;
    }
    Some((name, port))
}

/// Middleware: refuse a request whose Host is not one of `rule`'s (`421`).
pub async fn check_host(State(rule): State<HostRule>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    match host {
        Some(h) if rule.allows(h) => next.run(req).await,
        _ => {
            crate::metrics::http_refused("host");
            (
                StatusCode::MISDIRECTED_REQUEST,
                axum::Json(serde_json::json!({
                    "error": "host not allowed",
                    "reason": "without [http] token_file this listener answers only to its own address and [http] allowed_hosts"
                })),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_rule() {
        let r = HostRule::new("127.0.0.1:8470".parse().unwrap(), &["quai.example".into()]);
        for ok in [
            "127.0.0.1:8470",
            "localhost:8470",
            "LOCALHOST:8470",
            "[::1]:8470",
            "127.0.0.2:8470",
            "quai.example",
            "quai.example:443",
            "Quai.Example.",
            "127.0.0.1",
            "localhost",
            "127.0.0.1:8471",
        ] {
            assert!(r.allows(ok), "{ok}");
        }
        for bad in [
            "attacker.example:8470",
            "attacker.example",
            "",
            "127.0.0.1:x",
            "[::1",
            "a:b:c",
            "10.0.0.1:8470",
            "localhost.attacker.example:8470",
        ] {
            assert!(!r.allows(bad), "{bad}");
        }
        let r = HostRule::new("192.0.2.7:80".parse().unwrap(), &["q.example:8443".into()]);
        assert!(r.allows("192.0.2.7"));
        assert!(!r.allows("localhost"));
        assert!(!r.allows("127.0.0.1"));
        assert!(r.allows("q.example:8443"));
        assert!(!r.allows("q.example:8444"));
        assert!(!r.allows("q.example"));
    }
}
