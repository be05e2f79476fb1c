//! The clamd client against a real clamd (`quai_test_support::clamd`), on
//! its unix socket and over TCP: clean and infected streams, chunking of
//! any write size, clamd refusing a stream over its StreamMaxLength, clamd
//! gone, and a server that never answers (bounded by the timeout).

use std::io::Read;
use std::time::{Duration, Instant};

use quai_connectors::antivirus::{Clamd, ClamdAddress, ClamdError, Verdict};
use quai_test_support::clamd::{self, EICAR, EICAR_SIGNATURE};

fn over(addr: &str) -> Clamd {
    Clamd::new(ClamdAddress::parse(addr).unwrap(), Duration::from_secs(10))
}

#[test]
fn clean_and_infected_streams_over_unix_and_tcp() {
    let server = clamd::Clamd::start_with_tcp("1M");
    let unix = over(&server.address());
    let tcp = over(&format!("tcp://127.0.0.1:{}", server.tcp_port.unwrap()));
    for c in [&unix, &tcp] {
        c.ping().unwrap();
        assert_eq!(
            c.scan_reader(&mut &b"an honest invoice"[..]).unwrap(),
            Verdict::Clean
        );
        assert_eq!(
            c.scan_reader(&mut &EICAR[..]).unwrap(),
            Verdict::Infected(EICAR_SIGNATURE.into())
        );
        // Written a byte at a time, with clean bytes around it: one stream.
        let mut scan = c.scan().unwrap();
        scan.write(&[b' '; 100_000]).unwrap();
        for b in EICAR {
            scan.write(&[*b]).unwrap();
        }
        scan.write(&[b'\n'; 3]).unwrap();
        assert_eq!(
            scan.finish().unwrap(),
            Verdict::Infected(EICAR_SIGNATURE.into())
        );
    }
    // Over StreamMaxLength (1M here): clamd refuses, and says so.
    let mut big = std::io::repeat(b'a').take(3 << 20);
    match unix.scan_reader(&mut big) {
        Err(ClamdError::Refused { message, .. }) => {
            assert!(message.contains("size limit"), "{message}")
        }
        other => panic!("a stream over StreamMaxLength gave {other:?}"),
    }
}

#[test]
fn clamd_gone_or_silent_is_an_error_never_a_verdict() {
    let mut server = clamd::Clamd::start();
    let c = over(&server.address());
    c.ping().unwrap();
    server.stop();
    assert!(matches!(
        c.scan_reader(&mut &EICAR[..]),
        Err(ClamdError::Unavailable { .. })
    ));
    assert!(matches!(
        over("unix:/nonexistent/clamd.sock").ping(),
        Err(ClamdError::Unavailable { .. })
    ));

    // A server that accepts and never answers: bounded by the timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let keep = std::thread::spawn(move || {
        let (s, _) = silent.accept().unwrap();
        std::thread::sleep(Duration::from_secs(4));
        drop(s);
    });
    let c = Clamd::new(
        ClamdAddress::parse(&format!("tcp://127.0.0.1:{port}")).unwrap(),
        Duration::from_secs(1),
    );
    let started = Instant::now();
    let r = c.scan_reader(&mut &b"x"[..]);
    assert!(matches!(r, Err(ClamdError::Timeout { .. })), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    keep.join().unwrap();
}
