//! The canonical EN 16931 invoice.
//!
//! Every reader (UBL, CII, Factur-X, EDIFACT) produces this one shape, and
//! every rule in `validate` reads only this shape. Field names follow the
//! semantic model; the doc comment of each field names its BT/BG term so a
//! rule message can point a supplier at the right place. Amounts are
//! `rust_decimal::Decimal` (never floats) and keep the scale they were written
//! with, which the BR-DEC rules need. Absent terms are `None` / empty, never
//! defaulted, because presence is what most rules check.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The syntax a document was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Syntax {
    Ubl,
    Cii,
    FacturX,
    Edifact,
}

impl Syntax {
    pub fn as_str(self) -> &'static str {
        match self {
            Syntax::Ubl => "ubl",
            Syntax::Cii => "cii",
            Syntax::FacturX => "facturx",
            Syntax::Edifact => "edifact",
        }
    }
}

/// Factur-X / ZUGFeRD / CIUS profile, from BT-24 (specification identifier)
/// or the PDF's metadata. `Minimum` and `BasicWl` are not full invoices: they
/// are stored as such and validated only for what their profile carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Profile {
    Minimum,
    BasicWl,
    Basic,
    En16931,
    Extended,
    Xrechnung,
    PeppolBis3,
    /// A BT-24 value quai does not know; validated as EN 16931.
    Other,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Minimum => "MINIMUM",
            Profile::BasicWl => "BASIC WL",
            Profile::Basic => "BASIC",
            Profile::En16931 => "EN16931",
            Profile::Extended => "EXTENDED",
            Profile::Xrechnung => "XRECHNUNG",
            Profile::PeppolBis3 => "PEPPOL BIS 3",
            Profile::Other => "OTHER",
        }
    }

    /// MINIMUM and BASIC WL carry no lines: they are booking aids, not invoices.
    pub fn is_partial(self) -> bool {
        matches!(self, Profile::Minimum | Profile::BasicWl)
    }

    /// The profile named by a BT-24 specification identifier (UBL
    /// `cbc:CustomizationID`, CII `GuidelineSpecifiedDocumentContextParameter/ram:ID`).
    /// Factur-X 1.0, ZUGFeRD 2.x, XRechnung (all versions, incl. the
    /// extension) and Peppol BIS 3 are recognised; any other CIUS declared
    /// `urn:cen.eu:en16931:2017#compliant#...` is EN 16931; anything else is
    /// `Other`.
    pub fn from_specification_id(id: &str) -> Profile {
        let id = id.trim().to_ascii_lowercase();
        if id.contains("xrechnung") {
            Profile::Xrechnung
        } else if id.contains("peppol.eu:2017:poacc:billing") {
            Profile::PeppolBis3
        } else if id.contains(":extended") {
            Profile::Extended
        } else if id.ends_with(":minimum") {
            Profile::Minimum
        } else if id.ends_with(":basicwl") {
            Profile::BasicWl
        } else if id.ends_with(":basic") {
            Profile::Basic
        } else if id.ends_with(":comfort") || id.ends_with(":komfort") {
            // ZUGFeRD 1.0 COMFORT, the forerunner of EN 16931.
            Profile::En16931
        } else if id == "urn:cen.eu:en16931:2017"
            || id.ends_with(":en16931")
            || id.starts_with("urn:cen.eu:en16931:2017#compliant#")
        {
            Profile::En16931
        } else {
            Profile::Other
        }
    }

    /// The profile named by a Factur-X / ZUGFeRD XMP `fx:ConformanceLevel`
    /// (`MINIMUM`, `BASIC WL`, `BASIC`, `EN 16931`, `EXTENDED`, `XRECHNUNG`;
    /// ZUGFeRD 1.0 used `COMFORT` for what became EN 16931).
    pub fn from_conformance_level(level: &str) -> Option<Profile> {
        let level: String = level
            .trim()
            .to_ascii_uppercase()
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '_')
            .collect();
        Some(match level.as_str() {
            "MINIMUM" => Profile::Minimum,
            "BASICWL" => Profile::BasicWl,
            "BASIC" => Profile::Basic,
            "EN16931" | "COMFORT" => Profile::En16931,
            "EXTENDED" => Profile::Extended,
            "XRECHNUNG" => Profile::Xrechnung,
            _ => return None,
        })
    }
}

/// Whether the document is an invoice or a credit note (syntax root element).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    #[default]
    Invoice,
    CreditNote,
}

