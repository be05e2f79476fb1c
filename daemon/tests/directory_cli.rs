//! The recipient directory through the real binary (issue 15):
//! `quai directory import` loads a file or refuses it whole with every bad
//! line, `quai directory lookup` answers with the most specific valid line,
//! `check-config` reports bad addresses, addresses claimed twice and bad
//! directory lines at once, and `quai run` reloads the file when it changes,
//! keeping the previous version when the new one is invalid.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn quai(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_quai"));
    c.env_remove("QUAI_CONFIG")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("RUST_LOG")
        .env("QUAI_LOG_FORMAT", "text")
        .env("NO_COLOR", "1")
        .arg("--config")
        .arg(dir.join("quai.toml"))
        .stdin(Stdio::null());
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    quai(dir).args(args).output().expect("run quai")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const HEADER: &str = "address,partner,valid_from,valid_to\n";

fn setup(dir: &Path, extra: &str) {
    std::fs::write(
        dir.join("quai.toml"),
        format!(
            "[http]\nlisten = \"127.0.0.1:0\"\n[dropzones]\nenabled = false\n\
             [processing]\nworkers = 1\n[directory]\nfile = \"directory.csv\"\n{extra}\
             [[partner]]\nid = \"alpha\"\n\
             addresses = [\"0225:732829320_73282932000074\", \"0009:73282932000082\"]\n\
             syntax = \"ubl\"\n\
             [[partner]]\nid = \"beta\"\nsyntax = \"cii\"\n"
        ),
    )
    .unwrap();
}

fn lookup(dir: &Path, address: &str, on: &str) -> serde_json::Value {
    let out = run(dir, &["directory", "lookup", address, "--on", on, "--json"]);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {} {}", text(&out.stdout), text(&out.stderr)))
}

