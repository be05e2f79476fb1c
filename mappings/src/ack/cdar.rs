//! CDAR lifecycle statuses (UN/CEFACT CrossDomainAcknowledgementAndResponse
//! D22B, as profiled by the 2026 French e-invoicing reform: "CDV",
//! guideline `urn.cpro.gouv.fr:1p0:CDV:invoice`).
//!
//! One [`CdarMessage`] carries the statuses of every invoice of one flow: one
//! `ram:ReferenceReferencedDocument` per invoice, `MultipleReferencesIndicator`
//! true when there is more than one (a "CDV MULTI"), so a flow of 500
//! invoices is one file, not 500. An accepted invoice gets 200 *Déposée*
//! (status code 10), a rejected one 213 *Rejetée* (status code 8) with one
//! `ram:SpecifiedDocumentStatus` per failed rule: the reform's reason code
//! (`REJ_SEMAN` for EN 16931 business rules, `REJ_UNI` for a duplicate,
//! `REJ_COH` for syntax and coherence problems), the message, and an
//! `ram:IncludedNote` with the rule id and the business term.
//!
//! Checked against the official D22B XSD and the BR-FR-CDV schematron (the
//! daemon's `cdar_schema` test runs both on real output). What the rules ask
//! for and quai cannot know is derived as follows (docs/conformance.md,
//! "CDAR"):
//! - the recipient's electronic address (MDT-73, BR-FR-CDV-08): from its
//!   SIREN when the caller gives one (`GlobalID` scheme `0002` → address
//!   scheme `0225`, the reform directory's SIREN-level address), else its
//!   other global id, else its name (quai's partner id: statuses go back the
//!   partner's way);
//! - the invoice's issue date (MDG-35, BR-FR-CDV-11) when the document had
//!   none (unreadable, or BT-2 missing): the date it was received;
//! - the seller (MDT-129): its SIREN with scheme `0002` when the seller id
//!   is a French VAT number, SIRET or SIREN (check digits verified), else
//!   the seller id as it is.
//!
//! Pure: no I/O, no clock. [`CdarWriter`] streams (head, one status at a
//! time, tail) and writes the same bytes as [`to_xml`].

use chrono::{DateTime, NaiveDate, Utc};

/// A party of the exchanged document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdarParty {
    /// (scheme, id), e.g. ("0002", SIREN).
    pub global_id: Option<(String, String)>,
    pub name: Option<String>,
    /// UNCL 3035 role: `SE` (seller), `WK` (working party), `DFH`...
    pub role: String,
}

/// Why an invoice was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdarReason {
    /// `REJ_SEMAN`, `REJ_UNI`, `REJ_COH`...
    pub reason_code: String,
    /// Rule id (`BR-CO-15`, `REJ_UNI`, `SYNTAX`...).
    pub rule: String,
    /// Business term (`BT-112`...), may be empty.
    pub term: String,
    pub message: String,
}

/// The status of one invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdarStatus {
    /// BT-1 (empty when the invoice could not be read).
    pub invoice_number: String,
    /// BT-3 (`380`...).
    pub type_code: String,
    pub received_at: DateTime<Utc>,
    /// BT-2.
    pub issue_date: Option<NaiveDate>,
    /// Seller identifier, when known.
    pub seller_id: Option<String>,
    /// Empty: 200 Déposée; otherwise 213 Rejetée.
    pub reasons: Vec<CdarReason>,
}

impl CdarStatus {
    pub fn is_rejected(&self) -> bool {
        !self.reasons.is_empty()
    }
}

/// One CDAR document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdarMessage {
    /// Document id (MDT-4), unique per document.
    pub id: String,
    /// Document name (MDT-5).
    pub name: String,
    pub issued_at: DateTime<Utc>,
    /// Who the statuses are for (the supplier who sent the flow).
    pub recipient: CdarParty,
    pub statuses: Vec<CdarStatus>,
}

/// The reform's reason code for one of quai's rule ids.
pub fn reason_code_for(rule: &str) -> &'static str {
    let r = rule.to_ascii_uppercase();
    if r == "REJ_UNI" || r == "DOUBLON" || r.contains("DUPLICATE") {
        "REJ_UNI"
    } else if r == "REJ_ADR" {
        // No partner receives for the buyer's address (the exchange).
        "REJ_ADR"
    } else if r.starts_with("BR-") || r.starts_with("PEPPOL") || r.starts_with("EN16931") {
        "REJ_SEMAN"
    } else {
        // SYNTAX, EDIFACT-*, XML and reading problems: coherence of the
        // document itself.
        "REJ_COH"
    }
}

