//! The canonical invoice as UN/CEFACT CII D16B (`rsm:CrossIndustryInvoice`,
//! the syntax of Factur-X / ZUGFeRD 2 and EN 16931-3-3), in the element
//! order of the schema and the binding the reader `crate::cii` follows.

use std::io::{self, Write};

use rust_decimal::Decimal;

use super::{cii_specification_id, dec, tax_point_code_cii};
use crate::cii::{NS_QDT, NS_RAM, NS_RSM, NS_UDT};
use crate::model::{Address, Identifier, Invoice, Line, Party};
use crate::xml_out::XmlWriter;

/// Write `invoice` as a CII D16B CrossIndustryInvoice. Returns the writer.
pub fn write_cii<W: Write>(invoice: &Invoice, out: W) -> io::Result<W> {
    let mut c = Cii {
        w: XmlWriter::new(out)?,
    };
    c.document(invoice)?;
    c.w.finish()
}

struct Cii<W: Write> {
    w: XmlWriter<W>,
}

fn date102(d: &chrono::NaiveDate) -> String {
    d.format("%Y%m%d").to_string()
}

/// A rough IBAN test (two letters, two digits): the account goes in
/// `IBANID`, anything else in `ProprietaryID`; both read back as BT-84.
fn looks_like_iban(s: &str) -> bool {
    let b: Vec<u8> = s.bytes().filter(|c| *c != b' ').collect();
    b.len() >= 15
        && b[..2].iter().all(u8::is_ascii_alphabetic)
        && b[2..4].iter().all(u8::is_ascii_digit)
        && b.iter().all(u8::is_ascii_alphanumeric)
}

impl<W: Write> Cii<W> {
    fn ram(&mut self, name: &str, v: &str) -> io::Result<()> {
        self.w.leaf(&format!("ram:{name}"), &[], v)
    }

    fn opt(&mut self, name: &str, v: &Option<String>) -> io::Result<()> {
        match v {
            Some(v) => self.ram(name, v),
            None => Ok(()),
        }
    }

    fn number(&mut self, name: &str, v: &Option<Decimal>) -> io::Result<()> {
        match v {
            Some(d) => self.ram(name, &dec(d)),
            None => Ok(()),
        }
    }

    fn start(&mut self, name: &str) -> io::Result<()> {
        self.w.start(&format!("ram:{name}"), &[])
    }

    fn end(&mut self, name: &str) -> io::Result<()> {
        self.w.end(&format!("ram:{name}"))
    }

    /// `<ram:tag><udt:DateTimeString format="102">…</…></ram:tag>`
    fn date_time(&mut self, tag: &str, d: &chrono::NaiveDate) -> io::Result<()> {
        self.start(tag)?;
        self.w
            .leaf("udt:DateTimeString", &[("format", "102")], &date102(d))?;
        self.end(tag)
    }

    fn opt_date_time(&mut self, tag: &str, d: &Option<chrono::NaiveDate>) -> io::Result<()> {
        match d {
            Some(d) => self.date_time(tag, d),
            None => Ok(()),
        }
    }

    /// An identifier: `ram:GlobalID` with its scheme, `ram:ID` without.
    fn party_id(&mut self, id: &Identifier) -> io::Result<()> {
        match &id.scheme {
            Some(s) => self.w.leaf("ram:GlobalID", &[("schemeID", s)], &id.value),
            None => self.ram("ID", &id.value),
        }
    }

    fn schemed(&mut self, name: &str, id: &Identifier) -> io::Result<()> {
        let attrs: Vec<(&str, &str)> = id
            .scheme
            .as_deref()
            .map(|s| vec![("schemeID", s)])
            .unwrap_or_default();
        self.w.leaf(&format!("ram:{name}"), &attrs, &id.value)
    }

    /// `<ram:outer><ram:IssuerAssignedID>v</…></ram:outer>`
    fn referenced(&mut self, outer: &str, v: &Option<String>) -> io::Result<()> {
        if let Some(v) = v {
            self.start(outer)?;
            self.ram("IssuerAssignedID", v)?;
            self.end(outer)?;
        }
        Ok(())
    }

