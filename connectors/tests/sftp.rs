//! SFTP connector against a real OpenSSH server (see support/sshd.rs).

use quai_test_support::sshd;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quai_connectors::sftp::{AfterPickup, PollState, SftpSource, SkipReason};
use quai_connectors::{Accepted, Channel, FlowSink, LandedFlow, SinkError};
use sshd::Sshd;

/// Records every accepted flow with the bytes read back from the store;
/// answers Duplicate for a hash seen before; can be told to fail.
#[derive(Default)]
struct RecordingSink {
    flows: Mutex<Vec<(LandedFlow, Vec<u8>)>>,
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
        let mut ids = self.ids.lock().unwrap();
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let accepted = match ids.get(&flow.sha256) {
            Some(&original) => Accepted::Duplicate {
                flow_id: id,
                original,
            },
            None => {
                ids.insert(flow.sha256.clone(), id);
                Accepted::New { flow_id: id }
            }
        };
        self.flows.lock().unwrap().push((flow, bytes));
        Ok(accepted)
    }
}

impl RecordingSink {
    fn count(&self) -> usize {
        self.flows.lock().unwrap().len()
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

fn inbox(sshd: &Sshd) -> PathBuf {
    let d = sshd.data.join("outgoing");
    fs::create_dir_all(&d).unwrap();
    d
}

/// Files in the store other than the temporary ones, and the temporaries.
fn store_files(store: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut done, mut temp) = (Vec::new(), Vec::new());
    let mut stack = vec![store.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if e.file_name().to_string_lossy().starts_with(".landing-") {
                temp.push(p);
            } else {
                done.push(p);
            }
        }
    }
    (done, temp)
}

