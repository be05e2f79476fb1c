//! Generator of realistic bulk flows for the benchmark and its tests.
//!
//! Why a generator and not the corpus: the benchmark needs hundreds of
//! thousands of invoices whose verdicts are known in advance, so that the
//! bench (and `tests/generator.rs`) can check exact accepted / rejected
//! counts instead of "something happened". Every invoice is built once as a
//! small syntax-neutral [`GenInvoice`] (parties, lines, VAT breakdown per
//! rate, totals BT-106..BT-115 computed with `rust_decimal` so they satisfy
//! EN 16931), an optional defect is applied to that value (so all syntaxes
//! break the same rule the same way), and then it is written as UBL 2.1,
//! UN/CEFACT CII D16B or an EDIFACT INVOIC D96A message.
//!
//! Everything is deterministic from the seed (a SplitMix64 stream, no
//! dependency), and flows are streamed to disk one invoice at a time, so a
//! flow of a million invoices is generated in bounded memory (the zip
//! writer's central directory aside). Invoice numbers are
//! `<run>-F<flow>-<index>`, unique across the flows of a run.
//!
//! The manifest `expected.json` written beside the flows lists, per flow,
//! its file name, invoice count, expected rejected count and, for each
//! invalid invoice, the rule it breaks (`rule`) and every fatal rule the
//! validator is expected to raise for it (`rules`).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDate};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;

/// Deterministic pseudo-random numbers (SplitMix64): stable across
/// platforms and versions, which a benchmark fixture needs.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x0005_EED0_F0A1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next_u64() % items.len() as u64) as usize]
    }
}

/// The flow formats the generator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    UblZip,
    CiiZip,
    UblTargz,
    EdifactGz,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "ubl-zip" => Kind::UblZip,
            "cii-zip" => Kind::CiiZip,
            "ubl-targz" | "ubl-tar-gz" => Kind::UblTargz,
            "edifact-gz" => Kind::EdifactGz,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::UblZip => "ubl-zip",
            Kind::CiiZip => "cii-zip",
            Kind::UblTargz => "ubl-targz",
            Kind::EdifactGz => "edifact-gz",
        }
    }
    pub fn extension(self) -> &'static str {
        match self {
            Kind::UblZip | Kind::CiiZip => "zip",
            Kind::UblTargz => "tar.gz",
            Kind::EdifactGz => "edi.gz",
        }
    }
}

/// The defects an invalid invoice can carry; each breaks one named rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// BT-106 is not the sum of the line net amounts (BT-109, BT-112 and
    /// BT-115 are shifted with it, so only BR-CO-10 fails).
    LineTotal,
    /// BT-112 is not BT-109 + BT-110 (BT-115 follows BT-112).
    TotalWithVat,
    /// BT-115 is not BT-112 − BT-113 + BT-114.
    AmountDue,
    /// The buyer has no name (BT-44).
    BuyerName,
    /// A VAT breakdown's tax (BT-117) is not its taxable amount × rate;
    /// BT-110, BT-112, BT-115 follow so that only the breakdown is wrong.
    /// Category S, so BR-S-09 (the same check per category) fails too.
    VatBreakdown,
}

impl Defect {
    pub const ALL: [Defect; 5] = [
        Defect::LineTotal,
        Defect::TotalWithVat,
        Defect::AmountDue,
        Defect::BuyerName,
        Defect::VatBreakdown,
    ];
    /// The rule the defect is made to break.
    pub fn rule(self) -> &'static str {
        match self {
            Defect::LineTotal => "BR-CO-10",
            Defect::TotalWithVat => "BR-CO-15",
            Defect::AmountDue => "BR-CO-16",
            Defect::BuyerName => "BR-07",
            Defect::VatBreakdown => "BR-CO-17",
        }
    }
    /// Every fatal rule the defect is expected to raise.
    pub fn rules(self) -> &'static [&'static str] {
        match self {
            Defect::VatBreakdown => &["BR-CO-17", "BR-S-09"],
            Defect::LineTotal => &["BR-CO-10"],
            Defect::TotalWithVat => &["BR-CO-15"],
            Defect::AmountDue => &["BR-CO-16"],
            Defect::BuyerName => &["BR-07"],
        }
    }
}

/// A party, as far as the generated invoices use one.
#[derive(Debug, Clone)]
pub struct GenParty {
    pub name: Option<String>,
    pub trading_name: String,
    pub siren: String,
    pub vat_id: String,
    pub street: String,
    pub city: String,
    pub post_code: String,
    pub country: String,
    pub contact: String,
    pub phone: String,
    pub email: String,
}

#[derive(Debug, Clone)]
pub struct GenLine {
    pub id: String,
    pub item_name: String,
    pub seller_item_id: String,
    pub quantity: Decimal,
    pub unit: &'static str,
    pub price: Decimal,
    pub net: Decimal,
    pub rate: Decimal,
}

#[derive(Debug, Clone)]
pub struct GenBreakdown {
    pub rate: Decimal,
    pub taxable: Decimal,
    pub tax: Decimal,
}

/// One invoice, independent of its syntax.
#[derive(Debug, Clone)]
pub struct GenInvoice {
    pub number: String,
    pub issue_date: NaiveDate,
    pub due_date: NaiveDate,
    pub delivery_date: NaiveDate,
    pub currency: &'static str,
    pub buyer_reference: String,
    pub order_reference: String,
    pub note: String,
    pub seller: GenParty,
    pub buyer: GenParty,
    pub iban: String,
    pub lines: Vec<GenLine>,
    pub breakdown: Vec<GenBreakdown>,
    /// BT-106
    pub line_total: Decimal,
    /// BT-109
    pub without_vat: Decimal,
    /// BT-110
    pub vat_total: Decimal,
    /// BT-112
    pub with_vat: Decimal,
    /// BT-115
    pub due: Decimal,
    pub defect: Option<Defect>,
}

