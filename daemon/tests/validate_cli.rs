//! `quai validate --json`, the real binary: per invoice the file, entry,
//! syntax, profile, invoice number, verdict and violations (rule, term,
//! severity, message); exit 0 when every invoice is accepted, 1 when one is
//! rejected. The shape is asserted key by key, so a change to it fails here.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Run `quai validate --json FILES...` in a throwaway home; (exit code, JSON).
fn validate(home: &Path, files: &[&Path]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_quai"))
        .env("QUAI_HOME", home)
        .env_remove("QUAI_CONFIG")
        .current_dir(home)
        .arg("validate")
        .arg("--json")
        .args(files)
        .output()
        .expect("run quai");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().expect("exit code"), json)
}

const INVOICE_KEYS: &[&str] = &[
    "entry",
    "file",
    "invoice_number",
    "profile",
    "syntax",
    "verdict",
    "violations",
];
const VIOLATION_KEYS: &[&str] = &["message", "rule", "severity", "term"];
/// Present when the reader knows where the finding is (structure and
/// syntax findings): the node's XPath, its line and column.
const VIOLATION_PLACE_KEYS: &[&str] = &["column", "line", "location"];

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

/// Every invoice and violation has exactly the documented keys and types.
fn assert_shape(json: &Value) -> &Vec<Value> {
    let invoices = json.as_array().expect("a JSON array of invoices");
    for inv in invoices {
        assert_eq!(keys(inv), INVOICE_KEYS, "{inv}");
        assert!(inv["file"].is_string() && inv["entry"].is_string(), "{inv}");
        for k in ["syntax", "profile", "invoice_number"] {
            assert!(inv[k].is_string() || inv[k].is_null(), "{k}: {inv}");
        }
        let verdict = inv["verdict"].as_str().expect("verdict");
        assert!(verdict == "accepted" || verdict == "rejected", "{inv}");
        for v in inv["violations"].as_array().expect("violations") {
            let mut required = keys(v);
            required.retain(|k| !VIOLATION_PLACE_KEYS.contains(k));
            assert_eq!(required, VIOLATION_KEYS, "{v}");
            if v.get("location").is_some() {
                assert!(
                    v["location"].as_str().is_some_and(|l| l.starts_with('/')),
                    "{v}"
                );
                assert!(v["line"].as_u64().is_some_and(|n| n > 0), "{v}");
                assert!(v["column"].as_u64().is_some_and(|n| n > 0), "{v}");
            }
            for k in VIOLATION_KEYS {
                assert!(
                    v[*k].as_str().is_some_and(|s| !s.is_empty()),
                    "{k} empty: {v}"
                );
            }
            let sev = v["severity"].as_str().unwrap_or("");
            assert!(sev == "fatal" || sev == "warning", "{v}");
        }
        // A rejected invoice says why; an accepted one has no fatal error.
        let fatal = inv["violations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["severity"] == "fatal");
        assert_eq!(fatal, verdict == "rejected", "{inv}");
    }
    invoices
}

/// The official example 2 without the buyer's name (BT-44): BR-07.
fn without_buyer_name() -> Vec<u8> {
    let text = std::fs::read_to_string(fixture("ubl-tc434-example2.xml")).unwrap();
    let name = "<cbc:RegistrationName>The Buyercompany</cbc:RegistrationName>";
    assert!(text.contains(name), "fixture changed");
    text.replace(name, "").into_bytes()
}

#[test]
fn a_valid_ubl_invoice_is_accepted_with_exit_0() {
    let home = tempfile::tempdir().unwrap();
    let file = fixture("ubl-tc434-example2.xml");
    let (code, json) = validate(home.path(), &[&file]);
    let invoices = assert_shape(&json);
    assert_eq!(invoices.len(), 1, "{json}");
    let inv = &invoices[0];
    assert_eq!(inv["file"], file.display().to_string());
    assert_eq!(inv["entry"], "ubl-tc434-example2.xml");
    assert_eq!(inv["syntax"], "ubl");
    assert_eq!(inv["profile"], "EN16931");
    assert_eq!(inv["invoice_number"], "TOSL108");
    assert_eq!(inv["verdict"], "accepted");
    assert_eq!(code, 0, "{json}");
}

#[test]
fn an_invalid_invoice_is_rejected_with_its_rule_and_exit_1() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("no-buyer-name.xml");
    std::fs::write(&file, without_buyer_name()).unwrap();
    let (code, json) = validate(home.path(), &[&file]);
    let invoices = assert_shape(&json);
    assert_eq!(invoices.len(), 1, "{json}");
    let inv = &invoices[0];
    assert_eq!(inv["verdict"], "rejected");
    assert_eq!(inv["invoice_number"], "TOSL108");
    let violations = inv["violations"].as_array().unwrap();
    let br07 = violations
        .iter()
        .find(|v| v["rule"] == "BR-07")
        .unwrap_or_else(|| panic!("no BR-07 in {json}"));
    assert_eq!(br07["term"], "BT-44");
    assert_eq!(br07["severity"], "fatal");
    // Only the mistake made: nothing else is fatal.
    let fatal: Vec<&str> = violations
        .iter()
        .filter(|v| v["severity"] == "fatal")
        .filter_map(|v| v["rule"].as_str())
        .collect();
    assert_eq!(fatal, ["BR-07"], "{json}");
    assert_eq!(code, 1);
}

