//! Secrets and file modes, with a real `quai run` process (issue 9):
//!
//! * the SMTP password (password_file) and the ops API token (token_file)
//!   never appear in the logs, even at `trace` level, while both are used:
//!   a reject digest is sent with SMTP AUTH, API calls are made with a wrong
//!   and with the right token;
//! * the spool (the database and the raw flows) is readable by quai's user
//!   only, even when quai is started by hand under the common umask 022.

mod support;

use quai_test_support::smtp;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::common::*;
use support::hostile::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `quai run` under umask 022, stderr to `log`.
fn start(config: &Path, log: &Path, level: &str) -> Child {
    let err = std::fs::File::create(log).unwrap();
    Command::new("sh")
        .arg("-c")
        .arg("umask 022; exec \"$0\" run --config \"$1\"")
        .arg(env!("CARGO_BIN_EXE_quai"))
        .arg(config)
        .env("QUAI_LOG", level)
        .env("QUAI_LOG_FORMAT", "text")
        .stdout(Stdio::null())
        .stderr(Stdio::from(err))
        .spawn()
        .expect("start quai")
}

fn sigterm(mut child: Child) {
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn http_get(port: u16, path: &str, token: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_never_logged() {
    let password = "SmtpPw-hostile-9F3k";
    let token = "OpsTok-hostile-Q7zX";
    let server = smtp::Smtp::start_with_auth("quai", password);
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("smtp.password"), format!("{password}\n")).unwrap();
    std::fs::write(home.path().join("ops.token"), format!("{token}\n")).unwrap();
    let port = free_port();
    let config_path = home.path().join("quai.toml");
    std::fs::write(
        &config_path,
        format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\ntoken_file = \"ops.token\"\n\
             [mail]\ntransport = \"{}\"\nfrom = \"quai <edi@platform.example>\"\n\
             username = \"quai\"\npassword_file = \"smtp.password\"\n\
             [schedule]\nreject_digest = \"*/2 * * * * *\"\n\
             [dropzones]\nstable_seconds = 1\n[processing]\nworkers = 1\n\
             [[partner]]\nid = \"acme\"\ncontacts = [\"edi@acme.example\"]\n",
            server.url()
        ),
    )
    .unwrap();
    let config = quai::config::Config::load(&config_path).unwrap();
    let log = home.path().join("quai.log");
    let child = start(&config_path, &log, "trace");

    // A rejected invoice, so that a digest is owed and sent with AUTH.
    let inbox = config.inbound_root.clone().unwrap().join("acme");
    std::fs::create_dir_all(&inbox).unwrap();
    let bad = String::from_utf8(ubl_numbered(
        &fixture_str("ubl-tc434-example2.xml"),
        "SECRET-1",
    ))
    .unwrap()
    .replace(
        "<cbc:PayableAmount currencyID=\"NOK\">801.78</cbc:PayableAmount>",
        "<cbc:PayableAmount currencyID=\"NOK\">1.78</cbc:PayableAmount>",
    );
    std::fs::write(inbox.join("bad.xml.part"), bad).unwrap();
    std::fs::rename(inbox.join("bad.xml.part"), inbox.join("bad.xml")).unwrap();
    wait_for("the digest e-mail", Duration::from_secs(60), || {
        !server.messages().is_empty()
    })
    .await;
    assert_eq!(server.messages()[0].auth_login.as_deref(), Some("quai"));

    // The API with a wrong token, then the right one.
    let wrong = http_get(port, "/api/status", "not-the-token");
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    let right = http_get(port, "/api/status", token);
    assert!(right.starts_with("HTTP/1.1 200"), "{right}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    sigterm(child);

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines().count() > 50 && text.contains("TRACE"),
        "the log is not at trace level ({} lines)",
        text.lines().count()
    );
    let forms = [
        password.to_string(),
        token.to_string(),
        base64(password.as_bytes()),
        base64(format!("\0quai\0{password}").as_bytes()),
        base64(token.as_bytes()),
    ];
    for secret in &forms {
        let hits: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(secret.as_str()))
            .collect();
        assert!(
            hits.is_empty(),
            "secret {secret:?} logged:\n{}",
            hits.join("\n")
        );
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_files_are_private_to_quai_even_under_umask_022() {
    let base = tempfile::tempdir().unwrap();
    // quai creates its home: only the configuration exists beforehand.
    let etc = base.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    let home = base.path().join("var");
    let config_path = etc.join("quai.toml");
    std::fs::write(
        &config_path,
        format!(
            "[spool]\nurl = \"sqlite://{h}/spool.db\"\nstore = \"{h}/flows\"\n\
             [dropzones]\ninbound = \"{h}/inbound\"\noutbound = \"{h}/outbound\"\nstable_seconds = 1\n\
             [http]\nlisten = \"off\"\n[mail]\ntransport = \"file://{h}/mail\"\n",
            h = home.display()
        ),
    )
    .unwrap();
    let log = base.path().join("quai.log");
    let child = start(&config_path, &log, "info");
    let inbox = home.join("inbound/acme");
    wait_for("the drop zones", Duration::from_secs(30), || {
        home.join("inbound").exists()
    })
    .await;
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join("a.xml.part"), fixture("ubl-tc434-example2.xml")).unwrap();
    std::fs::rename(inbox.join("a.xml.part"), inbox.join("a.xml")).unwrap();
    let outbox = home.join("outbound/acme");
    wait_for("the report", Duration::from_secs(30), || {
        outbox.join("a.xml.1.report.json").exists()
    })
    .await;
    let wal_seen = home.join("spool.db-wal").exists();
    sigterm(child);

    // What holds partners' data and quai's state: no access for group or others.
    let mut private: Vec<PathBuf> = vec![home.join("spool.db"), home.join("flows")];
    if wal_seen && home.join("spool.db-wal").exists() {
        private.push(home.join("spool.db-wal"));
    }
    private.extend(files_under(&home.join("flows")));
    for d in std::fs::read_dir(home.join("flows")).unwrap() {
        private.push(d.unwrap().path());
    }
    let mut open = Vec::new();
    for p in &private {
        let m = mode(p);
        eprintln!("{:o} {}", m, p.display());
        if m & 0o077 != 0 {
            open.push(format!(
                "{:o} {}",
                m,
                p.strip_prefix(&home).unwrap().display()
            ));
        }
    }
    for p in [
        home.clone(),
        home.join("outbound"),
        outbox.join("a.xml.1.report.json"),
    ] {
        eprintln!("(informative) {:o} {}", mode(&p), p.display());
    }
    assert!(
        open.is_empty(),
        "spool files readable by others under umask 022: {open:?}"
    );
}
