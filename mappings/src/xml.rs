//! Shared quick-xml plumbing for the XML readers (UBL, CII, Factur-X).
//!
//! Why one module: every XML syntax quai reads arrives from outside and must
//! be read the same hardened way, in one streaming pass and bounded memory:
//!
//! * **No DTD, no custom or external entities.** A `<!DOCTYPE` is refused
//!   outright ("DOCTYPE not allowed"), which closes the door on billion-laughs
//!   and XXE; only the five predefined entities and numeric character
//!   references are expanded (quick-xml's [`quick_xml::escape::unescape`]).
//! * **Bounded events.** quick-xml keeps one event (a text node, a tag) in
//!   memory at a time; [`DecodingReader`] refuses a run of more than
//!   [`MAX_EVENT_BYTES`] without a `<`, so neither a huge text node nor a huge
//!   tag can grow memory without bound. Nesting depth is capped too.
//! * **Encodings.** UTF-8 with or without BOM, UTF-16 (BOM or `<?` sniffing),
//!   ISO-8859-1 and any other encoding named in the XML declaration that
//!   `encoding_rs` knows are transcoded to UTF-8 *before* quick-xml sees the
//!   bytes; malformed input (e.g. invalid UTF-8) is a [`ReadError`] with the
//!   byte position in the original document.
//! * **Value parsers** ([`Values`]) turn dates and decimals into typed
//!   values; a value that does not parse becomes a `SYNTAX` [`Violation`]
//!   naming the BT term, the field stays `None`, and the document still maps.
//!
//! The readers themselves implement [`Handler`]: [`drive`] calls it with the
//! path of each element relative to the root (local names joined by `/`,
//! elements in foreign namespaces prefixed with `~` so no mapping matches
//! them), its unqualified attributes and its trimmed text.

use std::borrow::Cow;
use std::io::{self, BufRead, Read};
use std::str::FromStr;

use chrono::NaiveDate;
use quick_xml::events::Event;
use quick_xml::name::{NamespaceError, PrefixDeclaration};
use quick_xml::Reader;
use rust_decimal::Decimal;

use crate::model::Violation;
use crate::ReadError;

mod paths;
pub use paths::{Node, PathMemo, ThreadMemo};

/// Longest run of bytes without a `<` (one text node or one tag) accepted.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;
/// Deepest element nesting accepted.
pub const MAX_DEPTH: usize = 256;

// ---------------------------------------------------------------------------
// Encoding detection and transcoding
// ---------------------------------------------------------------------------

/// How the input bytes become UTF-8.
enum Transcode {
    /// Decoded with encoding_rs (UTF-8 is validated this way too).
    Rs(encoding_rs::Decoder),
    /// ISO-8859-1 proper: every byte is the code point of the same value
    /// (encoding_rs maps the label to windows-1252, which differs in 0x80-0x9F).
    Latin1,
}

/// Why the decoding reader stopped (carried inside an `io::Error`).
#[derive(Debug)]
struct DecodeError {
    message: String,
    position: u64,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DecodeError {}

/// A `BufRead` that transcodes its input to validated UTF-8 and refuses any
/// run longer than [`MAX_EVENT_BYTES`] without a `<`.
pub struct DecodingReader<R: BufRead> {
    inner: R,
    transcode: Transcode,
    out: Vec<u8>,
    pos: usize,
    /// Input bytes consumed so far (for error positions).
    consumed: u64,
    /// Bytes output since the last `<`.
    run: usize,
    max_run: usize,
    eof: bool,
}

impl<R: BufRead> DecodingReader<R> {
    fn new(inner: R, transcode: Transcode, consumed: u64, max_run: usize) -> Self {
        DecodingReader {
            inner,
            transcode,
            out: Vec::new(),
            pos: 0,
            consumed,
            run: 0,
            max_run,
            eof: false,
        }
    }

    /// Whether the input is UTF-8 (nothing to transcode, only to validate).
    fn is_utf8(&self) -> bool {
        matches!(&self.transcode, Transcode::Rs(d) if d.encoding() == encoding_rs::UTF_8)
    }

    fn fail(&self, message: String, position: u64) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            DecodeError { message, position },
        )
    }

    fn refill(&mut self) -> io::Result<()> {
        self.out.clear();
        self.pos = 0;
        while self.out.is_empty() && !self.eof {
            let src = self.inner.fill_buf()?;
            let last = src.is_empty();
            let read;
            match &mut self.transcode {
                Transcode::Latin1 => {
                    for &b in src {
                        let mut tmp = [0u8; 2];
                        self.out
                            .extend_from_slice(char::from(b).encode_utf8(&mut tmp).as_bytes());
                    }
                    read = src.len();
                }
                Transcode::Rs(decoder) => {
                    let cap = decoder
                        .max_utf8_buffer_length_without_replacement(src.len())
                        .unwrap_or(src.len() * 3 + 16);
                    self.out.resize(cap.max(16), 0);
                    let (result, r, written) =
                        decoder.decode_to_utf8_without_replacement(src, &mut self.out, last);
                    self.out.truncate(written);
                    read = r;
                    if let encoding_rs::DecoderResult::Malformed(bad, after) = result {
                        let position =
                            (self.consumed + r as u64).saturating_sub(bad as u64 + after as u64);
                        let name = decoder.encoding().name();
                        return Err(self.fail(format!("invalid {name} byte sequence"), position));
                    }
                }
            }
            self.inner.consume(read);
            self.consumed += read as u64;
            if last {
                self.eof = true;
            }
        }
        let mut longest = 0;
        if self.run + self.out.len() <= self.max_run {
            // Fast path: no run in this chunk can exceed the bound; only the
            // tail after the last `<` carries over.
            self.run = match self.out.iter().rposition(|&b| b == b'<') {
                Some(i) => self.out.len() - i - 1,
                None => self.run + self.out.len(),
            };
        } else {
            let mut run = self.run;
            for &b in &self.out {
                if b == b'<' {
                    run = 0;
                } else {
                    run += 1;
                    longest = longest.max(run);
                }
            }
            self.run = run;
        }
        if longest > self.max_run {
            let position = self.consumed;
            return Err(self.fail(
                format!("a text node or tag is longer than {} bytes", self.max_run),
                position,
            ));
        }
        Ok(())
    }
}

impl<R: BufRead> Read for DecodingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for DecodingReader<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.out.len() {
            self.refill()?;
        }
        Ok(&self.out[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.out.len());
    }
}

/// The reader [`decoding_reader`] returns: the sniffed prefix, then the rest.
pub type Decoded<R> = DecodingReader<io::Chain<io::Cursor<Vec<u8>>, R>>;

/// Sniff the encoding (BOM, UTF-16 without BOM, XML declaration) and wrap
/// `input` so that it yields validated UTF-8.
pub fn decoding_reader<R: BufRead>(input: R) -> Result<Decoded<R>, ReadError> {
    decoding_reader_with_limit(input, MAX_EVENT_BYTES)
}