#[test]
fn import_lookup_and_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, "");
    std::fs::write(
        d.join("directory.csv"),
        format!(
            "{HEADER}0225:732829320,beta,,\n0225:111111111,beta,2026-01-01,2026-12-31\n\
             0225:111111111_11111111100011_COMPTA,alpha,,\n"
        ),
    )
    .unwrap();
    let out = run(d, &["directory", "import"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("3 line(s) loaded"),
        "{}",
        text(&out.stdout)
    );

    // The SIRET line of the configuration wins over the file's SIREN line.
    let v = lookup(d, "0225:732829320_73282932000074_X", "2026-05-01");
    assert_eq!(v["route"]["partner"], "alpha");
    assert_eq!(v["route"]["source"], "config");
    assert_eq!(v["route"]["address"], "0225:732829320_73282932000074");
    // Another SIRET of that SIREN: the file's SIREN line.
    let v = lookup(d, "0009:73282932000090", "2026-05-01");
    assert_eq!(v["route"]["partner"], "beta");
    assert_eq!(v["route"]["line"], 2);
    // The configuration's 0009 address.
    assert_eq!(
        lookup(d, "0009:73282932000082", "2026-05-01")["route"]["partner"],
        "alpha"
    );
    // Routing code, and validity dates.
    let v = lookup(d, "0225:111111111_11111111100011_COMPTA", "2027-02-01");
    assert_eq!(v["route"]["partner"], "alpha");
    let v = lookup(d, "0225:111111111_11111111100011", "2026-05-01");
    assert_eq!(v["route"]["partner"], "beta");
    assert_eq!(v["route"]["valid_to"], "2026-12-31");
    let out = run(
        d,
        &[
            "directory",
            "lookup",
            "0225:111111111",
            "--on",
            "2027-01-01",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("no partner receives"),
        "{}",
        text(&out.stdout)
    );
    let out = run(
        d,
        &[
            "directory",
            "lookup",
            "0225:732829320",
            "--on",
            "2026-01-01",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("partner beta"),
        "{}",
        text(&out.stdout)
    );
    // A malformed address is an error.
    assert_eq!(
        run(d, &["directory", "lookup", "nope"]).status.code(),
        Some(2)
    );

    // A bad file: refused whole, every bad line listed, the old one stays.
    let bad = d.join("bad.csv");
    std::fs::write(
        &bad,
        format!(
            "{HEADER}0225:222222222,beta,,\n0225:333333333,nobody,,\n22:1,beta,,\n\
             0225:732829320_73282932000074,beta,,\n0225:444444444,beta,2026-02-30,\n"
        ),
    )
    .unwrap();
    let out = run(d, &["directory", "import", bad.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["bad_lines"], 4);
    let lines: Vec<i64> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 4, 5, 6]);
    assert!(v["problems"][2]["message"]
        .as_str()
        .unwrap()
        .contains("alpha"));
    assert_eq!(
        lookup(d, "0225:222222222", "2026-05-01")["route"],
        serde_json::Value::Null
    );
    assert_eq!(
        lookup(d, "0225:732829320", "2026-05-01")["route"]["partner"],
        "beta"
    );
}

#[test]
fn check_config_reports_every_directory_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(
        d,
        "[[partner]]\nid = \"gamma\"\naddresses = [\"0009:73282932000082\", \"225:x\", \"0225:a b\"]\n\
         syntax = \"pdf\"\n",
    );
    std::fs::write(
        d.join("directory.csv"),
        format!(
            "{HEADER}0225:1,nobody,,\n0009:73282932000082,beta,,\n0225:2,beta,,\n0225:3,beta,x,\n"
        ),
    )
    .unwrap();
    let out = run(d, &["check-config", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let messages: Vec<String> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}: {}",
                p["key"].as_str().unwrap(),
                p["message"].as_str().unwrap()
            )
        })
        .collect();
    let all = messages.join("\n");
    for expected in [
        "partner.addresses: 0009:73282932000082 is claimed by partner \"gamma\" and partner \"alpha\"",
        "scheme \"225\" is not 4 digits",
        "identifier contains spaces",
        "partner.syntax: \"pdf\"",
        "directory.csv line 2: partner \"nobody\" is not configured",
        "directory.csv line 3: 0009:73282932000082 is given to partner \"gamma\" by the configuration",
        "directory.csv line 5: valid_from \"x\"",
    ] {
        assert!(all.contains(expected), "missing {expected:?} in\n{all}");
    }
    assert!(!all.contains("line 4"), "{all}");
    // A good configuration passes.
    setup(d, "");
    std::fs::write(d.join("directory.csv"), format!("{HEADER}0225:2,beta,,\n")).unwrap();
    let out = run(d, &["check-config"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until(
    what: &str,
    within: Duration,
    log: &dyn Fn() -> String,
    ok: &mut dyn FnMut() -> bool,
) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("{what} did not happen within {within:?}; log:\n{}", log());
}

#[test]
fn the_daemon_reloads_a_changed_file_and_keeps_the_old_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, "");
    let csv = d.join("directory.csv");
    std::fs::write(&csv, format!("{HEADER}0225:555555555,beta,,\n")).unwrap();
    let log_path = d.join("quai.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let child = quai(d)
        .arg("run")
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .expect("start quai run");
    let _child = KillOnDrop(child);
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let partner_of = |a: &str| lookup(d, a, "2026-05-01")["route"]["partner"].clone();
    wait_until("first load", Duration::from_secs(60), &log, &mut || {
        log().contains("directory loaded")
    });
    assert_eq!(partner_of("0225:555555555"), "beta");
    // Changed: the new version replaces the old one.
    std::fs::write(&csv, format!("{HEADER}0225:666666666,alpha,,\n")).unwrap();
    wait_until("reload", Duration::from_secs(40), &log, &mut || {
        partner_of("0225:666666666") == "alpha"
    });
    assert!(partner_of("0225:555555555").is_null());
    // Invalid: logged with its bad line, the previous version stays.
    std::fs::write(
        &csv,
        format!("{HEADER}0225:777777777,beta,,\n0225:888888888,nobody,,\n"),
    )
    .unwrap();
    wait_until("refusal", Duration::from_secs(40), &log, &mut || {
        log().contains("directory file refused")
    });
    let l = log();
    assert!(l.contains("line=3") && l.contains("nobody"), "{l}");
    assert_eq!(partner_of("0225:666666666"), "alpha");
    assert!(partner_of("0225:777777777").is_null());
}
