//! BR-DEC rules: amounts carry at most two decimals.
//!
//! The schematron counts the characters after the decimal point as written
//! (`string-length(substring-after(x, '.')) <= 2`); the readers keep the
//! written scale in the `Decimal`, so `scale()` is that count (`10.500`
//! has scale 3 and fails, as it does in the schematron).

use crate::positions::At;
use rust_decimal::Decimal;

use crate::model::{Invoice, Line, Syntax};

use super::{amt, LineRef, Out, Scope};

/// `what` names the amount, put into words only for a finding (it was a
/// string formatted per line of every invoice).
fn check(value: Option<Decimal>, rule: &'static str, what: impl FnOnce() -> String, out: &mut Out) {
    if let Some(v) = value {
        if v.scale() > 2 {
            let what = what();
            out.emit(
                rule,
                format!(
                    "{what} is written with {} decimals ({}); at most 2 are allowed.",
                    v.scale(),
                    amt(v)
                ),
            );
        }
    }
}

pub(super) fn document(inv: &Invoice, scope: Scope, out: &mut Out) {
    let t = &inv.totals;
    if scope.vat_breakdown {
        for (i, a) in inv.allowances.iter().enumerate() {
            out.group = Some(At::Allowance(i));
            let n = i + 1;
            check(
                a.amount,
                "BR-DEC-01",
                || format!("The amount (BT-92) of document level allowance {n}"),
                out,
            );
            check(
                a.base_amount,
                "BR-DEC-02",
                || format!("The base amount (BT-93) of document level allowance {n}"),
                out,
            );
        }
        out.group = None;
        for (i, c) in inv.charges.iter().enumerate() {
            out.group = Some(At::Charge(i));
            let n = i + 1;
            check(
                c.amount,
                "BR-DEC-05",
                || format!("The amount (BT-99) of document level charge {n}"),
                out,
            );
            check(
                c.base_amount,
                "BR-DEC-06",
                || format!("The base amount (BT-100) of document level charge {n}"),
                out,
            );
        }
        out.group = None;
    }
    check(
        t.line_net_total,
        "BR-DEC-09",
        || "The sum of line net amounts (BT-106)".to_string(),
        out,
    );
    check(
        t.allowance_total,
        "BR-DEC-10",
        || "The sum of allowances (BT-107)".to_string(),
        out,
    );
    check(
        t.charge_total,
        "BR-DEC-11",
        || "The sum of charges (BT-108)".to_string(),
        out,
    );
    check(
        t.total_without_vat,
        "BR-DEC-12",
        || "The total without VAT (BT-109)".to_string(),
        out,
    );
    // The CII binding states BR-DEC-13 and BR-DEC-15 on the value
    // (`. = round(. * 100) div 100`): trailing zeros pass there.
    let cii = matches!(inv.syntax, Some(Syntax::Cii) | Some(Syntax::FacturX));
    let by_value = |v: Option<Decimal>| if cii { v.map(|d| d.normalize()) } else { v };
    check(
        by_value(t.vat_total),
        "BR-DEC-13",
        || "The total VAT amount (BT-110)".to_string(),
        out,
    );
    check(
        t.total_with_vat,
        "BR-DEC-14",
        || "The total with VAT (BT-112)".to_string(),
        out,
    );
    // The CII BR-DEC-15 selects `TaxTotalAmount[@currencyID = TaxCurrencyCode
    // ...] or not(TaxCurrencyCode)`: with BT-6 given (even empty) and no tax
    // total in it, none is selected and the rule fails.
    let bt6_given = inv.vat_currency.is_some() || out.given("BT-6").is_some();
    let bt6_is_bt5 =
        inv.vat_currency.as_deref().map(str::trim) == inv.currency.as_deref().map(str::trim);
    if cii && bt6_given && !bt6_is_bt5 && t.vat_total.is_some() && t.vat_total_accounting.is_none()
    {
        out.emit(
            "BR-DEC-15",
            "A VAT accounting currency (BT-6) is given but no total VAT amount in it (BT-111), so its decimals cannot be checked.".into(),
        );
    }
    check(
        by_value(t.vat_total_accounting),
        "BR-DEC-15",
        || "The total VAT in accounting currency (BT-111)".to_string(),
        out,
    );
    check(
        t.prepaid,
        "BR-DEC-16",
        || "The paid amount (BT-113)".to_string(),
        out,
    );
    check(
        t.rounding,
        "BR-DEC-17",
        || "The rounding amount (BT-114)".to_string(),
        out,
    );
    check(
        t.amount_due,
        "BR-DEC-18",
        || "The amount due (BT-115)".to_string(),
        out,
    );
    if scope.vat_breakdown {
        for (i, b) in inv.vat_breakdown.iter().enumerate() {
            out.group = Some(At::Breakdown(i));
            let n = i + 1;
            check(
                b.taxable_amount,
                "BR-DEC-19",
                || format!("The taxable amount (BT-116) of VAT breakdown {n}"),
                out,
            );
            check(
                b.tax_amount,
                "BR-DEC-20",
                || format!("The tax amount (BT-117) of VAT breakdown {n}"),
                out,
            );
        }
        out.group = None;
    }
}

pub(super) fn line(l: &Line, at: LineRef<'_>, out: &mut Out) {
    check(
        l.net_amount,
        "BR-DEC-23",
        || format!("The net amount (BT-131) of {at}"),
        out,
    );
    for (i, a) in l.allowances.iter().enumerate() {
        check(
            a.amount,
            "BR-DEC-24",
            || format!("The amount (BT-136) of allowance {} on {at}", i + 1),
            out,
        );
        check(
            a.base_amount,
            "BR-DEC-25",
            || format!("The base amount (BT-137) of allowance {} on {at}", i + 1),
            out,
        );
    }
    for (i, c) in l.charges.iter().enumerate() {
        check(
            c.amount,
            "BR-DEC-27",
            || format!("The amount (BT-141) of charge {} on {at}", i + 1),
            out,
        );
        check(
            c.base_amount,
            "BR-DEC-28",
            || format!("The base amount (BT-142) of charge {} on {at}", i + 1),
            out,
        );
    }
}
