//! `process_unvalidated` + `Document::validate` (validation on another
//! thread) must give exactly what `process` gives, over the whole corpus.

use std::path::{Path, PathBuf};

use quai_mappings::flow::{self, Document, DocumentResult, FlowEnd, FlowLimits};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if !matches!(
            p.extension().and_then(|x| x.to_str()),
            Some("md") | Some("tsv")
        ) {
            out.push(p);
        }
    }
}

/// (index, entry, validated, rejected, every violation as rule/severity/message)
type Seen = Vec<(u64, String, bool, bool, Vec<String>)>;

fn seen(doc: &Document) -> (u64, String, bool, bool, Vec<String>) {
    let violations = match &doc.result {
        DocumentResult::Mapped { violations, .. } => violations
            .iter()
            .map(|v| format!("{} {:?} {}", v.rule, v.severity, v.message))
            .collect(),
        DocumentResult::Unreadable { rule, message } => vec![format!("{rule} {message}")],
    };
    (
        doc.index,
        doc.entry.clone(),
        doc.validated,
        doc.is_rejected(),
        violations,
    )
}

fn run(path: &Path, deferred: bool) -> (Seen, FlowEnd) {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let mut out = Vec::new();
    let mut rejected = 0;
    let mut on_doc = |mut doc: Document| {
        if deferred {
            assert!(
                doc.validated || matches!(doc.result, DocumentResult::Mapped { .. }),
                "only mapped documents wait for validation"
            );
            doc.validate();
            if doc.is_rejected() {
                rejected += 1;
            }
        }
        out.push(seen(&doc));
        Ok(())
    };
    let mut end = if deferred {
        flow::process_unvalidated(path, name, &FlowLimits::default(), &mut on_doc)
    } else {
        flow::process(path, name, &FlowLimits::default(), &mut on_doc)
    };
    if let FlowEnd::Done(summary) = &mut end {
        if deferred {
            summary.rejected = rejected;
        }
    }
    (out, end)
}

#[test]
fn validating_later_gives_what_process_gives() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut all = Vec::new();
    files(&root, &mut all);
    all.sort();
    assert!(all.len() > 200, "corpus fixtures present ({})", all.len());
    let mut documents = 0;
    for path in &all {
        let (now, end_now) = run(path, false);
        let (later, end_later) = run(path, true);
        assert_eq!(now, later, "{}", path.display());
        assert_eq!(end_now, end_later, "{}", path.display());
        assert!(now.iter().all(|d| d.2), "process validates every document");
        documents += now.len();
    }
    assert!(documents > 200, "documents read: {documents}");
}
