//! SQLite backend (the embedded default).
//!
//! The steps shared with PostgreSQL are in `steps.rs`; here: connecting,
//! write transactions (`begin`, durability) and the invoice batches.
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

use chrono::Utc;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use crate::invoices::{Holder, Key, Plan};
use crate::rows::{self, canonical};
use crate::writer_lock::WriterLock;
use crate::*;

pub(crate) use crate::durability::Durability;

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
    /// Serializes this process's writes (see `dispatch_write!`), with a
    /// fast lane for the partner API's deposits (`writer_lock`).
    pub(crate) writer: WriterLock,
}

impl SqliteBackend {
    /// Open (and create or migrate) the spool. Two processes opening a new
    /// spool at once (`quai run` and a `quai status`, or a test and its
    /// daemon) can meet SQLite's lock while one of them switches the file
    /// to WAL or creates its tables, which SQLite answers `SQLITE_BUSY`
    /// without waiting: that is retried for a few seconds, as the busy
    /// timeout would.
    pub(crate) async fn connect(url: &str, me: &str) -> Result<SqliteBackend> {
        let mut attempt: u64 = 0;
        loop {
            match Self::connect_once(url, me).await {
                Err(SpoolError::Database(e)) if is_busy(&e) && attempt < 20 => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "the spool is being opened by another process; trying again");
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn connect_once(url: &str, me: &str) -> Result<SqliteBackend> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let opts_for_migrations = opts.clone().foreign_keys(false);
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
        //
        // Migrations run with foreign keys off: a migration that must
        // rebuild a table to widen a CHECK (0012) drops the old one, which
        // with foreign keys on would cascade into every table referencing
        // it. A file spool gets a one-connection pool of its own for them;
        // an in-memory one (a single connection) has them turned off and
        // on again around the run.
        let migrations = if memory {
            None
        } else {
            Some(
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(opts_for_migrations)
                    .await?,
            )
        };
        let mut attempt = 0;
        loop {
            let migrated = match &migrations {
                Some(m) => sqlx::migrate!("./migrations/sqlite").run(m).await,
                None => {
                    sqlx::query("PRAGMA foreign_keys = OFF")
                        .execute(&pool)
                        .await?;
                    let r = sqlx::migrate!("./migrations/sqlite").run(&pool).await;
                    sqlx::query("PRAGMA foreign_keys = ON")
                        .execute(&pool)
                        .await?;
                    r
                }
            };
            match migrated {
                Ok(()) => break,
                Err(e) if attempt < 5 => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "spool migration raced; trying again");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(m) = migrations {
            m.close().await;
        }
        Ok(SqliteBackend {
            pool,
            writes,
            me: me.to_owned(),
            writer: WriterLock::default(),
        })
    }

    /// Start a write transaction (see the module doc on durability).
    pub(crate) async fn begin(
        &self,
        sync: Durability,
    ) -> Result<sqlx::Transaction<'static, Sqlite>> {
        Ok(self.writes.begin_with(sync.begin()).await?)
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
            let now = Utc::now();
            crate::steps::sqlite::check_lease(&mut tx, &self.me, flow, FlowState::Processing).await?;

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
            let mut refused: HashMap<Key, Holder> = HashMap::new();
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
                // (The holder's partner decides what the reason may say.)
                let lost: Vec<(String, String, i32, i64, bool)> = sqlx::query_as(
                    "SELECT k.seller_id, k.number, k.year, k.flow_id, \
                     COALESCE(h.partner = (SELECT partner FROM flows WHERE id = $1), 0) \
                     FROM json_each($2) AS t \
                     JOIN invoice_keys k ON k.seller_id = t.value ->> 0 AND k.number = t.value ->> 1 \
                     AND k.year = t.value ->> 2 \
                     LEFT JOIN flows h ON h.id = k.flow_id \
                     WHERE NOT (k.flow_id = $1 AND k.doc_index = t.value ->> 3)",
                )
                .bind(flow)
                .bind(&claims_json)
                .fetch_all(&mut *tx)
                .await?;
                for (seller, number, year, holder, same_partner) in lost {
                    refused.insert(
                        Key { seller, number, year },
                        Holder { flow: holder, same_partner },
                    );
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
}

/// SQLite's "database is locked" or "table is locked" (primary code 5 or 6
/// in the extended code sqlx reports).
fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => d
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection;

    /// A write refused because another connection holds the lock is what
    /// `connect` retries; another error is not.
    #[tokio::test]
    async fn a_locked_database_is_recognised_as_busy() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("busy.db").display());
        let opts = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true)
            .busy_timeout(Duration::ZERO);
        let mut holder = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
        sqlx::query("CREATE TABLE t (x)")
            .execute(&mut holder)
            .await
            .unwrap();
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut holder)
            .await
            .unwrap();
        let mut other = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
        let err = sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut other)
            .await
            .unwrap_err();
        assert!(is_busy(&err), "{err}");
        let err = sqlx::query("INSERT INTO nowhere VALUES (1)")
            .execute(&mut holder)
            .await
            .unwrap_err();
        assert!(!is_busy(&err), "{err}");
    }
}
