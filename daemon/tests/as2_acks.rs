//! Acknowledgements of an AS2 flow go back over AS2 (issue 6).
//!
//! pyas2lib (PyPI) plays the partner both ways: `peer.py` posts a signed,
//! encrypted flow to quai's `/as2` endpoint, and `peer.py --receive` is the
//! partner's AS2 server named by `[partner.as2] url`. The integration report
//! (XML and JSON) and the CDAR file of that flow must arrive there as AS2
//! messages that pyas2lib decrypts and verifies, byte-identical to what the
//! renderer (and `quai resend-ack`) produce, and be marked delivered in the
//! spool; while the partner's server is down, delivery fails and is retried.

mod support;

use quai_test_support::as2peer;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use as2peer::{KeyPair, ReceiverPeer};
use quai_spool::{AckKind, AckRow};
use serde_json::{json, Value};
use support::common::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn quai_cli(config: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_quai"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run quai");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Wait until `check` says yes, or fail with `what`.
async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// quai ("QUAI") running with a partner "acme" ("ACME") that posts over
/// AS2 and takes its acknowledgements over AS2 at `receiver_port` (nothing
/// listens there until the test starts the receiver).
struct Setup {
    d: TestDaemon,
    dir: std::path::PathBuf,
    config_path: std::path::PathBuf,
    quai_keys: KeyPair,
    acme_keys: KeyPair,
    http: u16,
    receiver_port: u16,
}

impl Setup {
    async fn start() -> Setup {
        let home = tempfile::tempdir().unwrap();
        let keys = home.path().join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        let quai_keys = KeyPair::generate(&keys, "quai");
        let acme_keys = KeyPair::generate(&keys, "acme");
        let receiver_port = free_port();
        let text = format!(
            "[http]\nlisten = \"off\"\n[dropzones]\nstable_seconds = 1\n\
             [as2]\nas2_id = \"QUAI\"\ncertificate = \"keys/quai.crt\"\nkey = \"keys/quai.key\"\n\
             [[partner]]\nid = \"acme\"\n[partner.as2]\nas2_id = \"ACME\"\ncertificate = \"keys/acme.crt\"\n\
             require_signed = true\nrequire_encrypted = true\n\
             url = \"http://127.0.0.1:{receiver_port}/as2\"\ntimeout_seconds = 10\n"
        );
        let config_path = home.path().join("quai.toml");
        std::fs::write(&config_path, text).unwrap();
        let config = quai::config::Config::load(&config_path).unwrap();
        let mut d = TestDaemon {
            home,
            config,
            stop: Default::default(),
            task: None,
        };
        let http = d.start().port();
        let dir = d.home.path().to_path_buf();
        wait_for("the AS2 endpoint", Duration::from_secs(20), async || {
            if d.task.as_ref().is_some_and(|t| t.is_finished()) {
                panic!("the daemon stopped");
            }
            std::net::TcpStream::connect(("127.0.0.1", http)).ok()
        })
        .await;
        Setup {
            d,
            dir,
            config_path,
            quai_keys,
            acme_keys,
            http,
            receiver_port,
        }
    }

    /// ACME posts an invoice over AS2 (signed, encrypted, signed synchronous
    /// MDN, checked by pyas2lib); the id of the flow it became.
    async fn post_flow(&self, spool: &quai_spool::Spool) -> i64 {
        let payload = self.dir.join("inv.xml");
        std::fs::write(&payload, fixture("ubl-tc434-example2.xml")).unwrap();
        let sender = json!({
            "url": format!("http://127.0.0.1:{}/as2", self.http),
            "sender_as2": "ACME",
            "receiver_as2": "QUAI",
            "sender_key": self.acme_keys.key_path,
            "sender_cert": self.acme_keys.cert_path,
            "receiver_cert": self.quai_keys.cert_path,
            "payload": payload,
            "content_type": "application/xml",
            "filename": "inv.xml",
            "sign": true,
            "encrypt": true,
            "mdn_mode": "SYNC",
            "mdn_digest_alg": "sha256",
        });
        let dir = self.dir.clone();
        let sent = tokio::task::spawn_blocking(move || as2peer::run_peer(&dir, &sender))
            .await
            .unwrap();
        let first = &sent["results"][0];
        assert_eq!(first["http_status"], 200, "{sent}");
        assert_eq!(first["mdn_status"], "processed", "{sent}");
        wait_for("the flow", Duration::from_secs(20), async || {
            spool
                .list_flows(&Default::default())
                .await
                .unwrap()
                .first()
                .map(|f| f.id)
        })
        .await
    }

