//! What quai writes stays well-formed whatever partners send (issue 14,
//! class 6), through the running daemon:
//!
//! * an EDIFACT interchange (UNOY, UTF-8) whose file name and invoice
//!   fields hold C0 control characters, an escape sequence and
//!   U+FFFE/U+FFFF gets an integration report (XML and JSON), a CDAR file
//!   and a CONTRL: lxml's strict parser (the test venv) reads both XML
//!   files, the JSON parses, and the CONTRL holds no control character
//!   but its segment line ends;
//! * a reject digest (real SMTP server) of a flow whose file name holds
//!   `;`, `,`, a quote and a line break and whose invoice number is a
//!   formula: Python's `csv` module (strict) reads the attachment back
//!   into the same cells, the formula defused;
//! * a file name made to forge a log line (`\n2026-… ERROR forged`) cannot:
//!   a real `quai run` process, in the text and then the JSON log format,
//!   writes it escaped on the line it belongs to.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use quai_test_support::smtp;
use support::common::*;
use support::hostile::ubl_numbered;

async fn wait_files(dir: &Path, suffix: &str, n: usize) -> Vec<PathBuf> {
    let start = Instant::now();
    loop {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().ends_with(suffix))
                    .collect()
            })
            .unwrap_or_default();
        if v.len() >= n {
            v.sort();
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "no {suffix} in {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Parse each file with lxml's default (strict, non-recovering) parser;
/// panics with lxml's message when one is not well-formed XML 1.0.
fn lxml_strict(files: &[PathBuf]) {
    let python = quai_test_support::venv::python_with(&["lxml"]);
    let out = Command::new(python)
        .arg("-c")
        .arg(
            "import sys\nfrom lxml import etree\nfor p in sys.argv[1:]:\n    \
             etree.parse(p, etree.XMLParser(recover=False, resolve_entities=False))\n    \
             print('ok', p)\n",
        )
        .args(files)
        .output()
        .expect("run the venv's python");
    assert!(
        out.status.success(),
        "not well-formed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An INVOIC in UTF-8 (UNOY) whose invoice number and seller name carry
/// characters XML 1.0 cannot hold.
fn hostile_interchange() -> Vec<u8> {
    let number = "INV\u{1}7\u{1b}[31m\u{FFFE}\u{FFFF}\u{7}";
    let seller = "Seller \u{0}\u{8}\u{FFFF} GmbH";
    format!(
        "UNB+UNOY:3+SENDER\u{1}X:1+006415160:1+060515:1434+REF\u{FFFE}1'\n\
         UNH+1+INVOIC:D:97B:UN'\n\
         BGM+380+{number}+9'\n\
         DTM+3:20060515:102'\n\
         NAD+BY+792820524::16++BUYER'\n\
         NAD+SE+005435656::16++{seller}'\n\
         CUX+1:USD'\n\
         LIN+1++157870:IN'\n\
         IMD+F++:::WIDGET\u{2}'\n\
         QTY+47:1:EA'\n\
         MOA+203:10'\n\
         PRI+INV:10'\n\
         UNS+S'\n\
         MOA+39:10'\n\
         UNT+14+1'\n\
         UNZ+1+REF\u{FFFE}1'\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_and_nonchars_give_well_formed_outputs() {
    let mut d = TestDaemon::new();
    d.start();
    let name = "ctl\u{1}\u{1b}[2J\u{7f}\u{FFFE}\u{FFFF}\t.edi";
    d.drop_file("acme", name, &hostile_interchange());
    let out = d.outbox("acme");
    let xml = wait_files(&out, ".report.xml", 1).await;
    let json = wait_files(&out, ".report.json", 1).await;
    let cdar = wait_files(&out, ".cdar.xml", 1).await;
    let contrl = wait_files(&out, ".contrl.edi", 1).await;
    d.stop().await;

    let report = report_json(&json[0]);
    assert_eq!(report["counts"]["documents"], 1, "{report}");
    let number = report["documents"][0]["invoice_number"]
        .as_str()
        .unwrap_or("");
    assert!(number.starts_with("INV"), "the number was read: {report}");
    lxml_strict(&[xml[0].clone(), cdar[0].clone()]);
    for f in [&xml[0], &cdar[0]] {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            !text.contains(['\u{1}', '\u{1b}', '\u{7}', '\u{FFFE}', '\u{FFFF}']),
            "{}: {text}",
            f.display()
        );
    }
    let c = std::fs::read_to_string(&contrl[0]).unwrap();
    assert!(
        !c.chars()
            .any(|ch| (ch.is_control() && ch != '\n') || matches!(ch, '\u{FFFE}' | '\u{FFFF}')),
        "{c:?}"
    );
    assert!(
        c.lines().all(|l| l.ends_with('\'')),
        "one segment per line: {c:?}"
    );
    // Report names are made of safe characters only.
    for e in std::fs::read_dir(&out).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        assert!(
            n.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')),
            "{n:?}"
        );
        assert!(!n.starts_with('.'), "{n:?}");
    }
}

fn quai_run(config: &Path, log: &Path, format: &str) -> Child {
    let err = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_quai"))
        .arg("run")
        .arg("--config")
        .arg(config)
        .env("QUAI_LOG", "debug,sqlx=warn")
        .env("QUAI_LOG_FORMAT", format)
        .env_remove("JOURNAL_STREAM")
        .stdout(Stdio::null())
        .stderr(Stdio::from(err))
        .spawn()
        .expect("start quai")
}

fn sigterm(mut child: Child) {
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

const FORGED: &str = "2026-01-01T00:00:00.000000Z ERROR quai: forged";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_name_cannot_forge_log_lines() {
    let home = tempfile::tempdir().unwrap();
    let config_path = home.path().join("quai.toml");
    std::fs::write(
        &config_path,
        "[http]\nlisten = \"off\"\n[dropzones]\nstable_seconds = 1\n[[partner]]\nid = \"acme\"\n",
    )
    .unwrap();
    let config = quai::config::Config::load(&config_path).unwrap();
    let inbox = config.inbound_root.clone().unwrap().join("acme");
    let outbox = config.outbound_root.join("acme");
    std::fs::create_dir_all(&inbox).unwrap();

    for (i, format) in ["text", "json"].into_iter().enumerate() {
        let log = home.path().join(format!("quai-{format}.log"));
        let child = quai_run(&config_path, &log, format);
        // A new file each round (another name, other bytes: not a duplicate).
        let name = format!("inv{i}.xml\n{FORGED}\r\u{1b}[1A\u{2028}x");
        let bytes = String::from_utf8(fixture("ubl-tc434-example2.xml"))
            .unwrap()
            .replace("<cbc:ID>", &format!("<!-- round {i} --><cbc:ID>"));
        std::fs::write(inbox.join("upload.part"), bytes).unwrap();
        std::fs::rename(inbox.join("upload.part"), inbox.join(&name)).unwrap();
        wait_files(&outbox, ".report.json", i + 1).await;
        sigterm(child);

        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("flow registered"), "{text}");
        for line in text.lines() {
            assert!(
                !line.starts_with("2026-01-01"),
                "forged line in the {format} log:\n{text}"
            );
            assert!(
                !line.contains(['\r', '\u{1b}']),
                "raw control character in the {format} log: {line:?}"
            );
            if format == "text" {
                assert!(!line.contains('\u{2028}'), "{line:?}");
            }
            if format == "json" {
                let v: serde_json::Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line:?}"));
                assert!(v.is_object());
            }
        }
        // The name is there, escaped (`\n`: quai's in text, JSON's own in
        // JSON), on the line of its event.
        let escaped = format!("inv{i}.xml\\n{FORGED}");
        assert!(
            text.lines()
                .any(|l| l.contains("flow registered") && l.contains(&escaped)),
            "{format} log:\n{text}"
        );
    }
}

/// The CSV text read by Python's csv module in strict mode: rows of cells.
fn python_csv(text: &str) -> Vec<Vec<String>> {
    let python = quai_test_support::venv::python();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d.csv");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(python)
        .arg("-c")
        .arg(
            "import csv, json, sys\nwith open(sys.argv[1], newline='') as f:\n    \
             print(json.dumps(list(csv.reader(f, strict=True))))\n",
        )
        .arg(&file)
        .output()
        .expect("run the venv's python");
    assert!(
        out.status.success(),
        "csv: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_csv_cells_stay_cells() {
    let server = smtp::Smtp::start();
    let home = tempfile::tempdir().unwrap();
    let config_path = home.path().join("quai.toml");
    std::fs::write(
        &config_path,
        format!(
            "[http]\nlisten = \"off\"\n[mail]\ntransport = \"{}\"\nfrom = \"quai <edi@platform.example>\"\n\
             [schedule]\nreject_digest = \"*/2 * * * * *\"\n[dropzones]\nstable_seconds = 1\n\
             [[partner]]\nid = \"acme\"\ncontacts = [\"edi@acme.example\"]\n",
            server.url()
        ),
    )
    .unwrap();
    let config = quai::config::Config::load(&config_path).unwrap();
    let mut d = TestDaemon {
        home,
        config,
        stop: Default::default(),
        task: None,
    };
    d.start();
    let number = "=HYPERLINK(\"http://x\";\"y\"),1";
    let xml = String::from_utf8(ubl_numbered(
        &fixture_str("ubl-tc434-example2.xml"),
        &number.replace('"', "&quot;"),
    ))
    .unwrap()
    .replace(
        "<cbc:PayableAmount currencyID=\"NOK\">801.78</cbc:PayableAmount>",
        "<cbc:PayableAmount currencyID=\"NOK\">1.78</cbc:PayableAmount>",
    );
    let name = "a;b,\"c\"\n@d.xml";
    d.drop_file("acme", name, xml.as_bytes());
    let start = Instant::now();
    while server.messages().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(60), "no digest");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    d.stop().await;
    let m = &server.messages()[0];
    let csv = &m.attachments[0].content;
    let rows = python_csv(csv);
    assert_eq!(rows.len(), 2, "{csv:?}");
    assert_eq!(rows[0].len(), 9, "{csv:?}");
    let row = &rows[1];
    assert_eq!(row.len(), 9, "{csv:?}");
    assert_eq!(row[1], name, "{csv:?}");
    assert_eq!(row[3], format!("'{number}"), "{csv:?}");
    for cell in row {
        assert!(
            !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "formula cell {cell:?}"
        );
    }
}