const SELLERS: &[(&str, &str, &str, &str)] = &[
    ("Durand & Fils SARL", "12 rue des Tanneurs", "Lyon", "69002"),
    ("Boulangeries Martin SAS", "4 avenue Foch", "Paris", "75016"),
    ("Atelier Lefèvre", "88 quai de la Loire", "Nantes", "44000"),
    (
        "Transports Girard SA",
        "ZI des Paluds, 210 av. du Millet",
        "Aubagne",
        "13400",
    ),
    (
        "Papeterie du Centre",
        "3 place Jaude",
        "Clermont-Ferrand",
        "63000",
    ),
    (
        "Électricité Moreau SARL",
        "57 boulevard Vauban",
        "Lille",
        "59000",
    ),
    (
        "Imprimerie Roux & Cie",
        "21 rue Sainte-Catherine",
        "Bordeaux",
        "33000",
    ),
    (
        "Nettoyage Fournier SAS",
        "9 allée des Pins",
        "Toulouse",
        "31000",
    ),
];

const BUYERS: &[(&str, &str, &str, &str)] = &[
    (
        "Ministère de l'Économie",
        "139 rue de Bercy",
        "Paris",
        "75012",
    ),
    (
        "Hôpital Saint-Louis",
        "1 avenue Claude Vellefaux",
        "Paris",
        "75010",
    ),
    ("Mairie de Rennes", "Place de la Mairie", "Rennes", "35000"),
    ("Lycée Victor Hugo", "27 rue de Sévigné", "Paris", "75003"),
    (
        "Université de Strasbourg",
        "4 rue Blaise Pascal",
        "Strasbourg",
        "67081",
    ),
    (
        "Conseil départemental du Gard",
        "3 rue Guillemette",
        "Nîmes",
        "30000",
    ),
    (
        "CHU de Grenoble",
        "Boulevard de la Chantourne",
        "La Tronche",
        "38700",
    ),
    (
        "Préfecture de la Gironde",
        "2 esplanade Charles de Gaulle",
        "Bordeaux",
        "33000",
    ),
    (
        "Caisse d'Allocations Familiales",
        "18 rue Bourgelat",
        "Lyon",
        "69002",
    ),
    (
        "Musée des Beaux-Arts",
        "20 place des Terreaux",
        "Lyon",
        "69001",
    ),
    (
        "Office de Tourisme",
        "25 rue des Pyramides",
        "Paris",
        "75001",
    ),
    ("Régie des Eaux", "5 quai Rambaud", "Lyon", "69002"),
];

const ITEMS: &[(&str, &str)] = &[
    ("Ramette papier A4 80 g", "H87"),
    ("Cartouche d'encre noire", "H87"),
    ("Prestation de nettoyage", "HUR"),
    ("Câble électrique 3G2,5 (m)", "MTR"),
    ("Transport palette Lyon-Paris", "C62"),
    ("Baguette tradition", "H87"),
    ("Maintenance préventive", "HUR"),
    ("Farine T65 (kg)", "KGM"),
    ("Impression brochure A5 couleur", "C62"),
    ("Disjoncteur 16 A", "H87"),
    ("Café en grains (kg)", "KGM"),
    ("Licence logicielle annuelle", "C62"),
];

/// French VAT rates and how often each appears on a line.
fn pick_rate(rng: &mut Rng) -> Decimal {
    match rng.range(0, 9) {
        0..=6 => Decimal::new(20, 0),
        7 | 8 => Decimal::new(10, 0),
        _ => Decimal::new(55, 1),
    }
}

/// A SIREN with a valid Luhn check digit, and the matching FR VAT id.
fn siren_and_vat(n: u64) -> (String, String) {
    let base = 10_000_000 + (n % 89_999_999);
    let digits: Vec<u32> = format!("{base:08}")
        .bytes()
        .map(|b| (b - b'0') as u32)
        .collect();
    // Luhn over 9 digits: the check digit is the last one.
    let mut sum = 0;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = *d;
        if i % 2 == 0 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    let check = (10 - sum % 10) % 10;
    let siren = format!("{base:08}{check}");
    let s: u64 = siren.parse().unwrap_or(0);
    let key = (12 + 3 * (s % 97)) % 97;
    (siren.clone(), format!("FR{key:02}{siren}"))
}

fn party(table: &[(&str, &str, &str, &str)], idx: usize, salt: u64, buyer: bool) -> GenParty {
    let (name, street, city, pc) = table[idx % table.len()];
    let (siren, vat) = siren_and_vat(idx as u64 * 7919 + salt);
    let slug: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect::<String>()
        .to_ascii_lowercase();
    GenParty {
        name: Some(name.to_string()),
        trading_name: name.split_whitespace().next().unwrap_or(name).to_string(),
        siren,
        vat_id: vat,
        street: street.to_string(),
        city: city.to_string(),
        post_code: pc.to_string(),
        country: "FR".to_string(),
        contact: if buyer {
            "Service facturier"
        } else {
            "Service comptabilité"
        }
        .to_string(),
        phone: format!(
            "+33 1 {:02} {:02} {:02} {:02}",
            10 + idx % 80,
            11 + idx % 70,
            20 + idx % 60,
            30 + idx % 50
        ),
        email: format!(
            "{}@{}.example",
            if buyer { "factures" } else { "compta" },
            slug
        ),
    }
}

fn round2(v: Decimal) -> Decimal {
    let mut r = v.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(2);
    r
}

