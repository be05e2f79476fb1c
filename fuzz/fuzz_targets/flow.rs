//! A whole flow as the daemon reads it: unpack, detect, map, validate.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use quai_mappings::flow::{process, FlowLimits};

fuzz_target!(|data: &[u8]| {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(data).expect("write");
    file.flush().expect("flush");
    let limits = FlowLimits {
        max_invoices: 50,
        max_unpacked_bytes: 8 << 20,
        max_ratio: 100,
        max_entries: 1000,
        max_document_bytes: 4 << 20,
    };
    let _ = process(file.path(), "flow.bin", &limits, &mut |doc| {
        let _ = doc.is_rejected();
        Ok(())
    });
});
