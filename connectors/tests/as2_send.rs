//! AS2 sending against an independent implementation: pyas2lib (PyPI) is
//! the RECEIVER (tests/as2/peer.py --receive, started by support/as2peer.rs
//! on 127.0.0.1). It opens quai's messages with its own `Message.parse`
//! (decryption with its key, signature with quai's certificate), answers
//! with the MDN pyas2lib builds, and records what it got; quai's sender
//! checks that MDN. Faults (wrong MIC, altered MDN, unsigned MDN, error
//! dispositions, HTTP errors, a receiver that is down) must be refused with
//! the right typed error.

use quai_test_support::as2peer;

use as2peer::{KeyPair, ReceiverPeer};
use quai_connectors::as2::send::{self, Outbound, OutboundConfig, Refusal, SendError};
use quai_connectors::as2::{Identity, IdentityConfig, Partner, PartnerConfig};
use serde_json::{json, Value};

/// quai ("QUAI") sending to a pyas2lib receiver ("PARTNER").
struct Fixture {
    dir: tempfile::TempDir,
    quai: KeyPair,
    partner: KeyPair,
    identity: Identity,
    as2_partner: Partner,
}

/// A UBL-like report with CRLF line ends and UTF-8, the shape of quai's XML.
const XML: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<IntegrationReport>\r\n  <Flow id=\"42\">caf\xc3\xa9 cr\xc3\xa8me</Flow>\r\n  <Line>--quai-signed-not-a-boundary</Line>\r\n</IntegrationReport>\r\n";
const JSON: &[u8] =
    b"{\n  \"flow\": 42,\n  \"status\": \"processed\",\n  \"note\": \"\xc3\xa9\"\n}";
const EDI: &[u8] = b"UNA:+.? 'UNB+UNOC:3+QUAI+ACME+260101:1200+Q42'UNH+1+CONTRL:D:3:UN'UCI+1+ACME+QUAI+7'UNT+3+1'UNZ+1+Q42'";

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let quai = KeyPair::generate(dir.path(), "quai");
        let partner = KeyPair::generate(dir.path(), "partner");
        let identity = Identity::load(&IdentityConfig {
            as2_id: "QUAI".into(),
            certificate: quai.cert_path.clone(),
            key: quai.key_path.clone(),
        })
        .unwrap();
        let as2_partner = Partner::load(&PartnerConfig {
            partner_id: "partner".into(),
            as2_id: "PARTNER".into(),
            certificate: Some(partner.cert_path.clone()),
            require_signed: false,
            require_encrypted: false,
            allow_async_mdn: true,
        })
        .unwrap();
        Fixture {
            dir,
            quai,
            partner,
            identity,
            as2_partner,
        }
    }

    /// A pyas2lib receiver; `extra` adds requirements and faults.
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

    fn outbound(&self, url: &str, cfg: OutboundConfig) -> Outbound {
        Outbound::resolve(
            &OutboundConfig {
                url: url.to_string(),
                timeout_seconds: Some(20),
                ..cfg
            },
            true,
        )
        .unwrap()
    }

    async fn send(
        &self,
        out: &Outbound,
        name: &str,
        bytes: &[u8],
    ) -> Result<send::Sent, SendError> {
        send::send(&self.identity, &self.as2_partner, out, name, bytes).await
    }
}

/// The one record the receiver made, checked for the payload and layers.
fn only_record(peer: &ReceiverPeer) -> Value {
    let records = peer.records();
    assert_eq!(records.len(), 1, "{records:?}");
    records.into_iter().next().unwrap()
}

fn assert_received(record: &Value, sent: &send::Sent, payload: &[u8], content_type: &str) {
    assert_eq!(record["status"], "processed", "{record}");
    assert_eq!(
        ReceiverPeer::payload(record),
        payload,
        "payload byte-identical"
    );
    assert_eq!(record["content_type"], content_type);
    assert_eq!(record["message_id"], sent.message_id.as_str());
    assert_eq!(record["signed"], sent.signed, "{record}");
    assert_eq!(record["encrypted"], sent.encrypted, "{record}");
    assert_eq!(record["compressed"], sent.compressed, "{record}");
    assert_eq!(record["headers"]["as2-from"], "QUAI");
    assert_eq!(record["headers"]["as2-to"], "PARTNER");
    if sent.signed {
        // pyas2lib's own MIC over what it verified is the one we computed,
        // and its MDN reported it (checked by send()).
        assert_eq!(record["mic"].as_str(), Some(sent.mic.as_str()));
        assert_eq!(
            sent.mdn.mic.as_ref().map(|(m, _)| m.as_str()),
            Some(sent.mic.as_str())
        );
    }
    assert!(sent.mdn.is_processed());
    assert_eq!(
        sent.mdn.original_message_id.as_deref(),
        Some(sent.message_id.as_str())
    );
}

