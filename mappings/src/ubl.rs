//! UBL 2.1 Invoice and CreditNote reader (incl. Peppol BIS 3, XRechnung).
//!
//! One streaming pass over the document ([`crate::xml::drive`]): every
//! element closes with its path relative to the root, and a flat `match` on
//! that path places the value in the canonical [`Invoice`] following the
//! official EN 16931 UBL binding (CEN/TS 16931-3-2). Constant work per
//! element, so a 5,000-line invoice maps in milliseconds. Elements in other
//! namespaces (e.g. `ext:UBLExtensions`) never match. Aggregates whose
//! meaning depends on a later child (`PartyTaxScheme` whose `TaxScheme/ID`
//! says VAT or not, `AllowanceCharge` whose amounts are read before we know
//! the terms, `AdditionalDocumentReference` with its `DocumentTypeCode`) are
//! buffered until their end tag. Embedded attachments (BT-125) are only
//! counted, never kept.

use std::cell::Cell;
use std::io::BufRead;

use rust_decimal::Decimal;

use crate::model::{
    Address, Attachment, Classification, Contact, CreditTransfer, Delivery, DirectDebit,
    DocumentAllowanceCharge, DocumentKind, Identifier, Invoice, ItemAttribute, Line,
    LineAllowanceCharge, Note, Party, Payee, PaymentCard, PaymentInstructions, PaymentMeans,
    Period, PrecedingInvoice, Profile, Syntax, TaxRepresentative, VatBreakdown, Violation,
};
use crate::positions::{ubl_term, TermAt};
use crate::xml::{self, Attrs, Element, Handler, PathMemo, TextMode, ThreadMemo, Values};
use crate::{ReadError, ReadOutcome};

pub const NS_INVOICE: &str = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2";
pub const NS_CREDIT_NOTE: &str = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2";
pub const NS_CAC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2";
pub const NS_CBC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2";
const NS_UBL_PREFIX: &str = "urn:oasis:names:specification:ubl:schema:xsd:";

/// Read one UBL Invoice or CreditNote document, streaming.
pub fn read<R: BufRead>(input: R) -> Result<ReadOutcome, ReadError> {
    let mut m = Mapper::default();
    xml::drive(input, &mut m)?;
    Ok(m.finish())
}

pub(crate) fn text(s: &str) -> Option<String> {
    Values::text(s)
}

/// An identifier with its scheme attribute. An element with a scheme and no
/// value (`<cbc:ID schemeID="0088"/>`) is still an identifier, with an
/// empty value: the official rules see it (its scheme is checked, and it
/// counts as present), so the model keeps it. An element with neither is
/// nothing.
pub(crate) fn ident(s: &str, attrs: &Attrs<'_>, scheme_attr: &str) -> Option<Identifier> {
    let scheme = attrs.owned(scheme_attr);
    match text(s) {
        Some(value) => Some(Identifier { value, scheme }),
        None => scheme.map(|scheme| Identifier {
            value: String::new(),
            scheme: Some(scheme),
        }),
    }
}

/// Keep the first value of a single-valued term.
pub(crate) fn set<T>(slot: &mut Option<T>, v: Option<T>) {
    if slot.is_none() {
        *slot = v;
    }
}

/// An allowance or charge read so far (UBL `cac:AllowanceCharge`, CII
/// `ram:SpecifiedTradeAllowanceCharge`); numbers kept raw until the end tag
/// tells whether it is an allowance or a charge, which decides the BT terms.
#[derive(Default)]
pub(crate) struct AcBuf {
    pub charge: Option<String>,
    pub reason_code: Option<String>,
    pub reason: Option<String>,
    pub percent: Option<String>,
    pub amount: Option<String>,
    pub base: Option<String>,
    pub category: Option<String>,
    pub rate: Option<String>,
    /// The tax scheme of the category (UBL `TaxCategory/TaxScheme/ID`, CII
    /// `CategoryTradeTax/TypeCode`): the bindings take BT-95 / BT-102 only
    /// from a `VAT` one.
    pub tax_scheme: Option<String>,
}

/// The bindings' `upper-case(normalize-space(scheme)) = 'VAT'`.
pub(crate) fn is_vat_scheme(scheme: Option<&str>) -> bool {
    scheme.is_some_and(|s| s.trim().eq_ignore_ascii_case("VAT"))
}

impl AcBuf {
    fn indicator(&self, v: &mut Values, term: &str, what: &str) -> Option<bool> {
        match self.charge.as_deref().map(str::trim) {
            Some("true" | "1") => Some(true),
            Some("false" | "0") => Some(false),
            other => {
                v.issues.push(Violation::fatal(
                    "SYNTAX",
                    term,
                    format!("{term}: {what} with ChargeIndicator {:?} (expected true or false); ignored", other.unwrap_or("")),
                ));
                None
            }
        }
    }

