//! Lifecycle statuses from the partners (issue 15), through a real daemon
//! (`quai::run` with its drop zones, pipeline and deliverer): a recipient
//! drops a CDAR 210 Refusée with a reason and the supplier receives a CDAR
//! 210 that passes the official D22B XSD and BR-FR-CDV schematron
//! (`tests/cdar/check_cdar.py`, pyfrctc in the test venv); an unknown
//! invoice, a partner that is not the invoice's recipient and 205 after 210
//! are refused with their answers in the status flow's integration report;
//! 212 from the supplier reaches the recipient. The invoice's recipient is
//! seeded through the spool (an invoice delivery owed to it), as routing
//! would.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::common::{fixture, report_json, zip_of, TestDaemon};

const WAIT: Duration = Duration::from_secs(60);

/// CII_example1 as an invoice of a French seller (SIREN 732829320), numbered `number`.
fn invoice(number: &str) -> Vec<u8> {
    String::from_utf8(fixture("CII_example1.xml"))
        .unwrap()
        .replace(
            "<ram:ID>12115118</ram:ID>",
            &format!("<ram:ID>{number}</ram:ID>"),
        )
        .replace(
            "<ram:ID schemeID=\"VA\">NL8200.98.395.B.01</ram:ID>",
            "<ram:ID schemeID=\"VA\">FR44732829320</ram:ID>",
        )
        // The buyer's electronic address (BT-49): the invoice routes to `buyer`.
        .replace(
            "</ram:PostalTradeAddress>\n            </ram:BuyerTradeParty>",
            "</ram:PostalTradeAddress>\n<ram:URIUniversalCommunication><ram:URIID schemeID=\"0225\">552100554</ram:URIID></ram:URIUniversalCommunication>\n            </ram:BuyerTradeParty>",
        )
        .into_bytes()
}

/// A partner's CDAR with one status (processing phase, issuer `role`).
fn cdar(id: &str, role: &str, number: &str, code: &str, extra: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossDomainAcknowledgementAndResponse xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100" xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100" xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100" xmlns:qdt="urn:un:unece:uncefact:data:standard:QualifiedDataType:100">
  <rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>urn.cpro.gouv.fr:1p0:CDV:invoice</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter></rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument>
    <ram:ID>{id}</ram:ID>
    <ram:IssueDateTime><udt:DateTimeString format="204">20261001120000</udt:DateTimeString></ram:IssueDateTime>
    <ram:IssuerTradeParty><ram:GlobalID schemeID="0002">552100554</ram:GlobalID><ram:RoleCode>{role}</ram:RoleCode></ram:IssuerTradeParty>
  </rsm:ExchangedDocument>
  <rsm:AcknowledgementDocument>
    <ram:TypeCode>23</ram:TypeCode>
    <ram:ReferenceReferencedDocument>
      <ram:IssuerAssignedID>{number}</ram:IssuerAssignedID>
      <ram:FormattedIssueDateTime><qdt:DateTimeString format="102">20150109</qdt:DateTimeString></ram:FormattedIssueDateTime>
      <ram:ProcessConditionCode>{code}</ram:ProcessConditionCode>
      <ram:IssuerTradeParty><ram:GlobalID schemeID="0002">732829320</ram:GlobalID><ram:RoleCode>SE</ram:RoleCode></ram:IssuerTradeParty>
      {extra}
    </ram:ReferenceReferencedDocument>
  </rsm:AcknowledgementDocument>
</rsm:CrossDomainAcknowledgementAndResponse>"#
    )
    .into_bytes()
}

const REASON: &str = "<ram:SpecifiedDocumentStatus><ram:ReasonCode>TX_TVA_ERR</ram:ReasonCode><ram:Reason>taux de TVA erroné</ram:Reason><ram:SequenceNumeric>1</ram:SequenceNumeric></ram:SpecifiedDocumentStatus>";
const CASHED: &str = "<ram:SpecifiedDocumentStatus><ram:SequenceNumeric>1</ram:SequenceNumeric><ram:SpecifiedDocumentCharacteristic><ram:TypeCode>MEN</ram:TypeCode><ram:ValueAmount currencyID=\"EUR\">100.00</ram:ValueAmount><ram:ValuePercent>20.00</ram:ValuePercent></ram:SpecifiedDocumentCharacteristic></ram:SpecifiedDocumentStatus>";