    /// ACME's AS2 server (pyas2lib) on `receiver_port`; `extra` adds faults.
    fn receiver(&self, extra: Value) -> ReceiverPeer {
        let mut cfg = json!({
            "port": self.receiver_port,
            "org_as2": "ACME",
            "org_key": self.acme_keys.key_path,
            "org_cert": self.acme_keys.cert_path,
            "partner_as2": "QUAI",
            "partner_cert": self.quai_keys.cert_path,
            "require_signed": true,
            "require_encrypted": true,
        });
        for (k, v) in extra.as_object().unwrap() {
            cfg[k] = v.clone();
        }
        ReceiverPeer::start(&self.dir, &cfg)
    }
}

/// Messages the receiver processed (not those it answered 503).
fn processed(peer: &ReceiverPeer) -> Vec<Value> {
    peer.records()
        .into_iter()
        .filter(|r| r.get("unavailable").is_none())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_of_an_as2_flow_go_back_over_as2_with_retries() {
    let mut s = Setup::start().await;
    let spool = s.d.spool().await;
    let flow_id = s.post_flow(&spool).await;

    // The flow's acknowledgements are owed over AS2 and fail while the
    // partner's server is down: attempts recorded, not delivered.
    let acks: Vec<AckRow> = wait_for("two failed attempts", Duration::from_secs(40), async || {
        let acks = spool.acks_of_flow(flow_id).await.unwrap();
        let report = acks.iter().find(|a| a.kind == AckKind::IntegrationReport)?;
        (report.attempts >= 2).then_some(acks)
    })
    .await;
    let kinds: Vec<AckKind> = acks.iter().map(|a| a.kind).collect();
    assert!(
        kinds.contains(&AckKind::IntegrationReport) && kinds.contains(&AckKind::Cdar),
        "{acks:?}"
    );
    for a in &acks {
        assert_eq!(a.destination, "as2", "{a:?}");
        assert!(a.delivered_at.is_none(), "{a:?}");
        let err = a.last_error.as_deref().unwrap_or("");
        assert!(err.contains("transport"), "a transport failure: {err}");
    }
    // Nothing went to the local outbox.
    assert!(std::fs::read_dir(s.d.outbox("acme"))
        .map(|r| r.count() == 0)
        .unwrap_or(true));

    // The partner's server comes up: the next pass delivers every file.
    let peer = s.receiver(json!({}));
    let acks: Vec<AckRow> = wait_for("delivery", Duration::from_secs(40), async || {
        let acks = spool.acks_of_flow(flow_id).await.unwrap();
        acks.iter()
            .all(|a| a.delivered_at.is_some())
            .then_some(acks)
    })
    .await;

    // What pyas2lib received: every rendered file, byte for byte, signed and
    // encrypted, as one message each.
    let records = processed(&peer);
    let daemon = quai::App::open(s.d.config.clone()).await.unwrap();
    let mut expected = Vec::new();
    for a in &acks {
        assert!(a.attempts >= 2, "retried: {a:?}");
        let staged = quai::acks::render(&daemon, a).await.unwrap();
        for (name, path) in &staged.files {
            expected.push((name.clone(), std::fs::read(path).unwrap()));
        }
    }
    let names: Vec<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.iter().any(|n| n.ends_with(".report.xml")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.ends_with(".report.json")),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n.ends_with(".cdar.xml")), "{names:?}");
    assert_eq!(
        records.len(),
        expected.len(),
        "one message per file: {records:?}"
    );
    for (name, bytes) in &expected {
        let r = records
            .iter()
            .find(|r| r["filename"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} not received: {records:?}"));
        assert_eq!(r["status"], "processed", "{r}");
        assert_eq!(&ReceiverPeer::payload(r), bytes, "{name} byte-identical");
        assert_eq!(r["signed"], true);
        assert_eq!(r["encrypted"], true);
        assert_eq!(r["headers"]["as2-from"], "QUAI");
        assert_eq!(r["headers"]["as2-to"], "ACME");
        let ct = if name.ends_with(".json") {
            "application/json"
        } else {
            "application/xml"
        };
        assert_eq!(r["content_type"], ct);
    }

    // `quai flow ID --json` shows them delivered over AS2.
    let (code, out) = quai_cli(&s.config_path, &["flow", &flow_id.to_string(), "--json"]);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let listed = v["acknowledgements"].as_array().unwrap();
    assert_eq!(listed.len(), acks.len());
    for a in listed {
        assert_eq!(a["destination"], "as2", "{a}");
        assert!(a["delivered_at"].is_string(), "{a}");
        assert!(a["attempts"].as_i64().unwrap() >= 2, "{a}");
    }

    // `quai flow ID --invoice 0` prints the canonical invoice the spool
    // keeps (compressed) for the flow's first document; none at index 99.
    let (code, out) = quai_cli(
        &s.config_path,
        &["flow", &flow_id.to_string(), "--invoice", "0"],
    );
    assert_eq!(code, 0, "{out}");
    let canonical: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        canonical["number"], v["invoices"][0]["number"],
        "{canonical}"
    );
    let (code, _) = quai_cli(
        &s.config_path,
        &["flow", &flow_id.to_string(), "--invoice", "99"],
    );
    assert_eq!(code, 1);

    // `quai resend-ack` sends the report again (the daemon stopped, so the
    // CLI's own pass is the only one): the same bytes arrive.
    drop(daemon);
    s.d.stop().await;
    let report = acks
        .iter()
        .find(|a| a.kind == AckKind::IntegrationReport)
        .unwrap();
    let (code, out) = quai_cli(
        &s.config_path,
        &["resend-ack", &report.id.to_string(), "--json"],
    );
    assert_eq!(code, 0, "{out}");
    let again = processed(&peer);
    assert_eq!(again.len(), records.len() + 2, "{again:?}");
    for r in &again[records.len()..] {
        let name = r["filename"].as_str().unwrap();
        let original = records.iter().find(|o| o["filename"] == name).unwrap();
        assert_eq!(r["payload_hex"], original["payload_hex"], "{name}");
        assert_ne!(r["message_id"], original["message_id"], "a new message");
    }

    drop(peer);
}

