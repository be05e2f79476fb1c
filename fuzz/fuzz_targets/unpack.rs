//! Unpacking a flow (gzip, zip, tar, nested): any bytes must end in a
//! summary or an `UnpackError`, never a panic, a hang or unbounded memory.
#![no_main]

use std::convert::Infallible;
use std::io::Write;

use libfuzzer_sys::fuzz_target;
use quai_mappings::unpack::{walk, Entry, Limits};

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(data).expect("write");
    file.flush().expect("flush");
    // Small limits: the fuzzer explores the limit paths, not the disk.
    let limits = Limits {
        max_total_unpacked: 8 << 20,
        max_ratio: 100,
        max_entries: 1000,
        max_depth: 2,
        max_entry_bytes: 4 << 20,
    };
    let mut visit = |e: Entry<'_>| -> Result<(), Infallible> {
        let mut buf = [0u8; 8192];
        while let Ok(n) = e.reader.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
        Ok(())
    };
    let _ = walk(file.path(), "flow.bin", &limits, &mut visit);
});
