//! The exchange's delivery rows (issue 15), on both backends: deliveries
//! held batch by batch while a flow is processed are claimable only once
//! the flow's finishing transaction released them, a failed flow owes
//! none, and holding again owes nothing twice.

mod support;

use support::Db;

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use quai_spool::*;
use rust_decimal::Decimal;

both!(
    held_deliveries_wait_for_their_flow,
    a_failed_flow_owes_none_of_its_held_deliveries,
    a_delivered_batch_is_recorded_in_one_transaction,
    a_refused_status_leaves_only_its_delivery_pending,
    each_delivered_batch_of_a_flow_is_its_own_relay_group,
);

const LEASE: Lease = Lease {
    duration: Duration::from_secs(60),
};
const SUPPLIER: &str = "acme";
const BUYER: &str = "buyer";

fn invoice(doc: i64, verdict: Verdict) -> NewInvoice {
    NewInvoice {
        doc_index: doc,
        entry: format!("inv-{doc}.xml"),
        syntax: Some("ubl".into()),
        profile: None,
        seller_id: Some("FR12732829320".into()),
        number: Some(format!("F-{doc}")),
        issue_date: NaiveDate::from_ymd_opt(2026, 9, 30),
        type_code: Some("380".into()),
        currency: Some("EUR".into()),
        total_without_vat: Some(Decimal::new(10000, 2)),
        total_with_vat: Some(Decimal::new(12000, 2)),
        amount_due: Some(Decimal::new(12000, 2)),
        verdict,
        reasons: if verdict == Verdict::Rejected {
            vec![Reason {
                rule: "BR-CO-15".into(),
                term: "BT-112".into(),
                severity: "fatal".into(),
                message: "totals".into(),
            }]
        } else {
            vec![]
        },
        canonical_json: Some("{}".into()),
    }
}

fn owed(doc: i64) -> NewInvoiceDelivery {
    NewInvoiceDelivery {
        doc_index: doc,
        recipient: BUYER.into(),
        to: Destination::LocalOutbox {
            partner: BUYER.into(),
        },
        file_name: format!("S_F-{doc}_1-{doc}.ubl.xml"),
    }
}

/// A claimed flow with docs 0 and 1 accepted, 2 rejected, stored.
async fn claimed_flow(spool: &Spool, sha: &str) -> FlowId {
    let Registration::New(f) = spool
        .register_flow(&NewFlow {
            partner: SUPPLIER.into(),
            origin: Origin::Dropzone,
            original_name: format!("{sha}.zip"),
            size: 10,
            sha256: sha.into(),
            as2_message_id: None,
        })
        .await
        .unwrap()
    else {
        panic!("new flow expected")
    };
    let c = spool.claim_flow(LEASE).await.unwrap().expect("claimable");
    assert_eq!(c.id, f);
    spool
        .store_invoices(
            f,
            &[
                invoice(0, Verdict::Accepted),
                invoice(1, Verdict::Accepted),
                invoice(2, Verdict::Rejected),
            ],
        )
        .await
        .unwrap();
    f
}

async fn invoice_rows(spool: &Spool, f: FlowId) -> Vec<DeliveryRow> {
    spool
        .deliveries_of_flow(f)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| matches!(d.item, DeliveryItem::Invoice { .. }))
        .collect()
}

async fn held_deliveries_wait_for_their_flow(db: Db) {
    let spool = db.spool("host:1").await;
    let f = claimed_flow(&spool, "held").await;
    // The rejected doc 2 owes nothing even when asked to.
    let ids = spool
        .hold_invoice_deliveries(f, &[0, 1, 2], &[owed(0), owed(1)])
        .await
        .unwrap();
    assert_eq!(ids.len(), 2, "one row per routed accepted invoice");
    assert_eq!(invoice_rows(&spool, f).await.len(), 2);

    // Not claimable, not even a day later, while the flow is processing.
    let later = Utc::now() + chrono::Duration::days(1);
    let claimed = spool.claim_due_deliveries(later, 100, LEASE).await.unwrap();
    assert!(claimed.is_empty(), "held rows were claimed: {claimed:?}");
    let chosen = spool.claim_deliveries(&ids, later, LEASE).await.unwrap();
    assert!(chosen.is_empty(), "held rows were claimed by id");

    // Held again (a batch stored again): nothing new.
    let again = spool
        .hold_invoice_deliveries(f, &[0, 1], &[owed(0), owed(1)])
        .await
        .unwrap();
    assert!(again.is_empty());

    spool
        .finish_flow_routed(f, &FlowOutcome::Processed, 3, &[], &[])
        .await
        .unwrap();
    let claimed = spool
        .claim_due_deliveries(Utc::now() + chrono::Duration::seconds(1), 100, LEASE)
        .await
        .unwrap();
    let mut docs: Vec<i64> = claimed
        .iter()
        .filter_map(|d| match d.item {
            DeliveryItem::Invoice { doc_index, .. } => Some(doc_index),
            _ => None,
        })
        .collect();
    docs.sort();
    assert_eq!(docs, vec![0, 1], "released by the finishing commit");
    let inv = spool.exchanged_invoice(f, 1).await.unwrap().unwrap();
    assert_eq!(inv.recipient.as_deref(), Some(BUYER));
    let rejected = spool.exchanged_invoice(f, 2).await.unwrap().unwrap();
    assert_eq!(rejected.recipient, None);
}

