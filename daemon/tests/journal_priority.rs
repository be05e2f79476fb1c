//! Under systemd, log lines carry the journal priority (issue 18): the real
//! `quai run` with its stderr on a stream named by `JOURNAL_STREAM` (as
//! systemd sets it) writes JSON lines prefixed `<6>` for info and `<3>` for
//! the errors of a refused reload, so `journalctl -p err` finds them; with
//! `JOURNAL_STREAM` naming another stream (a child whose stderr was
//! redirected), lines have no prefix.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(log: &Path, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if ok(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what} not logged:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Start `quai run` on `dir` with stderr to `quai.log`; `journal` sets
/// JOURNAL_STREAM to that file's device and inode (else to another's).
fn start(dir: &Path, journal: bool) -> (KillOnDrop, std::path::PathBuf) {
    let cfg = dir.join("quai.toml");
    std::fs::write(
        &cfg,
        "[http]\nlisten = \"off\"\n[dropzones]\nenabled = false\n",
    )
    .unwrap();
    let log_path = dir.join("quai.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let meta = if journal {
        log.metadata().unwrap()
    } else {
        std::fs::metadata(&cfg).unwrap()
    };
    let child = Command::new(env!("CARGO_BIN_EXE_quai"))
        .arg("run")
        .arg("--config")
        .arg(&cfg)
        .env_remove("QUAI_CONFIG")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("QUAI_LOG_FORMAT")
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start quai run");
    (KillOnDrop(child), cfg)
}

#[test]
fn journal_lines_carry_their_priority() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, cfg) = start(dir.path(), true);
    let log = dir.path().join("quai.log");
    let text = wait_for(&log, "start", |t| t.contains("quai is running"));
    let running = text
        .lines()
        .find(|l| l.contains("quai is running"))
        .unwrap();
    assert!(running.starts_with("<6>{"), "{running}");

    // A broken configuration and SIGHUP: the refusal is logged as errors.
    std::fs::write(&cfg, "[processing]\nworkers = \"many\"\n").unwrap();
    // SAFETY: a signal to the child this test started.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGHUP) }, 0);
    let text = wait_for(&log, "refusal", |t| t.contains("new configuration refused"));
    let refused = text
        .lines()
        .find(|l| l.contains("new configuration refused"))
        .unwrap();
    assert!(refused.starts_with("<3>{"), "{refused}");
    let json: serde_json::Value = serde_json::from_str(&refused[3..]).expect("a JSON line");
    assert_eq!(json["level"], "ERROR", "{json}");
    for line in text.lines() {
        assert!(
            ["<3>{", "<4>{", "<6>{", "<7>{"]
                .iter()
                .any(|p| line.starts_with(p)),
            "a line without its priority: {line}"
        );
    }
    // SAFETY: as above.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let _ = child.0.wait();
}

#[test]
fn no_prefix_when_stderr_is_not_the_journal_stream() {
    let dir = tempfile::tempdir().unwrap();
    let (child, _cfg) = start(dir.path(), false);
    let log = dir.path().join("quai.log");
    let text = wait_for(&log, "start", |t| t.contains("quai is running"));
    let running = text
        .lines()
        .find(|l| l.contains("quai is running"))
        .unwrap();
    assert!(running.starts_with('{'), "{running}");
    drop(child);
}
