//! EDIFACT INVOIC reader: a segment tokenizer, an interchange reader and a
//! message mapper.
//!
//! An EDIFACT flow is an interchange (`UNA`? `UNB` … `UNZ`) that may hold
//! thousands of messages (`UNH` … `UNT`). [`Interchange`] reads it as a
//! stream and yields one [`MessageOutcome`] per message, so memory is
//! bounded by the largest message, not the interchange. Each INVOIC message
//! is mapped to the canonical [`Invoice`](crate::Invoice) by
//! [`invoic::InvoicMapper`] while its segments stream past.
//!
//! Envelope checks and how they are reported:
//! - UNT segment count wrong: a `EDIFACT-UNT` violation on that message,
//!   a warning by default (the official EN 16931 examples 0 and 0a carry a
//!   wrong count), fatal with [`Interchange::strict`].
//! - UNT reference different from UNH's, UNH without UNT: the message
//!   fails ([`MessageOutcome::result`] is an error).
//! - UNZ count or reference wrong: an [`EnvelopeIssue`]; also an `Err` item
//!   in strict mode.
//! - No UNZ, unterminated final segment, bytes that are not segments: an
//!   `Err` item, after which the iterator ends.
//! - Message types other than INVOIC: the message's result is the error
//!   "message type APERAK is not an invoice".
//!
//! Several interchanges concatenated in one file are read one after the
//! other. What a CONTRL acknowledgement needs (sender, recipient, control
//! reference, each message's reference and type) is kept in
//! [`InterchangeHeader`] and [`MessageOutcome`].
//!
//! Character sets: UNOA, UNOB and UNOC (ISO 646 / ISO 8859-1) are decoded
//! as Latin-1, except that a value which is valid UTF-8 with non-ASCII bytes
//! is taken as UTF-8 (senders often write UTF-8 and declare UNOA); UNOD to
//! UNOK as the matching ISO 8859 part; UNOW and UNOY as UTF-8.

pub mod invoic;
pub mod tokenizer;

use std::io::BufRead;

use crate::model::{Severity, Violation};
use crate::{ReadError, ReadOutcome};

pub use tokenizer::{Delimiters, Segment, TokenError, Tokenizer};

/// How text values are decoded, from the UNB syntax identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    Latin1,
    Utf8,
    Other(&'static encoding_rs::Encoding),
}

impl Charset {
    /// From a syntax identifier such as `UNOC`.
    pub fn from_syntax_id(id: &str) -> Charset {
        match id {
            "UNOW" | "UNOY" => Charset::Utf8,
            "UNOD" => Charset::Other(encoding_rs::ISO_8859_2),
            "UNOE" => Charset::Other(encoding_rs::ISO_8859_5),
            "UNOF" => Charset::Other(encoding_rs::ISO_8859_7),
            "UNOG" => Charset::Other(encoding_rs::ISO_8859_3),
            "UNOH" => Charset::Other(encoding_rs::ISO_8859_4),
            "UNOI" => Charset::Other(encoding_rs::ISO_8859_6),
            "UNOJ" => Charset::Other(encoding_rs::ISO_8859_8),
            "UNOK" => Charset::Other(encoding_rs::WINDOWS_1254),
            _ => Charset::Latin1,
        }
    }

    /// Decode one value.
    pub fn decode(self, bytes: &[u8]) -> String {
        match self {
            // One validation pass: ASCII and valid UTF-8 are taken as they are.
            Charset::Utf8 | Charset::Latin1 => match std::str::from_utf8(bytes) {
                Ok(s) => s.to_owned(),
                Err(_) if self == Charset::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
                Err(_) => bytes.iter().map(|&b| b as char).collect(),
            },
            Charset::Other(_) if bytes.is_ascii() => std::str::from_utf8(bytes)
                .map(str::to_owned)
                .unwrap_or_default(),
            Charset::Other(enc) => enc.decode_without_bom_handling(bytes).0.into_owned(),
        }
    }
}