/// Build invoice `index` of flow `flow`, with `lines` lines and an optional defect.
pub fn build_invoice(
    rng: &mut Rng,
    run_id: &str,
    flow: usize,
    index: usize,
    lines: usize,
    defect: Option<Defect>,
) -> GenInvoice {
    let seller_idx = rng.range(0, SELLERS.len() as u64 - 1) as usize;
    let buyer_idx = rng.range(0, BUYERS.len() as u64 - 1) as usize;
    let seller = party(SELLERS, seller_idx, 11, false);
    let mut buyer = party(BUYERS, buyer_idx, 1_000_003, true);
    let base = NaiveDate::from_ymd_opt(2025, 1, 2).unwrap_or_default();
    let issue_date = base + Duration::days(rng.range(0, 360) as i64);
    let mut gen_lines = Vec::with_capacity(lines);
    for n in 0..lines {
        let (item, unit) = *rng.pick(ITEMS);
        let quantity = Decimal::from(rng.range(1, 48));
        let price = Decimal::new(rng.range(150, 250_000) as i64, 2);
        let net = round2(quantity * price);
        gen_lines.push(GenLine {
            id: (n + 1).to_string(),
            item_name: item.to_string(),
            seller_item_id: format!("SKU-{:05}", rng.range(1, 99_999)),
            quantity,
            unit,
            price,
            net,
            rate: pick_rate(rng),
        });
    }
    // VAT breakdown per rate, in a stable order (highest rate first).
    let mut breakdown: Vec<GenBreakdown> = Vec::new();
    for l in &gen_lines {
        match breakdown.iter_mut().find(|b| b.rate == l.rate) {
            Some(b) => b.taxable += l.net,
            None => breakdown.push(GenBreakdown {
                rate: l.rate,
                taxable: l.net,
                tax: Decimal::ZERO,
            }),
        }
    }
    breakdown.sort_by_key(|b| std::cmp::Reverse(b.rate));
    for b in &mut breakdown {
        b.taxable = round2(b.taxable);
        b.tax = round2(b.taxable * b.rate / Decimal::ONE_HUNDRED);
    }
    let line_total = round2(gen_lines.iter().map(|l| l.net).sum());
    let vat_total = round2(breakdown.iter().map(|b| b.tax).sum());
    let without_vat = line_total;
    let with_vat = round2(without_vat + vat_total);
    let mut inv = GenInvoice {
        number: format!("{run_id}-F{flow:05}-{index:07}"),
        issue_date,
        due_date: issue_date + Duration::days(30),
        delivery_date: issue_date - Duration::days(rng.range(1, 20) as i64),
        currency: "EUR",
        buyer_reference: format!("SERV-{:04}", rng.range(1, 9999)),
        order_reference: format!("PO-{}-{:06}", 2025, rng.range(1, 999_999)),
        note: "Pénalités de retard : 3 fois le taux d'intérêt légal. Indemnité forfaitaire pour frais de recouvrement : 40 €.".to_string(),
        iban: format!("FR76{:023}", seller_idx as u64 * 1_000_003 + 3_000_400_000),
        seller,
        buyer: {
            buyer.trading_name = format!("Site {}", buyer_idx + 1);
            buyer
        },
        lines: gen_lines,
        breakdown,
        line_total,
        without_vat,
        vat_total,
        with_vat,
        due: with_vat,
        defect,
    };
    let one = Decimal::new(100, 2);
    match defect {
        None => {}
        Some(Defect::LineTotal) => {
            inv.line_total += one;
            inv.without_vat += one;
            inv.with_vat += one;
            inv.due += one;
        }
        Some(Defect::TotalWithVat) => {
            inv.with_vat += one;
            inv.due += one;
        }
        Some(Defect::AmountDue) => inv.due += Decimal::new(1000, 2),
        Some(Defect::BuyerName) => inv.buyer.name = None,
        Some(Defect::VatBreakdown) => {
            let shift = Decimal::new(500, 2);
            if let Some(b) = inv.breakdown.first_mut() {
                b.tax += shift;
            }
            inv.vat_total += shift;
            inv.with_vat += shift;
            inv.due += shift;
        }
    }
    inv
}

// ------------------------------------------------------------------ writers

