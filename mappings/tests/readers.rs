//! Reader conformance over the corpus fixtures (tests/fixtures/{ubl,cii}),
//! key-field checks on a few official examples, syntax problems as
//! violations, and the UBL <-> CII property over the official EN 16931
//! example pairs.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::NaiveDate;
use quai_mappings::model::{DocumentKind, Invoice, Profile, Syntax};
use quai_mappings::{cii, ubl, ReadError, ReadOutcome};
use rust_decimal::Decimal;

fn fixtures(family: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(family)
}

/// Every XML file under a fixture family, sorted.
fn xml_files(family: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![fixtures(family)];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("xml")) {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no fixtures for {family}");
    out
}

fn read_ubl(p: &Path) -> Result<ReadOutcome, ReadError> {
    ubl::read(BufReader::new(std::fs::File::open(p).unwrap()))
}

fn read_cii(p: &Path) -> Result<ReadOutcome, ReadError> {
    cii::read(BufReader::new(std::fs::File::open(p).unwrap()))
}

/// Independent oracle: how many start tags named `local` (any prefix) the
/// raw text holds. Good enough for the corpus, which has no such names in
/// comments.
fn count_start_tags(bytes: &[u8], local: &str) -> usize {
    let text = String::from_utf8_lossy(bytes);
    let mut n = 0;
    for (i, _) in text.match_indices(local) {
        let after = text[i + local.len()..].chars().next();
        if !matches!(after, Some('>' | ' ' | '\t' | '\r' | '\n' | '/')) {
            continue;
        }
        let before = &text[..i];
        let tag_start = before.rfind('<');
        if let Some(s) = tag_start {
            let between = &before[s + 1..];
            let is_start = !between.starts_with('/')
                && (between.is_empty()
                    || (between.ends_with(':') && !between.contains([' ', '>', '"'])));
            if is_start {
                n += 1;
            }
        }
    }
    n
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

// ---------------------------------------------------------------------------
// Corpus: every file maps
// ---------------------------------------------------------------------------

/// UBL documents that are genuinely not an EN 16931 Invoice/CreditNote.
const UBL_NOT_INVOICES: &[(&str, &str)] = &[
    (
        "UBL-Reminder-2.1-Example.xml",
        "UBL Reminder is not an invoice or credit note",
    ),
    (
        "UBL-SelfBilledCreditNote-2.1-Example.xml",
        "UBL SelfBilledCreditNote is not an invoice or credit note",
    ),
];

#[test]
fn every_ubl_fixture_maps() {
    let mut mapped = 0;
    for p in xml_files("ubl") {
        let name = p.file_name().unwrap().to_str().unwrap();
        let res = read_ubl(&p);
        if let Some((_, msg)) = UBL_NOT_INVOICES.iter().find(|(n, _)| *n == name) {
            let e = res.expect_err(name);
            assert!(e.message.contains(msg), "{name}: {e}");
            continue;
        }
        let out = res.unwrap_or_else(|e| panic!("{name}: {e}"));
        let inv = &out.invoice;
        let bytes = std::fs::read(&p).unwrap();
        let expected_lines =
            count_start_tags(&bytes, "InvoiceLine") + count_start_tags(&bytes, "CreditNoteLine");
        assert_eq!(inv.lines.len(), expected_lines, "{name}: line count");
        assert_eq!(inv.syntax, Some(Syntax::Ubl), "{name}");
        assert!(inv.number.is_some(), "{name}: BT-1");
        assert!(inv.issue_date.is_some(), "{name}: BT-2");
        assert!(out.issues.is_empty(), "{name}: {:?}", out.issues);
        let root_is_cn = count_start_tags(&bytes, "CreditNote") == 1;
        assert_eq!(
            inv.kind == DocumentKind::CreditNote,
            root_is_cn,
            "{name}: kind"
        );
        mapped += 1;
    }
    assert!(mapped >= 120, "only {mapped} UBL fixtures mapped");
}

/// Factur-X / ZUGFeRD XML fixtures that are not CII invoices.
const CII_NOT_INVOICES: &[(&str, &str)] = &[
    // Root element rsm:myinvoice: the source's "irrecoverable" case.
    (
        "invalidV2Root.xml",
        "not a CII invoice: root element myinvoice",
    ),
];

/// Fixtures whose values break the EN 16931 syntax: the SYNTAX violations
/// (terms) they must give, checked against the files.
const CII_SYNTAX_ISSUES: &[(&str, &[&str])] = &[
    // ZUGFeRD 1.0 EXTENDED sample: BillingSpecifiedPeriod start "20139102"
    // (month 91) and two line periods written as weeks (format 616), which
    // EN 16931 does not allow (dates are format 102 only).
    (
        "zugferd-extended.xml",
        &["BT-73", "BT-134", "BT-135", "BT-134", "BT-135"],
    ),
];

#[test]
fn every_cii_and_facturx_xml_fixture_maps() {
    let mut mapped = 0;
    for p in xml_files("cii").into_iter().chain(xml_files("facturx")) {
        let name = p.file_name().unwrap().to_str().unwrap();
        let res = read_cii(&p);
        if let Some((_, msg)) = CII_NOT_INVOICES.iter().find(|(n, _)| *n == name) {
            let e = res.expect_err(name);
            assert!(e.message.contains(msg), "{name}: {e}");
            continue;
        }
        let out = res.unwrap_or_else(|e| panic!("{name}: {e}"));
        let inv = &out.invoice;
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(
            inv.lines.len(),
            count_start_tags(&bytes, "IncludedSupplyChainTradeLineItem"),
            "{name}: line count"
        );
        assert_eq!(inv.syntax, Some(Syntax::Cii), "{name}");
        assert!(inv.number.is_some(), "{name}: BT-1");
        assert!(inv.issue_date.is_some(), "{name}: BT-2");
        assert!(inv.profile.is_some(), "{name}: profile from BT-24");
        let expected: &[&str] = CII_SYNTAX_ISSUES
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(&[], |(_, t)| t);
        let terms: Vec<&str> = out.issues.iter().map(|i| i.term.as_str()).collect();
        assert_eq!(terms, expected, "{name}: {:?}", out.issues);
        assert!(out.issues.iter().all(|i| i.rule == "SYNTAX"));
        mapped += 1;
    }
    assert!(mapped >= 90, "only {mapped} CII fixtures mapped");
}

// ---------------------------------------------------------------------------
// Key fields
// ---------------------------------------------------------------------------

#[test]
fn ubl_example2_key_fields() {
    let out =
        read_ubl(&fixtures("ubl").join("en16931-ubl-examples/ubl-tc434-example2.xml")).unwrap();
    let inv = out.invoice;
    assert_eq!(inv.number.as_deref(), Some("TOSL108"));
    assert_eq!(inv.issue_date, Some(date("2013-06-30")));
    assert_eq!(inv.due_date, Some(date("2013-07-20")));
    assert_eq!(inv.type_code.as_deref(), Some("380"));
    assert_eq!(inv.currency.as_deref(), Some("NOK"));
    assert_eq!(inv.profile, Some(Profile::En16931));
    assert_eq!(inv.purchase_order_reference.as_deref(), Some("123"));
    assert_eq!(inv.contract_reference.as_deref(), Some("Contract321"));
    assert_eq!(inv.seller.name.as_deref(), Some("Salescompany ltd."));
    assert_eq!(inv.seller.identifiers[0].value, "1238764941386");
    assert_eq!(inv.seller.identifiers[0].scheme.as_deref(), Some("0088"));
    assert_eq!(
        inv.seller.legal_registration_id.as_ref().unwrap().value,
        "123456789"
    );
    assert_eq!(inv.seller.vat_id.as_deref(), Some("NO123456789MVA"));
    assert_eq!(inv.buyer.name.as_deref(), Some("The Buyercompany"));
    assert_eq!(inv.buyer.vat_id.as_deref(), Some("NO987654321MVA"));
    let t = &inv.totals;
    assert_eq!(t.line_net_total, Some(d("1436.50")));
    assert_eq!(
        t.line_net_total.unwrap().scale(),
        2,
        "written scale is kept"
    );
    assert_eq!(t.allowance_total, Some(d("100")));
    assert_eq!(t.charge_total, Some(d("100")));
    assert_eq!(t.total_without_vat, Some(d("1436.50")));
    assert_eq!(t.vat_total, Some(d("365.28")));
    assert_eq!(t.total_with_vat, Some(d("1801.78")));
    assert_eq!(t.prepaid, Some(d("1000")));
    assert_eq!(t.amount_due, Some(d("801.78")));
    assert_eq!(inv.vat_breakdown.len(), 3);
    let e = &inv.vat_breakdown[2];
    assert_eq!(
        (
            e.category.as_deref(),
            e.taxable_amount,
            e.tax_amount,
            e.exemption_reason.as_deref()
        ),
        (
            Some("E"),
            Some(d("-25")),
            Some(d("0")),
            Some("Exempt New Means of Transport")
        )
    );
    assert_eq!(inv.lines.len(), 5);
    let l = &inv.lines[0];
    assert_eq!(l.id.as_deref(), Some("1"));
    assert_eq!(
        (l.quantity, l.unit_code.as_deref()),
        (Some(d("2")), Some("EA"))
    );
    assert_eq!(l.net_amount, Some(d("1273")));
    assert_eq!(l.net_price, Some(d("1273")));
    assert_eq!(l.price_discount, Some(d("225")));
    assert_eq!(
        (l.vat_category.as_deref(), l.vat_rate),
        (Some("S"), Some(d("25")))
    );
    assert_eq!(l.item_name.as_deref(), Some("Laptop computer"));
    assert_eq!((l.allowances.len(), l.charges.len()), (1, 1));
    assert_eq!(l.allowances[0].reason.as_deref(), Some("Damage"));
    assert_eq!(l.attributes[0].name, "Color");
    assert_eq!(inv.allowances.len(), 1);
    assert_eq!(inv.charges.len(), 1);
    // BT-125: decoded size of "VGVzdGluZyBCYXNlNjQgZW5jb2Rpbmc=" ("Testing Base64 encoding").
    let att = inv
        .attachments
        .iter()
        .find(|a| a.reference.as_deref() == Some("Doc2"))
        .unwrap();
    assert_eq!(att.embedded_size, Some(23));
    assert_eq!(att.mime_code.as_deref(), Some("application/pdf"));
    assert_eq!(att.filename.as_deref(), Some("test.pdf"));
    let pay = inv.payment.unwrap();
    assert_eq!(pay.means_code.as_deref(), Some("30"));
    assert_eq!(
        pay.credit_transfers[0].account_id.as_deref(),
        Some("NO9386011117947")
    );
    assert_eq!(
        pay.credit_transfers[0].service_provider_id.as_deref(),
        Some("DNBANOKK")
    );
    assert_eq!(
        inv.tax_representative.unwrap().name.as_deref(),
        Some("Tax handling company AS")
    );
}

#[test]
fn ubl_credit_note_key_fields() {
    let out =
        read_ubl(&fixtures("ubl").join("en16931-ubl-examples/ubl-tc434-creditnote1.xml")).unwrap();
    let inv = out.invoice;
    assert_eq!(inv.kind, DocumentKind::CreditNote);
    assert_eq!(inv.type_code.as_deref(), Some("381"));
    assert_eq!(inv.lines.len(), 1);
    assert!(
        inv.lines[0].quantity.is_some(),
        "BT-129 from cbc:CreditedQuantity"
    );
    assert!(inv.totals.amount_due.is_some());
}

#[test]
fn ubl_large_attachment_is_counted_not_kept() {
    // 3.3 MB Italian G2G invoice: the embedded PDF is only measured.
    let p = fixtures("ubl")
        .join("en16931-ubl-examples/FT_G2G_TD01_con_Allegato_Bonifico_e_Split_Payment.xml");
    let inv = read_ubl(&p).unwrap().invoice;
    let sizes: Vec<_> = inv
        .attachments
        .iter()
        .filter_map(|a| a.embedded_size)
        .collect();
    assert!(sizes.iter().any(|&s| s > 2_000_000), "{sizes:?}");
}

#[test]
fn cii_example2_key_fields() {
    let out = read_cii(&fixtures("cii").join("en16931-cii-examples/CII_example2.xml")).unwrap();
    let inv = out.invoice;
    assert_eq!(inv.number.as_deref(), Some("TOSL108"));
    assert_eq!(inv.issue_date, Some(date("2013-06-30")));
    assert_eq!(inv.currency.as_deref(), Some("NOK"));
    assert_eq!(inv.profile, Some(Profile::En16931));
    assert_eq!(inv.totals.vat_total, Some(d("365.28")));
    assert_eq!(inv.totals.amount_due, Some(d("801.78")));
    assert_eq!(inv.vat_breakdown.len(), 3);
    assert_eq!(inv.vat_breakdown[0].tax_amount, Some(d("365.13")));
    assert_eq!(inv.tax_point_date, Some(date("2013-06-30")));
    assert_eq!(inv.lines.len(), 5);
    assert_eq!(inv.lines[1].quantity, Some(d("-1")));
    assert_eq!(
        inv.payee.as_ref().unwrap().name.as_deref(),
        Some("Ebeneser Scrooge AS")
    );
    assert_eq!(inv.payment.as_ref().unwrap().credit_transfers.len(), 2);
    assert_eq!(inv.seller.vat_id.as_deref(), Some("NO123456789MVA"));
}

#[test]
fn profiles_from_bt24() {
    let f = fixtures("facturx");
    let cases = [
        ("akretion-factur-x/factur-x-minimum.xml", Profile::Minimum),
        ("akretion-factur-x/factur-x-basic.xml", Profile::Basic),
        ("akretion-factur-x/factur-x-extended.xml", Profile::Extended),
        ("mustang-validator/validXRV30.xml", Profile::Xrechnung),
    ];
    for (file, profile) in cases {
        assert_eq!(
            read_cii(&f.join(file)).unwrap().invoice.profile,
            Some(profile),
            "{file}"
        );
    }
    let u = fixtures("ubl");
    let cases = [
        ("peppol-bis3-examples/base-example.xml", Profile::PeppolBis3),
        (
            "xrechnung-testsuite/01.01a-INVOICE_ubl.xml",
            Profile::Xrechnung,
        ),
        (
            "en16931-ubl-examples/ubl-tc434-example3.xml",
            Profile::En16931,
        ),
    ];
    for (file, profile) in cases {
        assert_eq!(
            read_ubl(&u.join(file)).unwrap().invoice.profile,
            Some(profile),
            "{file}"
        );
    }
}

// ---------------------------------------------------------------------------
// Syntax problems, hostile and odd input through the readers
// ---------------------------------------------------------------------------

const UBL_MIN: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
 xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
 xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
 <cbc:ID>INV-1</cbc:ID>
 <cbc:IssueDate>@DATE@</cbc:IssueDate>
 <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
 <cac:AccountingSupplierParty><cac:Party><cac:PartyLegalEntity><cbc:RegistrationName>@NAME@</cbc:RegistrationName></cac:PartyLegalEntity></cac:Party></cac:AccountingSupplierParty>
 <cac:LegalMonetaryTotal><cbc:PayableAmount currencyID="EUR">@DUE@</cbc:PayableAmount></cac:LegalMonetaryTotal>
 @LINES@
</Invoice>"#;

fn ubl_doc(date: &str, name: &str, due: &str, lines: &str) -> String {
    UBL_MIN
        .replace("@DATE@", date)
        .replace("@NAME@", name)
        .replace("@DUE@", due)
        .replace("@LINES@", lines)
}

#[test]
fn bad_values_become_syntax_violations_and_the_document_still_maps() {
    let doc = ubl_doc("2024-13-45", "ACME", "12,50", "");
    let out = ubl::read(doc.as_bytes()).unwrap();
    assert_eq!(out.invoice.number.as_deref(), Some("INV-1"));
    assert_eq!(out.invoice.issue_date, None);
    assert_eq!(out.invoice.totals.amount_due, None);
    let msgs: Vec<_> = out
        .issues
        .iter()
        .map(|v| (v.rule.as_str(), v.term.as_str(), v.message.as_str()))
        .collect();
    assert!(
        msgs.contains(&(
            "SYNTAX",
            "BT-2",
            "BT-2: \"2024-13-45\" is not a date (expected YYYY-MM-DD)"
        )),
        "{msgs:?}"
    );
    assert!(msgs.iter().any(|(r, t, m)| *r == "SYNTAX"
        && *t == "BT-115"
        && m.contains("\"12,50\" is not a number")));

    let cii_doc =
        std::fs::read_to_string(fixtures("cii").join("en16931-cii-examples/CII_example4.xml"))
            .unwrap()
            .replacen(">2013", ">2013-", 1);
    let out = cii::read(cii_doc.as_bytes()).unwrap();
    assert_eq!(out.invoice.issue_date, None);
    assert_eq!(out.issues.len(), 1, "{:?}", out.issues);
    assert_eq!(out.issues[0].term, "BT-2");
    assert!(
        out.issues[0].message.contains("expected YYYYMMDD"),
        "{}",
        out.issues[0].message
    );
}

#[test]
fn hostile_and_foreign_documents_are_read_errors() {
    let doc = ubl_doc("2024-01-01", "ACME", "1", "")
        .replace("<Invoice ", "<!DOCTYPE Invoice [<!ENTITY a 'x'>]><Invoice ");
    assert_eq!(
        ubl::read(doc.as_bytes()).unwrap_err().message,
        "DOCTYPE not allowed"
    );
    let e = ubl::read(
        &b"<Invoice xmlns='urn:oasis:names:specification:ubl:schema:xsd:Invoice-2'><ID>1</Invoice>"
            [..],
    )
    .unwrap_err();
    assert!(
        e.message.contains("not well-formed") && e.position > 0,
        "{e}"
    );
    // A CII document given to the UBL reader and vice versa.
    let cii_bytes =
        std::fs::read(fixtures("cii").join("en16931-cii-examples/CII_example4.xml")).unwrap();
    assert!(ubl::read(&cii_bytes[..])
        .unwrap_err()
        .message
        .contains("not a UBL invoice"));
    let ubl_bytes = ubl_doc("2024-01-01", "ACME", "1", "");
    assert!(cii::read(ubl_bytes.as_bytes())
        .unwrap_err()
        .message
        .contains("not a CII invoice"));
    // Namespace by URI, not by prefix: the right local names in a wrong namespace are foreign.
    let wrong_ns = ubl_doc("2024-01-01", "ACME", "1", "").replace(
        "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
        "urn:example:not-ubl",
    );
    let out = ubl::read(wrong_ns.as_bytes()).unwrap();
    assert_eq!(out.invoice.number, None);
}

#[test]
fn latin1_document_is_decoded() {
    let doc = ubl_doc(
        "2024-01-01",
        "Soci\u{e9}t\u{e9} G\u{e9}n\u{e9}rale",
        "1",
        "",
    )
    .replace("encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"");
    let bytes: Vec<u8> = doc
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap())
        .collect();
    let out = ubl::read(&bytes[..]).unwrap();
    assert_eq!(
        out.invoice.seller.name.as_deref(),
        Some("Soci\u{e9}t\u{e9} G\u{e9}n\u{e9}rale")
    );
}

fn ubl_with_lines(n: usize) -> String {
    let line = r#"<cac:InvoiceLine><cbc:ID>N</cbc:ID><cbc:InvoicedQuantity unitCode="C62">2</cbc:InvoicedQuantity><cbc:LineExtensionAmount currencyID="EUR">20.00</cbc:LineExtensionAmount><cac:AllowanceCharge><cbc:ChargeIndicator>false</cbc:ChargeIndicator><cbc:Amount currencyID="EUR">1.00</cbc:Amount></cac:AllowanceCharge><cac:Item><cbc:Name>Widget</cbc:Name><cac:ClassifiedTaxCategory><cbc:ID>S</cbc:ID><cbc:Percent>20</cbc:Percent><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:ClassifiedTaxCategory></cac:Item><cac:Price><cbc:PriceAmount currencyID="EUR">10.50</cbc:PriceAmount></cac:Price></cac:InvoiceLine>"#;
    let lines: String = (1..=n)
        .map(|i| line.replace(">N<", &format!(">{i}<")))
        .collect();
    ubl_doc("2024-01-01", "ACME", "1", &lines)
}

/// Best of three runs.
fn time_read(doc: &str) -> (std::time::Duration, ReadOutcome) {
    let mut best = None;
    let mut out = None;
    for _ in 0..3 {
        let start = std::time::Instant::now();
        let o = ubl::read(doc.as_bytes()).unwrap();
        let took = start.elapsed();
        best = Some(best.map_or(took, |b: std::time::Duration| b.min(took)));
        out = Some(o);
    }
    (best.unwrap(), out.unwrap())
}

#[test]
fn five_thousand_lines_map_in_one_linear_pass() {
    let small = ubl_with_lines(500);
    let big = ubl_with_lines(5000);
    let (t_small, _) = time_read(&small);
    let (t_big, out) = time_read(&big);
    assert_eq!(out.invoice.lines.len(), 5000);
    assert_eq!(out.invoice.lines[4999].id.as_deref(), Some("5000"));
    assert_eq!(out.invoice.lines[4999].net_price, Some(d("10.50")));
    assert_eq!(out.invoice.lines[4999].allowances.len(), 1);
    eprintln!(
        "UBL: 500 lines in {t_small:?}, 5,000 lines ({} bytes) in {t_big:?}",
        big.len()
    );
    // Ten times the lines must cost about ten times the time (a quadratic
    // reader would cost a hundred times); generous for a loaded machine.
    assert!(
        t_big < t_small * 40,
        "500 lines {t_small:?}, 5,000 lines {t_big:?}"
    );
}

// ---------------------------------------------------------------------------
// Property: UBL and CII renderings of the same official example agree
// ---------------------------------------------------------------------------

/// Flatten an invoice to `path -> value` leaves (decimals normalised so
/// `100.00` equals `100`: the two syntaxes' examples write different scales).
fn flatten(inv: &Invoice) -> BTreeMap<String, String> {
    fn walk(prefix: String, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    walk(format!("{prefix}.{k}"), x, out)
                }
            }
            serde_json::Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(format!("{prefix}[{i}]"), x, out)
                }
            }
            serde_json::Value::Null => {}
            serde_json::Value::String(s) => {
                out.insert(prefix, s.clone());
            }
            x => {
                out.insert(prefix, x.to_string());
            }
        }
    }
    let mut inv = inv.clone();
    inv.syntax = None;
    let mut out = BTreeMap::new();
    walk(
        String::new(),
        &serde_json::to_value(&inv).unwrap(),
        &mut out,
    );
    out
}

