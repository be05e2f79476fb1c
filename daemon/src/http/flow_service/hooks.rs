//! `GET`/`POST /v1/webhooks`, `DELETE /v1/webhooks/{webhookUid}`: a
//! partner's subscriptions.
//!
//! A callback URL is accepted only under one of the operator's `[api]
//! webhook_urls` prefixes (quai calls only URLs its operator configured).
//! The signing key (32 random bytes, base64) is shown once, in the answer
//! to the subscription; listings never show it. What is posted and how it
//! is signed: `crate::webhooks`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use quai_spool::api::ApiWebhook;
use serde_json::{json, Value};

use super::{FlowError, Who};
use crate::app::App;
use crate::flow_json;

/// Subscriptions one partner may hold.
const MAX_WEBHOOKS: usize = 20;

fn listed(h: &ApiWebhook) -> Value {
    let types: Vec<String> = serde_json::from_str(&h.flow_types).unwrap_or_default();
    let mut v = json!({
        "webhookId": h.id,
        "createdAt": h.created_at.to_rfc3339(),
        "callbackUrl": h.callback_url,
    });
    if !types.is_empty() {
        v["flowTypes"] = json!(types);
    }
    if let Some(d) = &h.flow_direction {
        v["flowDirection"] = json!(d);
    }
    if let Some(s) = &h.ack_status {
        v["ackStatus"] = json!(s);
    }
    v
}

pub async fn list(State(app): State<Arc<App>>, who: Who) -> Result<Response, FlowError> {
    let hooks = app.spool.webhooks_of(&who.0 .0).await?;
    let ids: Vec<&str> = hooks.iter().map(|h| h.id.as_str()).collect();
    let webhooks: Vec<Value> = hooks.iter().map(listed).collect();
    // The specification's list requires `webhookIds` and describes
    // `webhooks`: both are given.
    Ok(
        Json(json!({ "count": hooks.len(), "webhookIds": ids, "webhooks": webhooks }))
            .into_response(),
    )
}

pub async fn create(
    State(app): State<Arc<App>>,
    who: Who,
    body: axum::body::Bytes,
) -> Result<Response, FlowError> {
    let partner = &who.0 .0;
    if body.len() > 16 * 1024 {
        return Err(FlowError::bad_request(
            "the subscription is larger than 16 KiB",
        ));
    }
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| FlowError::bad_request(format!("the body is not JSON: {e}")))?;
    let url = v
        .get("callbackUrl")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            FlowError::new(
                StatusCode::BAD_REQUEST,
                "MISSING_REQUIRED_FIELD",
                "callbackUrl is required",
            )
        })?;
    if url.len() > 2048 || !app.config().api.allows_webhook(url) {
        return Err(FlowError::new(
            StatusCode::BAD_REQUEST,
            "CALLBACK_URL_NOT_ALLOWED",
            "this callbackUrl is not among the URLs the operator allows ([api] webhook_urls)",
        ));
    }
    let types: Vec<String> = match v.get("flowTypes") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i.as_str() {
                Some(s) if flow_json::FLOW_TYPES.contains(&s) => Ok(s.to_owned()),
                _ => Err(FlowError::bad_request(
                    "flowTypes items must be FlowType values",
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(FlowError::bad_request("flowTypes must be an array")),
    };
    let one = |k: &str, allowed: &[&str]| -> Result<Option<String>, FlowError> {
        match v.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(Some(s.clone())),
            Some(_) => Err(FlowError::bad_request(format!(
                "{k} must be one of {}",
                allowed.join(", ")
            ))),
        }
    };
    let direction = one("flowDirection", flow_json::FLOW_DIRECTIONS)?;
    let status = one("ackStatus", flow_json::ACK_STATUSES)?;
    if app.spool.webhooks_of(partner).await?.len() >= MAX_WEBHOOKS {
        return Err(FlowError::bad_request(format!(
            "a partner holds at most {MAX_WEBHOOKS} subscriptions"
        )));
    }
    let hook = ApiWebhook {
        id: uuid::Uuid::new_v4().to_string(),
        partner: partner.clone(),
        callback_url: url.to_owned(),
        signing_key: crate::tokens::new_signing_key().map_err(FlowError::internal)?,
        flow_types: serde_json::to_string(&types).unwrap_or_else(|_| "[]".into()),
        flow_direction: direction,
        ack_status: status,
        created_at: chrono::Utc::now(),
    };
    app.spool.create_webhook(&hook).await?;
    tracing::info!(partner = %partner, webhook = %hook.id, url = %crate::text::redact_url(url),
        "webhook subscribed (partner API)");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "webhookId": hook.id,
            "signingKey": hook.signing_key,
            "createdAt": hook.created_at.to_rfc3339(),
        })),
    )
        .into_response())
}

pub async fn remove(
    State(app): State<Arc<App>>,
    who: Who,
    Path(uid): Path<String>,
) -> Result<Response, FlowError> {
    if uuid::Uuid::parse_str(&uid).is_err() {
        return Err(FlowError::not_found("webhook"));
    }
    if app.spool.delete_webhook(&who.0 .0, &uid).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(FlowError::not_found("webhook"))
    }
}
