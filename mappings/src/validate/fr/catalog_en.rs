//! The English text of every BR-FR rule of [`super::catalog`], whose own
//! texts are the French of the official artefacts: what a partner whose
//! `[[partner]] language` is `en` reads in its reports instead. Keyed by
//! the rule's CII id (its first UBL id when it has none); a test holds the
//! keys to the catalog's rules.

use super::catalog::{FrRule, RULES};

/// (CII id, or first UBL id, English text), in the catalog's order.
pub static TEXTS_EN: &[(&str, &str)] = &[
    ("BR-FR-01_BT-1", "The invoice number shall not exceed 35 characters."),
    ("BR-FR-02_BT-1", "The invoice number holds only alphanumeric characters and + - _ /, without spaces."),
    ("BR-FR-01_BT-25", "The preceding invoice number shall not exceed 35 characters."),
    ("BR-FR-02_BT-25", "The preceding invoice number holds only alphanumeric characters and + - _ /, without spaces."),
    ("BR-FR-03_BT-2", "The issue date shall have a year between 2000 and 2099."),
    ("BR-FR-03_BT-7", "The VAT point date shall have a year between 2000 and 2099."),
    ("BR-FR-03_BT-9", "The payment due date shall have a year between 2000 and 2099 (UBL: the invoice's cbc:DueDate)."),
    ("BR-FR-03_BT-26", "The preceding invoice's issue date shall have a year between 2000 and 2099."),
    ("BR-FR-03_BT-72", "The actual delivery date shall have a year between 2000 and 2099."),
    ("BR-FR-03_BT-73", "The invoicing period start date shall have a year between 2000 and 2099."),
    ("BR-FR-03_BT-74", "The invoicing period end date shall have a year between 2000 and 2099."),
    ("BR-FR-03_EXT-FR-FE-134", "The invoice line period start date shall have a year between 2000 and 2099."),
    ("BR-FR-03_EXT-FR-FE-135", "The invoice line period end date shall have a year between 2000 and 2099."),
    ("BR-FR-04_BT-3", "The document type code is one of 380 389 393 501 386 500 384 471 472 473 261 262 381 396 502 503."),
    ("BR-FR-05_BT-22_PMT", "The note on recovery costs (note PMT) is mandatory."),
    ("BR-FR-05_BT-22_PMD", "The note on late payment penalties (note PMD) is mandatory."),
    ("BR-FR-05_BT-22_AAB", "The note on the early payment discount or its absence (note AAB) is mandatory."),
    ("BR-FR-06_BT-21_PMT", "The subject code PMT appears only once among the notes."),
    ("BR-FR-06_BT-21_PMD", "The subject code PMD appears only once among the notes."),
    ("BR-FR-06_BT-21_AAB", "The subject code AAB appears only once among the notes."),
    ("BR-FR-06_BT-21_TXD", "The subject code TXD appears only once among the notes."),
    ("BR-FR-08_BT-23", "The billing framework is present and one of B1 S1 M1 B2 S2 M2 S3 B4 S4 M4 S5 S6 B7 S7 B8 S8 M8 B9 S9 M9."),
    ("BR-FR-09_BT-29", "The seller's SIRET (scheme 0009) has 14 digits and starts with its SIREN (BT-30, scheme 0002)."),
    ("BR-FR-09_BT-46", "The buyer's SIRET (scheme 0009) has 14 digits and starts with its SIREN (BT-47, scheme 0002)."),
    ("BR-FR-09_BT-60", "The payee's SIRET (scheme 0009) has 14 digits and starts with its SIREN."),
    ("BR-FR-09_BT-71", "The deliver-to location's SIRET (scheme 0009) has 14 digits."),
    ("BR-FR-10_BT-30", "The seller's SIREN (scheme 0002) is mandatory and has exactly 9 digits."),
    ("BR-FR-11_BT-47", "In BAR/B2B processing, the buyer's SIREN (scheme 0002) is mandatory and has exactly 9 digits."),
    ("BR-FR-32-LEGALID", "Every legal identifier of scheme 0002 has 9 digits."),
    ("BR-FR-32-GLOBALID", "Every party identifier of scheme 0002 or 0231 has 9 digits."),
    ("BR-FR-12_BT-49", "The buyer's electronic address (BT-49) is mandatory."),
    ("BR-FR-13_BT-34", "The seller's electronic address (BT-34) is mandatory."),
    ("BR-FR-21_BT-49", "In BAR/B2B processing other than self-billing, BT-49 starts with the buyer's SIREN and its scheme is 0225."),
    ("BR-FR-22_BT-34", "In BAR/B2B processing with self-billing, BT-34 starts with the seller's SIREN and its scheme is 0225."),
    ("BR-FR-23_BT-34", "An electronic address of scheme 0225 holds only alphanumeric characters and + - _ ."),
    ("BR-FR-23_BT-49", "An electronic address of scheme 0225 holds only alphanumeric characters and + - _ ."),
    ("BR-FR-24_BT-29", "A private identifier (scheme 0224) holds only alphanumeric characters and + - _ ."),
    ("BR-FR-24_BT-46", "A private identifier (scheme 0224) holds only alphanumeric characters and + - _ ."),
    ("BR-FR-25_BT-34", "The electronic address does not exceed 125 characters."),
    ("BR-FR-25_BT-49", "The electronic address does not exceed 125 characters."),
    ("BR-FR-26_BT-29", "A private identifier (scheme 0224) does not exceed 100 characters."),
    ("BR-FR-26_BT-46", "A private identifier (scheme 0224) does not exceed 100 characters."),
    ("BR-FR-CO-10_BT-29-1", "A seller identifier (BT-29) has a scheme (UBL; in CII, ram:ID without a scheme is allowed)."),
    ("BR-FR-CO-10_BT-29-2", "Each scheme appears only once among the seller's identifiers."),
    ("BR-FR-CO-10_BT-46-1", "A buyer identifier (BT-46) has a scheme (UBL)."),
    ("BR-FR-CO-10_BT-46-2", "Each scheme appears only once among the buyer's identifiers."),
    ("BR-FR-CO-10_BT-60-1", "A payee identifier (BT-60) has a scheme (UBL)."),
    ("BR-FR-CO-10_BT-71-1", "The deliver-to location identifier (BT-71) has a scheme (UBL)."),
    ("BR-FR-15_BT-95_BT-102", "The VAT category code of an allowance or charge is one of S E AE K G O Z."),
    ("BR-FR-15_BT-95_BT-102_LM", "Categories L and M do not apply in France."),
    ("BR-FR-15_BT-95_BT-118", "The VAT category code of a VAT breakdown is one of S E AE K G O Z."),
    ("BR-FR-15_BT-95_BT-118_LM", "Categories L and M do not apply in France."),
    ("BR-FR-15_BT-95_BT-151", "The VAT category code of a line is one of S E AE K G O Z."),
    ("BR-FR-15_BT-95_BT-151_LM", "Categories L and M do not apply in France."),
    ("BR-FR-16_BT-96_BT-103", "The VAT rate of an allowance or charge is an allowed French rate, without « % »."),
    ("BR-FR-16_BT-119", "The VAT rate of a VAT breakdown is an allowed French rate, without « % »."),
    ("BR-FR-16_BT-152", "The VAT rate of a line is an allowed French rate, without « % » (UBL: invoice lines only)."),
    ("BR-FR-17_BT-123", "The description of an attachment is one of the allowed codes (RIB, LISIBLE, FEUILLE_DE_STYLE, PJA, ...)."),
    ("BR-FR-18_BT-123", "Only one additional document has the description LISIBLE."),
    ("BR-FR-20_BT-21", "A BAR note is B2B, B2BINT, B2C, B2CINT, OUTOFSCOPE or ARCHIVEONLY."),
    ("BR-FR-31_BT-21", "Only one BAR note carries a processing value."),
    ("BR-FR-CO-03_BT-3", "A global discount credit note (262) has a contract number (BT-12) and a complete invoicing period (UBL: credit notes only)."),
    ("BR-FR-CO-04_BT-4", "A corrective invoice (384, 471, 472, 473) has one and only one preceding invoice reference (UBL: invoices only)."),
    ("BR-FR-CO-05_BT-3", "A credit note (261, 381, 396, 502, 503) references a preceding invoice with its date (UBL: credit notes only)."),
    ("BR-FR-CO-07_BT-9", "The payment due date is not before the invoice date, except for a down payment (386, 500, 503) or framework B2/S2/M2."),
    ("BR-FR-CO-08_BT-23", "In framework B4/S4/M4, the invoice type is not a down payment (386, 500, 503)."),
    ("BR-FR-CO-09_BT-23-1", "In framework B2/S2/M2 (already paid), the paid amount (BT-113) equals the total with VAT (BT-112)."),
    ("BR-FR-CO-09_BT-23-2", "In framework B2/S2/M2, the amount due (BT-115) is 0."),
    ("BR-FR-CO-09_BT-23-3", "In framework B2/S2/M2, the payment due date (the payment date) is given."),
    ("BR-FR-CO-12_BT-5", "Outside EUR, the VAT accounting currency (BT-6) is EUR and the VAT total in EUR (BT-111) is given."),
    ("BR-FR-CO-14_BT-29-1", "A seller member of a single taxable person (scheme 0231) has a TXD note MEMBRE_ASSUJETTI_UNIQUE."),
    ("BR-FR-CO-15_BT-29-1", "A seller member of a single taxable person has a tax representative (BG-11) with the single taxable person's VAT number (BT-63)."),
    ("BR-FR-MV-13_BT-3", "In framework S8/B8/M8, the invoice type is not a self-billed type (389 261 501 500 502 471 473)."),
    ("BR-FR-BD-13_BT-3", "In framework S9/B9/M9, the invoice type is a self-billed type (389 261 501 500 502 471 473)."),
    ("BR-FR-DEC-01_BT-92_BT-99", "An amount has at most 2 decimals and 19 characters without the separator."),
    ("BR-FR-DEC-01_BT-93_BT-100", "An amount has at most 2 decimals and 19 characters without the separator."),
    ("BR-FR-DEC-01_BT-106", "An amount has at most 2 decimals and 19 characters without the separator."),
    ("BR-FR-DEC-01_BT-107", "An amount has at most 2 decimals and 19 characters without the separator."),
    ("BR-FR-DEC-01_BT-108", "An amount has at most 2 decimals and 19 characters without the separator."),
    ("BR-FR-DEC-01_BT-109", "An amount has at most 2 decimals and 19 characters without the separator."),
    ("BR-FR-DEC-01_BT-110", "An amount has at most 2 decimals and 19 characters without the separator (BT-111 is judged under this id: the artefacts give both the same context)."),
    ("BR-FR-DEC-01_BT-112", "An amount has at most 2 decimals and 19 characters without the separator."),
    ("BR-FR-DEC-01_BT-113", "An amount has at most 2 decimals and 19 characters without the separator."),
    ("BR-FR-DEC-01_BT-114", "An amount has at most 2 decimals and 19 characters without the separator."),
    ("BR-FR-DEC-01_BT-115", "An amount has at most 2 decimals and 19 characters without the separator."),
    ("BR-FR-DEC-01_BT-116", "An amount has at most 2 decimals and 19 characters without the separator."),
    ("BR-FR-DEC-01_BT-117", "An amount has at most 2 decimals and 19 characters without the separator."),
    ("BR-FR-DEC-01_BT-131", "An amount has at most 2 decimals and 19 characters without the separator."),
    ("BR-FR-DEC-01_BT-136_BT-141", "An amount has at most 2 decimals and 19 characters without the separator."),
    ("BR-FR-DEC-01_BT-137_BT-142", "An amount has at most 2 decimals and 19 characters without the separator."),
    ("BR-FR-DEC-02_BT-129", "A quantity has at most 4 decimals and 19 characters without the separator."),
    ("BR-FR-DEC-02_BT-149", "A quantity has at most 4 decimals and 19 characters without the separator."),
    ("BR-FR-DEC-03_BT-146", "A price has at most 6 decimals and 19 characters, without a « - » sign outside framework S9/B9/M9."),
    ("BR-FR-DEC-03_BT-147", "A price discount has at most 6 decimals and 19 characters, without a « - » sign outside framework S9/B9/M9."),
    ("BR-FR-DEC-03_BT-148", "A gross price has at most 6 decimals and 19 characters, without a « - » sign outside framework S9/B9/M9."),
    ("BR-FR-DEC-04_BT-96_BT-103", "A VAT rate is positive, with at most 2 decimals and 4 digits."),
    ("BR-FR-DEC-04_BT-119", "A VAT rate is positive, with at most 2 decimals and 4 digits."),
    ("BR-FR-DEC-04_BT-152", "A VAT rate is positive, with at most 2 decimals and 4 digits."),
];

