//! Flows `In` of the partner API (issue 17) against a real `quai run`,
//! with a real HTTP client: a partner whose only channel is the API gets
//! the invoices routed to it and the statuses relayed to it as flows `In`
//! — found with `POST /v1/flows/search` (`flowDirection`), downloaded in its
//! syntax (accepted by the official EN 16931 artefacts), announced to its
//! webhook (signed) — and nothing in any outbox; another partner's token
//! gets 404 for them; a SIGKILL during delivery leaves one flow `In` per
//! invoice, not two.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use quai_test_support::oracle::{self, Layer};
use serde_json::{json, Value};

const UBL: &str = include_str!("fixtures/ubl-tc434-example2.xml");
const BUYER: &str = "0009:11111111100011";

/// The official UBL example with its number and the buyer's address set.
fn invoice(number: &str) -> Vec<u8> {
    let (scheme, id) = BUYER.split_once(':').unwrap();
    UBL.replacen(
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `quai run` child: `sup` (the supplier: a drop zone, or the API only)
/// and `buy` (the recipient of BUYER's invoices, in CII, API only).
struct Quai {
    home: tempfile::TempDir,
    config: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Quai {
    fn new(webhook_port: u16, supplier_drops: bool) -> Quai {
        let home = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = home.path().join("quai.toml");
        let sup = if supplier_drops {
            format!(
                "[partner.dropzone]\ninbox = \"{}\"\ncreate = true\n",
                home.path().join("in/sup").display()
            )
        } else {
            String::new()
        };
        std::fs::write(
            &config,
            format!(
                "[http]\nlisten = \"127.0.0.1:{port}\"\n[processing]\nworkers = 2\nlease_seconds = 3\n\
                 [dropzones]\nenabled = false\nstable_seconds = 0\n\
                 [api]\nwebhook_urls = [\"http://127.0.0.1:{webhook_port}/hooks\"]\nwebhook_timeout_seconds = 2\n\
                 [[partner]]\nid = \"sup\"\n{sup}\
                 [[partner]]\nid = \"buy\"\naddresses = [\"{BUYER}\"]\nsyntax = \"cii\"\n"
            ),
        )
        .unwrap();
        Quai {
            home,
            config,
            port,
            child: None,
        }
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_quai"))
            .arg("--config")
            .arg(&self.config)
            .arg("-q")
            .args(args)
            .output()
            .expect("run quai")
    }

    fn token(&self, partner: &str) -> String {
        let out = self.cli(&["token", "create", "--partner", partner, "--json"]);
        assert!(out.status.success(), "{out:?}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["token"].as_str().unwrap().to_owned()
    }

    fn start(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_quai"))
            .args(["run", "--config"])
            .arg(&self.config)
            .env("QUAI_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start quai");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "quai did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    /// Drop a file into the supplier's drop zone (written aside, renamed in).
    fn drop_file(&self, name: &str, bytes: &[u8]) {
        let inbox = self.home().join("in/sup");
        std::fs::create_dir_all(&inbox).unwrap();
        let tmp = self.home().join(format!(".{name}.part"));
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, inbox.join(name)).unwrap();
    }
}

impl Drop for Quai {
    fn drop(&mut self) {
        self.kill9();
    }
}

async fn call(
    q: &Quai,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Vec<u8>) {
    let client = reqwest::Client::new();
    let mut req = client.request(method.parse().unwrap(), q.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.bytes().await.unwrap().to_vec())
}

async fn call_json(
    q: &Quai,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let (code, bytes) = call(q, method, path, token, body).await;
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Every flow `In` of the token's partner matching `where`, page by page
/// (`limit` per page).
async fn search_all(q: &Quai, token: &str, filters: Value, limit: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut body = json!({ "limit": limit, "where": filters });
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let (code, v) = call_json(q, "POST", "/v1/flows/search", Some(token), Some(body)).await;
        assert_eq!(code, 200, "{v}");
        let results = v["results"].as_array().unwrap();
        assert!(results.len() as i64 <= limit, "{v}");
        out.extend(results.iter().cloned());
        match v["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    out
}

/// Wait until the token's partner has `n` flows `In` matching `filters`.
async fn wait_flows_in(q: &Quai, token: &str, filters: Value, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = search_all(q, token, filters.clone(), 100).await;
        if found.len() >= n {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} flows In after 60 s: {found:?}",
            found.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// What the receiver got: each request's head and body.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A minimal HTTP receiver: records each request and answers 200.
fn receiver(listener: TcpListener, got: Received) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            let (head, body) = loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break (String::new(), Vec::new());
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..pos]).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    let mut body = buf[pos + 4..].to_vec();
                    while body.len() < len {
                        let n = s.read(&mut chunk).unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        body.extend_from_slice(&chunk[..n]);
                    }
                    break (head, body);
                }
            };
            got.lock().unwrap().push((head, body));
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn verify_signature(key: &str, head: &str, body: &[u8]) {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let ts = header(head, "Afnor-Signature-Timestamp").unwrap();
    let sig = header(head, "Afnor-Signature").unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&b64.decode(key).unwrap()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&b64.decode(sig).unwrap())
        .expect("signature");
}

/// Nothing was written to an outbox folder for an API-only partner (the
/// default root `$QUAI_HOME/outbound` holds only the outbox of `dropper`,
/// the supplier with a drop zone, if any).
fn assert_no_outbox_files(q: &Quai, dropper: Option<&str>) {
    let root = q.home().join("outbound");
    let files: Vec<PathBuf> = walk(&root)
        .into_iter()
        .filter(|f| dropper.is_none_or(|d| !f.starts_with(root.join(d))))
        .collect();
    assert!(files.is_empty(), "files in an outbox: {files:?}");
    if let Some(d) = dropper {
        // The drop-zone supplier's own answers are there (the check sees them).
        assert!(!walk(&root.join(d)).is_empty(), "no report for {d}");
    }
}

/// `value` validates against the specification's schema `name`, checked
/// by jsonschema-rs in the test venv (with the ReasonCode erratum of
/// docs/api.md read as `anyOf`, as the schemathesis test does).
fn assert_conforms(home: &Path, value: &Value, name: &str) {
    let mut spec: Value =
        serde_json::from_str(include_str!("fixtures/afnor/afnor-flow-service-1.3.0.json")).unwrap();
    let reason = spec["components"]["schemas"]["ReasonCode"]
        .as_object_mut()
        .unwrap();
    let branches = reason.remove("oneOf").expect("the erratum's oneOf");
    reason.insert("anyOf".into(), branches);
    let schema =
        json!({ "$ref": format!("#/components/schemas/{name}"), "components": spec["components"] });
    let schema_path = home.join(format!("schema-{name}.json"));
    let value_path = home.join(format!("value-{name}.json"));
    std::fs::write(&schema_path, schema.to_string()).unwrap();
    std::fs::write(&value_path, value.to_string()).unwrap();
    let python = quai_test_support::venv::python_with(&["jsonschema_rs"]);
    let out = Command::new(python)
        .arg("-c")
        .arg(
            "import json, sys, jsonschema_rs\n\
             schema = json.load(open(sys.argv[1])); value = json.load(open(sys.argv[2]))\n\
             errors = [str(e) for e in jsonschema_rs.validator_for(schema).iter_errors(value)]\n\
             print('\\n'.join(errors)); sys.exit(1 if errors else 0)",
        )
        .arg(&schema_path)
        .arg(&value_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} does not conform: {}{} — {value}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoice_for_an_api_only_recipient_is_its_flow_in() {
    let hook_port = free_port();
    let got: Received = Arc::new(Mutex::new(Vec::new()));
    receiver(
        TcpListener::bind(("127.0.0.1", hook_port)).unwrap(),
        got.clone(),
    );
    let mut q = Quai::new(hook_port, true);
    let buy = q.token("buy");
    let sup = q.token("sup");
    // check-config says who is reached only through the API.
    let out = q.cli(&["check-config", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let checked: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(checked["api_only_partners"], json!(["buy"]), "{checked}");
    q.start();
    let (code, hook) = call_json(
        &q,
        "POST",
        "/v1/webhooks",
        Some(&buy),
        Some(json!({
            "callbackUrl": format!("http://127.0.0.1:{hook_port}/hooks/buy"),
            "flowDirection": "In",
        })),
    )
    .await;
    assert_eq!(code, 201, "{hook}");
    let key = hook["signingKey"].as_str().unwrap().to_owned();
    // A subscription to deposits only (`Out`) is not told of flows `In`.
    let (code, v) = call_json(
        &q,
        "POST",
        "/v1/webhooks",
        Some(&buy),
        Some(json!({
            "callbackUrl": format!("http://127.0.0.1:{hook_port}/hooks/out-only"),
            "flowDirection": "Out",
        })),
    )
    .await;
    assert_eq!(code, 201, "{v}");

    q.drop_file("two.xml", &invoice("IN-1"));
    let flows = wait_flows_in(&q, &buy, json!({ "flowDirection": ["In"] }), 1).await;
    assert_eq!(flows.len(), 1, "{flows:?}");
    let flow = &flows[0];
    assert_eq!(flow["flowDirection"], "In");
    assert_eq!(flow["flowType"], "SupplierInvoice");
    assert_eq!(flow["flowSyntax"], "CII");
    let id = flow["flowId"].as_str().unwrap().to_owned();
    // `Out` only: the recipient deposited nothing.
    assert!(
        search_all(&q, &buy, json!({ "flowDirection": ["Out"] }), 10)
            .await
            .is_empty()
    );

    // Metadata, then the file in the recipient's syntax, valid.
    let (code, meta) = call_json(&q, "GET", &format!("/v1/flows/{id}"), Some(&buy), None).await;
    assert_eq!(code, 200, "{meta}");
    assert_eq!(meta["flowId"], json!(id));
    assert_conforms(q.home(), &meta, "Flow");
    let (code, page) = call_json(
        &q,
        "POST",
        "/v1/flows/search",
        Some(&buy),
        Some(json!({ "limit": 5, "where": { "flowDirection": ["In"] } })),
    )
    .await;
    assert_eq!(code, 200, "{page}");
    assert_conforms(q.home(), &page, "SearchFlowContent");
    let (code, file) = call(
        &q,
        "GET",
        &format!("/v1/flows/{id}?docType=Original"),
        Some(&buy),
        None,
    )
    .await;
    assert_eq!(code, 200);
    let text = String::from_utf8(file.clone()).unwrap();
    assert!(text.contains("CrossIndustryInvoice"), "{text}");
    assert!(text.contains("IN-1"), "{text}");
    let judged = q.home().join("judged");
    std::fs::create_dir_all(&judged).unwrap();
    let path = judged.join("in-1.cii.xml");
    std::fs::write(&path, &file).unwrap();
    for j in oracle::judge(&[&path], &[Layer::En16931, Layer::Xsd]) {
        assert!(j.accepted(), "refused: {:?} {:?}", j.fatal, j.xsd);
    }

    // Another partner's token: 404 on the flow `In`, and it finds none.
    for path in [
        format!("/v1/flows/{id}"),
        format!("/v1/flows/{id}?docType=Original"),
    ] {
        let (code, _) = call(&q, "GET", &path, Some(&sup), None).await;
        assert_eq!(code, 404, "{path}");
    }
    assert!(search_all(&q, &sup, json!({ "flowDirection": ["In"] }), 10)
        .await
        .iter()
        .all(|f| f["flowType"] != "SupplierInvoice"));

    // The webhook: one signed post of the flow `In`.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let posts = got.lock().unwrap().clone();
        if let Some((head, body)) = posts.iter().find(|(h, _)| h.contains("/hooks/buy")) {
            verify_signature(&key, head, body);
            let posted: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(posted["flowId"], json!(id));
            assert_eq!(posted["flowDirection"], "In");
            break;
        }
        assert!(Instant::now() < deadline, "no webhook post: {posts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let posts = got.lock().unwrap().clone();
    assert_eq!(
        posts
            .iter()
            .filter(|(h, _)| h.contains("/hooks/buy"))
            .count(),
        1,
        "posted more than once"
    );
    assert!(
        !posts.iter().any(|(h, _)| h.contains("/hooks/out-only")),
        "an Out subscription was told of a flow In"
    );
    assert_no_outbox_files(&q, Some("sup"));

    // Retention: once past `retention_days` (here 0) and announced, the
    // flow `In` and its file go with `quai purge`.
    let mut config = std::fs::read_to_string(&q.config).unwrap();
    config.push_str("[spool]\nretention_days = 0\n");
    std::fs::write(&q.config, config).unwrap();
    // The receiver has the post; the spool records it delivered right after.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = q.cli(&["purge", "--dry-run", "--json"]);
        assert!(out.status.success(), "{out:?}");
        let would: Value = serde_json::from_slice(&out.stdout).unwrap();
        if would["inbox_flows"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "still owed a post: {would}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    q.kill9();
    let inbox_files = |q: &Quai| {
        walk(&q.home().join("api-inbox"))
            .into_iter()
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .count()
    };
    assert_eq!(inbox_files(&q), 1);
    let out = q.cli(&["purge", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let purged: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(purged["inbox_flows"], 1, "{purged}");
    assert_eq!(purged["inbox_deleted"], 1, "{purged}");
    assert_eq!(inbox_files(&q), 0);
    q.start();
    let (code, _) = call(&q, "GET", &format!("/v1/flows/{id}"), Some(&buy), None).await;
    assert_eq!(code, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_only_supplier_gets_its_status_relays_as_flows_in() {
    let mut q = Quai::new(free_port(), false);
    let sup = q.token("sup");
    let buy = q.token("buy");
    q.start();
    let body = {
        let boundary = "quai-test-boundary-in";
        let info = json!({ "name": "inv.xml", "flowSyntax": "UBL", "processingRule": "B2B" });
        let mut b = Vec::new();
        write!(
            b,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"flowInfo\"\r\n\r\n{info}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"inv.xml\"\r\n\r\n"
        )
        .unwrap();
        b.extend_from_slice(&invoice("RELAY-1"));
        write!(b, "\r\n--{boundary}--\r\n").unwrap();
        (boundary, b)
    };
    let resp = reqwest::Client::new()
        .post(q.url("/v1/flows"))
        .bearer_auth(&sup)
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={}", body.0),
        )
        .body(body.1)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);

    // The recipient's invoice, and the supplier's 201 and 203.
    wait_flows_in(&q, &buy, json!({ "flowDirection": ["In"] }), 1).await;
    let relays = wait_flows_in(
        &q,
        &sup,
        json!({ "flowDirection": ["In"], "flowType": ["CustomerInvoiceLC"] }),
        2,
    )
    .await;
    let mut codes = Vec::new();
    for r in &relays {
        assert_eq!(r["flowSyntax"], "CDAR", "{r}");
        let id = r["flowId"].as_str().unwrap();
        let (code, file) = call(
            &q,
            "GET",
            &format!("/v1/flows/{id}?docType=Original"),
            Some(&sup),
            None,
        )
        .await;
        assert_eq!(code, 200);
        let text = String::from_utf8(file).unwrap();
        assert!(text.contains("RELAY-1"), "{text}");
        for c in ["201", "203"] {
            if text.contains(&format!(">{c}<")) {
                codes.push(c);
            }
        }
        // The recipient does not see the supplier's flows `In`.
        let (code, _) = call(&q, "GET", &format!("/v1/flows/{id}"), Some(&buy), None).await;
        assert_eq!(code, 404);
    }
    codes.sort();
    assert_eq!(codes, ["201", "203"], "{relays:?}");
    assert_no_outbox_files(&q, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_delivery_leaves_one_flow_in_per_invoice() {
    const N: usize = 30;
    let mut q = Quai::new(free_port(), true);
    let buy = q.token("buy");
    q.start();
    for i in 0..N {
        q.drop_file(&format!("k{i}.xml"), &invoice(&format!("KILL-{i}")));
    }
    // Killed as soon as the first flows `In` are there, twice.
    let spool_url = format!("sqlite://{}", q.home().join("spool.db").display());
    let spool = quai_spool::Spool::connect(&spool_url, "test")
        .await
        .unwrap();
    let mut last = 0;
    for _ in 0..2 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let n = inbox_rows(&spool).await;
            if n > last && n < N {
                last = n;
                break;
            }
            assert!(n < N, "all delivered before the kill");
            assert!(Instant::now() < deadline, "no flow In before the kill");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        q.kill9();
        q.start();
    }
    let flows = wait_flows_in(&q, &buy, json!({ "flowDirection": ["In"] }), N).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let flows_after = search_all(&q, &buy, json!({ "flowDirection": ["In"] }), 7).await;
    assert_eq!(flows_after.len(), N, "{flows:?}");
    let mut names: Vec<&str> = flows_after
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), N, "a name twice: {names:?}");
    assert_no_outbox_files(&q, Some("sup"));
}

/// Flows `In` of `buy` registered, read from the spool directly.
async fn inbox_rows(spool: &quai_spool::Spool) -> usize {
    let search = quai_spool::api::InboxSearch {
        limit: 10_000,
        ..Default::default()
    };
    spool
        .search_inbox_flows("buy", &search)
        .await
        .map(|v| v.len())
        .unwrap_or(0)
}
