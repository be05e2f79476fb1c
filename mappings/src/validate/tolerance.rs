//! The schematron's tolerances, shared by the totals (`calc`) and the VAT
//! rules (`vat`): a leaf, so the rule modules import it and not each other.

use rust_decimal::Decimal;

use crate::model::Syntax;

/// The schematron's "within 1.00" (`x - 1 < e and x + 1 > e`). The UBL
/// binding computes it in decimals, so a difference of exactly 1.00 fails;
/// the CII binding subtracts from an untyped value, in binary floating
/// point, and the official CII tests expect exactly 1.00 to pass there.
pub(super) fn within_one(value: Decimal, expected: Decimal, syntax: Option<Syntax>) -> bool {
    let Some(diff) = value.checked_sub(expected).map(|d| d.abs()) else {
        return false;
    };
    match syntax {
        Some(Syntax::Cii) | Some(Syntax::FacturX) => diff <= Decimal::ONE,
        _ => diff < Decimal::ONE,
    }
}
