//! One flow, from its stored bytes to documents with verdicts.
//!
//! `process` opens the flow (unpacking archives under limits), detects each
//! document's format from its content, maps it with the right reader,
//! validates it, and hands each result to the caller one at a time, so a flow
//! of any size runs in bounded memory. A flow that cannot be read as a whole
//! ends in a [`FlowReject`] carrying the platform's IRR_* reason; a single
//! document that cannot be read is a rejected document, and the rest of the
//! flow goes on.

use std::io::BufRead;
use std::path::Path;

use crate::detect::Format;
use crate::model::{Invoice, ReadOutcome, Syntax, Violation};
use crate::positions::Positions;
use crate::{cii, edifact, facturx, ubl, unpack, validate, ReadError};

/// Limits applied while reading one flow.
#[derive(Debug, Clone)]
pub struct FlowLimits {
    /// Most invoices a flow may hold (the platform's cap is 500).
    pub max_invoices: u64,
    /// Most bytes once unpacked, all entries together.
    pub max_unpacked_bytes: u64,
    /// Most unpacked bytes per packed byte.
    pub max_ratio: u64,
    /// Most entries in archives.
    pub max_entries: u64,
    /// Largest single document.
    pub max_document_bytes: u64,
}

impl Default for FlowLimits {
    fn default() -> Self {
        FlowLimits {
            max_invoices: 500,
            max_unpacked_bytes: 4 << 30,
            max_ratio: 100,
            max_entries: 10_000,
            max_document_bytes: 256 << 20,
        }
    }
}

/// What became of one document.
#[derive(Debug, Clone)]
pub enum DocumentResult {
    /// Mapped; `violations` holds syntax issues and rule violations (fatal
    /// ones make it a reject).
    Mapped {
        invoice: Box<Invoice>,
        violations: Vec<Violation>,
    },
    /// Could not be read at all.
    Unreadable { rule: String, message: String },
}

/// One document of a flow.
#[derive(Debug, Clone)]
pub struct Document {
    /// 0-based position in the flow, stable across reprocessing.
    pub index: u64,
    /// Path inside the flow (`batch.zip/inv-1.xml`) or the flow's own name.
    pub entry: String,
    pub syntax: Option<Syntax>,
    pub result: DocumentResult,
    /// True once the EN 16931 rules ran on it (always, from [`process`];
    /// documents from [`process_unvalidated`] wait for [`Document::validate`]).
    pub validated: bool,
    /// Where the reader found the terms, for the rules' findings; dropped
    /// once the document is validated.
    pub positions: Positions,
}

impl Document {
    /// Run the EN 16931 rules on a mapped document, once. A caller may do
    /// this on another thread than the reading one ([`process_unvalidated`]).
    pub fn validate(&mut self) {
        self.validate_with(&validate::Layers::NONE)
    }

    /// Run the EN 16931 rules and the given layers (e.g. the French CTC
    /// rules) on a mapped document, once.
    pub fn validate_with(&mut self, layers: &validate::Layers) {
        if self.validated {
            return;
        }
        self.validated = true;
        let positions = std::mem::take(&mut self.positions);
        if let DocumentResult::Mapped {
            invoice,
            violations,
        } = &mut self.result
        {
            violations.extend(validate::validate_placed(invoice, Some(&positions)));
            let start = violations.len();
            violations.extend(validate::validate_layers(invoice, layers));
            for v in &mut violations[start..] {
                v.place_by(&positions, crate::positions::At::Header);
            }
        }
    }

    /// True when the document is rejected (unreadable, or a fatal violation).
    pub fn is_rejected(&self) -> bool {
        match &self.result {
            DocumentResult::Unreadable { .. } => true,
            DocumentResult::Mapped { violations, .. } => violations
                .iter()
                .any(|v| v.severity == crate::model::Severity::Fatal),
        }
    }
}

/// Why a whole flow is inadmissible, with the platform's reason code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct FlowReject {
    /// IRR_VIDE_F, IRR_TYPE_F, IRR_SYNTAX, IRR_TAILLE_F...
    pub code: &'static str,
    pub message: String,
}

/// The consumer of documents asked to stop (e.g. shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop;

/// Counts of a processed flow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowSummary {
    pub documents: u64,
    pub rejected: u64,
}

