//! quai's CDAR lifecycle statuses checked against the official schemas: the
//! UN/CEFACT CrossDomainAcknowledgementAndResponse D22B XSD and the French
//! reform's BR-FR-CDV schematron (both from the PyPI package `pyfrctc`, run by
//! `tests/cdar/check_cdar.py` in the test venv: lxml for the XSD, Saxon for
//! the XSLT 2.0 schematron).
//!
//! A real daemon takes a flow of accepted invoices, business-rule rejects
//! (REJ_SEMAN), a duplicate (REJ_UNI) and an unreadable document (REJ_COH),
//! once with one CDAR file per flow and once with one per invoice; every file
//! it writes must have no XSD error and no fatal/error schematron finding.
//! The checker is itself checked: deliberately broken copies of quai's output
//! must be reported, and the official samples must get the verdicts their
//! own test suite gives. The test fails (never skips) without the venv.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::common::{fixture, zip_of, TestDaemon};

const WAIT: Duration = Duration::from_secs(60);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The test venv's python (scripts/test.sh builds it; `QUAI_TEST_VENV`
/// overrides the default `<repo>/target/test-venv`).
fn venv_python() -> PathBuf {
    let venv = std::env::var_os("QUAI_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/test-venv"));
    let py = venv.join("bin/python");
    assert!(
        py.is_file(),
        "no test venv python at {} (run scripts/test.sh, or set QUAI_TEST_VENV to a venv \
         built from scripts/test-requirements.txt)",
        py.display()
    );
    py
}

/// One checker verdict per file, in the order given.
fn check(files: &[PathBuf]) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cdar/check_cdar.py");
    let out = Command::new(venv_python())
        .arg(&script)
        .args(files)
        .output()
        .expect("run check_cdar.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let results: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{stderr}")))
        .collect();
    for r in &results {
        assert!(
            r.get("setup_error").is_none(),
            "checker cannot run: {r}\n{stderr}"
        );
    }
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "checker crashed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
    assert_eq!(results.len(), files.len(), "{stdout}\n{stderr}");
    let all_ok = results.iter().all(|r| r["ok"] == true);
    assert_eq!(
        out.status.code() == Some(0),
        all_ok,
        "exit status and verdicts disagree"
    );
    results
}

fn findings<'a>(r: &'a Value, flags: &[&str]) -> Vec<&'a Value> {
    r["schematron"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            let f = s["flag"].as_str().or(s["role"].as_str()).unwrap_or("");
            flags.contains(&f)
        })
        .collect()
}

fn ids(r: &Value, flags: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = findings(r, flags)
        .iter()
        .map(|s| s["id"].as_str().unwrap_or("").to_string())
        .collect();
    v.sort();
    v
}

