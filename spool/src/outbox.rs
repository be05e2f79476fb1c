//! The notifications outbox: rejected invoices a partner must be told about.
//!
//! `finish_flow` puts one row per rejected invoice of a processed flow into
//! the outbox (a flow processed again keeps its rows, and their
//! `notified_at`). The reject digest job reads [`Spool::pending_rejects`],
//! sends one mail, then calls [`Spool::mark_notified`], which records the
//! digest and marks exactly the rows it listed in one transaction: if the
//! process dies before that commit, the rows are still pending and go out
//! again at the next cycle; after it, they are never sent again.
//!
//! Flows refused whole (IRR_SYNTAX, IRR_TYPE_F, refused entries...) have an
//! outbox of their own, `flow_notifications`, one row per flow, filled by
//! the same steps that fail the flow and marked by the same transaction
//! ([`Spool::mark_digest`]).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::durability::Durability;
use crate::rows;
use crate::{steps, Backend, FlowId, Reason, Result, Spool};

/// One rejected invoice waiting to be notified.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RejectRow {
    /// Outbox row id (what [`Spool::mark_notified`] takes).
    pub id: i64,
    pub partner: String,
    pub flow_id: FlowId,
    pub original_name: String,
    pub received_at: DateTime<Utc>,
    pub doc_index: i64,
    pub entry: String,
    pub number: Option<String>,
    pub issue_date: Option<NaiveDate>,
    pub currency: Option<String>,
    pub total_with_vat: Option<Decimal>,
    pub reasons: Vec<Reason>,
}

#[derive(sqlx::FromRow)]
struct RawReject {
    id: i64,
    partner: String,
    flow_id: i64,
    original_name: String,
    received_at: DateTime<Utc>,
    doc_index: i64,
    entry: String,
    number: Option<String>,
    issue_date: Option<NaiveDate>,
    currency: Option<String>,
    total_with_vat: Option<String>,
    reasons: String,
}

/// One flow refused whole waiting to be notified.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct FailedFlowRow {
    /// Outbox row id (what [`Spool::mark_digest`] takes).
    pub id: i64,
    pub partner: String,
    pub flow_id: FlowId,
    pub original_name: String,
    pub received_at: DateTime<Utc>,
    /// The IRR_* reason.
    pub code: String,
    pub message: String,
}

pub use crate::digest_row::NewDigest;

const SELECT: &str =
    "SELECT n.id, n.partner, n.flow_id, f.original_name, f.received_at, n.doc_index, \
    i.entry, i.number, i.issue_date, i.currency, CAST(i.total_with_vat AS TEXT) AS total_with_vat, \
    CAST(i.reasons AS TEXT) AS reasons \
    FROM notifications n JOIN invoices i ON i.flow_id = n.flow_id AND i.doc_index = n.doc_index \
    JOIN flows f ON f.id = n.flow_id";

impl Spool {
    /// Partners with rejected invoices or refused flows not yet notified.
    pub async fn partners_with_pending_rejects(&self) -> Result<Vec<String>> {
        with_pool!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT partner FROM notifications WHERE notified_at IS NULL \
                 UNION SELECT partner FROM flow_notifications WHERE notified_at IS NULL ORDER BY partner",
            )
            .fetch_all(pool)
            .await?)
        })
    }

    /// Rejected invoices of a partner not yet notified, by flow and document.
    pub async fn pending_rejects(&self, partner: &str) -> Result<Vec<RejectRow>> {
        let raw: Vec<RawReject> = with_pool!(self, pool => {
            sqlx::query_as(&format!(
                "{SELECT} WHERE n.partner = $1 AND n.notified_at IS NULL ORDER BY n.flow_id, n.doc_index"
            ))
            .bind(partner)
            .fetch_all(pool)
            .await?
        });
        raw.into_iter()
            .map(|r| {
                Ok(RejectRow {
                    id: r.id,
                    partner: r.partner,
                    flow_id: r.flow_id,
                    original_name: r.original_name,
                    received_at: r.received_at,
                    doc_index: r.doc_index,
                    entry: r.entry,
                    number: r.number,
                    issue_date: r.issue_date,
                    currency: r.currency,
                    total_with_vat: rows::parse_decimal(r.total_with_vat)?,
                    reasons: rows::parse_reasons(&r.reasons)?,
                })
            })
            .collect()
    }

    /// Flows of a partner refused whole and not yet notified, by flow.
    pub async fn pending_failed_flows(&self, partner: &str) -> Result<Vec<FailedFlowRow>> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT n.id, n.partner, n.flow_id, f.original_name, f.received_at, \
                 COALESCE(f.failure_code, '') AS code, COALESCE(f.failure_message, '') AS message \
                 FROM flow_notifications n JOIN flows f ON f.id = n.flow_id \
                 WHERE n.partner = $1 AND n.notified_at IS NULL ORDER BY n.flow_id",
            )
            .bind(partner)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Record a sent digest and mark the listed outbox rows notified, in one
    /// transaction. Rows already notified are left alone (never notified
    /// twice); returns the digest id and how many rows it marked.
    pub async fn mark_notified(&self, ids: &[i64], digest: &NewDigest) -> Result<(i64, u64)> {
        self.mark_digest(ids, &[], digest).await
    }

    /// [`Spool::mark_notified`] for a digest listing rejected invoices
    /// (`ids`, from [`Spool::pending_rejects`]) and refused flows
    /// (`flow_ids`, from [`Spool::pending_failed_flows`]); the count returned
    /// is of both.
    pub async fn mark_digest(
        &self,
        ids: &[i64],
        flow_ids: &[i64],
        digest: &NewDigest,
    ) -> Result<(i64, u64)> {
        write_step!(self, Durability::Full, mark_notified(ids, flow_ids, digest))
    }
}
