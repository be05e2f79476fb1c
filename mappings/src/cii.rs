//! UN/CEFACT Cross Industry Invoice reader (D16B, D22B, Factur-X/ZUGFeRD 2.x).
use std::io::BufRead;

use crate::{ReadError, ReadOutcome};

/// Read one CII `rsm:CrossIndustryInvoice` document, streaming.
pub fn read<R: BufRead>(input: R) -> Result<ReadOutcome, ReadError> {
    let _ = input;
    todo!()
}
