//! Hostile input, end to end through the daemon (issue 9).
//!
//! Every file here is what a hostile or broken partner may drop: each must
//! be answered with an integration report carrying a reason (an IRR_* code
//! for a flow refused as a whole, a rule per document otherwise), leave the
//! daemon running, leave nothing behind in the drop zone, and never hold up
//! the good flows another partner drops at the same time.
//!
//! The library-level tests of the same cases live next to the code
//! (`mappings/tests/unpack.rs`, `mappings/src/xml.rs`,
//! `mappings/tests/edifact.rs`); memory-bound cases (bombs, a 64 MB text
//! node) are in `hostile_memory.rs`, alone in their binary so that peak
//! memory can be measured.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use quai::config::Config;
use quai_spool::FlowState;
use serde_json::Value;
use support::common::*;
use support::hostile::*;

const WAIT: Duration = Duration::from_secs(90);
const BYSTANDER: &str = "bystander";

/// What a hostile flow must come to.
enum Expect {
    /// Refused as a whole with this code; the message contains `hint`.
    Rejected {
        code: &'static str,
        hint: &'static str,
    },
    /// Read; the report is checked by the function.
    Processed(fn(&Value) -> Result<(), String>),
}

struct Case {
    name: String,
    bytes: Vec<u8>,
    expect: Expect,
}

fn rejected(name: &str, bytes: Vec<u8>, code: &'static str, hint: &'static str) -> Case {
    Case {
        name: name.to_string(),
        bytes,
        expect: Expect::Rejected { code, hint },
    }
}

fn ubl() -> String {
    fixture_str("ubl-tc434-example2.xml")
}

