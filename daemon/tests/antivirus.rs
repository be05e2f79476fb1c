//! Malware is stopped at the door (issue 14, class 8), through the real
//! daemon and a real clamd (`quai_test_support::clamd`: Debian's clamd on
//! a unix socket, with a database matching the EICAR test string): a clean
//! flow is accepted; EICAR in a zip entry (found by clamd unpacking the
//! zip), in a UBL BG-24 attachment (base64: decoded by quai and streamed as
//! a scan of its own), in a CII attachment inside a Factur-X PDF, and as a
//! file embedded in a Factur-X PDF (found by clamd's PDF parser) are
//! refused with IRR_ANTIVIRUS before anything is stored; with clamd
//! stopped, a flow is held (neither acknowledged nor failed) and processed
//! once clamd is back.

mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64_engine::encode;
use quai::config::Antivirus;
use quai_spool::FlowState;
use quai_test_support::clamd::{Clamd, EICAR, EICAR_SIGNATURE};
use support::common::*;

const WAIT: Duration = Duration::from_secs(60);

/// A tiny base64 encoder (the daemon's tests do not depend on a base64 crate).
mod base64_engine {
    pub fn encode(bytes: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for c in bytes.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            out.push(A[(n >> 18) as usize & 63] as char);
            out.push(A[(n >> 12) as usize & 63] as char);
            out.push(if c.len() > 1 {
                A[(n >> 6) as usize & 63] as char
            } else {
                '='
            });
            out.push(if c.len() > 2 {
                A[n as usize & 63] as char
            } else {
                '='
            });
        }
        out
    }
}

fn daemon_scanning_with(clamd: &Clamd) -> TestDaemon {
    let mut d = TestDaemon::new();
    d.config.antivirus = Some(Antivirus {
        clamd: clamd.address(),
        timeout_seconds: 10,
        retry_seconds: 1,
    });
    d
}

/// The UBL fixture with its BG-24 attachment replaced by `bytes`.
fn ubl_with_attachment(bytes: &[u8], number: &str) -> Vec<u8> {
    let ubl = fixture_str("ubl-tc434-example2.xml");
    let old = "VGVzdGluZyBCYXNlNjQgZW5jb2Rpbmc=";
    assert!(ubl.contains(old), "fixture changed: attachment not found");
    // Line-wrapped as many writers do, so decoding spans text pieces.
    let b64 = encode(bytes);
    let wrapped: Vec<String> = b64
        .as_bytes()
        .chunks(40)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    ubl.replace(old, &wrapped.join("\n"))
        .replace(
            "<cbc:ID>TOSL108</cbc:ID>",
            &format!("<cbc:ID>{number}</cbc:ID>"),
        )
        .into_bytes()
}

fn facturx_fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../mappings/tests/fixtures/facturx/akretion-factur-x/invoice_EN16931.pdf")
}

