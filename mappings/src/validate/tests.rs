//! Unit tests: one complete, valid invoice, and for each rule a mutation of
//! it that must fire that rule (and the valid one must fire nothing).

use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::*;

type InvoiceCase = (&'static str, fn(&mut Invoice));
type LineCase = (&'static str, fn(&mut Line));
use crate::model::*;

pub(super) fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn addr(country: &str) -> Address {
    Address {
        line1: Some("1 rue de la Paix".into()),
        city: Some("Paris".into()),
        post_code: Some("75001".into()),
        country_code: Some(country.into()),
        ..Default::default()
    }
}

pub(super) fn line(
    id: &str,
    qty: &str,
    price: &str,
    net: &str,
    cat: &str,
    rate: Option<&str>,
) -> Line {
    Line {
        id: Some(id.into()),
        quantity: Some(d(qty)),
        unit_code: Some("C62".into()),
        net_amount: Some(d(net)),
        net_price: Some(d(price)),
        vat_category: Some(cat.into()),
        vat_rate: rate.map(d),
        item_name: Some(format!("Item {id}")),
        ..Default::default()
    }
}

/// A valid standard-rated invoice: two lines at 20 %, one at 5.5 %, one
/// allowance and one charge at 20 %.
pub(super) fn valid() -> Invoice {
    Invoice {
        syntax: Some(Syntax::Ubl),
        profile: Some(Profile::En16931),
        kind: DocumentKind::Invoice,
        number: Some("INV-1".into()),
        issue_date: Some(date("2024-03-01")),
        type_code: Some("380".into()),
        currency: Some("EUR".into()),
        due_date: Some(date("2024-03-31")),
        specification_id: Some("urn:cen.eu:en16931:2017".into()),
        seller: Party {
            name: Some("Acme SA".into()),
            vat_id: Some("FR32123456789".into()),
            address: Some(addr("FR")),
            ..Default::default()
        },
        buyer: Party {
            name: Some("Buyer GmbH".into()),
            address: Some(addr("DE")),
            ..Default::default()
        },
        lines: vec![
            line("1", "2", "50.00", "100.00", "S", Some("20")),
            line("2", "1", "23.45", "23.45", "S", Some("20")),
            line("3", "10", "1.00", "10.00", "S", Some("5.5")),
        ],
        allowances: vec![DocumentAllowanceCharge {
            amount: Some(d("3.45")),
            vat_category: Some("S".into()),
            vat_rate: Some(d("20")),
            reason: Some("Discount".into()),
            ..Default::default()
        }],
        charges: vec![DocumentAllowanceCharge {
            amount: Some(d("5.00")),
            vat_category: Some("S".into()),
            vat_rate: Some(d("20")),
            reason: Some("Freight".into()),
            ..Default::default()
        }],
        // 20 %: 100 + 23.45 - 3.45 + 5 = 125.00 -> 25.00; 5.5 %: 10 -> 0.55
        vat_breakdown: vec![
            VatBreakdown {
                taxable_amount: Some(d("125.00")),
                tax_amount: Some(d("25.00")),
                category: Some("S".into()),
                rate: Some(d("20")),
                ..Default::default()
            },
            VatBreakdown {
                taxable_amount: Some(d("10.00")),
                tax_amount: Some(d("0.55")),
                category: Some("S".into()),
                rate: Some(d("5.5")),
                ..Default::default()
            },
        ],
        totals: Totals {
            line_net_total: Some(d("133.45")),
            allowance_total: Some(d("3.45")),
            charge_total: Some(d("5.00")),
            total_without_vat: Some(d("135.00")),
            vat_total: Some(d("25.55")),
            total_with_vat: Some(d("160.55")),
            prepaid: Some(d("10.00")),
            amount_due: Some(d("150.55")),
            ..Default::default()
        },
        ..Default::default()
    }
}

pub(super) fn ids(v: &[Violation]) -> Vec<String> {
    v.iter().map(|x| x.rule.clone()).collect()
}

/// Assert that `inv` fires `rule` and, apart from the listed `also`
/// rules, nothing else.
#[track_caller]
pub(super) fn fires(inv: &Invoice, rule: &str) -> Violation {
    let v = validate(inv);
    let hit = v.iter().find(|x| x.rule == rule).cloned();
    match hit {
        Some(h) => h,
        None => panic!("expected {rule}, got {:?}", v),
    }
}

#[track_caller]
pub(super) fn quiet(inv: &Invoice, rule: &str) {
    let v = validate(inv);
    assert!(
        !v.iter().any(|x| x.rule == rule),
        "did not expect {rule}: {v:#?}"
    );
}

#[test]
fn the_valid_invoice_passes_every_rule() {
    let v = validate(&valid());
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn every_emitted_rule_is_in_the_catalog_and_ids_are_unique() {
    let mut seen = std::collections::HashSet::new();
    for r in rules() {
        assert!(seen.insert(r.id), "duplicate catalog id {}", r.id);
        assert!(
            r.term.starts_with("BT-") || r.term.starts_with("BG-"),
            "{}",
            r.id
        );
    }
}

#[test]
fn rules_doc_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/rules.md");
    let want = rules_markdown();
    if std::env::var_os("QUAI_BLESS").is_some() {
        std::fs::write(path, &want).unwrap();
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "docs/rules.md is stale: run QUAI_BLESS=1 cargo test -p quai-mappings rules_doc"
    );
}

#[test]
fn amounts_are_printed_for_accountants() {
    assert_eq!(amt(d("1234.5")), "1,234.50");
    assert_eq!(amt(d("-1234567.891")), "-1,234,567.891");
    assert_eq!(amt(d("0")), "0.00");
    assert_eq!(amt(d("999")), "999.00");
}

#[test]
fn round2_is_half_up_like_xpath() {
    assert_eq!(round2(d("1.005")), Some(d("1.01")));
    assert_eq!(round2(d("-1.005")), Some(d("-1.00")));
    assert_eq!(round2(d("2.344")), Some(d("2.34")));
}

// ---------------------------------------------------------------- core

#[test]
fn br_01_to_br_07_mandatory_document_terms() {
    let cases: [InvoiceCase; 7] = [
        ("BR-01", |i| i.specification_id = None),
        ("BR-02", |i| i.number = Some(String::new())),
        ("BR-03", |i| i.issue_date = None),
        ("BR-04", |i| i.type_code = None),
        ("BR-05", |i| i.currency = None),
        ("BR-06", |i| i.seller.name = None),
        ("BR-07", |i| i.buyer.name = None),
    ];
    for (rule, mutate) in cases {
        quiet(&valid(), rule);
        let mut inv = valid();
        mutate(&mut inv);
        let v = fires(&inv, rule);
        assert_eq!(v.severity, Severity::Fatal);
    }
}

#[test]
fn br_08_to_br_11_postal_addresses() {
    let mut inv = valid();
    inv.seller.address = None;
    assert_eq!(fires(&inv, "BR-08").term, "BG-5");
    let mut inv = valid();
    inv.seller.address.as_mut().unwrap().country_code = None;
    assert_eq!(fires(&inv, "BR-09").term, "BT-40");
    let mut inv = valid();
    inv.buyer.address = None;
    fires(&inv, "BR-10");
    quiet(&inv, "BR-11");
    let mut inv = valid();
    inv.buyer.address.as_mut().unwrap().country_code = Some(String::new());
    fires(&inv, "BR-11");
}

#[test]
fn br_12_to_br_16_totals_and_lines_present() {
    let cases: [InvoiceCase; 5] = [
        ("BR-12", |i| i.totals.line_net_total = None),
        ("BR-13", |i| i.totals.total_without_vat = None),
        ("BR-14", |i| i.totals.total_with_vat = None),
        ("BR-15", |i| i.totals.amount_due = None),
        ("BR-16", |i| i.lines.clear()),
    ];
    for (rule, mutate) in cases {
        let mut inv = valid();
        mutate(&mut inv);
        fires(&inv, rule);
    }
}

#[test]
fn br_17_to_br_20_and_br_56_payee_and_tax_representative() {
    let mut inv = valid();
    inv.payee = Some(Payee {
        name: Some("Factor Bank".into()),
        ..Default::default()
    });
    quiet(&inv, "BR-17");
    inv.payee = Some(Payee::default());
    fires(&inv, "BR-17");

    let mut inv = valid();
    inv.tax_representative = Some(TaxRepresentative {
        name: Some("Rep".into()),
        vat_id: Some("FR11999999999".into()),
        address: Some(addr("FR")),
    });
    assert!(validate(&inv).is_empty());
    let rep = inv.tax_representative.as_mut().unwrap();
    rep.name = None;
    rep.vat_id = None;
    rep.address.as_mut().unwrap().country_code = None;
    let got = ids(&validate(&inv)).join(" ");
    assert_eq!(got, "BR-18 BR-20 BR-56");
    inv.tax_representative.as_mut().unwrap().address = None;
    fires(&inv, "BR-19");
}

#[test]
fn br_21_to_br_28_line_terms() {
    let cases: [LineCase; 8] = [
        ("BR-21", |l| l.id = None),
        ("BR-22", |l| l.quantity = None),
        ("BR-23", |l| l.unit_code = None),
        ("BR-24", |l| l.net_amount = None),
        ("BR-25", |l| l.item_name = None),
        ("BR-26", |l| l.net_price = None),
        ("BR-27", |l| l.net_price = Some(d("-1"))),
        ("BR-28", |l| l.gross_price = Some(d("-0.01"))),
    ];
    for (rule, mutate) in cases {
        let mut inv = valid();
        mutate(&mut inv.lines[1]);
        let v = fires(&inv, rule);
        assert!(v.message.contains("line 2"), "{}", v.message);
    }
    let mut inv = valid();
    inv.lines[0].gross_price = Some(d("0"));
    quiet(&inv, "BR-28");
}

#[test]
fn br_29_br_30_br_co_19_br_co_20_periods() {
    let mut inv = valid();
    inv.invoicing_period = Some(Period {
        start: Some(date("2024-02-01")),
        end: Some(date("2024-02-29")),
    });
    inv.lines[0].period = Some(Period {
        start: Some(date("2024-02-01")),
        end: Some(date("2024-02-01")),
    });
    assert!(validate(&inv).is_empty());
    inv.invoicing_period = Some(Period {
        start: Some(date("2024-02-02")),
        end: Some(date("2024-02-01")),
    });
    inv.lines[0].period = Some(Period {
        start: Some(date("2024-02-02")),
        end: Some(date("2024-02-01")),
    });
    assert_eq!(ids(&validate(&inv)), ["BR-29", "BR-30"]);
    inv.invoicing_period = Some(Period::default());
    inv.lines[0].period = Some(Period::default());
    assert_eq!(ids(&validate(&inv)), ["BR-CO-19", "BR-CO-20"]);
}

#[test]
fn br_31_to_br_38_document_allowances_and_charges() {
    let mut inv = valid();
    inv.allowances[0].amount = None;
    inv.allowances[0].vat_category = None;
    inv.allowances[0].reason = None;
    let got = ids(&validate(&inv));
    for r in ["BR-31", "BR-32", "BR-33", "BR-CO-21"] {
        assert!(got.iter().any(|g| g == r), "{r} in {got:?}");
    }
    let mut inv = valid();
    inv.charges[0].amount = None;
    inv.charges[0].vat_category = None;
    inv.charges[0].reason = None;
    inv.charges[0].reason_code = Some("FC".into());
    let got = ids(&validate(&inv));
    assert!(
        got.iter().any(|g| g == "BR-36") && got.iter().any(|g| g == "BR-37"),
        "{got:?}"
    );
    assert!(
        !got.iter().any(|g| g == "BR-38") && !got.iter().any(|g| g == "BR-CO-22"),
        "{got:?}"
    );
}

#[test]
fn br_41_to_br_44_line_allowances_and_charges() {
    let mut inv = valid();
    inv.lines[0].allowances.push(LineAllowanceCharge {
        amount: Some(d("0")),
        reason: Some("x".into()),
        ..Default::default()
    });
    assert!(validate(&inv).is_empty());
    inv.lines[0].allowances.push(LineAllowanceCharge::default());
    inv.lines[0].charges.push(LineAllowanceCharge::default());
    let got = ids(&validate(&inv)).join(" ");
    assert_eq!(got, "BR-41 BR-42 BR-CO-23 BR-43 BR-44 BR-CO-24");
}

#[test]
fn br_45_to_br_48_vat_breakdown_terms() {
    let mut inv = valid();
    inv.vat_breakdown[1].taxable_amount = None;
    inv.vat_breakdown[1].tax_amount = None;
    inv.vat_breakdown[1].rate = None;
    let got = ids(&validate(&inv));
    for r in ["BR-45", "BR-46", "BR-48"] {
        assert!(got.iter().any(|g| g == r), "{r} in {got:?}");
    }
    inv.vat_breakdown[1].category = None;
    fires(&inv, "BR-47");
}

#[test]
fn br_49_br_50_br_51_br_61_payment() {
    let mut inv = valid();
    inv.payment = Some(PaymentInstructions {
        means_code: Some("58".into()),
        credit_transfers: vec![CreditTransfer {
            account_id: Some("FR7630006000011234567890189".into()),
            ..Default::default()
        }],
        ..Default::default()
    });
    assert!(validate(&inv).is_empty());
    let pay = inv.payment.as_mut().unwrap();
    pay.credit_transfers[0].account_id = None;
    let got = ids(&validate(&inv));
    assert_eq!(got, ["BR-50", "BR-61"]);
    let pay = inv.payment.as_mut().unwrap();
    pay.means_code = None;
    pay.credit_transfers.clear();
    pay.card = Some(PaymentCard {
        primary_account_number: Some("4111111111111111".into()),
        holder_name: None,
    });
    let v = validate(&inv);
    assert_eq!(ids(&v), ["BR-49", "BR-51"]);
    assert_eq!(v[1].severity, Severity::Warning);
}

#[test]
fn br_52_to_br_57_and_br_62_to_br_65() {
    let mut inv = valid();
    inv.attachments.push(Attachment::default());
    inv.vat_currency = Some("SEK".into());
    inv.lines[0].attributes.push(ItemAttribute {
        name: "Colour".into(),
        value: String::new(),
    });
    inv.preceding_invoices.push(PrecedingInvoice::default());
    inv.delivery = Some(Delivery {
        address: Some(Address::default()),
        ..Default::default()
    });
    inv.seller.electronic_address = Some(Identifier::new("acme@example.org"));
    inv.buyer.electronic_address = Some(Identifier::new("buyer@example.org"));
    inv.lines[0].standard_item_id = Some(Identifier::new("4000001234561"));
    inv.lines[0].classifications.push(Classification {
        value: "12345".into(),
        ..Default::default()
    });
    let got = ids(&validate(&inv)).join(" ");
    assert_eq!(got, "BR-52 BR-53 BR-55 BR-57 BR-62 BR-63 BR-54 BR-64 BR-65");
}

// ---------------------------------------------------------------- calc

#[test]
fn br_co_10_sum_of_line_net_amounts() {
    let mut inv = valid();
    inv.totals.line_net_total = Some(d("130.00"));
    let v = fires(&inv, "BR-CO-10");
    assert_eq!(v.term, "BT-106");
    assert!(
        v.message.contains("133.45") && v.message.contains("130.00"),
        "{}",
        v.message
    );
    // The schematron rounds the sum to 2 decimals before comparing.
    let mut inv = valid();
    inv.lines[2].net_amount = Some(d("10.004"));
    quiet(&inv, "BR-CO-10");
}

#[test]
fn br_co_11_br_co_12_document_allowance_and_charge_sums() {
    let mut inv = valid();
    inv.totals.allowance_total = Some(d("3.40"));
    fires(&inv, "BR-CO-11");
    let mut inv = valid();
    inv.totals.charge_total = Some(d("5.01"));
    fires(&inv, "BR-CO-12");
}

#[test]
fn br_co_13_total_without_vat() {
    let mut inv = valid();
    inv.totals.total_without_vat = Some(d("133.45"));
    let v = fires(&inv, "BR-CO-13");
    assert!(v.message.contains("135.00"), "{}", v.message);
    // Without allowance and charge totals, BT-109 must equal BT-106 exactly.
    let mut inv = valid();
    inv.allowances.clear();
    inv.charges.clear();
    inv.totals.allowance_total = None;
    inv.totals.charge_total = None;
    inv.totals.total_without_vat = Some(d("133.45"));
    quiet(&inv, "BR-CO-13");
    inv.totals.total_without_vat = Some(d("133.46"));
    fires(&inv, "BR-CO-13");
}

#[test]
fn br_co_14_total_vat() {
    let mut inv = valid();
    inv.totals.vat_total = Some(d("25.56"));
    inv.totals.total_with_vat = Some(d("160.56"));
    inv.totals.amount_due = Some(d("150.56"));
    assert_eq!(ids(&validate(&inv)), ["BR-CO-14"]);
}

#[test]
fn br_co_15_total_with_vat() {
    let mut inv = valid();
    inv.totals.total_with_vat = Some(d("160.50"));
    inv.totals.amount_due = Some(d("150.50"));
    assert_eq!(ids(&validate(&inv)), ["BR-CO-15"]);
    let mut inv = valid();
    inv.totals.vat_total = None;
    fires(&inv, "BR-CO-15");
}

#[test]
fn br_co_16_amount_due() {
    let mut inv = valid();
    inv.totals.amount_due = Some(d("160.55"));
    let v = fires(&inv, "BR-CO-16");
    assert!(v.message.contains("150.55"), "{}", v.message);
    // With a rounding amount.
    let mut inv = valid();
    inv.totals.rounding = Some(d("0.45"));
    inv.totals.amount_due = Some(d("151.00"));
    assert!(validate(&inv).is_empty(), "{:?}", validate(&inv));
    inv.totals.prepaid = None;
    inv.totals.amount_due = Some(d("161.00"));
    assert!(validate(&inv).is_empty(), "{:?}", validate(&inv));
    inv.totals.amount_due = Some(d("161.01"));
    fires(&inv, "BR-CO-16");
}

#[test]
fn br_co_03_br_co_04_br_co_18_br_co_26_no_br_co_25() {
    let mut inv = valid();
    inv.tax_point_date = Some(date("2024-03-01"));
    inv.tax_point_date_code = Some("3".into());
    fires(&inv, "BR-CO-03");
    let mut inv = valid();
    inv.lines[0].vat_category = None;
    fires(&inv, "BR-CO-04");
    let mut inv = valid();
    inv.vat_breakdown.clear();
    fires(&inv, "BR-CO-18");
    // BR-CO-25 is no longer in the artefacts (1.3.16): nothing fires.
    let mut inv = valid();
    inv.due_date = None;
    inv.payment_terms = None;
    quiet(&inv, "BR-CO-25");
    let mut inv = valid();
    inv.seller.vat_id = None;
    fires(&inv, "BR-CO-26");
    inv.seller.legal_registration_id = Some(Identifier::new("123456789"));
    quiet(&inv, "BR-CO-26");
}

#[test]
fn br_co_09_vat_identifier_prefix() {
    let mut inv = valid();
    inv.buyer.vat_id = Some("EL123456789".into());
    quiet(&inv, "BR-CO-09");
    inv.buyer.vat_id = Some("123456789".into());
    let v = fires(&inv, "BR-CO-09");
    assert_eq!((v.term.as_str(), v.severity), ("BT-48", Severity::Fatal));
    // The official EDIFACT binding does not check it: a warning there.
    inv.syntax = Some(Syntax::Edifact);
    assert_eq!(fires(&inv, "BR-CO-09").severity, Severity::Warning);
}

#[test]
fn br_co_15_counts_repeated_vat_totals() {
    let mut inv = valid();
    inv.totals.vat_total_repeats = 1;
    assert!(fires(&inv, "BR-CO-15").message.contains("2 times"));
}

#[test]
fn br_49_and_br_cl_16_on_every_payment_means() {
    let mut inv = valid();
    inv.payment = Some(PaymentInstructions {
        means_code: Some("58".into()),
        credit_transfers: vec![CreditTransfer {
            account_id: Some("FR7630006000011234567890189".into()),
            ..Default::default()
        }],
        ..Default::default()
    });
    quiet(&inv, "BR-49");
    let pay = inv.payment.as_mut().unwrap();
    pay.further_means.push(PaymentMeans::default());
    fires(&inv, "BR-49");
    let pay = inv.payment.as_mut().unwrap();
    pay.further_means[0].code = Some("999".into());
    quiet(&inv, "BR-49");
    fires(&inv, "BR-CL-16");
}

// ---------------------------------------------------------------- dec

#[test]
fn br_dec_amounts_have_at_most_two_decimals() {
    let mut inv = valid();
    inv.totals.line_net_total = Some(d("133.450"));
    inv.lines[0].net_amount = Some(d("100.000"));
    inv.vat_breakdown[0].tax_amount = Some(d("25.000"));
    let got = ids(&validate(&inv)).join(" ");
    assert_eq!(got, "BR-DEC-09 BR-DEC-20 BR-DEC-23");
}

// ---------------------------------------------------------------- scale

#[test]
fn a_5000_line_invoice_validates_and_its_errors_are_found() {
    let mut inv = valid();
    inv.lines.clear();
    inv.allowances.clear();
    inv.charges.clear();
    let mut sum = Decimal::ZERO;
    for i in 0..5000 {
        let net = Decimal::new(1000 + (i % 97) as i64, 2);
        sum += net;
        inv.lines.push(line(
            &i.to_string(),
            "1",
            &net.to_string(),
            &net.to_string(),
            "S",
            Some("20"),
        ));
    }
    let tax = round2(sum * d("0.2")).unwrap();
    inv.vat_breakdown = vec![VatBreakdown {
        taxable_amount: Some(sum),
        tax_amount: Some(tax),
        category: Some("S".into()),
        rate: Some(d("20")),
        ..Default::default()
    }];
    inv.totals = Totals {
        line_net_total: Some(sum),
        total_without_vat: Some(sum),
        vat_total: Some(tax),
        total_with_vat: Some(sum + tax),
        amount_due: Some(sum + tax),
        ..Default::default()
    };
    assert!(
        validate(&inv).is_empty(),
        "{:?}",
        &validate(&inv)[..3.min(validate(&inv).len())]
    );
    // One bad line among 5,000 is found, and named.
    inv.lines[4321].net_amount = Some(Decimal::new(99999, 2));
    let v = validate(&inv);
    let co10 = v.iter().find(|x| x.rule == "BR-CO-10").expect("BR-CO-10");
    assert!(co10.message.contains(&amt(sum)), "{}", co10.message);
    inv.lines[17].id = None;
    let v = validate(&inv);
    assert_eq!(v.iter().filter(|x| x.rule == "BR-21").count(), 1);
    assert!(v
        .iter()
        .any(|x| x.rule == "BR-21" && x.message.contains("line 18")));
}

// ---------------------------------------------------------------- profiles

#[test]
fn minimum_and_basic_wl_are_validated_for_what_they_carry() {
    let mut inv = valid();
    inv.profile = Some(Profile::Minimum);
    inv.lines.clear();
    inv.vat_breakdown.clear();
    inv.buyer.address = None;
    inv.totals.line_net_total = None;
    let got = ids(&validate(&inv));
    assert!(got.is_empty(), "{got:?}");
    // What MINIMUM carries is still checked.
    inv.totals.amount_due = Some(d("1.00"));
    fires(&inv, "BR-CO-16");

    let mut inv = valid();
    inv.profile = Some(Profile::BasicWl);
    inv.lines.clear();
    let got = ids(&validate(&inv));
    assert!(got.is_empty(), "{got:?}");
    inv.vat_breakdown.clear();
    fires(&inv, "BR-CO-18");
}

#[test]
fn hostile_amounts_do_not_panic() {
    let mut inv = valid();
    inv.lines[0].net_amount = Some(Decimal::MAX);
    inv.lines[1].net_amount = Some(Decimal::MAX);
    inv.totals.line_net_total = Some(Decimal::MAX);
    inv.totals.total_with_vat = Some(Decimal::MAX);
    inv.totals.amount_due = Some(Decimal::MIN);
    inv.totals.prepaid = Some(Decimal::MAX);
    inv.vat_breakdown[0].taxable_amount = Some(Decimal::MAX);
    inv.vat_breakdown[0].rate = Some(Decimal::MAX);
    let _ = validate(&inv);
}

// ---------------------------------------------------------------- VAT families

/// A valid one-line invoice in category `cat` at `rate` (None for O), with
/// the exemption reason the family requires and the parties it needs.
fn single(cat: &str, rate: Option<&str>) -> Invoice {
    let taxed = matches!(cat, "S" | "L" | "M");
    let mut inv = valid();
    inv.allowances.clear();
    inv.charges.clear();
    inv.lines = vec![line("1", "1", "100.00", "100.00", cat, rate)];
    let tax = if taxed {
        round2(d("100.00") * d(rate.unwrap()) / d("100")).unwrap()
    } else {
        d("0.00")
    };
    inv.vat_breakdown = vec![VatBreakdown {
        taxable_amount: Some(d("100.00")),
        tax_amount: Some(tax),
        category: Some(cat.into()),
        rate: rate.map(d),
        exemption_reason: if taxed || cat == "Z" {
            None
        } else {
            Some("Exempt".into())
        },
        ..Default::default()
    }];
    inv.totals = Totals {
        line_net_total: Some(d("100.00")),
        total_without_vat: Some(d("100.00")),
        vat_total: Some(tax),
        total_with_vat: Some(d("100.00") + tax),
        amount_due: Some(d("100.00") + tax),
        ..Default::default()
    };
    match cat {
        "AE" | "K" => inv.buyer.vat_id = Some("DE123456789".into()),
        "O" => inv.seller.vat_id = None,
        _ => {}
    }
    if cat == "O" {
        inv.seller.legal_registration_id = Some(Identifier::new("123456789"));
    }
    if cat == "K" {
        inv.delivery = Some(Delivery {
            actual_delivery_date: Some(date("2024-02-28")),
            address: Some(addr("DE")),
            ..Default::default()
        });
    }
    inv
}

const FAMILIES: [(&str, &str, Option<&str>); 9] = [
    ("S", "BR-S", Some("20")),
    ("Z", "BR-Z", Some("0")),
    ("E", "BR-E", Some("0")),
    ("AE", "BR-AE", Some("0")),
    ("K", "BR-IC", Some("0")),
    ("G", "BR-G", Some("0")),
    ("O", "BR-O", None),
    ("L", "BR-AF", Some("7")),
    ("M", "BR-AG", Some("4")),
];

#[test]
fn every_vat_family_accepts_its_valid_invoice() {
    for (cat, _, rate) in FAMILIES {
        let v = validate(&single(cat, rate));
        assert!(v.is_empty(), "category {cat}: {v:#?}");
    }
}

#[test]
fn vat_family_01_breakdown_required() {
    for (cat, fam, rate) in FAMILIES {
        let mut inv = single(cat, rate);
        inv.vat_breakdown.clear();
        fires(&inv, &format!("{fam}-01"));
    }
    // Two Z breakdowns: exactly one is required.
    let mut inv = single("Z", Some("0"));
    inv.vat_breakdown.push(inv.vat_breakdown[0].clone());
    fires(&inv, "BR-Z-01");
}

#[test]
fn vat_family_02_to_04_party_identifiers() {
    for (cat, fam, rate) in FAMILIES {
        let mut inv = single(cat, rate);
        let mut ac = DocumentAllowanceCharge {
            amount: Some(d("0.00")),
            vat_category: Some(cat.into()),
            vat_rate: rate.map(d),
            reason: Some("x".into()),
            ..Default::default()
        };
        inv.allowances.push(ac.clone());
        ac.reason = Some("y".into());
        inv.charges.push(ac);
        inv.totals.allowance_total = Some(d("0.00"));
        inv.totals.charge_total = Some(d("0.00"));
        quiet(&inv, &format!("{fam}-02"));
        if cat == "O" {
            inv.buyer.vat_id = Some("DE123456789".into());
        } else {
            inv.seller.vat_id = None;
        }
        for n in ["02", "03", "04"] {
            fires(&inv, &format!("{fam}-{n}"));
        }
    }
}

#[test]
fn vat_family_05_line_rate() {
    let bad = [
        ("S", "0"),
        ("Z", "5"),
        ("E", "5"),
        ("AE", "5"),
        ("K", "5"),
        ("G", "5"),
        ("O", "5"),
        ("L", "-1"),
        ("M", "-1"),
    ];
    for ((cat, fam, rate), (_, wrong)) in FAMILIES.into_iter().zip(bad) {
        let mut inv = single(cat, rate);
        inv.lines[0].vat_rate = Some(d(wrong));
        let v = fires(&inv, &format!("{fam}-05"));
        assert!(v.message.contains(cat), "{}", v.message);
    }
}

#[test]
fn vat_family_06_07_allowance_and_charge_rate() {
    let mut inv = single("S", Some("20"));
    let ac = DocumentAllowanceCharge {
        amount: Some(d("0.00")),
        vat_category: Some("S".into()),
        vat_rate: Some(d("0")),
        reason: Some("x".into()),
        ..Default::default()
    };
    inv.allowances.push(ac.clone());
    inv.charges.push(ac);
    inv.totals.allowance_total = Some(d("0.00"));
    inv.totals.charge_total = Some(d("0.00"));
    let got = ids(&validate(&inv));
    assert!(
        got.iter().any(|g| g == "BR-S-06") && got.iter().any(|g| g == "BR-S-07"),
        "{got:?}"
    );
}

#[test]
fn vat_family_08_taxable_amount() {
    for (cat, fam, rate) in FAMILIES {
        let mut inv = single(cat, rate);
        // Within 1.00 is accepted for S, L, M only.
        inv.vat_breakdown[0].taxable_amount = Some(d("100.50"));
        let got = ids(&validate(&inv));
        let fired = got.iter().any(|g| *g == format!("{fam}-08"));
        assert_eq!(fired, !matches!(cat, "S" | "L" | "M"), "{cat}: {got:?}");
        inv.vat_breakdown[0].taxable_amount = Some(d("102.00"));
        fires(&inv, &format!("{fam}-08"));
    }
    // S per rate: a breakdown at a rate no line has.
    let mut inv = single("S", Some("20"));
    inv.vat_breakdown[0].rate = Some(d("10"));
    inv.vat_breakdown[0].tax_amount = Some(d("10.00"));
    fires(&inv, "BR-S-08");
}

#[test]
fn vat_family_09_tax_amount() {
    for (cat, fam, rate) in FAMILIES {
        let mut inv = single(cat, rate);
        let tax = inv.vat_breakdown[0].tax_amount.unwrap();
        inv.vat_breakdown[0].tax_amount = Some(tax + d("2.00"));
        fires(&inv, &format!("{fam}-09"));
    }
}

#[test]
fn vat_family_10_exemption_reason() {
    for (cat, fam, rate) in FAMILIES {
        let mut inv = single(cat, rate);
        let b = &mut inv.vat_breakdown[0];
        if b.exemption_reason.is_some() {
            b.exemption_reason = None;
        } else {
            b.exemption_reason_code = Some("VATEX-EU-O".into());
        }
        fires(&inv, &format!("{fam}-10"));
    }
}

#[test]
fn br_ic_11_12_and_br_o_11_to_14() {
    let mut inv = single("K", Some("0"));
    inv.delivery = None;
    let got = ids(&validate(&inv));
    assert!(
        got.iter().any(|g| g == "BR-IC-11") && got.iter().any(|g| g == "BR-IC-12"),
        "{got:?}"
    );

    let mut inv = single("O", None);
    inv.lines
        .push(line("2", "1", "0.00", "0.00", "E", Some("0")));
    let a = DocumentAllowanceCharge {
        amount: Some(d("0.00")),
        vat_category: Some("E".into()),
        vat_rate: Some(d("0")),
        reason: Some("x".into()),
        ..Default::default()
    };
    inv.allowances.push(a.clone());
    inv.charges.push(a);
    inv.totals.allowance_total = Some(d("0.00"));
    inv.totals.charge_total = Some(d("0.00"));
    inv.vat_breakdown.push(VatBreakdown {
        taxable_amount: Some(d("0.00")),
        tax_amount: Some(d("0.00")),
        category: Some("E".into()),
        rate: Some(d("0")),
        exemption_reason: Some("x".into()),
        ..Default::default()
    });
    let got = ids(&validate(&inv));
    for r in ["BR-O-11", "BR-O-12", "BR-O-13", "BR-O-14"] {
        assert!(got.iter().any(|g| g == r), "{r} in {got:?}");
    }
}

#[test]
fn br_co_17_tax_per_breakdown() {
    let mut inv = valid();
    // 25.00 is right; 26.00 is exactly 1.00 off: the UBL binding rejects it.
    inv.vat_breakdown[0].tax_amount = Some(d("26.00"));
    fires(&inv, "BR-CO-17");
    inv.vat_breakdown[0].tax_amount = Some(d("25.99"));
    quiet(&inv, "BR-CO-17");
    // A 0 % breakdown must carry a tax that rounds to 0.
    let mut inv = single("Z", Some("0"));
    inv.vat_breakdown[0].tax_amount = Some(d("0.49"));
    quiet(&inv, "BR-CO-17");
    inv.vat_breakdown[0].tax_amount = Some(d("0.50"));
    fires(&inv, "BR-CO-17");
}

#[test]
fn br_b_split_payment() {
    let mut inv = valid();
    inv.lines[2].vat_category = Some("B".into());
    let got = ids(&validate(&inv));
    assert!(
        got.iter().any(|g| g == "BR-B-01") && got.iter().any(|g| g == "BR-B-02"),
        "{got:?}"
    );
}

// ---------------------------------------------------------------- code lists

#[test]
fn code_lists() {
    let cases: [InvoiceCase; 16] = [
        ("BR-CL-01", |i| i.type_code = Some("999".into())),
        ("BR-CL-04", |i| i.currency = Some("EUX".into())),
        ("BR-CL-05", |i| i.vat_currency = Some("AAA".into())),
        ("BR-CL-06", |i| i.tax_point_date_code = Some("5".into())),
        ("BR-CL-07", |i| {
            i.invoiced_object_id = Some(Identifier {
                value: "1".into(),
                scheme: Some("XXA".into()),
            })
        }),
        ("BR-CL-10", |i| {
            i.seller.identifiers.push(Identifier {
                value: "1".into(),
                scheme: Some("0181".into()),
            })
        }),
        ("BR-CL-11", |i| {
            i.seller.legal_registration_id = Some(Identifier {
                value: "1".into(),
                scheme: Some("9901".into()),
            })
        }),
        ("BR-CL-13", |i| {
            i.lines[0].classifications.push(Classification {
                value: "1".into(),
                scheme: Some("XXX".into()),
                scheme_version: None,
            })
        }),
        ("BR-CL-14", |i| {
            i.buyer.address.as_mut().unwrap().country_code = Some("UK".into())
        }),
        ("BR-CL-15", |i| {
            i.lines[0].origin_country = Some("HC".into())
        }),
        ("BR-CL-16", |i| {
            i.payment = Some(PaymentInstructions {
                means_code: Some("99".into()),
                ..Default::default()
            })
        }),
        ("BR-CL-17", |i| {
            i.vat_breakdown[0].category = Some("X".into())
        }),
        ("BR-CL-18", |i| i.lines[0].vat_category = Some("AA".into())),
        ("BR-CL-19", |i| {
            i.allowances[0].reason_code = Some("1".into())
        }),
        ("BR-CL-20", |i| i.charges[0].reason_code = Some("SB".into())),
        ("BR-CL-25", |i| {
            i.seller.electronic_address = Some(Identifier {
                value: "x".into(),
                scheme: Some("GLN".into()),
            })
        }),
    ];
    for (rule, mutate) in cases {
        let mut inv = valid();
        mutate(&mut inv);
        fires(&inv, rule);
    }
    // And the right codes pass.
    let mut inv = valid();
    inv.tax_point_date_code = Some("3".into());
    inv.due_date = Some(date("2024-03-31"));
    inv.seller.identifiers.push(Identifier {
        value: "1".into(),
        scheme: Some("SEPA".into()),
    });
    inv.seller.legal_registration_id = Some(Identifier {
        value: "1".into(),
        scheme: Some("0002".into()),
    });
    inv.allowances[0].reason_code = Some("95".into());
    inv.charges[0].reason_code = Some("FC".into());
    inv.seller.electronic_address = Some(Identifier {
        value: "x".into(),
        scheme: Some("0088".into()),
    });
    inv.payment = Some(PaymentInstructions {
        means_code: Some("31".into()),
        ..Default::default()
    });
    let v = validate(&inv);
    assert!(v.is_empty(), "{v:#?}");
}
