//! UN/CEFACT Cross Industry Invoice reader (D16B, D22B, Factur-X/ZUGFeRD 2.x).
//!
//! Same design as the UBL reader: one streaming pass ([`crate::xml::drive`]),
//! a flat `match` on each closing element's path relative to
//! `rsm:CrossIndustryInvoice`, following the official EN 16931 CII binding
//! (CEN/TS 16931-3-3). D16B, D22B and Factur-X 1.0.x all use the same `:100`
//! namespace URIs, so one reader serves them; elements that only exist in
//! later versions or in the EXTENDED profile simply do not match. The
//! profile comes from BT-24 (`GuidelineSpecifiedDocumentContextParameter`).
//! ZUGFeRD 1.0 (`CrossIndustryDocument`, D13B-era names) is read by the
//! same mapping through an element-name alias table.

use std::cell::Cell;
use std::io::BufRead;

use rust_decimal::Decimal;

use crate::model::{
    Address, Attachment, Classification, Contact, CreditTransfer, Delivery, DirectDebit,
    DocumentKind, Identifier, Invoice, ItemAttribute, Line, Note, Party, Payee, PaymentCard,
    PaymentInstructions, Period, PrecedingInvoice, Profile, Syntax, TaxRepresentative,
    VatBreakdown, Violation,
};
use crate::positions::{cii_term, TermAt};
use crate::ubl::{ident, set, text, AcBuf, MeansBuf};
use crate::xml::{self, Attrs, Element, Handler, PathMemo, TextMode, ThreadMemo, Values};
use crate::{ReadError, ReadOutcome};

pub const NS_RSM: &str = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100";
pub const NS_RAM: &str =
    "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100";
pub const NS_UDT: &str = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100";
pub const NS_QDT: &str = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100";
/// ZUGFeRD 1.0 (`rsm:CrossIndustryDocument`) namespaces: D13B-era CII
/// with other aggregate names, read through [`zugferd1_alias`].
pub const NS_ZUGFERD1: &str = "urn:ferd:CrossIndustryDocument:invoice:1p0";
pub const NS_RAM_12: &str =
    "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:12";
pub const NS_UDT_15: &str = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:15";

/// ZUGFeRD 1.0 element names in terms of the CII D16B names this reader maps.
fn zugferd1_alias<'a>(parent: &str, local: &'a str) -> &'a str {
    match local {
        "SpecifiedExchangedDocumentContext" => "ExchangedDocumentContext",
        "HeaderExchangedDocument" => "ExchangedDocument",
        "SpecifiedSupplyChainTradeTransaction" => "SupplyChainTradeTransaction",
        "ApplicableSupplyChainTradeAgreement" => "ApplicableHeaderTradeAgreement",
        "ApplicableSupplyChainTradeDelivery" => "ApplicableHeaderTradeDelivery",
        "ApplicableSupplyChainTradeSettlement" => "ApplicableHeaderTradeSettlement",
        "SpecifiedSupplyChainTradeAgreement" => "SpecifiedLineTradeAgreement",
        "SpecifiedSupplyChainTradeDelivery" => "SpecifiedLineTradeDelivery",
        "SpecifiedSupplyChainTradeSettlement" => "SpecifiedLineTradeSettlement",
        "ApplicablePercent" => "RateApplicablePercent",
        "SpecifiedTradeSettlementMonetarySummation"
            if parent.ends_with("SpecifiedLineTradeSettlement") =>
        {
            "SpecifiedTradeSettlementLineMonetarySummation"
        }
        "SpecifiedTradeSettlementMonetarySummation" => {
            "SpecifiedTradeSettlementHeaderMonetarySummation"
        }
        "ID" if parent.ends_with("ReferencedDocument") => "IssuerAssignedID",
        _ => local,
    }
}

/// Read one CII `rsm:CrossIndustryInvoice` document, streaming.
pub fn read<R: BufRead>(input: R) -> Result<ReadOutcome, ReadError> {
    let mut m = Mapper::default();
    xml::drive(input, &mut m)?;
    Ok(m.finish())
}

#[derive(Default)]
struct RefDoc {
    id: Option<String>,
    type_code: Option<String>,
    ref_type: Option<String>,
    att: Attachment,
}

#[derive(Default)]
struct Mapper {
    inv: Invoice,
    v: Values,
    line: Line,
    ac: AcBuf,
    refdoc: RefDoc,
    line_ref: (Option<String>, Option<String>),
    /// The line tax being read: its type code and its category code.
    line_tax: (Option<String>, Option<String>),
    sub: VatBreakdown,
    ct: CreditTransfer,
    attr_name: Option<String>,
    attr_value: Option<String>,
    tax_totals: Vec<(Decimal, Option<String>)>,
    zugferd1: bool,
    gross_base_qty: Option<(Option<Decimal>, Option<String>)>,
    means: MeansBuf,
    means_count: usize,
    /// The Factur-X profile's structure rules, checked as elements pass.
    fx: crate::validate::fx::Checker,
    /// The CII syntax-binding rules (CII-SR-463 .. 476).
    binding: crate::validate::cii_binding::Checker,
    /// The profile's CII D16B XSD content models (not for ZUGFeRD 1.0).
    xsd: Option<crate::validate::xsd::Checker>,
    /// Where the listed terms are, for the rules' findings.
    positions: crate::positions::Positions,
    /// The listed term of each path met ([`crate::positions::cii_term`]).
    terms: CiiTerms,
    /// Where the element about to open starts.
    at: (u32, u32),
    /// VAT breakdown elements so far.
    breakdown_count: u32,
    /// Document level allowance-or-charge and logistics charge elements so far.
    ac_count: (u32, u32),
}

