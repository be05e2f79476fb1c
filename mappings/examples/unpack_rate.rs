//! Unpacking alone: every entry of the flows inflated and thrown away.
//!
//! `cargo run --release -p quai-mappings --example unpack_rate -- FILE_OR_DIR...`
//! walks each flow with [`quai_mappings::unpack::walk`] (the limits raised)
//! and reads every document to its end without mapping it, so the cost of
//! unpacking can be set against `read_rate` (unpack + map + validate) and
//! against `taskset -c 0 unzip -p FILE > /dev/null` on the same files.

use std::time::Instant;

mod common;
use common::files;

use quai_mappings::unpack::{walk, Limits};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let files = files(&args);
    assert!(!files.is_empty(), "usage: unpack_rate FILE_OR_DIR...");
    let limits = Limits {
        max_total_unpacked: u64::MAX / 4,
        max_ratio: 100_000,
        max_entries: u64::MAX / 4,
        ..Limits::default()
    };
    let (mut entries, mut bytes) = (0u64, 0u64);
    let t = Instant::now();
    for f in &files {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
        walk::<std::io::Error>(f, &name.unwrap_or_default(), &limits, &mut |e| {
            entries += 1;
            loop {
                let n = std::io::BufRead::fill_buf(e.reader)?.len();
                if n == 0 {
                    break;
                }
                bytes += n as u64;
                std::io::BufRead::consume(e.reader, n);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "{entries} entries, {:.1} MB unpacked in {s:.3} s: {:.0} entries/s, {:.1} MB/s",
        bytes as f64 / 1e6,
        entries as f64 / s,
        bytes as f64 / s / 1e6
    );
}