    fn document(&mut self, inv: &Invoice) -> io::Result<()> {
        self.w.start(
            "rsm:CrossIndustryInvoice",
            &[
                ("xmlns:rsm", NS_RSM),
                ("xmlns:qdt", NS_QDT),
                ("xmlns:ram", NS_RAM),
                ("xmlns:udt", NS_UDT),
            ],
        )?;
        self.w.start("rsm:ExchangedDocumentContext", &[])?;
        if let Some(b) = &inv.business_process {
            self.start("BusinessProcessSpecifiedDocumentContextParameter")?;
            self.ram("ID", b)?;
            self.end("BusinessProcessSpecifiedDocumentContextParameter")?;
        }
        self.start("GuidelineSpecifiedDocumentContextParameter")?;
        self.ram("ID", cii_specification_id(inv.specification_id.as_deref()))?;
        self.end("GuidelineSpecifiedDocumentContextParameter")?;
        self.w.end("rsm:ExchangedDocumentContext")?;

        self.w.start("rsm:ExchangedDocument", &[])?;
        self.ram("ID", inv.number.as_deref().unwrap_or(""))?;
        self.ram("TypeCode", inv.type_code.as_deref().unwrap_or(""))?;
        match &inv.issue_date {
            Some(d) => self.date_time("IssueDateTime", d)?,
            None => {
                self.start("IssueDateTime")?;
                self.w
                    .leaf("udt:DateTimeString", &[("format", "102")], "")?;
                self.end("IssueDateTime")?;
            }
        }
        for n in &inv.notes {
            self.start("IncludedNote")?;
            self.ram("Content", &n.text)?;
            self.opt("SubjectCode", &n.subject_code)?;
            self.end("IncludedNote")?;
        }
        self.w.end("rsm:ExchangedDocument")?;

        self.w.start("rsm:SupplyChainTradeTransaction", &[])?;
        for l in &inv.lines {
            self.line(l)?;
        }
        self.agreement(inv)?;
        self.delivery(inv)?;
        self.settlement(inv)?;
        self.w.end("rsm:SupplyChainTradeTransaction")?;
        self.w.end("rsm:CrossIndustryInvoice")
    }

    fn address(&mut self, a: &Address) -> io::Result<()> {
        self.start("PostalTradeAddress")?;
        self.opt("PostcodeCode", &a.post_code)?;
        self.opt("LineOne", &a.line1)?;
        self.opt("LineTwo", &a.line2)?;
        self.opt("LineThree", &a.line3)?;
        self.opt("CityName", &a.city)?;
        // Mandatory in CII.
        self.ram("CountryID", a.country_code.as_deref().unwrap_or(""))?;
        self.opt("CountrySubDivisionName", &a.subdivision)?;
        self.end("PostalTradeAddress")
    }

    fn party(&mut self, tag: &str, p: &Party) -> io::Result<()> {
        let seller = tag == "SellerTradeParty";
        self.start(tag)?;
        // The schema puts every ram:ID before every ram:GlobalID.
        for id in p.identifiers.iter().filter(|i| i.scheme.is_none()) {
            self.party_id(id)?;
        }
        for id in p.identifiers.iter().filter(|i| i.scheme.is_some()) {
            self.party_id(id)?;
        }
        self.opt("Name", &p.name)?;
        self.opt("Description", &p.additional_legal_info)?;
        if p.legal_registration_id.is_some() || p.trading_name.is_some() {
            self.start("SpecifiedLegalOrganization")?;
            if let Some(id) = &p.legal_registration_id {
                self.schemed("ID", id)?;
            }
            self.opt("TradingBusinessName", &p.trading_name)?;
            self.end("SpecifiedLegalOrganization")?;
        }
        if let Some(c) = &p.contact {
            self.start("DefinedTradeContact")?;
            self.opt("PersonName", &c.name)?;
            if let Some(t) = &c.phone {
                self.start("TelephoneUniversalCommunication")?;
                self.ram("CompleteNumber", t)?;
                self.end("TelephoneUniversalCommunication")?;
            }
            if let Some(e) = &c.email {
                self.start("EmailURIUniversalCommunication")?;
                self.ram("URIID", e)?;
                self.end("EmailURIUniversalCommunication")?;
            }
            self.end("DefinedTradeContact")?;
        }
        if let Some(a) = &p.address {
            self.address(a)?;
        }
        if let Some(e) = &p.electronic_address {
            self.start("URIUniversalCommunication")?;
            self.schemed("URIID", e)?;
            self.end("URIUniversalCommunication")?;
        }
        if let Some(v) = &p.vat_id {
            self.start("SpecifiedTaxRegistration")?;
            self.w.leaf("ram:ID", &[("schemeID", "VA")], v)?;
            self.end("SpecifiedTaxRegistration")?;
        }
        // BT-32 is the seller's; the buyer has one tax registration (BT-48).
        if let Some(v) = p.tax_registration_id.as_ref().filter(|_| seller) {
            self.start("SpecifiedTaxRegistration")?;
            self.w.leaf("ram:ID", &[("schemeID", "FC")], v)?;
            self.end("SpecifiedTaxRegistration")?;
        }
        self.end(tag)
    }

