//! The one-pass aggregates, and the VAT category rule families.
//!
//! [`Aggregates`] is filled while the lines, allowances, charges and VAT
//! breakdowns are visited once each; it holds the few sums the totals and
//! VAT rules need, keyed by VAT category (and rate), a map of a handful of
//! entries whatever the number of lines.

use crate::positions::At;
use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::model::{DocumentAllowanceCharge, Invoice, Line, VatBreakdown};

use super::tolerance::within_one;
use super::{LineRef, Out, Scope, Sum};

/// Sums for one VAT category, or one (category, rate) pair.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Bucket {
    /// Lines in this category.
    pub lines: usize,
    /// Document level allowances in this category.
    pub allowances: usize,
    /// Document level charges in this category.
    pub charges: usize,
    /// VAT breakdowns (BG-23) with this category.
    pub breakdowns: usize,
    /// Σ BT-131 + Σ BT-99 − Σ BT-92 over this category (or rate).
    pub basis: Sum,
}

/// Everything the cross-cutting rules need, gathered in one pass.
#[derive(Debug, Default)]
pub(crate) struct Aggregates<'a> {
    /// Σ BT-131 over all lines.
    pub line_net: Sum,
    /// Σ BT-92.
    pub allowance_sum: Sum,
    /// Σ BT-99.
    pub charge_sum: Sum,
    /// Σ BT-117.
    pub breakdown_tax: Sum,
    /// Per VAT category code (trimmed, as written).
    pub by_category: BTreeMap<&'a str, Bucket>,
    /// Per (category, rate) for the rate-wise rules (S, L, M).
    pub by_rate: BTreeMap<(&'a str, Decimal), Bucket>,
    /// VAT breakdowns whose category is not O (BR-O-11).
    pub breakdowns_not_o: usize,
    /// Lines, allowances, charges with a category other than O (BR-O-12..14).
    pub lines_not_o: usize,
    pub allowances_not_o: usize,
    pub charges_not_o: usize,
}

fn cat(code: &Option<String>) -> Option<&str> {
    code.as_deref().map(str::trim)
}

impl<'a> Aggregates<'a> {
    pub fn add_line(&mut self, l: &'a Line) {
        if let Some(n) = l.net_amount {
            self.line_net.add(n);
        }
        if let Some(c) = cat(&l.vat_category) {
            if c != "O" {
                self.lines_not_o += 1;
            }
            let b = self.by_category.entry(c).or_default();
            b.lines += 1;
            if let Some(n) = l.net_amount {
                b.basis.add(n);
            }
            if let Some(r) = l.vat_rate {
                let b = self.by_rate.entry((c, r)).or_default();
                b.lines += 1;
                if let Some(n) = l.net_amount {
                    b.basis.add(n);
                }
            }
        }
    }

    fn add_doc_ac(&mut self, ac: &'a DocumentAllowanceCharge, charge: bool) {
        if let Some(a) = ac.amount {
            if charge {
                self.charge_sum.add(a);
            } else {
                self.allowance_sum.add(a);
            }
        }
        if let Some(c) = cat(&ac.vat_category) {
            if c != "O" {
                if charge {
                    self.charges_not_o += 1;
                } else {
                    self.allowances_not_o += 1;
                }
            }
            let apply = |b: &mut Bucket| {
                if charge {
                    b.charges += 1;
                } else {
                    b.allowances += 1;
                }
                if let Some(a) = ac.amount {
                    if charge {
                        b.basis.add(a);
                    } else {
                        b.basis.sub(a);
                    }
                }
            };
            apply(self.by_category.entry(c).or_default());
            if let Some(r) = ac.vat_rate {
                apply(self.by_rate.entry((c, r)).or_default());
            }
        }
    }

    pub fn add_allowance(&mut self, a: &'a DocumentAllowanceCharge) {
        self.add_doc_ac(a, false);
    }

    pub fn add_charge(&mut self, c: &'a DocumentAllowanceCharge) {
        self.add_doc_ac(c, true);
    }

    pub fn add_breakdown(&mut self, b: &'a VatBreakdown) {
        if let Some(t) = b.tax_amount {
            self.breakdown_tax.add(t);
        }
        if let Some(c) = cat(&b.category) {
            if c != "O" {
                self.breakdowns_not_o += 1;
            }
            self.by_category.entry(c).or_default().breakdowns += 1;
        }
    }
}