    /// A document-level allowance (BG-20, `false`) or charge (BG-21, `true`).
    pub fn into_document(self, v: &mut Values) -> Option<(bool, DocumentAllowanceCharge)> {
        let charge = self.indicator(v, "BG-20", "document allowance or charge")?;
        let t = |a: &'static str, c: &'static str| if charge { c } else { a };
        // The bindings take BT-95 / BT-102 from a category of the VAT
        // scheme only, but count the category in the `-08` sums whatever
        // its scheme: the model keeps the code, and the presence rule is
        // raised here.
        if self.category.is_some() && !is_vat_scheme(self.tax_scheme.as_deref()) {
            let (rule, term) = if charge {
                ("BR-37", "BT-102")
            } else {
                ("BR-32", "BT-95")
            };
            v.issues.push(Violation::fatal(
                rule,
                term,
                format!(
                    "The document level {}'s VAT category code ({term}) is not that of the tax scheme VAT (its scheme is {:?}).",
                    if charge { "charge" } else { "allowance" },
                    self.tax_scheme.as_deref().unwrap_or("")
                ),
            ));
        }
        let d = DocumentAllowanceCharge {
            amount: self.amount.and_then(|s| v.decimal(t("BT-92", "BT-99"), &s)),
            base_amount: self.base.and_then(|s| v.decimal(t("BT-93", "BT-100"), &s)),
            percentage: self
                .percent
                .and_then(|s| v.decimal(t("BT-94", "BT-101"), &s)),
            // An element given empty stays given (empty): the official
            // presence rules (BR-32, BR-33, ...) test that it exists, the
            // code lists refuse the empty code.
            vat_category: self.category.map(|s| s.trim().to_string()),
            vat_rate: self.rate.and_then(|s| v.decimal(t("BT-96", "BT-103"), &s)),
            reason: self.reason.map(|s| s.trim().to_string()),
            reason_code: self.reason_code.and_then(|s| text(&s)),
        };
        Some((charge, d))
    }

    /// A line-level allowance (BG-27, `false`) or charge (BG-28, `true`).
    pub fn into_line(self, v: &mut Values) -> Option<(bool, LineAllowanceCharge)> {
        let charge = self.indicator(v, "BG-27", "line allowance or charge")?;
        let t = |a: &'static str, c: &'static str| if charge { c } else { a };
        let d = LineAllowanceCharge {
            amount: self
                .amount
                .and_then(|s| v.decimal(t("BT-136", "BT-141"), &s)),
            base_amount: self.base.and_then(|s| v.decimal(t("BT-137", "BT-142"), &s)),
            percentage: self
                .percent
                .and_then(|s| v.decimal(t("BT-138", "BT-143"), &s)),
            // Given empty stays given (BR-42 / BR-44 test its existence).
            reason: self.reason.map(|s| s.trim().to_string()),
            reason_code: self.reason_code.and_then(|s| text(&s)),
        };
        Some((charge, d))
    }
}

#[derive(Default)]
struct AdrBuf {
    id: Option<Identifier>,
    type_code: Option<String>,
    att: Attachment,
}

/// One payment means element (UBL `cac:PaymentMeans`, CII
/// `ram:SpecifiedTradeSettlementPaymentMeans`). The syntaxes repeat it once
/// per account; EN 16931 has one BG-16 whose BT-81/BT-82 come from the
/// first, so the codes of the others are kept aside for their own checks.
#[derive(Default)]
pub(crate) struct MeansBuf {
    pub code: Option<String>,
    pub text: Option<String>,
}

impl MeansBuf {
    /// Close the `count`-th (from 1) payment means element.
    pub fn apply(self, pay: &mut PaymentInstructions, count: usize) {
        if count > 1 {
            pay.further_means.push(PaymentMeans {
                code: self.code,
                text: self.text,
            });
        } else {
            set(&mut pay.means_code, self.code);
            set(&mut pay.means_text, self.text);
        }
    }
}

#[derive(Default)]
struct TaxTotalBuf {
    amount: Option<Decimal>,
    currency: Option<String>,
    has_subtotals: bool,
}

#[derive(Default)]
struct Mapper {
    inv: Invoice,
    v: Values,
    line: Line,
    ac: AcBuf,
    pts_company: Option<String>,
    pts_scheme: Option<String>,
    adr: AdrBuf,
    tax_totals: Vec<TaxTotalBuf>,
    sub: VatBreakdown,
    ct: CreditTransfer,
    attr_name: Option<String>,
    attr_value: Option<String>,
    sepa_creditor: Option<String>,
    means: MeansBuf,
    means_count: usize,
    /// The CEN UBL syntax-binding rules, checked as elements pass.
    binding: Option<crate::validate::ubl_binding::Checker>,
    /// The UBL 2.1 XSD's content models, checked as elements pass.
    xsd: Option<crate::validate::xsd::Checker>,
    /// Where the listed terms are, for the rules' findings.
    positions: crate::positions::Positions,
    /// The listed term of each path met ([`crate::positions::ubl_term`]).
    terms: UblTerms,
    /// Where the element about to open starts.
    at: (u32, u32),
    /// TaxTotal elements so far, and TaxSubtotals in the last one.
    tax_total_count: (u32, u32),
    /// Document level AllowanceCharge elements so far.
    ac_count: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Seller,
    Buyer,
}

