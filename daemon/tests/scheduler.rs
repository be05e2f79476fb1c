//! The scheduler inside a running daemon: a fast cron (every second) runs
//! and records the job; a run missed during downtime happens once at start;
//! a job whose lock is held elsewhere does not run.

mod support;
use support::seed;

use std::time::{Duration, Instant};

use chrono::Utc;
use seed::{invoice, reason, seed_flow};
use tokio_util::sync::CancellationToken;

fn emls(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
        .unwrap_or(0)
}

async fn seeded(home: &std::path::Path, cron: &str) -> quai::config::Config {
    let mut c = seed::config_at(home);
    c.reject_digest = Some(cron.into());
    c.partners = vec![seed::partner("acme", &["edi@acme.example"])];
    let d = seed::daemon(c.clone()).await;
    seed_flow(
        &d.spool,
        "acme",
        "a.xml",
        vec![invoice(
            0,
            "a.xml",
            Some("A"),
            None,
            None,
            vec![reason("BR-01", "BT-24", "m")],
        )],
    )
    .await;
    c
}

async fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn fast_cron_runs_and_records_each_slot() {
    let home = tempfile::tempdir().unwrap();
    let c = seeded(home.path(), "*/1 * * * * *").await;
    let stop = CancellationToken::new();
    let task = tokio::spawn(quai::run(c.clone(), Some(loopback().await), stop.clone()));
    let mail = home.path().join("mail");
    wait_until("the digest", Duration::from_secs(15), || emls(&mail) == 1).await;
    let spool = quai::open_spool(&c).await.unwrap();
    let first = spool.last_job_run("reject_digest").await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = spool.last_job_run("reject_digest").await.unwrap().unwrap();
    assert!(
        later.scheduled_for > first.scheduled_for,
        "{first:?} {later:?}"
    );
    assert_eq!(later.outcome.as_deref(), Some("ok"), "{later:?}");
    assert_eq!(
        later.scheduled_for.timestamp_subsec_nanos(),
        0,
        "slots are whole seconds"
    );
    assert_eq!(emls(&mail), 1, "nothing new to notify: no second mail");
    stop.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_missed_run_happens_once_at_start() {
    let home = tempfile::tempdir().unwrap();
    // Hourly at minute 0: the next slot is far away, so any run right after
    // start is the catch-up.
    let c = seeded(home.path(), "0 0 * * * *").await;
    let spool = quai::open_spool(&c).await.unwrap();
    let s: cron::Schedule = "0 0 * * * *".parse().unwrap();
    let now = Utc::now();
    let due = quai::scheduler::previous_slot(&s, c.timezone, now).unwrap();
    let long_ago = due - chrono::Duration::hours(5);
    spool
        .record_job_run("reject_digest", long_ago, long_ago, "ok", None)
        .await
        .unwrap();

    let stop = CancellationToken::new();
    let task = tokio::spawn(quai::run(c.clone(), Some(loopback().await), stop.clone()));
    let mail = home.path().join("mail");
    wait_until("the catch-up digest", Duration::from_secs(15), || {
        emls(&mail) == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let last = spool.last_job_run("reject_digest").await.unwrap().unwrap();
    assert_eq!(last.scheduled_for, due, "one run, for the latest slot due");
    assert_eq!(emls(&mail), 1);
    stop.cancel();
    task.await.unwrap().unwrap();

    // A second start finds the slot done: no run.
    let stop = CancellationToken::new();
    let task = tokio::spawn(quai::run(c.clone(), Some(loopback().await), stop.clone()));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = spool.last_job_run("reject_digest").await.unwrap().unwrap();
    assert_eq!(again.id, last.id, "no second catch-up");
    stop.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_job_locked_elsewhere_does_not_run() {
    let home = tempfile::tempdir().unwrap();
    let c = seeded(home.path(), "*/1 * * * * *").await;
    let spool = quai::open_spool(&c).await.unwrap();
    let lock = spool
        .try_lock_job("reject_digest")
        .await
        .unwrap()
        .expect("lock");
    let stop = CancellationToken::new();
    let task = tokio::spawn(quai::run(c.clone(), Some(loopback().await), stop.clone()));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        spool.last_job_run("reject_digest").await.unwrap().is_none(),
        "ran while locked"
    );
    assert_eq!(emls(&home.path().join("mail")), 0);
    lock.release().await.unwrap();
    wait_until("a run after release", Duration::from_secs(15), || {
        emls(&home.path().join("mail")) == 1
    })
    .await;
    stop.cancel();
    task.await.unwrap().unwrap();
}

/// The daemon's ops HTTP listener, bound by the test on a free port.
async fn loopback() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()
}
