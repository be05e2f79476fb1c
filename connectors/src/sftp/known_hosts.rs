//! Strict host key checking against an OpenSSH `known_hosts` file.
//!
//! quai reads the file itself rather than through libssh2's loader, because
//! libssh2 stops at the first line it cannot parse (an `@cert-authority`
//! marker, an unknown key type) and silently ignores every entry after it;
//! here a line we do not understand is skipped, and the rest still counts.
//! Semantics follow OpenSSH: the name looked up is `host` for port 22 and
//! `[host]:port` otherwise; patterns are comma lists with `*`/`?` wildcards
//! and `!` negation; hashed names (`|1|salt|hash`, HMAC-SHA1) are matched;
//! `@revoked` keys are refused. A key is accepted only when a line for this
//! host holds exactly the server's key blob.

use std::io::Write;
use std::path::Path;

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use sha2::{Digest, Sha256};

/// What the known_hosts file says about the server's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A line for this host holds this exact key.
    Match,
    /// A line for this host holds a different key of the same type: the
    /// server's key changed (or someone is in the middle).
    Changed,
    /// No key of this type is recorded for the host; `other_types` lists
    /// the types that are.
    Unknown { other_types: Vec<String> },
    /// The key is marked `@revoked`.
    Revoked,
}

/// The name OpenSSH records for a host and port.
pub(crate) fn lookup_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// `SHA256:<base64 without padding>` as `ssh-keygen -l` prints it.
pub fn fingerprint_sha256(blob: &[u8]) -> String {
    let digest = Sha256::digest(blob);
    let b64 = openssl::base64::encode_block(&digest);
    format!("SHA256:{}", b64.trim_end_matches('='))
}

/// The key type name at the start of an SSH public key blob
/// (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, ...).
pub fn key_type_of(blob: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let name = blob.get(4..4usize.checked_add(len)?)?;
    let name = std::str::from_utf8(name).ok()?;
    if name.is_empty() || !name.is_ascii() {
        return None;
    }
    Some(name.to_string())
}

struct Entry<'a> {
    marker: Option<&'a str>,
    hosts: &'a str,
    key_type: &'a str,
    blob: Vec<u8>,
}

fn entries(content: &str) -> impl Iterator<Item = Entry<'_>> {
    content.lines().filter_map(|line| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let mut it = line.split_whitespace();
        let mut first = it.next()?;
        let mut marker = None;
        if first.starts_with('@') {
            marker = Some(first);
            first = it.next()?;
        }
        let key_type = it.next()?;
        let b64 = it.next()?;
        let blob = openssl::base64::decode_block(b64).ok()?;
        Some(Entry {
            marker,
            hosts: first,
            key_type,
            blob,
        })
    })
}

