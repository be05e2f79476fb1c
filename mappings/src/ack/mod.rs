//! Acknowledgement writers: pure functions from a flow's outcome to the
//! bytes a partner receives (integration report in JSON and XML; CDAR
//! lifecycle statuses and EDIFACT CONTRL live beside them), and the reader
//! of the CDAR statuses partners send (`cdar_read`).

pub mod cdar;
pub mod cdar_read;
pub mod contrl;
pub mod report;
