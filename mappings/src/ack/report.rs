//! The integration report: one per flow, accepted and rejected counts and
//! every document with its verdict and reasons. Published formats: JSON
//! (`*.report.json`) and XML (`*.report.xml`, namespace
//! `urn:quai:integration-report:1`); see docs/reports.md.

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

    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    pub fn to_xml(&self) -> Vec<u8> {
        let mut x = String::with_capacity(1024 + self.documents.len() * 256);
        x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        x.push_str("<IntegrationReport xmlns=\"urn:quai:integration-report:1\" version=\"1\">\n");
        let f = &self.flow;
        x.push_str(&format!(
            "  <Flow id=\"{}\" partner=\"{}\" sha256=\"{}\" size=\"{}\">\n    <File>{}</File>\n    <ReceivedAt>{}</ReceivedAt>\n    <ProcessedAt>{}</ProcessedAt>\n  </Flow>\n",
            f.id, esc(&f.partner), esc(&f.sha256), f.size, esc(&f.file), esc(&f.received_at), esc(&f.processed_at)
        ));
        x.push_str(&format!("  <Status>{}</Status>\n", esc(&self.status)));
        if let Some(r) = &self.rejection {
            x.push_str(&format!(
                "  <Rejection code=\"{}\">{}</Rejection>\n",
                esc(&r.code),
                esc(&r.message)
            ));
        }
        if let Some(d) = self.duplicate_of {
            x.push_str(&format!("  <DuplicateOf>{d}</DuplicateOf>\n"));
        }
        let c = &self.counts;
        x.push_str(&format!(
            "  <Counts documents=\"{}\" accepted=\"{}\" rejected=\"{}\"/>\n",
            c.documents, c.accepted, c.rejected
        ));
        x.push_str("  <Documents>\n");
        for d in &self.documents {
            x.push_str(&format!(
                "    <Document index=\"{}\" status=\"{}\">\n",
                d.index,
                esc(&d.status)
            ));
            x.push_str(&format!("      <Entry>{}</Entry>\n", esc(&d.entry)));
            if let Some(n) = &d.invoice_number {
                x.push_str(&format!(
                    "      <InvoiceNumber>{}</InvoiceNumber>\n",
                    esc(n)
                ));
            }
            if let Some(n) = &d.issue_date {
                x.push_str(&format!("      <IssueDate>{}</IssueDate>\n", esc(n)));
            }
            for r in &d.reasons {
                x.push_str(&format!(
                    "      <Reason rule=\"{}\" term=\"{}\" severity=\"{}\">{}</Reason>\n",
                    esc(&r.rule),
                    esc(&r.term),
                    esc(&r.severity),
                    esc(&r.message)
                ));
            }
            x.push_str("    </Document>\n");
        }
        x.push_str("  </Documents>\n</IntegrationReport>\n");
        x.into_bytes()
    }
}

/// Escape text for XML content and attributes.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {
                o.push_str(&format!("&#x{:X};", c as u32))
            }
            c => o.push(c),
        }
    }
    o
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
