//! Where the business terms are in the source document, so that a rule's
//! finding can say which node it is about (the schematron's `location`)
//! and on which line and column.
//!
//! The readers note, for the elements of the terms listed in their syntax's
//! table ([`ubl_term`], [`cii_term`]), where the element starts and whether it
//! is blank: one small [`Mark`] per element, in a table that lives with the
//! document until it is validated (bounded by the document: a few marks per
//! line). The XPath is not built while reading: it is the term's fixed
//! relative path under the root or under the line (`/Invoice/cac:InvoiceLine[3]`
//! + `/cbc:InvoicedQuantity`), put together only for a finding.
//!
//! The same table answers "is the element there?" for the presence rules
//! whose official test is the element's existence (`exists(cbc:InvoicedQuantity)`):
//! an element given but unreadable (`x#1` as a quantity) gets the reader's
//! `SYNTAX` finding, not also "missing".

use crate::model::Violation;

/// A term's element, as a syntax's table names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermAt {
    pub term: &'static str,
    /// The element's qualified path under the root (header terms) or under
    /// the line element (line terms), as an XPath: `cbc:ID`.
    pub xpath: &'static str,
    /// A term of an invoice line.
    pub line: bool,
}

/// A header term's entry in a syntax's table.
macro_rules! h {
    ($term:literal, $xpath:literal) => {
        Some(&TermAt {
            term: $term,
            xpath: $xpath,
            line: false,
        })
    };
}

/// A line term's entry.
macro_rules! l {
    ($term:literal, $xpath:literal) => {
        Some(&TermAt {
            term: $term,
            xpath: $xpath,
            line: true,
        })
    };
}

/// One element of a listed term.
#[derive(Debug, Clone, Copy)]
struct Mark {
    at: &'static TermAt,
    line: u32,
    column: u32,
    blank: bool,
}

/// A line's element and the marks of its terms.
#[derive(Debug, Clone, Copy)]
struct LineMark {
    line: u32,
    column: u32,
    /// Its marks: `lines_marks[first..end]`.
    first: u32,
    end: u32,
}

/// Where one document's listed terms are.
#[derive(Debug, Clone, Default)]
pub struct Positions {
    /// `/Invoice`, `/rsm:CrossIndustryInvoice`; empty when nothing was noted.
    root: &'static str,
    /// The line element's path under the root: `/cac:InvoiceLine`.
    line_step: &'static str,
    root_at: (u32, u32),
    header: Vec<Mark>,
    lines: Vec<LineMark>,
    line_marks: Vec<Mark>,
    /// The VAT breakdowns' elements (BG-23), in document order: XPath,
    /// line, column.
    breakdowns: Vec<(String, u32, u32)>,
    /// The last element noted is open and has no child yet (a leaf so far).
    open_leaf: bool,
    /// That element is a line term.
    open_line: bool,
}

impl Positions {
    pub fn new(root: &'static str, line_step: &'static str, root_at: (u32, u32)) -> Self {
        Positions {
            root,
            line_step,
            root_at,
            ..Positions::default()
        }
    }

    /// A line element opened at `at`.
    pub fn line_opened(&mut self, at: (u32, u32)) {
        let n = self.line_marks.len() as u32;
        self.lines.push(LineMark {
            line: at.0,
            column: at.1,
            first: n,
            end: n,
        });
    }

    /// A VAT breakdown element opened at `at`; `xpath` is its full XPath
    /// (a handful per document).
    pub fn breakdown_opened(&mut self, xpath: String, at: (u32, u32)) {
        self.breakdowns.push((xpath, at.0, at.1));
    }

    /// Give `v`, a finding about VAT breakdown `i` (0-based), the place of
    /// the breakdown's element (the schematron's context for most of them).
    pub fn stamp_breakdown(&self, v: &mut Violation, i: usize) {
        if v.location.is_some() {
            return;
        }
        match self.breakdowns.get(i) {
            Some((xpath, line, column)) => {
                v.location = Some(xpath.clone());
                v.line = (*line > 0).then_some(*line);
                v.column = (*column > 0).then_some(*column);
            }
            None => self.stamp(v, None),
        }
    }

