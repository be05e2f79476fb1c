//! What quai's tests share across crates, so no test reaches into another
//! crate's `tests/` folder.
//!
//! - [`venv`]: the Python test venv `scripts/test.sh` builds (test peers,
//!   the official artefacts), found without ever skipping a test;
//! - [`oracle`]: the official validation artefacts (EN 16931, Factur-X
//!   profiles, BR-FR, XSDs) run on files, the conformance tests' oracle;
//! - the real servers tests talk to on 127.0.0.1, each a child process
//!   stopped on drop: [`sshd`] (OpenSSH, SFTP), [`pg`] (a throwaway
//!   PostgreSQL cluster), [`smtp`] (aiosmtpd), [`as2peer`] (pyas2lib as the
//!   AS2 partner, both ways, and throwaway certificates), [`clamd`] (ClamAV
//!   with a signature database matching EICAR); their Python
//!   scripts live in `test-support/peers/`;
//! - [`imports`]: the check that a crate's modules import each other one
//!   way, never in a circle.
//!
//! A dev-dependency only: nothing here ships in the `quai` binary. It
//! depends on no quai crate, so every crate's tests can use it.

pub mod as2peer;
pub mod clamd;
pub mod imports;
pub mod oracle;
pub mod pg;
pub mod smtp;
pub mod sshd;
pub mod venv;

use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("test-support lives in the repository")
        .to_path_buf()
}

/// `test-support/peers/`: the Python programs the servers run.
pub fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers")
}

/// A port free on 127.0.0.1 right now (the servers are other processes, so
/// they cannot be handed a bound listener).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}
