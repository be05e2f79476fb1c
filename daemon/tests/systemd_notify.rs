//! The sd_notify protocol against a real datagram socket, as systemd
//! would provide it in `$NOTIFY_SOCKET` (a path, or an `@abstract` name).
//!
//! The environment is process-wide and tests run in parallel threads: every
//! test that sets `NOTIFY_SOCKET` / `WATCHDOG_*` holds [`ENV`].

use quai::sdnotify;

use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ENV: Mutex<()> = Mutex::new(());

fn recv(sock: &UnixDatagram) -> Option<String> {
    let mut buf = [0u8; 4096];
    match sock.recv(&mut buf) {
        Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        Err(e) => panic!("recv: {e}"),
    }
}

fn clear_env() {
    for k in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
        std::env::remove_var(k);
    }
}

#[test]
fn ready_status_stopping_to_a_path_socket() {
    let _g = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    clear_env();
    std::env::set_var("NOTIFY_SOCKET", &path);

    sdnotify::ready();
    assert_eq!(recv(&sock).as_deref(), Some("READY=1"));
    sdnotify::status("3 flows waiting\nREADY=1");
    assert_eq!(
        recv(&sock).as_deref(),
        Some("STATUS=3 flows waiting READY=1"),
        "a newline must not smuggle a second assignment"
    );
    sdnotify::watchdog();
    assert_eq!(recv(&sock).as_deref(), Some("WATCHDOG=1"));
    sdnotify::stopping();
    assert_eq!(recv(&sock).as_deref(), Some("STOPPING=1"));
    assert!(sdnotify::notify("X=1").unwrap());
    assert_eq!(recv(&sock).as_deref(), Some("X=1"));

    // Not under systemd: a silent no-op.
    clear_env();
    assert!(!sdnotify::notify("READY=1").unwrap());
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert_eq!(recv(&sock), None);
}

#[test]
fn abstract_socket_names() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::SocketAddr;
    let _g = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let name = format!("quai-test-notify-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let sock = UnixDatagram::bind_addr(&addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    clear_env();
    std::env::set_var("NOTIFY_SOCKET", format!("@{name}"));
    sdnotify::ready();
    assert_eq!(recv(&sock).as_deref(), Some("READY=1"));
    clear_env();
}

#[test]
fn unreachable_socket_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nobody-listens.sock");
    assert!(sdnotify::send_to(missing.to_str().unwrap(), "READY=1").is_err());
    assert!(sdnotify::send_to("vsock:2:99", "READY=1").is_err());
}

#[test]
fn watchdog_pings_at_half_the_timeout_until_stopped() {
    let _g = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    clear_env();
    std::env::set_var("NOTIFY_SOCKET", &path);

    // No WATCHDOG_USEC: no watchdog task.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stop = tokio_util::sync::CancellationToken::new();
        assert!(sdnotify::spawn_watchdog(stop.clone()).is_none());

        // WATCHDOG_PID of another process: not ours to ping.
        std::env::set_var("WATCHDOG_USEC", "200000");
        std::env::set_var("WATCHDOG_PID", "1");
        assert!(sdnotify::watchdog_timeout().is_none() || std::process::id() == 1);
        std::env::set_var("WATCHDOG_PID", std::process::id().to_string());
        assert_eq!(
            sdnotify::watchdog_timeout(),
            Some(Duration::from_millis(200))
        );

        let started = Instant::now();
        let task = sdnotify::spawn_watchdog(stop.clone()).expect("watchdog task");
        // Receive on a blocking thread while the runtime drives the pings.
        let sock2 = sock.try_clone().unwrap();
        let pings = tokio::task::spawn_blocking(move || {
            let mut n = 0;
            let mut stamps = Vec::new();
            while n < 4 {
                match recv(&sock2) {
                    Some(m) => {
                        assert_eq!(m, "WATCHDOG=1");
                        stamps.push(Instant::now());
                        n += 1;
                    }
                    None => panic!("no watchdog ping within 5 s"),
                }
            }
            stamps
        });
        // A current-thread runtime: yield so the watchdog task runs.
        let stamps = pings.await.unwrap();
        let elapsed = stamps[3] - started;
        // Pings at 0, 100, 200, 300 ms: well inside the 200 ms timeout each.
        assert!(
            elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(3),
            "4 pings took {elapsed:?}"
        );
        for w in stamps.windows(2) {
            assert!(
                w[1] - w[0] < Duration::from_millis(190),
                "gap {:?}",
                w[1] - w[0]
            );
        }
        stop.cancel();
        task.await.unwrap();
    });
    // Stopped: no more pings.
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    while recv(&sock).is_some() {}
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(recv(&sock), None, "a ping after stop");
    clear_env();
}
