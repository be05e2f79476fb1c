//! `As2Outbound` against an independent receiver: pyas2lib (see
//! support/as2peer.rs) opens quai's messages and answers with its own MDN.
//! The parcel arrives byte-identical under its name, the receipt is the
//! MDN's Message-ID, a resend of the same name is answered from the send
//! record without a second message, other bytes under that name are refused,
//! refusals and outages are told apart, and a redirect is never followed.

use quai_test_support::as2peer;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use as2peer::{KeyPair, ReceiverPeer};
use quai_connectors::as2::send::OutboundConfig;
use quai_connectors::as2::{IdentityConfig, PartnerConfig};
use quai_connectors::outbound::{As2Outbound, As2OutboundConfig, Parcel};
use serde_json::{json, Value};

const XML: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<IntegrationReport>\r\n  <Flow id=\"42\">caf\xc3\xa9</Flow>\r\n</IntegrationReport>\r\n";

struct Fixture {
    dir: tempfile::TempDir,
    quai: KeyPair,
    partner: KeyPair,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let quai = KeyPair::generate(dir.path(), "quai");
        let partner = KeyPair::generate(dir.path(), "partner");
        Fixture { dir, quai, partner }
    }

    fn receiver(&self, extra: Value) -> ReceiverPeer {
        let mut cfg = json!({
            "org_as2": "PARTNER",
            "org_key": self.partner.key_path,
            "org_cert": self.partner.cert_path,
            "partner_as2": "QUAI",
            "partner_cert": self.quai.cert_path,
        });
        for (k, v) in extra.as_object().unwrap() {
            cfg[k] = v.clone();
        }
        ReceiverPeer::start(self.dir.path(), &cfg)
    }

    fn records_dir(&self) -> PathBuf {
        self.dir.path().join("home/as2-out/sent")
    }

    fn outbound(&self, url: &str, cfg: OutboundConfig) -> As2Outbound {
        As2Outbound::new(As2OutboundConfig {
            identity: IdentityConfig {
                as2_id: "QUAI".into(),
                certificate: self.quai.cert_path.clone(),
                key: self.quai.key_path.clone(),
            },
            partner: PartnerConfig {
                partner_id: "partner".into(),
                as2_id: "PARTNER".into(),
                certificate: Some(self.partner.cert_path.clone()),
                require_signed: false,
                require_encrypted: false,
                allow_async_mdn: true,
            },
            outbound: OutboundConfig {
                url: url.to_string(),
                timeout_seconds: Some(20),
                ..cfg
            },
            sent_records: Some(self.records_dir()),
        })
        .unwrap()
    }

    fn stage(&self, name: &str, bytes: &[u8]) -> Parcel {
        let dir = self.dir.path().join("home/tmp");
        std::fs::create_dir_all(&dir).unwrap();
        let staged = dir.join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::write(&staged, bytes).unwrap();
        Parcel {
            name: name.into(),
            staged,
            media_type: "application/xml",
        }
    }
}

#[tokio::test]
async fn signed_and_encrypted_with_the_mdn_message_id_as_receipt() {
    let f = Fixture::new();
    let peer = f.receiver(json!({"require_signed": true, "require_encrypted": true}));
    let o = f.outbound(&peer.url, OutboundConfig::default());
    assert_eq!(o.describe(), format!("as2 {}", peer.url));
    let sent = o.send(&f.stage("flow.42.report.xml", XML)).await.unwrap();
    let records = peer.records();
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r["status"], "processed", "{r}");
    assert_eq!(ReceiverPeer::payload(r), XML, "byte-identical");
    assert_eq!(r["filename"], "flow.42.report.xml");
    assert_eq!(r["signed"], true);
    assert_eq!(r["encrypted"], true);
    assert_eq!(r["mdn_signed"], true);
    let receipt = sent.receipt.clone().expect("the MDN's Message-ID");
    let ours = r["message_id"].as_str().unwrap();
    assert!(
        receipt.starts_with('<') && receipt.ends_with('>'),
        "{receipt}"
    );
    assert_ne!(receipt, ours, "the MDN's own id, not our message's");
    assert!(sent.destination.contains(&peer.url), "{}", sent.destination);
    assert!(sent.destination.contains(ours), "{}", sent.destination);
    assert!(sent.destination.contains(&receipt), "{}", sent.destination);
}

#[tokio::test]
async fn idempotent_on_the_name() {
    let f = Fixture::new();
    let peer = f.receiver(json!({}));
    let o = f.outbound(&peer.url, OutboundConfig::default());
    let first = o.send(&f.stage("a.report.xml", XML)).await.unwrap();
    // The same name and bytes again (a crash before the spool's record):
    // answered from the record, nothing posted.
    let again = o.send(&f.stage("a.report.xml", XML)).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(peer.records().len(), 1);
    // Other bytes under that name: refused for good, nothing posted.
    let err = o
        .send(&f.stage("a.report.xml", b"<other/>"))
        .await
        .unwrap_err();
    assert!(!err.transient, "{err:?}");
    assert!(err.message.contains("a.report.xml"), "{err:?}");
    assert!(err.message.contains(&peer.url), "{err:?}");
    assert_eq!(peer.records().len(), 1);
    // Another name is another message.
    o.send(&f.stage("b.report.xml", XML)).await.unwrap();
    assert_eq!(peer.records().len(), 2);
    // An operator's deliberate resend: forget, then send again.
    o.forget("a.report.xml").unwrap();
    let resent = o.send(&f.stage("a.report.xml", b"<other/>")).await.unwrap();
    assert_ne!(resent.receipt, first.receipt);
    let records = peer.records();
    assert_eq!(records.len(), 3);
    assert_eq!(ReceiverPeer::payload(&records[2]), b"<other/>");
    // Records are named by a hash of the name: nothing of the name leaks
    // into the file system, and nothing but records is left there.
    for e in std::fs::read_dir(f.records_dir()).unwrap() {
        let n = e.unwrap().file_name().into_string().unwrap();
        assert!(n.len() == 64 + 5 && n.ends_with(".sent"), "{n}");
    }
}