#[derive(Clone, Copy)]
enum Role {
    Seller,
    Buyer,
}

fn address(a: &mut Option<Address>, rest: &str, t: &str) {
    let a = a.get_or_insert_with(Address::default);
    let slot = match rest {
        "LineOne" => &mut a.line1,
        "LineTwo" => &mut a.line2,
        "LineThree" => &mut a.line3,
        "CityName" => &mut a.city,
        "PostcodeCode" => &mut a.post_code,
        "CountrySubDivisionName" => &mut a.subdivision,
        "CountryID" => &mut a.country_code,
        _ => return,
    };
    set(slot, text(t));
}

impl Mapper {
    fn party(&mut self, role: Role, rest: &str, attrs: &Attrs<'_>, t: &str) {
        let p: &mut Party = match role {
            Role::Seller => &mut self.inv.seller,
            Role::Buyer => &mut self.inv.buyer,
        };
        if let Some(r) = rest.strip_prefix("PostalTradeAddress/") {
            address(&mut p.address, r, t);
            return;
        }
        match rest {
            "ID" => p.identifiers.extend(text(t).map(Identifier::new)),
            "GlobalID" => p.identifiers.extend(ident(t, attrs, "schemeID")),
            "Name" => set(&mut p.name, text(t)),
            "Description" => set(&mut p.additional_legal_info, text(t)),
            "SpecifiedLegalOrganization/ID" => {
                set(&mut p.legal_registration_id, ident(t, attrs, "schemeID"))
            }
            "SpecifiedLegalOrganization/TradingBusinessName" => set(&mut p.trading_name, text(t)),
            "DefinedTradeContact/PersonName" | "DefinedTradeContact/DepartmentName" => set(
                &mut p.contact.get_or_insert_with(Contact::default).name,
                text(t),
            ),
            "DefinedTradeContact/TelephoneUniversalCommunication/CompleteNumber" => set(
                &mut p.contact.get_or_insert_with(Contact::default).phone,
                text(t),
            ),
            "DefinedTradeContact/EmailURIUniversalCommunication/URIID" => set(
                &mut p.contact.get_or_insert_with(Contact::default).email,
                text(t),
            ),
            "URIUniversalCommunication/URIID" => {
                set(&mut p.electronic_address, ident(t, attrs, "schemeID"))
            }
            "SpecifiedTaxRegistration/ID" => {
                if attrs
                    .get("schemeID")
                    .is_some_and(|s| s.eq_ignore_ascii_case("FC"))
                {
                    set(&mut p.tax_registration_id, text(t));
                } else {
                    set(&mut p.vat_id, text(t));
                }
            }
            _ => {}
        }
    }