#[tokio::test]
async fn pickup_then_removal_and_duplicate() {
    let sshd = Sshd::start();
    let dir = inbox(&sshd);
    let body = b"<Invoice>pickup test \xc3\xa9</Invoice>\n".repeat(1000);
    fs::write(dir.join("inv-1.xml"), &body).unwrap();
    let store = tempfile::tempdir().unwrap();
    let sink = RecordingSink::default();
    let src = source(&sshd, &dir);
    let mut state = PollState::new();

    let report = src
        .poll_once(&sink, store.path(), &mut state)
        .await
        .unwrap();
    assert_eq!(report.picked_up.len(), 1, "{report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    let flows = sink.flows.lock().unwrap().clone();
    assert_eq!(flows.len(), 1);
    let (flow, bytes) = &flows[0];
    assert_eq!(bytes, &body, "sink must receive the exact bytes");
    assert_eq!(flow.original_name, "inv-1.xml");
    assert_eq!(flow.partner, "acme");
    assert_eq!(flow.channel, Channel::Sftp);
    assert_eq!(flow.size, body.len() as u64);
    assert!(flow.complete);
    assert!(
        !dir.join("inv-1.xml").exists(),
        "remote file must be deleted"
    );
    assert!(store_files(store.path()).1.is_empty(), "no temporary left");

    // The same bytes again: recorded as a duplicate, and still removed.
    fs::write(dir.join("inv-1-again.xml"), &body).unwrap();
    let report = src
        .poll_once(&sink, store.path(), &mut state)
        .await
        .unwrap();
    assert_eq!(report.picked_up.len(), 1, "{report:?}");
    assert!(matches!(
        report.picked_up[0].accepted,
        Accepted::Duplicate { .. }
    ));
    assert!(!dir.join("inv-1-again.xml").exists());

    // Nothing left: an empty poll.
    let report = src
        .poll_once(&sink, store.path(), &mut state)
        .await
        .unwrap();
    assert_eq!((report.listed, report.picked_up.len()), (0, 0));
    assert_eq!(sink.count(), 2);
}

#[tokio::test]
async fn archive_move_after_pickup() {
    let sshd = Sshd::start();
    let dir = inbox(&sshd);
    let done = sshd.data.join("done");
    fs::create_dir_all(&done).unwrap();
    fs::write(dir.join("a.xml"), b"first").unwrap();
    let mut src = source(&sshd, &dir);
    src.after_pickup = format!("move:{}", done.display())
        .parse::<AfterPickup>()
        .unwrap();
    let store = tempfile::tempdir().unwrap();
    let sink = RecordingSink::default();
    let mut state = PollState::new();

    let report = src
        .poll_once(&sink, store.path(), &mut state)
        .await
        .unwrap();
    assert_eq!(report.picked_up.len(), 1, "{report:?}");
    assert!(!dir.join("a.xml").exists());
    assert_eq!(fs::read(done.join("a.xml")).unwrap(), b"first");
    assert_eq!(
        report.picked_up[0]
            .after_pickup
            .as_ref()
            .unwrap()
            .as_deref(),
        Some(done.join("a.xml").to_str().unwrap())
    );

    // Same name again: the archived copy is kept, the new one gets a suffix.
    fs::write(dir.join("a.xml"), b"second").unwrap();
    let report = src
        .poll_once(&sink, store.path(), &mut state)
        .await
        .unwrap();
    assert_eq!(report.picked_up.len(), 1, "{report:?}");
    assert!(!dir.join("a.xml").exists());
    assert_eq!(fs::read(done.join("a.xml")).unwrap(), b"first");
    let archived: Vec<_> = fs::read_dir(&done).unwrap().flatten().collect();
    assert_eq!(archived.len(), 2);
    let bodies: Vec<Vec<u8>> = sink
        .flows
        .lock()
        .unwrap()
        .iter()
        .map(|f| f.1.clone())
        .collect();
    assert_eq!(bodies, vec![b"first".to_vec(), b"second".to_vec()]);
}

#[tokio::test]
async fn partial_uploads_are_not_taken() {
    let sshd = Sshd::start();
    let dir = inbox(&sshd);
    for name in [".hidden.xml", "b.xml.part", "c.tmp", "d.filepart"] {
        fs::write(dir.join(name), b"partial").unwrap();
    }
    fs::create_dir_all(dir.join("subdir")).unwrap();
    let mut src = source(&sshd, &dir);
    src.settle = Duration::ZERO; // one listing per poll: we drive the timing
    let store = tempfile::tempdir().unwrap();
    let sink = RecordingSink::default();
    let mut state = PollState::new();

    // A growing upload: seen for the first time, then bigger, then stable.
    let growing = dir.join("growing.xml");
    fs::write(&growing, b"<a>").unwrap();
    let r = src
        .poll_once(&sink, store.path(), &mut state)
        .await
        .unwrap();
    assert!(r.picked_up.is_empty(), "{r:?}");
    assert!(r
        .skipped
        .contains(&("growing.xml".into(), SkipReason::Unstable)));
    for name in [".hidden.xml", "b.xml.part", "c.tmp", "d.filepart"] {
        assert!(
            r.skipped.contains(&(name.into(), SkipReason::PartialName)),
            "{name}"
        );
    }

    fs::write(&growing, b"<a>more</a>").unwrap();
    let r = src
        .poll_once(&sink, store.path(), &mut state)
        .await
        .unwrap();
    assert!(r.picked_up.is_empty(), "size changed: not yet ({r:?})");
    assert!(growing.exists());

    let r = src
        .poll_once(&sink, store.path(), &mut state)
        .await
        .unwrap();
    assert_eq!(r.picked_up.len(), 1, "{r:?}");
    assert_eq!(r.picked_up[0].name, "growing.xml");
    assert_eq!(sink.flows.lock().unwrap()[0].1, b"<a>more</a>");
    assert!(!growing.exists());

    // The upload-then-rename convention: the .part file is taken only
    // once renamed.
    fs::rename(dir.join("b.xml.part"), dir.join("b.xml")).unwrap();
    let r = src
        .poll_once(&sink, store.path(), &mut state)
        .await
        .unwrap();
    assert!(r.picked_up.is_empty());
    let r = src
        .poll_once(&sink, store.path(), &mut state)
        .await
        .unwrap();
    assert_eq!(r.picked_up.len(), 1, "{r:?}");
    for name in [".hidden.xml", "c.tmp", "d.filepart", "subdir"] {
        assert!(dir.join(name).exists(), "{name} must stay");
    }
    assert_eq!(sink.count(), 2);
}

#[tokio::test]
async fn min_age_holds_fresh_files() {
    let sshd = Sshd::start();
    let dir = inbox(&sshd);
    fs::write(dir.join("fresh.xml"), b"fresh").unwrap();
    fs::write(dir.join("old.xml"), b"old").unwrap();
    let st = std::process::Command::new("touch")
        .args(["-d", "2 hours ago"])
        .arg(dir.join("old.xml"))
        .status()
        .unwrap();
    assert!(st.success());
    let mut src = source(&sshd, &dir);
    src.min_age = Duration::from_secs(3600);
    let store = tempfile::tempdir().unwrap();
    let sink = RecordingSink::default();
    let mut state = PollState::new();
    let r = src
        .poll_once(&sink, store.path(), &mut state)
        .await
        .unwrap();
    let names: Vec<_> = r.picked_up.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["old.xml"], "{r:?}");
    assert!(r
        .skipped
        .contains(&("fresh.xml".into(), SkipReason::TooYoung)));
    assert!(dir.join("fresh.xml").exists());
}