/// What the UNB segment says, kept for acknowledgements (CONTRL).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterchangeHeader {
    /// `UNOC`...
    pub syntax_id: String,
    /// `3`, `4`...
    pub syntax_version: String,
    pub sender: String,
    pub sender_qualifier: Option<String>,
    pub recipient: String,
    pub recipient_qualifier: Option<String>,
    /// Date and time of preparation as written (`YYMMDD` or `CCYYMMDD`, `HHMM`).
    pub prepared_date: String,
    pub prepared_time: String,
    /// Interchange control reference (UNB 0020).
    pub control_reference: String,
    /// Application reference (UNB 0026), e.g. `INVOIC`.
    pub application_reference: Option<String>,
    /// Test indicator (UNB 0035 = 1).
    pub test: bool,
    /// Byte offset of the UNB segment.
    pub offset: u64,
}

/// Which envelope check an [`EnvelopeIssue`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeIssueKind {
    /// UNT segment count differs from the segments counted (the message
    /// itself also carries an `EDIFACT-UNT` violation).
    UntCount,
    /// UNZ message (or group) count differs from what the interchange holds.
    UnzCount,
    /// UNZ control reference differs from UNB's. Common in practice: all
    /// official EN 16931 EDIFACT examples repeat the message reference there.
    UnzReference,
}

/// An envelope problem that does not stop the reading of messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeIssue {
    pub kind: EnvelopeIssueKind,
    pub message: String,
    pub segment: u64,
    pub offset: u64,
}

/// One message of an interchange.
#[derive(Debug, Clone)]
pub struct MessageOutcome {
    /// Message reference number (UNH 0062).
    pub reference: String,
    /// Message type (`INVOIC`, `APERAK`...).
    pub message_type: String,
    /// Version, release, agency and association code as written: `D:96A:UN:EAN008`.
    pub version: String,
    /// Index of the interchange in the file (0 for the first).
    pub interchange: usize,
    /// Control reference of its interchange.
    pub interchange_reference: String,
    /// Segment number of the UNH in the file and its byte offset.
    pub segment: u64,
    pub offset: u64,
    /// Segments counted from UNH to UNT inclusive.
    pub segment_count: u64,
    /// The mapped invoice (with syntax issues), or why it could not be read.
    pub result: Result<ReadOutcome, ReadError>,
}

/// Reads an interchange message by message. See the module doc.
pub struct Interchange<R> {
    tok: Tokenizer<R>,
    strict: bool,
    headers: Vec<InterchangeHeader>,
    charset: Charset,
    issues: Vec<EnvelopeIssue>,
    messages_in_interchange: u64,
    groups_in_interchange: u64,
    in_interchange: bool,
    done: bool,
}

fn err_at(message: impl Into<String>, segment: u64, offset: u64) -> ReadError {
    ReadError::new(format!("{} (segment {segment})", message.into()), offset)
}

impl<R: BufRead> Interchange<R> {
    pub fn new(reader: R) -> Self {
        Interchange {
            tok: Tokenizer::new(reader),
            strict: false,
            headers: Vec::new(),
            charset: Charset::Latin1,
            issues: Vec::new(),
            messages_in_interchange: 0,
            groups_in_interchange: 0,
            in_interchange: false,
            done: false,
        }
    }

    /// Make count mismatches (UNT, UNZ) fatal instead of warnings.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// The header of the interchange being read (the last one seen).
    pub fn header(&self) -> Option<&InterchangeHeader> {
        self.headers.last()
    }

    /// Headers of all interchanges seen so far.
    pub fn headers(&self) -> &[InterchangeHeader] {
        &self.headers
    }

    /// Envelope problems met so far that did not stop reading.
    pub fn envelope_issues(&self) -> &[EnvelopeIssue] {
        &self.issues
    }

    /// Service characters in force.
    pub fn delimiters(&self) -> Delimiters {
        self.tok.delimiters()
    }

    fn tok_err(e: TokenError) -> ReadError {
        err_at(e.message, e.segment, e.offset)
    }

