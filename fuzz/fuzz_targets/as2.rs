//! AS2 message bodies: MIME parsing, S/MIME (signed, enveloped,
//! compressed) layers, as the receiver opens them. The first line of the
//! input is the Content-Type header, the rest the body.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use openssl::x509::X509;
use quai_connectors::as2::{open_for_fuzzing, Identity, Partner};

/// A fixed, test-only identity (fuzz/as2_fixture/), so that the seed
/// messages scripts/fuzz.sh signs and encrypts with it open all the way.
const CERT: &[u8] = include_bytes!("../as2_fixture/cert.pem");
const KEY: &[u8] = include_bytes!("../as2_fixture/key.pem");

struct Fixture {
    identity: Identity,
    partner: Partner,
    store: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| Fixture {
        identity: Identity::from_pem("QUAI", CERT, KEY).expect("fuzz identity"),
        partner: Partner {
            partner_id: "fuzz".into(),
            as2_id: "FUZZ".into(),
            // The partner signs with the same test key.
            cert: Some(X509::from_pem(CERT).expect("fuzz certificate")),
            require_signed: false,
            require_encrypted: false,
            allow_async_mdn: false,
        },
        store: tempfile::tempdir().expect("temp dir"),
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let content_type = String::from_utf8_lossy(&data[..split]);
    let body = data.get(split + 1..).unwrap_or(&[]);
    if open_for_fuzzing(&f.identity, &f.partner, &content_type, body, f.store.path()) {
        // Landed payloads would fill the disk over millions of runs.
        for entry in std::fs::read_dir(f.store.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir_all(entry.path())
                .or_else(|_| std::fs::remove_file(entry.path()));
        }
    }
});
