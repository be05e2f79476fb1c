//! In-process reading rate: unpack + detect + map + validate on one thread.
//!
//! `cargo run --release -p quai-mappings --example read_rate -- FILE_OR_DIR...`
//! reads every flow file given (a directory: every `.zip`, `.gz`, `.tar.gz`,
//! `.xml`, `.edi` file in it, sorted) with [`quai_mappings::flow::process`],
//! exactly as the daemon's reader does but with no spool, and prints the
//! documents per second and MB/s of flow files. `--repeat N` reads the set N
//! times (best run printed too: the machine is shared). Use
//! `taskset -c 0` to pin it to one core, and compare with
//! `taskset -c 0 unzip -p FILE > /dev/null` on the same files.

use std::time::Instant;

mod common;
use common::files;

use quai_mappings::flow::{process, FlowEnd, FlowLimits};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut repeat = 1usize;
    if let Some(i) = args.iter().position(|a| a == "--repeat") {
        repeat = args
            .get(i + 1)
            .and_then(|s| s.parse().ok())
            .expect("--repeat N");
        args.drain(i..i + 2);
    }
    let files = files(&args);
    assert!(
        !files.is_empty(),
        "usage: read_rate [--repeat N] FILE_OR_DIR..."
    );
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let limits = FlowLimits {
        max_invoices: u64::MAX / 4,
        max_unpacked_bytes: u64::MAX / 4,
        max_ratio: 100_000,
        max_entries: u64::MAX / 4,
        ..FlowLimits::default()
    };
    let mut best = f64::MAX;
    for run in 0..repeat {
        let mut docs = 0u64;
        let mut rejected = 0u64;
        let t = Instant::now();
        for f in &files {
            let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
            let end = process(f, &name.unwrap_or_default(), &limits, &mut |doc| {
                docs += 1;
                rejected += u64::from(doc.is_rejected());
                Ok(())
            });
            assert!(
                matches!(end, FlowEnd::Done(_)),
                "{} not processed: {end:?}",
                f.display()
            );
        }
        let s = t.elapsed().as_secs_f64();
        best = best.min(s);
        println!(
            "run {run}: {docs} documents ({rejected} rejected) in {s:.3} s: {:.0} documents/s, {:.1} MB/s of flow files",
            docs as f64 / s,
            bytes as f64 / s / 1e6
        );
        if run + 1 == repeat && repeat > 1 {
            println!("best: {best:.3} s, {:.0} documents/s", docs as f64 / best);
        }
    }
}
