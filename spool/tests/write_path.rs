//! The invoice write path on both backends: canonical JSON stored as a zstd
//! frame and read back exactly, batches larger than one SQLite statement
//! holds, and a spool created before the compressed column (migrations 0001
//! and 0002 only) migrated with its rows intact.
//!
//! The stored frames are decoded here independently of the spool's own
//! code, with the zstd crate and the dictionary file the spool ships.

mod support;

use support::Db;

use std::time::Duration;

use chrono::NaiveDate;
use quai_spool::*;
use rust_decimal::Decimal;

const LEASE: Lease = Lease {
    duration: Duration::from_secs(60),
};

/// The dictionary the spool compresses with.
const DICT: &[u8] = include_bytes!("../src/canonical-1.zdict");

/// A canonical invoice as the daemon's pipeline serializes it.
const FIXTURE: &str = include_str!("fixtures/canonical-generated.json");

both!(
    canonical_json_is_compressed_and_read_back_exactly,
    batches_past_one_statement_keep_every_row_and_duplicate,
    spool_from_before_compression_is_migrated_and_rewritten,
    text_with_copy_delimiters_is_stored_exactly,
    purged_flows_take_their_invoices_and_notifications,
    canonical_invoice_reads_compressed_plain_and_damaged_rows,
);

fn invoice(doc: i64, seller: &str, number: &str, json: Option<String>) -> NewInvoice {
    NewInvoice {
        doc_index: doc,
        entry: format!("inv-{doc}.xml"),
        syntax: Some("ubl".into()),
        profile: None,
        seller_id: Some(seller.into()),
        number: Some(number.into()),
        issue_date: NaiveDate::from_ymd_opt(2026, 9, 1),
        type_code: Some("380".into()),
        currency: Some("EUR".into()),
        total_without_vat: Some(Decimal::new(10000, 2)),
        total_with_vat: Some(Decimal::new(12000, 2)),
        amount_due: Some(Decimal::new(12000, 2)),
        verdict: Verdict::Accepted,
        reasons: vec![],
        canonical_json: json,
    }
}

async fn claimed(spool: &Spool, sha: &str) -> FlowId {
    let id = match spool
        .register_flow(&NewFlow {
            partner: "acme".into(),
            origin: Origin::Dropzone,
            original_name: format!("{sha}.zip"),
            size: 1,
            sha256: sha.into(),
            as2_message_id: None,
        })
        .await
        .unwrap()
    {
        Registration::New(id) => id,
        other => panic!("expected a new flow, got {other:?}"),
    };
    let c = spool.claim_flow(LEASE).await.unwrap().expect("a flow");
    assert_eq!(c.id, id);
    id
}

/// (canonical, canonical_z) of every invoice of a flow, by doc_index, read
/// with plain SQL.
async fn raw_canonical(url: &str, flow: FlowId) -> Vec<(i64, Option<String>, Option<Vec<u8>>)> {
    let sql = "SELECT doc_index, canonical, canonical_z FROM invoices WHERE flow_id = $1 ORDER BY doc_index";
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let rows = sqlx::query_as(sql)
            .bind(flow)
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        rows
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let rows = sqlx::query_as(sql)
            .bind(flow)
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        rows
    }
}

/// Decode a stored frame the way any zstd implementation would.
fn unzstd(frame: &[u8]) -> String {
    let mut d = zstd::bulk::Decompressor::with_dictionary(DICT).unwrap();
    String::from_utf8(d.decompress(frame, 1 << 24).unwrap()).unwrap()
}