fn same_value(a: Option<&String>, b: Option<&String>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) if x == y => true,
        (Some(x), Some(y)) => matches!(
            (quai_mappings::xml::parse_decimal(x), quai_mappings::xml::parse_decimal(y)),
            (Some(p), Some(q)) if p == q
        ),
        (None, None) => true,
        _ => false,
    }
}

/// `lines[*].unit_code` matches `.lines[3].unit_code`; a pattern ending in
/// `*` matches any key with that prefix.
fn key_matches(pattern: &str, key: &str) -> bool {
    fn go(p: &str, k: &str) -> bool {
        if p == "*" {
            return true;
        }
        if let Some(rest) = p.strip_prefix("[*]") {
            if let Some(k2) = k.strip_prefix('[') {
                if let Some(close) = k2.find(']') {
                    return go(rest, &k2[close + 1..]);
                }
            }
            return false;
        }
        match (p.chars().next(), k.chars().next()) {
            (Some(a), Some(b)) if a == b => go(&p[a.len_utf8()..], &k[b.len_utf8()..]),
            (None, None) => true,
            _ => false,
        }
    }
    go(&format!(".{pattern}"), key)
}

/// Content that genuinely differs between the two official files of a pair
/// (the CEN examples were written by hand in each syntax and drifted); each
/// with the reason, checked against both files. Everything else must match.
struct Known {
    key: &'static str,
    why: &'static str,
}

