//! What every scenario is given: the command line's options, the partner
//! the flows are dropped for, and a figure measured against its goal.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

pub const PARTNER: &str = "acme";

pub struct RunOptions {
    pub quai: PathBuf,
    pub work: PathBuf,
    pub flows: Option<usize>,
    pub invoices: Option<usize>,
    pub sizes: Vec<usize>,
    pub repeat: usize,
    pub keep: bool,
    pub timeout: Duration,
    pub json: bool,
}

/// `quai` beside the running `quai-bench` (both built by the same cargo).
pub fn default_quai() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("quai")))
        .unwrap_or_else(|| PathBuf::from("quai"))
}

/// One figure against its goal of issue 8.
pub(super) fn goal(what: &str, measured: String, goal: &str, met: bool) -> Value {
    json!({"what": what, "measured": measured, "goal": goal, "met": met})
}