/// The Factur-X fixture re-made by the `factur-x` library (test venv):
/// `attach` adds EICAR as a file embedded in the PDF; `in_xml` puts EICAR
/// in the CII as a base64 `AttachmentBinaryObject`.
fn facturx_with_eicar(attach: bool, in_xml: bool) -> Vec<u8> {
    let python = quai_test_support::venv::python_with(&["facturx"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.pdf");
    let eicar = dir.path().join("eicar.bin");
    std::fs::write(&eicar, EICAR).unwrap();
    let script = r#"
import sys, base64, facturx
src, eicar_path, out, attach, in_xml = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1", sys.argv[5] == "1"
pdf = open(src, "rb").read()
eicar = open(eicar_path, "rb").read()
name, xml = facturx.get_xml_from_pdf(pdf, check_xsd=False)
if in_xml:
    b64 = base64.b64encode(eicar).decode()
    doc = ('<ram:AdditionalReferencedDocument><ram:IssuerAssignedID>ATT-1</ram:IssuerAssignedID>'
           '<ram:TypeCode>916</ram:TypeCode><ram:AttachmentBinaryObject mimeCode="text/plain" '
           'filename="eicar.txt">' + b64 + '</ram:AttachmentBinaryObject></ram:AdditionalReferencedDocument>')
    text = xml.decode()
    anchor = "</ram:ApplicableHeaderTradeAgreement>"
    assert anchor in text
    xml = text.replace(anchor, doc + anchor, 1).encode()
attachments = {"eicar.txt": {"filedata": eicar, "description": "test"}} if attach else None
open(out, "wb").write(facturx.generate_from_binary(pdf, xml, check_xsd=False, attachments=attachments))
"#;
    let status = std::process::Command::new(python)
        .args(["-c", script])
        .arg(facturx_fixture())
        .arg(&eicar)
        .arg(&out)
        .arg(if attach { "1" } else { "0" })
        .arg(if in_xml { "1" } else { "0" })
        .status()
        .unwrap();
    assert!(status.success(), "factur-x generation failed");
    let pdf = std::fs::read(&out).unwrap();
    assert!(
        !pdf.windows(EICAR.len()).any(|w| w == EICAR),
        "EICAR must not be in the PDF's bytes as such (it is compressed or base64)"
    );
    pdf
}

/// The partner's reports by flow file name (`<name>.<id>.report.json`).
fn reports_by_name(d: &TestDaemon, partner: &str) -> HashMap<String, serde_json::Value> {
    let mut out = HashMap::new();
    for e in std::fs::read_dir(d.outbox(partner)).unwrap() {
        let p = e.unwrap().path();
        let f = p.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(stem) = f.strip_suffix(".report.json") {
            let name = stem.rsplit_once('.').map(|(n, _)| n).unwrap_or(stem);
            out.insert(name.to_string(), report_json(&p));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infected_flows_are_refused_with_irr_antivirus_and_clean_ones_accepted() {
    let started = Instant::now();
    let clamd = Clamd::start();
    eprintln!("clamd up in {:?}", started.elapsed());
    let mut d = daemon_scanning_with(&clamd);
    d.start();

    let clean_ubl = fixture("ubl-tc434-example2.xml");
    let clean_pdf = std::fs::read(facturx_fixture()).unwrap();
    let flows: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        ("clean.xml", clean_ubl.clone(), None),
        ("clean-facturx.pdf", clean_pdf, None),
        (
            "clean-attachment.xml",
            ubl_with_attachment(b"%PDF-1.4 just a harmless attachment", "CLEAN-ATT"),
            None,
        ),
        (
            "zip-entry.zip",
            zip_of(&[
                ("invoice.xml", ubl_with_attachment(b"fine", "ZIP-1")),
                ("readme.com", EICAR.to_vec()),
            ]),
            // found by clamd in the flow's bytes: the flow is named
            Some("in zip-entry.zip"),
        ),
        (
            "bg24.xml",
            ubl_with_attachment(EICAR, "BG24-1"),
            Some("in bg24.xml (attachment \"test.pdf\")"),
        ),
        (
            "bg24-in-zip.zip",
            zip_of(&[("inner.xml", ubl_with_attachment(EICAR, "BG24-2"))]),
            Some("in bg24-in-zip.zip/inner.xml (attachment \"test.pdf\")"),
        ),
        (
            "facturx-embedded-file.pdf",
            facturx_with_eicar(true, false),
            Some("facturx-embedded-file.pdf"),
        ),
        (
            "facturx-cii-attachment.pdf",
            facturx_with_eicar(false, true),
            Some("in facturx-cii-attachment.pdf/factur-x.xml (attachment \"eicar.txt\")"),
        ),
    ];
    for (name, bytes, _) in &flows {
        d.drop_file("acme", name, bytes);
    }
    d.wait_reports("acme", flows.len(), WAIT).await;
    let reports = reports_by_name(&d, "acme");
    let spool = d.spool().await;
    let rows = spool.list_flows(&Default::default()).await.unwrap();
    for (name, _, infected) in &flows {
        let r = &reports[*name];
        let row = rows.iter().find(|f| f.original_name == *name).unwrap();
        match infected {
            None => {
                assert_ne!(r["status"], "rejected", "{name}: {r:#}");
                assert_eq!(row.state, FlowState::Processed, "{name}");
            }
            Some(where_) => {
                assert_eq!(r["status"], "rejected", "{name}: {r:#}");
                assert_eq!(r["rejection"]["code"], "IRR_ANTIVIRUS", "{name}: {r:#}");
                let msg = r["rejection"]["message"].as_str().unwrap_or("");
                assert!(msg.contains(EICAR_SIGNATURE), "{name}: {msg}");
                assert!(
                    msg.contains(where_),
                    "{name}: {msg:?} should name {where_:?}"
                );
                assert_eq!(row.state, FlowState::Failed, "{name}");
                assert_eq!(row.failure_code.as_deref(), Some("IRR_ANTIVIRUS"));
                // Nothing of an infected flow is stored.
                let invoices = spool.invoices_of_flow(row.id).await.unwrap();
                assert!(invoices.is_empty(), "{name}: {invoices:?}");
            }
        }
    }
    let log = clamd.log();
    assert!(log.contains("FOUND"), "clamd's log: {log}");
    d.stop().await;
    eprintln!("whole test in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clamd_down_holds_the_flow_until_it_returns() {
    let mut clamd = Clamd::start();
    let mut d = daemon_scanning_with(&clamd);
    let addr = d.start();
    clamd.stop();

    d.drop_file("acme", "held.xml", &fixture("ubl-tc434-example2.xml"));
    let spool = d.spool().await;
    // Registered (the drop zone gave it up), then held: never processed
    // nor failed, no report, for as long as clamd is away (3 s here, three
    // retries at retry_seconds = 1).
    let deadline = Instant::now() + WAIT;
    loop {
        let flows = spool.list_flows(&Default::default()).await.unwrap();
        if !flows.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "flow never registered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let flows = spool.list_flows(&Default::default()).await.unwrap();
        assert!(
            matches!(flows[0].state, FlowState::Received | FlowState::Processing),
            "a flow was {:?} while clamd was down",
            flows[0].state
        );
        let reports = std::fs::read_dir(d.outbox("acme"))
            .map(|r| r.count())
            .unwrap_or(0);
        assert_eq!(reports, 0, "something was answered while clamd was down");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = support::http::get(addr, "/metrics", &[]).await.text();
    assert!(
        m.contains("quai_antivirus_scans_total{outcome=\"unavailable\"} "),
        "{m}"
    );

    clamd.restart();
    let reports = d.wait_reports("acme", 1, WAIT).await;
    let r = report_json(&reports[0]);
    assert_ne!(r["status"], "rejected", "{r:#}");
    let flows = spool.list_flows(&Default::default()).await.unwrap();
    assert_eq!(flows[0].state, FlowState::Processed);
    d.stop().await;
}
