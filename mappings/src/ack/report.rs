//! The integration report: one per flow, accepted and rejected counts and
//! every document with its verdict and reasons. Published formats: JSON
//! (`*.report.json`) and XML (`*.report.xml`, namespace
//! `urn:quai:integration-report:1`); see docs/reports.md.

use std::io::Write;

use serde::Serialize;

/// The flow the report is about.
#[derive(Debug, Clone, Serialize)]
pub struct ReportFlow {
    pub id: i64,
    pub partner: String,
    pub file: String,
    pub sha256: String,
    pub size: i64,
    pub received_at: String,
    pub processed_at: String,
}

/// A reason a document was rejected or warned about.
#[derive(Debug, Clone, Serialize)]
pub struct ReportReason {
    pub rule: String,
    pub term: String,
    pub severity: String,
    pub message: String,
}

/// One document of the flow.
#[derive(Debug, Clone, Serialize)]
pub struct ReportDocument {
    pub index: i64,
    pub entry: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue_date: Option<String>,
    /// `accepted` or `rejected`
    pub status: String,
    pub reasons: Vec<ReportReason>,
}

/// Why a whole flow was refused.
#[derive(Debug, Clone, Serialize)]
pub struct FlowRejection {
    /// IRR_VIDE_F, IRR_TYPE_F, IRR_SYNTAX, IRR_TAILLE_F...
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportCounts {
    pub documents: i64,
    pub accepted: i64,
    pub rejected: i64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct IntegrationReport {
    pub report: &'static str,
    pub version: u32,
    pub flow: ReportFlow,
    /// `processed` (read; documents may still be rejected), `rejected` (the
    /// flow as a whole is inadmissible), or `duplicate`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection: Option<FlowRejection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<i64>,
    pub counts: ReportCounts,
    pub documents: Vec<ReportDocument>,
}

impl IntegrationReport {
    pub fn new(flow: ReportFlow, status: &str, documents: Vec<ReportDocument>) -> Self {
        let accepted = documents.iter().filter(|d| d.status == "accepted").count() as i64;
        let rejected = documents.len() as i64 - accepted;
        IntegrationReport {
            report: "integration",
            version: 1,
            flow,
            status: status.to_string(),
            rejection: None,
            duplicate_of: None,
            counts: ReportCounts {
                documents: documents.len() as i64,
                accepted,
                rejected,
            },
            documents,
        }
    }

    /// Everything but the documents.
    pub fn head(&self) -> ReportHead {
        ReportHead {
            report: self.report,
            version: self.version,
            flow: self.flow.clone(),
            status: self.status.clone(),
            rejection: self.rejection.clone(),
            duplicate_of: self.duplicate_of,
            counts: self.counts.clone(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        let write = || -> std::io::Result<Vec<u8>> {
            let mut w = JsonReportWriter::start(Vec::new(), &self.head())?;
            for d in &self.documents {
                w.document(d)?;
            }
            w.finish()
        };
        write().unwrap_or_default()
    }

    pub fn to_xml(&self) -> Vec<u8> {
        let write = || -> std::io::Result<Vec<u8>> {
            let mut w = XmlReportWriter::start(Vec::new(), &self.head())?;
            for d in &self.documents {
                w.document(d)?;
            }
            w.finish()
        };
        write().unwrap_or_default()
    }
}

/// A report without its documents: what is written before them. The
/// counts come first in both formats, so they must be known before the
/// documents are streamed (the spool keeps them on the flow).
#[derive(Debug, Clone, Serialize)]
pub struct ReportHead {
    pub report: &'static str,
    pub version: u32,
    pub flow: ReportFlow,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection: Option<FlowRejection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<i64>,
    pub counts: ReportCounts,
}

impl ReportHead {
    pub fn new(flow: ReportFlow, status: &str, counts: ReportCounts) -> ReportHead {
        ReportHead {
            report: "integration",
            version: 1,
            flow,
            status: status.to_string(),
            rejection: None,
            duplicate_of: None,
            counts,
        }
    }
}

/// Writes the JSON report one document at a time (the same bytes as
/// `serde_json::to_vec_pretty` of the whole report, plus a final newline),
/// so a flow of a million invoices never has its report in memory.
pub struct JsonReportWriter<W: Write> {
    out: W,
    documents: u64,
}

impl<W: Write> JsonReportWriter<W> {
    pub fn start(mut out: W, head: &ReportHead) -> std::io::Result<Self> {
        let text = serde_json::to_string_pretty(head).map_err(std::io::Error::other)?;
        // `{ ...fields\n}`: reopen the object to append the documents.
        let open = text
            .strip_suffix('}')
            .map(|t| t.trim_end())
            .ok_or_else(|| std::io::Error::other("report head is not a JSON object"))?;
        out.write_all(open.as_bytes())?;
        out.write_all(b",\n  \"documents\": [")?;
        Ok(JsonReportWriter { out, documents: 0 })
    }

    pub fn document(&mut self, d: &ReportDocument) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(d).map_err(std::io::Error::other)?;
        self.out
            .write_all(if self.documents == 0 { b"\n" } else { b",\n" })?;
        // Strings are escaped, so every line break is the pretty printer's.
        for (n, line) in text.split('\n').enumerate() {
            if n > 0 {
                self.out.write_all(b"\n")?;
            }
            self.out.write_all(b"    ")?;
            self.out.write_all(line.as_bytes())?;
        }
        self.documents += 1;
        Ok(())
    }

    /// Close the document list and the object; returns the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        if self.documents > 0 {
            self.out.write_all(b"\n  ")?;
        }
        self.out.write_all(b"]\n}\n")?;
        Ok(self.out)
    }
}

/// Writes the XML report one document at a time.
pub struct XmlReportWriter<W: Write> {
    out: W,
}

impl<W: Write> XmlReportWriter<W> {
    pub fn start(mut out: W, head: &ReportHead) -> std::io::Result<Self> {
        let x = &mut out;
        x.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
        x.write_all(
            b"<IntegrationReport xmlns=\"urn:quai:integration-report:1\" version=\"1\">\n",
        )?;
        let f = &head.flow;
        write!(
            x,
            "  <Flow id=\"{}\" partner=\"{}\" sha256=\"{}\" size=\"{}\">\n    <File>{}</File>\n    <ReceivedAt>{}</ReceivedAt>\n    <ProcessedAt>{}</ProcessedAt>\n  </Flow>\n",
            f.id, esc(&f.partner), esc(&f.sha256), f.size, esc(&f.file), esc(&f.received_at), esc(&f.processed_at)
        )?;
        writeln!(x, "  <Status>{}</Status>", esc(&head.status))?;
        if let Some(r) = &head.rejection {
            writeln!(
                x,
                "  <Rejection code=\"{}\">{}</Rejection>",
                esc(&r.code),
                esc(&r.message)
            )?;
        }
        if let Some(d) = head.duplicate_of {
            writeln!(x, "  <DuplicateOf>{d}</DuplicateOf>")?;
        }
        let c = &head.counts;
        writeln!(
            x,
            "  <Counts documents=\"{}\" accepted=\"{}\" rejected=\"{}\"/>",
            c.documents, c.accepted, c.rejected
        )?;
        x.write_all(b"  <Documents>\n")?;
        Ok(XmlReportWriter { out })
    }

