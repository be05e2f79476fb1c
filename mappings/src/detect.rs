//! Name a document's format from its first bytes, never from its file name.
//!
//! Suppliers name files anything (`invoice.txt` holding a zip, `.xml` holding
//! EDIFACT), so quai looks at content only: magic numbers for archives and
//! PDF, the `UNA`/`UNB` service segments for EDIFACT, and for XML the root
//! element's local name and the namespace bound to its prefix. The work is
//! bounded: only the prefix handed in (at most [`SNIFF_LEN`] bytes are worth
//! passing) is looked at, with a single forward scan and no regexes.

/// What a byte stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Gzip,
    Zip,
    Tar,
    /// UBL 2.x `Invoice` or `CreditNote` root.
    Ubl,
    /// UN/CEFACT `CrossIndustryInvoice` root (any version).
    Cii,
    /// ZUGFeRD 1.0 `CrossIndustryDocument` root.
    ZugferdV1,
    /// UN/CEFACT `CrossDomainAcknowledgementAndResponse` root: lifecycle
    /// statuses (CDAR), not an invoice.
    Cdar,
    /// XML, but not an invoice syntax quai reads (root local name and namespace).
    OtherXml,
    /// `%PDF`
    Pdf,
    /// `UNA` or `UNB`
    Edifact,
    Unknown,
}

impl Format {
    /// A short lowercase name for reports and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Gzip => "gzip",
            Format::Zip => "zip",
            Format::Tar => "tar",
            Format::Ubl => "ubl",
            Format::Cii => "cii",
            Format::ZugferdV1 => "zugferd-v1",
            Format::Cdar => "cdar",
            Format::OtherXml => "xml",
            Format::Pdf => "pdf",
            Format::Edifact => "edifact",
            Format::Unknown => "unknown",
        }
    }

    /// True for the container formats [`crate::unpack`] opens.
    pub fn is_archive(self) -> bool {
        matches!(self, Format::Gzip | Format::Zip | Format::Tar)
    }
}

/// Recommended number of leading bytes to pass to [`sniff`].
pub const SNIFF_LEN: usize = 8192;

/// UBL 2.x Invoice namespace.
pub const NS_UBL_INVOICE: &str = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2";
/// UBL 2.x CreditNote namespace.
pub const NS_UBL_CREDIT_NOTE: &str = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2";
/// UN/CEFACT CrossIndustryInvoice namespace (D16B, D22B, Factur-X 1.0.x).
pub const NS_CII: &str = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100";
/// UN/CEFACT CrossDomainAcknowledgementAndResponse namespace (CDAR, D22B).
pub const NS_CDAR: &str =
    "urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100";
/// ZUGFeRD 1.0 namespace.
pub const NS_ZUGFERD_V1: &str = "urn:ferd:CrossIndustryDocument:invoice:1p0";

/// The root element of an XML document, as far as the prefix shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlRoot {
    /// Local name (without prefix), e.g. `Invoice`.
    pub local_name: String,
    /// Prefix as written, e.g. `ubl` in `<ubl:Invoice>`; empty for none.
    pub prefix: String,
    /// Namespace bound to the prefix on the root element itself, if any.
    pub namespace: Option<String>,
}

/// Detect a format from the first bytes (up to [`SNIFF_LEN`]).
pub fn sniff(prefix: &[u8]) -> Format {
    let prefix = &prefix[..prefix.len().min(SNIFF_LEN)];
    if prefix.starts_with(&[0x1f, 0x8b]) {
        return Format::Gzip;
    }
    if prefix.starts_with(b"PK\x03\x04") || prefix.starts_with(b"PK\x05\x06") {
        return Format::Zip;
    }
    if prefix.len() >= 262 && &prefix[257..262] == b"ustar" {
        return Format::Tar;
    }
    let text = strip_bom_and_space(prefix);
    if text.starts_with(b"UNA") || text.starts_with(b"UNB") {
        // `UNB` must be followed by a separator, not letters (guards against
        // plain text that happens to start with those letters).
        if text.len() < 4 || !text[3].is_ascii_alphanumeric() {
            return Format::Edifact;
        }
    }
    if let Some(root) = xml_root(prefix) {
        return classify_root(&root);
    }
    if find(&prefix[..prefix.len().min(1024)], b"%PDF-").is_some() {
        return Format::Pdf;
    }
    Format::Unknown
}

/// A human description of what the prefix looks like, for error messages:
/// `XML root element {urn:...}Invoice`, `gzip archive`, `unknown (starts with 0x00 0x01 ...)`.
pub fn describe(prefix: &[u8]) -> String {
    let format = sniff(prefix);
    match format {
        Format::Gzip => "gzip archive".into(),
        Format::Zip => "zip archive".into(),
        Format::Tar => "tar archive".into(),
        Format::Pdf => "PDF document".into(),
        Format::Edifact => "EDIFACT interchange".into(),
        Format::Ubl | Format::Cii | Format::ZugferdV1 | Format::Cdar | Format::OtherXml => {
            match xml_root(prefix) {
                Some(root) => {
                    let ns = root.namespace.as_deref().unwrap_or("no namespace");
                    format!("XML root element {{{ns}}}{}", root.local_name)
                }
                None => "XML document".into(),
            }
        }
        Format::Unknown => {
            if prefix.is_empty() {
                return "empty document".into();
            }
            let shown: Vec<String> = prefix.iter().take(8).map(|b| format!("{b:02x}")).collect();
            format!("unknown content (starts with bytes {})", shown.join(" "))
        }
    }
}