fn xsd_lines(r: &Value) -> Vec<i64> {
    r["xsd_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_i64().unwrap_or(0))
        .collect()
}

fn edifact_fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mappings/tests/fixtures/edifact")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A CII invoice of a French seller: CII_example1 with another number (with
/// characters XML must escape) and a French VAT number (FR + key + SIREN
/// 732829320) instead of the Dutch one.
fn french_invoice() -> Vec<u8> {
    let x = String::from_utf8(fixture("CII_example1.xml")).unwrap();
    let y = x
        .replace(
            "<ram:ID>12115118</ram:ID>",
            "<ram:ID>FR-2026-0001 &amp; &lt;é&gt; \"q\"</ram:ID>",
        )
        .replace(
            "<ram:ID schemeID=\"VA\">NL8200.98.395.B.01</ram:ID>",
            "<ram:ID schemeID=\"VA\">FR44732829320</ram:ID>",
        );
    assert_eq!(y.matches("FR-2026-0001").count(), 1);
    assert_eq!(y.matches("FR44732829320").count(), 1);
    y.into_bytes()
}

/// A flow with every kind of status: accepted UBL/CII invoices and a credit
/// note (200), an EN 16931 business-rule failure (213 REJ_SEMAN), the same
/// invoice twice (213 REJ_UNI), an entry that is not readable XML
/// (213 REJ_COH), an accepted invoice of a French seller (SIREN), and an
/// EDIFACT D.03B INVOIC (rejected: no BT-24 and more, 213 REJ_SEMAN).
fn mixed_flow() -> Vec<u8> {
    zip_of(&[
        ("01-cii.xml", fixture("CII_example1.xml")),
        ("02-ubl.xml", fixture("ubl-tc434-example2.xml")),
        ("03-creditnote.xml", fixture("ubl-tc434-creditnote1.xml")),
        ("04-cii.xml", fixture("CII_example4.xml")),
        ("05-br07.xml", fixture("BR-07__fail__1.xml")),
        ("06-again.xml", fixture("CII_example1.xml")),
        (
            "07-broken.xml",
            b"<?xml version=\"1.0\"?><Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\"><cbc:ID>"
                .to_vec(),
        ),
        ("08-french.xml", french_invoice()),
        ("09-edifact.txt", edifact_fixture("INVOIC_D.03B_Interchange_with_UNA.txt")),
    ])
}

/// Runs a daemon (per-invoice CDAR files or not) on [`mixed_flow`] and
/// returns the CDAR files it delivered.
async fn cdar_files_of_a_run(per_invoice: bool) -> (tempfile::TempDir, Vec<PathBuf>) {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("quai.toml");
    let text = format!(
        "[http]\nlisten = \"off\"\n[dropzones]\nstable_seconds = 1\n\
         [[partner]]\nid = \"acme\"\ncdar_per_invoice = {per_invoice}\n"
    );
    std::fs::write(&path, text).unwrap();
    let config = quai::config::Config::load(&path).unwrap();
    let mut d = TestDaemon {
        home,
        config,
        stop: Default::default(),
        task: None,
    };
    d.start();
    d.drop_file("acme", "mixed.zip", &mixed_flow());
    d.wait_reports("acme", 1, WAIT).await;
    let want = if per_invoice { 9 } else { 1 };
    let start = Instant::now();
    let files = loop {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d.outbox("acme"))
            .map(|r| {
                r.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().contains(".cdar"))
                    .collect()
            })
            .unwrap_or_default();
        if v.len() >= want {
            v.sort();
            break v;
        }
        assert!(start.elapsed() < WAIT, "CDAR files not delivered: {v:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    d.stop().await;
    assert_eq!(files.len(), want, "{files:?}");
    // Keep the files beyond the daemon's home (and, for a look at them,
    // in $QUAI_CDAR_SCHEMA_KEEP when set).
    if let Some(dir) = std::env::var_os("QUAI_CDAR_SCHEMA_KEEP") {
        let dir = PathBuf::from(dir).join(if per_invoice {
            "per-invoice"
        } else {
            "per-flow"
        });
        std::fs::create_dir_all(&dir).unwrap();
        for f in &files {
            std::fs::copy(f, dir.join(f.file_name().unwrap())).unwrap();
        }
    }
    let keep = tempfile::tempdir().unwrap();
    let copies = files
        .iter()
        .map(|f| {
            let to = keep.path().join(f.file_name().unwrap());
            std::fs::copy(f, &to).unwrap();
            to
        })
        .collect();
    (keep, copies)
}

fn assert_conformant(files: &[PathBuf]) {
    let results = check(files);
    let mut failures = Vec::new();
    for r in &results {
        let warnings = findings(r, &["warning", "warn", "information", "info"]);
        for w in warnings {
            eprintln!("schematron warning on {}: {w}", r["file"]);
        }
        if r["ok"] != true {
            let xml = r["file"]
                .as_str()
                .and_then(|f| std::fs::read_to_string(f).ok())
                .unwrap_or_default();
            failures.push(format!("{r}\n{xml}"));
        }
    }
    assert!(
        failures.is_empty(),
        "quai's CDAR is not conformant:\n{}",
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quai_cdar_passes_the_d22b_xsd_and_the_br_fr_cdv_schematron() {
    let (_keep, per_flow) = cdar_files_of_a_run(false).await;
    let one = std::fs::read_to_string(&per_flow[0]).unwrap();
    // The flow really holds every kind of status the test is about.
    assert_eq!(
        one.matches("<ram:ReferenceReferencedDocument>").count(),
        9,
        "{one}"
    );
    assert_eq!(
        one.matches("<ram:ProcessConditionCode>200</ram:ProcessConditionCode>")
            .count(),
        5,
        "{one}"
    );
    // The French seller is named by its SIREN; its number is escaped.
    assert!(
        one.contains(
            "<ram:IssuerAssignedID>FR-2026-0001 &amp; &lt;é&gt; &quot;q&quot;</ram:IssuerAssignedID>"
        ),
        "{one}"
    );
    assert!(
        one.contains("<ram:GlobalID schemeID=\"0002\">732829320</ram:GlobalID>"),
        "{one}"
    );
    for reason in ["REJ_SEMAN", "REJ_UNI", "REJ_COH"] {
        assert!(
            one.contains(&format!("<ram:ReasonCode>{reason}</ram:ReasonCode>")),
            "no {reason} in\n{one}"
        );
    }
    assert!(one.contains("<udt:Indicator>true</udt:Indicator>"), "{one}");
    assert_conformant(&per_flow);

    let (_keep2, per_invoice) = cdar_files_of_a_run(true).await;
    let mut codes: Vec<String> = per_invoice
        .iter()
        .map(|f| {
            let x = std::fs::read_to_string(f).unwrap();
            assert!(x.contains("<udt:Indicator>false</udt:Indicator>"), "{x}");
            let code = x
                .split("<ram:ProcessConditionCode>")
                .nth(1)
                .and_then(|s| s.split('<').next())
                .unwrap_or("")
                .to_string();
            code
        })
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        ["200", "200", "200", "200", "200", "213", "213", "213", "213"]
    );
    assert_conformant(&per_invoice);

    // The checker is not vacuous: broken copies of quai's own output fail.
    let dir = tempfile::tempdir().unwrap();
    // Structure: the status code after the process condition (D22B order).
    let misordered = one.replacen(
        "<ram:ProcessConditionCode>",
        "<ram:Foo>x</ram:Foo><ram:ProcessConditionCode>",
        1,
    );
    assert_ne!(misordered, one);
    // Business rule: a guideline id other than the CDV one (BR-FR-CDV-02),
    // XSD-valid.
    let wrong_guideline = one.replacen(
        "urn.cpro.gouv.fr:1p0:CDV:invoice",
        "urn.cpro.gouv.fr:1p0:XXX:invoice",
        1,
    );
    assert_ne!(wrong_guideline, one);
    let a = dir.path().join("misordered.xml");
    let b = dir.path().join("wrong-guideline.xml");
    std::fs::write(&a, misordered).unwrap();
    std::fs::write(&b, wrong_guideline).unwrap();
    // A truncated file (a crash mid-write) is not XML at all.
    let c = dir.path().join("truncated.xml");
    std::fs::write(&c, &one.as_bytes()[..one.len() / 2]).unwrap();
    let r = check(&[a, b, c]);
    assert_eq!(r[2]["ok"], false, "{}", r[2]);
    assert_eq!(xsd_lines(&r[2]).len(), 1, "{}", r[2]);
    assert_eq!(r[0]["ok"], false, "{}", r[0]);
    assert!(!xsd_lines(&r[0]).is_empty(), "{}", r[0]);
    assert_eq!(r[1]["ok"], false, "{}", r[1]);
    assert!(xsd_lines(&r[1]).is_empty(), "{}", r[1]);
    assert!(
        ids(&r[1], &["fatal", "error"])
            .iter()
            .any(|i| i.starts_with("BR-FR-CDV-02")),
        "{}",
        r[1]
    );
}

/// The official samples get the verdicts their own test suite gives
/// (tests/fixtures/cdar/SOURCES.md): the checker sees what it should.
#[test]
fn official_samples_get_their_published_verdicts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cdar");
    let r = check(&[
        dir.join("expected_serialize.xml"),
        dir.join("invalid_cdar.xml"),
    ]);
    // The serializer's sample is XSD-valid, but misses the document id
    // (MDT-4) and the seller recipient's electronic address (MDT-73) the
    // current BR-FR-CDV rules require.
    assert!(xsd_lines(&r[0]).is_empty(), "{}", r[0]);
    assert_eq!(
        ids(&r[0], &["fatal", "error"]),
        ["BR-FR-CDV-03_MDT-4", "BR-FR-CDV-08_MDT-73"],
        "{}",
        r[0]
    );
    // The invalid sample: 3 XSD errors (lines 4, 12, 37) and 4 schematron
    // errors, as its label says.
    assert_eq!(xsd_lines(&r[1]), [4, 12, 37], "{}", r[1]);
    assert_eq!(
        ids(&r[1], &["fatal", "error"]),
        [
            "BR-FR-CDV-03_MDT-4",
            "BR-FR-CDV-08_MDT-73",
            "BR-FR-CDV-13_MDT-129",
            "BR-FR-CDV-CL-01_MDT-2"
        ],
        "{}",
        r[1]
    );
    assert_eq!(r[1]["ok"], false);
}
