//! The BR-FR rules quai implements: the single source of each rule's
//! official ids (they differ between the CII and the UBL schematron), its
//! term and what it asks; `docs/rules.md` is generated from it.
//!
//! Every rule of the official files is `fatal`; in the warning mode of the
//! layer ([`super::FrMode::Warning`]) all of them are reported as warnings.

/// One BR-FR rule as quai checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrRule {
    /// The id in `BR-FR-Flux2-Schematron-CII.xslt` (empty: not in the CII file).
    pub cii: &'static str,
    /// The ids the UBL file raises for the same fault (`BR-FR-Flux2-Schematron-UBL.xslt`;
    /// some faults raise two ids there, none: not in the UBL file).
    pub ubl: &'static [&'static str],
    /// The term the rule is about.
    pub term: &'static str,
    /// What the rule asks, in the artefact's words (shortened).
    pub text: &'static str,
}

macro_rules! fr {
    ($(($cii:literal, [$($ubl:literal),*], $term:literal, $text:literal)),* $(,)?) => {
        &[$(FrRule { cii: $cii, ubl: &[$($ubl),*], term: $term, text: $text }),*]
    };
}

pub static RULES: &[FrRule] = fr![
    // --- Identifiers of the invoice and of the preceding invoices ---
    ("BR-FR-01_BT-1", ["BR-FR-01_BT-1-1"], "BT-1", "L'identifiant de facture ne doit pas dépasser 35 caractères."),
    ("BR-FR-02_BT-1", ["BR-FR-01_BT-1-2", "BR-FR-02_BT-1"], "BT-1", "L'identifiant de facture ne contient que des caractères alphanumériques et + - _ /, sans espaces."),
    ("BR-FR-01_BT-25", ["BR-FR-01_BT-25-1"], "BT-25", "L'identifiant de facture référencée ne doit pas dépasser 35 caractères."),
    ("BR-FR-02_BT-25", ["BR-FR-01_BT-25-2", "BR-FR-02_BT-25"], "BT-25", "L'identifiant de facture référencée ne contient que des caractères alphanumériques et + - _ /, sans espaces."),
    // --- Dates: a year between 2000 and 2099 ---
    ("BR-FR-03_BT-2", ["BR-FR-03_BT-2"], "BT-2", "La date d'émission doit avoir une année entre 2000 et 2099."),
    ("BR-FR-03_BT-7", ["BR-FR-03_BT-7"], "BT-7", "La date de fait générateur de la taxe doit avoir une année entre 2000 et 2099."),
    ("BR-FR-03_BT-9", ["BR-FR-03_BT-9"], "BT-9", "La date d'échéance doit avoir une année entre 2000 et 2099 (UBL : cbc:DueDate de la facture)."),
    ("BR-FR-03_BT-26", ["BR-FR-03_BT-26"], "BT-26", "La date de la facture référencée doit avoir une année entre 2000 et 2099."),
    ("BR-FR-03_BT-72", ["BR-FR-03_BT-72"], "BT-72", "La date de livraison effective doit avoir une année entre 2000 et 2099."),
    ("BR-FR-03_BT-73", ["BR-FR-03_BT-73"], "BT-73", "La date de début de période de facturation doit avoir une année entre 2000 et 2099."),
    ("BR-FR-03_BT-74", ["BR-FR-03_BT-74"], "BT-74", "La date de fin de période de facturation doit avoir une année entre 2000 et 2099."),
    ("BR-FR-03_EXT-FR-FE-134", ["BR-FR-03_BT-134"], "BT-134", "La date de début de période de facturation en ligne doit avoir une année entre 2000 et 2099."),
    ("BR-FR-03_EXT-FR-FE-135", ["BR-FR-03_BT-135"], "BT-135", "La date de fin de période de facturation en ligne doit avoir une année entre 2000 et 2099."),
    // --- Document type, notes, billing framework ---
    ("BR-FR-04_BT-3", ["BR-FR-04_BT-3"], "BT-3", "Le code type de document est l'un de 380 389 393 501 386 500 384 471 472 473 261 262 381 396 502 503."),
    ("BR-FR-05_BT-22_PMT", ["BR-FR-05_BT-22-1"], "BT-22", "La mention relative aux frais de recouvrement (note PMT) est obligatoire."),
    ("BR-FR-05_BT-22_PMD", ["BR-FR-05_BT-22-2"], "BT-22", "La mention relative aux pénalités de retard (note PMD) est obligatoire."),
    ("BR-FR-05_BT-22_AAB", ["BR-FR-05_BT-22-3"], "BT-22", "La mention relative à l'escompte ou à son absence (note AAB) est obligatoire."),
    ("BR-FR-06_BT-21_PMT", ["BR-FR-06_BT-21-1"], "BT-21", "Le code sujet PMT n'apparaît qu'une fois dans les notes."),
    ("BR-FR-06_BT-21_PMD", ["BR-FR-06_BT-21-2"], "BT-21", "Le code sujet PMD n'apparaît qu'une fois dans les notes."),
    ("BR-FR-06_BT-21_AAB", ["BR-FR-06_BT-21-3"], "BT-21", "Le code sujet AAB n'apparaît qu'une fois dans les notes."),
    ("BR-FR-06_BT-21_TXD", ["BR-FR-06_BT-21-4"], "BT-21", "Le code sujet TXD n'apparaît qu'une fois dans les notes."),
    ("BR-FR-08_BT-23", ["BR-FR-08_BT-23"], "BT-23", "Le cadre de facturation est présent et l'un de B1 S1 M1 B2 S2 M2 S3 B4 S4 M4 S5 S6 B7 S7 B8 S8 M8 B9 S9 M9."),
    // --- SIREN / SIRET ---
    ("BR-FR-09_BT-29", ["BR-FR-09_BT-29"], "BT-29", "Le SIRET du vendeur (schéma 0009) a 14 chiffres et commence par son SIREN (BT-30, schéma 0002)."),
    ("BR-FR-09_BT-46", ["BR-FR-09_BT-46"], "BT-46", "Le SIRET de l'acheteur (schéma 0009) a 14 chiffres et commence par son SIREN (BT-47, schéma 0002)."),
    ("BR-FR-09_BT-60", ["BR-FR-09_BT-60"], "BT-60", "Le SIRET du bénéficiaire (schéma 0009) a 14 chiffres et commence par son SIREN."),
    ("BR-FR-09_BT-71", ["BR-FR-09_BT-71"], "BT-71", "Le SIRET du lieu de livraison (schéma 0009) a 14 chiffres."),
    ("BR-FR-10_BT-30", ["BR-FR-10_BT-30"], "BT-30", "Le SIREN du vendeur (schéma 0002) est obligatoire et a exactement 9 chiffres."),
    ("BR-FR-11_BT-47", ["BR-FR-11_BT-47"], "BT-47", "En traitement BAR/B2B, le SIREN de l'acheteur (schéma 0002) est obligatoire et a exactement 9 chiffres."),
    ("BR-FR-32-LEGALID", ["BR-FR-32-LEGALID"], "BT-30", "Tout identifiant légal de schéma 0002 a 9 chiffres."),
    ("BR-FR-32-GLOBALID", ["BR-FR-32-ID"], "BT-29", "Tout identifiant de partie de schéma 0002 ou 0231 a 9 chiffres."),
    // --- Electronic addresses and private identifiers ---
    ("BR-FR-12_BT-49", ["BR-FR-12_BT-49"], "BT-49", "L'adresse électronique de l'acheteur (BT-49) est obligatoire."),
    ("BR-FR-13_BT-34", ["BR-FR-13_BT-34"], "BT-34", "L'adresse électronique du vendeur (BT-34) est obligatoire."),
    ("BR-FR-21_BT-49", ["BR-FR-21_BT-49"], "BT-49", "En traitement BAR/B2B hors autofacturation, BT-49 commence par le SIREN de l'acheteur et son schéma est 0225."),
    ("BR-FR-22_BT-34", ["BR-FR-22_BT-34"], "BT-34", "En traitement BAR/B2B en autofacturation, BT-34 commence par le SIREN du vendeur et son schéma est 0225."),
    ("BR-FR-23_BT-34", ["BR-FR-23_BT-34"], "BT-34", "Une adresse électronique de schéma 0225 ne contient que des caractères alphanumériques et + - _ ."),
    ("BR-FR-23_BT-49", ["BR-FR-23_BT-49"], "BT-49", "Une adresse électronique de schéma 0225 ne contient que des caractères alphanumériques et + - _ ."),
    ("BR-FR-24_BT-29", ["BR-FR-24_BT-29"], "BT-29", "Un identifiant privé (schéma 0224) ne contient que des caractères alphanumériques et + - _ ."),
    ("BR-FR-24_BT-46", ["BR-FR-24_BT-46"], "BT-46", "Un identifiant privé (schéma 0224) ne contient que des caractères alphanumériques et + - _ ."),
    ("BR-FR-25_BT-34", ["BR-FR-25_BT-34"], "BT-34", "L'adresse électronique ne dépasse pas 125 caractères."),
    ("BR-FR-25_BT-49", ["BR-FR-25_BT-49"], "BT-49", "L'adresse électronique ne dépasse pas 125 caractères."),
    ("BR-FR-26_BT-29", ["BR-FR-26_BT-29"], "BT-29", "Un identifiant privé (schéma 0224) ne dépasse pas 100 caractères."),
    ("BR-FR-26_BT-46", ["BR-FR-26_BT-46"], "BT-46", "Un identifiant privé (schéma 0224) ne dépasse pas 100 caractères."),
    ("BR-FR-CO-10_BT-29-1", ["BR-FR-CO-10_BT-29-1"], "BT-29", "Un identifiant du vendeur (BT-29) a un schéma (UBL ; en CII, ram:ID sans schéma est permis)."),
    ("BR-FR-CO-10_BT-29-2", ["BR-FR-CO-10_BT-29-2"], "BT-29", "Chaque schéma n'apparaît qu'une fois parmi les identifiants du vendeur."),
    ("BR-FR-CO-10_BT-46-1", ["BR-FR-CO-10_BT-46-1"], "BT-46", "Un identifiant de l'acheteur (BT-46) a un schéma (UBL)."),
    ("BR-FR-CO-10_BT-46-2", ["BR-FR-CO-10_BT-46-2"], "BT-46", "Chaque schéma n'apparaît qu'une fois parmi les identifiants de l'acheteur."),
    ("BR-FR-CO-10_BT-60-1", ["BR-FR-CO-10_BT-60-1"], "BT-60", "Un identifiant du bénéficiaire (BT-60) a un schéma (UBL)."),
    ("BR-FR-CO-10_BT-71-1", ["BR-FR-CO-10_BT-71-1"], "BT-71", "L'identifiant du lieu de livraison (BT-71) a un schéma (UBL)."),
    // --- VAT categories and rates ---
    ("BR-FR-15_BT-95_BT-102", ["BR-FR-15_BT-95_BT-102-1"], "BT-95", "Le code de catégorie de TVA d'une remise ou charge est l'un de S E AE K G O Z."),
    ("BR-FR-15_BT-95_BT-102_LM", ["BR-FR-15_BT-95_BT-102-2"], "BT-95", "Les catégories L et M ne sont pas pertinentes en France."),
    ("BR-FR-15_BT-95_BT-118", ["BR-FR-15_BT-118-1"], "BT-118", "Le code de catégorie de TVA d'une ventilation est l'un de S E AE K G O Z."),
    ("BR-FR-15_BT-95_BT-118_LM", ["BR-FR-15_BT-118-2"], "BT-118", "Les catégories L et M ne sont pas pertinentes en France."),
    ("BR-FR-15_BT-95_BT-151", ["BR-FR-15_BT-151-1"], "BT-151", "Le code de catégorie de TVA d'une ligne est l'un de S E AE K G O Z."),
    ("BR-FR-15_BT-95_BT-151_LM", ["BR-FR-08_BT-151-2"], "BT-151", "Les catégories L et M ne sont pas pertinentes en France."),
    ("BR-FR-16_BT-96_BT-103", ["BR-FR-16_BT-96"], "BT-96", "Le taux de TVA d'une remise ou charge est un taux français autorisé, sans « % »."),
    ("BR-FR-16_BT-119", ["BR-FR-16_BT-119"], "BT-119", "Le taux de TVA d'une ventilation est un taux français autorisé, sans « % »."),
    ("BR-FR-16_BT-152", ["BR-FR-16_BT-152"], "BT-152", "Le taux de TVA d'une ligne est un taux français autorisé, sans « % » (UBL : lignes de facture seulement)."),
    // --- Attachments ---
    ("BR-FR-17_BT-123", ["BR-FR-17_BT-123"], "BT-123", "La description d'une pièce jointe est l'un des codes autorisés (RIB, LISIBLE, FEUILLE_DE_STYLE, PJA, ...)."),
    ("BR-FR-18_BT-123", ["BR-FR-18_BT-123"], "BT-123", "Un seul document additionnel a la description LISIBLE."),
    // --- The BAR note (B2B / B2C treatment) ---
    ("BR-FR-20_BT-21", ["BR-FR-20_BT-21"], "BT-22", "Une note BAR vaut B2B, B2BINT, B2C, B2CINT, OUTOFSCOPE ou ARCHIVEONLY."),
    ("BR-FR-31_BT-21", ["BR-FR-30_BT-21"], "BT-21", "Une seule note BAR porte une valeur de traitement."),
    // --- Conditions ---
    ("BR-FR-CO-03_BT-3", ["BR-FR-CO-03_BT-3"], "BT-3", "Un avoir remise globale (262) a un numéro de contrat (BT-12) et une période de facturation complète (UBL : avoirs seulement)."),
    ("BR-FR-CO-04_BT-4", ["BR-FR-CO-04_BT-3"], "BT-3", "Une facture rectificative (384, 471, 472, 473) a une et une seule référence à une facture antérieure (UBL : factures seulement)."),
    ("BR-FR-CO-05_BT-3", ["BR-FR-CO-05_BT-3"], "BT-3", "Un avoir (261, 381, 396, 502, 503) référence une facture antérieure avec sa date (UBL : avoirs seulement)."),
    ("BR-FR-CO-07_BT-9", ["BR-FR-CO-07_BT-9"], "BT-9", "La date d'échéance n'est pas antérieure à la date de facture, sauf acompte (386, 500, 503) ou cadre B2/S2/M2."),
    ("BR-FR-CO-08_BT-23", ["BR-FR-CO-08_BT-23"], "BT-23", "En cadre B4/S4/M4, le type de facture n'est pas un acompte (386, 500, 503)."),
    ("BR-FR-CO-09_BT-23-1", ["BR-FR-CO-09_BT-23-1"], "BT-113", "En cadre B2/S2/M2 (déjà payée), le montant payé (BT-113) égale le total TTC (BT-112)."),
    ("BR-FR-CO-09_BT-23-2", ["BR-FR-CO-09_BT-23-2"], "BT-115", "En cadre B2/S2/M2, le net à payer (BT-115) est 0."),
    ("BR-FR-CO-09_BT-23-3", ["BR-FR-CO-09_BT-23-3"], "BT-9", "En cadre B2/S2/M2, la date d'échéance (date de paiement) est renseignée."),
    ("BR-FR-CO-12_BT-5", ["BR-FR-CO-12_BT-5"], "BT-6", "Hors EUR, la devise de comptabilité (BT-6) est EUR et la TVA en EUR (BT-111) est donnée."),
    ("BR-FR-CO-14_BT-29-1", ["BR-FR-CO-14_BT-29-1"], "BT-22", "Un vendeur membre d'un assujetti unique (schéma 0231) a une note TXD MEMBRE_ASSUJETTI_UNIQUE."),
    ("BR-FR-CO-15_BT-29-1", ["BR-FR-CO-15_BT-29-1"], "BT-63", "Un vendeur membre d'un assujetti unique a un représentant fiscal (BG-11) avec le numéro de TVA de l'assujetti unique (BT-63)."),
    ("BR-FR-MV-13_BT-3", ["BR-FR-MV-13_BT-3"], "BT-3", "En cadre S8/B8/M8, le type de facture n'est pas un type autofacturé (389 261 501 500 502 471 473)."),
    ("BR-FR-BD-13_BT-3", ["BR-FR-MV-BD_BT-3"], "BT-3", "En cadre S9/B9/M9, le type de facture est un type autofacturé (389 261 501 500 502 471 473)."),
    // --- Decimals ---
    ("BR-FR-DEC-01_BT-92_BT-99", ["BR-FR-DEC-01_BT-92_BT-99"], "BT-92", "Un montant a au plus 2 décimales et 19 caractères hors séparateur."),
    ("BR-FR-DEC-01_BT-93_BT-100", ["BR-FR-DEC-01_BT-93_BT-100"], "BT-93", "Un montant a au plus 2 décimales et 19 caractères hors séparateur."),
    ("BR-FR-DEC-01_BT-106", ["BR-FR-DEC-01_BT-106"], "BT-106", "Un montant a au plus 2 décimales et 19 caractères hors séparateur."),
    ("BR-FR-DEC-01_BT-107", ["BR-FR-DEC-01_BT-107"], "BT-107", "Un montant a au plus 2 décimales et 19 caractères hors séparateur."),
    ("BR-FR-DEC-01_BT-108", ["BR-FR-DEC-01_BT-108"], "BT-108", "Un montant a au plus 2 décimales et 19 caractères hors séparateur."),
    ("BR-FR-DEC-01_BT-109", ["BR-FR-DEC-01_BT-109"], "BT-109", "Un montant a au plus 2 décimales et 19 caractères hors séparateur."),
    ("BR-FR-DEC-01_BT-110", ["BR-FR-DEC-01_BT-110"], "BT-110", "Un montant a au plus 2 décimales et 19 caractères hors séparateur (BT-111 est jugé sous cet id : les artefacts donnent le même contexte aux deux)."),
    ("BR-FR-DEC-01_BT-112", ["BR-FR-DEC-01_BT-112"], "BT-112", "Un montant a au plus 2 décimales et 19 caractères hors séparateur."),
    ("BR-FR-DEC-01_BT-113", ["BR-FR-DEC-01_BT-113"], "BT-113", "Un montant a au plus 2 décimales et 19 caractères hors séparateur."),
    ("BR-FR-DEC-01_BT-114", ["BR-FR-DEC-01_BT-114"], "BT-114", "Un montant a au plus 2 décimales et 19 caractères hors séparateur."),
    ("BR-FR-DEC-01_BT-115", ["BR-FR-DEC-01_BT-115"], "BT-115", "Un montant a au plus 2 décimales et 19 caractères hors séparateur."),
    ("BR-FR-DEC-01_BT-116", ["BR-FR-DEC-01_BT-116"], "BT-116", "Un montant a au plus 2 décimales et 19 caractères hors séparateur."),
    ("BR-FR-DEC-01_BT-117", ["BR-FR-DEC-01_BT-117"], "BT-117", "Un montant a au plus 2 décimales et 19 caractères hors séparateur."),
    ("BR-FR-DEC-01_BT-131", ["BR-FR-DEC-01_BT-131"], "BT-131", "Un montant a au plus 2 décimales et 19 caractères hors séparateur."),
    ("BR-FR-DEC-01_BT-136_BT-141", ["BR-FR-DEC-01_BT-136_BT-141"], "BT-136", "Un montant a au plus 2 décimales et 19 caractères hors séparateur."),
    ("BR-FR-DEC-01_BT-137_BT-142", ["BR-FR-DEC-01_BT-137_BT-142"], "BT-137", "Un montant a au plus 2 décimales et 19 caractères hors séparateur."),
    ("BR-FR-DEC-02_BT-129", ["BR-FR-DEC-02_BT-129"], "BT-129", "Une quantité a au plus 4 décimales et 19 caractères hors séparateur."),
    ("BR-FR-DEC-02_BT-149", ["BR-FR-DEC-02_BT-149"], "BT-149", "Une quantité a au plus 4 décimales et 19 caractères hors séparateur."),
    ("BR-FR-DEC-03_BT-146", ["BR-FR-DEC-03_BT-146"], "BT-146", "Un prix a au plus 6 décimales et 19 caractères, sans signe « - » hors cadre S9/B9/M9."),
    ("BR-FR-DEC-03_BT-147", ["BR-FR-DEC-03_BT-147"], "BT-147", "Un rabais sur prix a au plus 6 décimales et 19 caractères, sans signe « - » hors cadre S9/B9/M9."),
    ("BR-FR-DEC-03_BT-148", ["BR-FR-DEC-03_BT-148"], "BT-148", "Un prix brut a au plus 6 décimales et 19 caractères, sans signe « - » hors cadre S9/B9/M9."),
    ("BR-FR-DEC-04_BT-96_BT-103", ["BR-FR-DEC-04_BT-96_BT-103"], "BT-96", "Un taux de TVA est positif, a au plus 2 décimales et 4 chiffres."),
    ("BR-FR-DEC-04_BT-119", ["BR-FR-DEC-04_BT-119"], "BT-119", "Un taux de TVA est positif, a au plus 2 décimales et 4 chiffres."),
    ("BR-FR-DEC-04_BT-152", ["BR-FR-DEC-04_BT-152"], "BT-152", "Un taux de TVA est positif, a au plus 2 décimales et 4 chiffres."),
];

