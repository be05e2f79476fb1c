//! Every XML acknowledgement quai writes is well-formed, whatever a partner
//! put in its file names and invoice fields (issue 14, class 6): control
//! characters, U+FFFE/U+FFFF, markup, quotes and line breaks go through the
//! integration report and CDAR writers, and each output is parsed by a
//! strict parser (lxml in the test venv, which refuses any character XML 1.0
//! does not allow). The CONTRL writer (EDIFACT) is checked to keep its
//! segments whole.

use std::io::Write;
use std::process::{Command, Stdio};

use chrono::{NaiveDate, TimeZone, Utc};
use quai_mappings::ack::cdar::{self, CdarMessage, CdarParty, CdarReason, CdarStatus};
use quai_mappings::ack::contrl::{self, Action, Contrl, MessageAck};
use quai_mappings::ack::report::{
    FlowRejection, IntegrationReport, ReportDocument, ReportFlow, ReportReason,
};
use quai_mappings::edifact::InterchangeHeader;

/// Partner-supplied text at its worst: every C0 control, the two
/// non-characters, markup, quotes, line breaks, a CDATA end.
fn nasty(tag: &str) -> String {
    let mut s = format!("{tag}<&>\"' ]]> \r\n\t");
    for c in 0u32..0x20 {
        s.push(char::from_u32(c).unwrap());
    }
    s.push('\u{FFFE}');
    s.push('\u{FFFF}');
    s.push_str("é\u{1F600}");
    s
}

/// Parse each document with lxml (strict: no recovery); returns, per
/// document, `ok` or the parser's error.
fn strict_parse(docs: &[Vec<u8>]) -> Vec<String> {
    let python = quai_test_support::venv::python_with(&["lxml"]);
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        let p = dir.path().join(format!("{i}.xml"));
        std::fs::write(&p, d).unwrap();
        paths.push(p);
    }
    let script = r#"
import sys
from lxml import etree
for line in sys.stdin:
    path = line.rstrip("\n")
    try:
        etree.parse(path, etree.XMLParser(recover=False, resolve_entities=False, no_network=True))
        print("ok")
    except Exception as e:
        print("error: " + str(e).replace("\n", " "))
"#;
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        for p in &paths {
            writeln!(stdin, "{}", p.display()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), docs.len());
    lines
}

fn report(status: &str, with_rejection: bool) -> IntegrationReport {
    let flow = ReportFlow {
        id: 1,
        partner: nasty("partner"),
        file: nasty("file.zip"),
        sha256: nasty("sha"),
        size: 3,
        received_at: nasty("received"),
        processed_at: nasty("processed"),
    };
    let docs = vec![ReportDocument {
        index: 0,
        entry: nasty("entry.xml"),
        invoice_number: Some(nasty("F-1")),
        issue_date: Some(nasty("2026-01-01")),
        status: "rejected".into(),
        reasons: vec![ReportReason {
            rule: nasty("BR-01"),
            term: nasty("BT-1"),
            severity: nasty("fatal"),
            message: nasty("message"),
        }],
    }];
    let mut r = IntegrationReport::new(flow, status, docs);
    if with_rejection {
        r.rejection = Some(FlowRejection {
            code: nasty("IRR_SYNTAX"),
            message: nasty("why"),
        });
        r.duplicate_of = Some(9);
    }
    r
}

fn cdar_message(global_id: bool) -> CdarMessage {
    CdarMessage {
        id: nasty("id"),
        name: nasty("name"),
        issued_at: Utc.with_ymd_and_hms(2026, 11, 28, 15, 15, 0).unwrap(),
        recipient: CdarParty {
            global_id: global_id.then(|| (nasty("0002"), nasty("siren"))),
            name: Some(nasty("acme")),
            role: nasty("SE"),
        },
        statuses: vec![
            CdarStatus {
                invoice_number: nasty("F-1"),
                type_code: nasty("380"),
                received_at: Utc.with_ymd_and_hms(2026, 11, 28, 15, 10, 0).unwrap(),
                issue_date: NaiveDate::from_ymd_opt(2026, 11, 2),
                seller_id: Some(nasty("FR123")),
                reasons: vec![],
            },
            CdarStatus {
                invoice_number: nasty("F-2"),
                type_code: nasty("381"),
                received_at: Utc.with_ymd_and_hms(2026, 11, 28, 15, 10, 0).unwrap(),
                issue_date: None,
                seller_id: Some("732829320".into()),
                reasons: vec![CdarReason {
                    reason_code: nasty("REJ_SEMAN"),
                    rule: nasty("BR-CO-15"),
                    term: nasty("BT-112"),
                    message: nasty("message"),
                }],
            },
        ],
    }
}

