//! The canonical invoice as UBL 2.1 (`Invoice-2` or `CreditNote-2`), in the
//! element order of the UBL 2.1 maindoc schemas and the CEN binding the
//! reader `crate::ubl` follows.

use std::io::{self, Write};

use rust_decimal::Decimal;

use super::{dec, is_credit_note, tax_point_code_ubl};
use crate::model::{
    Address, DocumentAllowanceCharge, Identifier, Invoice, Line, LineAllowanceCharge, Party,
};
use crate::ubl::{NS_CAC, NS_CBC, NS_CREDIT_NOTE, NS_INVOICE};
use crate::xml_out::XmlWriter;

/// Write `invoice` as a UBL 2.1 Invoice, or CreditNote when its type code
/// (BT-3) is a credit note's. Returns the writer.
pub fn write_ubl<W: Write>(invoice: &Invoice, out: W) -> io::Result<W> {
    let mut u = Ubl {
        w: XmlWriter::new(out)?,
        cur: invoice.currency.clone().unwrap_or_default(),
        credit: is_credit_note(invoice),
    };
    u.document(invoice)?;
    u.w.finish()
}

struct Ubl<W: Write> {
    w: XmlWriter<W>,
    /// BT-5, the `currencyID` of every amount.
    cur: String,
    credit: bool,
}