fn classify_root(root: &XmlRoot) -> Format {
    match (root.local_name.as_str(), root.namespace.as_deref()) {
        ("Invoice", Some(NS_UBL_INVOICE)) | ("CreditNote", Some(NS_UBL_CREDIT_NOTE)) => Format::Ubl,
        ("CrossIndustryInvoice", Some(NS_CII)) => Format::Cii,
        ("CrossIndustryDocument", Some(NS_ZUGFERD_V1)) => Format::ZugferdV1,
        ("CrossDomainAcknowledgementAndResponse", Some(NS_CDAR)) => Format::Cdar,
        _ => Format::OtherXml,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn strip_bom_and_space(b: &[u8]) -> &[u8] {
    let b = b.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(b);
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    &b[start..]
}

/// Turn a UTF-16 prefix into bytes where ASCII stays ASCII (non-ASCII
/// code units become `?`): enough to read markup names and namespaces.
fn utf16_to_ascii(b: &[u8], little_endian: bool) -> Vec<u8> {
    b.chunks_exact(2)
        .map(|pair| {
            let unit = if little_endian {
                u16::from_le_bytes([pair[0], pair[1]])
            } else {
                u16::from_be_bytes([pair[0], pair[1]])
            };
            if unit < 0x80 {
                unit as u8
            } else {
                b'?'
            }
        })
        .collect()
}

/// Read the root element of an XML prefix: skips a BOM (UTF-8 or UTF-16),
/// the XML declaration, comments, processing instructions, a DOCTYPE and
/// whitespace. Returns `None` when the prefix is not XML or the root start
/// tag is not complete within the prefix's name and attributes.
pub fn xml_root(prefix: &[u8]) -> Option<XmlRoot> {
    let prefix = &prefix[..prefix.len().min(SNIFF_LEN)];
    let owned;
    let text: &[u8] = if let Some(rest) = prefix.strip_prefix(&[0xFF, 0xFE]) {
        owned = utf16_to_ascii(rest, true);
        &owned
    } else if let Some(rest) = prefix.strip_prefix(&[0xFE, 0xFF]) {
        owned = utf16_to_ascii(rest, false);
        &owned
    } else if prefix.len() >= 4 && prefix[0] == b'<' && prefix[1] == 0 && prefix[2] != 0 {
        // UTF-16LE without BOM
        owned = utf16_to_ascii(prefix, true);
        &owned
    } else if prefix.len() >= 4 && prefix[0] == 0 && prefix[1] == b'<' {
        owned = utf16_to_ascii(prefix, false);
        &owned
    } else {
        prefix.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(prefix)
    };
    let mut i = 0;
    loop {
        while i < text.len() && text[i].is_ascii_whitespace() {
            i += 1;
        }
        let rest = &text[i..];
        if rest.first() != Some(&b'<') {
            return None;
        }
        if rest.starts_with(b"<?") {
            i += find(rest, b"?>")? + 2;
        } else if rest.starts_with(b"<!--") {
            i += find(rest, b"-->")? + 3;
        } else if rest.starts_with(b"<!") {
            // DOCTYPE, possibly with an internal subset in brackets.
            i += skip_doctype(rest)?;
        } else {
            return parse_start_tag(&rest[1..]);
        }
    }
}

fn skip_doctype(rest: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    for (k, &c) in rest.iter().enumerate().skip(2) {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                b'"' | b'\'' => quote = Some(c),
                b'[' => depth += 1,
                b']' => depth = depth.saturating_sub(1),
                b'>' if depth == 0 => return Some(k + 1),
                _ => {}
            },
        }
    }
    None
}

fn is_name_byte(c: u8) -> bool {
    !(c.is_ascii_whitespace() || matches!(c, b'>' | b'/' | b'=' | b'"' | b'\'' | b'<'))
}