    fn line_end(&mut self, rest: &str, attrs: &Attrs<'_>, t: &str) {
        if let Some(r) =
            rest.strip_prefix("SpecifiedLineTradeSettlement/SpecifiedTradeAllowanceCharge/")
        {
            ac_field(&mut self.ac, r, t);
            return;
        }
        let v = &mut self.v;
        let l = &mut self.line;
        match rest {
            "SpecifiedLineTradeSettlement/SpecifiedTradeAllowanceCharge" => {
                if let Some((charge, d)) = std::mem::take(&mut self.ac).into_line(v) {
                    if charge {
                        l.charges.push(d);
                    } else {
                        l.allowances.push(d);
                    }
                }
            }
            "AssociatedDocumentLineDocument/LineID" => set(&mut l.id, text(t)),
            "AssociatedDocumentLineDocument/LineStatusReasonCode" => {
                set(&mut l.line_status, text(t))
            }
            "AssociatedDocumentLineDocument/ParentLineID" => set(&mut l.parent_line_id, text(t)),
            "AssociatedDocumentLineDocument/IncludedNote/Content" => {
                if let Some(n) = text(t) {
                    match &mut l.note {
                        Some(existing) => {
                            existing.push('\n');
                            existing.push_str(&n);
                        }
                        None => l.note = Some(n),
                    }
                }
            }
            "SpecifiedTradeProduct/GlobalID" => set(&mut l.standard_item_id, ident(t, attrs, "schemeID")),
            "SpecifiedTradeProduct/SellerAssignedID" => set(&mut l.seller_item_id, text(t)),
            "SpecifiedTradeProduct/BuyerAssignedID" => set(&mut l.buyer_item_id, text(t)),
            "SpecifiedTradeProduct/Name" => set(&mut l.item_name, text(t)),
            "SpecifiedTradeProduct/Description" => set(&mut l.item_description, text(t)),
            "SpecifiedTradeProduct/ApplicableProductCharacteristic/Description" => self.attr_name = Some(t.to_string()),
            "SpecifiedTradeProduct/ApplicableProductCharacteristic/Value" => self.attr_value = Some(t.to_string()),
            "SpecifiedTradeProduct/ApplicableProductCharacteristic" => {
                let name = self.attr_name.take().unwrap_or_default();
                let value = self.attr_value.take().unwrap_or_default();
                l.attributes.push(ItemAttribute { name, value });
            }
            "SpecifiedTradeProduct/DesignatedProductClassification/ClassCode" => {
                let scheme = attrs.owned("listID");
                if let Some(value) = text(t).or_else(|| scheme.as_ref().map(|_| String::new())) {
                    l.classifications.push(Classification {
                        value,
                        scheme,
                        scheme_version: attrs.owned("listVersionID"),
                    });
                }
            }
            "SpecifiedTradeProduct/OriginTradeCountry/ID" => set(&mut l.origin_country, text(t)),
            "SpecifiedLineTradeAgreement/BuyerOrderReferencedDocument/LineID" => {
                set(&mut l.order_line_reference, text(t))
            }
            "SpecifiedLineTradeAgreement/GrossPriceProductTradePrice/ChargeAmount" => {
                l.gross_price = v.decimal("BT-148", t)
            }
            "SpecifiedLineTradeAgreement/GrossPriceProductTradePrice/BasisQuantity" => {
                self.gross_base_qty = Some((v.decimal("BT-149", t), attrs.owned("unitCode")));
            }
            "SpecifiedLineTradeAgreement/GrossPriceProductTradePrice/AppliedTradeAllowanceCharge/ActualAmount" => {
                l.price_discount = v.decimal("BT-147", t)
            }
            "SpecifiedLineTradeAgreement/NetPriceProductTradePrice/ChargeAmount" => l.net_price = v.decimal("BT-146", t),
            "SpecifiedLineTradeAgreement/NetPriceProductTradePrice/BasisQuantity" => {
                l.price_base_quantity = v.decimal("BT-149", t);
                l.price_base_quantity_unit = attrs.owned("unitCode");
            }
            "SpecifiedLineTradeDelivery/BilledQuantity" => {
                l.quantity = v.decimal("BT-129", t);
                l.unit_code = crate::ubl::present(attrs, "unitCode");
            }
            // BT-151 is the category of the line's `VAT` tax only
            // (`ApplicableTradeTax[upper-case(TypeCode) = 'VAT']`): kept
            // until the tax's end tag says which tax it is.
            "SpecifiedLineTradeSettlement/ApplicableTradeTax/TypeCode" => set(&mut self.line_tax.0, Some(t.to_string())),
            "SpecifiedLineTradeSettlement/ApplicableTradeTax/CategoryCode" => set(&mut self.line_tax.1, text(t)),
            "SpecifiedLineTradeSettlement/ApplicableTradeTax" => {
                let (scheme, category) = std::mem::take(&mut self.line_tax);
                // The `-08` sums count the line's category whatever its tax
                // type: the model keeps it, and BR-CO-04 is raised here.
                if category.is_some() && !crate::ubl::is_vat_scheme(scheme.as_deref()) {
                    v.issues.push(Violation::fatal(
                        "BR-CO-04",
                        "BT-151",
                        format!(
                            "The line's VAT category code (BT-151) is not that of a VAT tax (ApplicableTradeTax/TypeCode {:?}).",
                            scheme.as_deref().unwrap_or("")
                        ),
                    ));
                }
                set(&mut l.vat_category, category);
            }
            "SpecifiedLineTradeSettlement/ApplicableTradeTax/RateApplicablePercent" => {
                l.vat_rate = v.decimal("BT-152", t)
            }
            "SpecifiedLineTradeSettlement/BillingSpecifiedPeriod/StartDateTime/DateTimeString" => {
                l.period.get_or_insert_with(Period::default).start = v.date_cii("BT-134", t, attrs.get("format"))
            }
            "SpecifiedLineTradeSettlement/BillingSpecifiedPeriod/EndDateTime/DateTimeString" => {
                l.period.get_or_insert_with(Period::default).end = v.date_cii("BT-135", t, attrs.get("format"))
            }
            "SpecifiedLineTradeSettlement/SpecifiedTradeSettlementLineMonetarySummation/LineTotalAmount" => {
                l.net_amount = v.decimal("BT-131", t)
            }
            "SpecifiedLineTradeSettlement/AdditionalReferencedDocument/IssuerAssignedID" => {
                self.line_ref.0 = text(t)
            }
            "SpecifiedLineTradeSettlement/AdditionalReferencedDocument/ReferenceTypeCode" => {
                self.line_ref.1 = text(t)
            }
            "SpecifiedLineTradeSettlement/AdditionalReferencedDocument" => {
                let (id, scheme) = std::mem::take(&mut self.line_ref);
                if let Some(value) = id {
                    set(&mut l.object_id, Some(Identifier { value, scheme }));
                }
            }
            "SpecifiedLineTradeSettlement/ReceivableSpecifiedTradeAccountingAccount/ID" => {
                set(&mut l.buyer_accounting_reference, text(t))
            }
            _ => {}
        }
    }