#[test]
fn every_xml_acknowledgement_is_well_formed() {
    let mut docs: Vec<(String, Vec<u8>)> = Vec::new();
    for (status, rej) in [("processed", false), ("rejected", true)] {
        let r = report(status, rej);
        docs.push((format!("report {status}"), r.to_xml()));
        // The streaming writer, as the daemon uses it.
        let mut w =
            quai_mappings::ack::report::XmlReportWriter::start(Vec::new(), &r.head()).unwrap();
        for d in &r.documents {
            w.document(d).unwrap();
        }
        docs.push((format!("report {status} streamed"), w.finish().unwrap()));
        // The JSON report is JSON whatever the input.
        let v: serde_json::Value = serde_json::from_slice(&r.to_json()).unwrap();
        assert_eq!(v["flow"]["file"], nasty("file.zip"));
    }
    for global in [false, true] {
        let m = cdar_message(global);
        docs.push((
            format!("cdar global_id={global}"),
            cdar::to_xml(&m).into_bytes(),
        ));
        let mut w = cdar::CdarWriter::start(Vec::new(), &m, m.statuses.len() as u64).unwrap();
        for s in &m.statuses {
            w.status(s).unwrap();
        }
        docs.push((
            format!("cdar streamed global_id={global}"),
            w.finish().unwrap(),
        ));
    }
    let bytes: Vec<Vec<u8>> = docs.iter().map(|(_, d)| d.clone()).collect();
    let verdicts = strict_parse(&bytes);
    for ((name, doc), verdict) in docs.iter().zip(&verdicts) {
        assert_eq!(
            verdict,
            "ok",
            "{name} is not well-formed:\n{}",
            String::from_utf8_lossy(doc)
        );
        let text = String::from_utf8(doc.clone()).unwrap();
        // What could not be carried is replaced visibly, not dropped.
        assert!(
            text.contains('\u{FFFD}'),
            "{name}: no replacement character"
        );
        assert!(!text.contains("&#x1;") && !text.contains('\u{1}'), "{name}");
    }
    // The parser is strict: the writers' old output (a reference to a
    // control character) and a raw U+FFFF are refused.
    let bad = strict_parse(&[
        b"<a>&#x1;</a>".to_vec(),
        "<a>\u{FFFF}</a>".as_bytes().to_vec(),
        b"<a>ok</a>".to_vec(),
    ]);
    assert!(bad[0].starts_with("error"), "{bad:?}");
    assert!(bad[1].starts_with("error"), "{bad:?}");
    assert_eq!(bad[2], "ok");
}

#[test]
fn contrl_segments_stay_whole() {
    let header = InterchangeHeader {
        syntax_id: "UNOC".into(),
        syntax_version: "3".into(),
        sender: nasty("SENDER"),
        sender_qualifier: Some("14".into()),
        recipient: nasty("RECIPIENT"),
        recipient_qualifier: None,
        prepared_date: "261128".into(),
        prepared_time: "1010".into(),
        control_reference: nasty("REF"),
        application_reference: None,
        test: false,
        offset: 0,
    };
    let c = Contrl {
        original: header,
        reference: "C1".into(),
        prepared: NaiveDate::from_ymd_opt(2026, 11, 28)
            .unwrap()
            .and_hms_opt(10, 10, 0)
            .unwrap(),
        interchange: Action::Accepted,
        messages: vec![MessageAck {
            reference: nasty("M1"),
            message_type: "INVOIC".into(),
            version: "D:96A:UN".into(),
            action: Action::Rejected { code: "12".into() },
        }],
    };
    let text = contrl::to_edifact(&c);
    // One segment a line: UNA, UNB, UNH, UCI, UCM, UNT, UNZ.
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text:?}");
    assert!(text
        .chars()
        .all(|ch| ch == '\n' || (!ch.is_control() && ch != '\u{FFFF}' && ch != '\u{FFFE}')));
    for l in &lines[1..] {
        assert!(l.ends_with('\''), "{l:?}");
    }
}
