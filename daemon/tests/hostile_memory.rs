//! Hostile flows that try to exhaust memory, end to end through the daemon:
//! a zip bomb and a gzip bomb (2 GiB of zeros each, ~2 MB packed) and an
//! XML invoice with a 64 MB text node. Each is refused with a reason while
//! the daemon's peak resident memory (VmHWM of this process, which runs the
//! daemon in-process) stays far below what the flows expand to, and a good
//! flow of another partner dropped after them is answered before them.
//!
//! Alone in its own test binary: nothing else allocates while the peak is
//! measured.

mod support;

use std::io::Write;
use std::time::Duration;

use support::common::*;
use support::hostile::*;

const WAIT: Duration = Duration::from_secs(180);
const MIB: u64 = 1 << 20;

/// Write the 64 MB text node invoice to `path` without holding it.
fn write_huge_text_node(path: &std::path::Path) -> u64 {
    let ubl = fixture_str("ubl-tc434-example2.xml");
    let ubl = String::from_utf8(ubl_numbered(&ubl, "HUGE-1")).unwrap();
    let marker = "<cbc:Note>Ordered in our booth at the convention</cbc:Note>";
    let at = ubl.find(marker).expect("note in fixture");
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(&ubl.as_bytes()[..at]).unwrap();
    f.write_all(b"<cbc:Note>").unwrap();
    let chunk = vec![b'A'; 1 << 20];
    for _ in 0..64 {
        f.write_all(&chunk).unwrap();
    }
    f.write_all(b"</cbc:Note>").unwrap();
    f.write_all(&ubl.as_bytes()[at + marker.len()..]).unwrap();
    let f = f.into_inner().unwrap();
    f.sync_all().unwrap();
    f.metadata().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bombs_and_a_64_mb_text_node_are_refused_in_bounded_memory() {
    let mut d = TestDaemon::new();
    d.config.workers = 4;
    d.start();
    // Warm up: the spool, the pools and the worker threads exist.
    let ubl = fixture_str("ubl-tc434-example2.xml");
    d.drop_file("bystander", "warm-up.xml", &ubl_numbered(&ubl, "WARM-1"));
    d.wait_reports("bystander", 1, WAIT).await;

    // Stage the hostile files under partial names (not taken yet).
    let inbox = d.inbox("mallory");
    let zip_bomb_bytes = zip_bomb("bomb.xml", 2048);
    assert!(zip_bomb_bytes.len() < 4 << 20, "{}", zip_bomb_bytes.len());
    std::fs::write(inbox.join("bomb.zip.part"), &zip_bomb_bytes).unwrap();
    drop(zip_bomb_bytes);
    write_gzip_bomb(&inbox.join("bomb.xml.gz.part"), 128);
    assert!(
        std::fs::metadata(inbox.join("bomb.xml.gz.part"))
            .unwrap()
            .len()
            < 4 << 20
    );
    let huge = write_huge_text_node(&inbox.join("huge-note.xml.part"));
    assert!(huge > 64 * MIB);
    let good = ubl_numbered(&ubl, "GOOD-AFTER-BOMBS");

    tokio::time::sleep(Duration::from_millis(300)).await;
    reset_peak_rss();
    let baseline_kib = proc_status_kib("VmRSS:");
    for name in ["bomb.zip", "bomb.xml.gz", "huge-note.xml"] {
        std::fs::rename(inbox.join(format!("{name}.part")), inbox.join(name)).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    d.drop_file("bystander", "good.xml", &good);

    let reports = d.wait_reports("mallory", 3, WAIT).await;
    let peak_kib = proc_status_kib("VmHWM:");
    d.wait_reports("bystander", 2, WAIT).await;

    let at = |r: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(r["flow"]["processed_at"].as_str().unwrap()).unwrap()
    };
    let mut last_hostile = None;
    for p in &reports {
        let r = report_json(p);
        let file = r["flow"]["file"].as_str().unwrap();
        let code = r["rejection"]["code"].as_str().unwrap_or("-");
        let msg = r["rejection"]["message"].as_str().unwrap_or("");
        eprintln!("{file}: {} {code} {msg}", r["status"]);
        assert_eq!(r["status"], "rejected", "{file}: {r:#}");
        match file {
            "bomb.zip" | "bomb.xml.gz" => {
                assert_eq!(code, "IRR_TAILLE_F", "{file}: {msg}");
                assert!(msg.contains("compression ratio"), "{file}: {msg}");
            }
            "huge-note.xml" => {
                assert_eq!(code, "IRR_SYNTAX", "{file}: {msg}");
                assert!(msg.contains("MiB") || msg.contains("bytes"), "{msg}");
            }
            other => panic!("unexpected report for {other}"),
        }
        last_hostile = last_hostile.max(Some(at(&r)));
    }
    // The good flow dropped after the hostile ones was answered before the
    // last of them: hostile flows do not hold up other partners.
    let good_report = d
        .wait_reports("bystander", 2, WAIT)
        .await
        .into_iter()
        .map(|p| report_json(&p))
        .find(|r| r["flow"]["file"] == "good.xml")
        .unwrap();
    assert_eq!(good_report["counts"]["accepted"], 1, "{good_report:#}");
    let good_at = at(&good_report);
    let last_hostile = last_hostile.unwrap();
    assert!(
        good_at < last_hostile,
        "good flow processed at {good_at}, after the last hostile one ({last_hostile})"
    );

    // Peak memory above the baseline while 4 GiB of zeros and a 64 MB text
    // node went through: bounded by the readers' buffers, far below either.
    let grown_mib = peak_kib.saturating_sub(baseline_kib) / 1024;
    eprintln!(
        "baseline {} MiB, peak {} MiB, growth {grown_mib} MiB",
        baseline_kib / 1024,
        peak_kib / 1024
    );
    assert!(
        grown_mib < 64,
        "peak resident memory grew by {grown_mib} MiB (baseline {baseline_kib} KiB, peak {peak_kib} KiB)"
    );
    assert!(!d.task.as_ref().unwrap().is_finished(), "daemon stopped");
    d.stop().await;
}
