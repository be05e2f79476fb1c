//! The SFTP outbox (`SftpOutbox`) against a real OpenSSH server (see
//! support/sshd.rs): uploaded under an unpredictable temporary name in the
//! outbox itself, renamed without replacing, idempotent on the name, and a
//! link the partner planted on its server (at the final name or at a
//! guessable temporary name) is never written through.

use quai_test_support::sshd;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quai_connectors::outbound::{is_temporary_name, Parcel, SftpOutbox};
use quai_connectors::sftp::SftpSource;
use sshd::Sshd;

const VICTIM: &[u8] = b"quai's own file, not the partner's to change\n";

struct Setup {
    sshd: Sshd,
    outbox: PathBuf,
    local: tempfile::TempDir,
    victim: PathBuf,
}

fn setup() -> Setup {
    let sshd = Sshd::start();
    let outbox = sshd.data.join("incoming");
    fs::create_dir_all(&outbox).unwrap();
    let local = tempfile::tempdir().unwrap();
    let victim = local.path().join("victim.txt");
    fs::write(&victim, VICTIM).unwrap();
    Setup {
        sshd,
        outbox,
        local,
        victim,
    }
}

fn sftp_outbox(s: &Setup) -> SftpOutbox {
    let mut src = SftpSource::from_url(
        "acme",
        &s.sshd.url(&s.sshd.data),
        Some(s.sshd.client_key.clone()),
        s.sshd.known_hosts.clone(),
    )
    .unwrap();
    src.connect_timeout = Duration::from_secs(5);
    src.io_timeout = Duration::from_secs(5);
    src.outbox = Some(s.outbox.to_string_lossy().into_owned());
    SftpOutbox::new(src).unwrap()
}

