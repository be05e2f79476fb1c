//! The UBL syntax-binding rules of the CEN artefact, checked while the UBL
//! reader reads.
//!
//! The CEN EN 16931 UBL validation artefact states, besides the business
//! rules, how EN 16931 binds to UBL 2.1: UBL-SR-* (an element given more
//! often than EN 16931 allows, mostly fatal), UBL-CR-* (UBL elements and
//! attributes EN 16931 does not use, warnings) and UBL-DT-* (data types).
//! The canonical model cannot tell them (it keeps one value where UBL gave
//! two), so they are checked on the XML itself, as elements pass: one table
//! lookup per element, a counter per counted child on the open contexts, so
//! the cost is linear and nothing is held beyond the open elements.
//!
//! `tables.rs` holds the rules of the two plain shapes (`count(REL) <= N` in
//! a context, `not(PATH)` on the root), generated from the artefact by
//! `scripts/oracle/gen_ubl_binding.py`; the rules with value predicates or
//! comparisons are written out below ([`Special`]).

mod tables;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use std::cell::Cell;

use crate::model::{Severity, Violation};
use crate::xml::{Attrs, Element, PathMemo, ThreadMemo};

pub(crate) use tables::{RULES, VERSION};

/// The rules checked by hand-written code below (the generator's `HAND`).
pub(crate) const HAND: &[&str] = &[
    "UBL-SR-04",
    "UBL-SR-12",
    "UBL-SR-13",
    "UBL-SR-18",
    "UBL-SR-19",
    "UBL-SR-20",
    "UBL-SR-21",
    "UBL-SR-29",
    "UBL-SR-30",
    "UBL-SR-31",
    "UBL-SR-43",
    "UBL-SR-44",
    "UBL-SR-46",
    "UBL-SR-47",
    "UBL-SR-53",
    "UBL-CR-002",
    "UBL-CR-412",
    "UBL-CR-665",
    "UBL-CR-666",
    "UBL-CR-673",
    "UBL-DT-01",
    "UBL-DT-06",
    "UBL-DT-07",
    "UBL-DT-18",
];

/// (count rules, not-used rules in the table, hand-written rules).
pub(crate) fn coverage() -> (usize, usize, usize) {
    (tables::COUNTS.len(), tables::ABSENT.len(), HAND.len())
}

/// Where a rule's context is.
#[derive(Debug)]
pub(crate) enum Ctx {
    /// The `Invoice` / `CreditNote` root.
    Root,
    /// Any element whose path ends with these steps (a relative schematron
    /// context such as `cac:PaymentMeans`).
    Any(&'static str),
}

/// `count(rel)` in each context element is between `min` and `max`.
#[derive(Debug)]
pub(crate) struct Count {
    pub id: &'static str,
    pub ctx: Ctx,
    pub rel: &'static str,
    pub min: u32,
    pub max: u32,
    pub severity: Severity,
}

/// `not(path)` on the root: the element, or its attribute `attr`, is not
/// used in EN 16931 (`anywhere`: at any depth, `//path`; an empty path with
/// an attribute: that attribute on any element).
#[derive(Debug)]
pub(crate) struct Absent {
    pub id: &'static str,
    pub path: &'static str,
    pub anywhere: bool,
    pub attr: Option<&'static str>,
    pub severity: Severity,
}

/// FNV-1a: the index keys are short element names.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type Map<V> = HashMap<&'static str, V, BuildHasherDefault<Fnv>>;

/// The table's rules by the element name they concern.
#[derive(Default)]
struct Entry {
    /// Count rules whose `rel` ends with this name.
    counted: Vec<u16>,
    /// Count rules whose `Any` context ends with this name.
    contexts: Vec<u16>,
    /// Absent rules whose path ends with this name.
    absent: Vec<u16>,
}

struct Index {
    by_name: Map<Entry>,
    /// Absent rules on an attribute of any element, by attribute name.
    any_attr: Map<Vec<u16>>,
    /// Count rules on the root.
    root: Vec<u16>,
}

fn last(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut ix = Index {
            by_name: Map::default(),
            any_attr: Map::default(),
            root: Vec::new(),
        };
        for (i, c) in tables::COUNTS.iter().enumerate() {
            let i = i as u16;
            ix.by_name.entry(last(c.rel)).or_default().counted.push(i);
            match c.ctx {
                Ctx::Root => ix.root.push(i),
                Ctx::Any(s) => ix.by_name.entry(last(s)).or_default().contexts.push(i),
            }
        }
        for (i, a) in tables::ABSENT.iter().enumerate() {
            let i = i as u16;
            match (a.path, a.attr) {
                ("", Some(attr)) => ix.any_attr.entry(attr).or_default().push(i),
                (p, _) => ix.by_name.entry(last(p)).or_default().absent.push(i),
            }
        }
        ix
    })
}