/// The rules of the official files quai does not check, with the reason
/// (listed in `docs/rules.md`).
pub static NOT_CHECKED: &[(&str, &str)] = &[
    (
        "BR-FR-01/02/03/04 on EXT-FR-FE-136, -137, -138, -158; BR-FR-04_EXT-FR-FE-02",
        "line-level preceding-invoice references, their type codes and line delivery dates are EXTENDED-CTC-FR terms the canonical model does not carry",
    ),
    (
        "BR-FR-09, BR-FR-23, BR-FR-25, BR-FR-CO-10 on EXT-FR-FE-06, -12, -29, -46, -52, -69, -75, -92, -98, -115, -121, -146 (BR-FR-CO-10_BT-60-2, _BT-71-2)",
        "buyer agent, payer, seller agent, invoicee, invoicer, line ship-to and the payee's electronic address are EXTENDED-CTC-FR parties the canonical model does not carry; the payee and ship-to hold one identifier each, so a repeated scheme cannot occur",
    ),
    (
        "BR-FR-27_BG-32, BR-FR-27_BT-160, BR-FR-27_EXT-FR-FE-159, BR-FR-28-Value",
        "the model keeps an item attribute's name and value as text; whether the element was absent or empty, the attribute code (EXT-FR-FE-159) and a value with unit (ValueMeasure / ValueQuantity) are not kept",
    ),
    (
        "BR-FR-29_BT-18, BR-FR-29_AFL, BR-FR-29_AVV, BR-FR-30_BT-128, BR-FR-30_AFL, BR-FR-30_AVV",
        "the model holds one invoiced object identifier (BT-18, BT-128) per invoice and line, so repeated AFL / AVV references and empty ones are not seen",
    ),
    (
        "BR-FR-CO-10_BT-29-1, _BT-46-1, _BT-60-1, _BT-71-1 on CII",
        "the CII reader keeps `ram:ID` and a `ram:GlobalID` without `schemeID` alike (an identifier without scheme), and only the second breaks the rule; quai raises these on UBL only, where every `cbc:ID` of a party identification is meant",
    ),
    (
        "BR-FR-CO-05_BT-3 with line references",
        "line-level preceding-invoice references (EXT-FR-FE-136) are not in the model: a credit note with lines needs a header reference (BT-25 with BT-26) to pass (the CII reader keeps the line sub-type, EXT-FR-FE-163, so a GROUP or INFORMATION line may go without VAT category as BR-FR-15 allows)",
    ),
    (
        "BR-FR-03_BT-9 on UBL",
        "the UBL rule reads `cbc:DueDate`, not `cac:PaymentMeans/cbc:PaymentDueDate`; the model keeps one due date (BT-9) whichever element gave it, so quai checks it on UBL invoices (which have `cbc:DueDate`) and not on UBL credit notes (which do not)",
    ),
    (
        "BR-FR-MV-01 .. BR-FR-MV-12, BR-FR-MV-14, BR-FR-BD-02, BR-FR-BD-14",
        "the multi-vendor (S8/B8/M8) and bidirectional (S9/B9/M9) billing frameworks rest on line sub-types (GROUP / DETAIL), parent lines, line sellers and line totals (EXTENDED-CTC-FR terms) the model does not carry",
    ),
];
