//! PostgreSQL backend (several quai instances on one database).
//!
//! - Time comes from the database clock (`now()`), so leases mean the same
//!   thing to every instance whatever their clocks say.
//! - Claims: `SELECT … FOR UPDATE SKIP LOCKED` on the oldest claimable flow,
//!   then the update, in one transaction: two instances never wait for each
//!   other nor get the same flow.
//! - Writes on a claimed flow (`store_invoices`, `finish_flow`, ...) first
//!   lock the flow row (`FOR NO KEY UPDATE`) and check the lease, so an
//!   instance whose lease was taken over cannot write after the new owner.
//! - Invoice batches are written with `UNNEST` over arrays: one statement of
//!   constant shape (a prepared statement reused) whatever the batch size.
//! - Duplicate-key claims are inserted in key order, so that two instances
//!   claiming overlapping keys wait for each other instead of deadlocking.
//! - The canonical JSON is stored zstd-compressed (`rows::canonical`): the
//!   server no longer compresses it itself (TOAST's pglz, on every document
//!   over 2 KB) and writes a fraction of the bytes; its CPU per 100,000
//!   invoices of 4.9 KB fell from 7.9 s to 2.9 s (`examples/write_rate.rs`).
//! - `invoices.flow_id` has no foreign key (migration 0004: a trigger on
//!   `flows` keeps the cascade): its per-row check cost about 15 % of the
//!   server's CPU and re-checked what the flow row lock above guarantees.
//! - Measured and not kept: `COPY` for batches none of whose rows exist
//!   (no gain over the `UNNEST` upsert, with both cheaper measures in).

use std::collections::HashMap;
use std::str::FromStr;

use chrono::NaiveDate;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool};

use crate::invoices::{clean_text, Key, Plan};
use crate::rows::{self, canonical};
use crate::state::{self, Event, FlowStep};
use crate::*;

pub(crate) struct PgBackend {
    pub(crate) pool: PgPool,
    pub(crate) options: PgConnectOptions,
    me: String,
}

fn secs(lease: Lease) -> f64 {
    lease.duration.as_secs_f64()
}

pub(crate) async fn insert_event(conn: &mut PgConnection, me: &str, ev: &Event) -> Result<()> {
    sqlx::query(
        "INSERT INTO events (at, instance, entity, entity_id, from_state, to_state, reason) \
         VALUES (now(), $1, $2, $3, $4, $5, $6)",
    )
    .bind(me)
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
async fn insert_acks(
    conn: &mut PgConnection,
    me: &str,
    flow: FlowId,
    acks: &[(AckKind, String, String)],
) -> Result<Vec<AckId>> {
    let mut ids = Vec::with_capacity(acks.len());
    for (kind, destination, file_name) in acks {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO acknowledgements (flow_id, kind, destination, file_name, generated_at, updated_at) \
             VALUES ($1, $2, $3, $4, now(), now()) RETURNING id",
        )
        .bind(flow)
        .bind(kind.as_str())
        .bind(destination)
        .bind(file_name)
        .fetch_one(&mut *conn)
        .await?;
        insert_event(conn, me, &state::ack_event(id, None, "pending", None)).await?;
        ids.push(id);
    }
    Ok(ids)
}

/// A concurrent claim of the same invoice key won the race.
fn key_race(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| {
        d.code().as_deref() == Some("23505") && d.constraint() == Some("invoice_keys_pkey")
    })
}

/// Lock a flow row; its state, lease owner, and whether the lease is live.
async fn lock_flow(
    conn: &mut PgConnection,
    flow: FlowId,
) -> Result<(FlowState, Option<String>, bool)> {
    let row: Option<(String, Option<String>, bool)> = sqlx::query_as(
        "SELECT state, lease_owner, coalesce(lease_expires_at >= now(), false) FROM flows \
         WHERE id = $1 FOR NO KEY UPDATE",
    )
    .bind(flow)
    .fetch_optional(conn)
    .await?;
    let (s, owner, live) = row.ok_or(SpoolError::FlowNotFound(flow))?;
    Ok((state::parse::<FlowState>(&s)?, owner, live))
}

