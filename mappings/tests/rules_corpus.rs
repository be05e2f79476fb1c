//! Corpus conformance: every fixture file of every family (UBL, CII,
//! Factur-X XML and PDF, EDIFACT), through the same path a flow takes
//! (`flow::process`: detect, read, validate), against what its source says
//! and what the official EN 16931 artefacts say.
//!
//! Each family's `fixtures/<family>/MANIFEST.tsv` (copied from the shared
//! corpus) carries, per file:
//! - `label`: what the file's source says (`valid`, `invalid`, or `fixture`,
//!   `edge`, `unstated`, `warn` when it states no verdict);
//! - `en16931`: the result of the CEN validation artefacts 1.3.16 on it
//!   (`pass`, `FAIL n fatal: <rule ids>`, or `n/a` for what they cannot read:
//!   PDFs, EDIFACT, ZUGFeRD 1.0);
//! - `quai`: the outcome quai must give, recorded here (`accept`, or
//!   `reject: <fatal rule ids>`; `IRR_*` for a flow refused whole);
//! - `quai_note`: why quai differs from the source's label or from the
//!   official result, when it does.
//!
//! The test fails when quai's outcome is not the recorded one, when the
//! recorded outcome differs from the label (valid → accepted, invalid →
//! rejected) or from the official result (verdict, and the set of fatal
//! `BR-*` rules) without a note, and when a note explains a difference that
//! no longer exists. Accepted files must also map without loss: no reader
//! issue, and the canonical invoice survives a JSON round trip.
//!
//! `QUAI_BLESS=1` rewrites the `quai` column with the current outcomes (the
//! notes stay, and an unexplained difference still fails) and the "Corpus"
//! section of `docs/conformance.md` (per source: files, passed, each
//! explained difference).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use quai_mappings::flow::{self, DocumentResult, FlowEnd, FlowLimits};
use quai_mappings::{Invoice, Severity};

const FAMILIES: &[&str] = &["ubl", "cii", "facturx", "edifact"];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// What quai made of one file.
struct Outcome {
    /// `accept`, or `reject: R1,R2` (sorted fatal rule ids).
    verdict: String,
    /// Fatal `BR-*` rules only, to compare with the official set.
    br: BTreeSet<String>,
    /// Documents read (an EDIFACT interchange may hold several).
    documents: usize,
    invoices: Vec<Invoice>,
}

