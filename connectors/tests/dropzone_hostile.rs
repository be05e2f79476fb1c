//! Drop zones under attack, with real files: links (to /etc/passwd, to
//! another partner's upload, to /dev/zero, created before or after start),
//! FIFOs, folders, hard links, a partner folder that is a link, partner
//! folders with unusable names, names of 255 bytes. Only regular files come
//! in; everything else gets one answer (moved aside, `FlowSink::refused`)
//! and is not retried; the drop zone never blocks and stops on time.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quai_connectors::dropzone::{self, DropzoneConfig, Zone, REFUSED_DIR};
use quai_connectors::{Accepted, Channel, FlowSink, LandedFlow, Refusal, RefusalReason, SinkError};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Recorder {
    accepted: Mutex<Vec<(LandedFlow, Vec<u8>)>>,
    refused: Mutex<Vec<Refusal>>,
}

impl FlowSink for Recorder {
    async fn accept(&self, flow: LandedFlow) -> Result<Accepted, SinkError> {
        let bytes = std::fs::read(&flow.stored_path).unwrap_or_default();
        let mut a = self.accepted.lock().unwrap();
        a.push((flow, bytes));
        Ok(Accepted::New {
            flow_id: a.len() as i64,
        })
    }

    async fn refused(&self, refusal: Refusal) {
        self.refused.lock().unwrap().push(refusal);
    }
}

impl Recorder {
    fn accepted(&self) -> Vec<(String, String, Vec<u8>)> {
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .map(|(f, b)| (f.partner.clone(), f.original_name.clone(), b.clone()))
            .collect()
    }
    fn refusals(&self) -> Vec<Refusal> {
        self.refused.lock().unwrap().clone()
    }
}

struct Running {
    root: tempfile::TempDir,
    store: tempfile::TempDir,
    sink: Arc<Recorder>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), notify::Error>>,
}

impl Running {
    fn inbound(&self) -> PathBuf {
        self.root.path().join("inbound")
    }

    async fn stop(self) -> Duration {
        let t = Instant::now();
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the drop zone stops within 10 s")
            .unwrap()
            .unwrap();
        t.elapsed()
    }
}