fn date(d: &chrono::NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn scheme_attr(id: &Identifier) -> Vec<(&'static str, &str)> {
    id.scheme
        .as_deref()
        .map(|s| vec![("schemeID", s)])
        .unwrap_or_default()
}

impl<W: Write> Ubl<W> {
    fn cbc(&mut self, name: &str, v: &str) -> io::Result<()> {
        self.w.leaf(&format!("cbc:{name}"), &[], v)
    }

    fn opt(&mut self, name: &str, v: &Option<String>) -> io::Result<()> {
        match v {
            Some(v) => self.cbc(name, v),
            None => Ok(()),
        }
    }

    fn opt_date(&mut self, name: &str, v: &Option<chrono::NaiveDate>) -> io::Result<()> {
        match v {
            Some(d) => self.cbc(name, &date(d)),
            None => Ok(()),
        }
    }

    fn amount(&mut self, name: &str, v: &Option<Decimal>) -> io::Result<()> {
        self.amount_in(name, v, &self.cur.clone())
    }

    fn amount_in(&mut self, name: &str, v: &Option<Decimal>, cur: &str) -> io::Result<()> {
        match v {
            Some(d) => self
                .w
                .leaf(&format!("cbc:{name}"), &[("currencyID", cur)], &dec(d)),
            None => Ok(()),
        }
    }

    fn number(&mut self, name: &str, v: &Option<Decimal>) -> io::Result<()> {
        match v {
            Some(d) => self.cbc(name, &dec(d)),
            None => Ok(()),
        }
    }

    fn id(&mut self, name: &str, id: &Identifier) -> io::Result<()> {
        self.w
            .leaf(&format!("cbc:{name}"), &scheme_attr(id), &id.value)
    }

    fn start(&mut self, name: &str) -> io::Result<()> {
        self.w.start(&format!("cac:{name}"), &[])
    }

    fn end(&mut self, name: &str) -> io::Result<()> {
        self.w.end(&format!("cac:{name}"))
    }

    /// `<cac:outer><cbc:ID>v</cbc:ID></cac:outer>`
    fn id_in(&mut self, outer: &str, v: &Option<String>) -> io::Result<()> {
        if let Some(v) = v {
            self.start(outer)?;
            self.cbc("ID", v)?;
            self.end(outer)?;
        }
        Ok(())
    }

    fn tax_scheme(&mut self, id: &str) -> io::Result<()> {
        self.start("TaxScheme")?;
        self.cbc("ID", id)?;
        self.end("TaxScheme")
    }

    fn document(&mut self, inv: &Invoice) -> io::Result<()> {
        let (root, ns, line_tag) = if self.credit {
            ("CreditNote", NS_CREDIT_NOTE, "CreditNoteLine")
        } else {
            ("Invoice", NS_INVOICE, "InvoiceLine")
        };
        self.w.start(
            root,
            &[("xmlns", ns), ("xmlns:cac", NS_CAC), ("xmlns:cbc", NS_CBC)],
        )?;
        self.opt("CustomizationID", &inv.specification_id)?;
        self.opt("ProfileID", &inv.business_process)?;
        self.opt("ID", &inv.number)?;
        self.opt_date("IssueDate", &inv.issue_date)?;
        if self.credit {
            // CreditNote has no DueDate: BT-9 goes in PaymentMeans.
            self.opt_date("TaxPointDate", &inv.tax_point_date)?;
            self.opt("CreditNoteTypeCode", &inv.type_code)?;
        } else {
            self.opt_date("DueDate", &inv.due_date)?;
            self.opt("InvoiceTypeCode", &inv.type_code)?;
        }
        for n in &inv.notes {
            let text = match &n.subject_code {
                Some(code) => format!("#{code}#{}", n.text),
                None => n.text.clone(),
            };
            self.cbc("Note", &text)?;
        }
        if !self.credit {
            self.opt_date("TaxPointDate", &inv.tax_point_date)?;
        }
        self.opt("DocumentCurrencyCode", &inv.currency)?;
        self.opt("TaxCurrencyCode", &inv.vat_currency)?;
        self.opt("AccountingCost", &inv.buyer_accounting_reference)?;
        self.opt("BuyerReference", &inv.buyer_reference)?;
        if inv.invoicing_period.is_some() || inv.tax_point_date_code.is_some() {
            let p = inv.invoicing_period.clone().unwrap_or_default();
            self.start("InvoicePeriod")?;
            self.opt_date("StartDate", &p.start)?;
            self.opt_date("EndDate", &p.end)?;
            if let Some(c) = &inv.tax_point_date_code {
                self.cbc("DescriptionCode", tax_point_code_ubl(c))?;
            }
            self.end("InvoicePeriod")?;
        }
        if inv.purchase_order_reference.is_some() || inv.sales_order_reference.is_some() {
            self.start("OrderReference")?;
            // cbc:ID is mandatory in UBL: a sales order reference alone
            // gets the "NA" of the Peppol convention.
            let po = inv.purchase_order_reference.as_deref().unwrap_or("NA");
            self.cbc("ID", po)?;
            self.opt("SalesOrderID", &inv.sales_order_reference)?;
            self.end("OrderReference")?;
        }
        for p in &inv.preceding_invoices {
            self.start("BillingReference")?;
            self.start("InvoiceDocumentReference")?;
            self.cbc("ID", p.number.as_deref().unwrap_or(""))?;
            self.opt_date("IssueDate", &p.issue_date)?;
            self.end("InvoiceDocumentReference")?;
            self.end("BillingReference")?;
        }
        self.id_in("DespatchDocumentReference", &inv.despatch_advice_reference)?;
        self.id_in("ReceiptDocumentReference", &inv.receiving_advice_reference)?;
        if self.credit {
            self.id_in("ContractDocumentReference", &inv.contract_reference)?;
            self.additional_documents(inv)?;
            self.id_in("OriginatorDocumentReference", &inv.tender_reference)?;
        } else {
            self.id_in("OriginatorDocumentReference", &inv.tender_reference)?;
            self.id_in("ContractDocumentReference", &inv.contract_reference)?;
            self.additional_documents(inv)?;
            self.id_in("ProjectReference", &inv.project_reference)?;
        }
        self.start("AccountingSupplierParty")?;
        let sepa = inv
            .payment
            .as_ref()
            .and_then(|p| p.direct_debit.as_ref())
            .and_then(|d| d.creditor_id.clone());
        self.party(&inv.seller, sepa.as_deref(), usize::MAX)?;
        self.end("AccountingSupplierParty")?;
        self.start("AccountingCustomerParty")?;
        // BT-46 occurs once in UBL (UBL-SR-16); CII may give several.
        self.party(&inv.buyer, None, 1)?;
        self.end("AccountingCustomerParty")?;
        if let Some(p) = &inv.payee {
            self.start("PayeeParty")?;
            if let Some(id) = &p.identifier {
                self.start("PartyIdentification")?;
                self.id("ID", id)?;
                self.end("PartyIdentification")?;
            }
            if let Some(n) = &p.name {
                self.start("PartyName")?;
                self.cbc("Name", n)?;
                self.end("PartyName")?;
            }
            if let Some(id) = &p.legal_registration_id {
                self.start("PartyLegalEntity")?;
                self.id("CompanyID", id)?;
                self.end("PartyLegalEntity")?;
            }
            self.end("PayeeParty")?;
        }
        if let Some(r) = &inv.tax_representative {
            self.start("TaxRepresentativeParty")?;
            if let Some(n) = &r.name {
                self.start("PartyName")?;
                self.cbc("Name", n)?;
                self.end("PartyName")?;
            }
            if let Some(a) = &r.address {
                self.address("PostalAddress", a)?;
            }
            if let Some(v) = &r.vat_id {
                self.start("PartyTaxScheme")?;
                self.cbc("CompanyID", v)?;
                self.tax_scheme("VAT")?;
                self.end("PartyTaxScheme")?;
            }
            self.end("TaxRepresentativeParty")?;
        }
        if let Some(d) = &inv.delivery {
            self.start("Delivery")?;
            self.opt_date("ActualDeliveryDate", &d.actual_delivery_date)?;
            if d.location_id.is_some() || d.address.is_some() {
                self.start("DeliveryLocation")?;
                if let Some(id) = &d.location_id {
                    self.id("ID", id)?;
                }
                if let Some(a) = &d.address {
                    self.address("Address", a)?;
                }
                self.end("DeliveryLocation")?;
            }
            if let Some(n) = &d.party_name {
                self.start("DeliveryParty")?;
                self.start("PartyName")?;
                self.cbc("Name", n)?;
                self.end("PartyName")?;
                self.end("DeliveryParty")?;
            }
            self.end("Delivery")?;
        }
        self.payment_means(inv)?;
        if let Some(t) = &inv.payment_terms {
            self.start("PaymentTerms")?;
            self.cbc("Note", t)?;
            self.end("PaymentTerms")?;
        }
        for a in &inv.allowances {
            self.document_allowance_charge(false, a)?;
        }
        for c in &inv.charges {
            self.document_allowance_charge(true, c)?;
        }
        self.tax_totals(inv)?;
        let t = &inv.totals;
        self.start("LegalMonetaryTotal")?;
        self.amount("LineExtensionAmount", &t.line_net_total)?;
        self.amount("TaxExclusiveAmount", &t.total_without_vat)?;
        self.amount("TaxInclusiveAmount", &t.total_with_vat)?;
        self.amount("AllowanceTotalAmount", &t.allowance_total)?;
        self.amount("ChargeTotalAmount", &t.charge_total)?;
        self.amount("PrepaidAmount", &t.prepaid)?;
        self.amount("PayableRoundingAmount", &t.rounding)?;
        self.amount("PayableAmount", &t.amount_due)?;
        self.end("LegalMonetaryTotal")?;
        for l in &inv.lines {
            self.line(line_tag, l)?;
        }
        self.w.end(root)
    }

    fn additional_documents(&mut self, inv: &Invoice) -> io::Result<()> {
        if let Some(id) = &inv.invoiced_object_id {
            self.start("AdditionalDocumentReference")?;
            self.id("ID", id)?;
            self.cbc("DocumentTypeCode", "130")?;
            self.end("AdditionalDocumentReference")?;
        }
        if self.credit {
            // CreditNote has no ProjectReference: BT-11 is a document
            // reference of type 50.
            if let Some(p) = &inv.project_reference {
                self.start("AdditionalDocumentReference")?;
                self.cbc("ID", p)?;
                self.cbc("DocumentTypeCode", "50")?;
                self.end("AdditionalDocumentReference")?;
            }
        }
        for a in &inv.attachments {
            self.start("AdditionalDocumentReference")?;
            self.cbc("ID", a.reference.as_deref().unwrap_or(""))?;
            self.opt("DocumentDescription", &a.description)?;
            // The model keeps no BT-125 content, so only the external
            // reference can be written (docs/conformance.md).
            if let Some(uri) = &a.external_uri {
                self.start("Attachment")?;
                self.start("ExternalReference")?;
                self.cbc("URI", uri)?;
                self.end("ExternalReference")?;
                self.end("Attachment")?;
            }
            self.end("AdditionalDocumentReference")?;
        }
        Ok(())
    }

    fn address(&mut self, tag: &str, a: &Address) -> io::Result<()> {
        self.start(tag)?;
        self.opt("StreetName", &a.line1)?;
        self.opt("AdditionalStreetName", &a.line2)?;
        self.opt("CityName", &a.city)?;
        self.opt("PostalZone", &a.post_code)?;
        self.opt("CountrySubentity", &a.subdivision)?;
        if let Some(l) = &a.line3 {
            self.start("AddressLine")?;
            self.cbc("Line", l)?;
            self.end("AddressLine")?;
        }
        if let Some(c) = &a.country_code {
            self.start("Country")?;
            self.cbc("IdentificationCode", c)?;
            self.end("Country")?;
        }
        self.end(tag)
    }

    fn party(&mut self, p: &Party, sepa_creditor: Option<&str>, max_ids: usize) -> io::Result<()> {
        self.start("Party")?;
        if let Some(e) = &p.electronic_address {
            self.id("EndpointID", e)?;
        }
        for id in p.identifiers.iter().take(max_ids) {
            self.start("PartyIdentification")?;
            self.id("ID", id)?;
            self.end("PartyIdentification")?;
        }
        if let Some(c) = sepa_creditor {
            self.start("PartyIdentification")?;
            self.w.leaf("cbc:ID", &[("schemeID", "SEPA")], c)?;
            self.end("PartyIdentification")?;
        }
        if let Some(n) = &p.trading_name {
            self.start("PartyName")?;
            self.cbc("Name", n)?;
            self.end("PartyName")?;
        }
        if let Some(a) = &p.address {
            self.address("PostalAddress", a)?;
        }
        if let Some(v) = &p.vat_id {
            self.start("PartyTaxScheme")?;
            self.cbc("CompanyID", v)?;
            self.tax_scheme("VAT")?;
            self.end("PartyTaxScheme")?;
        }
        if let Some(v) = &p.tax_registration_id {
            // Any tax scheme but VAT is BT-32; FC as in CII.
            self.start("PartyTaxScheme")?;
            self.cbc("CompanyID", v)?;
            self.tax_scheme("FC")?;
            self.end("PartyTaxScheme")?;
        }
        if p.name.is_some()
            || p.legal_registration_id.is_some()
            || p.additional_legal_info.is_some()
        {
            self.start("PartyLegalEntity")?;
            self.opt("RegistrationName", &p.name)?;
            if let Some(id) = &p.legal_registration_id {
                self.id("CompanyID", id)?;
            }
            self.opt("CompanyLegalForm", &p.additional_legal_info)?;
            self.end("PartyLegalEntity")?;
        }
        if let Some(c) = &p.contact {
            self.start("Contact")?;
            self.opt("Name", &c.name)?;
            self.opt("Telephone", &c.phone)?;
            self.opt("ElectronicMail", &c.email)?;
            self.end("Contact")?;
        }
        self.end("Party")
    }

    fn payment_means(&mut self, inv: &Invoice) -> io::Result<()> {
        let Some(pay) = &inv.payment else {
            return Ok(());
        };
        if pay.no_means_element && pay.means_code.is_none() && pay.further_means.is_empty() {
            // No payment means element in the source. UBL has no place for
            // BT-83 or BT-89 outside one (docs/conformance.md).
            return Ok(());
        }
        // One element per payment means (the first carries BT-81/BT-82,
        // the others `further_means`), each with at most one account.
        let elements = (1 + pay.further_means.len()).max(pay.credit_transfers.len());
        for i in 0..elements {
            let (code, text) = if i == 0 {
                (pay.means_code.clone(), pay.means_text.clone())
            } else if let Some(m) = pay.further_means.get(i - 1) {
                (m.code.clone(), m.text.clone())
            } else {
                (pay.means_code.clone(), pay.means_text.clone())
            };
            self.start("PaymentMeans")?;
            let attrs: Vec<(&str, &str)> = text
                .as_deref()
                .map(|t| vec![("name", t)])
                .unwrap_or_default();
            self.w.leaf(
                "cbc:PaymentMeansCode",
                &attrs,
                code.as_deref().unwrap_or(""),
            )?;
            if i == 0 {
                if self.credit {
                    self.opt_date("PaymentDueDate", &inv.due_date)?;
                }
                self.opt("PaymentID", &pay.remittance_information)?;
                if let Some(c) = &pay.card {
                    self.start("CardAccount")?;
                    self.cbc(
                        "PrimaryAccountNumberID",
                        c.primary_account_number.as_deref().unwrap_or(""),
                    )?;
                    // Mandatory in UBL, not an EN 16931 term.
                    self.cbc("NetworkID", "NA")?;
                    self.opt("HolderName", &c.holder_name)?;
                    self.end("CardAccount")?;
                }
            }
            if let Some(ct) = pay.credit_transfers.get(i) {
                self.start("PayeeFinancialAccount")?;
                self.cbc("ID", ct.account_id.as_deref().unwrap_or(""))?;
                self.opt("Name", &ct.account_name)?;
                if let Some(b) = &ct.service_provider_id {
                    self.start("FinancialInstitutionBranch")?;
                    self.cbc("ID", b)?;
                    self.end("FinancialInstitutionBranch")?;
                }
                self.end("PayeeFinancialAccount")?;
            }
            if i == 0 {
                if let Some(dd) = &pay.direct_debit {
                    if dd.mandate_reference.is_some() || dd.debited_account_id.is_some() {
                        self.start("PaymentMandate")?;
                        self.opt("ID", &dd.mandate_reference)?;
                        if let Some(a) = &dd.debited_account_id {
                            self.start("PayerFinancialAccount")?;
                            self.cbc("ID", a)?;
                            self.end("PayerFinancialAccount")?;
                        }
                        self.end("PaymentMandate")?;
                    }
                }
            }
            self.end("PaymentMeans")?;
        }
        Ok(())
    }

    fn document_allowance_charge(
        &mut self,
        charge: bool,
        a: &DocumentAllowanceCharge,
    ) -> io::Result<()> {
        self.start("AllowanceCharge")?;
        self.cbc("ChargeIndicator", if charge { "true" } else { "false" })?;
        self.opt("AllowanceChargeReasonCode", &a.reason_code)?;
        self.opt("AllowanceChargeReason", &a.reason)?;
        self.number("MultiplierFactorNumeric", &a.percentage)?;
        self.amount("Amount", &a.amount)?;
        self.amount("BaseAmount", &a.base_amount)?;
        if a.vat_category.is_some() || a.vat_rate.is_some() {
            self.start("TaxCategory")?;
            self.cbc("ID", a.vat_category.as_deref().unwrap_or(""))?;
            self.number("Percent", &a.vat_rate)?;
            self.tax_scheme("VAT")?;
            self.end("TaxCategory")?;
        }
        self.end("AllowanceCharge")
    }

    fn tax_totals(&mut self, inv: &Invoice) -> io::Result<()> {
        let t = &inv.totals;
        if t.vat_total.is_some() || !inv.vat_breakdown.is_empty() {
            self.start("TaxTotal")?;
            // cbc:TaxAmount is mandatory in a TaxTotal: without BT-110, the
            // sum of the BT-117 amounts BR-CO-14 asks it to be.
            let total = t
                .vat_total
                .or_else(|| Some(inv.vat_breakdown.iter().filter_map(|s| s.tax_amount).sum()));
            self.amount("TaxAmount", &total)?;
            for s in &inv.vat_breakdown {
                self.start("TaxSubtotal")?;
                self.amount("TaxableAmount", &s.taxable_amount)?;
                self.amount("TaxAmount", &s.tax_amount)?;
                self.start("TaxCategory")?;
                self.cbc("ID", s.category.as_deref().unwrap_or(""))?;
                self.number("Percent", &s.rate)?;
                self.opt("TaxExemptionReasonCode", &s.exemption_reason_code)?;
                self.opt("TaxExemptionReason", &s.exemption_reason)?;
                self.tax_scheme("VAT")?;
                self.end("TaxCategory")?;
                self.end("TaxSubtotal")?;
            }
            self.end("TaxTotal")?;
        }
        if t.vat_total_accounting.is_some() {
            let cur = inv.vat_currency.clone().unwrap_or_default();
            self.start("TaxTotal")?;
            self.amount_in("TaxAmount", &t.vat_total_accounting, &cur)?;
            self.end("TaxTotal")?;
        }
        Ok(())
    }

    fn line_allowance_charge(&mut self, charge: bool, a: &LineAllowanceCharge) -> io::Result<()> {
        self.start("AllowanceCharge")?;
        self.cbc("ChargeIndicator", if charge { "true" } else { "false" })?;
        self.opt("AllowanceChargeReasonCode", &a.reason_code)?;
        self.opt("AllowanceChargeReason", &a.reason)?;
        self.number("MultiplierFactorNumeric", &a.percentage)?;
        self.amount("Amount", &a.amount)?;
        self.amount("BaseAmount", &a.base_amount)?;
        self.end("AllowanceCharge")
    }

    fn line(&mut self, tag: &str, l: &Line) -> io::Result<()> {
        self.start(tag)?;
        self.cbc("ID", l.id.as_deref().unwrap_or(""))?;
        self.opt("Note", &l.note)?;
        if let Some(q) = &l.quantity {
            let qty = if self.credit {
                "cbc:CreditedQuantity"
            } else {
                "cbc:InvoicedQuantity"
            };
            let attrs: Vec<(&str, &str)> = l
                .unit_code
                .as_deref()
                .map(|u| vec![("unitCode", u)])
                .unwrap_or_default();
            self.w.leaf(qty, &attrs, &dec(q))?;
        }
        // Mandatory in UBL.
        match &l.net_amount {
            Some(_) => self.amount("LineExtensionAmount", &l.net_amount)?,
            None => self.amount("LineExtensionAmount", &Some(Decimal::ZERO))?,
        }
        self.opt("AccountingCost", &l.buyer_accounting_reference)?;
        if let Some(p) = &l.period {
            self.start("InvoicePeriod")?;
            self.opt_date("StartDate", &p.start)?;
            self.opt_date("EndDate", &p.end)?;
            self.end("InvoicePeriod")?;
        }
        if let Some(r) = &l.order_line_reference {
            self.start("OrderLineReference")?;
            self.cbc("LineID", r)?;
            self.end("OrderLineReference")?;
        }
        if let Some(id) = &l.object_id {
            self.start("DocumentReference")?;
            self.id("ID", id)?;
            self.cbc("DocumentTypeCode", "130")?;
            self.end("DocumentReference")?;
        }
        for a in &l.allowances {
            self.line_allowance_charge(false, a)?;
        }
        for c in &l.charges {
            self.line_allowance_charge(true, c)?;
        }
        self.start("Item")?;
        self.opt("Description", &l.item_description)?;
        self.opt("Name", &l.item_name)?;
        self.id_in("BuyersItemIdentification", &l.buyer_item_id)?;
        self.id_in("SellersItemIdentification", &l.seller_item_id)?;
        if let Some(id) = &l.standard_item_id {
            self.start("StandardItemIdentification")?;
            self.id("ID", id)?;
            self.end("StandardItemIdentification")?;
        }
        if let Some(c) = &l.origin_country {
            self.start("OriginCountry")?;
            self.cbc("IdentificationCode", c)?;
            self.end("OriginCountry")?;
        }
        for c in &l.classifications {
            let mut attrs = Vec::new();
            if let Some(s) = &c.scheme {
                attrs.push(("listID", s.as_str()));
            }
            if let Some(v) = &c.scheme_version {
                attrs.push(("listVersionID", v.as_str()));
            }
            self.start("CommodityClassification")?;
            self.w
                .leaf("cbc:ItemClassificationCode", &attrs, &c.value)?;
            self.end("CommodityClassification")?;
        }
        if l.vat_category.is_some() || l.vat_rate.is_some() {
            self.start("ClassifiedTaxCategory")?;
            self.cbc("ID", l.vat_category.as_deref().unwrap_or(""))?;
            self.number("Percent", &l.vat_rate)?;
            self.tax_scheme("VAT")?;
            self.end("ClassifiedTaxCategory")?;
        }
        for a in &l.attributes {
            self.start("AdditionalItemProperty")?;
            self.cbc("Name", &a.name)?;
            self.cbc("Value", &a.value)?;
            self.end("AdditionalItemProperty")?;
        }
        self.end("Item")?;
        if l.net_price.is_some()
            || l.price_base_quantity.is_some()
            || l.gross_price.is_some()
            || l.price_discount.is_some()
        {
            self.start("Price")?;
            // cbc:PriceAmount is mandatory in a Price.
            match &l.net_price {
                Some(_) => self.amount("PriceAmount", &l.net_price)?,
                None => self.amount("PriceAmount", &Some(Decimal::ZERO))?,
            }
            if let Some(q) = &l.price_base_quantity {
                let attrs: Vec<(&str, &str)> = l
                    .price_base_quantity_unit
                    .as_deref()
                    .map(|u| vec![("unitCode", u)])
                    .unwrap_or_default();
                self.w.leaf("cbc:BaseQuantity", &attrs, &dec(q))?;
            }
            if l.price_discount.is_some() || l.gross_price.is_some() {
                self.start("AllowanceCharge")?;
                self.cbc("ChargeIndicator", "false")?;
                // cbc:Amount is mandatory: a gross price without a
                // discount gets a zero discount (docs/conformance.md).
                match &l.price_discount {
                    Some(_) => self.amount("Amount", &l.price_discount)?,
                    None => self.amount("Amount", &Some(Decimal::ZERO))?,
                }
                self.amount("BaseAmount", &l.gross_price)?;
                self.end("AllowanceCharge")?;
            }
            self.end("Price")?;
        }
        self.end(tag)
    }
}