/// Markup escaped, characters XML 1.0 forbids replaced (`crate::xml_out`).
fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    crate::xml_out::attr(s)
}

fn dt204(t: &DateTime<Utc>) -> String {
    t.format("%Y%m%d%H%M%S").to_string()
}

fn party(out: &mut String, tag: &str, p: &CdarParty, indent: &str) {
    out.push_str(&format!("{indent}<ram:{tag}>\n"));
    if let Some((scheme, id)) = &p.global_id {
        out.push_str(&format!(
            "{indent}  <ram:GlobalID schemeID=\"{}\">{}</ram:GlobalID>\n",
            esc(scheme),
            esc(id)
        ));
    }
    if let Some(n) = &p.name {
        out.push_str(&format!("{indent}  <ram:Name>{}</ram:Name>\n", esc(n)));
    }
    out.push_str(&format!(
        "{indent}  <ram:RoleCode>{}</ram:RoleCode>\n",
        esc(&p.role)
    ));
    // BR-FR-CDV-08: a recipient other than a platform (WK) or the PPF (DFH)
    // has an electronic address (MDT-73).
    if tag == "RecipientTradeParty" && p.role != "WK" && p.role != "DFH" {
        let (scheme, id) = electronic_address(p);
        out.push_str(&format!("{indent}  <ram:URIUniversalCommunication>\n"));
        match scheme {
            Some(s) => out.push_str(&format!(
                "{indent}    <ram:URIID schemeID=\"{}\">{}</ram:URIID>\n",
                esc(&s),
                esc(&id)
            )),
            None => out.push_str(&format!(
                "{indent}    <ram:URIID>{}</ram:URIID>\n",
                esc(&id)
            )),
        }
        out.push_str(&format!("{indent}  </ram:URIUniversalCommunication>\n"));
    }
    out.push_str(&format!("{indent}</ram:{tag}>\n"));
}

/// The electronic address (MDT-73) of a party: (scheme, id). A SIREN
/// (`0002`) gives the reform directory's SIREN-level address (`0225`);
/// another global id is used as it is; without one, the party's name
/// (quai's partner id, the destination the statuses are delivered to).
pub fn electronic_address(p: &CdarParty) -> (Option<String>, String) {
    match &p.global_id {
        Some((scheme, id)) if scheme == "0002" => (Some("0225".into()), id.clone()),
        Some((scheme, id)) => (Some(scheme.clone()), id.clone()),
        None => (None, p.name.clone().unwrap_or_else(|| "unknown".into())),
    }
}

/// True when the 9 or 14 digits pass the Luhn check of SIREN and SIRET.
fn luhn(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, c) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// The SIREN in a French seller identifier: an intra-community VAT number
/// `FRkk` + SIREN (key `(12 + 3 × (SIREN mod 97)) mod 97` checked when
/// numeric), a SIRET (14 digits) or a SIREN (9 digits), check digits
/// verified. Spaces are ignored. `None` for anything else (foreign ids,
/// names), so a foreign number is never passed off as a SIREN.
pub fn siren_of(id: &str) -> Option<String> {
    let compact: String = id
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let siren_ok = |s: &str| s.len() == 9 && all_digits(s) && luhn(s);
    if let Some(rest) = compact.strip_prefix("FR") {
        if rest.len() != 11 || !rest.is_ascii() {
            return None;
        }
        let (key, siren) = rest.split_at(2);
        if !siren_ok(siren) {
            return None;
        }
        if all_digits(key) {
            let n: u64 = siren.parse().ok()?;
            let k: u64 = key.parse().ok()?;
            if (12 + 3 * (n % 97)) % 97 != k {
                return None;
            }
        }
        return Some(siren.to_string());
    }
    match compact.len() {
        9 if siren_ok(&compact) => Some(compact),
        // La Poste's establishments (SIREN 356000000) do not follow Luhn.
        14 if all_digits(&compact)
            && (luhn(&compact) || compact.starts_with("356000000"))
            && siren_ok(&compact[..9]) =>
        {
            Some(compact[..9].to_string())
        }
        _ => None,
    }
}

