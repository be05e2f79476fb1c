//! Map one INVOIC message (D93A to D14B, EANCOM, the EN 16931 subset) to
//! the canonical invoice, one segment at a time.
//!
//! EDIFACT groups (SG2 party, SG16 allowance, SG25 line, SG50 tax…) are not
//! delimited in the syntax: a group lasts until a segment that cannot belong
//! to it. The mapper keeps the current group as state (party, allowance or
//! charge, attachment, line, summary tax) and each segment is interpreted in
//! it, so a message is mapped in one pass without being buffered.
//!
//! Qualifiers follow the EN 16931 EDIFACT examples (D14B subset 16B) and
//! the older directories' usual ones: MOA+79 line total (BT-106), 260/259
//! allowances/charges (BT-107/108), 389 or 125 total without VAT (BT-109),
//! 176 or 124 VAT total (BT-110), 388, 77, 86, 39 or 128 total with VAT
//! (BT-112), 113 prepaid (BT-113), 165 rounding (BT-114), 9 amount due
//! (BT-115); in a summary TAX group 125 taxable and 124/150 tax amount.

use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::{Charset, Segment};
use crate::model::*;
use crate::ReadOutcome;

/// UNTDID 1001 codes of credit notes.
const CREDIT_NOTE_CODES: &[&str] = &[
    "81", "83", "261", "262", "296", "308", "381", "396", "420", "458", "532",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Header,
    Lines,
    Summary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Seller,
    Buyer,
    Payee,
    TaxRep,
    Delivery,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alc {
    Doc {
        allowance: bool,
        idx: usize,
    },
    Line {
        allowance: bool,
        idx: usize,
    },
    /// A summary-level allowance/charge group (SG51): its amount is the
    /// document's allowance (BT-107) or charge (BT-108) total.
    Summary {
        allowance: Option<bool>,
    },
}

/// Streaming INVOIC mapper: feed segments between UNH and UNT, then `finish`.
pub struct InvoicMapper {
    cs: Charset,
    dec: u8,
    inv: Invoice,
    issues: Vec<Violation>,
    section: Section,
    party: Option<Role>,
    alc: Option<Alc>,
    tax: Option<usize>,
    attachment: Option<usize>,
    last_ref: Option<String>,
    exemption_reason: Option<String>,
    seen_uns: bool,
}

fn where_(seg: &Segment) -> String {
    format!("segment {} at byte {}", seg.number, seg.offset)
}

impl InvoicMapper {
    pub fn new(charset: Charset, decimal_mark: u8) -> Self {
        InvoicMapper {
            cs: charset,
            dec: decimal_mark,
            inv: Invoice {
                syntax: Some(Syntax::Edifact),
                ..Invoice::default()
            },
            issues: Vec::new(),
            section: Section::Header,
            party: None,
            alc: None,
            tax: None,
            attachment: None,
            last_ref: None,
            exemption_reason: None,
            seen_uns: false,
        }
    }

    fn text(&self, seg: &Segment, e: usize, c: usize) -> Option<String> {
        seg.get(e, c)
            .map(|v| {
                let s = self.cs.decode(v);
                // Most values have no surrounding blanks: keep the allocation.
                if s.trim().len() == s.len() {
                    s
                } else {
                    s.trim().to_string()
                }
            })
            .filter(|s| !s.is_empty())
    }

    /// Components `from..` of element `e`, non-empty ones joined by `sep`.
    fn joined(&self, seg: &Segment, e: usize, from: usize, sep: &str) -> Option<String> {
        let mut out: Option<String> = None;
        for part in (from..seg.components(e)).filter_map(|c| self.text(seg, e, c)) {
            match out.as_mut() {
                None => out = Some(part),
                Some(o) => {
                    o.push_str(sep);
                    o.push_str(&part);
                }
            }
        }
        out
    }

    fn amount(&mut self, seg: &Segment, e: usize, c: usize, term: &str) -> Option<Decimal> {
        let raw = seg.get(e, c)?;
        match parse_decimal(raw, self.dec) {
            Some(d) => Some(d),
            None => {
                let shown = self.cs.decode(raw);
                self.issues.push(Violation::fatal(
                    "SYNTAX",
                    term,
                    format!(
                        "{} {}: '{shown}' is not a number ({})",
                        seg.tag_str(),
                        seg.code(e, 0).unwrap_or(""),
                        where_(seg)
                    ),
                ));
                None
            }
        }
    }

    fn date(&mut self, seg: &Segment, term: &str) -> Option<(NaiveDate, Option<NaiveDate>)> {
        let raw = seg.get(1, 1)?;
        let value = self.cs.decode(raw);
        let format = seg.code(1, 2);
        match parse_date(&value, format) {
            Ok(d) => Some(d),
            Err(why) => {
                self.issues.push(Violation::fatal(
                    "SYNTAX",
                    term,
                    format!(
                        "DTM {}: '{value}' is not a date: {why} ({})",
                        seg.code(1, 0).unwrap_or(""),
                        where_(seg)
                    ),
                ));
                None
            }
        }
    }

    fn line(&mut self) -> Option<&mut Line> {
        self.inv.lines.last_mut()
    }

    fn party_mut(&mut self, role: Role) -> Option<&mut Party> {
        match role {
            Role::Seller => Some(&mut self.inv.seller),
            Role::Buyer => Some(&mut self.inv.buyer),
            _ => None,
        }
    }

    /// Feed one segment of the message (not UNH/UNT).
    pub fn segment(&mut self, seg: &Segment) {
        let tag = seg.tag();
        // Close groups the segment cannot belong to.
        if !matches!(
            tag,
            b"NAD" | b"LOC" | b"FII" | b"RFF" | b"DTM" | b"DOC" | b"CTA" | b"COM"
        ) {
            self.party = None;
        }
        if !matches!(tag, b"COM" | b"RFF" | b"DTM") {
            self.attachment = None;
        }
        if !matches!(
            tag,
            b"ALI" | b"FTX" | b"RFF" | b"DTM" | b"QTY" | b"RNG" | b"PCD" | b"MOA" | b"RTE" | b"TAX"
        ) {
            self.alc = None;
        }
        if !matches!(tag, b"MOA") {
            self.tax = None;
        }
        match tag {
            b"BGM" => self.bgm(seg),
            b"DTM" => self.dtm(seg),
            b"FTX" => self.ftx(seg),
            b"RFF" => self.rff(seg),
            b"NAD" => self.nad(seg),
            b"CTA" => {
                if let Some(role) = self.party {
                    let name = self.text(seg, 2, 1).or_else(|| self.text(seg, 2, 0));
                    if let Some(p) = self.party_mut(role) {
                        p.contact.get_or_insert_with(Contact::default).name = name;
                    }
                }
            }
            b"COM" => self.com(seg),
            b"FII" => self.fii(seg),
            b"CUX" => {
                if let Some(c) = self.text(seg, 1, 1) {
                    self.inv.currency.get_or_insert(c);
                }
                if let Some(c) = self.text(seg, 2, 1) {
                    if Some(&c) != self.inv.currency.as_ref() {
                        self.inv.vat_currency = Some(c);
                    }
                }
            }
            b"PAI" => {
                if let Some(code) = self.text(seg, 1, 2) {
                    self.inv
                        .payment
                        .get_or_insert_with(PaymentInstructions::default)
                        .means_code = Some(code);
                }
            }
            b"PYT" | b"PAT" => {}
            b"ALC" => self.alc(seg),
            b"PCD" => {
                let pct = self.amount(seg, 1, 1, "BT-94");
                match self.alc {
                    Some(Alc::Doc { allowance, idx }) => {
                        let list = if allowance {
                            &mut self.inv.allowances
                        } else {
                            &mut self.inv.charges
                        };
                        if let Some(a) = list.get_mut(idx) {
                            a.percentage = pct;
                        }
                    }
                    Some(Alc::Line { allowance, idx }) => {
                        if let Some(l) = self.inv.lines.last_mut() {
                            let list = if allowance {
                                &mut l.allowances
                            } else {
                                &mut l.charges
                            };
                            if let Some(a) = list.get_mut(idx) {
                                a.percentage = pct;
                            }
                        }
                    }
                    _ => {}
                }
            }
            b"MOA" => self.moa(seg),
            b"TAX" => self.tax(seg),
            b"LIN" => self.lin(seg),
            b"PIA" => self.pia(seg),
            b"IMD" => {
                let text = self.joined(seg, 3, 3, " ");
                let kind = seg.code(1, 0);
                if let (Some(text), Some(line)) = (text, self.inv.lines.last_mut()) {
                    if kind == Some("A") || line.item_name.is_some() {
                        match &mut line.item_description {
                            Some(d) => {
                                d.push(' ');
                                d.push_str(&text);
                            }
                            None => line.item_description = Some(text),
                        }
                    } else {
                        line.item_name = Some(text);
                    }
                }
            }
            b"QTY" if self.section == Section::Lines && self.alc.is_none() => {
                let q = seg.code(1, 0).unwrap_or("");
                if matches!(q, "47" | "12" | "46") {
                    let qty = self.amount(seg, 1, 1, "BT-129");
                    let unit = self.text(seg, 1, 2);
                    if let Some(line) = self.line() {
                        if q == "47" || line.quantity.is_none() {
                            line.quantity = qty;
                            line.unit_code = unit;
                        }
                    }
                }
            }
            b"PRI" => self.pri(seg),
            b"ALI" if self.section == Section::Lines && self.alc.is_none() => {
                let c = self.text(seg, 1, 0);
                if let Some(line) = self.line() {
                    line.origin_country = c;
                }
            }
            b"EFI" => {
                self.inv.attachments.push(Attachment {
                    filename: self.text(seg, 1, 0),
                    description: self.text(seg, 1, 1),
                    ..Attachment::default()
                });
                self.attachment = Some(self.inv.attachments.len() - 1);
            }
            b"UNS" => {
                if self.seen_uns {
                    self.issues.push(Violation::warning(
                        "SYNTAX",
                        "UNS",
                        format!("UNS section separator repeated ({})", where_(seg)),
                    ));
                }
                self.seen_uns = true;
                self.section = Section::Summary;
            }
            _ => {}
        }
    }

    fn bgm(&mut self, seg: &Segment) {
        self.inv.type_code = self.text(seg, 1, 0);
        self.inv.number = self.text(seg, 2, 0);
        if let Some(code) = self.inv.type_code.as_deref() {
            if CREDIT_NOTE_CODES.contains(&code) {
                self.inv.kind = DocumentKind::CreditNote;
            }
        }
    }

    fn dtm(&mut self, seg: &Segment) {
        let q = seg.code(1, 0).unwrap_or("");
        match self.section {
            Section::Header => {
                let term = match q {
                    "137" | "3" => "BT-2",
                    "131" => "BT-7",
                    "35" => "BT-72",
                    "167" | "194" => "BT-73",
                    "168" | "206" => "BT-74",
                    "263" => "BG-14",
                    "13" | "140" => "BT-9",
                    "171" => "BT-26",
                    _ => return,
                };
                let Some((d, end)) = self.date(seg, term) else {
                    return;
                };
                match q {
                    "137" => self.inv.issue_date = Some(d),
                    "3" => {
                        self.inv.issue_date.get_or_insert(d);
                    }
                    "131" => self.inv.tax_point_date = Some(d),
                    "35" => {
                        self.inv
                            .delivery
                            .get_or_insert_with(Delivery::default)
                            .actual_delivery_date = Some(d)
                    }
                    "167" | "194" => {
                        self.inv
                            .invoicing_period
                            .get_or_insert_with(Period::default)
                            .start = Some(d)
                    }
                    "168" | "206" => {
                        self.inv
                            .invoicing_period
                            .get_or_insert_with(Period::default)
                            .end = Some(d)
                    }
                    "263" => {
                        let p = self
                            .inv
                            .invoicing_period
                            .get_or_insert_with(Period::default);
                        p.start = Some(d);
                        p.end = end.or(p.end);
                    }
                    "13" | "140" => self.inv.due_date = Some(d),
                    "171" => {
                        if matches!(self.last_ref.as_deref(), Some("OI" | "IV" | "PL")) {
                            if let Some(p) = self.inv.preceding_invoices.last_mut() {
                                p.issue_date = Some(d);
                            }
                        }
                    }
                    _ => {}
                }
            }
            Section::Lines => {
                if self.alc.is_some() || !matches!(q, "167" | "168" | "194" | "206" | "263") {
                    return;
                }
                let Some((d, end)) = self.date(seg, "BG-26") else {
                    return;
                };
                if let Some(line) = self.line() {
                    let p = line.period.get_or_insert_with(Period::default);
                    match q {
                        "167" | "194" => p.start = Some(d),
                        "168" | "206" => p.end = Some(d),
                        _ => {
                            p.start = Some(d);
                            p.end = end.or(p.end);
                        }
                    }
                }
            }
            Section::Summary => {}
        }
    }

    fn ftx(&mut self, seg: &Segment) {
        let q = seg.code(1, 0).unwrap_or("");
        let text = self.joined(seg, 4, 0, " ");
        match self.section {
            Section::Header | Section::Summary => match q {
                "DOC" => {
                    self.inv.business_process = self.text(seg, 3, 0);
                    self.inv.specification_id = text;
                }
                "AAB" => {
                    if let Some(t) = text {
                        match &mut self.inv.payment_terms {
                            Some(p) => {
                                p.push(' ');
                                p.push_str(&t);
                            }
                            None => self.inv.payment_terms = Some(t),
                        }
                    }
                }
                "AGM" => self.exemption_reason = text,
                _ => {
                    if let Some(t) = text {
                        let subject_code = if q == "GEN" || q.is_empty() {
                            None
                        } else {
                            Some(q.to_string())
                        };
                        self.inv.notes.push(Note {
                            subject_code,
                            text: t,
                        });
                    }
                }
            },
            Section::Lines => {
                if self.alc.is_some() {
                    return;
                }
                if q == "ACF" {
                    let name = self.text(seg, 4, 0);
                    let value = self.joined(seg, 4, 1, " ");
                    if let (Some(name), Some(line)) = (name, self.inv.lines.last_mut()) {
                        line.attributes.push(ItemAttribute {
                            name,
                            value: value.unwrap_or_default(),
                        });
                    }
                } else if let (Some(t), Some(line)) = (text, self.inv.lines.last_mut()) {
                    match &mut line.note {
                        Some(n) => {
                            n.push(' ');
                            n.push_str(&t);
                        }
                        None => line.note = Some(t),
                    }
                }
            }
        }
    }

    fn rff(&mut self, seg: &Segment) {
        let q = seg.code(1, 0).unwrap_or("");
        let v = self.text(seg, 1, 1);
        self.last_ref = Some(q.to_string());
        if let Some(idx) = self.attachment {
            if let Some(a) = self.inv.attachments.get_mut(idx) {
                a.reference = v;
            }
            return;
        }
        if q == "AOU" && self.section == Section::Header {
            self.inv.buyer_accounting_reference = v;
            return;
        }
        if let Some(role) = self.party {
            match role {
                Role::Seller | Role::Buyer => {
                    let Some(p) = self.party_mut(role) else {
                        return;
                    };
                    match q {
                        "VA" => p.vat_id = v,
                        "GN" | "XA" | "ACD" => p.legal_registration_id = v.map(Identifier::new),
                        "FC" => p.tax_registration_id = v,
                        "API" => p.electronic_address = v.map(Identifier::new),
                        _ => {}
                    }
                }
                Role::Payee => {
                    let p = self.inv.payee.get_or_insert_with(Payee::default);
                    if matches!(q, "GN" | "XA") {
                        p.legal_registration_id = v.map(Identifier::new);
                    }
                }
                Role::TaxRep => {
                    if q == "VA" {
                        self.inv
                            .tax_representative
                            .get_or_insert_with(TaxRepresentative::default)
                            .vat_id = v;
                    }
                }
                Role::Delivery | Role::Other => {}
            }
            return;
        }
        match self.section {
            Section::Lines => {
                if self.alc.is_some() {
                    return;
                }
                let c2 = self.text(seg, 1, 2);
                if let Some(line) = self.inv.lines.last_mut() {
                    match q {
                        "ON" => line.order_line_reference = c2.or(v),
                        "AWQ" | "AOU" => line.buyer_accounting_reference = v,
                        _ => {}
                    }
                }
            }
            Section::Header => match q {
                "ON" => self.inv.purchase_order_reference = v,
                "CT" => self.inv.contract_reference = v,
                "VN" => self.inv.sales_order_reference = v,
                "AAK" | "DQ" => self.inv.despatch_advice_reference = v,
                "ALO" => self.inv.receiving_advice_reference = v,
                "AEP" => self.inv.project_reference = v,
                "PQ" | "PAY" => {
                    self.inv
                        .payment
                        .get_or_insert_with(PaymentInstructions::default)
                        .remittance_information = v
                }
                "OI" | "IV" | "PL" => self.inv.preceding_invoices.push(PrecedingInvoice {
                    number: v,
                    issue_date: None,
                }),
                _ => {}
            },
            Section::Summary => {}
        }
    }

    fn nad(&mut self, seg: &Segment) {
        let q = seg.code(1, 0).unwrap_or("");
        let mut role = match q {
            "SE" | "SU" => Role::Seller,
            "BY" => Role::Buyer,
            "IV" | "BT" => Role::Buyer,
            "PE" => Role::Payee,
            "LC" | "TR" => Role::TaxRep,
            "DP" | "ST" => Role::Delivery,
            _ => Role::Other,
        };
        // Invoicee / bill-to stand in for the buyer only when there is no NAD+BY.
        if matches!(q, "IV" | "BT")
            && (self.inv.buyer.name.is_some() || !self.inv.buyer.identifiers.is_empty())
        {
            role = Role::Other;
        }
        if self.section != Section::Header {
            self.party = Some(Role::Other);
            return;
        }
        self.party = Some(role);
        let id = self.text(seg, 2, 0).map(|value| {
            let scheme = match (seg.code(2, 1), seg.code(2, 2)) {
                (Some(s), _) if s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()) => {
                    Some(s.to_string())
                }
                (_, Some("9")) => Some("0088".to_string()),
                (_, Some("16")) => Some("0060".to_string()),
                _ => None,
            };
            Identifier { value, scheme }
        });
        // The EN 16931 binding (a message naming its specification, BT-24)
        // puts the legal name in the first C080 component and the trading
        // name (BT-28 / BT-45) in the second; older messages split one long
        // name over the components, so they are joined there.
        let en16931 = self.inv.specification_id.is_some();
        let (name, trading_name) = if en16931 {
            (self.text(seg, 4, 0), self.text(seg, 4, 1))
        } else {
            (self.joined(seg, 4, 0, " "), None)
        };
        let name = name.or_else(|| self.text(seg, 3, 0));
        let address = {
            let a = Address {
                line1: self.text(seg, 5, 0),
                line2: self.text(seg, 5, 1),
                line3: self.joined(seg, 5, 2, " "),
                city: self.text(seg, 6, 0),
                subdivision: self.text(seg, 7, 3).or_else(|| self.text(seg, 7, 0)),
                post_code: self.text(seg, 8, 0),
                country_code: self.text(seg, 9, 0),
            };
            if a == Address::default() {
                None
            } else {
                Some(a)
            }
        };
        match role {
            Role::Seller | Role::Buyer => {
                let Some(p) = self.party_mut(role) else {
                    return;
                };
                if let Some(id) = id {
                    p.identifiers.push(id);
                }
                if name.is_some() {
                    p.name = name;
                }
                if trading_name.is_some() {
                    p.trading_name = trading_name;
                }
                if address.is_some() {
                    p.address = address;
                }
            }
            Role::Payee => {
                let p = self.inv.payee.get_or_insert_with(Payee::default);
                p.name = name;
                p.identifier = id;
            }
            Role::TaxRep => {
                let t = self
                    .inv
                    .tax_representative
                    .get_or_insert_with(TaxRepresentative::default);
                t.name = name;
                t.address = address;
            }
            Role::Delivery => {
                let d = self.inv.delivery.get_or_insert_with(Delivery::default);
                d.location_id = id;
                d.party_name = name;
                d.address = address;
            }
            Role::Other => {}
        }
    }

    fn com(&mut self, seg: &Segment) {
        let value = self.text(seg, 1, 0);
        let channel = seg.code(1, 1).unwrap_or("");
        if let Some(idx) = self.attachment {
            if channel == "AO" {
                if let Some(a) = self.inv.attachments.get_mut(idx) {
                    a.external_uri = value;
                }
            }
            return;
        }
        let Some(role) = self.party else { return };
        let Some(p) = self.party_mut(role) else {
            return;
        };
        let c = p.contact.get_or_insert_with(Contact::default);
        match channel {
            "TE" => c.phone = value,
            "EM" => c.email = value,
            _ => {}
        }
    }

    fn fii(&mut self, seg: &Segment) {
        if seg.code(1, 0) != Some("RB") || self.section != Section::Header {
            return;
        }
        if !matches!(self.party, None | Some(Role::Seller) | Some(Role::Payee)) {
            return;
        }
        let ct = CreditTransfer {
            account_id: self.text(seg, 2, 0),
            account_name: self.text(seg, 2, 1),
            service_provider_id: self.text(seg, 3, 0),
        };
        let pay = self
            .inv
            .payment
            .get_or_insert_with(PaymentInstructions::default);
        if !pay.credit_transfers.contains(&ct) {
            pay.credit_transfers.push(ct);
        }
    }

    fn alc(&mut self, seg: &Segment) {
        let allowance = match seg.code(1, 0) {
            Some("A") => true,
            Some("C") => false,
            _ => {
                self.alc = Some(Alc::Summary { allowance: None });
                return;
            }
        };
        let reason = self.text(seg, 2, 0).or_else(|| self.text(seg, 5, 3));
        let reason_code = self.text(seg, 2, 1).or_else(|| self.text(seg, 5, 0));
        match self.section {
            Section::Header => {
                let list = if allowance {
                    &mut self.inv.allowances
                } else {
                    &mut self.inv.charges
                };
                list.push(DocumentAllowanceCharge {
                    reason,
                    reason_code,
                    ..Default::default()
                });
                self.alc = Some(Alc::Doc {
                    allowance,
                    idx: list.len() - 1,
                });
            }
            Section::Lines => {
                let Some(line) = self.inv.lines.last_mut() else {
                    return;
                };
                let list = if allowance {
                    &mut line.allowances
                } else {
                    &mut line.charges
                };
                list.push(LineAllowanceCharge {
                    reason,
                    reason_code,
                    ..Default::default()
                });
                self.alc = Some(Alc::Line {
                    allowance,
                    idx: list.len() - 1,
                });
            }
            Section::Summary => {
                self.alc = Some(Alc::Summary {
                    allowance: Some(allowance),
                })
            }
        }
    }

    fn moa(&mut self, seg: &Segment) {
        let q = seg.code(1, 0).unwrap_or("");
        if let Some(alc) = self.alc {
            match alc {
                Alc::Doc { allowance, idx } => {
                    let term = if allowance { "BT-92" } else { "BT-99" };
                    let amt = self.amount(seg, 1, 1, term);
                    let list = if allowance {
                        &mut self.inv.allowances
                    } else {
                        &mut self.inv.charges
                    };
                    if let Some(a) = list.get_mut(idx) {
                        if q == "25" {
                            a.base_amount = amt;
                        } else {
                            a.amount = amt;
                        }
                    }
                }
                Alc::Line { allowance, idx } => {
                    let term = if q == "509" {
                        "BT-147"
                    } else if allowance {
                        "BT-136"
                    } else {
                        "BT-141"
                    };
                    let amt = self.amount(seg, 1, 1, term);
                    let Some(line) = self.inv.lines.last_mut() else {
                        return;
                    };
                    if q == "509" {
                        // An allowance group carrying only the price discount.
                        line.price_discount = amt;
                        let list = if allowance {
                            &mut line.allowances
                        } else {
                            &mut line.charges
                        };
                        if idx + 1 == list.len()
                            && list[idx].amount.is_none()
                            && list[idx].reason.is_none()
                        {
                            list.pop();
                        }
                        return;
                    }
                    let list = if allowance {
                        &mut line.allowances
                    } else {
                        &mut line.charges
                    };
                    if let Some(a) = list.get_mut(idx) {
                        if q == "25" {
                            a.base_amount = amt;
                        } else {
                            a.amount = amt;
                        }
                    }
                }
                Alc::Summary {
                    allowance: Some(allowance),
                } => {
                    let term = if allowance { "BT-107" } else { "BT-108" };
                    let amt = self.amount(seg, 1, 1, term);
                    let t = &mut self.inv.totals;
                    let slot = if allowance {
                        &mut t.allowance_total
                    } else {
                        &mut t.charge_total
                    };
                    if slot.is_none() {
                        *slot = amt;
                    }
                }
                Alc::Summary { allowance: None } => {}
            }
            return;
        }
        match self.section {
            Section::Header => {}
            Section::Lines => {
                if matches!(q, "203" | "66" | "38") {
                    let amt = self.amount(seg, 1, 1, "BT-131");
                    if let Some(line) = self.line() {
                        if q == "203" || line.net_amount.is_none() {
                            line.net_amount = amt;
                        }
                    }
                }
            }
            Section::Summary => {
                if let Some(idx) = self.tax {
                    if matches!(q, "124" | "150" | "125") {
                        let term = if q == "125" { "BT-116" } else { "BT-117" };
                        let amt = self.amount(seg, 1, 1, term);
                        if let Some(b) = self.inv.vat_breakdown.get_mut(idx) {
                            if q == "125" {
                                b.taxable_amount = amt;
                            } else {
                                b.tax_amount = amt;
                            }
                        }
                        return;
                    }
                }
                let term = match q {
                    "79" => "BT-106",
                    "260" => "BT-107",
                    "259" => "BT-108",
                    "389" | "125" => "BT-109",
                    "176" | "124" | "150" => "BT-110",
                    "388" | "77" | "86" | "39" | "128" => "BT-112",
                    "113" => "BT-113",
                    "165" => "BT-114",
                    "9" => "BT-115",
                    _ => return,
                };
                let amt = self.amount(seg, 1, 1, term);
                let currency = self.text(seg, 1, 2);
                let t = &mut self.inv.totals;
                match q {
                    "79" => t.line_net_total = amt,
                    "260" => t.allowance_total = amt,
                    "259" => t.charge_total = amt,
                    "389" => t.total_without_vat = amt,
                    "125" if t.total_without_vat.is_none() => t.total_without_vat = amt,
                    "176" | "124" | "150" => {
                        let accounting = currency.is_some()
                            && currency == self.inv.vat_currency
                            && currency != self.inv.currency;
                        if accounting {
                            t.vat_total_accounting = amt;
                        } else if q == "176" || t.vat_total.is_none() {
                            t.vat_total = amt;
                        }
                    }
                    "388" => t.total_with_vat = amt,
                    "77" | "86" | "39" | "128" if t.total_with_vat.is_none() => {
                        t.total_with_vat = amt
                    }
                    "113" => t.prepaid = amt,
                    "165" => t.rounding = amt,
                    "9" => t.amount_due = amt,
                    _ => {}
                }
            }
        }
    }

    fn tax(&mut self, seg: &Segment) {
        if seg.code(1, 0) != Some("7") {
            return;
        }
        let category = self.text(seg, 6, 0);
        let rate = if seg.get(5, 3).is_some() {
            self.amount(seg, 5, 3, "BT-119")
        } else {
            None
        };
        if let Some(Alc::Doc { allowance, idx }) = self.alc {
            let list = if allowance {
                &mut self.inv.allowances
            } else {
                &mut self.inv.charges
            };
            if let Some(a) = list.get_mut(idx) {
                a.vat_category = category;
                a.vat_rate = rate;
            }
            return;
        }
        if self.alc.is_some() {
            return;
        }
        match self.section {
            Section::Header => {}
            Section::Lines => {
                if let Some(line) = self.line() {
                    line.vat_category = category;
                    line.vat_rate = rate;
                }
            }
            Section::Summary => {
                self.inv.vat_breakdown.push(VatBreakdown {
                    category,
                    rate,
                    ..VatBreakdown::default()
                });
                self.tax = Some(self.inv.vat_breakdown.len() - 1);
            }
        }
    }

    fn lin(&mut self, seg: &Segment) {
        if self.section == Section::Summary {
            return;
        }
        self.section = Section::Lines;
        let mut line = Line {
            id: self.text(seg, 1, 0),
            ..Line::default()
        };
        if let Some(value) = self.text(seg, 3, 0) {
            let kind = seg.code(3, 1).unwrap_or("");
            self.item_id(&mut line, value, kind, None);
        }
        self.inv.lines.push(line);
    }

    fn item_id(&self, line: &mut Line, value: String, kind: &str, version: Option<String>) {
        match kind {
            "SA" => line.seller_item_id = Some(value),
            "IN" | "BP" => line.buyer_item_id = Some(value),
            "SRV" | "EN" | "EAN" | "UP" | "GTIN" | "0160" => {
                if line.standard_item_id.is_none() {
                    line.standard_item_id = Some(Identifier {
                        value,
                        scheme: Some("0160".into()),
                    });
                }
            }
            "" => {
                if line.standard_item_id.is_none() {
                    line.standard_item_id = Some(Identifier::new(value));
                }
            }
            other => line.classifications.push(Classification {
                value,
                scheme: Some(other.to_string()),
                scheme_version: version,
            }),
        }
    }

    fn pia(&mut self, seg: &Segment) {
        if self.section != Section::Lines || self.alc.is_some() {
            return;
        }
        let mut found = Vec::new();
        for e in 2..=seg.len() {
            if let Some(value) = self.text(seg, e, 0) {
                let kind = seg.code(e, 1).unwrap_or("").to_string();
                found.push((value, kind, self.text(seg, e, 3)));
            }
        }
        let Some(mut line) = self.inv.lines.pop() else {
            return;
        };
        for (value, kind, version) in found {
            self.item_id(&mut line, value, &kind, version);
        }
        self.inv.lines.push(line);
    }

    fn pri(&mut self, seg: &Segment) {
        if self.section != Section::Lines || self.alc.is_some() {
            return;
        }
        let q = seg.code(1, 0).unwrap_or("");
        let gross = q == "AAB";
        if !matches!(q, "AAA" | "AAB" | "INV" | "CAL" | "AAE" | "AAF") {
            return;
        }
        let price = self.amount(seg, 1, 1, if gross { "BT-148" } else { "BT-146" });
        let base = if seg.get(1, 4).is_some() {
            self.amount(seg, 1, 4, "BT-149")
        } else {
            None
        };
        let unit = self.text(seg, 1, 5);
        let Some(line) = self.line() else { return };
        if gross {
            line.gross_price = price;
            return;
        }
        if q == "AAA" || line.net_price.is_none() {
            line.net_price = price;
            line.price_base_quantity = base;
            line.price_base_quantity_unit = unit;
        }
    }

    /// The invoice as mapped, with the syntax problems met.
    pub fn finish(mut self) -> ReadOutcome {
        if let Some(reason) = self.exemption_reason.take() {
            for b in &mut self.inv.vat_breakdown {
                if matches!(b.category.as_deref(), Some("E" | "AE" | "K" | "G" | "O"))
                    && b.exemption_reason.is_none()
                {
                    b.exemption_reason = Some(reason.clone());
                }
            }
        }
        if self.inv.profile.is_none() {
            self.inv.profile = self
                .inv
                .specification_id
                .as_deref()
                .map(Profile::from_specification_id);
        }
        ReadOutcome {
            invoice: self.inv,
            issues: self.issues,
            structure: Vec::new(),
            positions: Default::default(),
        }
    }
}

