//! Factur-X / ZUGFeRD: find the embedded CII XML inside a PDF/A-3.
//!
//! A hybrid invoice is a PDF/A-3 whose embedded file (`factur-x.xml`,
//! `zugferd-invoice.xml`, `ZUGFeRD-invoice.xml` or `xrechnung.xml`) is the
//! legally binding invoice. A PDF needs random access, so the caller hands
//! over a size-capped document and lopdf parses it; the embedded file is
//! found through the catalog's `/Names /EmbeddedFiles` name tree and its
//! `/AF` (associated files) array, its stream is inflated under a cap
//! ([`MAX_XML_BYTES`], so a deflate bomb cannot grow memory), and the CII
//! reader maps it. The XMP metadata's `fx:ConformanceLevel` names the
//! profile when BT-24 does not. PDFs come from outside: every lopdf error
//! is a [`ReadError`], and lopdf is run under `catch_unwind` because some
//! malformed inputs make it panic.

use std::io::{Read, Seek, SeekFrom};
use std::panic::{catch_unwind, AssertUnwindSafe};

use lopdf::{Dictionary, Document, Object};

use crate::model::{Profile, Syntax, Violation};
use crate::{ReadError, ReadOutcome};

/// Largest embedded XML accepted once inflated.
pub const MAX_XML_BYTES: usize = 64 * 1024 * 1024;
/// Largest XMP metadata stream looked at.
const MAX_XMP_BYTES: usize = 4 * 1024 * 1024;
/// Embedded file names that carry the invoice, in order of preference.
pub const INVOICE_FILE_NAMES: &[&str] = &["factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml"];

/// The invoice XML found in a PDF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedInvoice {
    /// Name of the embedded file as written in the PDF.
    pub file_name: String,
    /// The XML, inflated.
    pub xml: Vec<u8>,
    /// `fx:ConformanceLevel` from the XMP metadata, when present.
    pub conformance_level: Option<String>,
}

fn pdf_error(msg: impl Into<String>) -> ReadError {
    ReadError::new(msg, 0)
}

/// Find the embedded Factur-X / ZUGFeRD / XRechnung XML in a PDF read from
/// `input` (the whole PDF is loaded: the caller caps its size).
pub fn extract(mut input: impl Read + Seek) -> Result<EmbeddedInvoice, ReadError> {
    input
        .seek(SeekFrom::Start(0))
        .map_err(|e| pdf_error(format!("cannot read PDF: {e}")))?;
    let mut bytes = Vec::new();
    input
        .read_to_end(&mut bytes)
        .map_err(|e| pdf_error(format!("cannot read PDF: {e}")))?;
    extract_bytes(&bytes)
}

/// [`extract`] over a PDF already in memory.
pub fn extract_bytes(pdf: &[u8]) -> Result<EmbeddedInvoice, ReadError> {
    if !pdf.starts_with(b"%PDF-") {
        return Err(pdf_error("not a PDF (no %PDF- header)"));
    }
    match catch_unwind(AssertUnwindSafe(|| extract_inner(pdf))) {
        Ok(r) => r,
        Err(_) => Err(pdf_error("PDF is malformed (the PDF parser gave up)")),
    }
}

/// Extract the embedded XML and map it with the CII reader; `syntax` is
/// `FacturX` and the profile comes from BT-24, else from the XMP metadata.
pub fn read(input: impl Read + Seek) -> Result<ReadOutcome, ReadError> {
    map_embedded(extract(input)?)
}

/// [`read`] over a PDF already in memory.
pub fn read_bytes(pdf: &[u8]) -> Result<ReadOutcome, ReadError> {
    map_embedded(extract_bytes(pdf)?)
}

