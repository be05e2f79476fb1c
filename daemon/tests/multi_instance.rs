//! Several `quai run` processes on one PostgreSQL, watching the same drop
//! zone, share the work: every flow is taken and processed by exactly one of
//! them, and when one is killed mid-flow its work is finished by another
//! (its lease expires; files it had claimed are given back).

mod support;

use quai_test_support::pg;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use quai_spool::FlowState;
use support::common::*;

const FLOWS: usize = 12;
const INVOICES: usize = 120;

fn start(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_quai"))
        .args(["run", "--config"])
        .arg(config)
        .env("QUAI_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start quai")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_one_postgres_and_survive_a_kill() {
    let cluster = pg::PgCluster::shared();
    let url = cluster.create_database("multi");
    let home = tempfile::tempdir().unwrap();
    let config_path = home.path().join("quai.toml");
    std::fs::write(
        &config_path,
        format!(
            "[spool]\nurl = \"{url}\"\n[http]\nlisten = \"off\"\n[dropzones]\nstable_seconds = 1\n\
             [processing]\nworkers = 2\nlease_seconds = 3\nbatch_size = 40\n"
        ),
    )
    .unwrap();
    let config = quai::config::Config::load(&config_path).unwrap();

    let mut instances: Vec<Child> = (0..3).map(|_| start(&config_path)).collect();
    let inbox = config.inbound_root.clone().unwrap().join("acme");
    std::fs::create_dir_all(&inbox).unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;

    let ubl = fixture_str("ubl-tc434-example2.xml");
    for f in 0..FLOWS {
        let docs: Vec<(String, Vec<u8>)> = (0..INVOICES)
            .map(|i| {
                let n = format!("MULTI-{f:02}-{i:04}");
                (
                    format!("{n}.xml"),
                    ubl.replacen(
                        "<cbc:ID>TOSL108</cbc:ID>",
                        &format!("<cbc:ID>{n}</cbc:ID>"),
                        1,
                    )
                    .into_bytes(),
                )
            })
            .collect();
        let refs: Vec<(&str, Vec<u8>)> =
            docs.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
        let part = inbox.join(format!("flow-{f:02}.zip.part"));
        std::fs::write(&part, zip_of(&refs)).unwrap();
        std::fs::rename(&part, inbox.join(format!("flow-{f:02}.zip"))).unwrap();
    }

    // Kill one instance while the work is under way.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let victim = instances.remove(0);
    let victim_pid = victim.id();
    let mut victim = victim;
    victim.kill().unwrap();
    victim.wait().unwrap();

    let spool = quai::open_spool(&config).await.unwrap();
    let outbox = config.outbound_root.join("acme");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let flows = spool.list_flows(&Default::default()).await.unwrap();
        let processed = flows
            .iter()
            .filter(|f| f.state == FlowState::Processed)
            .count();
        let reports = std::fs::read_dir(&outbox)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".report.json"))
                    .count()
            })
            .unwrap_or(0);
        let inbox_empty = std::fs::read_dir(&inbox).unwrap().next().is_none();
        if processed == FLOWS && reports == FLOWS && inbox_empty {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "unfinished: {processed} processed, {reports} reports, inbox empty: {inbox_empty}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for mut child in instances {
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(child.wait().unwrap().success());
    }

    // Exactly one flow per file (no duplicate registration: instances never
    // took the same file), every invoice exactly once.
    let flows = spool.list_flows(&Default::default()).await.unwrap();
    assert_eq!(
        flows.len(),
        FLOWS,
        "{:?}",
        flows
            .iter()
            .map(|f| (&f.original_name, f.state))
            .collect::<Vec<_>>()
    );
    let mut numbers = BTreeSet::new();
    let mut processed_by: BTreeMap<String, usize> = BTreeMap::new();
    for f in &flows {
        assert_eq!(f.state, FlowState::Processed);
        assert_eq!(
            f.invoices_accepted, INVOICES as i64,
            "flow {}",
            f.original_name
        );
        for inv in spool.invoices_of_flow(f.id).await.unwrap() {
            assert!(numbers.insert(inv.number.unwrap()), "invoice stored twice");
        }
        let events = spool.flow_events(f.id).await.unwrap();
        let finisher = events
            .iter()
            .rev()
            .find(|e| e.entity == "flow" && e.to_state == "processed")
            .map(|e| e.instance.clone())
            .expect("processed event");
        *processed_by.entry(finisher).or_default() += 1;
    }
    assert_eq!(numbers.len(), FLOWS * INVOICES);
    eprintln!("flows finished per instance: {processed_by:?} (killed pid {victim_pid})");
    assert!(
        processed_by.len() >= 2,
        "the work was shared: {processed_by:?}"
    );
    let status = serde_json::to_value(spool.status().await.unwrap()).unwrap();
    assert_eq!(
        status["totals"]["invoices"]["accepted"],
        (FLOWS * INVOICES) as i64
    );
    assert_eq!(status["totals"]["invoices"]["rejected"], 0);
}
