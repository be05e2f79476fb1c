//! The exchange in the spool (issue 15): routed invoices, their recipients
//! and their deliveries.
//!
//! An accepted invoice is routed when its flow finishes: in the same
//! transaction as the flow's state and acknowledgements
//! ([`Spool::finish_flow_routed`]), its `recipient` column is set and its
//! delivery row is owed (item `invoice`, one per invoice and recipient, so
//! processing a flow again owes nothing twice). Nothing is owed before that
//! commit. The rest are the reads the operator views share: one invoice's
//! route and deliveries, listings by partner, per-recipient counts and the
//! reconciliation's findings.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::delivery_rows::{RawDelivery, DELIVERY_SELECT};
use crate::durability::Durability;
use crate::steps;
use crate::{
    AckId, Backend, DeliveryRow, FlowId, FlowOutcome, NewAck, NewInvoiceDelivery, Result, Spool,
};

/// One invoice as the exchange views list it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ExchangedInvoice {
    pub flow_id: FlowId,
    pub doc_index: i64,
    /// The partner that sent it (the flow's).
    pub supplier: String,
    /// The partner it is routed to (None: rejected, or not routed).
    pub recipient: Option<String>,
    pub seller_id: Option<String>,
    pub number: Option<String>,
    pub issue_date: Option<NaiveDate>,
    /// `accepted` or `rejected`.
    pub verdict: String,
    pub stored_at: DateTime<Utc>,
}

/// Filter of [`Spool::exchanged_invoices`].
#[derive(Debug, Clone, Default)]
pub struct ExchangeFilter {
    /// Invoices this partner sent or receives.
    pub partner: Option<String>,
    /// Stored at or after.
    pub since: Option<DateTime<Utc>>,
    /// Only invoices whose history holds this status code (200 and 213:
    /// the verdict, the implicit first status; others: a recorded status).
    pub status: Option<u16>,
    pub limit: Option<i64>,
}

/// Per recipient: what the exchange did for it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientCounts {
    pub partner: String,
    /// Accepted invoices routed to it.
    pub routed: i64,
    /// Delivered to its channel.
    pub delivered: i64,
    /// Owed, not delivered yet.
    pub awaiting_delivery: i64,
    /// Invoices whose latest status from the buyer is 210 Refusée.
    pub refused_by_buyer: i64,
}

const EXCHANGED_SELECT: &str =
    "SELECT i.flow_id, i.doc_index, f.partner AS supplier, i.recipient, \
    i.seller_id, i.number, i.issue_date, i.verdict, i.stored_at \
    FROM invoices i JOIN flows f ON f.id = i.flow_id";

impl Spool {
    /// Finish a claimed flow ([`Spool::finish_flow_owing`]) and, when it
    /// is processed, route its accepted invoices in the same transaction:
    /// each `owed` entry sets the invoice's recipient and owes its
    /// delivery (invoices that are no longer accepted are skipped).
    pub async fn finish_flow_routed(
        &self,
        flow: FlowId,
        outcome: &FlowOutcome,
        documents: i64,
        acks: &[NewAck],
        owed: &[NewInvoiceDelivery],
    ) -> Result<Vec<AckId>> {
        write_step!(
            self,
            Durability::Full,
            finish_flow_routed(flow, outcome, documents, steps::Acks::Typed(acks), owed)
        )
    }

