//! Test harness for AS2 interop: an independent AS2 implementation (pyas2lib,
//! from PyPI) run as the partner by `test-support/peers/as2/peer.py`, plus
//! throwaway keys and certificates.
//!
//! The Python environment is the test venv ([`crate::venv::dir`]), created
//! on first use with `python3 -m venv` and
//! `pip install -r test-support/peers/as2/requirements.txt`, after which oscrypto's
//! OpenSSL version regex is widened (oscrypto 1.3.0 cannot parse OpenSSL
//! 3.0.10 and later). A missing `python3`, venv module or package FAILS the
//! test with a message naming what to install; nothing is skipped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509NameBuilder, X509};
use sha2::{Digest, Sha256};

/// `test-support/peers/as2/`: the peer script and its pinned requirements.
fn peer_dir() -> PathBuf {
    crate::peers_dir().join("as2")
}

/// The venv's python, ready with pyas2lib (created once per process).
pub fn python() -> &'static Path {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| ensure_venv().unwrap_or_else(|m| panic!("AS2 test peer unavailable: {m}")))
}

fn ensure_venv() -> Result<PathBuf, String> {
    let venv = crate::venv::dir();
    let requirements = peer_dir().join("requirements.txt");
    let req_bytes =
        fs::read(&requirements).map_err(|e| format!("{}: {e}", requirements.display()))?;
    let tag = hex::encode(&Sha256::digest(&req_bytes)[..8]);
    let marker = venv.join(format!(".quai-as2-{tag}"));
    let py = venv.join("bin").join("python");
    if marker.exists() && py.exists() {
        return Ok(py);
    }
    fs::create_dir_all(venv.parent().unwrap_or(Path::new("."))).map_err(|e| e.to_string())?;
    let _lock = DirLock::acquire(&venv.with_extension("lock"))?;
    if marker.exists() && py.exists() {
        return Ok(py);
    }
    if !py.exists() {
        let out = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .output()
            .map_err(|e| {
                format!("cannot run python3 ({e}): install Debian's python3 and python3-venv")
            })?;
        if !out.status.success() {
            return Err(format!(
                "`python3 -m venv {}` failed (install Debian's python3-venv): {}",
                venv.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let out = Command::new(&py)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            "-r",
        ])
        .arg(&requirements)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", py.display()))?;
    if !out.status.success() {
        return Err(format!(
            "pip install -r {} failed: {}{}",
            requirements.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    patch_oscrypto(&py)?;
    fs::write(&marker, b"ok\n").map_err(|e| e.to_string())?;
    Ok(py)
}

/// Widen oscrypto 1.3.0's `\d\.\d\.\d` OpenSSL version regex to
/// `\d+\.\d+\.\d+` so "OpenSSL 3.0.19" is recognised.
fn patch_oscrypto(py: &Path) -> Result<(), String> {
    let out = Command::new(py)
        .args([
            "-c",
            "import os, oscrypto; print(os.path.dirname(oscrypto.__file__))",
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "oscrypto not importable: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("_openssl");
    for name in ["_libcrypto_cffi.py", "_libcrypto_ctypes.py"] {
        let path = dir.join(name);
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let patched = text.replace(r"\\d\\.\\d\\.\\d", r"\\d+\\.\\d+\\.\\d+");
        if patched != text {
            fs::write(&path, patched).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    // The check that failed before the patch must pass now.
    let out = Command::new(py)
        .args(["-c", "from oscrypto import asymmetric; import pyas2lib"])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "pyas2lib/oscrypto still unusable after the patch: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// A cross-process lock: a directory created atomically, removed on drop;
/// taken over when older than 15 minutes (a crashed holder).
struct DirLock(PathBuf);

impl DirLock {
    fn acquire(path: &Path) -> Result<DirLock, String> {
        let deadline = Instant::now() + Duration::from_secs(900);
        loop {
            match fs::create_dir(path) {
                Ok(()) => return Ok(DirLock(path.to_path_buf())),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = fs::metadata(path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok())
                        .is_some_and(|age| age > Duration::from_secs(900));
                    if stale {
                        let _ = fs::remove_dir(path);
                        continue;
                    }
                    if Instant::now() > deadline {
                        return Err(format!("timed out waiting for {}", path.display()));
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.0);
    }
}

/// Run `tests/as2/peer.py` with this JSON config; return its JSON output.
/// Blocking: call it from `spawn_blocking` when the server runs in-process.
pub fn run_peer(dir: &Path, config: &serde_json::Value) -> serde_json::Value {
    let py = python();
    let cfg_path = dir.join(format!("peer-{}.json", uuid_like()));
    fs::write(&cfg_path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    let script = peer_dir().join("peer.py");
    let out = Command::new(py)
        .arg(&script)
        .arg(&cfg_path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "peer.py failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("peer.py printed no JSON ({e}):\nstdout: {stdout}\nstderr: {stderr}")
    })
}

/// pyas2lib as an AS2 RECEIVER (`peer.py --receive`), listening on
/// 127.0.0.1 until dropped. Every message it gets is recorded as one JSON
/// line (see peer.py's `receive`), read back with [`ReceiverPeer::records`].
pub struct ReceiverPeer {
    child: std::process::Child,
    pub port: u16,
    pub url: String,
    pub record: PathBuf,
}

impl ReceiverPeer {
    /// Start it with this config (`org_as2`, `org_key`, `org_cert`,
    /// `partner_as2`, `partner_cert`, optional `port`, `require_signed`,
    /// `require_encrypted`, and faults: `http_status`, `mdn_wrong_mic`,
    /// `mdn_tamper`, `mdn_never_signed`); `record` is set here.
    pub fn start(dir: &Path, config: &serde_json::Value) -> ReceiverPeer {
        use std::io::BufRead;
        let py = python();
        let tag = uuid_like();
        let record = dir.join(format!("received-{tag}.jsonl"));
        let mut config = config.clone();
        config["record"] = serde_json::Value::String(record.to_string_lossy().into_owned());
        let cfg_path = dir.join(format!("receiver-{tag}.json"));
        fs::write(&cfg_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let script = peer_dir().join("peer.py");
        let mut child = Command::new(py)
            .arg(&script)
            .arg("--receive")
            .arg(&cfg_path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        let read = std::io::BufReader::new(stdout).read_line(&mut line);
        let port = read
            .ok()
            .and_then(|_| serde_json::from_str::<serde_json::Value>(line.trim()).ok())
            .and_then(|v| v["port"].as_u64())
            .map(|p| p as u16);
        let Some(port) = port else {
            let _ = child.kill();
            let status = child.wait();
            panic!("peer.py --receive did not start ({status:?}); it printed {line:?}");
        };
        ReceiverPeer {
            child,
            port,
            url: format!("http://127.0.0.1:{port}/as2"),
            record,
        }
    }

    /// What it received so far, in order.
    pub fn records(&self) -> Vec<serde_json::Value> {
        fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("a JSON record line"))
            .collect()
    }

    /// The payload bytes of a record (hex in the record).
    pub fn payload(record: &serde_json::Value) -> Vec<u8> {
        hex::decode(record["payload_hex"].as_str().expect("a processed record"))
            .expect("hex payload")
    }
}

impl Drop for ReceiverPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A key pair with a self-signed certificate, written as PEM files.
pub struct KeyPair {
    pub cert: X509,
    pub key: PKey<Private>,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

impl KeyPair {
    pub fn generate(dir: &Path, name: &str) -> KeyPair {
        let rsa = Rsa::generate(2048).unwrap();
        let key = PKey::from_rsa(rsa).unwrap();
        let mut subject = X509NameBuilder::new().unwrap();
        subject.append_entry_by_text("CN", name).unwrap();
        subject.append_entry_by_text("O", "quai AS2 tests").unwrap();
        let subject = subject.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let mut serial = BigNum::new().unwrap();
        serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
        b.set_serial_number(&serial.to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&subject).unwrap();
        b.set_issuer_name(&subject).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(365).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        let cert = b.build();
        let cert_path = dir.join(format!("{name}.crt"));
        let key_path = dir.join(format!("{name}.key"));
        fs::write(&cert_path, cert.to_pem().unwrap()).unwrap();
        fs::write(&key_path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        KeyPair {
            cert,
            key,
            cert_path,
            key_path,
        }
    }
}