fn run(path: &Path) -> Outcome {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let mut fatal = BTreeSet::new();
    let mut invoices = Vec::new();
    let mut documents = 0;
    let end = flow::process(path, name, &FlowLimits::default(), &mut |doc| {
        documents += 1;
        match doc.result {
            DocumentResult::Unreadable { rule, .. } => {
                fatal.insert(rule);
            }
            DocumentResult::Mapped {
                invoice,
                violations,
            } => {
                for v in violations {
                    if v.severity == Severity::Fatal {
                        fatal.insert(v.rule);
                    }
                }
                invoices.push(*invoice);
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
        FlowEnd::Failed(why) => panic!("{}: cannot read the fixture: {why}", path.display()),
    }
    let br = fatal
        .iter()
        .filter(|r| r.starts_with("BR-"))
        .cloned()
        .collect();
    let verdict = if fatal.is_empty() {
        "accept".to_string()
    } else {
        format!(
            "reject: {}",
            fatal.into_iter().collect::<Vec<_>>().join(",")
        )
    };
    Outcome {
        verdict,
        br,
        documents,
        invoices,
    }
}

/// The official result: `None` when the artefacts could not check the
/// file, else whether they reject it and their fatal `BR-*` rules
/// (`FAIL 3 fatal: BR-CL-10x3, BR-CO-16; ...` -> {BR-CL-10, BR-CO-16}).
fn official(column: &str) -> Option<(bool, BTreeSet<String>)> {
    if column.starts_with("pass") {
        return Some((false, BTreeSet::new()));
    }
    let rest = column.strip_prefix("FAIL")?;
    // Only the fatal part: "FAIL 2 fatal: A,B; 3 warn: C".
    let fatal = rest.split(';').next().unwrap_or("");
    let list = fatal.split_once(':').map_or("", |(_, l)| l);
    let rules = list
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| s.starts_with("BR-"))
        .map(|s| match s.rfind('x') {
            Some(i) if i + 1 < s.len() && s[i + 1..].chars().all(|c| c.is_ascii_digit()) => {
                s[..i].to_string()
            }
            _ => s.to_string(),
        })
        .collect();
    Some((true, rules))
}

struct Row {
    cols: Vec<String>,
}

struct Manifest {
    header: Vec<String>,
    rows: Vec<Row>,
}

impl Manifest {
    fn load(path: &Path) -> Manifest {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let mut header: Vec<String> = lines
            .next()
            .unwrap_or("")
            .split('\t')
            .map(String::from)
            .collect();
        for extra in ["quai", "quai_note"] {
            if !header.iter().any(|h| h == extra) {
                header.push(extra.to_string());
            }
        }
        let rows = lines
            .map(|l| {
                let mut cols: Vec<String> = l.split('\t').map(String::from).collect();
                cols.resize(header.len(), String::new());
                Row { cols }
            })
            .collect();
        Manifest { header, rows }
    }

    fn col(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("manifest column {name}"))
    }

    fn write(&self, path: &Path) {
        let mut s = self.header.join("\t");
        s.push('\n');
        for r in &self.rows {
            s.push_str(&r.cols.join("\t"));
            s.push('\n');
        }
        std::fs::write(path, s).expect("write manifest");
    }
}

/// `cii/xrechnung-testsuite/x.xml` -> `cii/xrechnung-testsuite`; a file
/// kept flat (`edifact/x.edi`) is named by its repository instead
/// (`edifact/pydifact`).
fn source_of(path: &str, repository: &str) -> String {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() >= 3 {
        format!("{}/{}", parts[0], parts[1])
    } else {
        let repo = repository.rsplit('/').next().unwrap_or(repository);
        format!("{}/{}", parts[0], repo)
    }
}

#[derive(Default)]
struct SourceTally {
    files: usize,
    passed: usize,
    documents: usize,
    differences: Vec<String>,
    /// Files without a verdict from their source: the outcome recorded
    /// after review, and why.
    reviewed: Vec<String>,
}

#[test]
fn every_corpus_file_agrees_with_its_source_and_the_official_artefacts() {
    let bless = std::env::var_os("QUAI_BLESS").is_some();
    let mut problems = Vec::new();
    let mut by_source: BTreeMap<String, SourceTally> = BTreeMap::new();
    let mut by_format: BTreeMap<&str, SourceTally> = BTreeMap::new();
    let mut total_files = 0;

    for family in FAMILIES {
        let manifest_path = fixtures().join(family).join("MANIFEST.tsv");
        let mut m = Manifest::load(&manifest_path);
        let (c_path, c_label, c_en) = (m.col("path"), m.col("label"), m.col("en16931"));
        let (c_quai, c_note) = (m.col("quai"), m.col("quai_note"));
        let c_repo = m.col("repository");
        for row in &mut m.rows {
            let path = row.cols[c_path].clone();
            let file = fixtures().join(&path);
            assert!(file.is_file(), "{path}: listed in the manifest, missing");
            total_files += 1;
            let got = run(&file);
            let label = row.cols[c_label].clone();
            let label = label.as_str();
            let note = row.cols[c_note].trim().to_string();

            if bless {
                row.cols[c_quai] = got.verdict.clone();
            } else if row.cols[c_quai] != got.verdict {
                problems.push(format!(
                    "{path}: quai gives '{}', the manifest records '{}'",
                    got.verdict, row.cols[c_quai]
                ));
            }

            // Differences from the source and from the official artefacts.
            let rejected = got.verdict != "accept";
            let mut diffs = Vec::new();
            match label {
                "valid" if rejected => diffs.push(format!("labelled valid, quai {}", got.verdict)),
                "invalid" if !rejected => diffs.push("labelled invalid, quai accepts".to_string()),
                _ => {}
            }
            match official(&row.cols[c_en]) {
                Some((off_rejects, off_br)) => {
                    if off_rejects != rejected {
                        diffs.push(format!(
                            "official artefacts {}, quai {}",
                            if off_rejects { "reject" } else { "accept" },
                            got.verdict
                        ));
                    } else if off_br != got.br {
                        let extra: Vec<_> = got.br.difference(&off_br).collect();
                        let missing: Vec<_> = off_br.difference(&got.br).collect();
                        diffs.push(format!(
                            "quai also fires {extra:?}, misses {missing:?} of the official fatal rules"
                        ));
                    }
                }
                None if !matches!(label, "valid" | "invalid") && note.is_empty() => {
                    diffs.push(format!(
                        "label '{label}' and no official result: record what the official rules say in quai_note"
                    ));
                }
                None => {}
            }
            if !diffs.is_empty() && note.is_empty() {
                problems.push(format!(
                    "{path}: unexplained difference: {}",
                    diffs.join("; ")
                ));
            }
            let agrees = diffs.is_empty();
            if agrees
                && !note.is_empty()
                && matches!(label, "valid" | "invalid")
                && official(&row.cols[c_en]).is_some()
            {
                problems.push(format!(
                    "{path}: agrees with its source and the official artefacts, remove its quai_note"
                ));
            }

            // Accepted documents map without loss (a fatal reader issue
            // would have rejected them).
            if !rejected {
                for inv in &got.invoices {
                    let json = serde_json::to_string(inv).expect("serialize");
                    let back: Invoice = serde_json::from_str(&json).expect("deserialize");
                    if &back != inv {
                        problems.push(format!("{path}: the invoice does not survive JSON"));
                    }
                }
            }

            let format = match *family {
                "facturx" if path.to_ascii_lowercase().ends_with(".pdf") => {
                    "Factur-X / ZUGFeRD PDF"
                }
                "facturx" => "Factur-X / ZUGFeRD XML",
                "ubl" => "UBL",
                "cii" => "CII",
                _ => "EDIFACT",
            };
            let f = by_format.entry(format).or_default();
            f.files += 1;
            f.documents += got.documents;
            if diffs.is_empty() {
                f.passed += 1;
            } else {
                f.differences.push(String::new());
            }
            let t = by_source
                .entry(source_of(&path, &row.cols[c_repo]))
                .or_default();
            t.files += 1;
            t.documents += got.documents;
            if agrees {
                t.passed += 1;
                if !note.is_empty() {
                    let name = path.rsplit('/').next().unwrap_or(&path);
                    t.reviewed.push(format!(
                        "`{name}` ({}): {}",
                        got.verdict,
                        note.split_whitespace().collect::<Vec<_>>().join(" ")
                    ));
                }
            } else {
                let name = path.rsplit('/').next().unwrap_or(&path);
                t.differences.push(format!(
                    "`{name}` ({}): {}",
                    got.verdict,
                    note.split_whitespace().collect::<Vec<_>>().join(" ")
                ));
            }
        }
        if bless {
            m.write(&manifest_path);
        }
    }

    // The conformance table.
    let mut table = String::from(
        "| source | files | documents | passed | explained differences |\n|---|---|---|---|---|\n",
    );
    let (mut files, mut passed, mut diffs) = (0, 0, 0);
    for (source, t) in &by_source {
        table.push_str(&format!(
            "| {source} | {} | {} | {} | {} |\n",
            t.files,
            t.documents,
            t.passed,
            t.differences.len()
        ));
        files += t.files;
        passed += t.passed;
        diffs += t.differences.len();
    }
    table.push_str(&format!("| **all** | {files} | | {passed} | {diffs} |\n"));
    let mut formats = String::from(
        "| format | files | documents | passed | explained differences |\n|---|---|---|---|---|\n",
    );
    for (format, t) in &by_format {
        formats.push_str(&format!(
            "| {format} | {} | {} | {} | {} |\n",
            t.files,
            t.documents,
            t.passed,
            t.differences.len()
        ));
    }
    let mut details = String::new();
    for (source, t) in &by_source {
        if t.differences.is_empty() && t.reviewed.is_empty() {
            continue;
        }
        details.push_str(&format!("\n### {source}\n\n"));
        for d in &t.differences {
            details.push_str(&format!("- {d}\n"));
        }
        for d in &t.reviewed {
            details.push_str(&format!("- no verdict from the source, reviewed: {d}\n"));
        }
    }
    println!("{table}");
    let section = format!(
        "## Corpus\n\n\
         Every file of the shared corpus that quai is meant to read \
         (`mappings/tests/fixtures/{{ubl,cii,facturx,edifact}}`, {files} files), through \
         the path a flow takes (detect, read, validate), against its source's label and the \
         official CEN artefacts' result (`en16931` column of the fixture manifests). \
         \"Passed\" means quai agrees with both: a file labelled valid is accepted, one \
         labelled invalid is rejected, and where the official artefacts could check the file \
         quai gives the same verdict with the same set of fatal `BR-*` rules. Every other file \
         is an explained difference (reason in the manifest's `quai_note` column). Produced by \
         `cargo test -p quai-mappings --test rules_corpus` (`QUAI_BLESS=1` rewrites this \
         section and the `quai` column).\n\n{formats}\nPer source:\n\n{table}\n\
         Explained differences (quai's outcome, then why):\n{details}"
    );
    assert!(
        total_files > 250,
        "expected the corpus fixtures, found {total_files}"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    check_doc_section(&section, bless);
}

const BEGIN: &str = "<!-- corpus:begin -->";
const END: &str = "<!-- corpus:end -->";

fn check_doc_section(section: &str, bless: bool) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/conformance.md");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    let block = format!("{BEGIN}\n{section}{END}");
    let updated = match (current.find(BEGIN), current.find(END)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{block}{}", &current[..b], &current[e + END.len()..])
        }
        _ => format!("{}\n\n{block}\n", current.trim_end()),
    };
    if bless {
        std::fs::write(&path, &updated).expect("write docs/conformance.md");
    } else {
        assert!(
            current == updated,
            "docs/conformance.md 'Corpus' section is stale: run QUAI_BLESS=1 cargo test -p quai-mappings --test rules_corpus"
        );
    }
}
