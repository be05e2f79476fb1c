//! Delivery state: everything quai sends, and how its sending goes.
//!
//! Every acknowledgement (and, with issue 15, every invoice delivered to
//! its recipient and every digest) has one row in `deliveries`: what it is,
//! the partner it is for, its typed [`Destination`], and `attempts`,
//! `next_attempt_at`, `last_error`, `delivered_at`, `receipt`. States move
//! by the table in `state.rs` (`pending → delivered`, a failure keeps it
//! `pending` with a later `next_attempt_at`, a resend puts it back), each
//! update guarded by the state it expects, so a refused change is an error.
//!
//! The retry backoff is stored: a failed attempt sets `next_attempt_at`
//! from the stored attempt count ([`retry_delay`]), so it survives a
//! restart and every instance on one PostgreSQL sees the same. Senders take
//! due rows with [`Spool::claim_due_deliveries`] under a lease (`FOR UPDATE
//! SKIP LOCKED` on PostgreSQL), so two instances never send one row at
//! once; a sender that dies leaves its rows to be claimed again when the
//! lease expires.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::durability::Durability;
use crate::state::{self, DeliveryState};
use crate::steps::{self, By};
use crate::{
    AckId, AckKind, Backend, Destination, FlowId, Lease, NewAck, Result, Spool, SpoolError,
};

pub use crate::delivery_rows::retry_delay;

/// What a delivery sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "item", rename_all = "snake_case")]
pub enum DeliveryItem {
    /// An acknowledgement of a flow.
    Ack {
        ack: AckId,
        flow: FlowId,
        kind: AckKind,
    },
    /// One invoice of a flow, to one recipient (issue 15).
    Invoice { flow: FlowId, doc_index: i64 },
    /// A reject digest.
    Digest { digest: i64 },
    /// The CDAR relay of one lifecycle status of an invoice to the other
    /// party (`lifecycle.rs`).
    Status {
        status: crate::StatusId,
        flow: FlowId,
        doc_index: i64,
    },
}

/// One status relay row of a flow ([`Spool::status_relays_of_flow`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRelayRow {
    pub delivery: i64,
    pub status: crate::StatusId,
    pub doc_index: i64,
    pub file_name: String,
}

/// One delivery row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub item: DeliveryItem,
    /// The partner it is for (the recipient).
    pub partner: String,
    pub to: Destination,
    /// The name the recipient sees.
    pub file_name: String,
    pub state: DeliveryState,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// What the other side answered (an MDN's Message-ID, a remote path...).
    pub receipt: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
}

impl DeliveryRow {
    /// When to try again if the attempt now under way fails (the stored
    /// backoff: [`retry_delay`] of the attempt count after it).
    pub fn retry_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(retry_delay(self.attempts.saturating_add(1)))
            .unwrap_or(chrono::Duration::minutes(15))
    }
}

/// An invoice of a processed flow to deliver to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvoiceDelivery {
    pub doc_index: i64,
    /// The recipient partner.
    pub recipient: String,
    pub to: Destination,
    pub file_name: String,
}

pub use crate::delivery_rows::held_until;

/// What a partner is still owed (for `quai status`, metrics, alerts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndeliveredSummary {
    pub partner: String,
    /// Pending deliveries.
    pub count: i64,
    /// When the oldest of them was owed.
    pub oldest: DateTime<Utc>,
}

impl UndeliveredSummary {
    /// Age of the oldest pending delivery at `now`.
    pub fn oldest_age(&self, now: DateTime<Utc>) -> Duration {
        (now - self.oldest).to_std().unwrap_or_default()
    }
}

pub(crate) use crate::delivery_rows::{RawDelivery, DELIVERY_SELECT};

impl TryFrom<RawDelivery> for DeliveryRow {
    type Error = SpoolError;
    fn try_from(r: RawDelivery) -> Result<DeliveryRow> {
        let corrupt = |what: &str| SpoolError::Corrupt(format!("delivery {}: {what}", r.id));
        let item = match (
            r.item.as_str(),
            r.flow_id,
            r.ack_id,
            r.doc_index,
            r.digest_id,
            r.status_id,
        ) {
            ("ack", Some(flow), Some(ack), _, _, _) => DeliveryItem::Ack {
                ack,
                flow,
                kind: state::parse(r.ack_kind.as_deref().unwrap_or_default())?,
            },
            ("invoice", Some(flow), _, Some(doc_index), _, _) => {
                DeliveryItem::Invoice { flow, doc_index }
            }
            ("digest", _, _, _, Some(digest), _) => DeliveryItem::Digest { digest },
            ("status", Some(flow), _, Some(doc_index), _, Some(status)) => DeliveryItem::Status {
                status,
                flow,
                doc_index,
            },
            (other, ..) => return Err(corrupt(&format!("item {other:?} without its keys"))),
        };
        Ok(DeliveryRow {
            id: r.id,
            item,
            to: Destination::from_columns(&r.destination_kind, &r.partner, &r.destination)?,
            partner: r.partner,
            file_name: r.file_name,
            state: state::parse(&r.state)?,
            created_at: r.created_at,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            delivered_at: r.delivered_at,
            receipt: r.receipt,
            lease_owner: r.lease_owner,
            lease_expires_at: r.lease_expires_at,
        })
    }
}