    fn line(&mut self, l: &Line) -> io::Result<()> {
        self.start("IncludedSupplyChainTradeLineItem")?;
        self.start("AssociatedDocumentLineDocument")?;
        self.ram("LineID", l.id.as_deref().unwrap_or(""))?;
        if let Some(n) = &l.note {
            self.start("IncludedNote")?;
            self.ram("Content", n)?;
            self.end("IncludedNote")?;
        }
        self.end("AssociatedDocumentLineDocument")?;

        self.start("SpecifiedTradeProduct")?;
        if let Some(id) = &l.standard_item_id {
            self.schemed("GlobalID", id)?;
        }
        self.opt("SellerAssignedID", &l.seller_item_id)?;
        self.opt("BuyerAssignedID", &l.buyer_item_id)?;
        // Mandatory in CII (BT-153 is mandatory in EN 16931).
        self.ram("Name", l.item_name.as_deref().unwrap_or(""))?;
        self.opt("Description", &l.item_description)?;
        for a in &l.attributes {
            self.start("ApplicableProductCharacteristic")?;
            self.ram("Description", &a.name)?;
            self.ram("Value", &a.value)?;
            self.end("ApplicableProductCharacteristic")?;
        }
        for c in &l.classifications {
            let mut attrs = Vec::new();
            if let Some(s) = &c.scheme {
                attrs.push(("listID", s.as_str()));
            }
            if let Some(v) = &c.scheme_version {
                attrs.push(("listVersionID", v.as_str()));
            }
            self.start("DesignatedProductClassification")?;
            self.w.leaf("ram:ClassCode", &attrs, &c.value)?;
            self.end("DesignatedProductClassification")?;
        }
        if let Some(c) = &l.origin_country {
            self.start("OriginTradeCountry")?;
            self.ram("ID", c)?;
            self.end("OriginTradeCountry")?;
        }
        self.end("SpecifiedTradeProduct")?;

        self.start("SpecifiedLineTradeAgreement")?;
        if let Some(r) = &l.order_line_reference {
            self.start("BuyerOrderReferencedDocument")?;
            self.ram("LineID", r)?;
            self.end("BuyerOrderReferencedDocument")?;
        }
        // CII carries a price discount only inside a gross price: without
        // BT-148 it is the net price plus the discount (BT-146 = BT-148 -
        // BT-147).
        let gross = l.gross_price.or(match (l.net_price, l.price_discount) {
            (Some(n), Some(d)) => Some(n + d),
            _ => None,
        });
        if let Some(g) = &gross {
            self.start("GrossPriceProductTradePrice")?;
            self.ram("ChargeAmount", &dec(g))?;
            if let Some(d) = &l.price_discount {
                self.start("AppliedTradeAllowanceCharge")?;
                self.start("ChargeIndicator")?;
                self.w.leaf("udt:Indicator", &[], "false")?;
                self.end("ChargeIndicator")?;
                self.ram("ActualAmount", &dec(d))?;
                self.end("AppliedTradeAllowanceCharge")?;
            }
            self.end("GrossPriceProductTradePrice")?;
        }
        self.start("NetPriceProductTradePrice")?;
        self.ram(
            "ChargeAmount",
            &l.net_price.as_ref().map(dec).unwrap_or_default(),
        )?;
        if let Some(q) = &l.price_base_quantity {
            let attrs: Vec<(&str, &str)> = l
                .price_base_quantity_unit
                .as_deref()
                .map(|u| vec![("unitCode", u)])
                .unwrap_or_default();
            self.w.leaf("ram:BasisQuantity", &attrs, &dec(q))?;
        }
        self.end("NetPriceProductTradePrice")?;
        self.end("SpecifiedLineTradeAgreement")?;

        self.start("SpecifiedLineTradeDelivery")?;
        let attrs: Vec<(&str, &str)> = l
            .unit_code
            .as_deref()
            .map(|u| vec![("unitCode", u)])
            .unwrap_or_default();
        self.w.leaf(
            "ram:BilledQuantity",
            &attrs,
            &l.quantity.as_ref().map(dec).unwrap_or_default(),
        )?;
        self.end("SpecifiedLineTradeDelivery")?;

        self.start("SpecifiedLineTradeSettlement")?;
        self.start("ApplicableTradeTax")?;
        self.ram("TypeCode", "VAT")?;
        self.ram("CategoryCode", l.vat_category.as_deref().unwrap_or(""))?;
        self.number("RateApplicablePercent", &l.vat_rate)?;
        self.end("ApplicableTradeTax")?;
        if let Some(p) = &l.period {
            self.start("BillingSpecifiedPeriod")?;
            self.opt_date_time("StartDateTime", &p.start)?;
            self.opt_date_time("EndDateTime", &p.end)?;
            self.end("BillingSpecifiedPeriod")?;
        }
        for a in &l.allowances {
            self.allowance_charge(
                false,
                a.percentage,
                a.base_amount,
                a.amount,
                &a.reason_code,
                &a.reason,
                None,
            )?;
        }
        for c in &l.charges {
            self.allowance_charge(
                true,
                c.percentage,
                c.base_amount,
                c.amount,
                &c.reason_code,
                &c.reason,
                None,
            )?;
        }
        self.start("SpecifiedTradeSettlementLineMonetarySummation")?;
        self.ram(
            "LineTotalAmount",
            &l.net_amount.as_ref().map(dec).unwrap_or_default(),
        )?;
        self.end("SpecifiedTradeSettlementLineMonetarySummation")?;
        if let Some(id) = &l.object_id {
            self.start("AdditionalReferencedDocument")?;
            self.ram("IssuerAssignedID", &id.value)?;
            self.ram("TypeCode", "130")?;
            self.opt("ReferenceTypeCode", &id.scheme)?;
            self.end("AdditionalReferencedDocument")?;
        }
        if let Some(a) = &l.buyer_accounting_reference {
            self.start("ReceivableSpecifiedTradeAccountingAccount")?;
            self.ram("ID", a)?;
            self.end("ReceivableSpecifiedTradeAccountingAccount")?;
        }
        self.end("SpecifiedLineTradeSettlement")?;
        self.end("IncludedSupplyChainTradeLineItem")
    }

