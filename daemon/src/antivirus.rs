//! The antivirus stage: a claimed flow is scanned by clamd before any of
//! it is read into the spool (`[antivirus] clamd`).
//!
//! Why a stage of its own, before the readers: nothing of an infected flow
//! may be accepted (no invoice stored, no acknowledgement but the refusal).
//! Two passes, both streamed a chunk at a time (clamd's INSTREAM,
//! `quai_connectors::antivirus`):
//!
//! 1. the flow's bytes as stored: clamd unpacks zip, tar, gzip and PDFs
//!    itself (its `ScanArchive` / `ScanPDF`, on by default);
//! 2. what clamd cannot see: every base64 binary object of the flow's XML
//!    (BG-24 attachments) decoded, and every PDF document with the binary
//!    objects of its embedded invoice XML (`quai_mappings::embedded`).
//!
//! A hit fails the flow with `IRR_ANTIVIRUS`, naming the signature and the
//! object. clamd down, timing out or refusing a scan (e.g. its
//! `StreamMaxLength`) *holds* the flow: it goes back to the queue
//! unacknowledged and is tried again after `[antivirus] retry_seconds`,
//! with a log line and `quai_antivirus_scans_total{outcome="unavailable"}`.
//! Nothing is ever waved through.

use std::path::Path;
use std::time::Duration;

use quai_connectors::antivirus::{Clamd, ClamdAddress, ClamdError, Scan, Verdict};
use quai_mappings::embedded::{self, Object, ObjectSink};
use quai_mappings::flow::FlowLimits;

use crate::config::Antivirus;

/// The reason code of an infected flow (the reform's list).
pub const IRR_ANTIVIRUS: &str = "IRR_ANTIVIRUS";

/// What the scan of one flow found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Clean,
    /// clamd's signature name, and where it was found.
    Infected {
        signature: String,
        object: String,
    },
    /// No verdict (clamd down, slow, refusing): hold the flow.
    Unavailable(String),
}

/// The clamd of `[antivirus]` (its address was checked with the configuration).
pub fn clamd(config: &Antivirus) -> anyhow::Result<Clamd> {
    let addr = ClamdAddress::parse(&config.clamd).map_err(|e| anyhow::anyhow!(e))?;
    Ok(Clamd::new(
        addr,
        Duration::from_secs(config.timeout_seconds.max(1)),
    ))
}

/// Scan the stored flow at `path` (blocking: run it on a blocking thread).
pub fn scan_flow(clamd: &Clamd, path: &Path, name: &str, limits: &FlowLimits) -> Outcome {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return Outcome::Unavailable(format!("cannot read the stored flow: {e}")),
    };
    match clamd.scan_reader(&mut file) {
        Ok(Verdict::Clean) => {}
        Ok(Verdict::Infected(signature)) => {
            return Outcome::Infected {
                signature,
                object: name.to_string(),
            }
        }
        Err(e) => return Outcome::Unavailable(e.to_string()),
    }
    drop(file);
    let mut sink = ClamdSink {
        clamd,
        scan: None,
        current: None,
    };
    match embedded::walk(path, name, limits, &mut sink) {
        Ok(()) => Outcome::Clean,
        Err(Stop::Infected { signature, object }) => Outcome::Infected { signature, object },
        Err(Stop::Clamd(e)) => Outcome::Unavailable(e.to_string()),
    }
}

enum Stop {
    Infected { signature: String, object: String },
    Clamd(ClamdError),
}

/// Each embedded object is one INSTREAM scan.
struct ClamdSink<'a> {
    clamd: &'a Clamd,
    scan: Option<Scan<'a>>,
    current: Option<Object>,
}

impl ObjectSink for ClamdSink<'_> {
    type Error = Stop;

    fn begin(&mut self, object: &Object) -> Result<(), Stop> {
        self.scan = Some(self.clamd.scan().map_err(Stop::Clamd)?);
        self.current = Some(object.clone());
        Ok(())
    }

    fn bytes(&mut self, bytes: &[u8]) -> Result<(), Stop> {
        match self.scan.as_mut() {
            Some(scan) => scan.write(bytes).map_err(Stop::Clamd),
            None => Ok(()),
        }
    }

    fn end(&mut self) -> Result<(), Stop> {
        let Some(scan) = self.scan.take() else {
            return Ok(());
        };
        match scan.finish().map_err(Stop::Clamd)? {
            Verdict::Clean => Ok(()),
            Verdict::Infected(signature) => Err(Stop::Infected {
                signature,
                object: self
                    .current
                    .take()
                    .map(|o| o.to_string())
                    .unwrap_or_default(),
            }),
        }
    }
}
