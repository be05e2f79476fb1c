//! One behaviour suite, run against both backends: every scenario is an
//! `async fn(Db)`, and `both!` instantiates it once with a fresh SQLite file
//! and once with a fresh database on a throwaway PostgreSQL cluster (one
//! cluster per test binary, see `support/pg.rs`).

mod support;

use support::Db;

use std::collections::HashSet;
use std::time::Duration;

use chrono::NaiveDate;
use quai_spool::*;
use rust_decimal::Decimal;

both!(
    register_and_duplicates,
    claim_lease_and_expiry,
    store_and_reprocess_idempotently,
    duplicate_invoice_across_and_within_flows,
    finish_deletes_leftover_rows,
    illegal_transitions,
    status_shape,
    concurrent_claims_never_share_a_flow,
    acknowledgements_lifecycle,
    job_locks_are_exclusive_and_runs_recorded,
    reject_outbox_notifies_once,
    purge_removes_only_finished_work,
    history_and_reconciliation_counts,
    hostile_text_is_stored_not_refused,
    concurrent_duplicate_invoices_one_wins,
    invoices_read_page_by_page,
    canonical_invoice_read_back,
    as2_message_ids_are_per_partner,
    duplicate_invoice_of_another_partner_names_no_flow,
    refused_entries_are_registered_once_as_failed,
    refused_flows_are_notified_once,
);

const LEASE: Lease = Lease {
    duration: Duration::from_secs(60),
};

fn new_flow(partner: &str, sha: &str) -> NewFlow {
    NewFlow {
        partner: partner.into(),
        origin: Origin::Dropzone,
        original_name: format!("{sha}.zip"),
        size: 1234,
        sha256: sha.into(),
        as2_message_id: None,
    }
}

fn invoice(doc: i64, seller: &str, number: &str, year: i32, verdict: Verdict) -> NewInvoice {
    NewInvoice {
        doc_index: doc,
        entry: format!("inv-{doc}.xml"),
        syntax: Some("ubl".into()),
        profile: None,
        seller_id: Some(seller.into()),
        number: Some(number.into()),
        issue_date: NaiveDate::from_ymd_opt(year, 6, 30),
        type_code: Some("380".into()),
        currency: Some("EUR".into()),
        total_without_vat: Some(Decimal::new(10000, 2)),
        total_with_vat: Some(Decimal::new(12000 + doc, 2)),
        amount_due: Some(Decimal::new(12000, 2)),
        verdict,
        reasons: if verdict == Verdict::Rejected {
            vec![Reason {
                rule: "BR-CO-15".into(),
                term: "BT-112".into(),
                severity: "fatal".into(),
                message: "total with VAT is not total without VAT plus VAT".into(),
            }]
        } else {
            vec![]
        },
        canonical_json: Some(format!("{{\"number\":\"{number}\"}}")),
    }
}

async fn registered(spool: &Spool, partner: &str, sha: &str) -> FlowId {
    match spool.register_flow(&new_flow(partner, sha)).await.unwrap() {
        Registration::New(id) => id,
        other => panic!("expected a new flow, got {other:?}"),
    }
}

/// Register and claim one flow.
async fn claimed(spool: &Spool, partner: &str, sha: &str) -> FlowId {
    let id = registered(spool, partner, sha).await;
    let c = spool
        .claim_flow(LEASE)
        .await
        .unwrap()
        .expect("a flow to claim");
    assert_eq!(c.id, id);
    id
}

fn verdicts(stored: &[StoredInvoice]) -> Vec<(i64, Verdict, bool)> {
    stored
        .iter()
        .map(|s| (s.doc_index, s.verdict, s.duplicate))
        .collect()
}

