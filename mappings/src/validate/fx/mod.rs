//! The Factur-X profile schematrons' structure rules, checked while the CII
//! reader reads.
//!
//! Each Factur-X profile (MINIMUM, BASIC WL, BASIC, EN 16931, EXTENDED)
//! ships a schematron that, besides the EN 16931 business rules (quai's rule
//! engine), states the profile's own structure as rules on absolute paths:
//! how often a child may occur, which code values an element or attribute
//! may take, which elements and attributes the profile does not use, which
//! attributes it requires. `tables.rs` holds those rules per profile,
//! generated from the official XSLTs by `scripts/oracle/gen_profile_tables.py`
//! (never edited by hand). [`Checker`] follows the reader's element events:
//! one table lookup per element and a counter per counted child, so the cost
//! is linear in the document and nothing is held beyond the open elements.
//!
//! The table is chosen as the official validator chooses the schematron: by
//! the guideline id (BT-24). A CII file whose BT-24 names no Factur-X /
//! ZUGFeRD profile (and is not `urn:cen.eu:en16931:2017`, the Factur-X
//! EN 16931 id) is another CIUS (XRechnung, ...): the Factur-X structure
//! rules do not apply to it (they would refuse it on its BT-24 alone), only
//! the EN 16931 rules do; its findings here are dropped.

mod tables;

use std::cell::Cell;

use crate::model::{Severity, Violation};
use crate::xml::{Attrs, Element, PathMemo, ThreadMemo};

/// One structure rule of a profile schematron, on the element at its path.
#[derive(Debug)]
pub(crate) enum Check {
    /// Child `child` occurs between `min` and `max` times.
    Count {
        child: &'static str,
        min: u32,
        max: u32,
        id: &'static str,
        severity: Severity,
    },
    /// The element's value (or its attribute `attr`), when not empty, is
    /// one of `list`.
    Code {
        attr: Option<&'static str>,
        list: &'static [&'static str],
        id: &'static str,
        severity: Severity,
    },
    /// The element (or its attribute `attr`) is not used in the profile.
    NotUsed {
        attr: Option<&'static str>,
        id: &'static str,
        severity: Severity,
    },
    /// Attribute `attr` is required.
    Required {
        attr: &'static str,
        id: &'static str,
        severity: Severity,
    },
}

/// One profile's rules, by path relative to `rsm:CrossIndustryInvoice`
/// (local names; `""` is the root), sorted by path.
pub(crate) struct Table {
    /// Structure rules in the official schematron.
    pub rules: usize,
    /// Of those, rules on paths the schematron splits by a predicate
    /// (`ram:AdditionalReferencedDocument[ram:TypeCode="916"]`): not in
    /// the table.
    pub predicated: usize,
    /// Of those, rules of another shape: not in the table.
    pub unsupported: usize,
    pub paths: &'static [(&'static str, &'static [Check])],
}

/// A Factur-X profile, as the official validator picks its schematron.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FxProfile {
    Minimum,
    BasicWl,
    Basic,
    En16931,
    Extended,
}

impl FxProfile {
    /// The Factur-X profile a CII file with guideline id `id` (BT-24)
    /// names: the first profile whose identifiers the id contains, as the
    /// official validator picks the schematron; EN 16931 for
    /// `urn:cen.eu:en16931:2017`; `None` for another CIUS.
    pub fn for_guideline(id: &str) -> Option<FxProfile> {
        const IDS: &[(FxProfile, &[&str])] = &[
            (
                FxProfile::Extended,
                &[
                    "urn:factur-x.eu:1p0:extended",
                    "urn:zugferd.de:2p0:extended",
                    "urn:zugferd.de:2p1:extended",
                ],
            ),
            (
                FxProfile::BasicWl,
                &[
                    "urn:factur-x.eu:1p0:basicwl",
                    "urn:zugferd.de:2p0:basicwl",
                    "urn:zugferd.de:2p1:basicwl",
                ],
            ),
            (
                FxProfile::Basic,
                &[
                    "urn:factur-x.eu:1p0:basic",
                    "urn:zugferd.de:2p0:basic",
                    "urn:zugferd.de:2p1:basic",
                ],
            ),
            (
                FxProfile::Minimum,
                &[
                    "urn:factur-x.eu:1p0:minimum",
                    "urn:zugferd.de:2p0:minimum",
                    "urn:zugferd.de:2p1:minimum",
                ],
            ),
        ];
        let id = id.trim();
        match IDS
            .iter()
            .find(|(_, ids)| ids.iter().any(|i| id.contains(i)))
        {
            Some((p, _)) => Some(*p),
            None if id == "urn:cen.eu:en16931:2017" => Some(FxProfile::En16931),
            None => None,
        }
    }