const fn k(key: &'static str, why: &'static str) -> Known {
    Known { key, why }
}

fn pair_differences(name: &str) -> Vec<Known> {
    match name {
        "example2" => vec![
            k("attachments*", "CII has Doc1 with URI and an embedded EHF.pdf; UBL splits them into Doc1 (URI) and Doc2 (test.pdf)"),
            k("business_process", "UBL has ProfileID 'Invoicing on purchase order', CII has no BusinessProcess parameter"),
            k("allowances[0].reason_code", "UBL writes reason code 88, CII 95"),
            k("lines[*].classifications*", "UBL lists an extra ZZZ classification per item and other STI codes"),
            k("lines[0].gross_price", "CII has a gross price 1498, UBL has only the discount"),
            k("lines[0].period.end", "UBL line period ends 2013-06-30, CII 2013-06-01"),
            k("lines[*].price_base_quantity", "CII BasisQuantity repeats the price (1273, 3.96...), UBL has 1"),
            k("lines[*].price_base_quantity_unit", "UBL uses EA, CII NAR"),
            k("lines[*].unit_code", "UBL uses EA, CII NAR"),
            k("lines[0].quantity", "UBL invoices 2 laptops, CII 1"),
            k("lines[2].gross_price", "UBL 2.70, CII 2.75"),
            k("lines[2].price_discount", "UBL 0.27, CII 0.275"),
            k("lines[2].standard_item_id.value", "different GTINs for line 3"),
            k("lines[4].order_line_reference", "CII references order line 4, UBL none"),
            k("payee.identifier.scheme", "UBL payee ID has schemeID 0088, CII ram:ID has no scheme"),
            k("payment.credit_transfers[1]*", "CII repeats the payment means with a second account"),
            k("payment.further_means*", "CII repeats the payment means (code 30) for that account"),
            k("payment_terms", "same two sentences; UBL keeps the source line break with indentation"),
            k("tax_point_date", "CII has TaxPointDate 2013-06-30, UBL a DescriptionCode instead"),
            k("tax_point_date_code", "UBL has InvoicePeriod/DescriptionCode 3, CII none"),
        ],
        "example3" => vec![
            k("buyer.legal_registration_id*", "UBL has buyer CompanyID 987654321, CII none"),
            k("buyer.vat_id", "UBL has buyer VAT id, CII none"),
            k("charges[0].reason_code", "CII has reason code FC, UBL none"),
            k("lines[0].quantity", "UBL 2, CII 1"),
            k("lines[0].unit_code", "UBL EA, CII C62"),
            k("lines[1]*", "UBL has a second line (Paper subscription), CII one line only"),
            k("seller.identifiers*", "UBL has a seller GLN, CII none"),
            k("totals*", "totals follow the different lines"),
            k("vat_breakdown*", "UBL has a second VAT rate (10%) for its second line"),
        ],
        "example4" => vec![
            k("lines[*].unit_code", "UBL EA, CII C62"),
            k("payment.credit_transfers[1]*", "CII repeats the payment means with a second account"),
            k("payment.further_means*", "CII repeats the payment means (code 30) for that account"),
            k("seller.contact.email", "antonio@SubscriptionsSeller.dk vs Anthon@SellerCompany.dk"),
        ],
        "example5" => vec![
            k("allowances[0].reason_code", "UBL 100, CII 95"),
            k("lines[0].allowances[0].reason_code", "UBL 100, CII 95"),
            k("attachments*", "CII lists Lot567 and OBJ999 as untyped references; UBL has Lot567 as BT-17 and an ATS description"),
            k("tender_reference", "UBL OriginatorDocumentReference Lot567; CII has it as an untyped additional reference"),
            k("business_process", "UBL ProfileID 1, CII none"),
            k("delivery.location_id.scheme", "CII GlobalID has schemeID 0088, UBL DeliveryLocation/ID none"),
            k("lines[0].classifications*", "UBL has a ZZZ classification, CII none"),
            k("lines[*].period.end", "UBL 2013-04-10, CII 2013-03-10"),
            k("lines[0].price_discount", "UBL 0.10, CII 10"),
            k("lines[*].price_base_quantity_unit", "UBL EA, CII C62"),
            k("lines[*].unit_code", "UBL EA, CII C62"),
            k("lines[1].note", "'second line' vs 'Second line'"),
            k("notes[0]*", "CII note has subject code AAI; UBL writes '...#Ordering information' without a #code# prefix"),
            k("payment*", "UBL is a direct debit (49, mandate); CII is means 58 with creditor id DK5678 and two accounts"),
            k("tax_point_date", "CII has TaxPointDate, UBL none"),
        ],
        "example1" => vec![
            k("lines[*].unit_code", "UBL uses EA, CII H87"),
            k("lines[1].item_name", "UBL 'PKAAS 50PL...', CII 'KAAS 50PL...' (typo in the UBL example)"),
            k("lines[12].item_name", "UBL 'PK CHOCOLADEMEL', CII 'PK CHOCOLADEMELK'"),
            k("notes[0]*", "CII note has subject code AAR; UBL has the same text without a #code# prefix and other line breaks"),
            k("payment.credit_transfers[1].account_id", "the second account differs (NL03 INGB... vs NL57 RABO...)"),
            k("totals.vat_total_accounting", "UBL gives a VAT total in SEK (BT-6, BT-111), CII none"),
            k("vat_currency", "UBL has TaxCurrencyCode SEK, CII none"),
        ],
        "edifact2" => vec![
            k("allowances[0].reason_code", "UBL 88, EDIFACT 95 (as CII)"),
            k("attachments*", "EDIFACT carries Doc1 with the embedded EHF.pdf (as CII); UBL splits Doc1 and Doc2 (test.pdf)"),
            k("business_process", "UBL ProfileID 'Invoicing on purchase order', EDIFACT FTX+DOC P3"),
            k("buyer.vat_id", "the EDIFACT example writes the VAT number without its NO prefix (RFF+VA); see docs/rules.md on BR-CO-09"),
            k("seller.vat_id", "as buyer.vat_id"),
            k("tax_representative.vat_id", "as buyer.vat_id"),
            k("lines[*].price_base_quantity_unit", "UBL writes a unit on BaseQuantity, EDIFACT none"),
            k("lines[*].unit_code", "UBL EA, EDIFACT NAR (as CII)"),
            k("lines[0].quantity", "UBL 2 laptops, EDIFACT 1 (as CII)"),
            k("lines[*].standard_item_id.scheme", "UBL GTIN scheme 0088, EDIFACT 0160 (both GTIN)"),
            k("lines[*].classifications*", "other classification codes and order"),
            k("lines[2].gross_price", "UBL 2.70, EDIFACT 2.75 (as CII)"),
            k("lines[2].price_discount", "UBL 0.27, EDIFACT 0.275 (as CII)"),
            k("lines[2].standard_item_id.value", "different GTINs for line 3 (as CII)"),
            k("lines[4].order_line_reference", "EDIFACT references order line 4 (as CII), UBL none"),
            k("payment.credit_transfers[1]*", "EDIFACT gives a second account (as CII)"),
            k("payment_terms", "same sentences; UBL keeps the line break and indentation, EDIFACT joins the FTX parts"),
            k("tax_point_date", "EDIFACT has a VAT point date (as CII), UBL a code"),
            k("tax_point_date_code", "UBL InvoicePeriod/DescriptionCode 3, EDIFACT none"),
        ],
        "edifact3" => vec![k("business_process", "EDIFACT FTX+DOC gives P1, CII none")],
        "edifact4" => vec![
            k("business_process", "EDIFACT FTX+DOC gives P1, UBL none"),
            k("lines[*].unit_code", "UBL EA, EDIFACT C62 (as CII)"),
            k("seller.contact.email", "antonio@SubscriptionsSeller.dk vs Anthon@SellerCompany.dk (as CII)"),
        ],
        "edifact6" => vec![
            k("business_process", "EDIFACT FTX+DOC gives P1, UBL none"),
            k("lines[*].unit_code", "UBL EA, EDIFACT C62"),
            k("seller.vat_id", "the EDIFACT example writes the VAT number without its DK prefix; see docs/rules.md on BR-CO-09"),
        ],
        "edifact7" => vec![
            k("business_process", "EDIFACT FTX+DOC gives P1, CII none"),
            k("payment.further_means*", "CII repeats the payment means, EDIFACT has one PAI"),
        ],
        "edifact8" => vec![
            k("attachments*", "UBL has an additional document reference (ATS), EDIFACT none"),
            k("business_process", "EDIFACT FTX+DOC gives P1, UBL none"),
            k("lines[0].item_name", "the EDIFACT file declares UNOW (UTF-8) but holds a Windows-1252 quote (byte 0x92), read as U+FFFD"),
            k("lines[*].price_base_quantity_unit", "UBL KW, EDIFACT KWT"),
            k("lines[*].unit_code", "UBL KW, EDIFACT KWT"),
            k("notes[0].text", "same text; UBL keeps line breaks and indentation, EDIFACT joins the FTX parts"),
            k("payment_terms", "as notes[0].text"),
            k("tax_point_date", "UBL has a VAT point date, EDIFACT none"),
        ],
        "edifact9" => vec![
            k("business_process", "EDIFACT FTX+DOC gives P1, CII none"),
            k("lines[0].period.end", "CII line period ends 2016-04-01, EDIFACT 2016-06-30"),
            k("lines[0].price_base_quantity", "CII BasisQuantity 49, EDIFACT 1"),
            k("notes[0].text", "same text, other line breaks"),
            k("payment.further_means*", "CII repeats the payment means, EDIFACT has one PAI"),
        ],
        _ => vec![],
    }
}

