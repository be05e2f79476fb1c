//! The status page in a real browser: headless Chromium (Debian's
//! `chromium`) loads `/` from the in-process listener and must show the
//! flows just processed, escape hostile file names, and draw the chart.
//!
//! `QUAI_SAVE_SCREENSHOT=1 cargo test -p quai --test status_page` also
//! copies the screenshot to `docs/status-page.png`.

mod support;

use quai::http;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use quai_spool::{NewFlow, Origin};
use support::http::*;

const CHROMIUM: &str = "/usr/bin/chromium";

fn chromium() -> PathBuf {
    for p in [CHROMIUM, "/usr/bin/chromium-browser"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "chromium not found at {CHROMIUM}: apt-get install chromium (scripts/test.sh installs it)"
    );
}

/// Run headless Chromium with `args` plus the standard flags; its stdout.
fn run_chromium(profile: &Path, args: &[String]) -> String {
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .env("HOME", profile)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start chromium");
    let started = Instant::now();
    loop {
        match child.try_wait().expect("wait chromium") {
            Some(_) => break,
            None if started.elapsed() > Duration::from_secs(90) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish within 90 s");
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    let out = child.wait_with_output().expect("chromium output");
    assert!(
        out.status.success(),
        "chromium failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The DOM of `url` as headless Chromium rendered it.
async fn dump(profile: &Path, url: String) -> String {
    let p = profile.to_path_buf();
    let args = vec!["--dump-dom".to_string(), url];
    tokio::task::spawn_blocking(move || run_chromium(&p, &args))
        .await
        .unwrap()
}

/// The `<tr>` of the recent-flows table for flow `id`.
fn flow_row(dom: &str, id: i64) -> &str {
    let key = format!("data-flow-id=\"{id}\"");
    let start = dom
        .find(&key)
        .unwrap_or_else(|| panic!("flow {id} is not on the page"));
    let end = dom[start..].find("</tr>").expect("row end") + start;
    &dom[start..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_renders_in_chromium() {
    let browser = chromium();
    let home = tempfile::tempdir().unwrap();
    let config = config_at(home.path());
    standard_flows(&config).await;
    // A partner-chosen file name that would be markup if not escaped.
    ingest(
        &config,
        "initech",
        &[(
            "flow-<img src=x onerror=alert(1)>.xml",
            fixture("CII_example4.xml"),
        )],
    )
    .await;
    let daemon = daemon_for(config).await;
    // A flow waiting in the backlog (registered, not processed).
    daemon.spool.ensure_partner("initech").await.unwrap();
    daemon
        .spool
        .register_flow(&NewFlow {
            partner: "initech".into(),
            origin: Origin::Sftp,
            original_name: "waiting-batch.zip".into(),
            size: 4096,
            sha256: "ab".repeat(32),
            as2_message_id: None,
        })
        .await
        .unwrap();
    let flows = daemon.spool.list_flows(&Default::default()).await.unwrap();
    let valid = flows
        .iter()
        .find(|f| f.original_name == "acme-valid.xml")
        .expect("acme flow")
        .id;
    let s = start(home, daemon, http::serve).await;
    let url = format!("http://{}/", s.addr);

    let profile = tempfile::tempdir().unwrap();
    let dom = {
        let p = profile.path().to_path_buf();
        let args = vec!["--dump-dom".to_string(), url.clone()];
        tokio::task::spawn_blocking(move || run_chromium(&p, &args))
            .await
            .unwrap()
    };
    assert!(dom.contains("<title>quai status</title>"), "{dom}");

    // The flow just processed, with its partner and state.
    let row = flow_row(&dom, valid);
    assert!(row.contains("acme-valid.xml"), "{row}");
    assert!(row.contains(">acme<"), "{row}");
    assert!(row.contains(">processed<"), "{row}");
    // The rejected invoice with its rule.
    let rejects = &dom[dom.find("id=\"rejects\"").expect("rejects section")..];
    assert!(rejects.contains("acme-br07.xml"), "rejected flow listed");
    // Its reasons: the first few with their rule ids, then a pointer to the CLI.
    assert!(rejects.contains(">BR-01<"), "reason rule shown");
    assert!(
        rejects.contains("flow page</a>, <code>quai flow "),
        "pointer to the rest"
    );
    // Partners with their reject rate.
    let partners = &dom[dom.find("id=\"partners\"").expect("partners section")..];
    assert!(
        partners.contains("50.0 %"),
        "acme rejects one invoice of two"
    );
    assert!(partners.contains("globex") && partners.contains("initech"));
    // Backlog: the waiting flow.
    assert!(dom.contains("id=\"backlog-received\">1<"), "backlog");
    assert!(dom.contains("waiting-batch.zip"));
    // The hostile name is text, not markup.
    assert!(
        dom.contains("flow-&lt;img src=x onerror=alert(1)&gt;.xml"),
        "escaped name"
    );
    assert!(!dom.contains("<img"), "a file name became markup");
    // The chart has accepted bars.
    assert!(dom.contains("id=\"throughput-chart\""));
    assert!(dom.contains("fill=\"#2e9d5b\""), "no accepted bar drawn");

    // A screenshot, for the docs.
    let shot = profile.path().join("status.png");
    {
        let p = profile.path().to_path_buf();
        let args = vec![
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,1000".to_string(),
            url.clone(),
        ];
        tokio::task::spawn_blocking(move || run_chromium(&p, &args))
            .await
            .unwrap();
    }
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "suspiciously small screenshot ({} bytes)",
        png.len()
    );
    if std::env::var_os("QUAI_SAVE_SCREENSHOT").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/status-page.png");
        std::fs::copy(&shot, &docs).expect("copy screenshot to docs/");
    }
    let _ = browser;
    s.shutdown().await;
}

/// The status page's links (issue 18): a page per partner, a page per
/// flow, the invoice-number search and the state filters, in Chromium,
/// with partner-chosen text escaped everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linked_pages_render_in_chromium() {
    let home = tempfile::tempdir().unwrap();
    let config = config_at(home.path());
    standard_flows(&config).await;
    ingest(
        &config,
        "initech",
        &[
            (
                "flow-<img src=x onerror=alert(1)>.xml",
                fixture("CII_example4.xml"),
            ),
            ("notes.txt", b"not an invoice\n".to_vec()),
        ],
    )
    .await;
    let daemon = daemon_for(config).await;
    let flows = daemon.spool.list_flows(&Default::default()).await.unwrap();
    let id_of = |name: &str| {
        flows
            .iter()
            .find(|f| f.original_name == name)
            .unwrap_or_else(|| panic!("no flow {name}"))
            .id
    };
    let valid = id_of("acme-valid.xml");
    let br07 = id_of("acme-br07.xml");
    let notes = id_of("notes.txt");
    let hostile = id_of("flow-<img src=x onerror=alert(1)>.xml");
    // acme's report of the BR-07 flow could not be delivered.
    let ack = daemon.spool.acks_of_flow(br07).await.unwrap()[0].clone();
    if ack.delivered_at.is_some() {
        daemon.spool.requeue_ack(ack.id).await.unwrap();
    }
    daemon
        .spool
        .ack_failed(
            ack.id,
            "cannot write /srv/acme/out: No space left on device",
        )
        .await
        .unwrap();
    let s = start(home, daemon, http::serve).await;
    let base = format!("http://{}", s.addr);
    let profile = tempfile::tempdir().unwrap();
    let profile = profile.path();

    // The overview links partners and flows, and has the search box.
    let dom = dump(profile, format!("{base}/")).await;
    assert!(dom.contains("href=\"/partners/acme\""), "{dom}");
    assert!(dom.contains(&format!("href=\"/flows/{valid}\"")), "{dom}");
    assert!(dom.contains("id=\"invoice-search\""), "{dom}");
    assert!(dom.contains("href=\"/flows?state=failed\""), "{dom}");

    // A partner's page: flows, reject rate, last flow, pending deliveries.
    let dom = dump(profile, format!("{base}/partners/acme")).await;
    assert!(dom.contains("<title>partner acme</title>"), "{dom}");
    assert!(
        dom.contains("acme-valid.xml") && dom.contains("acme-br07.xml"),
        "{dom}"
    );
    assert!(
        !dom.contains("globex-cii.xml"),
        "another partner's flow: {dom}"
    );
    assert!(dom.contains("50.0 %"), "{dom}");
    assert!(dom.contains("id=\"pending-deliveries\">1<"), "{dom}");
    assert!(dom.contains("No space left on device"), "{dom}");
    assert!(dom.contains("id=\"last-flow\">"), "{dom}");
    // Filtered by state.
    let dom = dump(profile, format!("{base}/partners/acme?state=failed")).await;
    assert!(dom.contains(">no flow<"), "{dom}");

    // A flow's page: invoices, the reject with its reason, the
    // acknowledgement with its delivery.
    let dom = dump(profile, format!("{base}/flows/{br07}")).await;
    assert!(
        dom.contains(&format!("<title>flow {br07}</title>")),
        "{dom}"
    );
    let rejected = &dom[dom
        .find("class=\"invoice rejected\"")
        .expect("rejected row")..];
    let rejected = &rejected[..rejected.find("</tr>").unwrap()];
    assert!(rejected.contains(">BR-07<"), "{rejected}");
    let acks = &dom[dom.find("id=\"acks\"").expect("acks")..];
    assert!(acks.contains("integration_report"), "{acks}");
    assert!(acks.contains("<b>pending</b>"), "{acks}");
    assert!(acks.contains("No space left on device"), "{acks}");
    assert!(dom.contains("href=\"/partners/acme\""), "{dom}");
    // A flow refused whole says why.
    let dom = dump(profile, format!("{base}/flows/{notes}")).await;
    assert!(dom.contains("id=\"flow-failure\""), "{dom}");
    assert!(dom.contains("IRR_TYPE_F"), "{dom}");
    // An unknown flow is a 404 page, not an empty one.
    let dom = dump(profile, format!("{base}/flows/999999")).await;
    assert!(dom.contains("there is no flow 999999"), "{dom}");
    let dom = dump(profile, format!("{base}/partners/nobody")).await;
    assert!(dom.contains("partner not found"), "{dom}");

    // The filters: failed flows only.
    let dom = dump(profile, format!("{base}/flows?state=failed")).await;
    assert!(dom.contains("notes.txt"), "{dom}");
    assert!(!dom.contains("acme-valid.xml"), "{dom}");
    // The search box: the flows holding invoice TOSL108.
    let dom = dump(profile, format!("{base}/flows?invoice=TOSL108")).await;
    let found = &dom[dom.find("id=\"search-result\"").expect("search result")..];
    assert!(
        found.contains(&format!("data-flow-id=\"{valid}\"")),
        "{found}"
    );
    assert!(
        !found.contains(&format!("data-flow-id=\"{br07}\"")),
        "{found}"
    );

    // Partner text stays text on every page.
    for url in [
        format!("{base}/partners/initech"),
        format!("{base}/flows/{hostile}"),
        format!("{base}/flows?partner=initech"),
        format!("{base}/flows?invoice=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E"),
    ] {
        let dom = dump(profile, url.clone()).await;
        assert!(!dom.contains("<img"), "{url}: a text became markup: {dom}");
        assert!(
            dom.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{url}: {dom}"
        );
    }
    s.shutdown().await;
}