/// [`decoding_reader`] with a custom event-size bound (for tests).
pub fn decoding_reader_with_limit<R: BufRead>(
    mut input: R,
    max_run: usize,
) -> Result<Decoded<R>, ReadError> {
    // Read a prefix large enough to hold a BOM and the XML declaration.
    let mut prefix = Vec::with_capacity(512);
    while prefix.len() < 512 {
        let buf = input.fill_buf().map_err(|e| {
            ReadError::new(format!("cannot read document: {e}"), prefix.len() as u64)
        })?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len().min(512 - prefix.len());
        prefix.extend_from_slice(&buf[..n]);
        input.consume(n);
    }
    let (transcode, skip) = sniff(&prefix)?;
    let consumed = skip as u64;
    let cursor = io::Cursor::new(prefix);
    let mut chained = cursor.chain(input);
    // Skip the BOM (encoding_rs decoders without BOM handling see plain data).
    if skip > 0 {
        let mut bom = [0u8; 3];
        let _ = chained.read_exact(&mut bom[..skip]);
    }
    Ok(DecodingReader::new(chained, transcode, consumed, max_run))
}

fn sniff(prefix: &[u8]) -> Result<(Transcode, usize), ReadError> {
    use encoding_rs::{UTF_16BE, UTF_16LE, UTF_8};
    if prefix.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Ok((Transcode::Rs(UTF_8.new_decoder_without_bom_handling()), 3));
    }
    if prefix.starts_with(&[0xFF, 0xFE]) {
        return Ok((
            Transcode::Rs(UTF_16LE.new_decoder_without_bom_handling()),
            2,
        ));
    }
    if prefix.starts_with(&[0xFE, 0xFF]) {
        return Ok((
            Transcode::Rs(UTF_16BE.new_decoder_without_bom_handling()),
            2,
        ));
    }
    if prefix.starts_with(&[b'<', 0, b'?', 0]) {
        return Ok((
            Transcode::Rs(UTF_16LE.new_decoder_without_bom_handling()),
            0,
        ));
    }
    if prefix.starts_with(&[0, b'<', 0, b'?']) {
        return Ok((
            Transcode::Rs(UTF_16BE.new_decoder_without_bom_handling()),
            0,
        ));
    }
    // ASCII-compatible: look for encoding="..." in the XML declaration.
    let label = declared_encoding(prefix);
    let Some(label) = label else {
        return Ok((Transcode::Rs(UTF_8.new_decoder_without_bom_handling()), 0));
    };
    let lower = label.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "iso-8859-1"
            | "iso8859-1"
            | "iso_8859-1"
            | "latin1"
            | "latin-1"
            | "l1"
            | "iso-ir-100"
            | "cp819"
            | "ibm819"
    ) {
        return Ok((Transcode::Latin1, 0));
    }
    match encoding_rs::Encoding::for_label(lower.as_bytes()) {
        Some(enc) if enc == UTF_16LE || enc == UTF_16BE => Err(ReadError::new(
            format!("document declares encoding {label} but is not UTF-16 (no BOM)"),
            0,
        )),
        Some(enc) if enc.is_single_byte() || enc == UTF_8 => {
            Ok((Transcode::Rs(enc.new_decoder_without_bom_handling()), 0))
        }
        _ => Err(ReadError::new(
            format!("unsupported XML encoding \"{label}\""),
            0,
        )),
    }
}

/// The `encoding` pseudo-attribute of a leading XML declaration, if any.
fn declared_encoding(prefix: &[u8]) -> Option<String> {
    if !prefix.starts_with(b"<?xml") {
        return None;
    }
    let end = prefix.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&prefix[..end]).ok()?;
    let idx = decl.find("encoding")?;
    let rest = decl[idx + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next()?;
    if quote != '"' && quote != '\'' {
        return None;
    }
    let rest = &rest[1..];
    let close = rest.find(quote)?;
    Some(rest[..close].trim().to_string())
}

// ---------------------------------------------------------------------------
// The streaming driver
// ---------------------------------------------------------------------------

/// Unqualified attributes of the current element.
///
/// Keys and values live in one text buffer shared by the open elements
/// (`(key start, key end = value start, value end)` ranges into it), so an
/// attribute costs no allocation of its own.
#[derive(Debug, Default)]
pub struct Attrs<'a> {
    buf: &'a str,
    items: &'a [(u32, u32, u32)],
}

impl<'a> Attrs<'a> {
    /// Value of the unqualified attribute `name`, trimmed; `None` if absent or empty.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        let buf = self.buf;
        self.items
            .iter()
            .find(|&&(k, v, _)| buf.get(k as usize..v as usize) == Some(name))
            .and_then(|&(_, v, e)| buf.get(v as usize..e as usize))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// Owned copy of [`Attrs::get`].
    pub fn owned(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_string)
    }

    /// Whether attribute `name` is given at all, even empty (the official
    /// rules tell `exists(@unitCode)` from its value).
    pub fn has(&self, name: &str) -> bool {
        let buf = self.buf;
        self.items
            .iter()
            .any(|&(k, v, _)| buf.get(k as usize..v as usize) == Some(name))
    }

    /// The attributes' names, as written (a prefix included).
    pub fn names(&self) -> impl Iterator<Item = &'a str> + '_ {
        let buf = self.buf;
        self.items
            .iter()
            .filter_map(move |&(k, v, _)| buf.get(k as usize..v as usize))
    }
}

/// What to do with an element's character content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextMode {
    /// Keep it (trimmed) and hand it to [`Handler::end`].
    Keep,
    /// Base64 content (BT-125): only count the decoded size, keep nothing.
    Base64Size,
    /// Base64 content counted like [`TextMode::Base64Size`] and also
    /// decoded, handed to [`Handler::binary`] piece by piece as it is read
    /// (for scanners: nothing is kept here either).
    Base64Bytes,
}

impl TextMode {
    fn is_base64(self) -> bool {
        matches!(self, TextMode::Base64Size | TextMode::Base64Bytes)
    }
}

/// The element a [`Handler`] is told about: its path relative to the root
/// (local names joined by `/`, `~` before a foreign one), where its own
/// local name starts in it, its parent's, and its [`Node`] (the same for
/// every element of the same path: what a checker works out from a path it
/// keeps by node).
#[derive(Debug, Clone, Copy)]
pub struct Element<'a> {
    pub path: &'a str,
    pub node: Node,
    /// `path[local..]` is the element's local name, `path[..parent]` its
    /// parent's path, `path[parent_local..parent]` the parent's local name.
    local: usize,
    parent: usize,
    parent_local: usize,
}

impl<'a> Element<'a> {
    /// An element without a node, its local name and parent found from the
    /// path (for tests and callers outside the driver).
    pub fn of_path(path: &'a str) -> Element<'a> {
        let (parent, local) = match path.rfind('/') {
            Some(i) => (i, i + 1),
            None => (0, 0),
        };
        let parent_local = path[..parent].rfind('/').map_or(0, |i| i + 1);
        Element {
            path,
            node: Node::NONE,
            local,
            parent,
            parent_local,
        }
    }

    /// The element's local name as in the path (`~` included).
    pub fn local(&self) -> &'a str {
        &self.path[self.local..]
    }

    /// The parent's path (empty for a child of the root).
    pub fn parent(&self) -> &'a str {
        &self.path[..self.parent]
    }

    /// The parent's local name (empty for a child of the root).
    pub fn parent_local(&self) -> &'a str {
        &self.path[self.parent_local..self.parent]
    }
}

