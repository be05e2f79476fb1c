//! The UN/CEFACT CII D16B writer.

use std::fmt::Write as _;

use super::invoice::{GenInvoice, GenParty};
use super::text::{a2, cii_date, esc, rate_str};

fn cii_party(out: &mut String, tag: &str, p: &GenParty) {
    let _ = write!(
        out,
        "      <ram:{tag}>\n        <ram:ID>{}00011</ram:ID>\n",
        p.siren
    );
    if let Some(name) = &p.name {
        out.push_str("        <ram:Name>");
        esc(out, name);
        out.push_str("</ram:Name>\n");
    }
    let _ = write!(
        out,
        "        <ram:SpecifiedLegalOrganization>\n          <ram:ID schemeID=\"0002\">{}</ram:ID>\n          <ram:TradingBusinessName>",
        p.siren
    );
    esc(out, &p.trading_name);
    out.push_str("</ram:TradingBusinessName>\n        </ram:SpecifiedLegalOrganization>\n        <ram:DefinedTradeContact>\n          <ram:PersonName>");
    esc(out, &p.contact);
    let _ = write!(
        out,
        "</ram:PersonName>\n          <ram:TelephoneUniversalCommunication>\n            <ram:CompleteNumber>{}</ram:CompleteNumber>\n          </ram:TelephoneUniversalCommunication>\n          <ram:EmailURIUniversalCommunication>\n            <ram:URIID>{}</ram:URIID>\n          </ram:EmailURIUniversalCommunication>\n        </ram:DefinedTradeContact>\n        <ram:PostalTradeAddress>\n          <ram:PostcodeCode>{}</ram:PostcodeCode>\n          <ram:LineOne>",
        p.phone, p.email, p.post_code
    );
    esc(out, &p.street);
    out.push_str("</ram:LineOne>\n          <ram:CityName>");
    esc(out, &p.city);
    let _ = write!(
        out,
        "</ram:CityName>\n          <ram:CountryID>{}</ram:CountryID>\n        </ram:PostalTradeAddress>\n        <ram:URIUniversalCommunication>\n          <ram:URIID schemeID=\"0009\">{}00011</ram:URIID>\n        </ram:URIUniversalCommunication>\n        <ram:SpecifiedTaxRegistration>\n          <ram:ID schemeID=\"VA\">{}</ram:ID>\n        </ram:SpecifiedTaxRegistration>\n      </ram:{tag}>\n",
        p.country, p.siren, p.vat_id
    );
}