/// Outcome of [`process`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowEnd {
    Done(FlowSummary),
    Rejected(FlowReject),
    Stopped,
    /// quai could not read its own copy of the flow (an I/O error of the
    /// store or of a temporary folder): not the partner's fault, so the flow
    /// is not rejected; it is tried again later.
    Failed(String),
}

/// Read every document of the flow stored at `path` (`name` is the name the
/// partner gave it), calling `on_document` for each in order, validated.
pub fn process(
    path: &Path,
    name: &str,
    limits: &FlowLimits,
    on_document: &mut dyn FnMut(Document) -> Result<(), Stop>,
) -> FlowEnd {
    walk_flow(path, name, limits, true, on_document)
}

/// Like [`process`], but mapped documents are handed over before the EN
/// 16931 rules ran on them: the caller calls [`Document::validate`] on each
/// (typically on another thread, so one large flow uses two cores). The
/// summary's `rejected` then counts only the documents that could not be
/// read; the caller counts the rest after validating.
pub fn process_unvalidated(
    path: &Path,
    name: &str,
    limits: &FlowLimits,
    on_document: &mut dyn FnMut(Document) -> Result<(), Stop>,
) -> FlowEnd {
    walk_flow(path, name, limits, false, on_document)
}

fn walk_flow(
    path: &Path,
    name: &str,
    limits: &FlowLimits,
    validate_now: bool,
    on_document: &mut dyn FnMut(Document) -> Result<(), Stop>,
) -> FlowEnd {
    let unpack_limits = unpack::Limits {
        max_total_unpacked: limits.max_unpacked_bytes,
        max_ratio: limits.max_ratio,
        max_entries: limits.max_entries,
        max_entry_bytes: limits.max_document_bytes,
        ..unpack::Limits::default()
    };
    let mut summary = FlowSummary::default();
    let mut plain_reject: Option<FlowReject> = None;
    let walked = unpack::walk(path, name, &unpack_limits, &mut |entry: unpack::Entry<
        '_,
    >|
     -> Result<(), Halt> {
        let depth = entry.depth;
        // Numbers each document in flow order as it is emitted.
        let mut emit = |mut doc: Document| -> Result<(), Halt> {
            if summary.documents >= limits.max_invoices {
                return Err(Halt::TooMany);
            }
            doc.index = summary.documents;
            summary.documents += 1;
            if validate_now {
                doc.validate();
            }
            if doc.is_rejected() {
                summary.rejected += 1;
            }
            on_document(doc).map_err(|Stop| Halt::Stop)
        };
        let outcome = read_entry(entry.format, entry.path, entry.reader, &mut emit)?;
        // A flow that is one plain document which cannot be read at all is
        // inadmissible as a whole (IRR_*), not a rejected invoice.
        if depth == 0 {
            if let EntryOutcome::Inadmissible(reject) = outcome {
                plain_reject = Some(reject);
            }
        } else if let EntryOutcome::Inadmissible(reject) = outcome {
            emit(Document {
                index: 0,
                entry: entry.path.to_string(),
                syntax: None,
                result: DocumentResult::Unreadable {
                    rule: reject.code.to_string(),
                    message: reject.message,
                },
                validated: true,
                positions: Positions::default(),
            })?;
        }
        Ok(())
    });
    match walked {
        Ok(_) => match plain_reject {
            Some(reject) => FlowEnd::Rejected(reject),
            None => FlowEnd::Done(summary),
        },
        Err(unpack::UnpackError::Visit(Halt::Stop)) => FlowEnd::Stopped,
        Err(unpack::UnpackError::Visit(Halt::TooMany)) => FlowEnd::Rejected(FlowReject {
            code: "IRR_TAILLE_F",
            message: format!(
                "the flow holds more than {} invoices, the limit per flow",
                limits.max_invoices
            ),
        }),
        Err(e) if !e.is_flow_fault() => FlowEnd::Failed(e.to_string()),
        Err(e) => FlowEnd::Rejected(FlowReject {
            code: e.irr_code(),
            message: e.to_string(),
        }),
    }
}