/// A reader for one XML syntax.
pub trait Handler {
    /// Whether elements of namespace `ns` belong to the syntax (others are
    /// foreign: their path segments get a `~` prefix).
    fn known_namespace(&self, ns: &str) -> bool;
    /// The name to use in paths for element `local` under `parent` (a path),
    /// so that one mapping can serve an older schema with other names
    /// (ZUGFeRD 1.0 in the CII reader). Identity by default.
    fn alias<'a>(&self, parent: &str, local: &'a str) -> &'a str {
        let _ = parent;
        local
    }
    /// Check the root element; an unexpected one is a [`ReadError`].
    fn root(&mut self, ns: &str, local: &str) -> Result<(), String>;
    /// Where the element about to open starts: its line (1-based) and
    /// column (1-based, in bytes), called just before [`Handler::start`]
    /// (and, for the root, before [`Handler::root`]).
    fn at(&mut self, line: u32, column: u32) {
        let _ = (line, column);
    }
    /// An element opened (path relative to the root, root excluded).
    fn start(&mut self, path: &str, attrs: &Attrs<'_>) -> TextMode {
        let _ = (path, attrs);
        TextMode::Keep
    }
    /// An element closed: its trimmed text (for [`TextMode::Base64Size`], the
    /// decoded byte count is in `binary_size` and `text` is empty).
    fn end(&mut self, path: &str, attrs: &Attrs<'_>, text: &str, binary_size: Option<u64>);
    /// [`Handler::start`] with the element's [`Element`] (what the driver
    /// calls; by default the path is all a reader uses).
    fn start_element(&mut self, el: &Element<'_>, attrs: &Attrs<'_>) -> TextMode {
        self.start(el.path, attrs)
    }
    /// [`Handler::end`] with the element's [`Element`].
    fn end_element(
        &mut self,
        el: &Element<'_>,
        attrs: &Attrs<'_>,
        text: &str,
        binary_size: Option<u64>,
    ) {
        self.end(el.path, attrs, text, binary_size)
    }
    /// Decoded bytes of the element opened with [`TextMode::Base64Bytes`],
    /// in order, in pieces of any size (invalid characters are skipped, and
    /// decoding ends at the first `=`).
    fn binary(&mut self, bytes: &[u8]) {
        let _ = bytes;
    }
}

struct Frame {
    path_len: usize,
    /// Where the element's local name starts in the path, its node, and
    /// the node of its last child so far.
    local: usize,
    node: Node,
    last_child: Node,
    attrs_start: usize,
    attr_buf_start: usize,
    /// Namespace bindings in scope before this element's own.
    bindings_len: usize,
    ns_buf_len: usize,
    mode: TextMode,
}

/// One namespace binding in scope (`xmlns:p="uri"`, or `xmlns="uri"` with
/// an empty prefix): ranges into the driver's namespace buffer.
struct Binding {
    prefix: (usize, usize),
    uri: (usize, usize),
    /// [`Handler::known_namespace`] of the URI, asked once per binding.
    known: Option<bool>,
}

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

#[derive(Default)]
struct Base64Count {
    chars: u64,
    pad: u64,
    invalid: bool,
    /// Decoding state of [`TextMode::Base64Bytes`]: bits not yet output.
    acc: u32,
    bits: u8,
    ended: bool,
}

impl Base64Count {
    /// Decode `bytes` (standard or URL-safe alphabet) into `out`.
    fn decode(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        for &b in bytes {
            let v = match b {
                b'A'..=b'Z' => b - b'A',
                b'a'..=b'z' => b - b'a' + 26,
                b'0'..=b'9' => b - b'0' + 52,
                b'+' | b'-' => 62,
                b'/' | b'_' => 63,
                b'=' => {
                    self.ended = true;
                    continue;
                }
                _ => continue,
            };
            if self.ended {
                continue;
            }
            self.acc = (self.acc << 6) | u32::from(v);
            self.bits += 6;
            if self.bits >= 8 {
                self.bits -= 8;
                out.push((self.acc >> self.bits) as u8);
                self.acc &= (1 << self.bits) - 1;
            }
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'-' | b'_' => {
                    self.chars += 1
                }
                b'=' => self.pad += 1,
                b' ' | b'\t' | b'\r' | b'\n' => {}
                _ => self.invalid = true,
            }
        }
    }

    fn size(&self) -> u64 {
        ((self.chars + self.pad) / 4 * 3).saturating_sub(self.pad.min(2))
            + (self.chars + self.pad) % 4 * 3 / 4
    }
}

impl<H: Handler> Driver<'_, H> {
    /// Base64 text of the current element: counted, and decoded to the
    /// handler when asked.
    fn base64(&mut self, raw: &[u8], decode: bool) {
        self.b64.feed(raw);
        if decode {
            self.b64_out.clear();
            self.b64.decode(raw, &mut self.b64_out);
            if !self.b64_out.is_empty() {
                self.handler.binary(&self.b64_out);
            }
        }
    }
}

fn quick_error(err: quick_xml::Error, position: u64) -> ReadError {
    if let quick_xml::Error::Io(io) = &err {
        if let Some(d) = io.get_ref().and_then(|e| e.downcast_ref::<DecodeError>()) {
            return ReadError::new(d.message.clone(), d.position);
        }
    }
    ReadError::new(format!("XML is not well-formed: {err}"), position)
}

fn utf8(bytes: &[u8], position: u64) -> Result<&str, ReadError> {
    std::str::from_utf8(bytes)
        .map_err(|e| ReadError::new("invalid UTF-8", position + e.valid_up_to() as u64))
}

/// Whether `s` holds an entity or character reference to expand. Values
/// are short: a plain loop beats a searcher's setup.
fn has_entity(s: &str) -> bool {
    s.bytes().any(|b| b == b'&')
}

fn unescape(raw: &str, position: u64) -> Result<Cow<'_, str>, ReadError> {
    quick_xml::escape::unescape(raw)
        .map_err(|e| ReadError::new(format!("XML is not well-formed: {e}"), position))
}

/// `bytes` as text: a slice of `doc` (already validated UTF-8 as a whole)
/// is taken from it without a second validation; anything else (or a
/// streamed document, `doc` = `None`) is validated here.
fn in_doc<'a>(doc: Option<&'a str>, bytes: &'a [u8], position: u64) -> Result<&'a str, ReadError> {
    if let Some(doc) = doc {
        let start = (bytes.as_ptr() as usize).wrapping_sub(doc.as_ptr() as usize);
        if let Some(s) = doc.get(start..start.wrapping_add(bytes.len())) {
            // Same address and length: the very same bytes, already valid.
            if s.as_ptr() == bytes.as_ptr() {
                return Ok(s);
            }
        }
    }
    utf8(bytes, position)
}

/// Documents up to this size (after the XML declaration sniffing) are read
/// whole into one reused buffer, validated as UTF-8 once, and parsed in
/// place: no copy into quick-xml's event buffer, no validation per event.
/// Larger ones are streamed, so memory stays bounded whatever the input.
pub const SLURP_MAX: usize = 8 << 20;

/// Capacity kept in the per-thread document buffer between documents: up to
/// [`SLURP_MAX`], so a flow of large invoices does not pay a fresh buffer
/// (its page faults and regrowth copies, ~20 % of a 5,000-line invoice)
/// for every one; at most 8 MiB stay resident per reading thread.
const SLURP_KEEP: usize = SLURP_MAX + 1;