fn emit_to(findings: &mut Vec<Violation>, id: &str, severity: Severity, message: String) {
    findings.push(Violation {
        rule: id.to_string(),
        term: String::new(),
        severity,
        message: format!("{message} (EN 16931 UBL binding)"),
        location: None,
        line: None,
        column: None,
    });
}

/// Absent rule `i` broken at `path`, reported once per document.
fn absent(fired: &mut Vec<u16>, findings: &mut Vec<Violation>, i: u16, path: &str) {
    if fired.contains(&i) {
        return;
    }
    fired.push(i);
    let a = &tables::ABSENT[i as usize];
    let what = match a.attr {
        Some(attr) => format!("attribute @{attr} of {path}"),
        None => path.to_string(),
    };
    emit_to(
        findings,
        a.id,
        a.severity,
        format!("{what} is not used in EN 16931; the recipient does not read it"),
    );
}

/// `path` ends with the steps `suffix`.
fn ends_with_steps(path: &str, suffix: &str) -> bool {
    path == suffix
        || (path.len() > suffix.len()
            && path.ends_with(suffix)
            && path.as_bytes()[path.len() - suffix.len() - 1] == b'/')
}

fn steps(path: &str) -> usize {
    if path.is_empty() {
        0
    } else {
        path.bytes().filter(|b| *b == b'/').count() + 1
    }
}

/// `InvoiceLine/Item/ClassifiedTaxCategory` or the CreditNoteLine one.
fn is_line_item_category(path: &str) -> bool {
    path == "InvoiceLine/Item/ClassifiedTaxCategory"
        || path == "CreditNoteLine/Item/ClassifiedTaxCategory"
}

/// `InvoiceLine/DocumentReference` or `CreditNoteLine/DocumentReference`.
fn is_line_ref(path: &str) -> bool {
    path == "InvoiceLine/DocumentReference" || path == "CreditNoteLine/DocumentReference"
}

/// The rules the table cannot state, followed as elements pass.
#[derive(Default)]
struct Special {
    /// The open AdditionalDocumentReference (never nested).
    adr: Adr,
    /// The open PartyTaxScheme.
    pts: Pts,
    /// VAT / other CompanyIDs of the seller's and the VAT ones of the
    /// buyer's PartyTaxScheme (UBL-SR-12, -13, -18).
    seller_vat: u32,
    seller_other: u32,
    buyer_vat: u32,
    /// Type-130 AdditionalDocumentReference IDs (UBL-SR-04).
    object_ids: u32,
    /// PayeeParty: names, non-SEPA ids, legal CompanyIDs, seen at all.
    payee: Option<(Vec<String>, u32, u32)>,
    /// Seller RegistrationNames (BT-27), for UBL-SR-19..21.
    seller_legal_names: Vec<String>,
    /// SEPA party identifiers anywhere (UBL-SR-29).
    sepa_ids: u32,
    /// BT-5 as written (empty when given empty), and the currencyID of
    /// each `TaxTotal/TaxAmount` (BR-CO-15 selects BT-110 by it).
    doc_currency: Option<String>,
    tax_total_currencies: Vec<Option<String>>,
    /// The open AllowanceCharge's indicator and reason count.
    ac: (Option<bool>, u32),
    /// First PaymentID / PaymentMeansCode and whether another differs.
    payment_id: (Option<String>, bool),
    means_code: (Option<String>, bool),
    /// `name` attributes on PaymentMeans/PaymentMeansCode (UBL-SR-46).
    means_code_names: u32,
    /// The open TaxSubtotal: a TaxCategory with an ID and the VAT scheme
    /// seen; a category ID with text seen (BR-47).
    subtotal: (bool, bool),
    /// The open TaxCategory of a TaxSubtotal: ID given, scheme is VAT.
    category: (bool, bool),
    /// The open TaxCategory of a TaxSubtotal: a Percent given, ID is `O`.
    category_rate: (bool, bool),
    /// The open line ClassifiedTaxCategory: ID given, scheme is VAT.
    classified: (bool, bool),
    /// The open line DocumentReference: type code, ID scheme (BR-CL-07 on
    /// BT-128).
    line_ref: (Option<String>, Option<String>),
}

