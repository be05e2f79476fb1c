//! Just enough MIME (RFC 2045/2046) for AS2, working on raw bytes.
//!
//! AS2 signatures and MICs are computed over the exact bytes of a MIME part,
//! so this parser never re-serialises anything: an [`Entity`] borrows its
//! header block and body from the input, and [`split_multipart`] returns the
//! exact byte ranges between boundary delimiters. Hostile input gets a
//! [`MimeError`], never a panic; header blocks are bounded in size and count.

use std::borrow::Cow;

use base64::Engine;

/// Largest header block accepted (all header lines of one entity).
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Most header fields accepted in one entity.
const MAX_HEADERS: usize = 256;

/// Why a MIME structure could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MimeError {
    #[error("MIME header block has no terminating empty line")]
    UnterminatedHeaders,
    #[error("MIME header block too large")]
    HeadersTooLarge,
    #[error("malformed MIME header line: {0:?}")]
    BadHeaderLine(String),
    #[error("malformed Content-Type: {0:?}")]
    BadContentType(String),
    #[error("multipart entity has no boundary parameter")]
    MissingBoundary,
    #[error("multipart body has no closing delimiter for boundary {0:?}")]
    UnterminatedMultipart(String),
    #[error("unsupported Content-Transfer-Encoding {0:?}")]
    UnsupportedEncoding(String),
    #[error("invalid {0} content")]
    BadEncoding(&'static str),
}

/// One header field, its value unfolded (continuation lines joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// A MIME entity borrowed from raw bytes.
#[derive(Debug, Clone)]
pub struct Entity<'a> {
    pub headers: Vec<Header>,
    /// The whole entity as received: header block, empty line and body.
    pub raw: &'a [u8],
    /// The body, after the empty line that ends the headers.
    pub body: &'a [u8],
}

impl<'a> Entity<'a> {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }

    /// The parsed Content-Type; `text/plain` when absent (RFC 2045 §5.2).
    pub fn content_type(&self) -> Result<ContentType, MimeError> {
        match self.header("content-type") {
            Some(v) => ContentType::parse(v),
            None => Ok(ContentType {
                mime_type: "text/plain".into(),
                params: Vec::new(),
            }),
        }
    }

    /// The body with its Content-Transfer-Encoding removed.
    pub fn decoded_body(&self) -> Result<Cow<'a, [u8]>, MimeError> {
        decode_transfer(self.body, self.header("content-transfer-encoding"))
    }
}

/// First header of that name in a list (case-insensitive).
pub fn header_value<'h>(headers: &'h [Header], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// `raw` read as a MIME entity, if it is one: a well-formed header block
/// with a Content-Type. Used to tell a decrypted or decompressed MIME entity
/// from bare content that some senders wrap without MIME headers.
pub fn as_entity(raw: &[u8]) -> Option<Entity<'_>> {
    parse_entity(raw)
        .ok()
        .filter(|e| e.header("content-type").is_some())
}

/// Parse a header block followed by an empty line and a body.
pub fn parse_entity(raw: &[u8]) -> Result<Entity<'_>, MimeError> {
    let mut headers: Vec<Header> = Vec::new();
    let mut pos = 0usize;
    loop {
        if pos > MAX_HEADER_BYTES || headers.len() > MAX_HEADERS {
            return Err(MimeError::HeadersTooLarge);
        }
        let rest = &raw[pos..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return Err(MimeError::UnterminatedHeaders);
        };
        let mut line = &rest[..nl];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        pos += nl + 1;
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            // Continuation of the previous field (RFC 5322 folding).
            match headers.last_mut() {
                Some(h) => {
                    h.value.push(' ');
                    h.value.push_str(String::from_utf8_lossy(line).trim());
                }
                None => return Err(bad_line(line)),
            }
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(bad_line(line));
        };
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_token_char(b)) {
            return Err(bad_line(line));
        }
        headers.push(Header {
            name: String::from_utf8_lossy(name).into_owned(),
            value: String::from_utf8_lossy(&line[colon + 1..])
                .trim()
                .to_string(),
        });
    }
    Ok(Entity {
        headers,
        raw,
        body: &raw[pos..],
    })
}

fn bad_line(line: &[u8]) -> MimeError {
    let shown: String = String::from_utf8_lossy(line).chars().take(80).collect();
    MimeError::BadHeaderLine(shown)
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_graphic() && b != b':'
}