#[tokio::test]
async fn unsigned_unencrypted() {
    let f = Fixture::new();
    let peer = f.receiver(json!({}));
    let out = f.outbound(
        &peer.url,
        OutboundConfig {
            sign: Some(false),
            encrypt: Some(false),
            mdn: Some("unsigned".into()),
            ..Default::default()
        },
    );
    let sent = f.send(&out, "flow.42.report.xml", XML).await.unwrap();
    let r = only_record(&peer);
    assert_received(&r, &sent, XML, "application/xml");
    assert_eq!(r["filename"], "flow.42.report.xml");
    assert!(!sent.mdn.signed);
    assert_eq!(r["mdn_signed"], false);
    assert!(r["headers"]
        .get("disposition-notification-options")
        .is_none());
}

#[tokio::test]
async fn signed_with_a_signed_mdn() {
    let f = Fixture::new();
    let peer = f.receiver(json!({"require_signed": true}));
    let out = f.outbound(
        &peer.url,
        OutboundConfig {
            encrypt: Some(false),
            ..Default::default()
        },
    );
    let sent = f.send(&out, "flow.42.report.json", JSON).await.unwrap();
    let r = only_record(&peer);
    assert_received(&r, &sent, JSON, "application/json");
    assert_eq!(r["digest_alg"], "sha256");
    assert!(sent.mdn.signed, "the MDN was signed and verified");
    assert_eq!(r["mdn_signed"], true);
}

#[tokio::test]
async fn encrypted_only() {
    let f = Fixture::new();
    let peer = f.receiver(json!({"require_encrypted": true}));
    let out = f.outbound(
        &peer.url,
        OutboundConfig {
            sign: Some(false),
            mdn: Some("unsigned".into()),
            ..Default::default()
        },
    );
    let sent = f.send(&out, "flow.42.contrl.edi", EDI).await.unwrap();
    let r = only_record(&peer);
    assert_received(&r, &sent, EDI, "application/edifact");
    assert_eq!(r["cms_enc_alg"], "aes256_cbc");
}

#[tokio::test]
async fn signed_and_encrypted_every_file_kind() {
    let f = Fixture::new();
    let peer = f.receiver(json!({"require_signed": true, "require_encrypted": true}));
    let out = f.outbound(&peer.url, OutboundConfig::default());
    assert!(out.sign && out.encrypt, "the defaults sign and encrypt");
    let files: [(&str, &[u8], &str); 3] = [
        ("a.report.xml", XML, "application/xml"),
        ("a.report.json", JSON, "application/json"),
        ("a.contrl.edi", EDI, "application/edifact"),
    ];
    let mut sent = Vec::new();
    for (name, bytes, _) in files {
        sent.push(f.send(&out, name, bytes).await.unwrap());
    }
    let records = peer.records();
    assert_eq!(records.len(), 3);
    for ((r, s), (name, bytes, ct)) in records.iter().zip(&sent).zip(files) {
        assert_received(r, s, bytes, ct);
        assert_eq!(r["filename"], name);
        assert!(s.signed && s.encrypted && s.mdn.signed);
    }
}