    /// Read the UNB (after an optional UNA).
    fn open_interchange(&mut self) -> Result<(), ReadError> {
        if !self.headers.is_empty() {
            self.tok.read_una().map_err(Self::tok_err)?;
        }
        let charset;
        let header = {
            let seg = match self.tok.next_segment().map_err(Self::tok_err)? {
                Some(s) => s,
                None => return Err(ReadError::new("empty EDIFACT interchange", 0)),
            };
            if seg.tag() != b"UNB" {
                return Err(err_at(
                    format!(
                        "an interchange must start with UNB, found {}",
                        seg.tag_str()
                    ),
                    seg.number,
                    seg.offset,
                ));
            }
            let text = |e, c| {
                seg.get(e, c)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            };
            let syntax_id = text(1, 0).unwrap_or_default();
            charset = Charset::from_syntax_id(&syntax_id);
            let dec = |e, c| seg.get(e, c).map(|v| charset.decode(v));
            let control_reference = dec(5, 0).unwrap_or_default();
            if control_reference.is_empty() {
                return Err(err_at(
                    "UNB has no interchange control reference",
                    seg.number,
                    seg.offset,
                ));
            }
            InterchangeHeader {
                syntax_version: text(1, 1).unwrap_or_default(),
                syntax_id,
                sender: dec(2, 0).unwrap_or_default(),
                sender_qualifier: dec(2, 1),
                recipient: dec(3, 0).unwrap_or_default(),
                recipient_qualifier: dec(3, 1),
                prepared_date: text(4, 0).unwrap_or_default(),
                prepared_time: text(4, 1).unwrap_or_default(),
                control_reference,
                application_reference: dec(7, 0),
                test: seg.code(11, 0) == Some("1"),
                offset: seg.offset,
            }
        };
        self.charset = charset;
        self.headers.push(header);
        self.messages_in_interchange = 0;
        self.groups_in_interchange = 0;
        self.in_interchange = true;
        Ok(())
    }

    /// Read one message from its UNH (already the current segment).
    fn read_message(&mut self) -> Result<MessageOutcome, ReadError> {
        let charset = self.charset;
        let interchange = self.headers.len().saturating_sub(1);
        let interchange_reference = self
            .headers
            .last()
            .map(|h| h.control_reference.clone())
            .unwrap_or_default();
        let (reference, message_type, version, segment, offset) = {
            let seg = self
                .tok
                .next_segment()
                .map_err(Self::tok_err)?
                .ok_or_else(|| ReadError::new("no UNH", 0))?;
            let reference = seg.get(1, 0).map(|v| charset.decode(v)).unwrap_or_default();
            let message_type = seg.code(2, 0).unwrap_or("").to_string();
            let mut version = String::new();
            for c in 1..seg.components(2) {
                if c > 1 {
                    version.push(':');
                }
                if let Some(v) = seg.get(2, c) {
                    version.push_str(&charset.decode(v));
                }
            }
            (reference, message_type, version, seg.number, seg.offset)
        };
        let mut mapper = if message_type == "INVOIC" {
            Some(invoic::InvoicMapper::new(
                charset,
                self.tok.delimiters().decimal,
            ))
        } else {
            None
        };
        let mut count = 1u64;
        let mut outcome = MessageOutcome {
            reference: reference.clone(),
            message_type: message_type.clone(),
            version,
            interchange,
            interchange_reference,
            segment,
            offset,
            segment_count: 0,
            result: Err(ReadError::new("", 0)),
        };
        loop {
            let seg = match self.tok.next_segment() {
                Ok(Some(s)) => s,
                Ok(None) => {
                    outcome.segment_count = count;
                    outcome.result = Err(err_at(
                        format!("message {reference} has no UNT: the interchange is truncated"),
                        segment,
                        offset,
                    ));
                    return Ok(outcome);
                }
                Err(e) => return Err(Self::tok_err(e)),
            };
            match seg.tag() {
                b"UNT" => {
                    count += 1;
                    outcome.segment_count = count;
                    let declared = seg.code(1, 0).and_then(|v| v.parse::<u64>().ok());
                    let unt_ref = seg.get(2, 0).map(|v| charset.decode(v)).unwrap_or_default();
                    let (unt_no, unt_off) = (seg.number, seg.offset);
                    if unt_ref != reference {
                        outcome.result = Err(err_at(
                            format!(
                                "UNT reference '{unt_ref}' does not match UNH reference '{reference}': message boundaries are unreliable"
                            ),
                            unt_no,
                            unt_off,
                        ));
                        return Ok(outcome);
                    }
                    let mut result = match mapper.take() {
                        Some(m) => Ok(m.finish()),
                        None => Err(err_at(
                            format!("message type {message_type} is not an invoice (message {reference})"),
                            segment,
                            offset,
                        )),
                    };
                    if declared != Some(count) {
                        let text = match declared {
                            Some(d) => format!(
                                "UNT declares {d} segments but message {reference} has {count} (segment {unt_no}, byte {unt_off})"
                            ),
                            None => format!("UNT segment count is missing or not a number (segment {unt_no}, byte {unt_off})"),
                        };
                        if let Ok(r) = result.as_mut() {
                            let sev = if self.strict {
                                Severity::Fatal
                            } else {
                                Severity::Warning
                            };
                            r.issues.push(Violation {
                                rule: "EDIFACT-UNT".into(),
                                term: "UNT".into(),
                                severity: sev,
                                message: text.clone(),
                                location: None,
                                line: None,
                                column: None,
                            });
                        }
                        self.issues.push(EnvelopeIssue {
                            kind: EnvelopeIssueKind::UntCount,
                            message: text,
                            segment: unt_no,
                            offset: unt_off,
                        });
                    }
                    outcome.result = result;
                    return Ok(outcome);
                }
                b"UNH" | b"UNZ" | b"UNB" | b"UNE" | b"UNG" => {
                    let what = seg.tag_str().to_string();
                    self.tok.push_back();
                    outcome.segment_count = count;
                    outcome.result = Err(err_at(
                        format!("message {reference} has no UNT ({what} found before it)"),
                        segment,
                        offset,
                    ));
                    return Ok(outcome);
                }
                _ => {
                    count += 1;
                    if let Some(m) = mapper.as_mut() {
                        m.segment(seg);
                    }
                }
            }
        }
    }

