//! The lifecycle-status history of each invoice (issue 15): what the
//! platform, the recipient and the supplier said about it, in order, and
//! the CDAR each status owes the other party.
//!
//! Every status goes through [`Spool::record_status`], which in one
//! transaction checks it against the transition table (`table.rs`: who may
//! emit which code, which code may follow which), checks that the partner
//! who sent it is the right side of *that* invoice (its recipient for the
//! buyer's statuses, its supplier for 212), appends it to
//! `invoice_statuses`, and owes its relay to the other party as a delivery
//! row (`DeliveryItem::Status`) when that partner wants the code. A refused
//! status is a [`SpoolError::StatusRefused`] and writes nothing. Recording
//! the same status again (same invoice, code, issuer and inbound flow: a
//! replayed status flow, a delivery recorded again after a crash) returns
//! the first one and writes nothing, so reprocessing is idempotent.
//!
//! An invoice's history starts with an implicit 200 *Déposée* or 213
//! *Rejetée*, its verdict (`seq` 0, no row of its own): the flow's CDAR
//! already told the supplier.
//!
//! The recipient of an invoice ([`Spool::recipient_of`]) is the partner its
//! invoice delivery is owed to. Matching a status to an invoice
//! ([`Spool::find_invoice`]) goes by seller identifier, invoice number
//! (BT-1) and issue date (BT-2), over the accepted invoices' duplicate keys.

mod delivered;
mod sql;
mod table;

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use delivered::DeliveredItem;
pub use table::{may_follow, Issuer, StatusCode};

use crate::durability::Durability;
use crate::state;
use crate::steps;
use crate::{Backend, Destination, FlowId, Result, Spool, SpoolError, Verdict};

/// A status row's id.
pub type StatusId = i64;

/// One reason given with a status (MDT-113 / MDT-114 in CDAR): the code
/// (`REJ_SEMAN`, `TX_TVA_ERR`, `DOUBLON`...) and its text.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReason {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// An amount a status carries (MDG-43: a 212 *Encaissée* states what was
/// cashed, `MEN`, with its VAT rate; BR-FR-CDV-14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusAmount {
    /// The characteristic's type code (MDT-207), `MEN` for the amount cashed.
    pub kind: String,
    pub amount: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat_rate: Option<Decimal>,
}

/// Which codes a partner wants relayed (`[[partner]] statuses`, default all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusFilter {
    /// `None`: every code.
    only: Option<BTreeSet<StatusCode>>,
}

impl StatusFilter {
    /// Every code.
    pub fn all() -> StatusFilter {
        StatusFilter { only: None }
    }
    /// Only these codes.
    pub fn only(codes: impl IntoIterator<Item = StatusCode>) -> StatusFilter {
        StatusFilter {
            only: Some(codes.into_iter().collect()),
        }
    }
    pub fn wants(&self, code: StatusCode) -> bool {
        self.only.as_ref().is_none_or(|o| o.contains(&code))
    }
}

/// Where a status is relayed, as CDAR: the other party of the invoice (its
/// supplier for the platform's and the recipient's statuses, its recipient
/// for the supplier's), its channel and the file name it will see, and
/// which codes it wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRelay {
    pub partner: String,
    pub to: Destination,
    pub file_name: String,
    pub wants: StatusFilter,
}

/// A status to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStatus {
    pub flow: FlowId,
    pub doc_index: i64,
    pub code: StatusCode,
    pub reasons: Vec<StatusReason>,
    pub amounts: Vec<StatusAmount>,
    pub issuer: Issuer,
    /// The partner who sent it (`None` for the platform's own).
    pub from_partner: Option<String>,
    /// The status flow it came in (a partner's CDAR).
    pub inbound_flow: Option<FlowId>,
    /// When its issuer dated it; `None`: now.
    pub at: Option<DateTime<Utc>>,
    /// Its relay to the other party, if any.
    pub relay: Option<StatusRelay>,
}

