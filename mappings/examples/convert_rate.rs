//! In-process conversion rate: canonical invoices written as UBL and CII.
//!
//! `cargo run --release -p quai-mappings --example convert_rate -- [--repeat N] FILE_OR_DIR...`
//! reads every invoice of the flow files given (a directory: its `.zip`,
//! `.gz`, `.xml`, `.edi`, `.tar` files, sorted) with
//! [`quai_mappings::flow::process`] once, keeps the readable ones in memory,
//! then times writing all of them with [`quai_mappings::convert::write_ubl`]
//! and [`quai_mappings::convert::write_cii`] into one reused buffer (no
//! I/O), and prints invoices/s and MB/s written per syntax. `--repeat N`
//! converts the set N times and prints the best run too (the machine is
//! shared). Pin it with `taskset -c 0` for a one-core figure.

use std::time::Instant;

mod common;
use common::files;

use quai_mappings::convert::{self, Syntax};
use quai_mappings::flow::{process, DocumentResult, FlowLimits};
use quai_mappings::Invoice;

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
        "usage: convert_rate [--repeat N] FILE_OR_DIR..."
    );
    let limits = FlowLimits {
        max_invoices: u64::MAX / 4,
        max_unpacked_bytes: u64::MAX / 4,
        max_ratio: 100_000,
        max_entries: u64::MAX / 4,
        ..FlowLimits::default()
    };
    let mut invoices: Vec<Invoice> = Vec::new();
    let mut lines = 0usize;
    for f in &files {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
        process(f, &name.unwrap_or_default(), &limits, &mut |doc| {
            if let DocumentResult::Mapped { invoice, .. } = doc.result {
                lines += invoice.lines.len();
                invoices.push(*invoice);
            }
            Ok(())
        });
    }
    assert!(
        !invoices.is_empty(),
        "no readable invoice in the files given"
    );
    println!(
        "{} invoices ({} lines) from {} files",
        invoices.len(),
        lines,
        files.len()
    );
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    for syntax in [Syntax::Ubl, Syntax::Cii] {
        let mut best = f64::MAX;
        let mut bytes = 0u64;
        for run in 0..repeat {
            bytes = 0;
            let t = Instant::now();
            for inv in &invoices {
                buf.clear();
                buf = convert::write(inv, syntax, buf).expect("write to memory");
                bytes += buf.len() as u64;
            }
            let s = t.elapsed().as_secs_f64();
            best = best.min(s);
            println!(
                "{:>3} run {}: {} invoices in {:.3} s: {:.0} invoices/s, {:.1} MB/s written",
                syntax.as_str(),
                run + 1,
                invoices.len(),
                s,
                invoices.len() as f64 / s,
                bytes as f64 / s / 1e6
            );
        }
        println!(
            "{:>3} best: {:.0} invoices/s, {:.1} MB/s, {:.1} KB per invoice",
            syntax.as_str(),
            invoices.len() as f64 / best,
            bytes as f64 / best / 1e6,
            bytes as f64 / invoices.len() as f64 / 1e3
        );
    }
}