fn esc(out: &mut String, s: &str) {
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
fn a2(v: Decimal) -> String {
    let mut v = v;
    v.rescale(2);
    v.to_string()
}

fn rate_str(r: Decimal) -> String {
    r.normalize().to_string()
}

fn ubl_party(out: &mut String, p: &GenParty, buyer: bool) {
    out.push_str("    <cac:Party>\n");
    let _ = writeln!(
        out,
        "      <cbc:EndpointID schemeID=\"0009\">{}00011</cbc:EndpointID>",
        p.siren
    );
    let _ = write!(
        out,
        "      <cac:PartyIdentification>\n        <cbc:ID schemeID=\"0009\">{}00011</cbc:ID>\n      </cac:PartyIdentification>\n",
        p.siren
    );
    out.push_str("      <cac:PartyName>\n        <cbc:Name>");
    esc(out, &p.trading_name);
    out.push_str(
        "</cbc:Name>\n      </cac:PartyName>\n      <cac:PostalAddress>\n        <cbc:StreetName>",
    );
    esc(out, &p.street);
    out.push_str("</cbc:StreetName>\n        <cbc:CityName>");
    esc(out, &p.city);
    let _ = write!(
        out,
        "</cbc:CityName>\n        <cbc:PostalZone>{}</cbc:PostalZone>\n        <cac:Country>\n          <cbc:IdentificationCode>{}</cbc:IdentificationCode>\n        </cac:Country>\n      </cac:PostalAddress>\n",
        p.post_code, p.country
    );
    let _ = write!(
        out,
        "      <cac:PartyTaxScheme>\n        <cbc:CompanyID>{}</cbc:CompanyID>\n        <cac:TaxScheme>\n          <cbc:ID>VAT</cbc:ID>\n        </cac:TaxScheme>\n      </cac:PartyTaxScheme>\n",
        p.vat_id
    );
    out.push_str("      <cac:PartyLegalEntity>\n");
    if let Some(name) = &p.name {
        out.push_str("        <cbc:RegistrationName>");
        esc(out, name);
        out.push_str("</cbc:RegistrationName>\n");
    }
    let _ = writeln!(
        out,
        "        <cbc:CompanyID schemeID=\"0002\">{}</cbc:CompanyID>",
        p.siren
    );
    if !buyer {
        out.push_str(
            "        <cbc:CompanyLegalForm>SARL au capital de 50 000 EUR</cbc:CompanyLegalForm>\n",
        );
    }
    out.push_str("      </cac:PartyLegalEntity>\n      <cac:Contact>\n        <cbc:Name>");
    esc(out, &p.contact);
    let _ = write!(
        out,
        "</cbc:Name>\n        <cbc:ElectronicMail>{}</cbc:ElectronicMail>\n      </cac:Contact>\n    </cac:Party>\n",
        p.email
    );
}

/// The invoice as a UBL 2.1 Invoice, in the style of the EN 16931 examples.
pub fn write_ubl(inv: &GenInvoice, out: &mut String) {
    out.push_str(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\"\n",
        "  xmlns:cac=\"urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2\"\n",
        "  xmlns:cbc=\"urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2\">\n",
        "  <cbc:CustomizationID>urn:cen.eu:en16931:2017</cbc:CustomizationID>\n",
        "  <cbc:ProfileID>urn:fdc:peppol.eu:2017:poacc:billing:01:1.0</cbc:ProfileID>\n",
    ));
    let _ = write!(
        out,
        "  <cbc:ID>{}</cbc:ID>\n  <cbc:IssueDate>{}</cbc:IssueDate>\n  <cbc:DueDate>{}</cbc:DueDate>\n  <cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>\n  <cbc:Note>",
        inv.number, inv.issue_date, inv.due_date
    );
    esc(out, &inv.note);
    let _ = write!(
        out,
        "</cbc:Note>\n  <cbc:DocumentCurrencyCode>{}</cbc:DocumentCurrencyCode>\n  <cbc:BuyerReference>{}</cbc:BuyerReference>\n  <cac:OrderReference>\n    <cbc:ID>{}</cbc:ID>\n  </cac:OrderReference>\n",
        inv.currency, inv.buyer_reference, inv.order_reference
    );
    out.push_str("  <cac:AccountingSupplierParty>\n");
    ubl_party(out, &inv.seller, false);
    out.push_str("  </cac:AccountingSupplierParty>\n  <cac:AccountingCustomerParty>\n");
    ubl_party(out, &inv.buyer, true);
    out.push_str("  </cac:AccountingCustomerParty>\n");
    let _ = write!(
        out,
        "  <cac:Delivery>\n    <cbc:ActualDeliveryDate>{}</cbc:ActualDeliveryDate>\n  </cac:Delivery>\n",
        inv.delivery_date
    );
    let _ = write!(
        out,
        "  <cac:PaymentMeans>\n    <cbc:PaymentMeansCode>30</cbc:PaymentMeansCode>\n    <cbc:PaymentID>{}</cbc:PaymentID>\n    <cac:PayeeFinancialAccount>\n      <cbc:ID>{}</cbc:ID>\n    </cac:PayeeFinancialAccount>\n  </cac:PaymentMeans>\n",
        inv.number, inv.iban
    );
    out.push_str("  <cac:PaymentTerms>\n    <cbc:Note>Paiement à 30 jours fin de mois</cbc:Note>\n  </cac:PaymentTerms>\n");
    let _ = write!(
        out,
        "  <cac:TaxTotal>\n    <cbc:TaxAmount currencyID=\"{}\">{}</cbc:TaxAmount>\n",
        inv.currency,
        a2(inv.vat_total)
    );
    for b in &inv.breakdown {
        let _ = write!(
            out,
            "    <cac:TaxSubtotal>\n      <cbc:TaxableAmount currencyID=\"{c}\">{}</cbc:TaxableAmount>\n      <cbc:TaxAmount currencyID=\"{c}\">{}</cbc:TaxAmount>\n      <cac:TaxCategory>\n        <cbc:ID>S</cbc:ID>\n        <cbc:Percent>{}</cbc:Percent>\n        <cac:TaxScheme>\n          <cbc:ID>VAT</cbc:ID>\n        </cac:TaxScheme>\n      </cac:TaxCategory>\n    </cac:TaxSubtotal>\n",
            a2(b.taxable),
            a2(b.tax),
            rate_str(b.rate),
            c = inv.currency
        );
    }
    out.push_str("  </cac:TaxTotal>\n");
    let _ = write!(
        out,
        "  <cac:LegalMonetaryTotal>\n    <cbc:LineExtensionAmount currencyID=\"{c}\">{}</cbc:LineExtensionAmount>\n    <cbc:TaxExclusiveAmount currencyID=\"{c}\">{}</cbc:TaxExclusiveAmount>\n    <cbc:TaxInclusiveAmount currencyID=\"{c}\">{}</cbc:TaxInclusiveAmount>\n    <cbc:PayableAmount currencyID=\"{c}\">{}</cbc:PayableAmount>\n  </cac:LegalMonetaryTotal>\n",
        a2(inv.line_total),
        a2(inv.without_vat),
        a2(inv.with_vat),
        a2(inv.due),
        c = inv.currency
    );
    for l in &inv.lines {
        let _ = write!(
            out,
            "  <cac:InvoiceLine>\n    <cbc:ID>{}</cbc:ID>\n    <cbc:InvoicedQuantity unitCode=\"{}\">{}</cbc:InvoicedQuantity>\n    <cbc:LineExtensionAmount currencyID=\"{}\">{}</cbc:LineExtensionAmount>\n    <cac:Item>\n      <cbc:Name>",
            l.id, l.unit, l.quantity, inv.currency, a2(l.net)
        );
        esc(out, &l.item_name);
        let _ = write!(
            out,
            "</cbc:Name>\n      <cac:SellersItemIdentification>\n        <cbc:ID>{}</cbc:ID>\n      </cac:SellersItemIdentification>\n      <cac:ClassifiedTaxCategory>\n        <cbc:ID>S</cbc:ID>\n        <cbc:Percent>{}</cbc:Percent>\n        <cac:TaxScheme>\n          <cbc:ID>VAT</cbc:ID>\n        </cac:TaxScheme>\n      </cac:ClassifiedTaxCategory>\n    </cac:Item>\n    <cac:Price>\n      <cbc:PriceAmount currencyID=\"{}\">{}</cbc:PriceAmount>\n    </cac:Price>\n  </cac:InvoiceLine>\n",
            l.seller_item_id,
            rate_str(l.rate),
            inv.currency,
            a2(l.price)
        );
    }
    out.push_str("</Invoice>\n");
}

fn cii_date(d: NaiveDate) -> String {
    d.format("%Y%m%d").to_string()
}

