//! `quai run` as systemd runs it: the real binary with `NOTIFY_SOCKET` and
//! `WATCHDOG_USEC` set must send `READY=1`, then `WATCHDOG=1` pings, then
//! `STOPPING=1` on SIGTERM, and exit cleanly.

use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Wait for a datagram equal to `want`, collecting every message seen.
fn wait_for(sock: &UnixDatagram, want: &str, within: Duration, seen: &mut Vec<String>) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let hit = msg.lines().any(|l| l == want);
            seen.push(msg);
            if hit {
                return true;
            }
        }
    }
    false
}

#[test]
fn quai_run_notifies_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("quai.toml");
    std::fs::write(
        &config,
        "[http]\nlisten = \"127.0.0.1:0\"\n[processing]\nworkers = 1\n",
    )
    .unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let log = std::fs::File::create(dir.path().join("quai.log")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_quai"))
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("WATCHDOG_PID")
        .env("QUAI_LOG_FORMAT", "text")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start quai run");
    let mut child = KillOnDrop(child);
    let log = || std::fs::read_to_string(dir.path().join("quai.log")).unwrap_or_default();

    let mut seen = Vec::new();
    assert!(
        wait_for(&sock, "READY=1", Duration::from_secs(30), &mut seen),
        "no READY=1 within 30 s; got {seen:?}\n{}",
        log()
    );
    assert!(
        wait_for(&sock, "WATCHDOG=1", Duration::from_secs(2), &mut seen),
        "no WATCHDOG=1 within 2 s of READY (WATCHDOG_USEC = 1 s); got {seen:?}"
    );
    assert!(
        wait_for(&sock, "WATCHDOG=1", Duration::from_secs(2), &mut seen),
        "watchdog pings are not repeated; got {seen:?}"
    );

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.0.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        wait_for(&sock, "STOPPING=1", Duration::from_secs(10), &mut seen),
        "no STOPPING=1 after SIGTERM; got {seen:?}\n{}",
        log()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "quai did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "quai run exited with {exit}\n{}", log());
}
