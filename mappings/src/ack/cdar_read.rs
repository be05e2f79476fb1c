//! Reading CDAR lifecycle statuses a partner sends (UN/CEFACT
//! CrossDomainAcknowledgementAndResponse D22B, the reform's "CDV" profile):
//! the statuses a recipient gives an invoice (204–211) or a supplier's 212.
//!
//! [`read`] streams the document through the hardened XML driver and hands
//! each `ram:ReferenceReferencedDocument` to a callback as one
//! [`ReadStatus`] once its end tag is read, so a CDAR of many statuses is
//! never held whole. Each status carries what matching and the lifecycle
//! need (invoice number BT-1, issue date BT-2, seller identifier, status
//! code, reasons, amounts) and the problems that make it unusable, checked
//! natively after the BR-FR-CDV rules that bear on one status (the list is
//! in docs/lifecycle.md); problems of the whole document are in the
//! returned [`CdarHead`]. The official XSD and schematron stay the tests'
//! oracle.

use std::io::BufRead;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::xml::{self, Attrs, Handler};
use crate::ReadError;

/// The CDAR namespaces (rsm, ram, udt, qdt).
use crate::detect::NS_CDAR;
const NS_RAM: &str =
    "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100";
const NS_UDT: &str = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100";
const NS_QDT: &str = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100";

/// One rule a status or the document breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdarProblem {
    /// `BR-FR-CDV-10`...
    pub rule: &'static str,
    pub message: String,
}

/// A reason given with a status (MDT-113 code, its text).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadReason {
    pub code: String,
    pub text: Option<String>,
}

/// An amount a status carries (MDG-43: type MDT-207, amount, VAT rate).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadAmount {
    pub kind: String,
    pub amount: Option<Decimal>,
    pub currency: Option<String>,
    pub vat_rate: Option<Decimal>,
}

/// The status of one invoice, as read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadStatus {
    /// Its place in the document (0-based).
    pub index: usize,
    /// BT-1 (MDT-87).
    pub invoice_number: String,
    /// BT-2 (MDG-35).
    pub issue_date: Option<NaiveDate>,
    /// The seller (MDT-129): (scheme, id).
    pub seller: Option<(Option<String>, String)>,
    /// MDT-105 as written (`"210"`).
    pub code: String,
    pub reasons: Vec<ReadReason>,
    pub amounts: Vec<ReadAmount>,
    /// Why it cannot be used (empty: usable).
    pub problems: Vec<CdarProblem>,
}

impl ReadStatus {
    pub fn is_usable(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What the document says of itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CdarHead {
    /// MDT-4.
    pub id: String,
    /// MDT-77: `23` (processing phase) or `305` (transmission phase).
    pub type_code: String,
    /// The issuer's role (MDT-40): `BY` for a buyer, `SE` for a seller...
    pub issuer_role: String,
    /// How many statuses were read.
    pub statuses: usize,
    /// Problems of the document as a whole (then no status is usable).
    pub problems: Vec<CdarProblem>,
}

/// Reasons BR-FR-CDV-15 requires: 206, 207, 208, 210 carry one.
const NEEDS_REASON: &[&str] = &["206", "207", "208", "210"];

/// Read a CDAR document, calling `on_status` for each status in order.
pub fn read<R: BufRead>(
    input: R,
    mut on_status: impl FnMut(ReadStatus),
) -> Result<CdarHead, ReadError> {
    let mut h = Reader {
        head: CdarHead::default(),
        cur: None,
        on_status: &mut on_status,
        seen_issue_date: false,
        reason: None,
        amount: None,
    };
    xml::drive(input, &mut h)?;
    let mut head = h.head;
    if head.id.is_empty() {
        head.problems.push(problem(
            "BR-FR-CDV-03",
            "the document has no identifier (MDT-4)",
        ));
    }
    if !h.seen_issue_date {
        head.problems.push(problem(
            "BR-FR-CDV-04",
            "the document has no issue date (MDG-4)",
        ));
    }
    if !matches!(head.type_code.as_str(), "23" | "305") {
        head.problems.push(problem(
            "BR-FR-CDV-09",
            "the acknowledgement type code (MDT-77) must be 23 or 305",
        ));
    }
    Ok(head)
}

fn problem(rule: &'static str, message: &str) -> CdarProblem {
    CdarProblem {
        rule,
        message: message.to_owned(),
    }
}

struct Reader<'a> {
    head: CdarHead,
    cur: Option<ReadStatus>,
    on_status: &'a mut dyn FnMut(ReadStatus),
    seen_issue_date: bool,
    reason: Option<ReadReason>,
    amount: Option<ReadAmount>,
}

const REF: &str = "AcknowledgementDocument/ReferenceReferencedDocument";

impl Handler for Reader<'_> {
    fn known_namespace(&self, ns: &str) -> bool {
        matches!(ns, NS_CDAR | NS_RAM | NS_UDT | NS_QDT)
    }