impl Spool {
    /// Claim up to `limit` pending deliveries due at `now` (their
    /// `next_attempt_at` reached) that no live lease holds, under this
    /// instance's lease; oldest due first. Send each, then
    /// [`Spool::mark_delivered`] or [`Spool::record_delivery_failure`]
    /// (both release the lease). Rows other instances are claiming are
    /// skipped, not waited for.
    pub async fn claim_due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        lease: Lease,
    ) -> Result<Vec<DeliveryRow>> {
        write_step!(
            self,
            Durability::Relaxed,
            claim_due_deliveries(now, limit, lease)
        )
    }

    /// A delivery was sent and taken (`pending → delivered`): where it
    /// went, and what the other side answered. Refused (an error) when it
    /// is not pending.
    pub async fn mark_delivered(
        &self,
        delivery: i64,
        destination: &Destination,
        receipt: Option<&str>,
    ) -> Result<()> {
        write_step!(
            self,
            Durability::Full,
            mark_delivered(By::Delivery(delivery), Some(destination), receipt)
        )
        .map(drop)
    }

    /// An attempt failed: attempts + 1, the error, and the next attempt at
    /// `next_at` (see [`DeliveryRow::retry_at`] for the stored backoff).
    pub async fn record_delivery_failure(
        &self,
        delivery: i64,
        error: &str,
        next_at: DateTime<Utc>,
    ) -> Result<()> {
        write_step!(
            self,
            Durability::Full,
            record_delivery_failure(By::Delivery(delivery), error, Some(next_at))
        )
        .map(drop)
    }

    /// Claim the given deliveries (those pending, due at `now` and under
    /// no live lease; the others are skipped) under this instance's lease:
    /// an operator's resend of chosen rows, coordinated with a running
    /// daemon through the lease.
    pub async fn claim_deliveries(
        &self,
        ids: &[i64],
        now: DateTime<Utc>,
        lease: Lease,
    ) -> Result<Vec<DeliveryRow>> {
        write_step!(self, Durability::Relaxed, claim_deliveries(ids, now, lease))
    }

    /// Send one again now: a delivered one goes back to pending, a pending
    /// one is made due at once (the backoff skipped). Returns the state it
    /// was in.
    pub async fn send_again(&self, delivery: i64) -> Result<DeliveryState> {
        let row = self.delivery(delivery).await?;
        match row.state {
            DeliveryState::Delivered => self.resend_delivery(delivery).await?,
            DeliveryState::Pending => write_step!(
                self,
                Durability::Full,
                retry_delivery(By::Delivery(delivery))
            )
            .map(drop)?,
        }
        Ok(row.state)
    }

    /// Pending deliveries, the longest owed first (the status page's
    /// "undelivered" panel).
    pub async fn pending_deliveries(&self, limit: i64) -> Result<Vec<DeliveryRow>> {
        let raw: Vec<RawDelivery> = with_pool!(self, pool => {
            sqlx::query_as(&format!(
                "{DELIVERY_SELECT} WHERE d.state = 'pending' ORDER BY d.created_at, d.id LIMIT $1"
            ))
            .bind(limit.max(0))
            .fetch_all(pool)
            .await?
        });
        crate::rows::convert(raw)
    }

    /// The flow an acknowledgement answers.
    pub async fn flow_of_ack(&self, ack: AckId) -> Result<FlowId> {
        let flow: Option<i64> = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT flow_id FROM acknowledgements WHERE id = $1")
                .bind(ack)
                .fetch_optional(pool)
                .await?
        });
        flow.ok_or(SpoolError::AckNotFound(ack))
    }

    /// Per flow of `flows` (a page of a listing): (pending, delivered)
    /// deliveries.
    pub async fn delivery_counts(
        &self,
        flows: &[FlowId],
    ) -> Result<std::collections::HashMap<FlowId, (i64, i64)>> {
        let mut out = std::collections::HashMap::new();
        for &flow in flows {
            let rows: Vec<(String, i64)> = with_pool!(self, pool => {
                sqlx::query_as(
                    "SELECT state, count(*) FROM deliveries WHERE flow_id = $1 GROUP BY state",
                )
                .bind(flow)
                .fetch_all(pool)
                .await?
            });
            let e = out.entry(flow).or_insert((0, 0));
            for (state, n) in rows {
                if state == "pending" {
                    e.0 += n;
                } else {
                    e.1 += n;
                }
            }
        }
        Ok(out)
    }

    /// Send a delivered one again (`delivered → pending`, due now).
    pub async fn resend_delivery(&self, delivery: i64) -> Result<()> {
        write_step!(
            self,
            Durability::Full,
            resend_delivery(By::Delivery(delivery))
        )
        .map(drop)
    }

    /// Owe one acknowledgement of a finished flow (an MDN: of any flow),
    /// as its own step: when the flow already owes one of this kind, that
    /// one's id is returned and nothing is added, so calling it again (after
    /// a crash, or from every instance) is harmless. MDNs are one per
    /// message and always added.
    pub async fn owe_ack(&self, flow: FlowId, ack: &NewAck) -> Result<AckId> {
        write_step!(self, Durability::Full, owe_ack(flow, ack))
    }

    /// Owe the delivery of accepted invoices of a processed flow to their
    /// recipients, one row per (invoice, recipient): asking again returns
    /// the existing rows' ids and leaves their state alone.
    pub async fn owe_invoice_deliveries(
        &self,
        flow: FlowId,
        owed: &[NewInvoiceDelivery],
    ) -> Result<Vec<i64>> {
        write_step!(self, Durability::Full, owe_invoice_deliveries(flow, owed))
    }

    /// Hold the deliveries of one stored batch of a flow being processed
    /// (this instance's lease on it checked): the invoices of `docs` get
    /// the recipient `owed` names (or none), and each routed accepted
    /// invoice a delivery row that no claim takes until the transaction
    /// finishing the flow ([`Spool::finish_flow_routed`]) releases it, so
    /// a flow's owed deliveries are never held in memory and none is sent
    /// before the flow's durable commit. Held again for the same invoice
    /// and recipient (a flow processed again), the existing row stays.
    pub async fn hold_invoice_deliveries(
        &self,
        flow: FlowId,
        docs: &[i64],
        owed: &[NewInvoiceDelivery],
    ) -> Result<Vec<i64>> {
        write_step!(
            self,
            Durability::Relaxed,
            hold_invoice_deliveries(flow, docs, owed)
        )
    }

    /// One delivery row.
    pub async fn delivery(&self, delivery: i64) -> Result<DeliveryRow> {
        let raw: Option<RawDelivery> = with_pool!(self, pool => {
            sqlx::query_as(&format!("{DELIVERY_SELECT} WHERE d.id = $1"))
                .bind(delivery)
                .fetch_optional(pool)
                .await?
        });
        raw.ok_or(SpoolError::DeliveryNotFound(delivery))?
            .try_into()
    }

    /// The deliveries of a flow (its acknowledgements', its invoices'), by id.
    pub async fn deliveries_of_flow(&self, flow: FlowId) -> Result<Vec<DeliveryRow>> {
        let raw: Vec<RawDelivery> = with_pool!(self, pool => {
            sqlx::query_as(&format!("{DELIVERY_SELECT} WHERE d.flow_id = $1 ORDER BY d.id"))
                .bind(flow)
                .fetch_all(pool)
                .await?
        });
        crate::rows::convert(raw)
    }

    /// The status relays owed to `partner` about invoices of `flow`, by
    /// delivery id. Rows sharing a file name are one relay group: one CDAR
    /// file naming each of their statuses (`lifecycle/delivered.rs`), which
    /// the deliverer renders whole whichever of its rows it claimed, so the
    /// file has the same bytes every time it is offered.
    pub async fn status_relays_of_flow(
        &self,
        flow: FlowId,
        partner: &str,
    ) -> Result<Vec<StatusRelayRow>> {
        let rows: Vec<(i64, Option<i64>, Option<i64>, String)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, status_id, doc_index, file_name FROM deliveries \
                 WHERE flow_id = $1 AND item = 'status' AND partner = $2 ORDER BY id",
            )
            .bind(flow)
            .bind(partner)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(delivery, status, doc, file_name)| {
                Some(StatusRelayRow {
                    delivery,
                    status: status?,
                    doc_index: doc?,
                    file_name,
                })
            })
            .collect())
    }

    /// Per partner: how many deliveries are pending, and since when the
    /// oldest is; partners owed nothing are not listed.
    pub async fn undelivered_summary(&self) -> Result<Vec<UndeliveredSummary>> {
        let rows: Vec<(String, i64, DateTime<Utc>)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT partner, count(*), min(created_at) FROM deliveries WHERE state = 'pending' \
                 GROUP BY partner ORDER BY partner",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(partner, count, oldest)| UndeliveredSummary {
                partner,
                count,
                oldest,
            })
            .collect())
    }
}

// `Backend` is named by the `with_pool!` expansions above.
#[allow(unused_imports)]
use steps as _;
#[allow(unused_imports)]
use Backend as _;