thread_local! {
    static SLURP_BUF: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Read one XML document from `input`, calling `handler` for each element.
pub fn drive<R: BufRead, H: Handler>(input: R, handler: &mut H) -> Result<(), ReadError> {
    drive_with_limit(input, handler, MAX_EVENT_BYTES)
}

/// [`drive`] with a custom bound on one text node or tag (for tests).
pub fn drive_with_limit<R: BufRead, H: Handler>(
    input: R,
    handler: &mut H,
    max_event: usize,
) -> Result<(), ReadError> {
    drive_with_limits(input, handler, max_event, SLURP_MAX)
}

/// [`drive_with_limit`] reading documents of at most `slurp_max` bytes whole.
fn drive_with_limits<R: BufRead, H: Handler>(
    input: R,
    handler: &mut H,
    max_event: usize,
    slurp_max: usize,
) -> Result<(), ReadError> {
    let decoded = decoding_reader_with_limit(input, max_event)?;
    if !decoded.is_utf8() {
        return drive_stream(decoded, handler, max_event);
    }
    // UTF-8 (with or without BOM): read the document whole if it is small.
    let skip = decoded.consumed;
    let mut raw = decoded.inner;
    let mut doc = SLURP_BUF.with(|b| b.take());
    doc.clear();
    if let Err(e) = (&mut raw).take(slurp_max as u64 + 1).read_to_end(&mut doc) {
        let position = skip + doc.len() as u64;
        return Err(quick_error(quick_xml::Error::from(e), position));
    }
    if doc.len() > slurp_max {
        // Too large to hold: stream it, the bytes read so far first.
        let rest = DecodingReader::new(
            io::Cursor::new(doc).chain(raw),
            Transcode::Rs(encoding_rs::UTF_8.new_decoder_without_bom_handling()),
            skip,
            max_event,
        );
        return drive_stream(rest, handler, max_event);
    }
    let result = drive_slice(&doc, skip, handler, max_event);
    if doc.capacity() <= SLURP_KEEP {
        SLURP_BUF.with(|b| b.set(doc));
    }
    result
}

/// Parse a whole UTF-8 document held in memory (`skip`: BOM bytes before it).
fn drive_slice<H: Handler>(
    doc: &[u8],
    skip: u64,
    handler: &mut H,
    max_event: usize,
) -> Result<(), ReadError> {
    let text = std::str::from_utf8(doc).map_err(|e| {
        ReadError::new("invalid UTF-8 byte sequence", skip + e.valid_up_to() as u64)
    })?;
    if doc.len() > max_event {
        // The same bound as the streaming reader: no run of more than
        // `max_event` bytes without a `<`.
        let mut last = 0usize;
        for (i, &b) in doc.iter().enumerate() {
            if b == b'<' {
                last = i + 1;
            } else if i + 1 - last > max_event {
                return Err(ReadError::new(
                    format!("a text node or tag is longer than {max_event} bytes"),
                    skip + i as u64,
                ));
            }
        }
    }
    let mut reader = Reader::from_str(text);
    configure(reader.config_mut());
    let mut state = Driver::new(handler, max_event);
    loop {
        let before = reader.buffer_position();
        let event = match reader.read_event() {
            Ok(v) => v,
            Err(e) => return Err(quick_error(e, reader.error_position())),
        };
        let done = state.event(&event, before, Some(text))?;
        if done {
            return state.finish(reader.buffer_position());
        }
    }
}

/// Parse a document as a stream (other encodings, large documents).
fn drive_stream<R: BufRead, H: Handler>(
    input: R,
    handler: &mut H,
    max_event: usize,
) -> Result<(), ReadError> {
    let mut reader = Reader::from_reader(input);
    configure(reader.config_mut());
    let mut buf = Vec::new();
    let mut state = Driver::new(handler, max_event);
    loop {
        buf.clear();
        let before = reader.buffer_position();
        let event = match reader.read_event_into(&mut buf) {
            Ok(v) => v,
            Err(e) => return Err(quick_error(e, reader.error_position())),
        };
        let done = state.event(&event, before, None)?;
        if done {
            return state.finish(reader.buffer_position());
        }
    }
}

fn configure(cfg: &mut quick_xml::reader::Config) {
    cfg.expand_empty_elements = true;
    cfg.check_end_names = true;
    cfg.trim_text(false);
}

/// The state of one document's walk, fed one event at a time.
///
/// Namespaces are resolved here rather than by quick-xml's `NsReader`: the
/// start tag's attributes are walked once for both the `xmlns` bindings and
/// the element's own attributes, and whether a namespace belongs to the
/// syntax is asked once per binding instead of once per element. The rules
/// are quick-xml's (the same errors for `xml` / `xmlns` misuse).
struct Driver<'h, H> {
    handler: &'h mut H,
    /// Bindings in scope, innermost last; the first two are `xml` and `xmlns`.
    bindings: Vec<Binding>,
    ns_buf: String,
    /// [`Handler::known_namespace`] of "no namespace", once asked.
    unbound_known: Option<bool>,
    max_event: usize,
    path: String,
    frames: Vec<Frame>,
    attrs: Vec<(u32, u32, u32)>,
    attr_buf: String,
    text: String,
    b64: Base64Count,
    /// Decoded bytes of the current [`TextMode::Base64Bytes`] event.
    b64_out: Vec<u8>,
    seen_root: bool,
    /// The line being read (1-based) and the position where it starts:
    /// every byte of the document but the markup delimiters is in some
    /// event, so counting the events' newlines tracks it exactly.
    line: u32,
    line_start: u64,
    /// This thread's element paths (given back when the walk ends).
    tree: Option<Box<paths::Tree>>,
}

impl<H> Drop for Driver<'_, H> {
    fn drop(&mut self) {
        if let Some(t) = self.tree.take() {
            t.put_back();
        }
    }
}

impl<'h, H: Handler> Driver<'h, H> {
    /// Count the newlines of `event` (which starts at `before`).
    fn count_lines(&mut self, event: &Event<'_>, before: u64) {
        let (raw, skip): (&[u8], u64) = match event {
            Event::Start(e) | Event::Empty(e) => (e, 1),
            Event::End(e) => (e, 2),
            Event::Text(e) => (e, 0),
            Event::CData(e) => (e, 9),
            Event::Comment(e) => (e, 4),
            Event::PI(e) => (e, 2),
            Event::Decl(e) => (e, 2),
            _ => return,
        };
        let Some(last) = memchr::memrchr(b'\n', raw) else {
            return;
        };
        let n = memchr::memchr_iter(b'\n', &raw[..last]).count() + 1;
        self.line = self
            .line
            .saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        self.line_start = before + skip + last as u64 + 1;
    }

    fn new(handler: &'h mut H, max_event: usize) -> Self {
        let mut ns_buf = String::new();
        let mut bindings = Vec::with_capacity(8);
        for (prefix, uri) in [("xml", XML_NS), ("xmlns", XMLNS_NS)] {
            let p = ns_buf.len();
            ns_buf.push_str(prefix);
            let u = ns_buf.len();
            ns_buf.push_str(uri);
            bindings.push(Binding {
                prefix: (p, u),
                uri: (u, ns_buf.len()),
                known: None,
            });
        }
        Driver {
            handler,
            bindings,
            ns_buf,
            unbound_known: None,
            max_event,
            path: String::new(),
            frames: Vec::new(),
            attrs: Vec::new(),
            attr_buf: String::new(),
            text: String::new(),
            b64: Base64Count::default(),
            b64_out: Vec::new(),
            seen_root: false,
            line: 1,
            line_start: 0,
            tree: Some(paths::Tree::take()),
        }
    }