/// How a family wants the breakdown for its category to look (`-01`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Count {
    /// At least one breakdown when there are items, none without (S, L, M).
    AtLeastOne,
    /// Exactly one breakdown when the category appears anywhere.
    ExactlyOne,
}

/// The rate an item of the family must carry (`-05` .. `-07`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum RateRule {
    Positive,
    Zero,
    ZeroOrPositive,
    Absent,
}

/// Which party identifiers the family requires (`-02` .. `-04`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ids {
    /// BT-31, BT-32 or BT-63.
    SellerTax,
    /// (BT-31, BT-32 or BT-63) and (BT-48 or BT-47).
    SellerTaxAndBuyer,
    /// (BT-31 or BT-63) and BT-48.
    SellerVatAndBuyerVat,
    /// BT-31 or BT-63.
    SellerVat,
    /// None of BT-31, BT-63, BT-48.
    NoVat,
}

/// One VAT category rule family, as the schematron states it.
struct Family {
    code: &'static str,
    name: &'static str,
    /// Rule ids `-01` .. `-10`, in order.
    ids: [&'static str; 10],
    count: Count,
    rate: RateRule,
    party: Ids,
    /// `-08` per rate with ±1 leeway (S, L, M), else per category, exact.
    per_rate: bool,
    /// `-09`: tax = taxable × rate (±1) when true, else tax = 0.
    taxed: bool,
    /// `-10`: an exemption reason is required (true) or forbidden (false).
    exempt: bool,
}

macro_rules! ids {
    ($p:literal) => {
        [
            concat!($p, "-01"),
            concat!($p, "-02"),
            concat!($p, "-03"),
            concat!($p, "-04"),
            concat!($p, "-05"),
            concat!($p, "-06"),
            concat!($p, "-07"),
            concat!($p, "-08"),
            concat!($p, "-09"),
            concat!($p, "-10"),
        ]
    };
}

const FAMILIES: &[Family] = &[
    Family {
        code: "S",
        name: "standard rated",
        ids: ids!("BR-S"),
        count: Count::AtLeastOne,
        rate: RateRule::Positive,
        party: Ids::SellerTax,
        per_rate: true,
        taxed: true,
        exempt: false,
    },
    Family {
        code: "Z",
        name: "zero rated",
        ids: ids!("BR-Z"),
        count: Count::ExactlyOne,
        rate: RateRule::Zero,
        party: Ids::SellerTax,
        per_rate: false,
        taxed: false,
        exempt: false,
    },
    Family {
        code: "E",
        name: "exempt from VAT",
        ids: ids!("BR-E"),
        count: Count::ExactlyOne,
        rate: RateRule::Zero,
        party: Ids::SellerTax,
        per_rate: false,
        taxed: false,
        exempt: true,
    },
    Family {
        code: "AE",
        name: "VAT reverse charge",
        ids: ids!("BR-AE"),
        count: Count::ExactlyOne,
        rate: RateRule::Zero,
        party: Ids::SellerTaxAndBuyer,
        per_rate: false,
        taxed: false,
        exempt: true,
    },
    Family {
        code: "K",
        name: "intra-community supply",
        ids: ids!("BR-IC"),
        count: Count::ExactlyOne,
        rate: RateRule::Zero,
        party: Ids::SellerVatAndBuyerVat,
        per_rate: false,
        taxed: false,
        exempt: true,
    },
    Family {
        code: "G",
        name: "export outside the EU",
        ids: ids!("BR-G"),
        count: Count::ExactlyOne,
        rate: RateRule::Zero,
        party: Ids::SellerVat,
        per_rate: false,
        taxed: false,
        exempt: true,
    },
    Family {
        code: "O",
        name: "not subject to VAT",
        ids: ids!("BR-O"),
        count: Count::ExactlyOne,
        rate: RateRule::Absent,
        party: Ids::NoVat,
        per_rate: false,
        taxed: false,
        exempt: true,
    },
    Family {
        code: "L",
        name: "IGIC (Canary Islands)",
        ids: ids!("BR-AF"),
        count: Count::AtLeastOne,
        rate: RateRule::ZeroOrPositive,
        party: Ids::SellerTax,
        per_rate: true,
        taxed: true,
        exempt: false,
    },
    Family {
        code: "M",
        name: "IPSI (Ceuta and Melilla)",
        ids: ids!("BR-AG"),
        count: Count::AtLeastOne,
        rate: RateRule::ZeroOrPositive,
        party: Ids::SellerTax,
        per_rate: true,
        taxed: true,
        exempt: false,
    },
];

fn family(code: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.code == code)
}

