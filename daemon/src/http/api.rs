//! JSON handlers, health and metrics.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use quai_spool::{FlowFilter, FlowState, Spool, SpoolError};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::metrics::{self, SpoolGauges};

/// Spool queries of a probe or a scrape give up after this long.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Default and maximum page size of `/api/flows`.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

/// An error answered as `{"error": "..."}` with a status code.
pub struct ApiError(pub StatusCode, pub String);

/// The body of every error of the JSON API.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in words.
    pub error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

impl From<SpoolError> for ApiError {
    fn from(e: SpoolError) -> Self {
        match e {
            SpoolError::FlowNotFound(_) => ApiError(StatusCode::NOT_FOUND, e.to_string()),
            other => {
                tracing::warn!(error = %other, "spool query failed for an HTTP request");
                ApiError(StatusCode::SERVICE_UNAVAILABLE, other.to_string())
            }
        }
    }
}

fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

/// axum's `Query`, with a query string it cannot read (`limit=abc`, a
/// number out of range) answered `400` as the API's JSON error rather
/// than axum's plain text.
pub struct ApiQuery<T>(pub T);

#[axum::async_trait]
impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match <Query<T> as axum::extract::FromRequestParts<S>>::from_request_parts(parts, state)
            .await
        {
            Ok(Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(bad_request(e.body_text())),
        }
    }
}

pub async fn healthz() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store")], "ok\n")
}

/// The cheapest spool query that proves a connection works: one flow row.
async fn spool_ping(spool: &Spool) -> Result<(), String> {
    let filter = FlowFilter {
        limit: Some(1),
        ..FlowFilter::default()
    };
    let q = spool.list_flows(&filter);
    match tokio::time::timeout(PROBE_TIMEOUT, q).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("spool: {e}")),
        Err(_) => Err(format!(
            "spool: no answer within {} s",
            PROBE_TIMEOUT.as_secs()
        )),
    }
}

pub async fn readyz(State(d): State<Arc<App>>) -> Response {
    match spool_ping(&d.spool).await {
        Ok(()) => (
            StatusCode::OK,
            Json(serde_json::json!({"ready": true, "spool": "ok"})),
        )
            .into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"ready": false, "reason": reason})),
        )
            .into_response(),
    }
}

/// Spool-derived gauges of a scrape.
pub async fn spool_gauges(spool: &Spool) -> Result<SpoolGauges, SpoolError> {
    let status = spool.status().await?;
    let mut g = SpoolGauges::default();
    for p in &status.partners {
        for (state, n) in &p.counts.flows {
            g.flows.push((p.partner.clone(), state.clone(), *n));
        }
        for (verdict, n) in &p.counts.invoices {
            g.invoices.push((p.partner.clone(), verdict.clone(), *n));
        }
    }
    g.backlog_received = status.totals.flows.get("received").copied().unwrap_or(0);
    g.backlog_processing = status.totals.flows.get("processing").copied().unwrap_or(0);
    let mut oldest = None;
    for state in [FlowState::Received, FlowState::Processing] {
        let n = if state == FlowState::Received {
            g.backlog_received
        } else {
            g.backlog_processing
        };
        if n == 0 {
            continue;
        }
        // Newest first, so the oldest is the last of the listing; bounded.
        let rows = spool
            .list_flows(&FlowFilter {
                state: Some(state),
                limit: Some(super::overview::SCAN_LIMIT),
                ..FlowFilter::default()
            })
            .await?;
        if let Some(min) = rows.iter().map(|r| r.received_at).min() {
            oldest = Some(oldest.map_or(min, |o: chrono::DateTime<chrono::Utc>| o.min(min)));
        }
    }
    g.oldest_unfinished_seconds = oldest
        .map(|o| (chrono::Utc::now() - o).num_milliseconds().max(0) as f64 / 1000.0)
        .unwrap_or(0.0);
    let now = chrono::Utc::now();
    g.undelivered = spool
        .undelivered_summary()
        .await?
        .into_iter()
        .map(|u| (u.partner.clone(), u.count, u.oldest_age(now).as_secs_f64()))
        .collect();
    Ok(g)
}

pub async fn metrics(State(d): State<Arc<App>>) -> Response {
    let gauges = match tokio::time::timeout(PROBE_TIMEOUT, spool_gauges(&d.spool)).await {
        Ok(Ok(g)) => Some(g),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: spool query failed");
            None
        }
        Err(_) => {
            tracing::warn!("metrics: spool query timed out");
            None
        }
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(gauges.as_ref()),
    )
        .into_response()
}

