//! quai-mappings: pure, synchronous, no network.
//!
//! Turns the bytes of a flow into canonical EN 16931 invoices with verdicts:
//! `unpack` opens archives under limits, `detect` names each entry's format
//! from its content, the readers (`ubl`, `cii`, `facturx`, `edifact`) map
//! documents to [`model::Invoice`] one at a time, `validate` applies the
//! EN 16931 business rules, and `flow` ties these together for one flow;
//! `convert` writes the canonical invoice back out as UBL or CII;
//! `embedded` hands a scanner the base64 attachments and PDFs a flow
//! carries.
//! Nothing here touches the network, the spool or the clock.

pub mod ack;
pub mod cii;
pub mod convert;
pub mod detect;
pub mod edifact;
pub mod embedded;
pub mod facturx;
pub mod flow;
pub mod model;
pub mod positions;
pub mod ubl;
pub mod unpack;
pub mod validate;
pub mod xml;
pub mod xml_out;

pub use model::{Invoice, ReadOutcome, Severity, Syntax, Violation};

/// A document that could not be read at all: the reason and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at byte {position})")]
pub struct ReadError {
    pub message: String,
    /// Byte offset in the document where reading stopped.
    pub position: u64,
}

impl ReadError {
    pub fn new(message: impl Into<String>, position: u64) -> Self {
        ReadError {
            message: message.into(),
            position,
        }
    }
}
