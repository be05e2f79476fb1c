//! AS2 message bodies: MIME parsing, S/MIME (signed, enveloped,
//! compressed) layers, as the receiver opens them. The first line of the
//! input is the Content-Type header, the rest the body.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::{X509NameBuilder, X509};
use quai_connectors::as2::{open_for_fuzzing, Identity, Partner};

struct Fixture {
    identity: Identity,
    partner: Partner,
    store: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "quai fuzz").unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(365).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        let cert = b.build();
        Fixture {
            identity: Identity {
                as2_id: "QUAI".into(),
                cert: cert.clone(),
                key,
            },
            partner: Partner {
                partner_id: "fuzz".into(),
                as2_id: "FUZZ".into(),
                cert: Some(cert),
                require_signed: false,
                require_encrypted: false,
                allow_async_mdn: false,
            },
            store: tempfile::tempdir().unwrap(),
        }
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
