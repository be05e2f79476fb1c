//! Reconciliation: each kind of discrepancy is injected and must be reported;
//! `quai reconcile` exits 0 when everything adds up and 1 otherwise, and
//! writes JSON, CSV and HTML reports.

mod support;
use support::seed;

use std::process::Command;
use std::time::{Duration, SystemTime};

use chrono::Utc;
use quai::jobs::reconcile::{self, Thresholds};
use quai_spool::{NewFlow, Origin};
use seed::{invoice, reason, seed_flow, seed_flow_with, seed_unfinished};

fn strict() -> Thresholds {
    Thresholds {
        stuck_after: chrono::Duration::zero(),
        dropzone_grace: chrono::Duration::minutes(15),
        ack_grace: chrono::Duration::zero(),
    }
}

fn period() -> (chrono::DateTime<Utc>, chrono::DateTime<Utc>) {
    let now = Utc::now();
    (
        now - chrono::Duration::hours(1),
        now + chrono::Duration::minutes(1),
    )
}

/// Everything delivered and notified: balanced.
async fn balanced_daemon(home: &std::path::Path) -> std::sync::Arc<quai::App> {
    let mut c = seed::config_at(home);
    c.partners = vec![seed::partner("acme", &["edi@acme.example"])];
    let d = seed::daemon(c).await;
    let id = seed_flow(
        &d.spool,
        "acme",
        "ok.zip",
        vec![
            invoice(0, "ok.zip/a.xml", Some("A-1"), None, Some("10"), vec![]),
            invoice(
                1,
                "ok.zip/b.xml",
                Some("A-2"),
                None,
                Some("11"),
                vec![reason("BR-01", "BT-24", "x")],
            ),
        ],
    )
    .await;
    for a in d.spool.acks_of_flow(id).await.unwrap() {
        d.spool.ack_delivered(a.id).await.unwrap();
    }
    quai::jobs::digest::run(&d).await.unwrap();
    d
}

fn old_file(path: &std::path::Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
}

fn kinds(r: &reconcile::ReconcileReport) -> Vec<String> {
    r.discrepancies.iter().map(|d| d.kind.clone()).collect()
}

#[tokio::test]
async fn balanced_period_has_no_discrepancy() {
    let home = tempfile::tempdir().unwrap();
    let d = balanced_daemon(home.path()).await;
    let (from, to) = period();
    let r = reconcile::reconcile(&d, from, to, strict()).await.unwrap();
    assert!(r.balanced, "{:?}", r.discrepancies);
    let acme = r.partners.iter().find(|p| p.partner == "acme").unwrap();
    assert_eq!(acme.flows_registered, 1);
    assert_eq!(acme.flows_processed, 1);
    assert_eq!(acme.files_seen.get("dropzone"), Some(&1));
    assert_eq!((acme.invoices_accepted, acme.invoices_rejected), (1, 1));
    assert_eq!((acme.rejects_notified, acme.rejects_pending), (1, 0));
    assert_eq!((acme.acks_generated, acme.acks_delivered), (1, 1));
}

#[tokio::test]
async fn every_kind_of_discrepancy_is_reported() {
    let home = tempfile::tempdir().unwrap();
    let d = balanced_daemon(home.path()).await;
    let spool = &d.spool;

    // A file left in the drop zone that intake never took.
    let inbox = d.config().inbound_root.clone().unwrap().join("acme");
    std::fs::create_dir_all(&inbox).unwrap();
    old_file(&inbox.join("forgotten.xml"), b"<Invoice/>");
    // A partial upload and a young file are not flagged.
    old_file(&inbox.join(".upload.part"), b"x");
    std::fs::write(inbox.join("just-arrived.xml"), b"<y/>").unwrap();
    // A flow finished without any integration report.
    let no_report = seed_flow_with(spool, "acme", "silent.xml", Origin::Sftp, vec![], false).await;
    // A flow whose report is never delivered.
    let undelivered = seed_flow(spool, "acme", "pending.xml", vec![]).await;
    // A rejected invoice whose outbox row vanished (counts do not add up).
    let lost = seed_flow(
        spool,
        "acme",
        "lost.xml",
        vec![invoice(
            0,
            "lost.xml",
            Some("L"),
            None,
            None,
            vec![reason("BR-02", "BT-1", "x")],
        )],
    )
    .await;
    let db = home.path().join("spool.db");
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3; c=sqlite3.connect({:?}); c.execute('DELETE FROM notifications WHERE flow_id={lost}'); c.commit()",
            db.display().to_string()
        ))
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Still processing after the threshold: stuck.
    seed_unfinished(spool, "globex", "in-flight.xml", true).await;
    // A file whose bytes were registered but which was not removed.
    let bytes = b"<Invoice>registered</Invoice>";
    old_file(&inbox.join("registered.xml"), bytes);
    use sha2::Digest;
    spool
        .register_flow(&NewFlow {
            partner: "acme".into(),
            origin: Origin::Dropzone,
            original_name: "registered.xml".into(),
            size: bytes.len() as i64,
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
            as2_message_id: None,
        })
        .await
        .unwrap();
    // That flow stays `received`: stuck too (threshold zero).

    let (from, to) = period();
    let r = reconcile::reconcile(&d, from, to, strict()).await.unwrap();
    assert!(!r.balanced);
    let k = kinds(&r);
    for expected in [
        "never_ingested",
        "left_in_dropzone",
        "stuck_flow",
        "missing_report",
        "undelivered_ack",
        "rejects_unaccounted",
    ] {
        assert!(
            k.iter().any(|x| x == expected),
            "{expected} missing from {k:?}"
        );
    }
    let find = |kind: &str| {
        r.discrepancies
            .iter()
            .filter(|x| x.kind == kind)
            .cloned()
            .collect::<Vec<_>>()
    };
    let never = find("never_ingested");
    assert_eq!(never.len(), 1, "{never:?}");
    assert!(never[0].subject.ends_with("acme/forgotten.xml"));
    assert!(find("left_in_dropzone")[0]
        .subject
        .ends_with("registered.xml"));
    assert_eq!(
        find("missing_report")[0].subject,
        format!("flow {no_report}")
    );
    assert!(find("undelivered_ack")
        .iter()
        .any(|x| x.detail.contains(&format!("of flow {undelivered}"))));
    let stuck = find("stuck_flow");
    assert_eq!(stuck.len(), 2, "{stuck:?}");
    assert!(stuck
        .iter()
        .any(|s| s.partner == "globex" && s.detail.contains("processing")));
    let unacc = find("rejects_unaccounted");
    assert_eq!(
        unacc[0].detail,
        "2 rejected, but 1 notified + 0 pending in the outbox"
    );
    let acme = r.partners.iter().find(|p| p.partner == "acme").unwrap();
    assert_eq!(acme.files_waiting, 2);
    assert_eq!(acme.files_seen.get("sftp"), Some(&1));

    // Files: JSON, CSV, HTML.
    let mut r = r;
    reconcile::publish(&d, &mut r).await.unwrap();
    assert_eq!(r.files.len(), 3);
    let csv = std::fs::read_to_string(&r.files[1]).unwrap();
    assert!(csv.starts_with("section,partner,key,value,detail\r\n"));
    assert!(csv.contains("count,acme,flows_registered,5,\r\n"), "{csv}");
    assert!(csv.contains("discrepancy,acme,never_ingested,"));
    let html = std::fs::read_to_string(&r.files[2]).unwrap();
    assert!(
        html.contains("6 discrepancies") || html.contains("discrepancies</h2>"),
        "{html}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&r.files[0]).unwrap()).unwrap();
    assert_eq!(json["balanced"], false);
}