fn address(a: &mut Option<Address>, rest: &str, t: &str) {
    let a = a.get_or_insert_with(Address::default);
    let slot = match rest {
        "StreetName" => &mut a.line1,
        "AdditionalStreetName" => &mut a.line2,
        "AddressLine/Line" => &mut a.line3,
        "CityName" => &mut a.city,
        "PostalZone" => &mut a.post_code,
        "CountrySubentity" => &mut a.subdivision,
        "Country/IdentificationCode" => &mut a.country_code,
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
        if let Some(r) = rest.strip_prefix("PostalAddress/") {
            address(&mut p.address, r, t);
            return;
        }
        match rest {
            "EndpointID" => set(&mut p.electronic_address, ident(t, attrs, "schemeID")),
            "PartyIdentification/ID" => {
                if attrs
                    .get("schemeID")
                    .is_some_and(|s| s.eq_ignore_ascii_case("SEPA"))
                {
                    set(&mut self.sepa_creditor, text(t));
                } else if let Some(id) = ident(t, attrs, "schemeID") {
                    p.identifiers.push(id);
                }
            }
            "PartyName/Name" => set(&mut p.trading_name, text(t)),
            "PartyTaxScheme/CompanyID" => self.pts_company = text(t),
            "PartyTaxScheme/TaxScheme/ID" => self.pts_scheme = text(t),
            "PartyTaxScheme" => {
                let company = self.pts_company.take();
                let scheme = self.pts_scheme.take();
                // The bindings select `PartyTaxScheme[TaxScheme/normalize-space(upper-case(ID)) = 'VAT']`
                // for the VAT identifier and `[... != 'VAT']` for the tax
                // registration: without a scheme id (''), the latter.
                if is_vat_scheme(scheme.as_deref()) {
                    set(&mut p.vat_id, company);
                } else {
                    set(&mut p.tax_registration_id, company);
                }
            }
            "PartyLegalEntity/RegistrationName" => set(&mut p.name, text(t)),
            "PartyLegalEntity/CompanyID" => {
                set(&mut p.legal_registration_id, ident(t, attrs, "schemeID"))
            }
            "PartyLegalEntity/CompanyLegalForm" => set(&mut p.additional_legal_info, text(t)),
            "Contact/Name" => set(
                &mut p.contact.get_or_insert_with(Contact::default).name,
                text(t),
            ),
            "Contact/Telephone" => set(
                &mut p.contact.get_or_insert_with(Contact::default).phone,
                text(t),
            ),
            "Contact/ElectronicMail" => set(
                &mut p.contact.get_or_insert_with(Contact::default).email,
                text(t),
            ),
            _ => {}
        }
    }

    fn payment(&mut self) -> &mut PaymentInstructions {
        self.inv
            .payment
            .get_or_insert_with(PaymentInstructions::default)
    }

    fn doc_allowance_charge(&mut self) {
        let read = std::mem::take(&mut self.ac).into_document(&mut self.v);
        self.positions
            .allowance_charge_closed(read.as_ref().map(|(c, _)| *c));
        if let Some((charge, d)) = read {
            if charge {
                self.inv.charges.push(d);
            } else {
                self.inv.allowances.push(d);
            }
        }
    }

    fn line_allowance_charge(&mut self) {
        if let Some((charge, d)) = std::mem::take(&mut self.ac).into_line(&mut self.v) {
            if charge {
                self.line.charges.push(d);
            } else {
                self.line.allowances.push(d);
            }
        }
    }

    fn allowance_charge_field(&mut self, rest: &str, t: &str) {
        let ac = &mut self.ac;
        let slot = match rest {
            "ChargeIndicator" => &mut ac.charge,
            "AllowanceChargeReasonCode" => &mut ac.reason_code,
            "AllowanceChargeReason" => &mut ac.reason,
            "MultiplierFactorNumeric" => &mut ac.percent,
            "Amount" => &mut ac.amount,
            "BaseAmount" => &mut ac.base,
            "TaxCategory/ID" => &mut ac.category,
            "TaxCategory/Percent" => &mut ac.rate,
            "TaxCategory/TaxScheme/ID" => &mut ac.tax_scheme,
            _ => return,
        };
        set(slot, Some(t.to_string()));
    }

    fn line_end(&mut self, rest: &str, attrs: &Attrs<'_>, t: &str) {
        if let Some(r) = rest.strip_prefix("AllowanceCharge/") {
            self.allowance_charge_field(r, t);
            return;
        }
        let v = &mut self.v;
        let l = &mut self.line;
        match rest {
            "AllowanceCharge" => self.line_allowance_charge(),
            "ID" => set(&mut l.id, text(t)),
            "Note" => set(&mut l.note, text(t)),
            "InvoicedQuantity" | "CreditedQuantity" => {
                l.quantity = v.decimal("BT-129", t);
                l.unit_code = present(attrs, "unitCode");
            }
            "LineExtensionAmount" => l.net_amount = v.decimal("BT-131", t),
            "AccountingCost" => set(&mut l.buyer_accounting_reference, text(t)),
            "InvoicePeriod/StartDate" => {
                l.period.get_or_insert_with(Period::default).start = v.date_iso("BT-134", t)
            }
            "InvoicePeriod/EndDate" => {
                l.period.get_or_insert_with(Period::default).end = v.date_iso("BT-135", t)
            }
            "OrderLineReference/LineID" => set(&mut l.order_line_reference, text(t)),
            "DocumentReference/ID" => set(&mut l.object_id, ident(t, attrs, "schemeID")),
            "Item/Description" => set(&mut l.item_description, text(t)),
            "Item/Name" => set(&mut l.item_name, text(t)),
            "Item/BuyersItemIdentification/ID" => set(&mut l.buyer_item_id, text(t)),
            "Item/SellersItemIdentification/ID" => set(&mut l.seller_item_id, text(t)),
            "Item/StandardItemIdentification/ID" => {
                set(&mut l.standard_item_id, ident(t, attrs, "schemeID"))
            }
            "Item/OriginCountry/IdentificationCode" => set(&mut l.origin_country, text(t)),
            "Item/CommodityClassification/ItemClassificationCode" => {
                // Kept with an empty value when only its scheme is given
                // (the official BR-CL-13 checks that scheme).
                let scheme = attrs.owned("listID");
                if let Some(value) = text(t).or_else(|| scheme.as_ref().map(|_| String::new())) {
                    l.classifications.push(Classification {
                        value,
                        scheme,
                        scheme_version: attrs.owned("listVersionID"),
                    });
                }
            }
            "Item/ClassifiedTaxCategory/ID" => set(&mut l.vat_category, text(t)),
            "Item/ClassifiedTaxCategory/Percent" => l.vat_rate = v.decimal("BT-152", t),
            "Item/AdditionalItemProperty/Name" => self.attr_name = Some(t.to_string()),
            "Item/AdditionalItemProperty/Value" => self.attr_value = Some(t.to_string()),
            "Item/AdditionalItemProperty" => {
                let name = self.attr_name.take().unwrap_or_default();
                let value = self.attr_value.take().unwrap_or_default();
                l.attributes.push(ItemAttribute { name, value });
            }
            "Price/PriceAmount" => l.net_price = v.decimal("BT-146", t),
            "Price/BaseQuantity" => {
                l.price_base_quantity = v.decimal("BT-149", t);
                l.price_base_quantity_unit = present(attrs, "unitCode");
            }
            "Price/AllowanceCharge/Amount" => l.price_discount = v.decimal("BT-147", t),
            "Price/AllowanceCharge/BaseAmount" => l.gross_price = v.decimal("BT-148", t),
            _ => {}
        }
    }

    fn finish(mut self) -> ReadOutcome {
        // BT-110 is the TaxTotal in the invoice currency (the one with the
        // breakdown); BT-111 the one in the VAT accounting currency (BT-6).
        let currency = self.inv.currency.clone();
        let vat_currency = self.inv.vat_currency.clone();
        for tt in std::mem::take(&mut self.tax_totals) {
            let Some(amount) = tt.amount else { continue };
            let in_doc = tt.currency.is_some() && tt.currency == currency;
            let in_vat = tt.currency.is_some() && tt.currency == vat_currency;
            let tot = &mut self.inv.totals;
            if in_doc && tot.vat_total.is_some() {
                tot.vat_total_repeats += 1;
            }
            let slot = if in_doc || (tt.has_subtotals && !in_vat) {
                &mut self.inv.totals.vat_total
            } else if in_vat {
                &mut self.inv.totals.vat_total_accounting
            } else if self.inv.totals.vat_total.is_none() {
                &mut self.inv.totals.vat_total
            } else {
                &mut self.inv.totals.vat_total_accounting
            };
            set(slot, Some(amount));
        }
        if let Some(creditor) = self.sepa_creditor.take() {
            let dd = self
                .payment()
                .direct_debit
                .get_or_insert_with(DirectDebit::default);
            set(&mut dd.creditor_id, Some(creditor));
        }
        if let Some(pay) = self.inv.payment.as_mut() {
            pay.no_means_element = self.means_count == 0;
        }
        self.inv.syntax = Some(Syntax::Ubl);
        self.inv.profile = self
            .inv
            .specification_id
            .as_deref()
            .map(Profile::from_specification_id);
        let mut structure = self.xsd.take().map(|x| x.finish()).unwrap_or_default();
        let mut document_wide = self.binding.take().map(|b| b.finish()).unwrap_or_default();
        // The document-wide binding findings are about the root (their
        // schematron context).
        for v in &mut document_wide {
            v.place_by(&self.positions, crate::positions::At::Header);
        }
        structure.extend(document_wide);
        ReadOutcome {
            invoice: self.inv,
            issues: self.v.issues,
            structure,
            positions: self.positions,
        }
    }
}

