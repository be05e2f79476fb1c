//! The test venv: `$QUAI_TEST_VENV`, default `<repo>/target/test-venv`,
//! built by `scripts/test.sh` from `scripts/test-requirements.txt`.
//!
//! A test that needs it and does not find it fails with the command that
//! builds it: it never skips silently.

use std::path::PathBuf;
use std::process::Command;

/// The venv's folder.
pub fn dir() -> PathBuf {
    std::env::var_os("QUAI_TEST_VENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_root().join("target").join("test-venv"))
}

/// The venv's python, checked to exist.
pub fn python() -> PathBuf {
    let venv = dir();
    let python = venv.join("bin").join("python");
    assert!(
        python.is_file(),
        "the test venv is missing ({}): run scripts/test.sh, or `python3 -m venv {v} && \
         {v}/bin/pip install -r scripts/test-requirements.txt`",
        python.display(),
        v = venv.display(),
    );
    python
}

/// The venv's python, checked to import each of `modules` (by their import
/// names: `saxonche`, `facturx`, ...).
pub fn python_with(modules: &[&str]) -> PathBuf {
    let python = python();
    for m in modules {
        let ok = Command::new(&python)
            .args([
                "-c",
                &format!(
                    "import importlib.util, sys; sys.exit(importlib.util.find_spec({m:?}) is None)"
                ),
            ])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "the Python module {m} is not installed in the test venv {}: run scripts/test.sh \
             (pip install -r scripts/test-requirements.txt)",
            dir().display()
        );
    }
    python
}

/// One schemathesis run (the venv's) of the OpenAPI document `spec`
/// against the live server `url`, with a bearer `token`, the given
/// `checks` (comma-separated), at most `max_examples` per operation and a
/// fixed `seed`; its cache goes to `cwd`. Returns whether it passed, and
/// its output (stdout, then stderr).
pub fn schemathesis(
    spec: &std::path::Path,
    url: &str,
    token: &str,
    checks: &str,
    max_examples: u32,
    seed: u32,
    cwd: &std::path::Path,
) -> (bool, String) {
    let python = python_with(&["schemathesis"]);
    let out = Command::new(python.with_file_name("schemathesis"))
        .arg("run")
        .arg(spec)
        .args(["--url", url])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", checks])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", &max_examples.to_string()])
        .args(["--workers", "1", "--seed", &seed.to_string()])
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(cwd)
        .output()
        .expect("run schemathesis");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
