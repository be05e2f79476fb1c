//! AS2 layer combinations the pyas2lib peer does not produce (opaque
//! signed-data, compression after signing, base64 transfer encoding, bare
//! encrypted content), hostile nestings and bombs, MDN bookkeeping — all
//! through the HTTP-less `As2Receiver::receive`, messages built with OpenSSL.

use quai_test_support::as2peer;

use std::collections::HashMap;
use std::fs;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use as2peer::KeyPair;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use base64::Engine;
use bytes::Bytes;
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::stack::Stack;
use openssl::symm::Cipher;
use quai_connectors::as2::mdn::ErrorModifier;
use quai_connectors::as2::smime::{self, MicAlg};
use quai_connectors::as2::{
    As2Outcome, As2Receiver, As2Settings, AsyncMdnDelivery, Identity, Partner, PendingMdn,
};
use quai_connectors::{Accepted, FlowSink, LandedFlow, SinkError};

#[derive(Default)]
struct Sink {
    flows: Mutex<Vec<(LandedFlow, Vec<u8>)>>,
    ids: Mutex<HashMap<String, i64>>,
    next: AtomicI64,
}

impl FlowSink for Sink {
    async fn accept(&self, flow: LandedFlow) -> Result<Accepted, SinkError> {
        let bytes = fs::read(&flow.stored_path).map_err(|e| SinkError(e.to_string()))?;
        let key = flow.as2_message_id.clone().unwrap_or_default();
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let mut ids = self.ids.lock().unwrap();
        let acc = match ids.get(&key) {
            Some(&original) => Accepted::Duplicate {
                flow_id: id,
                original,
            },
            None => {
                ids.insert(key, id);
                Accepted::New { flow_id: id }
            }
        };
        self.flows.lock().unwrap().push((flow, bytes));
        Ok(acc)
    }
}

struct Fx {
    dir: tempfile::TempDir,
    quai: KeyPair,
    partner: KeyPair,
    sink: Arc<Sink>,
    rx: As2Receiver<Sink>,
}

fn fixture(tweak: impl FnOnce(&mut As2Settings)) -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let quai = KeyPair::generate(dir.path(), "platform");
    let partner = KeyPair::generate(dir.path(), "acme");
    let identity = Identity::from_pem(
        "PLATFORM",
        &fs::read(&quai.cert_path).unwrap(),
        &fs::read(&quai.key_path).unwrap(),
    )
    .unwrap();
    let p = Partner {
        partner_id: "acme".into(),
        as2_id: "ACME".into(),
        cert: Some(partner.cert.clone()),
        require_signed: false,
        require_encrypted: false,
        allow_async_mdn: true,
    };
    let mut settings = As2Settings::new(identity, vec![p], dir.path().join("flows"));
    tweak(&mut settings);
    let sink = Arc::new(Sink::default());
    let rx = As2Receiver::new(settings, sink.clone()).unwrap();
    Fx {
        dir,
        quai,
        partner,
        sink,
        rx,
    }
}

