//! The local outbox (`FolderOutbox`) against a hostile partner who can
//! write into it (issue 14, class 2): links planted at the final name, at
//! guessable temporary names or instead of the folder are never followed,
//! an existing file is never overwritten, a send is idempotent on its name,
//! concurrent sends of one name deliver one file, and an outbox on another
//! file system (a tmpfs) works the same.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use quai_connectors::outbound::{
    is_temporary_name, FolderOutbox, FolderOutboxConfig, Parcel, TEMP_PREFIX,
};

struct Setup {
    _tmp: tempfile::TempDir,
    staging: PathBuf,
    outbox: PathBuf,
    /// A file outside the outbox the partner would like quai to overwrite.
    victim: PathBuf,
}

const VICTIM: &[u8] = b"root:x:0:0:root:/root:/bin/bash\n";

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let staging = tmp.path().join("home/tmp");
    let outbox = tmp.path().join("partners/acme/outbox");
    fs::create_dir_all(&staging).unwrap();
    fs::create_dir_all(&outbox).unwrap();
    let victim = tmp.path().join("etc-passwd");
    fs::write(&victim, VICTIM).unwrap();
    Setup {
        _tmp: tmp,
        staging,
        outbox,
        victim,
    }
}

fn outbox(dir: &Path) -> FolderOutbox {
    FolderOutbox::new(FolderOutboxConfig {
        dir: dir.to_path_buf(),
        create_missing: false,
    })
}