#[derive(Default)]
struct Adr {
    type_code: Option<String>,
    ids: u32,
    id_scheme: bool,
    attachment: bool,
    description: bool,
}

#[derive(Default)]
struct Pts {
    scheme: Option<String>,
    company_ids: u32,
}

/// What the table's rules make of one path, worked out the first time the
/// path is met (the lookups by name and the step comparisons were a tenth
/// of reading a UBL invoice when done per element).
#[derive(Default)]
struct PathRules {
    /// In a foreign namespace: not checked.
    foreign: bool,
    /// Count rules whose context is an element of this path.
    contexts: Box<[u16]>,
    /// Absent rules on this path (one on an attribute fires when the
    /// element has it).
    absent: Box<[u16]>,
    /// Count rules an element of this path counts for, with the depth of
    /// the open element it counts in.
    counted: Box<[(u16, u16)]>,
}

impl PathRules {
    fn of(path: &str) -> PathRules {
        if path.contains('~') {
            return PathRules {
                foreign: true,
                ..PathRules::default()
            };
        }
        let Some(e) = index().by_name.get(last(path)) else {
            return PathRules::default();
        };
        let contexts = e
            .contexts
            .iter()
            .copied()
            .filter(|&i| match tables::COUNTS[i as usize].ctx {
                Ctx::Any(s) => ends_with_steps(path, s),
                Ctx::Root => false,
            })
            .collect();
        let absent = e
            .absent
            .iter()
            .copied()
            .filter(|&i| {
                let a = &tables::ABSENT[i as usize];
                if a.anywhere {
                    ends_with_steps(path, a.path)
                } else {
                    path == a.path
                }
            })
            .collect();
        let depth = steps(path);
        let counted = e
            .counted
            .iter()
            .copied()
            .filter_map(|i| {
                let c = &tables::COUNTS[i as usize];
                if !ends_with_steps(path, c.rel) {
                    return None;
                }
                let at = depth.checked_sub(steps(c.rel))?;
                Some((i, u16::try_from(at).ok()?))
            })
            .collect();
        PathRules {
            foreign: false,
            contexts,
            absent,
            counted,
        }
    }
}

thread_local! {
    static PATH_RULES: Cell<PathMemo<PathRules>> = const { Cell::new(PathMemo::new()) };
}

/// Follows a UBL document's elements and reports the syntax-binding rules
/// of the CEN artefact it breaks.
pub(crate) struct Checker {
    credit_note: bool,
    /// The rules of each path met, kept per thread.
    paths: ThreadMemo<PathRules>,
    /// Per open element (the root first): its counted rules and counts.
    stack: Vec<Vec<(u16, u32)>>,
    /// Absent rules already reported (each once per document, as the
    /// artefact's root context reports them).
    fired: Vec<u16>,
    special: Special,
    pub findings: Vec<Violation>,
}

