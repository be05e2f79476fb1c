//! EDIFACT CONTRL: the syntax and service report of an interchange.
//!
//! One UCI answers the interchange (action 7: acknowledged, 4: rejected,
//! with the UN/EDIFACT 0085 error code), then one UCM per message (7 or 4,
//! with its error code). CONTRL reports the *syntax* of what was received:
//! a message whose envelope and segments are readable is acknowledged (7)
//! even if the invoice it carries fails EN 16931 rules — that verdict is in
//! the integration report and the CDAR statuses. The answer uses the
//! interchange's syntax version (`CONTRL:D:3:UN` for syntax 3 and lower,
//! `CONTRL:4:1:UN` for syntax 4) and swaps sender and recipient. Pure.

use chrono::NaiveDateTime;

use crate::edifact::InterchangeHeader;

/// UN/EDIFACT 0085 codes quai uses.
pub mod error_code {
    /// Unspecified error.
    pub const UNSPECIFIED: &str = "18";
    /// Control count does not match number of instances received.
    pub const CONTROL_COUNT: &str = "29";
    /// Invalid value / unreadable content.
    pub const INVALID_VALUE: &str = "12";
}

/// An action (0083) with its error code when rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// 7: acknowledged.
    Accepted,
    /// 4: rejected, with a 0085 error code.
    Rejected { code: String },
}

/// The answer for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAck {
    /// UNH 0062.
    pub reference: String,
    /// `INVOIC`.
    pub message_type: String,
    /// `D:96A:UN` or `D:96A:UN:EAN008`, as written in UNH.
    pub version: String,
    pub action: Action,
}

/// A CONTRL for one received interchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contrl {
    /// The UNB of the interchange answered.
    pub original: InterchangeHeader,
    /// Control reference of the CONTRL interchange itself (at most 14 chars).
    pub reference: String,
    pub prepared: NaiveDateTime,
    pub interchange: Action,
    pub messages: Vec<MessageAck>,
}

/// Escape `?`, `+`, `:`, `'` with the release character. Control
/// characters (a line break would split a segment, none is allowed by the
/// UNOA..UNOY character sets) and U+FFFE/U+FFFF are replaced with `?`
/// released (`??`), visibly, like the XML writers replace them.
fn e(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}') {
            out.push_str("??");
            continue;
        }
        if matches!(c, '?' | '+' | ':' | '\'') {
            out.push('?');
        }
        out.push(c);
    }
    out
}

/// Components of an already-structured value (`D:96A:UN`): escape each part.
fn comps(s: &str) -> String {
    s.split(':').map(e).collect::<Vec<_>>().join(":")
}

fn party(id: &str, q: &Option<String>) -> String {
    match q {
        Some(q) if !q.is_empty() => format!("{}:{}", e(id), e(q)),
        _ => e(id),
    }
}

fn action(a: &Action) -> String {
    match a {
        Action::Accepted => "7".into(),
        Action::Rejected { code } => format!("4+{}", e(code)),
    }
}

/// The CONTRL interchange, segments separated by `'` and a newline.
pub fn to_edifact(c: &Contrl) -> String {
    let write = || -> std::io::Result<Vec<u8>> {
        let mut w = ContrlWriter::start(Vec::new(), c)?;
        for m in &c.messages {
            w.message(m)?;
        }
        w.finish()
    };
    // Writing to a Vec cannot fail, and every part is a String.
    String::from_utf8(write().unwrap_or_default()).unwrap_or_default()
}

/// Writes a CONTRL one UCM at a time, so an interchange of 100,000
/// messages is answered without holding its acknowledgements in memory.
/// `head.messages` is ignored: pass each through [`ContrlWriter::message`].
pub struct ContrlWriter<W: std::io::Write> {
    out: W,
    reference: String,
    /// Segments from UNH on, for UNT.
    segments: u64,
}