    /// Record one namespace declaration of the element being opened, with
    /// quick-xml's checks on the reserved `xml` and `xmlns` prefixes.
    fn bind(
        &mut self,
        decl: PrefixDeclaration<'_>,
        uri: &str,
        before: u64,
    ) -> Result<(), ReadError> {
        let prefix: &[u8] = match decl {
            PrefixDeclaration::Default => b"",
            PrefixDeclaration::Named(b"xml") => {
                if uri != XML_NS {
                    let e = NamespaceError::InvalidXmlPrefixBind(uri.as_bytes().to_vec());
                    return Err(ReadError::new(
                        format!("XML is not well-formed: {e}"),
                        before,
                    ));
                }
                return Ok(());
            }
            PrefixDeclaration::Named(b"xmlns") => {
                let e = NamespaceError::InvalidXmlnsPrefixBind(uri.as_bytes().to_vec());
                return Err(ReadError::new(
                    format!("XML is not well-formed: {e}"),
                    before,
                ));
            }
            PrefixDeclaration::Named(p) => {
                let e = if uri == XML_NS {
                    Some(NamespaceError::InvalidPrefixForXml(p.to_vec()))
                } else if uri == XMLNS_NS {
                    Some(NamespaceError::InvalidPrefixForXmlns(p.to_vec()))
                } else {
                    None
                };
                if let Some(e) = e {
                    return Err(ReadError::new(
                        format!("XML is not well-formed: {e}"),
                        before,
                    ));
                }
                p
            }
        };
        // The prefix is part of an attribute name already read as UTF-8.
        let prefix = utf8(prefix, before)?;
        let p = self.ns_buf.len();
        self.ns_buf.push_str(prefix);
        let u = self.ns_buf.len();
        self.ns_buf.push_str(uri);
        self.bindings.push(Binding {
            prefix: (p, u),
            uri: (u, self.ns_buf.len()),
            known: None,
        });
        Ok(())
    }

    /// At the end of input (`position`): the document must be complete.
    fn finish(&self, position: u64) -> Result<(), ReadError> {
        if !self.frames.is_empty() {
            return Err(ReadError::new(
                "XML is not well-formed: document ends before its root element is closed",
                position,
            ));
        }
        if !self.seen_root {
            return Err(ReadError::new("no XML root element", position));
        }
        Ok(())
    }

    fn too_long_text(&self, before: u64) -> Result<(), ReadError> {
        // Text split by comments or CDATA sections adds up.
        if self.text.len() > self.max_event {
            return Err(ReadError::new(
                format!("a text node is longer than {} bytes", self.max_event),
                before,
            ));
        }
        Ok(())
    }

    /// Handle one event; `Ok(true)` at the end of input.
    fn event(
        &mut self,
        event: &Event<'_>,
        before: u64,
        doc: Option<&str>,
    ) -> Result<bool, ReadError> {
        let at = (
            self.line,
            u32::try_from(before.saturating_sub(self.line_start) + 1).unwrap_or(u32::MAX),
        );
        self.count_lines(event, before);
        match event {
            Event::DocType(_) => return Err(ReadError::new("DOCTYPE not allowed", before)),
            Event::Start(e) => {
                let name = e.local_name();
                let local = in_doc(doc, name.into_inner(), before)?;
                let attrs_start = self.attrs.len();
                let attr_buf_start = self.attr_buf.len();
                let bindings_len = self.bindings.len();
                let ns_buf_len = self.ns_buf.len();
                for a in e.attributes() {
                    let a = a.map_err(|err| {
                        ReadError::new(format!("XML is not well-formed: {err}"), before)
                    })?;
                    if let Some(decl) = a.key.as_namespace_binding() {
                        self.bind(decl, in_doc(doc, &a.value, before)?, before)?;
                        continue;
                    }
                    if a.key.prefix().is_some() {
                        continue;
                    }
                    let key = in_doc(doc, a.key.into_inner(), before)?;
                    let raw = in_doc(doc, &a.value, before)?;
                    let k = self.attr_buf.len();
                    self.attr_buf.push_str(key);
                    let v = self.attr_buf.len();
                    if has_entity(raw) {
                        self.attr_buf.push_str(&unescape(raw, before)?);
                    } else {
                        self.attr_buf.push_str(raw);
                    }
                    let end = self.attr_buf.len();
                    let range = |n: usize| {
                        u32::try_from(n)
                            .map_err(|_| ReadError::new("XML attributes are too large", before))
                    };
                    self.attrs.push((range(k)?, range(v)?, range(end)?));
                }
                // The element's namespace, with its own declarations in scope.
                let prefix = e.name().prefix().map(|p| p.into_inner());
                let found = self.bindings.iter().rposition(|b| {
                    let bp = &self.ns_buf.as_bytes()[b.prefix.0..b.prefix.1];
                    match prefix {
                        // Prefixes are a few bytes: compared inline, no memcmp call.
                        Some(p) => bp.len() == p.len() && bp.iter().zip(p).all(|(a, b)| a == b),
                        None => bp.is_empty(),
                    }
                });
                let found = match found {
                    Some(i) if self.bindings[i].uri.0 < self.bindings[i].uri.1 => Some(i),
                    // `xmlns=""` or no default: no namespace; a prefix
                    // bound to nothing is an error.
                    _ => match prefix {
                        None => None,
                        Some(p) => {
                            return Err(ReadError::new(
                                format!(
                                    "XML is not well-formed: unbound namespace prefix \"{}\"",
                                    String::from_utf8_lossy(p)
                                ),
                                before,
                            ))
                        }
                    },
                };
                if self.frames.is_empty() {
                    if self.seen_root {
                        return Err(ReadError::new(
                            "XML is not well-formed: more than one root element",
                            before,
                        ));
                    }
                    self.seen_root = true;
                    // Where the root starts, before it is checked.
                    self.handler.at(at.0, at.1);
                    let ns_str = match found {
                        Some(i) => {
                            let (a, b) = self.bindings[i].uri;
                            &self.ns_buf[a..b]
                        }
                        None => "",
                    };
                    self.handler
                        .root(ns_str, local)
                        .map_err(|m| ReadError::new(m, before))?;
                    // The root may change which namespaces the handler knows
                    // (ZUGFeRD 1.0 in the CII reader): ask again from here.
                    for b in &mut self.bindings {
                        b.known = None;
                    }
                    self.unbound_known = None;
                    let node = self.tree.as_ref().map_or(Node::NONE, |t| t.root());
                    self.frames.push(Frame {
                        path_len: 0,
                        local: 0,
                        node,
                        last_child: Node::NONE,
                        attrs_start,
                        attr_buf_start,
                        bindings_len,
                        ns_buf_len,
                        mode: TextMode::Keep,
                    });
                    return Ok(false);
                }
                if self.frames.len() >= MAX_DEPTH {
                    return Err(ReadError::new(
                        format!("elements nested deeper than {MAX_DEPTH}"),
                        before,
                    ));
                }
                let path_len = self.path.len();
                let local = self.handler.alias(&self.path, local);
                if self.frames.len() > 1 {
                    self.path.push('/');
                }
                let known = match found {
                    Some(i) => match self.bindings[i].known {
                        Some(k) => k,
                        None => {
                            let (a, b) = self.bindings[i].uri;
                            let k = self.handler.known_namespace(&self.ns_buf[a..b]);
                            self.bindings[i].known = Some(k);
                            k
                        }
                    },
                    None => *self
                        .unbound_known
                        .get_or_insert_with(|| self.handler.known_namespace("")),
                };
                let local_at = self.path.len();
                if !known {
                    self.path.push('~');
                }
                self.path.push_str(local);
                self.text.clear();
                let attrs = Attrs {
                    buf: &self.attr_buf,
                    items: self.attrs.get(attrs_start..).unwrap_or(&[]),
                };
                let parent = self.frames.last_mut().expect("the root is open");
                let node = match self.tree.as_mut() {
                    Some(t) => t.child(parent.node, parent.last_child, &self.path[local_at..]),
                    None => Node::NONE,
                };
                parent.last_child = node;
                let el = Element {
                    path: &self.path,
                    node,
                    local: local_at,
                    parent: path_len,
                    parent_local: parent.local,
                };
                self.handler.at(at.0, at.1);
                let mode = self.handler.start_element(&el, &attrs);
                if mode.is_base64() {
                    self.b64 = Base64Count::default();
                }
                self.frames.push(Frame {
                    path_len,
                    local: local_at,
                    node,
                    last_child: Node::NONE,
                    attrs_start,
                    attr_buf_start,
                    bindings_len,
                    ns_buf_len,
                    mode,
                });
            }
            Event::End(_) => {
                let Some(frame) = self.frames.pop() else {
                    return Err(ReadError::new(
                        "XML is not well-formed: unexpected end tag",
                        before,
                    ));
                };
                if let Some(parent) = self.frames.last() {
                    let a = Attrs {
                        buf: &self.attr_buf,
                        items: self.attrs.get(frame.attrs_start..).unwrap_or(&[]),
                    };
                    let el = Element {
                        path: &self.path,
                        node: frame.node,
                        local: frame.local,
                        parent: frame.path_len,
                        parent_local: parent.local,
                    };
                    match frame.mode {
                        TextMode::Keep => self.handler.end_element(&el, &a, self.text.trim(), None),
                        TextMode::Base64Size | TextMode::Base64Bytes => {
                            let size = (!self.b64.invalid).then(|| self.b64.size());
                            self.handler.end_element(&el, &a, "", size);
                        }
                    }
                }
                self.path.truncate(frame.path_len);
                self.attrs.truncate(frame.attrs_start);
                self.attr_buf.truncate(frame.attr_buf_start);
                self.bindings.truncate(frame.bindings_len);
                self.ns_buf.truncate(frame.ns_buf_len);
                self.text.clear();
            }
            Event::Text(t) => {
                let raw: &[u8] = t;
                match self.frames.last() {
                    None => {
                        if raw.iter().any(|b| !b.is_ascii_whitespace()) {
                            return Err(ReadError::new(
                                "XML is not well-formed: text outside the root element",
                                before,
                            ));
                        }
                    }
                    Some(f) if f.mode.is_base64() => {
                        let decode = f.mode == TextMode::Base64Bytes;
                        self.base64(raw, decode)
                    }
                    Some(_) => {
                        let s = in_doc(doc, raw, before)?;
                        if has_entity(s) {
                            self.text.push_str(&unescape(s, before)?);
                        } else {
                            self.text.push_str(s);
                        }
                        self.too_long_text(before)?;
                    }
                }
            }
            Event::CData(t) => {
                let raw: &[u8] = t;
                match self.frames.last() {
                    None => {
                        return Err(ReadError::new(
                            "XML is not well-formed: CDATA outside the root element",
                            before,
                        ))
                    }
                    Some(f) if f.mode.is_base64() => {
                        let decode = f.mode == TextMode::Base64Bytes;
                        self.base64(raw, decode)
                    }
                    Some(_) => self.text.push_str(in_doc(doc, raw, before)?),
                }
                self.too_long_text(before)?;
            }
            Event::Empty(_) => {} // expanded into Start + End by the config
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::Eof => return Ok(true),
        }
        Ok(false)
    }
}

