//! The table of implemented rules: the single source of each rule's term and
//! severity (violations read them from here) and of `docs/rules.md`.

use crate::model::Severity;

/// One implemented rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleInfo {
    /// Rule id as in the CEN schematron: `BR-CO-10`.
    pub id: &'static str,
    /// The main BT/BG term the rule is about.
    pub term: &'static str,
    /// The schematron flag: `fatal` rejects, `warning` informs.
    pub severity: Severity,
    /// What the rule asks, in short.
    pub text: &'static str,
}

const F: Severity = Severity::Fatal;
const W: Severity = Severity::Warning;

macro_rules! rules {
    ($(($id:literal, $term:literal, $sev:expr, $text:literal)),* $(,)?) => {
        &[$(RuleInfo { id: $id, term: $term, severity: $sev, text: $text }),*]
    };
}

pub static RULES: &[RuleInfo] = rules![
    // --- Core: presence and simple conditions (BR-01 .. BR-67) ---
    ("BR-01", "BT-24", F, "An invoice shall have a specification identifier."),
    ("BR-02", "BT-1", F, "An invoice shall have an invoice number."),
    ("BR-03", "BT-2", F, "An invoice shall have an issue date."),
    ("BR-04", "BT-3", F, "An invoice shall have an invoice type code."),
    ("BR-05", "BT-5", F, "An invoice shall have an invoice currency code."),
    ("BR-06", "BT-27", F, "An invoice shall contain the seller name."),
    ("BR-07", "BT-44", F, "An invoice shall contain the buyer name."),
    ("BR-08", "BG-5", F, "An invoice shall contain the seller postal address."),
    ("BR-09", "BT-40", F, "The seller postal address shall contain a country code."),
    ("BR-10", "BG-8", F, "An invoice shall contain the buyer postal address."),
    ("BR-11", "BT-55", F, "The buyer postal address shall contain a country code."),
    ("BR-12", "BT-106", F, "An invoice shall have the sum of invoice line net amounts."),
    ("BR-13", "BT-109", F, "An invoice shall have the total amount without VAT."),
    ("BR-14", "BT-112", F, "An invoice shall have the total amount with VAT."),
    ("BR-15", "BT-115", F, "An invoice shall have the amount due for payment."),
    ("BR-16", "BG-25", F, "An invoice shall have at least one invoice line."),
    ("BR-17", "BT-59", F, "The payee name shall be given when the payee differs from the seller."),
    ("BR-18", "BT-62", F, "A seller tax representative shall have a name."),
    ("BR-19", "BG-12", F, "A seller tax representative shall have a postal address."),
    ("BR-20", "BT-69", F, "The tax representative postal address shall contain a country code."),
    ("BR-21", "BT-126", F, "Each invoice line shall have a line identifier."),
    ("BR-22", "BT-129", F, "Each invoice line shall have an invoiced quantity."),
    ("BR-23", "BT-130", F, "Each invoice line shall have a quantity unit of measure code."),
    ("BR-24", "BT-131", F, "Each invoice line shall have a line net amount."),
    ("BR-25", "BT-153", F, "Each invoice line shall contain the item name."),
    ("BR-26", "BT-146", F, "Each invoice line shall contain the item net price."),
    ("BR-27", "BT-146", F, "The item net price shall not be negative."),
    ("BR-28", "BT-148", F, "The item gross price shall not be negative."),
    ("BR-29", "BG-14", F, "The invoicing period end date shall not be before its start date."),
    ("BR-30", "BG-26", F, "A line period end date shall not be before its start date."),
    ("BR-31", "BT-92", F, "Each document level allowance shall have an amount."),
    ("BR-32", "BT-95", F, "Each document level allowance shall have a VAT category code."),
    ("BR-33", "BT-97", F, "Each document level allowance shall have a reason or a reason code."),
    ("BR-36", "BT-99", F, "Each document level charge shall have an amount."),
    ("BR-37", "BT-102", F, "Each document level charge shall have a VAT category code."),
    ("BR-38", "BT-104", F, "Each document level charge shall have a reason or a reason code."),
    ("BR-41", "BT-136", F, "Each line allowance shall have an amount."),
    ("BR-42", "BT-139", F, "Each line allowance shall have a reason or a reason code."),
    ("BR-43", "BT-141", F, "Each line charge shall have an amount."),
    ("BR-44", "BT-144", F, "Each line charge shall have a reason or a reason code."),
    ("BR-45", "BT-116", F, "Each VAT breakdown shall have a taxable amount."),
    ("BR-46", "BT-117", F, "Each VAT breakdown shall have a tax amount."),
    ("BR-47", "BT-118", F, "Each VAT breakdown shall have a VAT category code."),
    ("BR-48", "BT-119", F, "Each VAT breakdown shall have a rate, except category O."),
    ("BR-49", "BT-81", F, "A payment instruction shall have a payment means type code."),
    ("BR-50", "BT-84", F, "Credit transfer information shall contain the payment account identifier."),
    ("BR-51", "BT-87", W, "A full payment card number should not be given (PCI: at most the first 6 and last 4 digits, 10 characters); a warning in UBL, fatal in CII."),
    ("BR-52", "BT-122", F, "Each additional supporting document shall have a reference."),
    ("BR-53", "BT-111", F, "With a VAT accounting currency, the total VAT in that currency shall be given."),
    ("BR-54", "BG-32", F, "Each item attribute shall have a name and a value."),
    ("BR-55", "BT-25", F, "Each preceding invoice reference shall contain the preceding invoice number."),
    ("BR-56", "BT-63", F, "A seller tax representative shall have a VAT identifier."),
    ("BR-57", "BT-80", F, "Each deliver-to address shall contain a country code."),
    ("BR-61", "BT-84", F, "For a credit transfer (means 30 or 58) the payment account identifier shall be given."),
    ("BR-62", "BT-34", F, "The seller electronic address shall have a scheme identifier."),
    ("BR-63", "BT-49", F, "The buyer electronic address shall have a scheme identifier."),
    ("BR-64", "BT-157", F, "The item standard identifier shall have a scheme identifier."),
    ("BR-65", "BT-158", F, "The item classification identifier shall have a scheme identifier."),
    // --- Conditions and calculations (BR-CO) ---
    ("BR-CO-03", "BT-7", F, "The VAT point date and the VAT point date code are mutually exclusive."),
    ("BR-CO-04", "BT-151", F, "Each invoice line shall have a VAT category code."),
    ("BR-CO-09", "BT-31", F, "VAT identifiers shall start with an ISO 3166-1 alpha-2 country prefix (EL for Greece)."),
    ("BR-CO-10", "BT-106", F, "Sum of line net amounts = Σ line net amounts (BT-131)."),
    ("BR-CO-11", "BT-107", F, "Sum of allowances = Σ document level allowance amounts (BT-92)."),
    ("BR-CO-12", "BT-108", F, "Sum of charges = Σ document level charge amounts (BT-99)."),
    ("BR-CO-13", "BT-109", F, "Total without VAT = BT-106 − BT-107 + BT-108."),
    ("BR-CO-14", "BT-110", F, "Total VAT = Σ VAT category tax amounts (BT-117)."),
    ("BR-CO-15", "BT-112", F, "Total with VAT = BT-109 + BT-110."),
    ("BR-CO-16", "BT-115", F, "Amount due = BT-112 − BT-113 + BT-114."),
    ("BR-CO-17", "BT-117", F, "VAT category tax amount = taxable amount × rate / 100, rounded to 2 decimals (±1 tolerance)."),
    ("BR-CO-18", "BG-23", F, "An invoice shall have at least one VAT breakdown."),
    ("BR-CO-19", "BG-14", F, "An invoicing period shall have a start date, an end date or both."),
    ("BR-CO-20", "BG-26", F, "A line period shall have a start date, an end date or both."),
    ("BR-CO-21", "BT-97", F, "Each document level allowance shall have a reason, a reason code or both."),
    ("BR-CO-22", "BT-104", F, "Each document level charge shall have a reason, a reason code or both."),
    ("BR-CO-23", "BT-139", F, "Each line allowance shall have a reason, a reason code or both."),
    ("BR-CO-24", "BT-144", F, "Each line charge shall have a reason, a reason code or both."),
    ("BR-CO-26", "BT-29", F, "The seller shall be identified by an identifier, a legal registration identifier or a VAT identifier."),
    // --- VAT category families (BR-S, BR-Z, BR-E, BR-AE, BR-IC, BR-G, BR-O, BR-AF, BR-AG, BR-B) ---
    ("BR-S-01", "BG-23", F, "Lines, allowances or charges in category S (standard rated) require at least one VAT breakdown with category S."),
    ("BR-S-02", "BT-31", F, "Invoice lines in category S require the seller VAT identifier, tax registration or tax representative VAT identifier (BT-31/BT-32/BT-63)."),
    ("BR-S-03", "BT-31", F, "Document level allowances in category S require the seller VAT identifier, tax registration or tax representative VAT identifier (BT-31/BT-32/BT-63)."),
    ("BR-S-04", "BT-31", F, "Document level charges in category S require the seller VAT identifier, tax registration or tax representative VAT identifier (BT-31/BT-32/BT-63)."),
    ("BR-S-05", "BT-152", F, "The VAT rate of an invoice line in category S shall be greater than 0."),
    ("BR-S-06", "BT-96", F, "The VAT rate of a document level allowance in category S shall be greater than 0."),
    ("BR-S-07", "BT-103", F, "The VAT rate of a document level charge in category S shall be greater than 0."),
    ("BR-S-08", "BT-116", F, "Per rate, the category S taxable amount = Σ line net amounts + charges − allowances of category S at that rate (±1.00)."),
    ("BR-S-09", "BT-117", F, "The category S tax amount = taxable amount × rate / 100 (±1.00)."),
    ("BR-S-10", "BT-120", F, "A category S VAT breakdown shall not have an exemption reason or reason code."),
    ("BR-Z-01", "BG-23", F, "Lines, allowances or charges in category Z (zero rated) require exactly one VAT breakdown with category Z."),
    ("BR-Z-02", "BT-31", F, "Invoice lines in category Z require the seller VAT identifier, tax registration or tax representative VAT identifier (BT-31/BT-32/BT-63)."),
    ("BR-Z-03", "BT-31", F, "Document level allowances in category Z require the seller VAT identifier, tax registration or tax representative VAT identifier (BT-31/BT-32/BT-63)."),
    ("BR-Z-04", "BT-31", F, "Document level charges in category Z require the seller VAT identifier, tax registration or tax representative VAT identifier (BT-31/BT-32/BT-63)."),
    ("BR-Z-05", "BT-152", F, "The VAT rate of an invoice line in category Z shall be 0."),
    ("BR-Z-06", "BT-96", F, "The VAT rate of a document level allowance in category Z shall be 0."),
    ("BR-Z-07", "BT-103", F, "The VAT rate of a document level charge in category Z shall be 0."),
    ("BR-Z-08", "BT-116", F, "The category Z taxable amount = Σ line net amounts + charges − allowances of category Z."),
    ("BR-Z-09", "BT-117", F, "The category Z tax amount shall be 0."),
    ("BR-Z-10", "BT-120", F, "A category Z VAT breakdown shall have an exemption reason or reason code."),
    ("BR-E-01", "BG-23", F, "Lines, allowances or charges in category E (exempt from VAT) require exactly one VAT breakdown with category E."),
    ("BR-E-02", "BT-31", F, "Invoice lines in category E require the seller VAT identifier, tax registration or tax representative VAT identifier (BT-31/BT-32/BT-63)."),
    ("BR-E-03", "BT-31", F, "Document level allowances in category E require the seller VAT identifier, tax registration or tax representative VAT identifier (BT-31/BT-32/BT-63)."),
    ("BR-E-04", "BT-31", F, "Document level charges in category E require the seller VAT identifier, tax registration or tax representative VAT identifier (BT-31/BT-32/BT-63)."),
    ("BR-E-05", "BT-152", F, "The VAT rate of an invoice line in category E shall be 0."),
    ("BR-E-06", "BT-96", F, "The VAT rate of a document level allowance in category E shall be 0."),
    ("BR-E-07", "BT-103", F, "The VAT rate of a document level charge in category E shall be 0."),
    ("BR-E-08", "BT-116", F, "The category E taxable amount = Σ line net amounts + charges − allowances of category E."),
    ("BR-E-09", "BT-117", F, "The category E tax amount shall be 0."),
    ("BR-E-10", "BT-120", F, "A category E VAT breakdown shall have an exemption reason or reason code."),
    ("BR-AE-01", "BG-23", F, "Lines, allowances or charges in category AE (reverse charge) require exactly one VAT breakdown with category AE."),
    ("BR-AE-02", "BT-31", F, "Invoice lines in category AE require the seller VAT/tax registration (BT-31/BT-32/BT-63) and the buyer VAT or legal registration identifier (BT-48/BT-47)."),
    ("BR-AE-03", "BT-31", F, "Document level allowances in category AE require the seller VAT/tax registration (BT-31/BT-32/BT-63) and the buyer VAT or legal registration identifier (BT-48/BT-47)."),
    ("BR-AE-04", "BT-31", F, "Document level charges in category AE require the seller VAT/tax registration (BT-31/BT-32/BT-63) and the buyer VAT or legal registration identifier (BT-48/BT-47)."),
    ("BR-AE-05", "BT-152", F, "The VAT rate of an invoice line in category AE shall be 0."),
    ("BR-AE-06", "BT-96", F, "The VAT rate of a document level allowance in category AE shall be 0."),
    ("BR-AE-07", "BT-103", F, "The VAT rate of a document level charge in category AE shall be 0."),
    ("BR-AE-08", "BT-116", F, "The category AE taxable amount = Σ line net amounts + charges − allowances of category AE."),
    ("BR-AE-09", "BT-117", F, "The category AE tax amount shall be 0."),
    ("BR-AE-10", "BT-120", F, "A category AE VAT breakdown shall have an exemption reason or reason code."),
    ("BR-IC-01", "BG-23", F, "Lines, allowances or charges in category K (intra-community supply) require exactly one VAT breakdown with category K."),
    ("BR-IC-02", "BT-31", F, "Invoice lines in category K require the seller VAT identifier (BT-31 or BT-63) and the buyer VAT identifier (BT-48)."),
    ("BR-IC-03", "BT-31", F, "Document level allowances in category K require the seller VAT identifier (BT-31 or BT-63) and the buyer VAT identifier (BT-48)."),
    ("BR-IC-04", "BT-31", F, "Document level charges in category K require the seller VAT identifier (BT-31 or BT-63) and the buyer VAT identifier (BT-48)."),
    ("BR-IC-05", "BT-152", F, "The VAT rate of an invoice line in category K shall be 0."),
    ("BR-IC-06", "BT-96", F, "The VAT rate of a document level allowance in category K shall be 0."),
    ("BR-IC-07", "BT-103", F, "The VAT rate of a document level charge in category K shall be 0."),
    ("BR-IC-08", "BT-116", F, "The category K taxable amount = Σ line net amounts + charges − allowances of category K."),
    ("BR-IC-09", "BT-117", F, "The category K tax amount shall be 0."),
    ("BR-IC-10", "BT-120", F, "A category K VAT breakdown shall have an exemption reason or reason code."),
    ("BR-IC-11", "BT-72", F, "An intra-community supply requires the actual delivery date or the invoicing period."),
    ("BR-IC-12", "BT-80", F, "An intra-community supply requires the deliver-to country code."),
    ("BR-G-01", "BG-23", F, "Lines, allowances or charges in category G (export outside the EU) require exactly one VAT breakdown with category G."),
    ("BR-G-02", "BT-31", F, "Invoice lines in category G require the seller VAT identifier (BT-31 or BT-63)."),
    ("BR-G-03", "BT-31", F, "Document level allowances in category G require the seller VAT identifier (BT-31 or BT-63)."),
    ("BR-G-04", "BT-31", F, "Document level charges in category G require the seller VAT identifier (BT-31 or BT-63)."),
    ("BR-G-05", "BT-152", F, "The VAT rate of an invoice line in category G shall be 0."),
    ("BR-G-06", "BT-96", F, "The VAT rate of a document level allowance in category G shall be 0."),
    ("BR-G-07", "BT-103", F, "The VAT rate of a document level charge in category G shall be 0."),
    ("BR-G-08", "BT-116", F, "The category G taxable amount = Σ line net amounts + charges − allowances of category G."),
    ("BR-G-09", "BT-117", F, "The category G tax amount shall be 0."),
    ("BR-G-10", "BT-120", F, "A category G VAT breakdown shall have an exemption reason or reason code."),
    ("BR-O-01", "BG-23", F, "Lines, allowances or charges in category O (not subject to VAT) require exactly one VAT breakdown with category O."),
    ("BR-O-02", "BT-31", F, "Invoice lines in category O shall not carry the seller (BT-31), tax representative (BT-63) or buyer (BT-48) VAT identifier."),
    ("BR-O-03", "BT-31", F, "Document level allowances in category O shall not carry the seller (BT-31), tax representative (BT-63) or buyer (BT-48) VAT identifier."),
    ("BR-O-04", "BT-31", F, "Document level charges in category O shall not carry the seller (BT-31), tax representative (BT-63) or buyer (BT-48) VAT identifier."),
    ("BR-O-05", "BT-152", F, "The VAT rate of an invoice line in category O shall not be given."),
    ("BR-O-06", "BT-96", F, "The VAT rate of a document level allowance in category O shall not be given."),
    ("BR-O-07", "BT-103", F, "The VAT rate of a document level charge in category O shall not be given."),
    ("BR-O-08", "BT-116", F, "The category O taxable amount = Σ line net amounts + charges − allowances of category O."),
    ("BR-O-09", "BT-117", F, "The category O tax amount shall be 0."),
    ("BR-O-10", "BT-120", F, "A category O VAT breakdown shall have an exemption reason or reason code."),
    ("BR-O-11", "BG-23", F, "An invoice with a category O breakdown shall have no other VAT breakdown."),
    ("BR-O-12", "BT-151", F, "An invoice with a category O breakdown shall have no line in another category."),
    ("BR-O-13", "BT-95", F, "An invoice with a category O breakdown shall have no allowance in another category."),
    ("BR-O-14", "BT-102", F, "An invoice with a category O breakdown shall have no charge in another category."),
    ("BR-AF-01", "BG-23", F, "Lines, allowances or charges in category L (IGIC) require at least one VAT breakdown with category L."),
    ("BR-AF-02", "BT-31", F, "Invoice lines in category L require the seller VAT identifier, tax registration or tax representative VAT identifier (BT-31/BT-32/BT-63)."),
    ("BR-AF-03", "BT-31", F, "Document level allowances in category L require the seller VAT identifier, tax registration or tax representative VAT identifier (BT-31/BT-32/BT-63)."),
    ("BR-AF-04", "BT-31", F, "Document level charges in category L require the seller VAT identifier, tax registration or tax representative VAT identifier (BT-31/BT-32/BT-63)."),
    ("BR-AF-05", "BT-152", F, "The VAT rate of an invoice line in category L shall be 0 or greater."),
    ("BR-AF-06", "BT-96", F, "The VAT rate of a document level allowance in category L shall be 0 or greater."),
    ("BR-AF-07", "BT-103", F, "The VAT rate of a document level charge in category L shall be 0 or greater."),
    ("BR-AF-08", "BT-116", F, "Per rate, the category L taxable amount = Σ line net amounts + charges − allowances of category L at that rate (±1.00)."),
    ("BR-AF-09", "BT-117", F, "The category L tax amount = taxable amount × rate / 100 (±1.00)."),
    ("BR-AF-10", "BT-120", F, "A category L VAT breakdown shall not have an exemption reason or reason code."),
    ("BR-AG-01", "BG-23", F, "Lines, allowances or charges in category M (IPSI) require at least one VAT breakdown with category M."),
    ("BR-AG-02", "BT-31", F, "Invoice lines in category M require the seller VAT identifier, tax registration or tax representative VAT identifier (BT-31/BT-32/BT-63)."),
    ("BR-AG-03", "BT-31", F, "Document level allowances in category M require the seller VAT identifier, tax registration or tax representative VAT identifier (BT-31/BT-32/BT-63)."),
    ("BR-AG-04", "BT-31", F, "Document level charges in category M require the seller VAT identifier, tax registration or tax representative VAT identifier (BT-31/BT-32/BT-63)."),
    ("BR-AG-05", "BT-152", F, "The VAT rate of an invoice line in category M shall be 0 or greater."),
    ("BR-AG-06", "BT-96", F, "The VAT rate of a document level allowance in category M shall be 0 or greater."),
    ("BR-AG-07", "BT-103", F, "The VAT rate of a document level charge in category M shall be 0 or greater."),
    ("BR-AG-08", "BT-116", F, "Per rate, the category M taxable amount = Σ line net amounts + charges − allowances of category M at that rate (±1.00)."),
    ("BR-AG-09", "BT-117", F, "The category M tax amount = taxable amount × rate / 100 (±1.00)."),
    ("BR-AG-10", "BT-120", F, "A category M VAT breakdown shall not have an exemption reason or reason code."),
    ("BR-B-01", "BT-151", F, "Split payment (category B) is only for domestic Italian invoices."),
    ("BR-B-02", "BT-151", F, "Split payment (B) and standard rated (S) items shall not be mixed."),
    // --- Code lists (BR-CL) ---
    ("BR-CL-01", "BT-3", F, "The invoice type code shall be an invoice or credit note code of UNTDID 1001."),
    ("BR-CL-04", "BT-5", F, "The invoice currency code shall be an ISO 4217 code."),
    ("BR-CL-05", "BT-6", F, "The VAT accounting currency code shall be an ISO 4217 code."),
    ("BR-CL-06", "BT-8", F, "The VAT point date code shall be 3, 35 or 432 (UNTDID 2005)."),
    ("BR-CL-07", "BT-18", F, "The invoiced object identifier schemes (BT-18, and BT-128 on a line) shall be UNTDID 1153 codes."),
    ("BR-CL-08", "BT-21", F, "An invoice note's subject code (`#AAA#` at the start of a UBL note) shall be a UNTDID 4451 code."),
    ("BR-CL-10", "BT-29", F, "Party identifier schemes (BT-29, BT-46, BT-60) shall be ISO 6523 ICD codes (SEPA for seller and payee)."),
    ("BR-CL-11", "BT-30", F, "Legal registration identifier schemes (BT-30, BT-47, BT-61) shall be ISO 6523 ICD codes."),
    ("BR-CL-13", "BT-158", F, "Item classification schemes shall be UNTDID 7143 codes."),
    ("BR-CL-14", "BT-40", F, "Country codes (BT-40, BT-55, BT-69, BT-80) shall be ISO 3166-1 alpha-2 codes."),
    ("BR-CL-15", "BT-159", F, "The item country of origin shall be an ISO 3166-1 alpha-2 code."),
    ("BR-CL-16", "BT-81", F, "The payment means code shall be a UNCL 4461 code."),
    ("BR-CL-17", "BT-118", F, "VAT category codes of breakdowns, allowances and charges shall be in the UNCL 5305 subset (S Z E AE K G O L M B)."),
    ("BR-CL-18", "BT-151", F, "Line VAT category codes shall be in the UNCL 5305 subset."),
    ("BR-CL-19", "BT-98", F, "Allowance reason codes shall be UNCL 5189 codes."),
    ("BR-CL-20", "BT-105", F, "Charge reason codes shall be UNCL 7161 codes."),
    ("BR-CL-21", "BT-157", F, "Item standard identifier schemes shall be ISO 6523 ICD codes."),
    ("BR-CL-22", "BT-121", F, "VAT exemption reason codes shall be CEF VATEX codes."),
    ("BR-CL-23", "BT-130", F, "Unit codes (BT-130, BT-150) shall be UN/ECE Recommendation 20 or 21 codes (the artefact's list)."),
    ("BR-CL-25", "BT-34", F, "Electronic address schemes (BT-34, BT-49) shall be CEF EAS codes."),
    ("BR-CL-26", "BT-71", F, "The deliver-to location identifier scheme shall be an ISO 6523 ICD code."),
    ("BR-CL-24", "BT-125", F, "Attached documents shall be PDF, PNG, JPEG, CSV, XLSX or ODS."),
    // --- Decimals (BR-DEC) ---
    ("BR-DEC-01", "BT-92", F, "Document level allowance amount: at most 2 decimals."),
    ("BR-DEC-02", "BT-93", F, "Document level allowance base amount: at most 2 decimals."),
    ("BR-DEC-05", "BT-99", F, "Document level charge amount: at most 2 decimals."),
    ("BR-DEC-06", "BT-100", F, "Document level charge base amount: at most 2 decimals."),
    ("BR-DEC-09", "BT-106", F, "Sum of line net amounts: at most 2 decimals."),
    ("BR-DEC-10", "BT-107", F, "Sum of allowances: at most 2 decimals."),
    ("BR-DEC-11", "BT-108", F, "Sum of charges: at most 2 decimals."),
    ("BR-DEC-12", "BT-109", F, "Total without VAT: at most 2 decimals."),
    ("BR-DEC-13", "BT-110", F, "Total VAT: at most 2 decimals."),
    ("BR-DEC-14", "BT-112", F, "Total with VAT: at most 2 decimals."),
    ("BR-DEC-15", "BT-111", F, "Total VAT in accounting currency: at most 2 decimals."),
    ("BR-DEC-16", "BT-113", F, "Paid amount: at most 2 decimals."),
    ("BR-DEC-17", "BT-114", F, "Rounding amount: at most 2 decimals."),
    ("BR-DEC-18", "BT-115", F, "Amount due: at most 2 decimals."),
    ("BR-DEC-19", "BT-116", F, "VAT category taxable amount: at most 2 decimals."),
    ("BR-DEC-20", "BT-117", F, "VAT category tax amount: at most 2 decimals."),
    ("BR-DEC-23", "BT-131", F, "Line net amount: at most 2 decimals."),
    ("BR-DEC-24", "BT-136", F, "Line allowance amount: at most 2 decimals."),
    ("BR-DEC-25", "BT-137", F, "Line allowance base amount: at most 2 decimals."),
    ("BR-DEC-27", "BT-141", F, "Line charge amount: at most 2 decimals."),
    ("BR-DEC-28", "BT-142", F, "Line charge base amount: at most 2 decimals."),
];

