//! Factur-X: extracting the embedded XML from a PDF, then mapping it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quai_mappings::{facturx, validate};

fuzz_target!(|data: &[u8]| {
    if let Ok(embedded) = facturx::extract_bytes(data) {
        if let Ok(outcome) = facturx::map_embedded(embedded) {
            let _ = validate::validate(&outcome.invoice);
        }
    }
});
