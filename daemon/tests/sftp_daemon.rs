//! SFTP polling through the daemon against a real OpenSSH server: a flow on
//! the server is taken, processed, its report delivered to the SFTP outbox,
//! the remote file removed; a partner whose host key is refused fails on its
//! own (error kind recorded) without stalling the other.

mod support;
use quai_test_support::sshd;
use support::seed;

use std::time::{Duration, Instant};

use quai::config::PartnerSftp;
use tokio_util::sync::CancellationToken;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

fn sftp(
    url: String,
    key: std::path::PathBuf,
    known_hosts: std::path::PathBuf,
    outbox: &std::path::Path,
) -> PartnerSftp {
    PartnerSftp {
        url,
        key: Some(key),
        password_file: None,
        known_hosts: Some(known_hosts),
        trust_on_first_use: false,
        outbox: Some(outbox.display().to_string()),
        poll: Some("*/1 * * * * *".into()),
        after_pickup: Some("delete".into()),
        min_age_seconds: Some(0),
    }
}

#[tokio::test]
async fn flows_polled_processed_and_answered_over_sftp() {
    let server = sshd::Sshd::start();
    let inbox = server.data.join("outgoing");
    let outbox = server.data.join("incoming");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::create_dir_all(&outbox).unwrap();
    let broken_inbox = server.data.join("broken");
    std::fs::create_dir_all(&broken_inbox).unwrap();

    let home = tempfile::tempdir().unwrap();
    let empty_known_hosts = home.path().join("empty_known_hosts");
    std::fs::write(&empty_known_hosts, "").unwrap();
    let mut c = seed::config_at(home.path());
    c.inbound_root = None;
    let mut acme = seed::partner("acme", &["edi@acme.example"]);
    acme.sftp = Some(sftp(
        server.url(&inbox),
        server.client_key.clone(),
        server.known_hosts.clone(),
        &outbox,
    ));
    let mut broken = seed::partner("broken", &[]);
    broken.sftp = Some(sftp(
        server.url(&broken_inbox),
        server.client_key.clone(),
        empty_known_hosts,
        &outbox,
    ));
    c.partners = vec![acme, broken];

    std::fs::write(inbox.join("inv.xml"), fixture("ubl-tc434-example2.xml")).unwrap();
    std::fs::write(broken_inbox.join("never.xml"), b"<x/>").unwrap();

    let stop = CancellationToken::new();
    let task = tokio::spawn(quai::run(c.clone(), Some(loopback().await), stop.clone()));
    let start = Instant::now();
    let report = loop {
        let found: Vec<_> = std::fs::read_dir(&outbox)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(".report.json"))
            .collect();
        if let Some(p) = found.first() {
            break p.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "no report in the SFTP outbox"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(json["flow"]["partner"], "acme");
    assert_eq!(json["flow"]["file"], "inv.xml");
    assert!(
        !inbox.join("inv.xml").exists(),
        "remote file removed after pickup"
    );
    // The CDAR statuses went the same way.
    let start = Instant::now();
    while !std::fs::read_dir(&outbox)
        .unwrap()
        .flatten()
        .any(|e| e.path().to_string_lossy().ends_with(".cdar.xml"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no CDAR in the SFTP outbox"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let spool = quai::open_spool(&c).await.unwrap();
    let flows = spool.list_flows(&Default::default()).await.unwrap();
    assert_eq!(flows.len(), 1, "{flows:?}");
    assert_eq!(flows[0].origin, quai_spool::Origin::Sftp);
    let run = spool
        .last_job_run("sftp-poll:broken")
        .await
        .unwrap()
        .expect("broken partner polled");
    assert_eq!(run.outcome.as_deref(), Some("failed"));
    assert!(
        run.detail.as_deref().unwrap_or("").starts_with("host_key:"),
        "{run:?}"
    );
    assert!(broken_inbox.join("never.xml").exists());
    stop.cancel();
    task.await.unwrap().unwrap();
}

/// The daemon's ops HTTP listener, bound by the test on a free port.
async fn loopback() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()
}
