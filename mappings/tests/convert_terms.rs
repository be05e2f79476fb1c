//! Every business term the canonical model holds survives a conversion:
//! an invoice with every field filled (checked: no field of the model is
//! left empty, so a term added to the model later fails here until the
//! writers carry it) is written as UBL and as CII, as an invoice and as a
//! credit note, and read back by quai's readers to the same invoice, up to
//! the differences docs/conformance.md ("Conversion") lists. The same
//! invoice with control characters and U+FFFF in every text is written
//! well-formed (a strict parser, lxml in the test venv, reads it).

use std::io::Write;
use std::process::{Command, Stdio};

use chrono::NaiveDate;
use quai_mappings::convert::{self, Syntax};
use quai_mappings::model::*;
use quai_mappings::{cii, ubl};
use rust_decimal::Decimal;

fn d(s: &str) -> Option<Decimal> {
    Some(s.parse().unwrap())
}

fn day(n: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(2026, 11, n)
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn id(v: &str, scheme: &str) -> Identifier {
    Identifier {
        value: v.into(),
        scheme: s(scheme),
    }
}

fn address(tag: &str) -> Address {
    Address {
        line1: s(&format!("{tag} street 1")),
        line2: s(&format!("{tag} building B")),
        line3: s(&format!("{tag} floor 3")),
        city: s(&format!("{tag} city")),
        post_code: s("75001"),
        subdivision: s("Île-de-France"),
        country_code: s("FR"),
    }
}

fn party(tag: &str, seller: bool) -> Party {
    Party {
        name: s(&format!("{tag} SA")),
        trading_name: s(&format!("{tag} trading")),
        identifiers: if seller {
            vec![id("3012345678901", "0088"), Identifier::new("SUP-42")]
        } else {
            vec![id("3098765432109", "0088")]
        },
        legal_registration_id: Some(id("732829320", "0002")),
        vat_id: s("FR23732829320"),
        tax_registration_id: s(&format!("{tag}-TAX-1")),
        additional_legal_info: s(&format!("{tag} capital 10 000 EUR")),
        electronic_address: Some(id("732829320", "0225")),
        address: Some(address(tag)),
        contact: Some(Contact {
            name: s(&format!("{tag} contact")),
            phone: s("+33 1 23 45 67 89"),
            email: s(&format!("{}@example.org", tag.to_lowercase())),
        }),
    }
}

fn line(n: u32) -> Line {
    Line {
        id: s(&n.to_string()),
        note: s("line note"),
        status_reason_code: None,
        object_id: Some(id("OBJ-7", "AAB")),
        quantity: d("3.000"),
        unit_code: s("C62"),
        net_amount: d("270.00"),
        order_line_reference: s("PO-LINE-4"),
        buyer_accounting_reference: s("ACC-LINE"),
        period: Some(Period {
            start: day(1),
            end: day(30),
        }),
        allowances: vec![LineAllowanceCharge {
            amount: d("30.00"),
            base_amount: d("300.00"),
            percentage: d("10"),
            reason: s("line discount"),
            reason_code: s("95"),
        }],
        charges: vec![LineAllowanceCharge {
            amount: d("0.00"),
            base_amount: d("300.00"),
            percentage: d("0"),
            reason: s("line charge"),
            reason_code: s("AA"),
        }],
        net_price: d("100.00"),
        price_discount: d("5.00"),
        gross_price: d("105.00"),
        price_base_quantity: d("1"),
        price_base_quantity_unit: s("C62"),
        vat_category: s("S"),
        vat_rate: d("20.00"),
        item_name: s("Widget"),
        item_description: s("A widget, blue"),
        seller_item_id: s("SELL-1"),
        buyer_item_id: s("BUY-1"),
        standard_item_id: Some(id("4012345678901", "0160")),
        classifications: vec![
            Classification {
                value: "43211503".into(),
                scheme: s("STI"),
                scheme_version: s("19.0501"),
            },
            Classification {
                value: "9403".into(),
                scheme: s("HS"),
                scheme_version: None,
            },
        ],
        origin_country: s("DE"),
        attributes: vec![
            ItemAttribute {
                name: "Colour".into(),
                value: "Blue".into(),
            },
            ItemAttribute {
                name: "Size".into(),
                value: "L".into(),
            },
        ],
    }
}

fn full(type_code: &str) -> Invoice {
    let credit = type_code == "381";
    let ac = |reason: &str, code: &str| DocumentAllowanceCharge {
        amount: d("10.00"),
        base_amount: d("100.00"),
        percentage: d("10"),
        vat_category: s("S"),
        vat_rate: d("20.00"),
        reason: s(reason),
        reason_code: s(code),
    };
    Invoice {
        syntax: None,
        profile: Some(Profile::En16931),
        kind: if credit {
            DocumentKind::CreditNote
        } else {
            DocumentKind::Invoice
        },
        number: s("F-2026-0042"),
        issue_date: day(28),
        type_code: s(type_code),
        currency: s("EUR"),
        vat_currency: s("SEK"),
        tax_point_date: day(27),
        // UNTDID 2005 (UBL); CII writes 2475's 5.
        tax_point_date_code: None,
        due_date: day(30),
        buyer_reference: s("BUYER-REF"),
        project_reference: s("PROJ-9"),
        contract_reference: s("CONTRACT-3"),
        purchase_order_reference: s("PO-77"),
        sales_order_reference: s("SO-88"),
        receiving_advice_reference: s("RECV-1"),
        despatch_advice_reference: s("DESP-1"),
        tender_reference: s("LOT-5"),
        invoiced_object_id: Some(id("METER-123", "AAB")),
        buyer_accounting_reference: s("ACC-HEAD"),
        payment_terms: s("30 days net\nlate fee 40 EUR"),
        notes: vec![
            Note {
                subject_code: s("AAI"),
                text: "general note".into(),
            },
            Note {
                subject_code: None,
                text: "second note".into(),
            },
        ],
        business_process: s("urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"),
        specification_id: s("urn:cen.eu:en16931:2017"),
        preceding_invoices: vec![
            PrecedingInvoice {
                number: s("F-2026-0001"),
                issue_date: day(2),
            },
            PrecedingInvoice {
                number: s("F-2026-0002"),
                issue_date: None,
            },
        ],
        seller: party("Seller", true),
        buyer: party("Buyer", false),
        payee: Some(Payee {
            name: s("Factor SAS"),
            identifier: Some(id("5790000436057", "0088")),
            legal_registration_id: Some(id("552100554", "0002")),
        }),
        tax_representative: Some(TaxRepresentative {
            name: s("Representative Ltd"),
            vat_id: s("FR61954506077"),
            address: Some(address("Representative")),
        }),
        delivery: Some(Delivery {
            party_name: s("Warehouse"),
            location_id: Some(id("5790000436064", "0088")),
            actual_delivery_date: day(20),
            address: Some(address("Delivery")),
        }),
        invoicing_period: Some(Period {
            start: day(1),
            end: day(30),
        }),
        payment: Some(PaymentInstructions {
            means_code: s("58"),
            means_text: s("SEPA credit transfer"),
            remittance_information: s("RF18539007547034"),
            credit_transfers: vec![
                CreditTransfer {
                    account_id: s("FR7630006000011234567890189"),
                    account_name: s("Seller main"),
                    service_provider_id: s("AGRIFRPP"),
                },
                CreditTransfer {
                    account_id: s("LOCAL-ACCOUNT-1"),
                    account_name: s("Seller other"),
                    service_provider_id: s("BNPAFRPP"),
                },
            ],
            card: Some(PaymentCard {
                primary_account_number: s("1234"),
                holder_name: s("J. Doe"),
            }),
            direct_debit: Some(DirectDebit {
                mandate_reference: s("MANDATE-1"),
                creditor_id: s("FR12ZZZ123456"),
                debited_account_id: s("DE89370400440532013000"),
            }),
            further_means: vec![PaymentMeans {
                code: s("58"),
                text: s("second account"),
            }],
            no_means_element: false,
        }),
        allowances: vec![ac("discount", "95")],
        charges: vec![ac("packing", "ABL")],
        totals: Totals {
            line_net_total: d("540.00"),
            allowance_total: d("10.00"),
            charge_total: d("10.00"),
            total_without_vat: d("540.00"),
            vat_total: d("108.00"),
            vat_total_accounting: d("1188.50"),
            vat_total_repeats: 0,
            total_with_vat: d("648.00"),
            prepaid: d("48.00"),
            rounding: d("0.004"),
            amount_due: d("600.004"),
        },
        vat_breakdown: vec![
            VatBreakdown {
                taxable_amount: d("540.00"),
                tax_amount: d("108.00"),
                category: s("S"),
                rate: d("20.00"),
                exemption_reason: s("none really"),
                exemption_reason_code: s("VATEX-EU-O"),
            },
            VatBreakdown {
                taxable_amount: d("0.00"),
                tax_amount: d("0.00"),
                category: s("E"),
                rate: d("0"),
                exemption_reason: s("exempt"),
                exemption_reason_code: s("VATEX-EU-132-1G"),
            },
        ],
        attachments: vec![Attachment {
            reference: s("TIMESHEET-1"),
            description: s("Timesheet"),
            external_uri: s("https://example.org/timesheet.pdf"),
            mime_code: None,
            filename: None,
            embedded_size: None,
        }],
        lines: vec![line(1), line(2)],
    }
}

/// Null or empty places in a JSON tree (the fields the invoice leaves out).
fn holes(v: &serde_json::Value, path: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Null => out.push(path),
        serde_json::Value::Array(a) if a.is_empty() => out.push(path),
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                holes(x, format!("{path}[{i}]"), out);
            }
        }
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                holes(x, format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}

