//! `GET /v1/flows/{flowId}` and `POST /v1/flows/search`: a partner's own
//! flows, as the specification's `Flow`, or a flow's original file.
//!
//! Paging: results by flow id, the partner's deposited flows (`Out`)
//! first, then its flows `In` (files quai delivered to it,
//! `crate::outbound_api`, ids `in-<n>`); `nextCursor` (opaque: base64url
//! of `quai:<last id>`) is present only when more results may follow. The
//! search's `where` needs at least one filter, as the specification says.
//! A flow `In` has no tracking id, processing rule `Undefined` and
//! acknowledgement `Ok`: the filters on those keep it or not accordingly.
//! Its first download (`docType=Original`) is recorded (`updatedAt`).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use chrono::{DateTime, Utc};
use quai_spool::api::{ApiFlowSearch, InboxSearch};
use serde_json::{json, Map, Value};

use super::{FlowError, Who};
use crate::app::App;
use crate::flow_json;

/// `docType` of a query string (read by hand, so every refusal is the
/// specification's JSON error): at most once, a plain word.
fn doc_type(query: Option<&str>) -> Result<String, FlowError> {
    let mut found = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == "docType" {
            if found.is_some() {
                return Err(FlowError::bad_request("docType is given more than once"));
            }
            found = Some(v.to_owned());
        }
    }
    let doc = found.unwrap_or_else(|| "Metadata".into());
    if !["Metadata", "Original", "Converted", "ReadableView"].contains(&doc.as_str()) {
        return Err(FlowError::bad_request(
            "docType must be Metadata, Original, Converted or ReadableView",
        ));
    }
    Ok(doc)
}

/// The flow id of a path: quai's ids are numbers; anything else names no
/// flow (404, as another partner's id does).
fn flow_id(raw: &str) -> Result<i64, FlowError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| FlowError::not_found("flow"))
}

pub async fn get_flow(
    State(app): State<Arc<App>>,
    who: Who,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, FlowError> {
    let partner = &who.0 .0;
    let doc = doc_type(query.as_deref())?;
    let doc = doc.as_str();
    if let Some(n) = raw.strip_prefix("in-") {
        return get_inbox_flow(&app, partner, flow_id(n)?, doc).await;
    }
    let id = flow_id(&raw)?;
    let flow = app
        .spool
        .api_flow(partner, id)
        .await?
        .ok_or_else(|| FlowError::not_found("flow"))?;
    match doc {
        "Metadata" => {
            let lang = app.config().language_of(partner);
            Ok(Json(flow_json::flow(&app.spool, &flow, lang).await?).into_response())
        }
        "Original" => {
            let path =
                quai_connectors::landing::stored_path(&app.config().store, &flow.flow.sha256);
            let file = std::fs::File::open(&path).map_err(|_| {
                FlowError::new(
                    StatusCode::NOT_FOUND,
                    "MISSING_RESOURCE",
                    "the flow's file is no longer stored (retention)",
                )
            })?;
            let name = flow
                .meta
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_else(|| flow.flow.original_name.clone());
            Ok(file_response(file, flow.flow.size, &name))
        }
        _ => Err(FlowError::new(
            StatusCode::NOT_FOUND,
            "MISSING_RESOURCE",
            format!("quai keeps no {doc} document of a deposited flow"),
        )),
    }
}

/// `GET /v1/flows/in-<n>`: a flow `In` of the partner's.
async fn get_inbox_flow(
    app: &App,
    partner: &str,
    id: i64,
    doc: &str,
) -> Result<Response, FlowError> {
    let flow = app
        .spool
        .inbox_flow(partner, id)
        .await?
        .ok_or_else(|| FlowError::not_found("flow"))?;
    match doc {
        "Metadata" => Ok(Json(flow_json::inbox_flow(&flow)).into_response()),
        "Original" => {
            let dir = crate::outbound_api::inbox_dir(&app.config());
            let path = quai_connectors::landing::stored_path(&dir, &flow.sha256);
            let file = std::fs::File::open(&path).map_err(|_| {
                FlowError::new(
                    StatusCode::NOT_FOUND,
                    "MISSING_RESOURCE",
                    "the flow's file is no longer stored",
                )
            })?;
            if app.spool.inbox_flow_fetched(flow.id).await? {
                tracing::info!(partner, flow_id = %flow_json::inbox_flow_id(flow.id),
                    file = %flow.name, "flow In downloaded for the first time");
            }
            Ok(file_response(file, flow.size, &flow.name))
        }
        _ => Err(FlowError::new(
            StatusCode::NOT_FOUND,
            "MISSING_RESOURCE",
            format!("quai keeps no {doc} document of a flow In"),
        )),
    }
}

/// A stored file as the answer (streamed, with its name).
fn file_response(file: std::fs::File, size: i64, name: &str) -> Response {
    let mut resp =
        axum::body::Body::new(crate::http::api::ReaderBody::spawn(Box::new(file))).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(size.max(0) as u64),
    );
    if let Ok(v) =
        HeaderValue::from_str(&format!("attachment;filename=\"{}\"", safe_file_name(name)))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// A file name for a header: printable ASCII without quotes or backslashes.
fn safe_file_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "flow".into()
    } else {
        s
    }
}