/// An identifier with its optional scheme (e.g. `0088` for GLN, `0009` SIRET).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Identifier {
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub scheme: Option<String>,
}

impl Identifier {
    pub fn new(value: impl Into<String>) -> Self {
        Identifier {
            value: value.into(),
            scheme: None,
        }
    }
}

/// A postal address (BG-5 seller, BG-8 buyer, BG-12 tax representative,
/// BG-15 deliver-to).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Address {
    /// BT-35 / BT-50 / BT-64 / BT-75
    pub line1: Option<String>,
    /// BT-36 / BT-51 / BT-65 / BT-76
    pub line2: Option<String>,
    /// BT-162 / BT-163 / BT-164 / BT-165
    pub line3: Option<String>,
    /// BT-37 / BT-52 / BT-66 / BT-77
    pub city: Option<String>,
    /// BT-38 / BT-53 / BT-67 / BT-78
    pub post_code: Option<String>,
    /// BT-39 / BT-54 / BT-68 / BT-79
    pub subdivision: Option<String>,
    /// BT-40 / BT-55 / BT-69 / BT-80 (ISO 3166-1 alpha-2)
    pub country_code: Option<String>,
}

/// A contact (BG-6 seller, BG-9 buyer).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Contact {
    /// BT-41 / BT-56
    pub name: Option<String>,
    /// BT-42 / BT-57
    pub phone: Option<String>,
    /// BT-43 / BT-58
    pub email: Option<String>,
}

/// Seller (BG-4) or buyer (BG-7). Terms that exist for only one of the two
/// stay `None`/empty for the other.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Party {
    /// BT-27 / BT-44
    pub name: Option<String>,
    /// BT-28 / BT-45
    pub trading_name: Option<String>,
    /// BT-29 (seller, 0..n) / BT-46 (buyer, 0..1)
    pub identifiers: Vec<Identifier>,
    /// BT-30 / BT-47
    pub legal_registration_id: Option<Identifier>,
    /// BT-31 / BT-48
    pub vat_id: Option<String>,
    /// BT-32 (seller tax registration identifier, e.g. FC scheme)
    pub tax_registration_id: Option<String>,
    /// BT-33 (seller additional legal information)
    pub additional_legal_info: Option<String>,
    /// BT-34 / BT-49
    pub electronic_address: Option<Identifier>,
    /// BG-5 / BG-8
    pub address: Option<Address>,
    /// BG-6 / BG-9
    pub contact: Option<Contact>,
}

/// Payee (BG-10).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Payee {
    /// BT-59
    pub name: Option<String>,
    /// BT-60
    pub identifier: Option<Identifier>,
    /// BT-61
    pub legal_registration_id: Option<Identifier>,
}

/// Seller tax representative party (BG-11).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TaxRepresentative {
    /// BT-62
    pub name: Option<String>,
    /// BT-63
    pub vat_id: Option<String>,
    /// BG-12
    pub address: Option<Address>,
}

/// Delivery information (BG-13).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Delivery {
    /// BT-70
    pub party_name: Option<String>,
    /// BT-71
    pub location_id: Option<Identifier>,
    /// BT-72
    pub actual_delivery_date: Option<NaiveDate>,
    /// BG-15
    pub address: Option<Address>,
}

/// A period (BG-14 invoicing period, BG-26 line period).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Period {
    /// BT-73 / BT-134
    pub start: Option<NaiveDate>,
    /// BT-74 / BT-135
    pub end: Option<NaiveDate>,
}

/// Preceding invoice reference (BG-3).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PrecedingInvoice {
    /// BT-25
    pub number: Option<String>,
    /// BT-26
    pub issue_date: Option<NaiveDate>,
}

/// Invoice note (BG-1).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Note {
    /// BT-21
    pub subject_code: Option<String>,
    /// BT-22
    pub text: String,
}

/// Credit transfer (BG-17).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CreditTransfer {
    /// BT-84
    pub account_id: Option<String>,
    /// BT-85
    pub account_name: Option<String>,
    /// BT-86
    pub service_provider_id: Option<String>,
}

/// Payment card information (BG-18).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PaymentCard {
    /// BT-87
    pub primary_account_number: Option<String>,
    /// BT-88
    pub holder_name: Option<String>,
}

/// Direct debit (BG-19).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DirectDebit {
    /// BT-89
    pub mandate_reference: Option<String>,
    /// BT-90
    pub creditor_id: Option<String>,
    /// BT-91
    pub debited_account_id: Option<String>,
}

