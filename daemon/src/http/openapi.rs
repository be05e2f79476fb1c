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
//! The answers' types the handlers do not name themselves are in
//! [`super::shapes`]. The partner API (`/v1`) is described by the AFNOR
//! Flow Service specification and is not repeated here.

use std::sync::Arc;

use axum::routing::{get, MethodRouter};
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

    /// The router takes its `/api` routes from [`api_routes`] only: a route
    /// mounted by hand would be served undocumented.
    #[test]
    fn the_router_mounts_no_api_route_of_its_own() {
        let router = include_str!("mod.rs");
        assert!(router.contains("openapi::api_routes()"));
        assert!(
            !router.contains(".route(\"/api"),
            "an /api route outside api_routes()"
        );
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
