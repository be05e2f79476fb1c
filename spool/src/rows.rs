//! Rows as both backends return them, and their conversion to the API types.
//!
//! The `Raw*` structs only hold primitive column types that decode the same
//! way from SQLite and PostgreSQL (PostgreSQL queries cast NUMERIC columns to
//! text), so the conversion and its validation are written once.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::{
    state, AckKind, AckRow, FlowRow, InvoiceRow, Origin, Reason, Result, SpoolError, Verdict,
};

pub(crate) fn origin_str(o: Origin) -> &'static str {
    match o {
        Origin::Dropzone => "dropzone",
        Origin::Sftp => "sftp",
        Origin::As2 => "as2",
        Origin::Cli => "cli",
    }
}

pub(crate) fn parse_origin(s: &str) -> Result<Origin> {
    Ok(match s {
        "dropzone" => Origin::Dropzone,
        "sftp" => Origin::Sftp,
        "as2" => Origin::As2,
        "cli" => Origin::Cli,
        other => return Err(SpoolError::Corrupt(format!("unknown origin {other:?}"))),
    })
}

pub(crate) fn verdict_str(v: Verdict) -> &'static str {
    match v {
        Verdict::Accepted => "accepted",
        Verdict::Rejected => "rejected",
    }
}

pub(crate) fn parse_verdict(s: &str) -> Result<Verdict> {
    match s {
        "accepted" => Ok(Verdict::Accepted),
        "rejected" => Ok(Verdict::Rejected),
        other => Err(SpoolError::Corrupt(format!("unknown verdict {other:?}"))),
    }
}

pub(crate) fn parse_ack_kind(s: &str) -> Result<AckKind> {
    Ok(match s {
        "integration_report" => AckKind::IntegrationReport,
        "cdar" => AckKind::Cdar,
        "contrl" => AckKind::Contrl,
        "mdn" => AckKind::Mdn,
        other => return Err(SpoolError::Corrupt(format!("unknown ack kind {other:?}"))),
    })
}

pub(crate) fn parse_decimal(s: Option<String>) -> Result<Option<Decimal>> {
    s.map(|s| Decimal::from_str(&s).map_err(|e| SpoolError::Corrupt(format!("decimal {s:?}: {e}"))))
        .transpose()
}

pub(crate) fn parse_reasons(s: &str) -> Result<Vec<Reason>> {
    serde_json::from_str(s).map_err(|e| SpoolError::Corrupt(format!("reasons JSON: {e}")))
}

pub(crate) fn decimal_str(d: Option<Decimal>) -> Option<String> {
    d.map(|d| d.to_string())
}

#[derive(sqlx::FromRow)]
pub(crate) struct RawFlow {
    pub id: i64,
    pub partner: String,
    pub origin: String,
    pub original_name: String,
    pub size: i64,
    pub sha256: String,
    pub state: String,
    pub received_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub attempts: i32,
    pub duplicate_of: Option<i64>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub invoices_accepted: i64,
    pub invoices_rejected: i64,
}

