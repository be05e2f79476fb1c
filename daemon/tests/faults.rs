//! Faults of the machine around quai, with real processes (issue 9):
//!
//! * PostgreSQL stopped while a `quai run` process ingests: intake pauses
//!   (nothing is registered, so nothing is acknowledged and the source files
//!   stay in the drop zone), the daemon keeps running, and once PostgreSQL is
//!   back every flow is processed exactly once.
//! * The flow store's filesystem full (a 1 MiB tmpfs mounted for the test):
//!   the flow is not registered nor removed from the drop zone, and it is
//!   taken again once space is freed.
//! * The temporary folder full while a nested archive is spooled there: the
//!   flow is quai's problem, not the partner's, and must be taken again, not
//!   refused.
//!
//! The other faults of issue 9 are tested where they live: SMTP down during
//! a digest (`daemon/tests/digest.rs`), an SFTP server killed mid-transfer
//! (`connectors/tests/sftp.rs`), an AS2 sender disconnecting mid-body
//! (`connectors/tests/as2_layers.rs`); see docs/security.md.

mod support;

use quai_test_support::pg;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use quai_spool::FlowState;
use support::common::*;
use support::hostile::*;

/// A `quai run` child whose stderr goes to a file we can read.
struct Quai {
    child: Child,
    log: PathBuf,
}

impl Quai {
    fn start(config: &Path, log: &Path, env: &[(&str, &str)]) -> Quai {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_quai"));
        cmd.args(["run", "--config"])
            .arg(config)
            .env("QUAI_LOG", "info,sqlx=warn")
            .env("QUAI_LOG_FORMAT", "text")
            .stdout(Stdio::null())
            .stderr(Stdio::from(err));
        for (k, v) in env {
            cmd.env(k, v);
        }
        Quai {
            child: cmd.spawn().expect("start quai"),
            log: log.to_path_buf(),
        }
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and the exit must be clean.
    fn stop(mut self) {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "quai exited with {status:?}:\n{}",
            self.log()
        );
    }
}

impl Drop for Quai {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn count_reports(outbox: &Path) -> usize {
    std::fs::read_dir(outbox)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".report.json"))
                .count()
        })
        .unwrap_or(0)
}

/// The bytes of a flow still in a drop zone, under its own name or the
/// claim name an instance retrying it holds it under at that moment (the
/// file moves between the two while a landing is retried: read again when
/// it moved between the listing and the read).
fn inbox_bytes(inbox: &Path, name: &str) -> Vec<u8> {
    for _ in 0..50 {
        let held = std::fs::read_dir(inbox)
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n == name
                    || n.strip_prefix(".quai-taking.")
                        .and_then(|rest| rest.split_once('.'))
                        .is_some_and(|(_, n)| n == name)
            });
        if let Some(Ok(bytes)) = held.map(|e| std::fs::read(e.path())) {
            return bytes;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{name} is not in {}", inbox.display());
}

