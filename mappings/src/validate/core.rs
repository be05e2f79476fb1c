//! Core rules BR-01 .. BR-65: presence of mandatory terms and simple
//! conditions on one group at a time. Nothing here sums anything.

use crate::model::{Address, Identifier, Invoice, Line, LineAllowanceCharge, Syntax};
use crate::positions::At;

use super::{amt, filled, LineRef, Out, Scope};

/// Document-level core rules (everything except the lines' own rules).
pub(super) fn document(inv: &Invoice, scope: Scope, out: &mut Out) {
    if !filled(&inv.specification_id) {
        out.emit(
            "BR-01",
            "The specification identifier (BT-24, e.g. urn:cen.eu:en16931:2017) is missing.".into(),
        );
    }
    if !filled(&inv.number) {
        out.emit("BR-02", "The invoice number (BT-1) is missing.".into());
    }
    // BT-2 given but not a date: the reader's finding says so (the
    // official test is `normalize-space(IssueDate) != ''`).
    if inv.issue_date.is_none() && out.given("BT-2") != Some(false) {
        out.emit("BR-03", "The invoice issue date (BT-2) is missing.".into());
    }
    if !filled(&inv.type_code) {
        out.emit("BR-04", "The invoice type code (BT-3, e.g. 380 for an invoice, 381 for a credit note) is missing.".into());
    }
    if !filled(&inv.currency) {
        out.emit(
            "BR-05",
            "The invoice currency code (BT-5, e.g. EUR) is missing.".into(),
        );
    }
    if !filled(&inv.seller.name) {
        out.emit("BR-06", "The seller name (BT-27) is missing.".into());
    }
    if !filled(&inv.buyer.name) {
        out.emit("BR-07", "The buyer name (BT-44) is missing.".into());
    }
    match &inv.seller.address {
        None => {
            out.emit(
                "BR-08",
                "The seller postal address (BG-5) is missing.".into(),
            );
            // The CII binding states BR-09 on the root (`//SellerTradeParty/
            // PostalTradeAddress/CountryID != ''`): without an address there
            // is no country code either. UBL states it in the address.
            if matches!(inv.syntax, Some(Syntax::Cii) | Some(Syntax::FacturX)) {
                out.emit(
                    "BR-09",
                    "The seller postal address, hence its country code (BT-40), is missing.".into(),
                );
            }
        }
        Some(a) => {
            if !filled(&a.country_code) {
                out.emit(
                    "BR-09",
                    "The seller postal address has no country code (BT-40).".into(),
                );
            }
        }
    }
    if !scope.minimum {
        match &inv.buyer.address {
            None => out.emit(
                "BR-10",
                "The buyer postal address (BG-8) is missing.".into(),
            ),
            Some(a) => {
                if !filled(&a.country_code) {
                    out.emit(
                        "BR-11",
                        "The buyer postal address has no country code (BT-55).".into(),
                    );
                }
            }
        }
        if inv.totals.line_net_total.is_none() {
            out.emit(
                "BR-12",
                "The sum of invoice line net amounts (BT-106) is missing.".into(),
            );
        }
    }
    if inv.totals.total_without_vat.is_none() {
        out.emit(
            "BR-13",
            "The invoice total amount without VAT (BT-109) is missing.".into(),
        );
    }
    if inv.totals.total_with_vat.is_none() {
        out.emit(
            "BR-14",
            "The invoice total amount with VAT (BT-112) is missing.".into(),
        );
    }
    if inv.totals.amount_due.is_none() {
        out.emit(
            "BR-15",
            "The amount due for payment (BT-115) is missing.".into(),
        );
    }
    if scope.lines && inv.lines.is_empty() {
        out.emit(
            "BR-16",
            "The invoice has no invoice line (BG-25); at least one is required.".into(),
        );
    }

    if let Some(payee) = &inv.payee {
        // The schematron asks a payee to carry a name and to differ from
        // the seller (by name and identifier): a payee that is the seller
        // should not be given at all.
        if !filled(&payee.name) {
            out.emit(
                "BR-17",
                "A payee (BG-10) is given without a payee name (BT-59).".into(),
            );
        } else if payee.name == inv.seller.name
            && payee
                .identifier
                .as_ref()
                .is_some_and(|p| inv.seller.identifiers.iter().any(|s| s.value == p.value))
        {
            out.emit(
                "BR-17",
                "The payee (BG-10) has the seller's name and identifier; leave the payee out when the seller is paid.".into(),
            );
        }
    }
    if let Some(rep) = &inv.tax_representative {
        if !filled(&rep.name) {
            out.emit(
                "BR-18",
                "A seller tax representative (BG-11) is given without a name (BT-62).".into(),
            );
        }
        match &rep.address {
            None => out.emit(
                "BR-19",
                "A seller tax representative (BG-11) is given without a postal address (BG-12)."
                    .into(),
            ),
            Some(a) => {
                if !filled(&a.country_code) {
                    out.emit(
                        "BR-20",
                        "The tax representative postal address has no country code (BT-69).".into(),
                    );
                }
            }
        }
        if !filled(&rep.vat_id) {
            out.emit(
                "BR-56",
                "A seller tax representative (BG-11) is given without a VAT identifier (BT-63)."
                    .into(),
            );
        }
    }
    // The UBL binding also accepts an invoicing period that only carries
    // the VAT point date code (BT-8 is `cac:InvoicePeriod/cbc:DescriptionCode`
    // there).
    let ubl_code_only = inv.syntax == Some(Syntax::Ubl) && filled(&inv.tax_point_date_code);
    if let Some(p) = inv
        .invoicing_period
        .as_ref()
        .filter(|p| !(ubl_code_only && p.start.is_none() && p.end.is_none()))
    {
        period_rules(
            p.start,
            p.end,
            "BR-29",
            "BR-CO-19",
            "the invoicing period (BG-14)",
            out,
        );
    }
    if scope.vat_breakdown {
        for (i, a) in inv.allowances.iter().enumerate() {
            out.group = Some(At::Allowance(i));
            let n = i + 1;
            if a.amount.is_none() {
                out.emit(
                    "BR-31",
                    format!("Document level allowance {n} has no amount (BT-92)."),
                );
            }
            // The official test is the element's existence (an empty
            // code is the code list's finding).
            if a.vat_category.is_none() {
                out.emit(
                    "BR-32",
                    format!("Document level allowance {n} has no VAT category code (BT-95)."),
                );
            }
            if a.reason.is_none() && a.reason_code.is_none() {
                out.emit("BR-33", format!("Document level allowance {n} has neither a reason (BT-97) nor a reason code (BT-98)."));
                out.emit("BR-CO-21", format!("Document level allowance {n} has neither a reason (BT-97) nor a reason code (BT-98)."));
            }
        }
        out.group = None;
        for (i, c) in inv.charges.iter().enumerate() {
            out.group = Some(At::Charge(i));
            let n = i + 1;
            if c.amount.is_none() {
                out.emit(
                    "BR-36",
                    format!("Document level charge {n} has no amount (BT-99)."),
                );
            }
            if c.vat_category.is_none() {
                out.emit(
                    "BR-37",
                    format!("Document level charge {n} has no VAT category code (BT-102)."),
                );
            }
            if c.reason.is_none() && c.reason_code.is_none() {
                out.emit("BR-38", format!("Document level charge {n} has neither a reason (BT-104) nor a reason code (BT-105)."));
                out.emit("BR-CO-22", format!("Document level charge {n} has neither a reason (BT-104) nor a reason code (BT-105)."));
            }
        }
        out.group = None;
        for (i, b) in inv.vat_breakdown.iter().enumerate() {
            out.group = Some(At::Breakdown(i));
            let n = i + 1;
            let cat = b.category.as_deref().unwrap_or("?");
            if b.taxable_amount.is_none() {
                out.emit(
                    "BR-45",
                    format!("VAT breakdown {n} (category {cat}) has no taxable amount (BT-116)."),
                );
            }
            if b.tax_amount.is_none() {
                out.emit(
                    "BR-46",
                    format!("VAT breakdown {n} (category {cat}) has no tax amount (BT-117)."),
                );
            }
            // The official test is the element's existence (an empty code
            // is the code list's finding, BR-CL-17).
            if !filled(&b.category) && out.given("BT-118").is_none() {
                out.emit(
                    "BR-47",
                    format!("VAT breakdown {n} has no VAT category code (BT-118)."),
                );
            }
            if b.rate.is_none() && b.category.as_deref().map(str::trim) != Some("O") {
                out.emit("BR-48", format!("VAT breakdown {n} (category {cat}) has no VAT rate (BT-119); only category O may omit it."));
            }
        }
        out.group = None;
    }
    if let Some(pay) = &inv.payment {
        // The official test is the element's existence, even empty.
        if !filled(&pay.means_code) && !pay.no_means_element && out.given("BT-81").is_none() {
            out.emit(
                "BR-49",
                "The payment instructions (BG-16) have no payment means type code (BT-81).".into(),
            );
        }
        for (i, m) in pay.further_means.iter().enumerate() {
            if !filled(&m.code) {
                out.emit(
                    "BR-49",
                    format!(
                        "Payment means {} has no payment means type code (BT-81).",
                        i + 2
                    ),
                );
            }
        }
        for (i, ct) in pay.credit_transfers.iter().enumerate() {
            if !filled(&ct.account_id) {
                out.emit("BR-50", format!("Credit transfer {} (BG-17) has no payment account identifier (BT-84, e.g. the IBAN).", i + 1));
            }
        }
        let means = pay.means_code.as_deref().map(str::trim);
        if matches!(means, Some("30") | Some("58"))
            && !pay.credit_transfers.iter().any(|c| filled(&c.account_id))
            && out.given("BT-84").is_none()
        {
            out.emit(
                "BR-61",
                format!("The payment means is credit transfer (code {}) but no payment account identifier (BT-84) is given.", means.unwrap_or("")),
            );
        }
        if let Some(card) = &pay.card {
            // 1.3.16: `string-length(normalize-space(.)) <= 10` (the first
            // 6 and last 4 digits at most); a warning in the UBL binding,
            // fatal in the CII one (no flag there).
            let pan = card.primary_account_number.as_deref().unwrap_or("");
            let len = pan
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .count();
            if len > 10 {
                out.emit(
                    "BR-51",
                    format!("The payment card number (BT-87) has {len} characters; give at most its first 6 and last 4 digits (10 characters)."),
                );
                if matches!(inv.syntax, Some(Syntax::Cii) | Some(Syntax::FacturX)) {
                    if let Some(v) = out.violations.last_mut() {
                        v.severity = crate::model::Severity::Fatal;
                    }
                }
            }
        }
    }
    for (i, att) in inv.attachments.iter().enumerate() {
        if !filled(&att.reference) {
            out.emit(
                "BR-52",
                format!(
                    "Supporting document {} (BG-24) has no reference (BT-122).",
                    i + 1
                ),
            );
        }
    }
    // BR-53 asks for a tax total in the VAT accounting currency: when that
    // currency is the invoice currency, BT-110 is that total.
    let same_currency =
        inv.vat_currency.as_deref().map(str::trim) == inv.currency.as_deref().map(str::trim);
    let accounting_total = inv.totals.vat_total_accounting.is_some()
        || (same_currency && inv.totals.vat_total.is_some());
    // An empty BT-6 is given too: no tax total has that (empty) currency.
    if (filled(&inv.vat_currency) || out.given("BT-6").is_some()) && !accounting_total {
        out.emit(
            "BR-53",
            format!(
                "A VAT accounting currency (BT-6 = {}) is given but not the total VAT in that currency (BT-111).",
                inv.vat_currency.as_deref().unwrap_or("")
            ),
        );
    }
    for (i, pre) in inv.preceding_invoices.iter().enumerate() {
        if !filled(&pre.number) {
            out.emit(
                "BR-55",
                format!(
                    "Preceding invoice reference {} (BG-3) has no invoice number (BT-25).",
                    i + 1
                ),
            );
        }
    }
    if let Some(addr) = inv.delivery.as_ref().and_then(|d| d.address.as_ref()) {
        if !has_country(addr) {
            out.emit(
                "BR-57",
                "The deliver-to address (BG-15) has no country code (BT-80).".into(),
            );
        }
    }
    // The CII binding tests the scheme of `URIUniversalCommunication[1]/URIID`
    // whenever the communication element is there: without its URIID too.
    let cii = matches!(inv.syntax, Some(Syntax::Cii) | Some(Syntax::FacturX));
    for (party, term, rule, what) in [
        (&inv.seller, "BG-34-COMM", "BR-62", "seller"),
        (&inv.buyer, "BG-49-COMM", "BR-63", "buyer"),
    ] {
        if cii && party.electronic_address.is_none() && out.given(term).is_some() {
            out.emit(
                rule,
                format!("The {what}'s electronic address element (URIUniversalCommunication) has no URIID, hence no scheme identifier."),
            );
        }
    }
    if let Some(e) = &inv.seller.electronic_address {
        if !has_scheme(e) {
            out.emit(
                "BR-62",
                format!(
                    "The seller electronic address (BT-34) '{}' has no scheme identifier.",
                    e.value
                ),
            );
        }
    }
    if let Some(e) = &inv.buyer.electronic_address {
        if !has_scheme(e) {
            out.emit(
                "BR-63",
                format!(
                    "The buyer electronic address (BT-49) '{}' has no scheme identifier.",
                    e.value
                ),
            );
        }
    }
}

