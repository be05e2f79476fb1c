//! Names in a drop zone: which partner folders are usable, which files are
//! uploads in progress, and the names quai gives files it claims or moves
//! aside — which must stay within the file system's 255-byte limit however
//! long the partner's name was.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use sha2::{Digest, Sha256};

/// Longest file name (bytes) on Linux file systems.
pub const NAME_MAX: usize = 255;

/// Prefix of a file claimed by an instance: `.quai-taking.<instance>.<name>`.
pub const CLAIM_PREFIX: &str = ".quai-taking.";

/// Folder, inside a partner's folder, where refused entries are moved.
pub const REFUSED_DIR: &str = ".quai-refused";

pub use crate::landing::is_partial_name;

/// [`is_partial_name`] on raw bytes (names need not be UTF-8).
pub fn is_partial(name: &OsStr) -> bool {
    is_partial_name(&name.to_string_lossy())
}

/// Why a partner folder name cannot be a partner id, or `None` when it can:
/// 1 to 64 ASCII letters, digits, `-`, `_` or `.`, not starting with `.`
/// (the daemon's `valid_partner_id` rule: ids become folder and file names).
pub fn unusable_partner_name(name: &OsStr) -> Option<&'static str> {
    let b = name.as_bytes();
    if b.is_empty() {
        return Some("empty name");
    }
    if b.len() > 64 {
        return Some("longer than 64 bytes");
    }
    if b[0] == b'.' {
        return Some("starts with a dot");
    }
    if b.iter().any(|c| !c.is_ascii()) {
        return Some("not ASCII");
    }
    if b.iter()
        .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
    {
        return Some("holds a space, line break or control character");
    }
    if !b
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        return Some("holds characters other than letters, digits, '-', '_' and '.'");
    }
    None
}

fn short_hash(name: &OsStr) -> String {
    let h = Sha256::digest(name.as_bytes());
    hex::encode(&h[..16])
}

/// The instance as it appears in claim names (`/` and `.` replaced).
pub fn instance_tag(instance: &str) -> String {
    instance
        .chars()
        .map(|c| if c == '/' || c == '.' { '_' } else { c })
        .collect()
}

/// The names a claimed file goes by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The claimed file's name.
    pub name: OsString,
    /// When the original name did not fit beside the prefix, the claim is
    /// named by the name's hash and this small file, next to it, holds the
    /// original name (for a recovery by another instance).
    pub sidecar: Option<OsString>,
}

/// Claim names of `original` for `instance`: `.quai-taking.<tag>.<name>`, or
/// `.quai-taking.<tag>.#<hash>` (+ `.name` sidecar) when that would pass
/// 255 bytes.
pub fn claim_for(original: &OsStr, instance: &str) -> Claim {
    let head = format!("{CLAIM_PREFIX}{}.", instance_tag(instance));
    if head.len() + original.len() <= NAME_MAX {
        let mut v = head.into_bytes();
        v.extend_from_slice(original.as_bytes());
        return Claim {
            name: OsString::from_vec(v),
            sidecar: None,
        };
    }
    let hashed = format!("{head}#{}", short_hash(original));
    Claim {
        sidecar: Some(OsString::from(format!("{hashed}.name"))),
        name: OsString::from(hashed),
    }
}

/// What a `.quai-taking.` name is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimName<'a> {
    /// A claim holding the original name.
    Plain { owner: &'a str, original: &'a OsStr },
    /// A claim named by a hash; the original name is in its sidecar.
    Hashed { owner: &'a str, sidecar: OsString },
    /// The sidecar of a hashed claim (`claim` is the claim's name).
    Sidecar { owner: &'a str, claim: &'a OsStr },
}

