//! The human text of quai's findings in the partner's language: the
//! message of each reason of an integration report, a CDAR status and a
//! digest (rule violations, `REJ_UNI` duplicates, `REJ_ADR`), and the
//! reason a flow was refused whole (`IRR_*`).
//!
//! Why at rendering and not at validation: the spool keeps one message per
//! reason, written when the flow was read (English for the EN 16931 rules,
//! `REJ_*` and `IRR_*`; the official French for BR-FR), and a partner's
//! language may change after. So the text is chosen here from the rule id,
//! which the spool keeps too: the rule's text in the language
//! (`quai_mappings::validate::rule_text_fr` / `rule_text_en`), followed by
//! the values the stored message interpolated (amounts and numbers as
//! written, quoted values), so both languages carry them. Duplicates and
//! unroutable invoices are read back from their known English sentence.
//! What quai cannot say in the language (a parser's own error) keeps its
//! English detail after a sentence in the language. Machine-read fields
//! (rule ids, codes, terms) are never touched.

use std::borrow::Cow;

use quai_mappings::validate::{rule_text_en, rule_text_fr};

use crate::language::Language;

/// The message of one stored reason as a partner reading `lang` reads it.
pub fn reason_message<'a>(lang: Language, rule: &str, message: &'a str) -> Cow<'a, str> {
    match lang {
        Language::En => english(rule, message),
        Language::Fr => french(rule, message),
    }
}

/// The message of a flow refused whole with `code` (`IRR_*`).
pub fn refusal_message<'a>(lang: Language, code: &str, message: &'a str) -> Cow<'a, str> {
    if lang == Language::En {
        return Cow::Borrowed(message);
    }
    let sentence = match code {
        "IRR_VIDE_F" | "IRR_VID_F" => "Le flux est vide.",
        "IRR_TYPE_F" => "Le type du flux ou d'un de ses fichiers n'est pas accepté (UBL, CII, Factur-X, EDIFACT, ou une archive zip, tar ou gzip de ceux-ci).",
        "IRR_SYNTAX" => "Le flux ne peut pas être lu : sa syntaxe n'est pas valide.",
        "IRR_TAILLE_F" => "Le flux dépasse une limite (taille, nombre de factures ou imbrication d'archives).",
        "IRR_TAILLE_PJ" => "Une pièce jointe dépasse la taille autorisée.",
        "IRR_VID_PJ" => "Une pièce jointe est vide.",
        "IRR_NOM_PJ" => "Le nom d'une pièce jointe n'est pas accepté.",
        "IRR_EXT_DOC" => "L'extension d'un fichier du flux n'est pas acceptée.",
        "IRR_ANTIVIRUS" => "Le flux contient un logiciel malveillant : rien n'y a été lu.",
        "STATUS_REFUSED" => "Des statuts de ce flux ont été refusés (les autres sont enregistrés).",
        _ => "Le flux a été refusé en entier.",
    };
    if let Some(n) = message
        .strip_prefix("the flow holds more than ")
        .and_then(|r| r.strip_suffix(" invoices, the limit per flow"))
    {
        return Cow::Owned(format!(
            "Le flux contient plus de {n} factures, la limite par flux."
        ));
    }
    if message.trim().is_empty() {
        return Cow::Borrowed(sentence);
    }
    Cow::Owned(format!(
        "{sentence} Détail technique (en anglais) : {message}"
    ))
}

/// The word of a rejected invoice without any reason (CDAR).
pub fn rejected(lang: Language) -> &'static str {
    match lang {
        Language::En => "rejected",
        Language::Fr => "rejetée",
    }
}

fn english<'a>(rule: &str, message: &'a str) -> Cow<'a, str> {
    // Only the BR-FR rules are stored in French.
    if !rule.starts_with("BR-FR") {
        return Cow::Borrowed(message);
    }
    let (Some(text), Some(official)) = (rule_text_en(rule), rule_text_fr(rule)) else {
        return Cow::Borrowed(message);
    };
    Cow::Owned(with_values(
        text,
        &values(message, '"', official),
        "Value",
        "Values",
    ))
}