impl NewStatus {
    /// A status of the platform (201/202/203/213), relayed to the supplier
    /// as `relay` says.
    pub fn platform(
        flow: FlowId,
        doc_index: i64,
        code: StatusCode,
        relay: Option<StatusRelay>,
    ) -> NewStatus {
        NewStatus {
            flow,
            doc_index,
            code,
            reasons: Vec::new(),
            amounts: Vec::new(),
            issuer: Issuer::Platform,
            from_partner: None,
            inbound_flow: None,
            at: None,
            relay,
        }
    }
}

/// What [`Spool::record_status`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedStatus {
    pub id: StatusId,
    /// Its place in the invoice's history (1 for the first after the
    /// implicit 200/213).
    pub seq: i64,
    /// The delivery row of its relay, when one is owed.
    pub relay: Option<i64>,
    /// `false` when it had been recorded before (nothing was written).
    pub new: bool,
}

/// One status of an invoice's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRow {
    /// `None` for the implicit first status (the verdict).
    pub id: Option<StatusId>,
    pub flow_id: FlowId,
    pub doc_index: i64,
    pub seq: i64,
    pub code: StatusCode,
    pub reasons: Vec<StatusReason>,
    pub amounts: Vec<StatusAmount>,
    pub issuer: Issuer,
    pub from_partner: Option<String>,
    pub inbound_flow: Option<FlowId>,
    pub at: DateTime<Utc>,
}

/// Why a status was refused (nothing was written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum StatusRefusal {
    /// No such invoice.
    UnknownInvoice,
    /// The code is not this issuer's to emit (e.g. 212 from a recipient).
    WrongIssuer { code: StatusCode, issuer: Issuer },
    /// The partner who sent it is not the invoice's party for this issuer
    /// (not its recipient, not its supplier; or no recipient is known).
    NotYourInvoice { partner: Option<String> },
    /// The code may not follow the invoice's latest status (205 after 210).
    IllegalTransition {
        latest: Option<StatusCode>,
        next: StatusCode,
    },
    /// The relay was addressed to someone other than the other party.
    WrongRelay { partner: String },
}

impl std::fmt::Display for StatusRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatusRefusal::UnknownInvoice => f.write_str("unknown invoice"),
            StatusRefusal::WrongIssuer { code, issuer } => {
                write!(f, "status {code} is not the {issuer}'s to emit")
            }
            StatusRefusal::NotYourInvoice { .. } => {
                f.write_str("the sender is not this invoice's party for that status")
            }
            StatusRefusal::IllegalTransition { latest, next } => match latest {
                Some(l) => write!(f, "status {next} may not follow {l}"),
                None => write!(f, "status {next} may not be the first"),
            },
            StatusRefusal::WrongRelay { partner } => {
                write!(f, "relay to {partner:?}, who is not the other party")
            }
        }
    }
}

/// The implicit first status of an invoice: its verdict.
pub(crate) fn verdict_status(v: Verdict) -> StatusCode {
    match v {
        Verdict::Accepted => StatusCode::Deposited,
        Verdict::Rejected => StatusCode::Rejected,
    }
}

/// A SIREN (nine digits) an identifier carries: itself, a SIRET's first
/// nine digits, a French VAT number's last nine (a `scheme:` prefix is
/// dropped).
fn siren_of(id: &str) -> Option<&str> {
    let id = id.rsplit(':').next().unwrap_or(id).trim();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match id.len() {
        9 if digits(id) => Some(id),
        14 if digits(id) => Some(&id[..9]),
        13 if id.is_char_boundary(4) && id[..2].eq_ignore_ascii_case("FR") && digits(&id[4..]) => {
            Some(&id[4..])
        }
        _ => None,
    }
}

/// Does the seller identifier a status names designate the stored one?
/// Equal (case and surrounding space aside), or the same SIREN.
pub(crate) fn same_seller(stored: &str, named: &str) -> bool {
    stored.trim().eq_ignore_ascii_case(named.trim())
        || matches!((siren_of(stored), siren_of(named)), (Some(a), Some(b)) if a == b)
}