#[tokio::test]
async fn compressed_with_other_algorithms() {
    let f = Fixture::new();
    let peer = f.receiver(json!({"require_signed": true, "require_encrypted": true}));
    for (encryption, signature, pyname, digest) in [
        ("aes128-cbc", "sha512", "aes128_cbc", "sha512"),
        ("3des", "sha1", "tripledes_3key", "sha1"),
        ("aes192-cbc", "sha384", "aes192_cbc", "sha384"),
    ] {
        let out = f.outbound(
            &peer.url,
            OutboundConfig {
                compress: Some(true),
                encryption: Some(encryption.into()),
                signature: Some(signature.into()),
                ..Default::default()
            },
        );
        let sent = f
            .send(&out, "big.report.xml", &XML.repeat(50))
            .await
            .unwrap();
        let r = peer.records().pop().unwrap();
        assert_received(&r, &sent, &XML.repeat(50), "application/xml");
        assert!(sent.compressed);
        assert_eq!(r["cms_enc_alg"], pyname);
        assert_eq!(r["digest_alg"], digest);
    }
}

#[tokio::test]
async fn wrong_mic_in_the_mdn_is_refused() {
    let f = Fixture::new();
    // A signed message, an unsigned MDN whose MIC the receiver altered.
    let peer = f.receiver(json!({"mdn_wrong_mic": true}));
    let out = f.outbound(
        &peer.url,
        OutboundConfig {
            mdn: Some("unsigned".into()),
            ..Default::default()
        },
    );
    let err = f.send(&out, "a.report.xml", XML).await.unwrap_err();
    assert!(
        matches!(err, SendError::Refused(Refusal::MicMismatch { .. })),
        "{err}"
    );
    assert!(!err.is_transient());
    assert_eq!(only_record(&peer)["status"], "processed");
}

#[tokio::test]
async fn altered_signed_mdn_is_refused() {
    let f = Fixture::new();
    let peer = f.receiver(json!({"mdn_tamper": true}));
    let out = f.outbound(&peer.url, OutboundConfig::default());
    let err = f.send(&out, "a.report.xml", XML).await.unwrap_err();
    assert!(
        matches!(err, SendError::Refused(Refusal::MdnSignature(_))),
        "{err}"
    );
}

#[tokio::test]
async fn unsigned_mdn_refused_when_a_signed_one_was_asked() {
    let f = Fixture::new();
    let peer = f.receiver(json!({"mdn_never_signed": true}));
    let out = f.outbound(&peer.url, OutboundConfig::default());
    let err = f.send(&out, "a.report.xml", XML).await.unwrap_err();
    assert!(
        matches!(err, SendError::Refused(Refusal::UnsignedMdn)),
        "{err}"
    );
    // The same MDN is fine when an unsigned one is asked for.
    let out = f.outbound(
        &peer.url,
        OutboundConfig {
            mdn: Some("unsigned".into()),
            ..Default::default()
        },
    );
    f.send(&out, "a.report.xml", XML).await.unwrap();
}

#[tokio::test]
async fn error_disposition_is_a_typed_refusal() {
    let f = Fixture::new();
    // The receiver wants signed messages; quai sends an unsigned one.
    let peer = f.receiver(json!({"require_signed": true}));
    let out = f.outbound(
        &peer.url,
        OutboundConfig {
            sign: Some(false),
            ..Default::default()
        },
    );
    let err = f.send(&out, "a.report.xml", XML).await.unwrap_err();
    match &err {
        SendError::Refused(Refusal::Disposition { disposition, .. }) => {
            assert!(
                disposition
                    .to_ascii_lowercase()
                    .contains("processed/error: insufficient-message-security"),
                "{disposition}"
            );
        }
        other => panic!("expected an error disposition, got {other}"),
    }
    assert!(!err.is_transient());
    assert!(err.to_string().contains("insufficient-message-security"));
}

#[tokio::test]
async fn receiver_down_is_a_transport_error() {
    let f = Fixture::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = f.outbound(
        &format!("http://127.0.0.1:{port}/as2"),
        OutboundConfig::default(),
    );
    let err = f.send(&out, "a.report.xml", XML).await.unwrap_err();
    assert!(matches!(err, SendError::Transport(_)), "{err}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn http_errors_split_into_transport_and_refusal() {
    let f = Fixture::new();
    let busy = f.receiver(json!({"http_status": 503}));
    let out = f.outbound(&busy.url, OutboundConfig::default());
    let err = f.send(&out, "a.report.xml", XML).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("503"));
    let forbidden = f.receiver(json!({"http_status": 403}));
    let out = f.outbound(&forbidden.url, OutboundConfig::default());
    let err = f.send(&out, "a.report.xml", XML).await.unwrap_err();
    assert!(
        matches!(
            err,
            SendError::Refused(Refusal::HttpStatus { status: 403, .. })
        ),
        "{err}"
    );
}