async fn canonical_json_is_compressed_and_read_back_exactly(db: Db) {
    let spool = Spool::connect(&db.url, "w1").await.unwrap();
    let flow = claimed(&spool, "c1").await;
    let accents = r#"{"seller":{"name":"Société Générale Müller — 40 €","note":"日本語"}}"#;
    let batch = vec![
        invoice(0, "S", "1", Some(FIXTURE.to_owned())),
        invoice(1, "S", "2", Some(accents.to_owned())),
        invoice(2, "S", "3", Some("{\"nul\":\"a\u{0}b\"}".to_owned())),
        invoice(3, "S", "4", None),
        invoice(4, "S", "5", Some(String::new())),
    ];
    // twice: a batch stored again replaces its rows
    for _ in 0..2 {
        spool.store_invoices(flow, &batch).await.unwrap();
    }
    let rows = raw_canonical(&db.url, flow).await;
    assert_eq!(rows.len(), 5, "{rows:?}");
    let expected = [
        Some(FIXTURE.to_owned()),
        Some(accents.to_owned()),
        // NUL characters are replaced on both backends, as in every text column
        Some("{\"nul\":\"a\u{FFFD}b\"}".to_owned()),
        None,
        Some(String::new()),
    ];
    for ((doc, text, frame), want) in rows.iter().zip(&expected) {
        assert_eq!(*text, None, "doc {doc}: plain text column left empty");
        assert_eq!(frame.as_deref().map(unzstd), *want, "doc {doc}");
    }
    // the real invoice is stored at a fraction of its size
    let z = rows[0].2.as_ref().unwrap();
    assert!(
        z.len() * 5 < FIXTURE.len(),
        "{} -> {}",
        FIXTURE.len(),
        z.len()
    );
    // the rows the API reads are unchanged
    let read = spool.invoices_of_flow(flow).await.unwrap();
    assert_eq!(read.len(), 5);
    assert_eq!(read[1].number.as_deref(), Some("2"));
}

async fn batches_past_one_statement_keep_every_row_and_duplicate(db: Db) {
    let spool = Spool::connect(&db.url, "w1").await.unwrap();
    let flow = claimed(&spool, "big").await;
    // SQLite binds at most 32766 variables per statement: 1820 rows of 18.
    // 3700 rows cross two statement boundaries (1820, 3640).
    let n = 3700;
    let batch: Vec<NewInvoice> = (0..n)
        .map(|i| {
            // the documents just past each boundary repeat the number of the
            // one before it: in-batch duplicates across statements
            let number = match i {
                1820 | 3640 => format!("N{}", i - 1),
                _ => format!("N{i}"),
            };
            invoice(i, "S", &number, Some(format!("{{\"n\":{i}}}")))
        })
        .collect();
    let stored = spool.store_invoices(flow, &batch).await.unwrap();
    assert_eq!(stored.len(), n as usize);
    let dups: Vec<i64> = stored
        .iter()
        .filter(|s| s.duplicate)
        .map(|s| s.doc_index)
        .collect();
    assert_eq!(dups, vec![1820, 3640]);
    assert!(stored[1820].reasons.iter().any(|r| r.rule == "REJ_UNI"));
    // stored again (a crash before the flow finished): same rows, once
    let again = spool.store_invoices(flow, &batch).await.unwrap();
    assert_eq!(again, stored);
    spool
        .finish_flow(flow, &FlowOutcome::Processed, n, &[])
        .await
        .unwrap();
    let rows = spool.invoices_of_flow(flow).await.unwrap();
    assert_eq!(rows.len(), n as usize);
    assert!(rows
        .iter()
        .enumerate()
        .all(|(i, r)| r.doc_index == i as i64));
    let rejected = rows
        .iter()
        .filter(|r| r.verdict == Verdict::Rejected)
        .count();
    assert_eq!(rejected, 2);
    let raw = raw_canonical(&db.url, flow).await;
    assert_eq!(raw.len(), n as usize);
    assert_eq!(unzstd(raw[3699].2.as_ref().unwrap()), "{\"n\":3699}");
    // another flow with one of those numbers is refused as a duplicate
    let other = claimed(&spool, "other").await;
    let s = spool
        .store_invoices(other, &[invoice(0, "S", "N3000", None)])
        .await
        .unwrap();
    assert!(s[0].duplicate);
}

/// The migrations of a spool created before the compressed column.
fn old_migrations(backend: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    for name in ["0001_spool.sql", "0002_sightings.sql"] {
        std::fs::copy(src.join(name), dir.path().join(name)).unwrap();
    }
    dir
}