/// The status history's raw row.
#[derive(sqlx::FromRow)]
pub(crate) struct RawStatus {
    pub(crate) id: i64,
    pub(crate) flow_id: i64,
    pub(crate) doc_index: i64,
    pub(crate) seq: i64,
    pub(crate) code: i32,
    pub(crate) reasons: String,
    pub(crate) amounts: String,
    pub(crate) issuer: String,
    pub(crate) from_partner: Option<String>,
    pub(crate) inbound_flow_id: Option<i64>,
    pub(crate) at: DateTime<Utc>,
}

pub(crate) const STATUS_SELECT: &str = "SELECT id, flow_id, doc_index, seq, code, reasons, \
    amounts, issuer, from_partner, inbound_flow_id, at FROM invoice_statuses";

impl TryFrom<RawStatus> for StatusRow {
    type Error = SpoolError;
    fn try_from(r: RawStatus) -> Result<StatusRow> {
        let corrupt = |what: &str| SpoolError::Corrupt(format!("status {}: {what}", r.id));
        let code = u16::try_from(r.code)
            .ok()
            .and_then(StatusCode::from_code)
            .ok_or_else(|| corrupt(&format!("code {}", r.code)))?;
        Ok(StatusRow {
            id: Some(r.id),
            flow_id: r.flow_id,
            doc_index: r.doc_index,
            seq: r.seq,
            code,
            reasons: serde_json::from_str(&r.reasons).map_err(|e| corrupt(&e.to_string()))?,
            amounts: serde_json::from_str(&r.amounts).map_err(|e| corrupt(&e.to_string()))?,
            issuer: state::parse(&r.issuer)?,
            from_partner: r.from_partner,
            inbound_flow: r.inbound_flow_id,
            at: r.at,
        })
    }
}

impl Spool {
    /// Record one status of an invoice and owe its relay, in one
    /// transaction (see the module doc). Refused statuses are
    /// [`SpoolError::StatusRefused`], and nothing is written.
    pub async fn record_status(&self, status: &NewStatus) -> Result<RecordedStatus> {
        write_step!(self, Durability::Full, sql::record_status(status))
    }

