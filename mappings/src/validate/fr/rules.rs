//! The BR-FR checks, each as the official schematron of the document's
//! syntax states it (see `catalog.rs` for ids, `mod.rs` for why two).

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use super::Out;
use crate::model::{Identifier, Invoice, Note};

const DOC_TYPES: &[&str] = &[
    "380", "389", "393", "501", "386", "500", "384", "471", "472", "473", "261", "262", "381",
    "396", "502", "503",
];
const BILLING_MODES: &[&str] = &[
    "B1", "S1", "M1", "B2", "S2", "M2", "S3", "B4", "S4", "M4", "S5", "S6", "B7", "S7", "B8", "S8",
    "M8", "B9", "S9", "M9",
];
const BAR_VALUES: &[&str] = &[
    "B2B",
    "B2BINT",
    "B2C",
    "B2CINT",
    "OUTOFSCOPE",
    "ARCHIVEONLY",
];
/// Self-billed document types (autofacturation).
const SELF_BILLED: &[&str] = &["389", "501", "500", "471", "473", "261", "502"];
const VAT_CATEGORIES: &[&str] = &["S", "E", "AE", "K", "G", "O", "Z"];
/// The rates of `custom:is-valid-vat-rate` (`'0', '0.0', '0.00', '10', ...`):
/// every one is listed with each number of decimals from its own up to 2.
const VAT_RATE_VALUES: &[Decimal] = &[
    Decimal::from_parts(0, 0, 0, false, 0),
    Decimal::from_parts(10, 0, 0, false, 0),
    Decimal::from_parts(13, 0, 0, false, 0),
    Decimal::from_parts(20, 0, 0, false, 0),
    Decimal::from_parts(85, 0, 0, false, 1),
    Decimal::from_parts(196, 0, 0, false, 1),
    Decimal::from_parts(21, 0, 0, false, 1),
    Decimal::from_parts(55, 0, 0, false, 1),
    Decimal::from_parts(7, 0, 0, false, 0),
    Decimal::from_parts(206, 0, 0, false, 1),
    Decimal::from_parts(105, 0, 0, false, 2),
    Decimal::from_parts(9, 0, 0, false, 1),
    Decimal::from_parts(175, 0, 0, false, 2),
    Decimal::from_parts(92, 0, 0, false, 1),
    Decimal::from_parts(96, 0, 0, false, 1),
];
const ATTACHMENT_CODES: &[&str] = &[
    "RIB",
    "LISIBLE",
    "FEUILLE_DE_STYLE",
    "PJA",
    "BORDEREAU_SUIVI",
    "DOCUMENT_ANNEXE",
    "BON_LIVRAISON",
    "BON_COMMANDE",
    "BORDEREAU_SUIVI_VALIDATION",
    "ETAT_ACOMPTE",
    "FACTURE_PAIEMENT_DIRECT",
    "RECAPITULATIF_COTRAITANCE",
];

pub(super) fn check(inv: &Invoice, out: &mut Out) {
    let notes = Notes::new(inv, out.ubl());
    let framework = inv.business_process.as_deref().map(str::trim);
    let type_code = inv.type_code.as_deref().map(str::trim);
    let bd = framework.is_some_and(|f| matches!(f, "S9" | "B9" | "M9"));

    identifiers(inv, out);
    dates(inv, out);
    document_type(inv, type_code, framework, out);
    notes_rules(&notes, out);
    siren_siret(inv, &notes, type_code, out);
    vat(inv, out);
    attachments(inv, out);
    conditions(inv, &notes, type_code, framework, out);
    decimals(inv, bd, out);
}

/// The notes as each schematron reads them: CII by `ram:SubjectCode`, UBL
/// as one string, the notes joined with `#` (a note with a subject code
/// is written `#CODE#text`).
struct Notes<'a> {
    notes: &'a [Note],
    /// UBL only: `string-join(cbc:Note, '#')`.
    joined: Option<String>,
}

impl<'a> Notes<'a> {
    fn new(inv: &'a Invoice, ubl: bool) -> Self {
        let joined = ubl.then(|| {
            inv.notes
                .iter()
                .map(raw_ubl_note)
                .collect::<Vec<_>>()
                .join("#")
        });
        Notes {
            notes: &inv.notes,
            joined,
        }
    }

    fn with_subject(&self, code: &'a str) -> impl Iterator<Item = &'a Note> + 'a {
        self.notes
            .iter()
            .filter(move |n| n.subject_code.as_deref() == Some(code))
    }

    /// How many notes carry subject `code` (UBL: occurrences of `#CODE#`).
    fn count(&self, code: &str) -> usize {
        match &self.joined {
            Some(j) => j.matches(&format!("#{code}#")).count(),
            None => self.with_subject_owned(code),
        }
    }

    fn with_subject_owned(&self, code: &str) -> usize {
        self.notes
            .iter()
            .filter(|n| n.subject_code.as_deref() == Some(code))
            .count()
    }

    /// UBL: the text after the first `#CODE#`, up to the next `#`.
    fn ubl_value(&self, code: &str) -> Option<&str> {
        let j = self.joined.as_deref()?;
        let marker = format!("#{code}#");
        let at = j.find(&marker)?;
        let after = &j[at + marker.len()..];
        Some(after.split('#').next().unwrap_or(""))
    }

    /// The BAR treatment is B2B (CII: any BAR note says B2B; UBL: the first).
    fn is_b2b(&self) -> bool {
        match &self.joined {
            Some(_) => self.ubl_value("BAR") == Some("B2B"),
            None => self.with_subject_owned_text("BAR", "B2B"),
        }
    }

