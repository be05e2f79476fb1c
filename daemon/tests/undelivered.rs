//! A partner whose outbox broke, at 3 a.m. (issue 18): the undelivered
//! acknowledgements show in `quai status`, `quai flows`, the status page,
//! `/metrics` and `quai reconcile`, every error names the destination, and
//! once the outbox is repaired one command sends exactly what was asked,
//! coordinated with the running daemon through the spool.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use quai_spool::{AckKind, DeliveryState};
use serde_json::Value;
use support::common::*;
use support::http::{get, parse_metrics, sample};

fn quai(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_quai"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run quai");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
async fn a_broken_outbox_is_visible_everywhere_and_fixed_with_one_command() {
    let home = tempfile::tempdir().unwrap();
    let config_path = home.path().join("quai.toml");
    std::fs::write(
        &config_path,
        "[http]\nlisten = \"off\"\n[dropzones]\nstable_seconds = 1\n[[partner]]\nid = \"acme\"\n",
    )
    .unwrap();
    let config = quai::config::Config::load(&config_path).unwrap();
    let mut d = TestDaemon {
        home,
        config,
        stop: Default::default(),
        task: None,
    };
    let addr = d.start();
    let outbox = d.outbox("acme");
    wait_until("the outbox folder", Duration::from_secs(10), || async {
        outbox.is_dir()
    })
    .await;
    // The outbox is replaced by a plain file.
    std::fs::remove_dir(&outbox).unwrap();
    std::fs::write(&outbox, b"oops").unwrap();
    d.drop_file("acme", "inv.xml", &fixture("ubl-tc434-example2.xml"));
    let spool = d.spool().await;
    wait_until("failed attempts", Duration::from_secs(30), || async {
        let rows = spool.deliveries_of_flow(1).await.unwrap();
        rows.len() >= 2 && rows.iter().all(|r| r.attempts >= 1)
    })
    .await;
    let shown = outbox.display().to_string();

    // quai status: count and oldest age per partner.
    let (code, out, _) = quai(&config_path, &["status"]);
    assert_eq!(code, 0, "{out}");
    let line = out
        .lines()
        .skip_while(|l| !l.starts_with("undelivered"))
        .find(|l| l.starts_with("acme"))
        .unwrap_or_else(|| panic!("no undelivered line for acme: {out}"));
    assert!(line.contains(" ago)"), "{line}");
    let (code, out, _) = quai(&config_path, &["status", "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["undelivered"][0]["partner"], "acme", "{v}");
    assert!(v["undelivered"][0]["count"].as_i64().unwrap() >= 2, "{v}");

    // quai flows: a delivery column.
    let (code, out, _) = quai(&config_path, &["flows"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("DELIVERY"), "{out}");
    assert!(out.contains("pending"), "{out}");
    let (_, out, _) = quai(&config_path, &["flows", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v[0]["deliveries"]["pending"].as_i64().unwrap() >= 2, "{v}");

    // The status page: a panel naming the destination and the error.
    let page = get(addr, "/", &[]).await.text();
    let panel = page
        .split("<section id=\"undelivered\">")
        .nth(1)
        .and_then(|s| s.split("</section>").next())
        .unwrap_or_else(|| panic!("no undelivered panel: {page}"));
    assert!(panel.contains("inv.xml.1.report"), "{panel}");
    assert!(
        panel.contains(&shown),
        "the error names the outbox: {panel}"
    );

    // /metrics: the gauge.
    let text = get(addr, "/metrics", &[]).await.text();
    let owed = sample(
        &parse_metrics(&text),
        "quai_undelivered",
        &[("partner", "acme")],
    );
    assert!(owed.unwrap_or(0.0) >= 2.0, "{text}");

    // quai reconcile: a finding, not a crash (exit 1: something is off).
    let (code, out, err) = quai(&config_path, &["reconcile", "--json"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("undelivered_ack"), "{out}");

    // Repaired: one command sends the report now, and only the report.
    std::fs::remove_file(&outbox).unwrap();
    std::fs::create_dir(&outbox).unwrap();
    let cdar_before = spool
        .acks_of_flow(1)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.kind == AckKind::Cdar)
        .unwrap();
    let (code, out, err) = quai(
        &config_path,
        &["resend-ack", "--flow", "1", "--kind", "report", "--json"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let listed = v["acknowledgements"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "only the report: {v}");
    assert_eq!(listed[0]["kind"], "integration_report", "{v}");
    assert_eq!(listed[0]["delivered"], true, "{v}");
    assert!(outbox.join("inv.xml.1.report.xml").is_file());
    assert!(outbox.join("inv.xml.1.report.json").is_file());
    let cdar = spool
        .acks_of_flow(1)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.kind == AckKind::Cdar)
        .unwrap();
    if cdar.next_attempt_at > chrono::Utc::now() {
        // Not asked for and not yet due: left to the daemon's backoff.
        assert_eq!(cdar.state, DeliveryState::Pending, "{cdar:?}");
        assert_eq!(cdar.attempts, cdar_before.attempts, "{cdar:?}");
    }
    // The daemon delivers the CDAR at its time; nothing is sent twice.
    wait_until("the CDAR", Duration::from_secs(40), || async {
        spool
            .acks_of_flow(1)
            .await
            .unwrap()
            .iter()
            .all(|a| a.state == DeliveryState::Delivered)
    })
    .await;
    let (code, out, _) = quai(&config_path, &["status", "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["undelivered"], serde_json::json!([]), "{v}");
    d.stop().await;
}

#[test]
fn resend_ack_needs_an_id_or_a_flow() {
    let home = tempfile::tempdir().unwrap();
    let config_path = home.path().join("quai.toml");
    std::fs::write(&config_path, "[http]\nlisten = \"off\"\n").unwrap();
    let (code, _, err) = quai(&config_path, &["resend-ack"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = quai(&config_path, &["resend-ack", "--kind", "cdar"]);
    assert_eq!(code, 2, "{err}");
}