/// Files of `dir` whose name contains `part`, waited for.
async fn wait_files(dir: &Path, part: &str, n: usize) -> Vec<PathBuf> {
    let start = Instant::now();
    loop {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|r| {
                r.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.file_name().unwrap().to_string_lossy().contains(part))
                    .collect()
            })
            .unwrap_or_default();
        if v.len() >= n {
            v.sort();
            return v;
        }
        assert!(
            start.elapsed() < WAIT,
            "no {part} in {}: {v:?}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The integration report of the status flow dropped as `name`.
async fn report_of(d: &TestDaemon, partner: &str, name: &str) -> serde_json::Value {
    let files = wait_files(&d.outbox(partner), &format!("{name}."), 1).await;
    let json = files
        .iter()
        .find(|p| p.to_string_lossy().ends_with(".report.json"))
        .cloned();
    let json = match json {
        Some(j) => j,
        None => wait_files(&d.outbox(partner), &format!("{name}."), 2)
            .await
            .into_iter()
            .find(|p| p.to_string_lossy().ends_with(".report.json"))
            .expect("a JSON report"),
    };
    report_json(&json)
}

fn check_cdar(files: &[PathBuf]) {
    let python = quai_test_support::venv::python_with(&["lxml", "saxonche"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cdar/check_cdar.py");
    let out = Command::new(python)
        .arg(script)
        .args(files)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().count(),
        files.len(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for l in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["ok"], true, "{v:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_from_partners_are_checked_recorded_and_relayed() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("quai.toml");
    std::fs::write(
        &path,
        "[http]\nlisten = \"off\"\n[dropzones]\nstable_seconds = 1\n\
         [[partner]]\nid = \"acme\"\n\
         [[partner]]\nid = \"buyer\"\naddresses = [\"0225:552100554\"]\n\
         [[partner]]\nid = \"intruder\"\n",
    )
    .unwrap();
    let config = quai::config::Config::load(&path).unwrap();
    let mut d = TestDaemon {
        home,
        config,
        stop: Default::default(),
        task: None,
    };
    d.start();
    d.drop_file(
        "acme",
        "invoices.zip",
        &zip_of(&[("1.xml", invoice("LC-1")), ("2.xml", invoice("LC-2"))]),
    );
    d.wait_reports("acme", 1, WAIT).await;
    let spool = d.spool().await;
    let flow = spool.list_flows(&Default::default()).await.unwrap()[0].id;
    // Routing's part (the exchange): both invoices routed to the buyer by
    // its address, sent (201) and put in its outbox (203), each relayed to
    // the supplier.

    // The buyer refuses LC-1, with a reason: the supplier gets a CDAR 210.
    d.drop_file(
        "buyer",
        "refusal.xml",
        &cdar("B-1", "BY", "LC-1", "210", REASON),
    );
    let r = report_of(&d, "buyer", "refusal.xml").await;
    assert!(r["rejection"].is_null(), "{r:#}");
    let relayed = wait_files(&d.outbox("acme"), ".210.", 1).await;
    let text = std::fs::read_to_string(&relayed[0]).unwrap();
    assert!(text.contains("<ram:ProcessConditionCode>210</ram:ProcessConditionCode>"));
    assert!(text.contains("TX_TVA_ERR") && text.contains("taux de TVA erroné"));
    assert!(text.contains("<ram:IssuerAssignedID>LC-1</ram:IssuerAssignedID>"));
    // The platform's 203 of both invoices, delivered together: one relay
    // naming both (a CDV MULTI), valid like the others.
    let platform = wait_files(&d.outbox("acme"), "-203.xml", 1).await;
    assert_eq!(platform.len(), 1, "{platform:?}");
    let multi = std::fs::read_to_string(&platform[0]).unwrap();
    for number in ["LC-1", "LC-2"] {
        assert!(
            multi.contains(&format!(
                "<ram:IssuerAssignedID>{number}</ram:IssuerAssignedID>"
            )),
            "{multi}"
        );
    }
    assert!(
        multi.contains("<udt:Indicator>true</udt:Indicator>"),
        "{multi}"
    );
    check_cdar(&[relayed.clone(), platform].concat());

    // 205 after 210, an unknown invoice, another partner: refused, answered.
    d.drop_file("buyer", "late.xml", &cdar("B-2", "BY", "LC-1", "205", ""));
    d.drop_file(
        "buyer",
        "unknown.xml",
        &cdar("B-3", "BY", "NOPE-9", "204", ""),
    );
    d.drop_file(
        "intruder",
        "other.xml",
        &cdar("X-1", "BY", "LC-2", "210", REASON),
    );
    let late = report_of(&d, "buyer", "late.xml").await;
    assert_eq!(late["rejection"]["code"], "STATUS_REFUSED", "{late:#}");
    assert!(
        late["rejection"]["message"]
            .as_str()
            .unwrap()
            .contains("205 may not follow 210"),
        "{late:#}"
    );
    let unknown = report_of(&d, "buyer", "unknown.xml").await;
    let unknown_msg = unknown["rejection"]["message"].as_str().unwrap();
    assert!(unknown_msg.contains("no invoice of yours"), "{unknown:#}");
    let other = report_of(&d, "intruder", "other.xml").await;
    let msg = other["rejection"]["message"].as_str().unwrap();
    assert!(msg.contains("no invoice of yours"), "{other:#}");
    assert!(
        !msg.contains("acme") && !msg.contains("buyer"),
        "names no partner: {msg}"
    );
    // the intruder hears what a sender of an unknown invoice hears
    assert_eq!(
        msg.split(": ").last(),
        unknown_msg.split(": ").last(),
        "{msg} / {unknown_msg}"
    );

    // The supplier says LC-2 is cashed: the buyer gets a CDAR 212.
    d.drop_file(
        "acme",
        "cashed.xml",
        &cdar("A-1", "SE", "LC-2", "212", CASHED),
    );
    let r = report_of(&d, "acme", "cashed.xml").await;
    assert!(r["rejection"].is_null(), "{r:#}");
    let to_buyer = wait_files(&d.outbox("buyer"), ".212.", 1).await;
    check_cdar(&to_buyer);

    let h1 = spool.statuses_of_invoice(flow, 0).await.unwrap();
    let codes: Vec<u16> = h1.iter().map(|s| s.code.code()).collect();
    assert_eq!(codes, [200, 201, 203, 210]);
    let h2 = spool.statuses_of_invoice(flow, 1).await.unwrap();
    let codes: Vec<u16> = h2.iter().map(|s| s.code.code()).collect();
    assert_eq!(codes, [200, 201, 203, 212]);
    // counted by code and outcome
    let m = quai::metrics::render(None);
    for series in [
        r#"quai_statuses_received_total{partner="buyer",code="210",outcome="recorded"} 1"#,
        r#"quai_statuses_received_total{partner="buyer",code="205",outcome="illegal_transition"} 1"#,
        r#"quai_statuses_received_total{partner="buyer",code="204",outcome="unknown_invoice"} 1"#,
        r#"quai_statuses_received_total{partner="intruder",code="210",outcome="not_your_invoice"} 1"#,
        r#"quai_statuses_received_total{partner="acme",code="212",outcome="recorded"} 1"#,
    ] {
        assert!(m.contains(series), "{series} not in\n{m}");
    }
    // the intruder changed nothing, and nothing of LC-2 went to the intruder
    assert!(std::fs::read_dir(d.outbox("intruder"))
        .unwrap()
        .flatten()
        .all(|e| e.file_name().to_string_lossy().starts_with("other.xml")));
    // reconciliation lists the statuses that matched nothing
    let report = quai::jobs::reconcile::reconcile(
        &quai::app::App::inspect(d.config.clone()).await.unwrap(),
        chrono::Utc::now() - chrono::Duration::hours(1),
        chrono::Utc::now() + chrono::Duration::hours(1),
        Default::default(),
    )
    .await
    .unwrap();
    let mut unmatched: Vec<_> = report
        .discrepancies
        .iter()
        .filter(|x| x.kind == "statuses_unmatched")
        .map(|x| x.partner.as_str())
        .collect();
    unmatched.sort();
    assert_eq!(
        unmatched,
        ["buyer", "intruder"],
        "{:#?}",
        report.discrepancies
    );
    d.stop().await;
}
