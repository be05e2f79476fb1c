//! The UBL reader, then EN 16931 validation of whatever it mapped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quai_mappings::{ubl, validate};

fuzz_target!(|data: &[u8]| {
    if let Ok(outcome) = ubl::read(data) {
        let _ = validate::validate(&outcome.invoice);
    }
});