    fn with_subject_owned_text(&self, code: &str, text: &str) -> bool {
        self.notes
            .iter()
            .any(|n| n.subject_code.as_deref() == Some(code) && n.text == text)
    }
}

fn raw_ubl_note(n: &Note) -> String {
    match &n.subject_code {
        Some(c) => format!("#{c}#{}", n.text),
        None => n.text.clone(),
    }
}

// --- BR-FR-01 / BR-FR-02 -------------------------------------------------

/// `custom:is-valid-id-format`: letters, digits and `+ - _ /`, no space.
fn id_format_ok(s: &str) -> bool {
    let t = s.trim();
    !t.is_empty()
        && !s.contains(' ')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '_' | '/'))
}

fn identifiers(inv: &Invoice, out: &mut Out) {
    if let Some(n) = &inv.number {
        if n.chars().count() > 35 {
            out.emit(
                "BR-FR-01_BT-1",
                format!("BR-FR-01/BT-1 : L'identifiant de facture ne doit pas dépasser 35 caractères. Valeur actuelle : \"{n}\"."),
            );
        }
        if !id_format_ok(n) {
            out.emit(
                "BR-FR-02_BT-1",
                format!("BR-FR-02/BT-1 : L'identifiant de facture contient des caractères non autorisés. Valeur actuelle : \"{n}\". Seuls les caractères alphanumériques et les symboles + - _ / sont autorisés, sans espaces."),
            );
        }
    }
    for p in &inv.preceding_invoices {
        let Some(n) = &p.number else { continue };
        if n.chars().count() > 35 {
            out.emit(
                "BR-FR-01_BT-25",
                format!("BR-FR-01/BT-25 : L'identifiant de facture référencée ne doit pas dépasser 35 caractères. Valeur actuelle : \"{n}\"."),
            );
        }
        if !id_format_ok(n) {
            out.emit(
                "BR-FR-02_BT-25",
                format!("BR-FR-02/BT-25 : L'identifiant de facture référencée contient des caractères non autorisés. Valeur actuelle : \"{n}\". Seuls les caractères alphanumériques et les symboles + - _ / sont autorisés, sans espaces."),
            );
        }
    }
}

// --- BR-FR-03 ------------------------------------------------------------

fn dates(inv: &Invoice, out: &mut Out) {
    let mut date = |key: &'static str, term: &str, d: Option<NaiveDate>| {
        if let Some(d) = d {
            if !(2000..=2099).contains(&d.year()) {
                out.emit(
                    key,
                    format!("BR-FR-03/{term} : La date doit contenir une année comprise entre 2000 et 2099. Valeur actuelle : \"{d}\"."),
                );
            }
        }
    };
    date("BR-FR-03_BT-2", "BT-2", inv.issue_date);
    date("BR-FR-03_BT-7", "BT-7", inv.tax_point_date);
    // UBL: the context is `cbc:DueDate`, which only an Invoice has.
    let due_checked = inv.syntax != Some(crate::model::Syntax::Ubl)
        || inv.kind == crate::model::DocumentKind::Invoice;
    if due_checked {
        date("BR-FR-03_BT-9", "BT-9", inv.due_date);
    }
    for p in &inv.preceding_invoices {
        date("BR-FR-03_BT-26", "BT-26", p.issue_date);
    }
    date(
        "BR-FR-03_BT-72",
        "BT-72",
        inv.delivery.as_ref().and_then(|d| d.actual_delivery_date),
    );
    if let Some(p) = &inv.invoicing_period {
        date("BR-FR-03_BT-73", "BT-73", p.start);
        date("BR-FR-03_BT-74", "BT-74", p.end);
    }
    for l in &inv.lines {
        if let Some(p) = &l.period {
            date("BR-FR-03_EXT-FR-FE-134", "BT-134", p.start);
            date("BR-FR-03_EXT-FR-FE-135", "BT-135", p.end);
        }
    }
}

// --- BR-FR-04, BR-FR-08, BR-FR-MV-13, BR-FR-BD-13 ------------------------

fn document_type(inv: &Invoice, type_code: Option<&str>, framework: Option<&str>, out: &mut Out) {
    if let Some(t) = &inv.type_code {
        if !DOC_TYPES.contains(&t.as_str()) {
            out.emit(
                "BR-FR-04_BT-3",
                format!("BR-FR-04/BT-3 : Le code type de document n'est pas autorisé. Valeurs acceptées : 380, 389, 393, 501, 386, 500, 384, 471, 472, 473, 261, 262, 381, 396, 502, 503. Valeur actuelle : \"{t}\"."),
            );
        }
    }
    let bt23 = inv.business_process.as_deref();
    if !bt23.is_some_and(|b| BILLING_MODES.contains(&b)) {
        out.emit(
            "BR-FR-08_BT-23",
            format!("BR-FR-08/BT-23 : La valeur du mode de facturation est absente ou n'est pas autorisée. Valeurs acceptées : B1, S1, M1, B2, S2, M2, S3, B4, S4, M4, S5, S6, B7, S7, B8, S8, M8, B9, S9, M9. Valeur actuelle : \"{}\".", bt23.unwrap_or("")),
        );
    }
    // Both rules are on the type code element: nothing when it is absent.
    if let Some(t) = type_code {
        let self_billed = SELF_BILLED.contains(&t);
        if framework.is_some_and(|f| matches!(f, "S8" | "B8" | "M8"))
            && (t.is_empty() || self_billed)
        {
            out.emit(
                "BR-FR-MV-13_BT-3",
                format!("BR-FR-MV-13/BT-3 : Lorsque le cadre de facturation (BT-23) est S8, B8 ou M8, le code type de facture ne doit pas être l'un des types auto-facturés suivants : 389, 261, 501, 500, 502, 471, 473. Valeur actuelle : \"{t}\"."),
            );
        }
        if framework.is_some_and(|f| matches!(f, "S9" | "B9" | "M9")) && !self_billed {
            out.emit(
                "BR-FR-BD-13_BT-3",
                format!("BR-FR-BD-13/BT-3 : Lorsque le cadre de facturation (BT-23) est S9, B9 ou M9, le code type de facture DOIT être l'un des types auto-facturés suivants : 389, 261, 501, 500, 502, 471, 473. Valeur actuelle : \"{t}\"."),
            );
        }
    }
}

