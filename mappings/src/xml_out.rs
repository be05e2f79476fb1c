//! Well-formed XML out: the one place quai escapes what it writes.
//!
//! Everything quai writes as XML (integration reports, CDAR statuses,
//! converted invoices) passes partner-supplied text through here: file
//! names, invoice numbers, reasons. XML 1.0 allows only tab, line feed,
//! carriage return, U+0020..U+D7FF, U+E000..U+FFFD and the supplementary
//! planes; a character reference to anything else (`&#x1;`) is not
//! well-formed either. So a character XML cannot carry (C0 controls, U+FFFE,
//! U+FFFF) is replaced with U+FFFD, visibly, rather than dropped: a reader
//! sees that something was there. Markup characters are escaped; in
//! attributes tab, line feed and carriage return are written as character
//! references so attribute-value normalisation keeps them, and in text a
//! carriage return is a reference so line-end normalisation keeps it.
//!
//! [`XmlWriter`] streams elements into any `io::Write` with this escaping,
//! indenting by depth; the conversion writers (`convert`) use it.

use std::borrow::Cow;
use std::io::{self, Write};

/// What replaces a character XML 1.0 does not allow.
pub const REPLACEMENT: char = '\u{FFFD}';

/// Whether XML 1.0 allows `c` in a document (production `Char`). Rust
/// strings cannot hold lone surrogates, so only the C0 controls and
/// U+FFFE/U+FFFF are left out.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn escape(s: &str, attribute: bool) -> Cow<'_, str> {
    let needs = |c: char| {
        matches!(c, '&' | '<' | '>' | '\r')
            || (attribute && matches!(c, '"' | '\'' | '\t' | '\n'))
            || !is_xml_char(c)
    };
    if !s.chars().any(needs) {
        return Cow::Borrowed(s);
    }
    let mut o = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '\r' => o.push_str("&#13;"),
            '"' if attribute => o.push_str("&quot;"),
            '\'' if attribute => o.push_str("&apos;"),
            '\t' if attribute => o.push_str("&#9;"),
            '\n' if attribute => o.push_str("&#10;"),
            c if !is_xml_char(c) => o.push(REPLACEMENT),
            c => o.push(c),
        }
    }
    Cow::Owned(o)
}

/// `s` escaped for element content.
pub fn text(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// `s` escaped for an attribute value (in double or single quotes).
pub fn attr(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

/// Streams indented XML elements into `out`, escaping every text and
/// attribute value. The caller writes elements in schema order; the writer
/// only keeps the depth.
pub struct XmlWriter<W: Write> {
    out: W,
    depth: usize,
}

const INDENT: &str = "                                                                ";

impl<W: Write> XmlWriter<W> {
    /// Starts a document with the XML declaration.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
        Ok(XmlWriter { out, depth: 0 })
    }

    fn indent(&mut self) -> io::Result<()> {
        let n = (self.depth * 2).min(INDENT.len());
        self.out.write_all(&INDENT.as_bytes()[..n])
    }

    fn open_tag(&mut self, name: &str, attrs: &[(&str, &str)]) -> io::Result<()> {
        self.indent()?;
        self.out.write_all(b"<")?;
        self.out.write_all(name.as_bytes())?;
        for (k, v) in attrs {
            self.out.write_all(b" ")?;
            self.out.write_all(k.as_bytes())?;
            self.out.write_all(b"=\"")?;
            self.out.write_all(attr(v).as_bytes())?;
            self.out.write_all(b"\"")?;
        }
        Ok(())
    }

    /// `<name attrs>` and one level deeper.
    pub fn start(&mut self, name: &str, attrs: &[(&str, &str)]) -> io::Result<()> {
        self.open_tag(name, attrs)?;
        self.out.write_all(b">\n")?;
        self.depth += 1;
        Ok(())
    }

    /// `</name>` one level up.
    pub fn end(&mut self, name: &str) -> io::Result<()> {
        self.depth = self.depth.saturating_sub(1);
        self.indent()?;
        self.out.write_all(b"</")?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(b">\n")
    }

    /// `<name attrs>text</name>` (empty text gives `<name attrs/>`).
    pub fn leaf(&mut self, name: &str, attrs: &[(&str, &str)], value: &str) -> io::Result<()> {
        self.open_tag(name, attrs)?;
        if value.is_empty() {
            return self.out.write_all(b"/>\n");
        }
        self.out.write_all(b">")?;
        self.out.write_all(text(value).as_bytes())?;
        self.out.write_all(b"</")?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(b">\n")
    }

    /// The underlying writer, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped_and_forbidden_characters_replaced() {
        assert!(matches!(text("plain"), Cow::Borrowed(_)));
        assert_eq!(text("a<b>&c"), "a&lt;b&gt;&amp;c");
        assert_eq!(
            text("x\u{1}y\u{FFFF}z\u{FFFE}"),
            "x\u{FFFD}y\u{FFFD}z\u{FFFD}"
        );
        assert_eq!(text("l1\nl2\r\tq\"'"), "l1\nl2&#13;\tq\"'");
        assert_eq!(attr("a\"b'c\td\ne\rf"), "a&quot;b&apos;c&#9;d&#10;e&#13;f");
        assert_eq!(attr("\u{0}\u{1F}"), "\u{FFFD}\u{FFFD}");
        // Characters XML allows stay as they are, supplementary planes too.
        assert_eq!(
            text("é\u{D7FF}\u{E000}\u{FFFD}\u{1F600}"),
            "é\u{D7FF}\u{E000}\u{FFFD}\u{1F600}"
        );
    }

    #[test]
    fn writer_nests_and_escapes() {
        let mut w = XmlWriter::new(Vec::new()).unwrap();
        w.start("a", &[("k", "v\"\u{7}")]).unwrap();
        w.leaf("b", &[], "1 < 2").unwrap();
        w.leaf("c", &[("x", "y")], "").unwrap();
        w.end("a").unwrap();
        let s = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(
            s,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a k=\"v&quot;\u{FFFD}\">\n  <b>1 &lt; 2</b>\n  <c x=\"y\"/>\n</a>\n"
        );
    }
}
