//! The objects a flow carries inside its documents, for a malware scanner.
//!
//! Why: a scanner given a flow's bytes unpacks archives and PDFs itself,
//! but not the base64 binary objects of an XML invoice (BG-24 attachments,
//! BT-125: `EmbeddedDocumentBinaryObject` in UBL, `AttachmentBinaryObject`
//! in CII), which is where an invoice can carry anything. [`walk`] goes
//! through a flow as the readers do ([`crate::unpack`] under the same
//! limits, the hardened XML driver) and hands the scanner, one at a time
//! and a piece at a time:
//!
//! - every base64 element whose name ends in `BinaryObject`, decoded, in any
//!   XML document of the flow (whatever its root, in any namespace);
//! - every PDF document, and the binary objects of the invoice XML embedded
//!   in it (Factur-X, ZUGFeRD).
//!
//! A document the readers would refuse (not well-formed, a broken PDF) is
//! scanned as far as it can be read; the flow's own processing answers for
//! it. Nothing is kept: decoded bytes go to the sink as they are read (a
//! PDF is loaded whole, as [`crate::facturx`] does, within the per-document
//! limit).

use std::io::Read;
use std::path::Path;

use crate::detect::Format;
use crate::flow::FlowLimits;
use crate::unpack::{self, UnpackError};
use crate::xml::{self, Attrs, Handler, TextMode};

/// What an object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A base64 binary object of an XML document.
    Attachment,
    /// A PDF document of the flow.
    Pdf,
}

/// One object handed to an [`ObjectSink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The document's path in the flow (`batch.zip/inv-1.xml`).
    pub entry: String,
    pub kind: ObjectKind,
    /// The object's `filename` attribute, for attachments.
    pub filename: Option<String>,
}

impl std::fmt::Display for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.kind, &self.filename) {
            (ObjectKind::Pdf, _) => write!(f, "{}", self.entry),
            (ObjectKind::Attachment, Some(n)) => write!(f, "{} (attachment {n:?})", self.entry),
            (ObjectKind::Attachment, None) => write!(f, "{} (an attachment)", self.entry),
        }
    }
}

/// Receives the objects of a flow: `begin`, `bytes` any number of times,
/// `end`. An error stops the walk and is returned by [`walk`].
pub trait ObjectSink {
    type Error;
    fn begin(&mut self, object: &Object) -> Result<(), Self::Error>;
    fn bytes(&mut self, bytes: &[u8]) -> Result<(), Self::Error>;
    fn end(&mut self) -> Result<(), Self::Error>;
}

/// Hand every embedded object of the flow at `path` to `sink`. Faults of
/// the flow itself (limits, damage) end the walk quietly: the readers
/// report them.
pub fn walk<S: ObjectSink>(
    path: &Path,
    name: &str,
    limits: &FlowLimits,
    sink: &mut S,
) -> Result<(), S::Error> {
    // The limits the readers unpack under (`flow::process`).
    let limits = unpack::Limits {
        max_total_unpacked: limits.max_unpacked_bytes,
        max_ratio: limits.max_ratio,
        max_entries: limits.max_entries,
        max_entry_bytes: limits.max_document_bytes,
        ..unpack::Limits::default()
    };
    let max_pdf = limits.max_entry_bytes;
    let res = unpack::walk(path, name, &limits, &mut |entry| match entry.format {
        Format::Ubl | Format::Cii | Format::ZugferdV1 | Format::Cdar | Format::OtherXml => {
            xml_objects(entry.reader, entry.path, sink)
        }
        Format::Pdf => {
            let mut pdf = Vec::new();
            if entry
                .reader
                .take(max_pdf.saturating_add(1))
                .read_to_end(&mut pdf)
                .is_err()
            {
                return Ok(());
            }
            let object = Object {
                entry: entry.path.to_string(),
                kind: ObjectKind::Pdf,
                filename: None,
            };
            sink.begin(&object)?;
            for piece in pdf.chunks(64 * 1024) {
                sink.bytes(piece)?;
            }
            sink.end()?;
            if let Ok(embedded) = crate::facturx::extract_bytes(&pdf) {
                drop(pdf);
                let inner = format!("{}/{}", entry.path, embedded.file_name);
                xml_objects(&mut &embedded.xml[..], &inner, sink)?;
            }
            Ok(())
        }
        _ => Ok(()),
    });
    match res {
        Err(UnpackError::Visit(e)) => Err(e),
        _ => Ok(()),
    }
}