fn rate_ok(rule: RateRule, rate: Option<Decimal>) -> bool {
    match (rule, rate) {
        (RateRule::Absent, r) => r.is_none(),
        (_, None) => false,
        (RateRule::Positive, Some(r)) => r > Decimal::ZERO,
        (RateRule::Zero, Some(r)) => r.is_zero(),
        (RateRule::ZeroOrPositive, Some(r)) => r >= Decimal::ZERO,
    }
}

fn rate_text(rule: RateRule) -> &'static str {
    match rule {
        RateRule::Positive => "greater than 0",
        RateRule::Zero => "0",
        RateRule::ZeroOrPositive => "0 or more",
        RateRule::Absent => "absent",
    }
}

fn shown_rate(rate: Option<Decimal>) -> String {
    rate.map_or_else(
        || "missing".to_string(),
        |r| format!("{} %", super::rate(r)),
    )
}

/// Rate rules of one line (`-05`), checked during the pass over the lines.
pub(super) fn line(l: &Line, at: LineRef<'_>, out: &mut Out) {
    let Some(f) = cat(&l.vat_category).and_then(family) else {
        return;
    };
    if !rate_ok(f.rate, l.vat_rate) {
        let msg = if f.rate == RateRule::Absent {
            format!("Invoice {at} is {} ({}) but carries a VAT rate (BT-152) of {}; leave the rate out.", f.name, f.code, shown_rate(l.vat_rate))
        } else {
            format!(
                "Invoice {at} is {} ({}) so its VAT rate (BT-152) must be {}; it is {}.",
                f.name,
                f.code,
                rate_text(f.rate),
                shown_rate(l.vat_rate)
            )
        };
        out.emit(f.ids[4], msg);
    }
}

struct PartyIds {
    seller_vat: bool,
    seller_tax_reg: bool,
    rep_vat: bool,
    buyer_vat: bool,
    buyer_legal: bool,
}

impl PartyIds {
    fn of(inv: &Invoice) -> Self {
        PartyIds {
            seller_vat: super::filled(&inv.seller.vat_id),
            seller_tax_reg: super::filled(&inv.seller.tax_registration_id),
            rep_vat: inv
                .tax_representative
                .as_ref()
                .is_some_and(|r| super::filled(&r.vat_id)),
            buyer_vat: super::filled(&inv.buyer.vat_id),
            buyer_legal: inv.buyer.legal_registration_id.is_some()
                || super::filled(&inv.buyer.tax_registration_id),
        }
    }

    /// `None` when satisfied, else what is missing (or must go).
    fn problem(&self, rule: Ids) -> Option<&'static str> {
        let seller_tax = self.seller_vat || self.seller_tax_reg || self.rep_vat;
        let seller_vat = self.seller_vat || self.rep_vat;
        match rule {
            Ids::SellerTax if !seller_tax => Some("the seller VAT identifier (BT-31), the seller tax registration identifier (BT-32) or the tax representative VAT identifier (BT-63) is required"),
            Ids::SellerTaxAndBuyer if !seller_tax => Some("the seller VAT identifier (BT-31), the seller tax registration identifier (BT-32) or the tax representative VAT identifier (BT-63) is required"),
            Ids::SellerTaxAndBuyer if !(self.buyer_vat || self.buyer_legal) => Some("the buyer VAT identifier (BT-48) or legal registration identifier (BT-47) is required"),
            Ids::SellerVatAndBuyerVat if !seller_vat => Some("the seller VAT identifier (BT-31) or the tax representative VAT identifier (BT-63) is required"),
            Ids::SellerVatAndBuyerVat if !self.buyer_vat => Some("the buyer VAT identifier (BT-48) is required"),
            Ids::SellerVat if !seller_vat => Some("the seller VAT identifier (BT-31) or the tax representative VAT identifier (BT-63) is required"),
            Ids::NoVat if self.seller_vat || self.rep_vat || self.buyer_vat => Some("the seller (BT-31), tax representative (BT-63) and buyer (BT-48) VAT identifiers must be left out"),
            _ => None,
        }
    }
}