fn cii_party(out: &mut String, tag: &str, p: &GenParty) {
    let _ = write!(
        out,
        "      <ram:{tag}>\n        <ram:ID>{}00011</ram:ID>\n",
        p.siren
    );
    if let Some(name) = &p.name {
        out.push_str("        <ram:Name>");
        esc(out, name);
        out.push_str("</ram:Name>\n");
    }
    let _ = write!(
        out,
        "        <ram:SpecifiedLegalOrganization>\n          <ram:ID schemeID=\"0002\">{}</ram:ID>\n          <ram:TradingBusinessName>",
        p.siren
    );
    esc(out, &p.trading_name);
    out.push_str("</ram:TradingBusinessName>\n        </ram:SpecifiedLegalOrganization>\n        <ram:DefinedTradeContact>\n          <ram:PersonName>");
    esc(out, &p.contact);
    let _ = write!(
        out,
        "</ram:PersonName>\n          <ram:TelephoneUniversalCommunication>\n            <ram:CompleteNumber>{}</ram:CompleteNumber>\n          </ram:TelephoneUniversalCommunication>\n          <ram:EmailURIUniversalCommunication>\n            <ram:URIID>{}</ram:URIID>\n          </ram:EmailURIUniversalCommunication>\n        </ram:DefinedTradeContact>\n        <ram:PostalTradeAddress>\n          <ram:PostcodeCode>{}</ram:PostcodeCode>\n          <ram:LineOne>",
        p.phone, p.email, p.post_code
    );
    esc(out, &p.street);
    out.push_str("</ram:LineOne>\n          <ram:CityName>");
    esc(out, &p.city);
    let _ = write!(
        out,
        "</ram:CityName>\n          <ram:CountryID>{}</ram:CountryID>\n        </ram:PostalTradeAddress>\n        <ram:URIUniversalCommunication>\n          <ram:URIID schemeID=\"0009\">{}00011</ram:URIID>\n        </ram:URIUniversalCommunication>\n        <ram:SpecifiedTaxRegistration>\n          <ram:ID schemeID=\"VA\">{}</ram:ID>\n        </ram:SpecifiedTaxRegistration>\n      </ram:{tag}>\n",
        p.country, p.siren, p.vat_id
    );
}

/// The invoice as a UN/CEFACT CII D16B CrossIndustryInvoice.
pub fn write_cii(inv: &GenInvoice, out: &mut String) {
    out.push_str(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<rsm:CrossIndustryInvoice xmlns:rsm=\"urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100\"\n",
        "  xmlns:qdt=\"urn:un:unece:uncefact:data:standard:QualifiedDataType:100\"\n",
        "  xmlns:ram=\"urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100\"\n",
        "  xmlns:udt=\"urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100\">\n",
        "  <rsm:ExchangedDocumentContext>\n    <ram:GuidelineSpecifiedDocumentContextParameter>\n",
        "      <ram:ID>urn:cen.eu:en16931:2017</ram:ID>\n",
        "    </ram:GuidelineSpecifiedDocumentContextParameter>\n  </rsm:ExchangedDocumentContext>\n",
    ));
    let _ = write!(
        out,
        "  <rsm:ExchangedDocument>\n    <ram:ID>{}</ram:ID>\n    <ram:TypeCode>380</ram:TypeCode>\n    <ram:IssueDateTime>\n      <udt:DateTimeString format=\"102\">{}</udt:DateTimeString>\n    </ram:IssueDateTime>\n    <ram:IncludedNote>\n      <ram:Content>",
        inv.number,
        cii_date(inv.issue_date)
    );
    esc(out, &inv.note);
    out.push_str("</ram:Content>\n      <ram:SubjectCode>PMT</ram:SubjectCode>\n    </ram:IncludedNote>\n  </rsm:ExchangedDocument>\n  <rsm:SupplyChainTradeTransaction>\n");
    for l in &inv.lines {
        let _ = write!(
            out,
            "    <ram:IncludedSupplyChainTradeLineItem>\n      <ram:AssociatedDocumentLineDocument>\n        <ram:LineID>{}</ram:LineID>\n      </ram:AssociatedDocumentLineDocument>\n      <ram:SpecifiedTradeProduct>\n        <ram:SellerAssignedID>{}</ram:SellerAssignedID>\n        <ram:Name>",
            l.id, l.seller_item_id
        );
        esc(out, &l.item_name);
        let _ = write!(
            out,
            "</ram:Name>\n      </ram:SpecifiedTradeProduct>\n      <ram:SpecifiedLineTradeAgreement>\n        <ram:NetPriceProductTradePrice>\n          <ram:ChargeAmount>{}</ram:ChargeAmount>\n          <ram:BasisQuantity unitCode=\"{u}\">1</ram:BasisQuantity>\n        </ram:NetPriceProductTradePrice>\n      </ram:SpecifiedLineTradeAgreement>\n      <ram:SpecifiedLineTradeDelivery>\n        <ram:BilledQuantity unitCode=\"{u}\">{}</ram:BilledQuantity>\n      </ram:SpecifiedLineTradeDelivery>\n      <ram:SpecifiedLineTradeSettlement>\n        <ram:ApplicableTradeTax>\n          <ram:TypeCode>VAT</ram:TypeCode>\n          <ram:CategoryCode>S</ram:CategoryCode>\n          <ram:RateApplicablePercent>{}</ram:RateApplicablePercent>\n        </ram:ApplicableTradeTax>\n        <ram:SpecifiedTradeSettlementLineMonetarySummation>\n          <ram:LineTotalAmount>{}</ram:LineTotalAmount>\n        </ram:SpecifiedTradeSettlementLineMonetarySummation>\n      </ram:SpecifiedLineTradeSettlement>\n    </ram:IncludedSupplyChainTradeLineItem>\n",
            a2(l.price),
            l.quantity,
            rate_str(l.rate),
            a2(l.net),
            u = l.unit
        );
    }
    let _ = write!(
        out,
        "    <ram:ApplicableHeaderTradeAgreement>\n      <ram:BuyerReference>{}</ram:BuyerReference>\n",
        inv.buyer_reference
    );
    cii_party(out, "SellerTradeParty", &inv.seller);
    cii_party(out, "BuyerTradeParty", &inv.buyer);
    let _ = write!(
        out,
        "      <ram:BuyerOrderReferencedDocument>\n        <ram:IssuerAssignedID>{}</ram:IssuerAssignedID>\n      </ram:BuyerOrderReferencedDocument>\n    </ram:ApplicableHeaderTradeAgreement>\n    <ram:ApplicableHeaderTradeDelivery>\n      <ram:ActualDeliverySupplyChainEvent>\n        <ram:OccurrenceDateTime>\n          <udt:DateTimeString format=\"102\">{}</udt:DateTimeString>\n        </ram:OccurrenceDateTime>\n      </ram:ActualDeliverySupplyChainEvent>\n    </ram:ApplicableHeaderTradeDelivery>\n",
        inv.order_reference,
        cii_date(inv.delivery_date)
    );
    let _ = write!(
        out,
        "    <ram:ApplicableHeaderTradeSettlement>\n      <ram:PaymentReference>{}</ram:PaymentReference>\n      <ram:InvoiceCurrencyCode>{}</ram:InvoiceCurrencyCode>\n      <ram:SpecifiedTradeSettlementPaymentMeans>\n        <ram:TypeCode>30</ram:TypeCode>\n        <ram:PayeePartyCreditorFinancialAccount>\n          <ram:IBANID>{}</ram:IBANID>\n        </ram:PayeePartyCreditorFinancialAccount>\n      </ram:SpecifiedTradeSettlementPaymentMeans>\n",
        inv.number, inv.currency, inv.iban
    );
    for b in &inv.breakdown {
        let _ = write!(
            out,
            "      <ram:ApplicableTradeTax>\n        <ram:CalculatedAmount>{}</ram:CalculatedAmount>\n        <ram:TypeCode>VAT</ram:TypeCode>\n        <ram:BasisAmount>{}</ram:BasisAmount>\n        <ram:CategoryCode>S</ram:CategoryCode>\n        <ram:RateApplicablePercent>{}</ram:RateApplicablePercent>\n      </ram:ApplicableTradeTax>\n",
            a2(b.tax),
            a2(b.taxable),
            rate_str(b.rate)
        );
    }
    let _ = write!(
        out,
        "      <ram:SpecifiedTradePaymentTerms>\n        <ram:Description>Paiement à 30 jours</ram:Description>\n        <ram:DueDateDateTime>\n          <udt:DateTimeString format=\"102\">{}</udt:DateTimeString>\n        </ram:DueDateDateTime>\n      </ram:SpecifiedTradePaymentTerms>\n      <ram:SpecifiedTradeSettlementHeaderMonetarySummation>\n        <ram:LineTotalAmount>{}</ram:LineTotalAmount>\n        <ram:TaxBasisTotalAmount>{}</ram:TaxBasisTotalAmount>\n        <ram:TaxTotalAmount currencyID=\"{}\">{}</ram:TaxTotalAmount>\n        <ram:GrandTotalAmount>{}</ram:GrandTotalAmount>\n        <ram:DuePayableAmount>{}</ram:DuePayableAmount>\n      </ram:SpecifiedTradeSettlementHeaderMonetarySummation>\n    </ram:ApplicableHeaderTradeSettlement>\n  </rsm:SupplyChainTradeTransaction>\n</rsm:CrossIndustryInvoice>\n",
        cii_date(inv.due_date),
        a2(inv.line_total),
        a2(inv.without_vat),
        inv.currency,
        a2(inv.vat_total),
        a2(inv.with_vat),
        a2(inv.due)
    );
}

