//! End to end on the embedded default: flows dropped into
//! `inbound/<partner>/` are taken durably, mapped, validated, spooled and
//! answered with an integration report in `outbound/<partner>/`.

mod support;

use std::time::Duration;

use quai_spool::{FlowState, Verdict};
use support::common::*;

const WAIT: Duration = Duration::from_secs(30);

/// A document of the test zip and what must become of it: (entry, verdict,
/// a rule expected among the fatal reasons).
type Expectation = (&'static str, Verdict, Option<&'static str>);

/// Invoices of the test zip and their expectations.
fn batch() -> (Vec<(&'static str, Vec<u8>)>, Vec<Expectation>) {
    let ubl = fixture_str("ubl-tc434-example2.xml");
    // Amount due no longer equals total with VAT − paid + rounding.
    let wrong_due = ubl.replace(
        "<cbc:PayableAmount currencyID=\"NOK\">801.78</cbc:PayableAmount>",
        "<cbc:PayableAmount currencyID=\"NOK\">901.78</cbc:PayableAmount>",
    );
    assert_ne!(wrong_due, ubl, "fixture changed: PayableAmount not found");
    let wrong_due = wrong_due.replace("<cbc:ID>TOSL108</cbc:ID>", "<cbc:ID>TOSL108-B</cbc:ID>");
    // No invoice number at all.
    let no_number = ubl.replacen("<cbc:ID>TOSL108</cbc:ID>", "", 1);
    let cii = fixture_str("CII_example1.xml");
    // Grand total no longer equals total without VAT + VAT (and amount due follows it).
    let wrong_grand = cii
        .replace(
            "<ram:GrandTotalAmount>250.33</ram:GrandTotalAmount>",
            "<ram:GrandTotalAmount>260.33</ram:GrandTotalAmount>",
        )
        .replace(
            "<ram:DuePayableAmount>250.33</ram:DuePayableAmount>",
            "<ram:DuePayableAmount>260.33</ram:DuePayableAmount>",
        )
        .replace("<ram:ID>12115118</ram:ID>", "<ram:ID>12115118-B</ram:ID>");
    assert_ne!(wrong_grand, cii);
    let entries = vec![
        ("ubl-valid.xml", ubl.clone().into_bytes()),
        ("creditnote-valid.xml", fixture("ubl-tc434-creditnote1.xml")),
        ("cii-valid.xml", cii.into_bytes()),
        ("cii-valid-2.xml", fixture("CII_example4.xml")),
        ("ubl-wrong-due.xml", wrong_due.into_bytes()),
        ("ubl-no-number.xml", no_number.into_bytes()),
        ("cii-br-co-15.xml", wrong_grand.into_bytes()),
        ("ubl-br-07.xml", fixture("BR-07__fail__1.xml")),
        ("reminder.xml", fixture("UBL-Reminder-2.1-Example.xml")),
    ];
    let expected = vec![
        ("batch.zip/ubl-valid.xml", Verdict::Accepted, None),
        ("batch.zip/creditnote-valid.xml", Verdict::Accepted, None),
        ("batch.zip/cii-valid.xml", Verdict::Accepted, None),
        ("batch.zip/cii-valid-2.xml", Verdict::Accepted, None),
        (
            "batch.zip/ubl-wrong-due.xml",
            Verdict::Rejected,
            Some("BR-CO-16"),
        ),
        (
            "batch.zip/ubl-no-number.xml",
            Verdict::Rejected,
            Some("BR-02"),
        ),
        (
            "batch.zip/cii-br-co-15.xml",
            Verdict::Rejected,
            Some("BR-CO-15"),
        ),
        ("batch.zip/ubl-br-07.xml", Verdict::Rejected, Some("BR-07")),
        (
            "batch.zip/reminder.xml",
            Verdict::Rejected,
            Some("IRR_TYPE_F"),
        ),
    ];
    (entries, expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zip_of_valid_and_invalid_invoices_is_spooled_and_reported() {
    let mut d = TestDaemon::new();
    d.start();
    let (entries, expected) = batch();
    let zip = zip_of(&entries);
    d.drop_file("acme", "batch.zip", &zip);

    let reports = d.wait_reports("acme", 1, WAIT).await;
    assert_eq!(reports.len(), 1);
    let report = report_json(&reports[0]);
    assert!(
        reports[0].with_extension("xml").exists(),
        "XML report written beside the JSON one"
    );

    // The source is gone from the drop zone, the raw flow is in the store.
    assert!(
        !d.inbox("acme").join("batch.zip").exists(),
        "source removed after commit"
    );
    let spool = d.spool().await;
    let flows = spool.list_flows(&Default::default()).await.unwrap();
    assert_eq!(flows.len(), 1);
    let flow = &flows[0];
    assert_eq!(flow.state, FlowState::Processed);
    assert_eq!(flow.original_name, "batch.zip");
    let stored = quai_connectors::landing::stored_path(&d.config.store, &flow.sha256);
    assert_eq!(
        std::fs::read(&stored).unwrap(),
        zip,
        "raw flow kept byte for byte"
    );

    // Spool rows: one per document, with the right verdict and rule ids.
    let invoices = spool.invoices_of_flow(flow.id).await.unwrap();
    assert_eq!(invoices.len(), expected.len());
    for (row, (entry, verdict, rule)) in invoices.iter().zip(&expected) {
        assert_eq!(row.entry, *entry);
        let rules: Vec<_> = row
            .reasons
            .iter()
            .filter(|r| r.severity == "fatal")
            .map(|r| r.rule.as_str())
            .collect();
        assert_eq!(row.verdict, *verdict, "{entry}: reasons {:?}", row.reasons);
        if let Some(rule) = rule {
            assert!(
                rules.contains(rule),
                "{entry}: expected {rule} among {rules:?}"
            );
        } else {
            assert!(
                rules.is_empty(),
                "{entry}: unexpected fatal reasons {:?}",
                row.reasons
            );
        }
    }
    assert_eq!(invoices[0].number.as_deref(), Some("TOSL108"));

    // The report says the same.
    assert_eq!(report["status"], "processed");
    assert_eq!(report["counts"]["documents"], 9);
    assert_eq!(report["counts"]["accepted"], 4);
    assert_eq!(report["counts"]["rejected"], 5);
    let wrong_due = &report["documents"][4];
    assert_eq!(wrong_due["invoice_number"], "TOSL108-B");
    assert_eq!(wrong_due["status"], "rejected");
    assert!(wrong_due["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["rule"] == "BR-CO-16" && r["term"].as_str().unwrap().starts_with("BT-")));

    // Status counts.
    let status = serde_json::to_value(spool.status().await.unwrap()).unwrap();
    assert_eq!(status["totals"]["flows"]["processed"], 1);
    assert_eq!(status["totals"]["invoices"]["accepted"], 4);
    assert_eq!(status["totals"]["invoices"]["rejected"], 5);
    assert_eq!(status["partners"][0]["partner"], "acme");

    // The same file dropped again is a duplicate, not processed twice.
    d.drop_file("acme", "batch-again.zip", &zip);
    let start = std::time::Instant::now();
    loop {
        let flows = spool.list_flows(&Default::default()).await.unwrap();
        if flows.iter().any(|f| f.state == FlowState::Duplicate) {
            let dup = flows
                .iter()
                .find(|f| f.state == FlowState::Duplicate)
                .unwrap();
            assert_eq!(dup.duplicate_of, Some(flow.id));
            break;
        }
        assert!(start.elapsed() < WAIT, "duplicate never recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!d.inbox("acme").join("batch-again.zip").exists());
    // ... and answered again: a report saying it is a duplicate of the first.
    let reports = d.wait_reports("acme", 2, WAIT).await;
    let dup = reports
        .iter()
        .map(|p| report_json(p))
        .find(|r| r["status"] == "duplicate")
        .expect("duplicate report");
    assert_eq!(dup["duplicate_of"], flow.id);
    assert_eq!(dup["flow"]["file"], "batch-again.zip");
    let status = serde_json::to_value(spool.status().await.unwrap()).unwrap();
    assert_eq!(
        status["totals"]["invoices"]["accepted"], 4,
        "duplicate flow adds no invoice"
    );
    assert_eq!(status["totals"]["invoices"]["rejected"], 5);

    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_left_while_down_are_taken_at_start_and_partials_are_not() {
    let mut d = TestDaemon::new();
    // Before the daemon starts: one complete flow, one upload still in progress.
    let ubl = fixture("ubl-tc434-example2.xml");
    let inbox = d.inbox("globex");
    std::fs::write(inbox.join("early.xml"), &ubl).unwrap();
    std::fs::write(inbox.join("late.xml.part"), &ubl).unwrap();
    std::fs::write(inbox.join(".hidden.xml"), &ubl).unwrap();
    d.start();
    let reports = d.wait_reports("globex", 1, WAIT).await;
    assert!(reports[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("early.xml."));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        inbox.join("late.xml.part").exists(),
        ".part upload left alone"
    );
    assert!(inbox.join(".hidden.xml").exists(), "dot file left alone");
    assert_eq!(d.wait_reports("globex", 1, WAIT).await.len(), 1);

    // The upload completes by a rename: now it is taken.
    let mut other = String::from_utf8(ubl).unwrap();
    other = other.replace("<cbc:ID>TOSL108</cbc:ID>", "<cbc:ID>TOSL109</cbc:ID>");
    std::fs::write(inbox.join("late.xml.part"), other).unwrap();
    std::fs::rename(inbox.join("late.xml.part"), inbox.join("late.xml")).unwrap();
    let reports = d.wait_reports("globex", 2, WAIT).await;
    assert_eq!(reports.len(), 2);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inadmissible_flows_get_a_report_with_their_reason() {
    let mut d = TestDaemon::new();
    d.start();
    d.drop_file("initech", "empty.xml", b"");
    d.drop_file(
        "initech",
        "random.bin",
        &[0x13, 0x37, 0xfe, 0x00, 0x42, 0x99, 0x01, 0x02],
    );
    d.drop_file("initech", "broken.xml", b"<?xml version=\"1.0\"?><Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\"><cbc:ID>");
    let reports = d.wait_reports("initech", 3, WAIT).await;
    let mut codes: Vec<(String, String)> = reports
        .iter()
        .map(|p| {
            let r = report_json(p);
            assert_eq!(r["status"], "rejected", "{}", p.display());
            assert!(!r["rejection"]["message"].as_str().unwrap().is_empty());
            (
                r["flow"]["file"].as_str().unwrap().to_string(),
                r["rejection"]["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        vec![
            ("broken.xml".to_string(), "IRR_SYNTAX".to_string()),
            ("empty.xml".to_string(), "IRR_VIDE_F".to_string()),
            ("random.bin".to_string(), "IRR_TYPE_F".to_string()),
        ]
    );
    let spool = d.spool().await;
    let status = serde_json::to_value(spool.status().await.unwrap()).unwrap();
    assert_eq!(status["totals"]["flows"]["failed"], 3);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tar_gz_of_cii_and_ubl() {
    let mut d = TestDaemon::new();
    d.start();
    let entries = vec![
        ("inv/a.xml", fixture("CII_example4.xml")),
        ("inv/b.xml", fixture("ubl-tc434-creditnote1.xml")),
    ];
    d.drop_file("hooli", "batch.tar.gz", &targz_of(&entries));
    let reports = d.wait_reports("hooli", 1, WAIT).await;
    let r = report_json(&reports[0]);
    assert_eq!(r["counts"]["accepted"], 2, "{r:#}");
    assert_eq!(r["documents"][0]["entry"], "batch.tar.gz/inv/a.xml");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdar_statuses_one_file_per_flow_or_per_invoice_on_request() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("quai.toml");
    let text = "[http]\nlisten = \"off\"\n[dropzones]\nstable_seconds = 1\n\
                [[partner]]\nid = \"perinvoice\"\ncdar_per_invoice = true\n";
    std::fs::write(&path, text).unwrap();
    let config = quai::config::Config::load(&path).unwrap();
    let mut d = TestDaemon {
        home,
        config,
        stop: Default::default(),
        task: None,
    };
    d.start();
    let two = zip_of(&[
        ("a.xml", fixture("CII_example4.xml")),
        ("b.xml", fixture("ubl-tc434-creditnote1.xml")),
    ]);
    d.drop_file("perflow", "two.zip", &two);
    d.drop_file("perinvoice", "two.zip", &two);
    d.wait_reports("perflow", 1, WAIT).await;
    d.wait_reports("perinvoice", 1, WAIT).await;
    let names = |partner: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d.outbox(partner))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".cdar"))
            .collect();
        v.sort();
        v
    };
    // The CDAR file is delivered after the report: wait for it.
    let start = std::time::Instant::now();
    while names("perflow").is_empty() || names("perinvoice").len() < 2 {
        assert!(start.elapsed() < WAIT, "CDAR files not delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Flow ids depend on which drop is taken first.
    let per_flow = names("perflow");
    assert_eq!(per_flow.len(), 1, "{per_flow:?}");
    assert!(
        per_flow[0].starts_with("two.zip.") && per_flow[0].ends_with(".cdar.xml"),
        "{per_flow:?}"
    );
    let one = std::fs::read_to_string(d.outbox("perflow").join(&per_flow[0])).unwrap();
    let statuses = |x: &str| x.matches("<ram:ProcessConditionCode>").count();
    assert_eq!(statuses(&one), 2, "two statuses in one file:\n{one}");
    let per_invoice = names("perinvoice");
    assert_eq!(per_invoice.len(), 2, "{per_invoice:?}");
    assert!(
        per_invoice[0].ends_with(".cdar.1.xml") && per_invoice[1].ends_with(".cdar.2.xml"),
        "{per_invoice:?}"
    );
    for n in &per_invoice {
        let x = std::fs::read_to_string(d.outbox("perinvoice").join(n)).unwrap();
        // (Rejected as duplicates here: the same invoices came from the
        // other partner first; still one status per file.)
        assert_eq!(statuses(&x), 1, "one status per file:\n{x}");
    }
    d.stop().await;
}
