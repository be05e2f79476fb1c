//! PostgreSQL backend (several quai instances on one database).
//!
//! The steps shared with SQLite are in `steps.rs` (their PostgreSQL side:
//! the database clock, row locks, `SKIP LOCKED` claims); here: connecting
//! and the invoice batches.
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
use sqlx::PgPool;

use crate::invoices::{Holder, Key, Plan};
use crate::rows::{self, canonical};
use crate::*;

pub(crate) struct PgBackend {
    pub(crate) pool: PgPool,
    pub(crate) options: PgConnectOptions,
    me: String,
}

/// A concurrent claim of the same invoice key won the race.
fn key_race(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| {
        d.code().as_deref() == Some("23505") && d.constraint() == Some("invoice_keys_pkey")
    })
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
            crate::steps::postgres::check_lease(&mut tx, &self.me, flow, FlowState::Processing).await?;

            sqlx::query("DELETE FROM invoice_keys WHERE flow_id = $1 AND doc_index = ANY($2)")
                .bind(flow)
                .bind(plan.doc_indexes())
                .execute(&mut *tx)
                .await?;
            let mut claims = plan.claims();
            claims.sort_by(|a, b| {
                (&a.0.seller, &a.0.number, a.0.year).cmp(&(&b.0.seller, &b.0.number, b.0.year))
            });
            let mut refused: HashMap<Key, Holder> = HashMap::new();
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
                    // (The holder's partner decides what the reason may say.)
                    let holders: Vec<(String, String, i32, i64, bool)> = sqlx::query_as(
                        "SELECT k.seller_id, k.number, k.year, k.flow_id, \
                         COALESCE(h.partner = (SELECT partner FROM flows WHERE id = $4), false) \
                         FROM invoice_keys k \
                         JOIN UNNEST($1::text[], $2::text[], $3::int[]) AS t(s, n, y) \
                         ON k.seller_id = t.s AND k.number = t.n AND k.year = t.y \
                         LEFT JOIN flows h ON h.id = k.flow_id",
                    )
                    .bind(lost.iter().map(|k| k.seller.as_str()).collect::<Vec<_>>())
                    .bind(lost.iter().map(|k| k.number.as_str()).collect::<Vec<_>>())
                    .bind(lost.iter().map(|k| k.year).collect::<Vec<_>>())
                    .bind(flow)
                    .fetch_all(&mut *tx)
                    .await?;
                    for (seller, number, year, holder, same_partner) in holders {
                        refused.insert(
                            Key {
                                seller,
                                number,
                                year,
                            },
                            Holder {
                                flow: holder,
                                same_partner,
                            },
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
}