/// Map an already extracted embedded XML (see [`read`]).
pub fn map_embedded(e: EmbeddedInvoice) -> Result<ReadOutcome, ReadError> {
    let mut out = crate::cii::read(&e.xml[..]).map_err(|err| {
        ReadError::new(
            format!("embedded {}: {}", e.file_name, err.message),
            err.position,
        )
    })?;
    out.invoice.syntax = Some(Syntax::FacturX);
    if let Some(level) = &e.conformance_level {
        match Profile::from_conformance_level(level) {
            None => out.issues.push(Violation::warning(
                "SYNTAX",
                "BT-24",
                format!("BT-24: the PDF's XMP metadata names an unknown Factur-X conformance level \"{level}\""),
            )),
            Some(xmp) => match out.invoice.profile {
                None | Some(Profile::Other) => out.invoice.profile = Some(xmp),
                Some(p) if p != xmp => out.issues.push(Violation::warning(
                    "SYNTAX",
                    "BT-24",
                    format!(
                        "BT-24: the PDF's XMP metadata says {} but the embedded XML declares {}",
                        xmp.as_str(),
                        p.as_str()
                    ),
                )),
                Some(_) => {}
            },
        }
    }
    Ok(out)
}

fn extract_inner(pdf: &[u8]) -> Result<EmbeddedInvoice, ReadError> {
    let doc = Document::load_mem(pdf).map_err(|e| pdf_error(format!("PDF cannot be read: {e}")))?;
    let catalog = doc
        .catalog()
        .map_err(|e| pdf_error(format!("PDF has no catalog: {e}")))?;

    let mut candidates: Vec<(String, &Dictionary)> = Vec::new();
    // /Names /EmbeddedFiles name tree.
    if let Some(tree) = catalog
        .get_deref(b"Names", &doc)
        .and_then(Object::as_dict)
        .ok()
        .and_then(|names| {
            names
                .get_deref(b"EmbeddedFiles", &doc)
                .and_then(Object::as_dict)
                .ok()
        })
    {
        walk_name_tree(&doc, tree, 0, &mut candidates);
    }
    // /AF associated files of the document.
    if let Ok(af) = catalog.get_deref(b"AF", &doc).and_then(Object::as_array) {
        for o in af.iter().take(1024) {
            if let Ok((_, Object::Dictionary(spec))) = doc.dereference(o) {
                candidates.push((String::new(), spec));
            }
        }
    }

    let mut best: Option<(usize, String, &Dictionary)> = None;
    for (tree_name, spec) in candidates {
        let name = filespec_name(spec).unwrap_or(tree_name);
        let lower = name.to_ascii_lowercase();
        let Some(rank) = INVOICE_FILE_NAMES.iter().position(|n| *n == lower) else {
            continue;
        };
        if best.as_ref().is_none_or(|(r, _, _)| rank < *r) {
            best = Some((rank, name, spec));
        }
    }
    let Some((_, file_name, spec)) = best else {
        return Err(pdf_error("PDF has no embedded Factur-X/ZUGFeRD XML"));
    };
    let ef = spec
        .get_deref(b"EF", &doc)
        .and_then(Object::as_dict)
        .map_err(|_| pdf_error(format!("embedded {file_name} has no /EF stream")))?;
    let stream = ef
        .get_deref(b"F", &doc)
        .or_else(|_| ef.get_deref(b"UF", &doc))
        .and_then(Object::as_stream)
        .map_err(|_| pdf_error(format!("embedded {file_name} has no file stream")))?;
    let xml = inflate(stream, MAX_XML_BYTES)
        .map_err(|m| pdf_error(format!("embedded {file_name}: {m}")))?;
    if xml.is_empty() {
        return Err(pdf_error(format!("embedded {file_name} is empty")));
    }

    let conformance_level = catalog
        .get_deref(b"Metadata", &doc)
        .and_then(Object::as_stream)
        .ok()
        .and_then(|s| inflate(s, MAX_XMP_BYTES).ok())
        .and_then(|xmp| conformance_level(&xmp));

    Ok(EmbeddedInvoice {
        file_name,
        xml,
        conformance_level,
    })
}

/// Collect `(name, filespec)` pairs of a name tree (bounded depth).
fn walk_name_tree<'a>(
    doc: &'a Document,
    node: &'a Dictionary,
    depth: usize,
    out: &mut Vec<(String, &'a Dictionary)>,
) {
    if depth > 32 || out.len() > 4096 {
        return;
    }
    if let Ok(names) = node.get_deref(b"Names", doc).and_then(Object::as_array) {
        for pair in names.chunks(2) {
            if let [key, value] = pair {
                let name = doc
                    .dereference(key)
                    .ok()
                    .and_then(|(_, k)| k.as_str().ok())
                    .map(pdf_text)
                    .unwrap_or_default();
                if let Ok((_, Object::Dictionary(spec))) = doc.dereference(value) {
                    out.push((name, spec));
                }
            }
        }
    }
    if let Ok(kids) = node.get_deref(b"Kids", doc).and_then(Object::as_array) {
        for kid in kids.iter().take(4096) {
            if let Ok((_, Object::Dictionary(d))) = doc.dereference(kid) {
                walk_name_tree(doc, d, depth + 1, out);
            }
        }
    }
}