    /// Record a batch of sent deliveries in one transaction: each one's
    /// statuses, then its mark delivered (`delivered.rs`). Per item,
    /// `None` when recorded, `Some(why)` when the spool refused it (that
    /// item is left pending; the others are recorded).
    pub async fn record_delivered_batch(
        &self,
        batch: &[DeliveredItem],
    ) -> Result<Vec<Option<String>>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        write_step!(
            self,
            Durability::Full,
            delivered::record_delivered_batch(batch)
        )
    }

    /// An invoice's history, oldest first, the implicit 200/213 first.
    /// Empty when there is no such invoice.
    pub async fn statuses_of_invoice(
        &self,
        flow: FlowId,
        doc_index: i64,
    ) -> Result<Vec<StatusRow>> {
        let head: Option<(String, String, DateTime<Utc>)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT verdict, CAST(reasons AS TEXT), stored_at FROM invoices \
                 WHERE flow_id = $1 AND doc_index = $2",
            )
            .bind(flow)
            .bind(doc_index)
            .fetch_optional(pool)
            .await?
        });
        let Some((verdict, reasons, stored_at)) = head else {
            return Ok(Vec::new());
        };
        let stored: Vec<crate::Reason> = serde_json::from_str(&reasons)
            .map_err(|e| SpoolError::Corrupt(format!("invoice {flow}/{doc_index}: {e}")))?;
        let mut out = vec![StatusRow {
            id: None,
            flow_id: flow,
            doc_index,
            seq: 0,
            code: verdict_status(state::parse(&verdict)?),
            reasons: stored
                .into_iter()
                .map(|r| StatusReason {
                    code: r.rule,
                    text: Some(r.message),
                })
                .collect(),
            amounts: Vec::new(),
            issuer: Issuer::Platform,
            from_partner: None,
            inbound_flow: None,
            at: stored_at,
        }];
        let raw: Vec<RawStatus> = with_pool!(self, pool => {
            sqlx::query_as(&format!(
                "{STATUS_SELECT} WHERE flow_id = $1 AND doc_index = $2 ORDER BY seq"
            ))
            .bind(flow)
            .bind(doc_index)
            .fetch_all(pool)
            .await?
        });
        out.extend(crate::rows::convert::<_, StatusRow>(raw)?);
        Ok(out)
    }

    /// One recorded status (to render its relay).
    pub async fn status_row(&self, id: StatusId) -> Result<StatusRow> {
        let raw: Option<RawStatus> = with_pool!(self, pool => {
            sqlx::query_as(&format!("{STATUS_SELECT} WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        raw.ok_or_else(|| SpoolError::Corrupt(format!("status {id} not found")))?
            .try_into()
    }

    /// Recorded statuses by id, in one query (the relays of a batch).
    pub async fn status_rows(&self, ids: &[StatusId]) -> Result<Vec<StatusRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let dialect = match &self.inner.backend {
            Backend::Sqlite(_) => steps::Dialect::Sqlite,
            Backend::Postgres(_) => steps::Dialect::Postgres,
        };
        let sql = format!("{STATUS_SELECT} WHERE id {}", dialect.in_json_ids(1));
        let raw: Vec<RawStatus> = with_pool!(self, pool => {
            sqlx::query_as(&sql)
                .bind(steps::json_ids(ids))
                .fetch_all(pool)
                .await?
        });
        crate::rows::convert(raw)
    }

    /// The partner an invoice is delivered to (its recipient), if it was
    /// routed. Read from its invoice delivery row.
    pub async fn recipient_of(&self, flow: FlowId, doc_index: i64) -> Result<Option<String>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar(sql::RECIPIENT_OF)
                .bind(flow)
                .bind(doc_index)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// The accepted invoice a status names: by seller identifier (the
    /// stored one, or one with the same SIREN), invoice number (BT-1) and
    /// issue date (BT-2). `None` when none matches.
    pub async fn find_invoice(
        &self,
        seller: &str,
        number: &str,
        issue_date: NaiveDate,
    ) -> Result<Option<(FlowId, i64)>> {
        use chrono::Datelike;
        let candidates: Vec<(String, i64, i64, Option<NaiveDate>)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT k.seller_id, k.flow_id, k.doc_index, i.issue_date FROM invoice_keys k \
                 JOIN invoices i ON i.flow_id = k.flow_id AND i.doc_index = k.doc_index \
                 WHERE k.number = $1 AND k.year = $2 ORDER BY k.flow_id, k.doc_index",
            )
            .bind(crate::invoices::key_part(number.trim()))
            .bind(issue_date.year())
            .fetch_all(pool)
            .await?
        });
        let exact = candidates
            .iter()
            .find(|c| c.3 == Some(issue_date) && c.0.trim().eq_ignore_ascii_case(seller.trim()));
        Ok(exact
            .or_else(|| {
                candidates
                    .iter()
                    .find(|c| c.3 == Some(issue_date) && same_seller(&c.0, seller))
            })
            .map(|c| (c.1, c.2)))
    }
}

// `Backend` and `steps` are named by the `with_pool!` / `write_step!` expansions.
#[allow(unused_imports)]
use steps as _;
#[allow(unused_imports)]
use Backend as _;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sellers_match_by_siren() {
        assert!(same_seller("FR12732829320", "732829320"));
        assert!(same_seller("73282932000074", "0002:732829320"));
        assert!(same_seller(" acme ", "ACME"));
        assert!(!same_seller("FR12732829320", "732829321"));
        assert!(!same_seller("acme", "other"));
    }

    #[test]
    fn filters() {
        assert!(StatusFilter::all().wants(StatusCode::Issued));
        let f = StatusFilter::only([StatusCode::Refused]);
        assert!(f.wants(StatusCode::Refused) && !f.wants(StatusCode::Issued));
    }
}
