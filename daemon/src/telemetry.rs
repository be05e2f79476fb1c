//! Logging: human-readable on a terminal, JSON under systemd or when asked
//! (`QUAI_LOG_FORMAT=json`), always on stderr (stdout is for results).
//! `RUST_LOG` / `QUAI_LOG` set the level, `-v` / `-q` override it. Colours
//! only when stderr is a terminal and `NO_COLOR` is not set.
//!
//! Log fields carry what partners send (file names, invoice numbers, AS2
//! headers), so one field must never become two lines: in the text format
//! every message and field value is written through [`escape_log`] (line
//! breaks and other control characters become `\n`, `\r`, `\t`, `\u{…}`);
//! the JSON format escapes them as JSON does. Nobody can forge a log line
//! with a file name (issue 14, class 6). Whatever still reaches stderr goes
//! through [`SafeStderr`], which escapes any control character left (only
//! the colour sequences of the log format itself pass, when colours are on),
//! so partner text cannot drive the operator's terminal.
//!
//! **Under systemd** (stderr is the stream `JOURNAL_STREAM` names), every
//! line starts with its syslog priority, `<3>` error, `<4>` warning, `<6>`
//! info, `<7>` debug and trace: journald strips the prefix and files the
//! line at that priority (`SyslogLevelPrefix=`, on by default), so
//! `journalctl -u quai -p err` finds the errors, JSON lines included.

use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use tracing::field::Field;
use tracing::{Level, Metadata};
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{self, Writer};
use tracing_subscriber::fmt::MakeWriter;

use tracing_subscriber::EnvFilter;

/// Install the global subscriber at the environment's level (idempotent:
/// later calls are ignored).
pub fn init() {
    init_with(0)
}

/// Install the global subscriber; `verbosity` > 0 is `-v` (debug, then
/// trace), < 0 is `-q` (warnings, then errors only), 0 the environment's
/// level (default `info`).
pub fn init_with(verbosity: i8) {
    let filter = match verbosity {
        v if v >= 2 => "trace".to_string(),
        1 => "debug".to_string(),
        -1 => "warn".to_string(),
        v if v <= -2 => "error".to_string(),
        _ => std::env::var("QUAI_LOG")
            .ok()
            .or_else(|| std::env::var("RUST_LOG").ok())
            .unwrap_or_else(|| "info,sqlx=warn".to_string()),
    };
    let json = match std::env::var("QUAI_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => std::env::var_os("JOURNAL_STREAM").is_some() && !std::io::stderr().is_terminal(),
    };
    let colours = colours();
    let mode = if json {
        Mode::Json
    } else {
        Mode::Text { colours }
    };
    let journal = stderr_is_journal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_ansi(colours)
        // A closed stderr (`quai purge 2>&1 | head -3`) must not make the
        // subscriber complain on that same stderr: that panics in whatever
        // thread logged, and a database worker thread that panics leaves
        // the command waiting forever.
        .log_internal_errors(false)
        .with_writer(StderrWriter { mode, journal });
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

/// Colours on stderr: a terminal, and no `NO_COLOR` (https://no-color.org).
pub fn colours() -> bool {
    let no_color = matches!(std::env::var_os("NO_COLOR"), Some(v) if !v.is_empty());
    std::io::stderr().is_terminal() && !no_color
}

/// Is stderr the journal stream systemd connected (`JOURNAL_STREAM` is
/// `DEVICE:INODE` of that stream; a child whose stderr was redirected
/// inherits the variable but not the stream)?
fn stderr_is_journal() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    // SAFETY: fstat writes into `st`, a zeroed stat buffer, for fd 2.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return false;
    }
    journal_stream_matches(&v.to_string_lossy(), st.st_dev as u64, st.st_ino as u64)
}

fn journal_stream_matches(var: &str, dev: u64, ino: u64) -> bool {
    let mut it = var.trim().splitn(2, ':');
    let (Some(d), Some(i)) = (it.next(), it.next()) else {
        return false;
    };
    d.parse::<u64>().ok() == Some(dev) && i.parse::<u64>().ok() == Some(ino)
}

