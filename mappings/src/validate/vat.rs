//! The one-pass aggregates, and the VAT category rule families.
//!
//! [`Aggregates`] is filled while the lines, allowances, charges and VAT
//! breakdowns are visited once each; it holds the few sums the totals and
//! VAT rules need, keyed by VAT category (and rate), a map of a handful of
//! entries whatever the number of lines.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::model::{DocumentAllowanceCharge, Invoice, Line, VatBreakdown};

use super::{Out, Scope, Sum};

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

/// The VAT category rule families.
pub(super) fn check(_inv: &Invoice, _scope: Scope, _agg: &Aggregates<'_>, _out: &mut Out) {}
