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

/// The shared steps, compiled once per backend (see the module doc).
macro_rules! shared_steps {
    ($backend:ident, $Conn:ty, $dialect:expr) => {
        pub(crate) mod $backend {
            #![allow(clippy::too_many_arguments)]
            use chrono::{DateTime, Utc};

            use super::{json_ids, Cx, Dialect};
            use crate::invoices::clean_text;
            use crate::state::{self, Event, FlowStep};
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

            /// Create pending acknowledgements of a flow (and their events).
            pub(crate) async fn insert_acks(
                conn: &mut Conn,
                cx: &Cx<'_>,
                flow: FlowId,
                acks: &[(AckKind, String, String)],
            ) -> Result<Vec<AckId>> {
                let mut ids = Vec::with_capacity(acks.len());
                for (kind, destination, file_name) in acks {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO acknowledgements (flow_id, kind, destination, file_name, generated_at, \
                         updated_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
                    )
                    .bind(flow)
                    .bind(kind.as_str())
                    .bind(destination)
                    .bind(file_name)
                    .bind(cx.now)
                    .fetch_one(&mut *conn)
                    .await?;
                    insert_event(conn, cx, &state::ack_event(id, None, "pending", None)).await?;
                    ids.push(id);
                }
                Ok(ids)
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
                    "SELECT id FROM flows WHERE state <> 'duplicate' AND \
                     ((partner = $1 AND sha256 = $2) OR as2_message_id = $3) ORDER BY id LIMIT 1",
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
                insert_acks(conn, cx, id, &dup_acks(id)).await?;
                Ok(Registration::Duplicate { id, original })
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
                acks: &[(AckKind, String, String)],
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
                insert_acks(conn, cx, flow, acks).await
            }

            pub(crate) async fn add_acks(
                conn: &mut Conn,
                cx: &Cx<'_>,
                flow: FlowId,
                acks: &[(AckKind, String, String)],
            ) -> Result<Vec<AckId>> {
                let (st, _, _) = lock_flow(conn, flow).await?;
                // An MDN answers the receipt of a flow, not its processing:
                // it may be owed while the flow is still being processed.
                let receipts_only = acks.iter().all(|(kind, _, _)| *kind == AckKind::Mdn);
                if !st.is_terminal() && !receipts_only {
                    return Err(SpoolError::IllegalTransition {
                        flow,
                        from: st.as_str().to_owned(),
                        to: "acknowledged".to_owned(),
                    });
                }
                insert_acks(conn, cx, flow, acks).await
            }

            /// Update one acknowledgement (`sql` binds `$1` = now, `$2` =
            /// ack id, `$3` = `error` when given) and log the event.
            pub(crate) async fn ack_update(
                conn: &mut Conn,
                cx: &Cx<'_>,
                ack: AckId,
                sql: &str,
                error: Option<&str>,
                ev: Event,
            ) -> Result<()> {
                let mut q = sqlx::query(sql).bind(cx.now).bind(ack);
                if let Some(error) = error {
                    q = q.bind(error);
                }
                if q.execute(&mut *conn).await?.rows_affected() == 0 {
                    return Err(SpoolError::AckNotFound(ack));
                }
                insert_event(conn, cx, &ev).await
            }

            pub(crate) async fn ack_delivered(conn: &mut Conn, cx: &Cx<'_>, ack: AckId) -> Result<()> {
                ack_update(
                    conn,
                    cx,
                    ack,
                    "UPDATE acknowledgements SET delivered_at = $1, updated_at = $1, attempts = attempts + 1, \
                     last_error = NULL WHERE id = $2",
                    None,
                    state::ack_event(ack, Some("pending"), "delivered", None),
                )
                .await
            }

            pub(crate) async fn ack_failed(conn: &mut Conn, cx: &Cx<'_>, ack: AckId, error: &str) -> Result<()> {
                ack_update(
                    conn,
                    cx,
                    ack,
                    "UPDATE acknowledgements SET attempts = attempts + 1, last_error = $3, updated_at = $1 \
                     WHERE id = $2",
                    Some(error),
                    state::ack_event(ack, Some("pending"), "pending", Some(format!("delivery failed: {error}"))),
                )
                .await
            }

            pub(crate) async fn requeue_ack(conn: &mut Conn, cx: &Cx<'_>, ack: AckId) -> Result<()> {
                ack_update(
                    conn,
                    cx,
                    ack,
                    "UPDATE acknowledgements SET delivered_at = NULL, updated_at = $1 WHERE id = $2",
                    None,
                    state::ack_event(ack, Some("delivered"), "pending", Some("resend requested".to_owned())),
                )
                .await
            }

            /// Record a sent digest and mark the listed outbox rows of its
            /// partner notified (see `outbox.rs`).
            pub(crate) async fn mark_notified(
                conn: &mut Conn,
                cx: &Cx<'_>,
                ids: &[i64],
                digest: &crate::NewDigest,
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
                let marked = sqlx::query(&format!(
                    "UPDATE notifications SET notified_at = $1, digest_id = $2 WHERE notified_at IS NULL \
                     AND partner = $3 AND id {}",
                    D.in_json_ids(4)
                ))
                .bind(cx.now)
                .bind(id)
                .bind(&digest.partner)
                .bind(json_ids(ids))
                .execute(&mut *conn)
                .await?
                .rows_affected();
                sqlx::query("UPDATE digests SET invoice_count = $1 WHERE id = $2")
                    .bind(i32::try_from(marked).unwrap_or(i32::MAX))
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                // The event of every marked row, in the same transaction.
                let ev = state::notified_event(0, id);
                sqlx::query(
                    "INSERT INTO events (at, instance, entity, entity_id, from_state, to_state, reason) \
                     SELECT $1, $2, $3, id, $4, $5, $6 FROM notifications WHERE digest_id = $7",
                )
                .bind(cx.now)
                .bind(cx.me)
                .bind(ev.entity)
                .bind(ev.from.as_deref())
                .bind(&ev.to)
                .bind(ev.reason.as_deref())
                .bind(id)
                .execute(&mut *conn)
                .await?;
                Ok((id, marked))
            }
        }
    };
}

shared_steps!(sqlite, sqlx::SqliteConnection, Dialect::Sqlite);
shared_steps!(postgres, sqlx::PgConnection, Dialect::Postgres);
