//! Generator of realistic bulk flows for the benchmark and its tests.
//!
//! Why a generator and not the corpus: the benchmark needs hundreds of
//! thousands of invoices whose verdicts are known in advance, so that the
//! bench (and `tests/generator.rs`) can check exact accepted / rejected
//! counts instead of "something happened". Every invoice is built once as a
//! small syntax-neutral [`GenInvoice`] (parties, lines, VAT breakdown per
//! rate, totals BT-106..BT-115 computed with `rust_decimal` so they satisfy
//! EN 16931), an optional defect is applied to that value (so all syntaxes
//! break the same rule the same way), and then it is written as UBL 2.1,
//! UN/CEFACT CII D16B or an EDIFACT INVOIC D96A message.
//!
//! Everything is deterministic from the seed (a SplitMix64 stream, no
//! dependency), and flows are streamed to disk one invoice at a time, so a
//! flow of a million invoices is generated in bounded memory (the zip
//! writer's central directory aside). Invoice numbers are
//! `<run>-F<flow>-<index>`, unique across the flows of a run.
//!
//! The manifest `expected.json` written beside the flows lists, per flow,
//! its file name, invoice count, expected rejected count and, for each
//! invalid invoice, the rule it breaks (`rule`) and every fatal rule the
//! validator is expected to raise for it (`rules`).
//!
//! One module per job: [`invoice`] (the syntax-neutral invoice and its
//! defects), [`ubl`], [`cii`], [`edifact`] (the writers, sharing [`text`]),
//! [`flows`] (archives on disk and the manifest). This module only names
//! what the bench and its tests use.

pub mod cii;
pub mod edifact;
pub mod flows;
pub mod invoice;
mod text;
pub mod ubl;

pub use cii::write_cii;
pub use edifact::{write_edifact_header, write_edifact_message, write_edifact_trailer};
pub use flows::{
    flow_file_name, generate, generate_flow, FlowManifest, InvalidEntry, Manifest, Options,
};
pub use invoice::{build_invoice, Defect, GenInvoice, Kind, Rng};
pub use ubl::write_ubl;