/// The VAT category rule families, from the aggregates and one walk over
/// the (few) breakdowns and document allowances and charges.
pub(super) fn check(inv: &Invoice, scope: Scope, agg: &Aggregates<'_>, out: &mut Out) {
    let parties = PartyIds::of(inv);

    // -01 .. -04, per category present anywhere.
    let cii = matches!(
        inv.syntax,
        Some(crate::model::Syntax::Cii) | Some(crate::model::Syntax::FacturX)
    );
    for (&code, bucket) in &agg.by_category {
        let Some(f) = family(code) else { continue };
        let items = bucket.lines + bucket.allowances + bucket.charges;
        let bad_count = match f.count {
            Count::AtLeastOne => (items > 0) != (bucket.breakdowns > 0),
            // The CII binding wants the one breakdown to have items of its
            // category (`count(breakdowns) = 1 and exists(items)`), and
            // states O as "no O breakdown, or one with O items"; the UBL
            // one counts the breakdown's own TaxCategory as an item.
            Count::ExactlyOne if cii => {
                let one_with_items = bucket.breakdowns == 1 && items > 0;
                let none = bucket.breakdowns == 0 && (items == 0 || f.code == "O");
                !(one_with_items || none)
            }
            Count::ExactlyOne => bucket.breakdowns != 1,
        };
        if bad_count && scope.lines {
            let msg = if items > 0 && bucket.breakdowns == 0 {
                format!("{} line(s), allowance(s) or charge(s) are {} ({}) but the VAT breakdown (BG-23) has no {} entry.", items, f.name, f.code, f.code)
            } else if items == 0 && (f.count == Count::AtLeastOne || bucket.breakdowns == 1) {
                format!("The VAT breakdown (BG-23) has a {} ({}) entry but no line, allowance or charge is in that category.", f.name, f.code)
            } else {
                format!("The VAT breakdown (BG-23) has {} entries for {} ({}); exactly one is required.", bucket.breakdowns, f.name, f.code)
            };
            out.emit(f.ids[0], msg);
        }
        for (n, what, rule) in [
            (bucket.lines, "an invoice line", 1),
            (bucket.allowances, "a document level allowance", 2),
            (bucket.charges, "a document level charge", 3),
        ] {
            if n == 0 || (rule == 1 && !scope.lines) {
                continue;
            }
            if let Some(p) = parties.problem(f.party) {
                out.emit(
                    f.ids[rule],
                    format!(
                        "The invoice has {what} that is {} ({}): {p}.",
                        f.name, f.code
                    ),
                );
            }
        }
    }

    // -06 / -07: the rate of each document level allowance and charge.
    for (list, idx, what, bt) in [
        (&inv.allowances, 5, "allowance", "BT-96"),
        (&inv.charges, 6, "charge", "BT-103"),
    ] {
        for (i, ac) in list.iter().enumerate() {
            out.group = Some(if what == "charge" {
                At::Charge(i)
            } else {
                At::Allowance(i)
            });
            let Some(f) = cat(&ac.vat_category).and_then(family) else {
                continue;
            };
            if !rate_ok(f.rate, ac.vat_rate) {
                let msg = if f.rate == RateRule::Absent {
                    format!("Document level {what} {} is {} ({}) but carries a VAT rate ({bt}) of {}; leave the rate out.", i + 1, f.name, f.code, shown_rate(ac.vat_rate))
                } else {
                    format!("Document level {what} {} is {} ({}) so its VAT rate ({bt}) must be {}; it is {}.", i + 1, f.name, f.code, rate_text(f.rate), shown_rate(ac.vat_rate))
                };
                out.emit(f.ids[idx], msg);
            }
        }
        out.group = None;
    }

    // -08 .. -10 per breakdown, BR-IC-11/12, BR-O-11.
    let mut has_k = false;
    let mut has_o = false;
    for (i, b) in inv.vat_breakdown.iter().enumerate() {
        out.group = Some(At::Breakdown(i));
        let n = i + 1;
        let Some(code) = cat(&b.category) else {
            continue;
        };
        let Some(f) = family(code) else { continue };
        has_k |= code == "K";
        has_o |= code == "O";
        breakdown_amounts(f, b, n, scope, agg, inv.syntax, out);
        // The official test is the elements' existence, even empty.
        let has_reason = b.exemption_reason.is_some()
            || b.exemption_reason_code.is_some()
            || out.given("BT-120").is_some()
            || out.given("BT-121").is_some();
        if f.exempt && !has_reason {
            out.emit(f.ids[9], format!("VAT breakdown {n} is {} ({}) and needs a VAT exemption reason (BT-120) or reason code (BT-121).", f.name, f.code));
        } else if !f.exempt && has_reason {
            out.emit(f.ids[9], format!("VAT breakdown {n} is {} ({}) and must not carry a VAT exemption reason (BT-120) or reason code (BT-121).", f.name, f.code));
        }
    }
    out.group = None;
    if has_k {
        let delivered = inv
            .delivery
            .as_ref()
            .is_some_and(|d| d.actual_delivery_date.is_some());
        let period = inv
            .invoicing_period
            .as_ref()
            .is_some_and(|p| p.start.is_some() || p.end.is_some());
        if !delivered && !period {
            out.emit("BR-IC-11", "An intra-community supply (K) needs the actual delivery date (BT-72) or the invoicing period (BG-14).".into());
        }
        let country = inv
            .delivery
            .as_ref()
            .and_then(|d| d.address.as_ref())
            .is_some_and(|a| super::filled(&a.country_code));
        if !country {
            out.emit(
                "BR-IC-12",
                "An intra-community supply (K) needs the deliver-to country code (BT-80).".into(),
            );
        }
    }
    if has_o {
        if agg.breakdowns_not_o > 0 {
            out.emit("BR-O-11", format!("The VAT breakdown has a not subject to VAT (O) entry and {} other entr(ies); an O invoice has no other VAT category.", agg.breakdowns_not_o));
        }
        if scope.lines && agg.lines_not_o > 0 {
            out.emit("BR-O-12", format!("The invoice is not subject to VAT (O) but {} line(s) have another VAT category (BT-151).", agg.lines_not_o));
        }
        if agg.allowances_not_o > 0 {
            out.emit("BR-O-13", format!("The invoice is not subject to VAT (O) but {} document level allowance(s) have another VAT category (BT-95).", agg.allowances_not_o));
        }
        if agg.charges_not_o > 0 {
            out.emit("BR-O-14", format!("The invoice is not subject to VAT (O) but {} document level charge(s) have another VAT category (BT-102).", agg.charges_not_o));
        }
    }

    split_payment(inv, agg, out);
}