/// The namespace URI and local name of the root element, reading no further
/// than the root's start tag (used to dispatch and for clear errors).
pub fn root_element<R: BufRead>(input: R) -> Result<(String, String), ReadError> {
    struct Probe(Option<(String, String)>);
    impl Handler for Probe {
        fn known_namespace(&self, _: &str) -> bool {
            true
        }
        fn root(&mut self, ns: &str, local: &str) -> Result<(), String> {
            self.0 = Some((ns.to_string(), local.to_string()));
            Err(String::new())
        }
        fn end(&mut self, _: &str, _: &Attrs<'_>, _: &str, _: Option<u64>) {}
    }
    let mut p = Probe(None);
    let res = drive(input, &mut p);
    match (p.0, res) {
        (Some(r), _) => Ok(r),
        (None, Err(e)) => Err(e),
        (None, Ok(())) => Err(ReadError::new("no XML root element", 0)),
    }
}

// ---------------------------------------------------------------------------
// Value parsers
// ---------------------------------------------------------------------------

/// Collects `SYNTAX` violations while parsing values.
#[derive(Debug, Default)]
pub struct Values {
    pub issues: Vec<Violation>,
}

impl Values {
    fn syntax(&mut self, term: &str, message: String) {
        self.issues.push(Violation::fatal(
            "SYNTAX",
            term,
            format!("{term}: {message}"),
        ));
    }

    /// A non-empty trimmed string, or `None`.
    pub fn text(s: &str) -> Option<String> {
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_string())
    }

    /// A decimal keeping its written scale (`"10.50"` has scale 2).
    pub fn decimal(&mut self, term: &str, s: &str) -> Option<Decimal> {
        let s = s.trim();
        if s.is_empty() {
            self.syntax(term, "is empty (expected a number)".into());
            return None;
        }
        match parse_decimal(s) {
            Some(d) => Some(d),
            None => {
                self.syntax(
                    term,
                    format!("\"{}\" is not a number (expected digits with an optional decimal point, e.g. 1234.56)", clip(s)),
                );
                None
            }
        }
    }

    /// A UBL / ISO date `YYYY-MM-DD` (an xs:date timezone suffix is tolerated).
    pub fn date_iso(&mut self, term: &str, s: &str) -> Option<NaiveDate> {
        let s = s.trim();
        match parse_iso_date(s) {
            Some(d) => Some(d),
            None => {
                self.syntax(
                    term,
                    format!("\"{}\" is not a date (expected YYYY-MM-DD)", clip(s)),
                );
                None
            }
        }
    }

    /// A CII `udt:DateTimeString` / `qdt:DateTimeString` with its `format`
    /// attribute; EN 16931 allows only format 102 (`YYYYMMDD`).
    pub fn date_cii(&mut self, term: &str, s: &str, format: Option<&str>) -> Option<NaiveDate> {
        let s = s.trim();
        match format.unwrap_or("102") {
            "102" => match parse_yyyymmdd(s) {
                Some(d) => Some(d),
                None => {
                    self.syntax(
                        term,
                        format!(
                            "\"{}\" is not a date (expected YYYYMMDD, format 102)",
                            clip(s)
                        ),
                    );
                    None
                }
            },
            other => {
                self.syntax(
                    term,
                    format!(
                        "date format \"{}\" is not allowed (expected 102, YYYYMMDD)",
                        clip(other)
                    ),
                );
                None
            }
        }
    }
}

