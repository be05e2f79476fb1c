//! The syntax-neutral invoice every writer prints: parties, lines, the VAT
//! breakdown per rate and the totals BT-106..BT-115, computed with
//! `rust_decimal` so they satisfy EN 16931, and the defects that break one
//! rule each. Built once and applied before writing, so all syntaxes break
//! the same rule the same way.

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
    /// Every fatal rule the defect raises in a CII file, judged (as its
    /// guideline id says) by the Factur-X EN 16931 schematron, which also
    /// restates the buyer name's cardinality as its own rule.
    pub fn rules_in_cii(self) -> &'static [&'static str] {
        match self {
            Defect::BuyerName => &["BR-07", "FX-SCH-A-000030"],
            d => d.rules(),
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
