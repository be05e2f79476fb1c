//! The lifecycle-status history (issue 15), on both backends: the table's
//! guarded insert, the parties' checks, the relay owed in the same
//! transaction, idempotent re-recording, matching an invoice.

mod support;

use support::Db;

use std::time::Duration;

use chrono::NaiveDate;
use quai_spool::*;
use rust_decimal::Decimal;

both!(
    history_follows_the_table,
    only_the_invoices_parties_may_speak,
    the_partner_filter_decides_the_relay,
    statuses_are_recorded_once,
    invoices_are_matched_by_seller_number_and_date,
);

const LEASE: Lease = Lease {
    duration: Duration::from_secs(60),
};
const SUPPLIER: &str = "acme";
const BUYER: &str = "buyer";
const SELLER: &str = "FR12732829320";

fn invoice(doc: i64, number: &str, verdict: Verdict) -> NewInvoice {
    NewInvoice {
        doc_index: doc,
        entry: format!("inv-{doc}.xml"),
        syntax: Some("ubl".into()),
        profile: None,
        seller_id: Some(SELLER.into()),
        number: Some(number.into()),
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

fn flow(partner: &str, sha: &str) -> NewFlow {
    NewFlow {
        partner: partner.into(),
        origin: Origin::Dropzone,
        original_name: format!("{sha}.xml"),
        size: 10,
        sha256: sha.into(),
        as2_message_id: None,
    }
}

/// A processed flow of the supplier: doc 0 accepted and routed to the
/// buyer, doc 1 rejected. Returns the flow id.
async fn supplier_flow(spool: &Spool, sha: &str, number: &str) -> FlowId {
    let Registration::New(f) = spool.register_flow(&flow(SUPPLIER, sha)).await.unwrap() else {
        panic!("new flow expected")
    };
    let c = spool.claim_flow(LEASE).await.unwrap().expect("claimable");
    assert_eq!(c.id, f);
    spool
        .store_invoices(
            f,
            &[
                invoice(0, number, Verdict::Accepted),
                invoice(1, &format!("{number}-R"), Verdict::Rejected),
            ],
        )
        .await
        .unwrap();
    spool
        .finish_flow(f, &FlowOutcome::Processed, 2, &[])
        .await
        .unwrap();
    spool
        .owe_invoice_deliveries(
            f,
            &[NewInvoiceDelivery {
                doc_index: 0,
                recipient: BUYER.into(),
                to: Destination::LocalOutbox {
                    partner: BUYER.into(),
                },
                file_name: format!("{number}.xml"),
            }],
        )
        .await
        .unwrap();
    f
}

/// A status flow a partner sent (registered only: it names where a status came in).
async fn status_flow(spool: &Spool, partner: &str, sha: &str) -> FlowId {
    match spool.register_flow(&flow(partner, sha)).await.unwrap() {
        Registration::New(f) => f,
        other => panic!("{other:?}"),
    }
}

fn relay(partner: &str, wants: StatusFilter) -> Option<StatusRelay> {
    Some(StatusRelay {
        partner: partner.into(),
        to: Destination::LocalOutbox {
            partner: partner.into(),
        },
        file_name: format!("cdar-{partner}.xml"),
        wants,
    })
}

fn from(
    issuer: Issuer,
    partner: &str,
    inbound: FlowId,
    f: FlowId,
    code: StatusCode,
    relay_to: &str,
) -> NewStatus {
    NewStatus {
        flow: f,
        doc_index: 0,
        code,
        reasons: vec![],
        amounts: vec![],
        issuer,
        from_partner: Some(partner.into()),
        inbound_flow: Some(inbound),
        at: None,
        relay: relay(relay_to, StatusFilter::all()),
    }
}

fn codes(h: &[StatusRow]) -> Vec<u16> {
    h.iter().map(|s| s.code.code()).collect()
}

fn refusal(e: SpoolError) -> StatusRefusal {
    match e {
        SpoolError::StatusRefused { why, .. } => why,
        other => panic!("expected a refusal, got {other}"),
    }
}

async fn status_deliveries(spool: &Spool, f: FlowId) -> Vec<DeliveryRow> {
    spool
        .deliveries_of_flow(f)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| matches!(d.item, DeliveryItem::Status { .. }))
        .collect()
}

async fn history_follows_the_table(db: Db) {
    let spool = db.spool("i1").await;
    let f = supplier_flow(&spool, "s1", "INV-1").await;
    assert_eq!(
        codes(&spool.statuses_of_invoice(f, 0).await.unwrap()),
        [200]
    );
    let rejected = spool.statuses_of_invoice(f, 1).await.unwrap();
    assert_eq!(codes(&rejected), [213]);
    assert_eq!(rejected[0].reasons[0].code, "BR-CO-15");
    assert!(spool.statuses_of_invoice(f, 9).await.unwrap().is_empty());

    // the platform's road, each relayed to the supplier
    for code in [StatusCode::Issued, StatusCode::MadeAvailable] {
        let r = spool
            .record_status(&NewStatus::platform(
                f,
                0,
                code,
                relay(SUPPLIER, StatusFilter::all()),
            ))
            .await
            .unwrap();
        assert!(r.new && r.relay.is_some());
    }
    // nothing follows a rejected invoice
    let e = spool
        .record_status(&NewStatus::platform(f, 1, StatusCode::Issued, None))
        .await
        .unwrap_err();
    assert_eq!(
        refusal(e),
        StatusRefusal::IllegalTransition {
            latest: Some(StatusCode::Rejected),
            next: StatusCode::Issued
        }
    );

    // the buyer refuses, with a reason
    let inbound = status_flow(&spool, BUYER, "b1").await;
    let mut refused = from(
        Issuer::Recipient,
        BUYER,
        inbound,
        f,
        StatusCode::Refused,
        SUPPLIER,
    );
    refused.reasons = vec![StatusReason {
        code: "TX_TVA_ERR".into(),
        text: Some("taux de TVA erroné".into()),
    }];
    let r = spool.record_status(&refused).await.unwrap();
    assert_eq!(r.seq, 3);
    let h = spool.statuses_of_invoice(f, 0).await.unwrap();
    assert_eq!(codes(&h), [200, 201, 203, 210]);
    assert_eq!(h[3].reasons, refused.reasons);
    assert_eq!(h[3].from_partner.as_deref(), Some(BUYER));
    assert_eq!(h[3].inbound_flow, Some(inbound));
    assert_eq!(h[3].issuer, Issuer::Recipient);
    assert_eq!(spool.status_row(r.id).await.unwrap(), h[3]);

    // 205 after 210: refused, nothing written
    let inbound2 = status_flow(&spool, BUYER, "b2").await;
    let e = spool
        .record_status(&from(
            Issuer::Recipient,
            BUYER,
            inbound2,
            f,
            StatusCode::Approved,
            SUPPLIER,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        refusal(e),
        StatusRefusal::IllegalTransition {
            latest: Some(StatusCode::Refused),
            next: StatusCode::Approved
        }
    );
    assert_eq!(spool.statuses_of_invoice(f, 0).await.unwrap().len(), 4);
    let owed = status_deliveries(&spool, f).await;
    assert_eq!(owed.len(), 3, "201, 203 and 210 relayed, not 205");
    assert!(owed.iter().all(|d| d.partner == SUPPLIER));
    assert!(owed.iter().all(|d| d.state == DeliveryState::Pending));
    match owed[2].item {
        DeliveryItem::Status {
            status,
            flow,
            doc_index,
        } => assert_eq!((status, flow, doc_index), (r.id, f, 0)),
        ref other => panic!("{other:?}"),
    }

    // unknown invoice
    let e = spool
        .record_status(&NewStatus::platform(f + 100, 0, StatusCode::Issued, None))
        .await
        .unwrap_err();
    assert_eq!(refusal(e), StatusRefusal::UnknownInvoice);
}

async fn only_the_invoices_parties_may_speak(db: Db) {
    let spool = db.spool("i1").await;
    let f = supplier_flow(&spool, "s1", "INV-1").await;
    spool
        .record_status(&NewStatus::platform(f, 0, StatusCode::Issued, None))
        .await
        .unwrap();
    assert_eq!(
        spool.recipient_of(f, 0).await.unwrap().as_deref(),
        Some(BUYER)
    );
    assert_eq!(spool.recipient_of(f, 1).await.unwrap(), None);

    // another partner may not speak for the buyer
    let intruder = status_flow(&spool, "intruder", "x1").await;
    let e = spool
        .record_status(&from(
            Issuer::Recipient,
            "intruder",
            intruder,
            f,
            StatusCode::Refused,
            SUPPLIER,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        refusal(e),
        StatusRefusal::NotYourInvoice {
            partner: Some("intruder".into())
        }
    );
    // the buyer may not say "cashed", nor the supplier "refused"
    let inbound = status_flow(&spool, BUYER, "b1").await;
    let e = spool
        .record_status(&from(
            Issuer::Recipient,
            BUYER,
            inbound,
            f,
            StatusCode::Cashed,
            SUPPLIER,
        ))
        .await
        .unwrap_err();
    assert!(matches!(refusal(e), StatusRefusal::WrongIssuer { .. }));
    let own = status_flow(&spool, SUPPLIER, "s-cdar").await;
    let e = spool
        .record_status(&from(
            Issuer::Supplier,
            SUPPLIER,
            own,
            f,
            StatusCode::Refused,
            BUYER,
        ))
        .await
        .unwrap_err();
    assert!(matches!(refusal(e), StatusRefusal::WrongIssuer { .. }));
    // a supplier's status from someone who is not the supplier
    let e = spool
        .record_status(&from(
            Issuer::Supplier,
            BUYER,
            inbound,
            f,
            StatusCode::Cashed,
            BUYER,
        ))
        .await
        .unwrap_err();
    assert!(matches!(refusal(e), StatusRefusal::NotYourInvoice { .. }));
    // the relay of the buyer's status goes to the supplier, nobody else
    let e = spool
        .record_status(&from(
            Issuer::Recipient,
            BUYER,
            inbound,
            f,
            StatusCode::InHand,
            "intruder",
        ))
        .await
        .unwrap_err();
    assert!(matches!(refusal(e), StatusRefusal::WrongRelay { .. }));
    assert_eq!(
        codes(&spool.statuses_of_invoice(f, 0).await.unwrap()),
        [200, 201]
    );

    // 212 from the supplier reaches the buyer
    let mut cashed = from(
        Issuer::Supplier,
        SUPPLIER,
        own,
        f,
        StatusCode::Cashed,
        BUYER,
    );
    cashed.amounts = vec![StatusAmount {
        kind: "MEN".into(),
        amount: Decimal::new(12000, 2),
        currency: Some("EUR".into()),
        vat_rate: Some(Decimal::new(2000, 2)),
    }];
    let r = spool.record_status(&cashed).await.unwrap();
    let owed = status_deliveries(&spool, f).await;
    assert_eq!(owed.len(), 1);
    assert_eq!(
        (owed[0].id, owed[0].partner.as_str()),
        (r.relay.unwrap(), BUYER)
    );
    let h = spool.statuses_of_invoice(f, 0).await.unwrap();
    assert_eq!(h[2].amounts, cashed.amounts);
    assert_eq!(h[2].issuer, Issuer::Supplier);
}

async fn the_partner_filter_decides_the_relay(db: Db) {
    let spool = db.spool("i1").await;
    let f = supplier_flow(&spool, "s1", "INV-1").await;
    let only = StatusFilter::only([StatusCode::Deposited, StatusCode::Refused]);
    let r = spool
        .record_status(&NewStatus::platform(
            f,
            0,
            StatusCode::Issued,
            relay(SUPPLIER, only.clone()),
        ))
        .await
        .unwrap();
    assert_eq!(r.relay, None, "201 is not wanted");
    let inbound = status_flow(&spool, BUYER, "b1").await;
    let mut s = from(
        Issuer::Recipient,
        BUYER,
        inbound,
        f,
        StatusCode::Refused,
        SUPPLIER,
    );
    s.relay = relay(SUPPLIER, only);
    let r = spool.record_status(&s).await.unwrap();
    assert!(r.relay.is_some(), "210 is");
    assert_eq!(status_deliveries(&spool, f).await.len(), 1);
}

async fn statuses_are_recorded_once(db: Db) {
    let spool = db.spool("i1").await;
    let f = supplier_flow(&spool, "s1", "INV-1").await;
    let issued = NewStatus::platform(
        f,
        0,
        StatusCode::Issued,
        relay(SUPPLIER, StatusFilter::all()),
    );
    let first = spool.record_status(&issued).await.unwrap();
    let again = spool.record_status(&issued).await.unwrap();
    assert!(first.new && !again.new);
    assert_eq!(
        (again.id, again.seq, again.relay),
        (first.id, first.seq, first.relay)
    );
    let inbound = status_flow(&spool, BUYER, "b1").await;
    let refused = from(
        Issuer::Recipient,
        BUYER,
        inbound,
        f,
        StatusCode::Refused,
        SUPPLIER,
    );
    let a = spool.record_status(&refused).await.unwrap();
    let b = spool.record_status(&refused).await.unwrap();
    assert_eq!((a.id, b.new), (b.id, false));
    assert_eq!(
        codes(&spool.statuses_of_invoice(f, 0).await.unwrap()),
        [200, 201, 210]
    );
    assert_eq!(status_deliveries(&spool, f).await.len(), 2);
}

async fn invoices_are_matched_by_seller_number_and_date(db: Db) {
    let spool = db.spool("i1").await;
    let f = supplier_flow(&spool, "s1", "INV-1").await;
    let g = supplier_flow(&spool, "s2", "INV-2").await;
    let d = NaiveDate::from_ymd_opt(2026, 9, 30).unwrap();
    assert_eq!(
        spool.find_invoice(SELLER, "INV-1", d).await.unwrap(),
        Some((f, 0))
    );
    assert_eq!(
        spool.find_invoice(SELLER, "INV-2", d).await.unwrap(),
        Some((g, 0))
    );
    // the SIREN the CDAR carries names the same seller
    assert_eq!(
        spool.find_invoice("732829320", "INV-1", d).await.unwrap(),
        Some((f, 0))
    );
    assert_eq!(
        spool
            .find_invoice(SELLER, "INV-1", d.succ_opt().unwrap())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        spool
            .find_invoice("FR99111111111", "INV-1", d)
            .await
            .unwrap(),
        None
    );
    assert_eq!(spool.find_invoice(SELLER, "INV-9", d).await.unwrap(), None);
    // a rejected invoice is no match
    assert_eq!(
        spool.find_invoice(SELLER, "INV-1-R", d).await.unwrap(),
        None
    );
}
