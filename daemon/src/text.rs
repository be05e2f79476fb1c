//! Text and file helpers shared by several modules, kept once here (a leaf:
//! it imports nothing of the crate): HTML and CSV escaping, terminal-safe
//! text, URLs without
//! their password, and the atomic write of a small file.

use std::io::Write;
use std::path::Path;

/// Escape text for HTML element content and double-quoted attributes
/// (status page, mail bodies). Control characters other than newline and
/// tab become U+FFFD, so a hostile file name cannot smuggle markup or
/// terminal escapes.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Text from a partner (a file name, an invoice number, a reason) made
/// safe to print on a terminal: C0 and C1 control characters (ESC, CR,
/// newline, BEL, CSI...), DEL and the bidirectional overrides are shown as
/// `\xNN` / `\u{NNNN}` instead of being sent, so a hostile name can neither
/// drive the terminal nor forge a line of output.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}')
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    };
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !unsafe_char(c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// One CSV field (RFC 4180 quoting). A field holding a separator (`,`, or
/// `;` which spreadsheets set to a European locale split on), a quote or a
/// line break is quoted, its quotes doubled. A `text` field that a
/// spreadsheet would take for a formula (`=`, `+`, `-`, `@`, tab, CR
/// first) is prefixed with `'`.
pub fn csv_field(s: &str, text: bool) -> String {
    let mut v = s.to_string();
    if text && v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        v.insert(0, '\'');
    }
    if v.contains([',', ';', '"', '\r', '\n']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

/// A URL without its password, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..s + 3], user, &url[at..])
        }
        _ => url.to_string(),
    }
}

/// Write `name` in `dir` through a temporary dot-file, fsync, rename, fsync dir.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.part"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(name))?;
    quai_connectors::landing::sync_dir(dir)
}

/// A duration in seconds as people read it: `5s`, `2m 5s`, `3h 2m`, `1d 1h`.
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m {}s", s / 60, s % 60)
    } else if s < 86400 {
        format!("{}h {}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d {}h", s / 86400, (s % 86400) / 3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_quotes_and_controls() {
        assert_eq!(
            html_escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(html_escape("a\u{1b}[31mb\nc"), "a\u{FFFD}[31mb\nc");
    }

    #[test]
    fn printable_neutralises_terminal_controls() {
        assert_eq!(printable("plain-name.zip"), "plain-name.zip");
        assert_eq!(printable("a\u{1b}[31mred\u{7}"), "a\\x1b[31mred\\x07");
        assert_eq!(printable("x\ny\rz\t"), "x\\x0ay\\x0dz\\x09");
        assert_eq!(printable("\u{9b}2J"), "\\x9b2J");
        assert_eq!(printable("evil\u{202e}fdp.exe"), "evil\\u{202e}fdp.exe");
        assert_eq!(printable("Facture n°42 é"), "Facture n°42 é");
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_field("a,b", false), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\"", false), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=1+1", true), "'=1+1");
        assert_eq!(csv_field("-5", false), "-5");
        assert_eq!(csv_field("a;b", true), "\"a;b\"");
        assert_eq!(csv_field("a\r\nb", true), "\"a\r\nb\"");
        assert_eq!(csv_field("=1;2", true), "\"'=1;2\"");
        assert_eq!(csv_field("\t=x", true), "'\t=x");
        assert_eq!(csv_field("\r=x", true), "\"'\r=x\"");
    }

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://quai:s3cret@db/quai"),
            "postgres://quai:***@db/quai"
        );
        assert_eq!(redact_url("sqlite:///q/spool.db"), "sqlite:///q/spool.db");
    }

    #[test]
    fn atomic_write_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        write_atomically(d.path(), "x.json", b"{}").unwrap();
        assert_eq!(std::fs::read(d.path().join("x.json")).unwrap(), b"{}");
        assert!(!d.path().join(".x.json.part").exists());
    }
}