    #[allow(clippy::too_many_arguments)]
    fn allowance_charge(
        &mut self,
        charge: bool,
        percent: Option<Decimal>,
        base: Option<Decimal>,
        amount: Option<Decimal>,
        reason_code: &Option<String>,
        reason: &Option<String>,
        tax: Option<(&Option<String>, &Option<Decimal>)>,
    ) -> io::Result<()> {
        self.start("SpecifiedTradeAllowanceCharge")?;
        self.start("ChargeIndicator")?;
        self.w
            .leaf("udt:Indicator", &[], if charge { "true" } else { "false" })?;
        self.end("ChargeIndicator")?;
        self.number("CalculationPercent", &percent)?;
        self.number("BasisAmount", &base)?;
        // Mandatory in CII.
        self.ram(
            "ActualAmount",
            &amount.as_ref().map(dec).unwrap_or_default(),
        )?;
        self.opt("ReasonCode", reason_code)?;
        self.opt("Reason", reason)?;
        if let Some((category, rate)) = tax {
            self.start("CategoryTradeTax")?;
            self.ram("TypeCode", "VAT")?;
            self.ram("CategoryCode", category.as_deref().unwrap_or(""))?;
            self.number("RateApplicablePercent", rate)?;
            self.end("CategoryTradeTax")?;
        }
        self.end("SpecifiedTradeAllowanceCharge")
    }

