//! Partners stay in their own room (issue 14, class 3), through the
//! running daemon:
//!
//! * two AS2 partners (pyas2lib, `test-support/peers/as2/peer.py`): BOLT
//!   reusing ACME's Message-ID sends BOLT's own new message (registered,
//!   processed, MDN `processed` for what was processed), never a duplicate
//!   of ACME's; ACME resending its message is ACME's duplicate, answered
//!   with the first MDN; ACME reusing the Message-ID for other content gets
//!   an error MDN (that content was not processed);
//! * an invoice first received from another partner is reported to the
//!   second as "already received" with no flow id of the first, in the
//!   integration report (JSON and XML) and the CDAR file, over AS2 and over
//!   drop zones alike, and in the partner's reject digest (a real SMTP
//!   server); within one partner the flow id stays; a duplicate inside one
//!   flow says "twice in this flow";
//! * an AS2 file name made only of dots never gives a hidden report file.

mod support;

use quai_test_support::{as2peer, smtp};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use as2peer::KeyPair;
use quai_spool::{FlowState, Spool};
use serde_json::{json, Value};
use support::common::*;

async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The outbox files of `flow`: (report JSON, report XML, CDAR XML).
async fn answers(outbox: &Path, flow: i64) -> (Value, String, String) {
    let tag = format!(".{flow}.");
    let find = |suffix: &str| -> Option<PathBuf> {
        std::fs::read_dir(outbox)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                let n = p.file_name().unwrap().to_string_lossy().into_owned();
                n.contains(&tag) && n.ends_with(suffix)
            })
    };
    wait_for(&format!("the answers of flow {flow}"), async || {
        let json = find(".report.json")?;
        let xml = find(".report.xml")?;
        let cdar = find(".cdar.xml")?;
        Some((
            report_json(&json),
            std::fs::read_to_string(xml).ok()?,
            std::fs::read_to_string(cdar).ok()?,
        ))
    })
    .await
}

/// The REJ_UNI messages of a report.
fn reasons(report: &Value) -> Vec<String> {
    report["documents"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["reasons"].as_array().unwrap().clone())
        .filter(|r| r["rule"] == "REJ_UNI")
        .map(|r| r["message"].as_str().unwrap().to_string())
        .collect()
}

/// No text of these answers names flow `other` (another partner's).
fn names_no_flow(other: i64, report: &Value, xml: &str, cdar: &str) {
    let flow = format!("flow {other}");
    for text in [report.to_string(), xml.to_string(), cdar.to_string()] {
        assert!(!text.contains(&flow), "{flow} named: {text}");
    }
    assert!(report.get("duplicate_of").is_none(), "{report}");
}

struct As2Partners {
    d: TestDaemon,
    dir: PathBuf,
    http: u16,
    quai: KeyPair,
    keys: Vec<(String, KeyPair)>,
}

impl As2Partners {
    async fn start() -> As2Partners {
        let home = tempfile::tempdir().unwrap();
        let kdir = home.path().join("keys");
        std::fs::create_dir_all(&kdir).unwrap();
        let quai = KeyPair::generate(&kdir, "quai");
        let mut text = "[http]\nlisten = \"off\"\n[dropzones]\nstable_seconds = 1\n\
             [as2]\nas2_id = \"QUAI\"\ncertificate = \"keys/quai.crt\"\nkey = \"keys/quai.key\"\n"
            .to_string();
        let mut keys = Vec::new();
        for id in ["acme", "bolt"] {
            keys.push((id.to_string(), KeyPair::generate(&kdir, id)));
            text.push_str(&format!(
                "[[partner]]\nid = \"{id}\"\n[partner.as2]\nas2_id = \"{}\"\n\
                 certificate = \"keys/{id}.crt\"\nrequire_signed = true\n",
                id.to_uppercase()
            ));
        }
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
        wait_for("the AS2 endpoint", async || {
            std::net::TcpStream::connect(("127.0.0.1", http)).ok()
        })
        .await;
        As2Partners {
            d,
            dir,
            http,
            quai,
            keys,
        }
    }

