//! Text helpers shared by the XML writers: escaping and the decimal forms
//! the syntaxes expect.

use chrono::NaiveDate;
use rust_decimal::Decimal;

pub(super) fn esc(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

/// An amount with exactly two decimals.
pub(super) fn a2(v: Decimal) -> String {
    let mut v = v;
    v.rescale(2);
    v.to_string()
}

pub(super) fn rate_str(r: Decimal) -> String {
    r.normalize().to_string()
}

/// A date as `YYYYMMDD` (CII format 102, EDIFACT DTM format 102).
pub(super) fn cii_date(d: NaiveDate) -> String {
    d.format("%Y%m%d").to_string()
}