// --- BR-FR-05, BR-FR-06, BR-FR-20, BR-FR-31 ------------------------------

fn notes_rules(notes: &Notes, out: &mut Out) {
    for (code, key, what) in [
        (
            "PMT",
            "BR-FR-05_BT-22_PMT",
            "relative aux frais de recouvrement",
        ),
        (
            "PMD",
            "BR-FR-05_BT-22_PMD",
            "relative aux pénalités de retard",
        ),
        (
            "AAB",
            "BR-FR-05_BT-22_AAB",
            "relative à l'escompte ou à son absence",
        ),
    ] {
        if notes.count(code) == 0 {
            out.emit(
                key,
                format!("BR-FR-05/BT-22 : La mention {what} (code {code}) est absente. Elle est obligatoire dans les notes (BG-1)."),
            );
        }
    }
    for (code, key) in [
        ("PMT", "BR-FR-06_BT-21_PMT"),
        ("PMD", "BR-FR-06_BT-21_PMD"),
        ("AAB", "BR-FR-06_BT-21_AAB"),
        ("TXD", "BR-FR-06_BT-21_TXD"),
    ] {
        let n = notes.count(code);
        if n > 1 {
            out.emit(
                key,
                format!("BR-FR-06/BT-21 : Le code sujet {code} ne doit apparaître qu'une seule fois dans les notes (BG-1) ; il y apparaît {n} fois."),
            );
        }
    }
    let bar_msg = |v: &str| {
        format!("BR-FR-20/BT-21 : Lorsqu'une note a pour code sujet « BAR » (BT-21), la valeur associée (BT-22) doit être l'une des suivantes : B2B, B2BINT, B2C, B2CINT, OUTOFSCOPE, ARCHIVEONLY. Valeur fournie : \"{v}\".")
    };
    let valid_bar = if notes.joined.is_some() {
        if let Some(v) = notes.ubl_value("BAR") {
            if !v.is_empty() && !BAR_VALUES.contains(&v) {
                out.emit("BR-FR-20_BT-21", bar_msg(v));
            }
        }
        // `BAR#<value>#` occurrences in the BAR notes joined without separator.
        let bar_notes: String = notes
            .notes
            .iter()
            .map(raw_ubl_note)
            .filter(|n| n.contains("#BAR#"))
            .collect::<Vec<_>>()
            .concat()
            + "#";
        BAR_VALUES
            .iter()
            .map(|v| bar_notes.matches(&format!("BAR#{v}#")).count())
            .sum::<usize>()
    } else {
        for n in notes.with_subject("BAR") {
            if !BAR_VALUES.contains(&n.text.as_str()) {
                out.emit("BR-FR-20_BT-21", bar_msg(&n.text));
            }
        }
        notes
            .with_subject("BAR")
            .filter(|n| BAR_VALUES.contains(&n.text.trim()))
            .count()
    };
    if valid_bar > 1 {
        out.emit(
            "BR-FR-31_BT-21",
            format!("BR-FR-31/BT-21 : Il ne peut y avoir qu'une seule note BAR portant une valeur de traitement (B2B, B2BINT, B2C, B2CINT, OUTOFSCOPE, ARCHIVEONLY) ; {valid_bar} trouvées."),
        );
    }
}

// --- SIREN / SIRET, addresses, private ids -------------------------------

fn nine_digits(s: &str) -> bool {
    let t = s.trim();
    t.len() == 9 && t.bytes().all(|b| b.is_ascii_digit())
}

/// `custom:check-siret-siren-coherence`.
fn siret_coherent(siret: &str, siren: Option<&str>) -> bool {
    siret.len() == 14
        && siret.bytes().all(|b| b.is_ascii_digit())
        && siren.is_some_and(|s| &siret[..9] == s)
}

/// `custom:is-valid-schemeid-format`: letters, digits and `+ - _ .`.
fn scheme_format_ok(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '_' | '.'))
}

fn with_scheme<'a>(ids: &'a [Identifier], scheme: &'a str) -> impl Iterator<Item = &'a Identifier> {
    ids.iter()
        .filter(move |i| i.scheme.as_deref() == Some(scheme))
}

fn legal_0002(id: &Option<Identifier>) -> Option<&str> {
    id.as_ref()
        .filter(|i| i.scheme.as_deref() == Some("0002"))
        .map(|i| i.value.as_str())
}