/// Payment instructions (BG-16).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PaymentInstructions {
    /// BT-81
    pub means_code: Option<String>,
    /// BT-82
    pub means_text: Option<String>,
    /// BT-83
    pub remittance_information: Option<String>,
    /// BG-17
    pub credit_transfers: Vec<CreditTransfer>,
    /// BG-18
    pub card: Option<PaymentCard>,
    /// BG-19
    pub direct_debit: Option<DirectDebit>,
    /// The syntaxes repeat the payment means element once per account;
    /// BT-81/BT-82 above come from the first, these are the others' (each
    /// is checked against BR-49 and the code list like the first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub further_means: Vec<PaymentMeans>,
    /// True when the document gave BG-16 terms (CII remittance information
    /// BT-83, creditor id BT-90, mandate BT-89) but no payment means
    /// element at all: BR-49 asks a type code of a payment means element,
    /// so it has nothing to ask here.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_means_element: bool,
}

/// The type code and text of a payment means element after the first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PaymentMeans {
    /// BT-81
    pub code: Option<String>,
    /// BT-82
    pub text: Option<String>,
}

/// Document-level allowance (BG-20) or charge (BG-21).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DocumentAllowanceCharge {
    /// BT-92 / BT-99
    pub amount: Option<Decimal>,
    /// BT-93 / BT-100
    pub base_amount: Option<Decimal>,
    /// BT-94 / BT-101
    pub percentage: Option<Decimal>,
    /// BT-95 / BT-102
    pub vat_category: Option<String>,
    /// BT-96 / BT-103
    pub vat_rate: Option<Decimal>,
    /// BT-97 / BT-104
    pub reason: Option<String>,
    /// BT-98 / BT-105
    pub reason_code: Option<String>,
}

/// Document totals (BG-22).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Totals {
    /// BT-106 Sum of invoice line net amount
    pub line_net_total: Option<Decimal>,
    /// BT-107 Sum of allowances on document level
    pub allowance_total: Option<Decimal>,
    /// BT-108 Sum of charges on document level
    pub charge_total: Option<Decimal>,
    /// BT-109 Invoice total amount without VAT
    pub total_without_vat: Option<Decimal>,
    /// BT-110 Invoice total VAT amount (in the invoice currency)
    pub vat_total: Option<Decimal>,
    /// BT-111 Invoice total VAT amount in accounting currency (BT-6)
    pub vat_total_accounting: Option<Decimal>,
    /// How many more BT-110 amounts (in the invoice currency) the document
    /// gave after the first one kept above: the syntaxes can repeat the
    /// element, EN 16931 allows one (BR-CO-15 counts them).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub vat_total_repeats: u32,
    /// BT-112 Invoice total amount with VAT
    pub total_with_vat: Option<Decimal>,
    /// BT-113 Paid amount
    pub prepaid: Option<Decimal>,
    /// BT-114 Rounding amount
    pub rounding: Option<Decimal>,
    /// BT-115 Amount due for payment
    pub amount_due: Option<Decimal>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// VAT breakdown (BG-23).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VatBreakdown {
    /// BT-116 VAT category taxable amount
    pub taxable_amount: Option<Decimal>,
    /// BT-117 VAT category tax amount
    pub tax_amount: Option<Decimal>,
    /// BT-118 VAT category code (S, Z, E, AE, K, G, O, L, M)
    pub category: Option<String>,
    /// BT-119 VAT category rate
    pub rate: Option<Decimal>,
    /// BT-120 VAT exemption reason text
    pub exemption_reason: Option<String>,
    /// BT-121 VAT exemption reason code
    pub exemption_reason_code: Option<String>,
}

/// Additional supporting document (BG-24). The embedded object itself (BT-125)
/// is not kept in the canonical model: only its presence, type and size.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Attachment {
    /// BT-122
    pub reference: Option<String>,
    /// BT-123
    pub description: Option<String>,
    /// BT-124
    pub external_uri: Option<String>,
    /// BT-125 mime code
    pub mime_code: Option<String>,
    /// BT-125 filename
    pub filename: Option<String>,
    /// Size in bytes of the decoded BT-125 object, when one was embedded.
    pub embedded_size: Option<u64>,
}

/// Line-level allowance (BG-27) or charge (BG-28).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LineAllowanceCharge {
    /// BT-136 / BT-141
    pub amount: Option<Decimal>,
    /// BT-137 / BT-142
    pub base_amount: Option<Decimal>,
    /// BT-138 / BT-143
    pub percentage: Option<Decimal>,
    /// BT-139 / BT-144
    pub reason: Option<String>,
    /// BT-140 / BT-145
    pub reason_code: Option<String>,
}