async fn a_failed_flow_owes_none_of_its_held_deliveries(db: Db) {
    let spool = db.spool("host:1").await;
    let f = claimed_flow(&spool, "failed").await;
    spool
        .hold_invoice_deliveries(f, &[0, 1, 2], &[owed(0), owed(1)])
        .await
        .unwrap();
    spool
        .finish_flow_routed(
            f,
            &FlowOutcome::Failed {
                code: "IRR_TEST".into(),
                message: "refused whole".into(),
            },
            0,
            &[],
            &[],
        )
        .await
        .unwrap();
    assert!(invoice_rows(&spool, f).await.is_empty());

    // A flow processed again after a crash drops the rows of invoices
    // that are no longer routed there.
    let g = claimed_flow(&spool, "again").await;
    spool
        .hold_invoice_deliveries(g, &[0, 1, 2], &[owed(0), owed(1)])
        .await
        .unwrap();
    // This pass routes doc 1 nowhere (its batch held again without it).
    spool.hold_invoice_deliveries(g, &[1], &[]).await.unwrap();
    spool
        .finish_flow_routed(g, &FlowOutcome::Processed, 3, &[], &[])
        .await
        .unwrap();
    let rows = invoice_rows(&spool, g).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(matches!(
        rows[0].item,
        DeliveryItem::Invoice { doc_index: 0, .. }
    ));
}

fn sent_statuses(f: FlowId, doc: i64) -> Vec<NewStatus> {
    [StatusCode::Issued, StatusCode::MadeAvailable]
        .into_iter()
        .map(|code| {
            NewStatus::platform(
                f,
                doc,
                code,
                Some(StatusRelay {
                    partner: SUPPLIER.into(),
                    to: Destination::LocalOutbox {
                        partner: SUPPLIER.into(),
                    },
                    file_name: format!("held.cdar.{doc}-{code}.xml"),
                    wants: StatusFilter::all(),
                }),
            )
        })
        .collect()
}

async fn a_delivered_batch_is_recorded_in_one_transaction(db: Db) {
    let spool = db.spool("host:1").await;
    let f = claimed_flow(&spool, "batch").await;
    spool
        .hold_invoice_deliveries(f, &[0, 1, 2], &[owed(0), owed(1)])
        .await
        .unwrap();
    spool
        .finish_flow_routed(f, &FlowOutcome::Processed, 3, &[], &[])
        .await
        .unwrap();
    let rows = spool
        .claim_due_deliveries(Utc::now() + chrono::Duration::seconds(1), 100, LEASE)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let mut items: Vec<DeliveredItem> = rows
        .iter()
        .map(|r| {
            let DeliveryItem::Invoice { doc_index, .. } = r.item else {
                panic!("{r:?}")
            };
            DeliveredItem {
                delivery: r.id,
                to: r.to.clone(),
                receipt: None,
                statuses: sent_statuses(f, doc_index),
            }
        })
        .collect();
    // A row the spool does not know is refused alone.
    items.push(DeliveredItem {
        delivery: 999_999,
        to: Destination::LocalOutbox {
            partner: BUYER.into(),
        },
        receipt: None,
        statuses: vec![],
    });
    let outcomes = spool.record_delivered_batch(&items).await.unwrap();
    assert_eq!(outcomes[..2], [None, None], "{outcomes:?}");
    assert!(outcomes[2].is_some());
    for doc in [0, 1] {
        let codes: Vec<u16> = spool
            .statuses_of_invoice(f, doc)
            .await
            .unwrap()
            .iter()
            .map(|s| s.code.code())
            .collect();
        assert_eq!(codes, [200, 201, 203]);
    }
    let all = spool.deliveries_of_flow(f).await.unwrap();
    let relays = all
        .iter()
        .filter(|d| matches!(d.item, DeliveryItem::Status { .. }))
        .count();
    assert_eq!(relays, 4, "each status relayed to the supplier");
    // One relay group per code: its rows share the first invoice's name.
    let mut names: Vec<(i64, String)> = spool
        .status_relays_of_flow(f, SUPPLIER)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.doc_index, r.file_name))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            (0, "held.cdar.0-201.xml".to_owned()),
            (0, "held.cdar.0-203.xml".to_owned()),
            (1, "held.cdar.0-201.xml".to_owned()),
            (1, "held.cdar.0-203.xml".to_owned()),
        ]
    );
    assert!(invoice_rows(&spool, f)
        .await
        .iter()
        .all(|d| d.state.as_str() == "delivered"));

    // Recorded again (a batch sent again after a crash before a later
    // commit): the rows are no longer pending, nothing is doubled.
    let again = spool.record_delivered_batch(&items[..2]).await.unwrap();
    assert!(again.iter().all(Option::is_some), "{again:?}");
    assert_eq!(spool.statuses_of_invoice(f, 0).await.unwrap().len(), 3);
    assert_eq!(spool.deliveries_of_flow(f).await.unwrap().len(), all.len());
}