#[tokio::test]
async fn oversized_file_is_refused_before_sending() {
    let f = Fixture::new();
    let peer = f.receiver(json!({}));
    let out = f.outbound(
        &peer.url,
        OutboundConfig {
            max_send_bytes: Some(100),
            ..Default::default()
        },
    );
    let err = f
        .send(&out, "a.report.xml", &[b'x'; 101])
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::TooLarge { .. }), "{err}");
    assert!(peer.records().is_empty());
}

#[tokio::test]
async fn stalled_receiver_times_out_as_a_transport_error() {
    let f = Fixture::new();
    // Connections are accepted by the kernel, never answered.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/as2", listener.local_addr().unwrap());
    let out = Outbound::resolve(
        &OutboundConfig {
            url,
            timeout_seconds: Some(1),
            ..Default::default()
        },
        true,
    )
    .unwrap();
    let started = std::time::Instant::now();
    let err = f.send(&out, "a.report.xml", XML).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    drop(listener);
}

/// quai's sender against quai's own receiver: every combination of layers
/// is taken, and the MDN (with the receiver's MIC convention for unsigned
/// messages) is accepted by the sender.
#[tokio::test]
async fn quai_to_quai() {
    use quai_connectors::as2::{router, As2Receiver, As2Settings};
    use quai_connectors::{Accepted, FlowSink, LandedFlow, SinkError};
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Sink {
        got: Mutex<Vec<(String, Vec<u8>)>>,
        next: AtomicI64,
    }
    impl FlowSink for Sink {
        async fn accept(&self, flow: LandedFlow) -> Result<Accepted, SinkError> {
            let bytes = std::fs::read(&flow.stored_path).map_err(|e| SinkError(e.to_string()))?;
            self.got.lock().unwrap().push((flow.original_name, bytes));
            Ok(Accepted::New {
                flow_id: self.next.fetch_add(1, Ordering::SeqCst) + 1,
            })
        }
    }

    let f = Fixture::new();
    // The receiving quai is "PARTNER" (the partner's keys); it knows the
    // sending quai as "QUAI".
    let their_identity = Identity::load(&IdentityConfig {
        as2_id: "PARTNER".into(),
        certificate: f.partner.cert_path.clone(),
        key: f.partner.key_path.clone(),
    })
    .unwrap();
    let sender_as_partner = Partner::load(&PartnerConfig {
        partner_id: "quai".into(),
        as2_id: "QUAI".into(),
        certificate: Some(f.quai.cert_path.clone()),
        require_signed: false,
        require_encrypted: false,
        allow_async_mdn: true,
    })
    .unwrap();
    let settings = As2Settings::new(
        their_identity,
        vec![sender_as_partner],
        f.dir.path().join("flows"),
    );
    let sink = Arc::new(Sink::default());
    let receiver = Arc::new(As2Receiver::new(settings, sink.clone()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/as2", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, router(receiver)).await.unwrap();
    });

    let combos = [
        (false, false, false, "unsigned"),
        (true, false, false, "signed"),
        (false, true, false, "unsigned"),
        (false, false, true, "unsigned"),
        (true, true, true, "signed"),
    ];
    for (i, (sign, encrypt, compress, mdn)) in combos.into_iter().enumerate() {
        let out = f.outbound(
            &url,
            OutboundConfig {
                sign: Some(sign),
                encrypt: Some(encrypt),
                compress: Some(compress),
                mdn: Some(mdn.into()),
                ..Default::default()
            },
        );
        let name = format!("f{i}.report.json");
        let sent = f
            .send(&out, &name, JSON)
            .await
            .unwrap_or_else(|e| panic!("{sign}/{encrypt}/{compress}: {e}"));
        assert!(sent.mdn.is_processed());
        assert_eq!(sent.mdn.signed, mdn == "signed");
        assert!(
            sent.mdn.mic.is_some(),
            "quai's receiver always reports a MIC"
        );
        let got = sink.got.lock().unwrap().last().cloned().unwrap();
        assert_eq!(got, (name, JSON.to_vec()));
    }
    server.abort();
}