impl Checker {
    pub fn new(credit_note: bool) -> Self {
        let root = index().root.iter().map(|i| (*i, 0)).collect();
        Checker {
            credit_note,
            paths: ThreadMemo::take(&PATH_RULES),
            stack: vec![root],
            fired: Vec::new(),
            special: Special::default(),
            findings: Vec::new(),
        }
    }

    fn emit(&mut self, id: &str, severity: Severity, message: String) {
        emit_to(&mut self.findings, id, severity, message);
    }

    /// An element opened (a foreign one, `~` in its path, is not checked).
    pub fn start(&mut self, el: &Element<'_>, attrs: &Attrs<'_>) {
        let path = el.path;
        let Checker {
            paths,
            fired,
            findings,
            stack,
            ..
        } = self;
        let rules = paths.get(el.node, || PathRules::of(path));
        if rules.foreign {
            stack.push(Vec::new());
            return;
        }
        stack.push(rules.contexts.iter().map(|&i| (i, 0)).collect());
        for &i in rules.absent.iter() {
            let a = &tables::ABSENT[i as usize];
            if a.attr.is_none_or(|attr| attrs.has(attr)) {
                absent(fired, findings, i, path);
            }
        }
        let ix = index();
        for attr in attrs.names() {
            if let Some(rules) = ix.any_attr.get(attr) {
                for &i in rules {
                    absent(fired, findings, i, path);
                }
            }
        }
        self.special_start(path, el.local(), attrs);
    }

    /// An element closed, with its trimmed text.
    pub fn end(&mut self, el: &Element<'_>, text: &str) {
        let path = el.path;
        let frame = self.stack.pop().unwrap_or_default();
        let Checker { paths, stack, .. } = self;
        let rules = paths.get(el.node, || PathRules::of(path));
        if rules.foreign {
            return;
        }
        for &(i, at) in rules.counted.iter() {
            if let Some((_, n)) = stack
                .get_mut(at as usize)
                .and_then(|f| f.iter_mut().find(|(r, _)| *r == i))
            {
                *n += 1;
            }
        }
        for (i, seen) in frame {
            let c = &tables::COUNTS[i as usize];
            if seen < c.min || seen > c.max {
                let want = match (c.min, c.max) {
                    (a, b) if a == b => format!("exactly {a} time(s)"),
                    (0, b) => format!("at most {b} time(s)"),
                    (a, _) => format!("at least {a} time(s)"),
                };
                self.emit(
                    c.id,
                    c.severity,
                    format!("{}: {} must occur {want}, found {seen}", path, c.rel),
                );
            }
        }
        self.special_end(path, el.local(), text);
    }