/// Starts a drop zone over `<tmp>/inbound` (a partner root) and the extra
/// zones, after `prepare` laid out the files present at start.
async fn start(prepare: impl FnOnce(&Path), extra: impl FnOnce(&Path) -> Vec<Zone>) -> Running {
    let root = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let inbound = root.path().join("inbound");
    std::fs::create_dir_all(&inbound).unwrap();
    prepare(root.path());
    let mut zones = vec![Zone::PartnerRoot {
        dir: inbound.clone(),
    }];
    zones.extend(extra(root.path()));
    let mut cfg = DropzoneConfig::new(zones, store.path().to_path_buf());
    cfg.stable_for = Duration::from_millis(200);
    cfg.rescan_every = Duration::from_millis(300);
    let sink = Arc::new(Recorder::default());
    let stop = CancellationToken::new();
    let task = tokio::spawn(dropzone::run(cfg, sink.clone(), stop.clone()));
    Running {
        root,
        store,
        sink,
        stop,
        task,
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

fn refusals_by_name(r: &[Refusal]) -> HashMap<String, Vec<Refusal>> {
    let mut m: HashMap<String, Vec<Refusal>> = HashMap::new();
    for x in r {
        m.entry(x.name.clone()).or_default().push(x.clone());
    }
    m
}

fn store_files(store: &Path) -> Vec<PathBuf> {
    walk(store)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_fifos_devices_and_folders_are_refused_once_and_moved_aside() {
    let dz = start(
        |root| {
            let evil = root.join("inbound/evil");
            let victim = root.join("inbound/victim");
            std::fs::create_dir_all(&evil).unwrap();
            std::fs::create_dir_all(&victim).unwrap();
            // The victim's upload in progress, and a finished one.
            std::fs::write(victim.join("upload.xml.part"), b"<victim-in-progress/>").unwrap();
            std::fs::write(victim.join("inv-victim.xml"), b"<victim/>").unwrap();
            symlink("/etc/passwd", evil.join("passwd.xml")).unwrap();
            symlink(victim.join("upload.xml.part"), evil.join("steal.xml")).unwrap();
            symlink(&victim, evil.join("victim-folder")).unwrap();
            symlink("/dev/zero", evil.join("zero.xml")).unwrap();
            mkfifo(&evil.join("fifo.xml"));
            std::fs::create_dir(evil.join("subdir")).unwrap();
            std::fs::write(victim.join("shared.xml"), b"<victim-shared/>").unwrap();
            std::fs::hard_link(victim.join("shared.xml"), evil.join("hard.xml")).unwrap();
            std::fs::write(evil.join("honest.xml"), b"<evil-honest/>").unwrap();
        },
        |_| Vec::new(),
    )
    .await;
    let evil = dz.inbound().join("evil");
    let sink = dz.sink.clone();
    wait_for("the honest file and 7 refusals", || {
        sink.accepted().iter().any(|(_, n, _)| n == "honest.xml") && sink.refusals().len() >= 7
    })
    .await;
    // A link created while running is refused just the same.
    symlink("/etc/shadow", evil.join("late-link.xml")).unwrap();
    mkfifo(&evil.join("late-fifo.xml"));
    wait_for("the late link and FIFO refused", || {
        let r = refusals_by_name(&sink.refusals());
        r.contains_key("late-link.xml") && r.contains_key("late-fifo.xml")
    })
    .await;
    // Several rescans later, nothing is answered twice.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let accepted = dz.sink.accepted();
    let refusals = dz.sink.refusals();
    // Stopping is prompt despite the FIFOs and /dev/zero.
    let took = dz.stop().await;
    assert!(took < Duration::from_secs(3), "stopped in {took:?}");

    let by_name = refusals_by_name(&refusals);
    let expect = [
        ("passwd.xml", RefusalReason::Link),
        ("steal.xml", RefusalReason::Link),
        ("victim-folder", RefusalReason::Link),
        ("zero.xml", RefusalReason::Link),
        ("fifo.xml", RefusalReason::Fifo),
        ("subdir", RefusalReason::Directory),
        ("hard.xml", RefusalReason::HardLink),
        // Both names of a hard-linked file: neither is a plain file (an
        // attacker who could link it could also have changed it).
        ("shared.xml", RefusalReason::HardLink),
        ("late-link.xml", RefusalReason::Link),
        ("late-fifo.xml", RefusalReason::Fifo),
    ];
    for (name, reason) in expect {
        let got = by_name
            .get(name)
            .unwrap_or_else(|| panic!("{name} not refused: {refusals:?}"));
        assert_eq!(got.len(), 1, "{name} answered once: {got:?}");
        assert_eq!(got[0].reason, reason, "{name}");
        let owner = if name == "shared.xml" {
            "victim"
        } else {
            "evil"
        };
        assert_eq!(got[0].partner.as_deref(), Some(owner), "{name}");
        assert_eq!(got[0].channel, Channel::Dropzone);
        let moved = got[0].moved_to.as_ref().expect("moved aside");
        assert!(
            moved.ends_with(Path::new(REFUSED_DIR).join(name)),
            "{name} moved to {moved:?}"
        );
    }
    assert_eq!(refusals.len(), expect.len(), "{refusals:?}");
    // Only the regular files came in, each as its own partner's.
    let mut got: Vec<(String, String, Vec<u8>)> = accepted;
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                "evil".into(),
                "honest.xml".into(),
                b"<evil-honest/>".to_vec()
            ),
            (
                "victim".into(),
                "inv-victim.xml".into(),
                b"<victim/>".to_vec()
            ),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_entries_leave_the_folder_and_the_targets_alone() {
    let dz = start(
        |root| {
            let evil = root.join("inbound/evil");
            std::fs::create_dir_all(&evil).unwrap();
            symlink("/etc/passwd", evil.join("passwd.xml")).unwrap();
            mkfifo(&evil.join("fifo.xml"));
        },
        |_| Vec::new(),
    )
    .await;
    let sink = dz.sink.clone();
    wait_for("2 refusals", || sink.refusals().len() >= 2).await;
    let evil = dz.inbound().join("evil");
    let aside = evil.join(REFUSED_DIR);
    // The link itself was moved, never its target.
    assert_eq!(
        std::fs::read_link(aside.join("passwd.xml")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert!(std::fs::symlink_metadata(aside.join("fifo.xml"))
        .unwrap()
        .file_type()
        .is_fifo_like());
    let left: Vec<OsString> = std::fs::read_dir(&evil)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![OsString::from(REFUSED_DIR)]);
    assert!(store_files(dz.store.path()).is_empty());
    assert!(dz.sink.accepted().is_empty());
    dz.stop().await;
}

trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}
impl FifoLike for std::fs::FileType {
    fn is_fifo_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_fifo()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_folder_that_is_a_link_is_refused_once() {
    let dz = start(
        |root| {
            let victim = root.join("inbound/victim");
            std::fs::create_dir_all(&victim).unwrap();
            std::fs::write(victim.join("inv.xml"), b"<victim/>").unwrap();
            // A partner "folder" that is the victim's folder, and one that
            // points outside the zone.
            symlink(&victim, root.join("inbound/mallory")).unwrap();
            let outside = root.join("outside");
            std::fs::create_dir_all(&outside).unwrap();
            std::fs::write(outside.join("secret.xml"), b"<secret/>").unwrap();
            symlink(&outside, root.join("inbound/eve")).unwrap();
            // A configured inbox that is a link.
            symlink(&outside, root.join("inbox-link")).unwrap();
        },
        |root| {
            vec![Zone::Inbox {
                partner: "trent".into(),
                dir: root.join("inbox-link"),
            }]
        },
    )
    .await;
    let sink = dz.sink.clone();
    wait_for("victim's flow and 3 refusals", || {
        !sink.accepted().is_empty() && sink.refusals().len() >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await; // several rescans
    let refusals = dz.sink.refusals();
    assert_eq!(refusals.len(), 3, "{refusals:?}");
    for r in &refusals {
        assert_eq!(r.reason, RefusalReason::PartnerFolderLink, "{r:?}");
        assert_eq!(r.moved_to, None);
    }
    let names: Vec<_> = refusals.iter().map(|r| r.name.clone()).collect();
    assert!(names.contains(&"mallory".to_string()), "{names:?}");
    assert!(names.contains(&"eve".to_string()), "{names:?}");
    // A root folder link names no partner; the configured inbox does.
    let trent: Vec<_> = refusals
        .iter()
        .filter(|r| r.partner.as_deref() == Some("trent"))
        .collect();
    assert_eq!(trent.len(), 1, "{refusals:?}");
    assert_eq!(
        dz.sink.accepted(),
        vec![("victim".into(), "inv.xml".into(), b"<victim/>".to_vec())]
    );
    // The links and what they point to are untouched.
    assert!(dz.root.path().join("outside/secret.xml").exists());
    dz.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_name_gets_an_answer() {
    let long = OsString::from_vec(
        std::iter::repeat_n(b'a', 250)
            .chain(*b".xml")
            .chain([b'x'])
            .collect(),
    );
    assert_eq!(long.len(), 255);
    let long_utf8 = "é".repeat(125) + ".xml0"; // 255 bytes, multi-byte
    assert_eq!(long_utf8.len(), 255);
    let latin1 = OsString::from_vec(b"facture-\xe9t\xe9.xml".to_vec());
    let bad_folders = ["with space", "line\nbreak", "caf\u{e9}", &"p".repeat(65)];
    let dz = start(
        |root| {
            let acme = root.join("inbound/acme");
            std::fs::create_dir_all(&acme).unwrap();
            std::fs::write(acme.join(&long), b"<long/>").unwrap();
            std::fs::write(acme.join(&long_utf8), b"<long-utf8/>").unwrap();
            std::fs::write(acme.join(&latin1), b"<latin1/>").unwrap();
            for f in bad_folders {
                let d = root.join("inbound").join(f);
                std::fs::create_dir_all(&d).unwrap();
                std::fs::write(d.join("inv.xml"), b"<lost?/>").unwrap();
            }
        },
        |_| Vec::new(),
    )
    .await;
    let sink = dz.sink.clone();
    wait_for("3 flows and 4 folder refusals", || {
        sink.accepted().len() >= 3 && sink.refusals().len() >= 4
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await; // several rescans
    let mut names: Vec<String> = dz.sink.accepted().into_iter().map(|(_, n, _)| n).collect();
    names.sort();
    let mut want = vec![
        long.to_string_lossy().into_owned(),
        long_utf8.clone(),
        latin1.to_string_lossy().into_owned(),
    ];
    want.sort();
    assert_eq!(names, want);
    assert!(dz.sink.accepted().iter().all(|(p, _, _)| p == "acme"));
    let refusals = dz.sink.refusals();
    assert_eq!(refusals.len(), 4, "answered once each: {refusals:?}");
    for r in &refusals {
        assert_eq!(r.reason, RefusalReason::PartnerFolderName);
        assert_eq!(r.partner, None);
    }
    let mut refused: Vec<String> = refusals.iter().map(|r| r.name.clone()).collect();
    refused.sort();
    let mut bad: Vec<String> = bad_folders.iter().map(|s| s.to_string()).collect();
    bad.sort();
    assert_eq!(refused, bad);
    // Nothing was landed for the refused folders: the store holds the three
    // flows taken, nothing else (no unregistered file).
    assert_eq!(store_files(dz.store.path()).len(), 3);
    // The acme folder is empty: no claim left behind.
    let acme_left: Vec<_> = std::fs::read_dir(dz.inbound().join("acme"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(acme_left.is_empty(), "{acme_left:?}");
    // The refused folders' files are still there, untouched.
    for f in bad_folders {
        assert!(dz.inbound().join(f).join("inv.xml").exists());
    }
    dz.stop().await;
}
