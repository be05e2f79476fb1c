//! Retention: `quai purge`.
//!
//! Only flows in a terminal state (`processed`, `failed`, `duplicate`) whose
//! last change is older than the cut-off are removed, and never one with
//! work still hanging off it (a delivery pending, a reject not
//! yet notified). Their invoices, acknowledgements, deliveries and outbox rows go with
//! them (foreign keys cascade), their invoice keys are deleted explicitly,
//! and their history is replaced by one
//! `purged` event each. The raw files are not touched here: the report lists
//! the SHA-256 of the purged flows that no remaining flow references, and the
//! caller deletes those from the store after the commit.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::state::FLOW;
use crate::{Backend, Result, Spool, SpoolError};

/// What a purge removed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PurgeReport {
    pub flows: u64,
    pub invoices: u64,
    /// Raw files (by SHA-256) no remaining flow refers to: delete them.
    pub unreferenced_raw: Vec<String>,
}

const CANDIDATES: &str = "SELECT f.id, f.sha256, f.state FROM flows f \
    WHERE f.state IN ('processed', 'failed', 'duplicate') AND f.updated_at < $1 \
    AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.flow_id = f.id AND d.state = 'pending') \
    AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.flow_id = f.id AND n.notified_at IS NULL) \
    AND NOT EXISTS (SELECT 1 FROM flow_notifications n WHERE n.flow_id = f.id AND n.notified_at IS NULL)";

impl Spool {
    /// Remove terminal flows last changed before `older_than` (see the module
    /// doc). One transaction.
    pub async fn purge(&self, older_than: DateTime<Utc>) -> Result<PurgeReport> {
        let me = self.instance().to_owned();
        let reason = format!("retention: last change before {}", older_than.to_rfc3339());
        match &self.inner.backend {
            Backend::Sqlite(b) => {
                let now = Utc::now();
                let mut tx = b
                    .pool
                    .begin_with(crate::sqlite::Durability::Full.begin())
                    .await?;
                let result = async {
                    let found: Vec<(i64, String, String)> = sqlx::query_as(CANDIDATES)
                        .bind(older_than)
                        .fetch_all(&mut *tx)
                        .await?;
                    if found.is_empty() {
                        return Ok(PurgeReport::default());
                    }
                    let ids = serde_json::to_string(&found.iter().map(|f| f.0).collect::<Vec<_>>())
                        .unwrap_or_else(|_| "[]".into());
                    const IDS: &str = "(SELECT value FROM json_each($1))";
                    let invoices: i64 = sqlx::query_scalar(&format!(
                        "SELECT count(*) FROM invoices WHERE flow_id IN {IDS}"
                    ))
                    .bind(&ids)
                    .fetch_one(&mut *tx)
                    .await?;
                    sqlx::query(&format!(
                        "DELETE FROM events WHERE (entity = 'flow' AND entity_id IN {IDS}) OR (entity = 'ack' \
                         AND entity_id IN (SELECT id FROM acknowledgements WHERE flow_id IN {IDS})) \
                         OR (entity = 'delivery' AND entity_id IN (SELECT id FROM deliveries WHERE flow_id IN {IDS})) \
                         OR (entity = 'status' AND entity_id IN (SELECT id FROM invoice_statuses WHERE flow_id IN {IDS}))"
                    ))
                    .bind(&ids)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(&format!("DELETE FROM invoice_keys WHERE flow_id IN {IDS}"))
                        .bind(&ids)
                        .execute(&mut *tx)
                        .await?;
                    let flows = sqlx::query(&format!("DELETE FROM flows WHERE id IN {IDS}"))
                        .bind(&ids)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    for (id, _, state) in &found {
                        sqlx::query(
                            "INSERT INTO events (at, instance, entity, entity_id, from_state, to_state, reason) \
                             VALUES ($1, $2, $3, $4, $5, 'purged', $6)",
                        )
                        .bind(now)
                        .bind(&me)
                        .bind(FLOW)
                        .bind(id)
                        .bind(state)
                        .bind(&reason)
                        .execute(&mut *tx)
                        .await?;
                    }
                    let shas = serde_json::to_string(&found.iter().map(|f| &f.1).collect::<Vec<_>>())
                        .unwrap_or_else(|_| "[]".into());
                    let unreferenced_raw: Vec<String> = sqlx::query_scalar(
                        "SELECT DISTINCT value FROM json_each($1) \
                         WHERE NOT EXISTS (SELECT 1 FROM flows WHERE sha256 = value) ORDER BY value",
                    )
                    .bind(&shas)
                    .fetch_all(&mut *tx)
                    .await?;
                    Ok::<_, SpoolError>(PurgeReport {
                        flows,
                        invoices: invoices as u64,
                        unreferenced_raw,
                    })
                }
                .await;
                crate::settle(tx, result).await
            }
            Backend::Postgres(b) => {
                let mut tx = b.pool.begin().await?;
                let result = async {
                    let found: Vec<(i64, String, String)> =
                        sqlx::query_as(&format!("{CANDIDATES} FOR UPDATE"))
                            .bind(older_than)
                            .fetch_all(&mut *tx)
                            .await?;
                    if found.is_empty() {
                        return Ok(PurgeReport::default());
                    }
                    let ids: Vec<i64> = found.iter().map(|f| f.0).collect();
                    let states: Vec<&str> = found.iter().map(|f| f.2.as_str()).collect();
                    let shas: Vec<&str> = found.iter().map(|f| f.1.as_str()).collect();
                    let invoices: i64 =
                        sqlx::query_scalar("SELECT count(*) FROM invoices WHERE flow_id = ANY($1)")
                            .bind(&ids)
                            .fetch_one(&mut *tx)
                            .await?;
                    sqlx::query(
                        "DELETE FROM events WHERE (entity = 'flow' AND entity_id = ANY($1)) OR (entity = 'ack' \
                         AND entity_id IN (SELECT id FROM acknowledgements WHERE flow_id = ANY($1))) \
                         OR (entity = 'delivery' AND entity_id IN (SELECT id FROM deliveries WHERE flow_id = ANY($1))) \
                         OR (entity = 'status' AND entity_id IN (SELECT id FROM invoice_statuses WHERE flow_id = ANY($1)))",
                    )
                    .bind(&ids)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM invoice_keys WHERE flow_id = ANY($1)")
                        .bind(&ids)
                        .execute(&mut *tx)
                        .await?;
                    let flows = sqlx::query("DELETE FROM flows WHERE id = ANY($1)")
                        .bind(&ids)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    sqlx::query(
                        "INSERT INTO events (at, instance, entity, entity_id, from_state, to_state, reason) \
                         SELECT now(), $1, $2, t.id, t.state, 'purged', $3 \
                         FROM UNNEST($4::bigint[], $5::text[]) AS t(id, state)",
                    )
                    .bind(&me)
                    .bind(FLOW)
                    .bind(&reason)
                    .bind(&ids)
                    .bind(&states)
                    .execute(&mut *tx)
                    .await?;
                    let unreferenced_raw: Vec<String> = sqlx::query_scalar(
                        "SELECT DISTINCT s FROM UNNEST($1::text[]) AS t(s) \
                         WHERE NOT EXISTS (SELECT 1 FROM flows WHERE sha256 = t.s) ORDER BY s",
                    )
                    .bind(&shas)
                    .fetch_all(&mut *tx)
                    .await?;
                    Ok::<_, SpoolError>(PurgeReport {
                        flows,
                        invoices: invoices as u64,
                        unreferenced_raw,
                    })
                }
                .await;
                crate::settle(tx, result).await
            }
        }
    }
}