#[tokio::test]
async fn refusals_are_permanent_and_outages_transient() {
    let f = Fixture::new();
    // The receiver wants signed messages; quai sends an unsigned one.
    let strict = f.receiver(json!({"require_signed": true}));
    let o = f.outbound(
        &strict.url,
        OutboundConfig {
            sign: Some(false),
            ..Default::default()
        },
    );
    let err = o.send(&f.stage("a.xml", XML)).await.unwrap_err();
    assert!(!err.transient, "{err:?}");
    assert!(
        err.message.contains("insufficient-message-security"),
        "{err:?}"
    );
    assert!(err.destination.contains(&strict.url));

    // A signed message, an unsigned MDN whose MIC the receiver altered.
    let wrong_mic = f.receiver(json!({"mdn_wrong_mic": true}));
    let o = f.outbound(
        &wrong_mic.url,
        OutboundConfig {
            mdn: Some("unsigned".into()),
            ..Default::default()
        },
    );
    let err = o.send(&f.stage("a.xml", XML)).await.unwrap_err();
    assert!(!err.transient, "{err:?}");
    assert!(err.message.contains("Received-Content-MIC"), "{err:?}");

    let busy = f.receiver(json!({"http_status": 503}));
    let o = f.outbound(&busy.url, OutboundConfig::default());
    let err = o.send(&f.stage("a.xml", XML)).await.unwrap_err();
    assert!(err.transient, "{err:?}");
    assert!(err.message.contains("503"), "{err:?}");

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = f.outbound(
        &format!("http://127.0.0.1:{port}/as2"),
        OutboundConfig::default(),
    );
    let err = o.send(&f.stage("a.xml", XML)).await.unwrap_err();
    assert!(err.transient, "{err:?}");
    assert!(err.destination.contains(&port.to_string()), "{err:?}");
    // None of the failures left a record: a later send posts.
    assert!(!f.records_dir().exists() || std::fs::read_dir(f.records_dir()).unwrap().count() == 0);
}

#[tokio::test]
async fn an_oversized_parcel_is_refused_before_posting() {
    let f = Fixture::new();
    let peer = f.receiver(json!({}));
    let o = f.outbound(
        &peer.url,
        OutboundConfig {
            max_send_bytes: Some(100),
            ..Default::default()
        },
    );
    let err = o.send(&f.stage("a.xml", &[b'x'; 101])).await.unwrap_err();
    assert!(!err.transient, "{err:?}");
    assert!(err.message.contains("101 bytes"), "{err:?}");
    assert!(peer.records().is_empty());
}

/// An HTTP server that answers every request with `status` and `headers`,
/// counting the requests it got.
fn http_server(status: &'static str, headers: Vec<String>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/as2", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            let mut answer =
                format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n");
            for h in &headers {
                answer.push_str(h);
                answer.push_str("\r\n");
            }
            answer.push_str("\r\n");
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    (url, hits)
}

#[tokio::test]
async fn a_redirect_is_never_followed() {
    let f = Fixture::new();
    let (elsewhere, elsewhere_hits) = http_server("200 OK", vec![]);
    for status in [
        "307 Temporary Redirect",
        "308 Permanent Redirect",
        "302 Found",
    ] {
        let (url, hits) = http_server(status, vec![format!("Location: {elsewhere}")]);
        let o = f.outbound(&url, OutboundConfig::default());
        let err = o.send(&f.stage("a.xml", XML)).await.unwrap_err();
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "the configured URL was called once"
        );
        assert!(!err.transient, "{status}: {err:?}");
        assert!(err.message.contains(&status[..3]), "{err:?}");
        assert!(err.destination.contains(&url), "{err:?}");
    }
    assert_eq!(
        elsewhere_hits.load(Ordering::SeqCst),
        0,
        "quai never called the URL a redirect named"
    );
}

#[tokio::test]
async fn a_bad_configuration_is_refused_when_built() {
    let f = Fixture::new();
    let err = As2Outbound::new(As2OutboundConfig {
        identity: IdentityConfig {
            as2_id: "QUAI".into(),
            certificate: f.quai.cert_path.clone(),
            key: f.quai.key_path.clone(),
        },
        partner: PartnerConfig {
            partner_id: "partner".into(),
            as2_id: "PARTNER".into(),
            certificate: None,
            require_signed: false,
            require_encrypted: false,
            allow_async_mdn: true,
        },
        outbound: OutboundConfig {
            url: "ftp://peer/as2".into(),
            encrypt: Some(true),
            ..Default::default()
        },
        sent_records: None,
    })
    .unwrap_err();
    assert!(err.contains("ftp://peer/as2"), "{err}");
    assert!(err.contains("certificate"), "{err}");
}
