//! The language of what a partner reads from quai: `[[partner]] language =
//! "fr" | "en"` (default `en`). A leaf: the configuration parses it, the
//! digest writes its sentences with [`DigestWords`], and
//! [`crate::partner_text`] gives each finding's message in it.
//!
//! What is translated: the digest mail (subject, greeting, paragraphs, table
//! headings, list lines), and the messages of the integration reports, the
//! CDAR statuses' reasons and the digests: rule messages (EN 16931 in
//! French, BR-FR in English), duplicates, unroutable invoices and flows
//! refused whole. What is not, on purpose: machine-read fields (the CSV
//! header, report and CDAR field names, rule ids, terms, IRR/REJ codes).

use serde::Serialize;

/// A partner's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    En,
    Fr,
}

impl Language {
    pub const NAMES: &'static [&'static str] = &["en", "fr"];

    pub fn parse(s: &str) -> Option<Language> {
        match s {
            "en" => Some(Language::En),
            "fr" => Some(Language::Fr),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Fr => "fr",
        }
    }

    pub fn digest(self) -> &'static DigestWords {
        match self {
            Language::En => &EN,
            Language::Fr => &FR,
        }
    }
}

/// The words of a digest mail in one language.
#[derive(Debug)]
pub struct DigestWords {
    pub hello: &'static str,
    /// (one, many) for the subject's counts.
    pub rejected_invoices: (&'static str, &'static str),
    pub refused_flows: (&'static str, &'static str),
    pub and: &'static str,
    /// `quai: {what} for {partner} ({date})`: the word between.
    pub subject_for: &'static str,
    pub subject_colon: &'static str,
    /// `{n} … sent by {partner} …`: before and after the partner.
    pub rejects_intro: (&'static str, &'static str),
    pub rejects_then: &'static str,
    pub flows_intro: (&'static str, &'static str),
    pub flows_then: &'static str,
    pub flow: &'static str,
    pub invoice: &'static str,
    pub no_number: &'static str,
    pub of_date: &'static str,
    pub received: &'static str,
    /// `... and {n} more in the attached CSV.`: before and after the count.
    pub more: (&'static str, &'static str),
    pub rejects_head: [&'static str; 7],
    pub flows_head: [&'static str; 5],
}

const EN: DigestWords = DigestWords {
    hello: "Hello,",
    rejected_invoices: ("rejected invoice", "rejected invoices"),
    refused_flows: ("refused flow", "refused flows"),
    and: "and",
    subject_for: "for",
    subject_colon: "quai:",
    rejects_intro: ("invoice(s) sent by", "were rejected and not reported in an earlier digest."),
    rejects_then: "Each rejected invoice must be corrected and sent again; the attached CSV lists all of them.",
    flows_intro: ("flow(s) sent by", "were refused whole: nothing in them was processed."),
    flows_then: "Each refused flow must be corrected and sent again.",
    flow: "flow",
    invoice: "invoice",
    no_number: "(no number)",
    of_date: "of",
    received: "received",
    more: ("... and", "more in the attached CSV."),
    rejects_head: ["Flow", "File", "Invoice", "Date", "Amount", "Rules", "Messages"],
    flows_head: ["Flow", "File", "Received", "Reason", "Message"],
};

const FR: DigestWords = DigestWords {
    hello: "Bonjour,",
    rejected_invoices: ("facture rejetée", "factures rejetées"),
    refused_flows: ("flux refusé", "flux refusés"),
    and: "et",
    subject_for: "pour",
    subject_colon: "quai :",
    rejects_intro: (
        "facture(s) envoyée(s) par",
        "ont été rejetées et ne figuraient dans aucun récapitulatif précédent.",
    ),
    rejects_then: "Chaque facture rejetée doit être corrigée et envoyée de nouveau ; le fichier CSV joint les liste toutes.",
    flows_intro: (
        "flux envoyé(s) par",
        "ont été refusés en entier : rien n'y a été traité.",
    ),
    flows_then: "Chaque flux refusé doit être corrigé et envoyé de nouveau.",
    flow: "flux",
    invoice: "facture",
    no_number: "(sans numéro)",
    of_date: "du",
    received: "reçu le",
    more: ("... et", "de plus dans le fichier CSV joint."),
    rejects_head: ["Flux", "Fichier", "Facture", "Date", "Montant", "Règles", "Messages"],
    flows_head: ["Flux", "Fichier", "Reçu", "Motif", "Message"],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for n in Language::NAMES {
            assert_eq!(Language::parse(n).unwrap().as_str(), *n);
        }
        assert_eq!(Language::parse("de"), None);
        assert_eq!(Language::default(), Language::En);
    }
}
