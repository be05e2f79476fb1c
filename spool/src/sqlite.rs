//! SQLite backend (the embedded default).
//!
//! Settings, and why:
//! - `journal_mode=WAL`: readers (status page, CLI) never block the writer.
//! - `synchronous=FULL` by default: the intake deletes the source file (or
//!   answers the AS2 MDN) right after `register_flow` commits, so that commit
//!   must survive a power loss, not only a process crash (in WAL mode NORMAL
//!   may lose the last commits on power loss). Transactions whose loss is
//!   harmless (claims, invoice batches: the flow is processed again) commit
//!   with NORMAL instead, see [`Durability`]; each write transaction sets its level.
//! - `busy_timeout=30s`: several handles (or processes) may write; they wait
//!   for each other instead of failing.
//! - `foreign_keys=ON`: rows never outlive their flow.
//! - One connection for this backend's write transactions (reads use the
//!   pool): its page cache stays valid from one transaction to the next.
//!   Larger `cache_size`, `wal_autocheckpoint` and page sizes were measured
//!   with `examples/write_rate.rs` and gave nothing measurable.
//!
//! Invoice batches (`store_invoices`) cost a constant number of statements
//! whatever their size: the duplicate-key claims and the lookup of refused
//! keys are one statement each over a JSON array (`json_each`), the rows one
//! multi-row INSERT per 1820 invoices; every statement is a round trip to
//! sqlx's SQLite worker thread (two thread wake-ups), and rows returned one
//! by one cost one each. The canonical JSON is stored zstd-compressed
//! (`rows::canonical`).
//!
//! Every write transaction starts with `BEGIN IMMEDIATE`: it takes the write
//! lock up front, so a transaction never has to upgrade a read snapshot to a
//! write lock (which fails with SQLITE_BUSY regardless of the busy timeout in
//! WAL mode). That also makes claim (select the oldest claimable flow, then
//! update it) atomic across handles and processes.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

use crate::invoices::{clean_text, Key, Plan};
use crate::rows::{self, canonical};
use crate::state::{self, Event, FlowStep};
use crate::*;

/// How durable a write transaction's commit must be.
#[derive(Clone, Copy)]
pub(crate) enum Durability {
    /// fsync the WAL at commit: registrations (the source is deleted right
    /// after), finished flows (their answers go out right after), outbox
    /// and acknowledgement marks.
    Full,
    /// No fsync at commit: claims, invoice batches, abandons. A power loss
    /// can only drop a suffix of such commits (the next `Full` commit syncs
    /// everything before it), and losing them only means a flow is
    /// processed again, which is idempotent.
    Relaxed,
}

impl Durability {
    /// `BEGIN` statement that also sets the level for this commit (executed
    /// as one script by SQLite).
    pub(crate) fn begin(self) -> &'static str {
        match self {
            Durability::Full => "PRAGMA synchronous = FULL; BEGIN IMMEDIATE",
            Durability::Relaxed => "PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE",
        }
    }
}

/// Columns bound per invoice row in the multi-row INSERT.
const INVOICE_COLUMNS: usize = 18;

/// Invoice rows per INSERT statement: as many as SQLite's bound-variable
/// limit allows (32766 since SQLite 3.32, the bundled one is newer), so a
/// batch of up to 1820 invoices is one statement. Fewer statements mean
/// fewer round trips to sqlx's SQLite worker thread, each of which costs
/// two thread wake-ups.
pub(crate) const INVOICE_ROWS: usize = 32766 / INVOICE_COLUMNS;

/// The claims of a batch as a JSON array of `[seller, number, year,
/// doc_index]`, read back by `json_each` in SQL.
fn claims_json(claims: &[(&Key, i64)]) -> String {
    let rows: Vec<(&str, &str, i32, i64)> = claims
        .iter()
        .map(|(k, doc)| (k.seller.as_str(), k.number.as_str(), k.year, *doc))
        .collect();
    // Serializing strings and integers cannot fail.
    serde_json::to_string(&rows).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) struct SqliteBackend {
    pub(crate) pool: SqlitePool,
    /// The one connection this backend's own write transactions use (see
    /// [`SqliteBackend::connect`]).
    writes: SqlitePool,
    me: String,
    /// Serializes this process's writes (see `dispatch_write!`).
    pub(crate) writer: tokio::sync::Mutex<()>,
}

pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

fn lease_until(now: DateTime<Utc>, lease: Lease) -> DateTime<Utc> {
    now + chrono::Duration::from_std(lease.duration).unwrap_or(chrono::Duration::days(365))
}

pub(crate) async fn insert_event(
    conn: &mut SqliteConnection,
    me: &str,
    at: DateTime<Utc>,
    ev: &Event,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO events (at, instance, entity, entity_id, from_state, to_state, reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(at)
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
    conn: &mut SqliteConnection,
    me: &str,
    now: DateTime<Utc>,
    flow: FlowId,
    acks: &[(AckKind, String, String)],
) -> Result<Vec<AckId>> {
    let mut ids = Vec::with_capacity(acks.len());
    for (kind, destination, file_name) in acks {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO acknowledgements (flow_id, kind, destination, file_name, generated_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(flow)
        .bind(kind.as_str())
        .bind(destination)
        .bind(file_name)
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
        insert_event(conn, me, now, &state::ack_event(id, None, "pending", None)).await?;
        ids.push(id);
    }
    Ok(ids)
}

/// Current state, lease owner and lease expiry of a flow.
async fn flow_lock_info(
    conn: &mut SqliteConnection,
    flow: FlowId,
) -> Result<(FlowState, Option<String>, Option<DateTime<Utc>>)> {
    let row: Option<(String, Option<String>, Option<DateTime<Utc>>)> =
        sqlx::query_as("SELECT state, lease_owner, lease_expires_at FROM flows WHERE id = $1")
            .bind(flow)
            .fetch_optional(conn)
            .await?;
    let (s, owner, exp) = row.ok_or(SpoolError::FlowNotFound(flow))?;
    Ok((state::parse::<FlowState>(&s)?, owner, exp))
}

/// Check that this instance holds the lease on a processing flow.
async fn check_lease(
    conn: &mut SqliteConnection,
    me: &str,
    flow: FlowId,
    to: FlowState,
) -> Result<()> {
    let (st, owner, _) = flow_lock_info(conn, flow).await?;
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

impl SqliteBackend {
    pub(crate) async fn connect(url: &str, me: &str) -> Result<SqliteBackend> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        // An in-memory database exists once per connection: keep one.
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(if memory { 1 } else { 4 })
            .idle_timeout(if memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if memory {
                None
            } else {
                Some(Duration::from_secs(1800))
            })
            .connect_with(opts.clone())
            .await?;
        // This backend's write transactions all go through one connection:
        // SQLite drops a connection's page cache whenever another connection
        // wrote since its last transaction, so alternating writers re-read
        // the B-tree pages they just wrote (half of the `pread`s of an
        // invoice batch). Writers of this process are serialized anyway.
        let writes = if memory {
            pool.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(0)
                .idle_timeout(Some(Duration::from_secs(600)))
                .max_lifetime(Some(Duration::from_secs(1800)))
                .connect_with(opts)
                .await?
        };
        // Two processes opening a new spool at once (`quai run` and a
        // `quai status`) may both try to apply a migration: SQLite's migrator
        // takes no lock, so the loser fails. Applied migrations are skipped
        // on the next try, so try again a few times.
        let mut attempt = 0;
        loop {
            match sqlx::migrate!("./migrations/sqlite").run(&pool).await {
                Ok(()) => break,
                Err(e) if attempt < 5 => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "spool migration raced; trying again");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(SqliteBackend {
            pool,
            writes,
            me: me.to_owned(),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    /// Start a write transaction (see the module doc on durability).
    async fn begin(&self, sync: Durability) -> Result<sqlx::Transaction<'static, Sqlite>> {
        Ok(self.writes.begin_with(sync.begin()).await?)
    }

    pub(crate) async fn ensure_partner(&self, partner: &str) -> Result<()> {
        sqlx::query("INSERT INTO partners (id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(partner)
            .bind(now())
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
        let mut tx = self.begin(Durability::Full).await?;
        let result = async {
            let now = now();
            sqlx::query("INSERT INTO partners (id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(partner.as_ref())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let new = state::flow(
                0,
                FlowStep::Register,
                None,
                FlowState::Received,
                "registered",
            )?;
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
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let result = match id {
                Some(id) => {
                    insert_event(&mut tx, &self.me, now, &new.for_flow(id).event()).await?;
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
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) RETURNING id",
                    )
                    .bind(partner.as_ref())
                    .bind(flow.origin.as_str())
                    .bind(name.as_ref())
                    .bind(flow.size)
                    .bind(&flow.sha256)
                    .bind(msgid.as_deref())
                    .bind(dup.new_state())
                    .bind(now)
                    .bind(original)
                    .fetch_one(&mut *tx)
                    .await?;
                    insert_event(&mut tx, &self.me, now, &dup.for_flow(id).event()).await?;
                    insert_acks(&mut tx, &self.me, now, id, &dup_acks(id)).await?;
                    Registration::Duplicate { id, original }
                }
            };
            Ok::<_, SpoolError>(result)
        }
        .await;
        crate::settle(tx, result).await
    }

    /// Move a flow to `processing` under this instance's lease, after the
    /// transition was checked.
    async fn take(
        &self,
        conn: &mut SqliteConnection,
        t: &state::Transition,
        flow: FlowId,
        now: DateTime<Utc>,
        lease: Lease,
    ) -> Result<ClaimedFlow> {
        let row: Option<(i64, String, String, String, i64, String, i32)> = sqlx::query_as(
            "UPDATE flows SET state = 'processing', lease_owner = $1, lease_expires_at = $2, \
             attempts = attempts + 1, updated_at = $3 WHERE id = $4 AND state = $5 \
             RETURNING id, partner, origin, original_name, size, sha256, attempts",
        )
        .bind(&self.me)
        .bind(lease_until(now, lease))
        .bind(now)
        .bind(flow)
        .bind(t.old_state())
        .fetch_optional(&mut *conn)
        .await?;
        let (id, partner, origin, original_name, size, sha256, attempts) =
            row.ok_or_else(|| {
                SpoolError::Corrupt(format!("flow {flow} changed state under a write lock"))
            })?;
        insert_event(conn, &self.me, now, &t.event()).await?;
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
        let mut tx = self.begin(Durability::Relaxed).await?;
        let result = async {
            let now = now();
            let cand: Option<(i64, String, Option<String>)> = sqlx::query_as(
                "SELECT id, state, lease_owner FROM flows WHERE state IN ('received', 'processing') \
                 AND (state = 'received' OR lease_expires_at < $1) ORDER BY received_at, id LIMIT 1",
            )
            .bind(now)
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
            let claimed = self.take(&mut tx, &t, id, now, lease).await?;
            Ok::<_, SpoolError>(Some(claimed))
        }
        .await;
        crate::settle(tx, result).await
    }

    pub(crate) async fn claim_for_replay(&self, flow: FlowId, lease: Lease) -> Result<ClaimedFlow> {
        let mut tx = self.begin(Durability::Relaxed).await?;
        let result = async {
            let now = now();
            let (from, owner, expires) = flow_lock_info(&mut tx, flow).await?;
            if from == FlowState::Processing
                && owner.as_deref() != Some(self.me.as_str())
                && expires.is_some_and(|e| e >= now)
            {
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
            let claimed = self.take(&mut tx, &t, flow, now, lease).await?;
            Ok::<_, SpoolError>(claimed)
        }
        .await;
        crate::settle(tx, result).await
    }

    pub(crate) async fn renew_lease(&self, flow: FlowId, lease: Lease) -> Result<()> {
        let now = now();
        let done = sqlx::query(
            "UPDATE flows SET lease_expires_at = $1 WHERE id = $2 AND state = 'processing' AND lease_owner = $3",
        )
        .bind(lease_until(now, lease))
        .bind(flow)
        .bind(&self.me)
        .execute(&self.writes)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        let mut conn = self.pool.acquire().await?;
        check_lease(&mut conn, &self.me, flow, FlowState::Processing).await?;
        Ok(())
    }

    pub(crate) async fn abandon_flow(&self, flow: FlowId, reason: &str) -> Result<()> {
        let mut tx = self.begin(Durability::Relaxed).await?;
        let result = async {
            let now = now();
            check_lease(&mut tx, &self.me, flow, FlowState::Received).await?;
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
            .bind(now)
            .bind(flow)
            .bind(t.old_state())
            .execute(&mut *tx)
            .await?;
            insert_event(&mut tx, &self.me, now, &t.event()).await?;
            Ok::<_, SpoolError>(())
        }
        .await;
        crate::settle(tx, result).await
    }

    pub(crate) async fn store_invoices(
        &self,
        flow: FlowId,
        batch: &[NewInvoice],
    ) -> Result<Vec<StoredInvoice>> {
        let plan = Plan::new(batch)?;
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin(Durability::Relaxed).await?;
        let result = async {
            let now = now();
            check_lease(&mut tx, &self.me, flow, FlowState::Processing).await?;

            // Release this batch's own claims, then claim again: one
            // statement each, the keys passed as one JSON array (no
            // variable limit, one prepared statement whatever the batch).
            let indexes = serde_json::to_string(&plan.doc_indexes()).unwrap_or_else(|_| "[]".into());
            sqlx::query(
                "DELETE FROM invoice_keys WHERE flow_id = $1 AND doc_index IN (SELECT value FROM json_each($2))",
            )
            .bind(flow)
            .bind(&indexes)
            .execute(&mut *tx)
            .await?;
            let claims = plan.claims();
            let mut refused: HashMap<Key, FlowId> = HashMap::new();
            if !claims.is_empty() {
                let claims_json = claims_json(&claims);
                sqlx::query(
                    "INSERT INTO invoice_keys (seller_id, number, year, flow_id, doc_index) \
                     SELECT value ->> 0, value ->> 1, value ->> 2, $1, value ->> 3 FROM json_each($2) WHERE true \
                     ON CONFLICT DO NOTHING",
                )
                .bind(flow)
                .bind(&claims_json)
                .execute(&mut *tx)
                .await?;
                // The claims that were refused, with their holders: only
                // those rows come back (usually none), not one per claim.
                let lost: Vec<(String, String, i32, i64)> = sqlx::query_as(
                    "SELECT k.seller_id, k.number, k.year, k.flow_id FROM json_each($2) AS t \
                     JOIN invoice_keys k ON k.seller_id = t.value ->> 0 AND k.number = t.value ->> 1 \
                     AND k.year = t.value ->> 2 \
                     WHERE NOT (k.flow_id = $1 AND k.doc_index = t.value ->> 3)",
                )
                .bind(flow)
                .bind(&claims_json)
                .fetch_all(&mut *tx)
                .await?;
                for (seller, number, year, holder) in lost {
                    refused.insert(Key { seller, number, year }, holder);
                }
            }
            let decided = plan.decide(flow, &refused);

            // The canonical JSON goes in compressed (see `rows::canonical`).
            let mut zstd = canonical::Compressor::new()?;
            let frames = decided
                .iter()
                .map(|d| d.inv.canonical_json.as_deref().map(|j| zstd.compress(j)).transpose())
                .collect::<Result<Vec<_>>>()?;
            for (chunk, frames) in decided.chunks(INVOICE_ROWS).zip(frames.chunks(INVOICE_ROWS)) {
                let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                    "INSERT INTO invoices (flow_id, doc_index, entry, syntax, profile, seller_id, number, \
                     issue_date, type_code, currency, total_without_vat, total_with_vat, amount_due, verdict, \
                     duplicate, reasons, canonical_z, stored_at) ",
                );
                qb.push_values(chunk.iter().zip(frames), |mut b, (d, frame)| {
                    let i = &*d.inv;
                    b.push_bind(flow)
                        .push_bind(i.doc_index)
                        .push_bind(&i.entry)
                        .push_bind(i.syntax.as_deref())
                        .push_bind(i.profile.as_deref())
                        .push_bind(i.seller_id.as_deref())
                        .push_bind(i.number.as_deref())
                        .push_bind(i.issue_date)
                        .push_bind(i.type_code.as_deref())
                        .push_bind(i.currency.as_deref())
                        .push_bind(rows::decimal_str(i.total_without_vat))
                        .push_bind(rows::decimal_str(i.total_with_vat))
                        .push_bind(rows::decimal_str(i.amount_due))
                        .push_bind(d.verdict.as_str())
                        .push_bind(d.duplicate)
                        .push_bind(d.reasons_json())
                        .push_bind(frame.as_deref())
                        .push_bind(now);
                });
                qb.push(
                    " ON CONFLICT (flow_id, doc_index) DO UPDATE SET entry = excluded.entry, \
                     syntax = excluded.syntax, profile = excluded.profile, seller_id = excluded.seller_id, \
                     number = excluded.number, issue_date = excluded.issue_date, type_code = excluded.type_code, \
                     currency = excluded.currency, total_without_vat = excluded.total_without_vat, \
                     total_with_vat = excluded.total_with_vat, amount_due = excluded.amount_due, \
                     verdict = excluded.verdict, duplicate = excluded.duplicate, reasons = excluded.reasons, \
                     canonical = NULL, canonical_z = excluded.canonical_z, stored_at = excluded.stored_at",
                );
                qb.build().execute(&mut *tx).await?;
            }
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
        let mut tx = self.begin(Durability::Full).await?;
        let result = async {
            let now = now();
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
                "UPDATE flows SET state = $1, updated_at = $2, lease_owner = NULL, lease_expires_at = NULL, \
                 failure_code = $3, failure_message = $4 WHERE id = $5 AND state = $6",
            )
            .bind(t.new_state())
            .bind(now)
            .bind(code)
            .bind(message)
            .bind(flow)
            .bind(t.old_state())
            .execute(&mut *tx)
            .await?;
            insert_event(&mut tx, &self.me, now, &t.event()).await?;
            // Outbox: one row per rejected invoice (kept, with its notified_at,
            // when the flow is processed again).
            sqlx::query(
                "DELETE FROM notifications WHERE flow_id = $1 AND notified_at IS NULL AND doc_index IN \
                 (SELECT doc_index FROM invoices WHERE flow_id = $1 AND verdict = 'accepted')",
            )
            .bind(flow)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO notifications (flow_id, doc_index, partner, created_at) \
                 SELECT i.flow_id, i.doc_index, f.partner, $2 FROM invoices i JOIN flows f ON f.id = i.flow_id \
                 WHERE i.flow_id = $1 AND i.verdict = 'rejected' ON CONFLICT DO NOTHING",
            )
            .bind(flow)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let ids = insert_acks(&mut tx, &self.me, now, flow, acks).await?;
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
        let mut tx = self.begin(Durability::Full).await?;
        let result = async {
            let now = now();
            let (st, _, _) = flow_lock_info(&mut tx, flow).await?;
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
            let ids = insert_acks(&mut tx, &self.me, now, flow, acks).await?;
            Ok::<_, SpoolError>(ids)
        }
        .await;
        crate::settle(tx, result).await
    }

    /// Update one acknowledgement (`sql` binds `$1` = now, `$2` = ack id) and
    /// log the event, in one transaction.
    async fn ack_update(
        &self,
        ack: AckId,
        sql: &str,
        error: Option<&str>,
        ev: Event,
    ) -> Result<()> {
        let mut tx = self.begin(Durability::Full).await?;
        let result = async {
            let now = now();
            let mut q = sqlx::query(sql).bind(now).bind(ack);
            if let Some(error) = error {
                q = q.bind(error);
            }
            if q.execute(&mut *tx).await?.rows_affected() == 0 {
                return Err(SpoolError::AckNotFound(ack));
            }
            insert_event(&mut tx, &self.me, now, &ev).await?;
            Ok::<_, SpoolError>(())
        }
        .await;
        crate::settle(tx, result).await
    }

    pub(crate) async fn ack_delivered(&self, ack: AckId) -> Result<()> {
        self.ack_update(
            ack,
            "UPDATE acknowledgements SET delivered_at = $1, updated_at = $1, attempts = attempts + 1, last_error = NULL \
             WHERE id = $2",
            None,
            state::ack_event(ack, Some("pending"), "delivered", None),
        )
        .await
    }

    pub(crate) async fn ack_failed(&self, ack: AckId, error: &str) -> Result<()> {
        self.ack_update(
            ack,
            "UPDATE acknowledgements SET attempts = attempts + 1, last_error = $3, updated_at = $1 WHERE id = $2",
            Some(error),
            state::ack_event(ack, Some("pending"), "pending", Some(format!("delivery failed: {error}"))),
        )
        .await
    }

    pub(crate) async fn requeue_ack(&self, ack: AckId) -> Result<()> {
        self.ack_update(
            ack,
            "UPDATE acknowledgements SET delivered_at = NULL, updated_at = $1 WHERE id = $2",
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