impl Handler for Mapper {
    fn known_namespace(&self, ns: &str) -> bool {
        ns == NS_CBC || ns == NS_CAC || ns == NS_INVOICE || ns == NS_CREDIT_NOTE
    }

    fn root(&mut self, ns: &str, local: &str) -> Result<(), String> {
        match (ns, local) {
            (NS_INVOICE, "Invoice") => self.inv.kind = DocumentKind::Invoice,
            (NS_CREDIT_NOTE, "CreditNote") => self.inv.kind = DocumentKind::CreditNote,
            _ if ns.starts_with(NS_UBL_PREFIX) => {
                return Err(format!("UBL {local} is not an invoice or credit note (only UBL Invoice and CreditNote are read)"))
            }
            _ => {
                return Err(format!(
                    "not a UBL invoice: root element {local} in namespace \"{ns}\" (expected Invoice in {NS_INVOICE} or CreditNote in {NS_CREDIT_NOTE})"
                ))
            }
        }
        self.binding = Some(crate::validate::ubl_binding::Checker::new(
            self.inv.kind == DocumentKind::CreditNote,
        ));
        self.xsd = Some(crate::validate::xsd::Checker::new(
            &crate::validate::xsd::UBL,
            local,
        ));
        self.positions = match self.inv.kind {
            DocumentKind::CreditNote => {
                crate::positions::Positions::new("/CreditNote", "/cac:CreditNoteLine", self.at)
            }
            _ => crate::positions::Positions::new("/Invoice", "/cac:InvoiceLine", self.at),
        };
        Ok(())
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
        match path {
            "InvoiceLine" | "CreditNoteLine" => self.positions.line_opened(self.at),
            "TaxTotal" => self.tax_total_count = (self.tax_total_count.0 + 1, 0),
            "AllowanceCharge" => {
                self.ac_count += 1;
                let root = if self.inv.kind == DocumentKind::CreditNote {
                    "CreditNote"
                } else {
                    "Invoice"
                };
                self.positions.allowance_charge_opened(
                    format!("/{root}/cac:AllowanceCharge[{}]", self.ac_count),
                    self.at,
                );
            }
            "TaxTotal/TaxSubtotal" => {
                self.tax_total_count.1 += 1;
                let (t, s) = self.tax_total_count;
                let root = if self.inv.kind == DocumentKind::CreditNote {
                    "CreditNote"
                } else {
                    "Invoice"
                };
                self.positions.breakdown_opened(
                    format!("/{root}/cac:TaxTotal[{t}]/cac:TaxSubtotal[{s}]"),
                    self.at,
                );
            }
            _ => {}
        }
        let term = self.terms.term(el);
        self.positions.opened(term, self.at);
        if let Some(b) = self.binding.as_mut() {
            let before = b.findings.len();
            b.start(el, attrs);
            if b.findings.len() > before {
                if let Some(x) = self.xsd.as_ref() {
                    let place = x.open_place();
                    b.findings[before..].iter_mut().for_each(|v| place.stamp(v));
                }
            }
        }
        // A group is present as soon as its element is, even empty: the
        // official rules check what an empty `<cac:PayeeParty/>` lacks.
        let inv = &mut self.inv;
        match path {
            "AccountingSupplierParty/Party/PostalAddress" => {
                inv.seller.address.get_or_insert_with(Address::default);
            }
            "AccountingCustomerParty/Party/PostalAddress" => {
                inv.buyer.address.get_or_insert_with(Address::default);
            }
            "PayeeParty" => {
                inv.payee.get_or_insert_with(Payee::default);
            }
            "TaxRepresentativeParty" => {
                inv.tax_representative
                    .get_or_insert_with(TaxRepresentative::default);
            }
            "TaxRepresentativeParty/PostalAddress" => {
                inv.tax_representative
                    .get_or_insert_with(TaxRepresentative::default)
                    .address
                    .get_or_insert_with(Address::default);
            }
            "PaymentMeans" => {
                inv.payment.get_or_insert_with(PaymentInstructions::default);
                self.means = MeansBuf::default();
                self.means_count += 1;
            }
            "Delivery" => {
                inv.delivery.get_or_insert_with(Delivery::default);
            }
            "Delivery/DeliveryLocation/Address" => {
                inv.delivery
                    .get_or_insert_with(Delivery::default)
                    .address
                    .get_or_insert_with(Address::default);
            }
            "InvoicePeriod" => {
                inv.invoicing_period.get_or_insert_with(Period::default);
            }
            "InvoiceLine/InvoicePeriod" | "CreditNoteLine/InvoicePeriod" => {
                self.line.period.get_or_insert_with(Period::default);
            }
            _ => {}
        }
        match path {
            "InvoiceLine" | "CreditNoteLine" => self.line = Line::default(),
            "AllowanceCharge"
            | "InvoiceLine/AllowanceCharge"
            | "CreditNoteLine/AllowanceCharge" => self.ac = AcBuf::default(),
            "AdditionalDocumentReference" => self.adr = AdrBuf::default(),
            "AdditionalDocumentReference/Attachment/EmbeddedDocumentBinaryObject" => {
                self.adr.att.mime_code = attrs.owned("mimeCode");
                self.adr.att.filename = attrs.owned("filename");
                return TextMode::Base64Size;
            }
            "TaxTotal" => self.tax_totals.push(TaxTotalBuf::default()),
            "TaxTotal/TaxSubtotal" => self.sub = VatBreakdown::default(),
            "BillingReference" => self
                .inv
                .preceding_invoices
                .push(PrecedingInvoice::default()),
            "PaymentMeans/PayeeFinancialAccount" => self.ct = CreditTransfer::default(),
            _ => {}
        }
        TextMode::Keep
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
        let before = self.v.issues.len();
        let before_b = self.binding.as_ref().map_or(0, |b| b.findings.len());
        if let Some(b) = self.binding.as_mut() {
            b.end(el, t);
        }
        self.map_end(path, attrs, t, binary_size);
        let grew_b = self
            .binding
            .as_ref()
            .is_some_and(|b| b.findings.len() > before_b);
        if self.v.issues.len() > before || grew_b {
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
                if let Some(b) = self.binding.as_mut() {
                    b.findings[before_b..]
                        .iter_mut()
                        .for_each(|v| place.stamp(v));
                }
            }
        }
    }
}

