//! The write steps both backends share, written once.
//!
//! Most of what the spool writes (registering, claiming and finishing a
//! flow, acknowledgement and delivery marks, the digest's outbox marks) is
//! the same SQL on SQLite and PostgreSQL. It is written here once, inside
//! [`shared_steps!`], which compiles it twice: as `steps::sqlite` over a
//! `SqliteConnection` and as `steps::postgres` over a `PgConnection`. What
//! differs between the two is small and lives in [`Dialect`]:
//!
//! - row locks: PostgreSQL locks the rows a step reads before it writes
//!   them (`FOR NO KEY UPDATE`) and claims queue rows with `FOR UPDATE SKIP
//!   LOCKED`, so instances never wait for each other nor take the same row;
//!   SQLite has one writer (every write transaction starts with `BEGIN
//!   IMMEDIATE`), so it needs neither;
//! - lists of ids are bound as one JSON array, read back by `json_each` on
//!   SQLite and `jsonb_array_elements_text` on PostgreSQL;
//! - the clock: every step gets its `now` from [`Cx`]. On PostgreSQL it is
//!   the database's transaction time (`SELECT now()` once per transaction,
//!   the value `now()` has in every statement of it), so leases mean the
//!   same to every instance whatever their clocks say; on SQLite it is this
//!   process's clock.
//!
//! Placeholders (`$1`), `ON CONFLICT … DO NOTHING` and `RETURNING` read the
//! same on both. The transaction itself (SQLite's durability level and
//! in-process writer lock) is opened by `write_step!` in `lib.rs`. The hot
//! path of invoice batches (`store_invoices`) stays in each backend's own
//! module: it is shaped by what each database does fastest (one multi-row
//! insert over `json_each` versus `UNNEST` over arrays).

use chrono::{DateTime, Utc};

/// What differs between the SQL of the two backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Suffix of a `SELECT` that reads a row this transaction will update.
    pub(crate) fn lock_row(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR NO KEY UPDATE",
        }
    }

    /// Suffix of a `SELECT` that claims queue rows: rows another instance
    /// holds are skipped, not waited for.
    pub(crate) fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// `IN (…)` over the ids of a JSON array bound at `$n` (see [`json_ids`]).
    pub(crate) fn in_json_ids(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("IN (SELECT value FROM json_each(${n}))"),
            Dialect::Postgres => {
                format!("IN (SELECT value::bigint FROM jsonb_array_elements_text(${n}::jsonb))")
            }
        }
    }
}

impl Dialect {
    /// A `FROM` item over the objects of a JSON array bound at `$n`, as
    /// `t` with one column `value` (read with [`Dialect::field`]).
    pub(crate) fn json_rows(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("json_each(${n}) AS t"),
            Dialect::Postgres => format!("jsonb_array_elements(${n}::jsonb) AS t(value)"),
        }
    }

    /// The text field `name` of `t.value` (see [`Dialect::json_rows`]);
    /// `int`: as a 64-bit integer.
    pub(crate) fn field(self, name: &str, int: bool) -> String {
        match (self, int) {
            (Dialect::Postgres, true) => format!("(t.value ->> '{name}')::bigint"),
            _ => format!("(t.value ->> '{name}')"),
        }
    }
}

/// Ids as the JSON array [`Dialect::in_json_ids`] reads.
pub(crate) fn json_ids(ids: &[i64]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned())
}

/// The context of one write transaction.
pub(crate) struct Cx<'a> {
    /// This instance (lease owner, event history).
    pub(crate) me: &'a str,
    /// The transaction's time (see the module doc).
    pub(crate) now: DateTime<Utc>,
}

impl Cx<'_> {
    pub(crate) fn until(&self, lease: crate::Lease) -> DateTime<Utc> {
        self.now + chrono::Duration::from_std(lease.duration).unwrap_or(chrono::Duration::days(365))
    }
}

/// Acknowledgements to owe, typed or as the (kind, channel name, file name)
/// rows of the earlier API (their partner is the flow's).
#[derive(Clone, Copy)]
pub(crate) enum Acks<'a> {
    Typed(&'a [crate::NewAck]),
    Legacy(&'a [(crate::AckKind, String, String)]),
}

impl Acks<'_> {
    pub(crate) fn all_mdn(&self) -> bool {
        match self {
            Acks::Typed(a) => a.iter().all(|a| a.kind == crate::AckKind::Mdn),
            Acks::Legacy(a) => a.iter().all(|a| a.0 == crate::AckKind::Mdn),
        }
    }
}

/// How a delivery row is named: by its id, or by its acknowledgement.
#[derive(Debug, Clone, Copy)]
pub(crate) enum By {
    Delivery(i64),
    Ack(crate::AckId),
}

