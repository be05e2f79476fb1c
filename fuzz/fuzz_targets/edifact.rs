//! EDIFACT: the segment tokenizer, the envelope and the INVOIC mapping.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quai_mappings::edifact::Interchange;
use quai_mappings::validate;

fuzz_target!(|data: &[u8]| {
    for strict in [false, true] {
        let mut interchange = Interchange::new(data).strict(strict);
        for item in interchange.by_ref() {
            if let Ok(message) = item {
                if let Ok(outcome) = message.result {
                    let _ = validate::validate(&outcome.invoice);
                }
            }
        }
        let _ = interchange.envelope_issues();
        let _ = interchange.headers();
    }
});
