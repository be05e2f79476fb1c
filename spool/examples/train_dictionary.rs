//! Train the zstd dictionary the spool compresses canonical JSON with.
//!
//! ```text
//! cargo run --release -p quai-spool --example train_dictionary -- OUT.zdict SAMPLE_DIR...
//! ```
//!
//! Each file under the sample folders is one canonical invoice JSON (what
//! `serde_json::to_string(&Invoice)` gives in the daemon's pipeline). The
//! dictionary shipped as `spool/src/canonical-1.zdict` was trained on 1,200
//! invoices of the project's own generator (`quai-bench generate`, 400 each
//! of `ubl-zip`, `cii-zip` and `edifact-gz`, 1 to 12 lines, seed 11), taken
//! in by `quai ingest` into a spool that still stored plain JSON, and
//! dumped one file per row (`SELECT canonical FROM invoices`). Only the
//! generator's output was used, so the dictionary holds no third-party text.
//!
//! A new dictionary must get a new id (the trainer picks a random one; the
//! spool keeps every dictionary it ever wrote with, see `rows::canonical`).

fn main() {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .expect("usage: train_dictionary OUT.zdict SAMPLE_DIR...");
    let mut files: Vec<std::path::PathBuf> = args
        .flat_map(|dir| {
            std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{dir}: {e}"))
                .map(|e| e.expect("directory entry").path())
                .collect::<Vec<_>>()
        })
        .collect();
    files.sort();
    let samples: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
        .collect();
    let total: usize = samples.iter().map(Vec::len).sum();
    let dict = zstd::dict::from_samples(&samples, 32 * 1024).expect("train the dictionary");
    std::fs::write(&out, &dict).expect("write the dictionary");
    let compressed: usize = samples
        .iter()
        .map(|s| {
            zstd::bulk::Compressor::with_dictionary(1, &dict)
                .and_then(|mut c| c.compress(s))
                .map_or(0, |z| z.len())
        })
        .sum();
    println!(
        "{} samples, {total} bytes -> {compressed} bytes with the dictionary ({:.1}x); {} bytes of dictionary, id {}",
        samples.len(),
        total as f64 / compressed.max(1) as f64,
        dict.len(),
        zstd::zstd_safe::get_dict_id_from_dict(&dict).map_or(0, |id| id.get()),
    );
}