fn french<'a>(rule: &str, message: &'a str) -> Cow<'a, str> {
    if rule.starts_with("BR-FR") {
        return Cow::Borrowed(message);
    }
    match rule {
        "REJ_UNI" => return duplicate_fr(message).map_or(Cow::Borrowed(message), Cow::Owned),
        "REJ_ADR" => return Cow::Owned(unroutable_fr(message)),
        _ => {}
    }
    match (rule_text_fr(rule), rule_text_en(rule)) {
        (Some(text), Some(english)) => {
            let (places, rest) = places_fr(&without_examples(message));
            let mut out = text.to_string();
            if !places.is_empty() {
                out.push_str(&format!(" Concerne : {}.", places.join(", ")));
            }
            Cow::Owned(with_values(
                &out,
                &values(&rest, '\'', english),
                "Valeur relevée",
                "Valeurs relevées",
            ))
        }
        // The syntax bindings' findings in their known shapes; any other
        // rule of no catalog (structure, syntax): a French sentence, then
        // the English finding, which names the element.
        _ => Cow::Owned(binding_fr(message).or_else(|| xsd_fr(rule, message)).unwrap_or_else(|| {
            format!(
                "Le document ne respecte pas la règle {rule}. Détail technique (en anglais) : {message}"
            )
        })),
    }
}

/// Where an English message says a finding is (`Invoice line 3`, `VAT
/// breakdown 2`, `Line allowance 1 of line 4`...), in French, and the
/// message without those places (their numbers are no values).
fn places_fr(message: &str) -> (Vec<String>, String) {
    const PLACES: &[(&str, &str)] = &[
        ("invoice line ", "ligne"),
        ("line allowance ", "remise de ligne"),
        ("line charge ", "charge de ligne"),
        ("document level allowance ", "remise au niveau du document"),
        ("document level charge ", "charge au niveau du document"),
        ("vat breakdown ", "ventilation de TVA"),
        ("credit transfer ", "virement"),
        ("supporting document ", "justificatif"),
        (
            "preceding invoice reference ",
            "référence de facture antérieure",
        ),
        ("payment means ", "moyen de paiement"),
        ("line ", "ligne"),
    ];
    let mut rest = message.to_string();
    let mut found = Vec::new();
    for (phrase, french) in PLACES {
        loop {
            let lower = rest.to_ascii_lowercase();
            let at = lower.match_indices(phrase).map(|(i, _)| i).find(|&i| {
                let before = lower[..i].chars().next_back();
                let after = lower[i + phrase.len()..].chars().next();
                !before.is_some_and(char::is_alphanumeric)
                    && after.is_some_and(|c| c.is_ascii_digit())
            });
            let Some(i) = at else { break };
            let start = i + phrase.len();
            let end = start
                + rest[start..]
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len() - start);
            let place = format!("{french} {}", &rest[start..end]);
            if !found.contains(&place) {
                found.push(place);
            }
            rest.replace_range(i..end, &" ".repeat(end - i));
        }
    }
    (found, rest)
}

/// The message without its `e.g. ...` asides (examples are no values).
fn without_examples(message: &str) -> String {
    let mut out = message.to_string();
    while let Some(i) = out.find("e.g.") {
        let end = out[i..].find(')').map_or(out.len(), |j| i + j);
        out.replace_range(i..end, &" ".repeat(end - i));
    }
    out
}