/// Everything before the first status. `multiple`: more than one status
/// follows (MultipleReferencesIndicator).
fn head_xml(m: &CdarMessage, multiple: bool) -> String {
    let mut o = String::with_capacity(2048);
    o.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    o.push_str(
        "<rsm:CrossDomainAcknowledgementAndResponse \
         xmlns:rsm=\"urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100\" \
         xmlns:ram=\"urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100\" \
         xmlns:udt=\"urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100\" \
         xmlns:qdt=\"urn:un:unece:uncefact:data:standard:QualifiedDataType:100\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n",
    );
    o.push_str(
        "  <rsm:ExchangedDocumentContext>\n\
         \x20   <ram:BusinessProcessSpecifiedDocumentContextParameter>\n\
         \x20     <ram:ID>REGULATED</ram:ID>\n\
         \x20   </ram:BusinessProcessSpecifiedDocumentContextParameter>\n\
         \x20   <ram:GuidelineSpecifiedDocumentContextParameter>\n\
         \x20     <ram:ID>urn.cpro.gouv.fr:1p0:CDV:invoice</ram:ID>\n\
         \x20   </ram:GuidelineSpecifiedDocumentContextParameter>\n\
         \x20 </rsm:ExchangedDocumentContext>\n",
    );
    let issued = dt204(&m.issued_at);
    o.push_str("  <rsm:ExchangedDocument>\n");
    o.push_str(&format!("    <ram:ID>{}</ram:ID>\n", esc(&m.id)));
    o.push_str(&format!("    <ram:Name>{}</ram:Name>\n", esc(&m.name)));
    o.push_str(&format!(
        "    <ram:IssueDateTime>\n      <udt:DateTimeString format=\"204\">{issued}</udt:DateTimeString>\n    </ram:IssueDateTime>\n"
    ));
    let wk = CdarParty {
        global_id: None,
        name: None,
        role: "WK".into(),
    };
    party(&mut o, "SenderTradeParty", &wk, "    ");
    party(&mut o, "IssuerTradeParty", &wk, "    ");
    party(&mut o, "RecipientTradeParty", &m.recipient, "    ");
    o.push_str("  </rsm:ExchangedDocument>\n");
    o.push_str("  <rsm:AcknowledgementDocument>\n");
    o.push_str(&format!(
        "    <ram:MultipleReferencesIndicator>\n      <udt:Indicator>{}</udt:Indicator>\n    </ram:MultipleReferencesIndicator>\n",
        multiple
    ));
    o.push_str("    <ram:TypeCode>305</ram:TypeCode>\n");
    o.push_str(&format!(
        "    <ram:IssueDateTime>\n      <udt:DateTimeString format=\"204\">{issued}</udt:DateTimeString>\n    </ram:IssueDateTime>\n"
    ));
    o
}

/// One invoice's status.
fn status_xml(s: &CdarStatus) -> String {
    let mut o = String::with_capacity(1024);
    let (code, label, status) = if s.is_rejected() {
        ("213", "Rejetée", "8")
    } else {
        ("200", "Déposée", "10")
    };
    o.push_str("    <ram:ReferenceReferencedDocument>\n");
    o.push_str(&format!(
        "      <ram:IssuerAssignedID>{}</ram:IssuerAssignedID>\n",
        esc(&s.invoice_number)
    ));
    o.push_str(&format!(
        "      <ram:StatusCode>{status}</ram:StatusCode>\n"
    ));
    o.push_str(&format!(
        "      <ram:TypeCode>{}</ram:TypeCode>\n",
        esc(&s.type_code)
    ));
    o.push_str(&format!(
        "      <ram:ReceiptDateTime>\n        <udt:DateTimeString format=\"204\">{}</udt:DateTimeString>\n      </ram:ReceiptDateTime>\n",
        dt204(&s.received_at)
    ));
    // MDG-35 is mandatory (BR-FR-CDV-11); a document without an issue date
    // (unreadable, or BT-2 missing) gets the date it was received.
    let issue_date = s.issue_date.unwrap_or_else(|| s.received_at.date_naive());
    o.push_str(&format!(
        "      <ram:FormattedIssueDateTime>\n        <qdt:DateTimeString format=\"102\">{}</qdt:DateTimeString>\n      </ram:FormattedIssueDateTime>\n",
        issue_date.format("%Y%m%d")
    ));
    o.push_str(&format!(
        "      <ram:ProcessConditionCode>{code}</ram:ProcessConditionCode>\n"
    ));
    o.push_str(&format!(
        "      <ram:ProcessCondition>{label}</ram:ProcessCondition>\n"
    ));
    // MDT-129 (BR-FR-CDV-13): the seller's SIREN when its id shows one,
    // else the id quai keys the seller on. Role SE (BR-FR-CDV-CL-07).
    if let Some(seller) = s.seller_id.as_deref().filter(|x| !x.trim().is_empty()) {
        let global = match siren_of(seller) {
            Some(siren) => format!("<ram:GlobalID schemeID=\"0002\">{siren}</ram:GlobalID>"),
            None => format!("<ram:GlobalID>{}</ram:GlobalID>", esc(seller.trim())),
        };
        o.push_str(&format!(
            "      <ram:IssuerTradeParty>\n        {global}\n        <ram:RoleCode>SE</ram:RoleCode>\n      </ram:IssuerTradeParty>\n"
        ));
    }
    for (n, r) in s.reasons.iter().enumerate() {
        o.push_str("      <ram:SpecifiedDocumentStatus>\n");
        o.push_str(&format!(
            "        <ram:ReasonCode>{}</ram:ReasonCode>\n",
            esc(&r.reason_code)
        ));
        o.push_str(&format!(
            "        <ram:Reason>{}</ram:Reason>\n",
            esc(&r.message)
        ));
        o.push_str(&format!(
            "        <ram:SequenceNumeric>{}</ram:SequenceNumeric>\n",
            n + 1
        ));
        o.push_str("        <ram:IncludedNote>\n");
        o.push_str(&format!(
            "          <ram:ContentCode>{}</ram:ContentCode>\n",
            esc(&r.rule)
        ));
        o.push_str(&format!(
            "          <ram:Content>{}</ram:Content>\n",
            esc(&r.message)
        ));
        if !r.term.is_empty() {
            o.push_str(&format!(
                "          <ram:SubjectCode>{}</ram:SubjectCode>\n",
                esc(&r.term)
            ));
        }
        o.push_str("        </ram:IncludedNote>\n");
        o.push_str("      </ram:SpecifiedDocumentStatus>\n");
    }
    o.push_str("    </ram:ReferenceReferencedDocument>\n");
    o
}