#[tokio::test]
async fn reconciliation_mails_operations() {
    let home = tempfile::tempdir().unwrap();
    let mut c = seed::config_at(home.path());
    c.operations_mail = vec!["ops@platform.example".into()];
    let d = seed::daemon(c).await;
    seed_unfinished(&d.spool, "acme", "x.xml", false).await;
    let (from, to) = period();
    let mut r = reconcile::reconcile(&d, from, to, strict()).await.unwrap();
    reconcile::publish(&d, &mut r).await.unwrap();
    assert_eq!(r.mailed, Some(true));
    let mail_dir = home.path().join("mail");
    let mails: Vec<_> = std::fs::read_dir(&mail_dir).unwrap().flatten().collect();
    assert_eq!(mails.len(), 1);
    let text = std::fs::read_to_string(mails[0].path())
        .unwrap()
        .replace("\r\n ", " ");
    assert!(text.contains("Subject: quai: reconciliation"), "{text}");
    assert!(text.contains("1 discrepancy"), "{text}");
    assert!(text.contains("To: ops@platform.example"), "{text}");
}

#[tokio::test]
async fn cli_exit_code_follows_the_balance() {
    let home = tempfile::tempdir().unwrap();
    let d = balanced_daemon(home.path()).await;
    drop(d);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_quai"))
            .args(args)
            .env("QUAI_HOME", home.path())
            .env_remove("QUAI_CONFIG")
            .output()
            .expect("quai binary")
    };
    let out = run(&["reconcile", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["balanced"], true);
    assert_eq!(json["files"].as_array().unwrap().len(), 3);

    let inbox = home.path().join("inbound").join("acme");
    std::fs::create_dir_all(&inbox).unwrap();
    old_file(&inbox.join("forgotten.xml"), b"<x/>");
    let today = Utc::now().date_naive().to_string();
    let out = run(&["reconcile", "--from", &today, "--to", &today]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[never_ingested] acme"), "{text}");
    assert!(text.contains("report: "), "{text}");

    let out = run(&["reconcile", "--from", "someday"]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn purge_keeps_unfinished_work_and_deletes_raw_files() {
    let home = tempfile::tempdir().unwrap();
    let mut c = seed::config_at(home.path());
    c.retention_days = 0;
    let d = seed::daemon(c).await;
    let done = seed_flow(&d.spool, "acme", "done.xml", vec![]).await;
    for a in d.spool.acks_of_flow(done).await.unwrap() {
        d.spool.ack_delivered(a.id).await.unwrap();
    }
    let sha = d.spool.flow(done).await.unwrap().sha256;
    let raw = quai_connectors::landing::stored_path(&d.config().store, &sha);
    std::fs::create_dir_all(raw.parent().unwrap()).unwrap();
    std::fs::write(&raw, b"raw").unwrap();
    let pending = seed_flow(&d.spool, "acme", "pending.xml", vec![]).await;
    let unfinished = seed_unfinished(&d.spool, "acme", "busy.xml", true).await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    let s = quai::jobs::purge::run(&d).await.unwrap();
    assert_eq!(s.flows, 1, "{s:?}");
    assert_eq!(s.raw_deleted, 1);
    assert!(!raw.exists());
    assert!(d.spool.flow(done).await.is_err());
    assert!(d.spool.flow(pending).await.is_ok(), "undelivered ack: kept");
    assert!(d.spool.flow(unfinished).await.is_ok(), "unfinished: kept");
}
