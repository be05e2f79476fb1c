//! Delivery state lives in the spool (issue 13): a failed delivery's
//! attempts, next attempt time and error (naming the destination) are
//! stored, so the backoff survives a restart; a name already taken by other
//! bytes in an outbox is never overwritten.

mod support;

use std::time::{Duration, Instant};

use quai_spool::{DeliveryRow, DeliveryState, Spool};
use support::common::*;
use support::http::{get, parse_metrics, sample};

async fn deliveries(spool: &Spool, flow: i64) -> Vec<DeliveryRow> {
    spool.deliveries_of_flow(flow).await.unwrap()
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_keeps_its_backoff_across_a_restart() {
    let mut d = TestDaemon::new();
    // The partner's outbox is a plain file: every delivery fails.
    let outbox = d.outbox("acme");
    std::fs::create_dir_all(outbox.parent().unwrap()).unwrap();
    let addr = d.start();
    d.inbox("acme");
    // Wait for the daemon's own folder preparation, then break the outbox.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = std::fs::remove_dir(&outbox);
    std::fs::write(&outbox, b"not a folder").unwrap();
    d.drop_file("acme", "inv.xml", &fixture("ubl-tc434-example2.xml"));
    let spool = d.spool().await;

    wait_until("a failed attempt", Duration::from_secs(30), || async {
        let rows = deliveries(&spool, 1).await;
        !rows.is_empty() && rows.iter().all(|r| r.attempts >= 1)
    })
    .await;
    // Visible on /metrics while owed.
    let text = get(addr, "/metrics", &[]).await.text();
    let m = parse_metrics(&text);
    let owed = sample(&m, "quai_undelivered", &[("partner", "acme")]).unwrap_or(0.0);
    assert!(owed >= 1.0, "{text}");
    assert!(
        sample(
            &m,
            "quai_undelivered_oldest_age_seconds",
            &[("partner", "acme")]
        )
        .is_some(),
        "{text}"
    );
    d.stop().await;
    let before = deliveries(&spool, 1).await;
    for r in &before {
        assert_eq!(r.state, DeliveryState::Pending, "{r:?}");
        let error = r.last_error.as_deref().unwrap_or_default();
        assert!(
            error.contains(&outbox.display().to_string()),
            "the error names the destination: {error}"
        );
        assert!(r.next_attempt_at > r.created_at, "{r:?}");
    }

    // Restarted within the backoff: nothing is tried at once (the old
    // in-memory backoff retried everything at every start).
    let restarted = Instant::now();
    d.start();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = deliveries(&spool, 1).await;
    for (a, b) in after.iter().zip(&before) {
        if b.next_attempt_at > chrono::Utc::now() + chrono::Duration::milliseconds(200) {
            assert_eq!(a.attempts, b.attempts, "tried again before its time: {a:?}");
        }
    }

    // The outbox is repaired: the next attempt (at its stored time) delivers.
    std::fs::remove_file(&outbox).unwrap();
    std::fs::create_dir(&outbox).unwrap();
    wait_until("delivery after repair", Duration::from_secs(40), || async {
        deliveries(&spool, 1)
            .await
            .iter()
            .all(|r| r.state == DeliveryState::Delivered)
    })
    .await;
    assert!(restarted.elapsed() >= Duration::from_secs(1));
    let delivered = deliveries(&spool, 1).await;
    for r in &delivered {
        assert!(r.delivered_at.is_some(), "{r:?}");
        assert!(r.attempts >= 2, "{r:?}");
    }
    let names: Vec<String> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with(".report.xml")),
        "{names:?}"
    );
    assert!(
        names.iter().all(|n| !n.starts_with('.')),
        "no temporary left: {names:?}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_name_in_the_outbox_is_never_overwritten() {
    let mut d = TestDaemon::new();
    let outbox = d.outbox("acme");
    std::fs::create_dir_all(&outbox).unwrap();
    // Flow 1's report name, already holding something else.
    let squatted = outbox.join("inv.xml.1.report.xml");
    std::fs::write(&squatted, b"someone else's file").unwrap();
    d.start();
    d.drop_file("acme", "inv.xml", &fixture("ubl-tc434-example2.xml"));
    let spool = d.spool().await;
    wait_until(
        "the report's failed attempt",
        Duration::from_secs(30),
        || async {
            deliveries(&spool, 1)
                .await
                .iter()
                .any(|r| r.file_name.ends_with(".report") && r.attempts >= 1)
        },
    )
    .await;
    let rows = deliveries(&spool, 1).await;
    let report = rows
        .iter()
        .find(|r| r.file_name.ends_with(".report"))
        .unwrap();
    assert_eq!(report.state, DeliveryState::Pending, "{report:?}");
    let error = report.last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains(&squatted.display().to_string()),
        "names the path: {error}"
    );
    assert_eq!(std::fs::read(&squatted).unwrap(), b"someone else's file");
    // The CDAR, whose name is free, went through.
    wait_until("the CDAR", Duration::from_secs(30), || async {
        deliveries(&spool, 1)
            .await
            .iter()
            .any(|r| r.file_name.ends_with(".cdar.xml") && r.state == DeliveryState::Delivered)
    })
    .await;
    d.stop().await;
}