#[tokio::test]
async fn sink_failure_leaves_remote_file() {
    let sshd = Sshd::start();
    let dir = inbox(&sshd);
    fs::write(dir.join("x.xml"), b"keep me").unwrap();
    fs::write(dir.join("y.xml"), b"and me").unwrap();
    let src = source(&sshd, &dir);
    let store = tempfile::tempdir().unwrap();
    let sink = RecordingSink::default();
    sink.fail.store(true, Ordering::SeqCst);
    let mut state = PollState::new();

    let r = src
        .poll_once(&sink, store.path(), &mut state)
        .await
        .unwrap();
    assert!(r.picked_up.is_empty());
    assert_eq!(
        r.failed.len(),
        2,
        "both files tried, neither aborts the other: {r:?}"
    );
    assert!(dir.join("x.xml").exists() && dir.join("y.xml").exists());

    sink.fail.store(false, Ordering::SeqCst);
    let r = src
        .poll_once(&sink, store.path(), &mut state)
        .await
        .unwrap();
    assert_eq!(r.picked_up.len(), 2, "{r:?}");
    assert!(!dir.join("x.xml").exists() && !dir.join("y.xml").exists());
    assert_eq!(sink.count(), 2);
}

#[tokio::test]
async fn wrong_host_key_is_refused() {
    let sshd = Sshd::start();
    let dir = inbox(&sshd);
    fs::write(dir.join("secret.xml"), b"not for impostors").unwrap();
    // known_hosts records another ed25519 key for this host and port.
    let other = tempfile::tempdir().unwrap();
    sshd::keygen("ed25519", &other.path().join("k"));
    let other_pub = fs::read_to_string(other.path().join("k.pub")).unwrap();
    let kh = other.path().join("known_hosts");
    fs::write(&kh, format!("[127.0.0.1]:{} {}", sshd.port, other_pub)).unwrap();
    let mut src = source(&sshd, &dir);
    src.known_hosts = kh.clone();
    src.trust_on_first_use = true; // never overrides a CHANGED key
    let store = tempfile::tempdir().unwrap();
    let sink = RecordingSink::default();

    let err = src
        .poll_once(&sink, store.path(), &mut PollState::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "host_key", "{err}");
    let msg = err.to_string();
    let expected_fp = fingerprint_of(&sshd.dir.path().join("ssh_host_ed25519_key.pub"));
    assert!(
        msg.contains(&expected_fp),
        "{msg} should name {expected_fp}"
    );
    assert!(msg.contains("CHANGED"), "{msg}");
    assert_eq!(sink.count(), 0);
    assert!(dir.join("secret.xml").exists());
    assert_eq!(store_files(store.path()), (vec![], vec![]));
    assert_eq!(
        fs::read_to_string(&kh).unwrap(),
        format!("[127.0.0.1]:{} {}", sshd.port, other_pub)
    );
}