#[utoipa::path(get, path = "/api/status", tag = "ops",
    description = "Flows by state and invoices by verdict, in total and per partner: the JSON of `quai status --json`.",
    responses(
        (status = 200, description = "The counts", body = quai_spool::StatusSummary),
        (status = 503, description = "The spool cannot be read", body = ErrorBody),
    ))]
pub async fn status(State(d): State<Arc<App>>) -> Result<Response, ApiError> {
    Ok(Json(d.spool.status().await?).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FlowsQuery {
    /// Only this partner's flows.
    partner: Option<String>,
    /// `received`, `processing`, `processed`, `failed` or `duplicate`.
    state: Option<String>,
    /// Received at or after: a date `2026-11-28`, an RFC 3339 time, or a
    /// duration back from now (`90s`, `30m`, `2h`, `3d`).
    since: Option<String>,
    /// 1 to 1000, default 100.
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/flows", tag = "ops",
    description = "Flows, newest first, like `quai flows --json`.",
    params(FlowsQuery),
    responses(
        (status = 200, description = "The flows", body = Vec<quai_spool::FlowRow>),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 503, description = "The spool cannot be read", body = ErrorBody),
    ))]
pub async fn flows(
    State(d): State<Arc<App>>,
    ApiQuery(q): ApiQuery<FlowsQuery>,
) -> Result<Response, ApiError> {
    let state = q
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            crate::query::parse_state(s).map_err(|_| {
                bad_request("state must be received, processing, processed, failed or duplicate")
            })
        })
        .transpose()?;
    let since = match q.since.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => {
            Some(crate::query::parse_since(s).map_err(|e| bad_request(format!("since: {e}")))?)
        }
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad_request(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let rows = d
        .spool
        .list_flows(&FlowFilter {
            partner: q.partner.filter(|p| !p.is_empty()),
            state,
            since,
            limit: Some(limit),
        })
        .await?;
    Ok(Json(rows).into_response())
}

/// An acknowledgement as `quai flow ID --json` prints it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AckJson {
    pub id: i64,
    /// `integration_report`, `cdar`, `contrl`, `mdn`...
    #[schema(value_type = String)]
    pub kind: &'static str,
    pub destination: String,
    pub file_name: String,
    pub generated_at: String,
    pub delivered_at: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// One flow with its history, invoices and acknowledgements: `quai flow ID
/// --json` and `GET /api/flows/{id}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FlowDetail {
    pub acknowledgements: Vec<AckJson>,
    pub flow: quai_spool::FlowRow,
    pub history: Vec<quai_spool::EventRow>,
    pub invoices: Vec<quai_spool::InvoiceRow>,
}

/// `{"flow": ..., "invoices": [...], "acknowledgements": [...]}`, the shape
/// of `quai flow ID --json`.
pub async fn flow_detail_json(spool: &Spool, id: i64) -> Result<serde_json::Value, SpoolError> {
    let detail = flow_detail(spool, id).await?;
    Ok(serde_json::to_value(detail).expect("a flow detail is JSON"))
}

async fn flow_detail(spool: &Spool, id: i64) -> Result<FlowDetail, SpoolError> {
    let flow = spool.flow(id).await?;
    let invoices = spool.invoices_of_flow(id).await?;
    let acks: Vec<AckJson> = spool
        .acks_of_flow(id)
        .await?
        .iter()
        .map(|a| AckJson {
            id: a.id,
            kind: a.kind.as_str(),
            destination: a.destination.clone(),
            file_name: a.file_name.clone(),
            generated_at: a.generated_at.to_rfc3339(),
            delivered_at: a.delivered_at.map(|t| t.to_rfc3339()),
            attempts: a.attempts,
            last_error: a.last_error.clone(),
        })
        .collect();
    let history = spool.flow_events(id).await?;
    Ok(FlowDetail {
        acknowledgements: acks,
        flow,
        history,
        invoices,
    })
}

/// What one invoice of `/api/flows/{id}` is reckoned to weigh in memory
/// (row, reasons, JSON), to refuse a detail too large before building it.
const INVOICE_DETAIL_BYTES: u64 = 2048;

#[utoipa::path(get, path = "/api/flows/{id}", tag = "ops",
    description = "One flow with its history, invoices and acknowledgements, like `quai flow ID --json`.",
    params(("id" = i64, Path, description = "The flow's id")),
    responses(
        (status = 200, description = "The flow", body = FlowDetail),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 404, description = "No such flow", body = ErrorBody),
        (status = 413, description = "Too many invoices for one answer under `[http] max_response_bytes`", body = ErrorBody),
        (status = 503, description = "The spool cannot be read", body = ErrorBody),
    ))]
