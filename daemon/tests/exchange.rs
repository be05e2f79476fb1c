//! The exchange with real processes (issue 15): a supplier drops one zip
//! whose invoices are addressed to three recipients — one on a local
//! outbox wanting UBL, one on a real OpenSSH server wanting CII, one over
//! AS2 to pyas2lib wanting the supplier's original bytes — plus one
//! address no partner receives. `quai run` (the binary) routes, converts
//! and delivers: each recipient gets exactly its invoices, in its syntax,
//! accepted by the official EN 16931 artefacts; the unknown address is a
//! 213 REJ_ADR in the supplier's report and CDAR; the supplier is owed
//! 200/201/203 (and 202 where the recipient's side acknowledged); `quai
//! invoice` shows the route, the delivery and the status history. A second test kills `quai run` with SIGKILL
//! several times during delivery: nothing is lost, nothing arrives twice,
//! no invoice ever has two different files.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use quai_test_support::as2peer::{KeyPair, ReceiverPeer};
use quai_test_support::oracle::{self, Layer};
use quai_test_support::sshd::Sshd;
use serde_json::{json, Value};
use support::common::*;

const LOC: &str = "0009:11111111100011";
const SFTP: &str = "0009:22222222200022";
const AS2: &str = "0009:33333333300033";
const NOBODY: &str = "0009:99999999900099";

/// The official UBL example with its number and the buyer's electronic
/// address (BT-49) set.
fn invoice(number: &str, address: &str) -> Vec<u8> {
    let (scheme, id) = address.split_once(':').unwrap();
    fixture_str("ubl-tc434-example2.xml")
        .replacen(
            "<cbc:ID>TOSL108</cbc:ID>",
            &format!("<cbc:ID>{number}</cbc:ID>"),
            1,
        )
        .replacen(
            "<cac:AccountingCustomerParty>\n        <cac:Party>",
            &format!(
                "<cac:AccountingCustomerParty>\n        <cac:Party>\n            \
                 <cbc:EndpointID schemeID=\"{scheme}\">{id}</cbc:EndpointID>"
            ),
            1,
        )
        .into_bytes()
}

/// A running `quai run`, killed if the test fails before it stops it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(config: &Path) -> Running {
    Running(
        Command::new(env!("CARGO_BIN_EXE_quai"))
            .args(["run", "--config"])
            .arg(config)
            .env("QUAI_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start quai"),
    )
}

fn quai_cli(config: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_quai"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run quai");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn sigterm(child: &Child) {
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

/// Files of a folder (name → bytes), temporaries left out.
fn files_in(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    rd.filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(n, _)| !n.starts_with('.'))
        .map(|(n, p)| (n, std::fs::read(p).unwrap()))
        .collect()
}

/// The three recipients, their servers and quai's configuration.
struct World {
    home: tempfile::TempDir,
    config_path: PathBuf,
    config: quai::config::Config,
    _sshd: Sshd,
    sftp_outbox: PathBuf,
    peer: ReceiverPeer,
}