/// A parsed Content-Type: lower-case `type/subtype` and its parameters
/// (names lower-cased, values unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    pub mime_type: String,
    pub params: Vec<(String, String)>,
}

impl ContentType {
    pub fn parse(value: &str) -> Result<ContentType, MimeError> {
        let mut pieces = split_params(value).into_iter();
        let mime_type = pieces
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let valid = mime_type.split_once('/').is_some_and(|(t, s)| {
            !t.is_empty() && !s.is_empty() && (t.bytes().chain(s.bytes())).all(is_mime_token)
        });
        if !valid {
            return Err(MimeError::BadContentType(value.chars().take(120).collect()));
        }
        let mut params = Vec::new();
        for piece in pieces {
            let piece = piece.trim();
            if piece.is_empty() {
                continue;
            }
            let Some((name, val)) = piece.split_once('=') else {
                return Err(MimeError::BadContentType(value.chars().take(120).collect()));
            };
            params.push((name.trim().to_ascii_lowercase(), unquote(val.trim())));
        }
        Ok(ContentType { mime_type, params })
    }

    /// A parameter's value (name case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn is(&self, mime_type: &str) -> bool {
        self.mime_type.eq_ignore_ascii_case(mime_type)
    }
}

fn is_mime_token(b: u8) -> bool {
    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b)
}

/// Split `a; b="x;y"; c` on semicolons outside quoted strings.
pub fn split_params(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                in_quotes = !in_quotes;
                cur.push(c);
            }
            ';' if !in_quotes => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Remove surrounding quotes and backslash escapes of a quoted-string.
pub fn unquote(value: &str) -> String {
    let v = value.trim();
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        let inner = &v[1..v.len() - 1];
        let mut out = String::with_capacity(inner.len());
        let mut escaped = false;
        for c in inner.chars() {
            if escaped {
                out.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else {
                out.push(c);
            }
        }
        out
    } else {
        v.to_string()
    }
}

/// The exact bytes of each body part of a multipart body (RFC 2046 §5.1.1):
/// from after the delimiter line to before the line break that precedes the
/// next delimiter. Preamble and epilogue are dropped.
pub fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<&'a [u8]>, MimeError> {
    if boundary.is_empty() || boundary.len() > 200 {
        return Err(MimeError::MissingBoundary);
    }
    let mut dash = Vec::with_capacity(boundary.len() + 2);
    dash.extend_from_slice(b"--");
    dash.extend_from_slice(boundary.as_bytes());

    let mut parts = Vec::new();
    // Start of the current part's content, once the first delimiter is seen.
    let mut part_start: Option<usize> = None;
    let mut search = 0usize;
    while let Some(found) = find(&body[search..], &dash) {
        let at = search + found;
        search = at + dash.len();
        // A delimiter starts a line.
        if at != 0 && body[at - 1] != b'\n' {
            continue;
        }
        let after = &body[at + dash.len()..];
        let is_close = after.starts_with(b"--");
        let rest = if is_close { &after[2..] } else { after };
        // The rest of the line must be transport padding only.
        let line_len = rest.iter().position(|&b| b == b'\n');
        let line = &rest[..line_len.unwrap_or(rest.len())];
        if !line.iter().all(|&b| b == b' ' || b == b'\t' || b == b'\r') {
            continue;
        }
        if let Some(start) = part_start {
            // Content ends before the CRLF (or LF) that precedes the delimiter.
            let mut end = at;
            if end > start && body[end - 1] == b'\n' {
                end -= 1;
                if end > start && body[end - 1] == b'\r' {
                    end -= 1;
                }
            }
            parts.push(&body[start..end.max(start)]);
        }
        if is_close {
            return Ok(parts);
        }
        match line_len {
            Some(n) => {
                let next = at + dash.len() + n + 1;
                part_start = Some(next);
                search = next;
            }
            None => break,
        }
    }
    Err(MimeError::UnterminatedMultipart(boundary.to_string()))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut i = 0usize;
    while i + needle.len() <= haystack.len() {
        match haystack[i..].iter().position(|&b| b == first) {
            Some(off) => i += off,
            None => return None,
        }
        if i + needle.len() <= haystack.len() && &haystack[i..i + needle.len()] == needle {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Undo a Content-Transfer-Encoding. 7bit, 8bit, binary and none leave the
/// bytes as they are.
pub fn decode_transfer<'a>(body: &'a [u8], cte: Option<&str>) -> Result<Cow<'a, [u8]>, MimeError> {
    let cte = cte
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match cte.as_str() {
        "" | "7bit" | "8bit" | "binary" => Ok(Cow::Borrowed(body)),
        "base64" => {
            let compact: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(&compact)
                .map(Cow::Owned)
                .map_err(|_| MimeError::BadEncoding("base64"))
        }
        "quoted-printable" => decode_quoted_printable(body).map(Cow::Owned),
        other => Err(MimeError::UnsupportedEncoding(
            other.chars().take(40).collect(),
        )),
    }
}