/// Copy the bytes of one document of the flow stored at `path` (named
/// `name`) to `out`: the `occurrence`-th (0-based) leaf whose path is
/// `entry` (a document's [`Document::entry`]; an archive may hold one name
/// twice), walked under the same limits as [`process`]. Ok(false) when no
/// such leaf exists. An EDIFACT message (`entry#reference`) has no bytes of
/// its own: Ok(false).
pub fn copy_document(
    path: &Path,
    name: &str,
    limits: &FlowLimits,
    entry: &str,
    occurrence: u64,
    out: &mut dyn std::io::Write,
) -> std::io::Result<bool> {
    let unpack_limits = unpack::Limits {
        max_total_unpacked: limits.max_unpacked_bytes,
        max_ratio: limits.max_ratio,
        max_entries: limits.max_entries,
        max_entry_bytes: limits.max_document_bytes,
        ..unpack::Limits::default()
    };
    enum Copy {
        Done,
        Failed(std::io::Error),
    }
    impl std::fmt::Display for Copy {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                Copy::Done => f.write_str("copied"),
                Copy::Failed(e) => write!(f, "{e}"),
            }
        }
    }
    let mut seen = 0u64;
    let walked = unpack::walk(path, name, &unpack_limits, &mut |e: unpack::Entry<'_>| {
        if e.path != entry {
            return Ok(());
        }
        if seen < occurrence {
            seen += 1;
            return Ok(());
        }
        match std::io::copy(e.reader, out) {
            Ok(_) => Err(Copy::Done),
            Err(err) => Err(Copy::Failed(err)),
        }
    });
    match walked {
        Ok(_) => Ok(false),
        Err(unpack::UnpackError::Visit(Copy::Done)) => Ok(true),
        Err(unpack::UnpackError::Visit(Copy::Failed(e))) => Err(e),
        Err(e) => Err(std::io::Error::other(e.to_string())),
    }
}

/// Why the walk was stopped from inside.
#[derive(Debug)]
enum Halt {
    Stop,
    TooMany,
}

impl std::fmt::Display for Halt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Halt::Stop => f.write_str("stopped"),
            Halt::TooMany => f.write_str("too many invoices"),
        }
    }
}

enum EntryOutcome {
    /// Documents were emitted.
    Emitted,
    /// The entry is not something quai can read at all.
    Inadmissible(FlowReject),
}

fn mapped(syntax: Syntax, entry: &str, outcome: ReadOutcome) -> Document {
    let mut violations = outcome.issues;
    violations.extend(outcome.structure);
    Document {
        positions: outcome.positions,
        index: 0,
        entry: entry.to_string(),
        syntax: Some(syntax),
        result: DocumentResult::Mapped {
            invoice: Box::new(outcome.invoice),
            violations,
        },
        validated: false,
    }
}

fn syntax_reject(what: &str, e: ReadError) -> FlowReject {
    FlowReject {
        code: "IRR_SYNTAX",
        message: format!("{what}: {e}"),
    }
}

/// Map one leaf of the flow; emits its documents (`emit` numbers them).
fn read_entry(
    format: Format,
    entry: &str,
    reader: &mut dyn BufRead,
    emit: &mut dyn FnMut(Document) -> Result<(), Halt>,
) -> Result<EntryOutcome, Halt> {
    match format {
        Format::Ubl => match ubl::read(reader) {
            Ok(outcome) => emit(mapped(Syntax::Ubl, entry, outcome)).map(|()| EntryOutcome::Emitted),
            Err(e) => Ok(EntryOutcome::Inadmissible(syntax_reject("the UBL document cannot be read", e))),
        },
        Format::Cii => match cii::read(reader) {
            Ok(outcome) => emit(mapped(Syntax::Cii, entry, outcome)).map(|()| EntryOutcome::Emitted),
            Err(e) => Ok(EntryOutcome::Inadmissible(syntax_reject("the CII document cannot be read", e))),
        },
        Format::ZugferdV1 => Ok(EntryOutcome::Inadmissible(FlowReject {
            code: "IRR_TYPE_F",
            message: "ZUGFeRD 1.0 (CrossIndustryDocument) is not accepted: send Factur-X / ZUGFeRD 2.x, UBL or CII".into(),
        })),
        Format::Pdf => read_pdf(entry, reader, emit),
        Format::Edifact => read_interchange(entry, reader, emit),
        Format::Cdar => Ok(EntryOutcome::Inadmissible(FlowReject {
            code: "IRR_TYPE_F",
            message: "this is a lifecycle status (CDAR), not an invoice: send statuses as a flow of their own".into(),
        })),
        Format::OtherXml => Ok(EntryOutcome::Inadmissible(FlowReject {
            code: "IRR_TYPE_F",
            message: "this XML document is not an invoice quai accepts (UBL 2.1 Invoice/CreditNote, UN/CEFACT CII)".into(),
        })),
        Format::Unknown | Format::Gzip | Format::Zip | Format::Tar => Ok(EntryOutcome::Inadmissible(FlowReject {
            code: "IRR_TYPE_F",
            message: "unknown format: expected UBL, CII, Factur-X PDF, EDIFACT, or a zip/tar/gzip of those".into(),
        })),
    }
}

