//! `GET /openapi.json` against the live ops listener: the document is
//! behind the operators' token, every path it describes is served and
//! answers 200 with a body its schema accepts (checked by `jsonschema_rs`
//! of the test venv, which schemathesis brings; not by hand), and
//! schemathesis, generating requests
//! from the document, finds no answer that breaks it (status codes,
//! content types, bodies). That the router serves no `/api` route the
//! document lacks is the unit test of `http::openapi` (both lists are one).

mod support;

use std::process::Command;

use quai::http;
use serde_json::{json, Value};

use support::http::*;

const TOKEN: &str = "openapi-test-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_describes_the_live_api_and_its_answers_conform() {
    let home = tempfile::tempdir().unwrap();
    let mut config = config_at(home.path());
    let token_file = home.path().join("ops.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    config.http_token_file = Some(token_file);
    standard_flows(&config).await;
    let daemon = daemon_for(config).await;
    let s = start(home, daemon, http::serve).await;
    let auth = format!("Bearer {TOKEN}");
    let headers = [("authorization", auth.as_str())];

    // Behind the same token as the rest of the ops API.
    let r = get(s.addr, "/openapi.json", &[]).await;
    assert_eq!(r.status, 401);
    let r = get(s.addr, "/openapi.json", &headers).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths: Vec<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(paths.len(), 10, "{paths:?}");

    // Real values for the path and query parameters.
    let listed = get(s.addr, "/api/invoices?partner=acme", &headers).await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    let accepted = listed.json()["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["verdict"] == "accepted")
        .cloned()
        .expect("acme's accepted invoice");
    let (flow, index) = (accepted["flow_id"].clone(), accepted["doc_index"].clone());
    let by_number = format!(
        "?number={}&seller={}",
        accepted["number"].as_str().unwrap(),
        accepted["seller_id"].as_str().unwrap()
    );

    // Every documented path answers 200 with what its schema describes.
    let mut samples = Vec::new();
    for path in &paths {
        let mut url = path
            .replace("{id}", &flow.to_string())
            .replace("{flow}", &flow.to_string())
            .replace("{index}", &index.to_string());
        match path.as_str() {
            "/api/invoices" => url.push_str("?partner=acme"),
            "/api/invoices/by-number" => url.push_str(&by_number),
            _ => {}
        }
        let r = get(s.addr, &url, &headers).await;
        assert_eq!(r.status, 200, "{url}: {}", r.text());
        let body = r.json();
        if path == "/api/invoices/by-number" {
            assert_eq!(body["invoices"].as_array().map(Vec::len), Some(1), "{body}");
        }
        samples.push(json!({ "path": path, "body": body }));
    }
    let checked = validate_with_jsonschema(&doc, &samples, s.home.path());
    assert_eq!(checked, paths.len());

    // schemathesis: generated requests, every answer checked against the
    // document.
    let spec_path = s.home.path().join("openapi.json");
    std::fs::write(&spec_path, doc.to_string()).unwrap();
    let url = format!("http://{}", s.addr);
    let cwd = s.home.path().to_path_buf();
    let (passed, text) = tokio::task::spawn_blocking(move || {
        quai_test_support::venv::schemathesis(
            &spec_path,
            &url,
            TOKEN,
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            25,
            18,
            &cwd,
        )
    })
    .await
    .unwrap();
    assert!(passed, "schemathesis found failures:\n{text}");
    assert!(
        text.contains("Tested: 10"),
        "not every operation was tested:\n{text}"
    );
    s.shutdown().await;
}

/// Validate each sample's body against the 200 schema of its path in
/// `doc` with the venv's `jsonschema_rs`; returns how many were checked.
fn validate_with_jsonschema(doc: &Value, samples: &[Value], dir: &std::path::Path) -> usize {
    let python = quai_test_support::venv::python_with(&["jsonschema_rs"]);
    let doc_path = dir.join("doc.json");
    let samples_path = dir.join("samples.json");
    std::fs::write(&doc_path, doc.to_string()).unwrap();
    std::fs::write(&samples_path, Value::from(samples.to_vec()).to_string()).unwrap();
    let script = r#"
import json, sys, jsonschema_rs
doc = json.load(open(sys.argv[1]))
samples = json.load(open(sys.argv[2]))
bad = []
for s in samples:
    op = doc["paths"][s["path"]]["get"]
    schema = dict(op["responses"]["200"]["content"]["application/json"]["schema"])
    schema["components"] = doc["components"]
    v = jsonschema_rs.validator_for(schema)
    errors = [str(e) for e in v.iter_errors(s["body"])]
    if errors:
        bad.append((s["path"], errors[:5]))
if bad:
    print(json.dumps(bad, indent=1))
    sys.exit(1)
print(len(samples))
"#;
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&doc_path)
        .arg(&samples_path)
        .output()
        .expect("run python");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "answers that break the document:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.trim().parse().expect("a count")
}
