//! Queries for operations: event history, unfinished work, lookups, the
//! files seen at the edge (sightings) and the counts reconciliation compares.
//! The SQL is valid on both backends, so each query is written once and run
//! on whichever pool the spool uses.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::invoices::clean_text;
use crate::rows::{self, RawAck, RawFlow, RawInvoice};
use crate::state;
use crate::{
    AckRow, Backend, FlowFilter, FlowId, FlowRow, FlowState, InvoiceRow, Origin, Result, Spool,
    SpoolError, StatusSummary,
};

/// One entry of the append-only history.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub instance: String,
    /// `flow`, `ack`, `notification`
    pub entity: String,
    pub entity_id: i64,
    /// None when the entity was created
    pub from_state: Option<String>,
    pub to_state: String,
    pub reason: Option<String>,
}

/// What the spool knows about one partner for a period (flows received in
/// `[from, to)`, and everything that hangs off them).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PeriodCounts {
    pub partner: String,
    /// flows by state, duplicates included (`received`, `processing`,
    /// `processed`, `failed`, `duplicate`)
    pub flows: BTreeMap<String, i64>,
    /// invoices by verdict (`accepted`, `rejected`: always both)
    pub invoices: BTreeMap<String, i64>,
    /// rejected invoices in the outbox (`notified`, `pending`: always both)
    pub rejects: BTreeMap<String, i64>,
    /// acknowledgements (`delivered`, `pending`: always both)
    pub acks: BTreeMap<String, i64>,
    /// files first seen at the edge in the period (`ingested`,
    /// `not_ingested`: always both), see [`Spool::record_sighting`]
    pub files: BTreeMap<String, i64>,
}

/// A file seen at the edge (drop-zone scan, SFTP listing, AS2 request).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sighting {
    pub id: i64,
    pub partner: String,
    pub origin: Origin,
    pub name: String,
    pub size: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub times_seen: i32,
}

#[derive(sqlx::FromRow)]
struct RawSighting {
    id: i64,
    partner: String,
    origin: String,
    name: String,
    size: i64,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    times_seen: i32,
}

/// A sighting matches a flow with the same partner, origin, name and size.
const NOT_INGESTED: &str = "NOT EXISTS (SELECT 1 FROM flows f WHERE f.partner = s.partner \
    AND f.origin = s.origin AND f.original_name = s.name AND f.size = s.size)";

impl PeriodCounts {
    fn new(partner: String) -> PeriodCounts {
        let two = |a: &str, b: &str| BTreeMap::from([(a.to_owned(), 0), (b.to_owned(), 0)]);
        PeriodCounts {
            partner,
            flows: BTreeMap::new(),
            invoices: two("accepted", "rejected"),
            rejects: two("notified", "pending"),
            acks: two("delivered", "pending"),
            files: two("ingested", "not_ingested"),
        }
    }
}

type Grouped = Vec<(String, String, i64)>;