impl TryFrom<RawFlow> for FlowRow {
    type Error = SpoolError;
    fn try_from(r: RawFlow) -> Result<FlowRow> {
        Ok(FlowRow {
            id: r.id,
            partner: r.partner,
            origin: parse_origin(&r.origin)?,
            original_name: r.original_name,
            size: r.size,
            sha256: r.sha256,
            state: state::parse_state(&r.state)?,
            received_at: r.received_at,
            updated_at: r.updated_at,
            attempts: r.attempts,
            duplicate_of: r.duplicate_of,
            failure_code: r.failure_code,
            failure_message: r.failure_message,
            invoices_accepted: r.invoices_accepted,
            invoices_rejected: r.invoices_rejected,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RawInvoice {
    pub id: i64,
    pub flow_id: i64,
    pub doc_index: i64,
    pub entry: String,
    pub syntax: Option<String>,
    pub profile: Option<String>,
    pub seller_id: Option<String>,
    pub number: Option<String>,
    pub issue_date: Option<NaiveDate>,
    pub type_code: Option<String>,
    pub currency: Option<String>,
    pub total_with_vat: Option<String>,
    pub verdict: String,
    pub reasons: String,
}

impl TryFrom<RawInvoice> for InvoiceRow {
    type Error = SpoolError;
    fn try_from(r: RawInvoice) -> Result<InvoiceRow> {
        Ok(InvoiceRow {
            id: r.id,
            flow_id: r.flow_id,
            doc_index: r.doc_index,
            entry: r.entry,
            syntax: r.syntax,
            profile: r.profile,
            seller_id: r.seller_id,
            number: r.number,
            issue_date: r.issue_date,
            type_code: r.type_code,
            currency: r.currency,
            total_with_vat: parse_decimal(r.total_with_vat)?,
            verdict: parse_verdict(&r.verdict)?,
            reasons: parse_reasons(&r.reasons)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RawAck {
    pub id: i64,
    pub flow_id: i64,
    pub partner: String,
    pub kind: String,
    pub destination: String,
    pub file_name: String,
    pub generated_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub attempts: i32,
    pub last_error: Option<String>,
}

impl TryFrom<RawAck> for AckRow {
    type Error = SpoolError;
    fn try_from(r: RawAck) -> Result<AckRow> {
        Ok(AckRow {
            id: r.id,
            flow_id: r.flow_id,
            partner: r.partner,
            kind: parse_ack_kind(&r.kind)?,
            destination: r.destination,
            file_name: r.file_name,
            generated_at: r.generated_at,
            delivered_at: r.delivered_at,
            attempts: r.attempts,
            last_error: r.last_error,
        })
    }
}

/// Convert a list of raw rows.
pub(crate) fn convert<R, T: TryFrom<R, Error = SpoolError>>(rows: Vec<R>) -> Result<Vec<T>> {
    rows.into_iter().map(T::try_from).collect()
}

/// Assemble `status()` from the three grouped queries both backends run.
pub(crate) fn build_status(
    partners: Vec<String>,
    flows: Vec<(String, String, i64)>,
    invoices: Vec<(String, String, i64)>,
) -> crate::StatusSummary {
    use std::collections::BTreeMap;
    let empty = || crate::Counts {
        flows: BTreeMap::new(),
        invoices: BTreeMap::from([("accepted".to_owned(), 0), ("rejected".to_owned(), 0)]),
    };
    let mut per: BTreeMap<String, crate::Counts> =
        partners.into_iter().map(|p| (p, empty())).collect();
    let mut totals = empty();
    for (partner, state, n) in flows {
        *per.entry(partner)
            .or_insert_with(empty)
            .flows
            .entry(state.clone())
            .or_default() += n;
        *totals.flows.entry(state).or_default() += n;
    }
    for (partner, verdict, n) in invoices {
        *per.entry(partner)
            .or_insert_with(empty)
            .invoices
            .entry(verdict.clone())
            .or_default() += n;
        *totals.invoices.entry(verdict).or_default() += n;
    }
    crate::StatusSummary {
        totals,
        partners: per
            .into_iter()
            .map(|(partner, counts)| crate::PartnerCounts { partner, counts })
            .collect(),
    }
}

/// Columns of a [`RawFlow`] (alias `f` for `flows`), valid on both backends.
pub(crate) const FLOW_SELECT: &str = "SELECT f.id, f.partner, f.origin, f.original_name, f.size, \
    f.sha256, f.state, f.received_at, f.updated_at, f.attempts, f.duplicate_of, f.failure_code, \
    f.failure_message, \
    (SELECT count(*) FROM invoices i WHERE i.flow_id = f.id AND i.verdict = 'accepted') AS invoices_accepted, \
    (SELECT count(*) FROM invoices i WHERE i.flow_id = f.id AND i.verdict = 'rejected') AS invoices_rejected \
    FROM flows f";

/// Columns of a [`RawInvoice`] (alias `i`), valid on both backends.
pub(crate) const INVOICE_SELECT: &str = "SELECT i.id, i.flow_id, i.doc_index, i.entry, i.syntax, \
    i.profile, i.seller_id, i.number, i.issue_date, i.type_code, i.currency, \
    CAST(i.total_with_vat AS TEXT) AS total_with_vat, i.verdict, \
    CAST(i.reasons AS TEXT) AS reasons \
    FROM invoices i";

/// Columns of a [`RawAck`] (alias `a`, joined with `flows f`), valid on both backends.
pub(crate) const ACK_SELECT: &str = "SELECT a.id, a.flow_id, f.partner, a.kind, a.destination, \
    a.file_name, a.generated_at, a.delivered_at, a.attempts, a.last_error \
    FROM acknowledgements a JOIN flows f ON f.id = a.flow_id";
