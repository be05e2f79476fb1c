//! Relayed lifecycle statuses (issue 15): what `ack::cdar::relay_xml` writes
//! for a buyer's 204 and 210, a supplier's 212 and the platform's 203 passes
//! the official D22B XSD and the BR-FR-CDV schematron (the checker
//! `daemon/tests/cdar/check_cdar.py`, pyfrctc in the test venv: never a
//! skip), and `ack::cdar_read` reads back what it wrote.

use std::path::PathBuf;
use std::process::Command;

use chrono::{NaiveDate, TimeZone, Utc};
use quai_mappings::ack::cdar::{relay_xml, relays_xml, CdarParty, CdarRelay, RelayedStatus};
use quai_mappings::ack::cdar_read;

fn relay(code: u16, label: &str, issuer_role: &str) -> CdarRelay {
    let at = Utc.with_ymd_and_hms(2026, 10, 1, 12, 0, 0).unwrap();
    let (issuer, recipient) = match issuer_role {
        "SE" => (
            CdarParty {
                global_id: Some(("0002".into(), "732829320".into())),
                name: Some("acme".into()),
                role: "SE".into(),
            },
            CdarParty {
                global_id: Some(("0002".into(), "552100554".into())),
                name: Some("buyer".into()),
                role: "BY".into(),
            },
        ),
        _ => (
            CdarParty {
                global_id: Some(("0002".into(), "552100554".into())),
                name: Some("buyer".into()),
                role: issuer_role.into(),
            },
            CdarParty {
                global_id: Some(("0002".into(), "732829320".into())),
                name: Some("acme".into()),
                role: "SE".into(),
            },
        ),
    };
    CdarRelay {
        id: format!("quai-status-{code}"),
        name: format!("INV-1-{code}"),
        issued_at: at,
        issuer,
        recipient,
        status: RelayedStatus {
            invoice_number: "INV-1".into(),
            type_code: "380".into(),
            issue_date: NaiveDate::from_ymd_opt(2026, 9, 30).unwrap(),
            seller_id: Some("FR44732829320".into()),
            code,
            label: label.into(),
            at,
            reasons: vec![],
            amounts: vec![],
        },
    }
}

fn checker() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../daemon/tests/cdar/check_cdar.py")
}

#[test]
fn relayed_statuses_pass_the_official_schemas_and_read_back() {
    let mut refused = relay(210, "Refusée", "BY");
    refused.status.reasons = vec![(
        "TX_TVA_ERR".into(),
        Some("taux de TVA <erroné> & base".into()),
    )];
    let mut cashed = relay(212, "Encaissée", "SE");
    cashed.status.amounts = vec![(
        "MEN".into(),
        "120.00".into(),
        Some("EUR".into()),
        Some("20.00".into()),
    )];
    let cases = [
        relay(204, "Prise en charge", "BY"),
        refused,
        cashed,
        relay(203, "Mise à disposition", "WK"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for c in &cases {
        let xml = relay_xml(c);
        // read back
        let mut read = Vec::new();
        let head = cdar_read::read(xml.as_bytes(), |s| read.push(s)).unwrap();
        assert!(head.problems.is_empty(), "{:?}", head.problems);
        assert_eq!(read.len(), 1);
        let r = &read[0];
        assert!(r.is_usable(), "{}: {:?}", c.status.code, r.problems);
        assert_eq!(r.code, c.status.code.to_string());
        assert_eq!(r.invoice_number, "INV-1");
        assert_eq!(r.issue_date, Some(c.status.issue_date));
        assert_eq!(r.seller, Some((Some("0002".into()), "732829320".into())));
        let reasons: Vec<_> = r
            .reasons
            .iter()
            .map(|x| (x.code.clone(), x.text.clone()))
            .collect();
        assert_eq!(reasons, c.status.reasons);
        assert_eq!(r.amounts.len(), c.status.amounts.len());
        let f = dir.path().join(format!("{}.xml", c.status.code));
        std::fs::write(&f, xml).unwrap();
        files.push(f);
    }
    let python = quai_test_support::venv::python_with(&["lxml", "saxonche"]);
    let out = Command::new(python)
        .arg(checker())
        .args(&files)
        .output()
        .expect("run check_cdar.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        files.len(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for l in &lines {
        assert_eq!(l["ok"], true, "{l:#}");
    }
    assert_eq!(out.status.code(), Some(0));
}

/// The platform's 201 and 203 of several invoices of one flow in one
/// document (a relay group, issue 15's "Scale"): one
/// `ram:ReferenceReferencedDocument` per invoice, `MultipleReferencesIndicator`
/// true, valid by the same official schemas, and read back as one status
/// per invoice.
#[test]
fn a_relay_naming_several_invoices_passes_the_official_schemas_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (code, label) in [(201, "Émise"), (203, "Mise à disposition")] {
        let head = relay(code, label, "WK");
        let statuses: Vec<RelayedStatus> = (1..=3)
            .map(|i| RelayedStatus {
                invoice_number: format!("INV-{i}"),
                ..head.status.clone()
            })
            .collect();
        let xml = relays_xml(&head, &statuses);
        assert!(xml.contains("<udt:Indicator>true</udt:Indicator>"), "{xml}");
        assert_eq!(
            xml.matches("<ram:ReferenceReferencedDocument>").count(),
            3,
            "{xml}"
        );
        let mut read = Vec::new();
        let h = cdar_read::read(xml.as_bytes(), |s| read.push(s)).unwrap();
        assert!(h.problems.is_empty(), "{:?}", h.problems);
        let numbers: Vec<&str> = read.iter().map(|r| r.invoice_number.as_str()).collect();
        assert_eq!(numbers, ["INV-1", "INV-2", "INV-3"]);
        for r in &read {
            assert!(r.is_usable(), "{code}: {:?}", r.problems);
            assert_eq!(r.code, code.to_string());
        }
        // One status alone is the single relay, byte for byte.
        assert_eq!(
            relays_xml(&head, std::slice::from_ref(&head.status)),
            relay_xml(&head)
        );
        let f = dir.path().join(format!("group-{code}.xml"));
        std::fs::write(&f, xml).unwrap();
        files.push(f);
    }
    let python = quai_test_support::venv::python_with(&["lxml", "saxonche"]);
    let out = Command::new(python)
        .arg(checker())
        .args(&files)
        .output()
        .expect("run check_cdar.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        files.len(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for l in &lines {
        assert_eq!(l["ok"], true, "{l:#}");
    }
    assert_eq!(out.status.code(), Some(0));
}
