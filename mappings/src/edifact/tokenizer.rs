//! EDIFACT segment tokenizer over any `BufRead`.
//!
//! One reusable [`Segment`] buffer holds the current segment with release
//! characters already removed; components are ranges into it, so a segment
//! costs no allocation once the buffers have grown. Line breaks (CR, LF)
//! are dropped wherever they appear unless one of them is a delimiter:
//! between segments (one segment a line) and, as StAEDI tolerates, inside
//! segments (files hard-wrapped at a fixed width). Empty segments (stray
//! terminators) are skipped. A segment longer than [`MAX_SEGMENT`] bytes is
//! an error, which bounds memory whatever the input.

use std::io::{self, BufRead};

/// Longest segment accepted, in bytes after unescaping.
pub const MAX_SEGMENT: usize = 1 << 20;

/// Service characters, from `UNA` or the defaults `:+.? '`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimiters {
    pub component: u8,
    pub element: u8,
    pub decimal: u8,
    /// `None` when UNA gives a space (no release character).
    pub release: Option<u8>,
    /// Repetition separator (syntax 4) or reserved; kept as data.
    pub repetition: Option<u8>,
    pub segment: u8,
}

impl Default for Delimiters {
    fn default() -> Self {
        Delimiters {
            component: b':',
            element: b'+',
            decimal: b'.',
            release: Some(b'?'),
            repetition: None,
            segment: b'\'',
        }
    }
}

impl Delimiters {
    /// From the six characters following `UNA`.
    pub fn from_una(chars: [u8; 6]) -> Delimiters {
        let opt = |c: u8| if c == b' ' { None } else { Some(c) };
        Delimiters {
            component: chars[0],
            element: chars[1],
            decimal: chars[2],
            release: opt(chars[3]),
            repetition: opt(chars[4]),
            segment: chars[5],
        }
    }
}

/// A tokenizer failure: what and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    pub message: String,
    /// Byte offset in the stream.
    pub offset: u64,
    /// Number of the segment being read (1-based, UNA not counted).
    pub segment: u64,
}

/// One segment: tag and data elements, each a list of components.
#[derive(Debug, Default, Clone)]
pub struct Segment {
    buf: Vec<u8>,
    /// Component byte ranges into `buf`.
    comps: Vec<(u32, u32)>,
    /// Element ranges into `comps` (element 0 is the tag).
    elems: Vec<(u32, u32)>,
    /// Byte offset of the segment's first byte in the stream.
    pub offset: u64,
    /// Segment number in the stream (1-based, UNA not counted).
    pub number: u64,
}

impl Segment {
    fn clear(&mut self) {
        self.buf.clear();
        self.comps.clear();
        self.elems.clear();
    }

    fn end_component(&mut self, start: &mut usize) {
        self.comps.push((*start as u32, self.buf.len() as u32));
        *start = self.buf.len();
    }

    fn end_element(&mut self, comp_start: &mut usize, elem_start: &mut usize) {
        self.end_component(comp_start);
        self.elems
            .push((*elem_start as u32, self.comps.len() as u32));
        *elem_start = self.comps.len();
    }

    /// The segment tag (`UNH`, `BGM`...).
    pub fn tag(&self) -> &[u8] {
        self.get_raw(0, 0).unwrap_or(&[])
    }

    /// The tag as text (`?` for non-ASCII tags).
    pub fn tag_str(&self) -> &str {
        std::str::from_utf8(self.tag()).unwrap_or("?")
    }

