//! UBL 2.1 Invoice and CreditNote reader (incl. Peppol BIS 3, XRechnung).
use std::io::BufRead;

use crate::{ReadError, ReadOutcome};

/// Read one UBL Invoice or CreditNote document, streaming.
pub fn read<R: BufRead>(input: R) -> Result<ReadOutcome, ReadError> {
    let _ = input;
    todo!()
}