fn parse_start_tag(t: &[u8]) -> Option<XmlRoot> {
    let end = t.iter().position(|&c| !is_name_byte(c)).unwrap_or(t.len());
    if end == 0 || end == t.len() {
        return None;
    }
    let qname = String::from_utf8_lossy(&t[..end]).into_owned();
    let (prefix, local) = match qname.split_once(':') {
        Some((p, l)) => (p.to_string(), l.to_string()),
        None => (String::new(), qname.clone()),
    };
    let wanted_attr = if prefix.is_empty() {
        "xmlns".to_string()
    } else {
        format!("xmlns:{prefix}")
    };
    let mut namespace = None;
    let mut i = end;
    loop {
        while i < t.len() && t[i].is_ascii_whitespace() {
            i += 1;
        }
        match t.get(i) {
            None => break, // tag cut by the prefix: keep what we have
            Some(b'>') | Some(b'/') => break,
            _ => {}
        }
        let name_start = i;
        while i < t.len() && is_name_byte(t[i]) {
            i += 1;
        }
        let attr_name = &t[name_start..i];
        if attr_name.is_empty() {
            break;
        }
        while i < t.len() && t[i].is_ascii_whitespace() {
            i += 1;
        }
        if t.get(i) != Some(&b'=') {
            break;
        }
        i += 1;
        while i < t.len() && t[i].is_ascii_whitespace() {
            i += 1;
        }
        let quote = match t.get(i) {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => break,
        };
        i += 1;
        let value_start = i;
        while i < t.len() && t[i] != quote {
            i += 1;
        }
        if i >= t.len() {
            break;
        }
        if attr_name == wanted_attr.as_bytes() {
            namespace = Some(
                String::from_utf8_lossy(&t[value_start..i])
                    .trim()
                    .to_string(),
            );
        }
        i += 1;
    }
    Some(XmlRoot {
        local_name: local,
        prefix,
        namespace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_and_pdf() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Format::Gzip);
        assert_eq!(sniff(b"PK\x03\x04rest"), Format::Zip);
        assert_eq!(sniff(b"PK\x05\x06\0\0"), Format::Zip);
        let mut tar = vec![0u8; 512];
        tar[257..263].copy_from_slice(b"ustar\0");
        assert_eq!(sniff(&tar), Format::Tar);
        assert_eq!(sniff(b"%PDF-1.7\n"), Format::Pdf);
        assert_eq!(sniff(b"\r\n  junk%PDF-1.4"), Format::Pdf);
        let mut late = vec![b' '; 1100];
        late.extend_from_slice(b"%PDF-1.4");
        assert_eq!(sniff(&late), Format::Unknown);
        assert_eq!(sniff(b""), Format::Unknown);
        assert_eq!(sniff(b"hello"), Format::Unknown);
    }

    #[test]
    fn edifact() {
        assert_eq!(sniff(b"UNA:+.? 'UNB+UNOC:3+X"), Format::Edifact);
        assert_eq!(sniff(b"\xEF\xBB\xBF\r\nUNB+UNOA:2+X"), Format::Edifact);
        assert_eq!(sniff(b"UNBELIEVABLE"), Format::Unknown);
    }

    #[test]
    fn xml_roots() {
        let ubl = br#"<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment -->
<?xml-stylesheet href="x.xsl"?>
<Invoice xmlns:cac="urn:x" xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">"#;
        assert_eq!(sniff(ubl), Format::Ubl);
        let cn = br#"<ns0:CreditNote xmlns:ns0='urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2'>"#;
        assert_eq!(sniff(cn), Format::Ubl);
        let cii = br#"<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100" xmlns:ram="r">"#;
        assert_eq!(sniff(cii), Format::Cii);
        let zf = br#"<rsm:CrossIndustryDocument xmlns:rsm="urn:ferd:CrossIndustryDocument:invoice:1p0">"#;
        assert_eq!(sniff(zf), Format::ZugferdV1);
        // Wrong pairing of root and namespace is not UBL.
        let wrong =
            br#"<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2">"#;
        assert_eq!(sniff(wrong), Format::OtherXml);
        // Prefix bound to another namespace than the default one.
        let pref = br#"<a:Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" xmlns:a="urn:other">"#;
        assert_eq!(sniff(pref), Format::OtherXml);
        assert_eq!(sniff(b"<html><body>"), Format::OtherXml);
        let cdar = b"<?xml version=\"1.0\"?>\n<rsm:CrossDomainAcknowledgementAndResponse xmlns:rsm=\"urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100\">";
        assert_eq!(sniff(cdar), Format::Cdar);
        // the root's name alone is not enough
        assert_eq!(
            sniff(b"<CrossDomainAcknowledgementAndResponse xmlns=\"urn:other\">"),
            Format::OtherXml
        );
        let doctype = br#"<!DOCTYPE x [ <!ENTITY a "b>c"> ]><Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"/>"#;
        assert_eq!(sniff(doctype), Format::Ubl);
        assert!(describe(b"<html>").contains("html"));
    }

    #[test]
    fn utf16_xml() {
        let s = r#"<?xml version="1.0" encoding="UTF-16"?><Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">"#;
        let mut le = vec![0xFF, 0xFE];
        for u in s.encode_utf16() {
            le.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(sniff(&le), Format::Ubl);
        let mut be = vec![0xFE, 0xFF];
        for u in s.encode_utf16() {
            be.extend_from_slice(&u.to_be_bytes());
        }
        assert_eq!(sniff(&be), Format::Ubl);
    }

    #[test]
    fn hostile_prefixes_do_not_panic() {
        for p in [
            &b"<"[..],
            b"<?",
            b"<!--",
            b"<!DOCTYPE",
            b"<a",
            b"<a b",
            b"<a b=",
            b"<a b='",
            b"\xFF\xFE<",
            b"\xFE\xFF\0",
        ] {
            let _ = sniff(p);
            let _ = describe(p);
        }
    }
}