fn siren_siret(inv: &Invoice, notes: &Notes, type_code: Option<&str>, out: &mut Out) {
    let ubl = out.ubl();
    let siret_msg = |term: &str, siret: &str, siren: Option<&str>| {
        format!("BR-FR-09/{term} : Le SIRET doit contenir 14 chiffres et commencer par le SIREN. SIRET : \"{siret}\", SIREN : \"{}\".", siren.unwrap_or(""))
    };
    // BR-FR-09: seller and buyer compare with their own SIREN only.
    for (party, key, term) in [
        (&inv.seller, "BR-FR-09_BT-29", "BT-29"),
        (&inv.buyer, "BR-FR-09_BT-46", "BT-46"),
    ] {
        if let Some(siret) = with_scheme(&party.identifiers, "0009").next() {
            let siren = legal_0002(&party.legal_registration_id);
            if !siret_coherent(&siret.value, siren) {
                out.emit(key, siret_msg(term, &siret.value, siren));
            }
        }
    }
    // The payee and the ship-to party fall back on the SIRET's first nine digits.
    if let Some(p) = &inv.payee {
        if let Some(siret) = p
            .identifier
            .as_ref()
            .filter(|i| i.scheme.as_deref() == Some("0009"))
        {
            let own = legal_0002(&p.legal_registration_id).filter(|s| !s.is_empty());
            let siren = own.or_else(|| siret.value.get(..9));
            if !siret_coherent(&siret.value, siren) {
                out.emit("BR-FR-09_BT-60", siret_msg("BT-60", &siret.value, siren));
            }
        }
    }
    if let Some(loc) = inv.delivery.as_ref().and_then(|d| d.location_id.as_ref()) {
        if loc.scheme.as_deref() == Some("0009") {
            let siren = loc.value.get(..9);
            if !siret_coherent(&loc.value, siren) {
                out.emit("BR-FR-09_BT-71", siret_msg("BT-71", &loc.value, siren));
            }
        }
    }

    // BR-FR-10, BR-FR-11: the SIRENs.
    let seller_siren = legal_0002(&inv.seller.legal_registration_id);
    if !seller_siren.is_some_and(nine_digits) {
        out.emit(
            "BR-FR-10_BT-30",
            format!("BR-FR-10/BT-30 : Le SIREN du vendeur est obligatoire et doit être composé exactement de 9 chiffres. Valeur actuelle : \"{}\".", seller_siren.unwrap_or("")),
        );
    }
    let buyer_siren = legal_0002(&inv.buyer.legal_registration_id);
    let b2b = notes.is_b2b();
    // CII: `matches($siren, '^\d{9}$')` (not trimmed); UBL trims.
    let buyer_ok = buyer_siren.is_some_and(|s| {
        if ubl {
            nine_digits(s)
        } else {
            s.len() == 9 && s.bytes().all(|b| b.is_ascii_digit())
        }
    });
    if b2b && !buyer_ok {
        out.emit(
            "BR-FR-11_BT-47",
            format!("BR-FR-11/BT-47 : Si une note contient le code sujet BAR avec la valeur 'B2B', alors le SIREN de l'acheteur (BT-47) est obligatoire et doit être composé exactement de 9 chiffres. Valeur actuelle : \"{}\".", buyer_siren.unwrap_or("")),
        );
    }

    // BR-FR-32: every legal id of scheme 0002, every party id of 0002 / 0231.
    let legal_ids = [
        &inv.seller.legal_registration_id,
        &inv.buyer.legal_registration_id,
    ]
    .into_iter()
    .chain(inv.payee.as_ref().map(|p| &p.legal_registration_id));
    for id in legal_ids {
        if let Some(v) = legal_0002(id) {
            if !nine_digits(v) {
                out.emit(
                    "BR-FR-32-LEGALID",
                    format!("BR-FR-32/LEGALID : Tout identifiant légal d'une Partie avec schemeID = '0002' DOIT être composé de 9 chiffres. Valeur actuelle : \"{v}\"."),
                );
            }
        }
    }
    let party_ids = inv
        .seller
        .identifiers
        .iter()
        .chain(&inv.buyer.identifiers)
        .chain(inv.payee.as_ref().and_then(|p| p.identifier.as_ref()))
        // CII: `//ram:GlobalID` includes the ship-to party; UBL's
        // `//cac:PartyIdentification` does not hold the delivery location.
        .chain(
            inv.delivery
                .as_ref()
                .and_then(|d| d.location_id.as_ref())
                .filter(|_| !ubl),
        );
    for id in party_ids {
        if matches!(id.scheme.as_deref(), Some("0002") | Some("0231")) && !nine_digits(&id.value) {
            out.emit(
                "BR-FR-32-GLOBALID",
                format!("BR-FR-32/ID : Tout identifiant d'une Partie avec schemeID = '0231' ou '0002' DOIT être composé de 9 chiffres. Valeur actuelle : \"{}\".", id.value),
            );
        }
    }

    // BR-FR-12, 13, 21, 22, 23, 25: the electronic addresses.
    let self_billed = type_code.is_some_and(|t| SELF_BILLED.contains(&t));
    for (party, term, present, starts, format, length) in [
        (
            &inv.buyer,
            "BT-49",
            "BR-FR-12_BT-49",
            "BR-FR-21_BT-49",
            "BR-FR-23_BT-49",
            "BR-FR-25_BT-49",
        ),
        (
            &inv.seller,
            "BT-34",
            "BR-FR-13_BT-34",
            "BR-FR-22_BT-34",
            "BR-FR-23_BT-34",
            "BR-FR-25_BT-34",
        ),
    ] {
        let addr = party.electronic_address.as_ref();
        let value = addr.map(|a| a.value.as_str()).unwrap_or("");
        let scheme = addr.and_then(|a| a.scheme.as_deref()).unwrap_or("");
        // CII `string($endpointID)`, UBL `normalize-space($endpointID) != ''`.
        let given = if ubl {
            !value.trim().is_empty()
        } else {
            !value.is_empty()
        };
        if !given {
            out.emit(
                present,
                format!(
                    "{} : Le {term} est obligatoire. Valeur actuelle : {term}=\"{value}\".",
                    present.replace('_', "/")
                ),
            );
        }
        // Buyer: B2B and not self-billed; seller: B2B and self-billed.
        let applies = b2b && (self_billed == (term == "BT-34"));
        // CII takes the party's legal id whatever its scheme, UBL the 0002 one.
        let siren = if ubl {
            legal_0002(&party.legal_registration_id)
        } else {
            party
                .legal_registration_id
                .as_ref()
                .map(|i| i.value.as_str())
        }
        .unwrap_or("");
        if applies && !(value.starts_with(siren) && scheme == "0225") {
            out.emit(
                starts,
                format!("{} : En traitement BAR/B2B, le {term} doit commencer par le SIREN et son schemeID doit être égal à \"0225\". Valeurs actuelles : EndpointID=\"{value}\", schemeID=\"{scheme}\", SIREN=\"{siren}\".", starts.replace('_', "/")),
            );
        }
        if addr.is_some() {
            if scheme == "0225" && !scheme_format_ok(value) {
                out.emit(
                    format,
                    format!("BR-FR-23/{term} : L'adresse électronique ne respecte pas le format autorisé. Valeur actuelle : \"{value}\". Seuls les caractères alphanumériques et les symboles \"-\", \"_\", \".\" sont autorisés."),
                );
            }
            if value.chars().count() > 125 {
                out.emit(
                    length,
                    format!("BR-FR-25/{term} : L'adresse électronique dépasse 125 caractères. Valeur actuelle : \"{value}\"."),
                );
            }
        }
    }

    // BR-FR-24, 26, CO-10: the parties' identifiers.
    for (party, term, fmt, len, no_scheme, dup) in [
        (
            &inv.seller,
            "BT-29",
            "BR-FR-24_BT-29",
            "BR-FR-26_BT-29",
            "BR-FR-CO-10_BT-29-1",
            "BR-FR-CO-10_BT-29-2",
        ),
        (
            &inv.buyer,
            "BT-46",
            "BR-FR-24_BT-46",
            "BR-FR-26_BT-46",
            "BR-FR-CO-10_BT-46-1",
            "BR-FR-CO-10_BT-46-2",
        ),
    ] {
        for id in with_scheme(&party.identifiers, "0224") {
            if !scheme_format_ok(&id.value) {
                out.emit(
                    fmt,
                    format!("BR-FR-24/{term} : L'identifiant privé ne respecte pas le format autorisé. Valeur actuelle : \"{}\". Seuls les caractères alphanumériques et les symboles \"-\", \"_\", \".\" sont autorisés.", id.value),
                );
            }
            if id.value.chars().count() > 100 {
                out.emit(
                    len,
                    format!("BR-FR-26/{term} : L'identifiant privé dépasse 100 caractères. Valeur actuelle : \"{}\".", id.value),
                );
            }
        }
        // CII: an id without scheme is `ram:ID`, not a `ram:GlobalID`.
        if ubl && party.identifiers.iter().any(|i| i.scheme.is_none()) {
            out.emit(
                no_scheme,
                format!("BR-FR-CO-10/{term} : Si l'identifiant ({term}) est renseigné, alors son schéma ({term}-1) doit également être renseigné."),
            );
        }
        let mut schemes: Vec<&str> = party
            .identifiers
            .iter()
            .filter_map(|i| i.scheme.as_deref())
            .collect();
        let all = schemes.len();
        schemes.sort_unstable();
        schemes.dedup();
        if schemes.len() != all {
            out.emit(
                dup,
                format!("BR-FR-CO-10/{term} : Chaque schemeID ne peut apparaître qu'une seule fois dans les identifiants ({term})."),
            );
        }
    }
    if ubl {
        if inv
            .payee
            .as_ref()
            .and_then(|p| p.identifier.as_ref())
            .is_some_and(|i| i.scheme.is_none())
        {
            out.emit(
                "BR-FR-CO-10_BT-60-1",
                "BR-FR-CO-10/BT-60 : Si l'identifiant du bénéficiaire (BT-60) est renseigné, alors son schéma (BT-60-1) doit également être renseigné.".into(),
            );
        }
        if inv
            .delivery
            .as_ref()
            .and_then(|d| d.location_id.as_ref())
            .is_some_and(|i| i.scheme.is_none())
        {
            out.emit(
                "BR-FR-CO-10_BT-71-1",
                "BR-FR-CO-10/BT-71 : Si l'identifiant du lieu de livraison (BT-71) est renseigné, alors son schéma (BT-71-1) doit également être renseigné.".into(),
            );
        }
    }
}