/// OpenSSH-style wildcard match (`*` any run, `?` one char), ASCII
/// case-insensitive.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0usize, 0usize);
    let (mut star_p, mut star_n) = (usize::MAX, 0usize);
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p].eq_ignore_ascii_case(&name[n])) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star_p = p;
            star_n = n;
            p += 1;
        } else if star_p != usize::MAX {
            p = star_p + 1;
            star_n += 1;
            n = star_n;
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

fn hashed_match(field: &str, name: &str) -> bool {
    // |1|base64(salt)|base64(HMAC-SHA1(salt, name))
    let Some(rest) = field.strip_prefix("|1|") else {
        return false;
    };
    let Some((salt, hash)) = rest.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (
        openssl::base64::decode_block(salt),
        openssl::base64::decode_block(hash),
    ) else {
        return false;
    };
    let computed = (|| {
        let key = PKey::hmac(&salt).ok()?;
        let mut signer = Signer::new(MessageDigest::sha1(), &key).ok()?;
        signer.update(name.as_bytes()).ok()?;
        signer.sign_to_vec().ok()
    })();
    matches!(computed, Some(c) if c == hash)
}

fn host_field_matches(field: &str, name: &str) -> bool {
    if field.starts_with('|') {
        return hashed_match(field, name);
    }
    let mut matched = false;
    for pat in field.split(',') {
        if let Some(neg) = pat.strip_prefix('!') {
            if glob(neg.as_bytes(), name.as_bytes()) {
                return false;
            }
        } else if glob(pat.as_bytes(), name.as_bytes()) {
            matched = true;
        }
    }
    matched
}

/// Checks `blob` (the server's host key) for `host`/`port` against the
/// content of a known_hosts file.
pub(crate) fn check(content: &str, host: &str, port: u16, blob: &[u8]) -> Verdict {
    let name = lookup_name(host, port);
    let server_type = key_type_of(blob).unwrap_or_default();
    let mut matched = false;
    let mut changed = false;
    let mut other_types = Vec::new();
    for e in entries(content) {
        if !host_field_matches(e.hosts, &name) {
            continue;
        }
        match e.marker {
            Some("@revoked") => {
                if e.blob == blob {
                    return Verdict::Revoked;
                }
            }
            Some(_) => {} // @cert-authority: quai does not accept host certificates
            None => {
                if e.blob == blob {
                    matched = true;
                } else if key_type_of(&e.blob).as_deref() == Some(server_type.as_str()) {
                    changed = true;
                } else if !other_types.iter().any(|t| t == e.key_type) {
                    other_types.push(e.key_type.to_string());
                }
            }
        }
    }
    if matched {
        Verdict::Match
    } else if changed {
        Verdict::Changed
    } else {
        Verdict::Unknown { other_types }
    }
}

/// The key types recorded for this host, in file order, so the handshake
/// can ask the server for a key we can actually verify.
pub(crate) fn known_types(content: &str, host: &str, port: u16) -> Vec<String> {
    let name = lookup_name(host, port);
    let mut types: Vec<String> = Vec::new();
    for e in entries(content) {
        if e.marker.is_none()
            && host_field_matches(e.hosts, &name)
            && !types.iter().any(|t| t == e.key_type)
        {
            types.push(e.key_type.to_string());
        }
    }
    types
}

/// libssh2 host key algorithm names for the recorded key types.
pub(crate) fn hostkey_method_prefs(types: &[String]) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for t in types {
        match t.as_str() {
            "ssh-ed25519"
            | "ecdsa-sha2-nistp256"
            | "ecdsa-sha2-nistp384"
            | "ecdsa-sha2-nistp521" => out.push(t.as_str()),
            "ssh-rsa" => out.extend(["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]),
            _ => {}
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(out.join(","))
    }
}

/// Appends `name keytype base64` for a key accepted on first use.
pub(crate) fn append(path: &Path, host: &str, port: u16, blob: &[u8]) -> std::io::Result<()> {
    let key_type = key_type_of(blob).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, "unparseable host key blob")
    })?;
    let needs_newline = match std::fs::read(path) {
        Ok(b) => !b.is_empty() && !b.ends_with(b"\n"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let line = format!(
        "{}{} {} {}\n",
        if needs_newline { "\n" } else { "" },
        lookup_name(host, port),
        key_type,
        openssl::base64::encode_block(blob)
    );
    f.write_all(line.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(kind: &str, body: &[u8]) -> Vec<u8> {
        let mut b = (kind.len() as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind.as_bytes());
        b.extend_from_slice(body);
        b
    }

    fn line(hosts: &str, b: &[u8]) -> String {
        format!(
            "{hosts} {} {}\n",
            key_type_of(b).unwrap(),
            openssl::base64::encode_block(b)
        )
    }

    #[test]
    fn plain_and_port_names() {
        let k = blob("ssh-ed25519", b"AAAA");
        let f = line("example.org", &k);
        assert_eq!(check(&f, "example.org", 22, &k), Verdict::Match);
        assert_eq!(check(&f, "EXAMPLE.org", 22, &k), Verdict::Match);
        // A non-standard port must be recorded as [host]:port.
        assert!(matches!(
            check(&f, "example.org", 2222, &k),
            Verdict::Unknown { .. }
        ));
        let f = line("[example.org]:2222,other", &k);
        assert_eq!(check(&f, "example.org", 2222, &k), Verdict::Match);
        assert_eq!(check(&f, "other", 22, &k), Verdict::Match);
    }

    #[test]
    fn changed_unknown_revoked() {
        let k = blob("ssh-ed25519", b"AAAA");
        let k2 = blob("ssh-ed25519", b"BBBB");
        let e = blob("ecdsa-sha2-nistp256", b"CCCC");
        let f = line("h", &k2);
        assert_eq!(check(&f, "h", 22, &k), Verdict::Changed);
        let f = line("h", &e);
        assert_eq!(
            check(&f, "h", 22, &k),
            Verdict::Unknown {
                other_types: vec!["ecdsa-sha2-nistp256".into()]
            }
        );
        // One matching line among others is enough (several keys per host).
        let f = format!("{}{}", line("h", &k2), line("h", &k));
        assert_eq!(check(&f, "h", 22, &k), Verdict::Match);
        let f = format!("@revoked {}{}", line("*", &k), line("h", &k));
        assert_eq!(check(&f, "h", 22, &k), Verdict::Revoked);
    }

    #[test]
    fn wildcards_negation_and_junk_lines() {
        let k = blob("ssh-ed25519", b"AAAA");
        let f = format!(
            "# comment\n\n@cert-authority *.corp ssh-ed25519 AAAA\ngarbage\nx y !!!notbase64\n{}",
            line("*.example.org,!bad.example.org", &k)
        );
        assert_eq!(check(&f, "sftp.example.org", 22, &k), Verdict::Match);
        assert!(matches!(
            check(&f, "bad.example.org", 22, &k),
            Verdict::Unknown { .. }
        ));
        assert!(matches!(
            check(&f, "example.org", 22, &k),
            Verdict::Unknown { .. }
        ));
        assert!(glob(b"s?tp*", b"sftp.x"));
        assert!(!glob(b"s?tp", b"sftp.x"));
    }

    #[test]
    fn hashed_names() {
        // Produced by `ssh-keygen -H` style hashing: HMAC-SHA1(salt, name).
        let k = blob("ssh-ed25519", b"AAAA");
        let salt = b"0123456789abcdefghij";
        let key = PKey::hmac(salt).unwrap();
        let mut s = Signer::new(MessageDigest::sha1(), &key).unwrap();
        s.update(b"[127.0.0.1]:2222").unwrap();
        let h = s.sign_to_vec().unwrap();
        let field = format!(
            "|1|{}|{}",
            openssl::base64::encode_block(salt),
            openssl::base64::encode_block(&h)
        );
        let f = line(&field, &k);
        assert_eq!(check(&f, "127.0.0.1", 2222, &k), Verdict::Match);
        assert!(matches!(
            check(&f, "127.0.0.1", 22, &k),
            Verdict::Unknown { .. }
        ));
    }

    #[test]
    fn append_then_match() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("known_hosts");
        std::fs::write(&p, "other ssh-ed25519 AAAA").unwrap(); // no trailing newline
        let k = blob("ssh-ed25519", b"AAAA");
        append(&p, "127.0.0.1", 2222, &k).unwrap();
        let c = std::fs::read_to_string(&p).unwrap();
        assert_eq!(check(&c, "127.0.0.1", 2222, &k), Verdict::Match);
        assert!(c.starts_with("other ssh-ed25519 AAAA\n[127.0.0.1]:2222 "));
    }

    #[test]
    fn key_type_parse_is_total() {
        assert_eq!(key_type_of(&[]), None);
        assert_eq!(key_type_of(&[0, 0, 0, 200, b'x']), None);
        assert_eq!(key_type_of(&[255, 255, 255, 255]), None);
        assert_eq!(key_type_of(&blob("ssh-rsa", b"")), Some("ssh-rsa".into()));
        assert!(fingerprint_sha256(b"x").starts_with("SHA256:"));
        assert_eq!(
            hostkey_method_prefs(&["ssh-rsa".into()]).unwrap(),
            "rsa-sha2-512,rsa-sha2-256,ssh-rsa"
        );
    }
}
