//! Per-partner SFTP settings and the parsing of the user-facing forms
//! (`url = "sftp://user@host:port/dir"`, `after_pickup = "delete" | "move:/dir"`).
//!
//! The daemon maps the TOML `[partner.sftp]` table to [`SftpSource`]; the
//! parsing helpers live here so the rules (default port, how a path after the
//! host is read) are written once and tested once.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::SftpError;

/// What to do with a remote file once the sink has durably committed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterPickup {
    /// Remove the remote file.
    Delete,
    /// Rename the remote file into this remote folder (same name; a suffix
    /// is added if the name is already taken there).
    MoveTo(String),
}

impl FromStr for AfterPickup {
    type Err = SftpError;

    /// `"delete"` or `"move:/remote/dir"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("delete") {
            return Ok(AfterPickup::Delete);
        }
        if let Some(dir) = s.strip_prefix("move:") {
            let dir = dir.trim();
            if dir.is_empty() {
                return Err(SftpError::Config(
                    "after_pickup = \"move:\" needs a remote folder, e.g. \"move:/done\"".into(),
                ));
            }
            if dir.split('/').any(|c| c == "..") {
                return Err(SftpError::Config(format!(
                    "after_pickup folder {dir:?} must not contain '..'"
                )));
            }
            return Ok(AfterPickup::MoveTo(dir.to_string()));
        }
        Err(SftpError::Config(format!(
            "after_pickup = {s:?}: expected \"delete\" or \"move:/folder\""
        )))
    }
}

/// The parts of an `sftp://user@host:port/dir` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpUrl {
    pub user: String,
    pub host: String,
    pub port: u16,
    /// Remote folder: absolute (`/outgoing`), or relative to the login
    /// folder when written `sftp://host/~/outgoing` (gives `outgoing`), or
    /// `.` when the URL has no path.
    pub dir: String,
}