impl World {
    fn new() -> World {
        let home = tempfile::tempdir().unwrap();
        let keys = home.path().join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        let quai_keys = KeyPair::generate(&keys, "quai");
        let as_keys = KeyPair::generate(&keys, "asrec");
        let peer = ReceiverPeer::start(
            home.path(),
            &json!({
                "port": free_port(),
                "org_as2": "ASREC",
                "org_key": as_keys.key_path,
                "org_cert": as_keys.cert_path,
                "partner_as2": "QUAI",
                "partner_cert": quai_keys.cert_path,
                "require_signed": true,
                "require_encrypted": true,
            }),
        );
        let sshd = Sshd::start();
        let sftp_inbox = sshd.data.join("outgoing");
        let sftp_outbox = sshd.data.join("incoming");
        std::fs::create_dir_all(&sftp_inbox).unwrap();
        std::fs::create_dir_all(&sftp_outbox).unwrap();
        let text = format!(
            "[http]\nlisten = \"off\"\n[dropzones]\nstable_seconds = 1\n\
             [processing]\nworkers = 2\nlease_seconds = 3\nbatch_size = 50\n\
             [as2]\nas2_id = \"QUAI\"\ncertificate = \"keys/quai.crt\"\nkey = \"keys/quai.key\"\n\
             [[partner]]\nid = \"sup\"\n\
             [[partner]]\nid = \"loc\"\naddresses = [\"{LOC}\"]\nsyntax = \"ubl\"\n\
             [[partner]]\nid = \"sf\"\naddresses = [\"{SFTP}\"]\nsyntax = \"cii\"\n\
             [partner.sftp]\nurl = \"{url}\"\nkey = \"{key}\"\nknown_hosts = \"{kh}\"\n\
             outbox = \"{outbox}\"\npoll = \"0 0 0 1 1 *\"\n\
             [[partner]]\nid = \"as\"\naddresses = [\"{AS2}\"]\nsyntax = \"original\"\n\
             [partner.as2]\nas2_id = \"ASREC\"\ncertificate = \"keys/asrec.crt\"\n\
             url = \"{as2url}\"\ntimeout_seconds = 10\n",
            url = sshd.url(&sftp_inbox),
            key = sshd.client_key.display(),
            kh = sshd.known_hosts.display(),
            outbox = sftp_outbox.display(),
            as2url = peer.url,
        );
        let config_path = home.path().join("quai.toml");
        std::fs::write(&config_path, text).unwrap();
        let config = quai::config::Config::load(&config_path).unwrap();
        World {
            home,
            config_path,
            config,
            _sshd: sshd,
            sftp_outbox,
            peer,
        }
    }

    fn drop_flow(&self, name: &str, bytes: &[u8]) {
        let inbox = self.config.inbound_root.clone().unwrap().join("sup");
        std::fs::create_dir_all(&inbox).unwrap();
        let part = inbox.join(format!("{name}.part"));
        std::fs::write(&part, bytes).unwrap();
        std::fs::rename(&part, inbox.join(name)).unwrap();
    }

    fn local(&self) -> BTreeMap<String, Vec<u8>> {
        files_in(&self.config.outbound_root.join("loc"))
            .into_iter()
            .filter(|(n, _)| n.ends_with(".ubl.xml"))
            .collect()
    }

    fn sftp(&self) -> BTreeMap<String, Vec<u8>> {
        files_in(&self.sftp_outbox)
    }

    /// (file name, payload) of every message pyas2lib processed.
    fn as2(&self) -> Vec<(String, Vec<u8>)> {
        self.peer
            .records()
            .into_iter()
            .filter(|r| r.get("unavailable").is_none() && r["status"] == "processed")
            .map(|r| {
                (
                    r["filename"].as_str().unwrap_or_default().to_owned(),
                    ReceiverPeer::payload(&r),
                )
            })
            .collect()
    }
}

/// Wait until `check` says yes (polling), or fail saying `what`.
fn wait_until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Judge files with the official EN 16931 artefacts and the syntax's XSD.
fn assert_official(files: &[(String, Vec<u8>)], dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|(n, b)| {
            let p = dir.join(n);
            std::fs::write(&p, b).unwrap();
            p
        })
        .collect();
    for j in oracle::judge(&paths, &[Layer::En16931, Layer::Xsd]) {
        assert!(
            j.accepted(),
            "{} refused by the official artefacts: {:?} {:?}",
            j.file.display(),
            j.fatal,
            j.xsd
        );
    }
}