/// The twins among the official EN 16931 examples: the same invoice written
/// by CEN in two syntaxes (same number, date, parties and lines). The UBL
/// and CII example sets are numbered alike (2-5 exist in both in the corpus;
/// 1, 6, 7, 8, 9 have only one side there); `CII_example1` is the 20-line
/// invoice 12115118 that UBL numbers `ubl-tc434-example10`. The EDIFACT
/// examples are numbered like their UBL or CII twin (EDIFACT_EXAMPLE3 has
/// the one line of CII_example3, the UBL example3 has two; 0 and 0a have no
/// twin: same number as example 10 but another date and one line).
fn pairs() -> Vec<(&'static str, Twin, Twin)> {
    use Twin::*;
    vec![
        (
            "example1",
            Ubl("ubl-tc434-example10.xml"),
            Cii("CII_example1.xml"),
        ),
        (
            "example2",
            Ubl("ubl-tc434-example2.xml"),
            Cii("CII_example2.xml"),
        ),
        (
            "example3",
            Ubl("ubl-tc434-example3.xml"),
            Cii("CII_example3.xml"),
        ),
        (
            "example4",
            Ubl("ubl-tc434-example4.xml"),
            Cii("CII_example4.xml"),
        ),
        (
            "example5",
            Ubl("ubl-tc434-example5.xml"),
            Cii("CII_example5.xml"),
        ),
        (
            "edifact2",
            Ubl("ubl-tc434-example2.xml"),
            Edifact("EDIFACT_EXAMPLE2.TXT"),
        ),
        (
            "edifact3",
            Cii("CII_example3.xml"),
            Edifact("EDIFACT_EXAMPLE3.TXT"),
        ),
        (
            "edifact4",
            Ubl("ubl-tc434-example4.xml"),
            Edifact("EDIFACT_EXAMPLE4.TXT"),
        ),
        (
            "edifact6",
            Ubl("ubl-tc434-example6.xml"),
            Edifact("EDIFACT_EXAMPLE6.TXT"),
        ),
        (
            "edifact7",
            Cii("CII_example7.xml"),
            Edifact("EDIFACT_EXAMPLE7.TXT"),
        ),
        (
            "edifact8",
            Ubl("ubl-tc434-example8.xml"),
            Edifact("EDIFACT_EXAMPLE8.TXT"),
        ),
        (
            "edifact9",
            Cii("CII_example9.xml"),
            Edifact("EDIFACT_EXAMPLE9.TXT"),
        ),
    ]
}