    fn special_start(&mut self, path: &str, name: &str, attrs: &Attrs<'_>) {
        let s = &mut self.special;
        if path == "TaxTotal/TaxAmount" {
            s.tax_total_currencies.push(attrs.owned("currencyID"));
        }
        match name {
            "AdditionalDocumentReference" => s.adr = Adr::default(),
            "PartyTaxScheme" => s.pts = Pts::default(),
            "AllowanceCharge" => s.ac = (None, 0),
            "TaxSubtotal" => s.subtotal = (false, false),
            "TaxCategory" if path.ends_with("TaxSubtotal/TaxCategory") => {
                s.category = (false, false);
                s.category_rate = (false, false);
            }
            "ClassifiedTaxCategory" => s.classified = (false, false),
            "PayeeParty" if path == "PayeeParty" => {
                s.payee.get_or_insert_with(|| (Vec::new(), 0, 0));
            }
            _ => {}
        }
        if path == "PaymentMeans/PaymentMeansCode" && attrs.has("name") {
            s.means_code_names += 1;
        }
        if attrs.has("name") && name != "PaymentMeansCode" {
            self.emit(
                "UBL-DT-18",
                Severity::Warning,
                format!("{path}: the name attribute is only used on PaymentMeansCode"),
            );
        }
        if name.ends_with("BinaryObject") {
            for (attr, id) in [("mimeCode", "UBL-DT-06"), ("filename", "UBL-DT-07")] {
                if !attrs.has(attr) {
                    self.emit(
                        id,
                        Severity::Fatal,
                        format!("{path}: a binary object needs its @{attr} attribute"),
                    );
                }
            }
        }
        let s = &mut self.special;
        if name == "DocumentReference" && is_line_ref(path) {
            s.line_ref = (None, None);
        }
        if name == "ID" {
            if path.strip_suffix("/ID").is_some_and(is_line_ref) {
                s.line_ref.1 = attrs
                    .has("schemeID")
                    .then(|| attrs.get("schemeID").unwrap_or("").to_string());
            }
            if path.ends_with("AdditionalDocumentReference/ID") {
                s.adr.id_scheme |= attrs.has("schemeID");
            }
            if path.ends_with("PartyIdentification/ID")
                && attrs
                    .get("schemeID")
                    .is_some_and(|v| v.eq_ignore_ascii_case("SEPA"))
            {
                s.sepa_ids += 1;
            }
            if path == "PayeeParty/PartyIdentification/ID" {
                if let Some(p) = s.payee.as_mut() {
                    // `upper-case(@schemeID) != 'SEPA'`: without a schemeID,
                    // `upper-case(())` is '' and the id counts.
                    if !attrs
                        .get("schemeID")
                        .is_some_and(|v| v.eq_ignore_ascii_case("SEPA"))
                    {
                        p.1 += 1;
                    }
                }
            }
        }
    }

