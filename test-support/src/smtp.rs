//! A real SMTP server for tests: aiosmtpd (PyPI) run from the test venv as a
//! child process on 127.0.0.1 and a free port, writing every message it
//! receives into a temp folder (raw `.eml` + decoded `.json`, see
//! `test-support/peers/smtp_sink.py`). Stoppable and restartable on the
//! same port (the "SMTP down" tests); killed on drop.
//!
//! The venv is the test venv ([`crate::venv`]). A missing venv, Python or
//! aiosmtpd FAILS the test (never a skip).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Smtp {
    pub port: u16,
    pub dir: tempfile::TempDir,
    auth: Option<String>,
    child: Option<Child>,
}

/// One received message, decoded by the server.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub auth_login: Option<String>,
    pub subject: String,
    pub from: String,
    pub to: String,
    pub message_id: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub attachments: Vec<ReceivedAttachment>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct ReceivedAttachment {
    pub filename: Option<String>,
    pub content_type: String,
    pub content: String,
}

/// The test venv's python, checked to have aiosmtpd.
pub fn venv_python() -> PathBuf {
    crate::venv::python_with(&["aiosmtpd"])
}

impl Smtp {
    pub fn start() -> Smtp {
        Smtp::start_inner(None)
    }

    /// A server that requires AUTH with these credentials.
    pub fn start_with_auth(user: &str, password: &str) -> Smtp {
        Smtp::start_inner(Some(format!("{user}:{password}")))
    }

    fn start_inner(auth: Option<String>) -> Smtp {
        let mut s = Smtp {
            port: crate::free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
            auth,
            child: None,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let python = venv_python();
        let script = crate::peers_dir().join("smtp_sink.py");
        let mut cmd = Command::new(python);
        cmd.arg(&script)
            .arg(self.port.to_string())
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(a) = &self.auth {
            cmd.arg(a);
        }
        let mut child = cmd.spawn().expect("cannot start the SMTP test server");
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the SMTP test server exited at start: {status}");
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the SMTP test server did not listen on {} in time",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Some(child);
    }

    /// `smtp://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Stop the server (connections are then refused).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && start.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Start again on the same port, keeping the received messages.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Messages received so far, in order.
    pub fn messages(&self) -> Vec<Received> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| {
                        p.extension().is_some_and(|x| x == "json")
                            && !p.file_name().unwrap().to_string_lossy().starts_with('.')
                    })
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
            .iter()
            .map(|p| {
                serde_json::from_slice(&std::fs::read(p).unwrap())
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            })
            .collect()
    }

    /// The raw bytes of the n-th message (0-based).
    pub fn raw(&self, n: usize) -> String {
        String::from_utf8_lossy(
            &std::fs::read(self.dir.path().join(format!("{:06}.eml", n + 1))).unwrap(),
        )
        .into_owned()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