    fn agreement(&mut self, inv: &Invoice) -> io::Result<()> {
        self.start("ApplicableHeaderTradeAgreement")?;
        self.opt("BuyerReference", &inv.buyer_reference)?;
        self.party("SellerTradeParty", &inv.seller)?;
        self.party("BuyerTradeParty", &inv.buyer)?;
        if let Some(r) = &inv.tax_representative {
            self.start("SellerTaxRepresentativeTradeParty")?;
            self.opt("Name", &r.name)?;
            if let Some(a) = &r.address {
                self.address(a)?;
            }
            if let Some(v) = &r.vat_id {
                self.start("SpecifiedTaxRegistration")?;
                self.w.leaf("ram:ID", &[("schemeID", "VA")], v)?;
                self.end("SpecifiedTaxRegistration")?;
            }
            self.end("SellerTaxRepresentativeTradeParty")?;
        }
        self.referenced("SellerOrderReferencedDocument", &inv.sales_order_reference)?;
        self.referenced(
            "BuyerOrderReferencedDocument",
            &inv.purchase_order_reference,
        )?;
        self.referenced("ContractReferencedDocument", &inv.contract_reference)?;
        for a in &inv.attachments {
            self.start("AdditionalReferencedDocument")?;
            self.ram("IssuerAssignedID", a.reference.as_deref().unwrap_or(""))?;
            self.opt("URIID", &a.external_uri)?;
            self.ram("TypeCode", "916")?;
            self.opt("Name", &a.description)?;
            // The model keeps no BT-125 content (docs/conformance.md).
            self.end("AdditionalReferencedDocument")?;
        }
        if let Some(t) = &inv.tender_reference {
            self.start("AdditionalReferencedDocument")?;
            self.ram("IssuerAssignedID", t)?;
            self.ram("TypeCode", "50")?;
            self.end("AdditionalReferencedDocument")?;
        }
        if let Some(id) = &inv.invoiced_object_id {
            self.start("AdditionalReferencedDocument")?;
            self.ram("IssuerAssignedID", &id.value)?;
            self.ram("TypeCode", "130")?;
            self.opt("ReferenceTypeCode", &id.scheme)?;
            self.end("AdditionalReferencedDocument")?;
        }
        if let Some(p) = &inv.project_reference {
            self.start("SpecifiedProcuringProject")?;
            self.ram("ID", p)?;
            // Mandatory in CII, not an EN 16931 term.
            self.ram("Name", "Project reference")?;
            self.end("SpecifiedProcuringProject")?;
        }
        self.end("ApplicableHeaderTradeAgreement")
    }

    fn delivery(&mut self, inv: &Invoice) -> io::Result<()> {
        self.start("ApplicableHeaderTradeDelivery")?;
        if let Some(d) = &inv.delivery {
            if d.location_id.is_some() || d.party_name.is_some() || d.address.is_some() {
                self.start("ShipToTradeParty")?;
                if let Some(id) = &d.location_id {
                    self.party_id(id)?;
                }
                self.opt("Name", &d.party_name)?;
                if let Some(a) = &d.address {
                    self.address(a)?;
                }
                self.end("ShipToTradeParty")?;
            }
            if let Some(date) = &d.actual_delivery_date {
                self.start("ActualDeliverySupplyChainEvent")?;
                self.date_time("OccurrenceDateTime", date)?;
                self.end("ActualDeliverySupplyChainEvent")?;
            }
        }
        self.referenced(
            "DespatchAdviceReferencedDocument",
            &inv.despatch_advice_reference,
        )?;
        self.referenced(
            "ReceivingAdviceReferencedDocument",
            &inv.receiving_advice_reference,
        )?;
        self.end("ApplicableHeaderTradeDelivery")
    }