/// `-08` (taxable amount against the items) and `-09` (tax amount).
fn breakdown_amounts(
    f: &Family,
    b: &VatBreakdown,
    n: usize,
    scope: Scope,
    agg: &Aggregates<'_>,
    syntax: Option<crate::model::Syntax>,
    out: &mut Out,
) {
    // Without BT-116 the artefacts' `-08` equation is false as well.
    if b.taxable_amount.is_none() && scope.lines {
        out.emit(
            f.ids[7],
            format!(
                "VAT breakdown {n} is {} ({}) but has no taxable amount (BT-116) to check against its lines, allowances and charges.",
                f.name, f.code
            ),
        );
    }
    if let Some(taxable) = b.taxable_amount {
        if f.per_rate {
            // For each rate (the breakdown has one): some item carries that
            // rate, and the taxable amount is within 1.00 of their sum.
            if let Some(rate) = b.rate {
                match agg.by_rate.get(&(f.code, rate)) {
                    None if scope.lines => out.emit(
                        f.ids[7],
                        format!("VAT breakdown {n} is {} ({}) at {} but no line, allowance or charge has that category and rate.", f.name, f.code, shown_rate(Some(rate))),
                    ),
                    Some(bucket) if scope.lines => {
                        if let Some(sum) = bucket.basis.get() {
                            let close = taxable.checked_sub(sum).is_some_and(|d| within_one(d, Decimal::ZERO, syntax));
                            if !close {
                                out.emit(
                                    f.ids[7],
                                    format!(
                                        "VAT breakdown {n} ({} {}, {}) states a taxable amount (BT-116) of {} but the lines, charges and allowances at that rate come to {}.",
                                        f.code, f.name, shown_rate(Some(rate)), super::amt(taxable), super::amt(sum)
                                    ),
                                );
                            }
                        }
                    }
                    _ => {}
                }
            }
        } else if scope.lines {
            if let Some(sum) = agg.by_category.get(f.code).and_then(|bk| bk.basis.get()) {
                if taxable != sum && Some(taxable) != super::round2(sum) {
                    out.emit(
                        f.ids[7],
                        format!(
                            "VAT breakdown {n} ({} {}) states a taxable amount (BT-116) of {} but the lines, charges and allowances in that category come to {}.",
                            f.code, f.name, super::amt(taxable), super::amt(sum)
                        ),
                    );
                }
            }
        }
    }
    // The artefacts state -09 as an equation on BT-117 (and, for a taxed
    // category, on BT-116 and BT-119): a missing operand makes it false,
    // so -09 is raised with the missing term's own presence rule.
    let missing = match (b.tax_amount, f.taxed) {
        (None, _) => Some("its tax amount (BT-117)"),
        (Some(_), true) if b.taxable_amount.is_none() => Some("its taxable amount (BT-116)"),
        (Some(_), true) if b.rate.is_none() => Some("its VAT rate (BT-119)"),
        _ => None,
    };
    if let Some(what) = missing {
        out.emit(
            f.ids[8],
            format!(
                "VAT breakdown {n} is {} ({}) but {what} is missing, so its tax amount cannot be checked.",
                f.name, f.code
            ),
        );
    }
    if let Some(tax) = b.tax_amount {
        if f.taxed {
            if let (Some(taxable), Some(rate)) = (b.taxable_amount, b.rate) {
                let expected = taxable
                    .abs()
                    .checked_mul(rate)
                    .and_then(|v| v.checked_div(Decimal::ONE_HUNDRED))
                    .and_then(super::round2);
                if let Some(expected) = expected {
                    let close = within_one(tax.abs(), expected, syntax);
                    if !close {
                        out.emit(
                            f.ids[8],
                            format!(
                                "VAT breakdown {n} ({} {}, {}) states a tax amount (BT-117) of {} but {} × {} gives {}.",
                                f.code, f.name, shown_rate(Some(rate)), super::amt(tax), super::amt(taxable), shown_rate(Some(rate)), super::amt(expected)
                            ),
                        );
                    }
                }
            }
        } else if !tax.is_zero() {
            out.emit(
                f.ids[8],
                format!(
                    "VAT breakdown {n} is {} ({}) so its tax amount (BT-117) must be 0; it is {}.",
                    f.name,
                    f.code,
                    super::amt(tax)
                ),
            );
        }
    }
}