fn read(bytes: &[u8], syntax: Syntax) -> Invoice {
    let o = match syntax {
        Syntax::Ubl => ubl::read(bytes),
        Syntax::Cii => cii::read(bytes),
    }
    .unwrap();
    assert!(o.issues.is_empty(), "{:?}", o.issues);
    let mut inv = o.invoice;
    inv.syntax = None;
    inv
}

fn json_diff(a: &Invoice, b: &Invoice) -> Vec<String> {
    let (a, b) = (
        serde_json::to_value(a).unwrap(),
        serde_json::to_value(b).unwrap(),
    );
    let mut out = Vec::new();
    fn walk(a: &serde_json::Value, b: &serde_json::Value, p: String, out: &mut Vec<String>) {
        use serde_json::Value::*;
        match (a, b) {
            (Object(x), Object(y)) => {
                for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                    walk(
                        x.get(k).unwrap_or(&Null),
                        y.get(k).unwrap_or(&Null),
                        format!("{p}.{k}"),
                        out,
                    );
                }
            }
            (Array(x), Array(y)) if x.len() == y.len() => {
                for (i, (m, n)) in x.iter().zip(y).enumerate() {
                    walk(m, n, format!("{p}[{i}]"), out);
                }
            }
            _ if a != b => out.push(format!("{p}: {a} != {b}")),
            _ => {}
        }
    }
    walk(&a, &b, String::new(), &mut out);
    out
}

