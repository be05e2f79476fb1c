//! SFTP polling under attack, against a real OpenSSH server (see
//! support/sshd.rs): remote links (to /etc/passwd, to a file beside them),
//! folders and FIFOs in the partner's folder are skipped with `lstat`
//! semantics, refused once (log + `FlowSink::refused`), never read, never
//! removed; the regular files beside them are taken.

use quai_test_support::sshd;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use quai_connectors::sftp::{PollState, SftpSource, SkipReason};
use quai_connectors::{Accepted, Channel, FlowSink, LandedFlow, Refusal, RefusalReason, SinkError};
use sshd::Sshd;

#[derive(Default)]
struct Recorder {
    flows: Mutex<Vec<(LandedFlow, Vec<u8>)>>,
    refused: Mutex<Vec<Refusal>>,
}

impl FlowSink for Recorder {
    async fn accept(&self, flow: LandedFlow) -> Result<Accepted, SinkError> {
        let bytes = fs::read(&flow.stored_path).map_err(|e| SinkError(e.to_string()))?;
        let mut f = self.flows.lock().unwrap();
        f.push((flow, bytes));
        Ok(Accepted::New {
            flow_id: f.len() as i64,
        })
    }

    async fn refused(&self, refusal: Refusal) {
        self.refused.lock().unwrap().push(refusal);
    }
}

fn source(sshd: &Sshd, dir: &Path) -> SftpSource {
    let mut s = SftpSource::from_url(
        "acme",
        &sshd.url(dir),
        Some(sshd.client_key.clone()),
        sshd.known_hosts.clone(),
    )
    .unwrap();
    s.min_age = Duration::ZERO;
    s.settle = Duration::from_millis(300);
    s.connect_timeout = Duration::from_secs(5);
    s.io_timeout = Duration::from_secs(5);
    s
}

#[tokio::test]
async fn remote_links_folders_and_fifos_are_skipped_and_refused_once() {
    let sshd = Sshd::start();
    let dir = sshd.data.join("outgoing");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("inv.xml"), b"<Invoice>ok</Invoice>").unwrap();
    symlink("/etc/passwd", dir.join("passwd.xml")).unwrap();
    symlink(dir.join("inv.xml"), dir.join("alias.xml")).unwrap();
    fs::create_dir(dir.join("folder.xml")).unwrap();
    let fifo = std::ffi::CString::new(dir.join("pipe.xml").as_os_str().as_bytes()).unwrap();
    // SAFETY: valid path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);

    let store = tempfile::tempdir().unwrap();
    let sink = Recorder::default();
    let src = source(&sshd, &dir);
    let mut state = PollState::new();
    let mut reports = Vec::new();
    for _ in 0..3 {
        reports.push(
            src.poll_once(&sink, store.path(), &mut state)
                .await
                .unwrap(),
        );
    }
    // The regular file came in, once; nothing else was read.
    let flows = sink.flows.lock().unwrap().clone();
    assert_eq!(flows.len(), 1, "{flows:?}");
    assert_eq!(flows[0].0.original_name, "inv.xml");
    assert_eq!(flows[0].1, b"<Invoice>ok</Invoice>");
    for r in &reports {
        for name in ["passwd.xml", "alias.xml", "folder.xml", "pipe.xml"] {
            assert!(
                r.skipped
                    .contains(&(name.to_string(), SkipReason::NotAFile)),
                "{name} skipped: {r:?}"
            );
        }
        assert!(r.failed.is_empty(), "{r:?}");
    }
    // Refused once each, in three polls.
    let mut refused = sink.refused.lock().unwrap().clone();
    refused.sort_by(|a, b| a.name.cmp(&b.name));
    let got: Vec<(&str, RefusalReason)> = refused
        .iter()
        .map(|r| (r.name.as_str(), r.reason))
        .collect();
    assert_eq!(
        got,
        vec![
            ("alias.xml", RefusalReason::Link),
            ("folder.xml", RefusalReason::Directory),
            ("passwd.xml", RefusalReason::Link),
            ("pipe.xml", RefusalReason::Fifo),
        ]
    );
    for r in &refused {
        assert_eq!(r.partner.as_deref(), Some("acme"));
        assert_eq!(r.channel, Channel::Sftp);
        assert_eq!(r.moved_to, None);
    }
    // Left where they were; the link's target untouched.
    assert_eq!(
        fs::read_link(dir.join("passwd.xml")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert!(dir.join("folder.xml").is_dir());
    assert!(
        !dir.join("inv.xml").exists(),
        "the regular file was removed after commit"
    );

    // Replaced by a regular file of the same name: taken.
    fs::remove_file(dir.join("passwd.xml")).unwrap();
    fs::write(dir.join("passwd.xml"), b"<Invoice>now a file</Invoice>").unwrap();
    for _ in 0..2 {
        src.poll_once(&sink, store.path(), &mut state)
            .await
            .unwrap();
    }
    let names: Vec<String> = sink
        .flows
        .lock()
        .unwrap()
        .iter()
        .map(|(f, _)| f.original_name.clone())
        .collect();
    assert_eq!(names, vec!["inv.xml", "passwd.xml"]);
    assert_eq!(sink.refused.lock().unwrap().len(), 4);
}