fn headers(content_type: &str, extra: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    let base = [
        ("as2-from", "ACME"),
        ("as2-to", "PLATFORM"),
        ("message-id", "<layers-1@acme>"),
        ("disposition-notification-to", "edi@acme.example"),
        (
            "disposition-notification-options",
            "signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, sha-256",
        ),
    ];
    for (k, v) in base.iter().chain(extra.iter()) {
        h.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h.insert("content-type", HeaderValue::from_str(content_type).unwrap());
    h
}

const ENTITY: &[u8] = b"Content-Type: application/xml\r\nContent-Disposition: attachment; filename=\"inv 1.xml\"\r\n\r\n<Invoice>layers</Invoice>\r\n";
const PAYLOAD: &[u8] = b"<Invoice>layers</Invoice>\r\n";

fn sha256_mic(parts: &[&[u8]]) -> String {
    MicAlg::from_name("sha-256").unwrap().mic(parts).unwrap()
}

/// The MDN text (signed or not), and assert its disposition.
fn mdn_text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

fn signed_multipart(fx: &Fx, content: &[u8]) -> (String, Vec<u8>) {
    let sig = smime::sign_detached(content, &fx.partner.cert, &fx.partner.key).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(sig);
    let mut body = b"--SIG\r\n".to_vec();
    body.extend_from_slice(content);
    body.extend_from_slice(b"\r\n--SIG\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    body.extend_from_slice(b64.as_bytes());
    body.extend_from_slice(b"\r\n--SIG--\r\n");
    (
        "multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=SIG"
            .to_string(),
        body,
    )
}

fn encrypt_to(fx: &Fx, content: &[u8]) -> Vec<u8> {
    let mut certs = Stack::new().unwrap();
    certs.push(fx.quai.cert.clone()).unwrap();
    CmsContentInfo::encrypt(&certs, content, Cipher::aes_128_cbc(), CMSOptions::BINARY)
        .unwrap()
        .to_der()
        .unwrap()
}

fn assert_stored(fx: &Fx, reply: &quai_connectors::as2::As2Reply, payload: &[u8], mic: &str) {
    let text = mdn_text(&reply.body);
    assert_eq!(reply.status, StatusCode::OK, "{text}");
    assert!(
        matches!(reply.outcome, As2Outcome::Accepted { .. }),
        "{:?}",
        reply.outcome
    );
    assert!(text.contains("; processed\r\n"), "{text}");
    assert!(
        text.contains(&format!("Received-Content-MIC: {mic}, sha-256")),
        "expected MIC {mic}: {text}"
    );
    let flows = fx.sink.flows.lock().unwrap();
    assert_eq!(flows.last().unwrap().1, payload);
}

#[tokio::test]
async fn opaque_signed_data() {
    let fx = fixture(|_| {});
    let certs = Stack::new().unwrap();
    let p7 = Pkcs7::sign(
        &fx.partner.cert,
        &fx.partner.key,
        &certs,
        ENTITY,
        Pkcs7Flags::BINARY,
    )
    .unwrap();
    let h = headers(
        "application/pkcs7-mime; smime-type=signed-data; name=smime.p7m",
        &[],
    );
    let r = fx.rx.receive(&h, Bytes::from(p7.to_der().unwrap())).await;
    assert_stored(&fx, &r, PAYLOAD, &sha256_mic(&[ENTITY]));
    assert_eq!(
        fx.sink.flows.lock().unwrap()[0].0.original_name,
        "inv 1.xml"
    );
}

#[tokio::test]
async fn compressed_after_signing_base64() {
    let fx = fixture(|_| {});
    let (ct, body) = signed_multipart(&fx, ENTITY);
    let mut signed_entity = format!("Content-Type: {ct}\r\n\r\n").into_bytes();
    signed_entity.extend_from_slice(&body);
    let z = smime::compress(&signed_entity);
    let b64 = base64::engine::general_purpose::STANDARD.encode(z);
    let wrapped: Vec<u8> = b64
        .as_bytes()
        .chunks(64)
        .flat_map(|c| [c, b"\r\n"].concat())
        .collect();
    let h = headers(
        "application/pkcs7-mime; smime-type=compressed-data",
        &[("content-transfer-encoding", "base64")],
    );
    let r = fx.rx.receive(&h, Bytes::from(wrapped)).await;
    // The MIC covers the signed part, not the compressed wrapper.
    assert_stored(&fx, &r, PAYLOAD, &sha256_mic(&[ENTITY]));
    assert!(r
        .headers
        .iter()
        .any(|(n, v)| n == "Content-Type" && v.starts_with("multipart/signed")));
}

#[tokio::test]
async fn encrypted_base64_and_bare_content() {
    let fx = fixture(|_| {});
    let der = encrypt_to(&fx, ENTITY);
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let h = headers(
        "application/pkcs7-mime; smime-type=enveloped-data",
        &[("content-transfer-encoding", "base64")],
    );
    let r = fx.rx.receive(&h, Bytes::from(b64)).await;
    assert_stored(&fx, &r, PAYLOAD, &sha256_mic(&[ENTITY]));

    // Some senders encrypt the bare payload, without MIME headers.
    let bare = b"UNA:+.? 'UNB+UNOC:3+SENDER+RECEIVER+260101:1200+1'";
    let h = headers(
        "application/pkcs7-mime",
        &[("message-id", "<layers-2@acme>")],
    );
    let r = fx.rx.receive(&h, Bytes::from(encrypt_to(&fx, bare))).await;
    let synthesized = [&b"Content-Type: application/octet-stream\r\n\r\n"[..], bare].concat();
    assert_stored(&fx, &r, bare, &sha256_mic(&[&synthesized]));
}

#[tokio::test]
async fn nesting_and_bombs_are_refused() {
    let fx = fixture(|s| s.max_body_bytes = 1 << 20);
    // Compressed twice.
    let inner = [
        &b"Content-Type: application/pkcs7-mime; smime-type=compressed-data\r\nContent-Transfer-Encoding: binary\r\n\r\n"[..],
        &smime::compress(ENTITY),
    ]
    .concat();
    let h = headers("application/pkcs7-mime; smime-type=compressed-data", &[]);
    let r = fx
        .rx
        .receive(&h, Bytes::from(smime::compress(&inner)))
        .await;
    assert!(
        matches!(
            r.outcome,
            As2Outcome::Failed {
                modifier: ErrorModifier::UnexpectedProcessingError,
                ..
            }
        ),
        "{:?}",
        r.outcome
    );
    // 4 MiB of zeros in a few KiB: over the 1 MiB limit.
    let zeros = vec![0u8; 4 << 20];
    let bomb = smime::compress(&zeros);
    assert!(bomb.len() < 20_000);
    let h = headers(
        "application/pkcs7-mime; smime-type=compressed-data",
        &[("message-id", "<bomb@acme>")],
    );
    let r = fx.rx.receive(&h, Bytes::from(bomb)).await;
    assert!(
        matches!(
            r.outcome,
            As2Outcome::Failed {
                modifier: ErrorModifier::DecompressionFailed,
                ..
            }
        ),
        "{:?}",
        r.outcome
    );
    assert!(mdn_text(&r.body).contains("processed/error: decompression-failed"));
    assert!(fx.sink.flows.lock().unwrap().is_empty());
}

#[tokio::test]
async fn duplicate_after_lost_mdn_gets_a_new_kept_mdn() {
    let fx = fixture(|_| {});
    let h = headers("application/xml", &[]);
    let first = fx.rx.receive(&h, Bytes::from_static(PAYLOAD)).await;
    assert_eq!(first.status, StatusCode::OK);
    // Simulate a crash between the sink's commit and the MDN write.
    let mdn_dir = fx.rx.settings().mdn_dir.clone();
    let kept: Vec<_> = fs::read_dir(&mdn_dir).unwrap().flatten().collect();
    assert_eq!(kept.len(), 1);
    fs::remove_file(kept[0].path()).unwrap();
    let second = fx.rx.receive(&h, Bytes::from_static(PAYLOAD)).await;
    assert!(matches!(
        second.outcome,
        As2Outcome::Accepted {
            accepted: Accepted::Duplicate { .. },
            ..
        }
    ));
    assert_ne!(
        second.body, first.body,
        "a new MDN, since the old one is lost"
    );
    let third = fx.rx.receive(&h, Bytes::from_static(PAYLOAD)).await;
    assert_eq!(third.body, second.body, "the re-kept MDN is sent again");
    assert_eq!(third.headers, second.headers);
}

#[tokio::test]
async fn async_mdn_goes_to_the_outbox() {
    let (tx, mut rxq) = tokio::sync::mpsc::unbounded_channel::<PendingMdn>();
    let fx = fixture(|s| {
        s.async_delivery = AsyncMdnDelivery::Outbox(tx);
        s.allow_mdn_url("acme", "http://127.0.0.1:9/mdn").unwrap();
    });
    let h = headers(
        "application/xml",
        &[("receipt-delivery-option", "http://127.0.0.1:9/mdn")],
    );
    let r = fx.rx.receive(&h, Bytes::from_static(PAYLOAD)).await;
    assert_eq!(r.status, StatusCode::OK);
    let pending = r.async_mdn.clone().expect("an asynchronous MDN");
    assert_eq!(pending.url, "http://127.0.0.1:9/mdn");
    assert_eq!(pending.original_message_id, "<layers-1@acme>");
    assert!(String::from_utf8_lossy(&pending.body).contains("; processed"));
    // Serialisable for a persistent outbox.
    let json = serde_json::to_string(&pending).unwrap();
    assert_eq!(serde_json::from_str::<PendingMdn>(&json).unwrap(), pending);
    fx.rx.dispatch_async(pending.clone());
    assert_eq!(rxq.recv().await.unwrap(), pending);
    // Port 9 (discard) refuses: delivery reports the failure.
    assert!(quai_connectors::as2::send_async_mdn(&pending)
        .await
        .is_err());
    let bad = PendingMdn {
        url: "file:///etc/passwd".into(),
        ..pending
    };
    assert!(matches!(
        quai_connectors::as2::send_async_mdn(&bad).await,
        Err(quai_connectors::as2::MdnSendError::BadUrl(_))
    ));
}

#[tokio::test]
async fn partner_without_async_permission_gets_sync_mdn() {
    let fx = fixture(|s| s.partners[0].allow_async_mdn = false);
    let h = headers(
        "application/xml",
        &[("receipt-delivery-option", "http://10.0.0.1/mdn")],
    );
    let r = fx.rx.receive(&h, Bytes::from_static(PAYLOAD)).await;
    assert!(r.async_mdn.is_none());
    assert!(mdn_text(&r.body).contains("; processed"));
}

#[tokio::test]
async fn without_mdn_request_errors_are_http_400() {
    let fx = fixture(|s| s.partners[0].require_signed = true);
    let mut h = headers("application/xml", &[]);
    h.remove("disposition-notification-to");
    let r = fx.rx.receive(&h, Bytes::from_static(PAYLOAD)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(mdn_text(&r.body).contains("insufficient-message-security"));
    assert!(fx.sink.flows.lock().unwrap().is_empty());
    let _ = &fx.dir;
}

/// Serve the receiver's router on a free loopback port.
async fn serve(
    fx: Fx,
) -> (
    std::net::SocketAddr,
    Arc<As2Receiver<Sink>>,
    tokio::task::JoinHandle<()>,
    tempfile::TempDir,
    Arc<Sink>,
) {
    let Fx { dir, sink, rx, .. } = fx;
    let rx = Arc::new(rx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = quai_connectors::as2::router(rx.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, rx, task, dir, sink)
}

fn request_head(extra: &str) -> String {
    format!(
        "POST /as2 HTTP/1.1\r\nHost: localhost\r\nAS2-From: ACME\r\nAS2-To: PLATFORM\r\nMessage-ID: <raw@acme>\r\nDisposition-Notification-To: x\r\nContent-Type: application/octet-stream\r\n{extra}\r\n"
    )
}

async fn read_status(stream: &mut tokio::net::TcpStream) -> Option<u16> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut buf),
    )
    .await;
    let text = String::from_utf8_lossy(&buf);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_413() {
    use tokio::io::AsyncWriteExt;
    let (addr, _rx, task, _dir, sink) = serve(fixture(|s| s.max_body_bytes = 100_000)).await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request_head("Transfer-Encoding: chunked\r\nConnection: close\r\n").as_bytes())
        .await
        .unwrap();
    let chunk = vec![b'x'; 32 * 1024];
    for _ in 0..5 {
        let _ = s
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await;
        let _ = s.write_all(&chunk).await;
        let _ = s.write_all(b"\r\n").await;
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    assert_eq!(read_status(&mut s).await, Some(413));
    assert!(sink.flows.lock().unwrap().is_empty());
    task.abort();
}

#[tokio::test]
async fn sender_disconnecting_mid_body_leaves_nothing() {
    use tokio::io::AsyncWriteExt;
    let (addr, rx, task, dir, sink) = serve(fixture(|_| {})).await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request_head("Content-Length: 50000\r\n").as_bytes())
        .await
        .unwrap();
    s.write_all(&[b'y'; 20_000]).await.unwrap();
    drop(s);
    // Give the server time to notice, then check nothing was taken in.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(sink.flows.lock().unwrap().is_empty());
    assert!(
        !dir.path().join("flows").exists()
            || fs::read_dir(dir.path().join("flows"))
                .unwrap()
                .next()
                .is_none()
    );
    assert!(!rx.settings().mdn_dir.exists());
    // The endpoint still works afterwards.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request_head("Content-Length: 5\r\nConnection: close\r\n").as_bytes())
        .await
        .unwrap();
    s.write_all(b"hello").await.unwrap();
    assert_eq!(read_status(&mut s).await, Some(200));
    assert_eq!(sink.flows.lock().unwrap().len(), 1);
    task.abort();
}

#[tokio::test]
async fn observer_sees_every_outcome() {
    let seen: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let s2 = seen.clone();
    let fx = fixture(move |s| {
        s.observer = Some(quai_connectors::as2::OutcomeObserver(Arc::new(move |o| {
            s2.lock().unwrap().push(o.label())
        })))
    });
    let h = headers("application/xml", &[]);
    fx.rx.receive(&h, Bytes::from_static(PAYLOAD)).await;
    fx.rx.receive(&h, Bytes::from_static(PAYLOAD)).await;
    let mut bad = h.clone();
    bad.insert("as2-from", HeaderValue::from_static("NOBODY"));
    fx.rx.receive(&bad, Bytes::from_static(PAYLOAD)).await;
    let signed = headers("multipart/signed; boundary=B", &[("message-id", "<x@y>")]);
    fx.rx.receive(&signed, Bytes::from_static(b"--B--")).await;
    bad.remove("as2-from");
    fx.rx.receive(&bad, Bytes::from_static(PAYLOAD)).await;
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["accepted", "duplicate", "refused", "failed", "bad_request"]
    );
}