enum Twin {
    Ubl(&'static str),
    Cii(&'static str),
    Edifact(&'static str),
}

impl Twin {
    fn read(&self) -> Invoice {
        match self {
            Twin::Ubl(f) => {
                read_ubl(&fixtures("ubl").join("en16931-ubl-examples").join(f))
                    .unwrap()
                    .invoice
            }
            Twin::Cii(f) => {
                read_cii(&fixtures("cii").join("en16931-cii-examples").join(f))
                    .unwrap()
                    .invoice
            }
            Twin::Edifact(f) => {
                let bytes = std::fs::read(fixtures("edifact").join(f)).unwrap();
                let mut messages = quai_mappings::edifact::Interchange::new(&bytes[..]);
                let m = messages.next().expect("one message").expect("readable");
                m.result.expect("mapped").invoice
            }
        }
    }
}

#[test]
fn official_examples_map_to_equal_invoices_in_every_syntax() {
    let mut compared = 0;
    let mut report = String::new();
    for (name, left, right) in pairs() {
        let (u, c) = (left.read(), right.read());
        let (fu, fc) = (flatten(&u), flatten(&c));
        let known = pair_differences(name);
        let mut used = vec![false; known.len()];
        let keys: std::collections::BTreeSet<&String> = fu.keys().chain(fc.keys()).collect();
        let mut equal_fields = 0;
        for key in keys {
            let (a, b) = (fu.get(key), fc.get(key));
            if same_value(a, b) {
                equal_fields += 1;
                continue;
            }
            match known.iter().position(|kd| key_matches(kd.key, key)) {
                Some(i) => used[i] = true,
                None => report.push_str(&format!("{name}: {key}: left={a:?} right={b:?}\n")),
            }
        }
        for (i, kd) in known.iter().enumerate() {
            if !used[i] {
                report.push_str(&format!(
                    "{name}: documented difference {} ({}) no longer occurs\n",
                    kd.key, kd.why
                ));
            }
        }
        assert!(
            equal_fields > 30,
            "{name}: only {equal_fields} equal fields"
        );
        compared += 1;
    }
    assert_eq!(compared, 12);
    assert!(report.is_empty(), "twins disagree:\n{report}");
}