pub async fn flow(State(d): State<Arc<App>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| bad_request("a flow id is a number"))?;
    // The answer is built whole: refuse a flow whose invoices would make it
    // larger than [http] max_response_bytes.
    let row = d.spool.flow(id).await?;
    let invoices = (row.invoices_accepted + row.invoices_rejected).max(0) as u64;
    let max = d.config().http_limits.max_response_bytes;
    if invoices.saturating_mul(INVOICE_DETAIL_BYTES) > max {
        return Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "flow {id} has {invoices} invoices, too many for one answer under [http] max_response_bytes ({max}); read it with `quai flow {id} --json` on the host"
            ),
        ));
    }
    Ok(Json(flow_detail(&d.spool, id).await?).into_response())
}

/// `GET /api/flows/{id}/invoices/{index}`: the canonical EN 16931 invoice
/// of one document of a flow, as JSON (404 when the document does not exist
/// or could not be read). Streamed as it is decompressed, never built whole;
/// above `[http] max_response_bytes` it is refused (413).
#[utoipa::path(get, path = "/api/flows/{id}/invoices/{index}", tag = "ops",
    description = "The canonical EN 16931 invoice quai mapped from the flow's document at `index` (every BT/BG; amounts as decimal strings), streamed.",
    params(
        ("id" = i64, Path, description = "The flow's id"),
        ("index" = i64, Path, description = "The document's index in the flow (0-based, `doc_index`)"),
    ),
    responses(
        (status = 200, description = "The canonical invoice", body = super::shapes::CanonicalInvoice),
        (status = 400, description = "An id or index that is not a number", body = ErrorBody),
        (status = 404, description = "No such flow, or no mapped invoice at that index", body = ErrorBody),
        (status = 413, description = "Larger than `[http] max_response_bytes`", body = ErrorBody),
        (status = 503, description = "The spool cannot be read", body = ErrorBody),
    ))]
pub async fn canonical_invoice(
    State(d): State<Arc<App>>,
    Path((id, index)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| bad_request("a flow id is a number"))?;
    let index: i64 = index
        .parse()
        .map_err(|_| bad_request("a document index is a number"))?;
    d.spool.flow(id).await?;
    let Some(json) = d.spool.canonical_invoice_reader(id, index).await? else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("flow {id} has no mapped invoice at index {index}"),
        ));
    };
    let max = d.config().http_limits.max_response_bytes;
    if json.len > max {
        return Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the canonical invoice is {} bytes, more than [http] max_response_bytes ({max}); read it with `quai flow {id}` on the host",
                json.len
            ),
        ));
    }
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        axum::body::Body::new(ReaderBody::spawn(json.reader)),
    )
        .into_response())
}

/// A response body read from a blocking reader on the blocking pool, a
/// piece at a time (at most a few pieces in flight).
pub(crate) struct ReaderBody {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
}

impl ReaderBody {
    const PIECE: usize = 64 * 1024;

    pub(crate) fn spawn(mut reader: Box<dyn std::io::Read + Send>) -> ReaderBody {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::task::spawn_blocking(move || loop {
            let mut buf = vec![0u8; Self::PIECE];
            match reader.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    // The client went away: stop reading.
                    if tx.blocking_send(Ok(bytes::Bytes::from(buf))).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(error = %e, "response body: cannot read");
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        });
        ReaderBody { rx }
    }
}

impl http_body::Body for ReaderBody {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, std::io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|piece| piece.map(|r| r.map(http_body::Frame::data)))
    }
}

#[utoipa::path(get, path = "/api/partners", tag = "ops",
    description = "Per partner: last flow, flows by state, invoices, reject rate.",
    responses(
        (status = 200, description = "The partners", body = Vec<super::overview::PartnerSummary>),
        (status = 503, description = "The spool cannot be read", body = ErrorBody),
    ))]
pub async fn partners(State(d): State<Arc<App>>) -> Result<Response, ApiError> {
    Ok(Json(super::overview::partners(&d.spool).await?).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OverviewQuery {
    /// Flows still received or processing this many minutes after arrival
    /// are stuck (default 15).
    pub stuck_minutes: Option<i64>,
}

#[utoipa::path(get, path = "/api/overview", tag = "ops",
    description = "Everything the status page shows.",
    params(OverviewQuery),
    responses(
        (status = 200, description = "The overview", body = super::overview::Overview),
        (status = 400, description = "A bad parameter", body = ErrorBody),
        (status = 503, description = "The spool cannot be read", body = ErrorBody),
    ))]
pub async fn overview(
    State(d): State<Arc<App>>,
    ApiQuery(q): ApiQuery<OverviewQuery>,
) -> Result<Response, ApiError> {
    let stuck = q
        .stuck_minutes
        .unwrap_or(super::overview::DEFAULT_STUCK_MINUTES);
    Ok(Json(super::overview::overview(&d.spool, stuck).await?).into_response())
}