fn stage(s: &Setup, name: &str, bytes: &[u8]) -> Parcel {
    let staged = s
        .local
        .path()
        .join(uuid::Uuid::new_v4().simple().to_string());
    fs::write(&staged, bytes).unwrap();
    Parcel {
        name: name.into(),
        staged,
        media_type: "application/xml",
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

const REPORT: &[u8] = b"<?xml version=\"1.0\"?><IntegrationReport flow=\"42\"/>\n";

#[tokio::test]
async fn uploads_under_a_temporary_name_then_renames() {
    let s = setup();
    let o = sftp_outbox(&s);
    let body = b"<Report>accepted</Report>\n".repeat(1 << 20);
    let full = body.len() as u64;
    // Watch the outbox while uploading: a temporary of quai's shape must show
    // up, and the final name must never be seen incomplete.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, outbox) = (stop.clone(), s.outbox.clone());
        std::thread::spawn(move || {
            let (mut temps, mut partial_final) = (Vec::new(), false);
            while !stop.load(Ordering::SeqCst) {
                for e in fs::read_dir(&outbox).unwrap().flatten() {
                    let n = e.file_name().into_string().unwrap();
                    if n == "ack-0001.xml" {
                        if e.metadata().map(|m| m.len() != full).unwrap_or(false) {
                            partial_final = true;
                        }
                    } else if !temps.contains(&n) {
                        temps.push(n);
                    }
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            (temps, partial_final)
        })
    };
    let sent = o.send(&stage(&s, "ack-0001.xml", &body)).await.unwrap();
    stop.store(true, Ordering::SeqCst);
    let (temps, partial_final) = watcher.join().unwrap();
    assert_eq!(temps.len(), 1, "one temporary seen: {temps:?}");
    assert!(is_temporary_name(&temps[0]), "{temps:?}");
    assert!(!temps[0].contains("ack-0001"), "the name is not guessable");
    assert!(!partial_final, "the final name appears complete");
    let path = s.outbox.join("ack-0001.xml");
    assert_eq!(
        sent.destination,
        format!(
            "sftp://{}@127.0.0.1:{}{}",
            s.sshd.user,
            s.sshd.port,
            path.display()
        )
    );
    assert!(sent
        .receipt
        .as_deref()
        .unwrap()
        .contains(path.to_str().unwrap()));
    assert!(fs::read(&path).unwrap() == body);
    assert_eq!(names(&s.outbox), ["ack-0001.xml"], "no temporary left");
    assert!(o.describe().starts_with("sftp://"));
}

#[tokio::test]
async fn never_overwrites_and_the_same_bytes_are_ok() {
    let s = setup();
    let o = sftp_outbox(&s);
    o.send(&stage(&s, "a.xml", REPORT)).await.unwrap();
    // A resend (a crash before the spool recorded it): Ok, nothing new.
    o.send(&stage(&s, "a.xml", REPORT)).await.unwrap();
    assert_eq!(names(&s.outbox), ["a.xml"]);
    for other in [
        &b"<?xml version=\"1.0\"?><IntegrationReport flow=\"43\"/>\n"[..],
        b"v2",
    ] {
        let err = o.send(&stage(&s, "a.xml", other)).await.unwrap_err();
        assert!(!err.transient, "{err:?}");
        assert!(err.message.contains("never overwritten"), "{err:?}");
        assert!(err.message.contains("a.xml"), "{err:?}");
        assert_eq!(fs::read(s.outbox.join("a.xml")).unwrap(), REPORT);
    }
    assert_eq!(names(&s.outbox), ["a.xml"], "refused uploads leave nothing");
}

#[tokio::test]
async fn links_planted_on_the_server_are_not_written_through() {
    let s = setup();
    let o = sftp_outbox(&s);
    // At the final name.
    std::os::unix::fs::symlink(&s.victim, s.outbox.join("a.xml")).unwrap();
    let err = o.send(&stage(&s, "a.xml", REPORT)).await.unwrap_err();
    assert!(!err.transient, "{err:?}");
    assert!(err.message.contains("symbolic link"), "{err:?}");
    assert_eq!(fs::read(&s.victim).unwrap(), VICTIM);
    // At every temporary name a careless uploader would use (the previous
    // `.name.part` among them).
    let planted = [
        ".b.xml.part",
        ".b.xml.tmp",
        "b.xml.part",
        "b.xml.tmp",
        ".b.xml",
    ];
    for n in planted {
        std::os::unix::fs::symlink(&s.victim, s.outbox.join(n)).unwrap();
    }
    o.send(&stage(&s, "b.xml", REPORT)).await.unwrap();
    assert_eq!(
        fs::read(&s.victim).unwrap(),
        VICTIM,
        "the victim is unchanged"
    );
    assert_eq!(fs::read(s.outbox.join("b.xml")).unwrap(), REPORT);
    let mut expected: Vec<String> = planted.iter().map(|n| n.to_string()).collect();
    expected.extend(["a.xml".to_string(), "b.xml".to_string()]);
    expected.sort();
    assert_eq!(names(&s.outbox), expected);
    for n in planted {
        assert_eq!(fs::read_link(s.outbox.join(n)).unwrap(), s.victim);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads_of_one_name_deliver_once() {
    let s = setup();
    let o = Arc::new(sftp_outbox(&s));
    let body = b"<Report>accepted</Report>\n".repeat(40_000);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (o, p) = (o.clone(), stage(&s, "same.xml", &body));
        tasks.push(tokio::spawn(async move { o.send(&p).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(names(&s.outbox), ["same.xml"]);
    assert!(fs::read(s.outbox.join("same.xml")).unwrap() == body);
    // Different bytes: one wins whole, the others are refused.
    let mut tasks = Vec::new();
    let mut versions = Vec::new();
    for i in 0..4u8 {
        let mut b = body.clone();
        b.push(b'0' + i);
        versions.push(b.clone());
        let (o, p) = (o.clone(), stage(&s, "race.xml", &b));
        tasks.push(tokio::spawn(async move { o.send(&p).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert!(!e.transient, "{e:?}"),
        }
    }
    assert_eq!(ok, 1);
    let got = fs::read(s.outbox.join("race.xml")).unwrap();
    assert_eq!(versions.iter().filter(|v| **v == got).count(), 1);
    assert_eq!(names(&s.outbox), ["race.xml", "same.xml"]);
}

#[tokio::test]
async fn a_server_that_is_down_is_a_transient_failure_naming_it() {
    let mut s = setup();
    let o = sftp_outbox(&s);
    s.sshd.kill();
    let err = o.send(&stage(&s, "a.xml", REPORT)).await.unwrap_err();
    assert!(err.transient, "{err:?}");
    assert!(err.destination.starts_with("sftp://"), "{err:?}");
    assert!(
        err.message.contains(&format!("127.0.0.1:{}", s.sshd.port)),
        "{err:?}"
    );
    s.sshd.restart();
    o.send(&stage(&s, "a.xml", REPORT)).await.unwrap();
    assert_eq!(fs::read(s.outbox.join("a.xml")).unwrap(), REPORT);
}

#[tokio::test]
async fn unsafe_names_are_refused_before_connecting() {
    let s = setup();
    let o = sftp_outbox(&s);
    for name in ["../escape.xml", "a/b.xml", "..", "", ".quai-tmp-x.part"] {
        let mut p = stage(&s, "x", REPORT);
        p.name = name.into();
        let err = o.send(&p).await.unwrap_err();
        assert!(!err.transient, "{name:?}: {err:?}");
    }
    assert!(names(&s.outbox).is_empty());
    assert!(!s.sshd.data.join("escape.xml").exists());
}