#[test]
fn every_term_of_the_model_survives_both_syntaxes() {
    for type_code in ["380", "381"] {
        let mut inv = full(type_code);
        inv.tax_point_date_code = None;
        // BT-7 and BT-8 exclude each other (BR-CO-3): one run each.
        for with_code in [false, true] {
            if with_code {
                inv.tax_point_date = None;
                inv.tax_point_date_code = s("3");
            }
            let mut empty = Vec::new();
            holes(
                &serde_json::to_value(&inv).unwrap(),
                String::new(),
                &mut empty,
            );
            // Left out on purpose: not EN 16931 terms (syntax), what the
            // model cannot convert (BT-125's content), the other of BT-7 /
            // BT-8, and second elements that show an optional term absent.
            let mut allowed = vec![
                ".syntax",
                ".attachments[0].mime_code",
                ".attachments[0].filename",
                ".attachments[0].embedded_size",
                ".lines[0].classifications[1].scheme_version",
                ".lines[1].classifications[1].scheme_version",
                ".notes[1].subject_code",
                ".preceding_invoices[1].issue_date",
            ];
            allowed.push(if with_code {
                ".tax_point_date"
            } else {
                ".tax_point_date_code"
            });
            empty.retain(|p| !allowed.contains(&p.as_str()));
            assert!(empty.is_empty(), "the full invoice leaves out {empty:?}");

            let ubl_bytes = convert::write_ubl(&inv, Vec::new()).unwrap();
            let ubl_text = String::from_utf8(ubl_bytes.clone()).unwrap();
            let root = if type_code == "381" {
                "<CreditNote "
            } else {
                "<Invoice "
            };
            assert!(ubl_text.contains(root), "{ubl_text}");
            // Money printed as the model holds it.
            assert!(ubl_text.contains(">600.004</cbc:PayableAmount>"));
            assert!(ubl_text.contains(">0.004</cbc:PayableRoundingAmount>"));
            let from_ubl = read(&ubl_bytes, Syntax::Ubl);
            let mut expected = inv.clone();
            // BT-46 once in UBL (the full invoice has one); BT-8 in 2005.
            let d = json_diff(&expected, &from_ubl);
            assert!(d.is_empty(), "{type_code} UBL: {d:#?}\n{ubl_text}");

            let cii_bytes = convert::write_cii(&inv, Vec::new()).unwrap();
            let cii_text = String::from_utf8(cii_bytes.clone()).unwrap();
            assert!(cii_text.contains(">600.004</ram:DuePayableAmount>"));
            let from_cii = read(&cii_bytes, Syntax::Cii);
            // What CII forces (docs/conformance.md): CII identifiers without
            // a scheme first, BT-8 in UNTDID 2475, no BT-32 for the buyer.
            expected
                .seller
                .identifiers
                .sort_by_key(|i| i.scheme.is_some());
            expected.buyer.tax_registration_id = None;
            expected.tax_point_date_code = expected
                .tax_point_date_code
                .map(|c| convert::tax_point_code_cii(&c).to_string());
            let d = json_diff(&expected, &from_cii);
            assert!(d.is_empty(), "{type_code} CII: {d:#?}\n{cii_text}");

            // And across: CII read back, written as UBL, read back.
            let across = read(
                &convert::write_ubl(&from_cii, Vec::new()).unwrap(),
                Syntax::Ubl,
            );
            let mut exp = expected.clone();
            exp.tax_point_date_code = exp
                .tax_point_date_code
                .map(|c| convert::tax_point_code_ubl(&c).to_string());
            let d = json_diff(&exp, &across);
            assert!(d.is_empty(), "{type_code} CII -> UBL: {d:#?}");
        }
    }
}