impl Mapper {
    fn map_end(&mut self, path: &str, attrs: &Attrs<'_>, t: &str, binary_size: Option<u64>) {
        if let Some(rest) = path
            .strip_prefix("InvoiceLine/")
            .or_else(|| path.strip_prefix("CreditNoteLine/"))
        {
            self.line_end(rest, attrs, t);
            return;
        }
        if let Some(rest) = path.strip_prefix("AccountingSupplierParty/Party/") {
            self.party(Role::Seller, rest, attrs, t);
            return;
        }
        if let Some(rest) = path.strip_prefix("AccountingCustomerParty/Party/") {
            self.party(Role::Buyer, rest, attrs, t);
            return;
        }
        if let Some(rest) = path.strip_prefix("AllowanceCharge/") {
            self.allowance_charge_field(rest, t);
            return;
        }
        let v = &mut self.v;
        let inv = &mut self.inv;
        if let Some(rest) = path.strip_prefix("TaxTotal/TaxSubtotal/") {
            let s = &mut self.sub;
            match rest {
                "TaxableAmount" => s.taxable_amount = v.decimal("BT-116", t),
                "TaxAmount" => s.tax_amount = v.decimal("BT-117", t),
                "TaxCategory/ID" => set(&mut s.category, text(t)),
                "TaxCategory/Percent" => s.rate = v.decimal("BT-119", t),
                "TaxCategory/TaxExemptionReason" => set(&mut s.exemption_reason, text(t)),
                "TaxCategory/TaxExemptionReasonCode" => set(&mut s.exemption_reason_code, text(t)),
                _ => {}
            }
            return;
        }
        if let Some(rest) = path.strip_prefix("LegalMonetaryTotal/") {
            let tot = &mut inv.totals;
            match rest {
                "LineExtensionAmount" => tot.line_net_total = v.decimal("BT-106", t),
                "TaxExclusiveAmount" => tot.total_without_vat = v.decimal("BT-109", t),
                "TaxInclusiveAmount" => tot.total_with_vat = v.decimal("BT-112", t),
                "AllowanceTotalAmount" => tot.allowance_total = v.decimal("BT-107", t),
                "ChargeTotalAmount" => tot.charge_total = v.decimal("BT-108", t),
                "PrepaidAmount" => tot.prepaid = v.decimal("BT-113", t),
                "PayableRoundingAmount" => tot.rounding = v.decimal("BT-114", t),
                "PayableAmount" => tot.amount_due = v.decimal("BT-115", t),
                _ => {}
            }
            return;
        }
        if let Some(rest) = path.strip_prefix("PaymentMeans/") {
            let pay = inv.payment.get_or_insert_with(PaymentInstructions::default);
            match rest {
                "PaymentMeansCode" => {
                    set(&mut self.means.code, text(t));
                    set(&mut self.means.text, attrs.owned("name"));
                }
                "PaymentID" => set(&mut pay.remittance_information, text(t)),
                "PayeeFinancialAccount/ID" => self.ct.account_id = text(t),
                "PayeeFinancialAccount/Name" => self.ct.account_name = text(t),
                "PayeeFinancialAccount/FinancialInstitutionBranch/ID" => {
                    self.ct.service_provider_id = text(t)
                }
                "PayeeFinancialAccount" => pay.credit_transfers.push(std::mem::take(&mut self.ct)),
                "CardAccount/PrimaryAccountNumberID" => set(
                    &mut pay
                        .card
                        .get_or_insert_with(PaymentCard::default)
                        .primary_account_number,
                    text(t),
                ),
                "CardAccount/HolderName" => set(
                    &mut pay
                        .card
                        .get_or_insert_with(PaymentCard::default)
                        .holder_name,
                    text(t),
                ),
                "PaymentMandate/ID" => set(
                    &mut pay
                        .direct_debit
                        .get_or_insert_with(DirectDebit::default)
                        .mandate_reference,
                    text(t),
                ),
                "PaymentMandate/PayerFinancialAccount/ID" => set(
                    &mut pay
                        .direct_debit
                        .get_or_insert_with(DirectDebit::default)
                        .debited_account_id,
                    text(t),
                ),
                "PaymentDueDate" => {
                    let d = v.date_iso("BT-9", t);
                    set(&mut inv.due_date, d);
                }
                _ => {}
            }
            return;
        }
        if let Some(rest) = path.strip_prefix("AdditionalDocumentReference/") {
            let a = &mut self.adr;
            match rest {
                "ID" => a.id = ident(t, attrs, "schemeID"),
                "DocumentTypeCode" => a.type_code = text(t),
                "DocumentDescription" => set(&mut a.att.description, text(t)),
                "Attachment/ExternalReference/URI" => set(&mut a.att.external_uri, text(t)),
                "Attachment/EmbeddedDocumentBinaryObject" => {
                    a.att.embedded_size = binary_size;
                    if binary_size.is_none() {
                        v.issues.push(Violation::fatal(
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
        if let Some(rest) = path.strip_prefix("PayeeParty/") {
            let p = inv.payee.get_or_insert_with(Payee::default);
            match rest {
                "PartyName/Name" => set(&mut p.name, text(t)),
                "PartyIdentification/ID" => {
                    if attrs
                        .get("schemeID")
                        .is_some_and(|s| s.eq_ignore_ascii_case("SEPA"))
                    {
                        set(&mut self.sepa_creditor, text(t));
                    } else {
                        set(&mut p.identifier, ident(t, attrs, "schemeID"));
                    }
                }
                "PartyLegalEntity/CompanyID" => {
                    set(&mut p.legal_registration_id, ident(t, attrs, "schemeID"))
                }
                _ => {}
            }
            return;
        }
        if let Some(rest) = path.strip_prefix("TaxRepresentativeParty/") {
            let r = inv
                .tax_representative
                .get_or_insert_with(TaxRepresentative::default);
            if let Some(a) = rest.strip_prefix("PostalAddress/") {
                address(&mut r.address, a, t);
                return;
            }
            match rest {
                "PartyName/Name" => set(&mut r.name, text(t)),
                "PartyTaxScheme/CompanyID" => self.pts_company = text(t),
                "PartyTaxScheme/TaxScheme/ID" => self.pts_scheme = text(t),
                "PartyTaxScheme" => {
                    // BT-63 is the company id of the VAT tax scheme only.
                    let company = self.pts_company.take();
                    let scheme = self.pts_scheme.take();
                    // A PartyTaxScheme without a scheme id is no VAT one.
                    if is_vat_scheme(scheme.as_deref()) {
                        set(&mut r.vat_id, company);
                    }
                }
                _ => {}
            }
            return;
        }
        if let Some(rest) = path.strip_prefix("Delivery/") {
            let d = inv.delivery.get_or_insert_with(Delivery::default);
            if let Some(a) = rest.strip_prefix("DeliveryLocation/Address/") {
                address(&mut d.address, a, t);
                return;
            }
            match rest {
                "ActualDeliveryDate" => d.actual_delivery_date = v.date_iso("BT-72", t),
                "DeliveryLocation/ID" => set(&mut d.location_id, ident(t, attrs, "schemeID")),
                "DeliveryParty/PartyName/Name" => set(&mut d.party_name, text(t)),
                _ => {}
            }
            return;
        }
        match path {
            "CustomizationID" => set(&mut inv.specification_id, text(t)),
            "ProfileID" => set(&mut inv.business_process, text(t)),
            "ID" => set(&mut inv.number, text(t)),
            "IssueDate" => inv.issue_date = v.date_iso("BT-2", t),
            "DueDate" => {
                let d = v.date_iso("BT-9", t);
                set(&mut inv.due_date, d);
            }
            "InvoiceTypeCode" | "CreditNoteTypeCode" => set(&mut inv.type_code, text(t)),
            "Note" => {
                if let Some(n) = text(t) {
                    inv.notes.push(split_note(n));
                }
            }
            "TaxPointDate" => inv.tax_point_date = v.date_iso("BT-7", t),
            "DocumentCurrencyCode" => set(&mut inv.currency, text(t)),
            "TaxCurrencyCode" => set(&mut inv.vat_currency, text(t)),
            "AccountingCost" => set(&mut inv.buyer_accounting_reference, text(t)),
            "BuyerReference" => set(&mut inv.buyer_reference, text(t)),
            "InvoicePeriod/StartDate" => {
                inv.invoicing_period
                    .get_or_insert_with(Period::default)
                    .start = v.date_iso("BT-73", t)
            }
            "InvoicePeriod/EndDate" => {
                inv.invoicing_period.get_or_insert_with(Period::default).end =
                    v.date_iso("BT-74", t)
            }
            "InvoicePeriod/DescriptionCode" => set(&mut inv.tax_point_date_code, text(t)),
            "OrderReference/ID" => set(&mut inv.purchase_order_reference, text(t)),
            "OrderReference/SalesOrderID" => set(&mut inv.sales_order_reference, text(t)),
            "BillingReference/InvoiceDocumentReference/ID" => {
                if let Some(p) = inv.preceding_invoices.last_mut() {
                    set(&mut p.number, text(t));
                }
            }
            "BillingReference/InvoiceDocumentReference/IssueDate" => {
                let d = v.date_iso("BT-26", t);
                if let Some(p) = inv.preceding_invoices.last_mut() {
                    p.issue_date = d;
                }
            }
            "DespatchDocumentReference/ID" => set(&mut inv.despatch_advice_reference, text(t)),
            "ReceiptDocumentReference/ID" => set(&mut inv.receiving_advice_reference, text(t)),
            "OriginatorDocumentReference/ID" => set(&mut inv.tender_reference, text(t)),
            "ContractDocumentReference/ID" => set(&mut inv.contract_reference, text(t)),
            "ProjectReference/ID" => set(&mut inv.project_reference, text(t)),
            "PaymentTerms/Note" => {
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
            "TaxTotal/TaxAmount" => {
                if let Some(tt) = self.tax_totals.last_mut() {
                    tt.amount = v.decimal("BT-110", t);
                    tt.currency = attrs.owned("currencyID");
                }
            }
            "TaxTotal/TaxSubtotal" => {
                if let Some(tt) = self.tax_totals.last_mut() {
                    tt.has_subtotals = true;
                }
                inv.vat_breakdown.push(std::mem::take(&mut self.sub));
            }
            "AllowanceCharge" => self.doc_allowance_charge(),
            "PaymentMeans" => {
                let means = std::mem::take(&mut self.means);
                means.apply(
                    inv.payment.get_or_insert_with(PaymentInstructions::default),
                    self.means_count,
                );
            }
            "AdditionalDocumentReference" => {
                let adr = std::mem::take(&mut self.adr);
                // BR-52 is stated on every AdditionalDocumentReference,
                // whatever it carries: an invoiced object identifier (130)
                // or a credit note's project reference (50) without its id
                // is not in the model's attachments, so it is raised here.
                let credit_note = inv.kind == DocumentKind::CreditNote;
                if adr.id.is_none()
                    && match adr.type_code.as_deref() {
                        Some("130") => true,
                        Some("50") => credit_note,
                        _ => false,
                    }
                {
                    self.v.issues.push(Violation::fatal(
                        "BR-52",
                        "BT-122",
                        "A supporting document reference (AdditionalDocumentReference) has no identifier (cbc:ID).",
                    ));
                }
                match adr.type_code.as_deref() {
                    Some("130") => set(&mut inv.invoiced_object_id, adr.id),
                    Some("50") if inv.kind == DocumentKind::CreditNote => {
                        set(&mut inv.project_reference, adr.id.map(|i| i.value))
                    }
                    _ => {
                        let mut att = adr.att;
                        att.reference = adr.id.map(|i| i.value);
                        inv.attachments.push(att);
                    }
                }
            }
            "InvoiceLine" | "CreditNoteLine" => {
                inv.lines.push(std::mem::take(&mut self.line));
            }
            _ => {}
        }
    }
}

/// An attribute as given, empty included (the official rules tell a
/// missing unitCode, BR-23, from an empty one, BR-CL-23).
pub(crate) fn present(attrs: &Attrs<'_>, name: &str) -> Option<String> {
    attrs
        .has(name)
        .then(|| attrs.get(name).unwrap_or("").to_string())
}

/// A UBL note may carry its BT-21 subject code as a `#CODE#` prefix (the
/// convention of Peppol BIS 3, XRechnung and the EN 16931 examples).
pub(crate) fn split_note(n: String) -> Note {
    let b = n.as_bytes();
    if b.len() >= 2 && b[0] == b'#' {
        if let Some(end) = n[1..].find('#') {
            let code = &n[1..1 + end];
            if !code.is_empty()
                && code.len() <= 3
                && code.bytes().all(|c| c.is_ascii_alphanumeric())
            {
                return Note {
                    subject_code: Some(code.to_string()),
                    text: n[end + 2..].trim().to_string(),
                };
            }
        }
    }
    Note {
        subject_code: None,
        text: n,
    }
}

thread_local! {
    static UBL_TERMS: Cell<PathMemo<Option<&'static TermAt>>> = const { Cell::new(PathMemo::new()) };
}

/// [`ubl_term`] of each path met, worked out once per path and kept per
/// thread (`xml::PathMemo`).
struct UblTerms(ThreadMemo<Option<&'static TermAt>>);

impl Default for UblTerms {
    fn default() -> Self {
        UblTerms(ThreadMemo::take(&UBL_TERMS))
    }
}

impl UblTerms {
    fn term(&mut self, el: &Element<'_>) -> Option<&'static TermAt> {
        *self.0.get(el.node, || ubl_term(el.path))
    }
}

#[cfg(test)]
mod tests {
    use super::split_note;

    #[test]
    fn note_subject_code_prefix() {
        let n = split_note("#AAI#\n Ordered by phone".into());
        assert_eq!(
            (n.subject_code.as_deref(), n.text.as_str()),
            (Some("AAI"), "Ordered by phone")
        );
        let n = split_note("Ordered through our website#Ordering information".into());
        assert_eq!(
            (n.subject_code, n.text.as_str()),
            (None, "Ordered through our website#Ordering information")
        );
        let n = split_note("##Delivery terms".into());
        assert_eq!(n.subject_code, None);
    }
}