// --- BR-FR-15, BR-FR-16, BR-FR-DEC-04 ------------------------------------

fn vat(inv: &Invoice, out: &mut Out) {
    let ubl = out.ubl();
    let mut category = |code: Option<&str>, key: &'static str, lm: &'static str, term: &str| {
        // UBL: `not($categoryCode) or ...`; CII: the code is asked for.
        let valid = match code {
            Some(c) => VAT_CATEGORIES.contains(&c),
            None => ubl,
        };
        if !valid {
            out.emit(
                key,
                format!("BR-FR-15/{term} : Code de catégorie de TVA invalide. Valeur actuelle : \"{}\". Veuillez utiliser un code valide : S, E, AE, K, G, O, Z.", code.unwrap_or("")),
            );
        }
        if matches!(code, Some("L") | Some("M")) {
            out.emit(
                lm,
                format!("BR-FR-15/{term} : Les codes 'L' et 'M' ne sont pas pertinents en France. Valeur actuelle : \"{}\".", code.unwrap_or("")),
            );
        }
    };
    for ac in inv.allowances.iter().chain(&inv.charges) {
        // CII: the rule's context is `ram:CategoryTradeTax`, which an
        // allowance without VAT category does not carry.
        if ac.vat_category.is_some() || ubl {
            category(
                ac.vat_category.as_deref(),
                "BR-FR-15_BT-95_BT-102",
                "BR-FR-15_BT-95_BT-102_LM",
                "BT-95",
            );
        }
    }
    for b in &inv.vat_breakdown {
        category(
            b.category.as_deref(),
            "BR-FR-15_BT-95_BT-118",
            "BR-FR-15_BT-95_BT-118_LM",
            "BT-118",
        );
    }
    for l in &inv.lines {
        // CII: a GROUP or INFORMATION line may go without a category.
        let sub_line = matches!(
            l.line_status.as_deref(),
            Some("GROUP") | Some("INFORMATION")
        );
        if l.vat_category.is_none() && sub_line {
            continue;
        }
        category(
            l.vat_category.as_deref(),
            "BR-FR-15_BT-95_BT-151",
            "BR-FR-15_BT-95_BT-151_LM",
            "BT-151",
        );
    }

    let mut rate = |r: Option<Decimal>, key: &'static str, dec: &'static str, term: &str| {
        let Some(r) = r else { return };
        if !vat_rate_ok(r) {
            let s = r.to_string();
            out.emit(
                key,
                format!("BR-FR-16/{term} : Le taux de TVA doit être exprimé en pourcentage sans symbole « % » et faire partie des valeurs autorisées. Taux fourni : \"{s}\"."),
            );
        }
        if !decimal_ok(r, 2, false, 4) {
            out.emit(
                dec,
                format!("BR-FR-DEC-04/{term} : Le taux de TVA « {r} » est invalide. Il doit être positif, comporter au plus 2 décimales et au maximum 4 caractères (hors séparateur)."),
            );
        }
    };
    for ac in inv.allowances.iter().chain(&inv.charges) {
        rate(
            ac.vat_rate,
            "BR-FR-16_BT-96_BT-103",
            "BR-FR-DEC-04_BT-96_BT-103",
            "BT-96",
        );
    }
    for b in &inv.vat_breakdown {
        rate(b.rate, "BR-FR-16_BT-119", "BR-FR-DEC-04_BT-119", "BT-119");
    }
    // UBL: BR-FR-16 on lines reads `cac:InvoiceLine` only, BR-FR-DEC-04 every line.
    let credit_ubl = ubl && inv.kind == crate::model::DocumentKind::CreditNote;
    for l in &inv.lines {
        let Some(r) = l.vat_rate else { continue };
        if !credit_ubl && !vat_rate_ok(r) {
            out.emit(
                "BR-FR-16_BT-152",
                format!("BR-FR-16/BT-152 : Le taux de TVA doit être exprimé en pourcentage sans symbole « % » et faire partie des valeurs autorisées. Taux fourni : \"{r}\"."),
            );
        }
        if !decimal_ok(r, 2, false, 4) {
            out.emit(
                "BR-FR-DEC-04_BT-152",
                format!("BR-FR-DEC-04/BT-152 : Le taux de TVA « {r} » est invalide. Il doit être positif, comporter au plus 2 décimales et au maximum 4 caractères (hors séparateur)."),
            );
        }
    }
}

