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

/// Where a finding is: the XPath of its node, its line and column (1-based;
/// `None` when unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub location: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
}

/// Which element a listed term's path is relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The root: a header term.
    Header,
    /// An invoice line (BG-25).
    Line,
    /// A VAT breakdown (BG-23).
    Breakdown,
    /// A document level allowance or charge (BG-20, BG-21), its terms
    /// named by the allowance's ids (BT-92 .. BT-98).
    AllowanceCharge,
}

/// A term's element, as a syntax's table names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermAt {
    pub term: &'static str,
    /// The element's qualified path under its scope's element, as an
    /// XPath: `cbc:ID`.
    pub xpath: &'static str,
    pub scope: Scope,
}

/// A header term's entry in a syntax's table.
macro_rules! h {
    ($term:literal, $xpath:literal) => {
        Some(&TermAt {
            term: $term,
            xpath: $xpath,
            scope: Scope::Header,
        })
    };
}

/// A line term's entry.
macro_rules! l {
    ($term:literal, $xpath:literal) => {
        Some(&TermAt {
            term: $term,
            xpath: $xpath,
            scope: Scope::Line,
        })
    };
}

/// A VAT breakdown term's entry.
macro_rules! b {
    ($term:literal, $xpath:literal) => {
        Some(&TermAt {
            term: $term,
            xpath: $xpath,
            scope: Scope::Breakdown,
        })
    };
}

