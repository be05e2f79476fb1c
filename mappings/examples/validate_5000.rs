//! Map and validate time of a large invoice, to show both are linear.
//!
//! `cargo run --release -p quai-mappings --example validate_5000` builds
//! valid EN 16931 UBL and CII invoices of 500, 5,000 and 50,000 lines in
//! memory, then prints the median time (over several runs) to map each with
//! its reader (the XSD structure check included, as it runs while reading)
//! and to validate the canonical invoice by the EN 16931 rules and the French
//! CTC layer (BR-FR). Issue 8's target is
//! map + validate of 5,000 lines in at most 20 ms; schematron validators
//! take minutes there because their rules re-scan the lines per total.
//! Arguments narrow the run (for a profiler): `UBL` or `CII` for one
//! syntax, numbers for the line counts, `--runs N` for the runs of each
//! (`validate_5000 CII 5000 --runs 1`).

use std::time::{Duration, Instant};

use quai_mappings::model::Severity;
use quai_mappings::{cii, ubl, validate};

/// A valid UBL invoice of `n` lines of 10.00 each at 20 % VAT.
fn ubl_invoice(n: usize) -> Vec<u8> {
    let mut s = String::with_capacity(900 + n * 700);
    let net = n * 10;
    let vat = n * 2;
    s.push_str(&format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2" xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
<cbc:CustomizationID>urn:cen.eu:en16931:2017</cbc:CustomizationID>
<cbc:ID>BENCH-{n}</cbc:ID><cbc:IssueDate>2026-09-01</cbc:IssueDate><cbc:DueDate>2026-10-01</cbc:DueDate>
<cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode><cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
<cbc:BuyerReference>PO-1</cbc:BuyerReference>
<cac:AccountingSupplierParty><cac:Party><cac:PostalAddress><cbc:CityName>Paris</cbc:CityName><cac:Country><cbc:IdentificationCode>FR</cbc:IdentificationCode></cac:Country></cac:PostalAddress>
<cac:PartyTaxScheme><cbc:CompanyID>FR32123456789</cbc:CompanyID><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>
<cac:PartyLegalEntity><cbc:RegistrationName>Seller SA</cbc:RegistrationName></cac:PartyLegalEntity></cac:Party></cac:AccountingSupplierParty>
<cac:AccountingCustomerParty><cac:Party><cac:PostalAddress><cbc:CityName>Lyon</cbc:CityName><cac:Country><cbc:IdentificationCode>FR</cbc:IdentificationCode></cac:Country></cac:PostalAddress>
<cac:PartyLegalEntity><cbc:RegistrationName>Buyer SARL</cbc:RegistrationName></cac:PartyLegalEntity></cac:Party></cac:AccountingCustomerParty>
<cac:TaxTotal><cbc:TaxAmount currencyID="EUR">{vat}.00</cbc:TaxAmount>
<cac:TaxSubtotal><cbc:TaxableAmount currencyID="EUR">{net}.00</cbc:TaxableAmount><cbc:TaxAmount currencyID="EUR">{vat}.00</cbc:TaxAmount>
<cac:TaxCategory><cbc:ID>S</cbc:ID><cbc:Percent>20</cbc:Percent><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:TaxCategory></cac:TaxSubtotal></cac:TaxTotal>
<cac:LegalMonetaryTotal><cbc:LineExtensionAmount currencyID="EUR">{net}.00</cbc:LineExtensionAmount><cbc:TaxExclusiveAmount currencyID="EUR">{net}.00</cbc:TaxExclusiveAmount>
<cbc:TaxInclusiveAmount currencyID="EUR">{gross}.00</cbc:TaxInclusiveAmount><cbc:PayableAmount currencyID="EUR">{gross}.00</cbc:PayableAmount></cac:LegalMonetaryTotal>
"#,
        gross = net + vat
    ));
    for i in 1..=n {
        s.push_str(&format!(
            r#"<cac:InvoiceLine><cbc:ID>{i}</cbc:ID><cbc:InvoicedQuantity unitCode="C62">2</cbc:InvoicedQuantity><cbc:LineExtensionAmount currencyID="EUR">10.00</cbc:LineExtensionAmount>
<cac:Item><cbc:Name>Article {i}</cbc:Name><cac:SellersItemIdentification><cbc:ID>SKU-{i}</cbc:ID></cac:SellersItemIdentification>
<cac:ClassifiedTaxCategory><cbc:ID>S</cbc:ID><cbc:Percent>20</cbc:Percent><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:ClassifiedTaxCategory></cac:Item>
<cac:Price><cbc:PriceAmount currencyID="EUR">5.00</cbc:PriceAmount></cac:Price></cac:InvoiceLine>
"#
        ));
    }
    s.push_str("</Invoice>\n");
    s.into_bytes()
}

