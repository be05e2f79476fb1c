//! The `quai` command line with manners (issue 18), through the real
//! binary: closed pipes end commands quietly with exit 0 and never hang,
//! read-only commands where quai never ran say so (exit 2) and create
//! nothing, results on stdout and logs on stderr (`-q`, `-v`), filters that
//! name unknown partners are errors, `ingest` exits 1 on a reject and does
//! not create partners silently, `replay` of a duplicate says so, partner
//! text is printed without its terminal escapes, completions and manual
//! pages come from the same definitions; and `check-config` reports every
//! problem of every kind at once.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn quai(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_quai"));
    c.env_remove("QUAI_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("QUAI_LOG")
        .env_remove("NO_COLOR")
        .env("QUAI_LOG_FORMAT", "text")
        .env("QUAI_HOME", home)
        .stdin(Stdio::null());
    c
}

fn run(home: &Path, args: &[&str]) -> Output {
    quai(home).args(args).output().expect("run quai")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/sample-batch.zip")
}

/// The flow id of the first `flow N ...` result line of `ingest`.
fn flow_id(stdout: &str) -> i64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("flow "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no flow id in {stdout}"))
}

/// Wait for a child with a deadline (a hang is a failure, not a stuck suite).
fn wait(mut child: std::process::Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("quai did not finish within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn read_only_commands_where_quai_never_ran_say_so_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("nothing-here");
    for args in [
        &["status"][..],
        &["flows"],
        &["flow", "1"],
        &["status", "--json"],
        &["purge", "--dry-run"],
        &["reconcile"],
        &["replay", "1"],
    ] {
        let out = run(&home, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(
            text(&out.stderr).contains("no spool at"),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?} printed a result");
        assert!(!home.exists(), "{args:?} created {}", home.display());
    }
}

#[test]
fn a_cli_with_manners() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");

    // ingest: an unknown partner is refused, not created.
    let out = run(
        &home,
        &["ingest", sample().to_str().unwrap(), "--partner", "acme"],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stderr).contains("--new-partner"), "{out:?}");
    // With --new-partner it is taken; the sample has a reject: exit 1.
    let out = run(
        &home,
        &[
            "ingest",
            sample().to_str().unwrap(),
            "--partner",
            "acme",
            "--new-partner",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(&format!(
            "spool sqlite://{}",
            home.join("spool.db").display()
        )),
        "the first line names the spool: {stdout}"
    );
    assert!(stdout.contains("flow 1 "), "{stdout}");
    assert!(
        text(&out.stderr).contains("[1/1] 100%"),
        "progress on stderr"
    );
    // -q: no progress line, no log line; the result is still on stdout.
    let out = run(
        &home,
        &[
            "ingest",
            sample().to_str().unwrap(),
            "--partner",
            "acme",
            "-q",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "a duplicate rejects nothing: {out:?}"
    );
    assert!(out.stderr.is_empty(), "-q: {}", text(&out.stderr));
    let dup = flow_id(&text(&out.stdout));
    assert!(text(&out.stdout).contains("duplicate of flow 1"));

    // A file name with terminal escapes: shown neutralised.
    let invoices = dir.path().join("unpacked");
    std::fs::create_dir_all(&invoices).unwrap();
    let evil = invoices.join("evil\u{1b}[2J\u{7}\u{9b}31m.zip");
    let mut bytes = std::fs::read(sample()).unwrap();
    bytes.extend_from_slice(b"\n");
    std::fs::write(&evil, bytes).unwrap();
    let out = run(
        &home,
        &["ingest", evil.to_str().unwrap(), "--partner", "acme", "-q"],
    );
    assert!(out.status.code().unwrap() <= 1, "{out:?}");
    let evil_id = flow_id(&text(&out.stdout)).to_string();
    for args in [&["flows"][..], &["flow", &evil_id]] {
        let out = run(&home, args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        let s = text(&out.stdout);
        assert!(
            !s.contains('\u{1b}') && !s.contains('\u{7}') && !s.contains('\u{9b}'),
            "{args:?} printed terminal controls: {s:?}"
        );
        assert!(s.contains("evil\\x1b[2J\\x07\\x9b31m.zip"), "{args:?}: {s}");
    }
    let out = run(
        &home,
        &["ingest", evil.to_str().unwrap(), "--partner", "acme"],
    );
    assert!(
        !text(&out.stderr).contains('\u{1b}'),
        "progress line escaped"
    );

    // Logs on stderr only, without colours off a terminal; -v adds debug.
    let out = run(&home, &["flows", "-v"]);
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("DEBUG"), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("DEBUG"));
    assert!(!out.stderr.contains(&0x1b), "colours off a terminal");
    let status: serde_json::Value =
        serde_json::from_slice(&run(&home, &["status", "--json"]).stdout).unwrap();
    assert!(status["spool"].as_str().unwrap().ends_with("spool.db"));
    assert!(status["totals"].is_object(), "the old shape is kept");

    // Filters.
    let out = run(&home, &["flows", "--partner", "nobody"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown partner \"nobody\" (known: acme)"));
    let out = run(
        &home,
        &["flows", "--invoice", "TOSL108-WRONG-DUE", "--json"],
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<i64> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        [evil_id.parse::<i64>().unwrap(), 1],
        "flows holding that invoice, newest first"
    );
    let out = run(&home, &["flows", "--invoice", "NO-SUCH-NUMBER", "--json"]);
    assert_eq!(text(&out.stdout).trim(), "[]");

    // flow ID --rejected: the rejected invoices only.
    let out = run(&home, &["flow", "1", "--rejected"]);
    let s = text(&out.stdout);
    assert!(s.contains("REJECTED"), "{s}");
    assert!(!s.contains(" accepted  "), "{s}");
    assert!(s.contains("BR-CO-16"), "{s}");
    let v: serde_json::Value =
        serde_json::from_slice(&run(&home, &["flow", "1", "--rejected", "--json"]).stdout).unwrap();
    assert_eq!(v["invoices"].as_array().unwrap().len(), 1);
    // Timestamps to the second.
    let history_line = s.lines().find(|l| l.contains("registered")).unwrap();
    assert!(
        history_line.trim_start().len() > 23 && &history_line.trim_start()[19..23] == " UTC",
        "{history_line}"
    );

    // replay of a duplicate says so.
    let out = run(&home, &["replay", &dup.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains(&format!(
            "flow {dup} is a duplicate of flow 1: not replayed"
        )),
        "{out:?}"
    );
    let out = run(&home, &["replay", "1"]);
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).contains("flow 1 replayed: processed"));

    // purge --dry-run removes nothing and says what it would do.
    let out = run(&home, &["purge", "--dry-run", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["flows"], 0);

    // A closed stdout: exit 0, no "Broken pipe", for a table and for JSON.
    for args in [
        &["flows"][..],
        &["flows", "--json"],
        &["flow", "1"],
        &["status"],
    ] {
        let mut child = quai(&home)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let mut err = String::new();
        let mut stderr = child.stderr.take().unwrap();
        let status = wait(child, Duration::from_secs(30));
        stderr.read_to_string(&mut err).unwrap();
        assert_eq!(status.code(), Some(0), "{args:?}: {err}");
        assert!(
            !err.contains("Broken pipe") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
    // Debug logs into a closed pipe (stdout and stderr): no hang.
    let mut child = quai(&home)
        .args(["purge"])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = wait(child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0));

    // Completions and manual pages from the same definitions.
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&home, &["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let s = text(&out.stdout);
        assert!(
            s.contains("check-config") && s.contains("reload"),
            "{shell}"
        );
    }
    let out = run(&home, &["man"]);
    assert!(out.status.success());
    let page = text(&out.stdout);
    assert!(page.contains(".TH quai 1"), "{page}");
    assert!(page.contains("reload"), "{page}");
    let man_dir = dir.path().join("man");
    let out = run(&home, &["man", "--dir", man_dir.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(man_dir.join("quai-flows.1").exists());
    // Every argument has help text.
    for sub in [
        "flows",
        "flow",
        "ingest",
        "purge",
        "replay",
        "reconcile",
        "status",
    ] {
        let help = text(&run(&home, &[sub, "--help"]).stdout);
        for line in help.lines().filter(|l| l.trim_start().starts_with('-')) {
            let t = line.trim();
            let after = t.split_once("  ").map(|(_, h)| h.trim()).unwrap_or("");
            assert!(!after.is_empty(), "quai {sub}: {t:?} has no help text");
        }
    }
}

#[test]
fn check_config_reports_every_problem_of_every_kind() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("in-ok")).unwrap();
    let cfg = d.join("quai.toml");
    std::fs::write(
        &cfg,
        format!(
            "[spool]\nretention_days = \"ninety\"\n\
             [http]\nlisten = \"127.0.0.1:8470\"\ntoken_file = \"missing.token\"\nport = 1\n\
             [mail]\ntransport = \"smtp://:25\"\npassword_file = \"missing.password\"\n\
             [schedule]\nreconcile = \"every day\"\npurge = \"0 0 3 * * *\"\n\
             [limits]\nmax_invoices_per_flow = true\nmax_flow_bytes = \"12 parsecs\"\n\
             [as2]\nas2_id = \"QUAI\"\ncertificate = \"missing.crt\"\nkey = \"missing.key\"\n\
             [[partner]]\nid = \"acme\"\n[partner.dropzone]\ninbox = \"in-acme-typo\"\n\
             [[partner]]\nid = \"made\"\n[partner.dropzone]\ninbox = \"in-made\"\ncreate = true\n\
             [[partner]]\nid = \"ok\"\n[partner.dropzone]\ninbox = \"{}\"\n\
             [[partner]]\nid = \"remote\"\n[partner.sftp]\nurl = \"sftp://quai@host:99999/in\"\n\
             key = \"missing.key\"\nknown_hosts = \"missing.known_hosts\"\npoll = \"often\"\n\
             [[partner]]\nid = \"globex\"\n[partner.as2]\nas2_id = \"GLOBEX\"\ncertificate = \"missing-globex.pem\"\n",
            d.join("in-ok").display()
        ),
    )
    .unwrap();
    let out = run(
        d,
        &["check-config", "--config", cfg.to_str().unwrap(), "--json"],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let keys: Vec<String> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap().to_string())
        .collect();
    // Type errors, unknown keys, values, URLs, cron expressions: from the file.
    for k in [
        "spool.retention_days",
        "http.port",
        "mail.transport",
        "schedule.reconcile",
        "limits.max_invoices_per_flow",
        "limits.max_flow_bytes",
        "partner.sftp.url",
        "partner.sftp.poll",
    ] {
        assert!(keys.iter().any(|x| x == k), "{k} not reported: {keys:?}");
    }
    // What a start would meet: files and folders.
    for k in [
        "http.token_file",
        "mail.password_file",
        "as2.certificate",
        "as2.key",
        "partner[acme].dropzone.inbox",
        "partner[remote].sftp.key",
        "partner[remote].sftp.known_hosts",
        "partner[globex].as2.certificate",
    ] {
        assert!(keys.iter().any(|x| x == k), "{k} not reported: {keys:?}");
    }
    assert!(
        !keys
            .iter()
            .any(|k| k.contains("[made]") || k.contains("[ok]")),
        "an inbox to create, or that exists, is fine: {keys:?}"
    );
    // Problems of the file carry their line.
    let line_of = |key: &str| {
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["key"] == key)
            .and_then(|p| p["line"].as_u64())
    };
    assert_eq!(line_of("spool.retention_days"), Some(2));
    assert_eq!(line_of("http.port"), Some(6));
    // Human output: the same list, exit 2.
    let out = run(d, &["check-config", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let s = text(&out.stdout);
    assert!(s.contains("problem(s) in the configuration"), "{s}");
    assert!(s.contains("in-acme-typo"), "{s}");
    assert!(
        !d.join("in-acme-typo").exists(),
        "check-config creates nothing"
    );

    // A good configuration: OK, exit 0.
    std::fs::write(
        &cfg,
        format!(
            "[http]\nlisten = \"off\"\n[[partner]]\nid = \"ok\"\n[partner.dropzone]\ninbox = \"{}\"\n",
            d.join("in-ok").display()
        ),
    )
    .unwrap();
    let out = run(d, &["check-config", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text(&out.stdout).starts_with("configuration OK"));
}