#[test]
fn one_zip_to_three_recipients_in_their_syntaxes() {
    let w = World::new();
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let mut want: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (i, (address, who)) in [
        (LOC, "loc"),
        (SFTP, "sf"),
        (AS2, "as"),
        (LOC, "loc"),
        (NOBODY, "nobody"),
        (SFTP, "sf"),
        (AS2, "as"),
    ]
    .into_iter()
    .enumerate()
    {
        let number = format!("EX-{i:02}");
        entries.push((format!("inv-{i:02}.xml"), invoice(&number, address)));
        want.entry(who).or_default().push(number);
    }
    let refs: Vec<(&str, Vec<u8>)> = entries
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    w.drop_flow("mixed.zip", &zip_of(&refs));
    let mut child = start(&w.config_path);

    let done = |w: &World| w.local().len() == 2 && w.sftp().len() == 2 && w.as2().len() == 2;
    wait_until("every invoice delivered", Duration::from_secs(90), || {
        done(&w).then_some(())
    });
    // The supplier is told 201 and 203 of each, 202 where the recipient's
    // side confirmed (SFTP, AS2): 2 + 3 + 3 statuses for each pair.
    wait_until("every status relayed", Duration::from_secs(60), || {
        (relayed(&w).len() == 16).then_some(())
    });
    // Nothing more arrives.
    std::thread::sleep(Duration::from_secs(2));
    sigterm(&child.0);
    assert!(child.0.wait().unwrap().success());

    // Each recipient got exactly its invoices, in its syntax, named
    // `<seller>_<number>_<flow>-<index>.<ext>`.
    let local = w.local();
    let sftp = w.sftp();
    let as2 = w.as2();
    let numbers = |names: Vec<&String>| -> BTreeSet<String> {
        names
            .into_iter()
            .map(|n| n.split('_').nth(1).unwrap().to_owned())
            .collect()
    };
    let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
    assert_eq!(numbers(local.keys().collect()), set(&want["loc"]));
    assert_eq!(numbers(sftp.keys().collect()), set(&want["sf"]));
    assert_eq!(
        numbers(as2.iter().map(|(n, _)| n).collect()),
        set(&want["as"])
    );
    for (n, b) in &local {
        assert!(n.ends_with(".ubl.xml"), "{n}");
        assert!(String::from_utf8_lossy(b).contains("<Invoice"), "{n}");
    }
    for (n, b) in &sftp {
        assert!(n.ends_with(".cii.xml"), "{n}");
        assert!(
            String::from_utf8_lossy(b).contains("CrossIndustryInvoice"),
            "{n}"
        );
    }
    // The AS2 recipient wants the original: the supplier's bytes.
    for (n, b) in &as2 {
        assert!(n.ends_with(".xml") && !n.ends_with(".ubl.xml"), "{n}");
        let number = n.split('_').nth(1).unwrap();
        let i: usize = number.trim_start_matches("EX-").parse().unwrap();
        assert_eq!(b, &entries[i].1, "{n} is the supplier's document");
    }
    // Valid by the official artefacts.
    let all: Vec<(String, Vec<u8>)> = local.into_iter().chain(sftp).chain(as2).collect();
    assert_official(&all, &w.home.path().join("judged"));

    // The supplier: the unknown address is a 213 REJ_ADR in its report
    // and CDAR; the others are accepted.
    let sup = files_in(&w.config.outbound_root.join("sup"));
    let report = sup
        .iter()
        .find(|(n, _)| n.ends_with(".report.json"))
        .map(|(_, b)| serde_json::from_slice::<Value>(b).unwrap())
        .expect("the supplier's report");
    let text = report.to_string();
    assert!(text.contains("REJ_ADR"), "{report}");
    // Its status relays: each status once, one file per recipient's batch
    // and code naming both its invoices, valid by the official schemas.
    let seen = relayed(&w);
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    let files = relays(&w);
    assert!(
        files
            .values()
            .any(|t| t.contains("<udt:Indicator>true</udt:Indicator>")
                && t.matches("<ram:ReferenceReferencedDocument>").count() == 2),
        "no relay names several invoices: {:?}",
        files.keys()
    );
    assert_cdar_valid(&files, &w.home.path().join("relays"));
    let cdar = sup
        .iter()
        .find(|(n, _)| n.ends_with(".cdar.xml"))
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .expect("the supplier's CDAR");
    assert!(
        cdar.contains("<ram:ReasonCode>REJ_ADR</ram:ReasonCode>"),
        "{cdar}"
    );

    // `quai invoice` shows the route, the delivery and the statuses: by
    // number and seller (the seller's VAT id as stored)...
    let (code, out) = quai_cli(
        &w.config_path,
        &["invoice", "EX-02", "--seller", "no123456789mva", "--json"],
    );
    assert_eq!(code, 0, "{out}");
    let shown: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(shown["invoice"]["recipient"], "as", "{shown}");
    assert_eq!(shown["deliveries"][0]["to"]["kind"], "as2", "{shown}");
    assert_eq!(codes(&shown), ["200", "201", "202", "203"], "{shown}");
    // ... the unknown address: 213 only, no delivery.
    let (code, out) = quai_cli(
        &w.config_path,
        &["invoices", "--partner", "sup", "--status", "213", "--json"],
    );
    assert_eq!(code, 0, "{out}");
    let rejected: Value = serde_json::from_str(&out).unwrap();
    let rejected = rejected["invoices"].as_array().unwrap().clone();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0]["number"], "EX-04");
    assert!(rejected[0]["recipient"].is_null());
    let (code, out) = quai_cli(
        &w.config_path,
        &["invoice", "EX-04", "--seller", "NO123456789MVA", "--json"],
    );
    assert_eq!(code, 0, "{out}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(codes(&shown), ["213"], "{shown}");
    assert!(shown["deliveries"].as_array().unwrap().is_empty());
    // Every delivered invoice told its supplier 201 and 203.
    let (code, out) = quai_cli(
        &w.config_path,
        &["invoices", "--partner", "sup", "--status", "203", "--json"],
    );
    assert_eq!(code, 0, "{out}");
    let made_available: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(made_available["invoices"].as_array().unwrap().len(), 6);
    let (code, out) = quai_cli(&w.config_path, &["invoices", "--partner", "sf", "--json"]);
    assert_eq!(code, 0, "{out}");
    let listed: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let listed = listed["invoices"].as_array().expect("invoices").clone();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let flow = listed[0]["flow_id"].as_i64().unwrap();
    let doc = listed[0]["doc_index"].as_i64().unwrap();
    let (code, out) = quai_cli(
        &w.config_path,
        &["invoice", &format!("{flow}/{doc}"), "--json"],
    );
    assert_eq!(code, 0, "{out}");
    let shown: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(shown["invoice"]["recipient"], "sf", "{shown}");
    assert_eq!(shown["deliveries"][0]["state"], "delivered", "{shown}");
    assert_eq!(
        shown["deliveries"][0]["to"]["kind"], "sftp_outbox",
        "{shown}"
    );
    assert_eq!(codes(&shown), ["200", "201", "202", "203"], "{shown}");
    let (code, out) = quai_cli(&w.config_path, &["invoice", &format!("{flow}/{doc}")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("sf"), "{out}");
    assert!(out.contains("203 Mise à disposition"), "{out}");
    // The local outbox recipient: 201 and 203 (no acknowledgement of its own).
    let (_, out) = quai_cli(&w.config_path, &["invoices", "--partner", "loc", "--json"]);
    let listed: Value = serde_json::from_str(&out).unwrap();
    let first = &listed["invoices"][0];
    let (_, out) = quai_cli(
        &w.config_path,
        &[
            "invoice",
            &format!("{}/{}", first["flow_id"], first["doc_index"]),
            "--json",
        ],
    );
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(codes(&shown), ["200", "201", "203"], "{shown}");
    drop(child);
}

/// The supplier's status relays (`<flow stem>.cdar.<doc>-<code>.xml`, one
/// file per relay group): name → text.
fn relays(w: &World) -> BTreeMap<String, String> {
    files_in(&w.config.outbound_root.join("sup"))
        .into_iter()
        .filter(|(n, _)| n.contains(".cdar.") && !n.ends_with(".cdar.xml"))
        .map(|(n, b)| (n, String::from_utf8(b).unwrap()))
        .collect()
}

/// How many times each (invoice number, status code) is relayed in the
/// supplier's relay files.
fn relayed(w: &World) -> BTreeMap<(String, String), usize> {
    let mut seen = BTreeMap::new();
    for (name, text) in relays(w) {
        assert!(
            text.trim_end()
                .ends_with("</rsm:CrossDomainAcknowledgementAndResponse>"),
            "{name} is whole"
        );
        for doc in text.split("<ram:ReferenceReferencedDocument>").skip(1) {
            let field = |tag: &str| {
                doc.split(&format!("<ram:{tag}>"))
                    .nth(1)
                    .and_then(|x| x.split('<').next())
                    .unwrap_or_else(|| panic!("{name}: no {tag}"))
                    .to_owned()
            };
            *seen
                .entry((field("IssuerAssignedID"), field("ProcessConditionCode")))
                .or_insert(0) += 1;
        }
    }
    seen
}

/// The official D22B XSD and BR-FR-CDV schematron accept every file
/// (`tests/cdar/check_cdar.py` in the test venv).
fn assert_cdar_valid(files: &BTreeMap<String, String>, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|(n, t)| {
            let p = dir.join(n);
            std::fs::write(&p, t).unwrap();
            p
        })
        .collect();
    let python = quai_test_support::venv::python_with(&["lxml", "saxonche"]);
    let out = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cdar/check_cdar.py"))
        .args(&paths)
        .output()
        .expect("run check_cdar.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        paths.len(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for l in &lines {
        assert_eq!(l["ok"], true, "{l:#}");
    }
}