async fn spool_from_before_compression_is_migrated_and_rewritten(db: Db) {
    let old_json = r#"{"number":"OLD-1","seller":{"name":"Société Générale Müller"}}"#;
    // A spool as the previous release left it: one processed flow whose
    // invoice holds its canonical JSON as plain text.
    let insert_flow = "INSERT INTO flows (partner, origin, original_name, size, sha256, state, \
        received_at, updated_at) VALUES ('acme', 'dropzone', 'old.zip', 1, 'old', 'processed', $1, $1) \
        RETURNING id";
    let insert_invoice = "INSERT INTO invoices (flow_id, doc_index, entry, seller_id, number, issue_date, \
        verdict, duplicate, reasons, canonical, stored_at) VALUES ($4, 0, 'a.xml', 'S', 'OLD-1', $2, \
        'accepted', false, '[]', $3, $1)";
    let insert_key = "INSERT INTO invoice_keys (seller_id, number, year, flow_id, doc_index) \
        VALUES ('S', 'OLD-1', 2026, $1, 0)";
    let now = chrono::Utc::now();
    let date = NaiveDate::from_ymd_opt(2026, 9, 1).unwrap();
    let old = if db.url.starts_with("sqlite:") {
        let dir = old_migrations("sqlite");
        let opts: sqlx::sqlite::SqliteConnectOptions = db.url.parse().unwrap();
        let pool = sqlx::SqlitePool::connect_with(opts.create_if_missing(true))
            .await
            .unwrap();
        sqlx::migrate::Migrator::new(dir.path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO partners (id, created_at) VALUES ('acme', $1)")
            .bind(now)
            .execute(&pool)
            .await
            .unwrap();
        let old: i64 = sqlx::query_scalar(insert_flow)
            .bind(now)
            .fetch_one(&pool)
            .await
            .unwrap();
        sqlx::query(insert_invoice)
            .bind(now)
            .bind(date)
            .bind(old_json)
            .bind(old)
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query(insert_key)
            .bind(old)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        old
    } else {
        let dir = old_migrations("postgres");
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::migrate::Migrator::new(dir.path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO partners (id, created_at) VALUES ('acme', $1)")
            .bind(now)
            .execute(&pool)
            .await
            .unwrap();
        let old: i64 = sqlx::query_scalar(insert_flow)
            .bind(now)
            .fetch_one(&pool)
            .await
            .unwrap();
        sqlx::query(insert_invoice)
            .bind(now)
            .bind(date)
            .bind(old_json)
            .bind(old)
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query(insert_key)
            .bind(old)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        old
    };

    // The current spool opens it (migration 0003 applied) and reads it.
    let spool = Spool::connect(&db.url, "w1").await.unwrap();
    let rows = spool.invoices_of_flow(old).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].number.as_deref(), Some("OLD-1"));
    assert_eq!(
        raw_canonical(&db.url, old).await,
        vec![(0, Some(old_json.to_owned()), None)]
    );
    // The old row still holds its key: a new flow repeating it is refused.
    let flow = claimed(&spool, "new").await;
    let s = spool
        .store_invoices(
            flow,
            &[invoice(
                0,
                "S",
                "OLD-1",
                Some("{\"number\":\"OLD-1\"}".into()),
            )],
        )
        .await
        .unwrap();
    assert!(s[0].duplicate, "{s:?}");
    assert!(
        s[0].reasons[0].message.contains(&format!("flow {old}")),
        "{s:?}"
    );
    // Replayed, the old flow's row is rewritten in the new format, once.
    spool.claim_for_replay(old, LEASE).await.unwrap();
    let new_json = r#"{"number":"OLD-1","replayed":true}"#;
    let s = spool
        .store_invoices(old, &[invoice(0, "S", "OLD-1", Some(new_json.into()))])
        .await
        .unwrap();
    assert!(!s[0].duplicate, "{s:?}");
    spool
        .finish_flow(old, &FlowOutcome::Processed, 1, &[])
        .await
        .unwrap();
    let raw = raw_canonical(&db.url, old).await;
    assert_eq!(raw.len(), 1);
    assert_eq!(raw[0].1, None);
    assert_eq!(raw[0].2.as_deref().map(unzstd).as_deref(), Some(new_json));
}