impl SftpUrl {
    /// Parses `sftp://user@host[:port][/path]`. The user is required (quai
    /// never guesses a login); IPv6 hosts are written in brackets
    /// (`sftp://quai@[::1]:2222/in`); `%XX` escapes are decoded in the user
    /// and path.
    pub fn parse(url: &str) -> Result<SftpUrl, SftpError> {
        let bad = |why: &str| SftpError::Config(format!("SFTP url {url:?}: {why}"));
        let rest = url
            .trim()
            .strip_prefix("sftp://")
            .ok_or_else(|| bad("must start with sftp://"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains(['?', '#']) || path.contains(['?', '#']) {
            return Err(bad("query strings and fragments are not supported"));
        }
        let (user, hostport) = authority
            .rsplit_once('@')
            .ok_or_else(|| bad("a user is required (sftp://user@host/dir)"))?;
        if user.contains(':') {
            return Err(bad(
                "passwords do not belong in the url: use a password file",
            ));
        }
        let user = percent_decode(user).ok_or_else(|| bad("bad %-escape in user"))?;
        if user.is_empty() {
            return Err(bad("empty user"));
        }
        let (host, port) = if let Some(after) = hostport.strip_prefix('[') {
            let (h, tail) = after
                .split_once(']')
                .ok_or_else(|| bad("unclosed '[' in host"))?;
            let port = match tail {
                "" => None,
                t => Some(t.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
            };
            (h, port)
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        if host.contains(|c: char| c.is_whitespace() || c == '@' || c == '/') {
            return Err(bad("invalid host"));
        }
        let port = match port {
            None => 22,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(bad("port must be a number from 1 to 65535")),
                Ok(p) => p,
            },
        };
        let path = percent_decode(path).ok_or_else(|| bad("bad %-escape in path"))?;
        if path.contains('\0') {
            return Err(bad("NUL in path"));
        }
        let dir = if path.is_empty() || path == "/~" || path == "/~/" {
            ".".to_string()
        } else if let Some(rel) = path.strip_prefix("/~/") {
            rel.trim_end_matches('/').to_string()
        } else if path == "/" {
            "/".to_string()
        } else {
            path.trim_end_matches('/').to_string()
        };
        Ok(SftpUrl {
            user,
            host: host.to_string(),
            port,
            dir,
        })
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Everything quai needs to poll one partner's SFTP server and write back to
/// its outbox. Build it with [`SftpSource::from_url`] and adjust the public
/// fields.
#[derive(Debug, Clone)]
pub struct SftpSource {
    /// Partner id, copied into every [`crate::LandedFlow`].
    pub partner: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Remote folder polled for new files.
    pub remote_dir: String,
    /// Private key file (OpenSSH or PEM format). A `<key>.pub` beside it is
    /// used when present.
    pub private_key: Option<PathBuf>,
    /// File holding the password, for partners who insist on passwords
    /// (tried after the key, or alone). One line; the trailing newline is
    /// ignored.
    pub password_file: Option<PathBuf>,
    /// OpenSSH `known_hosts` file: the server's key must be in it.
    pub known_hosts: PathBuf,
    /// Accept and record an unknown host key (never a changed one). Off by
    /// default: an unknown key refuses the connection.
    pub trust_on_first_use: bool,
    /// Remote folder for acknowledgements and reports ([`super::SftpSource::deliver`]).
    pub outbox: Option<String>,
    pub after_pickup: AfterPickup,
    /// Files whose modification time is younger than this are left for the
    /// next cycle (judged with the server's mtime, so keep it well above the
    /// clock skew you expect; the stable-listing rule does not depend on
    /// clocks).
    pub min_age: Duration,
    /// A file is taken only once two listings saw the same size and mtime.
    /// When a file is new or changed, the poll lists again after this pause
    /// (zero: wait for the next cycle's listing instead).
    pub settle: Duration,
    /// Files larger than this are left on the server and reported.
    pub max_file_size: Option<u64>,
    /// At most this many directory entries are read per poll (bounded
    /// memory); the rest wait for the next cycle.
    pub max_listing: usize,
    /// TCP connect and SSH handshake bound.
    pub connect_timeout: Duration,
    /// Bound on every single SSH/SFTP operation once connected.
    pub io_timeout: Duration,
    /// Shared by all partners to bound concurrent downloads (each download
    /// holds one permit); `None`: no bound.
    pub transfer_slots: Option<Arc<Semaphore>>,
}

impl SftpSource {
    /// A source with quai's defaults: delete after pickup, strict host key
    /// checking, min_age 10 s, settle 2 s, connect timeout 15 s, IO timeout
    /// 60 s, at most 10 000 entries per listing.
    pub fn from_url(
        partner: &str,
        url: &str,
        private_key: Option<PathBuf>,
        known_hosts: PathBuf,
    ) -> Result<SftpSource, SftpError> {
        let u = SftpUrl::parse(url)?;
        Ok(SftpSource {
            partner: partner.to_string(),
            host: u.host,
            port: u.port,
            user: u.user,
            remote_dir: u.dir,
            private_key,
            password_file: None,
            known_hosts,
            trust_on_first_use: false,
            outbox: None,
            after_pickup: AfterPickup::Delete,
            min_age: Duration::from_secs(10),
            settle: Duration::from_secs(2),
            max_file_size: None,
            max_listing: 10_000,
            connect_timeout: Duration::from_secs(15),
            io_timeout: Duration::from_secs(60),
            transfer_slots: None,
        })
    }

    /// `user@host:port`, for logs and errors.
    pub fn label(&self) -> String {
        if self.host.contains(':') {
            format!("{}@[{}]:{}", self.user, self.host, self.port)
        } else {
            format!("{}@{}:{}", self.user, self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_full() {
        let u = SftpUrl::parse("sftp://quai@sftp.acme.example:2222/outgoing").unwrap();
        assert_eq!(u.user, "quai");
        assert_eq!(u.host, "sftp.acme.example");
        assert_eq!(u.port, 2222);
        assert_eq!(u.dir, "/outgoing");
    }

    #[test]
    fn url_defaults_and_forms() {
        let u = SftpUrl::parse("sftp://quai@host").unwrap();
        assert_eq!((u.port, u.dir.as_str()), (22, "."));
        let u = SftpUrl::parse("sftp://quai@host/").unwrap();
        assert_eq!(u.dir, "/");
        let u = SftpUrl::parse("sftp://quai@host/~/in/").unwrap();
        assert_eq!(u.dir, "in");
        let u = SftpUrl::parse("sftp://quai@host/a%20b/").unwrap();
        assert_eq!(u.dir, "/a b");
        let u = SftpUrl::parse("sftp://qu%40ai@[::1]:2200/x").unwrap();
        assert_eq!(
            (u.user.as_str(), u.host.as_str(), u.port),
            ("qu@ai", "::1", 2200)
        );
    }

    #[test]
    fn url_rejects() {
        for bad in [
            "ftp://quai@host/x",
            "sftp://host/x",
            "sftp://@host/x",
            "sftp://quai:secret@host/x",
            "sftp://quai@host:0/x",
            "sftp://quai@host:99999/x",
            "sftp://quai@host:abc/x",
            "sftp://quai@/x",
            "sftp://quai@[::1/x",
            "sftp://quai@host/x%zz",
            "sftp://quai@host/x?y=1",
        ] {
            assert!(SftpUrl::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn after_pickup_parse() {
        assert_eq!(
            "delete".parse::<AfterPickup>().unwrap(),
            AfterPickup::Delete
        );
        assert_eq!(
            "move:/done".parse::<AfterPickup>().unwrap(),
            AfterPickup::MoveTo("/done".into())
        );
        assert!("move:".parse::<AfterPickup>().is_err());
        assert!("move:/a/../b".parse::<AfterPickup>().is_err());
        assert!("keep".parse::<AfterPickup>().is_err());
    }

    #[test]
    fn from_url_defaults() {
        let s = SftpSource::from_url(
            "acme",
            "sftp://quai@h:2022/out",
            Some("/k".into()),
            "/kh".into(),
        )
        .unwrap();
        assert!(!s.trust_on_first_use);
        assert_eq!(s.after_pickup, AfterPickup::Delete);
        assert_eq!(s.label(), "quai@h:2022");
    }
}