/// Names of the flows still in a drop zone (claimed ones included).
fn inbox_names(inbox: &Path) -> BTreeSet<String> {
    std::fs::read_dir(inbox)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .map(|n| match n.strip_prefix(".quai-taking.") {
                    // .quai-taking.<host:pid>.<name>
                    Some(rest) => rest
                        .split_once('.')
                        .map(|(_, n)| n.to_string())
                        .unwrap_or(n),
                    None => n,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn drop_into(inbox: &Path, name: &str, bytes: &[u8]) {
    let part = inbox.join(format!("{name}.part"));
    std::fs::write(&part, bytes).unwrap();
    std::fs::rename(&part, inbox.join(name)).unwrap();
}

/// A zip of `n` UBL invoices numbered `tag-i`, and those numbers.
fn flow_zip(tag: &str, n: usize) -> (Vec<u8>, Vec<String>) {
    let ubl = fixture_str("ubl-tc434-example2.xml");
    let numbers: Vec<String> = (0..n).map(|i| format!("{tag}-{i:04}")).collect();
    let docs: Vec<(String, Vec<u8>)> = numbers
        .iter()
        .map(|num| (format!("{num}.xml"), ubl_numbered(&ubl, num)))
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = docs.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    (zip_of(&refs), numbers)
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every flow of `expected` (file name → invoice numbers) was processed
/// exactly once, every invoice stored exactly once, each with one report.
async fn assert_exactly_once(
    spool: &quai_spool::Spool,
    outbox: &Path,
    expected: &BTreeMap<String, Vec<String>>,
) {
    let flows = spool.list_flows(&Default::default()).await.unwrap();
    let mut processed = BTreeMap::new();
    for f in &flows {
        assert!(
            matches!(f.state, FlowState::Processed | FlowState::Duplicate),
            "flow {} ({}) in {:?} {:?} {:?}",
            f.id,
            f.original_name,
            f.state,
            f.failure_code,
            f.failure_message
        );
        if f.state == FlowState::Processed {
            assert!(
                processed.insert(f.original_name.clone(), f.id).is_none(),
                "{} processed twice",
                f.original_name
            );
        }
    }
    assert_eq!(
        processed.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    let mut seen = BTreeSet::new();
    for (name, id) in &processed {
        let invoices = spool.invoices_of_flow(*id).await.unwrap();
        let mut numbers: Vec<String> = invoices.iter().map(|i| i.number.clone().unwrap()).collect();
        numbers.sort();
        assert_eq!(&numbers, &expected[name], "{name}");
        for n in numbers {
            assert!(seen.insert(n.clone()), "invoice {n} stored twice");
        }
        for inv in invoices {
            assert_eq!(
                inv.verdict,
                quai_spool::Verdict::Accepted,
                "{:?}",
                inv.reasons
            );
        }
        let report = outbox.join(format!("{name}.{id}.report.json"));
        assert!(report.exists(), "no report {}", report.display());
    }
}

// ------------------------------------------------------------ PostgreSQL

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `pg_ctl` of the cluster's PostgreSQL (the newest under
/// /usr/lib/postgresql, as pg.rs picks it), run as `postgres` when root.
fn pg_ctl() -> Command {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL under /usr/lib/postgresql (Debian package postgresql)")
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    let exe = versions.pop().expect("pg_ctl").1.join("pg_ctl");
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(exe);
        c
    } else {
        Command::new(exe)
    }
}

fn pg_stop(cluster: &pg::PgCluster) {
    let out = pg_ctl()
        .arg("-D")
        .arg(cluster.dir.join("data"))
        .args(["stop", "-m", "fast", "-w", "-t", "60"])
        .output()
        .unwrap();
    assert!(out.status.success(), "pg_ctl stop: {out:?}");
}

fn pg_start(cluster: &pg::PgCluster) {
    // The options pg.rs starts its clusters with.
    let opts = format!(
        "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
        cluster.port,
        cluster.dir.display()
    );
    let out = pg_ctl()
        .arg("-D")
        .arg(cluster.dir.join("data"))
        .arg("-l")
        .arg(cluster.dir.join("log"))
        .args(["-o", &opts, "-w", "-t", "60", "start"])
        .output()
        .unwrap();
    assert!(out.status.success(), "pg_ctl start: {out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_mid_run_pauses_intake_and_loses_nothing() {
    let cluster = pg::PgCluster::start();
    // A password in the URL (the cluster trusts local connections, so it is
    // never checked) to show it is never logged, even while PostgreSQL is down.
    let secret = "PgS3cret-hostile-7731";
    let url =
        cluster
            .create_database("faults")
            .replacen("postgres@", &format!("postgres:{secret}@"), 1);
    let home = tempfile::tempdir().unwrap();
    let config_path = home.path().join("quai.toml");
    std::fs::write(
        &config_path,
        format!(
            "[spool]\nurl = \"{url}\"\n[http]\nlisten = \"off\"\n[dropzones]\nstable_seconds = 1\n\
             [processing]\nworkers = 2\nlease_seconds = 3\nbatch_size = 20\n"
        ),
    )
    .unwrap();
    let config = quai::config::Config::load(&config_path).unwrap();
    let inbox = config.inbound_root.clone().unwrap().join("acme");
    let outbox = config.outbound_root.join("acme");
    std::fs::create_dir_all(&inbox).unwrap();
    let log = home.path().join("quai.log");
    let mut quai = Quai::start(&config_path, &log, &[]);

    let mut expected = BTreeMap::new();
    // Before the outage: four flows, processing under way.
    for f in 0..4 {
        let (zip, numbers) = flow_zip(&format!("PGA{f}"), 120);
        let name = format!("before-{f}.zip");
        drop_into(&inbox, &name, &zip);
        expected.insert(name, numbers);
    }
    wait_for("a first report", Duration::from_secs(60), || {
        count_reports(&outbox) >= 1
    })
    .await;
    pg_stop(&cluster);
    let outage = Instant::now();
    let reports_at_stop = count_reports(&outbox);

    // During the outage: three more flows arrive.
    let mut during = BTreeSet::new();
    for f in 0..3 {
        let (zip, numbers) = flow_zip(&format!("PGB{f}"), 30);
        let name = format!("during-{f}.zip");
        drop_into(&inbox, &name, &zip);
        expected.insert(name.clone(), numbers);
        during.insert(name);
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        quai.alive(),
        "quai exited while PostgreSQL was down:\n{}",
        quai.log()
    );
    // Nothing registered, so nothing acknowledged: the files stay.
    let left = inbox_names(&inbox);
    assert!(
        during.is_subset(&left),
        "flows taken while the spool was down: in the drop zone {left:?}"
    );
    // No answer for a flow that is not registered.
    let answered: Vec<String> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("during-"))
        .collect();
    assert!(
        answered.is_empty(),
        "answered during the outage: {answered:?}"
    );
    let _ = reports_at_stop;
    // Past the pool's 30 s acquire timeout, spool calls fail: the workers
    // retry with back-off, the drop zone gives its files back. Still nothing
    // is taken, nothing answered, and quai keeps running.
    tokio::time::sleep(Duration::from_secs(32)).await;
    assert!(
        quai.alive(),
        "quai exited while PostgreSQL was down:\n{}",
        quai.log()
    );
    let left = inbox_names(&inbox);
    assert!(during.is_subset(&left), "in the drop zone: {left:?}");
    let answered = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("during-"))
        .count();
    assert_eq!(answered, 0, "answered during the outage");
    let outage_log = quai.log();
    assert!(
        // Claims, stores, registrations, acknowledgements: whichever was
        // under way met the outage as a database error and was retried.
        outage_log.contains("database error"),
        "the outage left no trace in the log:\n{outage_log}"
    );
    let give_backs = outage_log
        .matches("left in the drop zone for a later try")
        .count();
    eprintln!(
        "outage of {:?}: {give_backs} give-backs logged",
        outage.elapsed()
    );
    assert!(give_backs >= 1, "no drop-zone file was given back");

    // PostgreSQL returns: everything resumes.
    pg_start(&cluster);
    let spool = quai::open_spool(&config).await.unwrap();
    wait_for("every flow processed", Duration::from_secs(120), || {
        count_reports(&outbox) >= expected.len() && inbox_names(&inbox).is_empty()
    })
    .await;
    // Let stragglers (a flow being re-registered as a duplicate) settle.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(quai.alive());
    assert_exactly_once(&spool, &outbox, &expected).await;
    assert_eq!(
        count_reports(&outbox),
        expected.len(),
        "one report per flow"
    );
    let text = quai.log();
    quai.stop();
    assert!(
        !text.contains(secret),
        "the spool password was logged:\n{}",
        text.lines()
            .filter(|l| l.contains(secret))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// ------------------------------------------------------------ disk full

/// A tmpfs of `size` mounted on a new temp folder, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .expect("mount");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs (the disk-full tests run as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fill the filesystem to the last byte with `filler`.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0xAAu8; 4096];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        let _ = f.sync_all();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_on_intake_leaves_the_flow_for_later() {
    let fs = Tmpfs::mount("1m");
    let store = fs.path().join("flows");
    std::fs::create_dir(&store).unwrap();
    let filler = fs.fill();

    let home = tempfile::tempdir().unwrap();
    let config_path = home.path().join("quai.toml");
    std::fs::write(
        &config_path,
        format!(
            "[spool]\nstore = \"{}\"\n[http]\nlisten = \"off\"\n[dropzones]\nstable_seconds = 1\n\
             [processing]\nworkers = 2\nlease_seconds = 3\n",
            store.display()
        ),
    )
    .unwrap();
    let config = quai::config::Config::load(&config_path).unwrap();
    let inbox = config.inbound_root.clone().unwrap().join("acme");
    let outbox = config.outbound_root.join("acme");
    std::fs::create_dir_all(&inbox).unwrap();
    let log = home.path().join("quai.log");
    let mut quai = Quai::start(&config_path, &log, &[]);

    let (zip, numbers) = flow_zip("FULL", 20);
    let zip = [zip, noise(1, 64 * 1024)].concat(); // incompressible tail: > one page
    assert!(zip.len() > 64 * 1024);
    drop_into(&inbox, "full.zip", &zip);
    wait_for("the ENOSPC to be logged", Duration::from_secs(30), || {
        quai.log().contains("No space left on device")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(quai.alive(), "quai exited on a full disk:\n{}", quai.log());
    // Not registered, not acknowledged, not removed; no partial landing left.
    let spool = quai::open_spool(&config).await.unwrap();
    assert!(spool
        .list_flows(&Default::default())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(count_reports(&outbox), 0);
    assert!(inbox_names(&inbox).contains("full.zip"));
    assert_eq!(inbox_bytes(&inbox, "full.zip").len(), zip.len());
    let leftovers: Vec<_> = files_under(&store);
    assert!(leftovers.is_empty(), "partial landings left: {leftovers:?}");
    let attempts = quai.log().matches("No space left on device").count();
    eprintln!("{attempts} landing attempts logged while the disk was full");

    // Space comes back: the flow is taken again, exactly once.
    std::fs::remove_file(&filler).unwrap();
    wait_for(
        "the flow to be taken again",
        Duration::from_secs(90),
        || count_reports(&outbox) >= 1,
    )
    .await;
    let mut expected = BTreeMap::new();
    let mut sorted = numbers.clone();
    sorted.sort();
    expected.insert("full.zip".to_string(), sorted);
    assert!(inbox_names(&inbox).is_empty());
    assert_exactly_once(&spool, &outbox, &expected).await;
    quai.stop();
}

/// (Found by this test: an I/O error on quai's side used to fail the flow
/// with the code `INTERNAL`; it is now retried, commit 16f6e41.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_temp_folder_while_unpacking_is_retried_not_refused() {
    // A zip inside a tar.gz is spooled to an anonymous file in $TMPDIR
    // (zip needs to seek). $TMPDIR full is quai's fault, not the partner's.
    let fs = Tmpfs::mount("1m");
    let filler = fs.fill();
    let home = tempfile::tempdir().unwrap();
    let config_path = home.path().join("quai.toml");
    std::fs::write(
        &config_path,
        "[http]\nlisten = \"off\"\n[dropzones]\nstable_seconds = 1\n[processing]\nworkers = 1\nlease_seconds = 2\n",
    )
    .unwrap();
    let config = quai::config::Config::load(&config_path).unwrap();
    let inbox = config.inbound_root.clone().unwrap().join("acme");
    let outbox = config.outbound_root.join("acme");
    std::fs::create_dir_all(&inbox).unwrap();
    let log = home.path().join("quai.log");
    let tmp = fs.path().to_string_lossy().into_owned();
    let mut quai = Quai::start(&config_path, &log, &[("TMPDIR", &tmp)]);

    let (inner, numbers) = flow_zip("TMPFULL", 5);
    let inner = [inner, noise(2, 64 * 1024)].concat();
    let outer = targz_of(&[("inner.zip", inner)]);
    drop_into(&inbox, "nested.tar.gz", &outer);
    let spool = quai::open_spool(&config).await.unwrap();
    wait_for("the flow to be registered", Duration::from_secs(30), || {
        !inbox_names(&inbox).contains("nested.tar.gz")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let flows = spool.list_flows(&Default::default()).await.unwrap();
    assert_eq!(flows.len(), 1);
    assert_ne!(
        flows[0].state,
        FlowState::Failed,
        "a full temp folder refused the partner's flow: {:?} {:?}",
        flows[0].failure_code,
        flows[0].failure_message
    );
    assert!(quai.alive());

    std::fs::remove_file(&filler).unwrap();
    wait_for("the flow to be processed", Duration::from_secs(60), || {
        count_reports(&outbox) >= 1
    })
    .await;
    let mut expected = BTreeMap::new();
    let mut sorted = numbers;
    sorted.sort();
    expected.insert("nested.tar.gz".to_string(), sorted);
    assert_exactly_once(&spool, &outbox, &expected).await;
    quai.stop();
}
