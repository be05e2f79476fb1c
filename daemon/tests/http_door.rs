//! The ops listener bounds slow and greedy clients (issue 14, class 5),
//! through the real daemon (`quai::run` in-process, its listener on
//! 127.0.0.1) and real TCP clients: a slowloris client trickling its
//! headers, an AS2 body trickled under the minimum rate, connections over
//! the cap, Host headers of a DNS-rebinding page, a 200 MB canonical
//! invoice, and query values that once overflowed. Every wait is a bounded
//! loop.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use quai::config::Config;
use support::common::{test_config, TestDaemon};
use support::http::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A daemon whose configuration is `toml` (plus the tests' usual settings).
fn daemon_with(toml: &str) -> TestDaemon {
    let mut d = TestDaemon::new();
    let path = d.home.path().join("quai.toml");
    std::fs::write(&path, toml).unwrap();
    let parsed = Config::load(&path).unwrap_or_else(|e| panic!("config: {e}"));
    let base = test_config(d.home.path());
    d.config = Config {
        http_listen: None,
        stable_seconds: base.stable_seconds,
        workers: base.workers,
        lease_seconds: base.lease_seconds,
        ..parsed
    };
    d
}

/// Read until the peer closes (Ok(bytes)) or `within` passes (Err).
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> Result<Vec<u8>, Vec<u8>> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(got);
        }
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return Err(got),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_headers_are_cut_at_the_header_deadline() {
    let mut d = daemon_with("[http]\nheader_timeout_seconds = 1\n");
    let addr = d.start();
    wait_up(addr).await;

    // Headers trickled a byte every 100 ms, never finished: at most 60
    // bytes (6 s) are sent; the listener must close after about 1 s.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /api/status HTTP/1.1\r\n").await.unwrap();
    let started = Instant::now();
    let mut closed = false;
    for _ in 0..60 {
        if s.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            // hyper may answer 408 before closing
            Ok(Ok(_)) => {}
            Err(_) => {}
        }
    }
    let took = started.elapsed();
    assert!(
        closed,
        "a trickled header was still accepted after {took:?}"
    );
    assert!(
        took < Duration::from_secs(4),
        "closed only after {took:?} (header_timeout_seconds = 1)"
    );

    // An idle connection that never sends a byte is closed too.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    assert!(
        read_until_closed(&mut idle, Duration::from_secs(5))
            .await
            .is_ok(),
        "an idle connection stayed open"
    );
    assert!(started.elapsed() < Duration::from_secs(4));

    // Others are served meanwhile and after.
    assert_eq!(get(addr, "/healthz", &[]).await.status, 200);
    let m = get(addr, "/metrics", &[]).await.text();
    assert!(
        m.contains("quai_http_refused_total{reason=\"header_timeout\"}"),
        "{m}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_get_503_and_slots_come_back() {
    let mut d = daemon_with("[http]\nmax_connections = 4\nheader_timeout_seconds = 30\n");
    let addr = d.start();
    wait_up(addr).await;

    // Four idle connections hold every slot.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A fifth is answered 503 at once and closed.
    let mut fifth = TcpStream::connect(addr).await.unwrap();
    let answer = read_until_closed(&mut fifth, Duration::from_secs(5))
        .await
        .expect("the fifth connection is closed at once");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");

    // Slots come back when the holders leave.
    drop(held);
    let mut ok = false;
    for _ in 0..50 {
        let r = get(addr, "/healthz", &[]).await;
        if r.status == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ok,
        "the listener did not serve again once connections closed"
    );
    let m = get(addr, "/metrics", &[]).await.text();
    assert!(
        m.contains("quai_http_refused_total{reason=\"max_connections\"} "),
        "{m}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_only_the_listeners_own_names_are_answered() {
    let mut d = daemon_with("[http]\nallowed_hosts = [\"quai.internal\", \"ops.example:8443\"]\n");
    let addr = d.start();
    wait_up(addr).await;
    let port = addr.port();
    let ask = |host: String| async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!("GET /api/status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let raw = read_until_closed(&mut s, Duration::from_secs(10))
            .await
            .expect("an answer");
        let text = String::from_utf8_lossy(&raw).into_owned();
        text.split(' ').nth(1).unwrap_or("").to_string()
    };
    for ok in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "127.0.0.1".to_string(),
        format!("[::1]:{port}"),
        "quai.internal".to_string(),
        format!("QUAI.internal:{port}"),
        "ops.example:8443".to_string(),
    ] {
        assert_eq!(ask(ok.clone()).await, "200", "Host: {ok}");
    }
    for bad in [
        format!("attacker.example:{port}"),
        format!("rebind.attacker.example:{port}"),
        "ops.example:9999".to_string(),
        String::new(),
    ] {
        assert_eq!(ask(bad.clone()).await, "421", "Host: {bad:?}");
    }
    // The status page and /healthz are behind the same check.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let raw = read_until_closed(&mut s, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 421"));
    d.stop().await;

    // With a token the check is the token's: any Host with the token works.
    let mut d = daemon_with("[http]\ntoken_file = \"token\"\n");
    std::fs::write(d.home.path().join("token"), "s3cret\n").unwrap();
    let addr = d.start();
    wait_up(addr).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"GET /api/status HTTP/1.1\r\nHost: quai.behind-a-proxy.example\r\n\
Authorization: Bearer s3cret\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let raw = read_until_closed(&mut s, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 200"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_as2_body_is_cut_at_the_minimum_rate_and_nothing_is_stored() {
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/as2_fixture");
    let cert = keys.join("cert.pem");
    let key = keys.join("key.pem");
    let toml = format!(
        "[http]\nbody_timeout_seconds = 1\nbody_min_rate = 1000\n\
         [as2]\nas2_id = \"QUAI\"\ncertificate = \"{c}\"\nkey = \"{k}\"\n\
         [[partner]]\nid = \"acme\"\n[partner.as2]\nas2_id = \"ACME\"\ncertificate = \"{c}\"\n",
        c = cert.display(),
        k = key.display()
    );
    let mut d = daemon_with(&toml);
    let addr = d.start();
    wait_up(addr).await;

    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!(
            "POST /as2 HTTP/1.1\r\nHost: {addr}\r\nAS2-From: ACME\r\nAS2-To: QUAI\r\n\
Message-ID: <trickle@acme>\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\
Content-Length: 100000\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // 10 bytes every 100 ms (100 B/s, a tenth of the minimum), at most 80
    // times: the listener must give up after about 1 s.
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut closed = false;
    for _ in 0..80 {
        if s.write_all(&[b'A'; 10]).await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let took = started.elapsed();
    assert!(
        closed || !answer.is_empty(),
        "a body trickled at 100 B/s was still being read after {took:?}"
    );
    assert!(took < Duration::from_secs(5), "cut only after {took:?}");
    let text = String::from_utf8_lossy(&answer);
    assert!(
        !text.contains("processed"),
        "a cut body must not be acknowledged: {text}"
    );
    // Nothing registered.
    let spool = d.spool().await;
    let flows = spool
        .list_flows(&quai_spool::FlowFilter::default())
        .await
        .unwrap();
    assert!(flows.is_empty(), "{flows:?}");
    let m = get(addr, "/metrics", &[]).await.text();
    assert!(
        m.contains("quai_http_refused_total{reason=\"body_rate\"} "),
        "{m}"
    );
    d.stop().await;
}

/// Resident memory of this process, KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A flow with one invoice whose canonical JSON is `mb` MB of lines.
async fn seed_huge_invoice(config: &Config, mb: usize) -> (i64, usize) {
    let spool = quai::open_spool(config).await.unwrap();
    let mut json = String::with_capacity(mb << 20 | 1024);
    json.push_str("{\"number\":\"HUGE-1\",\"lines\":[");
    let mut i = 0u64;
    while json.len() < mb << 20 {
        if i > 0 {
            json.push(',');
        }
        // varied enough that it does not compress to nothing
        let _ = std::fmt::Write::write_fmt(
            &mut json,
            format_args!(
                "{{\"id\":\"{i}\",\"name\":\"article {}\",\"quantity\":\"{}.{:02}\",\"net\":\"{}\"}}",
                i.wrapping_mul(2654435761) % 1_000_003,
                i % 97,
                i % 100,
                i.wrapping_mul(40503) % 99_991
            ),
        );
        i += 1;
    }
    json.push_str("]}");
    let len = json.len();
    let mut inv = support::seed::invoice(
        0,
        "huge.xml",
        Some("HUGE-1"),
        Some("2026-11-30"),
        Some("100.00"),
        Vec::new(),
    );
    inv.canonical_json = Some(json);
    let id = support::seed::seed_flow_with(
        &spool,
        "acme",
        "huge.xml",
        quai_spool::Origin::Dropzone,
        vec![inv],
        false,
    )
    .await;
    (id, len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_canonical_invoice_is_refused_by_default_and_streamed_when_allowed() {
    // Default max_response_bytes (64 MiB): refused without building it.
    let mut d = daemon_with("");
    let (id, len) = seed_huge_invoice(&d.config, 200).await;
    let addr = d.start();
    wait_up(addr).await;
    let r = get(addr, &format!("/api/flows/{id}/invoices/0"), &[]).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("max_response_bytes"), "{}", r.text());
    d.stop().await;

    // Allowed: streamed, the process never holding the whole document.
    let home = d.home;
    let toml = "[http]\nmax_response_bytes = \"256MiB\"\n";
    std::fs::write(home.path().join("quai.toml"), toml).unwrap();
    let parsed = Config::load(&home.path().join("quai.toml")).unwrap();
    let base = test_config(home.path());
    let mut d = TestDaemon {
        home,
        config: Config {
            http_listen: None,
            workers: base.workers,
            lease_seconds: base.lease_seconds,
            stable_seconds: base.stable_seconds,
            ..parsed
        },
        stop: Default::default(),
        task: None,
    };
    let addr = d.start();
    wait_up(addr).await;
    let before = rss_kib();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!(
            "GET /api/flows/{id}/invoices/0 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // Count the bytes without keeping them; check the start and the end.
    let mut head = Vec::new();
    let mut tail = Vec::new();
    let mut total = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "streaming took over 120 s");
        let n = tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf))
            .await
            .expect("data within 30 s")
            .unwrap();
        if n == 0 {
            break;
        }
        if head.len() < 4096 {
            head.extend_from_slice(&buf[..n.min(4096)]);
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > 8192 {
            tail.drain(..tail.len() - 8192);
        }
        total += n;
    }
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    let grown_mib = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(before)
        / 1024;
    eprintln!("streamed {total} bytes for a {len}-byte invoice; peak RSS growth {grown_mib} MiB");
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("{\"number\":\"HUGE-1\""), "{head}");
    assert!(total > len, "got {total} bytes of {len}");
    assert!(
        String::from_utf8_lossy(&tail).contains("\"}]}"),
        "the end of the document is missing"
    );
    assert!(
        grown_mib < 100,
        "serving a {} MB invoice grew the process by {grown_mib} MiB: it was built whole",
        len >> 20
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_detail_over_max_response_bytes_is_refused_before_it_is_built() {
    let mut d = daemon_with("[http]\nmax_response_bytes = \"10KiB\"\n");
    let spool = quai::open_spool(&d.config).await.unwrap();
    let docs = |n: i64| -> Vec<quai_spool::NewInvoice> {
        (0..n)
            .map(|i| {
                support::seed::invoice(i, "f.xml", Some(&format!("N-{i}")), None, None, Vec::new())
            })
            .collect()
    };
    let small = support::seed::seed_flow_with(
        &spool,
        "acme",
        "small.xml",
        quai_spool::Origin::Dropzone,
        docs(2),
        false,
    )
    .await;
    let big = support::seed::seed_flow_with(
        &spool,
        "acme",
        "big.zip",
        quai_spool::Origin::Dropzone,
        docs(40),
        false,
    )
    .await;
    let addr = d.start();
    wait_up(addr).await;
    let r = get(addr, &format!("/api/flows/{small}"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = get(addr, &format!("/api/flows/{big}"), &[]).await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.text().contains("40 invoices"), "{}", r.text());
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_values_are_400_in_the_api_and_an_error_in_the_cli() {
    let mut d = daemon_with("");
    let addr = d.start();
    wait_up(addr).await;
    for q in [
        "since=99999999999999d",
        "since=9223372036854775807s",
        "since=106751991167301d",
        "since=-5d",
        "since=1y",
        "limit=99999999999999999999999",
        "limit=0",
        "limit=abc",
        "state=nope",
    ] {
        let r = get(addr, &format!("/api/flows?{q}"), &[]).await;
        assert_eq!(r.status, 400, "?{q}: {}", r.text());
    }
    for q in [
        "stuck_minutes=99999999999999999999",
        "stuck_minutes=9223372036854775807",
    ] {
        let r = get(addr, &format!("/api/overview?{q}"), &[]).await;
        assert!(r.status == 400 || r.status == 200, "?{q}: {}", r.status);
        let r = get(addr, &format!("/?{q}"), &[]).await;
        assert!(r.status == 400 || r.status == 200, "/?{q}: {}", r.status);
    }
    // Still alive: nothing panicked.
    assert_eq!(get(addr, "/api/status", &[]).await.status, 200);
    d.stop().await;

    // The CLI parses the same values with the same code.
    let toml = d.home.path().join("cli.toml");
    std::fs::write(&toml, "[http]\nlisten = \"off\"\n").unwrap();
    for since in ["99999999999999d", "9223372036854775807s", "3000000000000h"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_quai"))
            .args([
                "--config",
                toml.to_str().unwrap(),
                "flows",
                "--since",
                since,
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--since {since} succeeded");
        assert!(!err.contains("panicked"), "--since {since}: {err}");
        assert!(err.contains("too far back"), "--since {since}: {err}");
    }
}

async fn wait_up(addr: SocketAddr) {
    for _ in 0..100 {
        if let Ok(Ok(mut s)) =
            tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await
        {
            let req = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            if s.write_all(req.as_bytes()).await.is_ok() {
                let mut buf = Vec::new();
                if let Ok(Ok(_)) =
                    tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf)).await
                {
                    if buf.starts_with(b"HTTP/1.1 200") {
                        return;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the daemon's listener did not come up");
}