    fn root(&mut self, ns: &str, local: &str) -> Result<(), String> {
        if ns == NS_CDAR && local == "CrossDomainAcknowledgementAndResponse" {
            Ok(())
        } else {
            Err(format!("not a CDAR document: root {{{ns}}}{local}"))
        }
    }

    fn start(&mut self, path: &str, _attrs: &Attrs<'_>) -> xml::TextMode {
        match path.strip_prefix(REF) {
            Some("") => {
                self.cur = Some(ReadStatus {
                    index: self.head.statuses,
                    ..ReadStatus::default()
                })
            }
            Some("/SpecifiedDocumentStatus") => self.reason = Some(ReadReason::default()),
            Some("/SpecifiedDocumentStatus/SpecifiedDocumentCharacteristic") => {
                self.amount = Some(ReadAmount::default())
            }
            _ => {}
        }
        xml::TextMode::Keep
    }

    fn end(&mut self, path: &str, attrs: &Attrs<'_>, text: &str, _binary: Option<u64>) {
        let text = text.trim();
        match path {
            "ExchangedDocument/ID" => self.head.id = text.to_owned(),
            "ExchangedDocument/IssueDateTime/DateTimeString" => {
                self.seen_issue_date = !text.is_empty()
            }
            "ExchangedDocument/IssuerTradeParty/RoleCode" => {
                self.head.issuer_role = text.to_owned()
            }
            "AcknowledgementDocument/TypeCode" => self.head.type_code = text.to_owned(),
            _ => {}
        }
        let Some(rest) = path.strip_prefix(REF) else {
            return;
        };
        if rest.is_empty() {
            if let Some(mut s) = self.cur.take() {
                check(&mut s);
                self.head.statuses += 1;
                (self.on_status)(s);
            }
            return;
        }
        let Some(s) = self.cur.as_mut() else {
            return;
        };
        match rest {
            "/IssuerAssignedID" => s.invoice_number = text.to_owned(),
            "/FormattedIssueDateTime/DateTimeString" => {
                s.issue_date = xml::parse_yyyymmdd(text).or_else(|| xml::parse_iso_date(text))
            }
            "/ProcessConditionCode" => s.code = text.to_owned(),
            "/IssuerTradeParty/GlobalID" => {
                s.seller = Some((attrs.owned("schemeID"), text.to_owned()))
            }
            "/SpecifiedDocumentStatus/ReasonCode" => {
                if let Some(r) = self.reason.as_mut() {
                    r.code = text.to_owned()
                }
            }
            "/SpecifiedDocumentStatus/Reason" => {
                if let Some(r) = self.reason.as_mut() {
                    r.text = (!text.is_empty()).then(|| text.to_owned())
                }
            }
            "/SpecifiedDocumentStatus/ProcessConditionCode" if s.code.is_empty() => {
                s.code = text.to_owned()
            }
            "/SpecifiedDocumentStatus" => {
                if let Some(r) = self.reason.take().filter(|r| !r.code.is_empty()) {
                    s.reasons.push(r)
                }
            }
            "/SpecifiedDocumentStatus/SpecifiedDocumentCharacteristic/TypeCode" => {
                if let Some(a) = self.amount.as_mut() {
                    a.kind = text.to_owned()
                }
            }
            "/SpecifiedDocumentStatus/SpecifiedDocumentCharacteristic/ValueAmount" => {
                if let Some(a) = self.amount.as_mut() {
                    a.amount = xml::parse_decimal(text);
                    a.currency = attrs.owned("currencyID");
                }
            }
            "/SpecifiedDocumentStatus/SpecifiedDocumentCharacteristic/ValuePercent" => {
                if let Some(a) = self.amount.as_mut() {
                    a.vat_rate = xml::parse_decimal(text)
                }
            }
            "/SpecifiedDocumentStatus/SpecifiedDocumentCharacteristic" => {
                if let Some(a) = self.amount.take() {
                    s.amounts.push(a)
                }
            }
            _ => {}
        }
    }
}