/// Lock a flow row and check that this instance holds its lease.
async fn check_lease(conn: &mut PgConnection, me: &str, flow: FlowId, to: FlowState) -> Result<()> {
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

impl PgBackend {
    pub(crate) async fn connect(url: &str, me: &str) -> Result<PgBackend> {
        let options = PgConnectOptions::from_str(url)?.application_name(&format!("quai {me}"));
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone())
            .await?;
        // sqlx takes an advisory lock while migrating: instances starting
        // together apply the migrations once.
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgBackend {
            pool,
            options,
            me: me.to_owned(),
        })
    }

    pub(crate) async fn ensure_partner(&self, partner: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO partners (id, created_at) VALUES ($1, now()) ON CONFLICT DO NOTHING",
        )
        .bind(partner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(crate) async fn register_flow(
        &self,
        flow: &NewFlow,
        dup_acks: &DupAcks<'_>,
    ) -> Result<Registration> {
        // Text from the outside world: PostgreSQL refuses NUL characters.
        let partner = clean_text(&flow.partner);
        let name = clean_text(&flow.original_name);
        let msgid = flow.as2_message_id.as_deref().map(clean_text);
        let mut tx = self.pool.begin().await?;
        let result = async {
            sqlx::query(
                "INSERT INTO partners (id, created_at) VALUES ($1, now()) ON CONFLICT DO NOTHING",
            )
            .bind(partner.as_ref())
            .execute(&mut *tx)
            .await?;
            let new = state::flow(
                0,
                FlowStep::Register,
                None,
                FlowState::Received,
                "registered",
            )?;
            // A concurrent registration of the same flow makes this insert wait
            // for the other transaction, then do nothing.
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO flows (partner, origin, original_name, size, sha256, as2_message_id, state, \
                 received_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now()) \
                 ON CONFLICT DO NOTHING RETURNING id",
            )
            .bind(partner.as_ref())
            .bind(flow.origin.as_str())
            .bind(name.as_ref())
            .bind(flow.size)
            .bind(&flow.sha256)
            .bind(msgid.as_deref())
            .bind(new.new_state())
            .fetch_optional(&mut *tx)
            .await?;
            let result = match id {
                Some(id) => {
                    insert_event(&mut tx, &self.me, &new.for_flow(id).event()).await?;
                    Registration::New(id)
                }
                None => {
                    let original: i64 = sqlx::query_scalar(
                        "SELECT id FROM flows WHERE state <> 'duplicate' AND \
                         ((partner = $1 AND sha256 = $2) OR as2_message_id = $3) ORDER BY id LIMIT 1",
                    )
                    .bind(partner.as_ref())
                    .bind(&flow.sha256)
                    .bind(msgid.as_deref())
                    .fetch_one(&mut *tx)
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
                         VALUES ($1, $2, $3, $4, $5, $6, $7, now(), now(), $8) RETURNING id",
                    )
                    .bind(partner.as_ref())
                    .bind(flow.origin.as_str())
                    .bind(name.as_ref())
                    .bind(flow.size)
                    .bind(&flow.sha256)
                    .bind(msgid.as_deref())
                    .bind(dup.new_state())
                    .bind(original)
                    .fetch_one(&mut *tx)
                    .await?;
                    insert_event(&mut tx, &self.me, &dup.for_flow(id).event()).await?;
                    insert_acks(&mut tx, &self.me, id, &dup_acks(id)).await?;
                    Registration::Duplicate { id, original }
                }
            };
            Ok::<_, SpoolError>(result)
        }
        .await;
        crate::settle(tx, result).await
    }

    /// Move a locked flow to `processing` under this instance's lease.
    async fn take(
        &self,
        conn: &mut PgConnection,
        t: &state::Transition,
        flow: FlowId,
        lease: Lease,
    ) -> Result<ClaimedFlow> {
        let row: Option<(i64, String, String, String, i64, String, i32)> = sqlx::query_as(
            "UPDATE flows SET state = 'processing', lease_owner = $1, \
             lease_expires_at = now() + make_interval(secs => $2), \
             attempts = attempts + 1, updated_at = now() WHERE id = $3 AND state = $4 \
             RETURNING id, partner, origin, original_name, size, sha256, attempts",
        )
        .bind(&self.me)
        .bind(secs(lease))
        .bind(flow)
        .bind(t.old_state())
        .fetch_optional(&mut *conn)
        .await?;
        let (id, partner, origin, original_name, size, sha256, attempts) =
            row.ok_or_else(|| {
                SpoolError::Corrupt(format!("flow {flow} changed state under a row lock"))
            })?;
        insert_event(conn, &self.me, &t.event()).await?;
        Ok(ClaimedFlow {
            id,
            partner,
            origin: state::parse::<Origin>(&origin)?,
            original_name,
            size,
            sha256,
            attempts,
        })
    }

    pub(crate) async fn claim_flow(&self, lease: Lease) -> Result<Option<ClaimedFlow>> {
        let mut tx = self.pool.begin().await?;
        let result = async {
            let cand: Option<(i64, String, Option<String>)> = sqlx::query_as(
                "SELECT id, state, lease_owner FROM flows WHERE state IN ('received', 'processing') \
                 AND (state = 'received' OR lease_expires_at < now()) ORDER BY received_at, id LIMIT 1 \
                 FOR UPDATE SKIP LOCKED",
            )
            .fetch_optional(&mut *tx)
            .await?;
            let Some((id, st, owner)) = cand else {
                return Ok(None);
            };
            let from = state::parse::<FlowState>(&st)?;
            let t = if from == FlowState::Received {
                state::flow(
                    id,
                    FlowStep::Claim,
                    Some(from),
                    FlowState::Processing,
                    "claimed",
                )?
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
            let claimed = self.take(&mut tx, &t, id, lease).await?;
            Ok::<_, SpoolError>(Some(claimed))
        }
        .await;
        crate::settle(tx, result).await
    }

    pub(crate) async fn claim_for_replay(&self, flow: FlowId, lease: Lease) -> Result<ClaimedFlow> {
        let mut tx = self.pool.begin().await?;
        let result = async {
            let (from, owner, live) = lock_flow(&mut tx, flow).await?;
            if from == FlowState::Processing && owner.as_deref() != Some(self.me.as_str()) && live {
                return Err(SpoolError::LeaseLost {
                    flow,
                    owner: owner.unwrap_or_default(),
                });
            }
            let t = state::flow(
                flow,
                FlowStep::Replay,
                Some(from),
                FlowState::Processing,
                "replay",
            )?;
            let claimed = self.take(&mut tx, &t, flow, lease).await?;
            Ok::<_, SpoolError>(claimed)
        }
        .await;
        crate::settle(tx, result).await
    }

    pub(crate) async fn renew_lease(&self, flow: FlowId, lease: Lease) -> Result<()> {
        let done = sqlx::query(
            "UPDATE flows SET lease_expires_at = now() + make_interval(secs => $1) \
             WHERE id = $2 AND state = 'processing' AND lease_owner = $3",
        )
        .bind(secs(lease))
        .bind(flow)
        .bind(&self.me)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        // Not renewed: say why (the check locks the row, so roll back at once).
        let mut check = self.pool.begin().await?;
        let why = check_lease(&mut check, &self.me, flow, FlowState::Processing).await;
        check.rollback().await?;
        why
    }

    pub(crate) async fn abandon_flow(&self, flow: FlowId, reason: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let result = async {
            check_lease(&mut tx, &self.me, flow, FlowState::Received).await?;
            let t = state::flow(
                flow,
                FlowStep::Abandon,
                Some(FlowState::Processing),
                FlowState::Received,
                reason,
            )?;
            sqlx::query(
                "UPDATE flows SET state = $1, lease_owner = NULL, lease_expires_at = NULL, updated_at = now() \
                 WHERE id = $2 AND state = $3",
            )
            .bind(t.new_state())
            .bind(flow)
            .bind(t.old_state())
            .execute(&mut *tx)
            .await?;
            insert_event(&mut tx, &self.me, &t.event()).await?;
            Ok::<_, SpoolError>(())
        }
        .await;
        crate::settle(tx, result).await
    }

    /// Claims are inserted with a plain `INSERT … WHERE NOT EXISTS` (several
    /// times cheaper than `ON CONFLICT`'s speculative insertion); when another
    /// instance claims one of the same keys at the same moment, the insert
    /// fails on the primary key and the whole batch is run again, then
    /// seeing the other claim.
    pub(crate) async fn store_invoices(
        &self,
        flow: FlowId,
        batch: &[NewInvoice],
    ) -> Result<Vec<StoredInvoice>> {
        let mut attempt = 0;
        loop {
            match self.store_once(flow, batch).await {
                Err(SpoolError::Database(e)) if attempt < 10 && key_race(&e) => {
                    tracing::debug!(
                        flow,
                        attempt,
                        "invoice key claimed concurrently; batch retried"
                    );
                    attempt += 1
                }
                other => return other,
            }
        }
    }

    async fn store_once(&self, flow: FlowId, batch: &[NewInvoice]) -> Result<Vec<StoredInvoice>> {
        let plan = Plan::new(batch)?;
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await?;
        let result = async {
            check_lease(&mut tx, &self.me, flow, FlowState::Processing).await?;

            sqlx::query("DELETE FROM invoice_keys WHERE flow_id = $1 AND doc_index = ANY($2)")
                .bind(flow)
                .bind(plan.doc_indexes())
                .execute(&mut *tx)
                .await?;
            let mut claims = plan.claims();
            claims.sort_by(|a, b| {
                (&a.0.seller, &a.0.number, a.0.year).cmp(&(&b.0.seller, &b.0.number, b.0.year))
            });
            let mut refused: HashMap<Key, FlowId> = HashMap::new();
            if !claims.is_empty() {
                let sellers: Vec<&str> = claims.iter().map(|c| c.0.seller.as_str()).collect();
                let numbers: Vec<&str> = claims.iter().map(|c| c.0.number.as_str()).collect();
                let years: Vec<i32> = claims.iter().map(|c| c.0.year).collect();
                let docs: Vec<i64> = claims.iter().map(|c| c.1).collect();
                let got: Vec<(String, String, i32)> = sqlx::query_as(
                    "INSERT INTO invoice_keys (seller_id, number, year, flow_id, doc_index) \
                     SELECT s, n, y, $5, d FROM UNNEST($1::text[], $2::text[], $3::int[], $4::bigint[]) \
                     WITH ORDINALITY AS t(s, n, y, d, o) WHERE NOT EXISTS (SELECT 1 FROM invoice_keys k \
                     WHERE k.seller_id = t.s AND k.number = t.n AND k.year = t.y) ORDER BY o \
                     RETURNING seller_id, number, year",
                )
                .bind(&sellers)
                .bind(&numbers)
                .bind(&years)
                .bind(&docs)
                .bind(flow)
                .fetch_all(&mut *tx)
                .await?;
                if got.len() < claims.len() {
                    let got: std::collections::HashSet<Key> = got
                        .into_iter()
                        .map(|(seller, number, year)| Key {
                            seller,
                            number,
                            year,
                        })
                        .collect();
                    let lost: Vec<&Key> = claims
                        .iter()
                        .map(|c| c.0)
                        .filter(|k| !got.contains(*k))
                        .collect();
                    let holders: Vec<(String, String, i32, i64)> = sqlx::query_as(
                        "SELECT k.seller_id, k.number, k.year, k.flow_id FROM invoice_keys k \
                         JOIN UNNEST($1::text[], $2::text[], $3::int[]) AS t(s, n, y) \
                         ON k.seller_id = t.s AND k.number = t.n AND k.year = t.y",
                    )
                    .bind(lost.iter().map(|k| k.seller.as_str()).collect::<Vec<_>>())
                    .bind(lost.iter().map(|k| k.number.as_str()).collect::<Vec<_>>())
                    .bind(lost.iter().map(|k| k.year).collect::<Vec<_>>())
                    .fetch_all(&mut *tx)
                    .await?;
                    for (seller, number, year, holder) in holders {
                        refused.insert(
                            Key {
                                seller,
                                number,
                                year,
                            },
                            holder,
                        );
                    }
                    if refused.len() < lost.len() {
                        return Err(SpoolError::Corrupt(
                            "an invoice key was refused but has no holder".into(),
                        ));
                    }
                }
            }
            let decided = plan.decide(flow, &refused);

            let mut doc_index = Vec::with_capacity(decided.len());
            let mut entry = Vec::with_capacity(decided.len());
            let mut syntax = Vec::with_capacity(decided.len());
            let mut profile = Vec::with_capacity(decided.len());
            let mut seller = Vec::with_capacity(decided.len());
            let mut number = Vec::with_capacity(decided.len());
            let mut issue: Vec<Option<NaiveDate>> = Vec::with_capacity(decided.len());
            let mut type_code = Vec::with_capacity(decided.len());
            let mut currency = Vec::with_capacity(decided.len());
            let mut without = Vec::with_capacity(decided.len());
            let mut with = Vec::with_capacity(decided.len());
            let mut due = Vec::with_capacity(decided.len());
            let mut verdict = Vec::with_capacity(decided.len());
            let mut duplicate = Vec::with_capacity(decided.len());
            let mut reasons = Vec::with_capacity(decided.len());
            // The canonical JSON goes in compressed (see `rows::canonical`).
            let mut zstd = canonical::Compressor::new()?;
            let mut frames: Vec<Option<Vec<u8>>> = Vec::with_capacity(decided.len());
            for d in &decided {
                let i = &*d.inv;
                doc_index.push(i.doc_index);
                entry.push(i.entry.as_str());
                syntax.push(i.syntax.as_deref());
                profile.push(i.profile.as_deref());
                seller.push(i.seller_id.as_deref());
                number.push(i.number.as_deref());
                issue.push(i.issue_date);
                type_code.push(i.type_code.as_deref());
                currency.push(i.currency.as_deref());
                without.push(rows::decimal_str(i.total_without_vat));
                with.push(rows::decimal_str(i.total_with_vat));
                due.push(rows::decimal_str(i.amount_due));
                verdict.push(d.verdict.as_str());
                duplicate.push(d.duplicate);
                reasons.push(d.reasons_json());
                frames.push(i.canonical_json.as_deref().map(|j| zstd.compress(j)).transpose()?);
            }
            sqlx::query(
                "INSERT INTO invoices (flow_id, doc_index, entry, syntax, profile, seller_id, number, \
                 issue_date, type_code, currency, total_without_vat, total_with_vat, amount_due, verdict, \
                 duplicate, reasons, canonical_z, stored_at) \
                 SELECT $1, t.doc_index, t.entry, t.syntax, t.profile, t.seller_id, t.number, t.issue_date, \
                 t.type_code, t.currency, t.net::numeric, t.gross::numeric, t.due::numeric, t.verdict, \
                 t.duplicate, t.reasons::jsonb, t.canonical_z, now() \
                 FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
                 $8::date[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], \
                 $15::bool[], $16::text[], $17::bytea[]) AS t(doc_index, entry, syntax, profile, seller_id, \
                 number, issue_date, type_code, currency, net, gross, due, verdict, duplicate, reasons, \
                 canonical_z) \
                 ON CONFLICT (flow_id, doc_index) DO UPDATE SET entry = excluded.entry, \
                 syntax = excluded.syntax, profile = excluded.profile, seller_id = excluded.seller_id, \
                 number = excluded.number, issue_date = excluded.issue_date, type_code = excluded.type_code, \
                 currency = excluded.currency, total_without_vat = excluded.total_without_vat, \
                 total_with_vat = excluded.total_with_vat, amount_due = excluded.amount_due, \
                 verdict = excluded.verdict, duplicate = excluded.duplicate, reasons = excluded.reasons, \
                 canonical = NULL, canonical_z = excluded.canonical_z, stored_at = excluded.stored_at",
            )
            .bind(flow)
            .bind(&doc_index)
            .bind(&entry)
            .bind(&syntax)
            .bind(&profile)
            .bind(&seller)
            .bind(&number)
            .bind(&issue)
            .bind(&type_code)
            .bind(&currency)
            .bind(&without)
            .bind(&with)
            .bind(&due)
            .bind(&verdict)
            .bind(&duplicate)
            .bind(&reasons)
            .bind(&frames)
            .execute(&mut *tx)
            .await?;
            Ok::<_, SpoolError>(decided.iter().map(|d| d.stored()).collect())
        }
        .await;
        crate::settle(tx, result).await
    }

    pub(crate) async fn finish_flow(
        &self,
        flow: FlowId,
        outcome: &FlowOutcome,
        documents: i64,
        acks: &[(AckKind, String, String)],
    ) -> Result<Vec<AckId>> {
        let mut tx = self.pool.begin().await?;
        let result = async {
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
            check_lease(&mut tx, &self.me, flow, to).await?;
            let t = state::flow(flow, step, Some(FlowState::Processing), to, reason)?;
            for table in ["invoice_keys", "invoices"] {
                sqlx::query(&format!(
                    "DELETE FROM {table} WHERE flow_id = $1 AND doc_index >= $2"
                ))
                .bind(flow)
                .bind(documents.max(0))
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "UPDATE flows SET state = $1, updated_at = now(), lease_owner = NULL, lease_expires_at = NULL, \
                 failure_code = $2, failure_message = $3 WHERE id = $4 AND state = $5",
            )
            .bind(t.new_state())
            .bind(code)
            .bind(message)
            .bind(flow)
            .bind(t.old_state())
            .execute(&mut *tx)
            .await?;
            insert_event(&mut tx, &self.me, &t.event()).await?;
            sqlx::query(
                "DELETE FROM notifications WHERE flow_id = $1 AND notified_at IS NULL AND doc_index IN \
                 (SELECT doc_index FROM invoices WHERE flow_id = $1 AND verdict = 'accepted')",
            )
            .bind(flow)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO notifications (flow_id, doc_index, partner, created_at) \
                 SELECT i.flow_id, i.doc_index, f.partner, now() FROM invoices i JOIN flows f ON f.id = i.flow_id \
                 WHERE i.flow_id = $1 AND i.verdict = 'rejected' ON CONFLICT DO NOTHING",
            )
            .bind(flow)
            .execute(&mut *tx)
            .await?;
            let ids = insert_acks(&mut tx, &self.me, flow, acks).await?;
            Ok::<_, SpoolError>(ids)
        }
        .await;
        crate::settle(tx, result).await
    }

    pub(crate) async fn add_acks(
        &self,
        flow: FlowId,
        acks: &[(AckKind, String, String)],
    ) -> Result<Vec<AckId>> {
        let mut tx = self.pool.begin().await?;
        let result = async {
            let (st, _, _) = lock_flow(&mut tx, flow).await?;
            // An MDN answers the receipt of a flow, not its processing: it
            // may be owed while the flow is still being processed.
            let receipts_only = acks.iter().all(|(kind, _, _)| *kind == AckKind::Mdn);
            if !st.is_terminal() && !receipts_only {
                return Err(SpoolError::IllegalTransition {
                    flow,
                    from: st.as_str().to_owned(),
                    to: "acknowledged".to_owned(),
                });
            }
            let ids = insert_acks(&mut tx, &self.me, flow, acks).await?;
            Ok::<_, SpoolError>(ids)
        }
        .await;
        crate::settle(tx, result).await
    }

    /// Update one acknowledgement (`sql` binds `$1` = ack id) and log the
    /// event, in one transaction.
    async fn ack_update(
        &self,
        ack: AckId,
        sql: &str,
        error: Option<&str>,
        ev: Event,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let result = async {
            let mut q = sqlx::query(sql).bind(ack);
            if let Some(error) = error {
                q = q.bind(error);
            }
            if q.execute(&mut *tx).await?.rows_affected() == 0 {
                return Err(SpoolError::AckNotFound(ack));
            }
            insert_event(&mut tx, &self.me, &ev).await?;
            Ok::<_, SpoolError>(())
        }
        .await;
        crate::settle(tx, result).await
    }

    pub(crate) async fn ack_delivered(&self, ack: AckId) -> Result<()> {
        self.ack_update(
            ack,
            "UPDATE acknowledgements SET delivered_at = now(), updated_at = now(), attempts = attempts + 1, \
             last_error = NULL WHERE id = $1",
            None,
            state::ack_event(ack, Some("pending"), "delivered", None),
        )
        .await
    }

    pub(crate) async fn ack_failed(&self, ack: AckId, error: &str) -> Result<()> {
        self.ack_update(
            ack,
            "UPDATE acknowledgements SET attempts = attempts + 1, last_error = $2, updated_at = now() \
             WHERE id = $1",
            Some(error),
            state::ack_event(ack, Some("pending"), "pending", Some(format!("delivery failed: {error}"))),
        )
        .await
    }

    pub(crate) async fn requeue_ack(&self, ack: AckId) -> Result<()> {
        self.ack_update(
            ack,
            "UPDATE acknowledgements SET delivered_at = NULL, updated_at = now() WHERE id = $1",
            None,
            state::ack_event(
                ack,
                Some("delivered"),
                "pending",
                Some("resend requested".to_owned()),
            ),
        )
        .await
    }
}