    /// An element opened at `at`; `hit` is its term when the table lists it.
    pub fn opened(&mut self, hit: Option<&'static TermAt>, at: (u32, u32)) {
        self.open_leaf = false;
        let Some(t) = hit else { return };
        let mark = Mark {
            at: t,
            line: at.0,
            column: at.1,
            blank: false,
        };
        if t.line {
            let Some(lm) = self.lines.last_mut() else {
                return;
            };
            self.line_marks.push(mark);
            lm.end = self.line_marks.len() as u32;
        } else {
            self.header.push(mark);
        }
        self.open_leaf = true;
        self.open_line = t.line;
    }

    /// The element opened last closed with text `text` (only meaningful
    /// right after [`Positions::opened`] listed it: a leaf).
    pub fn closed(&mut self, text: &str) {
        if !self.open_leaf {
            return;
        }
        self.open_leaf = false;
        let blank = text.trim().is_empty();
        let last = if self.open_line {
            self.line_marks.last_mut()
        } else {
            self.header.last_mut()
        };
        if let Some(m) = last {
            m.blank = blank;
        }
    }

    fn mark(&self, term: &str, line: Option<usize>) -> Option<&Mark> {
        match line {
            None => self.header.iter().find(|m| m.at.term == term),
            Some(i) => {
                let lm = self.lines.get(i)?;
                self.line_marks[lm.first as usize..lm.end as usize]
                    .iter()
                    .find(|m| m.at.term == term)
            }
        }
    }

    /// Whether the element of `term` (of line `line`, 0-based) is in the
    /// document: `Some(blank)`, or `None` when it is not (or not listed).
    pub fn given(&self, term: &str, line: Option<usize>) -> Option<bool> {
        self.mark(term, line).map(|m| m.blank)
    }

    /// Give `v`, a finding about `v.term` (of line `line`), the place of
    /// the term's element; without one, the place of the rule's context as
    /// the schematron reports it: the line element, or the root. A finding
    /// that has a place keeps it.
    pub fn stamp(&self, v: &mut Violation, line: Option<usize>) {
        if v.location.is_some() || self.root.is_empty() {
            return;
        }
        let mut location = String::with_capacity(64);
        location.push_str(self.root);
        let mut at = self.root_at;
        if let Some(i) = line {
            if let Some(lm) = self.lines.get(i) {
                location.push_str(self.line_step);
                location.push_str(&format!("[{}]", i + 1));
                at = (lm.line, lm.column);
            }
        }
        // The term's element; without it, the group that should hold it
        // (a missing country code is reported on its address).
        let mark = self
            .mark(&v.term, line)
            .or_else(|| group_of(&v.term).and_then(|g| self.mark(g, line)));
        if let Some(m) = mark {
            location.push('/');
            location.push_str(m.at.xpath);
            at = (m.line, m.column);
        }
        v.location = Some(location);
        v.line = (at.0 > 0).then_some(at.0);
        v.column = (at.1 > 0).then_some(at.1);
    }
}

/// The group whose element holds `term`'s, for a finding on a term that
/// is missing.
fn group_of(term: &str) -> Option<&'static str> {
    Some(match term {
        "BT-40" => "BG-5",
        "BT-55" => "BG-8",
        "BT-106" | "BT-107" | "BT-108" | "BT-109" | "BT-112" | "BT-113" | "BT-114" | "BT-115" => {
            "BG-22"
        }
        _ => return None,
    })
}