/// PostgreSQL inserts new rows with COPY (text format): tabs, newlines,
/// backslashes, `\N` and `\.` in any text column must come back as they
/// went in, the first time (COPY) and when stored again (upsert); SQLite
/// must agree.
async fn text_with_copy_delimiters_is_stored_exactly(db: Db) {
    let spool = Spool::connect(&db.url, "w1").await.unwrap();
    let flow = claimed(&spool, "delims").await;
    let nasty = "a\tb\nc\\d\r\\.e\\N\\x00 'q' \"dq\" €";
    let mut a = invoice(0, "S\t1", "N\n1", Some(format!("{{\"t\":\"{nasty}\"}}")));
    a.entry = nasty.to_owned();
    a.syntax = Some("\\N".to_owned());
    a.profile = Some("\\.".to_owned());
    a.type_code = Some("\\".to_owned());
    a.currency = Some("".to_owned());
    a.total_with_vat = Some(Decimal::new(-12_345_678_901_234, 4));
    a.issue_date = NaiveDate::from_ymd_opt(1, 1, 1);
    let mut b = invoice(1, "S", "2", None);
    b.verdict = Verdict::Rejected;
    b.reasons = vec![Reason {
        rule: "BR\t01".into(),
        term: "BT\\1".into(),
        severity: "fatal".into(),
        message: format!("line\nbreak {nasty}"),
    }];
    b.issue_date = NaiveDate::from_ymd_opt(9999, 12, 31);
    b.total_with_vat = Some(Decimal::new(1, 28));
    let mut c = invoice(2, "S", "3", None);
    c.syntax = None;
    c.seller_id = None;
    c.number = None;
    c.issue_date = None;
    c.total_with_vat = None;
    let batch = vec![a, b, c];
    let check = |rows: &[InvoiceRow]| {
        assert_eq!(rows.len(), 3);
        for (r, i) in rows.iter().zip(&batch) {
            assert_eq!(r.entry, i.entry);
            assert_eq!(r.syntax, i.syntax);
            assert_eq!(r.profile, i.profile);
            assert_eq!(r.seller_id, i.seller_id);
            assert_eq!(r.number, i.number);
            assert_eq!(r.issue_date, i.issue_date);
            assert_eq!(r.type_code, i.type_code);
            assert_eq!(r.currency, i.currency);
            assert_eq!(r.total_with_vat, i.total_with_vat);
            assert_eq!(r.verdict, i.verdict);
            assert_eq!(r.reasons, i.reasons);
        }
    };
    spool.store_invoices(flow, &batch).await.unwrap();
    check(&spool.invoices_of_flow(flow).await.unwrap());
    let raw = raw_canonical(&db.url, flow).await;
    assert_eq!(
        raw[0].2.as_deref().map(unzstd),
        batch[0].canonical_json.clone()
    );
    assert_eq!(raw[1].2, None);
    // stored again: the upsert path, same rows
    spool.store_invoices(flow, &batch).await.unwrap();
    check(&spool.invoices_of_flow(flow).await.unwrap());
    // a batch of which only some rows exist takes the upsert path too
    let mut more = batch.clone();
    more.push(invoice(3, "S", "4", None));
    spool.store_invoices(flow, &more).await.unwrap();
    let rows = spool.invoices_of_flow(flow).await.unwrap();
    assert_eq!(rows.len(), 4);
    check(&rows[..3]);
}

