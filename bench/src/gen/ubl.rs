//! The UBL 2.1 writer.

use std::fmt::Write as _;

use super::invoice::{GenInvoice, GenParty};
use super::text::{a2, esc, rate_str};

fn ubl_party(out: &mut String, p: &GenParty, buyer: bool) {
    out.push_str("    <cac:Party>\n");
    let _ = writeln!(
        out,
        "      <cbc:EndpointID schemeID=\"0009\">{}00011</cbc:EndpointID>",
        p.siren
    );
    let _ = write!(
        out,
        "      <cac:PartyIdentification>\n        <cbc:ID schemeID=\"0009\">{}00011</cbc:ID>\n      </cac:PartyIdentification>\n",
        p.siren
    );
    out.push_str("      <cac:PartyName>\n        <cbc:Name>");
    esc(out, &p.trading_name);
    out.push_str(
        "</cbc:Name>\n      </cac:PartyName>\n      <cac:PostalAddress>\n        <cbc:StreetName>",
    );
    esc(out, &p.street);
    out.push_str("</cbc:StreetName>\n        <cbc:CityName>");
    esc(out, &p.city);
    let _ = write!(
        out,
        "</cbc:CityName>\n        <cbc:PostalZone>{}</cbc:PostalZone>\n        <cac:Country>\n          <cbc:IdentificationCode>{}</cbc:IdentificationCode>\n        </cac:Country>\n      </cac:PostalAddress>\n",
        p.post_code, p.country
    );
    let _ = write!(
        out,
        "      <cac:PartyTaxScheme>\n        <cbc:CompanyID>{}</cbc:CompanyID>\n        <cac:TaxScheme>\n          <cbc:ID>VAT</cbc:ID>\n        </cac:TaxScheme>\n      </cac:PartyTaxScheme>\n",
        p.vat_id
    );
    out.push_str("      <cac:PartyLegalEntity>\n");
    if let Some(name) = &p.name {
        out.push_str("        <cbc:RegistrationName>");
        esc(out, name);
        out.push_str("</cbc:RegistrationName>\n");
    }
    let _ = writeln!(
        out,
        "        <cbc:CompanyID schemeID=\"0002\">{}</cbc:CompanyID>",
        p.siren
    );
    if !buyer {
        out.push_str(
            "        <cbc:CompanyLegalForm>SARL au capital de 50 000 EUR</cbc:CompanyLegalForm>\n",
        );
    }
    out.push_str("      </cac:PartyLegalEntity>\n      <cac:Contact>\n        <cbc:Name>");
    esc(out, &p.contact);
    let _ = write!(
        out,
        "</cbc:Name>\n        <cbc:ElectronicMail>{}</cbc:ElectronicMail>\n      </cac:Contact>\n    </cac:Party>\n",
        p.email
    );
}