    fn agreement_end(&mut self, rest: &str, attrs: &Attrs<'_>, t: &str, binary_size: Option<u64>) {
        if let Some(r) = rest.strip_prefix("SellerTradeParty/") {
            return self.party(Role::Seller, r, attrs, t);
        }
        if let Some(r) = rest.strip_prefix("BuyerTradeParty/") {
            return self.party(Role::Buyer, r, attrs, t);
        }
        let inv = &mut self.inv;
        if let Some(r) = rest.strip_prefix("SellerTaxRepresentativeTradeParty/") {
            let rep = inv
                .tax_representative
                .get_or_insert_with(TaxRepresentative::default);
            if let Some(a) = r.strip_prefix("PostalTradeAddress/") {
                return address(&mut rep.address, a, t);
            }
            match r {
                "Name" => set(&mut rep.name, text(t)),
                "SpecifiedTaxRegistration/ID" => set(&mut rep.vat_id, text(t)),
                _ => {}
            }
            return;
        }
        if let Some(r) = rest.strip_prefix("AdditionalReferencedDocument/") {
            let d = &mut self.refdoc;
            match r {
                "IssuerAssignedID" => d.id = text(t),
                "URIID" => set(&mut d.att.external_uri, text(t)),
                "TypeCode" => d.type_code = text(t),
                "Name" => set(&mut d.att.description, text(t)),
                "ReferenceTypeCode" => d.ref_type = text(t),
                "AttachmentBinaryObject" => {
                    d.att.embedded_size = binary_size;
                    if binary_size.is_none() {
                        self.v.issues.push(Violation::fatal(
                            "SYNTAX",
                            "BT-125",
                            "BT-125: the embedded attachment is not valid base64",
                        ));
                    }
                }
                _ => {}
            }
            return;
        }
        match rest {
            "BuyerReference" => set(&mut inv.buyer_reference, text(t)),
            "SellerOrderReferencedDocument/IssuerAssignedID" => {
                set(&mut inv.sales_order_reference, text(t))
            }
            "BuyerOrderReferencedDocument/IssuerAssignedID" => {
                set(&mut inv.purchase_order_reference, text(t))
            }
            "ContractReferencedDocument/IssuerAssignedID" => {
                set(&mut inv.contract_reference, text(t))
            }
            "SpecifiedProcuringProject/ID" => set(&mut inv.project_reference, text(t)),
            "AdditionalReferencedDocument" => {
                let d = std::mem::take(&mut self.refdoc);
                match d.type_code.as_deref() {
                    Some("50") => set(&mut inv.tender_reference, d.id),
                    Some("130") => set(
                        &mut inv.invoiced_object_id,
                        d.id.map(|value| Identifier {
                            value,
                            scheme: d.ref_type,
                        }),
                    ),
                    _ => {
                        let mut att = d.att;
                        att.reference = d.id;
                        inv.attachments.push(att);
                    }
                }
            }
            _ => {}
        }
    }

    fn delivery_end(&mut self, rest: &str, attrs: &Attrs<'_>, t: &str) {
        let inv = &mut self.inv;
        match rest {
            "DespatchAdviceReferencedDocument/IssuerAssignedID" => {
                return set(&mut inv.despatch_advice_reference, text(t))
            }
            "ReceivingAdviceReferencedDocument/IssuerAssignedID" => {
                return set(&mut inv.receiving_advice_reference, text(t))
            }
            _ => {}
        }
        let d = inv.delivery.get_or_insert_with(Delivery::default);
        if let Some(a) = rest.strip_prefix("ShipToTradeParty/PostalTradeAddress/") {
            return address(&mut d.address, a, t);
        }
        match rest {
            "ShipToTradeParty/ID" => set(&mut d.location_id, text(t).map(Identifier::new)),
            "ShipToTradeParty/GlobalID" => set(&mut d.location_id, ident(t, attrs, "schemeID")),
            "ShipToTradeParty/Name" => set(&mut d.party_name, text(t)),
            "ActualDeliverySupplyChainEvent/OccurrenceDateTime/DateTimeString" => {
                d.actual_delivery_date = self.v.date_cii("BT-72", t, attrs.get("format"))
            }
            _ => {}
        }
    }

