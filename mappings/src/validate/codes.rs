//! Code list rules (BR-CL) and the country list BR-CO-09 uses.
//!
//! The lists are those of the CEN artefacts (validation 1.3.x), kept as
//! space-separated strings and searched linearly: a code is looked up a few
//! times per invoice (per line only for the VAT category and the item
//! classification), so a set would buy nothing measurable.
//!
//! Not checked: BR-CL-03 (the currency of every amount; the canonical model
//! keeps one currency per invoice, the readers report a foreign currencyID),
//! BR-CL-08 (note subject codes, UNCL 4451, CII only), BR-CL-23 (unit codes:
//! UN/ECE Rec 20 has 2,000 codes revised every year, and a stale copy would
//! reject valid invoices).

use crate::model::{DocumentKind, Invoice, Line, Syntax};
use crate::positions::At;

use super::code_lists::{
    ALLOWANCE_REASONS, CHARGE_REASONS, CLASSIFICATION_SCHEMES, COUNTRIES, CREDIT_NOTE_TYPE_CODES,
    CURRENCIES, EAS, ICD, INVOICE_TYPE_CODES, NOTE_SUBJECTS, OBJECT_SCHEMES, PAYMENT_MEANS, UNITS,
    VATEX, VAT_CATEGORIES,
};
use super::{LineRef, Out, Scope};

/// UNTDID 2005 subset for BT-8 in UBL (invoice date, delivery date,
/// payment date).
const TAX_POINT_CODES: &str = "3 35 432";

/// The same three meanings as UNTDID 2475 codes, which CII uses (the CII
/// reader may also hand them over already translated to UNTDID 2005).
const TAX_POINT_CODES_CII: &str = "5 29 72 3 35 432";

/// MIME codes accepted for BT-125.
const MIME: &str = "application/pdf image/png image/jpeg text/csv application/vnd.openxmlformats-officedocument.spreadsheetml.sheet application/vnd.oasis.opendocument.spreadsheet";

fn in_list(list: &str, code: &str) -> bool {
    if code.is_empty() || code.contains(' ') {
        return false;
    }
    // Substring search (SIMD in core), then a whole-word check: no
    // per-token splitting of lists of hundreds of codes.
    let (l, c) = (list.as_bytes(), code.len());
    let mut from = 0;
    while let Some(i) = list.get(from..).and_then(|rest| rest.find(code)) {
        let at = from + i;
        let starts = at == 0 || l[at - 1] == b' ';
        let ends = at + c == l.len() || l[at + c] == b' ';
        if starts && ends {
            return true;
        }
        from = at + 1;
    }
    false
}

/// Like the schematron: `normalize-space(.)` then a whole-word match.
fn known(list: &str, code: &str) -> bool {
    in_list(list, code.trim())
}

/// A unit code of the artefact's list: a set built once (the list has
/// 2,000 codes and is asked per line, where a linear search would cost).
fn known_unit(code: &str) -> bool {
    use std::collections::HashSet;
    use std::sync::OnceLock;
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    let code = code.trim();
    !code.is_empty()
        && !code.contains(' ')
        && SET
            .get_or_init(|| UNITS.split(' ').collect())
            .contains(code)
}

/// BR-CO-09: the VAT identifier starts with a country code (or EL).
pub(super) fn vat_prefix_ok(id: &str) -> bool {
    id.get(..2)
        .is_some_and(|p| p == "EL" || (p != "1A" && in_list(COUNTRIES, p)))
}

fn country(out: &mut Out, code: Option<&str>, bt: &'static str, what: &str, ubl: bool) {
    if let Some(c) = code {
        if !known(COUNTRIES, c) {
            out.emit_on(
                "BR-CL-14",
                Some(bt),
                format!("The {what} country code ({bt}) '{c}' is not an ISO 3166-1 alpha-2 code."),
            );
        }
    } else if empty_code(out, bt, ubl) {
        out.emit_on(
            "BR-CL-14",
            Some(bt),
            format!("The {what} country code ({bt}) is empty: give an ISO 3166-1 alpha-2 code."),
        );
    }
}