/// The findings of the EN 16931 syntax bindings (`UBL-CR-*`, `UBL-SR-*`,
/// `CII-SR-*`...) in their two common shapes, in French: an element the
/// norm does not use, and an element given too often or too rarely. The
/// paths are XML names and stay as they are.
fn binding_fr(message: &str) -> Option<String> {
    let (body, binding) = if let Some(b) = message.strip_suffix(" (EN 16931 UBL binding)") {
        (b, "UBL")
    } else {
        (message.strip_suffix(" (EN 16931 CII binding)")?, "CII")
    };
    let said = if let Some(what) =
        body.strip_suffix(" is not used in EN 16931; the recipient does not read it")
    {
        let what = match what.strip_prefix("attribute @") {
            Some(rest) => format!("l'attribut @{}", rest.replacen(" of ", " de ", 1)),
            None => what.to_string(),
        };
        format!("{what} n'est pas utilisé par l'EN 16931 : le destinataire ne le lit pas")
    } else {
        let (what, count) = body.rsplit_once(" must occur ")?;
        let (want, seen) = count.split_once(", found ")?;
        let want = if let Some(n) = want.strip_prefix("at most ") {
            format!("au plus {}", n.strip_suffix(" time(s)")?)
        } else if let Some(n) = want.strip_prefix("at least ") {
            format!("au moins {}", n.strip_suffix(" time(s)")?)
        } else {
            format!(
                "exactement {}",
                want.strip_prefix("exactly ")?.strip_suffix(" time(s)")?
            )
        };
        format!("{what} doit apparaître {want} fois ; trouvé {seen} fois")
    };
    Some(format!("{said} (liaison {binding} de l'EN 16931)"))
}

/// The structure check's findings (rule `XSD`: `{at}: ...`, the XPath
/// first) in French; the XPath and the element names stay as they are.
fn xsd_fr(rule: &str, message: &str) -> Option<String> {
    if rule != "XSD" {
        return None;
    }
    let (at, what) = message.split_once(": ")?;
    // `element 'a'` / `element (one of a, b)` of the mappings' `names`.
    let element = |w: &str| -> String {
        match w
            .strip_prefix("element (one of ")
            .and_then(|r| r.strip_suffix(')'))
        {
            Some(list) => format!("l'un des éléments {list}"),
            None => w.replacen("element ", "l'élément ", 1),
        }
    };
    let said = if let Some(rest) = what.strip_prefix("the mandatory ") {
        match rest.split_once(" is missing (expected before ") {
            Some((want, before)) => format!(
                "{} obligatoire manque (attendu avant {})",
                element(want),
                before.strip_suffix(')')?
            ),
            None => format!(
                "{} obligatoire manque",
                element(rest.strip_suffix(" is missing")?)
            ),
        }
    } else if let Some(r) = what.strip_prefix("the attribute ") {
        format!(
            "l'attribut {} est obligatoire",
            r.strip_suffix(" is required")?
        )
    } else if let Some(r) = what.strip_prefix("attribute ") {
        let a = r.strip_suffix(
            " is not allowed here (the schema does not define it for this element)",
        )?;
        format!(
            "l'attribut {a} n'est pas permis ici (le schéma ne le définit pas pour cet élément)"
        )
    } else if what == "text is not allowed here (this element holds elements only)" {
        "du texte n'est pas permis ici (cet élément ne contient que des éléments)".to_string()
    } else if what == "this element must be empty" {
        "cet élément doit être vide".to_string()
    } else if let Some(r) = what.strip_prefix("element ") {
        let (name, tail) = r.split_once(' ')?;
        let tail = if let Some(n) = tail
            .strip_prefix("is given more often than the schema allows (at most ")
            .and_then(|t| t.strip_suffix(" time(s))"))
        {
            format!("est donné plus souvent que le schéma ne le permet (au plus {n} fois)")
        } else if let Some(next) = tail
            .strip_prefix("is out of its place (it comes before ")
            .and_then(|t| t.strip_suffix(')'))
        {
            format!("n'est pas à sa place (il vient avant {})", element(next))
        } else if let Some(parent) = tail
            .strip_prefix("is not allowed here (the schema has no such child in ")
            .and_then(|t| t.strip_suffix(')'))
        {
            format!("n'est pas permis ici (le schéma n'a pas cet enfant dans {parent})")
        } else if tail == "is not allowed here: this element holds a value, not elements" {
            "n'est pas permis ici : cet élément contient une valeur, pas des éléments".to_string()
        } else if tail == "is in a namespace this syntax does not use here" {
            "est dans un espace de noms que cette syntaxe n'utilise pas ici".to_string()
        } else {
            return None;
        };
        format!("l'élément {name} {tail}")
    } else {
        return None;
    };
    Some(format!("{at} : {said}"))
}