    /// The profile's checks on `path`. Looked up by hash, built once per
    /// profile: a binary search over the sorted paths compared their long
    /// shared prefixes at every element's start and end (8 % of a large
    /// CII invoice's reading, plus most of its `memcmp`); foldhash, as
    /// SipHash cost as much again on these long keys.
    fn checks(self, path: &str) -> &'static [Check] {
        type Index =
            std::collections::HashMap<&'static str, &'static [Check], foldhash::fast::FixedState>;
        static INDEXES: [std::sync::OnceLock<Index>; 5] = [const { std::sync::OnceLock::new() }; 5];
        INDEXES[self as usize]
            .get_or_init(|| self.table().paths.iter().copied().collect())
            .get(path)
            .copied()
            .unwrap_or(&[])
    }

    fn table(self) -> &'static Table {
        match self {
            FxProfile::Minimum => &tables::MINIMUM,
            FxProfile::BasicWl => &tables::BASICWL,
            FxProfile::Basic => &tables::BASIC,
            FxProfile::En16931 => &tables::EN16931,
            FxProfile::Extended => &tables::EXTENDED,
        }
    }

    /// The profile's business rules: (EN 16931 id, the id the profile's
    /// schematron gives it, severity there), sorted by EN 16931 id.
    fn rule_set(self) -> &'static [(&'static str, &'static str, Severity)] {
        match self {
            FxProfile::Minimum => tables::MINIMUM_RULES,
            FxProfile::BasicWl => tables::BASICWL_RULES,
            FxProfile::Basic => tables::BASIC_RULES,
            FxProfile::En16931 => tables::EN16931_RULES,
            FxProfile::Extended => tables::EXTENDED_RULES,
        }
    }

    /// How the profile's schematron states EN 16931 rule `id`: under which
    /// id (its own, an `FX-SCH-*` id in MINIMUM and BASIC, a `BR-FXEXT-*`
    /// restatement in EXTENDED) and severity; `None` when the profile does
    /// not state it (the Factur-X schematrons check code lists by their
    /// own `FX-SCH-*` code rules, not by `BR-CL-*`).
    pub fn official(self, id: &str) -> Option<(&'static str, Severity)> {
        let set = self.rule_set();
        set.binary_search_by(|(cen, _, _)| (*cen).cmp(id))
            .ok()
            .map(|i| (set[i].1, set[i].2))
    }

    /// Restate `violations` (EN 16931 rules) as the profile's schematron
    /// does: its ids and severities, without the rules it does not state.
    /// Findings that are not business rules (`SYNTAX`, `FX-*`) stay.
    pub fn restate(self, violations: &mut Vec<Violation>) {
        violations.retain_mut(|v| {
            if !(v.rule.starts_with("BR-") || v.rule.starts_with("CII-")) {
                return true;
            }
            match self.official(&v.rule) {
                Some((id, severity)) => {
                    if id != v.rule {
                        v.message = format!(
                            "{} (stated as {} in the Factur-X {} schematron)",
                            v.message,
                            id,
                            self.name()
                        );
                        v.rule = id.to_string();
                    }
                    v.severity = severity;
                    true
                }
                None => false,
            }
        });
    }

    /// The profile's name as Factur-X writes it.
    pub fn name(self) -> &'static str {
        match self {
            FxProfile::Minimum => "MINIMUM",
            FxProfile::BasicWl => "BASIC WL",
            FxProfile::Basic => "BASIC",
            FxProfile::En16931 => "EN 16931",
            FxProfile::Extended => "EXTENDED",
        }
    }

    /// (rules of the official schematron's structure part, in quai's
    /// table, on predicated paths, of other shapes) — for docs/rules.md.
    pub fn coverage(self) -> (usize, usize, usize, usize) {
        let t = self.table();
        let checked = t.paths.iter().map(|(_, c)| c.len()).sum();
        (t.rules, checked, t.predicated, t.unsupported)
    }
}