fn has_country(a: &Address) -> bool {
    filled(&a.country_code)
}

fn has_scheme(id: &Identifier) -> bool {
    id.scheme.is_some()
}

/// BR-29/BR-30 (end not before start) and BR-CO-19/BR-CO-20 (one of both).
fn period_rules(
    start: Option<chrono::NaiveDate>,
    end: Option<chrono::NaiveDate>,
    order_rule: &'static str,
    empty_rule: &'static str,
    what: &str,
    out: &mut Out,
) {
    match (start, end) {
        (Some(s), Some(e)) if e < s => {
            out.emit(
                order_rule,
                format!("The end date of {what} ({e}) is before its start date ({s})."),
            );
        }
        (None, None) => {
            out.emit(
                empty_rule,
                format!(
                    "{} is given with neither a start date nor an end date.",
                    capitalize(what)
                ),
            );
        }
        _ => {}
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// One line's own core rules.
pub(super) fn line(l: &Line, at: LineRef<'_>, out: &mut Out) {
    if !filled(&l.id) {
        out.emit(
            "BR-21",
            format!("Invoice {at} has no line identifier (BT-126)."),
        );
    }
    // The official test is the element's existence: a quantity given but
    // not a number has the reader's finding only.
    if l.quantity.is_none() && out.given("BT-129").is_none() {
        out.emit(
            "BR-22",
            format!("Invoice {at} has no invoiced quantity (BT-129)."),
        );
    }
    if l.unit_code.is_none() {
        out.emit(
            "BR-23",
            format!("Invoice {at} has no unit of measure code (BT-130) for its quantity."),
        );
    }
    if l.net_amount.is_none() {
        out.emit(
            "BR-24",
            format!("Invoice {at} has no line net amount (BT-131)."),
        );
    }
    if !filled(&l.item_name) {
        out.emit("BR-25", format!("Invoice {at} has no item name (BT-153)."));
    }
    match l.net_price {
        None => {
            out.emit(
                "BR-26",
                format!("Invoice {at} has no item net price (BT-146)."),
            );
            // `(Price/PriceAmount) >= 0` is false without a price: the
            // official artefacts fire BR-27 on a missing price too.
            out.emit(
                "BR-27",
                format!("Invoice {at} has no item net price (BT-146), so it cannot be checked as not negative."),
            );
        }
        Some(p) if p.is_sign_negative() && !p.is_zero() => {
            out.emit(
                "BR-27",
                format!(
                    "Invoice {at} has a negative item net price (BT-146) of {}.",
                    amt(p)
                ),
            );
        }
        _ => {}
    }
    if let Some(g) = l.gross_price {
        if g.is_sign_negative() && !g.is_zero() {
            out.emit(
                "BR-28",
                format!(
                    "Invoice {at} has a negative item gross price (BT-148) of {}.",
                    amt(g)
                ),
            );
        }
    }
    if let Some(p) = &l.period {
        period_rules(
            p.start,
            p.end,
            "BR-30",
            "BR-CO-20",
            &format!("the period of {at} (BG-26)"),
            out,
        );
    }
    // The official test is the element's existence: an empty code is the
    // code list's finding (BR-CL-18), not "missing".
    if !filled(&l.vat_category) && out.given("BT-151").is_none() {
        out.emit(
            "BR-CO-04",
            format!("Invoice {at} has no VAT category code (BT-151)."),
        );
    }
    for (i, a) in l.allowances.iter().enumerate() {
        line_allowance_charge(a, at, i + 1, false, out);
    }
    for (i, c) in l.charges.iter().enumerate() {
        line_allowance_charge(c, at, i + 1, true, out);
    }
    for attr in &l.attributes {
        if attr.name.trim().is_empty() || attr.value.trim().is_empty() {
            out.emit("BR-54", format!("An item attribute (BG-32) of {at} lacks its name (BT-160) or its value (BT-161)."));
        }
    }
    if let Some(s) = &l.standard_item_id {
        if !has_scheme(s) {
            out.emit(
                "BR-64",
                format!(
                    "The item standard identifier (BT-157) '{}' of {at} has no scheme identifier.",
                    s.value
                ),
            );
        }
    }
    for c in &l.classifications {
        if c.scheme.is_none() {
            out.emit("BR-65", format!("The item classification identifier (BT-158) '{}' of {at} has no scheme identifier.", c.value));
        }
    }
}

fn line_allowance_charge(
    ac: &LineAllowanceCharge,
    at: LineRef<'_>,
    n: usize,
    charge: bool,
    out: &mut Out,
) {
    let (what, amount_rule, reason_rule, co_rule, amount_bt, reason_bt, code_bt) = if charge {
        (
            "charge", "BR-43", "BR-44", "BR-CO-24", "BT-141", "BT-144", "BT-145",
        )
    } else {
        (
            "allowance",
            "BR-41",
            "BR-42",
            "BR-CO-23",
            "BT-136",
            "BT-139",
            "BT-140",
        )
    };
    if ac.amount.is_none() {
        out.emit(
            amount_rule,
            format!("Line {what} {n} of {at} has no amount ({amount_bt})."),
        );
    }
    if ac.reason.is_none() && ac.reason_code.is_none() {
        let msg = format!("Line {what} {n} of {at} has neither a reason ({reason_bt}) nor a reason code ({code_bt}).");
        out.emit(reason_rule, msg.clone());
        out.emit(co_rule, msg);
    }
}
