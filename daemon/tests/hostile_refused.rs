//! Entries refused at the door get one answer (issue 14, class 1): a FIFO
//! and a symbolic link dropped into a partner's drop folder are never
//! read; each gets one integration report (IRR_TYPE_F) in the partner's
//! outbox, delivered after the refusal is committed as a failed flow, one
//! log line, and one count in `quai_intake_refused_total{partner,reason}`;
//! after a restart nothing is answered again, and a good file dropped
//! beside them is processed as usual. A symbolic link on a partner's SFTP
//! server (a real OpenSSH) is answered the same way, in its SFTP outbox,
//! once although it stays listed poll after poll.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use quai_spool::FlowState;
use quai_test_support::sshd;
use support::common::*;
use support::http::{get, parse_metrics, sample};

fn reports(outbox: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(outbox)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(".report.json"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

async fn refused_count(addr: SocketAddr, reason: &str) -> Option<f64> {
    let text = get(addr, "/metrics", &[]).await.text();
    sample(
        &parse_metrics(&text),
        "quai_intake_refused_total",
        &[("partner", "acme"), ("reason", reason)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_and_a_link_get_one_report_each_and_are_counted() {
    let mut d = TestDaemon::new();
    let inbox = d.inbox("acme");
    let status = std::process::Command::new("mkfifo")
        .arg(inbox.join("pipe.xml"))
        .status()
        .expect("mkfifo (coreutils)");
    assert!(status.success());
    std::os::unix::fs::symlink("/etc/passwd", inbox.join("passwd.xml")).unwrap();
    let addr = d.start();
    d.drop_file("acme", "good.xml", &fixture("ubl-tc434-example2.xml"));

    let found = d.wait_reports("acme", 3, Duration::from_secs(40)).await;
    let by_file = |name: &str| {
        found
            .iter()
            .map(|p| report_json(p))
            .find(|r| r["flow"]["file"] == name)
            .unwrap_or_else(|| panic!("no report for {name}: {found:?}"))
    };
    for (name, what) in [("pipe.xml", "named pipe"), ("passwd.xml", "symbolic link")] {
        let r = by_file(name);
        assert_eq!(r["status"], "rejected", "{r}");
        assert_eq!(r["rejection"]["code"], "IRR_TYPE_F", "{r}");
        let message = r["rejection"]["message"].as_str().unwrap();
        assert!(message.contains(what), "{r}");
        assert!(
            !message.contains("/etc/passwd"),
            "a link's target is never named: {r}"
        );
        assert_eq!(r["counts"]["documents"], 0, "{r}");
        // Its XML twin is there and well-formed enough to hold the code.
        let json = found
            .iter()
            .find(|p| report_json(p)["flow"]["file"] == name)
            .unwrap();
        let xml = json
            .to_string_lossy()
            .replace(".report.json", ".report.xml");
        let xml = std::fs::read_to_string(xml).unwrap();
        assert!(xml.contains("IRR_TYPE_F"), "{xml}");
    }
    assert_eq!(by_file("good.xml")["status"], "processed");
    // Nothing of /etc/passwd anywhere in the partner's outbox.
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let first = passwd.lines().next().unwrap();
    for e in std::fs::read_dir(d.outbox("acme")).unwrap().flatten() {
        let text = String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned();
        assert!(!text.contains(first), "{}", e.path().display());
    }
    // Both refused entries were moved aside, the FIFO still a FIFO.
    let aside = inbox.join(".quai-refused");
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(aside.join("pipe.xml"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(std::fs::symlink_metadata(aside.join("passwd.xml"))
        .unwrap()
        .file_type()
        .is_symlink());

    // Counted once each.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (fifo, link) = (
            refused_count(addr, "fifo").await,
            refused_count(addr, "link").await,
        );
        if fifo == Some(1.0) && link == Some(1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "fifo {fifo:?}, link {link:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The spool holds them as failed flows whose reports are delivered.
    let spool = d.spool().await;
    let flows = spool.list_flows(&Default::default()).await.unwrap();
    assert_eq!(flows.len(), 3, "{flows:?}");
    for f in flows.iter().filter(|f| f.original_name != "good.xml") {
        assert_eq!(f.state, FlowState::Failed, "{f:?}");
        assert_eq!(f.failure_code.as_deref(), Some("IRR_TYPE_F"));
        let acks = spool.acks_of_flow(f.id).await.unwrap();
        assert_eq!(acks.len(), 1, "{acks:?}");
        assert!(acks[0].delivered_at.is_some(), "{acks:?}");
    }

    // A restart answers nothing again.
    d.stop().await;
    let addr = d.start();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(reports(&d.outbox("acme")).len(), 3);
    assert_eq!(
        spool.list_flows(&Default::default()).await.unwrap().len(),
        3
    );
    assert_eq!(refused_count(addr, "fifo").await, Some(1.0));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_on_an_sftp_server_gets_one_report_in_the_sftp_outbox() {
    let server = sshd::Sshd::start();
    let remote_in = server.data.join("outgoing");
    let remote_out = server.data.join("incoming");
    std::fs::create_dir_all(&remote_in).unwrap();
    std::fs::create_dir_all(&remote_out).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", remote_in.join("passwd.xml")).unwrap();

    let mut d = TestDaemon::new();
    d.config.inbound_root = None;
    // Not acme: the metrics registry is shared with the other test.
    let mut globex = support::seed::partner("globex", &[]);
    globex.sftp = Some(quai::config::PartnerSftp {
        url: server.url(&remote_in),
        key: Some(server.client_key.clone()),
        password_file: None,
        known_hosts: Some(server.known_hosts.clone()),
        trust_on_first_use: false,
        outbox: Some(remote_out.display().to_string()),
        poll: Some("*/1 * * * * *".into()),
        after_pickup: Some("delete".into()),
        min_age_seconds: Some(0),
    });
    d.config.partners = vec![globex];
    d.start();

    let json = loop_until(Duration::from_secs(40), || {
        let found = reports(&remote_out);
        (!found.is_empty()).then_some(found)
    })
    .await;
    assert_eq!(json.len(), 1, "{json:?}");
    let r = report_json(&json[0]);
    assert_eq!(r["flow"]["file"], "passwd.xml", "{r}");
    assert_eq!(r["rejection"]["code"], "IRR_TYPE_F", "{r}");
    // Several polls later: still one report, one flow; the link untouched.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(reports(&remote_out).len(), 1);
    let spool = d.spool().await;
    assert_eq!(
        spool.list_flows(&Default::default()).await.unwrap().len(),
        1
    );
    assert!(std::fs::symlink_metadata(remote_in.join("passwd.xml"))
        .unwrap()
        .file_type()
        .is_symlink());
    d.stop().await;
}

async fn loop_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