#[tokio::test]
async fn stalled_body_times_out_and_unknown_sender_is_refused_before_its_body() {
    use tokio::io::AsyncWriteExt;
    let (addr, _rx, task, _dir, sink) = serve(fixture(|s| {
        s.body_idle_timeout = std::time::Duration::from_secs(2);
        s.max_concurrent = 1;
    }))
    .await;
    // A stalled sender: half its body, then silence (connection kept open).
    let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(request_head("Content-Length: 1000\r\n").as_bytes())
        .await
        .unwrap();
    stalled.write_all(&[b'z'; 500]).await.unwrap();
    // Meanwhile another sender is served at once (the stalled one holds no
    // processing permit, though only one request is processed at a time).
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let mut ok = tokio::net::TcpStream::connect(addr).await.unwrap();
    ok.write_all(
        request_head("Content-Length: 5\r\nConnection: close\r\n")
            .replace("<raw@acme>", "<other@acme>")
            .as_bytes(),
    )
    .await
    .unwrap();
    ok.write_all(b"hello").await.unwrap();
    assert_eq!(read_status(&mut ok).await, Some(200));
    assert!(started.elapsed() < std::time::Duration::from_millis(1500));
    assert_eq!(read_status(&mut stalled).await, Some(408));
    // An unknown sender is answered without sending its body.
    let mut stranger = tokio::net::TcpStream::connect(addr).await.unwrap();
    stranger
        .write_all(
            request_head("Content-Length: 100000\r\nConnection: close\r\n")
                .replace("AS2-From: ACME", "AS2-From: NOBODY")
                .as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(read_status(&mut stranger).await, Some(403));
    assert_eq!(sink.flows.lock().unwrap().len(), 1);
    task.abort();
}