impl Spool {
    /// History of a flow, its acknowledgements and its other deliveries,
    /// oldest first.
    pub async fn flow_events(&self, flow: FlowId) -> Result<Vec<EventRow>> {
        with_pool!(self, pool => {
            Ok(sqlx::query_as(
                "SELECT id, at, instance, entity, entity_id, from_state, to_state, reason FROM events \
                 WHERE (entity = 'flow' AND entity_id = $1) OR (entity = 'ack' AND entity_id IN \
                 (SELECT id FROM acknowledgements WHERE flow_id = $1)) OR (entity = 'delivery' AND \
                 entity_id IN (SELECT id FROM deliveries WHERE flow_id = $1 AND ack_id IS NULL)) ORDER BY id",
            )
            .bind(flow)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Flows not yet in a terminal state (`received`, `processing`), oldest
    /// first; with `received_before`, only those received before it (stuck).
    pub async fn unfinished_flows(
        &self,
        received_before: Option<DateTime<Utc>>,
    ) -> Result<Vec<FlowRow>> {
        with_pool!(self, pool => {
            let raw: Vec<RawFlow> = sqlx::query_as(&format!(
                "{} WHERE f.state IN ('received', 'processing') AND ($1 IS NULL OR f.received_at < $1) \
                 ORDER BY f.received_at, f.id",
                rows::FLOW_SELECT
            ))
            .bind(received_before)
            .fetch_all(pool)
            .await?;
            rows::convert(raw)
        })
    }

    /// The oldest flow not yet in a terminal state (for alerts and metrics).
    pub async fn oldest_unfinished(&self) -> Result<Option<FlowRow>> {
        with_pool!(self, pool => {
            let raw: Option<RawFlow> = sqlx::query_as(&format!(
                "{} WHERE f.state IN ('received', 'processing') ORDER BY f.received_at, f.id LIMIT 1",
                rows::FLOW_SELECT
            ))
            .fetch_optional(pool)
            .await?;
            raw.map(FlowRow::try_from).transpose()
        })
    }

    /// The (non-duplicate) flow registered for these bytes from this partner,
    /// if any: reconciliation uses it to find files seen but never ingested.
    pub async fn flow_by_hash(&self, partner: &str, sha256: &str) -> Result<Option<FlowRow>> {
        with_pool!(self, pool => {
            let raw: Option<RawFlow> = sqlx::query_as(&format!(
                "{} WHERE f.partner = $1 AND f.sha256 = $2 AND f.state <> 'duplicate'",
                rows::FLOW_SELECT
            ))
            .bind(partner)
            .bind(sha256)
            .fetch_optional(pool)
            .await?;
            raw.map(FlowRow::try_from).transpose()
        })
    }

    /// Per-partner counts for flows received in `[from, to)`: flows by state,
    /// their invoices by verdict, their rejects notified or pending, their
    /// acknowledgements delivered or pending. Every known partner is listed.
    pub async fn period_counts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<PeriodCounts>> {
        const PERIOD: &str = "f.received_at >= $1 AND f.received_at < $2";
        let q = [
            format!("SELECT f.partner, f.state, count(*) FROM flows f WHERE {PERIOD} GROUP BY f.partner, f.state"),
            format!(
                "SELECT f.partner, i.verdict, count(*) FROM invoices i JOIN flows f ON f.id = i.flow_id \
                 WHERE {PERIOD} GROUP BY f.partner, i.verdict"
            ),
            format!(
                "SELECT f.partner, CASE WHEN n.notified_at IS NULL THEN 'pending' ELSE 'notified' END AS s, \
                 count(*) FROM notifications n JOIN flows f ON f.id = n.flow_id WHERE {PERIOD} \
                 GROUP BY f.partner, s"
            ),
            format!(
                "SELECT f.partner, d.state, count(*) FROM acknowledgements a \
                 JOIN deliveries d ON d.ack_id = a.id JOIN flows f ON f.id = a.flow_id WHERE {PERIOD} \
                 GROUP BY f.partner, d.state"
            ),
            format!(
                "SELECT s.partner, CASE WHEN {NOT_INGESTED} THEN 'not_ingested' ELSE 'ingested' END AS k, \
                 count(*) FROM sightings s WHERE s.first_seen >= $1 AND s.first_seen < $2 \
                 GROUP BY s.partner, k"
            ),
        ];
        let mut out: Vec<Grouped> = Vec::with_capacity(q.len());
        let partners: Vec<String> = with_pool!(self, pool => {
            for sql in &q {
                out.push(sqlx::query_as(sql).bind(from).bind(to).fetch_all(pool).await?);
            }
            sqlx::query_scalar("SELECT id FROM partners ORDER BY id").fetch_all(pool).await?
        });
        let mut per: BTreeMap<String, PeriodCounts> = partners
            .into_iter()
            .map(|p| (p.clone(), PeriodCounts::new(p)))
            .collect();
        for (n, rows) in out.into_iter().enumerate() {
            for (partner, key, count) in rows {
                let c = per
                    .entry(partner.clone())
                    .or_insert_with(|| PeriodCounts::new(partner));
                let map = match n {
                    0 => &mut c.flows,
                    1 => &mut c.invoices,
                    2 => &mut c.rejects,
                    3 => &mut c.acks,
                    _ => &mut c.files,
                };
                *map.entry(key).or_default() += count;
            }
        }
        Ok(per.into_values().collect())
    }
}

impl Spool {
    /// Record that a file was seen at the edge (before any attempt to take
    /// it). Seen again: `last_seen` and `times_seen` are updated.
    pub async fn record_sighting(
        &self,
        partner: &str,
        origin: Origin,
        name: &str,
        size: i64,
    ) -> Result<()> {
        let now = Utc::now();
        let name = clean_text(name);
        let partner = clean_text(partner);
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO sightings (partner, origin, name, size, first_seen, last_seen) \
                 VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (partner, origin, name, size) DO UPDATE \
                 SET last_seen = excluded.last_seen, times_seen = sightings.times_seen + 1",
            )
            .bind(partner.as_ref())
            .bind(origin.as_str())
            .bind(name.as_ref())
            .bind(size)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Files first seen in `[from, to)` for which no flow was registered
    /// (same partner, origin, name and size), oldest first.
    pub async fn sightings_not_ingested(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Sighting>> {
        let raw: Vec<RawSighting> = with_pool!(self, pool => {
            sqlx::query_as(&format!(
                "SELECT s.id, s.partner, s.origin, s.name, s.size, s.first_seen, s.last_seen, s.times_seen \
                 FROM sightings s WHERE s.first_seen >= $1 AND s.first_seen < $2 AND {NOT_INGESTED} \
                 ORDER BY s.first_seen, s.id"
            ))
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?
        });
        raw.into_iter()
            .map(|r| {
                Ok(Sighting {
                    id: r.id,
                    partner: r.partner,
                    origin: state::parse::<Origin>(&r.origin)?,
                    name: r.name,
                    size: r.size,
                    first_seen: r.first_seen,
                    last_seen: r.last_seen,
                    times_seen: r.times_seen,
                })
            })
            .collect()
    }
}

// The reads of the flow-lifecycle API (same SQL on both backends).
impl Spool {
    pub(crate) async fn pending_acks_shared(&self, limit: i64) -> Result<Vec<AckRow>> {
        with_pool!(self, pool => {
        let rows: Vec<RawAck> = sqlx::query_as(&format!(
            "{} WHERE d.state = 'pending' ORDER BY a.generated_at, a.id LIMIT $1",
            rows::ACK_SELECT
        ))
        .bind(limit)
        .fetch_all(pool)
        .await?;
        rows::convert(rows)
        })
    }

    pub(crate) async fn acks_of_flow_shared(&self, flow: FlowId) -> Result<Vec<AckRow>> {
        with_pool!(self, pool => {
        let rows: Vec<RawAck> = sqlx::query_as(&format!(
            "{} WHERE a.flow_id = $1 ORDER BY a.id",
            rows::ACK_SELECT
        ))
        .bind(flow)
        .fetch_all(pool)
        .await?;
        rows::convert(rows)
        })
    }

    pub(crate) async fn status_shared(&self) -> Result<StatusSummary> {
        with_pool!(self, pool => {
        let partners: Vec<String> = sqlx::query_scalar("SELECT id FROM partners ORDER BY id")
            .fetch_all(pool)
            .await?;
        let flows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT partner, state, count(*) FROM flows GROUP BY partner, state")
                .fetch_all(pool)
                .await?;
        let invoices: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT f.partner, i.verdict, count(*) FROM invoices i JOIN flows f ON f.id = i.flow_id \
             GROUP BY f.partner, i.verdict",
        )
        .fetch_all(pool)
        .await?;
        Ok(rows::build_status(partners, flows, invoices))
        })
    }

    pub(crate) async fn list_flows_shared(&self, filter: &FlowFilter) -> Result<Vec<FlowRow>> {
        with_pool!(self, pool => {
        let rows: Vec<RawFlow> = sqlx::query_as(&format!(
            "{} WHERE ($1 IS NULL OR f.partner = $1) AND ($2 IS NULL OR f.state = $2) \
             AND ($3 IS NULL OR f.received_at >= $3) ORDER BY f.received_at DESC, f.id DESC LIMIT $4",
            rows::FLOW_SELECT
        ))
        .bind(filter.partner.as_deref())
        .bind(filter.state.map(FlowState::as_str))
        .bind(filter.since)
        .bind(filter.limit.unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await?;
        rows::convert(rows)
        })
    }

    pub(crate) async fn flow_shared(&self, flow: FlowId) -> Result<FlowRow> {
        with_pool!(self, pool => {
        let row: Option<RawFlow> =
            sqlx::query_as(&format!("{} WHERE f.id = $1", rows::FLOW_SELECT))
                .bind(flow)
                .fetch_optional(pool)
                .await?;
        row.ok_or(SpoolError::FlowNotFound(flow))?.try_into()
        })
    }

    pub(crate) async fn invoices_of_flow_shared(&self, flow: FlowId) -> Result<Vec<InvoiceRow>> {
        with_pool!(self, pool => {
        let rows: Vec<RawInvoice> = sqlx::query_as(&format!(
            "{} WHERE i.flow_id = $1 ORDER BY i.doc_index",
            rows::INVOICE_SELECT
        ))
        .bind(flow)
        .fetch_all(pool)
        .await?;
        rows::convert(rows)
        })
    }

    pub(crate) async fn invoices_of_flow_page_shared(
        &self,
        flow: FlowId,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<InvoiceRow>> {
        let after = after.unwrap_or(i64::MIN);
        let limit = limit.max(1);
        match &self.inner.backend {
            // sqlx hands SQLite rows from its worker thread one at a time;
            // for a page of a thousand invoices that is a thousand thread
            // wake-ups. The page comes back as one JSON array instead.
            Backend::Sqlite(b) => {
                let page: Option<String> = sqlx::query_scalar(
                    "SELECT json_group_array(json_object('id', i.id, 'flow_id', i.flow_id, \
                     'doc_index', i.doc_index, 'entry', i.entry, 'syntax', i.syntax, \
                     'profile', i.profile, 'seller_id', i.seller_id, 'number', i.number, \
                     'issue_date', i.issue_date, 'type_code', i.type_code, 'currency', i.currency, \
                     'total_with_vat', CAST(i.total_with_vat AS TEXT), 'verdict', i.verdict, \
                     'reasons', CAST(i.reasons AS TEXT))) \
                     FROM (SELECT * FROM invoices WHERE flow_id = $1 AND doc_index > $2 \
                     ORDER BY doc_index LIMIT $3) i",
                )
                .bind(flow)
                .bind(after)
                .bind(limit)
                .fetch_one(&b.pool)
                .await?;
                let mut raw: Vec<RawInvoice> =
                    serde_json::from_str(page.as_deref().unwrap_or("[]")).map_err(|e| {
                        SpoolError::Corrupt(format!("invoice page of flow {flow}: {e}"))
                    })?;
                raw.sort_by_key(|r| r.doc_index);
                rows::convert(raw)
            }
            Backend::Postgres(b) => {
                let rows: Vec<RawInvoice> = sqlx::query_as(&format!(
                    "{} WHERE i.flow_id = $1 AND i.doc_index > $2 ORDER BY i.doc_index LIMIT $3",
                    rows::INVOICE_SELECT
                ))
                .bind(flow)
                .bind(after)
                .bind(limit)
                .fetch_all(&b.pool)
                .await?;
                rows::convert(rows)
            }
        }
    }

    pub(crate) async fn canonical_invoice_reader_shared(
        &self,
        flow: FlowId,
        doc_index: i64,
    ) -> Result<Option<crate::CanonicalJson>> {
        with_pool!(self, pool => {
        let row: Option<(Option<String>, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT canonical, canonical_z FROM invoices WHERE flow_id = $1 AND doc_index = $2",
        )
        .bind(flow)
        .bind(doc_index)
        .fetch_optional(pool)
        .await?;
        match row {
            Some((_, Some(frame))) => Ok(Some(rows::canonical::reader(frame)?)),
            Some((Some(text), None)) => Ok(Some(crate::CanonicalJson {
                len: text.len() as u64,
                reader: Box::new(std::io::Cursor::new(text.into_bytes())),
            })),
            _ => Ok(None),
        }
        })
    }

    pub(crate) async fn canonical_invoice_shared(
        &self,
        flow: FlowId,
        doc_index: i64,
    ) -> Result<Option<String>> {
        with_pool!(self, pool => {
        let row: Option<(Option<String>, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT canonical, canonical_z FROM invoices WHERE flow_id = $1 AND doc_index = $2",
        )
        .bind(flow)
        .bind(doc_index)
        .fetch_optional(pool)
        .await?;
        match row {
            Some((_, Some(frame))) => Ok(Some(rows::canonical::decompress(&frame)?)),
            Some((text, None)) => Ok(text),
            None => Ok(None),
        }
        })
    }
}