/// Whether `v` is in `list`, a code list of the tables: sorted (the test
/// `code_lists_are_sorted` holds the generator to it), so searched by
/// halves: a unit code among the 2,162 of Rec 20 was a fifth of reading a
/// CII invoice when scanned.
fn in_list(list: &[&str], v: &str) -> bool {
    list.binary_search(&v).is_ok()
}

/// The path of the guideline id (BT-24), relative to the root.
pub(crate) const GUIDELINE: &str =
    "ExchangedDocumentContext/GuidelineSpecifiedDocumentContextParameter/ID";

struct Frame {
    /// Counted children of this element: (name, seen).
    counts: Vec<(&'static str, u32)>,
}

/// A path's checks in each profile, looked up the first time the path is
/// met in that profile (three hash lookups of the long CII path per element
/// were a fifth of reading a CII invoice).
#[derive(Default)]
struct PathChecks {
    foreign: bool,
    by_profile: [Option<&'static [Check]>; 5],
    /// Which of its parent's counted children an element of this path is
    /// (indexes into the parent's [`Frame::counts`], which its path and the
    /// profile decide), per profile.
    in_parent: [Option<Box<[u16]>>; 5],
}

impl PathChecks {
    fn of(path: &str) -> PathChecks {
        PathChecks {
            foreign: path.contains('~'),
            ..PathChecks::default()
        }
    }
}

thread_local! {
    static PATH_CHECKS: Cell<PathMemo<PathChecks>> = const { Cell::new(PathMemo::new()) };
}

/// Follows a CII document's elements and reports the structure rules of its
/// profile it breaks.
pub(crate) struct Checker {
    /// The checks of each path met, kept per thread.
    paths: ThreadMemo<PathChecks>,
    /// Emptied counter vectors of closed elements.
    spare: Vec<Vec<(&'static str, u32)>>,
    profile: FxProfile,
    /// BT-24 was read and names a Factur-X profile: the findings stand.
    named: bool,
    stack: Vec<Frame>,
    /// The open header AdditionalReferencedDocument's TypeCode.
    ard_type: Option<String>,
    pub findings: Vec<Violation>,
}

/// The header supporting documents, whose variants the EN 16931 and
/// EXTENDED schematrons tell by TypeCode (a predicated rule the table
/// cannot hold).
const HEADER_ARD: &str =
    "SupplyChainTradeTransaction/ApplicableHeaderTradeAgreement/AdditionalReferencedDocument";

impl Default for Checker {
    fn default() -> Self {
        let mut c = Checker {
            paths: ThreadMemo::take(&PATH_CHECKS),
            spare: Vec::new(),
            profile: FxProfile::En16931,
            named: false,
            stack: Vec::new(),
            ard_type: None,
            findings: Vec::new(),
        };
        c.stack.push(c.frame(""));
        c
    }
}

/// `A/B` -> `/rsm:CrossIndustryInvoice/A/B`, for messages.
fn xpath(path: &str) -> String {
    if path.is_empty() {
        "/rsm:CrossIndustryInvoice".to_string()
    } else {
        format!("/rsm:CrossIndustryInvoice/{path}")
    }
}

impl Frame {
    fn of(checks: &'static [Check]) -> Frame {
        Frame::into(Vec::new(), checks)
    }

    /// The frame of an element with `checks`, its counters in `counts`
    /// (an emptied vector, reused).
    fn into(mut counts: Vec<(&'static str, u32)>, checks: &'static [Check]) -> Frame {
        counts.extend(checks.iter().filter_map(|c| match c {
            Check::Count { child, .. } => Some((*child, 0)),
            _ => None,
        }));
        Frame { counts }
    }
}

/// Counter vectors kept for reuse (an allocation per counted element was
/// a tenth of the checker's time).
const SPARE_MAX: usize = 64;

impl Checker {
    fn frame(&self, path: &str) -> Frame {
        Frame::of(self.profile.checks(path))
    }

    /// The current profile's checks on `el`; `None` for an element in a
    /// foreign namespace (`~` in its path: not checked).
    fn checks_of(&mut self, el: &Element<'_>) -> Option<&'static [Check]> {
        let profile = self.profile;
        let e = self.paths.get(el.node, || PathChecks::of(el.path));
        if e.foreign {
            return None;
        }
        Some(e.by_profile[profile as usize].get_or_insert_with(|| profile.checks(el.path)))
    }

    /// BT-24 named the profile: the open elements (the root, the context,
    /// the guideline parameter) count their children by its table from now
    /// on, keeping what they counted, the open path's own steps once.
    fn switch(&mut self, profile: FxProfile, path: &str) {
        if profile == self.profile {
            return;
        }
        self.profile = profile;
        let steps: Vec<&str> = path.split('/').collect();
        for depth in 0..self.stack.len() {
            let at = steps[..depth].join("/");
            let mut fresh = self.frame(&at);
            let open_child = steps.get(depth).copied();
            for (name, seen) in fresh.counts.iter_mut() {
                *seen = self.stack[depth]
                    .counts
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, n)| *n)
                    .unwrap_or(u32::from(open_child == Some(*name)));
            }
            self.stack[depth] = fresh;
        }
    }

