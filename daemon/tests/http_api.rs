//! The ops HTTP listener, served in-process on 127.0.0.1 over a real spool
//! holding flows ingested through the daemon's own pipeline.

mod support;

use quai::{http, metrics};

use support::http::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_json_api() {
    let home = tempfile::tempdir().unwrap();
    let config = config_at(home.path());
    standard_flows(&config).await;
    // Hooks the pipeline will call; their counters must show up on /metrics.
    // (a partner label of their own: the pipeline's calls during ingest
    // must not change the exact values asserted below)
    metrics::bytes_in("hook-test", 1234);
    metrics::flow_processed("hook-test", 0.3);
    metrics::flow_processed("hook-test", 7.0);
    metrics::ack_failed("hook-test-kind");
    metrics::smtp_failed();
    metrics::sftp_failed("auth");
    metrics::as2_message("accepted");
    let daemon = daemon_for(config).await;
    let s = start(home, daemon, http::serve).await;

    // /healthz
    let r = get(s.addr, "/healthz", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "ok\n");

    // /readyz
    let r = get(s.addr, "/readyz", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["ready"], true);

    // /metrics: well-formed, spool gauges and process counters.
    let r = get(s.addr, "/metrics", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = r.text();
    let m = parse_metrics(&text);
    assert_eq!(sample(&m, "quai_spool_up", &[]), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &m,
            "quai_flows",
            &[("partner", "acme"), ("state", "processed")]
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &m,
            "quai_flows",
            &[("partner", "globex"), ("state", "processed")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "quai_invoices",
            &[("partner", "acme"), ("verdict", "accepted")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "quai_invoices",
            &[("partner", "acme"), ("verdict", "rejected")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, "quai_backlog_flows", &[("state", "received")]),
        Some(0.0)
    );
    assert_eq!(
        sample(&m, "quai_oldest_unfinished_flow_age_seconds", &[]),
        Some(0.0)
    );
    assert_eq!(
        sample(&m, "quai_bytes_in_total", &[("partner", "hook-test")]),
        Some(1234.0)
    );
    assert_eq!(
        sample(
            &m,
            "quai_flow_processing_seconds_bucket",
            &[("partner", "hook-test"), ("le", "0.5")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "quai_flow_processing_seconds_bucket",
            &[("partner", "hook-test"), ("le", "+Inf")]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &m,
            "quai_flow_processing_seconds_count",
            &[("partner", "hook-test")]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &m,
            "quai_ack_delivery_failures_total",
            &[("kind", "hook-test-kind")]
        ),
        Some(1.0)
    );
    assert_eq!(sample(&m, "quai_smtp_failures_total", &[]), Some(1.0));
    assert_eq!(
        sample(
            &m,
            "quai_sftp_connection_failures_total",
            &[("kind", "auth")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, "quai_as2_messages_total", &[("outcome", "accepted")]),
        Some(1.0)
    );
    // The pipeline's own hooks, from the ingest above (the partner names of
    // this test are used by no other test of this binary).
    let acme_bytes = fixture("ubl-tc434-example2.xml").len() + fixture("BR-07__fail__1.xml").len();
    assert_eq!(
        sample(&m, "quai_bytes_in_total", &[("partner", "acme")]),
        Some(acme_bytes as f64)
    );
    assert_eq!(
        sample(
            &m,
            "quai_flows_received_total",
            &[("partner", "acme"), ("origin", "cli")]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &m,
            "quai_invoices_processed_total",
            &[("partner", "acme"), ("verdict", "rejected")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "quai_invoices_processed_total",
            &[("partner", "globex"), ("verdict", "accepted")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "quai_flow_processing_seconds_count",
            &[("partner", "acme")]
        ),
        Some(2.0)
    );
    // Buckets are cumulative.
    let mut last = 0.0;
    for (n, l, v) in &m {
        if n == "quai_flow_processing_seconds_bucket"
            && l.iter().any(|(k, v)| k == "partner" && v == "hook-test")
        {
            assert!(*v >= last, "buckets not cumulative: {text}");
            last = *v;
        }
    }

    // /api/status: the same JSON as `quai status --json`.
    let r = get(s.addr, "/api/status", &[]).await;
    assert_eq!(r.status, 200);
    let status = r.json();
    let expected = serde_json::to_value(s.daemon.spool.status().await.unwrap()).unwrap();
    assert_eq!(status, expected);
    assert_eq!(status["totals"]["flows"]["processed"], 3);
    assert_eq!(status["totals"]["invoices"]["accepted"], 2);
    assert_eq!(status["totals"]["invoices"]["rejected"], 1);
    let partners: Vec<&str> = status["partners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["partner"].as_str().unwrap())
        .collect();
    assert_eq!(partners, ["acme", "globex"]);
    assert_eq!(status["partners"][0]["flows"]["processed"], 2);

    // /api/flows with filters.
    let r = get(s.addr, "/api/flows?partner=acme&state=processed", &[]).await;
    assert_eq!(r.status, 200);
    let flows = r.json();
    let names: Vec<&str> = flows
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["original_name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"acme-valid.xml") && names.contains(&"acme-br07.xml"));
    let r = get(s.addr, "/api/flows?limit=1", &[]).await;
    assert_eq!(r.json().as_array().unwrap().len(), 1);
    assert_eq!(
        r.json()[0]["original_name"],
        "globex-cii.xml",
        "newest first"
    );
    let r = get(s.addr, "/api/flows?since=1h&state=failed", &[]).await;
    assert_eq!(r.json().as_array().unwrap().len(), 0);
    let r = get(s.addr, "/api/flows?since=2000-01-01", &[]).await;
    assert_eq!(r.json().as_array().unwrap().len(), 3);
    for bad in [
        "/api/flows?state=bogus",
        "/api/flows?limit=0",
        "/api/flows?limit=100000",
        "/api/flows?since=yesterday",
        "/api/flows/abc",
    ] {
        let r = get(s.addr, bad, &[]).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert!(r.json()["error"].is_string());
    }

    // /api/flows/{id}: flow, invoices with reasons, acknowledgements.
    let br07 = flows
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["original_name"] == "acme-br07.xml")
        .unwrap();
    let id = br07["id"].as_i64().unwrap();
    let r = get(s.addr, &format!("/api/flows/{id}"), &[]).await;
    assert_eq!(r.status, 200);
    let detail = r.json();
    assert_eq!(detail["flow"]["id"], id);
    assert_eq!(detail["flow"]["partner"], "acme");
    assert_eq!(detail["invoices"][0]["verdict"], "rejected");
    let rules: Vec<&str> = detail["invoices"][0]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"BR-07"), "{rules:?}");
    assert_eq!(detail["acknowledgements"][0]["kind"], "integration_report");
    assert!(detail["acknowledgements"][0]["delivered_at"].is_string());
    let r = get(s.addr, "/api/flows/999999", &[]).await;
    assert_eq!(r.status, 404);

    // /api/flows/{id}/invoices/{index}: the canonical invoice, read back
    // from its compressed form in the spool.
    let r = get(s.addr, &format!("/api/flows/{id}/invoices/0"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let canonical = r.json();
    assert_eq!(
        canonical["number"], detail["invoices"][0]["number"],
        "{canonical}"
    );
    assert!(canonical["seller"].is_object(), "{canonical}");
    for (path, status) in [
        (format!("/api/flows/{id}/invoices/7"), 404),
        ("/api/flows/999999/invoices/0".to_string(), 404),
        (format!("/api/flows/{id}/invoices/x"), 400),
    ] {
        let r = get(s.addr, &path, &[]).await;
        assert_eq!(r.status, status, "{path}: {}", r.text());
    }

    // /api/partners
    let r = get(s.addr, "/api/partners", &[]).await;
    assert_eq!(r.status, 200);
    let p = r.json();
    assert_eq!(p[0]["partner"], "acme");
    assert_eq!(p[0]["invoices_accepted"], 1);
    assert_eq!(p[0]["invoices_rejected"], 1);
    assert_eq!(p[0]["reject_rate"], 0.5);
    assert!(p[0]["last_flow_at"].is_string());
    assert_eq!(p[1]["partner"], "globex");
    assert_eq!(p[1]["reject_rate"], 0.0);

    // /api/overview: what the page shows.
    let r = get(s.addr, "/api/overview", &[]).await;
    assert_eq!(r.status, 200);
    let o = r.json();
    assert_eq!(o["backlog"]["received"], 0);
    assert_eq!(o["throughput"].as_array().unwrap().len(), 36);
    let charted: i64 = o["throughput"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["accepted"].as_i64().unwrap() + b["rejected"].as_i64().unwrap())
        .sum();
    assert_eq!(
        charted, 3,
        "the three invoices processed just now are charted"
    );
    assert_eq!(o["recent_rejects"][0]["entry"], "acme-br07.xml");
    assert_eq!(o["recent_rejects"].as_array().unwrap().len(), 1);
    assert_eq!(o["recent_flows"].as_array().unwrap().len(), 3);

    // Unknown routes are 404s, not the page.
    assert_eq!(get(s.addr, "/nope", &[]).await.status, 404);

    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_required_when_configured() {
    let home = tempfile::tempdir().unwrap();
    let mut config = config_at(home.path());
    let token_file = home.path().join("ops.token");
    std::fs::write(&token_file, "  c0rrect-h0rse-battery \n").unwrap();
    config.http_token_file = Some(token_file);
    ingest(
        &config,
        "tokenco",
        &[("tokenco.xml", fixture("ubl-tc434-example2.xml"))],
    )
    .await;
    let daemon = daemon_for(config).await;
    let s = start(home, daemon, http::serve).await;

    let good = [("Authorization", "Bearer c0rrect-h0rse-battery")];
    for path in [
        "/",
        "/readyz",
        "/metrics",
        "/api/status",
        "/api/flows",
        "/api/flows/1",
        "/api/partners",
        "/api/overview",
    ] {
        let r = get(s.addr, path, &[]).await;
        assert_eq!(r.status, 401, "{path} without a token");
        assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"quai\""));
        assert!(
            !r.text().contains("c0rrect"),
            "the token must never be echoed"
        );
        for wrong in [
            "Bearer c0rrect-h0rse-batter",
            "Bearer c0rrect-h0rse-battery2",
            "Basic c0rrect-h0rse-battery",
            "c0rrect-h0rse-battery",
        ] {
            let r = get(s.addr, path, &[("Authorization", wrong)]).await;
            assert_eq!(r.status, 401, "{path} with {wrong:?}");
        }
        let r = get(s.addr, path, &good).await;
        assert_eq!(r.status, 200, "{path} with the token: {}", r.text());
    }
    // /healthz stays open for load balancers and systemd probes.
    assert_eq!(get(s.addr, "/healthz", &[]).await.status, 200);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_unsafe_listeners() {
    let home = tempfile::tempdir().unwrap();

    // A public address without a token file.
    let daemon = daemon_for(config_at(home.path())).await;
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = http::serve(
        daemon,
        listener,
        axum::Router::new(),
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("not a loopback address"),
        "{err:#}"
    );
    let config = config_at(home.path());
    assert!(http::preflight(&config, "0.0.0.0:8470".parse().unwrap()).is_err());
    assert!(http::preflight(&config, "127.0.0.1:8470".parse().unwrap()).is_ok());

    // A token file that is empty, or missing: never "no token".
    for (name, content) in [("empty.token", Some("  \n")), ("missing.token", None)] {
        let mut config = config_at(home.path());
        let path = home.path().join(name);
        if let Some(c) = content {
            std::fs::write(&path, c).unwrap();
        }
        config.http_token_file = Some(path);
        assert!(http::preflight(&config, "127.0.0.1:8470".parse().unwrap()).is_err());
        let daemon = daemon_for(config).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = http::serve(
            daemon,
            listener,
            axum::Router::new(),
            tokio_util::sync::CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("token file"), "{name}: {err:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_routes_are_merged_outside_the_token() {
    use axum::routing::post;
    let home = tempfile::tempdir().unwrap();
    let mut config = config_at(home.path());
    let token_file = home.path().join("ops.token");
    std::fs::write(&token_file, "t0ken").unwrap();
    config.http_token_file = Some(token_file);
    let daemon = daemon_for(config).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let extra = axum::Router::new().route("/as2", post(|| async { "mdn" }));
    let task = tokio::spawn(http::serve(daemon, listener, extra, stop.clone()));

    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    sock.write_all(
        b"POST /as2 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut raw = String::new();
    sock.read_to_string(&mut raw).await.unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(raw.ends_with("mdn"), "{raw}");
    assert_eq!(get(addr, "/api/status", &[]).await.status, 401);

    stop.cancel();
    task.await.unwrap().unwrap();
}