fn key(rule: &FrRule) -> &'static str {
    if rule.cii.is_empty() {
        rule.ubl.first().copied().unwrap_or("")
    } else {
        rule.cii
    }
}

/// The English text of the BR-FR rule raised as `id` (its CII or any of
/// its UBL ids), if it is one.
pub fn text_en(id: &str) -> Option<&'static str> {
    let rule = RULES.iter().find(|r| r.cii == id || r.ubl.contains(&id))?;
    let k = key(rule);
    TEXTS_EN.iter().find(|(r, _)| *r == k).map(|(_, t)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_br_fr_rule_has_an_english_text() {
        let keys: Vec<&str> = RULES.iter().map(key).collect();
        let en: Vec<&str> = TEXTS_EN.iter().map(|(k, _)| *k).collect();
        let missing: Vec<&&str> = keys.iter().filter(|k| !en.contains(k)).collect();
        assert!(
            missing.is_empty(),
            "BR-FR rules without an English text: {missing:?}"
        );
        let unknown: Vec<&&str> = en.iter().filter(|k| !keys.contains(k)).collect();
        assert!(
            unknown.is_empty(),
            "English texts of no BR-FR rule: {unknown:?}"
        );
        for rule in RULES {
            for id in std::iter::once(&rule.cii).chain(rule.ubl.iter()) {
                if !id.is_empty() {
                    let text = text_en(id).unwrap_or_else(|| panic!("{id}"));
                    assert_ne!(text, rule.text, "{id} is not translated");
                }
            }
        }
        assert_eq!(
            text_en("BR-FR-12_BT-49"),
            Some("The buyer's electronic address (BT-49) is mandatory.")
        );
        assert_eq!(text_en("BR-CO-10"), None);
    }
}