    fn emit(&mut self, id: &str, severity: Severity, message: String) {
        self.findings.push(Violation {
            rule: id.to_string(),
            term: String::new(),
            severity,
            message: format!("{message} (Factur-X {} profile)", self.profile.name()),
            location: None,
            line: None,
            column: None,
        });
    }

    /// An element opened (a foreign one, `~` in its path, is not checked).
    pub fn start(&mut self, el: &Element<'_>, attrs: &Attrs<'_>) {
        let (path, name) = (el.path, el.local());
        if let Some(parent) = self.stack.last_mut() {
            let e = self.paths.get(el.node, || PathChecks::of(path));
            let slots = e.in_parent[self.profile as usize].get_or_insert_with(|| {
                (parent.counts.iter().enumerate())
                    .filter(|(_, (child, _))| *child == name)
                    .map(|(i, _)| i as u16)
                    .collect()
            });
            for &i in slots.iter() {
                if let Some((_, seen)) = parent.counts.get_mut(i as usize) {
                    *seen += 1;
                }
            }
        }
        let Some(checks) = self.checks_of(el) else {
            self.stack.push(Frame { counts: Vec::new() });
            return;
        };
        let counts = self.spare.pop().unwrap_or_default();
        self.stack.push(Frame::into(counts, checks));
        for check in checks {
            match check {
                Check::NotUsed {
                    attr: None,
                    id,
                    severity,
                } => self.emit(
                    id,
                    *severity,
                    format!("{}: this element is not used in this profile", xpath(path)),
                ),
                Check::NotUsed {
                    attr: Some(a),
                    id,
                    severity,
                } if attrs.get(a).is_some() => self.emit(
                    id,
                    *severity,
                    format!(
                        "{}: attribute @{a} is not used in this profile",
                        xpath(path)
                    ),
                ),
                Check::Required { attr, id, severity } if attrs.get(attr).is_none() => self.emit(
                    id,
                    *severity,
                    format!("{}: attribute @{attr} is required", xpath(path)),
                ),
                Check::Code {
                    attr: Some(a),
                    list,
                    id,
                    severity,
                } => {
                    if let Some(v) = attrs.get(a) {
                        if !in_list(list, v) {
                            self.emit(
                                id,
                                *severity,
                                format!(
                                    "{}: attribute @{a} '{v}' is not an allowed value",
                                    xpath(path)
                                ),
                            );
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// An element closed, with its trimmed text.
    pub fn end(&mut self, el: &Element<'_>, text: &str) {
        let path = el.path;
        let frame = self.stack.pop();
        if self.checks_of(el).is_none() {
            return;
        }
        if path.strip_suffix("/TypeCode") == Some(HEADER_ARD) {
            self.ard_type = Some(text.to_string());
        }
        if path == HEADER_ARD {
            // `AdditionalReferencedDocument[not(TypeCode="916") and
            // not(TypeCode="50") and not(TypeCode="130")]` is not used.
            let t = self.ard_type.take();
            if matches!(self.profile, FxProfile::En16931 | FxProfile::Extended)
                && !matches!(t.as_deref(), Some("916") | Some("50") | Some("130"))
            {
                self.emit(
                    "FX-NOT-USED",
                    Severity::Fatal,
                    format!(
                        "{}: a header document reference with type code {} is not used in this profile (916 supporting document, 50 tender or lot, 130 invoiced object)",
                        xpath(path),
                        t.map_or("none".to_string(), |t| format!("'{t}'"))
                    ),
                );
            }
        }
        if path == GUIDELINE {
            match FxProfile::for_guideline(text) {
                Some(p) => {
                    self.named = true;
                    self.switch(p, path);
                }
                None => self.named = false,
            }
        }
        let checks = self.checks_of(el).unwrap_or(&[]);
        if let Some(mut frame) = frame {
            self.counts(path, checks, &frame);
            if self.spare.len() < SPARE_MAX && frame.counts.capacity() > 0 {
                frame.counts.clear();
                self.spare.push(frame.counts);
            }
        }
        for check in checks {
            if let Check::Code {
                attr: None,
                list,
                id,
                severity,
            } = check
            {
                if !text.is_empty() && !in_list(list, text) {
                    self.emit(
                        id,
                        *severity,
                        format!("{}: '{text}' is not an allowed value", xpath(path)),
                    );
                }
            }
        }
    }

    fn counts(&mut self, path: &str, checks: &'static [Check], frame: &Frame) {
        // The frame's counters are those of `checks` in order, unless the
        // profile changed while the element was open: then by name.
        let mut k = 0;
        for check in checks {
            if let Check::Count {
                child,
                min,
                max,
                id,
                severity,
            } = check
            {
                let seen = match frame.counts.get(k) {
                    Some((c, n)) if std::ptr::eq(*c, *child) => *n,
                    _ => frame
                        .counts
                        .iter()
                        .find(|(c, _)| c == child)
                        .map_or(0, |(_, n)| *n),
                };
                k += 1;
                if seen < *min || seen > *max {
                    let want = match (*min, *max) {
                        (a, b) if a == b => format!("exactly {a} time(s)"),
                        (0, b) => format!("at most {b} time(s)"),
                        (a, _) => format!("at least {a} time(s)"),
                    };
                    self.emit(
                        id,
                        *severity,
                        format!(
                            "{}: element {child} must occur {want}, found {seen}",
                            xpath(path)
                        ),
                    );
                }
            }
        }
    }

    /// The document ended: the root's own counts; nothing when BT-24
    /// names no Factur-X profile.
    pub fn finish(mut self) -> Vec<Violation> {
        if !self.named {
            return Vec::new();
        }
        if let Some(root) = self.stack.pop() {
            let checks = self.profile.checks("");
            self.counts("", checks, &root);
        }
        self.findings
    }
}

/// BR-FXEXT-08 (Factur-X EXTENDED): the net amount (BT-131) of a group line
/// (BT-X-8 `GROUP`) that states one is the sum, rounded to 2 decimals, of
/// the net amounts of its detail and group children (BT-X-304 = its line
/// id). One pass to sum the children per parent, one to compare.
pub(crate) fn sub_lines(inv: &crate::model::Invoice, out: &mut Vec<Violation>) {
    use rust_decimal::Decimal;
    use std::collections::HashMap;
    fn status(l: &crate::model::Line) -> Option<&str> {
        l.line_status.as_deref().map(str::trim)
    }
    let mut sums: HashMap<&str, Decimal> = HashMap::new();
    for l in &inv.lines {
        if let (Some(parent), Some("DETAIL") | Some("GROUP")) =
            (l.parent_line_id.as_deref().map(str::trim), status(l))
        {
            let e = sums.entry(parent).or_default();
            *e = e
                .checked_add(l.net_amount.unwrap_or_default())
                .unwrap_or(*e);
        }
    }
    for l in &inv.lines {
        let (Some("GROUP"), Some(net)) = (status(l), l.net_amount) else {
            continue;
        };
        let id = l.id.as_deref().map(str::trim).unwrap_or("");
        let sum = sums.get(id).copied().unwrap_or_default();
        let Some(expected) = super::round2(sum) else {
            continue;
        };
        if net != expected {
            out.push(Violation {
                rule: "BR-FXEXT-08".into(),
                term: "BT-131".into(),
                severity: Severity::Fatal,
                message: format!(
                    "The group line {id} states a net amount (BT-131) of {net} but its sub-lines add up to {expected} (Factur-X EXTENDED profile)"
                ), location: None, line: None, column: None });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_lists_are_sorted() {
        for p in [
            FxProfile::Minimum,
            FxProfile::BasicWl,
            FxProfile::Basic,
            FxProfile::En16931,
            FxProfile::Extended,
        ] {
            for (path, checks) in p.table().paths {
                for c in *checks {
                    if let Check::Code { list, .. } = c {
                        assert!(
                            list.windows(2).all(|w| w[0] < w[1]),
                            "{path}: code list not sorted"
                        );
                        for v in *list {
                            assert!(in_list(list, v));
                        }
                        assert!(!in_list(list, "not a code"));
                    }
                }
            }
        }
    }
}