fn clip(s: &str) -> Cow<'_, str> {
    if s.chars().count() > 60 {
        Cow::Owned(format!("{}…", s.chars().take(60).collect::<String>()))
    } else {
        Cow::Borrowed(s)
    }
}

/// Strict xs:decimal: optional sign, digits, optional `.` and digits.
pub fn parse_decimal(s: &str) -> Option<Decimal> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    Decimal::from_str(s).ok()
}

/// `YYYY-MM-DD`, optionally followed by an xs:date timezone (`Z`, `+hh:mm`).
pub fn parse_iso_date(s: &str) -> Option<NaiveDate> {
    if s.len() < 10 || !s.is_char_boundary(10) {
        return None;
    }
    let (date, tz) = s.split_at(10);
    let b = date.as_bytes();
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| {
        b[r.clone()]
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| date[r].parse::<u32>().ok())
            .flatten()
    };
    let (y, m, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let tz_ok = tz.is_empty()
        || tz == "Z"
        || (tz.len() == 6
            && (tz.starts_with('+') || tz.starts_with('-'))
            && tz.as_bytes()[3] == b':'
            && tz[1..3]
                .bytes()
                .chain(tz[4..6].bytes())
                .all(|c| c.is_ascii_digit()));
    if !tz_ok {
        return None;
    }
    NaiveDate::from_ymd_opt(y as i32, m, d)
}