    /// Number of data elements after the tag.
    pub fn len(&self) -> usize {
        self.elems.len().saturating_sub(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Component `c` (0-based) of element `e` (0 = tag, 1 = first data
    /// element), `None` when absent; may be empty.
    pub fn get_raw(&self, e: usize, c: usize) -> Option<&[u8]> {
        let &(cs, ce) = self.elems.get(e)?;
        let idx = cs as usize + c;
        if idx >= ce as usize {
            return None;
        }
        let &(s, t) = self.comps.get(idx)?;
        Some(&self.buf[s as usize..t as usize])
    }

    /// Like [`Segment::get_raw`], but `None` for empty values too.
    pub fn get(&self, e: usize, c: usize) -> Option<&[u8]> {
        self.get_raw(e, c).filter(|v| !v.is_empty())
    }

    /// Number of components of element `e`.
    pub fn components(&self, e: usize) -> usize {
        self.elems
            .get(e)
            .map(|&(s, t)| (t - s) as usize)
            .unwrap_or(0)
    }

    /// ASCII view of a value (codes, qualifiers, numbers); `None` if absent,
    /// empty or not ASCII.
    pub fn code(&self, e: usize, c: usize) -> Option<&str> {
        let v = self.get(e, c)?;
        if v.is_ascii() {
            std::str::from_utf8(v).ok()
        } else {
            None
        }
    }
}

/// Which bytes need a look of their own while splitting a segment.
fn byte_classes(d: &Delimiters) -> [bool; 256] {
    let mut class = [false; 256];
    for b in [d.component, d.element, d.segment, b'\r', b'\n'] {
        class[usize::from(b)] = true;
    }
    if let Some(r) = d.release {
        class[usize::from(r)] = true;
    }
    class
}

/// `fill_buf` with the error mapped to a positioned [`TokenError`].
macro_rules! fill {
    ($s:ident) => {{
        let (offset, segment) = ($s.offset, $s.count + 1);
        $s.reader.fill_buf().map_err(|e| TokenError {
            message: format!("read error: {e}"),
            offset,
            segment,
        })?
    }};
}

/// Reads segments one at a time.
pub struct Tokenizer<R> {
    reader: R,
    delims: Delimiters,
    offset: u64,
    count: u64,
    seg: Segment,
    /// Bytes that are not plain data under `delims`: delimiters, the
    /// release character, CR and LF (see [`byte_classes`]).
    class: [bool; 256],
    started: bool,
    replay: bool,
    una_seen: bool,
}

impl<R: BufRead> Tokenizer<R> {
    pub fn new(reader: R) -> Self {
        Tokenizer {
            reader,
            delims: Delimiters::default(),
            offset: 0,
            count: 0,
            seg: Segment::default(),
            class: byte_classes(&Delimiters::default()),
            started: false,
            replay: false,
            una_seen: false,
        }
    }

    pub fn delimiters(&self) -> Delimiters {
        self.delims
    }

    /// Whether the stream began with a UNA service string advice.
    pub fn una_seen(&self) -> bool {
        self.una_seen
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Segments read so far.
    pub fn segment_count(&self) -> u64 {
        self.count
    }

    /// Make the next [`Tokenizer::next_segment`] return the current segment again.
    pub fn push_back(&mut self) {
        self.replay = true;
    }

    fn err(&self, message: impl Into<String>) -> TokenError {
        TokenError {
            message: message.into(),
            offset: self.offset,
            segment: self.count + 1,
        }
    }

    /// Skip BOM and whitespace, then read a UNA if there is one.
    /// Also called when a new interchange starts after a UNZ.
    pub fn read_una(&mut self) -> Result<(), TokenError> {
        self.started = true;
        self.skip_blank(true)?;
        let head = fill!(self);
        if !head.starts_with(b"UNA") {
            return Ok(());
        }
        let mut una = [0u8; 9];
        let mut got = 0;
        while got < 9 {
            let buf = fill!(self);
            if buf.is_empty() {
                return Err(self.err("UNA service string advice is cut short"));
            }
            let n = buf.len().min(9 - got);
            una[got..got + n].copy_from_slice(&buf[..n]);
            self.reader.consume(n);
            self.offset += n as u64;
            got += n;
        }
        let mut chars = [0u8; 6];
        chars.copy_from_slice(&una[3..9]);
        let d = Delimiters::from_una(chars);
        let mut all = vec![d.component, d.element, d.segment];
        all.extend(d.release);
        let mut dedup = all.clone();
        dedup.sort_unstable();
        dedup.dedup();
        if dedup.len() != all.len() || all.iter().any(|c| c.is_ascii_alphanumeric()) {
            return Err(self.err(format!(
                "UNA declares unusable service characters {:?}",
                String::from_utf8_lossy(&chars)
            )));
        }
        self.delims = d;
        self.class = byte_classes(&d);
        self.una_seen = true;
        Ok(())
    }

    /// Skip a UTF-8 BOM (at the very start) and blank bytes.
    fn skip_blank(&mut self, bom: bool) -> Result<(), TokenError> {
        if bom {
            let buf = fill!(self);
            if buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
                self.reader.consume(3);
                self.offset += 3;
            }
        }
        loop {
            let buf = fill!(self);
            if buf.is_empty() {
                return Ok(());
            }
            let n = buf
                .iter()
                .position(|&b| !(b == b'\r' || b == b'\n' || b == b' ' || b == b'\t' || b == 0))
                .unwrap_or(buf.len());
            let all = n == buf.len();
            self.reader.consume(n);
            self.offset += n as u64;
            if !all {
                return Ok(());
            }
        }
    }

    /// Peek whether the remaining input (after blanks) starts with `UNA` or
    /// `UNB`; used to find a second interchange after a UNZ.
    pub fn at_interchange_start(&mut self) -> Result<bool, TokenError> {
        self.skip_blank(false)?;
        // Stray segment terminators between interchanges.
        loop {
            let term = self.delims.segment;
            let buf = fill!(self);
            if buf.first() != Some(&term) {
                break;
            }
            self.reader.consume(1);
            self.offset += 1;
            self.skip_blank(false)?;
        }
        let buf = fill!(self);
        Ok(buf.starts_with(b"UNA") || buf.starts_with(b"UNB"))
    }

    /// True when only blanks remain.
    pub fn at_eof(&mut self) -> Result<bool, TokenError> {
        self.skip_blank(false)?;
        loop {
            let term = self.delims.segment;
            let buf = fill!(self);
            if buf.first() != Some(&term) {
                break;
            }
            self.reader.consume(1);
            self.offset += 1;
            self.skip_blank(false)?;
        }
        Ok(fill!(self).is_empty())
    }

    /// Skip `n` raw bytes (the object of a UNO/UNP package), streaming.
    pub fn skip_raw(&mut self, mut n: u64) -> Result<(), TokenError> {
        while n > 0 {
            let buf = fill!(self);
            if buf.is_empty() {
                return Err(self.err(format!("package object cut short: {n} bytes missing")));
            }
            let k = (buf.len() as u64).min(n) as usize;
            self.reader.consume(k);
            self.offset += k as u64;
            n -= k as u64;
        }
        Ok(())
    }

    /// The next segment, or `None` at the end of input.
    pub fn next_segment(&mut self) -> Result<Option<&Segment>, TokenError> {
        if self.replay {
            self.replay = false;
            return Ok(Some(&self.seg));
        }
        if !self.started {
            self.read_una()?;
        }
        loop {
            self.skip_blank(false)?;
            self.seg.clear();
            self.seg.offset = self.offset;
            let d = self.delims;
            let keep_cr = d.segment == b'\r' || d.element == b'\r' || d.component == b'\r';
            let keep_lf = d.segment == b'\n' || d.element == b'\n' || d.component == b'\n';
            let mut comp_start = 0usize;
            let mut elem_start = 0usize;
            let mut escaped = false;
            let mut terminated = false;
            let mut any = false;
            while !terminated {
                let buf = match self.reader.fill_buf() {
                    Ok(b) => b,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(self.err(format!("read error: {e}"))),
                };
                if buf.is_empty() {
                    break;
                }
                // Runs of ordinary bytes (no delimiter, release character
                // or line break) are copied whole: most bytes of a segment.
                let class = &self.class;
                let mut used = 0;
                while used < buf.len() {
                    let start = used;
                    while used < buf.len() && !class[usize::from(buf[used])] {
                        used += 1;
                    }
                    if used > start {
                        let room = MAX_SEGMENT + 1 - self.seg.buf.len();
                        if used - start >= room {
                            // Same error point as byte by byte: the byte
                            // that makes the segment one too long.
                            let used = start + room;
                            self.offset += used as u64;
                            self.reader.consume(used);
                            return Err(
                                self.err(format!("segment longer than {MAX_SEGMENT} bytes"))
                            );
                        }
                        self.seg.buf.extend_from_slice(&buf[start..used]);
                        any = true;
                        escaped = false;
                        if used == buf.len() {
                            break;
                        }
                    }
                    let b = buf[used];
                    used += 1;
                    if (b == b'\n' && !keep_lf) || (b == b'\r' && !keep_cr) {
                        continue;
                    }
                    any = true;
                    if escaped {
                        self.seg.buf.push(b);
                        escaped = false;
                    } else if Some(b) == d.release {
                        escaped = true;
                    } else if b == d.component {
                        self.seg.end_component(&mut comp_start);
                    } else if b == d.element {
                        self.seg.end_element(&mut comp_start, &mut elem_start);
                    } else if b == d.segment {
                        self.seg.end_element(&mut comp_start, &mut elem_start);
                        terminated = true;
                        break;
                    } else {
                        self.seg.buf.push(b);
                    }
                    if self.seg.buf.len() > MAX_SEGMENT || self.seg.comps.len() > MAX_SEGMENT / 8 {
                        self.offset += used as u64;
                        self.reader.consume(used);
                        return Err(self.err(format!("segment longer than {MAX_SEGMENT} bytes")));
                    }
                }
                self.reader.consume(used);
                self.offset += used as u64;
            }
            if !terminated {
                if any {
                    let tag = String::from_utf8_lossy(&self.seg.buf[..self.seg.buf.len().min(3)])
                        .into_owned();
                    return Err(TokenError {
                        message: format!("the final segment ({tag}) has no segment terminator: the interchange is truncated"),
                        offset: self.seg.offset,
                        segment: self.count + 1,
                    });
                }
                return Ok(None);
            }
            // Stray terminators: empty segments are skipped.
            if self.seg.buf.is_empty() {
                continue;
            }
            self.count += 1;
            self.seg.number = self.count;
            let tag = self.seg.tag();
            if tag.len() != 3
                || !tag
                    .iter()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            {
                let shown = String::from_utf8_lossy(&tag[..tag.len().min(12)]).into_owned();
                return Err(TokenError {
                    message: format!("'{shown}' is not a segment tag"),
                    offset: self.seg.offset,
                    segment: self.count,
                });
            }
            return Ok(Some(&self.seg));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Result<Vec<Vec<Vec<String>>>, TokenError> {
        let mut t = Tokenizer::new(input);
        let mut out = Vec::new();
        while let Some(s) = t.next_segment()? {
            let mut elems = Vec::new();
            for e in 0..=s.len() {
                let comps = (0..s.components(e))
                    .map(|c| String::from_utf8_lossy(s.get_raw(e, c).unwrap_or(b"")).into_owned())
                    .collect();
                elems.push(comps);
            }
            out.push(elems);
        }
        Ok(out)
    }

    #[test]
    fn default_and_una() {
        let segs = all(b"UNB+UNOA:3+S'FTX+AAB+++a?+b?:c?'d??'").unwrap();
        assert_eq!(segs[0], vec![vec!["UNB"], vec!["UNOA", "3"], vec!["S"]]);
        assert_eq!(segs[1][4], vec!["a+b:c'd?"]);
        let segs = all(b"UNA=*.? ~UNB*UNOA=3~\nBGM*380*1~").unwrap();
        assert_eq!(segs[0][1], vec!["UNOA", "3"]);
        assert_eq!(segs[1][2], vec!["1"]);
    }

    #[test]
    fn wrapped_lines_and_stray_terminators() {
        let segs = all(b"UNB+UN\r\nOA:3'\n''BGM+3\n80'").unwrap();
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[0][1], vec!["UNOA", "3"]);
        assert_eq!(segs[1][1], vec!["380"]);
    }

    #[test]
    fn errors() {
        let e = all(b"UNB+UNOA:3'BGM+380").unwrap_err();
        assert!(e.message.contains("no segment terminator"), "{e:?}");
        assert_eq!(e.offset, 11);
        assert_eq!(e.segment, 2);
        let e = all(b"UNB+X'<xml>'").unwrap_err();
        assert!(e.message.contains("not a segment tag"));
        assert!(all(b"UNA:+").is_err());
        assert!(all(b"UNA:::::'").is_err());
        let mut long = b"FTX+".to_vec();
        long.resize(MAX_SEGMENT + 100, b'a');
        long.push(b'\'');
        assert!(all(&long).unwrap_err().message.contains("longer"));
    }

    #[test]
    fn positions() {
        let mut t = Tokenizer::new(&b"UNA:+.? '\r\nUNB+X'\r\nUNH+1'"[..]);
        let s = t.next_segment().unwrap().unwrap();
        assert_eq!((s.number, s.offset), (1, 11));
        let s = t.next_segment().unwrap().unwrap();
        assert_eq!((s.number, s.offset), (2, 19));
        assert!(t.next_segment().unwrap().is_none());
    }
}