/// The element of code `term` is given empty in a UBL document: the UBL
/// code-list rules refuse the empty value (the element exists), where the
/// Factur-X CII rules check nothing.
fn empty_code(out: &Out, term: &str, ubl: bool) -> bool {
    ubl && out.given(term) == Some(true)
}

fn icd(
    out: &mut Out,
    rule: &'static str,
    bt: &'static str,
    scheme: Option<&str>,
    what: &str,
    sepa_ok: bool,
) {
    if let Some(s) = scheme {
        if !(known(ICD, s) || (sepa_ok && s.trim() == "SEPA")) {
            out.emit_on(
                rule,
                Some(bt),
                format!("The scheme '{s}' of the {what} ({bt}) is not an ISO 6523 ICD code."),
            );
        }
    }
}

fn addr_country(a: &Option<crate::model::Address>) -> Option<&str> {
    a.as_ref().and_then(|a| a.country_code.as_deref())
}

pub(super) fn document(inv: &Invoice, scope: Scope, out: &mut Out) {
    if let Some(t) = inv.type_code.as_deref() {
        // The UBL binding takes the invoice codes in an Invoice root, the
        // credit note codes in a CreditNote root; the others either.
        let ok = match (inv.syntax, inv.kind) {
            (Some(Syntax::Ubl), DocumentKind::Invoice) => known(INVOICE_TYPE_CODES, t),
            (Some(Syntax::Ubl), DocumentKind::CreditNote) => known(CREDIT_NOTE_TYPE_CODES, t),
            _ => known(INVOICE_TYPE_CODES, t) || known(CREDIT_NOTE_TYPE_CODES, t),
        };
        if !ok {
            let which = match (inv.syntax, inv.kind) {
                (Some(Syntax::Ubl), DocumentKind::Invoice) => "an invoice code of UNTDID 1001 (e.g. 380; a credit note is a UBL CreditNote)",
                (Some(Syntax::Ubl), DocumentKind::CreditNote) => "a credit note code of UNTDID 1001 (e.g. 381; an invoice is a UBL Invoice)",
                _ => "an invoice or credit note code of UNTDID 1001 (e.g. 380 invoice, 381 credit note)",
            };
            out.emit(
                "BR-CL-01",
                format!("The invoice type code (BT-3) '{t}' is not {which}."),
            );
        }
    }
    // BR-CL-08: a note's subject code (`#AAA#` at its start, UBL) is a
    // UNTDID 4451 code.
    if inv.syntax == Some(Syntax::Ubl) {
        for n in &inv.notes {
            // As the artefact: the text between the note's first two `#`,
            // when it has 3 characters, is found in the list (a substring
            // search, as `contains`).
            let raw = match n.subject_code.as_deref() {
                Some(code) => format!("#{code}#{}", n.text),
                None => n.text.clone(),
            };
            if let Some((_, after)) = raw.split_once('#') {
                let code = after.split_once('#').map_or("", |(c, _)| c);
                if code.chars().count() == 3 && !format!(" {NOTE_SUBJECTS} ").contains(code) {
                    out.emit("BR-CL-08", format!("The subject code '{code}' of an invoice note (BT-21) is not a UNTDID 4451 code."));
                }
            }
        }
    }
    let ubl = inv.syntax == Some(Syntax::Ubl);
    if let Some(c) = inv.currency.as_deref() {
        if !known(CURRENCIES, c) {
            out.emit(
                "BR-CL-04",
                format!("The invoice currency code (BT-5) '{c}' is not an ISO 4217 code."),
            );
        }
    } else if empty_code(out, "BT-5", ubl) {
        out.emit(
            "BR-CL-04",
            "The invoice currency code (BT-5) is empty: give an ISO 4217 code.".into(),
        );
    }
    if let Some(c) = inv.vat_currency.as_deref() {
        if !known(CURRENCIES, c) {
            out.emit(
                "BR-CL-05",
                format!("The VAT accounting currency code (BT-6) '{c}' is not an ISO 4217 code."),
            );
        }
    } else if empty_code(out, "BT-6", ubl) {
        out.emit(
            "BR-CL-05",
            "The VAT accounting currency code (BT-6) is empty: give an ISO 4217 code.".into(),
        );
    }
    if let Some(c) = inv.tax_point_date_code.as_deref() {
        let cii = matches!(inv.syntax, Some(Syntax::Cii) | Some(Syntax::FacturX));
        let list = if cii {
            TAX_POINT_CODES_CII
        } else {
            TAX_POINT_CODES
        };
        if !known(list, c) {
            let allowed = if cii { "5, 29, 72" } else { "3, 35, 432" };
            out.emit(
                "BR-CL-06",
                format!("The VAT point date code (BT-8) '{c}' is not one of {allowed}."),
            );
        }
    }
    if let Some(s) = inv
        .invoiced_object_id
        .as_ref()
        .and_then(|i| i.scheme.as_deref())
    {
        if !known(OBJECT_SCHEMES, s) {
            out.emit("BR-CL-07", format!("The scheme '{s}' of the invoiced object identifier (BT-18) is not a UNTDID 1153 code."));
        }
    }
    for id in &inv.seller.identifiers {
        icd(
            out,
            "BR-CL-10",
            "BT-29",
            id.scheme.as_deref(),
            "seller identifier",
            true,
        );
    }
    for id in &inv.buyer.identifiers {
        icd(
            out,
            "BR-CL-10",
            "BT-46",
            id.scheme.as_deref(),
            "buyer identifier",
            false,
        );
    }
    if let Some(p) = &inv.payee {
        if let Some(id) = &p.identifier {
            icd(
                out,
                "BR-CL-10",
                "BT-60",
                id.scheme.as_deref(),
                "payee identifier",
                true,
            );
        }
        if let Some(id) = &p.legal_registration_id {
            icd(
                out,
                "BR-CL-11",
                "BT-61",
                id.scheme.as_deref(),
                "payee legal registration identifier",
                false,
            );
        }
    }
    if let Some(id) = &inv.seller.legal_registration_id {
        icd(
            out,
            "BR-CL-11",
            "BT-30",
            id.scheme.as_deref(),
            "seller legal registration identifier",
            false,
        );
    }
    if let Some(id) = &inv.buyer.legal_registration_id {
        icd(
            out,
            "BR-CL-11",
            "BT-47",
            id.scheme.as_deref(),
            "buyer legal registration identifier",
            false,
        );
    }
    country(
        out,
        addr_country(&inv.seller.address),
        "BT-40",
        "seller",
        ubl,
    );
    country(out, addr_country(&inv.buyer.address), "BT-55", "buyer", ubl);
    if let Some(r) = &inv.tax_representative {
        country(
            out,
            addr_country(&r.address),
            "BT-69",
            "tax representative",
            ubl,
        );
    }
    if let Some(d) = &inv.delivery {
        country(out, addr_country(&d.address), "BT-80", "deliver-to", ubl);
    }
    for (party, bt, what) in [
        (&inv.seller, "BT-34", "seller"),
        (&inv.buyer, "BT-49", "buyer"),
    ] {
        if let Some(s) = party
            .electronic_address
            .as_ref()
            .and_then(|e| e.scheme.as_deref())
        {
            if !known(EAS, s) {
                out.emit_on(
                    "BR-CL-25",
                    Some(bt),
                    format!("The scheme '{s}' of the {what} electronic address ({bt}) is not in the CEF EAS list (e.g. 0088 GLN, 0009 SIRET, EM e-mail)."),
                );
            }
        }
    }
    if let Some(id) = inv.delivery.as_ref().and_then(|d| d.location_id.as_ref()) {
        icd(
            out,
            "BR-CL-26",
            "BT-71",
            id.scheme.as_deref(),
            "deliver-to location identifier",
            false,
        );
    }
    let means = inv.payment.iter().flat_map(|p| {
        std::iter::once(p.means_code.as_deref())
            .chain(p.further_means.iter().map(|m| m.code.as_deref()))
            .flatten()
    });
    if inv.payment.as_ref().is_some_and(|p| p.means_code.is_none()) && empty_code(out, "BT-81", ubl)
    {
        out.emit("BR-CL-16", "The payment means code (BT-81) is empty: give a UNCL 4461 code (e.g. 30 credit transfer, 58 SEPA credit transfer).".into());
    }
    for m in means {
        if !known(PAYMENT_MEANS, m) {
            out.emit("BR-CL-16", format!("The payment means code (BT-81) '{m}' is not a UNCL 4461 code (e.g. 30 credit transfer, 58 SEPA credit transfer)."));
        }
    }
    if scope.vat_breakdown {
        for (i, b) in inv.vat_breakdown.iter().enumerate() {
            out.group = Some(At::Breakdown(i));
            // An empty code element: the UBL code-list rules refuse the
            // empty value (the Factur-X CII rules do not check it).
            let ubl_empty =
                |out: &Out, term| inv.syntax == Some(Syntax::Ubl) && out.given(term) == Some(true);
            if let Some(c) = b.category.as_deref() {
                if !known(VAT_CATEGORIES, c) {
                    out.emit_on("BR-CL-17", Some("BT-118"), format!("VAT breakdown {} has the VAT category code '{c}', which is not one of S, Z, E, AE, K, G, O, L, M, B.", i + 1));
                }
            } else if ubl_empty(out, "BT-118") {
                out.emit_on("BR-CL-17", Some("BT-118"), format!("VAT breakdown {} has an empty VAT category code: give one of S, Z, E, AE, K, G, O, L, M, B.", i + 1));
            }
            if let Some(c) = b.exemption_reason_code.as_deref() {
                if !known(VATEX, &c.to_uppercase()) {
                    out.emit("BR-CL-22", format!("The VAT exemption reason code (BT-121) '{c}' of VAT breakdown {} is not a VATEX code.", i + 1));
                }
            } else if ubl_empty(out, "BT-121") {
                out.emit("BR-CL-22", format!("The VAT exemption reason code (BT-121) of VAT breakdown {} is empty: give a VATEX code.", i + 1));
            }
        }
        out.group = None;
        for (list, what, cat_bt, code_bt, reasons, rule) in [
            (
                &inv.allowances,
                "allowance",
                "BT-95",
                "BT-98",
                ALLOWANCE_REASONS,
                "BR-CL-19",
            ),
            (
                &inv.charges,
                "charge",
                "BT-102",
                "BT-105",
                CHARGE_REASONS,
                "BR-CL-20",
            ),
        ] {
            for (i, ac) in list.iter().enumerate() {
                out.group = Some(if what == "charge" {
                    At::Charge(i)
                } else {
                    At::Allowance(i)
                });
                if let Some(c) = ac.vat_category.as_deref() {
                    if !known(VAT_CATEGORIES, c) {
                        out.emit_on("BR-CL-17", Some(cat_bt), format!("Document level {what} {} has the VAT category code '{c}', which is not one of S, Z, E, AE, K, G, O, L, M, B.", i + 1));
                    }
                }
                if let Some(r) = ac.reason_code.as_deref() {
                    if !known(reasons, r) {
                        out.emit_on(rule, Some(code_bt), format!("The reason code '{r}' of document level {what} {} is not in the {} list.", i + 1, if rule == "BR-CL-19" { "UNCL 5189" } else { "UNCL 7161" }));
                    }
                }
            }
            out.group = None;
        }
    }
    for (i, a) in inv.attachments.iter().enumerate() {
        if let Some(m) = a.mime_code.as_deref() {
            if !known(MIME, m) {
                out.emit("BR-CL-24", format!("Supporting document {} is of type '{m}'; only PDF, PNG, JPEG, CSV, XLSX and ODS may be attached.", i + 1));
            }
        }
    }
}