#[test]
fn a_structure_finding_gives_its_xpath_and_line() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("unknown-element.xml");
    let doc = std::fs::read_to_string(fixture("ubl-tc434-example2.xml")).unwrap();
    let doc = doc.replacen(
        "<cbc:ID>TOSL108</cbc:ID>",
        "<cbc:ID>TOSL108</cbc:ID>\n<cbc:Unknown>1</cbc:Unknown>",
        1,
    );
    let line = doc
        .lines()
        .position(|l| l.contains("cbc:Unknown"))
        .expect("inserted")
        + 1;
    std::fs::write(&file, &doc).unwrap();
    let (code, json) = validate(home.path(), &[&file]);
    let invoices = assert_shape(&json);
    let xsd = invoices[0]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "XSD")
        .unwrap_or_else(|| panic!("no XSD finding in {json}"));
    // An unknown element has no declaration to take its prefix from.
    assert_eq!(xsd["location"], "/Invoice/Unknown", "{xsd}");
    assert_eq!(xsd["line"], line as u64, "{xsd}");
    assert_eq!(xsd["column"], 1, "{xsd}");
    assert_eq!(code, 1);
    // The text output shows the line.
    let out = Command::new(env!("CARGO_BIN_EXE_quai"))
        .env("QUAI_HOME", home.path())
        .env_remove("QUAI_CONFIG")
        .current_dir(home.path())
        .arg("validate")
        .arg(&file)
        .output()
        .expect("run quai");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("line {line}")), "{text}");
}

/// `[validation] profiles`: by default the profiles the French reform
/// accepts, so a Factur-X MINIMUM file is refused with the reason; a
/// configuration that lists MINIMUM takes it.
#[test]
fn a_factur_x_minimum_file_is_refused_unless_its_profile_is_configured() {
    let minimum = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mappings/tests/fixtures/facturx/akretion-factur-x/factur-x-minimum.xml");
    let home = tempfile::tempdir().unwrap();
    let (code, json) = validate(home.path(), &[&minimum]);
    let invoices = assert_shape(&json);
    let refused = invoices[0]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "PROFILE")
        .unwrap_or_else(|| panic!("no PROFILE finding in {json}"));
    assert_eq!(refused["severity"], "fatal", "{refused}");
    assert_eq!(refused["term"], "BT-24", "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains("MINIMUM file is not a complete invoice"),
        "{message}"
    );
    assert!(message.contains("BASIC, EN 16931 or EXTENDED"), "{message}");
    assert_eq!(invoices[0]["verdict"], "rejected");
    assert_eq!(code, 1);

    let config = home.path().join("quai.toml");
    std::fs::write(
        &config,
        "[validation]\nprofiles = [\"minimum\", \"basic\", \"en16931\", \"extended\"]\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_quai"))
        .env("QUAI_HOME", home.path())
        .env("QUAI_CONFIG", &config)
        .current_dir(home.path())
        .arg("validate")
        .arg("--json")
        .arg(&minimum)
        .output()
        .expect("run quai");
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let rules: Vec<&str> = json[0]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["rule"].as_str())
        .collect();
    assert!(!rules.contains(&"PROFILE"), "{json}");
    assert_eq!(json[0]["verdict"], "accepted", "{json}");
}