/// The shared steps, compiled once per backend (see the module doc).
macro_rules! shared_steps {
    ($backend:ident, $Conn:ty, $dialect:expr) => {
        pub(crate) mod $backend {
            #![allow(clippy::too_many_arguments)]
            use chrono::{DateTime, Utc};

            use super::{json_ids, Acks, By, Cx, Dialect};
            use crate::invoices::clean_text;
            use crate::state::{self, DeliveryStep, Event, FlowStep};
            use crate::*;

            type Conn = $Conn;
            const D: Dialect = $dialect;

            /// The transaction's time on this backend (see the module doc).
            pub(crate) async fn clock(conn: &mut Conn) -> Result<DateTime<Utc>> {
                if D == Dialect::Postgres {
                    Ok(sqlx::query_scalar("SELECT now()").fetch_one(conn).await?)
                } else {
                    Ok(Utc::now())
                }
            }

            /// The event `ev` (its entity id aside) for each delivery of `ids`,
            /// in one statement.
            pub(crate) async fn insert_events_for(conn: &mut Conn, cx: &Cx<'_>, ev: &Event, ids: &[i64]) -> Result<()> {
                if ids.is_empty() {
                    return Ok(());
                }
                sqlx::query(&format!(
                    "INSERT INTO events (at, instance, entity, entity_id, from_state, to_state, reason) \
                     SELECT $1, $2, $3, id, $4, $5, $6 FROM deliveries WHERE id {}",
                    D.in_json_ids(7)
                ))
                .bind(cx.now)
                .bind(cx.me)
                .bind(ev.entity)
                .bind(ev.from.as_deref())
                .bind(&ev.to)
                .bind(ev.reason.as_deref())
                .bind(json_ids(ids))
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            pub(crate) async fn insert_event(conn: &mut Conn, cx: &Cx<'_>, ev: &Event) -> Result<()> {
                sqlx::query(
                    "INSERT INTO events (at, instance, entity, entity_id, from_state, to_state, reason) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(cx.now)
                .bind(cx.me)
                .bind(ev.entity)
                .bind(ev.entity_id)
                .bind(ev.from.as_deref())
                .bind(&ev.to)
                .bind(ev.reason.as_deref())
                .execute(conn)
                .await?;
                Ok(())
            }

            /// Create pending acknowledgements of a flow, each with its
            /// delivery row, due now (and their events).
            pub(crate) async fn insert_acks(
                conn: &mut Conn,
                cx: &Cx<'_>,
                flow: FlowId,
                acks: Acks<'_>,
            ) -> Result<Vec<AckId>> {
                let acks: Vec<NewAck> = match acks {
                    Acks::Typed(a) => a.to_vec(),
                    Acks::Legacy(a) if a.is_empty() => Vec::new(),
                    Acks::Legacy(a) => {
                        let partner: String = sqlx::query_scalar("SELECT partner FROM flows WHERE id = $1")
                            .bind(flow)
                            .fetch_optional(&mut *conn)
                            .await?
                            .ok_or(SpoolError::FlowNotFound(flow))?;
                        a.iter().map(|row| NewAck::from_legacy(&partner, row)).collect()
                    }
                };
                let mut ids = Vec::with_capacity(acks.len());
                for ack in &acks {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO acknowledgements (flow_id, kind, file_name, generated_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $4) RETURNING id",
                    )
                    .bind(flow)
                    .bind(ack.kind.as_str())
                    .bind(&ack.file_name)
                    .bind(cx.now)
                    .fetch_one(&mut *conn)
                    .await?;
                    let ev = state::delivery(state::ACK, id, DeliveryStep::Owe, None, None)?;
                    let partner = recipient(&ack.to, flow, conn).await?;
                    insert_delivery(
                        conn, cx, "ack", Some(flow), Some(id), None, &partner, &ack.to, &ack.file_name,
                    )
                    .await?;
                    insert_event(conn, cx, &ev).await?;
                    ids.push(id);
                }
                Ok(ids)
            }

            /// The partner a destination is for (an outbox's or AS2
            /// endpoint's partner; for a mail, the flow's partner).
            async fn recipient(to: &Destination, flow: FlowId, conn: &mut Conn) -> Result<String> {
                Ok(match to {
                    Destination::LocalOutbox { partner }
                    | Destination::SftpOutbox { partner }
                    | Destination::As2 { partner }
                    | Destination::Api { partner }
                    | Destination::As2Mdn { partner, .. } => partner.clone(),
                    Destination::Mail { .. } => {
                        sqlx::query_scalar("SELECT partner FROM flows WHERE id = $1")
                            .bind(flow)
                            .fetch_optional(&mut *conn)
                            .await?
                            .ok_or(SpoolError::FlowNotFound(flow))?
                    }
                })
            }

            /// One pending delivery row, due now. Returns its id, or `None`
            /// when an invoice delivery to that recipient already exists.
            async fn insert_delivery(
                conn: &mut Conn,
                cx: &Cx<'_>,
                item: &str,
                flow: Option<FlowId>,
                ack: Option<AckId>,
                doc_index: Option<i64>,
                partner: &str,
                to: &Destination,
                file_name: &str,
            ) -> Result<Option<i64>> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO deliveries (item, flow_id, ack_id, doc_index, partner, destination_kind, \
                     destination, file_name, state, created_at, updated_at, next_attempt_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9, $9) \
                     ON CONFLICT DO NOTHING RETURNING id",
                )
                .bind(item)
                .bind(flow)
                .bind(ack)
                .bind(doc_index)
                .bind(partner)
                .bind(to.kind().as_str())
                .bind(to.target())
                .bind(file_name)
                .bind(cx.now)
                .fetch_optional(&mut *conn)
                .await?)
            }

            /// Owe one acknowledgement of a flow, once: when the flow
            /// already owes one of this kind, its id is returned and
            /// nothing is added (MDNs, one per message, are always added).
            pub(crate) async fn owe_ack(conn: &mut Conn, cx: &Cx<'_>, flow: FlowId, ack: &NewAck) -> Result<AckId> {
                let (st, _, _) = lock_flow(conn, flow).await?;
                if !st.is_terminal() && ack.kind != AckKind::Mdn {
                    return Err(SpoolError::IllegalTransition {
                        flow,
                        from: st.as_str().to_owned(),
                        to: "acknowledged".to_owned(),
                    });
                }
                if ack.kind != AckKind::Mdn {
                    let owed: Option<i64> = sqlx::query_scalar(
                        "SELECT id FROM acknowledgements WHERE flow_id = $1 AND kind = $2 ORDER BY id LIMIT 1",
                    )
                    .bind(flow)
                    .bind(ack.kind.as_str())
                    .fetch_optional(&mut *conn)
                    .await?;
                    if let Some(id) = owed {
                        return Ok(id);
                    }
                }
                let ids = insert_acks(conn, cx, flow, Acks::Typed(std::slice::from_ref(ack))).await?;
                ids.first().copied().ok_or_else(|| SpoolError::Corrupt("acknowledgement not created".into()))
            }

            /// Owe the delivery of accepted invoices of a processed flow to
            /// their recipients (idempotent: one row per invoice and
            /// recipient; an existing one keeps its state).
            pub(crate) async fn owe_invoice_deliveries(
                conn: &mut Conn,
                cx: &Cx<'_>,
                flow: FlowId,
                owed: &[NewInvoiceDelivery],
            ) -> Result<Vec<i64>> {
                let (st, _, _) = lock_flow(conn, flow).await?;
                if st != FlowState::Processed {
                    return Err(SpoolError::IllegalTransition {
                        flow,
                        from: st.as_str().to_owned(),
                        to: "routed".to_owned(),
                    });
                }
                let mut ids = Vec::with_capacity(owed.len());
                for o in owed {
                    let verdict: Option<String> = sqlx::query_scalar(
                        "SELECT verdict FROM invoices WHERE flow_id = $1 AND doc_index = $2",
                    )
                    .bind(flow)
                    .bind(o.doc_index)
                    .fetch_optional(&mut *conn)
                    .await?;
                    match verdict.as_deref() {
                        Some("accepted") => {}
                        Some(_) => {
                            return Err(SpoolError::InvalidBatch(format!(
                                "document {} of flow {flow} was rejected: it is not delivered",
                                o.doc_index
                            )))
                        }
                        None => {
                            return Err(SpoolError::InvalidBatch(format!(
                                "flow {flow} has no document {}",
                                o.doc_index
                            )))
                        }
                    }
                    let recipient = clean_text(&o.recipient);
                    let new = insert_delivery(
                        conn, cx, "invoice", Some(flow), None, Some(o.doc_index), &recipient, &o.to, &o.file_name,
                    )
                    .await?;
                    let id = match new {
                        Some(id) => {
                            let ev = state::delivery(state::DELIVERY, id, DeliveryStep::Owe, None, None)?;
                            insert_event(conn, cx, &ev).await?;
                            id
                        }
                        None => sqlx::query_scalar(
                            "SELECT id FROM deliveries WHERE item = 'invoice' AND flow_id = $1 \
                             AND doc_index = $2 AND partner = $3",
                        )
                        .bind(flow)
                        .bind(o.doc_index)
                        .bind(recipient.as_ref())
                        .fetch_one(&mut *conn)
                        .await?,
                    };
                    ids.push(id);
                }
                Ok(ids)
            }

            /// Route the accepted invoices of a flow just finished
            /// (`finish_flow` in the same transaction): each one's
            /// `recipient` column, and its pending delivery row, due now
            /// (one per invoice and recipient; an existing row keeps its
            /// state, so processing a flow again owes nothing twice).
            /// Invoices no longer accepted (e.g. a REJ_UNI of this pass) are
            /// skipped. Returns the ids of the new rows.
            pub(crate) async fn owe_routed(
                conn: &mut Conn,
                cx: &Cx<'_>,
                flow: FlowId,
                owed: &[NewInvoiceDelivery],
            ) -> Result<Vec<i64>> {
                sqlx::query("UPDATE invoices SET recipient = NULL WHERE flow_id = $1 AND recipient IS NOT NULL")
                    .bind(flow)
                    .execute(&mut *conn)
                    .await?;
                route_rows(conn, cx, flow, owed, cx.now, "routed").await
            }

            /// Hold the deliveries of one stored batch of a flow still
            /// being processed: the batch's invoices get their recipient
            /// (`docs` without one in `owed` get none), and each routed
            /// accepted invoice a pending delivery row that no claim takes
            /// (`next_attempt_at` = [`crate::delivery_rows::held_until`])
            /// until the transaction that finishes the flow releases it
            /// ([`release_held`]). Returns the ids of the new rows.
            pub(crate) async fn hold_invoice_deliveries(
                conn: &mut Conn,
                cx: &Cx<'_>,
                flow: FlowId,
                docs: &[i64],
                owed: &[NewInvoiceDelivery],
            ) -> Result<Vec<i64>> {
                check_lease(conn, cx.me, flow, FlowState::Processing).await?;
                sqlx::query(&format!(
                    "UPDATE invoices SET recipient = NULL WHERE flow_id = $1 AND recipient IS NOT NULL \
                     AND doc_index {}",
                    D.in_json_ids(2)
                ))
                .bind(flow)
                .bind(json_ids(docs))
                .execute(&mut *conn)
                .await?;
                route_rows(conn, cx, flow, owed, crate::delivery_rows::held_until(), "held until its flow is processed").await
            }

            /// In the transaction that finishes a processed flow: the held
            /// invoice deliveries whose invoice is no longer accepted or
            /// routed to that partner (left by an earlier attempt) are
            /// dropped, the others made due now. Returns how many are due.
            pub(crate) async fn release_held(conn: &mut Conn, cx: &Cx<'_>, flow: FlowId) -> Result<u64> {
                sqlx::query(
                    "DELETE FROM deliveries WHERE flow_id = $1 AND item = 'invoice' AND state = 'pending' \
                     AND next_attempt_at = $2 AND NOT EXISTS (SELECT 1 FROM invoices i \
                     WHERE i.flow_id = deliveries.flow_id AND i.doc_index = deliveries.doc_index \
                     AND i.verdict = 'accepted' AND i.recipient = deliveries.partner)",
                )
                .bind(flow)
                .bind(crate::delivery_rows::held_until())
                .execute(&mut *conn)
                .await?;
                Ok(sqlx::query(
                    "UPDATE deliveries SET next_attempt_at = $3, created_at = $3, updated_at = $3 \
                     WHERE flow_id = $1 AND item = 'invoice' AND state = 'pending' AND next_attempt_at = $2",
                )
                .bind(flow)
                .bind(crate::delivery_rows::held_until())
                .bind(cx.now)
                .execute(&mut *conn)
                .await?
                .rows_affected())
            }

            /// A flow that failed owes none of the deliveries held for it.
            pub(crate) async fn drop_held(conn: &mut Conn, flow: FlowId) -> Result<()> {
                sqlx::query(
                    "DELETE FROM deliveries WHERE flow_id = $1 AND item = 'invoice' AND state = 'pending' \
                     AND next_attempt_at = $2",
                )
                .bind(flow)
                .bind(crate::delivery_rows::held_until())
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            /// Set the recipients of `owed` and insert their pending
            /// delivery rows, next attempted at `next_at` (one per invoice
            /// and recipient: an existing row is left alone).
            async fn route_rows(
                conn: &mut Conn,
                cx: &Cx<'_>,
                flow: FlowId,
                owed: &[NewInvoiceDelivery],
                next_at: DateTime<Utc>,
                why: &str,
            ) -> Result<Vec<i64>> {
                if owed.is_empty() {
                    return Ok(Vec::new());
                }
                let rows: Vec<serde_json::Value> = owed
                    .iter()
                    .map(|o| {
                        serde_json::json!({
                            "doc": o.doc_index,
                            "partner": clean_text(&o.recipient),
                            "kind": o.to.kind().as_str(),
                            "target": clean_text(o.to.target()),
                            "name": clean_text(&o.file_name),
                        })
                    })
                    .collect();
                let rows = serde_json::Value::Array(rows).to_string();
                // One statement per recipient (a batch has few).
                let mut by_recipient: std::collections::BTreeMap<&str, Vec<i64>> = Default::default();
                for o in owed {
                    by_recipient.entry(o.recipient.as_str()).or_default().push(o.doc_index);
                }
                for (recipient, docs) in by_recipient {
                    sqlx::query(&format!(
                        "UPDATE invoices SET recipient = $1 WHERE flow_id = $2 AND verdict = 'accepted' \
                         AND doc_index {}",
                        D.in_json_ids(3)
                    ))
                    .bind(clean_text(recipient).as_ref())
                    .bind(flow)
                    .bind(json_ids(&docs))
                    .execute(&mut *conn)
                    .await?;
                }
                let ids: Vec<i64> = sqlx::query_scalar(&format!(
                    "INSERT INTO deliveries (item, flow_id, doc_index, partner, destination_kind, destination, \
                     file_name, state, created_at, updated_at, next_attempt_at) \
                     SELECT 'invoice', $1, i.doc_index, i.recipient, {kind}, {target}, {name}, 'pending', $3, $3, $4 \
                     FROM {from} JOIN invoices i ON i.flow_id = $1 AND i.doc_index = {doc} \
                     AND i.verdict = 'accepted' AND i.recipient = {partner} \
                     WHERE true ON CONFLICT DO NOTHING RETURNING id",
                    kind = D.field("kind", false),
                    target = D.field("target", false),
                    name = D.field("name", false),
                    partner = D.field("partner", false),
                    doc = D.field("doc", true),
                    from = D.json_rows(2),
                ))
                .bind(flow)
                .bind(&rows)
                .bind(cx.now)
                .bind(next_at)
                .fetch_all(&mut *conn)
                .await?;
                let ev = state::delivery(state::DELIVERY, 0, DeliveryStep::Owe, None, Some(why.to_owned()))?;
                insert_events_for(conn, cx, &ev, &ids).await?;
                Ok(ids)
            }

            /// `finish_flow`, then (processed) the release of the
            /// deliveries held batch by batch and `owe_routed` of `owed`
            /// (when given), or (failed) the drop of the held ones, in one
            /// transaction.
            pub(crate) async fn finish_flow_routed(
                conn: &mut Conn,
                cx: &Cx<'_>,
                flow: FlowId,
                outcome: &FlowOutcome,
                documents: i64,
                acks: Acks<'_>,
                owed: &[NewInvoiceDelivery],
            ) -> Result<Vec<AckId>> {
                let ids = finish_flow(conn, cx, flow, outcome, documents, acks).await?;
                if matches!(outcome, FlowOutcome::Processed) {
                    release_held(conn, cx, flow).await?;
                    if !owed.is_empty() {
                        owe_routed(conn, cx, flow, owed).await?;
                    }
                }
                Ok(ids)
            }

            /// Claim up to `limit` pending deliveries due at `now` that no
            /// live lease holds, under `me`'s lease (rows other instances
            /// are claiming are skipped on PostgreSQL).
            pub(crate) async fn claim_due_deliveries(
                conn: &mut Conn,
                cx: &Cx<'_>,
                now: DateTime<Utc>,
                limit: i64,
                lease: Lease,
            ) -> Result<Vec<DeliveryRow>> {
                let ids: Vec<i64> = sqlx::query_scalar(&format!(
                    "SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_at <= $1 \
                     AND (lease_expires_at IS NULL OR lease_expires_at < $1) \
                     ORDER BY next_attempt_at, id LIMIT $2{}",
                    D.skip_locked()
                ))
                .bind(now)
                .bind(limit.max(0))
                .fetch_all(&mut *conn)
                .await?;
                lease_deliveries(conn, cx, &ids, now, lease).await
            }

            /// Claim the given deliveries that are pending, due at `now`
            /// and held by no live lease (an operator's resend of chosen
            /// rows; the others are left to whoever holds them).
            pub(crate) async fn claim_deliveries(
                conn: &mut Conn,
                cx: &Cx<'_>,
                ids: &[i64],
                now: DateTime<Utc>,
                lease: Lease,
            ) -> Result<Vec<DeliveryRow>> {
                let ids: Vec<i64> = sqlx::query_scalar(&format!(
                    "SELECT id FROM deliveries WHERE id {} AND state = 'pending' AND next_attempt_at <= $2 \
                     AND (lease_expires_at IS NULL OR lease_expires_at < $2) ORDER BY id{}",
                    D.in_json_ids(1),
                    D.skip_locked()
                ))
                .bind(json_ids(ids))
                .bind(now)
                .fetch_all(&mut *conn)
                .await?;
                lease_deliveries(conn, cx, &ids, now, lease).await
            }

            /// Put `ids` under `me`'s lease and read them back.
            async fn lease_deliveries(
                conn: &mut Conn,
                cx: &Cx<'_>,
                ids: &[i64],
                now: DateTime<Utc>,
                lease: Lease,
            ) -> Result<Vec<DeliveryRow>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let until = now + chrono::Duration::from_std(lease.duration).unwrap_or(chrono::Duration::days(365));
                sqlx::query(&format!(
                    "UPDATE deliveries SET lease_owner = $1, lease_expires_at = $2 WHERE id {}",
                    D.in_json_ids(3)
                ))
                .bind(cx.me)
                .bind(until)
                .bind(json_ids(ids))
                .execute(&mut *conn)
                .await?;
                let raw: Vec<crate::delivery_rows::RawDelivery> = sqlx::query_as(&format!(
                    "{} WHERE d.id {} ORDER BY d.next_attempt_at, d.id",
                    crate::delivery_rows::DELIVERY_SELECT,
                    D.in_json_ids(1)
                ))
                .bind(json_ids(ids))
                .fetch_all(&mut *conn)
                .await?;
                crate::rows::convert(raw)
            }

            /// The delivery row `by` names, locked: (id, state, attempts,
            /// the entity and id its events are logged under).
            async fn find_delivery(
                conn: &mut Conn,
                by: By,
            ) -> Result<(i64, DeliveryState, i32, &'static str, i64)> {
                let (column, id, missing) = match by {
                    By::Delivery(id) => ("id", id, SpoolError::DeliveryNotFound(id)),
                    By::Ack(id) => ("ack_id", id, SpoolError::AckNotFound(id)),
                };
                let row: Option<(i64, String, i32, Option<i64>)> = sqlx::query_as(&format!(
                    "SELECT id, state, attempts, ack_id FROM deliveries WHERE {column} = $1{}",
                    D.lock_row()
                ))
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
                let (id, st, attempts, ack) = row.ok_or(missing)?;
                let (entity, entity_id) = match ack {
                    Some(ack) => (state::ACK, ack),
                    None => (state::DELIVERY, id),
                };
                Ok((id, state::parse(&st)?, attempts, entity, entity_id))
            }

            /// Check a delivery transition against the table, for the row
            /// `by` names (locked): (delivery id, attempts so far, the
            /// event to log). The caller then updates the row guarded by
            /// the step's expected state ([`guarded`]).
            async fn check_delivery(
                conn: &mut Conn,
                by: By,
                step: DeliveryStep,
                reason: Option<String>,
            ) -> Result<(i64, i32, Event)> {
                let (id, found, attempts, entity, entity_id) = find_delivery(conn, by).await?;
                let ev = state::delivery(entity, entity_id, step, Some(found), reason)?;
                Ok((id, attempts, ev))
            }

            /// The update of a checked transition changed exactly its row.
            fn guarded(id: i64, affected: u64) -> Result<()> {
                if affected == 1 {
                    Ok(())
                } else {
                    Err(SpoolError::Corrupt(format!("delivery {id} changed state under a row lock")))
                }
            }

            /// Sent and taken: `pending → delivered`, with where it went
            /// (when given) and what the other side answered (an MDN's
            /// Message-ID, a remote path...).
            pub(crate) async fn mark_delivered(
                conn: &mut Conn,
                cx: &Cx<'_>,
                by: By,
                to: Option<&Destination>,
                receipt: Option<&str>,
            ) -> Result<i64> {
                let (id, _, ev) = check_delivery(conn, by, DeliveryStep::Deliver, None).await?;
                let done = sqlx::query(
                    "UPDATE deliveries SET state = $1, updated_at = $2, delivered_at = $2, \
                     attempts = attempts + 1, last_error = NULL, lease_owner = NULL, lease_expires_at = NULL, \
                     destination_kind = coalesce($3, destination_kind), destination = coalesce($4, destination), \
                     receipt = $5 WHERE id = $6 AND state = $7",
                )
                .bind(DeliveryState::Delivered.as_str())
                .bind(cx.now)
                .bind(to.map(|t| t.kind().as_str()))
                .bind(to.map(|t| clean_text(t.target()).into_owned()))
                .bind(receipt.map(|r| clean_text(r).into_owned()))
                .bind(id)
                .bind(DeliveryState::Pending.as_str())
                .execute(&mut *conn)
                .await?;
                guarded(id, done.rows_affected())?;
                insert_event(conn, cx, &ev).await?;
                Ok(id)
            }

            /// A failed attempt: `pending → pending`, attempts + 1, the
            /// error, and when to try again (`None`: after
            /// [`crate::delivery_rows::retry_delay`] of the new attempt count).
            pub(crate) async fn record_delivery_failure(
                conn: &mut Conn,
                cx: &Cx<'_>,
                by: By,
                error: &str,
                next_at: Option<DateTime<Utc>>,
            ) -> Result<i64> {
                let error = clean_text(error).into_owned();
                let reason = Some(format!("delivery failed: {error}"));
                let (id, attempts, ev) = check_delivery(conn, by, DeliveryStep::Fail, reason).await?;
                let next = next_at.unwrap_or_else(|| {
                    cx.now
                        + chrono::Duration::from_std(crate::delivery_rows::retry_delay(attempts.saturating_add(1)))
                            .unwrap_or(chrono::Duration::minutes(15))
                });
                let done = sqlx::query(
                    "UPDATE deliveries SET updated_at = $1, attempts = attempts + 1, last_error = $2, \
                     next_attempt_at = $3, lease_owner = NULL, lease_expires_at = NULL \
                     WHERE id = $4 AND state = $5",
                )
                .bind(cx.now)
                .bind(&error)
                .bind(next)
                .bind(id)
                .bind(DeliveryState::Pending.as_str())
                .execute(&mut *conn)
                .await?;
                guarded(id, done.rows_affected())?;
                insert_event(conn, cx, &ev).await?;
                Ok(id)
            }

            /// Send again: `delivered → pending`, due now.
            pub(crate) async fn resend_delivery(conn: &mut Conn, cx: &Cx<'_>, by: By) -> Result<i64> {
                let reason = Some("resend requested".to_owned());
                let (id, _, ev) = check_delivery(conn, by, DeliveryStep::Resend, reason).await?;
                let done = sqlx::query(
                    "UPDATE deliveries SET state = $1, updated_at = $2, next_attempt_at = $2, delivered_at = NULL, \
                     lease_owner = NULL, lease_expires_at = NULL WHERE id = $3 AND state = $4",
                )
                .bind(DeliveryState::Pending.as_str())
                .bind(cx.now)
                .bind(id)
                .bind(DeliveryState::Delivered.as_str())
                .execute(&mut *conn)
                .await?;
                guarded(id, done.rows_affected())?;
                insert_event(conn, cx, &ev).await?;
                Ok(id)
            }

            /// A pending delivery made due now (`pending → pending`); a
            /// lease it is under stays (its holder is sending it).
            pub(crate) async fn retry_delivery(conn: &mut Conn, cx: &Cx<'_>, by: By) -> Result<i64> {
                let reason = Some("retry requested".to_owned());
                let (id, _, ev) = check_delivery(conn, by, DeliveryStep::Retry, reason).await?;
                let done = sqlx::query(
                    "UPDATE deliveries SET updated_at = $1, next_attempt_at = $1 WHERE id = $2 AND state = $3",
                )
                .bind(cx.now)
                .bind(id)
                .bind(DeliveryState::Pending.as_str())
                .execute(&mut *conn)
                .await?;
                guarded(id, done.rows_affected())?;
                insert_event(conn, cx, &ev).await?;
                Ok(id)
            }

            /// Read (and on PostgreSQL lock) a flow row: its state, lease
            /// owner and lease expiry.
            pub(crate) async fn lock_flow(
                conn: &mut Conn,
                flow: FlowId,
            ) -> Result<(FlowState, Option<String>, Option<DateTime<Utc>>)> {
                let row: Option<(String, Option<String>, Option<DateTime<Utc>>)> = sqlx::query_as(
                    &format!(
                        "SELECT state, lease_owner, lease_expires_at FROM flows WHERE id = $1{}",
                        D.lock_row()
                    ),
                )
                .bind(flow)
                .fetch_optional(conn)
                .await?;
                let (s, owner, expires) = row.ok_or(SpoolError::FlowNotFound(flow))?;
                Ok((state::parse(&s)?, owner, expires))
            }

            /// Lock a flow row and check that `me` holds its lease.
            pub(crate) async fn check_lease(
                conn: &mut Conn,
                me: &str,
                flow: FlowId,
                to: FlowState,
            ) -> Result<()> {
                let (st, owner, _) = lock_flow(conn, flow).await?;
                if st != FlowState::Processing {
                    return Err(SpoolError::IllegalTransition {
                        flow,
                        from: st.as_str().to_owned(),
                        to: to.as_str().to_owned(),
                    });
                }
                if owner.as_deref() != Some(me) {
                    return Err(SpoolError::LeaseLost {
                        flow,
                        owner: owner.unwrap_or_else(|| "nobody".to_owned()),
                    });
                }
                Ok(())
            }

            pub(crate) async fn ensure_partner(conn: &mut Conn, cx: &Cx<'_>, partner: &str) -> Result<()> {
                sqlx::query("INSERT INTO partners (id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(partner)
                    .bind(cx.now)
                    .execute(conn)
                    .await?;
                Ok(())
            }

            pub(crate) async fn register_flow(
                conn: &mut Conn,
                cx: &Cx<'_>,
                flow: &NewFlow,
                dup_acks: &DupAcks<'_>,
            ) -> Result<Registration> {
                // Text from the outside world: PostgreSQL refuses NUL characters.
                let partner = clean_text(&flow.partner);
                let name = clean_text(&flow.original_name);
                let msgid = flow.as2_message_id.as_deref().map(clean_text);
                ensure_partner(conn, cx, &partner).await?;
                let new = state::flow(0, FlowStep::Register, None, FlowState::Received, "registered")?;
                // On PostgreSQL a concurrent registration of the same flow
                // makes this insert wait for the other transaction, then do
                // nothing.
                let id: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO flows (partner, origin, original_name, size, sha256, as2_message_id, state, \
                     received_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                     ON CONFLICT DO NOTHING RETURNING id",
                )
                .bind(partner.as_ref())
                .bind(flow.origin.as_str())
                .bind(name.as_ref())
                .bind(flow.size)
                .bind(&flow.sha256)
                .bind(msgid.as_deref())
                .bind(new.new_state())
                .bind(cx.now)
                .fetch_optional(&mut *conn)
                .await?;
                if let Some(id) = id {
                    insert_event(conn, cx, &new.for_flow(id).event()).await?;
                    return Ok(Registration::New(id));
                }
                let original: i64 = sqlx::query_scalar(
                    // Partner first: an AS2 Message-ID, like a hash, only
                    // identifies a flow among one partner's (issue 14).
                    "SELECT id FROM flows WHERE state <> 'duplicate' AND partner = $1 AND \
                     (sha256 = $2 OR as2_message_id = $3) ORDER BY id LIMIT 1",
                )
                .bind(partner.as_ref())
                .bind(&flow.sha256)
                .bind(msgid.as_deref())
                .fetch_one(&mut *conn)
                .await?;
                let dup = state::flow(
                    0,
                    FlowStep::RegisterDuplicate,
                    None,
                    FlowState::Duplicate,
                    format!("duplicate of flow {original}"),
                )?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO flows (partner, origin, original_name, size, sha256, as2_message_id, \
                     state, received_at, updated_at, duplicate_of) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) RETURNING id",
                )
                .bind(partner.as_ref())
                .bind(flow.origin.as_str())
                .bind(name.as_ref())
                .bind(flow.size)
                .bind(&flow.sha256)
                .bind(msgid.as_deref())
                .bind(dup.new_state())
                .bind(cx.now)
                .bind(original)
                .fetch_one(&mut *conn)
                .await?;
                insert_event(conn, cx, &dup.for_flow(id).event()).await?;
                insert_acks(conn, cx, id, Acks::Legacy(&dup_acks(id))).await?;
                Ok(Registration::Duplicate { id, original })
            }

            pub(crate) async fn register_refused(
                conn: &mut Conn,
                cx: &Cx<'_>,
                flow: &NewFlow,
                code: &str,
                message: &str,
                acks: &DupAcks<'_>,
            ) -> Result<Option<FlowId>> {
                let partner = clean_text(&flow.partner);
                let name = clean_text(&flow.original_name);
                let message = clean_text(message);
                ensure_partner(conn, cx, &partner).await?;
                let t = state::flow(
                    0,
                    FlowStep::RegisterRefused,
                    None,
                    FlowState::Failed,
                    format!("{code}: {message}"),
                )?;
                // The key (partner + the refusal's identity in `sha256`) is
                // unique: the same entry told again registers nothing.
                let id: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO flows (partner, origin, original_name, size, sha256, as2_message_id, state, \
                     received_at, updated_at, failure_code, failure_message) \
                     VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $7, $8, $9) \
                     ON CONFLICT DO NOTHING RETURNING id",
                )
                .bind(partner.as_ref())
                .bind(flow.origin.as_str())
                .bind(name.as_ref())
                .bind(flow.size)
                .bind(&flow.sha256)
                .bind(t.new_state())
                .bind(cx.now)
                .bind(code)
                .bind(message.as_ref())
                .fetch_optional(&mut *conn)
                .await?;
                let Some(id) = id else { return Ok(None) };
                insert_event(conn, cx, &t.for_flow(id).event()).await?;
                owe_flow_notification(conn, cx, id).await?;
                insert_acks(conn, cx, id, Acks::Legacy(&acks(id))).await?;
                Ok(Some(id))
            }

            /// Move a (locked) flow to `processing` under `me`'s lease, after
            /// the transition was checked.
            async fn take(
                conn: &mut Conn,
                cx: &Cx<'_>,
                t: &state::Transition,
                flow: FlowId,
                lease: Lease,
            ) -> Result<ClaimedFlow> {
                let row: Option<(i64, String, String, String, i64, String, i32)> = sqlx::query_as(
                    "UPDATE flows SET state = $1, lease_owner = $2, lease_expires_at = $3, \
                     attempts = attempts + 1, updated_at = $4 WHERE id = $5 AND state = $6 \
                     RETURNING id, partner, origin, original_name, size, sha256, attempts",
                )
                .bind(t.new_state())
                .bind(cx.me)
                .bind(cx.until(lease))
                .bind(cx.now)
                .bind(flow)
                .bind(t.old_state())
                .fetch_optional(&mut *conn)
                .await?;
                let (id, partner, origin, original_name, size, sha256, attempts) = row.ok_or_else(|| {
                    SpoolError::Corrupt(format!("flow {flow} changed state under a row lock"))
                })?;
                insert_event(conn, cx, &t.event()).await?;
                Ok(ClaimedFlow {
                    id,
                    partner,
                    origin: state::parse(&origin)?,
                    original_name,
                    size,
                    sha256,
                    attempts,
                })
            }

            pub(crate) async fn claim_flow(
                conn: &mut Conn,
                cx: &Cx<'_>,
                lease: Lease,
            ) -> Result<Option<ClaimedFlow>> {
                let cand: Option<(i64, String, Option<String>)> = sqlx::query_as(&format!(
                    "SELECT id, state, lease_owner FROM flows WHERE state IN ('received', 'processing') \
                     AND (state = 'received' OR lease_expires_at < $1) ORDER BY received_at, id LIMIT 1{}",
                    D.skip_locked()
                ))
                .bind(cx.now)
                .fetch_optional(&mut *conn)
                .await?;
                let Some((id, st, owner)) = cand else {
                    return Ok(None);
                };
                let from: FlowState = state::parse(&st)?;
                let t = if from == FlowState::Received {
                    state::flow(id, FlowStep::Claim, Some(from), FlowState::Processing, "claimed")?
                } else {
                    let owner = owner.unwrap_or_else(|| "nobody".to_owned());
                    state::flow(
                        id,
                        FlowStep::Reclaim,
                        Some(from),
                        FlowState::Processing,
                        format!("lease of {owner} expired"),
                    )?
                };
                Ok(Some(take(conn, cx, &t, id, lease).await?))
            }

            pub(crate) async fn claim_for_replay(
                conn: &mut Conn,
                cx: &Cx<'_>,
                flow: FlowId,
                lease: Lease,
            ) -> Result<ClaimedFlow> {
                let (from, owner, expires) = lock_flow(conn, flow).await?;
                if from == FlowState::Processing
                    && owner.as_deref() != Some(cx.me)
                    && expires.is_some_and(|e| e >= cx.now)
                {
                    return Err(SpoolError::LeaseLost {
                        flow,
                        owner: owner.unwrap_or_default(),
                    });
                }
                let t = state::flow(flow, FlowStep::Replay, Some(from), FlowState::Processing, "replay")?;
                take(conn, cx, &t, flow, lease).await
            }

            pub(crate) async fn renew_lease(
                conn: &mut Conn,
                cx: &Cx<'_>,
                flow: FlowId,
                lease: Lease,
            ) -> Result<()> {
                let done = sqlx::query(
                    "UPDATE flows SET lease_expires_at = $1 WHERE id = $2 AND state = 'processing' \
                     AND lease_owner = $3",
                )
                .bind(cx.until(lease))
                .bind(flow)
                .bind(cx.me)
                .execute(&mut *conn)
                .await?;
                if done.rows_affected() == 1 {
                    return Ok(());
                }
                // Not renewed: say why.
                check_lease(conn, cx.me, flow, FlowState::Processing).await
            }

            pub(crate) async fn abandon_flow(
                conn: &mut Conn,
                cx: &Cx<'_>,
                flow: FlowId,
                reason: &str,
            ) -> Result<()> {
                check_lease(conn, cx.me, flow, FlowState::Received).await?;
                let t = state::flow(
                    flow,
                    FlowStep::Abandon,
                    Some(FlowState::Processing),
                    FlowState::Received,
                    reason,
                )?;
                sqlx::query(
                    "UPDATE flows SET state = $1, lease_owner = NULL, lease_expires_at = NULL, updated_at = $2 \
                     WHERE id = $3 AND state = $4",
                )
                .bind(t.new_state())
                .bind(cx.now)
                .bind(flow)
                .bind(t.old_state())
                .execute(&mut *conn)
                .await?;
                insert_event(conn, cx, &t.event()).await
            }

            pub(crate) async fn finish_flow(
                conn: &mut Conn,
                cx: &Cx<'_>,
                flow: FlowId,
                outcome: &FlowOutcome,
                documents: i64,
                acks: Acks<'_>,
            ) -> Result<Vec<AckId>> {
                let (to, step, code, message, reason) = match outcome {
                    FlowOutcome::Processed => (
                        FlowState::Processed,
                        FlowStep::Finish,
                        None,
                        None,
                        "processed".to_owned(),
                    ),
                    FlowOutcome::Failed { code, message } => (
                        FlowState::Failed,
                        FlowStep::Fail,
                        Some(code.as_str()),
                        Some(message.as_str()),
                        format!("{code}: {message}"),
                    ),
                };
                check_lease(conn, cx.me, flow, to).await?;
                let t = state::flow(flow, step, Some(FlowState::Processing), to, reason)?;
                for table in ["invoice_keys", "invoices"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE flow_id = $1 AND doc_index >= $2"))
                        .bind(flow)
                        .bind(documents.max(0))
                        .execute(&mut *conn)
                        .await?;
                }
                sqlx::query(
                    "UPDATE flows SET state = $1, updated_at = $2, lease_owner = NULL, lease_expires_at = NULL, \
                     failure_code = $3, failure_message = $4 WHERE id = $5 AND state = $6",
                )
                .bind(t.new_state())
                .bind(cx.now)
                .bind(code)
                .bind(message)
                .bind(flow)
                .bind(t.old_state())
                .execute(&mut *conn)
                .await?;
                insert_event(conn, cx, &t.event()).await?;
                // Outbox: one row per rejected invoice (kept, with its
                // notified_at, when the flow is processed again).
                sqlx::query(
                    "DELETE FROM notifications WHERE flow_id = $1 AND notified_at IS NULL AND doc_index IN \
                     (SELECT doc_index FROM invoices WHERE flow_id = $1 AND verdict = 'accepted')",
                )
                .bind(flow)
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "INSERT INTO notifications (flow_id, doc_index, partner, created_at) \
                     SELECT i.flow_id, i.doc_index, f.partner, $2 FROM invoices i JOIN flows f ON f.id = i.flow_id \
                     WHERE i.flow_id = $1 AND i.verdict = 'rejected' ON CONFLICT DO NOTHING",
                )
                .bind(flow)
                .bind(cx.now)
                .execute(&mut *conn)
                .await?;
                // The flow itself, when it was refused whole (kept, with
                // its notified_at, when it fails again; dropped while
                // pending when a replay processes it).
                if code.is_some() {
                    drop_held(conn, flow).await?;
                    owe_flow_notification(conn, cx, flow).await?;
                } else {
                    sqlx::query("DELETE FROM flow_notifications WHERE flow_id = $1 AND notified_at IS NULL")
                        .bind(flow)
                        .execute(&mut *conn)
                        .await?;
                }
                insert_acks(conn, cx, flow, acks).await
            }

            /// Put a flow refused whole in the digest outbox (once).
            async fn owe_flow_notification(conn: &mut Conn, cx: &Cx<'_>, flow: FlowId) -> Result<()> {
                sqlx::query(
                    "INSERT INTO flow_notifications (flow_id, partner, created_at) \
                     SELECT id, partner, $2 FROM flows WHERE id = $1 ON CONFLICT DO NOTHING",
                )
                .bind(flow)
                .bind(cx.now)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            pub(crate) async fn add_acks(
                conn: &mut Conn,
                cx: &Cx<'_>,
                flow: FlowId,
                acks: Acks<'_>,
            ) -> Result<Vec<AckId>> {
                let (st, _, _) = lock_flow(conn, flow).await?;
                // An MDN answers the receipt of a flow, not its processing:
                // it may be owed while the flow is still being processed.
                let receipts_only = acks.all_mdn();
                if !st.is_terminal() && !receipts_only {
                    return Err(SpoolError::IllegalTransition {
                        flow,
                        from: st.as_str().to_owned(),
                        to: "acknowledged".to_owned(),
                    });
                }
                insert_acks(conn, cx, flow, acks).await
            }

            pub(crate) async fn ack_delivered(conn: &mut Conn, cx: &Cx<'_>, ack: AckId) -> Result<()> {
                mark_delivered(conn, cx, By::Ack(ack), None, None).await.map(drop)
            }

            pub(crate) async fn ack_failed(conn: &mut Conn, cx: &Cx<'_>, ack: AckId, error: &str) -> Result<()> {
                record_delivery_failure(conn, cx, By::Ack(ack), error, None).await.map(drop)
            }

            pub(crate) async fn requeue_ack(conn: &mut Conn, cx: &Cx<'_>, ack: AckId) -> Result<()> {
                resend_delivery(conn, cx, By::Ack(ack)).await.map(drop)
            }

            /// Record a sent digest and mark the listed outbox rows of its
            /// partner notified: rejected invoices (`ids`, `notifications`)
            /// and flows refused whole (`flow_ids`, `flow_notifications`).
            /// See `outbox.rs`.
            pub(crate) async fn mark_notified(
                conn: &mut Conn,
                cx: &Cx<'_>,
                ids: &[i64],
                flow_ids: &[i64],
                digest: &crate::digest_row::NewDigest,
            ) -> Result<(i64, u64)> {
                let recipients = digest.recipients.join(", ");
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO digests (partner, sent_at, recipients, message_id, invoice_count, instance) \
                     VALUES ($1, $2, $3, $4, 0, $5) RETURNING id",
                )
                .bind(&digest.partner)
                .bind(cx.now)
                .bind(&recipients)
                .bind(digest.message_id.as_deref())
                .bind(cx.me)
                .fetch_one(&mut *conn)
                .await?;
                let mut counts = [0u64; 2];
                for (n, (table, entity, list)) in [
                    ("notifications", state::NOTIFICATION, ids),
                    ("flow_notifications", state::FLOW_NOTIFICATION, flow_ids),
                ]
                .into_iter()
                .enumerate()
                {
                    if list.is_empty() {
                        continue;
                    }
                    counts[n] = sqlx::query(&format!(
                        "UPDATE {table} SET notified_at = $1, digest_id = $2 WHERE notified_at IS NULL \
                         AND partner = $3 AND id {}",
                        D.in_json_ids(4)
                    ))
                    .bind(cx.now)
                    .bind(id)
                    .bind(&digest.partner)
                    .bind(json_ids(list))
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    // The event of every marked row, in the same transaction.
                    let ev = state::notification(
                        0,
                        NotificationState::Pending,
                        NotificationState::Notified,
                        id,
                    )?;
                    sqlx::query(&format!(
                        "INSERT INTO events (at, instance, entity, entity_id, from_state, to_state, reason) \
                         SELECT $1, $2, $3, id, $4, $5, $6 FROM {table} WHERE digest_id = $7"
                    ))
                    .bind(cx.now)
                    .bind(cx.me)
                    .bind(entity)
                    .bind(ev.from.as_deref())
                    .bind(&ev.to)
                    .bind(ev.reason.as_deref())
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                }
                sqlx::query("UPDATE digests SET invoice_count = $1, flow_count = $2 WHERE id = $3")
                    .bind(i32::try_from(counts[0]).unwrap_or(i32::MAX))
                    .bind(i32::try_from(counts[1]).unwrap_or(i32::MAX))
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                Ok((id, counts[0] + counts[1]))
            }
        }
    };
}

shared_steps!(sqlite, sqlx::SqliteConnection, Dialect::Sqlite);
shared_steps!(postgres, sqlx::PgConnection, Dialect::Postgres);