/// The binary objects of one XML document.
fn xml_objects<S: ObjectSink>(
    reader: &mut dyn std::io::BufRead,
    entry: &str,
    sink: &mut S,
) -> Result<(), S::Error> {
    let mut h = Objects {
        entry,
        sink,
        open: false,
        failed: None,
    };
    // Not well-formed: scanned as far as it goes, refused by the readers.
    let _ = xml::drive(reader, &mut h);
    if let Some(e) = h.failed.take() {
        return Err(e);
    }
    if h.open {
        h.sink.end()?;
    }
    Ok(())
}

struct Objects<'a, S: ObjectSink> {
    entry: &'a str,
    sink: &'a mut S,
    /// An object has begun and not ended.
    open: bool,
    /// The sink's first error; nothing more is sent after it.
    failed: Option<S::Error>,
}

fn is_binary_object(path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or(path);
    last.trim_start_matches('~').ends_with("BinaryObject")
}

impl<S: ObjectSink> Handler for Objects<'_, S> {
    fn known_namespace(&self, _ns: &str) -> bool {
        true
    }

    fn root(&mut self, _ns: &str, _local: &str) -> Result<(), String> {
        Ok(())
    }

    fn start(&mut self, path: &str, attrs: &Attrs<'_>) -> TextMode {
        if self.failed.is_some() || !is_binary_object(path) {
            return TextMode::Keep;
        }
        let object = Object {
            entry: self.entry.to_string(),
            kind: ObjectKind::Attachment,
            filename: attrs.owned("filename"),
        };
        match self.sink.begin(&object) {
            Ok(()) => {
                self.open = true;
                TextMode::Base64Bytes
            }
            Err(e) => {
                self.failed = Some(e);
                TextMode::Keep
            }
        }
    }

    fn binary(&mut self, bytes: &[u8]) {
        if self.open && self.failed.is_none() {
            if let Err(e) = self.sink.bytes(bytes) {
                self.failed = Some(e);
            }
        }
    }

    fn end(&mut self, _path: &str, _attrs: &Attrs<'_>, _text: &str, binary_size: Option<u64>) {
        let _ = binary_size;
        if self.open {
            self.open = false;
            if self.failed.is_none() {
                if let Err(e) = self.sink.end() {
                    self.failed = Some(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Vec<(Object, Vec<u8>)>);

    impl ObjectSink for Collect {
        type Error = ();
        fn begin(&mut self, o: &Object) -> Result<(), ()> {
            self.0.push((o.clone(), Vec::new()));
            Ok(())
        }
        fn bytes(&mut self, b: &[u8]) -> Result<(), ()> {
            self.0.last_mut().unwrap().1.extend_from_slice(b);
            Ok(())
        }
        fn end(&mut self) -> Result<(), ()> {
            Ok(())
        }
    }

    #[test]
    fn base64_objects_of_ubl_and_cii_are_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let ubl = dir.path().join("inv.xml");
        std::fs::write(
            &ubl,
            "<Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\" \
             xmlns:cac=\"urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2\" \
             xmlns:cbc=\"urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2\">\
             <cac:AdditionalDocumentReference><cbc:ID>1</cbc:ID><cac:Attachment>\
             <cbc:EmbeddedDocumentBinaryObject mimeCode=\"text/plain\" filename=\"a.txt\">\
             aGVsbG8g\nd29y bGQ=</cbc:EmbeddedDocumentBinaryObject></cac:Attachment>\
             </cac:AdditionalDocumentReference>\
             <x:AttachmentBinaryObject xmlns:x=\"urn:other\"><![CDATA[Ynll]]></x:AttachmentBinaryObject>\
             </Invoice>",
        )
        .unwrap();
        let mut c = Collect::default();
        walk(&ubl, "inv.xml", &FlowLimits::default(), &mut c).unwrap();
        assert_eq!(c.0.len(), 2);
        assert_eq!(c.0[0].0.filename.as_deref(), Some("a.txt"));
        assert_eq!(c.0[0].1, b"hello world");
        assert_eq!(c.0[1].1, b"bye");
    }
}