    fn settlement(&mut self, inv: &Invoice) -> io::Result<()> {
        self.start("ApplicableHeaderTradeSettlement")?;
        let pay = inv.payment.clone().unwrap_or_default();
        let dd = pay.direct_debit.clone().unwrap_or_default();
        self.opt("CreditorReferenceID", &dd.creditor_id)?;
        self.opt("PaymentReference", &pay.remittance_information)?;
        // The CII artefacts refuse a BT-6 equal to BT-5 (BR-53): it is
        // left out then, saying nothing more.
        if inv.vat_currency != inv.currency {
            self.opt("TaxCurrencyCode", &inv.vat_currency)?;
        }
        self.ram("InvoiceCurrencyCode", inv.currency.as_deref().unwrap_or(""))?;
        if let Some(p) = &inv.payee {
            self.start("PayeeTradeParty")?;
            if let Some(id) = &p.identifier {
                self.party_id(id)?;
            }
            self.opt("Name", &p.name)?;
            if let Some(id) = &p.legal_registration_id {
                self.start("SpecifiedLegalOrganization")?;
                self.schemed("ID", id)?;
                self.end("SpecifiedLegalOrganization")?;
            }
            self.end("PayeeTradeParty")?;
        }
        if inv.payment.is_some() && !pay.no_means_element {
            let elements = (1 + pay.further_means.len()).max(pay.credit_transfers.len());
            for i in 0..elements {
                let (code, text) = if i == 0 {
                    (pay.means_code.clone(), pay.means_text.clone())
                } else if let Some(m) = pay.further_means.get(i - 1) {
                    (m.code.clone(), m.text.clone())
                } else {
                    (pay.means_code.clone(), pay.means_text.clone())
                };
                self.start("SpecifiedTradeSettlementPaymentMeans")?;
                self.ram("TypeCode", code.as_deref().unwrap_or(""))?;
                self.opt("Information", &text)?;
                if i == 0 {
                    if let Some(c) = &pay.card {
                        self.start("ApplicableTradeSettlementFinancialCard")?;
                        self.ram("ID", c.primary_account_number.as_deref().unwrap_or(""))?;
                        self.opt("CardholderName", &c.holder_name)?;
                        self.end("ApplicableTradeSettlementFinancialCard")?;
                    }
                    if let Some(a) = &dd.debited_account_id {
                        self.start("PayerPartyDebtorFinancialAccount")?;
                        self.ram("IBANID", a)?;
                        self.end("PayerPartyDebtorFinancialAccount")?;
                    }
                }
                if let Some(ct) = pay.credit_transfers.get(i) {
                    if ct.account_id.is_some() || ct.account_name.is_some() {
                        self.start("PayeePartyCreditorFinancialAccount")?;
                        let id = ct.account_id.as_deref().unwrap_or("");
                        if looks_like_iban(id) {
                            self.ram("IBANID", id)?;
                            self.opt("AccountName", &ct.account_name)?;
                        } else {
                            self.opt("AccountName", &ct.account_name)?;
                            self.ram("ProprietaryID", id)?;
                        }
                        self.end("PayeePartyCreditorFinancialAccount")?;
                    }
                    if let Some(b) = &ct.service_provider_id {
                        self.start("PayeeSpecifiedCreditorFinancialInstitution")?;
                        self.ram("BICID", b)?;
                        self.end("PayeeSpecifiedCreditorFinancialInstitution")?;
                    }
                }
                self.end("SpecifiedTradeSettlementPaymentMeans")?;
            }
        }
        for s in &inv.vat_breakdown {
            self.start("ApplicableTradeTax")?;
            self.number("CalculatedAmount", &s.tax_amount)?;
            self.ram("TypeCode", "VAT")?;
            self.opt("ExemptionReason", &s.exemption_reason)?;
            self.number("BasisAmount", &s.taxable_amount)?;
            self.ram("CategoryCode", s.category.as_deref().unwrap_or(""))?;
            if let Some(c) = &s.exemption_reason_code {
                self.ram("ExemptionReasonCode", &super::vatex_code(c))?;
            }
            // BT-7 and BT-8 are per breakdown in CII: written on each, read
            // from the first.
            if let Some(d) = &inv.tax_point_date {
                self.start("TaxPointDate")?;
                self.w
                    .leaf("udt:DateString", &[("format", "102")], &date102(d))?;
                self.end("TaxPointDate")?;
            }
            if let Some(c) = &inv.tax_point_date_code {
                self.ram("DueDateTypeCode", tax_point_code_cii(c))?;
            }
            self.number("RateApplicablePercent", &s.rate)?;
            self.end("ApplicableTradeTax")?;
        }
        if let Some(p) = &inv.invoicing_period {
            self.start("BillingSpecifiedPeriod")?;
            self.opt_date_time("StartDateTime", &p.start)?;
            self.opt_date_time("EndDateTime", &p.end)?;
            self.end("BillingSpecifiedPeriod")?;
        }
        for a in &inv.allowances {
            self.allowance_charge(
                false,
                a.percentage,
                a.base_amount,
                a.amount,
                &a.reason_code,
                &a.reason,
                Some((&a.vat_category, &a.vat_rate)),
            )?;
        }
        for c in &inv.charges {
            self.allowance_charge(
                true,
                c.percentage,
                c.base_amount,
                c.amount,
                &c.reason_code,
                &c.reason,
                Some((&c.vat_category, &c.vat_rate)),
            )?;
        }
        if inv.payment_terms.is_some() || inv.due_date.is_some() || dd.mandate_reference.is_some() {
            self.start("SpecifiedTradePaymentTerms")?;
            self.opt("Description", &inv.payment_terms)?;
            self.opt_date_time("DueDateDateTime", &inv.due_date)?;
            self.opt("DirectDebitMandateID", &dd.mandate_reference)?;
            self.end("SpecifiedTradePaymentTerms")?;
        }
        let t = &inv.totals;
        self.start("SpecifiedTradeSettlementHeaderMonetarySummation")?;
        self.ram(
            "LineTotalAmount",
            &t.line_net_total.as_ref().map(dec).unwrap_or_default(),
        )?;
        self.number("ChargeTotalAmount", &t.charge_total)?;
        self.number("AllowanceTotalAmount", &t.allowance_total)?;
        self.ram(
            "TaxBasisTotalAmount",
            &t.total_without_vat.as_ref().map(dec).unwrap_or_default(),
        )?;
        if let Some(v) = &t.vat_total {
            let attrs: Vec<(&str, &str)> = inv
                .currency
                .as_deref()
                .map(|c| vec![("currencyID", c)])
                .unwrap_or_default();
            self.w.leaf("ram:TaxTotalAmount", &attrs, &dec(v))?;
        }
        if let Some(v) = &t.vat_total_accounting {
            let attrs: Vec<(&str, &str)> = inv
                .vat_currency
                .as_deref()
                .map(|c| vec![("currencyID", c)])
                .unwrap_or_default();
            self.w.leaf("ram:TaxTotalAmount", &attrs, &dec(v))?;
        }
        self.number("RoundingAmount", &t.rounding)?;
        self.ram(
            "GrandTotalAmount",
            &t.total_with_vat.as_ref().map(dec).unwrap_or_default(),
        )?;
        self.number("TotalPrepaidAmount", &t.prepaid)?;
        self.ram(
            "DuePayableAmount",
            &t.amount_due.as_ref().map(dec).unwrap_or_default(),
        )?;
        self.end("SpecifiedTradeSettlementHeaderMonetarySummation")?;
        for p in &inv.preceding_invoices {
            self.start("InvoiceReferencedDocument")?;
            self.ram("IssuerAssignedID", p.number.as_deref().unwrap_or(""))?;
            if let Some(d) = &p.issue_date {
                self.start("FormattedIssueDateTime")?;
                self.w
                    .leaf("qdt:DateTimeString", &[("format", "102")], &date102(d))?;
                self.end("FormattedIssueDateTime")?;
            }
            self.end("InvoiceReferencedDocument")?;
        }
        if let Some(a) = &inv.buyer_accounting_reference {
            self.start("ReceivableSpecifiedTradeAccountingAccount")?;
            self.ram("ID", a)?;
            self.end("ReceivableSpecifiedTradeAccountingAccount")?;
        }
        self.end("ApplicableHeaderTradeSettlement")
    }
}