/// `text`, then ` Values: a; b.` when the stored message had values.
fn with_values(text: &str, values: &[String], one: &str, many: &str) -> String {
    if values.is_empty() {
        return text.to_string();
    }
    let label = if values.len() == 1 { one } else { many };
    // French puts a space before the colon.
    let colon = if one.starts_with("Valeur") { " :" } else { ":" };
    format!("{text} {label}{colon} {}.", values.join(" ; "))
}

/// The values a message interpolates: the segments between `quote`s (an
/// opening quote after no letter, a closing one before none, so `buyer's`
/// is no quote), and the numbers (amounts, dates, counts) outside them that
/// are not part of an id (`BT-106`, `BR-CO-10`) nor already in `rule_text`.
fn values(message: &str, quote: char, rule_text: &str) -> Vec<String> {
    let known: Vec<String> = numbers(rule_text);
    let chars: Vec<char> = message.chars().collect();
    let word = |i: usize| chars.get(i).is_some_and(|c| c.is_alphanumeric());
    let mut out = Vec::new();
    let mut outside = String::new();
    let mut i = 0;
    while i < chars.len() {
        let opens = chars[i] == quote && (i == 0 || !word(i - 1));
        let close = opens
            .then(|| (i + 1..chars.len()).find(|&j| chars[j] == quote && !word(j + 1)))
            .flatten();
        match close {
            Some(j) => {
                out.push(chars[i..=j].iter().collect::<String>());
                outside.push(' ');
                i = j + 1;
            }
            None => {
                outside.push(chars[i]);
                i += 1;
            }
        }
    }
    for n in numbers(&outside) {
        if !known.contains(&n) && !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// The numbers of a text as written: `801.78`, `-5.00`, `2026-11-28`, `3`.
fn numbers(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let prev = if i > 0 { Some(chars[i - 1]) } else { None };
        let starts = c.is_ascii_digit()
            && !prev.is_some_and(|p| p.is_alphanumeric() || matches!(p, '-' | '_' | '/' | '.'));
        let signed = c == '-'
            && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())
            && !prev.is_some_and(|p| p.is_alphanumeric() || matches!(p, '-' | '_' | '/'));
        if !(starts || signed) {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < chars.len() {
            let d = chars[j];
            let joins = matches!(d, '.' | ',' | '-' | ':')
                && chars.get(j + 1).is_some_and(|n| n.is_ascii_digit());
            if d.is_ascii_digit() || joins {
                j += 1;
            } else {
                break;
            }
        }
        let mut n: String = chars[i..j].iter().collect();
        // A rate keeps its percent sign.
        if chars.get(j) == Some(&'%') {
            n.push_str(" %");
            j += 1;
        } else if chars.get(j) == Some(&' ') && chars.get(j + 1) == Some(&'%') {
            n.push_str(" %");
            j += 2;
        }
        out.push(n);
        i = j;
    }
    out
}

/// `duplicate invoice: number N of seller S for year Y WHAT (DOUBLON)`
/// (`quai_spool`'s REJ_UNI reason) in French.
fn duplicate_fr(message: &str) -> Option<String> {
    let body = message
        .strip_prefix("duplicate invoice: number ")?
        .strip_suffix(" (DOUBLON)")?;
    let (number, rest) = body.split_once(" of seller ")?;
    let (seller, rest) = rest.rsplit_once(" for year ")?;
    let (year, what) = rest.split_once(' ')?;
    let what = if what == "appears twice in this flow" {
        "figure deux fois dans ce flux".to_string()
    } else if let Some(flow) = what.strip_prefix("was already received in flow ") {
        format!("a déjà été reçue dans le flux {flow}")
    } else if what == "was already received" {
        "a déjà été reçue".to_string()
    } else {
        return None;
    };
    Some(format!(
        "facture en double : le numéro {number} du vendeur {seller} pour l'année {year} {what} (DOUBLON)"
    ))
}

/// The REJ_ADR reasons of `exchange::unroutable` in French.
fn unroutable_fr(message: &str) -> String {
    if let Some(key) = message
        .strip_prefix("no partner receives invoices for the buyer's address ")
        .and_then(|r| r.strip_suffix(": no valid line of the directory"))
    {
        return format!(
            "aucun partenaire ne reçoit les factures de l'adresse de l'acheteur {key} : aucune ligne valide de l'annuaire"
        );
    }
    "l'acheteur n'a ni adresse électronique (BT-49 avec son schéma) ni SIREN ou SIRET \
     (BT-47, schéma 0002 ou 0009) : la facture ne peut pas être acheminée"
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_en16931_rule_in_french_keeps_the_values_of_its_message() {
        let m = "The sum of the line net amounts (BT-131) is 800.00 but the invoice states 801.78 as the sum of line net amounts (BT-106).";
        let fr = reason_message(Language::Fr, "BR-CO-10", m);
        assert_eq!(
            fr,
            "Somme des montants nets des lignes = Σ des montants nets de ligne (BT-131). Valeurs relevées : 800.00 ; 801.78."
        );
        assert_eq!(reason_message(Language::En, "BR-CO-10", m), m);
        let m = "The seller electronic address (BT-34) 'x@y' has no scheme identifier.";
        assert!(reason_message(Language::Fr, "BR-62", m).ends_with("Valeur relevée : 'x@y'."));
        let m = "The payee (BG-10) has the seller's name; the buyer's 'ACME' is line 2.";
        assert_eq!(values(m, '\'', ""), vec!["'ACME'", "2"]);
        let m = "Invoice line 3 has no line identifier (BT-126).";
        assert_eq!(
            reason_message(Language::Fr, "BR-21", m),
            "Chaque ligne de facture doit avoir un identifiant de ligne. Concerne : ligne 3."
        );
        let m = "Line allowance 1 of line 4 has no amount (BT-136).";
        assert_eq!(
            reason_message(Language::Fr, "BR-41", m),
            "Chaque remise de ligne doit avoir un montant. Concerne : remise de ligne 1, ligne 4."
        );
        let m = "VAT breakdown 1 (category S) states a tax amount (BT-117) of -14.79 but the taxable amount -72.50 at 19 % gives 13.78.";
        assert!(
            reason_message(Language::Fr, "BR-CO-17", m).ends_with(
                " Concerne : ventilation de TVA 1. Valeurs relevées : -14.79 ; -72.50 ; 19 % ; 13.78."
            ),
            "{}",
            reason_message(Language::Fr, "BR-CO-17", m)
        );
        let m = "The invoice type code (BT-3, e.g. 380 for an invoice, 381 for a credit note) is missing.";
        assert_eq!(
            reason_message(Language::Fr, "BR-04", m),
            "Une facture doit avoir un code de type de facture."
        );
    }

    #[test]
    fn binding_findings_in_french() {
        let m = "AccountingCustomerParty/Party/PartyLegalEntity/RegistrationAddress is not used in EN 16931; the recipient does not read it (EN 16931 UBL binding)";
        assert_eq!(
            reason_message(Language::Fr, "UBL-CR-249", m),
            "AccountingCustomerParty/Party/PartyLegalEntity/RegistrationAddress n'est pas utilisé par l'EN 16931 : le destinataire ne le lit pas (liaison UBL de l'EN 16931)"
        );
        let m = "InvoicePeriod/DescriptionCode must occur at most 1 time(s), found 3 (EN 16931 UBL binding)";
        assert_eq!(
            reason_message(Language::Fr, "UBL-SR-49", m),
            "InvoicePeriod/DescriptionCode doit apparaître au plus 1 fois ; trouvé 3 fois (liaison UBL de l'EN 16931)"
        );
        let m = "attribute @schemeID of AllowanceCharge/TaxCategory/ID is not used in EN 16931; the recipient does not read it (EN 16931 UBL binding)";
        assert!(reason_message(Language::Fr, "UBL-CR-678", m).starts_with(
            "l'attribut @schemeID de AllowanceCharge/TaxCategory/ID n'est pas utilisé"
        ));
        let m = "something else (EN 16931 UBL binding)";
        assert!(reason_message(Language::Fr, "UBL-SR-21", m)
            .starts_with("Le document ne respecte pas la règle UBL-SR-21."));
        assert_eq!(reason_message(Language::En, "UBL-SR-49", m), m);
    }

    #[test]
    fn structure_findings_in_french() {
        let m = "/rsm:CrossIndustryInvoice: the mandatory element 'rsm:ExchangedDocumentContext' is missing (expected before 'rsm:SupplyChainTradeTransaction')";
        assert_eq!(
            reason_message(Language::Fr, "XSD", m),
            "/rsm:CrossIndustryInvoice : l'élément 'rsm:ExchangedDocumentContext' obligatoire manque (attendu avant 'rsm:SupplyChainTradeTransaction')"
        );
        let m = "/Invoice/cbc:Note[2]: element 'cbc:ID' is given more often than the schema allows (at most 1 time(s))";
        assert_eq!(
            reason_message(Language::Fr, "XSD", m),
            "/Invoice/cbc:Note[2] : l'élément 'cbc:ID' est donné plus souvent que le schéma ne le permet (au plus 1 fois)"
        );
        let m =
            "/Invoice: element 'cbc:Foo' is out of its place (it comes before element 'cbc:Bar')";
        assert!(reason_message(Language::Fr, "XSD", m)
            .ends_with("(il vient avant l'élément 'cbc:Bar')"));
        let m = "/Invoice/cbc:IssueDate: '2026-13-01' is not a date";
        assert!(reason_message(Language::Fr, "XSD", m)
            .starts_with("Le document ne respecte pas la règle XSD."));
    }

    #[test]
    fn a_br_fr_rule_in_english_keeps_its_value() {
        let m = "BR-FR-01/BT-1 : L'identifiant de facture ne doit pas dépasser 35 caractères. Valeur actuelle : \"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\".";
        assert_eq!(
            reason_message(Language::En, "BR-FR-01_BT-1", m),
            "The invoice number shall not exceed 35 characters. Value: \"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\"."
        );
        assert_eq!(reason_message(Language::Fr, "BR-FR-01_BT-1", m), m);
    }

    #[test]
    fn duplicates_and_refusals_in_french() {
        let m = "duplicate invoice: number F-1 of seller 123456789 for year 2026 was already received in flow 5 (DOUBLON)";
        assert_eq!(
            reason_message(Language::Fr, "REJ_UNI", m),
            "facture en double : le numéro F-1 du vendeur 123456789 pour l'année 2026 a déjà été reçue dans le flux 5 (DOUBLON)"
        );
        let m = "duplicate invoice: number F 2 of seller S for year 2025 appears twice in this flow (DOUBLON)";
        assert!(reason_message(Language::Fr, "REJ_UNI", m).ends_with(
            "F 2 du vendeur S pour l'année 2025 figure deux fois dans ce flux (DOUBLON)"
        ));
        assert_eq!(
            refusal_message(
                Language::Fr,
                "IRR_TAILLE_F",
                "the flow holds more than 10 invoices, the limit per flow"
            ),
            "Le flux contient plus de 10 factures, la limite par flux."
        );
        let fr = refusal_message(
            Language::Fr,
            "IRR_SYNTAX",
            "the UBL document cannot be read: bad tag",
        );
        assert!(fr.starts_with("Le flux ne peut pas être lu"), "{fr}");
        assert!(fr.ends_with("bad tag"), "{fr}");
        assert_eq!(refusal_message(Language::En, "IRR_SYNTAX", "x"), "x");
        let fr = refusal_message(
            Language::Fr,
            "STATUS_REFUSED",
            "status 1 (invoice F-1, 205): unknown invoice",
        );
        assert!(
            fr.starts_with("Des statuts de ce flux ont été refusés"),
            "{fr}"
        );
    }

    #[test]
    fn numbers_are_read_as_written_and_ids_are_not_numbers() {
        assert_eq!(
            numbers("BT-106 is -5.00 on 2026-11-28, line 3, BR-CO-10"),
            vec!["-5.00", "2026-11-28", "3"]
        );
    }
}
