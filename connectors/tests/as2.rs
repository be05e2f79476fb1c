//! AS2 receiving against an independent implementation: pyas2lib (PyPI) is
//! the partner (tests/as2/peer.py, run by support/as2peer.rs), quai's
//! receiver runs in-process on 127.0.0.1 with a recording sink. pyas2lib
//! builds each message and verifies quai's MDN (signature with quai's
//! certificate, disposition, MIC) itself.

use quai_test_support::as2peer;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use as2peer::KeyPair;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use bytes::Bytes;
use quai_connectors::as2::{
    router, As2Outcome, As2Receiver, As2Settings, AsyncMdnDelivery, Identity, Partner,
    PartnerConfig,
};
use quai_connectors::{Accepted, Channel, FlowSink, LandedFlow, SinkError};
use serde_json::{json, Value};

/// Records accepted flows (with their stored bytes); a repeated AS2
/// Message-ID is a duplicate, as in the spool.
#[derive(Default)]
struct RecordingSink {
    flows: Mutex<Vec<(LandedFlow, Vec<u8>, Accepted)>>,
    ids: Mutex<HashMap<String, i64>>,
    next: AtomicI64,
    fail: AtomicBool,
}

impl FlowSink for RecordingSink {
    async fn accept(&self, flow: LandedFlow) -> Result<Accepted, SinkError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(SinkError("database unavailable (test)".into()));
        }
        let bytes = fs::read(&flow.stored_path).map_err(|e| SinkError(e.to_string()))?;
        let key = format!(
            "{}|{}",
            flow.partner,
            flow.as2_message_id.clone().unwrap_or_default()
        );
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let accepted = match self.ids.lock().unwrap().get(&key) {
            Some(&original) => Accepted::Duplicate {
                flow_id: id,
                original,
            },
            None => Accepted::New { flow_id: id },
        };
        if let Accepted::New { flow_id } = accepted {
            self.ids.lock().unwrap().insert(key, flow_id);
        }
        self.flows.lock().unwrap().push((flow, bytes, accepted));
        Ok(accepted)
    }
}

impl RecordingSink {
    fn new_flows(&self) -> Vec<(LandedFlow, Vec<u8>)> {
        self.flows
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, a)| matches!(a, Accepted::New { .. }))
            .map(|(f, b, _)| (f.clone(), b.clone()))
            .collect()
    }
    fn count(&self) -> usize {
        self.flows.lock().unwrap().len()
    }
}

struct PartnerOpts {
    require_signed: bool,
    require_encrypted: bool,
    max_body_bytes: u64,
    memory_body_bytes: usize,
}

impl Default for PartnerOpts {
    fn default() -> Self {
        PartnerOpts {
            require_signed: false,
            require_encrypted: false,
            max_body_bytes: 1 << 30,
            memory_body_bytes: 4 << 20,
        }
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    quai: KeyPair,
    partner: KeyPair,
    sink: Arc<RecordingSink>,
    receiver: Arc<As2Receiver<RecordingSink>>,
    url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.server.abort();
    }
}

const XML: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\">\r\n  <ID>TAMPERME-2026-0001</ID>\r\n  <Note>caf\xc3\xa9 cr\xc3\xa8me</Note>\r\n</Invoice>\r\n";

fn binary_payload() -> Vec<u8> {
    let mut v: Vec<u8> = (0..=255u8).cycle().take(40_000).collect();
    v.extend_from_slice(b"\nTAMPERME\r\n\x00\xff");
    v
}