    fn special_end(&mut self, path: &str, name: &str, text: &str) {
        if path == "DocumentCurrencyCode" && self.special.doc_currency.is_none() {
            self.special.doc_currency = Some(text.trim().to_string());
        }
        let credit_note = self.credit_note;
        let s = &mut self.special;
        match name {
            "DocumentTypeCode"
                if path.ends_with("AdditionalDocumentReference/DocumentTypeCode") =>
            {
                s.adr.type_code = Some(text.to_string())
            }
            "ID" if path.ends_with("AdditionalDocumentReference/ID") => s.adr.ids += 1,
            "Attachment" if path.ends_with("AdditionalDocumentReference/Attachment") => {
                s.adr.attachment = true
            }
            "DocumentDescription"
                if path.ends_with("AdditionalDocumentReference/DocumentDescription") =>
            {
                s.adr.description = true
            }
            "ID" if path.ends_with("PartyTaxScheme/TaxScheme/ID") => {
                s.pts.scheme = Some(text.to_uppercase())
            }
            "CompanyID" if path.ends_with("PartyTaxScheme/CompanyID") => s.pts.company_ids += 1,
            "ID" if path.ends_with("TaxSubtotal/TaxCategory/ID") => {
                s.category.0 = true;
                s.subtotal.1 |= !text.is_empty();
                s.category_rate.1 = text == "O";
            }
            "Percent" if path.ends_with("TaxSubtotal/TaxCategory/Percent") => {
                s.category_rate.0 = true
            }
            "ID" if path.ends_with("Item/ClassifiedTaxCategory/ID") => s.classified.0 = true,
            "ID" if path.ends_with("Item/ClassifiedTaxCategory/TaxScheme/ID") => {
                s.classified.1 = text.eq_ignore_ascii_case("VAT")
            }
            "ID" if path.ends_with("TaxSubtotal/TaxCategory/TaxScheme/ID") => {
                s.category.1 = text.eq_ignore_ascii_case("VAT")
            }
            "TaxCategory" if path.ends_with("TaxSubtotal/TaxCategory") => {
                s.subtotal.0 |= s.category.0 && s.category.1
            }
            "ChargeIndicator" if path.ends_with("AllowanceCharge/ChargeIndicator") => {
                s.ac.0 = match text {
                    "true" | "1" => Some(true),
                    "false" | "0" => Some(false),
                    _ => None,
                }
            }
            "AllowanceChargeReason" if path.ends_with("AllowanceCharge/AllowanceChargeReason") => {
                s.ac.1 += 1
            }
            "RegistrationName"
                if path == "AccountingSupplierParty/Party/PartyLegalEntity/RegistrationName" =>
            {
                s.seller_legal_names.push(text.to_string())
            }
            "PaymentID" => {
                let first = s.payment_id.0.get_or_insert_with(|| text.to_string());
                s.payment_id.1 |= first != text;
            }
            "PaymentMeansCode" => {
                let first = s.means_code.0.get_or_insert_with(|| text.to_string());
                s.means_code.1 |= first != text;
            }
            _ => {}
        }
        if let Some(p) = s.payee.as_mut() {
            match path {
                "PayeeParty/PartyName/Name" => p.0.push(text.to_string()),
                "PayeeParty/PartyLegalEntity/CompanyID" => p.2 += 1,
                _ => {}
            }
        }
        if path == "UBLVersionID" && text != "2.1" {
            self.emit(
                "UBL-CR-002",
                Severity::Warning,
                format!("UBLVersionID is '{text}'; EN 16931 uses UBL 2.1"),
            );
        }
        if path == "PaymentMeans/PaymentDueDate" && !credit_note {
            self.emit(
                "UBL-CR-412",
                Severity::Warning,
                "PaymentMeans/PaymentDueDate is not used in an invoice (the due date is cbc:DueDate)".into(),
            );
        }
        if name.ends_with("Amount")
            && !name.ends_with("PriceAmount")
            && !path.contains("Price/AllowanceCharge/")
        {
            let decimals = text.split_once('.').map_or(0, |(_, f)| f.chars().count());
            if decimals > 2 {
                self.emit(
                    "UBL-DT-01",
                    Severity::Fatal,
                    format!(
                        "{path}: the amount {text} has {decimals} decimals; amounts take at most 2"
                    ),
                );
            }
        }
        if path
            .strip_suffix("/DocumentTypeCode")
            .is_some_and(is_line_ref)
        {
            self.special.line_ref.0 = Some(text.to_string());
        }
        match name {
            "DocumentReference" if is_line_ref(path) => {
                let (code, scheme) = std::mem::take(&mut self.special.line_ref);
                if let (Some("130"), Some(s)) = (code.as_deref(), scheme) {
                    let list = super::code_lists::OBJECT_SCHEMES;
                    let known = !s.trim().is_empty()
                        && !s.trim().contains(' ')
                        && list.split(' ').any(|c| c == s.trim());
                    if !known {
                        self.emit(
                            "BR-CL-07",
                            Severity::Fatal,
                            format!("{path}: the scheme '{s}' of the invoice line object identifier (BT-128) is not a UNTDID 1153 code"),
                        );
                    }
                }
            }
            // The binding takes BT-151 (and BT-118's rate) only from a
            // category in the tax scheme VAT: another scheme's category is
            // no VAT category (the model keeps the code, so these are
            // raised here).
            "ClassifiedTaxCategory" if is_line_item_category(path) => {
                let (id, vat) = std::mem::take(&mut self.special.classified);
                if id && !vat {
                    self.emit("BR-CO-04", Severity::Fatal, format!("{path}: the line's VAT category code (BT-151) is not in the tax scheme 'VAT' (TaxScheme/ID)"));
                }
            }
            "TaxCategory" if path == "TaxTotal/TaxSubtotal/TaxCategory" => {
                let (id, vat) = self.special.category;
                let (rate, o) = self.special.category_rate;
                if id && !vat && (rate || o) {
                    self.emit("BR-48", Severity::Fatal, format!("{path}: the VAT breakdown's rate (BT-119) is not in the tax scheme 'VAT' (TaxScheme/ID)"));
                }
                if id && !vat {
                    self.emit("BR-CO-17", Severity::Fatal, format!("{path}: the VAT breakdown's tax amount (BT-117) cannot be checked: its category is not in the tax scheme 'VAT' (TaxScheme/ID)"));
                }
            }
            "TaxSubtotal" if path.ends_with("TaxTotal/TaxSubtotal") => {
                let (ok, category_given) = self.special.subtotal;
                // `exists(cac:TaxCategory[cac:TaxScheme/normalize-space(
                // upper-case(cbc:ID))='VAT']/cbc:ID)`, on every TaxSubtotal
                // (a line's too). A document-level one without a category
                // code is reported by the model's BR-47.
                if !ok && (path != "TaxTotal/TaxSubtotal" || category_given) {
                    self.emit(
                        "BR-47",
                        Severity::Fatal,
                        format!("{path}: the VAT breakdown has no VAT category code (BT-118) in a tax scheme 'VAT' (the TaxScheme/ID shall be VAT)"),
                    );
                }
            }
            "AdditionalDocumentReference" => self.adr_end(path),
            "PartyTaxScheme" => self.pts_end(path),
            "AllowanceCharge" => {
                let (charge, reasons) = self.special.ac;
                if reasons > 1 {
                    if let Some(charge) = charge {
                        self.emit(
                            if charge { "UBL-SR-31" } else { "UBL-SR-30" },
                            Severity::Fatal,
                            format!("{path}: AllowanceChargeReason must occur at most 1 time(s), found {reasons}"),
                        );
                    }
                }
            }
            _ => {}
        }
    }

