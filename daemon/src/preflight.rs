//! What a start checks beyond the file itself: the files a configuration
//! names must exist and be readable (the HTTP token, the SMTP password,
//! SFTP keys, passwords and known_hosts, AS2 certificates and keys, which
//! must also load), and a partner's inbox must exist unless the
//! configuration says to create it (`[partner.dropzone] create = true`):
//! a misspelled folder is reported, never created and watched in silence.
//!
//! `quai check-config` reports everything [`check`] finds, so a
//! configuration that passes the check starts. `quai run` (before READY)
//! and a reload refuse a configuration with a problem of the whole
//! daemon ([`Findings::fatal`]); a problem with one partner's SFTP
//! credentials ([`Findings::partner`]) is logged as an error and only that
//! partner's polls and deliveries fail, as they would with a broken server.

use std::path::Path;

use crate::config::{Config, ConfigProblem};

/// What [`findings`] found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Problems that stop the daemon from starting (or a reload).
    pub fatal: Vec<ConfigProblem>,
    /// Problems confined to one partner's SFTP connection.
    pub partner: Vec<ConfigProblem>,
}

/// Every problem a start would meet with `config`, besides the file's own.
pub fn check(config: &Config) -> Vec<ConfigProblem> {
    let f = findings(config);
    let mut all = f.fatal;
    all.extend(f.partner);
    all
}

/// [`check`], split by consequence.
pub fn findings(config: &Config) -> Findings {
    let mut out = Vec::new();
    let mut sftp = Vec::new();
    let mut sftp_problem = |key: &str, message: String| {
        sftp.push(ConfigProblem {
            line: None,
            key: key.to_string(),
            message,
        })
    };
    let mut problem = |key: &str, message: String| {
        out.push(ConfigProblem {
            line: None,
            key: key.to_string(),
            message,
        })
    };
    if let Some(f) = &config.http_token_file {
        if let Err(m) = readable(f) {
            problem("http.token_file", m);
        } else if std::fs::read_to_string(f)
            .map(|t| t.lines().next().unwrap_or("").trim().is_empty())
            .unwrap_or(true)
        {
            problem("http.token_file", format!("{} is empty", f.display()));
        }
    }
    if let Some(f) = &config.mail_password_file {
        if let Err(m) = readable(f) {
            problem("mail.password_file", m);
        }
    }
    for p in &config.partners {
        let key = |k: &str| format!("partner[{}].{k}", p.id);
        if let Some(inbox) = &p.inbox {
            if !p.create_inbox {
                match std::fs::metadata(inbox) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => problem(
                        &key("dropzone.inbox"),
                        format!("{} is not a folder", inbox.display()),
                    ),
                    Err(e) => problem(
                        &key("dropzone.inbox"),
                        format!(
                            "{}: {e} (create it, or set [partner.dropzone] create = true)",
                            inbox.display()
                        ),
                    ),
                }
            }
        }
        if let Some(s) = &p.sftp {
            if let Some(k) = &s.key {
                if let Err(m) = readable(k) {
                    sftp_problem(&key("sftp.key"), m);
                }
            }
            if let Some(k) = &s.password_file {
                if let Err(m) = readable(k) {
                    sftp_problem(&key("sftp.password_file"), m);
                }
            }
            let kh = s
                .known_hosts
                .clone()
                .unwrap_or_else(|| crate::connect::default_known_hosts(config));
            if !s.trust_on_first_use {
                if let Err(m) = readable(&kh) {
                    sftp_problem(
                        &key("sftp.known_hosts"),
                        format!("{m} (host keys are checked strictly; set trust_on_first_use = true to learn the first one)"),
                    );
                }
            }
        }
        if let Some(a) = &p.as2 {
            if let Some(c) = &a.certificate {
                if let Err(m) = readable(c) {
                    problem(&key("as2.certificate"), m);
                }
            }
        }
    }
    if let Some(a) = &config.as2 {
        let mut files_ok = true;
        for (k, f) in [("as2.certificate", &a.certificate), ("as2.key", &a.key)] {
            if let Err(m) = readable(f) {
                problem(k, m);
                files_ok = false;
            }
        }
        let partners_ok = !out.iter().any(|p| p.key.ends_with("as2.certificate"));
        if files_ok && partners_ok {
            // The files are there: they must also load (certificate, key, pair).
            if let Some(identity) = crate::connect::as2_identity(config) {
                let partners: Vec<_> = config
                    .partners
                    .iter()
                    .filter_map(crate::connect::as2_partner)
                    .collect();
                if let Err(errors) = quai_connectors::as2::As2Settings::load(
                    &identity,
                    &partners,
                    config.store.clone(),
                ) {
                    for e in errors {
                        out.push(ConfigProblem {
                            line: None,
                            key: "as2".into(),
                            message: e.to_string(),
                        });
                    }
                }
            }
        }
    }
    Findings {
        fatal: out,
        partner: sftp,
    }
}

/// `Ok` when `path` is a file this process can open for reading.
fn readable(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Err(e) => Err(format!("{}: {e}", path.display())),
        Ok(m) if m.is_dir() => Err(format!("{} is a folder, not a file", path.display())),
        Ok(_) => std::fs::File::open(path)
            .map(|_| ())
            .map_err(|e| format!("{}: cannot be read: {e}", path.display())),
    }
}