pub(super) fn line(l: &Line, syntax: Option<Syntax>, at: LineRef<'_>, out: &mut Out) {
    // UBL: checked on the XML (`ubl_binding`), where the reference's type
    // code (130) tells BT-128 from another line document reference.
    if let Some(s) = l
        .object_id
        .as_ref()
        .filter(|_| syntax != Some(Syntax::Ubl))
        .and_then(|i| i.scheme.as_deref())
    {
        if !known(OBJECT_SCHEMES, s) {
            out.emit_on("BR-CL-07", Some("BT-128"), format!("The scheme '{s}' of the invoice line object identifier (BT-128) on {at} is not a UNTDID 1153 code."));
        }
    }
    for (unit, bt) in [
        (l.unit_code.as_deref(), "BT-130"),
        (l.price_base_quantity_unit.as_deref(), "BT-150"),
    ] {
        if let Some(u) = unit {
            if !known_unit(u) {
                out.emit_on("BR-CL-23", Some(bt), format!("The unit of measure code ({bt}) '{u}' on {at} is not a UN/ECE Recommendation 20 or 21 code."));
            }
        }
    }
    if let Some(c) = l.vat_category.as_deref() {
        if !known(VAT_CATEGORIES, c) {
            out.emit("BR-CL-18", format!("Invoice {at} has the VAT category code (BT-151) '{c}', which is not one of S, Z, E, AE, K, G, O, L, M, B."));
        }
    } else if syntax == Some(Syntax::Ubl) && out.given("BT-151") == Some(true) {
        // An empty `ClassifiedTaxCategory/ID`: the UBL code-list rule
        // refuses the empty code (BR-CO-04 only tests that the element is
        // there; the Factur-X CII rules check neither).
        out.emit("BR-CL-18", format!("Invoice {at} has an empty VAT category code (BT-151): give one of S, Z, E, AE, K, G, O, L, M, B."));
    }
    for (list, what, code_bt, reasons, rule) in [
        (
            &l.allowances,
            "allowance",
            "BT-140",
            ALLOWANCE_REASONS,
            "BR-CL-19",
        ),
        (&l.charges, "charge", "BT-145", CHARGE_REASONS, "BR-CL-20"),
    ] {
        for (i, ac) in list.iter().enumerate() {
            if let Some(r) = ac.reason_code.as_deref() {
                if !known(reasons, r) {
                    out.emit_on(
                        rule,
                        Some(code_bt),
                        format!(
                            "The reason code '{r}' of {what} {} on {at} is not in the {} list.",
                            i + 1,
                            if rule == "BR-CL-19" {
                                "UNCL 5189"
                            } else {
                                "UNCL 7161"
                            }
                        ),
                    );
                }
            }
        }
    }
    for c in &l.classifications {
        if let Some(s) = c.scheme.as_deref() {
            if !known(CLASSIFICATION_SCHEMES, s) {
                out.emit("BR-CL-13", format!("The scheme '{s}' of the item classification (BT-158) on {at} is not a UNTDID 7143 code."));
            }
        }
    }
    if let Some(s) = l
        .standard_item_id
        .as_ref()
        .and_then(|i| i.scheme.as_deref())
    {
        if !known(ICD, s) {
            out.emit("BR-CL-21", format!("The scheme '{s}' of the item standard identifier (BT-157) on {at} is not an ISO 6523 ICD code."));
        }
    }
    if let Some(c) = l.origin_country.as_deref() {
        if !known(COUNTRIES, c) {
            out.emit("BR-CL-15", format!("The country of origin (BT-159) '{c}' on {at} is not an ISO 3166-1 alpha-2 code."));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::in_list;

    #[test]
    fn in_list_matches_whole_codes_only() {
        let list = "VATEX-EU-132 VATEX-EU-132-1A S Z AE";
        assert!(in_list(list, "VATEX-EU-132"));
        assert!(in_list(list, "VATEX-EU-132-1A"));
        assert!(in_list(list, "S"));
        assert!(in_list(list, "AE"));
        // a prefix, a suffix or the middle of a code is not a code
        assert!(!in_list(list, "VATEX-EU-13"));
        assert!(!in_list(list, "132-1A"));
        assert!(!in_list(list, "E"));
        assert!(!in_list(list, "A"));
        assert!(!in_list(list, ""));
        assert!(!in_list(list, "S Z"));
        assert!(!in_list(list, "é"));
        assert!(!in_list("é S", "S é"));
        assert!(in_list("é S", "S"));
    }
}