/// The report's XML is accepted, its JSON twin is answered "try later":
/// the acknowledgement stays pending, and the retry sends only the JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partly_delivered_report_is_not_sent_twice() {
    let mut s = Setup::start().await;
    let peer =
        s.receiver(json!({"unavailable_for_suffix": ".report.json", "unavailable_times": 1}));
    let spool = s.d.spool().await;
    let flow_id = s.post_flow(&spool).await;
    let acks: Vec<AckRow> = wait_for("delivery", Duration::from_secs(40), async || {
        let acks = spool.acks_of_flow(flow_id).await.unwrap();
        (!acks.is_empty() && acks.iter().all(|a| a.delivered_at.is_some())).then_some(acks)
    })
    .await;
    let report = acks
        .iter()
        .find(|a| a.kind == AckKind::IntegrationReport)
        .unwrap();
    assert_eq!(report.attempts, 2, "{report:?}");
    let all = peer.records();
    let unavailable: Vec<&Value> = all
        .iter()
        .filter(|r| r.get("unavailable").is_some())
        .collect();
    assert_eq!(unavailable.len(), 1, "{all:?}");
    let names: Vec<String> = processed(&peer)
        .iter()
        .map(|r| r["filename"].as_str().unwrap_or_default().to_string())
        .collect();
    let count = |suffix: &str| names.iter().filter(|n| n.ends_with(suffix)).count();
    assert_eq!(
        count(".report.xml"),
        1,
        "the XML was not sent again: {names:?}"
    );
    assert_eq!(count(".report.json"), 1, "{names:?}");
    assert_eq!(count(".cdar.xml"), 1, "{names:?}");
    // Nothing left behind once delivered.
    let sent_dir = s.dir.join("as2-out").join("sent");
    let left = std::fs::read_dir(&sent_dir).map(|r| r.count()).unwrap_or(0);
    assert_eq!(left, 0, "markers removed");
    s.d.stop().await;
}

/// A flow ACME posts twice over AS2 is registered the second time as a
/// duplicate; its report ("duplicate of") goes back over AS2 too, like
/// every answer to an AS2 flow of a partner with `[partner.as2] url`
/// (docs/acknowledgements.md), never into the local outbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_as2_flow_is_answered_over_as2() {
    let mut s = Setup::start().await;
    let peer = s.receiver(json!({}));
    let spool = s.d.spool().await;
    let original = s.post_flow(&spool).await;
    let duplicate = s.post_flow(&spool).await;
    assert_ne!(duplicate, original, "a second flow is registered");
    let flow = spool.flow(duplicate).await.unwrap();
    assert_eq!(flow.state, quai_spool::FlowState::Duplicate, "{flow:?}");
    assert_eq!(flow.duplicate_of, Some(original));
    let acks: Vec<AckRow> = wait_for("delivery", Duration::from_secs(40), async || {
        let acks = spool.acks_of_flow(duplicate).await.unwrap();
        (!acks.is_empty() && acks.iter().all(|a| a.delivered_at.is_some())).then_some(acks)
    })
    .await;
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert_eq!(acks[0].kind, AckKind::IntegrationReport);
    assert_eq!(acks[0].destination, "as2", "{acks:?}");
    let name = format!("{}.xml", acks[0].file_name);
    let records = processed(&peer);
    let r = records
        .iter()
        .find(|r| r["filename"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} not received over AS2: {records:?}"));
    assert_eq!(r["status"], "processed", "{r}");
    let report = String::from_utf8(ReceiverPeer::payload(r)).unwrap();
    assert!(report.contains("duplicate"), "{report}");
    // Nothing went to the local outbox.
    assert!(std::fs::read_dir(s.d.outbox("acme"))
        .map(|r| r.count() == 0)
        .unwrap_or(true));
    s.d.stop().await;
    drop(peer);
}