/// The status codes of `quai invoice --json`, in order.
fn codes(shown: &Value) -> Vec<String> {
    shown["statuses"]
        .as_array()
        .unwrap_or_else(|| panic!("statuses: {shown}"))
        .iter()
        .map(|s| s["code"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Tiny deterministic generator (no dependency) for kill timings.
struct Lcg(u64);
impl Lcg {
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        lo + (self.0 >> 33) % (hi - lo)
    }
}

#[test]
fn sigkill_during_delivery_loses_nothing_and_doubles_nothing() {
    const FLOWS: usize = 6;
    const PER_FLOW: usize = 40;
    let w = World::new();
    let mut want: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for f in 0..FLOWS {
        let mut entries = Vec::new();
        for i in 0..PER_FLOW {
            let number = format!("K-{f:02}-{i:03}");
            let (address, who) = if i % 2 == 0 {
                (LOC, "loc")
            } else {
                (SFTP, "sf")
            };
            entries.push((format!("inv-{i:03}.xml"), invoice(&number, address)));
            want.entry(who).or_default().insert(number);
        }
        let refs: Vec<(&str, Vec<u8>)> = entries
            .iter()
            .map(|(n, b)| (n.as_str(), b.clone()))
            .collect();
        w.drop_flow(&format!("kill-{f:02}.zip"), &zip_of(&refs));
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("exchange kill test seed {seed}");
    let mut rng = Lcg(seed);
    let mut kills = 0;
    let mut delivered_at_kill = Vec::new();
    for _ in 0..6 {
        let mut child = start(&w.config_path);
        // Kill once deliveries are under way (or after a while anyway).
        let deadline = Instant::now() + Duration::from_millis(rng.between(400, 2500));
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        child.0.kill().expect("SIGKILL");
        child.0.wait().unwrap();
        kills += 1;
        delivered_at_kill.push(w.local().len() + w.sftp().len());
    }
    let mut child = start(&w.config_path);
    let total = FLOWS * PER_FLOW;
    let deadline = Instant::now() + Duration::from_secs(240);
    while w.local().len() + w.sftp().len() < total {
        if Instant::now() > deadline {
            let (_, status) = quai_cli(&w.config_path, &["status"]);
            panic!(
                "not delivered after the kills: {} local, {} sftp of {total}\n{status}",
                w.local().len(),
                w.sftp().len()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Every status relayed to the supplier: 201 and 203 of every invoice,
    // and 202 of those the SFTP outbox confirmed.
    let mut want_relayed: BTreeSet<(String, String)> = BTreeSet::new();
    for (who, numbers) in &want {
        let codes: &[&str] = if *who == "sf" {
            &["201", "202", "203"]
        } else {
            &["201", "203"]
        };
        for n in numbers {
            for c in codes {
                want_relayed.insert((n.clone(), (*c).to_owned()));
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while relayed(&w).len() < want_relayed.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    sigterm(&child.0);
    assert!(child.0.wait().unwrap().success());
    eprintln!("{kills} SIGKILLs; delivered at each kill: {delivered_at_kill:?}");

    // Each status relayed once, in relay files naming several invoices:
    // none missing, none twice (a relay group written again after a kill
    // is the same file).
    let seen = relayed(&w);
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "relayed twice: {doubled:?}");
    let seen: BTreeSet<(String, String)> = seen.into_keys().collect();
    assert_eq!(
        seen.difference(&want_relayed).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "relayed but not owed"
    );
    assert_eq!(
        want_relayed.difference(&seen).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "owed but not relayed"
    );
    let files = relays(&w);
    eprintln!(
        "{} relay files for {} statuses",
        files.len(),
        want_relayed.len()
    );
    assert!(
        files.len() * 2 < want_relayed.len(),
        "{} relay files for {} statuses: not grouped",
        files.len(),
        want_relayed.len()
    );

    // Exactly the expected files: one per invoice, none twice, none
    // missing, each one whole and in its recipient's syntax.
    for (who, files, ext, root) in [
        ("loc", w.local(), ".ubl.xml", "<Invoice"),
        ("sf", w.sftp(), ".cii.xml", "CrossIndustryInvoice"),
    ] {
        let mut numbers = BTreeSet::new();
        for (name, bytes) in &files {
            assert!(name.ends_with(ext), "{who}: {name}");
            let number = name.split('_').nth(1).unwrap().to_owned();
            assert!(numbers.insert(number.clone()), "{who}: {number} twice");
            let text = String::from_utf8_lossy(bytes);
            assert!(
                text.contains(root) && text.contains(&number),
                "{who}: {name}"
            );
            assert!(
                text.trim_end().ends_with("Invoice>"),
                "{who}: {name} is whole"
            );
        }
        assert_eq!(&numbers, &want[who], "{who} received exactly its invoices");
    }
    // The spool agrees: every routed invoice delivered once.
    let (code, out) = quai_cli(&w.config_path, &["invoices", "--partner", "loc", "--json"]);
    assert_eq!(code, 0, "{out}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        listed["invoices"].as_array().unwrap().len(),
        want["loc"].len()
    );
    // ... and its supplier was told 203 of every one, once each.
    let (code, out) = quai_cli(
        &w.config_path,
        &[
            "invoices",
            "--partner",
            "sup",
            "--status",
            "203",
            "--limit",
            "1000",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let made_available: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(made_available["invoices"].as_array().unwrap().len(), total);
    let first = &made_available["invoices"][0];
    let (_, out) = quai_cli(
        &w.config_path,
        &[
            "invoice",
            &format!("{}/{}", first["flow_id"], first["doc_index"]),
            "--json",
        ],
    );
    let shown: Value = serde_json::from_str(&out).unwrap();
    let history = codes(&shown);
    assert!(
        history == ["200", "201", "203"] || history == ["200", "201", "202", "203"],
        "each status once: {shown}"
    );
    drop(child);
}
