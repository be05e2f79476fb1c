//! What quai's tests share across crates, so no test reaches into another
//! crate's `tests/` folder.
//!
//! - [`venv`]: the Python test venv `scripts/test.sh` builds (test peers,
//!   the official artefacts), found without ever skipping a test;
//! - [`oracle`]: the official validation artefacts (EN 16931, Factur-X
//!   profiles, BR-FR, XSDs) run on files, the conformance tests' oracle.
//!
//! A dev-dependency only: nothing here ships in the `quai` binary.

pub mod oracle;
pub mod venv;

use std::path::{Path, PathBuf};

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("test-support lives in the repository")
        .to_path_buf()
}