#[tokio::test]
async fn unknown_host_refused_without_tofu() {
    let sshd = Sshd::start();
    let dir = inbox(&sshd);
    fs::write(dir.join("f.xml"), b"data").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let kh = tmp.path().join("known_hosts");
    // Only a key for the default port: [127.0.0.1]:port is still unknown.
    fs::write(&kh, format!("127.0.0.1 {}\n", sshd.host_key_pub)).unwrap();
    let mut src = source(&sshd, &dir);
    src.known_hosts = kh.clone();
    let store = tempfile::tempdir().unwrap();
    let sink = RecordingSink::default();

    let err = src
        .poll_once(&sink, store.path(), &mut PollState::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "host_key", "{err}");
    assert!(err.to_string().contains("unknown host"), "{err}");
    assert!(err.to_string().contains("SHA256:"), "{err}");
    assert_eq!(sink.count(), 0);
    assert!(dir.join("f.xml").exists());

    // A missing known_hosts file is refused too.
    src.known_hosts = tmp.path().join("absent");
    let err = src
        .poll_once(&sink, store.path(), &mut PollState::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "host_key", "{err}");

    // With trust on first use the key is recorded, then checked strictly.
    src.known_hosts = kh.clone();
    src.trust_on_first_use = true;
    let r = src
        .poll_once(&sink, store.path(), &mut PollState::new())
        .await
        .unwrap();
    assert_eq!(r.picked_up.len(), 1);
    let recorded = fs::read_to_string(&kh).unwrap();
    let key_b64 = sshd.host_key_pub.split_whitespace().nth(1).unwrap();
    assert!(
        recorded.contains(&format!("[127.0.0.1]:{} ssh-ed25519 {key_b64}", sshd.port)),
        "{recorded}"
    );
    src.trust_on_first_use = false;
    src.poll_once(&sink, store.path(), &mut PollState::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn recorded_key_type_steers_the_handshake() {
    // The server has ed25519 and ECDSA keys; libssh2 would pick ed25519 by
    // default. known_hosts records only the ECDSA key: the client must ask
    // for that type and connect, not call the host unknown.
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    let kh = tmp.path().join("known_hosts");
    fs::write(
        &kh,
        format!("[127.0.0.1]:{} {}\n", sshd.port, sshd.host_key_ecdsa_pub),
    )
    .unwrap();
    let mut src = source(&sshd, &sshd.data);
    src.known_hosts = kh;
    let r = src
        .poll_once(&RecordingSink::default(), tmp.path(), &mut PollState::new())
        .await
        .unwrap();
    assert!(r.picked_up.is_empty());
}

#[tokio::test]
async fn hashed_known_hosts_from_ssh_keygen() {
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    let kh = tmp.path().join("known_hosts");
    fs::copy(&sshd.known_hosts, &kh).unwrap();
    let out = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&kh)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hashed = fs::read_to_string(&kh).unwrap();
    assert!(
        hashed.starts_with("|1|") && !hashed.contains("127.0.0.1"),
        "{hashed}"
    );
    let mut src = source(&sshd, &sshd.data);
    src.known_hosts = kh;
    src.poll_once(&RecordingSink::default(), tmp.path(), &mut PollState::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn downloads_wait_for_a_transfer_slot() {
    let sshd = Sshd::start();
    let dir = inbox(&sshd);
    fs::write(dir.join("f.xml"), b"slot").unwrap();
    let slots = Arc::new(tokio::sync::Semaphore::new(0));
    let mut src = source(&sshd, &dir);
    src.transfer_slots = Some(slots.clone());
    let store = tempfile::tempdir().unwrap();
    let sink = RecordingSink::default();
    let mut state = PollState::new();
    {
        let poll = src.poll_once(&sink, store.path(), &mut state);
        tokio::pin!(poll);
        // No slot: the poll lists but cannot download.
        assert!(tokio::time::timeout(Duration::from_millis(1500), &mut poll)
            .await
            .is_err());
        assert_eq!(sink.count(), 0);
        assert!(dir.join("f.xml").exists());
        slots.add_permits(1);
        let r = poll.await.unwrap();
        assert_eq!(r.picked_up.len(), 1);
    }
    assert_eq!(slots.available_permits(), 1, "the slot is given back");
}

#[tokio::test]
async fn wrong_client_key_is_an_auth_error() {
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    sshd::keygen("ed25519", &tmp.path().join("stranger"));
    let mut src = source(&sshd, &sshd.data);
    src.private_key = Some(tmp.path().join("stranger"));
    let err = src
        .poll_once(&RecordingSink::default(), tmp.path(), &mut PollState::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "auth", "{err}");
}

#[tokio::test]
async fn connection_failures_are_typed_and_bounded() {
    // Nobody listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    let mut src = SftpSource::from_url(
        "p",
        &format!("sftp://u@127.0.0.1:{port}/in"),
        None,
        tmp.path().join("kh"),
    )
    .unwrap();
    let err = src
        .poll_once(&RecordingSink::default(), tmp.path(), &mut PollState::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "connect", "{err}");

    // A server that accepts and then says nothing: bounded by the timeout.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hung.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        let conn = hung.accept();
        std::thread::sleep(Duration::from_secs(4));
        drop(conn);
    });
    src.port = port;
    src.connect_timeout = Duration::from_millis(800);
    let t = Instant::now();
    let err = src
        .poll_once(&RecordingSink::default(), tmp.path(), &mut PollState::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "connect", "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    holder.join().unwrap();
}

#[tokio::test]
async fn server_killed_mid_transfer_then_ingested_exactly_once() {
    let sshd = Sshd::start();
    let dir = inbox(&sshd);
    // Non-repeating bytes, so a truncated or spliced copy cannot pass.
    let body = noise(24 << 20);
    fs::write(dir.join("big.xml"), &body).unwrap();
    let src = source(&sshd, &dir);
    let store = tempfile::tempdir().unwrap();
    let sink = RecordingSink::default();
    let mut state = PollState::new();

    // Kill the server as soon as the download is under way.
    let store_path = store.path().to_path_buf();
    let sshd = Arc::new(Mutex::new(sshd));
    let killer = {
        let sshd = sshd.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                let (_, temp) = store_files(&store_path);
                let bytes: u64 = temp
                    .iter()
                    .filter_map(|p| fs::metadata(p).ok())
                    .map(|m| m.len())
                    .sum();
                if bytes >= 1 << 20 {
                    sshd.lock().unwrap().kill();
                    return true;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            false
        })
    };
    let result = src.poll_once(&sink, store.path(), &mut state).await;
    assert!(killer.join().unwrap(), "the download never started");
    let err = result.expect_err("the poll must fail when the server dies");
    assert_eq!(err.kind(), "io", "{err}");
    assert_eq!(sink.count(), 0, "nothing handed to the sink");
    assert_eq!(
        store_files(store.path()),
        (vec![], vec![]),
        "no partial file kept"
    );
    assert!(dir.join("big.xml").exists(), "the remote file stays");

    sshd.lock().unwrap().restart();
    let r = src
        .poll_once(&sink, store.path(), &mut state)
        .await
        .unwrap();
    assert_eq!(r.picked_up.len(), 1, "{r:?}");
    let r2 = src
        .poll_once(&sink, store.path(), &mut state)
        .await
        .unwrap();
    assert!(r2.picked_up.is_empty());
    let flows = sink.flows.lock().unwrap();
    assert_eq!(flows.len(), 1, "ingested exactly once");
    assert!(flows[0].1 == body, "the exact bytes");
    assert!(!dir.join("big.xml").exists());
}