    fn settlement_end(&mut self, rest: &str, attrs: &Attrs<'_>, t: &str) {
        if let Some(r) = rest.strip_prefix("SpecifiedTradeAllowanceCharge/") {
            return ac_field(&mut self.ac, r, t);
        }
        // A logistics service charge (Factur-X EXTENDED, ZUGFeRD 1.0) is a
        // document-level charge: those profiles count it in BT-108.
        if let Some(r) = rest.strip_prefix("SpecifiedLogisticsServiceCharge/") {
            let slot = match r {
                "Description" => &mut self.ac.reason,
                "AppliedAmount" => &mut self.ac.amount,
                "AppliedTradeTax/CategoryCode" => &mut self.ac.category,
                "AppliedTradeTax/RateApplicablePercent" => &mut self.ac.rate,
                _ => return,
            };
            return set(slot, Some(t.to_string()));
        }
        if rest == "SpecifiedLogisticsServiceCharge" {
            let mut ac = std::mem::take(&mut self.ac);
            ac.charge = Some("true".into());
            // No BR-37 tax-type condition is stated on logistics charges.
            ac.tax_scheme = Some("VAT".into());
            let read = ac.into_document(&mut self.v);
            self.positions
                .allowance_charge_closed(read.as_ref().map(|(c, _)| *c));
            if let Some((_, d)) = read {
                self.inv.charges.push(d);
            }
            return;
        }
        let v = &mut self.v;
        let inv = &mut self.inv;
        if let Some(r) = rest.strip_prefix("ApplicableTradeTax/") {
            let s = &mut self.sub;
            match r {
                "CalculatedAmount" => s.tax_amount = v.decimal("BT-117", t),
                "BasisAmount" => s.taxable_amount = v.decimal("BT-116", t),
                "CategoryCode" => set(&mut s.category, text(t)),
                "RateApplicablePercent" => s.rate = v.decimal("BT-119", t),
                "ExemptionReason" => set(&mut s.exemption_reason, text(t)),
                "ExemptionReasonCode" => set(&mut s.exemption_reason_code, text(t)),
                "TaxPointDate/DateString" => {
                    let d = v.date_cii("BT-7", t, attrs.get("format"));
                    set(&mut inv.tax_point_date, d);
                }
                "DueDateTypeCode" => set(&mut inv.tax_point_date_code, text(t)),
                _ => {}
            }
            return;
        }
        if let Some(r) = rest.strip_prefix("SpecifiedTradeSettlementHeaderMonetarySummation/") {
            let tot = &mut inv.totals;
            match r {
                "LineTotalAmount" => tot.line_net_total = v.decimal("BT-106", t),
                "ChargeTotalAmount" => tot.charge_total = v.decimal("BT-108", t),
                "AllowanceTotalAmount" => tot.allowance_total = v.decimal("BT-107", t),
                "TaxBasisTotalAmount" => tot.total_without_vat = v.decimal("BT-109", t),
                "TaxTotalAmount" => {
                    if let Some(d) = v.decimal("BT-110", t) {
                        self.tax_totals.push((d, attrs.owned("currencyID")));
                    }
                }
                "RoundingAmount" => tot.rounding = v.decimal("BT-114", t),
                "GrandTotalAmount" => tot.total_with_vat = v.decimal("BT-112", t),
                "TotalPrepaidAmount" => tot.prepaid = v.decimal("BT-113", t),
                "DuePayableAmount" => tot.amount_due = v.decimal("BT-115", t),
                _ => {}
            }
            return;
        }
        if let Some(r) = rest.strip_prefix("SpecifiedTradeSettlementPaymentMeans/") {
            let pay = inv.payment.get_or_insert_with(PaymentInstructions::default);
            match r {
                "TypeCode" => set(&mut self.means.code, text(t)),
                "Information" => set(&mut self.means.text, text(t)),
                "ApplicableTradeSettlementFinancialCard/ID" => set(
                    &mut pay
                        .card
                        .get_or_insert_with(PaymentCard::default)
                        .primary_account_number,
                    text(t),
                ),
                "ApplicableTradeSettlementFinancialCard/CardholderName" => set(
                    &mut pay
                        .card
                        .get_or_insert_with(PaymentCard::default)
                        .holder_name,
                    text(t),
                ),
                "PayerPartyDebtorFinancialAccount/IBANID" => set(
                    &mut pay
                        .direct_debit
                        .get_or_insert_with(DirectDebit::default)
                        .debited_account_id,
                    text(t),
                ),
                "PayeePartyCreditorFinancialAccount/IBANID"
                | "PayeePartyCreditorFinancialAccount/ProprietaryID" => {
                    set(&mut self.ct.account_id, text(t))
                }
                "PayeePartyCreditorFinancialAccount/AccountName" => {
                    set(&mut self.ct.account_name, text(t))
                }
                "PayeeSpecifiedCreditorFinancialInstitution/BICID" => {
                    set(&mut self.ct.service_provider_id, text(t))
                }
                _ => {}
            }
            return;
        }
        if let Some(r) = rest.strip_prefix("PayeeTradeParty/") {
            let p = inv.payee.get_or_insert_with(Payee::default);
            match r {
                "ID" => set(&mut p.identifier, text(t).map(Identifier::new)),
                "GlobalID" => set(&mut p.identifier, ident(t, attrs, "schemeID")),
                "Name" => set(&mut p.name, text(t)),
                "SpecifiedLegalOrganization/ID" => {
                    set(&mut p.legal_registration_id, ident(t, attrs, "schemeID"))
                }
                _ => {}
            }
            return;
        }
        match rest {
            "CreditorReferenceID" => {
                let pay = inv.payment.get_or_insert_with(PaymentInstructions::default);
                set(
                    &mut pay
                        .direct_debit
                        .get_or_insert_with(DirectDebit::default)
                        .creditor_id,
                    text(t),
                );
            }
            "PaymentReference" => set(
                &mut inv
                    .payment
                    .get_or_insert_with(PaymentInstructions::default)
                    .remittance_information,
                text(t),
            ),
            "TaxCurrencyCode" => set(&mut inv.vat_currency, text(t)),
            "InvoiceCurrencyCode" => set(&mut inv.currency, text(t)),
            "SpecifiedTradeSettlementPaymentMeans" => {
                let ct = std::mem::take(&mut self.ct);
                let pay = inv.payment.get_or_insert_with(PaymentInstructions::default);
                std::mem::take(&mut self.means).apply(pay, self.means_count);
                if ct != CreditTransfer::default() {
                    pay.credit_transfers.push(ct);
                }
            }
            "ApplicableTradeTax" => inv.vat_breakdown.push(std::mem::take(&mut self.sub)),
            "BillingSpecifiedPeriod/StartDateTime/DateTimeString" => {
                inv.invoicing_period
                    .get_or_insert_with(Period::default)
                    .start = v.date_cii("BT-73", t, attrs.get("format"))
            }
            "BillingSpecifiedPeriod/EndDateTime/DateTimeString" => {
                inv.invoicing_period.get_or_insert_with(Period::default).end =
                    v.date_cii("BT-74", t, attrs.get("format"))
            }
            "SpecifiedTradeAllowanceCharge" => {
                let read = std::mem::take(&mut self.ac).into_document(v);
                self.positions
                    .allowance_charge_closed(read.as_ref().map(|(c, _)| *c));
                if let Some((charge, d)) = read {
                    if charge {
                        inv.charges.push(d);
                    } else {
                        inv.allowances.push(d);
                    }
                }
            }
            "SpecifiedTradePaymentTerms/Description" => {
                if let Some(n) = text(t) {
                    match &mut inv.payment_terms {
                        Some(p) if p.is_empty() => *p = n,
                        Some(p) => {
                            p.push('\n');
                            p.push_str(&n);
                        }
                        None => inv.payment_terms = Some(n),
                    }
                }
                // An empty element still counts for BR-CO-25 (the binding
                // tests its presence).
                else if inv.payment_terms.is_none() {
                    inv.payment_terms = Some(String::new());
                }
            }
            "SpecifiedTradePaymentTerms/DueDateDateTime/DateTimeString" => {
                let d = v.date_cii("BT-9", t, attrs.get("format"));
                set(&mut inv.due_date, d);
            }
            "SpecifiedTradePaymentTerms/DirectDebitMandateID" => {
                let pay = inv.payment.get_or_insert_with(PaymentInstructions::default);
                set(
                    &mut pay
                        .direct_debit
                        .get_or_insert_with(DirectDebit::default)
                        .mandate_reference,
                    text(t),
                );
            }
            "InvoiceReferencedDocument/IssuerAssignedID" => {
                if let Some(p) = inv.preceding_invoices.last_mut() {
                    set(&mut p.number, text(t));
                }
            }
            "InvoiceReferencedDocument/FormattedIssueDateTime/DateTimeString" => {
                let d = v.date_cii("BT-26", t, attrs.get("format"));
                if let Some(p) = inv.preceding_invoices.last_mut() {
                    p.issue_date = d;
                }
            }
            "ReceivableSpecifiedTradeAccountingAccount/ID" => {
                set(&mut inv.buyer_accounting_reference, text(t))
            }
            _ => {}
        }
    }