/// Parses a claim (or sidecar) name; `None` for any other name.
pub fn parse_claim(name: &OsStr) -> Option<ClaimName<'_>> {
    let rest = name.as_bytes().strip_prefix(CLAIM_PREFIX.as_bytes())?;
    let dot = rest.iter().position(|&c| c == b'.')?;
    let owner = std::str::from_utf8(&rest[..dot]).ok()?;
    let tail = &rest[dot + 1..];
    let is_hash =
        |b: &[u8]| b.len() == 33 && b[0] == b'#' && b[1..].iter().all(|c| c.is_ascii_hexdigit());
    if is_hash(tail) {
        let mut side = name.to_os_string();
        side.push(".name");
        return Some(ClaimName::Hashed {
            owner,
            sidecar: side,
        });
    }
    if let Some(h) = tail.strip_suffix(b".name") {
        if is_hash(h) {
            let claim = &name.as_bytes()[..name.len() - ".name".len()];
            return Some(ClaimName::Sidecar {
                owner,
                claim: OsStr::from_bytes(claim),
            });
        }
    }
    Some(ClaimName::Plain {
        owner,
        original: OsStr::from_bytes(tail),
    })
}

/// `name` + `suffix`, or, when that passes 255 bytes, as much of `name` as
/// fits before `~<hash>` + `suffix`.
pub fn fit(name: &OsStr, suffix: &str) -> OsString {
    let b = name.as_bytes();
    if b.len() + suffix.len() <= NAME_MAX {
        let mut v = b.to_vec();
        v.extend_from_slice(suffix.as_bytes());
        return OsString::from_vec(v);
    }
    let tail = format!("~{}{suffix}", short_hash(name));
    let keep = NAME_MAX.saturating_sub(tail.len()).min(b.len());
    let mut v = b[..keep].to_vec();
    v.extend_from_slice(tail.as_bytes());
    OsString::from_vec(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_names() {
        for n in [".hidden", "a.part", "a.TMP", "x.filepart"] {
            assert!(is_partial_name(n), "{n}");
        }
        for n in ["a.zip", "invoice.xml", "part.xml"] {
            assert!(!is_partial_name(n), "{n}");
        }
    }

    #[test]
    fn claim_names_round_trip_and_stay_short() {
        let c = claim_for(OsStr::new("batch.v2.zip"), "host.example:42");
        assert!(c.sidecar.is_none());
        assert!(is_partial(&c.name), "claimed files are hidden");
        assert_eq!(
            parse_claim(&c.name),
            Some(ClaimName::Plain {
                owner: "host_example:42",
                original: OsStr::new("batch.v2.zip")
            })
        );
        let long = OsString::from("é".repeat(127) + "x"); // 255 bytes
        assert_eq!(long.len(), 255);
        let c = claim_for(&long, "host.example:42");
        assert!(c.name.len() <= NAME_MAX);
        let side = c.sidecar.clone().unwrap();
        assert!(side.len() <= NAME_MAX);
        assert_eq!(
            parse_claim(&c.name),
            Some(ClaimName::Hashed {
                owner: "host_example:42",
                sidecar: side.clone()
            })
        );
        assert_eq!(
            parse_claim(&side),
            Some(ClaimName::Sidecar {
                owner: "host_example:42",
                claim: &c.name
            })
        );
        assert_eq!(parse_claim(OsStr::new("plain.xml")), None);
    }

    #[test]
    fn partner_names() {
        for ok in ["acme", "ACME-2", "a_b.c"] {
            assert_eq!(unusable_partner_name(OsStr::new(ok)), None, "{ok}");
        }
        for bad in ["a b", "a\nb", "café", ".x", "", &"a".repeat(65), "a;b"] {
            assert!(unusable_partner_name(OsStr::new(bad)).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn fit_keeps_under_the_limit() {
        assert_eq!(fit(OsStr::new("a.xml"), ".1"), OsString::from("a.xml.1"));
        let long = OsString::from("z".repeat(255));
        let f = fit(&long, ".123456");
        assert_eq!(f.len(), NAME_MAX);
        assert!(f.to_string_lossy().ends_with(".123456"));
    }
}
