//! Conversion: the canonical [`Invoice`] written out as UBL 2.1 or CII D16B.
//!
//! An exchange delivers each invoice in the syntax its recipient asks for
//! (issue 15). Both writers stream into an `io::Write` through
//! [`crate::xml_out::XmlWriter`] (so every partner-supplied text is escaped
//! and only characters XML 1.0 allows come out), in the element order of
//! the syntax's XSD, following the official EN 16931 bindings (CEN/TS
//! 16931-3-2 for UBL, 16931-3-3 for CII, as the readers `crate::ubl` and
//! `crate::cii` read them). Every business term the model holds is written;
//! amounts, quantities and percentages are printed as the model holds them
//! (decimals with their scale, never floats). What a syntax cannot carry,
//! and what it forces to be added, is listed in docs/conformance.md
//! ("Conversion").
//!
//! - [`write_ubl`]: `Invoice` or `CreditNote` by the type code (BT-3),
//! - [`write_cii`]: `rsm:CrossIndustryInvoice` as Factur-X / EN 16931 uses it.

mod cii;
mod ubl;

use std::io::{self, Write};

use crate::model::Invoice;

pub use cii::write_cii;
pub use ubl::write_ubl;

/// A syntax quai can write an invoice in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Syntax {
    Ubl,
    Cii,
}

impl Syntax {
    pub fn as_str(self) -> &'static str {
        match self {
            Syntax::Ubl => "ubl",
            Syntax::Cii => "cii",
        }
    }

    /// `ubl` or `cii` (a recipient's `syntax` setting).
    pub fn parse(s: &str) -> Option<Syntax> {
        match s {
            "ubl" => Some(Syntax::Ubl),
            "cii" => Some(Syntax::Cii),
            _ => None,
        }
    }
}

/// Write `invoice` in `syntax`.
pub fn write<W: Write>(invoice: &Invoice, syntax: Syntax, out: W) -> io::Result<W> {
    match syntax {
        Syntax::Ubl => write_ubl(invoice, out),
        Syntax::Cii => write_cii(invoice, out),
    }
}

/// Whether a type code (BT-3) names a credit note (UBL `CreditNote` root).
pub fn is_credit_note(invoice: &Invoice) -> bool {
    match invoice.type_code.as_deref() {
        Some(code) => crate::cii::is_credit_note_code(code),
        None => invoice.kind == crate::model::DocumentKind::CreditNote,
    }
}

/// BT-8 as UBL codes it (UNTDID 2005: 3 issue date, 35 delivery date, 432
/// paid to date); a CII code (UNTDID 2475: 5, 29, 72) is translated, any
/// other passes as it is.
pub fn tax_point_code_ubl(code: &str) -> &str {
    match code.trim() {
        "5" => "3",
        "29" => "35",
        "72" => "432",
        other => other,
    }
}

/// BT-8 as CII codes it (UNTDID 2475: 5, 29, 72); a UBL code (UNTDID 2005:
/// 3, 35, 432) is translated, any other passes as it is.
pub fn tax_point_code_cii(code: &str) -> &str {
    match code.trim() {
        "3" => "5",
        "35" => "29",
        "432" => "72",
        other => other,
    }
}

/// BT-24 of a CII conversion. The CII quai writes is the Factur-X /
/// EN 16931 CII, whose artefacts allow only the Factur-X profile ids: an
/// invoice that claims one (MINIMUM, BASIC WL, BASIC, EN 16931, EXTENDED,
/// Factur-X or ZUGFeRD 2) keeps it; any other claim (Peppol BIS, which has
/// no CII binding, XRechnung, EXTENDED-CTC-FR, none) becomes
/// `urn:cen.eu:en16931:2017`, the EN 16931 core the conversion conforms to.
pub fn cii_specification_id(spec: Option<&str>) -> &str {
    const EN16931: &str = "urn:cen.eu:en16931:2017";
    match spec.map(str::trim) {
        Some(s)
            if s == EN16931
                || [
                    "urn:factur-x.eu:1p0:",
                    "urn:zugferd.de:2p0:",
                    "urn:zugferd.de:2p1:",
                ]
                .iter()
                .any(|p| s.contains(p)) =>
        {
            s
        }
        _ => EN16931,
    }
}

/// BT-121 as the VATEX code list spells it, in upper case
/// (`vatex-eu-132-1g` is `VATEX-EU-132-1G`): the CEN artefacts compare
/// VATEX codes ignoring case, the Factur-X ones do not. Other codes pass as
/// they are.
pub fn vatex_code(code: &str) -> std::borrow::Cow<'_, str> {
    if code.len() >= 5 && code[..5].eq_ignore_ascii_case("vatex") {
        std::borrow::Cow::Owned(code.to_ascii_uppercase())
    } else {
        std::borrow::Cow::Borrowed(code)
    }
}

/// Decimals as the model holds them (scale kept: `10.50` stays `10.50`).
fn dec(d: &rust_decimal::Decimal) -> String {
    d.to_string()
}