/// The BR-FR-CDV rules of one status.
fn check(s: &mut ReadStatus) {
    if s.invoice_number.is_empty() {
        s.problems.push(problem(
            "BR-FR-CDV-10",
            "the invoice's number (MDT-87) is missing",
        ));
    }
    if s.issue_date.is_none() {
        s.problems.push(problem(
            "BR-FR-CDV-11",
            "the invoice's issue date (MDG-35, format 102) is missing or not a date",
        ));
    }
    if s.code.is_empty() {
        s.problems.push(problem(
            "BR-FR-CDV-12",
            "the status code (MDT-105) is missing",
        ));
    } else if !s
        .code
        .parse::<u16>()
        .is_ok_and(|c| (200..=228).contains(&c) || c == 501)
    {
        s.problems.push(problem(
            "BR-FR-CDV-CL-06",
            &format!("{:?} is not a status code (MDT-105)", s.code),
        ));
    }
    if s.seller.as_ref().is_none_or(|(_, id)| id.is_empty()) {
        s.problems.push(problem(
            "BR-FR-CDV-13",
            "the seller's identifier (MDT-129) is missing",
        ));
    }
    if NEEDS_REASON.contains(&s.code.as_str()) && s.reasons.is_empty() {
        s.problems.push(problem(
            "BR-FR-CDV-15",
            &format!("status {} needs a reason (MDT-113)", s.code),
        ));
    }
    if s.code == "212" {
        let men: Vec<_> = s.amounts.iter().filter(|a| a.kind == "MEN").collect();
        if men.is_empty()
            || men
                .iter()
                .any(|a| a.amount.is_none() || a.vat_rate.is_none())
        {
            s.problems.push(problem(
                "BR-FR-CDV-14",
                "status 212 states the amount cashed (MEN) with its amount and VAT rate",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(statuses: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossDomainAcknowledgementAndResponse xmlns:rsm="{NS_CDAR}" xmlns:ram="{NS_RAM}" xmlns:udt="{NS_UDT}" xmlns:qdt="{NS_QDT}">
  <rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>urn.cpro.gouv.fr:1p0:CDV:invoice</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter></rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument>
    <ram:ID>BUYER-1</ram:ID>
    <ram:IssueDateTime><udt:DateTimeString format="204">20261001120000</udt:DateTimeString></ram:IssueDateTime>
    <ram:IssuerTradeParty><ram:GlobalID schemeID="0002">552100554</ram:GlobalID><ram:RoleCode>BY</ram:RoleCode></ram:IssuerTradeParty>
  </rsm:ExchangedDocument>
  <rsm:AcknowledgementDocument>
    <ram:TypeCode>23</ram:TypeCode>
    {statuses}
  </rsm:AcknowledgementDocument>
</rsm:CrossDomainAcknowledgementAndResponse>"#
        )
    }

    const REFUSED: &str = r#"<ram:ReferenceReferencedDocument>
      <ram:IssuerAssignedID>INV-1</ram:IssuerAssignedID>
      <ram:FormattedIssueDateTime><qdt:DateTimeString format="102">20260930</qdt:DateTimeString></ram:FormattedIssueDateTime>
      <ram:ProcessConditionCode>210</ram:ProcessConditionCode>
      <ram:IssuerTradeParty><ram:GlobalID schemeID="0002">732829320</ram:GlobalID><ram:RoleCode>SE</ram:RoleCode></ram:IssuerTradeParty>
      <ram:SpecifiedDocumentStatus><ram:ReasonCode>TX_TVA_ERR</ram:ReasonCode><ram:Reason>taux &amp; base</ram:Reason><ram:SequenceNumeric>1</ram:SequenceNumeric></ram:SpecifiedDocumentStatus>
    </ram:ReferenceReferencedDocument>"#;

    fn read_all(xml: &str) -> (CdarHead, Vec<ReadStatus>) {
        let mut out = Vec::new();
        let head = read(xml.as_bytes(), |s| out.push(s)).unwrap();
        (head, out)
    }

    #[test]
    fn a_refusal_is_read() {
        let (head, s) = read_all(&doc(REFUSED));
        assert!(head.problems.is_empty(), "{:?}", head.problems);
        assert_eq!(
            (
                head.id.as_str(),
                head.type_code.as_str(),
                head.issuer_role.as_str()
            ),
            ("BUYER-1", "23", "BY")
        );
        assert_eq!(s.len(), 1);
        let s = &s[0];
        assert!(s.is_usable(), "{:?}", s.problems);
        assert_eq!(s.invoice_number, "INV-1");
        assert_eq!(s.issue_date, NaiveDate::from_ymd_opt(2026, 9, 30));
        assert_eq!(s.code, "210");
        assert_eq!(s.seller, Some((Some("0002".into()), "732829320".into())));
        assert_eq!(
            s.reasons,
            vec![ReadReason {
                code: "TX_TVA_ERR".into(),
                text: Some("taux & base".into())
            }]
        );
    }

    #[test]
    fn unusable_statuses_say_why() {
        let no_reason = REFUSED.replace(
            "<ram:SpecifiedDocumentStatus><ram:ReasonCode>TX_TVA_ERR</ram:ReasonCode><ram:Reason>taux &amp; base</ram:Reason><ram:SequenceNumeric>1</ram:SequenceNumeric></ram:SpecifiedDocumentStatus>",
            "",
        );
        let no_number = REFUSED.replace("<ram:IssuerAssignedID>INV-1</ram:IssuerAssignedID>", "");
        let cashed = REFUSED.replace(">210<", ">212<");
        let (_, s) = read_all(&doc(&format!("{no_reason}{no_number}{cashed}")));
        let rules = |s: &ReadStatus| s.problems.iter().map(|p| p.rule).collect::<Vec<_>>();
        assert_eq!(rules(&s[0]), ["BR-FR-CDV-15"]);
        assert_eq!(rules(&s[1]), ["BR-FR-CDV-10"]);
        assert_eq!(rules(&s[2]), ["BR-FR-CDV-14"]);
        assert_eq!(s.iter().map(|s| s.index).collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn a_cashed_status_with_its_amount() {
        let cashed = REFUSED.replace(">210<", ">212<").replace(
            "<ram:SequenceNumeric>1</ram:SequenceNumeric>",
            "<ram:SequenceNumeric>1</ram:SequenceNumeric><ram:SpecifiedDocumentCharacteristic><ram:TypeCode>MEN</ram:TypeCode><ram:ValueAmount currencyID=\"EUR\">120.00</ram:ValueAmount><ram:ValuePercent>20.00</ram:ValuePercent></ram:SpecifiedDocumentCharacteristic>",
        );
        let (_, s) = read_all(&doc(&cashed));
        assert!(s[0].is_usable(), "{:?}", s[0].problems);
        assert_eq!(s[0].amounts[0].amount, Some(Decimal::new(12000, 2)));
        assert_eq!(s[0].amounts[0].vat_rate, Some(Decimal::new(2000, 2)));
        assert_eq!(s[0].amounts[0].currency.as_deref(), Some("EUR"));
    }

    #[test]
    fn head_problems_and_other_roots() {
        let bad = doc(REFUSED).replace(
            "<ram:TypeCode>23</ram:TypeCode>",
            "<ram:TypeCode>7</ram:TypeCode>",
        );
        let (head, _) = read_all(&bad);
        assert_eq!(head.problems[0].rule, "BR-FR-CDV-09");
        assert!(read(
            &b"<Invoice xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\"/>"[..],
            |_| {}
        )
        .is_err());
    }
}