/// The same invoice in CII.
fn cii_invoice(n: usize) -> Vec<u8> {
    let net = n * 10;
    let vat = n * 2;
    let mut s = String::with_capacity(900 + n * 800);
    s.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100" xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100" xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
<rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>urn:cen.eu:en16931:2017</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter></rsm:ExchangedDocumentContext>
"#);
    s.push_str(&format!(
        "<rsm:ExchangedDocument><ram:ID>BENCH-{n}</ram:ID><ram:TypeCode>380</ram:TypeCode><ram:IssueDateTime><udt:DateTimeString format=\"102\">20260901</udt:DateTimeString></ram:IssueDateTime></rsm:ExchangedDocument>\n<rsm:SupplyChainTradeTransaction>\n"
    ));
    for i in 1..=n {
        s.push_str(&format!(
            r#"<ram:IncludedSupplyChainTradeLineItem><ram:AssociatedDocumentLineDocument><ram:LineID>{i}</ram:LineID></ram:AssociatedDocumentLineDocument>
<ram:SpecifiedTradeProduct><ram:SellerAssignedID>SKU-{i}</ram:SellerAssignedID><ram:Name>Article {i}</ram:Name></ram:SpecifiedTradeProduct>
<ram:SpecifiedLineTradeAgreement><ram:NetPriceProductTradePrice><ram:ChargeAmount>5.00</ram:ChargeAmount></ram:NetPriceProductTradePrice></ram:SpecifiedLineTradeAgreement>
<ram:SpecifiedLineTradeDelivery><ram:BilledQuantity unitCode="C62">2</ram:BilledQuantity></ram:SpecifiedLineTradeDelivery>
<ram:SpecifiedLineTradeSettlement><ram:ApplicableTradeTax><ram:TypeCode>VAT</ram:TypeCode><ram:CategoryCode>S</ram:CategoryCode><ram:RateApplicablePercent>20</ram:RateApplicablePercent></ram:ApplicableTradeTax>
<ram:SpecifiedTradeSettlementLineMonetarySummation><ram:LineTotalAmount>10.00</ram:LineTotalAmount></ram:SpecifiedTradeSettlementLineMonetarySummation></ram:SpecifiedLineTradeSettlement></ram:IncludedSupplyChainTradeLineItem>
"#
        ));
    }
    s.push_str(&format!(
        r#"<ram:ApplicableHeaderTradeAgreement><ram:BuyerReference>PO-1</ram:BuyerReference>
<ram:SellerTradeParty><ram:Name>Seller SA</ram:Name><ram:PostalTradeAddress><ram:CityName>Paris</ram:CityName><ram:CountryID>FR</ram:CountryID></ram:PostalTradeAddress><ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">FR32123456789</ram:ID></ram:SpecifiedTaxRegistration></ram:SellerTradeParty>
<ram:BuyerTradeParty><ram:Name>Buyer SARL</ram:Name><ram:PostalTradeAddress><ram:CityName>Lyon</ram:CityName><ram:CountryID>FR</ram:CountryID></ram:PostalTradeAddress></ram:BuyerTradeParty></ram:ApplicableHeaderTradeAgreement>
<ram:ApplicableHeaderTradeDelivery/>
<ram:ApplicableHeaderTradeSettlement><ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
<ram:ApplicableTradeTax><ram:CalculatedAmount>{vat}.00</ram:CalculatedAmount><ram:TypeCode>VAT</ram:TypeCode><ram:BasisAmount>{net}.00</ram:BasisAmount><ram:CategoryCode>S</ram:CategoryCode><ram:RateApplicablePercent>20</ram:RateApplicablePercent></ram:ApplicableTradeTax>
<ram:SpecifiedTradePaymentTerms><ram:DueDateDateTime><udt:DateTimeString format="102">20261001</udt:DateTimeString></ram:DueDateDateTime></ram:SpecifiedTradePaymentTerms>
<ram:SpecifiedTradeSettlementHeaderMonetarySummation><ram:LineTotalAmount>{net}.00</ram:LineTotalAmount><ram:TaxBasisTotalAmount>{net}.00</ram:TaxBasisTotalAmount>
<ram:TaxTotalAmount currencyID="EUR">{vat}.00</ram:TaxTotalAmount><ram:GrandTotalAmount>{gross}.00</ram:GrandTotalAmount><ram:DuePayableAmount>{gross}.00</ram:DuePayableAmount></ram:SpecifiedTradeSettlementHeaderMonetarySummation>
</ram:ApplicableHeaderTradeSettlement></rsm:SupplyChainTradeTransaction></rsm:CrossIndustryInvoice>
"#,
        gross = net + vat
    ));
    s.into_bytes()
}