/// Where a page ended: after a deposited flow, or after a flow `In`
/// (every deposited flow listed before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cursor {
    Out(i64),
    In(i64),
}

fn encode_cursor(c: Cursor) -> String {
    let raw = match c {
        Cursor::Out(id) => format!("quai:{id}"),
        Cursor::In(id) => format!("quai:in-{id}"),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(c: &str) -> Option<Cursor> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c.trim_end_matches('='))
        .ok()?;
    let rest = std::str::from_utf8(&raw).ok()?.strip_prefix("quai:")?;
    match rest.strip_prefix("in-") {
        Some(n) => n.parse().ok().map(Cursor::In),
        None => rest.parse().ok().map(Cursor::Out),
    }
}

fn date(v: &Value, k: &str) -> Result<Option<DateTime<Utc>>, FlowError> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|d| Some(d.with_timezone(&Utc)))
            .map_err(|_| {
                FlowError::bad_request(format!("where.{k} must be an RFC 3339 date-time"))
            }),
        Some(_) => Err(FlowError::bad_request(format!(
            "where.{k} must be a string"
        ))),
    }
}

fn list(v: &Value, k: &str, allowed: &[&str]) -> Result<Option<Vec<String>>, FlowError> {
    match v.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i.as_str() {
                Some(s) if allowed.contains(&s) => Ok(s.to_owned()),
                _ => Err(FlowError::bad_request(format!(
                    "where.{k} items must be among {}",
                    allowed.join(", ")
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(FlowError::bad_request(format!(
            "where.{k} must be an array"
        ))),
    }
}

pub async fn search(
    State(app): State<Arc<App>>,
    who: Who,
    body: axum::body::Bytes,
) -> Result<Response, FlowError> {
    let partner = &who.0 .0;
    if body.len() > 64 * 1024 {
        return Err(FlowError::bad_request("the search is larger than 64 KiB"));
    }
    let params: Value = serde_json::from_slice(&body)
        .map_err(|e| FlowError::bad_request(format!("the body is not JSON: {e}")))?;
    let limit = match params.get("limit") {
        None | Some(Value::Null) => 25,
        Some(v) => v
            .as_i64()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| FlowError::bad_request("limit must be an integer from 1 to 100"))?,
    };
    let after = match params.get("cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) => Some(
            decode_cursor(c)
                .ok_or_else(|| FlowError::bad_request("the cursor is not one quai gave"))?,
        ),
        Some(_) => return Err(FlowError::bad_request("cursor must be a string")),
    };
    let filters = params
        .get("where")
        .filter(|w| w.is_object())
        .ok_or_else(|| {
            FlowError::new(
                StatusCode::BAD_REQUEST,
                "MISSING_REQUIRED_FIELD",
                "where (an object of filters) is required",
            )
        })?;
    let known = [
        "updatedAfter",
        "updatedBefore",
        "processingRule",
        "flowType",
        "flowDirection",
        "trackingId",
        "ackStatus",
    ];
    let given: Vec<&String> = filters
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, _)| k)
                .collect()
        })
        .unwrap_or_default();
    if !given.iter().any(|k| known.contains(&k.as_str())) {
        return Err(FlowError::bad_request(
            "where needs at least one filter: updatedAfter, updatedBefore, processingRule, flowType, flowDirection, trackingId or ackStatus",
        ));
    }
    let (out_after, in_after, skip_out) = match after {
        None => (None, None, false),
        Some(Cursor::Out(id)) => (Some(id), None, false),
        Some(Cursor::In(id)) => (None, Some(id), true),
    };
    let mut search = ApiFlowSearch {
        updated_after: date(filters, "updatedAfter")?,
        updated_before: date(filters, "updatedBefore")?,
        processing_rules: list(filters, "processingRule", flow_json::PROCESSING_RULES)?,
        after: out_after,
        limit: limit + 1,
        ..ApiFlowSearch::default()
    };
    let mut inbox = InboxSearch {
        updated_after: search.updated_after,
        updated_before: search.updated_before,
        after: in_after,
        ..InboxSearch::default()
    };
    // What a flow `In` is: no tracking id, rule Undefined, status Ok.
    let mut in_empty = search
        .processing_rules
        .as_ref()
        .is_some_and(|r| !r.iter().any(|r| r == "Undefined"));
    let mut empty = skip_out;
    match filters.get("trackingId") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) => {
            search.tracking_id = Some(t.clone());
            in_empty = true;
        }
        Some(_) => return Err(FlowError::bad_request("where.trackingId must be a string")),
    }
    match filters.get("ackStatus") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if flow_json::ACK_STATUSES.contains(&s.as_str()) => {
            search.states = Some(flow_json::states_of(s));
            in_empty |= s != "Ok";
        }
        Some(_) => {
            return Err(FlowError::bad_request(
                "where.ackStatus must be Pending, Ok or Error",
            ))
        }
    }
    if let Some(types) = list(filters, "flowType", flow_json::FLOW_TYPES)? {
        let invoices = types.iter().any(|t| t == "CustomerInvoice");
        let statuses = types.iter().any(|t| t == "SupplierInvoiceLC");
        match (invoices, statuses) {
            (true, true) => {}
            (true, false) => search.cdar = Some(false),
            (false, true) => search.cdar = Some(true),
            (false, false) => empty = true,
        }
        inbox.flow_types = Some(types);
    }
    if let Some(dirs) = list(filters, "flowDirection", flow_json::FLOW_DIRECTIONS)? {
        if !dirs.iter().any(|d| d == "Out") {
            empty = true;
        }
        if !dirs.iter().any(|d| d == "In") {
            in_empty = true;
        }
    }
    let mut found = if empty {
        Vec::new()
    } else {
        app.spool.search_api_flows(partner, &search).await?
    };
    let mut next = None;
    if found.len() as i64 > limit {
        found.truncate(limit as usize);
        next = found.last().map(|f| Cursor::Out(f.flow.id));
    }
    let mut results = Vec::with_capacity(found.len());
    let lang = app.config().language_of(partner);
    for f in &found {
        results.push(flow_json::flow(&app.spool, f, lang).await?);
    }
    if next.is_none() && !in_empty {
        // The page's room left, and one more to know whether more follow.
        let room = limit - found.len() as i64;
        inbox.limit = room + 1;
        let mut delivered = app.spool.search_inbox_flows(partner, &inbox).await?;
        if delivered.len() as i64 > room {
            delivered.truncate(room as usize);
            next = Some(Cursor::In(
                delivered.last().map(|f| f.id).or(in_after).unwrap_or(0),
            ));
        }
        results.extend(delivered.iter().map(flow_json::inbox_flow));
    }
    let mut out = Map::new();
    out.insert("limit".into(), json!(limit));
    if let Some(c) = next {
        out.insert("nextCursor".into(), json!(encode_cursor(c)));
    }
    out.insert("filters".into(), filters.clone());
    out.insert("results".into(), Value::Array(results));
    Ok(Json(Value::Object(out)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_strangers() {
        assert_eq!(
            decode_cursor(&encode_cursor(Cursor::Out(42))),
            Some(Cursor::Out(42))
        );
        assert_eq!(
            decode_cursor(&encode_cursor(Cursor::In(7))),
            Some(Cursor::In(7))
        );
        assert_eq!(decode_cursor("bm9wZQ"), None);
        assert_eq!(decode_cursor("***"), None);
        assert_eq!(safe_file_name("a\"b\\c\n.xml"), "a_b_c_.xml");
    }
}
