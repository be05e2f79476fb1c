//! Acknowledgements through the running daemon: integration report, CDAR
//! statuses (one file per flow) and EDIFACT CONTRL land in the partner's
//! outbox; `resend-ack` delivers one again.

mod support;

use std::time::{Duration, Instant};

use support::common::{fixture, TestDaemon};

fn edifact_fixture(name: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mappings/tests/fixtures/edifact")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

async fn wait_file(dir: &std::path::Path, suffix: &str, n: usize) -> Vec<std::path::PathBuf> {
    let start = Instant::now();
    loop {
        let mut v: Vec<_> = std::fs::read_dir(dir)
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
            start.elapsed() < Duration::from_secs(30),
            "no {suffix} in {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn cdar_and_contrl_are_delivered_with_the_report() {
    let mut d = TestDaemon::new();
    d.start();
    d.drop_file("acme", "inv.edi", &edifact_fixture("invoic_d97b.edi"));
    d.drop_file("acme", "reject.xml", &fixture("BR-07__fail__1.xml"));
    let out = d.outbox("acme");
    let cdars = wait_file(&out, ".cdar.xml", 2).await;
    let contrl = wait_file(&out, ".contrl.edi", 1).await;
    d.stop().await;

    assert_eq!(
        contrl.len(),
        1,
        "only the EDIFACT flow gets a CONTRL: {contrl:?}"
    );
    let c = std::fs::read_to_string(&contrl[0]).unwrap();
    assert!(c.starts_with("UNA:+.? '\nUNB+"), "{c}");
    assert!(c.contains("UNH+1+CONTRL:"), "{c}");
    assert!(
        c.lines()
            .any(|l| l.starts_with("UCI+") && l.ends_with("+7'")),
        "{c}"
    );
    assert!(
        c.lines()
            .any(|l| l.starts_with("UCM+") && l.contains("+INVOIC:")),
        "{c}"
    );

    let all: Vec<String> = cdars
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let rejected = all
        .iter()
        .find(|x| x.contains("<ram:ProcessConditionCode>213</ram:ProcessConditionCode>"))
        .expect("a 213");
    assert!(
        rejected.contains("<ram:ReasonCode>REJ_SEMAN</ram:ReasonCode>"),
        "{rejected}"
    );
    assert!(rejected.contains("<ram:ContentCode>BR-"), "{rejected}");
    assert!(rejected.starts_with(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rsm:CrossDomainAcknowledgementAndResponse"
    ));

    // Rendering is idempotent, and resend-ack delivers a removed file again.
    let spool = d.spool().await;
    let flows = spool.list_flows(&Default::default()).await.unwrap();
    let flow = flows
        .iter()
        .find(|f| f.original_name == "reject.xml")
        .unwrap();
    let ack = spool
        .acks_of_flow(flow.id)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.kind == quai_spool::AckKind::Cdar)
        .unwrap();
    assert!(ack.delivered_at.is_some());
    let path = out.join(&ack.file_name);
    let before = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    drop(spool);
    let app = quai::App::open(d.config.clone()).await.unwrap();
    let choice = quai::commands::ResendChoice {
        ack: Some(ack.id),
        ..Default::default()
    };
    let code = quai::commands::resend_ack(&app, choice, false)
        .await
        .unwrap();
    assert_eq!(code, 0);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "same bytes when rendered again"
    );
}

/// An interchange sent gzipped is still an interchange: it gets a CONTRL
/// with one UCM per message, like the plain one.
#[tokio::test]
async fn a_gzipped_interchange_gets_its_contrl_too() {
    use std::io::Write;
    let plain = edifact_fixture("invoic_d97b.edi");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();

    let mut d = TestDaemon::new();
    d.start();
    d.drop_file("acme", "plain.edi", &plain);
    d.drop_file("acme", "packed.edi.gz", &gz);
    let out = d.outbox("acme");
    let contrl = wait_file(&out, ".contrl.edi", 2).await;
    d.stop().await;

    assert_eq!(contrl.len(), 2, "{contrl:?}");
    let read = |suffix: &str| {
        let p = contrl
            .iter()
            .find(|p| p.to_string_lossy().contains(suffix))
            .unwrap_or_else(|| panic!("a CONTRL for {suffix}: {contrl:?}"));
        std::fs::read_to_string(p).unwrap()
    };
    let (a, b) = (read("plain.edi."), read("packed.edi.gz."));
    let ucms = |c: &str| -> Vec<String> {
        c.lines()
            .filter(|l| l.starts_with("UCM+") || l.starts_with("UCI+"))
            .map(str::to_string)
            .collect()
    };
    assert!(
        !ucms(&b).is_empty() && ucms(&b).iter().any(|l| l.starts_with("UCM+")),
        "{b}"
    );
    assert_eq!(ucms(&a), ucms(&b), "same answer, packed or not");
}