fn stage(staging: &Path, name: &str, bytes: &[u8]) -> Parcel {
    let staged = staging.join(uuid::Uuid::new_v4().simple().to_string());
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
async fn publishes_the_staged_bytes_with_mode_0640_and_nothing_else() {
    let s = setup();
    let o = outbox(&s.outbox);
    let p = stage(&s.staging, "flow.42.report.xml", REPORT);
    let sent = o.send(&p).await.unwrap();
    let target = s.outbox.join("flow.42.report.xml");
    assert_eq!(sent.destination, target.display().to_string());
    assert_eq!(sent.receipt, None);
    assert_eq!(fs::read(&target).unwrap(), REPORT);
    assert_eq!(
        fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert_eq!(names(&s.outbox), ["flow.42.report.xml"]);
    // The staged file is the caller's: copied, not moved.
    assert_eq!(fs::read(&p.staged).unwrap(), REPORT);
    assert!(o.describe().contains(&s.outbox.display().to_string()));
}

#[tokio::test]
async fn a_link_at_the_final_name_is_not_followed() {
    let s = setup();
    let o = outbox(&s.outbox);
    let target = s.outbox.join("flow.42.report.xml");
    std::os::unix::fs::symlink(&s.victim, &target).unwrap();
    let p = stage(&s.staging, "flow.42.report.xml", REPORT);
    let err = o.send(&p).await.unwrap_err();
    assert!(!err.transient, "{err:?}");
    assert!(
        err.message.contains(&target.display().to_string()),
        "{err:?}"
    );
    assert!(err.message.contains("symbolic link"), "{err:?}");
    assert_eq!(
        fs::read(&s.victim).unwrap(),
        VICTIM,
        "the victim is unchanged"
    );
    assert!(fs::symlink_metadata(&target)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_link(&target).unwrap(), s.victim);
    // A dangling link (a file the partner hopes quai creates) too.
    let dangling = s.outbox.join("flow.43.report.xml");
    let created = s.victim.with_file_name("created-by-quai");
    std::os::unix::fs::symlink(&created, &dangling).unwrap();
    let err = o
        .send(&stage(&s.staging, "flow.43.report.xml", REPORT))
        .await
        .unwrap_err();
    assert!(!err.transient, "{err:?}");
    assert!(!created.exists(), "nothing was created through the link");
    assert_eq!(
        names(&s.outbox),
        ["flow.42.report.xml", "flow.43.report.xml"]
    );
}

#[tokio::test]
async fn links_at_guessable_temporary_names_are_not_followed() {
    let s = setup();
    let o = outbox(&s.outbox);
    let name = "flow.42.report.xml";
    // Every temporary name a careless writer might use.
    let planted: Vec<String> = [
        format!(".{name}.part"),
        format!(".{name}.tmp"),
        format!("{name}.part"),
        format!("{name}.tmp"),
        format!(".{name}"),
        format!("{TEMP_PREFIX}{name}.part"),
        format!("{TEMP_PREFIX}.part"),
    ]
    .into();
    for n in &planted {
        std::os::unix::fs::symlink(&s.victim, s.outbox.join(n)).unwrap();
    }
    o.send(&stage(&s.staging, name, REPORT)).await.unwrap();
    assert_eq!(
        fs::read(&s.victim).unwrap(),
        VICTIM,
        "the victim is unchanged"
    );
    assert_eq!(fs::read(s.outbox.join(name)).unwrap(), REPORT);
    assert!(!fs::symlink_metadata(s.outbox.join(name))
        .unwrap()
        .file_type()
        .is_symlink());
    // The planted links are still there, untouched, and nothing else was added.
    let mut expected: Vec<String> = planted.clone();
    expected.push(name.into());
    expected.sort();
    assert_eq!(names(&s.outbox), expected);
    for n in &planted {
        assert_eq!(fs::read_link(s.outbox.join(n)).unwrap(), s.victim);
    }
}

#[tokio::test]
async fn an_existing_file_is_never_overwritten_and_the_same_bytes_are_ok() {
    let s = setup();
    let o = outbox(&s.outbox);
    let name = "flow.42.report.xml";
    let first = o.send(&stage(&s.staging, name, REPORT)).await.unwrap();
    // A resend after a crash: same bytes, same name, nothing new.
    let again = o.send(&stage(&s.staging, name, REPORT)).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(names(&s.outbox), [name]);
    // Other bytes under that name (same size, then another size): refused.
    for other in [
        &b"<?xml version=\"1.0\"?><IntegrationReport flow=\"43\"/>\n"[..],
        b"short",
    ] {
        let err = o.send(&stage(&s.staging, name, other)).await.unwrap_err();
        assert!(!err.transient, "{err:?}");
        assert!(err.message.contains("never overwritten"), "{err:?}");
        assert!(err
            .message
            .contains(&s.outbox.join(name).display().to_string()));
        assert_eq!(fs::read(s.outbox.join(name)).unwrap(), REPORT);
    }
    // A file the partner put there itself is not replaced either.
    fs::write(s.outbox.join("theirs.xml"), b"partner's own").unwrap();
    let err = o
        .send(&stage(&s.staging, "theirs.xml", REPORT))
        .await
        .unwrap_err();
    assert!(!err.transient);
    assert_eq!(
        fs::read(s.outbox.join("theirs.xml")).unwrap(),
        b"partner's own"
    );
    assert_eq!(names(&s.outbox), [name, "theirs.xml"]);
}

#[tokio::test]
async fn a_fifo_or_folder_at_the_name_is_refused_without_blocking() {
    let s = setup();
    let o = outbox(&s.outbox);
    let fifo = s.outbox.join("flow.42.report.xml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
    fs::create_dir(s.outbox.join("flow.43.report.xml")).unwrap();
    let started = std::time::Instant::now();
    for name in ["flow.42.report.xml", "flow.43.report.xml"] {
        let err = tokio::time::timeout(
            Duration::from_secs(10),
            o.send(&stage(&s.staging, name, REPORT)),
        )
        .await
        .expect("never blocks")
        .unwrap_err();
        assert!(!err.transient, "{err:?}");
        assert!(err.message.contains("other than a regular file"), "{err:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_outbox_that_is_a_link_or_a_file_is_refused_naming_the_path() {
    let s = setup();
    let elsewhere = s.victim.parent().unwrap().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let linked = s.outbox.parent().unwrap().join("linked-outbox");
    std::os::unix::fs::symlink(&elsewhere, &linked).unwrap();
    for create_missing in [false, true] {
        let o = FolderOutbox::new(FolderOutboxConfig {
            dir: linked.clone(),
            create_missing,
        });
        let err = o
            .send(&stage(&s.staging, "a.xml", REPORT))
            .await
            .unwrap_err();
        assert!(!err.transient, "{err:?}");
        assert!(
            err.message.contains(&linked.display().to_string()),
            "{err:?}"
        );
        assert!(err.message.contains("symbolic link"), "{err:?}");
    }
    assert!(
        names(&elsewhere).is_empty(),
        "nothing written through the link"
    );

    let file = s.outbox.parent().unwrap().join("file-outbox");
    fs::write(&file, b"x").unwrap();
    let err = outbox(&file)
        .send(&stage(&s.staging, "a.xml", REPORT))
        .await
        .unwrap_err();
    assert!(!err.transient, "{err:?}");
    assert!(err.message.contains(&file.display().to_string()), "{err:?}");
    assert!(err.message.contains("not a folder"), "{err:?}");
    assert_eq!(fs::read(&file).unwrap(), b"x");
}

#[tokio::test]
async fn a_missing_outbox_is_created_only_when_asked() {
    let s = setup();
    let missing = s.outbox.parent().unwrap().join("new/outbox");
    let err = outbox(&missing)
        .send(&stage(&s.staging, "a.xml", REPORT))
        .await
        .unwrap_err();
    assert!(err.transient, "{err:?}");
    assert!(err.message.contains(&missing.display().to_string()));
    let o = FolderOutbox::new(FolderOutboxConfig {
        dir: missing.clone(),
        create_missing: true,
    });
    o.send(&stage(&s.staging, "a.xml", REPORT)).await.unwrap();
    assert_eq!(fs::read(missing.join("a.xml")).unwrap(), REPORT);
}

#[tokio::test]
async fn unsafe_or_reserved_names_are_refused() {
    let s = setup();
    let o = outbox(&s.outbox);
    let long = "x".repeat(256);
    let reserved = format!("{TEMP_PREFIX}abc.part");
    o.send(&stage(&s.staging, "n", REPORT)).await.unwrap();
    for name in [
        "",
        ".",
        "..",
        "../escape.xml",
        "a/b.xml",
        long.as_str(),
        reserved.as_str(),
    ] {
        let mut p = stage(&s.staging, "n", REPORT);
        p.name = name.to_string();
        let err = o.send(&p).await.unwrap_err();
        assert!(!err.transient, "{name:?}: {err:?}");
    }
    // 255 bytes is fine.
    let max = "y".repeat(255);
    o.send(&stage(&s.staging, &max, REPORT)).await.unwrap();
    assert_eq!(names(&s.outbox), ["n", max.as_str()]);
    assert!(!s.outbox.parent().unwrap().join("escape.xml").exists());
}

/// `$QUAI_HOME/tmp` on the disk, the outbox on a tmpfs: the rename cannot
/// cross file systems, so the copy must be made in the outbox itself.
#[tokio::test]
async fn an_outbox_on_another_file_system_works() {
    let s = setup();
    let shm = Path::new("/dev/shm");
    assert!(shm.is_dir(), "/dev/shm (a tmpfs) is needed for this test");
    let remote = tempfile::tempdir_in(shm).unwrap();
    let dev_of = |p: &Path| fs::metadata(p).unwrap().dev();
    assert_ne!(
        dev_of(remote.path()),
        dev_of(&s.staging),
        "the test needs the staging folder and /dev/shm on different file systems"
    );
    let out = remote.path().join("acme");
    fs::create_dir(&out).unwrap();
    let o = outbox(&out);
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    o.send(&stage(&s.staging, "big.xml", &big)).await.unwrap();
    o.send(&stage(&s.staging, "flow.42.report.xml", REPORT))
        .await
        .unwrap();
    assert_eq!(fs::read(out.join("big.xml")).unwrap(), big);
    assert_eq!(fs::read(out.join("flow.42.report.xml")).unwrap(), REPORT);
    assert_eq!(names(&out), ["big.xml", "flow.42.report.xml"]);
    // The same guarantees hold there.
    std::os::unix::fs::symlink(&s.victim, out.join("c.xml")).unwrap();
    assert!(o.send(&stage(&s.staging, "c.xml", REPORT)).await.is_err());
    assert_eq!(fs::read(&s.victim).unwrap(), VICTIM);
    o.send(&stage(&s.staging, "big.xml", &big)).await.unwrap();
    assert!(o.send(&stage(&s.staging, "big.xml", REPORT)).await.is_err());
    assert_eq!(fs::read(out.join("big.xml")).unwrap(), big);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sends_of_one_name_deliver_once() {
    let s = setup();
    let o = Arc::new(outbox(&s.outbox));
    let big: Vec<u8> = (0..2_000_000u32).map(|i| (i % 253) as u8).collect();
    // The same bytes from 16 senders: all Ok, one file.
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let p = stage(&s.staging, "same.xml", &big);
        let o = o.clone();
        tasks.push(tokio::spawn(async move { o.send(&p).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(names(&s.outbox), ["same.xml"]);
    assert_eq!(fs::read(s.outbox.join("same.xml")).unwrap(), big);

    // Different bytes from 16 senders: exactly one wins, whole.
    let mut tasks = Vec::new();
    let mut versions = Vec::new();
    for i in 0..16u8 {
        let mut bytes = big.clone();
        bytes[0] = i;
        bytes.push(i);
        versions.push(bytes.clone());
        let p = stage(&s.staging, "race.xml", &bytes);
        let o = o.clone();
        tasks.push(tokio::spawn(async move { o.send(&p).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert!(!e.transient, "{e:?}"),
        }
    }
    assert_eq!(ok, 1, "one sender published, the others were refused");
    let got = fs::read(s.outbox.join("race.xml")).unwrap();
    assert_eq!(versions.iter().filter(|v| **v == got).count(), 1);
    assert_eq!(names(&s.outbox), ["race.xml", "same.xml"]);
}

#[tokio::test]
async fn leftover_temporaries_are_recognised_and_cleaned() {
    let s = setup();
    let o = outbox(&s.outbox);
    o.send(&stage(&s.staging, "a.xml", REPORT)).await.unwrap();
    // What a crash between create and rename leaves: a temporary of ours.
    let stale = format!("{TEMP_PREFIX}0123456789abcdef0123456789abcdef.part");
    let fresh = format!("{TEMP_PREFIX}fedcba9876543210fedcba9876543210.part");
    assert!(is_temporary_name(&stale) && is_temporary_name(&fresh));
    fs::write(s.outbox.join(&stale), b"half").unwrap();
    fs::write(s.outbox.join(&fresh), b"in progress").unwrap();
    let old = SystemTime::now() - Duration::from_secs(7200);
    fs::File::options()
        .write(true)
        .open(s.outbox.join(&stale))
        .unwrap()
        .set_modified(old)
        .unwrap();
    // A link with a temporary's name (the partner's) is not ours to touch.
    let link = format!("{TEMP_PREFIX}00000000000000000000000000000000.part");
    std::os::unix::fs::symlink(&s.victim, s.outbox.join(&link)).unwrap();
    // A partner's file that merely looks similar stays too.
    fs::write(s.outbox.join(".quai-tmp-x.xml"), b"theirs").unwrap();

    let removed = o.clean_temporaries(Duration::from_secs(3600)).unwrap();
    assert_eq!(removed, std::slice::from_ref(&stale));
    let mut expected = vec![
        ".quai-tmp-x.xml".to_string(),
        "a.xml".to_string(),
        fresh.clone(),
        link.clone(),
    ];
    expected.sort();
    assert_eq!(names(&s.outbox), expected);
    assert_eq!(fs::read(&s.victim).unwrap(), VICTIM);
    // With no age limit the fresh one goes too.
    assert_eq!(o.clean_temporaries(Duration::ZERO).unwrap(), [fresh]);
}
