//! AS2 receiving only calls addresses the operator configured: an
//! asynchronous MDN goes to the partner's configured `mdn_url` and nowhere
//! else; a Receipt-Delivery-Option naming another address is answered
//! synchronously and that address never sees a request; MDN posts (and
//! outbound AS2 posts) follow no redirects; an unverified message of a
//! partner that must sign gets its error in the response, nothing posted.
//! Each "address" is a real local HTTP listener recording what reaches it.

use quai_test_support::as2peer;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use as2peer::KeyPair;
use quai_connectors::as2::{
    router, As2Receiver, As2Settings, AsyncMdnDelivery, Identity, IdentityConfig, Partner,
    PartnerConfig,
};
use quai_connectors::{Accepted, FlowSink, LandedFlow, SinkError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Default)]
struct CountingSink {
    n: Mutex<i64>,
}

impl FlowSink for CountingSink {
    async fn accept(&self, _flow: LandedFlow) -> Result<Accepted, SinkError> {
        let mut n = self.n.lock().unwrap();
        *n += 1;
        Ok(Accepted::New { flow_id: *n })
    }
}

/// One request as a listener saw it.
#[derive(Debug, Clone)]
struct Seen {
    head: String,
    body: Vec<u8>,
}

/// A local HTTP server that records every request and answers each with
/// `response` (raw HTTP).
struct Listener {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Listener {
    async fn start(response: String) -> Listener {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mdn", l.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rec = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                let rec = rec.clone();
                let response = response.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let head_end = loop {
                        let Ok(n) = s.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                    let len = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        let Ok(n) = s.read(&mut chunk).await else {
                            break;
                        };
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    rec.lock().unwrap().push(Seen {
                        head,
                        body: buf[head_end..].to_vec(),
                    });
                    let _ = s.write_all(response.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        Listener { url, seen }
    }

    fn ok() -> String {
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
    }

    fn redirect_to(target: &str) -> String {
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    url: String,
}

/// A receiver whose partner ACME (id acme) may get asynchronous MDNs at
/// `mdn_url` only (none when `None`).
async fn receiver(mdn_url: Option<&str>, require_signed: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let quai = KeyPair::generate(dir.path(), "platform");
    let acme = KeyPair::generate(dir.path(), "acme");
    let identity = Identity::load(&IdentityConfig {
        as2_id: "PLATFORM".into(),
        certificate: quai.cert_path.clone(),
        key: quai.key_path.clone(),
    })
    .unwrap();
    let partner = Partner::load(&PartnerConfig {
        partner_id: "acme".into(),
        as2_id: "ACME".into(),
        certificate: Some(acme.cert_path.clone()),
        require_signed,
        require_encrypted: false,
        allow_async_mdn: true,
    })
    .unwrap();
    let mut settings = As2Settings::new(identity, vec![partner], dir.path().join("flows"));
    settings.async_delivery = AsyncMdnDelivery::Spawn {
        attempts: 1,
        first_delay: Duration::from_millis(50),
    };
    if let Some(u) = mdn_url {
        settings.allow_mdn_url("acme", u).unwrap();
    }
    let receiver = Arc::new(As2Receiver::new(settings, Arc::new(CountingSink::default())).unwrap());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/as2", l.local_addr().unwrap());
    let app = router(receiver);
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    Fixture { _dir: dir, url }
}

/// Posts an unsigned, unencrypted AS2 message asking for an asynchronous
/// MDN at `receipt_to`; returns (status, content type, body).
async fn post(fx: &Fixture, id: &str, receipt_to: &str) -> (u16, String, String) {
    let client = reqwest::Client::new();
    let resp = client
        .post(&fx.url)
        .header("AS2-Version", "1.2")
        .header("AS2-From", "ACME")
        .header("AS2-To", "PLATFORM")
        .header("Message-ID", format!("<{id}@acme.example>"))
        .header("Content-Type", "application/xml")
        .header("Content-Disposition", "attachment; filename=\"inv.xml\"")
        .header("Disposition-Notification-To", "edi@acme.example")
        .header("Receipt-Delivery-Option", receipt_to)
        .body(b"<Invoice>1</Invoice>".to_vec())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ct, resp.text().await.unwrap())
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(800)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_mdn_goes_only_to_the_configured_url() {
    let configured = Listener::start(Listener::ok()).await;
    let attacker = Listener::start(Listener::ok()).await;
    let fx = receiver(Some(&configured.url), false).await;

    // Asked for the configured URL: posted there, asynchronously.
    let (status, _, body) = post(&fx, "ok-1", &configured.url).await;
    assert_eq!(status, 200);
    assert!(body.contains("asynchronously"), "{body}");
    settle().await;
    let got = configured.seen();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].head.starts_with("POST /mdn "), "{}", got[0].head);
    assert!(String::from_utf8_lossy(&got[0].body).contains("ok-1@acme.example"));

    // Asked for any other address: answered in the response, never called.
    for other in [
        attacker.url.clone(),
        attacker.url.replace("/mdn", "/other"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "file:///etc/passwd".to_string(),
    ] {
        let (status, ct, body) = post(&fx, "evil", &other).await;
        assert_eq!(status, 200, "{other}");
        assert!(
            ct.starts_with("multipart/report"),
            "synchronous MDN for {other}: {ct} {body}"
        );
        assert!(body.contains("evil@acme.example"));
    }
    settle().await;
    assert!(attacker.seen().is_empty(), "{:?}", attacker.seen());
    assert_eq!(
        configured.seen().len(),
        1,
        "nothing more at the configured URL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_configured_url_every_mdn_is_synchronous() {
    let attacker = Listener::start(Listener::ok()).await;
    let fx = receiver(None, false).await;
    let (status, ct, _) = post(&fx, "none-1", &attacker.url).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("multipart/report"), "{ct}");
    settle().await;
    assert!(attacker.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mdn_posts_follow_no_redirect() {
    let attacker = Listener::start(Listener::ok()).await;
    let configured = Listener::start(Listener::redirect_to(&attacker.url)).await;
    let fx = receiver(Some(&configured.url), false).await;
    let (status, _, body) = post(&fx, "redir-1", &configured.url).await;
    assert_eq!(status, 200);
    assert!(body.contains("asynchronously"), "{body}");
    settle().await;
    assert_eq!(configured.seen().len(), 1);
    assert!(
        attacker.seen().is_empty(),
        "redirect followed: {:?}",
        attacker.seen()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverified_message_of_a_signing_partner_posts_nothing() {
    let configured = Listener::start(Listener::ok()).await;
    let fx = receiver(Some(&configured.url), true).await;
    // Unsigned, although the partner must sign: the error MDN is in the
    // response, even though the URL asked for is the configured one.
    let (status, ct, body) = post(&fx, "unsigned-1", &configured.url).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("multipart/report"), "{ct}");
    assert!(body.contains("processed/error"), "{body}");
    settle().await;
    assert!(configured.seen().is_empty(), "{:?}", configured.seen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_as2_posts_follow_no_redirect() {
    use quai_connectors::as2::send::{self, MdnWanted, Outbound};
    let attacker = Listener::start(Listener::ok()).await;
    let configured = Listener::start(Listener::redirect_to(&attacker.url)).await;
    let out = Outbound {
        url: configured.url.clone(),
        sign: false,
        encrypt: false,
        compress: false,
        encryption: quai_connectors::as2::smime::Encryption::Aes256Cbc,
        signature: quai_connectors::as2::smime::MicAlg::default_sha256(),
        mdn: MdnWanted::Unsigned,
        timeout: Duration::from_secs(5),
        max_bytes: 1 << 20,
    };
    let dir = tempfile::tempdir().unwrap();
    let quai = KeyPair::generate(dir.path(), "platform");
    let peer = KeyPair::generate(dir.path(), "peer");
    let identity = Identity::load(&IdentityConfig {
        as2_id: "PLATFORM".into(),
        certificate: quai.cert_path.clone(),
        key: quai.key_path.clone(),
    })
    .unwrap();
    let partner = Partner::load(&PartnerConfig {
        partner_id: "peer".into(),
        as2_id: "PEER".into(),
        certificate: Some(peer.cert_path.clone()),
        require_signed: false,
        require_encrypted: false,
        allow_async_mdn: false,
    })
    .unwrap();
    let message = send::build_message(&identity, &partner, &out, "x.xml", b"<x/>").unwrap();
    let r = send::post(&out, &message).await;
    assert!(r.is_err(), "a redirect is an error, not a hop: {r:?}");
    settle().await;
    assert_eq!(configured.seen().len(), 1);
    assert!(
        attacker.seen().is_empty(),
        "redirect followed: {:?}",
        attacker.seen()
    );
}