const TAIL: &str =
    "  </rsm:AcknowledgementDocument>\n</rsm:CrossDomainAcknowledgementAndResponse>\n";

/// Serialize as UTF-8 XML.
pub fn to_xml(m: &CdarMessage) -> String {
    let mut o = head_xml(m, m.statuses.len() > 1);
    for s in &m.statuses {
        o.push_str(&status_xml(s));
    }
    o.push_str(TAIL);
    o
}

/// Writes one CDAR message status by status, so the statuses of a large
/// flow are never all in memory. `head.statuses` is ignored; `count` is
/// the number of statuses that will follow (the indicator comes first).
pub struct CdarWriter<W: std::io::Write> {
    out: W,
}

impl<W: std::io::Write> CdarWriter<W> {
    pub fn start(mut out: W, head: &CdarMessage, count: u64) -> std::io::Result<Self> {
        out.write_all(head_xml(head, count > 1).as_bytes())?;
        Ok(CdarWriter { out })
    }

    pub fn status(&mut self, s: &CdarStatus) -> std::io::Result<()> {
        self.out.write_all(status_xml(s).as_bytes())
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.write_all(TAIL.as_bytes())?;
        Ok(self.out)
    }
}

/// A lifecycle status relayed to the other party of an invoice: a buyer's
/// 204–211 to the supplier, a supplier's 212 to the buyer, the platform's
/// 201–203 to the supplier. One status per document ([`relay_xml`]), or
/// several of one code in one document ([`relays_xml`]: the platform's
/// 201/203 of the invoices of one flow delivered together).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdarRelay {
    /// Document id (MDT-4).
    pub id: String,
    /// Document name (MDT-5).
    pub name: String,
    pub issued_at: DateTime<Utc>,
    /// Who emitted the status (MDT-38/MDT-40): the buyer (`BY`), the
    /// seller (`SE`); for the platform's own, role `WK`.
    pub issuer: CdarParty,
    /// Who the relay is for.
    pub recipient: CdarParty,
    pub status: RelayedStatus,
}

/// The status a [`CdarRelay`] carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayedStatus {
    /// BT-1.
    pub invoice_number: String,
    /// BT-3 (`380`...).
    pub type_code: String,
    /// BT-2.
    pub issue_date: NaiveDate,
    pub seller_id: Option<String>,
    /// MDT-105 (`210`).
    pub code: u16,
    /// Its label (`Refusée`).
    pub label: String,
    /// When its issuer dated it.
    pub at: DateTime<Utc>,
    /// (reason code MDT-113, text).
    pub reasons: Vec<(String, Option<String>)>,
    /// (type code MDT-207, amount, currency, VAT rate), amounts as decimal text.
    pub amounts: Vec<(String, String, Option<String>, Option<String>)>,
}

/// Serialize a relayed status. Phase: 201–203 are the transmission phase
/// (MDT-77 `305`, issued by the platform, role `WK`), the others the
/// processing phase (`23`, whose issuer has a global id, BR-FR-CDV-07).
pub fn relay_xml(m: &CdarRelay) -> String {
    relays_xml(m, std::slice::from_ref(&m.status))
}