/// Item classification identifier (BT-158).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Classification {
    pub value: String,
    pub scheme: Option<String>,
    pub scheme_version: Option<String>,
}

/// Item attribute (BG-32).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ItemAttribute {
    /// BT-160
    pub name: String,
    /// BT-161
    pub value: String,
}

/// Invoice line (BG-25).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Line {
    /// BT-126
    pub id: Option<String>,
    /// BT-127
    pub note: Option<String>,
    /// BT-128
    pub object_id: Option<Identifier>,
    /// BT-129
    pub quantity: Option<Decimal>,
    /// BT-130
    pub unit_code: Option<String>,
    /// BT-131
    pub net_amount: Option<Decimal>,
    /// BT-132
    pub order_line_reference: Option<String>,
    /// BT-133
    pub buyer_accounting_reference: Option<String>,
    /// BG-26
    pub period: Option<Period>,
    /// BG-27
    pub allowances: Vec<LineAllowanceCharge>,
    /// BG-28
    pub charges: Vec<LineAllowanceCharge>,
    /// BT-146 Item net price
    pub net_price: Option<Decimal>,
    /// BT-147 Item price discount
    pub price_discount: Option<Decimal>,
    /// BT-148 Item gross price
    pub gross_price: Option<Decimal>,
    /// BT-149 Item price base quantity
    pub price_base_quantity: Option<Decimal>,
    /// BT-150 Item price base quantity unit of measure code
    pub price_base_quantity_unit: Option<String>,
    /// BT-151 Invoiced item VAT category code
    pub vat_category: Option<String>,
    /// BT-152 Invoiced item VAT rate
    pub vat_rate: Option<Decimal>,
    /// BT-153 Item name
    pub item_name: Option<String>,
    /// BT-154 Item description
    pub item_description: Option<String>,
    /// BT-155 Item Seller's identifier
    pub seller_item_id: Option<String>,
    /// BT-156 Item Buyer's identifier
    pub buyer_item_id: Option<String>,
    /// BT-157 Item standard identifier
    pub standard_item_id: Option<Identifier>,
    /// BT-158 Item classification identifiers
    pub classifications: Vec<Classification>,
    /// BT-159 Item country of origin
    pub origin_country: Option<String>,
    /// BG-32 Item attributes
    pub attributes: Vec<ItemAttribute>,
    /// BT-X-8 line status, CII `AssociatedDocumentLineDocument/
    /// LineStatusReasonCode` (Factur-X EXTENDED sub-invoice lines, the
    /// French CTC's EXT-FR-FE-163: `DETAIL`, `GROUP`, `INFORMATION`); not an
    /// EN 16931 term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_status: Option<String>,
    /// BT-X-304 parent line id (Factur-X EXTENDED sub-invoice lines); not an
    /// EN 16931 term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_line_id: Option<String>,
}

