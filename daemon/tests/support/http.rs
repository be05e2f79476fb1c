//! Helpers of the ops HTTP tests: a spool with flows ingested through the
//! daemon's own pipeline, `serve` on 127.0.0.1:0, and a minimal HTTP/1.1
//! client (one request per connection; no client library needed).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use quai::config::Config;
use quai::App;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A served daemon over a temporary home.
pub struct Served {
    pub home: tempfile::TempDir,
    pub daemon: Arc<App>,
    pub addr: SocketAddr,
    pub stop: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Served {
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.task
            .await
            .expect("serve task")
            .expect("serve ended cleanly");
    }
}

pub fn config_at(home: &Path) -> Config {
    let mut config = Config::embedded_at(home);
    config.http_listen = None;
    config.workers = 1;
    config.lease_seconds = 30;
    config
}

/// Ingest `files` (name, bytes) for `partner` with `quai ingest`'s code path:
/// landed, registered, processed, acknowledged.
pub async fn ingest(config: &Config, partner: &str, files: &[(&str, Vec<u8>)]) {
    let dir = config.home.join("to-ingest").join(partner);
    std::fs::create_dir_all(&dir).unwrap();
    let mut paths: Vec<PathBuf> = Vec::new();
    for (name, bytes) in files {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        paths.push(p);
    }
    let app = App::open(config.clone()).await.expect("app");
    // New partners are accepted; exit 1 means an invoice was rejected.
    let code = quai::commands::ingest(&app, partner, true, &paths, true)
        .await
        .expect("ingest");
    assert!(code <= 1, "ingest exit code {code}");
}

/// The standard data set: acme sends one valid UBL invoice and one that
/// breaks BR-07; globex sends a CII invoice.
pub async fn standard_flows(config: &Config) {
    ingest(
        config,
        "acme",
        &[
            ("acme-valid.xml", fixture("ubl-tc434-example2.xml")),
            ("acme-br07.xml", fixture("BR-07__fail__1.xml")),
        ],
    )
    .await;
    ingest(
        config,
        "globex",
        &[("globex-cii.xml", fixture("CII_example1.xml"))],
    )
    .await;
}

pub async fn daemon_for(config: Config) -> Arc<App> {
    App::inspect(config).await.expect("open spool")
}

/// Serve `daemon` with `serve_fn` (the crate's `http::serve`) on 127.0.0.1:0.
pub async fn start<F, Fut>(home: tempfile::TempDir, daemon: Arc<App>, serve_fn: F) -> Served
where
    F: FnOnce(Arc<App>, tokio::net::TcpListener, axum::Router, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(serve_fn(
        daemon.clone(),
        listener,
        axum::Router::new(),
        stop.clone(),
    ));
    Served {
        home,
        daemon,
        addr,
        stop,
        task,
    }
}

/// A response: status, lower-cased headers, body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }
}

/// GET `path` with optional extra headers.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(20), s.read_to_end(&mut raw))
        .await
        .expect("response within 20 s")
        .expect("read response");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").expect("chunk size");
        let size_str = String::from_utf8_lossy(&b[..eol]);
        let size = usize::from_str_radix(size_str.split(';').next().unwrap().trim(), 16)
            .expect("hex chunk size");
        b = &b[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// One sample line of the Prometheus text format: (name, labels, value).
pub type Sample = (String, Vec<(String, String)>, f64);

/// Parse the exposition format strictly enough to catch malformed output:
/// every sample's family must have been declared by a `# TYPE` line first,
/// label values are quoted with escapes, values parse as floats.
pub fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut declared: Vec<(String, String)> = Vec::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let name = it.next().unwrap().to_string();
            let kind = it.next().expect("type").to_string();
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind.as_str()),
                "unknown type in {line:?}"
            );
            assert!(
                !declared.iter().any(|(n, _)| n == &name),
                "family {name} declared twice"
            );
            declared.push((name, kind));
            continue;
        }
        if line.starts_with('#') {
            assert!(line.starts_with("# HELP "), "stray comment {line:?}");
            continue;
        }
        let (name, labels, rest) = match line.find('{') {
            Some(i) => {
                let end = line.rfind('}').expect("closing brace");
                (
                    &line[..i],
                    parse_labels(&line[i + 1..end]),
                    line[end + 1..].trim(),
                )
            }
            None => {
                let (n, v) = line.split_once(' ').expect("name value");
                (n, Vec::new(), v.trim())
            }
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        let family = declared
            .iter()
            .find(|(n, k)| {
                n == name
                    || (k == "histogram"
                        && [
                            format!("{n}_bucket"),
                            format!("{n}_sum"),
                            format!("{n}_count"),
                        ]
                        .contains(&name.to_string()))
            })
            .unwrap_or_else(|| panic!("sample {name} before its # TYPE"));
        let _ = family;
        let value: f64 = match rest {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        out.push((name.to_string(), labels, value));
    }
    out
}

fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if name.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('='));
        assert_eq!(chars.next(), Some('"'), "label value must be quoted");
        let mut value = String::new();
        loop {
            match chars.next().expect("unterminated label value") {
                '\\' => match chars.next().expect("escape") {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.push((name.trim().to_string(), value));
        match chars.next() {
            Some(',') => continue,
            None => break,
            Some(c) => panic!("unexpected {c:?} in labels {s:?}"),
        }
    }
    out
}

/// The value of the sample `name` whose labels include all of `labels`.
pub fn sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| *v)
}