    fn finish(mut self) -> ReadOutcome {
        // BT-110 is the TaxTotalAmount in the invoice currency, BT-111 the one
        // in the VAT accounting currency (BT-6).
        let currency = self.inv.currency.clone();
        let vat_currency = self.inv.vat_currency.clone();
        // An amount in another currency than BT-5 is never BT-110 (the
        // binding selects BT-110 by `@currencyID = InvoiceCurrencyCode`); an
        // amount without currencyID is taken as BT-110 first.
        for (amount, cur) in std::mem::take(&mut self.tax_totals) {
            let tot = &mut self.inv.totals;
            let other = cur.is_some() && currency.is_some() && cur != currency;
            let accounting = other || (cur.is_some() && cur == vat_currency && cur != currency);
            if accounting || (tot.vat_total.is_some() && cur.is_none()) {
                set(&mut tot.vat_total_accounting, Some(amount));
            } else {
                if tot.vat_total.is_some() {
                    tot.vat_total_repeats += 1;
                }
                set(&mut tot.vat_total, Some(amount));
            }
        }
        if let Some(pay) = self.inv.payment.as_mut() {
            pay.no_means_element = self.means_count == 0;
        }
        self.inv.syntax = Some(Syntax::Cii);
        // CII has one root for both: a credit note is told by BT-3.
        self.inv.kind = match self.inv.type_code.as_deref() {
            Some(code) if is_credit_note_code(code) => DocumentKind::CreditNote,
            _ => DocumentKind::Invoice,
        };
        self.inv.profile = self
            .inv
            .specification_id
            .as_deref()
            .map(Profile::from_specification_id);
        let structure = if self.zugferd1 {
            Vec::new()
        } else {
            let mut s = self.xsd.take().map(|x| x.finish()).unwrap_or_default();
            s.extend(std::mem::take(&mut self.fx).finish());
            let mut binding = std::mem::take(&mut self.binding).finish();
            // Stated as the file's Factur-X profile states them (another
            // CIUS: the CEN ids).
            if let Some(p) = self
                .inv
                .specification_id
                .as_deref()
                .and_then(crate::validate::FxProfile::for_guideline)
            {
                p.restate(&mut binding);
            }
            s.extend(binding);
            s
        };
        ReadOutcome {
            invoice: self.inv,
            issues: self.v.issues,
            structure,
            positions: self.positions,
        }
    }
}

/// UNTDID 1001 codes of credit notes among those EN 16931 allows for BT-3
/// (the codes the UBL binding carries in a `CreditNote` root).
pub fn is_credit_note_code(code: &str) -> bool {
    matches!(
        code.trim(),
        "81" | "83" | "261" | "262" | "296" | "308" | "381" | "396" | "420" | "458" | "532"
    )
}

fn ac_field(ac: &mut AcBuf, rest: &str, t: &str) {
    let slot = match rest {
        "ChargeIndicator/Indicator" => &mut ac.charge,
        "CalculationPercent" => &mut ac.percent,
        "BasisAmount" => &mut ac.base,
        "ActualAmount" => &mut ac.amount,
        "ReasonCode" => &mut ac.reason_code,
        "Reason" => &mut ac.reason,
        "CategoryTradeTax/CategoryCode" => &mut ac.category,
        "CategoryTradeTax/RateApplicablePercent" => &mut ac.rate,
        "CategoryTradeTax/TypeCode" => &mut ac.tax_scheme,
        _ => return,
    };
    set(slot, Some(t.to_string()));
}

const TX: &str = "SupplyChainTradeTransaction/";
const LINE: &str = "IncludedSupplyChainTradeLineItem";

impl Handler for Mapper {
    fn known_namespace(&self, ns: &str) -> bool {
        if self.zugferd1 {
            ns == NS_RAM_12 || ns == NS_UDT_15 || ns == NS_ZUGFERD1
        } else {
            ns == NS_RAM || ns == NS_UDT || ns == NS_QDT || ns == NS_RSM
        }
    }