/// Record a UNO/UNP package (an embedded object) on the invoice it follows.
pub fn attach_package(
    inv: &mut Invoice,
    reference: Option<String>,
    mime: Option<String>,
    len: u64,
) {
    let existing = inv
        .attachments
        .iter_mut()
        .find(|a| reference.is_some() && a.reference == reference);
    let a = match existing {
        Some(a) => a,
        None => {
            inv.attachments.push(Attachment {
                reference: reference.clone(),
                ..Attachment::default()
            });
            let last = inv.attachments.len() - 1;
            &mut inv.attachments[last]
        }
    };
    a.mime_code = mime.or(a.mime_code.take());
    a.embedded_size = Some(len);
}

/// An EDIFACT numeric value: optional minus, digits, one decimal mark
/// (the UNA one, or `.`/`,` which ISO 9735 allows either way).
pub fn parse_decimal(raw: &[u8], decimal_mark: u8) -> Option<Decimal> {
    let s = std::str::from_utf8(raw).ok()?.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    // Mantissa and scale built directly (no intermediate string): at most
    // 28 digits, so the mantissa fits an i128 and Decimal's 96 bits.
    let mut mantissa: i128 = 0;
    let mut scale = 0u32;
    let mut marks = 0;
    let mut n_digits = 0;
    for b in digits.bytes() {
        if b.is_ascii_digit() {
            n_digits += 1;
            if n_digits > 28 {
                return None;
            }
            mantissa = mantissa * 10 + i128::from(b - b'0');
            if marks > 0 {
                scale += 1;
            }
        } else if b == decimal_mark || b == b'.' || b == b',' {
            marks += 1;
        } else {
            return None;
        }
    }
    if n_digits == 0 || marks > 1 {
        return None;
    }
    if neg && mantissa == 0 {
        // Keep the textual parse for a negative zero's sign, as before.
        let zero = format!("-0.{}", "0".repeat(scale as usize));
        return Decimal::from_str(zero.trim_end_matches('.')).ok();
    }
    Decimal::try_from_i128_with_scale(if neg { -mantissa } else { mantissa }, scale).ok()
}