    /// Who holds live leases on pending deliveries (instance names).
    pub async fn delivery_lease_owners(&self) -> Result<Vec<String>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT DISTINCT lease_owner FROM deliveries WHERE state = 'pending' \
                 AND lease_owner IS NOT NULL AND lease_expires_at > $1 ORDER BY lease_owner",
            )
            .bind(Utc::now())
            .fetch_all(pool)
            .await?
        }))
    }

    /// Release the delivery leases `owner` holds (an instance known to be
    /// dead: its rows are claimable at once rather than when its lease
    /// expires). Returns how many rows were released.
    pub async fn release_delivery_leases(&self, owner: &str) -> Result<u64> {
        let _writer = match &self.inner.backend {
            Backend::Sqlite(b) => Some(b.writer.lock().await),
            Backend::Postgres(_) => None,
        };
        Ok(with_pool!(self, pool => {
            sqlx::query(
                "UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL \
                 WHERE state = 'pending' AND lease_owner = $1",
            )
            .bind(owner)
            .execute(pool)
            .await?
            .rows_affected()
        }))
    }

    /// How many statuses with this code the histories hold (the exchange
    /// benchmark waits for every 203).
    pub async fn status_count(&self, code: u16) -> Result<i64> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar("SELECT count(*) FROM invoice_statuses WHERE code = $1")
                .bind(i32::from(code))
                .fetch_one(pool)
                .await?
        }))
    }

    /// One invoice as [`ExchangedInvoice`].
    pub async fn exchanged_invoice(
        &self,
        flow: FlowId,
        doc_index: i64,
    ) -> Result<Option<ExchangedInvoice>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as(&format!("{EXCHANGED_SELECT} WHERE i.flow_id = $1 AND i.doc_index = $2"))
                .bind(flow)
                .bind(doc_index)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// The invoices numbered `number` by the seller `seller` (the seller key
    /// as stored: VAT id, else legal id..., compared in upper case), oldest
    /// first.
    pub async fn find_invoices(&self, number: &str, seller: &str) -> Result<Vec<ExchangedInvoice>> {
        let seller = seller.trim().to_ascii_uppercase();
        Ok(with_pool!(self, pool => {
            sqlx::query_as(&format!(
                "{EXCHANGED_SELECT} WHERE i.number = $1 AND i.seller_id = $2 ORDER BY i.flow_id, i.doc_index LIMIT 100"
            ))
            .bind(number)
            .bind(&seller)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Invoices a partner sent or receives, newest first.
    pub async fn exchanged_invoices(
        &self,
        filter: &ExchangeFilter,
    ) -> Result<Vec<ExchangedInvoice>> {
        let mut sql = format!("{EXCHANGED_SELECT} WHERE 1 = 1");
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        let partner_at = filter.partner.as_ref().map(|_| next());
        if let Some(p) = partner_at {
            sql.push_str(&format!(" AND (i.recipient = ${p} OR f.partner = ${p})"));
        }
        let since_at = filter.since.map(|_| next());
        if let Some(s) = since_at {
            sql.push_str(&format!(" AND i.stored_at >= ${s}"));
        }
        match filter.status {
            None => {}
            Some(200) => sql.push_str(" AND i.verdict = 'accepted'"),
            Some(code) => {
                let holds = format!(
                    "EXISTS (SELECT 1 FROM invoice_statuses s WHERE s.flow_id = i.flow_id \
                     AND s.doc_index = i.doc_index AND s.code = {code})"
                );
                if code == 213 {
                    sql.push_str(&format!(" AND (i.verdict = 'rejected' OR {holds})"));
                } else {
                    sql.push_str(&format!(" AND {holds}"));
                }
            }
        }
        let l = next();
        sql.push_str(&format!(" ORDER BY i.flow_id DESC, i.doc_index LIMIT ${l}"));
        let limit = filter.limit.unwrap_or(1000).max(1);
        Ok(with_pool!(self, pool => {
            let mut q = sqlx::query_as(&sql);
            if let Some(p) = &filter.partner {
                q = q.bind(p);
            }
            if let Some(s) = filter.since {
                q = q.bind(s);
            }
            q.bind(limit).fetch_all(pool).await?
        }))
    }

    /// The delivery rows of one invoice (one per recipient).
    pub async fn invoice_deliveries(
        &self,
        flow: FlowId,
        doc_index: i64,
    ) -> Result<Vec<DeliveryRow>> {
        let raw: Vec<RawDelivery> = with_pool!(self, pool => {
            sqlx::query_as(&format!(
                "{DELIVERY_SELECT} WHERE d.item = 'invoice' AND d.flow_id = $1 AND d.doc_index = $2 ORDER BY d.id"
            ))
            .bind(flow)
            .bind(doc_index)
            .fetch_all(pool)
            .await?
        });
        crate::rows::convert(raw)
    }

    /// How many documents of a flow before `doc_index` come from the same
    /// entry (the occurrence of an entry name an archive holds twice).
    pub async fn entry_ordinal(&self, flow: FlowId, doc_index: i64, entry: &str) -> Result<i64> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT count(*) FROM invoices WHERE flow_id = $1 AND entry = $2 AND doc_index < $3",
            )
            .bind(flow)
            .bind(entry)
            .bind(doc_index)
            .fetch_one(pool)
            .await?
        }))
    }

    /// Per recipient: invoices routed to it, delivered, awaiting delivery
    /// (recipients of nothing are not listed).
    pub async fn recipient_counts(&self) -> Result<Vec<RecipientCounts>> {
        let routed: Vec<(String, i64)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT recipient, count(*) FROM invoices WHERE recipient IS NOT NULL GROUP BY recipient",
            )
            .fetch_all(pool)
            .await?
        });
        let deliveries: Vec<(String, String, i64)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT partner, state, count(*) FROM deliveries WHERE item = 'invoice' GROUP BY partner, state",
            )
            .fetch_all(pool)
            .await?
        });
        let refused: Vec<(String, i64)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT recipient, count(*) FROM (SELECT DISTINCT i.recipient, s.flow_id, s.doc_index \
                 FROM invoice_statuses s JOIN invoices i ON i.flow_id = s.flow_id AND i.doc_index = s.doc_index \
                 WHERE s.code = 210 AND i.recipient IS NOT NULL) t GROUP BY recipient",
            )
            .fetch_all(pool)
            .await?
        });
        let mut out: std::collections::BTreeMap<String, RecipientCounts> = Default::default();
        let entry = |out: &mut std::collections::BTreeMap<String, RecipientCounts>, p: &str| {
            out.entry(p.to_owned())
                .or_insert_with(|| RecipientCounts {
                    partner: p.to_owned(),
                    ..Default::default()
                })
                .partner
                .clone()
        };
        for (p, n) in routed {
            let k = entry(&mut out, &p);
            out.get_mut(&k).expect("inserted").routed = n;
        }
        for (p, state, n) in deliveries {
            let k = entry(&mut out, &p);
            let c = out.get_mut(&k).expect("inserted");
            if state == "delivered" {
                c.delivered += n;
            } else {
                c.awaiting_delivery += n;
            }
        }
        for (p, n) in refused {
            let k = entry(&mut out, &p);
            out.get_mut(&k).expect("inserted").refused_by_buyer = n;
        }
        Ok(out.into_values().collect())
    }

    /// Reconciliation: accepted invoices of processed flows received in
    /// `[from, to)` with no recipient (none should be, once routing exists).
    pub async fn accepted_not_routed(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<ExchangedInvoice>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as(&format!(
                "{EXCHANGED_SELECT} WHERE f.state = 'processed' AND f.received_at >= $1 AND f.received_at < $2 \
                 AND i.verdict = 'accepted' AND i.recipient IS NULL ORDER BY i.flow_id, i.doc_index LIMIT 1000"
            ))
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Reconciliation: invoice deliveries still pending that were owed
    /// before `before`.
    pub async fn invoices_undelivered_since(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<DeliveryRow>> {
        let raw: Vec<RawDelivery> = with_pool!(self, pool => {
            sqlx::query_as(&format!(
                "{DELIVERY_SELECT} WHERE d.item = 'invoice' AND d.state = 'pending' AND d.created_at < $1 \
                 ORDER BY d.created_at, d.id LIMIT 1000"
            ))
            .bind(before)
            .fetch_all(pool)
            .await?
        });
        crate::rows::convert(raw)
    }

    /// Reconciliation: invoices delivered before `before` about which
    /// their recipient has said nothing since (no status of its own).
    pub async fn delivered_without_recipient_status(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>> {
        let raw: Vec<RawDelivery> = with_pool!(self, pool => {
            sqlx::query_as(&format!(
                "{DELIVERY_SELECT} WHERE d.item = 'invoice' AND d.state = 'delivered' AND d.delivered_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM invoice_statuses s WHERE s.flow_id = d.flow_id \
                 AND s.doc_index = d.doc_index AND s.issuer = 'recipient') \
                 ORDER BY d.delivered_at, d.id LIMIT $2"
            ))
            .bind(before)
            .bind(limit.max(1))
            .fetch_all(pool)
            .await?
        });
        crate::rows::convert(raw)
    }
}

// `Backend` is named by the `with_pool!` expansions above.
#[allow(unused_imports)]
use Backend as _;