    /// `partner` posts `payload` (signed, synchronous signed MDN) under
    /// `message_id` and `filename`; the peer's result (MDN checked by
    /// pyas2lib).
    async fn post(&self, partner: &str, message_id: &str, filename: &str, payload: &[u8]) -> Value {
        let keys = &self.keys.iter().find(|k| k.0 == partner).unwrap().1;
        let file = self.dir.join(format!("{partner}-payload"));
        std::fs::write(&file, payload).unwrap();
        let sender = json!({
            "url": format!("http://127.0.0.1:{}/as2", self.http),
            "sender_as2": partner.to_uppercase(),
            "receiver_as2": "QUAI",
            "sender_key": keys.key_path,
            "sender_cert": keys.cert_path,
            "receiver_cert": self.quai.cert_path,
            "payload": file,
            "content_type": "application/xml",
            "filename": filename,
            "message_id": message_id,
            "sign": true,
            "mdn_mode": "SYNC",
            "mdn_digest_alg": "sha256",
        });
        let dir = self.dir.clone();
        let sent = tokio::task::spawn_blocking(move || as2peer::run_peer(&dir, &sender))
            .await
            .unwrap();
        sent["results"][0].clone()
    }
}

async fn flow_of(spool: &Spool, partner: &str, n: usize) -> quai_spool::FlowRow {
    wait_for(&format!("flow #{n} of {partner}"), async || {
        let mut flows = spool.list_flows(&Default::default()).await.unwrap();
        flows.retain(|f| f.partner == partner);
        flows.sort_by_key(|f| f.id);
        flows.get(n).cloned()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as2_message_ids_and_duplicates_stay_per_partner() {
    let mut s = As2Partners::start().await;
    let spool = s.d.spool().await;
    let invoice = fixture("ubl-tc434-example2.xml");
    let shared_id = "shared-42@as2.example";

    let r = s.post("acme", shared_id, "inv.xml", &invoice).await;
    assert_eq!(r["http_status"], 200, "{r}");
    assert_eq!(r["mdn_status"], "processed", "{r}");
    let a = flow_of(&spool, "acme", 0).await;
    assert_ne!(a.state, FlowState::Duplicate, "{a:?}");

    // BOLT reuses ACME's Message-ID, with ACME's invoice and a file name
    // of dots: BOLT's own new flow, processed, answered "processed".
    let r = s.post("bolt", shared_id, "....", &invoice).await;
    assert_eq!(r["http_status"], 200, "{r}");
    assert_eq!(r["mdn_status"], "processed", "{r}");
    let b = flow_of(&spool, "bolt", 0).await;
    assert_ne!(b.state, FlowState::Duplicate, "{b:?}");
    assert_eq!(b.duplicate_of, None, "{b:?}");
    let (report, xml, cdar) = answers(&s.d.outbox("bolt"), b.id).await;
    assert_eq!(report["status"], "processed", "{report}");
    let msgs = reasons(&report);
    assert!(
        msgs.iter()
            .any(|m| m.ends_with("was already received (DOUBLON)")),
        "{msgs:?}"
    );
    names_no_flow(a.id, &report, &xml, &cdar);
    // The dots gave no hidden file.
    for e in std::fs::read_dir(s.d.outbox("bolt")).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        assert!(!n.starts_with('.'), "hidden report file {n:?}");
        assert!(n.starts_with(&format!("unnamed.{}.", b.id)), "{n:?}");
    }

    // ACME sending its message again (same Message-ID): ACME's duplicate,
    // answered again with the MDN of the first.
    let r = s.post("acme", shared_id, "inv.xml", &invoice).await;
    assert_eq!(r["http_status"], 200, "{r}");
    assert_eq!(r["mdn_status"], "processed", "{r}");
    let dup = flow_of(&spool, "acme", 1).await;
    assert_eq!(dup.state, FlowState::Duplicate, "{dup:?}");
    assert_eq!(dup.duplicate_of, Some(a.id));
    // ACME reusing that Message-ID for other content: not processed, and
    // told so (never the first message's "processed").
    let r = s.post("acme", shared_id, "other.xml", b"<other/>").await;
    assert_eq!(r["http_status"], 200, "{r}");
    assert_eq!(r["mdn_status"], "processed/error", "{r}");
    assert!(
        r["mdn_disposition"]
            .as_str()
            .unwrap_or("")
            .contains("unexpected-processing-error"),
        "{r}"
    );
    // ...and BOLT never heard of any of it.
    assert_eq!(
        spool
            .list_flows(&Default::default())
            .await
            .unwrap()
            .iter()
            .filter(|f| f.partner == "bolt")
            .count(),
        1
    );
    s.d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_invoices_never_name_another_partners_flow() {
    // BOLT's reject digest is mailed to a real SMTP server.
    let server = smtp::Smtp::start();
    let home = tempfile::tempdir().unwrap();
    let config_path = home.path().join("quai.toml");
    std::fs::write(
        &config_path,
        format!(
            "[http]\nlisten = \"off\"\n[mail]\ntransport = \"{}\"\nfrom = \"quai <edi@platform.example>\"\n\
             [schedule]\nreject_digest = \"*/2 * * * * *\"\n[dropzones]\nstable_seconds = 1\n\
             [[partner]]\nid = \"acme\"\n[[partner]]\nid = \"bolt\"\ncontacts = [\"edi@bolt.example\"]\n",
            server.url()
        ),
    )
    .unwrap();
    let config = quai::config::Config::load(&config_path).unwrap();
    let mut d = TestDaemon {
        home,
        config,
        stop: Default::default(),
        task: None,
    };
    d.start();
    let spool = d.spool().await;
    let invoice = fixture("ubl-tc434-example2.xml");

    d.drop_file("acme", "first.xml", &invoice);
    let a = flow_of(&spool, "acme", 0).await;
    let (report, ..) = answers(&d.outbox("acme"), a.id).await;
    assert_eq!(report["counts"]["accepted"], 1, "{report}");

    // BOLT sends ACME's invoice: "already received", no flow of ACME's.
    d.drop_file("bolt", "copy.xml", &invoice);
    let b = flow_of(&spool, "bolt", 0).await;
    let (report, xml, cdar) = answers(&d.outbox("bolt"), b.id).await;
    assert_eq!(report["counts"]["rejected"], 1, "{report}");
    let msgs = reasons(&report);
    assert_eq!(msgs.len(), 1, "{report}");
    assert!(
        msgs[0].starts_with("duplicate invoice: number TOSL108 of seller ")
            && msgs[0].ends_with(" was already received (DOUBLON)"),
        "{msgs:?}"
    );
    names_no_flow(a.id, &report, &xml, &cdar);
    assert!(xml.contains("was already received (DOUBLON)"), "{xml}");
    // ...nor in BOLT's digest (text, HTML and CSV).
    let mail = wait_for("BOLT's digest", async || {
        server
            .messages()
            .into_iter()
            .find(|m| m.rcpt_tos.iter().any(|r| r == "edi@bolt.example"))
    })
    .await;
    let texts = [
        mail.text.clone().unwrap_or_default(),
        mail.html.clone().unwrap_or_default(),
        mail.attachments
            .iter()
            .map(|a| a.content.clone())
            .collect::<String>(),
    ];
    for t in &texts {
        assert!(t.contains("was already received (DOUBLON)"), "{t}");
        assert!(!t.contains(&format!("flow {}", a.id)), "{t}");
        assert!(!t.contains("first.xml"), "ACME's file named: {t}");
    }

    // BOLT sends a zip holding its own new invoice twice: twice in this flow.
    let other = String::from_utf8(invoice.clone())
        .unwrap()
        .replace("TOSL108", "BOLT-7");
    let zip = zip_of(&[
        ("one.xml", other.clone().into_bytes()),
        ("two.xml", other.into_bytes()),
    ]);
    d.drop_file("bolt", "twice.zip", &zip);
    let b2 = flow_of(&spool, "bolt", 1).await;
    let (report, ..) = answers(&d.outbox("bolt"), b2.id).await;
    let msgs = reasons(&report);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(
        msgs[0].starts_with("duplicate invoice: number BOLT-7 of seller ")
            && msgs[0].ends_with(" appears twice in this flow (DOUBLON)"),
        "{msgs:?}"
    );
    assert!(!msgs[0].contains("in flow "), "{msgs:?}");

    // ACME sends its own invoice again in a new file: its own flow id stays.
    let again = String::from_utf8(invoice)
        .unwrap()
        .replace("<cbc:ID>", "<!-- again --><cbc:ID>");
    d.drop_file("acme", "again.xml", again.as_bytes());
    let a2 = flow_of(&spool, "acme", 1).await;
    let (report, ..) = answers(&d.outbox("acme"), a2.id).await;
    let msgs = reasons(&report);
    assert_eq!(msgs.len(), 1, "{report}");
    assert!(
        msgs[0].ends_with(&format!(" was already received in flow {} (DOUBLON)", a.id)),
        "{msgs:?}"
    );
    d.stop().await;
}
