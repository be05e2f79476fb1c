//! Helpers of the scheduled-cycle tests: a `Daemon` on a temporary home
//! (no tasks started), and flows written straight into its spool with
//! chosen invoices, so digests and reconciliation see exactly what a test
//! says.
#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quai::config::{Config, Limits, Partner};
use quai::App;
use quai_spool::{
    AckKind, FlowOutcome, Lease, NewFlow, NewInvoice, Origin, Reason, Spool, Verdict,
};
use rust_decimal::Decimal;

pub fn config_at(home: &Path) -> Config {
    let mut c = Config::embedded_at(home);
    c.http_listen = None;
    c.workers = 1;
    c.lease_seconds = 5;
    c
}

pub fn partner(id: &str, contacts: &[&str]) -> Partner {
    Partner {
        id: id.to_string(),
        contacts: contacts.iter().map(|s| s.to_string()).collect(),
        inbox: None,
        create_inbox: false,
        outbox: None,
        sftp: None,
        as2: None,
        limits: Limits::default(),
        cdar_per_invoice: false,
        layers: Default::default(),
        addresses: Vec::new(),
        syntax: Default::default(),
        statuses: Default::default(),
        language: Default::default(),
    }
}

/// A daemon value (spool open, folders made) without its tasks.
pub async fn daemon(config: Config) -> Arc<App> {
    let app = App::open(config).await.expect("app");
    for p in &app.config().partners {
        app.spool.ensure_partner(&p.id).await.expect("partner");
    }
    app
}

pub fn reason(rule: &str, term: &str, message: &str) -> Reason {
    Reason {
        rule: rule.into(),
        term: term.into(),
        severity: "fatal".into(),
        message: message.into(),
    }
}

/// An invoice row: rejected when `reasons` is not empty.
pub fn invoice(
    index: i64,
    entry: &str,
    number: Option<&str>,
    date: Option<&str>,
    amount: Option<&str>,
    reasons: Vec<Reason>,
) -> NewInvoice {
    NewInvoice {
        doc_index: index,
        entry: entry.into(),
        syntax: Some("ubl".into()),
        profile: None,
        seller_id: Some(format!("FR{index}")),
        number: number.map(String::from),
        issue_date: date.map(|d| d.parse().expect("date")),
        type_code: Some("380".into()),
        currency: amount.map(|_| "EUR".to_string()),
        total_without_vat: None,
        total_with_vat: amount.map(|a| a.parse::<Decimal>().expect("amount")),
        amount_due: None,
        verdict: if reasons.is_empty() {
            Verdict::Accepted
        } else {
            Verdict::Rejected
        },
        reasons,
        canonical_json: None,
    }
}

static N: AtomicU64 = AtomicU64::new(0);

pub fn unique_sha() -> String {
    use sha2::Digest;
    let n = N.fetch_add(1, Ordering::SeqCst);
    let seed = format!(
        "{n}/{}/{:?}",
        std::process::id(),
        std::time::SystemTime::now()
    );
    hex::encode(sha2::Sha256::digest(seed.as_bytes()))
}

/// Register, claim, store and finish a flow; returns its id. The flow owes
/// one integration report (pending).
pub async fn seed_flow(spool: &Spool, partner: &str, name: &str, docs: Vec<NewInvoice>) -> i64 {
    seed_flow_with(spool, partner, name, Origin::Dropzone, docs, true).await
}

pub async fn seed_flow_with(
    spool: &Spool,
    partner: &str,
    name: &str,
    origin: Origin,
    docs: Vec<NewInvoice>,
    with_report: bool,
) -> i64 {
    spool.ensure_partner(partner).await.unwrap();
    let reg = spool
        .register_flow(&NewFlow {
            partner: partner.into(),
            origin,
            original_name: name.into(),
            size: 1000,
            sha256: unique_sha(),
            as2_message_id: None,
        })
        .await
        .unwrap();
    let id = match reg {
        quai_spool::Registration::New(id) => id,
        other => panic!("unexpected {other:?}"),
    };
    let claimed = spool
        .claim_flow(Lease {
            duration: Duration::from_secs(30),
        })
        .await
        .unwrap()
        .expect("claim");
    assert_eq!(claimed.id, id, "tests seed one flow at a time");
    if !docs.is_empty() {
        spool.store_invoices(id, &docs).await.unwrap();
    }
    let acks = if with_report {
        vec![(
            AckKind::IntegrationReport,
            "dropzone".to_string(),
            format!("{name}.{id}.report"),
        )]
    } else {
        Vec::new()
    };
    spool
        .finish_flow(id, &FlowOutcome::Processed, docs.len() as i64, &acks)
        .await
        .unwrap();
    id
}

/// Register a flow and leave it `received` (or claimed: `processing`).
pub async fn seed_unfinished(spool: &Spool, partner: &str, name: &str, claim: bool) -> i64 {
    spool.ensure_partner(partner).await.unwrap();
    let reg = spool
        .register_flow(&NewFlow {
            partner: partner.into(),
            origin: Origin::Sftp,
            original_name: name.into(),
            size: 10,
            sha256: unique_sha(),
            as2_message_id: None,
        })
        .await
        .unwrap();
    let quai_spool::Registration::New(id) = reg else {
        panic!("duplicate")
    };
    if claim {
        let c = spool
            .claim_flow(Lease {
                duration: Duration::from_secs(3600),
            })
            .await
            .unwrap()
            .expect("claim");
        assert_eq!(c.id, id);
    }
    id
}