/// BR-B-01 / BR-B-02: split payment (category B), Italian domestic only.
fn split_payment(inv: &Invoice, agg: &Aggregates<'_>, out: &mut Out) {
    let Some(b) = agg.by_category.get("B") else {
        return;
    };
    let countries = [
        inv.seller
            .address
            .as_ref()
            .and_then(|a| a.country_code.as_deref()),
        inv.buyer
            .address
            .as_ref()
            .and_then(|a| a.country_code.as_deref()),
        inv.tax_representative
            .as_ref()
            .and_then(|r| r.address.as_ref())
            .and_then(|a| a.country_code.as_deref()),
        inv.delivery
            .as_ref()
            .and_then(|d| d.address.as_ref())
            .and_then(|a| a.country_code.as_deref()),
    ];
    if countries.iter().flatten().any(|c| c.trim() != "IT") {
        out.emit("BR-B-01", "Split payment (VAT category B) is only for domestic Italian invoices, but a country code other than IT is given.".into());
    }
    let b_items = b.lines + b.allowances + b.charges;
    if b_items > 0
        && agg
            .by_category
            .get("S")
            .is_some_and(|s| s.lines + s.allowances + s.charges > 0)
    {
        out.emit(
            "BR-B-02",
            "An invoice with split payment (B) items must not also have standard rated (S) items."
                .into(),
        );
    }
}