/// EDIFACT text value with the release character applied.
fn edi(out: &mut String, s: &str) {
    for c in s.chars() {
        if matches!(c, '?' | '+' | ':' | '\'') {
            out.push('?');
        }
        out.push(c);
    }
}

/// One INVOIC D96A message (UNH .. UNT) with reference `msg_ref`.
pub fn write_edifact_message(inv: &GenInvoice, msg_ref: usize, out: &mut String) {
    let start = out.len();
    let mut segs = 0usize;
    let mut seg = |out: &mut String, f: &dyn Fn(&mut String)| {
        f(out);
        out.push_str("'\n");
        segs += 1;
    };
    seg(out, &|o| {
        let _ = write!(o, "UNH+{msg_ref}+INVOIC:D:96A:UN:EAN008");
    });
    seg(out, &|o| {
        o.push_str("BGM+380+");
        edi(o, &inv.number);
        o.push_str("+9");
    });
    seg(out, &|o| {
        let _ = write!(o, "DTM+137:{}:102", cii_date(inv.issue_date));
    });
    seg(out, &|o| {
        let _ = write!(o, "DTM+35:{}:102", cii_date(inv.delivery_date));
    });
    seg(out, &|o| o.push_str("FTX+DOC+++urn?:cen.eu?:en16931?:2017"));
    seg(out, &|o| {
        o.push_str("FTX+AAB+++");
        edi(o, "Paiement à 30 jours fin de mois");
    });
    seg(out, &|o| {
        o.push_str("RFF+ON:");
        edi(o, &inv.order_reference);
    });
    for (qual, p) in [("SE", &inv.seller), ("BY", &inv.buyer)] {
        seg(out, &|o| {
            let _ = write!(o, "NAD+{qual}+{}00011:0009++", p.siren);
            if let Some(name) = &p.name {
                edi(o, name);
            }
            o.push('+');
            edi(o, &p.street);
            o.push('+');
            edi(o, &p.city);
            let _ = write!(o, "++{}+{}", p.post_code, p.country);
        });
        if qual == "SE" {
            seg(out, &|o| {
                let _ = write!(o, "FII+RB+{}:Compte courant+BNPAFRPPXXX", inv.iban);
            });
        }
        seg(out, &|o| {
            let _ = write!(o, "RFF+VA:{}", p.vat_id);
        });
        seg(out, &|o| {
            let _ = write!(o, "RFF+GN:{}", p.siren);
        });
    }
    seg(out, &|o| {
        let _ = write!(o, "CUX+2:{}:4", inv.currency);
    });
    seg(out, &|o| o.push_str("PAT+1"));
    seg(out, &|o| {
        let _ = write!(o, "DTM+13:{}:102", cii_date(inv.due_date));
    });
    seg(out, &|o| o.push_str("PAI+::30"));
    for l in &inv.lines {
        seg(out, &|o| {
            let _ = write!(o, "LIN+{}", l.id);
        });
        seg(out, &|o| {
            let _ = write!(o, "PIA+5+{}:SA", l.seller_item_id);
        });
        seg(out, &|o| {
            o.push_str("IMD+F++:::");
            edi(o, &l.item_name);
        });
        seg(out, &|o| {
            let _ = write!(o, "QTY+47:{}:{}", l.quantity, l.unit);
        });
        seg(out, &|o| {
            let _ = write!(o, "MOA+203:{}", a2(l.net));
        });
        seg(out, &|o| {
            let _ = write!(o, "PRI+AAA:{}:::1:{}", a2(l.price), l.unit);
        });
        seg(out, &|o| {
            let _ = write!(o, "TAX+7+VAT+++:::{}+S", rate_str(l.rate));
        });
    }
    seg(out, &|o| o.push_str("UNS+S"));
    seg(out, &|o| {
        let _ = write!(o, "MOA+79:{}", a2(inv.line_total));
    });
    seg(out, &|o| {
        let _ = write!(o, "MOA+389:{}", a2(inv.without_vat));
    });
    seg(out, &|o| {
        let _ = write!(o, "MOA+176:{}", a2(inv.vat_total));
    });
    seg(out, &|o| {
        let _ = write!(o, "MOA+388:{}", a2(inv.with_vat));
    });
    seg(out, &|o| {
        let _ = write!(o, "MOA+9:{}", a2(inv.due));
    });
    for b in &inv.breakdown {
        seg(out, &|o| {
            let _ = write!(o, "TAX+7+VAT+++:::{}+S", rate_str(b.rate));
        });
        seg(out, &|o| {
            let _ = write!(o, "MOA+125:{}", a2(b.taxable));
        });
        seg(out, &|o| {
            let _ = write!(o, "MOA+124:{}", a2(b.tax));
        });
    }
    let count = segs + 1;
    let _ = writeln!(out, "UNT+{count}+{msg_ref}'");
    debug_assert!(out.len() > start);
}