/// Serialize several relayed statuses in one document: the head of `m`
/// (its own `status` is not written unless it is among `statuses`), then
/// one `ram:ReferenceReferencedDocument` per status in the order given,
/// `MultipleReferencesIndicator` true when there is more than one (a "CDV
/// MULTI", as the flow's own 200/213 CDAR). The phase is that of the first
/// status: callers group statuses of one code.
pub fn relays_xml(m: &CdarRelay, statuses: &[RelayedStatus]) -> String {
    let code = statuses.first().map_or(m.status.code, |s| s.code);
    let transmission = (201..=203).contains(&code);
    let mut o = String::with_capacity(4096);
    o.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    o.push_str(
        "<rsm:CrossDomainAcknowledgementAndResponse \
         xmlns:rsm=\"urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100\" \
         xmlns:ram=\"urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100\" \
         xmlns:udt=\"urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100\" \
         xmlns:qdt=\"urn:un:unece:uncefact:data:standard:QualifiedDataType:100\">\n",
    );
    o.push_str(
        "  <rsm:ExchangedDocumentContext>\n\
         \x20   <ram:BusinessProcessSpecifiedDocumentContextParameter>\n\
         \x20     <ram:ID>REGULATED</ram:ID>\n\
         \x20   </ram:BusinessProcessSpecifiedDocumentContextParameter>\n\
         \x20   <ram:GuidelineSpecifiedDocumentContextParameter>\n\
         \x20     <ram:ID>urn.cpro.gouv.fr:1p0:CDV:invoice</ram:ID>\n\
         \x20   </ram:GuidelineSpecifiedDocumentContextParameter>\n\
         \x20 </rsm:ExchangedDocumentContext>\n",
    );
    let issued = dt204(&m.issued_at);
    o.push_str("  <rsm:ExchangedDocument>\n");
    o.push_str(&format!("    <ram:ID>{}</ram:ID>\n", esc(&m.id)));
    o.push_str(&format!("    <ram:Name>{}</ram:Name>\n", esc(&m.name)));
    o.push_str(&format!(
        "    <ram:IssueDateTime>\n      <udt:DateTimeString format=\"204\">{issued}</udt:DateTimeString>\n    </ram:IssueDateTime>\n"
    ));
    let wk = CdarParty {
        global_id: None,
        name: None,
        role: "WK".into(),
    };
    party(&mut o, "SenderTradeParty", &wk, "    ");
    if transmission {
        party(&mut o, "IssuerTradeParty", &wk, "    ");
    } else {
        party(&mut o, "IssuerTradeParty", &m.issuer, "    ");
    }
    party(&mut o, "RecipientTradeParty", &m.recipient, "    ");
    o.push_str("  </rsm:ExchangedDocument>\n");
    o.push_str("  <rsm:AcknowledgementDocument>\n");
    o.push_str(&format!(
        "    <ram:MultipleReferencesIndicator>\n      <udt:Indicator>{}</udt:Indicator>\n    </ram:MultipleReferencesIndicator>\n",
        statuses.len() > 1
    ));
    o.push_str(&format!(
        "    <ram:TypeCode>{}</ram:TypeCode>\n",
        if transmission { "305" } else { "23" }
    ));
    o.push_str(&format!(
        "    <ram:IssueDateTime>\n      <udt:DateTimeString format=\"204\">{issued}</udt:DateTimeString>\n    </ram:IssueDateTime>\n"
    ));
    for s in statuses {
        relayed_status(&mut o, s);
    }
    o.push_str(TAIL);
    o
}