// --- BR-FR-17, BR-FR-18 --------------------------------------------------

fn attachments(inv: &Invoice, out: &mut Out) {
    let mut lisible = 0;
    for a in &inv.attachments {
        let Some(d) = a.description.as_deref() else {
            continue;
        };
        let code = if out.ubl() { d } else { d.trim() };
        if !code.is_empty() && !ATTACHMENT_CODES.contains(&code) {
            out.emit(
                "BR-FR-17_BT-123",
                format!("BR-FR-17/BT-123 : Le code de qualification de la pièce jointe \"{code}\" est invalide. Il doit appartenir à la liste des codes autorisés."),
            );
        }
        if d == "LISIBLE" {
            lisible += 1;
        }
    }
    if lisible > 1 {
        out.emit(
            "BR-FR-18_BT-123",
            format!("BR-FR-18/BT-123 : Il ne peut y avoir qu'un seul document additionnel (BG-24) dont la description (BT-123) est \"LISIBLE\". Nombre de documents trouvés : {lisible}."),
        );
    }
}

// --- BR-FR-CO-* ----------------------------------------------------------

fn conditions(
    inv: &Invoice,
    notes: &Notes,
    type_code: Option<&str>,
    framework: Option<&str>,
    out: &mut Out,
) {
    use crate::model::DocumentKind;
    let ubl = out.ubl();
    let t = type_code.unwrap_or("");
    let credit_note = inv.kind == DocumentKind::CreditNote;

    // CO-03 (UBL: credit notes only).
    if t == "262" && (!ubl || credit_note) {
        let period = inv.invoicing_period.as_ref();
        let ok = super::super::filled(&inv.contract_reference)
            && period.is_some_and(|p| p.start.is_some() && p.end.is_some());
        if !ok {
            out.emit(
                "BR-FR-CO-03_BT-3",
                "BR-FR-CO-03/BT-3 : Si le code type de la facture (BT-3) est égal à 262 (Avoir Remise Globale), alors le numéro de contrat (BT-12) doit être présent et la période de facturation (BG-14) doit être renseignée (dates de début et de fin).".into(),
            );
        }
    }
    // CO-04 (UBL: `cbc:InvoiceTypeCode`, invoices only).
    if matches!(t, "384" | "471" | "472" | "473")
        && (!ubl || !credit_note)
        && inv.preceding_invoices.len() != 1
    {
        out.emit(
            "BR-FR-CO-04_BT-4",
            format!("BR-FR-CO-04/BT-3 : Si le type de facture (BT-3) est une facture rectificative (384, 471, 472, 473), alors une et une seule référence à une facture antérieure (BT-25) doit être présente. Nombre de références trouvées : {}.", inv.preceding_invoices.len()),
        );
    }
    // CO-05 (UBL: credit notes only). Line-level references are not in the
    // model: an invoice with lines needs a header reference.
    if matches!(t, "261" | "381" | "396" | "502" | "503") && (!ubl || credit_note) {
        let header = inv
            .preceding_invoices
            .iter()
            .filter(|p| p.number.is_some() && p.issue_date.is_some())
            .count();
        if header == 0 && !inv.lines.is_empty() {
            out.emit(
                "BR-FR-CO-05_BT-3",
                "BR-FR-CO-05/BT-3 : Si le type de facture (BT-3) est un avoir (261, 381, 396, 502, 503), alors au moins une référence à une facture antérieure (BT-25) avec sa date (BT-26) doit être présente. Références entête trouvées : 0.".into(),
            );
        }
    }
    let paid_mode = framework.is_some_and(|f| matches!(f, "B2" | "S2" | "M2"));
    // CO-07.
    if let Some(due) = inv.due_date {
        let exempt = matches!(t, "386" | "500" | "503") || paid_mode;
        let early = match inv.issue_date {
            Some(issue) => due < issue,
            None => !ubl,
        };
        if !exempt && early {
            out.emit(
                "BR-FR-CO-07_BT-9",
                format!("BR-FR-CO-07/BT-9 : La date d'échéance (BT-9), si présente, doit être postérieure ou égale à la date de facture (BT-2), sauf si la facture est de type acompte (386, 500, 503) ou si le cadre de facturation (BT-23) est B2, S2 ou M2. Date facture = \"{}\", Date échéance = \"{due}\".", inv.issue_date.map(|d| d.to_string()).unwrap_or_default()),
            );
        }
    }
    // CO-08.
    if framework.is_some_and(|f| matches!(f, "B4" | "S4" | "M4"))
        && matches!(t, "386" | "500" | "503")
    {
        out.emit(
            "BR-FR-CO-08_BT-23",
            format!("BR-FR-CO-08/BT-23 : Si le cadre de facturation (BT-23) est B4, S4 ou M4 (factures définitives après acompte), alors le type de facture (BT-3) ne peut pas être une facture ou un avoir d'acompte (386, 500, 503). BT-23=\"{}\", BT-3=\"{t}\".", framework.unwrap_or("")),
        );
    }
    // CO-09.
    if paid_mode {
        let tot = &inv.totals;
        let equal = matches!((tot.prepaid, tot.total_with_vat), (Some(p), Some(g)) if p == g);
        if !equal {
            out.emit(
                "BR-FR-CO-09_BT-23-1",
                format!("BR-FR-CO-09/BT-23 : Si le cadre de facturation (BT-23) est B2, S2 ou M2 (facture déjà payée), alors le montant déjà payé (BT-113) doit être égal au montant total TTC (BT-112). Montant payé : {}, Montant total : {}.", opt(tot.prepaid), opt(tot.total_with_vat)),
            );
        }
        if tot.amount_due != Some(Decimal::ZERO) {
            out.emit(
                "BR-FR-CO-09_BT-23-2",
                format!("BR-FR-CO-09/BT-23 : Si le cadre de facturation (BT-23) est B2, S2 ou M2, alors le net à payer (BT-115) doit être égal à 0. Net à payer : {}.", opt(tot.amount_due)),
            );
        }
        if inv.due_date.is_none() {
            out.emit(
                "BR-FR-CO-09_BT-23-3",
                "BR-FR-CO-09/BT-23 : Si le cadre de facturation (BT-23) est B2, S2 ou M2, alors la date d'échéance (BT-9) doit être renseignée et correspondre à la date de paiement.".into(),
            );
        }
    }
    // CO-12.
    if inv.currency.as_deref().is_some_and(|c| c != "EUR") {
        let ok =
            inv.vat_currency.as_deref() == Some("EUR") && inv.totals.vat_total_accounting.is_some();
        if !ok {
            out.emit(
                "BR-FR-CO-12_BT-5",
                format!("BR-FR-CO-12/BT-5 : Si la devise de facture (BT-5) est différente de EUR, alors la devise de comptabilité (BT-6) doit être EUR et le montant de TVA en devise de comptabilité (BT-111) doit être renseigné. BT-5=\"{}\", BT-6=\"{}\".", inv.currency.as_deref().unwrap_or(""), inv.vat_currency.as_deref().unwrap_or("")),
            );
        }
    }
    // CO-14, CO-15: a member of a single VAT group (seller scheme 0231).
    if with_scheme(&inv.seller.identifiers, "0231")
        .next()
        .is_some()
    {
        let txd = match notes.joined {
            Some(_) => notes.ubl_value("TXD") == Some("MEMBRE_ASSUJETTI_UNIQUE"),
            None => notes.with_subject_owned_text("TXD", "MEMBRE_ASSUJETTI_UNIQUE"),
        };
        if !txd {
            out.emit(
                "BR-FR-CO-14_BT-29-1",
                "BR-FR-CO-14/BT-29-1 : Si le schéma d'identification du vendeur (BT-29-1) est '0231' (membre d'un assujetti unique), une note (BG-1) avec le code sujet 'TXD' et le texte 'MEMBRE_ASSUJETTI_UNIQUE' doit être présente.".into(),
            );
        }
        let rep_vat = inv
            .tax_representative
            .as_ref()
            .is_some_and(|r| super::super::filled(&r.vat_id));
        if !rep_vat {
            out.emit(
                "BR-FR-CO-15_BT-29-1",
                "BR-FR-CO-15/BT-29-1 : Si le vendeur est membre d'un assujetti unique (BT-29-1 = 0231), alors le représentant fiscal (BG-11) doit être présent et contenir le numéro de TVA de l'assujetti unique (BT-63).".into(),
            );
        }
    }
}