fn ymd(s: &str) -> Result<NaiveDate, String> {
    let y: i32 = s[0..4].parse().map_err(|_| "bad year".to_string())?;
    let m: u32 = s[4..6].parse().map_err(|_| "bad month".to_string())?;
    let d: u32 = s[6..8].parse().map_err(|_| "bad day".to_string())?;
    NaiveDate::from_ymd_opt(y, m, d).ok_or_else(|| "no such day".to_string())
}

/// A DTM value in format 102 (CCYYMMDD), 203/204 (with time), 101/201
/// (two-digit year: 19xx from 50) or 718 (a range), or without a format
/// when its length says which. Returns the date and, for 718, the end.
pub fn parse_date(
    value: &str,
    format: Option<&str>,
) -> Result<(NaiveDate, Option<NaiveDate>), String> {
    let v = value.trim();
    if !v.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return Err("only digits expected".into());
    }
    let two_digit_year = |s: &str| -> Result<NaiveDate, String> {
        let yy: i32 = s[0..2].parse().map_err(|_| "bad year".to_string())?;
        let century = if yy >= 50 { 1900 } else { 2000 };
        ymd(&format!("{}{}", century + yy, &s[2..6]))
    };
    let digits_only = !v.contains('-');
    match format {
        Some("102") | Some("203") | Some("204") | Some("205")
            if digits_only && matches!(v.len(), 8 | 12 | 14) =>
        {
            Ok((ymd(&v[..8])?, None))
        }
        Some("101") | Some("201") if digits_only && matches!(v.len(), 6 | 10) => {
            Ok((two_digit_year(v)?, None))
        }
        Some("718") if v.len() == 17 && v.as_bytes()[8] == b'-' => {
            Ok((ymd(&v[..8])?, Some(ymd(&v[9..])?)))
        }
        None if digits_only && v.len() == 8 => Ok((ymd(v)?, None)),
        None if digits_only && v.len() == 6 => Ok((two_digit_year(v)?, None)),
        Some(f) => Err(format!("does not match date format {f}")),
        None => Err("unknown date format".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        assert_eq!(parse_decimal(b"20.0", b'.'), Some(Decimal::new(200, 1)));
        assert_eq!(parse_decimal(b"19,9", b','), Some(Decimal::new(199, 1)));
        assert_eq!(parse_decimal(b"-3.96", b'.'), Some(Decimal::new(-396, 2)));
        assert_eq!(parse_decimal(b"1273", b'.'), Some(Decimal::new(1273, 0)));
        assert_eq!(parse_decimal(b"1020A", b'.'), None);
        assert_eq!(parse_decimal(b"$1.179", b'.'), None);
        assert_eq!(parse_decimal(b"1.2.3", b'.'), None);
        assert_eq!(parse_decimal(b"-", b'.'), None);
        assert_eq!(parse_decimal(b"", b'.'), None);
        // The written scale is kept, as a textual parse keeps it.
        for (raw, text) in [
            ("10.50", "10.50"),
            ("-0.00", "-0.00"),
            ("-0", "-0"),
            (".5", "0.5"),
            ("5.", "5"),
            (" 007,10 ", "7.10"),
            (
                "9999999999999999999999999999",
                "9999999999999999999999999999",
            ),
        ] {
            let d = parse_decimal(raw.as_bytes(), b'.').unwrap();
            assert_eq!(
                d.to_string(),
                Decimal::from_str(text).unwrap().to_string(),
                "{raw}"
            );
        }
        assert_eq!(parse_decimal(b"99999999999999999999999999999", b'.'), None);
    }

    #[test]
    fn dates() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        assert_eq!(
            parse_date("20170201", Some("102")).unwrap().0,
            d(2017, 2, 1)
        );
        assert_eq!(
            parse_date("199910060000", Some("102")).unwrap().0,
            d(1999, 10, 6)
        );
        assert_eq!(
            parse_date("201301011230", Some("203")).unwrap().0,
            d(2013, 1, 1)
        );
        assert_eq!(parse_date("990802", Some("101")).unwrap().0, d(1999, 8, 2));
        assert_eq!(
            parse_date("20130601-20130630", Some("718")).unwrap(),
            (d(2013, 6, 1), Some(d(2013, 6, 30)))
        );
        assert!(parse_date("19999715", Some("102")).is_err());
        assert!(parse_date("2017-02-01", Some("102")).is_err());
        assert!(parse_date("201702", Some("610")).is_err());
    }
}
