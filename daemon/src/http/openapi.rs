//! `GET /openapi.json`: the operators' JSON API (`/api/...`) described as
//! OpenAPI 3.1, generated from the handlers' own types.
//!
//! Why here and this way: a description written by hand drifts from the
//! code. Each handler carries its `#[utoipa::path]` (method, path,
//! parameters, answers) beside it, the answers are the types it serialises
//! (`#[derive(ToSchema)]` on them, on the spool's rows through its
//! `openapi` feature), and [`api_routes`] mounts every `/api` route at the
//! path its annotation declares — the router has no other list of them —
//! while [`OpsApi`] documents the same handlers. A test holds the two lists
//! equal; `daemon/tests/openapi.rs` checks live answers against the
//! document with schemathesis.
//!
//! Three answers are built as `serde_json::json!` values in modules that
//! are not the API's (`exchange::invoice_json`): their shapes are the
//! structs below ([`InvoiceDetailJson`]...), which the live check holds
//! to the real answers. The partner API (`/v1`) is described by the AFNOR
//! Flow Service specification and is not repeated here.

use std::sync::Arc;

use axum::routing::{get, MethodRouter};
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{api, invoices};
use crate::app::App;

/// The document of the ops API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "quai ops API",
        description = "The operators' JSON API of quai: flows, invoices, acknowledgements and the exchange, read from the spool (nothing here changes state). With `[http] token_file`, every route requires `Authorization: Bearer <token>`. docs/api.md describes each answer."
    ),
    paths(
        api::status,
        api::flows,
        api::flow,
        api::canonical_invoice,
        api::partners,
        api::overview,
        invoices::invoices,
        invoices::by_number,
        invoices::invoice,
        invoices::exchange,
    ),
    components(schemas(api::ErrorBody, UnauthorizedBody)),
    modifiers(&OpsToken),
    security(("ops_token" = [])),
    tags((name = "ops", description = "The ops API"))
)]
pub struct OpsApi;

/// The bearer token of `[http] token_file`, and the `401` every operation
/// answers without it.
struct OpsToken;

/// The body of a `401` (`require_token`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct UnauthorizedBody {
    /// `unauthorized`
    error: String,
    /// What the listener requires.
    reason: String,
}

impl Modify for OpsToken {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let unauthorized = ResponseBuilder::new()
            .description(
                "`[http] token_file` is set and the request has no `Authorization: Bearer` with it",
            )
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("UnauthorizedBody")))
                    .build(),
            )
            .build();
        for item in doc.paths.paths.values_mut() {
            if let Some(op) = item.get.as_mut() {
                op.responses
                    .responses
                    .insert("401".to_string(), unauthorized.clone().into());
            }
        }
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "ops_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The first line of `[http] token_file` (only when it is configured)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as served, with quai's version.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = OpsApi::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

/// `GET /openapi.json`.
pub async fn openapi_json() -> axum::response::Response {
    use axum::response::IntoResponse;
    axum::Json(document()).into_response()
}

/// Every `/api` route: the axum path of each handler's annotation with the
/// handler. The router mounts exactly these.
pub(super) fn api_routes() -> Vec<(String, MethodRouter<Arc<App>>)> {
    vec![
        served::<api::__path_status>(get(api::status)),
        served::<api::__path_flows>(get(api::flows)),
        served::<api::__path_flow>(get(api::flow)),
        served::<api::__path_canonical_invoice>(get(api::canonical_invoice)),
        served::<api::__path_partners>(get(api::partners)),
        served::<api::__path_overview>(get(api::overview)),
        served::<invoices::__path_invoices>(get(invoices::invoices)),
        served::<invoices::__path_by_number>(get(invoices::by_number)),
        served::<invoices::__path_invoice>(get(invoices::invoice)),
        served::<invoices::__path_exchange>(get(invoices::exchange)),
    ]
}

fn served<P: utoipa::Path>(handler: MethodRouter<Arc<App>>) -> (String, MethodRouter<Arc<App>>) {
    (axum_path(&P::path()), handler)
}

/// `/api/flows/{id}` (OpenAPI) → `/api/flows/:id` (axum 0.7).
fn axum_path(openapi: &str) -> String {
    openapi
        .split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => format!(":{name}"),
                None => seg.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// A canonical EN 16931 invoice (`quai_mappings::model::Invoice` as JSON):
/// an object of every BT/BG quai read, amounts as decimal strings.
pub struct CanonicalInvoice;

impl utoipa::PartialSchema for CanonicalInvoice {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "The canonical EN 16931 invoice (every BT/BG quai read; amounts as decimal strings)",
            ))
            .into()
    }
}

impl utoipa::ToSchema for CanonicalInvoice {}

/// `GET /api/invoices`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvoiceListJson {
    pub partner: String,
    pub invoices: Vec<quai_spool::ExchangedInvoice>,
}

/// `GET /api/invoices/by-number`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvoicesJson {
    #[schema(value_type = Vec<InvoiceDetailJson>)]
    pub invoices: Vec<serde_json::Value>,
}

/// `GET /api/exchange`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExchangeJson {
    pub recipients: Vec<quai_spool::RecipientCounts>,
}

/// One invoice with its deliveries and statuses (`exchange::invoice_json`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct InvoiceDetailJson {
    invoice: quai_spool::ExchangedInvoice,
    deliveries: Vec<InvoiceDeliveryJson>,
    statuses: Vec<StatusJson>,
}

/// One delivery of an invoice to its recipient.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct InvoiceDeliveryJson {
    id: i64,
    /// The recipient partner.
    recipient: String,
    to: quai_spool::Destination,
    /// The destination in words.
    destination: String,
    file: String,
    /// `pending`, `delivered`...
    state: String,
    attempts: i32,
    next_attempt_at: chrono::DateTime<chrono::Utc>,
    last_error: Option<String>,
    delivered_at: Option<chrono::DateTime<chrono::Utc>>,
    receipt: Option<String>,
}

/// One status of an invoice's lifecycle history.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct StatusJson {
    /// `200` to `213`.
    code: String,
    /// The status's name (`Déposée`, `Rejetée`...).
    name: String,
    at: chrono::DateTime<chrono::Utc>,
    /// Who emitted it.
    issuer: String,
    from_partner: Option<String>,
    reasons: Vec<quai_spool::StatusReason>,
    /// The reasons in one line, `null` without any.
    reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_route_served_is_documented_and_every_documented_path_served() {
        let served: BTreeSet<String> = api_routes().into_iter().map(|(p, _)| p).collect();
        let doc = document();
        let documented: BTreeSet<String> = doc.paths.paths.keys().map(|p| axum_path(p)).collect();
        assert_eq!(served, documented);
        assert!(served.iter().all(|p| p.starts_with("/api/")), "{served:?}");
        assert_eq!(served.len(), 10);
    }

    #[test]
    fn axum_paths_from_openapi_paths() {
        assert_eq!(
            axum_path("/api/flows/{id}/invoices/{index}"),
            "/api/flows/:id/invoices/:index"
        );
        assert_eq!(axum_path("/api/status"), "/api/status");
    }
}
