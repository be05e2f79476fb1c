//! The exchange's JSON routes (issue 15), the same answers as the CLI's
//! (`quai invoice`, `quai invoices`; shapes in docs/exchange.md):
//!
//! - `GET /api/invoices?partner=P&status=CODE&since=D&limit=N`: invoices a
//!   partner sent or receives, newest first (`partner` required);
//! - `GET /api/invoices/:flow/:index`: one invoice with its route,
//!   deliveries and status history;
//! - `GET /api/invoices/by-number?number=N&seller=S`: every invoice with
//!   that number from that seller, each as above;
//! - `GET /api/exchange`: per recipient, invoices routed, delivered and
//!   awaiting delivery.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use quai_spool::ExchangeFilter;
use serde::Deserialize;

use super::api::{ApiError, ApiQuery, ErrorBody};
use super::shapes::{ExchangeJson, InvoiceDetailJson, InvoiceListJson, InvoicesJson};
use crate::app::App;

const MAX_LIMIT: i64 = 1000;

fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

fn failed(e: anyhow::Error) -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}"))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvoicesQuery {
    /// The partner (required: without it the answer is 400).
    pub partner: Option<String>,
    /// A status code from 200 to 213 the invoice's history holds.
    pub status: Option<String>,
    /// Stored at or after: a date, an RFC 3339 time or a duration back.
    pub since: Option<String>,
    /// 1 to 1000, default 100.
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/invoices", tag = "ops",
    description = "Invoices the partner sent or receives, newest first, like `quai invoices --json`.",
    params(InvoicesQuery),
    responses(
        (status = 200, description = "The invoices", body = InvoiceListJson),
        (status = 400, description = "A bad or missing parameter", body = ErrorBody),
        (status = 503, description = "The spool cannot be read", body = ErrorBody),
    ))]
pub async fn invoices(
    State(d): State<Arc<App>>,
    ApiQuery(q): ApiQuery<InvoicesQuery>,
) -> Result<Response, ApiError> {
    let Some(partner) = q.partner.filter(|p| !p.is_empty()) else {
        return Err(bad_request("partner is required"));
    };
    let since = match q.since.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => {
            Some(crate::query::parse_since(s).map_err(|e| bad_request(format!("since: {e}")))?)
        }
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad_request(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let status = q.status.filter(|s| !s.is_empty());
    if let Some(code) = &status {
        if crate::exchange::status_name(code).is_none() {
            return Err(bad_request("status must be a code from 200 to 213"));
        }
    }
    let list = d
        .spool
        .exchanged_invoices(&ExchangeFilter {
            partner: Some(partner.clone()),
            since,
            status: status.and_then(|c| c.parse().ok()),
            limit: Some(limit),
        })
        .await?;
    Ok(Json(InvoiceListJson {
        partner,
        invoices: list,
    })
    .into_response())
}

#[utoipa::path(get, path = "/api/invoices/{flow}/{index}", tag = "ops",
    description = "One invoice with its deliveries and status history, like `quai invoice FLOW/INDEX --json`.",
    params(
        ("flow" = i64, Path, description = "The flow's id"),
        ("index" = i64, Path, description = "The document's index in the flow"),
    ),
    responses(
        (status = 200, description = "The invoice", body = InvoiceDetailJson),
        (status = 400, description = "Not two numbers", body = ErrorBody),
        (status = 404, description = "The flow has no such document", body = ErrorBody),
        (status = 503, description = "The spool cannot be read", body = ErrorBody),
    ))]
pub async fn invoice(
    State(d): State<Arc<App>>,
    Path((flow, index)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (Ok(flow), Ok(index)) = (flow.parse::<i64>(), index.parse::<i64>()) else {
        return Err(bad_request(
            "an invoice is /api/invoices/FLOW/INDEX, two numbers",
        ));
    };
    let Some(inv) = d.spool.exchanged_invoice(flow, index).await? else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("flow {flow} has no document {index}"),
        ));
    };
    Ok(Json(
        crate::exchange::invoice_json(&d.spool, &inv)
            .await
            .map_err(failed)?,
    )
    .into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ByNumberQuery {
    /// The invoice number (BT-1); required.
    pub number: Option<String>,
    /// The seller's identifier as stored; required.
    pub seller: Option<String>,
}

#[utoipa::path(get, path = "/api/invoices/by-number", tag = "ops",
    description = "Every invoice with that number from that seller, each as `/api/invoices/{flow}/{index}` answers it.",
    params(ByNumberQuery),
    responses(
        (status = 200, description = "The invoices (empty when none)", body = InvoicesJson),
        (status = 400, description = "number or seller missing", body = ErrorBody),
        (status = 503, description = "The spool cannot be read", body = ErrorBody),
    ))]
pub async fn by_number(
    State(d): State<Arc<App>>,
    ApiQuery(q): ApiQuery<ByNumberQuery>,
) -> Result<Response, ApiError> {
    let (Some(number), Some(seller)) = (q.number, q.seller) else {
        return Err(bad_request("number and seller are required"));
    };
    let found = d.spool.find_invoices(&number, &seller).await?;
    let mut out = Vec::with_capacity(found.len());
    for inv in &found {
        out.push(
            crate::exchange::invoice_json(&d.spool, inv)
                .await
                .map_err(failed)?,
        );
    }
    Ok(Json(InvoicesJson { invoices: out }).into_response())
}

#[utoipa::path(get, path = "/api/exchange", tag = "ops",
    description = "Per recipient: invoices routed, delivered, awaiting delivery, refused by the buyer.",
    responses(
        (status = 200, description = "The counts", body = ExchangeJson),
        (status = 503, description = "The spool cannot be read", body = ErrorBody),
    ))]
pub async fn exchange(State(d): State<Arc<App>>) -> Result<Response, ApiError> {
    let counts = d.spool.recipient_counts().await?;
    Ok(Json(ExchangeJson { recipients: counts }).into_response())
}
