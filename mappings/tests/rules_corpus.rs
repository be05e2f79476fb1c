//! quai's fatal business-rule verdicts on whole invoices, against the
//! official EN 16931 artefacts.
//!
//! The UBL and CII fixtures (`fixtures/{ubl,cii}/`, copied from the shared
//! corpus with their `MANIFEST.tsv`) were each checked with the CEN
//! validation artefacts 1.3.16; the manifest's `en16931` column records the
//! outcome (`pass`, or `FAIL n fatal: <rule ids>`). For every such file the
//! set of fatal `BR-*` rules quai reports must equal the official set
//! (syntax-binding rules `UBL-*`/`CII-*` are left out on both sides: the
//! readers report what matters of them as SYNTAX issues). Known differences
//! are listed with their reason; a listed file that agrees fails the test
//! so the list cannot go stale.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use quai_mappings::validate::validate;
use quai_mappings::Severity;

const KNOWN: &[(&str, &str)] = &[
    (
        "ubl/oasis-ubl-examples/UBL-Invoice-2.1-Example-Trivial.xml",
        "plain OASIS sample, not an EN 16931 invoice: it lacks BT-106, BT-146 and more; the \
         official rules also fire BR-27, BR-CO-10, BR-CO-13, BR-CO-16 on the missing operands, \
         which quai reports once through the presence rules (BR-12, BR-26, ...)",
    ),
    (
        "ubl/oasis-ubl-examples/UBL-Invoice-2.0-Example.xml",
        "UBL 2.0 sample, not EN 16931: the official rules fire BR-47 and BR-CO-16 on tax \
         categories and totals the model reads differently",
    ),
    (
        "ubl/oasis-ubl-examples/UBL-CreditNote-2.0-Example.xml",
        "UBL 2.0 sample, not EN 16931 (as UBL-Invoice-2.0-Example.xml)",
    ),
];

/// `FAIL 3 fatal: BR-CL-10x3, BR-CO-16; ...` -> {BR-CL-10, BR-CO-16}.
fn official(column: &str) -> BTreeSet<String> {
    if column == "pass" {
        return BTreeSet::new();
    }
    let list = column.split_once(':').map_or("", |(_, l)| l);
    list.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|s| s.starts_with("BR-"))
        .map(|s| {
            // Strip a repeat count: BR-CL-10x3.
            match s.rfind('x') {
                Some(i) if s[i + 1..].chars().all(|c| c.is_ascii_digit()) && i + 1 < s.len() => {
                    s[..i].to_string()
                }
                _ => s.to_string(),
            }
        })
        .collect()
}

#[test]
fn fatal_business_rules_match_the_official_artefacts_on_whole_invoices() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let (mut checked, mut agree) = (0usize, 0usize);
    let mut unexpected = Vec::new();
    let mut known_seen = BTreeSet::new();
    for syntax in ["ubl", "cii"] {
        let manifest = std::fs::read_to_string(root.join(syntax).join("MANIFEST.tsv"))
            .expect("fixture manifest");
        let mut lines = manifest.lines();
        let header: Vec<&str> = lines.next().unwrap_or("").split('\t').collect();
        let col = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .expect("manifest column")
        };
        let (path_col, en_col) = (col("path"), col("en16931"));
        for line in lines.filter(|l| !l.trim().is_empty()) {
            let cols: Vec<&str> = line.split('\t').collect();
            let (path, en) = (cols[path_col], cols[en_col]);
            if en == "n/a" || !(en == "pass" || en.starts_with("FAIL")) {
                continue;
            }
            let file = File::open(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
            let outcome = match syntax {
                "ubl" => quai_mappings::ubl::read(BufReader::new(file)),
                _ => quai_mappings::cii::read(BufReader::new(file)),
            };
            let Ok(outcome) = outcome else {
                // Unreadable documents are the readers' conformance, not ours.
                continue;
            };
            checked += 1;
            let got: BTreeSet<String> = validate(&outcome.invoice)
                .into_iter()
                .filter(|v| v.severity == Severity::Fatal)
                .map(|v| v.rule)
                .collect();
            let want = official(en);
            let known = KNOWN.iter().find(|(f, _)| *f == path);
            if got == want {
                agree += 1;
                if known.is_some() {
                    unexpected.push(format!("{path}: now agrees, remove it from KNOWN"));
                }
            } else if known.is_some() {
                known_seen.insert(path.to_string());
            } else {
                let extra: Vec<_> = got.difference(&want).collect();
                let missing: Vec<_> = want.difference(&got).collect();
                unexpected.push(format!(
                    "{path}: quai also fires {extra:?}, misses {missing:?}"
                ));
            }
        }
    }
    println!("whole invoices: {checked} checked, {agree} with the same fatal BR set, {} known differences", known_seen.len());
    assert!(
        checked > 150,
        "expected the corpus fixtures, found {checked}"
    );
    assert!(unexpected.is_empty(), "{}", unexpected.join("\n"));
}
