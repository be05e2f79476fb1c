//! Acknowledgement writers: pure functions from a flow's outcome to the
//! bytes a partner receives (integration report in JSON and XML; CDAR
//! lifecycle statuses and EDIFACT CONTRL live beside them).

pub mod cdar;
pub mod contrl;
pub mod report;
