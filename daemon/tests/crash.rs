//! Crash safety with real processes: `quai run` is killed with SIGKILL at
//! random moments while it ingests many flows, restarted several times, and
//! in the end every invoice is stored exactly once with the right verdict
//! and every flow has exactly one report. Also: SIGTERM stops it cleanly.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use quai_spool::{FlowState, Verdict};
use support::common::*;

const FLOWS: usize = 16;
const INVOICES_PER_FLOW: usize = 150;

/// Tiny deterministic generator (no dependency) for kill timings.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

fn write_config(home: &Path) -> PathBuf {
    let path = home.join("quai.toml");
    std::fs::write(
        &path,
        "[http]\nlisten = \"off\"\n[dropzones]\nstable_seconds = 1\n[processing]\nworkers = 2\nlease_seconds = 3\nbatch_size = 50\n",
    )
    .unwrap();
    path
}

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

/// (file name, zip bytes) of each flow.
type Flows = Vec<(String, Vec<u8>)>;

/// Flows of UBL invoices with unique numbers; every 7th invoice has a wrong
/// amount due (BR-CO-16). Returns expected verdict per invoice number.
fn make_flows() -> (Flows, BTreeMap<String, Verdict>) {
    let ubl = fixture_str("ubl-tc434-example2.xml");
    let mut expected = BTreeMap::new();
    let mut flows = Vec::new();
    for f in 0..FLOWS {
        let mut entries = Vec::new();
        for i in 0..INVOICES_PER_FLOW {
            let number = format!("CRASH-{f:03}-{i:04}");
            let mut doc = ubl.replacen(
                "<cbc:ID>TOSL108</cbc:ID>",
                &format!("<cbc:ID>{number}</cbc:ID>"),
                1,
            );
            let verdict = if (f * INVOICES_PER_FLOW + i) % 7 == 3 {
                doc = doc.replace(
                    "<cbc:PayableAmount currencyID=\"NOK\">801.78</cbc:PayableAmount>",
                    "<cbc:PayableAmount currencyID=\"NOK\">1.78</cbc:PayableAmount>",
                );
                Verdict::Rejected
            } else {
                Verdict::Accepted
            };
            expected.insert(number, verdict);
            entries.push((format!("inv-{i:04}.xml"), doc.into_bytes()));
        }
        let refs: Vec<(&str, Vec<u8>)> = entries
            .iter()
            .map(|(n, b)| (n.as_str(), b.clone()))
            .collect();
        flows.push((format!("flow-{f:03}.zip"), zip_of(&refs)));
    }
    (flows, expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_and_duplicates_nothing() {
    let home = tempfile::tempdir().unwrap();
    let config_path = write_config(home.path());
    let config = quai::config::Config::load(&config_path).unwrap();
    let inbox = config.inbound_root.clone().unwrap().join("acme");
    std::fs::create_dir_all(&inbox).unwrap();
    let (flows, expected) = make_flows();
    for (name, bytes) in &flows {
        let part = inbox.join(format!("{name}.part"));
        std::fs::write(&part, bytes).unwrap();
        std::fs::rename(&part, inbox.join(name)).unwrap();
    }

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("crash test seed {seed}");
    let mut rng = Lcg(seed);
    let mut kills = 0;
    for _ in 0..6 {
        let mut child = start(&config_path);
        tokio::time::sleep(Duration::from_millis(rng.between(150, 1200))).await;
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        kills += 1;
    }

    // Last start: let it finish.
    let mut child = start(&config_path);
    let outbox = config.outbound_root.join("acme");
    let deadline = Instant::now() + Duration::from_secs(180);
    let spool = quai::open_spool(&config).await.unwrap();
    loop {
        let flows_now = spool.list_flows(&Default::default()).await.unwrap();
        let processed = flows_now
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
        if processed == FLOWS && reports >= FLOWS && inbox_empty {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not finished: {processed} processed flows, {reports} reports"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let a straggling duplicate registration (source taken again after a
    // kill between commit and delete) settle, then stop cleanly.
    tokio::time::sleep(Duration::from_millis(500)).await;
    unsafe_sigterm(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");

    // Every zip is one processed flow; anything else is a recorded duplicate.
    let all = spool.list_flows(&Default::default()).await.unwrap();
    let processed: Vec<_> = all
        .iter()
        .filter(|f| f.state == FlowState::Processed)
        .collect();
    assert_eq!(processed.len(), FLOWS);
    let names: HashSet<_> = processed.iter().map(|f| f.original_name.clone()).collect();
    assert_eq!(names.len(), FLOWS, "each zip processed once");
    for f in &all {
        assert!(
            matches!(f.state, FlowState::Processed | FlowState::Duplicate),
            "flow {} left in {:?}",
            f.id,
            f.state
        );
    }

    // Every invoice exactly once, with the right verdict.
    let mut seen = BTreeMap::new();
    for f in &processed {
        for inv in spool.invoices_of_flow(f.id).await.unwrap() {
            let number = inv.number.clone().expect("number");
            assert!(
                seen.insert(number.clone(), inv.verdict).is_none(),
                "invoice {number} stored twice"
            );
            if inv.verdict == Verdict::Rejected {
                let rules: Vec<_> = inv.reasons.iter().map(|r| r.rule.as_str()).collect();
                assert!(
                    rules.contains(&"BR-CO-16") && !rules.contains(&"REJ_UNI"),
                    "{number}: {rules:?}"
                );
            }
        }
    }
    assert_eq!(seen, expected, "stored verdicts equal expected ones");

    // Exactly one report per processed flow.
    let mut per_flow = BTreeMap::new();
    for e in std::fs::read_dir(&outbox).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".report.json") {
            let id: i64 = stem.rsplit('.').next().unwrap().parse().unwrap();
            *per_flow.entry(id).or_insert(0) += 1;
        }
        assert!(!name.starts_with('.'), "no temporary report left: {name}");
    }
    for f in &processed {
        assert_eq!(
            per_flow.get(&f.id),
            Some(&1),
            "flow {} has exactly one report",
            f.id
        );
        let r = report_json(&outbox.join(format!("{}.{}.report.json", f.original_name, f.id)));
        assert_eq!(r["counts"]["documents"], INVOICES_PER_FLOW as i64);
    }
    eprintln!(
        "survived {kills} SIGKILLs; {} flows, {} invoices",
        FLOWS,
        seen.len()
    );
}

fn unsafe_sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_after_finishing_work() {
    let home = tempfile::tempdir().unwrap();
    let config_path = write_config(home.path());
    // This one also serves the ops HTTP listener.
    let port = free_port();
    let text = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(
        &config_path,
        text.replace(
            "listen = \"off\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        ),
    )
    .unwrap();
    let config = quai::config::Config::load(&config_path).unwrap();
    let mut child = start(&config_path);
    let inbox = config.inbound_root.clone().unwrap().join("acme");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join("one.xml"), fixture("ubl-tc434-example2.xml")).unwrap();
    let outbox = config.outbound_root.join("acme");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !outbox.join("one.xml.1.report.json").exists() {
        assert!(Instant::now() < deadline, "no report");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let health = http_get(port, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let status = http_get(port, "/api/status");
    assert!(status.contains("\"accepted\":1"), "{status}");
    unsafe_sigterm(&child);
    let start = Instant::now();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(start.elapsed() < Duration::from_secs(10));
}