fn opt(d: Option<Decimal>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

// --- BR-FR-DEC-01 .. 03 --------------------------------------------------

/// `^[-]?\d{1,19}(\.\d{1,scale})?$` and at most `max_len` characters once
/// the point is removed (the sign counts), on the value as written (the
/// model keeps the written scale).
pub(super) fn decimal_ok(d: Decimal, scale: u32, negative_allowed: bool, max_len: usize) -> bool {
    let negative = d.is_sign_negative();
    if negative && !negative_allowed {
        return false;
    }
    // The written digits: the mantissa's, with a leading `0` when the
    // value is below 1 (`0.05`), and the sign (no string is built).
    let mantissa = d.mantissa().unsigned_abs();
    let digits = if mantissa == 0 {
        1
    } else {
        mantissa.ilog10() + 1
    };
    let written = digits.max(d.scale() + 1) as usize + usize::from(negative);
    d.scale() <= scale && written <= max_len
}

/// `custom:is-valid-vat-rate`: the rate as written is one of the listed
/// French rates, each listed with 0 to 2 decimals (`20`, `20.0`, `20.00`).
pub(super) fn vat_rate_ok(r: Decimal) -> bool {
    !r.is_sign_negative() && r.scale() <= 2 && VAT_RATE_VALUES.contains(&r.normalize())
}

fn decimals(inv: &Invoice, bd: bool, out: &mut Out) {
    let mut amount = |key: &'static str, term: &str, d: Option<Decimal>| {
        if let Some(d) = d {
            if !decimal_ok(d, 2, true, 19) {
                out.emit(
                    key,
                    format!("BR-FR-DEC-01/{term} : Le montant « {d} » est invalide. Il doit comporter au plus 2 décimales, être exprimé avec un point comme séparateur, et ne pas dépasser 19 caractères (hors séparateur)."),
                );
            }
        }
    };
    for ac in inv.allowances.iter().chain(&inv.charges) {
        amount("BR-FR-DEC-01_BT-92_BT-99", "BT-92", ac.amount);
        amount("BR-FR-DEC-01_BT-93_BT-100", "BT-93", ac.base_amount);
    }
    let t = &inv.totals;
    amount("BR-FR-DEC-01_BT-106", "BT-106", t.line_net_total);
    amount("BR-FR-DEC-01_BT-107", "BT-107", t.allowance_total);
    amount("BR-FR-DEC-01_BT-108", "BT-108", t.charge_total);
    amount("BR-FR-DEC-01_BT-109", "BT-109", t.total_without_vat);
    // BT-110 and BT-111 share one context in both files: the first id wins.
    amount("BR-FR-DEC-01_BT-110", "BT-110", t.vat_total);
    amount("BR-FR-DEC-01_BT-110", "BT-111", t.vat_total_accounting);
    amount("BR-FR-DEC-01_BT-112", "BT-112", t.total_with_vat);
    amount("BR-FR-DEC-01_BT-113", "BT-113", t.prepaid);
    amount("BR-FR-DEC-01_BT-114", "BT-114", t.rounding);
    amount("BR-FR-DEC-01_BT-115", "BT-115", t.amount_due);
    for b in &inv.vat_breakdown {
        amount("BR-FR-DEC-01_BT-116", "BT-116", b.taxable_amount);
        amount("BR-FR-DEC-01_BT-117", "BT-117", b.tax_amount);
    }
    for l in &inv.lines {
        amount("BR-FR-DEC-01_BT-131", "BT-131", l.net_amount);
        for ac in l.allowances.iter().chain(&l.charges) {
            amount("BR-FR-DEC-01_BT-136_BT-141", "BT-136", ac.amount);
            amount("BR-FR-DEC-01_BT-137_BT-142", "BT-137", ac.base_amount);
        }
    }
    for l in &inv.lines {
        for (key, term, q) in [
            ("BR-FR-DEC-02_BT-129", "BT-129", l.quantity),
            ("BR-FR-DEC-02_BT-149", "BT-149", l.price_base_quantity),
        ] {
            if let Some(q) = q {
                if !decimal_ok(q, 4, true, 19) {
                    out.emit(
                        key,
                        format!("BR-FR-DEC-02/{term} : La quantité « {q} » est invalide. Elle doit être un nombre avec au plus 4 décimales (séparateur « . ») et contenir au maximum 19 caractères (hors séparateur)."),
                    );
                }
            }
        }
        for (key, term, p) in [
            ("BR-FR-DEC-03_BT-146", "BT-146", l.net_price),
            ("BR-FR-DEC-03_BT-147", "BT-147", l.price_discount),
            ("BR-FR-DEC-03_BT-148", "BT-148", l.gross_price),
        ] {
            if let Some(p) = p {
                if !decimal_ok(p, 6, bd, 19) {
                    out.emit(
                        key,
                        format!("BR-FR-DEC-03/{term} : Le montant « {p} » est invalide. Il doit être un nombre positif (sans signe « - »), sauf si le cadre de facturation (BT-23) est S9, M9 ou B9, comporter au plus 6 décimales et au maximum 19 caractères (hors séparateur)."),
                    );
                }
            }
        }
    }
}