/// The invoice as a UBL 2.1 Invoice, in the style of the EN 16931 examples.
pub fn write_ubl(inv: &GenInvoice, out: &mut String) {
    out.push_str(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\"\n",
        "  xmlns:cac=\"urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2\"\n",
        "  xmlns:cbc=\"urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2\">\n",
        "  <cbc:CustomizationID>urn:cen.eu:en16931:2017</cbc:CustomizationID>\n",
        "  <cbc:ProfileID>urn:fdc:peppol.eu:2017:poacc:billing:01:1.0</cbc:ProfileID>\n",
    ));
    let _ = write!(
        out,
        "  <cbc:ID>{}</cbc:ID>\n  <cbc:IssueDate>{}</cbc:IssueDate>\n  <cbc:DueDate>{}</cbc:DueDate>\n  <cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>\n  <cbc:Note>",
        inv.number, inv.issue_date, inv.due_date
    );
    esc(out, &inv.note);
    let _ = write!(
        out,
        "</cbc:Note>\n  <cbc:DocumentCurrencyCode>{}</cbc:DocumentCurrencyCode>\n  <cbc:BuyerReference>{}</cbc:BuyerReference>\n  <cac:OrderReference>\n    <cbc:ID>{}</cbc:ID>\n  </cac:OrderReference>\n",
        inv.currency, inv.buyer_reference, inv.order_reference
    );
    out.push_str("  <cac:AccountingSupplierParty>\n");
    ubl_party(out, &inv.seller, false);
    out.push_str("  </cac:AccountingSupplierParty>\n  <cac:AccountingCustomerParty>\n");
    ubl_party(out, &inv.buyer, true);
    out.push_str("  </cac:AccountingCustomerParty>\n");
    let _ = write!(
        out,
        "  <cac:Delivery>\n    <cbc:ActualDeliveryDate>{}</cbc:ActualDeliveryDate>\n  </cac:Delivery>\n",
        inv.delivery_date
    );
    let _ = write!(
        out,
        "  <cac:PaymentMeans>\n    <cbc:PaymentMeansCode>30</cbc:PaymentMeansCode>\n    <cbc:PaymentID>{}</cbc:PaymentID>\n    <cac:PayeeFinancialAccount>\n      <cbc:ID>{}</cbc:ID>\n    </cac:PayeeFinancialAccount>\n  </cac:PaymentMeans>\n",
        inv.number, inv.iban
    );
    out.push_str("  <cac:PaymentTerms>\n    <cbc:Note>Paiement à 30 jours fin de mois</cbc:Note>\n  </cac:PaymentTerms>\n");
    let _ = write!(
        out,
        "  <cac:TaxTotal>\n    <cbc:TaxAmount currencyID=\"{}\">{}</cbc:TaxAmount>\n",
        inv.currency,
        a2(inv.vat_total)
    );
    for b in &inv.breakdown {
        let _ = write!(
            out,
            "    <cac:TaxSubtotal>\n      <cbc:TaxableAmount currencyID=\"{c}\">{}</cbc:TaxableAmount>\n      <cbc:TaxAmount currencyID=\"{c}\">{}</cbc:TaxAmount>\n      <cac:TaxCategory>\n        <cbc:ID>S</cbc:ID>\n        <cbc:Percent>{}</cbc:Percent>\n        <cac:TaxScheme>\n          <cbc:ID>VAT</cbc:ID>\n        </cac:TaxScheme>\n      </cac:TaxCategory>\n    </cac:TaxSubtotal>\n",
            a2(b.taxable),
            a2(b.tax),
            rate_str(b.rate),
            c = inv.currency
        );
    }
    out.push_str("  </cac:TaxTotal>\n");
    let _ = write!(
        out,
        "  <cac:LegalMonetaryTotal>\n    <cbc:LineExtensionAmount currencyID=\"{c}\">{}</cbc:LineExtensionAmount>\n    <cbc:TaxExclusiveAmount currencyID=\"{c}\">{}</cbc:TaxExclusiveAmount>\n    <cbc:TaxInclusiveAmount currencyID=\"{c}\">{}</cbc:TaxInclusiveAmount>\n    <cbc:PayableAmount currencyID=\"{c}\">{}</cbc:PayableAmount>\n  </cac:LegalMonetaryTotal>\n",
        a2(inv.line_total),
        a2(inv.without_vat),
        a2(inv.with_vat),
        a2(inv.due),
        c = inv.currency
    );
    for l in &inv.lines {
        let _ = write!(
            out,
            "  <cac:InvoiceLine>\n    <cbc:ID>{}</cbc:ID>\n    <cbc:InvoicedQuantity unitCode=\"{}\">{}</cbc:InvoicedQuantity>\n    <cbc:LineExtensionAmount currencyID=\"{}\">{}</cbc:LineExtensionAmount>\n    <cac:Item>\n      <cbc:Name>",
            l.id, l.unit, l.quantity, inv.currency, a2(l.net)
        );
        esc(out, &l.item_name);
        let _ = write!(
            out,
            "</cbc:Name>\n      <cac:SellersItemIdentification>\n        <cbc:ID>{}</cbc:ID>\n      </cac:SellersItemIdentification>\n      <cac:ClassifiedTaxCategory>\n        <cbc:ID>S</cbc:ID>\n        <cbc:Percent>{}</cbc:Percent>\n        <cac:TaxScheme>\n          <cbc:ID>VAT</cbc:ID>\n        </cac:TaxScheme>\n      </cac:ClassifiedTaxCategory>\n    </cac:Item>\n    <cac:Price>\n      <cbc:PriceAmount currencyID=\"{}\">{}</cbc:PriceAmount>\n    </cac:Price>\n  </cac:InvoiceLine>\n",
            l.seller_item_id,
            rate_str(l.rate),
            inv.currency,
            a2(l.price)
        );
    }
    out.push_str("</Invoice>\n");
}