/// The canonical EN 16931 invoice (or credit note).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Invoice {
    /// Syntax the document was read from (not an EN 16931 term).
    pub syntax: Option<Syntax>,
    /// Profile / CIUS, when known (not an EN 16931 term).
    pub profile: Option<Profile>,
    /// Invoice or credit note root (not an EN 16931 term).
    pub kind: DocumentKind,

    /// BT-1 Invoice number
    pub number: Option<String>,
    /// BT-2 Invoice issue date
    pub issue_date: Option<NaiveDate>,
    /// BT-3 Invoice type code (UNTDID 1001: 380, 381, 384, 389, 751...)
    pub type_code: Option<String>,
    /// BT-5 Invoice currency code
    pub currency: Option<String>,
    /// BT-6 VAT accounting currency code
    pub vat_currency: Option<String>,
    /// BT-7 Value added tax point date
    pub tax_point_date: Option<NaiveDate>,
    /// BT-8 Value added tax point date code
    pub tax_point_date_code: Option<String>,
    /// BT-9 Payment due date
    pub due_date: Option<NaiveDate>,
    /// BT-10 Buyer reference
    pub buyer_reference: Option<String>,
    /// BT-11 Project reference
    pub project_reference: Option<String>,
    /// BT-12 Contract reference
    pub contract_reference: Option<String>,
    /// BT-13 Purchase order reference
    pub purchase_order_reference: Option<String>,
    /// BT-14 Sales order reference
    pub sales_order_reference: Option<String>,
    /// BT-15 Receiving advice reference
    pub receiving_advice_reference: Option<String>,
    /// BT-16 Despatch advice reference
    pub despatch_advice_reference: Option<String>,
    /// BT-17 Tender or lot reference
    pub tender_reference: Option<String>,
    /// BT-18 Invoiced object identifier
    pub invoiced_object_id: Option<Identifier>,
    /// BT-19 Buyer accounting reference
    pub buyer_accounting_reference: Option<String>,
    /// BT-20 Payment terms
    pub payment_terms: Option<String>,
    /// BG-1 Invoice notes
    pub notes: Vec<Note>,
    /// BT-23 Business process type
    pub business_process: Option<String>,
    /// BT-24 Specification identifier
    pub specification_id: Option<String>,
    /// BG-3 Preceding invoice references
    pub preceding_invoices: Vec<PrecedingInvoice>,
    /// BG-4 Seller
    pub seller: Party,
    /// BG-7 Buyer
    pub buyer: Party,
    /// BG-10 Payee
    pub payee: Option<Payee>,
    /// BG-11 Seller tax representative
    pub tax_representative: Option<TaxRepresentative>,
    /// BG-13 Delivery information
    pub delivery: Option<Delivery>,
    /// BG-14 Invoicing period
    pub invoicing_period: Option<Period>,
    /// BG-16 Payment instructions
    pub payment: Option<PaymentInstructions>,
    /// BG-20 Document level allowances
    pub allowances: Vec<DocumentAllowanceCharge>,
    /// BG-21 Document level charges
    pub charges: Vec<DocumentAllowanceCharge>,
    /// BG-22 Document totals
    pub totals: Totals,
    /// BG-23 VAT breakdown
    pub vat_breakdown: Vec<VatBreakdown>,
    /// BG-24 Additional supporting documents
    pub attachments: Vec<Attachment>,
    /// BG-25 Invoice lines
    pub lines: Vec<Line>,
}

/// How serious a rule violation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The invoice is rejected.
    Fatal,
    /// Reported, the invoice is still accepted.
    Warning,
}

/// One broken rule, with enough context for a supplier's accountant to act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Rule id: `BR-01`, `BR-CO-10`, `BR-S-08`, or `SYNTAX` for syntax problems.
    pub rule: String,
    /// The term concerned: `BT-1`, `BG-23`...
    pub term: String,
    pub severity: Severity,
    /// A message a supplier's accountant can act on.
    pub message: String,
    /// The XPath of the node the finding is about, as a schematron's
    /// `location` (`/Invoice/cac:InvoiceLine[2]/cbc:ID`), when the reader
    /// knows it (structure and syntax findings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The node's line in the document (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The node's column on that line (1-based, in bytes of the UTF-8 text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

impl Violation {
    /// Give this finding, if it has no place yet, the place `positions`
    /// finds for its rule and term in the group `at`.
    pub fn place_by(&mut self, positions: &crate::positions::Positions, at: crate::positions::At) {
        if self.location.is_some() {
            return;
        }
        if let Some(p) = positions.place(&self.rule, &self.term, at) {
            self.location = Some(p.location);
            self.line = p.line;
            self.column = p.column;
        }
    }

    pub fn fatal(
        rule: impl Into<String>,
        term: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Violation {
            rule: rule.into(),
            term: term.into(),
            severity: Severity::Fatal,
            message: message.into(),
            location: None,
            line: None,
            column: None,
        }
    }

    pub fn warning(
        rule: impl Into<String>,
        term: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Violation {
            rule: rule.into(),
            term: term.into(),
            severity: Severity::Warning,
            message: message.into(),
            location: None,
            line: None,
            column: None,
        }
    }
}

/// What a reader gives back for one document: the invoice as far as it could
/// be read, and the syntax problems met on the way (a date that is not a date,
/// an amount that is not a number), already expressed as violations with
/// rule `SYNTAX` and the term concerned.
#[derive(Debug, Clone, Default)]
pub struct ReadOutcome {
    pub invoice: Invoice,
    pub issues: Vec<Violation>,
    /// The structure rules of the document's syntax and profile it breaks,
    /// found while reading (for CII: the Factur-X profile schematron's
    /// occurrence, code-value and not-used rules), with their official ids.
    pub structure: Vec<Violation>,
    /// Where the listed terms are in the document, for the rules' findings
    /// (kept until the document is validated).
    pub positions: crate::positions::Positions,
}