/// The interchange header (UNA, UNB) of an EDIFACT flow.
pub fn write_edifact_header(control_ref: &str, out: &mut String) {
    let _ = writeln!(
        out,
        "UNA:+.? '\nUNB+UNOC:3+3012345000013:14+3019876000015:14+250102:0900+{control_ref}'"
    );
}

/// The interchange trailer (UNZ) for `messages` messages.
pub fn write_edifact_trailer(control_ref: &str, messages: usize, out: &mut String) {
    let _ = writeln!(out, "UNZ+{messages}+{control_ref}'");
}

// ------------------------------------------------------------------ flows

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    pub kind: Kind,
    pub flows: usize,
    pub invoices: usize,
    pub lines_min: usize,
    pub lines_max: usize,
    /// Share of invalid invoices per flow, 0.0 ..= 1.0 (rounded per flow).
    pub invalid_share: f64,
    pub seed: u64,
    /// Prefix of invoice numbers and file names; default `R<seed>`.
    pub run_id: Option<String>,
    pub out: PathBuf,
}

impl Options {
    pub fn run_id(&self) -> String {
        self.run_id
            .clone()
            .unwrap_or_else(|| format!("R{}", self.seed))
    }
}

/// One invalid invoice, as the manifest records it.
#[derive(Debug, Clone, Serialize)]
pub struct InvalidEntry {
    /// 0-based position in the flow.
    pub index: usize,
    pub number: String,
    /// The rule the invoice was made to break.
    pub rule: &'static str,
    /// Every fatal rule expected for it.
    pub rules: Vec<&'static str>,
}

/// One generated flow.
#[derive(Debug, Clone, Serialize)]
pub struct FlowManifest {
    pub file: String,
    pub invoices: usize,
    pub rejected: usize,
    pub lines: usize,
    /// Size of the file as dropped.
    pub bytes: u64,
    /// Size of the documents once unpacked.
    pub unpacked_bytes: u64,
    pub invalid: Vec<InvalidEntry>,
}

/// `expected.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub kind: Kind,
    pub seed: u64,
    pub run_id: String,
    pub invoices: usize,
    pub rejected: usize,
    pub bytes: u64,
    pub unpacked_bytes: u64,
    pub flows: Vec<FlowManifest>,
}

/// Which invoices of a flow are invalid, and how: exactly
/// `round(n × share)` of them, at seeded positions.
fn defects_for(rng: &mut Rng, n: usize, share: f64) -> Vec<Option<Defect>> {
    let share = share.clamp(0.0, 1.0);
    let bad = ((n as f64) * share).round() as usize;
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..bad.min(n) {
        let j = i + (rng.next_u64() % (n - i) as u64) as usize;
        idx.swap(i, j);
    }
    let mut out = vec![None; n];
    // Cycle the kinds from a seeded start, so every kind appears as soon as
    // a flow has five invalid invoices.
    let start = (rng.next_u64() % Defect::ALL.len() as u64) as usize;
    for (k, &i) in idx.iter().take(bad).enumerate() {
        out[i] = Some(Defect::ALL[(k + start) % Defect::ALL.len()]);
    }
    out
}