/// The UBL elements of the terms quai places (`path` relative to the root,
/// as the reader sees it).
pub fn ubl_term(path: &str) -> Option<&'static TermAt> {
    let line = path
        .strip_prefix("InvoiceLine/")
        .or_else(|| path.strip_prefix("CreditNoteLine/"));
    if let Some(rest) = line {
        return match rest {
            "ID" => l!("BT-126", "cbc:ID"),
            "InvoicedQuantity" => l!("BT-129", "cbc:InvoicedQuantity"),
            "CreditedQuantity" => l!("BT-129", "cbc:CreditedQuantity"),
            "LineExtensionAmount" => l!("BT-131", "cbc:LineExtensionAmount"),
            "InvoicePeriod" => l!("BG-26", "cac:InvoicePeriod"),
            "Item/Name" => l!("BT-153", "cac:Item/cbc:Name"),
            "Item/ClassifiedTaxCategory/ID" => {
                l!("BT-151", "cac:Item/cac:ClassifiedTaxCategory/cbc:ID")
            }
            "Item/ClassifiedTaxCategory/Percent" => {
                l!("BT-152", "cac:Item/cac:ClassifiedTaxCategory/cbc:Percent")
            }
            "Price/PriceAmount" => l!("BT-146", "cac:Price/cbc:PriceAmount"),
            "Price/BaseQuantity" => l!("BT-149", "cac:Price/cbc:BaseQuantity"),
            "Price/AllowanceCharge/BaseAmount" => {
                l!("BT-148", "cac:Price/cac:AllowanceCharge/cbc:BaseAmount")
            }
            _ => None,
        };
    }
    match path {
        "CustomizationID" => h!("BT-24", "cbc:CustomizationID"),
        "ProfileID" => h!("BT-23", "cbc:ProfileID"),
        "ID" => h!("BT-1", "cbc:ID"),
        "IssueDate" => h!("BT-2", "cbc:IssueDate"),
        "DueDate" => h!("BT-9", "cbc:DueDate"),
        "InvoiceTypeCode" => h!("BT-3", "cbc:InvoiceTypeCode"),
        "CreditNoteTypeCode" => h!("BT-3", "cbc:CreditNoteTypeCode"),
        "DocumentCurrencyCode" => h!("BT-5", "cbc:DocumentCurrencyCode"),
        "TaxCurrencyCode" => h!("BT-6", "cbc:TaxCurrencyCode"),
        "BuyerReference" => h!("BT-10", "cbc:BuyerReference"),
        "InvoicePeriod" => h!("BG-14", "cac:InvoicePeriod"),
        "AccountingSupplierParty/Party/EndpointID" => h!("BT-34", "cac:AccountingSupplierParty/cac:Party/cbc:EndpointID"),
        "AccountingSupplierParty/Party/PostalAddress" => h!("BG-5", "cac:AccountingSupplierParty/cac:Party/cac:PostalAddress"),
        "AccountingSupplierParty/Party/PostalAddress/Country/IdentificationCode" => h!("BT-40", "cac:AccountingSupplierParty/cac:Party/cac:PostalAddress/cac:Country/cbc:IdentificationCode"),
        "AccountingSupplierParty/Party/PartyLegalEntity/RegistrationName" => h!("BT-27", "cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName"),
        "AccountingSupplierParty/Party/PartyLegalEntity/CompanyID" => h!("BT-30", "cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:CompanyID"),
        "AccountingCustomerParty/Party/EndpointID" => h!("BT-49", "cac:AccountingCustomerParty/cac:Party/cbc:EndpointID"),
        "AccountingCustomerParty/Party/PostalAddress" => h!("BG-8", "cac:AccountingCustomerParty/cac:Party/cac:PostalAddress"),
        "AccountingCustomerParty/Party/PostalAddress/Country/IdentificationCode" => h!("BT-55", "cac:AccountingCustomerParty/cac:Party/cac:PostalAddress/cac:Country/cbc:IdentificationCode"),
        "AccountingCustomerParty/Party/PartyLegalEntity/RegistrationName" => h!("BT-44", "cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName"),
        "AccountingCustomerParty/Party/PartyLegalEntity/CompanyID" => h!("BT-47", "cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:CompanyID"),
        "TaxTotal/TaxAmount" => h!("BT-110", "cac:TaxTotal/cbc:TaxAmount"),
        "LegalMonetaryTotal" => h!("BG-22", "cac:LegalMonetaryTotal"),
        "LegalMonetaryTotal/LineExtensionAmount" => h!("BT-106", "cac:LegalMonetaryTotal/cbc:LineExtensionAmount"),
        "LegalMonetaryTotal/TaxExclusiveAmount" => h!("BT-109", "cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount"),
        "LegalMonetaryTotal/TaxInclusiveAmount" => h!("BT-112", "cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount"),
        "LegalMonetaryTotal/AllowanceTotalAmount" => h!("BT-107", "cac:LegalMonetaryTotal/cbc:AllowanceTotalAmount"),
        "LegalMonetaryTotal/ChargeTotalAmount" => h!("BT-108", "cac:LegalMonetaryTotal/cbc:ChargeTotalAmount"),
        "LegalMonetaryTotal/PrepaidAmount" => h!("BT-113", "cac:LegalMonetaryTotal/cbc:PrepaidAmount"),
        "LegalMonetaryTotal/PayableRoundingAmount" => h!("BT-114", "cac:LegalMonetaryTotal/cbc:PayableRoundingAmount"),
        "LegalMonetaryTotal/PayableAmount" => h!("BT-115", "cac:LegalMonetaryTotal/cbc:PayableAmount"),
        _ => None,
    }
}