/// The file name of a file specification (`/UF`, else `/F`).
fn filespec_name(spec: &Dictionary) -> Option<String> {
    [b"UF".as_slice(), b"F".as_slice()]
        .iter()
        .find_map(|k| spec.get(k).ok().and_then(|o| o.as_str().ok()).map(pdf_text))
        .filter(|s| !s.is_empty())
}

/// A PDF text string: UTF-16BE with BOM, UTF-8 with BOM, else PDFDocEncoding
/// (read as Latin-1, which agrees for file names).
fn pdf_text(b: &[u8]) -> String {
    if let Some(rest) = b.strip_prefix(b"\xFE\xFF") {
        let units: Vec<u16> = rest
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    if let Some(rest) = b.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8_lossy(rest).into_owned();
    }
    b.iter().map(|&c| char::from(c)).collect()
}

/// Decode a stream's content under a size cap: unfiltered or FlateDecode
/// (inflated with flate2, stopping past `max`); other filters through lopdf.
fn inflate(stream: &lopdf::Stream, max: usize) -> Result<Vec<u8>, String> {
    let filters = stream.filters().unwrap_or_default();
    let out = match filters.as_slice() {
        [] => stream.content.clone(),
        [f] if f == "FlateDecode" || f == "Fl" => {
            let mut out = Vec::new();
            let mut dec = flate2::read::ZlibDecoder::new(&stream.content[..]).take(max as u64 + 1);
            match dec.read_to_end(&mut out) {
                Ok(_) => out,
                // Some producers write raw deflate data.
                Err(_) => {
                    let mut out = Vec::new();
                    flate2::read::DeflateDecoder::new(&stream.content[..])
                        .take(max as u64 + 1)
                        .read_to_end(&mut out)
                        .map_err(|e| format!("stream cannot be inflated: {e}"))?;
                    out
                }
            }
        }
        _ => stream
            .decompressed_content()
            .map_err(|e| format!("stream cannot be decoded ({filters:?}): {e}"))?,
    };
    if out.len() > max {
        return Err(format!("embedded file is larger than {max} bytes"));
    }
    Ok(out)
}

/// `fx:ConformanceLevel` from XMP, written as an element or an attribute.
fn conformance_level(xmp: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(xmp);
    for (i, _) in text.match_indices(":ConformanceLevel") {
        let rest = &text[i + ":ConformanceLevel".len()..];
        let rest = rest.trim_start();
        let value = if let Some(r) = rest.strip_prefix('>') {
            r.split('<').next()
        } else if let Some(r) = rest.strip_prefix('=') {
            let r = r.trim_start();
            let q = r.chars().next()?;
            if q != '"' && q != '\'' {
                continue;
            }
            r[1..].split(q).next()
        } else {
            continue;
        };
        if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
            return Some(v.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conformance_level_as_element_or_attribute() {
        assert_eq!(
            conformance_level(b"<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>").as_deref(),
            Some("EN 16931")
        );
        assert_eq!(
            conformance_level(b"<rdf:Description fx:ConformanceLevel=\"BASIC WL\"/>").as_deref(),
            Some("BASIC WL")
        );
        assert_eq!(conformance_level(b"<x>nothing</x>"), None);
    }

    #[test]
    fn not_a_pdf_and_garbage_are_read_errors() {
        assert!(extract_bytes(b"<xml/>")
            .unwrap_err()
            .message
            .contains("not a PDF"));
        let e = extract_bytes(b"%PDF-1.7\n garbage \x00\xff trailer << /Root 99 0 R >>\n%%EOF")
            .unwrap_err();
        assert!(!e.message.is_empty());
    }
}