    fn adr_end(&mut self, path: &str) {
        let a = std::mem::take(&mut self.special.adr);
        let t130 = a.type_code.as_deref() == Some("130");
        if t130 {
            if path == "AdditionalDocumentReference" {
                self.special.object_ids += a.ids;
            }
            if a.attachment {
                self.emit(
                    "UBL-CR-666",
                    Severity::Fatal,
                    format!(
                        "{path}: an invoiced object identifier (type 130) carries no attachment"
                    ),
                );
            }
            if a.description {
                self.emit(
                    "UBL-CR-673",
                    Severity::Fatal,
                    format!("{path}: an invoiced object identifier (type 130) carries no document description"),
                );
            }
        } else if a.id_scheme {
            self.emit(
                "UBL-CR-665",
                Severity::Warning,
                format!("{path}: the schemeID of a document reference is only used for an invoiced object identifier (type 130)"),
            );
        }
        let ok = t130
            || (self.credit_note && a.type_code.as_deref() == Some("50"))
            || (!a.id_scheme && a.type_code.is_none());
        if !ok {
            self.emit(
                "UBL-SR-43",
                Severity::Fatal,
                format!("{path}: a supporting document has no type code, an invoiced object identifier has type code 130 (and a credit note's project reference 50), given {}",
                    a.type_code.as_deref().map_or("none".to_string(), |t| format!("'{t}'"))),
            );
        }
    }

    fn pts_end(&mut self, path: &str) {
        let p = std::mem::take(&mut self.special.pts);
        if p.scheme.is_none() || p.company_ids == 0 {
            self.emit(
                "UBL-SR-53",
                Severity::Fatal,
                format!("{path}: a PartyTaxScheme needs both its CompanyID and its TaxScheme/ID"),
            );
        }
        let vat = p.scheme.as_deref() == Some("VAT");
        let s = &mut self.special;
        match (path, &p.scheme) {
            ("AccountingSupplierParty/Party/PartyTaxScheme", Some(_)) if vat => {
                s.seller_vat += p.company_ids
            }
            // `TaxScheme/upper-case(cbc:ID) != 'VAT'`: a scheme without an
            // id ('') is another scheme than VAT.
            ("AccountingSupplierParty/Party/PartyTaxScheme", _) => s.seller_other += p.company_ids,
            ("AccountingCustomerParty/Party/PartyTaxScheme", Some(_)) if vat => {
                s.buyer_vat += p.company_ids
            }
            _ => {}
        }
    }

