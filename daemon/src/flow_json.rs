//! The partner API's JSON: a quai flow as the Flow Service's `Flow` and
//! `FullFlowInfo`, its acknowledgement, and the specification's
//! enumerations (FlowSyntax, FlowProfile, ProcessingRule, FlowType,
//! FlowDirection, FlowAckStatus, ReasonCode).
//!
//! What maps to what (docs/api.md says it for partners):
//! - `flowId` is quai's flow id (as a string); `submittedAt` the
//!   registration time, `updatedAt` the last state change;
//! - `acknowledgement.status`: `Pending` while the flow is `received` or
//!   `processing`, `Ok` once `processed`, `Error` when `failed` (its IRR_*
//!   reason as the detail, mapped to the ReasonCode of the same meaning);
//!   a processed flow's rejected invoices are details too (level `Error`,
//!   the rule as reason code), at most [`MAX_DETAILS`]; each `reasonMessage`
//!   in the partner's `[[partner]] language`, as its reports;
//! - a flow deposited by the partner has `flowDirection` `Out` and
//!   `flowType` `CustomerInvoice`, or `SupplierInvoiceLC` for CDAR
//!   statuses;
//! - a flow `In` (delivered by quai to a partner whose only channel is the
//!   API, [`inbox_flow`]) has the id `in-<n>`, `flowDirection` `In` and
//!   `flowType` `SupplierInvoice` (an invoice routed to it) or
//!   `CustomerInvoiceLC` (a lifecycle status of an invoice it issued);
//!   its acknowledgement is `Ok` (it is complete when it is listed).
//!
//! Used by the HTTP routes and by the webhook posts, which carry a `Flow`.

use quai_spool::api::{ApiFlow, ApiFlowMeta};
use quai_spool::{FlowState, Spool, Verdict};
use serde_json::{json, Map, Value};

use crate::language::Language;
use crate::partner_text;

/// FlowSyntax.
pub const FLOW_SYNTAXES: &[&str] = &["CII", "UBL", "Factur-X", "CDAR", "FRR"];
/// FlowProfile.
pub const FLOW_PROFILES: &[&str] = &["Basic", "CIUS", "Extended-CTC-FR", "Undefined"];
/// ProcessingRule.
pub const PROCESSING_RULES: &[&str] = &[
    "B2B",
    "B2BInt",
    "B2C",
    "B2G",
    "B2GInt",
    "OutOfScope",
    "B2GOutOfScope",
    "ArchiveOnly",
    "NotApplicable",
    "Undefined",
];
/// FlowType.
pub const FLOW_TYPES: &[&str] = &[
    "CustomerInvoice",
    "SupplierInvoice",
    "CustomerInvoiceLC",
    "SupplierInvoiceLC",
    "StateCustomerInvoiceLC",
    "StateSupplierInvoiceLC",
    "AggregatedCustomerTransactionReport",
    "UnitaryCustomerTransactionReport",
    "AggregatedCustomerPaymentReport",
    "UnitaryCustomerPaymentReport",
    "UnitarySupplierTransactionReport",
    "MultiFlowReport",
    "StateCustomerInvoice",
    "StateSupplierInvoice",
    "StateTransactionReport",
    "StateTransactionReportLC",
    "StatePaymentReport",
    "StatePaymentReportLC",
    "Undefined",
];
/// FlowDirection.
pub const FLOW_DIRECTIONS: &[&str] = &["In", "Out"];
/// FlowAckStatus.
pub const ACK_STATUSES: &[&str] = &["Pending", "Ok", "Error"];

/// Details listed in one acknowledgement, at most.
pub const MAX_DETAILS: usize = 200;

/// The FlowAckStatus of a flow state.
pub fn ack_status(state: FlowState) -> &'static str {
    match state {
        FlowState::Received | FlowState::Processing => "Pending",
        FlowState::Processed => "Ok",
        FlowState::Failed | FlowState::Duplicate => "Error",
    }
}

/// The flow states of a FlowAckStatus.
pub fn states_of(status: &str) -> Vec<FlowState> {
    match status {
        "Pending" => vec![FlowState::Received, FlowState::Processing],
        "Ok" => vec![FlowState::Processed],
        "Error" => vec![FlowState::Failed],
        _ => Vec::new(),
    }
}

