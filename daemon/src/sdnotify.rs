//! The systemd notification protocol (`sd_notify(3)`), without libsystemd.
//!
//! Under `Type=notify`, systemd passes a datagram socket in `$NOTIFY_SOCKET`
//! (a path, or an abstract name written with a leading `@`) and waits for
//! `READY=1` before it considers the service started; with `WatchdogSec=`
//! it also sets `$WATCHDOG_USEC` and restarts the service when no
//! `WATCHDOG=1` arrives in time. The protocol is one `KEY=VALUE` line per
//! assignment in a single datagram, so a few lines of std code replace a C
//! dependency.
//!
//! Outside systemd (no `$NOTIFY_SOCKET`) every function is a no-op, so the
//! daemon calls them unconditionally. Errors are logged, never fatal: a
//! service manager that cannot be told is no reason to stop taking flows
//! (systemd will notice on its own through its start timeout or watchdog).
//!
//! Expected use in `run`:
//! ```ignore
//! sdnotify::ready();                       // once intake and HTTP are up
//! let wd = sdnotify::spawn_watchdog(stop.clone());
//! sdnotify::status("watching 3 drop zones");
//! // ... on shutdown:
//! sdnotify::stopping();
//! ```

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// Send one notification (`state`, e.g. `"READY=1"`) to the socket named in
/// `socket` (`/run/systemd/notify` or `@abstract-name`). Returns an error
/// for an unsupported address form (e.g. `vsock:`) or a failed send.
pub fn send_to(socket: &str, state: &str) -> io::Result<()> {
    let addr = socket_addr(socket)?;
    let sock = UnixDatagram::unbound()?;
    let sent = sock.send_to_addr(state.as_bytes(), &addr)?;
    if sent != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "notification truncated",
        ));
    }
    Ok(())
}

fn socket_addr(socket: &str) -> io::Result<SocketAddr> {
    if let Some(name) = socket.strip_prefix('@') {
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            return SocketAddr::from_abstract_name(name.as_bytes());
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = name;
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "abstract socket names exist only on Linux",
            ));
        }
    }
    if socket.starts_with('/') {
        return SocketAddr::from_pathname(socket);
    }
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("unsupported NOTIFY_SOCKET address {socket:?}"),
    ))
}

/// Send `state` to `$NOTIFY_SOCKET`. `Ok(false)` when not under systemd.
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var("NOTIFY_SOCKET") {
        Ok(socket) if !socket.is_empty() => send_to(&socket, state).map(|()| true),
        _ => Ok(false),
    }
}

fn notify_logged(state: &str) {
    match notify(state) {
        Ok(true) => debug!(state, "sd_notify sent"),
        Ok(false) => {}
        Err(e) => warn!(state, error = %e, "cannot notify systemd"),
    }
}

/// `READY=1`: startup finished (call once intake and the listener are up).
pub fn ready() {
    notify_logged("READY=1");
}

/// `STOPPING=1`: shutdown has begun.
pub fn stopping() {
    notify_logged("STOPPING=1");
}

/// `WATCHDOG=1`: still alive.
pub fn watchdog() {
    notify_logged("WATCHDOG=1");
}

/// `STATUS=...`: a one-line status shown by `systemctl status`. Newlines
/// would start a new assignment, so they become spaces.
pub fn status(msg: &str) {
    let line: String = msg
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    notify_logged(&format!("STATUS={line}"));
}

/// The watchdog timeout systemd expects pings within, from `$WATCHDOG_USEC`
/// (ignored when `$WATCHDOG_PID` names another process).
pub fn watchdog_timeout() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    Some(Duration::from_micros(usec))
}

/// Ping the watchdog at half its timeout until `stop` is cancelled. `None`
/// when systemd asked for no watchdog (or there is no `$NOTIFY_SOCKET`).
/// Must be called inside a tokio runtime.
pub fn spawn_watchdog(stop: CancellationToken) -> Option<JoinHandle<()>> {
    std::env::var_os("NOTIFY_SOCKET")?;
    let every = watchdog_timeout()? / 2;
    let every = every.max(Duration::from_millis(10));
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => watchdog(),
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_forms() {
        assert!(socket_addr("/run/systemd/notify").is_ok());
        assert!(socket_addr("@quai-test").is_ok());
        assert!(socket_addr("vsock:2:1234").is_err());
        assert!(socket_addr("relative/path").is_err());
    }
}
