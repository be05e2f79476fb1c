//! EDIFACT interchanges: corpus fixtures (official EN 16931 examples,
//! pydifact, StAEDI, Koha, DFDL; see fixtures/edifact/SOURCES.md), envelope
//! checks, and a generated interchange of 10,000 messages read as a stream.

use std::cell::Cell;
use std::io::{BufReader, Read};
use std::rc::Rc;
use std::str::FromStr;

use chrono::NaiveDate;
use quai_mappings::edifact::{EnvelopeIssueKind, Interchange, MessageOutcome};
use quai_mappings::model::{DocumentKind, Invoice, Severity, Syntax};
use quai_mappings::{ReadError, ReadOutcome};
use rust_decimal::Decimal;

fn fixture(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/edifact")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn read_all(bytes: &[u8]) -> (Vec<Result<MessageOutcome, ReadError>>, Interchange<&[u8]>) {
    let mut it = Interchange::new(bytes);
    let mut out = Vec::new();
    for r in it.by_ref() {
        out.push(r);
    }
    (out, it)
}

fn only_invoice(name: &str) -> ReadOutcome {
    let bytes = fixture(name);
    let (items, _) = read_all(&bytes);
    assert_eq!(items.len(), 1, "{name}: {items:?}");
    let m = items
        .into_iter()
        .next()
        .unwrap()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(m.message_type, "INVOIC");
    m.result.unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn fatal(o: &ReadOutcome) -> Vec<String> {
    o.issues
        .iter()
        .filter(|v| v.severity == Severity::Fatal)
        .map(|v| format!("{}: {}", v.rule, v.message))
        .collect()
}

/// Sum of line net amounts equals MOA+79 and the VAT breakdown adds up to
/// MOA+176: checks that lines and tax groups were all mapped.
fn assert_consistent(name: &str, inv: &Invoice) {
    let lines: Decimal = inv
        .lines
        .iter()
        .map(|l| l.net_amount.unwrap_or_default())
        .sum();
    assert_eq!(
        Some(lines),
        inv.totals.line_net_total,
        "{name}: BT-106 vs lines"
    );
    if let Some(vat) = inv.totals.vat_total {
        let sum: Decimal = inv
            .vat_breakdown
            .iter()
            .map(|b| b.tax_amount.unwrap_or_default())
            .sum();
        assert_eq!(sum, vat, "{name}: BT-110 vs BG-23");
    }
    for l in &inv.lines {
        assert!(
            l.id.is_some() && l.quantity.is_some() && l.net_price.is_some(),
            "{name}: {l:?}"
        );
        assert!(
            l.item_name.is_some() && l.vat_category.is_some(),
            "{name}: {l:?}"
        );
    }
}

#[test]
fn official_en16931_examples() {
    // (file, BT-1, BT-2, lines, BT-106, BT-112, BT-115)
    let cases = [
        (
            "EDIFACT_EXAMPLE0.TXT",
            "12115118",
            "2017-02-01",
            1,
            "20.00",
            "22.00",
            "22.00",
        ),
        (
            "EDIFACT_EXAMPLE0a.TXT",
            "12115118",
            "2017-02-01",
            1,
            "20.00",
            "22.00",
            "22.00",
        ),
        (
            "EDIFACT_EXAMPLE2.TXT",
            "TOSL108",
            "2013-06-30",
            5,
            "1436.5",
            "1801.78",
            "801.78",
        ),
        (
            "EDIFACT_EXAMPLE3.TXT",
            "TOSL108",
            "2013-04-10",
            1,
            "800",
            "1125",
            "1125",
        ),
        (
            "EDIFACT_EXAMPLE4.TXT",
            "TOSL110",
            "2013-04-10",
            3,
            "4000",
            "4675",
            "4675",
        ),
        (
            "EDIFACT_EXAMPLE6.TXT",
            "TOSL110",
            "2013-04-10",
            3,
            "4000",
            "4675",
            "4675",
        ),
        (
            "EDIFACT_EXAMPLE7.TXT",
            "INVOICE_test_7",
            "2013-05-13",
            2,
            "3200",
            "3200",
            "3200",
        ),
        (
            "EDIFACT_EXAMPLE8.TXT",
            "1100512149",
            "2014-11-10",
            10,
            "908.91",
            "1099.78",
            "1099.78",
        ),
        (
            "EDIFACT_EXAMPLE9.TXT",
            "20150483",
            "2015-04-01",
            1,
            "147",
            "177.87",
            "177.87",
        ),
    ];
    for (file, number, issued, lines, net, gross, due) in cases {
        let o = only_invoice(file);
        assert!(fatal(&o).is_empty(), "{file}: {:?}", o.issues);
        let inv = &o.invoice;
        assert_eq!(inv.syntax, Some(Syntax::Edifact));
        assert_eq!(inv.number.as_deref(), Some(number), "{file}");
        assert_eq!(inv.type_code.as_deref(), Some("380"), "{file}");
        assert_eq!(inv.issue_date, Some(date(issued)), "{file}");
        assert_eq!(inv.lines.len(), lines, "{file}");
        assert_eq!(inv.totals.line_net_total, Some(dec(net)), "{file}");
        assert_eq!(inv.totals.total_with_vat, Some(dec(gross)), "{file}");
        assert_eq!(inv.totals.amount_due, Some(dec(due)), "{file}");
        assert_eq!(
            inv.specification_id.as_deref(),
            Some("urn:cen.eu:en16931:2017"),
            "{file}"
        );
        assert!(
            inv.currency.is_some() && inv.seller.name.is_some() && inv.buyer.name.is_some(),
            "{file}"
        );
        assert!(!inv.vat_breakdown.is_empty(), "{file}");
        assert_consistent(file, inv);
    }
}

#[test]
fn example0_fields_and_wrong_unt_count() {
    let bytes = fixture("EDIFACT_EXAMPLE0.TXT");
    let (items, it) = read_all(&bytes);
    let m = items[0].as_ref().unwrap();
    assert_eq!(m.reference, "1");
    assert_eq!(m.version, "D:14B:UN::16B");
    let o = m.result.as_ref().unwrap();
    let inv = &o.invoice;
    // The official example declares UNT+171 for 37 segments: a warning.
    let unt: Vec<_> = o
        .issues
        .iter()
        .filter(|v| v.rule == "EDIFACT-UNT")
        .collect();
    assert_eq!(unt.len(), 1);
    assert_eq!(unt[0].severity, Severity::Warning);
    assert!(
        unt[0].message.contains("171") && unt[0].message.contains("37"),
        "{}",
        unt[0].message
    );
    // Release character: "Betalingstermijn?: 14" and "25-04-?'85".
    let terms = inv.payment_terms.as_deref().unwrap();
    assert!(
        terms.contains("Betalingstermijn: 14 dagen") && terms.ends_with("25-04-'85."),
        "{terms}"
    );
    assert_eq!(inv.seller.name.as_deref(), Some("De Koksmaat"));
    assert_eq!(inv.seller.vat_id.as_deref(), Some("NL8200.98.395.B.01"));
    assert_eq!(
        inv.seller
            .legal_registration_id
            .as_ref()
            .map(|i| i.value.as_str()),
        Some("57151520")
    );
    assert_eq!(inv.buyer.name.as_deref(), Some("ODIN 59"));
    assert_eq!(inv.due_date, Some(date("2017-03-02")));
    assert_eq!(
        inv.payment.as_ref().unwrap().means_code.as_deref(),
        Some("30")
    );
    assert_eq!(
        inv.payment
            .as_ref()
            .unwrap()
            .remittance_information
            .as_deref(),
        Some("Deb. 10202 / Fact. 12115118")
    );
    let l = &inv.lines[0];
    assert_eq!(l.item_name.as_deref(), Some("PATAT FRITES 10MM 10KG"));
    assert_eq!(l.seller_item_id.as_deref(), Some("166022"));
    assert_eq!(
        (l.quantity, l.unit_code.as_deref()),
        (Some(dec("2")), Some("C62"))
    );
    assert_eq!(l.net_amount, Some(dec("20.0")));
    assert_eq!(l.net_amount.unwrap().scale(), 1, "scale kept for BR-DEC");
    assert_eq!(
        (l.net_price, l.price_base_quantity),
        (Some(dec("10")), Some(dec("1")))
    );
    assert_eq!(l.price_base_quantity_unit.as_deref(), Some("H87"));
    assert_eq!(
        (l.vat_category.as_deref(), l.vat_rate),
        (Some("S"), Some(dec("10")))
    );
    assert_eq!(inv.totals.total_without_vat, Some(dec("20.00")));
    assert_eq!(inv.totals.vat_total, Some(dec("2.00")));
    let b = &inv.vat_breakdown[0];
    assert_eq!(
        (b.taxable_amount, b.tax_amount, b.rate),
        (Some(dec("20.00")), Some(dec("2.00")), Some(dec("10")))
    );
    // Interchange data for a CONTRL acknowledgement.
    let h = it.header().unwrap();
    assert_eq!(
        (h.syntax_id.as_str(), h.syntax_version.as_str()),
        ("UNOW", "4")
    );
    assert_eq!(
        (h.sender.as_str(), h.sender_qualifier.as_deref()),
        ("4000001000005", Some("14"))
    );
    assert_eq!(h.recipient, "4000001000005");
    assert_eq!(h.control_reference, "87846595");
    assert_eq!(m.interchange_reference, "87846595");

    // Strict mode makes the count mismatch fatal.
    let mut strict = Interchange::new(&bytes[..]).strict(true);
    let m = strict.next().unwrap().unwrap();
    let o = m.result.unwrap();
    assert!(o
        .issues
        .iter()
        .any(|v| v.rule == "EDIFACT-UNT" && v.severity == Severity::Fatal));
}

#[test]
fn example2_groups() {
    let o = only_invoice("EDIFACT_EXAMPLE2.TXT");
    let inv = &o.invoice;
    assert_eq!(inv.currency.as_deref(), Some("NOK"));
    assert_eq!(inv.tax_point_date, Some(date("2013-06-30")));
    assert_eq!(inv.due_date, Some(date("2013-07-20")));
    assert_eq!(inv.purchase_order_reference.as_deref(), Some("123"));
    assert_eq!(inv.contract_reference.as_deref(), Some("Contract321"));
    assert_eq!(
        inv.buyer_accounting_reference.as_deref(),
        Some("Project cost code 123")
    );
    assert_eq!(inv.business_process.as_deref(), Some("P3"));
    let period = inv.invoicing_period.as_ref().unwrap();
    assert_eq!(
        (period.start, period.end),
        (Some(date("2013-06-01")), Some(date("2013-06-30")))
    );
    assert_eq!(
        inv.delivery.as_ref().unwrap().actual_delivery_date,
        Some(date("2013-06-15"))
    );
    assert_eq!(inv.notes.len(), 1);
    assert_eq!(inv.notes[0].text, "Ordered in our booth at the convention");
    // Seller: identifier with scheme, address, contact.
    let s = &inv.seller;
    assert_eq!(s.identifiers[0].value, "1238764941386");
    assert_eq!(s.identifiers[0].scheme.as_deref(), Some("0088"));
    let a = s.address.as_ref().unwrap();
    assert_eq!(
        (a.line1.as_deref(), a.line2.as_deref()),
        (Some("Main street 34"), Some("Suite 123"))
    );
    assert_eq!(
        (
            a.city.as_deref(),
            a.post_code.as_deref(),
            a.country_code.as_deref()
        ),
        (Some("Big city"), Some("303"), Some("NO"))
    );
    assert_eq!(
        s.contact.as_ref().unwrap().email.as_deref(),
        Some("antonio@salescompany.no")
    );
    assert_eq!(inv.buyer.vat_id.as_deref(), Some("987654321MVA"));
    assert_eq!(
        inv.buyer.contact.as_ref().unwrap().phone.as_deref(),
        Some("5121230")
    );
    assert_eq!(
        inv.payee.as_ref().unwrap().name.as_deref(),
        Some("Ebeneser Scrooge AS")
    );
    assert_eq!(
        inv.tax_representative.as_ref().unwrap().vat_id.as_deref(),
        Some("967611265MVA")
    );
    let ct = &inv.payment.as_ref().unwrap().credit_transfers[0];
    assert_eq!(
        (ct.account_id.as_deref(), ct.service_provider_id.as_deref()),
        (Some("NO9386011117947"), Some("DNBANOKK"))
    );
    // Document allowance and charge with their VAT.
    assert_eq!(inv.allowances.len(), 1);
    let al = &inv.allowances[0];
    assert_eq!(
        (al.amount, al.reason.as_deref(), al.reason_code.as_deref()),
        (Some(dec("100")), Some("Promotion discount"), Some("95"))
    );
    assert_eq!(
        (al.vat_category.as_deref(), al.vat_rate),
        (Some("S"), Some(dec("25")))
    );
    assert_eq!(inv.charges[0].reason.as_deref(), Some("Freight"));
    assert_eq!(
        (inv.totals.allowance_total, inv.totals.charge_total),
        (Some(dec("100")), Some(dec("100")))
    );
    assert_eq!(inv.totals.prepaid, Some(dec("1000")));
    // Lines: ids, item identifiers, attributes, line allowances, price discount.
    let l1 = &inv.lines[0];
    assert_eq!(l1.standard_item_id.as_ref().unwrap().value, "1234567890128");
    assert_eq!(
        l1.classifications
            .iter()
            .map(|c| c.scheme.as_deref().unwrap())
            .collect::<Vec<_>>(),
        vec!["ZZZ", "STI"]
    );
    assert!(l1
        .item_description
        .as_deref()
        .unwrap()
        .starts_with("Processor: Intel"));
    assert_eq!(l1.note.as_deref(), Some("Scratch on box"));
    assert_eq!(l1.attributes[0].name, "Color");
    assert_eq!(l1.attributes[0].value, "Black");
    assert_eq!(l1.origin_country.as_deref(), Some("DE"));
    assert_eq!(l1.order_line_reference.as_deref(), Some("1"));
    assert_eq!(
        l1.buyer_accounting_reference.as_deref(),
        Some("BookingCode001")
    );
    assert_eq!((l1.allowances.len(), l1.charges.len()), (1, 1));
    assert_eq!(l1.allowances[0].reason.as_deref(), Some("Damage"));
    assert_eq!(l1.price_discount, Some(dec("225")));
    assert_eq!(l1.period.as_ref().unwrap().start, Some(date("2013-06-01")));
    let l2 = &inv.lines[1];
    assert_eq!(
        (l2.quantity, l2.net_amount),
        (Some(dec("-1")), Some(dec("-3.96")))
    );
    assert_eq!(inv.lines[2].gross_price, Some(dec("2.75")));
    // Exempt category gets FTX+AGM as its exemption reason.
    let e = inv
        .vat_breakdown
        .iter()
        .find(|b| b.category.as_deref() == Some("E"))
        .unwrap();
    assert_eq!(
        e.exemption_reason.as_deref(),
        Some("Exempt New Means of Transport")
    );
    // Attachment with its UNO/UNP package (after UNT).
    let att = &inv.attachments[0];
    assert_eq!(att.reference.as_deref(), Some("Doc1"));
    assert_eq!(
        att.external_uri.as_deref(),
        Some("http://www.suppliersite.eu/sheet001.html")
    );
    assert_eq!(att.mime_code.as_deref(), Some("application/pdf"));
    assert_eq!(att.embedded_size, Some(104));
}

#[test]
fn staedi_una_decimal_comma_and_wrapped_files() {
    let o = only_invoice("invoic_d93a_una.edi");
    assert!(fatal(&o).is_empty(), "{:?}", o.issues);
    let inv = &o.invoice;
    assert_eq!(inv.number.as_deref(), Some("9908001"));
    assert_eq!(
        inv.issue_date,
        Some(date("1999-08-02")),
        "DTM+3 as invoice date"
    );
    assert_eq!(inv.purchase_order_reference.as_deref(), Some("O0010001"));
    assert_eq!(inv.seller.name.as_deref(), Some("Fahrradhandel Pedal"));
    assert_eq!(
        inv.seller.address.as_ref().unwrap().city.as_deref(),
        Some("München")
    );
    assert_eq!(
        inv.lines[1].net_amount,
        Some(dec("19.9")),
        "decimal comma from UNA"
    );
    assert_eq!(inv.lines[2].net_price, Some(dec("2.5")));
    assert_eq!(inv.totals.line_net_total, Some(dec("777.4")));
    assert_eq!(inv.totals.vat_total, Some(dec("124.38")));
    assert_eq!(inv.totals.total_with_vat, Some(dec("901.78")));
    assert_eq!(inv.vat_breakdown[0].rate, Some(dec("16")));

    // Hard-wrapped (every 50 and every 15 characters, the latter with other
    // UNA separators) map to exactly the same invoice as the plain file.
    let plain = only_invoice("invoic_d97b.edi");
    assert!(fatal(&plain).is_empty());
    assert_eq!(plain.invoice.lines.len(), 2);
    assert_eq!(plain.invoice.currency.as_deref(), Some("USD"));
    assert_eq!(
        plain.invoice.totals.charge_total,
        Some(dec("525")),
        "summary ALC group"
    );
    assert_eq!(plain.invoice.totals.total_with_vat, Some(dec("2137.58")));
    assert_eq!(plain.invoice.lines[0].net_price, Some(dec("1.179")));
    assert_eq!(plain.invoice.lines[0].origin_country.as_deref(), Some("US"));
    let wrapped = only_invoice("wrapped_invoic_d97b.edi");
    assert_eq!(wrapped.invoice, plain.invoice);
    let una = only_invoice("wrapped_invoic_d97b_una.edi");
    // That copy spells the seller "GENERAL WIDGET COMPANY" instead of "BÜTTNER".
    let mut expected = plain.invoice.clone();
    expected.seller.name = Some("GENERAL WIDGET COMPANY".into());
    assert_eq!(una.invoice, expected);
}

#[test]
fn staedi_bad_file_is_rejected_with_positions() {
    let o = only_invoice("invoic_d97b_bad.edi");
    let f = fatal(&o);
    assert!(
        f.iter()
            .any(|m| m.contains("'1020A' is not a number") && m.contains("segment 11")),
        "{f:?}"
    );
    assert!(f.iter().any(|m| m.contains("'$1.179'")), "{f:?}");
    assert!(o.issues.iter().any(|v| v.term == "BT-129"));
    assert!(
        o.issues.iter().any(|v| v.message.contains("UNS")),
        "repeated UNS reported"
    );
}

#[test]
fn pydifact_credit_note_and_trailing_colon() {
    let o = only_invoice("invoice1.edi");
    let inv = &o.invoice;
    assert_eq!(inv.type_code.as_deref(), Some("381"));
    assert_eq!(inv.kind, DocumentKind::CreditNote);
    assert_eq!(inv.issue_date, Some(date("1999-10-06")));
    assert_eq!(
        inv.buyer.identifiers[0].value, "VAUXHALL MOTORS LTD",
        "NAD+BT stands in for the buyer"
    );
    assert_eq!(inv.buyer.vat_id.as_deref(), Some("382324067"));
    assert_eq!(inv.seller.vat_id.as_deref(), Some("123844750"));
    assert_eq!(inv.due_date, Some(date("1999-10-31")));
    let l = &inv.lines[0];
    assert_eq!(
        (l.quantity, l.unit_code.as_deref()),
        (Some(dec("54")), Some("PCE"))
    );
    assert_eq!(
        (l.net_price, l.price_base_quantity),
        (Some(dec("3630.1724")), Some(dec("100")))
    );
    assert_eq!(inv.totals.total_with_vat, Some(dec("1960.29")));
    let colon = only_invoice("invoice_with_colon_at_end.edi");
    assert_eq!(colon.invoice, o.invoice);
}

#[test]
fn dfdl_d03b_escaped_apostrophe() {
    let o = only_invoice("INVOIC_D.03B_Interchange_with_UNA.txt");
    let inv = &o.invoice;
    assert!(inv.lines[0]
        .item_name
        .as_deref()
        .unwrap()
        .contains("Tolkien's original colours"));
    assert_eq!(inv.lines[0].net_amount, Some(dec("49.15")));
    assert_eq!(inv.currency.as_deref(), Some("GBP"));
    assert_eq!(inv.seller.vat_id.as_deref(), Some("UK19430839"));
    assert_eq!(
        inv.buyer.identifiers[0].scheme.as_deref(),
        Some("0088"),
        "agency 9 = GLN"
    );
    assert_eq!(inv.lines[0].charges[0].amount, Some(dec("13.6")));
}

#[test]
fn aperak_is_not_an_invoice() {
    for name in [
        "aperak_v3.edi",
        "aperak_rejected_v3.edi",
        "aperak_rejected_v4.edi",
    ] {
        let bytes = fixture(name);
        let (items, it) = read_all(&bytes);
        assert_eq!(items.len(), 1, "{name}");
        let m = items[0].as_ref().unwrap();
        assert_eq!(m.message_type, "APERAK");
        assert_eq!(m.reference, "1");
        let e = m.result.as_ref().unwrap_err();
        assert!(
            e.message.contains("message type APERAK is not an invoice"),
            "{e}"
        );
        assert!(it.header().is_some());
    }
}

#[test]
fn koha_two_interchanges_second_without_unz() {
    let bytes = fixture("INVOICE.CEI");
    let (items, it) = read_all(&bytes);
    assert_eq!(items.len(), 3, "{items:?}");
    let m1 = items[0].as_ref().unwrap();
    let m2 = items[1].as_ref().unwrap();
    assert_eq!(
        (m1.reference.as_str(), m2.reference.as_str()),
        ("00003", "00002")
    );
    assert_eq!((m1.interchange, m2.interchange), (0, 1));
    assert_eq!(m2.interchange_reference, "0000000001");
    let inv = &m1.result.as_ref().unwrap().invoice;
    assert_eq!(inv.lines.len(), 5);
    assert_eq!(inv.lines[0].gross_price, Some(dec("12.99")));
    assert_eq!(inv.totals.line_net_total, Some(dec("854.90")));
    let e = items[2].as_ref().unwrap_err();
    assert!(e.message.contains("has no UNZ"), "{e}");
    assert_eq!(it.headers().len(), 2);
    assert!(it
        .envelope_issues()
        .iter()
        .any(|i| i.message.contains("UNT declares 15")));
}

const HEAD: &str = "UNA:+.? 'UNB+UNOC:3+SENDER:14+RECIP:14+240101:1200+REF1'";

fn msg(reference: &str, number: &str) -> String {
    let body = [
        format!("UNH+{reference}+INVOIC:D:96A:UN:EAN008'"),
        format!("BGM+380+{number}+9'"),
        "DTM+137:20240115:102'".into(),
        "NAD+SE+5412345000013::9++Seller SA+1 rue X+Paris++75001+FR'".into(),
        "RFF+VA:FR12345678901'".into(),
        "NAD+BY+5412345000020::9++Buyer SARL+2 rue Y+Lyon++69001+FR'".into(),
        "CUX+2:EUR:4'".into(),
        "LIN+1++4000862141404:SRV'".into(),
        "IMD+F++:::Widget'".into(),
        "QTY+47:2:C62'".into(),
        "MOA+203:20.00'".into(),
        "PRI+AAA:10.00'".into(),
        "TAX+7+VAT+++:::20+S'".into(),
        "UNS+S'".into(),
        "MOA+79:20.00'".into(),
        "MOA+125:20.00'".into(),
        "MOA+176:4.00'".into(),
        "MOA+77:24.00'".into(),
        "MOA+9:24.00'".into(),
        "TAX+7+VAT+++:::20+S'".into(),
        "MOA+125:20.00'".into(),
        "MOA+124:4.00'".into(),
    ];
    let n = body.len() + 1;
    format!("{}UNT+{n}+{reference}'", body.concat())
}

#[test]
fn generated_invoice_maps_completely() {
    let text = format!("{HEAD}{}UNZ+1+REF1'", msg("M1", "F-1"));
    let (items, it) = read_all(text.as_bytes());
    assert!(
        it.envelope_issues().is_empty(),
        "{:?}",
        it.envelope_issues()
    );
    let m = items[0].as_ref().unwrap();
    assert_eq!(m.version, "D:96A:UN:EAN008");
    let o = m.result.as_ref().unwrap();
    assert!(o.issues.is_empty(), "{:?}", o.issues);
    let inv = &o.invoice;
    assert_eq!(inv.seller.vat_id.as_deref(), Some("FR12345678901"));
    assert_eq!(
        inv.seller.address.as_ref().unwrap().post_code.as_deref(),
        Some("75001")
    );
    assert_eq!(inv.totals.total_without_vat, Some(dec("20.00")));
    assert_eq!(inv.totals.total_with_vat, Some(dec("24.00")));
    assert_eq!(inv.vat_breakdown.len(), 1);
    assert_eq!(
        inv.lines[0]
            .standard_item_id
            .as_ref()
            .unwrap()
            .scheme
            .as_deref(),
        Some("0160")
    );
}

#[test]
fn envelope_errors() {
    // UNT reference differs from UNH's.
    let bad_ref = msg("M1", "F-1").replace("+M1'", "+XX'");
    let text = format!("{HEAD}{bad_ref}UNZ+1+REF1'");
    let (items, _) = read_all(text.as_bytes());
    let e = items[0].as_ref().unwrap().result.as_ref().unwrap_err();
    assert!(e.message.contains("UNT reference 'XX'"), "{e}");

    // Wrong UNT count: a warning naming both numbers and the position.
    let wrong = msg("M1", "F-1").replace("UNT+23+", "UNT+5+");
    let text = format!("{HEAD}{wrong}UNZ+1+REF1'");
    let (items, it) = read_all(text.as_bytes());
    let o = items[0].as_ref().unwrap().result.as_ref().unwrap();
    let v = o.issues.iter().find(|v| v.rule == "EDIFACT-UNT").unwrap();
    assert!(
        v.message.contains("declares 5") && v.message.contains("has 23"),
        "{}",
        v.message
    );
    assert_eq!(it.envelope_issues().len(), 1);

    // Message without UNT: that message fails, the next one is read.
    let cut = msg("M1", "F-1");
    let cut = &cut[..cut.find("UNT+").unwrap()];
    let text = format!("{HEAD}{cut}{}UNZ+2+REF1'", msg("M2", "F-2"));
    let (items, it) = read_all(text.as_bytes());
    assert_eq!(items.len(), 2);
    assert!(items[0]
        .as_ref()
        .unwrap()
        .result
        .as_ref()
        .unwrap_err()
        .message
        .contains("message M1 has no UNT"));
    assert_eq!(
        items[1]
            .as_ref()
            .unwrap()
            .result
            .as_ref()
            .unwrap()
            .invoice
            .number
            .as_deref(),
        Some("F-2")
    );
    assert!(it.envelope_issues().is_empty());

    // UNZ count and reference wrong: envelope issues; strict → error item.
    let text = format!("{HEAD}{}UNZ+3+OTHER'", msg("M1", "F-1"));
    let (items, it) = read_all(text.as_bytes());
    assert_eq!(items.len(), 1);
    assert_eq!(it.envelope_issues().len(), 2);
    let kinds: Vec<_> = it.envelope_issues().iter().map(|i| i.kind).collect();
    assert_eq!(
        kinds,
        vec![EnvelopeIssueKind::UnzCount, EnvelopeIssueKind::UnzReference]
    );
    assert!(it.envelope_issues()[0]
        .message
        .contains("UNZ declares 3 messages but interchange REF1 holds 1"));
    let strict: Vec<_> = Interchange::new(text.as_bytes()).strict(true).collect();
    assert_eq!(strict.len(), 2);
    assert!(strict[1]
        .as_ref()
        .unwrap_err()
        .message
        .contains("UNZ declares 3"));

    // Missing UNZ.
    let text = format!("{HEAD}{}", msg("M1", "F-1"));
    let (items, _) = read_all(text.as_bytes());
    assert_eq!(items.len(), 2);
    assert!(items[1]
        .as_ref()
        .unwrap_err()
        .message
        .contains("has no UNZ"));

    // Unterminated final segment: error with its byte offset.
    let text = format!("{HEAD}{}UNZ+1+REF1", msg("M1", "F-1"));
    let (items, _) = read_all(text.as_bytes());
    let e = items.last().unwrap().as_ref().unwrap_err();
    assert!(e.message.contains("no segment terminator"), "{e}");
    assert_eq!(e.position as usize, text.rfind("UNZ").unwrap());

    // Not EDIFACT at all / segments outside messages.
    let (items, _) = read_all(b"hello world'");
    assert!(items[0].is_err());
    let (items, _) = read_all(format!("{HEAD}BGM+380+1'UNZ+0+REF1'").as_bytes());
    assert!(items[0]
        .as_ref()
        .unwrap_err()
        .message
        .contains("outside a message"));
    let (items, _) = read_all(b"");
    assert!(items[0].as_ref().unwrap_err().message.contains("empty"));
}

#[test]
fn syntax_problems_in_values() {
    let m = msg("M1", "F-1")
        .replace("DTM+137:20240115:102", "DTM+137:20241315:102")
        .replace("MOA+9:24.00", "MOA+9:24,00,0");
    let text = format!("{HEAD}{m}UNZ+1+REF1'");
    let (items, _) = read_all(text.as_bytes());
    let o = items[0].as_ref().unwrap().result.as_ref().unwrap();
    let f = fatal(o);
    assert!(
        o.issues
            .iter()
            .any(|v| v.term == "BT-2" && v.severity == Severity::Fatal),
        "{f:?}"
    );
    assert!(
        o.issues
            .iter()
            .any(|v| v.term == "BT-115" && v.severity == Severity::Fatal),
        "{f:?}"
    );
    assert_eq!(o.invoice.issue_date, None);
}

#[test]
fn character_sets() {
    // UNOC: ISO 8859-1 bytes.
    let mut bytes = b"UNB+UNOC:3+S+R+240101:1200+R1'UNH+1+INVOIC:D:96A:UN'BGM+380+1'NAD+SE+++Soci\xe9t\xe9 G\xe9n\xe9rale'UNT+4+1'UNZ+1+R1'".to_vec();
    let (items, _) = read_all(&bytes);
    let inv = &items[0].as_ref().unwrap().result.as_ref().unwrap().invoice;
    assert_eq!(inv.seller.name.as_deref(), Some("Société Générale"));
    // UNOY: UTF-8.
    bytes = "UNB+UNOY:3+S+R+240101:1200+R1'UNH+1+INVOIC:D:96A:UN'BGM+380+1'NAD+SE+++Zoë Ørsted'UNT+4+1'UNZ+1+R1'".as_bytes().to_vec();
    let (items, _) = read_all(&bytes);
    let inv = &items[0].as_ref().unwrap().result.as_ref().unwrap().invoice;
    assert_eq!(inv.seller.name.as_deref(), Some("Zoë Ørsted"));
    // UNOD: ISO 8859-2.
    bytes = b"UNB+UNOD:3+S+R+240101:1200+R1'UNH+1+INVOIC:D:96A:UN'BGM+380+1'NAD+SE+++\xa3\xf3d\xbc'UNT+4+1'UNZ+1+R1'".to_vec();
    let (items, _) = read_all(&bytes);
    let inv = &items[0].as_ref().unwrap().result.as_ref().unwrap().invoice;
    assert_eq!(inv.seller.name.as_deref(), Some("Łódź"));
}

/// Produces an interchange of `n` messages on the fly, counting bytes handed out.
struct Generator {
    n: usize,
    next: usize,
    buf: Vec<u8>,
    pos: usize,
    produced: Rc<Cell<u64>>,
    done: bool,
}

impl Read for Generator {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            if self.next == 0 {
                self.buf.extend_from_slice(HEAD.as_bytes());
            }
            if self.next < self.n {
                let s = msg(&format!("M{}", self.next), &format!("F-{}", self.next));
                self.buf
                    .extend_from_slice(s.replace('\'', "'\n").as_bytes());
                self.next += 1;
            } else if !self.done {
                self.buf
                    .extend_from_slice(format!("UNZ+{}+REF1'\n", self.n).as_bytes());
                self.done = true;
            } else {
                return Ok(0);
            }
        }
        let k = out.len().min(self.buf.len() - self.pos);
        out[..k].copy_from_slice(&self.buf[self.pos..self.pos + k]);
        self.pos += k;
        self.produced.set(self.produced.get() + k as u64);
        Ok(k)
    }
}