    pub fn document(&mut self, d: &ReportDocument) -> std::io::Result<()> {
        let x = &mut self.out;
        writeln!(
            x,
            "    <Document index=\"{}\" status=\"{}\">",
            d.index,
            esc(&d.status)
        )?;
        writeln!(x, "      <Entry>{}</Entry>", esc(&d.entry))?;
        if let Some(n) = &d.invoice_number {
            writeln!(x, "      <InvoiceNumber>{}</InvoiceNumber>", esc(n))?;
        }
        if let Some(n) = &d.issue_date {
            writeln!(x, "      <IssueDate>{}</IssueDate>", esc(n))?;
        }
        for r in &d.reasons {
            writeln!(
                x,
                "      <Reason rule=\"{}\" term=\"{}\" severity=\"{}\">{}</Reason>",
                esc(&r.rule),
                esc(&r.term),
                esc(&r.severity),
                esc(&r.message)
            )?;
        }
        x.write_all(b"    </Document>\n")
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        self.out
            .write_all(b"  </Documents>\n</IntegrationReport>\n")?;
        Ok(self.out)
    }
}

/// Escape text for XML content and attributes (see [`crate::xml_out`]:
/// markup escaped, characters XML 1.0 forbids replaced with U+FFFD).
pub fn esc(s: &str) -> String {
    crate::xml_out::attr(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> IntegrationReport {
        let flow = ReportFlow {
            id: 7,
            partner: "acme".into(),
            file: "batch<1>.zip".into(),
            sha256: "ab".into(),
            size: 10,
            received_at: "2026-11-28T10:00:00Z".into(),
            processed_at: "2026-11-28T10:00:01Z".into(),
        };
        let docs = vec![
            ReportDocument {
                index: 0,
                entry: "a.xml".into(),
                invoice_number: Some("F1".into()),
                issue_date: None,
                status: "accepted".into(),
                reasons: vec![],
            },
            ReportDocument {
                index: 1,
                entry: "b.xml".into(),
                invoice_number: Some("F2".into()),
                issue_date: Some("2026-01-01".into()),
                status: "rejected".into(),
                reasons: vec![ReportReason {
                    rule: "BR-CO-10".into(),
                    term: "BT-106".into(),
                    severity: "fatal".into(),
                    message: "sum & total differ".into(),
                }],
            },
        ];
        IntegrationReport::new(flow, "processed", docs)
    }

    #[test]
    fn counts_and_json() {
        let r = sample();
        assert_eq!(
            (r.counts.documents, r.counts.accepted, r.counts.rejected),
            (2, 1, 1)
        );
        let v: serde_json::Value = serde_json::from_slice(&r.to_json()).unwrap();
        assert_eq!(v["counts"]["rejected"], 1);
        assert_eq!(v["documents"][1]["reasons"][0]["rule"], "BR-CO-10");
        assert!(v.get("rejection").is_none());
    }

    #[test]
    fn streamed_json_is_the_pretty_serialisation() {
        let r = sample();
        let mut expected = serde_json::to_vec_pretty(&r).unwrap();
        expected.push(b'\n');
        assert_eq!(
            String::from_utf8(r.to_json()).unwrap(),
            String::from_utf8(expected).unwrap()
        );
        let mut empty = sample();
        empty.documents.clear();
        let mut expected = serde_json::to_vec_pretty(&empty).unwrap();
        expected.push(b'\n');
        assert_eq!(empty.to_json(), expected);
        let v: serde_json::Value = serde_json::from_slice(&empty.to_json()).unwrap();
        assert_eq!(v["documents"], serde_json::json!([]));
    }

    #[test]
    fn xml_is_escaped_and_well_formed() {
        let xml = String::from_utf8(sample().to_xml()).unwrap();
        assert!(xml.contains("<File>batch&lt;1&gt;.zip</File>"));
        assert!(xml.contains("sum &amp; total differ"));
        let mut reader = quick_xml::Reader::from_str(&xml);
        let mut depth = 0i32;
        loop {
            match reader.read_event().unwrap() {
                quick_xml::events::Event::Start(_) => depth += 1,
                quick_xml::events::Event::End(_) => depth -= 1,
                quick_xml::events::Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(depth, 0);
    }
}