/// The FlowType of a flow of this syntax.
pub fn flow_type(syntax: &str) -> &'static str {
    if syntax == "CDAR" {
        "SupplierInvoiceLC"
    } else {
        "CustomerInvoice"
    }
}

/// The ReasonCode of an IRR_* code of quai (the code itself when the
/// specification has no value of that meaning; ReasonCode takes any string).
pub fn reason_code(code: &str) -> &str {
    match code {
        "IRR_VIDE_F" | "IRR_VID_F" => "EmptyFlow",
        "IRR_TYPE_F" => "FlowTypeError",
        "IRR_SYNTAX" => "InvalidSchema",
        "IRR_TAILLE_F" => "FileSizeExceeded",
        "IRR_ANTIVIRUS" => "VirusFound",
        "IRR_VID_PJ" => "EmptyAttachement",
        "IRR_EXT_DOC" => "AttachmentTypeError",
        other => other,
    }
}

/// The syntax of a flow without deposit metadata (one that came another
/// way with the same bytes): from its first document's detected format.
fn detected_syntax(format: Option<&str>) -> &'static str {
    match format {
        Some("ubl") => "UBL",
        Some("pdf") => "Factur-X",
        Some(s) if s.contains("cdar") => "CDAR",
        _ => "CII",
    }
}

/// `Flow` of the specification (every required property present).
pub async fn flow(
    spool: &Spool,
    f: &ApiFlow,
    lang: Language,
) -> Result<Value, quai_spool::SpoolError> {
    let mut v = full_info(spool, f).await?;
    let row = &f.flow;
    let syntax = v["flowSyntax"].as_str().unwrap_or("CII").to_owned();
    let o = v.as_object_mut().expect("an object");
    o.insert("updatedAt".into(), json!(row.updated_at.to_rfc3339()));
    o.insert("flowType".into(), json!(flow_type(&syntax)));
    o.insert("flowDirection".into(), json!("Out"));
    let given = f.meta.as_ref().and_then(|m| m.processing_rule.as_ref());
    o.insert(
        "processingRuleSource".into(),
        json!(if given.is_some() { "Input" } else { "Computed" }),
    );
    o.insert(
        "acknowledgement".into(),
        acknowledgement(spool, f, lang).await?,
    );
    // `Flow` has no sha256 (FullFlowInfo has).
    o.remove("sha256");
    Ok(v)
}

/// The id a flow `In` is known by (quai's deposited flows have numbers).
pub fn inbox_flow_id(id: i64) -> String {
    format!("in-{id}")
}

/// The FlowType of a flow `In` of this syntax.
pub fn inbox_flow_type(syntax: &str) -> &'static str {
    if syntax == "CDAR" {
        "CustomerInvoiceLC"
    } else {
        "SupplierInvoice"
    }
}

/// `Flow` of the specification for a flow `In`.
pub fn inbox_flow(f: &quai_spool::api::InboxFlow) -> Value {
    let mut o = Map::new();
    o.insert("flowId".into(), json!(inbox_flow_id(f.id)));
    o.insert("submittedAt".into(), json!(f.created_at.to_rfc3339()));
    o.insert(
        "updatedAt".into(),
        json!(f.fetched_at.unwrap_or(f.created_at).to_rfc3339()),
    );
    o.insert("name".into(), json!(truncate(&f.name, 255)));
    o.insert("flowSyntax".into(), json!(f.flow_syntax));
    o.insert("flowProfile".into(), json!("Undefined"));
    o.insert("processingRule".into(), json!("Undefined"));
    o.insert("processingRuleSource".into(), json!("Computed"));
    o.insert("flowType".into(), json!(f.flow_type));
    o.insert("flowDirection".into(), json!("In"));
    o.insert("acknowledgement".into(), json!({ "status": "Ok" }));
    Value::Object(o)
}

/// `FullFlowInfo` of the specification: the answer to a deposit.
pub async fn full_info(spool: &Spool, f: &ApiFlow) -> Result<Value, quai_spool::SpoolError> {
    let row = &f.flow;
    if let Some(m) = &f.meta {
        return Ok(deposit_info(row.id, row.received_at, m, &row.sha256));
    }
    let mut o = Map::new();
    o.insert("flowId".into(), json!(row.id.to_string()));
    o.insert("submittedAt".into(), json!(row.received_at.to_rfc3339()));
    let first = spool.invoices_of_flow_page(row.id, None, 1).await?;
    let syntax = detected_syntax(first.first().and_then(|i| i.syntax.as_deref()));
    o.insert("name".into(), json!(truncate(&row.original_name, 255)));
    o.insert("flowSyntax".into(), json!(syntax));
    o.insert("flowProfile".into(), json!("Undefined"));
    o.insert("processingRule".into(), json!("Undefined"));
    o.insert("sha256".into(), json!(row.sha256));
    Ok(Value::Object(o))
}