/// Deleting a flow deletes its invoices and their notifications (on
/// PostgreSQL through the trigger of migration 0004, which replaced the
/// per-row foreign key check; on SQLite through the foreign key).
async fn purged_flows_take_their_invoices_and_notifications(db: Db) {
    let spool = Spool::connect(&db.url, "w1").await.unwrap();
    let gone = claimed(&spool, "gone").await;
    let mut rejected = invoice(1, "S", "R", Some("{}".into()));
    rejected.verdict = Verdict::Rejected;
    let batch = vec![invoice(0, "S", "A", Some("{}".into())), rejected];
    spool.store_invoices(gone, &batch).await.unwrap();
    spool
        .finish_flow(gone, &FlowOutcome::Processed, 2, &[])
        .await
        .unwrap();
    let kept = claimed(&spool, "kept").await;
    spool
        .store_invoices(kept, &[invoice(0, "S", "K", Some("{}".into()))])
        .await
        .unwrap();
    let count = |sql: &'static str| {
        let url = db.url.clone();
        async move {
            if url.starts_with("sqlite:") {
                let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
                let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
                pool.close().await;
                n
            } else {
                let pool = sqlx::PgPool::connect(&url).await.unwrap();
                let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
                pool.close().await;
                n
            }
        }
    };
    assert_eq!(count("SELECT count(*) FROM invoices").await, 3);
    assert_eq!(count("SELECT count(*) FROM notifications").await, 1);
    // the reject is notified (a pending one would hold the flow back)
    let pending = spool.pending_rejects("acme").await.unwrap();
    let ids: Vec<i64> = pending.iter().map(|r| r.id).collect();
    spool
        .mark_notified(
            &ids,
            &NewDigest {
                partner: "acme".into(),
                recipients: vec!["ops@example.org".into()],
                message_id: None,
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = spool.purge(chrono::Utc::now()).await.unwrap();
    assert_eq!(report.flows, 1, "{report:?}");
    assert_eq!(report.invoices, 2, "{report:?}");
    assert_eq!(count("SELECT count(*) FROM invoices").await, 1);
    assert_eq!(count("SELECT count(*) FROM notifications").await, 0);
    assert_eq!(spool.invoices_of_flow(kept).await.unwrap().len(), 1);
    assert!(spool.invoices_of_flow(gone).await.unwrap().is_empty());
}

/// `Spool::canonical_invoice` gives back the exact text from the compressed
/// column, the plain text of a row written before it existed, `None` for a
/// document without JSON, and an error (not a panic) for a damaged frame.
async fn canonical_invoice_reads_compressed_plain_and_damaged_rows(db: Db) {
    let spool = Spool::connect(&db.url, "w1").await.unwrap();
    let flow = claimed(&spool, "read").await;
    let batch = vec![
        invoice(0, "S", "1", Some(FIXTURE.to_owned())),
        invoice(1, "S", "2", None),
        invoice(2, "S", "3", Some("{}".to_owned())),
        invoice(3, "S", "4", Some("{}".to_owned())),
    ];
    spool.store_invoices(flow, &batch).await.unwrap();
    assert_eq!(
        spool.canonical_invoice(flow, 0).await.unwrap().as_deref(),
        Some(FIXTURE)
    );
    assert_eq!(spool.canonical_invoice(flow, 1).await.unwrap(), None);
    assert_eq!(spool.canonical_invoice(flow, 9).await.unwrap(), None);
    // doc 2 as written before migration 0003, doc 3 with a damaged frame
    let old = "UPDATE invoices SET canonical = '{\"old\":true}', canonical_z = NULL \
        WHERE flow_id = $1 AND doc_index = 2";
    let damaged = "UPDATE invoices SET canonical_z = $2 WHERE flow_id = $1 AND doc_index = 3";
    let frame: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd, 0, 0];
    if db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        sqlx::query(old).bind(flow).execute(&pool).await.unwrap();
        sqlx::query(damaged)
            .bind(flow)
            .bind(frame)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::query(old).bind(flow).execute(&pool).await.unwrap();
        sqlx::query(damaged)
            .bind(flow)
            .bind(frame)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
    assert_eq!(
        spool.canonical_invoice(flow, 2).await.unwrap().as_deref(),
        Some("{\"old\":true}")
    );
    assert!(matches!(
        spool.canonical_invoice(flow, 3).await,
        Err(SpoolError::Corrupt(_))
    ));
}