/// The syslog priority prefix of a level (journald's `SyslogLevelPrefix`).
pub fn priority_prefix(level: Level) -> &'static str {
    match level {
        Level::ERROR => "<3>",
        Level::WARN => "<4>",
        Level::INFO => "<6>",
        Level::DEBUG | Level::TRACE => "<7>",
    }
}

/// Makes a [`SafeStderr`] per event, knowing the event's level.
#[derive(Debug, Clone, Copy)]
struct StderrWriter {
    mode: Mode,
    journal: bool,
}

impl<'a> MakeWriter<'a> for StderrWriter {
    type Writer = SafeStderr;

    fn make_writer(&'a self) -> SafeStderr {
        SafeStderr {
            mode: self.mode,
            prefix: None,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> SafeStderr {
        SafeStderr {
            mode: self.mode,
            prefix: self.journal.then(|| priority_prefix(*meta.level())),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Text { colours: bool },
    Json,
}

/// stderr, with control characters escaped (newline kept; with colours,
/// SGR colour sequences `ESC [ digits ; m` kept).
/// Under the journal, each line gets the event's priority prefix (one
/// event is one write of whole lines: the formatter buffers it).
struct SafeStderr {
    mode: Mode,
    prefix: Option<&'static str>,
}

impl std::io::Write for SafeStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let clean = sanitize(&text, self.mode);
        let out = match self.prefix {
            Some(p) => with_prefix(&clean, p),
            None => clean,
        };
        std::io::stderr().write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// `prefix` before every line of `text`.
fn with_prefix(text: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    for line in text.split_inclusive('\n') {
        out.push_str(prefix);
        out.push_str(line);
    }
    out
}

/// Is `s[i..]` an SGR sequence (`ESC [ [0-9;]* m`)? Its length if so.
fn sgr_len(s: &[char], i: usize) -> Option<usize> {
    if s.get(i + 1) != Some(&'[') {
        return None;
    }
    let mut j = i + 2;
    while j < s.len() && (s[j].is_ascii_digit() || s[j] == ';') {
        j += 1;
    }
    (s.get(j) == Some(&'m')).then_some(j + 1 - i)
}

fn sanitize(text: &str, mode: Mode) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' || !c.is_control() {
            out.push(c);
            i += 1;
            continue;
        }
        if let Mode::Text { colours: true } = mode {
            if c == '\u{1b}' {
                if let Some(n) = sgr_len(&chars, i) {
                    out.extend(&chars[i..i + n]);
                    i += n;
                    continue;
                }
            }
        }
        match mode {
            Mode::Json => out.push_str(&format!("\\u{:04x}", c as u32)),
            Mode::Text { .. } => out.push_str(&format!("\\x{:02x}", c as u32)),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_lose_their_controls_but_keep_their_colours() {
        let plain = Mode::Text { colours: false };
        let colour = Mode::Text { colours: true };
        assert_eq!(
            sanitize("file=ev\u{1b}[2J\u{7}.zip\n", plain),
            "file=ev\\x1b[2J\\x07.zip\n"
        );
        assert_eq!(
            sanitize("\u{1b}[32mINFO\u{1b}[0m file=\u{1b}]0;title\u{7}\n", colour),
            "\u{1b}[32mINFO\u{1b}[0m file=\\x1b]0;title\\x07\n"
        );
        assert_eq!(
            sanitize("{\"f\":\"a\u{9b}b\"}\n", Mode::Json),
            "{\"f\":\"a\\u009bb\"}\n"
        );
    }

    #[test]
    fn journal_lines_carry_their_priority() {
        assert!(journal_stream_matches("8:12345", 8, 12345));
        assert!(!journal_stream_matches("8:12345", 8, 1));
        assert!(!journal_stream_matches("garbage", 8, 12345));
        assert_eq!(priority_prefix(Level::ERROR), "<3>");
        assert_eq!(priority_prefix(Level::WARN), "<4>");
        assert_eq!(priority_prefix(Level::INFO), "<6>");
        assert_eq!(priority_prefix(Level::TRACE), "<7>");
        assert_eq!(with_prefix("{\"a\":1}\n", "<3>"), "<3>{\"a\":1}\n");
        assert_eq!(with_prefix("a\nb\n", "<4>"), "<4>a\n<4>b\n");
    }

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