async fn register_and_duplicates(db: Db) {
    let spool = db.spool("i1").await;
    let a = registered(&spool, "acme", "aa11").await;
    let row = spool.flow(a).await.unwrap();
    assert_eq!(row.state, FlowState::Received);
    assert_eq!(
        (row.partner.as_str(), row.size, row.sha256.as_str()),
        ("acme", 1234, "aa11")
    );
    assert_eq!(row.attempts, 0);

    // same partner + hash: a duplicate row pointing at the original
    let dup = spool
        .register_flow(&new_flow("acme", "aa11"))
        .await
        .unwrap();
    let Registration::Duplicate { id, original } = dup else {
        panic!("expected a duplicate, got {dup:?}")
    };
    assert_eq!(original, a);
    assert_ne!(id, a);
    let d = spool.flow(id).await.unwrap();
    assert_eq!(d.state, FlowState::Duplicate);
    assert_eq!(d.duplicate_of, Some(a));
    // a third time still points at the original, not at the duplicate
    let again = spool
        .register_flow(&new_flow("acme", "aa11"))
        .await
        .unwrap();
    assert!(matches!(again, Registration::Duplicate { original, .. } if original == a));

    // a duplicate can be answered in the same transaction
    let report = |id: FlowId| {
        vec![(
            AckKind::IntegrationReport,
            "dropzone".to_owned(),
            format!("dup.{id}.report"),
        )]
    };
    let Registration::Duplicate { id: third, .. } = spool
        .register_flow_with_acks(&new_flow("acme", "aa11"), report)
        .await
        .unwrap()
    else {
        panic!("expected a duplicate")
    };
    let acks = spool.acks_of_flow(third).await.unwrap();
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].file_name, format!("dup.{third}.report"));
    let Registration::New(fresh) = spool
        .register_flow_with_acks(&new_flow("acme", "fresh"), report)
        .await
        .unwrap()
    else {
        panic!("expected a new flow")
    };
    assert!(
        spool.acks_of_flow(fresh).await.unwrap().is_empty(),
        "new flows get acks when finished"
    );
    let err = spool.add_acks(fresh, &report(fresh)).await.unwrap_err();
    assert!(matches!(err, SpoolError::IllegalTransition { .. }), "{err}");
    assert_eq!(spool.add_acks(id, &report(id)).await.unwrap().len(), 1);

    // same hash for another partner is another flow
    let b = registered(&spool, "globex", "aa11").await;
    assert_ne!(b, a);

    // same AS2 Message-ID with other bytes is a duplicate
    let mut as2 = new_flow("acme", "bb22");
    as2.origin = Origin::As2;
    as2.as2_message_id = Some("<m1@acme>".into());
    let first = spool.register_flow(&as2).await.unwrap();
    let Registration::New(first) = first else {
        panic!("{first:?}")
    };
    as2.sha256 = "cc33".into();
    let second = spool.register_flow(&as2).await.unwrap();
    assert_eq!(
        second,
        Registration::Duplicate {
            id: match second {
                Registration::Duplicate { id, .. } => id,
                _ => panic!("{second:?}"),
            },
            original: first
        }
    );

    // duplicates are never claimed
    let mut claimed = vec![];
    while let Some(c) = spool.claim_flow(LEASE).await.unwrap() {
        claimed.push(c.id);
    }
    claimed.sort();
    assert_eq!(claimed, vec![a, fresh, b, first]);
    let flows = spool.list_flows(&FlowFilter::default()).await.unwrap();
    assert_eq!(flows.len(), 8);
    let dups = spool
        .list_flows(&FlowFilter {
            state: Some(FlowState::Duplicate),
            partner: Some("acme".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(dups.len(), 4);
}

async fn claim_lease_and_expiry(db: Db) {
    let one = db.spool("one").await;
    let two = db.spool("two").await;
    let a = registered(&one, "acme", "a1").await;
    let b = registered(&one, "acme", "b2").await;
    let short = Lease {
        duration: Duration::from_millis(600),
    };
    // oldest first
    let c = one.claim_flow(short).await.unwrap().unwrap();
    assert_eq!((c.id, c.attempts, c.sha256.as_str()), (a, 1, "a1"));
    let c = two.claim_flow(LEASE).await.unwrap().unwrap();
    assert_eq!(c.id, b);
    assert!(one.claim_flow(short).await.unwrap().is_none());
    assert!(two.claim_flow(short).await.unwrap().is_none());
    assert_eq!(one.flow(a).await.unwrap().state, FlowState::Processing);

    // renewing keeps it
    one.renew_lease(a, short).await.unwrap();
    assert!(two.claim_flow(short).await.unwrap().is_none());

    // the lease of `one` expires: `two` takes the flow over
    tokio::time::sleep(Duration::from_millis(900)).await;
    let c = two
        .claim_flow(LEASE)
        .await
        .unwrap()
        .expect("expired lease reclaimed");
    assert_eq!((c.id, c.attempts), (a, 2));

    // `one` lost it: every write is refused
    for err in [
        one.renew_lease(a, short).await.unwrap_err(),
        one.store_invoices(a, &[invoice(0, "S", "N", 2024, Verdict::Accepted)])
            .await
            .unwrap_err(),
        one.finish_flow(a, &FlowOutcome::Processed, 0, &[])
            .await
            .unwrap_err(),
    ] {
        match err {
            SpoolError::LeaseLost { flow, owner } => assert_eq!((flow, owner.as_str()), (a, "two")),
            other => panic!("expected LeaseLost, got {other}"),
        }
    }
    two.finish_flow(a, &FlowOutcome::Processed, 0, &[])
        .await
        .unwrap();
    assert_eq!(two.flow(a).await.unwrap().state, FlowState::Processed);

    // abandon gives a flow back to the queue
    two.abandon_flow(b, "shutdown").await.unwrap();
    assert_eq!(one.flow(b).await.unwrap().state, FlowState::Received);
    let c = one.claim_flow(LEASE).await.unwrap().unwrap();
    assert_eq!((c.id, c.attempts), (b, 2));
}

async fn store_and_reprocess_idempotently(db: Db) {
    let spool = db.spool("i1").await;
    let f = claimed(&spool, "acme", "f1").await;
    let batch: Vec<NewInvoice> = (0..5)
        .map(|i| {
            let v = if i % 2 == 1 {
                Verdict::Rejected
            } else {
                Verdict::Accepted
            };
            invoice(i, "FR123", &format!("INV-{i}"), 2024, v)
        })
        .collect();
    let stored = spool.store_invoices(f, &batch).await.unwrap();
    let expected = vec![
        (0, Verdict::Accepted, false),
        (1, Verdict::Rejected, false),
        (2, Verdict::Accepted, false),
        (3, Verdict::Rejected, false),
        (4, Verdict::Accepted, false),
    ];
    assert_eq!(verdicts(&stored), expected);
    assert_eq!(stored[1].reasons[0].rule, "BR-CO-15");
    spool
        .finish_flow(f, &FlowOutcome::Processed, 5, &[])
        .await
        .unwrap();
    let first = spool.invoices_of_flow(f).await.unwrap();
    assert_eq!(first.len(), 5);
    assert_eq!(first[2].total_with_vat, Some(Decimal::new(12002, 2)));
    assert_eq!(first[2].total_with_vat.unwrap().to_string(), "120.02");
    assert_eq!(first[3].reasons[0].term, "BT-112");
    assert_eq!(first[0].issue_date, NaiveDate::from_ymd_opt(2024, 6, 30));

    // replay, stored again in other batch boundaries and order
    let c = spool.claim_for_replay(f, LEASE).await.unwrap();
    assert_eq!(c.attempts, 2);
    let mut again = spool
        .store_invoices(f, &[batch[4].clone(), batch[3].clone()])
        .await
        .unwrap();
    again.extend(spool.store_invoices(f, &batch[..3]).await.unwrap());
    again.sort_by_key(|s| s.doc_index);
    assert_eq!(verdicts(&again), expected);
    spool
        .finish_flow(f, &FlowOutcome::Processed, 5, &[])
        .await
        .unwrap();
    let second = spool.invoices_of_flow(f).await.unwrap();
    assert_eq!(second.len(), 5, "same rows once");
    let ids = |rows: &[InvoiceRow]| {
        rows.iter()
            .map(|r| (r.id, r.doc_index, r.verdict))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&first), ids(&second));
    let row = spool.flow(f).await.unwrap();
    assert_eq!((row.invoices_accepted, row.invoices_rejected), (3, 2));
    assert_eq!(row.state, FlowState::Processed);
}

async fn duplicate_invoice_across_and_within_flows(db: Db) {
    let spool = db.spool("i1").await;
    let a = claimed(&spool, "acme", "a").await;
    let s = spool
        .store_invoices(
            a,
            &[
                invoice(0, "FR1", "N-1", 2024, Verdict::Accepted),
                invoice(1, "FR1", "N-2", 2024, Verdict::Rejected),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        verdicts(&s),
        vec![(0, Verdict::Accepted, false), (1, Verdict::Rejected, false)]
    );
    spool
        .finish_flow(a, &FlowOutcome::Processed, 2, &[])
        .await
        .unwrap();

    let b = claimed(&spool, "acme", "b").await;
    let batch = vec![
        invoice(0, "FR1", "N-1", 2024, Verdict::Accepted), // held by flow a
        invoice(1, "FR1", "N-1", 2023, Verdict::Accepted), // another year
        invoice(2, "FR2", "N-1", 2024, Verdict::Accepted), // another seller
        invoice(3, "FR1", "N-2", 2024, Verdict::Accepted), // a's N-2 was rejected: free
        invoice(4, "FR2", "N-1", 2024, Verdict::Accepted), // same as doc 2, same flow
    ];
    let s = spool.store_invoices(b, &batch[..3]).await.unwrap();
    let mut all = s.clone();
    all.extend(spool.store_invoices(b, &batch[3..]).await.unwrap());
    let expected = vec![
        (0, Verdict::Rejected, true),
        (1, Verdict::Accepted, false),
        (2, Verdict::Accepted, false),
        (3, Verdict::Accepted, false),
        (4, Verdict::Rejected, true),
    ];
    assert_eq!(verdicts(&all), expected);
    let reason = all[0].reasons.last().unwrap();
    assert_eq!(
        (
            reason.rule.as_str(),
            reason.term.as_str(),
            reason.severity.as_str()
        ),
        ("REJ_UNI", "BT-1", "fatal")
    );
    assert_eq!(
        reason.message,
        format!("duplicate invoice: number N-1 of seller FR1 for year 2024 was already received in flow {a} (DOUBLON)")
    );
    assert_eq!(
        all[4].reasons.last().unwrap().message,
        "duplicate invoice: number N-1 of seller FR2 for year 2024 appears twice in this flow (DOUBLON)"
    );
    spool
        .finish_flow(b, &FlowOutcome::Processed, 5, &[])
        .await
        .unwrap();
    let rows = spool.invoices_of_flow(b).await.unwrap();
    assert_eq!(rows[0].verdict, Verdict::Rejected);
    assert_eq!(rows[0].reasons.len(), 1);
    assert_eq!(rows[0].reasons[0].rule, "REJ_UNI");

    // reprocessing either flow keeps the same verdicts
    spool.claim_for_replay(b, LEASE).await.unwrap();
    let again = spool.store_invoices(b, &batch).await.unwrap();
    assert_eq!(verdicts(&again), expected);
    assert_eq!(again[0].reasons.len(), 1, "no reason added twice");
    spool
        .finish_flow(b, &FlowOutcome::Processed, 5, &[])
        .await
        .unwrap();
    spool.claim_for_replay(a, LEASE).await.unwrap();
    let again = spool
        .store_invoices(
            a,
            &[
                invoice(0, "FR1", "N-1", 2024, Verdict::Accepted),
                invoice(1, "FR1", "N-2", 2024, Verdict::Rejected),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        verdicts(&again),
        vec![(0, Verdict::Accepted, false), (1, Verdict::Rejected, false)]
    );
    spool
        .finish_flow(a, &FlowOutcome::Processed, 2, &[])
        .await
        .unwrap();
    let st = spool.status().await.unwrap();
    assert_eq!(st.totals.invoices["accepted"], 4);
    assert_eq!(st.totals.invoices["rejected"], 3);
}

async fn finish_deletes_leftover_rows(db: Db) {
    let one = db.spool("one").await;
    let two = db.spool("two").await;
    let short = Lease {
        duration: Duration::from_millis(300),
    };
    let f = registered(&one, "acme", "f").await;
    one.claim_flow(short).await.unwrap().unwrap();
    let batch: Vec<NewInvoice> = (0..5)
        .map(|i| invoice(i, "FR9", &format!("X-{i}"), 2024, Verdict::Accepted))
        .collect();
    one.store_invoices(f, &batch).await.unwrap();
    // instance one dies; two takes over and finds only 3 documents this time
    tokio::time::sleep(Duration::from_millis(500)).await;
    two.claim_flow(LEASE).await.unwrap().unwrap();
    two.store_invoices(f, &batch[..3]).await.unwrap();
    let ids = two
        .finish_flow(
            f,
            &FlowOutcome::Processed,
            3,
            &[(
                AckKind::IntegrationReport,
                "dropzone".into(),
                "f.report.xml".into(),
            )],
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 1);
    let rows = two.invoices_of_flow(f).await.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.doc_index).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    let row = two.flow(f).await.unwrap();
    assert_eq!(
        (row.invoices_accepted, row.invoices_rejected, row.attempts),
        (3, 0, 2)
    );
    // the deleted documents released their keys
    let g = claimed(&two, "acme", "g").await;
    let s = two
        .store_invoices(
            g,
            &[
                invoice(0, "FR9", "X-4", 2024, Verdict::Accepted),
                invoice(1, "FR9", "X-2", 2024, Verdict::Accepted),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        verdicts(&s),
        vec![(0, Verdict::Accepted, false), (1, Verdict::Rejected, true)]
    );

    // a failed flow keeps no rows when told it has no documents
    let h = claimed(&two, "acme", "h").await;
    two.store_invoices(h, &[invoice(0, "FR9", "Z-0", 2024, Verdict::Accepted)])
        .await
        .unwrap();
    let failed = FlowOutcome::Failed {
        code: "IRR_SYNTAX".into(),
        message: "truncated archive".into(),
    };
    two.finish_flow(h, &failed, 0, &[]).await.unwrap();
    assert!(two.invoices_of_flow(h).await.unwrap().is_empty());
    let k = claimed(&two, "acme", "k").await;
    let s = two
        .store_invoices(k, &[invoice(0, "FR9", "Z-0", 2024, Verdict::Accepted)])
        .await
        .unwrap();
    assert_eq!(verdicts(&s), vec![(0, Verdict::Accepted, false)]);
}

async fn illegal_transitions(db: Db) {
    let spool = db.spool("i1").await;
    let f = registered(&spool, "acme", "f").await;
    let err = spool
        .finish_flow(f, &FlowOutcome::Processed, 0, &[])
        .await
        .unwrap_err();
    match err {
        SpoolError::IllegalTransition { flow, from, to } => {
            assert_eq!(
                (flow, from.as_str(), to.as_str()),
                (f, "received", "processed")
            )
        }
        other => panic!("expected IllegalTransition, got {other}"),
    }
    spool.claim_flow(LEASE).await.unwrap().unwrap();
    spool
        .finish_flow(
            f,
            &FlowOutcome::Failed {
                code: "IRR_SYNTAX".into(),
                message: "not XML".into(),
            },
            0,
            &[],
        )
        .await
        .unwrap();
    let row = spool.flow(f).await.unwrap();
    assert_eq!(row.state, FlowState::Failed);
    assert_eq!(row.failure_code.as_deref(), Some("IRR_SYNTAX"));
    let err = spool
        .finish_flow(f, &FlowOutcome::Processed, 0, &[])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SpoolError::IllegalTransition { from, to, .. } if from == "failed" && to == "processed"),
        "{err}"
    );
    let err = spool
        .store_invoices(f, &[invoice(0, "S", "N", 2024, Verdict::Accepted)])
        .await
        .unwrap_err();
    assert!(matches!(err, SpoolError::IllegalTransition { .. }), "{err}");
    // a duplicate is never processed, not even on replay
    let Registration::Duplicate { id, .. } =
        spool.register_flow(&new_flow("acme", "f")).await.unwrap()
    else {
        panic!("expected duplicate")
    };
    let err = spool.claim_for_replay(id, LEASE).await.unwrap_err();
    assert!(
        matches!(&err, SpoolError::IllegalTransition { from, to, .. } if from == "duplicate" && to == "processing"),
        "{err}"
    );
    assert!(matches!(
        spool.flow(9999).await.unwrap_err(),
        SpoolError::FlowNotFound(9999)
    ));
    assert!(matches!(
        spool.claim_for_replay(9999, LEASE).await.unwrap_err(),
        SpoolError::FlowNotFound(9999)
    ));
    // replay of a failed flow is legal
    let c = spool.claim_for_replay(f, LEASE).await.unwrap();
    assert_eq!(c.attempts, 2);
}

async fn status_shape(db: Db) {
    let spool = db.spool("i1").await;
    spool.ensure_partner("zeta").await.unwrap();
    let f = claimed(&spool, "acme", "f1").await;
    spool
        .store_invoices(
            f,
            &[
                invoice(0, "S", "1", 2024, Verdict::Accepted),
                invoice(1, "S", "2", 2024, Verdict::Rejected),
                invoice(2, "S", "3", 2024, Verdict::Accepted),
            ],
        )
        .await
        .unwrap();
    spool
        .finish_flow(f, &FlowOutcome::Processed, 3, &[])
        .await
        .unwrap();
    registered(&spool, "acme", "f2").await;
    spool.register_flow(&new_flow("acme", "f2")).await.unwrap();
    registered(&spool, "globex", "g1").await;
    let json = serde_json::to_value(spool.status().await.unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "totals": {
                "flows": {"processed": 1, "received": 2, "duplicate": 1},
                "invoices": {"accepted": 2, "rejected": 1}
            },
            "partners": [
                {"partner": "acme",
                 "flows": {"processed": 1, "received": 1, "duplicate": 1},
                 "invoices": {"accepted": 2, "rejected": 1}},
                {"partner": "globex",
                 "flows": {"received": 1},
                 "invoices": {"accepted": 0, "rejected": 0}},
                {"partner": "zeta",
                 "flows": {},
                 "invoices": {"accepted": 0, "rejected": 0}}
            ]
        })
    );
}