    /// Attach UNO/UNP packages that follow a message to it.
    fn read_packages(&mut self, outcome: &mut MessageOutcome) -> Result<(), ReadError> {
        loop {
            let (len, doc_ref, mime, number, off) = {
                let seg = match self.tok.next_segment().map_err(Self::tok_err)? {
                    Some(s) => s,
                    None => return Ok(()),
                };
                if seg.tag() != b"UNO" {
                    self.tok.push_back();
                    return Ok(());
                }
                let n = seg.len();
                let len = seg.code(n, 0).and_then(|v| v.parse::<u64>().ok());
                let doc_ref = seg.get(2, 1).map(|v| self.charset.decode(v));
                let mime = seg.get(3, 1).map(|v| self.charset.decode(v));
                (len, doc_ref, mime, seg.number, seg.offset)
            };
            let Some(len) = len else {
                return Err(err_at("UNO package without an object length", number, off));
            };
            self.tok.skip_raw(len).map_err(Self::tok_err)?;
            match self.tok.next_segment().map_err(Self::tok_err)? {
                Some(s) if s.tag() == b"UNP" => {}
                Some(s) => return Err(err_at("UNO package not closed by UNP", s.number, s.offset)),
                None => return Err(err_at("UNO package not closed by UNP", number, off)),
            }
            if let Ok(r) = outcome.result.as_mut() {
                invoic::attach_package(&mut r.invoice, doc_ref, mime, len);
            }
        }
    }

