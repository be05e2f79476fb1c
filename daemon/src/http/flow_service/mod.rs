//! The partner API: the AFNOR Flow Service 1.3.0 routes under `/v1`, on
//! the ops listener (its bounds apply), behind the partners' own tokens.
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/flows` | deposit a flow (multipart `flowInfo` + `file`), answered once registered |
//! | `GET /v1/flows/{flowId}` | the flow (`docType=Metadata`, default) or its file (`Original`) |
//! | `POST /v1/flows/search` | the partner's flows by the specification's filters, cursor paging |
//! | `GET`/`POST /v1/webhooks` | the partner's subscriptions; subscribe |
//! | `DELETE /v1/webhooks/{webhookUid}` | unsubscribe |
//! | `GET /v1/healthcheck` | the spool answers (no token) |
//!
//! **Authentication.** `Authorization: Bearer <token>`, a token issued by
//! `quai token create --partner P` (see [`crate::tokens`]); the partner
//! is the token's, never one a request names. A partner sees only its
//! own flows and webhooks: another partner's id is `404` on every route.
//! Errors are the specification's `Error` bodies (`errorCode`,
//! `errorMessage`). docs/api.md documents it for partners.
//!
//! **Deposits** are registered by group commit ([`group_commit`]): the
//! deposits that arrive together share one transaction and one fsync of
//! each store folder, each answered once its group is durable.

mod deposit;
mod flows;
mod group_commit;
mod hooks;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde_json::json;

use crate::app::App;

/// The partner a request's token belongs to.
#[derive(Debug, Clone)]
pub struct Partner(pub String);

/// An error as the specification shapes it.
#[derive(Debug)]
pub struct FlowError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl FlowError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> FlowError {
        FlowError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> FlowError {
        FlowError::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
    }

    pub fn not_found(what: &str) -> FlowError {
        FlowError::new(
            StatusCode::NOT_FOUND,
            "MISSING_RESOURCE",
            format!("{what} not found"),
        )
    }

    pub fn internal(e: impl std::fmt::Display) -> FlowError {
        tracing::warn!(error = %e, "partner API: internal error");
        FlowError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "the request could not be completed; try again",
        )
    }
}

impl From<quai_spool::SpoolError> for FlowError {
    fn from(e: quai_spool::SpoolError) -> FlowError {
        FlowError::internal(e)
    }
}

impl IntoResponse for FlowError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            Json(json!({ "errorCode": self.code, "errorMessage": self.message })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"quai-flow-service\""),
            );
        }
        resp
    }
}

/// Find the partner of the request's token, or answer 401 (no or unknown
/// token) / 403 (a partner no longer configured).
async fn require_partner(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim().to_owned())
        })
        .filter(|t| !t.is_empty());
    let Some(secret) = presented else {
        return FlowError::new(
            StatusCode::UNAUTHORIZED,
            "MISSING_TOKEN",
            "Authorization: Bearer <token> is required",
        )
        .into_response();
    };
    let hash = crate::tokens::secret_hash(&secret);
    let found = match app.spool.api_token_by_hash(&hash).await {
        Ok(f) => f,
        Err(e) => return FlowError::internal(e).into_response(),
    };
    let partner = match found {
        Some((_, partner, stored))
            if super::constant_time_eq(stored.as_bytes(), hash.as_bytes()) =>
        {
            partner
        }
        _ => {
            return FlowError::new(
                StatusCode::UNAUTHORIZED,
                "INVALID_TOKEN",
                "the token is unknown or revoked",
            )
            .into_response()
        }
    };
    if app.config().partner(&partner).is_none() {
        return FlowError::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN_ACCESS",
            "this token's partner is not configured",
        )
        .into_response();
    }
    req.extensions_mut().insert(Partner(partner));
    next.run(req).await
}

/// `GET /v1/healthcheck`: 200 when the spool answers, 503 otherwise.
async fn healthcheck(State(app): State<Arc<App>>) -> Response {
    match app.spool.list_api_tokens().await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "partner API healthcheck: the spool does not answer");
            FlowError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "RESOURCE_ERROR",
                "the spool does not answer",
            )
            .into_response()
        }
    }
}

/// The `/v1` routes (merged by [`super::serve`] outside the operators'
/// token and Host check: partners have their own tokens).
///
/// Starts the deposits' committer ([`group_commit`]), which ends with the
/// router.
pub fn router(app: Arc<App>) -> Router {
    let group = group_commit::GroupCommit::start(app.clone());
    let protected = Router::new()
        .route(
            "/v1/flows",
            // The body is streamed into the store under the API's own
            // limits (`deposit`), not axum's default 2 MB.
            post(deposit::deposit).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/flows/search", post(flows::search))
        .route("/v1/flows/:flow_id", get(flows::get_flow))
        .route("/v1/webhooks", get(hooks::list).post(hooks::create))
        .route("/v1/webhooks/:webhook_uid", delete(hooks::remove))
        // `route_layer`: only these routes need a partner; an unknown path
        // stays the listener's 404.
        .route_layer(middleware::from_fn_with_state(app.clone(), require_partner))
        // The deposits' committer, for `deposit`.
        .layer(Extension(group))
        .with_state(app.clone());
    Router::new()
        .route("/v1/healthcheck", get(healthcheck))
        .with_state(app)
        .merge(protected)
}

/// The `Partner` of a request (put there by `require_partner`).
pub type Who = Extension<Partner>;