/// Counts what goes through it (the unpacked size of a flow).
struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Generate one flow at `path`; returns its manifest entry.
pub fn generate_flow(opts: &Options, flow: usize, path: &Path) -> io::Result<FlowManifest> {
    let run_id = opts.run_id();
    let mut rng = Rng::new(opts.seed.wrapping_mul(1_000_003).wrapping_add(flow as u64));
    let defects = defects_for(&mut rng, opts.invoices, opts.invalid_share);
    let file = File::create(path)?;
    let mut invalid = Vec::new();
    let mut unpacked = 0u64;
    let mut total_lines = 0usize;
    let mut doc = String::with_capacity(16 << 10);
    let lines_max = opts.lines_max.max(opts.lines_min).max(1);
    let lines_min = opts.lines_min.clamp(1, lines_max);
    let next = |rng: &mut Rng, i: usize| -> GenInvoice {
        let lines = rng.range(lines_min as u64, lines_max as u64) as usize;
        build_invoice(rng, &run_id, flow, i, lines, defects[i])
    };
    let record = |inv: &GenInvoice, i: usize, invalid: &mut Vec<InvalidEntry>| {
        if let Some(d) = inv.defect {
            invalid.push(InvalidEntry {
                index: i,
                number: inv.number.clone(),
                rule: d.rule(),
                rules: d.rules().to_vec(),
            });
        }
    };
    match opts.kind {
        Kind::UblZip | Kind::CiiZip => {
            let mut zip = zip::ZipWriter::new(BufWriter::with_capacity(1 << 20, file));
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .last_modified_time(zip::DateTime::default());
            for i in 0..opts.invoices {
                let inv = next(&mut rng, i);
                doc.clear();
                if opts.kind == Kind::UblZip {
                    write_ubl(&inv, &mut doc);
                } else {
                    write_cii(&inv, &mut doc);
                }
                zip.start_file(format!("{}.xml", inv.number), options)
                    .map_err(io::Error::other)?;
                zip.write_all(doc.as_bytes())?;
                unpacked += doc.len() as u64;
                total_lines += inv.lines.len();
                record(&inv, i, &mut invalid);
            }
            let mut w = zip.finish().map_err(io::Error::other)?;
            w.flush()?;
            w.get_ref().sync_all()?;
        }
        Kind::UblTargz => {
            let gz = flate2::write::GzEncoder::new(
                BufWriter::with_capacity(1 << 20, file),
                flate2::Compression::default(),
            );
            let mut tar = tar::Builder::new(gz);
            for i in 0..opts.invoices {
                let inv = next(&mut rng, i);
                doc.clear();
                write_ubl(&inv, &mut doc);
                let mut header = tar::Header::new_gnu();
                header.set_size(doc.len() as u64);
                header.set_mode(0o644);
                header.set_mtime(1_735_776_000);
                header.set_entry_type(tar::EntryType::Regular);
                tar.append_data(&mut header, format!("{}.xml", inv.number), doc.as_bytes())?;
                unpacked += doc.len() as u64;
                total_lines += inv.lines.len();
                record(&inv, i, &mut invalid);
            }
            let gz = tar.into_inner()?;
            let mut w = gz.finish()?;
            w.flush()?;
            w.get_ref().sync_all()?;
        }
        Kind::EdifactGz => {
            let gz = flate2::write::GzEncoder::new(
                BufWriter::with_capacity(1 << 20, file),
                flate2::Compression::default(),
            );
            let mut w = Counting { inner: gz, n: 0 };
            let control = format!(
                "{}{:05}",
                run_id
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .take(8)
                    .collect::<String>(),
                flow
            );
            doc.clear();
            write_edifact_header(&control, &mut doc);
            w.write_all(doc.as_bytes())?;
            for i in 0..opts.invoices {
                let inv = next(&mut rng, i);
                doc.clear();
                write_edifact_message(&inv, i + 1, &mut doc);
                w.write_all(doc.as_bytes())?;
                total_lines += inv.lines.len();
                record(&inv, i, &mut invalid);
            }
            doc.clear();
            write_edifact_trailer(&control, opts.invoices, &mut doc);
            w.write_all(doc.as_bytes())?;
            unpacked = w.n;
            let mut inner = w.inner.finish()?;
            inner.flush()?;
            inner.get_ref().sync_all()?;
        }
    }
    let bytes = std::fs::metadata(path)?.len();
    Ok(FlowManifest {
        file: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        invoices: opts.invoices,
        rejected: invalid.len(),
        lines: total_lines,
        bytes,
        unpacked_bytes: unpacked,
        invalid,
    })
}

/// The file name of flow `flow`.
pub fn flow_file_name(opts: &Options, flow: usize) -> String {
    format!(
        "{}-flow-{:05}.{}",
        opts.run_id(),
        flow,
        opts.kind.extension()
    )
}

/// Generate every flow into `opts.out` (`jobs` in parallel) and write
/// `expected.json` beside them.
pub fn generate(opts: &Options, jobs: usize) -> io::Result<Manifest> {
    std::fs::create_dir_all(&opts.out)?;
    let jobs = jobs.clamp(1, opts.flows.max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::with_capacity(opts.flows));
    std::thread::scope(|s| -> io::Result<()> {
        let mut handles = Vec::new();
        for _ in 0..jobs {
            handles.push(s.spawn(|| -> io::Result<()> {
                loop {
                    let f = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if f >= opts.flows {
                        return Ok(());
                    }
                    let path = opts.out.join(flow_file_name(opts, f));
                    let m = generate_flow(opts, f, &path)?;
                    results
                        .lock()
                        .map_err(|_| io::Error::other("generator thread panicked"))?
                        .push((f, m));
                }
            }));
        }
        for h in handles {
            h.join()
                .map_err(|_| io::Error::other("generator thread panicked"))??;
        }
        Ok(())
    })?;
    let mut flows = results
        .into_inner()
        .map_err(|_| io::Error::other("generator thread panicked"))?;
    flows.sort_by_key(|(f, _)| *f);
    let flows: Vec<FlowManifest> = flows.into_iter().map(|(_, m)| m).collect();
    let manifest = Manifest {
        kind: opts.kind,
        seed: opts.seed,
        run_id: opts.run_id(),
        invoices: flows.iter().map(|f| f.invoices).sum(),
        rejected: flows.iter().map(|f| f.rejected).sum(),
        bytes: flows.iter().map(|f| f.bytes).sum(),
        unpacked_bytes: flows.iter().map(|f| f.unpacked_bytes).sum(),
        flows,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(io::Error::other)?;
    std::fs::write(opts.out.join("expected.json"), json)?;
    Ok(manifest)
}