/// `docs/rules.md`, generated from [`RULES`].
pub fn markdown() -> String {
    let mut s = String::from(
        "# EN 16931 business rules implemented by quai\n\n\
         Generated from `mappings/src/validate/catalog.rs` (the test \
         `validate::tests::rules_doc_is_current` keeps this file in step; \
         regenerate with `QUAI_BLESS=1 cargo test -p quai-mappings rules_doc`).\n\
         Rule ids, terms and severities follow the CEN schematron (EN 16931 \
         validation artefacts 1.3.16, see Artefacts). A fatal rule rejects the invoice; a \
         warning is reported and the invoice is accepted.\n\n",
    );
    s.push_str(crate::validate::ARTEFACTS_NOTE);
    s.push_str(&crate::validate::xsd::markdown());
    s.push_str(&crate::validate::fx_markdown());
    s.push_str(crate::validate::PROFILE_NOTE);
    s.push_str("\n| Rule | Term | Severity | What it checks |\n|---|---|---|---|\n");
    for r in RULES {
        let sev = match r.severity {
            Severity::Fatal => "fatal",
            Severity::Warning => "warning",
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.id, r.term, sev, r.text
        ));
    }
    s.push_str(&crate::validate::binding_markdown());
    s.push_str(crate::validate::NOT_IMPLEMENTED_NOTE);
    s
}
