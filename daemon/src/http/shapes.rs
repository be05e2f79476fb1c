//! The shapes of the JSON API's answers that no handler's type carries:
//! the invoice views' envelopes, and what `exchange::invoice_json` and the
//! canonical invoice route answer (built as JSON values elsewhere). A leaf
//! of `http/`, so the handlers and the OpenAPI document (`openapi.rs`) both
//! use them; the live check of `daemon/tests/openapi.rs` holds them to the
//! real answers.

use serde::Serialize;

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