    fn alias<'a>(&self, parent: &str, local: &'a str) -> &'a str {
        if self.zugferd1 {
            zugferd1_alias(parent, local)
        } else {
            local
        }
    }

    fn root(&mut self, ns: &str, local: &str) -> Result<(), String> {
        match (ns, local) {
            (NS_RSM, "CrossIndustryInvoice") => {
                // EXTENDED (which allows the most) until BT-24 names the
                // profile, or the context ends without naming one (EN 16931).
                self.xsd = Some(crate::validate::xsd::Checker::provisional(
                    &crate::validate::xsd::CII_EXTENDED,
                    local,
                ));
                self.positions = crate::positions::Positions::new(
                    "/rsm:CrossIndustryInvoice",
                    "/rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem",
                    self.at,
                );
                Ok(())
            }
            (NS_ZUGFERD1, "CrossIndustryDocument") => {
                self.zugferd1 = true;
                Ok(())
            }
            _ => Err(format!(
                "not a CII invoice: root element {local} in namespace \"{ns}\" (expected CrossIndustryInvoice in {NS_RSM})"
            )),
        }
    }

    fn at(&mut self, line: u32, column: u32) {
        self.at = (line, column);
        if let Some(x) = self.xsd.as_mut() {
            x.at(line, column);
        }
    }

    fn end(&mut self, path: &str, attrs: &Attrs<'_>, t: &str, binary_size: Option<u64>) {
        self.end_element(&Element::of_path(path), attrs, t, binary_size)
    }

    fn start_element(&mut self, el: &Element<'_>, attrs: &Attrs<'_>) -> TextMode {
        let path = el.path;
        if let Some(x) = self.xsd.as_mut() {
            x.start(el, attrs);
        }
        if !self.zugferd1 {
            if crate::positions::cii_line(path) {
                self.positions.line_opened(self.at);
            } else if path == crate::positions::CII_ALLOWANCE_CHARGE {
                self.ac_count.0 += 1;
                self.positions.allowance_charge_opened(
                    format!("/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeAllowanceCharge[{}]", self.ac_count.0),
                    self.at,
                );
            } else if path == "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/SpecifiedLogisticsServiceCharge" {
                self.ac_count.1 += 1;
                self.positions.allowance_charge_opened(
                    format!("/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:SpecifiedLogisticsServiceCharge[{}]", self.ac_count.1),
                    self.at,
                );
            } else if path == crate::positions::CII_BREAKDOWN {
                self.breakdown_count += 1;
                self.positions.breakdown_opened(
                    format!("/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax[{}]", self.breakdown_count),
                    self.at,
                );
            }
            let term = self.terms.term(el);
            self.positions.opened(term, self.at);
            let before = self.fx.findings.len();
            self.fx.start(el, attrs);
            if self.fx.findings.len() > before {
                if let Some(x) = self.xsd.as_ref() {
                    let place = x.open_place();
                    self.fx.findings[before..]
                        .iter_mut()
                        .for_each(|v| place.stamp(v));
                }
            }
            self.binding.start(el);
        }
        self.map_start(path, attrs)
    }

    fn end_element(
        &mut self,
        el: &Element<'_>,
        attrs: &Attrs<'_>,
        t: &str,
        binary_size: Option<u64>,
    ) {
        let path = el.path;
        let refused = self.xsd.as_mut().is_some_and(|x| x.end(t));
        self.positions.closed(t);
        if path == crate::validate::fx::GUIDELINE || path == "ExchangedDocumentContext" {
            if let Some(x) = self.xsd.as_mut() {
                let profile = if path == "ExchangedDocumentContext" {
                    None
                } else {
                    crate::validate::FxProfile::for_guideline(t)
                };
                x.switch(crate::validate::xsd::cii_schema(profile));
            }
        }
        let before_fx = self.fx.findings.len();
        if !self.zugferd1 {
            self.fx.end(el, t);
            self.binding.end(el, t);
        }
        let before = self.v.issues.len();
        self.map_end(path, attrs, t, binary_size);
        if self.v.issues.len() > before || self.fx.findings.len() > before_fx {
            if let Some(x) = self.xsd.as_mut() {
                if refused && self.v.issues.len() > before {
                    // The reader named the term of the value it could not
                    // read.
                    x.retract_datatype();
                }
                let place = x.ended_place();
                self.v.issues[before..]
                    .iter_mut()
                    .for_each(|v| place.stamp(v));
                self.fx.findings[before_fx..]
                    .iter_mut()
                    .for_each(|v| place.stamp(v));
            }
        }
    }
}