#[test]
fn ten_thousand_messages_streamed() {
    let produced = Rc::new(Cell::new(0));
    let n = 10_000;
    let gen = Generator {
        n,
        next: 0,
        buf: Vec::new(),
        pos: 0,
        produced: produced.clone(),
        done: false,
    };
    let mut it = Interchange::new(BufReader::with_capacity(8192, gen));
    let first = it.next().unwrap().unwrap();
    assert_eq!(first.reference, "M0");
    // Only the first message (and a buffer's worth) was read to yield it.
    assert!(
        produced.get() < 16 * 1024,
        "read {} bytes for the first message",
        produced.get()
    );
    let mut count = 1;
    let mut total = Decimal::ZERO;
    for item in it.by_ref() {
        let m = item.unwrap();
        let o = m.result.unwrap();
        assert!(o.issues.is_empty(), "{:?}", o.issues);
        assert_eq!(o.invoice.number, Some(format!("F-{count}")));
        total += o.invoice.totals.amount_due.unwrap();
        count += 1;
    }
    assert_eq!(count, n);
    assert_eq!(total, dec("24.00") * Decimal::from(n as u64 - 1));
    assert!(
        it.envelope_issues().is_empty(),
        "{:?}",
        it.envelope_issues()
    );
    assert!(
        produced.get() > 4_000_000,
        "the whole interchange was read: {}",
        produced.get()
    );
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn mutated_interchanges_never_panic() {
    // Byte flips, delimiter injections and truncations of every fixture:
    // each must give messages or errors, never a panic or an endless loop.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/edifact");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x != "md"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    seeds.sort();
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let specials = [b'\'', b'+', b':', b'?', b'\n', 0xC3, b'U', b'N', b'0'];
    let (mut ok, mut errors) = (0usize, 0usize);
    for round in 0..3000 {
        let mut bytes = seeds[round % seeds.len()].clone();
        for _ in 0..1 + rng.next() % 5 {
            let i = (rng.next() as usize) % bytes.len().max(1);
            match rng.next() % 4 {
                0 if !bytes.is_empty() => {
                    bytes[i] = specials[(rng.next() as usize) % specials.len()]
                }
                1 => bytes.truncate(i),
                2 if !bytes.is_empty() => bytes[i] = rng.next() as u8,
                _ => bytes.insert(
                    i.min(bytes.len()),
                    specials[(rng.next() as usize) % specials.len()],
                ),
            }
        }
        let mut n = 0;
        for item in Interchange::new(&bytes[..]) {
            n += 1;
            assert!(n < 10_000, "runaway iterator");
            match item {
                Ok(m) => match m.result {
                    Ok(_) => ok += 1,
                    Err(_) => errors += 1,
                },
                Err(_) => errors += 1,
            }
        }
    }
    assert!(ok > 0 && errors > 0, "{ok} {errors}");
}