/// Every string field of an invoice, mutably.
fn poison(inv: &mut Invoice) {
    let bad = |v: &mut String| v.push_str("\u{1}<&>\"'\u{FFFF}\u{FFFE}\u{1B}[31m\r\n");
    let mut json = serde_json::to_value(&*inv).unwrap();
    fn walk(v: &mut serde_json::Value, bad: &dyn Fn(&mut String)) {
        match v {
            serde_json::Value::String(s) => {
                // Leave dates, numbers and enums readable: poison free text.
                if s.parse::<Decimal>().is_err()
                    && NaiveDate::parse_from_str(s, "%Y-%m-%d").is_err()
                    && s.chars().any(|c| c.is_lowercase() || c == ' ')
                {
                    bad(s)
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, bad)),
            serde_json::Value::Object(o) => o
                .iter_mut()
                .filter(|(k, _)| !matches!(k.as_str(), "kind" | "profile" | "syntax"))
                .for_each(|(_, x)| walk(x, bad)),
            _ => {}
        }
    }
    walk(&mut json, &bad);
    *inv = serde_json::from_value(json).unwrap();
}

#[test]
fn conversions_are_well_formed_whatever_the_fields_hold() {
    let mut inv = full("380");
    poison(&mut inv);
    assert!(inv.seller.name.as_deref().unwrap().contains('\u{FFFF}'));
    let docs = [
        convert::write_ubl(&inv, Vec::new()).unwrap(),
        convert::write_cii(&inv, Vec::new()).unwrap(),
    ];
    let python = quai_test_support::venv::python_with(&["lxml"]);
    for doc in &docs {
        let mut child = Command::new(&python)
            .args([
                "-c",
                "import sys\nfrom lxml import etree\netree.fromstring(sys.stdin.buffer.read(), etree.XMLParser(recover=False, resolve_entities=False, no_network=True))\nprint('ok')",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(doc).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "not well-formed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(doc)
        );
        let text = String::from_utf8(doc.clone()).unwrap();
        assert!(text.contains('\u{FFFD}') && !text.contains('\u{1}') && !text.contains('\u{FFFF}'));
    }
    // quai's own readers read them too, and the text comes back with
    // U+FFFD where XML could not carry a character.
    let back = read(&docs[0], Syntax::Ubl);
    assert!(back
        .seller
        .name
        .unwrap()
        .contains("\u{FFFD}<&>\"'\u{FFFD}\u{FFFD}\u{FFFD}[31m"));
    let back = read(&docs[1], Syntax::Cii);
    assert!(back
        .buyer
        .name
        .unwrap()
        .contains("\u{FFFD}<&>\"'\u{FFFD}\u{FFFD}\u{FFFD}[31m"));
}
