//! AS2 through the daemon: a message asking for an asynchronous MDN is
//! registered as a flow, and its MDN is owed in the spool and POSTed to the
//! partner's Receipt-Delivery-Option URL by the acknowledgement deliverer,
//! retried (attempts tracked) until the partner's server takes it.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use quai_spool::AckKind;
use support::common::*;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Our AS2 identity: a throwaway self-signed certificate.
fn identity(dir: &std::path::Path) {
    let status = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=QUAI", "-days", "2",
        ])
        .arg("-keyout")
        .arg(dir.join("quai.key"))
        .arg("-out")
        .arg(dir.join("quai.crt"))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl CLI (Debian's openssl package)");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_mdn_is_tracked_in_the_spool_and_retried_until_delivered() {
    let home = tempfile::tempdir().unwrap();
    identity(home.path());
    let mdn_port = free_port(); // nothing listens there yet: first tries fail
    let text = format!(
        "[http]\nlisten = \"off\"\n[dropzones]\nstable_seconds = 1\n\
         [as2]\nas2_id = \"QUAI\"\ncertificate = \"quai.crt\"\nkey = \"quai.key\"\n\
         [[partner]]\nid = \"acme\"\n[partner.as2]\nas2_id = \"ACME\"\nmdn_url = \"http://127.0.0.1:{mdn_port}/mdn\"\n"
    );
    std::fs::write(home.path().join("quai.toml"), text).unwrap();
    let config = quai::config::Config::load(&home.path().join("quai.toml")).unwrap();
    let mut d = TestDaemon {
        home,
        config,
        stop: Default::default(),
        task: None,
    };
    let http = d.start().port();

    // An unsigned, unencrypted AS2 message asking for an asynchronous MDN.
    let body = fixture("ubl-tc434-example2.xml");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", http)) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => {
                if d.task.as_ref().is_some_and(|t| t.is_finished()) {
                    let err = d.task.take().unwrap().await.unwrap();
                    panic!("the daemon stopped: {err:?}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("daemon not listening: {e}"),
        }
    };
    let head = format!(
        "POST /as2 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAS2-Version: 1.2\r\n\
         AS2-From: ACME\r\nAS2-To: QUAI\r\nMessage-ID: <async-1@acme.example>\r\n\
         Content-Type: application/xml\r\nContent-Disposition: attachment; filename=\"inv.xml\"\r\n\
         Disposition-Notification-To: edi@acme.example\r\n\
         Receipt-Delivery-Option: http://127.0.0.1:{mdn_port}/mdn\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");

    // The MDN is owed in the spool and its first deliveries fail.
    let spool = d.spool().await;
    let flow_id = loop {
        let flows = spool.list_flows(&Default::default()).await.unwrap();
        if let Some(f) = flows.first() {
            let acks = spool.acks_of_flow(f.id).await.unwrap();
            if let Some(mdn) = acks.iter().find(|a| a.kind == AckKind::Mdn) {
                if mdn.attempts >= 1 {
                    assert!(mdn.delivered_at.is_none());
                    assert!(mdn.last_error.is_some());
                    assert_eq!(mdn.destination, format!("http://127.0.0.1:{mdn_port}/mdn"));
                    break f.id;
                }
            }
        }
        assert!(Instant::now() < deadline, "no MDN attempt recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // The partner's server comes up: the next pass delivers it.
    let listener = TcpListener::bind(("127.0.0.1", mdn_port)).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if let Some(h) = text.find("\r\n\r\n") {
                let len = text[..h]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if got.len() >= h + 4 + len {
                    break;
                }
            }
        }
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        String::from_utf8_lossy(&got).into_owned()
    });
    let request = server.join().unwrap();
    assert!(request.starts_with("POST /mdn"), "{request}");
    assert!(
        request
            .to_ascii_lowercase()
            .contains("disposition-notification"),
        "{request}"
    );
    assert!(
        request.contains("async-1@acme.example"),
        "the MDN names the original message"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let acks = spool.acks_of_flow(flow_id).await.unwrap();
        let mdn = acks.iter().find(|a| a.kind == AckKind::Mdn).unwrap();
        if mdn.delivered_at.is_some() {
            assert!(mdn.attempts >= 2, "retried: {} attempts", mdn.attempts);
            break;
        }
        assert!(Instant::now() < deadline, "MDN never marked delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    d.stop().await;
}