impl Mapper {
    fn map_start(&mut self, path: &str, attrs: &Attrs<'_>) -> TextMode {
        let Some(rest) = path.strip_prefix(TX) else {
            if path == "ExchangedDocument/IncludedNote" {
                self.inv.notes.push(Note::default());
            }
            return TextMode::Keep;
        };
        if rest == LINE {
            self.line = Line::default();
            self.gross_base_qty = None;
            return TextMode::Keep;
        }
        if let Some(r) = rest.strip_prefix(LINE) {
            match r {
                "/SpecifiedLineTradeSettlement/BillingSpecifiedPeriod" => {
                    self.line.period.get_or_insert_with(Period::default);
                }
                "/SpecifiedLineTradeSettlement/SpecifiedTradeAllowanceCharge" => {
                    self.ac = AcBuf::default()
                }
                "/SpecifiedLineTradeSettlement/AdditionalReferencedDocument" => {
                    self.line_ref = (None, None)
                }
                _ => {}
            }
            return TextMode::Keep;
        }
        // A group is present as soon as its element is, even empty: the
        // official rules check what an empty `<ram:PayeeTradeParty/>` lacks.
        let inv = &mut self.inv;
        match rest {
            "ApplicableHeaderTradeAgreement/SellerTradeParty/PostalTradeAddress" => {
                inv.seller.address.get_or_insert_with(Address::default);
            }
            "ApplicableHeaderTradeAgreement/BuyerTradeParty/PostalTradeAddress" => {
                inv.buyer.address.get_or_insert_with(Address::default);
            }
            "ApplicableHeaderTradeAgreement/SellerTaxRepresentativeTradeParty" => {
                inv.tax_representative
                    .get_or_insert_with(TaxRepresentative::default);
            }
            "ApplicableHeaderTradeAgreement/SellerTaxRepresentativeTradeParty/PostalTradeAddress" => {
                inv.tax_representative
                    .get_or_insert_with(TaxRepresentative::default)
                    .address
                    .get_or_insert_with(Address::default);
            }
            "ApplicableHeaderTradeDelivery/ShipToTradeParty/PostalTradeAddress" => {
                inv.delivery
                    .get_or_insert_with(Delivery::default)
                    .address
                    .get_or_insert_with(Address::default);
            }
            "ApplicableHeaderTradeSettlement/PayeeTradeParty" => {
                inv.payee.get_or_insert_with(Payee::default);
            }
            "ApplicableHeaderTradeSettlement/BillingSpecifiedPeriod" => {
                inv.invoicing_period.get_or_insert_with(Period::default);
            }
            _ => {}
        }
        match rest {
            "ApplicableHeaderTradeAgreement/AdditionalReferencedDocument" => self.refdoc = RefDoc::default(),
            "ApplicableHeaderTradeAgreement/AdditionalReferencedDocument/AttachmentBinaryObject" => {
                self.refdoc.att.mime_code = attrs.owned("mimeCode");
                self.refdoc.att.filename = attrs.owned("filename");
                return TextMode::Base64Size;
            }
            "ApplicableHeaderTradeSettlement/SpecifiedTradeAllowanceCharge"
            | "ApplicableHeaderTradeSettlement/SpecifiedLogisticsServiceCharge" => self.ac = AcBuf::default(),
            "ApplicableHeaderTradeSettlement/ApplicableTradeTax" => self.sub = VatBreakdown::default(),
            "ApplicableHeaderTradeSettlement/SpecifiedTradeSettlementPaymentMeans" => {
                self.ct = CreditTransfer::default();
                self.means = MeansBuf::default();
                self.means_count += 1;
                self.inv
                    .payment
                    .get_or_insert_with(PaymentInstructions::default);
            }
            "ApplicableHeaderTradeSettlement/InvoiceReferencedDocument" => {
                self.inv.preceding_invoices.push(PrecedingInvoice::default())
            }
            _ => {}
        }
        TextMode::Keep
    }

    fn map_end(&mut self, path: &str, attrs: &Attrs<'_>, t: &str, binary_size: Option<u64>) {
        if let Some(rest) = path.strip_prefix(TX) {
            if let Some(r) = rest.strip_prefix(LINE) {
                if r.is_empty() {
                    let mut line = std::mem::take(&mut self.line);
                    if line.price_base_quantity.is_none() {
                        if let Some((q, u)) = self.gross_base_qty.take() {
                            line.price_base_quantity = q;
                            line.price_base_quantity_unit = u;
                        }
                    }
                    self.inv.lines.push(line);
                } else if let Some(r) = r.strip_prefix('/') {
                    self.line_end(r, attrs, t);
                }
            } else if let Some(r) = rest.strip_prefix("ApplicableHeaderTradeAgreement/") {
                self.agreement_end(r, attrs, t, binary_size);
            } else if let Some(r) = rest.strip_prefix("ApplicableHeaderTradeDelivery/") {
                self.delivery_end(r, attrs, t);
            } else if let Some(r) = rest.strip_prefix("ApplicableHeaderTradeSettlement/") {
                self.settlement_end(r, attrs, t);
            }
            return;
        }
        let inv = &mut self.inv;
        let v = &mut self.v;
        match path {
            "ExchangedDocumentContext/BusinessProcessSpecifiedDocumentContextParameter/ID" => {
                set(&mut inv.business_process, text(t))
            }
            "ExchangedDocumentContext/GuidelineSpecifiedDocumentContextParameter/ID" => {
                set(&mut inv.specification_id, text(t))
            }
            "ExchangedDocument/ID" => set(&mut inv.number, text(t)),
            "ExchangedDocument/TypeCode" => set(&mut inv.type_code, text(t)),
            "ExchangedDocument/IssueDateTime/DateTimeString" => {
                inv.issue_date = v.date_cii("BT-2", t, attrs.get("format"))
            }
            "ExchangedDocument/IncludedNote/Content" => {
                if let Some(n) = inv.notes.last_mut() {
                    if !n.text.is_empty() {
                        n.text.push('\n');
                    }
                    n.text.push_str(t);
                }
            }
            "ExchangedDocument/IncludedNote/SubjectCode" => {
                if let Some(n) = inv.notes.last_mut() {
                    set(&mut n.subject_code, text(t));
                }
            }
            _ => {}
        }
    }
}

thread_local! {
    static CII_TERMS: Cell<PathMemo<Option<&'static TermAt>>> = const { Cell::new(PathMemo::new()) };
}

/// [`cii_term`] of each path met, worked out once per path and kept per
/// thread (`xml::PathMemo`).
struct CiiTerms(ThreadMemo<Option<&'static TermAt>>);

impl Default for CiiTerms {
    fn default() -> Self {
        CiiTerms(ThreadMemo::take(&CII_TERMS))
    }
}

impl CiiTerms {
    fn term(&mut self, el: &Element<'_>) -> Option<&'static TermAt> {
        *self.0.get(el.node, || cii_term(el.path))
    }
}
