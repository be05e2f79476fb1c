//! Every counter docs/api.md names moves when its event happens. One daemon
//! (one process-wide registry, so one test), scraped over its ops HTTP
//! listener before and after each event: a flow with a duplicate invoice
//! (bytes, flows, invoices by verdict — REJ_UNI counted as rejected —,
//! processing time, acknowledgements delivered), a report that cannot be
//! delivered, a digest the SMTP relay does not take, an SFTP server that is
//! not there, an AS2 message, a FIFO in a drop zone, a request naming a
//! foreign Host; and the standard process metrics and `quai_build_info`.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::common::*;

const WAIT: Duration = Duration::from_secs(30);

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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

/// One HTTP/1.1 request, the whole answer as text.
fn http(addr: SocketAddr, head: &str, body: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("ops listener");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

fn scrape(addr: SocketAddr) -> String {
    let reply = http(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        b"",
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    reply
}

/// The value of one series (`name{labels}` exactly as rendered); 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

/// Waits until `series` has grown past `before` by at least `by`.
async fn grows(addr: SocketAddr, series: &str, before: &str, by: f64) -> String {
    let start = Instant::now();
    loop {
        let now = scrape(addr);
        if value(&now, series) >= value(before, series) + by {
            return now;
        }
        assert!(
            start.elapsed() < WAIT,
            "{series} did not grow by {by}: {} then {}\n{now}",
            value(before, series),
            value(&now, series)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_counter_moves_when_its_event_happens() {
    let home = tempfile::tempdir().unwrap();
    identity(home.path());
    let smtp_port = closed_port();
    let sftp_port = closed_port();
    let text = format!(
        "[http]\nlisten = \"off\"\n[dropzones]\nstable_seconds = 1\n\
         [mail]\ntransport = \"smtp://127.0.0.1:{smtp_port}\"\nfrom = \"quai <edi@quai.example>\"\n\
         [as2]\nas2_id = \"QUAI\"\ncertificate = \"quai.crt\"\nkey = \"quai.key\"\n\
         [[partner]]\nid = \"acme\"\ncontacts = [\"edi@acme.example\"]\n\
         [[partner]]\nid = \"broken\"\n\
         [[partner]]\nid = \"remote\"\n[partner.sftp]\nurl = \"sftp://quai@127.0.0.1:{sftp_port}/in\"\n\
         [[partner]]\nid = \"globex\"\n[partner.as2]\nas2_id = \"GLOBEX\"\n"
    );
    std::fs::write(home.path().join("quai.toml"), text).unwrap();
    let config = quai::config::Config::load(&home.path().join("quai.toml")).unwrap();
    let mut d = TestDaemon {
        home,
        config,
        stop: Default::default(),
        task: None,
    };
    let addr = d.start();
    let start = Instant::now();
    let before = loop {
        match TcpStream::connect(addr) {
            Ok(_) => break scrape(addr),
            Err(_) if start.elapsed() < WAIT => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("the ops listener does not answer: {e}"),
        }
    };
    assert!(
        value(&before, "quai_process_start_time_seconds") > 0.0,
        "{before}"
    );
    // Prometheus conventions: build info, the standard process series.
    assert_eq!(
        value(
            &before,
            &format!(
                "quai_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        1.0,
        "{before}"
    );
    let started = value(&before, "process_start_time_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(started > now - 600.0 && started <= now + 1.0, "{before}");
    assert!(
        value(&before, "process_resident_memory_bytes") > 1e6,
        "{before}"
    );
    assert!(value(&before, "process_open_fds") > 3.0, "{before}");
    assert!(value(&before, "process_max_fds") >= value(&before, "process_open_fds"));
    assert!(
        before.contains("# TYPE process_cpu_seconds_total counter"),
        "{before}"
    );

    // A flow holding the same invoice twice: one accepted, one REJ_UNI.
    let flow = zip_of(&[
        ("a.xml", fixture("CII_example1.xml")),
        ("b.xml", fixture("CII_example1.xml")),
    ]);
    d.drop_file("acme", "twice.zip", &flow);
    let after = grows(
        addr,
        "quai_acks_delivered_total{kind=\"integration_report\"}",
        &before,
        1.0,
    )
    .await;
    let grew = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(
        grew("quai_bytes_in_total{partner=\"acme\"}"),
        flow.len() as f64
    );
    assert_eq!(
        grew("quai_intake_bytes_total{partner=\"acme\"}"),
        flow.len() as f64
    );
    assert!(
        grew("process_cpu_seconds_total") > 0.0,
        "the flow cost no CPU?"
    );
    assert_eq!(
        grew("quai_flows_received_total{partner=\"acme\",origin=\"dropzone\"}"),
        1.0
    );
    assert_eq!(
        grew("quai_invoices_processed_total{partner=\"acme\",verdict=\"accepted\"}"),
        1.0
    );
    assert_eq!(
        grew("quai_invoices_processed_total{partner=\"acme\",verdict=\"rejected\"}"),
        1.0,
        "the REJ_UNI duplicate is a rejected invoice"
    );
    assert_eq!(
        grew("quai_flow_processing_seconds_count{partner=\"acme\"}"),
        1.0
    );
    let spool = d.spool().await;
    let flows = spool.list_flows(&Default::default()).await.unwrap();
    assert_eq!(flows[0].invoices_rejected, 1, "{flows:?}");

    // A report that cannot be delivered: the partner's outbox is a file.
    let outbox = d.outbox("broken");
    std::fs::remove_dir_all(&outbox).unwrap();
    std::fs::write(&outbox, b"not a folder").unwrap();
    d.drop_file("broken", "one.xml", &fixture("CII_example1.xml"));
    let after = grows(
        addr,
        "quai_ack_delivery_failures_total{kind=\"integration_report\"}",
        &after,
        1.0,
    )
    .await;

    // A digest the SMTP relay does not take (nothing listens on its port).
    let app = quai::App::inspect(d.config.clone()).await.unwrap();
    let digest = quai::jobs::digest::run(&app).await.unwrap();
    assert!(!digest.failed.is_empty(), "{digest:?}");
    let after = grows(addr, "quai_smtp_failures_total", &after, 1.0).await;

    // An SFTP server that is not there.
    let mut poller = quai::jobs::sftp_poll::PartnerPoller::default();
    let outcome = poller.poll(&app, "remote").await;
    assert!(
        matches!(outcome, quai::jobs::RunOutcome::Failed(_)),
        "{outcome:?}"
    );
    let after = grows(
        addr,
        "quai_sftp_connection_failures_total{kind=\"connect\"}",
        &after,
        1.0,
    )
    .await;

    // An AS2 message (unsigned, synchronous MDN).
    let body = fixture("ubl-tc434-example2.xml");
    let head = format!(
        "POST /as2 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAS2-Version: 1.2\r\n\
         AS2-From: GLOBEX\r\nAS2-To: QUAI\r\nMessage-ID: <metrics-1@globex.example>\r\n\
         Content-Type: application/xml\r\nContent-Disposition: attachment; filename=\"inv.xml\"\r\n\
         Disposition-Notification-To: edi@globex.example\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let reply = http(addr, &head, &body);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let after = grows(
        addr,
        "quai_as2_messages_total{outcome=\"accepted\"}",
        &after,
        1.0,
    )
    .await;

    // A FIFO dropped in a partner's inbox is refused, never opened.
    let fifo = d.inbox("acme").join("pipe.xml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo (coreutils)");
    assert!(made.success());
    let after = grows(
        addr,
        "quai_intake_refused_total{partner=\"acme\",reason=\"fifo\"}",
        &after,
        1.0,
    )
    .await;

    // A request naming another host (DNS rebinding) is refused and counted.
    let reply = http(
        addr,
        "GET /api/status HTTP/1.1\r\nHost: rebind.example\r\nConnection: close\r\n\r\n",
        b"",
    );
    assert!(!reply.starts_with("HTTP/1.1 200"), "{reply}");
    grows(
        addr,
        "quai_http_refused_total{reason=\"host\"}",
        &after,
        1.0,
    )
    .await;

    d.stop().await;
}