fn decode_quoted_printable(body: &[u8]) -> Result<Vec<u8>, MimeError> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if b != b'=' {
            out.push(b);
            i += 1;
            continue;
        }
        // Soft line break: "=" followed by optional whitespace and a line end.
        let mut j = i + 1;
        while j < body.len() && (body[j] == b' ' || body[j] == b'\t') {
            j += 1;
        }
        if j < body.len() && body[j] == b'\r' && body.get(j + 1) == Some(&b'\n') {
            i = j + 2;
            continue;
        }
        if j < body.len() && body[j] == b'\n' {
            i = j + 1;
            continue;
        }
        if j == body.len() {
            break;
        }
        let hex = body
            .get(i + 1..i + 3)
            .ok_or(MimeError::BadEncoding("quoted-printable"))?;
        let s = std::str::from_utf8(hex).map_err(|_| MimeError::BadEncoding("quoted-printable"))?;
        let v =
            u8::from_str_radix(s, 16).map_err(|_| MimeError::BadEncoding("quoted-printable"))?;
        out.push(v);
        i += 3;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_headers_with_folding_and_body() {
        let raw = b"Content-Type: multipart/signed;\r\n\tboundary=\"b;1\"; micalg=sha-256\r\nX: y\r\n\r\nBODY";
        let e = parse_entity(raw).unwrap();
        assert_eq!(e.body, b"BODY");
        let ct = e.content_type().unwrap();
        assert!(ct.is("multipart/signed"));
        assert_eq!(ct.param("boundary"), Some("b;1"));
        assert_eq!(ct.param("MICALG"), Some("sha-256"));
        assert_eq!(e.header("x"), Some("y"));
    }

    #[test]
    fn rejects_garbage_headers() {
        assert_eq!(
            parse_entity(b"no headers here").unwrap_err(),
            MimeError::UnterminatedHeaders
        );
        assert!(matches!(
            parse_entity(b"bad line\r\n\r\n"),
            Err(MimeError::BadHeaderLine(_))
        ));
        assert!(ContentType::parse("nonsense").is_err());
        assert!(ContentType::parse("text/plain; x").is_err());
    }

    #[test]
    fn splits_multipart_exactly() {
        let body =
            b"preamble\r\n--B\r\nA: 1\r\n\r\nfirst\r\n\r\n--B \r\nsecond\r\n--B--\r\nepilogue";
        let parts = split_multipart(body, "B").unwrap();
        assert_eq!(parts, vec![&b"A: 1\r\n\r\nfirst\r\n"[..], &b"second"[..]]);
        // "--B" inside content but not at a line start is content.
        let body = b"--B\r\nx--B\r\n--Bx\r\n--B--";
        assert_eq!(
            split_multipart(body, "B").unwrap(),
            vec![&b"x--B\r\n--Bx"[..]]
        );
        assert!(split_multipart(b"--B\r\nunterminated", "B").is_err());
        assert!(split_multipart(b"", "B").is_err());
    }

    #[test]
    fn decodes_transfer_encodings() {
        assert_eq!(
            &*decode_transfer(b"aGVs\r\nbG8=", Some("Base64")).unwrap(),
            b"hello"
        );
        assert_eq!(
            &*decode_transfer(b"a=3Db=\r\nc", Some("quoted-printable")).unwrap(),
            b"a=bc"
        );
        assert!(decode_transfer(b"!!", Some("base64")).is_err());
        assert!(decode_transfer(b"x", Some("x-uuencode")).is_err());
        assert!(decode_transfer(b"=4", Some("quoted-printable")).is_err());
    }

    #[test]
    fn tells_entities_from_bare_content() {
        assert!(as_entity(b"Content-Type: a/b\r\n\r\nx").is_some());
        assert!(as_entity(b"<?xml version=\"1.0\"?>\n<a/>\n\n").is_none());
        assert!(as_entity(b"UNA:+.? 'UNB+UNOC:3'\n\n").is_none());
    }
}