const CII_LINE: &str = "SupplyChainTradeTransaction/IncludedSupplyChainTradeLineItem";

/// The CII elements of the terms quai places.
pub fn cii_term(path: &str) -> Option<&'static TermAt> {
    if let Some(rest) = path
        .strip_prefix(CII_LINE)
        .and_then(|r| r.strip_prefix('/'))
    {
        return match rest {
            "AssociatedDocumentLineDocument/LineID" => l!("BT-126", "ram:AssociatedDocumentLineDocument/ram:LineID"),
            "SpecifiedTradeProduct/Name" => l!("BT-153", "ram:SpecifiedTradeProduct/ram:Name"),
            "SpecifiedLineTradeAgreement/NetPriceProductTradePrice/ChargeAmount" => l!("BT-146", "ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice/ram:ChargeAmount"),
            "SpecifiedLineTradeAgreement/GrossPriceProductTradePrice/ChargeAmount" => l!("BT-148", "ram:SpecifiedLineTradeAgreement/ram:GrossPriceProductTradePrice/ram:ChargeAmount"),
            "SpecifiedLineTradeDelivery/BilledQuantity" => l!("BT-129", "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity"),
            "SpecifiedLineTradeSettlement/ApplicableTradeTax/CategoryCode" => l!("BT-151", "ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode"),
            "SpecifiedLineTradeSettlement/ApplicableTradeTax/RateApplicablePercent" => l!("BT-152", "ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/ram:RateApplicablePercent"),
            "SpecifiedLineTradeSettlement/BillingSpecifiedPeriod" => l!("BG-26", "ram:SpecifiedLineTradeSettlement/ram:BillingSpecifiedPeriod"),
            "SpecifiedLineTradeSettlement/SpecifiedTradeSettlementLineMonetarySummation/LineTotalAmount" => l!("BT-131", "ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount"),
            _ => None,
        };
    }
    match path {
        "ExchangedDocumentContext/GuidelineSpecifiedDocumentContextParameter/ID" => h!("BT-24", "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID"),
        "ExchangedDocumentContext/BusinessProcessSpecifiedDocumentContextParameter/ID" => h!("BT-23", "rsm:ExchangedDocumentContext/ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID"),
        "ExchangedDocument/ID" => h!("BT-1", "rsm:ExchangedDocument/ram:ID"),
        "ExchangedDocument/TypeCode" => h!("BT-3", "rsm:ExchangedDocument/ram:TypeCode"),
        "ExchangedDocument/IssueDateTime/DateTimeString" => h!("BT-2", "rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement/BuyerReference" => h!("BT-10", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:BuyerReference"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement/SellerTradeParty/Name" => h!("BT-27", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:SellerTradeParty/ram:Name"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement/SellerTradeParty/PostalTradeAddress" => h!("BG-5", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:SellerTradeParty/ram:PostalTradeAddress"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement/SellerTradeParty/PostalTradeAddress/CountryID" => h!("BT-40", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:SellerTradeParty/ram:PostalTradeAddress/ram:CountryID"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement/SellerTradeParty/URIUniversalCommunication/URIID" => h!("BT-34", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:SellerTradeParty/ram:URIUniversalCommunication/ram:URIID"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement/BuyerTradeParty/Name" => h!("BT-44", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:BuyerTradeParty/ram:Name"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement/BuyerTradeParty/PostalTradeAddress" => h!("BG-8", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:BuyerTradeParty/ram:PostalTradeAddress"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement/BuyerTradeParty/PostalTradeAddress/CountryID" => h!("BT-55", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:BuyerTradeParty/ram:PostalTradeAddress/ram:CountryID"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement/BuyerTradeParty/URIUniversalCommunication/URIID" => h!("BT-49", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/InvoiceCurrencyCode" => h!("BT-5", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:InvoiceCurrencyCode"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/TaxCurrencyCode" => h!("BT-6", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:TaxCurrencyCode"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/BillingSpecifiedPeriod" => h!("BG-14", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:BillingSpecifiedPeriod"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/SpecifiedTradeSettlementHeaderMonetarySummation" => h!("BG-22", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeSettlementHeaderMonetarySummation"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/SpecifiedTradeSettlementHeaderMonetarySummation/LineTotalAmount" => h!("BT-106", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:LineTotalAmount"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/SpecifiedTradeSettlementHeaderMonetarySummation/ChargeTotalAmount" => h!("BT-108", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:ChargeTotalAmount"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/SpecifiedTradeSettlementHeaderMonetarySummation/AllowanceTotalAmount" => h!("BT-107", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:AllowanceTotalAmount"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/SpecifiedTradeSettlementHeaderMonetarySummation/TaxBasisTotalAmount" => h!("BT-109", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:TaxBasisTotalAmount"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/SpecifiedTradeSettlementHeaderMonetarySummation/TaxTotalAmount" => h!("BT-110", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:TaxTotalAmount"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/SpecifiedTradeSettlementHeaderMonetarySummation/GrandTotalAmount" => h!("BT-112", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:GrandTotalAmount"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/SpecifiedTradeSettlementHeaderMonetarySummation/TotalPrepaidAmount" => h!("BT-113", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:TotalPrepaidAmount"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/SpecifiedTradeSettlementHeaderMonetarySummation/RoundingAmount" => h!("BT-114", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:RoundingAmount"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/SpecifiedTradeSettlementHeaderMonetarySummation/DuePayableAmount" => h!("BT-115", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:DuePayableAmount"),
        _ => None,
    }
}

/// The CII VAT breakdown element (BG-23).
pub const CII_BREAKDOWN: &str =
    "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/ApplicableTradeTax";

/// Whether `path` is the CII line element.
pub fn cii_line(path: &str) -> bool {
    path == CII_LINE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_finding_gets_its_terms_place_or_the_lines() {
        let mut p = Positions::new("/Invoice", "/cac:InvoiceLine", (2, 1));
        p.opened(ubl_term("ID"), (5, 3));
        p.closed("INV-1");
        p.line_opened((10, 3));
        p.opened(ubl_term("InvoiceLine/InvoicedQuantity"), (12, 5));
        p.closed("");
        p.line_opened((20, 3));
        let mut v = Violation::fatal("BR-22", "BT-129", "x");
        p.stamp(&mut v, Some(0));
        assert_eq!(
            v.location.as_deref(),
            Some("/Invoice/cac:InvoiceLine[1]/cbc:InvoicedQuantity")
        );
        assert_eq!((v.line, v.column), (Some(12), Some(5)));
        assert_eq!(p.given("BT-129", Some(0)), Some(true));
        assert_eq!(p.given("BT-129", Some(1)), None);
        let mut v = Violation::fatal("BR-22", "BT-129", "x");
        p.stamp(&mut v, Some(1));
        assert_eq!(v.location.as_deref(), Some("/Invoice/cac:InvoiceLine[2]"));
        assert_eq!(v.line, Some(20));
        let mut v = Violation::fatal("BR-02", "BT-1", "x");
        p.stamp(&mut v, None);
        assert_eq!(v.location.as_deref(), Some("/Invoice/cbc:ID"));
        assert_eq!(p.given("BT-1", None), Some(false));
        let mut v = Violation::fatal("BR-05", "BT-5", "x");
        p.stamp(&mut v, None);
        assert_eq!(v.location.as_deref(), Some("/Invoice"));
        assert_eq!((v.line, v.column), (Some(2), Some(1)));
    }
}