impl<W: std::io::Write> ContrlWriter<W> {
    pub fn start(mut out: W, head: &Contrl) -> std::io::Result<Self> {
        let o = &head.original;
        let syntax4 = o.syntax_version.trim() == "4";
        let syntax_id = if o.syntax_id.is_empty() {
            "UNOC"
        } else {
            o.syntax_id.as_str()
        };
        let version = if syntax4 { "4" } else { "3" };
        let date = if syntax4 {
            head.prepared.format("%Y%m%d").to_string()
        } else {
            head.prepared.format("%y%m%d").to_string()
        };
        let time = head.prepared.format("%H%M").to_string();
        out.write_all(b"UNA:+.? '\n")?;
        writeln!(
            out,
            "UNB+{}:{version}+{}+{}+{date}:{time}+{}'",
            e(syntax_id),
            party(&o.recipient, &o.recipient_qualifier),
            party(&o.sender, &o.sender_qualifier),
            e(&head.reference)
        )?;
        writeln!(
            out,
            "UNH+1+CONTRL:{}:UN'",
            if syntax4 { "4:1" } else { "D:3" }
        )?;
        writeln!(
            out,
            "UCI+{}+{}+{}+{}'",
            e(&o.control_reference),
            party(&o.sender, &o.sender_qualifier),
            party(&o.recipient, &o.recipient_qualifier),
            action(&head.interchange)
        )?;
        Ok(ContrlWriter {
            out,
            reference: head.reference.clone(),
            segments: 2,
        })
    }

    pub fn message(&mut self, m: &MessageAck) -> std::io::Result<()> {
        writeln!(
            self.out,
            "UCM+{}+{}:{}+{}'",
            e(&m.reference),
            e(&m.message_type),
            comps(&m.version),
            action(&m.action)
        )?;
        self.segments += 1;
        Ok(())
    }

    /// UNT (counting UNH to UNT) and UNZ; returns the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        writeln!(self.out, "UNT+{}+1'", self.segments + 1)?;
        writeln!(self.out, "UNZ+1+{}'", e(&self.reference))?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(version: &str) -> InterchangeHeader {
        InterchangeHeader {
            syntax_id: "UNOC".into(),
            syntax_version: version.into(),
            sender: "SENDER".into(),
            sender_qualifier: Some("14".into()),
            recipient: "PLATFORM".into(),
            recipient_qualifier: None,
            prepared_date: "261128".into(),
            prepared_time: "1200".into(),
            control_reference: "REF+1".into(),
            ..InterchangeHeader::default()
        }
    }

    fn prepared() -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 11, 28)
            .unwrap()
            .and_hms_opt(21, 5, 0)
            .unwrap()
    }

    #[test]
    fn syntax3_accepted_and_rejected_messages() {
        let c = Contrl {
            original: header("3"),
            reference: "Q42".into(),
            prepared: prepared(),
            interchange: Action::Accepted,
            messages: vec![
                MessageAck {
                    reference: "1".into(),
                    message_type: "INVOIC".into(),
                    version: "D:96A:UN:EAN008".into(),
                    action: Action::Accepted,
                },
                MessageAck {
                    reference: "2".into(),
                    message_type: "INVOIC".into(),
                    version: "D:96A:UN".into(),
                    action: Action::Rejected {
                        code: error_code::UNSPECIFIED.into(),
                    },
                },
            ],
        };
        assert_eq!(
            to_edifact(&c),
            "UNA:+.? '\n\
             UNB+UNOC:3+PLATFORM+SENDER:14+261128:2105+Q42'\n\
             UNH+1+CONTRL:D:3:UN'\n\
             UCI+REF?+1+SENDER:14+PLATFORM+7'\n\
             UCM+1+INVOIC:D:96A:UN:EAN008+7'\n\
             UCM+2+INVOIC:D:96A:UN+4+18'\n\
             UNT+5+1'\n\
             UNZ+1+Q42'\n"
        );
    }

    #[test]
    fn syntax4_rejected_interchange() {
        let c = Contrl {
            original: header("4"),
            reference: "Q43".into(),
            prepared: prepared(),
            interchange: Action::Rejected {
                code: error_code::CONTROL_COUNT.into(),
            },
            messages: vec![],
        };
        let s = to_edifact(&c);
        assert!(
            s.contains("UNB+UNOC:4+PLATFORM+SENDER:14+20261128:2105+Q43'"),
            "{s}"
        );
        assert!(s.contains("UNH+1+CONTRL:4:1:UN'"));
        assert!(s.contains("UCI+REF?+1+SENDER:14+PLATFORM+4+29'"));
        assert!(s.contains("UNT+3+1'"));
    }
}
