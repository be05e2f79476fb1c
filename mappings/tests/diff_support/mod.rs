//! What the differential suites share: quai's fatal rule ids for a file
//! (through the path a flow takes), compared with the official artefacts'
//! (`quai_test_support::oracle`), and the figures that compare them.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use quai_mappings::flow::{self, DocumentResult, FlowEnd, FlowLimits};
use quai_mappings::Severity;
use quai_test_support::oracle::Judgement;

/// quai's verdict on one file: its distinct fatal rule ids (a flow refused
/// whole gives its IRR_* code; a document's `SYNTAX` findings count as the
/// XSD's verdict, `XSD`).
pub fn quai_fatal(path: &Path) -> BTreeSet<String> {
    quai_judged(path).0
}

/// [`quai_fatal`], and each fatal finding's rule and place (`location`).
pub fn quai_judged(path: &Path) -> (BTreeSet<String>, Vec<(String, Option<String>)>) {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let mut fatal = BTreeSet::new();
    let mut places = Vec::new();
    let end = flow::process(path, name, &FlowLimits::default(), &mut |doc| {
        match doc.result {
            DocumentResult::Unreadable { rule, .. } => {
                fatal.insert(rule);
            }
            DocumentResult::Mapped { violations, .. } => {
                for v in violations {
                    if v.severity == Severity::Fatal {
                        places.push((v.rule.clone(), v.location.clone()));
                        // A value the reader refuses (not a number, not a
                        // date) is what the XSD refuses: one verdict.
                        fatal.insert(if v.rule == "SYNTAX" {
                            "XSD".to_string()
                        } else {
                            v.rule
                        });
                    }
                }
            }
        }
        Ok(())
    });
    match end {
        FlowEnd::Done(_) => {}
        FlowEnd::Rejected(r) => {
            fatal.insert(r.code.to_string());
        }
        FlowEnd::Stopped => panic!("{}: flow stopped", path.display()),
        FlowEnd::Failed(why) => panic!("{}: cannot read: {why}", path.display()),
    }
    (fatal, places)
}

/// An XPath as a comparable path of local names: `/*:Invoice[namespace-uri()='…'][1]/*:InvoiceLine[…][2]`
/// (Saxon's SVRL `location`) and `/Invoice/cac:InvoiceLine[2]` (quai's)
/// both become `/Invoice/InvoiceLine[2]`; a `[1]` is dropped.
pub fn local_path(xpath: &str) -> String {
    let mut out = String::new();
    for step in xpath.split('/').filter(|s| !s.is_empty()) {
        let (name, preds) = match step.find('[') {
            Some(i) => (&step[..i], &step[i..]),
            None => (step, ""),
        };
        let local = name.rsplit(':').next().unwrap_or(name);
        out.push('/');
        out.push_str(local);
        let mut rest = preds;
        while let Some(end) = rest.find(']') {
            let p = &rest[1..end];
            if p.chars().all(|c| c.is_ascii_digit()) && p != "1" {
                out.push_str(&format!("[{p}]"));
            }
            rest = &rest[end + 1..];
        }
    }
    out
}

/// quai's place for a finding lies in the node the artefact reports for
/// the same rule: that node, or one below it.
pub fn within(quai: &str, official: &str) -> bool {
    let (q, o) = (local_path(quai), local_path(official));
    q == o || q.starts_with(&format!("{o}/"))
}

/// quai's place for a finding is a group (a line, a VAT breakdown, an
/// address; not the root) that holds the node the artefact reports.
pub fn encloses(quai: &str, official: &str) -> bool {
    let (q, o) = (local_path(quai), local_path(official));
    q.matches('/').count() > 1 && o.starts_with(&format!("{q}/"))
}

/// The id quai gives the Factur-X profile schematrons' findings that have
/// none (the generated "marked as not used in the given context" reports).
pub const NOT_USED: &str = "FX-NOT-USED";

/// The official fatal set, XSD errors counted as one `XSD` finding, and the
/// Factur-X reports without an id named [`NOT_USED`].
pub fn official_fatal(j: &Judgement) -> BTreeSet<String> {
    let mut s: BTreeSet<String> = j
        .findings
        .iter()
        .filter(|f| !matches!(f.flag.as_str(), "warning" | "information" | "info"))
        .map(|f| {
            if f.id.is_empty() && f.text.contains("not used") {
                NOT_USED.to_string()
            } else {
                f.id.clone()
            }
        })
        .collect();
    if !j.xsd.is_empty() {
        s.insert("XSD".to_string());
    }
    s
}

/// Both say "this is not an invoice": the oracle finds no UBL or CII root
/// (`SYNTAX`), quai refuses the file whole (an `IRR_*` code) or cannot read
/// it (`SYNTAX`). Counted as the same verdict with the same set.
pub fn same_non_invoice(quai: &BTreeSet<String>, official: &BTreeSet<String>) -> bool {
    official.len() == 1
        && official.contains("SYNTAX")
        && !quai.is_empty()
        && quai.iter().all(|r| r.starts_with("IRR_") || r == "SYNTAX")
}

/// The figures of one differential run.
#[derive(Debug, Default)]
pub struct Tally {
    pub files: usize,
    /// Files whose fatal sets are equal.
    pub equal: usize,
    /// Files with the same verdict (both accept or both reject).
    pub same_verdict: usize,
    /// Σ official fatal ids per file, and those quai misses / adds.
    pub official_ids: usize,
    pub missing_ids: usize,
    pub extra_ids: usize,
    /// Per rule id: files where quai misses it / adds it.
    pub missing: BTreeMap<String, Vec<String>>,
    pub extra: BTreeMap<String, Vec<String>>,
    /// Per differing file: (name, ids missed, ids added).
    pub differing: Vec<(String, Vec<String>, Vec<String>)>,
}