/// One relayed status's `ram:ReferenceReferencedDocument`.
fn relayed_status(o: &mut String, s: &RelayedStatus) {
    o.push_str("    <ram:ReferenceReferencedDocument>\n");
    o.push_str(&format!(
        "      <ram:IssuerAssignedID>{}</ram:IssuerAssignedID>\n",
        esc(&s.invoice_number)
    ));
    o.push_str(&format!(
        "      <ram:TypeCode>{}</ram:TypeCode>\n",
        esc(&s.type_code)
    ));
    o.push_str(&format!(
        "      <ram:ReceiptDateTime>\n        <udt:DateTimeString format=\"204\">{}</udt:DateTimeString>\n      </ram:ReceiptDateTime>\n",
        dt204(&s.at)
    ));
    o.push_str(&format!(
        "      <ram:FormattedIssueDateTime>\n        <qdt:DateTimeString format=\"102\">{}</qdt:DateTimeString>\n      </ram:FormattedIssueDateTime>\n",
        s.issue_date.format("%Y%m%d")
    ));
    o.push_str(&format!(
        "      <ram:ProcessConditionCode>{}</ram:ProcessConditionCode>\n",
        s.code
    ));
    o.push_str(&format!(
        "      <ram:ProcessCondition>{}</ram:ProcessCondition>\n",
        esc(&s.label)
    ));
    if let Some(seller) = s.seller_id.as_deref().filter(|x| !x.trim().is_empty()) {
        let global = match siren_of(seller) {
            Some(siren) => format!("<ram:GlobalID schemeID=\"0002\">{siren}</ram:GlobalID>"),
            None => format!("<ram:GlobalID>{}</ram:GlobalID>", esc(seller.trim())),
        };
        o.push_str(&format!(
            "      <ram:IssuerTradeParty>\n        {global}\n        <ram:RoleCode>SE</ram:RoleCode>\n      </ram:IssuerTradeParty>\n"
        ));
    }
    let mut n = 0;
    for (code, text) in &s.reasons {
        n += 1;
        o.push_str("      <ram:SpecifiedDocumentStatus>\n");
        o.push_str(&format!(
            "        <ram:ReasonCode>{}</ram:ReasonCode>\n",
            esc(code)
        ));
        if let Some(t) = text {
            o.push_str(&format!("        <ram:Reason>{}</ram:Reason>\n", esc(t)));
        }
        o.push_str(&format!(
            "        <ram:SequenceNumeric>{n}</ram:SequenceNumeric>\n"
        ));
        o.push_str("      </ram:SpecifiedDocumentStatus>\n");
    }
    if !s.amounts.is_empty() {
        n += 1;
        o.push_str("      <ram:SpecifiedDocumentStatus>\n");
        o.push_str(&format!(
            "        <ram:SequenceNumeric>{n}</ram:SequenceNumeric>\n"
        ));
        for (kind, amount, currency, rate) in &s.amounts {
            o.push_str("        <ram:SpecifiedDocumentCharacteristic>\n");
            o.push_str(&format!(
                "          <ram:TypeCode>{}</ram:TypeCode>\n",
                esc(kind)
            ));
            match currency {
                Some(c) => o.push_str(&format!(
                    "          <ram:ValueAmount currencyID=\"{}\">{}</ram:ValueAmount>\n",
                    esc(c),
                    esc(amount)
                )),
                None => o.push_str(&format!(
                    "          <ram:ValueAmount>{}</ram:ValueAmount>\n",
                    esc(amount)
                )),
            }
            if let Some(r) = rate {
                o.push_str(&format!(
                    "          <ram:ValuePercent>{}</ram:ValuePercent>\n",
                    esc(r)
                ));
            }
            o.push_str("        </ram:SpecifiedDocumentCharacteristic>\n");
        }
        o.push_str("      </ram:SpecifiedDocumentStatus>\n");
    }
    o.push_str("    </ram:ReferenceReferencedDocument>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn msg(statuses: Vec<CdarStatus>) -> CdarMessage {
        CdarMessage {
            id: "quai-7-cdar".into(),
            name: "batch.zip-CDV".into(),
            issued_at: Utc.with_ymd_and_hms(2026, 11, 28, 15, 15, 0).unwrap(),
            recipient: CdarParty {
                global_id: None,
                name: Some("acme".into()),
                role: "SE".into(),
            },
            statuses,
        }
    }

    fn status(number: &str, reasons: Vec<CdarReason>) -> CdarStatus {
        CdarStatus {
            invoice_number: number.into(),
            type_code: "380".into(),
            received_at: Utc.with_ymd_and_hms(2026, 11, 28, 15, 10, 0).unwrap(),
            issue_date: NaiveDate::from_ymd_opt(2026, 11, 2),
            seller_id: Some("FR123".into()),
            reasons,
        }
    }

    #[test]
    fn reason_codes() {
        assert_eq!(reason_code_for("BR-CO-15"), "REJ_SEMAN");
        assert_eq!(reason_code_for("REJ_UNI"), "REJ_UNI");
        assert_eq!(reason_code_for("REJ_ADR"), "REJ_ADR");
        assert_eq!(reason_code_for("SYNTAX"), "REJ_COH");
        assert_eq!(reason_code_for("EDIFACT-UNT"), "REJ_COH");
    }

    #[test]
    fn one_file_many_statuses() {
        let x = to_xml(&msg(vec![
            status("F-1", vec![]),
            status(
                "F-<2>",
                vec![
                    CdarReason {
                        reason_code: "REJ_SEMAN".into(),
                        rule: "BR-CO-15".into(),
                        term: "BT-112".into(),
                        message: "total & VAT".into(),
                    },
                    CdarReason {
                        reason_code: "REJ_UNI".into(),
                        rule: "REJ_UNI".into(),
                        term: "BT-1".into(),
                        message: "duplicate".into(),
                    },
                ],
            ),
        ]));
        assert_eq!(x.matches("<ram:ReferenceReferencedDocument>").count(), 2);
        assert!(x.contains("<udt:Indicator>true</udt:Indicator>"));
        assert!(x.contains("<ram:ProcessConditionCode>200</ram:ProcessConditionCode>"));
        assert!(x.contains("<ram:ProcessConditionCode>213</ram:ProcessConditionCode>"));
        assert!(x.contains("<ram:IssuerAssignedID>F-&lt;2&gt;</ram:IssuerAssignedID>"));
        assert!(x.contains("<ram:Reason>total &amp; VAT</ram:Reason>"));
        assert!(x.contains("<ram:SequenceNumeric>2</ram:SequenceNumeric>"));
        assert!(x.contains("<ram:ReasonCode>REJ_UNI</ram:ReasonCode>"));
        let single = to_xml(&msg(vec![status("F-1", vec![])]));
        assert!(single.contains("<udt:Indicator>false</udt:Indicator>"));
        assert!(!single.contains("SpecifiedDocumentStatus"));
    }

    /// Element paths of the published CDV sample `UC1_F202500003_01-CDV-200_Deposee.xml`
    /// (Tiime-PDP/cdar tests), in document order, with what the BR-FR-CDV
    /// schematron requires and the sample omits added: `ExchangedDocument/ID`
    /// (BR-FR-CDV-03) and the seller recipient's electronic address
    /// (BR-FR-CDV-08); and the invoice issuer's role code SE (MDT-132).
    const SAMPLE_PATHS: &[&str] = &[
        "rsm:CrossDomainAcknowledgementAndResponse",
        "rsm:ExchangedDocumentContext",
        "rsm:ExchangedDocumentContext/ram:BusinessProcessSpecifiedDocumentContextParameter",
        "rsm:ExchangedDocumentContext/ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID",
        "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter",
        "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID",
        "rsm:ExchangedDocument",
        "rsm:ExchangedDocument/ram:ID",
        "rsm:ExchangedDocument/ram:Name",
        "rsm:ExchangedDocument/ram:IssueDateTime",
        "rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString",
        "rsm:ExchangedDocument/ram:SenderTradeParty",
        "rsm:ExchangedDocument/ram:SenderTradeParty/ram:RoleCode",
        "rsm:ExchangedDocument/ram:IssuerTradeParty",
        "rsm:ExchangedDocument/ram:IssuerTradeParty/ram:RoleCode",
        "rsm:ExchangedDocument/ram:RecipientTradeParty",
        "rsm:ExchangedDocument/ram:RecipientTradeParty/ram:Name",
        "rsm:ExchangedDocument/ram:RecipientTradeParty/ram:RoleCode",
        "rsm:ExchangedDocument/ram:RecipientTradeParty/ram:URIUniversalCommunication",
        "rsm:ExchangedDocument/ram:RecipientTradeParty/ram:URIUniversalCommunication/ram:URIID",
        "rsm:AcknowledgementDocument",
        "rsm:AcknowledgementDocument/ram:MultipleReferencesIndicator",
        "rsm:AcknowledgementDocument/ram:MultipleReferencesIndicator/udt:Indicator",
        "rsm:AcknowledgementDocument/ram:TypeCode",
        "rsm:AcknowledgementDocument/ram:IssueDateTime",
        "rsm:AcknowledgementDocument/ram:IssueDateTime/udt:DateTimeString",
        "rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument",
        "rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument/ram:IssuerAssignedID",
        "rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument/ram:StatusCode",
        "rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument/ram:TypeCode",
        "rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument/ram:ReceiptDateTime",
        "rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument/ram:ReceiptDateTime/udt:DateTimeString",
        "rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument/ram:FormattedIssueDateTime",
        "rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument/ram:FormattedIssueDateTime/qdt:DateTimeString",
        "rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument/ram:ProcessConditionCode",
        "rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument/ram:ProcessCondition",
        "rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument/ram:IssuerTradeParty",
        "rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument/ram:IssuerTradeParty/ram:GlobalID",
        "rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument/ram:IssuerTradeParty/ram:RoleCode",
    ];

    fn paths(xml: &str) -> Vec<String> {
        let mut r = quick_xml::Reader::from_str(xml);
        let mut stack: Vec<String> = Vec::new();
        let mut out = Vec::new();
        loop {
            match r.read_event().unwrap() {
                quick_xml::events::Event::Start(e) => {
                    let n = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                    stack.push(n);
                    out.push(stack[1.min(stack.len())..].join("/"));
                }
                quick_xml::events::Event::End(_) => {
                    stack.pop();
                }
                quick_xml::events::Event::Eof => break,
                _ => {}
            }
        }
        // The root's own path is its name.
        out[0] = "rsm:CrossDomainAcknowledgementAndResponse".into();
        out
    }

    #[test]
    fn same_structure_as_the_published_sample() {
        let x = to_xml(&msg(vec![status("F202500003", vec![])]));
        assert_eq!(paths(&x), SAMPLE_PATHS);
        assert!(x.contains("<ram:ProcessCondition>Déposée</ram:ProcessCondition>"));
        assert!(
            x.contains("<udt:DateTimeString format=\"204\">20261128151000</udt:DateTimeString>")
        );
        assert!(x.contains("<qdt:DateTimeString format=\"102\">20261102</qdt:DateTimeString>"));
        // Without a SIREN, the partner id is the recipient's address.
        assert!(x.contains("<ram:URIID>acme</ram:URIID>"), "{x}");
        // "FR123" is no French VAT number: kept as it is, without a scheme.
        assert!(x.contains("<ram:GlobalID>FR123</ram:GlobalID>"), "{x}");
    }

    #[test]
    fn sirens_are_recognised_only_with_valid_check_digits() {
        assert_eq!(siren_of("FR44732829320").as_deref(), Some("732829320"));
        assert_eq!(siren_of("fr 44 732 829 320").as_deref(), Some("732829320"));
        // Wrong VAT key, wrong Luhn digit.
        assert_eq!(siren_of("FR45732829320"), None);
        assert_eq!(siren_of("FR32123456789"), None);
        assert_eq!(siren_of("732829320").as_deref(), Some("732829320"));
        assert_eq!(siren_of("73282932000074").as_deref(), Some("732829320"));
        assert_eq!(siren_of("73282932000075"), None);
        assert_eq!(siren_of("35600000000048").as_deref(), Some("356000000"));
        // Foreign VAT numbers, names, hostile input.
        assert_eq!(siren_of("DE123456789"), None);
        assert_eq!(siren_of("ACME SARL"), None);
        assert_eq!(siren_of("FRé€732829320"), None);
        assert_eq!(siren_of(""), None);
    }

    #[test]
    fn siren_ids_and_missing_dates() {
        let mut m = msg(vec![CdarStatus {
            issue_date: None,
            seller_id: Some("FR44732829320".into()),
            ..status("F-9", vec![])
        }]);
        m.recipient.global_id = Some(("0002".into(), "552100554".into()));
        let x = to_xml(&m);
        assert!(x.contains(
            "<ram:GlobalID schemeID=\"0002\">552100554</ram:GlobalID>\n      <ram:Name>acme</ram:Name>"
        ), "{x}");
        assert!(
            x.contains("<ram:URIID schemeID=\"0225\">552100554</ram:URIID>"),
            "{x}"
        );
        assert!(
            x.contains("<ram:GlobalID schemeID=\"0002\">732829320</ram:GlobalID>"),
            "{x}"
        );
        // No issue date: the date of receipt stands in (MDG-35 is mandatory).
        assert!(x.contains("<qdt:DateTimeString format=\"102\">20261128</qdt:DateTimeString>"));
        // A platform recipient has no address.
        m.recipient.role = "WK".into();
        assert!(!to_xml(&m).contains("URIUniversalCommunication"));
    }

    #[test]
    fn the_writer_writes_the_same_bytes_as_to_xml() {
        let reject = CdarReason {
            reason_code: "REJ_COH".into(),
            rule: "SYNTAX".into(),
            term: String::new(),
            message: "not XML".into(),
        };
        for statuses in [
            vec![status("F-1", vec![])],
            vec![status("F-1", vec![]), status("F-2", vec![reject.clone()])],
        ] {
            let m = msg(statuses.clone());
            let mut w =
                CdarWriter::start(Vec::new(), &msg(Vec::new()), statuses.len() as u64).unwrap();
            for s in &statuses {
                w.status(s).unwrap();
            }
            let bytes = w.finish().unwrap();
            assert_eq!(String::from_utf8(bytes).unwrap(), to_xml(&m));
        }
    }
}