/// A document level allowance or charge term's entry.
macro_rules! a {
    ($term:literal, $xpath:literal) => {
        Some(&TermAt {
            term: $term,
            xpath: $xpath,
            scope: Scope::AllowanceCharge,
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

/// A line's or a breakdown's element and the marks of its terms.
#[derive(Debug, Clone, Copy)]
struct GroupMark {
    line: u32,
    column: u32,
    /// Its marks: `marks[first..end]` of its kind.
    first: u32,
    end: u32,
}

/// The elements of one kind of group (the lines, the breakdowns) and the
/// marks of their terms.
#[derive(Debug, Clone, Default)]
struct Groups {
    groups: Vec<GroupMark>,
    marks: Vec<Mark>,
}

impl Groups {
    fn opened(&mut self, at: (u32, u32)) {
        let n = self.marks.len() as u32;
        self.groups.push(GroupMark {
            line: at.0,
            column: at.1,
            first: n,
            end: n,
        });
    }

    fn push(&mut self, mark: Mark) -> bool {
        let Some(g) = self.groups.last_mut() else {
            return false;
        };
        self.marks.push(mark);
        g.end = self.marks.len() as u32;
        true
    }

    fn mark(&self, i: usize, term: &str) -> Option<&Mark> {
        let g = self.groups.get(i)?;
        self.marks[g.first as usize..g.end as usize]
            .iter()
            .find(|m| m.at.term == term)
    }
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
    lines: Groups,
    breakdowns: Groups,
    /// The breakdowns' XPaths (a handful per document).
    breakdown_xpaths: Vec<String>,
    /// The document level allowances and charges, in document order; their
    /// XPaths, and whether each became a charge (`Some(true)`), an
    /// allowance, or neither (an unreadable ChargeIndicator).
    allowance_charges: Groups,
    ac_xpaths: Vec<String>,
    ac_kinds: Vec<Option<bool>>,
    /// The last element noted is open and has no child yet (a leaf so far).
    open_leaf: Option<Scope>,
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
        self.lines.opened(at);
    }

    /// A VAT breakdown element opened at `at`; `xpath` is its full XPath.
    pub fn breakdown_opened(&mut self, xpath: String, at: (u32, u32)) {
        self.breakdowns.opened(at);
        self.breakdown_xpaths.push(xpath);
    }

    /// A document level allowance or charge element opened at `at`.
    pub fn allowance_charge_opened(&mut self, xpath: String, at: (u32, u32)) {
        self.allowance_charges.opened(at);
        self.ac_xpaths.push(xpath);
    }

    /// The last allowance or charge element closed: a charge, an
    /// allowance, or neither (not in the invoice).
    pub fn allowance_charge_closed(&mut self, charge: Option<bool>) {
        if self.ac_kinds.len() < self.ac_xpaths.len() {
            self.ac_kinds.push(charge);
        }
    }

    /// The group index of the `i`-th allowance (`charge` false) or charge.
    fn allowance_charge(&self, i: usize, charge: bool) -> Option<usize> {
        self.ac_kinds
            .iter()
            .enumerate()
            .filter(|(_, k)| **k == Some(charge))
            .nth(i)
            .map(|(g, _)| g)
    }

    /// An element opened at `at`; `hit` is its term when the table lists it.
    pub fn opened(&mut self, hit: Option<&'static TermAt>, at: (u32, u32)) {
        self.open_leaf = None;
        let Some(t) = hit else { return };
        let mark = Mark {
            at: t,
            line: at.0,
            column: at.1,
            blank: false,
        };
        let kept = match t.scope {
            Scope::Header => {
                self.header.push(mark);
                true
            }
            Scope::Line => self.lines.push(mark),
            Scope::Breakdown => self.breakdowns.push(mark),
            Scope::AllowanceCharge => self.allowance_charges.push(mark),
        };
        if kept {
            self.open_leaf = Some(t.scope);
        }
    }

    /// The element opened last closed with text `text` (only meaningful
    /// right after [`Positions::opened`] listed it: a leaf).
    pub fn closed(&mut self, text: &str) {
        let Some(scope) = self.open_leaf.take() else {
            return;
        };
        let last = match scope {
            Scope::Header => self.header.last_mut(),
            Scope::Line => self.lines.marks.last_mut(),
            Scope::Breakdown => self.breakdowns.marks.last_mut(),
            Scope::AllowanceCharge => self.allowance_charges.marks.last_mut(),
        };
        if let Some(m) = last {
            m.blank = text.trim().is_empty();
        }
    }

    fn mark(&self, term: &str, at: At) -> Option<&Mark> {
        match at {
            At::Header => self.header.iter().find(|m| m.at.term == term),
            At::Line(i) => self.lines.mark(i, term),
            At::Breakdown(i) => self.breakdowns.mark(i, term),
            At::Allowance(i) | At::Charge(i) => {
                let g = self.allowance_charge(i, matches!(at, At::Charge(_)))?;
                self.allowance_charges.mark(g, allowance_term(term))
            }
        }
    }

    /// Whether the element of `term` (in the group `at`) is in the
    /// document: `Some(blank)`, or `None` when it is not (or not listed).
    pub fn given(&self, term: &str, at: At) -> Option<bool> {
        self.mark(term, at).map(|m| m.blank)
    }

    /// The place of a finding of `rule` about `term` (in the group `at`):
    /// the term's element; without one, the group that should hold it (a
    /// missing country code is reported on its address), else the place of
    /// the rule's context as the schematron reports it: the line, the VAT
    /// breakdown, or the root. `None` for a document without a table.
    /// (`Violation::place_by` applies it to a finding that has no place.)
    pub fn place(&self, rule: &str, term: &str, at: At) -> Option<Placement> {
        if self.root.is_empty() {
            return None;
        }
        let mut location = String::with_capacity(64);
        let mut place = self.root_at;
        let group = match at {
            At::Header => None,
            At::Line(i) => self.lines.groups.get(i).map(|g| (g, i)),
            At::Breakdown(i) => self.breakdowns.groups.get(i).map(|g| (g, i)),
            At::Allowance(i) | At::Charge(i) => self
                .allowance_charge(i, matches!(at, At::Charge(_)))
                .and_then(|g| self.allowance_charges.groups.get(g).map(|m| (m, g))),
        };
        match (at, group) {
            (At::Breakdown(_), Some((g, i))) => {
                location.push_str(&self.breakdown_xpaths[i]);
                place = (g.line, g.column);
            }
            (At::Allowance(_) | At::Charge(_), Some((g, i))) => {
                location.push_str(&self.ac_xpaths[i]);
                place = (g.line, g.column);
            }
            (At::Line(_), Some((g, i))) => {
                location.push_str(self.root);
                location.push_str(self.line_step);
                location.push_str(&format!("[{}]", i + 1));
                place = (g.line, g.column);
            }
            _ => location.push_str(self.root),
        }
        let at = if group.is_some() { at } else { At::Header };
        // The artefacts state a breakdown's or an allowance's rules on its
        // element (or its TaxCategory), its code lists on the code's element.
        if matches!(at, At::Breakdown(_) | At::Allowance(_) | At::Charge(_))
            && !rule.starts_with("BR-CL-")
        {
            return Some(placement(location, place));
        }
        let mark = self.mark(term, at).or_else(|| {
            group_of(term, self.root.starts_with("/rsm:")).and_then(|g| self.mark(g, at))
        });
        if let Some(m) = mark {
            location.push('/');
            location.push_str(m.at.xpath);
            place = (m.line, m.column);
        }
        Some(placement(location, place))
    }
}

fn placement(location: String, (line, column): (u32, u32)) -> Placement {
    Placement {
        location,
        line: (line > 0).then_some(line),
        column: (column > 0).then_some(column),
    }
}

/// Which group a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    Header,
    /// Line `i` (0-based).
    Line(usize),
    /// VAT breakdown `i` (0-based).
    Breakdown(usize),
    /// Document level allowance `i` (0-based, among the allowances).
    Allowance(usize),
    /// Document level charge `i` (0-based, among the charges).
    Charge(usize),
}

/// A charge's term under the allowance's id that the table marks it with
/// (BT-99 .. BT-105 are BT-92 .. BT-98 of a charge).
fn allowance_term(term: &str) -> &str {
    match term {
        "BT-99" => "BT-92",
        "BT-100" => "BT-93",
        "BT-101" => "BT-94",
        "BT-102" => "BT-95",
        "BT-103" => "BT-96",
        "BT-104" => "BT-97",
        "BT-105" => "BT-98",
        t => t,
    }
}

/// The group whose element holds `term`'s, for a finding on a term that
/// is missing.
fn group_of(term: &str, cii: bool) -> Option<&'static str> {
    Some(match term {
        "BT-40" => "BG-5",
        "BT-34" => "BG-34-COMM",
        "BT-49" => "BG-49-COMM",
        "BT-55" => "BG-8",
        // BT-111 is in CII's monetary summation (UBL has it in a TaxTotal).
        "BT-111" if cii => "BG-22",
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
    if let Some(rest) = path.strip_prefix("AllowanceCharge/") {
        return match rest {
            "Amount" => a!("BT-92", "cbc:Amount"),
            "BaseAmount" => a!("BT-93", "cbc:BaseAmount"),
            "MultiplierFactorNumeric" => a!("BT-94", "cbc:MultiplierFactorNumeric"),
            "TaxCategory/ID" => a!("BT-95", "cac:TaxCategory/cbc:ID"),
            "TaxCategory/Percent" => a!("BT-96", "cac:TaxCategory/cbc:Percent"),
            "AllowanceChargeReason" => a!("BT-97", "cbc:AllowanceChargeReason"),
            "AllowanceChargeReasonCode" => a!("BT-98", "cbc:AllowanceChargeReasonCode"),
            _ => None,
        };
    }
    if let Some(rest) = path.strip_prefix("TaxTotal/TaxSubtotal/") {
        return match rest {
            "TaxableAmount" => b!("BT-116", "cbc:TaxableAmount"),
            "TaxAmount" => b!("BT-117", "cbc:TaxAmount"),
            "TaxCategory/ID" => b!("BT-118", "cac:TaxCategory/cbc:ID"),
            "TaxCategory/Percent" => b!("BT-119", "cac:TaxCategory/cbc:Percent"),
            "TaxCategory/TaxExemptionReason" => {
                b!("BT-120", "cac:TaxCategory/cbc:TaxExemptionReason")
            }
            "TaxCategory/TaxExemptionReasonCode" => {
                b!("BT-121", "cac:TaxCategory/cbc:TaxExemptionReasonCode")
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
        "PaymentMeans/PaymentMeansCode" => h!("BT-81", "cac:PaymentMeans/cbc:PaymentMeansCode"),
        "PaymentMeans/PayeeFinancialAccount/ID" => h!("BT-84", "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID"),
        "TaxRepresentativeParty/PostalAddress/Country/IdentificationCode" => h!("BT-69", "cac:TaxRepresentativeParty/cac:PostalAddress/cac:Country/cbc:IdentificationCode"),
        "Delivery/DeliveryLocation/Address/Country/IdentificationCode" => h!("BT-80", "cac:Delivery/cac:DeliveryLocation/cac:Address/cac:Country/cbc:IdentificationCode"),
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
    if let Some(rest) = path
        .strip_prefix(CII_ALLOWANCE_CHARGE)
        .and_then(|r| r.strip_prefix('/'))
    {
        return match rest {
            "ActualAmount" => a!("BT-92", "ram:ActualAmount"),
            "BasisAmount" => a!("BT-93", "ram:BasisAmount"),
            "CalculationPercent" => a!("BT-94", "ram:CalculationPercent"),
            "CategoryTradeTax/CategoryCode" => a!("BT-95", "ram:CategoryTradeTax/ram:CategoryCode"),
            "CategoryTradeTax/RateApplicablePercent" => {
                a!("BT-96", "ram:CategoryTradeTax/ram:RateApplicablePercent")
            }
            "Reason" => a!("BT-97", "ram:Reason"),
            "ReasonCode" => a!("BT-98", "ram:ReasonCode"),
            _ => None,
        };
    }
    if let Some(rest) = path
        .strip_prefix(CII_BREAKDOWN)
        .and_then(|r| r.strip_prefix('/'))
    {
        return match rest {
            "BasisAmount" => b!("BT-116", "ram:BasisAmount"),
            "CalculatedAmount" => b!("BT-117", "ram:CalculatedAmount"),
            "CategoryCode" => b!("BT-118", "ram:CategoryCode"),
            "RateApplicablePercent" => b!("BT-119", "ram:RateApplicablePercent"),
            "ExemptionReason" => b!("BT-120", "ram:ExemptionReason"),
            "ExemptionReasonCode" => b!("BT-121", "ram:ExemptionReasonCode"),
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
        // The communication elements holding BT-34 / BT-49 (not EN 16931
        // terms: the CII BR-62 / BR-63 test their scheme whenever they exist).
        "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement/SellerTradeParty/URIUniversalCommunication" => h!("BG-34-COMM", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:SellerTradeParty/ram:URIUniversalCommunication"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement/BuyerTradeParty/URIUniversalCommunication" => h!("BG-49-COMM", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:BuyerTradeParty/ram:URIUniversalCommunication"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement/SellerTradeParty/URIUniversalCommunication/URIID" => h!("BT-34", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:SellerTradeParty/ram:URIUniversalCommunication/ram:URIID"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement/BuyerTradeParty/Name" => h!("BT-44", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:BuyerTradeParty/ram:Name"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement/BuyerTradeParty/PostalTradeAddress" => h!("BG-8", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:BuyerTradeParty/ram:PostalTradeAddress"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement/BuyerTradeParty/PostalTradeAddress/CountryID" => h!("BT-55", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:BuyerTradeParty/ram:PostalTradeAddress/ram:CountryID"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement/BuyerTradeParty/URIUniversalCommunication/URIID" => h!("BT-49", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/InvoiceCurrencyCode" => h!("BT-5", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:InvoiceCurrencyCode"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/TaxCurrencyCode" => h!("BT-6", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:TaxCurrencyCode"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/BillingSpecifiedPeriod" => h!("BG-14", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:BillingSpecifiedPeriod"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/SpecifiedTradeSettlementPaymentMeans/TypeCode" => h!("BT-81", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/SpecifiedTradeSettlementPaymentMeans/PayeePartyCreditorFinancialAccount/IBANID" => h!("BT-84", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeSettlementPaymentMeans/ram:PayeePartyCreditorFinancialAccount/ram:IBANID"),
        "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/SpecifiedTradeSettlementPaymentMeans/PayeePartyCreditorFinancialAccount/ProprietaryID" => h!("BT-84", "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeSettlementPaymentMeans/ram:PayeePartyCreditorFinancialAccount/ram:ProprietaryID"),
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

/// The CII document level allowance or charge element (BG-20, BG-21).
pub const CII_ALLOWANCE_CHARGE: &str =
    "SupplyChainTradeTransaction/ApplicableHeaderTradeSettlement/SpecifiedTradeAllowanceCharge";

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
        let v = p.place("BR-22", "BT-129", At::Line(0)).unwrap();
        assert_eq!(
            v.location,
            "/Invoice/cac:InvoiceLine[1]/cbc:InvoicedQuantity"
        );
        assert_eq!((v.line, v.column), (Some(12), Some(5)));
        assert_eq!(p.given("BT-129", At::Line(0)), Some(true));
        assert_eq!(p.given("BT-129", At::Line(1)), None);
        let v = p.place("BR-22", "BT-129", At::Line(1)).unwrap();
        assert_eq!(v.location, "/Invoice/cac:InvoiceLine[2]");
        assert_eq!(v.line, Some(20));
        let v = p.place("BR-02", "BT-1", At::Header).unwrap();
        assert_eq!(v.location, "/Invoice/cbc:ID");
        assert_eq!(p.given("BT-1", At::Header), Some(false));
        let v = p.place("BR-05", "BT-5", At::Header).unwrap();
        assert_eq!(v.location, "/Invoice");
        assert_eq!((v.line, v.column), (Some(2), Some(1)));
    }
}
