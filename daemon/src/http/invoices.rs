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

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use quai_spool::ExchangeFilter;
use serde::Deserialize;

use super::api::ApiError;
use crate::app::App;

const MAX_LIMIT: i64 = 1000;

fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

fn failed(e: anyhow::Error) -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}"))
}

#[derive(Debug, Deserialize)]
pub struct InvoicesQuery {
    pub partner: Option<String>,
    pub status: Option<String>,
    pub since: Option<String>,
    pub limit: Option<i64>,
}

pub async fn invoices(
    State(d): State<Arc<App>>,
    Query(q): Query<InvoicesQuery>,
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
    Ok(Json(serde_json::json!({"partner": partner, "invoices": list})).into_response())
}

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

#[derive(Debug, Deserialize)]
pub struct ByNumberQuery {
    pub number: Option<String>,
    pub seller: Option<String>,
}

pub async fn by_number(
    State(d): State<Arc<App>>,
    Query(q): Query<ByNumberQuery>,
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
    Ok(Json(serde_json::json!({"invoices": out})).into_response())
}

pub async fn exchange(State(d): State<Arc<App>>) -> Result<Response, ApiError> {
    let counts = d.spool.recipient_counts().await?;
    Ok(Json(serde_json::json!({"recipients": counts})).into_response())
}
