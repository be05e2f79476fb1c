//! What keeping one invoice costs the daemon, in process: time and heap
//! allocations per invoice for each step between the reader and the spool.
//!
//! ```text
//! cargo run --release -p quai --example keep_cost -- FLOW...
//! ```
//!
//! Why: issue 19 asks which per-invoice costs outside reading are worth
//! removing (the canonical form's serialisation and compression, the row,
//! allocation). End-to-end runs on the shared 2-core machine move by ±15 %;
//! these steps, timed and counted alone over the same documents, do not.
//!
//! Each FLOW (e.g. the bench's cached `ubl-zip-200x500` zips) is read with
//! `flow::process` (read + map + validate), then for every mapped document:
//! `pipeline::to_new_invoice` (the row, canonical JSON included), the JSON
//! alone, its zstd frame with the spool's dictionary, and the candidate
//! binary form (MessagePack with field names, `rmp_serde::to_vec_named`,
//! raw and zstd-compressed) with its conversion back to JSON, checked
//! byte-identical. Allocations are counted by a global allocator that wraps
//! the system one (this example only; the daemon's binary is not touched).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use quai_mappings::flow::{self, DocumentResult};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(layout.size() as u64, Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new_size as u64, Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Time, allocations and bytes allocated by one step, summed over invoices.
#[derive(Default)]
struct Step {
    time: Duration,
    allocs: u64,
    bytes: u64,
    out_bytes: u64,
}

impl Step {
    fn run<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let (a, b) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
        let t = Instant::now();
        let out = f();
        self.time += t.elapsed();
        self.allocs += ALLOCS.load(Relaxed) - a;
        self.bytes += BYTES.load(Relaxed) - b;
        out
    }
    fn print(&self, name: &str, n: u64) {
        let n = n.max(1) as f64;
        println!(
            "{name:<34} {:>8.2} µs {:>8.1} allocs {:>9.0} B alloc {:>8.0} B out",
            self.time.as_secs_f64() * 1e6 / n,
            self.allocs as f64 / n,
            self.bytes as f64 / n,
            self.out_bytes as f64 / n,
        );
    }
}

const DICT: &[u8] = include_bytes!("../../spool/src/canonical-1.zdict");

fn main() -> anyhow::Result<()> {
    let files: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    anyhow::ensure!(!files.is_empty(), "usage: keep_cost FLOW...");
    let dict = zstd::dict::EncoderDictionary::copy(DICT, 1);
    let mut json_z = zstd::bulk::Compressor::with_prepared_dictionary(&dict)?;
    let mut plain_z = zstd::bulk::Compressor::new(1)?;

    let mut read = Step::default();
    let mut row = Step::default();
    let mut json = Step::default();
    let mut json_zstd = Step::default();
    let mut mp = Step::default();
    let mut mp_zstd = Step::default();
    let mut mp_to_json = Step::default();
    let mut json_to_invoice = Step::default();
    let mut mp_to_invoice = Step::default();
    let mut drop_doc = Step::default();
    let mut invoices = 0u64;
    let mut mismatches = 0u64;

    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut docs = Vec::new();
        let (a, b) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
        let t = Instant::now();
        let end = flow::process(path, &name, &flow::FlowLimits::default(), &mut |doc| {
            docs.push(doc);
            Ok(())
        });
        read.time += t.elapsed();
        read.allocs += ALLOCS.load(Relaxed) - a;
        read.bytes += BYTES.load(Relaxed) - b;
        anyhow::ensure!(matches!(end, flow::FlowEnd::Done(_)), "{name}: {end:?}");
        for doc in docs {
            let DocumentResult::Mapped { invoice, .. } = &doc.result else {
                continue;
            };
            invoices += 1;
            let new = row.run(|| quai::pipeline::to_new_invoice(&doc));
            drop(new);
            let j = json.run(|| serde_json::to_string(invoice))?;
            json.out_bytes += j.len() as u64;
            let z = json_zstd.run(|| json_z.compress(j.as_bytes()))?;
            json_zstd.out_bytes += z.len() as u64;
            let m = mp.run(|| rmp_serde::to_vec_named(invoice))?;
            mp.out_bytes += m.len() as u64;
            let mz = mp_zstd.run(|| plain_z.compress(&m))?;
            mp_zstd.out_bytes += mz.len() as u64;
            let back = mp_to_json.run(|| {
                let mut out = Vec::with_capacity(j.len());
                let mut de = rmp_serde::Deserializer::from_read_ref(&m);
                let mut ser = serde_json::Serializer::new(&mut out);
                serde_transcode::transcode(&mut de, &mut ser).map(|()| out)
            })?;
            mp_to_json.out_bytes += back.len() as u64;
            if back != j.as_bytes() {
                mismatches += 1;
            }
            let inv: quai_mappings::Invoice = json_to_invoice.run(|| serde_json::from_str(&j))?;
            drop(inv);
            let inv: quai_mappings::Invoice = mp_to_invoice.run(|| rmp_serde::from_slice(&m))?;
            drop(inv);
            drop_doc.run(|| drop(doc));
        }
    }
    println!("{invoices} mapped invoices from {} flows", files.len());
    read.print("read + map + validate", invoices);
    drop_doc.print("drop the document", invoices);
    row.print("to_new_invoice (row, JSON incl.)", invoices);
    json.print("  canonical JSON", invoices);
    json_zstd.print("  zstd of the JSON (dictionary)", invoices);
    mp.print("MessagePack (named)", invoices);
    mp_zstd.print("  zstd of MessagePack (no dict)", invoices);
    mp_to_json.print("  MessagePack -> JSON", invoices);
    json_to_invoice.print("JSON -> Invoice", invoices);
    mp_to_invoice.print("MessagePack -> Invoice", invoices);
    println!("MessagePack -> JSON differing from the JSON: {mismatches}");
    Ok(())
}