/// The invoice as a UN/CEFACT CII D16B CrossIndustryInvoice.
pub fn write_cii(inv: &GenInvoice, out: &mut String) {
    out.push_str(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<rsm:CrossIndustryInvoice xmlns:rsm=\"urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100\"\n",
        "  xmlns:qdt=\"urn:un:unece:uncefact:data:standard:QualifiedDataType:100\"\n",
        "  xmlns:ram=\"urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100\"\n",
        "  xmlns:udt=\"urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100\">\n",
        "  <rsm:ExchangedDocumentContext>\n    <ram:GuidelineSpecifiedDocumentContextParameter>\n",
        "      <ram:ID>urn:cen.eu:en16931:2017</ram:ID>\n",
        "    </ram:GuidelineSpecifiedDocumentContextParameter>\n  </rsm:ExchangedDocumentContext>\n",
    ));
    let _ = write!(
        out,
        "  <rsm:ExchangedDocument>\n    <ram:ID>{}</ram:ID>\n    <ram:TypeCode>380</ram:TypeCode>\n    <ram:IssueDateTime>\n      <udt:DateTimeString format=\"102\">{}</udt:DateTimeString>\n    </ram:IssueDateTime>\n    <ram:IncludedNote>\n      <ram:Content>",
        inv.number,
        cii_date(inv.issue_date)
    );
    esc(out, &inv.note);
    out.push_str("</ram:Content>\n      <ram:SubjectCode>PMT</ram:SubjectCode>\n    </ram:IncludedNote>\n  </rsm:ExchangedDocument>\n  <rsm:SupplyChainTradeTransaction>\n");
    for l in &inv.lines {
        let _ = write!(
            out,
            "    <ram:IncludedSupplyChainTradeLineItem>\n      <ram:AssociatedDocumentLineDocument>\n        <ram:LineID>{}</ram:LineID>\n      </ram:AssociatedDocumentLineDocument>\n      <ram:SpecifiedTradeProduct>\n        <ram:SellerAssignedID>{}</ram:SellerAssignedID>\n        <ram:Name>",
            l.id, l.seller_item_id
        );
        esc(out, &l.item_name);
        let _ = write!(
            out,
            "</ram:Name>\n      </ram:SpecifiedTradeProduct>\n      <ram:SpecifiedLineTradeAgreement>\n        <ram:NetPriceProductTradePrice>\n          <ram:ChargeAmount>{}</ram:ChargeAmount>\n          <ram:BasisQuantity unitCode=\"{u}\">1</ram:BasisQuantity>\n        </ram:NetPriceProductTradePrice>\n      </ram:SpecifiedLineTradeAgreement>\n      <ram:SpecifiedLineTradeDelivery>\n        <ram:BilledQuantity unitCode=\"{u}\">{}</ram:BilledQuantity>\n      </ram:SpecifiedLineTradeDelivery>\n      <ram:SpecifiedLineTradeSettlement>\n        <ram:ApplicableTradeTax>\n          <ram:TypeCode>VAT</ram:TypeCode>\n          <ram:CategoryCode>S</ram:CategoryCode>\n          <ram:RateApplicablePercent>{}</ram:RateApplicablePercent>\n        </ram:ApplicableTradeTax>\n        <ram:SpecifiedTradeSettlementLineMonetarySummation>\n          <ram:LineTotalAmount>{}</ram:LineTotalAmount>\n        </ram:SpecifiedTradeSettlementLineMonetarySummation>\n      </ram:SpecifiedLineTradeSettlement>\n    </ram:IncludedSupplyChainTradeLineItem>\n",
            a2(l.price),
            l.quantity,
            rate_str(l.rate),
            a2(l.net),
            u = l.unit
        );
    }
    let _ = write!(
        out,
        "    <ram:ApplicableHeaderTradeAgreement>\n      <ram:BuyerReference>{}</ram:BuyerReference>\n",
        inv.buyer_reference
    );
    cii_party(out, "SellerTradeParty", &inv.seller);
    cii_party(out, "BuyerTradeParty", &inv.buyer);
    let _ = write!(
        out,
        "      <ram:BuyerOrderReferencedDocument>\n        <ram:IssuerAssignedID>{}</ram:IssuerAssignedID>\n      </ram:BuyerOrderReferencedDocument>\n    </ram:ApplicableHeaderTradeAgreement>\n    <ram:ApplicableHeaderTradeDelivery>\n      <ram:ActualDeliverySupplyChainEvent>\n        <ram:OccurrenceDateTime>\n          <udt:DateTimeString format=\"102\">{}</udt:DateTimeString>\n        </ram:OccurrenceDateTime>\n      </ram:ActualDeliverySupplyChainEvent>\n    </ram:ApplicableHeaderTradeDelivery>\n",
        inv.order_reference,
        cii_date(inv.delivery_date)
    );
    let _ = write!(
        out,
        "    <ram:ApplicableHeaderTradeSettlement>\n      <ram:PaymentReference>{}</ram:PaymentReference>\n      <ram:InvoiceCurrencyCode>{}</ram:InvoiceCurrencyCode>\n      <ram:SpecifiedTradeSettlementPaymentMeans>\n        <ram:TypeCode>30</ram:TypeCode>\n        <ram:PayeePartyCreditorFinancialAccount>\n          <ram:IBANID>{}</ram:IBANID>\n        </ram:PayeePartyCreditorFinancialAccount>\n      </ram:SpecifiedTradeSettlementPaymentMeans>\n",
        inv.number, inv.currency, inv.iban
    );
    for b in &inv.breakdown {
        let _ = write!(
            out,
            "      <ram:ApplicableTradeTax>\n        <ram:CalculatedAmount>{}</ram:CalculatedAmount>\n        <ram:TypeCode>VAT</ram:TypeCode>\n        <ram:BasisAmount>{}</ram:BasisAmount>\n        <ram:CategoryCode>S</ram:CategoryCode>\n        <ram:RateApplicablePercent>{}</ram:RateApplicablePercent>\n      </ram:ApplicableTradeTax>\n",
            a2(b.tax),
            a2(b.taxable),
            rate_str(b.rate)
        );
    }
    let _ = write!(
        out,
        "      <ram:SpecifiedTradePaymentTerms>\n        <ram:Description>Paiement à 30 jours</ram:Description>\n        <ram:DueDateDateTime>\n          <udt:DateTimeString format=\"102\">{}</udt:DateTimeString>\n        </ram:DueDateDateTime>\n      </ram:SpecifiedTradePaymentTerms>\n      <ram:SpecifiedTradeSettlementHeaderMonetarySummation>\n        <ram:LineTotalAmount>{}</ram:LineTotalAmount>\n        <ram:TaxBasisTotalAmount>{}</ram:TaxBasisTotalAmount>\n        <ram:TaxTotalAmount currencyID=\"{}\">{}</ram:TaxTotalAmount>\n        <ram:GrandTotalAmount>{}</ram:GrandTotalAmount>\n        <ram:DuePayableAmount>{}</ram:DuePayableAmount>\n      </ram:SpecifiedTradeSettlementHeaderMonetarySummation>\n    </ram:ApplicableHeaderTradeSettlement>\n  </rsm:SupplyChainTradeTransaction>\n</rsm:CrossIndustryInvoice>\n",
        cii_date(inv.due_date),
        a2(inv.line_total),
        a2(inv.without_vat),
        inv.currency,
        a2(inv.vat_total),
        a2(inv.with_vat),
        a2(inv.due)
    );
}