async fn a_refused_status_leaves_only_its_delivery_pending(db: Db) {
    let spool = db.spool("host:1").await;
    let f = claimed_flow(&spool, "refused").await;
    spool
        .hold_invoice_deliveries(f, &[0, 1, 2], &[owed(0), owed(1)])
        .await
        .unwrap();
    spool
        .finish_flow_routed(f, &FlowOutcome::Processed, 3, &[], &[])
        .await
        .unwrap();
    let mut rows = spool
        .claim_due_deliveries(Utc::now() + chrono::Duration::seconds(1), 100, LEASE)
        .await
        .unwrap();
    rows.sort_by_key(|r| match r.item {
        DeliveryItem::Invoice { doc_index, .. } => doc_index,
        _ => -1,
    });
    // Doc 1 claims 203 straight after 200: the table refuses it.
    let items = vec![
        DeliveredItem {
            delivery: rows[0].id,
            to: rows[0].to.clone(),
            receipt: None,
            statuses: sent_statuses(f, 0),
        },
        DeliveredItem {
            delivery: rows[1].id,
            to: rows[1].to.clone(),
            receipt: Some("remote".into()),
            statuses: sent_statuses(f, 1).split_off(1),
        },
    ];
    let outcomes = spool.record_delivered_batch(&items).await.unwrap();
    assert!(outcomes[0].is_none(), "{outcomes:?}");
    assert!(
        outcomes[1]
            .as_deref()
            .unwrap_or("")
            .contains("may not follow"),
        "{outcomes:?}"
    );
    let codes = |h: Vec<StatusRow>| h.iter().map(|s| s.code.code()).collect::<Vec<_>>();
    assert_eq!(
        codes(spool.statuses_of_invoice(f, 0).await.unwrap()),
        [200, 201, 203]
    );
    assert_eq!(codes(spool.statuses_of_invoice(f, 1).await.unwrap()), [200]);
    assert_eq!(
        spool.delivery(rows[0].id).await.unwrap().state.as_str(),
        "delivered"
    );
    assert_eq!(
        spool.delivery(rows[1].id).await.unwrap().state.as_str(),
        "pending"
    );
}

/// Invoices of one flow delivered in two batches: two relay groups per
/// code, each named after its own first invoice (the later batch's first
/// invoice has a lower index: still not the other group's name), each
/// status in exactly one.
async fn each_delivered_batch_of_a_flow_is_its_own_relay_group(db: Db) {
    let spool = db.spool("host:1").await;
    let f = claimed_flow(&spool, "groups").await;
    spool
        .hold_invoice_deliveries(f, &[0, 1, 2], &[owed(0), owed(1)])
        .await
        .unwrap();
    spool
        .finish_flow_routed(f, &FlowOutcome::Processed, 3, &[], &[])
        .await
        .unwrap();
    let rows = spool
        .claim_due_deliveries(Utc::now() + chrono::Duration::seconds(1), 100, LEASE)
        .await
        .unwrap();
    let item = |doc: i64| {
        let r = rows
            .iter()
            .find(|r| matches!(r.item, DeliveryItem::Invoice { doc_index, .. } if doc_index == doc))
            .unwrap();
        DeliveredItem {
            delivery: r.id,
            to: r.to.clone(),
            receipt: None,
            statuses: sent_statuses(f, doc),
        }
    };
    // Doc 1 first, doc 0 later.
    let first = spool.record_delivered_batch(&[item(1)]).await.unwrap();
    assert_eq!(first, [None]);
    let later = spool.record_delivered_batch(&[item(0)]).await.unwrap();
    assert_eq!(later, [None]);
    let mut names: Vec<(i64, String)> = spool
        .status_relays_of_flow(f, SUPPLIER)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.doc_index, r.file_name))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            (0, "held.cdar.0-201.xml".to_owned()),
            (0, "held.cdar.0-203.xml".to_owned()),
            (1, "held.cdar.1-201.xml".to_owned()),
            (1, "held.cdar.1-203.xml".to_owned()),
        ]
    );
}
