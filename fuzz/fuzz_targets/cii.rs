//! The CII reader, then EN 16931 validation of whatever it mapped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quai_mappings::{cii, validate};

fuzz_target!(|data: &[u8]| {
    if let Ok(outcome) = cii::read(data) {
        let _ = validate::validate(&outcome.invoice);
    }
});