impl Tally {
    pub fn add(&mut self, name: &str, quai: &BTreeSet<String>, official: &BTreeSet<String>) {
        self.files += 1;
        if quai == official {
            self.equal += 1;
        }
        if quai.is_empty() == official.is_empty() {
            self.same_verdict += 1;
        }
        self.official_ids += official.len();
        if quai != official {
            self.differing.push((
                name.to_string(),
                official.difference(quai).cloned().collect(),
                quai.difference(official).cloned().collect(),
            ));
        }
        for id in official.difference(quai) {
            self.missing_ids += 1;
            self.missing
                .entry(id.clone())
                .or_default()
                .push(name.to_string());
        }
        for id in quai.difference(official) {
            self.extra_ids += 1;
            self.extra
                .entry(id.clone())
                .or_default()
                .push(name.to_string());
        }
    }

    /// Per mille of files with equal fatal sets.
    pub fn equal_permille(&self) -> usize {
        (self.equal * 1000).checked_div(self.files).unwrap_or(0)
    }

    /// Per mille of official fatal ids that quai misses.
    pub fn missing_permille(&self) -> usize {
        (self.missing_ids * 1000)
            .checked_div(self.official_ids)
            .unwrap_or(0)
    }

    /// The figures as a Markdown table and the per-rule lists.
    pub fn report(&self) -> String {
        let pct = |n: usize, d: usize| {
            if d == 0 {
                "-".to_string()
            } else {
                format!("{:.1} %", n as f64 * 100.0 / d as f64)
            }
        };
        let mut s = format!(
            "| files | equal fatal sets | same verdict | official fatal ids | missed by quai | added by quai |\n\
             |---|---|---|---|---|---|\n\
             | {} | {} ({}) | {} ({}) | {} | {} ({}) | {} |\n",
            self.files,
            self.equal,
            pct(self.equal, self.files),
            self.same_verdict,
            pct(self.same_verdict, self.files),
            self.official_ids,
            self.missing_ids,
            pct(self.missing_ids, self.official_ids),
            self.extra_ids,
        );
        let list = |m: &BTreeMap<String, Vec<String>>| {
            let mut v: Vec<_> = m.iter().collect();
            v.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
            v.iter()
                .map(|(id, files)| {
                    let mut names: Vec<&str> = files.iter().map(String::as_str).collect();
                    names.sort();
                    names.dedup();
                    let shown: Vec<&str> = names.iter().take(3).copied().collect();
                    format!(
                        "- `{id}`: {} file(s), e.g. {}\n",
                        files.len(),
                        shown
                            .iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
                .collect::<String>()
        };
        if !self.missing.is_empty() {
            s.push_str("\nRaised by the artefacts, missed by quai:\n\n");
            s.push_str(&list(&self.missing));
        }
        if !self.extra.is_empty() {
            s.push_str("\nRaised by quai, not by the artefacts:\n\n");
            s.push_str(&list(&self.extra));
        }
        s
    }
}

/// Replace the text between `<!-- {tag}:begin -->` and `<!-- {tag}:end -->`
/// in docs/conformance.md (appended when absent); with `bless` false, fail
/// when the recorded text differs.
pub fn check_doc_section(tag: &str, section: &str, bless: bool) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/conformance.md");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    let (begin, end) = (
        format!("<!-- {tag}:begin -->"),
        format!("<!-- {tag}:end -->"),
    );
    let block = format!("{begin}\n{section}{end}");
    let updated = match (current.find(&begin), current.find(&end)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{block}{}", &current[..b], &current[e + end.len()..])
        }
        _ => format!("{}\n\n{block}\n", current.trim_end()),
    };
    if bless {
        std::fs::write(&path, &updated).expect("write docs/conformance.md");
    } else {
        assert!(
            current == updated,
            "docs/conformance.md section '{tag}' is stale: rerun with QUAI_BLESS=1"
        );
    }
}

/// Read a recorded figure `name = N` from the section text (the ratchet).
pub fn recorded(tag: &str, name: &str) -> Option<usize> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/conformance.md");
    let current = std::fs::read_to_string(path).ok()?;
    let begin = format!("<!-- {tag}:begin -->");
    let from = current.find(&begin)?;
    let key = format!("`{name} = ");
    let at = current[from..].find(&key)? + from + key.len();
    current[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .ok()
}

/// Every differing file must have a reason in `known` (name, reason), and
/// every reason must still be needed: returns the Markdown list, or panics
/// naming what is unexplained or stale.
pub fn explain(tally: &Tally, known: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut unexplained = Vec::new();
    for (name, missing, extra) in &tally.differing {
        let fmt = |v: &Vec<String>| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.iter()
                    .map(|i| format!("`{i}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        match known.iter().find(|(k, _)| k == name) {
            Some((_, why)) => out.push_str(&format!(
                "- `{name}`: missed {}, added {}. {why}\n",
                fmt(missing),
                fmt(extra)
            )),
            None => unexplained.push(format!("{name} (missed {missing:?}, added {extra:?})")),
        }
    }
    let stale: Vec<&str> = known
        .iter()
        .filter(|(k, _)| !tally.differing.iter().any(|(n, _, _)| n == k))
        .map(|(k, _)| *k)
        .collect();
    assert!(
        unexplained.is_empty(),
        "differences without a reason: {unexplained:#?}"
    );
    assert!(
        stale.is_empty(),
        "reasons for files that now agree: {stale:?}"
    );
    out
}