/// An EDIFACT interchange: one document per message. A broken envelope
/// (no UNZ, an unterminated segment, a wrong UNZ count) makes the whole
/// interchange inadmissible (IRR_SYNTAX): its messages cannot be trusted.
fn read_interchange(
    entry: &str,
    reader: &mut dyn BufRead,
    emit: &mut dyn FnMut(Document) -> Result<(), Halt>,
) -> Result<EntryOutcome, Halt> {
    let mut interchange = edifact::Interchange::new(reader);
    for item in interchange.by_ref() {
        let message = match item {
            Ok(m) => m,
            Err(e) => {
                return Ok(EntryOutcome::Inadmissible(syntax_reject(
                    "the EDIFACT interchange is broken",
                    e,
                )));
            }
        };
        let doc_entry = format!("{entry}#{}", message.reference);
        let doc = match message.result {
            Ok(outcome) => mapped(Syntax::Edifact, &doc_entry, outcome),
            Err(e) => Document {
                index: 0,
                entry: doc_entry,
                syntax: Some(Syntax::Edifact),
                result: DocumentResult::Unreadable {
                    rule: "SYNTAX".to_string(),
                    message: e.to_string(),
                },
                validated: true,
                positions: Positions::default(),
            },
        };
        emit(doc)?;
    }
    // A UNZ count that does not match means messages were lost or added in
    // transit: the interchange is refused. A wrong UNT count is reported on
    // its message (a warning), and a UNZ reference that differs from UNB's is
    // tolerated: every official EN 16931 EDIFACT example has one.
    let lost = interchange
        .envelope_issues()
        .iter()
        .find(|i| i.kind == edifact::EnvelopeIssueKind::UnzCount);
    if let Some(issue) = lost {
        return Ok(EntryOutcome::Inadmissible(FlowReject {
            code: "IRR_SYNTAX",
            message: format!(
                "the EDIFACT interchange envelope is wrong: {}",
                issue.message
            ),
        }));
    }
    Ok(EntryOutcome::Emitted)
}

/// A Factur-X / ZUGFeRD PDF: the embedded CII is the invoice. A PDF needs
/// random access, so this one document is read into memory; its size is
/// capped by the walker's per-document limit.
fn read_pdf(
    entry: &str,
    reader: &mut dyn BufRead,
    emit: &mut dyn FnMut(Document) -> Result<(), Halt>,
) -> Result<EntryOutcome, Halt> {
    let mut pdf = Vec::new();
    if let Err(e) = reader.read_to_end(&mut pdf) {
        return Ok(EntryOutcome::Inadmissible(FlowReject {
            code: "IRR_SYNTAX",
            message: format!("the PDF cannot be read: {e}"),
        }));
    }
    let embedded = match facturx::extract_bytes(&pdf) {
        Ok(e) => e,
        Err(e) => {
            return Ok(EntryOutcome::Inadmissible(FlowReject {
                code: "IRR_TYPE_F",
                message: format!(
                    "{}: a PDF is accepted only as Factur-X / ZUGFeRD 2.x with its invoice XML embedded",
                    e.message
                ),
            }))
        }
    };
    drop(pdf);
    match facturx::map_embedded(embedded) {
        Ok(outcome) => {
            emit(mapped(Syntax::FacturX, entry, outcome)).map(|()| EntryOutcome::Emitted)
        }
        Err(e) => Ok(EntryOutcome::Inadmissible(syntax_reject(
            "the Factur-X XML cannot be read",
            e,
        ))),
    }
}