    /// The document ended: the root's counts and the document-wide rules.
    pub fn finish(mut self) -> Vec<Violation> {
        if let Some(root) = self.stack.pop() {
            for (i, seen) in root {
                let c = &tables::COUNTS[i as usize];
                if seen < c.min || seen > c.max {
                    self.emit(
                        c.id,
                        c.severity,
                        format!(
                            "{} must occur at most {} time(s), found {seen}",
                            c.rel, c.max
                        ),
                    );
                }
            }
        }
        let s = std::mem::take(&mut self.special);
        // BR-CO-15: `count(cac:TaxTotal/cbc:TaxAmount[@currencyID = BT-5]) eq 1`
        // with BT-5 as written: a tax total given, none in that currency
        // (BT-5 empty, misspelt, another code), fails it. (No tax total at
        // all, or several in BT-5, are the rules' own findings.)
        if let Some(cur) = s.doc_currency.as_deref() {
            let in_currency = s
                .tax_total_currencies
                .iter()
                .filter(|c| c.as_deref() == Some(cur))
                .count();
            if in_currency == 0 && !s.tax_total_currencies.is_empty() {
                self.emit(
                    "BR-CO-15",
                    Severity::Fatal,
                    format!("No total VAT amount (BT-110, TaxTotal/TaxAmount) is in the invoice currency '{cur}' (BT-5): the total with VAT (BT-112) cannot be checked against it"),
                );
            }
        }
        for (n, id, what) in [
            (
                s.object_ids,
                "UBL-SR-04",
                "The invoiced object identifier (BT-18)",
            ),
            (
                s.seller_vat,
                "UBL-SR-12",
                "The seller VAT identifier (BT-31)",
            ),
            (
                s.seller_other,
                "UBL-SR-13",
                "The seller tax registration identifier (BT-32)",
            ),
            (s.buyer_vat, "UBL-SR-18", "The buyer VAT identifier (BT-48)"),
            (
                s.sepa_ids,
                "UBL-SR-29",
                "The bank assigned creditor identifier (BT-90, a SEPA party identifier)",
            ),
            (
                s.means_code_names,
                "UBL-SR-46",
                "The payment means text (BT-82, PaymentMeansCode/@name)",
            ),
        ] {
            if n > 1 {
                self.emit(
                    id,
                    Severity::Fatal,
                    format!("{what} is given {n} times; give it once"),
                );
            }
        }
        if s.payment_id.1 {
            self.emit(
                "UBL-SR-44",
                Severity::Fatal,
                "The payment identifiers (BT-83, cbc:PaymentID) differ; an invoice has one remittance information".into(),
            );
        }
        if s.means_code.1 {
            self.emit(
                "UBL-SR-47",
                Severity::Fatal,
                "The payment means codes (BT-81) differ; an invoice has one payment means type"
                    .into(),
            );
        }
        if let Some((names, ids, legal)) = s.payee {
            // `(PartyName/Name) != (seller RegistrationName)`: some payee
            // name differs from some seller legal name (false when either
            // is missing).
            let differs = names
                .iter()
                .any(|n| s.seller_legal_names.iter().any(|l| l != n));
            for (n, id, what) in [
                (names.len() as u32, "UBL-SR-19", "payee name (BT-59)"),
                (ids, "UBL-SR-20", "payee identifier (BT-60)"),
                (
                    legal,
                    "UBL-SR-21",
                    "payee legal registration identifier (BT-61)",
                ),
            ] {
                if n > 1 {
                    self.emit(
                        id,
                        Severity::Fatal,
                        format!("The {what} is given {n} times; give it once"),
                    );
                } else if !differs {
                    self.emit(
                        id,
                        Severity::Fatal,
                        "A payee (BG-10) is given without its own name, or with the seller's legal name: give the payee's name, or leave the payee out when the seller is paid".into(),
                    );
                }
            }
        }
        self.findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn table_and_hand_written_rules_cover_every_id_of_the_artefact() {
        let mut ids: BTreeSet<&str> = tables::COUNTS.iter().map(|c| c.id).collect();
        ids.extend(tables::ABSENT.iter().map(|a| a.id));
        ids.extend(HAND.iter().copied());
        assert_eq!(ids.len(), RULES);
    }
}
