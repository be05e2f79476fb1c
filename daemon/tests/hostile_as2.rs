//! A tampered signed AS2 message must cost nothing once answered. Found by
//! the `as2` fuzz target (LeakSanitizer: 272 bytes leaked in libcrypto per
//! message): a detached signature whose digest algorithm is unknown,
//! verified over non-empty content by `connectors/src/as2/smime.rs`
//! (`verify_detached` → `openssl::pkcs7::Pkcs7::verify`, i.e. OpenSSL's
//! PKCS7_verify, fails with "unknown digest type" and leaks ~340 bytes per
//! call with Debian 12's OpenSSL 3.0). Any sender that names a known AS2-From
//! can repeat it.
//!
//! The message is opened exactly as the receiver opens it
//! (`quai_connectors::as2::open_for_fuzzing`), thousands of times, and the
//! resident memory of this process (alone in its test binary) must not grow
//! with the count. The input is the one the fuzzer found
//! (`fuzz/regressions/`), signed with the throwaway key of
//! `fuzz/as2_fixture/`.

use std::path::{Path, PathBuf};

use quai_connectors::as2::{open_for_fuzzing, Identity, IdentityConfig, Partner, PartnerConfig};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/as2_fixture")
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The input the fuzzer found, in the fuzz target's format (Content-Type
/// line, then the body): a multipart/signed message made with the fixture
/// key, its signed part's headers and its signature mutated.
fn regression_input() -> (String, Vec<u8>) {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions/as2-leak-signed-broken-part");
    let raw = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let nl = raw.iter().position(|&b| b == b'\n').unwrap();
    (
        String::from_utf8_lossy(&raw[..nl]).into_owned(),
        raw[nl + 1..].to_vec(),
    )
}

#[test]
fn tampered_signed_messages_do_not_grow_memory() {
    let dir = tempfile::tempdir().unwrap();
    let keys = fixture_dir();
    let identity = Identity::load(&IdentityConfig {
        as2_id: "QUAI".into(),
        certificate: keys.join("cert.pem"),
        key: keys.join("key.pem"),
    })
    .unwrap();
    let partner = Partner::load(&PartnerConfig {
        partner_id: "acme".into(),
        as2_id: "ACME".into(),
        certificate: Some(keys.join("cert.pem")),
        require_signed: true,
        require_encrypted: false,
        allow_async_mdn: false,
    })
    .unwrap();
    let (content_type, body) = regression_input();
    let store = dir.path().join("store");
    let open = || open_for_fuzzing(&identity, &partner, &content_type, &body, &store);
    for _ in 0..500 {
        assert!(!open(), "a tampered message must not be landed");
    }
    let before = rss_kib();
    let n = 10_000;
    for _ in 0..n {
        assert!(!open());
    }
    let grown = rss_kib().saturating_sub(before);
    eprintln!("{n} tampered messages: resident memory grew by {grown} KiB");
    assert!(
        grown < 1024,
        "resident memory grew by {grown} KiB over {n} tampered messages ({} bytes each)",
        grown * 1024 / n
    );
}
