//! The partner API (AFNOR Flow Service, issue 17) against a real `quai
//! run`, with a real HTTP client (reqwest): deposits, repeats (same file,
//! same tracking id), oversize, wrong and missing tokens, another
//! partner's token on every route (404), search paging, nothing in the
//! drop-zone outbox, webhooks to a local receiver that is down then up
//! (posted once, signature checked), and `kill -9` right after the answer
//! and right before it.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const UBL: &str = include_str!("fixtures/ubl-tc434-example2.xml");

fn ubl(number: &str) -> Vec<u8> {
    UBL.replacen(
        "<cbc:ID>TOSL108</cbc:ID>",
        &format!("<cbc:ID>{number}</cbc:ID>"),
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

/// A `quai run` child with its home, its port and two partners' tokens.
struct Quai {
    home: tempfile::TempDir,
    config: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Quai {
    fn new(webhook_port: u16) -> Quai {
        let home = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = home.path().join("quai.toml");
        std::fs::write(
            &config,
            format!(
                "[http]\nlisten = \"127.0.0.1:{port}\"\n[processing]\nworkers = 2\nlease_seconds = 3\n\
                 [api]\nwebhook_urls = [\"http://127.0.0.1:{webhook_port}/hooks\"]\nwebhook_timeout_seconds = 2\n\
                 [[partner]]\nid = \"acme\"\n\
                 [[partner]]\nid = \"gamma\"\nlanguage = \"fr\"\n\
                 [[partner]]\nid = \"beta\"\n[partner.limits]\nmax_flow_bytes = 4096\n"
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
}

impl Drop for Quai {
    fn drop(&mut self) {
        self.kill9();
    }
}

const BOUNDARY: &str = "quai-test-boundary-7d1f";

fn multipart(flow_info: &Value, file: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    write!(
        b,
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"flowInfo\"\r\nContent-Type: application/json\r\n\r\n{flow_info}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"inv.xml\"\r\nContent-Type: application/xml\r\n\r\n"
    )
    .unwrap();
    b.extend_from_slice(file);
    write!(b, "\r\n--{BOUNDARY}--\r\n").unwrap();
    b
}

async fn deposit(q: &Quai, token: &str, info: Value, file: &[u8]) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(q.url("/v1/flows"))
        .bearer_auth(token)
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart(&info, file))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn call(
    q: &Quai,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
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
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn wait_status(q: &Quai, token: &str, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, v) = call(q, "GET", &format!("/v1/flows/{id}"), Some(token), None).await;
        assert_eq!(code, 200, "{v}");
        if v["acknowledgement"]["status"] == want {
            return v;
        }
        assert!(Instant::now() < deadline, "flow {id} never {want}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn info(name: &str, tracking: Option<&str>) -> Value {
    let mut v = json!({ "name": name, "flowSyntax": "UBL", "processingRule": "B2B" });
    if let Some(t) = tracking {
        v["trackingId"] = json!(t);
    }
    v
}

fn api_flow_count(q: &Quai) -> usize {
    let out = q.cli(&["flows", "--json", "--limit", "1000"]);
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposits_repeats_limits_tokens_rooms_and_paging() {
    let mut q = Quai::new(free_port());
    let acme = q.token("acme");
    let beta = q.token("beta");
    q.start();

    // Deposit: 202 with the FullFlowInfo, then processed: Ok.
    let (code, first) = deposit(&q, &acme, info("inv-1.xml", Some("T-1")), &ubl("API-1")).await;
    assert_eq!(code, 202, "{first}");
    let id = first["flowId"].as_str().unwrap().to_owned();
    assert_eq!(first["trackingId"], "T-1");
    assert_eq!(first["flowSyntax"], "UBL");
    assert_eq!(first["sha256"].as_str().unwrap().len(), 64);
    let done = wait_status(&q, &acme, &id, "Ok").await;
    assert_eq!(done["flowDirection"], "Out");
    assert_eq!(done["processingRuleSource"], "Input");

    // The same file again, and the same tracking id with other bytes:
    // the original flow, nothing registered.
    let (code, again) = deposit(&q, &acme, info("inv-1.xml", None), &ubl("API-1")).await;
    assert_eq!((code, again["flowId"].as_str()), (202, Some(id.as_str())));
    let (code, again) = deposit(&q, &acme, info("other.xml", Some("T-1")), &ubl("API-X")).await;
    assert_eq!((code, again["flowId"].as_str()), (202, Some(id.as_str())));
    assert_eq!(api_flow_count(&q), 1);

    // The original file comes back as deposited.
    let resp = reqwest::Client::new()
        .get(q.url(&format!("/v1/flows/{id}?docType=Original")))
        .bearer_auth(&acme)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp
        .headers()
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("attachment;filename="));
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        ubl("API-1").as_slice()
    );

    // Oversize: beta's max_flow_bytes is 4096; nothing registered.
    let (code, v) = deposit(&q, &beta, info("big.xml", None), &ubl("API-BIG")).await;
    assert_eq!(code, 413, "{v}");
    assert_eq!(v["errorCode"], "FILE_SIZE_EXCEEDED");
    assert_eq!(api_flow_count(&q), 1);

    // Bad requests are the specification's errors.
    let (code, v) = deposit(&q, &acme, json!({ "name": "x.xml" }), b"<x/>").await;
    assert_eq!(
        (code, v["errorCode"].as_str()),
        (400, Some("MISSING_REQUIRED_FIELD"))
    );
    let (code, v) = deposit(
        &q,
        &acme,
        json!({ "name": "x.xml", "flowSyntax": "PDF" }),
        b"<x/>",
    )
    .await;
    assert_eq!(code, 400, "{v}");

    // A webhook of acme's, to test the rooms on its id too.
    // Not under [api] webhook_urls: refused.
    let (code, _) = call(
        &q,
        "POST",
        "/v1/webhooks",
        Some(&acme),
        Some(json!({ "callbackUrl": "http://127.0.0.1:9/elsewhere" })),
    )
    .await;
    assert_eq!(code, 400);
    let allowed = q_allowed(&q);
    let (code, hook) = call(
        &q,
        "POST",
        "/v1/webhooks",
        Some(&acme),
        Some(json!({ "callbackUrl": format!("{allowed}/acme") })),
    )
    .await;
    assert_eq!(code, 201, "{hook}");
    let hook_id = hook["webhookId"].as_str().unwrap().to_owned();
    assert!(hook["signingKey"].as_str().unwrap().len() >= 40);

    // Wrong or no token: 401 on every route but the healthcheck.
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/v1/flows/{id}"), None),
        ("GET", format!("/v1/flows/{id}?docType=Original"), None),
        (
            "POST",
            "/v1/flows/search".into(),
            Some(json!({ "where": { "ackStatus": "Ok" } })),
        ),
        ("GET", "/v1/webhooks".into(), None),
        (
            "POST",
            "/v1/webhooks".into(),
            Some(json!({ "callbackUrl": format!("{allowed}/x") })),
        ),
        ("DELETE", format!("/v1/webhooks/{hook_id}"), None),
        ("POST", "/v1/flows".into(), None),
    ];
    let wrong = format!("{}x", &acme[..acme.len() - 1]);
    for (m, path, body) in &routes {
        for token in [None, Some("quai_0000"), Some(wrong.as_str())] {
            let (code, v) = call(&q, m, path, token, body.clone()).await;
            assert_eq!(code, 401, "{m} {path} with {token:?}: {v}");
            assert!(v["errorCode"].is_string(), "{v}");
        }
    }
    let (code, _) = call(&q, "GET", "/v1/healthcheck", None, None).await;
    assert_eq!(code, 200);

    // Another partner's token: acme's flow and webhook do not exist for beta.
    for doc in ["", "?docType=Original", "?docType=Metadata"] {
        let (code, v) = call(
            &q,
            "GET",
            &format!("/v1/flows/{id}{doc}"),
            Some(&beta),
            None,
        )
        .await;
        assert_eq!(code, 404, "{doc}: {v}");
        assert_eq!(v["errorCode"], "MISSING_RESOURCE");
    }
    let (code, v) = call(
        &q,
        "POST",
        "/v1/flows/search",
        Some(&beta),
        Some(json!({ "where": { "trackingId": "T-1" } })),
    )
    .await;
    assert_eq!(
        (code, v["results"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{v}"
    );
    let (code, v) = call(
        &q,
        "POST",
        "/v1/flows/search",
        Some(&beta),
        Some(json!({ "where": { "updatedAfter": "2000-01-01T00:00:00Z" } })),
    )
    .await;
    assert_eq!(
        (code, v["results"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{v}"
    );
    let (code, v) = call(&q, "GET", "/v1/webhooks", Some(&beta), None).await;
    assert_eq!((code, v["count"].as_u64()), (200, Some(0)), "{v}");
    let (code, _) = call(
        &q,
        "DELETE",
        &format!("/v1/webhooks/{hook_id}"),
        Some(&beta),
        None,
    )
    .await;
    assert_eq!(code, 404);
    // Beta depositing acme's bytes and tracking id gets a flow of its own
    // (not acme's): rooms are never shared.
    let small = b"<Invoice/>".to_vec();
    let (code, b1) = deposit(&q, &beta, info("b.xml", Some("T-1")), &small).await;
    assert_eq!(code, 202, "{b1}");
    assert_ne!(b1["flowId"], json!(id));
    // And acme cannot see it.
    let bid = b1["flowId"].as_str().unwrap();
    let (code, _) = call(&q, "GET", &format!("/v1/flows/{bid}"), Some(&acme), None).await;
    assert_eq!(code, 404);
    // Acme still has its webhook; deleting it works once.
    let (code, v) = call(&q, "GET", "/v1/webhooks", Some(&acme), None).await;
    assert_eq!((code, v["count"].as_u64()), (200, Some(1)), "{v}");
    let (code, _) = call(
        &q,
        "DELETE",
        &format!("/v1/webhooks/{hook_id}"),
        Some(&acme),
        None,
    )
    .await;
    assert_eq!(code, 204);
    let (code, _) = call(
        &q,
        "DELETE",
        &format!("/v1/webhooks/{hook_id}"),
        Some(&acme),
        None,
    )
    .await;
    assert_eq!(code, 404);

    // Search paging: 5 more flows, pages of 2 by cursor, every flow once.
    let mut ids = vec![id.clone()];
    for i in 2..=6 {
        let (code, v) = deposit(
            &q,
            &acme,
            info(&format!("inv-{i}.xml"), Some(&format!("T-{i}"))),
            &ubl(&format!("API-{i}")),
        )
        .await;
        assert_eq!(code, 202, "{v}");
        ids.push(v["flowId"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut params = json!({ "limit": 2, "where": { "updatedAfter": "2000-01-01T00:00:00Z" } });
        if let Some(c) = &cursor {
            params["cursor"] = json!(c);
        }
        let (code, v) = call(&q, "POST", "/v1/flows/search", Some(&acme), Some(params)).await;
        assert_eq!(code, 200, "{v}");
        pages += 1;
        let results = v["results"].as_array().unwrap();
        assert!(results.len() <= 2);
        seen.extend(
            results
                .iter()
                .map(|r| r["flowId"].as_str().unwrap().to_owned()),
        );
        match v.get("nextCursor").and_then(Value::as_str) {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(seen, ids);
    assert_eq!(pages, 3);
    let (code, v) = call(
        &q,
        "POST",
        "/v1/flows/search",
        Some(&acme),
        Some(json!({ "where": { "trackingId": "T-4" } })),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(v["results"][0]["flowId"], json!(ids[3]));
    let (code, v) = call(
        &q,
        "POST",
        "/v1/flows/search",
        Some(&acme),
        Some(json!({ "where": {} })),
    )
    .await;
    assert_eq!(code, 400, "{v}");
    let (code, _) = call(
        &q,
        "POST",
        "/v1/flows/search",
        Some(&acme),
        Some(json!({ "cursor": "bm9wZQ", "where": { "ackStatus": "Ok" } })),
    )
    .await;
    assert_eq!(code, 400);

    // Every answer was through the API: nothing in a drop-zone outbox.
    for id in &ids {
        wait_status(&q, &acme, id, "Ok").await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let outbound = q.home().join("outbound");
    let written: Vec<_> = walk(&outbound);
    assert!(written.is_empty(), "written to an outbox: {written:?}");

    // A revoked token is refused at the next request.
    let out = q.cli(&["token", "list", "--json"]);
    let tokens: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&acme),
        "a secret was listed"
    );
    let acme_id = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["partner"] == "acme")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    assert!(q
        .cli(&["token", "revoke", &acme_id.to_string()])
        .status
        .success());
    let (code, _) = call(&q, "GET", &format!("/v1/flows/{id}"), Some(&acme), None).await;
    assert_eq!(code, 401);
}

/// The webhook prefix of a `Quai`'s configuration.
fn q_allowed(q: &Quai) -> String {
    let text = std::fs::read_to_string(&q.config).unwrap();
    let start = text.find("webhook_urls = [\"").unwrap() + "webhook_urls = [\"".len();
    let end = text[start..].find('"').unwrap() + start;
    text[start..end].to_owned()
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

/// A minimal HTTP receiver on `port`: records each request (headers, body)
/// and answers 200.
/// What the receiver got: each request's head and body.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

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

/// A rejected invoice's acknowledgement, read through the API, speaks the
/// depositing partner's `[[partner]] language`, as its reports do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgement_details_are_in_the_partners_language() {
    let mut q = Quai::new(free_port());
    let acme = q.token("acme");
    let gamma = q.token("gamma");
    q.start();
    // BR-CO-16: the amount due no longer follows from the totals.
    let bad = |n: &str| {
        String::from_utf8(ubl(n))
            .unwrap()
            .replacen(
                ">801.78</cbc:PayableAmount>",
                ">801.79</cbc:PayableAmount>",
                1,
            )
            .into_bytes()
    };
    let mut messages = Vec::new();
    for (token, number) in [(&acme, "API-EN"), (&gamma, "API-FR")] {
        let (code, v) = deposit(&q, token, info("bad.xml", None), &bad(number)).await;
        assert_eq!(code, 202, "{v}");
        let id = v["flowId"].as_str().unwrap().to_owned();
        let done = wait_status(&q, token, &id, "Ok").await;
        let details = done["acknowledgement"]["details"].as_array().cloned();
        let detail = details
            .unwrap_or_default()
            .into_iter()
            .find(|d| d["reasonCode"] == "BR-CO-16")
            .unwrap_or_else(|| panic!("no BR-CO-16 detail: {done}"));
        messages.push(detail["reasonMessage"].as_str().unwrap().to_owned());
    }
    assert!(!messages[0].contains("Montant à payer"), "{messages:?}");
    assert!(messages[1].contains("Montant à payer"), "{messages:?}");
    assert!(
        messages[1].contains("801.79"),
        "the value as written: {messages:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_receiver_down_then_up_gets_one_signed_post() {
    let hook_port = free_port();
    let mut q = Quai::new(hook_port);
    let acme = q.token("acme");
    q.start();
    let allowed = q_allowed(&q);
    let (code, hook) = call(
        &q,
        "POST",
        "/v1/webhooks",
        Some(&acme),
        Some(json!({ "callbackUrl": format!("{allowed}/in"), "ackStatus": "Ok" })),
    )
    .await;
    assert_eq!(code, 201, "{hook}");
    let key = hook["signingKey"].as_str().unwrap().to_owned();

    // The receiver is down: the post fails and is kept with its backoff.
    let (code, v) = deposit(&q, &acme, info("hooked.xml", Some("H-1")), &ubl("HOOK-1")).await;
    assert_eq!(code, 202, "{v}");
    let id = v["flowId"].as_str().unwrap().to_owned();
    wait_status(&q, &acme, &id, "Ok").await;
    let spool_url = format!("sqlite://{}", q.home().join("spool.db").display());
    let spool = quai_spool::Spool::connect(&spool_url, "test")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if backed_off(&spool).await {
            break;
        }
        assert!(Instant::now() < deadline, "no failed attempt recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Up: the retry (5 s later) posts it, once.
    let got = Arc::new(Mutex::new(Vec::new()));
    receiver(
        TcpListener::bind(("127.0.0.1", hook_port)).unwrap(),
        got.clone(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the webhook was never posted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(7)).await;
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "posted more than once");
    let (head, body) = &got[0];
    assert!(head.starts_with("POST /hooks/in "), "{head}");
    let ts = header(head, "Afnor-Signature-Timestamp").unwrap();
    let sig = header(head, "Afnor-Signature").unwrap();
    // Checked independently: HMAC-SHA256 over "<timestamp>.<body>".
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&b64.decode(&key).unwrap()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&b64.decode(sig).unwrap())
        .expect("signature");
    let flow: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(flow["flowId"], json!(id));
    assert_eq!(flow["acknowledgement"]["status"], "Ok");
    assert_eq!(spool.webhook_post_counts().await.unwrap().delivered, 1);
}

/// Was the one pending post tried and backed off? (Pending, and not
/// claimable now: its next attempt is in the future.)
async fn backed_off(spool: &quai_spool::Spool) -> bool {
    if spool.webhook_post_counts().await.unwrap().pending != 1 {
        return false;
    }
    let lease = quai_spool::Lease {
        duration: Duration::from_millis(1),
    };
    spool
        .claim_due_webhook_posts(10, lease)
        .await
        .unwrap()
        .is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_after_the_answer_keeps_the_flow_and_before_it_the_retry_counts_once() {
    let mut q = Quai::new(free_port());
    let acme = q.token("acme");
    q.start();

    // Right after the answer: the flow is there after a restart, processed.
    let (code, v) = deposit(&q, &acme, info("k1.xml", Some("K-1")), &ubl("KILL-1")).await;
    assert_eq!(code, 202, "{v}");
    q.kill9();
    let id = v["flowId"].as_str().unwrap().to_owned();
    q.start();
    wait_status(&q, &acme, &id, "Ok").await;

    // Right before it: the body is sent but for its last bytes, then the
    // daemon dies. Nothing may be registered; the client's retry is taken
    // once, and a second retry is the same flow.
    let body = multipart(&info("k2.xml", Some("K-2")), &ubl("KILL-2"));
    let mut s = std::net::TcpStream::connect(("127.0.0.1", q.port)).unwrap();
    write!(
        s,
        "POST /v1/flows HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {acme}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body[..body.len() - 10]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    q.kill9();
    drop(s);
    q.start();
    assert_eq!(
        api_flow_count(&q),
        1,
        "a flow was registered before its answer"
    );
    let (code, r1) = deposit(&q, &acme, info("k2.xml", Some("K-2")), &ubl("KILL-2")).await;
    assert_eq!(code, 202, "{r1}");
    let (code, r2) = deposit(&q, &acme, info("k2.xml", Some("K-2")), &ubl("KILL-2")).await;
    assert_eq!(code, 202);
    assert_eq!(r1["flowId"], r2["flowId"]);
    assert_eq!(api_flow_count(&q), 2);
    wait_status(&q, &acme, r1["flowId"].as_str().unwrap(), "Ok").await;
}

/// Group commit (deposits arriving together share one transaction): 24
/// deposits sent at once, 8 of them the same file and tracking id, 8 the
/// same file without one, 8 distinct. Every one is answered 202; each kind
/// of repeat gets the one flow, the distinct ones a flow each; the repeated
/// flows are processed once (one invoice each), and the answer given is
/// the flow as read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deposits_commit_together_and_repeats_get_one_flow() {
    let mut q = Quai::new(free_port());
    let acme = q.token("acme");
    q.start();
    let q = Arc::new(q);
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (q, acme) = (q.clone(), acme.clone());
        tasks.push(tokio::spawn(async move {
            let (info, file) = match i % 3 {
                0 => (info("same.xml", Some("SAME")), ubl("GROUP-SAME")),
                1 => (info("bytes.xml", None), ubl("GROUP-BYTES")),
                _ => (
                    info(&format!("d{i}.xml"), Some(&format!("D-{i}"))),
                    ubl(&format!("GROUP-{i}")),
                ),
            };
            let (code, v) = deposit(&q, &acme, info, &file).await;
            assert_eq!(code, 202, "{v}");
            (i, v)
        }));
    }
    let mut by_kind: [Vec<Value>; 3] = Default::default();
    for t in tasks {
        let (i, v) = t.await.unwrap();
        by_kind[i % 3].push(v);
    }
    for kind in &by_kind[..2] {
        let first = &kind[0]["flowId"];
        assert!(
            kind.iter().all(|v| v["flowId"] == *first),
            "a repeat got another flow: {kind:?}"
        );
    }
    let mut distinct: Vec<&Value> = by_kind[2].iter().map(|v| &v["flowId"]).collect();
    distinct.sort_by_key(|v| v.as_str().unwrap().parse::<i64>().unwrap());
    distinct.dedup();
    assert_eq!(distinct.len(), 8);
    assert_eq!(api_flow_count(&q), 10, "repeats registered flows");
    for kind in &by_kind {
        for answered in kind {
            let id = answered["flowId"].as_str().unwrap();
            let done = wait_status(&q, &acme, id, "Ok").await;
            for k in [
                "flowId",
                "submittedAt",
                "name",
                "trackingId",
                "flowSyntax",
                "processingRule",
            ] {
                assert_eq!(answered[k], done[k], "{k} answered {answered} read {done}");
            }
        }
    }
    let out = q.cli(&["flows", "--json", "--limit", "1000"]);
    let flows: Value = serde_json::from_slice(&out.stdout).unwrap();
    for f in flows.as_array().unwrap() {
        assert_eq!(f["state"], "processed", "{f}");
        assert_eq!(f["attempts"], 1, "{f}");
        assert_eq!(f["invoices_accepted"], 1, "{f}");
    }
}

/// Conformance by a tool written for it: schemathesis (the test venv)
/// generates requests from the Flow Service's OpenAPI description and
/// checks every response of a live `quai run` against it (status codes,
/// content types, headers, bodies), with a partner's token and flows of
/// its own to find. One erratum is applied to the test's copy of the
/// description (fixtures/afnor/SOURCES.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_conform_to_the_flow_service_description_by_schemathesis() {
    let mut q = Quai::new(free_port());
    let acme = q.token("acme");
    q.start();
    for i in 1..=3 {
        let (code, v) = deposit(
            &q,
            &acme,
            info(&format!("s{i}.xml"), Some(&format!("S-{i}"))),
            &ubl(&format!("SCHEMA-{i}")),
        )
        .await;
        assert_eq!(code, 202, "{v}");
    }
    // A failed flow too, so an acknowledgement with details is checked.
    let (code, _) = deposit(
        &q,
        &acme,
        json!({ "name": "x.xml", "flowSyntax": "CII" }),
        b"not xml",
    )
    .await;
    assert_eq!(code, 202);
    wait_status(&q, &acme, "4", "Error").await;
    let allowed = q_allowed(&q);
    let (code, _) = call(
        &q,
        "POST",
        "/v1/webhooks",
        Some(&acme),
        Some(json!({ "callbackUrl": format!("{allowed}/schema") })),
    )
    .await;
    assert_eq!(code, 201);

    let mut spec: Value =
        serde_json::from_str(include_str!("fixtures/afnor/afnor-flow-service-1.3.0.json")).unwrap();
    let reason = spec["components"]["schemas"]["ReasonCode"]
        .as_object_mut()
        .unwrap();
    let branches = reason.remove("oneOf").expect("the erratum's oneOf");
    reason.insert("anyOf".into(), branches);
    let spec_path = q.home().join("flow-service.json");
    std::fs::write(&spec_path, spec.to_string()).unwrap();

    let url = q.url("");
    let home = q.home().to_path_buf();
    let (passed, text) = tokio::task::spawn_blocking(move || {
        // Its cache (.schemathesis/) goes to the test's home, not the tree.
        quai_test_support::venv::schemathesis(
            &spec_path,
            &url,
            &acme,
            "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance",
            40,
            17,
            &home,
        )
    })
    .await
    .unwrap();
    assert!(passed, "schemathesis found failures:\n{text}");
    assert!(
        text.contains("Tested: 7"),
        "not every operation was tested:\n{text}"
    );
}

/// A file larger than the 64 KiB a deposit lands from memory goes through
/// the streamed path: registered, and its bytes read back exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_past_64_kib_is_streamed_and_read_back_exactly() {
    let mut q = Quai::new(free_port());
    let acme = q.token("acme");
    q.start();
    let padding = format!("<!-- {} -->", "p".repeat(300 * 1024));
    let file = String::from_utf8(ubl("API-LARGE"))
        .unwrap()
        .replacen("<cbc:ID>", &format!("{padding}<cbc:ID>"), 1)
        .into_bytes();
    assert!(file.len() > 300 * 1024);
    let (code, v) = deposit(&q, &acme, info("large.xml", Some("L-1")), &file).await;
    assert_eq!(code, 202, "{v}");
    let id = v["flowId"].as_str().unwrap().to_owned();
    use sha2::Digest;
    assert_eq!(v["sha256"], json!(hex::encode(sha2::Sha256::digest(&file))));
    let resp = reqwest::Client::new()
        .get(q.url(&format!("/v1/flows/{id}?docType=Original")))
        .bearer_auth(&acme)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), file.as_slice());
}
