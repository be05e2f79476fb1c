//! The bench's flow generator against the real reader and validator.
//!
//! Generates a small set of each kind and runs every flow through
//! `quai_mappings::flow::process` (the daemon's own path): each invoice the
//! manifest lists as invalid must be rejected with exactly the fatal rules
//! recorded for it, and every other invoice must be accepted. This checks
//! the generator (totals computed right, defects breaking what they claim)
//! and, the other way round, that the validator agrees with EN 16931
//! arithmetic done independently here.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use quai_bench::gen;
use quai_mappings::flow::{self, DocumentResult, FlowEnd, FlowLimits};
use quai_mappings::Severity;

fn options(kind: gen::Kind, out: &Path, seed: u64) -> gen::Options {
    gen::Options {
        kind,
        flows: 2,
        invoices: 30,
        lines_min: 1,
        lines_max: 6,
        invalid_share: 0.3,
        seed,
        run_id: None,
        out: out.to_path_buf(),
    }
}

/// Generate, process, and compare every document with the manifest.
fn check_kind(kind: gen::Kind) {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = options(kind, dir.path(), 42);
    let manifest = gen::generate(&opts, 2).expect("generate");
    assert_eq!(manifest.flows.len(), 2);
    assert_eq!(manifest.invoices, 60);
    assert_eq!(manifest.rejected, 18, "30 % of 2 × 30 invoices");
    let expected_json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("expected.json")).expect("expected.json written"),
    )
    .expect("expected.json is JSON");
    assert_eq!(expected_json["invoices"], 60);

    let mut numbers = BTreeSet::new();
    let mut kinds_seen = BTreeSet::new();
    for f in &manifest.flows {
        let path = dir.path().join(&f.file);
        let invalid: HashMap<usize, &gen::InvalidEntry> =
            f.invalid.iter().map(|e| (e.index, e)).collect();
        let mut seen = 0usize;
        let mut rejected = 0usize;
        let mut problems = Vec::new();
        let end = flow::process(&path, &f.file, &FlowLimits::default(), &mut |doc| {
            seen += 1;
            let idx = doc.index as usize;
            if doc.is_rejected() {
                rejected += 1;
            }
            match &doc.result {
                DocumentResult::Unreadable { rule, message } => {
                    problems.push(format!("{}: unreadable {rule}: {message}", doc.entry))
                }
                DocumentResult::Mapped {
                    invoice,
                    violations,
                } => {
                    let fatal: BTreeSet<&str> = violations
                        .iter()
                        .filter(|v| v.severity == Severity::Fatal)
                        .map(|v| v.rule.as_str())
                        .collect();
                    let want: BTreeSet<&str> = invalid
                        .get(&idx)
                        .map(|e| e.rules.iter().copied().collect())
                        .unwrap_or_default();
                    if fatal != want {
                        problems.push(format!(
                            "{} (#{idx}, {:?}): fatal rules {fatal:?}, expected {want:?}: {:?}",
                            doc.entry,
                            invoice.number,
                            violations.iter().map(|v| &v.message).collect::<Vec<_>>()
                        ));
                    }
                    if let Some(e) = invalid.get(&idx) {
                        assert_eq!(invoice.number.as_deref(), Some(e.number.as_str()));
                        kinds_seen.insert(e.rule);
                    }
                    numbers.insert(invoice.number.clone().unwrap_or_default());
                    assert!(!invoice.lines.is_empty() && invoice.lines.len() <= 6);
                }
            }
            Ok(())
        });
        assert!(
            matches!(end, FlowEnd::Done(_)),
            "{kind:?} flow {} was not processed: {end:?}",
            f.file
        );
        assert!(problems.is_empty(), "{kind:?}:\n{}", problems.join("\n"));
        assert_eq!(seen, f.invoices, "{}: documents", f.file);
        assert_eq!(rejected, f.rejected, "{}: rejected", f.file);
    }
    assert_eq!(numbers.len(), 60, "invoice numbers are unique across flows");
    assert_eq!(
        kinds_seen.len(),
        gen::Defect::ALL.len(),
        "every defect kind appears: {kinds_seen:?}"
    );
}

#[test]
fn ubl_zip_counts_match_the_validator() {
    check_kind(gen::Kind::UblZip);
}

#[test]
fn cii_zip_counts_match_the_validator() {
    check_kind(gen::Kind::CiiZip);
}

#[test]
fn ubl_targz_counts_match_the_validator() {
    check_kind(gen::Kind::UblTargz);
}

/// One gzipped INVOIC D96A interchange per flow, through the EDIFACT reader.
#[test]
fn edifact_gz_counts_match_the_validator() {
    check_kind(gen::Kind::EdifactGz);
}

#[test]
fn generation_is_deterministic_and_seeded() {
    let a = tempfile::tempdir().expect("temp dir");
    let b = tempfile::tempdir().expect("temp dir");
    let c = tempfile::tempdir().expect("temp dir");
    gen::generate(&options(gen::Kind::UblTargz, a.path(), 7), 1).expect("generate");
    gen::generate(&options(gen::Kind::UblTargz, b.path(), 7), 2).expect("generate");
    gen::generate(&options(gen::Kind::UblTargz, c.path(), 8), 1).expect("generate");
    let name = "R7-flow-00001.tar.gz";
    let read = |d: &Path, n: &str| std::fs::read(d.join(n)).expect("flow");
    assert_eq!(read(a.path(), name), read(b.path(), name));
    assert_ne!(
        read(a.path(), "expected.json"),
        read(c.path(), "expected.json")
    );
}

#[test]
fn small_invoices_are_about_five_kilobytes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = options(gen::Kind::UblZip, dir.path(), 3);
    opts.lines_max = 3;
    let m = gen::generate(&opts, 1).expect("generate");
    let avg = m.unpacked_bytes / m.invoices as u64;
    assert!(
        (4_000..=6_500).contains(&avg),
        "average UBL size {avg} bytes"
    );
}

#[test]
fn edifact_counts_are_consistent() {
    let mut rng = gen::Rng::new(1);
    let inv = gen::build_invoice(&mut rng, "T", 0, 0, 3, None);
    let mut msg = String::new();
    gen::write_edifact_message(&inv, 1, &mut msg);
    let segments: Vec<&str> = msg.split("'\n").filter(|s| !s.is_empty()).collect();
    let unt = segments.last().expect("UNT");
    assert_eq!(*unt, format!("UNT+{}+1", segments.len()));
    assert!(segments[0].starts_with("UNH+1+INVOIC:D:96A:UN"));
    assert_eq!(segments.iter().filter(|s| s.starts_with("LIN+")).count(), 3);
}
