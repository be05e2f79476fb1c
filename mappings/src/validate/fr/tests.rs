//! Unit checks of the BR-FR layer on hand-made invoices (the conformance
//! against the official schematron is `mappings/tests/br_fr_conformance.rs`).

use rust_decimal::Decimal;

use super::*;
use crate::model::{Identifier, Note, Party};

fn french() -> Invoice {
    let id = |v: &str, s: &str| Identifier {
        value: v.into(),
        scheme: Some(s.into()),
    };
    Invoice {
        syntax: Some(Syntax::Cii),
        number: Some("F-2026-001".into()),
        type_code: Some("380".into()),
        business_process: Some("S1".into()),
        currency: Some("EUR".into()),
        notes: ["PMT", "PMD", "AAB"]
            .iter()
            .map(|c| Note {
                subject_code: Some(c.to_string()),
                text: "mention".into(),
            })
            .chain(std::iter::once(Note {
                subject_code: Some("BAR".into()),
                text: "B2B".into(),
            }))
            .collect(),
        seller: Party {
            legal_registration_id: Some(id("123456789", "0002")),
            identifiers: vec![id("12345678900011", "0009")],
            electronic_address: Some(id("123456789", "0225")),
            ..Party::default()
        },
        buyer: Party {
            legal_registration_id: Some(id("987654321", "0002")),
            electronic_address: Some(id("987654321_ap", "0225")),
            ..Party::default()
        },
        ..Invoice::default()
    }
}

fn ids(inv: &Invoice) -> Vec<String> {
    let mut v: Vec<String> = validate(inv, FrMode::Fatal)
        .into_iter()
        .map(|v| v.rule)
        .collect();
    v.sort();
    v
}

#[test]
fn a_french_invoice_passes() {
    assert_eq!(ids(&french()), Vec::<String>::new());
}

#[test]
fn ids_follow_the_syntax() {
    let mut inv = french();
    inv.notes
        .retain(|n| n.subject_code.as_deref() != Some("PMT"));
    assert_eq!(ids(&inv), ["BR-FR-05_BT-22_PMT"]);
    inv.syntax = Some(Syntax::Ubl);
    assert_eq!(ids(&inv), ["BR-FR-05_BT-22-1"]);
}

#[test]
fn warning_mode_makes_every_rule_a_warning() {
    let mut inv = french();
    inv.business_process = None;
    let found = validate(&inv, FrMode::Warning);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].severity, Severity::Warning);
    assert_eq!(validate(&inv, FrMode::Fatal)[0].severity, Severity::Fatal);
}

#[test]
fn decimals_read_the_written_scale() {
    let mut inv = french();
    inv.totals.amount_due = Some(Decimal::new(10_000, 3));
    assert_eq!(ids(&inv), ["BR-FR-DEC-01_BT-115"]);
}

#[test]
fn every_catalog_rule_has_distinct_ids() {
    let mut seen = std::collections::HashSet::new();
    for r in rules() {
        assert!(seen.insert(r.cii), "{} twice", r.cii);
    }
}

#[test]
fn edifact_gets_no_br_fr_finding() {
    let mut inv = french();
    inv.syntax = Some(Syntax::Edifact);
    inv.business_process = None;
    assert!(validate(&inv, FrMode::Fatal).is_empty());
}

#[test]
fn rates_and_decimals_as_the_schematron_reads_them() {
    use super::rules::{decimal_ok, vat_rate_ok};
    let d = |s: &str| s.parse::<Decimal>().unwrap();
    let listed = [
        "0", "0.0", "0.00", "10", "10.0", "10.00", "13", "13.0", "13.00", "20", "20.0", "20.00",
        "8.5", "8.50", "19.6", "19.60", "2.1", "2.10", "5.5", "5.50", "7", "7.0", "7.00", "20.6",
        "20.60", "1.05", "0.9", "0.90", "1.75", "9.2", "9.20", "9.6", "9.60",
    ];
    for r in listed {
        assert!(vat_rate_ok(d(r)), "{r}");
    }
    for r in ["20.000", "19", "5.55", "-20", "8.500", "100"] {
        assert!(!vat_rate_ok(d(r)), "{r}");
    }
    // ^[-]?\d{1,19}(\.\d{1,2})?$, at most 19 characters without the point.
    assert!(decimal_ok(d("0.05"), 2, true, 19));
    assert!(decimal_ok(d("-1234567890123456.78"), 2, true, 19));
    assert!(!decimal_ok(d("-12345678901234567.89"), 2, true, 19));
    assert!(decimal_ok(d("12345678901234567.89"), 2, true, 19));
    assert!(!decimal_ok(d("1.005"), 2, true, 19));
    assert!(!decimal_ok(d("-1"), 6, false, 19));
    assert!(decimal_ok(d("20.00"), 2, false, 4));
    assert!(!decimal_ok(d("100.00"), 2, false, 4));
    assert!(decimal_ok(d("0"), 2, false, 4));
}
