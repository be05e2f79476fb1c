//! Reloading the configuration of the real `quai run` binary (issue 18):
//! a partner added to the file and `quai reload` (SIGHUP) is watched and
//! its flow processed without a restart; a broken configuration sent with
//! SIGHUP is refused with every problem logged and the daemon keeps running
//! on the old one; what needs a restart is named; SIGHUP never kills it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn quai() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_quai"));
    c.env_remove("QUAI_CONFIG")
        .env_remove("NOTIFY_SOCKET")
        .env("QUAI_LOG_FORMAT", "text")
        .env("NO_COLOR", "1");
    c
}

fn wait_until(what: &str, within: Duration, log: &dyn Fn() -> String, ok: &dyn Fn() -> bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not happen within {within:?}; log:\n{}", log());
}

fn reports(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with(".report.json"))
                .collect()
        })
        .unwrap_or_default()
}

fn config(inboxes: &[(&str, &Path)], extra: &str) -> String {
    let mut s = String::from(
        "[http]\nlisten = \"127.0.0.1:0\"\n[dropzones]\nenabled = false\nstable_seconds = 1\n",
    );
    s.push_str(extra);
    for (id, inbox) in inboxes {
        s.push_str(&format!(
            "[[partner]]\nid = \"{id}\"\n[partner.dropzone]\ninbox = \"{}\"\n",
            inbox.display()
        ));
    }
    s
}

#[test]
fn sighup_reloads_refuses_broken_configurations_and_never_kills() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("quai.toml");
    let acme = dir.path().join("in-acme");
    let beta = dir.path().join("in-beta");
    std::fs::create_dir_all(&acme).unwrap();
    std::fs::create_dir_all(&beta).unwrap();
    std::fs::write(
        &cfg,
        config(&[("acme", &acme)], "[processing]\nworkers = 1\n"),
    )
    .unwrap();
    let log_path = dir.path().join("quai.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let child = quai()
        .arg("run")
        .arg("--config")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .expect("start quai run");
    let mut child = KillOnDrop(child);
    let pid = child.0.id();
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    wait_until("start", Duration::from_secs(60), &log, &|| {
        log().contains("quai is running")
    });
    let pid_file = dir.path().join("quai.pid");
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string(),
        "quai run writes its pid file in its home"
    );

    // A partner added to the file, and `quai reload`: its inbox is watched.
    std::fs::write(
        &cfg,
        config(
            &[("acme", &acme), ("beta", &beta)],
            "[processing]\nworkers = 3\n",
        ),
    )
    .unwrap();
    let out = quai()
        .arg("reload")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "quai reload: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("pid {pid}")));
    wait_until("the reload", Duration::from_secs(30), &log, &|| {
        log().contains("configuration reloaded: 2 partner(s)")
    });
    assert!(
        log().contains("processing.workers cannot change without a restart"),
        "the restart-only key is named:\n{}",
        log()
    );
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/sample-batch.zip");
    std::fs::copy(&sample, beta.join("sample-batch.zip")).unwrap();
    let beta_out = dir.path().join("outbound/beta");
    wait_until(
        "beta's flow processed",
        Duration::from_secs(60),
        &log,
        &|| !reports(&beta_out).is_empty(),
    );

    // A broken configuration, every kind of mistake: refused, each problem
    // logged, the daemon still running on the old configuration.
    std::fs::write(
        &cfg,
        format!(
            "{}[schedule]\nreconcile = \"every day\"\n[limits]\nmax_invoices_per_flow = \"many\"\n\
             [mail]\npassword_file = \"{}\"\nfrum = \"x\"\n",
            config(
                &[
                    ("acme", &acme),
                    ("beta", &beta),
                    ("gamma", &dir.path().join("in-gamma-typo"))
                ],
                "",
            ),
            dir.path().join("no-such-password").display()
        ),
    )
    .unwrap();
    // `quai reload` checks first and does not signal.
    let out = quai()
        .arg("reload")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let seen_before = log().matches("reload asked").count();
    assert_eq!(seen_before, 1, "a refused `quai reload` sends no signal");
    let kill = Command::new("kill")
        .arg("-HUP")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(kill.success());
    wait_until("the refusal", Duration::from_secs(30), &log, &|| {
        log().contains("new configuration refused")
    });
    let text = log();
    for needle in [
        "schedule.reconcile",
        "limits.max_invoices_per_flow",
        "mail.frum",
    ] {
        assert!(text.contains(needle), "{needle} not logged:\n{text}");
    }
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "SIGHUP killed quai:\n{text}"
    );
    // Once the file problems are fixed, the start checks are reported too.
    std::fs::write(
        &cfg,
        format!(
            "{}[mail]\npassword_file = \"{}\"\n",
            config(
                &[
                    ("acme", &acme),
                    ("beta", &beta),
                    ("gamma", &dir.path().join("in-gamma-typo"))
                ],
                "",
            ),
            dir.path().join("no-such-password").display()
        ),
    )
    .unwrap();
    assert!(Command::new("kill")
        .arg("-HUP")
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success());
    wait_until("the second refusal", Duration::from_secs(30), &log, &|| {
        log().matches("new configuration refused").count() == 2
    });
    let text = log();
    assert!(text.contains("partner[gamma].dropzone.inbox"), "{text}");
    assert!(text.contains("mail.password_file"), "{text}");
    assert!(
        !dir.path().join("in-gamma-typo").exists(),
        "a refused inbox is not created"
    );

    // Still running on the last good configuration: beta's inbox is watched.
    std::fs::copy(&sample, acme.join("again.zip")).unwrap();
    let acme_out = dir.path().join("outbound/acme");
    wait_until(
        "acme's flow processed after the refusal",
        Duration::from_secs(60),
        &log,
        &|| !reports(&acme_out).is_empty(),
    );
    assert!(child.0.try_wait().unwrap().is_none());

    // SIGTERM stops it cleanly, and the pid file goes.
    assert!(Command::new("kill")
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "quai did not stop:\n{}", log());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "exit status {status:?}:\n{}", log());
    assert!(!pid_file.exists(), "the pid file is removed at stop");
}
