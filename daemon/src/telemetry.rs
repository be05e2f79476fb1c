//! Logging: human-readable on a terminal, JSON under systemd or when asked
//! (`QUAI_LOG_FORMAT=json`). `RUST_LOG` / `QUAI_LOG` set the level.
//!
//! Log fields carry what partners send (file names, invoice numbers, AS2
//! headers), so one field must never become two lines: in the text format
//! every message and field value is written through [`escape_log`] (line
//! breaks and other control characters become `\n`, `\r`, `\t`, `\u{…}`);
//! the JSON format escapes them as JSON does. Nobody can forge a log line
//! with a file name (issue 14, class 6).

use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use tracing::field::Field;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{self, Writer};
use tracing_subscriber::EnvFilter;

/// Install the global subscriber (idempotent: later calls are ignored).
pub fn init() {
    let filter = std::env::var("QUAI_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info,sqlx=warn".to_string());
    let json = match std::env::var("QUAI_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => std::env::var_os("JOURNAL_STREAM").is_some() && !std::io::stderr().is_terminal(),
    };
    // Colours only on a terminal: a log file or the journal gets no escape
    // sequences of quai's own either.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.fmt_fields(escaped_fields()).try_init()
    };
}

/// The text format's field formatter: `message` first as is, then
/// `name=value`, every value escaped by [`escape_log`].
fn escaped_fields() -> impl for<'w> format::FormatFields<'w> + Send + Sync + 'static {
    format::debug_fn(
        |w: &mut Writer<'_>, field: &Field, value: &dyn fmt::Debug| {
            let text = escape_log(&format!("{value:?}"));
            match field.name() {
                "message" => w.write_str(&text),
                name => write!(w, "{}={text}", name.trim_start_matches("r#")),
            }
        },
    )
    .delimited(" ")
}

/// Text safe on one log line: line breaks, tabs and every other control
/// character (C0, DEL, C1, which includes terminal escapes), and the
/// Unicode line and paragraph separators are written as escapes.
pub fn escape_log(s: &str) -> String {
    if !s.chars().any(needs_escape) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_and_controls_are_escaped() {
        assert_eq!(escape_log("plain é"), "plain é");
        assert_eq!(
            escape_log("a\n2026-01-01T00:00:00Z ERROR forged"),
            "a\\n2026-01-01T00:00:00Z ERROR forged"
        );
        assert_eq!(escape_log("x\r\ty\u{1b}[31m"), "x\\r\\ty\\u{1b}[31m");
        assert_eq!(
            escape_log("\u{85}\u{2028}\u{7f}"),
            "\\u{85}\\u{2028}\\u{7f}"
        );
    }
}