/// Wall-clock time of `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t0 = Instant::now();
    let out = f();
    (out, t0.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    println!(
        "Wall-clock time, median and (in brackets) fastest of the runs: on a shared, loaded \
         machine the fastest run is the closest to the code's own cost.\n"
    );
    println!("| syntax | lines | bytes | map | validate | map + validate | per line (median) |");
    println!("|---|---|---|---|---|---|---|");
    let fr = validate::Layers {
        fr_ctc: Some(validate::fr::FrMode::Fatal),
        ..validate::Layers::NONE
    };
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut runs_arg = None;
    if let Some(i) = args.iter().position(|a| a == "--runs") {
        runs_arg = Some(
            args.get(i + 1)
                .and_then(|s| s.parse::<usize>().ok())
                .expect("--runs N"),
        );
        args.drain(i..i + 2);
    }
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() {
        vec![500usize, 5_000, 50_000]
    } else {
        sizes
    };
    let only: Vec<&String> = args
        .iter()
        .filter(|a| a.parse::<usize>().is_err())
        .collect();
    for (syntax, build) in [
        ("UBL", ubl_invoice as fn(usize) -> Vec<u8>),
        ("CII", cii_invoice as fn(usize) -> Vec<u8>),
    ] {
        if !only.is_empty() && !only.iter().any(|s| s.eq_ignore_ascii_case(syntax)) {
            continue;
        }
        for &n in &sizes {
            let doc = build(n);
            let runs = runs_arg.unwrap_or(if n >= 50_000 { 7 } else { 31 });
            let (mut map_t, mut val_t, mut both_t) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..runs {
                let (outcome, m) = timed(|| {
                    match syntax {
                        "UBL" => ubl::read(&doc[..]),
                        _ => cii::read(&doc[..]),
                    }
                    .expect("the generated invoice reads")
                });
                // EN 16931 and the French CTC layer (BR-FR), as a French
                // platform runs them.
                let (violations, v) = timed(|| {
                    // Placed as a flow places them (XPath, line, column).
                    let mut all =
                        validate::validate_placed(&outcome.invoice, Some(&outcome.positions));
                    all.extend(validate::validate_layers(&outcome.invoice, &fr));
                    all
                });
                map_t.push(m);
                val_t.push(v);
                both_t.push(m + v);
                assert_eq!(outcome.invoice.lines.len(), n);
                // Valid for EN 16931 and the XSD (the structure check runs
                // while reading); BR-FR findings are counted, not required
                // absent (the generated parties carry no SIREN).
                let fatal: Vec<_> = violations
                    .iter()
                    .chain(&outcome.issues)
                    .chain(&outcome.structure)
                    .filter(|v| v.severity == Severity::Fatal && !v.rule.starts_with("BR-FR"))
                    .collect();
                assert!(
                    fatal.is_empty(),
                    "the generated invoice is valid: {fatal:?}"
                );
            }
            let cell = |v: &Vec<Duration>| {
                let min = v.iter().min().copied().unwrap_or_default();
                format!("{} ({})", ms(median(v.clone())), ms(min))
            };
            println!(
                "| {syntax} | {n} | {} | {} | {} | {} | {:.2} µs |",
                doc.len(),
                cell(&map_t),
                cell(&val_t),
                cell(&both_t),
                median(both_t.clone()).as_secs_f64() * 1e6 / n as f64
            );
        }
    }
}