async fn concurrent_claims_never_share_a_flow(db: Db) {
    let one = db.spool("one").await;
    let two = db.spool("two").await;
    let mut all = HashSet::new();
    for i in 0..40 {
        all.insert(registered(&one, "acme", &format!("sha{i}")).await);
    }
    let mut tasks = vec![];
    for (n, spool) in [one.clone(), two.clone(), one.clone(), two.clone(), one, two]
        .into_iter()
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            let mut got = vec![];
            while let Some(c) = spool.claim_flow(LEASE).await.unwrap() {
                assert_eq!(c.attempts, 1);
                got.push(c.id);
                if n % 2 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            got
        }));
    }
    let mut seen = HashSet::new();
    let mut per_task = vec![];
    for t in tasks {
        let got = t.await.unwrap();
        per_task.push(got.len());
        for id in got {
            assert!(seen.insert(id), "flow {id} claimed twice");
        }
    }
    assert_eq!(seen, all, "every flow claimed once ({per_task:?})");
}

async fn acknowledgements_lifecycle(db: Db) {
    let spool = db.spool("i1").await;
    let f = claimed(&spool, "acme", "f").await;
    let ids = spool
        .finish_flow(
            f,
            &FlowOutcome::Processed,
            0,
            &[
                (
                    AckKind::IntegrationReport,
                    "dropzone".into(),
                    "f.report.xml".into(),
                ),
                (AckKind::Cdar, "dropzone".into(), "f.cdar.xml".into()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    let pending = spool.pending_acks(10).await.unwrap();
    assert_eq!(pending.iter().map(|a| a.id).collect::<Vec<_>>(), ids);
    assert_eq!(pending[0].kind, AckKind::IntegrationReport);
    assert_eq!(pending[0].partner, "acme");
    assert_eq!(pending[1].file_name, "f.cdar.xml");
    spool
        .ack_failed(ids[0], "outbox not writable")
        .await
        .unwrap();
    spool.ack_delivered(ids[1]).await.unwrap();
    let acks = spool.acks_of_flow(f).await.unwrap();
    assert_eq!(acks[0].attempts, 1);
    assert_eq!(acks[0].last_error.as_deref(), Some("outbox not writable"));
    assert!(acks[0].delivered_at.is_none());
    assert!(acks[1].delivered_at.is_some());
    assert_eq!(spool.pending_acks(10).await.unwrap().len(), 1);
    spool.ack_delivered(ids[0]).await.unwrap();
    assert!(spool.pending_acks(10).await.unwrap().is_empty());
    spool.requeue_ack(ids[0]).await.unwrap();
    assert_eq!(spool.pending_acks(10).await.unwrap()[0].id, ids[0]);
    assert!(matches!(
        spool.ack_delivered(424242).await.unwrap_err(),
        SpoolError::AckNotFound(424242)
    ));
}

async fn job_locks_are_exclusive_and_runs_recorded(db: Db) {
    let one = db.spool("one").await;
    let two = db.spool("two").await;
    let lock = one
        .try_lock_job("reject_digest")
        .await
        .unwrap()
        .expect("free lock");
    assert_eq!(lock.job(), "reject_digest");
    assert!(two.try_lock_job("reject_digest").await.unwrap().is_none());
    assert!(
        one.try_lock_job("reject_digest").await.unwrap().is_none(),
        "not reentrant"
    );
    let other = two
        .try_lock_job("purge")
        .await
        .unwrap()
        .expect("another job is free");
    lock.release().await.unwrap();
    let again = two
        .try_lock_job("reject_digest")
        .await
        .unwrap()
        .expect("released");
    drop(again);
    drop(other);
    // dropping releases too (in the background for SQLite)
    let mut taken = None;
    for _ in 0..50 {
        taken = one.try_lock_job("reject_digest").await.unwrap();
        if taken.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(taken.is_some(), "lock released on drop");

    assert!(one.last_job_run("reconcile").await.unwrap().is_none());
    let t = |h: u32| {
        chrono::NaiveDate::from_ymd_opt(2026, 9, 1)
            .unwrap()
            .and_hms_opt(h, 0, 0)
            .unwrap()
            .and_utc()
    };
    let r1 = one.start_job_run("reconcile", t(7)).await.unwrap();
    one.finish_job_run(r1, "ok", None).await.unwrap();
    let r2 = two
        .record_job_run("reconcile", t(13), t(13), "failed", Some("smtp down"))
        .await
        .unwrap();
    one.start_job_run("purge", t(18)).await.unwrap();
    let last = one.last_job_run("reconcile").await.unwrap().unwrap();
    assert_eq!(
        (last.id, last.scheduled_for, last.instance.as_str()),
        (r2, t(13), "two")
    );
    assert_eq!(
        (last.outcome.as_deref(), last.detail.as_deref()),
        (Some("failed"), Some("smtp down"))
    );
    assert!(last.finished_at.is_some());
}

async fn reject_outbox_notifies_once(db: Db) {
    let spool = db.spool("i1").await;
    let f = claimed(&spool, "acme", "f").await;
    let batch = vec![
        invoice(0, "S", "A-1", 2024, Verdict::Rejected),
        invoice(1, "S", "A-2", 2024, Verdict::Accepted),
        invoice(2, "S", "A-3", 2024, Verdict::Rejected),
    ];
    spool.store_invoices(f, &batch).await.unwrap();
    assert!(
        spool.pending_rejects("acme").await.unwrap().is_empty(),
        "only finished flows notify"
    );
    spool
        .finish_flow(f, &FlowOutcome::Processed, 3, &[])
        .await
        .unwrap();
    assert_eq!(
        spool.partners_with_pending_rejects().await.unwrap(),
        vec!["acme".to_owned()]
    );
    let pending = spool.pending_rejects("acme").await.unwrap();
    assert_eq!(
        pending.iter().map(|r| r.doc_index).collect::<Vec<_>>(),
        vec![0, 2]
    );
    assert_eq!(pending[0].number.as_deref(), Some("A-1"));
    assert_eq!(pending[0].original_name, "f.zip");
    assert_eq!(pending[1].total_with_vat, Some(Decimal::new(12002, 2)));
    assert_eq!(pending[1].reasons[0].rule, "BR-CO-15");
    let digest = NewDigest {
        partner: "acme".into(),
        recipients: vec!["edi@acme.example".into()],
        message_id: Some("<d1@quai>".into()),
    };
    let (_, marked) = spool
        .mark_notified(&[pending[0].id], &digest)
        .await
        .unwrap();
    assert_eq!(marked, 1);
    // reprocessing the flow neither re-notifies nor loses the pending one
    spool.claim_for_replay(f, LEASE).await.unwrap();
    spool.store_invoices(f, &batch).await.unwrap();
    spool
        .finish_flow(f, &FlowOutcome::Processed, 3, &[])
        .await
        .unwrap();
    let left = spool.pending_rejects("acme").await.unwrap();
    assert_eq!(
        left.iter().map(|r| r.doc_index).collect::<Vec<_>>(),
        vec![2]
    );
    let (_, marked) = spool
        .mark_notified(&[pending[0].id, left[0].id], &digest)
        .await
        .unwrap();
    assert_eq!(marked, 1, "only the one not yet notified");
    assert!(spool.pending_rejects("acme").await.unwrap().is_empty());
    assert!(spool
        .partners_with_pending_rejects()
        .await
        .unwrap()
        .is_empty());
    // another partner's ids are not marked by acme's digest
    let g = claimed(&spool, "globex", "g").await;
    spool
        .store_invoices(g, &[invoice(0, "T", "G-1", 2024, Verdict::Rejected)])
        .await
        .unwrap();
    spool
        .finish_flow(g, &FlowOutcome::Processed, 1, &[])
        .await
        .unwrap();
    let theirs = spool.pending_rejects("globex").await.unwrap();
    assert_eq!(
        spool
            .mark_notified(&[theirs[0].id], &digest)
            .await
            .unwrap()
            .1,
        0
    );
    assert_eq!(spool.pending_rejects("globex").await.unwrap().len(), 1);
}

async fn purge_removes_only_finished_work(db: Db) {
    let spool = db.spool("i1").await;
    // processed, ack delivered: purgeable
    let done = claimed(&spool, "acme", "sha-done").await;
    spool
        .store_invoices(done, &[invoice(0, "S", "P-1", 2024, Verdict::Accepted)])
        .await
        .unwrap();
    let acks = spool
        .finish_flow(
            done,
            &FlowOutcome::Processed,
            1,
            &[(AckKind::IntegrationReport, "dropzone".into(), "r".into())],
        )
        .await
        .unwrap();
    spool.ack_delivered(acks[0]).await.unwrap();
    // its duplicate: purgeable too
    spool
        .register_flow(&new_flow("acme", "sha-done"))
        .await
        .unwrap();
    // processed, ack not delivered: kept
    let waiting = claimed(&spool, "acme", "sha-wait").await;
    spool
        .finish_flow(
            waiting,
            &FlowOutcome::Processed,
            0,
            &[(AckKind::IntegrationReport, "dropzone".into(), "r".into())],
        )
        .await
        .unwrap();
    // failed with a shared hash (other partner keeps the raw file alive)
    let failed = claimed(&spool, "acme", "sha-shared").await;
    let outcome = FlowOutcome::Failed {
        code: "IRR_VIDE_F".into(),
        message: "empty".into(),
    };
    spool.finish_flow(failed, &outcome, 0, &[]).await.unwrap();
    // (refused whole: its digest is recorded, see refused_flows_are_notified_once)
    let owed = spool.pending_failed_flows("acme").await.unwrap();
    let digest = NewDigest {
        partner: "acme".into(),
        recipients: vec![],
        message_id: None,
    };
    spool
        .mark_digest(&[], &[owed[0].id], &digest)
        .await
        .unwrap();
    let other = registered(&spool, "globex", "sha-shared").await;
    // unfinished work: kept
    let unfinished = registered(&spool, "acme", "sha-new").await;

    // nothing is old enough yet
    let cutoff_past = chrono::Utc::now() - chrono::Duration::hours(1);
    assert_eq!(
        spool.purge(cutoff_past).await.unwrap(),
        PurgeReport::default()
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = spool.purge(chrono::Utc::now()).await.unwrap();
    assert_eq!(report.flows, 3, "{report:?}");
    assert_eq!(report.invoices, 1);
    assert_eq!(report.unreferenced_raw, vec!["sha-done".to_owned()]);
    for gone in [done, failed] {
        assert!(matches!(
            spool.flow(gone).await.unwrap_err(),
            SpoolError::FlowNotFound(_)
        ));
        let history = spool.flow_events(gone).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].to_state, "purged");
    }
    for kept in [waiting, other, unfinished] {
        spool.flow(kept).await.unwrap();
    }
    // the purged invoice no longer blocks its number
    let n = spool.claim_flow(LEASE).await.unwrap().unwrap().id;
    let s = spool
        .store_invoices(n, &[invoice(0, "S", "P-1", 2024, Verdict::Accepted)])
        .await
        .unwrap();
    assert_eq!(s[0].verdict, Verdict::Accepted);
    let st = spool.status().await.unwrap();
    assert_eq!(st.totals.flows.get("duplicate"), None);
}

async fn history_and_reconciliation_counts(db: Db) {
    let one = db.spool("one").await;
    let start = chrono::Utc::now() - chrono::Duration::seconds(1);
    assert!(one.oldest_unfinished().await.unwrap().is_none());
    let f = claimed(&one, "acme", "f").await;
    one.store_invoices(
        f,
        &[
            invoice(0, "S", "H-1", 2024, Verdict::Accepted),
            invoice(1, "S", "H-2", 2024, Verdict::Rejected),
        ],
    )
    .await
    .unwrap();
    let acks = one
        .finish_flow(
            f,
            &FlowOutcome::Processed,
            2,
            &[(AckKind::IntegrationReport, "dropzone".into(), "r".into())],
        )
        .await
        .unwrap();
    one.ack_delivered(acks[0]).await.unwrap();
    let g = registered(&one, "acme", "g").await;
    one.register_flow(&new_flow("acme", "g")).await.unwrap();
    registered(&one, "globex", "x").await;

    let history = one.flow_events(f).await.unwrap();
    let steps: Vec<(Option<&str>, &str, &str)> = history
        .iter()
        .map(|e| {
            (
                e.from_state.as_deref(),
                e.to_state.as_str(),
                e.entity.as_str(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            (None, "received", "flow"),
            (Some("received"), "processing", "flow"),
            (Some("processing"), "processed", "flow"),
            (None, "pending", "ack"),
            (Some("pending"), "delivered", "ack"),
        ]
    );
    assert!(history.iter().all(|e| e.instance == "one"));

    let oldest = one.oldest_unfinished().await.unwrap().unwrap();
    assert_eq!(oldest.id, g);
    assert_eq!(one.unfinished_flows(None).await.unwrap().len(), 2);
    assert!(one.unfinished_flows(Some(start)).await.unwrap().is_empty());
    assert_eq!(one.flow_by_hash("acme", "g").await.unwrap().unwrap().id, g);
    assert!(one.flow_by_hash("acme", "nope").await.unwrap().is_none());

    one.record_sighting("acme", Origin::Dropzone, "f.zip", 1234)
        .await
        .unwrap();
    one.record_sighting("acme", Origin::Sftp, "lost.xml", 10)
        .await
        .unwrap();
    one.record_sighting("acme", Origin::Sftp, "lost.xml", 10)
        .await
        .unwrap();
    one.record_sighting("acme", Origin::Dropzone, "f.zip", 999)
        .await
        .unwrap(); // other size

    let end = chrono::Utc::now() + chrono::Duration::seconds(1);
    let lost = one.sightings_not_ingested(start, end).await.unwrap();
    let lost: Vec<(&str, Origin, i64, i32)> = lost
        .iter()
        .map(|s| (s.name.as_str(), s.origin, s.size, s.times_seen))
        .collect();
    assert_eq!(
        lost,
        vec![
            ("lost.xml", Origin::Sftp, 10, 2),
            ("f.zip", Origin::Dropzone, 999, 1)
        ]
    );
    let counts = one.period_counts(start, end).await.unwrap();
    let json = serde_json::to_value(&counts).unwrap();
    assert_eq!(
        json,
        serde_json::json!([
            {"partner": "acme",
             "flows": {"processed": 1, "received": 1, "duplicate": 1},
             "invoices": {"accepted": 1, "rejected": 1},
             "rejects": {"notified": 0, "pending": 1},
             "acks": {"delivered": 1, "pending": 0},
             "files": {"ingested": 1, "not_ingested": 2}},
            {"partner": "globex",
             "flows": {"received": 1},
             "invoices": {"accepted": 0, "rejected": 0},
             "rejects": {"notified": 0, "pending": 0},
             "acks": {"delivered": 0, "pending": 0},
             "files": {"ingested": 0, "not_ingested": 0}}
        ])
    );
    // a period before everything is empty
    let before = one
        .period_counts(start - chrono::Duration::days(2), start)
        .await
        .unwrap();
    assert!(before.iter().all(|c| c.flows.is_empty()));
}

async fn hostile_text_is_stored_not_refused(db: Db) {
    let spool = db.spool("i1").await;
    let mut flow = new_flow("acme", "nul");
    flow.original_name = "bad\0name.zip".into();
    flow.as2_message_id = Some("<m\0@x>".into());
    let Registration::New(f) = spool.register_flow(&flow).await.unwrap() else {
        panic!("expected a new flow")
    };
    assert_eq!(
        spool.flow(f).await.unwrap().original_name,
        "bad\u{FFFD}name.zip"
    );
    spool.claim_flow(LEASE).await.unwrap().unwrap();
    let long = "N".repeat(10_000);
    let mut a = invoice(0, "S\0", &long, 2024, Verdict::Accepted);
    a.entry = "e\0.xml".into();
    let mut b = invoice(1, "S", "far", 2024, Verdict::Rejected);
    b.reasons[0].message = "bad \0 byte".into();
    b.issue_date = NaiveDate::from_ymd_opt(20_000, 1, 1);
    let c = invoice(2, "S\0", &long, 2024, Verdict::Accepted);
    let s = spool.store_invoices(f, &[a, b, c]).await.unwrap();
    assert_eq!(
        verdicts(&s),
        vec![
            (0, Verdict::Accepted, false),
            (1, Verdict::Rejected, false),
            (2, Verdict::Rejected, true)
        ]
    );
    let rows = spool.invoices_of_flow(f).await.unwrap();
    assert_eq!(rows[0].entry, "e\u{FFFD}.xml");
    assert_eq!(rows[0].number.as_deref(), Some(long.as_str()));
    assert_eq!(rows[0].seller_id.as_deref(), Some("S\u{FFFD}"));
    assert_eq!(rows[1].reasons[0].message, "bad \u{FFFD} byte");
    assert_eq!(rows[1].issue_date, None);
    assert!(rows[2].reasons[0].message.starts_with(&format!(
        "duplicate invoice: number {long} of seller S\u{FFFD}"
    )));
}

/// `sqlite::memory:` is one database (not one per pooled connection).
#[tokio::test]
async fn sqlite_in_memory_is_one_database() {
    let spool = Spool::connect("sqlite::memory:", "mem").await.unwrap();
    let a = registered(&spool, "acme", "m1").await;
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let s = spool.clone();
            tokio::spawn(async move { s.flow(a).await.map(|f| f.id) })
        })
        .collect();
    for h in handles {
        assert_eq!(h.await.unwrap().unwrap(), a);
    }
}

async fn concurrent_duplicate_invoices_one_wins(db: Db) {
    let one = db.spool("one").await;
    let two = db.spool("two").await;
    for round in 0..3 {
        let f = registered(&one, "acme", &format!("f{round}")).await;
        let g = registered(&two, "globex", &format!("g{round}")).await;
        assert_eq!(one.claim_flow(LEASE).await.unwrap().unwrap().id, f);
        assert_eq!(two.claim_flow(LEASE).await.unwrap().unwrap().id, g);
        // the same 60 invoice numbers, in opposite orders
        let batch = |rev: bool| -> Vec<NewInvoice> {
            (0..60)
                .map(|i| {
                    let n = if rev { 59 - i } else { i };
                    invoice(i, "SAME", &format!("R{round}-{n}"), 2025, Verdict::Accepted)
                })
                .collect()
        };
        let (a, b) = (batch(false), batch(true));
        let (x, y) = tokio::join!(one.store_invoices(f, &a), two.store_invoices(g, &b));
        let (x, y) = (x.unwrap(), y.unwrap());
        let accepted = x
            .iter()
            .chain(&y)
            .filter(|s| s.verdict == Verdict::Accepted)
            .count();
        assert_eq!(accepted, 60, "each number accepted exactly once");
        let dups = x.iter().chain(&y).filter(|s| s.duplicate).count();
        assert_eq!(dups, 60);
        // acme and globex: neither is told the other's flow id.
        for s in x.iter().chain(&y).filter(|s| s.duplicate) {
            let m = &s.reasons[0].message;
            assert!(m.ends_with("2025 was already received (DOUBLON)"), "{m}");
            assert!(!m.contains(" flow "), "{m}");
        }
    }
}

/// The daemon runs spool calls inside spawned tasks: every future is Send.
#[allow(dead_code, clippy::let_underscore_future)]
fn futures_are_send(s: Spool, f: NewFlow, b: Vec<NewInvoice>, d: NewDigest) {
    fn send<T: Send>(_: T) {}
    let now = chrono::Utc::now();
    send(s.register_flow(&f));
    send(s.register_flow_with_acks(&f, |_| Vec::new()));
    send(s.claim_flow(LEASE));
    send(s.store_invoices(1, &b));
    send(s.finish_flow(1, &FlowOutcome::Processed, 0, &[]));
    send(s.try_lock_job("j"));
    send(s.mark_notified(&[1], &d));
    send(s.purge(now));
    send(s.period_counts(now, now));
    send(s.record_sighting("p", Origin::Sftp, "n", 1));
    send(s.status());
}

/// Acknowledgements of large flows read the invoices page by page: pages
/// cover every row once, in doc_index order, whatever the page size.
async fn invoices_read_page_by_page(db: Db) {
    let spool = db.spool("i1").await;
    let f = claimed(&spool, "acme", "paged").await;
    // stored out of order, in two batches; rejects with reasons, text that
    // needs escaping, missing values
    let mut batch: Vec<NewInvoice> = [5, 0, 3, 6, 4, 2, 1]
        .iter()
        .map(|&i| {
            let v = if i % 3 == 0 {
                Verdict::Rejected
            } else {
                Verdict::Accepted
            };
            invoice(i, "FR123", &format!("P-{i}"), 2024, v)
        })
        .collect();
    batch[1].entry = "lot \"A\"/façture\\n°1.xml".into();
    batch[2].issue_date = None;
    batch[2].number = None;
    batch[3].total_with_vat = Some(Decimal::new(-123456789, 4));
    spool.store_invoices(f, &batch[..4]).await.unwrap();
    spool.store_invoices(f, &batch[4..]).await.unwrap();
    spool
        .finish_flow(f, &FlowOutcome::Processed, 7, &[])
        .await
        .unwrap();
    let rows = spool.invoices_of_flow(f).await.unwrap();
    let all: Vec<i64> = rows.iter().map(|r| r.doc_index).collect();
    assert_eq!(all, (0..7).collect::<Vec<i64>>());
    let everything = serde_json::to_value(&rows).unwrap();
    for page_size in [1, 2, 3, 7, 100] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = spool
                .invoices_of_flow_page(f, after, page_size)
                .await
                .unwrap();
            assert!(page.len() as i64 <= page_size);
            let Some(last) = page.last() else { break };
            after = Some(last.doc_index);
            seen.extend(page);
        }
        // the pages hold exactly the rows the whole read gives
        assert_eq!(
            serde_json::to_value(&seen).unwrap(),
            everything,
            "page size {page_size}"
        );
    }
    let other = claimed(&spool, "acme", "other").await;
    assert!(spool
        .invoices_of_flow_page(other, None, 10)
        .await
        .unwrap()
        .is_empty());
}

/// The canonical JSON is stored compressed; reading it back gives the text
/// the pipeline wrote, and nothing for a document without one.
async fn canonical_invoice_read_back(db: Db) {
    let spool = db.spool("i1").await;
    let f = claimed(&spool, "acme", "canon").await;
    let long = format!(
        "{{\"number\":\"C-0\",\"note\":\"{}\",\"seller\":\"Société Générale Müller\"}}",
        "x".repeat(20_000)
    );
    let mut with = invoice(0, "FR1", "C-0", 2024, Verdict::Accepted);
    with.canonical_json = Some(long.clone());
    let mut without = invoice(1, "FR1", "C-1", 2024, Verdict::Rejected);
    without.canonical_json = None;
    let short = invoice(2, "FR1", "C-2", 2024, Verdict::Accepted);
    spool
        .store_invoices(f, &[with, without, short])
        .await
        .unwrap();
    assert_eq!(spool.canonical_invoice(f, 0).await.unwrap(), Some(long));
    assert_eq!(spool.canonical_invoice(f, 1).await.unwrap(), None);
    assert_eq!(
        spool.canonical_invoice(f, 2).await.unwrap().as_deref(),
        Some("{\"number\":\"C-2\"}")
    );
    assert_eq!(spool.canonical_invoice(f, 3).await.unwrap(), None);
}

/// Issue 14, class 3: partner B reusing partner A's Message-ID sends B's
/// own new message; the same partner reusing one is a duplicate.
async fn as2_message_ids_are_per_partner(db: Db) {
    let spool = db.spool("i1").await;
    let as2 = |partner: &str, sha: &str| NewFlow {
        origin: Origin::As2,
        as2_message_id: Some("<shared-1@x>".into()),
        ..new_flow(partner, sha)
    };
    let a = spool.register_flow(&as2("acme", "a1")).await.unwrap();
    let Registration::New(a) = a else {
        panic!("{a:?}")
    };
    let b = spool.register_flow(&as2("globex", "b1")).await.unwrap();
    assert!(matches!(b, Registration::New(_)), "{b:?}");
    // the same bytes under the same Message-ID: still initech's own
    let b2 = spool.register_flow(&as2("initech", "a1")).await.unwrap();
    assert!(matches!(b2, Registration::New(_)), "{b2:?}");
    let again = spool.register_flow(&as2("acme", "a2")).await.unwrap();
    assert!(
        matches!(again, Registration::Duplicate { original, .. } if original == a),
        "{again:?}"
    );
}

/// A duplicate invoice first received from another partner names no flow
/// of that partner; one of the same partner keeps the flow id.
async fn duplicate_invoice_of_another_partner_names_no_flow(db: Db) {
    let spool = db.spool("i1").await;
    let a = claimed(&spool, "acme", "a").await;
    spool
        .store_invoices(a, &[invoice(0, "FR1", "N-1", 2024, Verdict::Accepted)])
        .await
        .unwrap();
    spool
        .finish_flow(a, &FlowOutcome::Processed, 1, &[])
        .await
        .unwrap();
    let b = claimed(&spool, "globex", "b").await;
    let s = spool
        .store_invoices(b, &[invoice(0, "FR1", "N-1", 2024, Verdict::Accepted)])
        .await
        .unwrap();
    assert!(s[0].duplicate);
    assert_eq!(
        s[0].reasons[0].message,
        "duplicate invoice: number N-1 of seller FR1 for year 2024 was already received (DOUBLON)"
    );
    spool
        .finish_flow(b, &FlowOutcome::Processed, 1, &[])
        .await
        .unwrap();
    let c = claimed(&spool, "acme", "c").await;
    let s = spool
        .store_invoices(c, &[invoice(0, "FR1", "N-1", 2024, Verdict::Accepted)])
        .await
        .unwrap();
    assert_eq!(
        s[0].reasons[0].message,
        format!("duplicate invoice: number N-1 of seller FR1 for year 2024 was already received in flow {a} (DOUBLON)")
    );
}

/// An entry refused before landing becomes a `failed` flow with its
/// acknowledgement, once; told again, nothing more is registered.
async fn refused_entries_are_registered_once_as_failed(db: Db) {
    let spool = db.spool("i1").await;
    let refused = NewFlow {
        size: 0,
        ..new_flow("acme", "refusal-key-1")
    };
    let report = |id: FlowId| {
        vec![(
            AckKind::IntegrationReport,
            "dropzone".to_string(),
            format!("fifo.{id}.report"),
        )]
    };
    let id = spool
        .register_refused(&refused, "IRR_TYPE_F", "a named pipe, not a file", report)
        .await
        .unwrap()
        .expect("registered");
    let row = spool.flow(id).await.unwrap();
    assert_eq!(row.state, FlowState::Failed);
    assert_eq!(row.failure_code.as_deref(), Some("IRR_TYPE_F"));
    assert_eq!(
        row.failure_message.as_deref(),
        Some("a named pipe, not a file")
    );
    assert_eq!(spool.acks_of_flow(id).await.unwrap().len(), 1);
    let again = spool
        .register_refused(&refused, "IRR_TYPE_F", "a named pipe, not a file", report)
        .await
        .unwrap();
    assert_eq!(again, None);
    assert!(
        spool.claim_flow(LEASE).await.unwrap().is_none(),
        "never processed"
    );
    assert_eq!(spool.pending_acks(10).await.unwrap().len(), 1);
}

async fn refused_flows_are_notified_once(db: Db) {
    let spool = db.spool("i1").await;
    // A flow refused whole while processing, and an entry refused at intake.
    let f = claimed(&spool, "acme", "f").await;
    let failed = FlowOutcome::Failed {
        code: "IRR_SYNTAX".into(),
        message: "not well-formed".into(),
    };
    spool.finish_flow(f, &failed, 0, &[]).await.unwrap();
    let refused = NewFlow {
        size: 0,
        ..new_flow("acme", "refusal-key-2")
    };
    let r = spool
        .register_refused(&refused, "IRR_TYPE_F", "a named pipe", |_| Vec::new())
        .await
        .unwrap()
        .unwrap();
    let ok = claimed(&spool, "acme", "ok").await;
    spool
        .finish_flow(ok, &FlowOutcome::Processed, 0, &[])
        .await
        .unwrap();
    assert_eq!(
        spool.partners_with_pending_rejects().await.unwrap(),
        vec!["acme".to_owned()]
    );
    // A refused flow not yet notified is not purged.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let purged = spool.purge(chrono::Utc::now()).await.unwrap();
    assert_eq!(purged.flows, 1, "only the processed one: {purged:?}");
    let pending = spool.pending_failed_flows("acme").await.unwrap();
    assert_eq!(
        pending
            .iter()
            .map(|p| (p.flow_id, p.code.as_str(), p.message.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (f, "IRR_SYNTAX", "not well-formed"),
            (r, "IRR_TYPE_F", "a named pipe")
        ]
    );
    assert_eq!(pending[0].original_name, "f.zip");
    let digest = NewDigest {
        partner: "globex".into(),
        recipients: vec![],
        message_id: None,
    };
    let ids: Vec<i64> = pending.iter().map(|p| p.id).collect();
    spool.ensure_partner("globex").await.unwrap();
    assert_eq!(
        spool.mark_digest(&[], &ids, &digest).await.unwrap().1,
        0,
        "another partner's rows"
    );
    let digest = NewDigest {
        partner: "acme".into(),
        ..digest
    };
    assert_eq!(
        spool.mark_digest(&[], &ids[..1], &digest).await.unwrap().1,
        1
    );
    // Failing again after a replay owes nothing new.
    spool.claim_for_replay(f, LEASE).await.unwrap();
    spool.finish_flow(f, &failed, 0, &[]).await.unwrap();
    let left = spool.pending_failed_flows("acme").await.unwrap();
    assert_eq!(left.iter().map(|p| p.flow_id).collect::<Vec<_>>(), vec![r]);
    assert_eq!(spool.mark_digest(&[], &ids, &digest).await.unwrap().1, 1);
    assert!(spool.pending_failed_flows("acme").await.unwrap().is_empty());
    assert!(spool
        .partners_with_pending_rejects()
        .await
        .unwrap()
        .is_empty());
}