/// `YYYYMMDD`.
pub fn parse_yyyymmdd(s: &str) -> Option<NaiveDate> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y = s[0..4].parse::<i32>().ok()?;
    let m = s[4..6].parse::<u32>().ok()?;
    let d = s[6..8].parse::<u32>().ok()?;
    NaiveDate::from_ymd_opt(y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records every leaf as `path=text`.
    #[derive(Debug, Default)]
    struct Rec {
        leaves: Vec<String>,
        sizes: Vec<u64>,
    }
    impl Handler for Rec {
        fn known_namespace(&self, ns: &str) -> bool {
            ns.is_empty() || ns == "urn:x"
        }
        fn root(&mut self, _: &str, local: &str) -> Result<(), String> {
            if local == "r" {
                Ok(())
            } else {
                Err(format!("unexpected root {local}"))
            }
        }
        fn start(&mut self, path: &str, _: &Attrs<'_>) -> TextMode {
            if path.ends_with("bin") {
                TextMode::Base64Size
            } else {
                TextMode::Keep
            }
        }
        fn end(&mut self, path: &str, attrs: &Attrs<'_>, text: &str, size: Option<u64>) {
            if let Some(s) = size {
                self.sizes.push(s);
            }
            let a = attrs.get("a").map(|v| format!("@{v}")).unwrap_or_default();
            self.leaves.push(format!("{path}{a}={text}"));
        }
    }

    fn run(bytes: &[u8]) -> Result<Rec, ReadError> {
        let mut r = Rec::default();
        drive(bytes, &mut r)?;
        Ok(r)
    }

    #[test]
    fn paths_attrs_and_entities() {
        let r = run(b"<?xml version='1.0'?><r xmlns:f='urn:f'><a a='1&amp;2'> x &lt;&#65;&#x42; </a><f:b><c/></f:b><![CDATA[z]]></r>").unwrap();
        assert_eq!(r.leaves, vec!["a@1&2=x <AB", "~b/c=", "~b="]);
    }

    /// The in-place parse (small UTF-8 documents) and the streamed one give
    /// the same leaves and the same errors.
    fn both(bytes: &[u8]) -> Result<Vec<String>, String> {
        let mut a = Rec::default();
        let slice = drive(bytes, &mut a).map(|()| a.leaves);
        let mut b = Rec::default();
        let streamed = decoding_reader(bytes)
            .and_then(|d| drive_stream(d, &mut b, MAX_EVENT_BYTES))
            .map(|()| b.leaves);
        assert_eq!(slice, streamed, "{}", String::from_utf8_lossy(bytes));
        slice.map_err(|e| e.message)
    }

    #[test]
    fn large_documents_are_streamed_from_where_reading_stopped() {
        // Read whole below the bound, streamed above it (the bytes already
        // read first): same leaves, same errors, same positions, whether
        // the bound falls in a tag, in a multi-byte character or after a BOM.
        let mut docs: Vec<Vec<u8>> = vec![
            "<r xmlns:f='urn:f'><a a='é&amp;'>Müller € x</a><f:b><c>ü</c></f:b></r>"
                .as_bytes()
                .to_vec(),
            b"<r><a>1</b></r>".to_vec(),
        ];
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice("<r><a>ßé</a></r>".as_bytes());
        docs.push(bom);
        let mut bad = b"<r><a>abcdefgh".to_vec();
        bad.extend_from_slice(&[0xC3, 0x28]);
        bad.extend_from_slice(b"</a></r>");
        docs.push(bad);
        for doc in &docs {
            let mut whole = Rec::default();
            let expected = drive(&doc[..], &mut whole).map(|()| whole.leaves);
            for slurp_max in [0, 1, 7, 8, 9, 10, 20, doc.len() - 1] {
                let mut r = Rec::default();
                let got = drive_with_limits(&doc[..], &mut r, MAX_EVENT_BYTES, slurp_max)
                    .map(|()| r.leaves);
                assert_eq!(
                    got,
                    expected,
                    "bound {slurp_max}: {}",
                    String::from_utf8_lossy(doc)
                );
            }
        }
    }

    #[test]
    fn namespaces_are_scoped() {
        // urn:x is known, urn:f is foreign; the default namespace and a
        // prefix redeclared inside an element apply to it and below only.
        let leaves = both(
            b"<r xmlns:f='urn:f' xmlns:x='urn:x'><a/><f:b><x:c/></f:b>\
              <d xmlns='urn:f'><e/><g xmlns=''><h/></g></d>\
              <f:i xmlns:f='urn:x'><f:j/></f:i><f:k/><l/></r>",
        )
        .unwrap();
        assert_eq!(
            leaves,
            vec![
                "a=", "~b/c=", "~b=", "~d/~e=", "~d/g/h=", "~d/g=", "~d=", "i/j=", "i=", "~k=",
                "l="
            ]
        );
        // Attributes: namespaced ones and declarations are not kept.
        let leaves = both(b"<r xmlns:p='urn:f'><a p:a='1' xml:lang='fr' a='2'/></r>").unwrap();
        assert_eq!(leaves, vec!["a@2="]);
    }

    #[test]
    fn namespace_errors() {
        let msg = |doc: &[u8]| both(doc).unwrap_err();
        assert!(msg(b"<r><p:a/></r>").contains("unbound namespace prefix \"p\""));
        // A prefix's scope ends with its element.
        assert!(msg(b"<r><a xmlns:p='urn:f'/><p:b/></r>").contains("unbound namespace prefix"));
        assert!(msg(b"<r xmlns:p='urn:f'><a xmlns:p=''><p:b/></a></r>").contains("unbound"));
        assert!(msg(b"<r xmlns:xml='urn:f'/>").contains("'xml' cannot be bound"));
        assert!(msg(b"<r xmlns:xmlns='urn:f'/>").contains("'xmlns' cannot be bound"));
        assert!(
            msg(b"<r xmlns:p='http://www.w3.org/XML/1998/namespace'/>").contains("cannot be bound")
        );
        assert!(msg(b"<r xmlns:p='http://www.w3.org/2000/xmlns/'/>").contains("cannot be bound"));
        // The xml prefix is always bound.
        assert_eq!(both(b"<r><xml:a/></r>").unwrap(), vec!["~a="]);
    }

    #[test]
    fn in_place_and_streamed_agree() {
        for doc in [
            &b"<?xml version='1.0'?><r xmlns:f='urn:f'><a a='1&amp;2'> x &lt;&#65;&#x42; </a><f:b><c/></f:b><![CDATA[z]]></r>"[..],
            b"<r><a>1</b></r>",
            b"<r><a>1</a>",
            b"<r/><r/>",
            b"<q/>",
            b"<r><a b='1' b='2'/></r>",
            b"<r><a>&lol;</a></r>",
            b"<r><bin>SGVs\nbG8=</bin></r>",
            "<r><a>é\u{20ac}</a><b x='ü'/></r>".as_bytes(),
            b"",
            b"  ",
            b"text<r/>",
        ] {
            let _ = both(doc);
        }
    }

    #[test]
    fn doctype_is_refused() {
        let e =
            run(b"<?xml version='1.0'?><!DOCTYPE r [<!ENTITY x 'boom'>]><r>&x;</r>").unwrap_err();
        assert_eq!(e.message, "DOCTYPE not allowed");
    }

    #[test]
    fn custom_and_external_entities_are_not_expanded() {
        // Without a DTD, an undeclared entity is an error, never an expansion.
        let e = run(b"<r><a>&lol;</a></r>").unwrap_err();
        assert!(e.message.contains("not well-formed"), "{e}");
        let e = run(b"<!DOCTYPE r SYSTEM 'file:///etc/passwd'><r>&xxe;</r>").unwrap_err();
        assert_eq!(e.message, "DOCTYPE not allowed");
    }

    #[test]
    fn invalid_utf8_is_rejected_with_position() {
        let mut doc = b"<r><a>abc".to_vec();
        let at = doc.len();
        doc.extend_from_slice(&[0xC3, 0x28]);
        doc.extend_from_slice(b"</a></r>");
        let e = run(&doc).unwrap_err();
        assert!(e.message.contains("invalid UTF-8"), "{e}");
        assert_eq!(e.position, at as u64);
    }

    #[test]
    fn iso_8859_1_and_windows_1252_are_decoded() {
        let doc =
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><r><a>Soci\xe9t\xe9 \x80</a></r>";
        assert_eq!(run(doc).unwrap().leaves, vec!["a=Soci\u{e9}t\u{e9} \u{80}"]);
        let doc = b"<?xml version=\"1.0\" encoding=\"windows-1252\"?><r><a>\x80 M\xfcller</a></r>";
        assert_eq!(run(doc).unwrap().leaves, vec!["a=\u{20ac} M\u{fc}ller"]);
    }

    #[test]
    fn utf8_bom_and_utf16_are_decoded() {
        let mut doc = vec![0xEF, 0xBB, 0xBF];
        doc.extend_from_slice("<r><a>é</a></r>".as_bytes());
        assert_eq!(run(&doc).unwrap().leaves, vec!["a=é"]);
        for be in [false, true] {
            let s = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><r><a>ü€</a></r>";
            let mut doc = if be {
                vec![0xFE, 0xFF]
            } else {
                vec![0xFF, 0xFE]
            };
            for u in s.encode_utf16() {
                doc.extend_from_slice(&if be { u.to_be_bytes() } else { u.to_le_bytes() });
            }
            assert_eq!(run(&doc).unwrap().leaves, vec!["a=ü€"]);
        }
    }

    #[test]
    fn huge_text_node_is_rejected() {
        let mut doc = b"<r><a>".to_vec();
        doc.extend(std::iter::repeat_n(b'x', 5000));
        doc.extend_from_slice(b"</a></r>");
        let mut r = Rec::default();
        let e = drive_with_limit(&doc[..], &mut r, 1000).unwrap_err();
        assert!(e.message.contains("longer than"), "{e}");
        // Pieces joined by comments count together.
        let mut doc = b"<r><a>".to_vec();
        for _ in 0..10 {
            doc.extend(std::iter::repeat_n(b'y', 300));
            doc.extend_from_slice(b"<!---->");
        }
        doc.extend_from_slice(b"</a></r>");
        let e = drive_with_limit(&doc[..], &mut Rec::default(), 1000).unwrap_err();
        assert!(e.message.contains("longer than"), "{e}");
        // A document under the bound reads fine.
        let mut r = Rec::default();
        drive_with_limit(&doc[..], &mut r, 10_000).unwrap();
    }

    #[test]
    fn not_well_formed_is_rejected_with_position() {
        let e = run(b"<r><a>1</b></r>").unwrap_err();
        assert!(e.message.contains("not well-formed"), "{e}");
        assert!(e.position > 0);
        assert!(run(b"<r><a>1</a>")
            .unwrap_err()
            .message
            .contains("ends before"));
        assert!(run(b"<r/><r/>")
            .unwrap_err()
            .message
            .contains("more than one root"));
        assert!(run(b"<x:r/>")
            .unwrap_err()
            .message
            .contains("unbound namespace prefix"));
        assert!(run(b"<q/>")
            .unwrap_err()
            .message
            .contains("unexpected root"));
    }

    #[test]
    fn base64_is_counted_not_kept() {
        let r = run(b"<r><bin>SGVs\nbG8=</bin><bin>QUJD</bin><bin>QQ==</bin></r>").unwrap();
        assert_eq!(r.sizes, vec![5, 3, 1]);
        assert!(r.leaves.iter().all(|l| l.ends_with('=')));
    }

    #[test]
    fn value_parsers() {
        let mut v = Values::default();
        let d = v.decimal("BT-131", " 10.50 ").unwrap();
        assert_eq!((d.to_string(), d.scale()), ("10.50".to_string(), 2));
        assert_eq!(v.decimal("BT-131", "-3").unwrap().to_string(), "-3");
        assert_eq!(v.decimal("BT-131", "+.5").unwrap().to_string(), "0.5");
        for bad in ["12,50", "1e5", "1_000", "", ".", "--1", "abc"] {
            assert_eq!(v.decimal("BT-131", bad), None, "{bad}");
        }
        assert_eq!(
            v.date_iso("BT-2", "2024-02-29"),
            NaiveDate::from_ymd_opt(2024, 2, 29)
        );
        assert_eq!(
            v.date_iso("BT-2", "2024-02-29+01:00"),
            NaiveDate::from_ymd_opt(2024, 2, 29)
        );
        assert_eq!(v.date_iso("BT-2", "2024-13-45"), None);
        assert_eq!(
            v.date_cii("BT-2", "20240131", Some("102")),
            NaiveDate::from_ymd_opt(2024, 1, 31)
        );
        assert_eq!(v.date_cii("BT-2", "2024-01-31", Some("102")), None);
        assert_eq!(v.date_cii("BT-2", "202401", Some("610")), None);
        let msgs: Vec<_> = v.issues.iter().map(|i| i.message.as_str()).collect();
        assert!(
            msgs.contains(&"BT-2: \"2024-13-45\" is not a date (expected YYYY-MM-DD)"),
            "{msgs:?}"
        );
        assert!(v.issues.iter().all(|i| i.rule == "SYNTAX"));
        assert_eq!(v.issues.len(), 7 + 3);
    }
}