fn noise(len: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(len + 8);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while body.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        body.extend_from_slice(&x.to_le_bytes());
    }
    body.truncate(len);
    body
}

fn fingerprint_of(pubkey: &Path) -> String {
    let out = std::process::Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(pubkey)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn hung_server_mid_transfer_is_bounded_by_io_timeout() {
    let sshd = Sshd::start();
    let dir = inbox(&sshd);
    let body = noise(16 << 20);
    fs::write(dir.join("slow.xml"), &body).unwrap();
    let mut src = source(&sshd, &dir);
    src.io_timeout = Duration::from_secs(1);
    let store = tempfile::tempdir().unwrap();
    let sink = RecordingSink::default();
    let mut state = PollState::new();

    let sshd = Arc::new(Mutex::new(sshd));
    let store_path = store.path().to_path_buf();
    let freezer = {
        let sshd = sshd.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                let (_, temp) = store_files(&store_path);
                if temp
                    .iter()
                    .filter_map(|p| fs::metadata(p).ok())
                    .any(|m| m.len() >= 1 << 20)
                {
                    sshd.lock().unwrap().signal_all("STOP");
                    return Some(Instant::now());
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            None
        })
    };
    let result = src.poll_once(&sink, store.path(), &mut state).await;
    let frozen_at = freezer.join().unwrap().expect("the download never started");
    let waited = frozen_at.elapsed();
    sshd.lock().unwrap().signal_all("CONT");
    let err = result.expect_err("a hung server must fail the poll");
    assert_eq!(err.kind(), "io", "{err}");
    // io_timeout is 1 s: one timed-out read, then the socket is cut so the
    // cleanup does not wait again.
    assert!(waited < Duration::from_secs(3), "hung for {waited:?}");
    assert_eq!(sink.count(), 0);
    assert_eq!(store_files(store.path()), (vec![], vec![]));
    assert!(dir.join("slow.xml").exists());

    let r = src
        .poll_once(&sink, store.path(), &mut state)
        .await
        .unwrap();
    assert_eq!(r.picked_up.len(), 1, "{r:?}");
    assert!(sink.flows.lock().unwrap()[0].1 == body);
}