/// `FullFlowInfo` of a flow deposited through the API, from what the
/// spool stored of its deposit (`meta` as [`ApiFlowMeta::as_stored`]
/// gives it): a new deposit is answered from its registration, without
/// reading the flow back.
///
/// [`ApiFlowMeta::as_stored`]: quai_spool::api::ApiFlowMeta::as_stored
pub fn deposit_info(
    id: quai_spool::FlowId,
    submitted_at: chrono::DateTime<chrono::Utc>,
    m: &ApiFlowMeta,
    sha256: &str,
) -> Value {
    let mut o = Map::new();
    o.insert("flowId".into(), json!(id.to_string()));
    o.insert("submittedAt".into(), json!(submitted_at.to_rfc3339()));
    if let Some(t) = &m.tracking_id {
        o.insert("trackingId".into(), json!(t));
    }
    o.insert("name".into(), json!(m.name));
    o.insert("flowSyntax".into(), json!(m.flow_syntax));
    o.insert(
        "flowProfile".into(),
        json!(m.flow_profile.as_deref().unwrap_or("Undefined")),
    );
    o.insert(
        "processingRule".into(),
        json!(m.processing_rule.as_deref().unwrap_or("Undefined")),
    );
    o.insert("sha256".into(), json!(sha256));
    Value::Object(o)
}

/// `Acknowledgement`: the status and, when there are any, the details.
async fn acknowledgement(
    spool: &Spool,
    f: &ApiFlow,
    lang: Language,
) -> Result<Value, quai_spool::SpoolError> {
    let row = &f.flow;
    let status = ack_status(row.state);
    let mut details = Vec::new();
    let item = f
        .meta
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_else(|| row.original_name.clone());
    match row.state {
        FlowState::Failed => {
            let code = row.failure_code.as_deref().unwrap_or("OtherTechnicalError");
            details.push(json!({
                "level": "Error",
                "item": item,
                "reasonCode": reason_code(code),
                "reasonMessage": match row.failure_message.as_deref() {
                    Some(m) => partner_text::refusal_message(lang, code, m).into_owned(),
                    None => code.to_owned(),
                },
            }));
        }
        FlowState::Processed if row.invoices_rejected > 0 => {
            let mut after = None;
            'pages: loop {
                let page = spool.invoices_of_flow_page(row.id, after, 500).await?;
                let Some(last) = page.last() else { break };
                after = Some(last.doc_index);
                for inv in page.iter().filter(|i| i.verdict == Verdict::Rejected) {
                    let what = inv
                        .number
                        .clone()
                        .map(|n| format!("invoice {n} ({})", inv.entry))
                        .unwrap_or_else(|| format!("document {} ({})", inv.doc_index, inv.entry));
                    for r in inv.reasons.iter().filter(|r| r.severity == "fatal") {
                        if details.len() >= MAX_DETAILS {
                            break 'pages;
                        }
                        details.push(json!({
                            "level": "Error",
                            "item": what,
                            "reasonCode": r.rule,
                            "reasonMessage": partner_text::reason_message(lang, &r.rule, &r.message),
                        }));
                    }
                }
            }
        }
        _ => {}
    }
    let mut ack = json!({ "status": status });
    if !details.is_empty() {
        ack["details"] = Value::Array(details);
    }
    Ok(ack)
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_reasons() {
        assert_eq!(ack_status(FlowState::Processing), "Pending");
        assert_eq!(ack_status(FlowState::Processed), "Ok");
        assert_eq!(ack_status(FlowState::Failed), "Error");
        assert_eq!(reason_code("IRR_SYNTAX"), "InvalidSchema");
        assert_eq!(reason_code("IRR_TAILLE_PJ"), "IRR_TAILLE_PJ");
        assert_eq!(flow_type("CDAR"), "SupplierInvoiceLC");
        assert!(ACK_STATUSES.iter().all(|s| !states_of(s).is_empty()));
    }
}