    fn step(&mut self) -> Result<Option<MessageOutcome>, ReadError> {
        loop {
            if !self.in_interchange {
                if self.headers.is_empty() {
                    self.open_interchange()?;
                    continue;
                }
                if self.tok.at_eof().map_err(Self::tok_err)? {
                    return Ok(None);
                }
                if self.tok.at_interchange_start().map_err(Self::tok_err)? {
                    self.open_interchange()?;
                    continue;
                }
                let off = self.tok.offset();
                return Err(ReadError::new("unexpected data after UNZ", off));
            }
            let charset = self.charset;
            let (tag, number, offset, unz_count, unz_ref) =
                match self.tok.next_segment().map_err(Self::tok_err)? {
                    Some(s) => (
                        s.tag().to_vec(),
                        s.number,
                        s.offset,
                        s.code(1, 0).and_then(|v| v.parse::<u64>().ok()),
                        s.get(2, 0).map(|v| charset.decode(v)).unwrap_or_default(),
                    ),
                    None => {
                        let h = self
                            .headers
                            .last()
                            .map(|h| h.control_reference.clone())
                            .unwrap_or_default();
                        return Err(ReadError::new(
                            format!("interchange {h} has no UNZ: it is truncated or incomplete"),
                            self.tok.offset(),
                        ));
                    }
                };
            match &tag[..] {
                b"UNH" => {
                    self.tok.push_back();
                    self.messages_in_interchange += 1;
                    let mut outcome = self.read_message()?;
                    self.read_packages(&mut outcome)?;
                    return Ok(Some(outcome));
                }
                b"UNG" => {
                    self.groups_in_interchange += 1;
                }
                b"UNE" => {}
                b"UNZ" => {
                    self.in_interchange = false;
                    let expected_ref = self
                        .headers
                        .last()
                        .map(|h| h.control_reference.clone())
                        .unwrap_or_default();
                    let counted = if self.groups_in_interchange > 0 {
                        self.groups_in_interchange
                    } else {
                        self.messages_in_interchange
                    };
                    let mut problems = Vec::new();
                    if unz_count != Some(counted) {
                        problems.push((EnvelopeIssueKind::UnzCount, match unz_count {
                            Some(d) => format!("UNZ declares {d} messages but interchange {expected_ref} holds {counted}"),
                            None => "UNZ interchange control count is missing or not a number".to_string(),
                        }));
                    }
                    if unz_ref != expected_ref {
                        problems.push((
                            EnvelopeIssueKind::UnzReference,
                            format!("UNZ control reference '{unz_ref}' does not match UNB control reference '{expected_ref}'"),
                        ));
                    }
                    for (kind, message) in problems {
                        if self.strict {
                            return Err(err_at(message, number, offset));
                        }
                        self.issues.push(EnvelopeIssue {
                            kind,
                            message,
                            segment: number,
                            offset,
                        });
                    }
                }
                other => {
                    return Err(err_at(
                        format!(
                            "segment {} outside a message",
                            String::from_utf8_lossy(other)
                        ),
                        number,
                        offset,
                    ))
                }
            }
        }
    }
}

impl<R: BufRead> Iterator for Interchange<R> {
    type Item = Result<MessageOutcome, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(m)) => Some(Ok(m)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Charset;

    #[test]
    fn values_are_decoded_per_charset() {
        // ASCII is the same everywhere.
        for cs in [
            Charset::Latin1,
            Charset::Utf8,
            Charset::Other(encoding_rs::ISO_8859_2),
        ] {
            assert_eq!(cs.decode(b"ACME 12"), "ACME 12");
        }
        // UNOA-UNOC: Latin-1, unless the value is valid UTF-8.
        assert_eq!(Charset::Latin1.decode(b"Soci\xe9t\xe9"), "Société");
        assert_eq!(Charset::Latin1.decode("Société".as_bytes()), "Société");
        // UNOW / UNOY: UTF-8, invalid bytes replaced.
        assert_eq!(Charset::Utf8.decode("Müller".as_bytes()), "Müller");
        assert_eq!(Charset::Utf8.decode(b"M\xfcller"), "M\u{fffd}ller");
        // UNOD: ISO 8859-2, even where the bytes happen to be valid UTF-8.
        assert_eq!(
            Charset::Other(encoding_rs::ISO_8859_2).decode(b"\xa3\xf3d\xbc"),
            "Łódź"
        );
        assert_eq!(
            Charset::Other(encoding_rs::ISO_8859_2).decode("é".as_bytes()),
            "ĂŠ"
        );
    }
}
