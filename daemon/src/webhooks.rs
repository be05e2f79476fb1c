//! The partner API's answers: announcing acknowledgements and posting them
//! to the partner's webhooks.
//!
//! An acknowledgement owed to `Destination::Api` (a flow deposited through
//! `/v1/flows`) is "delivered" by [`announce`]: it is readable from then
//! on (`GET /v1/flows/{flowId}` computes it from the spool), and one post
//! per matching subscription is owed in the spool (`api_webhook_posts`,
//! once per subscription and flow), nothing being written to an outbox.
//! [`run`] sends the due posts under a lease: the body is the flow's
//! `Flow` JSON, signed (`Afnor-Signature`: base64 HMAC-SHA256 of
//! `<Afnor-Signature-Timestamp>.<body>` with the subscription's key), to
//! the subscribed URL only while `[api] webhook_urls` allows it, without
//! following redirects; a failure stores the next attempt after
//! `quai_spool::retry_delay` (5 s doubling to 15 min), as deliveries do.
//! A flow `In` (`crate::outbound_api`) owes its posts when it is
//! registered; they carry its `Flow` JSON the same way.

use std::sync::Arc;
use std::time::Duration;

use quai_connectors::outbound::post_webhook;
use quai_spool::api::{ApiWebhook, WebhookPost};
use quai_spool::{DeliveryItem, DeliveryRow, Lease};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::app::App;
use crate::outbound::{SendFailure, Sent};

/// Posts claimed per pass.
const BATCH: i64 = 50;
/// How long a claim holds.
const LEASE: Duration = Duration::from_secs(5 * 60);
/// Idle passes are this far apart (a new post is due at once; the next
/// pass finds it within this).
const IDLE: Duration = Duration::from_millis(500);

/// Does a subscription want to hear of a flow of this direction (`Out`:
/// deposited by the partner, `In`: delivered to it), ack status and type?
pub fn matches(hook: &ApiWebhook, direction: &str, status: &str, flow_type: &str) -> bool {
    let types: Vec<String> = serde_json::from_str(&hook.flow_types).unwrap_or_default();
    (types.is_empty() || types.iter().any(|t| t == flow_type))
        && hook
            .flow_direction
            .as_deref()
            .is_none_or(|d| d == direction)
        && hook.ack_status.as_deref().is_none_or(|s| s == status)
}

/// Announce an acknowledgement owed to the partner API (see the module
/// doc): owe the posts of the matching subscriptions.
pub async fn announce(app: &App, partner: &str, row: &DeliveryRow) -> Result<Sent, SendFailure> {
    let fail = |message: String| SendFailure {
        destination: format!("the partner API of {partner}"),
        message,
        transient: true,
    };
    let flow_id = match &row.item {
        DeliveryItem::Ack { flow, .. } => *flow,
        _ => return Err(fail(format!("delivery {}: not an acknowledgement", row.id))),
    };
    let flow = app
        .spool
        .api_flow(partner, flow_id)
        .await
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| fail(format!("flow {flow_id} of {partner} not found")))?;
    let status = crate::flow_json::ack_status(flow.flow.state);
    let syntax = flow
        .meta
        .as_ref()
        .map(|m| m.flow_syntax.as_str())
        .unwrap_or("");
    let flow_type = crate::flow_json::flow_type(syntax);
    let hooks = app
        .spool
        .webhooks_of(partner)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let ids: Vec<String> = hooks
        .iter()
        .filter(|h| matches(h, "Out", status, flow_type))
        .map(|h| h.id.clone())
        .collect();
    let owed = app
        .spool
        .owe_webhook_posts(flow_id, &ids)
        .await
        .map_err(|e| fail(e.to_string()))?;
    info!(
        partner,
        flow_id,
        status,
        webhooks = owed,
        "acknowledgement readable through the partner API"
    );
    Ok(Sent {
        destination: format!("the partner API of {partner} ({owed} webhook post(s))"),
        receipt: None,
    })
}

/// Send due webhook posts until `stop`.
pub async fn run(app: Arc<App>, stop: CancellationToken) {
    loop {
        let sent = post_due(&app).await;
        if stop.is_cancelled() {
            break;
        }
        if sent == 0 {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(IDLE) => {}
            }
        }
    }
}

/// One pass: claim due posts and send them; how many were claimed.
pub async fn post_due(app: &App) -> usize {
    let posts = match app
        .spool
        .claim_due_webhook_posts(BATCH, Lease { duration: LEASE })
        .await
    {
        Ok(p) => p,
        Err(e) => {
            warn!(error = %e, "cannot claim due webhook posts");
            return 0;
        }
    };
    let n = posts.len();
    for post in posts {
        let outcome = send(app, &post).await;
        let recorded = match &outcome {
            Ok(()) => app.spool.webhook_post_delivered(post.id).await,
            Err(e) => app.spool.webhook_post_failed(post.id, e).await,
        };
        match (&outcome, recorded) {
            (Ok(()), Ok(())) => {
                info!(partner = %post.partner, flow_id = ?post.flow_id, inbox_id = ?post.inbox_id,
                    webhook = %post.webhook_id, "webhook posted")
            }
            (Err(e), Ok(())) => {
                warn!(partner = %post.partner, flow_id = ?post.flow_id, inbox_id = ?post.inbox_id, webhook = %post.webhook_id,
                    attempts = post.attempts + 1, error = %e, "webhook post failed; it will be tried again")
            }
            (_, Err(e)) => {
                warn!(webhook_post = post.id, error = %e, "webhook post outcome not recorded")
            }
        }
    }
    n
}

async fn send(app: &App, post: &WebhookPost) -> Result<(), String> {
    let config = app.config();
    if !config.api.allows_webhook(&post.callback_url) {
        return Err("the callback URL is not allowed by [api] webhook_urls".into());
    }
    let json = match (post.flow_id, post.inbox_id) {
        (Some(id), _) => {
            let flow = app
                .spool
                .api_flow(&post.partner, id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("flow {id} not found"))?;
            crate::flow_json::flow(&app.spool, &flow, config.language_of(&post.partner))
                .await
                .map_err(|e| e.to_string())?
        }
        (None, Some(id)) => {
            let flow = app
                .spool
                .inbox_flow(&post.partner, id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("flow in-{id} not found"))?;
            crate::flow_json::inbox_flow(&flow)
        }
        (None, None) => return Err("a webhook post of no flow".into()),
    };
    let body = serde_json::to_vec(&json).map_err(|e| e.to_string())?;
    let timestamp = chrono::Utc::now().timestamp();
    let signature = crate::tokens::sign_webhook(&post.signing_key, timestamp, &body);
    let headers = [
        ("Afnor-Signature", signature),
        ("Afnor-Signature-Timestamp", timestamp.to_string()),
        ("Afnor-Webhook-Id", post.webhook_id.clone()),
    ];
    post_webhook(
        &post.callback_url,
        &headers,
        body,
        Duration::from_secs(config.api.webhook_timeout_seconds),
    )
    .await
    .map(|_| ())
    .map_err(|e| e.message)
}
