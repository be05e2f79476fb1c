//! Read-only lookups of the command line: is a partner known, which flows
//! hold an invoice number, what a purge would remove. Each query is plain
//! SQL valid on both backends and changes nothing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Backend, FlowId, Result, Spool};

/// What a purge would remove now (`quai purge --dry-run`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PurgePreview {
    pub flows: u64,
    pub invoices: u64,
    /// Flows `In` of the partner API ([`Spool::purge_inbox`]).
    pub inbox_flows: u64,
}

/// The flows a purge takes: the same condition as [`Spool::purge`].
const CANDIDATES: &str = "FROM flows f \
    WHERE f.state IN ('processed', 'failed', 'duplicate') AND f.updated_at < $1 \
    AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.flow_id = f.id AND d.state = 'pending') \
    AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.flow_id = f.id AND n.notified_at IS NULL) \
    AND NOT EXISTS (SELECT 1 FROM flow_notifications n WHERE n.flow_id = f.id AND n.notified_at IS NULL)";

impl Spool {
    /// Every partner the spool knows (configured or seen), sorted.
    pub async fn partner_ids(&self) -> Result<Vec<String>> {
        with_pool!(self, pool => {
            Ok(sqlx::query_scalar("SELECT id FROM partners ORDER BY id")
                .fetch_all(pool)
                .await?)
        })
    }

    /// The flows holding an invoice numbered `number` (newest first).
    pub async fn flows_with_invoice_number(&self, number: &str) -> Result<Vec<FlowId>> {
        with_pool!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT DISTINCT flow_id FROM invoices WHERE number = $1 ORDER BY flow_id DESC",
            )
            .bind(number)
            .fetch_all(pool)
            .await?)
        })
    }

    /// What [`Spool::purge`] with this cut-off would remove, removing nothing.
    pub async fn purge_preview(&self, older_than: DateTime<Utc>) -> Result<PurgePreview> {
        with_pool!(self, pool => {
            let flows: i64 = sqlx::query_scalar(&format!("SELECT count(*) {CANDIDATES}"))
                .bind(older_than)
                .fetch_one(pool)
                .await?;
            let invoices: i64 = sqlx::query_scalar(&format!(
                "SELECT count(*) FROM invoices WHERE flow_id IN (SELECT f.id {CANDIDATES})"
            ))
            .bind(older_than)
            .fetch_one(pool)
            .await?;
            Ok(PurgePreview {
                flows: flows.max(0) as u64,
                invoices: invoices.max(0) as u64,
                inbox_flows: self.purgeable_inbox_flows(older_than).await?,
            })
        })
    }
}
