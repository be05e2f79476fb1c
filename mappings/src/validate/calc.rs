//! BR-CO rules: conditions between terms and the document totals.
//!
//! The totals are checked against the sums gathered in the one pass
//! ([`Aggregates`]), never by re-reading the lines. Equalities are exact on
//! the decimal values after the schematron's own rounding
//! (`round(x * 100) div 100`), which is [`round2`].

use crate::positions::At;
use rust_decimal::Decimal;

use crate::model::{Invoice, Severity, Syntax};

use super::tolerance::within_one;
use super::vat::Aggregates;
use super::{amt, amt_opt, codes, filled, round0, round2, Out, Scope};

pub(super) fn check(inv: &Invoice, scope: Scope, agg: &Aggregates, out: &mut Out) {
    let t = &inv.totals;

    if inv.tax_point_date.is_some() && inv.tax_point_date_code.is_some() {
        out.emit(
            "BR-CO-03",
            "Both a VAT point date (BT-7) and a VAT point date code (BT-8) are given; give only one.".into(),
        );
    }

    // BR-CO-09: VAT identifiers start with a country prefix.
    for (id, bt) in [
        (inv.seller.vat_id.as_deref(), "BT-31"),
        (
            inv.tax_representative
                .as_ref()
                .and_then(|r| r.vat_id.as_deref()),
            "BT-63",
        ),
        (inv.buyer.vat_id.as_deref(), "BT-48"),
    ] {
        if let Some(id) = id {
            if !codes::vat_prefix_ok(id) {
                out.emit_on(
                    "BR-CO-09",
                    Some(bt),
                    format!("The VAT identifier {bt} '{id}' does not start with a country code (ISO 3166-1 alpha-2, or EL for Greece)."),
                );
                // The official EDIFACT binding states BR-CO-09 as `true()`
                // (RFF+VA traditionally carries the number without its
                // prefix, the country being in the NAD): reported, not fatal.
                if inv.syntax == Some(Syntax::Edifact) {
                    if let Some(v) = out.violations.last_mut() {
                        v.severity = Severity::Warning;
                        v.message
                            .push_str(" (EDIFACT: a warning, as in the official EDIFACT binding.)");
                    }
                }
            }
        }
    }

    // The official rules on the totals have the monetary total group as
    // their context: given it, a missing operand makes the equality false
    // and the rule fires (besides the presence rule of the missing term).
    let totals_given = t.line_net_total.is_some()
        || t.allowance_total.is_some()
        || t.charge_total.is_some()
        || t.total_without_vat.is_some()
        || t.vat_total.is_some()
        || t.total_with_vat.is_some()
        || t.prepaid.is_some()
        || t.rounding.is_some()
        || t.amount_due.is_some();

    // BR-CO-10: BT-106 = round(Σ BT-131).
    if scope.lines && totals_given && t.line_net_total.is_none() {
        out.emit(
            "BR-CO-10",
            format!(
                "The sum of line net amounts (BT-106) is missing, so it cannot equal the sum of the line net amounts (BT-131), {}.",
                amt_opt(agg.line_net.get().and_then(round2))
            ),
        );
    }
    // Factur-X EXTENDED states it with a tolerance of 0.01 per line
    // (BR-FXEXT-CO-10), over its detail lines only.
    let tolerance = if super::factur_x_profile(inv) == Some(super::FxProfile::Extended) {
        Decimal::new(inv.lines.len() as i64, 2)
    } else {
        Decimal::ZERO
    };
    if scope.lines {
        if let (Some(stated), Some(sum)) = (t.line_net_total, agg.line_net.get()) {
            if let Some(expected) = round2(sum) {
                if stated
                    .checked_sub(expected)
                    .is_none_or(|d| d.abs() > tolerance)
                {
                    out.emit(
                        "BR-CO-10",
                        format!(
                            "The sum of the line net amounts (BT-131) is {} but the invoice states {} as the sum of line net amounts (BT-106).",
                            amt(expected),
                            amt(stated)
                        ),
                    );
                }
            }
        }
    }

    if scope.vat_breakdown {
        // BR-CO-11 / BR-CO-12: the document allowance and charge totals;
        // the total is required as soon as there is one allowance (charge).
        for (stated, sum, count, rule, what, bt_total, bt_item) in [
            (
                t.allowance_total,
                agg.allowance_sum.get(),
                inv.allowances.len(),
                "BR-CO-11",
                "allowances",
                "BT-107",
                "BT-92",
            ),
            (
                t.charge_total,
                agg.charge_sum.get(),
                inv.charges.len(),
                "BR-CO-12",
                "charges",
                "BT-108",
                "BT-99",
            ),
        ] {
            match (stated, sum) {
                (Some(stated), Some(sum)) if round2(sum).is_some_and(|e| e != stated) => {
                    {
                        out.emit(
                            rule,
                            format!(
                                "The document level {what} ({bt_item}) add up to {} but the sum of {what} ({bt_total}) is {}.",
                                amt(sum),
                                amt(stated)
                            ),
                        );
                    }
                }
                (None, sum) if count > 0 => out.emit(
                    rule,
                    format!(
                        "The invoice has {count} document level {what} (together {}) but no sum of {what} ({bt_total}).",
                        amt_opt(sum)
                    ),
                ),
                _ => {}
            }
        }
    }

    // BR-CO-13: BT-109 = BT-106 − BT-107 + BT-108 (as stated, not re-summed).
    if !scope.minimum
        && totals_given
        && (t.total_without_vat.is_none() || t.line_net_total.is_none())
    {
        out.emit(
            "BR-CO-13",
            format!(
                "The total without VAT (BT-109) cannot be checked against the line net amounts (BT-106) minus allowances (BT-107) plus charges (BT-108): {} missing.",
                match (t.total_without_vat, t.line_net_total) {
                    (None, None) => "BT-109 and BT-106 are",
                    (None, _) => "BT-109 is",
                    _ => "BT-106 is",
                }
            ),
        );
    }
    if !scope.minimum {
        if let (Some(without), Some(lines)) = (t.total_without_vat, t.line_net_total) {
            let expected = match (t.allowance_total, t.charge_total) {
                (None, None) => Some(lines),
                (a, c) => lines
                    .checked_sub(a.unwrap_or_default())
                    .and_then(|v| v.checked_add(c.unwrap_or_default()))
                    .and_then(round2),
            };
            if let Some(expected) = expected {
                if without != expected {
                    out.emit(
                        "BR-CO-13",
                        format!(
                            "The total without VAT (BT-109) is {} but the line net amounts (BT-106) {} minus allowances (BT-107) {} plus charges (BT-108) {} give {}.",
                            amt(without),
                            amt(lines),
                            amt(t.allowance_total.unwrap_or_default()),
                            amt(t.charge_total.unwrap_or_default()),
                            amt(expected)
                        ),
                    );
                }
            }
        }
    }

    // BR-CO-14: BT-110 = round(Σ BT-117), when there is a breakdown.
    if scope.vat_breakdown && !inv.vat_breakdown.is_empty() {
        // The UBL binding states it on the TaxTotal holding the breakdown:
        // without its TaxAmount (BT-110) the equation is false. (The CII
        // one is stated on BT-110 itself.)
        if t.vat_total.is_none() && inv.syntax == Some(crate::model::Syntax::Ubl) {
            out.emit(
                "BR-CO-14",
                "The VAT breakdown is given but not the total VAT amount (BT-110) its tax amounts (BT-117) add up to.".into(),
            );
        }
        if let (Some(stated), Some(sum)) = (t.vat_total, agg.breakdown_tax.get()) {
            if round2(sum).is_some_and(|e| e != stated) {
                out.emit(
                    "BR-CO-14",
                    format!(
                        "The total VAT amount (BT-110) is {} but the VAT breakdown tax amounts (BT-117) add up to {}.",
                        amt(stated),
                        amt(sum)
                    ),
                );
            }
        }
    }

    // BR-CO-15: BT-112 = round(BT-109 + BT-110). The schematron requires
    // BT-110 for it (one TaxTotal in the invoice currency).
    if filled(&inv.currency) && t.vat_total_repeats > 0 {
        out.emit(
            "BR-CO-15",
            format!(
                "The invoice total VAT amount (BT-110) is given {} times in the invoice currency; give it once.",
                t.vat_total_repeats + 1
            ),
        );
    } else if filled(&inv.currency)
        && (t.total_with_vat.is_none() || t.total_without_vat.is_none())
        && match inv.syntax {
            // UBL states it on the root, CII on the monetary summation.
            Some(Syntax::Ubl) => true,
            Some(Syntax::Cii) | Some(Syntax::FacturX) => totals_given,
            _ => false,
        }
    {
        out.emit(
            "BR-CO-15",
            format!(
                "The total with VAT (BT-112) cannot be checked against the total without VAT (BT-109) plus the total VAT (BT-110): {} missing.",
                match (t.total_with_vat, t.total_without_vat) {
                    (None, None) => "BT-112 and BT-109 are",
                    (None, _) => "BT-112 is",
                    _ => "BT-109 is",
                }
            ),
        );
    } else if filled(&inv.currency) {
        if let (Some(with), Some(without)) = (t.total_with_vat, t.total_without_vat) {
            match t.vat_total {
                // The UBL binding wants exactly one BT-110 in the invoice
                // currency; the CII and EDIFACT bindings also accept
                // BT-112 = BT-109 when there is none (no VAT at all).
                None if matches!(
                    inv.syntax,
                    Some(Syntax::Cii) | Some(Syntax::FacturX) | Some(Syntax::Edifact)
                ) => {
                    if with != without {
                        out.emit(
                            "BR-CO-15",
                            format!(
                                "No total VAT amount (BT-110) is given, so the total with VAT (BT-112) {} should equal the total without VAT (BT-109) {}.",
                                amt(with),
                                amt(without)
                            ),
                        );
                    }
                }
                None => out.emit(
                    "BR-CO-15",
                    format!(
                        "The invoice total VAT amount (BT-110) is missing, so the total with VAT (BT-112) {} cannot be checked against the total without VAT (BT-109) {}.",
                        amt(with),
                        amt(without)
                    ),
                ),
                // The CII binding accepts BT-112 = BT-109 whatever BT-110
                // says (`... or GrandTotalAmount = TaxBasisTotalAmount`).
                Some(_)
                    if with == without
                        && matches!(inv.syntax, Some(Syntax::Cii) | Some(Syntax::FacturX)) => {}
                Some(vat) => {
                    if let Some(expected) = without.checked_add(vat).and_then(round2) {
                        if with != expected {
                            out.emit(
                                "BR-CO-15",
                                format!(
                                    "The total with VAT (BT-112) is {} but the total without VAT (BT-109) {} plus the total VAT (BT-110) {} give {}.",
                                    amt(with),
                                    amt(without),
                                    amt(vat),
                                    amt(expected)
                                ),
                            );
                        }
                    }
                }
            }
        }
    }

    // BR-CO-16: BT-115 = BT-112 − BT-113 + BT-114, in the schematron's four
    // cases (a zero paid or rounding amount counts as absent there).
    if totals_given && (t.amount_due.is_none() || t.total_with_vat.is_none()) {
        out.emit(
            "BR-CO-16",
            format!(
                "The amount due (BT-115) cannot be checked against the total with VAT (BT-112) minus the paid amount (BT-113) plus the rounding amount (BT-114): {} missing.",
                match (t.amount_due, t.total_with_vat) {
                    (None, None) => "BT-115 and BT-112 are",
                    (None, _) => "BT-115 is",
                    _ => "BT-112 is",
                }
            ),
        );
    }
    if let (Some(due), Some(with)) = (t.amount_due, t.total_with_vat) {
        let prepaid = t.prepaid.filter(|p| !p.is_zero());
        let rounding = t.rounding.filter(|r| !r.is_zero());
        let ok = match (prepaid, rounding) {
            (None, None) => Some(due == with),
            (Some(p), None) => with.checked_sub(p).and_then(round2).map(|e| due == e),
            (Some(p), Some(r)) => {
                let left = due.checked_sub(r).and_then(round2);
                let right = with.checked_sub(p).and_then(round2);
                left.zip(right).map(|(l, r)| l == r)
            }
            (None, Some(r)) => due.checked_sub(r).and_then(round2).map(|l| l == with),
        };
        if ok == Some(false) {
            let expected = with
                .checked_sub(prepaid.unwrap_or_default())
                .and_then(|v| v.checked_add(rounding.unwrap_or_default()));
            out.emit(
                "BR-CO-16",
                format!(
                    "The amount due (BT-115) is {} but the total with VAT (BT-112) {} minus the paid amount (BT-113) {} plus the rounding amount (BT-114) {} give {}.",
                    amt(due),
                    amt(with),
                    amt(t.prepaid.unwrap_or_default()),
                    amt(t.rounding.unwrap_or_default()),
                    amt_opt(expected)
                ),
            );
        }
    }

    // BR-CO-17: each breakdown's tax = taxable × rate, within 1.00; a
    // breakdown whose rate rounds to 0 (or has none) has a tax rounding to 0.
    if scope.vat_breakdown {
        for (i, b) in inv.vat_breakdown.iter().enumerate() {
            out.group = Some(At::Breakdown(i));
            // Without BT-117 the official equality is false: BR-CO-17
            // fires besides BR-46.
            let Some(tax) = b.tax_amount else {
                out.emit(
                    "BR-CO-17",
                    format!(
                        "VAT breakdown {} (category {}) has no tax amount (BT-117) to check against its taxable amount and rate.",
                        i + 1,
                        b.category.as_deref().unwrap_or("?")
                    ),
                );
                continue;
            };
            let rounds_to_zero = |v: Decimal| round0(v).is_some_and(|r| r.is_zero());
            let ok = match b.rate {
                None => rounds_to_zero(tax),
                Some(r) if rounds_to_zero(r) => rounds_to_zero(tax),
                Some(r) => {
                    // Without BT-116 the official equation is false too.
                    let Some(taxable) = b.taxable_amount else {
                        out.emit(
                            "BR-CO-17",
                            format!(
                                "VAT breakdown {} (category {}) has no taxable amount (BT-116) to check its tax amount against.",
                                i + 1,
                                b.category.as_deref().unwrap_or("?")
                            ),
                        );
                        continue;
                    };
                    let Some(expected) = taxable
                        .abs()
                        .checked_mul(r)
                        .and_then(|v| v.checked_div(Decimal::ONE_HUNDRED))
                        .and_then(round2)
                    else {
                        continue;
                    };
                    within_one(tax.abs(), expected, inv.syntax)
                }
            };
            if !ok {
                let cat = b.category.as_deref().unwrap_or("?");
                let msg = match (b.rate, b.taxable_amount) {
                    (Some(r), Some(taxable)) if !rounds_to_zero(r) => format!(
                        "VAT breakdown {} (category {cat}) states a tax amount (BT-117) of {} but the taxable amount {} at {} % gives {}.",
                        i + 1,
                        amt(tax),
                        amt(taxable),
                        super::rate(r),
                        amt_opt(taxable.abs().checked_mul(r).and_then(|v| v.checked_div(Decimal::ONE_HUNDRED)).and_then(round2))
                    ),
                    _ => format!(
                        "VAT breakdown {} (category {cat}) has a rate of {} so its tax amount (BT-117) should be 0, not {}.",
                        i + 1,
                        b.rate.map_or_else(|| "none".to_string(), |r| format!("{} %", super::rate(r))),
                        amt(tax)
                    ),
                };
                out.emit("BR-CO-17", msg);
            }
        }
        out.group = None;
    }

    if scope.vat_breakdown && inv.vat_breakdown.is_empty() {
        out.emit(
            "BR-CO-18",
            "The invoice has no VAT breakdown (BG-23); at least one is required.".into(),
        );
    }

    // BR-CO-26: the seller is identified somehow.
    let s = &inv.seller;
    if s.identifiers.is_empty() && s.legal_registration_id.is_none() && s.vat_id.is_none() {
        out.emit(
            "BR-CO-26",
            "The seller has no identifier (BT-29), legal registration identifier (BT-30) or VAT identifier (BT-31); give at least one.".into(),
        );
    }
}