impl Fixture {
    async fn start(opts: PartnerOpts) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        fs::create_dir_all(&keys).unwrap();
        let quai = KeyPair::generate(&keys, "platform");
        let partner = KeyPair::generate(&keys, "acme");
        let identity = Identity::load(&quai_connectors::as2::IdentityConfig {
            as2_id: "PLATFORM".into(),
            certificate: quai.cert_path.clone(),
            key: quai.key_path.clone(),
        })
        .unwrap();
        let p = Partner::load(&PartnerConfig {
            partner_id: "acme".into(),
            as2_id: "ACME".into(),
            certificate: Some(partner.cert_path.clone()),
            require_signed: opts.require_signed,
            require_encrypted: opts.require_encrypted,
            allow_async_mdn: true,
        })
        .unwrap();
        let mut settings = As2Settings::new(identity, vec![p], dir.path().join("flows"));
        settings.max_body_bytes = opts.max_body_bytes;
        settings.memory_body_bytes = opts.memory_body_bytes;
        settings.async_delivery = AsyncMdnDelivery::Spawn {
            attempts: 3,
            first_delay: std::time::Duration::from_millis(200),
        };
        let sink = Arc::new(RecordingSink::default());
        let receiver = Arc::new(As2Receiver::new(settings, sink.clone()).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(receiver.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Fixture {
            url: format!("http://{addr}/as2"),
            dir,
            quai,
            partner,
            sink,
            receiver,
            server,
        }
    }

    fn write_payload(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::write(&p, data).unwrap();
        p
    }

    /// A peer config for the XML payload; `extra` overrides keys.
    fn config(&self, extra: Value) -> Value {
        let payload = self.write_payload("invoice.xml", XML);
        let mut cfg = json!({
            "url": self.url,
            "sender_as2": "ACME",
            "receiver_as2": "PLATFORM",
            "sender_key": self.partner.key_path,
            "sender_cert": self.partner.cert_path,
            "receiver_cert": self.quai.cert_path,
            "payload": payload,
            "content_type": "application/xml",
            "filename": "invoice-0001.xml",
            "mdn_mode": "SYNC",
        });
        for (k, v) in extra.as_object().unwrap() {
            cfg[k] = v.clone();
        }
        cfg
    }

    async fn peer(&self, cfg: Value) -> Vec<Value> {
        let dir = self.dir.path().to_path_buf();
        let out = tokio::task::spawn_blocking(move || as2peer::run_peer(&dir, &cfg))
            .await
            .unwrap();
        out["results"].as_array().unwrap().clone()
    }

    /// Files in the flow store (temporaries excluded).
    fn stored_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.dir.path().join("flows"), &mut out);
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The MDN said `processed`, pyas2lib verified it, and its MIC is the
/// sender's own.
fn assert_processed(r: &Value) {
    assert_eq!(r["http_status"], 200, "{r:#}");
    assert_eq!(r["mdn_status"], "processed", "{r:#}");
    assert_eq!(r["mdn_detailed_status"], Value::Null, "{r:#}");
    assert_eq!(
        r["mdn_disposition"],
        "automatic-action/MDN-sent-automatically; processed"
    );
    assert_eq!(
        r["mdn_orig_message_id"].as_str().map(|s| format!("<{s}>")),
        r["message_id"].as_str().map(String::from)
    );
    assert!(r["mdn_mic"].is_string(), "MDN carries no MIC: {r:#}");
    assert_eq!(r["mdn_mic"], r["expected_mic"], "MIC mismatch: {r:#}");
}

fn assert_one_flow(fx: &Fixture, payload: &[u8], name: &str) {
    let flows = fx.sink.new_flows();
    assert_eq!(flows.len(), 1, "expected one flow");
    let (flow, bytes) = &flows[0];
    assert_eq!(bytes, payload, "stored bytes differ from the payload sent");
    assert_eq!(flow.partner, "acme");
    assert_eq!(flow.channel, Channel::As2);
    assert_eq!(flow.original_name, name);
    assert!(flow.complete);
    assert!(flow.as2_message_id.is_some());
    assert_eq!(fx.stored_files().len(), 1);
}

fn assert_nothing_stored(fx: &Fixture) {
    assert_eq!(fx.sink.count(), 0, "the sink was called");
    assert!(
        fx.stored_files().is_empty(),
        "files stored: {:?}",
        fx.stored_files()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_sync_mdn() {
    let fx = Fixture::start(PartnerOpts::default()).await;
    let r = &fx.peer(fx.config(json!({}))).await[0];
    assert_processed(r);
    assert_eq!(r["mdn_signed"], false);
    assert_one_flow(&fx, XML, "invoice-0001.xml");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_with_signed_mdn() {
    let fx = Fixture::start(PartnerOpts::default()).await;
    let r = &fx
        .peer(fx.config(json!({"sign": true, "mdn_digest_alg": "sha256"})))
        .await[0];
    assert_processed(r);
    assert_eq!(r["mdn_signed"], true);
    assert_eq!(r["mdn_mic_alg"], "sha256");
    assert_one_flow(&fx, XML, "invoice-0001.xml");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_sha1_mic() {
    let fx = Fixture::start(PartnerOpts::default()).await;
    let r = &fx
        .peer(fx.config(json!({"sign": true, "digest_alg": "sha1", "mdn_digest_alg": "sha1"})))
        .await[0];
    assert_processed(r);
    assert_eq!(r["mdn_mic_alg"], "sha1");
    assert_one_flow(&fx, XML, "invoice-0001.xml");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted() {
    let fx = Fixture::start(PartnerOpts::default()).await;
    let r = &fx.peer(fx.config(json!({"encrypt": true}))).await[0];
    assert_processed(r);
    assert_one_flow(&fx, XML, "invoice-0001.xml");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_3des() {
    let fx = Fixture::start(PartnerOpts::default()).await;
    let r = &fx
        .peer(fx.config(json!({"encrypt": true, "enc_alg": "tripledes_192_cbc"})))
        .await[0];
    assert_processed(r);
    assert_one_flow(&fx, XML, "invoice-0001.xml");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_and_encrypted_with_signed_mdn() {
    let fx = Fixture::start(PartnerOpts {
        require_signed: true,
        require_encrypted: true,
        ..Default::default()
    })
    .await;
    let r = &fx
        .peer(fx.config(json!({"sign": true, "encrypt": true, "mdn_digest_alg": "sha256"})))
        .await[0];
    assert_processed(r);
    assert_eq!(r["mdn_signed"], true);
    assert_one_flow(&fx, XML, "invoice-0001.xml");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_only() {
    let fx = Fixture::start(PartnerOpts::default()).await;
    let r = &fx.peer(fx.config(json!({"compress": true}))).await[0];
    assert_processed(r);
    assert_one_flow(&fx, XML, "invoice-0001.xml");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_signed_encrypted_binary_payload() {
    // Bodies over 1 KiB are spooled to a mapped temporary file.
    let fx = Fixture::start(PartnerOpts {
        memory_body_bytes: 1024,
        ..Default::default()
    })
    .await;
    let data = binary_payload();
    let payload = fx.write_payload("flow.bin", &data);
    let r = &fx
        .peer(fx.config(json!({
            "compress": true, "sign": true, "encrypt": true, "mdn_digest_alg": "sha256",
            "payload": payload, "content_type": "application/octet-stream", "filename": "flow.tar.gz",
        })))
        .await[0];
    assert_processed(r);
    assert_eq!(r["mdn_signed"], true);
    assert_one_flow(&fx, &data, "flow.tar.gz");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_signed_body_spooled_to_disk() {
    let fx = Fixture::start(PartnerOpts {
        memory_body_bytes: 64 * 1024,
        ..Default::default()
    })
    .await;
    let data: Vec<u8> = binary_payload().repeat(50); // 2 MB
    let payload = fx.write_payload("large.bin", &data);
    let r = &fx
        .peer(fx.config(json!({
            "sign": true, "mdn_digest_alg": "sha256",
            "payload": payload, "content_type": "application/octet-stream", "filename": "large.bin",
        })))
        .await[0];
    assert_processed(r);
    // assert_one_flow also proves the temporary body file is gone.
    assert_one_flow(&fx, &data, "large.bin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_mdn_signed() {
    let fx = Fixture::start(PartnerOpts::default()).await;
    let r = &fx
        .peer(fx.config(json!({
            "sign": true, "encrypt": true, "mdn_mode": "ASYNC", "mdn_digest_alg": "sha256",
        })))
        .await[0];
    assert!(
        r["response_body"]
            .as_str()
            .unwrap()
            .contains("asynchronously"),
        "{r:#}"
    );
    assert_processed(r);
    assert_eq!(r["mdn_signed"], true);
    assert_one_flow(&fx, XML, "invoice-0001.xml");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_mdn_unsigned() {
    let fx = Fixture::start(PartnerOpts::default()).await;
    let r = &fx.peer(fx.config(json!({"mdn_mode": "ASYNC"}))).await[0];
    assert_processed(r);
    assert_eq!(r["mdn_signed"], false);
    assert_one_flow(&fx, XML, "invoice-0001.xml");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_message_gets_integrity_error_and_nothing_stored() {
    let fx = Fixture::start(PartnerOpts::default()).await;
    let r = &fx
        .peer(fx.config(json!({"sign": true, "mdn_digest_alg": "sha256", "tamper": true})))
        .await[0];
    assert_eq!(r["http_status"], 200, "{r:#}");
    assert_eq!(r["mdn_status"], "processed/error", "{r:#}");
    assert_eq!(r["mdn_detailed_status"], "integrity-check-failed", "{r:#}");
    assert_eq!(r["mdn_signed"], true);
    assert_nothing_stored(&fx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_by_another_key_gets_authentication_error() {
    let fx = Fixture::start(PartnerOpts::default()).await;
    let stranger = KeyPair::generate(fx.dir.path(), "stranger");
    let r = &fx
        .peer(fx.config(json!({
            "sign": true, "sender_key": stranger.key_path, "sender_cert": stranger.cert_path,
        })))
        .await[0];
    assert_eq!(r["http_status"], 200, "{r:#}");
    assert_eq!(r["mdn_status"], "processed/error", "{r:#}");
    assert_eq!(r["mdn_detailed_status"], "authentication-failed", "{r:#}");
    assert_nothing_stored(&fx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_for_another_key_gets_decryption_error() {
    let fx = Fixture::start(PartnerOpts::default()).await;
    let other = KeyPair::generate(fx.dir.path(), "other-platform");
    // The sender encrypts to a certificate that is not quai's, but verifies
    // the (unsigned) MDN as usual.
    let r = &fx
        .peer(fx.config(json!({"encrypt": true, "encrypt_cert": other.cert_path})))
        .await[0];
    assert_eq!(r["mdn_status"], "processed/error", "{r:#}");
    assert_eq!(r["mdn_detailed_status"], "decryption-failed", "{r:#}");
    assert_nothing_stored(&fx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_message_id_gets_the_original_mdn() {
    let fx = Fixture::start(PartnerOpts::default()).await;
    let rs = fx
        .peer(fx.config(json!({
            "sign": true, "mdn_digest_alg": "sha256", "message_id": "dup-0001", "repeat": 2,
        })))
        .await;
    assert_eq!(rs.len(), 2);
    assert_processed(&rs[0]);
    assert_processed(&rs[1]);
    assert_eq!(rs[0]["message_id"], rs[1]["message_id"]);
    // The same MDN, byte for byte (its own Message-ID included).
    assert_eq!(rs[0]["mdn_message_id"], rs[1]["mdn_message_id"]);
    assert_eq!(rs[0]["mdn_body_sha256"], rs[1]["mdn_body_sha256"]);
    // Registered once as new, once as a duplicate; one stored file.
    assert_eq!(fx.sink.count(), 2);
    assert_eq!(fx.sink.new_flows().len(), 1);
    assert_eq!(fx.stored_files().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_as2_from_is_refused() {
    let fx = Fixture::start(PartnerOpts::default()).await;
    let r = &fx
        .peer(fx.config(json!({"override_headers": {"AS2-From": "STRANGER"}})))
        .await[0];
    assert_eq!(r["http_status"], 403, "{r:#}");
    assert!(r["response_body"]
        .as_str()
        .unwrap()
        .contains("unknown AS2-From"));
    assert_nothing_stored(&fx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_as2_to_is_refused() {
    let fx = Fixture::start(PartnerOpts::default()).await;
    let r = &fx
        .peer(fx.config(json!({"override_headers": {"AS2-To": "SOMEONE-ELSE"}})))
        .await[0];
    assert_eq!(r["http_status"], 403, "{r:#}");
    assert_nothing_stored(&fx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_signed_is_enforced() {
    let fx = Fixture::start(PartnerOpts {
        require_signed: true,
        ..Default::default()
    })
    .await;
    let r = &fx.peer(fx.config(json!({"encrypt": true}))).await[0];
    assert_eq!(r["mdn_status"], "processed/error", "{r:#}");
    assert_eq!(r["mdn_detailed_status"], "insufficient-message-security");
    assert_nothing_stored(&fx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_encrypted_is_enforced() {
    let fx = Fixture::start(PartnerOpts {
        require_encrypted: true,
        ..Default::default()
    })
    .await;
    let r = &fx.peer(fx.config(json!({"sign": true}))).await[0];
    assert_eq!(r["mdn_status"], "processed/error", "{r:#}");
    assert_eq!(r["mdn_detailed_status"], "insufficient-message-security");
    assert_nothing_stored(&fx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_cut_short_is_refused() {
    let fx = Fixture::start(PartnerOpts::default()).await;
    let r = &fx
        .peer(fx.config(json!({"sign": true, "encrypt": true, "cut_body": true})))
        .await[0];
    assert_eq!(r["http_status"], 400, "{r:#}");
    assert_nothing_stored(&fx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_refused() {
    let fx = Fixture::start(PartnerOpts {
        max_body_bytes: 1000,
        ..Default::default()
    })
    .await;
    let data = binary_payload();
    let payload = fx.write_payload("big.bin", &data);
    let r = &fx
        .peer(fx.config(json!({"payload": payload, "content_type": "application/octet-stream"})))
        .await[0];
    assert_eq!(r["http_status"], 413, "{r:#}");
    assert_nothing_stored(&fx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_failure_answers_503_without_mdn() {
    let fx = Fixture::start(PartnerOpts::default()).await;
    fx.sink.fail.store(true, Ordering::SeqCst);
    let r = &fx.peer(fx.config(json!({"sign": true}))).await[0];
    assert_eq!(r["http_status"], 503, "{r:#}");
    assert!(r.get("mdn_status").is_none());
    assert!(fx.sink.new_flows().is_empty());
}

// ---------------------------------------------------------------------------
// Malformed requests through the HTTP-less entry point.

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

const BASE: &[(&str, &str)] = &[
    ("AS2-From", "ACME"),
    ("AS2-To", "PLATFORM"),
    ("Message-ID", "<m-1@acme>"),
    ("Disposition-Notification-To", "edi@acme.example"),
];

#[tokio::test]
async fn malformed_requests_get_400_and_nothing_stored() {
    let fx = Fixture::start(PartnerOpts::default()).await;
    // Missing Message-ID.
    let h = headers(&[
        ("AS2-From", "ACME"),
        ("AS2-To", "PLATFORM"),
        ("Content-Type", "application/xml"),
    ]);
    let r = fx.receiver.receive(&h, Bytes::from_static(b"<a/>")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        String::from_utf8_lossy(&r.body).contains("Message-ID")
            || String::from_utf8_lossy(&r.body).contains("message-id")
    );
    // Missing Content-Type.
    let r = fx
        .receiver
        .receive(&headers(BASE), Bytes::from_static(b"<a/>"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Content-Length larger than the body.
    let mut h = headers(BASE);
    h.insert("content-type", HeaderValue::from_static("application/xml"));
    h.insert("content-length", HeaderValue::from_static("100"));
    let r = fx.receiver.receive(&h, Bytes::from_static(b"<a/>")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(matches!(r.outcome, As2Outcome::BadRequest(ref m) if m.contains("cut short")));
    assert_nothing_stored(&fx);
}

#[tokio::test]
async fn broken_mime_gets_an_error_mdn_never_a_panic() {
    let fx = Fixture::start(PartnerOpts::default()).await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("multipart/signed; boundary=B", b"--B\r\nContent-Type: text/plain\r\n\r\nx\r\n".to_vec()),
        ("multipart/signed", b"no boundary".to_vec()),
        (
            "multipart/signed; boundary=B",
            b"--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!\r\n--B--\r\n".to_vec(),
        ),
        (
            "multipart/signed; boundary=B",
            b"--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B\r\nContent-Type: application/pkcs7-signature\r\n\r\n\x30\x03\x02\x01\x00\r\n--B--\r\n".to_vec(),
        ),
        ("application/pkcs7-mime; smime-type=enveloped-data", b"\x30\x80garbage".to_vec()),
        ("application/pkcs7-mime; smime-type=compressed-data", b"\x30\x82\xff\xff".to_vec()),
        ("application/pkcs7-mime", b"".to_vec()),
        ("application/pkcs7-mime; smime-type=signed-data", vec![0x30; 4096]),
        ("not a content type", b"x".to_vec()),
    ];
    for (i, (ct, body)) in cases.into_iter().enumerate() {
        let mut h = headers(BASE);
        h.insert("content-type", HeaderValue::from_str(ct).unwrap());
        h.insert(
            "message-id",
            HeaderValue::from_str(&format!("<bad-{i}@acme>")).unwrap(),
        );
        let r = fx.receiver.receive(&h, Bytes::from(body)).await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "case {i} ({ct}): an error MDN is expected"
        );
        assert!(
            matches!(r.outcome, As2Outcome::Failed { .. }),
            "case {i} ({ct}): {:?}",
            r.outcome
        );
        let text = String::from_utf8_lossy(&r.body);
        assert!(text.contains("processed/error"), "case {i}: {text}");
    }
    assert_nothing_stored(&fx);
}
