//! EN 16931 business rules, in one linear pass over the canonical invoice.
use crate::model::{Invoice, Violation};

/// Apply the EN 16931 rules (those the invoice's profile carries).
pub fn validate(invoice: &Invoice) -> Vec<Violation> {
    let _ = invoice;
    todo!()
}