#[test]
fn a_zip_of_several_invoices_reports_each_one() {
    let home = tempfile::tempdir().unwrap();
    let zip_path = home.path().join("batch.zip");
    {
        let mut w = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let entries: [(&str, Vec<u8>); 3] = [
            (
                "a-ubl.xml",
                std::fs::read(fixture("ubl-tc434-example2.xml")).unwrap(),
            ),
            (
                "b-cii.xml",
                std::fs::read(fixture("CII_example1.xml")).unwrap(),
            ),
            ("c-rejected.xml", without_buyer_name()),
        ];
        for (name, data) in entries {
            w.start_file(name, opts).unwrap();
            w.write_all(&data).unwrap();
        }
        w.finish().unwrap();
    }
    let (code, json) = validate(home.path(), &[&zip_path]);
    let invoices = assert_shape(&json);
    let got: Vec<(String, String, String, String)> = invoices
        .iter()
        .map(|i| {
            let s = |k: &str| i[k].as_str().unwrap_or("").to_string();
            (s("entry"), s("syntax"), s("invoice_number"), s("verdict"))
        })
        .collect();
    let want = |e: &str, s: &str, n: &str, v: &str| {
        (e.to_string(), s.to_string(), n.to_string(), v.to_string())
    };
    // Entries are named inside the archive; the order is the archive's.
    assert_eq!(got.len(), 3, "{json}");
    for (g, w) in got.iter().zip([
        want("a-ubl.xml", "ubl", "TOSL108", "accepted"),
        want("b-cii.xml", "cii", "12115118", "accepted"),
        want("c-rejected.xml", "ubl", "TOSL108", "rejected"),
    ]) {
        assert!(g.0.ends_with(&w.0), "{g:?} vs {w:?}");
        assert_eq!((&g.1, &g.2, &g.3), (&w.1, &w.2, &w.3), "{json}");
    }
    for inv in invoices {
        assert_eq!(inv["file"], zip_path.display().to_string());
    }
    assert_eq!(code, 1, "one rejected invoice in the zip");
}

#[test]
fn a_file_that_is_no_invoice_is_rejected_as_a_flow() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("notes.txt");
    std::fs::write(&file, "this is not an invoice\n").unwrap();
    let (code, json) = validate(home.path(), &[&file]);
    let invoices = assert_shape(&json);
    assert_eq!(invoices.len(), 1, "{json}");
    let v = &invoices[0]["violations"][0];
    assert_eq!(v["rule"], "IRR_TYPE_F", "{json}");
    assert_eq!(invoices[0]["verdict"], "rejected");
    assert_eq!(code, 1);
}

/// `quai validate --layer fr-ctc`: the French CTC rules on top of EN 16931,
/// with their official ids; a French invoice passes, a plain EN 16931 one
/// lacks the French mentions.
#[test]
fn the_french_ctc_layer_is_applied_on_request() {
    let home = tempfile::tempdir().unwrap();
    let french = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mappings/tests/fixtures/ubl/akretion-factur-x/ubl-21-en16931.xml");
    let plain = fixture("ubl-tc434-example2.xml");
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_quai"))
            .env("QUAI_HOME", home.path())
            .env_remove("QUAI_CONFIG")
            .current_dir(home.path())
            .arg("validate")
            .arg("--json")
            .args(extra)
            .arg(&french)
            .arg(&plain)
            .output()
            .expect("run quai");
        let json: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code(), json)
    };
    let rules = |json: &Value, i: usize| -> Vec<String> {
        json[i]["violations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["rule"].as_str().unwrap().to_string())
            .filter(|r| r.starts_with("BR-FR"))
            .collect()
    };
    let (_, without) = run(&[]);
    assert!(rules(&without, 1).is_empty(), "{without}");
    let (code, with) = run(&["--layer", "fr-ctc"]);
    assert_shape(&with);
    assert!(rules(&with, 0).is_empty(), "{with}");
    let plain_rules = rules(&with, 1);
    for id in [
        "BR-FR-05_BT-22-1",
        "BR-FR-05_BT-22-2",
        "BR-FR-05_BT-22-3",
        "BR-FR-08_BT-23",
    ] {
        assert!(
            plain_rules.iter().any(|r| r == id),
            "{id} in {plain_rules:?}"
        );
    }
    assert_eq!(with[1]["verdict"], "rejected");
    assert_eq!(code, Some(1));
    let (code, _) = run(&["--layer", "nope"]);
    assert_eq!(code, Some(2));
}