fn mappings_fixture(rel: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mappings/tests/fixtures")
        .join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A UBL invoice preceded by a DOCTYPE holding `internal` subset text, with
/// `reference` placed in the invoice note.
fn ubl_with_doctype(number: &str, internal: &str, reference: &str) -> Vec<u8> {
    let doc = String::from_utf8(ubl_numbered(&ubl(), number)).unwrap();
    let doc = doc.replacen(
        "<Invoice ",
        &format!("<!DOCTYPE Invoice [{internal}]>\n<Invoice "),
        1,
    );
    let doc = doc.replacen(
        "<cbc:Note>Ordered in our booth at the convention</cbc:Note>",
        &format!("<cbc:Note>{reference}</cbc:Note>"),
        1,
    );
    assert!(doc.contains(reference));
    doc.into_bytes()
}

/// The cases handled by one daemon at once.
fn cases(canary: &Path) -> Vec<Case> {
    let ubl = ubl();
    let mut out = Vec::new();

    out.push(rejected(
        "empty.xml",
        Vec::new(),
        "IRR_VIDE_F",
        "no document",
    ));
    let mut random = noise(0x5eed, 4096);
    random[0] = 0x42; // not a gzip, zip, PDF or XML start
    out.push(rejected(
        "random.bin",
        random,
        "IRR_TYPE_F",
        "unknown format",
    ));
    out.push(rejected(
        "unknown-root.xml",
        b"<?xml version=\"1.0\"?><Order xmlns=\"urn:example:order\"><ID>1</ID></Order>".to_vec(),
        "IRR_TYPE_F",
        "not an invoice",
    ));
    out.push(rejected(
        "not-well-formed.xml",
        String::from_utf8(ubl_numbered(&ubl, "NWF-1"))
            .unwrap()
            .replacen("</cbc:IssueDate>", "</cbc:Wrong>", 1)
            .into_bytes(),
        "IRR_SYNTAX",
        "UBL document cannot be read",
    ));

    // Archive entry names that would escape a folder.
    let doc = ubl_numbered(&ubl, "ESC-1");
    out.push(rejected(
        "dotdot.zip",
        raw_zip(&[RawZipEntry::stored(
            "invoices/../../quai-hostile-escape.xml",
            &doc,
        )]),
        "IRR_NOM_PJ",
        "'..'",
    ));
    out.push(rejected(
        "absolute.tar.gz",
        gzip(&raw_tar(&[(
            "/tmp/quai-hostile-absolute.xml",
            b'0',
            &doc,
            "",
        )])),
        "IRR_NOM_PJ",
        "absolute path",
    ));
    // Links: a symbolic link to a system file, a hard link to an entry.
    out.push(rejected(
        "symlink.tar.gz",
        gzip(&raw_tar(&[("passwd.xml", b'2', b"", "/etc/passwd")])),
        "IRR_TYPE_F",
        "symbolic link",
    ));
    out.push(rejected(
        "hardlink.tar",
        raw_tar(&[("a.xml", b'0', &doc, ""), ("b.xml", b'1', b"", "a.xml")]),
        "IRR_TYPE_F",
        "hard link",
    ));
    // Cut short in transit.
    let tgz = targz_of(&[
        ("a.xml", ubl_numbered(&ubl, "TRUNC-1")),
        ("b.xml", ubl_numbered(&ubl, "TRUNC-2")),
    ]);
    out.push(rejected(
        "truncated.tar.gz",
        tgz[..tgz.len() * 6 / 10].to_vec(),
        "IRR_SYNTAX",
        "truncated",
    ));
    let zip = zip_of(&[
        ("a.xml", ubl_numbered(&ubl, "TRUNC-3")),
        ("b.xml", ubl_numbered(&ubl, "TRUNC-4")),
    ]);
    out.push(rejected(
        "truncated.zip",
        zip[..zip.len() * 6 / 10].to_vec(),
        "IRR_SYNTAX",
        "damaged or truncated",
    ));
    let gz = gzip(&ubl_numbered(&ubl, "TRUNC-5"));
    out.push(rejected(
        "truncated.xml.gz",
        gz[..gz.len() / 2].to_vec(),
        "IRR_SYNTAX",
        "truncated",
    ));
    // A password-protected entry (general-purpose flag bit 0).
    out.push(rejected(
        "encrypted.zip",
        raw_zip(&[RawZipEntry {
            flags: 1,
            ..RawZipEntry::stored("secret.xml", &doc)
        }]),
        "IRR_TYPE_F",
        "password-protected",
    ));
    // zip > zip > zip > document: three archive levels, two allowed.
    let level3 = zip_of(&[("inv.xml", ubl_numbered(&ubl, "DEEP-1"))]);
    let level2 = zip_of(&[("level3.zip", level3)]);
    out.push(rejected(
        "too-deep.zip",
        zip_of(&[("level2.zip", level2)]),
        "IRR_TYPE_F",
        "nested more than 2",
    ));
    // 10,001 directory entries and one document: over the 10,000 entries.
    let names: Vec<String> = (0..10_001).map(|i| format!("d{i:05}/")).collect();
    let mut entries: Vec<RawZipEntry<'_>> =
        names.iter().map(|n| RawZipEntry::stored(n, b"")).collect();
    let one = ubl_numbered(&ubl, "MANY-1");
    entries.push(RawZipEntry::stored("inv.xml", &one));
    out.push(rejected(
        "too-many-entries.zip",
        raw_zip(&entries),
        "IRR_TAILLE_F",
        "number of archive entries",
    ));

    // XML attacks: external entity to a canary file, entity expansion, the
    // billion laughs. None is ever expanded: a DOCTYPE is refused.
    out.push(rejected(
        "xxe.xml",
        ubl_with_doctype(
            "XXE-1",
            &format!("<!ENTITY xxe SYSTEM \"file://{}\">", canary.display()),
            "&xxe;",
        ),
        "IRR_SYNTAX",
        "DOCTYPE not allowed",
    ));
    out.push(rejected(
        "xxe-parameter.xml",
        ubl_with_doctype(
            "XXE-2",
            &format!(
                "<!ENTITY % ext SYSTEM \"file://{}\"> %ext;",
                canary.display()
            ),
            "plain",
        ),
        "IRR_SYNTAX",
        "DOCTYPE not allowed",
    ));
    out.push(rejected(
        "entity-expansion.xml",
        ubl_with_doctype(
            "EXP-1",
            "<!ENTITY p1 \"QUAI-EXP\"><!ENTITY p2 \"&p1;ANDED-7731\">",
            "&p2;",
        ),
        "IRR_SYNTAX",
        "DOCTYPE not allowed",
    ));
    let mut laughs = String::from("<!ENTITY lol0 \"lol\">");
    for i in 1..=10 {
        let p = format!("&lol{};", i - 1);
        laughs.push_str(&format!("<!ENTITY lol{i} \"{}\">", p.repeat(10)));
    }
    out.push(rejected(
        "billion-laughs.xml",
        ubl_with_doctype("LOL-1", &laughs, "&lol10;"),
        "IRR_SYNTAX",
        "DOCTYPE not allowed",
    ));
    // Invalid UTF-8 in a document that declares UTF-8.
    let mut bad = ubl_numbered(&ubl, "UTF-1");
    let at = String::from_utf8(bad.clone())
        .unwrap()
        .find("Salescompany")
        .unwrap();
    bad.splice(at..at, [0xff, 0xfe, 0xc3]);
    out.push(rejected("bad-utf8.xml", bad, "IRR_SYNTAX", "UTF-8"));
    // A PDF that is only a PDF.
    out.push(rejected("plain.pdf", plain_pdf(), "IRR_TYPE_F", "Factur-X"));
    // EDIFACT: the UNZ count says 3 messages, the interchange holds 1.
    let edi = String::from_utf8(mappings_fixture("edifact/EDIFACT_EXAMPLE0.TXT")).unwrap();
    let bad_unz = edi.replacen("UNZ+1+", "UNZ+3+", 1);
    assert_ne!(bad_unz, edi);
    out.push(rejected(
        "bad-unz.edi",
        bad_unz.into_bytes(),
        "IRR_SYNTAX",
        "UNZ",
    ));
    // EDIFACT cut in the middle of a segment: no terminator, no UNT, no UNZ.
    let cut = edi.find("MOA+125:20.00").unwrap();
    out.push(rejected(
        "unterminated.edi",
        edi.as_bytes()[..cut + "MOA+125:2".len()].to_vec(),
        "IRR_SYNTAX",
        "EDIFACT",
    ));

    // Read, with a verdict per document.
    let latin = String::from_utf8(ubl_numbered(&ubl, "LATIN1-1"))
        .unwrap()
        .replacen("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"", 1)
        .replacen(
            "<cbc:RegistrationName>Salescompany ltd.</cbc:RegistrationName>",
            "<cbc:RegistrationName>Société Générale Müller</cbc:RegistrationName>",
            1,
        );
    assert!(latin.contains("ISO-8859-1") && latin.contains("Müller"));
    out.push(Case {
        name: "latin1.xml".into(),
        bytes: latin1(&latin),
        expect: Expect::Processed(|r| {
            expect_counts(r, 1, 1, 0)?;
            if r["documents"][0]["invoice_number"] != "LATIN1-1" {
                return Err(format!("invoice number {}", r["documents"][0]));
            }
            Ok(())
        }),
    });
    // The official EDIFACT example declares UNT+171 for 37 segments: the
    // message is read, the wrong count reported as a warning.
    out.push(Case {
        name: "wrong-unt.edi".into(),
        bytes: edi.clone().into_bytes(),
        expect: Expect::Processed(|r| {
            expect_counts(r, 1, 1, 0)?;
            let reasons = r["documents"][0]["reasons"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !reasons
                .iter()
                .any(|x| x["rule"] == "EDIFACT-UNT" && x["severity"] == "warning")
            {
                return Err(format!("no EDIFACT-UNT warning in {reasons:?}"));
            }
            Ok(())
        }),
    });
    // One good invoice among broken entries: the flow is read, each broken
    // entry is a rejected document with its reason.
    out.push(Case {
        name: "mixed.zip".into(),
        bytes: zip_of(&[
            ("good.xml", ubl_numbered(&ubl, "MIXED-1")),
            (
                "broken.xml",
                String::from_utf8(ubl_numbered(&ubl, "MIXED-2"))
                    .unwrap()
                    .replacen("</cbc:IssueDate>", "</cbc:Wrong>", 1)
                    .into_bytes(),
            ),
            ("noise.bin", noise(7, 1000)),
            (
                "xxe.xml",
                ubl_with_doctype(
                    "MIXED-3",
                    "<!ENTITY x SYSTEM \"file:///etc/hostname\">",
                    "&x;",
                ),
            ),
        ]),
        expect: Expect::Processed(|r| {
            expect_counts(r, 4, 1, 3)?;
            let rules: Vec<String> = r["documents"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["status"] == "rejected")
                .map(|d| {
                    format!(
                        "{}={}",
                        d["entry"].as_str().unwrap_or(""),
                        d["reasons"][0]["rule"].as_str().unwrap_or("")
                    )
                })
                .collect();
            let want = [
                "mixed.zip/broken.xml=IRR_SYNTAX",
                "mixed.zip/noise.bin=IRR_TYPE_F",
                "mixed.zip/xxe.xml=IRR_SYNTAX",
            ];
            if rules != want {
                return Err(format!("rejected documents {rules:?}, expected {want:?}"));
            }
            Ok(())
        }),
    });
    out
}

fn expect_counts(r: &Value, documents: i64, accepted: i64, rejected: i64) -> Result<(), String> {
    if r["status"] != "processed" {
        return Err(format!(
            "status {} (rejection {})",
            r["status"], r["rejection"]
        ));
    }
    let c = &r["counts"];
    if c["documents"] != documents || c["accepted"] != accepted || c["rejected"] != rejected {
        return Err(format!(
            "counts {c}, expected {documents} documents, {accepted} accepted, {rejected} rejected; documents {:#}",
            r["documents"]
        ));
    }
    Ok(())
}

/// Reports of a partner's outbox, by the flow's file name.
fn reports_by_file(d: &TestDaemon, partner: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(d.outbox(partner)).unwrap() {
        let p = entry.unwrap().path();
        if p.to_string_lossy().ends_with(".report.json") {
            let r = report_json(&p);
            let file = r["flow"]["file"].as_str().unwrap().to_string();
            assert!(
                out.insert(file.clone(), r).is_none(),
                "two reports for {file}"
            );
        }
    }
    out
}

/// Drop `n` good invoices for the bystander partner, numbered from `tag`.
fn drop_bystanders(d: &TestDaemon, tag: &str, n: usize) {
    let ubl = ubl();
    for i in 0..n {
        d.drop_file(
            BYSTANDER,
            &format!("good-{tag}-{i}.xml"),
            &ubl_numbered(&ubl, &format!("GOOD-{tag}-{i}")),
        );
    }
}

/// The bystander's `n` flows were all read and accepted.
async fn assert_bystanders(d: &TestDaemon, n: usize) {
    d.wait_reports(BYSTANDER, n, WAIT).await;
    for (file, r) in reports_by_file(d, BYSTANDER) {
        assert_eq!(r["status"], "processed", "{file}: {r:#}");
        assert_eq!(r["counts"]["accepted"], 1, "{file}: {r:#}");
    }
}

/// The canonical JSON the spool holds for an invoice number (SQLite spool).
/// The canonical JSON the spool holds for the invoice numbered `number`
/// (stored compressed; read back through the spool).
async fn canonical_json(spool: &quai_spool::Spool, number: &str) -> String {
    for f in spool.list_flows(&Default::default()).await.unwrap() {
        for inv in spool.invoices_of_flow(f.id).await.unwrap() {
            if inv.number.as_deref() == Some(number) {
                return spool
                    .canonical_invoice(f.id, inv.doc_index)
                    .await
                    .unwrap()
                    .expect("a mapped invoice has its canonical JSON");
            }
        }
    }
    panic!("no invoice numbered {number} in the spool")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_flows_are_answered_with_reasons_and_bystanders_keep_moving() {
    // A file the XML attacks point at: its content must never appear.
    let secrets = tempfile::tempdir().unwrap();
    let token = format!(
        "CANARY-{}-NEVER-READ",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let canary = secrets.path().join("canary.txt");
    std::fs::write(&canary, &token).unwrap();

    let mut d = TestDaemon::new();
    d.start();
    let cases = cases(&canary);
    // Hostile flows and good flows of another partner, interleaved.
    for (i, case) in cases.iter().enumerate() {
        d.drop_file("mallory", &case.name, &case.bytes);
        drop_bystanders(&d, &format!("{i:02}"), 1);
    }
    d.wait_reports("mallory", cases.len(), WAIT).await;
    assert_bystanders(&d, cases.len()).await;

    let reports = reports_by_file(&d, "mallory");
    let mut failures = Vec::new();
    for case in &cases {
        let Some(r) = reports.get(&case.name) else {
            failures.push(format!("{}: no report", case.name));
            continue;
        };
        match &case.expect {
            Expect::Rejected { code, hint } => {
                let got = r["rejection"]["code"].as_str().unwrap_or("-");
                let msg = r["rejection"]["message"].as_str().unwrap_or("");
                if r["status"] != "rejected" || got != *code || !msg.contains(hint) {
                    failures.push(format!(
                        "{}: expected rejected {code} mentioning {hint:?}, got {} {got} {msg:?}",
                        case.name, r["status"]
                    ));
                }
            }
            Expect::Processed(check) => {
                if let Err(e) = check(r) {
                    failures.push(format!("{}: {e}", case.name));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The spool agrees with the reports: rejected flows are `failed` with
    // their code, none is stuck.
    let spool = d.spool().await;
    for f in spool.list_flows(&Default::default()).await.unwrap() {
        assert!(
            matches!(f.state, FlowState::Processed | FlowState::Failed),
            "flow {} ({}) left in {:?}",
            f.id,
            f.original_name,
            f.state
        );
        if f.state == FlowState::Failed {
            assert_eq!(
                f.failure_code.as_deref(),
                reports[&f.original_name]["rejection"]["code"].as_str()
            );
        }
    }

    // ISO-8859-1 was read as ISO-8859-1: the spool holds the seller's name
    // in UTF-8, accents intact.
    let canonical = canonical_json(&d.spool().await, "LATIN1-1").await;
    assert!(
        canonical.contains("Société Générale Müller"),
        "canonical JSON: {canonical}"
    );

    // Every source was answered and removed; nothing escaped the store.
    let left: Vec<_> = std::fs::read_dir(d.inbox("mallory"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in the drop zone: {left:?}");
    for escaped in [
        Path::new("/tmp/quai-hostile-absolute.xml").to_path_buf(),
        d.home.path().join("quai-hostile-escape.xml"),
        d.home
            .path()
            .parent()
            .unwrap()
            .join("quai-hostile-escape.xml"),
    ] {
        assert!(!escaped.exists(), "{} was written", escaped.display());
    }
    // No entity was ever resolved or expanded: neither the canary's content
    // nor the expansion of p2 appears anywhere under the home (spool, WAL,
    // stored flows, reports, mail).
    let files: Vec<PathBuf> = files_under(d.home.path());
    assert!(files.iter().any(|p| p.ends_with("spool.db")));
    for p in files {
        // The daemon still runs: a staging file listed a moment ago may be gone.
        let bytes = match std::fs::read(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            read => read.unwrap(),
        };
        for needle in [token.as_bytes(), b"QUAI-EXPANDED-7731".as_slice()] {
            assert!(
                !contains(&bytes, needle),
                "{} holds {:?}",
                p.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
    // The daemon is still running, and stops cleanly.
    assert!(!d.task.as_ref().unwrap().is_finished(), "daemon stopped");
    d.stop().await;
}

/// A daemon on a configuration file's text (relative paths under its home).
fn daemon_with(toml: &str) -> TestDaemon {
    let home = tempfile::tempdir().unwrap();
    let text = format!("[http]\nlisten = \"off\"\n{toml}");
    let mut config = Config::parse(&text, &home.path().join("quai.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    config.stable_seconds = 1;
    config.workers = 2;
    config.lease_seconds = 5;
    TestDaemon {
        home,
        config,
        stop: tokio_util::sync::CancellationToken::new(),
        task: None,
    }
}

/// A zip of `n` valid UBL invoices numbered `tag-i`.
fn invoices_zip(tag: &str, n: usize) -> Vec<u8> {
    let ubl = ubl();
    let docs: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            (
                format!("inv-{i:04}.xml"),
                ubl_numbered(&ubl, &format!("{tag}-{i}")),
            )
        })
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = docs.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    zip_of(&refs)
}

fn assert_rejected(r: &Value, code: &str, hint: &str) {
    assert_eq!(r["status"], "rejected", "{r:#}");
    assert_eq!(r["rejection"]["code"], code, "{r:#}");
    let msg = r["rejection"]["message"].as_str().unwrap();
    assert!(msg.contains(hint), "{msg:?} should mention {hint:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoice_count_limit_default_and_per_partner() {
    let mut d =
        daemon_with("[[partner]]\nid = \"tiny\"\n[partner.limits]\nmax_invoices_per_flow = 3\n");
    assert_eq!(
        d.config.limits.max_invoices_per_flow, 500,
        "the platform's cap"
    );
    d.start();
    // Default limit (500): 501 is refused, 500 is read.
    d.drop_file("bulk", "501.zip", &invoices_zip("N501", 501));
    d.drop_file("bulk", "500.zip", &invoices_zip("N500", 500));
    // Per-partner limit (3): 4 refused, 3 read; the same 4 for another partner read.
    d.drop_file("tiny", "4.zip", &invoices_zip("TINY4", 4));
    d.drop_file("tiny", "3.zip", &invoices_zip("TINY3", 3));
    d.drop_file("other", "4.zip", &invoices_zip("OTHER4", 4));
    d.wait_reports("bulk", 2, WAIT).await;
    d.wait_reports("tiny", 2, WAIT).await;
    d.wait_reports("other", 1, WAIT).await;
    let bulk = reports_by_file(&d, "bulk");
    assert_rejected(&bulk["501.zip"], "IRR_TAILLE_F", "more than 500 invoices");
    expect_counts(&bulk["500.zip"], 500, 500, 0).unwrap();
    let tiny = reports_by_file(&d, "tiny");
    assert_rejected(&tiny["4.zip"], "IRR_TAILLE_F", "more than 3 invoices");
    expect_counts(&tiny["3.zip"], 3, 3, 0).unwrap();
    expect_counts(&reports_by_file(&d, "other")["4.zip"], 4, 4, 0).unwrap();
    // A refused flow leaves no invoice behind (rows written before the
    // limit was crossed are removed with the flow's failure).
    let spool = d.spool().await;
    let status = serde_json::to_value(spool.status().await.unwrap()).unwrap();
    assert_eq!(
        status["totals"]["invoices"]["accepted"],
        500 + 3 + 4,
        "{status:#}"
    );
    assert_eq!(status["totals"]["invoices"]["rejected"], 0, "{status:#}");
    d.stop().await;
}

/// A valid UBL invoice padded with an XML comment to at least `size` bytes.
fn padded_ubl(number: &str, size: usize) -> Vec<u8> {
    let mut doc = ubl_numbered(&ubl(), number);
    if doc.len() < size {
        let pad = "x".repeat(size - doc.len());
        doc.extend_from_slice(format!("\n<!-- {pad} -->\n").as_bytes());
    }
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_size_limit_default_and_per_partner() {
    let mut d = daemon_with(
        "[limits]\nmax_flow_bytes = 40000\n\
         [[partner]]\nid = \"small\"\n[partner.limits]\nmax_flow_bytes = 22000\n",
    );
    d.start();
    let medium = padded_ubl("SIZE-M", 30_000); // under the default, over small's
    let large = padded_ubl("SIZE-L", 60_000); // over both
    d.drop_file("anyone", "medium.xml", &medium);
    d.drop_file("anyone", "large.xml", &large);
    d.drop_file("small", "medium.xml", &medium);
    let tiny = ubl_numbered(&ubl(), "SIZE-S");
    assert!(tiny.len() < 22_000);
    d.drop_file("small", "tiny.xml", &tiny);
    d.wait_reports("anyone", 2, WAIT).await;
    d.wait_reports("small", 2, WAIT).await;
    let anyone = reports_by_file(&d, "anyone");
    expect_counts(&anyone["medium.xml"], 1, 1, 0).unwrap();
    assert_rejected(
        &anyone["large.xml"],
        "IRR_TAILLE_F",
        "more than the limit of 40000 bytes",
    );
    assert_eq!(anyone["large.xml"]["flow"]["size"], large.len() as i64);
    let small = reports_by_file(&d, "small");
    assert_rejected(
        &small["medium.xml"],
        "IRR_TAILLE_F",
        "more than the limit of 22000 bytes",
    );
    expect_counts(&small["tiny.xml"], 1, 1, 0).unwrap();
    // An oversized flow's bytes are not kept (hashed to the end, never
    // stored), and its source is gone from the drop zone: it was answered.
    let spool = d.spool().await;
    let flows = spool.list_flows(&Default::default()).await.unwrap();
    let big = flows
        .iter()
        .find(|f| f.original_name == "large.xml")
        .unwrap();
    assert_eq!(big.state, FlowState::Failed);
    assert!(!quai_connectors::landing::stored_path(&d.config.store, &big.sha256).exists());
    assert!(std::fs::read_dir(d.inbox("anyone"))
        .unwrap()
        .next()
        .is_none());
    d.stop().await;
}

/// A partner allowed larger flows than the global limit: the drop zone
/// lands bytes only up to the global limit, and the flow must still be
/// answered (read, since its partner's limit allows it).
///
/// (Found by this test: the drop zone used to land only up to the global
/// limit; it now lands up to the largest partner limit, commit 28d4f53.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_limit_above_the_global_one_is_honoured() {
    let mut d = daemon_with(
        "[limits]\nmax_flow_bytes = 10000\n\
         [[partner]]\nid = \"large\"\n[partner.limits]\nmax_flow_bytes = 100000\n",
    );
    d.start();
    d.drop_file("large", "big.xml", &padded_ubl("SIZE-XL", 30_000));
    let reports = d.wait_reports("large", 1, Duration::from_secs(20)).await;
    let r = report_json(&reports[0]);
    expect_counts(&r, 1, 1, 0).unwrap();
    d.stop().await;
}
